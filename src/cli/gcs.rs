//! Profile → GCS backend, read as upstream reads a `gcs` location: `bucket`, `prefix`;
//! keyPair `ID` = project id, `Secret` = the service-account key JSON; no Secret (or no
//! Credential) = Google's default credentials. Ours also honours a non-empty `endpoint`
//! (emulators, private gateways) and `STORAGE_EMULATOR_HOST`, as Google's libraries do.

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::compat::profile::{Credential, Profile};
use crate::storage::gcs::{GcsConfig, GcsCredentials, GcsStorage};
use crate::storage::DynStorage;

/// Builds the GCS configuration for the repository at `root` in the profile's bucket.
pub fn config(profile: &Profile, root: &str) -> Result<GcsConfig> {
    let loc = &profile.location;
    if loc.bucket.is_empty() {
        bail!("the gcs Location has no bucket");
    }
    let emulator = std::env::var("STORAGE_EMULATOR_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty());
    let mut credentials = match &profile.credential {
        Credential::None => GcsCredentials::Default,
        Credential::KeyPair { secret, .. } if secret.trim().is_empty() => GcsCredentials::Default,
        Credential::KeyPair { secret, .. } => GcsCredentials::ServiceAccountKey(secret.clone()),
        Credential::AwsSecret { .. } | Credential::AzureSecret { .. } => {
            bail!("profile: a gcs Location takes a keyPair credential (ID = project id, Secret = service-account key JSON)")
        }
    };
    let endpoint = if !loc.endpoint.trim().is_empty() {
        loc.endpoint.clone()
    } else if let Some(host) = emulator {
        // Google's libraries talk to the emulator without credentials.
        credentials = GcsCredentials::Anonymous;
        if host.contains("://") {
            host
        } else {
            format!("http://{host}")
        }
    } else {
        String::new()
    };
    let retry = super::s3::retry_policy()?;
    Ok(GcsConfig {
        bucket: loc.bucket.clone(),
        root: root.to_string(),
        endpoint,
        credentials,
        skip_ssl_verify: profile.skip_ssl_verify,
        retry,
    })
}

/// Opens the GCS repository at `root` in the profile's bucket.
pub async fn open(profile: &Profile, root: &str) -> Result<DynStorage> {
    Ok(Arc::new(GcsStorage::connect(config(profile, root)?).await?))
}
