//! `/api/2.0/keys`.

use crate::access::Authed;
use crate::convert;
use crate::envelope::Reply;
use crate::error::ApiResult;
use crate::extract::{BaseUrl, LenientJson, PathId};
use crate::AppState;
use axum::extract::State;
use backspace_types::dto::keys::{CreateKeyRequest, UpdateKeyRequest, PERMISSIONS};
use backspace_types::KeyId;

/// `POST /api/2.0/keys`: the only reply that carries the plaintext key.
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientJson(req): LenientJson<CreateKeyRequest>,
) -> ApiResult {
    let (key, plaintext) = state.core.create_key(&caller, req).await?;
    Ok(Reply::ok(convert::key(
        &key,
        Some(&caller.user),
        Some(&plaintext),
        &base,
    )))
}

/// `GET /api/2.0/keys`.
pub async fn list(State(state): State<AppState>, Authed(caller): Authed, base: BaseUrl) -> ApiResult {
    let keys = state.core.list_keys(&caller).await?;
    let creators: Vec<_> = keys.iter().map(|k| k.user_id).collect();
    let dir = state.core.directory(&caller, creators).await?;
    Ok(Reply::ok(
        keys.iter()
            .map(|k| convert::key(k, dir.get(&k.user_id), None, &base))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /api/2.0/keys/permissions`.
pub async fn permissions() -> ApiResult {
    Ok(Reply::ok(PERMISSIONS))
}

/// `GET /api/2.0/keys/@self`.
pub async fn current(State(state): State<AppState>, Authed(caller): Authed, base: BaseUrl) -> ApiResult {
    let key = state.core.current_key(&caller).await?;
    Ok(Reply::ok(convert::key(&key, Some(&caller.user), None, &base)))
}

/// `PUT /api/2.0/keys/{id}`.
pub async fn update(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId<KeyId>,
    LenientJson(req): LenientJson<UpdateKeyRequest>,
) -> ApiResult {
    Ok(Reply::ok(state.core.update_key(&caller, id, req).await?))
}

/// `DELETE /api/2.0/keys/{id}`.
pub async fn delete(State(state): State<AppState>, Authed(caller): Authed, PathId(id): PathId<KeyId>) -> ApiResult {
    Ok(Reply::ok(state.core.delete_key(&caller, id).await?))
}
