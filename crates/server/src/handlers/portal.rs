//! `/apisystem/portal/register`, `/api/2.0/portal`, `deleteportalimmediately`.

use crate::access::{Authed, PortalCtx};
use crate::convert;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, LenientJson};
use crate::{AppState, Registration};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backspace_core::RegisterOutcome;
use backspace_types::dto::portal::{RegisterError, RegisterRequest, RegisterResponse};

/// Registration is un-enveloped: success is `{reference,tenant}`, failure `{error,message}`.
fn register_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(RegisterError {
            error: code.to_owned(),
            message: message.to_owned(),
        }),
    )
        .into_response()
}

/// `POST /apisystem/portal/register`: off unless the config opens it, or puts it behind a
/// shared secret sent as `Authorization: Bearer <secret>`.
pub async fn register(
    State(state): State<AppState>,
    base: BaseUrl,
    headers: HeaderMap,
    body: Result<LenientJson<RegisterRequest>, ApiError>,
) -> Response {
    let allowed = match &state.config.registration {
        Registration::Off => false,
        Registration::Open => true,
        Registration::Secret(secret) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| backspace_core::constant_time_eq(given.trim(), secret)),
    };
    if !allowed {
        return register_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "portal registration is not open to this caller",
        );
    }
    let req = match body {
        Ok(LenientJson(req)) => req,
        Err(e) => {
            return register_error(
                StatusCode::BAD_REQUEST,
                "params",
                &crate::error::shorten(&e.0.to_string()),
            )
        }
    };
    match state.core.register_portal(req).await {
        Ok(RegisterOutcome::Created { portal }) => {
            let tenant = convert::registered(&portal, &base);
            let reference = format!("{}/confirm.aspx?first=true", base.0);
            (StatusCode::OK, Json(RegisterResponse { reference, tenant })).into_response()
        }
        Ok(RegisterOutcome::Rejected { code, message }) => register_error(StatusCode::BAD_REQUEST, code, &message),
        Err(e) => {
            tracing::error!(error = %e, "registering a portal failed");
            register_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "registerNewTenantError",
                "registering the portal failed",
            )
        }
    }
}

/// `GET /api/2.0/portal`.
pub async fn get(Authed(caller): Authed, PortalCtx(portal): PortalCtx) -> ApiResult {
    Ok(Reply::ok(convert::tenant(&portal, caller.is_admin())))
}

/// `DELETE /api/2.0/portal/deleteportalimmediately`.
pub async fn delete(State(state): State<AppState>, Authed(caller): Authed, base: BaseUrl) -> ApiResult<Response> {
    state.core.delete_portal(&caller).await?;
    let mut response = Reply::ok(format!("{}/", base.0)).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, crate::handlers::auth::clear_cookie());
    Ok(response)
}
