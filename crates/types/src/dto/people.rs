//! People: `EmployeeDto`, `EmployeeFullDto`, `MemberRequestDto`.

use crate::enums::{EmployeeStatus, EmployeeType};
use crate::id::UserId;
use crate::lenient;
use serde::{Deserialize, Serialize};

/// The short form of a person, used in `createdBy`, `ownedBy`, `createBy`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmployeeDto {
    pub id: UserId,
    pub display_name: String,
    pub avatar: String,
    pub avatar_original: String,
    pub avatar_max: String,
    pub avatar_medium: String,
    pub avatar_small: String,
    pub profile_url: String,
    pub has_avatar: bool,
    pub is_anonim: bool,
}

/// The full form of a person.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmployeeFullDto {
    #[serde(flatten)]
    pub short: EmployeeDto,
    pub first_name: String,
    pub last_name: String,
    pub user_name: String,
    pub email: String,
    pub department: String,
    pub status: EmployeeStatus,
    pub activation_status: i32,
    pub is_admin: bool,
    pub is_room_admin: bool,
    #[serde(rename = "isLDAP")]
    pub is_ldap: bool,
    pub is_owner: bool,
    pub is_visitor: bool,
    pub is_collaborator: bool,
    #[serde(rename = "isSSO")]
    pub is_sso: bool,
    pub mobile_phone_activation_status: i32,
    pub registration_date: String,
    #[serde(rename = "type")]
    pub kind: EmployeeType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<EmployeeDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_personal_folder: Option<bool>,
}

/// `MemberRequestDto`, the fields we honour.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct MemberRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub firstname: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub lastname: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub passwordhash: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_enum")]
    pub kind: Option<EmployeeType>,
}

/// Query of `GET /api/2.0/people`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct PeopleQuery {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub startindex: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub filtervalue: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sortby: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub sortorder: Option<i64>,
}
