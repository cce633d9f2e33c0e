//! The backup history, schedules, and server settings.

use crate::{Result, RowExt, SqlStore};
use backspace_types::{PortalId, TaskId};
use sqlx::any::AnyRow;

/// A history record: one finished backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRecord {
    /// The id of the job that made it.
    pub id: TaskId,
    pub portal_id: PortalId,
    pub is_scheduled: bool,
    pub file_name: String,
    /// BLAKE3 of the archive, hex.
    pub hash: String,
    pub size: i64,
    pub storage_type: i64,
    /// Where the archive is: a file id (Documents), a path (Local), a blob key (DataStore).
    pub storage_path: String,
    pub storage_params: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub removed: bool,
}

/// A portal's backup schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub portal_id: PortalId,
    /// Quartz-style, six fields, as DocSpace stores it: `0 0 {hour} ? * *`.
    pub cron: String,
    pub backups_stored: i64,
    pub storage_type: i64,
    pub storage_params: String,
    pub last_backup_at: Option<i64>,
    pub created_at: i64,
}

const RECORD_COLUMNS: &str = "id, portal_id, is_scheduled, file_name, hash, size, storage_type, storage_path, \
                              storage_params, created_at, expires_at, removed, paid";
const SCHEDULE_COLUMNS: &str =
    "portal_id, cron, backups_stored, storage_type, storage_params, last_backup_at, created_at";

fn record_from_row(row: &AnyRow) -> Result<BackupRecord> {
    Ok(BackupRecord {
        id: row.parsed("id")?,
        portal_id: row.portal()?,
        is_scheduled: row.flag("is_scheduled")?,
        file_name: row.text("file_name")?,
        hash: row.text("hash")?,
        size: row.i64("size")?,
        storage_type: row.i64("storage_type")?,
        storage_path: row.text("storage_path")?,
        storage_params: row.text("storage_params")?,
        created_at: row.i64("created_at")?,
        expires_at: row.opt_i64("expires_at")?,
        removed: row.flag("removed")?,
    })
}

fn schedule_from_row(row: &AnyRow) -> Result<Schedule> {
    Ok(Schedule {
        portal_id: row.portal()?,
        cron: row.text("cron")?,
        backups_stored: row.i64("backups_stored")?,
        storage_type: row.i64("storage_type")?,
        storage_params: row.text("storage_params")?,
        last_backup_at: row.opt_i64("last_backup_at")?,
        created_at: row.i64("created_at")?,
    })
}

/// History records, schedules and settings.
#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    async fn insert_record(&self, record: &BackupRecord) -> Result<()>;
    /// The portal's records that are not removed, oldest first.
    async fn records(&self, portal: PortalId) -> Result<Vec<BackupRecord>>;
    /// A record of the portal (removed ones too).
    async fn record(&self, portal: PortalId, id: TaskId) -> Result<Option<BackupRecord>>;
    /// Soft-deletes a record; true when it was there and not yet removed.
    async fn remove_record(&self, portal: PortalId, id: TaskId) -> Result<bool>;
    /// Records made between `from` and `to` (inclusive), removed ones included.
    async fn count_records(&self, portal: PortalId, from: i64, to: i64) -> Result<i64>;
    /// Records of every portal whose expiry is at or before `now`.
    async fn expired_records(&self, now: i64) -> Result<Vec<BackupRecord>>;
    /// Whether a record of the portal (removed ones too: their archive may not be deleted yet)
    /// has this file name.
    async fn record_named(&self, portal: PortalId, file_name: &str) -> Result<bool>;
    /// The portals with a record (not removed) of `storage_type` stored at `path`.
    async fn portals_with_record_at(&self, storage_type: i64, path: &str) -> Result<Vec<PortalId>>;

    async fn upsert_schedule(&self, schedule: &Schedule) -> Result<()>;
    async fn schedule(&self, portal: PortalId) -> Result<Option<Schedule>>;
    async fn delete_schedule(&self, portal: PortalId) -> Result<bool>;
    async fn schedules(&self) -> Result<Vec<Schedule>>;
    /// Moves `last_backup_at` from `expected` to `at`; false when another instance already did
    /// (so each due run fires once).
    async fn claim_schedule_run(&self, portal: PortalId, expected: Option<i64>, at: i64) -> Result<bool>;

    /// A server setting; set once with [`RecordStore::init_setting`].
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Sets a setting that is still empty; returns the value that is now stored.
    async fn init_setting(&self, name: &str, value: &str) -> Result<String>;
}

#[async_trait::async_trait]
impl RecordStore for SqlStore {
    async fn insert_record(&self, r: &BackupRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO backups ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)"
        ))
        .bind(r.id.to_string())
        .bind(r.portal_id.0)
        .bind(i64::from(r.is_scheduled))
        .bind(&r.file_name)
        .bind(&r.hash)
        .bind(r.size)
        .bind(r.storage_type)
        .bind(&r.storage_path)
        .bind(&r.storage_params)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(i64::from(r.removed))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn records(&self, portal: PortalId) -> Result<Vec<BackupRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM backups WHERE portal_id = $1 AND removed = 0 ORDER BY created_at, id"
        ))
        .bind(portal.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn record(&self, portal: PortalId, id: TaskId) -> Result<Option<BackupRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM backups WHERE portal_id = $1 AND id = $2"
        ))
        .bind(portal.0)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn remove_record(&self, portal: PortalId, id: TaskId) -> Result<bool> {
        let done = sqlx::query("UPDATE backups SET removed = 1 WHERE portal_id = $1 AND id = $2 AND removed = 0")
            .bind(portal.0)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn count_records(&self, portal: PortalId, from: i64, to: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM backups WHERE portal_id = $1 AND paid = 0 AND created_at >= $2 AND created_at <= $3",
        )
        .bind(portal.0)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn expired_records(&self, now: i64) -> Result<Vec<BackupRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM backups WHERE removed = 0 AND expires_at IS NOT NULL AND expires_at <= $1"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn record_named(&self, portal: PortalId, file_name: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM backups WHERE portal_id = $1 AND file_name = $2 LIMIT 1")
            .bind(portal.0)
            .bind(file_name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn portals_with_record_at(&self, storage_type: i64, path: &str) -> Result<Vec<PortalId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT portal_id FROM backups WHERE storage_type = $1 AND storage_path = $2 AND removed = 0",
        )
        .bind(storage_type)
        .bind(path)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(PortalId).collect())
    }

    async fn upsert_schedule(&self, s: &Schedule) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM backup_schedules WHERE portal_id = $1")
            .bind(s.portal_id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO backup_schedules ({SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(s.portal_id.0)
        .bind(&s.cron)
        .bind(s.backups_stored)
        .bind(s.storage_type)
        .bind(&s.storage_params)
        .bind(s.last_backup_at)
        .bind(s.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn schedule(&self, portal: PortalId) -> Result<Option<Schedule>> {
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM backup_schedules WHERE portal_id = $1"
        ))
        .bind(portal.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn delete_schedule(&self, portal: PortalId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM backup_schedules WHERE portal_id = $1")
            .bind(portal.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedules(&self) -> Result<Vec<Schedule>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM backup_schedules ORDER BY portal_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn claim_schedule_run(&self, portal: PortalId, expected: Option<i64>, at: i64) -> Result<bool> {
        let done =
            match expected {
                Some(prev) => {
                    sqlx::query(
                        "UPDATE backup_schedules SET last_backup_at = $3 WHERE portal_id = $1 AND last_backup_at = $2",
                    )
                    .bind(portal.0)
                    .bind(prev)
                    .bind(at)
                    .execute(&self.pool)
                    .await?
                }
                None => sqlx::query(
                    "UPDATE backup_schedules SET last_backup_at = $2 WHERE portal_id = $1 AND last_backup_at IS NULL",
                )
                .bind(portal.0)
                .bind(at)
                .execute(&self.pool)
                .await?,
            };
        Ok(done.rows_affected() > 0)
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .filter(|v: &String| !v.is_empty()))
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<String> {
        sqlx::query("UPDATE settings SET value = $2 WHERE name = $1 AND value = ''")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }
}
