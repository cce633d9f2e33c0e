//! Pack files and index files: their byte layouts.

use crate::crypto::{ChunkId, Keys};
use crate::RepoError;

/// The last 8 bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"BSPACK01";
/// The associated data a pack header is sealed with.
pub const HEADER_AAD: &[u8] = b"backspace repository v1 pack header";
/// The associated data an index file is sealed with.
pub const INDEX_AAD: &[u8] = b"backspace repository v1 index";
const ENTRY: usize = 32 + 4 + 4 + 4;

/// Where a chunk's sealed blob is inside its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobPlace {
    pub id: ChunkId,
    pub offset: u32,
    pub length: u32,
    /// The chunk's size before compression and sealing.
    pub raw_length: u32,
}

/// A pack's id: BLAKE3 of its bytes, so a pack can be checked against its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackId(pub [u8; 32]);

impl PackId {
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, RepoError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| RepoError::Corrupt(format!("`{s}` is not a pack id")))?;
        Ok(Self(out))
    }

    /// The key of the pack in the repository: `packs/{first two hex digits}/{id}`.
    pub fn key(&self) -> String {
        let hex = self.to_hex();
        format!("packs/{}/{hex}", &hex[..2])
    }
}

impl std::fmt::Debug for PackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Builds a pack in memory: sealed blobs appended, then the sealed header, its length and the
/// magic.
#[derive(Default)]
pub struct PackBuilder {
    data: Vec<u8>,
    places: Vec<BlobPlace>,
}

impl PackBuilder {
    /// A builder whose buffer will not grow below `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            data: Vec::with_capacity(capacity),
            places: Vec::new(),
        }
    }

    /// A builder that reuses `buffer` (its contents are dropped, its capacity kept): a writer
    /// recycles the bytes of the pack it just stored instead of allocating another.
    pub fn recycle(mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        Self {
            data: buffer,
            places: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Appends a sealed blob.
    pub fn push(&mut self, id: ChunkId, sealed: &[u8], raw_length: u32) {
        self.places.push(BlobPlace {
            id,
            offset: self.data.len() as u32,
            length: sealed.len() as u32,
            raw_length,
        });
        self.data.extend_from_slice(sealed);
    }

    /// Seals `parts` (concatenated) straight into the pack, without an intermediate copy.
    pub fn push_sealed(&mut self, keys: &Keys, id: ChunkId, parts: &[&[u8]], aad: &[u8], raw_length: u32) {
        let offset = self.data.len();
        keys.seal_into(&mut self.data, parts, aad);
        self.places.push(BlobPlace {
            id,
            offset: offset as u32,
            length: (self.data.len() - offset) as u32,
            raw_length,
        });
    }

    /// The finished pack's bytes, id and blob places.
    pub fn finish(mut self, keys: &Keys) -> (Vec<u8>, PackId, Vec<BlobPlace>) {
        let mut header = Vec::with_capacity(4 + self.places.len() * ENTRY);
        put_u32(&mut header, self.places.len() as u32);
        for p in &self.places {
            header.extend_from_slice(&p.id.0);
            put_u32(&mut header, p.offset);
            put_u32(&mut header, p.length);
            put_u32(&mut header, p.raw_length);
        }
        let sealed = keys.seal(&header, HEADER_AAD);
        self.data.extend_from_slice(&sealed);
        put_u32(&mut self.data, sealed.len() as u32);
        self.data.extend_from_slice(PACK_MAGIC);
        let id = PackId::of(&self.data);
        (self.data, id, self.places)
    }
}

/// The length of a pack's trailer (header length and magic).
pub const TRAILER: usize = 4 + PACK_MAGIC.len();

/// The header's sealed length, read from a pack's last [`TRAILER`] bytes.
pub fn header_length(trailer: &[u8]) -> Result<u32, RepoError> {
    if trailer.len() != TRAILER || &trailer[4..] != PACK_MAGIC {
        return Err(RepoError::Corrupt("not a pack: the magic is missing".into()));
    }
    Ok(get_u32(trailer, 0))
}

/// Decodes a pack's sealed header; `blobs_end` is where the header starts (every blob must
/// lie before it).
pub fn decode_header(keys: &Keys, sealed: &[u8], blobs_end: u64) -> Result<Vec<BlobPlace>, RepoError> {
    let header = keys.open(sealed, HEADER_AAD)?;
    let places = decode_places(&header)?;
    for p in &places {
        if u64::from(p.offset) + u64::from(p.length) > blobs_end {
            return Err(RepoError::Corrupt("a pack header points past its blobs".into()));
        }
    }
    Ok(places)
}

fn decode_places(b: &[u8]) -> Result<Vec<BlobPlace>, RepoError> {
    if b.len() < 4 {
        return Err(RepoError::Corrupt("a pack header is too short".into()));
    }
    let count = get_u32(b, 0) as usize;
    if b.len() != 4 + count * ENTRY {
        return Err(RepoError::Corrupt(
            "a pack header's length disagrees with its count".into(),
        ));
    }
    Ok((0..count)
        .map(|i| {
            let at = 4 + i * ENTRY;
            BlobPlace {
                id: ChunkId(b[at..at + 32].try_into().expect("32 bytes")),
                offset: get_u32(b, at + 32),
                length: get_u32(b, at + 36),
                raw_length: get_u32(b, at + 40),
            }
        })
        .collect())
}

/// An index file: which pack holds each chunk. Sealed; the plain layout is
/// `u32 count ‖ count × (chunk id[32] ‖ pack id[32] ‖ u32 offset ‖ u32 length ‖ u32 raw length)`.
pub fn encode_index(keys: &Keys, entries: &[(PackId, BlobPlace)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + entries.len() * (ENTRY + 32));
    put_u32(&mut b, entries.len() as u32);
    for (pack, p) in entries {
        b.extend_from_slice(&p.id.0);
        b.extend_from_slice(&pack.0);
        put_u32(&mut b, p.offset);
        put_u32(&mut b, p.length);
        put_u32(&mut b, p.raw_length);
    }
    keys.seal(&b, INDEX_AAD)
}

pub fn decode_index(keys: &Keys, sealed: &[u8]) -> Result<Vec<(PackId, BlobPlace)>, RepoError> {
    let b = keys.open(sealed, INDEX_AAD)?;
    const ROW: usize = ENTRY + 32;
    if b.len() < 4 || b.len() != 4 + get_u32(&b, 0) as usize * ROW {
        return Err(RepoError::Corrupt(
            "an index file's length disagrees with its count".into(),
        ));
    }
    let count = get_u32(&b, 0) as usize;
    Ok((0..count)
        .map(|i| {
            let at = 4 + i * ROW;
            (
                PackId(b[at + 32..at + 64].try_into().expect("32 bytes")),
                BlobPlace {
                    id: ChunkId(b[at..at + 32].try_into().expect("32 bytes")),
                    offset: get_u32(&b, at + 64),
                    length: get_u32(&b, at + 68),
                    raw_length: get_u32(&b, at + 72),
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> Keys {
        Keys::from_master(&[9u8; 32], true)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn packs_and_indexes_round_trip(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20), flip in any::<usize>()) {
            let keys = keys();
            let mut b = PackBuilder::default();
            for (i, blob) in blobs.iter().enumerate() {
                b.push(keys.chunk_id(&[i as u8]), blob, blob.len() as u32 * 2);
            }
            let (bytes, id, places) = b.finish(&keys);
            prop_assert_eq!(id, PackId::of(&bytes));
            let n = bytes.len();
            let header_len = header_length(&bytes[n - TRAILER..]).unwrap() as usize;
            let start = n - TRAILER - header_len;
            let decoded = decode_header(&keys, &bytes[start..n - TRAILER], start as u64).unwrap();
            prop_assert_eq!(&decoded, &places);
            for (p, blob) in places.iter().zip(&blobs) {
                prop_assert_eq!(&bytes[p.offset as usize..(p.offset + p.length) as usize], blob.as_slice());
            }
            // A changed header byte is refused.
            let mut t = bytes[start..n - TRAILER].to_vec();
            let i = flip % t.len();
            t[i] ^= 1;
            prop_assert!(decode_header(&keys, &t, start as u64).is_err());

            let entries: Vec<_> = places.iter().map(|p| (id, *p)).collect();
            let sealed = encode_index(&keys, &entries);
            prop_assert_eq!(decode_index(&keys, &sealed).unwrap(), entries);
            let mut t = sealed.clone();
            let i = flip % t.len();
            t[i] ^= 4;
            prop_assert!(decode_index(&keys, &t).is_err());
        }
    }

    #[test]
    fn a_header_cannot_point_past_the_blobs() {
        let keys = keys();
        let mut b = PackBuilder::default();
        b.push(keys.chunk_id(b"a"), &[1, 2, 3], 3);
        let (bytes, _, _) = b.finish(&keys);
        let n = bytes.len();
        let header_len = header_length(&bytes[n - TRAILER..]).unwrap() as usize;
        let start = n - TRAILER - header_len;
        assert!(decode_header(&keys, &bytes[start..n - TRAILER], 2).is_err());
        assert!(header_length(b"12345678xxxx").is_err());
    }
}
