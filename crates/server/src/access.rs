//! Who may call a route. Every route in [`crate::routes`] declares a [`Rule`]; the guard
//! middleware enforces it before the handler runs, and handlers receive the result as a
//! [`Caller`] or a [`PortalCtx`]. Denied by default: a handler that takes a `Caller` on a route
//! whose rule let no caller through answers 500, and a test walks the table so that cannot ship.

use crate::error::ApiError;
use crate::extract::ClientAddr;
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backspace_core::{Caller, Credential, Error};
use backspace_meta::Portal;
use backspace_types::EmployeeType;
use base64::Engine;

/// The people a route admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No portal and no credential: the handler checks its own (registration).
    Public,
    /// A portal; a valid credential is used when present, never required.
    Anonymous,
    /// Anyone signed in to the portal.
    Authenticated,
    /// Signed in, and not a guest.
    NotGuest,
    /// Owner, DocSpace admin or room admin.
    RoomManager,
    /// Owner or DocSpace admin.
    Admin,
    /// The portal's owner.
    Owner,
}

/// Which API-key permissions cover a route. GET and HEAD need a read scope, everything else
/// a write scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only `*:read` / `*:write`.
    Global,
    /// `R:read` / `R:write` for the resource `R` (`files`, `rooms`, `accounts`,
    /// `accounts.self`), or the global scopes.
    Resource(&'static str),
    /// Any valid key (`GET /keys/@self`).
    Any,
}

/// A route's access rule: who, which API-key scopes, and whether it answers while the portal
/// is locked by a restore (only `getrestoreprogress` does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    pub scope: Scope,
    pub open_during_restore: bool,
}

/// DocSpace's `TenantStatus.Restoring`.
const RESTORING: i64 = 4;

impl Access {
    fn admits(self, caller: &Caller) -> bool {
        match self {
            Self::Public | Self::Anonymous | Self::Authenticated => true,
            Self::NotGuest => caller.kind() != EmployeeType::Guest,
            Self::RoomManager => caller.is_admin() || caller.kind() == EmployeeType::RoomAdmin,
            Self::Admin => caller.is_admin(),
            Self::Owner => caller.is_owner(),
        }
    }
}

/// The portal a request is for.
#[derive(Clone, Debug)]
pub struct PortalCtx(pub Portal);

/// The credential a request carries, by DocSpace's precedence: Basic; `Bearer sk-…` (or a raw
/// `sk-…`, which the DocSpace samples send); otherwise the `asc_auth_key` cookie when there is
/// one, else the header's token with any `Bearer ` stripped.
pub fn credential(headers: &HeaderMap) -> Option<Credential> {
    let cookie = cookie(headers, "asc_auth_key");
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(auth) = auth else {
        return cookie.map(classify);
    };
    if let Some(encoded) = strip_prefix_ci(auth, "basic ") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok();
        let text = decoded.and_then(|d| String::from_utf8(d).ok()).unwrap_or_default();
        let (login, password) = text.split_once(':').unwrap_or(("", ""));
        return Some(Credential::Basic {
            login: login.to_owned(),
            password: password.to_owned(),
        });
    }
    let token = strip_prefix_ci(auth, "bearer ").unwrap_or(auth).trim();
    if token.starts_with("sk-") {
        return Some(Credential::ApiKey(token.to_owned()));
    }
    Some(classify(cookie.unwrap_or_else(|| token.to_owned())))
}

/// A bare token: an API key by its prefix, a session token otherwise.
fn classify(token: String) -> Credential {
    if token.starts_with("sk-") {
        Credential::ApiKey(token)
    } else {
        Credential::Token(token)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

/// A cookie's value, when the request has it and it is not empty.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The host part of an `Origin` or `Host` value, without scheme, port or path.
pub fn host_of(value: &str) -> Option<String> {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let host = host.trim().to_ascii_lowercase();
    (!host.is_empty() && host != "null").then_some(host)
}

/// The guard: resolves the portal, checks the credential, the scope and the role.
pub async fn guard(State(state): State<AppState>, rule: Rule, mut req: Request, next: Next) -> Response {
    match admit(&state, rule, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn admit(state: &AppState, rule: Rule, req: &mut Request) -> Result<(), ApiError> {
    if rule.access == Access::Public {
        return Ok(());
    }
    let headers = req.headers();
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(host_of);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(host_of);
    let portal = state
        .core
        .resolve_portal(origin.as_deref(), host.as_deref())
        .await?
        .ok_or_else(|| ApiError::not_found("no portal is served at this address"))?;
    if portal.status == RESTORING && !rule.open_during_restore {
        return Err(ApiError(Error::InvalidOperation(
            "The portal is being restored; it answers again when the restore has finished".to_owned(),
        )));
    }
    let credential = credential(headers);
    let (mut parts, body) = std::mem::replace(req, Request::new(axum::body::Body::empty())).into_parts();
    let address = ClientAddr::from_request_parts(&mut parts, &()).await?.0;
    *req = Request::from_parts(parts, body);

    let caller = match credential {
        Some(c) => match state.core.authenticate(&portal, &c, &address).await {
            Ok(caller) => Some(caller),
            // A bad credential on an anonymous route is simply no credential.
            Err(Error::Unauthorized(_)) if rule.access == Access::Anonymous => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    req.extensions_mut().insert(PortalCtx(portal));
    let Some(caller) = caller else {
        return if rule.access == Access::Anonymous {
            Ok(())
        } else {
            Err(ApiError(Error::Unauthorized(
                "No valid credentials: sign in or send an API key".to_owned(),
            )))
        };
    };
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let scoped = match rule.scope {
        Scope::Any => true,
        Scope::Global => caller.scopes.allows(None, write),
        Scope::Resource(r) => caller.scopes.allows(Some(r), write),
    };
    if !scoped {
        return Err(ApiError(Error::denied(
            "the api key's permissions do not cover this call",
        )));
    }
    if !rule.access.admits(&caller) {
        return Err(ApiError(Error::denied(format!("route needs {:?}", rule.access))));
    }
    req.extensions_mut().insert(caller);
    Ok(())
}

/// An authenticated caller, as the guard admitted it.
pub struct Authed(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().map(Self).ok_or_else(|| {
            ApiError(Error::Internal(
                "a handler needs a caller its route does not admit".to_owned(),
            ))
        })
    }
}

/// The caller when there is one (anonymous routes).
pub struct MaybeAuthed(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Caller>().cloned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PortalCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<PortalCtx>().cloned().ok_or_else(|| {
            ApiError(Error::Internal(
                "a handler needs a portal its route does not resolve".to_owned(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn credential_precedence_follows_docspace() {
        let key = format!("sk-{}", "a".repeat(64));
        assert_eq!(
            credential(&headers(&[("authorization", &format!("Bearer {key}"))])),
            Some(Credential::ApiKey(key.clone()))
        );
        assert_eq!(
            credential(&headers(&[("authorization", &key)])),
            Some(Credential::ApiKey(key.clone()))
        );
        assert_eq!(
            credential(&headers(&[("authorization", "Bearer tok")])),
            Some(Credential::Token("tok".into()))
        );
        assert_eq!(
            credential(&headers(&[("authorization", "tok")])),
            Some(Credential::Token("tok".into()))
        );
        assert_eq!(
            credential(&headers(&[("cookie", "a=b; asc_auth_key=c1")])),
            Some(Credential::Token("c1".into()))
        );
        // The cookie wins over a non-key token, as upstream.
        assert_eq!(
            credential(&headers(&[
                ("authorization", "Bearer tok"),
                ("cookie", "asc_auth_key=c1")
            ])),
            Some(Credential::Token("c1".into()))
        );
        assert_eq!(
            credential(&headers(&[("authorization", "Basic dUBleC5jb206cGE6c3M=")])),
            Some(Credential::Basic {
                login: "u@ex.com".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(credential(&headers(&[])), None);
        assert_eq!(credential(&headers(&[("cookie", "asc_auth_key=")])), None);
    }

    #[test]
    fn hosts_are_extracted() {
        assert_eq!(host_of("http://Portal-A:8092/x").as_deref(), Some("portal-a"));
        assert_eq!(host_of("portal.example.com").as_deref(), Some("portal.example.com"));
        assert_eq!(host_of("127.0.0.1:8092").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("http://[::1]:80").as_deref(), Some("::1"));
        assert_eq!(host_of("null"), None);
    }
}
