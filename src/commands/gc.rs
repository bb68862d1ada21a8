//! Garbage collection: reclaims the space of deleted snapshots. Run only under the
//! exclusive lock (see `repo::lock`), so no push or pull is using the repository.
//!
//! Order, so that a crash at any point loses nothing:
//! 1. compute the live set from every committed snapshot; any unreadable manifest, block
//!    or missing pack stops gc before anything is written or deleted;
//! 2. copy live blobs out of mostly-dead packs into new packs (stored bytes, no recompress);
//! 3. write the merged index (kept packs + new packs);
//! 4. delete the old index segments, then dead and rewritten packs (no index entry ever
//!    points at a missing pack), then manifests without refs and stale locks.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;

use crate::repo::chunklist::decode_block;
use crate::repo::ids::Id;
use crate::repo::index::{Index, IndexSegment};
use crate::repo::lock::{list_locks, LockKind};
use crate::repo::manifest::Manifest;
use crate::repo::pack::{PackBuilder, PackEntry};
use crate::repo::{manifest_key, pack_key, Repository};

/// Tunables of garbage collection.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// A pack is rewritten when more than this percentage of its bytes is dead.
    pub repack_dead_pct: u8,
    /// Size of rewritten packs.
    pub pack_size: usize,
    /// Entries per index segment.
    pub segment_entries: usize,
    /// Locks older than this are stale and removed.
    pub stale_after: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            repack_dead_pct: 25,
            pack_size: 8 * 1024 * 1024,
            segment_entries: 65_536,
            stale_after: crate::repo::lock::DEFAULT_STALE_AFTER,
        }
    }
}

/// What a gc run did.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Live snapshots.
    pub snapshots: usize,
    /// Packs deleted because nothing live was in them.
    pub packs_deleted: usize,
    /// Packs whose live blobs were copied into new packs.
    pub packs_rewritten: usize,
    /// Bytes of packs removed, minus bytes of new packs.
    pub bytes_freed: u64,
    /// Index segments replaced by the merged index.
    pub segments_merged: usize,
    /// Manifests without a ref removed.
    pub manifests_removed: usize,
    /// Stale locks removed.
    pub locks_removed: usize,
}

/// Collects garbage. The caller holds the exclusive lock.
pub async fn gc(repo: &Repository, opts: &GcOptions) -> Result<GcReport> {
    let storage = repo.storage();
    let mut report = GcReport::default();

    // 1. What exists and what is live.
    let mut index = Index::default();
    let mut segment_keys = Vec::new();
    let mut pack_entries: HashMap<Id, Vec<PackEntry>> = HashMap::new();
    repo.for_each_index_segment(|key, seg| {
        index.add_segment(&seg);
        segment_keys.push(key);
        for (pack, entries) in seg.packs {
            pack_entries.entry(pack).or_default().extend(entries);
        }
    })
    .await
    .context("gc stopped before deleting anything")?;
    let refs = repo.list_refs("").await?;
    let manifests = repo
        .read_manifests(&refs)
        .await
        .context("gc stopped before deleting anything")?;
    report.snapshots = manifests.len();
    let mut live = HashSet::new();
    for (r, m) in refs.iter().zip(&manifests) {
        collect_live(repo, &index, m, &mut live)
            .await
            .with_context(|| {
                format!(
                    "gc stopped before deleting anything: snapshot {} is unreadable",
                    r.id
                )
            })?;
    }
    let listed_packs: HashMap<Id, u64> = storage
        .list("packs/")
        .await
        .context("cannot list packs")?
        .into_iter()
        .filter_map(|m| Some((Id::from_hex(m.key.rsplit('/').next()?)?, m.size)))
        .collect();
    for id in &live {
        let loc = index
            .get(id)
            .ok_or_else(|| anyhow!("blob {id} is live but in no index segment"))?;
        if !listed_packs.contains_key(&loc.pack) {
            bail!(
                "gc stopped before deleting anything: pack {} holding live data is missing (run `kando repo verify`)",
                pack_key(&loc.pack)
            );
        }
    }

    // 2. Classify packs and copy live blobs out of mostly-dead ones.
    let mut doomed: Vec<Id> = Vec::new();
    let mut rewritten: HashSet<Id> = HashSet::new();
    let mut new_segment = IndexSegment::default();
    let mut builder = PackBuilder::with_capacity(opts.pack_size);
    let mut new_bytes = 0u64;
    for (&pack, &size) in &listed_packs {
        let Some(entries) = pack_entries.get(&pack) else {
            doomed.push(pack); // never indexed: a push that died before its index segment
            continue;
        };
        let mut seen = HashSet::new();
        let entries: Vec<PackEntry> = entries
            .iter()
            .filter(|e| seen.insert(e.id))
            .copied()
            .collect();
        let live_here: Vec<PackEntry> = entries
            .iter()
            .filter(|e| live.contains(&e.id) && index.get(&e.id).map(|l| l.pack) == Some(pack))
            .copied()
            .collect();
        let live_bytes: u64 = live_here.iter().map(|e| e.stored_len as u64).sum();
        if live_here.is_empty() {
            doomed.push(pack);
        } else if (size.saturating_sub(live_bytes)) * 100 > size * opts.repack_dead_pct as u64 {
            let key = pack_key(&pack);
            let bytes = storage
                .get(&key)
                .await
                .with_context(|| format!("cannot read pack {key}"))?;
            if Id::of(&bytes) != pack {
                bail!("gc stopped: pack {key} is corrupt (its content does not match its name); nothing was deleted");
            }
            for e in &live_here {
                let stored = bytes
                    .get(e.offset as usize..(e.offset + e.stored_len) as usize)
                    .ok_or_else(|| {
                        anyhow!("gc stopped: pack {key} is shorter than its index says")
                    })?;
                builder.add(e.id, e.codec, e.raw_len, stored);
                if builder.len() >= opts.pack_size {
                    let full =
                        std::mem::replace(&mut builder, PackBuilder::with_capacity(opts.pack_size));
                    new_bytes += flush_pack(repo, full, &mut new_segment).await?;
                }
            }
            doomed.push(pack);
            rewritten.insert(pack);
        } else {
            new_segment.packs.push((pack, entries));
        }
    }
    if !builder.is_empty() {
        new_bytes += flush_pack(repo, builder, &mut new_segment).await?;
    }
    // A pack this run wrote may carry the name of a doomed one: an earlier gc that died
    // before its index left that pack unindexed, and copying the same blobs in the same
    // order rebuilt it byte for byte. Whatever the new index references must stay.
    let referenced: HashSet<Id> = new_segment.packs.iter().map(|(p, _)| *p).collect();
    doomed.retain(|p| !referenced.contains(p));
    report.packs_rewritten = doomed.iter().filter(|p| rewritten.contains(p)).count();
    report.packs_deleted = doomed.len() - report.packs_rewritten;

    // 3. The merged index, unless it would be what is already there.
    let unchanged = doomed.is_empty() && segment_keys.len() <= 1;
    let mut written = HashSet::new();
    if !unchanged {
        for part in split_segment(new_segment, opts.segment_entries) {
            written.insert(repo.write_index_segment(&part).await?.0);
        }
        // 4. Old segments first, then packs.
        for key in &segment_keys {
            if !written.contains(key) {
                storage
                    .delete(key)
                    .await
                    .with_context(|| format!("cannot delete {key}"))?;
                report.segments_merged += 1;
            }
        }
    }
    let mut freed = 0u64;
    for pack in &doomed {
        storage.delete(&pack_key(pack)).await?;
        freed += listed_packs[pack];
    }
    report.bytes_freed = freed.saturating_sub(new_bytes);

    let live_ids: HashSet<&str> = refs.iter().map(|r| r.id.as_str()).collect();
    for m in storage.list("snapshots/").await? {
        let id = m.key.trim_start_matches("snapshots/");
        if !live_ids.contains(id) {
            storage.delete(&manifest_key(id)).await?;
            report.manifests_removed += 1;
        }
    }
    storage.cleanup_incomplete(opts.stale_after).await?;
    for kind in [LockKind::Shared, LockKind::Exclusive] {
        let (_, stale) = list_locks(storage, kind, opts.stale_after).await?;
        for l in stale {
            storage.delete(&l.key).await?;
            report.locks_removed += 1;
        }
    }
    Ok(report)
}

/// Adds every blob id a manifest references (chunks and chunk-list blocks) to `live`.
async fn collect_live(
    repo: &Repository,
    index: &Index,
    m: &Manifest,
    live: &mut HashSet<Id>,
) -> Result<()> {
    let mut level: Vec<Id> = m
        .chunks
        .ids
        .iter()
        .map(|h| Id::from_hex(h).ok_or_else(|| anyhow!("bad id {h:?} in manifest")))
        .collect::<Result<_>>()?;
    for _ in 0..m.chunks.depth {
        let mut below = Vec::new();
        for block in &level {
            live.insert(*block);
            let bytes = repo.read_blob(index, block).await?;
            below.extend(
                decode_block(&bytes).map_err(|e| anyhow!("chunk-list block {block}: {e}"))?,
            );
        }
        level = below;
    }
    for id in level {
        if index.get(&id).is_none() {
            bail!("chunk {id} is in no index segment");
        }
        live.insert(id);
    }
    Ok(())
}

async fn flush_pack(
    repo: &Repository,
    builder: PackBuilder,
    segment: &mut IndexSegment,
) -> Result<u64> {
    let (bytes, id, entries) = builder.finish(repo.keys());
    let len = bytes.len() as u64;
    repo.write_pack(&id, Bytes::from(bytes)).await?;
    segment.packs.push((id, entries));
    Ok(len)
}

fn split_segment(seg: IndexSegment, max_entries: usize) -> Vec<IndexSegment> {
    let mut out = vec![IndexSegment::default()];
    for (pack, entries) in seg.packs {
        if out.last().unwrap().len() + entries.len() > max_entries
            && !out.last().unwrap().is_empty()
        {
            out.push(IndexSegment::default());
        }
        out.last_mut().unwrap().packs.push((pack, entries));
    }
    out.retain(|s| !s.is_empty());
    out
}
