//! Pins the archive bytes and the manifest layout. If this test fails, the format changed:
//! either that is a bug, or it needs a new format version (see the crate docs).

mod common;

use std::io::Read;

use backspace_format::{verify, ArchiveWriter, Compression, EntryPath};
use common::{decompress, hex_digest};
use serde_json::json;

/// BLAKE3 of the zstd-compressed archive. It also depends on the zstd library's encoder: if only
/// this constant changes after a zstd upgrade while `GOLDEN_TAR_BLAKE3` holds, re-record it.
const GOLDEN_ARCHIVE_BLAKE3: &str = "3b6cf5d033fff5a1e8ed53278744c35f5e78964a9e995d93d29cbbc9f106e409";

/// BLAKE3 of the decompressed tar stream: the layout, independent of the compressor.
const GOLDEN_TAR_BLAKE3: &str = "06370b15c3905e83dd5eb9c3cbd90b715a56727c0ef6a5e66524b591b1387cc9";

const GOLDEN_MANIFEST: &str = concat!(
    r#"{"format":"backspace-portal-backup","version":1,"createdAt":0,"meta":{"alias":"golden"},"entries":["#,
    r#"{"path":"portal.json","size":25,"blake3":"dc23381008bced8884b1fb655de37a95a4c886e0f03bce63dbf2067f1b07ef61"},"#,
    r#"{"path":"empty.bin","size":0,"blake3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},"#,
    r#"{"path":"files/0001/body.txt","size":17,"blake3":"df962723b533618f67d7a5fb59b4efd027c233424cd635f60623fa32d2d1304b"}]}"#,
);

fn golden_archive() -> Vec<u8> {
    let mut writer = ArchiveWriter::new(Vec::new(), Compression::Zstd).unwrap();
    writer
        .add_bytes(&EntryPath::new("portal.json").unwrap(), br#"{"alias":"golden","id":1}"#)
        .unwrap();
    writer.add_bytes(&EntryPath::new("empty.bin").unwrap(), b"").unwrap();
    writer
        .add_bytes(&EntryPath::new("files/0001/body.txt").unwrap(), b"hello, backspace\n")
        .unwrap();
    let (bytes, _) = writer.finish(0, json!({"alias": "golden"})).unwrap();
    bytes
}

#[test]
fn golden_archive_bytes_and_manifest_are_pinned() {
    let bytes = golden_archive();
    let tar = decompress(&bytes, Compression::Zstd);

    let mut archive = tar::Archive::new(tar.as_slice());
    let mut last = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        last = Some((entry.path().unwrap().to_string_lossy().into_owned(), text));
    }
    let (name, manifest_text) = last.unwrap();
    assert_eq!(name, "manifest.json");
    assert_eq!(manifest_text, GOLDEN_MANIFEST);
    assert_eq!(hex_digest(&tar), GOLDEN_TAR_BLAKE3);
    assert_eq!(hex_digest(&bytes), GOLDEN_ARCHIVE_BLAKE3);

    let manifest = verify(bytes.as_slice(), Compression::Zstd).unwrap();
    assert_eq!(manifest.meta, json!({"alias": "golden"}));
    assert_eq!(manifest.created_at, 0);
}
