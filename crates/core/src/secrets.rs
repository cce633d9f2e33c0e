//! Secrets the server must use again (consumer keys, WebDAV passwords), sealed at rest when the
//! server has a repository passphrase: XChaCha20-Poly1305 under a key derived with argon2id from
//! the passphrase and a random salt kept in the database, each bound to where it belongs (a
//! sealed value moved to another portal or consumer does not open). A copy of the database
//! alone then reveals no credential. Without a passphrase they are stored as given, as before;
//! values stored before sealing was on still open, and are sealed when next saved.
//!
//! Stored form: `sealed:v1:` then the base64 of `nonce(24) ‖ ciphertext ‖ tag(16)`.

use crate::{Error, Result};
use backspace_meta::MetaStore;
use base64::Engine as _;

const PREFIX: &str = "sealed:v1:";
const SALT_SETTING: &str = "secret_salt";
const KEY_CONTEXT: &str = "backspace secrets v1";

/// Seals and opens stored secrets (see the module doc).
pub(crate) struct SecretBox {
    keys: Option<backspace_repo::Keys>,
}

impl SecretBox {
    /// The box of a server with `passphrase` (none: secrets stay as given).
    pub(crate) async fn new(store: &dyn MetaStore, passphrase: Option<&str>) -> Result<Self> {
        let Some(passphrase) = passphrase else {
            return Ok(Self { keys: None });
        };
        let fresh = hex::encode(rand::random::<[u8; 16]>());
        let salt = store.init_setting(SALT_SETTING, &fresh).await?;
        let passphrase = passphrase.to_owned();
        let key = tokio::task::spawn_blocking(move || derive(&passphrase, salt.as_bytes()))
            .await
            .map_err(|e| Error::Internal(format!("deriving the secrets key stopped: {e}")))??;
        Ok(Self {
            keys: Some(backspace_repo::Keys::from_master(&key, true)),
        })
    }

    /// Whether this server seals what it stores.
    pub(crate) fn seals(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether a stored value is sealed.
    pub(crate) fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// The stored form of `plain`, which belongs to `context` (e.g. `consumer:3:s3`).
    pub(crate) fn seal(&self, context: &str, plain: &str) -> String {
        match &self.keys {
            Some(keys) => {
                let sealed = keys.seal(plain.as_bytes(), context.as_bytes());
                format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(sealed))
            }
            None => plain.to_owned(),
        }
    }

    /// The secret a stored value holds.
    pub(crate) fn open(&self, context: &str, stored: &str) -> Result<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let unreadable =
            |why: &str| Error::BadRequest(format!("the saved credentials of {context} {why}: save them again"));
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| unreadable("are sealed, and this server has no repository passphrase to open them"))?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| unreadable("are damaged"))?;
        let plain = keys
            .open(&sealed, context.as_bytes())
            .map_err(|_| unreadable("do not open with this server's repository passphrase"))?;
        String::from_utf8(plain).map_err(|_| unreadable("are damaged"))
    }
}

fn derive(passphrase: &str, salt: &[u8]) -> Result<[u8; 32]> {
    // OWASP's argon2id recommendation (19 MiB, 2 passes), once per process.
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| Error::Internal(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| Error::Internal(format!("deriving the secrets key: {e}")))?;
    Ok(blake3::derive_key(KEY_CONTEXT, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(passphrase: &str) -> SecretBox {
        let key = derive(passphrase, b"0123456789abcdef").unwrap();
        SecretBox {
            keys: Some(backspace_repo::Keys::from_master(&key, true)),
        }
    }

    #[test]
    fn sealed_secrets_open_only_with_their_passphrase_and_place() {
        let b = boxed("right");
        let stored = b.seal("consumer:1:s3", "AKIA-secret");
        assert!(stored.starts_with(PREFIX) && !stored.contains("AKIA"), "{stored}");
        assert_ne!(
            stored,
            b.seal("consumer:1:s3", "AKIA-secret"),
            "a fresh nonce each time"
        );
        assert_eq!(b.open("consumer:1:s3", &stored).unwrap(), "AKIA-secret");
        assert!(b.open("consumer:2:s3", &stored).is_err(), "moved to another portal");
        assert!(boxed("wrong").open("consumer:1:s3", &stored).is_err());
        let mut tampered = stored.clone();
        tampered.replace_range(PREFIX.len() + 40..PREFIX.len() + 41, "A");
        assert!(b.open("consumer:1:s3", &tampered).is_err() || tampered == stored);
        // Values stored before sealing was on open as they are; without a passphrase nothing is sealed.
        assert_eq!(b.open("consumer:1:s3", "plain").unwrap(), "plain");
        let none = SecretBox { keys: None };
        assert_eq!(none.seal("c", "plain"), "plain");
        let err = none.open("consumer:1:s3", &stored).unwrap_err().to_string();
        assert!(err.contains("no repository passphrase"), "{err}");
    }
}
