//! Objects above [`MULTIPART_THRESHOLD`] go up in parts: bounded resends, and S3 refuses
//! single PUTs over 5 GiB. The upload is aborted on any failure, so no orphan parts are
//! left to be billed (and gc's `cleanup_incomplete` aborts those of killed writers).

use std::ops::Range;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::errors::ErrorInfo;
use super::S3Storage;
use crate::storage::{StorageError, StorageResult};

/// Objects above this size are uploaded in parts. Our packs (~16 MiB) stay below it.
pub(super) const MULTIPART_THRESHOLD: usize = 64 << 20;

/// Usual part size. S3 wants at least 5 MiB per part (except the last one).
const PART_SIZE: usize = 16 << 20;

/// S3's limit on the number of parts; huge objects get bigger parts to fit.
const MAX_PARTS: usize = 10_000;

/// Parts in flight at once for one object: enough to fill a link, few enough not to
/// trigger throttling.
const PART_CONCURRENCY: usize = 4;

impl S3Storage {
    /// Uploads `data` in parts. With `if_absent`, the completion carries
    /// `If-None-Match: *`. The upload is aborted on any failure, so no orphan parts are
    /// left to be billed.
    pub(super) async fn put_multipart(
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
