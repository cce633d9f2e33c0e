//! `POST /api/2.0/authentication`.

use crate::lenient;
use serde::{Deserialize, Serialize};

/// `AuthRequestsDto`, the fields we honour.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct AuthRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub passwordhash: Option<String>,
    /// A session cookie (no `expires`) instead of a persistent one.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub session: Option<bool>,
}

/// `AuthenticationTokenDto`.
#[derive(Clone, Debug, Serialize)]
pub struct AuthTokenDto {
    pub token: String,
    /// Plain UTC date-time.
    pub expires: String,
    pub sms: bool,
    pub tfa: bool,
}
