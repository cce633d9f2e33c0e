//! People of a portal.

use crate::{conflict, stored_enum, Result, RowExt, SqlStore};
use backspace_types::{EmployeeType, FolderType, PortalId, UserId};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

/// A person.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub portal_id: PortalId,
    pub id: UserId,
    pub email: String,
    pub user_name: String,
    pub first_name: String,
    pub last_name: String,
    pub kind: EmployeeType,
    pub is_owner: bool,
    /// 1 Active, 2 Terminated.
    pub status: i64,
    /// 0 NotActivated, 1 Activated, 2 Pending.
    pub activation_status: i64,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub created_by: Option<UserId>,
    pub created_at: i64,
}

impl User {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }

    /// Owner or DocSpace admin: may change portal settings, run backups, see everyone.
    pub fn is_admin(&self) -> bool {
        self.is_owner || self.kind == EmployeeType::DocSpaceAdmin
    }
}

/// What creating a person needs.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub kind: EmployeeType,
    pub is_owner: bool,
    pub activation_status: i64,
    pub password_hash: String,
    pub created_by: Option<UserId>,
    pub now: i64,
}

/// Filter and page of a people listing.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Case-insensitive substring of name or e-mail.
    pub text: Option<String>,
    pub offset: i64,
    pub limit: i64,
    /// Sort by e-mail instead of display name.
    pub by_email: bool,
    pub descending: bool,
}

pub(crate) const COLUMNS: &str = "portal_id, id, email, user_name, first_name, last_name, kind, is_owner, status, \
                       activation_status, password_hash, created_by, created_at";

pub(crate) fn from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        portal_id: row.portal()?,
        id: row.parsed("id")?,
        email: row.text("email")?,
        user_name: row.text("user_name")?,
        first_name: row.text("first_name")?,
        last_name: row.text("last_name")?,
        kind: stored_enum(row.i64("kind")?, "kind")?,
        is_owner: row.flag("is_owner")?,
        status: row.i64("status")?,
        activation_status: row.i64("activation_status")?,
        password_hash: row.text("password_hash")?,
        created_by: row.opt_parsed("created_by")?,
        created_at: row.i64("created_at")?,
    })
}

/// Inserts a person and their own sections (My documents for all but guests, Trash for all),
/// inside the caller's transaction.
pub(crate) async fn insert_user(conn: &mut AnyConnection, portal: PortalId, user: NewUser) -> Result<User> {
    use backspace_types::lenient::LenientEnum;
    let email_key = user.email.to_lowercase();
    // The user name is the e-mail's local part, made unique within the portal by the id suffix
    // only when needed.
    let local = user.email.split('@').next().unwrap_or_default().to_owned();
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE portal_id = $1 AND user_name = $2")
        .bind(portal.0)
        .bind(&local)
        .fetch_one(&mut *conn)
        .await?;
    let user_name = if taken == 0 {
        local
    } else {
        format!("{local}{}", &user.id.to_string()[..8])
    };
    sqlx::query(&format!(
        "INSERT INTO users ({COLUMNS}, email_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11, $12, $13)"
    ))
    .bind(portal.0)
    .bind(user.id.to_string())
    .bind(&user.email)
    .bind(&user_name)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(user.kind.number())
    .bind(i64::from(user.is_owner))
    .bind(user.activation_status)
    .bind(&user.password_hash)
    .bind(user.created_by.map(|u| u.to_string()))
    .bind(user.now)
    .bind(&email_key)
    .execute(&mut *conn)
    .await
    .map_err(conflict(|| format!("user with e-mail `{}`", user.email)))?;
    let mut sections = vec![(FolderType::Trash, "Trash")];
    if user.kind != EmployeeType::Guest {
        sections.push((FolderType::User, "My documents"));
    }
    for (kind, title) in sections {
        crate::tree::insert_section(conn, portal, kind, title, Some(user.id), user.now).await?;
    }
    Ok(User {
        portal_id: portal,
        id: user.id,
        email: user.email,
        user_name,
        first_name: user.first_name,
        last_name: user.last_name,
        kind: user.kind,
        is_owner: user.is_owner,
        status: 1,
        activation_status: user.activation_status,
        password_hash: user.password_hash,
        created_by: user.created_by,
        created_at: user.now,
    })
}

/// People.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a person with their sections. `Conflict` when the e-mail is taken in the portal.
    async fn create_user(&self, portal: PortalId, user: NewUser) -> Result<User>;
    async fn user(&self, portal: PortalId, id: UserId) -> Result<Option<User>>;
    /// Looks a person up by e-mail, case-insensitively.
    async fn user_by_email(&self, portal: PortalId, email: &str) -> Result<Option<User>>;
    /// Active people matching the query, and how many match in all.
    async fn users(&self, portal: PortalId, query: &UserQuery) -> Result<(Vec<User>, i64)>;
}

#[async_trait::async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, portal: PortalId, user: NewUser) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        // Take the write lock first (see the crate doc): a no-op write on the counters row.
        sqlx::query("UPDATE counters SET value = value WHERE name = 'folder'")
            .execute(&mut *tx)
            .await?;
        let user = insert_user(&mut tx, portal, user).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn user(&self, portal: PortalId, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE portal_id = $1 AND id = $2"))
            .bind(portal.0)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn user_by_email(&self, portal: PortalId, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE portal_id = $1 AND email_key = $2"
        ))
        .bind(portal.0)
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn users(&self, portal: PortalId, query: &UserQuery) -> Result<(Vec<User>, i64)> {
        let pattern = format!("%{}%", query.text.as_deref().unwrap_or("").to_lowercase());
        let filter =
            "portal_id = $1 AND status = 1 AND (email_key LIKE $2 OR LOWER(first_name || ' ' || last_name) LIKE $2)";
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users WHERE {filter}"))
            .bind(portal.0)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        let dir = if query.descending { "DESC" } else { "ASC" };
        let order = if query.by_email {
            format!("email_key {dir}")
        } else {
            format!("LOWER(first_name) {dir}, LOWER(last_name) {dir}")
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE {filter} ORDER BY {order}, id LIMIT $3 OFFSET $4"
        ))
        .bind(portal.0)
        .bind(&pattern)
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.iter().map(from_row).collect::<Result<_>>()?, total))
    }
}
