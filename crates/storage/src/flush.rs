//! Making many unsynced puts durable while they are written.

use crate::{BlobStore, StorageError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Syncs a store in the background after every `threshold` bytes of unsynced puts, so the disk
/// writes while the caller computes and the final [`Flusher::finish`] has little left to wait
/// for. On stores without unsynced puts (object stores) `sync` costs nothing.
pub struct Flusher {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
    store: Arc<dyn BlobStore>,
}

struct Shared {
    pending: AtomicU64,
    threshold: u64,
    notify: Notify,
    done: AtomicBool,
    error: Mutex<Option<StorageError>>,
}

impl Flusher {
    /// Starts the background syncs on `handle`'s runtime.
    pub fn start(store: Arc<dyn BlobStore>, handle: &tokio::runtime::Handle, threshold: u64) -> Self {
        let shared = Arc::new(Shared {
            pending: AtomicU64::new(0),
            threshold,
            notify: Notify::new(),
            done: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let task = handle.spawn({
            let shared = shared.clone();
            let store = store.clone();
            async move {
                loop {
                    shared.notify.notified().await;
                    if shared.done.load(Ordering::Acquire) {
                        break;
                    }
                    shared.pending.store(0, Ordering::Relaxed);
                    if let Err(e) = store.sync().await {
                        shared.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        break;
                    }
                }
            }
        });
        Self {
            shared,
            task: Some(task),
            store,
        }
    }

    /// Counts `bytes` written with unsynced puts.
    pub fn wrote(&self, bytes: u64) {
        let pending = self.shared.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if pending >= self.shared.threshold {
            self.shared.notify.notify_one();
        }
    }

    /// Stops the background syncs and makes every put durable; the first failed sync's error.
    pub async fn finish(mut self) -> Result<(), StorageError> {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(e) = self.shared.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        self.store.sync().await
    }
}

impl Flusher {
    fn stop(&self) {
        self.shared.done.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }
}

impl Drop for Flusher {
    /// An abandoned flusher's task ends; nothing is synced.
    fn drop(&mut self) {
        self.stop();
    }
}
