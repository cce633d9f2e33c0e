//! API keys.

use super::people::EmployeeDto;
use crate::id::KeyId;
use crate::lenient;
use serde::{Deserialize, Serialize};

/// Every permission a key may be limited to, as `GET /api/2.0/keys/permissions` lists them.
pub const PERMISSIONS: [&str; 11] = [
    "*",
    "*:read",
    "*:write",
    "accounts.self:read",
    "accounts.self:write",
    "accounts:read",
    "accounts:write",
    "files:read",
    "files:write",
    "rooms:read",
    "rooms:write",
];

/// `POST /api/2.0/keys`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct CreateKeyRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub expiresindays: Option<i64>,
}

/// `PUT /api/2.0/keys/{id}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct UpdateKeyRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub isactive: Option<bool>,
}

/// `ApiKeyResponseDto`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    pub id: KeyId,
    pub name: String,
    /// The plaintext key on creation, `sk-***abcd` otherwise.
    pub key: String,
    pub key_postfix: String,
    pub permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    pub create_on: String,
    pub create_by: EmployeeDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub is_active: bool,
}
