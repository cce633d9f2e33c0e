//! The one error type of the crate.

use std::io;

use crate::consts::{FORMAT_NAME, FORMAT_VERSION, SHOWN_MESSAGE_CHARS, SHOWN_PATH_CHARS};

/// Why writing or reading an archive failed.
///
/// Paths are the archive's own text: for a hostile archive they are shown escaped and cut to a
/// readable length.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// An entry path breaks the [`EntryPath`](crate::EntryPath) rules.
    #[error("invalid entry path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// The writer was asked to add an entry under a name the format reserves.
    #[error("entry path {0:?} is reserved for the archive's manifest")]
    ReservedPath(String),

    /// The archive holds something other than a regular file.
    #[error("entry {path:?} is a {kind}, and archives may hold only regular files")]
    NotARegularFile { path: String, kind: String },

    /// The same path appears twice.
    #[error("entry {0:?} appears more than once")]
    Duplicate(String),

    /// An entry's bytes do not have the digest its manifest line records.
    #[error("entry {path:?} does not match the digest in the manifest")]
    DigestMismatch { path: String },

    /// An entry's size differs from the size its manifest line records.
    #[error("entry {path:?} is {actual} bytes but the manifest says {expected}")]
    SizeMismatch { path: String, expected: u64, actual: u64 },

    /// The archive holds an entry the manifest does not list.
    #[error("entry {0:?} is in the archive but not in its manifest")]
    MissingFromManifest(String),

    /// The manifest lists an entry the archive does not hold.
    #[error("entry {0:?} is in the manifest but not in the archive")]
    MissingEntry(String),

    /// The stream ended without a manifest.
    #[error("the archive has no manifest: it is truncated or not a backspace backup")]
    NoManifest,

    /// Something follows the manifest.
    #[error("the archive's manifest is not its last entry")]
    ManifestNotLast,

    /// The manifest's version is one this reader does not know.
    #[error("the archive has format version {0}, which this reader does not know (it reads version {FORMAT_VERSION})")]
    UnknownVersion(u32),

    /// The manifest names another format.
    #[error("the manifest names format {0:?}, not {FORMAT_NAME:?}")]
    WrongFormat(String),

    /// The manifest is not valid JSON of the expected shape, or its content is inconsistent.
    #[error("the archive's manifest is invalid: {0}")]
    BadManifest(String),

    /// Non-zero bytes follow the end-of-archive marker of the tar stream.
    #[error("the archive has data after its end marker")]
    TrailingData,

    /// The source given to [`ArchiveWriter::add`](crate::ArchiveWriter::add) ended early.
    #[error("the source of entry {path:?} ended after {actual} of its {expected} bytes")]
    SourceTooShort { path: String, expected: u64, actual: u64 },

    /// The source given to [`ArchiveWriter::add`](crate::ArchiveWriter::add) had more bytes than declared.
    #[error("the source of entry {path:?} has more than its declared {expected} bytes")]
    SourceTooLong { path: String, expected: u64 },

    /// An earlier call failed after bytes were written; the archive writer cannot continue.
    #[error("the archive writer failed earlier and cannot continue")]
    Poisoned,

    /// A visitor passed to [`ArchiveReader::read_all`](crate::ArchiveReader::read_all) failed.
    #[error("entry visitor failed: {0}")]
    Visitor(String),

    /// Reading or writing bytes failed. A truncated or corrupt input surfaces here, with a message
    /// that says so.
    #[error("archive i/o failed: {0}")]
    Io(#[from] io::Error),
}

/// The text of an untrusted path, fit for an error message: lossy UTF-8, cut to a readable
/// length (the `Display` of the errors escapes control characters).
pub(crate) fn shown_path(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= SHOWN_PATH_CHARS {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(SHOWN_PATH_CHARS).collect();
    cut.push('…');
    cut
}

/// Wraps an I/O error met while reading an archive, so its message says what it means.
pub(crate) fn corrupt(err: io::Error) -> FormatError {
    FormatError::Io(corrupt_io(err))
}

/// Same as [`corrupt`], for code that must hand back an [`io::Error`]. The underlying message
/// may quote bytes of the hostile input (the tar parser does): it is escaped and cut.
pub(crate) fn corrupt_io(err: io::Error) -> io::Error {
    let mut message = String::from("the archive is truncated or corrupt: ");
    let text = err.to_string();
    for c in text.chars().take(SHOWN_MESSAGE_CHARS) {
        if c.is_control() {
            message.extend(c.escape_default());
        } else {
            message.push(c);
        }
    }
    if text.chars().nth(SHOWN_MESSAGE_CHARS).is_some() {
        message.push('…');
    }
    io::Error::new(err.kind(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_messages_are_escaped_and_cut() {
        let err = corrupt_io(io::Error::new(io::ErrorKind::InvalidData, "bad \u{1b}[31m byte"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "the archive is truncated or corrupt: bad \\u{1b}[31m byte"
        );
        let long = corrupt_io(io::Error::other("x".repeat(10_000))).to_string();
        assert!(long.len() < 400 && long.ends_with('…'), "{long}");
    }

    #[test]
    fn shown_paths_are_cut() {
        assert_eq!(shown_path(b"a/b"), "a/b");
        assert_eq!(shown_path(&[b'a', 0xff]), "a\u{fffd}");
        assert_eq!(
            shown_path("y".repeat(1000).as_bytes()).chars().count(),
            SHOWN_PATH_CHARS + 1
        );
    }
}
