//! Backups to third-party storage, end to end against real servers the tests start: an S3
//! consumer (`ThirdPartyConsumer`, s3s-fs) and a WebDAV folder (`ThridpartyDocuments`, wsgidav).
//! Also the failures a user meets: wrong keys, a missing bucket, a server that stops in the
//! middle of an upload, a WebDAV server that is down.

mod common;

use common::external::{all_files, visible_files, Dav, S3Fs};
use common::*;
use serde_json::{json, Value};

/// `storageParams` plus more pairs.
fn with(params: Value, more: &[(&str, &str)]) -> Value {
    let mut list = params.as_array().unwrap().clone();
    for (k, v) in more {
        list.push(json!({"key": k, "value": v}));
    }
    Value::Array(list)
}

async fn save_keys(s: &TestServer, auth: &Auth, access: &str, secret: &str) -> (u16, Value) {
    s.post(
        "/api/2.0/settings/authservice",
        auth,
        json!({"name": "s3", "props": [
            {"name": "acesskey", "value": access},
            {"name": "secretaccesskey", "value": secret},
        ]}),
    )
    .await
}

async fn history(s: &TestServer, auth: &Auth) -> Vec<Value> {
    let (status, v) = s.get("/api/2.0/backup/getbackuphistory", auth).await;
    assert_eq!(status, 200, "{v}");
    v["response"].as_array().unwrap().clone()
}

/// The portal's only file in `room`: (id, bytes).
async fn only_file(s: &TestServer, auth: &Auth, room: i64) -> (i64, Vec<u8>) {
    let (_, listing) = s.get(&format!("/api/2.0/files/{room}"), auth).await;
    let files = listing["response"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{listing}");
    let id = files[0]["id"].as_i64().unwrap();
    (id, s.download(auth, id).await.1)
}

async fn delete_file(s: &TestServer, auth: &Auth, id: i64) {
    let (status, v) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/api/2.0/files/file/{id}"),
            auth,
            Some(json!({"immediately": true})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

async fn start_backup(s: &TestServer, auth: &Auth, body: Value) -> String {
    let (status, v) = s.post("/api/2.0/backup/startbackup", auth, body).await;
    assert_eq!(status, 200, "{v}");
    v["response"]["taskId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn backups_go_to_an_s3_consumer_and_come_back() {
    let Some(s3) = S3Fs::spawn() else { return };
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);

    // The keys are saved once; no endpoint gives them back.
    let (status, v) = save_keys(&s, &owner, &s3.access, &s3.secret).await;
    assert_eq!((status, &v["response"]), (200, &json!(true)), "{v}");
    let (_, v) = save_keys(&s, &owner, &s3.access, &s3.secret).await;
    assert_eq!(v["response"], false, "saving the same keys again changes nothing");
    for path in ["/api/2.0/settings/authservice", "/api/2.0/settings/storage/backup"] {
        let (status, v) = s.get(path, &owner).await;
        assert_eq!(status, 200, "{v}");
        let text = v.to_string();
        assert!(
            !text.contains(&s3.secret) && !text.contains(&s3.access),
            "{path} leaks a key: {text}"
        );
    }
    let (_, storages) = s.get("/api/2.0/settings/storage/backup", &owner).await;
    let by_id = |id: &str| {
        storages["response"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {storages}"))
            .clone()
    };
    assert_eq!(
        (by_id("s3")["isSet"].clone(), by_id("s3")["current"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(by_id("googlecloud")["isSet"], false);
    assert_eq!(by_id("rackspace")["isSet"], false);

    let room = s.room(&owner, "To S3").await;
    let data = bytes(3 << 20, 5);
    assert_eq!(s.upload(&owner, room, "doc.bin", data.clone()).await.0, 200);

    let id = start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    let objects = s3.objects();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let name = objects[0]
        .strip_prefix("backup/")
        .expect("archives live under backup/")
        .to_owned();
    let records = history(&s, &owner).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0]["id"].as_str(), records[0]["storageType"].as_i64()),
        (Some(id.as_str()), Some(5))
    );
    assert_eq!(records[0]["fileName"], name.as_str());
    assert_eq!(records[0]["expiresOn"], "0001-01-01T00:00:00");

    // The link is the bucket's own, presigned for a day, and needs no credential.
    let link = done["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/{}/backup/", s3.endpoint, s3.bucket)),
        "{link}"
    );
    assert!(
        link.contains("X-Amz-Signature=") && link.contains("X-Amz-Expires=86400"),
        "{link}"
    );
    let fetched = reqwest::get(link).await.unwrap();
    assert_eq!(fetched.status(), 200);
    let on_disk = std::fs::read(s3.dir.join(&s3.bucket).join(&objects[0])).unwrap();
    assert!(fetched.bytes().await.unwrap() == on_disk, "the link serves other bytes");

    // A schedule to the consumer: the store shows it as current, never with the keys.
    let (status, v) = s
        .post(
            "/api/2.0/backup/createbackupschedule",
            &owner,
            json!({"storageType": 5, "storageParams": with(s3.params(), &[("secretaccesskey", &s3.secret)]),
                   "backupsStored": 2, "cronParams": {"period": 0, "hour": 3}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, schedule) = s.get("/api/2.0/backup/getbackupschedule", &owner).await;
    assert_eq!(
        schedule["response"]["storageParams"]["bucket"],
        s3.bucket.as_str(),
        "{schedule}"
    );
    assert!(
        !schedule.to_string().contains(&s3.secret),
        "the schedule leaks a key: {schedule}"
    );
    let (_, storages) = s.get("/api/2.0/settings/storage/backup", &owner).await;
    let s3_entry = storages["response"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "s3")
        .unwrap()
        .clone();
    assert_eq!(s3_entry["current"], true, "{storages}");
    assert!(!storages.to_string().contains(&s3.secret));

    // Restore by history id.
    let (file, _) = only_file(&s, &owner, room).await;
    delete_file(&s, &owner, file).await;
    let (status, v) = s
        .post("/api/2.0/backup/startrestore", &owner, json!({"backupId": id}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    assert!(only_file(&s, &owner, room).await.1 == data, "restored bytes differ");

    // Restore by object name, as DocSpace's filePath.
    let (file, _) = only_file(&s, &owner, room).await;
    delete_file(&s, &owner, file).await;
    let (status, v) = s
        .post(
            "/api/2.0/backup/startrestore",
            &owner,
            json!({"backupId": "", "storageType": 5, "storageParams": with(s3.params(), &[("filePath", &name)])}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    assert!(only_file(&s, &owner, room).await.1 == data);
    let (status, v) = s
        .post(
            "/api/2.0/backup/startrestore",
            &owner,
            json!({"backupId": "", "storageType": 5, "storageParams": with(s3.params(), &[("filePath", "nope.tar.zst")])}),
        )
        .await;
    assert_error(status, &v, 404, "The required file was not found");

    // Deleting the backup deletes the object.
    let (status, v) = delete_backup(&s, &owner, &id).await;
    assert_eq!((status, &v["response"]), (200, &json!(true)), "{v}");
    assert_eq!(s3.objects(), Vec::<String>::new());
    assert!(history(&s, &owner).await.is_empty());

    // A record whose object vanished is dropped from history.
    start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    assert_eq!(history(&s, &owner).await.len(), 1);
    for object in s3.objects() {
        std::fs::remove_file(s3.dir.join(&s3.bucket).join(object)).unwrap();
    }
    assert!(
        history(&s, &owner).await.is_empty(),
        "a record without its object is listed"
    );
}

#[tokio::test]
async fn wrong_keys_a_missing_bucket_or_missing_settings_fail_clearly_and_leave_nothing() {
    let Some(s3) = S3Fs::spawn() else { return };
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Data").await;
    s.upload(&owner, room, "a.bin", bytes(1 << 20, 9)).await;

    // Refused at once: no module, an unknown module, no keys anywhere, an unknown property.
    for (params, needle) in [
        (json!([]), "module is required"),
        (
            json!([{"key": "module", "value": "azure"}]),
            "unknown storage module `azure`",
        ),
        (s3.params(), "not configured"),
        (with(s3.params(), &[("colour", "red")]), "`colour` is not a property"),
    ] {
        let (status, v) = s
            .post(
                "/api/2.0/backup/startbackup",
                &owner,
                json!({"storageType": 5, "storageParams": params}),
            )
            .await;
        assert_error(status, &v, 400, needle);
    }
    let (status, v) = s
        .post(
            "/api/2.0/settings/authservice",
            &owner,
            json!({"name": "dropbox", "props": []}),
        )
        .await;
    assert_error(status, &v, 400, "Bad keys");

    // A wrong secret: the job fails naming the bucket and the cause.
    save_keys(&s, &owner, &s3.access, "not-the-secret").await;
    start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    let done = wait_backup(&s, &owner).await;
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("s3 bucket `backups`"), "{done}");
    assert!(!error.contains("not-the-secret"), "the error shows the secret: {error}");

    // A bucket that does not exist.
    save_keys(&s, &owner, &s3.access, &s3.secret).await;
    let params = json!([
        {"key": "module", "value": "s3"}, {"key": "bucket", "value": "no-such-bucket"},
        {"key": "serviceurl", "value": s3.endpoint}, {"key": "forcepathstyle", "value": true},
    ]);
    start_backup(&s, &owner, json!({"storageType": 5, "storageParams": params})).await;
    let done = wait_backup(&s, &owner).await;
    assert!(done["error"].as_str().unwrap().contains("no-such-bucket"), "{done}");

    assert!(history(&s, &owner).await.is_empty(), "a failed backup left a record");
    assert_eq!(s3.objects(), Vec::<String>::new(), "a failed backup left an object");

    // Clearing the keys (all values empty) makes the consumer unset again.
    let (_, v) = save_keys(&s, &owner, "", "").await;
    assert_eq!(v["response"], true);
    let (status, v) = s
        .post(
            "/api/2.0/backup/startbackup",
            &owner,
            json!({"storageType": 5, "storageParams": s3.params()}),
        )
        .await;
    assert_error(status, &v, 400, "not configured");
    // Only admins manage keys.
    let (_, user) = s.person(&owner, "user").await;
    let (status, v) = save_keys(&s, &user, "a", "b").await;
    assert_error(status, &v, 403, "Access denied");
}

#[tokio::test]
async fn an_s3_server_stopped_mid_upload_fails_the_job_and_the_next_backup_succeeds() {
    let Some(mut s3) = S3Fs::spawn() else { return };
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    save_keys(&s, &owner, &s3.access, &s3.secret).await;
    let room = s.room(&owner, "Big").await;
    // Incompressible files, each written to the upload in parts of 8 MiB.
    for i in 0..12 {
        let (status, _) = s
            .upload(&owner, room, &format!("f{i}.bin"), bytes(16 << 20, 100 + i))
            .await;
        assert_eq!(status, 200);
    }
    start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    // Stop the server once the archive is being written, before it is finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = s.get("/api/2.0/backup/getbackupprogress", &owner).await;
        let p = &v["response"];
        assert_ne!(
            p["isCompleted"], true,
            "the backup finished before the server could be stopped: {p}"
        );
        if p["progress"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never started writing: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s3.stop();
    let done = wait_backup(&s, &owner).await;
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("s3 bucket `backups`"), "{done}");
    assert!(history(&s, &owner).await.is_empty(), "a failed upload left a record");

    s3.start();
    assert_eq!(s3.objects(), Vec::<String>::new(), "a failed upload left an object");
    start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    assert_eq!(s3.objects().len(), 1);
    assert_eq!(history(&s, &owner).await.len(), 1);
}

#[tokio::test]
async fn backups_go_to_a_webdav_folder_and_come_back() {
    let Some(mut dav) = Dav::spawn() else { return };
    // With a repository passphrase, the saved password is sealed at rest.
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", "webdav test passphrase")]).await;
    let owner = Auth::bearer(&s.owner_token().await);

    let (status, v) = s.get("/api/2.0/files/thirdparty/backup", &owner).await;
    assert_eq!((status, v.get("response"), &v["count"]), (200, None, &json!(0)), "{v}");
    let connect = |password: &str| {
        json!({"url": dav.url, "login": dav.login, "password": password,
               "customerTitle": "Backups on WebDAV", "providerKey": "WebDav"})
    };
    let (status, v) = s
        .post("/api/2.0/files/thirdparty/backup", &owner, connect("wrong"))
        .await;
    assert_error(status, &v, 400, "rejected the login or password");
    let (status, v) = s
        .post("/api/2.0/files/thirdparty/backup", &owner, connect(&dav.password))
        .await;
    assert_eq!(status, 200, "{v}");
    let folder = v["response"]["id"].as_str().unwrap().to_owned();
    assert!(folder.starts_with("sbox-"), "{v}");
    assert_eq!(v["response"]["providerKey"], "WebDav");
    assert_eq!(v["response"]["rootFolderType"], 21);
    assert_eq!(v["response"]["providerItem"], true);
    assert!(!v.to_string().contains(&dav.password));
    let stored = sql_strings(&s.database_url, "SELECT password FROM backup_providers").await;
    assert!(
        stored.len() == 1 && stored[0].starts_with("sealed:v1:") && !stored[0].contains(&dav.password),
        "the password is not sealed at rest: {stored:?}"
    );
    let (_, v) = s.get("/api/2.0/files/thirdparty/backup", &owner).await;
    assert_eq!(v["response"]["id"], folder.as_str());
    let (_, user) = s.person(&owner, "user").await;
    let (status, v) = s
        .post("/api/2.0/files/thirdparty/backup", &user, connect(&dav.password))
        .await;
    assert_error(status, &v, 403, "You don't have enough permission to create");

    for (folder_id, want, needle) in [
        ("12", 400, "wrong folder type"),
        ("sbox-999", 404, "folder was not found"),
    ] {
        let (status, v) = s
            .post(
                "/api/2.0/backup/startbackup",
                &owner,
                json!({"storageType": 1, "storageParams": [{"key": "folderId", "value": folder_id}]}),
            )
            .await;
        assert_error(status, &v, want, needle);
    }

    let room = s.room(&owner, "To WebDAV").await;
    let data = bytes(2 << 20, 77);
    s.upload(&owner, room, "doc.bin", data.clone()).await;
    let params = json!([{"key": "folderId", "value": folder}]);
    let id = start_backup(&s, &owner, json!({"storageType": 1, "storageParams": params})).await;
    let done = wait_backup(&s, &owner).await;
    assert_eq!(
        (done["error"].as_str(), done["link"].as_str()),
        (Some(""), Some("")),
        "{done}"
    );
    let stored = visible_files(&dav.root);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(all_files(&dav.root).len(), 1, "a temporary upload was left behind");
    let records = history(&s, &owner).await;
    assert_eq!((records.len(), records[0]["storageType"].as_i64()), (1, Some(1)));
    assert_eq!(records[0]["fileName"], stored[0].as_str());

    let (file, _) = only_file(&s, &owner, room).await;
    delete_file(&s, &owner, file).await;
    s.post("/api/2.0/backup/startrestore", &owner, json!({"backupId": id}))
        .await;
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    assert!(only_file(&s, &owner, room).await.1 == data, "restored bytes differ");

    // From a file of the folder, named by its provider file id.
    let (file, _) = only_file(&s, &owner, room).await;
    delete_file(&s, &owner, file).await;
    let file_id = format!("{folder}|{}", stored[0]);
    let (status, v) = s
        .post(
            "/api/2.0/backup/startrestore",
            &owner,
            json!({"backupId": "", "storageType": 1, "storageParams": [{"key": "filePath", "value": file_id}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    assert!(only_file(&s, &owner, room).await.1 == data);

    // The server is down: the job fails naming the folder, and the history keeps its record.
    dav.stop();
    start_backup(&s, &owner, json!({"storageType": 1, "storageParams": params})).await;
    let done = wait_backup(&s, &owner).await;
    assert!(done["error"].as_str().unwrap().contains("WebDAV folder"), "{done}");
    assert_eq!(history(&s, &owner).await.len(), 1);
    dav.start();

    let (status, _) = delete_backup(&s, &owner, &id).await;
    assert_eq!(status, 200);
    assert!(
        visible_files(&dav.root).is_empty(),
        "the archive is still in the folder"
    );
    assert!(history(&s, &owner).await.is_empty());
}

#[tokio::test]
async fn the_official_python_sdk_backs_up_to_s3_and_restores() {
    let Some(s3) = S3Fs::spawn() else { return };
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "SDK").await;
    s.upload(&owner, room, "doc.bin", bytes(1 << 20, 3)).await;
    let token = s.owner_token().await;
    let python = std::env::var("BACKSPACE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_s3.py");
    let out = std::process::Command::new(python)
        .args([
            script,
            &s.base,
            &token,
            &s3.endpoint,
            &s3.bucket,
            &s3.access,
            &s3.secret,
        ])
        .output()
        .expect("run the SDK script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the SDK script failed:\n{text}");
    assert!(text.contains("checks passed"), "{text}");
    assert_eq!(
        s3.objects(),
        Vec::<String>::new(),
        "the deleted backup is still in the bucket"
    );
}

#[tokio::test]
async fn google_cloud_and_rackspace_targets_fail_with_errors_that_name_them() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    // Nothing listens on this port: Rackspace's sign-in cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let identity = format!("http://{}/v2.0/tokens", closed.local_addr().unwrap());
    drop(closed);
    for (params, needle) in [
        (
            json!([{"key": "module", "value": "googlecloud"}, {"key": "bucket", "value": "gb"},
                   {"key": "json", "value": "{not json"}]),
            "googlecloud bucket `gb`",
        ),
        (
            json!([{"key": "module", "value": "rackspace"}, {"key": "private_container", "value": "rc"},
                   {"key": "username", "value": "u"}, {"key": "apiKey", "value": "k"},
                   {"key": "identityurl", "value": identity}]),
            "signing in to Rackspace",
        ),
    ] {
        start_backup(&s, &owner, json!({"storageType": 5, "storageParams": params})).await;
        let done = wait_backup(&s, &owner).await;
        assert!(done["error"].as_str().unwrap().contains(needle), "{done}");
    }
    assert!(history(&s, &owner).await.is_empty());
    let (status, v) = s
        .post(
            "/api/2.0/backup/startbackup",
            &owner,
            json!({"storageType": 5, "storageParams": [{"key": "module", "value": "googlecloud"}, {"key": "json", "value": "{}"}]}),
        )
        .await;
    assert_error(status, &v, 400, "bucket is required");
}

#[tokio::test]
async fn an_s3_consumer_holds_an_encrypted_repository() {
    let Some(s3) = S3Fs::spawn() else { return };
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", "s3 repository passphrase")]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let saved = save_keys(&s, &owner, &s3.access, &s3.secret).await;
    assert_eq!(saved.0, 200, "{}", saved.1);
    // With a repository passphrase, the keys are sealed at rest.
    let stored = sql_strings(&s.database_url, "SELECT props FROM consumer_settings").await;
    assert!(
        stored.len() == 1
            && stored[0].starts_with("sealed:v1:")
            && !stored[0].contains(&s3.secret)
            && !stored[0].contains(&s3.access),
        "the keys are not sealed at rest: {stored:?}"
    );
    // Saving the same keys again changes nothing (no new audit event, no write).
    let before = sql_strings(&s.database_url, "SELECT props FROM consumer_settings").await;
    assert_eq!(save_keys(&s, &owner, &s3.access, &s3.secret).await.0, 200);
    assert_eq!(
        sql_strings(&s.database_url, "SELECT props FROM consumer_settings").await,
        before
    );
    let room = s.room(&owner, "Incremental").await;
    let data = bytes(5 << 20, 91);
    s.upload(&owner, room, "doc.bin", data.clone()).await;
    let first = start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    let done = wait_backup(&s, &owner).await;
    assert_eq!(done["error"], "", "{done}");
    let objects = s3.objects();
    assert!(
        objects.iter().all(|o| o.starts_with("backup/backspace-repository/")),
        "{objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with("backup/backspace-repository/packs/")),
        "{objects:?}"
    );
    // No object of its own: the link is the server's signed one, and serves an archive.
    let link = done["link"].as_str().unwrap();
    assert!(link.starts_with("/api/2.0/backup/download/"), "{link}");
    let archive = s.http.get(s.url(link)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&archive[..4], &[0x28, 0xb5, 0x2f, 0xfd]);

    // The second backup adds no pack.
    let packs = |objects: &[String]| objects.iter().filter(|o| o.contains("/packs/")).count();
    let before = packs(&s3.objects());
    start_backup(&s, &owner, json!({"storageType": 5, "storageParams": s3.params()})).await;
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    assert_eq!(packs(&s3.objects()), before, "an unchanged backup wrote packs");

    let (file, _) = only_file(&s, &owner, room).await;
    delete_file(&s, &owner, file).await;
    s.post("/api/2.0/backup/startrestore", &owner, json!({"backupId": first}))
        .await;
    assert_eq!(wait_restore(&s, &owner).await["error"], "");
    assert!(only_file(&s, &owner, room).await.1 == data, "restored bytes differ");
}
