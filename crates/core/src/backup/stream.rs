//! Bridges between the synchronous archive codec (run on blocking threads) and the async
//! stores: a `Write` that feeds a byte stream, and a `Read` over a byte stream.

use backspace_storage::ByteStream;
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Chunk size handed to the store: large enough for few wake-ups, small enough to keep memory
/// flat (the channel holds at most [`CHANNEL_CHUNKS`] of them).
const CHUNK: usize = 256 * 1024;
const CHANNEL_CHUNKS: usize = 4;

/// A `Write` whose bytes come out of [`ChannelWriter::stream`] in order. It hashes and counts
/// what passes, and fails with `Interrupted` once `cancel` is set, so a cancelled job stops at
/// its next write.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    written: u64,
    cancel: Arc<AtomicBool>,
    closed: bool,
}

/// The reading end of a [`ChannelWriter`].
pub fn channel(cancel: Arc<AtomicBool>) -> (ChannelWriter, ByteStream) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let stream: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let writer = ChannelWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
        hasher: blake3::Hasher::new(),
        written: 0,
        cancel,
        closed: false,
    };
    (writer, stream)
}

pub fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the job was cancelled")
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the storage target stopped reading"))
    }

    /// Flushes and ends the stream; returns the BLAKE3 (hex) and the size of all bytes.
    pub fn close(mut self) -> io::Result<(String, u64)> {
        self.send_buf()?;
        self.closed = true;
        Ok((self.hasher.finalize().to_hex().to_string(), self.written))
    }
}

impl Drop for ChannelWriter {
    // A writer dropped without `close` (an error, a cancel, a panic) must not look like a
    // finished stream: the store would keep a truncated archive. It ends the stream with an
    // error instead, and the store discards what it received. Runs on the blocking thread that
    // owns the writer.
    fn drop(&mut self) {
        if !self.closed {
            let _ = self
                .tx
                .blocking_send(Err(io::Error::other("the archive was not finished")));
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        self.hasher.update(data);
        self.written += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking `Read` over an async byte stream; for use on blocking threads only.
pub struct StreamReader {
    stream: ByteStream,
    handle: Handle,
    current: Bytes,
    done: bool,
}

impl StreamReader {
    pub fn new(stream: ByteStream, handle: Handle) -> Self {
        Self {
            stream,
            handle,
            current: Bytes::new(),
            done: false,
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => self.done = true,
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Opens a blob for reading from a blocking thread: a plain file on a local store, else a
/// [`StreamReader`] over the store's stream.
pub fn open_blob(
    blobs: &dyn backspace_storage::BlobStore,
    key: &backspace_storage::BlobKey,
    handle: &Handle,
) -> Result<Box<dyn Read>, backspace_storage::StorageError> {
    match blobs.open_blocking(key) {
        Some(file) => Ok(Box::new(file?)),
        None => Ok(Box::new(StreamReader::new(
            handle.block_on(blobs.get(key))?,
            handle.clone(),
        ))),
    }
}
