//! Portal isolation under concurrency: three portals (the default one and two registered ones)
//! back up and restore at the same time, into the same `Local` directory and the same server
//! store, hence into shared, deduplicating repositories (every portal holds one identical file,
//! so their chunks are shared). After every round each portal's history lists exactly its own
//! backups, its progress endpoints show exactly its own jobs, its files are exactly its own
//! bytes, its download links serve archives with its data and no other portal's, and the other
//! portals' ids are unknown to it. A cancelled backup, a failed restore and a deleted history
//! of one portal leave the others' jobs and backups whole; a garbage collection started by one
//! portal's delete does not break a download of another portal's backup under way.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const PASSPHRASE: &str = "isolation passphrase";
const MIB: usize = 1 << 20;
/// Bytes every portal holds, so the portals' backups share chunks in a shared repository.
const COMMON_SEED: u64 = 7;

/// A file title and its bytes.
type Files = BTreeMap<String, Vec<u8>>;

struct Portal {
    alias: String,
    auth: Auth,
    /// No credential, the portal named by `Origin` (the restore progress is anonymous).
    anonymous: Auth,
    id: i64,
    room: i64,
    /// What the room holds now.
    files: Files,
    /// The backups the history must list, with the files each holds, in creation order.
    backups: Vec<(String, Files)>,
    last_backup: Option<String>,
    last_restore: Option<String>,
}

impl Portal {
    fn backup_ids(&self) -> BTreeSet<String> {
        self.backups.iter().map(|(id, _)| id.clone()).collect()
    }

    fn snapshot(&self, id: &str) -> &Files {
        &self.backups.iter().find(|(b, _)| b == id).unwrap().1
    }
}

/// Runs futures concurrently on this task and returns their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futures.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

async fn portal(s: &TestServer, alias: &str, auth: Auth, anonymous: Auth, seed: u64) -> Portal {
    let mut p = empty_portal(s, alias, auth, anonymous).await;
    // The same file titles in every portal, different bytes but for one file.
    put(s, &mut p, "common.bin", bytes(3 * MIB, COMMON_SEED)).await;
    put(s, &mut p, "own.bin", bytes(MIB + seed as usize, seed)).await;
    put(s, &mut p, "name.txt", format!("this is portal {alias}").into_bytes()).await;
    put(s, &mut p, "empty.txt", Vec::new()).await;
    p
}

/// A portal with an empty room of the same title as every other portal's.
async fn empty_portal(s: &TestServer, alias: &str, auth: Auth, anonymous: Auth) -> Portal {
    let (status, v) = s.get("/api/2.0/portal", &auth).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["tenantAlias"], alias, "{v}");
    let id = v["response"]["tenantId"].as_i64().unwrap();
    let room = s.room(&auth, "Projects").await;
    Portal {
        alias: alias.to_owned(),
        auth,
        anonymous,
        id,
        room,
        files: Files::new(),
        backups: Vec::new(),
        last_backup: None,
        last_restore: None,
    }
}

/// Uploads a file into the portal's room; returns its id.
async fn put(s: &TestServer, p: &mut Portal, title: &str, data: Vec<u8>) -> i64 {
    let (status, v) = s.upload(&p.auth, p.room, title, data.clone()).await;
    assert_eq!(status, 200, "{v}");
    p.files.insert(title.to_owned(), data);
    v["response"][0]["id"].as_i64().unwrap()
}

/// The files of the portal's room, as the API lists and serves them.
async fn room_files(s: &TestServer, p: &Portal) -> Files {
    let (status, v) = s.get(&format!("/api/2.0/files/{}", p.room), &p.auth).await;
    assert_eq!(status, 200, "{}: {v}", p.alias);
    assert_eq!(v["response"]["folders"], json!([]), "{}: {v}", p.alias);
    let mut out = Files::new();
    for f in v["response"]["files"].as_array().unwrap() {
        let (status, data) = s.download(&p.auth, f["id"].as_i64().unwrap()).await;
        assert_eq!(status, 200, "{}: {f}", p.alias);
        let title = f["title"].as_str().unwrap().to_owned();
        assert!(out.insert(title.clone(), data).is_none(), "{}: {title} twice", p.alias);
    }
    out
}

fn local(dir: &Path) -> Value {
    json!({"storageType": "Local", "storageParams": [{"key": "filePath", "value": dir.to_str().unwrap()}]})
}

fn datastore() -> Value {
    json!({"storageType": "DataStore"})
}

/// Starts a backup; returns its task id.
async fn start_backup(s: &TestServer, p: &Portal, body: Value) -> String {
    let (status, v) = s.post("/api/2.0/backup/startbackup", &p.auth, body).await;
    assert_eq!(status, 200, "{}: {v}", p.alias);
    assert_eq!(v["response"]["tenantId"], p.id, "{}: {v}", p.alias);
    assert_eq!(v["response"]["backupProgressEnum"], 0, "{}: {v}", p.alias);
    v["response"]["taskId"].as_str().unwrap().to_owned()
}

/// Waits for the portal's backup `task`, which must be the one its progress shows throughout.
async fn finish_backup(s: &TestServer, p: &Portal, task: &str) -> Value {
    let done = wait_backup(s, &p.auth).await;
    assert_eq!(done["taskId"], task, "{}: another job in the progress: {done}", p.alias);
    assert_eq!(done["tenantId"], p.id, "{}: {done}", p.alias);
    done
}

/// Records a finished, successful backup as one the history must list.
fn backed_up(p: &mut Portal, task: String, done: &Value) {
    assert_eq!(
        (done["error"].clone(), done["status"].clone(), done["progress"].clone()),
        (json!(""), json!(2), json!(100)),
        "{}: {done}",
        p.alias
    );
    p.backups.push((task.clone(), p.files.clone()));
    p.last_backup = Some(task);
}

async fn start_restore(s: &TestServer, p: &Portal, body: Value) -> String {
    let (status, v) = s.post("/api/2.0/backup/startrestore", &p.auth, body).await;
    assert_eq!(status, 200, "{}: {v}", p.alias);
    assert_eq!(v["response"]["backupProgressEnum"], 1, "{}: {v}", p.alias);
    assert_eq!(v["response"]["tenantId"], p.id, "{}: {v}", p.alias);
    v["response"]["taskId"].as_str().unwrap().to_owned()
}

async fn finish_restore(s: &TestServer, p: &Portal, task: &str) -> Value {
    let done = wait_restore(s, &p.anonymous).await;
    assert_eq!(done["taskId"], task, "{}: another job in the progress: {done}", p.alias);
    assert_eq!(done["tenantId"], p.id, "{}: {done}", p.alias);
    done
}

/// Restores every portal from one of its own backups, all at once.
async fn restore_all(s: &TestServer, portals: &mut [Portal], pick: impl Fn(&Portal) -> String) {
    let picks: Vec<String> = portals.iter().map(&pick).collect();
    let tasks = join_all(
        portals
            .iter()
            .zip(&picks)
            .map(|(p, id)| start_restore(s, p, json!({"backupId": id, "notify": false})))
            .collect(),
    )
    .await;
    let done = join_all(
        portals
            .iter()
            .zip(&tasks)
            .map(|(p, t)| finish_restore(s, p, t))
            .collect(),
    )
    .await;
    for ((p, d), (id, task)) in portals.iter_mut().zip(done).zip(picks.into_iter().zip(tasks)) {
        assert_eq!(
            (d["error"].clone(), d["progress"].clone()),
            (json!(""), json!(100)),
            "{}: {d}",
            p.alias
        );
        p.files = p.snapshot(&id).clone();
        p.last_restore = Some(task);
    }
}

/// The entries of a `.tar.zst` archive.
fn entries(archive: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut tar = tar::Archive::new(zstd::stream::read::Decoder::new(archive).unwrap());
    for e in tar.entries().unwrap() {
        let mut data = Vec::new();
        e.unwrap().read_to_end(&mut data).unwrap();
        out.push(data);
    }
    out
}

/// Asserts that every portal sees exactly its own history, jobs and files, and nothing of the
/// others'.
async fn assert_isolated(s: &TestServer, portals: &[Portal]) {
    for p in portals {
        let (status, history) = s.get("/api/2.0/backup/getbackuphistory", &p.auth).await;
        assert_eq!(status, 200, "{}: {history}", p.alias);
        let records = history["response"].as_array().unwrap();
        let listed: BTreeSet<String> = records.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(
            listed,
            p.backup_ids(),
            "{}: the history is not this portal's own",
            p.alias
        );
        for r in records {
            let name = r["fileName"].as_str().unwrap();
            assert!(name.starts_with(&format!("{}_", p.alias)), "{}: {r}", p.alias);
        }

        let (status, v) = s.get("/api/2.0/backup/getbackupprogress", &p.auth).await;
        assert_eq!(status, 200, "{}: {v}", p.alias);
        match &p.last_backup {
            Some(task) => {
                assert_eq!(v["response"]["taskId"], task.as_str(), "{}: {v}", p.alias);
                assert_eq!(v["response"]["tenantId"], p.id, "{}: {v}", p.alias);
            }
            None => assert!(v.get("response").is_none(), "{}: {v}", p.alias),
        }
        let (status, v) = s.get("/api/2.0/backup/getrestoreprogress", &p.anonymous).await;
        assert_eq!(status, 200, "{}: {v}", p.alias);
        match &p.last_restore {
            Some(task) => {
                assert_eq!(v["response"]["taskId"], task.as_str(), "{}: {v}", p.alias);
                assert_eq!(v["response"]["tenantId"], p.id, "{}: {v}", p.alias);
            }
            None => assert!(v.get("response").is_none(), "{}: {v}", p.alias),
        }

        assert_eq!(
            room_files(s, p).await,
            p.files,
            "{}: the files are not its own",
            p.alias
        );

        // The newest backup's link serves this portal's data and nothing only others hold.
        let Some(newest) = p.backups.last().map(|(id, _)| id.as_str()) else {
            continue;
        };
        let record = records.iter().find(|r| r["id"] == newest).unwrap();
        let link = record["link"].as_str().unwrap();
        let archive = entries(&fetch(s, link).await);
        let own: BTreeSet<&Vec<u8>> = p.snapshot(newest).values().collect();
        for (title, data) in p.snapshot(newest) {
            assert!(
                archive.contains(data),
                "{}: {title} is not in its backup {newest}",
                p.alias
            );
        }
        for q in portals.iter().filter(|q| q.id != p.id) {
            let theirs = q.files.iter().chain(q.backups.iter().flat_map(|(_, f)| f.iter()));
            for (title, data) in theirs.filter(|(_, d)| !own.contains(d)) {
                assert!(
                    !archive.contains(data),
                    "{}'s backup holds {title} of {}",
                    p.alias,
                    q.alias
                );
            }
        }

        // The others' ids are unknown here, and a link names one backup only.
        for q in portals.iter().filter(|q| q.id != p.id) {
            let Some(theirs) = q.backups.last().map(|(id, _)| id.as_str()) else {
                continue;
            };
            let (status, v) = delete_backup(s, &p.auth, theirs).await;
            assert_error(status, &v, 404, "The backup was not found");
            let body = json!({"backupId": theirs, "notify": false});
            let (status, v) = s.post("/api/2.0/backup/startrestore", &p.auth, body).await;
            assert_error(status, &v, 404, "Unable to find the specified file");
            let (status, v) = s.get(&format!("/api/2.0/backup/verifybackup/{theirs}"), &p.auth).await;
            assert_error(status, &v, 404, "The backup was not found");
            let forged = link.replace(newest, theirs);
            let (status, v) = s.get(&forged, &Auth::none()).await;
            assert_eq!(status, 403, "{}: a link re-pointed at {theirs}: {v}", p.alias);
        }
    }
}

/// Pack files of a repository.
fn packs(repository: &Path) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&repository.join("packs"), &mut out);
    out
}

/// Sends a GET whose reader holds back: with a small receive buffer, the server's writer
/// stalls a few MiB into the body until the test reads on.
async fn stalled_get(s: &TestServer, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// The body of a raw HTTP/1.1 answer with a chunked body (as a built archive is sent); an
/// error when the status is not 200 or the body lacks its last chunk (the server broke off).
fn chunked_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") || !head.contains("transfer-encoding: chunked") {
        return Err(format!("unexpected answer: {head}"));
    }
    let (mut rest, mut body) = (&raw[head_end + 4..], Vec::new());
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size is cut off")?;
        let size = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).map_err(|e| e.to_string())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(format!("cut off after {} body bytes", body.len() + rest.len()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[tokio::test]
async fn portals_backing_up_and_restoring_at_once_stay_apart() {
    let root = TempDir::new("backspace-isolation");
    let s = TestServer::spawn_with(&[
        ("BACKSPACE_LOCAL_BACKUP_ROOTS", root.to_str().unwrap()),
        ("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE),
    ])
    .await;
    let owner = Auth::bearer(&s.owner_token().await);
    let mut portals = vec![portal(&s, "localhost", owner, Auth::none(), 11).await];
    for (alias, seed) in [("iso-alpha", 12), ("iso-beta", 13)] {
        let (origin, auth, _) = register(&s, alias).await;
        portals.push(portal(&s, alias, auth, Auth::none().at(&origin), seed).await);
    }
    assert_isolated(&s, &portals).await;

    // Rounds: every portal backs up at once (all into the one Local directory, then all into
    // the server's store), then every portal restores at once.
    for round in 0..2 {
        for p in portals.iter_mut() {
            let data = bytes(200_000 + round, p.id as u64 * 100 + round as u64);
            put(&s, p, &format!("round-{round}.bin"), data).await;
        }
        let target = if round == 0 { local(&root) } else { datastore() };
        let tasks = join_all(portals.iter().map(|p| start_backup(&s, p, target.clone())).collect()).await;
        let distinct: BTreeSet<&String> = tasks.iter().collect();
        assert_eq!(distinct.len(), portals.len(), "{tasks:?}");
        // Each portal's progress shows its own job, running or not.
        for (p, task) in portals.iter().zip(&tasks) {
            let (status, v) = s.get("/api/2.0/backup/getbackupprogress", &p.auth).await;
            assert_eq!(
                (status, v["response"]["taskId"].as_str()),
                (200, Some(task.as_str())),
                "{v}"
            );
        }
        let done = join_all(
            portals
                .iter()
                .zip(&tasks)
                .map(|(p, t)| finish_backup(&s, p, t))
                .collect(),
        )
        .await;
        for ((p, task), d) in portals.iter_mut().zip(tasks).zip(done) {
            backed_up(p, task, &d);
        }
        assert_isolated(&s, &portals).await;

        // Changes the restores must undo.
        for p in portals.iter_mut() {
            put(&s, p, "later.bin", bytes(5000, p.id as u64 + 500)).await;
        }
        restore_all(&s, &mut portals, |p| match round {
            0 => p.backups.last().unwrap().0.clone(),
            _ => p.backups[0].0.clone(),
        })
        .await;
        assert_isolated(&s, &portals).await;
    }

    // One portal backs up while another restores; the third answers throughout.
    let [quiet, alpha, beta] = &mut portals[..] else {
        unreachable!()
    };
    put(&s, alpha, "big.bin", bytes(16 * MIB, 77)).await;
    let backup = start_backup(&s, alpha, local(&root)).await;
    let oldest = beta.backups[0].0.clone();
    let restore = start_restore(&s, beta, json!({"backupId": oldest})).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = s.get("/api/2.0/backup/getbackupprogress", &alpha.auth).await;
        assert_eq!(
            (status, v["response"]["taskId"].as_str()),
            (200, Some(backup.as_str())),
            "{v}"
        );
        let alpha_done = v["response"]["isCompleted"] == true;
        let (status, v) = s.get("/api/2.0/backup/getrestoreprogress", &beta.anonymous).await;
        assert_eq!(
            (status, v["response"]["taskId"].as_str()),
            (200, Some(restore.as_str())),
            "{v}"
        );
        let beta_done = v["response"]["isCompleted"] == true;
        // Locked or not, beta's backup progress is its own; alpha and the quiet portal answer.
        let (status, v) = s.get("/api/2.0/backup/getbackupprogress", &beta.auth).await;
        match status {
            200 => assert_eq!(v["response"]["taskId"].as_str(), beta.last_backup.as_deref(), "{v}"),
            _ => assert_error(status, &v, 403, "being restored"),
        }
        for p in [&*alpha, &*quiet] {
            let (status, v) = s.get("/api/2.0/backup/getbackuphistory", &p.auth).await;
            assert_eq!(status, 200, "{}: {v}", p.alias);
            let (status, v) = s.get(&format!("/api/2.0/files/{}", p.room), &p.auth).await;
            assert_eq!(status, 200, "{}: {v}", p.alias);
        }
        if alpha_done && beta_done {
            break;
        }
        assert!(Instant::now() < deadline, "the backup and the restore did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = finish_backup(&s, alpha, &backup).await;
    backed_up(alpha, backup, &done);
    let done = finish_restore(&s, beta, &restore).await;
    assert_eq!(done["error"], "", "{done}");
    beta.files = beta.snapshot(&oldest).clone();
    beta.last_restore = Some(restore);
    assert_isolated(&s, &portals).await;

    // A failed restore of one portal and a backup of another at once: the failure stays with
    // its portal, which is left as it was and unlocked.
    let [_, alpha, beta] = &mut portals[..] else {
        unreachable!()
    };
    let bogus = put(&s, alpha, "not-a-backup.tar.zst", bytes(64 * 1024, 99)).await;
    let body = json!({"backupId": "", "storageType": 0, "storageParams": [{"key": "filePath", "value": bogus}]});
    let (restore, backup) = tokio::join!(start_restore(&s, alpha, body), start_backup(&s, beta, datastore()));
    let (failed, done) = tokio::join!(finish_restore(&s, alpha, &restore), finish_backup(&s, beta, &backup));
    assert!(failed["error"].as_str().unwrap().contains("invalid"), "{failed}");
    assert_eq!(failed["status"], 2, "{failed}");
    alpha.last_restore = Some(restore);
    backed_up(beta, backup, &done);
    assert_isolated(&s, &portals).await;

    // Two backups into the one Local repository at once; one is cancelled, the other is not
    // touched, and a cancel in the third portal (which runs nothing) cancels nothing.
    let [quiet, alpha, beta] = &mut portals[..] else {
        unreachable!()
    };
    put(&s, beta, "big.bin", bytes(16 * MIB, 78)).await;
    put(&s, alpha, "big-2.bin", bytes(8 * MIB, 79)).await;
    let (kept, cancelled) = tokio::join!(
        start_backup(&s, alpha, local(&root)),
        start_backup(&s, beta, local(&root))
    );
    let (status, v) = s.post("/api/2.0/backup/cancelbackup", &beta.auth, json!({})).await;
    if (status, &v["response"]) != (200, &json!(true)) {
        // Which job the cancel found finished, and how it ended.
        let (_, progress) = s.get("/api/2.0/backup/getbackupprogress", &beta.auth).await;
        panic!("cancelling beta's running backup answered {status} {v}; its progress: {progress}");
    }
    let (status, v) = s.post("/api/2.0/backup/cancelbackup", &quiet.auth, json!({})).await;
    assert_eq!((status, &v["response"]), (200, &json!(false)), "{v}");
    let (done, stopped) = tokio::join!(finish_backup(&s, alpha, &kept), finish_backup(&s, beta, &cancelled));
    assert_eq!(
        (stopped["status"].clone(), stopped["warning"].clone()),
        (json!(3), json!("Backup cancelled")),
        "{stopped}"
    );
    beta.last_backup = Some(cancelled);
    backed_up(alpha, kept, &done);
    assert_isolated(&s, &portals).await;

    // One portal deletes its whole history; the others' backups, which share chunks with its
    // (the common file), stay whole once its repositories are collected, and still restore.
    let local_repo = root.join("backspace-repository");
    let before = packs(&local_repo);
    let [_, alpha, beta] = &mut portals[..] else {
        unreachable!()
    };
    let (status, v) = s
        .call(Method::DELETE, "/api/2.0/backup/deletebackuphistory", &alpha.auth, None)
        .await;
    assert_eq!((status, &v["response"]), (200, &json!(true)), "{v}");
    alpha.backups.clear();
    // Alpha's large files are its own, in whole packs of the Local repository: their collection
    // must delete some. In the DataStore repository its few unique bytes may share packs with
    // the others' (three backups went into it at once, so how they mix depends on timing), which
    // a collection rightly keeps: there it may delete nothing (it did so once in ten runs under
    // load), and the test does not wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while packs(&local_repo).is_superset(&before) {
        assert!(Instant::now() < deadline, "the Local repository was not collected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let oldest = beta.backups[0].0.clone();
    let restore = start_restore(&s, beta, json!({"backupId": oldest})).await;
    let done = finish_restore(&s, beta, &restore).await;
    assert_eq!(done["error"], "", "{done}");
    beta.files = beta.snapshot(&oldest).clone();
    beta.last_restore = Some(restore);
    for p in &portals {
        for (id, _) in &p.backups {
            let (status, v) = s.get(&format!("/api/2.0/backup/verifybackup/{id}"), &p.auth).await;
            assert_eq!((status, &v["response"]["ok"]), (200, &json!(true)), "{}: {v}", p.alias);
        }
    }
    assert_isolated(&s, &portals).await;
}

/// Regression: a garbage collection started by one portal's delete rewrites packs whose chunks
/// another portal's backup shares (deduplicated), then deletes the old packs. A download of
/// that other backup that had loaded the repository's index before broke off when it reached
/// a moved chunk ("blob … not found"); readers now look a chunk up again when its pack is gone.
#[tokio::test]
async fn a_collection_for_one_portal_does_not_break_a_download_of_another() {
    let s = TestServer::spawn_with(&[("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE)]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let mut alpha = empty_portal(&s, "localhost", owner, Auth::none()).await;
    let (origin, auth, _) = register(&s, "iso-gamma").await;
    let mut beta = empty_portal(&s, "iso-gamma", auth, Auth::none().at(&origin)).await;
    // Alpha's files: its own between small shared ones, so that alpha's packs hold a little
    // of what beta uses and much that dies with alpha's backup (and are rewritten).
    let shared: Vec<Vec<u8>> = (0..8).map(|i| bytes(200 * 1024 + i, 40 + i as u64)).collect();
    for (i, data) in shared.iter().enumerate() {
        put(&s, &mut alpha, &format!("alpha-{i}.bin"), bytes(MIB + i, 30 + i as u64)).await;
        put(&s, &mut alpha, &format!("shared-{i}.bin"), data.clone()).await;
    }
    let task = start_backup(&s, &alpha, datastore()).await;
    let done = finish_backup(&s, &alpha, &task).await;
    backed_up(&mut alpha, task, &done);
    // Beta's backup: a large file of its own first, then the shared ones (deduplicated
    // against alpha's packs), read last by a download.
    put(&s, &mut beta, "beta-only.bin", bytes(24 * MIB, 24)).await;
    for (i, data) in shared.iter().enumerate() {
        put(&s, &mut beta, &format!("shared-{i}.bin"), data.clone()).await;
    }
    let task = start_backup(&s, &beta, datastore()).await;
    let done = finish_backup(&s, &beta, &task).await;
    backed_up(&mut beta, task, &done);
    let (_, history) = s.get("/api/2.0/backup/getbackuphistory", &beta.auth).await;
    let link = history["response"][0]["link"].as_str().unwrap().to_owned();

    // Beta's download starts and stalls (its reader holds back) within the large file, while
    // alpha's backup is deleted and its packs collected; then it reads on.
    let store_repo = s.data_dir.join("files/repository");
    let mut download = stalled_get(&s, &link).await;
    let mut archive = vec![0u8; 64 * 1024];
    download.read_exact(&mut archive).await.unwrap();
    let before = packs(&store_repo);
    let (status, v) = delete_backup(&s, &alpha.auth, &alpha.backups[0].0).await;
    assert_eq!((status, &v["response"]), (200, &json!(true)), "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while packs(&store_repo).is_superset(&before) {
        assert!(Instant::now() < deadline, "the repository was not collected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    download.read_to_end(&mut archive).await.unwrap();
    let archive = chunked_body(&archive).unwrap_or_else(|e| panic!("the download broke off: {e}"));
    let archive = entries(&archive);
    for (title, data) in &beta.files {
        assert!(archive.contains(data), "{title} is missing from the download");
    }
    // The collection moved chunks, and lost none that beta uses.
    let (status, v) = s
        .get(
            &format!("/api/2.0/backup/verifybackup/{}", beta.backups[0].0),
            &beta.auth,
        )
        .await;
    assert_eq!((status, &v["response"]["ok"]), (200, &json!(true)), "{v}");
}

/// The `Local` roots are the server's, shared by its portals: one portal's admin cannot restore
/// another portal's plain archive from there by its path (it would read that portal's files),
/// while the portal that made it can, and the refusal leaves both portals as they were.
#[tokio::test]
async fn a_portal_cannot_restore_another_portals_local_archive_by_path() {
    let root = TempDir::new("backspace-isolation-path");
    // No passphrase: Local backups are plain archives, one file each.
    let s = TestServer::spawn_with(&[("BACKSPACE_LOCAL_BACKUP_ROOTS", root.to_str().unwrap())]).await;
    // Both are registered portals: the default portal's owner is the server's admin.
    let (origin, auth, _) = register(&s, "iso-delta").await;
    let home = portal(&s, "iso-delta", auth, Auth::none().at(&origin), 21).await;
    let (origin, auth, _) = register(&s, "iso-gamma").await;
    let mut other = portal(&s, "iso-gamma", auth, Auth::none().at(&origin), 22).await;

    let task = start_backup(&s, &other, local(&root)).await;
    let done = finish_backup(&s, &other, &task).await;
    backed_up(&mut other, task, &done);
    let archive = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .expect("the other portal's archive is in the root");
    let by_path = json!({"backupId": "", "storageType": 3,
        "storageParams": [{"key": "filePath", "value": archive.to_str().unwrap()}]});

    let before = (room_files(&s, &home).await, room_files(&s, &other).await);
    let (status, v) = s
        .post("/api/2.0/backup/startrestore", &home.auth, by_path.clone())
        .await;
    assert_error(status, &v, 403, "another portal");
    let (status, v) = s.get("/api/2.0/backup/getrestoreprogress", &home.auth).await;
    assert!(status == 200 && v["response"].is_null(), "no restore job was made: {v}");
    assert_eq!((room_files(&s, &home).await, room_files(&s, &other).await), before);

    // The portal that made it restores it by the same path.
    put(&s, &mut other, "later.txt", b"after the backup".to_vec()).await;
    let task = start_restore(&s, &other, by_path).await;
    let done = finish_restore(&s, &other, &task).await;
    assert_eq!(done["error"], "", "{done}");
    assert_eq!(
        room_files(&s, &other).await,
        before.1,
        "the other portal is back as backed up"
    );
}
