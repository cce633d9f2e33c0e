//! [`Manifest`]: the last entry of every archive, listing every other entry with its digest.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::consts::{DIGEST_HEX_LEN, FORMAT_NAME, FORMAT_VERSION};
use crate::error::FormatError;
use crate::path::EntryPath;

/// One line of the manifest: an entry of the archive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestEntry {
    /// The entry's path, valid by the [`EntryPath`] rules.
    pub path: String,
    /// The entry's length in bytes.
    pub size: u64,
    /// BLAKE3 digest of the entry's bytes, 64 lower-case hex characters.
    pub blake3: String,
}

/// The archive's table of contents, stored as the JSON entry `manifest.json`.
///
/// Serialized compactly with the fields in declaration order:
/// `{"format":…,"version":…,"createdAt":…,"meta":…,"entries":[{"path":…,"size":…,"blake3":…},…]}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`], `"backspace-portal-backup"`.
    pub format: String,
    /// The format version; this crate writes and reads [`FORMAT_VERSION`] only.
    pub version: u32,
    /// When the archive was made, in Unix milliseconds, as the caller said.
    pub created_at: i64,
    /// The caller's metadata (portal alias, id, ...), opaque to this crate.
    pub meta: serde_json::Value,
    /// Every entry of the archive except the manifest, in archive order.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// A manifest of the current format and version.
    pub fn new(created_at: i64, meta: serde_json::Value, entries: Vec<ManifestEntry>) -> Self {
        Self {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            created_at,
            meta,
            entries,
        }
    }

    /// Sum of the sizes of all entries.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// The manifest's bytes as stored in the archive: compact JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, FormatError> {
        serde_json::to_vec(self).map_err(|e| FormatError::BadManifest(e.to_string()))
    }

    /// Parses and checks a stored manifest: the format name first, then the version (an unknown
    /// one is refused by number before anything else is looked at), then the shape, then every
    /// line (valid non-reserved path, lower-hex digest, no path twice).
    pub fn from_json(bytes: &[u8]) -> Result<Self, FormatError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| FormatError::BadManifest(format!("not JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| bad("is not a JSON object"))?;

        match object.get("format") {
            Some(serde_json::Value::String(format)) if format == FORMAT_NAME => {}
            Some(serde_json::Value::String(format)) => {
                return Err(FormatError::WrongFormat(crate::error::shown_path(format.as_bytes())))
            }
            Some(_) => return Err(bad("\"format\" is not a string")),
            None => return Err(bad("has no \"format\" field")),
        }
        let version = object.get("version").ok_or_else(|| bad("has no \"version\" field"))?;
        let version = version
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("\"version\" is not a whole number"))?;
        if version != FORMAT_VERSION {
            return Err(FormatError::UnknownVersion(version));
        }

        let manifest: Manifest = serde_json::from_value(value).map_err(|e| FormatError::BadManifest(e.to_string()))?;
        manifest.check_entries()?;
        Ok(manifest)
    }

    fn check_entries(&self) -> Result<(), FormatError> {
        let mut seen = HashSet::with_capacity(self.entries.len());
        for entry in &self.entries {
            let path = EntryPath::new(entry.path.as_str())
                .map_err(|e| FormatError::BadManifest(format!("it lists an invalid path: {e}")))?;
            if path.is_reserved() {
                return Err(bad("it lists the manifest itself as an entry"));
            }
            if !is_lower_hex_digest(&entry.blake3) {
                return Err(FormatError::BadManifest(format!(
                    "the digest of {:?} is not {DIGEST_HEX_LEN} lower-case hex characters",
                    entry.path
                )));
            }
            if !seen.insert(entry.path.as_str()) {
                return Err(FormatError::BadManifest(format!(
                    "it lists {:?} more than once",
                    entry.path
                )));
            }
        }
        Ok(())
    }
}

fn bad(reason: &str) -> FormatError {
    FormatError::BadManifest(reason.to_owned())
}

fn is_lower_hex_digest(s: &str) -> bool {
    s.len() == DIGEST_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    fn manifest_text(version: &str, entries: &str) -> String {
        format!(
            r#"{{"format":"backspace-portal-backup","version":{version},"createdAt":5,"meta":{{}},"entries":[{entries}]}}"#
        )
    }

    #[test]
    fn round_trips_through_json() {
        let manifest = Manifest::new(
            1_700_000_000_000,
            json!({"alias": "acme", "id": 7}),
            vec![ManifestEntry {
                path: "a/b".into(),
                size: 0,
                blake3: DIGEST.into(),
            }],
        );
        let text = manifest.to_json().unwrap();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            format!(
                r#"{{"format":"backspace-portal-backup","version":1,"createdAt":1700000000000,"meta":{{"alias":"acme","id":7}},"entries":[{{"path":"a/b","size":0,"blake3":"{DIGEST}"}}]}}"#
            )
        );
        assert_eq!(Manifest::from_json(&text).unwrap(), manifest);
    }

    #[test]
    fn refuses_unknown_version_by_number_even_with_another_shape() {
        let text = r#"{"format":"backspace-portal-backup","version":99,"somethingNew":true}"#;
        assert!(matches!(
            Manifest::from_json(text.as_bytes()),
            Err(FormatError::UnknownVersion(99))
        ));
        let message = Manifest::from_json(text.as_bytes()).unwrap_err().to_string();
        assert!(message.contains("99"), "{message}");
    }

    #[test]
    fn refuses_wrong_format_and_bad_versions() {
        let text = r#"{"format":"something-else","version":1}"#;
        assert!(
            matches!(Manifest::from_json(text.as_bytes()), Err(FormatError::WrongFormat(f)) if f == "something-else")
        );
        for version in ["-1", "1.5", "\"1\"", "4294967296", "null"] {
            let text = manifest_text(version, "");
            assert!(
                matches!(Manifest::from_json(text.as_bytes()), Err(FormatError::BadManifest(_))),
                "version {version}"
            );
        }
        assert!(matches!(Manifest::from_json(b"[]"), Err(FormatError::BadManifest(_))));
        assert!(matches!(Manifest::from_json(b"{"), Err(FormatError::BadManifest(_))));
        assert!(matches!(Manifest::from_json(b"{}"), Err(FormatError::BadManifest(_))));
    }

    #[test]
    fn refuses_unknown_fields_and_bad_lines() {
        let extra = r#"{"format":"backspace-portal-backup","version":1,"createdAt":5,"meta":{},"entries":[],"x":1}"#;
        assert!(matches!(
            Manifest::from_json(extra.as_bytes()),
            Err(FormatError::BadManifest(_))
        ));

        let line = |path: &str, digest: &str| format!(r#"{{"path":"{path}","size":1,"blake3":"{digest}"}}"#);
        let upper = DIGEST.to_uppercase();
        for entries in [
            line("../x", DIGEST),
            line("manifest.json", DIGEST),
            line("a", &upper),
            line("a", "abc"),
            format!("{},{}", line("a", DIGEST), line("a", DIGEST)),
        ] {
            let text = manifest_text("1", &entries);
            assert!(
                matches!(Manifest::from_json(text.as_bytes()), Err(FormatError::BadManifest(_))),
                "{entries}"
            );
        }
        let text = manifest_text("1", &format!("{},{}", line("a", DIGEST), line("b", DIGEST)));
        let manifest = Manifest::from_json(text.as_bytes()).unwrap();
        assert_eq!(manifest.total_size(), 2);
    }
}
