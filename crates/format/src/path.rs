//! [`EntryPath`]: the validated name of an archive entry.

use std::fmt;

use crate::consts::{MANIFEST_NAME, MAX_PATH_LEN, MAX_SEGMENT_LEN};
use crate::error::{shown_path, FormatError};

/// A validated entry path: non-empty, relative, `/`-separated segments; each segment non-empty,
/// not `.` or `..`, at most 255 bytes, only `[A-Za-z0-9._-]` characters; total length at most
/// 1024 bytes; no leading or trailing `/`.
///
/// The name `manifest.json` is a valid path but reserved: the writer refuses it as a user entry,
/// and the reader treats the root entry of that name as the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryPath(String);

impl EntryPath {
    /// Validates `s` as an entry path.
    pub fn new(s: impl Into<String>) -> Result<Self, FormatError> {
        let s = s.into();
        match problem(&s) {
            None => Ok(Self(s)),
            Some(reason) => Err(FormatError::InvalidPath {
                path: shown_path(s.as_bytes()),
                reason,
            }),
        }
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether this is the name reserved for the manifest.
    pub fn is_reserved(&self) -> bool {
        self.0 == MANIFEST_NAME
    }
}

/// What is wrong with `s` as an entry path, if anything.
fn problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty");
    }
    if s.len() > MAX_PATH_LEN {
        return Some("is longer than 1024 bytes");
    }
    if s.starts_with('/') {
        return Some("is absolute (starts with '/')");
    }
    if s.ends_with('/') {
        return Some("ends with '/'");
    }
    for segment in s.split('/') {
        if segment.is_empty() {
            return Some("has an empty segment ('//')");
        }
        if segment == "." || segment == ".." {
            return Some("has a '.' or '..' segment");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Some("has a segment longer than 255 bytes");
        }
        if !segment.bytes().all(is_allowed_byte) {
            return Some("has a character outside [A-Za-z0-9._-]");
        }
    }
    None
}

fn is_allowed_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EntryPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntryPath {
    type Error = FormatError;

    fn try_from(s: String) -> Result<Self, FormatError> {
        Self::new(s)
    }
}

impl TryFrom<&str> for EntryPath {
    type Error = FormatError;

    fn try_from(s: &str) -> Result<Self, FormatError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> &'static str {
        match EntryPath::new(s) {
            Err(FormatError::InvalidPath { reason, .. }) => reason,
            other => panic!("{s:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_paths() {
        for s in [
            "a",
            "manifest.json",
            "files/12/body.bin",
            "portal.json",
            "A-Z_a-z.0-9",
            ".hidden",
            "..a",
            "a..",
            "x/.../y",
        ] {
            let p = EntryPath::new(s).unwrap_or_else(|e| panic!("{s:?} refused: {e}"));
            assert_eq!(p.as_str(), s);
            assert_eq!(p.to_string(), s);
        }
    }

    #[test]
    fn refuses_empty_and_absolute_and_slashes() {
        assert_eq!(reason(""), "is empty");
        assert_eq!(reason("/etc/passwd"), "is absolute (starts with '/')");
        assert_eq!(reason("/"), "is absolute (starts with '/')");
        assert_eq!(reason("dir/"), "ends with '/'");
        assert_eq!(reason("a//b"), "has an empty segment ('//')");
    }

    #[test]
    fn refuses_dot_segments() {
        for s in [".", "..", "../evil", "a/../b", "a/./b", "a/..", "./a"] {
            assert_eq!(reason(s), "has a '.' or '..' segment", "{s:?}");
        }
    }

    #[test]
    fn refuses_characters_outside_the_set() {
        for s in ["a b", "a\\b", "a:b", "é", "a\0b", "a\nb", "C:", "~x", "a*", "%2e%2e"] {
            assert_eq!(reason(s), "has a character outside [A-Za-z0-9._-]", "{s:?}");
        }
    }

    #[test]
    fn enforces_length_limits() {
        let seg255 = "s".repeat(MAX_SEGMENT_LEN);
        assert!(EntryPath::new(seg255.clone()).is_ok());
        assert_eq!(
            reason(&"s".repeat(MAX_SEGMENT_LEN + 1)),
            "has a segment longer than 255 bytes"
        );

        let base = vec!["s".repeat(100); 10].join("/");
        let at_limit = format!("{base}/{}", "t".repeat(14));
        assert_eq!(at_limit.len(), MAX_PATH_LEN);
        assert!(EntryPath::new(at_limit).is_ok());
        let over = format!("{base}/{}", "t".repeat(15));
        assert_eq!(reason(&over), "is longer than 1024 bytes");
    }

    #[test]
    fn reasons_agree_with_the_limits() {
        assert!(reason(&"s".repeat(MAX_SEGMENT_LEN + 1)).contains(&MAX_SEGMENT_LEN.to_string()));
        let long = vec!["s".repeat(MAX_SEGMENT_LEN); MAX_PATH_LEN / MAX_SEGMENT_LEN + 1].join("/");
        assert!(reason(&long).contains(&MAX_PATH_LEN.to_string()));
    }

    #[test]
    fn reserved_name_is_valid_but_flagged() {
        assert!(EntryPath::new(MANIFEST_NAME).unwrap().is_reserved());
        assert!(!EntryPath::new("dir/manifest.json").unwrap().is_reserved());
        assert!(!EntryPath::new("Manifest.json").unwrap().is_reserved());
    }

    #[test]
    fn error_text_is_escaped_and_cut() {
        let long = "x".repeat(5000);
        let message = EntryPath::new(long).unwrap_err().to_string();
        assert!(message.len() < 400, "{message}");
        let message = EntryPath::new("a\nb").unwrap_err().to_string();
        assert!(message.contains("a\\nb"), "{message}");
    }

    #[test]
    fn orders_and_compares_by_text() {
        let a = EntryPath::new("a").unwrap();
        let b = EntryPath::new("b").unwrap();
        assert!(a < b);
        assert_eq!(a, EntryPath::try_from("a").unwrap());
    }
}
