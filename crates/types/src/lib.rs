//! DocSpace wire types: the response envelope, the error body and its status table, the enums
//! and the request/response DTOs of the portal and backup APIs.
//!
//! This crate owns the bytes clients see. It does serde only: no I/O, no storage rows, no HTTP
//! framework. Request DTOs are lenient (the server lower-cases property names before they reach
//! them, numbers and enums may arrive as strings); response DTOs are strict (camelCase, enums as
//! integers, nulls omitted).

pub mod datetime;
pub mod dto;
pub mod enums;
pub mod envelope;
pub mod error;
pub mod id;
pub mod lenient;

pub use datetime::{api_datetime, plain_utc, NEVER};
pub use enums::{BackupPeriod, EmployeeStatus, EmployeeType, FileType, FolderType, RoomType, StorageType};
pub use envelope::{Envelope, Link, ValidationProblem};
pub use error::{ErrorBody, ErrorDetail, ErrorKind};
pub use id::{FileId, FolderId, KeyId, PortalId, SessionId, TaskId, UserId};
