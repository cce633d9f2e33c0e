//! `/api/2.0/backup/*` (and the `/api/2.0/portal/*backup*|*restore*` aliases).

use crate::access::{Authed, PortalCtx};
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::extract::{LenientJson, LenientQuery, PathId};
use crate::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use backspace_core::backup::{parse_cron, parse_date};
use backspace_core::Error;
use backspace_meta::{BackupRecord, Job, JobKind, Schedule};
use backspace_types::dto::backup::{
    BackupProgress, BackupQuery, HistoryRecord, RestoreRequest, ScheduleDto, ScheduleRequest, StartBackupRequest,
};
use backspace_types::lenient::LenientEnum;
use backspace_types::{plain_utc, StorageType, TaskId, NEVER};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

fn progress(job: &Job) -> BackupProgress {
    let backup = job.kind == JobKind::Backup;
    BackupProgress {
        is_completed: job.is_completed,
        progress: job.progress,
        error: job.error.clone(),
        warning: job.warning.clone(),
        link: backup.then(|| job.link.clone().unwrap_or_default()),
        tenant_id: job.portal_id,
        backup_progress_enum: job.kind as i64,
        status: job.status,
        task_id: job.id,
    }
}

/// Backup dates are written in UTC with `Z` (DocSpace on MySQL writes no zone; on PostgreSQL,
/// `Z`); "never" stays DocSpace's `0001-01-01T00:00:00`, which clients compare against.
fn utc(unix_ms: i64) -> String {
    format!("{}Z", plain_utc(unix_ms))
}

fn history_record(r: &BackupRecord, link: String) -> HistoryRecord {
    HistoryRecord {
        size: r.size.max(0),
        link,
        id: r.id,
        file_name: r.file_name.clone(),
        storage_type: StorageType::from_number(r.storage_type).unwrap_or(StorageType::CustomCloud),
        created_on: utc(r.created_at),
        expires_on: r.expires_at.map(utc).unwrap_or_else(|| NEVER.to_owned()),
    }
}

fn schedule_dto(s: &Schedule, next: Option<i64>) -> ScheduleDto {
    let stored: BTreeMap<String, String> = serde_json::from_str(&s.storage_params).unwrap_or_default();
    // Secrets passed with a consumer schedule stay on the server.
    let stored = backspace_core::backup::public_params(&stored);
    let storage_type = StorageType::from_number(s.storage_type).unwrap_or(StorageType::Documents);
    let mut params: BTreeMap<String, Option<String>> =
        stored.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    // DocSpace overwrites `folderId` with the stored base path (null for DataStore).
    let base = stored.get("folderId").or_else(|| stored.get("filePath")).cloned();
    params.insert("folderId".to_owned(), base);
    ScheduleDto {
        storage_type,
        storage_params: params,
        cron_params: parse_cron(&s.cron),
        backups_stored: Some(s.backups_stored),
        last_backup_time: s.last_backup_at.map(utc).unwrap_or_else(|| NEVER.to_owned()),
        dump: s.portal_id == backspace_core::backup::DUMP_PORTAL,
        next_backup_time: next.map(utc),
    }
}

fn job_reply(job: Option<Job>) -> Reply {
    match job {
        Some(j) => Reply::ok(progress(&j)),
        None => Reply::none(),
    }
}

pub async fn start(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientJson(req): LenientJson<StartBackupRequest>,
) -> ApiResult {
    let job = state
        .core
        .start_backup(
            &caller,
            req.storagetype,
            req.storageparams,
            req.dump == Some(true),
            false,
        )
        .await?;
    Ok(Reply::ok(progress(&job)))
}

pub async fn get_progress(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    let portal = state.core.scope(&caller, q.dump == Some(true))?;
    Ok(job_reply(state.core.job(portal, JobKind::Backup).await?))
}

pub async fn cancel(State(state): State<AppState>, Authed(caller): Authed) -> ApiResult {
    Ok(Reply::ok(state.core.cancel_backup(&caller).await?))
}

pub async fn history(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    let records = state.core.backup_history(&caller, q.dump == Some(true)).await?;
    let links = state.core.history_links(&records).await?;
    Ok(Reply::ok(
        records
            .iter()
            .zip(links)
            .map(|(r, link)| history_record(r, link))
            .collect::<Vec<_>>(),
    ))
}

pub async fn delete(State(state): State<AppState>, Authed(caller): Authed, PathId(id): PathId<TaskId>) -> ApiResult {
    Ok(Reply::ok(state.core.delete_backup(&caller, id).await?))
}

pub async fn delete_history(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    Ok(Reply::ok(
        state.core.delete_backup_history(&caller, q.dump == Some(true)).await?,
    ))
}

pub async fn create_schedule(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientJson(req): LenientJson<ScheduleRequest>,
) -> ApiResult {
    let done = state
        .core
        .create_schedule(
            &caller,
            req.storagetype,
            req.storageparams,
            req.backupsstored,
            req.cronparams,
            req.dump == Some(true),
        )
        .await?;
    Ok(Reply::ok(done))
}

pub async fn get_schedule(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    Ok(match state.core.schedule(&caller, q.dump == Some(true)).await? {
        Some(s) => {
            let next = state.core.next_run(&caller, &s, backspace_types::datetime::now_ms());
            Reply::ok(schedule_dto(&s, next))
        }
        None => Reply::none(),
    })
}

pub async fn delete_schedule(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    Ok(Reply::ok(
        state.core.delete_schedule(&caller, q.dump == Some(true)).await?,
    ))
}

pub async fn start_restore(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientJson(req): LenientJson<RestoreRequest>,
) -> ApiResult {
    let job = state.core.start_restore(&caller, req).await?;
    Ok(Reply::ok(progress(&job)))
}

/// Anonymous, as DocSpace: the SDKs poll it without credentials while the portal is locked.
pub async fn restore_progress(
    State(state): State<AppState>,
    PortalCtx(portal): PortalCtx,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    let portal = if q.dump == Some(true) {
        backspace_core::backup::DUMP_PORTAL
    } else {
        portal.id
    };
    Ok(job_reply(state.core.job(portal, JobKind::Restore).await?))
}

fn window(q: &BackupQuery) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let parse = |name: &str, v: &Option<String>| match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => parse_date(text).map(Some).ok_or_else(|| {
            ApiError(Error::validation(
                name,
                format!("`{text}` is not a date: use 2026-01-31 or 2026-01-31T00:00:00Z"),
            ))
        }),
    };
    Ok((parse("from", &q.from)?, parse("to", &q.to)?))
}

pub async fn count(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    let (from, to) = window(&q)?;
    // `paid` backups do not exist here: asking for them counts none.
    let n = if q.paid == Some(true) {
        0
    } else {
        state.core.backups_count(&caller, from, to).await?
    };
    Ok(Reply::ok(n))
}

pub async fn count_by_paid(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    let (from, to) = window(&q)?;
    let free = state.core.backups_count(&caller, from, to).await?;
    Ok(Reply::ok(backspace_types::dto::backup::BackupsCount { free, paid: 0 }))
}

pub async fn service_state() -> ApiResult {
    Ok(Reply::ok(backspace_types::dto::backup::ServiceState { enabled: true }))
}

/// `backuptmp`: DocSpace leaks a server path here; we answer the admin with a description.
pub async fn tmp() -> ApiResult {
    Ok(Reply::ok(
        "backspace streams archives to their target; it keeps no temporary backup folder",
    ))
}

pub async fn enabled() -> ApiResult {
    Ok(Reply::ok(true))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub struct LinkQuery {
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_i64")]
    expires: Option<i64>,
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_string")]
    signature: Option<String>,
}

/// The signed download link of a `DataStore` backup: raw bytes, no credentials needed.
pub async fn download(
    State(state): State<AppState>,
    PathId(id): PathId<TaskId>,
    LenientQuery(q): LenientQuery<LinkQuery>,
) -> ApiResult<Response> {
    let (expires, signature) = match (q.expires, q.signature) {
        (Some(e), Some(s)) => (e, s),
        _ => {
            return Err(ApiError::bad_request(
                "the link needs its expires and signature parameters",
            ))
        }
    };
    let (name, size, data) = state.core.signed_download(id, expires, &signature).await?;
    let mut response = Response::new(Body::from_stream(data));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(size) = size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub struct UploadQuery {
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_bool")]
    init: Option<bool>,
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_i64")]
    totalsize: Option<i64>,
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_string")]
    extension: Option<String>,
}

/// DocSpace's reply shape for `/backupFileUpload.ashx`: PascalCase, always HTTP 200.
fn upload_reply(result: Result<bool, ApiError>) -> Response {
    let body = match result {
        Ok(end) => json!({"Success": true, "ChunkSize": backspace_core::backup::CHUNK_SIZE, "EndUpload": end}),
        Err(e) => {
            json!({"Success": false, "Message": crate::error::shorten(&e.0.to_string()), "ChunkSize": 0, "EndUpload": false})
        }
    };
    let mut response = Response::new(Body::from(body.to_string()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `POST /backupFileUpload.ashx`: `?Init=true&totalSize=N&extension=tar.gz` starts an upload;
/// each following multipart POST appends its first file part. `startrestore` with
/// `storageType: Local` then restores it.
pub async fn upload(
    State(state): State<AppState>,
    Authed(caller): Authed,
    query: Result<LenientQuery<UploadQuery>, ApiError>,
    req: axum::extract::Request,
) -> Response {
    // A query that does not bind is answered in this endpoint's shape too.
    let q = match query {
        Ok(LenientQuery(q)) => q,
        Err(e) => return upload_reply(Err(e)),
    };
    if q.init == Some(true) {
        let total = q.totalsize.unwrap_or(0).max(0) as u64;
        let ext = q.extension.unwrap_or_else(|| "tar.gz".to_owned());
        return upload_reply(
            state
                .core
                .start_restore_upload(&caller, total, &ext)
                .await
                .map(|_| false)
                .map_err(Into::into),
        );
    }
    let result = async {
        let mut multipart = axum::extract::Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::bad_request(format!("expected a multipart/form-data body: {}", e.body_text())))?;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("the multipart body is malformed: {}", e.body_text())))?
        {
            if field.file_name().is_none() && !field.name().is_some_and(|n| n.eq_ignore_ascii_case("file")) {
                continue;
            }
            let (data, feed) = crate::handlers::files::pump(field);
            let (added, ()) = tokio::join!(state.core.add_restore_chunk(&caller, data), feed);
            let added = added?;
            return Ok(added.received == added.total);
        }
        Err(ApiError::bad_request("the multipart body has no file part"))
    }
    .await;
    upload_reply(result)
}

/// `GET /api/2.0/backup/verifybackup/{id}` (backspace's extension): reads the backup back
/// completely and checks every chunk (or the whole archive).
pub async fn verify(State(state): State<AppState>, Authed(caller): Authed, PathId(id): PathId<TaskId>) -> ApiResult {
    Ok(Reply::ok(state.core.verify_backup(&caller, id).await?))
}
