//! [`BlobStore`] on an object store through OpenDAL: S3 and S3-compatible servers, Google Cloud
//! Storage, and OpenStack Swift (Rackspace Cloud Files).

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
    /// `https://BUCKET.host/` addressing instead of `https://host/BUCKET/` (AWS's default).
    pub virtual_host_style: bool,
    /// Server-side encryption: `AES256` (keys managed by S3) or `aws:kms`.
    pub server_side_encryption: Option<String>,
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
        let builder = if config.virtual_host_style {
            builder.enable_virtual_host_style()
        } else {
            builder
        };
        let builder = match config.server_side_encryption.as_deref() {
            Some("aws:kms") => builder.server_side_encryption_with_aws_managed_kms_key(),
            Some(_) => builder.server_side_encryption_with_s3_key(),
            None => builder,
        };
        Self::with(builder, format!("s3://{}", config.bucket))
    }

    /// A Google Cloud Storage bucket; `credential_json` is a service account key file's content.
    pub fn gcs(bucket: &str, credential_json: &str, root: &str) -> Result<Self, StorageError> {
        use base64::Engine as _;
        let credential = base64::engine::general_purpose::STANDARD.encode(credential_json.as_bytes());
        let builder = opendal::services::Gcs::default()
            .bucket(bucket)
            .credential(&credential)
            .root(&format!("/{}", root.trim_matches('/')))
            .disable_config_load()
            .disable_vm_metadata();
        Self::with(builder, format!("gs://{bucket}"))
    }

    /// An OpenStack Swift container at `endpoint` (the account's storage URL), with a token.
    pub fn swift(endpoint: &str, container: &str, token: &str, root: &str) -> Result<Self, StorageError> {
        let builder = opendal::services::Swift::default()
            .endpoint(endpoint)
            .container(container)
            .token(token)
            .root(&format!("/{}", root.trim_matches('/')));
        Self::with(builder, format!("swift://{container}"))
    }

    /// A Rackspace Cloud Files container: signs in to Rackspace's identity service with the
    /// user name and API key, then talks Swift to the region's storage URL with the token.
    pub async fn rackspace(
        identity_url: &str,
        username: &str,
        api_key: &str,
        region: &str,
        container: &str,
        root: &str,
    ) -> Result<Self, StorageError> {
        let name = format!("rackspace://{container}");
        let fail = |why: String| StorageError::Io {
            key: name.clone(),
            source: io::Error::other(format!("signing in to Rackspace for {name} failed: {why}")),
        };
        let body = serde_json::json!({
            "auth": {"RAX-KSKEY:apiKeyCredentials": {"username": username, "apiKey": api_key}}
        });
        let resp = reqwest::Client::new()
            .post(identity_url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the identity service answered {}", resp.status())));
        }
        let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let token = doc["access"]["token"]["id"]
            .as_str()
            .ok_or_else(|| fail("no token in the answer".into()))?;
        let endpoint = doc["access"]["serviceCatalog"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == "cloudFiles")
            .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
            .find(|e| region.is_empty() || e["region"].as_str().is_some_and(|r| r.eq_ignore_ascii_case(region)))
            .and_then(|e| e["publicURL"].as_str())
            .ok_or_else(|| fail(format!("no Cloud Files endpoint in region `{region}`")))?;
        let store = Self::swift(endpoint, container, token, root)?;
        Ok(Self { name, ..store })
    }

    fn with(builder: impl opendal::Builder, name: String) -> Result<Self, StorageError> {
        let op = Operator::new(builder)
            .map_err(|e| StorageError::Io {
                key: name.clone(),
                source: io::Error::other(format!("{name} cannot be configured: {e}")),
            })?
            .layer(
                opendal::layers::RetryLayer::new()
                    .with_max_times(4)
                    .with_jitter()
                    .with_min_delay(std::time::Duration::from_millis(200))
                    .with_max_delay(std::time::Duration::from_secs(5)),
            );
        Ok(Self { op, name })
    }

    /// What the store is, for messages: `s3://bucket`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL anyone can GET the object with until `ttl` has passed, when the service can
    /// presign (S3 and GCS can).
    pub async fn presign_get(&self, key: &BlobKey, ttl: std::time::Duration) -> Result<Option<String>, StorageError> {
        if !self.op.info().capability().presign_read {
            return Ok(None);
        }
        let req = self
            .op
            .presign_read(key.as_str(), ttl)
            .await
            .map_err(|e| io_err(key.as_str(), e))?;
        Ok(Some(req.uri().to_string()))
    }

    /// Checks that the bucket exists and the keys are accepted, by listing at most one object
    /// (at startup, and before an archive is written, so a wrong key or bucket fails loudly).
    pub async fn check(&self) -> Result<(), StorageError> {
        use futures_util::TryStreamExt as _;
        let fail = |e: opendal::Error| StorageError::Io {
            key: self.name.clone(),
            source: io::Error::other(format!("{} cannot be listed: {e}", self.name)),
        };
        let mut lister = self.op.lister("/").await.map_err(fail)?;
        lister.try_next().await.map_err(fail)?;
        Ok(())
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
