//! The one error type of every backend. Callers branch on its kind (a missing key, a
//! refused write, a key the layer rejects); the cause stays attached as the error's source.

/// A boxed cause, kept as the error's `source()`.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (reads and `head`; never returned by writes or `delete`).
    #[error("object {0} not found")]
    NotFound(String),
    /// The key breaks the key syntax (see [`crate::storage::keys`]); nothing was sent.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The store refused the credentials or the operation (HTTP 401/403, EACCES, EROFS,
    /// Object Lock). Retrying does not help.
    #[error("{context}: permission denied: {source}")]
    PermissionDenied {
        /// Which operation on which key.
        context: String,
        /// The store's answer.
        source: Cause,
    },
    /// A transient failure (network, 5xx, throttling, timeout) that persisted through
    /// every attempt.
    #[error("{context}: {source} (gave up after {attempts} attempts)")]
    Unavailable {
        /// Which operation on which key.
        context: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        source: Cause,
    },
    /// Anything else: an I/O error, a malformed answer, a server error that is not
    /// transient.
    #[error("{context}: {source}")]
    Other {
        /// Which operation on which key.
        context: String,
        /// The cause, free of secrets.
        source: Cause,
    },
}

impl StorageError {
    /// An [`StorageError::Other`] from an operation description and a cause (an error,
    /// or a message).
    pub fn other(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        StorageError::Other {
            context: context.into(),
            source: cause.into(),
        }
    }

    /// True when the error means the key is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound(_))
    }

    /// True when the store refused the operation itself (not a passing failure).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, StorageError::PermissionDenied { .. })
    }
}

/// Result type of every storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

/// "outer: cause: root cause", skipping a message its predecessor already contains (as
/// many library errors repeat their source in their own text).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let s = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        next = err.source();
    }
    parts.join(": ")
}
