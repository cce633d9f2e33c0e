//! Third-party storage settings of a portal, and named worker leases.

use crate::{next_id, Result, RowExt, SqlStore};
use backspace_types::PortalId;

/// A portal's connected backup folder on a WebDAV server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupProvider {
    pub portal_id: PortalId,
    /// The provider's id, as in the folder id `sbox-{id}`.
    pub id: i64,
    /// As the client named it (`WebDav`, `Nextcloud`, …).
    pub provider_key: String,
    pub title: String,
    pub url: String,
    pub login: String,
    pub password: String,
    pub created_at: i64,
}

/// Consumer credentials, the backup provider, and worker leases.
#[async_trait::async_trait]
pub trait ThirdPartyStore: Send + Sync {
    /// The saved properties (a JSON object) of a consumer of the portal.
    async fn consumer_props(&self, portal: PortalId, name: &str) -> Result<Option<String>>;
    /// Saves (or, with `None`, clears) a consumer's properties; true when something changed.
    async fn set_consumer_props(&self, portal: PortalId, name: &str, props: Option<&str>, now: i64) -> Result<bool>;

    async fn backup_provider(&self, portal: PortalId) -> Result<Option<BackupProvider>>;
    /// Connects the portal's backup provider, or updates the one it has (keeping its id).
    async fn set_backup_provider(&self, provider: &BackupProvider) -> Result<BackupProvider>;

    /// Takes or renews the lease `name` for `owner` until `until`; false while another owner
    /// holds an unexpired lease. One instance at a time runs what the lease guards.
    async fn try_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool>;
}

#[async_trait::async_trait]
impl ThirdPartyStore for SqlStore {
    async fn consumer_props(&self, portal: PortalId, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT props FROM consumer_settings WHERE portal_id = $1 AND name = $2")
                .bind(portal.0)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_consumer_props(&self, portal: PortalId, name: &str, props: Option<&str>, now: i64) -> Result<bool> {
        let done = match props {
            Some(props) => {
                sqlx::query(
                    "INSERT INTO consumer_settings (portal_id, name, props, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (portal_id, name) DO UPDATE SET props = $3, updated_at = $4 \
                     WHERE consumer_settings.props <> $3",
                )
                .bind(portal.0)
                .bind(name)
                .bind(props)
                .bind(now)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM consumer_settings WHERE portal_id = $1 AND name = $2")
                    .bind(portal.0)
                    .bind(name)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }

    async fn backup_provider(&self, portal: PortalId) -> Result<Option<BackupProvider>> {
        let row = sqlx::query(
            "SELECT portal_id, id, provider_key, title, url, login, password, created_at \
             FROM backup_providers WHERE portal_id = $1",
        )
        .bind(portal.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(BackupProvider {
                portal_id: row.portal()?,
                id: row.i64("id")?,
                provider_key: row.text("provider_key")?,
                title: row.text("title")?,
                url: row.text("url")?,
                login: row.text("login")?,
                password: row.text("password")?,
                created_at: row.i64("created_at")?,
            })
        })
        .transpose()
    }

    async fn set_backup_provider(&self, p: &BackupProvider) -> Result<BackupProvider> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE backup_providers SET provider_key = $2, title = $3, url = $4, login = $5, password = $6 \
             WHERE portal_id = $1",
        )
        .bind(p.portal_id.0)
        .bind(&p.provider_key)
        .bind(&p.title)
        .bind(&p.url)
        .bind(&p.login)
        .bind(&p.password)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let id = next_id(&mut tx, "provider").await?;
            sqlx::query(
                "INSERT INTO backup_providers (portal_id, id, provider_key, title, url, login, password, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(p.portal_id.0)
            .bind(id)
            .bind(&p.provider_key)
            .bind(&p.title)
            .bind(&p.url)
            .bind(&p.login)
            .bind(&p.password)
            .bind(p.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.backup_provider(p.portal_id)
            .await?
            .ok_or_else(|| crate::StoreError::NotFound("backup provider".into()))
    }

    async fn try_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO worker_leases (name, owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = $2, lease_until = $3 \
             WHERE worker_leases.owner = $2 OR worker_leases.lease_until < $4",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
