//! Faults in storage, in process: the services over SQLite with their stores behind
//! `backspace_storage::faulty` (the portal's file store, which is also the DataStore, and every
//! backup repository through `BackupSettings::repository_store`). Each case arms fault rules
//! (errors, partial writes and reads, delays, lost acknowledgements, objects that vanish) on
//! chosen operations, runs one job (a backup into a repository or as a plain archive, a
//! restore, a delete with the collection after it, the cleaner), and then checks the crash
//! harness's invariants:
//!
//! - a job that met a fault it could not survive reports failure, with a message;
//! - every history record verifies, and restores byte for byte to the portal it was made of;
//! - nothing unreferenced survives the next cleanup (file blobs, archives, repository
//!   snapshots, packs, index entries, locks, temporary files);
//! - after a restore the portal is exactly as before it or exactly as the backup;
//! - a vanished object is named by `verify`, and never makes a backup look intact.
//!
//! The generated cases draw from `BACKSPACE_FAULT_SEED` (a fixed seed by default); a failure
//! prints the case and the seed.

use backspace_core::backup::{BackupSettings, RepositorySettings, StoreWrapper};
use backspace_core::{Caller, Core, Settings, Upload};
use backspace_meta::{
    job_status, BackupRecord, Job, JobStore, NewPortal, NewUser, PortalStore, RecordStore, SnapshotStore, SqlStore,
    TreeStore,
};
use backspace_repo::Repository;
use backspace_storage::faulty::{Fault, Faults, Op, Rule};
use backspace_storage::{BlobKey, BlobStore, ByteStream, LocalStore, PrefixStore, StorageError};
use backspace_types::dto::backup::RestoreRequest;
use backspace_types::{EmployeeType, FileId, FolderId, FolderType, StorageType, TaskId, UserId};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where backups go in a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// DataStore backups as plain archives (`backups/…` in the file store).
    Plain,
    /// Local backups into a repository in a server directory (its own store).
    LocalRepo,
    /// DataStore backups into the repository inside the file store (`repository/…`).
    DataStoreRepo,
}

/// What a case expects of the job it disturbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Fail,
    Succeed,
    /// Either; the invariants decide.
    Either,
}

/// The label of the file store's faults, and of every repository store's.
const FILES: &str = "files";
const REPO: &str = "repo";

/// A portal as its owner sees it: rows and the bytes behind them (a file whose bytes are gone
/// is not part of it).
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    folders: BTreeMap<i64, (Option<i64>, String, String)>,
    /// id → (folder, title, size, BLAKE3 of the bytes read back).
    files: BTreeMap<i64, (i64, String, i64, String)>,
    users: BTreeSet<String>,
}

struct Fixture {
    case: String,
    mode: Mode,
    core: Arc<Core>,
    store: Arc<SqlStore>,
    faults: Arc<Faults>,
    /// The file store without faults.
    files: Arc<dyn BlobStore>,
    owner: Caller,
    my: FolderId,
    dir: PathBuf,
    local: PathBuf,
    /// What each backup held when it was made.
    expected: HashMap<TaskId, View>,
    /// Backups a vanished object damaged: `verify` must name them.
    lost: HashSet<TaskId>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn seed() -> u64 {
    std::env::var("BACKSPACE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_260_505)
}

/// Deterministic pseudo-random bytes (incompressible: every byte goes into packs as it is).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut out = vec![0; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

fn stream(data: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok(Bytes::from(data))]))
}

async fn read_all(store: &dyn BlobStore, key: &str) -> Result<Vec<u8>, StorageError> {
    let mut s = store.get(&BlobKey::new(key).unwrap()).await?;
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.map_err(|e| StorageError::Io {
            key: key.to_owned(),
            source: e,
        })?);
    }
    Ok(out)
}

async fn fixture(case: &str, mode: Mode, seed: u64) -> Fixture {
    let dir = std::env::temp_dir().join(format!("backspace-faults-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("local")).unwrap();
    let local = dir.join("local").canonicalize().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("m.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let faults = Faults::new(seed);
    let files: Arc<dyn BlobStore> = Arc::new(LocalStore::open(dir.join("files")).await.unwrap());
    let blobs = faults.wrap(FILES, files.clone());
    let wrap = faults.clone();
    let repository = match mode {
        Mode::Plain => RepositorySettings::default(),
        Mode::LocalRepo | Mode::DataStoreRepo => RepositorySettings {
            unencrypted: true,
            ..RepositorySettings::default()
        },
    };
    let settings = Settings {
        backup: BackupSettings {
            local_roots: vec![local.clone()],
            repository,
            repository_store: Some(StoreWrapper(Arc::new(move |_, s| wrap.wrap(REPO, s)))),
            ..BackupSettings::default()
        },
        ..Settings::default()
    };
    let core = Arc::new(Core::new(store.clone(), blobs, settings));
    // The default portal, made in the store: no one signs in, so no password is hashed (that
    // would cost a second per case).
    let now = backspace_types::datetime::now_ms();
    let portal = NewPortal {
        alias: "faults".into(),
        name: "faults".into(),
        language: "en-US".into(),
        time_zone: "UTC".into(),
        is_default: true,
        now,
    };
    let user = NewUser {
        id: UserId::random(),
        email: "o@example.com".into(),
        first_name: "Portal".into(),
        last_name: "Owner".into(),
        kind: EmployeeType::DocSpaceAdmin,
        is_owner: true,
        activation_status: 1,
        password_hash: "-".into(),
        created_by: None,
        now,
    };
    store.create_portal(portal, user).await.unwrap();
    let owner = core.default_owner().await.unwrap();
    let my = store
        .section(owner.portal.id, FolderType::User, Some(owner.user.id))
        .await
        .unwrap()
        .unwrap()
        .id;
    let f = Fixture {
        case: case.to_owned(),
        mode,
        core,
        store,
        faults,
        files,
        owner,
        my,
        dir,
        local,
        expected: HashMap::new(),
        lost: HashSet::new(),
    };
    // Several chunks (the large one), and small files that share a pack.
    for (title, len, seed) in [("a.bin", 64 << 10, 1), ("b.bin", 700 << 10, 2), ("big.bin", 3 << 20, 3)] {
        f.upload(title, noise(len, seed)).await;
    }
    f
}

impl Fixture {
    fn ctx(&self) -> String {
        format!(
            "case `{}` ({:?}, seed {}): fired {:?}",
            self.case,
            self.mode,
            seed(),
            self.faults.fired()
        )
    }

    async fn upload(&self, title: &str, data: Vec<u8>) {
        let up = Upload {
            title: title.to_owned(),
            data: stream(data),
            create_new_if_exist: false,
            unlimited: false,
        };
        self.core.upload(&self.owner, self.my, up).await.unwrap();
    }

    async fn file_id(&self, title: &str) -> FileId {
        self.store
            .file_by_title(self.owner.portal.id, self.my, title)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// Changes the portal after a backup: the large file deleted (most of the first backup's
    /// pack dies with it), one replaced, one added.
    async fn change(&self) {
        let big = self.file_id("big.bin").await;
        self.core.delete_file(&self.owner, big, true).await.unwrap();
        self.upload("a.bin", noise(80 << 10, 11)).await;
        self.upload("c.bin", noise(300 << 10, 12)).await;
    }

    async fn view(&self) -> View {
        let snap = self.store.snapshot(self.owner.portal.id).await.unwrap();
        let mut files = BTreeMap::new();
        for f in &snap.files {
            if let Ok(bytes) = read_all(self.files.as_ref(), &f.blob_key).await {
                let hash = blake3::hash(&bytes).to_hex().to_string();
                files.insert(f.id.0, (f.folder_id.0, f.title.clone(), f.size, hash));
            }
        }
        View {
            folders: snap
                .folders
                .iter()
                .map(|d| {
                    (
                        d.id.0,
                        (d.parent_id.map(|p| p.0), format!("{:?}", d.kind), d.title.clone()),
                    )
                })
                .collect(),
            files,
            users: snap.users.iter().map(|u| u.email.clone()).collect(),
        }
    }

    /// The portal's rows as stored (blob keys included) and its view: what "exactly as before"
    /// compares.
    async fn exact(&self) -> (backspace_meta::Snapshot, View) {
        (
            self.store.snapshot(self.owner.portal.id).await.unwrap(),
            self.view().await,
        )
    }

    fn target(&self) -> (StorageType, Option<BTreeMap<String, String>>) {
        match self.mode {
            Mode::Plain | Mode::DataStoreRepo => (StorageType::DataStore, None),
            Mode::LocalRepo => (
                StorageType::Local,
                Some(BTreeMap::from([(
                    "filepath".to_owned(),
                    self.local.display().to_string(),
                )])),
            ),
        }
    }

    async fn wait(&self, id: TaskId) -> Job {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let job = self.store.job_by_id(id).await.unwrap().unwrap();
            if job.is_completed {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the job did not finish: {job:?}",
                self.ctx()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs a backup to the case's target; a successful one's view is remembered.
    async fn backup(&mut self) -> Job {
        let (storage, params) = self.target();
        let job = self
            .core
            .start_backup(&self.owner, Some(storage), params, false, false)
            .await
            .unwrap();
        let job = self.wait(job.id).await;
        if job.error.is_empty() && job.status == job_status::COMPLETED {
            let view = self.view().await;
            self.expected.insert(job.id, view);
        }
        job
    }

    async fn restore(&self, id: TaskId) -> Job {
        let req = RestoreRequest {
            backupid: Some(id.to_string()),
            ..Default::default()
        };
        let job = self.core.start_restore(&self.owner, req).await.unwrap();
        self.wait(job.id).await
    }

    fn check_outcome(&self, job: &Job, expect: Expect) -> bool {
        assert!(job.is_completed, "{}: {job:?}", self.ctx());
        let failed = !job.error.is_empty();
        if failed {
            assert_eq!(job.status, job_status::COMPLETED, "{}: {job:?}", self.ctx());
            assert!(!job.error.contains("internal error"), "{}: {job:?}", self.ctx());
        }
        match expect {
            Expect::Fail => assert!(failed, "{}: the job did not report the failure: {job:?}", self.ctx()),
            Expect::Succeed => assert!(!failed, "{}: the job failed: {job:?}", self.ctx()),
            Expect::Either => {}
        }
        !failed
    }

    async fn records(&self) -> Vec<BackupRecord> {
        self.store.records(self.owner.portal.id).await.unwrap()
    }

    /// The repository store of the case, without faults.
    async fn repo_store(&self) -> Option<Arc<dyn BlobStore>> {
        match self.mode {
            Mode::Plain => None,
            Mode::LocalRepo => Some(Arc::new(
                LocalStore::open(self.local.join("backspace-repository")).await.unwrap(),
            )),
            Mode::DataStoreRepo => Some(Arc::new(PrefixStore::new(self.files.clone(), "repository").unwrap())),
        }
    }

    /// What no record or row references, and what is half-made: empty when clean.
    async fn unreferenced(&self) -> Vec<String> {
        let mut out = Vec::new();
        let portal = self.owner.portal.id;
        let rows: HashSet<String> = self
            .store
            .snapshot(portal)
            .await
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.blob_key)
            .collect();
        let prefix = BlobKey::new(format!("portals/{portal}/files")).unwrap();
        for k in self.files.list(&prefix).await.unwrap() {
            if !rows.contains(k.as_str()) {
                out.push(format!("file blob {k} has no row"));
            }
        }
        let records = self.records().await;
        let paths: HashSet<&str> = records.iter().map(|r| r.storage_path.as_str()).collect();
        for k in self.files.list(&BlobKey::new("backups").unwrap()).await.unwrap() {
            if !paths.contains(k.as_str()) {
                out.push(format!("archive {k} has no record"));
            }
        }
        for tmp in [
            self.dir.join("files/.tmp"),
            self.local.join("backspace-repository/.tmp"),
        ] {
            if let Ok(entries) = std::fs::read_dir(&tmp) {
                out.extend(entries.map(|e| format!("temporary file {}", e.unwrap().path().display())));
            }
        }
        if let Some(store) = self.repo_store().await {
            if store.size(&BlobKey::new("config").unwrap()).await.unwrap().is_some() {
                out.extend(repository_leftovers(store, &paths).await);
            }
        }
        out
    }

    /// The cleaner's step, then (bounded) until nothing unreferenced is left.
    async fn cleanup(&self, now: i64) {
        self.core.run_cleaner(now).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = self.unreferenced().await;
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: left after the cleanup: {left:#?}",
                self.ctx()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The invariants, faults cleared: every listed record verifies and restores byte for byte;
    /// nothing unreferenced survives the cleanup.
    async fn settle(&self) {
        self.faults.clear();
        let history = self.core.backup_history(&self.owner, false).await.unwrap();
        for r in &history {
            let v = self.core.verify_record(r).await.unwrap();
            if self.lost.contains(&r.id) {
                assert!(
                    !v.ok && !v.damaged.is_empty(),
                    "{}: a damaged backup verifies: {v:?}",
                    self.ctx()
                );
            } else {
                assert!(
                    v.ok && v.damaged.is_empty(),
                    "{}: record {} fails verify: {v:?}",
                    self.ctx(),
                    r.id
                );
            }
        }
        self.cleanup(backspace_types::datetime::now_ms()).await;
        for r in history.iter().filter(|r| !self.lost.contains(&r.id)) {
            let want = self
                .expected
                .get(&r.id)
                .unwrap_or_else(|| panic!("{}: unknown record {r:?}", self.ctx()));
            let job = self.restore(r.id).await;
            assert_eq!(job.error, "", "{}: restoring record {} failed", self.ctx(), r.id);
            assert!(
                self.view().await == *want,
                "{}: record {} restored something else",
                self.ctx(),
                r.id
            );
            self.unlocked().await;
        }
    }

    async fn unlocked(&self) {
        let portal = self.store.portal(self.owner.portal.id).await.unwrap().unwrap();
        assert_eq!(portal.status, 0, "{}: the portal stays locked", self.ctx());
    }

    /// Polls (bounded) until a fault has fired: a job or collection ran into it.
    async fn fired(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.faults.fired().is_empty() {
            assert!(Instant::now() < deadline, "{}: no fault fired", self.ctx());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A repository's leftovers: snapshots without a record, locks, packs no index names, packs
/// without a referenced chunk. A collection may be rewriting the repository meanwhile: what
/// cannot be read now is reported, to be polled again. (Chunks a record needs are `verify`'s.)
async fn repository_leftovers(store: Arc<dyn BlobStore>, records: &HashSet<&str>) -> Vec<String> {
    match read_leftovers(store, records).await {
        Ok(out) => out,
        Err(e) => vec![format!("the repository cannot be read now: {e}")],
    }
}

async fn read_leftovers(
    store: Arc<dyn BlobStore>,
    records: &HashSet<&str>,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let repo = Repository::open(store.clone(), None).await?;
    let mut referenced = HashSet::new();
    for id in repo.snapshots().await? {
        if !records.contains(id.as_str()) {
            out.push(format!("snapshot {id} has no record"));
        }
        let snap = repo.snapshot(&id).await?;
        referenced.extend(snap.entries.iter().flat_map(|e| e.chunks.iter().map(|(c, _)| *c)));
    }
    for k in store.list(&BlobKey::new("locks")?).await? {
        out.push(format!("lock {k}"));
    }
    let index = repo.load_index().await?;
    let indexed: HashSet<String> = index.values().map(|(p, _)| p.key()).collect();
    let live: HashSet<String> = referenced
        .iter()
        .filter_map(|c| index.get(c))
        .map(|(p, _)| p.key())
        .collect();
    for k in store.list(&BlobKey::new("packs")?).await? {
        let p = k.as_str().to_owned();
        if !indexed.contains(&p) {
            out.push(format!("pack {p} is in no index"));
        } else if !live.contains(&p) {
            out.push(format!("pack {p} holds no chunk a snapshot uses"));
        }
    }
    Ok(out)
}

/// Runs cases a few at a time (each has its own database, stores and services), every one to
/// its end; then fails with the count of the cases that failed (each printed its panic).
async fn run_all<F, Fut>(cases: Vec<F>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let total = cases.len();
    let failed = futures_util::stream::iter(cases.into_iter().map(|c| tokio::spawn(c())))
        .buffer_unordered(8)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    assert_eq!(failed, 0, "{failed} of {total} cases failed (seed {})", seed());
}

/// A slow store: the first call, and then each with a seeded chance, waits.
fn slow() -> Vec<Rule> {
    let delay = Fault::Delay(Duration::from_millis(20));
    vec![
        Rule::new(&Op::ALL, delay.clone()).nth(1),
        Rule::new(&Op::ALL, delay).chance(0.3),
    ]
}

fn writes_under(prefix: &str, fault: Fault) -> Rule {
    Rule::new(&Op::WRITES, fault).under(prefix)
}

fn reads_under(prefix: &str, fault: Fault) -> Rule {
    Rule::new(&Op::READS, fault).under(prefix)
}

/// (name, mode, rules, expectation) of the backup cases.
type Case = (String, Mode, Vec<Rule>, Expect);

fn backup_cases() -> Vec<Case> {
    use Expect::*;
    use Fault::*;
    let mut cases: Vec<Case> = Vec::new();
    for mode in [Mode::LocalRepo, Mode::DataStoreRepo] {
        let repo = |r: Rule| r.in_store(REPO);
        let mut add = |name: &str, rules: Vec<Rule>, expect| cases.push((name.to_owned(), mode, rules, expect));
        for fault in [Error, Partial(1000), ErrorAfter] {
            add(
                &format!("pack write {fault:?}"),
                vec![repo(writes_under("packs/", fault.clone()).nth(1))],
                Fail,
            );
            add(
                &format!("index write {fault:?}"),
                vec![repo(writes_under("index/", fault.clone()).nth(1))],
                Fail,
            );
            add(
                &format!("snapshot write {fault:?}"),
                vec![repo(writes_under("snapshots/", fault.clone()).nth(1))],
                Fail,
            );
            add(
                &format!("lock write {fault:?}"),
                vec![repo(writes_under("locks/", fault.clone()).nth(1))],
                Fail,
            );
        }
        add(
            "lock removal Error",
            vec![repo(Rule::new(&[Op::Delete], Error).under("locks/").nth(1))],
            Either,
        );
        add("sync Error", vec![repo(Rule::new(&[Op::Sync], Error).nth(1))], Fail);
        add(
            "index listing Error",
            vec![repo(Rule::new(&[Op::List], Error).under("index").nth(1))],
            Fail,
        );
        add(
            "file read Error",
            vec![reads_under("portals/", Error).in_store(FILES).nth(2)],
            Fail,
        );
        add(
            "file read Partial",
            vec![reads_under("portals/", Partial(5000)).in_store(FILES).nth(1)],
            Fail,
        );
        add(
            "file vanishes",
            vec![reads_under("portals/", Vanish).in_store(FILES).nth(2)],
            Succeed,
        );
        add("slow store", slow(), Succeed);
    }
    let mut add = |name: &str, rules: Vec<Rule>, expect| cases.push((name.to_owned(), Mode::Plain, rules, expect));
    for fault in [Error, Partial(1000), ErrorAfter] {
        add(
            &format!("archive write {fault:?}"),
            vec![writes_under("backups/", fault.clone())],
            Fail,
        );
    }
    add("file read Error", vec![reads_under("portals/", Error).nth(2)], Fail);
    add(
        "file read Partial",
        vec![reads_under("portals/", Partial(5000)).nth(1)],
        Fail,
    );
    add("file vanishes", vec![reads_under("portals/", Vanish).nth(2)], Either);
    add(
        "file size Error",
        vec![Rule::new(&[Op::Size], Error).under("portals/").nth(1)],
        Fail,
    );
    add("slow store", slow(), Succeed);
    cases
}

/// Faults drawn from the seed: any operation of either store, any fault, on the n-th call
/// or by chance.
fn generated_cases(n: usize) -> Vec<Case> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed());
    (0..n)
        .map(|i| {
            let mode = [Mode::Plain, Mode::LocalRepo, Mode::DataStoreRepo][rng.gen_range(0..3)];
            let op = Op::ALL[rng.gen_range(0..Op::ALL.len())];
            let fault = match rng.gen_range(0..5) {
                0 => Fault::Error,
                1 => Fault::Partial(rng.gen_range(0..200_000)),
                2 => Fault::Delay(Duration::from_millis(rng.gen_range(1..30))),
                3 => Fault::Vanish,
                _ => Fault::ErrorAfter,
            };
            let store = if rng.gen_bool(0.5) { FILES } else { REPO };
            let mut rule = Rule::new(&[op], fault.clone()).in_store(store);
            rule = if rng.gen_bool(0.5) {
                rule.nth(rng.gen_range(1..4))
            } else {
                rule.chance(0.2)
            };
            // Vanishing is data loss by the store: kept to the portal's live file reads, where
            // the backup must leave the file out or fail.
            if fault == Fault::Vanish {
                rule = Rule::new(&Op::READS, fault.clone())
                    .in_store(FILES)
                    .under("portals/")
                    .nth(2);
            }
            (
                format!("generated {i}: {op:?} {fault:?} in {store}"),
                mode,
                vec![rule],
                Expect::Either,
            )
        })
        .collect()
}

/// A backup met by a fault: it fails with a message and leaves nothing, or it succeeds and
/// restores; an earlier backup is untouched either way.
async fn backup_case(name: String, mode: Mode, rules: Vec<Rule>, expect: Expect) {
    let mut f = fixture(&name, mode, seed()).await;
    let first = f.backup().await;
    assert_eq!(first.error, "", "{}: the first backup failed", f.ctx());
    f.change().await;
    for r in rules {
        f.faults.add(r);
    }
    let job = f.backup().await;
    let ok = f.check_outcome(&job, expect);
    if !name.starts_with("generated") {
        assert!(!f.faults.fired().is_empty(), "{}: no fault fired", f.ctx());
    }
    let records = f.records().await;
    assert_eq!(records.len(), if ok { 2 } else { 1 }, "{}: {records:#?}", f.ctx());
    // The store is well again: the next backup succeeds, whole.
    f.faults.clear();
    let next = f.backup().await;
    assert_eq!(next.error, "", "{}: the backup after the fault failed", f.ctx());
    f.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_meet_faults_and_keep_the_invariants() {
    let cases: Vec<_> = backup_cases()
        .into_iter()
        .chain(generated_cases(12))
        .map(|(name, mode, rules, expect)| move || backup_case(name, mode, rules, expect))
        .collect();
    run_all(cases).await;
}

/// A restore met by a fault: the portal ends exactly as before it (and unlocked), staged bytes
/// go, the job says why; or it succeeds and the portal is the backup's.
async fn restore_case(name: String, mode: Mode, rules: Vec<Rule>, expect: Expect) {
    let mut f = fixture(&name, mode, seed()).await;
    let first = f.backup().await;
    assert_eq!(first.error, "", "{}", f.ctx());
    f.change().await;
    let before = f.exact().await;
    for r in rules {
        f.faults.add(r);
    }
    let job = f.restore(first.id).await;
    let ok = f.check_outcome(&job, expect);
    assert!(!f.faults.fired().is_empty(), "{}: no fault fired", f.ctx());
    f.unlocked().await;
    if ok {
        assert!(
            f.view().await == f.expected[&first.id],
            "{}: the restored portal differs",
            f.ctx()
        );
    } else {
        let after = f.exact().await;
        assert!(after == before, "{}: a failed restore changed the portal", f.ctx());
    }
    if mode != Mode::Plain && f.faults.fired().iter().any(|x| x.fault == Fault::Vanish) {
        f.lost.insert(first.id);
    }
    f.settle().await;
}

fn restore_cases() -> Vec<Case> {
    use Expect::*;
    use Fault::*;
    let mut cases: Vec<Case> = Vec::new();
    for mode in [Mode::Plain, Mode::LocalRepo, Mode::DataStoreRepo] {
        let mut add = |name: &str, rules: Vec<Rule>, expect| cases.push((name.to_owned(), mode, rules, expect));
        // The staged files, in the file store.
        for fault in [Error, Partial(100), ErrorAfter] {
            add(
                &format!("staging write {fault:?}"),
                vec![writes_under("portals/", fault.clone()).in_store(FILES).nth(2)],
                Fail,
            );
        }
        add(
            "staging sync Error",
            vec![Rule::new(&[Op::Sync], Error).in_store(FILES)],
            Fail,
        );
        add(
            "staging fails and its cleanup too",
            vec![
                writes_under("portals/", Error).in_store(FILES).nth(3),
                Rule::new(&[Op::Delete], Error).in_store(FILES).under("portals/"),
            ],
            Fail,
        );
        add("slow store", slow(), Succeed);
    }
    let mut add = |name: &str, mode, rules: Vec<Rule>, expect| cases.push((name.to_owned(), mode, rules, expect));
    // The archive: the first read verifies it, the second stages it.
    for nth in [1, 2] {
        for fault in [Error, Partial(20_000), Vanish] {
            add(
                &format!("archive read {nth} {fault:?}"),
                Mode::Plain,
                vec![reads_under("backups/", fault.clone()).nth(nth)],
                Fail,
            );
        }
    }
    for mode in [Mode::LocalRepo, Mode::DataStoreRepo] {
        for fault in [Error, Partial(20_000), Vanish] {
            add(
                &format!("pack read {fault:?}"),
                mode,
                vec![reads_under("packs/", fault.clone()).in_store(REPO).nth(1)],
                Fail,
            );
        }
        add(
            "snapshot read Error",
            mode,
            vec![reads_under("snapshots/", Error).in_store(REPO).nth(1)],
            Fail,
        );
        add(
            "index read Error",
            mode,
            vec![reads_under("index/", Error).in_store(REPO).nth(1)],
            Fail,
        );
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_meet_faults_and_keep_the_invariants() {
    let cases: Vec<_> = restore_cases()
        .into_iter()
        .map(|(name, mode, rules, expect)| move || restore_case(name, mode, rules, expect))
        .collect();
    run_all(cases).await;
}

/// Deleting a backup (and the collection it starts) met by a fault: the delete fails and the
/// backup stays whole, or it goes; the other backup is untouched; the next cleanup leaves
/// nothing unreferenced.
async fn delete_case(name: String, mode: Mode, rules: Vec<Rule>) {
    let mut f = fixture(&name, mode, seed()).await;
    let first = f.backup().await;
    f.change().await;
    let second = f.backup().await;
    assert_eq!((first.error.as_str(), second.error.as_str()), ("", ""), "{}", f.ctx());
    for r in rules {
        f.faults.add(r);
    }
    let deleted = f.core.delete_backup(&f.owner, first.id).await;
    if let Err(e) = &deleted {
        assert!(!e.to_string().is_empty());
        assert!(
            f.records().await.iter().any(|r| r.id == first.id),
            "{}: a failed delete dropped the record",
            f.ctx()
        );
    } else {
        assert!(
            f.records().await.iter().all(|r| r.id != first.id),
            "{}: the record stayed",
            f.ctx()
        );
    }
    // The collection after the delete runs in the background, into the faults.
    f.fired().await;
    f.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_collections_meet_faults_and_keep_the_invariants() {
    use Fault::*;
    let mut cases: Vec<(String, Mode, Vec<Rule>)> = Vec::new();
    for fault in [Error, ErrorAfter] {
        cases.push((
            format!("archive delete {fault:?}"),
            Mode::Plain,
            vec![Rule::new(&[Op::Delete], fault.clone()).under("backups/")],
        ));
    }
    for mode in [Mode::LocalRepo, Mode::DataStoreRepo] {
        let repo = |ops: &[Op], fault: Fault, under: &str| Rule::new(ops, fault).in_store(REPO).under(under);
        let mut add = |name: &str, rules: Vec<Rule>| cases.push((name.to_owned(), mode, rules));
        add("snapshot delete Error", vec![repo(&[Op::Delete], Error, "snapshots/")]);
        add(
            "snapshot delete ErrorAfter",
            vec![repo(&[Op::Delete], ErrorAfter, "snapshots/")],
        );
        add(
            "collection: index listing Error",
            vec![repo(&[Op::List], Error, "index").nth(1)],
        );
        add(
            "collection: snapshot listing Error",
            vec![repo(&[Op::List], Error, "snapshots").nth(1)],
        );
        add(
            "collection: lock write Error",
            vec![repo(&[Op::Put], Error, "locks/").nth(1)],
        );
        add(
            "collection: index read Partial",
            vec![repo(&Op::READS, Partial(10), "index/").nth(1)],
        );
        add(
            "collection: pack read Error",
            vec![repo(&Op::READS, Error, "packs/").nth(1)],
        );
        add(
            "collection: new pack write Error",
            vec![repo(&Op::WRITES, Error, "packs/").nth(1)],
        );
        add(
            "collection: new index write ErrorAfter",
            vec![repo(&Op::WRITES, ErrorAfter, "index/").nth(1)],
        );
        add(
            "collection: index delete Error",
            vec![repo(&[Op::Delete], Error, "index/").nth(1)],
        );
        add(
            "collection: pack delete Error",
            vec![repo(&[Op::Delete], Error, "packs/").nth(1)],
        );
        add(
            "collection: lock delete Error",
            vec![repo(&[Op::Delete], Error, "locks/").nth(1)],
        );
    }
    let cases: Vec<_> = cases
        .into_iter()
        .map(|(name, mode, rules)| move || delete_case(name, mode, rules))
        .collect();
    run_all(cases).await;
}

/// The cleaner met by a fault while it deletes expired DataStore backups and released blobs:
/// what it could not delete stays listed (a record, a garbage row) and goes at its next run.
async fn cleaner_case(name: String, mode: Mode, rules: Vec<Rule>) {
    let mut f = fixture(&name, mode, seed()).await;
    let first = f.backup().await;
    f.change().await;
    let second = f.backup().await;
    assert_eq!((first.error.as_str(), second.error.as_str()), ("", ""), "{}", f.ctx());
    // A blob a stop left behind after a restore released it.
    let released = format!("portals/{}/files/released", f.owner.portal.id);
    f.files
        .put(&BlobKey::new(released.as_str()).unwrap(), stream(b"old".to_vec()))
        .await
        .unwrap();
    f.store
        .add_blob_garbage(f.owner.portal.id, std::slice::from_ref(&released), 1)
        .await
        .unwrap();
    for r in rules {
        f.faults.add(r);
    }
    let expired = f.records().await.iter().filter_map(|r| r.expires_at).max().unwrap() + 1;
    let first_run = f.core.run_cleaner(expired).await;
    assert!(
        !f.faults.fired().is_empty(),
        "{}: no fault fired ({first_run:?})",
        f.ctx()
    );
    f.faults.clear();
    // Whatever the first run left, listed, goes now.
    f.cleanup(expired + 1).await;
    assert!(f.records().await.is_empty(), "{}: an expired record stayed", f.ctx());
    assert!(
        f.store.blob_garbage(10, i64::MAX).await.unwrap().is_empty(),
        "{}: a garbage row stayed",
        f.ctx()
    );
    f.expected.clear();
    f.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaner_meets_faults_and_catches_up() {
    use Fault::*;
    let mut cases: Vec<(String, Mode, Vec<Rule>)> = Vec::new();
    for mode in [Mode::Plain, Mode::DataStoreRepo] {
        let under = if mode == Mode::Plain {
            "backups/"
        } else {
            "repository/snapshots/"
        };
        for fault in [Error, ErrorAfter] {
            cases.push((
                format!("expired backup delete {fault:?}"),
                mode,
                vec![Rule::new(&[Op::Delete], fault.clone())
                    .in_store(FILES)
                    .under(under)
                    .nth(1)],
            ));
        }
        cases.push((
            "released blob delete Error".to_owned(),
            mode,
            vec![Rule::new(&[Op::Delete], Error).in_store(FILES).containing("released")],
        ));
        cases.push((
            "expired record check Error".to_owned(),
            mode,
            vec![
                Rule::new(&[Op::Delete, Op::Size, Op::List], Error)
                    .in_store(FILES)
                    .nth(1),
                Rule::new(&[Op::Delete, Op::Size, Op::List], Error)
                    .in_store(FILES)
                    .chance(0.5),
            ],
        ));
    }
    let cases: Vec<_> = cases
        .into_iter()
        .map(|(name, mode, rules)| move || cleaner_case(name, mode, rules))
        .collect();
    run_all(cases).await;
}

/// Objects that vanish after a backup was made: `verify` names the damaged backup, a restore
/// of it fails and leaves the portal as it was, the history drops a plain archive that is
/// gone, and a later backup is either whole or named damaged too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_objects_are_named_and_never_restored_from() {
    let cases: Vec<_> = [Mode::Plain, Mode::LocalRepo, Mode::DataStoreRepo]
        .into_iter()
        .flat_map(|mode| [(mode, true), (mode, false)])
        .map(|(mode, vanish)| move || vanished_case(mode, vanish))
        .collect();
    run_all(cases).await;
}

/// `vanish`: an object disappears; otherwise one comes back shorter (a torn read).
async fn vanished_case(mode: Mode, vanish: bool) {
    let name = if vanish {
        "an object vanishes"
    } else {
        "a read comes back short"
    };
    let mut f = fixture(name, mode, seed()).await;
    let first = f.backup().await;
    assert_eq!(first.error, "", "{}", f.ctx());
    let record = f.records().await.remove(0);
    let fault = if vanish { Fault::Vanish } else { Fault::Partial(100) };
    let rule = match mode {
        Mode::Plain => reads_under("backups/", fault),
        _ => reads_under("packs/", fault).in_store(REPO),
    };
    f.faults.add(rule.nth(1));
    match f.core.verify_record(&record).await {
        Ok(v) => assert!(
            !v.ok && !v.damaged.is_empty(),
            "{}: verify passed a damaged backup: {v:?}",
            f.ctx()
        ),
        Err(e) => assert!(
            vanish && mode == Mode::Plain && e.to_string().contains("missing"),
            "{}: verify failed: {e}",
            f.ctx()
        ),
    }
    assert!(!f.faults.fired().is_empty(), "{}", f.ctx());
    f.faults.clear();
    if !vanish {
        // A torn read damages nothing stored.
        f.settle().await;
        return;
    }
    f.change().await;
    let before = f.exact().await;
    let job = f.restore(first.id).await;
    assert!(
        !job.error.is_empty(),
        "{}: a restore from a damaged backup succeeded",
        f.ctx()
    );
    assert!(
        f.exact().await == before,
        "{}: the failed restore changed the portal",
        f.ctx()
    );
    f.unlocked().await;
    let history = f.core.backup_history(&f.owner, false).await.unwrap();
    if mode == Mode::Plain {
        assert!(
            history.is_empty(),
            "{}: the record of a vanished archive stayed",
            f.ctx()
        );
    }
    // The next backup is whole: it does not lean on what vanished.
    let next = f.backup().await;
    assert_eq!(next.error, "", "{}", f.ctx());
    let record = f.records().await.into_iter().find(|r| r.id == next.id).unwrap();
    let v = f.core.verify_record(&record).await.unwrap();
    assert!(v.ok, "{}: the backup after the loss is damaged: {v:?}", f.ctx());
    let job = f.restore(next.id).await;
    assert_eq!(job.error, "", "{}", f.ctx());
    assert!(f.view().await == f.expected[&next.id], "{}", f.ctx());
}

/// A put whose answer is lost (the store kept the object, the caller saw an error) leaves no
/// unreferenced object behind: an upload into the portal, and a backup into a portal folder
/// (`Documents`, which stores its archive as an upload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_put_leaves_nothing_behind() {
    let f = fixture("lost put answers", Mode::Plain, seed()).await;
    f.faults.add(writes_under("portals/", Fault::ErrorAfter).nth(1));
    let up = Upload {
        title: "lost.bin".into(),
        data: stream(noise(1000, 9)),
        create_new_if_exist: false,
        unlimited: false,
    };
    assert!(f.core.upload(&f.owner, f.my, up).await.is_err(), "{}", f.ctx());
    f.faults.clear();
    f.faults.add(writes_under("portals/", Fault::ErrorAfter).nth(1));
    let params = BTreeMap::from([("folderid".to_owned(), f.my.to_string())]);
    let job = f
        .core
        .start_backup(&f.owner, Some(StorageType::Documents), Some(params), false, false)
        .await
        .unwrap();
    let job = f.wait(job.id).await;
    f.check_outcome(&job, Expect::Fail);
    assert_eq!(f.faults.fired().len(), 2, "{}", f.ctx());
    assert!(f.records().await.is_empty(), "{}", f.ctx());
    f.settle().await;
}
