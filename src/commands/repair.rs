//! `repo repair`: rebuilds the index from the packs themselves. Every pack ends with its
//! own list of blobs, so the index is redundant and can always be recreated: damaged or
//! lost index segments, entries of packs that are gone, all are replaced by one index made
//! from what the packs hold. Then every snapshot is walked to report, by path and id, those
//! that can no longer be restored.

use std::collections::HashSet;

use anyhow::{Context, Result};
use futures::stream::{self, StreamExt};

use crate::repo::chunklist::ChunkListReader;
use crate::repo::ids::Id;
use crate::repo::index::IndexSegment;
use crate::repo::pack::read_trailer;
use crate::repo::{pack_key, Repository, SEGMENT_ENTRIES};

/// Packs read at once.
const PACK_READS: usize = 8;

/// A snapshot repair found broken.
#[derive(Debug, Clone)]
pub struct Unrestorable {
    /// Snapshot id.
    pub id: String,
    /// Its path.
    pub path: String,
    /// Why.
    pub why: String,
}

/// What repair did and found.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Packs indexed.
    pub packs: usize,
    /// Blobs indexed.
    pub blobs: usize,
    /// Packs whose content does not match their name, or whose trailer is unreadable.
    pub damaged_packs: Vec<String>,
    /// Old index segments replaced.
    pub segments_replaced: usize,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Snapshots that cannot be restored.
    pub unrestorable: Vec<Unrestorable>,
}

/// Rebuilds the index and reports unrestorable snapshots.
pub async fn repair(repo: &Repository) -> Result<RepairReport> {
    let storage = repo.storage();
    let mut report = RepairReport::default();
    let old_segments: Vec<String> = storage
        .list("index/")
        .await
        .context("cannot list index segments")?
        .into_iter()
        .map(|m| m.key)
        .collect();
    let packs = repo.list_packs().await?;
    let mut rebuilt = IndexSegment::default();
    let mut reads = stream::iter(packs.keys().copied())
        .map(|pack| async move {
            let key = pack_key(&pack);
            let read = match storage.get(&key).await {
                Ok(bytes) if Id::of(&bytes) != pack => {
                    Err("its content does not match its name".to_string())
                }
                Ok(bytes) => read_trailer(&bytes, repo.keys()).map_err(|e| e.to_string()),
                Err(e) if e.is_not_found() => Ok(Vec::new()), // deleted by gc meanwhile
                Err(e) => return Err(anyhow::anyhow!(e).context(format!("cannot read {key}"))),
            };
            Ok((pack, read))
        })
        .buffer_unordered(PACK_READS);
    while let Some(result) = reads.next().await {
        let (pack, read) = result?;
        match read {
            Ok(entries) if entries.is_empty() => {}
            Ok(entries) => {
                report.packs += 1;
                report.blobs += entries.len();
                rebuilt.packs.push((pack, entries));
            }
            Err(why) => report
                .damaged_packs
                .push(format!("{}: {why}", pack_key(&pack))),
        }
    }
    rebuilt.packs.sort_by_key(|(p, _)| *p);
    let mut written = HashSet::new();
    for part in rebuilt.split(SEGMENT_ENTRIES) {
        written.insert(repo.write_index_segment(&part).await?.0);
    }
    // Old segments go only after the new index is complete: a push's segment written
    // since the listing is not among them, and its packs were listed before it.
    for key in old_segments.iter().filter(|k| !written.contains(*k)) {
        storage
            .delete(key)
            .await
            .with_context(|| format!("cannot delete {key}"))?;
        report.segments_replaced += 1;
    }

    let index = repo.load_read_index().await?;
    let packs = repo.list_packs().await?;
    let refs = repo.list_refs("").await?;
    for r in &refs {
        report.snapshots += 1;
        let broken = |why: String| Unrestorable {
            id: r.id.clone(),
            path: r.path.clone(),
            why,
        };
        let manifest = match repo.read_manifest_unchecked(&r.id).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                report
                    .unrestorable
                    .push(broken("its manifest is missing".into()));
                continue;
            }
            Err(e) => {
                report.unrestorable.push(broken(format!("{e:#}")));
                continue;
            }
        };
        let handle = tokio::runtime::Handle::current();
        let problem = tokio::task::block_in_place(|| {
            let fetch = |id: &Id| handle.block_on(repo.read_blob(&index, id));
            let mut missing = 0u64;
            for tree in manifest.trees() {
                let reader = match ChunkListReader::new(tree, fetch) {
                    Ok(r) => r,
                    Err(e) => return Some(format!("{e:#}")),
                };
                for chunk in reader {
                    match chunk {
                        Err(e) => return Some(format!("chunk list: {e:#}")),
                        Ok(id) => match index.get(&id) {
                            Some(loc) if packs.contains_key(&loc.pack) => {}
                            _ => missing += 1,
                        },
                    }
                }
            }
            (missing > 0).then(|| format!("{missing} chunk(s) are in no pack that exists"))
        });
        if let Some(why) = problem {
            report.unrestorable.push(broken(why));
        }
    }
    Ok(report)
}
