//! The DocSpace error body and the one table that maps error kinds to HTTP status.
//!
//! DocSpace turns .NET exceptions into `{"error":{"message","type","stack","hresult"},"status":1,
//! "statusCode":N}`. Clients read `error.message` and `statusCode`; the four keys are always
//! present. We never send a real stack trace: `stack` is empty.

use serde::Serialize;

/// Every kind of error the API can answer with. [`ErrorKind::spec`] is the mapping table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad argument or body (.NET `ArgumentException`).
    BadRequest,
    /// No or invalid credentials.
    Unauthorized,
    /// Role or scope failure; the message is always `Access denied`.
    AccessDenied,
    /// An operation not allowed in the current state (.NET `InvalidOperationException`): 403
    /// with its own message.
    InvalidOperation,
    /// Unknown object or route.
    NotFound,
    /// Known path, wrong method.
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The request's headers are larger than the server reads (431, as Kestrel answers).
    HeadersTooLarge,
    /// The media type is not supported (.NET `NotSupportedException`).
    UnsupportedMediaType,
    /// Too many attempts; the response carries `Retry-After`.
    TooManyRequests,
    /// A bug or an outage on our side. The message sent is generic; the real error is logged.
    Internal,
    /// An external storage (an S3 bucket, a WebDAV server) failed or cannot be reached; the
    /// message names it and the cause.
    StorageUnavailable,
}

/// What one row of the table says about an error kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorSpec {
    pub status: u16,
    /// The .NET exception type DocSpace would name, for clients that log it.
    pub dotnet_type: &'static str,
    pub hresult: i32,
}

impl ErrorKind {
    /// The mapping table: HTTP status, the .NET type DocSpace names, its HRESULT.
    pub const fn spec(self) -> ErrorSpec {
        let (status, dotnet_type, hresult) = match self {
            Self::BadRequest => (400, "System.ArgumentException", -2147024809),
            Self::Unauthorized => (
                401,
                "System.Security.Authentication.AuthenticationException",
                -2146233087,
            ),
            Self::AccessDenied => (403, "System.Security.SecurityException", -2146233078),
            Self::InvalidOperation => (403, "System.InvalidOperationException", -2146233079),
            Self::NotFound => (404, "System.IO.FileNotFoundException", -2147024894),
            Self::MethodNotAllowed => (405, "System.NotSupportedException", -2146233067),
            Self::PayloadTooLarge => (413, "System.ArgumentOutOfRangeException", -2146233086),
            Self::HeadersTooLarge => (431, "Microsoft.AspNetCore.Http.BadHttpRequestException", -2146232800),
            Self::UnsupportedMediaType => (415, "System.NotSupportedException", -2146233067),
            Self::TooManyRequests => (
                429,
                "ASC.Core.Common.Security.BruteForceCredentialException",
                -2146233088,
            ),
            Self::Internal => (500, "System.Exception", -2146233088),
            Self::StorageUnavailable => (502, "System.Net.Http.HttpRequestException", -2146233088),
        };
        ErrorSpec {
            status,
            dotnet_type,
            hresult,
        }
    }

    /// Every kind, for tests that walk the table.
    pub const ALL: [ErrorKind; 12] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::AccessDenied,
        Self::InvalidOperation,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::HeadersTooLarge,
        Self::UnsupportedMediaType,
        Self::TooManyRequests,
        Self::Internal,
        Self::StorageUnavailable,
    ];
}

/// `error` inside [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub stack: String,
    pub hresult: i32,
}

/// DocSpace's error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub status: i32,
    pub status_code: u16,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let spec = kind.spec();
        let message = match kind {
            // DocSpace replaces the text of every security exception.
            ErrorKind::AccessDenied => "Access denied".to_owned(),
            _ => message.into(),
        };
        Self {
            error: ErrorDetail {
                message,
                kind: spec.dotnet_type.to_owned(),
                stack: String::new(),
                hresult: spec.hresult,
            },
            status: 1,
            status_code: spec.status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_docspace_shape() {
        let body = serde_json::to_value(ErrorBody::new(ErrorKind::NotFound, "file `3` not found")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error":{"message":"file `3` not found","type":"System.IO.FileNotFoundException","stack":"","hresult":-2147024894},"status":1,"statusCode":404})
        );
    }

    #[test]
    fn access_denied_text_is_fixed() {
        let body = ErrorBody::new(ErrorKind::AccessDenied, "you are only a guest");
        assert_eq!(body.error.message, "Access denied");
        assert_eq!(body.status_code, 403);
    }

    #[test]
    fn client_errors_are_4xx_and_only_server_side_failures_are_5xx() {
        for kind in ErrorKind::ALL {
            let status = kind.spec().status;
            if kind == ErrorKind::Internal {
                assert_eq!(status, 500);
            } else if kind == ErrorKind::StorageUnavailable {
                assert_eq!(status, 502);
            } else {
                assert!((400..500).contains(&status), "{kind:?} maps to {status}");
            }
        }
    }
}
