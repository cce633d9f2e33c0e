//! `ThirdPartyConsumer` targets: object storage named by a DocSpace data-store consumer (`s3`,
//! `googlecloud`, `rackspace`) with DocSpace's property names, reached through OpenDAL.
//!
//! Credentials come from the portal's saved consumer settings (`POST settings/authservice`) or
//! from the request's `storageParams`; request values win. Secrets (keys, the GCS JSON) are kept
//! in the database because a later restore or delete needs them, and no endpoint ever returns
//! them: listings show public properties only.

use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_storage::{BlobKey, ObjectStore, S3Config};
use backspace_types::datetime::now_ms;
use backspace_types::PortalId;
use std::collections::BTreeMap;

/// The sub-folder (object prefix) of backups inside a consumer's bucket, as DocSpace's `subdir`.
pub(crate) const SUBDIR: &str = "backup";

/// Rackspace's identity service (overridable with the `identityurl` property).
const RACKSPACE_IDENTITY: &str = "https://identity.api.rackspacecloud.com/v2.0/tokens";

/// A property of a consumer: its DocSpace name, title, and whether it is secret.
pub struct Prop {
    pub name: &'static str,
    pub title: &'static str,
    pub secret: bool,
    /// Part of the credentials that make the consumer "set".
    pub credential: bool,
}

const fn prop(name: &'static str, title: &'static str, secret: bool, credential: bool) -> Prop {
    Prop {
        name,
        title,
        secret,
        credential,
    }
}

/// A data-store consumer backspace can write backups to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    S3,
    GoogleCloud,
    Rackspace,
}

const S3_PROPS: &[Prop] = &[
    prop("acesskey", "Access key", true, true),
    prop("secretaccesskey", "Secret access key", true, true),
    prop("bucket", "Bucket", false, false),
    prop("region", "Region", false, false),
    prop("serviceurl", "Service URL", false, false),
    prop("forcepathstyle", "Force path style", false, false),
    prop("usehttp", "Use HTTP", false, false),
    prop("sse", "Server-side encryption", false, false),
    prop("ssekey", "Server-side encryption key", true, false),
];
const GCS_PROPS: &[Prop] = &[
    prop("json", "Service account key (JSON)", true, true),
    prop("bucket", "Bucket", false, false),
];
const RACKSPACE_PROPS: &[Prop] = &[
    prop("username", "User name", true, true),
    prop("apiKey", "API key", true, true),
    prop("public_container", "Public container", false, false),
    prop("private_container", "Private container", false, false),
    prop("region", "Region", false, false),
    prop("identityurl", "Identity service URL", false, false),
];

impl Module {
    pub const ALL: [Module; 3] = [Self::S3, Self::GoogleCloud, Self::Rackspace];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.key().eq_ignore_ascii_case(name.trim()))
    }

    /// The consumer key (`module`).
    pub fn key(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::GoogleCloud => "googlecloud",
            Self::Rackspace => "rackspace",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::S3 => "Amazon AWS S3",
            Self::GoogleCloud => "Google Cloud Storage",
            Self::Rackspace => "Rackspace Cloud Storage",
        }
    }

    pub fn props(self) -> &'static [Prop] {
        match self {
            Self::S3 => S3_PROPS,
            Self::GoogleCloud => GCS_PROPS,
            Self::Rackspace => RACKSPACE_PROPS,
        }
    }

    fn prop(self, name: &str) -> Option<&'static Prop> {
        self.props().iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Whether `props` (lower-case names) hold the credentials.
    fn is_set(self, props: &BTreeMap<String, String>) -> bool {
        self.props()
            .iter()
            .filter(|p| p.credential)
            .all(|p| props.get(&p.name.to_ascii_lowercase()).is_some_and(|v| !v.is_empty()))
    }
}

/// Keeps the public properties of a consumer's parameters (for any response).
pub fn public_params(params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let module = params.get("module").and_then(|m| Module::parse(m));
    params
        .iter()
        .filter(|(k, _)| match module {
            Some(m) => m.prop(k).is_none_or(|p| !p.secret),
            None => true,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A checked consumer target: the module and the parameters a record keeps (lower-case names;
/// secrets only when the request passed them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Consumer {
    pub module: Module,
    pub params: BTreeMap<String, String>,
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

impl Consumer {
    /// The object key of an archive: `{subdir}/{name}`.
    pub fn key(&self, name: &str) -> Result<BlobKey> {
        let subdir = self.params.get("subdir").map_or(SUBDIR, String::as_str);
        let key = if subdir.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", subdir.trim_matches('/'))
        };
        BlobKey::new(key).map_err(|e| Error::BadRequest(format!("filePath: {e}")))
    }

    /// Where the consumer stores things, for messages.
    pub fn describe(&self) -> String {
        let container = match self.module {
            Module::Rackspace => self.params.get("private_container"),
            _ => self.params.get("bucket"),
        };
        format!(
            "{} bucket `{}`",
            self.module.key(),
            container.map_or("", String::as_str)
        )
    }
}

/// What a consumer's sealed settings are bound to.
fn consumer_context(portal: PortalId, module: Module) -> String {
    format!("consumer `{}` of portal {portal}", module.key())
}

use crate::secrets::SecretBox;

impl Core {
    /// The saved properties of a consumer of the portal (lower-case names).
    async fn saved_consumer(&self, portal: PortalId, module: Module) -> Result<BTreeMap<String, String>> {
        let stored = self.store.consumer_props(portal, module.key()).await?;
        self.open_consumer(portal, module, stored.as_deref()).await
    }

    /// The properties a stored consumer value holds (none stored: none).
    async fn open_consumer(
        &self,
        portal: PortalId,
        module: Module,
        stored: Option<&str>,
    ) -> Result<BTreeMap<String, String>> {
        let Some(stored) = stored else {
            return Ok(BTreeMap::new());
        };
        let json = self.secrets().await?.open(&consumer_context(portal, module), stored)?;
        serde_json::from_str(&json).map_err(|e| Error::Internal(format!("saved consumer settings are unreadable: {e}")))
    }

    /// Checks the parameters of a `ThirdPartyConsumer` request (`module` plus properties).
    pub(crate) async fn resolve_consumer(
        &self,
        portal: PortalId,
        params: &BTreeMap<String, String>,
    ) -> Result<Consumer> {
        let name = params.get("module").filter(|m| !m.trim().is_empty()).ok_or_else(|| {
            Error::BadRequest(
                "module is required for ThirdPartyConsumer storage (s3, googlecloud or rackspace)".to_owned(),
            )
        })?;
        let module = Module::parse(name).ok_or_else(|| {
            Error::BadRequest(format!(
                "unknown storage module `{name}`: use s3, googlecloud or rackspace"
            ))
        })?;
        let mut kept = BTreeMap::from([("module".to_owned(), module.key().to_owned())]);
        for (k, v) in params {
            if k == "module" || k == "subdir" || k == "filepath" {
                continue;
            }
            if module.prop(k).is_none() {
                return Err(Error::BadRequest(format!(
                    "storage parameter `{k}` is not a property of the {} module",
                    module.key()
                )));
            }
            kept.insert(k.clone(), v.trim().to_owned());
        }
        kept.insert("subdir".to_owned(), SUBDIR.to_owned());
        let merged = self.consumer_settings(portal, module, &kept).await?;
        if !module.is_set(&merged) {
            return Err(Error::BadRequest(format!(
                "the {} storage is not configured: save its keys with POST /api/2.0/settings/authservice or pass them in storageParams",
                module.key()
            )));
        }
        let container = match module {
            Module::Rackspace => "private_container",
            _ => "bucket",
        };
        if merged.get(container).is_none_or(|b| b.is_empty()) {
            return Err(Error::BadRequest(format!(
                "{container} is required for {} storage",
                module.key()
            )));
        }
        if module == Module::S3 {
            if let Some(sse) = merged.get("sse").filter(|s| !s.is_empty()) {
                sse_header(sse)?;
            }
        }
        Ok(Consumer { module, params: kept })
    }

    /// Saved properties overlaid with the given ones (non-empty values win).
    async fn consumer_settings(
        &self,
        portal: PortalId,
        module: Module,
        params: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let mut merged = self.saved_consumer(portal, module).await?;
        for (k, v) in params {
            if !v.is_empty() {
                merged.insert(k.clone(), v.clone());
            }
        }
        Ok(merged)
    }

    /// Opens the object store of a consumer target.
    pub(crate) async fn consumer_store(&self, portal: PortalId, consumer: &Consumer) -> Result<ObjectStore> {
        let p = self
            .consumer_settings(portal, consumer.module, &consumer.params)
            .await?;
        let get = |k: &str| p.get(k).cloned().unwrap_or_default();
        let unavailable = |e: backspace_storage::StorageError| {
            Error::StorageUnavailable(format!("the {} cannot be used: {e}", consumer.describe()))
        };
        match consumer.module {
            Module::S3 => {
                let region = Some(get("region"))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "us-east-1".into());
                let scheme = if truthy(p.get("usehttp")) { "http" } else { "https" };
                let service = get("serviceurl");
                let endpoint = if service.is_empty() {
                    format!("{scheme}://s3.{region}.amazonaws.com")
                } else if service.contains("://") {
                    service
                } else {
                    format!("{scheme}://{service}")
                };
                let config = S3Config {
                    bucket: get("bucket"),
                    endpoint,
                    region,
                    access_key: get("acesskey"),
                    secret_key: get("secretaccesskey"),
                    root: String::new(),
                    virtual_host_style: !truthy(p.get("forcepathstyle")),
                    server_side_encryption: p
                        .get("sse")
                        .filter(|s| !s.is_empty())
                        .map(|s| sse_header(s))
                        .transpose()?
                        .flatten(),
                };
                ObjectStore::s3(&config).map_err(unavailable)
            }
            Module::GoogleCloud => ObjectStore::gcs(&get("bucket"), &get("json"), "").map_err(unavailable),
            Module::Rackspace => {
                let identity = Some(get("identityurl"))
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| RACKSPACE_IDENTITY.to_owned());
                ObjectStore::rackspace(
                    &identity,
                    &get("username"),
                    &get("apikey"),
                    &get("region"),
                    &get("private_container"),
                    "",
                )
                .await
                .map_err(unavailable)
            }
        }
    }

    /// `POST /api/2.0/settings/authservice`: saves (or, with all values empty, clears) the
    /// portal's keys of a consumer. True when something changed.
    pub async fn save_consumer(&self, caller: &Caller, name: &str, props: &[(String, String)]) -> Result<bool> {
        if !caller.is_admin() {
            return Err(Error::denied("only the owner and DocSpace admins manage storage keys"));
        }
        let module = Module::parse(name).ok_or_else(|| {
            Error::BadRequest(format!(
                "Bad keys: unknown consumer `{name}` (use s3, googlecloud or rackspace)"
            ))
        })?;
        let mut values = BTreeMap::new();
        for (k, v) in props {
            let prop = module
                .prop(k)
                .ok_or_else(|| Error::BadRequest(format!("Bad keys: `{k}` is not a property of {}", module.key())))?;
            if v.len() > 64 * 1024 {
                return Err(Error::BadRequest(format!(
                    "Bad keys: the value of `{}` is too long",
                    prop.name
                )));
            }
            values.insert(prop.name.to_ascii_lowercase(), v.trim().to_owned());
        }
        let portal = caller.portal.id;
        let changed = if values.values().all(|v| v.is_empty()) {
            self.store
                .set_consumer_props(portal, module.key(), None, now_ms())
                .await?
        } else {
            // Settings this server cannot open (sealed under another passphrase) are replaced
            // by what the request gives.
            let stored = self.store.consumer_props(portal, module.key()).await?;
            let before = match self.open_consumer(portal, module, stored.as_deref()).await {
                Err(Error::BadRequest(why)) => {
                    tracing::warn!(portal = %portal, consumer = module.key(), %why, "replacing saved consumer settings that do not open");
                    BTreeMap::new()
                }
                other => other?,
            };
            let mut saved = before.clone();
            saved.extend(values);
            let json = serde_json::to_string(&saved).map_err(|e| Error::Internal(e.to_string()))?;
            // Sealed with a fresh nonce each time: "changed" is decided on the plain values (and
            // a value saved before sealing was on is sealed now).
            let secrets = self.secrets().await?;
            let as_wanted = stored
                .as_deref()
                .is_some_and(|s| SecretBox::is_sealed(s) == secrets.seals());
            if saved == before && as_wanted {
                false
            } else {
                let sealed = secrets.seal(&consumer_context(portal, module), &json);
                self.store
                    .set_consumer_props(portal, module.key(), Some(&sealed), now_ms())
                    .await?
            }
        };
        if changed {
            self.audit(
                portal,
                Some(caller.user.id),
                "ConsumerKeysChanged",
                module.key().to_owned(),
            )
            .await;
        }
        Ok(changed)
    }

    /// `GET /api/2.0/settings/authservice`: the consumers with their properties; secret values
    /// are never returned (they read as empty).
    pub async fn consumers(&self, caller: &Caller) -> Result<Vec<ConsumerView>> {
        if !caller.is_admin() {
            return Err(Error::denied("only the owner and DocSpace admins manage storage keys"));
        }
        let mut out = Vec::new();
        for module in Module::ALL {
            let saved = self.saved_consumer(caller.portal.id, module).await?;
            out.push(ConsumerView {
                module,
                is_set: module.is_set(&saved),
                current: false,
                values: module
                    .props()
                    .iter()
                    .map(|p| {
                        let value = if p.secret {
                            String::new()
                        } else {
                            saved.get(&p.name.to_ascii_lowercase()).cloned().unwrap_or_default()
                        };
                        (p, value)
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// `GET /api/2.0/settings/storage/backup`: each consumer, whether it is set, whether the
    /// schedule uses it, and its public properties (the schedule's values when it does).
    pub async fn backup_storages(&self, caller: &Caller, dump: bool) -> Result<Vec<ConsumerView>> {
        let scope = self.scope(caller, dump)?;
        if !caller.is_admin() {
            return Err(Error::denied("only the owner and DocSpace admins see backup storages"));
        }
        let schedule = self.store.schedule(scope).await?.filter(|s| s.storage_type == 5);
        let schedule_params: BTreeMap<String, String> = schedule
            .as_ref()
            .and_then(|s| serde_json::from_str(&s.storage_params).ok())
            .unwrap_or_default();
        let mut out = Vec::new();
        for module in Module::ALL {
            let saved = self.saved_consumer(caller.portal.id, module).await?;
            let current = schedule.is_some()
                && schedule_params
                    .get("module")
                    .and_then(|m| Module::parse(m))
                    .is_some_and(|m| m == module);
            let source = if current { &schedule_params } else { &saved };
            out.push(ConsumerView {
                module,
                is_set: module.is_set(&saved),
                current,
                values: module
                    .props()
                    .iter()
                    .filter(|p| !p.secret)
                    .map(|p| (p, source.get(&p.name.to_ascii_lowercase()).cloned().unwrap_or_default()))
                    .collect(),
            });
        }
        Ok(out)
    }
}

/// A consumer as the settings endpoints show it.
pub struct ConsumerView {
    pub module: Module,
    pub is_set: bool,
    pub current: bool,
    /// Each property with its value (empty for secrets).
    pub values: Vec<(&'static Prop, String)>,
}

/// The `x-amz-server-side-encryption` value for DocSpace's `sse` property.
fn sse_header(sse: &str) -> Result<Option<String>> {
    match sse.trim().to_ascii_lowercase().as_str() {
        "" | "none" => Ok(None),
        "aes256" | "serversides3" | "sse-s3" => Ok(Some("AES256".to_owned())),
        "awskms" | "aws:kms" | "serversidekms" | "sse-kms" => Ok(Some("aws:kms".to_owned())),
        other => Err(Error::BadRequest(format!(
            "sse `{other}` is not supported: use none, aes256 or awskms"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_leave_through_public_params() {
        let params = BTreeMap::from([
            ("module".to_owned(), "s3".to_owned()),
            ("bucket".to_owned(), "b".to_owned()),
            ("acesskey".to_owned(), "AK".to_owned()),
            ("secretaccesskey".to_owned(), "SK".to_owned()),
            ("ssekey".to_owned(), "K".to_owned()),
        ]);
        let public = public_params(&params);
        assert_eq!(public.keys().collect::<Vec<_>>(), ["bucket", "module"]);
        let gcs = BTreeMap::from([
            ("module".to_owned(), "GoogleCloud".to_owned()),
            ("json".to_owned(), "{}".into()),
        ]);
        assert!(!public_params(&gcs).contains_key("json"));
    }

    #[test]
    fn modules_and_sse() {
        assert_eq!(Module::parse(" S3 "), Some(Module::S3));
        assert_eq!(Module::parse("azure"), None);
        assert_eq!(sse_header("AES256").unwrap().as_deref(), Some("AES256"));
        assert_eq!(sse_header("none").unwrap(), None);
        assert!(sse_header("rot13").is_err());
        let set = BTreeMap::from([
            ("username".to_owned(), "u".to_owned()),
            ("apikey".to_owned(), "k".to_owned()),
        ]);
        assert!(Module::Rackspace.is_set(&set));
        assert!(!Module::S3.is_set(&set));
    }

    #[test]
    fn archive_keys_live_under_the_subdir() {
        let c = Consumer {
            module: Module::S3,
            params: BTreeMap::from([("subdir".to_owned(), "backup".to_owned())]),
        };
        assert_eq!(c.key("p_2026.tar.zst").unwrap().as_str(), "backup/p_2026.tar.zst");
        assert!(c.key("../x").is_err());
    }
}
