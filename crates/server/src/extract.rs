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

/// A JSON value whose object keys are lower-cased, recursively (DocSpace binds property names
/// case-insensitively, and request DTOs use lower-case names), and which refuses an object that
/// names a property twice, in any case: were the last one to win, a proxy that checked the first
/// and this server would disagree about what a request says.
struct LowerKeys(Value);

impl<'de> serde::Deserialize<'de> for LowerKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LowerKeysVisitor).map(Self)
    }
}

struct LowerKeysVisitor;

impl<'de> serde::de::Visitor<'de> for LowerKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(LowerKeys(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let lower = key.to_lowercase();
            if out.contains_key(&lower) {
                return Err(serde::de::Error::custom(format!(
                    "the property `{}` is given twice",
                    key.chars().take(100).collect::<String>()
                )));
            }
            let LowerKeys(v) = map.next_value()?;
            out.insert(lower, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses a request body: JSON, with lower-cased keys and no property given twice.
fn parse_body(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str::<LowerKeys>(text).map(|v| v.0).map_err(|e| {
        // Only the visitor raises data errors here: a property given twice.
        let what = if e.is_data() {
            "The request body is ambiguous"
        } else {
            "The request body is not valid JSON"
        };
        ApiError(Error::validation("$", format!("{what}: {e}")))
    })
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
            parse_body(text)?
        };
        if !value.is_object() {
            return Err(ApiError(Error::validation(
                "$",
                "The request body must be a JSON object.",
            )));
        }
        Ok(Self(bind(value)?))
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
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|e| {
            ApiError::not_found(format!(
                "the path parameter is not a valid id for this route: {}",
                e.body_text()
            ))
        })?;
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
        let v = parse_body(r#"{"UserName":"a","Nested":{"InNer":[{"X":1}]},"n":[1.5,-2,null,true]}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"username":"a","nested":{"inner":[{"x":1}]},"n":[1.5,-2,null,true]})
        );
    }

    #[test]
    fn a_property_given_twice_is_refused_in_any_case() {
        for body in [
            r#"{"a":1,"a":2}"#,
            r#"{"Name":"x","NAME":"y"}"#,
            r#"{"o":[{"k":1,"K":1}]}"#,
        ] {
            let e = parse_body(body).unwrap_err().0.to_string();
            assert!(e.contains("is given twice"), "{body}: {e}");
        }
    }
}
