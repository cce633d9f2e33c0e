//! Invariant: arbitrary bytes never panic what binds a client's request (every request DTO and
//! its lenient numbers, booleans, enums and storage parameters; the ids and enums of paths and
//! queries) nor the path and key validators; what they accept prints back to what they read.
//!
//! The bytes are tried as a JSON body (bound like the server binds one: parsed to a value, then
//! each DTO from it) and, when they are UTF-8, as the text of an id, an enum name, an entry path
//! and a blob key.
#![no_main]

use backspace_format::EntryPath;
use backspace_storage::BlobKey;
use backspace_types::dto::{auth, backup, files, keys, people, portal, settings};
use backspace_types::lenient::LenientEnum;
use backspace_types::{
    api_datetime, plain_utc, BackupPeriod, EmployeeStatus, EmployeeType, FileId, FileType, FolderId, FolderType, KeyId,
    PortalId, RoomType, SessionId, StorageType, TaskId, UserId,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt::{Debug, Display};
use std::str::FromStr;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        bodies(&value);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        texts(text);
    }
    if let Some(ms) = data.first_chunk::<8>() {
        let ms = i64::from_le_bytes(*ms);
        let _ = (api_datetime(ms), plain_utc(ms));
    }
});

/// Binds `value` to `T` as the server binds a body or a query; the error message is built too.
fn bind<T: DeserializeOwned>(value: &Value) -> Option<T> {
    serde_json::from_value(value.clone()).map_err(|e| e.to_string()).ok()
}

fn bodies(value: &Value) {
    bind::<auth::AuthRequest>(value);
    bind::<backup::StartBackupRequest>(value);
    bind::<backup::CronParamsRequest>(value);
    bind::<backup::ScheduleRequest>(value);
    bind::<backup::RestoreRequest>(value);
    bind::<backup::BackupQuery>(value);
    bind::<files::CreateRoomRequest>(value);
    bind::<files::CreateFolderRequest>(value);
    bind::<files::DeleteRequest>(value);
    bind::<files::ListQuery>(value);
    bind::<files::UploadQuery>(value);
    bind::<keys::CreateKeyRequest>(value);
    bind::<keys::UpdateKeyRequest>(value);
    bind::<people::MemberRequest>(value);
    bind::<people::PeopleQuery>(value);
    bind::<portal::RegisterRequest>(value);
    bind::<settings::AuthKey>(value);
    bind::<settings::AuthServiceRequest>(value);
    bind::<settings::ThirdPartyBackupRequest>(value);

    // Types that are also written: what binds, writes, and binds again unchanged.
    round_trip::<backup::CronParams>(value);
    round_trip::<BackupPeriod>(value);
    round_trip::<EmployeeStatus>(value);
    round_trip::<EmployeeType>(value);
    round_trip::<FileType>(value);
    round_trip::<FolderType>(value);
    round_trip::<RoomType>(value);
    round_trip::<StorageType>(value);
    round_trip::<PortalId>(value);
    round_trip::<UserId>(value);
}

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(value: &Value) {
    if let Some(bound) = bind::<T>(value) {
        let written = serde_json::to_value(&bound).expect("a bound value serialises");
        assert_eq!(bind::<T>(&written).as_ref(), Some(&bound), "{written}");
    }
}

fn texts(text: &str) {
    // An entry path is a blob key with length limits; whatever either accepts reads unchanged.
    let path = EntryPath::new(text);
    let key = BlobKey::new(text);
    if let Ok(path) = &path {
        assert_eq!(path.as_str(), text);
        assert!(key.is_ok(), "entry path {text:?} is not a valid blob key");
    }
    if let Ok(key) = &key {
        assert_eq!(key.as_str(), text);
        let _ = key.join(text);
        let short = text.len() <= 1024 && text.split('/').all(|segment| segment.len() <= 255);
        assert_eq!(path.is_ok(), short, "blob key {text:?}");
    }
    if let Err(err) = &path {
        let _ = err.to_string();
    }

    id::<PortalId>(text);
    id::<FolderId>(text);
    id::<FileId>(text);
    id::<UserId>(text);
    id::<KeyId>(text);
    id::<SessionId>(text);
    id::<TaskId>(text);

    name::<BackupPeriod>(text);
    name::<EmployeeStatus>(text);
    name::<EmployeeType>(text);
    name::<FileType>(text);
    name::<FolderType>(text);
    name::<RoomType>(text);
    name::<StorageType>(text);
    let _ = FileType::from_extension(text);
}

/// An id that parses from a path segment prints as text that parses to the same id.
fn id<T: FromStr + Display + PartialEq + Debug>(text: &str) {
    if let Ok(id) = text.parse::<T>() {
        assert_eq!(id.to_string().parse::<T>().ok(), Some(id));
    }
}

/// An enum found by name (or number) is found again by its number.
fn name<E: LenientEnum + PartialEq + Debug>(text: &str) {
    let found = E::from_name(text).or_else(|| text.trim().parse().ok().and_then(E::from_number));
    if let Some(member) = found {
        assert_eq!(E::from_number(member.number()), Some(member));
    }
}
