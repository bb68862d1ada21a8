//! Garbage collection: reclaims the space of deleted snapshots in two phases ordered by the
//! gc journal (`repo/journal.rs`), so that no pause, clock or crash can make it delete
//! what a committed snapshot needs. The argument is in ARCHITECTURE.md ("gc safety").
//! One file on purpose (~600 lines): the phases share one scan and one journal state, and
//! the safety argument reads top to bottom here.
//!
//! 0. **Ask the store** whether its conditional create has one winner (the journal needs
//!    it; some S3 servers ignore `If-None-Match` or check and then write); refuse before
//!    deciding anything if not.
//! 1. **Finalize** each condemnation whose grace period has passed and that no fresh push
//!    session older than it still waits on: rescan what is live (refs, and snapshots the
//!    journal says committed), keep every condemned pack that holds a live blob found in
//!    no other usable pack, and append the rest to `deleting`. The append is the decision:
//!    if a push committed meanwhile, the append conflicts and gc rescans.
//! 2. **Condemn**: from a fresh scan, packs with nothing live, packs mostly dead (their live
//!    blobs first copied into new packs, indexed before the record), manifests without a
//!    ref. Nothing is deleted in this phase.
//! 3. **Delete** what `deleting` names: a merged index without those packs first, then the
//!    old index segments, then the packs and manifests. Anyone may repeat this; it is
//!    idempotent. Finally stale sessions and leftovers of dead writers are removed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;

use crate::repo::chunklist::ChunkListReader;
use crate::repo::ids::Id;
use crate::repo::index::{Index, IndexSegment};
use crate::repo::journal::{self, AppendError, Condemnation, JournalState};
use crate::repo::manifest::Manifest;
use crate::repo::pack::{PackBuilder, PackEntry, Packer};
use crate::repo::session;
use crate::repo::{manifest_key, pack_key, Repository, DEFAULT_PACK_SIZE, SEGMENT_ENTRIES};

/// Default grace period between condemning and deleting: long enough for a pull that
/// loaded the index before the condemnation to finish reading (pulls write nothing, so
/// gc cannot see them).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// A commit whose ref has not appeared for this long had its push die in between.
const ROLL_FORWARD_AFTER: Duration = Duration::from_secs(3600);
/// Journal appends tried before giving up on a busy repository.
const ATTEMPTS: usize = 8;

/// Lets tests freeze gc at an exact step (`KANDO_TEST_STOP_AT=<point>` makes it stop
/// itself with SIGSTOP there). A real freeze can happen anywhere; these are the steps
/// where one matters most.
fn stop_here_for_tests(point: &str) {
    static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var("KANDO_TEST_STOP_AT").is_ok_and(|v| v == point)
        && !ONCE.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        // SAFETY: raise only delivers a signal to this process.
        unsafe {
            libc::raise(libc::SIGSTOP);
        }
    }
}

/// Tunables of garbage collection.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// A pack is rewritten when more than this percentage of its bytes is dead.
    pub repack_dead_pct: u8,
    /// Size of rewritten packs.
    pub pack_size: usize,
    /// Entries per index segment.
    pub segment_entries: usize,
    /// Sessions not refreshed for this long no longer hold condemnations back.
    pub stale_after: Duration,
    /// Time between condemning and deleting.
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            repack_dead_pct: 25,
            pack_size: DEFAULT_PACK_SIZE,
            segment_entries: SEGMENT_ENTRIES,
            stale_after: session::DEFAULT_STALE_AFTER,
            grace: DEFAULT_GRACE,
        }
    }
}

/// What a gc run did.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Live snapshots.
    pub snapshots: usize,
    /// Packs newly condemned (deleted after the grace period).
    pub packs_condemned: usize,
    /// Packs whose live blobs were copied into new packs before condemning them.
    pub packs_rewritten: usize,
    /// Packs deleted.
    pub packs_deleted: usize,
    /// Condemned packs kept because a push committed a snapshot that uses them.
    pub packs_kept: usize,
    /// Bytes of packs deleted, minus bytes of packs written.
    pub bytes_freed: u64,
    /// Index segments replaced by the merged index.
    pub segments_merged: usize,
    /// Manifests without a ref removed.
    pub manifests_removed: usize,
    /// Packs still condemned after this run, and why they wait.
    pub waiting: Option<(usize, String)>,
}

/// What exists and what is live, read after the journal state it is judged against.
struct Scan {
    state: JournalState,
    packs: HashMap<Id, u64>,
    /// Distinct entries of every listed pack, from all segments.
    entries: HashMap<Id, Vec<PackEntry>>,
    live: HashSet<Id>,
    /// Live blobs found in at least one usable pack.
    held: HashSet<Id>,
    /// Snapshot ids with a ref, or committed in the journal with their manifest present.
    live_snapshots: HashSet<String>,
    /// Committed entries whose ref gc has now seen (or whose manifest is gone).
    committed_settled: Vec<journal::Committed>,
}

impl Scan {
    /// Usable as the home of a live blob: exists and is not condemned.
    fn usable(&self, pack: &Id) -> bool {
        self.packs.contains_key(pack) && !self.state.pack_is_condemned(&pack.to_hex())
    }
}

async fn scan(repo: &Repository, opts: &GcOptions) -> Result<Scan> {
    let storage = repo.storage();
    let state = journal::read_latest(storage).await?;
    // What is live, then what exists: everything a live snapshot uses was written before
    // it committed, so it is in the listings that follow. (A snapshot committed after
    // `state` was read is not needed here: it makes our append conflict.)
    let refs = repo.list_refs("").await?;
    let mut live_snapshots = HashSet::new();
    let mut manifests: Vec<(String, Manifest)> = Vec::new();
    for (r, m) in refs.iter().zip(repo.read_manifests_if_live(&refs).await?) {
        if let Some(m) = m {
            live_snapshots.insert(r.id.clone());
            manifests.push((r.id.clone(), m));
        }
    }
    let mut committed_settled = Vec::new();
    for c in &state.committed {
        if live_snapshots.contains(&c.id) {
            committed_settled.push(c.clone());
            continue;
        }
        match repo.read_manifest_unchecked(&c.id).await? {
            Some(m) => {
                // Its push died between committing and writing the ref: finish the commit
                // (the same ref the push would write), once it surely is not coming. At
                // least an hour: a ref written while its snapshot is deleted by id would
                // be left without a manifest.
                let silent = opts.grace.max(opts.stale_after).max(ROLL_FORWARD_AFTER);
                let silent = silent.as_nanos() as u64;
                if journal::now_ns().saturating_sub(c.time_ns) > silent {
                    repo.write_ref(&m, &c.id).await?;
                }
                live_snapshots.insert(c.id.clone());
                manifests.push((c.id.clone(), m));
            }
            None => committed_settled.push(c.clone()), // deleted since
        }
    }
    let packs = repo.list_packs().await?;
    let mut entries: HashMap<Id, Vec<PackEntry>> = HashMap::new();
    let mut seen: HashSet<(Id, Id)> = HashSet::new();
    let mut index = Index::default();
    // A damaged segment stops gc: its packs would look unindexed, that is unused.
    repo.for_each_index_segment(false, |_, seg| {
        index.add_segment_ranked(&seg, |p| journal::read_rank(&state, &packs, p));
        for (pack, es) in seg.packs {
            if !packs.contains_key(&pack) {
                continue;
            }
            let list = entries.entry(pack).or_default();
            list.extend(es.into_iter().filter(|e| seen.insert((pack, e.id))));
        }
    })
    .await
    .context("gc stopped before deleting anything")?;

    let mut live = HashSet::new();
    for (id, m) in &manifests {
        if let Err(e) = collect_live(repo, &index, m, &mut live).await {
            // A snapshot deleted while we scanned (another gc may have reclaimed its packs
            // since) is not live: only one still there stops gc.
            let ref_left = refs.iter().filter(|r| &r.id == id);
            let mut wanted = state.committed.iter().any(|c| &c.id == id);
            for r in ref_left {
                wanted |= storage.head(&r.key).await?.is_some();
            }
            if !wanted || storage.head(&manifest_key(id)).await?.is_none() {
                tracing::debug!("snapshot {id} was deleted while gc scanned it");
                continue;
            }
            return Err(e.context(format!(
                "gc stopped before deleting anything: snapshot {id} is unreadable (run `kando repo repair`)"
            )));
        }
    }
    // A live blob in a pack we did not list: either the pack came after the listing (a
    // push that committed meanwhile; its commit makes our append conflict anyway) or it is
    // gone, which is damage that must stop gc.
    let mut checked = HashSet::new();
    for id in &live {
        if let Some(loc) = index.get(id) {
            if !packs.contains_key(&loc.pack)
                && checked.insert(loc.pack)
                && storage.head(&pack_key(&loc.pack)).await?.is_none()
            {
                bail!(
                    "gc stopped before deleting anything: pack {} holding live data is missing (run `kando repo repair` to see which snapshots it breaks)",
                    pack_key(&loc.pack)
                );
            }
        }
    }
    let held = entries
        .iter()
        .filter(|(p, _)| packs.contains_key(*p) && !state.pack_is_condemned(&p.to_hex()))
        .flat_map(|(_, es)| es.iter().map(|e| e.id))
        .filter(|id| live.contains(id))
        .collect();
    Ok(Scan {
        state,
        packs,
        entries,
        live,
        held,
        live_snapshots,
        committed_settled,
    })
}

/// Collects garbage: finalize, condemn, finalize (a zero grace finishes in one run), delete.
pub async fn gc(repo: &Repository, opts: &GcOptions) -> Result<GcReport> {
    journal::require_exclusive_create(repo.storage()).await?;
    let mut report = GcReport::default();
    finalize(repo, opts, &mut report).await?;
    condemn(repo, opts, &mut report).await?;
    let state = finalize(repo, opts, &mut report).await?;
    delete_decided(repo, opts, &state, &mut report).await?;
    cleanup(repo, opts).await?;
    let state = journal::read_latest(repo.storage()).await?;
    let waiting: usize = state.pending.iter().map(|c| c.packs.len()).sum();
    if waiting > 0 {
        let why = waiting_reason(repo, opts, &state).await?;
        report.waiting = Some((waiting, why));
    }
    Ok(report)
}

/// Fresh sessions: each holds back the condemnations newer than its start ([`blocks`]).
async fn blocking_sessions(
    repo: &Repository,
    opts: &GcOptions,
) -> Result<Vec<session::FoundSession>> {
    Ok(session::list(repo.storage())
        .await?
        .into_iter()
        .filter(|s| s.is_fresh(opts.stale_after))
        .collect())
}

fn blocks(sessions: &[session::FoundSession], c: &Condemnation) -> bool {
    sessions
        .iter()
        .any(|s| s.info.as_ref().is_some_and(|i| i.after_epoch < c.epoch))
}

async fn waiting_reason(
    repo: &Repository,
    opts: &GcOptions,
    state: &JournalState,
) -> Result<String> {
    let sessions = blocking_sessions(repo, opts).await?;
    Ok(if state.pending.iter().any(|c| blocks(&sessions, c)) {
        "a push that started before they were condemned is still running".to_string()
    } else {
        format!(
            "the grace period ({}) has not passed",
            humantime::format_duration(opts.grace)
        )
    })
}

/// Phase 1. Returns the journal state after it.
async fn finalize(
    repo: &Repository,
    opts: &GcOptions,
    report: &mut GcReport,
) -> Result<JournalState> {
    for _ in 0..ATTEMPTS {
        let peek = journal::read_latest(repo.storage()).await?;
        let ripe = |c: &Condemnation| journal::grace_elapsed(c, opts.grace);
        if !peek.pending.iter().any(ripe) && peek.committed.is_empty() {
            return Ok(peek);
        }
        // The journal is read (in `scan`) before sessions are listed, and a push writes its
        // session before reading the journal: either we see the push, or it sees the
        // condemnation and does not deduplicate against it.
        let scan = scan(repo, opts).await?;
        let sessions = blocking_sessions(repo, opts).await?;
        let ready =
            |c: &Condemnation| journal::grace_elapsed(c, opts.grace) && !blocks(&sessions, c);
        report.snapshots = scan.live_snapshots.len();
        let mut next = scan.state.clone();
        for c in &scan.committed_settled {
            next.committed.remove(c);
        }
        let (mut kept, mut decided) = (0, 0);
        next.pending.clear();
        for c in &scan.state.pending {
            if !ready(c) {
                next.pending.push(c.clone());
                continue;
            }
            for hex in &c.packs {
                let Some(pack) = Id::from_hex(hex) else {
                    continue;
                };
                if !scan.packs.contains_key(&pack) {
                    continue; // already gone
                }
                if still_needed(&scan, &pack) {
                    kept += 1;
                } else {
                    next.deleting.insert(hex.clone());
                    decided += 1;
                }
            }
            for m in &c.manifests {
                if !scan.live_snapshots.contains(m) {
                    next.deleting_manifests.insert(m.clone());
                }
            }
        }
        if next == scan.state {
            return Ok(next);
        }
        if decided > 0 {
            stop_here_for_tests("finalize-decided");
        }
        match journal::append(repo.storage(), &scan.state, &next).await {
            Ok(epoch) => {
                report.packs_kept += kept;
                tracing::info!("gc journal {epoch}: {decided} pack(s) to delete, {kept} kept");
                next.epoch = epoch;
                return Ok(next);
            }
            Err(AppendError::Conflict(_)) => continue,
            Err(AppendError::Other(e)) => return Err(e),
        }
    }
    bail!("the repository changed too often while gc ran; nothing unsafe was done, try again later")
}

/// True when condemned `pack` holds a live blob that no usable pack also holds.
fn still_needed(scan: &Scan, pack: &Id) -> bool {
    // Never indexed: a push that died (or was stopped) before writing its index.
    scan.entries.get(pack).is_some_and(|entries| {
        entries
            .iter()
            .any(|e| scan.live.contains(&e.id) && !scan.held.contains(&e.id))
    })
}

/// Phase 2.
async fn condemn(repo: &Repository, opts: &GcOptions, report: &mut GcReport) -> Result<()> {
    let storage = repo.storage();
    for _ in 0..ATTEMPTS {
        let scan = scan(repo, opts).await?;
        report.snapshots = scan.live_snapshots.len();
        // Each live blob gets one home among usable packs (the first listed holder).
        let mut home: HashMap<Id, Id> = HashMap::new();
        let mut usable: Vec<&Id> = scan.entries.keys().filter(|p| scan.usable(p)).collect();
        usable.sort();
        for pack in &usable {
            for e in &scan.entries[*pack] {
                if scan.live.contains(&e.id) {
                    home.entry(e.id).or_insert(**pack);
                }
            }
        }
        let mut packs = BTreeSet::new();
        let mut copies = Packer::new(opts.pack_size);
        let mut new_segment = IndexSegment::default();
        let (mut new_bytes, mut rewritten) = (0u64, 0usize);
        let mut listed: Vec<(&Id, &u64)> = scan.packs.iter().collect();
        listed.sort();
        for (pack, &size) in listed {
            if !scan.usable(pack) {
                continue;
            }
            let here: Vec<PackEntry> = scan
                .entries
                .get(pack)
                .map(|es| {
                    es.iter()
                        .filter(|e| home.get(&e.id) == Some(pack))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let live_bytes: u64 = here.iter().map(|e| e.stored_len as u64).sum();
            if here.is_empty() {
                packs.insert(pack.to_hex());
            } else if size.saturating_sub(live_bytes) * 100 > size * opts.repack_dead_pct as u64 {
                let key = pack_key(pack);
                let bytes = storage
                    .get(&key)
                    .await
                    .with_context(|| format!("cannot read pack {key}"))?;
                if Id::of(&bytes) != *pack {
                    bail!("gc stopped: pack {key} is corrupt (its content does not match its name); nothing was deleted (run `kando repo repair`)");
                }
                for e in &here {
                    let stored = bytes
                        .get(e.offset as usize..(e.offset + e.stored_len) as usize)
                        .ok_or_else(|| {
                            anyhow!("gc stopped: pack {key} is shorter than its index says")
                        })?;
                    if let Some(full) = copies.seal_before(stored.len()) {
                        new_bytes += flush_pack(repo, full, &mut new_segment).await?;
                    }
                    copies.add(e.id, e.codec, e.raw_len, stored);
                }
                packs.insert(pack.to_hex());
                rewritten += 1;
            }
        }
        if let Some(last) = copies.finish() {
            new_bytes += flush_pack(repo, last, &mut new_segment).await?;
        }
        // A copy may land under the name of a pack just condemned (an earlier gc died
        // after writing it, unindexed): what the new index references stays.
        for (p, _) in &new_segment.packs {
            packs.remove(&p.to_hex());
        }
        let condemned_manifests = scan.state.pending.iter().flat_map(|c| c.manifests.iter());
        let condemned_manifests: HashSet<&String> = condemned_manifests.collect();
        let mut manifests = BTreeSet::new();
        for m in storage.list("snapshots/").await? {
            let id = m.key.trim_start_matches("snapshots/").to_string();
            if !scan.live_snapshots.contains(&id)
                && !condemned_manifests.contains(&id)
                && !scan.state.deleting_manifests.contains(&id)
            {
                manifests.insert(id);
            }
        }
        if packs.is_empty() && manifests.is_empty() {
            return Ok(());
        }
        for part in new_segment.split(opts.segment_entries) {
            new_bytes += repo.write_index_segment(&part).await?.1;
        }
        stop_here_for_tests("condemn-decided");
        let mut next = scan.state.clone();
        next.pending.push(Condemnation {
            epoch: scan.state.epoch + 1,
            time_ns: journal::now_ns(),
            packs: packs.clone(),
            manifests,
        });
        match journal::append(storage, &scan.state, &next).await {
            Ok(_) => {
                report.packs_condemned += packs.len();
                report.packs_rewritten += rewritten;
                report.bytes_freed = report.bytes_freed.saturating_sub(new_bytes);
                return Ok(());
            }
            // The copies stay as harmless duplicates; the next scan condemns them.
            Err(AppendError::Conflict(_)) => continue,
            Err(AppendError::Other(e)) => return Err(e),
        }
    }
    bail!("the repository changed too often while gc ran; nothing unsafe was done, try again later")
}

/// Phase 3: carries out `deleting`. Safe to repeat and to run concurrently.
async fn delete_decided(
    repo: &Repository,
    opts: &GcOptions,
    state: &JournalState,
    report: &mut GcReport,
) -> Result<()> {
    let storage = repo.storage();
    if state.deleting.is_empty() && state.deleting_manifests.is_empty() {
        return Ok(());
    }
    stop_here_for_tests("deleting");
    let listed = repo.list_packs().await?;
    // The merged index first, so no entry is left pointing at a pack about to go.
    let mut merged = IndexSegment::default();
    let mut by_pack: HashMap<Id, Vec<PackEntry>> = HashMap::new();
    let mut segment_keys = Vec::new();
    repo.for_each_index_segment(false, |key, seg| {
        segment_keys.push(key);
        for (pack, es) in seg.packs {
            by_pack.entry(pack).or_default().extend(es);
        }
    })
    .await?;
    let mut kept: Vec<(Id, Vec<PackEntry>)> = by_pack
        .into_iter()
        .filter(|(p, _)| listed.contains_key(p) && !state.deleting.contains(&p.to_hex()))
        .collect();
    kept.sort_by_key(|(p, _)| *p);
    for (pack, mut es) in kept {
        let mut seen = HashSet::new();
        es.retain(|e| seen.insert(e.id));
        merged.packs.push((pack, es));
    }
    let mut written = HashSet::new();
    for part in merged.split(opts.segment_entries) {
        written.insert(repo.write_index_segment(&part).await?.0);
    }
    for key in &segment_keys {
        if !written.contains(key) {
            storage
                .delete(key)
                .await
                .with_context(|| format!("cannot delete {key}"))?;
            report.segments_merged += 1;
        }
    }
    for hex in &state.deleting {
        let Some(pack) = Id::from_hex(hex) else {
            continue;
        };
        if let Some(size) = listed.get(&pack) {
            match storage.delete(&pack_key(&pack)).await {
                Ok(()) => {
                    report.packs_deleted += 1;
                    report.bytes_freed += size;
                }
                // Object Lock retention and the like: reported, never fatal.
                Err(e) => tracing::warn!("pack {} not deleted: {e}", pack_key(&pack)),
            }
        }
    }
    for id in &state.deleting_manifests {
        if storage.head(&manifest_key(id)).await?.is_some() {
            match storage.delete(&manifest_key(id)).await {
                Ok(()) => report.manifests_removed += 1,
                Err(e) => tracing::warn!("manifest {id} not deleted: {e}"),
            }
        }
    }
    // Forget what is gone (best effort: a conflict leaves it to the next run).
    let now = journal::read_latest(storage).await?;
    let listed = repo.list_packs().await?;
    let mut next = now.clone();
    next.deleting
        .retain(|hex| Id::from_hex(hex).is_some_and(|p| listed.contains_key(&p)));
    let mut gone_manifests = Vec::new();
    for id in &now.deleting_manifests {
        if storage.head(&manifest_key(id)).await?.is_none() {
            gone_manifests.push(id.clone());
        }
    }
    for id in gone_manifests {
        next.deleting_manifests.remove(&id);
    }
    if next != now {
        match journal::append(storage, &now, &next).await {
            Ok(_) | Err(AppendError::Conflict(_)) => {}
            Err(AppendError::Other(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Leftovers that hold nothing: stale sessions, locks of older versions, dead writers'
/// temporary files, old journal records.
async fn cleanup(repo: &Repository, opts: &GcOptions) -> Result<()> {
    let storage = repo.storage();
    for s in session::list(storage).await? {
        if !s.is_fresh(opts.stale_after) {
            storage.delete(&s.key).await?;
        }
    }
    for l in storage.list("locks/").await? {
        storage.delete(&l.key).await?;
    }
    storage.cleanup_incomplete(opts.stale_after).await?;
    journal::remove_stale_probes(storage, journal::PROBE_LEFTOVER_AGE).await?;
    journal::compact(storage).await
}

/// Adds every blob id a manifest references (chunks, recipe blocks and chunk-list blocks) to `live`,
/// walking the chunk list with the same reader pull and verify use.
async fn collect_live(
    repo: &Repository,
    index: &Index,
    m: &Manifest,
    live: &mut HashSet<Id>,
) -> Result<()> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        let blocks = std::cell::RefCell::new(Vec::new());
        let fetch = |block: &Id| {
            blocks.borrow_mut().push(*block);
            handle.block_on(repo.read_blob(index, block))
        };
        // A recompressed snapshot's recipes are blobs it needs like its chunks.
        for tree in m.trees() {
            for chunk in ChunkListReader::new(tree, &fetch)? {
                let chunk = chunk?;
                if index.get(&chunk).is_none() {
                    bail!("chunk {chunk} is in no pack that exists");
                }
                live.insert(chunk);
            }
        }
        live.extend(blocks.into_inner());
        Ok(())
    })
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
