//! DocSpace enums. Written as integers; read through [`crate::lenient`].

use crate::lenient::LenientEnum;
use serde::{Serialize, Serializer};

/// Enums are written as integers and read leniently (name, integer or numeric string).
macro_rules! int_serialize {
    ($($name:ident),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.number())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::lenient::opt_enum(d)?
                    .ok_or_else(|| serde::de::Error::custom(concat!("a ", stringify!($name), " is required")))
            }
        }

        /// An integer enum, named as DocSpace names it, with its members' names.
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <$name as LenientEnum>::NAME.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                // Aliases (two names for one number) are listed once, under the first name.
                let mut numbers: Vec<i64> = Vec::new();
                let mut names: Vec<&str> = Vec::new();
                for (name, n, _) in <$name as LenientEnum>::MEMBERS {
                    if !numbers.contains(n) {
                        numbers.push(*n);
                        names.push(name);
                    }
                }
                let described: Vec<String> = numbers.iter().zip(&names).map(|(n, name)| format!("{n} - {name}")).collect();
                schemars::json_schema!({
                    "type": "integer",
                    "enum": numbers,
                    "x-enum-varnames": names,
                    "description": format!("[{}]", described.join(", ")),
                })
            }
        }
    )*};
}

/// A person's type. The owner is a `DocSpaceAdmin` with `isOwner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmployeeType {
    RoomAdmin,
    Guest,
    DocSpaceAdmin,
    User,
}

impl LenientEnum for EmployeeType {
    const NAME: &'static str = "EmployeeType";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        // `All` (0) is treated as RoomAdmin by DocSpace.
        ("All", 0, Self::RoomAdmin),
        ("RoomAdmin", 1, Self::RoomAdmin),
        ("Guest", 2, Self::Guest),
        ("DocSpaceAdmin", 3, Self::DocSpaceAdmin),
        ("User", 4, Self::User),
    ];

    fn number(self) -> i64 {
        match self {
            Self::RoomAdmin => 1,
            Self::Guest => 2,
            Self::DocSpaceAdmin => 3,
            Self::User => 4,
        }
    }
}

impl EmployeeType {
    /// The rank used to decide who may create whom: higher may create lower.
    pub fn rank(self) -> u8 {
        match self {
            Self::Guest => 0,
            Self::User => 1,
            Self::RoomAdmin => 2,
            Self::DocSpaceAdmin => 3,
        }
    }
}

/// `status` of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmployeeStatus {
    Active,
    Terminated,
    Pending,
}

impl LenientEnum for EmployeeStatus {
    const NAME: &'static str = "EmployeeStatus";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        ("Active", 1, Self::Active),
        ("Terminated", 2, Self::Terminated),
        ("Pending", 4, Self::Pending),
    ];
}

/// The type of a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoomType {
    FillingFormsRoom,
    EditingRoom,
    CustomRoom,
    PublicRoom,
    VirtualDataRoom,
    AiRoom,
}

impl LenientEnum for RoomType {
    const NAME: &'static str = "RoomType";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        ("FillingFormsRoom", 1, Self::FillingFormsRoom),
        ("EditingRoom", 2, Self::EditingRoom),
        ("CustomRoom", 5, Self::CustomRoom),
        ("PublicRoom", 6, Self::PublicRoom),
        ("VirtualDataRoom", 8, Self::VirtualDataRoom),
        ("AiRoom", 9, Self::AiRoom),
    ];
}

impl RoomType {
    /// The `FolderType` of a room of this type.
    pub fn folder_type(self) -> FolderType {
        match self {
            Self::FillingFormsRoom => FolderType::FillingFormsRoom,
            Self::EditingRoom => FolderType::EditingRoom,
            Self::CustomRoom => FolderType::CustomRoom,
            Self::PublicRoom => FolderType::PublicRoom,
            Self::VirtualDataRoom => FolderType::VirtualDataRoom,
            Self::AiRoom => FolderType::AiRoom,
        }
    }
}

/// The kind of a folder: sections, roots, rooms and plain folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FolderType {
    Default,
    Trash,
    User,
    VirtualRooms,
    Archive,
    FillingFormsRoom,
    EditingRoom,
    CustomRoom,
    PublicRoom,
    VirtualDataRoom,
    AiRoom,
}

impl LenientEnum for FolderType {
    const NAME: &'static str = "FolderType";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        ("DEFAULT", 0, Self::Default),
        ("TRASH", 3, Self::Trash),
        ("USER", 5, Self::User),
        ("VirtualRooms", 14, Self::VirtualRooms),
        ("FillingFormsRoom", 15, Self::FillingFormsRoom),
        ("EditingRoom", 16, Self::EditingRoom),
        ("CustomRoom", 19, Self::CustomRoom),
        ("Archive", 20, Self::Archive),
        ("PublicRoom", 22, Self::PublicRoom),
        ("VirtualDataRoom", 29, Self::VirtualDataRoom),
        ("AiRoom", 31, Self::AiRoom),
    ];
}

impl FolderType {
    /// The room type, when this folder is a room.
    pub fn room_type(self) -> Option<RoomType> {
        Some(match self {
            Self::FillingFormsRoom => RoomType::FillingFormsRoom,
            Self::EditingRoom => RoomType::EditingRoom,
            Self::CustomRoom => RoomType::CustomRoom,
            Self::PublicRoom => RoomType::PublicRoom,
            Self::VirtualDataRoom => RoomType::VirtualDataRoom,
            Self::AiRoom => RoomType::AiRoom,
            _ => return None,
        })
    }

    /// Section roots: nothing but rooms may be created directly in them.
    pub fn is_root(self) -> bool {
        matches!(self, Self::Trash | Self::User | Self::VirtualRooms | Self::Archive)
    }
}

/// The type of a file, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Unknown,
    Archive,
    Video,
    Audio,
    Image,
    Spreadsheet,
    Presentation,
    Document,
    Pdf,
    Diagram,
}

impl LenientEnum for FileType {
    const NAME: &'static str = "FileType";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        ("Unknown", 0, Self::Unknown),
        ("Archive", 1, Self::Archive),
        ("Video", 2, Self::Video),
        ("Audio", 3, Self::Audio),
        ("Image", 4, Self::Image),
        ("Spreadsheet", 5, Self::Spreadsheet),
        ("Presentation", 6, Self::Presentation),
        ("Document", 7, Self::Document),
        ("Pdf", 10, Self::Pdf),
        ("Diagram", 11, Self::Diagram),
    ];
}

impl FileType {
    /// The file type of a lower-case extension with its dot (`.docx`).
    pub fn from_extension(ext: &str) -> Self {
        match ext {
            ".zip" | ".gz" | ".tgz" | ".zst" | ".tar" | ".7z" | ".rar" => Self::Archive,
            ".mp4" | ".avi" | ".mkv" | ".mov" | ".webm" => Self::Video,
            ".mp3" | ".wav" | ".ogg" | ".flac" | ".m4a" => Self::Audio,
            ".png" | ".jpg" | ".jpeg" | ".gif" | ".bmp" | ".svg" | ".webp" | ".tiff" => Self::Image,
            ".xlsx" | ".xls" | ".ods" | ".csv" => Self::Spreadsheet,
            ".pptx" | ".ppt" | ".odp" => Self::Presentation,
            ".docx" | ".doc" | ".odt" | ".rtf" | ".txt" | ".md" => Self::Document,
            ".pdf" => Self::Pdf,
            ".vsdx" | ".vsd" => Self::Diagram,
            _ => Self::Unknown,
        }
    }
}

/// `BackupStorageType`, typo included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageType {
    Documents,
    ThridpartyDocuments,
    CustomCloud,
    Local,
    DataStore,
    ThirdPartyConsumer,
}

impl LenientEnum for StorageType {
    const NAME: &'static str = "BackupStorageType";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        ("Documents", 0, Self::Documents),
        ("ThridpartyDocuments", 1, Self::ThridpartyDocuments),
        ("CustomCloud", 2, Self::CustomCloud),
        ("Local", 3, Self::Local),
        ("DataStore", 4, Self::DataStore),
        ("ThirdPartyConsumer", 5, Self::ThirdPartyConsumer),
    ];
}

/// `BackupPeriod` of `cronParams.period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackupPeriod {
    EveryDay,
    EveryWeek,
    EveryMonth,
}

impl LenientEnum for BackupPeriod {
    const NAME: &'static str = "BackupPeriod";
    const MEMBERS: &'static [(&'static str, i64, Self)] = &[
        ("EveryDay", 0, Self::EveryDay),
        ("EveryWeek", 1, Self::EveryWeek),
        ("EveryMonth", 2, Self::EveryMonth),
    ];
}

int_serialize!(
    EmployeeType,
    EmployeeStatus,
    RoomType,
    FolderType,
    FileType,
    StorageType,
    BackupPeriod
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialise_as_integers() {
        assert_eq!(serde_json::to_string(&EmployeeType::DocSpaceAdmin).unwrap(), "3");
        assert_eq!(serde_json::to_string(&RoomType::CustomRoom).unwrap(), "5");
        assert_eq!(serde_json::to_string(&FolderType::VirtualRooms).unwrap(), "14");
        assert_eq!(serde_json::to_string(&FileType::Pdf).unwrap(), "10");
    }

    #[test]
    fn every_room_type_has_a_room_folder_type() {
        for (_, _, rt) in RoomType::MEMBERS {
            assert_eq!(rt.folder_type().room_type(), Some(*rt));
        }
    }
}
