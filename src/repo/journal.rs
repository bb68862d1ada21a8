//! The gc journal: the one place where deletions and commits are ordered.
//!
//! Every change that matters for safety appends a record `journal/<epoch>` with
//! create-if-absent, so records form one linear history: two writers that read the same
//! latest record race for the same next key and exactly one wins; the loser re-reads and
//! decides again. Each record carries the whole state (what is condemned, what is being
//! deleted, which snapshots committed since gc last looked), so a reader needs only the
//! newest one.
//!
//! - gc appends a *condemnation*: packs and manifests nothing live needs, as of its scan.
//! - gc later appends a *finalization*: of the condemned, those still unneeded (rescanned
//!   after reading the journal) move to `deleting`; only then does it delete them.
//! - push appends a *commit* of its manifest, after checking that nothing it references is
//!   in `deleting` or gone. Either the commit lands first (and the finalization, re-read,
//!   sees the snapshot as live) or the finalization lands first (and the commit, re-read,
//!   sees the deletion and fails). No lock, clock, pid or host name decides this.
//!
//! Old records are compacted away, which leaves free keys a paused writer could fill. So
//! compaction first writes a checkpoint `journal/checkpoint-<epoch>` and only then deletes
//! the records up to it, and every append is followed by a listing: a record at or below
//! the highest checkpoint filled a hole, is void, and its writer acts as if the append had
//! failed. (Records newer than one's own are fine: they were built on it.)

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ids::Id;
use crate::storage::DynStorage;

/// Prefix of journal records.
pub const JOURNAL_PREFIX: &str = "journal/";
/// Records kept behind the newest (older ones are compacted away).
const KEEP_RECORDS: u64 = 64;
/// Prefix of checkpoint markers within the journal.
const CHECKPOINT_PREFIX: &str = "journal/checkpoint-";

/// Prefix of the keys [`require_exclusive_create`] writes (and deletes again).
const PROBE_PREFIX: &str = "probes/";

/// Why gc cannot run on this store.
#[derive(Debug, thiserror::Error)]
#[error("garbage collection needs a store whose conditional writes have one winner, and at {0} conditional creates (`If-None-Match: *`) did not have one (a second create of one key, or several racing ones, succeeded); nothing was deleted. Snapshots still push and restore here; to reclaim space use a store that honours conditional writes (AWS S3, Ceph RGW, MinIO, GCS, Azure, a local directory)")]
pub struct NotExclusive(pub String);

/// Fails with [`NotExclusive`] unless create-if-absent has one winner on this store: the
/// journal's linear history, and with it every deletion decision, rests on that. Asked
/// of the store itself each run (keys under `probes/`, ~60 requests, 12 MiB written and
/// deleted again), never assumed.
pub async fn require_exclusive_create(storage: &DynStorage) -> Result<()> {
    // The time only lets a later gc remove what a killed probe left.
    let prefix = format!("{PROBE_PREFIX}{}-{:016x}", now_ns(), rand::random::<u64>());
    let exclusive = storage
        .probe_exclusive_create(&prefix)
        .await
        .context("cannot check that the store's conditional writes have one winner")?;
    if !exclusive {
        return Err(NotExclusive(storage.describe()).into());
    }
    Ok(())
}

/// Age by their names after which probe keys are leftovers of a killed probe (a probe
/// takes seconds). Fixed, not `--lock-stale-after`: with that at 0, a gc removed the keys
/// of a delete's probe running beside it, and that probe failed (chaos test on RGW).
pub const PROBE_LEFTOVER_AGE: Duration = Duration::from_secs(3600);

/// Removes what probes killed midway left behind, once older than `older_than` by their
/// names. A probe still running that this removes (a skewed clock) just fails, and its gc
/// refuses: safe.
pub async fn remove_stale_probes(storage: &DynStorage, older_than: Duration) -> Result<()> {
    let cutoff = now_ns().saturating_sub(older_than.as_nanos() as u64);
    for m in storage.list(PROBE_PREFIX).await? {
        let started = m.key[PROBE_PREFIX.len()..]
            .split('-')
            .next()
            .and_then(|t| t.parse::<u64>().ok());
        if started.is_none_or(|t| t < cutoff) {
            storage.delete(&m.key).await?;
        }
    }
    Ok(())
}

/// Nanoseconds since the epoch by this host's clock (used only to decide *when*, never
/// *whether*: see the grace period).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Packs and manifests proposed for deletion by one gc scan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Condemnation {
    /// The epoch of the record that condemned them.
    pub epoch: u64,
    /// When, by the condemning gc's clock (the grace period counts from here).
    pub time_ns: u64,
    /// Pack ids (hex).
    pub packs: BTreeSet<String>,
    /// Manifest (snapshot) ids without a ref.
    pub manifests: BTreeSet<String>,
}

/// A snapshot committed through the journal whose ref gc has not yet seen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Committed {
    /// Snapshot id.
    pub id: String,
    /// When it committed, by the pusher's clock.
    pub time_ns: u64,
}

/// The whole state, as of one record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JournalState {
    /// This record's number; 0 for an empty journal.
    pub epoch: u64,
    /// Proposals waiting for their grace period and for older pushes to end.
    #[serde(default)]
    pub pending: Vec<Condemnation>,
    /// Packs decided dead: never referenced again, deleted by whoever finds them.
    #[serde(default)]
    pub deleting: BTreeSet<String>,
    /// Manifests decided dead.
    #[serde(default)]
    pub deleting_manifests: BTreeSet<String>,
    /// Snapshots committed since gc last saw their refs: live even before their ref exists.
    #[serde(default)]
    pub committed: BTreeSet<Committed>,
}

impl JournalState {
    /// True when pack `hex` is condemned or being deleted.
    pub fn pack_is_condemned(&self, hex: &str) -> bool {
        self.deleting.contains(hex) || self.pending.iter().any(|c| c.packs.contains(hex))
    }

    /// True when pack `hex` is decided dead.
    pub fn pack_is_deleting(&self, hex: &str) -> bool {
        self.deleting.contains(hex)
    }
}

/// Preference among copies of a blob when reading: usable packs first, then condemned
/// ones still present, packs that are gone last.
pub fn read_rank(state: &JournalState, listed: &HashMap<Id, u64>, pack: &Id) -> Option<u8> {
    if !listed.contains_key(pack) {
        // Kept last, so that a read of a blob found nowhere else names the missing pack.
        return Some(3);
    }
    let hex = pack.to_hex();
    Some(if state.pack_is_deleting(&hex) {
        2
    } else if state.pack_is_condemned(&hex) {
        1
    } else {
        0
    })
}

fn record_key(epoch: u64) -> String {
    format!("{JOURNAL_PREFIX}{epoch:020}")
}

fn parse_record_key(key: &str) -> Option<u64> {
    let rest = key.strip_prefix(JOURNAL_PREFIX)?;
    if rest.len() != 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Every record number present, ascending, and the highest checkpoint (0: none).
async fn list_journal(storage: &DynStorage) -> Result<(Vec<u64>, u64)> {
    let listed = storage
        .list(JOURNAL_PREFIX)
        .await
        .context("cannot list the gc journal")?;
    let mut epochs: Vec<u64> = listed
        .iter()
        .filter_map(|m| parse_record_key(&m.key))
        .collect();
    epochs.sort_unstable();
    let checkpoint = listed
        .iter()
        .filter_map(|m| m.key.strip_prefix(CHECKPOINT_PREFIX)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok((epochs, checkpoint))
}

/// Every record number present, ascending.
async fn list_epochs(storage: &DynStorage) -> Result<Vec<u64>> {
    Ok(list_journal(storage).await?.0)
}

/// The newest record's number (0: empty journal).
pub async fn latest_epoch(storage: &DynStorage) -> Result<u64> {
    Ok(list_epochs(storage).await?.last().copied().unwrap_or(0))
}

/// The newest state. Reads need no write access.
pub async fn read_latest(storage: &DynStorage) -> Result<JournalState> {
    for _ in 0..16 {
        let Some(&epoch) = list_epochs(storage).await?.last() else {
            return Ok(JournalState::default());
        };
        let key = record_key(epoch);
        match storage.get(&key).await {
            Ok(bytes) => {
                let mut state: JournalState = serde_json::from_slice(&bytes).map_err(|e| {
                    anyhow!("gc journal record {key} is damaged ({e}); run `kando repo repair`")
                })?;
                state.epoch = epoch;
                return Ok(state);
            }
            // A newer record appeared and this one was compacted meanwhile: look again.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {key}")),
        }
    }
    bail!("the gc journal changed too often while being read; try again")
}

/// Why an append did not land.
#[derive(Debug, thiserror::Error)]
#[error("another writer changed the gc journal first")]
pub struct Conflict;

/// Appends `next` after `base` (the state it was computed from). `Err(Conflict)` when
/// another record landed first: re-read and decide again.
pub async fn append(
    storage: &DynStorage,
    base: &JournalState,
    next: &JournalState,
) -> Result<u64, AppendError> {
    let epoch = base.epoch + 1;
    let mut body = next.clone();
    body.epoch = epoch;
    let bytes = serde_json::to_vec(&body).expect("journal state serialises");
    let landed = storage
        .put_if_absent(&record_key(epoch), Bytes::from(bytes))
        .await
        .map_err(|e| AppendError::Other(anyhow!(e).context("cannot append to the gc journal")))?;
    if !landed {
        return Err(AppendError::Conflict(Conflict));
    }
    // Void if compaction had already passed this epoch: we wrote into a hole.
    let (_, checkpoint) = list_journal(storage).await.map_err(AppendError::Other)?;
    if epoch <= checkpoint {
        let _ = storage.delete(&record_key(epoch)).await;
        return Err(AppendError::Conflict(Conflict));
    }
    Ok(epoch)
}

/// What [`append`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Lost the race: re-read and retry.
    #[error(transparent)]
    Conflict(Conflict),
    /// Storage failed.
    #[error(transparent)]
    Other(anyhow::Error),
}

/// Removes records older than the newest few: a checkpoint first, then what it covers.
/// Never the newest record: readers rely on it.
pub async fn compact(storage: &DynStorage) -> Result<()> {
    let (epochs, checkpoint) = list_journal(storage).await?;
    let Some(&newest) = epochs.last() else {
        return Ok(());
    };
    let upto = newest.saturating_sub(KEEP_RECORDS).max(checkpoint);
    if upto > checkpoint {
        storage
            .put(&format!("{CHECKPOINT_PREFIX}{upto:020}"), Bytes::new())
            .await
            .context("cannot write a gc journal checkpoint")?;
    }
    for e in epochs.into_iter().filter(|&e| e <= upto) {
        storage
            .delete(&record_key(e))
            .await
            .with_context(|| format!("cannot remove old journal record {}", record_key(e)))?;
    }
    // Older checkpoints say nothing the newest does not.
    for m in storage.list(CHECKPOINT_PREFIX).await? {
        let older = m.key[CHECKPOINT_PREFIX.len()..]
            .parse::<u64>()
            .is_ok_and(|c| c < upto);
        if older {
            storage.delete(&m.key).await?;
        }
    }
    Ok(())
}

/// True when condemnation `c` is older than `grace` by this host's clock.
pub fn grace_elapsed(c: &Condemnation, grace: Duration) -> bool {
    now_ns().saturating_sub(c.time_ns) >= grace.as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use std::sync::Arc;

    #[tokio::test]
    async fn appends_are_linear_and_losers_conflict() {
        let s: DynStorage = Arc::new(MemoryStorage::new());
        let base = read_latest(&s).await.unwrap();
        assert_eq!(base.epoch, 0);
        let mut a = base.clone();
        a.deleting.insert("aa".into());
        let mut b = base.clone();
        b.deleting.insert("bb".into());
        assert_eq!(append(&s, &base, &a).await.unwrap(), 1);
        assert!(matches!(
            append(&s, &base, &b).await,
            Err(AppendError::Conflict(_))
        ));
        let now = read_latest(&s).await.unwrap();
        assert_eq!(now.epoch, 1);
        assert!(now.deleting.contains("aa") && !now.deleting.contains("bb"));
    }

    #[tokio::test]
    async fn a_stale_writer_filling_a_compacted_hole_is_void() {
        let s: DynStorage = Arc::new(MemoryStorage::new());
        let stale = read_latest(&s).await.unwrap();
        let mut cur = stale.clone();
        for _ in 0..(KEEP_RECORDS + 8) {
            let e = append(&s, &cur, &cur).await.unwrap();
            cur = read_latest(&s).await.unwrap();
            assert_eq!(cur.epoch, e);
        }
        compact(&s).await.unwrap();
        assert!(s.head(&record_key(1)).await.unwrap().is_none());
        // The stale writer's key (1) is free again, but its record must not count.
        let mut evil = stale.clone();
        evil.deleting.insert("lost".into());
        assert!(matches!(
            append(&s, &stale, &evil).await,
            Err(AppendError::Conflict(_))
        ));
        let now = read_latest(&s).await.unwrap();
        assert_eq!(now.epoch, KEEP_RECORDS + 8);
        assert!(!now.deleting.contains("lost"));
    }

    #[tokio::test]
    async fn gc_probes_the_store_and_leaves_only_fresh_probes_of_others() {
        let s: DynStorage = Arc::new(MemoryStorage::new());
        require_exclusive_create(&s).await.unwrap();
        assert_eq!(s.list(PROBE_PREFIX).await.unwrap(), vec![]);
        let fresh = format!("{PROBE_PREFIX}{}-01/race-0", now_ns());
        for key in ["probes/1-02/race-1", "probes/unnamed", fresh.as_str()] {
            s.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        remove_stale_probes(&s, Duration::from_secs(300))
            .await
            .unwrap();
        let left: Vec<String> = s
            .list(PROBE_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(left, vec![fresh]);
    }

    #[tokio::test]
    async fn a_record_others_built_on_stays_valid() {
        let s: DynStorage = Arc::new(MemoryStorage::new());
        let base = read_latest(&s).await.unwrap();
        let mut mine = base.clone();
        mine.deleting.insert("p".into());
        append(&s, &base, &mine).await.unwrap();
        let after = read_latest(&s).await.unwrap();
        append(&s, &after, &after).await.unwrap();
        compact(&s).await.unwrap();
        let (epochs, checkpoint) = list_journal(&s).await.unwrap();
        assert_eq!((epochs, checkpoint), (vec![1, 2], 0));
        assert!(read_latest(&s).await.unwrap().deleting.contains("p"));
    }
}
