//! The store's test suite. Every test runs on SQLite, and on PostgreSQL when
//! `BACKSPACE_TEST_POSTGRES_URL` names a server (an admin URL; each test gets a fresh database).
//! CI sets `BACKSPACE_REQUIRE_POSTGRES=1`, which makes a missing server a failure, not a skip.

use backspace_meta::*;
use backspace_types::{EmployeeType, FolderType, KeyId, PortalId, SessionId, UserId};
use sqlx::Connection;

/// The stores under test; the SQLite file's directory goes when the last store is done.
struct Stores {
    dir: TempDir,
    list: Vec<SqlStore>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl IntoIterator for Stores {
    type Item = SqlStore;
    type IntoIter = StoresIter;
    fn into_iter(self) -> StoresIter {
        StoresIter {
            _dir: self.dir,
            list: self.list.into_iter(),
        }
    }
}

struct StoresIter {
    _dir: TempDir,
    list: std::vec::IntoIter<SqlStore>,
}

impl Iterator for StoresIter {
    type Item = SqlStore;
    fn next(&mut self) -> Option<SqlStore> {
        self.list.next()
    }
}

async fn stores() -> Stores {
    let dir = TempDir(std::env::temp_dir().join(format!("backspace-meta-test-{:x}", rand_u64())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.0.join("meta.db").display());
    let mut out = vec![SqlStore::connect(&sqlite).await.expect("sqlite store")];
    match std::env::var("BACKSPACE_TEST_POSTGRES_URL") {
        Ok(admin) => out.push(
            SqlStore::connect(&fresh_postgres_db(&admin).await)
                .await
                .expect("postgres store"),
        ),
        Err(_) => assert!(
            std::env::var("BACKSPACE_REQUIRE_POSTGRES").is_err(),
            "BACKSPACE_REQUIRE_POSTGRES is set but BACKSPACE_TEST_POSTGRES_URL is not"
        ),
    }
    Stores { dir, list: out }
}

fn rand_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// Creates a new database on the server of `admin` and returns its URL.
async fn fresh_postgres_db(admin: &str) -> String {
    let name = format!("bs_meta_{:x}", rand_u64());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to the postgres admin url");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{name}")
}

fn owner(email: &str) -> NewUser {
    NewUser {
        id: UserId::random(),
        email: email.to_owned(),
        first_name: "Ada".into(),
        last_name: "Owner".into(),
        kind: EmployeeType::DocSpaceAdmin,
        is_owner: true,
        activation_status: 1,
        password_hash: "$argon2id$stub".into(),
        created_by: None,
        now: 1_000,
    }
}

fn portal(alias: &str, is_default: bool) -> NewPortal {
    NewPortal {
        alias: alias.into(),
        name: "Test".into(),
        language: "en-US".into(),
        time_zone: "UTC".into(),
        is_default,
        now: 1_000,
    }
}

#[tokio::test]
async fn portals_are_created_with_owner_and_sections() {
    for store in stores().await {
        let (p, o) = store
            .create_portal(portal("alpha", true), owner("ada@example.com"))
            .await
            .unwrap();
        assert_eq!(p.alias, "alpha");
        assert_eq!(p.owner_id, o.id);
        assert!(o.is_owner && o.is_admin());
        assert_eq!(store.default_portal().await.unwrap().unwrap().id, p.id);
        assert_eq!(store.portal_by_alias("ALPHA").await.unwrap().unwrap().id, p.id);
        for (kind, owner) in [
            (FolderType::VirtualRooms, None),
            (FolderType::Archive, None),
            (FolderType::User, Some(o.id)),
            (FolderType::Trash, Some(o.id)),
        ] {
            let f = store.section(p.id, kind, owner).await.unwrap();
            assert!(f.is_some(), "{kind:?} missing");
        }
        let dup = store
            .create_portal(portal("alpha", false), owner("x@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
        assert_eq!(
            store.portals().await.unwrap().len(),
            1,
            "a failed create left a portal behind"
        );
    }
}

#[tokio::test]
async fn people_are_unique_per_portal_and_isolated() {
    for store in stores().await {
        let (a, _) = store
            .create_portal(portal("aaa", true), owner("same@example.com"))
            .await
            .unwrap();
        // The same owner e-mail on another portal is fine (the api-tests do this).
        let (b, _) = store
            .create_portal(portal("bbb", false), owner("same@example.com"))
            .await
            .unwrap();
        let mut guest = owner("Guest@Example.com");
        guest.kind = EmployeeType::Guest;
        guest.is_owner = false;
        let g = store.create_user(a.id, guest.clone()).await.unwrap();
        assert_eq!(
            store
                .user_by_email(a.id, "guest@EXAMPLE.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            g.id
        );
        assert!(store.user_by_email(b.id, "guest@example.com").await.unwrap().is_none());
        assert!(
            store.user(b.id, g.id).await.unwrap().is_none(),
            "portal b sees portal a's user"
        );
        guest.id = UserId::random();
        let dup = store.create_user(a.id, guest).await.unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
        // Guests have a trash but no My documents.
        assert!(store
            .section(a.id, FolderType::User, Some(g.id))
            .await
            .unwrap()
            .is_none());
        assert!(store
            .section(a.id, FolderType::Trash, Some(g.id))
            .await
            .unwrap()
            .is_some());
        let (list, total) = store
            .users(
                a.id,
                &UserQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(total, 2);
        assert_eq!(list.len(), 2);
        let (found, total) = store
            .users(
                a.id,
                &UserQuery {
                    text: Some("GUEST@".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((found.len(), total), (1, 1));
    }
}

#[tokio::test]
async fn credentials_are_found_only_in_their_portal() {
    for store in stores().await {
        let (a, o) = store
            .create_portal(portal("aaa", true), owner("o@example.com"))
            .await
            .unwrap();
        let (b, _) = store
            .create_portal(portal("bbb", false), owner("o@example.com"))
            .await
            .unwrap();
        let session = Session {
            id: SessionId::random(),
            portal_id: a.id,
            user_id: o.id,
            digest: "d1".into(),
            created_at: 1,
            expires_at: Some(10),
        };
        store.create_session(&session).await.unwrap();
        assert_eq!(store.session_by_digest(a.id, "d1").await.unwrap(), Some(session));
        assert_eq!(store.session_by_digest(b.id, "d1").await.unwrap(), None);
        assert_eq!(store.purge_sessions(11).await.unwrap(), 1);
        assert_eq!(store.session_by_digest(a.id, "d1").await.unwrap(), None);

        let mut key = ApiKey {
            id: KeyId::random(),
            portal_id: a.id,
            user_id: o.id,
            name: "ci".into(),
            digest: "k1".into(),
            postfix: "abcd".into(),
            permissions: vec!["files:read".into(), "rooms:read".into()],
            is_active: true,
            created_at: 5,
            expires_at: None,
            last_used: None,
        };
        store.create_key(&key).await.unwrap();
        assert_eq!(store.key_by_digest(a.id, "k1").await.unwrap().as_ref(), Some(&key));
        assert_eq!(store.key_by_digest(b.id, "k1").await.unwrap(), None);
        assert!(store.key(b.id, key.id).await.unwrap().is_none());
        assert!(
            !store.delete_key(b.id, key.id).await.unwrap(),
            "portal b deleted portal a's key"
        );
        key.is_active = false;
        key.permissions.clear();
        store.update_key(&key).await.unwrap();
        store.touch_key(a.id, key.id, 77).await.unwrap();
        let stored = store.key(a.id, key.id).await.unwrap().unwrap();
        assert!(!stored.is_active && stored.permissions.is_empty());
        assert_eq!(stored.last_used, Some(77));
        assert_eq!(store.keys(a.id, Some(o.id)).await.unwrap().len(), 1);
        assert_eq!(store.keys(a.id, Some(UserId::random())).await.unwrap().len(), 0);
        assert!(store.delete_key(a.id, key.id).await.unwrap());
    }
}

#[tokio::test]
async fn tree_operations_and_portal_delete() {
    for store in stores().await {
        let (a, o) = store
            .create_portal(portal("aaa", true), owner("o@example.com"))
            .await
            .unwrap();
        let (b, _) = store
            .create_portal(portal("bbb", false), owner("o@example.com"))
            .await
            .unwrap();
        let rooms = store
            .section(a.id, FolderType::VirtualRooms, None)
            .await
            .unwrap()
            .unwrap();
        let room = store
            .create_folder(
                a.id,
                NewFolder {
                    parent_id: rooms.id,
                    kind: FolderType::CustomRoom,
                    title: "R".into(),
                    by: o.id,
                    now: 2,
                },
            )
            .await
            .unwrap();
        let sub = store
            .create_folder(
                a.id,
                NewFolder {
                    parent_id: room.id,
                    kind: FolderType::Default,
                    title: "S".into(),
                    by: o.id,
                    now: 3,
                },
            )
            .await
            .unwrap();
        let chain: Vec<_> = store
            .ancestors(a.id, sub.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(chain, vec![rooms.id, room.id, sub.id]);
        assert!(store.ancestors(b.id, sub.id).await.unwrap().is_empty());
        let new_file = |folder, key: &str| NewFile {
            folder_id: folder,
            title: "a.txt".into(),
            size: 3,
            blob_key: key.into(),
            blake3: "h".into(),
            by: o.id,
            now: 4,
        };
        let f1 = store.create_file(a.id, new_file(sub.id, "blob1")).await.unwrap();
        let f2 = store.create_file(a.id, new_file(room.id, "blob2")).await.unwrap();
        assert_eq!(f1.version, 1);
        assert_eq!(
            store.file_by_title(a.id, sub.id, "A.TXT").await.unwrap().unwrap().id,
            f1.id
        );
        let (v2, old) = store
            .add_file_version(a.id, f1.id, new_file(sub.id, "blob3"))
            .await
            .unwrap();
        assert_eq!((v2.version, v2.blob_key.as_str(), old.as_str()), (2, "blob3", "blob1"));
        assert!(
            store.file(b.id, f1.id).await.unwrap().is_none(),
            "portal b sees portal a's file"
        );
        assert_eq!(store.child_counts(a.id, room.id).await.unwrap(), (1, 1));
        assert!(store.delete_folder_tree(b.id, room.id).await.unwrap().is_empty());
        let mut gone = store.delete_folder_tree(a.id, room.id).await.unwrap();
        gone.sort();
        assert_eq!(gone, vec!["blob2".to_owned(), "blob3".to_owned()]);
        let mut garbage = store.blob_garbage(10, 0).await.unwrap();
        garbage.sort();
        // blob1 since its file got a new version; the tree's bytes since the delete's commit.
        assert_eq!(garbage, ["blob1", "blob2", "blob3"]);
        store.forget_blob_garbage(&garbage).await.unwrap();
        assert!(store.folder(a.id, sub.id).await.unwrap().is_none());
        assert!(store.file(a.id, f2.id).await.unwrap().is_none());

        let f3 = store.create_file(a.id, new_file(rooms.id, "blob4")).await.unwrap();
        let mut blobs = store.delete_portal(a.id).await.unwrap();
        blobs.sort();
        assert_eq!(blobs, vec!["blob4".to_owned()]);
        assert_eq!(
            store.blob_garbage(10, 0).await.unwrap(),
            blobs,
            "garbage with the delete's commit"
        );
        store.forget_blob_garbage(&blobs).await.unwrap();
        assert!(store.portal(a.id).await.unwrap().is_none());
        assert!(store.file(a.id, f3.id).await.unwrap().is_none());
        assert!(store.user(a.id, o.id).await.unwrap().is_none());
        assert!(
            store.portal(b.id).await.unwrap().is_some(),
            "deleting portal a touched portal b"
        );
        assert!(matches!(
            store.delete_portal(PortalId(999)).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

fn job(portal: PortalId) -> Job {
    Job {
        id: backspace_types::TaskId::random(),
        portal_id: portal,
        kind: JobKind::Backup,
        status: job_status::CREATED,
        progress: 0,
        phase: "queued".into(),
        error: String::new(),
        warning: None,
        link: None,
        is_completed: false,
        storage_type: 4,
        storage_params: "{}".into(),
        is_scheduled: false,
        cancel_requested: false,
        created_by: None,
        partial: None,
        created_at: 10,
        updated_at: 10,
    }
}

#[tokio::test]
async fn one_running_job_per_portal_and_kind() {
    for store in stores().await {
        let (a, _) = store
            .create_portal(portal("aaa", true), owner("o@example.com"))
            .await
            .unwrap();
        let (b, _) = store
            .create_portal(portal("bbb", false), owner("o@example.com"))
            .await
            .unwrap();
        let first = job(a.id);
        let (current, created) = store.start_job(&first).await.unwrap();
        assert!(created);
        let (current2, created2) = store.start_job(&job(a.id)).await.unwrap();
        assert!(!created2, "a second job started while one runs");
        assert_eq!(current2.id, current.id);
        let (_, other_portal) = store.start_job(&job(b.id)).await.unwrap();
        assert!(other_portal, "portal b is blocked by portal a's job");
        store
            .set_job_progress(first.id, job_status::RUNNING, 45, "files", 11)
            .await
            .unwrap();
        assert!(store.request_cancel(a.id, 12).await.unwrap());
        let seen = store.job(a.id, JobKind::Backup).await.unwrap().unwrap();
        assert_eq!(
            (seen.progress, seen.phase.as_str(), seen.cancel_requested),
            (45, "files", true)
        );
        assert_eq!(store.unfinished_jobs().await.unwrap().len(), 2);
        let end = JobEnd {
            status: job_status::COMPLETED,
            link: Some("l".into()),
            ..JobEnd::default()
        };
        assert!(store.finish_job(first.id, &end, 13).await.unwrap());
        assert!(!store.finish_job(first.id, &end, 14).await.unwrap(), "finished twice");
        let done = store.job(a.id, JobKind::Backup).await.unwrap().unwrap();
        assert!(done.is_completed && done.progress == 100 && done.link.as_deref() == Some("l"));
        let (next, created) = store.start_job(&job(a.id)).await.unwrap();
        assert!(created);
        assert!(
            store.job_by_id(first.id).await.unwrap().is_none(),
            "the old finished job was kept"
        );
        assert_eq!(store.job(a.id, JobKind::Backup).await.unwrap().unwrap().id, next.id);
        assert!(store.job(a.id, JobKind::Restore).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn records_schedules_and_settings() {
    for store in stores().await {
        let (a, _) = store
            .create_portal(portal("aaa", true), owner("o@example.com"))
            .await
            .unwrap();
        let (b, _) = store
            .create_portal(portal("bbb", false), owner("o@example.com"))
            .await
            .unwrap();
        let record = |id, at, expires| BackupRecord {
            id,
            portal_id: a.id,
            is_scheduled: false,
            file_name: "a.tar.zst".into(),
            hash: "h".into(),
            size: 1,
            storage_type: 4,
            storage_path: "k".into(),
            storage_params: "{}".into(),
            created_at: at,
            expires_at: expires,
            removed: false,
        };
        let (r1, r2) = (backspace_types::TaskId::random(), backspace_types::TaskId::random());
        store.insert_record(&record(r1, 100, Some(200))).await.unwrap();
        store.insert_record(&record(r2, 150, None)).await.unwrap();
        assert_eq!(store.records(a.id).await.unwrap().len(), 2);
        assert!(store.records(b.id).await.unwrap().is_empty());
        assert!(
            store.record(b.id, r1).await.unwrap().is_none(),
            "portal b reads portal a's record"
        );
        assert!(
            !store.remove_record(b.id, r1).await.unwrap(),
            "portal b removed portal a's record"
        );
        assert!(store.remove_record(a.id, r1).await.unwrap());
        assert_eq!(store.records(a.id).await.unwrap().len(), 1);
        assert_eq!(
            store.count_records(a.id, 0, 1000).await.unwrap(),
            2,
            "removed records still count"
        );
        assert_eq!(store.count_records(a.id, 120, 1000).await.unwrap(), 1);
        assert!(
            store.expired_records(300).await.unwrap().is_empty(),
            "a removed record expired again"
        );

        let schedule = Schedule {
            portal_id: a.id,
            cron: "0 0 5 ? * *".into(),
            backups_stored: 3,
            storage_type: 4,
            storage_params: "{}".into(),
            last_backup_at: None,
            created_at: 1,
        };
        store.upsert_schedule(&schedule).await.unwrap();
        store
            .upsert_schedule(&Schedule {
                backups_stored: 7,
                ..schedule.clone()
            })
            .await
            .unwrap();
        assert_eq!(store.schedule(a.id).await.unwrap().unwrap().backups_stored, 7);
        assert_eq!(store.schedules().await.unwrap().len(), 1);
        assert!(store.claim_schedule_run(a.id, None, 50).await.unwrap());
        assert!(
            !store.claim_schedule_run(a.id, None, 51).await.unwrap(),
            "a run was claimed twice"
        );
        assert!(store.claim_schedule_run(a.id, Some(50), 60).await.unwrap());
        assert!(store.delete_schedule(a.id).await.unwrap());
        assert!(store.schedule(a.id).await.unwrap().is_none());

        assert_eq!(store.setting("link_signing_key").await.unwrap(), None);
        assert_eq!(store.init_setting("link_signing_key", "first").await.unwrap(), "first");
        assert_eq!(store.init_setting("link_signing_key", "second").await.unwrap(), "first");
    }
}

#[tokio::test]
async fn a_snapshot_restores_exactly_and_a_collision_changes_nothing() {
    for store in stores().await {
        let (a, o) = store
            .create_portal(portal("aaa", true), owner("o@example.com"))
            .await
            .unwrap();
        let (b, _) = store
            .create_portal(portal("bbb", false), owner("o@example.com"))
            .await
            .unwrap();
        let rooms = store
            .section(a.id, FolderType::VirtualRooms, None)
            .await
            .unwrap()
            .unwrap();
        let room = store
            .create_folder(
                a.id,
                NewFolder {
                    parent_id: rooms.id,
                    kind: FolderType::CustomRoom,
                    title: "R".into(),
                    by: o.id,
                    now: 2,
                },
            )
            .await
            .unwrap();
        let file = |key: &str| NewFile {
            folder_id: room.id,
            title: format!("{key}.txt"),
            size: 3,
            blob_key: key.into(),
            blake3: "h".into(),
            by: o.id,
            now: 4,
        };
        store.create_file(a.id, file("one")).await.unwrap();
        let snap = store.snapshot(a.id).await.unwrap();
        assert_eq!((snap.folders.len(), snap.files.len(), snap.users.len()), (5, 1, 1));
        store.create_file(a.id, file("two")).await.unwrap();
        store
            .create_folder(
                a.id,
                NewFolder {
                    parent_id: room.id,
                    kind: FolderType::Default,
                    title: "x".into(),
                    by: o.id,
                    now: 5,
                },
            )
            .await
            .unwrap();
        let replaced = store.restore_snapshot(a.id, &snap, 99, None).await.unwrap();
        assert_eq!(replaced, vec!["two".to_owned()], "the bytes no restored row uses");
        // Recorded as garbage in the same transaction, until forgotten.
        assert_eq!(store.blob_garbage(10, i64::MAX).await.unwrap(), vec!["two".to_owned()]);
        store
            .add_blob_garbage(a.id, &["two".to_owned(), "unused".to_owned()], 100)
            .await
            .unwrap();
        assert_eq!(
            store.blob_garbage(1, i64::MAX).await.unwrap(),
            vec!["two".to_owned()],
            "oldest first"
        );
        store.forget_blob_garbage(&["two".to_owned()]).await.unwrap();
        assert_eq!(
            store.blob_garbage(10, i64::MAX).await.unwrap(),
            vec!["unused".to_owned()]
        );
        store.forget_blob_garbage(&["unused".to_owned()]).await.unwrap();

        // Bytes written before their row: pending garbage, not collectable before its time,
        // forgotten by the row's commit; a version's old bytes become garbage with its commit.
        store.add_pending_blob(a.id, "pending", 200, 1_000).await.unwrap();
        assert!(
            store.blob_garbage(10, 999).await.unwrap().is_empty(),
            "collectable too early"
        );
        assert_eq!(store.blob_garbage(10, 1_000).await.unwrap(), vec!["pending".to_owned()]);
        let with_row = store.create_file(a.id, file("pending")).await.unwrap();
        assert!(
            store.blob_garbage(10, i64::MAX).await.unwrap().is_empty(),
            "the row did not claim its bytes"
        );
        store.add_pending_blob(a.id, "next", 300, 1_000).await.unwrap();
        let (_, old) = store.add_file_version(a.id, with_row.id, file("next")).await.unwrap();
        assert_eq!(old, "pending");
        assert_eq!(
            store.blob_garbage(10, 0).await.unwrap(),
            vec!["pending".to_owned()],
            "the replaced version is garbage at once, the new one is not"
        );
        store.forget_blob_garbage(&["pending".to_owned()]).await.unwrap();
        // A write that failed: recorded as garbage again, collectable at once.
        store.add_pending_blob(a.id, "failed", 400, 1_000).await.unwrap();
        store.add_blob_garbage(a.id, &["failed".to_owned()], 401).await.unwrap();
        assert_eq!(store.blob_garbage(10, 0).await.unwrap(), vec!["failed".to_owned()]);
        store.forget_blob_garbage(&["failed".to_owned()]).await.unwrap();
        // A deleted file's bytes are garbage with the delete's commit.
        assert_eq!(
            store.delete_file(a.id, with_row.id).await.unwrap().as_deref(),
            Some("next")
        );
        assert_eq!(store.blob_garbage(10, 0).await.unwrap(), vec!["next".to_owned()]);
        store.forget_blob_garbage(&["next".to_owned()]).await.unwrap();
        let again = store.snapshot(a.id).await.unwrap();
        assert_eq!(
            (again.folders, again.files, again.users),
            (snap.folders.clone(), snap.files.clone(), snap.users.clone())
        );
        // Restoring A's rows into B collides with A's ids: refused, and B is untouched.
        let before = store.snapshot(b.id).await.unwrap();
        let err = store.restore_snapshot(b.id, &snap, 100, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let after = store.snapshot(b.id).await.unwrap();
        assert_eq!(
            (after.folders, after.files, after.users),
            (before.folders, before.files, before.users)
        );
        // Ids restored are never handed out again.
        let fresh = store.create_file(a.id, file("three")).await.unwrap();
        assert!(snap.files.iter().all(|f| f.id != fresh.id));
        store.set_portal_status(a.id, 4, 1).await.unwrap();
        assert_eq!(store.portal(a.id).await.unwrap().unwrap().status, 4);

        // A fenced swap happens only while its job holds its lease.
        let restore = Job {
            kind: JobKind::Restore,
            ..job(a.id)
        };
        store.start_job(&restore).await.unwrap();
        assert!(store.renew_lease(restore.id, "me", 1_000).await.unwrap());
        let fence = |owner: &'static str| SwapFence {
            job: restore.id,
            owner,
            phase: Some(("swapped", 90)),
        };
        let files_now = || async { store.snapshot(a.id).await.unwrap().files };
        let before = files_now().await;
        let refused = [
            ("another instance's job", fence("other"), 500),
            ("a lease that ran out", fence("me"), 1_001),
        ];
        for (what, f, now) in refused {
            let err = store.restore_snapshot(a.id, &snap, now, Some(&f)).await.unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{what}: {err}");
            assert_eq!(files_now().await, before, "{what} changed the portal");
            let j = store.job_by_id(restore.id).await.unwrap().unwrap();
            assert_eq!((j.phase.as_str(), j.progress), ("queued", 0), "{what}");
        }
        store
            .restore_snapshot(a.id, &snap, 900, Some(&fence("me")))
            .await
            .unwrap();
        let j = store.job_by_id(restore.id).await.unwrap().unwrap();
        assert_eq!(
            (j.phase.as_str(), j.progress),
            ("swapped", 90),
            "the swap and its phase are one"
        );
        let end = JobEnd {
            status: job_status::COMPLETED,
            error: String::new(),
            warning: None,
            link: None,
        };
        assert!(store.finish_job(restore.id, &end, 950).await.unwrap());
        let err = store
            .restore_snapshot(a.id, &snap, 960, Some(&fence("me")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "a finished job: {err}");
    }
}

#[tokio::test]
async fn consumer_keys_backup_providers_and_worker_leases() {
    use backspace_meta::{BackupProvider, ThirdPartyStore};
    for store in stores().await {
        let (a, b) = (PortalId(1), PortalId(2));
        assert!(store
            .set_consumer_props(a, "s3", Some(r#"{"k":"1"}"#), 1)
            .await
            .unwrap());
        assert!(
            !store
                .set_consumer_props(a, "s3", Some(r#"{"k":"1"}"#), 2)
                .await
                .unwrap(),
            "unchanged"
        );
        assert!(store
            .set_consumer_props(a, "s3", Some(r#"{"k":"2"}"#), 3)
            .await
            .unwrap());
        assert_eq!(
            store.consumer_props(a, "s3").await.unwrap().as_deref(),
            Some(r#"{"k":"2"}"#)
        );
        assert_eq!(
            store.consumer_props(b, "s3").await.unwrap(),
            None,
            "another portal's keys"
        );
        assert!(store.set_consumer_props(a, "s3", None, 4).await.unwrap());
        assert_eq!(store.consumer_props(a, "s3").await.unwrap(), None);

        let provider = |portal, title: &str| BackupProvider {
            portal_id: portal,
            id: 0,
            provider_key: "WebDav".into(),
            title: title.into(),
            url: "http://dav/".into(),
            login: "u".into(),
            password: "p".into(),
            created_at: 7,
        };
        let first = store.set_backup_provider(&provider(a, "one")).await.unwrap();
        let updated = store.set_backup_provider(&provider(a, "two")).await.unwrap();
        assert_eq!(
            (updated.id, updated.title.as_str()),
            (first.id, "two"),
            "an update keeps the id"
        );
        let other = store.set_backup_provider(&provider(b, "b")).await.unwrap();
        assert_ne!(other.id, first.id);
        assert_eq!(store.backup_provider(b).await.unwrap().unwrap().title, "b");

        assert!(store.try_lease("cleaner", "x", 100, 200).await.unwrap());
        assert!(!store.try_lease("cleaner", "y", 150, 250).await.unwrap(), "held by x");
        assert!(
            store.try_lease("cleaner", "x", 190, 300).await.unwrap(),
            "renewed by its holder"
        );
        assert!(!store.try_lease("cleaner", "y", 299, 400).await.unwrap());
        assert!(
            store.try_lease("cleaner", "y", 301, 400).await.unwrap(),
            "taken over once expired"
        );
        assert!(
            store.try_lease("other", "x", 301, 400).await.unwrap(),
            "leases are independent"
        );
    }
}

/// On SQLite, readers never wait for a writer (write-ahead logging): a progress poll answers
/// while a restore's long transaction holds the write lock.
#[tokio::test]
async fn sqlite_readers_do_not_wait_for_a_writer() {
    let dir = TempDir(std::env::temp_dir().join(format!("backspace-meta-test-{:x}", rand_u64())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.0.join("meta.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let mut writer = store.pool().acquire().await.unwrap();
    sqlx::Executor::execute(&mut *writer, "BEGIN EXCLUSIVE").await.unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), store.portals()).await;
    assert!(matches!(read, Ok(Ok(_))), "a read waited for the writer: {read:?}");
    sqlx::Executor::execute(&mut *writer, "ROLLBACK").await.unwrap();
}
