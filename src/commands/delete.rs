//! `delete`: removes snapshots (their refs, then their manifests). Data is reclaimed only
//! by garbage collection, which proves nothing else references it.

use anyhow::Result;

use super::select::{resolve, Selection};
use crate::repo::refs::SnapshotRef;
use crate::repo::Repository;

/// Deletes the selected snapshots and returns them.
pub async fn delete(repo: &Repository, selection: &Selection) -> Result<Vec<SnapshotRef>> {
    let targets = resolve(repo, selection).await?;
    for r in &targets {
        repo.delete_snapshot(r).await?;
    }
    Ok(targets)
}
