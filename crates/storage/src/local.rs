//! [`BlobStore`] on a local directory.

use crate::{BlobKey, BlobStore, ByteStream, StorageError};
use futures_util::StreamExt;
use std::io;
use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

/// Temporary files live here, inside the root, so that the final `rename` never crosses a file
/// system. Those of a `put` that died (a crash, `kill -9`) are removed by [`LocalStore::open`].
const TMP_DIR: &str = ".tmp";
/// The suffix of a temporary file just created and not yet locked (see [`create_temp`]).
const UNLOCKED: &str = ".new";
/// Reads go in pieces of this size: each is one trip to a blocking thread.
const READ_BUFFER: usize = 1 << 20;

/// A temporary file untouched for this long belongs to a `put` that died, whatever its lock
/// says (for file systems without locks).
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Blobs as files under a root directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// New files can be created unnamed (`O_TMPFILE`) and linked into place once written:
    /// probed when the store opens.
    unnamed_files: bool,
}

impl LocalStore {
    /// Opens (creating it if needed) a store at `root`, and removes the temporary files of puts
    /// that died. A live put holds a lock on its temporary file (another instance sharing the
    /// directory may have one under way right now); the kernel releases it when the process
    /// dies, so a file whose lock can be taken is a crash's leftover, however young.
    pub async fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp).await?;
        let unnamed_files = tokio::task::spawn_blocking(move || {
            sweep_temporary(&tmp)?;
            Ok::<_, io::Error>(unnamed_files_work(&tmp))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Self { root, unnamed_files })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // BlobKey guarantees relative, dot-free segments: the join stays under root.
        self.root.join(key.as_str())
    }

    async fn open_file(&self, key: &BlobKey) -> Result<fs::File, StorageError> {
        fs::File::open(self.path(key))
            .await
            .map_err(|e| not_found_or_io(key, e))
    }
}

fn io_err(key: &BlobKey, source: io::Error) -> StorageError {
    StorageError::Io {
        key: key.to_string(),
        source,
    }
}

fn not_found_or_io(key: &BlobKey, e: io::Error) -> StorageError {
    if e.kind() == io::ErrorKind::NotFound {
        StorageError::NotFound(key.to_string())
    } else {
        io_err(key, e)
    }
}

/// Creates a temporary file in `tmp` and locks it for as long as the returned file is open. It
/// is created under a name with [`UNLOCKED`] and renamed once locked, so a sweep never finds an
/// unlocked file of a live put under the final temporary name. Keep the file open until it has
/// been renamed into place.
fn create_temp(tmp: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    let name = format!("{:032x}", rand::random::<u128>());
    let path = tmp.join(&name);
    let fresh = tmp.join(format!("{name}{UNLOCKED}"));
    let file = std::fs::File::create(&fresh)?;
    let locked = file.lock().and_then(|()| std::fs::rename(&fresh, &path));
    if let Err(e) = locked {
        let _ = std::fs::remove_file(&fresh);
        return Err(e);
    }
    Ok((path, file))
}

/// Removes the temporary files of puts that died: those whose lock can be taken, and any
/// untouched for [`STALE_AFTER`] (a crash between creating and locking one, or a file system
/// without locks).
fn sweep_temporary(tmp: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(tmp)? {
        let path = entry?.path();
        let stale = path
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() >= STALE_AFTER)
            .unwrap_or(false);
        let unlocked = || {
            !path.to_string_lossy().ends_with(UNLOCKED)
                && std::fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok())
        };
        if stale || unlocked() {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

/// Creates an unnamed file in `dir` (`O_TMPFILE`): it has no name, so nothing can see it half
/// written, and a crash leaves nothing behind. [`link_unnamed`] gives it its name.
fn create_unnamed(dir: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .write(true)
        .mode(0o666)
        .custom_flags(nix::libc::O_TMPFILE)
        .open(dir)
}

/// Names a file made by [`create_unnamed`]; fails if `path` exists. Through `/proc/self/fd`,
/// which needs no privilege (`AT_EMPTY_PATH` would).
fn link_unnamed(file: &std::fs::File, path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    nix::unistd::linkat(None, fd.as_path(), None, path, nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW).map_err(io::Error::from)
}

/// Whether [`create_unnamed`] and [`link_unnamed`] work in `dir` (the file system supports
/// `O_TMPFILE` and `/proc` is mounted); tried once, with a file that is removed again.
fn unnamed_files_work(dir: &Path) -> bool {
    let path = dir.join(format!("{:032x}.probe", rand::random::<u128>()));
    let works = create_unnamed(dir).and_then(|f| link_unnamed(&f, &path)).is_ok();
    let _ = std::fs::remove_file(&path);
    works
}

/// Makes a rename or a new file durable by syncing its directory.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).await?.sync_all().await
}

impl LocalStore {
    /// An atomic put: the bytes go to a temporary file that is renamed into place; `durable`
    /// syncs the file and its directory first.
    async fn put_with(&self, key: &BlobKey, mut data: ByteStream, durable: bool) -> Result<u64, StorageError> {
        let final_path = self.path(key);
        let tmp = self.root.join(TMP_DIR);
        let (tmp_path, file) = tokio::task::spawn_blocking(move || create_temp(&tmp))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| io_err(key, e))?;
        let result = async {
            let mut file = fs::File::from_std(file);
            let mut written = 0u64;
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|source| StorageError::Input {
                    key: key.to_string(),
                    source,
                })?;
                file.write_all(&chunk).await.map_err(|e| io_err(key, e))?;
                written += chunk.len() as u64;
            }
            file.flush().await.map_err(|e| io_err(key, e))?;
            if durable {
                file.sync_all().await.map_err(|e| io_err(key, e))?;
            }
            let parent = final_path.parent().unwrap_or(&self.root).to_path_buf();
            fs::create_dir_all(&parent).await.map_err(|e| io_err(key, e))?;
            // Renamed while still open, so still locked: a sweep never takes it for a leftover.
            fs::rename(&tmp_path, &final_path).await.map_err(|e| io_err(key, e))?;
            drop(file);
            if durable {
                sync_dir(&parent).await.map_err(|e| io_err(key, e))?;
            }
            Ok(written)
        }
        .await;
        if result.is_err() {
            // Nothing may remain of a failed put. The file may not exist yet; that is fine.
            let _ = fs::remove_file(&tmp_path).await;
        }
        result
    }
}

impl LocalStore {
    /// [`LocalStore::put_with`] without syncing, with blocking I/O, straight from `data`'s
    /// buffer.
    fn put_blocking(&self, key: &BlobKey, data: &mut dyn io::BufRead) -> Result<u64, StorageError> {
        let final_path = self.path(key);
        let (tmp_path, mut file) = create_temp(&self.root.join(TMP_DIR)).map_err(|e| io_err(key, e))?;
        let result = (|| {
            let written = copy_all(key, data, &mut file)?;
            let parent = final_path.parent().unwrap_or(&self.root);
            std::fs::create_dir_all(parent).map_err(|e| io_err(key, e))?;
            // Renamed while still open, so still locked: a sweep never takes it for a leftover.
            std::fs::rename(&tmp_path, &final_path).map_err(|e| io_err(key, e))?;
            Ok(written)
        })();
        drop(file);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp_path);
        }
        result
    }

    /// Writes a new file under `key`'s path, without a temporary file or a rename: for keys
    /// nothing refers to yet (see [`BlobStore::create_unsynced_blocking`]). A file already
    /// there makes it fail. On a failure, nothing of what was written remains.
    fn create_blocking(&self, key: &BlobKey, data: &mut dyn io::BufRead) -> Result<u64, StorageError> {
        let path = self.path(key);
        let parent = path.parent().unwrap_or(&self.root);
        // Where it can, the file is written unnamed and named once complete: nothing sees it
        // half written, a failure or a crash leaves nothing behind, and the new inode is found
        // without holding the directory's lock (creating a named file holds it while the file
        // system looks for a free inode, which can be long: ext4 without a journal skips every
        // inode freed in the last minutes, so threads staging many files at once after a large
        // delete would otherwise queue on the directory).
        let create = || {
            if self.unnamed_files {
                create_unnamed(parent)
            } else {
                std::fs::File::options().write(true).create_new(true).open(&path)
            }
        };
        let mut file = match create() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The key's directory does not exist yet (checked only now: one call less for
                // every file of a directory that does).
                std::fs::create_dir_all(parent).and_then(|()| create())
            }
            other => other,
        }
        .map_err(|e| io_err(key, e))?;
        let result = copy_all(key, data, &mut file).and_then(|written| {
            if self.unnamed_files {
                // Fails if the key exists: what is there stays.
                link_unnamed(&file, &path).map_err(|e| io_err(key, e))?;
            }
            Ok(written)
        });
        drop(file);
        // An unnamed file that was not linked went with its descriptor.
        if result.is_err() && !self.unnamed_files {
            let _ = std::fs::remove_file(&path);
        }
        result
    }
}

/// Writes `data` to its end into `file`; the bytes written.
fn copy_all(key: &BlobKey, data: &mut dyn io::BufRead, file: &mut std::fs::File) -> Result<u64, StorageError> {
    use std::io::Write;
    let mut written = 0u64;
    loop {
        let buf = match data.fill_buf() {
            Ok([]) => return Ok(written),
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(StorageError::Input {
                    key: key.to_string(),
                    source,
                })
            }
        };
        let n = buf.len();
        file.write_all(buf).map_err(|e| io_err(key, e))?;
        data.consume(n);
        written += n as u64;
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    fn open_blocking(&self, key: &BlobKey) -> Option<Result<std::fs::File, StorageError>> {
        Some(std::fs::File::open(self.path(key)).map_err(|e| not_found_or_io(key, e)))
    }

    fn put_unsynced_blocking(&self, key: &BlobKey, data: &mut dyn io::BufRead) -> Option<Result<u64, StorageError>> {
        Some(self.put_blocking(key, data))
    }

    fn create_unsynced_blocking(&self, key: &BlobKey, data: &mut dyn io::BufRead) -> Option<Result<u64, StorageError>> {
        Some(self.create_blocking(key, data))
    }

    async fn put(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.put_with(key, data, true).await
    }

    async fn put_unsynced(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.put_with(key, data, false).await
    }

    async fn sync(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let dir = std::fs::File::open(&root)?;
            nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)).map_err(std::io::Error::from)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| StorageError::Io {
            key: self.root.display().to_string(),
            source: e,
        })
    }

    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError> {
        let file = self.open_file(key).await?;
        Ok(Box::pin(ReaderStream::with_capacity(file, READ_BUFFER)))
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let mut file = self.open_file(key).await?;
        file.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|e| io_err(key, e))?;
        let len = range.end.saturating_sub(range.start);
        Ok(Box::pin(ReaderStream::with_capacity(file.take(len), READ_BUFFER)))
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        match fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key, e)),
        }
    }

    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![self.path(prefix)];
        while let Some(dir) = stack.pop() {
            let mut entries = match fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => continue,
                Err(e) => return Err(io_err(prefix, e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(|e| io_err(prefix, e))? {
                let path = entry.path();
                let kind = entry.file_type().await.map_err(|e| io_err(prefix, e))?;
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() {
                    let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                    let text = rel.to_string_lossy().replace('\\', "/");
                    if let Ok(key) = BlobKey::new(text) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        match fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(key, e)),
        }
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> Result<(), StorageError> {
        // Directories too: a deleted portal leaves nothing behind.
        let path = self.path(prefix);
        let result = match fs::metadata(&path).await {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path).await,
            Ok(_) => fs::remove_file(&path).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(prefix, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::stream;

    fn chunks(parts: Vec<io::Result<Bytes>>) -> ByteStream {
        Box::pin(stream::iter(parts))
    }

    async fn read_all(mut s: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    /// The blob's bytes, read through the blocking path.
    fn read_blocking(store: &LocalStore, key: &BlobKey) -> Vec<u8> {
        use std::io::Read;
        let mut back = Vec::new();
        store
            .open_blocking(key)
            .unwrap()
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    /// A source that gives ten bytes `.0` times, then fails.
    struct Failing(usize);

    impl io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("the source broke"));
            }
            self.0 -= 1;
            buf[..10].fill(1);
            Ok(10)
        }
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("backspace-storage-test-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn put_get_range_list_delete() {
        let root = tempdir();
        let store = LocalStore::open(&root).await.unwrap();
        let key = BlobKey::new("portals/1/files/a").unwrap();
        let n = store
            .put(
                &key,
                chunks(vec![
                    Ok(Bytes::from_static(b"hello ")),
                    Ok(Bytes::from_static(b"world")),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(read_all(store.get(&key).await.unwrap()).await, b"hello world");
        assert_eq!(read_all(store.get_range(&key, 6..11).await.unwrap()).await, b"world");
        assert_eq!(store.size(&key).await.unwrap(), Some(11));
        let listed = store.list(&BlobKey::new("portals/1").unwrap()).await.unwrap();
        assert_eq!(listed, vec![key.clone()]);
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(matches!(store.get(&key).await, Err(StorageError::NotFound(_))));
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn blocking_puts_and_reads_are_atomic() {
        let root = tempdir();
        let store = LocalStore::open(&root).await.unwrap();
        let key = BlobKey::new("portals/1/files/b").unwrap();
        let data = vec![7u8; 600_000];
        let n = store
            .put_unsynced_blocking(&key, &mut data.as_slice())
            .unwrap()
            .unwrap();
        assert_eq!(n, 600_000);
        assert_eq!(read_blocking(&store, &key), data);
        assert_eq!(read_all(store.get(&key).await.unwrap()).await, data);

        // A reader that fails half-way stores nothing and keeps the old blob.
        let result = store
            .put_unsynced_blocking(&key, &mut io::BufReader::new(Failing(3)))
            .unwrap();
        assert!(matches!(result, Err(StorageError::Input { .. })), "{result:?}");
        assert_eq!(read_all(store.get(&key).await.unwrap()).await, data);
        assert_eq!(
            std::fs::read_dir(root.join(TMP_DIR)).unwrap().count(),
            0,
            "a temporary file remains"
        );
        let missing = BlobKey::new("portals/1/files/none").unwrap();
        assert!(matches!(
            store.open_blocking(&missing),
            Some(Err(StorageError::NotFound(_)))
        ));
        store.sync().await.unwrap();
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn creates_write_new_keys_only_and_leave_nothing_when_they_fail() {
        // Both ways of creating: unnamed then linked (probed when the store opens; Linux has
        // it on its usual file systems) and named from the start.
        for unnamed in [true, false] {
            let root = tempdir();
            let mut store = LocalStore::open(&root).await.unwrap();
            #[cfg(target_os = "linux")]
            assert!(store.unnamed_files, "O_TMPFILE did not probe as working under {root:?}");
            store.unnamed_files = unnamed;
            creates_in(&root, &store).await;
        }
    }

    async fn creates_in(root: &Path, store: &LocalStore) {
        let key = BlobKey::new("portals/1/files/new/c").unwrap();
        let data = vec![3u8; 300_000];
        let n = store
            .create_unsynced_blocking(&key, &mut data.as_slice())
            .unwrap()
            .unwrap();
        assert_eq!(n, 300_000);
        assert_eq!(read_blocking(store, &key), data);

        // A blob already under the key is neither replaced nor removed.
        let again = store.create_unsynced_blocking(&key, &mut &b"other"[..]).unwrap();
        assert!(matches!(again, Err(StorageError::Io { .. })), "{again:?}");
        assert_eq!(read_all(store.get(&key).await.unwrap()).await, data);

        // A source that breaks half-way leaves nothing under its key.
        let broken = BlobKey::new("portals/1/files/new/d").unwrap();
        let result = store
            .create_unsynced_blocking(&broken, &mut io::BufReader::new(Failing(3)))
            .unwrap();
        assert!(matches!(result, Err(StorageError::Input { .. })), "{result:?}");
        assert_eq!(store.size(&broken).await.unwrap(), None, "a broken create left bytes");
        assert_eq!(std::fs::read_dir(root.join(TMP_DIR)).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn open_removes_the_temporary_files_of_dead_puts_only() {
        let root = tempdir();
        let tmp = root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).unwrap();
        // A put that died a moment ago: its lock went with its process.
        let crashed = tmp.join("crashed");
        std::fs::write(&crashed, b"killed put").unwrap();
        // A put in progress (here or in another instance sharing the directory) holds its lock.
        let (live, live_file) = create_temp(&tmp).unwrap();
        // A file just created and not yet locked, and one that stayed so for two hours.
        let (unlocked, old) = (tmp.join(format!("young{UNLOCKED}")), tmp.join(format!("old{UNLOCKED}")));
        std::fs::write(&unlocked, b"").unwrap();
        std::fs::write(&old, b"").unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        LocalStore::open(&root).await.unwrap();
        assert!(!crashed.exists(), "the file of a killed put survived");
        assert!(!old.exists(), "a stale temporary file survived");
        assert!(live.exists(), "the file of a live put was removed");
        assert!(unlocked.exists(), "a file about to be locked was removed");
        drop(live_file);
        LocalStore::open(&root).await.unwrap();
        assert!(!live.exists(), "a file whose put ended without renaming it survived");
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn failed_put_leaves_nothing_and_keeps_the_old_blob() {
        let root = tempdir();
        let store = LocalStore::open(&root).await.unwrap();
        let key = BlobKey::new("k").unwrap();
        store
            .put(&key, chunks(vec![Ok(Bytes::from_static(b"old"))]))
            .await
            .unwrap();
        let err = store
            .put(
                &key,
                chunks(vec![
                    Ok(Bytes::from_static(b"new-partial")),
                    Err(io::Error::other("client went away")),
                ]),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Input { .. }), "{err}");
        assert_eq!(read_all(store.get(&key).await.unwrap()).await, b"old");
        let tmp_entries = std::fs::read_dir(root.join(TMP_DIR)).unwrap().count();
        assert_eq!(tmp_entries, 0, "a temporary file was left behind");
        let _ = std::fs::remove_dir_all(root);
    }
}
