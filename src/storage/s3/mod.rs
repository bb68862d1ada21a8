//! The S3 backend: a repository under a key prefix of one bucket, on AWS S3 or on any
//! S3-compatible server (Ceph RGW, s3s, moto, MinIO...), through aws-sdk-s3.
//!
//! What this layer adds to the SDK, and why:
//! - Requests are retried by the SDK's standard strategy, configured from the shared
//!   [`RetryPolicy`] (attempts, per-attempt timeout). A GET's *body* is streamed after the
//!   SDK has finished with the request, outside its retries, so body failures (reset,
//!   stall, short read) are retried here through the shared [`retry`] by re-issuing the GET.
//! - Lengths are checked ([`crate::storage::body`]): a short body or a wrong range is an
//!   error, never data.
//! - `put_if_absent` stays correct on servers that ignore `If-None-Match` (see there).
//! - With a custom endpoint we use path-style addressing and send no flexible checksums:
//!   many S3-compatible servers reject `aws-chunked` checksum trailers or store them
//!   verbatim. (Payload integrity is still covered by the SigV4 payload hash on servers that
//!   check signatures, and by the repository's own content hashes.)
//! - Nothing here ever formats a secret: errors carry S3 codes and messages, and the `Debug`
//!   of the configuration redacts keys.
//!
//! Files: `config` (what a location is), `connect` (credentials, region, the opening
//! probe), `errors` (classifying SDK errors), `multipart` (large objects), `tls`
//! (SkipSSLVerify for the SDK).

use std::fmt;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::body::{check_length, check_range, range_header};
use super::error::error_chain;
use super::keys::Root;
use super::retry::{backoff, retry, Failure, RetryPolicy};
use super::{probe_exclusive_create_with, ObjectMeta, Storage, StorageError, StorageResult};
use errors::{storage_error, ErrorInfo, PutOutcome};
use multipart::MULTIPART_THRESHOLD;

mod config;
mod connect;
mod errors;
mod multipart;
mod tls;

pub use config::{S3Config, S3Credentials, ServerSideEncryption};

/// A repository stored under a prefix of an S3 bucket.
#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    root: Root,
    /// The endpoint URL, or "AWS S3 (region)": for messages.
    location: String,
    policy: RetryPolicy,
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
        let context = self.context(op, full_key);
        storage_error(&info, context, key, true, self.policy.max_attempts)
    }

    /// Turns the SDK error of a write into a storage error. Never `NotFound`: a 404 here
    /// means a missing bucket or upload, not a missing object the caller could expect.
    fn write_error<E>(&self, op: &str, full_key: &str, e: SdkError<E, HttpResponse>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let info = ErrorInfo::of(&e);
        let context = self.context(op, full_key);
        storage_error(&info, context, full_key, false, self.policy.max_attempts)
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
        // One of our attempts contains the SDK's own attempts for the request, then the
        // body (bounded in read_once): give it room for both.
        let policy = RetryPolicy {
            attempt_timeout: self.policy.operation_timeout() + self.policy.attempt_timeout,
            ..self.policy
        };
        retry(policy, &self.context("GET", full), || {
            self.read_once(key, full, range.clone())
        })
        .await
    }

    async fn read_once(
        &self,
        key: &str,
        full: &str,
        range: Option<Range<u64>>,
    ) -> Result<Bytes, Failure> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(full);
        if let Some(r) = &range {
            request = request.range(range_header(r));
        }
        let out = request
            .send()
            .await
            .map_err(|e| Failure::Final(self.error("GET", key, full, e)))?;
        let content_length = out.content_length().filter(|n| *n >= 0).map(|n| n as u64);
        let content_range = out.content_range().map(str::to_string);
        // The SDK's attempt timeout does not cover the body: bound it here too, so that a
        // stalled transfer is retried instead of hanging.
        let timeout = self.policy.attempt_timeout;
        let body = match tokio::time::timeout(timeout, out.body.collect()).await {
            Err(_) => {
                return Err(Failure::Transient(
                    format!("reading the body took longer than {timeout:?}").into(),
                ))
            }
            Ok(Err(e)) => {
                return Err(Failure::Transient(
                    format!("reading the body failed: {}", error_chain(&e)).into(),
                ))
            }
            Ok(Ok(body)) => body.into_bytes(),
        };
        check_length(&body, content_length).map_err(|why| Failure::Transient(why.into()))?;
        match range {
            None => Ok(body),
            Some(r) => check_range(body, r, content_range.as_deref())
                .map_err(|why| StorageError::other(self.context("GET", full), why).into()),
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

    /// `If-None-Match: *` PUT (multipart when large); false when the server refused it.
    async fn create_exclusive(&self, key: &str, full: &str, data: Bytes) -> StorageResult<bool> {
        if data.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, full, data, true).await;
        }
        let mut attempt = 1;
        loop {
            match self.put_object(full, data.clone(), true).await? {
                PutOutcome::Written => return Ok(true),
                PutOutcome::Exists => return Ok(false),
                // 409 ConditionalRequestConflict: another conditional write to this key is
                // in flight. AWS advises retrying; the retry then gets 412 if that write won.
                // If the conflict persists, say "exists": callers re-read anyway.
                PutOutcome::Conflict if attempt >= self.policy.max_attempts => return Ok(false),
                PutOutcome::Conflict => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()> {
        let full = self.root.full_key(key)?;
        if data.len() > MULTIPART_THRESHOLD {
            self.put_multipart(key, &full, data, false).await?;
        } else {
            self.put_object(&full, data, false).await?;
        }
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool> {
        let full = self.root.full_key(key)?;
        // Some servers (rclone serve s3, Garage, s3s-fs) ignore If-None-Match and overwrite.
        // A HEAD first keeps the common case right there: an existing object is never
        // replaced. Two writers in the gap between HEAD and PUT can still both win; gc, whose
        // journal needs one winner, probes the server first (`probe_exclusive_create`).
        if self.head_full(key, &full).await?.is_some() {
            return Ok(false);
        }
        self.create_exclusive(key, &full, data).await
    }

    async fn probe_exclusive_create(&self, prefix: &str) -> StorageResult<bool> {
        // Past put_if_absent's HEAD: the question is whether the server itself refuses.
        probe_exclusive_create_with(self, prefix, |key, data| async move {
            let full = self.root.full_key(&key)?;
            self.create_exclusive(&key, &full, data).await
        })
        .await
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        let full = self.root.full_key(key)?;
        self.read(key, &full, None).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes> {
        let full = self.root.full_key(key)?;
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
        let full_prefix = self.root.join(prefix);
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
                .map_err(|e| self.write_error("LIST", &full_prefix, e))?;
            for object in page.contents() {
                // Servers backed by a filesystem may list directory markers ("a/"), and a
                // server may ignore the prefix: neither is an object of ours.
                let Some(key) = object.key().and_then(|k| self.root.key_of(k, &full_prefix)) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: key.to_string(),
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
        let full = self.root.full_key(key)?;
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
        let full = self.root.full_key(key)?;
        self.head_full(key, &full).await
    }

    fn describe(&self) -> String {
        if self.root.as_str().is_empty() {
            format!("s3://{} at {}", self.bucket, self.location)
        } else {
            format!(
                "s3://{}/{} at {}",
                self.bucket,
                self.root.as_str(),
                self.location
            )
        }
    }

    /// Aborts the multipart uploads under the root that started before `older_than`
    /// ago: a writer killed mid-upload leaves its parts behind, billed until aborted.
    async fn cleanup_incomplete(&self, older_than: Duration) -> StorageResult<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let prefix = self.root.join("");
        let mut aborted = 0;
        let (mut key_marker, mut upload_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(upload_marker.clone())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                // Servers without the call (s3s-fs) have no uploads to list either way.
                Err(e) if ErrorInfo::of(&e).status == Some(501) => {
                    tracing::debug!("ListMultipartUploads is not implemented here");
                    return Ok(aborted);
                }
                Err(e) => return Err(self.write_error("ListMultipartUploads", &prefix, e)),
            };
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let started = upload
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                if started > cutoff || self.root.key_of(key, &prefix).is_none() {
                    continue;
                }
                match self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                {
                    Ok(_) => aborted += 1,
                    // Completed or aborted by its writer meanwhile.
                    Err(e) if ErrorInfo::of(&e).status == Some(404) => {}
                    Err(e) => return Err(self.write_error("AbortMultipartUpload", key, e)),
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            let next = (
                page.next_key_marker().map(str::to_string),
                page.next_upload_id_marker().map(str::to_string),
            );
            // A server repeating its markers would make us loop forever.
            if next.0.is_none() || next == (key_marker.clone(), upload_marker.clone()) {
                break;
            }
            (key_marker, upload_marker) = next;
        }
        Ok(aborted)
    }
}
