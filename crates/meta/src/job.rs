//! Backup and restore jobs: persisted records with DocSpace's progress fields.

use crate::{conflict, Result, RowExt, SqlStore, StoreError};
use backspace_types::{PortalId, TaskId, UserId};
use sqlx::any::AnyRow;

/// Backup (0) or restore (1), as `backupProgressEnum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Backup = 0,
    Restore = 1,
}

/// DocSpace's `DistributedTaskStatus`.
pub mod status {
    pub const CREATED: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const COMPLETED: i64 = 2;
    pub const CANCELED: i64 = 3;
    pub const FAILED: i64 = 4;
}

/// A job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: TaskId,
    pub portal_id: PortalId,
    pub kind: JobKind,
    pub status: i64,
    pub progress: i64,
    /// The named phase the job is in (`snapshot`, `files`, `store`, `done`, …).
    pub phase: String,
    pub error: String,
    pub warning: Option<String>,
    pub link: Option<String>,
    pub is_completed: bool,
    pub storage_type: i64,
    /// The request's storage parameters, a JSON object of strings.
    pub storage_params: String,
    pub is_scheduled: bool,
    pub cancel_requested: bool,
    pub created_by: Option<UserId>,
    /// Where the job's partial output is while it runs, for cleanup after a crash.
    pub partial: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Job {
    /// A new job, queued: `Created`, progress 0, no error.
    pub fn queued(
        portal_id: PortalId,
        kind: JobKind,
        storage_type: i64,
        storage_params: String,
        created_by: Option<UserId>,
        now: i64,
    ) -> Self {
        Self {
            id: TaskId::random(),
            portal_id,
            kind,
            status: status::CREATED,
            progress: 0,
            phase: "queued".to_owned(),
            error: String::new(),
            warning: None,
            link: None,
            is_completed: false,
            storage_type,
            storage_params,
            is_scheduled: false,
            cancel_requested: false,
            created_by,
            partial: None,
            created_at: now,
            updated_at: now,
        }
    }
}

const COLUMNS: &str =
    "id, portal_id, kind, status, progress, phase, error, warning, link, is_completed, storage_type, \
                       storage_params, is_scheduled, cancel_requested, created_by, partial, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.parsed("id")?,
        portal_id: row.portal()?,
        kind: match row.i64("kind")? {
            0 => JobKind::Backup,
            1 => JobKind::Restore,
            other => return Err(StoreError::Corrupt(format!("job kind {other}"))),
        },
        status: row.i64("status")?,
        progress: row.i64("progress")?,
        phase: row.text("phase")?,
        error: row.text("error")?,
        warning: row.opt_text("warning")?,
        link: row.opt_text("link")?,
        is_completed: row.flag("is_completed")?,
        storage_type: row.i64("storage_type")?,
        storage_params: row.text("storage_params")?,
        is_scheduled: row.flag("is_scheduled")?,
        cancel_requested: row.flag("cancel_requested")?,
        created_by: row.opt_parsed("created_by")?,
        partial: row.opt_text("partial")?,
        created_at: row.i64("created_at")?,
        updated_at: row.i64("updated_at")?,
    })
}

/// How a job ends.
#[derive(Clone, Debug, Default)]
pub struct JobEnd {
    pub status: i64,
    pub error: String,
    pub warning: Option<String>,
    pub link: Option<String>,
}

/// Jobs.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts `job` unless the portal already has an unfinished job of its kind; returns the
    /// job that is now current (the new one, or the running one). Finished jobs of the kind are
    /// dropped: only the latest stays readable.
    async fn start_job(&self, job: &Job) -> Result<(Job, bool)>;
    /// The portal's latest job of a kind.
    async fn job(&self, portal: PortalId, kind: JobKind) -> Result<Option<Job>>;
    async fn job_by_id(&self, id: TaskId) -> Result<Option<Job>>;
    async fn set_job_progress(&self, id: TaskId, status: i64, progress: i64, phase: &str, now: i64) -> Result<()>;
    async fn set_job_partial(&self, id: TaskId, partial: Option<&str>, now: i64) -> Result<()>;
    /// Marks the job completed. Returns false when it already was.
    async fn finish_job(&self, id: TaskId, end: &JobEnd, now: i64) -> Result<bool>;
    /// Asks the portal's unfinished backup job to stop; true when there was one.
    async fn request_cancel(&self, portal: PortalId, now: i64) -> Result<bool>;
    /// Every unfinished job, of every portal (startup recovery).
    async fn unfinished_jobs(&self) -> Result<Vec<Job>>;
    /// Marks the job as run by `owner` until `lease_until`; renewed while it runs. False when the
    /// job is finished or run by another owner.
    async fn renew_lease(&self, id: TaskId, owner: &str, lease_until: i64) -> Result<bool>;
    /// Unfinished jobs whose lease ran out before `now` (their instance died; a job never
    /// leased counts from its last update plus `lease_ms`), and, when `own` names the calling
    /// instance at its start, every job it owned (none of them can be running any more).
    async fn orphaned_jobs(&self, own: Option<&str>, now: i64, lease_ms: i64) -> Result<Vec<Job>>;
}

#[async_trait::async_trait]
impl JobStore for SqlStore {
    async fn start_job(&self, job: &Job) -> Result<(Job, bool)> {
        let mut tx = self.pool.begin().await?;
        // The delete is the first statement and a write: it takes SQLite's lock at once.
        sqlx::query("DELETE FROM backup_jobs WHERE portal_id = $1 AND kind = $2 AND is_completed = 1")
            .bind(job.portal_id.0)
            .bind(job.kind as i64)
            .execute(&mut *tx)
            .await?;
        let running = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM backup_jobs WHERE portal_id = $1 AND kind = $2 AND is_completed = 0"
        ))
        .bind(job.portal_id.0)
        .bind(job.kind as i64)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = running {
            tx.commit().await?;
            return Ok((from_row(&row)?, false));
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO backup_jobs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(job.id.to_string())
        .bind(job.portal_id.0)
        .bind(job.kind as i64)
        .bind(job.status)
        .bind(job.progress)
        .bind(&job.phase)
        .bind(&job.error)
        .bind(job.warning.clone())
        .bind(job.link.clone())
        .bind(i64::from(job.is_completed))
        .bind(job.storage_type)
        .bind(&job.storage_params)
        .bind(i64::from(job.is_scheduled))
        .bind(i64::from(job.cancel_requested))
        .bind(job.created_by.map(|u| u.to_string()))
        .bind(job.partial.clone())
        .bind(job.created_at)
        .bind(job.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict(|| format!("a running job of portal `{}`", job.portal_id)));
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok((job.clone(), true))
            }
            // Another instance started one between our read and our insert (PostgreSQL).
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let current = self.job(job.portal_id, job.kind).await?;
                current
                    .map(|j| (j, false))
                    .ok_or_else(|| StoreError::NotFound("the running job".into()))
            }
            Err(e) => Err(e),
        }
    }

    async fn job(&self, portal: PortalId, kind: JobKind) -> Result<Option<Job>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM backup_jobs WHERE portal_id = $1 AND kind = $2 ORDER BY is_completed ASC, created_at DESC LIMIT 1"
        ))
        .bind(portal.0)
        .bind(kind as i64)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn job_by_id(&self, id: TaskId) -> Result<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM backup_jobs WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn set_job_progress(&self, id: TaskId, status: i64, progress: i64, phase: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE backup_jobs SET status = $2, progress = $3, phase = $4, updated_at = $5 WHERE id = $1 AND is_completed = 0",
        )
        .bind(id.to_string())
        .bind(status)
        .bind(progress)
        .bind(phase)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_job_partial(&self, id: TaskId, partial: Option<&str>, now: i64) -> Result<()> {
        sqlx::query("UPDATE backup_jobs SET partial = $2, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(partial.map(str::to_owned))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_job(&self, id: TaskId, end: &JobEnd, now: i64) -> Result<bool> {
        let progress_done = if end.status == crate::job::status::COMPLETED && end.error.is_empty() {
            100
        } else {
            -1
        };
        let done = sqlx::query(
            "UPDATE backup_jobs SET is_completed = 1, status = $2, error = $3, warning = $4, link = $5, partial = NULL,
                progress = CASE WHEN $6 >= 0 THEN $6 ELSE progress END, phase = 'done', updated_at = $7
             WHERE id = $1 AND is_completed = 0",
        )
        .bind(id.to_string())
        .bind(end.status)
        .bind(&end.error)
        .bind(end.warning.clone())
        .bind(end.link.clone())
        .bind(progress_done)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn request_cancel(&self, portal: PortalId, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE backup_jobs SET cancel_requested = 1, updated_at = $2 WHERE portal_id = $1 AND kind = 0 AND is_completed = 0",
        )
        .bind(portal.0)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn renew_lease(&self, id: TaskId, owner: &str, lease_until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE backup_jobs SET owner = $2, lease_until = $3
             WHERE id = $1 AND is_completed = 0 AND (owner IS NULL OR owner = $2)",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(lease_until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn orphaned_jobs(&self, own: Option<&str>, now: i64, lease_ms: i64) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM backup_jobs WHERE is_completed = 0
             AND (owner = $1 OR COALESCE(lease_until, updated_at + $3) < $2)"
        ))
        .bind(own.unwrap_or(""))
        .bind(now)
        .bind(lease_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    async fn unfinished_jobs(&self) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM backup_jobs WHERE is_completed = 0"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }
}
