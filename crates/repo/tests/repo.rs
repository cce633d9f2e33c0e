//! The repository's tests: round trips, deduplication, keys, tampering, garbage collection (also
//! concurrent with writers), index rebuilds, and golden vectors of the format.

use backspace_repo::{Keys, RepoError, Repository, Secret, Snapshot, WriteStats};
use backspace_storage::{BlobKey, BlobStore, LocalStore};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::runtime::Handle;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn store() -> (Dir, Arc<dyn BlobStore>) {
    let dir = std::env::temp_dir().join(format!("backspace-repo-{:x}", rand::random::<u64>()));
    let store = LocalStore::open(&dir).await.unwrap();
    (Dir(dir), Arc::new(store))
}

/// Deterministic bytes: incompressible (xorshift) or text-like.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

type Entries = Vec<(String, Vec<u8>, Option<String>)>;

/// Writes a snapshot of `entries` on a blocking thread.
async fn write(
    repo: &Arc<Repository>,
    id: &str,
    entries: Entries,
    previous: Option<Snapshot>,
) -> (Snapshot, WriteStats) {
    let repo = repo.clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut w = repo
            .writer(Handle::current(), previous, Arc::new(AtomicBool::new(false)))
            .unwrap();
        for (name, bytes, source) in &entries {
            let mut r: &[u8] = bytes;
            w.add(name, bytes.len() as u64, source.as_deref(), None, Some(&mut r))
                .unwrap();
        }
        w.finish(&id, 1, serde_json::json!({"test": true})).unwrap()
    })
    .await
    .unwrap()
}

/// Reads every entry of a snapshot back.
async fn read(repo: &Arc<Repository>, id: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let snap = repo.snapshot(id).await.map_err(|e| e.to_string())?;
    let index = Arc::new(repo.load_index().await.map_err(|e| e.to_string())?);
    let repo = repo.clone();
    tokio::task::spawn_blocking(move || {
        snap.entries
            .iter()
            .map(|e| {
                let mut r = repo
                    .entry_reader(Handle::current(), index.clone(), e)
                    .map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                r.read_to_end(&mut out).map_err(|e| e.to_string())?;
                Ok((e.name.clone(), out))
            })
            .collect()
    })
    .await
    .unwrap()
}

fn portal(seed: u64) -> Entries {
    let mut out = vec![("portal.json".to_owned(), br#"{"rows": 1}"#.to_vec(), None)];
    for (i, len) in [0usize, 1, 4096, 300_000, 1 << 20, 3 << 20, 9 << 20]
        .into_iter()
        .enumerate()
    {
        let bytes = data(len, seed * 100 + i as u64);
        let source = format!("{}:{len}", blake3::hash(&bytes).to_hex());
        out.push((format!("files/{i}"), bytes, Some(source)));
    }
    out
}

fn plain(entries: &Entries) -> Vec<(String, Vec<u8>)> {
    entries.iter().map(|(n, b, _)| (n.clone(), b.clone())).collect()
}

fn packs_bytes(dir: &Dir) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        std::fs::read_dir(p)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .map(|p| {
                        if p.is_dir() {
                            walk(&p)
                        } else {
                            p.metadata().unwrap().len()
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.0.join("packs"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_round_trip_and_deduplicate() {
    let (dir, store) = store().await;
    let repo = Arc::new(
        Repository::create(store, Secret::Passphrase("correct horse"))
            .await
            .unwrap(),
    );
    let first = portal(1);
    let (snap1, stats1) = write(&repo, "s1", first.clone(), None).await;
    assert_eq!(read(&repo, "s1").await.unwrap(), plain(&first));
    assert_eq!(stats1.read, stats1.bytes);
    assert!(stats1.new_chunks > 10, "{stats1:?}");

    // Nothing changed: every entry with a source is recognised without reading it.
    let (snap2, stats2) = write(&repo, "s2", first.clone(), Some(snap1.clone())).await;
    assert_eq!(stats2.new_chunks, 0, "{stats2:?}");
    assert_eq!(
        stats2.read,
        br#"{"rows": 1}"#.len() as u64,
        "only the entry without a source is read"
    );
    assert_eq!(snap2.entries.len(), snap1.entries.len());
    assert_eq!(read(&repo, "s2").await.unwrap(), plain(&first));

    // 4 KiB changed in the middle of the largest file: a few new chunks only.
    let mut changed = first.clone();
    let big = changed.last_mut().unwrap();
    big.1[5 << 20..(5 << 20) + 4096].copy_from_slice(&data(4096, 99));
    big.2 = Some("changed".into());
    let before = packs_bytes(&dir);
    let (_, stats3) = write(&repo, "s3", changed.clone(), Some(snap2)).await;
    assert!(stats3.new_chunks <= 3, "{stats3:?}");
    assert!(packs_bytes(&dir) - before < 6 << 20, "the change stored too much");
    assert_eq!(read(&repo, "s3").await.unwrap(), plain(&changed));
    let mut ids = repo.snapshots().await.unwrap();
    ids.sort();
    assert_eq!(ids, ["s1", "s2", "s3"]);
}

/// Every entry records the BLAKE3 of its bytes (a reused entry carries it over), and an entry
/// whose bytes are not what the caller said is refused and left out, small or streamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_record_their_digest_and_a_wrong_one_is_refused() {
    let (_dir, store) = store().await;
    let repo = Arc::new(Repository::create(store, Secret::Passphrase("p")).await.unwrap());
    let first = portal(3);
    let (snap1, _) = write(&repo, "s1", first.clone(), None).await;
    let digests = |snap: &Snapshot| -> Vec<(String, Option<String>)> {
        snap.entries
            .iter()
            .map(|e| (e.name.clone(), e.blake3.map(|d| d.to_hex().to_string())))
            .collect()
    };
    let expected: Vec<(String, Option<String>)> = first
        .iter()
        .map(|(name, bytes, _)| (name.clone(), Some(blake3::hash(bytes).to_hex().to_string())))
        .collect();
    assert_eq!(digests(&snap1), expected);
    // 64 hex digits on the wire, and back.
    let json = serde_json::to_string(&snap1).unwrap();
    let hex = expected[0].1.as_deref().unwrap();
    assert!(json.contains(&format!(r#""blake3":"{hex}""#)), "{json}");
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(digests(&back), expected);
    // Reused without reading: the digest comes with the chunks.
    let (snap2, stats2) = write(&repo, "s2", first.clone(), Some(snap1)).await;
    assert_eq!(stats2.new_chunks, 0, "{stats2:?}");
    assert_eq!(digests(&snap2), expected);

    let repo2 = repo.clone();
    let snap = tokio::task::spawn_blocking(move || {
        let mut w = repo2
            .writer(Handle::current(), None, Arc::new(AtomicBool::new(false)))
            .unwrap();
        // A small entry (cut in memory) and one larger than a chunk's maximum (streamed).
        for (name, len) in [("files/small", 100_000usize), ("files/large", 9 << 20)] {
            let bytes = data(len, len as u64);
            let right = blake3::hash(&bytes).to_hex().to_string();
            let wrong = blake3::hash(b"something else").to_hex().to_string();
            let mut r: &[u8] = &bytes;
            let refused = w.add(name, len as u64, None, Some(&wrong), Some(&mut r)).unwrap_err();
            assert!(matches!(refused, RepoError::Mismatch(_)), "{refused}");
            assert!(refused.to_string().contains(name), "{refused}");
            let mut r: &[u8] = &bytes;
            // Upper-case hex is the same digest.
            w.add(name, len as u64, None, Some(&right.to_ascii_uppercase()), Some(&mut r))
                .unwrap();
        }
        w.finish("s3", 1, serde_json::json!({})).unwrap().0
    })
    .await
    .unwrap();
    let names: Vec<&str> = snap.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["files/small", "files/large"], "a refused entry was added");
    let back = read(&repo, "s3").await.unwrap();
    for (entry, (name, bytes)) in snap.entries.iter().zip(&back) {
        assert_eq!(&entry.name, name);
        assert_eq!(entry.blake3, Some(blake3::hash(bytes)));
    }
}

/// An entry produced by a serializer is stored as the same chunks as the same bytes added from
/// memory, reads back byte for byte, and a producer whose two runs differ is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_entries_equal_added_ones() {
    let (_dir, store) = store().await;
    let repo = Arc::new(Repository::create(store, Secret::Passphrase("pw")).await.unwrap());
    let bytes = data(9 << 20, 5);
    let (snap, _) = write(&repo, "added", vec![("big".into(), bytes.clone(), None)], None).await;
    let w_repo = repo.clone();
    let produced_bytes = bytes.clone();
    let (produced, stats) = tokio::task::spawn_blocking(move || {
        let mut w = w_repo
            .writer(Handle::current(), None, Arc::new(AtomicBool::new(false)))
            .unwrap();
        // Written in odd pieces, as a serializer does.
        let produce = |out: &mut dyn std::io::Write| {
            for piece in produced_bytes.chunks(7919) {
                out.write_all(piece)?;
            }
            Ok(())
        };
        w.add_produced("big", &produce).unwrap();
        w.finish("produced", 1, serde_json::json!({})).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(produced.entries[0].chunks, snap.entries[0].chunks);
    assert_eq!(stats.new_chunks, 0, "the same bytes are the same chunks");
    assert_eq!(read(&repo, "produced").await.unwrap(), vec![("big".to_owned(), bytes)]);

    let w_repo = repo.clone();
    let err = tokio::task::spawn_blocking(move || {
        let mut w = w_repo
            .writer(Handle::current(), None, Arc::new(AtomicBool::new(false)))
            .unwrap();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let produce = |out: &mut dyn std::io::Write| {
            let n = if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                1000
            } else {
                10
            };
            out.write_all(&vec![1u8; n])
        };
        w.add_produced("liar", &produce).unwrap_err()
    })
    .await
    .unwrap();
    assert!(err.to_string().contains("ended after 10 of 1000 bytes"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrases_and_unencrypted_repositories() {
    let (_dir, store) = store().await;
    let mut repo = Repository::create(store.clone(), Secret::Passphrase("first"))
        .await
        .unwrap();
    assert!(matches!(
        Repository::create(store.clone(), Secret::Passphrase("first")).await,
        Err(RepoError::Refused(_))
    ));
    assert!(matches!(
        Repository::open(store.clone(), Some("wrong")).await,
        Err(RepoError::WrongPassphrase)
    ));
    assert!(matches!(
        Repository::open(store.clone(), None).await,
        Err(RepoError::Refused(_))
    ));
    repo.add_passphrase("first", "second").await.unwrap();
    let a = Repository::open(store.clone(), Some("first")).await.unwrap();
    let b = Repository::open(store.clone(), Some("second")).await.unwrap();
    assert_eq!(
        a.keys().chunk_id(b"x"),
        b.keys().chunk_id(b"x"),
        "both slots open the same key"
    );
    assert!(a.keys().encrypted());

    // The config holds no key material in clear.
    let config = std::fs::read_to_string(_dir.0.join("config")).unwrap();
    assert!(!config.contains("plainKey"), "{config}");

    let (_d2, plain_store) = store_pair().await;
    let repo = Arc::new(
        Repository::create(plain_store.clone(), Secret::Unencrypted)
            .await
            .unwrap(),
    );
    let entries = portal(3);
    write(&repo, "p", entries.clone(), None).await;
    let reopened = Arc::new(Repository::open(plain_store, None).await.unwrap());
    assert_eq!(read(&reopened, "p").await.unwrap(), plain(&entries));
}

async fn store_pair() -> (Dir, Arc<dyn BlobStore>) {
    store().await
}

/// Every file under `dir`'s packs.
fn pack_files(dir: &Dir) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.0.join("packs")).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_chunk_fails_exactly_the_backups_that_use_it() {
    let (dir, store) = store().await;
    let repo = Arc::new(Repository::create(store, Secret::Passphrase("p")).await.unwrap());
    let shared = ("files/shared".to_owned(), data(2 << 20, 5), None);
    let (_, _) = write(
        &repo,
        "a",
        vec![shared.clone(), ("files/a".into(), data(1 << 20, 6), None)],
        None,
    )
    .await;
    let packs_after_a = pack_files(&dir);
    // (Seeds 6 and 7 make the same bytes: `data` sets the low bit.)
    write(&repo, "b", vec![("files/b".into(), data(1 << 20, 8), None)], None).await;
    assert_eq!(repo.verify("a").await.unwrap().damaged, Vec::<String>::new());
    // Flip one byte in the middle of a's pack (its first blob).
    let victim = &packs_after_a[0];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(victim, bytes).unwrap();
    let a = repo.verify("a").await.unwrap();
    let b = repo.verify("b").await.unwrap();
    assert!(!a.damaged.is_empty(), "a damaged chunk went unnoticed");
    assert!(a.checked_chunks >= a.damaged.len() as u64);
    assert!(b.damaged.is_empty(), "b does not use the damaged chunk: {b:?}");
    assert!(read(&repo, "a").await.is_err(), "a damaged entry was read back");
    assert!(read(&repo, "b").await.is_ok());
}

/// Text-like bytes that zstd compresses well.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let words = data(4096, seed);
    let mut out = Vec::with_capacity(len);
    let mut i = 0usize;
    while out.len() < len {
        let w = words[i % words.len()] as usize % 7 + 2;
        out.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, w));
        out.push(b' ');
        i += 1;
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_raw_and_compressed_chunks_read_back_in_small_reads_and_a_reused_reader() {
    let (dir, store) = store().await;
    let repo = Arc::new(Repository::create(store, Secret::Passphrase("p")).await.unwrap());
    // Regions of text (compressed chunks) and noise (stored raw), so that runs mix both.
    let mut mixed = Vec::new();
    for i in 0..6 {
        mixed.extend(if i % 2 == 0 {
            text(1_500_000, i)
        } else {
            data(1_700_000, i)
        });
    }
    let entries: Entries = vec![
        ("files/mixed".into(), mixed.clone(), None),
        ("files/small-text".into(), text(5000, 9), None),
        ("files/empty".into(), Vec::new(), None),
        ("files/noise".into(), data(3 << 20, 10), None),
    ];
    let (snap, stats) = write(&repo, "a", entries.clone(), None).await;
    assert!(
        stats.stored < (mixed.len() + (3 << 20)) as u64,
        "the text regions were not compressed: {stats:?}"
    );
    let index = Arc::new(repo.load_index().await.unwrap());
    let r2 = repo.clone();
    let got = tokio::task::spawn_blocking(move || {
        // One reader for every entry, read in odd-sized pieces.
        let mut reader: Option<backspace_repo::EntryReader> = None;
        let mut got = Vec::new();
        for e in &snap.entries {
            let r = match &mut reader {
                Some(r) => {
                    r.reset(e).unwrap();
                    r
                }
                None => reader.insert(r2.entry_reader(Handle::current(), index.clone(), e).unwrap()),
            };
            let mut out = Vec::new();
            let mut piece = [0u8; 7777];
            loop {
                let n = r.read(&mut piece).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&piece[..n]);
            }
            got.push((e.name.clone(), out));
        }
        got
    })
    .await
    .unwrap();
    assert_eq!(got, plain(&entries));

    // A flipped byte in any blob of the mixed entry's packs fails its read instead of giving
    // other bytes.
    let pack = pack_files(&dir)
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&pack, bytes).unwrap();
    let read_back = read(&repo, "a").await;
    assert!(read_back.is_err(), "a damaged pack was read back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_frees_what_no_snapshot_uses() {
    let (dir, store) = store().await;
    let repo = Arc::new(
        Repository::create(store.clone(), Secret::Passphrase("p"))
            .await
            .unwrap(),
    );
    let keep = vec![("files/keep".to_owned(), data(3 << 20, 11), None)];
    let mut both = keep.clone();
    both.push(("files/gone".into(), data(6 << 20, 12), None));
    write(&repo, "old", both, None).await;
    let (kept, _) = write(&repo, "new", keep.clone(), None).await;
    let full = packs_bytes(&dir);

    // A writer is running: nothing is deleted.
    repo.delete_snapshot("old").await.unwrap();
    let writer = {
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || {
            repo.writer(Handle::current(), None, Arc::new(AtomicBool::new(false)))
                .unwrap()
        })
        .await
        .unwrap()
    };
    let report = repo.gc().await.unwrap();
    assert!(report.deferred, "{report:?}");
    assert_eq!(packs_bytes(&dir), full);
    tokio::task::spawn_blocking(move || drop(writer)).await.unwrap();

    let report = repo.gc().await.unwrap();
    assert!(!report.deferred);
    // The 6 MiB no snapshot uses are freed, except what shares a pack that stays at least half
    // live (chunks may be spread over the packers' packs): at most 2 × the 3 MiB kept remain.
    assert!(report.freed_bytes >= 3 << 20, "{report:?}");
    let after = packs_bytes(&dir);
    assert!(
        after <= (6 << 20) + (64 << 10),
        "the space was not freed: {after} of {full} bytes remain"
    );
    assert_eq!(read(&repo, "new").await.unwrap(), plain(&keep));
    assert_eq!(repo.verify("new").await.unwrap().damaged, Vec::<String>::new());
    assert_eq!(kept.entries.len(), 1);
    // Nothing is left behind: no locks.
    assert!(store.list(&BlobKey::new("locks").unwrap()).await.unwrap().is_empty());
}

/// A writer that died (kill -9, power loss) leaves packs no index names, and perhaps its
/// lock: once the lock is stale, the next collection removes both and keeps every live pack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writers_packs_and_lock_are_removed() {
    let (dir, store) = store().await;
    let repo = Arc::new(
        Repository::create(store.clone(), Secret::Passphrase("p"))
            .await
            .unwrap(),
    );
    let entries = portal(9);
    write(&repo, "s", entries.clone(), None).await;
    let live = pack_files(&dir);
    // The dead writer's pack: a copy of a real pack under another (valid) name.
    let orphan_name = "ab".repeat(32);
    let orphan = dir.0.join("packs").join(&orphan_name[..2]).join(&orphan_name);
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::copy(&live[0], &orphan).unwrap();
    let stale = serde_json::json!({"kind": "writer", "created": 0, "refreshed": 0, "packs": []});
    store
        .put(
            &BlobKey::new("locks/dead.writer").unwrap(),
            Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from(stale.to_string()))])),
        )
        .await
        .unwrap();

    let report = repo.gc().await.unwrap();
    assert!(!report.deferred, "a stale lock deferred the collection: {report:?}");
    assert_eq!(report.deleted_packs, 1, "{report:?}");
    assert!(!orphan.exists(), "the orphan pack survived");
    assert_eq!(pack_files(&dir), live, "a live pack was deleted");
    assert!(store.list(&BlobKey::new("locks").unwrap()).await.unwrap().is_empty());
    assert_eq!(read(&repo, "s").await.unwrap(), plain(&entries));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_from_the_packs_alone() {
    let (dir, store) = store().await;
    let repo = Arc::new(Repository::create(store, Secret::Passphrase("p")).await.unwrap());
    let entries = portal(4);
    write(&repo, "s", entries.clone(), None).await;
    std::fs::remove_dir_all(dir.0.join("index")).unwrap();
    assert!(read(&repo, "s").await.is_err(), "read without an index");
    let n = repo.rebuild_index().await.unwrap();
    assert!(n > 5);
    assert_eq!(read(&repo, "s").await.unwrap(), plain(&entries));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_writer_leaves_nothing_behind() {
    let (dir, store) = store().await;
    let repo = Arc::new(
        Repository::create(store.clone(), Secret::Passphrase("p"))
            .await
            .unwrap(),
    );
    let repo2 = repo.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = repo2
            .writer(Handle::current(), None, Arc::new(AtomicBool::new(false)))
            .unwrap();
        let big = data(40 << 20, 8);
        let mut r: &[u8] = &big;
        w.add("files/big", big.len() as u64, None, None, Some(&mut r)).unwrap();
        // Dropped without finishing, after packs were written.
    })
    .await
    .unwrap();
    assert_eq!(packs_bytes(&dir), 0, "an abandoned writer left packs");
    assert!(store.list(&BlobKey::new("locks").unwrap()).await.unwrap().is_empty());
    assert!(repo.snapshots().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_and_collections_run_concurrently_and_every_backup_restores() {
    let (_dir, store) = store().await;
    let repo = Arc::new(Repository::create(store, Secret::Passphrase("p")).await.unwrap());
    // A writer task makes 12 snapshots of a slowly changing set; a collector deletes every
    // third one and collects, all the while.
    let writer = {
        let repo = repo.clone();
        tokio::spawn(async move {
            let mut previous: Option<Snapshot> = None;
            let mut expected = Vec::new();
            for round in 0..12u64 {
                let mut entries = portal(1);
                entries.truncate(6);
                // Each round changes one file.
                let i = 1 + (round as usize % 5);
                entries[i].1 = data(entries[i].1.len(), 1000 + round);
                entries[i].2 = Some(format!("round-{round}"));
                let id = format!("s{round:02}");
                let (snap, _) = write(&repo, &id, entries.clone(), previous.take()).await;
                previous = Some(snap);
                expected.push((id, plain(&entries)));
            }
            expected
        })
    };
    let collector = {
        let repo = repo.clone();
        tokio::spawn(async move {
            let mut deleted = Vec::new();
            let (mut rounds, mut deferred, mut freed) = (0, 0, 0u64);
            loop {
                let mut ids = repo.snapshots().await.unwrap();
                ids.sort();
                for id in ids.iter().filter(|id| id.ends_with(['0', '3', '6', '9'])) {
                    if !deleted.contains(id) && ids.last() != Some(id) {
                        repo.delete_snapshot(id).await.unwrap();
                        deleted.push(id.clone());
                    }
                }
                let report = repo.gc().await.unwrap();
                deferred += u32::from(report.deferred);
                freed += report.freed_bytes;
                rounds += 1;
                if ids.len() + deleted.len() >= 12 && rounds > 3 {
                    return (deleted, deferred, freed);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let expected = writer.await.unwrap();
    let (deleted, deferred, freed) = collector.await.unwrap();
    let report = repo.gc().await.unwrap();
    assert!(!report.deferred);
    assert!(deferred > 0, "no collection ever met a running writer");
    assert!(freed + report.freed_bytes > 0, "no collection freed anything");
    assert_eq!(deleted.len(), 4, "{deleted:?}");
    for (id, entries) in expected {
        if deleted.contains(&id) {
            continue;
        }
        assert_eq!(
            read(&repo, &id).await.unwrap(),
            entries,
            "snapshot {id} does not restore"
        );
        assert_eq!(repo.verify(&id).await.unwrap().damaged, Vec::<String>::new());
    }
}

#[test]
fn golden_vectors() {
    let keys = Keys::from_master(&[7u8; 32], false);
    assert_eq!(
        keys.chunk_id(b"backspace").to_hex(),
        "bc2d30e1194d41f2d4383528e78765970bf1668b25fa037dd4cdf62f3cf642b2"
    );
    assert_eq!(keys.chunker_seed, 6857079434180451381);
    // Unencrypted sealing is deterministic: `plain ‖ MAC(16)`.
    assert_eq!(
        hex_of(&keys.seal(b"plain", b"aad")),
        "706c61696e415faf933c403d7fb74cc11e6491cdf2"
    );
    assert_eq!(keys.open(&keys.seal(b"plain", b"aad"), b"aad").unwrap(), b"plain");
    assert!(keys.open(&keys.seal(b"plain", b"aad"), b"other").is_err());
    let enc = Keys::from_master(&[7u8; 32], true);
    let sealed = enc.seal(b"plain", b"aad");
    assert_eq!(sealed.len(), 24 + 5 + 16);
    assert_ne!(enc.seal(b"plain", b"aad"), sealed, "a fresh nonce every time");
    // A blob sealed by the first implementation (RustCrypto's XChaCha20Poly1305, nonce 1..=24):
    // repositories written before the cipher changed still open.
    let earlier = "0102030405060708090a0b0c0d0e0f101112131415161718\
                   90790c203a691706a54cc9bdb24fcebdce0e449d15";
    let earlier = hex::decode(earlier).unwrap();
    assert_eq!(enc.open(&earlier, b"aad").unwrap(), b"plain");
    assert!(enc.open(&earlier, b"other").is_err());
    for i in 0..sealed.len() {
        let mut t = sealed.clone();
        t[i] ^= 1;
        assert!(enc.open(&t, b"aad").is_err(), "byte {i} changed unnoticed");
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Chunk ids of `bytes` as the repository cuts them.
    fn chunk_ids(keys: &Keys, bytes: &[u8]) -> Vec<String> {
        fastcdc::v2020::FastCDC::with_level_and_seed(
            bytes,
            256 * 1024,
            1024 * 1024,
            4 * 1024 * 1024,
            fastcdc::v2020::Normalization::Level1,
            keys.chunker_seed,
        )
        .map(|c| keys.chunk_id(&bytes[c.offset..c.offset + c.length]).to_hex())
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Inserting bytes changes only the chunks around the insertion.
        #[test]
        fn chunk_boundaries_are_stable_under_insertion(seed in 1u64..u64::MAX, at in 0usize..(6 << 20), len in 1usize..5000) {
            let keys = Keys::from_master(&[seed as u8; 32], true);
            let original = data(8 << 20, seed);
            let mut edited = original.clone();
            edited.splice(at..at, data(len, seed ^ 0xff));
            let a = chunk_ids(&keys, &original);
            let b = chunk_ids(&keys, &edited);
            let shared = a.iter().filter(|id| b.contains(id)).count();
            prop_assert!(shared + 3 >= a.len(), "only {shared} of {} chunks survived", a.len());
        }

        /// Sealed blobs open with their key and aad only; any changed byte is refused.
        #[test]
        fn sealing_round_trips_and_refuses_tampering(msg in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>(), encrypted in any::<bool>()) {
            let keys = Keys::from_master(&[3u8; 32], encrypted);
            let sealed = keys.seal(&msg, b"role");
            prop_assert_eq!(keys.open(&sealed, b"role").unwrap(), msg.clone());
            // Sealing in place, from parts, gives the same format.
            let mut in_place = vec![7u8; 3];
            let cut = flip % (msg.len() + 1);
            keys.seal_into(&mut in_place, &[&msg[..cut], &msg[cut..]], b"role");
            prop_assert_eq!(keys.open(&in_place[3..], b"role").unwrap(), msg.clone());
            // Sealing in place after room for the nonce, too.
            let mut prefixed = vec![9u8; 24];
            prefixed.extend_from_slice(&msg);
            keys.seal_prefixed(&mut prefixed, b"role");
            prop_assert_eq!(keys.open(&prefixed, b"role").unwrap(), msg.clone());
            prop_assert_eq!(prefixed.len(), sealed.len());
            let mut t = sealed.clone();
            let i = flip % t.len();
            t[i] ^= 0x80;
            prop_assert!(keys.open(&t, b"role").is_err());
            prop_assert!(keys.open_in_place(&mut t.clone(), b"role").is_err());
            // Opening in place gives the same bytes, and refuses another role.
            let mut copy = sealed.clone();
            prop_assert_eq!(keys.open_in_place(&mut copy, b"role").unwrap(), &msg[..]);
            prop_assert!(keys.open_in_place(&mut sealed.clone(), b"other role").is_err());
            let other = Keys::from_master(&[4u8; 32], encrypted);
            prop_assert!(other.open(&sealed, b"role").is_err());
        }
    }
}

/// Found by the fuzz target `repo_decoders`: a stored chunk whose place claims a raw length of
/// nearly 4 GiB made the decoder reserve that much memory before it looked at the chunk (in an
/// unencrypted repository anyone who can write the store can seal such a place). The fuzzer's
/// input, inline: a blob of unknown codec `0xff` claiming 4294836239 bytes; then the same claim on
/// a raw and a compressed blob.
#[test]
fn a_chunk_claiming_gigabytes_is_refused_before_memory_is_reserved() {
    use backspace_repo::decoders::{chunk_aad, decode_chunk};
    use backspace_repo::{BlobPlace, ChunkId};

    let keys = Keys::from_master(&[7u8; 32], false);
    let id = ChunkId([0; 32]);
    let found = b"\xff\xed\x00\x00\x00a \x19\x99\x99\x99\x99\x99\x99\x98bytes".to_vec();
    let compressed = [&[1u8][..], &zstd::bulk::compress(b"bytes", 1).unwrap()].concat();
    for stored in [found, b"\x00bytes".to_vec(), compressed] {
        let mut sealed = keys.seal(&stored, &chunk_aad(&id));
        let place = BlobPlace {
            id,
            offset: 0,
            length: sealed.len() as u32,
            raw_length: 0xfffe_000f,
        };
        let err = decode_chunk(&keys, &place, &mut sealed).unwrap_err();
        assert!(
            matches!(&err, RepoError::Corrupt(m) if m.contains("claims 4294836239 bytes")),
            "{err}"
        );
    }
    // The largest chunk any chunker cuts (16 MiB) still decodes.
    let plain = data(16 << 20, 5);
    let id = keys.chunk_id(&plain);
    let mut sealed = keys.seal(&[&[0u8][..], &plain].concat(), &chunk_aad(&id));
    let place = BlobPlace {
        id,
        offset: 0,
        length: sealed.len() as u32,
        raw_length: plain.len() as u32,
    };
    assert!(decode_chunk(&keys, &place, &mut sealed).unwrap() == plain);
}

/// Found with the fuzz target `repo_decoders` (snapshot mode): a snapshot whose entry sizes add
/// up past `u64::MAX` made `Snapshot::size` overflow (a panic in debug builds, a wrapped total in
/// release ones). The input, inline: the snapshot's JSON as stored, sealed with the test key.
#[test]
fn a_snapshot_whose_sizes_overflow_reports_a_saturated_size() {
    use backspace_repo::decoders::decode_snapshot;

    let keys = Keys::from_master(&[7u8; 32], false);
    let json = br#"{"version":1,"id":"fuzz","created":1,"meta":null,"entries":[{"name":"a","size":18446744073709551615,"chunks":[]},{"name":"b","size":1,"chunks":[]}]}"#;
    let mut sealed = keys.seal(json, &Snapshot::aad("fuzz"));
    let snap = decode_snapshot(&keys, "fuzz", &mut sealed).unwrap();
    assert_eq!(snap.entries.len(), 2);
    assert_eq!(snap.size(), u64::MAX);
}
