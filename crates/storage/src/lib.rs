//! Blob storage behind one small async trait, [`BlobStore`], keyed by relative paths.
//!
//! This crate owns where bytes live. It knows nothing of portals, rows or HTTP. Local disk is
//! [`LocalStore`]; object stores (S3, GCS, Swift) are [`ObjectStore`] through OpenDAL; a WebDAV
//! folder is [`WebDavStore`]. Retries live in the remote stores; encryption or metrics would be
//! decorators of the trait; [`faulty`] is one, for tests (faults injected on chosen calls).
//!
//! The contract every implementation keeps: a `put` is atomic. Until it returns `Ok` nothing is
//! visible under the key; after it returns, the whole object is durable. A failed or cancelled
//! `put` leaves nothing behind (a local temporary file is removed; a multipart upload is
//! aborted). This is what lets the metadata store write a row that points at a blob only after
//! the blob exists.

pub mod faulty;
mod flush;
pub mod hold;
mod key;
mod local;
mod object;
mod prefix;
mod webdav;

pub use flush::Flusher;
pub use key::{BlobKey, InvalidKey};
pub use local::LocalStore;
pub use object::{ObjectStore, S3Config};
pub use prefix::PrefixStore;
pub use webdav::WebDavStore;

use bytes::Bytes;
use futures_util::Stream;
use std::io;
use std::ops::Range;
use std::pin::Pin;

/// A stream of bytes in, or out of, a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Errors of a [`BlobStore`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob `{0}` not found")]
    NotFound(String),
    /// The input stream failed; its error is passed through (a size limit, a client that went
    /// away). Nothing was stored.
    #[error("reading the data for blob `{key}` failed: {source}")]
    Input { key: String, source: io::Error },
    #[error("storage i/o on `{key}` failed: {source}")]
    Io { key: String, source: io::Error },
}

/// One small async trait for blobs.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `data` under `key`, replacing what was there, atomically and durably. Returns the
    /// number of bytes stored.
    async fn put(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError>;

    /// Streams the whole blob.
    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError>;

    /// Streams `range` of the blob (clamped to its end).
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError>;

    /// The blob's size, or `None` when it does not exist.
    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError>;

    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError>;

    /// Deletes the blob. Deleting a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError>;

    /// Like [`BlobStore::put`], atomic, but not yet durable: it becomes durable at the next
    /// [`BlobStore::sync`]. For many small puts that must all be durable before one commit
    /// (a restore's staged files): one sync instead of one per blob.
    async fn put_unsynced(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.put(key, data).await
    }

    /// Makes every earlier [`BlobStore::put_unsynced`] durable.
    async fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// For a store on a local file system: opens the blob for blocking reads, from a blocking
    /// thread (plain `std::fs` calls instead of one trip to a blocking thread per read).
    /// `None` when the store has no such fast path: use [`BlobStore::get`].
    fn open_blocking(&self, _key: &BlobKey) -> Option<Result<std::fs::File, StorageError>> {
        None
    }

    /// For a store on a local file system: [`BlobStore::put_unsynced`] from a blocking thread,
    /// reading `data` to its end. `None`, with `data` untouched, when the store has no such fast
    /// path.
    fn put_unsynced_blocking(&self, _key: &BlobKey, _data: &mut dyn io::BufRead) -> Option<Result<u64, StorageError>> {
        None
    }

    /// [`BlobStore::put_unsynced_blocking`] for a key that no one uses or refers to yet (a fresh,
    /// random one), where a store may skip what makes a put atomic. A failure or a crash may
    /// leave part of the bytes under the key: the caller deletes it after a failure, and finds
    /// it unreferenced after a crash. A blob already under the key makes it fail on stores that
    /// can tell. `None`, with `data` untouched, when the store has no blocking writes.
    fn create_unsynced_blocking(&self, key: &BlobKey, data: &mut dyn io::BufRead) -> Option<Result<u64, StorageError>> {
        self.put_unsynced_blocking(key, data)
    }

    /// Deletes every blob under `prefix`.
    async fn delete_prefix(&self, prefix: &BlobKey) -> Result<(), StorageError> {
        for key in self.list(prefix).await? {
            self.delete(&key).await?;
        }
        Ok(())
    }
}

/// The first `limit` bytes of a stream.
pub(crate) fn take_bytes(stream: ByteStream, limit: u64) -> impl Stream<Item = io::Result<Bytes>> + Send {
    use futures_util::StreamExt;
    futures_util::stream::unfold((stream, limit), |(mut stream, left)| async move {
        if left == 0 {
            return None;
        }
        match stream.next().await? {
            Ok(mut chunk) => {
                if chunk.len() as u64 > left {
                    chunk.truncate(left as usize);
                }
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (stream, left)))
            }
            Err(e) => Some((Err(e), (stream, 0))),
        }
    })
}
