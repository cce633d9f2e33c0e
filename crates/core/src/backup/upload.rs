//! `/backupFileUpload.ashx`: a backup file uploaded in chunks for a restore, as the DocSpace web
//! UI does for local restores. Chunks are blobs under `uploads/{portal}/` (so any instance can
//! take the next chunk); `startrestore` with `backupId: ""` and `storageType: Local` restores the
//! completed upload.

use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_storage::{BlobKey, ByteStream};
use backspace_types::PortalId;
use futures_util::StreamExt;

/// The chunk size the server asks for.
pub const CHUNK_SIZE: u64 = 10 << 20;

fn key(portal: PortalId, name: &str) -> Result<BlobKey> {
    BlobKey::new(format!("uploads/{portal}/{name}")).map_err(|e| Error::Internal(e.to_string()))
}

fn prefix(portal: PortalId) -> Result<BlobKey> {
    BlobKey::new(format!("uploads/{portal}")).map_err(|e| Error::Internal(e.to_string()))
}

/// Where an upload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadState {
    pub received: u64,
    pub total: u64,
    pub extension: String,
}

impl Core {
    async fn upload_state(&self, portal: PortalId) -> Result<Option<(UploadState, Vec<BlobKey>)>> {
        let meta_key = key(portal, "meta")?;
        if self.blobs.size(&meta_key).await?.is_none() {
            return Ok(None);
        }
        let mut meta = Vec::new();
        let mut stream = self.blobs.get(&meta_key).await?;
        while let Some(chunk) = stream.next().await {
            meta.extend_from_slice(&chunk.map_err(|e| Error::Internal(e.to_string()))?);
        }
        let text = String::from_utf8_lossy(&meta).into_owned();
        let (total, extension) = text.split_once(' ').unwrap_or(("0", "tar.zst"));
        let mut chunks: Vec<BlobKey> = self
            .blobs
            .list(&prefix(portal)?)
            .await?
            .into_iter()
            .filter(|k| k.as_str().contains("/chunk-"))
            .collect();
        chunks.sort();
        let mut received = 0;
        for c in &chunks {
            received += self.blobs.size(c).await?.unwrap_or(0);
        }
        let state = UploadState {
            received,
            total: total.parse().unwrap_or(0),
            extension: extension.to_owned(),
        };
        Ok(Some((state, chunks)))
    }

    /// Starts an upload of `total` bytes (dropping any earlier one).
    pub async fn start_restore_upload(&self, caller: &Caller, total: u64, extension: &str) -> Result<UploadState> {
        let extension = extension.trim().trim_start_matches('.').to_ascii_lowercase();
        if !matches!(extension.as_str(), "tar" | "tar.gz" | "tar.zst") {
            return Err(Error::BadRequest(format!(
                "extension `{extension}` is not a backup archive: use tar.gz or tar.zst"
            )));
        }
        if total == 0 || total > self.settings.max_upload_bytes {
            return Err(Error::BadRequest(format!(
                "totalSize must be between 1 and {} bytes, not {total}",
                self.settings.max_upload_bytes
            )));
        }
        let portal = caller.portal.id;
        self.blobs.delete_prefix(&prefix(portal)?).await?;
        let meta: ByteStream = Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from(format!(
            "{total} {extension}"
        )))]));
        self.blobs.put(&key(portal, "meta")?, meta).await?;
        Ok(UploadState {
            received: 0,
            total,
            extension,
        })
    }

    /// Appends the next chunk; a chunk that would pass the announced size drops the upload.
    pub async fn add_restore_chunk(&self, caller: &Caller, data: ByteStream) -> Result<UploadState> {
        let portal = caller.portal.id;
        let (state, chunks) = self
            .upload_state(portal)
            .await?
            .ok_or_else(|| Error::BadRequest("no upload was started: send ?Init=true&totalSize=N first".to_owned()))?;
        let room = state.total.saturating_sub(state.received);
        let chunk_key = key(portal, &format!("chunk-{:08}", chunks.len()))?;
        let limited: ByteStream = Box::pin(data.scan(0u64, move |seen, item| {
            let item = item.and_then(|b| {
                *seen += b.len() as u64;
                if *seen > room {
                    Err(std::io::Error::other(
                        "the upload is larger than its announced totalSize",
                    ))
                } else {
                    Ok(b)
                }
            });
            futures_util::future::ready(Some(item))
        }));
        if let Err(e) = self.blobs.put(&chunk_key, limited).await {
            self.blobs.delete_prefix(&prefix(portal)?).await?;
            return Err(Error::BadRequest(format!(
                "the chunk was refused and the upload dropped: {e}"
            )));
        }
        let (state, _) = self
            .upload_state(portal)
            .await?
            .ok_or_else(|| Error::Internal("the upload vanished".into()))?;
        Ok(state)
    }

    /// The file name of a complete upload of the portal, if there is one.
    pub(crate) async fn completed_upload(&self, portal: PortalId) -> Result<Option<String>> {
        Ok(self
            .upload_state(portal)
            .await?
            .filter(|(s, _)| s.total > 0 && s.received == s.total)
            .map(|(s, _)| format!("upload.{}", s.extension)))
    }

    /// The complete upload as one stream: its chunks in order.
    pub(crate) async fn open_upload(&self, portal: PortalId) -> Result<ByteStream> {
        let (_, chunks) = self
            .upload_state(portal)
            .await?
            .ok_or_else(|| Error::NotFound("no uploaded backup".into()))?;
        let mut streams = Vec::with_capacity(chunks.len());
        for c in &chunks {
            streams.push(self.blobs.get(c).await?);
        }
        Ok(Box::pin(futures_util::stream::iter(streams).flatten()))
    }
}
