//! Invariant: arbitrary bytes never panic a decoder of the repository's stored objects (sealed
//! envelopes, pack trailers and headers, index files, snapshots, chunk blobs, the config and its
//! key slots, hex ids) nor make it allocate without bound; what the repository's own encoders
//! write decodes back to what they were given.
//!
//! The first byte picks the decoder (low bits) and the key (high bit: encrypted or not); the
//! payload behind a seal is sealed here with a fixed test key, so the fuzzer reaches the parsing
//! behind the authentication it cannot forge.
#![no_main]

use backspace_repo::decoders::{
    chunk_aad, decode_chunk, decode_header, decode_index, decode_snapshot, encode_index, header_length, open_config,
    HEADER_AAD, INDEX_AAD, TRAILER,
};
use backspace_repo::{BlobPlace, ChunkId, KeySlot, Keys, PackId, Snapshot};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The fixed test key every object is sealed with.
const MASTER: [u8; 32] = [7; 32];
/// The passphrase tried on key slots.
const PASSPHRASE: &str = "fuzz";
const SNAPSHOT_ID: &str = "fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = Keys::from_master(&MASTER, mode & 0x80 != 0);
    match (mode & 0x7f) % 8 {
        0 => envelopes(&keys, rest),
        1 => pack(&keys, rest),
        2 => index(&keys, rest),
        3 => snapshot(&keys, rest),
        4 => chunk(&keys, rest),
        5 => config(rest),
        6 => key_slot(rest),
        _ => ids(rest),
    }
});

/// `data` opened as a sealed blob of every kind; `data` sealed and opened again.
fn envelopes(keys: &Keys, data: &[u8]) {
    let chunk = chunk_aad(&ChunkId([0; 32]));
    let snapshot = Snapshot::aad(SNAPSHOT_ID);
    for aad in [HEADER_AAD, INDEX_AAD, &chunk, &snapshot] {
        if let Ok(plain) = keys.open(data, aad) {
            let mut copy = data.to_vec();
            assert_eq!(keys.open_in_place(&mut copy, aad).expect("opens in place too"), plain);
        }
        let mut sealed = keys.seal(data, aad);
        assert_eq!(keys.open(&sealed, aad).expect("a sealed blob opens"), data);
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(keys.open(&sealed, aad).is_err(), "a changed byte is refused");
    }
    let _ = header_length(data);
    let _ = decode_header(keys, data, u64::MAX);
    let _ = decode_index(keys, data);
}

/// A pack made of `data` (`u16le` length of the blobs, the blobs, the plain header), read back
/// the way the repository reads a pack's header, then each blob it lists opened as a chunk.
fn pack(keys: &Keys, data: &[u8]) {
    let Some((split, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes(*split)).min(body.len());
    let (blobs, header) = body.split_at(split);
    let sealed = keys.seal(header, HEADER_AAD);
    let mut pack = [blobs, &sealed, &(sealed.len() as u32).to_le_bytes(), b"BSPACK01"].concat();

    let end = pack.len() - TRAILER;
    let length = header_length(&pack[end..]).expect("the trailer is read back") as usize;
    assert_eq!(length, sealed.len());
    let start = end - length;
    let Ok(places) = decode_header(keys, &pack[start..end], start as u64) else {
        return;
    };
    assert_eq!(
        places.len() * 44 + 4,
        header.len(),
        "a header is its count and its rows"
    );
    for place in places {
        let (offset, length) = (place.offset as usize, place.length as usize);
        assert!(offset + length <= start, "a blob lies before the header");
        let _ = decode_chunk(keys, &place, &mut pack[offset..offset + length]);
    }
}

/// `data` as the plain bytes of an index file; an index that decodes is encoded and decoded
/// again unchanged.
fn index(keys: &Keys, data: &[u8]) {
    let _ = decode_index(keys, data);
    let Ok(entries) = decode_index(keys, &keys.seal(data, INDEX_AAD)) else {
        return;
    };
    let again = decode_index(keys, &encode_index(keys, &entries)).expect("an encoded index decodes");
    assert_eq!(again, entries);
}

/// `data` as a snapshot's JSON; a snapshot that decodes is written and decoded again unchanged
/// (`meta` aside: serde_json does not promise to round-trip every float).
fn snapshot(keys: &Keys, data: &[u8]) {
    let mut sealed = keys.seal(data, &Snapshot::aad(SNAPSHOT_ID));
    let Ok(snap) = decode_snapshot(keys, SNAPSHOT_ID, &mut sealed) else {
        return;
    };
    assert_eq!(snap.id, SNAPSHOT_ID);
    let _ = snap.size();
    let json = serde_json::to_vec(&snap).expect("a snapshot serialises");
    let mut sealed = keys.seal(&json, &Snapshot::aad(SNAPSHOT_ID));
    let again = decode_snapshot(keys, SNAPSHOT_ID, &mut sealed).expect("a written snapshot decodes");
    assert_eq!(
        (again.version, &again.id, again.created, &again.entries),
        (snap.version, &snap.id, snap.created, &snap.entries)
    );
}

/// `data` as `u32le` raw length and a chunk blob (codec byte and data); then the rest of `data`
/// stored raw and compressed, the two ways the writer stores a chunk, decodes back to itself.
fn chunk(keys: &Keys, data: &[u8]) {
    let Some((raw_length, blob)) = data.split_first_chunk::<4>() else {
        return;
    };
    let id = ChunkId([0; 32]);
    let mut sealed = keys.seal(blob, &chunk_aad(&id));
    let place = BlobPlace {
        id,
        offset: 0,
        length: sealed.len() as u32,
        raw_length: u32::from_le_bytes(*raw_length),
    };
    let _ = decode_chunk(keys, &place, &mut sealed);

    let plain = blob;
    let id = keys.chunk_id(plain);
    let compressed = zstd::bulk::compress(plain, 1).expect("zstd compresses");
    for stored in [[&[0], plain].concat(), [&[1], &compressed[..]].concat()] {
        let mut sealed = keys.seal(&stored, &chunk_aad(&id));
        let place = BlobPlace {
            id,
            offset: 0,
            length: sealed.len() as u32,
            raw_length: plain.len() as u32,
        };
        assert_eq!(
            decode_chunk(keys, &place, &mut sealed).expect("a stored chunk decodes"),
            plain
        );
    }
}

/// `data` as the repository's `config` object, opened with a passphrase when deriving the key
/// of every slot is cheap (the key derivation's cost is the config's to choose, within bounds
/// that make a fuzzer crawl), else without one.
fn config(data: &[u8]) {
    let cheap = serde_json::from_slice::<Value>(data).is_ok_and(|config| match config.get("keySlots") {
        Some(Value::Array(slots)) => slots.iter().all(|slot| {
            let cost = |field: &str, max: u64| slot.get(field).and_then(Value::as_u64).is_some_and(|v| v <= max);
            cost("memKib", 256) && cost("iterations", 3) && cost("lanes", 4)
        }),
        _ => true,
    });
    let _ = open_config(data, cheap.then_some(PASSPHRASE));
    let _ = open_config(data, None);
}

/// `data` as one key slot, unlocked when its cost is small.
fn key_slot(data: &[u8]) {
    let Ok(slot) = serde_json::from_slice::<KeySlot>(data) else {
        return;
    };
    if slot.mem_kib <= 256 && slot.iterations <= 3 && slot.lanes <= 4 {
        let _ = slot.unlock(PASSPHRASE);
    }
}

/// `data` as the hex text of a pack id and a chunk id; an id that parses prints back to the same
/// text, in lower case.
fn ids(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pack) = PackId::from_hex(text) {
        assert_eq!(pack.to_hex(), text.to_ascii_lowercase());
        assert!(pack.key().ends_with(&pack.to_hex()));
    }
    if let Ok(chunk) = ChunkId::from_hex(text) {
        assert_eq!(chunk.to_hex(), text.to_ascii_lowercase());
        assert_eq!(ChunkId::from_hex(&chunk.to_hex()).expect("parses back"), chunk);
    }
}
