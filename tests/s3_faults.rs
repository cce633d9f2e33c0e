//! Faults of a real S3 server (s3s-fs, started and stopped by the test): a backup into a
//! repository in an S3 consumer's bucket, with the server killed in the middle of the upload.
//! The job fails and says why, no record or snapshot appears; with the server back, the next
//! backup succeeds, verifies and restores byte for byte; and what the failed upload left in
//! the bucket (its packs, its lock) goes with the collection the failure started. Skipped when s3s-fs is not installed, unless
//! `BACKSPACE_REQUIRE_S3` is set (CI).

mod common;

use common::external::S3Fs;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "faults in storage";
const REPO: &str = "backup/backspace-repository/";

async fn save_keys(s: &TestServer, auth: &Auth, s3: &S3Fs) {
    let (status, v) = s
        .post(
            "/api/2.0/settings/authservice",
            auth,
            json!({"name": "s3", "props": [
                {"name": "acesskey", "value": s3.access},
                {"name": "secretaccesskey", "value": s3.secret},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

async fn start_backup(s: &TestServer, auth: &Auth, s3: &S3Fs) -> String {
    let body = json!({"storageType": 5, "storageParams": s3.params()});
    let (status, v) = s.post("/api/2.0/backup/startbackup", auth, body).await;
    assert_eq!(status, 200, "{v}");
    v["response"]["taskId"].as_str().unwrap().to_owned()
}

async fn history(s: &TestServer, auth: &Auth) -> Vec<Value> {
    let (status, v) = s.get("/api/2.0/backup/getbackuphistory", auth).await;
    assert_eq!(status, 200, "{v}");
    v["response"].as_array().unwrap().clone()
}

/// The repository's objects in the bucket under `sub` (`packs/`, `snapshots/`, …).
fn repo_objects(s3: &S3Fs, sub: &str) -> Vec<String> {
    let prefix = format!("{REPO}{sub}");
    s3.objects().into_iter().filter(|o| o.starts_with(&prefix)).collect()
}

/// The room's files: title → (id, bytes).
async fn room_files(s: &TestServer, auth: &Auth, room: i64) -> std::collections::BTreeMap<String, (i64, Vec<u8>)> {
    let (status, listing) = s.get(&format!("/api/2.0/files/{room}"), auth).await;
    assert_eq!(status, 200, "{listing}");
    let mut out = std::collections::BTreeMap::new();
    for f in listing["response"]["files"].as_array().unwrap() {
        let id = f["id"].as_i64().unwrap();
        let (status, bytes) = s.download(auth, id).await;
        assert_eq!(status, 200);
        out.insert(f["title"].as_str().unwrap().to_owned(), (id, bytes));
    }
    out
}

#[tokio::test]
async fn an_s3_server_killed_mid_repository_upload_fails_the_backup_and_the_next_one_succeeds() {
    let Some(mut s3) = S3Fs::spawn() else { return };
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE)]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    save_keys(&s, &owner, &s3).await;
    let room = s.room(&owner, "Big").await;
    // Incompressible: about a dozen 16 MiB packs, uploaded one after another.
    for i in 0..12 {
        let (status, v) = s
            .upload(&owner, room, &format!("f{i}.bin"), bytes(16 << 20, 300 + i))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let before = room_files(&s, &owner, room).await;

    start_backup(&s, &owner, &s3).await;
    // Killed once the first pack is in the bucket, while the backup still runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while repo_objects(&s3, "packs/").is_empty() {
        let (_, v) = s.get("/api/2.0/backup/getbackupprogress", &owner).await;
        assert_ne!(
            v["response"]["isCompleted"], true,
            "the backup ended before a pack was stored: {v}"
        );
        assert!(Instant::now() < deadline, "no pack reached the bucket: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        repo_objects(&s3, "snapshots/").is_empty(),
        "the backup finished before the server was stopped"
    );
    s3.stop();
    let done = wait_backup(&s, &owner).await;
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("s3 bucket `backups`"), "{done}");
    assert!(history(&s, &owner).await.is_empty(), "a failed backup left a record");

    s3.start();
    assert!(
        repo_objects(&s3, "snapshots/").is_empty(),
        "a failed backup left a snapshot"
    );
    // It could not clean up while the server was down: its packs and its lock are still there.
    let stranded = repo_objects(&s3, "packs/");
    assert!(!stranded.is_empty() && !repo_objects(&s3, "locks/").is_empty());
    let id = start_backup(&s, &owner, &s3).await;
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "the backup after the restart failed: {done}");
    let records = history(&s, &owner).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(repo_objects(&s3, "snapshots/").len(), 1);
    let (status, v) = s.get(&format!("/api/2.0/backup/verifybackup/{id}"), &owner).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["ok"], true, "{v}");
    // The collection a failed backup starts, retried until the server answers, removes what
    // it stranded.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let packs = repo_objects(&s3, "packs/");
        let locks = repo_objects(&s3, "locks/");
        if locks.is_empty() && !stranded.iter().any(|p| packs.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed backup's packs or lock stayed: {locks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Byte for byte: the files go, the restore brings them back.
    for (id, _) in before.values() {
        let (status, v) = s
            .call(
                reqwest::Method::DELETE,
                &format!("/api/2.0/files/file/{id}"),
                &owner,
                Some(json!({"immediately": true})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    assert!(room_files(&s, &owner, room).await.is_empty());
    s.post("/api/2.0/backup/startrestore", &owner, json!({"backupId": id}))
        .await;
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    let after = room_files(&s, &owner, room).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (title, (_, bytes)) in &before {
        assert!(after[title].1 == *bytes, "{title}: the restored bytes differ");
    }

    // After the last backup is deleted, the repository is its config alone.
    let (status, v) = delete_backup(&s, &owner, &id).await;
    assert_eq!(status, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<String> = s3.objects().into_iter().filter(|o| o.starts_with(REPO)).collect();
        if left == [format!("{REPO}config")] {
            break;
        }
        assert!(!left.is_empty(), "the repository's config went");
        assert!(Instant::now() < deadline, "left in the bucket: {left:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
