//! Crash tests: the server is killed with SIGKILL at seeded moments of a backup (into a
//! repository and into a plain archive), a restore, a delete and its garbage collection, and a
//! scheduled run; it is started again on the same data and the invariants are checked:
//!
//! - (a) it starts and answers `/readyz` without manual repair;
//! - (b) the interrupted job reports failure, or, when it had finished, its result is complete;
//! - (c) every history record restores byte for byte what its backup captured;
//! - (d) nothing a record needs is missing (`verifybackup` answers ok for each);
//! - (e) after the next cleanup nothing unreferenced survives: no temporary or partial file, no
//!   file bytes no row uses, no snapshot without a record, no pack no index names or no snapshot
//!   uses, no lock;
//! - (f) after a killed restore the portal is exactly as before or exactly as the backup, and
//!   not locked.
//!
//! `BACKSPACE_CRASH_SEED` (default [`DEFAULT_SEED`]) and `BACKSPACE_CRASH_ITERATIONS` (default
//! [`DEFAULT_ITERATIONS`]) choose the run; the seed and each iteration's choice are printed, so a
//! failure repeats with the same seed. Also here: a disk that fills up during a backup (a small
//! tmpfs; needs the right to mount), and the metadata database (PostgreSQL, through a proxy the
//! test cuts) going away in the middle of a backup.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "crash test passphrase";
const DEFAULT_SEED: u64 = 20_261_129;
/// Keeps the whole file within about three minutes in a debug build on two cores.
const DEFAULT_ITERATIONS: usize = 24;
/// How long the checks wait for the cleanup after a restart before they call what is left a leak.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(20);

/// A seeded generator (SplitMix64): every choice of a run comes from it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// A file of the portal, as the test made it: its bytes are `bytes(len, seed)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Spec {
    len: usize,
    seed: u64,
}

/// The files of the test room, by title.
type Content = BTreeMap<String, Spec>;

/// The bytes of a file the test made.
type Made = std::sync::Arc<Vec<u8>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// `DataStore`, which holds an encrypted repository.
    Repository,
    /// `Local`, which keeps one plain archive per backup (`BACKSPACE_ARCHIVE_TARGETS=local`;
    /// a repository with [`Setup::local_repository`]).
    Archive,
}

/// A backup the server reported complete, and what it captured.
#[derive(Clone, Debug)]
struct Expected {
    target: Target,
    content: Content,
    scheduled: bool,
    /// How many backups the test recorded before this one (record ids are random: choices
    /// follow this order, so that a seed repeats them).
    order: usize,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Backup(Target),
    Restore,
    DeleteAndCollect,
    Scheduled(Target),
}

/// When the kill lands.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// This many milliseconds after the operation was started.
    Delay(u64),
    /// When the job's progress first reaches this percentage.
    Progress(i64),
    /// When this many new files (packs, staged files) or, for a plain archive, this many KiB of
    /// the archive, appeared on disk; for a delete, when this many packs (or the archive) are
    /// gone.
    Disk(u64),
    /// For a delete: when a collection's lock appears in the repository.
    Collecting,
}

/// What the test saw when it killed.
#[derive(Debug)]
enum Landed {
    /// The job (or collection) still ran.
    Inside(String),
    /// The job had completed before the moment came.
    After,
}

/// The server, the data it keeps, and the test's model of what it must hold.
struct Harness {
    server: TestServer,
    /// Killed instances: kept so that dropping them (which removes the data directory) waits
    /// for the end of the test.
    dead: Vec<TestServer>,
    env: Vec<(&'static str, String)>,
    _roots: TempDir,
    local_dir: PathBuf,
    owner: Auth,
    room: i64,
    current: Content,
    backups: BTreeMap<String, Expected>,
    next_file: u64,
    rng: Rng,
    violations: Vec<String>,
    setup: Setup,
    /// The bytes of the files made, generated once (unoptimised, generating them is slower than
    /// the server's work).
    made: std::sync::Mutex<BTreeMap<(usize, u64), Made>>,
}

/// How a harness's server keeps its backups.
#[derive(Default)]
struct Setup {
    /// The `Local` target keeps a repository rather than one plain archive per backup.
    local_repository: bool,
    /// The file store's directory (`BACKSPACE_FILES_URL`), instead of the data directory's.
    files: Option<PathBuf>,
    /// The metadata database, instead of a fresh one of the test run's kind.
    database_url: Option<String>,
    /// More environment for the server.
    env: Vec<(&'static str, String)>,
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn bytes_under(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum()
}

impl Harness {
    async fn new(seed: u64) -> Self {
        Self::with(seed, Setup::default()).await
    }

    async fn with(seed: u64, setup: Setup) -> Self {
        let roots = TempDir::new("backspace-crash-roots");
        let local_dir = roots.join("local");
        std::fs::create_dir_all(&local_dir).unwrap();
        let mut env = vec![
            ("BACKSPACE_REPOSITORY_PASSPHRASE", PASSPHRASE.to_owned()),
            ("BACKSPACE_LOCAL_BACKUP_ROOTS", roots.display().to_string()),
        ];
        if !setup.local_repository {
            env.push(("BACKSPACE_ARCHIVE_TARGETS", "local".to_owned()));
        }
        if let Some(files) = &setup.files {
            env.push(("BACKSPACE_FILES_URL", format!("file://{}", files.display())));
        }
        env.extend(setup.env.iter().cloned());
        let server = match &setup.database_url {
            Some(url) => TestServer::spawn_on_url(url, &refs(&env)).await,
            None => TestServer::spawn_with(&refs(&env)).await,
        };
        let owner = Auth::bearer(&server.owner_token().await);
        let room = server.room(&owner, "Crash").await;
        let mut h = Self {
            server,
            dead: Vec::new(),
            env,
            _roots: roots,
            local_dir,
            owner,
            room,
            current: Content::new(),
            backups: BTreeMap::new(),
            next_file: 0,
            rng: Rng(seed),
            violations: Vec::new(),
            setup,
            made: Default::default(),
        };
        for _ in 0..3 {
            let len = h.rng.range(1 << 20, 4 << 20) as usize;
            h.add_file(len).await;
        }
        h
    }

    /// The root of the server's file store.
    fn files(&self) -> PathBuf {
        match &self.setup.files {
            Some(dir) => dir.clone(),
            None => self.server.data_dir.join("files"),
        }
    }

    fn repo_dir(&self) -> PathBuf {
        self.files().join("repository")
    }

    /// The repository of the `Local` target, when it keeps one.
    fn local_repo_dir(&self) -> Option<PathBuf> {
        self.setup
            .local_repository
            .then(|| self.local_dir.join("backspace-repository"))
    }

    fn violation(&mut self, what: String) {
        eprintln!("  VIOLATION: {what}");
        self.violations.push(what);
    }

    async fn add_file(&mut self, len: usize) {
        self.next_file += 1;
        let title = format!("f{:03}.bin", self.next_file);
        let spec = Spec {
            len,
            seed: self.rng.next() | 1,
        };
        let (status, v) = self
            .server
            .upload(&self.owner, self.room, &title, self.bytes_of(spec).to_vec())
            .await;
        assert_eq!(status, 200, "uploading {title}: {v}");
        self.current.insert(title, spec);
    }

    /// The bytes of a file the test made.
    fn bytes_of(&self, spec: Spec) -> Made {
        let mut made = self.made.lock().unwrap();
        made.entry((spec.len, spec.seed))
            .or_insert_with(|| std::sync::Arc::new(bytes(spec.len, spec.seed)))
            .clone()
    }

    /// Forgets the bytes of files no longer in the portal or any backup.
    fn forget_unused_bytes(&self) {
        let used: BTreeSet<(usize, u64)> = std::iter::once(&self.current)
            .chain(self.backups.values().map(|e| &e.content))
            .flat_map(|c| c.values().map(|s| (s.len, s.seed)))
            .collect();
        self.made.lock().unwrap().retain(|k, _| used.contains(k));
    }

    /// The room's files: title → id.
    async fn listing(&self) -> BTreeMap<String, i64> {
        let (status, v) = self
            .server
            .get(&format!("/api/2.0/files/{}", self.room), &self.owner)
            .await;
        assert_eq!(status, 200, "listing the room: {v}");
        v["response"]["files"]
            .as_array()
            .unwrap_or_else(|| panic!("no files in {v}"))
            .iter()
            .map(|f| (f["title"].as_str().unwrap().to_owned(), f["id"].as_i64().unwrap()))
            .collect()
    }

    /// Changes the portal before a backup: a new large file (so that the backup writes new packs
    /// or a new archive), and the oldest large one goes when there are more than two.
    async fn mutate(&mut self) {
        let large: Vec<String> = self
            .current
            .iter()
            .filter(|(_, s)| s.len > 8 << 20)
            .map(|(t, _)| t.clone())
            .collect();
        if large.len() >= 2 {
            let listing = self.listing().await;
            let title = &large[0];
            let id = listing[title];
            let (status, v) = self
                .server
                .call(
                    reqwest::Method::DELETE,
                    &format!("/api/2.0/files/file/{id}"),
                    &self.owner,
                    Some(json!({"immediately": true})),
                )
                .await;
            assert_eq!(status, 200, "deleting {title}: {v}");
            self.current.remove(title);
        }
        let len = self.rng.range(9 << 20, 20 << 20) as usize;
        self.add_file(len).await;
    }

    /// Whether the room holds exactly `want`, byte for byte; `Err` names the first difference.
    async fn room_is(&self, want: &Content) -> Result<(), String> {
        let listing = self.listing().await;
        let got: BTreeSet<&String> = listing.keys().collect();
        let expected: BTreeSet<&String> = want.keys().collect();
        if got != expected {
            return Err(format!("the room lists {got:?}, expected {expected:?}"));
        }
        for (title, spec) in want {
            let (status, data) = self.server.download(&self.owner, listing[title]).await;
            if status != 200 {
                return Err(format!("downloading {title} answered {status}"));
            }
            if data.len() != spec.len || data != *self.bytes_of(*spec) {
                return Err(format!(
                    "{title} has other bytes ({} of {} bytes)",
                    data.len(),
                    spec.len
                ));
            }
        }
        Ok(())
    }

    fn target_body(&self, target: Target) -> Value {
        match target {
            Target::Repository => json!({"storageType": 4}),
            Target::Archive => json!({
                "storageType": 3,
                "storageParams": [{"key": "filePath", "value": self.local_dir.display().to_string()}]
            }),
        }
    }

    async fn progress(&self, restore: bool) -> Value {
        let path = if restore {
            "/api/2.0/backup/getrestoreprogress"
        } else {
            "/api/2.0/backup/getbackupprogress"
        };
        let (status, v) = self.server.get(path, &self.owner).await;
        assert_eq!(status, 200, "{path}: {v}");
        v["response"].clone()
    }

    /// The history: id → file name.
    async fn history(&self) -> BTreeMap<String, String> {
        let (status, v) = self.server.get("/api/2.0/backup/getbackuphistory", &self.owner).await;
        assert_eq!(status, 200, "{v}");
        v["response"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["fileName"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Runs a backup to the end without a kill.
    async fn backup(&mut self, target: Target) -> String {
        let (status, v) = self
            .server
            .post("/api/2.0/backup/startbackup", &self.owner, self.target_body(target))
            .await;
        assert_eq!(status, 200, "{v}");
        let done = wait_backup(&self.server, &self.owner).await;
        assert_eq!(done["error"], "", "{done}");
        let id = done["taskId"].as_str().unwrap().to_owned();
        self.expect(&id, target, false);
        id
    }

    /// Records a backup the server made of the portal as it is now.
    fn expect(&mut self, id: &str, target: Target, scheduled: bool) {
        let order = self.backups.values().map(|e| e.order + 1).max().unwrap_or(0);
        let expected = Expected {
            target,
            content: self.current.clone(),
            scheduled,
            order,
        };
        self.backups.insert(id.to_owned(), expected);
    }

    /// Record ids in the order the test made them.
    fn in_order<'a>(&self, ids: impl Iterator<Item = &'a String>) -> Vec<String> {
        let mut ids: Vec<String> = ids.cloned().collect();
        ids.sort_by_key(|id| self.backups.get(id).map_or(usize::MAX, |e| e.order));
        ids
    }

    /// A count that grows as the operation writes (or, for a delete, shrinks as it collects).
    fn disk_gauge(&self, op: Op) -> u64 {
        match op {
            Op::Backup(Target::Repository) | Op::Scheduled(Target::Repository) => {
                (files_under(&self.repo_dir().join("packs")).len() + files_under(&self.files().join(".tmp")).len())
                    as u64
            }
            Op::Backup(Target::Archive) | Op::Scheduled(Target::Archive) => bytes_under(&self.local_dir) >> 10,
            Op::Restore => files_under(&self.files().join("portals")).len() as u64,
            // Packs collected, or the archive deleted.
            Op::DeleteAndCollect => {
                (files_under(&self.repo_dir().join("packs")).len() + files_under(&self.local_dir).len()) as u64
            }
        }
    }

    fn choose_moment(&mut self, op: Op) -> Moment {
        if matches!(op, Op::DeleteAndCollect) && self.rng.range(0, 2) == 0 {
            return Moment::Collecting;
        }
        match self.rng.range(0, 2) {
            0 => Moment::Delay(self.rng.range(0, 1500)),
            1 if !matches!(op, Op::DeleteAndCollect) => Moment::Progress(self.rng.range(1, 95) as i64),
            _ => Moment::Disk(match op {
                Op::Backup(Target::Archive) | Op::Scheduled(Target::Archive) => self.rng.range(64, 48 << 10),
                Op::Restore => self.rng.range(1, 4),
                // The first pack collected, or the archive deleted.
                Op::DeleteAndCollect => 1,
                _ => self.rng.range(1, 2),
            }),
        }
    }

    /// Waits for the moment, then kills the server. `job` is whether the operation is a job
    /// whose progress tells its end (a delete is not).
    async fn kill_at(&mut self, op: Op, moment: Moment, started: Instant, base: u64) -> Landed {
        let restore = matches!(op, Op::Restore);
        let job = !matches!(op, Op::DeleteAndCollect);
        let deadline = Instant::now() + Duration::from_secs(120);
        let landed = loop {
            assert!(
                Instant::now() < deadline,
                "the moment {moment:?} never came: the operation made no progress for 120 s"
            );
            let p = if job { Some(self.progress(restore).await) } else { None };
            if let Some(p) = &p {
                if p["isCompleted"] == true {
                    break Landed::After;
                }
            }
            let progress = p.as_ref().and_then(|p| p["progress"].as_i64()).unwrap_or(-1);
            let reached = match moment {
                Moment::Delay(ms) => started.elapsed() >= Duration::from_millis(ms),
                Moment::Progress(at) => progress >= at,
                Moment::Collecting => self.collecting(),
                Moment::Disk(n) => {
                    let now = self.disk_gauge(op);
                    match op {
                        Op::DeleteAndCollect => now + n <= base,
                        _ => now >= base + n,
                    }
                }
            };
            if reached {
                let at = match job {
                    true => format!("progress {progress}"),
                    false => format!("a collection {}running", if self.collecting() { "" } else { "not " }),
                };
                break Landed::Inside(format!("{at}, {:?} in", started.elapsed()));
            }
            // A delete has no job to tell its end: its collection is watched for a while.
            if !job && started.elapsed() > Duration::from_secs(5) {
                break Landed::After;
            }
            tokio::time::sleep(Duration::from_millis(if job { 15 } else { 2 })).await;
        };
        self.server.kill();
        landed
    }

    /// Starts the server again (after stopping it, idle) with `BACKSPACE_HOLD_AT` naming `point`,
    /// or without it: a held operation cannot end before the kill (see `backspace_storage::hold`).
    async fn hold_at(&mut self, point: Option<&str>) {
        self.server.kill();
        self.env.retain(|(k, _)| *k != backspace_storage::hold::HOLD_AT_VAR);
        if let Some(point) = point {
            self.env.push((backspace_storage::hold::HOLD_AT_VAR, point.to_owned()));
        }
        self.restart().await;
    }

    /// Whether a collection holds the `DataStore` repository.
    fn collecting(&self) -> bool {
        files_under(&self.repo_dir().join("locks"))
            .iter()
            .any(|l| l.extension().is_some_and(|e| e == "gc"))
    }

    /// Starts the server again on the same data: it must answer `/readyz` without help.
    async fn restart(&mut self) {
        let next = self.server.spawn_sharing(&refs(&self.env)).await;
        let old = std::mem::replace(&mut self.server, next);
        self.dead.push(old);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = self.server.http.get(self.server.url("/readyz")).send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            if status == 200 {
                break;
            }
            if Instant::now() > deadline {
                self.violation(format!("(a) /readyz answers {status} after a restart: {body}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One iteration: an operation, a kill at a moment, a restart, and the checks.
    async fn iteration(&mut self, n: usize) {
        let history = self.history().await;
        let ops = if history.len() >= 3 {
            vec![Op::DeleteAndCollect, Op::Restore]
        } else if history.is_empty() {
            vec![Op::Backup(Target::Repository), Op::Backup(Target::Archive)]
        } else {
            vec![
                Op::Backup(Target::Repository),
                Op::Backup(Target::Archive),
                Op::Restore,
                Op::DeleteAndCollect,
                Op::Scheduled(Target::Repository),
                Op::Scheduled(Target::Archive),
            ]
        };
        let op = *self.rng.pick(&ops);
        let moment = self.choose_moment(op);
        eprint!("iteration {n}: {op:?}, kill at {moment:?}");
        let before = self.current.clone();
        // What may disappear from the history in this iteration, and what may appear.
        let mut may_go: BTreeSet<String> = BTreeSet::new();
        let mut restoring: Option<(String, Content)> = None;
        let (landed, job) = match op {
            Op::Backup(target) => {
                self.mutate().await;
                let base = self.disk_gauge(op);
                let started = Instant::now();
                let (status, v) = self
                    .server
                    .post("/api/2.0/backup/startbackup", &self.owner, self.target_body(target))
                    .await;
                assert_eq!(status, 200, "{v}");
                let id = v["response"]["taskId"].as_str().unwrap().to_owned();
                (self.kill_at(op, moment, started, base).await, Some(id))
            }
            Op::Scheduled(target) => {
                self.mutate().await;
                let mut body = self.target_body(target);
                body["backupsStored"] = json!(2);
                body["cronParams"] = json!({"period": 0, "hour": 3});
                let (status, v) = self
                    .server
                    .post("/api/2.0/backup/createbackupschedule", &self.owner, body)
                    .await;
                assert_eq!(status, 200, "{v}");
                // The schedule becomes due: its last run moves two days back, and the
                // scheduler's first step at start-up fires it.
                let previous = self.progress(false).await["taskId"].clone();
                self.server.kill();
                let two_days_ago = now_ms() - 2 * 24 * 3600 * 1000;
                sql(
                    &self.server.database_url,
                    &format!("UPDATE backup_schedules SET created_at = {two_days_ago}, last_backup_at = NULL"),
                )
                .await;
                for (id, e) in &self.backups {
                    if e.scheduled {
                        may_go.insert(id.clone());
                    }
                }
                let base = self.disk_gauge(op);
                self.restart().await;
                let started = Instant::now();
                let deadline = started + Duration::from_secs(40);
                let id = loop {
                    let p = self.progress(false).await;
                    if p["taskId"] != previous && !p["taskId"].is_null() {
                        break p["taskId"].as_str().unwrap().to_owned();
                    }
                    assert!(Instant::now() < deadline, "the due schedule did not fire: {p}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                (self.kill_at(op, moment, started, base).await, Some(id))
            }
            Op::Restore => {
                // A backup that differs from the portal when there is one, so that "as before"
                // and "as the backup" can be told apart.
                let mut ids = self.in_order(history.keys().filter(|id| self.backups[*id].content != self.current));
                if ids.is_empty() {
                    ids = self.in_order(history.keys());
                }
                let id = self.rng.pick(&ids).clone();
                let want = self.backups[&id].content.clone();
                eprint!(" (backup {id})");
                let base = self.disk_gauge(op);
                let started = Instant::now();
                let (status, v) = self
                    .server
                    .post("/api/2.0/backup/startrestore", &self.owner, json!({"backupId": id}))
                    .await;
                assert_eq!(status, 200, "{v}");
                restoring = Some((id, want));
                (self.kill_at(op, moment, started, base).await, None)
            }
            Op::DeleteAndCollect => {
                let ids = self.in_order(history.keys());
                let id = self.rng.pick(&ids).clone();
                eprint!(" (backup {id}, {:?})", self.backups[&id].target);
                may_go.insert(id.clone());
                let base = self.disk_gauge(op);
                let started = Instant::now();
                let request = self
                    .server
                    .http
                    .delete(self.server.url(&format!("/api/2.0/backup/deletebackup/{id}")))
                    .headers(self.owner.headers())
                    .send();
                // The request runs beside the watch: a kill may land while it is in flight.
                let request = tokio::spawn(request);
                let landed = self.kill_at(op, moment, started, base).await;
                eprint!(
                    " (the request had {}answered)",
                    if request.is_finished() { "" } else { "not " }
                );
                let _ = request.await;
                (landed, None)
            }
        };
        match &landed {
            Landed::Inside(at) => eprintln!(" → killed inside, at {at}"),
            Landed::After => eprintln!(" → the operation had ended: killed after it"),
        }
        let checks = Instant::now();
        self.restart().await;
        let history = self.history().await;

        // (b) The job's end.
        if let Some(id) = &job {
            let p = self.progress(false).await;
            if p["taskId"] != id.as_str() || p["isCompleted"] != true {
                self.violation(format!("(b) the backup job {id} is not reported completed: {p}"));
            }
            let error = p["error"].as_str().unwrap_or_default().to_owned();
            match (error.is_empty(), history.contains_key(id)) {
                (true, true) | (false, false) => {}
                (true, false) => self.violation(format!("(b) backup {id} reports success but has no record: {p}")),
                (false, true) => self.violation(format!(
                    "(b) backup {id} has a complete record but its job reports failure: {error}"
                )),
            }
            if history.contains_key(id) {
                let (target, scheduled) = match op {
                    Op::Backup(t) => (t, false),
                    Op::Scheduled(t) => (t, true),
                    _ => unreachable!(),
                };
                self.expect(id, target, scheduled);
            }
        }
        if matches!(op, Op::Scheduled(_)) {
            let (status, v) = self
                .server
                .call(
                    reqwest::Method::DELETE,
                    "/api/2.0/backup/deletebackupschedule",
                    &self.owner,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{v}");
        }

        // (f) A killed restore: exactly before or exactly the backup, and unlocked.
        if let Some((id, want)) = restoring {
            let p = self.progress(true).await;
            if p["isCompleted"] != true {
                self.violation(format!("(b) the restore from {id} is not reported completed: {p}"));
            }
            let error = p["error"].as_str().unwrap_or_default().to_owned();
            let as_backup = self.room_is(&want).await;
            let as_before = self.room_is(&before).await;
            match (&as_backup, &as_before, error.is_empty()) {
                (Ok(()), _, true) => self.current = want,
                (Ok(()), Ok(()), false) => {}
                (Ok(()), _, false) => {
                    // The swap committed; the end was not recorded.
                    self.violation(format!(
                        "(b) the restore from {id} is complete but its job reports failure: {error}"
                    ));
                    self.current = want;
                }
                (Err(_), Ok(()), false) => {}
                (Err(e), Ok(()), true) => self.violation(format!(
                    "(b) the restore from {id} reports success but the portal is as before: {e}"
                )),
                (Err(a), Err(b), _) => {
                    self.violation(format!(
                        "(f) after a killed restore the portal is neither the backup ({a}) nor as before ({b})"
                    ));
                    panic!("the portal is in an unknown state: {:?}", self.violations);
                }
            }
        }

        // Every record is one the test made, and none vanished that was not deleted.
        for id in history.keys() {
            if !self.backups.contains_key(id) {
                self.violation(format!("a record {id} appeared that no backup made"));
            }
        }
        let known: Vec<String> = self.backups.keys().cloned().collect();
        for id in known {
            if !history.contains_key(&id) {
                if !may_go.contains(&id) {
                    self.violation(format!("backup {id} vanished from the history"));
                }
                self.backups.remove(&id);
            }
        }
        self.check_records(&history).await;
        self.check_cleanup().await;
        eprintln!(
            "  restart and checks of {} record(s): {:?}",
            history.len(),
            checks.elapsed()
        );
        self.forget_unused_bytes();
    }

    /// (d) Every record verifies; (c) every record restores byte for byte.
    async fn check_records(&mut self, history: &BTreeMap<String, String>) {
        for id in history.keys() {
            let (status, v) = self
                .server
                .get(&format!("/api/2.0/backup/verifybackup/{id}"), &self.owner)
                .await;
            if status != 200 || v["response"]["ok"] != true {
                self.violation(format!("(d) backup {id} does not verify: {status} {v}"));
            }
        }
        // Restoring every record: the last restored one is then the portal's content.
        for id in history.keys() {
            let Some(want) = self.backups.get(id).map(|e| e.content.clone()) else {
                continue;
            };
            let (status, v) = self
                .server
                .post("/api/2.0/backup/startrestore", &self.owner, json!({"backupId": id}))
                .await;
            assert_eq!(status, 200, "{v}");
            let done = wait_restore(&self.server, &self.owner).await;
            if done["error"] != "" {
                self.violation(format!("(c) restoring backup {id} failed: {done}"));
                continue;
            }
            match self.room_is(&want).await {
                Ok(()) => self.current = want,
                Err(e) => {
                    self.violation(format!("(c) backup {id} restores other content: {e}"));
                    panic!("the portal is in an unknown state: {:?}", self.violations);
                }
            }
        }
    }

    /// (e) What is left on disk once the cleanup ran, compared with what the records and rows
    /// reference. Polls until clean or [`CLEANUP_DEADLINE`], then reports what survived.
    async fn check_cleanup(&mut self) {
        let deadline = Instant::now() + CLEANUP_DEADLINE;
        loop {
            let leaks = self.leaks().await;
            if leaks.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                for l in leaks {
                    self.violation(format!("(e) survived the cleanup: {l}"));
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn leaks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let files = self.files();
        for f in files_under(&files.join(".tmp")) {
            out.push(format!("a temporary file {}", f.display()));
        }
        // File bytes: exactly those the rows use.
        let rows: BTreeSet<String> = sql_strings(&self.server.database_url, "SELECT blob_key FROM files")
            .await
            .into_iter()
            .collect();
        let on_disk: BTreeSet<String> = files_under(&files.join("portals"))
            .iter()
            .map(|p| p.strip_prefix(&files).unwrap().display().to_string())
            .collect();
        for extra in on_disk.difference(&rows) {
            out.push(format!("file bytes no row uses: {extra}"));
        }
        let garbage = sql_strings(&self.server.database_url, "SELECT blob_key FROM blob_garbage").await;
        if !garbage.is_empty() {
            out.push(format!("released files not yet deleted: {garbage:?}"));
        }
        for f in files_under(&files.join("backups")) {
            out.push(format!("a DataStore archive {}", f.display()));
        }
        // The Local directory: one archive per plain-archive record, nothing partial.
        let history = self.history().await;
        let names: BTreeSet<&String> = history
            .iter()
            .filter(|_| self.local_repo_dir().is_none())
            .filter(|(id, _)| self.backups.get(*id).is_some_and(|e| e.target == Target::Archive))
            .map(|(_, name)| name)
            .collect();
        let local_repo = self.local_repo_dir();
        for f in files_under(&self.local_dir) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            match &local_repo {
                Some(repo) if f.starts_with(repo.join(".tmp")) => out.push(format!("a temporary file {}", f.display())),
                Some(repo) if f.starts_with(repo) => {}
                _ if !names.contains(&name) => {
                    out.push(format!("a file in the Local directory no record names: {name}"))
                }
                _ => {}
            }
        }
        if let Some(repo) = &local_repo {
            let ids: BTreeSet<String> = history
                .keys()
                .filter(|id| self.backups.get(*id).is_some_and(|e| e.target == Target::Archive))
                .cloned()
                .collect();
            out.extend(repository_leaks(repo, &ids).await);
        }
        let repo_ids: BTreeSet<String> = history
            .keys()
            .filter(|id| self.backups.get(*id).is_some_and(|e| e.target == Target::Repository))
            .cloned()
            .collect();
        out.extend(repository_leaks(&self.repo_dir(), &repo_ids).await);
        out
    }
}

/// What a repository holds beyond what `records` (snapshot ids) need: locks, snapshots without a
/// record, packs no index names, indexed packs no snapshot uses; and what they need that is
/// missing.
async fn repository_leaks(dir: &Path, records: &BTreeSet<String>) -> Vec<String> {
    use backspace_repo::Repository;
    use std::sync::Arc;
    let mut out = Vec::new();
    if !dir.join("config").exists() {
        if !records.is_empty() {
            out.push(format!("the repository of {records:?} is missing"));
        }
        return out;
    }
    for f in files_under(&dir.join("locks")) {
        out.push(format!("a repository lock {}", f.display()));
    }
    // Opened two levels up: opening a store sweeps its temporary files, and the checks must not
    // clean what they are looking for.
    let (parent, name) = (dir.parent().unwrap(), dir.file_name().unwrap().to_string_lossy());
    let (root, prefix) = (
        parent.parent().unwrap(),
        format!("{}/{name}", parent.file_name().unwrap().to_string_lossy()),
    );
    let store = Arc::new(backspace_storage::LocalStore::open(root).await.unwrap());
    let store = backspace_storage::PrefixStore::new(store, &prefix).unwrap();
    let repo = Repository::open(Arc::new(store), Some(PASSPHRASE)).await.unwrap();
    let snapshots: BTreeSet<String> = repo.snapshots().await.unwrap().into_iter().collect();
    for s in snapshots.difference(records) {
        out.push(format!("a snapshot without a record: {s}"));
    }
    let index = repo.load_index().await.unwrap();
    let mut live: BTreeSet<[u8; 32]> = BTreeSet::new();
    for id in &snapshots {
        let snap = repo.snapshot(id).await.unwrap();
        for (chunk, _) in snap.entries.iter().flat_map(|e| e.chunks.iter()) {
            if !index.contains_key(chunk) {
                out.push(format!(
                    "snapshot {id} uses chunk {} that no index names",
                    chunk.to_hex()
                ));
            }
            live.insert(chunk.0);
        }
    }
    let indexed: BTreeSet<String> = index.values().map(|(pack, _)| pack.to_hex()).collect();
    let used: BTreeSet<String> = index
        .iter()
        .filter(|(chunk, _)| live.contains(&chunk.0))
        .map(|(_, (pack, _))| pack.to_hex())
        .collect();
    let packs: BTreeSet<String> = files_under(&dir.join("packs"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for p in packs.difference(&indexed) {
        out.push(format!("a pack no index names: {p}"));
    }
    for p in indexed.difference(&used) {
        out.push(format!("an indexed pack no snapshot uses: {p}"));
    }
    for p in used.difference(&packs) {
        out.push(format!("a pack a snapshot needs is missing: {p}"));
    }
    out
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn kills_at_seeded_moments_leave_every_invariant_intact() {
    let seed = env_number("BACKSPACE_CRASH_SEED", DEFAULT_SEED);
    let iterations = env_number("BACKSPACE_CRASH_ITERATIONS", DEFAULT_ITERATIONS as u64) as usize;
    eprintln!("crash run: BACKSPACE_CRASH_SEED={seed} BACKSPACE_CRASH_ITERATIONS={iterations}");
    let started = Instant::now();
    let mut h = Harness::new(seed).await;
    h.backup(Target::Repository).await;
    h.backup(Target::Archive).await;
    for n in 1..=iterations {
        h.iteration(n).await;
    }
    eprintln!("crash run: {iterations} iterations in {:?}", started.elapsed());
    assert!(
        h.violations.is_empty(),
        "seed {seed}: {} violation(s):\n{}",
        h.violations.len(),
        h.violations.join("\n")
    );
}

impl Harness {
    /// Starts a backup and returns its task id.
    async fn start_backup(&self, target: Target) -> String {
        let (status, v) = self
            .server
            .post("/api/2.0/backup/startbackup", &self.owner, self.target_body(target))
            .await;
        assert_eq!(status, 200, "{v}");
        v["response"]["taskId"].as_str().unwrap().to_owned()
    }

    /// Runs a backup onto a full disk: it fails naming the full disk, the server stays ready,
    /// history still holds only `first` (returned), and nothing is left behind.
    async fn backup_fails_for_lack_of_space(&self, target: Target, first: &str) -> BTreeMap<String, String> {
        let id = self.start_backup(target).await;
        let done = wait_backup(&self.server, &self.owner).await;
        assert_eq!(done["taskId"], id.as_str());
        assert!(
            done["error"].as_str().unwrap().contains("No space left on device"),
            "the error does not name the full disk: {done}"
        );
        let (status, ready) = self.server.get("/readyz", &Auth::none()).await;
        assert_eq!(status, 200, "{ready}");
        let history = self.history().await;
        assert_eq!(
            history.keys().map(String::as_str).collect::<Vec<_>>(),
            [first],
            "{history:?}"
        );
        self.assert_clean().await;
        history
    }

    /// Asserts that nothing unreferenced is left once the cleanup after a start had its time.
    async fn assert_clean(&self) {
        let deadline = Instant::now() + CLEANUP_DEADLINE;
        loop {
            let leaks = self.leaks().await;
            if leaks.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "survived the cleanup:\n{}", leaks.join("\n"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts that the portal's latest job of a kind failed because the server stopped.
    async fn assert_stopped(&self, restore: bool) {
        let p = self.progress(restore).await;
        assert_eq!(p["isCompleted"], true, "{p}");
        assert!(
            p["error"].as_str().unwrap_or_default().contains("server stopped"),
            "the interrupted job does not report the stop: {p}"
        );
    }

    /// Marks a finished job unfinished in the database, as a server stopped before the job's end
    /// was recorded leaves it (`set` are more assignments).
    async fn unfinish_job(&self, id: &str, set: &str) {
        let set = if set.is_empty() {
            String::new()
        } else {
            format!(", {set}")
        };
        sql(
            &self.server.database_url,
            &format!("UPDATE backup_jobs SET is_completed = 0, error = ''{set} WHERE id = '{id}'"),
        )
        .await;
    }
}

// Fixed cases, one per crash window a finding was about. Where a kill cannot be timed exactly
// (between two statements), the state the kill leaves is made in the database instead.

/// Before the fix: the temporary file of the pack being written and the writer's lock
/// survived (the lock held off every collection, and so the packs, for 15 minutes).
#[tokio::test]
async fn a_repository_backup_killed_while_it_writes_packs_leaves_nothing_behind() {
    let mut h = Harness::new(1).await;
    h.backup(Target::Repository).await;
    h.mutate().await;
    h.hold_at(Some(backspace_storage::hold::BACKUP_PACK_STORED)).await;
    let op = Op::Backup(Target::Repository);
    let base = h.disk_gauge(op);
    let started = Instant::now();
    let id = h.start_backup(Target::Repository).await;
    let landed = h.kill_at(op, Moment::Disk(1), started, base).await;
    assert!(matches!(landed, Landed::Inside(_)), "the kill came after the backup");
    h.hold_at(None).await;
    h.assert_stopped(false).await;
    assert!(!h.history().await.contains_key(&id), "a killed backup has a record");
    h.assert_clean().await;
    // The repository is usable at once: the next backup is complete.
    let next = h.backup(Target::Repository).await;
    h.check_records(&h.history().await).await;
    assert!(h.violations.is_empty(), "{:?}", h.violations);
    assert!(h.history().await.contains_key(&next));
}

/// Before the fix: the files staged by the restore stayed in the store, used by no row.
#[tokio::test]
async fn a_restore_killed_while_it_stages_files_leaves_the_portal_as_it_was() {
    let mut h = Harness::new(2).await;
    let id = h.backup(Target::Repository).await;
    h.mutate().await;
    let before = h.current.clone();
    h.hold_at(Some(backspace_storage::hold::RESTORE_FILE_STAGED)).await;
    let base = h.disk_gauge(Op::Restore);
    let started = Instant::now();
    let (status, v) = h
        .server
        .post("/api/2.0/backup/startrestore", &h.owner, json!({"backupId": id}))
        .await;
    assert_eq!(status, 200, "{v}");
    let landed = h.kill_at(Op::Restore, Moment::Disk(1), started, base).await;
    assert!(matches!(landed, Landed::Inside(_)), "the kill came after the restore");
    h.hold_at(None).await;
    h.assert_stopped(true).await;
    h.room_is(&before).await.unwrap();
    h.assert_clean().await;
}

/// Before the fix: an archive renamed into place whose record never came stayed in the `Local`
/// directory, named by nothing. A job links its archive into place, records the final path, then
/// removes the partial name: a stop at either step leaves no archive, and a file of the same
/// name that the job did not link is never removed.
#[tokio::test]
async fn a_backup_stopped_between_its_archive_and_its_record_leaves_no_archive() {
    let mut h = Harness::new(3).await;
    // (the job's recorded path, whether the partial name is still there)
    for linked_and_recorded in [false, true] {
        let id = h.backup(Target::Archive).await;
        let name = h.history().await[&id].clone();
        h.server.kill();
        let archive = h.local_dir.join(&name);
        let partial = h.local_dir.join(format!(".{name}.{id}.partial"));
        let recorded = if linked_and_recorded {
            archive.clone()
        } else {
            // Stopped between the link and recording it: both names are the same file.
            std::fs::hard_link(&archive, &partial).unwrap();
            partial.clone()
        };
        sql(
            &h.server.database_url,
            &format!("DELETE FROM backups WHERE id = '{id}'"),
        )
        .await;
        h.unfinish_job(&id, &format!("partial = '{}'", recorded.display()))
            .await;
        h.backups.remove(&id);
        h.restart().await;
        h.assert_stopped(false).await;
        assert!(!archive.exists(), "the archive without a record survived");
        assert!(!partial.exists(), "the partial name survived");
        h.assert_clean().await;
    }
    // Stopped while writing, and a file of the final name is not the job's (the link never
    // happened): the partial goes, that file stays.
    let id = h.backup(Target::Archive).await;
    let name = h.history().await[&id].clone();
    h.server.kill();
    let archive = h.local_dir.join(&name);
    let partial = h.local_dir.join(format!(".{name}.{id}.partial"));
    let theirs = std::fs::read(&archive).unwrap();
    std::fs::write(&partial, b"half an archive").unwrap();
    sql(
        &h.server.database_url,
        &format!("DELETE FROM backups WHERE id = '{id}'"),
    )
    .await;
    h.unfinish_job(&id, &format!("partial = '{}'", partial.display())).await;
    h.backups.remove(&id);
    h.restart().await;
    h.assert_stopped(false).await;
    assert!(!partial.exists(), "the partial archive survived");
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        theirs,
        "a file the job did not make was touched"
    );
    std::fs::remove_file(&archive).unwrap();
    h.assert_clean().await;
}

/// Before the fix: the snapshot written just before the stop stayed, with no record, and kept
/// its packs alive for ever.
#[tokio::test]
async fn a_backup_stopped_between_its_snapshot_and_its_record_leaves_no_snapshot() {
    let mut h = Harness::new(4).await;
    h.backup(Target::Repository).await;
    h.mutate().await;
    let id = h.backup(Target::Repository).await;
    h.server.kill();
    sql(
        &h.server.database_url,
        &format!("DELETE FROM backups WHERE id = '{id}'"),
    )
    .await;
    h.unfinish_job(&id, "").await;
    h.backups.remove(&id);
    h.restart().await;
    h.assert_stopped(false).await;
    h.assert_clean().await;
}

/// Before the fix: a job stopped after its result was stored reported "it did not finish.
/// Start it again", and the recovery removed a recorded archive's partial path only by luck.
#[tokio::test]
async fn jobs_stopped_after_their_result_was_stored_report_success() {
    let mut h = Harness::new(5).await;
    let id = h.backup(Target::Archive).await;
    let name = h.history().await[&id].clone();
    let first = h.current.clone();
    h.mutate().await;
    let other = h.backup(Target::Repository).await;
    let (status, v) = h
        .server
        .post("/api/2.0/backup/startrestore", &h.owner, json!({"backupId": id}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(wait_restore(&h.server, &h.owner).await["error"], "");
    h.current = first;
    h.server.kill();
    let partial = h.local_dir.join(format!(".{name}.{id}.partial"));
    h.unfinish_job(&id, &format!("partial = '{}'", partial.display())).await;
    sql(
        &h.server.database_url,
        "UPDATE backup_jobs SET is_completed = 0, phase = 'swapped' WHERE kind = 1",
    )
    .await;
    h.restart().await;
    for restore in [false, true] {
        let p = h.progress(restore).await;
        assert_eq!(
            (p["isCompleted"].clone(), p["error"].clone()),
            (json!(true), json!("")),
            "{p}"
        );
    }
    assert!(h.local_dir.join(&name).exists(), "a recorded archive was removed");
    h.room_is(&h.current).await.unwrap();
    let history = h.history().await;
    assert!(history.contains_key(&id) && history.contains_key(&other), "{history:?}");
    h.check_records(&history).await;
    assert!(h.violations.is_empty(), "{:?}", h.violations);
    h.assert_clean().await;
}

/// Before the fix: a delete whose collection a stop interrupted left the deleted backup's packs
/// until something opened the repository and the cleaner ran again (5 minutes later).
#[tokio::test]
async fn a_delete_whose_collection_was_interrupted_is_collected_at_the_next_start() {
    let mut h = Harness::new(6).await;
    h.backup(Target::Repository).await;
    h.mutate().await;
    let id = h.backup(Target::Repository).await;
    h.server.kill();
    // What the delete did before the stop: the snapshot and the record are gone.
    std::fs::remove_file(h.repo_dir().join("snapshots").join(&id)).unwrap();
    sql(
        &h.server.database_url,
        &format!("UPDATE backups SET removed = 1 WHERE id = '{id}'"),
    )
    .await;
    h.backups.remove(&id);
    let packs = files_under(&h.repo_dir().join("packs")).len();
    h.restart().await;
    h.assert_clean().await;
    assert!(
        files_under(&h.repo_dir().join("packs")).len() < packs,
        "nothing was collected"
    );
}

/// Before the fix: the lock of a collection killed half-way made every backup into the
/// repository wait (and every collection defer) until it was stale, 15 minutes later.
#[tokio::test]
async fn a_collection_killed_half_way_does_not_hold_off_backups() {
    let instance = "crash-gc-test";
    let setup = Setup {
        env: vec![("BACKSPACE_INSTANCE_ID", instance.to_owned())],
        ..Setup::default()
    };
    let mut h = Harness::with(11, setup).await;
    h.backup(Target::Repository).await;
    h.server.kill();
    // The lock a collection of this instance holds while it runs (see `Core::gc_owner`).
    let owner = &backspace_repo::PackId::of(instance.as_bytes()).to_hex()[..16];
    let lock = h
        .repo_dir()
        .join(format!("locks/{owner}-0123456789abcdef0123456789abcdef.gc"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let now = now_ms();
    std::fs::write(
        &lock,
        json!({"kind": "gc", "created": now, "refreshed": now}).to_string(),
    )
    .unwrap();
    h.restart().await;
    h.mutate().await;
    let next = h.backup(Target::Repository).await;
    assert!(h.history().await.contains_key(&next));
    h.assert_clean().await;
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs of `bytes` at `dir`. `None`, with the reason printed, when this process may
    /// not mount, unless `BACKSPACE_REQUIRE_MOUNT=1` (then it fails).
    fn tmpfs(dir: &Path, bytes: u64) -> Option<Self> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output();
        let reason = match out {
            Ok(o) if o.status.success() => return Some(Self(dir.to_owned())),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        assert!(
            std::env::var("BACKSPACE_REQUIRE_MOUNT").as_deref() != Ok("1"),
            "BACKSPACE_REQUIRE_MOUNT=1 and mounting a tmpfs failed: {reason}"
        );
        eprintln!("skipped: mounting a small tmpfs is not permitted here ({reason})");
        None
    }

    /// Gives the file system another size (space freed, as an operator would).
    fn resize(&self, bytes: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "resizing the tmpfs failed");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a server not yet reaped): detach it now, it goes when released.
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

const SMALL_DISK: u64 = 24 << 20;

/// A backup that meets a full disk fails clearly and leaves nothing; the server stays up, the
/// earlier backup still restores, and once there is space the next backup succeeds.
async fn full_disk_under_a_local_target(local_repository: bool) {
    let setup = Setup {
        local_repository,
        ..Setup::default()
    };
    let mut h = Harness::with(8, setup).await;
    let Some(disk) = Mount::tmpfs(&h.local_dir, SMALL_DISK) else {
        return;
    };
    let started = Instant::now();
    let first = h.backup(Target::Archive).await;
    let first_content = h.current.clone();
    h.add_file(24 << 20).await;
    let history = h.backup_fails_for_lack_of_space(Target::Archive, &first).await;
    eprintln!("the backup failed and left nothing: {:?}", started.elapsed());
    // The earlier backup restores byte for byte while the disk is still full.
    h.check_records(&history).await;
    assert!(h.violations.is_empty(), "{:?}", h.violations);
    assert_eq!(h.current, first_content);
    eprintln!("the earlier backup restored: {:?}", started.elapsed());
    h.add_file(24 << 20).await;
    disk.resize(256 << 20);
    let next = h.backup(Target::Archive).await;
    let history = h.history().await;
    assert!(history.contains_key(&next), "{history:?}");
    h.check_records(&history).await;
    assert!(h.violations.is_empty(), "{:?}", h.violations);
    h.assert_clean().await;
}

#[tokio::test]
async fn a_full_disk_fails_a_plain_archive_backup_cleanly() {
    full_disk_under_a_local_target(false).await;
}

#[tokio::test]
async fn a_full_disk_fails_a_repository_backup_cleanly() {
    full_disk_under_a_local_target(true).await;
}

/// The server's own file store (uploads, `DataStore` repository, staged restores) on a disk
/// that fills up during a backup.
#[tokio::test]
async fn a_full_file_store_fails_a_datastore_backup_cleanly() {
    let place = TempDir::new("backspace-crash-files");
    let files = place.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let Some(disk) = Mount::tmpfs(&files, 64 << 20) else {
        return;
    };
    let setup = Setup {
        files: Some(files.clone()),
        ..Setup::default()
    };
    let mut h = Harness::with(9, setup).await;
    let first = h.backup(Target::Repository).await;
    // Uploaded while there is room; its backup then has none.
    h.add_file(32 << 20).await;
    h.backup_fails_for_lack_of_space(Target::Repository, &first).await;
    disk.resize(256 << 20);
    let next = h.backup(Target::Repository).await;
    let history = h.history().await;
    assert!(history.contains_key(&next), "{history:?}");
    h.check_records(&history).await;
    assert!(h.violations.is_empty(), "{:?}", h.violations);
    h.assert_clean().await;
    // The server goes before the disk is unmounted.
    drop(h);
}

/// A TCP proxy in front of the metadata database that the test can cut: every open connection is
/// closed and new ones are refused until it is restored.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let (c, l) = (cut.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Self {
            addr,
            cut,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The `host:port` of a database URL, and the URL with `addr` in its place.
fn host_of(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    (host.to_owned(), format!("{scheme}://{user}{addr}/{path}"))
}

/// The metadata database goes away in the middle of a backup and comes back: the job ends
/// (failed, or complete) without a restart, leaves no partial output, and the server serves and
/// backs up again.
#[tokio::test]
async fn the_database_going_away_mid_backup_fails_the_job_cleanly() {
    let Ok(admin) = std::env::var("BACKSPACE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("BACKSPACE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "BACKSPACE_REQUIRE_POSTGRES=1 but BACKSPACE_TEST_POSTGRES_URL is not set"
        );
        eprintln!("skipped: no PostgreSQL (set BACKSPACE_TEST_POSTGRES_URL, as scripts/test does)");
        return;
    };
    let database = new_postgres_database(&admin).await;
    let unused: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let proxy = Proxy::start(host_of(&database, unused).0).await;
    let setup = Setup {
        database_url: Some(host_of(&database, proxy.addr).1),
        env: vec![("BACKSPACE_JOB_LEASE_SECONDS", "2".to_owned())],
        ..Setup::default()
    };
    let mut h = Harness::with(10, setup).await;
    for _ in 0..3 {
        h.add_file(24 << 20).await;
    }
    for target in [Target::Archive, Target::Repository] {
        let id = h.start_backup(target).await;
        // Cut as soon as the job writes, for longer than its lease.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = h.progress(false).await;
            if p["isCompleted"] == true || p["progress"].as_i64().unwrap_or(0) > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the backup did not start: {p}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.restore();
        eprintln!("{target:?}: the database was away for 3 s");

        // The server serves again without a restart, and the job ends.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let resp = h.server.http.get(h.server.url("/readyz")).send().await.unwrap();
            if resp.status() == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "/readyz never recovered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let done = wait_backup(&h.server, &h.owner).await;
        assert_eq!(done["taskId"], id.as_str(), "{done}");
        let history = h.history().await;
        let error = done["error"].as_str().unwrap();
        eprintln!("{target:?}: the job ended with {error:?}");
        assert_eq!(error.is_empty(), history.contains_key(&id), "{done} {history:?}");
        assert!(
            error.is_empty() || error.contains("lost its database"),
            "the failure does not say what happened: {error}"
        );
        if error.is_empty() {
            h.expect(&id, target, false);
        }
        h.assert_clean().await;
        // The next backup succeeds, and every record restores.
        h.backup(target).await;
        h.check_records(&h.history().await).await;
        assert!(h.violations.is_empty(), "{:?}", h.violations);
    }
}
