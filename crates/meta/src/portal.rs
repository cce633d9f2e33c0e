//! Portals (DocSpace "tenants").

use crate::user::{insert_user, NewUser, User};
use crate::{conflict, next_id, Result, RowExt, SqlStore, StoreError};
use backspace_types::{PortalId, UserId};
use sqlx::any::AnyRow;

/// A portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    pub id: PortalId,
    /// Lower-case alias; also the name of backups (`{alias}_{date}`).
    pub alias: String,
    pub name: String,
    pub owner_id: UserId,
    pub language: String,
    pub time_zone: String,
    /// DocSpace `TenantStatus`: 0 Active.
    pub status: i64,
    /// The portal requests fall back to when neither `Origin` nor `Host` names one.
    pub is_default: bool,
    pub created_at: i64,
    pub modified_at: i64,
}

/// What creating a portal needs.
#[derive(Clone, Debug)]
pub struct NewPortal {
    pub alias: String,
    pub name: String,
    pub language: String,
    pub time_zone: String,
    pub is_default: bool,
    pub now: i64,
}

const COLUMNS: &str = "id, alias, name, owner_id, language, time_zone, status, is_default, created_at, modified_at";

fn from_row(row: &AnyRow) -> Result<Portal> {
    Ok(Portal {
        id: PortalId(row.i64("id")?),
        alias: row.text("alias")?,
        name: row.text("name")?,
        owner_id: row.parsed("owner_id")?,
        language: row.text("language")?,
        time_zone: row.text("time_zone")?,
        status: row.i64("status")?,
        is_default: row.flag("is_default")?,
        created_at: row.i64("created_at")?,
        modified_at: row.i64("modified_at")?,
    })
}

/// Portals.
#[async_trait::async_trait]
pub trait PortalStore: Send + Sync {
    /// Creates a portal with its owner, its rooms root and archive, and the owner's own
    /// sections, in one transaction. `Conflict` when the alias is taken.
    async fn create_portal(&self, portal: NewPortal, owner: NewUser) -> Result<(Portal, User)>;
    async fn portal(&self, id: PortalId) -> Result<Option<Portal>>;
    async fn portal_by_alias(&self, alias: &str) -> Result<Option<Portal>>;
    async fn default_portal(&self) -> Result<Option<Portal>>;
    async fn portals(&self) -> Result<Vec<Portal>>;
    /// Deletes the portal and every row of it (people, credentials, folders, files), in one
    /// transaction. Returns the blob keys its files referenced, for the caller to delete; the
    /// same commit records them as garbage.
    async fn delete_portal(&self, id: PortalId) -> Result<Vec<String>>;
}

#[async_trait::async_trait]
impl PortalStore for SqlStore {
    async fn create_portal(&self, portal: NewPortal, owner: NewUser) -> Result<(Portal, User)> {
        let mut tx = self.pool.begin().await?;
        let id = PortalId(next_id(&mut tx, "portal").await?);
        let alias = portal.alias.clone();
        sqlx::query(&format!(
            "INSERT INTO portals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)"
        ))
        .bind(id.0)
        .bind(&portal.alias)
        .bind(&portal.name)
        .bind(owner.id.to_string())
        .bind(&portal.language)
        .bind(&portal.time_zone)
        .bind(i64::from(portal.is_default))
        .bind(portal.now)
        .execute(&mut *tx)
        .await
        .map_err(conflict(|| format!("portal `{alias}`")))?;
        crate::tree::insert_portal_roots(&mut tx, id, owner.id, portal.now).await?;
        let owner = insert_user(&mut tx, id, owner).await?;
        tx.commit().await?;
        let created = self
            .portal(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("portal `{id}`")))?;
        Ok((created, owner))
    }

    async fn portal(&self, id: PortalId) -> Result<Option<Portal>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM portals WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn portal_by_alias(&self, alias: &str) -> Result<Option<Portal>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM portals WHERE alias = $1"))
            .bind(alias.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn default_portal(&self) -> Result<Option<Portal>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM portals WHERE is_default = 1 ORDER BY id LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn portals(&self) -> Result<Vec<Portal>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM portals ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn delete_portal(&self, id: PortalId) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        // The delete of the portal row comes first: it is the write that takes SQLite's lock.
        let deleted = sqlx::query("DELETE FROM portals WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("portal `{id}`")));
        }
        let blobs: Vec<String> = sqlx::query_scalar("SELECT blob_key FROM files WHERE portal_id = $1")
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await?;
        for table in ["files", "folders", "api_keys", "sessions", "users"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE portal_id = $1"))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        // Garbage from this commit on: a stop before the bytes are deleted leaves them to the
        // cleaner.
        crate::snapshot::insert_garbage(self.engine, &mut tx, id, &blobs, backspace_types::datetime::now_ms()).await?;
        tx.commit().await?;
        Ok(blobs)
    }
}
