//! The metadata store: every row of every portal, on SQLite (the embedded default) or
//! PostgreSQL, through one migration set and one store trait, [`MetaStore`].
//!
//! This crate owns SQL. It knows the DocSpace enums it stores but nothing of HTTP, sessions'
//! wire forms or blob bytes. Rules every query here keeps:
//! * **tenant isolation**: every statement on a portal's table filters on `portal_id`; the
//!   methods take the [`PortalId`] explicitly, so a caller cannot forget it;
//! * **portable SQL**: `$n` placeholders, BIGINT for integers and booleans, TEXT for GUIDs,
//!   Unix milliseconds for times, so both engines run the same statements through sqlx `Any`;
//! * **writers first**: a transaction that writes starts with a write (usually taking an id
//!   from `counters`), so SQLite takes its write lock at once instead of failing to upgrade a
//!   read lock under contention.

mod audit;
mod credential;
mod job;
mod portal;
mod record;
mod snapshot;
mod thirdparty;
mod tree;
mod user;

pub use audit::{AuditEvent, AuditStore};
pub use credential::{ApiKey, CredentialStore, Session};
pub use job::{status as job_status, Job, JobEnd, JobKind, JobStore};
pub use portal::{NewPortal, Portal, PortalStore};
pub use record::{BackupRecord, RecordStore, Schedule};
pub use snapshot::{PortalSettings, Snapshot, SnapshotStore, SwapFence};
pub use thirdparty::{BackupProvider, ThirdPartyStore};
pub use tree::{File, Folder, NewFile, NewFolder, TreeStore};
pub use user::{NewUser, User, UserQuery, UserStore};

use backspace_types::PortalId;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};
use std::str::FromStr;
use std::time::Duration;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; names what already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A stored value cannot be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database engine behind a [`SqlStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Every store trait at once: what the services hold.
pub trait MetaStore:
    PortalStore
    + UserStore
    + CredentialStore
    + TreeStore
    + JobStore
    + RecordStore
    + SnapshotStore
    + AuditStore
    + ThirdPartyStore
{
    fn engine(&self) -> Engine;
}

/// The SQL implementation of [`MetaStore`] for both engines.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    engine: Engine,
}

impl SqlStore {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::Db(sqlx::Error::Configuration(
                format!(
                    "unsupported database url `{}`: use sqlite:// or postgres://",
                    redact(url)
                )
                .into(),
            )));
        };
        let sqlite = engine == Engine::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // A writer (a restore swapping 100k rows) may hold the lock for seconds:
                        // other writers wait for it rather than fail.
                        sqlx::Executor::execute(&mut *conn, "PRAGMA busy_timeout = 60000").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        if sqlite {
            // Write-ahead logging: readers (progress polls, listings) never wait for a writer,
            // and a reader's transaction sees one point in time. The mode is kept in the file.
            let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode = WAL").fetch_one(&pool).await?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "SQLite refused write-ahead logging; readers may wait for writers");
            }
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, engine })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl MetaStore for SqlStore {
    fn engine(&self) -> Engine {
        self.engine
    }
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Takes the next value of a named counter. Being a write, it also makes SQLite take the write
/// lock at the start of the transaction.
pub(crate) async fn next_id(conn: &mut AnyConnection, counter: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
            .bind(counter)
            .fetch_one(conn)
            .await?,
    )
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
pub(crate) fn conflict(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(e),
    }
}

/// Typed column access with errors that name the column.
pub(crate) trait RowExt {
    fn i64(&self, col: &str) -> Result<i64>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.i64(col)? != 0)
    }
    fn parsed<T: FromStr>(&self, col: &str) -> Result<T> {
        let text = self.text(col)?;
        text.parse()
            .map_err(|_| StoreError::Corrupt(format!("column `{col}` holds `{text}`")))
    }
    fn opt_parsed<T: FromStr>(&self, col: &str) -> Result<Option<T>> {
        match self.opt_text(col)? {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("column `{col}` holds `{text}`"))),
        }
    }
    fn portal(&self) -> Result<PortalId> {
        Ok(PortalId(self.i64("portal_id")?))
    }
}

impl RowExt for AnyRow {
    fn i64(&self, col: &str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
}

/// Decodes an enum stored as its DocSpace number.
pub(crate) fn stored_enum<E: backspace_types::lenient::LenientEnum>(value: i64, col: &str) -> Result<E> {
    E::from_number(value).ok_or_else(|| StoreError::Corrupt(format!("column `{col}` holds {value}")))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
