//! Backup schedules: DocSpace's cron strings, when they fire in the portal's time zone, and the
//! scheduler step.
//!
//! DocSpace stores Quartz-style strings: `0 0 {hour} ? * *` (daily), `0 0 {hour} ? * {day}`
//! (weekly, Sunday = 1), `0 0 {hour} {day} * ?` (monthly). The scheduler here runs every 30
//! seconds, so a backup starts within a minute of its time (DocSpace: up to 15). A run missed
//! while the server was down fires once on the next step, not once per missed slot: the next
//! time is always computed from the last run.

use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_meta::Schedule;
use backspace_types::datetime::now_ms;
use backspace_types::dto::backup::{CronParams, CronParamsRequest};
use backspace_types::{BackupPeriod, StorageType};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The cron string for a period, hour and day; errors name the field.
pub fn cron_for(period: BackupPeriod, hour: i64, day: i64) -> Result<String> {
    if !(0..=23).contains(&hour) {
        return Err(Error::BadRequest(format!(
            "cronParams.hour must be between 0 and 23, not {hour}"
        )));
    }
    match period {
        BackupPeriod::EveryDay => Ok(format!("0 0 {hour} ? * *")),
        BackupPeriod::EveryWeek if (1..=7).contains(&day) => Ok(format!("0 0 {hour} ? * {day}")),
        BackupPeriod::EveryWeek => Err(Error::BadRequest(format!(
            "cronParams.day must be between 1 (Sunday) and 7 (Saturday) for a weekly schedule, not {day}"
        ))),
        BackupPeriod::EveryMonth if (1..=31).contains(&day) => Ok(format!("0 0 {hour} {day} * ?")),
        BackupPeriod::EveryMonth => Err(Error::BadRequest(format!(
            "cronParams.day must be between 1 and 31 for a monthly schedule, not {day}"
        ))),
    }
}

/// The period, hour and day of a stored cron string, as DocSpace parses it back.
pub fn parse_cron(cron: &str) -> CronParams {
    let f: Vec<&str> = cron.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let hour = num(2);
    if f.get(3).is_some_and(|v| *v != "?") {
        CronParams {
            period: BackupPeriod::EveryMonth,
            hour,
            day: num(3),
        }
    } else if f.get(5).is_some_and(|v| *v != "*") {
        CronParams {
            period: BackupPeriod::EveryWeek,
            hour,
            day: num(5),
        }
    } else {
        CronParams {
            period: BackupPeriod::EveryDay,
            hour,
            day: 0,
        }
    }
}

/// When `schedule` is due: its first firing after its last run (or its creation), in the time
/// zone of its portal (`portal_tz`), or in UTC for a whole-server schedule.
fn next_due(schedule: &Schedule, portal_tz: &str) -> Option<i64> {
    let tz = if schedule.portal_id == super::DUMP_PORTAL {
        "UTC"
    } else {
        portal_tz
    };
    next_fire(
        &schedule.cron,
        tz,
        schedule.last_backup_at.unwrap_or(schedule.created_at),
    )
}

/// The first time strictly after `after_ms` at which the schedule fires, in the time zone
/// `tz` (an IANA name; unknown names fall back to UTC).
pub fn next_fire(cron: &str, tz: &str, after_ms: i64) -> Option<i64> {
    let params = parse_cron(cron);
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let after = jiff::Timestamp::from_millisecond(after_ms).ok()?.to_zoned(zone.clone());
    let mut date = after.date();
    // A monthly day 31 fires in the months that have one; 400 days always reach a match.
    for _ in 0..400 {
        let matches = match params.period {
            BackupPeriod::EveryDay => true,
            // Quartz: 1 = Sunday … 7 = Saturday.
            BackupPeriod::EveryWeek => i64::from(date.weekday().to_sunday_one_offset()) == params.day,
            BackupPeriod::EveryMonth => i64::from(date.day()) == params.day,
        };
        if matches {
            let at = date.at(params.hour as i8, 0, 0, 0).to_zoned(zone.clone()).ok()?;
            let ms = at.timestamp().as_millisecond();
            if ms > after_ms {
                return Some(ms);
            }
        }
        date = date.tomorrow().ok()?;
    }
    None
}

fn params_json(params: &BTreeMap<String, String>) -> String {
    serde_json::to_string(params).unwrap_or_else(|_| "{}".into())
}

impl Core {
    /// `POST /api/2.0/backup/createbackupschedule`: replaces the portal's schedule.
    pub async fn create_schedule(
        &self,
        caller: &Caller,
        storage: Option<StorageType>,
        params: Option<BTreeMap<String, String>>,
        backups_stored: Option<i64>,
        cron: Option<CronParamsRequest>,
        dump: bool,
    ) -> Result<bool> {
        let portal = self.scope(caller, dump)?;
        super::check_dump_target(dump, storage)?;
        let stored = backups_stored.unwrap_or(1);
        if !(1..=30).contains(&stored) {
            return Err(Error::BadRequest(format!("backupsStored must be 1 - 30, not {stored}")));
        }
        let cron = cron.ok_or_else(|| Error::BadRequest("cronParams is required".to_owned()))?;
        let cron = cron_for(
            cron.period.unwrap_or(BackupPeriod::EveryDay),
            cron.hour.unwrap_or(0),
            cron.day.unwrap_or(0),
        )?;
        let storage = storage.unwrap_or(StorageType::Documents);
        let params = params.unwrap_or_default();
        let target = self.resolve_target(caller, storage, &params).await?;
        let schedule = Schedule {
            portal_id: portal,
            cron,
            backups_stored: stored,
            storage_type: super::storage_number(storage),
            storage_params: params_json(&target.params()),
            last_backup_at: None,
            created_at: now_ms(),
        };
        self.store.upsert_schedule(&schedule).await?;
        self.audit(
            caller.portal.id,
            Some(caller.user.id),
            "ScheduledBackupSet",
            format!(
                "`{}`, keeping {}, to {storage:?}",
                schedule.cron, schedule.backups_stored
            ),
        )
        .await;
        Ok(true)
    }

    pub async fn schedule(&self, caller: &Caller, dump: bool) -> Result<Option<Schedule>> {
        Ok(self.store.schedule(self.scope(caller, dump)?).await?)
    }

    /// When `schedule` fires next, as the scheduler sees it: its next time after the last run
    /// (or its creation), or now when that time has passed and the run is imminent.
    pub fn next_run(&self, caller: &Caller, schedule: &Schedule, now: i64) -> Option<i64> {
        next_due(schedule, &caller.portal.time_zone).map(|due| due.max(now))
    }

    pub async fn delete_schedule(&self, caller: &Caller, dump: bool) -> Result<bool> {
        if self.store.delete_schedule(self.scope(caller, dump)?).await? {
            self.audit(
                caller.portal.id,
                Some(caller.user.id),
                "ScheduledBackupDeleted",
                String::new(),
            )
            .await;
        }
        Ok(true)
    }

    /// One scheduler step at `now`: starts every due scheduled backup once (across instances:
    /// the run is claimed in the database first). Returns how many started.
    pub async fn run_due_schedules(self: &Arc<Self>, now: i64) -> Result<usize> {
        let mut started = 0;
        for schedule in self.store.schedules().await? {
            // A whole-server schedule runs as the server administrator, in UTC.
            let dump = schedule.portal_id == super::DUMP_PORTAL;
            let owner = if dump {
                match self.default_owner().await {
                    Ok(owner) => owner,
                    Err(_) => continue,
                }
            } else {
                let Some(portal) = self.store.portal(schedule.portal_id).await? else {
                    continue;
                };
                match self.store.user(portal.id, portal.owner_id).await? {
                    Some(user) => Caller {
                        portal,
                        user,
                        via: crate::Via::Local,
                        scopes: crate::Scopes::All,
                    },
                    None => continue,
                }
            };
            let portal = owner.portal.clone();
            let Some(due) = next_due(&schedule, &portal.time_zone) else {
                continue;
            };
            if due > now {
                continue;
            }
            if !self
                .store
                .claim_schedule_run(portal.id, schedule.last_backup_at, now)
                .await?
            {
                continue;
            }
            let params: BTreeMap<String, String> =
                serde_json::from_str::<BTreeMap<String, String>>(&schedule.storage_params)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.to_lowercase(), v))
                    .collect();
            let storage = super::storage_from_number(schedule.storage_type);
            match self.start_backup(&owner, storage, Some(params), dump, true).await {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(portal = %portal.alias, error = %e, "a scheduled backup could not start"),
            }
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn cron_strings_follow_docspace() {
        assert_eq!(cron_for(BackupPeriod::EveryDay, 5, 0).unwrap(), "0 0 5 ? * *");
        assert_eq!(cron_for(BackupPeriod::EveryWeek, 2, 2).unwrap(), "0 0 2 ? * 2");
        assert_eq!(cron_for(BackupPeriod::EveryMonth, 23, 31).unwrap(), "0 0 23 31 * ?");
        assert!(cron_for(BackupPeriod::EveryDay, 24, 0)
            .unwrap_err()
            .to_string()
            .contains("hour"));
        assert!(cron_for(BackupPeriod::EveryWeek, 1, 8)
            .unwrap_err()
            .to_string()
            .contains("day"));
        assert!(cron_for(BackupPeriod::EveryMonth, 1, 0).is_err());
        for (p, h, d) in [
            (BackupPeriod::EveryDay, 5, 0),
            (BackupPeriod::EveryWeek, 2, 2),
            (BackupPeriod::EveryMonth, 3, 17),
        ] {
            assert_eq!(
                parse_cron(&cron_for(p, h, d).unwrap()),
                CronParams {
                    period: p,
                    hour: h,
                    day: d
                }
            );
        }
    }

    #[test]
    fn next_fire_times() {
        // Daily at 05:00 UTC, after 2026-05-05T08:00Z → the next day.
        assert_eq!(
            next_fire("0 0 5 ? * *", "UTC", ms("2026-05-05T08:00:00Z")),
            Some(ms("2026-05-06T05:00:00Z"))
        );
        assert_eq!(
            next_fire("0 0 5 ? * *", "UTC", ms("2026-05-05T04:59:59Z")),
            Some(ms("2026-05-05T05:00:00Z"))
        );
        // Weekly on Monday (2) at 02:00; 2026-05-05 is a Tuesday.
        assert_eq!(
            next_fire("0 0 2 ? * 2", "UTC", ms("2026-05-05T00:00:00Z")),
            Some(ms("2026-05-11T02:00:00Z"))
        );
        // Monthly on the 31st skips months without one.
        assert_eq!(
            next_fire("0 0 0 31 * ?", "UTC", ms("2026-06-01T00:00:00Z")),
            Some(ms("2026-07-31T00:00:00Z"))
        );
        // In the portal's time zone: 05:00 in Moscow (UTC+3) is 02:00 UTC.
        assert_eq!(
            next_fire("0 0 5 ? * *", "Europe/Moscow", ms("2026-05-05T00:00:00Z")),
            Some(ms("2026-05-05T02:00:00Z"))
        );
    }
}
