//! Backups into an encrypted repository, through the real server: incremental backups, the
//! archive built on the fly, restore, verification (API and command line), garbage collection
//! after deletes, and opening the repository elsewhere with the passphrase alone.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::process::Command;

const PASSPHRASE: &str = "correct horse battery staple";

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                dir_size(&p)
            } else {
                p.metadata().unwrap().len()
            }
        })
        .sum()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .flat_map(|p| if p.is_dir() { files_under(&p) } else { vec![p] })
        .collect()
}

/// The entries of a `.tar.zst` archive: name → bytes.
fn entries(archive: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(zstd::stream::read::Decoder::new(archive).unwrap());
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.insert(name, bytes);
    }
    out
}

#[tokio::test]
async fn datastore_backups_go_into_an_encrypted_repository() {
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE)]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Repo").await;
    let marker = "UNMISTAKABLE-PLAINTEXT-MARKER ".repeat(4000).into_bytes();
    let big = bytes(6 << 20, 41);
    for (name, data) in [("notes.txt", marker.clone()), ("big.bin", big.clone())] {
        assert_eq!(s.upload(&owner, room, name, data).await.0, 200);
    }
    let repo_dir = s.data_dir.join("files/repository");

    let first = backup(&s, &owner, json!({"storageType": 4})).await;
    let config = std::fs::read_to_string(repo_dir.join("config")).unwrap();
    assert!(config.contains("xchacha20poly1305"), "{config}");
    for f in files_under(&repo_dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(29).any(|w| w == b"UNMISTAKABLE-PLAINTEXT-MARKER"),
            "{} holds plaintext",
            f.display()
        );
    }
    let after_first = dir_size(&repo_dir.join("packs"));
    assert!(after_first > 5 << 20, "the packs hold {after_first} bytes");

    // The link downloads a standard archive, built on the fly.
    let archive = fetch(&s, first["link"].as_str().unwrap()).await;
    let got = entries(&archive);
    assert!(
        got.contains_key("portal.json") && got.contains_key("manifest.json"),
        "{:?}",
        got.keys()
    );
    let mut contents: Vec<&Vec<u8>> = got
        .iter()
        .filter(|(k, _)| k.starts_with("files/"))
        .map(|(_, v)| v)
        .collect();
    contents.sort_by_key(|v| v.len());
    assert!(contents == [&marker, &big], "the archive's files differ");

    // Nothing changed: the second backup stores almost nothing.
    let second = backup(&s, &owner, json!({"storageType": 4})).await;
    let grown = dir_size(&repo_dir.join("packs")) - after_first;
    assert!(grown < 64 << 10, "an unchanged backup stored {grown} bytes");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 2, "{history}");

    // Verification reads every chunk back.
    let id1 = first["taskId"].as_str().unwrap().to_owned();
    let (status, v) = s.get(&format!("/api/2.0/backup/verifybackup/{id1}"), &owner).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["response"]["ok"].clone(), v["response"]["damaged"].clone()),
        (json!(true), json!([])),
        "{v}"
    );
    assert!(v["response"]["checkedChunks"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["response"]["id"], id1.as_str());

    // Restore from the repository.
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    for f in listing["response"]["files"].as_array().unwrap() {
        s.call(
            reqwest::Method::DELETE,
            &format!("/api/2.0/files/file/{}", f["id"]),
            &owner,
            Some(json!({"immediately": true})),
        )
        .await;
    }
    s.post("/api/2.0/backup/startrestore", &owner, json!({"backupId": id1}))
        .await;
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    let mut restored = Vec::new();
    for f in listing["response"]["files"].as_array().unwrap() {
        restored.push(s.download(&owner, f["id"].as_i64().unwrap()).await.1);
    }
    restored.sort_by_key(|v| v.len());
    assert!(restored == [marker.clone(), big.clone()], "restored bytes differ");

    // A damaged pack: verification names the damage and the command line exits 1.
    let id2 = second["taskId"].as_str().unwrap().to_owned();
    let pack = files_under(&repo_dir.join("packs"))
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let original = std::fs::read(&pack).unwrap();
    let mut damaged = original.clone();
    damaged[1000] ^= 0xff;
    std::fs::write(&pack, &damaged).unwrap();
    let (_, v) = s.get(&format!("/api/2.0/backup/verifybackup/{id2}"), &owner).await;
    assert_eq!(v["response"]["ok"], false, "{v}");
    assert!(!v["response"]["damaged"].as_array().unwrap().is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_backspace"))
        .env_remove("BACKSPACE_URL")
        .args(["verify", &id2, "--data-dir"])
        .arg(&s.data_dir)
        .args(["--database-url", &s.database_url])
        .env("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE)
        .env("BACKSPACE_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    std::fs::write(&pack, &original).unwrap();

    // Deleting every backup frees the space within a bounded time, also when the deletes
    // overlap (the second one's collection must not wait for the cleaner).
    let (a, b) = tokio::join!(delete_backup(&s, &owner, &id1), delete_backup(&s, &owner, &id2));
    assert_eq!((a.0, b.0), (200, 200));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dir_size(&repo_dir.join("packs")) > 0 {
        assert!(std::time::Instant::now() < deadline, "the space was not reclaimed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A file whose bytes on disk no longer match its row (damaged after the upload) is found by the
/// backup that reads it: left out with the backup's warning, not stored to fail the restore
/// that needs it. The rest of the backup restores.
#[tokio::test]
async fn a_file_damaged_on_disk_is_left_out_of_a_repository_backup_with_a_warning() {
    damaged_file_left_out(&[("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE)]).await;
}

/// The same for a plain archive: the damaged file's bytes are in the archive already when its
/// digest is known, so the snapshot (written last) leaves its row out. Before, the archive was
/// stored with the row, and every restore of it refused the whole archive.
#[tokio::test]
async fn a_file_damaged_on_disk_is_left_out_of_a_plain_archive_with_a_warning() {
    damaged_file_left_out(&[("BACKSPACE_ARCHIVE_TARGETS", "datastore")]).await;
}

async fn damaged_file_left_out(env: &[(&str, &str)]) {
    let s = TestServer::spawn_with(env).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Rot").await;
    let (good, bad) = (bytes(200_000, 5), bytes(5 << 20, 6));
    for (name, data) in [("good.bin", good.clone()), ("bad.bin", bad.clone())] {
        assert_eq!(s.upload(&owner, room, name, data).await.0, 200);
    }
    // The same length, one byte changed: only a digest tells.
    let stored = files_under(&s.data_dir.join("files/portals"))
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|b| b == bad))
        .expect("the uploaded bytes are on disk");
    let mut damaged = bad.clone();
    damaged[4 << 20] ^= 0x01;
    std::fs::write(&stored, &damaged).unwrap();

    let done = backup(&s, &owner, json!({"storageType": 4})).await;
    let warning = done["warning"].as_str().unwrap_or_else(|| panic!("no warning: {done}"));
    assert!(warning.contains("damaged"), "{done}");
    let id = done["taskId"].as_str().unwrap().to_owned();
    // The kind of backup the test is about: one plain archive in the file store, or none.
    let archive = env.iter().any(|(k, _)| *k == "BACKSPACE_ARCHIVE_TARGETS");
    let archives = files_under(&s.data_dir.join("files/backups"));
    assert_eq!(archives.len(), usize::from(archive), "{archives:?}");
    let (_, v) = s.get(&format!("/api/2.0/backup/verifybackup/{id}"), &owner).await;
    assert_eq!(v["response"]["ok"], true, "{v}");

    s.post("/api/2.0/backup/startrestore", &owner, json!({"backupId": id}))
        .await;
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    let files = listing["response"]["files"].as_array().unwrap();
    let titles: Vec<&str> = files.iter().map(|f| f["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["good.bin"], "{listing}");
    assert!(s.download(&owner, files[0]["id"].as_i64().unwrap()).await.1 == good);
}

#[tokio::test]
async fn a_local_repository_opens_anywhere_with_the_passphrase() {
    let roots = TempDir::new("backspace-roots");
    let roots_env = roots.display().to_string();
    let s = TestServer::spawn_with(&[
        ("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE),
        ("BACKSPACE_LOCAL_BACKUP_ROOTS", &roots_env),
    ])
    .await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Lost server").await;
    let data = bytes(3 << 20, 77);
    s.upload(&owner, room, "doc.bin", data.clone()).await;
    let params = json!([{"key": "filePath", "value": roots_env}]);
    let done = backup(&s, &owner, json!({"storageType": 3, "storageParams": params})).await;
    let id = done["taskId"].as_str().unwrap().to_owned();
    let repo = roots.join("backspace-repository");
    assert!(repo.join("config").is_file());

    // Another machine: only the directory and the passphrase.
    let cli = |args: &[&str], passphrase: &str| {
        Command::new(env!("CARGO_BIN_EXE_backspace"))
            .env_remove("BACKSPACE_URL")
            .args(args)
            .env("BACKSPACE_REPOSITORY_PASSPHRASE", passphrase)
            .env("BACKSPACE_LOG", "error")
            .output()
            .unwrap()
    };
    let repo_arg = repo.display().to_string();
    let wrong = cli(&["repository", "list", &repo_arg], "not it");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("passphrase"),
        "{wrong:?}"
    );
    let listed = cli(&["repository", "list", &repo_arg], PASSPHRASE);
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&id));
    let export = roots.join("exported.tar.zst");
    let export_arg = export.display().to_string();
    let exported = cli(&["repository", "export", &repo_arg, &id, "-o", &export_arg], PASSPHRASE);
    assert!(exported.status.success(), "{exported:?}");

    // A fresh server restores the exported archive.
    let fresh = TestServer::spawn_with(&[("BACKSPACE_LOCAL_BACKUP_ROOTS", &roots_env)]).await;
    let fresh_owner = Auth::bearer(&fresh.owner_token().await);
    let (status, v) = fresh
        .post(
            "/api/2.0/backup/startrestore",
            &fresh_owner,
            json!({"backupId": "", "storageType": 3, "storageParams": [{"key": "filePath", "value": export_arg}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&fresh, &fresh_owner).await["error"], "");
    // The restored portal has the backed-up people: sign in again as its owner.
    let fresh_owner = Auth::bearer(&fresh.owner_token().await);
    let (_, rooms) = fresh.get("/api/2.0/files/rooms", &fresh_owner).await;
    let restored_room = rooms["response"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"] == "Lost server")
        .unwrap_or_else(|| panic!("{rooms}"))["id"]
        .as_i64()
        .unwrap();
    let (_, listing) = fresh
        .get(&format!("/api/2.0/files/{restored_room}"), &fresh_owner)
        .await;
    let file = listing["response"]["files"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        fresh.download(&fresh_owner, file).await.1 == data,
        "restored bytes differ"
    );
    let _ = std::fs::remove_dir_all(&roots);
}

#[tokio::test]
async fn a_wrong_passphrase_fails_the_backup_clearly() {
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE)]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    backup(&s, &owner, json!({"storageType": 4})).await;
    drop(owner);
    let mut s = s;
    s.kill();
    let again = s
        .spawn_sharing(&[("BACKSPACE_REPOSITORY_PASSPHRASE", "another passphrase")])
        .await;
    let owner = Auth::bearer(&again.owner_token().await);
    let (status, v) = again
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(&again, &owner).await;
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("does not open with the configured passphrase"),
        "{done}"
    );
}
