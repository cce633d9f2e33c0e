//! The backspace backup archive format, version 1.
//!
//! This crate owns the bytes of a backup archive and nothing else: how entries are laid out, how
//! they are compressed, how their integrity is recorded and checked. What the entries mean
//! (portals, database rows, files), where archives are stored and how they travel over HTTP
//! belong to other crates. It is synchronous `std::io`: callers run it on blocking threads.
//!
//! # Layout
//!
//! An archive is a tar stream compressed as a whole with zstd (level 3, with the frame checksum;
//! the default, file extension `.tar.zst`) or gzip (level 6, `.tar.gz`). The tar stream holds, in
//! order:
//!
//! 1. the caller's entries, in the order they were added, each a regular file with a GNU header
//!    (mode `0o644`, mtime 0, uid and gid 0, empty user and group names, so the same input gives
//!    the same bytes); a path longer than the 100-byte name field is carried by a GNU long-name
//!    (`././@LongLink`, type `L`) header right before its entry;
//! 2. the manifest, a regular file named `manifest.json`, as the **last** entry;
//! 3. the tar end marker (zero blocks), and nothing else.
//!
//! The manifest is compact UTF-8 JSON with exactly these fields, in this order:
//!
//! ```json
//! {"format":"backspace-portal-backup","version":1,"createdAt":1700000000000,
//!  "meta":{"alias":"acme"},
//!  "entries":[{"path":"portal.json","size":42,"blake3":"<64 lower-case hex>"}]}
//! ```
//!
//! - `format`: always `backspace-portal-backup`;
//! - `version`: the format version, `1`;
//! - `createdAt`: Unix milliseconds, given by the caller;
//! - `meta`: the caller's JSON metadata (portal alias, id, ...), opaque to this crate;
//! - `entries`: one line per entry, in archive order: `path`, `size` in bytes, and `blake3`, the
//!   BLAKE3 digest of the entry's bytes in lower-case hex.
//!
//! # Invariants
//!
//! Every archive [`ArchiveWriter`] makes, and every archive [`ArchiveReader`] accepts, holds:
//!
//! - every entry path is a valid [`EntryPath`]: relative, `/`-separated, segments of
//!   `[A-Za-z0-9._-]` that are not `.` or `..`, bounded in length; `manifest.json` is reserved;
//! - entries are regular files only: no directories, links, devices, fifos, sparse files or PAX
//!   headers;
//! - no path appears twice;
//! - every entry appears in the manifest with its size and digest, and the manifest lists nothing
//!   else;
//! - the manifest is the last entry; only zero padding follows the tar end marker, and nothing
//!   follows the compressed stream.
//!
//! A reader checks all of it while reading the archive once; until
//! [`read_all`](ArchiveReader::read_all) returns `Ok`, whatever it handed out is untrusted.
//!
//! # Why the manifest is last
//!
//! The digest of an entry is only known once the entry has been streamed. Putting the manifest
//! last lets the writer stream every entry straight from its source to the output, hashing on the
//! way, with fixed memory and without seeking or a second pass. The price is on the reading side:
//! a reader sees the entries before it can check them, which is why visitors must treat them as
//! untrusted until the end. A stream cut anywhere lacks its manifest (or its compressed end) and
//! is refused.
//!
//! # Versions
//!
//! The manifest's `version` says which rules an archive follows. Readers refuse any version they
//! do not know, naming it ([`FormatError::UnknownVersion`]), before looking at the rest of the
//! manifest; any change to the layout or the manifest's fields needs a new version. The magic
//! strings and numbers are all in [`consts`].

pub mod consts;

mod compression;
mod error;
mod hashing;
mod manifest;
mod path;
mod reader;
mod writer;

pub use compression::Compression;
pub use consts::{FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME};
pub use error::FormatError;
pub use manifest::{Manifest, ManifestEntry};
pub use path::EntryPath;
pub use reader::{verify, ArchiveReader};
pub use writer::ArchiveWriter;
