//! Passwords: DocSpace's client-side hash, then argon2id at rest.
//!
//! DocSpace's web UI never sends a password: it sends `passwordHash` =
//! hex(PBKDF2-HMAC-SHA256(password, salt, iterations, 256 bits)). The server turns a plain
//! `password` into the same value, so both forms sign in. What we store is argon2id of that
//! value, with a random salt per person.

use crate::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

/// `passwordHash` parameters, as `GET /api/2.0/settings` publishes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordParams {
    pub size: u32,
    pub iterations: u32,
    pub salt: String,
}

impl PasswordParams {
    pub fn new(salt: &str) -> Self {
        Self {
            size: 256,
            iterations: 100_000,
            salt: salt.to_owned(),
        }
    }
}

/// DocSpace's client hash of a password.
pub fn client_hash(password: &str, params: &PasswordParams) -> String {
    let mut out = vec![0u8; (params.size / 8) as usize];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), params.salt.as_bytes(), params.iterations, &mut out);
    hex::encode(out)
}

/// argon2id of a client hash, as a PHC string.
pub fn hash_for_storage(client_hash: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(client_hash.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password failed: {e}")))
}

/// Checks a client hash against a stored PHC string, in constant time.
pub fn verify(client_hash: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(client_hash.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// DocSpace's default password policy: 8 to 30 printable ASCII characters, no spaces.
pub fn check_policy(password: &str) -> Result<()> {
    let len = password.chars().count();
    let printable = password.chars().all(|c| c.is_ascii_graphic());
    if !(8..=30).contains(&len) || !printable {
        return Err(Error::BadRequest(
            "Password is incorrect: use 8 to 30 printable ASCII characters without spaces".to_owned(),
        ));
    }
    Ok(())
}

/// A random password that meets the policy (20 characters, ~119 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The client hash of a request that carries either `password` or `passwordHash`.
pub fn from_request(password: Option<&str>, password_hash: Option<&str>, params: &PasswordParams) -> Option<String> {
    match (password, password_hash) {
        (_, Some(h)) if !h.is_empty() => Some(h.to_ascii_lowercase()),
        (Some(p), _) if !p.is_empty() => Some(client_hash(p, params)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_and_its_client_hash_both_verify() {
        let params = PasswordParams {
            iterations: 1000,
            ..PasswordParams::new("salt")
        };
        let h = client_hash("correct horse", &params);
        assert_eq!(h.len(), 64);
        let stored = hash_for_storage(&h).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(&h, &stored));
        assert!(!verify(&client_hash("wrong horse", &params), &stored));
        assert_eq!(from_request(Some("correct horse"), None, &params), Some(h.clone()));
        assert_eq!(from_request(None, Some(&h.to_uppercase()), &params), Some(h));
        assert_eq!(from_request(Some(""), None, &params), None);
    }

    #[test]
    fn policy_and_generated_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("has a space in it").is_err());
        assert!(check_policy(&"x".repeat(31)).is_err());
        assert!(check_policy("Str0ngEnough").is_ok());
        let p = generate();
        assert!(check_policy(&p).is_ok());
        assert_ne!(p, generate());
    }
}
