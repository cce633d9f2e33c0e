//! Portals: registration, selection by Origin, isolation, deletion; people and roles.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn registration_is_off_unless_configured() {
    let s = TestServer::spawn_with(&[("BACKSPACE_REGISTRATION", "off")]).await;
    let resp = s
        .http
        .post(s.url("/apisystem/portal/register"))
        .json(&json!({"portalName": "nope-portal", "firstName": "a", "lastName": "b", "email": "a@b.co"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    let s = TestServer::spawn_with(&[("BACKSPACE_REGISTRATION_SECRET", "s3cret")]).await;
    let body = json!({"portalName": "secret-portal", "firstName": "a", "lastName": "b", "email": "a@b.co", "password": "Passw0rd-1"});
    let denied = s
        .http
        .post(s.url("/apisystem/portal/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let wrong = s
        .http
        .post(s.url("/apisystem/portal/register"))
        .bearer_auth("guess")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = s
        .http
        .post(s.url("/apisystem/portal/register"))
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn registration_answers_unenveloped_and_rejects_bad_names() {
    let s = TestServer::spawn().await;
    let (origin, owner, body) = register(&s, "integration-test-portal-k3j9x2").await;
    assert!(
        body.get("response").is_none(),
        "registration must not be enveloped: {body}"
    );
    let tenant = &body["tenant"];
    assert_eq!(tenant["portalName"], "integration-test-portal-k3j9x2");
    assert_eq!(tenant["status"], "Active");
    assert!(tenant["tenantId"].as_i64().unwrap() > 1);
    // ownerId is the owner's id everywhere.
    let (_, me) = s.get("/api/2.0/people/@self", &owner).await;
    assert_eq!(me["response"]["id"], tenant["ownerId"]);
    let room = s.room(&owner, "Autotest Backup Room").await;
    let (_, rooms) = s.get("/api/2.0/files/rooms", &owner).await;
    assert_eq!(rooms["response"]["folders"][0]["ownedBy"]["id"], tenant["ownerId"]);
    assert_eq!(rooms["response"]["folders"][0]["id"], room);
    assert_eq!(rooms["response"]["files"], json!([]));

    let cases = [
        (
            json!({"portalName": "integration-test-portal-k3j9x2", "firstName": "a", "lastName": "b", "email": "x@y.z"}),
            "portalNameExist",
        ),
        (
            json!({"portalName": "bad_name!", "firstName": "a", "lastName": "b", "email": "x@y.z"}),
            "portalNameIncorrect",
        ),
        (
            json!({"portalName": "", "firstName": "a", "lastName": "b", "email": "x@y.z"}),
            "portalNameEmpty",
        ),
        (
            json!({"portalName": "okname", "firstName": "<b>", "lastName": "b", "email": "x@y.z"}),
            "error",
        ),
        (
            json!({"portalName": "okname", "firstName": "a", "lastName": "b", "email": "x@y.z", "password": "short"}),
            "passPolicyError",
        ),
    ];
    for (req, code) in cases {
        let resp = s
            .http
            .post(s.url("/apisystem/portal/register"))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{req}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], code, "{req} → {body}");
        assert!(body["message"].is_string());
    }
    let (status, portal) = s.get("/api/2.0/portal", &owner).await;
    assert_eq!(status, 200);
    assert_eq!(portal["response"]["tenantAlias"], "integration-test-portal-k3j9x2");
    let _ = origin;
}

#[tokio::test]
async fn portals_are_isolated() {
    let s = TestServer::spawn().await;
    let a = Auth::bearer(&s.owner_token().await);
    let room_a = s.room(&a, "Secret room").await;
    let (_, up) = s.upload(&a, room_a, "secret.txt", b"portal a only".to_vec()).await;
    let file_a = up["response"][0]["id"].as_i64().unwrap();

    // Portal B has an owner with the same e-mail: sign-in resolves the portal first.
    let (origin_b, b, _) = register(&s, "portal-bbb").await;
    let (_, key_b) = s.create_key(&b, json!({"name": "b"})).await;
    let key_b = Auth::bearer(&key_b).at(&origin_b);

    let (status, body) = s.get(&format!("/api/2.0/files/{room_a}"), &key_b).await;
    assert_error(status, &body, 404, "The required folder was not found");
    let (status, body) = s.get(&format!("/api/2.0/files/file/{file_a}"), &key_b).await;
    assert_error(status, &body, 404, "The required file was not found");
    let (status, _) = s.download(&key_b, file_a).await;
    assert_eq!(status, 404);
    let (_, rooms) = s.get("/api/2.0/files/rooms", &key_b).await;
    assert_eq!(
        rooms["response"]["total"], 0,
        "portal b lists portal a's rooms: {rooms}"
    );
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/api/2.0/files/file/{file_a}"),
            &key_b,
            Some(json!({"immediately": true})),
        )
        .await;
    assert_error(status, &body, 404, "The required file was not found");
    let (_, people) = s.get("/api/2.0/people", &key_b).await;
    assert_eq!(people["total"], 1, "portal b sees portal a's people: {people}");

    // A credential belongs to one portal: B's key presented to A (no Origin) is a 401.
    let mut b_at_a = key_b.clone();
    b_at_a.origin = None;
    let (status, _) = s.get("/api/2.0/people/@self", &b_at_a).await;
    assert_eq!(status, 401);
    // And A's session presented to B is a 401.
    let (status, _) = s.get("/api/2.0/people/@self", &a.clone().at(&origin_b)).await;
    assert_eq!(status, 401);
    // A's file is intact.
    let (status, bytes) = s.download(&a, file_a).await;
    assert_eq!((status, bytes.as_slice()), (200, &b"portal a only"[..]));
}

#[tokio::test]
async fn the_owner_deletes_a_portal_with_its_credentials_and_files() {
    let s = TestServer::spawn().await;
    let (origin, owner, _) = register(&s, "doomed-portal").await;
    let (_, key) = s.create_key(&owner, json!({"name": "k"})).await;
    let key = Auth::bearer(&key).at(&origin);
    let room = s.room(&owner, "R").await;
    s.upload(&owner, room, "f.bin", vec![7; 1000]).await;
    let (_, admin) = s.person(&owner, "DocSpaceAdmin").await;
    let (status, body) = s
        .call(Method::DELETE, "/api/2.0/portal/deleteportalimmediately", &admin, None)
        .await;
    assert_error(status, &body, 403, "Access denied");
    let (status, body) = s
        .call(
            Method::DELETE,
            "/api/2.0/portal/deleteportalimmediately",
            &owner,
            Some(json!({"reference": "x"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["response"].is_string());
    assert_eq!(s.get("/api/2.0/people/@self", &key).await.0, 401);
    assert_eq!(s.get("/api/2.0/people/@self", &owner).await.0, 401);
    let portal_dirs = std::fs::read_dir(s.data_dir.join("files/portals")).unwrap().count();
    assert_eq!(portal_dirs, 0, "the deleted portal's files are still on disk");
    // Recorded as garbage by the delete's commit, and forgotten once deleted.
    assert!(sql_strings(&s.database_url, "SELECT blob_key FROM blob_garbage")
        .await
        .is_empty());
    // The default portal cannot be deleted.
    let default_owner = Auth::bearer(&s.owner_token().await);
    let (status, body) = s
        .call(
            Method::DELETE,
            "/api/2.0/portal/deleteportalimmediately",
            &default_owner,
            None,
        )
        .await;
    assert_error(status, &body, 403, "cannot be deleted");
}

#[tokio::test]
async fn people_are_created_by_role_rules() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let (_, admin) = s.person(&owner, "DocSpaceAdmin").await;
    let (_, room_admin) = s.person(&admin, "RoomAdmin").await;
    let (_, user) = s.person(&room_admin, "User").await;
    let (guest_email, guest) = s.person(&room_admin, "Guest").await;

    let (_, me) = s.get("/api/2.0/people/@self", &guest).await;
    let me = &me["response"];
    assert_eq!(me["email"], guest_email);
    assert_eq!(
        (me["isVisitor"].clone(), me["isAdmin"].clone(), me["isOwner"].clone()),
        (json!(true), json!(false), json!(false))
    );
    assert_eq!(me["activationStatus"], 2);
    assert_eq!(me["status"], 1);
    assert_eq!(me["isLDAP"], false);
    let (_, owner_me) = s.get("/api/2.0/people/@self", &owner).await;
    assert_eq!(
        owner_me["response"]["isAdmin"], false,
        "the owner's isAdmin is false, as DocSpace"
    );
    assert_eq!(owner_me["response"]["isOwner"], true);

    let body =
        |kind: &str| json!({"email": format!("{kind}-x@test.com"), "firstName": "A", "lastName": "B", "type": kind});
    for (who, auth, kind) in [
        ("admin", &admin, "DocSpaceAdmin"),
        ("room admin", &room_admin, "RoomAdmin"),
        ("user", &user, "User"),
        ("guest", &guest, "User"),
        ("owner via /people", &owner, "Guest"),
    ] {
        let (status, v) = s.post("/api/2.0/people", auth, body(kind)).await;
        assert_error(status, &v, 403, "Access denied");
        let _ = who;
    }
    for auth in [&user, &guest] {
        let (status, v) = s.get("/api/2.0/people", auth).await;
        assert_error(status, &v, 403, "Access denied");
    }
    let (status, list) = s.get("/api/2.0/people?count=2&startIndex=0", &owner).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 5);
    assert_eq!(list["count"], 2);
    // createdBy is filled for admins.
    let (_, list) = s
        .get(&format!("/api/2.0/people?filterValue={}", guest_email), &owner)
        .await;
    assert_eq!(list["response"][0]["createdBy"]["displayName"], "Test RoomAdmin");
    let (status, v) = s
        .post(
            "/api/2.0/people",
            &owner,
            json!({"email": guest_email, "firstName": "A", "lastName": "B", "type": "User"}),
        )
        .await;
    assert_error(status, &v, 400, "already registered");
}
