//! Services: portals, people, sign-in and API keys, and the folder tree with its files.
//!
//! This crate owns the rules (who may do what, what a valid name is, what a credential is
//! worth). It sees the metadata store and the blob store only through their traits and knows
//! nothing of HTTP: handlers call one method here and convert its result. Backup, restore and
//! the job runner land here as further services.

mod auth;
pub mod backup;
mod caller;
mod error;
mod files;
mod keys;
pub mod metrics;
mod paging;
mod password;
mod people;
mod portal;
mod secrets;
mod throttle;
mod token;

pub use auth::{Credential, SignedIn};
pub use caller::{Caller, Scopes, Via};
pub use error::{Error, Result};
pub use files::{Directory, FileOperation, FolderContent, FolderInfo, Located, Rights, Upload};
pub use password::{client_hash, PasswordParams};
pub use portal::{GeneratedOwner, OwnerSeed, RegisterOutcome};
pub use throttle::LoginThrottle;
pub use token::same as constant_time_eq;

use backspace_meta::MetaStore;
use backspace_storage::BlobStore;
use std::sync::Arc;
use std::time::Duration;

/// Settings the services need; the server's config fills them.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Lifetime of a sign-in session.
    pub session_lifetime: Duration,
    /// The PBKDF2 salt DocSpace clients hash passwords with (`GET /api/2.0/settings`).
    pub password_salt: String,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Failed sign-ins allowed per (login, address) in [`Settings::login_window`].
    pub login_attempts: usize,
    pub login_window: Duration,
    pub backup: backup::BackupSettings,
    /// This instance's name in job leases; stable across restarts of the same instance, so a
    /// restart fails its own interrupted jobs at once.
    pub instance: String,
    /// How long a job's lease lasts without renewal; a job of a dead instance is failed by
    /// another within about this long.
    pub job_lease: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::from_secs(365 * 24 * 3600),
            password_salt: "backspace".to_owned(),
            max_upload_bytes: 1 << 30,
            login_attempts: 5,
            login_window: Duration::from_secs(60),
            backup: backup::BackupSettings::default(),
            instance: "backspace".to_owned(),
            job_lease: Duration::from_secs(30),
        }
    }
}

/// The services, shared by every request.
pub struct Core {
    store: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    settings: Settings,
    throttle: LoginThrottle,
    operations: files::OperationLog,
    jobs: backup::JobRegistry,
    repositories: backup::Repositories,
    metrics: Arc<metrics::Metrics>,
    /// Made on first use: deriving its key takes a moment and a database read.
    secrets: tokio::sync::OnceCell<secrets::SecretBox>,
}

impl Core {
    pub fn new(store: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, settings: Settings) -> Self {
        let throttle = LoginThrottle::new(settings.login_attempts, settings.login_window);
        Self {
            store,
            blobs,
            settings,
            throttle,
            operations: files::OperationLog::default(),
            jobs: backup::JobRegistry::default(),
            repositories: backup::Repositories::default(),
            metrics: Arc::default(),
            secrets: tokio::sync::OnceCell::new(),
        }
    }

    /// Seals and opens stored credentials (see [`secrets`]).
    pub(crate) async fn secrets(&self) -> Result<&secrets::SecretBox> {
        self.secrets
            .get_or_try_init(|| {
                let passphrase = self.settings.backup.repository.passphrase.as_ref().map(|p| p.expose());
                secrets::SecretBox::new(self.store.as_ref(), passphrase)
            })
            .await
    }

    /// This process's metrics (`GET /metrics`).
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<dyn MetaStore> {
        &self.store
    }

    /// The jobs this instance runs.
    pub fn jobs(&self) -> &backup::JobRegistry {
        &self.jobs
    }
}

/// What `GET /readyz` checks: each dependency and, when it failed, why.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    pub database: Option<String>,
    pub storage: Option<String>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database.is_none() && self.storage.is_none()
    }
}

impl Core {
    /// Checks that the metadata database answers a query and the file storage answers a
    /// lookup, each within `timeout`.
    pub async fn readiness(&self, timeout: Duration) -> Readiness {
        let database = match tokio::time::timeout(timeout, self.store.portal(backspace_types::PortalId(0))).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("the metadata database failed: {e}")),
            Err(_) => Some(format!(
                "the metadata database did not answer within {} s",
                timeout.as_secs()
            )),
        };
        let probe = backspace_storage::BlobKey::new("readyz-probe".to_owned());
        let storage = match probe {
            Err(e) => Some(e.to_string()),
            Ok(key) => match tokio::time::timeout(timeout, self.blobs.size(&key)).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    self.metrics.storage_error();
                    Some(format!("the file storage failed: {e}"))
                }
                Err(_) => Some(format!(
                    "the file storage did not answer within {} s",
                    timeout.as_secs()
                )),
            },
        };
        Readiness { database, storage }
    }
}
