//! Third-party storage settings: `settings/authservice`, `settings/storage/backup` and
//! `files/thirdparty/backup`.

use crate::access::Authed;
use crate::envelope::Reply;
use crate::error::ApiResult;
use crate::extract::{LenientJson, LenientQuery};
use crate::AppState;
use axum::extract::State;
use backspace_core::backup::{ConnectProvider, ConsumerView, ProviderView};
use backspace_core::Error;
use backspace_types::api_datetime;
use backspace_types::dto::backup::BackupQuery;
use backspace_types::dto::settings::{
    AuthServiceDto, AuthServiceRequest, PropDto, StorageDto, ThirdPartyBackupRequest, ThirdPartyFolderDto,
};

fn props(view: &ConsumerView) -> Vec<PropDto> {
    view.values
        .iter()
        .map(|(p, value)| PropDto {
            name: p.name.to_owned(),
            value: value.clone(),
            title: p.title.to_owned(),
        })
        .collect()
}

/// `GET /api/2.0/settings/authservice`.
pub async fn list_consumers(State(state): State<AppState>, Authed(caller): Authed) -> ApiResult {
    let views = state.core.consumers(&caller).await?;
    let dtos: Vec<AuthServiceDto> = views
        .iter()
        .map(|v| AuthServiceDto {
            name: v.module.key().to_owned(),
            title: v.module.title().to_owned(),
            description: format!(
                "Keys for backups to {}; saved keys are never shown again.",
                v.module.title()
            ),
            instruction: String::new(),
            can_set: true,
            paid: false,
            props: props(v),
        })
        .collect();
    Ok(Reply::ok(dtos))
}

/// `POST /api/2.0/settings/authservice`.
pub async fn save_consumer(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientJson(req): LenientJson<AuthServiceRequest>,
) -> ApiResult {
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::BadRequest("Bad keys: name (the consumer, e.g. s3) is required".to_owned()))?;
    let mut pairs = Vec::new();
    for p in req.props.unwrap_or_default() {
        let key = p
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Error::BadRequest("Bad keys: every prop needs a name".to_owned()))?;
        pairs.push((key, p.value.unwrap_or_default()));
    }
    Ok(Reply::ok(state.core.save_consumer(&caller, &name, &pairs).await?))
}

/// `GET /api/2.0/settings/storage/backup`.
pub async fn backup_storages(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<BackupQuery>,
) -> ApiResult {
    let views = state.core.backup_storages(&caller, q.dump.unwrap_or(false)).await?;
    let dtos: Vec<StorageDto> = views
        .iter()
        .map(|v| StorageDto {
            id: v.module.key().to_owned(),
            title: v.module.title().to_owned(),
            properties: props(v),
            current: v.current,
            is_set: v.is_set,
        })
        .collect();
    Ok(Reply::ok(dtos))
}

fn folder_dto(v: &ProviderView) -> ThirdPartyFolderDto {
    ThirdPartyFolderDto {
        id: v.folder_id.clone(),
        root_folder_id: v.folder_id.clone(),
        parent_id: 0,
        title: v.title.clone(),
        provider_item: true,
        provider_key: v.provider_key.clone(),
        provider_id: v.provider_id,
        root_folder_type: 21,
        files_count: 0,
        folders_count: 0,
        created: api_datetime(v.created),
        updated: api_datetime(v.created),
    }
}

/// `GET /api/2.0/files/thirdparty/backup`: the folder, or no `response` when none is connected.
pub async fn get_provider(State(state): State<AppState>, Authed(caller): Authed) -> ApiResult {
    Ok(match state.core.backup_provider(&caller).await? {
        Some(v) => Reply::ok(folder_dto(&v)),
        None => Reply::none(),
    })
}

/// `POST /api/2.0/files/thirdparty/backup`.
pub async fn connect_provider(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientJson(req): LenientJson<ThirdPartyBackupRequest>,
) -> ApiResult {
    let view = state
        .core
        .connect_backup_provider(
            &caller,
            ConnectProvider {
                url: req.url,
                login: req.login,
                password: req.password,
                customer_title: req.customertitle,
                provider_key: req.providerkey,
            },
        )
        .await?;
    Ok(Reply::ok(folder_dto(&view)))
}
