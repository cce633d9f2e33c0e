//! Turning a service error into DocSpace's error body: the one place that does it.

use crate::envelope::Pending;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use backspace_core::Error;
use backspace_types::{ErrorBody, ErrorKind, ValidationProblem};

/// A handler's error. Rendered by [`crate::envelope::render`] into the error body (and, for
/// validation failures, DocSpace's `ValidationProblemDetails` in `response` as well).
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T = crate::envelope::Reply> = Result<T, ApiError>;

/// The longest error message sent, in characters. Messages quote what the client sent, and a
/// hostile client sends a megabyte: the middle of a longer one is cut, keeping its start (what
/// was wrong) and its end (why).
const MAX_MESSAGE_CHARS: usize = 1000;

/// `message`, cut to [`MAX_MESSAGE_CHARS`] around an ellipsis.
pub(crate) fn shorten(message: &str) -> String {
    let chars = message.chars().count();
    if chars <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let (head, tail) = (MAX_MESSAGE_CHARS * 2 / 3, MAX_MESSAGE_CHARS / 3);
    let start: String = message.chars().take(head).collect();
    let end: String = message.chars().skip(chars - tail).collect();
    format!("{start}…{end}")
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl ApiError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self(Error::NotFound(message.into()))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(Error::BadRequest(message.into()))
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let status = StatusCode::from_u16(kind.spec().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &self.0 {
            Error::Internal(detail) => {
                // 5xx bodies hide internals; the real error goes to the log.
                tracing::error!(error = %detail, "internal error");
                "The server could not complete the request; the error was logged".to_owned()
            }
            Error::AccessDenied(reason) => {
                tracing::debug!(%reason, "access denied");
                String::new()
            }
            other => shorten(&other.to_string()),
        };
        let validation = match &self.0 {
            Error::Validation { field, message } => Some(ValidationProblem::new(field.clone(), shorten(message))),
            _ => None,
        };
        let mut response = status.into_response();
        match &self.0 {
            Error::TooManyAttempts { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Error::PayloadTooLarge(_) => {
                // The rest of the body was not read: the connection cannot carry another
                // request, and saying so keeps clients from reusing it.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Error::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"backspace\", Bearer"),
                );
            }
            _ => {}
        }
        response.extensions_mut().insert(Pending::Error {
            body: ErrorBody::new(kind, message),
            validation,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_messages_keep_their_start_and_end() {
        let long = format!("filePath `{}` cannot be used: too long", "x".repeat(5000));
        let short = super::shorten(&long);
        assert_eq!(short.chars().count(), super::MAX_MESSAGE_CHARS);
        assert!(short.starts_with("filePath `xxx") && short.ends_with("cannot be used: too long"));
        assert_eq!(super::shorten("short"), "short");
    }
}
