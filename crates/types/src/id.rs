//! Typed ids. GUID ids serialise as lower-case hyphenated strings, integer ids as JSON numbers.

use std::fmt;
use std::str::FromStr;

/// An id's JSON Schema, written inline where it is used.
macro_rules! inline_schema {
    ($name:ident, $schema:tt) => {
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

/// Declares a GUID-backed id with serde `transparent`, `Display` and `FromStr`.
macro_rules! guid_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }

        inline_schema!($name, {"type": "string", "format": "uuid"});
    )*};
}

/// Declares an integer id with serde `transparent`, `Display` and `FromStr`.
macro_rules! int_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        inline_schema!($name, {"type": "integer", "format": "int64"});
    )*};
}

guid_id!(
    /// A person of a portal.
    UserId,
    /// An API key.
    KeyId,
    /// A sign-in session.
    SessionId,
    /// A backup or restore job; a backup's history record has its job's id.
    TaskId,
);

int_id!(
    /// A portal (DocSpace "tenant").
    PortalId,
    /// A room or folder.
    FolderId,
    /// A file.
    FileId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_ids_round_trip_lower_case() {
        let id: UserId = "2A9C0F00-1111-4222-8333-444455556666".parse().unwrap();
        assert_eq!(id.to_string(), "2a9c0f00-1111-4222-8333-444455556666");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"2a9c0f00-1111-4222-8333-444455556666\""
        );
    }

    #[test]
    fn int_ids_are_json_numbers() {
        assert_eq!(serde_json::to_string(&FolderId(7)).unwrap(), "7");
        assert_eq!("12".parse::<FileId>().unwrap(), FileId(12));
        assert!("x".parse::<FileId>().is_err());
    }
}
