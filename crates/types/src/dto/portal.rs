//! Portals: registration and `TenantDto`.

use crate::id::{PortalId, UserId};
use crate::lenient;
use serde::{Deserialize, Serialize};

/// `TenantModel` of `POST /apisystem/portal/register`, the fields we honour.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct RegisterRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub portalname: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub firstname: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub lastname: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub passwordhash: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub timezonename: Option<String>,
}

/// `tenant` in the registration reply.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTenant {
    pub created: String,
    pub domain: String,
    pub industry: i32,
    pub language: String,
    pub name: String,
    pub owner_id: UserId,
    pub portal_name: String,
    /// The string `"Active"`, not an int.
    pub status: String,
    pub tenant_id: PortalId,
    pub time_zone_id: String,
    pub time_zone_name: String,
    pub custom_quota: i64,
}

/// The registration reply; not enveloped.
#[derive(Clone, Debug, Serialize)]
pub struct RegisterResponse {
    pub reference: String,
    pub tenant: RegisteredTenant,
}

/// The registration error body; not enveloped.
#[derive(Clone, Debug, Serialize)]
pub struct RegisterError {
    pub error: String,
    pub message: String,
}

/// `TenantDto` of `GET /api/2.0/portal`. Non-admins see only `tenantId` and defaults.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantDto {
    pub tenant_id: PortalId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub owner_id: UserId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub industry: i32,
    pub status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    pub trusted_domains: Vec<String>,
    pub trusted_domains_type: i32,
    pub version: i32,
}
