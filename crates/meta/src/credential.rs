//! Credentials: sign-in sessions and API keys. Only digests of their secrets are stored.

use crate::{conflict, Result, RowExt, SqlStore};
use backspace_types::{KeyId, PortalId, SessionId, UserId};
use sqlx::any::AnyRow;

/// A sign-in session. `digest` is the digest of its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub portal_id: PortalId,
    pub user_id: UserId,
    pub digest: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// An API key. `digest` is the digest of the key; `postfix` its last four characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub portal_id: PortalId,
    pub user_id: UserId,
    pub name: String,
    pub digest: String,
    pub postfix: String,
    /// Empty means unrestricted.
    pub permissions: Vec<String>,
    pub is_active: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used: Option<i64>,
}

const SESSION_COLUMNS: &str = "digest, id, portal_id, user_id, created_at, expires_at";
const KEY_COLUMNS: &str =
    "digest, id, portal_id, user_id, name, postfix, permissions, is_active, created_at, expires_at, last_used";

fn session_from_row(row: &AnyRow) -> Result<Session> {
    Ok(Session {
        id: row.parsed("id")?,
        portal_id: row.portal()?,
        user_id: row.parsed("user_id")?,
        digest: row.text("digest")?,
        created_at: row.i64("created_at")?,
        expires_at: row.opt_i64("expires_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.parsed("id")?,
        portal_id: row.portal()?,
        user_id: row.parsed("user_id")?,
        name: row.text("name")?,
        digest: row.text("digest")?,
        postfix: row.text("postfix")?,
        // Permission names contain no spaces; the list is stored space-separated.
        permissions: row.text("permissions")?.split_whitespace().map(str::to_owned).collect(),
        is_active: row.flag("is_active")?,
        created_at: row.i64("created_at")?,
        expires_at: row.opt_i64("expires_at")?,
        last_used: row.opt_i64("last_used")?,
    })
}

/// Sessions and API keys.
#[async_trait::async_trait]
pub trait CredentialStore: Send + Sync {
    async fn create_session(&self, session: &Session) -> Result<()>;
    async fn session_by_digest(&self, portal: PortalId, digest: &str) -> Result<Option<Session>>;
    async fn delete_session(&self, portal: PortalId, digest: &str) -> Result<()>;
    /// Removes every session that expired before `now`.
    async fn purge_sessions(&self, now: i64) -> Result<u64>;

    async fn create_key(&self, key: &ApiKey) -> Result<()>;
    async fn key_by_digest(&self, portal: PortalId, digest: &str) -> Result<Option<ApiKey>>;
    async fn key(&self, portal: PortalId, id: KeyId) -> Result<Option<ApiKey>>;
    /// Keys of the portal, or only those `owner` made.
    async fn keys(&self, portal: PortalId, owner: Option<UserId>) -> Result<Vec<ApiKey>>;
    /// Writes name, permissions and activity of an existing key.
    async fn update_key(&self, key: &ApiKey) -> Result<()>;
    async fn delete_key(&self, portal: PortalId, id: KeyId) -> Result<bool>;
    async fn touch_key(&self, portal: PortalId, id: KeyId, now: i64) -> Result<()>;

    /// The failed sign-ins at (`login_digest`, `address`) since `since`: how many, and the
    /// time of the oldest.
    async fn login_failures(&self, login_digest: &str, address: &str, since: i64) -> Result<(u64, Option<i64>)>;
    /// Records a failed sign-in at `now`, and forgets every failure (of any pair) before `since`.
    async fn add_login_failure(&self, login_digest: &str, address: &str, now: i64, since: i64) -> Result<()>;
    /// Forgets the failures of a pair (its sign-in succeeded).
    async fn clear_login_failures(&self, login_digest: &str, address: &str) -> Result<()>;
}

#[async_trait::async_trait]
impl CredentialStore for SqlStore {
    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&s.digest)
        .bind(s.id.to_string())
        .bind(s.portal_id.0)
        .bind(s.user_id.to_string())
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(conflict(|| "session".to_owned()))?;
        Ok(())
    }

    async fn session_by_digest(&self, portal: PortalId, digest: &str) -> Result<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE portal_id = $1 AND digest = $2"
        ))
        .bind(portal.0)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn delete_session(&self, portal: PortalId, digest: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE portal_id = $1 AND digest = $2")
            .bind(portal.0)
            .bind(digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_key(&self, k: &ApiKey) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&k.digest)
        .bind(k.id.to_string())
        .bind(k.portal_id.0)
        .bind(k.user_id.to_string())
        .bind(&k.name)
        .bind(&k.postfix)
        .bind(k.permissions.join(" "))
        .bind(i64::from(k.is_active))
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.last_used)
        .execute(&self.pool)
        .await
        .map_err(conflict(|| format!("api key `{}`", k.id)))?;
        Ok(())
    }

    async fn key_by_digest(&self, portal: PortalId, digest: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE portal_id = $1 AND digest = $2"
        ))
        .bind(portal.0)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn key(&self, portal: PortalId, id: KeyId) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE portal_id = $1 AND id = $2"
        ))
        .bind(portal.0)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn keys(&self, portal: PortalId, owner: Option<UserId>) -> Result<Vec<ApiKey>> {
        let rows = match owner {
            None => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE portal_id = $1 ORDER BY created_at, id"
                ))
                .bind(portal.0)
                .fetch_all(&self.pool)
                .await?
            }
            Some(user) => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE portal_id = $1 AND user_id = $2 ORDER BY created_at, id"
                ))
                .bind(portal.0)
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    async fn update_key(&self, k: &ApiKey) -> Result<()> {
        sqlx::query("UPDATE api_keys SET name = $3, permissions = $4, is_active = $5 WHERE portal_id = $1 AND id = $2")
            .bind(k.portal_id.0)
            .bind(k.id.to_string())
            .bind(&k.name)
            .bind(k.permissions.join(" "))
            .bind(i64::from(k.is_active))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_key(&self, portal: PortalId, id: KeyId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE portal_id = $1 AND id = $2")
            .bind(portal.0)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_key(&self, portal: PortalId, id: KeyId, now: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used = $3 WHERE portal_id = $1 AND id = $2")
            .bind(portal.0)
            .bind(id.to_string())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn login_failures(&self, login_digest: &str, address: &str, since: i64) -> Result<(u64, Option<i64>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM login_failures
             WHERE login_digest = $1 AND address = $2 AND at_ms >= $3",
        )
        .bind(login_digest)
        .bind(address)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        use crate::RowExt;
        Ok((row.i64("n")?.max(0) as u64, row.opt_i64("oldest")?))
    }

    async fn add_login_failure(&self, login_digest: &str, address: &str, now: i64, since: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE at_ms < $1")
            .bind(since)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO login_failures (login_digest, address, at_ms) VALUES ($1, $2, $3)")
            .bind(login_digest)
            .bind(address)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn clear_login_failures(&self, login_digest: &str, address: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE login_digest = $1 AND address = $2")
            .bind(login_digest)
            .bind(address)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
