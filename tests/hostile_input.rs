//! Issue 7 "Hostile input": every route of the route table against malformed and hostile
//! requests, and restores from hostile archives.
//!
//! `every_route_refuses_hostile_requests_and_nothing_changes` walks
//! `backspace_server::routes::table()`, the table the router is built from (a route added to it
//! and not here fails the test): every route gets oversized headers, and every route with inputs
//! gets hostile bodies, query strings and path ids: bad JSON, JSON of the wrong type, bodies over the limit, overlong
//! strings, negative and huge numbers, non-GUID ids, path escapes, unknown enum values and
//! duplicate keys. Requests are written byte for byte on a socket, so nothing normalises `..`,
//! `%2e%2e` or a NUL before the server sees it, and all of them carry a valid key of the owner:
//! authentication is never what refuses them. Each must get its exact status and a DocSpace
//! error body naming the problem; afterwards the server still answers, and a digest of
//! everything the portal shows (the API's listings, the database rows, the bytes on disk) is
//! what it was before the batch.
//!
//! `hostile_archives_are_refused_before_the_portal_is_touched` uploads hostile archives as the
//! web UI does (`/backupFileUpload.ashx`) and restores each: every one is refused, and the
//! portal's rows and bytes are unchanged and it is not left locked.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ----------------------------------------------------------------------------------------------
// Raw HTTP/1.1: requests exactly as written.

/// One request, sent byte for byte.
#[derive(Clone, Debug)]
struct Raw {
    method: &'static str,
    /// The request target as sent (path and query, never normalised).
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
    }
}

/// How long one hostile request may take before it counts as a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// Sends `req` on a fresh connection and reads the answer to the end.
async fn send(addr: &str, req: &Raw) -> Result<Answer, String> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        req.method, req.target
    );
    if !req.body.is_empty() || !matches!(req.method, "GET" | "HEAD") {
        head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    }
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&req.body);
    let exchange = async move {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut rd, mut wr) = stream.into_split();
        // Written beside the read: a server that answers before reading the whole body (413)
        // must not leave us blocked on a full socket. The write half stays open until the answer
        // is read, since a half-closed connection may be dropped by the server.
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&out).await;
            wr
        });
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // A reset after the answer (the server closed with our body unread).
                Err(_) if !buf.is_empty() => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        drop(writer.await);
        parse(&buf)
    };
    tokio::time::timeout(ANSWER_WITHIN, exchange)
        .await
        .map_err(|_| format!("no answer within {ANSWER_WITHIN:?}"))?
}

fn parse(buf: &[u8]) -> Result<Answer, String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {:?}", String::from_utf8_lossy(buf)))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        if body.len() < len {
            return Err(format!("the body ended after {} of {len} bytes", body.len()));
        }
        body.truncate(len);
    }
    Ok(Answer { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("a chunk is cut".to_owned());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn addr_of(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

// ----------------------------------------------------------------------------------------------
// The digest of what the portal shows.

fn fingerprint(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{}:{:016x}", bytes.len(), h.finish())
}

/// Every regular file below `dir` (but `skip`), with its size and a fingerprint of its bytes.
fn disk(dir: &Path, skip: &[&str]) -> Value {
    fn walk(root: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<String, Value>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip
                .iter()
                .any(|s| rel == *s || rel.starts_with(&format!("{s}/")) || rel.starts_with(s))
            {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(root, &path, skip, out);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.insert(rel, json!(fingerprint(&bytes)));
            } else {
                out.insert(rel, json!("not a regular file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    json!(out)
}

/// Rows of the database's tables, sorted, without the columns that change on reads.
async fn rows(s: &TestServer, tables: &[&str]) -> BTreeMap<String, Value> {
    use sqlx::{Column, Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    let volatile = ["last_used"];
    let mut out = BTreeMap::new();
    for table in tables {
        let fetched = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let mut lines: Vec<String> = fetched
            .iter()
            .map(|row| {
                let mut cells = BTreeMap::new();
                for (i, col) in row.columns().iter().enumerate() {
                    if volatile.contains(&col.name()) {
                        continue;
                    }
                    let cell = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                        json!(v)
                    } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                        json!(v)
                    } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
                        json!(v)
                    } else {
                        json!("?")
                    };
                    cells.insert(col.name().to_owned(), cell);
                }
                json!(cells).to_string()
            })
            .collect();
        lines.sort();
        out.insert(format!("db {table}"), json!(lines));
    }
    out
}

/// Titles, sizes and bytes of every folder and file below `folder`, recursively.
async fn tree(s: &TestServer, auth: &Auth, folder: &str) -> Value {
    let mut out = Vec::new();
    let mut stack = vec![folder.to_owned()];
    while let Some(id) = stack.pop() {
        let (status, v) = s.get(&format!("/api/2.0/files/{id}"), auth).await;
        if status != 200 {
            out.push(json!([id, status, v["error"]["message"]]));
            continue;
        }
        let r = &v["response"];
        for f in r["files"].as_array().into_iter().flatten() {
            let (_, bytes) = s.download(auth, f["id"].as_i64().unwrap()).await;
            out.push(json!([id, f["id"], f["title"], f["version"], fingerprint(&bytes)]));
        }
        for d in r["folders"].as_array().into_iter().flatten() {
            out.push(json!([id, d["id"], d["title"], d["filesCount"], d["foldersCount"]]));
            stack.push(d["id"].to_string());
        }
    }
    json!(out)
}

/// A response without the parts that change with time or the request (links).
async fn read(s: &TestServer, auth: &Auth, path: &str) -> Value {
    let (status, mut v) = s.get(path, auth).await;
    if let Some(o) = v.as_object_mut() {
        o.remove("links");
    }
    json!([status, v])
}

/// What the portal shows, through the API and underneath it. `skip` names paths of the data
/// directory left out (besides the database).
async fn digest(s: &TestServer, auth: &Auth, local_root: &Path, skip: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", auth).await;
    let mut records: Vec<Value> = history["response"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!([r["id"], r["fileName"], r["storageType"], r["size"], r["createdOn"]]))
        .collect();
    records.sort_by_key(|r| r.to_string());
    out.insert("history".to_owned(), json!(records));
    for path in [
        "/api/2.0/backup/getbackupschedule",
        "/api/2.0/backup/getbackupprogress",
        "/api/2.0/backup/getrestoreprogress",
        "/api/2.0/backup/getbackupschedule?dump=true",
        "/api/2.0/backup/getbackupprogress?dump=true",
        "/api/2.0/backup/getrestoreprogress?dump=true",
        "/api/2.0/people",
        "/api/2.0/portal",
        "/api/2.0/settings/authservice",
        "/api/2.0/files/thirdparty/backup",
        "/api/2.0/files/fileops",
    ] {
        out.insert(path.to_owned(), read(s, auth, path).await);
    }
    let (_, keys) = s.get("/api/2.0/keys", auth).await;
    let keys: Vec<Value> = keys["response"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| json!([k["id"], k["name"], k["permissions"], k["isActive"], k["expiresAt"]]))
        .collect();
    out.insert("keys".to_owned(), json!(keys));
    for section in ["rooms", "@my", "@trash"] {
        out.insert(format!("tree {section}"), tree(s, auth, section).await);
    }
    out.extend(
        rows(
            s,
            &[
                "portals",
                "users",
                "sessions",
                "api_keys",
                "folders",
                "files",
                "counters",
                "backup_jobs",
                "backups",
                "backup_schedules",
                "settings",
                "consumer_settings",
                "backup_providers",
                "blob_garbage",
            ],
        )
        .await,
    );
    let skip: Vec<&str> = ["meta.db"].iter().chain(skip).copied().collect();
    out.insert("disk data".to_owned(), disk(&s.data_dir, &skip));
    out.insert("disk local root".to_owned(), disk(local_root, &[]));
    out
}

/// The keys whose values differ, with both values (shortened).
fn differences(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Vec<String> {
    let short = |v: Option<&Value>| {
        let t = v.map(Value::to_string).unwrap_or_else(|| "(absent)".into());
        t.chars().take(1500).collect::<String>()
    };
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  before {}\n  after  {}",
                short(before.get(k)),
                short(after.get(k))
            )
        })
        .collect()
}

// ----------------------------------------------------------------------------------------------
// The table of hostile requests.

/// What a case must be answered with.
#[derive(Clone, Debug)]
enum Want {
    /// A DocSpace error body: this status, in the body's `statusCode` too, and a message that
    /// contains the needle.
    Error(u16, &'static str),
    /// The registration's own body, `{error, message}` (un-enveloped, as DocSpace's).
    Register(u16, &'static str),
    /// `/backupFileUpload.ashx`'s `{Success: false, Message}`, always HTTP 200 as in DocSpace.
    Upload(&'static str),
    /// Refused by the HTTP layer before any route runs: a bare status and an empty body, as
    /// Kestrel answers the same requests upstream.
    Bare(u16),
}

struct Case {
    /// The route-table row (method, template) the case aims at; `None` for paths no route
    /// serves.
    route: Option<(&'static str, String)>,
    /// One of the cases every route gets (oversized headers), not the route's own.
    every_route: bool,
    what: String,
    req: Raw,
    want: Want,
}

/// Routes that take no input at all (no path id, query, or body): only the oversized headers
/// every route gets apply to them. A new route must either get its own cases or be listed here.
const NO_INPUT: &[(&str, &str)] = &[
    ("GET", "/api/2.0/portal"),
    ("DELETE", "/api/2.0/portal/deleteportalimmediately"),
    ("GET", "/api/2.0/authentication"),
    ("POST", "/api/2.0/authentication/logout"),
    ("GET", "/api/2.0/settings"),
    ("GET", "/api/2.0/people/@self"),
    ("GET", "/api/2.0/keys"),
    ("GET", "/api/2.0/keys/permissions"),
    ("GET", "/api/2.0/keys/@self"),
    ("GET", "/api/2.0/files/fileops"),
    ("GET", "/api/2.0/settings/authservice"),
    ("GET", "/api/2.0/files/thirdparty/backup"),
    ("GET", "/api/2.0/security/audit/events/last"),
    ("POST", "/api/2.0/backup/cancelbackup"),
    ("POST", "/api/2.0/portal/cancelbackup"),
    ("GET", "/api/2.0/backup/getservicestate"),
    ("GET", "/api/2.0/portal/getservicestate"),
    ("GET", "/api/2.0/backup/backuptmp"),
    ("GET", "/api/2.0/portal/backuptmp"),
    ("GET", "/api/2.0/backup/enablerestore"),
    ("GET", "/api/2.0/portal/enablerestore"),
    ("GET", "/api/2.0/backup/enableautobackup"),
    ("GET", "/api/2.0/portal/enableautobackup"),
];

/// Values for the templates' path parameters: real objects of the portal.
struct Targets {
    user: String,
    key: String,
    room: i64,
    file: i64,
    backup: String,
    local_root: String,
}

struct Table {
    auth: String,
    t: Targets,
    cases: Vec<Case>,
}

/// Ids that are not GUIDs (a GUID parameter answers each with 404, as a failed route
/// constraint does in DocSpace).
const NOT_GUIDS: &[&str] = &[
    "123",
    "-1",
    "9223372036854775807",
    "1e308",
    "..%2F..%2Fkeys",
    "%2e%2e",
    "%2Fetc%2Fpasswd",
    "%00",
    "00000000-0000-0000-0000-00000000000%00",
    "%ff%fe",
];

/// Ids of the integer parameters that cannot be one (404, as a failed route constraint).
const NOT_INTS: &[&str] = &[
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "1.5",
    "0x10",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2Fetc%2Fpasswd",
    "%00",
    "1%00",
    "%ff",
];

/// A string of `n` characters, for the overlong cases (under the 1 MiB JSON limit).
fn long(n: usize) -> String {
    "x".repeat(n)
}

const MIB: usize = 1 << 20;

impl Table {
    fn path(&self, template: &str) -> String {
        template
            .replace("{userid}", &self.t.user)
            .replace("{keyid}", &self.t.key)
            .replace("{roomid}", &self.t.room.to_string())
            .replace("{folderid}", &self.t.room.to_string())
            .replace("{fileid}", &self.t.file.to_string())
            .replace("{backupid}", &self.t.backup)
    }

    /// The request of a route with the owner's key.
    fn raw(&self, method: &'static str, target: String, ctype: Option<&str>, body: Vec<u8>) -> Raw {
        let mut headers = vec![("authorization".to_owned(), self.auth.clone())];
        if let Some(c) = ctype {
            headers.push(("content-type".to_owned(), c.to_owned()));
        }
        Raw {
            method,
            target,
            headers,
            body,
        }
    }

    fn push(&mut self, route: (&'static str, &str), what: impl Into<String>, req: Raw, want: Want) {
        self.cases.push(Case {
            route: Some((route.0, route.1.to_owned())),
            every_route: false,
            what: what.into(),
            req,
            want,
        });
    }

    /// A JSON body to the route's own path.
    fn json(&mut self, m: &'static str, template: &str, what: &str, body: impl Into<Vec<u8>>, want: Want) {
        let req = self.raw(m, self.path(template), Some("application/json"), body.into());
        self.push((m, template), what, req, want);
    }

    /// A query string on the route's own path.
    fn query(&mut self, m: &'static str, template: &str, what: &str, query: &str, want: Want) {
        let target = format!("{}?{query}", self.path(template));
        let req = self.raw(m, target, None, Vec::new());
        self.push((m, template), what, req, want);
    }

    /// The route with its one path parameter replaced by `id` (sent as is), and `body`.
    fn id(&mut self, m: &'static str, template: &str, id: &str, body: Option<&str>, want: Want) {
        let start = template.find('{').unwrap();
        let end = template.find('}').unwrap();
        let target = self.path(&format!("{}{id}{}", &template[..start], &template[end + 1..]));
        let (ctype, body) = match body {
            Some(b) => (Some("application/json"), b.as_bytes().to_vec()),
            None => (None, Vec::new()),
        };
        let req = self.raw(m, target, ctype, body);
        self.push((m, template), format!("path id `{id}`"), req, want);
    }

    /// The malformed and wrongly shaped bodies every JSON route must refuse. `field` is a field
    /// the route reads (for the duplicate keys); `err` makes the expected answer of a status and
    /// a needle (the registration has its own body).
    fn bad_bodies(&mut self, m: &'static str, template: &str, field: &str, err: fn(u16, &'static str) -> Want) {
        let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        let over = format!(r#"{{"{field}":"{}"}}"#, long(MIB));
        let cases: Vec<(&str, Vec<u8>, Want)> = vec![
            (
                "malformed JSON",
                format!(r#"{{"{field}":"#).into_bytes(),
                err(400, "not valid JSON"),
            ),
            ("trailing garbage", b"{} {}".to_vec(), err(400, "not valid JSON")),
            (
                "invalid UTF-8",
                [&br#"{"x":""#[..], &[0xff, 0xfe], &br#""}"#[..]].concat(),
                err(400, "not valid UTF-8"),
            ),
            ("an array", b"[{}]".to_vec(), err(400, "must be a JSON object")),
            ("a string", br#""{}""#.to_vec(), err(400, "must be a JSON object")),
            ("a number", b"1e308".to_vec(), err(400, "must be a JSON object")),
            ("null", b"null".to_vec(), err(400, "must be a JSON object")),
            (
                "arrays nested 100000 deep",
                deep_array.into_bytes(),
                err(400, "recursion limit"),
            ),
            (
                "objects nested 10000 deep",
                deep_object.into_bytes(),
                err(400, "recursion limit"),
            ),
            (
                "a body over the 1 MiB limit",
                over.into_bytes(),
                err(413, "larger than the server accepts"),
            ),
            (
                "a duplicate key",
                format!(r#"{{"{field}":"a","{field}":"b"}}"#).into_bytes(),
                err(400, "given twice"),
            ),
            (
                "a duplicate key in another case",
                format!(r#"{{"{field}":"a","{}":"b"}}"#, field.to_uppercase()).into_bytes(),
                err(400, "given twice"),
            ),
        ];
        for (what, body, want) in cases {
            self.json(m, template, what, body, want);
        }
    }
}

fn error(status: u16, needle: &'static str) -> Want {
    Want::Error(status, needle)
}

/// The registration answers every body it cannot read with 400 `params`, the oversized one too.
fn register_error(status: u16, needle: &'static str) -> Want {
    Want::Register(if status == 413 { 400 } else { status }, needle)
}

/// The cases of every route.
fn hostile_cases(table: &mut Table) {
    use Want::Error as E;
    let t = table;
    let root = t.t.local_root.clone();
    // Overlong, yet small enough that the body stays under the 1 MiB limit.
    let huge = long(MIB - 1024);

    // Portals and sign-in.
    let reg = "/apisystem/portal/register";
    t.bad_bodies("POST", reg, "portalName", register_error);
    let base = |name: &str| {
        format!(
            r#"{{"portalName":"{name}","firstName":"a","lastName":"b","email":"r@example.com","password":"Portal-Pass-2"}}"#
        )
    };
    for name in ["../../etc", "%2e%2e%2fx", "a\\u0000b", "-1", "a b"] {
        t.json(
            "POST",
            reg,
            &format!("portal name {name}"),
            base(name),
            Want::Register(400, "portalName"),
        );
    }
    t.json(
        "POST",
        reg,
        "a 1 MiB portal name",
        base(&huge),
        Want::Register(400, "portalName"),
    );
    t.json(
        "POST",
        reg,
        "a portal name of the wrong type",
        r#"{"portalName":["x"],"email":"r@example.com","password":"Portal-Pass-2"}"#,
        Want::Register(400, "expected a string"),
    );
    let auth = "/api/2.0/authentication";
    t.bad_bodies("POST", auth, "userName", error);
    t.json(
        "POST",
        auth,
        "a user name of the wrong type",
        r#"{"userName":{"$ne":null},"password":"x"}"#,
        E(400, "expected a string"),
    );
    t.json(
        "POST",
        auth,
        "a 1 MiB user name",
        format!(r#"{{"userName":"{huge}","password":"x"}}"#),
        E(401, "User authentication failed"),
    );
    t.json(
        "POST",
        auth,
        "a 1 MiB password",
        format!(r#"{{"userName":"nobody@example.com","password":"{huge}"}}"#),
        E(401, "User authentication failed"),
    );

    // People.
    for p in ["/api/2.0/people", "/api/2.0/people/active"] {
        t.bad_bodies("POST", p, "email", error);
        let person = |extra: &str| format!(r#"{{"email":"h@example.com","firstName":"A","lastName":"B"{extra}}}"#);
        t.json(
            "POST",
            p,
            "type 99",
            person(r#","type":99"#),
            E(400, "not a valid EmployeeType"),
        );
        t.json(
            "POST",
            p,
            "type Foo",
            person(r#","type":"Foo""#),
            E(400, "not a valid EmployeeType"),
        );
        t.json(
            "POST",
            p,
            "type -1",
            person(r#","type":-1"#),
            E(400, "not a valid EmployeeType"),
        );
        t.json(
            "POST",
            p,
            "type 1e308",
            person(r#","type":1e308"#),
            E(400, "not a valid EmployeeType"),
        );
        t.json(
            "POST",
            p,
            "a first name of the wrong type",
            person(r#","firstName":{"a":1}"#).replacen(r#""firstName":"A","#, "", 1),
            E(400, "expected a string"),
        );
        t.json(
            "POST",
            p,
            "a 1 MiB first name",
            format!(r#"{{"email":"h@example.com","firstName":"{huge}","lastName":"B"}}"#),
            E(400, "maximum length of 255"),
        );
        t.json(
            "POST",
            p,
            "a 1 MiB e-mail",
            format!(r#"{{"email":"{huge}@example.com","firstName":"A","lastName":"B"}}"#),
            E(400, "maximum length of 255"),
        );
        t.json(
            "POST",
            p,
            "a NUL in the e-mail",
            r#"{"email":"h\u0000@example.com","firstName":"A","lastName":"B"}"#,
            E(400, "e-mail"),
        );
        t.json(
            "POST",
            p,
            "a 1 MiB password",
            format!(r#"{{"email":"h@example.com","firstName":"A","lastName":"B","password":"{huge}"}}"#),
            E(400, "Password"),
        );
    }
    let people = "/api/2.0/people";
    for (q, needle) in [
        ("count=-1", "between 1 and 100"),
        ("count=0", "between 1 and 100"),
        ("count=9223372036854775807", "between 1 and 100"),
        ("count=9223372036854775808", "is not an integer"),
        ("count=1e308", "is not an integer"),
        ("startIndex=-1", "must not be negative"),
        ("startIndex=-9223372036854775808", "must not be negative"),
        ("sortOrder=1e308", "is not an integer"),
    ] {
        t.query("GET", people, q, q, E(400, needle));
    }
    for id in NOT_GUIDS {
        t.id("GET", "/api/2.0/people/{userid}", id, None, E(404, ""));
    }

    // API keys.
    let keys = "/api/2.0/keys";
    t.bad_bodies("POST", keys, "name", error);
    for (what, body, needle) in [
        (
            "a 1 MiB name",
            format!(r#"{{"name":"{huge}"}}"#),
            "Length must be less than 30",
        ),
        (
            "a name of the wrong type",
            r#"{"name":["k"]}"#.to_owned(),
            "expected a string",
        ),
        (
            "expiresInDays -1",
            r#"{"name":"k","expiresInDays":-1}"#.to_owned(),
            "between 1 and 365",
        ),
        (
            "expiresInDays i64::MAX",
            r#"{"name":"k","expiresInDays":9223372036854775807}"#.to_owned(),
            "between 1 and 365",
        ),
        (
            "expiresInDays past i64",
            r#"{"name":"k","expiresInDays":18446744073709551616}"#.to_owned(),
            "is not an integer",
        ),
        (
            "expiresInDays 1e308",
            r#"{"name":"k","expiresInDays":1e308}"#.to_owned(),
            "is not an integer",
        ),
        (
            "permissions of the wrong type",
            r#"{"name":"k","permissions":"*"}"#.to_owned(),
            "expected a sequence",
        ),
        (
            "an unknown permission",
            r#"{"name":"k","permissions":["../../*"]}"#.to_owned(),
            "Permissions are not valid",
        ),
        (
            "a 1 MiB permission",
            format!(r#"{{"name":"k","permissions":["{huge}"]}}"#),
            "Permissions are not valid",
        ),
    ] {
        t.json("POST", keys, what, body, E(400, needle));
    }
    let key = "/api/2.0/keys/{keyid}";
    t.bad_bodies("PUT", key, "name", error);
    t.json(
        "PUT",
        key,
        "a 1 MiB name",
        format!(r#"{{"name":"{huge}"}}"#),
        E(400, "Length must be less than 30"),
    );
    t.json(
        "PUT",
        key,
        "isActive maybe",
        r#"{"isActive":"maybe"}"#,
        E(400, "expected a boolean"),
    );
    t.json(
        "PUT",
        key,
        "an unknown permission",
        r#"{"permissions":["files:own"]}"#,
        E(400, "Permissions are not valid"),
    );
    for id in NOT_GUIDS {
        t.id("PUT", key, id, Some(r#"{"name":"renamed"}"#), E(404, "not a valid id"));
        t.id("DELETE", key, id, None, E(404, "not a valid id"));
    }

    // Rooms, folders, files.
    let rooms = "/api/2.0/files/rooms";
    t.bad_bodies("POST", rooms, "title", error);
    for (what, body, needle) in [
        (
            "roomType 99",
            r#"{"title":"t","roomType":99}"#.to_owned(),
            "not a valid RoomType",
        ),
        (
            "roomType Foo",
            r#"{"title":"t","roomType":"Foo"}"#.to_owned(),
            "not a valid RoomType",
        ),
        (
            "roomType -1",
            r#"{"title":"t","roomType":-1}"#.to_owned(),
            "not a valid RoomType",
        ),
        (
            "roomType i64::MAX",
            r#"{"title":"t","roomType":9223372036854775807}"#.to_owned(),
            "not a valid RoomType",
        ),
        (
            "roomType 1e308",
            r#"{"title":"t","roomType":1e308}"#.to_owned(),
            "not a valid RoomType",
        ),
        (
            "roomType of the wrong type",
            r#"{"title":"t","roomType":[5]}"#.to_owned(),
            "expected a RoomType",
        ),
        (
            "a 1 MiB title",
            format!(r#"{{"title":"{huge}","roomType":"CustomRoom"}}"#),
            "maximum length of 170",
        ),
        (
            "a title of the wrong type",
            r#"{"title":{},"roomType":5}"#.to_owned(),
            "expected a string",
        ),
    ] {
        t.json("POST", rooms, what, body, E(400, needle));
    }
    let listing_queries: &[(&str, &str)] = &[
        ("count=-1", "between 1 and 100"),
        ("count=9223372036854775808", "is not an integer"),
        ("startIndex=-1", "must not be negative"),
        ("startIndex=1e308", "is not an integer"),
    ];
    for (q, needle) in listing_queries {
        for p in [
            rooms,
            "/api/2.0/files/@my",
            "/api/2.0/files/@trash",
            "/api/2.0/files/@root",
        ] {
            t.query("GET", p, q, q, E(400, needle));
        }
        t.query("GET", "/api/2.0/files/{folderid}", q, q, E(400, needle));
    }
    t.query("GET", rooms, "type=99", "type=99", E(400, "not a valid RoomType"));
    t.query("GET", rooms, "type=Foo", "type=Foo", E(400, "not a valid RoomType"));
    t.query(
        "GET",
        "/api/2.0/files/@root",
        "withoutTrash=maybe",
        "withoutTrash=maybe",
        E(400, "expected a boolean"),
    );
    let folder_reads = [
        ("GET", "/api/2.0/files/rooms/{roomid}"),
        ("GET", "/api/2.0/files/{folderid}"),
        ("GET", "/api/2.0/files/folder/{folderid}"),
        ("DELETE", "/api/2.0/files/folder/{folderid}"),
    ];
    for (m, p) in folder_reads {
        for id in NOT_INTS {
            t.id(m, p, id, None, E(404, "not a valid id"));
        }
        for id in ["-1", "0", "9223372036854775807"] {
            t.id(m, p, id, None, E(404, "The required folder was not found"));
        }
    }
    let new_folder = "/api/2.0/files/folder/{folderid}";
    t.bad_bodies("POST", new_folder, "title", error);
    for id in NOT_INTS {
        t.id(
            "POST",
            new_folder,
            id,
            Some(r#"{"title":"x"}"#),
            E(404, "not a valid id"),
        );
    }
    for id in ["-1", "9223372036854775807"] {
        t.id(
            "POST",
            new_folder,
            id,
            Some(r#"{"title":"x"}"#),
            E(403, "The required folder was not found"),
        );
    }
    t.json(
        "POST",
        new_folder,
        "a 1 MiB title",
        format!(r#"{{"title":"{huge}"}}"#),
        E(400, "maximum length of 165"),
    );
    let del_folder = "/api/2.0/files/folder/{folderid}";
    t.bad_bodies("DELETE", del_folder, "immediately", error);
    t.json(
        "DELETE",
        del_folder,
        "immediately maybe",
        r#"{"immediately":"maybe"}"#,
        E(400, "expected a boolean"),
    );
    let file = "/api/2.0/files/file/{fileid}";
    for m in ["GET", "DELETE"] {
        for id in NOT_INTS {
            t.id(m, file, id, None, E(404, "not a valid id"));
        }
        for id in ["-1", "9223372036854775807"] {
            t.id(m, file, id, None, E(404, "The required file was not found"));
        }
    }
    t.bad_bodies("DELETE", file, "immediately", error);
    t.json(
        "DELETE",
        file,
        "immediately of the wrong type",
        r#"{"immediately":[true]}"#,
        E(400, "expected a boolean"),
    );
    // Uploads.
    let multipart = |name: &str, data: &[u8]| {
        let mut b = format!(
            "--XX\r\nContent-Disposition: form-data; name=\"File\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n--XX--\r\n");
        b
    };
    let mp = "multipart/form-data; boundary=XX";
    for (m, p) in [
        ("POST", "/api/2.0/files/{folderid}/upload"),
        ("POST", "/api/2.0/files/{folderid}/insert"),
    ] {
        for id in NOT_INTS {
            let start = p.find('{').unwrap();
            let target = format!("{}{id}{}", &p[..start], &p[start + "{folderid}".len()..]);
            let target = format!("{}?title=x.txt", t.path(&target));
            let req = t.raw(m, target, Some(mp), multipart("x.txt", b"x"));
            t.push((m, p), format!("path id `{id}`"), req, E(404, "not a valid id"));
        }
        for id in ["-1", "9223372036854775807"] {
            let target = t.path(p).replacen(&t.t.room.to_string(), id, 1);
            let req = t.raw(m, target, Some(mp), multipart("x.txt", b"x"));
            t.push(
                (m, p),
                format!("path id `{id}`"),
                req,
                E(404, "The required folder was not found"),
            );
        }
    }
    for p in ["/api/2.0/files/{folderid}/upload", "/api/2.0/files/@my/upload"] {
        let target = t.path(p);
        let req = t.raw("POST", target.clone(), Some("application/json"), b"{}".to_vec());
        t.push(("POST", p), "not multipart", req, E(400, "multipart/form-data"));
        let req = t.raw("POST", target.clone(), Some("multipart/form-data"), b"x".to_vec());
        t.push(("POST", p), "multipart without a boundary", req, E(400, "boundary"));
        let cut = multipart("x.txt", b"data")[..60].to_vec();
        let req = t.raw("POST", target.clone(), Some(mp), cut);
        t.push(("POST", p), "a truncated multipart body", req, E(400, "multipart"));
        let req = t.raw(
            "POST",
            target.clone(),
            Some(mp),
            multipart("big.bin", &vec![7u8; MIB + 1]),
        );
        t.push(
            ("POST", p),
            "a file over the upload limit",
            req,
            E(413, "larger than the limit"),
        );
        let req = t.raw(
            "POST",
            format!("{target}?createNewIfExist=maybe"),
            Some(mp),
            multipart("x.txt", b"x"),
        );
        t.push(("POST", p), "createNewIfExist maybe", req, E(400, "expected a boolean"));
    }
    let insert = "/api/2.0/files/{folderid}/insert";
    let target = t.path(insert);
    let req = t.raw("POST", target.clone(), Some("text/plain"), b"raw".to_vec());
    t.push(("POST", insert), "a raw body without a title", req, E(400, "Title"));
    let req = t.raw(
        "POST",
        format!("{target}?title=big.bin"),
        Some("application/octet-stream"),
        vec![1u8; MIB + 1],
    );
    t.push(
        ("POST", insert),
        "a raw body over the upload limit",
        req,
        E(413, "larger than the limit"),
    );
    // The file handler.
    let fh = "/filehandler.ashx";
    let file_id = t.t.file;
    for (q, status, needle) in [
        ("action=explode&fileid=1".to_owned(), 400, "unknown action"),
        ("action=download".to_owned(), 400, "fileid"),
        (format!("fileid={file_id}"), 400, "action"),
        (
            "action=download&fileid=-1".to_owned(),
            404,
            "The required file was not found",
        ),
        (
            "action=download&fileid=9223372036854775807".to_owned(),
            404,
            "The required file was not found",
        ),
        (
            "action=download&fileid=9223372036854775808".to_owned(),
            400,
            "is not an integer",
        ),
        ("action=download&fileid=1e308".to_owned(), 400, "is not an integer"),
        (
            "action=download&fileid=..%2F..%2Fetc%2Fpasswd".to_owned(),
            400,
            "is not an integer",
        ),
        ("action=download&fileid=%00".to_owned(), 400, "is not an integer"),
        (format!("action={}&fileid=1", long(60_000)), 400, "unknown action"),
    ] {
        t.query(
            "GET",
            fh,
            &q.chars().take(60).collect::<String>(),
            &q,
            E(status, needle),
        );
    }

    // Third-party storage.
    let consumers = "/api/2.0/settings/authservice";
    t.bad_bodies("POST", consumers, "name", error);
    for (what, body, needle) in [
        ("an unknown consumer", r#"{"name":"Foo","props":[]}"#.to_owned(), "Foo"),
        (
            "a consumer named ../..",
            r#"{"name":"../..","props":[]}"#.to_owned(),
            "../..",
        ),
        (
            "props of the wrong type",
            r#"{"name":"s3","props":"x"}"#.to_owned(),
            "expected a sequence",
        ),
        (
            "a prop without a name",
            r#"{"name":"s3","props":[{"value":"v"}]}"#.to_owned(),
            "name",
        ),
        (
            "a 1 MiB prop value",
            format!(r#"{{"name":"s3","props":[{{"name":"acesskey","value":"{huge}"}}]}}"#),
            "",
        ),
        (
            "an unknown prop",
            r#"{"name":"s3","props":[{"name":"../../x","value":"v"}]}"#.to_owned(),
            "../../x",
        ),
    ] {
        t.json("POST", consumers, what, body, E(400, needle));
    }
    t.query(
        "GET",
        "/api/2.0/settings/storage/backup",
        "dump=maybe",
        "dump=maybe",
        E(400, "expected a boolean"),
    );
    let provider = "/api/2.0/files/thirdparty/backup";
    t.bad_bodies("POST", provider, "url", error);
    for (what, body, needle) in [
        (
            "providerKey Foo",
            r#"{"url":"http://127.0.0.1:9/dav/","login":"a","password":"b","customerTitle":"t","providerKey":"Foo"}"#
                .to_owned(),
            "Foo",
        ),
        (
            "a file: url",
            r#"{"url":"file:///etc/passwd","login":"a","password":"b","customerTitle":"t","providerKey":"WebDav"}"#
                .to_owned(),
            "must start with http:// or https://",
        ),
        (
            "a url of the wrong type",
            r#"{"url":{"a":1},"login":"a","password":"b","customerTitle":"t","providerKey":"WebDav"}"#.to_owned(),
            "expected a string",
        ),
        (
            "a 1 MiB url",
            format!(
                r#"{{"url":"http://{huge}/","login":"a","password":"b","customerTitle":"t","providerKey":"WebDav"}}"#
            ),
            "connecting to the WebDAV folder failed",
        ),
    ] {
        t.json("POST", provider, what, body, E(400, needle));
    }

    // The backup API, under both prefixes.
    for prefix in ["/api/2.0/backup", "/api/2.0/portal"] {
        let p = |name: &str| format!("{prefix}/{name}");
        let start = &p("startbackup");
        t.bad_bodies("POST", start, "storageType", error);
        let params = |k: &str, v: &str| format!(r#"[{{"key":"{k}","value":{v}}}]"#);
        let backup_bodies: Vec<(String, String, u16, &'static str)> = vec![
            (
                "storageType 99".into(),
                r#"{"storageType":99}"#.into(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "storageType Foo".into(),
                r#"{"storageType":"Foo"}"#.into(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "storageType -1".into(),
                r#"{"storageType":-1}"#.into(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "storageType i64::MAX".into(),
                r#"{"storageType":9223372036854775807}"#.into(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "storageType 1e308".into(),
                r#"{"storageType":1e308}"#.into(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "storageType of the wrong type".into(),
                r#"{"storageType":{}}"#.into(),
                400,
                "expected a BackupStorageType",
            ),
            (
                "dump maybe".into(),
                r#"{"storageType":4,"dump":"maybe"}"#.into(),
                400,
                "expected a boolean",
            ),
            (
                "storageParams of the wrong type".into(),
                r#"{"storageType":4,"storageParams":"x"}"#.into(),
                400,
                "storageParams",
            ),
            (
                "a storageParams pair of the wrong type".into(),
                r#"{"storageType":4,"storageParams":[["folderId","1"]]}"#.into(),
                400,
                "storageParams",
            ),
            (
                "a storageParams value of the wrong type".into(),
                format!(r#"{{"storageType":0,"storageParams":{}}}"#, params("folderId", "[1]")),
                400,
                "storageParams",
            ),
            (
                "a duplicate storageParams key".into(),
                r#"{"storageType":4,"storageParams":[{"key":"k","value":"1"},{"key":"K","value":"2"}]}"#.into(),
                400,
                "given twice",
            ),
        ];
        let folder_ids: Vec<(&str, u16, &str)> = vec![
            (r#""../../etc""#, 400, "wrong folder type"),
            (r#""%2e%2e%2f""#, 400, "wrong folder type"),
            (r#""/etc/passwd""#, 400, "wrong folder type"),
            (r#""1\u0000""#, 400, "wrong folder type"),
            ("1e308", 400, "wrong folder type"),
            ("18446744073709551616", 400, "wrong folder type"),
            ("-1", 404, "The required folder was not found"),
            ("9223372036854775807", 404, "The required folder was not found"),
        ];
        let file_paths: Vec<(String, &str)> = vec![
            (format!("{root}/../.."), "must not contain `..`"),
            (format!("{root}/%2e%2e%2f%2e%2e"), "cannot be used"),
            ("/etc".to_owned(), "outside the directories"),
            ("relative/dir".to_owned(), "absolute path"),
            (format!("{root}\\u0000/x"), "cannot be used"),
            (format!("{root}/{}", long(MIB - 1024)), "cannot be used"),
        ];
        let mut bodies = backup_bodies;
        for (v, status, needle) in &folder_ids {
            bodies.push((
                format!("folderId {v}"),
                format!(r#"{{"storageType":0,"storageParams":{}}}"#, params("folderId", v)),
                *status,
                needle,
            ));
        }
        for (v, needle) in &file_paths {
            bodies.push((
                format!("filePath {}", v.chars().take(60).collect::<String>()),
                format!(
                    r#"{{"storageType":3,"storageParams":{}}}"#,
                    params("filePath", &format!("\"{v}\""))
                ),
                400,
                needle,
            ));
        }
        for (what, body, status, needle) in &bodies {
            t.json("POST", start, what, body.clone(), E(*status, needle));
        }
        let sched = &p("createbackupschedule");
        t.bad_bodies("POST", sched, "storageType", error);
        let cron = |c: &str| format!(r#"{{"storageType":4,"backupsStored":3,"cronParams":{c}}}"#);
        for (what, body, needle) in [
            ("hour -1", cron(r#"{"period":0,"hour":-1}"#), "cronParams.hour"),
            (
                "hour i64::MAX",
                cron(r#"{"period":0,"hour":9223372036854775807}"#),
                "cronParams.hour",
            ),
            (
                "hour past i64",
                cron(r#"{"period":0,"hour":9223372036854775808}"#),
                "is not an integer",
            ),
            ("hour 1e308", cron(r#"{"period":0,"hour":1e308}"#), "is not an integer"),
            ("day -1", cron(r#"{"period":2,"day":-1}"#), "cronParams.day"),
            (
                "weekday i64::MIN",
                cron(r#"{"period":1,"day":-9223372036854775808}"#),
                "cronParams.day",
            ),
            ("period 99", cron(r#"{"period":99}"#), "not a valid BackupPeriod"),
            ("period Foo", cron(r#"{"period":"Foo"}"#), "not a valid BackupPeriod"),
            (
                "cronParams as a cron string",
                cron(r#""0 3 * * *""#),
                "invalid type: string",
            ),
            (
                "a 1 MiB cron string",
                cron(&format!(r#""{huge}""#)),
                "invalid type: string",
            ),
            (
                "a 1 MiB period",
                cron(&format!(r#"{{"period":"{huge}"}}"#)),
                "not a valid BackupPeriod",
            ),
            (
                "backupsStored -1",
                r#"{"storageType":4,"backupsStored":-1,"cronParams":{}}"#.to_owned(),
                "backupsStored must be 1 - 30",
            ),
            (
                "backupsStored i64::MAX",
                r#"{"storageType":4,"backupsStored":9223372036854775807,"cronParams":{}}"#.to_owned(),
                "backupsStored must be 1 - 30",
            ),
            (
                "backupsStored 1e308",
                r#"{"storageType":4,"backupsStored":1e308,"cronParams":{}}"#.to_owned(),
                "is not an integer",
            ),
            (
                "storageType 99",
                r#"{"storageType":99,"cronParams":{}}"#.to_owned(),
                "not a valid BackupStorageType",
            ),
            (
                "a filePath escape",
                format!(
                    r#"{{"storageType":3,"storageParams":{},"cronParams":{{}}}}"#,
                    params("filePath", &format!("\"{root}/../..\""))
                ),
                "must not contain `..`",
            ),
            (
                "a folderId escape",
                format!(
                    r#"{{"storageType":0,"storageParams":{},"cronParams":{{}}}}"#,
                    params("folderId", r#""../1""#)
                ),
                "wrong folder type",
            ),
            (
                "dump maybe",
                r#"{"dump":"maybe","storageType":4,"backupsStored":3,"cronParams":{}}"#.to_owned(),
                "expected a boolean",
            ),
        ] {
            t.json("POST", sched, what, body, E(400, needle));
        }
        let restore = &p("startrestore");
        t.bad_bodies("POST", restore, "backupId", error);
        let from_file = |st: &str, v: &str| {
            format!(
                r#"{{"backupId":"","storageType":{st},"storageParams":{}}}"#,
                params("filePath", v)
            )
        };
        for (what, body, status, needle) in [
            (
                "backupId of the wrong type".to_owned(),
                r#"{"backupId":["x"]}"#.to_owned(),
                400,
                "expected a string",
            ),
            (
                "a 1 MiB backupId".to_owned(),
                format!(r#"{{"backupId":"{huge}","storageType":3}}"#),
                400,
                "filePath is required",
            ),
            (
                "a backupId escape".to_owned(),
                r#"{"backupId":"../../etc/passwd","storageType":3}"#.to_owned(),
                400,
                "filePath is required",
            ),
            (
                "an unknown backupId".to_owned(),
                format!(r#"{{"backupId":"{}"}}"#, uuid::Uuid::new_v4()),
                404,
                "Unable to find the specified file.",
            ),
            (
                "storageType 99".to_owned(),
                r#"{"backupId":"","storageType":99}"#.to_owned(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "storageType Foo".to_owned(),
                r#"{"backupId":"","storageType":"Foo"}"#.to_owned(),
                400,
                "not a valid BackupStorageType",
            ),
            (
                "notify maybe".to_owned(),
                format!(r#"{{"backupId":"{}","notify":"maybe"}}"#, t.t.backup),
                400,
                "expected a boolean",
            ),
            (
                "dump maybe".to_owned(),
                format!(r#"{{"backupId":"{}","dump":"maybe"}}"#, t.t.backup),
                400,
                "expected a boolean",
            ),
            (
                "a Local filePath with ..".to_owned(),
                from_file("3", &format!("\"{root}/../../etc/passwd\"")),
                400,
                "must not contain `..`",
            ),
            (
                "a Local filePath outside the roots".to_owned(),
                from_file("3", r#""/etc/passwd""#),
                400,
                "outside the directories",
            ),
            (
                "a relative Local filePath".to_owned(),
                from_file("3", r#""%2e%2e%2fetc%2fpasswd""#),
                400,
                "absolute path",
            ),
            (
                "a Local filePath with a NUL".to_owned(),
                from_file("3", &format!("\"{root}/a\\u0000b\"")),
                400,
                "cannot be used",
            ),
            (
                "a Local directory".to_owned(),
                from_file("3", &format!("\"{root}\"")),
                400,
                "is not a file",
            ),
            (
                "a Documents filePath -1".to_owned(),
                from_file("0", "-1"),
                404,
                "The required file was not found",
            ),
            (
                "a Documents filePath i64::MAX".to_owned(),
                from_file("0", "9223372036854775807"),
                404,
                "The required file was not found",
            ),
            (
                "a Documents filePath escape".to_owned(),
                from_file("0", r#""../../etc/passwd""#),
                404,
                "The required file was not found",
            ),
            (
                "a Documents filePath 1e308".to_owned(),
                from_file("0", "1e308"),
                404,
                "The required file was not found",
            ),
            (
                "a WebDAV filePath escape".to_owned(),
                from_file("1", r#""../../etc/passwd""#),
                404,
                "no third-party backup folder",
            ),
            (
                "a DataStore filePath".to_owned(),
                from_file("4", r#""../../etc/passwd""#),
                400,
                "by its backupId",
            ),
        ] {
            t.json("POST", restore, &what, body, E(status, needle));
        }
        for name in [
            "getbackupprogress",
            "getbackuphistory",
            "deletebackuphistory",
            "getbackupschedule",
            "deletebackupschedule",
            "getrestoreprogress",
        ] {
            let m = if name.starts_with("delete") { "DELETE" } else { "GET" };
            for q in ["dump=maybe", "dump=1e308", "Dump=%00"] {
                t.query(m, &p(name), q, q, E(400, "expected a boolean"));
            }
        }
        for name in ["getbackupscount", "getbackupscountbypaid"] {
            for q in [
                "from=1e308",
                "from=-1",
                "to=9223372036854775808",
                "from=..%2F..%2Fetc",
                "from=2026-13-45",
                "to=%00",
            ] {
                t.query("GET", &p(name), q, q, E(400, "is not a date"));
            }
            t.query(
                "GET",
                &p(name),
                "paid=maybe",
                "paid=maybe",
                E(400, "expected a boolean"),
            );
        }
        for name in ["deletebackup/{backupid}", "verifybackup/{backupid}"] {
            let m = if name.starts_with("delete") { "DELETE" } else { "GET" };
            for id in NOT_GUIDS {
                t.id(m, &p(name), id, None, E(404, "not a valid id"));
            }
        }
    }
    // The upload of a backup file answers in its own shape, always 200 (as DocSpace).
    let up = "/backupfileupload.ashx";
    for (q, needle) in [
        ("Init=true&totalSize=-1&extension=tar.zst", "totalSize must be between"),
        ("Init=true&totalSize=0&extension=tar.zst", "totalSize must be between"),
        (
            "Init=true&totalSize=9223372036854775807&extension=tar.zst",
            "totalSize must be between",
        ),
        (
            "Init=true&totalSize=10&extension=..%2F..%2Fetc%2Fpasswd",
            "is not a backup archive",
        ),
        ("Init=true&totalSize=10&extension=exe", "is not a backup archive"),
        ("Init=true&totalSize=10&extension=tar.zst%00", "is not a backup archive"),
    ] {
        let target = format!("/backupFileUpload.ashx?{q}");
        let req = t.raw("POST", target, None, Vec::new());
        t.push(("POST", up), q, req, Want::Upload(needle));
    }
    for q in [
        "Init=maybe",
        "Init=true&totalSize=1e308",
        "Init=true&totalSize=9223372036854775808",
    ] {
        let target = format!("/backupFileUpload.ashx?{q}");
        let req = t.raw("POST", target, None, Vec::new());
        t.push(("POST", up), q, req, Want::Upload("query parameter"));
    }
    let req = t.raw(
        "POST",
        "/backupFileUpload.ashx".to_owned(),
        Some(mp),
        multipart("chunk", b"x"),
    );
    t.push(
        ("POST", up),
        "a chunk with no upload started",
        req,
        Want::Upload("no upload was started"),
    );
    // The signed download link.
    let dl = "/api/2.0/backup/download/{backupid}";
    for id in NOT_GUIDS {
        t.id("GET", dl, id, None, E(404, "not a valid id"));
    }
    let target = t.path(dl);
    for (q, status, needle) in [
        ("", 400, "expires and signature"),
        ("expires=1&signature=00", 403, ""),
        ("expires=-1&signature=00", 403, ""),
        ("expires=9223372036854775807&signature=00", 403, ""),
        ("expires=1e308&signature=00", 400, "is not an integer"),
        ("expires=9223372036854775808&signature=00", 400, "is not an integer"),
        ("expires=9999999999999&signature=..%2F..%2Fetc%2Fpasswd", 403, ""),
    ] {
        let req = t.raw("GET", format!("{target}?{q}"), None, Vec::new());
        t.push(("GET", dl), format!("link ?{q}"), req, E(status, needle));
    }
}

/// Oversized headers, for every route: a 64 KiB value, 90 headers of 400 bytes, a 40 KiB
/// cookie. Each is over the 32 KiB the server reads (Kestrel's limit), and under what the HTTP
/// layer itself refuses.
fn header_cases(table: &mut Table) {
    for r in backspace_server::routes::table() {
        let m = ["GET", "POST", "PUT", "DELETE"]
            .into_iter()
            .find(|m| *m == r.method.as_str())
            .expect("a method this test knows");
        let target = table.path(r.path);
        let extra: [(&str, Vec<(String, String)>); 3] = [
            ("a 64 KiB header", vec![("x-hostile".to_owned(), "h".repeat(64 << 10))]),
            (
                "90 headers of 400 bytes",
                (0..90).map(|i| (format!("x-hostile-{i}"), "h".repeat(400))).collect(),
            ),
            (
                "a 40 KiB cookie",
                vec![("cookie".to_owned(), format!("asc_auth_key={}", "c".repeat(40 << 10)))],
            ),
        ];
        for (what, headers) in extra {
            let mut req = table.raw(m, target.clone(), None, Vec::new());
            req.headers.extend(headers);
            table.cases.push(Case {
                route: Some((m, r.path.to_owned())),
                every_route: true,
                what: what.to_owned(),
                req,
                want: Want::Error(431, "request headers"),
            });
        }
    }
}

/// Requests for paths no route serves, and requests the HTTP layer refuses before routing.
fn unrouted_cases(table: &Table) -> Vec<Case> {
    let raw = |method: &'static str, target: &str| table.raw(method, target.to_owned(), None, Vec::new());
    let mut out = Vec::new();
    let mut add = |what: &str, req: Raw, want: Want| {
        out.push(Case {
            route: None,
            every_route: false,
            what: what.to_owned(),
            req,
            want,
        })
    };
    for target in [
        "/api/2.0/files/../keys",
        "/api/2.0/files/%2e%2e/%2e%2e/keys",
        "/api/2.0/backup/..%2F..%2Fkeys",
        "/api/2.0/backup/getbackuphistory/..",
        "/api/2.0/people/%2e%2e%2f%2e%2e%2fkeys/x",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/2.0/files/file/1/%00",
    ] {
        add(target, raw("GET", target), Want::Error(404, "no such route"));
    }
    add(
        "DELETE /api/2.0/keys/../backup/deletebackuphistory",
        raw("DELETE", "/api/2.0/keys/../backup/deletebackuphistory"),
        Want::Error(404, "no such route"),
    );
    let mut many = raw("GET", "/api/2.0/people/@self");
    for i in 0..150 {
        many.headers.push((format!("x-h{i}"), "1".to_owned()));
    }
    add("150 headers (more than 100)", many, Want::Bare(431));
    let mut nul = raw("GET", "/api/2.0/people/@self");
    nul.headers.push(("x-nul".to_owned(), "a\0b".to_owned()));
    add("a NUL in a header value", nul, Want::Bare(400));
    add("a NUL in the path", raw("GET", "/api/2.0/people/\0"), Want::Bare(400));
    add(
        "a 70 KiB path",
        raw("GET", &format!("/api/2.0/files/{}", "9".repeat(70 << 10))),
        Want::Bare(414),
    );
    out
}

/// The largest error body a case may get.
const MAX_ERROR_BODY: usize = 4 << 10;

/// Checks one answer against its case; `Err` says why not.
fn check(case: &Case, answer: &Answer) -> Result<(), String> {
    let body = answer.json();
    let status = answer.status;
    let fail = |why: String| {
        Err(format!(
            "{why}; got {status} {}",
            body.to_string().chars().take(400).collect::<String>()
        ))
    };
    if status >= 500 {
        return fail("a 5xx".into());
    }
    // An error names the problem; it does not echo a megabyte of hostile input back (or into
    // the log).
    if answer.body.len() > MAX_ERROR_BODY {
        return fail(format!("an error body of {} bytes", answer.body.len()));
    }
    match &case.want {
        Want::Error(want, needle) => {
            if status != *want {
                return fail(format!("want {want}"));
            }
            if !answer
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
            {
                return fail(format!("content type {:?}", answer.header("content-type")));
            }
            if body["statusCode"] != *want || body["status"] != 1 {
                return fail("not a DocSpace error body".into());
            }
            for key in ["type", "stack", "hresult"] {
                if body["error"].get(key).is_none() {
                    return fail(format!("error.{key} missing"));
                }
            }
            match body["error"]["message"].as_str() {
                Some(m) if m.contains(needle) => Ok(()),
                Some(m) => fail(format!(
                    "message {:?} lacks {needle:?}",
                    m.chars().take(300).collect::<String>()
                )),
                None => fail("no error.message".into()),
            }
        }
        Want::Register(want, needle) => {
            let ok = status == *want
                && body["error"].is_string()
                && body["message"].as_str().is_some_and(|m| m.contains(needle));
            if ok {
                Ok(())
            } else {
                fail(format!("want {want} with {{error, message}} naming {needle:?}"))
            }
        }
        Want::Upload(needle) => {
            let ok = status == 200
                && body["Success"] == false
                && body["Message"].as_str().is_some_and(|m| m.contains(needle));
            if ok {
                Ok(())
            } else {
                fail(format!("want 200 with Success false and a Message naming {needle:?}"))
            }
        }
        Want::Bare(want) => {
            if status == *want && answer.body.is_empty() {
                Ok(())
            } else {
                fail(format!("want a bare {want}"))
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_hostile_requests_and_nothing_changes() {
    let local_root = TempDir::new("backspace-hostile-local");
    let s = TestServer::spawn_with(&[
        ("BACKSPACE_LOCAL_BACKUP_ROOTS", local_root.to_str().unwrap()),
        ("BACKSPACE_MAX_UPLOAD_BYTES", "1048576"),
    ])
    .await;
    let session = Auth::bearer(&s.owner_token().await);

    // A portal with something of everything: a room with a folder and files, a key, a backup,
    // a schedule.
    let room = s.room(&session, "Hostile").await;
    let (status, v) = s.upload(&session, room, "keep.bin", bytes(20_000, 7)).await;
    assert_eq!(status, 200, "{v}");
    let file = v["response"][0]["id"].as_i64().unwrap();
    let (status, v) = s
        .post(
            &format!("/api/2.0/files/folder/{room}"),
            &session,
            json!({"title": "inner"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (target_key, _) = s.create_key(&session, json!({"name": "target"})).await;
    let (_, owner_key) = s.create_key(&session, json!({"name": "hostile caller"})).await;
    let (status, v) = s
        .post("/api/2.0/backup/startbackup", &session, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(&s, &session).await;
    assert_eq!(done["error"], "", "{done}");
    let backup = done["taskId"].as_str().unwrap().to_owned();
    let (status, v) = s
        .post(
            "/api/2.0/backup/createbackupschedule",
            &session,
            json!({"storageType": 4, "backupsStored": 3, "cronParams": {"period": "EveryMonth", "hour": 0, "day": 29}}),
        )
        .await;
    assert_eq!((status, &v["response"]), (200, &json!(true)), "{v}");
    let (_, me) = s.get("/api/2.0/people/@self", &session).await;

    let mut table = Table {
        auth: format!("Bearer {owner_key}"),
        t: Targets {
            user: me["response"]["id"].as_str().unwrap().to_owned(),
            key: target_key,
            room,
            file,
            backup,
            local_root: local_root.to_str().unwrap().to_owned(),
        },
        cases: Vec::new(),
    };
    hostile_cases(&mut table);
    header_cases(&mut table);

    // Every route of the table has cases of its own, or is known to take no input; and no case
    // aims at a route the table does not have.
    let routes: BTreeSet<(String, String)> = backspace_server::routes::table()
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    let with_cases: BTreeSet<(String, String)> = table
        .cases
        .iter()
        .filter(|c| !c.every_route)
        .filter_map(|c| c.route.as_ref())
        .map(|(m, p)| (m.to_string(), p.clone()))
        .collect();
    let no_input: BTreeSet<(String, String)> = NO_INPUT.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let unknown: Vec<_> = with_cases.union(&no_input).filter(|r| !routes.contains(*r)).collect();
    assert!(
        unknown.is_empty(),
        "cases for routes the table does not have: {unknown:?}"
    );
    let uncovered: Vec<_> = routes
        .iter()
        .filter(|r| !with_cases.contains(*r) && !no_input.contains(*r))
        .collect();
    assert!(
        uncovered.is_empty(),
        "routes without hostile cases (add cases, or list them in NO_INPUT if they take no input): {uncovered:?}"
    );
    let both: Vec<_> = with_cases.intersection(&no_input).collect();
    assert!(
        both.is_empty(),
        "routes in NO_INPUT that have inputs after all: {both:?}"
    );

    let mut cases = std::mem::take(&mut table.cases);
    cases.extend(unrouted_cases(&table));

    let before = digest(&s, &session, &local_root, &[]).await;
    let addr = addr_of(&s);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut per_route: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        let name = match &case.route {
            Some((m, p)) => format!("{m} {p}: {}", case.what),
            None => format!("{} (no route)", case.what),
        };
        if let Some((m, p)) = &case.route {
            *per_route.entry(format!("{m} {p}")).or_default() += 1;
        }
        match send(&addr, &case.req).await {
            Ok(answer) => {
                if let Err(why) = check(case, &answer) {
                    failures.push(format!("{name}: {why}"));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    let elapsed = started.elapsed();

    // The server is up, and nothing the portal shows has changed.
    let (status, v) = s.get("/healthz", &Auth::none()).await;
    assert_eq!((status, &v["status"]), (200, &json!("ok")), "{v}");
    let after = digest(&s, &session, &local_root, &[]).await;
    let changed = differences(&before, &after);
    println!(
        "{} hostile requests over {} routes in {elapsed:.1?}",
        cases.len(),
        per_route.len()
    );
    assert!(
        failures.is_empty() && changed.is_empty(),
        "{} of {} cases failed:\n{}\n\nstate changed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        changed.join("\n")
    );
}

// ----------------------------------------------------------------------------------------------
// Hostile archives.

/// Builds tar streams header by header, names and link targets written raw into the header, as
/// `crates/format/tests/common` does: the tar crate's own path checks are bypassed, so `..`,
/// absolute names, links and devices go in as written.
struct RawTar<W: std::io::Write>(tar::Builder<W>);

type Zstd = zstd::stream::write::Encoder<'static, Vec<u8>>;

impl RawTar<Vec<u8>> {
    fn plain() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    /// The tar bytes, with the end marker.
    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

impl RawTar<Zstd> {
    /// A tar stream compressed with zstd as it is built (a bomb is never held in memory).
    fn zstd() -> Self {
        Self(tar::Builder::new(
            zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap(),
        ))
    }

    /// The compressed archive.
    fn archive(self) -> Vec<u8> {
        self.0.into_inner().unwrap().finish().unwrap()
    }
}

impl<W: std::io::Write> RawTar<W> {
    fn entry(
        mut self,
        kind: tar::EntryType,
        name: &[u8],
        link: Option<&[u8]>,
        size: u64,
        data: impl std::io::Read,
    ) -> Self {
        self.0.append(&raw_header(kind, name, link, size), data).unwrap();
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(tar::EntryType::Regular, name.as_bytes(), None, data.len() as u64, data)
    }

    fn files(self, entries: &[(String, Vec<u8>)]) -> Self {
        entries.iter().fold(self, |t, (name, data)| t.file(name, data))
    }

    /// A GNU long-name header carrying `name`, for the entry that follows.
    fn long_name(self, name: &[u8]) -> Self {
        let mut data = name.to_vec();
        data.push(0);
        let size = data.len() as u64;
        self.entry(tar::EntryType::GNULongName, b"././@LongLink", None, size, &data[..])
    }
}

/// A GNU header with `name` and `link` copied as they are into its fields.
fn raw_header(kind: tar::EntryType, name: &[u8], link: Option<&[u8]>, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link);
        }
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// The tar bytes of regular files, without the end marker.
fn tar_files(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        out.extend_from_slice(raw_header(tar::EntryType::Regular, name.as_bytes(), None, data.len() as u64).as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out
}

/// A decompression bomb: the entries `before`, an entry `name` of `size` zero bytes (a multiple
/// of 1 MiB), then `after`, as concatenated zstd frames (which a zstd reader reads as one
/// stream), the zeros one small frame of 1 MiB repeated: a few tens of KiB that expand to
/// `size` bytes, made in milliseconds.
fn bomb(before: &[(String, Vec<u8>)], name: &str, size: u64, after: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut head = tar_files(before);
    head.extend_from_slice(raw_header(tar::EntryType::Regular, name.as_bytes(), None, size).as_bytes());
    let mut tail = tar_files(after);
    tail.extend_from_slice(&[0; 1024]);
    let zeros = zstd::encode_all(&vec![0u8; 1 << 20][..], 3).unwrap();
    let mut out = zstd::encode_all(&head[..], 3).unwrap();
    for _ in 0..size >> 20 {
        out.extend_from_slice(&zeros);
    }
    out.extend(zstd::encode_all(&tail[..], 3).unwrap());
    out
}

/// The archive of `entries`, in order, as a zstd-compressed tar.
fn pack(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    RawTar::zstd().files(entries).archive()
}

/// The entries of a real archive, in order (the manifest last).
fn unpack(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let tar = zstd::decode_all(archive).unwrap();
    let mut out = Vec::new();
    for entry in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// A format-valid archive (made by the archive writer itself, so sizes and digests agree) of
/// `entries` with `meta`: hostile only in what its entries say.
fn consistent(entries: &[(String, Vec<u8>)], meta: &Value) -> Vec<u8> {
    use backspace_format::{ArchiveWriter, Compression, EntryPath};
    let mut w = ArchiveWriter::new(Vec::new(), Compression::Zstd).unwrap();
    for (name, data) in entries.iter().filter(|(n, _)| n != "manifest.json") {
        w.add_bytes(&EntryPath::new(name.clone()).unwrap(), data).unwrap();
    }
    w.finish(0, meta.clone()).unwrap().0
}

/// Uploads `archive` through `/backupFileUpload.ashx` as the DocSpace web UI does, then asks for
/// a restore of it; returns the start's status and body.
async fn restore_uploaded(s: &TestServer, auth: &Auth, archive: &[u8]) -> (u16, Value) {
    let init = s
        .backup_file_upload(
            auth,
            &format!("?Init=true&totalSize={}&extension=tar.zst", archive.len()),
            None,
        )
        .await;
    assert_eq!(init["Success"], true, "{init}");
    let last = s.backup_file_upload(auth, "", Some(archive.to_vec())).await;
    assert_eq!(
        (&last["Success"], &last["EndUpload"]),
        (&json!(true), &json!(true)),
        "{last}"
    );
    let body = json!({"backupId": "", "storageType": "Local",
        "storageParams": [{"key": "filePath", "value": "ignored"}]});
    s.post("/api/2.0/backup/startrestore", auth, body).await
}

/// The manifest JSON of `entries` (the last one), changed by `edit`.
fn edited_manifest(entries: &[(String, Vec<u8>)], edit: impl FnOnce(&mut Value)) -> (String, Vec<u8>) {
    let (name, data) = entries.last().unwrap();
    assert_eq!(name, "manifest.json");
    let mut m: Value = serde_json::from_slice(data).unwrap();
    edit(&mut m);
    (name.clone(), serde_json::to_vec(&m).unwrap())
}

/// `entries` with the entry `name` replaced by `by` (removed when `by` is empty).
fn replaced(entries: &[(String, Vec<u8>)], name: &str, by: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let at = entries.iter().position(|(n, _)| n == name).unwrap();
    let mut out = entries.to_vec();
    out.splice(at..=at, by);
    out
}

/// The bytes a decompression bomb expands to: 1 GiB of zeros, from some 50 KiB compressed.
const BOMB_BYTES: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_archives_are_refused_before_the_portal_is_touched() {
    use tar::EntryType as T;
    let setup = Instant::now();
    let local_root = TempDir::new("backspace-hostile-archives");
    let s = TestServer::spawn_with(&[("BACKSPACE_LOCAL_BACKUP_ROOTS", local_root.to_str().unwrap())]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Kept").await;
    for (name, data) in [("a.bin", bytes(300_000, 11)), ("b.txt", b"bee".to_vec())] {
        let (status, v) = s.upload(&owner, room, name, data).await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = s
        .post(
            &format!("/api/2.0/files/folder/{room}"),
            &owner,
            json!({"title": "sub"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let sub = v["response"]["id"].as_i64().unwrap();
    s.upload(&owner, sub, "c.bin", bytes(5000, 12)).await;
    // Another portal, whose folder ids a hostile snapshot claims.
    let (_, other, _) = register(&s, "hostile-neighbour").await;
    let (_, theirs) = s.get("/api/2.0/files/rooms", &other).await;
    let their_folder = theirs["response"]["current"]["id"].as_i64().unwrap();

    let (status, v) = s
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    let link = done["link"].as_str().unwrap().to_owned();
    let real = fetch(&s, &link).await;
    let at_backup = tree(&s, &owner, "rooms").await;
    // Made after the backup: a restore that ran would take it away.
    let (status, _) = s
        .upload(&owner, room, "after.txt", b"made after the backup".to_vec())
        .await;
    assert_eq!(status, 200);

    let entries = unpack(&real);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    // The files, then the snapshot that lists them, then the manifest.
    assert_eq!(names.iter().rev().nth(1), Some(&"portal.json"), "{names:?}");
    assert_eq!(names.last(), Some(&"manifest.json"), "{names:?}");
    let file1 = names.iter().find(|n| n.starts_with("files/")).unwrap().to_string();
    let manifest: Value = serde_json::from_slice(&entries.last().unwrap().1).unwrap();
    let meta = manifest["meta"].clone();
    let snapshot: Value = serde_json::from_slice(&entries[entries.len() - 2].1).unwrap();
    let with_snapshot = |edit: &dyn Fn(&mut Value)| {
        let mut snap = snapshot.clone();
        edit(&mut snap);
        replaced(
            &entries,
            "portal.json",
            vec![("portal.json".into(), serde_json::to_vec(&snap).unwrap())],
        )
    };
    let evil = |name: &str| {
        let mut e = entries.clone();
        e.insert(1, (name.to_owned(), b"evil".to_vec()));
        pack(&e)
    };
    let special = |kind: T, link: Option<&[u8]>| {
        let at = entries.iter().position(|(n, _)| *n == file1).unwrap();
        let mut t = RawTar::zstd().files(&entries[..at]);
        t = t.entry(kind, file1.as_bytes(), link, 0, std::io::empty());
        t.files(&entries[at + 1..]).archive()
    };
    let mut tampered = entries.clone();
    let data = &mut tampered.iter_mut().find(|(n, _)| *n == file1).unwrap().1;
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    let mut flipped = real.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let body = &entries[..entries.len() - 1];
    let mut smuggled = RawTar::plain().files(&entries).tar();
    smuggled.extend(RawTar::plain().file("files/666", b"smuggled").tar());

    // (what, archive, what the refusal must say)
    let hostile: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "an entry `../../evil`",
            evil("../../evil"),
            "invalid entry path \"../../evil\"",
        ),
        (
            "an entry `files/../../../tmp/evil`",
            evil("files/../../../tmp/evil"),
            "invalid entry path",
        ),
        (
            "an absolute entry",
            evil("/etc/cron.d/evil"),
            "invalid entry path \"/etc/cron.d/evil\"",
        ),
        ("an entry `..\\..\\evil`", evil("..\\..\\evil"), "invalid entry path"),
        (
            "a GNU long name escaping",
            {
                let name = format!("{}/../../../etc/cron.d/x", "a".repeat(120));
                let t = RawTar::zstd().files(&entries[..1]).long_name(name.as_bytes());
                t.file("innocent", b"x").files(&entries[1..]).archive()
            },
            "invalid entry path",
        ),
        (
            "a PAX header renaming an entry to `../../evil`",
            {
                let t = RawTar::zstd().files(&entries[..1]);
                let pax = b"19 path=../../evil\n";
                let t = t.entry(T::XHeader, b"PaxHeaders/x", None, pax.len() as u64, &pax[..]);
                t.files(&entries[1..]).archive()
            },
            "PAX extended header",
        ),
        (
            "a symlink to /etc/passwd",
            special(T::Symlink, Some(b"/etc/passwd")),
            "is a symbolic link",
        ),
        (
            "a hard link out",
            special(T::Link, Some(b"../../../../etc/passwd")),
            "is a hard link",
        ),
        ("a character device", special(T::Char, None), "is a character device"),
        ("a block device", special(T::Block, None), "is a block device"),
        ("a fifo", special(T::Fifo, None), "is a fifo"),
        ("a directory", special(T::Directory, None), "is a directory"),
        (
            "a duplicate file entry",
            {
                let mut e = entries.clone();
                let dup = e.iter().find(|(n, _)| *n == file1).unwrap().clone();
                e.insert(e.len() - 1, dup);
                pack(&e)
            },
            "appears more than once",
        ),
        (
            "a duplicate portal.json",
            {
                let mut e = entries.clone();
                e.insert(e.len() - 1, entries[entries.len() - 2].clone());
                pack(&e)
            },
            "\"portal.json\" appears more than once",
        ),
        (
            "a manifest that lies about a size",
            {
                let m = edited_manifest(&entries, |m| {
                    let line = m["entries"]
                        .as_array_mut()
                        .unwrap()
                        .iter_mut()
                        .find(|l| l["path"] == file1.as_str());
                    let line = line.unwrap();
                    line["size"] = json!(line["size"].as_u64().unwrap() + 1);
                });
                pack(&replaced(&entries, "manifest.json", vec![m]))
            },
            "bytes but the manifest says",
        ),
        (
            "a decompression bomb: 1 GiB where the manifest says 16 bytes",
            {
                let at = entries.len() - 1;
                let m = edited_manifest(&entries, |m| {
                    m["entries"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"path": "files/999", "size": 16, "blake3": "0".repeat(64)}));
                });
                bomb(&entries[..at], "files/999", BOMB_BYTES, &[m])
            },
            "\"files/999\" is 1073741824 bytes but the manifest says 16",
        ),
        (
            "an entry's byte tampered with",
            pack(&tampered),
            "does not match the digest in the manifest",
        ),
        (
            "a byte of the compressed stream flipped",
            flipped,
            "The backup file is invalid",
        ),
        (
            "the archive cut in half",
            real[..real.len() / 2].to_vec(),
            "truncated or corrupt",
        ),
        (
            "the archive without its last byte",
            real[..real.len() - 1].to_vec(),
            "truncated or corrupt",
        ),
        ("the tar cut before the manifest", pack(body), "has no manifest"),
        (
            "an entry smuggled after the end marker",
            zstd::encode_all(&smuggled[..], 3).unwrap(),
            "data after its end marker",
        ),
        (
            "the manifest first",
            {
                let mut e = entries.clone();
                let m = e.pop().unwrap();
                e.insert(0, m);
                pack(&e)
            },
            "not its last entry",
        ),
        (
            "an unknown format version",
            pack(&replaced(
                &entries,
                "manifest.json",
                vec![edited_manifest(&entries, |m| m["version"] = json!(99))],
            )),
            "format version 99",
        ),
        ("not an archive", bytes(4096, 9), "The backup file is invalid"),
        // Valid archives whose content is hostile.
        (
            "a portal.json that is not a snapshot",
            consistent(
                &replaced(
                    &entries,
                    "portal.json",
                    vec![("portal.json".into(), b"[1,2,3]".to_vec())],
                ),
                &meta,
            ),
            "is not a portal snapshot",
        ),
        (
            "a portal.json nested 100000 deep",
            {
                let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
                consistent(
                    &replaced(&entries, "portal.json", vec![("portal.json".into(), deep)]),
                    &meta,
                )
            },
            "is not a portal snapshot",
        ),
        (
            "no portal.json",
            consistent(&replaced(&entries, "portal.json", vec![]), &meta),
            "has no portal.json",
        ),
        (
            "a file row without its bytes",
            consistent(&replaced(&entries, &file1, vec![]), &meta),
            "are missing",
        ),
        (
            "a file row whose size lies",
            consistent(
                &with_snapshot(&|s| s["files"][0]["size"] = json!(s["files"][0]["size"].as_i64().unwrap() + 1)),
                &meta,
            ),
            "do not match its row",
        ),
        (
            "rows that take another portal's folder",
            consistent(
                &with_snapshot(&|s| {
                    let rooms_root = s["folders"][0]["id"].clone();
                    for f in s["folders"].as_array_mut().unwrap() {
                        if f["id"] == rooms_root {
                            f["id"] = json!(their_folder);
                        }
                        if f["parent_id"] == rooms_root {
                            f["parent_id"] = json!(their_folder);
                        }
                    }
                }),
                &meta,
            ),
            "belongs to another portal",
        ),
        (
            "an unexpected entry",
            consistent(
                &[entries.clone(), vec![("evil.sh".into(), b"rm -rf /".to_vec())]].concat(),
                &meta,
            ),
            "unexpected entry `evil.sh`",
        ),
        (
            "a whole-server archive",
            consistent(
                &entries,
                &json!({"kind": "server", "portals": [{"id": 1, "alias": "localhost"}]}),
            ),
            "it is a whole-server backup",
        ),
        (
            "no kind in the metadata",
            consistent(&entries, &json!({})),
            "not a backspace portal or server backup",
        ),
    ];

    println!("set up in {:.1?}", setup.elapsed());
    let before = digest(&s, &owner, &local_root, &["files/uploads"]).await;
    // What a refused restore leaves, by design: its job (and the uploaded file, left out above).
    let volatile = ["/api/2.0/backup/getrestoreprogress", "db backup_jobs"];
    let unchanged = |mut d: BTreeMap<String, Value>| {
        for k in volatile {
            d.remove(k);
        }
        d
    };
    let before = unchanged(before);
    let mut failures = Vec::new();
    let started = Instant::now();
    for (what, archive, needle) in hostile {
        let took = Instant::now();
        let (status, v) = restore_uploaded(&s, &owner, &archive).await;
        let refusal = if status == 200 {
            let done = wait_restore(&s, &owner).await;
            if done["taskId"] != v["response"]["taskId"] {
                failures.push(format!("{what}: the progress is of another job: {done}"));
            }
            done["error"].as_str().unwrap_or("").to_owned()
        } else if (400..500).contains(&status) && v["error"]["message"].is_string() {
            v["error"]["message"].as_str().unwrap().to_owned()
        } else {
            format!("(a {status}: {v})")
        };
        let refused = !refusal.is_empty() && refusal.contains(needle);
        // Refused by the first pass (the archive), or by the swap's transaction (the rows).
        let invalid = refusal.starts_with("The backup file is invalid") || needle == "belongs to another portal";
        if !refused || !invalid {
            failures.push(format!("{what}: refused with {refusal:?}, which should say {needle:?}"));
        }
        let after = unchanged(digest(&s, &owner, &local_root, &["files/uploads"]).await);
        for d in differences(&before, &after) {
            failures.push(format!("{what} changed the portal: {d}"));
        }
        let (status, v) = s.get("/api/2.0/people/@self", &owner).await;
        if status != 200 {
            failures.push(format!("{what} left the portal locked: {status} {v}"));
        }
        println!("{what}: {:.1?}, {} bytes: {refusal}", took.elapsed(), archive.len());
    }
    let elapsed = started.elapsed();

    // The control: the real archive, rebuilt entry by entry the same way, restores.
    let (status, v) = restore_uploaded(&s, &owner, &pack(&entries)).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_restore(&s, &owner).await;
    assert_eq!(done["error"], "", "the rebuilt real archive was refused: {done}");
    assert_eq!(
        tree(&s, &owner, "rooms").await,
        at_backup,
        "the control restore did not bring the backup back"
    );
    // Archives of earlier versions have `portal.json` first: they restore too.
    let mut earlier = entries.clone();
    let snapshot_entry = earlier.remove(earlier.len() - 2);
    earlier.insert(0, snapshot_entry);
    let mut manifest: Value = serde_json::from_slice(&earlier.last().unwrap().1).unwrap();
    let lines = manifest["entries"].as_array_mut().unwrap();
    let line = lines.remove(lines.len() - 1);
    assert_eq!(line["path"], "portal.json", "{manifest}");
    lines.insert(0, line);
    earlier.last_mut().unwrap().1 = serde_json::to_vec(&manifest).unwrap();
    s.upload(&owner, room, "after the control.txt", b"x".to_vec()).await;
    let (status, v) = restore_uploaded(&s, &owner, &pack(&earlier)).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_restore(&s, &owner).await;
    assert_eq!(
        done["error"], "",
        "an archive with portal.json first was refused: {done}"
    );
    assert_eq!(tree(&s, &owner, "rooms").await, at_backup);
    println!("hostile archives refused in {elapsed:.1?}");
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
