//! `startbackup`: checks, the job record, and the run that writes the archive.

use super::jobs::JobContext;
use super::stream::{cancelled, channel, open_blob};
use super::target::Target;
use super::{file_entry, SNAPSHOT_ENTRY};
use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_format::{ArchiveWriter, EntryPath};
use backspace_meta::{job_status, BackupRecord, Job, JobEnd, JobKind};
use backspace_storage::BlobKey;
use backspace_types::datetime::now_ms;
use backspace_types::{StorageType, TaskId};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a finished backup run produced.
pub(crate) struct Produced {
    pub file_name: String,
    pub storage_path: String,
    pub hash: String,
    pub size: u64,
    pub warning: Option<String>,
    /// The repository's location key, for a backup into a repository.
    pub repository: Option<String>,
}

const MISSING_WARNING: &str =
    "Some files were not included in the backup: their bytes are missing from storage or damaged. See the server log.";

/// Where an archive a run produced is, for deleting it again.
fn stored<'a>(
    portal: backspace_types::PortalId,
    target: &Target,
    path: &'a str,
    repository: Option<&str>,
) -> super::target::Stored<'a> {
    super::target::Stored {
        portal,
        storage_type: Core::storage_number_of(target),
        path,
        params: std::borrow::Cow::Owned(record_params(target, repository)),
    }
}

/// The parameters a record keeps: the target's, and the repository's location for a backup
/// into a repository.
fn record_params(target: &Target, repository: Option<&str>) -> String {
    let mut params = target.params();
    if let Some(location) = repository {
        params.insert(super::repository::REPOSITORY_PARAM.to_owned(), location.to_owned());
    }
    serde_json::to_string(&params).unwrap_or_else(|_| "{}".into())
}

/// `{alias}_{yyyy-MM-dd_HH-mm-ss}.{ext}` in UTC; the `n`th archive of a second (from 2) gets
/// `_{n}` before the extension.
fn archive_name(alias: &str, unix_ms: i64, ext: &str, n: u32) -> String {
    let t = backspace_types::plain_utc(unix_ms).replace('T', "_").replace(':', "-");
    if n < 2 {
        format!("{alias}_{t}.{ext}")
    } else {
        format!("{alias}_{t}_{n}.{ext}")
    }
}

fn io_to_error(e: io::Error) -> Error {
    Error::Internal(e.to_string())
}

fn format_error(e: backspace_format::FormatError) -> Error {
    match e {
        backspace_format::FormatError::Io(io) => io_to_error(io),
        other => Error::Internal(other.to_string()),
    }
}

impl Core {
    /// Whether the caller administers the whole server (dump operations): the owner of the
    /// default portal.
    pub fn is_server_admin(&self, caller: &Caller) -> bool {
        caller.portal.is_default && caller.is_owner()
    }

    /// `POST /api/2.0/backup/startbackup`: checks the target, records the job and starts it.
    /// A second start while a backup runs returns the running job.
    pub async fn start_backup(
        self: &Arc<Self>,
        caller: &Caller,
        storage: Option<StorageType>,
        params: Option<BTreeMap<String, String>>,
        dump: bool,
        scheduled: bool,
    ) -> Result<Job> {
        // A whole-server job is the job of the pseudo-portal DUMP_PORTAL.
        let job_portal = self.scope(caller, dump)?;
        super::check_dump_target(dump, storage)?;
        // A backup taken while a restore swaps the portal's rows would read half of each.
        if self.job_running(job_portal, JobKind::Restore).await? {
            return Err(Error::InvalidOperation(
                "A restore of this portal is running; start the backup when it has finished".to_owned(),
            ));
        }
        let storage = storage.unwrap_or(StorageType::Documents);
        let params = params.unwrap_or_default();
        let target = self.resolve_target(caller, storage, &params).await?;
        let now = now_ms();
        let job = Job {
            is_scheduled: scheduled,
            ..Job::queued(
                job_portal,
                JobKind::Backup,
                super::storage_number(storage),
                serde_json::to_string(&target.params()).unwrap_or_else(|_| "{}".into()),
                Some(caller.user.id),
                now,
            )
        };
        let (job, created) = self.store.start_job(&job).await?;
        if created {
            let lease = now + self.settings.job_lease.as_millis() as i64;
            self.store.renew_lease(job.id, &self.settings.instance, lease).await?;
            let action = if scheduled {
                "ScheduledBackupStarted"
            } else {
                "BackupStarted"
            };
            let what = if dump { "whole server" } else { "portal" };
            self.audit(
                caller.portal.id,
                Some(caller.user.id),
                action,
                format!("{what} to {storage:?}"),
            )
            .await;
            let core = self.clone();
            let caller = caller.clone();
            let id = job.id;
            tokio::spawn(async move { core.run_backup(caller, target, id, job_portal, scheduled).await });
        }
        Ok(job)
    }

    /// `POST /api/2.0/backup/cancelbackup`: true when a running backup was asked to stop. It
    /// stops within a second and its partial output is removed.
    pub async fn cancel_backup(&self, caller: &Caller) -> Result<bool> {
        // DocSpace cancels every backup job started from the portal, a whole-server one too.
        let mut portals = vec![caller.portal.id];
        if self.is_server_admin(caller) {
            portals.push(super::DUMP_PORTAL);
        }
        let mut cancelled = false;
        for portal in portals {
            let Some(job) = self.store.job(portal, JobKind::Backup).await? else {
                continue;
            };
            // The row first: a job that sees its flag may end at once, and then the row would
            // no longer take the request although the cancel is what stopped it.
            if !job.is_completed && self.store.request_cancel(portal, now_ms()).await? {
                self.jobs.cancel(job.id);
                cancelled = true;
            }
        }
        Ok(cancelled)
    }

    /// The portal's latest job of a kind, for the progress endpoints.
    pub async fn job(&self, portal: backspace_types::PortalId, kind: JobKind) -> Result<Option<Job>> {
        Ok(self.store.job(portal, kind).await?)
    }

    /// Runs a backup job. `portal` owns the job and the record: the caller's portal, or
    /// [`super::DUMP_PORTAL`] for a whole-server backup.
    async fn run_backup(
        self: Arc<Self>,
        caller: Caller,
        target: Target,
        id: TaskId,
        portal: backspace_types::PortalId,
        scheduled: bool,
    ) {
        let ctx = self.jobs.register(id, portal, "backup");
        let started = std::time::Instant::now();
        tracing::info!(job = %id, portal = %portal, alias = %caller.portal.alias, storage = ?target.storage_type(), scheduled, "backup started");
        ctx.set("snapshot", 0);
        let watcher = self.watch_job(ctx.clone());
        let result = self
            .write_backup(&caller, &target, &ctx, portal == super::DUMP_PORTAL)
            .await;
        watcher.stop().await;
        // A last look at the lease before the record is written: when another instance failed
        // this job meanwhile, the archive is removed and no record appears.
        if result.is_ok() && !ctx.is_cancelled() {
            let lease = now_ms() + self.settings.job_lease.as_millis() as i64;
            if let Ok(false) = self.store.renew_lease(id, &self.settings.instance, lease).await {
                tracing::warn!(job = %id, "the job's lease was lost to another instance; dropping its archive");
                ctx.cancel.store(true, Ordering::Relaxed);
            }
        }
        let now = now_ms();
        let size = result.as_ref().map(|p| p.size).unwrap_or(0);
        let storage_failed = matches!(result, Err(Error::StorageUnavailable(_)));
        let end = match result {
            Ok(_) | Err(_) if ctx.is_cancelled() => {
                if let Ok(p) = &result {
                    let _ = self
                        .delete_archive(stored(portal, &target, &p.storage_path, p.repository.as_deref()))
                        .await;
                }
                JobEnd {
                    status: job_status::CANCELED,
                    warning: Some("Backup cancelled".into()),
                    ..JobEnd::default()
                }
            }
            Ok(p) => match self.record_backup(portal, &target, id, scheduled, &p, now).await {
                Ok(link) => JobEnd {
                    status: job_status::COMPLETED,
                    warning: p.warning.clone(),
                    link,
                    ..JobEnd::default()
                },
                Err(e) => {
                    let _ = self
                        .delete_archive(stored(portal, &target, &p.storage_path, p.repository.as_deref()))
                        .await;
                    JobEnd {
                        status: job_status::COMPLETED,
                        error: job_message(&e),
                        ..JobEnd::default()
                    }
                }
            },
            Err(e) => {
                tracing::warn!(job = %id, portal = %caller.portal.alias, error = %e, "backup failed");
                JobEnd {
                    status: job_status::COMPLETED,
                    error: job_message(&e),
                    ..JobEnd::default()
                }
            }
        };
        let succeeded = end.error.is_empty() && end.status == job_status::COMPLETED;
        let outcome = match (end.status, succeeded) {
            (job_status::CANCELED, _) => crate::metrics::Outcome::Cancelled,
            (_, true) => crate::metrics::Outcome::Succeeded,
            (_, false) => crate::metrics::Outcome::Failed,
        };
        self.metrics.job("backup", outcome, started.elapsed());
        if succeeded {
            self.metrics.backed_up(size);
        }
        if storage_failed {
            self.metrics.storage_error();
        }
        tracing::info!(job = %id, portal = %portal, outcome = outcome.label(), millis = started.elapsed().as_millis() as u64, "backup ended");
        let (action, detail) = match (end.status, succeeded) {
            (job_status::CANCELED, _) => ("BackupCancelled", String::new()),
            (_, true) => ("BackupCompleted", String::new()),
            (_, false) => ("BackupFailed", end.error.clone()),
        };
        self.audit(caller.portal.id, Some(caller.user.id), action, detail).await;
        // Retention runs before the job reports completion: a finished scheduled job means the
        // old scheduled backups are already gone.
        if succeeded && scheduled {
            if let Err(e) = self.apply_retention(portal).await {
                tracing::warn!(portal = %caller.portal.alias, error = %e, "retention after a scheduled backup failed");
            }
        }
        if let Err(e) = self.store.finish_job(id, &end, now).await {
            tracing::error!(job = %id, error = %e, "recording the end of a backup failed");
        }
        self.jobs.remove(id);
    }

    /// Writes the history record of a stored archive; returns the download link, if any.
    async fn record_backup(
        &self,
        portal: backspace_types::PortalId,
        target: &Target,
        id: TaskId,
        scheduled: bool,
        p: &Produced,
        now: i64,
    ) -> Result<Option<String>> {
        let expires_at = (target.storage_type() == StorageType::DataStore)
            .then(|| now + self.settings.backup.datastore_ttl.as_millis() as i64);
        let record = BackupRecord {
            id,
            portal_id: portal,
            is_scheduled: scheduled,
            file_name: p.file_name.clone(),
            hash: p.hash.clone(),
            size: p.size as i64,
            storage_type: Self::storage_number_of(target),
            storage_path: p.storage_path.clone(),
            storage_params: record_params(target, p.repository.as_deref()),
            created_at: now,
            expires_at,
            removed: false,
        };
        // A consumer's link is the store's own, presigned for as long as a DataStore link lives.
        let link = match (target, expires_at) {
            (_, Some(at)) => Some(self.download_link(id, at).await?),
            // A repository backup has no object of its own: the link is the server's.
            (Target::Consumer(_), None) if p.repository.is_some() => Some(
                self.download_link(id, now + self.settings.backup.datastore_ttl.as_millis() as i64)
                    .await?,
            ),
            (Target::Consumer(consumer), None) => {
                self.presigned_link(portal, consumer, &p.storage_path, self.settings.backup.datastore_ttl)
                    .await?
            }
            _ => None,
        };
        self.store.insert_record(&record).await?;
        Ok(link)
    }

    /// Takes the snapshot and streams the archive to the target.
    /// A portal's snapshot as a backup holds it: earlier archives kept in its own folders and
    /// rows whose bytes are gone are left out (the second with a warning). Returns the
    /// snapshot and how many files were missing.
    /// `check_bytes: false` leaves the check of the bytes to the writer (a repository reads or
    /// recognises each file itself).
    async fn backup_snapshot(
        &self,
        portal: &backspace_meta::Portal,
        check_bytes: bool,
    ) -> Result<(backspace_meta::Snapshot, usize)> {
        let mut snap = self.store.snapshot(portal.id).await?;
        let archives: HashSet<String> = self
            .store
            .records(portal.id)
            .await?
            .into_iter()
            .filter(|r| r.storage_type == super::storage_number(StorageType::Documents))
            .map(|r| r.storage_path)
            .collect();
        snap.files.retain(|f| !archives.contains(&f.id.to_string()));
        if !check_bytes {
            return Ok((snap, 0));
        }
        let mut kept = Vec::with_capacity(snap.files.len());
        let mut missing = 0;
        for f in snap.files.drain(..) {
            let key = BlobKey::new(f.blob_key.clone()).map_err(|e| Error::Internal(e.to_string()))?;
            if self.blobs.size(&key).await?.is_some() {
                kept.push(f);
            } else {
                tracing::warn!(portal = %portal.alias, file = %f.id, "file bytes missing; left out of the backup");
                missing += 1;
            }
        }
        snap.files = kept;
        Ok((snap, missing))
    }

    /// The archive's name: DocSpace's, numbered when a record of the portal or a file in the
    /// `Local` folder already has it (two backups in one second must not overwrite each other).
    async fn free_archive_name(
        &self,
        portal: backspace_types::PortalId,
        target: &Target,
        alias: &str,
        now: i64,
        ext: &str,
    ) -> Result<String> {
        for n in 1..1000 {
            let name = archive_name(alias, now, ext, n);
            let on_disk = match target {
                Target::Local { dir } => tokio::fs::symlink_metadata(dir.join(&name)).await.is_ok(),
                _ => false,
            };
            if !on_disk && !self.store.record_named(portal, &name).await? {
                return Ok(name);
            }
        }
        Err(Error::InvalidOperation(format!(
            "every archive name of this second is taken ({})",
            archive_name(alias, now, ext, 1)
        )))
    }

    /// Takes the snapshot (of the portal, or of every portal for a whole-server backup) and
    /// streams the archive to the target. A server archive holds each portal under
    /// `portals/{id}/`.
    async fn write_backup(&self, caller: &Caller, target: &Target, ctx: &JobContext, dump: bool) -> Result<Produced> {
        if *target == Target::Unknown {
            return Err(Error::BadRequest("Unknown storage type.".to_owned()));
        }
        let portals = if dump {
            self.store.portals().await?
        } else {
            vec![caller.portal.clone()]
        };
        let now = now_ms();
        let compression = self.settings.backup.compression;
        // DocSpace names whole-server archives after `workspace`.
        let alias = if dump {
            "workspace"
        } else {
            caller.portal.alias.as_str()
        };
        let job_portal = if dump { super::DUMP_PORTAL } else { caller.portal.id };
        let file_name = self
            .free_archive_name(job_portal, target, alias, now, compression.extension())
            .await?;
        let repository = self.target_repository(caller.portal.id, target).await?;

        // (entry prefix, snapshot) per portal.
        let mut parts = Vec::with_capacity(portals.len());
        let mut missing = 0;
        for p in &portals {
            let (snapshot, m) = self.backup_snapshot(p, repository.is_none()).await?;
            missing += m;
            let prefix = if dump {
                format!("portals/{}/", p.id)
            } else {
                String::new()
            };
            parts.push(super::repository::PortalPart { prefix, snapshot });
        }
        if ctx.is_cancelled() {
            return Err(io_to_error(cancelled()));
        }
        let meta = if dump {
            let list: Vec<_> = portals
                .iter()
                .map(|p| serde_json::json!({"id": p.id, "alias": p.alias}))
                .collect();
            serde_json::json!({"kind": "server", "portals": list, "taskId": ctx.id})
        } else {
            serde_json::json!({
                "kind": "portal",
                "portalId": caller.portal.id,
                "alias": caller.portal.alias,
                "taskId": ctx.id,
                "files": parts[0].snapshot.files.len(),
            })
        };
        ctx.set("files", 0);

        if let Some((location, repo)) = repository {
            let (mut produced, missing) = self
                .write_to_repository(job_portal, &location, repo, parts, ctx, now, meta, file_name)
                .await?;
            produced.warning = (missing > 0).then(|| MISSING_WARNING.to_owned());
            return Ok(produced);
        }
        let total: u64 = parts
            .iter()
            .map(|p| p.snapshot.files.iter().map(|f| f.size.max(0) as u64).sum::<u64>())
            .sum();

        let (writer, stream) = channel(ctx.cancel.clone());
        let handle = tokio::runtime::Handle::current();
        let blobs = self.blobs.clone();
        let job = ctx.clone();
        let producer = tokio::task::spawn_blocking(move || -> Result<(String, u64, usize)> {
            let mut meta = meta;
            let mut w = ArchiveWriter::new(writer, compression).map_err(format_error)?;
            let entry = |name: String| EntryPath::new(name).map_err(format_error);
            let mut done = 0u64;
            let mut damaged_files = 0;
            for super::repository::PortalPart { prefix, mut snapshot } in parts {
                // Each file is checked against its row as it is written (the writer hashes it
                // for the manifest anyway): a file damaged on disk is found now, while the
                // portal may still have a good copy elsewhere, not at the restore that needs it.
                let mut damaged = std::collections::HashSet::new();
                for f in &snapshot.files {
                    let size = f.size.max(0) as u64;
                    if job.is_cancelled() {
                        return Err(io_to_error(cancelled()));
                    }
                    let key = BlobKey::new(f.blob_key.clone()).map_err(|e| Error::Internal(e.to_string()))?;
                    let mut reader = open_blob(blobs.as_ref(), &key, &handle)?;
                    let written = w
                        .add(&entry(format!("{prefix}{}", file_entry(f.id)))?, size, &mut reader)
                        .map_err(format_error)?;
                    if !f.blake3.is_empty() && written != f.blake3 {
                        // Its entry stays (its bytes are out already); no row names it, so a
                        // restore drops it.
                        tracing::warn!(file = %f.id, "file bytes do not match their digest (damaged); left out of the backup");
                        damaged.insert(f.id);
                    }
                    done += size;
                    // Backup progress is 0.9 × the share written; 100 comes with the record.
                    job.set("files", (done * 90 / total.max(1)) as i64);
                }
                snapshot.files.retain(|f| !damaged.contains(&f.id));
                damaged_files += damaged.len();
                if meta.get("files").is_some() {
                    meta["files"] = snapshot.files.len().into();
                }
                // Last, so that it lists exactly the files that can be restored.
                let json = serde_json::to_vec(&snapshot).map_err(|e| Error::Internal(e.to_string()))?;
                w.add_bytes(&entry(format!("{prefix}{SNAPSHOT_ENTRY}"))?, &json)
                    .map_err(format_error)?;
            }
            job.set("store", 90);
            let (writer, _) = w.finish(now, meta).map_err(format_error)?;
            let (hash, size) = writer.close().map_err(io_to_error)?;
            Ok((hash, size, damaged_files))
        });
        let put = self.put_archive(caller, target, ctx.id, &file_name, stream);
        let (stored, produced) = tokio::join!(put, producer);
        let produced = produced.map_err(|e| Error::Internal(format!("the archive writer stopped: {e}")))?;
        if ctx.is_cancelled() {
            return Err(io_to_error(cancelled()));
        }
        let (hash, size, damaged) = match (produced, &stored) {
            (Ok(done), _) => done,
            // The target failed first; the writer only saw its end of the pipe close.
            (Err(_), Err(_)) => return Err(stored.err().unwrap_or_else(|| Error::Internal("storage failed".into()))),
            (Err(e), Ok(_)) => return Err(e),
        };
        let storage_path = stored?;
        let warning = (missing + damaged > 0).then(|| MISSING_WARNING.to_owned());
        Ok(Produced {
            file_name,
            storage_path,
            hash,
            size,
            warning,
            repository: None,
        })
    }
}

/// The `error` text of a failed job: what went wrong, without internal prefixes.
pub(crate) fn job_message(e: &Error) -> String {
    match e {
        Error::Internal(m) => m.clone(),
        Error::AccessDenied(_) => "Access denied".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn archive_names_follow_docspace() {
        assert_eq!(
            super::archive_name("myportal", 1_777_969_278_123, "tar.zst", 1),
            "myportal_2026-05-05_08-21-18.tar.zst"
        );
        assert_eq!(
            super::archive_name("workspace", 1_777_969_278_999, "tar.gz", 2),
            "workspace_2026-05-05_08-21-18_2.tar.gz"
        );
    }
}
