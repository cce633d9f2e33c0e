//! `GET /filehandler.ashx?action=download&fileid=N`: the raw bytes, not enveloped.

use crate::access::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::LenientQuery;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use backspace_types::FileId;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub struct HandlerQuery {
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_string")]
    action: Option<String>,
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_i64")]
    fileid: Option<i64>,
}

/// RFC 5987 encoding of a file name for `Content-Disposition`.
fn encode_filename(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn handle(
    State(state): State<AppState>,
    Authed(caller): Authed,
    LenientQuery(q): LenientQuery<HandlerQuery>,
) -> ApiResult<Response> {
    let disposition = match q.action.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("download") => "attachment",
        Some("view") => "inline",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown action `{other}`: use download or view"
            )))
        }
        None => return Err(ApiError::bad_request("the action parameter is required")),
    };
    let id = q
        .fileid
        .ok_or_else(|| ApiError::bad_request("the fileid parameter is required"))?;
    let (file, data) = state.core.download(&caller, FileId(id)).await?;
    let mut response = Response::new(Body::from_stream(data));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size.max(0) as u64));
    let value = format!("{disposition}; filename*=UTF-8''{}", encode_filename(&file.title));
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filenames_are_encoded() {
        assert_eq!(super::encode_filename("a b€.txt"), "a%20b%E2%82%AC.txt");
    }
}
