//! Signed download links for `DataStore` backups: `/api/2.0/backup/download/{id}?expires=&signature=`.
//! The signature is keyed BLAKE3 over the id and the expiry, with a server key kept in the
//! database (so every instance signs alike and links survive restarts).

use crate::{Core, Error, Result};
use backspace_storage::ByteStream;
use backspace_types::datetime::now_ms;
use backspace_types::TaskId;
use rand::RngCore;

const KEY_SETTING: &str = "link_signing_key";

/// How long the links in a history listing stay valid.
pub const HISTORY_LINK_TTL_MS: i64 = 60 * 60 * 1000;

impl Core {
    async fn signing_key(&self) -> Result<[u8; 32]> {
        let stored = match self.store.setting(KEY_SETTING).await? {
            Some(v) => v,
            None => {
                let mut fresh = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut fresh);
                // Several instances may race: the first value written wins for all.
                self.store.init_setting(KEY_SETTING, &hex::encode(fresh)).await?
            }
        };
        let bytes =
            hex::decode(stored.trim()).map_err(|_| Error::Internal("the link signing key is corrupt".into()))?;
        bytes
            .try_into()
            .map_err(|_| Error::Internal("the link signing key has the wrong length".into()))
    }

    fn sign(key: &[u8; 32], id: TaskId, expires: i64) -> String {
        blake3::keyed_hash(key, format!("backup-download\n{id}\n{expires}").as_bytes())
            .to_hex()
            .to_string()
    }

    /// The relative signed URL of `id`, valid until `expires_ms`.
    fn signed_path(key: &[u8; 32], id: TaskId, expires_ms: i64) -> String {
        let expires = expires_ms / 1000;
        format!(
            "/api/2.0/backup/download/{id}?expires={expires}&signature={}",
            Self::sign(key, id, expires)
        )
    }

    /// A relative signed URL, valid until `expires_ms`.
    pub(crate) async fn download_link(&self, id: TaskId, expires_ms: i64) -> Result<String> {
        Ok(Self::signed_path(&self.signing_key().await?, id, expires_ms))
    }

    /// Signed links for history records, valid for [`HISTORY_LINK_TTL_MS`] (or until the record
    /// expires, when sooner): backspace's extension, so that the page and the command line can
    /// download any backup they list.
    pub async fn history_links(&self, records: &[backspace_meta::BackupRecord]) -> Result<Vec<String>> {
        let key = self.signing_key().await?;
        let now = now_ms();
        Ok(records
            .iter()
            .map(|r| {
                let until = r
                    .expires_at
                    .map_or(now + HISTORY_LINK_TTL_MS, |e| e.min(now + HISTORY_LINK_TTL_MS));
                Self::signed_path(&key, r.id, until)
            })
            .collect())
    }

    /// Serves a signed link: checks signature and expiry, then streams the archive. Returns the
    /// file name and size for the response headers.
    pub async fn signed_download(
        &self,
        id: TaskId,
        expires: i64,
        signature: &str,
    ) -> Result<(String, Option<u64>, ByteStream)> {
        let key = self.signing_key().await?;
        let expected = Self::sign(&key, id, expires);
        if !crate::token::same(&expected, signature) {
            return Err(Error::denied("the download link's signature is wrong"));
        }
        if expires * 1000 < now_ms() {
            return Err(Error::InvalidOperation("The download link has expired".to_owned()));
        }
        let job = self.store.job_by_id(id).await?;
        let portal = job.map(|j| j.portal_id);
        let record = match portal {
            Some(p) => self.store.record(p, id).await?,
            None => self.record_by_id(id).await?,
        };
        let record = record
            .filter(|r| !r.removed)
            .ok_or_else(|| Error::NotFound(format!("backup `{id}` not found")))?;
        let stored = super::target::Stored::of(&record);
        // An archive built from a repository has no size until it is built.
        let size = (!stored.is_repository()).then(|| record.size.max(0) as u64);
        let data = self.open_archive(stored).await?;
        Ok((record.file_name, size, data))
    }
}
