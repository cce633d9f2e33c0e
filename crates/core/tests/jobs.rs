//! Job behaviour that needs control over time and storage: cancel, crash recovery, the
//! scheduler with a chosen clock, retention, expiry, the restore lock. The file store is the
//! real local store behind a gate that can hold reads or writes (fault injection); nothing
//! here waits on a timer for synchronisation.

use backspace_core::backup::{next_fire, BackupSettings};
use backspace_core::{Caller, Core, OwnerSeed, Settings, Upload};
use backspace_meta::{
    job_status, JobKind, JobStore, MetaStore, PortalStore, RecordStore, SnapshotStore, SqlStore, TreeStore,
};
use backspace_storage::{BlobKey, BlobStore, ByteStream, LocalStore, StorageError};
use backspace_types::dto::backup::CronParamsRequest;
use backspace_types::{BackupPeriod, FolderType, StorageType};
use bytes::Bytes;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// A local store whose reads or writes wait at a gate while it is closed.
struct Gate {
    inner: LocalStore,
    hold_gets: AtomicBool,
    hold_puts: AtomicBool,
    entered: Notify,
    open: watch::Sender<bool>,
}

impl Gate {
    async fn pass(&self, held: &AtomicBool) {
        if held.load(Ordering::SeqCst) {
            self.entered.notify_one();
            let mut rx = self.open.subscribe();
            let _ = rx.wait_for(|open| *open).await;
        }
    }
    fn close(&self, gets: bool, puts: bool) {
        self.open.send_replace(false);
        self.hold_gets.store(gets, Ordering::SeqCst);
        self.hold_puts.store(puts, Ordering::SeqCst);
    }
    fn release(&self) {
        self.hold_gets.store(false, Ordering::SeqCst);
        self.hold_puts.store(false, Ordering::SeqCst);
        self.open.send_replace(true);
    }
}

#[async_trait::async_trait]
impl BlobStore for Gate {
    async fn put(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.pass(&self.hold_puts).await;
        self.inner.put(key, data).await
    }
    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError> {
        self.pass(&self.hold_gets).await;
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError> {
        self.inner.get_range(key, range).await
    }
    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        self.inner.size(key).await
    }
    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }
}

struct Fixture {
    core: Arc<Core>,
    store: Arc<SqlStore>,
    gate: Arc<Gate>,
    owner: Caller,
    dir: PathBuf,
}

impl Drop for Fixture {
    // A failed assertion must not leave a job blocked at the gate: the runtime would wait for
    // it forever when the test ends.
    fn drop(&mut self) {
        self.gate.release();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The metadata database of a test: SQLite in `dir`, or with `BACKSPACE_TEST_DATABASE=postgres`
/// a fresh database on the server named by `BACKSPACE_TEST_POSTGRES_URL` (CI runs this suite on
/// both).
async fn database_url(dir: &std::path::Path) -> String {
    if std::env::var("BACKSPACE_TEST_DATABASE").as_deref() != Ok("postgres") {
        return format!("sqlite://{}?mode=rwc", dir.join("m.db").display());
    }
    use sqlx::Connection;
    let admin = std::env::var("BACKSPACE_TEST_POSTGRES_URL")
        .expect("BACKSPACE_TEST_DATABASE=postgres needs BACKSPACE_TEST_POSTGRES_URL");
    let name = format!("bs_jobs_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("backspace-jobs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("local")).unwrap();
    let store = Arc::new(SqlStore::connect(&database_url(&dir).await).await.unwrap());
    let gate = Arc::new(Gate {
        inner: LocalStore::open(dir.join("files")).await.unwrap(),
        hold_gets: AtomicBool::new(false),
        hold_puts: AtomicBool::new(false),
        entered: Notify::new(),
        open: watch::channel(true).0,
    });
    let settings = Settings {
        backup: BackupSettings {
            local_roots: vec![dir.join("local")],
            ..BackupSettings::default()
        },
        ..Settings::default()
    };
    let core = Arc::new(Core::new(store.clone(), gate.clone(), settings));
    let seed = OwnerSeed {
        alias: "jobs".into(),
        email: Some("o@example.com".into()),
        password: Some("Owner-Pass-1".into()),
    };
    core.ensure_default_portal(seed).await.unwrap();
    let owner = core.default_owner().await.unwrap();
    let my = store
        .section(owner.portal.id, FolderType::User, Some(owner.user.id))
        .await
        .unwrap()
        .unwrap();
    for i in 0..3u8 {
        let data: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from(vec![i; 100_000]))]));
        let up = Upload {
            title: format!("f{i}.bin"),
            data,
            create_new_if_exist: false,
            unlimited: false,
        };
        core.upload(&owner, my.id, up).await.unwrap();
    }
    Fixture {
        core,
        store,
        gate,
        owner,
        dir,
    }
}

/// A second instance ("other") on the fixture's database and blob store.
fn other_instance(f: &Fixture) -> Arc<Core> {
    Arc::new(Core::new(
        f.store.clone(),
        f.gate.clone(),
        Settings {
            instance: "other".into(),
            ..Settings::default()
        },
    ))
}

/// Waits (bounded) for the portal's job of `kind` to complete, by polling its record.
async fn finished(f: &Fixture, kind: JobKind) -> backspace_meta::Job {
    for _ in 0..2000 {
        let job = f.store.job(f.owner.portal.id, kind).await.unwrap().unwrap();
        if job.is_completed {
            return job;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the job did not finish");
}

fn datastore_blobs(f: &Fixture) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { count(&p) } else { 1 })
            .sum()
    }
    count(&f.dir.join("files/backups"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_backup_and_leaves_nothing() {
    let f = fixture().await;
    f.gate.close(true, false);
    let job = f
        .core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    assert_eq!(job.status, job_status::CREATED);
    // The job is now inside the archive, reading a file's bytes.
    f.gate.entered.notified().await;
    // A second start while it runs returns the same job.
    let again = f
        .core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    assert_eq!(again.id, job.id);
    assert!(f.core.cancel_backup(&f.owner).await.unwrap());
    f.gate.release();
    let done = finished(&f, JobKind::Backup).await;
    assert_eq!(done.status, job_status::CANCELED);
    assert_eq!(done.warning.as_deref(), Some("Backup cancelled"));
    assert!(
        f.store.records(f.owner.portal.id).await.unwrap().is_empty(),
        "a cancelled backup left a record"
    );
    assert_eq!(datastore_blobs(&f), 0, "a cancelled backup left an archive");
    assert_eq!(
        std::fs::read_dir(f.dir.join("files/.tmp")).unwrap().count(),
        0,
        "a temporary file was left"
    );
    assert!(!f.core.cancel_backup(&f.owner).await.unwrap(), "nothing left to cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_a_crash_is_failed_and_its_partial_output_removed() {
    let f = fixture().await;
    f.gate.close(true, false);
    let local = f.dir.join("local");
    let params = [("filepath".to_owned(), local.display().to_string())]
        .into_iter()
        .collect();
    f.core
        .start_backup(&f.owner, Some(StorageType::Local), Some(params), false, false)
        .await
        .unwrap();
    f.gate.entered.notified().await;
    // The target opens its partial file beside the reader; wait (bounded) until it has.
    let mut partial = Vec::new();
    for _ in 0..1000 {
        partial = std::fs::read_dir(&local).unwrap().map(|e| e.unwrap().path()).collect();
        if !partial.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(partial.len(), 1, "the job writes to one partial file: {partial:?}");
    assert!(partial[0].file_name().unwrap().to_string_lossy().ends_with(".partial"));

    // The process dies here; a new one starts on the same database and recovers.
    let restarted = Core::new(f.store.clone(), f.gate.clone(), Settings::default());
    assert_eq!(restarted.recover_jobs(true).await.unwrap(), 1);
    let job = f.store.job(f.owner.portal.id, JobKind::Backup).await.unwrap().unwrap();
    assert!(job.is_completed);
    assert!(job.error.contains("server stopped"), "{}", job.error);
    assert!(!partial[0].exists(), "the partial output survived recovery");
    assert!(f.store.records(f.owner.portal.id).await.unwrap().is_empty());
    // The "dead" process's task still waits at the gate; the fixture releases it when dropped
    // so the runtime can stop. Its job is already finished in the database.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_once_when_due_and_retention_keeps_the_newest() {
    let f = fixture().await;
    let cron = CronParamsRequest {
        period: Some(BackupPeriod::EveryDay),
        hour: Some(3),
        day: None,
    };
    f.core
        .create_schedule(&f.owner, Some(StorageType::DataStore), None, Some(2), Some(cron), false)
        .await
        .unwrap();
    let schedule = f.core.schedule(&f.owner, false).await.unwrap().unwrap();
    assert_eq!(schedule.cron, "0 0 3 ? * *");
    let due = next_fire(&schedule.cron, "UTC", schedule.created_at).unwrap();
    assert!(due > schedule.created_at);

    assert_eq!(
        f.core.run_due_schedules(due - 1000).await.unwrap(),
        0,
        "fired before its time"
    );
    assert_eq!(f.core.run_due_schedules(due + 1000).await.unwrap(), 1);
    assert_eq!(
        f.core.run_due_schedules(due + 2000).await.unwrap(),
        0,
        "fired twice for one slot"
    );
    let job = finished(&f, JobKind::Backup).await;
    assert_eq!(job.error, "");
    assert!(job.is_scheduled);

    // Three days missed while down: one run, not three.
    let day = 24 * 3600 * 1000;
    assert_eq!(f.core.run_due_schedules(due + 3 * day + 1000).await.unwrap(), 1);
    finished(&f, JobKind::Backup).await;
    assert_eq!(f.core.run_due_schedules(due + 3 * day + 2000).await.unwrap(), 0);

    // A manual backup is never pruned; scheduled ones keep the newest two.
    f.core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    finished(&f, JobKind::Backup).await;
    assert_eq!(f.core.run_due_schedules(due + 4 * day + 1000).await.unwrap(), 1);
    finished(&f, JobKind::Backup).await;
    let records = f.store.records(f.owner.portal.id).await.unwrap();
    let scheduled = records.iter().filter(|r| r.is_scheduled).count();
    let manual = records.iter().filter(|r| !r.is_scheduled).count();
    assert_eq!((scheduled, manual), (2, 1), "{records:#?}");
    assert_eq!(datastore_blobs(&f), 3, "pruned archives are deleted");
    assert!(f
        .core
        .schedule(&f.owner, false)
        .await
        .unwrap()
        .unwrap()
        .last_backup_at
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datastore_backups_expire_after_a_day() {
    let f = fixture().await;
    f.core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    finished(&f, JobKind::Backup).await;
    let record = f.store.records(f.owner.portal.id).await.unwrap().remove(0);
    let expires = record.expires_at.unwrap();
    assert_eq!(expires - record.created_at, 24 * 3600 * 1000);
    assert_eq!(f.core.clean_expired(expires - 1).await.unwrap(), 0);
    assert_eq!(f.core.clean_expired(expires).await.unwrap(), 1);
    assert!(f.store.records(f.owner.portal.id).await.unwrap().is_empty());
    assert_eq!(datastore_blobs(&f), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_locks_the_portal_until_it_is_done() {
    let f = fixture().await;
    let backup = f
        .core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    finished(&f, JobKind::Backup).await;
    // Hold the staging writes: the archive is verified, the portal locked, nothing swapped yet.
    f.gate.close(false, true);
    let req = backspace_types::dto::backup::RestoreRequest {
        backupid: Some(backup.id.to_string()),
        ..Default::default()
    };
    f.core.start_restore(&f.owner, req).await.unwrap();
    f.gate.entered.notified().await;
    let portal = f.store.portal(f.owner.portal.id).await.unwrap().unwrap();
    assert_eq!(portal.status, 4, "the portal is not locked during the restore");
    f.gate.release();
    let job = finished(&f, JobKind::Restore).await;
    assert_eq!((job.error.as_str(), job.progress), ("", 100));
    assert_eq!(
        f.store.portal(f.owner.portal.id).await.unwrap().unwrap().status,
        0,
        "still locked after the restore"
    );
}

#[test]
fn the_store_is_a_meta_store() {
    fn assert_meta<T: MetaStore>() {}
    assert_meta::<SqlStore>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_and_restores_of_one_portal_do_not_overlap() {
    let f = fixture().await;
    let first = f
        .core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    finished(&f, JobKind::Backup).await;
    let restore = || backspace_types::dto::backup::RestoreRequest {
        backupid: Some(first.id.to_string()),
        ..Default::default()
    };

    f.gate.close(true, false);
    f.core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    f.gate.entered.notified().await;
    let err = f.core.start_restore(&f.owner, restore()).await.unwrap_err();
    assert!(err.to_string().contains("backup of this portal is running"), "{err}");
    f.gate.release();
    assert_eq!(finished(&f, JobKind::Backup).await.error, "");

    f.gate.close(false, true);
    f.core.start_restore(&f.owner, restore()).await.unwrap();
    f.gate.entered.notified().await;
    let err = f
        .core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("restore of this portal is running"), "{err}");
    f.gate.release();
    assert_eq!(finished(&f, JobKind::Restore).await.error, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_fails_a_job_whose_lease_ran_out() {
    let f = fixture().await;
    f.gate.close(true, false);
    f.core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    f.gate.entered.notified().await;
    let lease = Settings::default().job_lease.as_millis() as i64;
    let other = other_instance(&f);
    let now = backspace_types::datetime::now_ms();
    assert_eq!(
        other.recover_jobs_at(false, now).await.unwrap(),
        0,
        "a live instance's job was taken"
    );
    assert_eq!(
        other.recover_jobs_at(true, now).await.unwrap(),
        0,
        "another instance's job counted as own"
    );
    // Time passes without the first instance renewing its lease: it died.
    assert_eq!(other.recover_jobs_at(false, now + 2 * lease).await.unwrap(), 1);
    let job = f.store.job(f.owner.portal.id, JobKind::Backup).await.unwrap().unwrap();
    assert!(job.is_completed && job.error.contains("server stopped"), "{job:?}");

    // The first instance was only cut off, not dead: when it goes on, it finds its lease gone,
    // stops, and leaves neither a record nor an archive; the job stays failed.
    f.gate.release();
    for _ in 0..2000 {
        if f.core.jobs().is_idle() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(f.core.jobs().is_idle(), "the cut-off job did not stop");
    assert!(
        f.store.records(f.owner.portal.id).await.unwrap().is_empty(),
        "it recorded a backup"
    );
    assert_eq!(datastore_blobs(&f), 0, "its archive was left behind");
    let job = f.store.job(f.owner.portal.id, JobKind::Backup).await.unwrap().unwrap();
    assert!(job.error.contains("server stopped"), "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_fire_a_due_schedule_once() {
    let f = fixture().await;
    let cron = CronParamsRequest {
        period: Some(BackupPeriod::EveryDay),
        hour: Some(4),
        day: None,
    };
    f.core
        .create_schedule(&f.owner, Some(StorageType::DataStore), None, Some(3), Some(cron), false)
        .await
        .unwrap();
    let schedule = f.core.schedule(&f.owner, false).await.unwrap().unwrap();
    let due = next_fire(&schedule.cron, "UTC", schedule.created_at).unwrap();
    let other = other_instance(&f);
    // Both instances' schedulers step at the same moment.
    let (a, b) = tokio::join!(
        f.core.run_due_schedules(due + 1000),
        other.run_due_schedules(due + 1000)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "the schedule fired more than once");
    finished(&f, JobKind::Backup).await;
    assert_eq!(f.store.records(f.owner.portal.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_cleaner_runs_on_one_instance_at_a_time() {
    let f = fixture().await;
    let other = other_instance(&f);
    let now = backspace_types::datetime::now_ms();
    assert_eq!(
        f.core.run_cleaner(now).await.unwrap(),
        Some(0),
        "the first instance takes the lease"
    );
    assert_eq!(
        other.run_cleaner(now + 1).await.unwrap(),
        None,
        "the second skips while it is held"
    );
    assert_eq!(
        f.core.run_cleaner(now + 300_000).await.unwrap(),
        Some(0),
        "the holder renews it"
    );
    let expired = now + 300_000 + backspace_core::backup::CLEANER_LEASE_MS + 1;
    assert_eq!(
        other.run_cleaner(expired).await.unwrap(),
        Some(0),
        "a dead holder's lease is taken over"
    );
    assert_eq!(f.core.run_cleaner(expired + 1).await.unwrap(), None);
}

/// Files a committed restore released but a stop kept from being deleted stay recorded as
/// garbage; the cleaner deletes them and forgets them.
#[tokio::test]
async fn the_cleaner_deletes_released_files_left_by_a_stop() {
    let f = fixture().await;
    let key = left_on_disk(&f, "portals/1/files/released", b"old bytes").await;
    f.store
        .add_blob_garbage(f.owner.portal.id, &[key.to_string()], 1)
        .await
        .unwrap();
    let now = backspace_types::datetime::now_ms();
    f.core.run_cleaner(now).await.unwrap();
    assert_collected(&f, &key, "the released file").await;
}

/// Bytes stored past the gate under `key`, as a server that stopped left them.
async fn left_on_disk(f: &Fixture, key: &str, bytes: &'static [u8]) -> BlobKey {
    let key = BlobKey::new(key.to_owned()).unwrap();
    let data: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(bytes))]));
    f.gate.inner.put(&key, data).await.unwrap();
    key
}

/// Asserts that the cleaner deleted `key` and that no garbage is left recorded.
async fn assert_collected(f: &Fixture, key: &BlobKey, what: &str) {
    assert_eq!(f.gate.inner.size(key).await.unwrap(), None, "{what} survived");
    assert!(f.store.blob_garbage(10, i64::MAX).await.unwrap().is_empty());
}

/// An upload's bytes are written before its row: while the upload runs they are safe from the
/// cleaner, once it is done nothing is left recorded, and bytes whose row never came (the
/// server stopped in between) are the cleaner's when the upload could no longer be running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_s_bytes_are_the_cleaner_s_only_when_their_row_never_came() {
    let f = fixture().await;
    let my = f
        .store
        .section(f.owner.portal.id, FolderType::User, Some(f.owner.user.id))
        .await
        .unwrap()
        .unwrap();
    f.gate.close(false, true);
    let core = f.core.clone();
    let owner = f.owner.clone();
    let upload = tokio::spawn(async move {
        let data: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(b"new bytes"))]));
        let up = Upload {
            title: "late.bin".into(),
            data,
            create_new_if_exist: false,
            unlimited: false,
        };
        core.upload(&owner, my.id, up).await
    });
    // The upload is inside its put: a cleaner run now must leave its bytes alone.
    f.gate.entered.notified().await;
    let now = backspace_types::datetime::now_ms();
    assert_eq!(f.core.sweep_blob_garbage().await.unwrap(), 0);
    let pending = f.store.blob_garbage(10, i64::MAX).await.unwrap();
    assert_eq!(pending.len(), 1, "the upload's key is not recorded: {pending:?}");
    f.gate.release();
    let file = upload.await.unwrap().unwrap();
    assert!(
        f.store.blob_garbage(10, i64::MAX).await.unwrap().is_empty(),
        "the row did not claim its bytes"
    );
    let (_, stream) = f.core.download(&f.owner, file.item.id).await.unwrap();
    let bytes: Vec<Bytes> = futures_util::TryStreamExt::try_collect(stream).await.unwrap();
    assert_eq!(bytes.concat(), b"new bytes");

    // A stop between the bytes and the row: recorded as pending a day ago, they go.
    let key = left_on_disk(&f, "portals/1/files/orphan", b"orphan").await;
    let day = 24 * 60 * 60 * 1000;
    f.store
        .add_pending_blob(f.owner.portal.id, key.as_str(), now - 2 * day, now - day)
        .await
        .unwrap();
    assert_eq!(f.core.sweep_blob_garbage().await.unwrap(), 1);
    assert_collected(&f, &key, "the orphaned bytes").await;
}

/// DocSpace names archives to the second. A backup started in a second that already has an
/// archive (a record of the portal, removed ones too, or any file in the `Local` folder) gets
/// a numbered name and overwrites nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_never_replaces_one_of_the_same_second() {
    let f = fixture().await;
    let local = f.dir.join("local");
    let portal = f.owner.portal.id;
    let name = |ms: i64| {
        let t = backspace_types::plain_utc(ms).replace('T', "_").replace(':', "-");
        format!("{}_{t}.tar.zst", f.owner.portal.alias)
    };
    // Every second this test can run in is taken: by a file for the `Local` backup, by a
    // (removed) record for the `DataStore` one.
    let start = backspace_types::datetime::now_ms();
    let seconds: Vec<i64> = (-1..120).map(|s| start + s * 1000).collect();
    for (i, ms) in seconds.iter().enumerate() {
        std::fs::write(local.join(name(*ms)), format!("someone else's {i}")).unwrap();
        let record = backspace_meta::BackupRecord {
            id: backspace_types::TaskId(uuid::Uuid::new_v4()),
            portal_id: portal,
            is_scheduled: false,
            file_name: name(*ms),
            hash: String::new(),
            size: 0,
            storage_type: 5,
            storage_path: format!("elsewhere/{i}"),
            storage_params: "{}".into(),
            created_at: *ms,
            expires_at: None,
            removed: true,
        };
        f.store.insert_record(&record).await.unwrap();
    }
    let params = [("filepath".to_owned(), local.display().to_string())]
        .into_iter()
        .collect();
    f.core
        .start_backup(&f.owner, Some(StorageType::Local), Some(params), false, false)
        .await
        .unwrap();
    let job = finished(&f, JobKind::Backup).await;
    assert_eq!(job.error, "", "{job:?}");
    f.core
        .start_backup(&f.owner, Some(StorageType::DataStore), None, false, false)
        .await
        .unwrap();
    let job = finished(&f, JobKind::Backup).await;
    assert_eq!(job.error, "", "{job:?}");
    assert!(
        backspace_types::datetime::now_ms() < start + 119_000,
        "the test outran the names it took"
    );

    let records = f.store.records(portal).await.unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let taken: std::collections::BTreeSet<String> = seconds.iter().map(|ms| name(*ms)).collect();
    for r in &records {
        assert!(!taken.contains(&r.file_name), "{} reused a taken name", r.file_name);
        // Numbered: `_2`, or `_3` when the first backup took `_2` in the same second.
        assert!(
            r.file_name.ends_with("_2.tar.zst") || r.file_name.ends_with("_3.tar.zst"),
            "{}",
            r.file_name
        );
    }
    assert_ne!(records[0].file_name, records[1].file_name);
    let local_record = records.iter().find(|r| r.storage_type == 3).expect("the Local record");
    let archive = std::path::Path::new(&local_record.storage_path);
    assert_eq!(archive, local.join(&local_record.file_name));
    assert!(std::fs::read(archive).unwrap().len() > 1000, "the archive is not there");
    for (i, ms) in seconds.iter().enumerate() {
        let text = std::fs::read_to_string(local.join(name(*ms))).unwrap();
        assert_eq!(
            text,
            format!("someone else's {i}"),
            "a file of the folder was overwritten"
        );
    }
    // Nothing else was left in the folder (no partial file).
    assert_eq!(std::fs::read_dir(&local).unwrap().count(), seconds.len() + 1);
}
