//! The HTTP server: one route table ([`routes`]), access rules enforced before handlers
//! ([`access`]), DocSpace's envelope and error body written in one place ([`envelope`],
//! [`error`]), and thin handlers that call one service each.
//!
//! This crate owns HTTP. It must not contain SQL or storage calls: those live behind
//! `backspace-core`.

pub mod access;
pub mod convert;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod openapi;
mod ops;
pub mod routes;

use crate::error::ApiError;
use crate::extract::{BaseUrl, RequestUrl};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, Uri};
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use backspace_core::{Core, Error};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt as _;

/// Who may register portals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    Off,
    /// Anyone: for test harnesses on loopback.
    Open,
    /// Callers sending `Authorization: Bearer <secret>`.
    Secret(String),
}

/// HTTP-level settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub registration: Registration,
    /// Largest JSON body, in bytes.
    pub max_json_bytes: usize,
    /// The public base URL (`https://backup.example.com`) for absolute links; without it,
    /// links use the request's `Host` and `X-Forwarded-Proto`.
    pub public_url: Option<String>,
    /// Mark the session cookie `Secure`.
    pub secure_cookies: bool,
    /// The bearer token `GET /metrics` requires; without one, metrics go to loopback only.
    pub metrics_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            registration: Registration::Off,
            max_json_bytes: 1 << 20,
            public_url: None,
            secure_cookies: false,
            metrics_token: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub config: Arc<ServerConfig>,
}

/// `GET /openapi.json`, built once.
async fn openapi_json() -> axum::response::Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| openapi::document().to_string()).clone();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /`: the admin page (one file, built into the binary; it uses only the public API).
async fn index_page() -> axum::response::Response {
    static PAGE: &str = include_str!("../assets/index.html");
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /docs`: a page that renders the OpenAPI document (built into the binary, no CDN).
async fn docs_page() -> axum::response::Response {
    static PAGE: &str = include_str!("../assets/docs.html");
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see the API reference for the paths backspace serves")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError(Error::MethodNotAllowed(format!(
        "method {method} is not allowed on this path"
    )))
}

/// The most header bytes (names and values) a request may carry: Kestrel's default
/// `MaxRequestHeadersTotalSize`, so clients of DocSpace fit. The HTTP layer itself reads up to
/// about 400 KiB and 100 headers; past those it answers a bare 431 on its own.
pub const MAX_HEADER_BYTES: usize = 32 << 10;

/// Refuses a request whose headers are over [`MAX_HEADER_BYTES`] before anything reads them
/// (the guard parses cookies and credentials).
async fn limit_headers(req: Request, next: middleware::Next) -> axum::response::Response {
    let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if size > MAX_HEADER_BYTES {
        return ApiError(Error::HeadersTooLarge(format!(
            "the request headers are {size} bytes, more than the {MAX_HEADER_BYTES} bytes the server accepts"
        )))
        .into_response();
    }
    next.run(req).await
}

/// The router: the table, each route behind its guard and body limit, with DocSpace-shaped
/// 404 and 405 answers and the envelope renderer around everything.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for r in routes::table() {
        let rule = r.rule;
        let guard_state = state.clone();
        let limit = if r.streams_body {
            DefaultBodyLimit::disable()
        } else {
            DefaultBodyLimit::max(state.config.max_json_bytes)
        };
        let handler = r
            .handler
            .route_layer(middleware::from_fn(move |req: Request, next: middleware::Next| {
                access::guard(axum::extract::State(guard_state.clone()), rule, req, next)
            }))
            .layer(limit);
        router = router.route(r.path, labelled(r.path, handler));
    }
    let ops: [(&'static str, axum::routing::MethodRouter<AppState>); 6] = [
        ("/docs", axum::routing::get(docs_page)),
        ("/openapi.json", axum::routing::get(openapi_json)),
        ("/", axum::routing::get(index_page)),
        ("/healthz", axum::routing::get(ops::healthz)),
        ("/readyz", axum::routing::get(ops::readyz)),
        ("/metrics", axum::routing::get(ops::metrics)),
    ];
    for (path, handler) in ops {
        router = router.route(path, labelled(path, handler));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::from_fn(limit_headers))
        .layer(middleware::from_fn(envelope::render))
        .layer(middleware::from_fn_with_state(state.clone(), ops::track))
        .with_state(state)
}

/// Answers a request whose handler panicked with a 500 in the DocSpace envelope, instead of a
/// dropped connection; the panic is logged. (Nothing a handler holds is left half-written by a
/// panic: writes are transactions and staged blobs.)
async fn catch_panic(req: Request, next: middleware::Next) -> axum::response::Response {
    use futures_util::FutureExt;
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%method, path, panic = what, "a request handler panicked");
            ApiError(Error::Internal(format!("the handler of {path} panicked"))).into_response()
        }
    }
}

/// `handler`, naming its route template for the request metrics.
fn labelled(
    path: &'static str,
    handler: axum::routing::MethodRouter<AppState>,
) -> axum::routing::MethodRouter<AppState> {
    handler.route_layer(middleware::from_fn(move |req: Request, next: middleware::Next| {
        ops::label(path, req, next)
    }))
}

/// Lower-cases the path (DocSpace paths match case-insensitively) and records the URL as the
/// client sent it, and the base URL for links.
fn prepare(mut req: Request, public_url: Option<&str>) -> Request {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http")
        .to_owned();
    let base = public_url
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("{scheme}://{host}"));
    let original = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    req.extensions_mut().insert(RequestUrl(format!("{base}{original}")));
    req.extensions_mut().insert(BaseUrl(base));
    let lower = req.uri().path().to_lowercase();
    if lower != req.uri().path() {
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{lower}?{q}"),
            None => lower,
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Serves on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let public_url = state.config.public_url.clone();
    let app = router(state).map_request(move |req: Request| prepare(req, public_url.as_deref()));
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The router with path preparation, as [`serve`] runs it, for tests without a socket.
pub fn service(
    state: AppState,
) -> impl tower::Service<Request, Response = axum::response::Response, Error = std::convert::Infallible> + Clone {
    let public_url = state.config.public_url.clone();
    router(state).map_request(move |req: Request| prepare(req, public_url.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_envelope() {
        let app = Router::new()
            .route("/boom", axum::routing::get(|| async { panic!("kaboom") as &str }))
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(middleware::from_fn(catch_panic))
            .layer(middleware::from_fn(envelope::render));
        let get = |path: &str| Request::builder().uri(path).body(axum::body::Body::empty()).unwrap();
        let response = app.clone().oneshot(get("/boom")).await.unwrap();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["statusCode"], 500, "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        assert!(
            !v.to_string().contains("kaboom"),
            "the panic's text is logged, not sent: {v}"
        );
        let response = app.oneshot(get("/fine")).await.unwrap();
        assert_eq!(response.status(), 200, "the server goes on after a panic");
    }
}
