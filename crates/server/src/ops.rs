//! What operators call: `GET /healthz` (the process answers), `GET /readyz` (the database and
//! the file storage answer), `GET /metrics` (Prometheus), and the request tracking behind the
//! metrics.

use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long `/readyz` waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The matched route's template, filled in by [`label`] for [`track`].
#[derive(Clone, Default)]
pub(crate) struct RouteSlot(Arc<OnceLock<&'static str>>);

/// Outermost: times every request and counts it by route template, method and final status.
pub(crate) async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let route = slot.0.get().copied().unwrap_or("unmatched");
    state
        .core
        .metrics()
        .request(route, method.as_str(), response.status().as_u16(), started.elapsed());
    response
}

/// Per route: names the route for [`track`].
pub(crate) async fn label(path: &'static str, req: Request, next: Next) -> Response {
    if let Some(slot) = req.extensions().get::<RouteSlot>() {
        let _ = slot.0.set(path);
    }
    next.run(req).await
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn healthz() -> Response {
    text(StatusCode::OK, "application/json", r#"{"status":"ok"}"#.to_owned())
}

/// `GET /readyz`: 200 when the metadata database and the file storage answer, 503 naming the
/// one that does not.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = state.core.readiness(READY_TIMEOUT).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if readiness.ready() { "ready" } else { "unavailable" },
        "database": readiness.database.as_deref().unwrap_or("ok"),
        "storage": readiness.storage.as_deref().unwrap_or("ok"),
    });
    text(status, "application/json", body.to_string())
}

/// `GET /metrics`: with a metrics token configured, only for `Authorization: Bearer <token>`;
/// without one, only for clients on loopback (deny by default).
pub(crate) async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    let headers: &HeaderMap = req.headers();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let allowed = match &state.config.metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                use subtle::ConstantTimeEq;
                bool::from(given.as_bytes().ct_eq(token.as_bytes()))
            }),
        None => peer.is_some_and(|p| p.ip().is_loopback()),
    };
    if !allowed {
        let why = if state.config.metrics_token.is_some() {
            "metrics need `Authorization: Bearer <metrics token>`"
        } else {
            "metrics are served to loopback clients only; set BACKSPACE_METRICS_TOKEN to scrape from elsewhere"
        };
        return text(
            StatusCode::FORBIDDEN,
            "application/json",
            serde_json::json!({"error": {"message": why}, "status": 1, "statusCode": 403}).to_string(),
        );
    }
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        state.core.metrics().render(),
    )
}
