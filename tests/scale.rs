//! Two instances on one database: a job started on one is polled on the other, and when the
//! instance running it is killed, the other fails it within the lease.

mod common;

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
