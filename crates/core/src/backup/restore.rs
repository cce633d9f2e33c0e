//! `startrestore`: verify the whole archive, lock the portal, stage the files beside the live
//! ones, then swap the rows in one transaction.
//!
//! Nothing of the portal changes until the archive has been read completely and every digest,
//! path and entry checked (a first pass). The second pass stages file bytes under new keys; the
//! swap is one database transaction; only after it commits are the replaced bytes deleted. A
//! failure at any point before the commit deletes the staged bytes and leaves the portal as it
//! was. Entry names are never used as paths: bytes go to keys this code makes.

use super::jobs::JobContext;
use super::run::job_message;
use super::stage::{StagedFiles, Stager};
use super::stream::StreamReader;
use super::target::local_path_under_roots;
use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_format::{ArchiveReader, Compression, EntryPath, FormatError, Manifest};
use backspace_meta::{job_status, Job, JobEnd, JobKind, Snapshot};
use backspace_storage::{BlobKey, BlobStore, ByteStream};
use backspace_types::datetime::now_ms;
use backspace_types::dto::backup::RestoreRequest;
use backspace_types::{FileId, PortalId, StorageType, TaskId};
use std::io::Read;
use std::sync::Arc;

/// The source of a restore from an uploaded file (not a storage type a client can name).
const UPLOAD_SOURCE: i64 = -1;

/// The phase of a restore whose rows are swapped in: it has happened, whatever stops it after.
pub(crate) const SWAPPED: &str = "swapped";

/// Where the archive to restore is.
#[derive(Clone, Debug)]
struct Source {
    storage_type: i64,
    path: String,
    file_name: String,
    /// The portal whose records, files or upload hold the archive.
    owner: PortalId,
    /// The storage parameters (JSON) of a third-party source.
    params: String,
}

impl Source {
    /// Where the archive is, as a record would say.
    fn stored(&self) -> super::target::Stored<'_> {
        super::target::Stored {
            portal: self.owner,
            storage_type: self.storage_type,
            path: &self.path,
            params: std::borrow::Cow::Borrowed(&self.params),
        }
    }
}

/// A repository snapshot to restore from, read entry by entry.
struct RepoSource {
    repo: Arc<backspace_repo::Repository>,
    snapshot: Arc<backspace_repo::Snapshot>,
    index: Arc<backspace_repo::Index>,
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("The backup file is invalid: {e}"))
}

impl Core {
    /// `POST /api/2.0/backup/startrestore`.
    pub async fn start_restore(self: &Arc<Self>, caller: &Caller, req: RestoreRequest) -> Result<Job> {
        let dump = req.dump == Some(true);
        // A whole-server job is the job of the pseudo-portal DUMP_PORTAL.
        let job_portal = self.scope(caller, dump)?;
        let backup_id = req
            .backupid
            .ok_or_else(|| Error::validation("BackupId", "The BackupId field is required."))?;
        let source = match backup_id.trim().parse::<TaskId>() {
            Ok(id) => {
                let record = self
                    .store
                    .record(job_portal, id)
                    .await?
                    .filter(|r| !r.removed)
                    .ok_or_else(|| Error::NotFound("Unable to find the specified file.".to_owned()))?;
                Source {
                    owner: record.portal_id,
                    storage_type: record.storage_type,
                    path: record.storage_path,
                    file_name: record.file_name,
                    params: record.storage_params,
                }
            }
            Err(_) => {
                if dump && req.storagetype.unwrap_or(StorageType::Documents) == StorageType::Documents {
                    return Err(Error::BadRequest(
                        "a whole-server restore reads a Local file or a backupId".to_owned(),
                    ));
                }
                self.restore_source_from_file(caller, req.storagetype, req.storageparams.unwrap_or_default())
                    .await?
            }
        };
        // Restoring under a running backup would delete bytes the backup is still reading.
        if self.job_running(job_portal, JobKind::Backup).await? {
            return Err(Error::InvalidOperation(
                "A backup of this portal is running; restore when it has finished".to_owned(),
            ));
        }
        let now = now_ms();
        let job = Job {
            ..Job::queued(
                job_portal,
                JobKind::Restore,
                source.storage_type,
                serde_json::json!({ "filePath": source.path }).to_string(),
                Some(caller.user.id),
                now,
            )
        };
        let (job, created) = self.store.start_job(&job).await?;
        if created {
            let lease = now + self.settings.job_lease.as_millis() as i64;
            self.store.renew_lease(job.id, &self.settings.instance, lease).await?;
            let core = self.clone();
            let id = job.id;
            // backspace sends no mail: `notify` is recorded here, where DocSpace would mail.
            let notify = req.notify.unwrap_or(false);
            let detail = format!(
                "notify: {notify}; from {}",
                if dump {
                    "a whole-server backup"
                } else {
                    "a portal backup"
                }
            );
            self.audit(caller.portal.id, Some(caller.user.id), "RestoreStarted", detail)
                .await;
            let caller = caller.clone();
            tokio::spawn(async move { core.run_restore(job_portal, source, id, caller).await });
        }
        Ok(job)
    }

    async fn restore_source_from_file(
        &self,
        caller: &Caller,
        storage: Option<StorageType>,
        params: std::collections::BTreeMap<String, String>,
    ) -> Result<Source> {
        let storage = storage.unwrap_or(StorageType::Documents);
        // A file uploaded through /backupFileUpload.ashx wins for Local, as in DocSpace (which
        // then ignores filePath).
        if storage == StorageType::Local {
            if let Some(file_name) = self.completed_upload(caller.portal.id).await? {
                return Ok(Source {
                    owner: caller.portal.id,
                    storage_type: UPLOAD_SOURCE,
                    path: String::new(),
                    file_name,
                    params: String::new(),
                });
            }
        }
        let path = params
            .get("filepath")
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::BadRequest("filePath is required to restore from a file".to_owned()))?;
        match storage {
            StorageType::Documents => {
                let id: FileId = path
                    .parse()
                    .map_err(|_| Error::NotFound("The required file was not found".to_owned()))?;
                let file = self.file(caller, id).await?;
                Ok(Source {
                    owner: caller.portal.id,
                    storage_type: 0,
                    path: id.to_string(),
                    file_name: file.item.title,
                    params: String::new(),
                })
            }
            StorageType::Local => {
                let canonical = local_path_under_roots(&self.settings.backup.local_roots, &path, false)?;
                // The roots are the server's: a portal's admin does not restore the backup of
                // another portal of this server from there (it would read that portal's files).
                // A whole-server archive is refused later for what it is; the server's own
                // admins may read any.
                let owners = self
                    .store
                    .portals_with_record_at(3, &canonical.display().to_string())
                    .await?;
                let foreign = owners
                    .iter()
                    .any(|p| *p != caller.portal.id && *p != super::DUMP_PORTAL);
                if foreign && !self.is_server_admin(caller) {
                    return Err(Error::InvalidOperation(
                        "This file is a backup of another portal on this server".to_owned(),
                    ));
                }
                let file_name = canonical
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(Source {
                    owner: caller.portal.id,
                    storage_type: 3,
                    path: canonical.display().to_string(),
                    file_name,
                    params: String::new(),
                })
            }
            StorageType::ThridpartyDocuments => {
                // A provider file id (`sbox-3|name`), or a name inside the connected folder.
                let (folder_id, key) = match super::provider::parse_entry_id(&path) {
                    Some((id, rel)) => (format!("sbox-{id}"), rel),
                    None => {
                        let provider =
                            self.store.backup_provider(caller.portal.id).await?.ok_or_else(|| {
                                Error::NotFound("no third-party backup folder is connected".to_owned())
                            })?;
                        (format!("sbox-{}", provider.id), path.trim_matches('/').to_owned())
                    }
                };
                let (provider, _) = self.provider_folder(caller.portal.id, &folder_id).await?;
                let key = BlobKey::new(key).map_err(|e| Error::BadRequest(format!("filePath `{path}`: {e}")))?;
                let store = Self::provider_store(&provider)?;
                match store.size(&key).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(Error::NotFound("The required file was not found".to_owned())),
                    Err(e) => return Err(Error::StorageUnavailable(format!("the WebDAV folder failed: {e}"))),
                }
                Ok(Source {
                    owner: caller.portal.id,
                    storage_type: 1,
                    file_name: key.as_str().rsplit('/').next().unwrap_or_default().to_owned(),
                    path: key.to_string(),
                    params: serde_json::json!({ "folderId": folder_id }).to_string(),
                })
            }
            StorageType::ThirdPartyConsumer => {
                let consumer = self.resolve_consumer(caller.portal.id, &params).await?;
                // `filePath` names the object inside the backup sub-folder (DocSpace's subdir).
                let name = path.trim_start_matches('/');
                let name = name
                    .strip_prefix(&format!("{}/", super::consumer::SUBDIR))
                    .unwrap_or(name);
                let key = consumer.key(name)?;
                let store = self.consumer_store(caller.portal.id, &consumer).await?;
                match store.size(&key).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(Error::NotFound("The required file was not found".to_owned())),
                    Err(e) => {
                        return Err(Error::StorageUnavailable(format!(
                            "the {} failed: {e}",
                            consumer.describe()
                        )))
                    }
                }
                Ok(Source {
                    owner: caller.portal.id,
                    storage_type: 5,
                    file_name: key.as_str().rsplit('/').next().unwrap_or_default().to_owned(),
                    path: key.to_string(),
                    params: serde_json::to_string(&consumer.params).unwrap_or_else(|_| "{}".into()),
                })
            }
            StorageType::DataStore => Err(Error::BadRequest(
                "restore a DataStore backup by its backupId".to_owned(),
            )),
            StorageType::CustomCloud => Err(Error::BadRequest("Unknown storage type.".to_owned())),
        }
    }

    async fn run_restore(self: Arc<Self>, portal: PortalId, source: Source, id: TaskId, caller: Caller) {
        let ctx = self.jobs.register(id, portal, "restore");
        let started = std::time::Instant::now();
        tracing::info!(job = %id, portal = %portal, source = %source.file_name, "restore started");
        ctx.set("verify", 0);
        let watcher = self.watch_job(ctx.clone());
        let result = self.restore_into(portal, &source, &ctx).await;
        watcher.stop().await;
        let end = match &result {
            Ok(()) => JobEnd {
                status: job_status::COMPLETED,
                ..JobEnd::default()
            },
            Err(e) => {
                tracing::warn!(job = %id, portal = %portal, error = %e, "restore failed");
                JobEnd {
                    status: job_status::COMPLETED,
                    error: job_message(e),
                    ..JobEnd::default()
                }
            }
        };
        let outcome = if end.error.is_empty() {
            crate::metrics::Outcome::Succeeded
        } else {
            crate::metrics::Outcome::Failed
        };
        self.metrics.job("restore", outcome, started.elapsed());
        if let Err(Error::StorageUnavailable(_)) = &result {
            self.metrics.storage_error();
        }
        tracing::info!(job = %id, portal = %portal, outcome = outcome.label(), millis = started.elapsed().as_millis() as u64, "restore ended");
        let (action, detail) = if end.error.is_empty() {
            ("RestoreCompleted", String::new())
        } else {
            ("RestoreFailed", end.error.clone())
        };
        self.audit(caller.portal.id, Some(caller.user.id), action, detail).await;
        if let Err(e) = self.store.finish_job(id, &end, now_ms()).await {
            tracing::error!(job = %id, error = %e, "recording the end of a restore failed");
        }
        self.jobs.remove(id);
    }

    /// Deletes the file bytes of `portal` (of every portal for [`super::DUMP_PORTAL`]) that no
    /// file row uses: what a restore stopped by a crash had staged. For recovery only, while
    /// the portal is still locked by that restore, so no upload is under way into it.
    pub(crate) async fn drop_unreferenced_files(&self, portal: PortalId) -> Result<usize> {
        let portals = if portal == super::DUMP_PORTAL {
            self.store.portals().await?.into_iter().map(|p| p.id).collect()
        } else {
            vec![portal]
        };
        let mut dropped = 0;
        for p in portals {
            let prefix = crate::portal::portal_prefix(p)
                .join("files")
                .map_err(|e| Error::Internal(e.to_string()))?;
            let used: std::collections::HashSet<String> = self
                .store
                .snapshot(p)
                .await?
                .files
                .into_iter()
                .map(|f| f.blob_key)
                .collect();
            let unused: Vec<String> = self
                .blobs
                .list(&prefix)
                .await?
                .into_iter()
                .map(|k| k.to_string())
                .filter(|k| !used.contains(k))
                .collect();
            dropped += unused.len();
            self.delete_blobs(unused).await;
        }
        Ok(dropped)
    }

    async fn keep_document_archives(&self, portal: PortalId, snap: &mut Snapshot) -> Result<()> {
        let folders: std::collections::HashSet<_> = snap.folders.iter().map(|f| f.id).collect();
        let documents = super::storage_number(StorageType::Documents);
        for record in self.store.records(portal).await? {
            let Ok(id) = record.storage_path.parse::<FileId>() else {
                continue;
            };
            if record.storage_type != documents || snap.files.iter().any(|f| f.id == id) {
                continue;
            }
            if let Some(file) = self.store.file(portal, id).await? {
                if folders.contains(&file.folder_id) {
                    snap.files.push(file);
                }
            }
        }
        Ok(())
    }

    async fn open_source(&self, source: &Source) -> Result<ByteStream> {
        if source.storage_type == UPLOAD_SOURCE {
            return self.open_upload(source.owner).await;
        }
        self.open_archive(source.stored()).await
    }

    /// The repository snapshot a source is, when it is one.
    async fn source_repository(&self, source: &Source) -> Result<Option<RepoSource>> {
        if source.storage_type == UPLOAD_SOURCE {
            return Ok(None);
        }
        let Some((location, repo)) = self.stored_repository(&source.stored()).await? else {
            return Ok(None);
        };
        let fail = |e: backspace_repo::RepoError| Error::Internal(format!("the repository at {location}: {e}"));
        let snapshot = repo.snapshot(&source.path).await.map_err(fail)?;
        let index = Arc::new(repo.load_index().await.map_err(fail)?);
        Ok(Some(RepoSource {
            repo,
            snapshot: Arc::new(snapshot),
            index,
        }))
    }

    async fn restore_into(&self, portal: PortalId, source: &Source, ctx: &JobContext) -> Result<()> {
        let compression = Compression::from_file_name(&source.file_name).unwrap_or(Compression::Zstd);
        let handle = tokio::runtime::Handle::current();
        let dump = portal == super::DUMP_PORTAL;

        // A repository snapshot needs no first pass: every chunk is authenticated as it is read,
        // and every file is checked against its row before the swap, as below.
        let repo_source = self.source_repository(source).await?;
        let (meta, total) = match &repo_source {
            Some(r) => (r.snapshot.meta.clone(), r.snapshot.size()),
            None => {
                // First pass: the whole archive is verified, and what it holds checked, before
                // anything changes.
                let data = self.open_source(source).await?;
                let reader = StreamReader::new(data, handle.clone());
                let target = (!dump).then_some(portal);
                let manifest = tokio::task::spawn_blocking(move || survey(reader, compression, target))
                    .await
                    .map_err(|e| Error::Internal(format!("verifying the archive stopped: {e}")))?
                    .map_err(invalid)?;
                let total = manifest.entries.iter().map(|e| e.size).sum();
                (manifest.meta, total)
            }
        };
        let kind = meta.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        match (dump, kind) {
            (false, "portal") | (true, "server") => {}
            (false, "server") => return Err(invalid("it is a whole-server backup: restore it with dump: true")),
            (true, "portal") => return Err(invalid("it is a portal backup: restore it without dump")),
            _ => return Err(invalid("it is not a backspace portal or server backup")),
        }
        ctx.set("lock", 10);

        // The portals the restore touches are locked until it ends.
        let locked: Vec<PortalId> = if dump {
            let listed: Vec<i64> = meta
                .get("portals")
                .and_then(|p| p.as_array())
                .map(|a| a.iter().filter_map(|p| p.get("id").and_then(|i| i.as_i64())).collect())
                .unwrap_or_default();
            let mut existing = Vec::new();
            for id in listed {
                if self.store.portal(PortalId(id)).await?.is_some() {
                    existing.push(PortalId(id));
                }
            }
            existing
        } else {
            vec![portal]
        };
        for p in &locked {
            self.store.set_portal_status(*p, 4, now_ms()).await?;
        }
        let outcome = self
            .stage_and_swap(portal, source, repo_source, compression, total, ctx)
            .await;
        // Portals created by the restore were never locked; every touched one ends active.
        for p in &locked {
            if let Err(e) = self.store.set_portal_status(*p, 0, now_ms()).await {
                tracing::error!(portal = %p, error = %e, "unlocking a portal after a restore failed");
            }
        }
        outcome
    }

    /// Second pass: file bytes are staged under new keys, then each portal's rows are swapped in
    /// one transaction. `portal` is the target, or [`super::DUMP_PORTAL`] for a server archive
    /// whose entries are `portals/{id}/…`.
    async fn stage_and_swap(
        &self,
        portal: PortalId,
        source: &Source,
        repo_source: Option<RepoSource>,
        compression: Compression,
        total: u64,
        ctx: &JobContext,
    ) -> Result<()> {
        let handle = tokio::runtime::Handle::current();
        let dump = portal == super::DUMP_PORTAL;
        let reader = match &repo_source {
            Some(_) => None,
            None => Some(StreamReader::new(self.open_source(source).await?, handle.clone())),
        };
        let staged: StagedFiles = Arc::default();
        let stager = Stager::new(
            self.blobs.clone(),
            handle.clone(),
            (!dump).then_some(portal),
            staged.clone(),
            total,
            ctx.clone(),
        );
        let pass =
            tokio::task::spawn_blocking(move || -> std::result::Result<Vec<(PortalId, Snapshot)>, FormatError> {
                match (reader, repo_source) {
                    (Some(reader), _) => {
                        let mut in_flight = std::collections::VecDeque::new();
                        ArchiveReader::new(reader, compression).read_all(
                            &mut |path: &EntryPath, size: u64, entry: &mut dyn Read| {
                                let mut entry = std::io::BufReader::with_capacity(256 * 1024, entry);
                                stager.entry(path, size, None, &mut entry, &mut in_flight)
                            },
                        )?;
                        stager.drain(&mut in_flight)?;
                    }
                    (None, Some(r)) => stager.repository(&r.repo, &r.index, &r.snapshot)?,
                    (None, None) => return Err(FormatError::Visitor("no source to restore from".into())),
                }
                stager.finish()
            });
        let committed: std::sync::Mutex<std::collections::HashSet<String>> = Default::default();
        let started = std::time::Instant::now();
        let outcome = async {
            let snapshots = pass
                .await
                .map_err(|e| Error::Internal(format!("reading the archive stopped: {e}")))?
                .map_err(invalid)?;
            // Every staged byte is durable before any row points at it (`Stager::finish`).
            // Every snapshot is checked against its staged bytes before any portal changes.
            let mut plans = Vec::with_capacity(snapshots.len());
            {
                let staged_files = staged.lock().unwrap_or_else(|p| p.into_inner());
                tracing::info!(
                    job = %ctx.id,
                    portal = %ctx.portal,
                    files = staged_files.len(),
                    bytes = staged_files.values().map(|s| s.size).sum::<u64>(),
                    millis = started.elapsed().as_millis() as u64,
                    "restore: files staged"
                );
                for (target, mut snap) in snapshots {
                    for f in &mut snap.files {
                        let s = staged_files
                            .get(&(target, f.id))
                            .ok_or_else(|| invalid(format!("the bytes of file {} are missing", f.id)))?;
                        if s.size != f.size.max(0) as u64 || (!f.blake3.is_empty() && s.blake3 != f.blake3) {
                            return Err(invalid(format!("the bytes of file {} do not match its row", f.id)));
                        }
                        f.blob_key = s.key.clone();
                    }
                    plans.push((target, snap));
                }
            }
            ctx.set("swap", 75);
            let mut used = std::collections::HashSet::new();
            let mut replaced_all = Vec::new();
            let last = plans.len().saturating_sub(1);
            for (i, (target, mut snap)) in plans.into_iter().enumerate() {
                if dump {
                    self.store.ensure_portal(target, &snap.settings, now_ms()).await?;
                }
                // Archives of later backups kept in the portal's own folders survive the
                // restore when their folder does: the history still lists them.
                self.keep_document_archives(target, &mut snap).await?;
                // The last swap records that the restore happened, in its own transaction.
                let fence = backspace_meta::SwapFence {
                    job: ctx.id,
                    owner: &self.settings.instance,
                    phase: (i == last).then_some((SWAPPED, 90)),
                };
                let replaced = self
                    .store
                    .restore_snapshot(target, &snap, now_ms(), Some(&fence))
                    .await?;
                let keys: Vec<String> = snap.files.iter().map(|f| f.blob_key.clone()).collect();
                committed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(keys.iter().cloned());
                used.extend(keys);
                replaced_all.extend(replaced);
            }
            // The restore has happened (the job says so since the last swap's commit): a stop
            // from here on is reported as its success. Written again, in case the watcher wrote
            // the phase before the swap over it meanwhile.
            ctx.set(SWAPPED, 90);
            if let Err(e) = self
                .store
                .set_job_progress(ctx.id, job_status::RUNNING, 90, SWAPPED, now_ms())
                .await
            {
                tracing::warn!(job = %ctx.id, error = %e, "recording the end of a restore's swap failed");
            }
            // Staged entries no row uses are dropped.
            let unused: Vec<String> = staged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|s| s.key.clone())
                .filter(|k| !used.contains(k))
                .collect();
            if !unused.is_empty() {
                self.store.add_blob_garbage(portal, &unused, now_ms()).await?;
            }
            replaced_all.extend(unused);
            tracing::info!(job = %ctx.id, portal = %ctx.portal, millis = started.elapsed().as_millis() as u64, "restore: rows swapped");
            // The rows no longer point at these: they go after the job reports its end.
            Ok(replaced_all)
        }
        .await;
        let outcome = match outcome {
            Ok(garbage) => {
                let bytes: u64 = staged
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .map(|s| s.size)
                    .sum();
                self.metrics.restored(bytes);
                // Recorded as garbage in the swap's transaction: a stop before this finishes
                // leaves them to the cleaner.
                let (store, blobs) = (self.store.clone(), self.blobs.clone());
                tokio::spawn(async move {
                    super::history::collect_blob_garbage(store.as_ref(), blobs.as_ref(), garbage).await;
                });
                Ok(())
            }
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            // Bytes staged for a portal whose swap did not commit are dropped. (A server restore
            // that failed half-way keeps the portals it already swapped; their bytes stay.)
            let committed = committed.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let leftovers: Vec<String> = staged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|s| s.key.clone())
                .filter(|k| !committed.contains(k))
                .collect();
            // Recorded first: what the store refuses to delete now, the cleaner deletes later.
            if let Err(e) = self.store.add_blob_garbage(portal, &leftovers, now_ms()).await {
                tracing::warn!(error = %e, "recording the staged files of a failed restore as garbage failed");
            }
            super::history::collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), leftovers).await;
        }
        outcome
    }
}

/// The first pass over an archive: reads all of it, verifying paths, entry kinds, sizes and
/// digests against the manifest, and checks that it holds what a restore can put back: one
/// snapshot of each portal, no entries a backup does not write, and the bytes of every file row,
/// of the row's size and digest. So an archive that says something impossible is refused before
/// the portal is locked. `portal` is the target, or `None` for a whole-server archive. The second
/// pass checks what it stages again: the archive is read twice and trusted neither time.
fn survey(input: impl Read, compression: Compression, portal: Option<PortalId>) -> Result<Manifest, FormatError> {
    use super::stage::{entry_target, file_of, read_snapshot};
    let fail = |m: String| FormatError::Visitor(m);
    let mut snapshots: Vec<(PortalId, Snapshot)> = Vec::new();
    // The first entry that cannot be restored; the rest is still read and verified.
    let mut problem: Option<FormatError> = None;
    let manifest = ArchiveReader::new(input, compression).read_all(|path, size, entry| {
        if problem.is_some() {
            return Ok(());
        }
        let checked = entry_target(portal, path).and_then(|(target, name)| {
            if name == super::SNAPSHOT_ENTRY {
                if snapshots.iter().any(|(t, _)| *t == target) {
                    return Err(fail(format!("entry `{path}` appears twice")));
                }
                snapshots.push((target, read_snapshot(path, size, entry)?));
            } else if file_of(&name).is_none() {
                return Err(fail(format!("unexpected entry `{path}`")));
            }
            Ok(())
        });
        problem = checked.err();
        Ok(())
    })?;
    // An archive of the other kind (portal or whole server) is refused by the caller as such,
    // which says more than its entries' names would.
    let want = if portal.is_some() { "portal" } else { "server" };
    if manifest.meta.get("kind").and_then(|k| k.as_str()) != Some(want) {
        return Ok(manifest);
    }
    if let Some(p) = problem {
        return Err(p);
    }
    if snapshots.is_empty() {
        return Err(fail(format!("the archive has no {}", super::SNAPSHOT_ENTRY)));
    }
    let lines: std::collections::HashMap<&str, &backspace_format::ManifestEntry> =
        manifest.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    for (target, snap) in &snapshots {
        let prefix = match portal {
            Some(_) => String::new(),
            None => format!("portals/{target}/"),
        };
        for f in &snap.files {
            let line = lines
                .get(format!("{prefix}{}", super::file_entry(f.id)).as_str())
                .ok_or_else(|| fail(format!("the bytes of file {} are missing", f.id)))?;
            if line.size != f.size.max(0) as u64 || (!f.blake3.is_empty() && line.blake3 != f.blake3) {
                return Err(fail(format!("the bytes of file {} do not match its row", f.id)));
            }
        }
    }
    Ok(manifest)
}
