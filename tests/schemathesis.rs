//! `schemathesis` (PyPI) against the real server's `/openapi.json`, with an owner's API key:
//! no answer may be a 5xx, and every answer must match the document (its status, its content
//! type and its body's schema).
//!
//! The server is seeded first (a room with a folder and a file, a file in "My documents", a
//! second person, a spare API key, a finished backup), and the seeded ids are offered to the
//! generator through a schemathesis dictionary, so that the operations on one resource reach
//! real resources as well as fuzzed ids (the test checks that each kind of id was answered 200
//! at least once). The operations that delete run in later passes, so the earlier ones still
//! find what they would remove. Generation is deterministic (with a fixed seed) and bounded per
//! operation, on one worker, so two runs send the same requests; the run takes about a minute.
//!
//! The CLI is looked up beside `BACKSPACE_TEST_PYTHON` (`scripts/test` installs it into the
//! test virtualenv). Without it the test is skipped, unless `BACKSPACE_REQUIRE_SCHEMATHESIS=1`
//! makes that an error.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The operations never sent, each because fuzzing it would destroy the test itself.
const EXCLUDED: &[(&str, &str)] = &[
    (
        "delete_api_2_0_portal_deleteportalimmediately",
        "deletes the portal: every later request would meet a portal that is gone",
    ),
    (
        "post_api_2_0_backup_startrestore",
        "a restore locks the portal (every other request answers 4xx until it ends) and replaces its data",
    ),
    (
        "post_api_2_0_portal_startrestore",
        "the same restore under the web UI's path",
    ),
    (
        "delete_api_2_0_keys_keyid",
        "may revoke the API key the run authenticates with: its id is in the answers of GET /keys and \
         /keys/@self, and the stateful phase passes ids from answers on to later calls",
    ),
];

/// Cases per operation and phase: enough to reach every status of every operation, little
/// enough for the run to stay near a minute on the debug build.
const MAX_EXAMPLES: &str = "15";

/// How long one schemathesis pass may take before the test gives up on it.
const PASS_DEADLINE: Duration = Duration::from_secs(300);

/// The `schemathesis` CLI of the test virtualenv, or `None` when the test is to be skipped.
fn schemathesis() -> Option<PathBuf> {
    let required = std::env::var("BACKSPACE_REQUIRE_SCHEMATHESIS").is_ok_and(|v| !v.is_empty() && v != "0");
    let skip = |why: String| {
        assert!(!required, "BACKSPACE_REQUIRE_SCHEMATHESIS is set but {why}");
        eprintln!("skipped: {why} (scripts/test installs schemathesis into target/test-venv)");
        None
    };
    let Some(python) = std::env::var_os("BACKSPACE_TEST_PYTHON") else {
        return skip("BACKSPACE_TEST_PYTHON is not set, so there is no virtualenv to find schemathesis in".into());
    };
    // The virtualenv's interpreter may be a symlink out of it: look beside the path as given.
    let bin = Path::new(&python).with_file_name("schemathesis");
    if !bin.is_file() {
        return skip(format!("{} does not exist", bin.display()));
    }
    Some(bin)
}

/// The seeded ids, by path parameter name.
struct Seeded {
    backups: Vec<String>,
    folders: Vec<i64>,
    files: Vec<i64>,
    users: Vec<String>,
    keys: Vec<String>,
}

async fn seed(s: &TestServer, owner: &Auth) -> Seeded {
    let room = s.room(owner, "Schemathesis Room").await;
    let (status, v) = s
        .post(
            &format!("/api/2.0/files/folder/{room}"),
            owner,
            json!({"title": "Inner folder"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let folder = v["response"]["id"].as_i64().unwrap();
    let mut files = Vec::new();
    for (at, name) in [(room, "in-room.txt"), (folder, "in-folder.bin")] {
        let (status, v) = s.upload(owner, at, name, bytes(4096, at as u64)).await;
        assert_eq!(status, 200, "{v}");
        files.push(v["response"][0]["id"].as_i64().unwrap());
    }
    let (status, v) = s.get("/api/2.0/files/@my", owner).await;
    assert_eq!(status, 200, "{v}");
    let my = v["response"]["current"]["id"].as_i64().unwrap();
    let (status, v) = s.upload(owner, my, "mine.txt", b"my own file".to_vec()).await;
    assert_eq!(status, 200, "{v}");
    files.push(v["response"][0]["id"].as_i64().unwrap());

    let (status, me) = s.get("/api/2.0/people/@self", owner).await;
    assert_eq!(status, 200, "{me}");
    s.person(owner, "User").await;
    let (status, people) = s.get("/api/2.0/people", owner).await;
    assert_eq!(status, 200, "{people}");
    let users: Vec<String> = people["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(users.len() >= 2 && users.contains(&me["response"]["id"].as_str().unwrap().to_owned()));

    let (spare, _) = s.create_key(owner, json!({"name": "spare"})).await;

    let (status, v) = s
        .post(
            "/api/2.0/backup/startbackup",
            owner,
            json!({"storageType": "DataStore"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(s, owner).await;
    assert_eq!(done["error"], "", "{done}");
    let backup = v["response"]["taskId"].as_str().unwrap().to_owned();
    let (status, history) = s.get("/api/2.0/backup/getbackuphistory", owner).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["response"][0]["id"], backup.as_str(), "{history}");

    Seeded {
        backups: vec![backup],
        folders: vec![room, folder, my],
        files,
        users,
        keys: vec![spare],
    }
}

/// `schemathesis.toml`: one dictionary per kind of id, offered for half the generated values
/// of each path parameter of that kind (the other half stay fuzzed).
fn config(seeded: &Seeded) -> String {
    let list = |values: Vec<String>| values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
    let ints = |ids: &[i64]| list(ids.iter().map(i64::to_string).collect());
    let mut out = String::new();
    for (name, values) in [
        ("backups", list(seeded.backups.clone())),
        ("folders", ints(&seeded.folders)),
        ("files", ints(&seeded.files)),
        ("users", list(seeded.users.clone())),
        ("keys", list(seeded.keys.clone())),
    ] {
        out.push_str(&format!("[dictionaries.{name}]\nvalues = [{values}]\n\n"));
    }
    out.push_str("[parameters]\n");
    for (param, dictionary) in [
        ("backupid", "backups"),
        ("folderid", "folders"),
        ("roomid", "folders"),
        ("fileid", "files"),
        ("userid", "users"),
        ("keyid", "keys"),
    ] {
        out.push_str(&format!(
            "\"path.{param}\" = {{ dictionary = \"{dictionary}\", probability = 0.5 }}\n"
        ));
    }
    out
}

/// What one pass printed, and whether it passed.
struct Pass {
    ok: bool,
    report: String,
    /// Every request sent, from the HAR report: (method, path and query, status).
    requests: Vec<(String, String, u16)>,
}

impl Pass {
    /// `Tested: N` of the summary.
    fn tested(&self) -> usize {
        self.report
            .lines()
            .find_map(|l| l.trim().strip_prefix("Tested: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `Tested:` line in the report:\n{}", self.report))
    }

    /// Whether some `method` request to exactly `path` was answered `status`.
    fn answered(&self, method: &str, path: &str, status: u16) -> bool {
        self.requests
            .iter()
            .any(|(m, p, s)| m == method && p == path && *s == status)
    }
}

/// (method, path and query, status) of each entry of a HAR file.
fn har_requests(har: &Path, base: &str) -> Vec<(String, String, u16)> {
    let text = std::fs::read_to_string(har).unwrap_or_else(|e| panic!("reading {}: {e}", har.display()));
    let har: Value = serde_json::from_str(&text).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let url = e["request"]["url"].as_str().unwrap();
            (
                e["request"]["method"].as_str().unwrap().to_owned(),
                url.strip_prefix(base).unwrap_or(url).to_owned(),
                e["response"]["status"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

/// Runs one schemathesis pass with `filters`, in `dir`, and waits for it (bounded).
fn run(bin: &Path, dir: &Path, s: &TestServer, key: &str, name: &str, filters: &[&str]) -> Pass {
    let log = dir.join(format!("{name}.txt"));
    let har = dir.join(format!("{name}.har"));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("--no-color")
        .arg("run")
        .arg(s.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        // Deterministic generation (which also keeps no example database); the explicit seed
        // still drives the draws that are random.
        .args(["--seed", "20240607", "--generation-deterministic"])
        .args(["--max-examples", MAX_EXAMPLES, "--workers", "1"])
        .args(["--request-timeout", "60", "--report", "har", "--report-har-path"])
        .arg(&har)
        .args(filters)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (id, _) in EXCLUDED {
        cmd.args(["--exclude-operation-id", id]);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let deadline = Instant::now() + PASS_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis pass {name} ran over {PASS_DEADLINE:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Pass {
        ok: status.success(),
        report: std::fs::read_to_string(&log).unwrap(),
        requests: har_requests(&har, &s.base),
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let Some(bin) = schemathesis() else { return };
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .expect("schemathesis --version");
    eprintln!("{}", String::from_utf8_lossy(&version.stdout).trim());

    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let (_, key) = s.create_key(&owner, json!({"name": "schemathesis"})).await;
    let seeded = seed(&s, &owner).await;

    // Each exclusion names an operation the document has: a stale one would hide nothing.
    let (status, doc) = s.get("/openapi.json", &Auth::none()).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for (id, why) in EXCLUDED {
        assert!(
            ids.contains(id),
            "excluded operation {id} ({why}) is not in the document"
        );
    }
    let deletes = ids.iter().filter(|id| id.starts_with("delete_")).count();
    let excluded_deletes = EXCLUDED.iter().filter(|(id, _)| id.starts_with("delete_")).count();

    let dir = TempDir::new("schemathesis");
    std::fs::write(dir.join("schemathesis.toml"), config(&seeded)).unwrap();
    let started = Instant::now();
    // Three passes, so that each meets the seeded resources before anything removes them: the
    // operations that do not delete, then those that delete one resource, then the two that
    // delete the whole backup history.
    let history = [
        "delete_api_2_0_backup_deletebackuphistory",
        "delete_api_2_0_portal_deletebackuphistory",
    ];
    let mut one_by_one = vec!["--include-method", "DELETE"];
    let mut whole_history = Vec::new();
    for id in history {
        assert!(ids.contains(&id), "{id} is not in the document");
        one_by_one.extend(["--exclude-operation-id", id]);
        whole_history.extend(["--include-operation-id", id]);
    }
    let passes = tokio::task::spawn_blocking({
        let (bin, dir, key) = (bin.clone(), dir.to_path_buf(), key.clone());
        move || {
            [
                ("others", vec!["--exclude-method", "DELETE"]),
                ("deletes", one_by_one),
                ("history", whole_history),
            ]
            .map(|(name, filters)| (name, run(&bin, &dir, &s, &key, name, &filters)))
        }
    })
    .await
    .unwrap();
    eprintln!("schemathesis took {:.0?}", started.elapsed());
    for (name, pass) in &passes {
        eprintln!("==== schemathesis, {name} ====\n{}", pass.report);
    }
    // schemathesis leaves out the operation that serves the document it tests (`/openapi.json`).
    let expected = [
        ids.len() - 1 - deletes - (EXCLUDED.len() - excluded_deletes),
        deletes - excluded_deletes - history.len(),
        history.len(),
    ];
    for ((name, pass), expected) in passes.iter().zip(expected) {
        assert!(pass.ok, "schemathesis found failures ({name}); its report is above");
        assert_eq!(pass.tested(), expected, "operations tested in pass {name}");
    }

    // The seeded ids reached real resources: a 200 on each kind, reading first, then deleting.
    let [(_, reads), (_, deletes), _] = &passes;
    let strings = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>();
    let (folders, files) = (strings(&seeded.folders), strings(&seeded.files));
    for (pass, method, prefixes, ids) in [
        (reads, "GET", &["/api/2.0/files/file/"][..], &files),
        (
            reads,
            "GET",
            &["/api/2.0/files/rooms/", "/api/2.0/files/folder/"],
            &folders,
        ),
        (reads, "GET", &["/api/2.0/people/"], &seeded.users),
        (
            reads,
            "GET",
            &["/api/2.0/backup/verifybackup/", "/api/2.0/portal/verifybackup/"],
            &seeded.backups,
        ),
        (deletes, "DELETE", &["/api/2.0/files/file/"], &files),
        (
            deletes,
            "DELETE",
            &["/api/2.0/backup/deletebackup/", "/api/2.0/portal/deletebackup/"],
            &seeded.backups,
        ),
    ] {
        let hit = prefixes.iter().any(|prefix| {
            ids.iter()
                .any(|id| pass.answered(method, &format!("{prefix}{id}"), 200))
        });
        let sent: Vec<_> = pass
            .requests
            .iter()
            .filter(|(m, p, _)| m == method && prefixes.iter().any(|prefix| p.starts_with(prefix)))
            .collect();
        assert!(
            hit,
            "no {method} {prefixes:?}{{{ids:?}}} was answered 200; sent: {sent:?}"
        );
    }
}

/// The routes DocSpace answers outside its envelope are documented as such (schemathesis found
/// the document promising the envelope for them).
#[tokio::test]
async fn the_document_describes_the_unenveloped_answers() {
    let s = TestServer::spawn().await;
    let (status, doc) = s.get("/openapi.json", &Auth::none()).await;
    assert_eq!(status, 200);
    let ok = |path: &str, method: &str| doc["paths"][path][method]["responses"]["200"]["content"].clone();
    for path in ["/filehandler.ashx", "/api/2.0/backup/download/{backupid}"] {
        let content = ok(path, "get");
        assert_eq!(
            content["application/octet-stream"]["schema"]["format"], "binary",
            "{path}: {content}"
        );
        assert!(content.get("application/json").is_none(), "{path}: {content}");
    }
    let upload = &ok("/backupfileupload.ashx", "post")["application/json"]["schema"];
    assert_eq!(
        upload["required"],
        json!(["Success", "ChunkSize", "EndUpload"]),
        "{upload}"
    );
    let register = &doc["paths"]["/apisystem/portal/register"]["post"]["responses"];
    assert_eq!(
        register["200"]["content"]["application/json"]["schema"]["required"],
        json!(["reference", "tenant"]),
        "{register}"
    );
    // Registration's own error body, which the document now allows beside DocSpace's.
    let resp = s.http.post(s.url("/apisystem/portal/register")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
    let branches = register["default"]["content"]["application/json"]["schema"]["anyOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{register}"));
    assert!(
        branches.iter().any(|b| b["required"] == json!(["error", "message"])),
        "{register}"
    );
}

/// A date whose last five bytes start inside a character (found by schemathesis in the `from`
/// and `to` of the backup counts) is a 400 naming the parameter, not a dropped connection.
#[tokio::test]
async fn a_date_ending_in_multibyte_characters_is_a_clear_400() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let bad = "q\u{f0fb9}\u{5bfb3}";
    for (path, param) in [
        ("/api/2.0/backup/getbackupscount", "from"),
        ("/api/2.0/backup/getbackupscountbypaid", "to"),
        ("/api/2.0/portal/getbackupscount", "to"),
    ] {
        let resp = s
            .http
            .get(s.url(path))
            .query(&[(param, bad)])
            .headers(owner.headers())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}?{param}=…: {e}"));
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_error(status, &body, 400, "is not a date");
        assert!(body.to_string().contains(param), "{path}: {body}");
    }
}
