//! Repository locks: push and pull hold shared locks, garbage collection an exclusive one.
//!
//! A lock is an object `locks/<shared|exclusive>-<random>` whose JSON body says who holds
//! it and when it was last refreshed. Both sides write their lock first and then look for
//! the other kind, so with a store that lists what it has written (S3 and local
//! directories do) at least one of two racing parties sees the other:
//! - gc sees a shared lock → it removes its own lock and defers;
//! - push/pull sees an exclusive lock → it keeps its shared lock and waits for gc to end
//!   (gc never starts after seeing the shared lock, so the wait is bounded by one gc).
//!
//! A held lock is refreshed every `stale_after / 4`. A lock is stale (ignored, and removed
//! by gc) when its refresh time is older than `stale_after` (clocks must agree to well
//! within that), or at once when its owner is a dead process on this same host.
//! A holder checks before committing that its last refresh is recent, so a push that lost
//! its lock (a stalled pod) fails instead of committing over data gc may have removed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::DynStorage;

/// Default time after which an unrefreshed lock is stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(300);

/// Which kind of lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Push, pull, verify: many at once.
    Shared,
    /// Garbage collection: alone.
    Exclusive,
}

impl LockKind {
    fn prefix(self) -> &'static str {
        match self {
            LockKind::Shared => "locks/shared-",
            LockKind::Exclusive => "locks/exclusive-",
        }
    }
}

/// Timing of locks; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct LockTiming {
    /// An unrefreshed lock is stale after this long.
    pub stale_after: Duration,
    /// Longest wait for an exclusive lock to go away (push/pull) or for shared locks to
    /// go away (an explicit `repo gc`).
    pub wait: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            stale_after: DEFAULT_STALE_AFTER,
            wait: Duration::from_secs(600),
        }
    }
}

/// The body of a lock object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    /// Host of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// Start time of that process (from /proc), to tell a reused pid from the holder.
    pub pid_start: u64,
    /// What it is doing ("push", "pull", "gc", …).
    pub purpose: String,
    /// Last refresh, ns since the epoch, by the holder's clock.
    pub refreshed_ns: u64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Host name as used in locks and manifests.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Start time (clock ticks since boot) of process `pid`, if it is alive.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; the command name (field 2) may contain spaces, so count after its ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None; // a zombie holds nothing
    }
    fields.get(19)?.parse().ok()
}

impl LockInfo {
    fn mine(purpose: &str) -> LockInfo {
        let pid = std::process::id();
        LockInfo {
            host: hostname(),
            pid,
            pid_start: process_start(pid).unwrap_or(0),
            purpose: purpose.to_string(),
            refreshed_ns: now_ns(),
        }
    }

    /// True when this lock no longer protects anything.
    pub fn is_stale(&self, stale_after: Duration) -> bool {
        if self.host == hostname() && process_start(self.pid) != Some(self.pid_start) {
            return true; // its process on this host is gone
        }
        now_ns().saturating_sub(self.refreshed_ns) > stale_after.as_nanos() as u64
    }
}

/// A lock found in the repository.
#[derive(Debug, Clone)]
pub struct FoundLock {
    /// Its key.
    pub key: String,
    /// Its body, or `None` when unreadable (counted as live until old enough to judge:
    /// an unreadable lock is treated as stale only by [`list_locks`]'s caller choice).
    pub info: Option<LockInfo>,
}

/// Every lock of `kind` that is not stale. Stale ones are returned separately.
pub async fn list_locks(
    storage: &DynStorage,
    kind: LockKind,
    stale_after: Duration,
) -> Result<(Vec<FoundLock>, Vec<FoundLock>)> {
    let listed = storage
        .list(kind.prefix())
        .await
        .context("cannot list locks")?;
    let (mut live, mut stale) = (Vec::new(), Vec::new());
    for meta in listed {
        let info = match storage.get(&meta.key).await {
            Ok(b) => serde_json::from_slice::<LockInfo>(&b).ok(),
            Err(e) if e.is_not_found() => continue, // released meanwhile
            Err(e) => return Err(e).context("cannot read a lock"),
        };
        let found = FoundLock {
            key: meta.key,
            info,
        };
        match &found.info {
            Some(i) if !i.is_stale(stale_after) => live.push(found),
            // A lock we cannot parse is from a newer or broken writer: respect it.
            None => live.push(found),
            Some(_) => stale.push(found),
        }
    }
    Ok((live, stale))
}

/// A lock this process holds; refreshed in the background until released.
#[derive(Debug)]
pub struct HeldLock {
    storage: DynStorage,
    key: String,
    last_refresh_ns: Arc<AtomicU64>,
    refresher: tokio::task::JoinHandle<()>,
    stale_after: Duration,
}

impl HeldLock {
    async fn write(
        storage: &DynStorage,
        kind: LockKind,
        purpose: &str,
        stale_after: Duration,
    ) -> Result<HeldLock> {
        let key = format!(
            "{}{}",
            kind.prefix(),
            hex::encode(rand::random::<[u8; 8]>())
        );
        let info = LockInfo::mine(purpose);
        storage
            .put(&key, Bytes::from(serde_json::to_vec(&info)?))
            .await
            .with_context(|| format!("cannot write lock {key}"))?;
        let last_refresh_ns = Arc::new(AtomicU64::new(info.refreshed_ns));
        let refresher = {
            let (storage, key, last) = (storage.clone(), key.clone(), last_refresh_ns.clone());
            let every = (stale_after / 4).max(Duration::from_millis(200));
            tokio::spawn(async move {
                let mut info = info;
                loop {
                    tokio::time::sleep(every).await;
                    info.refreshed_ns = now_ns();
                    let body =
                        Bytes::from(serde_json::to_vec(&info).expect("lock info serialises"));
                    match storage.put(&key, body).await {
                        Ok(()) => last.store(info.refreshed_ns, Ordering::Relaxed),
                        Err(e) => tracing::warn!("cannot refresh lock {key}: {e}"),
                    }
                }
            })
        };
        Ok(HeldLock {
            storage: storage.clone(),
            key,
            last_refresh_ns,
            refresher,
            stale_after,
        })
    }

    /// Takes a shared lock, waiting up to `timing.wait` for a running gc to finish.
    pub async fn shared(
        storage: &DynStorage,
        purpose: &str,
        timing: LockTiming,
    ) -> Result<HeldLock> {
        let lock = Self::write(storage, LockKind::Shared, purpose, timing.stale_after).await?;
        let deadline = tokio::time::Instant::now() + timing.wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let (exclusive, _) =
                list_locks(storage, LockKind::Exclusive, timing.stale_after).await?;
            if exclusive.is_empty() {
                return Ok(lock);
            }
            if tokio::time::Instant::now() >= deadline {
                lock.release().await;
                bail!(
                    "the repository is locked by garbage collection ({}) for more than {:?}; try again later",
                    exclusive[0].key,
                    timing.wait
                );
            }
            tracing::info!(
                "waiting for garbage collection to finish ({})",
                exclusive[0].key
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Tries to take the exclusive lock once. `Ok(None)` when a push, pull or another gc
    /// holds the repository (the caller defers).
    pub async fn try_exclusive(
        storage: &DynStorage,
        purpose: &str,
        stale_after: Duration,
    ) -> Result<Option<HeldLock>> {
        let lock = Self::write(storage, LockKind::Exclusive, purpose, stale_after).await?;
        let (shared, _) = list_locks(storage, LockKind::Shared, stale_after).await?;
        let (exclusive, _) = list_locks(storage, LockKind::Exclusive, stale_after).await?;
        if shared.is_empty() && exclusive.iter().all(|l| l.key == lock.key) {
            return Ok(Some(lock));
        }
        lock.release().await;
        Ok(None)
    }

    /// Takes the exclusive lock, retrying until `timing.wait` has passed.
    pub async fn exclusive(
        storage: &DynStorage,
        purpose: &str,
        timing: LockTiming,
    ) -> Result<Option<HeldLock>> {
        let deadline = tokio::time::Instant::now() + timing.wait;
        let mut pause = Duration::from_millis(100);
        loop {
            if let Some(lock) = Self::try_exclusive(storage, purpose, timing.stale_after).await? {
                return Ok(Some(lock));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Fails when the lock may have been judged stale by others: called before a commit.
    pub fn ensure_fresh(&self) -> Result<()> {
        let age = now_ns().saturating_sub(self.last_refresh_ns.load(Ordering::Relaxed));
        if age > (self.stale_after / 2).as_nanos() as u64 {
            bail!(
                "lost the repository lock {} (not refreshed for {:.0} s); nothing was committed",
                self.key,
                age as f64 / 1e9
            );
        }
        Ok(())
    }

    /// Stops refreshing and deletes the lock (best effort: a leftover lock goes stale).
    pub async fn release(self) {
        self.refresher.abort();
        if let Err(e) = self.storage.delete(&self.key).await {
            tracing::warn!("cannot remove lock {}: {e}", self.key);
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    fn timing() -> LockTiming {
        LockTiming {
            stale_after: Duration::from_secs(60),
            wait: Duration::from_millis(300),
        }
    }

    #[tokio::test]
    async fn gc_defers_to_shared_locks() {
        let s: DynStorage = Arc::new(MemoryStorage::new());
        let push = HeldLock::shared(&s, "push", timing()).await.unwrap();
        assert!(HeldLock::try_exclusive(&s, "gc", timing().stale_after)
            .await
            .unwrap()
            .is_none());
        push.release().await;
        let gc = HeldLock::try_exclusive(&s, "gc", timing().stale_after)
            .await
            .unwrap()
            .expect("idle repo");
        // A push waits for gc and gives up after its wait.
        let err = HeldLock::shared(&s, "push", timing()).await.unwrap_err();
        assert!(err.to_string().contains("garbage collection"), "{err}");
        gc.release().await;
        assert!(
            s.list("locks/").await.unwrap().is_empty(),
            "released locks are removed"
        );
    }

    #[tokio::test]
    async fn dead_or_old_holders_are_stale() {
        let mut info = LockInfo::mine("push");
        assert!(!info.is_stale(Duration::from_secs(60)));
        info.refreshed_ns -= 120_000_000_000;
        assert!(info.is_stale(Duration::from_secs(60)));
        let mut dead = LockInfo::mine("push");
        dead.pid_start += 1; // same pid, another process
        assert!(dead.is_stale(Duration::from_secs(60)));
    }
}
