//! The GCS backend: a repository under a prefix of one Google Cloud Storage bucket,
//! spoken over GCS's JSON API with our HTTP client ([`crate::storage::http`]).
//!
//! Why our own thin client: object_store's GCS client uses the XML API, which
//! fake-gcs-server (our test emulator) does not serve beyond GET and list, and its
//! service-account auth signs its own JWT instead of asking the key's `token_uri`;
//! opendal's overwrites on `if_not_exists` (it goes through a resumable upload) and pulls
//! the `rsa` crate (RUSTSEC-2023-0071); the official crate lists and deletes over gRPC.
//! Five JSON requests are less code than any of those workarounds. Credentials come from
//! `auth` (service-account JWT, metadata server).
//!
//! Requests: every write is one multipart upload (`uploadType=multipart`), the only
//! upload kind on which fake-gcs honours `ifGenerationMatch=0` (put-if-absent); GCS takes
//! any size that way, and our objects are packs of ~16 MiB. Reads are `alt=media` with a
//! `Range`; listings page with `pageToken`. A killed writer leaves nothing behind (one
//! request per object), so `cleanup_incomplete` keeps the trait's default.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::body::{check_range, range_header};
use super::http::{describe, is_transient, Answer, HttpClient};
use super::keys::Root;
use super::retry::{retry, Failure, RetryPolicy, PROBE_ATTEMPTS};
use super::{ObjectMeta, Storage, StorageError, StorageResult};

pub mod auth;

pub use auth::GcsCredentials;

/// Google's API host, when the profile names no endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// Everything but RFC 3986's unreserved characters is escaped in names and queries.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn escape(s: &str) -> String {
    utf8_percent_encode(s, ESCAPE).to_string()
}

/// How to reach one repository in a GCS bucket.
#[derive(Debug, Clone)]
pub struct GcsConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix of the repository inside the bucket; normalised by [`Root::new`].
    pub root: String,
    /// API base URL (`https://storage.googleapis.com`, an emulator, a private gateway).
    pub endpoint: String,
    /// Who signs the requests.
    pub credentials: GcsCredentials,
    /// Accept any TLS certificate (Kanister's SkipSSLVerify).
    pub skip_ssl_verify: bool,
    /// Attempts and per-attempt timeout.
    pub retry: RetryPolicy,
}

/// A repository stored under a prefix of a GCS bucket.
pub struct GcsStorage {
    http: HttpClient,
    tokens: Arc<dyn auth::TokenSource>,
    endpoint: String,
    bucket: String,
    root: Root,
    policy: RetryPolicy,
}

impl fmt::Debug for GcsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsStorage")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// An object's metadata as the JSON API returns it (sizes are decimal strings).
#[derive(Deserialize)]
struct ObjectResource {
    name: String,
    size: String,
}

#[derive(Deserialize)]
struct ListPage {
    #[serde(default)]
    items: Vec<ObjectResource>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

/// What a conditional upload did.
enum Upload {
    Written,
    Exists,
}

impl GcsStorage {
    /// Builds the client and checks, with one listing under the root, that the bucket
    /// exists and the credentials may read it. Fails with a message naming the cause.
    pub async fn connect(cfg: GcsConfig) -> anyhow::Result<GcsStorage> {
        let bucket = cfg.bucket.trim().to_string();
        if bucket.is_empty() || bucket.contains('/') {
            anyhow::bail!("invalid GCS bucket name {:?}", cfg.bucket);
        }
        let endpoint = normalize_endpoint(&cfg.endpoint)?;
        let http = HttpClient::new(cfg.skip_ssl_verify)
            .map_err(|e| anyhow::anyhow!("cannot load the system's TLS roots: {e}"))?;
        let tokens = auth::token_source(&cfg.credentials).await?;
        let storage = GcsStorage {
            http,
            tokens,
            endpoint,
            bucket,
            root: Root::new(&cfg.root)?,
            policy: cfg.retry,
        };
        let probe = storage.policy.with_attempts(PROBE_ATTEMPTS);
        let prefix = storage.root.join("");
        match storage.list_page(&prefix, None, Some(1), probe).await {
            Ok(_) => Ok(storage),
            Err(e) => Err(storage.connect_error(e)),
        }
    }

    fn connect_error(&self, e: StorageError) -> anyhow::Error {
        let at = &self.endpoint;
        let bucket = &self.bucket;
        match e {
            StorageError::NotFound(_) => {
                anyhow::anyhow!("bucket {bucket} does not exist at {at}")
            }
            StorageError::PermissionDenied { source, .. } => anyhow::anyhow!(
                "access denied to bucket {bucket} at {at} ({source}): check the profile's credentials"
            ),
            StorageError::Unavailable { source, .. } => {
                anyhow::anyhow!("cannot reach the GCS endpoint {at}: {source}")
            }
            other => anyhow::anyhow!("cannot use bucket {bucket} at {at}: {other}"),
        }
    }

    fn object_url(&self, full: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint,
            escape(&self.bucket),
            escape(full)
        )
    }

    /// One request, retried per the policy. `classify` turns a non-success answer into
    /// the caller's outcome (or `None`: the default mapping).
    async fn call<T>(
        &self,
        policy: RetryPolicy,
        context: &str,
        build: impl Fn() -> http::request::Builder,
        body: &Bytes,
        handle: impl Fn(Answer) -> Result<T, Box<Answer>>,
    ) -> StorageResult<T> {
        retry(policy, context, || async {
            let token = self
                .tokens
                .token()
                .await
                .map_err(|e| Failure::Final(self.auth_error(context, e)))?;
            let mut request = build();
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request
                .body(Full::new(body.clone()))
                .map_err(|e| StorageError::other(context, e))?;
            let answer = self.http.send(request).await?;
            match handle(answer) {
                Ok(v) => Ok(v),
                Err(answer) => Err(self.failure(context, *answer)),
            }
        })
        .await
    }

    fn auth_error(&self, context: &str, e: super::error::Cause) -> StorageError {
        StorageError::PermissionDenied {
            context: format!("{context}: obtaining a Google access token"),
            source: e,
        }
    }

    /// The default mapping of an answer nobody handled.
    fn failure(&self, context: &str, answer: Answer) -> Failure {
        let status = answer.status;
        let source = describe(&answer);
        if is_transient(status) {
            return Failure::Transient(source);
        }
        let context = context.to_string();
        Failure::Final(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                StorageError::PermissionDenied { context, source }
            }
            _ => StorageError::Other { context, source },
        })
    }

    async fn list_page(
        &self,
        full_prefix: &str,
        token: Option<&str>,
        max: Option<u32>,
        policy: RetryPolicy,
    ) -> StorageResult<ListPage> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?prefix={}",
            self.endpoint,
            escape(&self.bucket),
            escape(full_prefix)
        );
        if let Some(t) = token {
            url.push_str(&format!("&pageToken={}", escape(t)));
        }
        if let Some(m) = max {
            url.push_str(&format!("&maxResults={m}"));
        }
        let context = format!("LIST gs://{}/{full_prefix}", self.bucket);
        let page = self
            .call(
                policy,
                &context,
                || Request::get(&url),
                &Bytes::new(),
                |a| match a.status {
                    StatusCode::OK => Ok(Some(a.body)),
                    // The bucket itself is missing.
                    StatusCode::NOT_FOUND => Ok(None),
                    _ => Err(Box::new(a)),
                },
            )
            .await?;
        let Some(body) = page else {
            return Err(StorageError::NotFound(self.bucket.clone()));
        };
        serde_json::from_slice(&body)
            .map_err(|e| StorageError::other(context, format!("unreadable listing: {e}")))
    }

    /// A multipart upload of `data` under `full`; with `if_absent`, `ifGenerationMatch=0`.
    async fn upload(&self, full: &str, data: Bytes, if_absent: bool) -> StorageResult<Upload> {
        let mut url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
            self.endpoint,
            escape(&self.bucket)
        );
        if if_absent {
            url.push_str("&ifGenerationMatch=0");
        }
        // A boundary that does not occur in the data (random: a clash is a 2^-128 event,
        // checked anyway, with memchr's substring search: this runs on every pack).
        let boundary = loop {
            let b = format!("kando{:032x}", rand::random::<u128>());
            if memchr::memmem::find(&data, b.as_bytes()).is_none() {
                break b;
            }
        };
        let metadata = serde_json::json!({ "name": full }).to_string();
        let mut body = Vec::with_capacity(data.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{boundary}\r\ncontent-type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = Bytes::from(body);
        let content_type = format!("multipart/related; boundary={boundary}");
        let context = format!("PUT gs://{}/{full}", self.bucket);
        self.call(
            self.policy,
            &context,
            || {
                Request::builder()
                    .method(Method::POST)
                    .uri(&url)
                    .header("content-type", &content_type)
            },
            &body,
            |a| match a.status {
                s if s.is_success() => Ok(Upload::Written),
                StatusCode::PRECONDITION_FAILED if if_absent => Ok(Upload::Exists),
                _ => Err(Box::new(a)),
            },
        )
        .await
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        let full = self.root.full_key(key)?;
        let url = format!("{}?alt=media", self.object_url(&full));
        let context = format!("GET gs://{}/{full}", self.bucket);
        let header = range.as_ref().map(range_header);
        let answer = self
            .call(
                self.policy,
                &context,
                || {
                    let r = Request::get(&url);
                    match &header {
                        Some(h) => r.header("range", h),
                        None => r,
                    }
                },
                &Bytes::new(),
                |a| match a.status {
                    StatusCode::OK
                    | StatusCode::PARTIAL_CONTENT
                    | StatusCode::NOT_FOUND
                    | StatusCode::RANGE_NOT_SATISFIABLE => Ok(a),
                    _ => Err(Box::new(a)),
                },
            )
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Err(StorageError::NotFound(key.to_string())),
            StatusCode::RANGE_NOT_SATISFIABLE => Err(StorageError::other(
                context,
                format!("range {:?} is outside the object", range.unwrap_or(0..0)),
            )),
            _ => match range {
                None => Ok(answer.body),
                Some(r) => {
                    let content_range = answer.header("content-range").map(str::to_string);
                    check_range(answer.body, r, content_range.as_deref())
                        .map_err(|why| StorageError::other(context, why))
                }
            },
        }
    }
}

#[async_trait]
impl Storage for GcsStorage {
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()> {
        let full = self.root.full_key(key)?;
        self.upload(&full, data, false).await.map(drop)
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool> {
        let full = self.root.full_key(key)?;
        Ok(matches!(
            self.upload(&full, data, true).await?,
            Upload::Written
        ))
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        self.read(key, None).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes> {
        let full = self.root.full_key(key)?;
        if range.start > range.end {
            return Err(StorageError::other(
                format!("GET gs://{}/{full}", self.bucket),
                format!("invalid range {range:?}"),
            ));
        }
        if range.is_empty() {
            // HTTP cannot ask for zero bytes; check existence and bounds.
            let size = match self.head(key).await? {
                Some(meta) => meta.size,
                None => return Err(StorageError::NotFound(key.to_string())),
            };
            if range.end > size {
                return Err(StorageError::other(
                    format!("GET gs://{}/{full}", self.bucket),
                    format!("range {range:?} is outside the object's {size} bytes"),
                ));
            }
            return Ok(Bytes::new());
        }
        self.read(key, Some(range)).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let full_prefix = self.root.join(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_page(&full_prefix, token.as_deref(), None, self.policy)
                .await
                .map_err(|e| match e {
                    StorageError::NotFound(bucket) => StorageError::other(
                        format!("LIST gs://{bucket}/{full_prefix}"),
                        "the bucket does not exist",
                    ),
                    other => other,
                })?;
            for item in page.items {
                let Some(key) = self.root.key_of(&item.name, &full_prefix) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: item.size.parse().unwrap_or(0),
                });
            }
            match page.next_page_token {
                None => break,
                Some(t) if t.is_empty() => break,
                // A server repeating a token would make us loop forever.
                Some(t) if token.as_deref() == Some(t.as_str()) => {
                    return Err(StorageError::other(
                        format!("LIST gs://{}/{full_prefix}", self.bucket),
                        "the server repeated its page token",
                    ))
                }
                Some(t) => token = Some(t),
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let full = self.root.full_key(key)?;
        let url = self.object_url(&full);
        let context = format!("DELETE gs://{}/{full}", self.bucket);
        self.call(
            self.policy,
            &context,
            || Request::delete(&url),
            &Bytes::new(),
            |a| match a.status {
                s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
                _ => Err(Box::new(a)),
            },
        )
        .await
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        let full = self.root.full_key(key)?;
        let url = format!("{}?fields=name,size", self.object_url(&full));
        let context = format!("HEAD gs://{}/{full}", self.bucket);
        let body = self
            .call(
                self.policy,
                &context,
                || Request::get(&url),
                &Bytes::new(),
                |a| match a.status {
                    StatusCode::OK => Ok(Some(a.body)),
                    StatusCode::NOT_FOUND => Ok(None),
                    _ => Err(Box::new(a)),
                },
            )
            .await?;
        let Some(body) = body else { return Ok(None) };
        let object: ObjectResource = serde_json::from_slice(&body).map_err(|e| {
            StorageError::other(context.clone(), format!("unreadable metadata: {e}"))
        })?;
        let size = object
            .size
            .parse()
            .map_err(|_| StorageError::other(context, format!("bad size {:?}", object.size)))?;
        Ok(Some(ObjectMeta {
            key: key.to_string(),
            size,
        }))
    }

    fn describe(&self) -> String {
        let root = self.root.as_str();
        let sep = if root.is_empty() { "" } else { "/" };
        format!("gs://{}{sep}{root} at {}", self.bucket, self.endpoint)
    }
}

/// The API base URL: the profile's endpoint, normalised, or Google's.
fn normalize_endpoint(endpoint: &str) -> anyhow::Result<String> {
    if endpoint.trim().is_empty() {
        return Ok(DEFAULT_ENDPOINT.to_string());
    }
    super::http::normalize_endpoint(endpoint, "GCS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_whole() {
        assert_eq!(escape("a/b c+d~e.f_g-h"), "a%2Fb%20c%2Bd~e.f_g-h");
        assert_eq!(normalize_endpoint("").unwrap(), DEFAULT_ENDPOINT);
        assert_eq!(
            normalize_endpoint("127.0.0.1:4443/").unwrap(),
            "https://127.0.0.1:4443"
        );
        assert!(normalize_endpoint("ftp://x").is_err());
    }
}
