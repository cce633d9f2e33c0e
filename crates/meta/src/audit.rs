//! The audit log of a portal.

use crate::{Result, RowExt, SqlStore};
use backspace_types::{PortalId, UserId};

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: uuid::Uuid,
    pub portal_id: PortalId,
    pub at: i64,
    pub user_id: Option<UserId>,
    /// `BackupStarted`, `RestoreStarted`, … as DocSpace names them.
    pub action: String,
    pub detail: String,
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_event(&self, event: &AuditEvent) -> Result<()>;
    /// The portal's newest events, newest first.
    async fn events(&self, portal: PortalId, limit: i64) -> Result<Vec<AuditEvent>>;
}

#[async_trait::async_trait]
impl AuditStore for SqlStore {
    async fn record_event(&self, e: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, portal_id, at, user_id, action, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.id.to_string())
        .bind(e.portal_id.0)
        .bind(e.at)
        .bind(e.user_id.map(|u| u.to_string()))
        .bind(&e.action)
        .bind(&e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn events(&self, portal: PortalId, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, portal_id, at, user_id, action, detail FROM audit_events WHERE portal_id = $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(portal.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    id: row.parsed("id")?,
                    portal_id: row.portal()?,
                    at: row.i64("at")?,
                    user_id: row.opt_parsed("user_id")?,
                    action: row.text("action")?,
                    detail: row.text("detail")?,
                })
            })
            .collect()
    }
}
