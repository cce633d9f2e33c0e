//! Every magic string and number of the archive format, in one place.
//!
//! Changing any value here changes the bytes of archives this crate writes (and the golden test
//! will say so). Changing [`FORMAT_NAME`], [`FORMAT_VERSION`] or [`MANIFEST_NAME`] changes what
//! readers accept.

/// The `format` field every manifest carries.
pub const FORMAT_NAME: &str = "backspace-portal-backup";

/// The only manifest `version` this crate writes and reads. Readers refuse any other.
pub const FORMAT_VERSION: u32 = 1;

/// The name of the manifest entry: always the last entry of the tar stream, at its root.
pub const MANIFEST_NAME: &str = "manifest.json";

/// File name extension (without the leading dot) of a zstd-compressed archive.
pub const ZSTD_EXTENSION: &str = "tar.zst";

/// File name extension (without the leading dot) of a gzip-compressed archive.
pub const GZIP_EXTENSION: &str = "tar.gz";

/// zstd compression level the writer uses.
pub const ZSTD_LEVEL: i32 = 3;

/// gzip (deflate) compression level the writer uses.
pub const GZIP_LEVEL: u32 = 6;

/// Permission bits written in every tar header.
pub const TAR_MODE: u32 = 0o644;

/// Modification time written in every tar header (seconds since the epoch), so output is
/// deterministic.
pub const TAR_MTIME: u64 = 0;

/// Owner and group id written in every tar header; user and group names are left empty.
pub const TAR_OWNER_ID: u64 = 0;

/// Size of the buffer entry bytes are copied and hashed through. Memory per archive does not
/// grow with entry sizes.
pub const COPY_BUFFER_SIZE: usize = 64 * 1024;

/// Longest entry path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Longest path segment (the text between two `/`), in bytes.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Largest manifest a reader accepts, in bytes. The manifest is parsed in memory.
pub const MAX_MANIFEST_SIZE: u64 = 256 * 1024 * 1024;

/// Length of a BLAKE3 digest in lower-case hex.
pub const DIGEST_HEX_LEN: usize = 64;

/// Most bytes the reader reserves up front for the manifest, whatever size its header claims.
pub const MANIFEST_PREALLOC_LIMIT: usize = 1024 * 1024;

/// Longest untrusted path text an error message carries, in characters.
pub const SHOWN_PATH_CHARS: usize = 200;

/// Longest underlying I/O message a "truncated or corrupt" error carries, in characters.
pub const SHOWN_MESSAGE_CHARS: usize = 300;
