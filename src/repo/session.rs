//! Writer sessions: a *liveness hint*, never a safety mechanism.
//!
//! A push announces itself with `sessions/<random instance id>`, saying which journal
//! epoch it started from, and refreshes it while it runs. gc does not finalize a
//! condemnation while a fresh session that started before it exists, so a push that is
//! merely slow is not made to fail. A session that stops refreshing (a crashed, killed,
//! frozen or partitioned push) is ignored and removed; if its push comes back it is the
//! journal's commit check (see `journal.rs`) that stops it, not this file. Unparseable
//! session objects are ignored like stale ones.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::journal::now_ns;
use crate::storage::DynStorage;

/// Prefix of session objects.
pub const SESSIONS_PREFIX: &str = "sessions/";

/// Default time after which an unrefreshed session is ignored.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(300);

/// The body of a session object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Random id of the process instance (never a pid: pids repeat across namespaces).
    pub instance: String,
    /// Host name, for operators only.
    pub host: String,
    /// What it is doing ("push").
    pub purpose: String,
    /// The newest journal epoch it had seen before announcing itself.
    pub after_epoch: u64,
    /// Last refresh, ns since the epoch, by the holder's clock.
    pub refreshed_ns: u64,
}

/// Host name as shown in sessions and manifests (never used to judge liveness), read once.
pub fn hostname() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".to_string())
    })
    .clone()
}

/// A session this process holds, refreshed in the background until ended.
#[derive(Debug)]
pub struct Session {
    storage: DynStorage,
    key: String,
    refresher: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Announces a session that has seen the journal up to `after_epoch`.
    pub async fn begin(
        storage: &DynStorage,
        purpose: &str,
        after_epoch: u64,
        stale_after: Duration,
    ) -> Result<Session> {
        let instance = hex::encode(rand::random::<[u8; 16]>());
        let key = format!("{SESSIONS_PREFIX}{instance}");
        let info = SessionInfo {
            instance,
            host: hostname(),
            purpose: purpose.to_string(),
            after_epoch,
            refreshed_ns: now_ns(),
        };
        storage
            .put(&key, Bytes::from(serde_json::to_vec(&info)?))
            .await
            .with_context(|| format!("cannot write session {key}"))?;
        let refresher = {
            let (storage, key) = (storage.clone(), key.clone());
            let every = (stale_after / 4).max(Duration::from_millis(100));
            tokio::spawn(async move {
                let mut info = info;
                loop {
                    tokio::time::sleep(every).await;
                    info.refreshed_ns = now_ns();
                    let body = Bytes::from(serde_json::to_vec(&info).expect("serialises"));
                    if let Err(e) = storage.put(&key, body).await {
                        tracing::warn!("cannot refresh session {key}: {e}");
                    }
                }
            })
        };
        Ok(Session {
            storage: storage.clone(),
            key,
            refresher,
        })
    }

    /// Stops refreshing and removes the session (best effort: a leftover goes stale).
    pub async fn end(self) {
        self.refresher.abort();
        if let Err(e) = self.storage.delete(&self.key).await {
            tracing::warn!("cannot remove session {}: {e}", self.key);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// A session found in the repository.
#[derive(Debug, Clone)]
pub struct FoundSession {
    /// Its key.
    pub key: String,
    /// Its body; `None` when unreadable (treated as stale).
    pub info: Option<SessionInfo>,
}

impl FoundSession {
    /// True while it still keeps gc from finalizing condemnations newer than its start.
    pub fn is_fresh(&self, stale_after: Duration) -> bool {
        match &self.info {
            Some(i) => now_ns().saturating_sub(i.refreshed_ns) <= stale_after.as_nanos() as u64,
            None => false,
        }
    }
}

/// Every session object.
pub async fn list(storage: &DynStorage) -> Result<Vec<FoundSession>> {
    let listed = storage
        .list(SESSIONS_PREFIX)
        .await
        .context("cannot list sessions")?;
    let mut out = Vec::new();
    for meta in listed {
        let info = match storage.get(&meta.key).await {
            Ok(b) => serde_json::from_slice::<SessionInfo>(&b).ok(),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e).context("cannot read a session"),
        };
        out.push(FoundSession {
            key: meta.key,
            info,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use std::sync::Arc;

    #[tokio::test]
    async fn sessions_are_listed_fresh_until_they_end() {
        let s: DynStorage = Arc::new(MemoryStorage::new());
        let session = Session::begin(&s, "push", 7, Duration::from_secs(60))
            .await
            .unwrap();
        let found = list(&s).await.unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].is_fresh(Duration::from_secs(60)));
        assert_eq!(found[0].info.as_ref().unwrap().after_epoch, 7);
        session.end().await;
        assert!(list(&s).await.unwrap().is_empty());
        s.put("sessions/garbage", Bytes::from_static(b"{not json"))
            .await
            .unwrap();
        assert!(!list(&s).await.unwrap()[0].is_fresh(Duration::from_secs(3600)));
    }
}
