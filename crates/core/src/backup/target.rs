//! Where archives go: a room or folder of the portal (`Documents`), a server directory under
//! the configured roots (`Local`), or the server's temporary store (`DataStore`).

use super::storage_number;
use crate::caller::Caller;
use crate::files::Upload;
use crate::{Core, Error, Result};
use backspace_storage::{BlobKey, ByteStream};
use backspace_types::{FileId, FolderId, FolderType, PortalId, StorageType, TaskId};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A resolved, checked target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Documents {
        folder: FolderId,
    },
    /// A canonical directory under one of the allowed roots.
    Local {
        dir: PathBuf,
    },
    DataStore,
    /// A type that exists in DocSpace but stores nothing (`CustomCloud`): its job fails.
    Unknown,
}

impl Target {
    pub fn storage_type(&self) -> StorageType {
        match self {
            Self::Documents { .. } => StorageType::Documents,
            Self::Local { .. } => StorageType::Local,
            Self::DataStore => StorageType::DataStore,
            Self::Unknown => StorageType::CustomCloud,
        }
    }

    /// The record's storage parameters as stored (`folderId` / `filePath`).
    pub fn params(&self) -> BTreeMap<String, String> {
        match self {
            Self::Documents { folder } => BTreeMap::from([("folderId".to_owned(), folder.to_string())]),
            Self::Local { dir } => BTreeMap::from([("filePath".to_owned(), dir.display().to_string())]),
            _ => BTreeMap::new(),
        }
    }
}

fn not_yet(t: StorageType) -> Error {
    Error::BadRequest(format!(
        "storage type {t:?} (third-party storage) is not supported yet by this server; use Documents, Local or DataStore"
    ))
}

/// The canonical form of `raw` if it is an existing directory under one of `roots`; symlinks
/// are resolved before the check, so a link cannot lead out of a root.
pub(crate) fn local_path_under_roots(roots: &[PathBuf], raw: &str, want_dir: bool) -> Result<PathBuf> {
    if roots.is_empty() {
        return Err(Error::BadRequest(
            "Local backups are disabled: list the allowed directories in BACKSPACE_LOCAL_BACKUP_ROOTS".to_owned(),
        ));
    }
    let path = Path::new(raw.trim());
    if !path.is_absolute() {
        return Err(Error::BadRequest(format!("filePath `{raw}` must be an absolute path")));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::BadRequest(format!("filePath `{raw}` must not contain `..`")));
    }
    let canonical =
        std::fs::canonicalize(path).map_err(|e| Error::BadRequest(format!("filePath `{raw}` cannot be used: {e}")))?;
    let allowed = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .any(|root| canonical.starts_with(&root));
    if !allowed {
        return Err(Error::BadRequest(format!(
            "filePath `{raw}` is outside the directories allowed for Local backups"
        )));
    }
    let meta = std::fs::metadata(&canonical).map_err(|e| Error::BadRequest(format!("filePath `{raw}`: {e}")))?;
    if want_dir != meta.is_dir() {
        let want = if want_dir { "a directory" } else { "a file" };
        return Err(Error::BadRequest(format!("filePath `{raw}` is not {want}")));
    }
    Ok(canonical)
}

impl Core {
    /// Checks a backup target of a request.
    pub(crate) async fn resolve_target(
        &self,
        caller: &Caller,
        storage: StorageType,
        params: &BTreeMap<String, String>,
    ) -> Result<Target> {
        match storage {
            StorageType::Documents => {
                let folder = params
                    .get("folderid")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .map(FolderId)
                    .ok_or_else(|| Error::BadRequest("wrong folder type: folderId must be a folder id".to_owned()))?;
                let (path, rights) = self.locate_folder(caller, folder).await?;
                let last = path
                    .last()
                    .ok_or_else(|| Error::NotFound("The required folder was not found".into()))?;
                if path.len() == 1
                    && matches!(
                        last.kind,
                        FolderType::VirtualRooms | FolderType::Archive | FolderType::Trash
                    )
                    || path
                        .first()
                        .is_some_and(|r| matches!(r.kind, FolderType::Archive | FolderType::Trash))
                {
                    return Err(Error::BadRequest(format!(
                        "folder `{folder}` cannot hold backups: choose a room, a folder in a room, or My documents"
                    )));
                }
                if !rights.read {
                    return Err(Error::NotFound("The required folder was not found".into()));
                }
                if !rights.create {
                    return Err(Error::denied(format!("no right to create in folder `{folder}`")));
                }
                Ok(Target::Documents { folder })
            }
            StorageType::Local => {
                let raw = params
                    .get("filepath")
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| Error::BadRequest("filePath is required for Local backups".to_owned()))?;
                let dir = local_path_under_roots(&self.settings.backup.local_roots, raw, true)?;
                Ok(Target::Local { dir })
            }
            StorageType::DataStore => Ok(Target::DataStore),
            StorageType::CustomCloud => Ok(Target::Unknown),
            t @ (StorageType::ThridpartyDocuments | StorageType::ThirdPartyConsumer) => Err(not_yet(t)),
        }
    }

    /// Stores an archive stream at the target under `file_name`; returns the storage path the
    /// record keeps. The archive is visible only once complete.
    pub(crate) async fn put_archive(
        &self,
        caller: &Caller,
        target: &Target,
        task: TaskId,
        file_name: &str,
        data: ByteStream,
    ) -> Result<String> {
        match target {
            Target::DataStore => {
                let key = datastore_key(caller.portal.id, task, file_name)?;
                self.blobs.put(&key, data).await?;
                Ok(key.to_string())
            }
            Target::Documents { folder } => {
                let up = Upload {
                    title: file_name.to_owned(),
                    data,
                    create_new_if_exist: true,
                    unlimited: true,
                };
                let file = self.upload(caller, *folder, up).await?;
                Ok(file.item.id.to_string())
            }
            Target::Local { dir } => {
                let final_path = dir.join(file_name);
                let partial = dir.join(format!(".{file_name}.{task}.partial"));
                self.store
                    .set_job_partial(
                        task,
                        Some(&partial.display().to_string()),
                        backspace_types::datetime::now_ms(),
                    )
                    .await?;
                let result = write_local(&partial, &final_path, data).await;
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
                result?;
                Ok(final_path.display().to_string())
            }
            Target::Unknown => Err(Error::BadRequest("Unknown storage type.".to_owned())),
        }
    }

    /// Opens a stored archive for reading.
    pub(crate) async fn open_archive(&self, portal: PortalId, storage: i64, path: &str) -> Result<ByteStream> {
        match super::storage_from_number(storage) {
            Some(StorageType::DataStore) => Ok(self.blobs.get(&blob_key(path)?).await?),
            Some(StorageType::Documents) => {
                let id: FileId = path
                    .parse()
                    .map_err(|_| Error::NotFound("The required file was not found".into()))?;
                let file = self
                    .store
                    .file(portal, id)
                    .await?
                    .ok_or_else(|| Error::NotFound("The required file was not found".into()))?;
                Ok(self.blobs.get(&blob_key(&file.blob_key)?).await?)
            }
            Some(StorageType::Local) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::NotFound(format!("the backup file `{path}` cannot be opened: {e}")))?;
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)))
            }
            _ => Err(Error::BadRequest("Unknown storage type.".to_owned())),
        }
    }

    /// Whether a stored archive is still there (a Documents file in the Trash counts as gone).
    pub(crate) async fn archive_exists(&self, portal: PortalId, storage: i64, path: &str) -> Result<bool> {
        match super::storage_from_number(storage) {
            Some(StorageType::DataStore) => Ok(self.blobs.size(&blob_key(path)?).await?.is_some()),
            Some(StorageType::Documents) => {
                let Ok(id) = path.parse::<FileId>() else {
                    return Ok(false);
                };
                let Some(file) = self.store.file(portal, id).await? else {
                    return Ok(false);
                };
                let chain = self.store.ancestors(portal, file.folder_id).await?;
                Ok(chain.first().is_some_and(|root| root.kind != FolderType::Trash))
            }
            Some(StorageType::Local) => Ok(tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())),
            _ => Ok(true),
        }
    }

    /// Deletes a stored archive; a missing one is not an error.
    pub(crate) async fn delete_archive(&self, portal: PortalId, storage: i64, path: &str) -> Result<()> {
        match super::storage_from_number(storage) {
            Some(StorageType::DataStore) => Ok(self.blobs.delete(&blob_key(path)?).await?),
            Some(StorageType::Documents) => {
                if let Ok(id) = path.parse::<FileId>() {
                    if let Some(key) = self.store.delete_file(portal, id).await? {
                        self.delete_blobs(vec![key]).await;
                    }
                }
                Ok(())
            }
            Some(StorageType::Local) => match tokio::fs::remove_file(path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::Internal(format!(
                    "deleting the backup file `{path}` failed: {e}"
                ))),
            },
            _ => Ok(()),
        }
    }

    pub(crate) fn storage_number_of(target: &Target) -> i64 {
        storage_number(target.storage_type())
    }
}

fn blob_key(path: &str) -> Result<BlobKey> {
    BlobKey::new(path.to_owned()).map_err(|e| Error::Internal(e.to_string()))
}

pub(crate) fn datastore_key(portal: PortalId, task: TaskId, file_name: &str) -> Result<BlobKey> {
    blob_key(&format!("backups/{portal}/{}/{file_name}", task.0.simple()))
}

async fn write_local(partial: &Path, final_path: &Path, mut data: ByteStream) -> Result<()> {
    use futures_util::StreamExt;
    let io =
        |e: std::io::Error| Error::Internal(format!("writing the backup to `{}` failed: {e}", final_path.display()));
    let mut file = tokio::fs::File::create(partial).await.map_err(io)?;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| Error::Internal(format!("the archive stream failed: {e}")))?;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    tokio::fs::rename(partial, final_path).await.map_err(io)?;
    if let Some(dir) = final_path.parent() {
        tokio::fs::File::open(dir)
            .await
            .map_err(io)?
            .sync_all()
            .await
            .map_err(io)?;
    }
    Ok(())
}
