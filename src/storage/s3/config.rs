//! What an S3 location is: bucket, root, endpoint, credentials, server-side encryption.

use std::fmt;

use crate::storage::retry::RetryPolicy;

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
    /// Attempts and per-attempt timeout for retryable errors (5xx, throttling, connection
    /// errors, timeouts).
    pub retry: RetryPolicy,
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
            retry: RetryPolicy::default(),
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
            .field("retry", &self.retry)
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

/// The endpoint, normalised (see [`crate::storage::http::normalize_endpoint`]).
pub(super) fn normalize_endpoint(endpoint: &str) -> anyhow::Result<String> {
    crate::storage::http::normalize_endpoint(endpoint, "S3")
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
    fn endpoints_are_normalized() {
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
}
