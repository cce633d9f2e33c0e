//! What operators call: health and readiness, Prometheus metrics (counted by route template,
//! guarded by a token or loopback), and JSON logs that trace every job without secrets.

mod common;

use common::*;
use serde_json::{json, Value};

/// The value of the sample line `series` in a metrics text, when present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics(s: &TestServer, token: Option<&str>) -> (u16, String) {
    let mut req = s.http.get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = TestServer::spawn().await;
    let resp = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let resp = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "ready", "database": "ok", "storage": "ok"})
    );

    // The API reference page, and the document it renders, which lists these endpoints too.
    let resp = s.http.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("fetch(\"/openapi.json\")"));
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/api/2.0/backup/startbackup",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }

    let owner = Auth::bearer(&s.owner_token().await);
    backup(&s, &owner, json!({"storageType": 4})).await;
    let (status, _) = delete_backup(&s, &owner, "00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, 404);
    let (status, _) = s.get("/no/such/route", &owner).await;
    assert_eq!(status, 404);

    let (status, text) = metrics(&s, None).await;
    assert_eq!(status, 200, "{text}");
    let count = |route: &str, method: &str, status: u16| {
        sample(
            &text,
            &format!("backspace_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(count("/api/2.0/backup/startbackup", "POST", 200), Some(1.0), "{text}");
    // Ids never become labels: the route's template does.
    assert_eq!(
        count("/api/2.0/backup/deletebackup/{backupid}", "DELETE", 404),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("00000000-0000"), "an id became a label");
    assert_eq!(count("unmatched", "GET", 404), Some(1.0), "{text}");
    assert!(count("/api/2.0/backup/getbackupprogress", "GET", 200).unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(
            &text,
            "backspace_http_request_duration_seconds_count{route=\"/api/2.0/backup/startbackup\",method=\"POST\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "backspace_jobs_total{kind=\"backup\",outcome=\"succeeded\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "backspace_backup_duration_seconds_count"), Some(1.0));
    assert!(sample(&text, "backspace_backed_up_bytes_total").is_some());

    // Storage that fails makes the server unready, and says which part.
    let files = s.data_dir.join("files");
    std::fs::rename(&files, s.data_dir.join("files.away")).unwrap();
    std::fs::write(&files, b"not a directory").unwrap();
    let resp = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["status"].clone(), body["database"].clone()),
        (json!("unavailable"), json!("ok"))
    );
    assert!(
        body["storage"].as_str().unwrap().contains("file storage failed"),
        "{body}"
    );
    std::fs::remove_file(&files).unwrap();
    std::fs::rename(s.data_dir.join("files.away"), &files).unwrap();
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let s = TestServer::spawn_with(&[("BACKSPACE_METRICS_TOKEN", "scrape-secret-42")]).await;
    let (status, body) = metrics(&s, None).await;
    assert_eq!(status, 403);
    assert!(body.contains("Authorization: Bearer"), "{body}");
    assert_eq!(metrics(&s, Some("scrape-secret-41")).await.0, 403);
    let (status, text) = metrics(&s, Some("scrape-secret-42")).await;
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE backspace_jobs_total counter"), "{text}");
}

#[tokio::test]
async fn json_logs_trace_every_job_and_hold_no_secret() {
    let log = TempDir::new("backspace-log");
    let path = log.join("server.log");
    let passphrase = "log-test-passphrase-never-printed";
    let s = TestServer::spawn_logging(
        &[
            ("BACKSPACE_LOG_FORMAT", "json"),
            ("BACKSPACE_LOG", "info,sqlx=warn"),
            ("BACKSPACE_REPOSITORY_PASSPHRASE", passphrase),
        ],
        &path,
    )
    .await;
    let token = s.owner_token().await;
    let owner = Auth::bearer(&token);
    let room = s.room(&owner, "Logged").await;
    s.upload(&owner, room, "a.txt", b"hello".to_vec()).await;
    let (_, started) = s
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    let task = started["response"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    drop(s);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let of_job: Vec<&Value> = lines.iter().filter(|l| l["job"] == task.as_str()).collect();
    let messages: Vec<&str> = of_job.iter().filter_map(|l| l["message"].as_str()).collect();
    for expected in ["backup started", "job phase", "backup ended"] {
        assert!(
            messages.contains(&expected),
            "no `{expected}` for the job in {messages:?}"
        );
    }
    assert!(of_job.iter().all(|l| l.get("portal").is_some()), "{of_job:?}");
    for secret in [passphrase, token.as_str(), OWNER_PASSWORD] {
        assert!(!text.contains(secret), "a secret is in the log");
    }
}

/// The portal's audit log records backup, restore, delete, schedule and key events, for its
/// admins only, without any secret.
#[tokio::test]
async fn the_audit_log_records_every_backup_schedule_and_key_event() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Audited").await;
    s.upload(&owner, room, "a.txt", b"audit me".to_vec()).await;
    let (_, started) = s
        .post("/api/2.0/backup/startbackup", &owner, json!({"storageType": 4}))
        .await;
    let id = started["response"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(wait_backup(&s, &owner).await["error"], "");
    let (status, _) = s
        .post("/api/2.0/backup/startrestore", &owner, json!({"backupId": id}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(wait_restore(&s, &Auth::none()).await["error"], "");
    let owner = Auth::bearer(&s.owner_token().await);
    let body = json!({"storageType": 4, "backupsStored": 3, "cronParams": {"period": 0, "hour": 1}});
    assert_eq!(
        s.post("/api/2.0/backup/createbackupschedule", &owner, body).await.0,
        200
    );
    assert_eq!(
        s.call(
            reqwest::Method::DELETE,
            "/api/2.0/backup/deletebackupschedule",
            &owner,
            None
        )
        .await
        .0,
        200
    );
    let (key_id, secret) = s.create_key(&owner, json!({"name": "audited key"})).await;
    assert_eq!(
        s.call(
            reqwest::Method::DELETE,
            &format!("/api/2.0/keys/{key_id}"),
            &owner,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(delete_backup(&s, &owner, &id).await.0, 200);

    let (status, log) = s.get("/api/2.0/security/audit/events/last", &owner).await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["response"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "BackupStarted",
        "BackupCompleted",
        "RestoreStarted",
        "RestoreCompleted",
        "ScheduledBackupSet",
        "ScheduledBackupDeleted",
        "ApiKeyCreated",
        "ApiKeyRevoked",
        "BackupDeleted",
    ] {
        assert!(actions.contains(&expected), "no {expected} in {actions:?}");
    }
    assert!(!log.to_string().contains(&secret), "a key's secret is in the audit log");
    let (_, user) = s.person(&owner, "User").await;
    assert_eq!(s.get("/api/2.0/security/audit/events/last", &user).await.0, 403);
}

/// A full run at trace level: sign-ins (right and wrong passwords), a person with a password,
/// an API key, S3 keys and a backup to S3 (when s3s-fs is here), a repository passphrase, a
/// metrics token, backups, a signed download, a restore, a schedule. The log holds none of the
/// secrets used, nor the signatures of the download links.
#[tokio::test]
async fn a_full_run_at_trace_level_logs_no_secret() {
    let log = TempDir::new("backspace-log-full");
    let path = log.join("server.log");
    let passphrase = "full-run-passphrase-never-printed";
    let metrics_token = "full-run-metrics-token-never-printed";
    let s = TestServer::spawn_logging(
        &[
            ("BACKSPACE_LOG", "trace"),
            ("BACKSPACE_REPOSITORY_PASSPHRASE", passphrase),
            ("BACKSPACE_METRICS_TOKEN", metrics_token),
        ],
        &path,
    )
    .await;
    let mut secrets: Vec<String> = vec![passphrase.into(), metrics_token.into(), OWNER_PASSWORD.into()];

    let wrong = "Wrong-Password-never-printed-1";
    let resp = s
        .http
        .post(s.url("/api/2.0/authentication"))
        .json(&json!({"userName": OWNER_EMAIL, "password": wrong}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    secrets.push(wrong.into());
    let token = s.owner_token().await;
    secrets.push(token.clone());
    let owner = Auth::bearer(&token);
    let (_, person) = s.person(&owner, "User").await;
    let person_token = person.authorization.clone().unwrap();
    secrets.push(person_token.trim_start_matches("Bearer ").to_owned());
    secrets.push("Passw0rd-xyz".into());
    let (_, key) = s.create_key(&owner, json!({"name": "full run"})).await;
    secrets.push(key.clone());
    let by_key = Auth::bearer(&key);
    assert_eq!(metrics(&s, Some(metrics_token)).await.0, 200);

    let room = s.room(&by_key, "Secrets").await;
    let data = bytes(200_000, 31);
    let (status, uploaded) = s.upload(&by_key, room, "a.bin", data.clone()).await;
    assert_eq!(status, 200, "{uploaded}");

    // Into the encrypted repository (DataStore), then a signed download and a restore.
    let (status, v) = s
        .post("/api/2.0/backup/startbackup", &by_key, json!({"storageType": 4}))
        .await;
    assert_eq!(status, 200, "{v}");
    let done = wait_backup(&s, &by_key).await;
    assert_eq!(done["error"], "", "{done}");
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &by_key).await;
    let record = history["response"][0].clone();
    let link = record["link"].as_str().unwrap().to_owned();
    assert!(!fetch(&s, &link).await.is_empty());
    let signature = link.split("signature=").nth(1).unwrap().to_owned();
    secrets.push(signature);
    let (status, v) = s
        .post(
            "/api/2.0/backup/startrestore",
            &by_key,
            json!({"backupId": record["id"], "storageType": 4}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&s, &by_key).await["error"], "");
    let (status, back) = s
        .download(&by_key, uploaded["response"][0]["id"].as_i64().unwrap())
        .await;
    assert_eq!((status, back == data), (200, true), "the restore brought the file back");

    // S3 keys, a backup to S3, and a schedule naming the bucket.
    let s3 = external::S3Fs::spawn();
    if let Some(s3) = &s3 {
        secrets.push(s3.secret.clone());
        let (status, v) = s
            .post(
                "/api/2.0/settings/authservice",
                &owner,
                json!({"name": "s3", "props": [
                    {"name": "acesskey", "value": s3.access},
                    {"name": "secretaccesskey", "value": s3.secret},
                ]}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = s
            .post(
                "/api/2.0/backup/startbackup",
                &by_key,
                json!({"storageType": 5, "storageParams": s3.params()}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(wait_backup(&s, &by_key).await["error"], "");
        let (status, v) = s
            .post(
                "/api/2.0/backup/createbackupschedule",
                &by_key,
                json!({"storageType": 5, "storageParams": s3.params(), "backupsStored": 3,
                       "cronParams": {"period": 0, "hour": 3, "day": 0}}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    } else {
        eprintln!("s3s-fs not found: the S3 part of this run is skipped");
    }
    drop(s);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines().count() > 50,
        "a trace run logs much more than this:\n{text}"
    );
    for secret in &secrets {
        if let Some(line) = text.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a secret is in the log: {line}");
        }
    }
}

/// Garbage collection shows in the metrics: a deleted repository backup's packs are collected,
/// counted as a finished run, their bytes and packs as freed.
#[tokio::test]
async fn metrics_count_garbage_collections_and_what_they_freed() {
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", "metrics test passphrase")]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Collected").await;
    assert_eq!(s.upload(&owner, room, "a.bin", bytes(3 << 20, 8)).await.0, 200);
    let done = backup(&s, &owner, json!({"storageType": 4})).await;
    let (_, before) = metrics(&s, None).await;
    assert_eq!(sample(&before, "backspace_gc_freed_bytes_total"), Some(0.0), "{before}");
    let id = done["taskId"].as_str().unwrap().to_owned();
    assert_eq!(delete_backup(&s, &owner, &id).await.0, 200);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let (_, text) = metrics(&s, None).await;
        if sample(&text, "backspace_gc_runs_total{outcome=\"done\"}").unwrap_or(0.0) >= 1.0 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "no collection finished: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // The only backup held a 3 MiB file that does not compress: its packs are gone.
    let freed = sample(&text, "backspace_gc_freed_bytes_total").unwrap();
    assert!(freed >= (3 << 20) as f64, "freed {freed} bytes: {text}");
    assert!(
        sample(&text, "backspace_gc_deleted_packs_total").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "backspace_gc_runs_total{outcome=\"failed\"}"),
        Some(0.0),
        "{text}"
    );
}
