//! Storage backends: the bottom layer. One small async trait, [`Storage`], and one
//! implementation per kind of store. Nothing here knows about packs, snapshots or the CLI;
//! keys are plain `/`-separated strings relative to the repository root.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub mod local;
pub mod memory;
pub mod s3;

/// What went wrong talking to a store. `NotFound` is separate because callers branch on it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// Anything else: I/O, network, permissions, a server error after retries.
    #[error("{context}: {message}")]
    Other {
        /// Which operation on which key.
        context: String,
        /// The cause, already free of secrets.
        message: String,
    },
}

impl StorageError {
    /// Builds an [`StorageError::Other`] from an operation description and a cause.
    pub fn other(context: impl Into<String>, cause: impl fmt::Display) -> Self {
        StorageError::Other {
            context: context.into(),
            message: cause.to_string(),
        }
    }

    /// True when the error means the key is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound(_))
    }
}

/// Result type of every storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

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
/// Every write is atomic: a reader sees either nothing or the whole object under its key,
/// never a partial one. Implementations retry transient failures themselves.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Writes `data` under `key`, replacing any existing object.
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()>;

    /// Writes `data` under `key` only if nothing is there yet. Returns `false` when an
    /// object already existed (and was left untouched).
    ///
    /// Backends that cannot do this atomically (some S3 servers ignore `If-None-Match`)
    /// do their best; callers must re-read the object and accept whichever version won.
    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool>;

    /// Reads the whole object.
    async fn get(&self, key: &str) -> StorageResult<Bytes>;

    /// Reads bytes `range` of the object. A range past the end is an error.
    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes>;

    /// Lists every object whose key starts with `prefix`, in lexicographic key order.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>>;

    /// Deletes `key`. Deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> StorageResult<()>;

    /// Size of the object, or `None` when it does not exist.
    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>>;

    /// A short human description of where the data goes (no secrets), for messages.
    fn describe(&self) -> String;

    /// Removes leftovers of writes that will never finish (temp files of killed writers,
    /// abandoned multipart uploads): those whose writer is known dead, or older than
    /// `older_than`. Called by garbage collection under the exclusive lock. Returns how
    /// many were removed.
    async fn cleanup_incomplete(&self, _older_than: std::time::Duration) -> StorageResult<usize> {
        Ok(0)
    }
}

/// Shared handle to a backend.
pub type DynStorage = Arc<dyn Storage>;
