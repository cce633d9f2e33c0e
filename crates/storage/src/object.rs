//! [`BlobStore`] on an S3-compatible object store, through OpenDAL.

use crate::{BlobKey, BlobStore, ByteStream, StorageError};
use futures_util::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};
use std::io;
use std::ops::Range;

/// Writes go up in parts of this size (S3's minimum part is 5 MiB): memory per upload stays
/// at about one part.
const PART_SIZE: usize = 8 << 20;

/// Where an S3 store is and how to sign for it.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Objects live under this prefix of the bucket.
    pub root: String,
}

/// Blobs as objects of a bucket.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    op: Operator,
    name: String,
}

fn io_err(key: &str, e: opendal::Error) -> StorageError {
    if e.kind() == ErrorKind::NotFound {
        StorageError::NotFound(key.to_owned())
    } else {
        StorageError::Io {
            key: key.to_owned(),
            source: io::Error::other(e.to_string()),
        }
    }
}

impl ObjectStore {
    pub fn s3(config: &S3Config) -> Result<Self, StorageError> {
        let builder = opendal::services::S3::default()
            .bucket(&config.bucket)
            .endpoint(&config.endpoint)
            .region(&config.region)
            .access_key_id(&config.access_key)
            .secret_access_key(&config.secret_key)
            .root(&format!("/{}", config.root.trim_matches('/')))
            .disable_config_load()
            .disable_ec2_metadata();
        let op = Operator::new(builder)
            .map_err(|e| io_err("s3", e))?
            .layer(opendal::layers::RetryLayer::new().with_max_times(4));
        Ok(Self {
            op,
            name: format!("s3://{}", config.bucket),
        })
    }

    /// Checks that the bucket answers (at startup, so a wrong URL or key fails loudly).
    pub async fn check(&self) -> Result<(), StorageError> {
        self.op.list("/").await.map(|_| ()).map_err(|e| StorageError::Io {
            key: self.name.clone(),
            source: io::Error::other(format!("{} cannot be listed: {e}", self.name)),
        })
    }
}

#[async_trait::async_trait]
impl BlobStore for ObjectStore {
    async fn put(&self, key: &BlobKey, mut data: ByteStream) -> Result<u64, StorageError> {
        // A multipart upload is visible only once closed; an error aborts it, so nothing
        // partial remains.
        let mut writer = self
            .op
            .writer_with(key.as_str())
            .chunk(PART_SIZE)
            .await
            .map_err(|e| io_err(key.as_str(), e))?;
        let mut written = 0u64;
        let result = async {
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|source| StorageError::Input {
                    key: key.to_string(),
                    source,
                })?;
                written += chunk.len() as u64;
                writer.write(chunk).await.map_err(|e| io_err(key.as_str(), e))?;
            }
            Ok::<_, StorageError>(())
        }
        .await;
        match result {
            Ok(()) => {
                writer.close().await.map_err(|e| io_err(key.as_str(), e))?;
                Ok(written)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError> {
        let size = self
            .size(key)
            .await?
            .ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        self.get_range(key, 0..size).await
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let reader = self
            .op
            .reader(key.as_str())
            .await
            .map_err(|e| io_err(key.as_str(), e))?;
        let stream = reader
            .into_bytes_stream(range)
            .await
            .map_err(|e| io_err(key.as_str(), e))?;
        Ok(Box::pin(stream.map_err(|e| io::Error::other(e.to_string()))))
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        match self.op.stat(key.as_str()).await {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key.as_str(), e)),
        }
    }

    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError> {
        let entries = self
            .op
            .list_with(&format!("{}/", prefix.as_str()))
            .recursive(true)
            .await
            .map_err(|e| io_err(prefix.as_str(), e))?;
        let mut keys: Vec<BlobKey> = entries
            .into_iter()
            .filter(|e| !e.path().ends_with('/'))
            .filter_map(|e| BlobKey::new(e.path().trim_start_matches('/').to_owned()).ok())
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        match self.op.delete(key.as_str()).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(key.as_str(), e)),
        }
    }
}
