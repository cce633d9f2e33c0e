//! Portals: the default portal, registration, deletion, and choosing the portal of a request.

use crate::caller::Caller;
use crate::password;
use crate::{Core, Error, Result};
use backspace_meta::{NewPortal, NewUser, Portal, StoreError};
use backspace_storage::BlobKey;
use backspace_types::datetime::now_ms;
use backspace_types::dto::portal::RegisterRequest;
use backspace_types::{EmployeeType, PortalId, UserId};

/// Who owns the default portal on first start.
#[derive(Clone, Debug, Default)]
pub struct OwnerSeed {
    /// The portal alias (`localhost` unless configured).
    pub alias: String,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Credentials made up on first start, to print once.
#[derive(Clone, Debug)]
pub struct GeneratedOwner {
    pub email: String,
    pub password: String,
}

/// What registration answers.
#[derive(Debug)]
pub enum RegisterOutcome {
    Created {
        portal: Portal,
    },
    /// Refused, with DocSpace's error code (`portalNameExist`, `params`, …) and message.
    Rejected {
        code: &'static str,
        message: String,
    },
}

const DEFAULT_EMAIL: &str = "admin@backspace.local";

/// DocSpace's alias rule: `^[a-z0-9]([a-z0-9-]){1,61}[a-z0-9]$`, lower-cased.
fn valid_alias(alias: &str) -> bool {
    let b = alias.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DocSpace's name rule: letters, marks, apostrophes, spaces and hyphens, at most 255.
pub(crate) fn valid_name(name: &str) -> bool {
    name.chars().count() <= 255
        && name
            .chars()
            .all(|c| c.is_alphabetic() || "' -".contains(c) || is_mark(c))
}

fn is_mark(c: char) -> bool {
    // Combining diacritical marks, the common ranges.
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// A plausible e-mail address: one `@`, non-empty local part, a domain with no spaces.
pub(crate) fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && email.len() <= 255
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

impl Core {
    /// Creates the default portal on first start. Later starts change nothing. Several
    /// instances starting at once are fine: the alias is unique, the loser finds the winner's.
    pub async fn ensure_default_portal(&self, seed: OwnerSeed) -> Result<Option<GeneratedOwner>> {
        if self.store.default_portal().await?.is_some() {
            return Ok(None);
        }
        let email = seed.email.clone().unwrap_or_else(|| DEFAULT_EMAIL.to_owned());
        if !valid_email(&email) {
            return Err(Error::BadRequest(format!(
                "owner e-mail `{email}` is not a valid address"
            )));
        }
        let (plain, generated) = match seed.password.clone() {
            Some(p) => {
                password::check_policy(&p)?;
                (p, false)
            }
            None => (password::generate(), true),
        };
        let client = self
            .client_hash_of(Some(plain.clone()), None)
            .await?
            .unwrap_or_default();
        let hash = self.storage_hash_of(client).await?;
        let now = now_ms();
        let portal = NewPortal {
            alias: seed.alias.to_ascii_lowercase(),
            name: "backspace".to_owned(),
            language: "en-US".to_owned(),
            time_zone: "UTC".to_owned(),
            is_default: true,
            now,
        };
        let owner = owner_user(&email, "Portal", "Owner", hash, now);
        match self.store.create_portal(portal, owner).await {
            Ok(_) => Ok(generated.then_some(GeneratedOwner { email, password: plain })),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /apisystem/portal/register`. Whether registration is open is the server's call.
    pub async fn register_portal(&self, req: RegisterRequest) -> Result<RegisterOutcome> {
        let reject = |code, message: &str| {
            Ok(RegisterOutcome::Rejected {
                code,
                message: message.to_owned(),
            })
        };
        let alias = req.portalname.unwrap_or_default().trim().to_ascii_lowercase();
        if alias.is_empty() {
            return reject("portalNameEmpty", "portalName is required");
        }
        if alias.len() < 3 {
            return reject("tooShortError", "portalName is too short");
        }
        if !valid_alias(&alias) {
            return reject("portalNameIncorrect", "Unallowable symbols in portalName");
        }
        let first = req.firstname.unwrap_or_default().trim().to_owned();
        let last = req.lastname.unwrap_or_default().trim().to_owned();
        if format!("{first}{last}").is_empty() {
            return reject("error", "name is required");
        }
        if !valid_name(&first) || !valid_name(&last) {
            return reject("error", "name is incorrect");
        }
        let email = req.email.unwrap_or_default().trim().to_owned();
        if !valid_email(&email) {
            return reject("params", "[\"email\"]");
        }
        if let Some(p) = req.password.as_deref().filter(|p| !p.is_empty()) {
            if password::check_policy(p).is_err() {
                return reject("passPolicyError", "Password is incorrect");
            }
        }
        let plain = req
            .password
            .filter(|p| !p.is_empty())
            .or_else(|| Some(password::generate()));
        let client = self.client_hash_of(plain, req.passwordhash).await?.unwrap_or_default();
        let hash = self.storage_hash_of(client).await?;
        let now = now_ms();
        let language = match req.language.as_deref().map(str::trim) {
            None | Some("") | Some("en") => "en-US".to_owned(),
            Some(l) => l.chars().take(7).collect(),
        };
        let portal = NewPortal {
            alias: alias.clone(),
            name: "Cloud space for your office docs".to_owned(),
            language,
            time_zone: req
                .timezonename
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| "UTC".to_owned()),
            is_default: false,
            now,
        };
        match self
            .store
            .create_portal(portal, owner_user(&email, &first, &last, hash, now))
            .await
        {
            Ok((portal, _owner)) => Ok(RegisterOutcome::Created { portal }),
            Err(StoreError::Conflict(_)) => reject("portalNameExist", "Portal already exists"),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /api/2.0/portal/deleteportalimmediately`: the owner deletes their portal with its
    /// people, credentials, folders and files.
    pub async fn delete_portal(&self, caller: &Caller) -> Result<()> {
        if !caller.is_owner() {
            return Err(Error::denied("only the owner deletes a portal"));
        }
        if caller.portal.is_default {
            return Err(Error::InvalidOperation(
                "The default portal of the server cannot be deleted".to_owned(),
            ));
        }
        let released = self.store.delete_portal(caller.portal.id).await?;
        // The rows are gone, their bytes recorded as garbage by the same commit; the bytes go
        // after them (a stop here leaves them to the cleaner, never a row without bytes).
        match self.blobs.delete_prefix(&portal_prefix(caller.portal.id)).await {
            Ok(_) => {
                if let Err(e) = self.store.forget_blob_garbage(&released).await {
                    tracing::warn!(portal = %caller.portal.id, error = %e, "forgetting the deleted files of a deleted portal failed; the cleaner does");
                }
            }
            Err(e) => {
                tracing::warn!(portal = %caller.portal.id, error = %e, "deleting the files of a deleted portal failed; the cleaner retries")
            }
        }
        Ok(())
    }

    /// The portal a request is for: the `Origin` host, else the `Host`, else the default
    /// portal. A host matches an alias exactly, or by its first label (`alias.example.com`).
    pub async fn resolve_portal(&self, origin_host: Option<&str>, host: Option<&str>) -> Result<Option<Portal>> {
        for candidate in [origin_host, host].into_iter().flatten() {
            let name = candidate.trim().trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if let Some(p) = self.store.portal_by_alias(&name).await? {
                return Ok(Some(p));
            }
            let is_ip = name.parse::<std::net::IpAddr>().is_ok();
            if let (false, Some((label, _))) = (is_ip, name.split_once('.')) {
                if let Some(p) = self.store.portal_by_alias(label).await? {
                    return Ok(Some(p));
                }
            }
        }
        Ok(self.store.default_portal().await?)
    }

    /// The owner of the default portal, as a caller: what `backspace keys create` acts as.
    pub async fn default_owner(&self) -> Result<Caller> {
        let portal = self
            .store
            .default_portal()
            .await?
            .ok_or_else(|| Error::NotFound("there is no default portal yet".to_owned()))?;
        let user = self
            .store
            .user(portal.id, portal.owner_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("the owner of portal `{}` is missing", portal.alias)))?;
        Ok(Caller {
            portal,
            user,
            via: crate::Via::Local,
            scopes: crate::Scopes::All,
        })
    }

    pub async fn portal(&self, id: PortalId) -> Result<Option<Portal>> {
        Ok(self.store.portal(id).await?)
    }
}

/// Where a portal's blobs live.
pub(crate) fn portal_prefix(portal: PortalId) -> BlobKey {
    BlobKey::new(format!("portals/{portal}")).expect("a portal id makes a valid key")
}

fn owner_user(email: &str, first: &str, last: &str, password_hash: String, now: i64) -> NewUser {
    NewUser {
        id: UserId::random(),
        email: email.to_owned(),
        first_name: first.to_owned(),
        last_name: last.to_owned(),
        kind: EmployeeType::DocSpaceAdmin,
        is_owner: true,
        activation_status: 1,
        password_hash,
        created_by: None,
        now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_and_emails() {
        assert!(valid_alias("integration-test-portal-k3j9x2-2026-05-05t08-21-18-123z"));
        assert!(valid_alias("abc"));
        assert!(!valid_alias("-abc") && !valid_alias("abc-") && !valid_alias("a_b") && !valid_alias("ab"));
        assert!(valid_name("Anne-Marie O'Neil") && valid_name("Zoë") && valid_name(""));
        assert!(!valid_name("<script>"));
        assert!(valid_email("user_1_x@test.com"));
        assert!(!valid_email("nope") && !valid_email("a@") && !valid_email("a b@c.d") && !valid_email("a@b@c"));
    }
}
