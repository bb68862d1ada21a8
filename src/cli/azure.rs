//! Profile → Azure Blob backend, read as upstream reads an `azure` location: `bucket` is
//! the container, `prefix` as for S3; keyPair `ID` = storage account, `Secret` = account
//! key; or a `secrets.kanister.io/azure` Secret (account, key, cloud environment, or
//! federated identity: a SAS token from `$AZURE_SAS_TOKEN_FILE`). A non-empty `endpoint`
//! is the account's blob service URL, as a connection string's BlobEndpoint.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};

use crate::compat::profile::{Credential, Profile};
use crate::storage::azure::{AzureConfig, AzureCredentials, AzureStorage};
use crate::storage::DynStorage;

/// The blob host suffix of an `azure_storage_environment` (case-insensitive).
fn host_suffix(environment: &str) -> Result<&'static str> {
    Ok(match environment.to_ascii_lowercase().as_str() {
        "azurecloud" | "azurepubliccloud" => "core.windows.net",
        "azureusgovernment" | "azureusgovernmentcloud" => "core.usgovcloudapi.net",
        "azurechinacloud" => "core.chinacloudapi.cn",
        "azuregermancloud" => "core.cloudapi.de",
        _ => bail!(
            "profile: unknown azure_storage_environment {environment:?} (expected AzureCloud, AzurePublicCloud, AzureUSGovernment, AzureUSGovernmentCloud, AzureChinaCloud or AzureGermanCloud)"
        ),
    })
}

/// True for `http://` URLs on a loopback address: the only place a SAS token may be sent
/// in the clear (emulators).
fn is_http_loopback(endpoint: &str) -> bool {
    let Ok(uri) = endpoint.trim().parse::<http::Uri>() else {
        return false;
    };
    uri.scheme_str() == Some("http")
        && matches!(
            uri.host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']')),
            Some("127.0.0.1" | "localhost" | "::1")
        )
}

/// The SAS token of federated identity, from `$AZURE_SAS_TOKEN_FILE`. It must allow
/// HTTPS only (`spr=https`) unless the endpoint is plain HTTP on loopback. Errors name
/// the file, never its content.
fn sas_token(endpoint: &str) -> Result<String> {
    let file = std::env::var_os("AZURE_SAS_TOKEN_FILE")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| anyhow!("profile: azure_federated_identity is set, but AZURE_SAS_TOKEN_FILE names no SAS token file"))?;
    let shown = std::path::Path::new(&file).display().to_string();
    let meta = std::fs::metadata(&file)
        .map_err(|e| anyhow!("cannot read the SAS token file {shown}: {e}"))?;
    if meta.len() > 64 * 1024 {
        bail!("the SAS token file {shown} is larger than 64 KiB: not a SAS token");
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow!("cannot read the SAS token file {shown}: {e}"))?;
    let token = text.trim().trim_start_matches('?').to_string();
    let fields: Vec<(&str, &str)> = token
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    if field("sig").is_none() || field("sv").is_none() {
        bail!("the SAS token file {shown} holds no SAS token (no sv= or sig=)");
    }
    let https_only = field("spr") == Some("https");
    if !https_only && !is_http_loopback(endpoint) {
        bail!(
            "the SAS token in {shown} also allows plain HTTP (spr={}): issue it with spr=https",
            field("spr").unwrap_or("<absent>")
        );
    }
    Ok(token)
}

/// Builds the Azure configuration for the repository at `root` in the profile's container.
pub fn config(profile: &Profile, root: &str) -> Result<AzureConfig> {
    let loc = &profile.location;
    if loc.bucket.is_empty() {
        bail!("the azure Location has no bucket (the container name)");
    }
    let (account, credentials, suffix) = match &profile.credential {
        Credential::KeyPair { id, secret } if !id.is_empty() && !secret.is_empty() => (
            id.clone(),
            Some(AzureCredentials::SharedKey(secret.clone())),
            "core.windows.net",
        ),
        Credential::KeyPair { .. } => {
            bail!("profile: an azure keyPair needs ID (the storage account) and Secret (its key)")
        }
        Credential::AzureSecret {
            account,
            key,
            environment,
            federated,
        } => {
            let suffix = match environment {
                Some(e) => host_suffix(e)?,
                None => "core.windows.net",
            };
            // A key wins over federated identity when both are given.
            let credentials = match (key, federated) {
                (Some(k), _) => Some(AzureCredentials::SharedKey(k.clone())),
                (None, true) => None, // the SAS token, once the endpoint is known
                (None, false) => bail!("profile: the azure Secret has no azure_storage_key"),
            };
            (account.clone(), credentials, suffix)
        }
        Credential::None | Credential::AwsSecret { .. } => bail!(
            "profile: an azure Location needs a keyPair (storage account and key) or a secrets.kanister.io/azure Secret"
        ),
    };
    let endpoint = if loc.endpoint.trim().is_empty() {
        format!("https://{account}.blob.{suffix}")
    } else {
        loc.endpoint.trim().to_string()
    };
    let credentials = match credentials {
        Some(c) => c,
        None => AzureCredentials::Sas(sas_token(&endpoint)?),
    };
    let retry = super::s3::retry_policy()?;
    Ok(AzureConfig {
        account,
        container: loc.bucket.clone(),
        root: root.to_string(),
        endpoint,
        credentials,
        skip_ssl_verify: profile.skip_ssl_verify,
        retry,
    })
}

/// Opens the Azure repository at `root` in the profile's container.
pub async fn open(profile: &Profile, root: &str) -> Result<DynStorage> {
    Ok(Arc::new(
        AzureStorage::connect(config(profile, root)?).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_and_loopback() {
        assert_eq!(host_suffix("AzurePublicCloud").unwrap(), "core.windows.net");
        assert_eq!(host_suffix("azurecloud").unwrap(), "core.windows.net");
        assert_eq!(
            host_suffix("AZUREUSGOVERNMENT").unwrap(),
            "core.usgovcloudapi.net"
        );
        assert_eq!(
            host_suffix("AzureUSGovernmentCloud").unwrap(),
            "core.usgovcloudapi.net"
        );
        assert_eq!(
            host_suffix("AzureChinaCloud").unwrap(),
            "core.chinacloudapi.cn"
        );
        assert_eq!(host_suffix("AzureGermanCloud").unwrap(), "core.cloudapi.de");
        assert!(host_suffix("Mars")
            .unwrap_err()
            .to_string()
            .contains("Mars"));
        assert!(is_http_loopback("http://127.0.0.1:10000/devstoreaccount1"));
        assert!(is_http_loopback("http://localhost:1"));
        assert!(!is_http_loopback("https://127.0.0.1:1"));
        assert!(!is_http_loopback("http://10.0.0.1:1"));
    }
}
