//! Sign-in, the credential forms, API keys and their scopes, throttling.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn every_credential_form_reaches_the_same_person() {
    let s = TestServer::spawn().await;
    let token = s.owner_token().await;
    let (_, key) = s.create_key(&Auth::bearer(&token), json!({"name": "forms"})).await;
    let basic = format!("Basic {}", base64_encode(&format!("{OWNER_EMAIL}:{OWNER_PASSWORD}")));
    let forms = [
        ("session as Bearer", Auth::bearer(&token)),
        ("session raw", Auth::raw(&token)),
        ("session cookie", Auth::cookie(&token)),
        ("key as Bearer", Auth::bearer(&key)),
        ("key raw (the DocSpace samples)", Auth::raw(&key)),
        ("key cookie", Auth::cookie(&key)),
        (
            "Basic",
            Auth {
                authorization: Some(basic),
                ..Auth::none()
            },
        ),
    ];
    for (what, auth) in forms {
        let (status, body) = s.get("/api/2.0/people/@self", &auth).await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(body["response"]["email"], OWNER_EMAIL, "{what}");
        assert_eq!(body["response"]["isOwner"], true, "{what}");
        assert_eq!(body["statusCode"], 200);
    }
}

fn base64_encode(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_with_an_error_body() {
    let s = TestServer::spawn().await;
    let (status, body) = s.get("/api/2.0/people/@self", &Auth::none()).await;
    assert_error(status, &body, 401, "No valid credentials");
    let (status, body) = s.get("/api/2.0/people/@self", &Auth::bearer("not-a-token")).await;
    assert_error(status, &body, 401, "User authentication failed");
    let forged = format!("sk-{}", "0".repeat(64));
    let (status, body) = s.get("/api/2.0/people/@self", &Auth::bearer(&forged)).await;
    assert_error(status, &body, 401, "User authentication failed");
    // Authentication is checked before the body: an anonymous POST with a bad body is a 401.
    let resp = s
        .http
        .post(s.url("/api/2.0/keys"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Anonymous routes still answer.
    let (status, body) = s.get("/api/2.0/authentication", &Auth::none()).await;
    assert_eq!((status, &body["response"]), (200, &json!(false)));
    let token = s.owner_token().await;
    let (_, body) = s.get("/api/2.0/authentication", &Auth::bearer(&token)).await;
    assert_eq!(body["response"], true);
}

#[tokio::test]
async fn sign_in_sets_the_cookie_and_logout_revokes_the_session() {
    let s = TestServer::spawn().await;
    let resp = s
        .http
        .post(s.url("/api/2.0/authentication"))
        .json(&json!({"UserName": OWNER_EMAIL, "Password": OWNER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    let token = body["response"]["token"].as_str().unwrap();
    assert!(cookie.starts_with(&format!("asc_auth_key={token};")), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(
        (body["response"]["sms"].clone(), body["response"]["tfa"].clone()),
        (json!(false), json!(false))
    );
    assert!(body["response"]["expires"].as_str().unwrap().len() == 19, "{body}");

    let (status, body) = s
        .post("/api/2.0/authentication/logout", &Auth::cookie(token), json!({}))
        .await;
    assert_eq!(status, 200);
    assert!(body.get("response").is_none(), "logout has no response member: {body}");
    assert_eq!(body["count"], 0);
    let (status, _) = s.get("/api/2.0/people/@self", &Auth::cookie(token)).await;
    assert_eq!(status, 401, "the session survived logout");
}

#[tokio::test]
async fn wrong_passwords_are_throttled_with_retry_after() {
    let s = TestServer::spawn().await;
    let attempt = |password: &'static str| {
        s.http
            .post(s.url("/api/2.0/authentication"))
            .json(&json!({"userName": OWNER_EMAIL, "password": password}))
            .send()
    };
    for _ in 0..5 {
        let resp = attempt("wrong-password").await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["message"], "User authentication failed");
    }
    let resp = attempt("wrong-password").await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // While blocked, even the right password waits.
    let resp = attempt(OWNER_PASSWORD).await.unwrap();
    assert_eq!(resp.status(), 429);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 429);
}

/// Instances sharing a database share the throttle: failures spread over two instances count
/// together, and the right password on the other instance waits too. A success on one clears
/// the pair for both. The login is not stored in clear.
#[tokio::test]
async fn the_throttle_counts_failures_on_every_instance() {
    let a = TestServer::spawn().await;
    let b = a.spawn_sharing(&[]).await;
    let attempt = |s: &TestServer, login: &str, password: &str| {
        s.http
            .post(s.url("/api/2.0/authentication"))
            .json(&json!({"userName": login, "password": password}))
            .send()
    };
    for i in 0..5 {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(attempt(s, OWNER_EMAIL, "wrong-password").await.unwrap().status(), 401);
    }
    for s in [&a, &b] {
        let resp = attempt(s, OWNER_EMAIL, OWNER_PASSWORD).await.unwrap();
        assert_eq!(resp.status(), 429, "one instance did not count the other's failures");
    }
    // Another login from the same address is not held back.
    assert_eq!(attempt(&b, "nobody@example.com", "x").await.unwrap().status(), 401);
    let stored = sql_strings(&a.database_url, "SELECT login_digest FROM login_failures").await;
    assert!(stored.len() >= 6, "{stored:?}");
    assert!(stored.iter().all(|d| d.len() == 64 && !d.contains('@')), "{stored:?}");
}

#[tokio::test]
async fn keys_are_shown_once_masked_after_and_act_as_their_creator() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let (status, v) = s
        .post(
            "/api/2.0/keys",
            &owner,
            json!({"name": "<script>", "expiresInDays": "30"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let created = &v["response"];
    let key = created["key"].as_str().unwrap();
    assert!(
        key.starts_with("sk-")
            && key.len() == 67
            && key[3..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(created["name"], "<script>");
    assert_eq!(created["permissions"], json!([]));
    assert_eq!(created["isActive"], true);
    assert_eq!(created["keyPostfix"], &key[key.len() - 4..]);
    assert!(created["expiresAt"].as_str().unwrap().ends_with('Z'));
    let (_, me) = s.get("/api/2.0/people/@self", &owner).await;
    assert_eq!(created["createBy"]["id"], me["response"]["id"]);
    assert_eq!(created["createBy"]["displayName"], me["response"]["displayName"]);

    let (status, list) = s.get("/api/2.0/keys", &owner).await;
    assert_eq!(status, 200);
    let listed = &list["response"][0];
    assert_eq!(listed["key"], format!("sk-***{}", &key[key.len() - 4..]));
    assert!(!list.to_string().contains(key), "the plaintext key was listed");

    let (status, perms) = s.get("/api/2.0/keys/permissions", &Auth::bearer(key)).await;
    assert_eq!(status, 200);
    assert!(perms["response"].as_array().unwrap().contains(&json!("*:read")));
    let (status, me_key) = s.get("/api/2.0/keys/@self", &Auth::bearer(key)).await;
    assert_eq!(status, 200, "{me_key}");
    assert_eq!(me_key["response"]["id"], created["id"]);
    assert!(
        me_key["response"]["lastUsed"].is_string(),
        "lastUsed not set after use: {me_key}"
    );
    // Without expiresInDays there is no expiresAt.
    let (_, v) = s.post("/api/2.0/keys", &owner, json!({"name": "forever"})).await;
    assert!(v["response"].get("expiresAt").is_none(), "{v}");
}

#[tokio::test]
async fn scopes_limit_what_a_key_may_do() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let (_, read_only) = s
        .create_key(&owner, json!({"name": "ro", "permissions": ["*:read"]}))
        .await;
    let (_, files_read) = s
        .create_key(&owner, json!({"name": "fr", "permissions": ["files:read"]}))
        .await;
    let ro = Auth::bearer(&read_only);
    let (status, _) = s.get("/api/2.0/files/rooms", &ro).await;
    assert_eq!(status, 200);
    let (status, body) = s
        .post("/api/2.0/files/rooms", &ro, json!({"title": "x", "roomType": 5}))
        .await;
    assert_error(status, &body, 403, "Access denied");
    let fr = Auth::bearer(&files_read);
    let (status, body) = s.post("/api/2.0/keys", &fr, json!({"name": "escalate"})).await;
    assert_error(status, &body, 403, "Access denied");
    let (status, _) = s.get("/api/2.0/files/@my", &fr).await;
    assert_eq!(status, 200);
    let (status, body) = s.get("/api/2.0/people", &fr).await;
    assert_error(status, &body, 403, "Access denied");
}

#[tokio::test]
async fn revoked_deactivated_and_expired_keys_are_refused() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let (id, key) = s.create_key(&owner, json!({"name": "revoke"})).await;
    assert_eq!(s.get("/api/2.0/people/@self", &Auth::bearer(&key)).await.0, 200);
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/2.0/keys/{id}"), &owner, None)
        .await;
    assert_eq!((status, &v["response"]), (200, &json!(true)));
    let (status, body) = s.get("/api/2.0/people/@self", &Auth::bearer(&key)).await;
    assert_error(status, &body, 401, "User authentication failed");

    let (id, key) = s.create_key(&owner, json!({"name": "pause"})).await;
    let (status, v) = s
        .call(
            Method::PUT,
            &format!("/api/2.0/keys/{id}"),
            &owner,
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!((status, &v["response"]), (200, &json!(true)));
    assert_eq!(s.get("/api/2.0/people/@self", &Auth::bearer(&key)).await.0, 401);
    s.call(
        Method::PUT,
        &format!("/api/2.0/keys/{id}"),
        &owner,
        Some(json!({"isActive": true})),
    )
    .await;
    assert_eq!(s.get("/api/2.0/people/@self", &Auth::bearer(&key)).await.0, 200);

    // Expiry: a day is too long to wait, so the test moves the key's expiry into the past in
    // the database, as time passing would.
    let (id, key) = s
        .create_key(&owner, json!({"name": "expire", "expiresInDays": 1}))
        .await;
    assert_eq!(s.get("/api/2.0/people/@self", &Auth::bearer(&key)).await.0, 200);
    expire_key(&s, &id).await;
    let (status, body) = s.get("/api/2.0/people/@self", &Auth::bearer(&key)).await;
    assert_error(status, &body, 401, "User authentication failed");
    let (status, v) = s
        .call(
            Method::PUT,
            &format!("/api/2.0/keys/{id}"),
            &owner,
            Some(json!({"isActive": true})),
        )
        .await;
    assert_eq!(
        (status, &v["response"]),
        (200, &json!(false)),
        "an expired key was updated"
    );
    // Unknown and malformed ids.
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/api/2.0/keys/{}", uuid::Uuid::new_v4()),
            &owner,
            None,
        )
        .await;
    assert_error(status, &body, 404, "not found");
    let (status, body) = s.call(Method::DELETE, "/api/2.0/keys/not-a-guid", &owner, None).await;
    assert_error(status, &body, 404, "not a valid id");
}

#[tokio::test]
async fn the_cli_prints_a_working_owner_key_on_its_last_line() {
    let s = TestServer::spawn().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backspace"))
        .env_remove("BACKSPACE_URL")
        .args(["keys", "create", "--name", "scripts", "--data-dir"])
        .arg(&s.data_dir)
        .arg("--database-url")
        .arg(&s.database_url)
        .env("BACKSPACE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().trim();
    assert!(key.starts_with("sk-"), "{stdout}");
    let (status, me) = s.get("/api/2.0/people/@self", &Auth::raw(key)).await;
    assert_eq!(status, 200);
    assert_eq!(me["response"]["email"], OWNER_EMAIL);
}
