//! The backup API through HTTP: targets, round trip, history, schedules, hostile input.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

/// A server whose `Local` backups may use a fresh directory; returns it with the server.
async fn server_with_local_root() -> (TestServer, TempDir) {
    let root = TempDir::new("backspace-local");
    let s = TestServer::spawn_with(&[("BACKSPACE_LOCAL_BACKUP_ROOTS", root.to_str().unwrap())]).await;
    (s, root)
}

async fn start(s: &TestServer, auth: &Auth, body: Value) -> (u16, Value) {
    s.post("/api/2.0/backup/startbackup", auth, body).await
}

fn local(dir: &Path) -> Value {
    json!({"storageType": "Local", "storageParams": [{"key": "filePath", "value": dir.to_str().unwrap()}]})
}

/// Titles and bytes of every file under a folder, recursively, sorted: what a restore must
/// bring back.
async fn contents(s: &TestServer, auth: &Auth, folder: i64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![(folder, String::new())];
    while let Some((id, prefix)) = stack.pop() {
        let (status, v) = s.get(&format!("/api/2.0/files/{id}"), auth).await;
        assert_eq!(status, 200, "{v}");
        for f in v["response"]["files"].as_array().unwrap() {
            let (_, body) = s.download(auth, f["id"].as_i64().unwrap()).await;
            out.push((format!("{prefix}/{}", f["title"].as_str().unwrap()), body));
        }
        for d in v["response"]["folders"].as_array().unwrap() {
            stack.push((
                d["id"].as_i64().unwrap(),
                format!("{prefix}/{}", d["title"].as_str().unwrap()),
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_restore_brings_back_every_file_and_keeps_later_records() {
    let (s, root) = server_with_local_root().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Projects").await;
    let (_, sub) = s
        .post(
            &format!("/api/2.0/files/folder/{room}"),
            &owner,
            json!({"title": "Specs"}),
        )
        .await;
    let sub = sub["response"]["id"].as_i64().unwrap();
    let sizes = [0usize, 1, 4096, 3 * 1024 * 1024 + 5];
    for (i, size) in sizes.iter().enumerate() {
        s.upload(
            &owner,
            if i % 2 == 0 { room } else { sub },
            &format!("f{i}.bin"),
            bytes(*size, i as u64 + 1),
        )
        .await;
    }
    let before = contents(&s, &owner, room).await;
    assert_eq!(before.len(), 4);

    let (status, started) = start(&s, &owner, local(&root)).await;
    assert_eq!(status, 200, "{started}");
    let id = started["response"]["taskId"].as_str().unwrap().to_owned();
    let done = wait_backup(&s, &owner).await;
    assert_eq!(
        (done["progress"].clone(), done["error"].clone(), done["status"].clone()),
        (json!(100), json!(""), json!(2))
    );
    let archive: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert!(
        archive[0].starts_with("localhost_") && archive[0].ends_with(".tar.zst"),
        "{archive:?}"
    );

    // Change everything: delete, replace, add; and make records after the backup.
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    let victim = listing["response"]["files"][0]["id"].as_i64().unwrap();
    s.call(
        Method::DELETE,
        &format!("/api/2.0/files/file/{victim}"),
        &owner,
        Some(json!({"immediately": true})),
    )
    .await;
    s.upload(&owner, sub, "f1.bin", b"replaced".to_vec()).await;
    s.upload(&owner, room, "new.txt", b"added after the backup".to_vec())
        .await;
    s.post(
        &format!("/api/2.0/files/folder/{room}"),
        &owner,
        json!({"title": "Later"}),
    )
    .await;
    let (_, later_key) = s.create_key(&owner, json!({"name": "after"})).await;
    let (_, later) = start(&s, &owner, json!({"storageType": 4})).await;
    let later_id = later["response"]["taskId"].as_str().unwrap().to_owned();
    wait_backup(&s, &owner).await;
    assert_ne!(contents(&s, &owner, room).await, before);

    let (status, restore) = s
        .post(
            "/api/2.0/backup/startrestore",
            &owner,
            json!({"backupId": id, "notify": false}),
        )
        .await;
    assert_eq!(status, 200, "{restore}");
    assert_eq!(restore["response"]["backupProgressEnum"], 1);
    assert!(
        restore["response"].get("link").is_none(),
        "restore progress has no link"
    );
    let done = wait_restore(&s, &Auth::none()).await;
    assert_eq!(
        (done["progress"].clone(), done["error"].clone()),
        (json!(100), json!("")),
        "{done}"
    );

    assert_eq!(
        contents(&s, &owner, room).await,
        before,
        "the restored portal differs from the backup"
    );
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    let ids: Vec<_> = history["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.contains(&id) && ids.contains(&later_id),
        "records made after the backup must survive: {ids:?}"
    );
    assert_eq!(
        s.get("/api/2.0/people/@self", &Auth::bearer(&later_key)).await.0,
        200,
        "a key made later was lost"
    );
    // backspace sends no mail: the restore's `notify` is in the audit log.
    let (status, audit) = s.get("/api/2.0/security/audit/events/last", &owner).await;
    assert_eq!(status, 200, "{audit}");
    let events = audit["response"].as_array().unwrap();
    let actions: Vec<_> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for expected in ["BackupStarted", "BackupCompleted", "RestoreStarted", "RestoreCompleted"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    let started = events.iter().find(|e| e["action"] == "RestoreStarted").unwrap();
    assert!(
        started["description"].as_str().unwrap().contains("notify: false"),
        "{started}"
    );
    // Replaced bytes are gone from storage: one blob per file, nothing more.
    assert_eq!(count_files(&s.data_dir.join("files/portals")), before.len());
}

#[tokio::test]
async fn documents_backups_become_files_of_the_room() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Autotest Backup Room").await;
    s.upload(&owner, room, "a.txt", b"content".to_vec()).await;
    let body = json!({"storageType": "Documents", "storageParams": [{"key": "folderId", "value": room.to_string()}]});
    let (status, v) = start(&s, &owner, body).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    assert_eq!(done["link"], "", "only DataStore backups have a link");
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    let archive = listing["response"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().ends_with(".tar.zst"))
        .unwrap_or_else(|| panic!("no archive in the room: {listing}"))
        .clone();
    let (status, body) = s.download(&owner, archive["id"].as_i64().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd stream");

    // A restore from that file (the api-tests' flow: filePath is the file id).
    let body =
        json!({"backupId": "", "storageType": 0, "storageParams": [{"key": "filePath", "value": archive["id"]}]});
    let (status, v) = s.post("/api/2.0/backup/startrestore", &owner, body).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_restore(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 1, "the archive survives a restore from it: {history}");

    // Deleting the backup deletes the file.
    let id = history["response"][0]["id"].as_str().unwrap().to_owned();
    let (status, v) = s
        .call(
            Method::DELETE,
            &format!("/api/2.0/backup/deletebackup/{id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!((status, v["response"].clone()), (200, json!(true)));
    let (status, _) = s.get(&format!("/api/2.0/files/file/{}", archive["id"]), &owner).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn datastore_links_download_the_archive_without_credentials() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    start(&s, &owner, json!({"storageType": "4", "storageParams": null})).await;
    let done = wait_backup(&s, &owner).await;
    let link = done["link"].as_str().unwrap().to_owned();
    assert!(link.starts_with("/api/2.0/backup/download/"), "{link}");
    let resp = s.http.get(s.url(&link)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    let tampered = link.replace("signature=", "signature=0");
    assert_eq!(s.http.get(s.url(&tampered)).send().await.unwrap().status(), 403);
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    let record = &history["response"][0];
    assert_ne!(record["expiresOn"], "0001-01-01T00:00:00");
    assert!(
        record["createdOn"].as_str().unwrap().ends_with('Z'),
        "dates are UTC with Z: {record}"
    );
}

#[tokio::test]
async fn a_second_start_returns_the_running_job_and_counts_follow_history() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    // Enough bytes that the first job is still running when the second start arrives is not
    // guaranteed; what is guaranteed is that both answers name one job or two finished ones.
    let room = s.room(&owner, "Big").await;
    s.upload(&owner, room, "big.bin", bytes(8 << 20, 3)).await;
    let (_, a) = start(&s, &owner, json!({"storageType": 4})).await;
    let (_, b) = start(&s, &owner, json!({"storageType": 4})).await;
    let (a, b) = (a["response"]["taskId"].clone(), b["response"]["taskId"].clone());
    wait_backup(&s, &owner).await;
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    let expected = if a == b { 1 } else { 2 };
    assert_eq!(history["count"], expected, "{history}");
    let (_, count) = s.get("/api/2.0/backup/getbackupscount", &owner).await;
    assert_eq!(count["response"], expected);
    let (_, count) = s
        .get("/api/2.0/backup/getbackupscount?from=2000-01-01&to=2000-01-02", &owner)
        .await;
    assert_eq!(count["response"], 0);
    let (_, both) = s.get("/api/2.0/backup/getbackupscountbypaid", &owner).await;
    assert_eq!(both["response"], json!({"free": expected, "paid": 0}));
    let (_, state) = s.get("/api/2.0/backup/getservicestate", &owner).await;
    assert_eq!(state["response"], json!({"enabled": true}));
    // The portal/ aliases are the same endpoints.
    let (status, alias) = s.get("/api/2.0/portal/getbackuphistory", &owner).await;
    assert_eq!((status, alias["count"].clone()), (200, json!(expected)));
    let (status, v) = s
        .call(Method::DELETE, "/api/2.0/backup/deletebackuphistory", &owner, None)
        .await;
    assert_eq!((status, v["response"].clone()), (200, json!(true)));
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["response"], json!([]));
    assert_eq!(count_files(&s.data_dir.join("files/backups")), 0);
}

#[tokio::test]
async fn schedules_are_created_read_and_deleted() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Nightly").await;
    let body = json!({"storageType": 0, "storageParams": [{"key": "folderId", "value": room}], "backupsStored": "5",
        "cronParams": {"Period": "EveryWeek", "Hour": 2, "Day": "2"}});
    let (status, v) = s.post("/api/2.0/portal/createbackupschedule", &owner, body).await;
    assert_eq!((status, v["response"].clone()), (200, json!(true)), "{v}");
    let (_, v) = s.get("/api/2.0/backup/getbackupschedule", &owner).await;
    let sched = &v["response"];
    assert_eq!(sched["storageType"], 0);
    assert_eq!(sched["backupsStored"], 5);
    assert_eq!(sched["cronParams"], json!({"period": 1, "hour": 2, "day": 2}));
    assert_eq!(sched["storageParams"]["folderId"], room.to_string());
    assert_eq!(sched["lastBackupTime"], "0001-01-01T00:00:00");
    assert_eq!(sched["dump"], false);
    // backspace's extension: the next run, a Monday (Quartz day 2) at 02:00 in the portal's
    // time zone (UTC here), within the coming week.
    let next = sched["nextBackupTime"].as_str().unwrap_or_default();
    let (date, time) = next.split_once('T').unwrap_or(("", ""));
    assert_eq!(time, "02:00:00Z", "{sched}");
    let days = days_from_civil(date);
    let today = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86400) as i64;
    assert!(
        (today..=today + 7).contains(&days),
        "{next} is not within the coming week"
    );
    assert_eq!((days + 4).rem_euclid(7), 1, "{next} is not a Monday");
    let (_, v) = s
        .post(
            "/api/2.0/backup/createbackupschedule",
            &owner,
            json!({"storageType": 4, "cronParams": {}}),
        )
        .await;
    assert_eq!(v["response"], true);
    let (_, v) = s.get("/api/2.0/backup/getbackupschedule", &owner).await;
    assert_eq!(
        v["response"]["storageParams"],
        json!({"folderId": null}),
        "DataStore shows folderId null"
    );
    assert_eq!(v["response"]["cronParams"], json!({"period": 0, "hour": 0, "day": 0}));
    let (_, v) = s
        .call(Method::DELETE, "/api/2.0/backup/deletebackupschedule", &owner, None)
        .await;
    assert_eq!(v["response"], true);
    let (_, v) = s.get("/api/2.0/backup/getbackupschedule", &owner).await;
    assert!(v.get("response").is_none() && v["count"] == 0, "{v}");
}

#[tokio::test]
async fn hostile_and_bad_backup_inputs_get_clear_errors() {
    let (s, root) = server_with_local_root().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Guarded").await;
    let outside = TempDir::new("backspace-outside");
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    let (_, other_portal_owner) = {
        let (_, auth, _) = register(&s, "other-portal").await;
        ((), auth)
    };
    start(&s, &other_portal_owner, json!({"storageType": 4})).await;
    let foreign = wait_backup(&s, &other_portal_owner).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();

    let p = |k: &str, v: Value| json!([{"key": k, "value": v}]);
    // (what, method, path, body, status, message)
    type Case = (&'static str, Method, String, Option<Value>, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            "unknown folder",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 0, "storageParams": p("folderId", json!(999999))})),
            404,
            "The required folder was not found",
        ),
        (
            "wrong folder type",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 0, "storageParams": p("folderId", json!("abc"))})),
            400,
            "wrong folder type",
        ),
        (
            "missing folderId",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({})),
            400,
            "wrong folder type",
        ),
        (
            "the rooms root",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 0, "storageParams": p("folderId", json!(1))})),
            400,
            "cannot hold backups",
        ),
        (
            "a path with ..",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 3, "storageParams": p("filePath", json!(format!("{}/../", root.display())))})),
            400,
            "must not contain `..`",
        ),
        (
            "a path outside the roots",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 3, "storageParams": p("filePath", json!(outside.to_str().unwrap()))})),
            400,
            "outside the directories",
        ),
        (
            "a symlink out of the root",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(
                json!({"storageType": 3, "storageParams": p("filePath", json!(root.join("escape").to_str().unwrap()))}),
            ),
            400,
            "outside the directories",
        ),
        (
            "a relative path",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 3, "storageParams": p("filePath", json!("backups"))})),
            400,
            "absolute path",
        ),
        (
            "a duplicate parameter",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 4, "storageParams": [{"key": "a", "value": 1}, {"key": "A", "value": 2}]})),
            400,
            "given twice",
        ),
        (
            "a null parameter value",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 4, "storageParams": [{"key": "a", "value": null}]})),
            400,
            "value is null",
        ),
        (
            "an unknown storage type",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": "Tape"})),
            400,
            "not a valid BackupStorageType",
        ),
        (
            "a consumer without a module",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 5})),
            400,
            "module is required",
        ),
        (
            "a WebDAV folder that is not connected",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 1, "storageParams": [{"key": "folderId", "value": "sbox-1"}]})),
            404,
            "The required folder was not found",
        ),
        (
            "backupsStored 0",
            Method::POST,
            "/api/2.0/backup/createbackupschedule".into(),
            Some(json!({"storageType": 4, "backupsStored": 0, "cronParams": {}})),
            400,
            "backupsStored must be 1 - 30",
        ),
        (
            "backupsStored 31",
            Method::POST,
            "/api/2.0/backup/createbackupschedule".into(),
            Some(json!({"storageType": 4, "backupsStored": 31, "cronParams": {}})),
            400,
            "backupsStored must be 1 - 30",
        ),
        (
            "hour 24",
            Method::POST,
            "/api/2.0/backup/createbackupschedule".into(),
            Some(json!({"storageType": 4, "cronParams": {"hour": 24}})),
            400,
            "cronParams.hour",
        ),
        (
            "weekday 8",
            Method::POST,
            "/api/2.0/backup/createbackupschedule".into(),
            Some(json!({"storageType": 4, "cronParams": {"period": 1, "day": 8}})),
            400,
            "cronParams.day",
        ),
        (
            "month day 32",
            Method::POST,
            "/api/2.0/backup/createbackupschedule".into(),
            Some(json!({"storageType": 4, "cronParams": {"period": "EveryMonth", "day": 32}})),
            400,
            "cronParams.day",
        ),
        (
            "no cronParams",
            Method::POST,
            "/api/2.0/backup/createbackupschedule".into(),
            Some(json!({"storageType": 4})),
            400,
            "cronParams is required",
        ),
        (
            "an unknown backup id",
            Method::DELETE,
            format!("/api/2.0/backup/deletebackup/{}", uuid::Uuid::new_v4()),
            None,
            404,
            "The backup was not found",
        ),
        (
            "another portal's backup",
            Method::DELETE,
            format!("/api/2.0/backup/deletebackup/{foreign}"),
            None,
            404,
            "The backup was not found",
        ),
        (
            "a non-GUID backup id",
            Method::DELETE,
            "/api/2.0/backup/deletebackup/42".into(),
            None,
            404,
            "not a valid id",
        ),
        (
            "restore of an unknown id",
            Method::POST,
            "/api/2.0/backup/startrestore".into(),
            Some(json!({"backupId": uuid::Uuid::new_v4().to_string()})),
            404,
            "Unable to find the specified file.",
        ),
        (
            "restore of another portal's backup",
            Method::POST,
            "/api/2.0/backup/startrestore".into(),
            Some(json!({"backupId": foreign})),
            404,
            "Unable to find the specified file.",
        ),
        (
            "restore without backupId",
            Method::POST,
            "/api/2.0/backup/startrestore".into(),
            Some(json!({})),
            400,
            "BackupId",
        ),
        (
            "restore from a missing file",
            Method::POST,
            "/api/2.0/backup/startrestore".into(),
            Some(json!({"backupId": "", "storageParams": p("filePath", json!(999999))})),
            404,
            "The required file was not found",
        ),
        (
            "restore from outside the roots",
            Method::POST,
            "/api/2.0/backup/startrestore".into(),
            Some(json!({"backupId": "", "storageType": 3, "storageParams": p("filePath", json!("/etc/passwd"))})),
            400,
            "outside the directories",
        ),
        (
            "counts from after to",
            Method::GET,
            "/api/2.0/backup/getbackupscount?from=2026-02-01&to=2026-01-01".into(),
            None,
            400,
            "From date must be less than to date",
        ),
        (
            "a date that is not one",
            Method::GET,
            "/api/2.0/backup/getbackupscount?from=yesterday".into(),
            None,
            400,
            "is not a date",
        ),
        (
            "a dump into a room",
            Method::POST,
            "/api/2.0/backup/startbackup".into(),
            Some(json!({"storageType": 0, "dump": true})),
            400,
            "goes to Local or DataStore",
        ),
    ];
    for (what, method, path, body, status, message) in cases {
        let (got, v) = s.call(method, &path, &owner, body).await;
        assert_eq!(got, status, "{what}: {v}");
        assert_error(got, &v, status, message);
    }
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 0, "a refused request left a backup: {history}");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was written outside the roots"
    );
    let _ = room;

    // Roles: only admins reach the backup API; anyone may read the restore progress.
    let (_, user) = s.person(&owner, "RoomAdmin").await;
    for (method, path) in [
        (Method::POST, "/api/2.0/backup/startbackup"),
        (Method::GET, "/api/2.0/backup/getbackuphistory"),
        (Method::GET, "/api/2.0/portal/getbackupprogress"),
    ] {
        let (status, v) = s.call(method, path, &user, Some(json!({"storageType": 4}))).await;
        assert_error(status, &v, 403, "Access denied");
    }
    let (status, v) = s.get("/api/2.0/backup/getrestoreprogress", &Auth::none()).await;
    assert_eq!((status, v["count"].clone()), (200, json!(0)), "{v}");
}

/// Archives that must be refused at restore, each leaving the portal untouched.
#[tokio::test]
async fn hostile_archives_are_refused_and_change_nothing() {
    let (s, root) = server_with_local_root().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Keep").await;
    s.upload(&owner, room, "keep.txt", b"do not touch".to_vec()).await;
    start(&s, &owner, local(&root)).await;
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    let good = std::fs::read_dir(&root).unwrap().next().unwrap().unwrap().path();
    let good_bytes = std::fs::read(&good).unwrap();
    s.upload(&owner, room, "after.txt", b"made after the backup".to_vec())
        .await;
    let before = contents(&s, &owner, room).await;

    let mut tampered = zstd::decode_all(&good_bytes[..]).unwrap();
    // Flip the first byte of the first entry's data (after its 512-byte tar header).
    tampered[512] ^= 0xff;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good_bytes[..good_bytes.len() / 2].to_vec()),
        ("tampered", zstd::encode_all(&tampered[..], 3).unwrap()),
        ("not an archive", bytes(4096, 9)),
        (
            "a path escape",
            crafted(|b| {
                // Written into the raw header: the tar crate itself refuses to build such a name.
                let mut h = tar::Header::new_gnu();
                h.as_old_mut().name[..7].copy_from_slice(b"../evil");
                h.set_size(4);
                h.set_mode(0o644);
                h.set_cksum();
                b.append(&h, &b"evil"[..]).unwrap();
            }),
        ),
        (
            "a symlink",
            crafted(|b| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_cksum();
                b.append_link(&mut h, "files/1", "/etc/passwd").unwrap();
            }),
        ),
    ];
    for (what, data) in hostile {
        let path = root.join(format!("{}.tar.zst", what.replace(' ', "-")));
        std::fs::write(&path, data).unwrap();
        let body = json!({"backupId": "", "storageType": "Local", "storageParams": [{"key": "filePath", "value": path.to_str().unwrap()}]});
        let (status, v) = s.post("/api/2.0/backup/startrestore", &owner, body).await;
        assert_eq!(status, 200, "{what}: {v}");
        let done = wait_restore(&s, &owner).await;
        let error = done["error"].as_str().unwrap();
        assert!(error.starts_with("The backup file is invalid"), "{what}: {error}");
        assert_eq!(contents(&s, &owner, room).await, before, "{what} changed the portal");
        assert_eq!(
            s.get("/api/2.0/people/@self", &owner).await.0,
            200,
            "{what} left the portal locked"
        );
    }
}

/// A zstd-compressed tar built by hand.
fn crafted(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap()
}

/// The web UI's local restore: the archive is uploaded in chunks to `/backupFileUpload.ashx`,
/// then restored with `storageType: Local`.
#[tokio::test]
async fn an_uploaded_archive_restores_as_a_local_backup() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Uploaded").await;
    s.upload(&owner, room, "a.bin", bytes(300_000, 5)).await;
    start(&s, &owner, json!({"storageType": 4})).await;
    let link = wait_backup(&s, &owner).await["link"].as_str().unwrap().to_owned();
    let archive = s
        .http
        .get(s.url(&link))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let before = contents(&s, &owner, room).await;
    s.upload(&owner, room, "later.bin", bytes(1000, 6)).await;

    let init = s
        .backup_file_upload(
            &owner,
            &format!("?Init=true&totalSize={}&extension=tar.zst", archive.len()),
            None,
        )
        .await;
    assert_eq!(
        (init["Success"].clone(), init["EndUpload"].clone()),
        (json!(true), json!(false)),
        "{init}"
    );
    assert!(init["ChunkSize"].as_u64().unwrap() > 0);
    let half = archive.len() / 2;
    let first = s.backup_file_upload(&owner, "", Some(archive[..half].to_vec())).await;
    assert_eq!(
        (first["Success"].clone(), first["EndUpload"].clone()),
        (json!(true), json!(false)),
        "{first}"
    );
    let last = s.backup_file_upload(&owner, "", Some(archive[half..].to_vec())).await;
    assert_eq!(
        (last["Success"].clone(), last["EndUpload"].clone()),
        (json!(true), json!(true)),
        "{last}"
    );

    let body =
        json!({"backupId": "", "storageType": "Local", "storageParams": [{"key": "filePath", "value": "ignored"}]});
    let (status, v) = s.post("/api/2.0/backup/startrestore", &owner, body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    assert_eq!(contents(&s, &owner, room).await, before);

    // A chunk past the announced size is refused and drops the upload.
    s.backup_file_upload(&owner, "?Init=true&totalSize=10&extension=tar.zst", None)
        .await;
    let over = s.backup_file_upload(&owner, "", Some(vec![0; 11])).await;
    assert_eq!(over["Success"], false, "{over}");
    assert!(
        over["Message"]
            .as_str()
            .unwrap()
            .contains("larger than its announced totalSize"),
        "{over}"
    );
    let bad = s
        .backup_file_upload(&owner, "?Init=true&totalSize=10&extension=exe", None)
        .await;
    assert_eq!(bad["Success"], false);
}

/// The upload limit is for people's uploads: an archive written into a room may be larger.
#[tokio::test]
async fn a_documents_backup_may_exceed_the_upload_limit() {
    let s = TestServer::spawn_with(&[("BACKSPACE_MAX_UPLOAD_BYTES", "200000")]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Small uploads").await;
    for i in 0..2 {
        let (status, _) = s.upload(&owner, room, &format!("{i}.bin"), bytes(150_000, i + 1)).await;
        assert_eq!(status, 200);
    }
    let body = json!({"storageType": 0, "storageParams": [{"key": "folderId", "value": room}]});
    start(&s, &owner, body).await;
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 1);
}

/// Whole-server (`dump`) backups: every portal in one archive, for the server administrator.
#[tokio::test]
async fn a_whole_server_backup_restores_every_portal() {
    let (s, root) = server_with_local_root().await;
    let admin = Auth::bearer(&s.owner_token().await);
    let room_a = s.room(&admin, "Server room").await;
    s.upload(&admin, room_a, "a.bin", bytes(200_000, 11)).await;
    let (_, owner_b, _) = register(&s, "second-portal").await;
    let room_b = s.room(&owner_b, "Portal B room").await;
    s.upload(&owner_b, room_b, "b.bin", bytes(100_000, 12)).await;
    let (before_a, before_b) = (contents(&s, &admin, room_a).await, contents(&s, &owner_b, room_b).await);

    let mut dump = local(&root);
    dump["dump"] = json!(true);
    let (status, v) = start(&s, &owner_b, dump.clone()).await;
    assert_error(status, &v, 403, "Access denied");
    let (status, v) = start(&s, &admin, dump).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_job_at(&s, &admin, "/api/2.0/backup/getbackupprogress?dump=true").await;
    assert_eq!(done["error"], "", "{done}");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory?dump=true", &admin).await;
    assert_eq!(history["count"], 1, "{history}");
    assert!(history["response"][0]["fileName"]
        .as_str()
        .unwrap()
        .starts_with("workspace_"));
    let (_, portal_history) = s.get("/api/2.0/backup/getbackuphistory", &admin).await;
    assert_eq!(portal_history["count"], 0, "a server backup is not a portal backup");
    let id = history["response"][0]["id"].as_str().unwrap().to_owned();

    // Change both portals, then restore the whole server.
    for (auth, room) in [(&admin, room_a), (&owner_b, room_b)] {
        let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), auth).await;
        let file = listing["response"]["files"][0]["id"].as_i64().unwrap();
        s.call(
            Method::DELETE,
            &format!("/api/2.0/files/file/{file}"),
            auth,
            Some(json!({"immediately": true})),
        )
        .await;
    }
    let (status, v) = s
        .post(
            "/api/2.0/backup/startrestore",
            &admin,
            json!({"backupId": id, "dump": true}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let done = wait_job_at(&s, &Auth::none(), "/api/2.0/backup/getrestoreprogress?dump=true").await;
    assert_eq!(done["error"], "", "{done}");
    assert_eq!(contents(&s, &admin, room_a).await, before_a);
    assert_eq!(contents(&s, &owner_b, room_b).await, before_b);

    // A server archive is not a portal archive, and the reverse.
    let (_, v) = s
        .post("/api/2.0/backup/startrestore", &admin, json!({"backupId": id}))
        .await;
    assert_error(404, &v, 404, "Unable to find the specified file.");
    let path = std::fs::read_dir(&root).unwrap().next().unwrap().unwrap().path();
    let body = json!({"backupId": "", "storageType": 3, "storageParams": [{"key": "filePath", "value": path.to_str().unwrap()}]});
    s.post("/api/2.0/backup/startrestore", &admin, body).await;
    let done = wait_restore(&s, &admin).await;
    assert!(
        done["error"].as_str().unwrap().contains("whole-server backup"),
        "{done}"
    );

    // Whole-server schedules.
    let sched = json!({"storageType": 4, "dump": true, "cronParams": {"period": 0, "hour": 1}});
    let (_, v) = s.post("/api/2.0/backup/createbackupschedule", &admin, sched).await;
    assert_eq!(v["response"], true, "{v}");
    let (_, v) = s.get("/api/2.0/backup/getbackupschedule?dump=true", &admin).await;
    assert_eq!(v["response"]["dump"], true, "{v}");
    let (_, v) = s.get("/api/2.0/backup/getbackupschedule", &admin).await;
    assert!(
        v.get("response").is_none(),
        "the server schedule is not the portal's: {v}"
    );
}

#[tokio::test]
async fn vanished_archives_drop_out_of_history_and_custom_cloud_fails_like_docspace() {
    let (s, root) = server_with_local_root().await;
    let owner = Auth::bearer(&s.owner_token().await);
    start(&s, &owner, local(&root)).await;
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 1);
    assert_eq!(
        history["response"][0]["expiresOn"], "0001-01-01T00:00:00",
        "only DataStore backups expire"
    );
    for entry in std::fs::read_dir(&root).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(
        history["count"], 0,
        "a record whose archive is gone is still listed: {history}"
    );

    let (status, v) = start(&s, &owner, json!({"storageType": "CustomCloud"})).await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(&s, &owner).await;
    assert_eq!(
        (done["isCompleted"].clone(), done["error"].clone()),
        (json!(true), json!("Unknown storage type."))
    );
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(history["count"], 0, "a failed job left a record");
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's algorithm).
fn days_from_civil(date: &str) -> i64 {
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (parts[0] - i64::from(parts[1] <= 2), parts[1], parts[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// backspace's extensions to history records: each carries its size and a signed link, good
/// for an hour, that downloads exactly the archive; an altered link is refused.
#[tokio::test]
async fn history_records_carry_their_size_and_a_download_link() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Sized").await;
    s.upload(&owner, room, "a.bin", bytes(50_000, 9)).await;
    let (status, _) = s
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200);
    let done = wait_backup(&s, &owner).await;
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    let record = &history["response"][0];
    assert!(record["size"].as_i64().unwrap() >= 50_000, "{record}");
    let link = record["link"].as_str().unwrap();
    let from_history = fetch(&s, link).await;
    let from_progress = fetch(&s, done["link"].as_str().unwrap()).await;
    assert_eq!(from_history, from_progress, "the two links give different archives");
    let expires: i64 = link
        .split("expires=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let altered = link.replace(&format!("expires={expires}"), &format!("expires={}", expires + 3600));
    let resp = s.http.get(s.url(&altered)).send().await.unwrap();
    assert_eq!(resp.status(), 403);
}

/// A signed link stops working when it expires: a link signed (with the server's own key, read
/// from its database) with an expiry a second in the past is refused, and the same link with a
/// future expiry works, so it is the expiry that refuses it.
#[tokio::test]
async fn signed_links_expire() {
    use sqlx::Connection;
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Expiring").await;
    s.upload(&owner, room, "a.bin", bytes(10_000, 3)).await;
    let (status, v) = s
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    let id = history["response"][0]["id"].as_str().unwrap().to_owned();

    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    let key: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = 'link_signing_key'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let key: [u8; 32] = hex::decode(key.trim()).unwrap().try_into().unwrap();
    let link = |expires: i64| {
        let signature = blake3::keyed_hash(&key, format!("backup-download\n{id}\n{expires}").as_bytes());
        format!(
            "/api/2.0/backup/download/{id}?expires={expires}&signature={}",
            signature.to_hex()
        )
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(!fetch(&s, &link(now + 600)).await.is_empty(), "a valid link works");
    let resp = s.http.get(s.url(&link(now - 1))).send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_error(status, &body, 403, "expired");
}
