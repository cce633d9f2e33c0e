//! Blob keys: relative, `/`-separated paths that cannot escape the store.

use std::fmt;

/// A validated blob key: non-empty segments of `[A-Za-z0-9._-]`, separated by `/`, none of them
/// `.` or `..`, no leading or trailing `/`. Keys are made by the server, never taken from a
/// client, but the check makes an escape from the store's root impossible by construction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey(String);

/// A string that is not a valid [`BlobKey`].
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a valid blob key")]
pub struct InvalidKey(pub String);

impl BlobKey {
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidKey> {
        let key = key.into();
        let valid = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if valid {
            Ok(Self(key))
        } else {
            Err(InvalidKey(key))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self/child`.
    pub fn join(&self, child: &str) -> Result<Self, InvalidKey> {
        Self::new(format!("{}/{child}", self.0))
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes_and_odd_characters() {
        for bad in ["", "/a", "a/", "a//b", "..", "a/../b", "./a", "a\\b", "a b", "a/\0"] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "portals/1/files/7.v1", "x-y_z.bin"] {
            assert_eq!(BlobKey::new(good).unwrap().as_str(), good);
        }
    }
}
