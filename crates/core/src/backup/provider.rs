//! `ThridpartyDocuments` targets: the portal's connected backup folder on a WebDAV server
//! (Nextcloud, ownCloud, kDrive, Yandex or any WebDAV server), connected through
//! `POST /api/2.0/files/thirdparty/backup` and named by the folder id `sbox-{providerId}`.

use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_meta::BackupProvider;
use backspace_storage::{BlobKey, WebDavStore};
use backspace_types::datetime::now_ms;
use backspace_types::PortalId;

/// What `POST files/thirdparty/backup` takes.
#[derive(Clone, Debug, Default)]
pub struct ConnectProvider {
    pub url: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub customer_title: Option<String>,
    pub provider_key: Option<String>,
}

/// The connected folder as the API shows it.
#[derive(Clone, Debug)]
pub struct ProviderView {
    /// `sbox-{providerId}`.
    pub folder_id: String,
    pub provider_id: i64,
    pub provider_key: String,
    pub title: String,
    pub created: i64,
}

/// WebDAV-type providers (DocSpace stores Nextcloud and ownCloud as WebDav), with the default
/// address of the services that have one.
const WEBDAV_PROVIDERS: &[(&str, &str)] = &[
    ("WebDav", ""),
    ("NextCloud", ""),
    ("OwnCloud", ""),
    ("kDrive", "https://connect.drive.infomaniak.com"),
    ("Yandex", "https://webdav.yandex.ru"),
];
const OAUTH_PROVIDERS: &[&str] = &["Box", "DropboxV2", "GoogleDrive", "OneDrive", "SharePoint"];

fn view(p: &BackupProvider) -> ProviderView {
    ProviderView {
        folder_id: format!("sbox-{}", p.id),
        provider_id: p.id,
        provider_key: p.provider_key.clone(),
        title: p.title.clone(),
        created: p.created_at,
    }
}

/// The WebDAV folder of a connection: Nextcloud and ownCloud addresses given as the server's
/// root get their WebDAV path.
fn dav_url(key: &str, url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let cloud = key.eq_ignore_ascii_case("nextcloud") || key.eq_ignore_ascii_case("owncloud");
    if cloud && !url.contains("/remote.php/") {
        format!("{url}/remote.php/webdav")
    } else {
        url.to_owned()
    }
}

/// Splits a folder or file id `sbox-{id}` / `sbox-{id}|path` / `sbox-{id}-|path` into the
/// provider id and the relative path.
pub(crate) fn parse_entry_id(raw: &str) -> Option<(i64, String)> {
    let rest = raw.trim().strip_prefix("sbox-")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let id = rest[..digits].parse().ok()?;
    let tail = &rest[digits..];
    let path = tail
        .strip_prefix("-|")
        .or_else(|| tail.strip_prefix('|'))
        .or_else(|| tail.strip_prefix('/'))
        .or_else(|| tail.is_empty().then_some(""))?;
    Some((id, path.trim_matches('/').to_owned()))
}

/// What a provider's sealed password is bound to.
fn provider_context(portal: PortalId) -> String {
    format!("the WebDAV backup folder of portal {portal}")
}

impl Core {
    /// The WebDAV store of a provider.
    pub(crate) fn provider_store(p: &BackupProvider) -> Result<WebDavStore> {
        WebDavStore::new(&p.url, &p.login, &p.password)
            .map_err(|e| Error::BadRequest(format!("the WebDAV folder cannot be used: {e}")))
    }

    /// The portal's connected provider, its password opened (see [`crate::secrets`]).
    async fn saved_provider(&self, portal: PortalId) -> Result<Option<BackupProvider>> {
        let Some(mut p) = self.store.backup_provider(portal).await? else {
            return Ok(None);
        };
        p.password = self.secrets().await?.open(&provider_context(portal), &p.password)?;
        Ok(Some(p))
    }

    /// The portal's provider named by a folder id, and the path inside it.
    pub(crate) async fn provider_folder(&self, portal: PortalId, folder_id: &str) -> Result<(BackupProvider, String)> {
        let not_found = || Error::NotFound("The required folder was not found".to_owned());
        let (id, path) = parse_entry_id(folder_id).ok_or_else(not_found)?;
        if !path.is_empty() {
            BlobKey::new(path.clone()).map_err(|e| Error::BadRequest(format!("folderId `{folder_id}`: {e}")))?;
        }
        let provider = self
            .saved_provider(portal)
            .await?
            .filter(|p| p.id == id)
            .ok_or_else(not_found)?;
        Ok((provider, path))
    }

    /// `GET /api/2.0/files/thirdparty/backup`: the connected backup folder, if any.
    pub async fn backup_provider(&self, caller: &Caller) -> Result<Option<ProviderView>> {
        if !caller.is_admin() {
            return Ok(None);
        }
        Ok(self.store.backup_provider(caller.portal.id).await?.as_ref().map(view))
    }

    /// `POST /api/2.0/files/thirdparty/backup`: connects the portal's backup folder, or updates
    /// it. The folder is checked (address, login, password) before anything is saved.
    pub async fn connect_backup_provider(&self, caller: &Caller, req: ConnectProvider) -> Result<ProviderView> {
        if !caller.is_admin() {
            return Err(Error::InvalidOperation(
                "You don't have enough permission to create".to_owned(),
            ));
        }
        // A saved password this server cannot open (sealed under another passphrase) is as good
        // as none: the request may give the password again.
        let existing = self.store.backup_provider(caller.portal.id).await?;
        let existing_password = match &existing {
            Some(p) => self
                .secrets()
                .await?
                .open(&provider_context(caller.portal.id), &p.password)
                .ok(),
            None => None,
        };
        let raw_key = req.provider_key.as_deref().unwrap_or("").trim().to_owned();
        let (key, default_url) = match WEBDAV_PROVIDERS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&raw_key)) {
            Some(found) => *found,
            None if OAUTH_PROVIDERS.iter().any(|k| k.eq_ignore_ascii_case(&raw_key)) => {
                return Err(Error::BadRequest(format!(
                    "providerKey `{raw_key}` needs OAuth, which this server does not offer: connect a WebDAV folder (WebDav, Nextcloud, ownCloud, kDrive, Yandex)"
                )))
            }
            None => {
                return Err(Error::BadRequest(format!(
                    "unknown providerKey `{raw_key}`: use WebDav, Nextcloud, ownCloud, kDrive or Yandex"
                )))
            }
        };
        let title = req
            .customer_title
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .or_else(|| existing.as_ref().map(|p| p.title.clone()))
            .ok_or_else(|| Error::InvalidOperation("Incorrect title".to_owned()))?;
        if title.chars().count() > 170 {
            return Err(Error::BadRequest(
                "customerTitle is longer than 170 characters".to_owned(),
            ));
        }
        let url = req
            .url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .or_else(|| (!default_url.is_empty()).then(|| default_url.to_owned()))
            .ok_or_else(|| Error::BadRequest("url is required: the address of the WebDAV folder".to_owned()))?;
        let url = dav_url(key, &url);
        let login = req.login.unwrap_or_default();
        // An update without a password keeps the saved one.
        let password = match req.password.filter(|p| !p.is_empty()) {
            Some(p) => p,
            None => existing_password.unwrap_or_default(),
        };
        let store = WebDavStore::new(&url, &login, &password).map_err(|e| Error::BadRequest(e.to_string()))?;
        store
            .check()
            .await
            .map_err(|e| Error::BadRequest(format!("connecting to the WebDAV folder failed: {e}")))?;
        let saved = self
            .store
            .set_backup_provider(&BackupProvider {
                portal_id: caller.portal.id,
                id: 0,
                provider_key: key.to_owned(),
                title,
                url,
                login,
                password: self
                    .secrets()
                    .await?
                    .seal(&provider_context(caller.portal.id), &password),
                created_at: now_ms(),
            })
            .await?;
        self.audit(
            caller.portal.id,
            Some(caller.user.id),
            "ThirdPartyBackupConnected",
            format!("{} ({})", saved.title, saved.provider_key),
        )
        .await;
        Ok(view(&saved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids() {
        assert_eq!(parse_entry_id("sbox-3"), Some((3, String::new())));
        assert_eq!(parse_entry_id("sbox-12|backups/x"), Some((12, "backups/x".to_owned())));
        assert_eq!(parse_entry_id("sbox-12-|a.tar.zst"), Some((12, "a.tar.zst".to_owned())));
        assert_eq!(parse_entry_id("box-3"), None);
        assert_eq!(parse_entry_id("sbox-x"), None);
        assert_eq!(parse_entry_id("sbox-3x"), None);
        assert_eq!(parse_entry_id("12"), None);
    }

    #[test]
    fn cloud_addresses_get_their_dav_path() {
        assert_eq!(
            dav_url("Nextcloud", "https://nc.example/"),
            "https://nc.example/remote.php/webdav"
        );
        assert_eq!(
            dav_url("NextCloud", "https://nc.example/remote.php/dav/files/u"),
            "https://nc.example/remote.php/dav/files/u"
        );
        assert_eq!(dav_url("WebDav", "http://h/dav/"), "http://h/dav");
    }
}
