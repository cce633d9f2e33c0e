//! The backup repository: incremental-forever, deduplicated and encrypted backups on any
//! [`BlobStore`] (a local directory, a bucket prefix, a WebDAV folder).
//!
//! # Format, version 1
//!
//! A repository is a set of objects under one prefix. Every object but `config` and the locks is
//! *sealed*: `nonce(24) ‖ XChaCha20-Poly1305(ciphertext ‖ tag(16))` under the repository's seal
//! key, with associated data that names what the blob is, so a blob cannot be moved to another
//! role or chunk id. An unencrypted repository (only when the configuration asks for one) seals
//! as `plain ‖ keyed-BLAKE3(len(aad) ‖ aad ‖ plain)[..16]`: still authenticated, not secret.
//!
//! | Object | Content |
//! |---|---|
//! | `config` | JSON, plain: `format`, `version` (1), `id`, `encryption` (`xchacha20poly1305` or `none`), `chunker` sizes, `packSize`, `keySlots` (or `plainKey` when unencrypted) |
//! | `packs/{h2}/{packId}` | sealed chunk blobs, then the sealed pack header, `u32le` header length, `BSPACK01`; `packId` = BLAKE3 of the whole pack |
//! | `index/{writerId}` | sealed: `u32le n ‖ n × (chunk id[32] ‖ pack id[32] ‖ u32le offset ‖ u32le length ‖ u32le raw length)` |
//! | `snapshots/{id}` | sealed JSON: `version`, `id`, `created` (Unix ms), `meta`, `entries[]` of `{name, size, source?, blake3?, chunks: [[chunk id hex, raw length]]}` (`blake3`: of the entry's bytes, hashed by the writer as it cut them) |
//! | `locks/{uuid}.writer`, `locks/{uuid}.gc` | JSON, plain: `kind`, `created`, `refreshed` (Unix ms) of a running writer or garbage collection |
//!
//! **Keys.** A random 32-byte master secret; from it, by BLAKE3 key derivation, the seal key, the
//! chunk-id key and the chunker's seed. Each key slot is the master secret sealed with
//! XChaCha20-Poly1305 under a key derived from a passphrase with argon2id (19 MiB, 2 passes, a
//! random 16-byte salt). Any slot's passphrase opens the repository, on any machine.
//!
//! **Chunks.** Entries are cut by FastCDC (2020, normalisation 1; 256 KiB / 1 MiB / 4 MiB) whose
//! gear table is XORed with the key-derived seed, so chunk boundaries (and sizes) reveal nothing
//! of the content without the key. A chunk's id is BLAKE3 keyed with the chunk-id key over its
//! plain bytes. Its blob is `codec(1) ‖ data`, codec 0 raw, 1 zstd (kept only when smaller),
//! sealed with associated data `"chunk" ‖ id`. Pack headers list `(id, offset, length, raw
//! length)` per blob, sealed with their own associated data.
//!
//! **Invariants and write order.** A writer (1) creates its lock, (2) waits while a garbage
//! collection is deleting, (3) loads the index, (4) writes packs (on a local disk without a sync
//! each; a background flusher syncs as they accumulate), (5) makes every pack durable, (6) writes
//! its index file `index/{writerId}`, (7) writes the snapshot, (8) removes its lock; it refreshes
//! the lock at least every minute meanwhile. So a snapshot only ever references chunks of packs
//! that are durable and indexed, and a crash leaves only packs no index names (and a lock that
//! goes stale), which the next collection removes. The index can be rebuilt from the packs alone
//! ([`Repository::rebuild_index`]): every pack carries its header.
//!
//! **Garbage collection** ([`Repository::gc`]) is documented with its safety argument on that
//! function. Its memory is bounded: a fixed-size Bloom filter of referenced chunks and one index
//! file at a time.

mod crypto;
mod pack;
mod repo;

pub use crypto::{ChunkId, KeySlot, Keys};
pub use pack::{BlobPlace, PackId};
pub use repo::{
    EntryReader, GcReport, Index, Repository, Secret, Snapshot, SnapshotEntry, SnapshotWriter, Verification, WriteStats,
};

/// The decoders of stored bytes, callable without a store, for the fuzz targets (`fuzz/`); not
/// an API.
#[doc(hidden)]
pub mod decoders {
    pub use crate::pack::{decode_header, decode_index, encode_index, header_length, HEADER_AAD, INDEX_AAD, TRAILER};
    pub use crate::repo::{chunk_aad, decode_chunk, decode_snapshot, open_config};
}

use backspace_storage::StorageError;

/// Errors of a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Stored bytes fail a check: a changed byte, a wrong length, an unknown layout.
    #[error("the repository is damaged: {0}")]
    Corrupt(String),
    #[error("no key slot of the repository opens with this passphrase")]
    WrongPassphrase,
    #[error("{0}")]
    Refused(String),
    #[error("snapshot `{0}` is not in the repository")]
    NoSnapshot(String),
    #[error("the backup was cancelled")]
    Cancelled,
    /// The input of an entry failed.
    #[error("reading the data failed: {0}")]
    Input(std::io::Error),
    /// An entry's bytes are not what the caller said they were.
    #[error("{0}")]
    Mismatch(String),
}
