//! A portal's content as one consistent snapshot, and putting a snapshot back.
//!
//! The snapshot holds what a backup contains: the portal's settings, people, folders and file
//! rows. Not: sessions, API keys, the backup history, schedules or jobs — a restore must never
//! resurrect a revoked key or erase the record of a newer backup.

use crate::tree::{file_from_row, folder_from_row, FILE_COLUMNS, FOLDER_COLUMNS};
use crate::user::{from_row as user_from_row, COLUMNS as USER_COLUMNS};
use crate::{Engine, File, Folder, Result, SqlStore, StoreError, User};
use backspace_types::lenient::LenientEnum;
use backspace_types::{PortalId, TaskId, UserId};
use serde::{Deserialize, Serialize};

/// The portal's own settings in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSettings {
    pub alias: String,
    pub name: String,
    pub owner_id: UserId,
    pub language: String,
    pub time_zone: String,
}

/// Everything a backup of one portal holds, read in one read transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub portal_id: PortalId,
    pub settings: PortalSettings,
    pub users: Vec<User>,
    pub folders: Vec<Folder>,
    pub files: Vec<File>,
}

/// Every row of a portal's table, in id order, inside the snapshot's transaction.
async fn all_rows<T>(
    conn: &mut sqlx::AnyConnection,
    columns: &str,
    table: &str,
    portal: PortalId,
    decode: fn(&sqlx::any::AnyRow) -> Result<T>,
) -> Result<Vec<T>> {
    use futures_util::TryStreamExt;
    let sql = format!("SELECT {columns} FROM {table} WHERE portal_id = $1 ORDER BY id");
    // Decoded as they arrive: a large portal's rows are never held twice, as database rows
    // (each with its own copy of every value and column) and as structs.
    let mut rows = sqlx::query(&sql).bind(portal.0).fetch(conn);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(decode(&row)?);
    }
    Ok(out)
}

/// Rows per `INSERT` in a restore: a portal has tens of thousands of files.
const ROWS_PER_INSERT: usize = 100;

/// `VALUES` placeholders for `rows` rows of `cols`: `($1, …, $cols), ($cols+1, …), …` on
/// PostgreSQL, anonymous `(?, …), …` on SQLite, which finds a numbered parameter's name by a
/// linear search for each one bound (the cost of a statement grew with the square of its
/// parameters: 200 rows of 12 took 12 ms to bind).
fn placeholders(engine: Engine, rows: usize, cols: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        out.push_str(if r > 0 { ", (" } else { "(" });
        for c in 1..=cols {
            if c > 1 {
                out.push_str(", ");
            }
            match engine {
                Engine::Sqlite => out.push('?'),
                Engine::Postgres => {
                    let _ = write!(out, "${}", r * cols + c);
                }
            }
        }
        out.push(')');
    }
    out
}

/// Records `keys` as garbage in `tx` (a key recorded twice stays once).
pub(crate) async fn insert_garbage(
    engine: Engine,
    tx: &mut sqlx::AnyConnection,
    portal: PortalId,
    keys: &[String],
    now: i64,
) -> Result<()> {
    for batch in keys.chunks(ROWS_PER_INSERT * 4) {
        let sql = format!(
            "INSERT INTO blob_garbage (blob_key, portal_id, created_at) VALUES {} ON CONFLICT (blob_key) DO UPDATE SET not_before = NULL",
            placeholders(engine, batch.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for k in batch {
            q = q.bind(k.as_str()).bind(portal.0).bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The job a restore's swap runs for, checked in the swap's own transaction: the rows are
/// replaced only while the job is unfinished, leased to `owner` and its lease has not run out
/// (another instance fails a job whose lease ran out and unlocks its portal; a swap after that
/// would overwrite what users wrote since). With `phase`, the job's phase and progress are set
/// in the same transaction, so "the swap happened" and the swap are one fact.
#[derive(Clone, Debug)]
pub struct SwapFence<'a> {
    pub job: TaskId,
    pub owner: &'a str,
    pub phase: Option<(&'a str, i64)>,
}

/// Portal snapshots and restores.
#[async_trait::async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Reads the portal's rows in one read transaction (repeatable read on PostgreSQL, a
    /// single read transaction on SQLite's WAL): a consistent point in time.
    async fn snapshot(&self, portal: PortalId) -> Result<Snapshot>;
    /// Replaces the portal's people, folders and files with the snapshot's, in one
    /// transaction, keeping the portal's id and alias. Returns the blob keys the replaced rows
    /// used that the new rows do not, for the caller to delete after the commit. With a
    /// `fence`, `Conflict` and nothing changed when the job no longer holds its lease.
    async fn restore_snapshot(
        &self,
        portal: PortalId,
        snapshot: &Snapshot,
        now: i64,
        fence: Option<&SwapFence<'_>>,
    ) -> Result<Vec<String>>;
    /// Records blobs that no row uses any more, to be deleted (see [`SnapshotStore::blob_garbage`]).
    async fn add_blob_garbage(&self, portal: PortalId, keys: &[String], now: i64) -> Result<()>;
    /// Records the key of bytes about to be written, before the row that will use them: garbage
    /// that is not collected before `not_before`, and that the row's transaction forgets
    /// ([`crate::TreeStore::create_file`], [`crate::TreeStore::add_file_version`]). Recording
    /// it as garbage again (the write failed) makes it collectable at once.
    async fn add_pending_blob(&self, portal: PortalId, key: &str, now: i64, not_before: i64) -> Result<()>;
    /// Blobs released by committed changes (a restore's replaced files), or written for a row
    /// that never came, not yet deleted and collectable at `now`; oldest first, at most `limit`.
    async fn blob_garbage(&self, limit: i64, now: i64) -> Result<Vec<String>>;
    /// Forgets garbage blobs once they are deleted.
    async fn forget_blob_garbage(&self, keys: &[String]) -> Result<()>;
    /// Sets the portal's DocSpace status (0 Active, 4 Restoring). A status is not a change of
    /// the portal: `modified_at` stays, so a restore that locks the portal and fails leaves it
    /// exactly as it was.
    async fn set_portal_status(&self, portal: PortalId, status: i64, now: i64) -> Result<()>;
    /// Makes sure a portal with this id and alias exists (a whole-server restore onto a server
    /// that lacks it); `Conflict` when the id or the alias belongs to another portal.
    async fn ensure_portal(&self, portal: PortalId, settings: &PortalSettings, now: i64) -> Result<()>;
}

#[async_trait::async_trait]
impl SnapshotStore for SqlStore {
    async fn snapshot(&self, portal: PortalId) -> Result<Snapshot> {
        let mut tx = self.pool.begin().await?;
        if self.engine == Engine::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let p = sqlx::query("SELECT alias, name, owner_id, language, time_zone FROM portals WHERE id = $1")
            .bind(portal.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("portal `{portal}`")))?;
        use crate::RowExt;
        let settings = PortalSettings {
            alias: p.text("alias")?,
            name: p.text("name")?,
            owner_id: p.parsed("owner_id")?,
            language: p.text("language")?,
            time_zone: p.text("time_zone")?,
        };
        let users = all_rows(&mut tx, USER_COLUMNS, "users", portal, user_from_row).await?;
        let folders = all_rows(&mut tx, FOLDER_COLUMNS, "folders", portal, folder_from_row).await?;
        let files = all_rows(&mut tx, FILE_COLUMNS, "files", portal, file_from_row).await?;
        tx.commit().await?;
        Ok(Snapshot {
            portal_id: portal,
            settings,
            users,
            folders,
            files,
        })
    }

    async fn restore_snapshot(
        &self,
        portal: PortalId,
        snap: &Snapshot,
        now: i64,
        fence: Option<&SwapFence<'_>>,
    ) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        if let Some(f) = fence {
            // The first statement, and a write: it takes SQLite's lock, and PostgreSQL's lock of
            // the job's row, so the job cannot be failed by another instance until the commit.
            let held = sqlx::query(
                "UPDATE backup_jobs SET updated_at = $3, phase = COALESCE($4, phase), progress = COALESCE($5, progress)
                 WHERE id = $1 AND owner = $2 AND is_completed = 0 AND lease_until >= $3",
            )
            .bind(f.job.to_string())
            .bind(f.owner)
            .bind(now)
            .bind(f.phase.map(|(phase, _)| phase))
            .bind(f.phase.map(|(_, progress)| progress))
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "the restore job `{}` no longer holds its lease (this instance lost the database for longer than the job lease, or the job was ended): the portal was left as it was",
                    f.job
                )));
            }
        }
        let s = &snap.settings;
        let updated =
            sqlx::query("UPDATE portals SET name = $2, owner_id = $3, language = $4, time_zone = $5, modified_at = $6 WHERE id = $1")
                .bind(portal.0)
                .bind(&s.name)
                .bind(s.owner_id.to_string())
                .bind(&s.language)
                .bind(&s.time_zone)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("portal `{portal}`")));
        }
        let old_keys: Vec<String> = sqlx::query_scalar("SELECT blob_key FROM files WHERE portal_id = $1")
            .bind(portal.0)
            .fetch_all(&mut *tx)
            .await?;
        for table in ["files", "folders", "users"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE portal_id = $1"))
                .bind(portal.0)
                .execute(&mut *tx)
                .await?;
        }
        for u in &snap.users {
            sqlx::query(&format!(
                "INSERT INTO users ({USER_COLUMNS}, email_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(portal.0)
            .bind(u.id.to_string())
            .bind(&u.email)
            .bind(&u.user_name)
            .bind(&u.first_name)
            .bind(&u.last_name)
            .bind(u.kind.number())
            .bind(i64::from(u.is_owner))
            .bind(u.status)
            .bind(u.activation_status)
            .bind(&u.password_hash)
            .bind(u.created_by.map(|c| c.to_string()))
            .bind(u.created_at)
            .bind(u.email.to_lowercase())
            .execute(&mut *tx)
            .await
            .map_err(crate::conflict(|| format!("user `{}` of the archive", u.email)))?;
        }
        // Many rows per statement: a portal has tens of thousands of files.
        for batch in snap.folders.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO folders ({FOLDER_COLUMNS}) VALUES {}",
                placeholders(self.engine, batch.len(), 10)
            );
            let mut q = sqlx::query(&sql);
            for f in batch {
                q = q
                    .bind(f.id.0)
                    .bind(portal.0)
                    .bind(f.parent_id.map(|p| p.0))
                    .bind(f.kind.number())
                    .bind(f.title.as_str())
                    .bind(f.owner_id.map(|o| o.to_string()))
                    .bind(f.created_by.to_string())
                    .bind(f.created_at)
                    .bind(f.modified_by.to_string())
                    .bind(f.modified_at);
            }
            q.execute(&mut *tx).await.map_err(crate::conflict(|| {
                format!(
                    "one of folder ids {}–{} (it belongs to another portal on this server)",
                    batch[0].id,
                    batch[batch.len() - 1].id
                )
            }))?;
        }
        for batch in snap.files.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO files ({FILE_COLUMNS}) VALUES {}",
                placeholders(self.engine, batch.len(), 12)
            );
            let mut q = sqlx::query(&sql);
            for f in batch {
                q = q
                    .bind(f.id.0)
                    .bind(portal.0)
                    .bind(f.folder_id.0)
                    .bind(f.title.as_str())
                    .bind(f.version)
                    .bind(f.size)
                    .bind(f.blob_key.as_str())
                    .bind(f.blake3.as_str())
                    .bind(f.created_by.to_string())
                    .bind(f.created_at)
                    .bind(f.modified_by.to_string())
                    .bind(f.modified_at);
            }
            q.execute(&mut *tx).await.map_err(crate::conflict(|| {
                format!(
                    "one of file ids {}–{} (it belongs to another portal on this server)",
                    batch[0].id,
                    batch[batch.len() - 1].id
                )
            }))?;
        }
        // Ids restored from an archive must never be handed out again.
        let max_folder = snap.folders.iter().map(|f| f.id.0).max().unwrap_or(0);
        let max_file = snap.files.iter().map(|f| f.id.0).max().unwrap_or(0);
        for (name, max) in [("folder", max_folder), ("file", max_file)] {
            sqlx::query("UPDATE counters SET value = $2 WHERE name = $1 AND value < $2")
                .bind(name)
                .bind(max)
                .execute(&mut *tx)
                .await?;
        }
        let kept: std::collections::HashSet<&str> = snap.files.iter().map(|f| f.blob_key.as_str()).collect();
        let released: Vec<String> = old_keys.into_iter().filter(|k| !kept.contains(k.as_str())).collect();
        insert_garbage(self.engine, &mut tx, portal, &released, now).await?;
        tx.commit().await?;
        Ok(released)
    }

    async fn add_blob_garbage(&self, portal: PortalId, keys: &[String], now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_garbage(self.engine, &mut tx, portal, keys, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_pending_blob(&self, portal: PortalId, key: &str, now: i64, not_before: i64) -> Result<()> {
        sqlx::query("INSERT INTO blob_garbage (blob_key, portal_id, created_at, not_before) VALUES ($1, $2, $3, $4)")
            .bind(key)
            .bind(portal.0)
            .bind(now)
            .bind(not_before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn blob_garbage(&self, limit: i64, now: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT blob_key FROM blob_garbage WHERE not_before IS NULL OR not_before <= $2
             ORDER BY created_at, blob_key LIMIT $1",
        )
        .bind(limit)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn forget_blob_garbage(&self, keys: &[String]) -> Result<()> {
        for batch in keys.chunks(ROWS_PER_INSERT * 4) {
            let sql = format!(
                "DELETE FROM blob_garbage WHERE blob_key IN {}",
                placeholders(self.engine, 1, batch.len())
            );
            let mut q = sqlx::query(&sql);
            for k in batch {
                q = q.bind(k.as_str());
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    async fn ensure_portal(&self, portal: PortalId, s: &PortalSettings, now: i64) -> Result<()> {
        use crate::PortalStore;
        if let Some(existing) = self.portal(portal).await? {
            return if existing.alias == s.alias {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!(
                    "portal id {portal} (it is `{}` on this server)",
                    existing.alias
                )))
            };
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE counters SET value = $1 WHERE name = 'portal' AND value < $1")
            .bind(portal.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portals (id, alias, name, owner_id, language, time_zone, status, is_default, created_at, modified_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)",
        )
        .bind(portal.0)
        .bind(&s.alias)
        .bind(&s.name)
        .bind(s.owner_id.to_string())
        .bind(&s.language)
        .bind(&s.time_zone)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(crate::conflict(|| format!("portal `{}` (another portal has this alias)", s.alias)))?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_portal_status(&self, portal: PortalId, status: i64, _now: i64) -> Result<()> {
        sqlx::query("UPDATE portals SET status = $2 WHERE id = $1")
            .bind(portal.0)
            .bind(status)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_parameter_on_postgres_only() {
        assert_eq!(placeholders(Engine::Postgres, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(Engine::Sqlite, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(Engine::Postgres, 1, 1), "($1)");
    }
}
