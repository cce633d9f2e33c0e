//! People: creating members by the rules of who may create whom, listing, looking up.

use crate::caller::Caller;
use crate::files::Directory;
use crate::password;
use crate::portal::{valid_email, valid_name};
use crate::{Core, Error, Result};
use backspace_meta::{NewUser, StoreError, User, UserQuery};
use backspace_types::datetime::now_ms;
use backspace_types::dto::people::{MemberRequest, PeopleQuery};
use backspace_types::{EmployeeType, UserId};

/// Whether `caller` may create a person of type `kind`. `active` is `POST /people/active`,
/// the only way to create a guest without an invite link.
fn may_create(caller: &Caller, kind: EmployeeType, active: bool) -> bool {
    if kind == EmployeeType::Guest {
        return active && caller.kind() != EmployeeType::User && caller.kind() != EmployeeType::Guest;
    }
    if caller.is_owner() {
        return true;
    }
    // Everyone else creates strictly below their own type: a DocSpace admin creates room admins
    // and users, a room admin creates users.
    kind.rank() < caller.kind().rank() && caller.kind().rank() >= EmployeeType::RoomAdmin.rank()
}

impl Core {
    /// `POST /api/2.0/people` (`active` false) and `POST /api/2.0/people/active`.
    pub async fn create_member(&self, caller: &Caller, req: MemberRequest, active: bool) -> Result<User> {
        let email = req.email.unwrap_or_default().trim().to_owned();
        if email.is_empty() {
            return Err(Error::validation("Email", "The Email field is required."));
        }
        if email.chars().count() > 255 {
            return Err(Error::validation(
                "Email",
                "The field Email must be a string with a maximum length of 255.",
            ));
        }
        if !valid_email(&email) {
            return Err(Error::validation(
                "Email",
                "The Email field is not a valid e-mail address.",
            ));
        }
        let first = req.firstname.unwrap_or_default().trim().to_owned();
        let last = req.lastname.unwrap_or_default().trim().to_owned();
        for (field, value) in [("FirstName", &first), ("LastName", &last)] {
            if value.chars().count() > 255 {
                return Err(Error::validation(
                    field,
                    format!("The field {field} must be a string with a maximum length of 255."),
                ));
            }
        }
        if first.is_empty() || last.is_empty() || !valid_name(&first) || !valid_name(&last) {
            return Err(Error::BadRequest("Incorrect firstname or lastname".to_owned()));
        }
        let kind = req.kind.unwrap_or(EmployeeType::RoomAdmin);
        if !may_create(caller, kind, active) {
            return Err(Error::denied(format!(
                "a {:?} may not create a {kind:?}",
                caller.kind()
            )));
        }
        if let Some(p) = req.password.as_deref().filter(|p| !p.is_empty()) {
            password::check_policy(p)?;
        }
        let plain = req.password.filter(|p| !p.is_empty());
        let plain = if plain.is_none() && req.passwordhash.as_deref().is_none_or(str::is_empty) {
            Some(password::generate())
        } else {
            plain
        };
        let client = self.client_hash_of(plain, req.passwordhash).await?.unwrap_or_default();
        let hash = self.storage_hash_of(client).await?;
        let user = NewUser {
            id: UserId::random(),
            email,
            first_name: first,
            last_name: last,
            kind,
            is_owner: false,
            activation_status: 2,
            password_hash: hash,
            created_by: Some(caller.user.id),
            now: now_ms(),
        };
        match self.store.create_user(caller.portal.id, user).await {
            Ok(u) => Ok(u),
            Err(StoreError::Conflict(_)) => Err(Error::BadRequest(
                "User with this email is already registered".to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /api/2.0/people`: active people, paged; returns the page and the total.
    pub async fn list_people(&self, caller: &Caller, q: PeopleQuery) -> Result<(Vec<User>, i64, i64)> {
        let (start, count) = crate::paging::page(q.count, q.startindex)?;
        let query = UserQuery {
            text: q.filtervalue.filter(|t| !t.trim().is_empty()),
            offset: start as i64,
            limit: count as i64,
            by_email: q.sortby.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("email")),
            descending: q.sortorder == Some(1),
        };
        let (users, total) = self.store.users(caller.portal.id, &query).await?;
        Ok((users, total, start as i64))
    }

    /// `GET /api/2.0/people/{id}`.
    pub async fn person(&self, caller: &Caller, id: UserId) -> Result<User> {
        self.store
            .user(caller.portal.id, id)
            .await?
            .ok_or_else(|| Error::NotFound("The user could not be found".to_owned()))
    }

    /// The people behind a set of ids (creators, owners), for DTOs that show them.
    pub async fn directory(&self, caller: &Caller, ids: impl IntoIterator<Item = UserId>) -> Result<Directory> {
        let mut dir = Directory::new();
        dir.insert(caller.user.id, caller.user.clone());
        for id in ids {
            if dir.contains_key(&id) {
                continue;
            }
            if let Some(u) = self.store.user(caller.portal.id, id).await? {
                dir.insert(id, u);
            }
        }
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scopes, Via};
    use backspace_meta::Portal;

    fn caller(kind: EmployeeType, owner: bool) -> Caller {
        let id = UserId::random();
        Caller {
            portal: Portal {
                id: backspace_types::PortalId(1),
                alias: "p".into(),
                name: "p".into(),
                owner_id: id,
                language: "en-US".into(),
                time_zone: "UTC".into(),
                status: 0,
                is_default: true,
                created_at: 0,
                modified_at: 0,
            },
            user: User {
                portal_id: backspace_types::PortalId(1),
                id,
                email: "x@y.z".into(),
                user_name: "x".into(),
                first_name: "X".into(),
                last_name: "Y".into(),
                kind,
                is_owner: owner,
                status: 1,
                activation_status: 1,
                password_hash: String::new(),
                created_by: None,
                created_at: 0,
            },
            via: Via::Basic,
            scopes: Scopes::All,
        }
    }

    #[test]
    fn who_may_create_whom() {
        use EmployeeType::*;
        let owner = caller(DocSpaceAdmin, true);
        let admin = caller(DocSpaceAdmin, false);
        let room_admin = caller(RoomAdmin, false);
        let user = caller(User, false);
        let guest = caller(Guest, false);
        // (caller, type, active, allowed)
        let table = [
            (&owner, DocSpaceAdmin, false, true),
            (&owner, RoomAdmin, false, true),
            (&owner, User, false, true),
            (&owner, Guest, false, false),
            (&owner, Guest, true, true),
            (&admin, DocSpaceAdmin, false, false),
            (&admin, RoomAdmin, false, true),
            (&admin, User, false, true),
            (&admin, Guest, true, true),
            (&room_admin, RoomAdmin, false, false),
            (&room_admin, User, false, true),
            (&room_admin, Guest, true, true),
            (&user, User, false, false),
            (&user, Guest, true, false),
            (&guest, Guest, true, false),
        ];
        for (c, kind, active, allowed) in table {
            assert_eq!(
                may_create(c, kind, active),
                allowed,
                "{:?} creating {kind:?} (active {active})",
                c.kind()
            );
        }
    }
}
