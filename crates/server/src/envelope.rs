//! The success envelope. Handlers return a [`Reply`]; one middleware, [`render`], writes every
//! body, because only it knows the request URL that `links` must echo.

use crate::extract::RequestUrl;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backspace_types::{Envelope, ErrorBody, Link, ValidationProblem};
use serde::Serialize;
use serde_json::Value;

/// A successful handler result: the `response` value (absent when `None`) and an optional
/// `total`.
#[derive(Debug, Default)]
pub struct Reply {
    response: Option<Value>,
    total: Option<u64>,
}

impl Reply {
    pub fn ok(value: impl Serialize) -> Self {
        match serde_json::to_value(value) {
            Ok(Value::Null) => Self::default(),
            Ok(v) => Self {
                response: Some(v),
                total: None,
            },
            Err(e) => {
                tracing::error!(error = %e, "serialising a response failed");
                Self::default()
            }
        }
    }

    /// No `response` member, `count` 0.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn with_total(mut self, total: i64) -> Self {
        self.total = Some(total.max(0) as u64);
        self
    }
}

/// What a response still needs rendered.
#[derive(Clone, Debug)]
pub enum Pending {
    Success {
        response: Option<Value>,
        total: Option<u64>,
    },
    Error {
        body: ErrorBody,
        validation: Option<ValidationProblem>,
    },
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = StatusCode::OK.into_response();
        r.extensions_mut().insert(Pending::Success {
            response: self.response,
            total: self.total,
        });
        r
    }
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// Renders pending bodies. Responses without a [`Pending`] (downloads, the un-enveloped
/// registration reply) pass through untouched.
pub async fn render(req: Request, next: Next) -> Response {
    let url = req.extensions().get::<RequestUrl>().cloned();
    let method = req.method().as_str().to_owned();
    let mut response = next.run(req).await;
    let Some(pending) = response.extensions_mut().remove::<Pending>() else {
        return response;
    };
    let status = response.status();
    let link = Link {
        href: url.map(|u| u.0).unwrap_or_default(),
        action: method,
    };
    let mut rendered = match pending {
        Pending::Success { response: value, total } => json_response(status, &Envelope::success(value, total, link)),
        Pending::Error { body, validation: None } => json_response(status, &body),
        Pending::Error {
            body,
            validation: Some(problem),
        } => {
            // DocSpace puts ValidationProblemDetails in `response` with `status: 1`; clients
            // that read `error.message` get the error body's members beside it.
            let value = serde_json::json!({
                "response": problem,
                "error": body.error,
                "count": 1,
                "links": [link],
                "status": 1,
                "statusCode": body.status_code,
            });
            json_response(status, &value)
        }
    };
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}
