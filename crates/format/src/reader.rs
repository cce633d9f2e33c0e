//! [`ArchiveReader`]: reads an archive once, hands every entry to a visitor, and checks it all
//! against the manifest.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use crate::compression::Compression;
use crate::consts::{COPY_BUFFER_SIZE, MANIFEST_NAME, MANIFEST_PREALLOC_LIMIT, MAX_MANIFEST_SIZE, MAX_PATH_LEN};
use crate::error::{corrupt, corrupt_io, shown_path, FormatError};
use crate::hashing::HashingReader;
use crate::manifest::Manifest;
use crate::path::EntryPath;

/// Reads an archive from `R`.
///
/// The tar stream is walked header by header (raw): GNU long-name headers are honoured only when
/// their name is at most 1024 bytes and is followed by the entry it names; PAX headers and every
/// other kind of entry but a regular file are refused. Nothing is ever written to disk.
pub struct ArchiveReader<R: Read> {
    input: R,
    compression: Compression,
}

/// An entry seen in the archive: its path, size and digest.
struct Seen {
    path: EntryPath,
    size: u64,
    blake3: String,
}

impl<R: Read> ArchiveReader<R> {
    /// A reader of `input`, compressed with `compression`. Nothing is read until
    /// [`read_all`](Self::read_all).
    pub fn new(input: R, compression: Compression) -> Self {
        Self { input, compression }
    }

    /// Reads the whole archive once. For every entry except the manifest it validates the path
    /// ([`EntryPath`] rules), refuses anything but a regular file, refuses duplicates, and calls
    /// `visit(path, size, reader)` where `reader` yields exactly the entry's bytes; the digest is
    /// computed underneath while the visitor reads (bytes the visitor does not read are drained and
    /// hashed). After the last entry it requires `manifest.json` to have been the final entry and
    /// only zero padding to follow, parses the manifest, checks format name and version, and checks
    /// that the archive's entries equal the manifest's exactly, with equal sizes and digests.
    ///
    /// Any failure returns an error. The caller must treat everything visited as untrusted until
    /// this returns `Ok`.
    pub fn read_all(
        self,
        mut visit: impl FnMut(&EntryPath, u64, &mut dyn Read) -> Result<(), FormatError>,
    ) -> Result<Manifest, FormatError> {
        let mut archive = tar::Archive::new(self.compression.decompressor(self.input).map_err(corrupt)?);
        archive.set_ignore_zeros(false);
        let mut buf = vec![0u8; COPY_BUFFER_SIZE];
        let mut seen: Vec<Seen> = Vec::new();
        let mut paths: HashSet<EntryPath> = HashSet::new();
        let mut manifest_bytes: Option<Vec<u8>> = None;
        let mut long_name: Option<Vec<u8>> = None;

        for entry in archive.entries().map_err(corrupt)?.raw(true) {
            let mut entry = entry.map_err(corrupt)?;
            if manifest_bytes.is_some() {
                return Err(FormatError::ManifestNotLast);
            }
            let kind = entry.header().entry_type();
            let size = entry.size();

            if kind.is_gnu_longname() {
                if long_name.is_some() {
                    return Err(corrupt(invalid_data("two GNU long-name headers in a row")));
                }
                long_name = Some(read_long_name(&mut entry, size)?);
                continue;
            }
            let raw_path = match long_name.take() {
                Some(name) => name,
                None => entry.header().path_bytes().into_owned(),
            };
            if kind != tar::EntryType::Regular {
                return Err(FormatError::NotARegularFile {
                    path: shown_path(&raw_path),
                    kind: kind_name(kind),
                });
            }
            let text = String::from_utf8(raw_path).map_err(|e| FormatError::InvalidPath {
                path: shown_path(e.as_bytes()),
                reason: "has a character outside [A-Za-z0-9._-]",
            })?;

            if text == MANIFEST_NAME {
                manifest_bytes = Some(read_manifest(&mut entry, size)?);
                continue;
            }

            let path = EntryPath::new(text)?;
            if paths.contains(&path) {
                return Err(FormatError::Duplicate(path.into_string()));
            }
            let mut reader = HashingReader::with_error_map(&mut entry, corrupt_io);
            visit(&path, size, &mut reader)?;
            reader.drain(&mut buf)?;
            if reader.count() != size {
                return Err(corrupt(truncated(&path, reader.count(), size)));
            }
            let blake3 = reader.hex_digest();
            paths.insert(path.clone());
            seen.push(Seen { path, size, blake3 });
        }
        if long_name.is_some() {
            return Err(corrupt(invalid_data(
                "a GNU long-name header is not followed by an entry",
            )));
        }
        let mut rest = archive.into_inner();
        expect_only_zeros(&mut rest, &mut buf)?;
        if rest.has_trailing_input().map_err(corrupt)? {
            return Err(FormatError::TrailingData);
        }

        let manifest = Manifest::from_json(&manifest_bytes.ok_or(FormatError::NoManifest)?)?;
        check_against_manifest(&seen, &manifest)?;
        Ok(manifest)
    }
}

/// Reads the archive and checks it against its manifest without looking at the entries.
pub fn verify<R: Read>(input: R, compression: Compression) -> Result<Manifest, FormatError> {
    ArchiveReader::new(input, compression).read_all(|_, _, _| Ok(()))
}

/// Reads the name carried by a GNU long-name header, refusing one too long to be a valid path
/// before reading it.
fn read_long_name(entry: &mut impl Read, size: u64) -> Result<Vec<u8>, FormatError> {
    // The stored name ends with one NUL.
    if size > MAX_PATH_LEN as u64 + 1 {
        return Err(FormatError::InvalidPath {
            path: format!("(a GNU long name of {size} bytes)"),
            reason: "is longer than 1024 bytes",
        });
    }
    let mut name = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut name).map_err(corrupt)?;
    if name.len() as u64 != size {
        return Err(corrupt(invalid_data("a GNU long-name header is cut short")));
    }
    if name.last() == Some(&0) {
        name.pop();
    }
    Ok(name)
}

fn read_manifest(entry: &mut impl Read, size: u64) -> Result<Vec<u8>, FormatError> {
    if size > MAX_MANIFEST_SIZE {
        return Err(FormatError::BadManifest(format!(
            "it is {size} bytes, more than the {MAX_MANIFEST_SIZE} bytes allowed"
        )));
    }
    let mut bytes = Vec::with_capacity((size as usize).min(MANIFEST_PREALLOC_LIMIT));
    entry.read_to_end(&mut bytes).map_err(corrupt)?;
    if bytes.len() as u64 != size {
        return Err(corrupt(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{MANIFEST_NAME} ended after {} of its {size} bytes", bytes.len()),
        )));
    }
    Ok(bytes)
}

/// Reads what follows the tar end marker to the end of the decompressed stream (which also makes
/// the decompressor check the stream's own end and checksum), refusing anything but zeros.
fn expect_only_zeros(rest: &mut impl Read, buf: &mut [u8]) -> Result<(), FormatError> {
    loop {
        let n = match rest.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(FormatError::TrailingData);
        }
    }
}

/// Requires the archive's entries and the manifest's lines to be the same set, with equal sizes
/// and digests. Reports the first disagreement in archive order, then in manifest order.
fn check_against_manifest(seen: &[Seen], manifest: &Manifest) -> Result<(), FormatError> {
    let mut listed: HashMap<&str, (u64, &str)> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), (e.size, e.blake3.as_str())))
        .collect();
    for entry in seen {
        let Some((size, blake3)) = listed.remove(entry.path.as_str()) else {
            return Err(FormatError::MissingFromManifest(entry.path.to_string()));
        };
        if size != entry.size {
            return Err(FormatError::SizeMismatch {
                path: entry.path.to_string(),
                expected: size,
                actual: entry.size,
            });
        }
        if blake3 != entry.blake3 {
            return Err(FormatError::DigestMismatch {
                path: entry.path.to_string(),
            });
        }
    }
    match manifest.entries.iter().find(|e| listed.contains_key(e.path.as_str())) {
        Some(missing) => Err(FormatError::MissingEntry(missing.path.clone())),
        None => Ok(()),
    }
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Directory => "directory".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::Continuous => "contiguous file".into(),
        tar::EntryType::GNUSparse => "GNU sparse file".into(),
        tar::EntryType::GNULongLink => "GNU long link name".into(),
        tar::EntryType::XHeader => "PAX extended header".into(),
        tar::EntryType::XGlobalHeader => "PAX global header".into(),
        other => format!("tar entry of type {:?}", other.as_byte() as char),
    }
}

fn invalid_data(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

fn truncated(path: &EntryPath, actual: u64, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("entry {:?} ended after {actual} of its {size} bytes", path.as_str()),
    )
}
