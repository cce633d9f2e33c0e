//! The folder tree of a portal: sections, rooms, folders and files.
//!
//! A file row points at a blob by key. The blob is written (durably) before the row, and
//! deleted only after the row is gone: a crash between the two leaves an unreferenced blob,
//! never a row without bytes.

use crate::{next_id, stored_enum, Result, RowExt, SqlStore, StoreError};
use backspace_types::lenient::LenientEnum;
use backspace_types::{FileId, FolderId, FolderType, PortalId, UserId};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

/// A section root, room or folder.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Folder {
    pub id: FolderId,
    pub portal_id: PortalId,
    /// `None` for section roots.
    pub parent_id: Option<FolderId>,
    pub kind: FolderType,
    pub title: String,
    /// The person a personal section (My documents, Trash) belongs to.
    pub owner_id: Option<UserId>,
    pub created_by: UserId,
    pub created_at: i64,
    pub modified_by: UserId,
    pub modified_at: i64,
}

/// A file (its current version).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct File {
    pub id: FileId,
    pub portal_id: PortalId,
    pub folder_id: FolderId,
    pub title: String,
    pub version: i64,
    pub size: i64,
    pub blob_key: String,
    /// BLAKE3 of the bytes, hex.
    pub blake3: String,
    pub created_by: UserId,
    pub created_at: i64,
    pub modified_by: UserId,
    pub modified_at: i64,
}

/// What creating a room or folder needs.
#[derive(Clone, Debug)]
pub struct NewFolder {
    pub parent_id: FolderId,
    pub kind: FolderType,
    pub title: String,
    pub by: UserId,
    pub now: i64,
}

/// What creating a file, or a new version of one, needs. The blob must already be stored.
#[derive(Clone, Debug)]
pub struct NewFile {
    pub folder_id: FolderId,
    pub title: String,
    pub size: i64,
    pub blob_key: String,
    pub blake3: String,
    pub by: UserId,
    pub now: i64,
}

pub(crate) const FOLDER_COLUMNS: &str =
    "id, portal_id, parent_id, kind, title, owner_id, created_by, created_at, modified_by, modified_at";
pub(crate) const FILE_COLUMNS: &str =
    "id, portal_id, folder_id, title, version, size, blob_key, blake3, created_by, created_at, modified_by, modified_at";

/// The ids of a folder and everything below it; `$1` portal, `$2` folder.
const SUBTREE: &str = "WITH RECURSIVE subtree(id) AS (
    SELECT id FROM folders WHERE portal_id = $1 AND id = $2
    UNION ALL
    SELECT f.id FROM folders f JOIN subtree s ON f.parent_id = s.id WHERE f.portal_id = $1)";

pub(crate) fn folder_from_row(row: &AnyRow) -> Result<Folder> {
    Ok(Folder {
        id: FolderId(row.i64("id")?),
        portal_id: row.portal()?,
        parent_id: row.opt_i64("parent_id")?.map(FolderId),
        kind: stored_enum(row.i64("kind")?, "kind")?,
        title: row.text("title")?,
        owner_id: row.opt_parsed("owner_id")?,
        created_by: row.parsed("created_by")?,
        created_at: row.i64("created_at")?,
        modified_by: row.parsed("modified_by")?,
        modified_at: row.i64("modified_at")?,
    })
}

pub(crate) fn file_from_row(row: &AnyRow) -> Result<File> {
    Ok(File {
        id: FileId(row.i64("id")?),
        portal_id: row.portal()?,
        folder_id: FolderId(row.i64("folder_id")?),
        title: row.text("title")?,
        version: row.i64("version")?,
        size: row.i64("size")?,
        blob_key: row.text("blob_key")?,
        blake3: row.text("blake3")?,
        created_by: row.parsed("created_by")?,
        created_at: row.i64("created_at")?,
        modified_by: row.parsed("modified_by")?,
        modified_at: row.i64("modified_at")?,
    })
}

/// A folder row to insert.
struct FolderRow<'a> {
    parent: Option<FolderId>,
    kind: FolderType,
    title: &'a str,
    owner: Option<UserId>,
    by: UserId,
    now: i64,
}

async fn insert_folder(conn: &mut AnyConnection, portal: PortalId, row: FolderRow<'_>) -> Result<FolderId> {
    let FolderRow {
        parent,
        kind,
        title,
        owner,
        by,
        now,
    } = row;
    let id = FolderId(next_id(conn, "folder").await?);
    sqlx::query(&format!(
        "INSERT INTO folders ({FOLDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $8)"
    ))
    .bind(id.0)
    .bind(portal.0)
    .bind(parent.map(|p| p.0))
    .bind(kind.number())
    .bind(title)
    .bind(owner.map(|o| o.to_string()))
    .bind(by.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Creates the portal-wide roots: the rooms root and the archive.
pub(crate) async fn insert_portal_roots(
    conn: &mut AnyConnection,
    portal: PortalId,
    owner: UserId,
    now: i64,
) -> Result<()> {
    for (kind, title) in [(FolderType::VirtualRooms, "Rooms"), (FolderType::Archive, "Archive")] {
        let row = FolderRow {
            parent: None,
            kind,
            title,
            owner: None,
            by: owner,
            now,
        };
        insert_folder(conn, portal, row).await?;
    }
    Ok(())
}

/// Creates a personal section root (My documents, Trash).
pub(crate) async fn insert_section(
    conn: &mut AnyConnection,
    portal: PortalId,
    kind: FolderType,
    title: &str,
    owner: Option<UserId>,
    now: i64,
) -> Result<()> {
    let by = owner.unwrap_or(UserId(uuid::Uuid::nil()));
    insert_folder(
        conn,
        portal,
        FolderRow {
            parent: None,
            kind,
            title,
            owner,
            by,
            now,
        },
    )
    .await?;
    Ok(())
}

/// Rooms, folders and files.
#[async_trait::async_trait]
pub trait TreeStore: Send + Sync {
    async fn create_folder(&self, portal: PortalId, folder: NewFolder) -> Result<Folder>;
    async fn folder(&self, portal: PortalId, id: FolderId) -> Result<Option<Folder>>;
    /// A section root: portal-wide (`owner` `None`) or personal.
    async fn section(&self, portal: PortalId, kind: FolderType, owner: Option<UserId>) -> Result<Option<Folder>>;
    /// The folder and its ancestors, root first.
    async fn ancestors(&self, portal: PortalId, id: FolderId) -> Result<Vec<Folder>>;
    async fn child_folders(&self, portal: PortalId, parent: FolderId) -> Result<Vec<Folder>>;
    async fn child_files(&self, portal: PortalId, parent: FolderId) -> Result<Vec<File>>;
    /// (files, folders) directly inside a folder.
    async fn child_counts(&self, portal: PortalId, parent: FolderId) -> Result<(i64, i64)>;
    async fn move_folder(&self, portal: PortalId, id: FolderId, to: FolderId, by: UserId, now: i64) -> Result<()>;
    /// Deletes a folder with everything below it; returns the blob keys of the deleted files,
    /// recorded as garbage by the same commit.
    async fn delete_folder_tree(&self, portal: PortalId, id: FolderId) -> Result<Vec<String>>;

    /// Creates a file row whose blob is stored; the blob's pending record (if any) goes with
    /// the same commit.
    async fn create_file(&self, portal: PortalId, file: NewFile) -> Result<File>;
    async fn file(&self, portal: PortalId, id: FileId) -> Result<Option<File>>;
    async fn file_by_title(&self, portal: PortalId, folder: FolderId, title: &str) -> Result<Option<File>>;
    /// Makes `file` (whose blob is stored) the next version of `id`; returns the new row and
    /// the blob key of the version it replaced, recorded as garbage by the same commit.
    async fn add_file_version(&self, portal: PortalId, id: FileId, file: NewFile) -> Result<(File, String)>;
    async fn move_file(&self, portal: PortalId, id: FileId, to: FolderId, by: UserId, now: i64) -> Result<()>;
    /// Deletes a file row; returns its blob key, recorded as garbage by the same commit.
    async fn delete_file(&self, portal: PortalId, id: FileId) -> Result<Option<String>>;
}

#[async_trait::async_trait]
impl TreeStore for SqlStore {
    async fn create_folder(&self, portal: PortalId, f: NewFolder) -> Result<Folder> {
        let mut tx = self.pool.begin().await?;
        let row = FolderRow {
            parent: Some(f.parent_id),
            kind: f.kind,
            title: &f.title,
            owner: None,
            by: f.by,
            now: f.now,
        };
        let id = insert_folder(&mut tx, portal, row).await?;
        tx.commit().await?;
        self.folder(portal, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("folder `{id}`")))
    }

    async fn folder(&self, portal: PortalId, id: FolderId) -> Result<Option<Folder>> {
        let row = sqlx::query(&format!(
            "SELECT {FOLDER_COLUMNS} FROM folders WHERE portal_id = $1 AND id = $2"
        ))
        .bind(portal.0)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(folder_from_row).transpose()
    }

    async fn section(&self, portal: PortalId, kind: FolderType, owner: Option<UserId>) -> Result<Option<Folder>> {
        let row = match owner {
            None => sqlx::query(&format!(
                "SELECT {FOLDER_COLUMNS} FROM folders WHERE portal_id = $1 AND kind = $2 AND parent_id IS NULL AND owner_id IS NULL"
            ))
            .bind(portal.0)
            .bind(kind.number())
            .fetch_optional(&self.pool)
            .await?,
            Some(user) => sqlx::query(&format!(
                "SELECT {FOLDER_COLUMNS} FROM folders WHERE portal_id = $1 AND kind = $2 AND parent_id IS NULL AND owner_id = $3"
            ))
            .bind(portal.0)
            .bind(kind.number())
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?,
        };
        row.as_ref().map(folder_from_row).transpose()
    }

    async fn ancestors(&self, portal: PortalId, id: FolderId) -> Result<Vec<Folder>> {
        let columns = FOLDER_COLUMNS
            .split(", ")
            .map(|c| format!("f.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE chain(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM folders WHERE portal_id = $1 AND id = $2
                UNION ALL
                SELECT f.id, f.parent_id, c.depth + 1 FROM folders f JOIN chain c ON f.id = c.parent_id
                WHERE f.portal_id = $1 AND c.depth < 256)
             SELECT {columns} FROM folders f JOIN chain c ON f.id = c.id WHERE f.portal_id = $1 ORDER BY c.depth DESC"
        ))
        .bind(portal.0)
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(folder_from_row).collect()
    }

    async fn child_folders(&self, portal: PortalId, parent: FolderId) -> Result<Vec<Folder>> {
        let rows = sqlx::query(&format!(
            "SELECT {FOLDER_COLUMNS} FROM folders WHERE portal_id = $1 AND parent_id = $2 ORDER BY LOWER(title), id"
        ))
        .bind(portal.0)
        .bind(parent.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(folder_from_row).collect()
    }

    async fn child_files(&self, portal: PortalId, parent: FolderId) -> Result<Vec<File>> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE portal_id = $1 AND folder_id = $2 ORDER BY LOWER(title), id"
        ))
        .bind(portal.0)
        .bind(parent.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    async fn child_counts(&self, portal: PortalId, parent: FolderId) -> Result<(i64, i64)> {
        let files: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM files WHERE portal_id = $1 AND folder_id = $2")
            .bind(portal.0)
            .bind(parent.0)
            .fetch_one(&self.pool)
            .await?;
        let folders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM folders WHERE portal_id = $1 AND parent_id = $2")
            .bind(portal.0)
            .bind(parent.0)
            .fetch_one(&self.pool)
            .await?;
        Ok((files, folders))
    }

    async fn move_folder(&self, portal: PortalId, id: FolderId, to: FolderId, by: UserId, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE folders SET parent_id = $3, modified_by = $4, modified_at = $5 WHERE portal_id = $1 AND id = $2",
        )
        .bind(portal.0)
        .bind(id.0)
        .bind(to.0)
        .bind(by.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_folder_tree(&self, portal: PortalId, id: FolderId) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE counters SET value = value WHERE name = 'folder'")
            .execute(&mut *tx)
            .await?;
        let blobs: Vec<String> = sqlx::query_scalar(&format!(
            "{SUBTREE} SELECT blob_key FROM files WHERE portal_id = $1 AND folder_id IN (SELECT id FROM subtree)"
        ))
        .bind(portal.0)
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{SUBTREE} DELETE FROM files WHERE portal_id = $1 AND folder_id IN (SELECT id FROM subtree)"
        ))
        .bind(portal.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{SUBTREE} DELETE FROM folders WHERE portal_id = $1 AND id IN (SELECT id FROM subtree)"
        ))
        .bind(portal.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        // Garbage from this commit on: a stop before their deletion leaves them to the cleaner.
        crate::snapshot::insert_garbage(
            self.engine,
            &mut tx,
            portal,
            &blobs,
            backspace_types::datetime::now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(blobs)
    }

    async fn create_file(&self, portal: PortalId, f: NewFile) -> Result<File> {
        let mut tx = self.pool.begin().await?;
        let id = FileId(next_id(&mut tx, "file").await?);
        sqlx::query(&format!(
            "INSERT INTO files ({FILE_COLUMNS}) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $8, $9)"
        ))
        .bind(id.0)
        .bind(portal.0)
        .bind(f.folder_id.0)
        .bind(&f.title)
        .bind(f.size)
        .bind(&f.blob_key)
        .bind(&f.blake3)
        .bind(f.by.to_string())
        .bind(f.now)
        .execute(&mut *tx)
        .await?;
        forget_pending(&mut tx, &f.blob_key).await?;
        tx.commit().await?;
        self.file(portal, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("file `{id}`")))
    }

    async fn file(&self, portal: PortalId, id: FileId) -> Result<Option<File>> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE portal_id = $1 AND id = $2"
        ))
        .bind(portal.0)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    async fn file_by_title(&self, portal: PortalId, folder: FolderId, title: &str) -> Result<Option<File>> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE portal_id = $1 AND folder_id = $2 AND LOWER(title) = LOWER($3) ORDER BY id LIMIT 1"
        ))
        .bind(portal.0)
        .bind(folder.0)
        .bind(title)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    async fn add_file_version(&self, portal: PortalId, id: FileId, f: NewFile) -> Result<(File, String)> {
        let mut tx = self.pool.begin().await?;
        // A no-op write first: it takes the row (PostgreSQL) or database (SQLite) lock, so two
        // concurrent versions cannot both read the same old blob key as theirs to delete.
        let locked = sqlx::query("UPDATE files SET version = version WHERE portal_id = $1 AND id = $2")
            .bind(portal.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("file `{id}`")));
        }
        let old_key: String = sqlx::query_scalar("SELECT blob_key FROM files WHERE portal_id = $1 AND id = $2")
            .bind(portal.0)
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE files SET version = version + 1, size = $3, blob_key = $4, blake3 = $5, modified_by = $6, modified_at = $7
             WHERE portal_id = $1 AND id = $2",
        )
        .bind(portal.0)
        .bind(id.0)
        .bind(f.size)
        .bind(&f.blob_key)
        .bind(&f.blake3)
        .bind(f.by.to_string())
        .bind(f.now)
        .execute(&mut *tx)
        .await?;
        forget_pending(&mut tx, &f.blob_key).await?;
        // The old bytes are garbage from this commit on: a stop before their deletion leaves
        // them to the cleaner.
        crate::snapshot::insert_garbage(self.engine, &mut tx, portal, std::slice::from_ref(&old_key), f.now).await?;
        tx.commit().await?;
        let file = self
            .file(portal, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("file `{id}`")))?;
        Ok((file, old_key))
    }

    async fn move_file(&self, portal: PortalId, id: FileId, to: FolderId, by: UserId, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE files SET folder_id = $3, modified_by = $4, modified_at = $5 WHERE portal_id = $1 AND id = $2",
        )
        .bind(portal.0)
        .bind(id.0)
        .bind(to.0)
        .bind(by.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_file(&self, portal: PortalId, id: FileId) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let key: Option<String> =
            sqlx::query_scalar("DELETE FROM files WHERE portal_id = $1 AND id = $2 RETURNING blob_key")
                .bind(portal.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(key) = &key {
            let now = backspace_types::datetime::now_ms();
            crate::snapshot::insert_garbage(self.engine, &mut tx, portal, std::slice::from_ref(key), now).await?;
        }
        tx.commit().await?;
        Ok(key)
    }
}

/// The row that uses `key` is being written: its bytes are no longer garbage to be (see
/// [`crate::SnapshotStore::add_pending_blob`]).
async fn forget_pending(tx: &mut sqlx::AnyConnection, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM blob_garbage WHERE blob_key = $1")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
