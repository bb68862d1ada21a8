//! `delete`: removes snapshots (their refs, then their manifests). Data is reclaimed only
//! by garbage collection, which proves nothing else references it.

use anyhow::Result;

use crate::repo::refs::SnapshotRef;
use crate::repo::Repository;

/// Which snapshots to delete.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Exactly this snapshot.
    Id(String),
    /// Every snapshot at this path or under it (whole components).
    Path(String),
}

/// Deletes the selected snapshots and returns them. An id that does not exist is an error;
/// a path with no snapshots deletes nothing.
pub async fn delete(repo: &Repository, selection: &Selection) -> Result<Vec<SnapshotRef>> {
    let targets = match selection {
        Selection::Id(id) => {
            let m = repo.read_manifest(id).await?;
            vec![SnapshotRef {
                key: repo.ref_key(&m, id),
                path: m.path,
                time_ns: m.time_ns,
                id: id.clone(),
            }]
        }
        Selection::Path(path) => repo.list_refs(path).await?,
    };
    for r in &targets {
        repo.delete_snapshot(r).await?;
    }
    Ok(targets)
}
