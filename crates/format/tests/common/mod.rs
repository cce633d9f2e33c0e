//! Helpers shared by the integration tests: pseudo-random data, compression, and a raw tar
//! builder that bypasses `ArchiveWriter` (and the tar crate's own path checks) to make hostile
//! archives.

#![allow(dead_code)]

use std::io::Write;

use backspace_format::Compression;
use tar::{EntryType, Header};

/// `len` pseudo-random bytes from a xorshift64 generator seeded with `seed` (non-zero).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn hex_digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

pub fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(tar).unwrap();
            encoder.finish().unwrap()
        }
    }
}

pub fn decompress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::Zstd => zstd::decode_all(bytes).unwrap(),
        Compression::Gzip => {
            let mut out = Vec::new();
            std::io::copy(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
            out
        }
    }
}

/// A manifest's JSON text listing `entries` with their real sizes and digests.
pub fn manifest_json(version: u32, entries: &[(&str, &[u8])]) -> String {
    let lines: Vec<String> = entries
        .iter()
        .map(|(path, data)| {
            format!(
                r#"{{"path":"{path}","size":{},"blake3":"{}"}}"#,
                data.len(),
                hex_digest(data)
            )
        })
        .collect();
    format!(
        r#"{{"format":"backspace-portal-backup","version":{version},"createdAt":0,"meta":{{}},"entries":[{}]}}"#,
        lines.join(",")
    )
}

/// Builds tar streams header by header, with names written raw into the header.
pub struct RawTar {
    builder: tar::Builder<Vec<u8>>,
}

impl RawTar {
    pub fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// An entry of any type, its name copied as is into the 100-byte name field.
    pub fn entry(mut self, kind: EntryType, name: &[u8], link: Option<&[u8]>, data: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name);
            if let Some(link) = link {
                gnu.linkname[..link.len()].copy_from_slice(link);
            }
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(EntryType::Regular, name.as_bytes(), None, data)
    }

    /// A GNU long-name header carrying `name`, for the entry that follows.
    pub fn long_name(self, name: &[u8]) -> Self {
        let mut data = name.to_vec();
        data.push(0);
        self.entry(EntryType::GNULongName, b"././@LongLink", None, &data)
    }

    pub fn manifest(self, json: &str) -> Self {
        self.file("manifest.json", json.as_bytes())
    }

    /// The tar bytes, with the end marker.
    pub fn into_tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }

    pub fn compressed(self, compression: Compression) -> Vec<u8> {
        compress(&self.into_tar(), compression)
    }
}
