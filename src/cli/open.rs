//! From a profile to an opened storage backend rooted at the repository directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::compat::profile::{LocationType, Profile};
use crate::repo::refs::normalize_path;
use crate::storage::local::LocalStorage;
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

/// Opens the backend the profile names.
pub async fn open_storage(profile: &Profile, repo_dir: &str) -> Result<DynStorage> {
    let loc = &profile.location;
    let root = repository_root(&loc.prefix, repo_dir)?;
    match loc.kind {
        LocationType::Local => {
            if loc.path.is_empty() || !Path::new(&loc.path).is_absolute() {
                bail!("a local Location needs an absolute \"path\", e.g. {{\"type\":\"local\",\"path\":\"/backups\"}}");
            }
            Ok(Arc::new(LocalStorage::new(Path::new(&loc.path).join(root))))
        }
        LocationType::S3Compliant => crate::cli::s3::open(profile, &root).await,
        LocationType::Gcs | LocationType::Azure | LocationType::Kopia => bail!(
            "Location type {} is recognised but not supported by this kando yet; use s3Compliant or local",
            loc.kind.as_str()
        ),
    }
}
