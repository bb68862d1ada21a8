//! The commit point of a push. After its packs, index segment and manifest are written, a
//! snapshot becomes committed by a record appended to the gc journal — only after checking
//! that every pack it uses exists and is not being deleted — and then visible by its ref.
//! ARCHITECTURE.md ("gc safety") says why this, and not a lock, keeps gc from deleting
//! what a committed snapshot needs.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};

use super::config::Config;
use super::ids::Id;
use super::manifest::Manifest;
use super::{journal, manifest_key, pack_key, Repository, CONFIG_KEY};

/// Why a commit was refused: the push must not claim a snapshot it cannot restore.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// gc decided to delete something the snapshot uses (the push was paused or judged
    /// stale for longer than the grace period).
    #[error("garbage collection is deleting {0}, which this push uses (the push was paused or out of touch too long); nothing was committed, push again")]
    Condemned(String),
    /// A pack the snapshot uses is gone (deleted by hand, a lifecycle rule, damage).
    #[error("pack {0}, which this push uses, is missing from the repository; nothing was committed, push again (it will store the data anew)")]
    Missing(String),
    /// The config this push wrote with is no longer the repository's: its data would be
    /// unreadable under the other keys.
    #[error("the repository config at {0} was replaced while this push ran (another first push on a store whose conditional writes can both succeed, or by hand); nothing was committed, push again")]
    ConfigReplaced(String),
}

impl Repository {
    /// Commits a snapshot whose packs, index and manifest are written: appends it to the
    /// gc journal, after checking that nothing it uses is gone or being deleted, then
    /// writes its ref. `packs` are every pack its blobs were found or stored in.
    pub async fn commit_snapshot(
        &self,
        manifest: &Manifest,
        id: &str,
        packs: &HashSet<Id>,
    ) -> Result<()> {
        // Two first pushes on a store whose create-if-absent can have two winners can each
        // write a config; the one that landed last is the repository's. Data written under
        // the other's keys would not restore.
        let stored = self
            .storage
            .get(CONFIG_KEY)
            .await
            .context("cannot read the repository config back")?;
        if !Config::decode(&stored).is_ok_and(|c| c.id == self.config.id) {
            return Err(CommitError::ConfigReplaced(self.storage.describe()).into());
        }
        for _ in 0..64 {
            // Journal first, listing second: a pack deleted after the listing was decided
            // in a record newer than `state`, and then our append conflicts.
            let state = journal::read_latest(&self.storage).await?;
            let listed = self.list_packs().await?;
            for p in packs {
                if state.pack_is_deleting(&p.to_hex()) {
                    return Err(CommitError::Condemned(pack_key(p)).into());
                }
                if !listed.contains_key(p) {
                    return Err(CommitError::Missing(pack_key(p)).into());
                }
            }
            // Its own manifest too: gc may have deleted it as one without a ref (and then
            // forgotten it) while this push was paused.
            if state.deleting_manifests.contains(id)
                || self.storage.head(&manifest_key(id)).await?.is_none()
            {
                return Err(CommitError::Condemned(manifest_key(id)).into());
            }
            let mut next = state.clone();
            next.committed.insert(journal::Committed {
                id: id.to_string(),
                time_ns: journal::now_ns(),
            });
            match journal::append(&self.storage, &state, &next).await {
                Ok(_) => return self.write_ref(manifest, id).await,
                Err(journal::AppendError::Conflict(_)) => {
                    // Others are committing too: a short, random pause spreads the retries.
                    let ms = 5 + rand::random::<u64>() % 50;
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                Err(journal::AppendError::Other(e)) => return Err(e),
            }
        }
        bail!("the repository's gc journal stayed too busy to commit; nothing was committed, push again")
    }
}
