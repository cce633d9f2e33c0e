//! Two instances on one database: a job started on one is polled on the other, and when the
//! instance running it is killed, the other fails it within the lease. With an S3 server, the
//! instances also share their files through the bucket and keep nothing on their own disks.

mod common;

use common::external::S3Fs;
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_killed_instances_job_is_failed_by_another_within_the_lease() {
    let lease = [("BACKSPACE_JOB_LEASE_SECONDS", "2")];
    let mut a = TestServer::spawn_with(&[lease[0], ("BACKSPACE_INSTANCE_ID", "instance-a")]).await;
    let b = a
        .spawn_sharing(&[lease[0], ("BACKSPACE_INSTANCE_ID", "instance-b")])
        .await;
    let owner = Auth::bearer(&a.owner_token().await);
    let room = a.room(&owner, "Big").await;
    let (status, _) = a.upload(&owner, room, "big.bin", bytes(128 << 20, 21)).await;
    assert_eq!(status, 200);

    let (status, started) = a
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200, "{started}");
    a.kill();
    // Polled on the other instance; the session is in the shared database.
    let done = wait_backup(&b, &owner).await;
    assert_eq!(done["taskId"], started["response"]["taskId"]);
    assert!(done["error"].as_str().unwrap().contains("server stopped"), "{done}");
    let (_, history) = b.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 0, "a killed backup left a record");
    // The other instance runs the next backup itself.
    b.post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(wait_backup(&b, &owner).await["error"], "");
}

#[tokio::test]
async fn two_instances_share_one_database_and_one_s3_store() {
    let Some(s3) = S3Fs::spawn() else { return };
    let files = format!(
        "s3://{}?endpoint={}&region=us-east-1&path_style=true&root=files",
        s3.bucket, s3.endpoint
    );
    let env = |id: &'static str| {
        vec![
            ("BACKSPACE_FILES_URL", files.clone()),
            ("BACKSPACE_FILES_S3_ACCESS_KEY", s3.access.clone()),
            ("BACKSPACE_FILES_S3_SECRET_KEY", s3.secret.clone()),
            ("BACKSPACE_JOB_LEASE_SECONDS", "2".to_owned()),
            ("BACKSPACE_INSTANCE_ID", id.to_owned()),
        ]
    };
    let (env_a, env_b) = (env("instance-a"), env("instance-b"));
    let mut a = TestServer::spawn_with(&refs(&env_a)).await;
    let b = a.spawn_on_database(&refs(&env_b)).await;
    let owner = Auth::bearer(&a.owner_token().await);

    // A file uploaded through one instance is read through the other.
    let room = a.room(&owner, "Shared").await;
    let data = bytes(24 << 20, 61);
    let (status, up) = a.upload(&owner, room, "shared.bin", data.clone()).await;
    assert_eq!(status, 200, "{up}");
    let id = up["response"][0]["id"].as_i64().unwrap();
    assert!(
        b.download(&owner, id).await.1 == data,
        "the other instance reads other bytes"
    );

    // A backup started on one is polled, listed and downloaded on the other.
    let (_, started) = a
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    let done = wait_backup(&b, &owner).await;
    assert_eq!(done["taskId"], started["response"]["taskId"]);
    assert_eq!(done["error"], "", "{done}");
    let (_, history) = b.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 1, "{history}");
    let link = done["link"].as_str().unwrap();
    let archive = b.http.get(b.url(link)).send().await.unwrap();
    assert_eq!(archive.status(), 200);
    assert_eq!(&archive.bytes().await.unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(count_files(&b.data_dir), 0, "the second instance wrote to its own disk");

    // The instance running a backup dies: the other fails the job within the lease.
    a.post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    a.kill();
    let killed_at = std::time::Instant::now();
    let done = wait_backup(&b, &owner).await;
    let took = killed_at.elapsed();
    eprintln!("the job of the killed instance was failed after {took:?} (lease 2 s)");
    assert!(done["error"].as_str().unwrap().contains("server stopped"), "{done}");
    assert!(
        took < std::time::Duration::from_secs(30),
        "not failed within the lease: {took:?}"
    );
    let (_, history) = b.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 1, "the killed backup left a record");
    b.post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(wait_backup(&b, &owner).await["error"], "");
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
