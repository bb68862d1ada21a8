//! Which snapshots a command means: one by id, every one at a path and below it, or the
//! newest pushed to exactly a path. Pull, delete and verify all choose this way.

use anyhow::Result;

use crate::repo::refs::SnapshotRef;
use crate::repo::Repository;

/// A choice of snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Exactly this snapshot (`--kopia-snapshot`).
    Id(String),
    /// Every snapshot at this path or under it (whole components).
    Path(String),
    /// The newest snapshot pushed to exactly this path (pull without a snapshot).
    NewestAt(String),
}

/// The selected snapshots, oldest first. An id that does not exist is an error; a path
/// with no snapshots selects nothing.
pub async fn resolve(repo: &Repository, selection: &Selection) -> Result<Vec<SnapshotRef>> {
    Ok(match selection {
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
        Selection::NewestAt(path) => repo
            .list_refs(path)
            .await?
            .into_iter()
            .rev()
            .find(|r| &r.path == path)
            .into_iter()
            .collect(),
    })
}
