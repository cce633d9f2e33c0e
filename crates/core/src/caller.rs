//! The caller of a request: who, in which portal, through which credential, with which scopes.

use backspace_meta::{Portal, User};
use backspace_types::{EmployeeType, KeyId, SessionId};

/// How the caller authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    Session(SessionId),
    ApiKey(KeyId),
    Basic,
    /// The command line, acting as the default portal's owner on the server's own machine.
    Local,
}

/// What a credential may do. Sessions and Basic are unrestricted; an API key is limited to
/// its permissions (an empty list means unrestricted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scopes {
    All,
    Only(Vec<String>),
}

impl Scopes {
    /// Whether the scopes allow an operation on `resource` (`files`, `rooms`, `accounts`,
    /// `accounts.self`, or `None` for endpoints only the global scopes cover).
    /// Reads need `R:read`, `R:write`, `*:read` or `*:write`; writes need `R:write` or `*:write`.
    pub fn allows(&self, resource: Option<&str>, write: bool) -> bool {
        let granted = match self {
            Self::All => return true,
            Self::Only(list) => list,
        };
        let has = |p: &str| granted.iter().any(|g| g == p);
        if has("*:write") || (!write && has("*:read")) {
            return true;
        }
        match resource {
            Some(r) => has(&format!("{r}:write")) || (!write && has(&format!("{r}:read"))),
            None => false,
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub portal: Portal,
    pub user: User,
    pub via: Via,
    pub scopes: Scopes,
}

impl Caller {
    /// Owner or DocSpace admin.
    pub fn is_admin(&self) -> bool {
        self.user.is_admin()
    }

    pub fn is_owner(&self) -> bool {
        self.user.is_owner
    }

    pub fn kind(&self) -> EmployeeType {
        self.user.kind
    }
}

#[cfg(test)]
mod tests {
    use super::Scopes;

    fn only(list: &[&str]) -> Scopes {
        Scopes::Only(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn scope_rules() {
        assert!(Scopes::All.allows(None, true));
        assert!(only(&["*:write"]).allows(Some("files"), true));
        assert!(only(&["*:read"]).allows(None, false));
        assert!(!only(&["*:read"]).allows(None, true));
        assert!(only(&["files:read"]).allows(Some("files"), false));
        assert!(!only(&["files:read"]).allows(Some("files"), true));
        assert!(!only(&["files:read"]).allows(Some("rooms"), false));
        assert!(
            !only(&["files:write"]).allows(None, false),
            "a resource scope reached a global endpoint"
        );
        assert!(only(&["rooms:write"]).allows(Some("rooms"), false));
    }
}
