//! The command-line client: the real `backspace` binary against a real server — backups
//! (start, list, download, delete), restore, the schedule, API keys, verification, `--json`
//! output and exit codes (0 success, 1 failed, 2 usage error).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as one JSON document (and nothing else).
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "exit code {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "wanted exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains("error:"),
            "no `error:` on stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `backspace ARGS` with `env` (and none of the caller's BACKSPACE_* settings) in `cwd`.
async fn run(cwd: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_backspace"));
    cmd.args(args).env("BACKSPACE_LOG", "warn");
    for var in [
        "BACKSPACE_URL",
        "BACKSPACE_TOKEN",
        "BACKSPACE_CONFIG",
        "BACKSPACE_DATA_DIR",
        "BACKSPACE_DATABASE_URL",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd.output().await.expect("run backspace");
    Run {
        code: out.status.code().expect("backspace was killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The client of one server, with its URL and token in BACKSPACE_URL / BACKSPACE_TOKEN.
struct Client {
    url: String,
    token: String,
    cwd: Option<PathBuf>,
}

impl Client {
    fn new(s: &TestServer, token: &str) -> Self {
        Self {
            url: s.base.clone(),
            token: token.to_owned(),
            cwd: None,
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        run(
            self.cwd.as_deref(),
            &[("BACKSPACE_URL", &self.url), ("BACKSPACE_TOKEN", &self.token)],
            args,
        )
        .await
    }
}

/// A server with a room holding a file, and the owner's API key.
async fn setup() -> (TestServer, Auth, String) {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Documents").await;
    assert_eq!(s.upload(&owner, room, "report.bin", bytes(300_000, 7)).await.0, 200);
    let (_, key) = s.create_key(&owner, json!({"name": "cli"})).await;
    (s, owner, key)
}

#[tokio::test]
async fn backups_start_list_download_and_delete() {
    let (s, _, key) = setup().await;
    let dir = TempDir::new("backspace-cli");
    let mut c = Client::new(&s, &key);
    c.cwd = Some(dir.to_path_buf());

    // Start and wait: the human answer names the archive.
    let started = c.run(&["backup", "start", "--wait"]).await.ok();
    assert!(
        started.stdout.starts_with("backup ") && started.stdout.contains(" done: "),
        "{}",
        started.stdout
    );

    // Start and wait with --json: the final progress, one document.
    let done = c.run(&["backup", "start", "--wait", "--json"]).await.ok().json();
    assert_eq!(done["isCompleted"], true, "{done}");
    assert_eq!(done["error"], "", "{done}");
    let newest = done["taskId"].as_str().unwrap().to_owned();

    // Without --wait: the task id alone on stdout; the API shows the job.
    let third = c.run(&["backup", "start"]).await.ok();
    let third_id = third.stdout.trim().to_owned();
    assert_eq!(third_id.len(), 36, "{}", third.stdout);
    assert!(third.stderr.contains("backup status"), "{}", third.stderr);
    let progress = wait_backup(&s, &Auth::bearer(&key)).await;
    assert_eq!(progress["taskId"], third_id.as_str());
    let status = c.run(&["backup", "status", "--json"]).await.ok().json();
    assert_eq!(status["taskId"], third_id.as_str());
    assert_eq!(status["isCompleted"], true);

    // List: JSON is the API's history; the table is newest first.
    let list = c.run(&["backup", "list", "--json"]).await.ok().json();
    let records = list.as_array().unwrap();
    assert_eq!(records.len(), 3, "{list}");
    for r in records {
        for field in [
            "id",
            "fileName",
            "storageType",
            "createdOn",
            "expiresOn",
            "size",
            "link",
        ] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
        assert_eq!(r["storageType"], 4);
    }
    let table = c.run(&["backup", "list"]).await.ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for column in ["ID", "NAME", "STORAGE", "SIZE", "CREATED", "EXPIRES"] {
        assert!(lines[0].contains(column), "{table}");
    }
    let mut by_time: Vec<&Value> = records.iter().collect();
    by_time.sort_by(|a, b| b["createdOn"].as_str().cmp(&a["createdOn"].as_str()));
    for (line, r) in lines[1..].iter().zip(&by_time) {
        let id = r["id"].as_str().unwrap();
        assert!(line.starts_with(id), "row {line:?} is not {id}:\n{table}");
        assert!(
            line.contains(r["fileName"].as_str().unwrap()) && line.contains("temporary"),
            "{line}"
        );
    }
    assert!(table.contains(&newest));

    // Download to a named file: the bytes the API's link serves.
    let record = records.iter().find(|r| r["id"] == newest.as_str()).unwrap();
    let served = s
        .http
        .get(s.url(record["link"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let served = served.bytes().await.unwrap().to_vec();
    assert!(!served.is_empty());
    let out = dir.join("copy.tar.zst");
    let got = c
        .run(&["backup", "download", &newest, "-o", out.to_str().unwrap(), "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        got,
        json!({"id": newest, "file": out.display().to_string(), "bytes": served.len()})
    );
    assert_eq!(std::fs::read(&out).unwrap(), served);

    // It refuses to overwrite, leaves the file alone and nothing partial behind; --force replaces.
    std::fs::write(&out, b"keep me").unwrap();
    let refused = c
        .run(&["backup", "download", &newest, "-o", out.to_str().unwrap()])
        .await
        .fails(1);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(refused.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert_eq!(count_files(&dir), 1, "a partial file was left behind");
    let human = c
        .run(&["backup", "download", &newest, "-o", out.to_str().unwrap(), "--force"])
        .await
        .ok();
    assert!(
        human.stdout.contains(&format!("{} bytes", served.len())),
        "{}",
        human.stdout
    );
    assert_eq!(std::fs::read(&out).unwrap(), served);

    // Without -o: the record's file name in the current directory, by an id prefix.
    let name = record["fileName"].as_str().unwrap();
    c.run(&["backup", "download", &newest[..8]]).await.ok();
    assert_eq!(std::fs::read(dir.join(name)).unwrap(), served);
    assert_eq!(count_files(&dir), 2);

    // Delete: by id, then by prefix; an unknown id fails with a hint.
    let deleted = c.run(&["backup", "delete", &newest, "--json"]).await.ok().json();
    assert_eq!(deleted, json!({"id": newest, "deleted": true}));
    let human = c.run(&["backup", "delete", &third_id[..10]]).await.ok();
    assert!(human.stdout.contains(&third_id), "{}", human.stdout);
    let list = c.run(&["backup", "list", "--json"]).await.ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let missing = c.run(&["backup", "delete", &newest[..12]]).await.fails(1);
    assert!(missing.stderr.contains("backup list"), "{}", missing.stderr);
    let gone = c.run(&["backup", "download", &newest]).await.fails(1);
    assert!(gone.stderr.contains("no backup"), "{}", gone.stderr);
}

#[tokio::test]
async fn backup_to_a_local_directory_and_bad_storage() {
    let root = TempDir::new("backspace-cli-local");
    let roots = root.to_str().unwrap().to_owned();
    let s = TestServer::spawn_with(&[("BACKSPACE_LOCAL_BACKUP_ROOTS", &roots)]).await;
    let token = s.owner_token().await;
    let c = Client::new(&s, &token);
    let target = root.join("portal");
    std::fs::create_dir_all(&target).unwrap();
    let spec = format!("local:{}", target.display());
    c.run(&["backup", "start", "--storage", &spec, "--wait"]).await.ok();
    let list = c.run(&["backup", "list", "--json"]).await.ok().json();
    assert_eq!(list[0]["storageType"], 3, "{list}");
    assert!(count_files(&target) > 0, "nothing was written to {}", target.display());
    assert!(c.run(&["backup", "list"]).await.ok().stdout.contains(" local "));

    // Storage syntax is checked before anything is sent.
    for bad in [
        vec!["--storage", "local:relative/dir"],
        vec!["--storage", "folder:abc"],
        vec!["--storage", "nowhere"],
        vec!["--storage", "consumer:"],
        vec!["--param", "bucket=b"],
        vec!["--storage", "consumer:s3", "--param", "no-equals-sign"],
    ] {
        let mut args = vec!["backup", "start"];
        args.extend(bad.iter().copied());
        let r = c.run(&args).await.fails(2);
        assert!(
            r.stderr.contains("hint:") || r.stderr.contains("--param"),
            "{}",
            r.stderr
        );
    }
    // A server-side refusal (a directory outside the allowed roots) is exit code 1.
    let refused = c
        .run(&["backup", "start", "--storage", "local:/definitely/not/allowed"])
        .await
        .fails(1);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
}

#[tokio::test]
async fn restore_waits_until_the_portal_is_back() {
    let (s, owner, key) = setup().await;
    let c = Client::new(&s, &key);
    let done = c.run(&["backup", "start", "--wait", "--json"]).await.ok().json();
    let id = done["taskId"].as_str().unwrap().to_owned();
    // A room made after the backup is gone after the restore.
    let later = s.room(&owner, "After the backup").await;

    let restored = c.run(&["restore", &id, "--wait", "--json"]).await.ok().json();
    assert_eq!(restored["isCompleted"], true, "{restored}");
    assert_eq!(restored["error"], "", "{restored}");
    assert_eq!(restored["backupProgressEnum"], 1, "{restored}");
    let (status, _) = s
        .get(&format!("/api/2.0/files/rooms/{later}"), &Auth::bearer(&key))
        .await;
    assert_eq!(status, 404, "the room made after the backup survived the restore");

    // Human output, by prefix; the portal answers again afterwards.
    let human = c.run(&["restore", &id[..8], "--wait"]).await.ok();
    assert!(
        human.stdout.contains(&format!("restored backup {id}")),
        "{}",
        human.stdout
    );
    c.run(&["backup", "list"]).await.ok();
    c.run(&["restore", "00000000-0000-0000-0000-000000000000"])
        .await
        .fails(1);
}

/// `restore --file`: an archive on the client's machine (here, one downloaded before) is uploaded
/// in chunks and restored; a file that is not an archive is refused and changes nothing.
#[tokio::test]
async fn restore_uploads_an_archive_file() {
    let (s, owner, key) = setup().await;
    let c = Client::new(&s, &key);
    let dir = TempDir::new("backspace-cli-restore-file");
    // Larger than the server's upload chunk (10 MiB): the archive goes up in two.
    let big = s.room(&owner, "Big").await;
    assert_eq!(s.upload(&owner, big, "big.bin", bytes(12 << 20, 4)).await.0, 200);
    let done = c.run(&["backup", "start", "--wait", "--json"]).await.ok().json();
    let id = done["taskId"].as_str().unwrap().to_owned();
    let archive = dir.join("portal.tar.zst");
    c.run(&["backup", "download", &id, "-o", archive.to_str().unwrap()])
        .await
        .ok();
    // Gone from the server: only the file on this machine is left.
    c.run(&["backup", "delete", &id]).await.ok();
    let later = s.room(&owner, "After the backup").await;

    let restored = c
        .run(&["restore", "--file", archive.to_str().unwrap(), "--wait", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        (restored["isCompleted"].clone(), restored["error"].clone()),
        (json!(true), json!("")),
        "{restored}"
    );
    let (status, _) = s
        .get(&format!("/api/2.0/files/rooms/{later}"), &Auth::bearer(&key))
        .await;
    assert_eq!(status, 404, "the room made after the backup survived the restore");
    let (_, listing) = s.get(&format!("/api/2.0/files/{big}"), &owner).await;
    let file = listing["response"]["files"][0]["id"].as_i64().unwrap();
    assert!(
        s.download(&owner, file).await.1 == bytes(12 << 20, 4),
        "the large file came back different"
    );

    // Not an archive by name: a usage error, nothing sent. By content: the server refuses it.
    let text = dir.join("notes.txt");
    std::fs::write(&text, b"not a backup").unwrap();
    let refused = c.run(&["restore", "--file", text.to_str().unwrap()]).await.fails(2);
    assert!(refused.stderr.contains("not a backup archive"), "{}", refused.stderr);
    let fake = dir.join("fake.tar.zst");
    std::fs::write(&fake, vec![7u8; 100_000]).unwrap();
    let bad = c
        .run(&["restore", "--file", fake.to_str().unwrap(), "--wait"])
        .await
        .fails(1);
    assert!(bad.stderr.contains("invalid"), "{}", bad.stderr);
    let (status, _) = s.get("/api/2.0/files/rooms", &Auth::bearer(&key)).await;
    assert_eq!(status, 200, "the portal is locked after a refused archive");
    c.run(&["restore", "--file", fake.to_str().unwrap(), &id])
        .await
        .fails(2);
}

#[tokio::test]
async fn schedule_set_get_and_delete() {
    let s = TestServer::spawn().await;
    let token = s.owner_token().await;
    let c = Client::new(&s, &token);

    let none = c.run(&["schedule", "get", "--json"]).await.ok().json();
    assert_eq!(none, Value::Null);
    assert!(c
        .run(&["schedule", "get"])
        .await
        .ok()
        .stdout
        .contains("no backup schedule"));

    let set = c
        .run(&[
            "schedule", "set", "--period", "weekly", "--day", "monday", "--hour", "3", "--keep", "5", "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(set["cronParams"], json!({"period": 1, "hour": 3, "day": 2}), "{set}");
    assert_eq!(set["backupsStored"], 5);
    assert_eq!(set["storageType"], 4);
    assert!(
        set["nextBackupTime"].as_str().is_some_and(|t| t.contains("T03:00:00")),
        "{set}"
    );
    let got = c.run(&["schedule", "get", "--json"]).await.ok().json();
    assert_eq!(got, set);
    let human = c.run(&["schedule", "get"]).await.ok().stdout;
    assert!(human.contains("weekly, Monday at 03:00"), "{human}");
    assert!(
        human.contains("keep:     5 backups") && human.contains("next run:"),
        "{human}"
    );

    // Monthly replaces it; the numbers the API takes are checked before sending.
    let monthly = c
        .run(&[
            "schedule", "set", "--period", "monthly", "--day", "31", "--hour", "23", "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(monthly["cronParams"], json!({"period": 2, "hour": 23, "day": 31}));
    for bad in [
        vec!["--period", "weekly", "--hour", "3"],
        vec!["--period", "weekly", "--day", "someday", "--hour", "3"],
        vec!["--period", "monthly", "--day", "32", "--hour", "3"],
        vec!["--period", "daily", "--day", "1", "--hour", "3"],
        vec!["--period", "daily", "--hour", "24"],
        vec!["--period", "daily", "--hour", "1", "--keep", "0"],
        vec!["--period", "hourly", "--hour", "1"],
        vec!["--period", "daily"],
    ] {
        let mut args = vec!["schedule", "set"];
        args.extend(bad.iter().copied());
        c.run(&args).await.fails(2);
    }
    let still = c.run(&["schedule", "get", "--json"]).await.ok().json();
    assert_eq!(still, monthly);

    let deleted = c.run(&["schedule", "delete", "--json"]).await.ok().json();
    assert_eq!(deleted, json!({"deleted": true}));
    assert_eq!(c.run(&["schedule", "get", "--json"]).await.ok().json(), Value::Null);
}

#[tokio::test]
async fn keys_create_list_and_revoke() {
    let s = TestServer::spawn().await;
    let token = s.owner_token().await;
    let c = Client::new(&s, &token);

    let created = c
        .run(&["keys", "create", "--name", "reader", "--permission", "*:read", "--json"])
        .await
        .ok()
        .json();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-"), "{created}");
    assert_eq!(created["permissions"], json!(["*:read"]));

    // Human: the key alone on stdout.
    let human = c
        .run(&["keys", "create", "--name", "other", "--expires-in-days", "30"])
        .await
        .ok();
    assert_eq!(human.stdout.lines().count(), 1, "{}", human.stdout);
    assert!(human.stdout.starts_with("sk-"));

    let list = c.run(&["keys", "list", "--json"]).await.ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"reader") && names.contains(&"other"), "{list}");
    assert!(!list.to_string().contains(&key), "a listed key shows its plaintext");
    let table = c.run(&["keys", "list"]).await.ok().stdout;
    assert!(table.contains(&id) && table.contains("*:read"), "{table}");

    // The read-only key reads, but may not start a backup: exit 1 and why.
    let reader = Client::new(&s, &key);
    reader.run(&["backup", "list", "--json"]).await.ok();
    let denied = reader.run(&["backup", "start"]).await.fails(1);
    assert!(
        denied.stderr.contains("403") && denied.stderr.contains("permission"),
        "{}",
        denied.stderr
    );

    let revoked = c.run(&["keys", "revoke", &id, "--json"]).await.ok().json();
    assert_eq!(revoked, json!({"id": id, "revoked": true}));
    let after = reader.run(&["backup", "list"]).await.fails(1);
    assert!(after.stderr.contains("--token"), "{}", after.stderr);
    let list = c.run(&["keys", "list", "--json"]).await.ok().json();
    assert!(!list.to_string().contains(&id));
    c.run(&["keys", "revoke", &id]).await.fails(1);
}

#[tokio::test]
async fn verify_through_the_api_and_offline() {
    let (s, _, key) = setup().await;
    let c = Client::new(&s, &key);
    let id = c.run(&["backup", "start", "--wait", "--json"]).await.ok().json()["taskId"]
        .as_str()
        .unwrap()
        .to_owned();

    let report = c.run(&["verify", &id, "--json"]).await.ok().json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["id"], id.as_str());
    assert!(report["checkedChunks"].as_u64().unwrap() > 0);
    let human = c.run(&["verify", &id[..8]]).await.ok();
    assert!(human.stdout.contains("intact"), "{}", human.stdout);
    c.run(&["verify", "00000000-0000-0000-0000-000000000000"])
        .await
        .fails(1);

    // Without a URL, verify still runs beside the server on its data directory and database.
    let offline = run(
        None,
        &[],
        &[
            "verify",
            &id,
            "--data-dir",
            s.data_dir.to_str().unwrap(),
            "--database-url",
            &s.database_url,
        ],
    )
    .await
    .ok();
    assert_eq!(serde_json::from_str::<Value>(&offline.stdout).unwrap()["ok"], true);
}

#[tokio::test]
async fn a_bad_token_fails_with_exit_code_1_and_is_never_echoed() {
    let s = TestServer::spawn().await;
    let secret = "sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for args in [
        vec!["backup", "list"],
        vec!["backup", "list", "--json"],
        vec!["schedule", "get"],
        vec!["keys", "list"],
    ] {
        // In the environment and as a flag.
        let by_env = Client::new(&s, secret).run(&args).await.fails(1);
        let mut with_flag = args.clone();
        with_flag.extend(["--url", s.base.as_str(), "--token", secret]);
        let by_flag = run(None, &[], &with_flag).await.fails(1);
        for r in [by_env, by_flag] {
            assert!(r.stderr.contains("401"), "{}", r.stderr);
            assert!(
                r.stderr.contains("--token") && r.stderr.contains("BACKSPACE_TOKEN"),
                "{}",
                r.stderr
            );
            assert!(
                !r.stderr.contains(secret) && !r.stdout.contains(secret),
                "the token was echoed"
            );
            assert!(!r.stderr.contains(&secret[3..20]), "part of the token was echoed");
            assert!(r.stdout.is_empty(), "{}", r.stdout);
        }
    }
}

#[tokio::test]
async fn usage_errors_exit_2_and_unreachable_servers_exit_1() {
    let tmp = TempDir::new("backspace-cli-usage");
    // No server address: exit 2, and what to pass.
    for args in [
        vec!["backup", "list"],
        vec!["restore", "abc"],
        vec!["schedule", "get"],
        vec!["keys", "list"],
        vec!["keys", "revoke", "abc"],
    ] {
        let r = run(Some(&tmp), &[("BACKSPACE_TOKEN", "sk-x")], &args).await.fails(2);
        assert!(
            r.stderr.contains("--url") && r.stderr.contains("BACKSPACE_URL"),
            "{}",
            r.stderr
        );
    }
    // No credential.
    let r = run(None, &[("BACKSPACE_URL", "http://127.0.0.1:9")], &["backup", "list"])
        .await
        .fails(2);
    assert!(
        r.stderr.contains("--token") && r.stderr.contains("keys create"),
        "{}",
        r.stderr
    );
    // A URL that is not one.
    let env = [("BACKSPACE_TOKEN", "sk-x")];
    run(None, &env, &["backup", "list", "--url", "ftp://host"])
        .await
        .fails(2);
    run(None, &env, &["backup", "list", "--url", "http://"]).await.fails(2);
    // clap's own usage errors.
    for args in [
        vec!["backup"],
        vec!["backup", "frobnicate"],
        vec!["backup", "delete"],
        vec!["backup", "list", "--no-such-flag"],
        vec!["restore"],
    ] {
        let r = run(None, &env, &args).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    // Nothing listens: exit 1, and is the server running?
    let r = run(
        None,
        &[("BACKSPACE_URL", "http://127.0.0.1:9"), ("BACKSPACE_TOKEN", "sk-x")],
        &["backup", "list", "--json"],
    )
    .await
    .fails(1);
    assert!(
        r.stderr.contains("is the server running at http://127.0.0.1:9"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());

    // Without a URL, `keys create` still makes the first key offline, on the data directory.
    let data = tmp.join("data");
    let owner = [
        ("BACKSPACE_OWNER_EMAIL", OWNER_EMAIL),
        ("BACKSPACE_OWNER_PASSWORD", OWNER_PASSWORD),
    ];
    let r = run(
        Some(&tmp),
        &owner,
        &[
            "keys",
            "create",
            "--name",
            "first",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    )
    .await
    .ok();
    assert!(r.stdout.trim().starts_with("sk-"), "{}", r.stdout);
    let r = run(
        Some(&tmp),
        &owner,
        &[
            "keys",
            "create",
            "--name",
            "second",
            "--json",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    )
    .await
    .ok();
    assert!(r.json()["key"].as_str().unwrap().starts_with("sk-"));
}

#[tokio::test]
async fn a_failed_backup_exits_1_with_its_error() {
    let s = TestServer::spawn().await;
    let token = s.owner_token().await;
    let c = Client::new(&s, &token);
    // An S3 consumer where nothing listens: the job starts, then fails.
    let args = [
        "backup",
        "start",
        "--storage",
        "consumer:s3",
        "--param",
        "acesskey=AK",
        "--param",
        "secretaccesskey=SK",
        "--param",
        "bucket=nowhere",
        "--param",
        "region=us-east-1",
        "--param",
        "serviceurl=http://127.0.0.1:9",
        "--param",
        "forcepathstyle=true",
        "--wait",
        "--json",
    ];
    let r = c.run(&args).await.fails(1);
    let progress = r.json();
    assert_eq!(progress["isCompleted"], true, "{progress}");
    assert!(!progress["error"].as_str().unwrap().is_empty(), "{progress}");
    assert!(r.stderr.contains("failed"), "{}", r.stderr);
    let status = c.run(&["backup", "status"]).await.ok();
    assert!(status.stdout.contains("failed"), "{}", status.stdout);
    assert_eq!(c.run(&["backup", "list", "--json"]).await.ok().json(), json!([]));
}
