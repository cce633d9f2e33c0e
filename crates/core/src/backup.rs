//! Backups and restores of a portal: jobs, archives, targets, history, schedules.
//!
//! A backup is a consistent snapshot of one portal (its rows, read in one read transaction,
//! and the bytes of the files those rows reference) written as one self-contained archive
//! (`backspace-format`) straight to its target as a stream: nothing is buffered whole, and the
//! archive appears under its final name only when complete and durable. Only then is the
//! history record written.

mod audit;
mod consumer;
mod history;
mod jobs;
mod link;
mod provider;
mod repository;
mod restore;
mod run;
mod schedule;
mod stage;
mod stream;
mod target;
mod upload;

pub use consumer::{public_params, ConsumerView, Module, Prop};
pub(crate) use history::collect_blob_garbage;
pub use history::{parse_date, CLEANER_LEASE_MS};
pub use jobs::JobRegistry;
pub use provider::{ConnectProvider, ProviderView};
pub use repository::{Repositories, VerifyReport};
pub use schedule::{cron_for, next_fire, parse_cron};
pub use upload::{UploadState, CHUNK_SIZE};

use backspace_format::Compression;
use backspace_storage::BlobStore;
use backspace_types::StorageType;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the backup service.
#[derive(Clone, Debug)]
pub struct BackupSettings {
    /// Directories under which `Local` backups may be written and read. Empty: `Local` is off.
    pub local_roots: Vec<PathBuf>,
    pub compression: Compression,
    /// How long a `DataStore` backup (and its download link) lives.
    pub datastore_ttl: Duration,
    pub repository: RepositorySettings,
    /// A fault-injection hook for tests: wraps the store of every backup repository opened
    /// (Local, DataStore and consumer targets). `None`, as in production, leaves them alone.
    pub repository_store: Option<StoreWrapper>,
}

/// Wraps a store, given the repository's location key (`local:{dir}`, `datastore`,
/// `consumer:…`). Tests put `backspace_storage::faulty` stores under the server with it.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct StoreWrapper(pub Arc<dyn Fn(&str, Arc<dyn BlobStore>) -> Arc<dyn BlobStore> + Send + Sync>);

impl std::fmt::Debug for StoreWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreWrapper")
    }
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            local_roots: Vec::new(),
            compression: Compression::Zstd,
            datastore_ttl: Duration::from_secs(24 * 3600),
            repository: RepositorySettings::default(),
            repository_store: None,
        }
    }
}

/// A passphrase: never printed.
#[derive(Clone)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(p: String) -> Self {
        Self(p)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

/// Backup repositories: `Local`, `DataStore` and `ThirdPartyConsumer` backups go into a
/// deduplicating repository at the target, encrypted with the passphrase (or, only when asked
/// explicitly, unencrypted). Without either, and for the targets named in `archive_targets`,
/// each backup is one plain archive.
#[derive(Clone, Debug, Default)]
pub struct RepositorySettings {
    pub passphrase: Option<Passphrase>,
    pub unencrypted: bool,
    /// `local`, `datastore`, `consumer`: targets that keep plain archives.
    pub archive_targets: Vec<String>,
}

impl RepositorySettings {
    /// Whether repositories are on at all.
    pub fn enabled(&self) -> bool {
        self.passphrase.is_some() || self.unencrypted
    }
}

/// The pseudo-portal of whole-server (`dump`) jobs, history records and schedules, as DocSpace's
/// tenant -1.
pub const DUMP_PORTAL: backspace_types::PortalId = backspace_types::PortalId(-1);

/// A whole-server (`dump`) backup goes to `Local` or `DataStore`: a room, a portal's WebDAV
/// folder and a portal's consumer keys belong to one portal.
pub(crate) fn check_dump_target(dump: bool, storage: Option<StorageType>) -> crate::Result<()> {
    if dump && !matches!(storage, Some(StorageType::Local | StorageType::DataStore)) {
        return Err(crate::Error::BadRequest(
            "a whole-server (dump) backup goes to Local or DataStore".to_owned(),
        ));
    }
    Ok(())
}

/// The archive entry holding the portal's rows.
pub(crate) const SNAPSHOT_ENTRY: &str = "portal.json";

/// The archive entry of a file's bytes.
pub(crate) fn file_entry(id: backspace_types::FileId) -> String {
    format!("files/{id}")
}

pub(crate) fn storage_number(t: StorageType) -> i64 {
    use backspace_types::lenient::LenientEnum;
    t.number()
}

pub(crate) fn storage_from_number(n: i64) -> Option<StorageType> {
    use backspace_types::lenient::LenientEnum;
    StorageType::from_number(n)
}
