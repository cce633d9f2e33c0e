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
            other => other.to_string(),
        };
        let validation = match &self.0 {
            Error::Validation { field, message } => Some(ValidationProblem::new(field.clone(), message.clone())),
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
