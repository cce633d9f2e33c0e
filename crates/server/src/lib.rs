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
        .layer(middleware::from_fn(envelope::render))
        .layer(middleware::from_fn_with_state(state.clone(), ops::track))
        .with_state(state)
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
