//! The integration harness: starts the real `backspace` binary on port 0 with a fresh data
//! directory (and, when `BACKSPACE_TEST_DATABASE=postgres`, a fresh PostgreSQL database on the
//! server named by `BACKSPACE_TEST_POSTGRES_URL`), and drives it over HTTP.

#![allow(dead_code)]

pub mod external;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "Owner-Pass-123";

pub struct TestServer {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub http: reqwest::Client,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A fresh database URL for one server: SQLite in the data dir, or a new PostgreSQL database.
async fn database_url(data_dir: &std::path::Path) -> String {
    match std::env::var("BACKSPACE_TEST_DATABASE").as_deref() {
        Ok("postgres") => {
            let admin = std::env::var("BACKSPACE_TEST_POSTGRES_URL")
                .expect("BACKSPACE_TEST_DATABASE=postgres needs BACKSPACE_TEST_POSTGRES_URL");
            new_postgres_database(&admin).await
        }
        _ => format!("sqlite://{}?mode=rwc", data_dir.join("meta.db").display()),
    }
}

/// Creates a new, empty database on the PostgreSQL server of the admin URL `admin`; its URL.
pub async fn new_postgres_database(admin: &str) -> String {
    use sqlx::Connection;
    let name = format!("bs_it_{}", &unique()[..16]);
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect to postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{name}")
}

impl TestServer {
    /// Starts a server with registration open and the given extra environment.
    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        let data_dir = std::env::temp_dir().join(format!("backspace-it-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let database_url = database_url(&data_dir).await;
        Self::start(data_dir, database_url, env).await
    }

    /// Starts a server as [`TestServer::spawn_with`] does, its log (stderr) going to `log`.
    pub async fn spawn_logging(env: &[(&str, &str)], log: &std::path::Path) -> Self {
        let data_dir = std::env::temp_dir().join(format!("backspace-it-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let database_url = database_url(&data_dir).await;
        Self::start_with_log(data_dir, database_url, env, Some(log)).await
    }

    async fn start(data_dir: PathBuf, database_url: String, env: &[(&str, &str)]) -> Self {
        Self::start_with_log(data_dir, database_url, env, None).await
    }

    async fn start_with_log(
        data_dir: PathBuf,
        database_url: String,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_backspace"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--database-url")
            .arg(&database_url)
            .env("BACKSPACE_OWNER_EMAIL", OWNER_EMAIL)
            .env("BACKSPACE_OWNER_PASSWORD", OWNER_PASSWORD)
            .env("BACKSPACE_REGISTRATION", "open")
            // BACKSPACE_TEST_LOG (say `info`) shows more of a server's log when a test fails.
            .env(
                "BACKSPACE_LOG",
                std::env::var("BACKSPACE_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env_remove("BACKSPACE_CONFIG")
            .env_remove("BACKSPACE_REGISTRATION_SECRET")
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
                None => Stdio::inherit(),
            });
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start backspace");
        let stdout = child.stdout.take().unwrap();
        // The server prints its address once it listens: that line is the readiness signal.
        let base = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let line = line.expect("read server stdout");
                if let Some(url) = line.strip_prefix("backspace listening on ") {
                    // Keep draining stdout so the server never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines {});
                    return url.trim().to_owned();
                }
            }
            panic!("backspace exited before listening");
        })
        .await
        .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            child,
            base,
            data_dir,
            database_url,
            http,
        }
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A second instance on this one's database and data directory.
    pub async fn spawn_sharing(&self, env: &[(&str, &str)]) -> Self {
        Self::start(self.data_dir.clone(), self.database_url.clone(), env).await
    }

    /// A server on the database at `database_url` (e.g. through a proxy), with a fresh data
    /// directory.
    pub async fn spawn_on_url(database_url: &str, env: &[(&str, &str)]) -> Self {
        let data_dir = std::env::temp_dir().join(format!("backspace-it-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        Self::start(data_dir, database_url.to_owned(), env).await
    }

    /// A second instance on this one's database only: its own, empty data directory.
    pub async fn spawn_on_database(&self, env: &[(&str, &str)]) -> Self {
        let data_dir = std::env::temp_dir().join(format!("backspace-it-{}", unique()));
        std::fs::create_dir_all(&data_dir).unwrap();
        Self::start(data_dir, self.database_url.clone(), env).await
    }

    /// Kills the process at once (SIGKILL): no shutdown, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in and returns the session token.
    pub async fn sign_in(&self, origin: Option<&str>, email: &str, password: &str) -> String {
        let mut req = self
            .http
            .post(self.url("/api/2.0/authentication"))
            .json(&json!({"userName": email, "password": password}));
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "sign-in of {email} failed");
        let body: Value = resp.json().await.unwrap();
        body["response"]["token"].as_str().unwrap().to_owned()
    }

    pub async fn owner_token(&self) -> String {
        self.sign_in(None, OWNER_EMAIL, OWNER_PASSWORD).await
    }

    /// Creates an API key with `body` and returns (id, plaintext key).
    pub async fn create_key(&self, auth: &Auth, body: Value) -> (String, String) {
        let (status, v) = self
            .call(reqwest::Method::POST, "/api/2.0/keys", auth, Some(body))
            .await;
        assert_eq!(status, 200, "{v}");
        (
            v["response"]["id"].as_str().unwrap().to_owned(),
            v["response"]["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Sends a JSON request and returns the status and the parsed body (`Null` if empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, auth: &Auth, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).headers(auth.headers());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, auth, None).await
    }

    pub async fn post(&self, path: &str, auth: &Auth, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, auth, Some(body)).await
    }

    /// Creates a person of `kind` as `auth` (through `/people/active` for guests) and returns
    /// a session token of theirs.
    pub async fn person(&self, auth: &Auth, kind: &str) -> (String, Auth) {
        let email = format!("user_{}_{}@test.com", &unique()[..8], kind.to_lowercase());
        let path = if kind == "Guest" {
            "/api/2.0/people/active"
        } else {
            "/api/2.0/people"
        };
        let body =
            json!({"email": email, "firstName": "Test", "lastName": kind, "password": "Passw0rd-xyz", "type": kind});
        let (status, v) = self.post(path, auth, body).await;
        assert_eq!(status, 200, "creating a {kind}: {v}");
        let token = self.sign_in(auth.origin.as_deref(), &email, "Passw0rd-xyz").await;
        (
            email,
            Auth {
                origin: auth.origin.clone(),
                ..Auth::bearer(&token)
            },
        )
    }

    /// Creates a room and returns its id.
    pub async fn room(&self, auth: &Auth, title: &str) -> i64 {
        let (status, v) = self
            .post(
                "/api/2.0/files/rooms",
                auth,
                json!({"title": title, "roomType": "CustomRoom"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v["response"]["id"].as_i64().unwrap()
    }

    /// Uploads bytes with a multipart `File` part and returns the file id.
    pub async fn upload(&self, auth: &Auth, folder: i64, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("File", part);
        let resp = self
            .http
            .post(self.url(&format!("/api/2.0/files/{folder}/upload")))
            .headers(auth.headers())
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// One request of the chunked `/backupFileUpload.ashx` upload (as the DocSpace web UI makes
    /// it): `query` as given, `chunk` as the multipart `file` part. Asserts 200 (the handler's
    /// own `{Success, …}` body says whether it worked) and returns the body.
    pub async fn backup_file_upload(&self, auth: &Auth, query: &str, chunk: Option<Vec<u8>>) -> Value {
        let mut req = self
            .http
            .post(self.url(&format!("/backupFileUpload.ashx{query}")))
            .headers(auth.headers());
        if let Some(b) = chunk {
            let part = reqwest::multipart::Part::bytes(b).file_name("chunk");
            req = req.multipart(reqwest::multipart::Form::new().part("file", part));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().await.unwrap()
    }

    pub async fn download(&self, auth: &Auth, file: i64) -> (u16, Vec<u8>) {
        let resp = self
            .http
            .get(self.url(&format!("/filehandler.ashx?action=download&fileid={file}")))
            .headers(auth.headers())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }
}

/// How a test request authenticates, and which portal it names through `Origin`.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    pub origin: Option<String>,
}

impl Auth {
    pub fn none() -> Self {
        Self::default()
    }
    pub fn bearer(token: &str) -> Self {
        Self {
            authorization: Some(format!("Bearer {token}")),
            ..Self::default()
        }
    }
    pub fn raw(token: &str) -> Self {
        Self {
            authorization: Some(token.to_owned()),
            ..Self::default()
        }
    }
    pub fn cookie(token: &str) -> Self {
        Self {
            cookie: Some(format!("asc_auth_key={token}")),
            ..Self::default()
        }
    }
    pub fn at(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = &self.authorization {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        if let Some(c) = &self.cookie {
            h.insert("cookie", HeaderValue::from_str(c).unwrap());
        }
        if let Some(o) = &self.origin {
            h.insert("origin", HeaderValue::from_str(o).unwrap());
        }
        h
    }
}

/// Registers a portal and returns (origin, owner token, register response).
pub async fn register(server: &TestServer, name: &str) -> (String, Auth, Value) {
    let resp = server
        .http
        .post(server.url("/apisystem/portal/register"))
        .json(&json!({"portalName": name, "firstName": "admin", "lastName": "zero", "email": OWNER_EMAIL, "password": "Portal-Pass-1", "language": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let origin = format!("http://{name}");
    let token = server.sign_in(Some(&origin), OWNER_EMAIL, "Portal-Pass-1").await;
    (origin.clone(), Auth::bearer(&token).at(&origin), body)
}

/// Asserts a DocSpace error body: status, `statusCode`, `status: 1`, and a message containing
/// `needle`.
pub fn assert_error(status: u16, body: &Value, want: u16, needle: &str) {
    assert_eq!(status, want, "body: {body}");
    assert_eq!(body["statusCode"], want, "body: {body}");
    assert_eq!(body["status"], 1, "body: {body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {body}"));
    assert!(message.contains(needle), "error message {message:?} lacks {needle:?}");
    for key in ["type", "stack", "hresult"] {
        assert!(body["error"].get(key).is_some(), "error.{key} missing in {body}");
    }
}

/// `DELETE /api/2.0/backup/deletebackup/{id}`: (status, body).
pub async fn delete_backup(s: &TestServer, auth: &Auth, id: &str) -> (u16, Value) {
    s.call(
        reqwest::Method::DELETE,
        &format!("/api/2.0/backup/deletebackup/{id}"),
        auth,
        None,
    )
    .await
}

/// Starts a backup with `body`, waits for it, and asserts it succeeded; returns its progress.
pub async fn backup(s: &TestServer, auth: &Auth, body: Value) -> Value {
    let (status, v) = s.post("/api/2.0/backup/startbackup", auth, body).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(s, auth).await;
    assert_eq!(done["error"], "", "{done}");
    done
}

/// Polls the backup progress until the job is completed (bounded), and returns it.
pub async fn wait_backup(s: &TestServer, auth: &Auth) -> Value {
    wait_job(s, auth, "/api/2.0/backup/getbackupprogress").await
}

/// Polls the restore progress until the job is completed (bounded), and returns it.
pub async fn wait_restore(s: &TestServer, auth: &Auth) -> Value {
    wait_job(s, auth, "/api/2.0/backup/getrestoreprogress").await
}

/// Polls any job progress path (e.g. with `?dump=true`) until the job is completed.
pub async fn wait_job_at(s: &TestServer, auth: &Auth, path: &str) -> Value {
    wait_job(s, auth, path).await
}

async fn wait_job(s: &TestServer, auth: &Auth, path: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, v) = s.get(path, auth).await;
        assert_eq!(status, 200, "{v}");
        if v["response"]["isCompleted"] == true {
            return v["response"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "the job did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Regular files below `dir`, recursively (0 when it does not exist).
pub fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A directory under the system's temporary directory, removed with everything in it when
/// dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir.canonicalize().unwrap())
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one statement on the database at `url` (a state a test must set up directly).
pub async fn sql(url: &str, statement: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
}

/// The first column of every row a query of the database at `url` returns, as text.
pub async fn sql_strings(url: &str, query: &str) -> Vec<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar(query).fetch_all(&mut conn).await.unwrap()
}

/// Moves a key's expiry into the past in the database, as time passing would (the API's
/// shortest expiry is a day).
pub async fn expire_key(s: &TestServer, id: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    let done = sqlx::query("UPDATE api_keys SET expires_at = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

/// GETs a (signed, credential-free) link of the server: asserts 200 and returns the body.
pub async fn fetch(s: &TestServer, link: &str) -> Vec<u8> {
    let resp = s.http.get(s.url(link)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}
