//! Keys and sealing: the master key, its key slots, and authenticated encryption of every
//! stored blob.

use crate::RepoError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use rand::RngCore;
use serde::{Deserialize, Serialize};

const NONCE: usize = 24;
const TAG: usize = 16;
/// The room [`Keys::seal_prefixed`] needs before the plain bytes.
pub(crate) const SEAL_PREFIX: usize = NONCE;
/// The length of the MAC that seals blobs of an unencrypted repository.
const PLAIN_MAC: usize = 16;

/// The keys of an open repository, derived from its 32-byte master secret.
#[derive(Clone)]
pub struct Keys {
    encrypted: bool,
    seal: [u8; 32],
    id: [u8; 32],
    /// Seeds the chunker's gear table, so chunk boundaries (and sizes) depend on the key.
    pub chunker_seed: u64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn from_master(master: &[u8; 32], encrypted: bool) -> Self {
        let seed = blake3::derive_key("backspace repository v1 chunker seed", master);
        Self {
            encrypted,
            seal: blake3::derive_key("backspace repository v1 seal", master),
            id: blake3::derive_key("backspace repository v1 chunk id", master),
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")) | 1,
        }
    }

    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// A chunk's id: BLAKE3 keyed with the repository's id key, so ids reveal nothing about
    /// content to anyone without the key.
    pub fn chunk_id(&self, plain: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.id, plain).as_bytes())
    }

    /// Seals `plain`, bound to `aad`: `nonce(24) ‖ ciphertext ‖ tag(16)` with XChaCha20-Poly1305,
    /// or, unencrypted, `plain ‖ keyed-BLAKE3(aad ‖ plain)[..16]`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        if !self.encrypted {
            let mut out = Vec::with_capacity(plain.len() + PLAIN_MAC);
            out.extend_from_slice(plain);
            out.extend_from_slice(&self.plain_mac(plain, aad));
            return out;
        }
        let mut out = Vec::with_capacity(NONCE + plain.len() + TAG);
        self.seal_into(&mut out, &[plain], aad);
        out
    }

    /// [`Keys::seal`] in place: `buf` holds [`SEAL_PREFIX`] bytes of room (their contents do
    /// not matter) followed by the plain bytes, and becomes their sealed form.
    pub fn seal_prefixed(&self, buf: &mut Vec<u8>, aad: &[u8]) {
        assert!(
            buf.len() >= SEAL_PREFIX,
            "seal_prefixed needs SEAL_PREFIX bytes of room"
        );
        if !self.encrypted {
            let mac = self.plain_mac(&buf[SEAL_PREFIX..], aad);
            buf.drain(..SEAL_PREFIX);
            buf.reserve_exact(mac.len());
            buf.extend_from_slice(&mac);
            return;
        }
        let nonce = random_nonce();
        buf[..NONCE].copy_from_slice(&nonce);
        let tag = xchacha_seal(&self.seal, &nonce, aad, &mut buf[NONCE..]);
        buf.reserve_exact(tag.len());
        buf.extend_from_slice(&tag);
    }

    /// [`Keys::seal`] of the concatenated `parts`, appended to `out` and encrypted in place.
    pub fn seal_into(&self, out: &mut Vec<u8>, parts: &[&[u8]], aad: &[u8]) {
        let start = out.len();
        if !self.encrypted {
            for p in parts {
                out.extend_from_slice(p);
            }
            let mac = self.plain_mac(&out[start..], aad);
            out.extend_from_slice(&mac);
            return;
        }
        let nonce = random_nonce();
        out.extend_from_slice(&nonce);
        let body = out.len();
        for p in parts {
            out.extend_from_slice(p);
        }
        let tag = xchacha_seal(&self.seal, &nonce, aad, &mut out[body..]);
        out.extend_from_slice(&tag);
    }

    /// Opens a sealed blob; any changed byte, or another `aad`, is an error.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, RepoError> {
        let mut copy = sealed.to_vec();
        let plain = self.open_range(&mut copy, aad)?;
        copy.truncate(plain.end);
        copy.drain(..plain.start);
        Ok(copy)
    }

    /// [`Keys::open`] in place: decrypts inside `sealed` and returns the plain part of it.
    pub fn open_in_place<'a>(&self, sealed: &'a mut [u8], aad: &[u8]) -> Result<&'a [u8], RepoError> {
        let plain = self.open_range(sealed, aad)?;
        Ok(&sealed[plain])
    }

    /// Checks and decrypts `sealed` in place; where its plain bytes are.
    pub(crate) fn open_range(&self, sealed: &mut [u8], aad: &[u8]) -> Result<std::ops::Range<usize>, RepoError> {
        let tampered = || RepoError::Corrupt("a sealed blob fails authentication".into());
        if !self.encrypted {
            if sealed.len() < PLAIN_MAC {
                return Err(tampered());
            }
            let (plain, mac) = sealed.split_at(sealed.len() - PLAIN_MAC);
            if self.plain_mac(plain, aad)[..] != *mac {
                return Err(tampered());
            }
            return Ok(0..plain.len());
        }
        if sealed.len() < NONCE + TAG {
            return Err(tampered());
        }
        let (nonce, body) = sealed.split_at_mut(NONCE);
        let tag_at = body.len() - TAG;
        let (ciphertext, tag) = body.split_at_mut(tag_at);
        let nonce: &[u8; NONCE] = (&*nonce).try_into().expect("NONCE bytes");
        if !xchacha_open(&self.seal, nonce, aad, ciphertext, tag) {
            return Err(tampered());
        }
        Ok(NONCE..NONCE + tag_at)
    }

    fn plain_mac(&self, plain: &[u8], aad: &[u8]) -> [u8; PLAIN_MAC] {
        let mut h = blake3::Hasher::new_keyed(&self.seal);
        h.update(&(aad.len() as u64).to_le_bytes());
        h.update(aad);
        h.update(plain);
        h.finalize().as_bytes()[..PLAIN_MAC].try_into().expect("16 bytes")
    }
}

fn random_nonce() -> [u8; NONCE] {
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03) as its draft builds it: HChaCha20 turns the
/// key and the nonce's first 16 bytes into a subkey, and ChaCha20-Poly1305 (RFC 8439) runs under
/// that subkey with the nonce's last 8 bytes after four zero bytes. The ChaCha20-Poly1305 is
/// aws-lc's (already in the build for TLS): its assembly seals and opens about twice as fast as
/// a portable implementation, and that is most of a restore's work. The bytes are the same as
/// any XChaCha20-Poly1305's (the golden vectors and a test against the draft's vector say so).
fn xchacha_key(key: &[u8; 32], nonce: &[u8; NONCE]) -> (LessSafeKey, Nonce) {
    use chacha20::cipher::consts::U10;
    let (head, tail) = nonce.split_at(16);
    let subkey = chacha20::hchacha::<U10>(key.into(), head.into());
    let subkey = UnboundKey::new(&CHACHA20_POLY1305, &subkey).expect("ChaCha20-Poly1305 takes a 32-byte key");
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(tail);
    (LessSafeKey::new(subkey), Nonce::assume_unique_for_key(short))
}

/// Encrypts `buf` in place; its tag.
fn xchacha_seal(key: &[u8; 32], nonce: &[u8; NONCE], aad: &[u8], buf: &mut [u8]) -> [u8; TAG] {
    let (key, nonce) = xchacha_key(key, nonce);
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
        .expect("encryption of an in-memory buffer does not fail");
    tag.as_ref().try_into().expect("a 16-byte tag")
}

/// Checks `tag` and decrypts `buf` in place; false (and `buf` unspecified) when it fails.
fn xchacha_open(key: &[u8; 32], nonce: &[u8; NONCE], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
    let (key, nonce) = xchacha_key(key, nonce);
    key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, buf).is_ok()
}

/// A chunk's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, RepoError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| RepoError::Corrupt(format!("`{s}` is not a chunk id")))?;
        Ok(Self(out))
    }
}

/// On the wire (snapshots), a chunk id is its hex string; in memory it is 32 bytes.
impl Serialize for ChunkId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for ChunkId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = ChunkId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a chunk id: 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChunkId, E> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(v, &mut out).map_err(|_| E::custom(format!("`{v}` is not a chunk id")))?;
                Ok(ChunkId(out))
            }
        }
        d.deserialize_str(Hex)
    }
}

impl std::fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

/// A key slot: the master secret sealed with a key derived from a passphrase by argon2id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeySlot {
    pub kdf: String,
    pub mem_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
    pub salt: String,
    pub sealed_key: String,
}

/// argon2id cost of new key slots: OWASP's recommendation (19 MiB, 2 passes).
const MEM_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;

fn kek(passphrase: &str, salt: &[u8], mem_kib: u32, iterations: u32, lanes: u32) -> Result<[u8; 32], RepoError> {
    let params = argon2::Params::new(mem_kib, iterations, lanes, Some(32))
        .map_err(|e| RepoError::Corrupt(format!("key slot parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| RepoError::Corrupt(format!("key derivation: {e}")))?;
    Ok(out)
}

const SLOT_AAD: &[u8] = b"backspace repository v1 key slot";

impl KeySlot {
    /// Seals `master` under `passphrase`.
    pub fn new(master: &[u8; 32], passphrase: &str) -> Result<Self, RepoError> {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let key = kek(passphrase, &salt, MEM_KIB, ITERATIONS, 1)?;
        let nonce = random_nonce();
        let mut sealed = master.to_vec();
        let tag = xchacha_seal(&key, &nonce, SLOT_AAD, &mut sealed);
        sealed.extend_from_slice(&tag);
        Ok(Self {
            kdf: "argon2id".into(),
            mem_kib: MEM_KIB,
            iterations: ITERATIONS,
            lanes: 1,
            salt: hex::encode(salt),
            sealed_key: hex::encode([&nonce[..], &sealed].concat()),
        })
    }

    /// The master secret, when `passphrase` is this slot's.
    pub fn unlock(&self, passphrase: &str) -> Result<Option<[u8; 32]>, RepoError> {
        if self.kdf != "argon2id" || self.mem_kib > 4 * 1024 * 1024 || self.iterations > 64 || self.lanes > 64 {
            return Err(RepoError::Corrupt(format!("unsupported key slot `{}`", self.kdf)));
        }
        let salt = hex::decode(&self.salt).map_err(|_| RepoError::Corrupt("key slot salt".into()))?;
        let mut sealed = hex::decode(&self.sealed_key).map_err(|_| RepoError::Corrupt("key slot".into()))?;
        if sealed.len() < NONCE + TAG {
            return Err(RepoError::Corrupt("key slot is too short".into()));
        }
        let key = kek(passphrase, &salt, self.mem_kib, self.iterations, self.lanes)?;
        let (nonce, body) = sealed.split_at_mut(NONCE);
        let nonce: &[u8; NONCE] = (&*nonce).try_into().expect("NONCE bytes");
        let (master, tag) = body.split_at_mut(body.len() - TAG);
        if !xchacha_open(&key, nonce, SLOT_AAD, master, tag) {
            return Ok(None);
        }
        match <[u8; 32]>::try_from(&*master) {
            Ok(master) => Ok(Some(master)),
            Err(_) => Err(RepoError::Corrupt("key slot holds a key of the wrong length".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn xchacha_matches_the_drafts_vector() {
        let key: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; NONCE] = std::array::from_fn(|i| 0x40 + i as u8);
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the \
                      future, sunscreen would be it.";
        let mut buf = plain.to_vec();
        let tag = xchacha_seal(&key, &nonce, &aad, &mut buf);
        assert_eq!(
            hex::encode(&buf),
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f\
             4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f\
             76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
        );
        assert_eq!(hex::encode(tag), "c0875924c1c7987947deafd8780acf49");
        let mut opened = buf.clone();
        assert!(xchacha_open(&key, &nonce, &aad, &mut opened, &tag));
        assert_eq!(opened, plain);
        let mut wrong_tag = tag;
        wrong_tag[0] ^= 1;
        assert!(!xchacha_open(&key, &nonce, &aad, &mut buf.clone(), &wrong_tag));
        assert!(!xchacha_open(&key, &nonce, b"other", &mut buf, &tag));
    }
}
