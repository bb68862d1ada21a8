//! The S3 backend: a repository under a key prefix of one bucket, on AWS S3 or on any
//! S3-compatible server (MinIO, Ceph RGW, s3s, moto...), through aws-sdk-s3.
//!
//! What this layer guarantees on top of the SDK, and why:
//! - Every request is retried by the SDK's standard strategy (5xx, throttling, connection
//!   errors, timeouts; exponential backoff with jitter), and each attempt is bounded by
//!   [`S3Config::request_timeout`]. A GET's *body* is streamed after the SDK has finished
//!   with the request, outside its retries, so body failures (reset, stall, short read) are
//!   retried here by re-issuing the GET.
//! - Lengths are checked: a body shorter than its `Content-Length`, or a ranged read that
//!   returns a different number of bytes than asked for, is an error, never data.
//! - `put_if_absent` stays correct on servers that ignore `If-None-Match` (see there).
//! - With a custom endpoint we use path-style addressing and send no flexible checksums:
//!   many S3-compatible servers reject `aws-chunked` checksum trailers or store them
//!   verbatim. (Payload integrity is still covered by the SigV4 payload hash on servers that
//!   check signatures, and by the repository's own content hashes.)
//! - Nothing here ever formats a secret: errors carry S3 codes and messages, and the `Debug`
//!   of the configuration redacts keys.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};

use super::{ObjectMeta, Storage, StorageError, StorageResult};

/// Limit on establishing a TCP connection (and, with the SDK's own client, the TLS
/// handshake). Short on purpose: a connection that takes longer is nearly always a wrong
/// address or a firewall dropping packets, and the attempt is retried anyway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts for the validation requests of [`S3Storage::connect`]: a wrong endpoint or a
/// dead server must be reported in seconds, not after a long retry schedule.
const PROBE_ATTEMPTS: u32 = 3;

/// Objects above this size are uploaded in parts. Our packs (~16 MiB) stay below it; parts
/// bound what one failed attempt costs to resend, and S3 refuses single PUTs over 5 GiB.
const MULTIPART_THRESHOLD: usize = 64 << 20;

/// Usual part size. S3 wants at least 5 MiB per part (except the last one).
const PART_SIZE: usize = 16 << 20;

/// S3's limit on the number of parts; huge objects get bigger parts to fit.
const MAX_PARTS: usize = 10_000;

/// Parts in flight at once for one object: enough to fill a link, few enough not to
/// trigger throttling.
const PART_CONCURRENCY: usize = 4;

/// Ceiling of one backoff sleep, the same as the SDK's standard retry strategy.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// How to reach one repository in a bucket.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix of the repository inside the bucket, no leading or trailing '/'. May be empty.
    pub root: String,
    /// Custom endpoint (MinIO, RGW...): implies path-style addressing.
    pub endpoint: Option<String>,
    /// Region hint; the real region is discovered from the bucket (GetBucketLocation; empty constraint = us-east-1).
    pub region: Option<String>,
    /// Which credentials sign the requests.
    pub credentials: S3Credentials,
    /// Accept any TLS certificate (Kanister's SkipSSLVerify).
    pub skip_ssl_verify: bool,
    /// Per-attempt timeout; a stalled request is aborted and retried.
    pub request_timeout: Duration,
    /// Max attempts for retryable errors (5xx, throttling, connection errors, timeouts), exponential backoff with jitter.
    pub max_attempts: u32,
    /// Server-side encryption asked of every object written.
    pub sse: Option<ServerSideEncryption>,
}

/// Server-side encryption at rest, done by the S3 service (on top of, or instead of,
/// kando's client-side encryption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// SSE-S3: keys managed by the service (`AES256`).
    S3,
    /// SSE-KMS: keys in the service's KMS; `None` uses the bucket's default KMS key.
    Kms {
        /// KMS key id or ARN.
        key_id: Option<String>,
    },
}

impl S3Config {
    /// Default [`S3Config::request_timeout`]: long enough to send a 64 MiB object (the
    /// largest single PUT) over a slow link, short enough that a hung request is noticed.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

    /// Default [`S3Config::max_attempts`].
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    /// A configuration for `bucket` with the repository at the bucket's top level, AWS
    /// endpoints, certificate checks on, and the default timeout and attempts.
    pub fn new(bucket: impl Into<String>, credentials: S3Credentials) -> Self {
        S3Config {
            bucket: bucket.into(),
            root: String::new(),
            endpoint: None,
            region: None,
            credentials,
            skip_ssl_verify: false,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            sse: None,
        }
    }
}

// Written by hand so that secrets never reach a log line through `{:?}`.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("skip_ssl_verify", &self.skip_ssl_verify)
            .field("request_timeout", &self.request_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("sse", &self.sse)
            .finish()
    }
}

/// Where the credentials that sign requests come from.
#[derive(Clone)]
pub enum S3Credentials {
    /// Fixed keys, as in a Kanister profile's key pair.
    Static {
        /// Access key id (not secret: it names the key, and is shown by `Debug`).
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Session token of temporary credentials.
        session_token: Option<String>,
    },
    /// Static or default-chain base credentials, then sts:AssumeRole into role_arn.
    AssumeRole {
        /// Credentials allowed to assume the role.
        base: Box<S3Credentials>,
        /// ARN of the role to assume.
        role_arn: String,
    },
    /// The standard AWS chain: env vars, web identity (IRSA), profile, instance metadata.
    DefaultChain,
}

// Written by hand: the secret key and session token are redacted.
impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "<redacted>";
        match self {
            S3Credentials::Static {
                access_key_id,
                session_token,
                ..
            } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &REDACTED)
                .field("session_token", &session_token.as_ref().map(|_| REDACTED))
                .finish(),
            S3Credentials::AssumeRole { base, role_arn } => f
                .debug_struct("AssumeRole")
                .field("base", base)
                .field("role_arn", role_arn)
                .finish(),
            S3Credentials::DefaultChain => f.write_str("DefaultChain"),
        }
    }
}

/// A repository stored under a prefix of an S3 bucket.
#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// Normalized: no leading, trailing or doubled '/'; may be empty.
    root: String,
    /// The endpoint URL, or "AWS S3 (region)": for messages.
    location: String,
    request_timeout: Duration,
    max_attempts: u32,
    sse: Option<ServerSideEncryption>,
}

// Written by hand: the SDK client's own Debug prints its whole configuration.
impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Builds a client for `cfg`, finds the bucket's region and checks, with one listing
    /// under the root, that the bucket exists and the credentials may read it.
    ///
    /// Fails with a message naming the cause: a missing bucket, rejected credentials, or an
    /// endpoint that cannot be reached (within seconds, thanks to a short connect timeout
    /// and few attempts for these first requests).
    pub async fn connect(cfg: S3Config) -> anyhow::Result<S3Storage> {
        let bucket = cfg.bucket.trim().to_string();
        if bucket.is_empty() || bucket.contains('/') {
            bail!("invalid S3 bucket name {:?}", cfg.bucket);
        }
        let root = normalize_root(&cfg.root)?;
        let endpoint = cfg
            .endpoint
            .as_deref()
            .map(normalize_endpoint)
            .transpose()?;
        let max_attempts = cfg.max_attempts.max(1);
        let hint = cfg
            .region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("us-east-1")
            .to_string();

        // The shared settings (region, retries, timeouts, default credential chain) come
        // from aws-config so that DefaultChain and AssumeRole behave as in every AWS tool.
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(hint.clone()))
            .retry_config(retry_config(max_attempts))
            .timeout_config(timeout_config(cfg.request_timeout, max_attempts))
            .load()
            .await;
        let credentials = resolve_credentials(&cfg.credentials, &sdk).await?;
        let factory = ClientFactory {
            sdk,
            credentials,
            endpoint: endpoint.clone(),
            http_client: cfg
                .skip_ssl_verify
                .then(|| insecure_tls::http_client(CONNECT_TIMEOUT)),
            request_timeout: cfg.request_timeout,
        };
        let location = |region: &str| match &endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3 ({region})"),
        };
        let probe_attempts = PROBE_ATTEMPTS.min(max_attempts);

        // 1. Region discovery. Best effort: S3-compatible servers often do not implement
        // GetBucketLocation, and a policy may deny it while allowing everything we need.
        let mut region = hint;
        let probe = factory.client(&region, probe_attempts);
        match probe.get_bucket_location().bucket(&bucket).send().await {
            Ok(out) => {
                let constraint = out.location_constraint().map(|c| c.as_str()).unwrap_or("");
                region = region_of_constraint(constraint);
            }
            Err(e) => {
                let info = ErrorInfo::of(&e);
                if let Some(err) = decisive_connect_error(&info, &bucket, &location(&region)) {
                    return Err(err);
                }
                tracing::debug!(
                    bucket,
                    error = %info.describe(),
                    "GetBucketLocation failed; keeping region {region}"
                );
                if let Some(r) = info.bucket_region {
                    region = r;
                }
            }
        }

        // 2. Validation with the request the repository needs most: a listing under the
        // root. It needs exactly the permissions we need (a HeadBucket would also need
        // bucket-wide ListBucket). One redirect to the region S3 names is followed.
        let prefix = if root.is_empty() {
            String::new()
        } else {
            format!("{root}/")
        };
        let mut redirected = false;
        loop {
            let probe = factory.client(&region, probe_attempts);
            let listed = probe
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .max_keys(1)
                .send()
                .await;
            match listed {
                Ok(_) => break,
                Err(e) => {
                    let info = ErrorInfo::of(&e);
                    if !redirected {
                        if let Some(r) = info.bucket_region.clone().filter(|r| *r != region) {
                            tracing::debug!(bucket, "bucket is in region {r}, not {region}");
                            region = r;
                            redirected = true;
                            continue;
                        }
                    }
                    return Err(final_connect_error(&info, &bucket, &location(&region)));
                }
            }
        }

        tracing::debug!(bucket, root, region, "connected to S3");
        Ok(S3Storage {
            client: factory.client(&region, max_attempts),
            bucket,
            root,
            location: location(&region),
            request_timeout: cfg.request_timeout,
            max_attempts,
            sse: cfg.sse.clone(),
        })
    }

    /// The full object key of a repository key, after checking it: keys are '/'-separated,
    /// with no empty, "." or ".." component (same rule as the local backend, so that a
    /// repository can move between backends and never holds "//" keys).
    fn full_key(&self, key: &str) -> StorageResult<String> {
        if key.is_empty()
            || key
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(StorageError::other(
                format!("key {key:?}"),
                "invalid object key",
            ));
        }
        Ok(self.join(key))
    }

    /// `root/rest`, or `rest` when the root is empty.
    fn join(&self, rest: &str) -> String {
        if self.root.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{}", self.root, rest)
        }
    }

    /// "OP bucket/key": the context of an error.
    fn context(&self, op: &str, full_key: &str) -> String {
        format!("{op} {}/{full_key}", self.bucket)
    }

    /// Turns an SDK error into a storage error; 404s (other than a missing bucket) become
    /// [`StorageError::NotFound`] with the repository-relative key.
    fn error<E>(
        &self,
        op: &str,
        key: &str,
        full_key: &str,
        e: SdkError<E, HttpResponse>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let info = ErrorInfo::of(&e);
        if info.is_not_found() {
            StorageError::NotFound(key.to_string())
        } else {
            StorageError::other(self.context(op, full_key), info.describe())
        }
    }

    /// Turns the SDK error of a write into a storage error. Never `NotFound`: a 404 here
    /// means a missing bucket or upload, not a missing object the caller could expect.
    fn write_error<E>(&self, op: &str, full_key: &str, e: SdkError<E, HttpResponse>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        StorageError::other(self.context(op, full_key), ErrorInfo::of(&e).describe())
    }

    /// Backoff before our own retry number `attempt` (1-based): exponential, capped, with
    /// full jitter so that parallel readers do not retry in lockstep.
    fn backoff(attempt: u32) -> Duration {
        let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(16));
        base.min(MAX_BACKOFF).mul_f64(rand::random::<f64>())
    }

    async fn head_full(&self, key: &str, full: &str) -> StorageResult<Option<ObjectMeta>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
            })),
            Err(e) => match self.error("HEAD", key, full, e) {
                StorageError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// A whole object or a range of it, re-issuing the GET when the body fails or comes
    /// back short (the SDK only retries until the response headers arrive).
    async fn read(&self, key: &str, full: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        let mut attempt = 1;
        loop {
            match self.read_once(key, full, range.clone()).await {
                Ok(data) => return Ok(data),
                Err(ReadFailure::Final(e)) => return Err(e),
                Err(ReadFailure::Retryable(why)) => {
                    if attempt >= self.max_attempts {
                        return Err(StorageError::other(
                            self.context("GET", full),
                            format!("{why} (gave up after {attempt} attempts)"),
                        ));
                    }
                    tracing::warn!(
                        bucket = self.bucket,
                        key = full,
                        attempt,
                        "GET failed, retrying: {why}"
                    );
                    tokio::time::sleep(Self::backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn read_once(
        &self,
        key: &str,
        full: &str,
        range: Option<Range<u64>>,
    ) -> Result<Bytes, ReadFailure> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(full);
        if let Some(r) = &range {
            request = request.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = request
            .send()
            .await
            .map_err(|e| ReadFailure::Final(self.error("GET", key, full, e)))?;
        let content_length = out.content_length();
        let content_range = out.content_range().map(str::to_string);
        // The attempt timeout does not cover the body: bound it here too, so that a stalled
        // transfer is retried instead of hanging.
        let body = match tokio::time::timeout(self.request_timeout, out.body.collect()).await {
            Err(_) => {
                return Err(ReadFailure::Retryable(format!(
                    "reading the body took longer than {:?}",
                    self.request_timeout
                )))
            }
            Ok(Err(e)) => {
                return Err(ReadFailure::Retryable(format!(
                    "reading the body failed: {}",
                    error_chain(&e)
                )))
            }
            Ok(Ok(body)) => body.into_bytes(),
        };
        if let Some(expected) = content_length.filter(|n| *n >= 0) {
            if body.len() as u64 != expected as u64 {
                return Err(ReadFailure::Retryable(format!(
                    "truncated body: received {} of {expected} bytes",
                    body.len()
                )));
            }
        }
        match range {
            None => Ok(body),
            Some(r) => check_range(body, r, content_range.as_deref()).map_err(|why| {
                ReadFailure::Final(StorageError::other(self.context("GET", full), why))
            }),
        }
    }

    /// The `x-amz-server-side-encryption` of every write.
    fn sse_mode(&self) -> Option<aws_sdk_s3::types::ServerSideEncryption> {
        use aws_sdk_s3::types::ServerSideEncryption as Mode;
        self.sse.as_ref().map(|sse| match sse {
            ServerSideEncryption::S3 => Mode::Aes256,
            ServerSideEncryption::Kms { .. } => Mode::AwsKms,
        })
    }

    /// The KMS key of every write, when one was named.
    fn sse_key_id(&self) -> Option<String> {
        match &self.sse {
            Some(ServerSideEncryption::Kms { key_id }) => key_id.clone(),
            _ => None,
        }
    }

    /// One PUT; with `if_absent` it carries `If-None-Match: *` and a refusal is an
    /// outcome, not an error.
    async fn put_object(
        &self,
        full: &str,
        data: Bytes,
        if_absent: bool,
    ) -> StorageResult<PutOutcome> {
        let len = data.len();
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(full)
            .content_length(len as i64)
            .body(ByteStream::from(data))
            .set_server_side_encryption(self.sse_mode())
            .set_ssekms_key_id(self.sse_key_id());
        if if_absent {
            request = request.if_none_match("*");
        }
        match request.send().await {
            Ok(_) => Ok(PutOutcome::Written),
            Err(e) => match ErrorInfo::of(&e).precondition() {
                Some(outcome) if if_absent => Ok(outcome),
                _ => Err(self.write_error("PUT", full, e)),
            },
        }
    }

    /// Uploads `data` in parts. With `if_absent`, the completion carries
    /// `If-None-Match: *`. The upload is aborted on any failure, so no orphan parts are
    /// left to be billed.
    async fn put_multipart(
        &self,
        key: &str,
        full: &str,
        data: Bytes,
        if_absent: bool,
    ) -> StorageResult<bool> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .set_server_side_encryption(self.sse_mode())
            .set_ssekms_key_id(self.sse_key_id())
            .send()
            .await
            .map_err(|e| self.write_error("CreateMultipartUpload", full, e))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            StorageError::other(
                self.context("CreateMultipartUpload", full),
                "the server returned no upload id",
            )
        })?;
        let result = self
            .upload_parts_and_complete(key, full, upload_id, data, if_absent)
            .await;
        if !matches!(result, Ok(true)) {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(
                    bucket = self.bucket,
                    key = full,
                    "could not abort multipart upload {upload_id}: {}",
                    ErrorInfo::of(&e).describe()
                );
            }
        }
        result
    }

    async fn upload_parts_and_complete(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        data: Bytes,
        if_absent: bool,
    ) -> StorageResult<bool> {
        let len = data.len();
        let part_size = PART_SIZE.max(len.div_ceil(MAX_PARTS));
        let ranges: Vec<(i32, Range<usize>)> = (0..len)
            .step_by(part_size)
            .enumerate()
            .map(|(i, start)| (i as i32 + 1, start..(start + part_size).min(len)))
            .collect();
        let mut parts: Vec<CompletedPart> = futures::stream::iter(ranges)
            .map(|(number, r)| {
                let body = data.slice(r);
                async move {
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(full)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(body.len() as i64)
                        .body(ByteStream::from(body))
                        .send()
                        .await
                        .map_err(|e| {
                            self.write_error(&format!("UploadPart {number} of"), full, e)
                        })?;
                    let etag = out.e_tag().ok_or_else(|| {
                        StorageError::other(
                            self.context(&format!("UploadPart {number} of"), full),
                            "the server returned no ETag",
                        )
                    })?;
                    Ok::<_, StorageError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .e_tag(etag)
                            .build(),
                    )
                }
            })
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        let mut request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if if_absent {
            request = request.if_none_match("*");
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let info = ErrorInfo::of(&e);
                match info.precondition() {
                    // A conflict (409) is reported as "exists" here: retrying would need the
                    // parts again, and the caller re-reads the object anyway.
                    Some(_) if if_absent => return Ok(false),
                    _ => {}
                }
                if info.status == Some(200) && info.code.is_none() {
                    // HTTP 200 completes the upload, but the SDK could not parse the answer
                    // (moto 5 names its root element CompleteMultipartUploadResponse).
                    // Believe it only if the object is now there with the right size.
                    if let Some(meta) = self.head_full(key, full).await? {
                        if meta.size == len as u64 {
                            return Ok(true);
                        }
                    }
                }
                Err(self.write_error("CompleteMultipartUpload", full, e))
            }
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()> {
        let full = self.full_key(key)?;
        if data.len() > MULTIPART_THRESHOLD {
            self.put_multipart(key, &full, data, false).await?;
        } else {
            self.put_object(&full, data, false).await?;
        }
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool> {
        let full = self.full_key(key)?;
        // Some servers (rclone serve s3, Garage) ignore If-None-Match and overwrite. A HEAD
        // first keeps us correct there in the common case: an existing object is never
        // replaced. The residual race — two writers both see "absent" between HEAD and PUT
        // on such a server — cannot be closed without server support; the repository layer
        // re-reads the object after writing and goes with whichever version is there.
        if self.head_full(key, &full).await?.is_some() {
            return Ok(false);
        }
        if data.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, &full, data, true).await;
        }
        let mut attempt = 1;
        loop {
            match self.put_object(&full, data.clone(), true).await? {
                PutOutcome::Written => return Ok(true),
                PutOutcome::Exists => return Ok(false),
                // 409 ConditionalRequestConflict: another conditional write to this key is
                // in flight. AWS advises retrying; the retry then gets 412 if that write won.
                // If the conflict persists, say "exists": the caller re-reads anyway.
                PutOutcome::Conflict if attempt >= self.max_attempts => return Ok(false),
                PutOutcome::Conflict => {
                    tokio::time::sleep(Self::backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        let full = self.full_key(key)?;
        self.read(key, &full, None).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes> {
        let full = self.full_key(key)?;
        if range.start > range.end {
            return Err(StorageError::other(
                self.context("GET", &full),
                format!("invalid range {range:?}"),
            ));
        }
        if range.is_empty() {
            // HTTP cannot ask for zero bytes; check existence and bounds with a HEAD.
            let size = match self.head_full(key, &full).await? {
                Some(meta) => meta.size,
                None => return Err(StorageError::NotFound(key.to_string())),
            };
            if range.end > size {
                return Err(StorageError::other(
                    self.context("GET", &full),
                    format!("range {range:?} is outside the object's {size} bytes"),
                ));
            }
            return Ok(Bytes::new());
        }
        self.read(key, &full, Some(range)).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let full_prefix = self.join(prefix);
        let strip = if self.root.is_empty() {
            0
        } else {
            self.root.len() + 1
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    StorageError::other(
                        self.context("LIST", &full_prefix),
                        ErrorInfo::of(&e).describe(),
                    )
                })?;
            for object in page.contents() {
                let Some(k) = object.key() else { continue };
                // Servers backed by a filesystem may list directory markers ("a/"); they
                // are not objects of ours. The prefix check guards against a server that
                // ignores the prefix parameter.
                if !k.starts_with(&full_prefix) || k.ends_with('/') || k.len() <= strip {
                    continue;
                }
                out.push(ObjectMeta {
                    key: k[strip..].to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            match page.next_continuation_token() {
                // A server repeating a token would make us loop forever.
                Some(next) if token.as_deref() != Some(next) => token = Some(next.to_string()),
                _ => {
                    return Err(StorageError::other(
                        self.context("LIST", &full_prefix),
                        "the server reported a truncated listing without a new continuation token",
                    ))
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let full = self.full_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.error("DELETE", key, &full, e) {
                StorageError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        let full = self.full_key(key)?;
        self.head_full(key, &full).await
    }

    fn describe(&self) -> String {
        if self.root.is_empty() {
            format!("s3://{} at {}", self.bucket, self.location)
        } else {
            format!("s3://{}/{} at {}", self.bucket, self.root, self.location)
        }
    }
}

/// What a PUT did.
enum PutOutcome {
    /// The object was stored.
    Written,
    /// 412 to `If-None-Match: *`: the object exists and was left alone.
    Exists,
    /// 409 ConditionalRequestConflict: another conditional write is in flight.
    Conflict,
}

/// A failed read attempt: retry it, or give up at once.
enum ReadFailure {
    /// The GET itself failed after the SDK's retries, or the answer is wrong for good.
    Final(StorageError),
    /// The body broke off or came back short: worth another GET.
    Retryable(String),
}

/// Checks the bytes a ranged GET returned. Returns the requested bytes or why not.
fn check_range(body: Bytes, r: Range<u64>, content_range: Option<&str>) -> Result<Bytes, String> {
    let want = r.end - r.start;
    let parsed = content_range.and_then(parse_content_range);
    if body.len() as u64 == want {
        if let Some((start, _, _)) = parsed {
            if start != r.start {
                return Err(format!(
                    "asked for bytes {}-{}, the server sent {}",
                    r.start,
                    r.end - 1,
                    content_range.unwrap_or_default()
                ));
            }
        }
        // Without Content-Range a body of exactly the asked length is the range: a server
        // that ignored Range would send the whole object, which is longer whenever start > 0.
        return Ok(body);
    }
    match (content_range, parsed) {
        (None, _) => {
            // The server ignored Range and sent the whole object (HTTP 200).
            if r.end <= body.len() as u64 {
                Ok(body.slice(r.start as usize..r.end as usize))
            } else {
                Err(format!(
                    "range {r:?} is outside the object's {} bytes",
                    body.len()
                ))
            }
        }
        (Some(_), Some((_, _, Some(total)))) if r.end > total => {
            Err(format!("range {r:?} is outside the object's {total} bytes"))
        }
        (Some(cr), _) => Err(format!(
            "asked for {want} bytes at {}, received {} (Content-Range: {cr})",
            r.start,
            body.len()
        )),
    }
}

/// Parses "bytes START-END/TOTAL" (TOTAL may be "*").
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

/// Region of a GetBucketLocation answer: empty is us-east-1 and "EU" is the legacy name
/// of eu-west-1.
fn region_of_constraint(constraint: &str) -> String {
    match constraint {
        "" => "us-east-1".to_string(),
        "EU" => "eu-west-1".to_string(),
        other => other.to_string(),
    }
}

/// Collapses the root to "a/b" form: no leading, trailing or doubled slashes.
fn normalize_root(root: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = root.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") {
        bail!("invalid repository prefix {root:?}: '.' and '..' are not allowed");
    }
    Ok(parts.join("/"))
}

/// Adds https:// to a bare host[:port] (as some profiles carry) and drops a trailing '/'.
fn normalize_endpoint(endpoint: &str) -> anyhow::Result<String> {
    let e = endpoint.trim().trim_end_matches('/');
    if e.is_empty() {
        bail!("empty S3 endpoint");
    }
    let e = if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    };
    let uri: http::Uri = e
        .parse()
        .map_err(|err| anyhow!("invalid S3 endpoint {e:?}: {err}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        bail!("invalid S3 endpoint {e:?}: expected http(s)://host[:port]");
    }
    Ok(e)
}

fn retry_config(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(max_attempts)
}

/// Connect timeout, per-attempt timeout, and an operation timeout that leaves room for
/// every attempt plus the longest backoffs: only a genuinely stuck operation hits it.
fn timeout_config(attempt: Duration, max_attempts: u32) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(
            attempt.saturating_mul(max_attempts) + MAX_BACKOFF.saturating_mul(max_attempts - 1),
        )
        .build()
}

/// Turns the profile's credentials into a provider. Recursive for AssumeRole's base.
fn resolve_credentials<'a>(
    creds: &'a S3Credentials,
    sdk: &'a SdkConfig,
) -> BoxFuture<'a, anyhow::Result<SharedCredentialsProvider>> {
    Box::pin(async move {
        match creds {
            S3Credentials::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                if access_key_id.is_empty() || secret_access_key.is_empty() {
                    bail!("the S3 access key id or secret key is empty: check the profile's credentials");
                }
                Ok(SharedCredentialsProvider::new(Credentials::new(
                    access_key_id,
                    secret_access_key,
                    session_token.clone().filter(|t| !t.is_empty()),
                    None,
                    "kando-profile",
                )))
            }
            S3Credentials::DefaultChain => sdk
                .credentials_provider()
                .ok_or_else(|| anyhow!("no AWS credentials chain is available in this build")),
            S3Credentials::AssumeRole { base, role_arn } => {
                let base = resolve_credentials(base, sdk).await?;
                // STS is reached at AWS (regional endpoint of the region hint), never at a
                // custom S3 endpoint: that is where roles live. The provider caches the
                // temporary credentials and renews them before they expire.
                let provider = AssumeRoleProvider::builder(role_arn)
                    .session_name("kando")
                    .configure(sdk)
                    .build_from_provider(base)
                    .await;
                Ok(SharedCredentialsProvider::new(provider))
            }
        }
    })
}

/// Builds S3 clients that share credentials, HTTP client and connection pool, and differ
/// in region and attempts (connect() probes with few attempts, then maybe another region).
struct ClientFactory {
    sdk: SdkConfig,
    credentials: SharedCredentialsProvider,
    endpoint: Option<String>,
    http_client: Option<SharedHttpClient>,
    request_timeout: Duration,
}

impl ClientFactory {
    fn client(&self, region: &str, attempts: u32) -> Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_string()))
            .credentials_provider(self.credentials.clone())
            .retry_config(retry_config(attempts))
            .timeout_config(timeout_config(self.request_timeout, attempts));
        // The profile is the only source of the endpoint: clear any AWS_ENDPOINT_URL* that
        // aws-config picked up from the environment.
        b.set_endpoint_url(self.endpoint.clone());
        if self.endpoint.is_some() {
            b = b
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        if let Some(http) = &self.http_client {
            b = b.http_client(http.clone());
        }
        Client::from_conf(b.build())
    }
}

/// The parts of an SDK error we branch on or print.
struct ErrorInfo {
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    /// `x-amz-bucket-region` of the response: where S3 says the bucket lives.
    bucket_region: Option<String>,
    /// The request never got an answer: connection refused or reset, DNS, timeout.
    unreachable: bool,
    /// The whole error chain, for errors without an S3 code.
    text: String,
}

impl ErrorInfo {
    fn of<E>(e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let raw = e.raw_response();
        let unreachable = match e {
            SdkError::TimeoutError(_) => true,
            SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout(),
            _ => false,
        };
        ErrorInfo {
            status: raw.map(|r| r.status().as_u16()),
            // RGW sends empty <Message/> elements: treat them as absent.
            code: e.code().filter(|c| !c.is_empty()).map(str::to_string),
            message: e.message().filter(|m| !m.is_empty()).map(str::to_string),
            bucket_region: raw
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string)
                .filter(|r| !r.is_empty()),
            unreachable,
            text: error_chain(e),
        }
    }

    /// "HTTP 404 NoSuchKey: The specified key does not exist." or the error chain.
    fn describe(&self) -> String {
        match (self.status, &self.code, &self.message) {
            (Some(s), Some(c), Some(m)) => format!("HTTP {s} {c}: {m}"),
            (Some(s), Some(c), None) => format!("HTTP {s} {c}"),
            (Some(s), None, _) => format!("HTTP {s}: {}", self.text),
            (None, _, _) => self.text.clone(),
        }
    }

    fn is_not_found(&self) -> bool {
        let code = self.code.as_deref();
        code == Some("NoSuchKey") || (self.status == Some(404) && code != Some("NoSuchBucket"))
    }

    /// How the server refused a conditional write, if that is what this error is.
    fn precondition(&self) -> Option<PutOutcome> {
        match (self.status, self.code.as_deref()) {
            (Some(412), _) | (_, Some("PreconditionFailed")) => Some(PutOutcome::Exists),
            (_, Some("ConditionalRequestConflict")) => Some(PutOutcome::Conflict),
            _ => None,
        }
    }

    fn is_credentials_error(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "NotSignedUp"
                    | "InvalidClientTokenId"
                    | "InvalidToken"
                    | "ExpiredToken"
                    | "TokenRefreshRequired"
                    | "InvalidSecurity"
            )
        )
    }
}

/// "outer: cause: root cause", skipping a message its predecessor already contains.
/// (The SDK's `DisplayErrorContext` appends the whole `Debug` of the error, raw response
/// included: far too much for a message a person reads.)
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let s = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The error connect() reports for a probe failure that settles the matter, or `None`
/// when it does not (GetBucketLocation may be unimplemented, or denied by a policy that
/// allows everything the repository needs).
fn decisive_connect_error(info: &ErrorInfo, bucket: &str, location: &str) -> Option<anyhow::Error> {
    let what = info.describe();
    if info.status.is_none() && what.to_ascii_lowercase().contains("credential") {
        // Loading credentials failed before any request went out (empty default chain,
        // STS unreachable or refusing the role...).
        return Some(anyhow!(
            "could not obtain S3 credentials for bucket {bucket} ({what}): check the profile's credentials"
        ));
    }
    if info.status.is_none() && what.contains("certificate") {
        return Some(anyhow!(
            "TLS connection to {location} failed: {what} (SkipSSLVerify in the profile accepts any certificate)"
        ));
    }
    if info.unreachable {
        return Some(anyhow!("cannot reach the S3 endpoint {location}: {what}"));
    }
    if info.code.as_deref() == Some("NoSuchBucket") {
        return Some(anyhow!("bucket {bucket} does not exist at {location}"));
    }
    if info.is_credentials_error() {
        return Some(access_denied(bucket, location, &what));
    }
    None
}

/// The error connect() reports when its final probe, the listing, fails.
fn final_connect_error(info: &ErrorInfo, bucket: &str, location: &str) -> anyhow::Error {
    if let Some(e) = decisive_connect_error(info, bucket, location) {
        return e;
    }
    let what = info.describe();
    match info.status {
        Some(403) => access_denied(bucket, location, &what),
        Some(404) => anyhow!("bucket {bucket} does not exist at {location} ({what})"),
        _ => anyhow!("cannot use bucket {bucket} at {location}: {what}"),
    }
}

fn access_denied(bucket: &str, location: &str, what: &str) -> anyhow::Error {
    anyhow!(
        "access denied to bucket {bucket} at {location} ({what}): check the profile's credentials"
    )
}

/// An HTTP client for the SDK that accepts any server certificate (SkipSSLVerify).
///
/// aws-smithy-http-client builds its rustls configuration internally and offers no way to
/// install a custom certificate verifier (only extra trusted roots or server names, and a
/// custom crypto provider behind an unstable cfg). So this module plugs its own connector
/// into the SDK's `HttpClient` trait, built from the same crates the SDK already uses
/// (hyper 1, hyper-util's pooled client, hyper-rustls, rustls with aws-lc-rs): no second
/// HTTP stack. It is only used when SkipSSLVerify is set.
mod insecure_tls {
    use super::*;

    use aws_sdk_s3::config::http::HttpRequest;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::retry::ErrorKind;
    use hyper_rustls::HttpsConnector;
    use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// The SDK's HTTP client for SkipSSLVerify.
    pub(super) fn http_client(connect_timeout: Duration) -> SharedHttpClient {
        SharedHttpClient::new(InsecureClient {
            default_connect_timeout: connect_timeout,
            connectors: Mutex::new(HashMap::new()),
        })
    }

    /// Accepts any certificate chain and name, but still checks the handshake signatures
    /// (the peer must hold the key of the certificate it shows; TLS itself stays sound).
    #[derive(Debug)]
    struct AcceptAnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// Hands the SDK one pooled connector per connect timeout, as its own client does
    /// (the SDK asks for a connector on every attempt; building one each time would lose
    /// the connection pool).
    #[derive(Debug)]
    struct InsecureClient {
        default_connect_timeout: Duration,
        connectors: Mutex<HashMap<Duration, SharedHttpConnector>>,
    }

    impl HttpClient for InsecureClient {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            let timeout = settings
                .connect_timeout()
                .unwrap_or(self.default_connect_timeout);
            self.connectors
                .lock()
                .expect("connector cache lock")
                .entry(timeout)
                .or_insert_with(|| SharedHttpConnector::new(InsecureConnector::new(timeout)))
                .clone()
        }
    }

    struct InsecureConnector {
        client: hyper_util::client::legacy::Client<HttpsConnector<TcpConnector>, SdkBody>,
    }

    impl fmt::Debug for InsecureConnector {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("InsecureConnector")
        }
    }

    impl InsecureConnector {
        fn new(connect_timeout: Duration) -> Self {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the aws-lc-rs provider supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth();
            let mut tcp = TcpConnector::new();
            tcp.enforce_http(false); // the TLS layer handles https:// URIs
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(Some(connect_timeout));
            // HTTP/1.1 only: it is what S3 and S3-compatible servers speak.
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp);
            let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .build(https);
            InsecureConnector { client }
        }
    }

    impl HttpConnector for InsecureConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let request = match request.try_into_http1x() {
                Ok(r) => r,
                Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
            };
            let response = self.client.request(request);
            HttpConnectorFuture::new(async move {
                match response.await {
                    Ok(r) => HttpResponse::try_from(r.map(SdkBody::from_body_1_x))
                        .map_err(|e| ConnectorError::other(e.into(), None)),
                    Err(e) => Err(classify(e)),
                }
            })
        }
    }

    /// Classifies a transport failure the way the SDK's own client does, so that the retry
    /// strategy retries the same things: connect and I/O errors and timeouts are transient.
    fn classify(e: hyper_util::client::legacy::Error) -> ConnectorError {
        let hyper_error = find_source::<hyper::Error>(&e);
        if hyper_error.is_some_and(|h| h.is_timeout()) {
            return ConnectorError::timeout(e.into());
        }
        if hyper_error.is_some_and(|h| h.is_user()) {
            return ConnectorError::user(e.into());
        }
        if hyper_error.is_some_and(|h| h.is_incomplete_message()) {
            return ConnectorError::other(e.into(), Some(ErrorKind::TransientError));
        }
        if e.is_connect()
            || hyper_error.is_some_and(|h| h.is_closed() || h.is_canceled())
            || find_source::<std::io::Error>(&e).is_some()
        {
            return ConnectorError::io(e.into());
        }
        ConnectorError::other(e.into(), None)
    }

    fn find_source<'a, E: std::error::Error + 'static>(
        e: &'a (dyn std::error::Error + 'static),
    ) -> Option<&'a E> {
        let mut next = Some(e);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let cfg = S3Config::new(
            "b",
            S3Credentials::AssumeRole {
                base: Box::new(S3Credentials::Static {
                    access_key_id: "AKIDEXAMPLE".into(),
                    secret_access_key: "wJalrXUtnFEMI-SECRET".into(),
                    session_token: Some("TOKEN-SECRET".into()),
                }),
                role_arn: "arn:aws:iam::1:role/r".into(),
            },
        );
        let s = format!("{cfg:?}");
        assert!(
            s.contains("AKIDEXAMPLE") && s.contains("arn:aws:iam::1:role/r"),
            "{s}"
        );
        assert!(!s.contains("SECRET"), "{s}");
    }

    #[test]
    fn roots_and_endpoints_are_normalized() {
        assert_eq!(normalize_root("").unwrap(), "");
        assert_eq!(normalize_root("/a//b/").unwrap(), "a/b");
        assert!(normalize_root("a/../b").is_err());
        assert_eq!(
            normalize_endpoint("minio:9000/").unwrap(),
            "https://minio:9000"
        );
        assert_eq!(
            normalize_endpoint("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert!(normalize_endpoint("ftp://x").is_err());
    }

    #[test]
    fn location_constraints() {
        assert_eq!(region_of_constraint(""), "us-east-1");
        assert_eq!(region_of_constraint("EU"), "eu-west-1");
        assert_eq!(region_of_constraint("ap-south-1"), "ap-south-1");
    }

    #[test]
    fn ranged_answers_are_checked() {
        let whole = Bytes::from_static(b"0123456789");
        // Proper 206.
        let got = check_range(Bytes::from_static(b"234"), 2..5, Some("bytes 2-4/10")).unwrap();
        assert_eq!(&got[..], b"234");
        // Range ignored: whole object, sliced.
        assert_eq!(&check_range(whole.clone(), 2..5, None).unwrap()[..], b"234");
        // Short answer at the end of the object.
        let e = check_range(Bytes::from_static(b"89"), 8..11, Some("bytes 8-9/10")).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        // Truncated answer in the middle.
        assert!(check_range(Bytes::from_static(b"2"), 2..5, Some("bytes 2-4/10")).is_err());
        // Wrong offset.
        assert!(check_range(Bytes::from_static(b"345"), 2..5, Some("bytes 3-5/10")).is_err());
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
    }
}
