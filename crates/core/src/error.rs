//! Service errors. Each maps to one [`ErrorKind`] of the wire table.

use backspace_meta::StoreError;
use backspace_storage::StorageError;
use backspace_types::ErrorKind;

/// What a service call can fail with. Messages start lower case where they are ours, and name
/// the object; DocSpace's exact texts are kept where clients compare them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A field failed validation; answered as DocSpace's `ValidationProblemDetails`.
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{0}")]
    Unauthorized(String),
    /// Role or scope failure. The reason is for logs; the client sees `Access denied`.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// Forbidden in the current state, with a message the client sees (403).
    #[error("{0}")]
    InvalidOperation(String),
    #[error("too many attempts; retry after {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request's headers are over the server's limit.
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// An external storage failed; the message (sent) names it and the cause.
    #[error("{0}")]
    StorageUnavailable(String),
    /// Ours; the message is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::BadRequest(_) | Self::Validation { .. } => ErrorKind::BadRequest,
            Self::Unauthorized(_) => ErrorKind::Unauthorized,
            Self::AccessDenied(_) => ErrorKind::AccessDenied,
            Self::InvalidOperation(_) => ErrorKind::InvalidOperation,
            Self::TooManyAttempts { .. } => ErrorKind::TooManyRequests,
            Self::PayloadTooLarge(_) => ErrorKind::PayloadTooLarge,
            Self::HeadersTooLarge(_) => ErrorKind::HeadersTooLarge,
            Self::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            Self::MethodNotAllowed(_) => ErrorKind::MethodNotAllowed,
            Self::Internal(_) => ErrorKind::Internal,
            Self::StorageUnavailable(_) => ErrorKind::StorageUnavailable,
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn denied(reason: impl Into<String>) -> Self {
        Self::AccessDenied(reason.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::BadRequest(what),
            StoreError::NotFound(what) => Self::NotFound(what),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(key) => Self::NotFound(format!("blob `{key}` is missing from storage")),
            other => Self::Internal(other.to_string()),
        }
    }
}
