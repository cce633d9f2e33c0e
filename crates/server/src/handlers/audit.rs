//! `GET /api/2.0/security/audit/events/last`: the portal's newest audit events.

use crate::access::Authed;
use crate::envelope::Reply;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use backspace_types::api_datetime;
use serde_json::json;

pub async fn last(State(state): State<AppState>, Authed(caller): Authed) -> ApiResult {
    let events = state.core.audit_events(&caller, 100).await?;
    let dtos: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "date": api_datetime(e.at),
                "userId": e.user_id,
                "action": e.action,
                "description": e.detail,
            })
        })
        .collect();
    Ok(Reply::ok(dtos))
}
