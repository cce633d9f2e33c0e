//! The backup API: `BackupProgress`, history records, schedules, and the request bodies.

use crate::enums::{BackupPeriod, StorageType};
use crate::id::{PortalId, TaskId};
use crate::lenient;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `BackupProgress`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    /// True once the job will not change any more (succeeded, failed or cancelled).
    pub is_completed: bool,
    /// 0 to 100.
    #[schemars(with = "i32")]
    pub progress: i64,
    /// Why the job failed; empty when it did not.
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Backup jobs only; omitted for restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[schemars(with = "i32")]
    pub tenant_id: PortalId,
    /// `BackupProgressEnum`: 0 backup, 1 restore, 2 transfer.
    #[schemars(schema_with = "progress_kind_schema")]
    pub backup_progress_enum: i64,
    /// `DistributedTaskStatus`: 0 created, 1 running, 2 completed, 3 canceled, 4 failed.
    #[schemars(schema_with = "task_status_schema")]
    pub status: i64,
    pub task_id: TaskId,
}

fn progress_kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "integer", "enum": [0, 1, 2], "x-enum-varnames": ["Backup", "Restore", "Transfer"]})
}

fn task_status_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "integer",
        "enum": [0, 1, 2, 3, 4],
        "x-enum-varnames": ["Created", "Running", "Completed", "Canceled", "Failted"],
    })
}

fn date_time_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time"})
}

/// `BackupHistoryRecord`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    pub id: TaskId,
    pub file_name: String,
    pub storage_type: StorageType,
    #[schemars(schema_with = "date_time_schema")]
    pub created_on: String,
    #[schemars(schema_with = "date_time_schema")]
    pub expires_on: String,
    /// backspace's extension: the size in bytes of the stored archive (of a repository
    /// backup: of the portal data it holds).
    pub size: i64,
    /// backspace's extension: a signed download link, valid for an hour.
    pub link: String,
}

/// `cronParams`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct CronParams {
    pub period: BackupPeriod,
    /// 0 to 23.
    #[schemars(with = "i32")]
    pub hour: i64,
    /// Weekly: 1 (Sunday) to 7; monthly: 1 to 31; daily: 0.
    #[schemars(with = "i32")]
    pub day: i64,
}

/// `ScheduleDto`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDto {
    pub storage_type: StorageType,
    pub storage_params: BTreeMap<String, Option<String>>,
    pub cron_params: CronParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<i32>")]
    pub backups_stored: Option<i64>,
    #[schemars(schema_with = "date_time_schema")]
    pub last_backup_time: String,
    pub dump: bool,
    /// backspace's extension: when the schedule fires next (UTC), for the admin page and CLI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_backup_time: Option<String>,
}

/// `storageParams` of a request: a list of `{key, value}` whose scalars become strings (DocSpace
/// writes `true` as `True`). A null key or value, or a duplicate key, is an error naming it.
pub fn storage_params<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    fn text(v: &Value, what: &str) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(true) => Ok("True".to_owned()),
            Value::Bool(false) => Ok("False".to_owned()),
            Value::Null => Err(format!("storageParams: a {what} is null")),
            _ => Err(format!("storageParams: a {what} must be a string, number or boolean")),
        }
    }
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => return Err(de::Error::custom("storageParams must be a list of {key, value} pairs")),
    };
    let mut out = BTreeMap::new();
    for item in items {
        let Value::Object(pair) = item else {
            return Err(de::Error::custom("storageParams must be a list of {key, value} pairs"));
        };
        // Keys of the pair objects were lower-cased with the rest of the body.
        let key = text(pair.get("key").unwrap_or(&Value::Null), "key").map_err(de::Error::custom)?;
        let value = text(pair.get("value").unwrap_or(&Value::Null), "value").map_err(de::Error::custom)?;
        // Parameter names match case-insensitively (`folderId`, `FolderId`).
        let key = key.to_lowercase();
        if out.insert(key.clone(), value).is_some() {
            return Err(de::Error::custom(format!(
                "storageParams: the key `{key}` is given twice"
            )));
        }
    }
    Ok(Some(out))
}

/// `BackupDto` of `startbackup`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct StartBackupRequest {
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub storagetype: Option<StorageType>,
    #[serde(default, deserialize_with = "storage_params")]
    pub storageparams: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub dump: Option<bool>,
}

/// `cronParams` of a request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct CronParamsRequest {
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub period: Option<BackupPeriod>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub hour: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub day: Option<i64>,
}

/// `BackupScheduleDto` of `createbackupschedule`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct ScheduleRequest {
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub storagetype: Option<StorageType>,
    #[serde(default, deserialize_with = "storage_params")]
    pub storageparams: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub backupsstored: Option<i64>,
    #[serde(default)]
    pub cronparams: Option<CronParamsRequest>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub dump: Option<bool>,
}

/// `BackupRestoreDto` of `startrestore`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct RestoreRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub backupid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub storagetype: Option<StorageType>,
    #[serde(default, deserialize_with = "storage_params")]
    pub storageparams: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub notify: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub dump: Option<bool>,
}

/// The `Dump` query parameter (and `from`/`to`/`paid` of the counts).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct BackupQuery {
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub dump: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub to: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub paid: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_params_bind_like_docspace() {
        let r: StartBackupRequest = serde_json::from_str(
            r#"{"storagetype":"Documents","storageparams":[{"key":"folderId","value":1234},{"key":"x","value":true}]}"#,
        )
        .unwrap();
        let p = r.storageparams.unwrap();
        assert_eq!(p["folderid"], "1234");
        assert_eq!(p["x"], "True");
        let dup = serde_json::from_str::<StartBackupRequest>(
            r#"{"storageparams":[{"key":"a","value":"1"},{"key":"A","value":"2"}]}"#,
        );
        assert!(dup.unwrap_err().to_string().contains("given twice"));
        let null = serde_json::from_str::<StartBackupRequest>(r#"{"storageparams":[{"key":"a","value":null}]}"#);
        assert!(null.unwrap_err().to_string().contains("value is null"));
        let r: StartBackupRequest = serde_json::from_str(r#"{"storagetype":"4","storageparams":null}"#).unwrap();
        assert_eq!(r.storagetype, Some(StorageType::DataStore));
    }
}

/// `BackupsCountResultDto` of `getbackupscountbypaid`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BackupsCount {
    #[schemars(with = "i32")]
    pub free: i64,
    #[schemars(with = "i32")]
    pub paid: i64,
}

/// `BackupServiceStateDto` of `getservicestate`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ServiceState {
    pub enabled: bool,
}
