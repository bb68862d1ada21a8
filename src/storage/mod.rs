//! Storage backends: the bottom layer. One small async trait, [`Storage`], and one
//! implementation per kind of store. Nothing here knows about packs, snapshots or the CLI.
//!
//! What every backend shares lives beside the trait: [`error`] (typed errors),
//! [`keys`] (key syntax and the root prefix), [`retry`] (attempts, backoff, timeouts),
//! [`body`] (length and range checks of an HTTP answer), [`tls`] (SkipSSLVerify). A
//! backend file holds only its protocol: its requests and its error mapping.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub mod azure;
pub mod body;
pub mod error;
pub mod gcs;
pub mod http;
pub mod keys;
pub mod local;
pub mod memory;
pub mod retry;
pub mod s3;
pub mod tls;

pub use error::{StorageError, StorageResult};

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the backend's root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// An object store rooted at one repository directory.
///
/// # Contract
/// Every backend keeps these promises; the repository's commit protocol and gc safety
/// (ARCHITECTURE.md) rest on them, and `tests/common/conformance.rs` checks them on each.
///
/// - **Keys** follow [`keys::validate`]: non-empty, `/`-separated, no empty, `.` or `..`
///   component, no NUL. Any other key is refused with [`StorageError::InvalidKey`]
///   before anything is sent or written.
/// - **Atomic writes**: a reader sees nothing or the whole object under its key, never a
///   part of it, even if the writer dies mid-write.
/// - **Durability**: when a write returns `Ok`, the object survives a crash of the
///   writer's machine (the local backend fsyncs the file, then its directory after the
///   rename; object stores acknowledge only stored objects).
/// - **Read-after-write and list-after-write**: once a write (or delete) returned, every
///   later `get`, `head` and `list` from any process sees it. gc relies on this: what it
///   lists is everything a finished push wrote.
/// - **`NotFound`**: only `get` and `get_range` return [`StorageError::NotFound`], for an
///   absent key. `head` answers `None`; `delete` of an absent key is `Ok`; writes and
///   `list` never return it.
/// - Transient failures are retried inside the backend ([`retry`]); an error that
///   reaches the caller is final.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Writes `data` under `key`, replacing any existing object.
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()>;

    /// Writes `data` under `key` only if nothing is there yet. Returns `false` when an
    /// object already existed (and was left untouched). Of concurrent calls on one key,
    /// at most one returns `true`.
    ///
    /// On stores that cannot do this atomically (S3 servers that ignore `If-None-Match`)
    /// backends check first and never replace an object they saw, but two writers racing
    /// in the gap can both return `true`. Callers whose safety needs one winner ask
    /// [`Storage::probe_exclusive_create`] first and refuse to go on where it fails.
    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool>;

    /// Reads the whole object.
    async fn get(&self, key: &str) -> StorageResult<Bytes>;

    /// Reads bytes `range` of the object. A range past the end is an error, not a short
    /// read.
    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes>;

    /// Lists every object whose key starts with `prefix` (a plain string prefix, not a
    /// directory), in lexicographic key order, each once.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>>;

    /// Deletes `key`. Deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> StorageResult<()>;

    /// Size of the object, or `None` when it does not exist.
    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>>;

    /// A short human description of where the data goes (no secrets), for messages.
    fn describe(&self) -> String;

    /// Removes leftovers of writes that will never finish (temp files of killed writers,
    /// abandoned multipart uploads): those whose writer is known dead, or that started
    /// longer than `older_than` ago. Never touches a complete object. Returns how many
    /// were removed. Backends whose store leaves nothing behind (or expires it itself)
    /// keep this default.
    async fn cleanup_incomplete(&self, _older_than: Duration) -> StorageResult<usize> {
        Ok(0)
    }

    /// Tries whether create-if-absent has one winner here, on fresh keys under `prefix`
    /// (deleted again); see [`probe_exclusive_create_with`]. `Ok(false)`: callers that
    /// rely on one winner must not go on. Backends that check for the key before writing
    /// must override this so that the probe reaches the store's own conditional write.
    async fn probe_exclusive_create(&self, prefix: &str) -> StorageResult<bool> {
        probe_exclusive_create_with(self, prefix, |key, data| async move {
            self.put_if_absent(&key, data).await
        })
        .await
    }
}

/// Writers racing on one key, in each of [`PROBE_ROUNDS`], in
/// [`probe_exclusive_create_with`].
const PROBE_RACERS: u8 = 16;
/// Bytes each racer writes: a longer upload widens a check-then-write server's gap.
const PROBE_BODY: usize = 256 << 10;
/// Racing rounds (12 MiB written in all on a store that passes).
const PROBE_ROUNDS: usize = 3;

/// Asks the store whether `create` (a conditional create, straight to the store) has one
/// winner, on fresh keys under `prefix` (one per step: GCS allows about one write a second
/// to one object name). Each must hold:
/// 1. a second create on an existing key is refused and leaves the first bytes (a server
///    that ignores `If-None-Match` fails this, always);
/// 2. in each of [`PROBE_ROUNDS`] rounds of [`PROBE_RACERS`] creates racing on a fresh
///    key, at most one wins and its bytes are stored. A server that checks and then
///    writes (s3s-fs 0.14) fails this when two requests meet in its gap: measured on
///    s3s-fs, 99 of 100 single rounds caught it. It is a race, so this step can catch
///    such a server, never prove a store right.
///
/// A create whose answer was lost and retried reports `false` for our own write, so
/// "refused" is never trusted on the first write of a fresh key.
pub async fn probe_exclusive_create_with<S, F, Fut>(
    storage: &S,
    prefix: &str,
    create: F,
) -> StorageResult<bool>
where
    S: Storage + ?Sized,
    F: Fn(String, Bytes) -> Fut,
    Fut: std::future::Future<Output = StorageResult<bool>>,
{
    let key = format!("{prefix}/second-write");
    let first = Bytes::from_static(b"first");
    create(key.clone(), first.clone()).await?;
    let refused = !create(key.clone(), Bytes::from_static(b"second")).await?;
    let kept = storage.get(&key).await? == first;
    storage.delete(&key).await?;
    if !(refused && kept) {
        return Ok(false);
    }
    for round in 0..PROBE_ROUNDS {
        let key = format!("{prefix}/race-{round}");
        let racers = (0..PROBE_RACERS).map(|i| {
            let data = Bytes::from(vec![i; PROBE_BODY]);
            let (create, key) = (&create, key.clone());
            async move { create(key, data).await.map(|won| won.then_some(i)) }
        });
        let outcomes = futures::future::try_join_all(racers).await;
        let stored = storage.get(&key).await;
        storage.delete(&key).await?;
        let winners: Vec<u8> = outcomes?.into_iter().flatten().collect();
        let one_winner = match winners[..] {
            [] => true,
            [w] => {
                let stored = stored?;
                stored.len() == PROBE_BODY && stored.iter().all(|&b| b == w)
            }
            _ => false,
        };
        if !one_winner {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Shared handle to a backend.
pub type DynStorage = Arc<dyn Storage>;
