//! The server with its files on a real S3 server (s3s-fs in CI): uploads, a backup to the
//! temporary store and a restore, all through the bucket. `BACKSPACE_TEST_S3_*` name the server;
//! CI sets `BACKSPACE_REQUIRE_S3=1`.

mod common;

use common::*;
use serde_json::json;

#[derive(Clone)]
struct S3 {
    endpoint: String,
    bucket: String,
    access: String,
    secret: String,
}

fn s3() -> Option<S3> {
    let var = |n: &str| std::env::var(format!("BACKSPACE_TEST_S3_{n}")).ok();
    match (var("ENDPOINT"), var("BUCKET"), var("ACCESS_KEY"), var("SECRET_KEY")) {
        (Some(endpoint), Some(bucket), Some(access), Some(secret)) => Some(S3 {
            endpoint,
            bucket,
            access,
            secret,
        }),
        _ => {
            assert!(
                std::env::var("BACKSPACE_REQUIRE_S3").is_err(),
                "BACKSPACE_REQUIRE_S3 is set but no S3 server is named"
            );
            None
        }
    }
}

fn files_url(s3: &S3) -> String {
    let root = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "s3://{}?endpoint={}&region=us-east-1&path_style=true&root={root}",
        s3.bucket, s3.endpoint
    )
}

#[tokio::test]
async fn files_and_backups_live_in_the_bucket() {
    let Some(s3) = s3() else { return };
    let url = files_url(&s3);
    let s = TestServer::spawn_with(&[
        ("BACKSPACE_FILES_URL", &url),
        ("BACKSPACE_FILES_S3_ACCESS_KEY", &s3.access),
        ("BACKSPACE_FILES_S3_SECRET_KEY", &s3.secret),
    ])
    .await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "On S3").await;
    let data = bytes(12 << 20, 31);
    let (status, up) = s.upload(&owner, room, "big.bin", data.clone()).await;
    assert_eq!(status, 200, "{up}");
    let id = up["response"][0]["id"].as_i64().unwrap();
    assert!(s.download(&owner, id).await.1 == data, "the bytes from S3 differ");
    assert!(
        !s.data_dir.join("files").exists(),
        "file bytes were written to the local disk"
    );

    let (_, started) = s
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    let archive = s
        .http
        .get(s.url(done["link"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&archive[..4], &[0x28, 0xb5, 0x2f, 0xfd]);

    s.call(
        reqwest::Method::DELETE,
        &format!("/api/2.0/files/file/{id}"),
        &owner,
        Some(json!({"immediately": true})),
    )
    .await;
    let backup = started["response"]["taskId"].as_str().unwrap();
    s.post("/api/2.0/backup/startrestore", &owner, json!({"backupId": backup}))
        .await;
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    let restored = listing["response"]["files"][0]["id"].as_i64().unwrap();
    assert!(
        s.download(&owner, restored).await.1 == data,
        "the restored bytes differ"
    );
}

#[tokio::test]
async fn a_wrong_key_or_bucket_stops_the_server_with_a_clear_error() {
    let Some(s3) = s3() else { return };
    let dir = std::env::temp_dir().join(format!("backspace-s3-{}", uuid::Uuid::new_v4().simple()));
    for (what, url, secret, needle) in [
        (
            "a wrong key",
            files_url(&s3),
            "wrong".to_owned(),
            "reaching S3 file storage",
        ),
        (
            "a missing bucket",
            files_url(&S3 {
                bucket: "no-such-bucket".into(),
                ..s3.clone()
            }),
            s3.secret.clone(),
            "no-such-bucket",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_backspace"))
            .env_remove("BACKSPACE_URL")
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("BACKSPACE_FILES_URL", &url)
            .env("BACKSPACE_FILES_S3_ACCESS_KEY", &s3.access)
            .env("BACKSPACE_FILES_S3_SECRET_KEY", &secret)
            .env("BACKSPACE_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{what}: the server started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{what}: {err}");
        assert!(!err.contains(&s3.secret), "{what}: the secret was printed");
    }
    let _ = std::fs::remove_dir_all(dir);
}
