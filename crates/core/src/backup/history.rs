//! The backup history: listing (dropping records whose archive vanished), deleting, counting,
//! retention and expiry.

use super::target::Stored;
use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_meta::BackupRecord;
use backspace_types::datetime::now_ms;
use backspace_types::{PortalId, TaskId};

impl Core {
    /// The portal whose jobs, records and schedule a call concerns: the caller's, or with
    /// `dump` the whole server's (for the server administrator only).
    pub fn scope(&self, caller: &Caller, dump: bool) -> Result<PortalId> {
        match dump {
            false => Ok(caller.portal.id),
            true if self.is_server_admin(caller) => Ok(super::DUMP_PORTAL),
            true => Err(Error::denied("dump operations are for the server administrator")),
        }
    }

    /// `GET /api/2.0/backup/getbackuphistory`: the portal's records whose archive still exists;
    /// records whose archive is gone are dropped.
    pub async fn backup_history(&self, caller: &Caller, dump: bool) -> Result<Vec<BackupRecord>> {
        let mut out = Vec::new();
        for record in self.store.records(self.scope(caller, dump)?).await? {
            if self.archive_exists(Stored::of(&record)).await? {
                out.push(record);
            } else {
                tracing::info!(backup = %record.id, "the archive of a history record is gone; dropping the record");
                self.store.remove_record(record.portal_id, record.id).await?;
            }
        }
        Ok(out)
    }

    async fn delete_record(&self, record: &BackupRecord) -> Result<()> {
        // The archive goes first: when its store fails (a bucket out of reach) the record stays
        // and the delete can be retried, so no archive is ever left behind unlisted. A crash
        // between the two leaves a record without its archive, which the next listing drops.
        self.delete_archive(Stored::of(record)).await?;
        self.store.remove_record(record.portal_id, record.id).await?;
        Ok(())
    }

    /// A record the caller may act on by id: one of its portal's, or (for the server
    /// administrator) a whole-server one. 404 for unknown ids and other portals' ids.
    pub(crate) async fn caller_record(&self, caller: &Caller, id: TaskId) -> Result<BackupRecord> {
        let mut record = self.store.record(caller.portal.id, id).await?;
        if record.is_none() && self.is_server_admin(caller) {
            record = self.store.record(super::DUMP_PORTAL, id).await?;
        }
        record
            .filter(|r| !r.removed)
            .ok_or_else(|| Error::NotFound(format!("The backup was not found: no backup `{id}` in this portal")))
    }

    /// `DELETE /api/2.0/backup/deletebackup/{id}`: 404 for unknown ids and other portals' ids.
    pub async fn delete_backup(&self, caller: &Caller, id: TaskId) -> Result<bool> {
        let record = self.caller_record(caller, id).await?;
        self.delete_record(&record).await?;
        self.audit(
            caller.portal.id,
            Some(caller.user.id),
            "BackupDeleted",
            record.file_name.clone(),
        )
        .await;
        Ok(true)
    }

    /// `DELETE /api/2.0/backup/deletebackuphistory`: every backup of the portal.
    pub async fn delete_backup_history(&self, caller: &Caller, dump: bool) -> Result<bool> {
        for record in self.store.records(self.scope(caller, dump)?).await? {
            if let Err(e) = self.delete_record(&record).await {
                tracing::warn!(backup = %record.id, error = %e, "deleting a backup failed");
            }
        }
        Ok(true)
    }

    /// `GET /api/2.0/backup/getbackupscount`: backups made in `[from, to]`, deleted ones included.
    pub async fn backups_count(&self, caller: &Caller, from: Option<i64>, to: Option<i64>) -> Result<i64> {
        let (from, to) = count_window(from, to, now_ms())?;
        Ok(self.store.count_records(caller.portal.id, from, to).await?)
    }

    /// Keeps the newest `backupsStored` scheduled backups of the portal; manual ones are never
    /// pruned.
    pub(crate) async fn apply_retention(&self, portal: PortalId) -> Result<usize> {
        let Some(schedule) = self.store.schedule(portal).await? else {
            return Ok(0);
        };
        let mut scheduled: Vec<_> = self
            .store
            .records(portal)
            .await?
            .into_iter()
            .filter(|r| r.is_scheduled)
            .collect();
        scheduled.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let mut deleted = 0;
        for old in scheduled.iter().skip(schedule.backups_stored.max(1) as usize) {
            self.delete_record(old).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// One step of the cleaner worker, on one instance at a time: the instance that holds the
    /// `cleaner` lease (taken for [`CLEANER_LEASE_MS`], renewed by each step of its holder) runs
    /// it; the others skip. `None` when another instance holds the lease.
    pub async fn run_cleaner(&self, now: i64) -> Result<Option<usize>> {
        let held = self
            .store
            .try_lease("cleaner", &self.settings.instance, now, now + CLEANER_LEASE_MS)
            .await?;
        if !held {
            return Ok(None);
        }
        let cleaned = self.clean_expired(now).await?;
        self.store.purge_sessions(now).await?;
        self.sweep_blob_garbage().await?;
        self.run_pending_gc().await;
        Ok(Some(cleaned))
    }

    /// Deletes the blobs recorded as garbage (left by a stop or a crash right after the change
    /// that released them); returns how many went.
    pub async fn sweep_blob_garbage(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let keys = self.store.blob_garbage(GARBAGE_BATCH, now_ms()).await?;
            let listed = keys.len();
            let gone = collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), keys).await;
            total += gone;
            // Blobs the store refuses to delete stay recorded for the next run.
            if listed < GARBAGE_BATCH as usize || gone == 0 {
                return Ok(total);
            }
        }
    }

    /// The cleaner: deletes backups whose expiry has passed (`DataStore`, after 24 hours).
    pub async fn clean_expired(&self, now: i64) -> Result<usize> {
        let expired = self.store.expired_records(now).await?;
        for record in &expired {
            self.delete_record(record).await?;
        }
        Ok(expired.len())
    }
}

/// Garbage blobs deleted per round of the sweep.
const GARBAGE_BATCH: i64 = 1000;

/// Deletes garbage blobs and forgets the ones deleted; returns how many went.
pub(crate) async fn collect_blob_garbage(
    store: &dyn backspace_meta::MetaStore,
    blobs: &dyn backspace_storage::BlobStore,
    keys: Vec<String>,
) -> usize {
    let mut gone = Vec::with_capacity(keys.len());
    for key in keys {
        match backspace_storage::BlobKey::new(key.clone()) {
            Ok(k) => match blobs.delete(&k).await {
                Ok(()) => gone.push(key),
                Err(e) => tracing::warn!(key = %k, error = %e, "deleting a released file failed; the cleaner retries"),
            },
            // Not a key this server writes: nothing to delete.
            Err(_) => gone.push(key),
        }
    }
    if let Err(e) = store.forget_blob_garbage(&gone).await {
        tracing::warn!(error = %e, "forgetting deleted files failed; the cleaner retries");
    }
    gone.len()
}

/// How long the cleaner's lease lasts: longer than its period (5 minutes), so its holder keeps
/// it while it lives, and another instance takes over within 10 minutes when it dies.
pub const CLEANER_LEASE_MS: i64 = 10 * 60 * 1000;

/// The counting window: `from` defaults to the first of the current UTC month, `to` to now + 1 s.
pub(crate) fn count_window(from: Option<i64>, to: Option<i64>, now: i64) -> Result<(i64, i64)> {
    let month_start = {
        let t = time::OffsetDateTime::from_unix_timestamp(now / 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let first = t.replace_day(1).unwrap_or(t).replace_time(time::Time::MIDNIGHT);
        first.unix_timestamp() * 1000
    };
    let from = from.unwrap_or(month_start);
    let to = to.unwrap_or(now + 1000);
    if from > to {
        return Err(Error::BadRequest("From date must be less than to date".to_owned()));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::count_window;

    #[test]
    fn window_defaults_and_order() {
        // 2026-05-05T08:21:18Z → from 2026-05-01T00:00:00Z
        let now = 1_777_969_278_000;
        assert_eq!(count_window(None, None, now).unwrap(), (1_777_593_600_000, now + 1000));
        assert!(count_window(Some(10), Some(5), now).is_err());
    }
}

/// Parses a `from`/`to` value: `2000-01-01`, `2000-01-01T00:00:00Z`, an offset with or without
/// a colon (`+0000`, the SDK's form), or no zone (UTC). Unix milliseconds.
pub fn parse_date(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let mut s = if t.len() == 10 {
        format!("{t}T00:00:00Z")
    } else {
        t.to_owned()
    };
    // `+0000` → `+00:00`
    // `get`, not indexing: the last five bytes may start inside a character.
    let tail = s.len().checked_sub(5).filter(|&at| at > 0).and_then(|at| s.get(at..));
    if let Some(tail) = tail {
        if (tail.starts_with('+') || tail.starts_with('-')) && tail[1..].bytes().all(|b| b.is_ascii_digit()) {
            s = format!("{}{}:{}", &s[..s.len() - 5], &tail[..3], &tail[3..]);
        }
    }
    let has_zone = s.ends_with('Z') || s.ends_with('z') || {
        let tail = s.get(s.len().saturating_sub(6)..).unwrap_or("");
        tail.starts_with('+') || tail.starts_with('-')
    };
    if !has_zone {
        s.push('Z');
    }
    s.parse::<jiff::Timestamp>().ok().map(|ts| ts.as_millisecond())
}

#[cfg(test)]
mod date_tests {
    use super::parse_date;

    #[test]
    fn accepts_the_forms_clients_send() {
        let day = 946_684_800_000;
        assert_eq!(parse_date("2000-01-01"), Some(day));
        assert_eq!(parse_date("2000-01-01T00:00:00Z"), Some(day));
        assert_eq!(parse_date("2000-01-01T00:00:00"), Some(day));
        assert_eq!(parse_date("2000-01-01T00:00:00.000000+0000"), Some(day));
        assert_eq!(parse_date("2000-01-01T03:00:00+03:00"), Some(day));
        assert_eq!(parse_date("yesterday"), None);
        // Found by schemathesis: a multi-byte character across the last five bytes.
        assert_eq!(parse_date("q\u{f0fb9}\u{5bfb3}"), None);
    }
}
