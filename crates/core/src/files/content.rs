//! File bytes: upload (streamed, size-limited, hashed), download, info and delete.

use super::folders::clean_title;
use super::{FileOperation, Located};
use crate::caller::Caller;
use crate::portal::portal_prefix;
use crate::{Core, Error, Result};
use backspace_meta::{File, NewFile};
use backspace_storage::{BlobKey, ByteStream, StorageError};
use backspace_types::datetime::now_ms;
use backspace_types::{FileId, FolderId, FolderType};
use futures_util::StreamExt;
use std::io;
use std::sync::{Arc, Mutex};

/// An upload: a title and the bytes, streamed.
pub struct Upload {
    pub title: String,
    pub data: ByteStream,
    /// `true`: a same-titled file gets a new name `name (1).ext`; `false`: a new version.
    pub create_new_if_exist: bool,
    /// The size limit: the server's upload limit for people's uploads; none for the archives
    /// the backup service writes into a folder (a portal may be larger than any one upload).
    pub unlimited: bool,
}

/// The marker error a size-limited stream fails with.
#[derive(Debug, thiserror::Error)]
#[error("the upload is larger than the limit of {0} bytes")]
struct TooLarge(u64);

fn file_not_found() -> Error {
    Error::NotFound("The required file was not found".to_owned())
}

/// `name.ext` → `name (n).ext`.
fn numbered(title: &str, n: u32) -> String {
    match title.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &title[..dot], &title[dot..]),
        _ => format!("{title} ({n})"),
    }
}

/// How long the bytes of an upload are safe from the cleaner before their row exists: longer
/// than any upload runs.
const PENDING_UPLOAD_MS: i64 = 24 * 60 * 60 * 1000;

impl Core {
    /// Uploads into a folder: stores the bytes first, then the row. The bytes stream through;
    /// memory does not grow with the file.
    pub async fn upload(&self, caller: &Caller, folder: FolderId, up: Upload) -> Result<Located<File>> {
        let (path, r) = self.locate_folder(caller, folder).await?;
        if !r.create {
            return Err(Error::denied(format!("no right to create in folder `{folder}`")));
        }
        let title = clean_title(&up.title, 165);
        if title.is_empty() {
            return Err(Error::validation("Title", "The Title field is required."));
        }
        let key = portal_prefix(caller.portal.id)
            .join(&format!("files/{}", uuid::Uuid::new_v4().simple()))
            .map_err(|e| Error::Internal(e.to_string()))?;

        let limit = if up.unlimited {
            u64::MAX
        } else {
            self.settings.max_upload_bytes
        };
        // Recorded before the bytes go in: a stop before the row leaves them to the cleaner
        // once the upload could no longer be running; the row's commit forgets the record.
        let now = now_ms();
        self.store
            .add_pending_blob(caller.portal.id, key.as_str(), now, now + PENDING_UPLOAD_MS)
            .await?;
        let hasher = Arc::new(Mutex::new(blake3::Hasher::new()));
        let seen = Arc::new(Mutex::new(0u64));
        let (h, n) = (hasher.clone(), seen.clone());
        let data: ByteStream = Box::pin(up.data.map(move |chunk| {
            let chunk = chunk?;
            let mut total = n.lock().unwrap_or_else(|p| p.into_inner());
            *total += chunk.len() as u64;
            if *total > limit {
                return Err(io::Error::other(TooLarge(limit)));
            }
            h.lock().unwrap_or_else(|p| p.into_inner()).update(&chunk);
            Ok(chunk)
        }));
        let size = match self.blobs.put(&key, data).await {
            Ok(size) => size,
            Err(StorageError::Input { source, .. }) => {
                self.discard_failed_put(caller.portal.id, &key).await;
                return Err(match source.get_ref().and_then(|e| e.downcast_ref::<TooLarge>()) {
                    Some(too_large) => Error::PayloadTooLarge(too_large.to_string()),
                    None => Error::BadRequest(format!("reading the upload failed: {source}")),
                });
            }
            Err(e) => {
                self.discard_failed_put(caller.portal.id, &key).await;
                return Err(e.into());
            }
        };
        let digest = hasher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finalize()
            .to_hex()
            .to_string();
        let new_file = |title: String| NewFile {
            folder_id: folder,
            title,
            size: size as i64,
            blob_key: key.to_string(),
            blake3: digest.clone(),
            by: caller.user.id,
            now: now_ms(),
        };

        // The bytes are durable; now the row. If the row cannot be written, the blob goes.
        let written = async {
            let existing = self.store.file_by_title(caller.portal.id, folder, &title).await?;
            match existing {
                Some(old) if !up.create_new_if_exist => {
                    let (file, old_key) = self
                        .store
                        .add_file_version(caller.portal.id, old.id, new_file(title))
                        .await?;
                    crate::backup::collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), vec![old_key]).await;
                    Ok::<_, Error>(file)
                }
                Some(_) => {
                    let mut n = 1;
                    let mut candidate = numbered(&title, n);
                    while self
                        .store
                        .file_by_title(caller.portal.id, folder, &candidate)
                        .await?
                        .is_some()
                    {
                        n += 1;
                        candidate = numbered(&title, n);
                    }
                    Ok(self.store.create_file(caller.portal.id, new_file(candidate)).await?)
                }
                None => Ok(self.store.create_file(caller.portal.id, new_file(title)).await?),
            }
        }
        .await;
        let file = match written {
            Ok(file) => file,
            Err(e) => {
                self.discard_failed_put(caller.portal.id, &key).await;
                return Err(e);
            }
        };
        let users = self.directory(caller, [file.created_by, file.modified_by]).await?;
        Ok(Located {
            item: file,
            path,
            rights: r,
            users,
        })
    }

    /// A file with its folder path and the caller's rights on that folder.
    async fn locate_file(&self, caller: &Caller, id: FileId) -> Result<Located<File>> {
        let file = self
            .store
            .file(caller.portal.id, id)
            .await?
            .ok_or_else(file_not_found)?;
        let (path, r) = self.locate_folder(caller, file.folder_id).await?;
        if !r.read {
            return Err(Error::InvalidOperation(
                "You don't have enough permission to view the file".to_owned(),
            ));
        }
        let users = self.directory(caller, [file.created_by, file.modified_by]).await?;
        Ok(Located {
            item: file,
            path,
            rights: r,
            users,
        })
    }

    /// `GET /api/2.0/files/file/{id}`.
    pub async fn file(&self, caller: &Caller, id: FileId) -> Result<Located<File>> {
        self.locate_file(caller, id).await
    }

    /// The bytes of a file, streamed.
    pub async fn download(&self, caller: &Caller, id: FileId) -> Result<(File, ByteStream)> {
        let located = self.locate_file(caller, id).await?;
        let key = BlobKey::new(located.item.blob_key.clone()).map_err(|e| Error::Internal(e.to_string()))?;
        let data = self.blobs.get(&key).await?;
        Ok((located.item, data))
    }

    /// `DELETE /api/2.0/files/file/{id}`: to the caller's Trash, or for good when
    /// `immediately` or when it already is in the Trash.
    pub async fn delete_file(&self, caller: &Caller, id: FileId, immediately: bool) -> Result<Vec<FileOperation>> {
        let located = self.locate_file(caller, id).await?;
        if !located.rights.modify_children {
            return Err(Error::denied(format!("file `{id}` may not be deleted by this caller")));
        }
        let in_trash = located.path.first().is_some_and(|root| root.kind == FolderType::Trash);
        if immediately || in_trash {
            if let Some(key) = self.store.delete_file(caller.portal.id, id).await? {
                crate::backup::collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), vec![key]).await;
            }
        } else {
            let trash = self
                .store
                .section(caller.portal.id, FolderType::Trash, Some(caller.user.id))
                .await?
                .ok_or_else(|| Error::Internal("the caller has no trash".to_owned()))?;
            self.store
                .move_file(caller.portal.id, id, trash.id, caller.user.id, now_ms())
                .await?;
        }
        Ok(self.finish_operation(caller))
    }

    /// Deletes blobs whose rows are gone. Failures are logged: an unreferenced blob wastes
    /// space but loses nothing.
    pub(crate) async fn delete_blobs(&self, keys: Vec<String>) {
        for key in keys {
            let Ok(key) = BlobKey::new(key) else { continue };
            if let Err(e) = self.blobs.delete(&key).await {
                tracing::warn!(%key, error = %e, "deleting an unreferenced blob failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn numbered_titles() {
        assert_eq!(numbered("a.txt", 1), "a (1).txt");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar (2).gz");
        assert_eq!(numbered("README", 3), "README (3)");
        assert_eq!(numbered(".env", 1), ".env (1)");
    }
}
