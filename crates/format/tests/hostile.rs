//! Hostile and broken archives, built by hand with the `tar` crate (never through
//! `ArchiveWriter`), are each refused with the right error, without panicking.

mod common;

use backspace_format::{verify, ArchiveReader, Compression, FormatError, Manifest};
use common::{compress, manifest_json, pseudo_random, RawTar};
use tar::EntryType;

const BOTH: [Compression; 2] = [Compression::Zstd, Compression::Gzip];

fn check(raw: RawTar) -> Result<Manifest, FormatError> {
    verify(raw.compressed(Compression::Zstd).as_slice(), Compression::Zstd)
}

/// Asserts the result is an error and returns it.
fn refused(result: Result<Manifest, FormatError>) -> FormatError {
    match result {
        Ok(manifest) => panic!("archive accepted: {manifest:?}"),
        Err(err) => {
            eprintln!("REFUSED: {err}");
            err
        }
    }
}

#[test]
fn a_well_formed_hand_built_archive_is_accepted() {
    // The baseline the other cases break: if this failed, their refusals would prove nothing.
    let data = b"payload";
    for compression in BOTH {
        let raw = RawTar::new()
            .file("a", data)
            .file("dir/b", b"")
            .manifest(&manifest_json(1, &[("a", data), ("dir/b", b"")]));
        let manifest = verify(raw.compressed(compression).as_slice(), compression).unwrap();
        assert_eq!(manifest.entries.len(), 2);
    }
}

#[test]
fn parent_directory_entry_is_refused() {
    let raw = RawTar::new().file("../evil", b"x").manifest(&manifest_json(1, &[]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::InvalidPath { path, .. } if path == "../evil"),
        "{err}"
    );
}

#[test]
fn absolute_entry_is_refused() {
    let raw = RawTar::new().file("/etc/x", b"x").manifest(&manifest_json(1, &[]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::InvalidPath { path, reason } if path == "/etc/x" && reason.contains("absolute")),
        "{err}"
    );
}

#[test]
fn symlink_entry_is_refused() {
    let raw = RawTar::new()
        .entry(EntryType::Symlink, b"link", Some(b"/etc/passwd"), b"")
        .manifest(&manifest_json(1, &[]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::NotARegularFile { path, kind } if path == "link" && kind == "symbolic link"),
        "{err}"
    );
}

#[test]
fn hard_link_entry_is_refused() {
    let raw = RawTar::new()
        .file("a", b"x")
        .entry(EntryType::Link, b"hard", Some(b"a"), b"")
        .manifest(&manifest_json(1, &[("a", b"x")]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::NotARegularFile { path, kind } if path == "hard" && kind == "hard link"),
        "{err}"
    );
}

#[test]
fn directory_entry_is_refused() {
    let raw = RawTar::new()
        .entry(EntryType::Directory, b"dir/", None, b"")
        .manifest(&manifest_json(1, &[]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::NotARegularFile { path, kind } if path == "dir/" && kind == "directory"),
        "{err}"
    );
}

#[test]
fn devices_fifos_and_pax_headers_are_refused() {
    for (kind, name) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
        (EntryType::XHeader, "PAX extended header"),
        (EntryType::XGlobalHeader, "PAX global header"),
        (EntryType::GNUSparse, "GNU sparse file"),
    ] {
        let raw = RawTar::new()
            .entry(kind, b"thing", None, b"")
            .manifest(&manifest_json(1, &[]));
        let err = refused(check(raw));
        assert!(
            matches!(&err, FormatError::NotARegularFile { kind, .. } if kind == name),
            "{name}: {err}"
        );
    }
}

#[test]
fn pax_path_override_is_refused() {
    // A PAX header that would rename the next entry to an escaping path.
    let pax = b"19 path=../../evil\n";
    let raw = RawTar::new()
        .entry(EntryType::XHeader, b"PaxHeaders/a", None, pax)
        .file("a", b"x")
        .manifest(&manifest_json(1, &[("a", b"x")]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::NotARegularFile { kind, .. } if kind == "PAX extended header"),
        "{err}"
    );
}

#[test]
fn duplicate_entry_is_refused() {
    let raw = RawTar::new()
        .file("a", b"1")
        .file("a", b"1")
        .manifest(&manifest_json(1, &[("a", b"1")]));
    let err = refused(check(raw));
    assert!(matches!(&err, FormatError::Duplicate(path) if path == "a"), "{err}");
}

#[test]
fn duplicate_through_a_long_name_is_refused() {
    let raw = RawTar::new()
        .file("a", b"1")
        .long_name(b"a")
        .file("ignored-short-name", b"1")
        .manifest(&manifest_json(1, &[("a", b"1")]));
    let err = refused(check(raw));
    assert!(matches!(&err, FormatError::Duplicate(path) if path == "a"), "{err}");
}

#[test]
fn tampered_entry_is_refused() {
    let original = pseudo_random(4096, 3);
    let mut tampered = original.clone();
    tampered[1234] ^= 0x01;
    let raw = RawTar::new()
        .file("data.bin", &tampered)
        .manifest(&manifest_json(1, &[("data.bin", &original)]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::DigestMismatch { path } if path == "data.bin"),
        "{err}"
    );
}

#[test]
fn tampered_entry_is_refused_even_when_the_visitor_reads_nothing() {
    let original = pseudo_random(200_000, 5);
    let mut tampered = original.clone();
    *tampered.last_mut().unwrap() ^= 0x80;
    let raw = RawTar::new()
        .file("data.bin", &tampered)
        .manifest(&manifest_json(1, &[("data.bin", &original)]));
    let bytes = raw.compressed(Compression::Zstd);
    let err = ArchiveReader::new(bytes.as_slice(), Compression::Zstd)
        .read_all(|_, _, reader| {
            // Read only the first bytes; the rest must still be hashed.
            let mut head = [0u8; 16];
            reader.read_exact(&mut head)?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&err, FormatError::DigestMismatch { path } if path == "data.bin"),
        "{err}"
    );
}

#[test]
fn size_disagreeing_with_the_manifest_is_refused() {
    let raw = RawTar::new()
        .file("a", b"four")
        .manifest(&manifest_json(1, &[("a", b"three")]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::SizeMismatch { path, expected: 5, actual: 4 } if path == "a"),
        "{err}"
    );
}

#[test]
fn entry_missing_from_the_manifest_is_refused() {
    let raw = RawTar::new()
        .file("a", b"1")
        .file("extra", b"2")
        .manifest(&manifest_json(1, &[("a", b"1")]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::MissingFromManifest(path) if path == "extra"),
        "{err}"
    );
}

#[test]
fn manifest_listing_an_absent_entry_is_refused() {
    let raw = RawTar::new()
        .file("a", b"1")
        .manifest(&manifest_json(1, &[("a", b"1"), ("gone", b"2")]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::MissingEntry(path) if path == "gone"),
        "{err}"
    );
}

#[test]
fn manifest_not_last_is_refused() {
    let raw = RawTar::new()
        .manifest(&manifest_json(1, &[("a", b"1")]))
        .file("a", b"1");
    let err = refused(check(raw));
    assert!(matches!(err, FormatError::ManifestNotLast), "{err}");

    // A second manifest after the first is the same offence.
    let json = manifest_json(1, &[]);
    let err = refused(check(RawTar::new().manifest(&json).manifest(&json)));
    assert!(matches!(err, FormatError::ManifestNotLast), "{err}");
}

#[test]
fn missing_manifest_is_refused() {
    let err = refused(check(RawTar::new().file("a", b"1")));
    assert!(matches!(err, FormatError::NoManifest), "{err}");
    assert_eq!(
        err.to_string(),
        "the archive has no manifest: it is truncated or not a backspace backup"
    );
}

#[test]
fn unknown_version_is_refused_by_number() {
    let raw = RawTar::new()
        .file("a", b"1")
        .manifest(&manifest_json(99, &[("a", b"1")]));
    let err = refused(check(raw));
    assert!(matches!(err, FormatError::UnknownVersion(99)), "{err}");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[test]
fn wrong_format_and_garbage_manifests_are_refused() {
    let json = manifest_json(1, &[]).replace("backspace-portal-backup", "someone-else");
    let err = refused(check(RawTar::new().manifest(&json)));
    assert!(
        matches!(&err, FormatError::WrongFormat(name) if name == "someone-else"),
        "{err}"
    );

    let err = refused(check(RawTar::new().manifest("not json")));
    assert!(matches!(err, FormatError::BadManifest(_)), "{err}");

    let err = refused(check(RawTar::new().entry(
        EntryType::Symlink,
        b"manifest.json",
        Some(b"x"),
        b"",
    )));
    assert!(matches!(err, FormatError::NotARegularFile { .. }), "{err}");
}

#[test]
fn long_name_producing_an_invalid_path_is_refused() {
    let evil = format!("{}/../../../etc/cron.d/x", "a".repeat(120));
    let raw = RawTar::new()
        .long_name(evil.as_bytes())
        .file("innocent", b"x")
        .manifest(&manifest_json(1, &[]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::InvalidPath { path, .. } if *path == evil),
        "{err}"
    );
}

#[test]
fn oversized_long_name_is_refused_without_reading_it() {
    let huge = vec![b'a'; 100_000];
    let raw = RawTar::new()
        .long_name(&huge)
        .file("innocent", b"x")
        .manifest(&manifest_json(1, &[]));
    let err = refused(check(raw));
    assert!(
        matches!(&err, FormatError::InvalidPath { reason, .. } if reason.contains("1024")),
        "{err}"
    );
}

#[test]
fn dangling_long_name_is_refused() {
    let err = refused(check(RawTar::new().manifest(&manifest_json(1, &[])).long_name(b"x")));
    assert!(matches!(err, FormatError::ManifestNotLast), "{err}");
    let err = refused(check(RawTar::new().long_name(b"x")));
    assert!(matches!(err, FormatError::Io(_)), "{err}");
}

#[test]
fn trailing_data_after_the_end_marker_is_refused() {
    let mut tar = RawTar::new()
        .file("a", b"1")
        .manifest(&manifest_json(1, &[("a", b"1")]))
        .into_tar();
    let mut hidden = RawTar::new().file("hidden", b"smuggled").into_tar();
    tar.append(&mut hidden);
    let err = refused(verify(compress(&tar, Compression::Zstd).as_slice(), Compression::Zstd));
    assert!(matches!(err, FormatError::TrailingData), "{err}");
}

#[test]
fn bytes_after_the_compressed_stream_are_refused() {
    for compression in BOTH {
        let mut bytes = RawTar::new().manifest(&manifest_json(1, &[])).compressed(compression);
        verify(bytes.as_slice(), compression).unwrap();
        bytes.extend_from_slice(b"appended garbage");
        assert!(verify(bytes.as_slice(), compression).is_err(), "{compression:?}");
    }
    // A second gzip member would otherwise go unread.
    let mut bytes = RawTar::new()
        .manifest(&manifest_json(1, &[]))
        .compressed(Compression::Gzip);
    bytes.extend(compress(b"second member", Compression::Gzip));
    let err = refused(verify(bytes.as_slice(), Compression::Gzip));
    assert!(matches!(err, FormatError::TrailingData), "{err}");
}

#[test]
fn truncated_archive_is_refused() {
    let big = pseudo_random(300_000, 9);
    for compression in BOTH {
        let bytes = RawTar::new()
            .file("a", b"1")
            .file("big", &big)
            .manifest(&manifest_json(1, &[("a", b"1"), ("big", &big)]))
            .compressed(compression);
        verify(bytes.as_slice(), compression).unwrap();

        let half = &bytes[..bytes.len() / 2];
        let err = refused(verify(half, compression));
        assert!(matches!(&err, FormatError::Io(_)), "{compression:?}: {err}");
        assert!(
            err.to_string().contains("truncated or corrupt"),
            "{compression:?}: {err}"
        );

        // Cut anywhere, including inside the compressor's trailer: always an error, never a panic.
        let step = (bytes.len() / 97).max(1);
        for cut in (0..bytes.len()).step_by(step).chain(bytes.len() - 8..bytes.len()) {
            assert!(
                verify(&bytes[..cut], compression).is_err(),
                "{compression:?} cut at {cut} accepted"
            );
        }
    }
}

#[test]
fn non_archive_input_is_refused() {
    for compression in BOTH {
        for input in [pseudo_random(10_000, 1), Vec::new(), b"hello".to_vec()] {
            let err = refused(verify(input.as_slice(), compression));
            assert!(
                matches!(err, FormatError::Io(_) | FormatError::NoManifest),
                "{compression:?}: {err}"
            );
        }
        // Well-compressed bytes that are not a tar stream.
        let err = refused(verify(
            compress(&pseudo_random(10_000, 2), compression).as_slice(),
            compression,
        ));
        assert!(matches!(err, FormatError::Io(_)), "{compression:?}: {err}");
        // A tar stream that is not compressed.
        let plain = RawTar::new().manifest(&manifest_json(1, &[])).into_tar();
        assert!(verify(plain.as_slice(), compression).is_err(), "{compression:?}");
    }
}

#[test]
fn corrupt_compressed_byte_is_refused() {
    let data = pseudo_random(50_000, 4);
    for compression in BOTH {
        let mut bytes = RawTar::new()
            .file("d", &data)
            .manifest(&manifest_json(1, &[("d", &data)]))
            .compressed(compression);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        assert!(verify(bytes.as_slice(), compression).is_err(), "{compression:?}");
    }
}
