//! `settings/authservice`, `settings/storage/backup` and `files/thirdparty/backup`.

use crate::lenient;
use serde::{Deserialize, Serialize};

/// One `{name, value}` of `POST settings/authservice`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct AuthKey {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

/// `AuthServiceRequestsDto`: `{"name": "s3", "props": [{"name": …, "value": …}]}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct AuthServiceRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub props: Option<Vec<AuthKey>>,
}

/// A property of a consumer in the settings answers.
#[derive(Clone, Debug, Serialize)]
pub struct PropDto {
    pub name: String,
    pub value: String,
    pub title: String,
}

/// One consumer of `GET settings/authservice`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthServiceDto {
    pub name: String,
    pub title: String,
    pub description: String,
    pub instruction: String,
    pub can_set: bool,
    pub paid: bool,
    pub props: Vec<PropDto>,
}

/// `StorageDto` of `GET settings/storage/backup`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageDto {
    pub id: String,
    pub title: String,
    pub properties: Vec<PropDto>,
    pub current: bool,
    pub is_set: bool,
}

/// `ThirdPartyBackupRequestDto` of `POST files/thirdparty/backup`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct ThirdPartyBackupRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub login: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub customertitle: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub providerkey: Option<String>,
}

/// `FolderDto<string>` of a third-party folder.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThirdPartyFolderDto {
    pub id: String,
    pub root_folder_id: String,
    pub parent_id: i64,
    pub title: String,
    pub provider_item: bool,
    pub provider_key: String,
    pub provider_id: i64,
    pub root_folder_type: i64,
    pub files_count: i64,
    pub folders_count: i64,
    pub created: String,
    pub updated: String,
}
