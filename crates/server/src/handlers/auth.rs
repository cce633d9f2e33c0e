//! `POST|GET /api/2.0/authentication`, logout, and the password-hash settings.

use crate::access::{self, MaybeAuthed, PortalCtx};
use crate::envelope::Reply;
use crate::error::ApiResult;
use crate::extract::{ClientAddr, LenientJson};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use backspace_types::dto::auth::{AuthRequest, AuthTokenDto};
use backspace_types::{plain_utc, NEVER};
use serde_json::json;

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("asc_auth_key=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// `POST /api/2.0/authentication`: a session token in the body and in the `asc_auth_key`
/// cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    PortalCtx(portal): PortalCtx,
    ClientAddr(address): ClientAddr,
    LenientJson(req): LenientJson<AuthRequest>,
) -> ApiResult<Response> {
    let signed = state.core.sign_in(&portal, req, &address).await?;
    let expires = signed.expires_at.map(plain_utc).unwrap_or_else(|| NEVER.to_owned());
    let mut cookie = format!("asc_auth_key={}; Path=/; HttpOnly; SameSite=Strict", signed.token);
    if let Some(at) = signed.expires_at {
        let max_age = (at - backspace_types::datetime::now_ms()) / 1000;
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    if state.config.secure_cookies {
        cookie.push_str("; Secure");
    }
    let mut response = Reply::ok(AuthTokenDto {
        token: signed.token,
        expires,
        sms: false,
        tfa: false,
    })
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/2.0/authentication/logout`: ends the session of the cookie (or of the token in
/// the header) and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    PortalCtx(portal): PortalCtx,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(backspace_core::Credential::Token(token)) = access::credential(&headers) {
        state.core.sign_out(&portal, &token).await?;
    }
    let mut response = Reply::none().into_response();
    response.headers_mut().append(header::SET_COOKIE, clear_cookie());
    Ok(response)
}

/// `GET /api/2.0/authentication`: whether the request is authenticated.
pub async fn check(MaybeAuthed(caller): MaybeAuthed) -> ApiResult {
    Ok(Reply::ok(caller.is_some()))
}

/// `GET /api/2.0/settings`: what the web UI needs before sign-in (the password hash
/// parameters).
pub async fn settings(State(state): State<AppState>, PortalCtx(portal): PortalCtx) -> ApiResult {
    let p = state.core.password_params();
    Ok(Reply::ok(json!({
        "culture": portal.language,
        "timezone": portal.time_zone,
        "tenantAlias": portal.alias,
        "passwordHash": {"size": p.size, "iterations": p.iterations, "salt": p.salt},
        "standalone": true,
    })))
}
