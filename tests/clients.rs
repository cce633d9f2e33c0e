//! Real clients against the real server: the seed example (Python `requests` and Node's
//! `fetch`) and every `BackupApi` method of the official Python SDK. `scripts/test` makes a
//! virtualenv with `requests` and `docspace-api-sdk` 3.7.0 and names its interpreter in
//! `BACKSPACE_TEST_PYTHON`.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;

fn python() -> String {
    std::env::var("BACKSPACE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The seed document lives in `shared/`, beside the project (or where `BACKSPACE_SHARED_DIR`
/// says).
fn seed() -> String {
    let shared = std::env::var("BACKSPACE_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").to_owned());
    let path = format!("{shared}/seed/000_8a24ae9670ad02d1.txt");
    assert!(
        std::path::Path::new(&path).exists(),
        "the seed document {path} is missing: set BACKSPACE_SHARED_DIR"
    );
    path
}
const RUN_SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/run_seed.py");
const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_backup.py");

/// Starts a DataStore backup and waits for it; returns its id.
async fn finished_backup(s: &TestServer, auth: &Auth) -> String {
    let (status, v) = s
        .post("/api/2.0/backup/startbackup", auth, json!({"storageType": "DataStore"}))
        .await;
    assert_eq!(status, 200, "{v}");
    let id = v["response"]["taskId"].as_str().unwrap().to_owned();
    let done = wait_backup(s, auth).await;
    assert_eq!(done["error"], "", "{done}");
    id
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_seed_example_deletes_a_real_backup_in_python_and_node() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let (_, key) = s.create_key(&owner, json!({"name": "seed"})).await;
    let seed = seed();
    for (lang, expected) in [("python", "Backup deleted: True"), ("node", "Backup deleted: true")] {
        let id = finished_backup(&s, &owner).await;
        let (ok, out) = run(Command::new(python()).args([RUN_SEED, lang, &seed, &s.base, &key, &id]));
        assert!(ok, "{lang} seed failed: {out}");
        assert_eq!(out.trim(), expected, "{lang} printed: {out}");
        let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
        assert!(
            !history.to_string().contains(&id),
            "{lang}: the backup is still listed: {history}"
        );
        // The archive itself is gone from storage.
        assert_eq!(
            count_files(&s.data_dir.join("files/backups")),
            0,
            "{lang}: the archive is still stored"
        );
        // Deleting again is a clear 404, which the seed reports as an error.
        let (ok, out) = run(Command::new(python()).args([RUN_SEED, lang, &seed, &s.base, &key, &id]));
        assert!(out.contains("404"), "{lang} second delete: ok={ok} {out}");
    }
}

#[tokio::test]
async fn the_official_python_sdk_drives_every_backup_method() {
    let s = TestServer::spawn().await;
    let token = s.owner_token().await;
    let (ok, out) = run(Command::new(python()).args([SDK, &s.base, &token]));
    assert!(ok, "the SDK script failed:\n{out}");
    assert!(out.contains("checks passed"), "{out}");
}
