//! The store's test suite. Every test runs on SQLite, and on PostgreSQL when
//! `BACKSPACE_TEST_POSTGRES_URL` names a server (an admin URL; each test gets a fresh database).
//! CI sets `BACKSPACE_REQUIRE_POSTGRES=1`, which makes a missing server a failure, not a skip.

use backspace_meta::*;
use backspace_types::{EmployeeType, FolderType, KeyId, PortalId, SessionId, UserId};
use sqlx::Connection;

async fn stores() -> Vec<SqlStore> {
    let dir = std::env::temp_dir().join(format!("backspace-meta-test-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("meta.db").display());
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
    out
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
        assert!(store.folder(a.id, sub.id).await.unwrap().is_none());
        assert!(store.file(a.id, f2.id).await.unwrap().is_none());

        let f3 = store.create_file(a.id, new_file(rooms.id, "blob4")).await.unwrap();
        let mut blobs = store.delete_portal(a.id).await.unwrap();
        blobs.sort();
        assert_eq!(blobs, vec!["blob4".to_owned()]);
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
