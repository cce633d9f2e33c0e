//! API keys: `sk-` + 64 hex characters, shown once, stored as a digest.

use crate::caller::{Caller, Via};
use crate::token::{self, KEY_DOMAIN};
use crate::{Core, Error, Result};
use backspace_meta::ApiKey;
use backspace_types::datetime::now_ms;
use backspace_types::dto::keys::{CreateKeyRequest, UpdateKeyRequest, PERMISSIONS};
use backspace_types::{EmployeeType, KeyId};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Checks a permission list: `None`, `[]` or any list with `*` means unrestricted (`[]`).
fn normalise_permissions(list: Option<Vec<String>>) -> Result<Vec<String>> {
    let list = list.unwrap_or_default();
    if list.iter().any(|p| !PERMISSIONS.contains(&p.as_str())) {
        return Err(Error::BadRequest("Permissions are not valid.".to_owned()));
    }
    if list.iter().any(|p| p == "*") {
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = Vec::new();
    for p in list {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::validation("Name", "The Name field is required."));
    }
    if name.chars().count() > 30 {
        return Err(Error::validation("Name", "Incorrect name. Length must be less than 30"));
    }
    Ok(())
}

impl Core {
    /// Records a key event in the portal's audit log: the key's name and id, never its secret.
    async fn audit_key(&self, caller: &Caller, action: &str, key: &ApiKey) {
        let detail = format!("{} ({})", key.name, key.id);
        self.audit(caller.portal.id, Some(caller.user.id), action, detail).await;
    }

    /// `POST /api/2.0/keys`. Returns the key and its plaintext, which is never stored.
    pub async fn create_key(&self, caller: &Caller, req: CreateKeyRequest) -> Result<(ApiKey, String)> {
        if caller.kind() == EmployeeType::Guest {
            return Err(Error::denied("guests may not create api keys"));
        }
        let Some(name) = req.name else {
            return Err(Error::validation(
                "$",
                "JSON deserialization for type 'CreateApiKeyRequestDto' was missing required properties including: 'name'.",
            ));
        };
        check_name(&name)?;
        let permissions = normalise_permissions(req.permissions)?;
        let now = now_ms();
        let expires_at = match req.expiresindays {
            None => None,
            Some(days @ 1..=365) => Some(now + days * DAY_MS),
            Some(_) => {
                return Err(Error::validation(
                    "ExpiresInDays",
                    "Incorrect number of days. Value must be between 1 and 365",
                ))
            }
        };
        let plaintext = token::new_api_key();
        let key = ApiKey {
            id: KeyId::random(),
            portal_id: caller.portal.id,
            user_id: caller.user.id,
            name,
            digest: token::digest(KEY_DOMAIN, &plaintext),
            postfix: plaintext[plaintext.len() - 4..].to_owned(),
            permissions,
            is_active: true,
            created_at: now,
            expires_at,
            last_used: None,
        };
        self.store.create_key(&key).await?;
        self.audit_key(caller, "ApiKeyCreated", &key).await;
        Ok((key, plaintext))
    }

    /// `GET /api/2.0/keys`: every key of the portal for admins, one's own for others.
    pub async fn list_keys(&self, caller: &Caller) -> Result<Vec<ApiKey>> {
        let owner = if caller.is_admin() { None } else { Some(caller.user.id) };
        Ok(self.store.keys(caller.portal.id, owner).await?)
    }

    /// `GET /api/2.0/keys/@self`: the key the request was made with.
    pub async fn current_key(&self, caller: &Caller) -> Result<ApiKey> {
        let Via::ApiKey(id) = caller.via else {
            return Err(Error::NotFound("the request was not made with an api key".to_owned()));
        };
        self.key_of(caller, id).await
    }

    async fn key_of(&self, caller: &Caller, id: KeyId) -> Result<ApiKey> {
        self.store
            .key(caller.portal.id, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("api key `{id}` not found")))
    }

    fn may_manage(caller: &Caller, key: &ApiKey) -> bool {
        caller.is_admin() || key.user_id == caller.user.id
    }

    /// `PUT /api/2.0/keys/{id}`: `false` (not an error) for an expired key or a caller who may
    /// not manage it, as DocSpace.
    pub async fn update_key(&self, caller: &Caller, id: KeyId, req: UpdateKeyRequest) -> Result<bool> {
        let mut key = self.key_of(caller, id).await?;
        if !Self::may_manage(caller, &key) || key.expires_at.is_some_and(|e| e <= now_ms()) {
            return Ok(false);
        }
        if let Some(name) = req.name.filter(|n| !n.trim().is_empty()) {
            check_name(&name)?;
            key.name = name;
        }
        if let Some(list) = req.permissions.filter(|l| !l.is_empty()) {
            key.permissions = normalise_permissions(Some(list))?;
        }
        if let Some(active) = req.isactive {
            key.is_active = active;
        }
        self.store.update_key(&key).await?;
        self.audit_key(caller, "ApiKeyUpdated", &key).await;
        Ok(true)
    }

    /// `DELETE /api/2.0/keys/{id}`: `false` for a caller who may not manage the key.
    pub async fn delete_key(&self, caller: &Caller, id: KeyId) -> Result<bool> {
        let key = self.key_of(caller, id).await?;
        if !Self::may_manage(caller, &key) {
            return Ok(false);
        }
        let deleted = self.store.delete_key(caller.portal.id, id).await?;
        if deleted {
            self.audit_key(caller, "ApiKeyRevoked", &key).await;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_checked_and_normalised() {
        assert_eq!(normalise_permissions(None).unwrap(), Vec::<String>::new());
        assert_eq!(
            normalise_permissions(Some(vec!["*".into(), "files:read".into()])).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            normalise_permissions(Some(vec!["files:read".into(), "files:read".into()])).unwrap(),
            vec!["files:read".to_owned()]
        );
        let err = normalise_permissions(Some(vec!["files:admin".into()])).unwrap_err();
        assert_eq!(err.to_string(), "Permissions are not valid.");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ci").is_ok());
        assert!(matches!(check_name("   "), Err(Error::Validation { .. })));
        assert!(check_name(&"x".repeat(30)).is_ok());
        assert!(matches!(check_name(&"x".repeat(31)), Err(Error::Validation { .. })));
    }
}
