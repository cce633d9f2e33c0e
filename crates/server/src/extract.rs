//! Extractors that bind requests the lenient DocSpace way and fail with DocSpace error bodies.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use backspace_core::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::SocketAddr;
use std::str::FromStr;

/// The request's absolute URL as the client sent it (before path lower-casing), for `links`.
#[derive(Clone, Debug)]
pub struct RequestUrl(pub String);

/// `scheme://host` of the request, for absolute links in DTOs.
#[derive(Clone, Debug)]
pub struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<BaseUrl>()
            .cloned()
            .unwrap_or_else(|| BaseUrl("http://localhost".to_owned())))
    }
}

/// The client's address, for sign-in throttling.
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(ClientAddr(addr))
    }
}

/// Lower-cases every object key, recursively: DocSpace binds property names
/// case-insensitively, and request DTOs use lower-case names.
fn lower_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase(), lower_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lower_keys).collect()),
        other => other,
    }
}

/// Binds a lower-cased JSON value to `T`, naming the field that failed.
fn bind<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError(Error::validation(
            "$",
            format!("The JSON value could not be converted: {e}"),
        ))
    })
}

/// A JSON body, bound leniently. An empty body is `{}`. Malformed JSON, a non-object body and
/// wrong types are 400s with the problem named; a body over the limit is a 413.
pub struct LenientJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for LenientJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError(Error::validation("$", "The request body is not valid UTF-8.")))?;
        let value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str::<Value>(text).map_err(|e| {
                ApiError(Error::validation(
                    "$",
                    format!("The request body is not valid JSON: {e}"),
                ))
            })?
        };
        if !value.is_object() {
            return Err(ApiError(Error::validation(
                "$",
                "The request body must be a JSON object.",
            )));
        }
        Ok(Self(bind(lower_keys(value))?))
    }
}

/// Maps failures to read a body: over the limit is 413, anything else 400.
pub fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(Error::PayloadTooLarge(
            "The request body is larger than the server accepts".to_owned(),
        ))
    } else {
        ApiError(Error::BadRequest(format!(
            "reading the request body failed: {}",
            r.body_text()
        )))
    }
}

/// A query string, bound leniently: names are case-insensitive; values are strings that the
/// DTO's lenient deserialisers convert. A repeated name keeps its first value.
pub struct LenientQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for LenientQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut map = serde_json::Map::new();
        for (k, v) in form_urlencoded_pairs(parts.uri.query().unwrap_or("")) {
            map.entry(k.to_lowercase()).or_insert(Value::String(v));
        }
        let value = Value::Object(map);
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError(Error::validation("$", format!("A query parameter is not valid: {e}"))))
    }
}

/// Splits and percent-decodes `a=b&c=d`.
pub fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
            i += 1;
            continue;
        }
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One path parameter parsed as `T`; a value that does not parse is a 404, as a route
/// constraint failing is in DocSpace.
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: FromStr + Send> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("the route needs one path parameter"))?;
        raw.parse()
            .map(Self)
            .map_err(|_| ApiError::not_found(format!("`{raw}` is not a valid id for this route")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            form_urlencoded_pairs("Dump=True&title=a%20b+c&x=%zz&e="),
            vec![
                ("Dump".into(), "True".into()),
                ("title".into(), "a b c".into()),
                ("x".into(), "%zz".into()),
                ("e".into(), "".into())
            ]
        );
        assert_eq!(form_urlencoded_pairs("t=%E2%82%AC%"), vec![("t".into(), "€%".into())]);
    }

    #[test]
    fn keys_are_lower_cased_recursively() {
        let v = lower_keys(serde_json::json!({"UserName":"a","Nested":{"InNer":[{"X":1}]}}));
        assert_eq!(v, serde_json::json!({"username":"a","nested":{"inner":[{"x":1}]}}));
    }
}
