//! [`ArchiveWriter`]: streams entries into a new archive and ends it with the manifest.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::compression::{Compression, Compressor};
use crate::consts::{COPY_BUFFER_SIZE, MANIFEST_NAME, TAR_MODE, TAR_MTIME, TAR_OWNER_ID};
use crate::error::FormatError;
use crate::hashing::HashingReader;
use crate::manifest::{Manifest, ManifestEntry};
use crate::path::EntryPath;

/// Writes an archive to `W`, one entry at a time, never holding an entry in memory.
///
/// Call [`add`](Self::add) (or [`add_bytes`](Self::add_bytes)) per entry, then
/// [`finish`](Self::finish). A writer dropped without `finish` leaves a stream with no manifest,
/// which every reader refuses. If `add` fails after it began writing the entry (an I/O error, or a
/// source shorter or longer than declared), the stream is unusable and every later call fails with
/// [`FormatError::Poisoned`]; refusals that happen before anything is written (a reserved or
/// duplicate path) leave the writer usable.
pub struct ArchiveWriter<W: Write> {
    builder: tar::Builder<Compressor<W>>,
    entries: Vec<ManifestEntry>,
    paths: HashSet<EntryPath>,
    poisoned: bool,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `out`, compressed with `compression`.
    pub fn new(out: W, compression: Compression) -> Result<Self, FormatError> {
        let builder = tar::Builder::new(compression.compressor(out)?);
        Ok(Self {
            builder,
            entries: Vec::new(),
            paths: HashSet::new(),
            poisoned: false,
        })
    }

    /// Streams `size` bytes from `reader` into a new entry, computing BLAKE3 while copying through
    /// a fixed-size buffer (memory does not grow with the entry). Errors if the reader yields fewer
    /// or more than `size` bytes. Returns the lower-case hex digest.
    pub fn add(&mut self, path: &EntryPath, size: u64, reader: &mut dyn Read) -> Result<String, FormatError> {
        if self.poisoned {
            return Err(FormatError::Poisoned);
        }
        if path.is_reserved() {
            return Err(FormatError::ReservedPath(path.to_string()));
        }
        if self.paths.contains(path) {
            return Err(FormatError::Duplicate(path.to_string()));
        }
        // Bytes are about to be written: until the entry is complete, a failure ruins the stream.
        self.poisoned = true;
        let blake3 = self.write_entry(path, size, reader)?;
        self.poisoned = false;
        self.paths.insert(path.clone());
        self.entries.push(ManifestEntry {
            path: path.to_string(),
            size,
            blake3: blake3.clone(),
        });
        Ok(blake3)
    }

    /// [`add`](Self::add) for bytes already in memory.
    pub fn add_bytes(&mut self, path: &EntryPath, bytes: &[u8]) -> Result<String, FormatError> {
        self.add(path, bytes.len() as u64, &mut &*bytes)
    }

    /// The manifest lines of the entries added so far, in order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// Writes `manifest.json` as the last entry, finishes the tar stream and the compressor,
    /// flushes, and returns the inner writer and the manifest.
    pub fn finish(self, created_at: i64, meta: serde_json::Value) -> Result<(W, Manifest), FormatError> {
        if self.poisoned {
            return Err(FormatError::Poisoned);
        }
        let Self {
            mut builder, entries, ..
        } = self;
        let manifest = Manifest::new(created_at, meta, entries);
        let json = manifest.to_json()?;
        let mut header = regular_header(json.len() as u64);
        builder.append_data(&mut header, MANIFEST_NAME, json.as_slice())?;
        let mut out = builder.into_inner()?.finish()?;
        out.flush()?;
        Ok((out, manifest))
    }

    fn write_entry(&mut self, path: &EntryPath, size: u64, reader: &mut dyn Read) -> Result<String, FormatError> {
        let mut header = regular_header(size);
        let mut source = HashingReader::new((&mut *reader).take(size));
        // The tar builder copies until the source ends; the buffer makes the source and the hasher
        // see large reads while memory stays fixed.
        let buffered = BufReader::with_capacity(COPY_BUFFER_SIZE, &mut source);
        self.builder
            .append_data(&mut header, Path::new(path.as_str()), buffered)?;

        let (copied, blake3) = (source.count(), source.hex_digest());
        if copied != size {
            return Err(FormatError::SourceTooShort {
                path: path.to_string(),
                expected: size,
                actual: copied,
            });
        }
        if yields_more(reader)? {
            return Err(FormatError::SourceTooLong {
                path: path.to_string(),
                expected: size,
            });
        }
        Ok(blake3)
    }
}

/// Whether `reader` has at least one more byte.
fn yields_more(reader: &mut dyn Read) -> io::Result<bool> {
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The header of a regular file of `size` bytes, with the fixed metadata that makes output
/// deterministic (mode 0o644, mtime 0, owner 0:0, empty owner names). The builder adds the path
/// (with a GNU long-name header when it does not fit) and the checksum.
fn regular_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(TAR_MODE);
    header.set_mtime(TAR_MTIME);
    header.set_uid(TAR_OWNER_ID);
    header.set_gid(TAR_OWNER_ID);
    header
}
