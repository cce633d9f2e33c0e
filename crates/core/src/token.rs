//! Secrets handed to clients: session tokens and API keys. Only their digests are stored.
//!
//! Both carry 256 random bits, so a fast digest (BLAKE3) is as good as a slow one: there is
//! nothing to brute-force. Lookups go by digest; the final comparison is constant-time.

use rand::RngCore;
use subtle::ConstantTimeEq;

/// API keys are `sk-` + 64 lower-case hex characters.
pub const KEY_PREFIX: &str = "sk-";

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new session token: 64 lower-case hex characters.
pub fn new_session_token() -> String {
    random_hex()
}

/// A new API key.
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", random_hex())
}

/// Whether `s` has the shape of an API key.
pub fn looks_like_api_key(s: &str) -> bool {
    s.strip_prefix(KEY_PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The digest stored for a secret. Domain-separated so a session token can never be found as
/// a key or the reverse.
pub fn digest(domain: &str, secret: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key(domain);
    hasher.update(secret.as_bytes());
    hasher.finalize().to_hex().to_string()
}

pub const SESSION_DOMAIN: &str = "backspace 2026 session token";
pub const KEY_DOMAIN: &str = "backspace 2026 api key";

/// Constant-time string equality.
pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_digests() {
        let key = new_api_key();
        assert!(looks_like_api_key(&key));
        assert!(!looks_like_api_key(&new_session_token()));
        assert!(!looks_like_api_key("sk-short"));
        assert_ne!(digest(KEY_DOMAIN, &key), digest(SESSION_DOMAIN, &key));
        assert!(same(&digest(KEY_DOMAIN, &key), &digest(KEY_DOMAIN, &key)));
        assert!(!same("a", "b"));
    }
}
