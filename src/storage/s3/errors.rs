//! What an S3 error says: status, code, message, and how the backend classifies it.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::storage::error::error_chain;
use crate::storage::StorageError;

/// What a PUT did.
pub(super) enum PutOutcome {
    /// The object was stored.
    Written,
    /// 412 to `If-None-Match: *`: the object exists and was left alone.
    Exists,
    /// 409 ConditionalRequestConflict: another conditional write is in flight.
    Conflict,
}

/// The parts of an SDK error we branch on or print.
pub(super) struct ErrorInfo {
    pub(super) status: Option<u16>,
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
    /// `x-amz-bucket-region` of the response: where S3 says the bucket lives.
    pub(super) bucket_region: Option<String>,
    /// The request never got an answer: connection refused or reset, DNS, timeout.
    pub(super) unreachable: bool,
    /// The whole error chain, for errors without an S3 code.
    pub(super) text: String,
}

impl ErrorInfo {
    pub(super) fn of<E>(e: &SdkError<E, HttpResponse>) -> Self
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
    pub(super) fn describe(&self) -> String {
        match (self.status, &self.code, &self.message) {
            (Some(s), Some(c), Some(m)) => format!("HTTP {s} {c}: {m}"),
            (Some(s), Some(c), None) => format!("HTTP {s} {c}"),
            (Some(s), None, _) => format!("HTTP {s}: {}", self.text),
            (None, _, _) => self.text.clone(),
        }
    }

    pub(super) fn is_not_found(&self) -> bool {
        let code = self.code.as_deref();
        code == Some("NoSuchKey") || (self.status == Some(404) && code != Some("NoSuchBucket"))
    }

    /// How the server refused a conditional write, if that is what this error is.
    pub(super) fn precondition(&self) -> Option<PutOutcome> {
        match (self.status, self.code.as_deref()) {
            (Some(412), _) | (_, Some("PreconditionFailed")) => Some(PutOutcome::Exists),
            (_, Some("ConditionalRequestConflict")) => Some(PutOutcome::Conflict),
            _ => None,
        }
    }

    pub(super) fn is_credentials_error(&self) -> bool {
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

/// The storage error of a failed request on `key` (repository-relative) after the SDK's
/// retries: 404s (other than a missing bucket) are [`StorageError::NotFound`] where
/// `not_found_is_absence`, refusals are [`StorageError::PermissionDenied`], transport
/// failures and 5xx that outlasted every attempt are [`StorageError::Unavailable`].
pub(super) fn storage_error(
    info: &ErrorInfo,
    context: String,
    key: &str,
    not_found_is_absence: bool,
    attempts: u32,
) -> StorageError {
    if not_found_is_absence && info.is_not_found() {
        return StorageError::NotFound(key.to_string());
    }
    let source = info.describe().into();
    if info.status == Some(403) || info.is_credentials_error() {
        StorageError::PermissionDenied { context, source }
    } else if info.unreachable || info.status.is_some_and(|s| s >= 500 && s != 501) {
        StorageError::Unavailable {
            context,
            attempts,
            source,
        }
    } else {
        StorageError::Other { context, source }
    }
}
