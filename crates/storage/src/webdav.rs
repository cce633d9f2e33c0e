//! [`BlobStore`] on a WebDAV folder (Nextcloud, ownCloud, kDrive, any RFC 4918 server).
//!
//! A small client of its own rather than OpenDAL's: OpenDAL's WebDAV writer buffers a whole
//! object in memory before its single PUT, and archives are large. Here a `put` streams the body
//! to a hidden temporary name in the target folder and then `MOVE`s it into place, so a reader
//! never sees a partial archive and a failed upload leaves only a temporary file that is deleted
//! on the way out. Idempotent requests are retried with backoff; a PUT cannot be (its body is a
//! stream that is consumed).

use crate::{BlobKey, BlobStore, ByteStream, StorageError};
use bytes::Bytes;
use futures_util::TryStreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Characters kept as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

const ATTEMPTS: u32 = 4;

/// A folder on a WebDAV server, with its credentials.
#[derive(Clone)]
pub struct WebDavStore {
    client: reqwest::Client,
    /// The folder's URL, ending in `/`.
    base: String,
    login: String,
    password: String,
}

impl std::fmt::Debug for WebDavStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebDavStore")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn err(key: &str, message: impl Into<String>) -> StorageError {
    StorageError::Io {
        key: key.to_owned(),
        source: io::Error::other(message.into()),
    }
}

/// Whether an answer or a transport error is worth another try.
fn transient(result: &Result<reqwest::Response, reqwest::Error>) -> bool {
    match result {
        Ok(resp) => resp.status().is_server_error() || resp.status() == StatusCode::TOO_MANY_REQUESTS,
        Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
    }
}

impl WebDavStore {
    /// A store on the folder at `url` (`http://` or `https://`).
    pub fn new(url: &str, login: &str, password: &str) -> Result<Self, StorageError> {
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(
                url,
                format!("the WebDAV address `{url}` must start with http:// or https://"),
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| err(url, format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: format!("{}/", url.trim_end_matches('/')),
            login: login.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The folder's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn url_of(&self, path: &str) -> String {
        let encoded: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        format!("{}{}", self.base, encoded.join("/"))
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, url);
        if self.login.is_empty() && self.password.is_empty() {
            req
        } else {
            req.basic_auth(&self.login, Some(&self.password))
        }
    }

    /// Sends a request without a streamed body, retrying transient failures with backoff.
    async fn send(
        &self,
        key: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StorageError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let result = build().send().await;
            if attempt >= ATTEMPTS || !transient(&result) {
                return result.map_err(|e| err(key, format!("{}: {e}", self.base)));
            }
            tracing::debug!(key, attempt, "WebDAV request failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    fn status_error(&self, key: &str, what: &str, status: StatusCode) -> StorageError {
        let why = match status {
            StatusCode::UNAUTHORIZED => "the server rejected the login or password".to_owned(),
            StatusCode::FORBIDDEN => "the server denied access".to_owned(),
            StatusCode::NOT_FOUND => "the folder does not exist".to_owned(),
            StatusCode::INSUFFICIENT_STORAGE => "the server is out of space".to_owned(),
            s => format!("the server answered {s}"),
        };
        err(key, format!("{what} `{key}` on {} failed: {why}", self.base))
    }

    /// Checks that the folder exists and the credentials are accepted.
    pub async fn check(&self) -> Result<(), StorageError> {
        let resp = self
            .send("", || {
                self.request(Method::from_bytes(b"PROPFIND").expect("valid method"), &self.base)
                    .header("Depth", "0")
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(self.status_error("", "opening the folder", s)),
        }
    }

    /// Creates the folders above `key` that do not exist yet.
    async fn make_parents(&self, key: &str) -> Result<(), StorageError> {
        let segments: Vec<&str> = key.split('/').collect();
        let mut path = String::new();
        for dir in &segments[..segments.len().saturating_sub(1)] {
            path.push_str(dir);
            path.push('/');
            let url = format!("{}/", self.url_of(&path));
            let resp = self
                .send(key, || {
                    self.request(Method::from_bytes(b"MKCOL").expect("valid method"), &url)
                })
                .await?;
            // 405: it exists already.
            if !(resp.status().is_success() || resp.status() == StatusCode::METHOD_NOT_ALLOWED) {
                return Err(self.status_error(&path, "creating the folder", resp.status()));
            }
        }
        Ok(())
    }

    async fn delete_url(&self, key: &str, url: &str) -> Result<(), StorageError> {
        let resp = self.send(key, || self.request(Method::DELETE, url)).await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(self.status_error(key, "deleting", s)),
        }
    }

    /// Every file below `dir` (relative path, ending in `/` or empty), recursively.
    async fn list_dir(&self, dir: &str, out: &mut Vec<String>) -> Result<(), StorageError> {
        let url = format!("{}/", self.url_of(dir))
            .replace("//", "/")
            .replacen(":/", "://", 1);
        let url = if dir.is_empty() { self.base.clone() } else { url };
        let resp = self
            .send(dir, || {
                self.request(Method::from_bytes(b"PROPFIND").expect("valid method"), &url)
                    .header("Depth", "1")
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if !resp.status().is_success() {
            return Err(self.status_error(dir, "listing", resp.status()));
        }
        let body = resp.text().await.map_err(|e| err(dir, e.to_string()))?;
        let base_path = url_path(&url);
        for (href, is_dir) in parse_multistatus(&body).map_err(|e| err(dir, e))? {
            let path = url_path(&href);
            let Some(rel) = path.strip_prefix(&base_path) else {
                continue;
            };
            let rel = percent_encoding::percent_decode_str(rel.trim_matches('/'))
                .decode_utf8_lossy()
                .into_owned();
            if rel.is_empty() {
                continue;
            }
            let full = format!("{dir}{rel}");
            if is_dir {
                Box::pin(self.list_dir(&format!("{full}/"), out)).await?;
            } else {
                out.push(full);
            }
        }
        Ok(())
    }
}

/// The path part of an absolute or server-relative URL.
fn url_path(url: &str) -> String {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            after.find('/').map_or("/", |j| &after[j..])
        }
        None => url,
    };
    rest.to_owned()
}

/// `(href, is_collection)` of each `response` of a PROPFIND multistatus body.
fn parse_multistatus(body: &str) -> Result<Vec<(String, bool)>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let mut out = Vec::new();
    let mut href: Option<String> = None;
    let mut in_href = false;
    let mut is_dir = false;
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("the server's listing is not XML: {e}"))?
        {
            Event::Start(e) => match e.local_name().as_ref() {
                "response" => {
                    href = None;
                    is_dir = false;
                }
                "href" => in_href = true,
                "collection" => is_dir = true,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == "collection" => is_dir = true,
            Event::Text(t) if in_href => {
                let text = t.into_inner();
                href.get_or_insert_with(String::new).push_str(text.trim());
            }
            Event::GeneralRef(r) if in_href => {
                let name = r.into_inner();
                let ch = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                };
                href.get_or_insert_with(String::new).push_str(ch);
            }
            Event::End(e) => match e.local_name().as_ref() {
                "href" => in_href = false,
                "response" => {
                    if let Some(h) = href.take() {
                        out.push((h, is_dir));
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[async_trait::async_trait]
impl BlobStore for WebDavStore {
    async fn put(&self, key: &BlobKey, data: ByteStream) -> Result<u64, StorageError> {
        let key = key.as_str();
        self.make_parents(key).await?;
        let (dir, name) = key.rsplit_once('/').map_or(("", key), |(d, n)| (d, n));
        let temp_name = format!(".{name}.{:016x}.partial", rand::random::<u64>());
        let temp = if dir.is_empty() {
            temp_name
        } else {
            format!("{dir}/{temp_name}")
        };
        let temp_url = self.url_of(&temp);
        // The input stream's own error is kept apart from the server's.
        let input_error: Arc<Mutex<Option<io::Error>>> = Arc::default();
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let body = {
            let input_error = input_error.clone();
            let written = written.clone();
            data.inspect_ok(move |chunk: &Bytes| {
                written.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            })
            .map_err(move |e| {
                let message = e.to_string();
                *input_error.lock().expect("not poisoned") = Some(e);
                io::Error::other(message)
            })
        };
        let sent = self
            .request(Method::PUT, &temp_url)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await;
        let result = match sent {
            _ if input_error.lock().expect("not poisoned").is_some() => {
                let source = input_error.lock().expect("not poisoned").take().expect("checked");
                Err(StorageError::Input {
                    key: key.to_owned(),
                    source,
                })
            }
            Err(e) => Err(err(key, format!("uploading `{key}` to {} failed: {e}", self.base))),
            Ok(resp) if !resp.status().is_success() => Err(self.status_error(key, "uploading", resp.status())),
            Ok(_) => {
                let final_url = self.url_of(key);
                let moved = self
                    .send(key, || {
                        self.request(Method::from_bytes(b"MOVE").expect("valid method"), &temp_url)
                            .header("Destination", &final_url)
                            .header("Overwrite", "T")
                    })
                    .await;
                match moved {
                    Ok(resp) if resp.status().is_success() => Ok(written.load(std::sync::atomic::Ordering::Relaxed)),
                    Ok(resp) => Err(self.status_error(key, "moving the upload into place as", resp.status())),
                    Err(e) => Err(e),
                }
            }
        };
        if result.is_err() {
            if let Err(e) = self.delete_url(&temp, &temp_url).await {
                tracing::warn!(key, error = %e, "removing a failed WebDAV upload failed");
            }
        }
        result
    }

    async fn get(&self, key: &BlobKey) -> Result<ByteStream, StorageError> {
        let url = self.url_of(key.as_str());
        let resp = self.send(key.as_str(), || self.request(Method::GET, &url)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Err(StorageError::NotFound(key.to_string())),
            s if s.is_success() => Ok(Box::pin(resp.bytes_stream().map_err(io::Error::other))),
            s => Err(self.status_error(key.as_str(), "downloading", s)),
        }
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, StorageError> {
        if range.start >= range.end {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let url = self.url_of(key.as_str());
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let resp = self
            .send(key.as_str(), || {
                self.request(Method::GET, &url).header("Range", &header)
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Err(StorageError::NotFound(key.to_string())),
            StatusCode::PARTIAL_CONTENT => Ok(Box::pin(resp.bytes_stream().map_err(io::Error::other))),
            StatusCode::OK if range.start == 0 => {
                let stream = resp.bytes_stream().map_err(io::Error::other);
                Ok(Box::pin(crate::take_bytes(Box::pin(stream), range.end)))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(Box::pin(futures_util::stream::empty())),
            s => Err(self.status_error(key.as_str(), "downloading part of", s)),
        }
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        let url = self.url_of(key.as_str());
        let resp = self.send(key.as_str(), || self.request(Method::HEAD, &url)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp.content_length().unwrap_or(0))),
            s => Err(self.status_error(key.as_str(), "looking up", s)),
        }
    }

    async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, StorageError> {
        let mut found = Vec::new();
        self.list_dir(&format!("{}/", prefix.as_str()), &mut found).await?;
        let mut keys: Vec<BlobKey> = found.into_iter().filter_map(|k| BlobKey::new(k).ok()).collect();
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.delete_url(key.as_str(), &self.url_of(key.as_str())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multistatus_listings() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:">
 <d:response><d:href>/dav/backups/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop></d:propstat></d:response>
 <d:response><d:href>/dav/backups/a%20b.tar.zst</d:href><d:propstat><d:prop><d:resourcetype/></d:prop></d:propstat></d:response>
 <d:response><d:href>http://h:1/dav/backups/x&amp;y/</d:href><d:propstat><d:prop><d:resourcetype><d:collection></d:collection></d:resourcetype></d:prop></d:propstat></d:response>
</d:multistatus>"#;
        let got = parse_multistatus(body).unwrap();
        assert_eq!(
            got,
            vec![
                ("/dav/backups/".to_owned(), true),
                ("/dav/backups/a%20b.tar.zst".to_owned(), false),
                ("http://h:1/dav/backups/x&y/".to_owned(), true),
            ]
        );
        assert_eq!(url_path("http://h:1/dav/x/"), "/dav/x/");
        assert!(parse_multistatus("<a><b></a>").is_err());
    }

    #[test]
    fn encodes_path_segments() {
        let store = WebDavStore::new("http://h/dav/", "", "").unwrap();
        assert_eq!(store.url_of("a b/c#d.tar"), "http://h/dav/a%20b/c%23d.tar");
        assert!(WebDavStore::new("ftp://h/", "", "").is_err());
    }
}
