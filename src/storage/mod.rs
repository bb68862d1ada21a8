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
    /// Backends that cannot do this atomically (some S3 servers ignore `If-None-Match`)
    /// check first and never replace an object they saw; two writers racing in the gap can
    /// both return `true` there, so callers re-read the object and go with whichever
    /// version is stored. Every backend in this crate's tests is atomic.
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
}

/// Shared handle to a backend.
pub type DynStorage = Arc<dyn Storage>;
