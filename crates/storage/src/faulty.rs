//! [`Faulty`]: a fault-injecting decorator of any [`BlobStore`], for tests.
//!
//! A test keeps one [`Faults`] (the rules, the call counts, a seeded random source) and wraps
//! each store it wants to disturb with [`Faults::wrap`]. A [`Rule`] names the operations and
//! keys it matches (a key prefix or substring, a store label) and when it fires: on the n-th
//! matching call, on every one, or with a seeded probability; a limit caps how often. The
//! first rule that fires decides the call's [`Fault`]: an error, a partial write or read, a
//! delay, an object that vanishes, or an error reported after the call took effect (a lost
//! acknowledgement). Nothing here runs in production; the server never builds a `Faulty`.

use crate::{BlobKey, BlobStore, ByteStream, StorageError};
use bytes::Bytes;
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An operation of [`BlobStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    PutUnsynced,
    /// [`BlobStore::put_unsynced_blocking`].
    PutUnsyncedBlocking,
    /// [`BlobStore::create_unsynced_blocking`].
    CreateUnsyncedBlocking,
    Get,
    GetRange,
    /// [`BlobStore::open_blocking`].
    OpenBlocking,
    Size,
    List,
    Delete,
    Sync,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Put,
        Op::PutUnsynced,
        Op::PutUnsyncedBlocking,
        Op::CreateUnsyncedBlocking,
        Op::Get,
        Op::GetRange,
        Op::OpenBlocking,
        Op::Size,
        Op::List,
        Op::Delete,
        Op::Sync,
    ];
    /// Every way to write an object (the blocking one included).
    pub const WRITES: [Op; 4] = [
        Op::Put,
        Op::PutUnsynced,
        Op::PutUnsyncedBlocking,
        Op::CreateUnsyncedBlocking,
    ];
    /// Every way to read an object (the blocking one included).
    pub const READS: [Op; 3] = [Op::Get, Op::GetRange, Op::OpenBlocking];
}

/// What happens to a call a rule fires on.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The call fails without reaching the store.
    Error,
    /// A write passes its first `n` bytes on, then its input breaks (the store sees a failed
    /// stream and keeps nothing); a read yields its first `n` bytes, then an error. A blocking
    /// open yields a file that ends after `n` bytes. Other operations fail as with
    /// [`Fault::Error`].
    Partial(u64),
    /// The call waits this long (tokio time; a blocking call sleeps its thread), then runs.
    Delay(Duration),
    /// The object the call names is deleted behind the caller's back, then the call runs: a
    /// read says not found, a size says none.
    Vanish,
    /// The call runs and takes effect, then reports an error (a lost acknowledgement).
    ErrorAfter,
}

/// When a rule fires among the calls it matches.
#[derive(Clone, Debug)]
enum Trigger {
    Always,
    /// Only the n-th matching call (1-based).
    Nth(u64),
    /// Each matching call with this probability, from the seeded source.
    Chance(f64),
}

/// One fault rule; see the module documentation.
#[derive(Clone, Debug)]
pub struct Rule {
    ops: Vec<Op>,
    store: Option<String>,
    prefix: String,
    contains: Option<String>,
    trigger: Trigger,
    fault: Fault,
    limit: Option<u64>,
    matched: u64,
    fired: u64,
}

impl Rule {
    /// A rule that fires `fault` on every call of `ops` (narrow it with the other methods).
    pub fn new(ops: &[Op], fault: Fault) -> Self {
        Self {
            ops: ops.to_vec(),
            store: None,
            prefix: String::new(),
            contains: None,
            trigger: Trigger::Always,
            fault,
            limit: None,
            matched: 0,
            fired: 0,
        }
    }

    /// Only keys that start with `prefix` (for `list`, the listed prefix).
    pub fn under(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Only keys that contain `text`.
    pub fn containing(mut self, text: &str) -> Self {
        self.contains = Some(text.to_owned());
        self
    }

    /// Only calls on the store wrapped with this label.
    pub fn in_store(mut self, label: &str) -> Self {
        self.store = Some(label.to_owned());
        self
    }

    /// Fires on the n-th matching call only (1-based).
    pub fn nth(mut self, n: u64) -> Self {
        self.trigger = Trigger::Nth(n.max(1));
        self
    }

    /// Fires on each matching call with probability `p`, drawn from the [`Faults`]' seed.
    pub fn chance(mut self, p: f64) -> Self {
        self.trigger = Trigger::Chance(p.clamp(0.0, 1.0));
        self
    }

    /// Fires at most `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    fn matches(&self, store: &str, op: Op, key: &str) -> bool {
        self.ops.contains(&op)
            && self.store.as_deref().is_none_or(|s| s == store)
            && key.starts_with(&self.prefix)
            && self.contains.as_deref().is_none_or(|c| key.contains(c))
    }
}

/// A fault that fired: where, on what, and which.
#[derive(Clone, Debug)]
pub struct Fired {
    pub store: String,
    pub op: Op,
    pub key: String,
    pub fault: Fault,
}

struct State {
    rules: Vec<Rule>,
    rng: rand::rngs::StdRng,
    calls: HashMap<(String, Op), u64>,
    fired: Vec<Fired>,
}

/// The rules, counts and random source shared by every [`Faulty`] store of a test.
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// No rules yet; `seed` drives [`Rule::chance`].
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                rules: Vec::new(),
                rng: rand::rngs::StdRng::seed_from_u64(seed),
                calls: HashMap::new(),
                fired: Vec::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `inner` behind these faults, as the store labelled `label`.
    pub fn wrap(self: &Arc<Self>, label: &str, inner: Arc<dyn BlobStore>) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            label: label.to_owned(),
            faults: self.clone(),
        })
    }

    pub fn add(&self, rule: Rule) {
        self.state().rules.push(rule);
    }

    /// Removes every rule (counts stay).
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// Calls of `op` on every store so far.
    pub fn calls(&self, op: Op) -> u64 {
        self.state()
            .calls
            .iter()
            .filter(|((_, o), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls of `op` on the store labelled `store` so far.
    pub fn calls_in(&self, store: &str, op: Op) -> u64 {
        self.state().calls.get(&(store.to_owned(), op)).copied().unwrap_or(0)
    }

    /// Every fault that fired so far, in order.
    pub fn fired(&self) -> Vec<Fired> {
        self.state().fired.clone()
    }

    /// Counts the call and returns the fault of the first rule that fires on it.
    fn decide(&self, store: &str, op: Op, key: &str) -> Option<Fault> {
        let mut state = self.state();
        *state.calls.entry((store.to_owned(), op)).or_default() += 1;
        let State { rules, rng, fired, .. } = &mut *state;
        for rule in rules.iter_mut() {
            if !rule.matches(store, op, key) || rule.limit.is_some_and(|l| rule.fired >= l) {
                continue;
            }
            rule.matched += 1;
            let fire = match rule.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => rule.matched == n,
                Trigger::Chance(p) => rng.gen_bool(p),
            };
            if fire {
                rule.fired += 1;
                fired.push(Fired {
                    store: store.to_owned(),
                    op,
                    key: key.to_owned(),
                    fault: rule.fault.clone(),
                });
                return Some(rule.fault.clone());
            }
        }
        None
    }
}

/// A store behind [`Faults`]; see the module documentation.
pub struct Faulty {
    inner: Arc<dyn BlobStore>,
    label: String,
    faults: Arc<Faults>,
}

impl Faulty {
    /// The store behind the faults.
    pub fn inner(&self) -> &Arc<dyn BlobStore> {
        &self.inner
    }

    fn decide(&self, op: Op, key: &str) -> Option<Fault> {
        self.faults.decide(&self.label, op, key)
    }
}

fn injected(key: &str, what: &str) -> StorageError {
    StorageError::Io {
        key: key.to_owned(),
        source: io::Error::other(format!("injected fault: {what}")),
    }
}

/// The first `n` bytes of `data`, then an error (also when `data` ends first).
fn cut(data: ByteStream, n: u64) -> ByteStream {
    let head = crate::take_bytes(data, n);
    let tail = futures_util::stream::once(async move {
        Err::<Bytes, _>(io::Error::other(format!(
            "injected fault: the stream broke after {n} bytes"
        )))
    });
    Box::pin(head.chain(tail))
}

/// A reader that passes `left` bytes, then fails.
struct CutReader<'a> {
    inner: &'a mut dyn BufRead,
    left: u64,
}

impl Read for CutReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for CutReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.left == 0 {
            return Err(io::Error::other("injected fault: the input broke"));
        }
        let left = self.left;
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::other("injected fault: the input broke"));
        }
        Ok(&buf[..buf.len().min(left as usize)])
    }

    fn consume(&mut self, n: usize) {
        self.left = self.left.saturating_sub(n as u64);
        self.inner.consume(n);
    }
}

/// A blocking write of the inner store.
type BlockingWrite<'a> = dyn Fn(&BlobKey, &mut dyn BufRead) -> Option<Result<u64, StorageError>> + 'a;

impl Faulty {
    /// A blocking write (`op`, done by `put`) with the faults the rules give it.
    fn write_blocking(
        &self,
        op: Op,
        key: &BlobKey,
        data: &mut dyn BufRead,
        put: &BlockingWrite<'_>,
    ) -> Option<Result<u64, StorageError>> {
        match self.decide(op, key.as_str()) {
            None => put(key, data),
            Some(Fault::Error) => Some(Err(injected(key.as_str(), "write refused"))),
            Some(Fault::Partial(n)) => {
                let mut cut = CutReader { inner: data, left: n };
                let _ = put(key, &mut cut);
                Some(Err(injected(key.as_str(), &format!("write broke after {n} bytes"))))
            }
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                put(key, data)
            }
            Some(Fault::Vanish) => {
                self.vanish_blocking(key);
                put(key, data)
            }
            Some(Fault::ErrorAfter) => match put(key, data)? {
                Ok(_) => Some(Err(injected(key.as_str(), "write acknowledgement lost"))),
                Err(e) => Some(Err(e)),
            },
        }
    }

    /// A vanish on a blocking path: on the calling thread's runtime, or (a plain thread) on a
    /// runtime of its own.
    fn vanish_blocking(&self, key: &BlobKey) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let _ = handle.block_on(self.inner.delete(key));
            }
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(self.inner.delete(key));
                }
            }
        }
    }

    async fn write(&self, op: Op, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        let run = |data| async move {
            match op {
                Op::Put => self.inner.put(key, data).await,
                _ => self.inner.put_unsynced(key, data).await,
            }
        };
        match self.decide(op, key.as_str()) {
            None => run(data).await,
            Some(Fault::Error) => Err(injected(key.as_str(), "write refused")),
            Some(Fault::Partial(n)) => {
                // The store sees its input break; what it reports is a failed write.
                let _ = run(cut(data, n)).await;
                Err(injected(key.as_str(), &format!("write broke after {n} bytes")))
            }
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                run(data).await
            }
            Some(Fault::Vanish) => {
                let _ = self.inner.delete(key).await;
                run(data).await
            }
            Some(Fault::ErrorAfter) => {
                run(data).await?;
                Err(injected(key.as_str(), "write acknowledgement lost"))
            }
        }
    }

    async fn read(&self, op: Op, key: &BlobKey, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        let run = || {
            let range = range.clone();
            async move {
                match range {
                    Some(r) => self.inner.get_range(key, r).await,
                    None => self.inner.get(key).await,
                }
            }
        };
        match self.decide(op, key.as_str()) {
            None => run().await,
            Some(Fault::Error) => Err(injected(key.as_str(), "read refused")),
            Some(Fault::Partial(n)) => Ok(cut(run().await?, n)),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                run().await
            }
            Some(Fault::Vanish) => {
                let _ = self.inner.delete(key).await;
                run().await
            }
            Some(Fault::ErrorAfter) => {
                drop(run().await?);
                Err(injected(key.as_str(), "read answer lost"))
            }
        }
    }

    /// The other operations: `f` runs the call on the inner store.
    async fn other<T, F, Fut>(&self, op: Op, key: &BlobKey, f: F) -> Result<T, StorageError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, StorageError>>,
    {
        match self.decide(op, key.as_str()) {
            None => f().await,
            Some(Fault::Error | Fault::Partial(_)) => Err(injected(key.as_str(), &format!("{op:?} refused"))),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                f().await
            }
            Some(Fault::Vanish) => {
                if op != Op::List {
                    let _ = self.inner.delete(key).await;
                }
                f().await
            }
            Some(Fault::ErrorAfter) => {
                f().await?;
                Err(injected(key.as_str(), &format!("{op:?} answer lost")))
            }
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for Faulty {
    async fn put(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.write(Op::Put, key, data).await
    }

    async fn put_unsynced(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        self.write(Op::PutUnsynced, key, data).await
    }

    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError> {
        self.read(Op::Get, key, None).await
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError> {
        self.read(Op::GetRange, key, Some(range)).await
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        self.other(Op::Size, key, || self.inner.size(key)).await
    }

    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError> {
        self.other(Op::List, prefix, || self.inner.list(prefix)).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.other(Op::Delete, key, || self.inner.delete(key)).await
    }

    async fn sync(&self) -> Result<(), StorageError> {
        match self.faults.decide(&self.label, Op::Sync, "") {
            None => self.inner.sync().await,
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                self.inner.sync().await
            }
            Some(Fault::Vanish) => self.inner.sync().await,
            Some(Fault::ErrorAfter) => {
                self.inner.sync().await?;
                Err(injected("", "sync answer lost"))
            }
            Some(Fault::Error | Fault::Partial(_)) => Err(injected("", "sync refused")),
        }
    }

    fn open_blocking(&self, key: &BlobKey) -> Option<Result<std::fs::File, StorageError>> {
        match self.decide(Op::OpenBlocking, key.as_str()) {
            None => self.inner.open_blocking(key),
            Some(Fault::Error) => Some(Err(injected(key.as_str(), "open refused"))),
            Some(Fault::Partial(n)) => {
                let file = match self.inner.open_blocking(key)? {
                    Ok(file) => file,
                    Err(e) => return Some(Err(e)),
                };
                Some(truncated_copy(file, n).map_err(|e| StorageError::Io {
                    key: key.to_string(),
                    source: e,
                }))
            }
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                self.inner.open_blocking(key)
            }
            Some(Fault::Vanish) => {
                self.vanish_blocking(key);
                self.inner.open_blocking(key)
            }
            Some(Fault::ErrorAfter) => {
                let _ = self.inner.open_blocking(key);
                Some(Err(injected(key.as_str(), "open answer lost")))
            }
        }
    }

    fn put_unsynced_blocking(&self, key: &BlobKey, data: &mut dyn BufRead) -> Option<Result<u64, StorageError>> {
        self.write_blocking(Op::PutUnsyncedBlocking, key, data, &|k, d| {
            self.inner.put_unsynced_blocking(k, d)
        })
    }

    fn create_unsynced_blocking(&self, key: &BlobKey, data: &mut dyn BufRead) -> Option<Result<u64, StorageError>> {
        self.write_blocking(Op::CreateUnsyncedBlocking, key, data, &|k, d| {
            self.inner.create_unsynced_blocking(k, d)
        })
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> Result<(), StorageError> {
        // Through `list` and `delete`, so that their rules apply.
        for key in self.list(prefix).await? {
            self.delete(&key).await?;
        }
        Ok(())
    }
}

/// An unlinked temporary file holding the first `n` bytes of `file`: a read of it ends early.
fn truncated_copy(file: std::fs::File, n: u64) -> io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("faulty-{:032x}", rand::random::<u128>()));
    let mut out = std::fs::File::create(&path)?;
    io::copy(&mut file.take(n), &mut out)?;
    drop(out);
    let copy = std::fs::File::open(&path);
    let _ = std::fs::remove_file(&path);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStore;

    fn one(bytes: &'static [u8]) -> ByteStream {
        Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(bytes))]))
    }

    async fn read_all(mut s: ByteStream) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    async fn store() -> (Arc<Faults>, Arc<Faulty>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("faulty-test-{:032x}", rand::random::<u128>()));
        let local: Arc<dyn BlobStore> = Arc::new(LocalStore::open(&dir).await.unwrap());
        let faults = Faults::new(7);
        let store = faults.wrap("s", local);
        (faults, store, dir)
    }

    #[tokio::test]
    async fn rules_fire_on_the_chosen_call_and_leave_the_rest_alone() {
        let (faults, store, dir) = store().await;
        let a = BlobKey::new("a/1").unwrap();
        let b = BlobKey::new("b/1").unwrap();
        faults.add(Rule::new(&[Op::Put], Fault::Error).under("a/").nth(2));
        store.put(&a, one(b"x")).await.unwrap();
        assert!(store.put(&a, one(b"y")).await.is_err(), "the second put under a/ fires");
        store.put(&a, one(b"z")).await.unwrap();
        store.put(&b, one(b"w")).await.unwrap();
        assert_eq!(read_all(store.get(&a).await.unwrap()).await.unwrap(), b"z");
        assert_eq!(faults.calls(Op::Put), 4);
        assert_eq!(faults.calls_in("s", Op::Get), 1);
        assert_eq!(faults.fired().len(), 1);

        // A partial write stores nothing; a partial read breaks after its bytes.
        faults.add(Rule::new(&[Op::Put], Fault::Partial(1)).under("b/"));
        assert!(store.put(&b, one(b"new")).await.is_err());
        assert_eq!(read_all(store.get(&b).await.unwrap()).await.unwrap(), b"w");
        faults.clear();
        faults.add(Rule::new(&[Op::Get], Fault::Partial(0)).times(1));
        assert!(read_all(store.get(&b).await.unwrap()).await.is_err());
        assert_eq!(read_all(store.get(&b).await.unwrap()).await.unwrap(), b"w");

        // A lost acknowledgement: an error, and the object is there.
        faults.add(Rule::new(&[Op::Put], Fault::ErrorAfter).times(1));
        assert!(store.put(&b, one(b"v")).await.is_err());
        assert_eq!(read_all(store.get(&b).await.unwrap()).await.unwrap(), b"v");

        // Vanish: the object is gone when the call looks.
        faults.add(Rule::new(&[Op::Size], Fault::Vanish).times(1));
        assert_eq!(store.size(&b).await.unwrap(), None);
        assert!(matches!(store.get(&b).await, Err(StorageError::NotFound(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_blocking_paths_fail_too() {
        let (faults, store, dir) = store().await;
        let k = BlobKey::new("k").unwrap();
        store.put(&k, one(b"0123456789")).await.unwrap();
        faults.add(Rule::new(&[Op::PutUnsyncedBlocking], Fault::Partial(3)).times(1));
        faults.add(Rule::new(&[Op::OpenBlocking], Fault::Partial(4)).times(1));
        let s = store.clone();
        let k2 = k.clone();
        let (put, short) = tokio::task::spawn_blocking(move || {
            let put = s.put_unsynced_blocking(&k2, &mut &b"abcdef"[..]).unwrap();
            let mut short = Vec::new();
            s.open_blocking(&k2).unwrap().unwrap().read_to_end(&mut short).unwrap();
            (put, short)
        })
        .await
        .unwrap();
        assert!(put.is_err(), "the cut blocking write succeeded");
        assert_eq!(short, b"0123", "the cut open read more");
        assert_eq!(read_all(store.get(&k).await.unwrap()).await.unwrap(), b"0123456789");

        faults.add(Rule::new(&[Op::Delete], Fault::Error).chance(1.0).times(2));
        assert!(store.delete(&k).await.is_err());
        assert!(store.delete(&k).await.is_err());
        store.delete(&k).await.unwrap();
        assert_eq!(store.size(&k).await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
