//! The folder tree: who may do what where, and the results the file routes return.
//!
//! Access, without DocSpace's sharing model: a room is visible to its creator and to the
//! portal's admins; My documents and Trash only to the person they belong to; nothing is
//! visible to anybody else. Guests read rooms they may see but change nothing.

mod content;
mod folders;
mod operations;

pub use content::Upload;
pub use operations::FileOperation;
pub(crate) use operations::OperationLog;

use crate::caller::Caller;
use backspace_meta::{Folder, User};
use backspace_types::{EmployeeType, FolderType, UserId};
use std::collections::HashMap;

/// People by id, for DTOs that show creators and owners.
pub type Directory = HashMap<UserId, User>;

/// What the caller may do with a folder (and with the entries directly inside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// See the folder and list it.
    pub read: bool,
    /// Create folders and upload files in it.
    pub create: bool,
    /// Rename or delete the entries inside it.
    pub modify_children: bool,
    /// Rename or delete the folder itself.
    pub modify_self: bool,
}

/// The rights of `caller` on the last folder of `path` (root first).
pub fn rights(caller: &Caller, path: &[Folder]) -> Rights {
    let (Some(root), Some(last)) = (path.first(), path.last()) else {
        return Rights::default();
    };
    let is_root = path.len() == 1;
    match root.kind {
        FolderType::VirtualRooms | FolderType::Archive => {
            if is_root {
                // Everyone may list the rooms root (filtered to what they see); nothing is
                // created directly in it but rooms, through the rooms route.
                return Rights {
                    read: true,
                    ..Rights::default()
                };
            }
            let room = &path[1];
            let member = caller.is_admin() || room.created_by == caller.user.id;
            let writer = member && caller.kind() != EmployeeType::Guest && root.kind != FolderType::Archive;
            let room_admin = writer && (caller.is_admin() || caller.kind() == EmployeeType::RoomAdmin);
            Rights {
                read: member,
                create: writer,
                modify_children: writer,
                // A room itself is managed by room admins and up; a folder by any writer.
                modify_self: if path.len() == 2 { room_admin } else { writer },
            }
        }
        FolderType::User | FolderType::Trash => {
            let mine = root.owner_id == Some(caller.user.id);
            let in_trash = root.kind == FolderType::Trash;
            Rights {
                read: mine,
                create: mine && !in_trash,
                modify_children: mine,
                modify_self: mine && !is_root && last.parent_id.is_some(),
            }
        }
        _ => Rights::default(),
    }
}

/// A room or folder with its counts.
#[derive(Clone, Debug)]
pub struct FolderInfo {
    pub folder: Folder,
    pub files_count: i64,
    pub folders_count: i64,
    pub rights: Rights,
}

/// An entry with where it is: `path` is the folder itself (for folders) or its parent folder
/// (for files), with every ancestor, root first.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub item: T,
    pub path: Vec<Folder>,
    pub rights: Rights,
    pub users: Directory,
}

/// A folder listing.
#[derive(Clone, Debug)]
pub struct FolderContent {
    pub current: FolderInfo,
    pub path: Vec<Folder>,
    pub folders: Vec<FolderInfo>,
    pub files: Vec<backspace_meta::File>,
    pub start: i64,
    pub total: i64,
    pub users: Directory,
}
