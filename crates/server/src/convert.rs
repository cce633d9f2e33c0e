//! Converters from service results to wire DTOs. Storage rows never reach the wire directly.

use crate::extract::BaseUrl;
use backspace_core::{Caller, Directory, FileOperation, FolderContent, FolderInfo, Located, Rights};
use backspace_meta::{ApiKey, File, Folder, Portal, User};
use backspace_types::dto::files::{
    content_length_text, EntryCommon, FileDto, FileOperationDto, FolderContentDto, FolderDto, PathPart,
};
use backspace_types::dto::keys::ApiKeyDto;
use backspace_types::dto::people::{EmployeeDto, EmployeeFullDto};
use backspace_types::dto::portal::{RegisteredTenant, TenantDto};
use backspace_types::{api_datetime, EmployeeStatus, EmployeeType, FileType, FolderType, UserId};
use std::collections::BTreeMap;

fn avatar(base: &BaseUrl, size: &str) -> String {
    format!("{}/static/images/default_user_photo_size_{size}.png?hash=0", base.0)
}

/// The short person DTO; a person no longer in the portal shows as a placeholder.
pub fn employee(user: Option<&User>, id: UserId, base: &BaseUrl) -> EmployeeDto {
    let display_name = user
        .map(User::display_name)
        .unwrap_or_else(|| "Deleted user".to_owned());
    EmployeeDto {
        id,
        display_name,
        avatar: avatar(base, "82-82"),
        avatar_original: avatar(base, "200-200"),
        avatar_max: avatar(base, "200-200"),
        avatar_medium: avatar(base, "48-48"),
        avatar_small: avatar(base, "32-32"),
        profile_url: format!(
            "{}/accounts/people/filter?search={}",
            base.0,
            user.map(|u| u.email.as_str()).unwrap_or("")
        ),
        has_avatar: false,
        is_anonim: false,
    }
}

fn from_dir(dir: &Directory, id: UserId, base: &BaseUrl) -> EmployeeDto {
    employee(dir.get(&id), id, base)
}

/// The full person DTO. `createdBy` is shown to the owner and admins only, as DocSpace.
pub fn employee_full(user: &User, viewer: &Caller, creator: Option<&User>, base: &BaseUrl) -> EmployeeFullDto {
    let status = if user.status == 1 {
        EmployeeStatus::Active
    } else {
        EmployeeStatus::Terminated
    };
    EmployeeFullDto {
        short: employee(Some(user), user.id, base),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        user_name: user.user_name.clone(),
        email: user.email.clone(),
        department: String::new(),
        status,
        activation_status: user.activation_status as i32,
        // DocSpace: the owner is a DocSpace admin by type, but `isAdmin` is false for them.
        is_admin: user.kind == EmployeeType::DocSpaceAdmin && !user.is_owner,
        is_room_admin: user.kind == EmployeeType::RoomAdmin,
        is_ldap: false,
        is_owner: user.is_owner,
        is_visitor: user.kind == EmployeeType::Guest,
        is_collaborator: user.kind == EmployeeType::User,
        is_sso: false,
        mobile_phone_activation_status: 0,
        registration_date: api_datetime(user.created_at),
        kind: user.kind,
        created_by: match (viewer.is_admin(), user.created_by) {
            (true, Some(id)) => Some(employee(creator, id, base)),
            _ => None,
        },
        has_personal_folder: None,
    }
}

pub fn key(key: &ApiKey, creator: Option<&User>, plaintext: Option<&str>, base: &BaseUrl) -> ApiKeyDto {
    ApiKeyDto {
        id: key.id,
        name: key.name.clone(),
        key: plaintext
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sk-***{}", key.postfix)),
        key_postfix: key.postfix.clone(),
        permissions: key.permissions.clone(),
        last_used: key.last_used.map(api_datetime),
        create_on: api_datetime(key.created_at),
        create_by: employee(creator, key.user_id, base),
        expires_at: key.expires_at.map(api_datetime),
        is_active: key.is_active,
    }
}

pub fn registered(portal: &Portal, base: &BaseUrl) -> RegisteredTenant {
    let host = base.0.split_once("://").map_or(base.0.as_str(), |(_, h)| h);
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    RegisteredTenant {
        created: backspace_types::plain_utc(portal.created_at),
        domain: if host == "localhost" {
            "localhost".to_owned()
        } else {
            format!("{}.{host}", portal.alias)
        },
        industry: 0,
        language: portal.language.clone(),
        name: portal.name.clone(),
        owner_id: portal.owner_id,
        portal_name: portal.alias.clone(),
        status: "Active".to_owned(),
        tenant_id: portal.id,
        time_zone_id: portal.time_zone.clone(),
        time_zone_name: if portal.time_zone == "UTC" {
            "(UTC) Coordinated Universal Time".to_owned()
        } else {
            portal.time_zone.clone()
        },
        custom_quota: -1,
    }
}

/// `TenantDto`: the full record for admins, only `tenantId` and defaults for others.
pub fn tenant(portal: &Portal, full: bool) -> TenantDto {
    TenantDto {
        tenant_id: portal.id,
        tenant_alias: full.then(|| portal.alias.clone()),
        name: full.then(|| portal.name.clone()),
        owner_id: if full {
            portal.owner_id
        } else {
            UserId(uuid::Uuid::nil())
        },
        language: full.then(|| portal.language.clone()),
        time_zone: full.then(|| portal.time_zone.clone()),
        industry: 0,
        status: if full { portal.status as i32 } else { 0 },
        creation_date_time: full.then(|| backspace_types::plain_utc(portal.created_at)),
        last_modified: full.then(|| backspace_types::plain_utc(portal.modified_at)),
        trusted_domains: Vec::new(),
        trusted_domains_type: 0,
        version: 0,
    }
}

fn security(rights: Rights, is_file: bool) -> BTreeMap<&'static str, bool> {
    let mut map = BTreeMap::from([
        ("Read", rights.read),
        ("Download", rights.read),
        ("Copy", rights.read),
        ("Edit", rights.modify_children),
        ("Delete", rights.modify_children),
        ("Rename", rights.modify_children),
        ("Move", rights.modify_children),
    ]);
    if !is_file {
        map.insert("Create", rights.create);
        map.insert("EditRoom", rights.modify_self);
    }
    map
}

/// The section root's id and type, and the room's folder type when inside a room.
fn placement(path: &[Folder]) -> (Option<&Folder>, Option<FolderType>) {
    let root = path.first();
    let room_kind = path.get(1).filter(|f| f.kind.room_type().is_some()).map(|f| f.kind);
    (root, room_kind)
}

fn common(
    title: &str,
    // (who, when) of the creation and of the last change.
    [created, modified]: [(UserId, i64); 2],
    path: &[Folder],
    rights: Rights,
    is_file: bool,
    users: &Directory,
    base: &BaseUrl,
) -> EntryCommon {
    let (root, room_kind) = placement(path);
    EntryCommon {
        title: title.to_owned(),
        access: if rights.modify_children {
            1
        } else if rights.read {
            2
        } else {
            3
        },
        shared: false,
        shared_for_user: false,
        parent_shared: false,
        can_share: false,
        created: api_datetime(created.1),
        created_by: from_dir(users, created.0, base),
        updated: api_datetime(modified.1.max(created.1)),
        updated_by: from_dir(users, modified.0, base),
        root_folder_id: root.map(|r| r.id).unwrap_or(backspace_types::FolderId(0)),
        root_folder_type: root.map(|r| r.kind).unwrap_or(FolderType::Default),
        parent_room_type: room_kind,
        security: security(rights, is_file),
        file_entry_type: if is_file { 2 } else { 1 },
    }
}

/// A folder DTO. `path` ends with the folder itself.
pub fn folder(info: &FolderInfo, path: &[Folder], users: &Directory, base: &BaseUrl) -> FolderDto {
    let f = &info.folder;
    let room_type = f.kind.room_type();
    FolderDto {
        id: f.id,
        parent_id: f.parent_id.unwrap_or(backspace_types::FolderId(0)),
        common: common(
            &f.title,
            [(f.created_by, f.created_at), (f.modified_by, f.modified_at)],
            path,
            info.rights,
            false,
            users,
            base,
        ),
        files_count: info.files_count,
        folders_count: info.folders_count,
        new: 0,
        mute: false,
        pinned: false,
        private: false,
        indexing: false,
        deny_download: false,
        is_shareable: false,
        kind: (f.kind != FolderType::Default && room_type.is_none()).then_some(f.kind),
        room_type,
        owned_by: Some(from_dir(users, f.created_by, base)),
        tags: room_type.map(|_| Vec::new()),
        in_room: room_type.map(|_| true),
    }
}

pub fn located_folder(l: &Located<FolderInfo>, base: &BaseUrl) -> FolderDto {
    folder(&l.item, &l.path, &l.users, base)
}

/// A file DTO. `path` is the file's folder with its ancestors.
pub fn file(f: &File, path: &[Folder], rights: Rights, users: &Directory, base: &BaseUrl) -> FileDto {
    let ext = f
        .title
        .rfind('.')
        .filter(|i| *i > 0)
        .map(|i| f.title[i..].to_lowercase())
        .unwrap_or_default();
    let view_url = format!("{}/filehandler.ashx?action=download&fileid={}", base.0, f.id);
    FileDto {
        id: f.id,
        folder_id: f.folder_id,
        common: common(
            &f.title,
            [(f.created_by, f.created_at), (f.modified_by, f.modified_at)],
            path,
            rights,
            true,
            users,
            base,
        ),
        version: f.version,
        version_group: f.version,
        content_length: content_length_text(f.size),
        pure_content_length: (f.size > 0).then_some(f.size),
        file_type: FileType::from_extension(&ext),
        file_exst: ext,
        file_status: 0,
        web_url: view_url.clone(),
        view_url,
        thumbnail_status: 0,
        form_filling_status: 0,
        owned_by: Some(from_dir(users, f.created_by, base)),
    }
}

pub fn located_file(l: &Located<File>, base: &BaseUrl) -> FileDto {
    file(&l.item, &l.path, l.rights, &l.users, base)
}

pub fn content(c: &FolderContent, base: &BaseUrl) -> FolderContentDto {
    let folders = c
        .folders
        .iter()
        .map(|info| {
            let mut path = c.path.clone();
            path.push(info.folder.clone());
            folder(info, &path, &c.users, base)
        })
        .collect();
    let files: Vec<_> = c
        .files
        .iter()
        .map(|f| file(f, &c.path, c.current.rights, &c.users, base))
        .collect();
    let count = (c.folders.len() + files.len()) as i64;
    FolderContentDto {
        files,
        folders,
        current: folder(&c.current, &c.path, &c.users, base),
        path_parts: c
            .path
            .iter()
            .map(|f| PathPart {
                id: f.id,
                title: f.title.clone(),
                room_type: f.kind.room_type(),
                folder_type: f.kind,
            })
            .collect(),
        start_index: c.start,
        count,
        total: c.total,
        new: 0,
    }
}

pub fn operation(op: &FileOperation) -> FileOperationDto {
    FileOperationDto {
        id: op.id.clone(),
        operation: op.kind,
        progress: 100,
        error: op.error.clone(),
        processed: op.processed.to_string(),
        finished: true,
        status: 2,
    }
}
