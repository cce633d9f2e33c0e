//! Archives written by `ArchiveWriter` read back identically, and the writer refuses what it must.

mod common;

use std::collections::BTreeMap;
use std::io::{self, Read};

use backspace_format::{verify, ArchiveReader, ArchiveWriter, Compression, EntryPath, FormatError, Manifest};
use common::{decompress, hex_digest, pseudo_random};
use serde_json::json;

const FIVE_MIB: usize = 5 * 1024 * 1024;

fn path(s: &str) -> EntryPath {
    EntryPath::new(s).unwrap()
}

/// The entries of the round-trip archive, in order.
fn sample_entries() -> Vec<(String, Vec<u8>)> {
    let long = format!("files/{}/body.bin", "n".repeat(150));
    vec![
        ("portal.json".to_owned(), br#"{"alias":"acme","name":"Acme"}"#.to_vec()),
        ("empty".to_owned(), Vec::new()),
        (
            "files/big.bin".to_owned(),
            pseudo_random(FIVE_MIB, 0x9E37_79B9_7F4A_7C15),
        ),
        (long, pseudo_random(1000, 7)),
        ("files/odd-size.bin".to_owned(), pseudo_random(513, 11)),
    ]
}

fn write_sample(compression: Compression) -> (Vec<u8>, Manifest) {
    let mut writer = ArchiveWriter::new(Vec::new(), compression).unwrap();
    for (i, (name, data)) in sample_entries().iter().enumerate() {
        // Alternate the streaming and the in-memory entry points.
        let digest = if i % 2 == 0 {
            writer
                .add(&path(name), data.len() as u64, &mut data.as_slice())
                .unwrap()
        } else {
            writer.add_bytes(&path(name), data).unwrap()
        };
        assert_eq!(digest, hex_digest(data), "{name}");
    }
    writer
        .finish(1_700_000_000_123, json!({"alias": "acme", "id": 42}))
        .unwrap()
}

/// Reads every entry fully through the visitor.
fn read_everything(bytes: &[u8], compression: Compression) -> (BTreeMap<String, Vec<u8>>, Manifest) {
    let mut seen = BTreeMap::new();
    let manifest = ArchiveReader::new(bytes, compression)
        .read_all(|path, size, reader| {
            let mut data = Vec::new();
            reader.read_to_end(&mut data)?;
            assert_eq!(data.len() as u64, size, "{path}");
            assert!(seen.insert(path.to_string(), data).is_none(), "{path} visited twice");
            Ok(())
        })
        .unwrap();
    (seen, manifest)
}

fn round_trip(compression: Compression) {
    let entries = sample_entries();
    let (bytes, written) = write_sample(compression);

    assert_eq!(written.format, "backspace-portal-backup");
    assert_eq!(written.version, 1);
    assert_eq!(written.created_at, 1_700_000_000_123);
    assert_eq!(written.meta, json!({"alias": "acme", "id": 42}));
    assert_eq!(written.entries.len(), entries.len());
    for (line, (name, data)) in written.entries.iter().zip(&entries) {
        assert_eq!(&line.path, name);
        assert_eq!(line.size, data.len() as u64);
        assert_eq!(line.blake3, hex_digest(data));
    }
    // Compression did something: the 5 MiB of noise dominate, the rest is small.
    assert!(
        bytes.len() > FIVE_MIB && bytes.len() < FIVE_MIB + 64 * 1024,
        "{}",
        bytes.len()
    );

    let (seen, read) = read_everything(&bytes, compression);
    assert_eq!(read, written);
    assert_eq!(seen.len(), entries.len());
    for (name, data) in &entries {
        assert!(seen[name] == *data, "bytes of {name} differ");
    }

    // A visitor that reads only a little still gets the whole archive checked.
    let mut visited = 0;
    let partial = ArchiveReader::new(bytes.as_slice(), compression)
        .read_all(|_, _, reader| {
            let mut head = [0u8; 3];
            let n = reader.read(&mut head)?;
            assert!(n <= 3);
            visited += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(partial, written);
    assert_eq!(visited, entries.len());

    assert_eq!(verify(bytes.as_slice(), compression).unwrap(), written);
}

#[test]
fn round_trip_zstd() {
    round_trip(Compression::Zstd);
}

#[test]
fn round_trip_gzip() {
    round_trip(Compression::Gzip);
}

#[test]
fn output_is_deterministic_and_has_the_documented_tar_layout() {
    for compression in [Compression::Zstd, Compression::Gzip] {
        let (first, _) = write_sample(compression);
        let (second, _) = write_sample(compression);
        assert!(first == second, "{compression:?} output differs between two runs");

        let tar = decompress(&first, compression);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        let mut saw_long_name_header = false;
        for entry in archive.entries().unwrap().raw(true) {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mode().unwrap(), 0o644);
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            if header.entry_type() == tar::EntryType::GNULongName {
                saw_long_name_header = true;
                continue;
            }
            assert_eq!(header.entry_type(), tar::EntryType::Regular);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            names.push(String::from_utf8_lossy(&header.path_bytes()).into_owned());
        }
        assert!(saw_long_name_header, "the 150-byte segment needs a GNU long name");
        assert_eq!(names.len(), sample_entries().len() + 1);
        assert_eq!(names.last().unwrap(), "manifest.json");
        assert_eq!(
            Compression::from_file_name(&format!("x.{}", compression.extension())),
            Some(compression)
        );
    }
}

#[test]
fn an_empty_archive_round_trips() {
    let (bytes, manifest) = ArchiveWriter::new(Vec::new(), Compression::Zstd)
        .unwrap()
        .finish(0, json!(null))
        .unwrap();
    assert!(manifest.entries.is_empty());
    let read = ArchiveReader::new(bytes.as_slice(), Compression::Zstd)
        .read_all(|path, _, _| panic!("no entry expected, got {path}"))
        .unwrap();
    assert_eq!(read, manifest);
}

#[test]
fn reading_with_the_other_compression_fails() {
    let (bytes, _) = write_sample(Compression::Zstd);
    assert!(matches!(
        verify(bytes.as_slice(), Compression::Gzip),
        Err(FormatError::Io(_))
    ));
    let (bytes, _) = write_sample(Compression::Gzip);
    assert!(matches!(
        verify(bytes.as_slice(), Compression::Zstd),
        Err(FormatError::Io(_))
    ));
}

#[test]
fn writer_refuses_the_manifest_name_and_stays_usable() {
    let mut writer = ArchiveWriter::new(Vec::new(), Compression::Zstd).unwrap();
    let err = writer.add_bytes(&path("manifest.json"), b"{}").unwrap_err();
    assert!(
        matches!(&err, FormatError::ReservedPath(p) if p == "manifest.json"),
        "{err}"
    );
    let mut reader: &[u8] = b"{}";
    assert!(matches!(
        writer.add(&path("manifest.json"), 2, &mut reader),
        Err(FormatError::ReservedPath(_))
    ));

    writer.add_bytes(&path("a"), b"1").unwrap();
    assert!(matches!(writer.add_bytes(&path("a"), b"2"), Err(FormatError::Duplicate(p)) if p == "a"));

    // Nothing was written for the refused entries: the archive is valid and holds only "a".
    let (bytes, manifest) = writer.finish(0, json!({})).unwrap();
    assert_eq!(manifest.entries.len(), 1);
    assert_eq!(verify(bytes.as_slice(), Compression::Zstd).unwrap(), manifest);
}

#[test]
fn writer_refuses_a_short_source_and_is_then_poisoned() {
    let mut writer = ArchiveWriter::new(Vec::new(), Compression::Zstd).unwrap();
    let mut short: &[u8] = b"only ten b";
    let err = writer.add(&path("short"), 20, &mut short).unwrap_err();
    assert!(
        matches!(&err, FormatError::SourceTooShort { path, expected: 20, actual: 10 } if path == "short"),
        "{err}"
    );
    assert!(matches!(
        writer.add_bytes(&path("next"), b"x"),
        Err(FormatError::Poisoned)
    ));
    assert!(matches!(writer.finish(0, json!({})), Err(FormatError::Poisoned)));
}

#[test]
fn writer_refuses_a_long_source() {
    let mut writer = ArchiveWriter::new(Vec::new(), Compression::Gzip).unwrap();
    let mut long: &[u8] = b"eleven byte";
    let err = writer.add(&path("long"), 10, &mut long).unwrap_err();
    assert!(
        matches!(&err, FormatError::SourceTooLong { path, expected: 10 } if path == "long"),
        "{err}"
    );
    assert!(matches!(writer.finish(0, json!({})), Err(FormatError::Poisoned)));
}

#[test]
fn writer_passes_source_errors_through() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let mut writer = ArchiveWriter::new(Vec::new(), Compression::Zstd).unwrap();
    let err = writer.add(&path("x"), 5, &mut Broken).unwrap_err();
    assert!(
        matches!(&err, FormatError::Io(e) if e.to_string().contains("disk on fire")),
        "{err}"
    );
}

#[test]
fn a_dropped_writer_leaves_an_archive_readers_refuse() {
    let mut out = Vec::new();
    {
        let mut writer = ArchiveWriter::new(&mut out, Compression::Gzip).unwrap();
        writer.add_bytes(&path("a"), b"data").unwrap();
    }
    assert!(verify(out.as_slice(), Compression::Gzip).is_err());
}

#[test]
fn visitor_errors_stop_the_read() {
    let (bytes, _) = write_sample(Compression::Zstd);
    let mut calls = 0;
    let err = ArchiveReader::new(bytes.as_slice(), Compression::Zstd)
        .read_all(|path, _, _| {
            calls += 1;
            Err(FormatError::Visitor(format!("cannot store {path}")))
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(err.to_string(), "entry visitor failed: cannot store portal.json");
}
