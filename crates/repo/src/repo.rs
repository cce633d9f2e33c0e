//! The repository: opening and creating it, writing and reading snapshots, verification and
//! garbage collection.

use crate::crypto::{self, ChunkId, KeySlot, Keys};
use crate::pack::{self, BlobPlace, PackBuilder, PackId};
use crate::RepoError;
use backspace_storage::{BlobKey, BlobStore, ByteStream, Flusher};
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

const FORMAT: &str = "backspace-repository";
const VERSION: u32 = 1;
const MIN_CHUNK: u32 = 256 * 1024;
const AVG_CHUNK: u32 = 1024 * 1024;
const MAX_CHUNK: u32 = 4 * 1024 * 1024;
/// The largest chunk any repository's chunker cuts: the bound on a config's `chunker.max`. A
/// stored chunk that claims more is damaged (and is not given the memory it claims).
const CHUNK_LIMIT: u32 = 16 * 1024 * 1024;
const PACK_SIZE: u32 = 16 * 1024 * 1024;
/// Threads that compress, seal and store packs while the writer's thread cuts chunks.
const PACKERS: usize = 2;
/// Unsynced packs are synced in the background after this many bytes.
const FLUSH_EVERY: u64 = 64 * 1024 * 1024;
/// A lock not refreshed for this long belongs to a process that died.
const STALE_LOCK: Duration = Duration::from_secs(15 * 60);
/// A writer refreshes its lock at least this often.
const REFRESH: Duration = Duration::from_secs(60);
/// A read of consecutive blobs of one pack is merged up to this size.
const MAX_RUN: u64 = 16 * 1024 * 1024;
/// How many times a reader loads the index again when a collection moved chunks under it.
const INDEX_RELOADS: usize = 3;
/// The Bloom filter of referenced chunks in garbage collection: 32 MiB, whatever the size of the
/// repository (about 1% false positives at 28 million chunks; a false positive keeps a dead chunk,
/// never the reverse).
const BLOOM_BITS: u64 = 32 * 1024 * 1024 * 8;
/// The Bloom filter of indexed packs, for the sweep of packs no index names: 1 MiB (about 1%
/// false positives at 870,000 packs, 14 PB; a false positive keeps an orphan pack).
const PACK_BLOOM_BITS: u64 = 1024 * 1024 * 8;
const BLOOM_HASHES: u64 = 7;
/// A pack whose live bytes fall under this share is rewritten with its live blobs only.
const REPACK_BELOW: f64 = 0.5;

fn key(s: impl Into<String>) -> Result<BlobKey, RepoError> {
    BlobKey::new(s.into()).map_err(|e| RepoError::Corrupt(e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn read_all(stream: ByteStream) -> Result<Vec<u8>, RepoError> {
    let parts: Vec<Bytes> = stream.try_collect().await.map_err(RepoError::Input)?;
    Ok(parts.concat())
}

fn one_shot(data: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok(Bytes::from(data))]))
}

/// The secret a repository is opened or created with.
#[derive(Clone, Copy, Debug)]
pub enum Secret<'a> {
    /// Encrypted, with a key slot for this passphrase.
    Passphrase(&'a str),
    /// Unencrypted: only when the server's configuration asks for it explicitly.
    Unencrypted,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChunkerSizes {
    min: u32,
    avg: u32,
    max: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    format: String,
    version: u32,
    id: String,
    encryption: String,
    chunker: ChunkerSizes,
    pack_size: u32,
    #[serde(default)]
    key_slots: Vec<KeySlot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plain_key: Option<String>,
}

/// A snapshot: one backup, as a list of entries made of chunks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub version: u32,
    pub id: String,
    pub created: i64,
    pub meta: serde_json::Value,
    pub entries: Vec<SnapshotEntry>,
}

/// One entry (a file of the archive) of a snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub name: String,
    pub size: u64,
    /// What the bytes were made from (e.g. `blake3:size` of a portal file): an entry with the
    /// same source in the next backup reuses the chunks without reading the bytes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// BLAKE3 of the entry's bytes, computed by the writer from the very bytes it cut into the
    /// chunks below (or carried over with reused chunks). The chunks and the snapshot are
    /// authenticated, so a reader that got every chunk has these bytes without hashing them
    /// again. Absent in snapshots written before it was recorded. 64 hex digits on the wire, 32
    /// bytes in memory (a large portal's snapshot holds tens of thousands of entries).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_digest")]
    pub blake3: Option<blake3::Hash>,
    /// `[chunk id, raw length]`, in order (the id as 64 hex digits on the wire).
    pub chunks: Vec<(ChunkId, u32)>,
}

/// An optional BLAKE3 digest as 64 hex digits.
mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(digest: &Option<blake3::Hash>, s: S) -> Result<S::Ok, S::Error> {
        match digest {
            Some(d) => s.serialize_str(d.to_hex().as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<blake3::Hash>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|hex| blake3::Hash::from_hex(hex).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Snapshot {
    /// The total size of the entries (saturating: the sizes are the stored snapshot's word).
    pub fn size(&self) -> u64 {
        self.entries.iter().fold(0, |total, e| total.saturating_add(e.size))
    }

    /// The associated data a snapshot named `id` is sealed with.
    #[doc(hidden)]
    pub fn aad(id: &str) -> Vec<u8> {
        [b"backspace repository v1 snapshot ".as_slice(), id.as_bytes()].concat()
    }
}

/// Parses and checks a repository's `config` object and derives its keys: through its key slots
/// with `passphrase`, or from its plain key when it is unencrypted.
fn read_config(raw: &[u8], passphrase: Option<&str>) -> Result<(Config, Keys), RepoError> {
    let config: Config =
        serde_json::from_slice(raw).map_err(|e| RepoError::Corrupt(format!("the config is unreadable: {e}")))?;
    if config.format != FORMAT || config.version != VERSION {
        return Err(RepoError::Corrupt(format!(
            "format `{}` version {} is not one this server reads",
            config.format, config.version
        )));
    }
    let sizes_ok = (64 * 1024..=MAX_CHUNK).contains(&config.chunker.min)
        && config.chunker.min <= config.chunker.avg
        && config.chunker.avg <= config.chunker.max
        && config.chunker.max <= CHUNK_LIMIT;
    if !sizes_ok {
        return Err(RepoError::Corrupt("the chunker sizes are out of range".into()));
    }
    let keys = match (config.encryption.as_str(), passphrase) {
        ("none", _) => {
            let mut master = [0u8; 32];
            hex::decode_to_slice(config.plain_key.as_deref().unwrap_or(""), &mut master)
                .map_err(|_| RepoError::Corrupt("the plain key is unreadable".into()))?;
            Keys::from_master(&master, false)
        }
        ("xchacha20poly1305", Some(p)) => {
            let mut found = None;
            for slot in &config.key_slots {
                if let Some(master) = slot.unlock(p)? {
                    found = Some(master);
                    break;
                }
            }
            Keys::from_master(&found.ok_or(RepoError::WrongPassphrase)?, true)
        }
        ("xchacha20poly1305", None) => {
            return Err(RepoError::Refused(
                "the repository is encrypted: a passphrase is needed to open it".into(),
            ))
        }
        (other, _) => return Err(RepoError::Corrupt(format!("unknown encryption `{other}`"))),
    };
    Ok((config, keys))
}

/// [`read_config`] for the fuzz targets: the keys a `config` object opens with.
pub fn open_config(raw: &[u8], passphrase: Option<&str>) -> Result<Keys, RepoError> {
    read_config(raw, passphrase).map(|(_, keys)| keys)
}

/// Opens (in place) and parses a sealed snapshot, which must name itself `id`.
pub fn decode_snapshot(keys: &Keys, id: &str, sealed: &mut [u8]) -> Result<Snapshot, RepoError> {
    let plain = keys.open_in_place(sealed, &Snapshot::aad(id))?;
    let snap: Snapshot =
        serde_json::from_slice(plain).map_err(|e| RepoError::Corrupt(format!("snapshot `{id}`: {e}")))?;
    if snap.id != id {
        return Err(RepoError::Corrupt(format!(
            "snapshot `{id}` names itself `{}`",
            snap.id
        )));
    }
    Ok(snap)
}

/// Where every chunk is.
pub type Index = HashMap<ChunkId, (PackId, BlobPlace)>;

/// An open repository.
pub struct Repository {
    store: Arc<dyn BlobStore>,
    keys: Keys,
    config: Config,
    /// Locks of this process's writers and collections that ended but whose lock could not be
    /// deleted (the store failed): their holders are known to be gone, so they hold nothing
    /// back here, and the next writer or collection deletes them.
    dead_locks: std::sync::Mutex<HashSet<BlobKey>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

/// What a writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteStats {
    /// Bytes of the entries.
    pub bytes: u64,
    /// Bytes read and chunked (the rest was recognised from its source).
    pub read: u64,
    pub new_chunks: u64,
    pub reused_chunks: u64,
    /// Bytes of new packs written.
    pub stored: u64,
    pub packs: u64,
}

/// The result of reading a snapshot back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub checked_chunks: u64,
    /// Ids of chunks that are missing or fail their checks.
    pub damaged: Vec<String>,
}

/// What a garbage collection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// True when a writer was running: nothing was deleted, run it again later.
    pub deferred: bool,
    pub snapshots: u64,
    pub deleted_packs: u64,
    pub repacked_packs: u64,
    pub freed_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct LockFile {
    kind: String,
    created: i64,
    refreshed: i64,
}

impl Repository {
    /// Opens the repository in `store`, or creates it when there is none.
    pub async fn open_or_create(store: Arc<dyn BlobStore>, secret: Secret<'_>) -> Result<Self, RepoError> {
        if store.size(&key("config")?).await?.is_some() {
            let passphrase = match secret {
                Secret::Passphrase(p) => Some(p),
                Secret::Unencrypted => None,
            };
            Self::open(store, passphrase).await
        } else {
            Self::create(store, secret).await
        }
    }

    /// Creates a repository; refuses when one exists.
    pub async fn create(store: Arc<dyn BlobStore>, secret: Secret<'_>) -> Result<Self, RepoError> {
        if store.size(&key("config")?).await?.is_some() {
            return Err(RepoError::Refused("a repository exists here already".into()));
        }
        let mut master = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut master);
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        let (encryption, key_slots, plain_key) = match secret {
            Secret::Passphrase(p) => {
                if p.is_empty() {
                    return Err(RepoError::Refused("the repository passphrase is empty".into()));
                }
                ("xchacha20poly1305", vec![KeySlot::new(&master, p)?], None)
            }
            Secret::Unencrypted => ("none", Vec::new(), Some(hex::encode(master))),
        };
        let config = Config {
            format: FORMAT.into(),
            version: VERSION,
            id: hex::encode(id),
            encryption: encryption.into(),
            chunker: ChunkerSizes {
                min: MIN_CHUNK,
                avg: AVG_CHUNK,
                max: MAX_CHUNK,
            },
            pack_size: PACK_SIZE,
            key_slots,
            plain_key,
        };
        let json = serde_json::to_vec_pretty(&config).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        store.put(&key("config")?, one_shot(json)).await?;
        let keys = Keys::from_master(&master, secret_is_encrypted(secret));
        Ok(Self {
            store,
            keys,
            config,
            dead_locks: Default::default(),
        })
    }

    /// Opens an existing repository: with the passphrase of one of its key slots, or with none
    /// when it is unencrypted.
    pub async fn open(store: Arc<dyn BlobStore>, passphrase: Option<&str>) -> Result<Self, RepoError> {
        let raw = read_all(store.get(&key("config")?).await?).await?;
        let (config, keys) = read_config(&raw, passphrase)?;
        Ok(Self {
            store,
            keys,
            config,
            dead_locks: Default::default(),
        })
    }

    /// Adds a key slot for `passphrase` (the repository must be encrypted).
    pub async fn add_passphrase(&mut self, current: &str, passphrase: &str) -> Result<(), RepoError> {
        let mut master = None;
        for slot in &self.config.key_slots {
            if let Some(m) = slot.unlock(current)? {
                master = Some(m);
            }
        }
        let master = master.ok_or(RepoError::WrongPassphrase)?;
        self.config.key_slots.push(KeySlot::new(&master, passphrase)?);
        let json = serde_json::to_vec_pretty(&self.config).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        self.store.put(&key("config")?, one_shot(json)).await?;
        Ok(())
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// The ids of every snapshot.
    pub async fn snapshots(&self) -> Result<Vec<String>, RepoError> {
        Ok(self
            .store
            .list(&key("snapshots")?)
            .await?
            .iter()
            .filter_map(|k| k.as_str().strip_prefix("snapshots/").map(str::to_owned))
            .collect())
    }

    /// Reads a snapshot.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot, RepoError> {
        let k = key(format!("snapshots/{id}"))?;
        let sealed = match self.store.get(&k).await {
            Ok(s) => read_all(s).await?,
            Err(backspace_storage::StorageError::NotFound(_)) => return Err(RepoError::NoSnapshot(id.to_owned())),
            Err(e) => return Err(e.into()),
        };
        let mut sealed = sealed;
        decode_snapshot(&self.keys, id, &mut sealed)
    }

    /// Whether a snapshot exists.
    pub async fn has_snapshot(&self, id: &str) -> Result<bool, RepoError> {
        Ok(self.store.size(&key(format!("snapshots/{id}"))?).await?.is_some())
    }

    /// Deletes a snapshot. Its chunks stay until [`Repository::gc`] finds no snapshot uses them.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), RepoError> {
        self.store.delete(&key(format!("snapshots/{id}"))?).await?;
        Ok(())
    }

    /// Removes the locks of collections started with [`Repository::gc_as`] by `owner` (not
    /// empty), which must be known to run none (its process started since); returns how many.
    /// Such a lock would otherwise hold off every writer and collection until it is stale.
    pub async fn remove_gc_locks(&self, owner: &str) -> Result<usize, RepoError> {
        let mut removed = 0;
        for k in self.store.list(&key("locks")?).await? {
            let name = k.as_str().rsplit('/').next().unwrap_or_default();
            if !owner.is_empty() && name.starts_with(owner) && name.ends_with(".gc") {
                self.store.delete(&k).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the lock of the writer `writer_id`, which must be known to be dead (its process
    /// ended): a collection then removes the packs it left at once, instead of deferring to the
    /// lock for [`STALE_LOCK`]. Nothing happens when there is no such lock.
    pub async fn remove_writer_lock(&self, writer_id: &str) -> Result<(), RepoError> {
        self.store.delete(&key(format!("locks/{writer_id}.writer"))?).await?;
        Ok(())
    }

    /// Every index file's entries.
    /// Entries of packs that are gone (lost by the store) are left out: a writer then stores
    /// their chunks again instead of referencing what is lost, and readers find the new copy.
    pub async fn load_index(&self) -> Result<Index, RepoError> {
        let mut reloads = 0;
        'load: loop {
            let packs = self.stored_packs().await?;
            let mut index = Index::new();
            for k in self.store.list(&key("index")?).await? {
                let sealed = match self.store.get(&k).await {
                    Ok(s) => read_all(s).await?,
                    // A collection replaced it (writing the new one first) since the listing.
                    Err(backspace_storage::StorageError::NotFound(_)) if reloads < INDEX_RELOADS => {
                        reloads += 1;
                        continue 'load;
                    }
                    Err(e) => return Err(e.into()),
                };
                for (pack, place) in pack::decode_index(&self.keys, &sealed)? {
                    if packs.contains(&pack) {
                        index.insert(place.id, (pack, place));
                    }
                }
            }
            return Ok(index);
        }
    }

    /// Reads a pack's header.
    async fn pack_header(&self, pack: PackId) -> Result<(u64, Vec<BlobPlace>), RepoError> {
        let k = key(pack.key())?;
        let size = self
            .store
            .size(&k)
            .await?
            .ok_or_else(|| RepoError::Corrupt(format!("pack {pack:?} is missing")))?;
        if size < pack::TRAILER as u64 {
            return Err(RepoError::Corrupt(format!("pack {pack:?} is too short")));
        }
        let trailer = read_all(self.store.get_range(&k, size - pack::TRAILER as u64..size).await?).await?;
        let header_len = u64::from(pack::header_length(&trailer)?);
        let start = (size - pack::TRAILER as u64)
            .checked_sub(header_len)
            .ok_or_else(|| RepoError::Corrupt(format!("pack {pack:?} has a header longer than itself")))?;
        let sealed = read_all(self.store.get_range(&k, start..size - pack::TRAILER as u64).await?).await?;
        Ok((size, pack::decode_header(&self.keys, &sealed, start)?))
    }

    /// Rebuilds the index from the packs alone: one new index file replaces all others.
    /// Returns the number of chunks indexed.
    pub async fn rebuild_index(&self) -> Result<usize, RepoError> {
        let mut entries = Vec::new();
        for k in self.store.list(&key("packs")?).await? {
            let Some(name) = k.as_str().rsplit('/').next() else {
                continue;
            };
            let pack = PackId::from_hex(name)?;
            let (_, places) = self.pack_header(pack).await?;
            entries.extend(places.into_iter().map(|p| (pack, p)));
        }
        let old = self.store.list(&key("index")?).await?;
        let name = format!("index/rebuilt-{}", hex::encode(rand::random::<[u8; 8]>()));
        self.store
            .put(&key(name.clone())?, one_shot(pack::encode_index(&self.keys, &entries)))
            .await?;
        for k in old {
            if k.as_str() != name {
                self.store.delete(&k).await?;
            }
        }
        Ok(entries.len())
    }

    async fn locks(&self) -> Result<Vec<(BlobKey, LockFile)>, RepoError> {
        let mut out = Vec::new();
        for k in self.store.list(&key("locks")?).await? {
            match self.store.get(&k).await {
                Ok(s) => {
                    let raw = read_all(s).await?;
                    if let Ok(lock) = serde_json::from_slice::<LockFile>(&raw) {
                        out.push((k, lock));
                    }
                }
                Err(backspace_storage::StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    async fn put_lock(&self, k: &BlobKey, lock: &LockFile) -> Result<(), RepoError> {
        let json = serde_json::to_vec(lock).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        self.store.put(k, one_shot(json)).await?;
        Ok(())
    }

    /// Deletes the lock of a writer or collection of this process that ended; when the store
    /// fails, the lock is remembered as dead (see `dead_locks`).
    async fn release_lock(&self, k: &BlobKey) -> Result<(), RepoError> {
        let result = self.store.delete(k).await;
        let mut dead = self.dead_locks.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                dead.remove(k);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(lock = %k, error = %e, "removing a repository lock failed; it is retried");
                dead.insert(k.clone());
                Err(e.into())
            }
        }
    }

    /// Deletes the dead locks remembered; those the store still refuses stay remembered.
    async fn clear_dead_locks(&self) {
        let dead: Vec<BlobKey> = self
            .dead_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        for k in dead {
            let _ = self.release_lock(&k).await;
        }
    }

    fn is_dead_lock(&self, k: &BlobKey) -> bool {
        self.dead_locks.lock().unwrap_or_else(|p| p.into_inner()).contains(k)
    }

    /// The packs stored.
    async fn stored_packs(&self) -> Result<HashSet<PackId>, RepoError> {
        Ok(self
            .store
            .list(&key("packs")?)
            .await?
            .iter()
            .filter_map(|k| k.as_str().rsplit('/').next().and_then(|n| PackId::from_hex(n).ok()))
            .collect())
    }

    /// Starts a snapshot writer (call from a blocking thread; `handle` runs the store's I/O).
    /// `previous` is the last snapshot of the same source: its entries' chunks are reused for
    /// entries with the same `source` without reading them.
    pub fn writer(
        self: &Arc<Self>,
        handle: Handle,
        previous: Option<Snapshot>,
        cancel: Arc<AtomicBool>,
    ) -> Result<SnapshotWriter, RepoError> {
        self.named_writer(handle, previous, cancel, &hex::encode(rand::random::<[u8; 16]>()))
    }

    /// [`Repository::writer`] with an id the caller chooses (unique per writer: it names the
    /// writer's lock and index file), so that the lock of a writer whose process died can be
    /// removed with [`Repository::remove_writer_lock`] rather than waiting for it to go stale.
    pub fn named_writer(
        self: &Arc<Self>,
        handle: Handle,
        previous: Option<Snapshot>,
        cancel: Arc<AtomicBool>,
        writer_id: &str,
    ) -> Result<SnapshotWriter, RepoError> {
        let writer_id = writer_id.to_owned();
        let lock_key = key(format!("locks/{writer_id}.writer"))?;
        let lock = LockFile {
            kind: "writer".into(),
            created: now_ms(),
            refreshed: now_ms(),
        };
        handle.block_on(self.clear_dead_locks());
        // Until the writer exists (its drop cleans up), a failure removes the lock again: a put
        // that failed may still have stored it.
        let fail = |e: RepoError| {
            let _ = handle.block_on(self.release_lock(&lock_key));
            e
        };
        handle.block_on(self.put_lock(&lock_key, &lock)).map_err(fail)?;
        // A collection that started deleting before this lock existed finishes first; one that
        // starts later sees the lock and deletes nothing (see `gc`).
        let waited = Instant::now();
        loop {
            let gcs = handle.block_on(self.locks()).map_err(fail)?;
            let live = gcs.iter().any(|(k, l)| {
                l.kind == "gc" && !self.is_dead_lock(k) && now_ms() - l.refreshed < STALE_LOCK.as_millis() as i64
            });
            if !live {
                break;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(fail(RepoError::Cancelled));
            }
            if waited.elapsed() > STALE_LOCK {
                return Err(fail(RepoError::Refused(
                    "a garbage collection holds the repository".into(),
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let index = handle.block_on(self.load_index()).map_err(fail)?;
        let mut by_source = HashMap::new();
        // The previous snapshot's entries move into `by_source` (the rest is dropped here).
        for mut e in previous.into_iter().flat_map(|p| p.entries) {
            // Reused only when every chunk is still indexed.
            // Kept without its name and source (the key): only what a reuse copies.
            if let Some(src) = e.source.take() {
                if e.chunks.iter().all(|(id, _)| index.contains_key(id)) {
                    e.name = String::new();
                    by_source.insert(src, e);
                }
            }
        }
        let flusher = Arc::new(Flusher::start(self.store.clone(), &handle, FLUSH_EVERY));
        let mut senders = Vec::with_capacity(PACKERS);
        let mut threads = Vec::with_capacity(PACKERS);
        for n in 0..PACKERS {
            // Four chunks (up to 4 MiB each) queued per packer: with two, the first backup of
            // the 2 GiB benchmark took 13.2 s (10.6 s with four; runs here vary by a tenth).
            let (tx, rx) = std::sync::mpsc::sync_channel(4);
            senders.push(tx);
            let packer = Packer {
                repo: self.clone(),
                handle: handle.clone(),
                flusher: flusher.clone(),
                pack: PackBuilder::with_capacity(self.pack_capacity()),
                packed: Packed::default(),
                compression: Compression::new()?,
            };
            let thread = std::thread::Builder::new()
                .name(format!("repo-packer-{n}"))
                .spawn(move || packer.run(rx))
                .map_err(|e| RepoError::Refused(format!("cannot start a packer thread: {e}")))?;
            threads.push(thread);
        }
        Ok(SnapshotWriter {
            repo: self.clone(),
            handle,
            known: index.into_keys().collect(),
            by_source,
            entries: Vec::new(),
            writer_id,
            lock_key,
            lock,
            last_refresh: Instant::now(),
            stats: WriteStats::default(),
            cancel,
            packers: Some((senders, threads)),
            route: (0, 0),
            flusher: Some(flusher),
            index_written: false,
            finished: false,
        })
    }

    fn pack_capacity(&self) -> usize {
        self.config.pack_size as usize + MAX_CHUNK as usize + 4096
    }

    /// A reader of an entry's bytes (call from a blocking thread).
    pub fn entry_reader(
        self: &Arc<Self>,
        handle: Handle,
        index: Arc<Index>,
        entry: &SnapshotEntry,
    ) -> Result<EntryReader, RepoError> {
        Ok(EntryReader {
            repo: self.clone(),
            handle,
            index,
            chunks: entry.chunks.clone(),
            next: 0,
            run: Vec::new(),
            run_at: 0,
            buffer: Vec::new(),
            in_raw: false,
            plain: 0..0,
            at: 0,
            state: ReadState::default(),
        })
    }

    /// Reads consecutive blobs of one pack with one request; returns the plain chunks.
    async fn read_run(&self, pack: PackId, places: &[BlobPlace]) -> Result<Vec<Vec<u8>>, RepoError> {
        let start = u64::from(places[0].offset);
        let last = places[places.len() - 1];
        let end = u64::from(last.offset) + u64::from(last.length);
        let mut bytes = read_all(self.store.get_range(&key(pack.key())?, start..end).await?).await?;
        if bytes.len() as u64 != end - start {
            return Err(RepoError::Corrupt(format!(
                "pack {pack:?} is shorter than its index says"
            )));
        }
        places
            .iter()
            .map(|p| {
                let from = (u64::from(p.offset) - start) as usize;
                decode_chunk(&self.keys, p, &mut bytes[from..from + p.length as usize])
            })
            .collect()
    }

    /// Reads `range` of a pack into `state.raw` from a blocking thread: with plain file reads
    /// when the store is on a local disk (the pack stays open for the next read), else
    /// through the runtime.
    fn read_pack_range(
        &self,
        handle: &Handle,
        pack: PackId,
        range: std::ops::Range<u64>,
        state: &mut ReadState,
    ) -> Result<(), RepoError> {
        let k = key(pack.key())?;
        if state.pack.as_ref().map(|(p, _)| *p) != Some(pack) {
            state.pack = None;
            if let Some(file) = self.store.open_blocking(&k) {
                state.pack = Some((pack, file?));
            }
        }
        state.raw.clear();
        match &state.pack {
            Some((_, file)) => {
                use std::io::Seek;
                let io = |e| {
                    RepoError::Storage(backspace_storage::StorageError::Io {
                        key: k.to_string(),
                        source: e,
                    })
                };
                let mut file: &std::fs::File = file;
                file.seek(io::SeekFrom::Start(range.start)).map_err(io)?;
                file.take(range.end - range.start)
                    .read_to_end(&mut state.raw)
                    .map_err(io)?;
            }
            None => {
                state.raw = handle.block_on(async { read_all(self.store.get_range(&k, range).await?).await })?;
            }
        }
        Ok(())
    }

    /// Reads the sealed blobs of a run (consecutive blobs of one pack, as `places`) into
    /// `state.raw` with one request, from a blocking thread. They are opened one at a time as
    /// they are read ([`EntryReader`]).
    fn read_sealed_run(
        &self,
        handle: &Handle,
        pack: PackId,
        places: &[BlobPlace],
        state: &mut ReadState,
    ) -> Result<(), RepoError> {
        let start = u64::from(places[0].offset);
        let last = places[places.len() - 1];
        let end = u64::from(last.offset) + u64::from(last.length);
        self.read_pack_range(handle, pack, start..end, state)?;
        if state.raw.len() as u64 != end - start {
            return Err(RepoError::Corrupt(format!(
                "pack {pack:?} is shorter than its index says"
            )));
        }
        Ok(())
    }

    /// Reads every chunk of a snapshot back and checks it; returns the damaged ones.
    pub async fn verify(&self, id: &str) -> Result<Verification, RepoError> {
        let snap = self.snapshot(id).await?;
        let mut index = self.load_index().await?;
        let mut reloads = 0;
        let mut seen = HashSet::new();
        let mut out = Verification::default();
        for entry in &snap.entries {
            for &(chunk, len) in &entry.chunks {
                if !seen.insert(chunk) {
                    continue;
                }
                out.checked_chunks += 1;
                let mut ok = self.check_chunk(&index, chunk, len).await;
                // A collection may have moved the chunk since the index was loaded (see
                // `EntryReader::fill`): it is damaged only where the index says it is now.
                while !ok && reloads < INDEX_RELOADS {
                    reloads += 1;
                    let fresh = self.load_index().await?;
                    let place = |index: &Index| index.get(&chunk).map(|(pack, place)| (*pack, place.offset));
                    let moved = place(&fresh) != place(&index);
                    index = fresh;
                    if !moved {
                        break;
                    }
                    ok = self.check_chunk(&index, chunk, len).await;
                }
                if !ok {
                    out.damaged.push(chunk.to_hex());
                }
            }
        }
        Ok(out)
    }

    /// Whether a chunk reads back whole, of its length, where `index` says it is.
    async fn check_chunk(&self, index: &Index, chunk: ChunkId, len: u32) -> bool {
        match index.get(&chunk) {
            Some((pack, place)) if place.raw_length == len => {
                self.read_run(*pack, std::slice::from_ref(place)).await.is_ok()
            }
            _ => false,
        }
    }

    /// Garbage collection: deletes packs whose chunks no snapshot uses, and rewrites packs that
    /// are mostly dead with their live blobs only.
    ///
    /// **Safety.** A writer may reference (deduplicate against) any indexed chunk, and its
    /// snapshot appears only when it finishes. So a collection must never delete a chunk while a
    /// writer runs. The protocol:
    /// 1. the collection writes its own lock `locks/{id}.gc`;
    /// 2. it lists the locks: if a live writer lock exists, it deletes its lock and stops
    ///    (`deferred`), having deleted nothing; a stale writer lock (a writer that died) is
    ///    removed, with the packs it named and never indexed;
    /// 3. only then does it read the snapshots and delete.
    ///
    /// A writer creates its lock first and then waits while a live collection lock exists, and
    /// only after that loads the index it deduplicates against. Either the writer's lock exists
    /// before step 2 (the collection sees it and deletes nothing), or it is created after step
    /// 2, hence after step 1, so the writer sees the collection's lock and waits until the
    /// collection has finished: it then loads an index without the deleted packs. Every
    /// snapshot written before step 2 is read in step 3 (a writer writes its snapshot before
    /// removing its lock). Object stores with read-after-write consistency (S3, GCS, local
    /// disks) give the ordering this needs.
    ///
    /// **Memory** does not grow with the repository: referenced chunks go into a fixed-size Bloom
    /// filter (a false positive keeps a dead chunk), and index files are processed one at a time
    /// (each pack is listed in exactly one index file).
    pub async fn gc(&self) -> Result<GcReport, RepoError> {
        self.gc_as("").await
    }

    /// [`Repository::gc`] with a lock whose name starts with `owner` (key-safe), so that the
    /// owner can remove the locks of its collections that a crash interrupted with
    /// [`Repository::remove_gc_locks`].
    pub async fn gc_as(&self, owner: &str) -> Result<GcReport, RepoError> {
        let gc_key = key(format!("locks/{owner}{}.gc", hex::encode(rand::random::<[u8; 16]>())))?;
        let lock = LockFile {
            kind: "gc".into(),
            created: now_ms(),
            refreshed: now_ms(),
        };
        self.clear_dead_locks().await;
        if let Err(e) = self.put_lock(&gc_key, &lock).await {
            let _ = self.release_lock(&gc_key).await;
            return Err(e);
        }
        let result = self.gc_locked(&gc_key).await;
        // A lock left behind would hold writers back until it went stale: when it cannot go
        // now, the collection fails (and is retried), its lock remembered as dead.
        let released = self.release_lock(&gc_key).await;
        result.and_then(|report| released.map(|()| report))
    }

    async fn gc_locked(&self, own: &BlobKey) -> Result<GcReport, RepoError> {
        let mut report = GcReport::default();
        let stale = STALE_LOCK.as_millis() as i64;
        for (k, lock) in self.locks().await? {
            // Dead locks of this process hold nothing back; a dead writer's packs go in the
            // sweep of unindexed packs below.
            if &k == own || self.is_dead_lock(&k) {
                continue;
            }
            // Another live collection: one at a time.
            if lock.kind == "gc" && now_ms() - lock.refreshed < stale && lock.created <= now_ms() {
                report.deferred = true;
                return Ok(report);
            }
            if lock.kind != "writer" {
                continue;
            }
            if now_ms() - lock.refreshed < stale {
                report.deferred = true;
                return Ok(report);
            }
            // A writer that died: its lock goes; the packs it wrote and never indexed go in the
            // sweep of unindexed packs below.
            self.store.delete(&k).await?;
        }

        let mut bloom = Bloom::new(BLOOM_BITS);
        let mut indexed_packs = Bloom::new(PACK_BLOOM_BITS);
        for id in self.snapshots().await? {
            let snap = self.snapshot(&id).await?;
            report.snapshots += 1;
            for (id, _) in snap.entries.iter().flat_map(|e| e.chunks.iter()) {
                bloom.insert(&id.0);
            }
        }

        // A pack the store lost is dropped from the index like a dead one (it cannot be read to
        // be repacked); `verify` names the backups that needed it.
        let stored = self.stored_packs().await?;
        for index_key in self.store.list(&key("index")?).await? {
            let sealed = read_all(self.store.get(&index_key).await?).await?;
            let entries = pack::decode_index(&self.keys, &sealed)?;
            let mut by_pack: HashMap<PackId, Vec<BlobPlace>> = HashMap::new();
            for (pack, place) in entries {
                by_pack.entry(pack).or_default().push(place);
            }
            let mut keep: Vec<(PackId, BlobPlace)> = Vec::new();
            let mut dead_packs = Vec::new();
            let mut repacks = Vec::new();
            for (pack, places) in by_pack {
                let total: u64 = places.iter().map(|p| u64::from(p.length)).sum();
                let live: Vec<BlobPlace> = places.iter().copied().filter(|p| bloom.contains(&p.id.0)).collect();
                let live_bytes: u64 = live.iter().map(|p| u64::from(p.length)).sum();
                if !stored.contains(&pack) {
                    dead_packs.push((pack, 0));
                } else if live.is_empty() {
                    dead_packs.push((pack, total));
                } else if (live_bytes as f64) < REPACK_BELOW * total as f64 {
                    repacks.push((pack, live, total - live_bytes));
                } else {
                    keep.extend(places.into_iter().map(|p| (pack, p)));
                }
            }
            for (pack, _) in &keep {
                indexed_packs.insert(&pack.0);
            }
            if dead_packs.is_empty() && repacks.is_empty() {
                continue;
            }
            // New packs first, then the new index, then the old index and packs go: a crash at
            // any point leaves every live chunk indexed.
            for (pack, live, _) in &repacks {
                let mut builder = PackBuilder::default();
                for run in runs(live) {
                    let start = u64::from(run[0].offset);
                    let last = run[run.len() - 1];
                    let end = u64::from(last.offset) + u64::from(last.length);
                    let bytes = read_all(self.store.get_range(&key(pack.key())?, start..end).await?).await?;
                    for p in run {
                        let from = (u64::from(p.offset) - start) as usize;
                        builder.push(p.id, &bytes[from..from + p.length as usize], p.raw_length);
                    }
                }
                let (bytes, new_id, places) = builder.finish(&self.keys);
                self.store.put(&key(new_id.key())?, one_shot(bytes)).await?;
                indexed_packs.insert(&new_id.0);
                keep.extend(places.into_iter().map(|p| (new_id, p)));
            }
            let new_index = key(format!("index/gc-{}", hex::encode(rand::random::<[u8; 16]>())))?;
            if !keep.is_empty() {
                self.store
                    .put(&new_index, one_shot(pack::encode_index(&self.keys, &keep)))
                    .await?;
            }
            self.store.delete(&index_key).await?;
            for (pack, size) in dead_packs {
                self.store.delete(&key(pack.key())?).await?;
                report.deleted_packs += 1;
                report.freed_bytes += size;
            }
            for (pack, _, freed) in repacks {
                self.store.delete(&key(pack.key())?).await?;
                report.repacked_packs += 1;
                report.freed_bytes += freed;
            }
        }

        // Packs that no index names belong to writers or collections that died before writing
        // their index: no snapshot can use them, and no writer is running (step 2).
        for pack_key in self.store.list(&key("packs")?).await? {
            let Some(pack) = pack_key
                .as_str()
                .rsplit('/')
                .next()
                .and_then(|n| PackId::from_hex(n).ok())
            else {
                continue;
            };
            if !indexed_packs.contains(&pack.0) {
                report.freed_bytes += self.store.size(&pack_key).await?.unwrap_or(0);
                self.store.delete(&pack_key).await?;
                report.deleted_packs += 1;
            }
        }
        Ok(report)
    }
}

/// A packer's zstd compression (level 1): one context and one output buffer for all its
/// chunks. A context made for each chunk cost its set-up, and a fresh output buffer (over the
/// allocator's 1 MiB mapping threshold) a map, page faults and an unmap, twice per chunk.
struct Compression {
    context: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl Compression {
    fn new() -> Result<Self, RepoError> {
        let context =
            zstd::bulk::Compressor::new(1).map_err(|e| RepoError::Refused(format!("zstd could not start: {e}")))?;
        Ok(Self {
            context,
            out: Vec::new(),
        })
    }

    /// `plain` compressed, when that saves at least `1/divisor` of it.
    fn saving(&mut self, plain: &[u8], divisor: usize) -> Option<&[u8]> {
        self.out.clear();
        self.out.reserve(zstd::zstd_safe::compress_bound(plain.len()));
        let n = self.context.compress_to_buffer(plain, &mut self.out).ok()?;
        (n < plain.len() - plain.len() / divisor).then_some(&self.out[..n])
    }

    /// Whether compressing `plain` may pay: small chunks always; larger ones when a 64 KiB
    /// sample from their start compresses by at least 1/16.
    fn looks_compressible(&mut self, plain: &[u8]) -> bool {
        const SAMPLE: usize = 64 * 1024;
        plain.len() <= 2 * SAMPLE || self.saving(&plain[..SAMPLE], 16).is_some()
    }
}

fn secret_is_encrypted(secret: Secret<'_>) -> bool {
    matches!(secret, Secret::Passphrase(_))
}

/// Whether decoding a chunk recomputes its id from its plain bytes.
#[derive(Clone, Copy)]
enum CheckId {
    Yes,
    /// The seal (with the id as associated data) is trusted.
    Sealed,
}

thread_local! {
    /// Each thread's zstd decompression context, made once: a context per chunk costs its
    /// allocation and set-up for every few kilobytes decoded.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Opens (in place, in `sealed`), decompresses and checks a chunk (its id recomputed).
pub fn decode_chunk(keys: &Keys, place: &BlobPlace, sealed: &mut [u8]) -> Result<Vec<u8>, RepoError> {
    let mut out = Vec::new();
    decode_chunk_into(keys, place, sealed, &mut out, CheckId::Yes)?;
    Ok(out)
}

/// Opens (in place, in `sealed`), decompresses and checks a chunk, appending its plain bytes to
/// `out`.
fn decode_chunk_into(
    keys: &Keys,
    place: &BlobPlace,
    sealed: &mut [u8],
    out: &mut Vec<u8>,
    check: CheckId,
) -> Result<(), RepoError> {
    if let Some(plain) = open_chunk(keys, place, sealed, out, check)? {
        out.extend_from_slice(&sealed[plain]);
    }
    Ok(())
}

/// Opens (in place, in `sealed`) and checks a chunk. A chunk stored raw is left where it is:
/// the answer is where its plain bytes lie in `sealed`. A compressed one is decompressed and
/// appended to `out` (the answer is `None`).
fn open_chunk(
    keys: &Keys,
    place: &BlobPlace,
    sealed: &mut [u8],
    out: &mut Vec<u8>,
    check: CheckId,
) -> Result<Option<std::ops::Range<usize>>, RepoError> {
    if place.raw_length > CHUNK_LIMIT {
        return Err(RepoError::Corrupt(format!(
            "chunk {:?} claims {} bytes, more than any chunk has",
            place.id, place.raw_length
        )));
    }
    let blob = keys.open_range(sealed, &chunk_aad(&place.id))?;
    if blob.is_empty() {
        return Err(RepoError::Corrupt(format!("chunk {:?} is empty", place.id)));
    }
    let data = blob.start + 1..blob.end;
    let mismatch = || RepoError::Corrupt(format!("chunk {:?} does not match its id", place.id));
    let id_ok = |plain: &[u8]| match check {
        CheckId::Yes => keys.chunk_id(plain) == place.id,
        CheckId::Sealed => true,
    };
    match sealed[blob.start] {
        0 => {
            if data.len() != place.raw_length as usize || !id_ok(&sealed[data.clone()]) {
                return Err(mismatch());
            }
            Ok(Some(data))
        }
        1 => {
            let start = out.len();
            // Into the spare room after `start`: a frame that claims more than the chunk's
            // length fails for lack of room instead of growing the buffer.
            out.reserve(place.raw_length as usize);
            let mut room = io::Cursor::new(&mut *out);
            room.set_position(start as u64);
            DECOMPRESSOR
                .with_borrow_mut(|d| {
                    let d = match d {
                        Some(d) => d,
                        None => d.insert(zstd::bulk::Decompressor::new()?),
                    };
                    d.decompress_to_buffer(&sealed[data], &mut room)
                })
                .map_err(|e| RepoError::Corrupt(format!("chunk {:?} does not decompress: {e}", place.id)))?;
            let plain = &out[start..];
            if plain.len() != place.raw_length as usize || !id_ok(plain) {
                out.truncate(start);
                return Err(mismatch());
            }
            Ok(None)
        }
        c => Err(RepoError::Corrupt(format!(
            "chunk {:?} has unknown codec {c}",
            place.id
        ))),
    }
}

/// The associated data a chunk's blob is sealed with.
pub fn chunk_aad(id: &ChunkId) -> Vec<u8> {
    [b"backspace repository v1 chunk ".as_slice(), &id.0].concat()
}

/// Splits places sorted by offset into runs of adjacent blobs (each at most [`MAX_RUN`]).
fn runs(places: &[BlobPlace]) -> Vec<Vec<BlobPlace>> {
    let mut sorted = places.to_vec();
    sorted.sort_by_key(|p| p.offset);
    let mut out: Vec<Vec<BlobPlace>> = Vec::new();
    for p in sorted {
        match out.last_mut() {
            Some(run)
                if {
                    let last = run[run.len() - 1];
                    u64::from(last.offset) + u64::from(last.length) == u64::from(p.offset)
                        && u64::from(p.offset) + u64::from(p.length) - u64::from(run[0].offset) <= MAX_RUN
                } =>
            {
                run.push(p)
            }
            _ => out.push(vec![p]),
        }
    }
    out
}

/// A fixed-size Bloom filter of ids (chunk or pack ids: keyed or plain BLAKE3 hashes, so their
/// bytes are already uniformly distributed).
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    fn new(bits: u64) -> Self {
        Self {
            bits: vec![0; bits.div_ceil(64) as usize],
        }
    }

    fn positions(&self, id: &[u8; 32]) -> impl Iterator<Item = u64> {
        let a = u64::from_le_bytes(id[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(id[8..16].try_into().expect("8 bytes")) | 1;
        let bits = self.bits.len() as u64 * 64;
        (0..BLOOM_HASHES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % bits)
    }

    fn insert(&mut self, id: &[u8; 32]) {
        for p in self.positions(id).collect::<Vec<_>>() {
            self.bits[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    fn contains(&self, id: &[u8; 32]) -> bool {
        self.positions(id)
            .all(|p| self.bits[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }
}

/// The blocks in which [`SnapshotWriter::add_produced`] hands bytes to the chunker.
const PIPE_BLOCK: usize = 256 << 10;

/// Counts the bytes written to it.
struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing end of the pipe of [`SnapshotWriter::add_produced`].
struct ChannelSink(std::sync::mpsc::SyncSender<Vec<u8>>);

impl io::Write for ChannelSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the snapshot writer stopped reading"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end: blocks in order, then the end when the producer is done.
struct ChannelSource {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    block: Vec<u8>,
    at: usize,
}

impl Read for ChannelSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            match self.rx.recv() {
                Ok(block) => (self.block, self.at) = (block, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Writes one snapshot. Not `Send`-bound I/O: it runs on a blocking thread and drives the store
/// through a runtime handle.
pub struct SnapshotWriter {
    repo: Arc<Repository>,
    handle: Handle,
    /// Chunks in the repository, or already handed to the packer.
    known: HashSet<ChunkId>,
    /// The previous snapshot's entries by source (without name and source), whose chunks are
    /// all still indexed.
    by_source: HashMap<String, SnapshotEntry>,
    entries: Vec<SnapshotEntry>,
    writer_id: String,
    lock_key: BlobKey,
    lock: LockFile,
    last_refresh: Instant,
    stats: WriteStats,
    cancel: Arc<AtomicBool>,
    /// New chunks go to the packer threads, which compress, seal, pack and store them while
    /// this thread reads and cuts the next ones.
    packers: Option<PackerHandles>,
    /// The packer taking chunks now, and the bytes it has taken in its turn.
    route: (usize, u64),
    flusher: Option<Arc<Flusher>>,
    index_written: bool,
    finished: bool,
}

/// A channel to each packer thread, and the threads.
type PackerHandles = (
    Vec<std::sync::mpsc::SyncSender<(ChunkId, Vec<u8>)>>,
    Vec<std::thread::JoinHandle<Packed>>,
);

/// What the packer threads wrote.
#[derive(Default)]
struct Packed {
    /// Every blob of every pack written, with its pack.
    written: Vec<(PackId, BlobPlace)>,
    /// The packs written (or being written).
    names: Vec<PackId>,
    stored: u64,
    packs: u64,
    error: Option<RepoError>,
}

impl Packed {
    fn merge(&mut self, other: Packed) {
        self.written.extend(other.written);
        self.names.extend(other.names);
        self.stored += other.stored;
        self.packs += other.packs;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

/// The packing half of a writer: each packer thread compresses, seals and packs the chunks it
/// takes from the channel and stores its own packs, while the writer's thread reads and cuts
/// the next chunks.
struct Packer {
    repo: Arc<Repository>,
    handle: Handle,
    flusher: Arc<Flusher>,
    pack: PackBuilder,
    packed: Packed,
    compression: Compression,
}

impl Packer {
    fn run(mut self, rx: std::sync::mpsc::Receiver<(ChunkId, Vec<u8>)>) -> Packed {
        for (id, plain) in rx {
            if self.packed.error.is_some() {
                continue;
            }
            if let Err(e) = self.add(id, &plain) {
                self.packed.error = Some(e);
            }
        }
        if self.packed.error.is_none() {
            if let Err(e) = self.flush() {
                self.packed.error = Some(e);
            }
        }
        self.packed
    }

    fn add(&mut self, id: ChunkId, plain: &[u8]) -> Result<(), RepoError> {
        let raw = plain.len() as u32;
        // zstd level 1, kept only when it saves at least 1/32. A chunk whose first 64 KiB do
        // not compress (media, archives, encrypted files) is stored as it is without trying
        // the rest: most bytes of a portal are such files.
        let compressed = if self.compression.looks_compressible(plain) {
            self.compression.saving(plain, 32)
        } else {
            None
        };
        let aad = chunk_aad(&id);
        match compressed {
            Some(c) => self.pack.push_sealed(&self.repo.keys, id, &[&[1], c], &aad, raw),
            None => self.pack.push_sealed(&self.repo.keys, id, &[&[0], plain], &aad, raw),
        }
        if self.pack.len() >= self.repo.config.pack_size as usize {
            self.flush()?;
        }
        Ok(())
    }

    /// Stores the current pack, not yet durably: the writer syncs every pack before it writes
    /// its index, and the flusher syncs in the background meanwhile.
    fn flush(&mut self) -> Result<(), RepoError> {
        if self.pack.is_empty() {
            return Ok(());
        }
        // The builder is taken whole (an empty one costs no allocation) and, on local disks,
        // its buffer comes back for the next pack: one pack buffer per packer, not two.
        let (bytes, id, places) =
            std::mem::replace(&mut self.pack, PackBuilder::recycle(Vec::new())).finish(&self.repo.keys);
        self.packed.names.push(id);
        self.packed.stored += bytes.len() as u64;
        self.packed.packs += 1;
        let k = key(id.key())?;
        let fast = self.repo.store.put_unsynced_blocking(&k, &mut bytes.as_slice());
        match fast {
            Some(result) => {
                result?;
                self.pack = PackBuilder::recycle(bytes);
            }
            None => {
                self.handle
                    .block_on(self.repo.store.put_unsynced(&k, one_shot(bytes)))?;
                self.pack = PackBuilder::with_capacity(self.repo.pack_capacity());
            }
        }
        self.flusher.wrote(self.repo.config.pack_size.into());
        self.packed.written.extend(places.into_iter().map(|p| (id, p)));
        backspace_storage::hold::hold_blocking(backspace_storage::hold::BACKUP_PACK_STORED);
        Ok(())
    }
}

impl SnapshotWriter {
    /// Adds an entry from `reader` (`size` bytes). With a `source` that the previous snapshot
    /// had, the chunks are reused and `reader` is not read (it may then be `None`).
    ///
    /// With `blake3` (64 hex digits, what the caller knows the bytes to be), the bytes read must
    /// hash to it: if they do not, nothing is added and the error is [`RepoError::Mismatch`]
    /// (the chunks already handed to the packers are stored but unreferenced, for a collection).
    pub fn add(
        &mut self,
        name: &str,
        size: u64,
        source: Option<&str>,
        blake3: Option<&str>,
        reader: Option<&mut dyn Read>,
    ) -> Result<(), RepoError> {
        if self.last_refresh.elapsed() > REFRESH {
            self.refresh()?;
        }
        if let Some(prev) = source.and_then(|s| self.by_source.get(s)) {
            if prev.size == size {
                self.stats.reused_chunks += prev.chunks.len() as u64;
                self.stats.bytes += size;
                let entry = SnapshotEntry {
                    name: name.to_owned(),
                    size,
                    source: source.map(str::to_owned),
                    blake3: prev.blake3,
                    chunks: prev.chunks.clone(),
                };
                self.entries.push(entry);
                return Ok(());
            }
        }
        let reader = reader.ok_or_else(|| RepoError::Refused(format!("entry `{name}` has no data")))?;
        let sizes = self.repo.config.chunker.clone();
        let seed = self.repo.keys.chunker_seed;
        let level = fastcdc::v2020::Normalization::Level1;
        let mut chunks = Vec::new();
        let mut total = 0u64;
        let mut hasher = ::blake3::Hasher::new();
        if size <= u64::from(sizes.max) {
            // Small entries (most files) are read whole and cut in memory: the streaming chunker
            // would allocate its full buffer for each of them.
            let mut bytes = Vec::with_capacity(size as usize);
            reader.take(size).read_to_end(&mut bytes).map_err(RepoError::Input)?;
            total = bytes.len() as u64;
            hasher.update(&bytes);
            let cuts: Vec<(usize, usize)> =
                fastcdc::v2020::FastCDC::with_level_and_seed(&bytes, sizes.min, sizes.avg, sizes.max, level, seed)
                    .map(|c| (c.offset, c.length))
                    .collect();
            if cuts.len() == 1 {
                // A file of one chunk moves to the packer without a copy.
                chunks.push(self.add_chunk(std::borrow::Cow::Owned(bytes))?);
            } else {
                for (offset, length) in cuts {
                    chunks.push(self.add_chunk(std::borrow::Cow::Borrowed(&bytes[offset..offset + length]))?);
                }
            }
        } else {
            let chunker = fastcdc::v2020::StreamCDC::with_level_and_seed(
                reader.take(size),
                sizes.min,
                sizes.avg,
                sizes.max,
                level,
                seed,
            );
            for chunk in chunker {
                let chunk = chunk.map_err(|e| match e {
                    fastcdc::v2020::Error::IoError(io) => RepoError::Input(io),
                    other => RepoError::Input(io::Error::other(other.to_string())),
                })?;
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(RepoError::Cancelled);
                }
                total += chunk.data.len() as u64;
                hasher.update(&chunk.data);
                chunks.push(self.add_chunk(std::borrow::Cow::Owned(chunk.data))?);
            }
        }
        if total != size {
            return Err(RepoError::Input(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("entry `{name}` ended after {total} of {size} bytes"),
            )));
        }
        let digest = hasher.finalize();
        if blake3.is_some_and(|expected| blake3::Hash::from_hex(expected).map_or(true, |e| e != digest)) {
            return Err(RepoError::Mismatch(format!(
                "the bytes of entry `{name}` do not match their digest"
            )));
        }
        if size == 0 {
            chunks.clear();
        }
        self.stats.read += size;
        self.stats.bytes += size;
        self.entries.push(SnapshotEntry {
            name: name.to_owned(),
            size,
            source: source.map(str::to_owned),
            blake3: Some(digest),
            chunks,
        });
        Ok(())
    }

    /// Whether an entry of `source` and `size` can be added without its bytes (the previous
    /// snapshot had it).
    pub fn knows(&self, source: &str, size: u64) -> bool {
        self.by_source.get(source).is_some_and(|e| e.size == size)
    }

    /// Adds an entry from memory.
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), RepoError> {
        let mut reader: &[u8] = bytes;
        self.add(name, bytes.len() as u64, None, None, Some(&mut reader))
    }

    /// Adds an entry whose bytes `produce` writes (a serializer), without ever holding them
    /// whole: `produce` runs twice, once to count the bytes and once on a second thread that
    /// feeds the chunker through a bounded channel. It must write the same bytes both times.
    pub fn add_produced(
        &mut self,
        name: &str,
        produce: &(dyn Fn(&mut dyn io::Write) -> io::Result<()> + Sync),
    ) -> Result<(), RepoError> {
        let mut counter = Counter(0);
        produce(&mut counter).map_err(RepoError::Input)?;
        let size = counter.0;
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
            let producer = scope.spawn(move || {
                let mut sink = io::BufWriter::with_capacity(PIPE_BLOCK, ChannelSink(tx));
                produce(&mut sink)?;
                io::Write::flush(&mut sink)
            });
            let mut source = ChannelSource {
                rx,
                block: Vec::new(),
                at: 0,
            };
            let added = self.add(name, size, None, None, Some(&mut source));
            // A producer blocked on the full channel fails once the receiver is gone.
            drop(source);
            let produced = producer
                .join()
                .map_err(|_| RepoError::Refused(format!("producing entry `{name}` panicked")))?;
            produced.map_err(RepoError::Input)?;
            added
        })
    }

    fn add_chunk(&mut self, plain: std::borrow::Cow<'_, [u8]>) -> Result<(ChunkId, u32), RepoError> {
        let id = self.repo.keys.chunk_id(&plain);
        let raw = plain.len() as u32;
        if !self.known.insert(id) {
            self.stats.reused_chunks += 1;
            return Ok((id, raw));
        }
        self.stats.new_chunks += 1;
        // Each packer takes up to a pack's worth of consecutive chunks in turn, so that a pack
        // holds a stretch of the backup (read in few requests, collected together); a packer
        // that is busy hands its turn to the next, so the packers still work side by side.
        let (packer, routed) = &mut self.route;
        let sent = match &self.packers {
            Some((senders, _)) => match senders[*packer].try_send((id, plain.into_owned())) {
                Ok(()) => true,
                Err(std::sync::mpsc::TrySendError::Full(item)) => {
                    *packer = (*packer + 1) % PACKERS;
                    *routed = 0;
                    senders[*packer].send(item).is_ok()
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        *routed += u64::from(raw);
        if *routed >= u64::from(self.repo.config.pack_size) {
            *packer = (*packer + 1) % PACKERS;
            *routed = 0;
        }
        if !sent {
            // The packers stopped: their error says why.
            return Err(self
                .stop_packers()?
                .error
                .unwrap_or_else(|| RepoError::Refused("the packers stopped".into())));
        }
        if self.last_refresh.elapsed() > REFRESH {
            self.refresh()?;
        }
        Ok((id, raw))
    }

    /// Tells collections that this writer is alive.
    fn refresh(&mut self) -> Result<(), RepoError> {
        self.lock.refreshed = now_ms();
        self.handle.block_on(self.repo.put_lock(&self.lock_key, &self.lock))?;
        self.last_refresh = Instant::now();
        Ok(())
    }

    /// Ends the packer threads and returns what they wrote.
    fn stop_packers(&mut self) -> Result<Packed, RepoError> {
        let (senders, threads) = self
            .packers
            .take()
            .ok_or_else(|| RepoError::Refused("the packers are gone".into()))?;
        drop(senders);
        let mut packed = Packed::default();
        let mut panicked = false;
        for thread in threads {
            match thread.join() {
                Ok(p) => packed.merge(p),
                Err(_) => panicked = true,
            }
        }
        if panicked && packed.error.is_none() {
            packed.error = Some(RepoError::Refused("a packer thread panicked".into()));
        }
        Ok(packed)
    }

    /// Writes the remaining packs, makes them durable, writes the index file and the snapshot
    /// `id`, then removes the lock.
    pub fn finish(
        mut self,
        id: &str,
        created: i64,
        meta: serde_json::Value,
    ) -> Result<(Snapshot, WriteStats), RepoError> {
        let mut packed = self.stop_packers()?;
        let result = self.commit(&mut packed, id, created, meta);
        if result.is_err() {
            self.abandon(&packed);
        }
        result
    }

    fn commit(
        &mut self,
        packed: &mut Packed,
        id: &str,
        created: i64,
        meta: serde_json::Value,
    ) -> Result<(Snapshot, WriteStats), RepoError> {
        if let Some(e) = packed.error.take() {
            return Err(e);
        }
        // Every pack is durable before the index names it.
        if let Some(flusher) = self.flusher.take().and_then(|f| Arc::try_unwrap(f).ok()) {
            self.handle.block_on(flusher.finish())?;
        } else {
            self.handle.block_on(self.repo.store.sync())?;
        }
        self.stats.stored = packed.stored;
        self.stats.packs = packed.packs;
        if !packed.written.is_empty() {
            let index = pack::encode_index(&self.repo.keys, &packed.written);
            self.handle.block_on(
                self.repo
                    .store
                    .put(&key(format!("index/{}", self.writer_id))?, one_shot(index)),
            )?;
            self.index_written = true;
        }
        let snap = Snapshot {
            version: VERSION,
            id: id.to_owned(),
            created,
            meta,
            entries: std::mem::take(&mut self.entries),
        };
        // Serialized after room for the nonce and sealed in place: one buffer of the size of
        // the snapshot, however many entries it has.
        let mut sealed = vec![0u8; crypto::SEAL_PREFIX];
        serde_json::to_writer(&mut sealed, &snap).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        self.repo.keys.seal_prefixed(&mut sealed, &Snapshot::aad(id));
        let snapshot_key = key(format!("snapshots/{id}"))?;
        if let Err(e) = self
            .handle
            .block_on(self.repo.store.put(&snapshot_key, one_shot(sealed)))
        {
            // A put that failed may still have stored it (its answer lost): no snapshot may
            // outlive a backup that failed.
            let _ = self.handle.block_on(self.repo.store.delete(&snapshot_key));
            return Err(e.into());
        }
        self.finished = true;
        // The backup is complete. A lock that cannot go now is remembered as dead and goes
        // with the next writer or collection.
        let _ = self.handle.block_on(self.repo.release_lock(&self.lock_key));
        Ok((snap, self.stats))
    }

    /// Removes what an unfinished writer wrote: its packs (unless they are indexed: then the
    /// collection rewrites the index) and its lock.
    fn abandon(&mut self, packed: &Packed) {
        self.finished = true;
        let repo = self.repo.clone();
        let lock_key = self.lock_key.clone();
        let packs = if self.index_written {
            Vec::new()
        } else {
            packed.names.clone()
        };
        let index_key = key(format!("index/{}", self.writer_id));
        let result = self.handle.block_on(async move {
            if !packs.is_empty() {
                // An index put that failed may still have stored it: it goes before the packs it
                // names, or a later writer would take their chunks as stored.
                repo.store.delete(&index_key?).await?;
            }
            for pack in packs {
                repo.store.delete(&key(pack.key())?).await?;
            }
            Ok::<_, RepoError>(())
        });
        let released = self.handle.block_on(self.repo.release_lock(&lock_key));
        if let Err(e) = result.and(released) {
            tracing::warn!(error = %e, "cleaning up an abandoned repository writer failed; the next collection will");
        }
    }

    pub fn stats(&self) -> WriteStats {
        self.stats
    }
}

impl Drop for SnapshotWriter {
    /// An abandoned writer (an error, a cancel) removes its packs and its lock.
    fn drop(&mut self) {
        if !self.finished {
            match self.stop_packers() {
                Ok(packed) => self.abandon(&packed),
                Err(e) => tracing::warn!(error = %e, "an abandoned repository writer's packer failed"),
            }
        }
    }
}

/// Reads an entry's bytes chunk by chunk, checking each.
///
/// Chunks that lie next to each other in one pack are read with one request (a run), and
/// opened one at a time as the caller reads: a chunk stored raw is handed out from the run's
/// buffer where it was decrypted, a compressed one from one chunk's worth of buffer. Each
/// chunk is authenticated by its seal, whose associated data is its id: a changed byte or a
/// blob moved to another id fails. Its id is not recomputed (a second hash of every byte);
/// [`Repository::verify`] does that.
pub struct EntryReader {
    repo: Arc<Repository>,
    handle: Handle,
    index: Arc<Index>,
    chunks: Vec<(ChunkId, u32)>,
    /// The entry's next chunk to open.
    next: usize,
    /// The blobs of the run in `state.raw` (which starts where the first of them does in its
    /// pack); those from `run_at` on are still sealed.
    run: Vec<BlobPlace>,
    run_at: usize,
    /// A decompressed chunk.
    buffer: Vec<u8>,
    /// Where the open chunk's plain bytes are: `state.raw` or `buffer`, and the range there.
    in_raw: bool,
    plain: std::ops::Range<usize>,
    /// How much of the open chunk was read.
    at: usize,
    state: ReadState,
}

/// What a reader keeps between reads: the sealed bytes of a run (opened in place), and the
/// pack open on a local disk.
#[derive(Default)]
struct ReadState {
    raw: Vec<u8>,
    pack: Option<(PackId, std::fs::File)>,
}

impl EntryReader {
    /// Points the reader at another entry of the same snapshot, keeping its buffers and its
    /// open pack: many small entries read with one reader cost no allocations or reopening.
    pub fn reset(&mut self, entry: &SnapshotEntry) -> Result<(), RepoError> {
        self.chunks.clone_from(&entry.chunks);
        self.next = 0;
        self.run.clear();
        self.run_at = 0;
        self.plain = 0..0;
        self.at = 0;
        Ok(())
    }

    /// Opens the entry's next chunk.
    ///
    /// Readers take no lock: a collection may rewrite a pack while this reads (the copy and its
    /// index are written before the old pack goes). When a chunk is missing or its pack fails,
    /// the index is loaded again; if the chunk moved, it is read where it is now.
    fn fill(&mut self) -> io::Result<bool> {
        if self.next >= self.chunks.len() {
            return Ok(false);
        }
        let mut reloads = 0;
        loop {
            let err = match self.open_next() {
                Ok(()) => return Ok(true),
                Err(e) => e,
            };
            // What is left of the run (read in part, or not at all) is read again, from where
            // the index says it is now.
            self.run.clear();
            self.run_at = 0;
            if reloads >= INDEX_RELOADS {
                return Err(err);
            }
            reloads += 1;
            let chunk = self.chunks[self.next].0;
            let place = |index: &Index| index.get(&chunk).map(|(pack, place)| (*pack, place.offset));
            let before = place(&self.index);
            let fresh = self.handle.block_on(self.repo.load_index()).map_err(io::Error::other)?;
            if place(&fresh) == before {
                return Err(err);
            }
            self.index = Arc::new(fresh);
            self.state.pack = None;
        }
    }

    /// [`EntryReader::fill`] with the index as it is: opens the next chunk of the run, reading
    /// the next run first when this one is used up.
    fn open_next(&mut self) -> io::Result<()> {
        if self.run_at >= self.run.len() {
            self.read_run()?;
        }
        let place = self.run[self.run_at];
        if place.raw_length != self.chunks[self.next].1 {
            return Err(io::Error::other("a chunk's length disagrees with the snapshot"));
        }
        let from = (place.offset - self.run[0].offset) as usize;
        let sealed = &mut self.state.raw[from..from + place.length as usize];
        self.buffer.clear();
        match open_chunk(&self.repo.keys, &place, sealed, &mut self.buffer, CheckId::Sealed)
            .map_err(io::Error::other)?
        {
            Some(plain) => {
                self.in_raw = true;
                self.plain = from + plain.start..from + plain.end;
            }
            None => {
                self.in_raw = false;
                self.plain = 0..self.buffer.len();
            }
        }
        self.at = 0;
        self.run_at += 1;
        self.next += 1;
        Ok(())
    }

    /// Reads the sealed blobs of the next run of chunks that lie next to each other in one
    /// pack, from the entry's next chunk on.
    fn read_run(&mut self) -> io::Result<()> {
        let missing = |id: &ChunkId| io::Error::other(format!("chunk {id:?} is missing from the repository"));
        let (first_pack, first) = *self
            .index
            .get(&self.chunks[self.next].0)
            .ok_or_else(|| missing(&self.chunks[self.next].0))?;
        self.run.clear();
        self.run_at = 0;
        self.run.push(first);
        let mut end = u64::from(first.offset) + u64::from(first.length);
        for (id, _) in &self.chunks[self.next + 1..] {
            match self.index.get(id) {
                Some((pack, place))
                    if *pack == first_pack
                        && u64::from(place.offset) == end
                        && end + u64::from(place.length) - u64::from(first.offset) <= MAX_RUN =>
                {
                    end += u64::from(place.length);
                    self.run.push(*place);
                }
                _ => break,
            }
        }
        self.repo
            .read_sealed_run(&self.handle, first_pack, &self.run, &mut self.state)
            .map_err(io::Error::other)
    }

    /// The open chunk's plain bytes.
    fn plain(&self) -> &[u8] {
        let bytes = if self.in_raw { &self.state.raw } else { &self.buffer };
        &bytes[self.plain.clone()]
    }
}

impl io::BufRead for EntryReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at >= self.plain.len() {
            if !self.fill()? {
                return Ok(&[]);
            }
        }
        Ok(&self.plain()[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.plain.len());
    }
}

impl Read for EntryReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = io::BufRead::fill_buf(self)?;
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}
