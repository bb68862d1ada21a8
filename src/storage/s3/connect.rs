//! Opening an S3 location: credentials, region discovery, and one probe that tells a
//! missing bucket, rejected credentials and an unreachable endpoint apart.

use anyhow::{anyhow, bail};
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::Client;
use futures::future::BoxFuture;

use super::config::{normalize_endpoint, S3Config, S3Credentials};
use super::errors::ErrorInfo;
use super::{tls, S3Storage};
use crate::storage::keys::Root;
use crate::storage::retry::{RetryPolicy, CONNECT_TIMEOUT, PROBE_ATTEMPTS};

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
        let root = Root::new(&cfg.root)?;
        let endpoint = cfg
            .endpoint
            .as_deref()
            .map(normalize_endpoint)
            .transpose()?;
        let policy = RetryPolicy {
            max_attempts: cfg.retry.max_attempts.max(1),
            ..cfg.retry
        };
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
            .retry_config(retry_config(policy))
            .timeout_config(timeout_config(policy))
            .load()
            .await;
        let credentials = resolve_credentials(&cfg.credentials, &sdk).await?;
        let factory = ClientFactory {
            sdk,
            credentials,
            endpoint: endpoint.clone(),
            http_client: cfg
                .skip_ssl_verify
                .then(|| tls::http_client(CONNECT_TIMEOUT)),
        };
        let location = |region: &str| match &endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3 ({region})"),
        };
        let probe = policy.with_attempts(PROBE_ATTEMPTS);

        // 1. Region discovery. Best effort: S3-compatible servers often do not implement
        // GetBucketLocation, and a policy may deny it while allowing everything we need.
        let mut region = hint;
        match factory
            .client(&region, probe)
            .get_bucket_location()
            .bucket(&bucket)
            .send()
            .await
        {
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
        let prefix = if root.as_str().is_empty() {
            String::new()
        } else {
            root.join("")
        };
        let mut redirected = false;
        loop {
            let listed = factory
                .client(&region, probe)
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

        tracing::debug!(bucket, root = root.as_str(), region, "connected to S3");
        Ok(S3Storage {
            client: factory.client(&region, policy),
            bucket,
            root,
            location: location(&region),
            policy,
            sse: cfg.sse.clone(),
        })
    }
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

fn retry_config(policy: RetryPolicy) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(policy.max_attempts)
}

/// Connect timeout, per-attempt timeout, and the operation timeout of the shared policy.
fn timeout_config(policy: RetryPolicy) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(policy.attempt_timeout)
        .operation_timeout(policy.operation_timeout())
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
}

impl ClientFactory {
    fn client(&self, region: &str, policy: RetryPolicy) -> Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_string()))
            .credentials_provider(self.credentials.clone())
            .retry_config(retry_config(policy))
            .timeout_config(timeout_config(policy));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints() {
        assert_eq!(region_of_constraint(""), "us-east-1");
        assert_eq!(region_of_constraint("EU"), "eu-west-1");
        assert_eq!(region_of_constraint("ap-south-1"), "ap-south-1");
    }
}
