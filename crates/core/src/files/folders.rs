//! Rooms, folders, sections and listings.

use super::{rights, FileOperation, FolderContent, FolderInfo, Located, Rights};
use crate::caller::Caller;
use crate::{Core, Error, Result};
use backspace_meta::{Folder, NewFolder};
use backspace_types::datetime::now_ms;
use backspace_types::dto::files::ListQuery;
use backspace_types::{EmployeeType, FolderId, FolderType, RoomType};

pub(crate) fn folder_not_found() -> Error {
    Error::NotFound("The required folder was not found".to_owned())
}

fn cannot_create() -> Error {
    Error::InvalidOperation("You don't have enough permission to create".to_owned())
}

/// Characters DocSpace replaces in titles.
pub(crate) fn clean_title(title: &str, max: usize) -> String {
    let cleaned: String = title
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || "\\/:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    cleaned.trim().to_owned()
}

impl Core {
    /// A folder with its ancestors and the caller's rights on it; 404 when it does not exist.
    pub(crate) async fn locate_folder(&self, caller: &Caller, id: FolderId) -> Result<(Vec<Folder>, Rights)> {
        let path = self.store.ancestors(caller.portal.id, id).await?;
        if path.is_empty() {
            return Err(folder_not_found());
        }
        let r = rights(caller, &path);
        Ok((path, r))
    }

    async fn info(&self, caller: &Caller, folder: Folder, rights: Rights) -> Result<FolderInfo> {
        let (files_count, folders_count) = self.store.child_counts(caller.portal.id, folder.id).await?;
        Ok(FolderInfo {
            folder,
            files_count,
            folders_count,
            rights,
        })
    }

    async fn section(&self, caller: &Caller, kind: FolderType, personal: bool) -> Result<Folder> {
        let owner = personal.then_some(caller.user.id);
        self.store
            .section(caller.portal.id, kind, owner)
            .await?
            .ok_or_else(folder_not_found)
    }

    /// `POST /api/2.0/files/rooms`.
    pub async fn create_room(
        &self,
        caller: &Caller,
        title: Option<String>,
        room_type: Option<RoomType>,
    ) -> Result<Located<FolderInfo>> {
        if !(caller.is_admin() || caller.kind() == EmployeeType::RoomAdmin) {
            return Err(cannot_create());
        }
        let raw = title.unwrap_or_default();
        if raw.trim().chars().count() > 170 {
            return Err(Error::validation(
                "Title",
                "The field Title must be a string with a maximum length of 170.",
            ));
        }
        let title = clean_title(&raw, 170);
        if title.is_empty() {
            return Err(Error::validation("Title", "The Title field is required."));
        }
        let Some(room_type) = room_type else {
            return Err(Error::validation("RoomType", "The RoomType field is required."));
        };
        let root = self.section(caller, FolderType::VirtualRooms, false).await?;
        let room = self
            .store
            .create_folder(
                caller.portal.id,
                NewFolder {
                    parent_id: root.id,
                    kind: room_type.folder_type(),
                    title,
                    by: caller.user.id,
                    now: now_ms(),
                },
            )
            .await?;
        self.located_folder(caller, room.id).await
    }

    /// `POST /api/2.0/files/folder/{parent}`. DocSpace answers a missing parent with 403.
    pub async fn create_folder(
        &self,
        caller: &Caller,
        parent: FolderId,
        title: Option<String>,
    ) -> Result<Located<FolderInfo>> {
        let raw = title.unwrap_or_default();
        if raw.trim().chars().count() > 165 {
            return Err(Error::validation(
                "Title",
                "The field Title must be a string with a maximum length of 165.",
            ));
        }
        let title = clean_title(&raw, 165);
        if title.is_empty() {
            return Err(Error::validation("Title", "The Title field is required."));
        }
        let path = self.store.ancestors(caller.portal.id, parent).await?;
        if path.is_empty() {
            return Err(Error::InvalidOperation("The required folder was not found".to_owned()));
        }
        if !rights(caller, &path).create {
            return Err(cannot_create());
        }
        let folder = self
            .store
            .create_folder(
                caller.portal.id,
                NewFolder {
                    parent_id: parent,
                    kind: FolderType::Default,
                    title,
                    by: caller.user.id,
                    now: now_ms(),
                },
            )
            .await?;
        self.located_folder(caller, folder.id).await
    }

    /// `GET /api/2.0/files/folder/{id}` (and rooms by id).
    pub async fn folder(&self, caller: &Caller, id: FolderId) -> Result<Located<FolderInfo>> {
        let located = self.located_folder(caller, id).await?;
        if !located.rights.read {
            return Err(Error::InvalidOperation(
                "You don't have enough permission to view the folder".to_owned(),
            ));
        }
        Ok(located)
    }

    async fn located_folder(&self, caller: &Caller, id: FolderId) -> Result<Located<FolderInfo>> {
        let (path, r) = self.locate_folder(caller, id).await?;
        let folder = path.last().cloned().ok_or_else(folder_not_found)?;
        let users = self.directory(caller, [folder.created_by, folder.modified_by]).await?;
        let info = self.info(caller, folder, r).await?;
        Ok(Located {
            item: info,
            path,
            rights: r,
            users,
        })
    }

    /// `GET /api/2.0/files/{id}`: a folder's content, folders first, paged.
    pub async fn list_folder(&self, caller: &Caller, id: FolderId, q: ListQuery) -> Result<FolderContent> {
        let (start, count) = crate::paging::page(q.count, q.startindex)?;
        let (path, r) = self.locate_folder(caller, id).await?;
        if !r.read {
            return Err(Error::InvalidOperation(
                "You don't have enough permission to view the folder content".to_owned(),
            ));
        }
        let current = path.last().cloned().ok_or_else(folder_not_found)?;
        let filter = q
            .filtervalue
            .as_deref()
            .map(str::to_lowercase)
            .filter(|f| !f.is_empty());
        let matches = |title: &str| filter.as_ref().is_none_or(|f| title.to_lowercase().contains(f));
        let is_rooms_root = path.len() == 1 && matches!(current.kind, FolderType::VirtualRooms | FolderType::Archive);

        let mut folders = Vec::new();
        for child in self.store.child_folders(caller.portal.id, id).await? {
            if !matches(&child.title) {
                continue;
            }
            if is_rooms_root && q.kind.is_some_and(|t| child.kind.room_type() != Some(t)) {
                continue;
            }
            let mut child_path = path.clone();
            child_path.push(child.clone());
            let child_rights = rights(caller, &child_path);
            if child_rights.read {
                folders.push((child, child_rights));
            }
        }
        let files: Vec<_> = if is_rooms_root {
            Vec::new()
        } else {
            self.store
                .child_files(caller.portal.id, id)
                .await?
                .into_iter()
                .filter(|f| matches(&f.title))
                .collect()
        };
        // Folders come first, then files; one page spans both.
        let total = (folders.len() + files.len()) as i64;
        let folder_total = folders.len();
        let page_folders: Vec<_> = folders.into_iter().skip(start).take(count).collect();
        let page_files: Vec<_> = files
            .into_iter()
            .skip(start.saturating_sub(folder_total))
            .take(count - page_folders.len())
            .collect();

        let mut infos = Vec::with_capacity(page_folders.len());
        let mut people = vec![current.created_by, current.modified_by];
        for (folder, r) in page_folders {
            people.extend([folder.created_by, folder.modified_by]);
            infos.push(self.info(caller, folder, r).await?);
        }
        people.extend(page_files.iter().flat_map(|f| [f.created_by, f.modified_by]));
        let users = self.directory(caller, people).await?;
        let current = self.info(caller, current, r).await?;
        Ok(FolderContent {
            current,
            path,
            folders: infos,
            files: page_files,
            start: start as i64,
            total,
            users,
        })
    }

    /// `GET /api/2.0/files/rooms`: the rooms root (or the archive, `searchArea=1`).
    pub async fn list_rooms(&self, caller: &Caller, q: ListQuery) -> Result<FolderContent> {
        let kind = if q.searcharea == Some(1) {
            FolderType::Archive
        } else {
            FolderType::VirtualRooms
        };
        let root = self.section(caller, kind, false).await?;
        self.list_folder(caller, root.id, q).await
    }

    /// `GET /api/2.0/files/@my`, `@trash`.
    pub async fn list_section(&self, caller: &Caller, kind: FolderType, q: ListQuery) -> Result<FolderContent> {
        let root = self.section(caller, kind, true).await?;
        self.list_folder(caller, root.id, q).await
    }

    /// `GET /api/2.0/files/@root`: My documents (when the caller has one), the rooms root and
    /// the Trash.
    pub async fn list_roots(&self, caller: &Caller, q: ListQuery, without_trash: bool) -> Result<Vec<FolderContent>> {
        let mut out = Vec::new();
        let mut sections = vec![(FolderType::User, true), (FolderType::VirtualRooms, false)];
        if !without_trash {
            sections.push((FolderType::Trash, true));
        }
        for (kind, personal) in sections {
            match self.section(caller, kind, personal).await {
                Ok(root) => out.push(self.list_folder(caller, root.id, q.clone()).await?),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// `DELETE /api/2.0/files/folder/{id}`: to the caller's Trash, or for good when
    /// `immediately` or when it already is in the Trash.
    pub async fn delete_folder(&self, caller: &Caller, id: FolderId, immediately: bool) -> Result<Vec<FileOperation>> {
        let (path, r) = self.locate_folder(caller, id).await?;
        // The folder exists in the caller's portal (reading it answers 403 too): a caller who
        // may not see it is denied, not told it is missing.
        if !r.read {
            return Err(Error::denied("You don't have enough permission to delete the folder"));
        }
        if !r.modify_self {
            return Err(Error::denied(format!(
                "folder `{id}` may not be deleted by this caller"
            )));
        }
        let in_trash = path.first().is_some_and(|root| root.kind == FolderType::Trash);
        if immediately || in_trash {
            let blobs = self.store.delete_folder_tree(caller.portal.id, id).await?;
            crate::backup::collect_blob_garbage(self.store.as_ref(), self.blobs.as_ref(), blobs).await;
        } else {
            let trash = self.section(caller, FolderType::Trash, true).await?;
            self.store
                .move_folder(caller.portal.id, id, trash.id, caller.user.id, now_ms())
                .await?;
        }
        Ok(self.finish_operation(caller))
    }

    pub(crate) fn finish_operation(&self, caller: &Caller) -> Vec<FileOperation> {
        let op = FileOperation {
            id: uuid::Uuid::new_v4().to_string(),
            kind: 2,
            error: String::new(),
            processed: 1,
        };
        self.operations.record(caller.portal.id, caller.user.id, op.clone());
        vec![op]
    }

    /// `GET /api/2.0/files/fileops`: the caller's recent operations.
    pub fn file_operations(&self, caller: &Caller) -> Vec<FileOperation> {
        self.operations.list(caller.portal.id, caller.user.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cleaned_and_truncated() {
        assert_eq!(clean_title("  a/b:c*d  ", 165), "a_b_c_d");
        assert_eq!(clean_title("x\u{0}y", 165), "x_y");
        assert_eq!(clean_title(&"é".repeat(200), 170).chars().count(), 170);
    }
}
