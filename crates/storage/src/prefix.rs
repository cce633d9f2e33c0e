//! [`PrefixStore`]: a store seen through a key prefix (a repository inside a bucket or the
//! server's own store).

use crate::{BlobKey, BlobStore, ByteStream, StorageError};
use std::ops::Range;
use std::sync::Arc;

/// Every key of the inner store under `prefix/`.
#[derive(Clone)]
pub struct PrefixStore {
    inner: Arc<dyn BlobStore>,
    prefix: String,
}

impl std::fmt::Debug for PrefixStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl PrefixStore {
    pub fn new(inner: Arc<dyn BlobStore>, prefix: &str) -> Result<Self, StorageError> {
        let prefix = prefix.trim_matches('/').to_owned();
        BlobKey::new(prefix.clone()).map_err(|e| StorageError::Io {
            key: prefix.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Self { inner, prefix })
    }

    fn full(&self, key: &BlobKey) -> Result<BlobKey, StorageError> {
        BlobKey::new(format!("{}/{}", self.prefix, key.as_str())).map_err(|e| StorageError::Io {
            key: key.to_string(),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

#[async_trait::async_trait]
impl BlobStore for PrefixStore {
    async fn put(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.inner.put(&self.full(key)?, data).await
    }

    async fn put_unsynced(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.inner.put_unsynced(&self.full(key)?, data).await
    }

    async fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync().await
    }

    fn open_blocking(&self, key: &BlobKey) -> Option<Result<std::fs::File, StorageError>> {
        match self.full(key) {
            Ok(full) => self.inner.open_blocking(&full),
            Err(e) => Some(Err(e)),
        }
    }

    fn put_unsynced_blocking(
        &self,
        key: &BlobKey,
        data: &mut dyn std::io::BufRead,
    ) -> Option<Result<u64, StorageError>> {
        match self.full(key) {
            Ok(full) => self.inner.put_unsynced_blocking(&full, data),
            Err(e) => Some(Err(e)),
        }
    }

    fn create_unsynced_blocking(
        &self,
        key: &BlobKey,
        data: &mut dyn std::io::BufRead,
    ) -> Option<Result<u64, StorageError>> {
        match self.full(key) {
            Ok(full) => self.inner.create_unsynced_blocking(&full, data),
            Err(e) => Some(Err(e)),
        }
    }

    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError> {
        self.inner.get(&self.full(key)?).await
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError> {
        self.inner.get_range(&self.full(key)?, range).await
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        self.inner.size(&self.full(key)?).await
    }

    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError> {
        let strip = format!("{}/", self.prefix);
        Ok(self
            .inner
            .list(&self.full(prefix)?)
            .await?
            .into_iter()
            .filter_map(|k| {
                k.as_str()
                    .strip_prefix(&strip)
                    .and_then(|k| BlobKey::new(k.to_owned()).ok())
            })
            .collect())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.inner.delete(&self.full(key)?).await
    }
}
