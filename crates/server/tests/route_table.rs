//! Walks the route table: every route declares who may call it, and the router enforces it.
//! Requests go through the real router (no socket) on a fresh SQLite database.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use backspace_core::{Core, OwnerSeed, Settings};
use backspace_meta::SqlStore;
use backspace_server::access::Access;
use backspace_server::routes::table;
use backspace_server::{service, AppState, ServerConfig};
use backspace_storage::LocalStore;
use std::sync::Arc;
use tower::ServiceExt;

/// A temporary directory, removed when dropped.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn state() -> (AppState, Dir) {
    let dir = std::env::temp_dir().join(format!("backspace-routes-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::connect(&format!("sqlite://{}?mode=rwc", dir.join("m.db").display()))
        .await
        .unwrap();
    let blobs = LocalStore::open(dir.join("files")).await.unwrap();
    let core = Core::new(Arc::new(store), Arc::new(blobs), Settings::default());
    let seed = OwnerSeed {
        alias: "localhost".into(),
        email: Some("o@example.com".into()),
        password: Some("Owner-Pass-1".into()),
    };
    core.ensure_default_portal(seed).await.unwrap();
    let state = AppState {
        core: Arc::new(core),
        config: Arc::new(ServerConfig::default()),
    };
    (state, Dir(dir))
}

/// A concrete path for a route pattern.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{keyid}" | "{userid}" => uuid::Uuid::new_v4().to_string(),
            s if s.starts_with('{') => "1".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(
    state: &AppState,
    method: &axum::http::Method,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("content-type", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = service(state.clone())
        .oneshot(req.body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn every_route_is_unique_and_lower_case() {
    let routes = table();
    let mut seen = std::collections::HashSet::new();
    for r in &routes {
        assert_eq!(
            r.path,
            r.path.to_lowercase(),
            "{} must be lower-case: paths are lower-cased before routing",
            r.path
        );
        assert!(
            seen.insert((r.method.clone(), r.path)),
            "{} {} is declared twice",
            r.method,
            r.path
        );
    }
}

#[tokio::test]
async fn every_protected_route_refuses_anonymous_callers() {
    let (state, _dir) = state().await;
    for r in table() {
        if matches!(r.rule.access, Access::Public | Access::Anonymous) {
            continue;
        }
        let (status, body) = send(&state, &r.method, &concrete(r.path), None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {} answered {status} to an anonymous caller",
            r.method,
            r.path
        );
        assert_eq!(body["statusCode"], 401, "{} {}: {body}", r.method, r.path);
    }
}

#[tokio::test]
async fn role_rules_refuse_guests_where_declared() {
    let (state, _dir) = state().await;
    let owner = state.core.default_owner().await.unwrap();
    // A guest made through the service, signed in through the service.
    let guest = backspace_types::dto::people::MemberRequest {
        email: Some("guest@example.com".into()),
        firstname: Some("Gu".into()),
        lastname: Some("Est".into()),
        password: Some("Guest-Pass-1".into()),
        passwordhash: None,
        kind: Some(backspace_types::EmployeeType::Guest),
    };
    state.core.create_member(&owner, guest, true).await.unwrap();
    let auth = backspace_types::dto::auth::AuthRequest {
        username: Some("guest@example.com".into()),
        password: Some("Guest-Pass-1".into()),
        ..Default::default()
    };
    let signed = state.core.sign_in(&owner.portal, auth, "test").await.unwrap();
    let bearer = format!("Bearer {}", signed.token);
    let mut checked = 0;
    for r in table() {
        if !matches!(
            r.rule.access,
            Access::NotGuest | Access::RoomManager | Access::Admin | Access::Owner
        ) {
            continue;
        }
        let (status, body) = send(&state, &r.method, &concrete(r.path), Some(&bearer)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{} {} let a guest through",
            r.method,
            r.path
        );
        assert_eq!(body["error"]["message"], "Access denied", "{} {}", r.method, r.path);
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} role-restricted routes: the table lost its rules"
    );
}

#[tokio::test]
async fn a_portal_locked_by_a_restore_answers_only_the_restore_progress() {
    let (state, _dir) = state().await;
    let owner = state.core.default_owner().await.unwrap();
    let auth = backspace_types::dto::auth::AuthRequest {
        username: Some("o@example.com".into()),
        password: Some("Owner-Pass-1".into()),
        ..Default::default()
    };
    let token = format!(
        "Bearer {}",
        state.core.sign_in(&owner.portal, auth, "test").await.unwrap().token
    );
    state
        .core
        .store()
        .set_portal_status(owner.portal.id, 4, 0)
        .await
        .unwrap();
    let (status, body) = send(&state, &axum::http::Method::GET, "/api/2.0/people/@self", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("being restored"),
        "{body}"
    );
    let (status, _) = send(
        &state,
        &axum::http::Method::GET,
        "/api/2.0/backup/getrestoreprogress",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    state
        .core
        .store()
        .set_portal_status(owner.portal.id, 0, 0)
        .await
        .unwrap();
    let (status, _) = send(&state, &axum::http::Method::GET, "/api/2.0/people/@self", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
}

/// `GET /openapi.json` documents every route of the table with its method and whether it needs
/// a credential, and gives `verifybackup`'s answer its schema.
#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let (state, _dir) = state().await;
    let (status, doc) = send(&state, &axum::http::Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for r in table() {
        let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} is not in the document", r.method, r.path);
        let secured = !op["security"].as_array().expect("security").is_empty();
        let open = matches!(r.rule.access, Access::Public | Access::Anonymous);
        assert_eq!(secured, !open, "{} {}: security", r.method, r.path);
    }
    let verify = &doc["paths"]["/api/2.0/backup/verifybackup/{backupid}"]["get"];
    assert_eq!(verify["parameters"][0]["name"], "backupid");
    let envelope = &verify["responses"]["200"]["content"]["application/json"]["schema"];
    let reference = envelope["properties"]["response"]["$ref"].as_str().expect("a $ref");
    let name = reference.strip_prefix("#/components/schemas/").expect("a component");
    let report = &doc["components"]["schemas"][name];
    assert_eq!(report["properties"]["ok"]["type"], "boolean", "{report}");
    assert_eq!(report["properties"]["checkedChunks"]["type"], "integer", "{report}");
    assert_eq!(report["properties"]["damaged"]["items"]["type"], "string", "{report}");
    assert_eq!(report["properties"]["id"]["format"], "uuid", "{report}");
    let mut required: Vec<&str> = report["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["checkedChunks", "damaged", "id", "ok"]);
    let error = &verify["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
    assert!(error.as_str().is_some_and(|r| r.ends_with("ErrorBody")), "{error}");
}
