//! The second pass of a restore: file bytes staged under new keys, beside the live ones.
//!
//! Entries of an archive arrive one after another; entries of a repository snapshot are read
//! by several threads at once, each staging whole entries. Staged files are written without a
//! sync each and made durable together: a [`Flusher`] syncs in the background while more are
//! written, and [`Stager::finish`] once more before any row points at them.

use super::jobs::JobContext;
use super::SNAPSHOT_ENTRY;
use backspace_format::{EntryPath, FormatError};
use backspace_storage::{BlobKey, BlobStore, ByteStream, Flusher, StorageError};
use backspace_types::{FileId, PortalId};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

/// The largest `portal.json` a restore reads into memory.
pub(crate) const MAX_SNAPSHOT_BYTES: u64 = 512 << 20;

/// How many staged files may be in the store's hands (uploading) at once per thread, on stores
/// without blocking writes.
const IN_FLIGHT: usize = 8;

/// Threads that read and stage the entries of a repository snapshot.
const WORKERS: usize = 3;

/// A thread takes consecutive entries that start in one pack, up to about this many bytes, so
/// that it reads the pack from front to back (the kernel's read-ahead then works for it).
const BATCH_BYTES: u64 = 16 << 20;

/// Unsynced staged bytes are synced in the background after this many.
const FLUSH_EVERY: u64 = 64 << 20;

/// A file staged during a restore: its new blob key, size and digest.
#[derive(Clone, Debug)]
pub(crate) struct Staged {
    pub key: String,
    pub size: u64,
    pub blake3: String,
}

/// Staged files by (portal, file id).
pub(crate) type StagedFiles = Arc<Mutex<HashMap<(PortalId, FileId), Staged>>>;

type Put = tokio::task::JoinHandle<Result<u64, StorageError>>;

/// Stages the entries of one restore.
pub(crate) struct Stager {
    blobs: Arc<dyn BlobStore>,
    handle: Handle,
    /// The target portal, or `None` for a whole-server archive (`portals/{id}/…`).
    portal: Option<PortalId>,
    staged: StagedFiles,
    snapshots: Mutex<Vec<(PortalId, backspace_meta::Snapshot)>>,
    flusher: Flusher,
    seen: AtomicU64,
    total: u64,
    job: JobContext,
}

/// Counts and (unless the digest is known) hashes what is consumed through it.
struct Hashing<'a> {
    inner: &'a mut dyn BufRead,
    hasher: Option<blake3::Hasher>,
    bytes: u64,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Hashing<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        // The bytes consumed are still in the inner buffer: `fill_buf` returns them again
        // without reading.
        if let Some(hasher) = &mut self.hasher {
            if let Ok(buf) = self.inner.fill_buf() {
                hasher.update(&buf[..n.min(buf.len())]);
            }
        }
        self.bytes += n as u64;
        self.inner.consume(n);
    }
}

fn visitor(e: impl std::fmt::Display) -> FormatError {
    FormatError::Visitor(e.to_string())
}

/// Splits a snapshot's entries into runs of consecutive entries whose first chunks lie in the
/// same pack, each of at most [`BATCH_BYTES`] (or one entry).
fn batches(entries: &[backspace_repo::SnapshotEntry], index: &backspace_repo::Index) -> Vec<Range<usize>> {
    let pack_of = |e: &backspace_repo::SnapshotEntry| {
        let (id, _) = e.chunks.first()?;
        index.get(id).map(|(pack, _)| *pack)
    };
    let mut out = Vec::new();
    let (mut start, mut bytes, mut pack) = (0, 0u64, None);
    for (i, e) in entries.iter().enumerate() {
        let p = pack_of(e);
        if i > start && (p != pack || bytes >= BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        pack = p;
        bytes += e.size;
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// Which portal an entry belongs to, and its name within that portal: `portal` is the target,
/// or `None` for a whole-server archive, whose entries are `portals/{id}/…`.
pub(crate) fn entry_target(portal: Option<PortalId>, path: &EntryPath) -> Result<(PortalId, String), FormatError> {
    match portal {
        Some(portal) => Ok((portal, path.as_str().to_owned())),
        None => {
            let rest = path.as_str().strip_prefix("portals/").unwrap_or("");
            let (id, name) = rest.split_once('/').unwrap_or(("", ""));
            let id = id
                .parse::<i64>()
                .map_err(|_| visitor(format!("unexpected entry `{path}`")))?;
            Ok((PortalId(id), name.to_owned()))
        }
    }
}

/// The file whose bytes an entry holds, by its name within its portal (`files/{id}`).
pub(crate) fn file_of(name: &str) -> Option<FileId> {
    name.strip_prefix("files/").and_then(|i| i.parse::<FileId>().ok())
}

/// Reads a `portal.json` entry of `size` bytes.
pub(crate) fn read_snapshot(
    path: &EntryPath,
    size: u64,
    entry: &mut dyn Read,
) -> Result<backspace_meta::Snapshot, FormatError> {
    if size > MAX_SNAPSHOT_BYTES {
        return Err(visitor(format!(
            "{SNAPSHOT_ENTRY} is larger than {MAX_SNAPSHOT_BYTES} bytes"
        )));
    }
    // Parsed as it is read: the rows of a large portal are never held twice, as bytes and as
    // rows.
    let mut limited = std::io::BufReader::with_capacity(64 << 10, entry.take(size));
    serde_json::from_reader(&mut limited).map_err(|e| visitor(format!("entry `{path}` is not a portal snapshot: {e}")))
}

impl Stager {
    pub(crate) fn new(
        blobs: Arc<dyn BlobStore>,
        handle: Handle,
        portal: Option<PortalId>,
        staged: StagedFiles,
        total: u64,
        job: JobContext,
    ) -> Self {
        let flusher = Flusher::start(blobs.clone(), &handle, FLUSH_EVERY);
        Self {
            blobs,
            handle,
            portal,
            staged,
            snapshots: Mutex::new(Vec::new()),
            flusher,
            seen: AtomicU64::new(0),
            total,
            job,
        }
    }

    /// Which portal an entry belongs to, and its name within that portal.
    fn target(&self, path: &EntryPath) -> Result<(PortalId, String), FormatError> {
        entry_target(self.portal, path)
    }

    /// Stages one entry. `in_flight` holds this thread's unfinished uploads on stores without
    /// blocking writes. `digest` is the BLAKE3 of the entry's bytes when the source vouches for
    /// it (a repository entry, whose chunks are authenticated as they are read): the bytes are
    /// then not hashed again. Otherwise they are hashed as they are staged.
    pub(crate) fn entry(
        &self,
        path: &EntryPath,
        size: u64,
        digest: Option<blake3::Hash>,
        entry: &mut dyn BufRead,
        in_flight: &mut VecDeque<Put>,
    ) -> Result<(), FormatError> {
        let (target, name) = self.target(path)?;
        if name == SNAPSHOT_ENTRY {
            let snapshot = read_snapshot(path, size, entry)?;
            let mut snapshots = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
            if snapshots.iter().any(|(t, _)| *t == target) {
                return Err(visitor(format!("entry `{path}` appears twice")));
            }
            snapshots.push((target, snapshot));
            return Ok(());
        }
        let Some(id) = file_of(&name) else {
            return Err(visitor(format!("unexpected entry `{path}`")));
        };
        let key = BlobKey::new(format!("portals/{target}/files/{}", uuid::Uuid::new_v4().simple())).map_err(visitor)?;
        // Recorded before the bytes go in, so a failure below still cleans it up.
        {
            let mut staged = self.staged.lock().unwrap_or_else(|p| p.into_inner());
            if staged.contains_key(&(target, id)) {
                return Err(visitor(format!("entry `{path}` appears twice")));
            }
            staged.insert(
                (target, id),
                Staged {
                    key: key.to_string(),
                    size: 0,
                    blake3: String::new(),
                },
            );
        }
        let mut hashing = Hashing {
            inner: entry,
            hasher: digest.is_none().then(blake3::Hasher::new),
            bytes: 0,
        };
        // The key is new and random: nothing refers to it before the swap, so the file is
        // written in place (no temporary file and rename). A failure below deletes it with the
        // rest of what was staged; a crash leaves it unreferenced, for the restore's recovery.
        let fast = self.blobs.create_unsynced_blocking(&key, &mut hashing);
        match fast {
            Some(result) => {
                result.map_err(|e| visitor(format!("staging a file failed: {e}")))?;
                backspace_storage::hold::hold_blocking(backspace_storage::hold::RESTORE_FILE_STAGED);
            }
            None => {
                in_flight.push_back(self.upload(&key, &mut hashing)?);
                while in_flight.len() > IN_FLIGHT {
                    if let Some(oldest) = in_flight.pop_front() {
                        self.finish_put(oldest)?;
                    }
                }
            }
        }
        let bytes = hashing.bytes;
        if let Some(s) = self
            .staged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&(target, id))
        {
            s.size = bytes;
            // One of the two is there: the digest vouched for, or the hash of what was staged.
            let hashed = hashing.hasher.map(|h| h.finalize());
            s.blake3 = digest.or(hashed).map(|d| d.to_hex().to_string()).unwrap_or_default();
        }
        self.flusher.wrote(bytes);
        let seen = self.seen.fetch_add(bytes, Ordering::Relaxed) + bytes;
        // Restore progress: 10 after verification, then up to 75 while staging.
        self.job.set("stage", 10 + (seen * 65 / self.total.max(1)) as i64);
        Ok(())
    }

    /// Streams `reader` into an upload running on the runtime; returns the upload.
    fn upload(&self, key: &BlobKey, reader: &mut dyn BufRead) -> Result<Put, FormatError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let stream: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let store = self.blobs.clone();
        let put_key = key.clone();
        let put = self
            .handle
            .spawn(async move { store.put_unsynced(&put_key, stream).await });
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            let sent = tx.blocking_send(Ok(Bytes::copy_from_slice(buf)));
            reader.consume(n);
            if sent.is_err() {
                break;
            }
        }
        Ok(put)
    }

    fn finish_put(&self, put: Put) -> Result<(), FormatError> {
        self.handle
            .block_on(put)
            .map_err(|e| visitor(format!("staging stopped: {e}")))?
            .map_err(|e| visitor(format!("staging a file failed: {e}")))?;
        backspace_storage::hold::hold_blocking(backspace_storage::hold::RESTORE_FILE_STAGED);
        Ok(())
    }

    /// Stages every entry of a repository snapshot, with several threads.
    pub(crate) fn repository(
        &self,
        repo: &Arc<backspace_repo::Repository>,
        index: &Arc<backspace_repo::Index>,
        snapshot: &backspace_repo::Snapshot,
    ) -> Result<(), FormatError> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let entries = &snapshot.entries;
        let mut batches = batches(entries, index);
        // Largest first: the threads end together instead of one staging a large file alone at
        // the end while the others wait.
        batches.sort_by_key(|b| std::cmp::Reverse(entries[b.clone()].iter().map(|e| e.size).sum::<u64>()));
        let results: Vec<Result<(), FormatError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..WORKERS.min(entries.len().max(1)))
                .map(|_| {
                    scope.spawn(|| {
                        let mut in_flight = VecDeque::new();
                        // One reader per thread, pointed at each entry in turn.
                        let mut reader: Option<backspace_repo::EntryReader> = None;
                        let result = (|| {
                            while !failed.load(Ordering::Relaxed) {
                                let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                                    break;
                                };
                                for e in &entries[batch.clone()] {
                                    let path = EntryPath::new(e.name.clone())?;
                                    let r = match &mut reader {
                                        Some(r) => {
                                            r.reset(e).map_err(visitor)?;
                                            r
                                        }
                                        None => reader.insert(
                                            repo.entry_reader(self.handle.clone(), index.clone(), e)
                                                .map_err(visitor)?,
                                        ),
                                    };
                                    // The entry reader authenticates every chunk and checks
                                    // its length; the snapshot (authenticated too) says what
                                    // the chunks hash to, so the bytes are not hashed again.
                                    self.entry(&path, e.size, e.blake3, r, &mut in_flight)?;
                                }
                            }
                            Ok(())
                        })();
                        let result = result.and_then(|()| self.drain(&mut in_flight));
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        result
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(visitor("a restore thread panicked"))))
                .collect()
        });
        results.into_iter().collect()
    }

    /// Waits for this thread's uploads.
    pub(crate) fn drain(&self, in_flight: &mut VecDeque<Put>) -> Result<(), FormatError> {
        while let Some(put) = in_flight.pop_front() {
            self.finish_put(put)?;
        }
        Ok(())
    }

    /// Makes every staged byte durable; returns the `portal.json` entries read.
    pub(crate) fn finish(self) -> Result<Vec<(PortalId, backspace_meta::Snapshot)>, FormatError> {
        let started = std::time::Instant::now();
        self.handle
            .block_on(self.flusher.finish())
            .map_err(|e| visitor(format!("making the staged files durable failed: {e}")))?;
        tracing::debug!(job = %self.job.id, millis = started.elapsed().as_millis() as u64, "restore: staged files synced");
        let snapshots = self.snapshots.into_inner().unwrap_or_else(|p| p.into_inner());
        if snapshots.is_empty() {
            return Err(visitor(format!("the archive has no {SNAPSHOT_ENTRY}")));
        }
        Ok(snapshots)
    }
}
