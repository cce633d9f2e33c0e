//! Issue 7 "Security": a role-by-endpoint matrix. Every route of `crates/server/src/routes.rs`
//! (the backup routes under both `/api/2.0/backup/` and `/api/2.0/portal/`) is called by ten
//! callers, and each cell's status is asserted exactly:
//!
//! anonymous, a Guest, a User, a RoomAdmin, a DocSpaceAdmin, the owner (session tokens), a
//! read-only (`*:read`) API key of the owner, an expired key, a revoked key, and a key of
//! another portal's owner.
//!
//! The expected statuses come from the contract (`PORTAL_API.md`, `BACKUP_API.md`) and the
//! route's rule, not from what the server answers:
//! * no or invalid credentials on a protected route: 401 (an expired, revoked or foreign key is
//!   an invalid credential; a credential is bound to its portal);
//! * a valid credential whose API-key scope does not cover the call: 403 (GET needs a read
//!   scope, anything else a write scope; `*:read` covers every GET);
//! * a role that may not: 403; on anonymous routes a bad credential is no credential;
//! * the registration and the signed backup download link need no portal and no credential.
//!
//! Every denied cell must carry a DocSpace error body (`error.message`), and where the call
//! would change something, a probe read as the owner before and after it must be unchanged.
//! Destructive cells get a fresh target each, and in every row the denied cells run before the
//! allowed ones (so the owner's deletion of the portal runs last of all).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The ten callers, in column order.
const CALLERS: [&str; 10] = [
    "anon", "guest", "user", "roomadm", "dsadmin", "owner", "ro-key", "expired", "revoked", "foreign",
];
const GUEST: usize = 1;
const USER: usize = 2;
const ROOM_ADMIN: usize = 3;
const DS_ADMIN: usize = 4;
const OWNER: usize = 5;
const RO_KEY: usize = 6;

const PASSWORD: &str = "Passw0rd-xyz";
const PORTAL_PASSWORD: &str = "Portal-Pass-1";

/// Statuses of the five signed-in roles: guest, user, room admin, DocSpace admin, owner.
type Roles = [u16; 5];
const EVERYONE: Roles = [200, 200, 200, 200, 200];
/// `Access::NotGuest`.
const NOT_GUEST: Roles = [403, 200, 200, 200, 200];
/// `Access::RoomManager`: owner, DocSpace admin, room admin.
const ROOM_MANAGERS: Roles = [403, 403, 200, 200, 200];
/// `Access::Admin`: owner and DocSpace admin. Also who may read or write a room the owner
/// created and shared with no one (the others are not its members: 403).
const ADMINS: Roles = [403, 403, 403, 200, 200];
/// `Access::Owner`.
const OWNER_ONLY: Roles = [403, 403, 403, 403, 200];
/// Guests have no My documents (PORTAL_API §5.2): the section is a missing folder, 404.
const HAS_MY_DOCUMENTS: Roles = [404, 200, 200, 200, 200];

/// A protected route: 401 without a valid credential, `roles` for the five roles, `ro` for the
/// owner's read-only key (200 on a GET it may read, 403 on writes).
fn authed(roles: Roles, ro: u16) -> [u16; 10] {
    let [g, u, r, d, o] = roles;
    [401, g, u, r, d, o, ro, 401, 401, 401]
}

/// An anonymous route: everyone gets `all`, except that an API key's scope still applies
/// (BACKUP_API §3.3: the resource filter enforces the method's scope when the request carries
/// `Bearer sk-…`), so the read-only key gets `ro`.
fn anonymous(all: u16, ro: u16) -> [u16; 10] {
    let mut out = [all; 10];
    out[RO_KEY] = ro;
    out
}

/// A public route: no portal, no credential checked.
fn public(all: u16) -> [u16; 10] {
    [all; 10]
}

/// What a cell expects.
#[derive(Clone, Debug)]
enum Exp {
    Is(u16),
    /// Not run (why).
    Skip(&'static str),
}

impl Exp {
    fn status(&self) -> Option<u16> {
        match self {
            Self::Is(s) => Some(*s),
            Self::Skip(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    /// Multipart with one `File` part of that name.
    File(String),
    Raw(Vec<u8>),
}

/// What a probe reads from its answer.
#[derive(Clone, Debug)]
enum Pick {
    /// A JSON pointer into the body.
    Ptr(&'static str),
    /// The name of the key with this id in `GET /keys`.
    KeyName(String),
}

/// A read made as the owner before and after a denied cell: both must be equal.
#[derive(Clone, Debug)]
struct Probe {
    path: String,
    pick: Pick,
}

fn probe(path: impl Into<String>, ptr: &'static str) -> Option<Probe> {
    Some(Probe {
        path: path.into(),
        pick: Pick::Ptr(ptr),
    })
}

/// A check of an answered cell's body.
type Check = std::sync::Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// `response` must be `want`.
fn response_is(want: Value) -> Option<Check> {
    Some(std::sync::Arc::new(move |body: &Value| {
        if body["response"] == want {
            Ok(())
        } else {
            Err(format!("response must be {want}"))
        }
    }))
}

/// The ids of `response.folders` of a listing.
fn folder_ids(body: &Value) -> Vec<Value> {
    body["response"]["folders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["id"].clone())
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    Nothing,
    /// Wait for the portal's backup job to finish before the next row.
    WaitBackup,
}

struct Row {
    name: String,
    method: Method,
    paths: Vec<String>,
    bodies: Vec<Body>,
    exp: Vec<Exp>,
    probes: Vec<Option<Probe>>,
    /// What an answered cell's body must satisfy beyond its status (e.g. `false` for a refused
    /// key update, or a listing that must not show what the caller may not see).
    checks: Vec<Option<Check>>,
    /// Per-cell credentials replacing the caller's own (fresh sessions for logout).
    auths: Vec<Option<Auth>>,
    /// Whether denied cells must carry a DocSpace error body.
    error_body: bool,
    after: After,
}

impl Row {
    fn new(method: Method, path: impl Into<String>, body: Body, statuses: [u16; 10]) -> Self {
        let path = path.into();
        Self {
            name: format!("{method} {path}"),
            method,
            paths: vec![path; 10],
            bodies: vec![body; 10],
            exp: statuses.iter().map(|s| Exp::Is(*s)).collect(),
            probes: vec![None; 10],
            checks: vec![None; 10],
            auths: vec![None; 10],
            error_body: true,
            after: After::Nothing,
        }
    }
    /// The name shown in the matrix (when the paths differ per cell).
    fn named(mut self, name: impl Into<String>) -> Self {
        self.name = format!("{} {}", self.method, name.into());
        self
    }
    fn paths(mut self, f: impl Fn(usize) -> String) -> Self {
        self.paths = (0..10).map(f).collect();
        self
    }
    fn bodies(mut self, f: impl Fn(usize) -> Body) -> Self {
        self.bodies = (0..10).map(f).collect();
        self
    }
    fn probe(mut self, p: Option<Probe>) -> Self {
        self.probes = vec![p; 10];
        self
    }
    fn probes(mut self, f: impl Fn(usize) -> Option<Probe>) -> Self {
        self.probes = (0..10).map(f).collect();
        self
    }
    fn checks(mut self, f: impl Fn(usize) -> Option<Check>) -> Self {
        self.checks = (0..10).map(f).collect();
        self
    }
    fn auths(mut self, f: impl Fn(usize) -> Option<Auth>) -> Self {
        self.auths = (0..10).map(f).collect();
        self
    }
    fn raw_errors(mut self) -> Self {
        self.error_body = false;
        self
    }
    fn then(mut self, after: After) -> Self {
        self.after = after;
        self
    }
    fn skip(mut self, col: usize, why: &'static str) -> Self {
        self.exp[col] = Exp::Skip(why);
        self
    }
}

struct Ctx {
    s: TestServer,
    owner: Auth,
    callers: Vec<Auth>,
}

impl Ctx {
    async fn send(&self, method: Method, path: &str, auth: &Auth, body: &Body) -> (u16, Value) {
        let mut req = self.s.http.request(method, self.s.url(path)).headers(auth.headers());
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Raw(bytes) => req.body(bytes.clone()),
            Body::File(name) => {
                let part = reqwest::multipart::Part::bytes(b"matrix bytes".to_vec()).file_name(name.clone());
                req.multipart(reqwest::multipart::Form::new().part("File", part))
            }
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    async fn read(&self, p: &Probe) -> Value {
        let (status, v) = self.send(Method::GET, &p.path, &self.owner, &Body::None).await;
        let picked = match &p.pick {
            Pick::Ptr(ptr) => v.pointer(ptr).cloned().unwrap_or(Value::Null),
            Pick::KeyName(id) => v["response"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|k| k["id"] == id.as_str())
                .map(|k| k["name"].clone())
                .unwrap_or(Value::Null),
        };
        json!([status, picked])
    }

    async fn post_ok(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.s.post(path, &self.owner, body).await;
        assert_eq!(status, 200, "setup {path}: {v}");
        v
    }

    /// Starts a DataStore backup as the owner, waits for it, and returns (id, link).
    async fn backup(&self) -> (String, String) {
        let v = self
            .post_ok("/api/2.0/backup/startbackup", json!({"storageType": 4}))
            .await;
        let id = v["response"]["taskId"].as_str().unwrap().to_owned();
        let done = wait_backup(&self.s, &self.owner).await;
        assert_eq!(done["error"], "", "setup backup failed: {done}");
        (id, done["link"].as_str().unwrap().to_owned())
    }
}

/// A WebDAV server that accepts everything: enough for `POST /files/thirdparty/backup`, which
/// only checks the folder with a PROPFIND.
async fn dav_stub() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 207 Multi-Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}/dav/")
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_gets_the_contract_status_on_every_endpoint() {
    let s = TestServer::spawn().await;
    let dav = dav_stub().await;

    // The portal under test is a registered one (the server's default portal may never be
    // deleted), and another portal supplies the foreign key.
    let (origin, owner, registered) = register(&s, "security-matrix-a").await;
    let owner_id = registered["tenant"]["ownerId"].as_str().unwrap().to_owned();
    let (_, other_owner, _) = register(&s, "security-matrix-b").await;
    let (_, foreign_key) = s.create_key(&other_owner, json!({"name": "foreign"})).await;

    let (guest_email, guest) = s.person(&owner, "Guest").await;
    let (user_email, user) = s.person(&owner, "User").await;
    let (room_admin_email, room_admin) = s.person(&owner, "RoomAdmin").await;
    let (admin_email, admin) = s.person(&owner, "DocSpaceAdmin").await;
    let (_, ro_key) = s
        .create_key(&owner, json!({"name": "read only", "permissions": ["*:read"]}))
        .await;
    let (expired_id, expired_key) = s
        .create_key(&owner, json!({"name": "expired", "expiresInDays": 1}))
        .await;
    expire_key(&s, &expired_id).await;
    let (revoked_id, revoked_key) = s.create_key(&owner, json!({"name": "revoked"})).await;
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/2.0/keys/{revoked_id}"), &owner, None)
        .await;
    assert_eq!((status, &v["response"]), (200, &json!(true)), "revoking: {v}");

    let key_auth = |k: &str| Auth::bearer(k).at(&origin);
    let callers = vec![
        Auth::none().at(&origin),
        guest,
        user,
        room_admin,
        admin,
        owner.clone(),
        key_auth(&ro_key),
        key_auth(&expired_key),
        key_auth(&revoked_key),
        key_auth(&foreign_key),
    ];
    let emails: [(&str, &str); 5] = [
        (&guest_email, PASSWORD),
        (&user_email, PASSWORD),
        (&room_admin_email, PASSWORD),
        (&admin_email, PASSWORD),
        (OWNER_EMAIL, PORTAL_PASSWORD),
    ];
    let cx = Ctx {
        s,
        owner: owner.clone(),
        callers,
    };
    let s = &cx.s;

    // Targets. Destructive rows get one fresh target per cell.
    let room = s.room(&owner, "Matrix room").await;
    let upload_file = |name: String| {
        let owner = owner.clone();
        async move {
            let (status, v) = s.upload(&owner, room, &name, b"matrix".to_vec()).await;
            assert_eq!(status, 200, "setup upload: {v}");
            v["response"][0]["id"].as_i64().unwrap()
        }
    };
    let file = upload_file("target.txt".to_owned()).await;
    let mut doomed_files = Vec::new();
    let mut doomed_folders = Vec::new();
    let mut doomed_keys = Vec::new();
    for i in 0..10 {
        doomed_files.push(upload_file(format!("doomed-{i}.txt")).await);
        let v = cx
            .post_ok(
                &format!("/api/2.0/files/folder/{room}"),
                json!({"title": format!("doomed {i}")}),
            )
            .await;
        doomed_folders.push(v["response"]["id"].as_i64().unwrap());
        doomed_keys.push(s.create_key(&owner, json!({"name": format!("doomed {i}")})).await.0);
    }
    let (target_key, _) = s.create_key(&owner, json!({"name": "target"})).await;
    let (kept_backup, link) = cx.backup().await;
    // Fresh backups for the admins' `deletebackup` cells, per prefix.
    let mut doomed_backups = Vec::new();
    for _ in 0..4 {
        doomed_backups.push(cx.backup().await.0);
    }
    // Fresh sessions for logout, which ends the session it is sent with.
    let mut logout_auths: Vec<Option<Auth>> = vec![None; 10];
    for (i, (email, password)) in emails.iter().enumerate() {
        let token = s.sign_in(Some(&origin), email, password).await;
        logout_auths[GUEST + i] = Some(Auth::bearer(&token).at(&origin));
    }

    let immediately = || Body::Json(json!({"immediately": true}));
    let admin_write = authed(ADMINS, 403);
    let admin_read = authed(ADMINS, 200);
    let is_allowed = |st: &[u16; 10], i: usize| st[i] < 400;
    let keys_probe = |id: &str| {
        Some(Probe {
            path: "/api/2.0/keys".to_owned(),
            pick: Pick::KeyName(id.to_owned()),
        })
    };
    let refusable = |i: usize| match i {
        GUEST | USER | ROOM_ADMIN => response_is(json!(false)),
        DS_ADMIN | OWNER => response_is(json!(true)),
        _ => None,
    };

    let mut rows = vec![
        // Portals.
        Row::new(Method::POST, "/apisystem/portal/register", Body::None, public(200))
            .bodies(|i| {
                Body::Json(
                    json!({"portalName": format!("matrix-reg-{i}-{}", unique()), "firstName": "a",
                "lastName": "b", "email": "reg@example.com", "password": "Portal-Pass-2", "language": "en"}),
                )
            })
            .raw_errors(),
        // Only admins get the full record; others a real tenantId and defaults (PORTAL_API §1.3).
        Row::new(Method::GET, "/api/2.0/portal", Body::None, authed(EVERYONE, 200)).checks(|i| {
            let admin = matches!(i, DS_ADMIN | OWNER | RO_KEY);
            let owner_id = owner_id.clone();
            let check: Check = std::sync::Arc::new(move |body: &Value| {
                let r = &body["response"];
                if !r["tenantId"].is_i64() {
                    return Err("no tenantId".to_owned());
                }
                match (admin, r["ownerId"] == owner_id.as_str()) {
                    (true, false) => Err("an admin must see the ownerId".to_owned()),
                    (false, true) => Err("a non-admin must not see the full record".to_owned()),
                    _ => Ok(()),
                }
            });
            matches!(i, GUEST..=RO_KEY).then_some(check)
        }),
        // Sign-in.
        Row::new(
            Method::POST,
            "/api/2.0/authentication",
            Body::Json(json!({"userName": user_email, "password": PASSWORD})),
            anonymous(200, 403),
        ),
        // `true` only for a valid credential.
        Row::new(Method::GET, "/api/2.0/authentication", Body::None, anonymous(200, 200))
            .checks(|i| response_is(json!(matches!(i, GUEST..=RO_KEY)))),
        Row::new(
            Method::POST,
            "/api/2.0/authentication/logout",
            Body::None,
            anonymous(200, 403),
        )
        .auths(|i| logout_auths[i].clone()),
        Row::new(Method::GET, "/api/2.0/settings", Body::None, anonymous(200, 200)),
        // People.
        Row::new(Method::POST, "/api/2.0/people", Body::None, authed(ROOM_MANAGERS, 403))
            .bodies(|i| {
                Body::Json(
                    json!({"email": format!("matrix_{i}_{}@test.com", unique()), "firstName": "Matrix",
                "lastName": "User", "password": PASSWORD, "type": "User"}),
                )
            })
            .probe(probe("/api/2.0/people", "/total")),
        Row::new(
            Method::POST,
            "/api/2.0/people/active",
            Body::None,
            authed(ROOM_MANAGERS, 403),
        )
        .bodies(|i| {
            Body::Json(
                json!({"email": format!("matrix_{i}_{}@test.com", unique()), "firstName": "Matrix",
                "lastName": "Guest", "password": PASSWORD, "type": "Guest"}),
            )
        })
        .probe(probe("/api/2.0/people", "/total")),
        Row::new(Method::GET, "/api/2.0/people", Body::None, authed(ROOM_MANAGERS, 200)),
        Row::new(Method::GET, "/api/2.0/people/@self", Body::None, authed(EVERYONE, 200)),
        Row::new(
            Method::GET,
            format!("/api/2.0/people/{owner_id}"),
            Body::None,
            authed(EVERYONE, 200),
        )
        .named("/api/2.0/people/{owner}"),
        // API keys.
        Row::new(Method::POST, "/api/2.0/keys", Body::None, authed(NOT_GUEST, 403))
            .bodies(|i| Body::Json(json!({"name": format!("matrix {i}")})))
            .probe(probe("/api/2.0/keys", "/count")),
        // Admins list every key of the portal, others only their own (PORTAL_API §4).
        Row::new(Method::GET, "/api/2.0/keys", Body::None, authed(EVERYONE, 200)).checks(|i| {
            let admin = matches!(i, DS_ADMIN | OWNER | RO_KEY);
            let owner_id = owner_id.clone();
            let target = target_key.clone();
            let check: Check = std::sync::Arc::new(move |body: &Value| {
                let keys = body["response"].as_array().cloned().unwrap_or_default();
                let owners = keys.iter().any(|k| k["createBy"]["id"] == owner_id.as_str());
                let target = keys.iter().any(|k| k["id"] == target.as_str());
                match (admin, owners, target) {
                    (true, _, false) => Err("an admin must see the owner's keys".to_owned()),
                    (false, true, _) => Err("a non-admin sees the owner's keys".to_owned()),
                    _ => Ok(()),
                }
            });
            matches!(i, GUEST..=RO_KEY).then_some(check)
        }),
        Row::new(
            Method::GET,
            "/api/2.0/keys/permissions",
            Body::None,
            authed(EVERYONE, 200),
        ),
        // A session is not a key: there is no key to show (PORTAL_API §4: "the calling key",
        // for callers using `Bearer sk-…`; the handler answers 404 for other credentials).
        Row::new(Method::GET, "/api/2.0/keys/@self", Body::None, authed([404; 5], 200)),
        // `true`, or `false` without error for a non-admin who did not create the key.
        Row::new(
            Method::PUT,
            format!("/api/2.0/keys/{target_key}"),
            Body::None,
            authed(EVERYONE, 403),
        )
        .named("/api/2.0/keys/{owner's key}")
        .bodies(|i| Body::Json(json!({"name": format!("renamed {i}")})))
        .checks(refusable)
        .probes(|i| {
            if !(DS_ADMIN..=OWNER).contains(&i) {
                keys_probe(&target_key)
            } else {
                None
            }
        }),
        Row::new(Method::DELETE, "", Body::None, authed(EVERYONE, 403))
            .named("/api/2.0/keys/{fresh owner's key}")
            .paths(|i| format!("/api/2.0/keys/{}", doomed_keys[i]))
            .checks(refusable)
            .probes(|i| {
                if !(DS_ADMIN..=OWNER).contains(&i) {
                    keys_probe(&doomed_keys[i])
                } else {
                    None
                }
            }),
        // Rooms.
        Row::new(
            Method::POST,
            "/api/2.0/files/rooms",
            Body::None,
            authed(ROOM_MANAGERS, 403),
        )
        .bodies(|i| Body::Json(json!({"title": format!("room {i}"), "roomType": "CustomRoom"})))
        .probe(probe("/api/2.0/files/rooms", "/response/total")),
        // The listing shows only the rooms the caller can see: the owner's room is not shared.
        Row::new(Method::GET, "/api/2.0/files/rooms", Body::None, authed(EVERYONE, 200)).checks(|i| {
            let member = matches!(i, DS_ADMIN | OWNER | RO_KEY);
            let check: Check =
                std::sync::Arc::new(
                    move |body: &Value| match (member, folder_ids(body).contains(&json!(room))) {
                        (true, false) => Err("an admin must see the owner's room".to_owned()),
                        (false, true) => Err("a non-member sees the owner's room".to_owned()),
                        _ => Ok(()),
                    },
                );
            matches!(i, GUEST..=RO_KEY).then_some(check)
        }),
        Row::new(
            Method::GET,
            format!("/api/2.0/files/rooms/{room}"),
            Body::None,
            admin_read,
        )
        .named("/api/2.0/files/rooms/{room}"),
        // Sections and folders.
        Row::new(
            Method::GET,
            "/api/2.0/files/@my",
            Body::None,
            authed(HAS_MY_DOCUMENTS, 200),
        ),
        Row::new(Method::GET, "/api/2.0/files/@trash", Body::None, authed(EVERYONE, 200)),
        Row::new(Method::GET, "/api/2.0/files/@root", Body::None, authed(EVERYONE, 200)),
        Row::new(Method::GET, "/api/2.0/files/fileops", Body::None, authed(EVERYONE, 200)),
        Row::new(Method::GET, format!("/api/2.0/files/{room}"), Body::None, admin_read).named("/api/2.0/files/{room}"),
        Row::new(
            Method::GET,
            format!("/api/2.0/files/folder/{room}"),
            Body::None,
            admin_read,
        )
        .named("/api/2.0/files/folder/{room}"),
        Row::new(
            Method::POST,
            format!("/api/2.0/files/folder/{room}"),
            Body::None,
            admin_write,
        )
        .named("/api/2.0/files/folder/{room}")
        .bodies(|i| Body::Json(json!({"title": format!("folder {i}")})))
        .probe(probe(format!("/api/2.0/files/{room}"), "/response/total")),
        Row::new(Method::DELETE, "", immediately(), admin_write)
            .named("/api/2.0/files/folder/{fresh folder}")
            .paths(|i| format!("/api/2.0/files/folder/{}", doomed_folders[i]))
            .probes(|i| probe(format!("/api/2.0/files/folder/{}", doomed_folders[i]), "/response/id")),
        // Files.
        Row::new(
            Method::POST,
            format!("/api/2.0/files/{room}/upload"),
            Body::None,
            admin_write,
        )
        .named("/api/2.0/files/{room}/upload")
        .bodies(|i| Body::File(format!("upload-{i}.txt")))
        .probe(probe(format!("/api/2.0/files/{room}"), "/response/total")),
        Row::new(
            Method::POST,
            "/api/2.0/files/@my/upload",
            Body::None,
            authed(HAS_MY_DOCUMENTS, 403),
        )
        .bodies(|i| Body::File(format!("my-upload-{i}.txt")))
        .probe(probe("/api/2.0/files/@my", "/response/total")),
        Row::new(Method::POST, "", Body::Raw(b"inserted".to_vec()), admin_write)
            .named("/api/2.0/files/{room}/insert?title=…")
            .paths(|i| format!("/api/2.0/files/{room}/insert?title=insert-{i}.txt"))
            .probe(probe(format!("/api/2.0/files/{room}"), "/response/total")),
        Row::new(
            Method::GET,
            format!("/api/2.0/files/file/{file}"),
            Body::None,
            admin_read,
        )
        .named("/api/2.0/files/file/{file}"),
        Row::new(Method::DELETE, "", immediately(), admin_write)
            .named("/api/2.0/files/file/{fresh file}")
            .paths(|i| format!("/api/2.0/files/file/{}", doomed_files[i]))
            .probes(|i| probe(format!("/api/2.0/files/file/{}", doomed_files[i]), "/response/id")),
        // The file handler's failures are bare statuses upstream (PORTAL_API §5.9, §7.5): only
        // the statuses are checked.
        Row::new(
            Method::GET,
            format!("/filehandler.ashx?action=download&fileid={file}"),
            Body::None,
            admin_read,
        )
        .named("/filehandler.ashx?action=download&fileid={file}")
        .raw_errors(),
        // Third-party backup storage.
        Row::new(Method::GET, "/api/2.0/settings/authservice", Body::None, admin_read),
        Row::new(
            Method::POST,
            "/api/2.0/settings/authservice",
            Body::Json(json!({"name": "s3", "props": [
                {"name": "acesskey", "value": ""}, {"name": "secretaccesskey", "value": ""}]})),
            admin_write,
        )
        .probe(probe("/api/2.0/settings/authservice", "/response")),
        Row::new(Method::GET, "/api/2.0/settings/storage/backup", Body::None, admin_read),
        // Anyone may ask; without a provider (or the right to read it) `response` is absent.
        Row::new(
            Method::GET,
            "/api/2.0/files/thirdparty/backup",
            Body::None,
            authed(EVERYONE, 200),
        ),
        Row::new(
            Method::POST,
            "/api/2.0/files/thirdparty/backup",
            Body::Json(json!({"url": dav, "login": "backup", "password": "secret",
                "customerTitle": "Matrix DAV", "providerKey": "WebDav"})),
            admin_write,
        )
        .probe(probe("/api/2.0/files/thirdparty/backup", "/response")),
        Row::new(
            Method::GET,
            "/api/2.0/security/audit/events/last",
            Body::None,
            admin_read,
        ),
    ];

    // The backup API, under both prefixes.
    for (p, prefix) in ["/api/2.0/backup", "/api/2.0/portal"].into_iter().enumerate() {
        let history = probe(format!("{prefix}/getbackuphistory"), "/count");
        let schedule = probe(format!("{prefix}/getbackupschedule"), "/response");
        let doomed = [doomed_backups[2 * p].clone(), doomed_backups[2 * p + 1].clone()];
        rows.extend([
            Row::new(
                Method::POST,
                format!("{prefix}/startbackup"),
                Body::Json(json!({"storageType": 4})),
                admin_write,
            )
            .probe(history.clone())
            .then(After::WaitBackup),
            Row::new(
                Method::GET,
                format!("{prefix}/getbackupprogress"),
                Body::None,
                admin_read,
            ),
            Row::new(Method::POST, format!("{prefix}/cancelbackup"), Body::None, admin_write),
            Row::new(
                Method::GET,
                format!("{prefix}/getbackuphistory"),
                Body::None,
                admin_read,
            ),
            Row::new(Method::DELETE, "", Body::None, admin_write)
                .named(format!("{prefix}/deletebackup/{{backup}}"))
                .paths(|i| {
                    let id = match i {
                        DS_ADMIN => &doomed[0],
                        OWNER => &doomed[1],
                        _ => &kept_backup,
                    };
                    format!("{prefix}/deletebackup/{id}")
                })
                .probe(history.clone()),
            Row::new(
                Method::POST,
                format!("{prefix}/createbackupschedule"),
                Body::Json(json!({"storageType": 4, "backupsStored": 3,
                    "cronParams": {"period": "EveryDay", "hour": 3}})),
                admin_write,
            )
            .probe(schedule.clone()),
            Row::new(
                Method::GET,
                format!("{prefix}/getbackupschedule"),
                Body::None,
                admin_read,
            ),
            Row::new(
                Method::GET,
                format!("{prefix}/verifybackup/{kept_backup}"),
                Body::None,
                admin_read,
            )
            .named(format!("{prefix}/verifybackup/{{backup}}")),
            Row::new(
                Method::DELETE,
                format!("{prefix}/deletebackupschedule"),
                Body::None,
                admin_write,
            )
            .probe(schedule.clone()),
            // A restore locks the portal: only the denied cells run.
            Row::new(
                Method::POST,
                format!("{prefix}/startrestore"),
                Body::Json(json!({"backupId": kept_backup, "notify": false})),
                admin_write,
            )
            .skip(DS_ADMIN, "would lock the portal")
            .skip(OWNER, "would lock the portal")
            .probe(probe(format!("{prefix}/getrestoreprogress"), "/count")),
            Row::new(
                Method::GET,
                format!("{prefix}/getrestoreprogress"),
                Body::None,
                anonymous(200, 200),
            ),
            Row::new(Method::GET, format!("{prefix}/getbackupscount"), Body::None, admin_read),
            Row::new(
                Method::GET,
                format!("{prefix}/getbackupscountbypaid"),
                Body::None,
                admin_read,
            ),
            Row::new(Method::GET, format!("{prefix}/getservicestate"), Body::None, admin_read),
            // Admins only by the project's decision (DocSpace shows any user a server path).
            Row::new(Method::GET, format!("{prefix}/backuptmp"), Body::None, admin_read),
            Row::new(Method::GET, format!("{prefix}/enablerestore"), Body::None, admin_read),
            Row::new(
                Method::GET,
                format!("{prefix}/enableautobackup"),
                Body::None,
                admin_read,
            ),
        ]);
    }
    rows.extend([
        Row::new(
            Method::POST,
            "/backupFileUpload.ashx?Init=true&totalSize=10&extension=tar.gz",
            Body::None,
            admin_write,
        ),
        // The signed link needs no credential, and none spoils it.
        Row::new(Method::GET, link.clone(), Body::None, public(200))
            .named("/api/2.0/backup/download/{backup}?expires&signature")
            .raw_errors(),
    ]);
    for prefix in ["/api/2.0/backup", "/api/2.0/portal"] {
        rows.push(
            Row::new(
                Method::DELETE,
                format!("{prefix}/deletebackuphistory"),
                Body::None,
                admin_write,
            )
            .probe(probe(format!("{prefix}/getbackuphistory"), "/count")),
        );
    }
    // Last of all: the owner deletes the portal.
    rows.push(
        Row::new(
            Method::DELETE,
            "/api/2.0/portal/deleteportalimmediately",
            Body::None,
            authed(OWNER_ONLY, 403),
        )
        .probe(probe("/api/2.0/portal", "/response/tenantId")),
    );

    let started = std::time::Instant::now();
    let mut mismatches = Vec::new();
    let mut table = String::new();
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10) + 1;
    let _ = write!(table, "{:name_width$}", "");
    for c in CALLERS {
        let _ = write!(table, "{c:>8}");
    }
    table.push('\n');
    let mut skipped = Vec::new();
    for row in &rows {
        let expected: Vec<Option<u16>> = row.exp.iter().map(Exp::status).collect();
        let statuses: [u16; 10] = std::array::from_fn(|i| expected[i].unwrap_or(0));
        // Denied cells first, then the allowed ones (and skipped cells not at all).
        let mut order: Vec<usize> = (0..10).filter(|&i| expected[i].is_some_and(|s| s >= 400)).collect();
        order.extend((0..10).filter(|&i| is_allowed(&statuses, i) && expected[i].is_some()));
        let mut got = [None::<u16>; 10];
        let mut wrong = [false; 10];
        for i in order {
            let want = expected[i].unwrap();
            let auth = row.auths[i].as_ref().unwrap_or(&cx.callers[i]);
            let denied = want >= 400;
            let before = match (&row.probes[i], denied) {
                (Some(p), true) => Some(cx.read(p).await),
                _ => None,
            };
            let (status, body) = cx.send(row.method.clone(), &row.paths[i], auth, &row.bodies[i]).await;
            got[i] = Some(status);
            let cell = format!("{} as {}", row.name, CALLERS[i]);
            let short = |v: &Value| {
                let t = v.to_string();
                t.chars().take(300).collect::<String>()
            };
            if status != want {
                wrong[i] = true;
                mismatches.push(format!("{cell}: got {status}, want {want}: {}", short(&body)));
                continue;
            }
            if denied && row.error_body && !body["error"]["message"].is_string() {
                wrong[i] = true;
                mismatches.push(format!(
                    "{cell}: {status} without a DocSpace error body: {}",
                    short(&body)
                ));
            }
            if let Some(check) = &row.checks[i] {
                if let Err(why) = check(&body) {
                    wrong[i] = true;
                    mismatches.push(format!("{cell}: {why}: {}", short(&body)));
                }
            }
            if let (Some(p), Some(before)) = (&row.probes[i], before) {
                let after = cx.read(p).await;
                if after != before {
                    wrong[i] = true;
                    mismatches.push(format!("{cell}: a denied call changed {}: {before} -> {after}", p.path));
                }
            }
        }
        if row.after == After::WaitBackup {
            wait_backup(&cx.s, &cx.owner).await;
        }
        let _ = write!(table, "{:name_width$}", row.name);
        for i in 0..10 {
            let text = match (&row.exp[i], got[i]) {
                (Exp::Skip(why), _) => {
                    skipped.push(format!("{} as {}: {why}", row.name, CALLERS[i]));
                    "--".to_owned()
                }
                (_, None) => "?".to_owned(),
                (Exp::Is(_), Some(g)) => g.to_string(),
            };
            let text = if wrong[i] { format!("{text}!") } else { text };
            let _ = write!(table, "{text:>8}");
        }
        table.push('\n');
    }
    let cells: usize = rows
        .iter()
        .map(|r| r.exp.iter().filter(|e| e.status().is_some()).count())
        .sum();
    println!("{table}");
    println!(
        "{} rows, {cells} cells in {:.1?}. `!` = mismatch, `--` = not run.",
        rows.len(),
        started.elapsed()
    );
    for n in &skipped {
        println!("not run: {n}");
    }
    assert!(
        mismatches.is_empty(),
        "{} cell(s) differ from the contract:\n{}\n\n{table}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
