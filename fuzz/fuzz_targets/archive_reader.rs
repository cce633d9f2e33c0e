//! Invariant: arbitrary bytes never panic the archive reader nor make it allocate without bound
//! (zstd and gzip, as the compressed stream or as the tar stream inside it), and an archive it
//! accepts reads back to the entries its manifest lists and is accepted again once rewritten by
//! `ArchiveWriter`.
//!
//! The first byte picks how the rest is used: `0` a zstd stream, `1` a gzip stream, `2` a tar
//! stream compressed with zstd here, `3` a tar stream compressed with gzip here (so the fuzzer
//! reaches the tar and manifest checks without having to get compression right), `4` the
//! manifest's JSON alone.
#![no_main]

use std::io::Write;

use backspace_format::{verify, ArchiveReader, ArchiveWriter, Compression, EntryPath, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => read(rest, Compression::Zstd),
        1 => read(rest, Compression::Gzip),
        2 => read(
            &zstd::bulk::compress(rest, 1).expect("zstd compresses"),
            Compression::Zstd,
        ),
        3 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(rest).expect("gzip compresses");
            read(&gz.finish().expect("gzip compresses"), Compression::Gzip);
        }
        _ => {
            if let Ok(manifest) = Manifest::from_json(rest) {
                // What a manifest accepts, it writes back and accepts again unchanged (`meta` aside:
                // serde_json does not promise to round-trip every float).
                let again = Manifest::from_json(&manifest.to_json().expect("a manifest serialises"))
                    .expect("a manifest's own JSON is accepted");
                assert_eq!(
                    (&again.entries, again.created_at, again.version),
                    (&manifest.entries, manifest.created_at, manifest.version)
                );
            }
        }
    }
});

/// Verifies `archive`; when it is accepted, reads it again keeping the entries, checks them
/// against the manifest, writes them into a new archive and verifies that one.
fn read(archive: &[u8], compression: Compression) {
    let manifest = match verify(archive, compression) {
        Ok(manifest) => manifest,
        Err(err) => {
            // Error messages quote hostile bytes: building them must not panic either.
            let _ = err.to_string();
            return;
        }
    };
    let mut entries: Vec<(EntryPath, Vec<u8>)> = Vec::new();
    let again = ArchiveReader::new(archive, compression)
        .read_all(|path, size, reader| {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes)?;
            assert_eq!(bytes.len() as u64, size, "the reader yields an entry's declared size");
            entries.push((path.clone(), bytes));
            Ok(())
        })
        .expect("an accepted archive is accepted when read again");
    assert_eq!(again, manifest);
    assert_eq!(entries.len(), manifest.entries.len());
    for ((path, bytes), line) in entries.iter().zip(&manifest.entries) {
        assert_eq!(path.as_str(), line.path);
        assert_eq!(bytes.len() as u64, line.size);
        assert_eq!(blake3_hex(bytes), line.blake3);
    }

    let mut writer = ArchiveWriter::new(Vec::new(), compression).expect("a writer starts");
    for (path, bytes) in &entries {
        writer
            .add_bytes(path, bytes)
            .expect("an accepted entry is written again");
    }
    let (rewritten, written) = writer
        .finish(manifest.created_at, manifest.meta.clone())
        .expect("the rewritten archive finishes");
    let reread = verify(rewritten.as_slice(), compression).expect("the rewritten archive is accepted");
    assert_eq!(reread.entries, manifest.entries);
    assert_eq!(written.entries, manifest.entries);
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
