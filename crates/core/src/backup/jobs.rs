//! Running jobs: their cancellation flags and progress, and recovery after a crash.

use crate::{Core, Result};
use backspace_meta::{job_status, JobEnd, JobKind};
use backspace_types::datetime::now_ms;
use backspace_types::{PortalId, TaskId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a running job writes its progress and looks for a cancel request in the database
/// (a request may come through another instance).
pub(crate) const TICK: Duration = Duration::from_millis(300);

/// What a running job shares with the code that drives it.
#[derive(Clone)]
pub(crate) struct JobContext {
    pub id: TaskId,
    /// The portal the job runs for (or the whole-server marker), and its kind, for the logs.
    pub portal: PortalId,
    pub kind: &'static str,
    pub cancel: Arc<AtomicBool>,
    /// Percent, 0..=100, as the job reports it.
    pub progress: Arc<AtomicI64>,
    pub phase: Arc<Mutex<&'static str>>,
}

impl JobContext {
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Reports progress; a new phase is logged.
    pub fn set(&self, phase: &'static str, progress: i64) {
        let previous = std::mem::replace(&mut *self.phase.lock().unwrap_or_else(|p| p.into_inner()), phase);
        if previous != phase {
            tracing::info!(job = %self.id, portal = %self.portal, kind = self.kind, phase, "job phase");
        }
        self.progress.store(progress.clamp(0, 100), Ordering::Relaxed);
    }
}

/// The jobs this instance runs.
#[derive(Default)]
pub struct JobRegistry {
    running: Mutex<HashMap<TaskId, JobContext>>,
}

impl JobRegistry {
    pub(crate) fn register(&self, id: TaskId, portal: PortalId, kind: &'static str) -> JobContext {
        let ctx = JobContext {
            id,
            portal,
            kind,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(AtomicI64::new(0)),
            phase: Arc::new(Mutex::new("queued")),
        };
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, ctx.clone());
        ctx
    }

    /// Forgets a job that ended. When it was the last one running here, the memory the job
    /// freed goes back to the system, so the next job does not start from this one's peak.
    pub(crate) fn remove(&self, id: TaskId) {
        let idle = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(&id);
            running.is_empty()
        };
        if idle {
            release_heap();
        }
    }

    pub(crate) fn cancel(&self, id: TaskId) {
        if let Some(ctx) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            ctx.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Whether any job runs here (for graceful shutdown).
    pub fn is_idle(&self) -> bool {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

/// Returns freed heap memory to the system, on a blocking thread (it takes milliseconds on a
/// large heap).
pub(crate) fn release_heap() {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(backspace_heap::release);
    } else {
        backspace_heap::release();
    }
}

/// The watcher of a running job (see [`Core::watch_job`]).
pub(crate) struct JobWatch {
    done: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl JobWatch {
    /// Stops the watcher at once (not at its next tick) and waits for the step it may be in
    /// (a progress write) to end.
    pub(crate) async fn stop(self) {
        self.done.cancel();
        let _ = self.task.await;
    }
}

impl Core {
    /// Whether the portal has an unfinished job of `kind`.
    pub(crate) async fn job_running(&self, portal: PortalId, kind: JobKind) -> Result<bool> {
        Ok(self.store.job(portal, kind).await?.is_some_and(|j| !j.is_completed))
    }

    /// Writes a job's progress while it runs and carries cancel requests from the database to
    /// its flag, until [`JobWatch::stop`].
    pub(crate) fn watch_job(self: &Arc<Self>, ctx: JobContext) -> JobWatch {
        let core = self.clone();
        let done = tokio_util::sync::CancellationToken::new();
        let stopped = done.clone();
        let task = tokio::spawn(async move {
            let mut last = (-1, "");
            let lease = core.settings.job_lease.as_millis() as i64;
            while !done.is_cancelled() {
                // The lease says this instance still runs the job. A job whose lease ran out
                // (this instance was cut off from the database for longer than the lease) has
                // been failed by another instance: it stops here and removes its output, so it
                // never records a backup that its job reports as failed.
                match core
                    .store
                    .renew_lease(ctx.id, &core.settings.instance, now_ms() + lease)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %ctx.id, "the job's lease was lost to another instance; stopping it");
                        ctx.cancel.store(true, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(job = %ctx.id, error = %e, "renewing a job lease failed"),
                }
                let now = (
                    ctx.progress.load(Ordering::Relaxed),
                    *ctx.phase.lock().unwrap_or_else(|p| p.into_inner()),
                );
                if now != last {
                    if let Err(e) = core
                        .store
                        .set_job_progress(ctx.id, job_status::RUNNING, now.0, now.1, now_ms())
                        .await
                    {
                        tracing::warn!(job = %ctx.id, error = %e, "writing job progress failed");
                    }
                    last = now;
                }
                if let Ok(Some(job)) = core.store.job_by_id(ctx.id).await {
                    if job.cancel_requested {
                        ctx.cancel.store(true, Ordering::Relaxed);
                    }
                }
                tokio::select! {
                    () = done.cancelled() => break,
                    () = tokio::time::sleep(TICK) => {}
                }
            }
        });
        JobWatch { done: stopped, task }
    }

    /// Recovery: a job whose instance stopped did not finish. It is reported as failed, its
    /// partial output is removed, and a portal locked by a restore is unlocked (a restore swaps
    /// the portal's rows in one transaction, so the portal is intact). At `startup` this
    /// instance's own unfinished jobs are recovered at once; at any time, jobs whose lease ran
    /// out (their instance died) are.
    pub async fn recover_jobs(&self, startup: bool) -> Result<usize> {
        self.recover_jobs_at(startup, now_ms()).await
    }

    /// [`Core::recover_jobs`] at a given time (tests choose the clock).
    pub async fn recover_jobs_at(&self, startup: bool, now: i64) -> Result<usize> {
        let own = startup.then_some(self.settings.instance.as_str());
        let jobs = self
            .store
            .orphaned_jobs(own, now, self.settings.job_lease.as_millis() as i64)
            .await?;
        // This instance's own jobs: at start-up, the process that ran them is surely gone (a job
        // whose lease ran out may belong to an instance that is only cut off, and still runs).
        // With a time of 0, no lease has run out: only the owner matches.
        let ours: std::collections::HashSet<TaskId> = match own {
            Some(me) => self
                .store
                .orphaned_jobs(Some(me), 0, 0)
                .await?
                .iter()
                .map(|j| j.id)
                .collect(),
            None => Default::default(),
        };
        for job in &jobs {
            let ours = ours.contains(&job.id);
            // A backup stopped after its record was written, or a restore after its swap, has
            // happened: it is reported as done, and what it made stays.
            let done = match job.kind {
                JobKind::Backup => self.store.record(job.portal_id, job.id).await?.is_some(),
                JobKind::Restore => job.phase == super::restore::SWAPPED,
            };
            if let Some(recorded) = job.partial.as_deref().filter(|_| !done) {
                // The partial archive, and the archive linked into place before its record.
                let recorded = std::path::PathBuf::from(recorded);
                let id = job.id;
                let removed =
                    tokio::task::spawn_blocking(move || super::target::remove_interrupted_local_output(&recorded, id))
                        .await
                        .unwrap_or_default();
                for (path, result) in removed {
                    match result {
                        Ok(()) => {
                            tracing::info!(job = %job.id, path = %path.display(), "removed the partial output of an interrupted job")
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::warn!(job = %job.id, path = %path.display(), error = %e, "removing a partial output failed")
                        }
                    }
                }
            }
            if job.kind == JobKind::Restore {
                // Bytes staged for rows that never came (or that no row kept) go while the
                // portal is still locked.
                if ours {
                    if let Err(e) = self.drop_unreferenced_files(job.portal_id).await {
                        tracing::warn!(job = %job.id, error = %e, "removing the staged files of an interrupted restore failed");
                    }
                }
                self.store.set_portal_status(job.portal_id, 0, now).await?;
            }
            let what = if job.kind == JobKind::Backup {
                "backup"
            } else {
                "restore"
            };
            let end = JobEnd {
                status: job_status::COMPLETED,
                error: if done {
                    String::new()
                } else {
                    // A lease also runs out when the instance lost its database for longer.
                    format!("The server stopped, or lost its database, while this {what} was running; it did not finish. Start it again.")
                },
                warning: None,
                link: None,
            };
            self.store.finish_job(job.id, &end, now).await?;
            // The process that ran the job is gone: its repository lock goes now, with the
            // snapshot it may have written without a record.
            if ours && job.kind == JobKind::Backup {
                self.release_interrupted_writer(job, done).await;
            }
        }
        Ok(jobs.len())
    }
}
