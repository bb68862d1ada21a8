//! From a profile to an opened storage backend rooted at the repository directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::compat::profile::{LocationType, Profile};
use crate::repo::refs::normalize_path;
use crate::storage::local::LocalStorage;
use crate::storage::s3::ServerSideEncryption;
use crate::storage::DynStorage;

/// `join(prefix, repo_dir)`, cleaned: the repository's key prefix inside the location.
pub fn repository_root(prefix: &str, repo_dir: &str) -> Result<String> {
    let prefix = normalize_path(prefix).map_err(|e| anyhow::anyhow!("Location.prefix: {e}"))?;
    let dir = normalize_path(repo_dir).map_err(|e| anyhow::anyhow!("--repo-dir: {e}"))?;
    if dir.is_empty() {
        bail!("--repo-dir must not be empty");
    }
    Ok(if prefix.is_empty() {
        dir
    } else {
        format!("{prefix}/{dir}")
    })
}

/// Opens the repository's storage: the backend the profile names, rooted at
/// `<prefix>/<repo_dir>`; `sse` applies to S3 only.
pub async fn open_storage(
    profile: &Profile,
    repo_dir: &str,
    sse: Option<ServerSideEncryption>,
) -> Result<DynStorage> {
    let root = repository_root(&profile.location.prefix, repo_dir)?;
    open_at(profile, &root, sse).await
}

/// Opens the location itself, rooted at the profile's prefix: where upstream kando put
/// its plain objects (`join(prefix, path)`).
pub async fn open_location(
    profile: &Profile,
    sse: Option<ServerSideEncryption>,
) -> Result<DynStorage> {
    let prefix = normalize_path(&profile.location.prefix)
        .map_err(|e| anyhow::anyhow!("Location.prefix: {e}"))?;
    open_at(profile, &prefix, sse).await
}

async fn open_at(
    profile: &Profile,
    root: &str,
    sse: Option<ServerSideEncryption>,
) -> Result<DynStorage> {
    let loc = &profile.location;
    if sse.is_some() && loc.kind != LocationType::S3Compliant {
        bail!(
            "--sse / --sse-kms-key-id (or KANDO_SSE*) apply to s3Compliant locations, not {}",
            loc.kind.as_str()
        );
    }
    match loc.kind {
        LocationType::Local => {
            if loc.path.is_empty() || !Path::new(&loc.path).is_absolute() {
                bail!("a local Location needs an absolute \"path\", e.g. {{\"type\":\"local\",\"path\":\"/backups\"}}");
            }
            Ok(Arc::new(LocalStorage::new(Path::new(&loc.path).join(root))))
        }
        LocationType::S3Compliant => crate::cli::s3::open(profile, root, sse).await,
        LocationType::Gcs => crate::cli::gcs::open(profile, root).await,
        LocationType::Azure => crate::cli::azure::open(profile, root).await,
        LocationType::Kopia => bail!(
            "Location type {} is recognised but not supported by this kando yet; use s3Compliant or local",
            loc.kind.as_str()
        ),
    }
}

/// The server-side encryption the flags ask for.
pub fn server_side_encryption(
    mode: Option<&str>,
    kms_key_id: Option<&str>,
) -> Result<Option<ServerSideEncryption>> {
    Ok(match (mode, kms_key_id) {
        (None, None) => None,
        (Some("AES256"), None) => Some(ServerSideEncryption::S3),
        (Some("AES256"), Some(_)) => {
            bail!("--sse-kms-key-id needs --sse aws:kms, not AES256")
        }
        (_, key) => Some(ServerSideEncryption::Kms {
            key_id: key.map(str::to_string),
        }),
    })
}
