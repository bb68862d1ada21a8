//! Profile → S3 backend: maps Kanister's s3Compliant location and credentials onto
//! [`S3Config`].

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::compat::profile::{Credential, Profile};
use crate::storage::retry::RetryPolicy;
use crate::storage::s3::{S3Config, S3Credentials, S3Storage, ServerSideEncryption};
use crate::storage::DynStorage;

/// Builds the S3 configuration for the repository at `root` in the profile's bucket.
pub fn config(
    profile: &Profile,
    root: &str,
    sse: Option<ServerSideEncryption>,
) -> Result<S3Config> {
    let loc = &profile.location;
    if loc.bucket.is_empty() {
        bail!("the s3Compliant Location has no bucket");
    }
    let credentials = match &profile.credential {
        Credential::None => S3Credentials::DefaultChain,
        Credential::KeyPair { id, secret } if id.is_empty() || secret.is_empty() => {
            bail!("profile: KeyPair needs both ID and Secret")
        }
        Credential::KeyPair { id, secret } => S3Credentials::Static {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
        },
        Credential::AwsSecret { id, secret, role } => {
            let base = S3Credentials::Static {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: None,
            };
            match role {
                Some(role_arn) => S3Credentials::AssumeRole {
                    base: Box::new(base),
                    role_arn: role_arn.clone(),
                },
                None => base,
            }
        }
        Credential::AzureSecret { .. } => {
            bail!("profile: a secrets.kanister.io/azure Secret cannot sign requests to an s3Compliant location")
        }
    };
    let mut cfg = S3Config::new(loc.bucket.clone(), credentials);
    cfg.root = root.to_string();
    cfg.endpoint = Some(loc.endpoint.clone()).filter(|e| !e.is_empty());
    cfg.region = Some(loc.region.clone()).filter(|r| !r.is_empty());
    cfg.skip_ssl_verify = profile.skip_ssl_verify;
    cfg.sse = sse;
    cfg.retry = retry_policy()?;
    Ok(cfg)
}

/// The retry policy of every object-store backend: the defaults, with the per-attempt
/// timeout from `KANDO_S3_REQUEST_TIMEOUT` when set (named when S3 was the only one).
pub fn retry_policy() -> Result<RetryPolicy> {
    let mut policy = RetryPolicy::default();
    if let Some(v) = std::env::var_os("KANDO_S3_REQUEST_TIMEOUT") {
        policy.attempt_timeout = request_timeout(&v.to_string_lossy())?;
    }
    Ok(policy)
}

/// `KANDO_S3_REQUEST_TIMEOUT`: whole seconds from 1 to a day; anything else is an error
/// rather than silently the default.
fn request_timeout(v: &str) -> Result<std::time::Duration> {
    match v.trim().parse::<u64>() {
        Ok(secs @ 1..=86_400) => Ok(std::time::Duration::from_secs(secs)),
        _ => bail!("KANDO_S3_REQUEST_TIMEOUT={v:?} is not whole seconds from 1 to 86400"),
    }
}

/// Opens the S3 repository at `root` in the profile's bucket.
pub async fn open(
    profile: &Profile,
    root: &str,
    sse: Option<ServerSideEncryption>,
) -> Result<DynStorage> {
    Ok(Arc::new(
        S3Storage::connect(config(profile, root, sse)?).await?,
    ))
}
