//! Sign-in, sign-out and turning a presented credential into a [`Caller`].

use crate::caller::{Caller, Scopes, Via};
use crate::password::{self, PasswordParams};
use crate::token::{self, KEY_DOMAIN, SESSION_DOMAIN};
use crate::{Core, Error, Result};
use backspace_meta::{Portal, Session, User};
use backspace_types::datetime::now_ms;
use backspace_types::dto::auth::AuthRequest;
use backspace_types::SessionId;

/// A credential as presented, before it is checked. The server decides which one a request
/// carries (cookie, `Authorization` forms); this crate decides what it is worth.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A session token (cookie `asc_auth_key`, raw `Authorization`, or `Bearer`).
    Token(String),
    /// `Bearer sk-…`.
    ApiKey(String),
    /// `Basic base64(email:password)`.
    Basic { login: String, password: String },
}

impl std::fmt::Debug for Credential {
    // Secrets are never logged, not even by accident through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(***)"),
            Self::ApiKey(_) => f.write_str("ApiKey(***)"),
            Self::Basic { login, .. } => write!(f, "Basic({login}, ***)"),
        }
    }
}

/// A successful sign-in.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub token: String,
    /// `None` for a browser-session cookie.
    pub expires_at: Option<i64>,
    pub user: User,
}

/// Failed credentials all look the same to the client.
fn auth_failed() -> Error {
    Error::Unauthorized("User authentication failed".to_owned())
}

/// Minimum time between two `lastUsed` writes of one key: a key used in a tight loop must not
/// turn every read into a database write.
const TOUCH_EVERY_MS: i64 = 10_000;

/// An argon2id hash of nothing in particular, computed once.
fn dummy_hash() -> Result<String> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = password::hash_for_storage("no such user")?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

impl Core {
    /// The client hash of `password` or `passwordHash`, off the async threads (PBKDF2 with
    /// 100 000 rounds takes tens of milliseconds).
    pub(crate) async fn client_hash_of(&self, plain: Option<String>, hash: Option<String>) -> Result<Option<String>> {
        let params = self.password_params();
        tokio::task::spawn_blocking(move || password::from_request(plain.as_deref(), hash.as_deref(), &params))
            .await
            .map_err(|e| Error::Internal(format!("password hashing panicked: {e}")))
    }

    /// argon2id for storage, off the async threads.
    pub(crate) async fn storage_hash_of(&self, client_hash: String) -> Result<String> {
        tokio::task::spawn_blocking(move || password::hash_for_storage(&client_hash))
            .await
            .map_err(|e| Error::Internal(format!("password hashing panicked: {e}")))?
    }

    pub fn password_params(&self) -> PasswordParams {
        PasswordParams::new(&self.settings.password_salt)
    }

    /// Checks a person's password (or client hash). Throttled per (login, address).
    async fn check_password(&self, portal: &Portal, login: &str, client_hash: &str, address: &str) -> Result<User> {
        let store = self.store.as_ref();
        if let Some(retry_after) = self.throttle.check(store, login, address, now_ms()).await? {
            return Err(Error::TooManyAttempts { retry_after });
        }
        let user = self.store.user_by_email(portal.id, login).await?;
        // Verify against a dummy hash when the user is unknown, so timing does not tell which
        // e-mails exist.
        let stored = match &user {
            Some(u) => u.password_hash.clone(),
            None => dummy_hash()?,
        };
        let hash = client_hash.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &stored))
            .await
            .map_err(|e| Error::Internal(format!("password check panicked: {e}")))?;
        match user {
            Some(user) if ok => {
                self.throttle.record_success(store, login, address).await?;
                if user.status != 1 {
                    return Err(Error::InvalidOperation("User disabled".to_owned()));
                }
                Ok(user)
            }
            _ => {
                self.throttle.record_failure(store, login, address, now_ms()).await?;
                Err(auth_failed())
            }
        }
    }

    /// `POST /api/2.0/authentication`.
    pub async fn sign_in(&self, portal: &Portal, req: AuthRequest, address: &str) -> Result<SignedIn> {
        let login = req.username.unwrap_or_default();
        let client_hash = self
            .client_hash_of(req.password, req.passwordhash)
            .await?
            .unwrap_or_default();
        if login.trim().is_empty() || client_hash.is_empty() {
            return Err(auth_failed());
        }
        let user = self.check_password(portal, login.trim(), &client_hash, address).await?;
        let token = token::new_session_token();
        let now = now_ms();
        let expires_at = if req.session == Some(true) {
            None
        } else {
            Some(now + self.settings.session_lifetime.as_millis() as i64)
        };
        let session = Session {
            id: SessionId::random(),
            portal_id: portal.id,
            user_id: user.id,
            digest: token::digest(SESSION_DOMAIN, &token),
            created_at: now,
            // A browser-session cookie still expires on the server after the normal lifetime.
            expires_at: Some(expires_at.unwrap_or(now + self.settings.session_lifetime.as_millis() as i64)),
        };
        self.store.create_session(&session).await?;
        Ok(SignedIn {
            token,
            expires_at,
            user,
        })
    }

    /// Ends the session of `token` in `portal`. Unknown tokens are ignored.
    pub async fn sign_out(&self, portal: &Portal, token: &str) -> Result<()> {
        self.store
            .delete_session(portal.id, &token::digest(SESSION_DOMAIN, token))
            .await?;
        Ok(())
    }

    /// Checks a credential presented to `portal`. A credential of another portal is unknown
    /// here: the lookups filter on the portal.
    pub async fn authenticate(&self, portal: &Portal, credential: &Credential, address: &str) -> Result<Caller> {
        let now = now_ms();
        match credential {
            Credential::Token(t) => {
                let digest = token::digest(SESSION_DOMAIN, t);
                let session = self
                    .store
                    .session_by_digest(portal.id, &digest)
                    .await?
                    .ok_or_else(auth_failed)?;
                if !token::same(&session.digest, &digest) || session.expires_at.is_some_and(|e| e <= now) {
                    return Err(auth_failed());
                }
                let user = self.active_user(portal, session.user_id).await?;
                Ok(Caller {
                    portal: portal.clone(),
                    user,
                    via: Via::Session(session.id),
                    scopes: Scopes::All,
                })
            }
            Credential::ApiKey(k) => {
                if !token::looks_like_api_key(k) {
                    return Err(auth_failed());
                }
                let digest = token::digest(KEY_DOMAIN, k);
                let key = self
                    .store
                    .key_by_digest(portal.id, &digest)
                    .await?
                    .ok_or_else(auth_failed)?;
                if !token::same(&key.digest, &digest) || !key.is_active || key.expires_at.is_some_and(|e| e <= now) {
                    return Err(auth_failed());
                }
                let user = self.active_user(portal, key.user_id).await?;
                if key.last_used.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
                    self.store.touch_key(portal.id, key.id, now).await?;
                }
                let scopes = if key.permissions.is_empty() {
                    Scopes::All
                } else {
                    Scopes::Only(key.permissions)
                };
                Ok(Caller {
                    portal: portal.clone(),
                    user,
                    via: Via::ApiKey(key.id),
                    scopes,
                })
            }
            Credential::Basic { login, password: plain } => {
                let hash = self
                    .client_hash_of(Some(plain.clone()), None)
                    .await?
                    .unwrap_or_default();
                let user = self.check_password(portal, login, &hash, address).await?;
                Ok(Caller {
                    portal: portal.clone(),
                    user,
                    via: Via::Basic,
                    scopes: Scopes::All,
                })
            }
        }
    }

    async fn active_user(&self, portal: &Portal, id: backspace_types::UserId) -> Result<User> {
        match self.store.user(portal.id, id).await? {
            Some(user) if user.status == 1 => Ok(user),
            _ => Err(auth_failed()),
        }
    }
}
