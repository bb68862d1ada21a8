//! `repo list`: the snapshots in a repository.

use anyhow::Result;

use crate::repo::manifest::Manifest;
use crate::repo::Repository;

/// One listed snapshot.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Snapshot id.
    pub id: String,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Every snapshot at `path` or under it, oldest first.
pub async fn list(repo: &Repository, path: &str) -> Result<Vec<Listed>> {
    // A snapshot deleted between listing and reading is simply not listed.
    let refs = repo.list_refs(path).await?;
    Ok(repo
        .read_manifests(&refs)
        .await?
        .into_iter()
        .map(|(r, manifest)| Listed { id: r.id, manifest })
        .collect())
}
