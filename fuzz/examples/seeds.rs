//! Writes the hand-made seed inputs of the fuzz targets into `fuzz/corpus/<target>/`: real
//! archives from `ArchiveWriter`, the repository's objects in their stored layouts, and valid
//! request bodies. Regenerate with `cargo run --manifest-path fuzz/Cargo.toml --example seeds`
//! (a plain build, not the fuzz build); the fuzz targets' first byte picks the mode.

use std::fs;
use std::path::{Path, PathBuf};

use backspace_format::{ArchiveWriter, Compression, EntryPath};
use backspace_repo::decoders::{chunk_aad, HEADER_AAD};
use backspace_repo::{ChunkId, KeySlot, Keys, Snapshot, SnapshotEntry};

/// The fixed test key of `repo_decoders`.
const MASTER: [u8; 32] = [7; 32];

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    archive_reader(&corpus.join("archive_reader"));
    repo_decoders(&corpus.join("repo_decoders"));
    request_parsers(&corpus.join("request_parsers"));
}

fn write(dir: &Path, name: &str, mode: u8, payload: &[u8]) {
    fs::create_dir_all(dir).expect("corpus directory");
    let path: PathBuf = dir.join(name);
    fs::write(&path, [&[mode], payload].concat()).expect("seed written");
}

fn archive(compression: Compression) -> Vec<u8> {
    let mut writer = ArchiveWriter::new(Vec::new(), compression).unwrap();
    let path = |p: &str| EntryPath::new(p).unwrap();
    writer
        .add_bytes(&path("portal.json"), br#"{"alias":"acme","id":1}"#)
        .unwrap();
    writer.add_bytes(&path("files/1.v1"), b"hello").unwrap();
    let (bytes, _) = writer
        .finish(1_700_000_000_000, serde_json::json!({"alias": "acme"}))
        .unwrap();
    bytes
}

fn archive_reader(dir: &Path) {
    let zst = archive(Compression::Zstd);
    write(dir, "zstd", 0, &zst);
    write(dir, "gzip", 1, &archive(Compression::Gzip));
    // The same archive's tar stream, for the modes that compress it themselves.
    write(dir, "tar", 2, &zstd::decode_all(zst.as_slice()).unwrap());
    let manifest = format!(
        r#"{{"format":"backspace-portal-backup","version":1,"createdAt":1,"meta":{{"alias":"acme"}},"entries":[{{"path":"files/1.v1","size":5,"blake3":"{}"}}]}}"#,
        blake3::hash(b"hello").to_hex()
    );
    write(dir, "manifest", 4, manifest.as_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn repo_decoders(dir: &Path) {
    const ENCRYPTED: u8 = 0x80;
    let keys = Keys::from_master(&MASTER, false);

    write(dir, "envelope", 0, &keys.seal(b"a sealed blob", HEADER_AAD));

    // A pack: two chunk blobs (stored raw and compressed), then its plain header.
    let chunks: [(&[u8], u8); 2] = [(b"first chunk", 0), (b"second chunk, compressed chunk", 1)];
    let mut blobs = Vec::new();
    let mut header = Vec::new();
    put_u32(&mut header, chunks.len() as u32);
    let mut index = Vec::new();
    put_u32(&mut index, chunks.len() as u32);
    for (plain, codec) in chunks {
        let id = keys.chunk_id(plain);
        let stored = match codec {
            0 => [&[0], plain].concat(),
            _ => [&[1], &zstd::bulk::compress(plain, 1).unwrap()[..]].concat(),
        };
        let sealed = keys.seal(&stored, &chunk_aad(&id));
        let row = |out: &mut Vec<u8>| {
            put_u32(out, blobs.len() as u32);
            put_u32(out, sealed.len() as u32);
            put_u32(out, plain.len() as u32);
        };
        header.extend_from_slice(&id.0);
        row(&mut header);
        index.extend_from_slice(&id.0);
        index.extend_from_slice(&[0x5a; 32]);
        row(&mut index);
        blobs.extend_from_slice(&sealed);
    }
    let pack = [&(blobs.len() as u16).to_le_bytes()[..], &blobs, &header].concat();
    write(dir, "pack", 1, &pack);
    write(dir, "index", 2, &index);

    let snapshot = Snapshot {
        version: 1,
        id: "fuzz".into(),
        created: 1_700_000_000_000,
        meta: serde_json::json!({"alias": "acme", "size": 41}),
        entries: vec![
            SnapshotEntry {
                name: "portal.json".into(),
                size: 41,
                source: Some("blake3:41".into()),
                chunks: vec![(keys.chunk_id(b"first chunk"), 11), (ChunkId([1; 32]), 30)],
            },
            SnapshotEntry {
                name: "files/1.v1".into(),
                size: 0,
                source: None,
                chunks: vec![],
            },
        ],
    };
    write(dir, "snapshot", 3, &serde_json::to_vec(&snapshot).unwrap());

    let plain = b"a chunk's bytes";
    write(
        dir,
        "chunk",
        4,
        &[&(plain.len() as u32).to_le_bytes()[..], &[0], plain].concat(),
    );

    let plain_key: String = MASTER.iter().map(|b| format!("{b:02x}")).collect();
    let config = format!(
        r#"{{"format":"backspace-repository","version":1,"id":"00112233445566778899aabbccddeeff","encryption":"none","chunker":{{"min":262144,"avg":1048576,"max":4194304}},"packSize":16777216,"plainKey":"{plain_key}"}}"#
    );
    write(dir, "config-plain", 5, config.as_bytes());
    // A real key slot, its cost lowered so that the fuzzer may afford to try it.
    let mut slot = KeySlot::new(&MASTER, "fuzz").unwrap();
    (slot.mem_kib, slot.iterations) = (64, 1);
    let slot_json = serde_json::to_string(&slot).unwrap();
    let config = format!(
        r#"{{"format":"backspace-repository","version":1,"id":"00112233445566778899aabbccddeeff","encryption":"xchacha20poly1305","chunker":{{"min":262144,"avg":1048576,"max":4194304}},"packSize":16777216,"keySlots":[{slot_json}]}}"#
    );
    write(dir, "config-encrypted", 5 | ENCRYPTED, config.as_bytes());
    write(dir, "key-slot", 6, slot_json.as_bytes());
    write(dir, "id", 7, ChunkId([0xab; 32]).to_hex().as_bytes());

    // What the fuzzer found, kept so that every run tries it again (the crates' tests hold them
    // too): a chunk claiming nearly 4 GiB, and entry sizes adding up past `u64::MAX`.
    write(
        dir,
        "found-chunk-claims-4gib",
        4,
        b"\x0f\x00\xfe\xff\xff\xed\x00\x00\x00a \x19\x99\x99\x99\x99\x99\x99\x98bytes",
    );
    write(
        dir,
        "found-snapshot-size-overflow",
        3,
        br#"{"version":1,"id":"fuzz","created":1,"meta":null,"entries":[{"name":"a","size":18446744073709551615,"chunks":[]},{"name":"b","size":1,"chunks":[]}]}"#,
    );
}

fn request_parsers(dir: &Path) {
    let seeds: &[(&str, &str)] = &[
        (
            "start-backup",
            r#"{"storagetype":"Documents","storageparams":[{"key":"folderId","value":1234},{"key":"x","value":true}],"dump":"true"}"#,
        ),
        (
            "schedule",
            r#"{"storagetype":4,"backupsstored":"10","cronparams":{"period":"Weekly","hour":3,"day":"2"},"dump":false}"#,
        ),
        (
            "restore",
            r#"{"backupid":"2a9c0f00-1111-4222-8333-444455556666","storagetype":"4","notify":"True"}"#,
        ),
        ("cron", r#"{"period":1,"hour":23,"day":0}"#),
        (
            "people",
            r#"{"email":"a@b.c","firstname":"A","type":"RoomAdmin","count":"25","startindex":0,"sortorder":1}"#,
        ),
        (
            "keys",
            r#"{"name":"ci","permissions":["backup:read"],"expiresindays":"30","isactive":true}"#,
        ),
        (
            "auth-service",
            r#"{"name":"webdav","props":[{"name":"url","value":"https://dav.example"}],"url":"u","login":"l"}"#,
        ),
        (
            "room",
            r#"{"title":"Room","roomtype":"CustomRoom","type":2,"searcharea":"1"}"#,
        ),
        ("path", "portals/1/files/7.v1"),
        ("uuid", "2A9C0F00-1111-4222-8333-444455556666"),
    ];
    for (name, text) in seeds {
        fs::create_dir_all(dir).expect("corpus directory");
        fs::write(dir.join(name), text).expect("seed written");
    }
}
