//! Backups into repositories: `Local`, `DataStore` and `ThirdPartyConsumer` targets keep a
//! deduplicating, encrypted repository (`backspace-repo`) instead of one archive per backup.
//!
//! A record of a repository backup says so in its parameters (`repository` = the location's
//! key) and keeps the snapshot id (its task id) as its path. Downloading and restoring read a
//! standard archive that is built on the fly from the snapshot, so every consumer of archives
//! works unchanged. Deleting a record deletes its snapshot and starts a garbage collection of
//! the repository at once; a collection that meets a running backup is retried when that
//! backup ends (and by the cleaner).

use super::jobs::JobContext;
use super::run::Produced;
use super::stream::{cancelled, channel, open_blob, StreamReader};
use super::target::{Stored, Target};
use super::SNAPSHOT_ENTRY;
use crate::caller::Caller;
use crate::metrics::Collection;
use crate::{Core, Error, Result};
use backspace_format::{ArchiveWriter, EntryPath};
use backspace_repo::{RepoError, Repository, Secret};
use backspace_storage::{BlobKey, BlobStore, ByteStream, LocalStore, PrefixStore};
use backspace_types::{PortalId, StorageType, TaskId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The record parameter that marks a repository backup.
pub(crate) const REPOSITORY_PARAM: &str = "repository";

/// Open repositories by location, and the garbage collections running or waiting for them.
#[derive(Default)]
pub struct Repositories {
    open: tokio::sync::Mutex<HashMap<String, Arc<Repository>>>,
    collectors: Arc<Mutex<HashMap<String, Arc<Collector>>>>,
    /// Locations collected at least once by this process's cleaner.
    collected: Mutex<HashSet<String>>,
    /// Whether the cleaner has opened the repositories the records name (once per process).
    scanned: AtomicBool,
}

/// The one collection task of a repository in this process. Requests made while it runs are
/// coalesced into one more pass (`again`), so a delete made during a collection is still
/// collected; a pass deferred by a running backup waits for [`DEFERRED_RETRY`] or until woken
/// by the end of a backup here.
#[derive(Default)]
struct Collector {
    again: AtomicBool,
    wake: tokio::sync::Notify,
}

/// How long a deferred collection waits before it looks at the locks again (a backup on
/// another instance, or another instance's collection, holds the repository).
const DEFERRED_RETRY: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest wait between retries of a collection that failed.
const FAILED_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(300);

/// The answer of `verifybackup`: the backup read back completely.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// The backup's id (its history record).
    pub id: TaskId,
    /// True when every chunk (or, for a plain archive, every entry) passed its checks.
    pub ok: bool,
    /// How many distinct chunks (or archive entries) were read and checked.
    pub checked_chunks: u64,
    /// The chunks (or entries) that are missing or fail their checks.
    pub damaged: Vec<String>,
}

fn repo_error(what: &str) -> impl Fn(RepoError) -> Error + '_ {
    move |e| match e {
        RepoError::Storage(s) => Error::StorageUnavailable(format!("the repository at {what} failed: {s}")),
        RepoError::Cancelled => Error::Internal(cancelled().to_string()),
        RepoError::Input(io) => Error::Internal(io.to_string()),
        RepoError::NoSnapshot(id) => Error::NotFound(format!("the backup `{id}` is not in the repository at {what}")),
        other => Error::Internal(format!("the repository at {what}: {other}")),
    }
}

/// The repository writer id of a backup job.
fn writer_id(job: TaskId) -> String {
    job.0.simple().to_string()
}

/// One portal of a backup: its `portal.json` and `files/{id}` entries (prefixed in a server
/// backup).
pub(crate) struct PortalPart {
    pub prefix: String,
    pub snapshot: backspace_meta::Snapshot,
}

impl Core {
    /// The name of a target for `archive_targets`.
    fn target_kind(target: &Target) -> Option<&'static str> {
        match target {
            Target::Local { .. } => Some("local"),
            Target::DataStore => Some("datastore"),
            Target::Consumer(_) => Some("consumer"),
            _ => None,
        }
    }

    /// The repository a target's backups go into, with its location key; `None` when the
    /// target keeps plain archives.
    pub(crate) async fn target_repository(
        &self,
        portal: PortalId,
        target: &Target,
    ) -> Result<Option<(String, Arc<Repository>)>> {
        let settings = &self.settings.backup.repository;
        let Some(kind) = Self::target_kind(target) else {
            return Ok(None);
        };
        if !settings.enabled() || settings.archive_targets.iter().any(|t| t == kind) {
            return Ok(None);
        }
        self.repository_of(portal, target).await.map(Some)
    }

    /// Opens (or creates) the repository of a target.
    async fn repository_of(&self, portal: PortalId, target: &Target) -> Result<(String, Arc<Repository>)> {
        let (location, store): (String, Arc<dyn BlobStore>) = match target {
            Target::DataStore => (
                "datastore".to_owned(),
                Arc::new(PrefixStore::new(self.blobs.clone(), "repository")?),
            ),
            Target::Local { dir } => {
                let path = dir.join("backspace-repository");
                let store = LocalStore::open(&path).await.map_err(|e| {
                    Error::Internal(format!(
                        "the repository directory `{}` cannot be used: {e}",
                        path.display()
                    ))
                })?;
                (format!("local:{}", dir.display()), Arc::new(store))
            }
            Target::Consumer(consumer) => {
                let store = self.consumer_store(portal, consumer).await?;
                let place = format!(
                    "consumer:{}:{}:{}",
                    consumer.module.key(),
                    consumer.params.get("serviceurl").map_or("", String::as_str),
                    consumer.describe()
                );
                (
                    place,
                    Arc::new(PrefixStore::new(Arc::new(store), "backup/backspace-repository")?),
                )
            }
            _ => return Err(Error::Internal("this target has no repository".into())),
        };
        let mut open = self.repositories.open.lock().await;
        if let Some(repo) = open.get(&location) {
            return Ok((location, repo.clone()));
        }
        let store = match &self.settings.backup.repository_store {
            Some(wrap) => (wrap.0)(&location, store),
            None => store,
        };
        let settings = &self.settings.backup.repository;
        let secret = match &settings.passphrase {
            Some(p) => Secret::Passphrase(p.expose()),
            None if settings.unencrypted => Secret::Unencrypted,
            None => {
                return Err(Error::BadRequest(
                    "this backup is in a repository, and the server has no repository passphrase: set BACKSPACE_REPOSITORY_PASSPHRASE".to_owned(),
                ))
            }
        };
        let repo = Repository::open_or_create(store, secret).await.map_err(|e| match e {
            RepoError::WrongPassphrase => Error::BadRequest(format!(
                "the repository at {location} does not open with the configured passphrase"
            )),
            other => repo_error(&location)(other),
        })?;
        // No collection of this instance runs in a repository it opens for the first time: the
        // locks of its collections are leftovers of a crash, holding off every writer.
        match repo.remove_gc_locks(&self.gc_owner()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(repository = %location, locks = n, "removed the locks of collections a stop interrupted")
            }
            Err(e) => {
                tracing::warn!(repository = %location, error = %e, "removing the locks of interrupted collections failed")
            }
        }
        let repo = Arc::new(repo);
        open.insert(location.clone(), repo.clone());
        Ok((location, repo))
    }

    /// The repository of a stored record, when it is a repository backup.
    pub(crate) async fn stored_repository(&self, stored: &Stored<'_>) -> Result<Option<(String, Arc<Repository>)>> {
        if !stored.is_repository() {
            return Ok(None);
        }
        let params = stored.params();
        let target = match super::storage_from_number(stored.storage_type) {
            Some(StorageType::DataStore) => Target::DataStore,
            Some(StorageType::Local) => Target::Local {
                dir: params
                    .get("filepath")
                    .map(Into::into)
                    .ok_or_else(|| Error::Internal("a Local repository record without its directory".into()))?,
            },
            Some(StorageType::ThirdPartyConsumer) => Target::Consumer(Self::stored_consumer(stored)?),
            _ => {
                return Err(Error::Internal(
                    "a repository record of an unexpected storage type".into(),
                ))
            }
        };
        self.repository_of(stored.portal, &target).await.map(Some)
    }

    /// Writes the portal parts as a snapshot of `repo`; the previous snapshot of the same
    /// portal in the same repository lets unchanged files be recognised from their digests.
    /// Returns what was written and how many files were left out because their bytes are gone.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_to_repository(
        &self,
        job_portal: PortalId,
        location: &str,
        repo: Arc<Repository>,
        parts: Vec<PortalPart>,
        ctx: &JobContext,
        now: i64,
        meta: serde_json::Value,
        file_name: String,
    ) -> Result<(Produced, usize)> {
        let previous_id = self
            .store
            .records(job_portal)
            .await?
            .into_iter()
            .filter(|r| {
                serde_json::from_str::<BTreeMap<String, String>>(&r.storage_params)
                    .ok()
                    .and_then(|p| p.get(REPOSITORY_PARAM).cloned())
                    .is_some_and(|l| l == location)
            })
            .max_by_key(|r| r.created_at)
            .map(|r| r.storage_path);
        let previous = match previous_id {
            Some(id) => repo.snapshot(&id).await.ok(),
            None => None,
        };
        let total: u64 = parts
            .iter()
            .map(|p| p.snapshot.files.iter().map(|f| f.size.max(0) as u64).sum::<u64>())
            .sum();
        let handle = tokio::runtime::Handle::current();
        let blobs = self.blobs.clone();
        let job = ctx.clone();
        let id = ctx.id.to_string();
        let what = location.to_owned();
        let writer_repo = repo.clone();
        let started = std::time::Instant::now();
        let written = tokio::task::spawn_blocking(move || -> Result<_> {
            let repo = writer_repo;
            let err = repo_error(&what);
            // Named after the job, so that a restart can remove the lock of a job it interrupted.
            let mut w = repo
                .named_writer(handle.clone(), previous, job.cancel.clone(), &writer_id(job.id))
                .map_err(&err)?;
            let mut done = 0u64;
            let mut missing = 0;
            for PortalPart { prefix, mut snapshot } in parts {
                // The rows of files left out (usually none); the rest stay where they are (a
                // large portal's rows are not copied into a second list).
                let mut left_out = HashSet::new();
                for f in &snapshot.files {
                    if job.is_cancelled() {
                        return Err(Error::Internal(cancelled().to_string()));
                    }
                    let size = f.size.max(0) as u64;
                    let name = format!("{prefix}{}", super::file_entry(f.id));
                    let digest = (!f.blake3.is_empty()).then_some(f.blake3.as_str());
                    let source = digest.map(|d| format!("blake3:{d}:{size}"));
                    match &source {
                        // Known from the previous backup: its chunks are in the repository.
                        Some(src) if w.knows(src, size) => {
                            w.add(&name, size, Some(src), digest, None).map_err(&err)?
                        }
                        _ => {
                            let key = BlobKey::new(f.blob_key.clone()).map_err(|e| Error::Internal(e.to_string()))?;
                            let opened = open_blob(blobs.as_ref(), &key, &handle);
                            let mut reader = match opened {
                                Ok(reader) => reader,
                                Err(backspace_storage::StorageError::NotFound(_)) => {
                                    tracing::warn!(file = %f.id, "file bytes missing; left out of the backup");
                                    left_out.insert(f.id);
                                    continue;
                                }
                                Err(e) => return Err(e.into()),
                            };
                            // Checked against the row as it is read: a file damaged on disk is
                            // found now, while the portal may still have a good copy elsewhere,
                            // not at the restore that needs it (and a restore of a repository
                            // backup then need not hash the files again).
                            match w.add(&name, size, source.as_deref(), digest, Some(&mut reader)) {
                                Ok(()) => {}
                                Err(RepoError::Mismatch(_)) => {
                                    tracing::warn!(file = %f.id, "file bytes do not match their digest (damaged); left out of the backup");
                                    left_out.insert(f.id);
                                    continue;
                                }
                                Err(e) => return Err(err(e)),
                            }
                        }
                    }
                    done += size;
                    job.set("files", (done * 90 / total.max(1)) as i64);
                }
                // Last, so that it lists exactly the files written.
                // Serialized straight into the chunker: the JSON of a large portal's rows is
                // never held whole.
                if !left_out.is_empty() {
                    snapshot.files.retain(|f| !left_out.contains(&f.id));
                    missing += left_out.len();
                }
                let produce =
                    |out: &mut dyn std::io::Write| serde_json::to_writer(out, &snapshot).map_err(std::io::Error::other);
                w.add_produced(&format!("{prefix}{SNAPSHOT_ENTRY}"), &produce)
                    .map_err(&err)?;
            }
            job.set("store", 90);
            w.finish(&id, now, meta)
                .map_err(&err)
                .map(|(snap, stats)| (snap, stats, missing))
        })
        .await
        .map_err(|e| Error::Internal(format!("the repository writer stopped: {e}")))?;
        let (snapshot, stats, missing) = match written {
            Ok(written) => written,
            Err(e) => {
                // What a failed writer could not remove (the store failed too) goes with a
                // collection, retried until the store answers again.
                self.spawn_gc(location.to_owned(), repo);
                return Err(e);
            }
        };
        tracing::info!(
            job = %ctx.id,
            portal = %ctx.portal,
            repository = location,
            millis = started.elapsed().as_millis() as u64,
            bytes = stats.bytes,
            read = stats.read,
            new_chunks = stats.new_chunks,
            reused_chunks = stats.reused_chunks,
            stored = stats.stored,
            "backup written to the repository"
        );
        self.gc_if_pending(location);
        let produced = Produced {
            file_name,
            storage_path: snapshot.id,
            hash: String::new(),
            size: snapshot.entries.iter().map(|e| e.size).sum(),
            warning: None,
            repository: Some(location.to_owned()),
        };
        Ok((produced, missing))
    }

    /// A standard archive of a snapshot, built on the fly.
    pub(crate) async fn repository_archive(
        &self,
        location: &str,
        repo: Arc<Repository>,
        id: &str,
    ) -> Result<ByteStream> {
        let err = repo_error(location);
        let snapshot = repo.snapshot(id).await.map_err(&err)?;
        let index = Arc::new(repo.load_index().await.map_err(&err)?);
        let compression = self.settings.backup.compression;
        let (writer, stream) = channel(Arc::new(AtomicBool::new(false)));
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let result = (|| -> std::io::Result<()> {
                let mut w = ArchiveWriter::new(writer, compression).map_err(std::io::Error::other)?;
                // One reader, pointed at each entry in turn.
                let mut reader: Option<backspace_repo::EntryReader> = None;
                for entry in &snapshot.entries {
                    let path = EntryPath::new(entry.name.clone()).map_err(std::io::Error::other)?;
                    let r = match &mut reader {
                        Some(r) => {
                            r.reset(entry).map_err(std::io::Error::other)?;
                            r
                        }
                        None => reader.insert(
                            repo.entry_reader(handle.clone(), index.clone(), entry)
                                .map_err(std::io::Error::other)?,
                        ),
                    };
                    w.add(&path, entry.size, r).map_err(std::io::Error::other)?;
                }
                let (writer, _) = w
                    .finish(snapshot.created, snapshot.meta.clone())
                    .map_err(std::io::Error::other)?;
                writer.close().map(|_| ())
            })();
            if let Err(e) = result {
                tracing::warn!(error = %e, "building an archive from the repository failed");
            }
        });
        Ok(stream)
    }

    /// Deletes a snapshot and collects the repository's garbage in the background.
    pub(crate) async fn delete_repository_backup(
        &self,
        location: String,
        repo: Arc<Repository>,
        id: &str,
    ) -> Result<()> {
        repo.delete_snapshot(id).await.map_err(repo_error(&location))?;
        self.spawn_gc(location, repo);
        Ok(())
    }

    /// Starts the repository's collection task, or asks the running one for another pass.
    fn spawn_gc(&self, location: String, repo: Arc<Repository>) {
        let collectors = self.repositories.collectors.clone();
        let owner = self.gc_owner();
        let metrics = self.metrics.clone();
        let collector = {
            let mut map = collectors.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(running) = map.get(&location) {
                running.again.store(true, Ordering::SeqCst);
                running.wake.notify_one();
                return;
            }
            let collector = Arc::new(Collector::default());
            map.insert(location.clone(), collector.clone());
            collector
        };
        tokio::spawn(async move {
            let mut failed_wait = std::time::Duration::from_secs(5);
            loop {
                collector.again.store(false, Ordering::SeqCst);
                let wait = match repo.gc_as(&owner).await {
                    Ok(report) if report.deferred => {
                        metrics.collection(Collection::Deferred);
                        tracing::info!(repository = %location, "garbage collection deferred: the repository is in use");
                        Some(DEFERRED_RETRY)
                    }
                    Ok(report) => {
                        metrics.collection(Collection::Done {
                            freed_bytes: report.freed_bytes,
                            deleted_packs: report.deleted_packs,
                        });
                        tracing::info!(repository = %location, freed = report.freed_bytes, deleted_packs = report.deleted_packs, repacked = report.repacked_packs, "garbage collected");
                        super::jobs::release_heap();
                        None
                    }
                    Err(e) => {
                        metrics.collection(Collection::Failed);
                        tracing::warn!(repository = %location, error = %e, retry_secs = failed_wait.as_secs(), "garbage collection failed; it will be retried");
                        let wait = failed_wait;
                        failed_wait = (failed_wait * 2).min(FAILED_RETRY_MAX);
                        Some(wait)
                    }
                };
                if let Some(wait) = wait {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = collector.wake.notified() => {}
                    }
                    continue;
                }
                // Done, unless asked again meanwhile: checked under the map's lock, so a request
                // either finds this task (and is served by another pass) or starts a new one.
                let mut map = collectors.lock().unwrap_or_else(|p| p.into_inner());
                if collector.again.load(Ordering::SeqCst) {
                    continue;
                }
                map.remove(&location);
                return;
            }
        });
    }

    /// After a restart, for a backup job this instance ran when it stopped: removes the job's
    /// writer lock from its repository (the process that held it is gone), and the snapshot it
    /// wrote unless its record was written, and collects the repository, so the packs the job
    /// left go now, not once the lock is stale (15 minutes) and something opens the repository
    /// again. Failures are logged: the lock then goes stale as before.
    pub(crate) async fn release_interrupted_writer(&self, job: &backspace_meta::Job, recorded: bool) {
        // The job keeps its target's parameters as a record does.
        let stored = Stored {
            portal: job.portal_id,
            storage_type: job.storage_type,
            path: "",
            params: std::borrow::Cow::Borrowed(&job.storage_params),
        };
        let target = match super::storage_from_number(job.storage_type) {
            Some(StorageType::DataStore) => Target::DataStore,
            Some(StorageType::Local) => match stored.params().get("filepath") {
                Some(dir) => Target::Local { dir: dir.into() },
                None => return,
            },
            Some(StorageType::ThirdPartyConsumer) => match Self::stored_consumer(&stored) {
                Ok(consumer) => Target::Consumer(consumer),
                Err(_) => return,
            },
            _ => return,
        };
        match self.target_repository(job.portal_id, &target).await {
            Ok(Some((location, repo))) => {
                if let Err(e) = repo.remove_writer_lock(&writer_id(job.id)).await {
                    tracing::warn!(job = %job.id, repository = %location, error = %e, "removing the lock of an interrupted backup failed");
                    return;
                }
                // A snapshot written just before the stop, whose record never came.
                if !recorded {
                    if let Err(e) = repo.delete_snapshot(&job.id.to_string()).await {
                        tracing::warn!(job = %job.id, repository = %location, error = %e, "removing the snapshot of an interrupted backup failed");
                    }
                }
                self.spawn_gc(location, repo);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "opening the repository of an interrupted backup failed")
            }
        }
    }

    /// Opens the repositories the history records name, and the `DataStore` repository when it
    /// exists (it may have no record left); failures are logged and left to the next start.
    async fn open_known_repositories(&self) {
        if !self.settings.backup.repository.enabled() {
            return;
        }
        let portals = match self.store.portals().await {
            Ok(portals) => portals.into_iter().map(|p| p.id).chain([super::DUMP_PORTAL]),
            Err(e) => return tracing::warn!(error = %e, "listing portals for the repositories' collection failed"),
        };
        for portal in portals {
            for record in self.store.records(portal).await.unwrap_or_default() {
                if let Err(e) = self.stored_repository(&Stored::of(&record)).await {
                    tracing::warn!(backup = %record.id, error = %e, "opening a backup's repository failed");
                }
            }
        }
        let config = BlobKey::new("repository/config").expect("a valid key");
        if let Ok(Some(_)) = self.blobs.size(&config).await {
            if let Err(e) = self.repository_of(super::DUMP_PORTAL, &Target::DataStore).await {
                tracing::warn!(error = %e, "opening the DataStore repository failed");
            }
        }
    }

    /// The prefix of this instance's collection locks: from its instance id, which no other
    /// running instance shares.
    fn gc_owner(&self) -> String {
        let digest = blake3::hash(self.settings.instance.as_bytes()).to_hex();
        format!("{}-", &digest[..16])
    }

    /// Wakes the repository's collection if one waits for the end of a backup.
    fn gc_if_pending(&self, location: &str) {
        let map = self.repositories.collectors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = map.get(location) {
            waiting.again.store(true, Ordering::SeqCst);
            waiting.wake.notify_one();
        }
    }

    /// The cleaner's step: collects once every open repository with no collection yet in this
    /// process, which covers deletes whose collection a restart interrupted. Its first step in
    /// a process opens the repositories the records name, and the `DataStore` one, for that.
    pub(crate) async fn run_pending_gc(&self) {
        if !self.repositories.scanned.swap(true, Ordering::SeqCst) {
            self.open_known_repositories().await;
        }
        let open: Vec<(String, Arc<Repository>)> = {
            let open = self.repositories.open.lock().await;
            open.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (location, repo) in open {
            let known = self
                .repositories
                .collected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(location.clone());
            if known {
                self.spawn_gc(location, repo);
            }
        }
    }

    /// `GET /api/2.0/backup/verifybackup/{id}`: reads a backup back completely.
    pub async fn verify_backup(&self, caller: &Caller, id: TaskId) -> Result<VerifyReport> {
        let record = self.caller_record(caller, id).await?;
        self.verify_record(&record).await
    }

    /// Verifies a record: every chunk of a repository backup, or a whole archive.
    pub async fn verify_record(&self, record: &backspace_meta::BackupRecord) -> Result<VerifyReport> {
        let stored = Stored::of(record);
        if let Some((location, repo)) = self.stored_repository(&stored).await? {
            let v = repo.verify(&record.storage_path).await.map_err(repo_error(&location))?;
            return Ok(VerifyReport {
                id: record.id,
                ok: v.damaged.is_empty(),
                checked_chunks: v.checked_chunks,
                damaged: v.damaged,
            });
        }
        let data = self.open_archive(stored).await?;
        let compression = backspace_format::Compression::from_file_name(&record.file_name)
            .unwrap_or(backspace_format::Compression::Zstd);
        let handle = tokio::runtime::Handle::current();
        let result =
            tokio::task::spawn_blocking(move || backspace_format::verify(StreamReader::new(data, handle), compression))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(match result {
            Ok(manifest) => VerifyReport {
                id: record.id,
                ok: true,
                checked_chunks: manifest.entries.len() as u64,
                damaged: Vec::new(),
            },
            Err(e) => {
                tracing::warn!(backup = %record.id, error = %e, "a backup archive fails verification");
                VerifyReport {
                    id: record.id,
                    ok: false,
                    checked_chunks: 0,
                    damaged: vec![record.file_name.clone()],
                }
            }
        })
    }

    /// Finds a record by id in any portal, whole-server records too (for signed links and the
    /// command line).
    pub async fn record_by_id(&self, id: TaskId) -> Result<Option<backspace_meta::BackupRecord>> {
        if let Some(r) = self.store.record(super::DUMP_PORTAL, id).await? {
            return Ok(Some(r));
        }
        for portal in self.store.portals().await? {
            if let Some(r) = self.store.record(portal.id, id).await? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}
