//! Who signs GCS requests: a bearer token from gcp_auth, or none (emulators).
//!
//! gcp_auth (chosen over google-cloud-auth and yup-oauth2, see README "Cloud backends")
//! posts the service-account JWT to the key's own `token_uri`, caches the token and
//! fetches a new one 20 s before it expires; without a key it follows Google's default
//! order: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's configuration, the metadata server
//! (GKE workload identity).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::storage::error::{error_chain, Cause};

/// The OAuth scope of every token: read and write objects, nothing else.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// Where a GCS location's credentials come from.
#[derive(Clone)]
pub enum GcsCredentials {
    /// A service-account key (the JSON Google hands out).
    ServiceAccountKey(String),
    /// Google's application-default credentials.
    Default,
    /// No token at all: an emulator (`STORAGE_EMULATOR_HOST`).
    Anonymous,
}

// Written by hand: the key never reaches a log line through `{:?}`.
impl fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcsCredentials::ServiceAccountKey(_) => f.write_str("ServiceAccountKey(<redacted>)"),
            GcsCredentials::Default => f.write_str("Default"),
            GcsCredentials::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// Hands out the bearer token of the next request (`None`: send none).
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The current token; cached by the implementation.
    async fn token(&self) -> Result<Option<String>, Cause>;
}

struct NoToken;

#[async_trait]
impl TokenSource for NoToken {
    async fn token(&self) -> Result<Option<String>, Cause> {
        Ok(None)
    }
}

struct Google(Arc<dyn gcp_auth::TokenProvider>);

#[async_trait]
impl TokenSource for Google {
    async fn token(&self) -> Result<Option<String>, Cause> {
        let token = self.0.token(&[SCOPE]).await.map_err(|e| error_chain(&e))?;
        Ok(Some(token.as_str().to_string()))
    }
}

/// The token source of `credentials`. A key that does not parse is an error here, before
/// any request; a token endpoint that refuses the key is one at the first request.
pub async fn token_source(credentials: &GcsCredentials) -> anyhow::Result<Arc<dyn TokenSource>> {
    Ok(match credentials {
        GcsCredentials::Anonymous => Arc::new(NoToken),
        GcsCredentials::ServiceAccountKey(json) => {
            let account = gcp_auth::CustomServiceAccount::from_json(json).map_err(|e| {
                anyhow::anyhow!(
                    "the GCS service-account key in the profile's Secret is not usable ({}): check the profile's credentials",
                    error_chain(&e)
                )
            })?;
            Arc::new(Google(Arc::new(account)))
        }
        GcsCredentials::Default => {
            let provider = gcp_auth::provider().await.map_err(|e| {
                anyhow::anyhow!(
                    "no Google credentials found ({}): put a service-account key in the profile, set GOOGLE_APPLICATION_CREDENTIALS, or run with workload identity",
                    error_chain(&e)
                )
            })?;
            Arc::new(Google(provider))
        }
    })
}
