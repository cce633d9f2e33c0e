//! Where archives go: a room or folder of the portal (`Documents`), the portal's WebDAV backup
//! folder (`ThridpartyDocuments`), a server directory under the configured roots (`Local`), the
//! server's temporary store (`DataStore`), or a consumer's bucket (`ThirdPartyConsumer`).

use super::consumer::{Consumer, Module};
use super::storage_number;
use crate::caller::Caller;
use crate::files::Upload;
use crate::{Core, Error, Result};
use backspace_storage::{BlobKey, BlobStore, ByteStream, StorageError};
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
    /// A folder of the portal's WebDAV backup provider: `folder_id` as the client named it
    /// (`sbox-3`), `dir` the path inside the provider's root.
    Provider {
        folder_id: String,
        dir: String,
    },
    /// A bucket of a data-store consumer.
    Consumer(Consumer),
    /// A type that exists in DocSpace but stores nothing (`CustomCloud`): its job fails.
    Unknown,
}

impl Target {
    pub fn storage_type(&self) -> StorageType {
        match self {
            Self::Documents { .. } => StorageType::Documents,
            Self::Local { .. } => StorageType::Local,
            Self::DataStore => StorageType::DataStore,
            Self::Provider { .. } => StorageType::ThridpartyDocuments,
            Self::Consumer(_) => StorageType::ThirdPartyConsumer,
            Self::Unknown => StorageType::CustomCloud,
        }
    }

    /// The record's storage parameters as stored (`folderId` / `filePath`).
    pub fn params(&self) -> BTreeMap<String, String> {
        match self {
            Self::Documents { folder } => BTreeMap::from([("folderId".to_owned(), folder.to_string())]),
            Self::Local { dir } => BTreeMap::from([("filePath".to_owned(), dir.display().to_string())]),
            Self::Provider { folder_id, .. } => BTreeMap::from([("folderId".to_owned(), folder_id.clone())]),
            Self::Consumer(c) => c.params.clone(),
            _ => BTreeMap::new(),
        }
    }
}

/// Where a stored archive is: what a history record or a restore source says.
#[derive(Clone, Debug)]
pub(crate) struct Stored<'a> {
    pub portal: PortalId,
    pub storage_type: i64,
    pub path: &'a str,
    /// The record's storage parameters (JSON).
    pub params: std::borrow::Cow<'a, str>,
}

impl<'a> Stored<'a> {
    pub fn of(record: &'a backspace_meta::BackupRecord) -> Self {
        Self {
            portal: record.portal_id,
            storage_type: record.storage_type,
            path: &record.storage_path,
            params: std::borrow::Cow::Borrowed(&record.storage_params),
        }
    }

    /// Whether the archive is a snapshot of a repository (its record says so).
    pub fn is_repository(&self) -> bool {
        self.params().contains_key(super::repository::REPOSITORY_PARAM)
    }

    /// The parameters, names in lower case.
    pub fn params(&self) -> BTreeMap<String, String> {
        serde_json::from_str::<BTreeMap<String, String>>(&self.params)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }
}

/// A remote store's error as the job or the client sees it: naming the target.
fn remote(what: String) -> impl FnOnce(StorageError) -> Error {
    move |e| match e {
        StorageError::Input { source, .. } => Error::Internal(source.to_string()),
        StorageError::NotFound(key) => Error::NotFound(format!("the backup `{key}` is not in the {what}")),
        other => Error::StorageUnavailable(format!("the {what} failed: {other}")),
    }
}

/// How long a history listing waits for a remote store before keeping a record unchecked.
const EXISTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
            StorageType::ThridpartyDocuments => {
                let folder_id = params
                    .get("folderid")
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty() && v.parse::<i64>().is_err())
                    .ok_or_else(|| {
                        Error::BadRequest(
                            "wrong folder type: folderId must be the id of the connected third-party folder (sbox-N)"
                                .to_owned(),
                        )
                    })?;
                let (_, dir) = self.provider_folder(caller.portal.id, &folder_id).await?;
                Ok(Target::Provider { folder_id, dir })
            }
            StorageType::ThirdPartyConsumer => {
                Ok(Target::Consumer(self.resolve_consumer(caller.portal.id, params).await?))
            }
        }
    }

    /// A consumer target of stored parameters.
    pub(crate) fn stored_consumer(stored: &Stored<'_>) -> Result<Consumer> {
        let params = stored.params();
        let module = params
            .get("module")
            .and_then(|m| Module::parse(m))
            .ok_or_else(|| Error::BadRequest("the backup's storage module is unknown".to_owned()))?;
        Ok(Consumer { module, params })
    }

    /// The WebDAV store and archive key of a stored archive.
    async fn stored_provider(&self, stored: &Stored<'_>) -> Result<(backspace_storage::WebDavStore, BlobKey)> {
        let folder_id = stored.params().get("folderid").cloned().unwrap_or_default();
        let (provider, _) = self.provider_folder(stored.portal, &folder_id).await?;
        Ok((Self::provider_store(&provider)?, blob_key(stored.path)?))
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
                if let Err(e) = self.blobs.put(&key, data).await {
                    self.discard_failed_put(caller.portal.id, &key).await;
                    return Err(e.into());
                }
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
                let partial = partial_path(dir, file_name, task);
                let now = backspace_types::datetime::now_ms;
                let path_text = |p: &Path| p.display().to_string();
                self.store
                    .set_job_partial(task, Some(&path_text(&partial)), now())
                    .await?;
                let io = |e: std::io::Error| {
                    Error::Internal(format!("writing the backup to `{}` failed: {e}", final_path.display()))
                };
                if let Err(e) = write_local(&partial, data).await.map_err(io) {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(e);
                }
                let taken = || {
                    Error::InvalidOperation(format!(
                        "`{}` appeared while the backup was written; it was left as it is. Start the backup again.",
                        final_path.display()
                    ))
                };
                // A hard link never replaces a file: an archive of the same name (made by
                // something else since the name was chosen) stays, and this backup fails. On
                // file systems without hard links (FAT, some network ones) the name, free when
                // chosen, is checked again and the partial renamed after the record below.
                // `Some(true)`: linked; `Some(false)`: free, to be renamed; `None`: taken.
                let linked = match tokio::fs::hard_link(&partial, &final_path).await {
                    Ok(()) => Some(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                    Err(_) => tokio::fs::symlink_metadata(&final_path).await.is_err().then_some(false),
                };
                let Some(linked) = linked else {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(taken());
                };
                // From here the final name is this job's own, and recorded as such: a crash
                // before the history record removes it (`Core::recover_jobs`).
                if let Err(e) = self
                    .store
                    .set_job_partial(task, Some(&path_text(&final_path)), now())
                    .await
                {
                    if linked {
                        let _ = tokio::fs::remove_file(&final_path).await;
                    }
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(e.into());
                }
                if linked {
                    // The archive is whole under its name: a partial name that cannot go is
                    // only a hidden extra link to it.
                    if let Err(e) = tokio::fs::remove_file(&partial).await {
                        tracing::warn!(path = %partial.display(), error = %e, "removing the partial name of a finished archive failed");
                    }
                } else if let Err(e) = tokio::fs::rename(&partial, &final_path).await {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(io(e));
                }
                if let Err(e) = sync_dir(dir).await {
                    let _ = tokio::fs::remove_file(&final_path).await;
                    return Err(io(e));
                }
                Ok(path_text(&final_path))
            }
            Target::Provider { folder_id, dir } => {
                let (provider, _) = self.provider_folder(caller.portal.id, folder_id).await?;
                let store = Self::provider_store(&provider)?;
                let key = blob_key(&if dir.is_empty() {
                    file_name.to_owned()
                } else {
                    format!("{dir}/{file_name}")
                })?;
                let what = format!("WebDAV folder {}", store.url());
                store.put(&key, data).await.map_err(remote(what))?;
                Ok(key.to_string())
            }
            Target::Consumer(consumer) => {
                let store = self.consumer_store(caller.portal.id, consumer).await?;
                let key = consumer.key(file_name)?;
                // A missing bucket or a rejected key is named before anything is uploaded (some
                // servers create a bucket on the first put).
                store.check().await.map_err(remote(consumer.describe()))?;
                if let Err(e) = store.put(&key, data).await {
                    // A put that failed may still have stored the archive (its answer lost).
                    let _ = store.delete(&key).await;
                    return Err(remote(consumer.describe())(e));
                }
                Ok(key.to_string())
            }
            Target::Unknown => Err(Error::BadRequest("Unknown storage type.".to_owned())),
        }
    }

    /// A link to download a consumer's archive directly from its store, valid for `ttl`.
    pub(crate) async fn presigned_link(
        &self,
        portal: PortalId,
        consumer: &Consumer,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>> {
        let store = self.consumer_store(portal, consumer).await?;
        store
            .presign_get(&blob_key(key)?, ttl)
            .await
            .map_err(remote(consumer.describe()))
    }

    /// Opens a stored archive for reading.
    pub(crate) async fn open_archive(&self, stored: Stored<'_>) -> Result<ByteStream> {
        if let Some((location, repo)) = self.stored_repository(&stored).await? {
            return self.repository_archive(&location, repo, stored.path).await;
        }
        let (portal, path) = (stored.portal, stored.path);
        match super::storage_from_number(stored.storage_type) {
            Some(StorageType::ThridpartyDocuments) => {
                let (store, key) = self.stored_provider(&stored).await?;
                let what = format!("WebDAV folder {}", store.url());
                store.get(&key).await.map_err(remote(what))
            }
            Some(StorageType::ThirdPartyConsumer) => {
                let consumer = Self::stored_consumer(&stored)?;
                let store = self.consumer_store(portal, &consumer).await?;
                store.get(&blob_key(path)?).await.map_err(remote(consumer.describe()))
            }
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

    /// Whether a stored archive is still there (a Documents file in the Trash counts as gone; a
    /// remote store that cannot answer keeps the record).
    pub(crate) async fn archive_exists(&self, stored: Stored<'_>) -> Result<bool> {
        match self.stored_repository(&stored).await {
            Ok(Some((_, repo))) => {
                return Ok(match repo.has_snapshot(stored.path).await {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(path = stored.path, error = %e, "cannot check a repository backup; keeping its record");
                        true
                    }
                })
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = stored.path, error = %e, "cannot open a backup's repository; keeping its record");
                return Ok(true);
            }
        }
        let (portal, path) = (stored.portal, stored.path);
        let remote_size = |what: String, result: std::result::Result<Result<Option<u64>, StorageError>, _>| match result
        {
            Ok(Ok(size)) => Ok(size.is_some()),
            Ok(Err(e)) => {
                tracing::warn!(path, error = %e, "cannot check a backup in the {what}; keeping its record");
                Ok(true)
            }
            Err(_) => {
                tracing::warn!(path, "the {what} did not answer in time; keeping the record");
                Ok(true)
            }
        };
        match super::storage_from_number(stored.storage_type) {
            Some(StorageType::ThridpartyDocuments) => match self.stored_provider(&stored).await {
                Ok((store, key)) => {
                    let what = format!("WebDAV folder {}", store.url());
                    remote_size(what, tokio::time::timeout(EXISTS_TIMEOUT, store.size(&key)).await)
                }
                // The provider was disconnected or replaced: as in DocSpace, the backup is gone.
                Err(Error::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            },
            Some(StorageType::ThirdPartyConsumer) => {
                let consumer = Self::stored_consumer(&stored)?;
                let store = match self.consumer_store(portal, &consumer).await {
                    Ok(store) => store,
                    Err(e) => {
                        tracing::warn!(path, error = %e, "cannot open a consumer store; keeping the record");
                        return Ok(true);
                    }
                };
                let key = blob_key(path)?;
                remote_size(
                    consumer.describe(),
                    tokio::time::timeout(EXISTS_TIMEOUT, store.size(&key)).await,
                )
            }
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
    pub(crate) async fn delete_archive(&self, stored: Stored<'_>) -> Result<()> {
        if let Some((location, repo)) = self.stored_repository(&stored).await? {
            return self.delete_repository_backup(location, repo, stored.path).await;
        }
        let (portal, path) = (stored.portal, stored.path);
        match super::storage_from_number(stored.storage_type) {
            Some(StorageType::ThridpartyDocuments) => match self.stored_provider(&stored).await {
                Ok((store, key)) => {
                    let what = format!("WebDAV folder {}", store.url());
                    store.delete(&key).await.map_err(remote(what))
                }
                Err(Error::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            },
            Some(StorageType::ThirdPartyConsumer) => {
                let consumer = Self::stored_consumer(&stored)?;
                let store = self.consumer_store(portal, &consumer).await?;
                store
                    .delete(&blob_key(path)?)
                    .await
                    .map_err(remote(consumer.describe()))
            }
            Some(StorageType::DataStore) => Ok(self.blobs.delete(&blob_key(path)?).await?),
            Some(StorageType::Documents) => {
                if let Ok(id) = path.parse::<FileId>() {
                    if let Some(key) = self.store.delete_file(portal, id).await? {
                        super::collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), vec![key]).await;
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

    /// After a put to the file store failed: it may still have stored the object (its answer
    /// was lost). The key is recorded as garbage and deleted now, or by the cleaner when the
    /// store refuses.
    pub(crate) async fn discard_failed_put(&self, portal: PortalId, key: &BlobKey) {
        let garbage = vec![key.to_string()];
        let now = backspace_types::datetime::now_ms();
        if let Err(e) = self.store.add_blob_garbage(portal, &garbage, now).await {
            tracing::warn!(%key, error = %e, "recording the key of a failed put as garbage failed");
        }
        super::history::collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), garbage).await;
    }
}

fn blob_key(path: &str) -> Result<BlobKey> {
    BlobKey::new(path.to_owned()).map_err(|e| Error::Internal(e.to_string()))
}

pub(crate) fn datastore_key(portal: PortalId, task: TaskId, file_name: &str) -> Result<BlobKey> {
    blob_key(&format!("backups/{portal}/{}/{file_name}", task.0.simple()))
}

/// Where a `Local` archive is written until it is complete: a hidden name beside the final one.
fn partial_path(dir: &Path, file_name: &str, task: TaskId) -> PathBuf {
    dir.join(format!(".{file_name}.{task}.partial"))
}

/// What an interrupted `Local` backup that recorded `recorded` (its partial path, or the final
/// path once the archive was linked into place) may have left: `(partial, final, final_is_its_own)`.
/// A recorded partial path names a final path that may belong to someone else (the link may not
/// have happened); the final one is this job's only when it is the same file as the partial.
fn interrupted_local_output(recorded: &Path, task: TaskId) -> Option<(PathBuf, PathBuf, bool)> {
    let name = recorded.file_name()?.to_str()?;
    let dir = recorded.parent()?;
    match name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(&format!(".{task}.partial")))
    {
        Some(file_name) => Some((recorded.to_owned(), dir.join(file_name), false)),
        None => Some((partial_path(dir, name, task), recorded.to_owned(), true)),
    }
}

/// Removes what an interrupted `Local` backup left (see [`interrupted_local_output`]): the
/// partial archive, and the final one only when the job made it.
pub(crate) fn remove_interrupted_local_output(recorded: &Path, task: TaskId) -> Vec<(PathBuf, std::io::Result<()>)> {
    use std::os::unix::fs::MetadataExt;
    let Some((partial, final_path, linked)) = interrupted_local_output(recorded, task) else {
        return Vec::new();
    };
    let same_file = || match (
        std::fs::symlink_metadata(&partial),
        std::fs::symlink_metadata(&final_path),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let mut removed = Vec::new();
    // The final one first: the partial is what proves it is the job's own.
    if linked || same_file() {
        removed.push((final_path.clone(), std::fs::remove_file(&final_path)));
    }
    removed.push((partial.clone(), std::fs::remove_file(&partial)));
    removed
}

/// Writes the archive to `partial` and makes it durable.
async fn write_local(partial: &Path, mut data: ByteStream) -> std::io::Result<()> {
    use futures_util::StreamExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(partial)
        .await?;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| std::io::Error::other(format!("the archive stream failed: {e}")))?;
        file.write_all(&chunk).await?;
    }
    file.sync_all().await
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one, removed when dropped.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir() -> Dir {
        let d = std::env::temp_dir().join(format!("backspace-target-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// Each moment a `Local` backup can die at, and what recovery must remove: never a file of
    /// the final name that the job did not link itself.
    #[test]
    fn recovery_removes_what_the_job_made_and_nothing_else() {
        let task = TaskId(uuid::Uuid::new_v4());
        let name = "p_2026-01-01_00-00-00.tar.zst";
        let remaining = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };

        // Died while writing; a file of the final name is someone else's.
        let d = dir();
        let partial = partial_path(&d.0, name, task);
        std::fs::write(&partial, b"half").unwrap();
        std::fs::write(d.0.join(name), b"theirs").unwrap();
        remove_interrupted_local_output(&partial, task);
        assert_eq!(remaining(&d.0), [name]);
        assert_eq!(std::fs::read(d.0.join(name)).unwrap(), b"theirs");

        // Died after linking, before recording the final path: the final is the partial's file.
        let d = dir();
        let partial = partial_path(&d.0, name, task);
        std::fs::write(&partial, b"whole").unwrap();
        std::fs::hard_link(&partial, d.0.join(name)).unwrap();
        remove_interrupted_local_output(&partial, task);
        assert!(remaining(&d.0).is_empty(), "{:?}", remaining(&d.0));

        // Died after recording the final path, with or without the partial still there.
        for keep_partial in [true, false] {
            let d = dir();
            let partial = partial_path(&d.0, name, task);
            std::fs::write(&partial, b"whole").unwrap();
            std::fs::hard_link(&partial, d.0.join(name)).unwrap();
            if !keep_partial {
                std::fs::remove_file(&partial).unwrap();
            }
            let removed = remove_interrupted_local_output(&d.0.join(name), task);
            assert!(remaining(&d.0).is_empty(), "{:?}", remaining(&d.0));
            assert!(removed.iter().any(|(p, r)| p == &d.0.join(name) && r.is_ok()));
        }

        // Died before the partial was created: nothing of its own, nothing removed.
        let d = dir();
        std::fs::write(d.0.join(name), b"theirs").unwrap();
        remove_interrupted_local_output(&partial_path(&d.0, name, task), task);
        assert_eq!(remaining(&d.0), [name]);
    }
}
