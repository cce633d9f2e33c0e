//! `/api/2.0/people`.

use crate::access::Authed;
use crate::convert;
use crate::envelope::Reply;
use crate::error::ApiResult;
use crate::extract::{BaseUrl, LenientJson, LenientQuery, PathId};
use crate::AppState;
use axum::extract::State;
use backspace_core::Caller;
use backspace_meta::User;
use backspace_types::dto::people::{MemberRequest, PeopleQuery};
use backspace_types::UserId;

async fn full(state: &AppState, caller: &Caller, user: &User, base: &BaseUrl) -> ApiResult {
    let dir = state.core.directory(caller, user.created_by).await?;
    let creator = user.created_by.and_then(|id| dir.get(&id));
    Ok(Reply::ok(convert::employee_full(user, caller, creator, base)))
}

/// `POST /api/2.0/people`.
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientJson(req): LenientJson<MemberRequest>,
) -> ApiResult {
    let user = state.core.create_member(&caller, req, false).await?;
    full(&state, &caller, &user, &base).await
}

/// `POST /api/2.0/people/active`: the same, and the only way to create a guest.
pub async fn create_active(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientJson(req): LenientJson<MemberRequest>,
) -> ApiResult {
    let user = state.core.create_member(&caller, req, true).await?;
    full(&state, &caller, &user, &base).await
}

/// `GET /api/2.0/people/@self`.
pub async fn me(State(state): State<AppState>, Authed(caller): Authed, base: BaseUrl) -> ApiResult {
    full(&state, &caller, &caller.user, &base).await
}

/// `GET /api/2.0/people/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(id): PathId<UserId>,
) -> ApiResult {
    let user = state.core.person(&caller, id).await?;
    full(&state, &caller, &user, &base).await
}

/// `GET /api/2.0/people`: a page and the `total`.
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientQuery(q): LenientQuery<PeopleQuery>,
) -> ApiResult {
    let (users, total, _) = state.core.list_people(&caller, q).await?;
    let creators: Vec<_> = users.iter().filter_map(|u| u.created_by).collect();
    let dir = state.core.directory(&caller, creators).await?;
    let dtos: Vec<_> = users
        .iter()
        .map(|u| convert::employee_full(u, &caller, u.created_by.and_then(|id| dir.get(&id)), &base))
        .collect();
    Ok(Reply::ok(dtos).with_total(total))
}
