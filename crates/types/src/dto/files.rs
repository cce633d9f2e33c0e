//! Rooms, folders and files: `FolderDto`, `FileDto`, `FolderContentDto`, `FileOperationDto`.

use super::people::EmployeeDto;
use crate::enums::{FileType, FolderType, RoomType};
use crate::id::{FileId, FolderId};
use crate::lenient;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fields common to folders and files.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryCommon {
    pub title: String,
    pub access: i32,
    pub shared: bool,
    pub shared_for_user: bool,
    pub parent_shared: bool,
    pub can_share: bool,
    pub created: String,
    pub created_by: EmployeeDto,
    pub updated: String,
    pub updated_by: EmployeeDto,
    pub root_folder_id: FolderId,
    pub root_folder_type: FolderType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_room_type: Option<FolderType>,
    pub security: BTreeMap<&'static str, bool>,
    pub file_entry_type: i32,
}

/// `FolderDto`; a room is a folder with `roomType`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderDto {
    pub id: FolderId,
    pub parent_id: FolderId,
    #[serde(flatten)]
    pub common: EntryCommon,
    pub files_count: i64,
    pub folders_count: i64,
    pub new: i64,
    pub mute: bool,
    pub pinned: bool,
    pub private: bool,
    pub indexing: bool,
    pub deny_download: bool,
    pub is_shareable: bool,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<FolderType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_type: Option<RoomType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<EmployeeDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_room: Option<bool>,
}

/// `FileDto`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDto {
    pub id: FileId,
    pub folder_id: FolderId,
    #[serde(flatten)]
    pub common: EntryCommon,
    pub version: i64,
    pub version_group: i64,
    pub content_length: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pure_content_length: Option<i64>,
    pub file_exst: String,
    pub file_type: FileType,
    pub file_status: i32,
    pub view_url: String,
    pub web_url: String,
    pub thumbnail_status: i32,
    pub form_filling_status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<EmployeeDto>,
}

/// One breadcrumb of `pathParts`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathPart {
    pub id: FolderId,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_type: Option<RoomType>,
    pub folder_type: FolderType,
}

/// `FolderContentDto`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderContentDto {
    pub files: Vec<FileDto>,
    pub folders: Vec<FolderDto>,
    pub current: FolderDto,
    pub path_parts: Vec<PathPart>,
    pub start_index: i64,
    pub count: i64,
    pub total: i64,
    pub new: i64,
}

/// `FileOperationDto`. `Operation` has a capital O upstream.
#[derive(Clone, Debug, Serialize)]
pub struct FileOperationDto {
    pub id: String,
    #[serde(rename = "Operation")]
    pub operation: i32,
    pub progress: i32,
    pub error: String,
    pub processed: String,
    pub finished: bool,
    pub status: i32,
}

/// `POST /api/2.0/files/rooms`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct CreateRoomRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_enum")]
    pub roomtype: Option<RoomType>,
}

/// `POST /api/2.0/files/folder/{id}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct CreateFolderRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub title: Option<String>,
}

/// The body of the file and folder deletes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct DeleteRequest {
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub deleteafter: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub immediately: Option<bool>,
}

/// Query of folder listings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct ListQuery {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub startindex: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub filtervalue: Option<String>,
    /// Room type filter of `GET /files/rooms`.
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_enum")]
    pub kind: Option<RoomType>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub searcharea: Option<i64>,
}

/// Query of uploads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct UploadQuery {
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub createnewifexist: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub title: Option<String>,
}

/// `contentLength`: `#,0.##` with `bytes`, `KB`, `MB`, `GB`, `TB`, base 1024.
pub fn content_length_text(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 100.0).round() / 100.0;
    let mut text = format!("{rounded:.2}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_matches_docspace_format() {
        assert_eq!(content_length_text(0), "0 bytes");
        assert_eq!(content_length_text(512), "512 bytes");
        assert_eq!(content_length_text(12_800), "12.5 KB");
        assert_eq!(content_length_text(1024 * 1024), "1 MB");
        assert_eq!(content_length_text(1_500_000_000), "1.4 GB");
    }
}
