//! Key syntax and the repository root, shared by every backend.
//!
//! A key is a non-empty, `/`-separated relative path with no empty, `.` or `..`
//! component and no NUL: the same on every backend, so a repository can move between
//! them and never holds a `//` key or escapes its root. A remote backend stores key `k`
//! under `<root>/k` of its bucket or container (as object_store's `PrefixStore` does);
//! the root itself is normalised once, here.

use super::{StorageError, StorageResult};

/// Checks `key` against the key syntax.
pub fn validate(key: &str) -> StorageResult<()> {
    let reason = if key.is_empty() {
        "empty"
    } else if key.contains('\0') {
        "contains NUL"
    } else if key.starts_with('/') {
        "starts with '/'"
    } else if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        "has an empty, '.' or '..' component"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidKey {
        key: key.to_string(),
        reason,
    })
}

/// The key prefix of a repository inside a bucket or container: "a/b" form, possibly
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Root(String);

impl Root {
    /// Normalises `root`: leading, trailing and doubled slashes go; `.` and `..` are
    /// refused (a prefix that climbs out of itself is a mistake, not a path to resolve).
    pub fn new(root: &str) -> anyhow::Result<Root> {
        let parts: Vec<&str> = root.split('/').filter(|c| !c.is_empty()).collect();
        if parts.iter().any(|c| *c == "." || *c == "..") {
            anyhow::bail!("invalid repository prefix {root:?}: '.' and '..' are not allowed");
        }
        Ok(Root(parts.join("/")))
    }

    /// The root as "a/b", or "" for the top of the bucket.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full object name of a repository key, after checking the key.
    pub fn full_key(&self, key: &str) -> StorageResult<String> {
        validate(key)?;
        Ok(self.join(key))
    }

    /// `root/rest`, or `rest` when the root is empty. `rest` may be a listing prefix.
    pub fn join(&self, rest: &str) -> String {
        if self.0.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{}", self.0, rest)
        }
    }

    /// The repository key of a listed full name under `full_prefix` (what [`Root::join`]
    /// made of a listing prefix), or `None` for names that are not ours: outside the
    /// prefix (a server that ignores it), directory markers ("a/"), the root itself.
    pub fn key_of<'a>(&self, full: &'a str, full_prefix: &str) -> Option<&'a str> {
        let strip = if self.0.is_empty() {
            0
        } else {
            self.0.len() + 1
        };
        if !full.starts_with(full_prefix) || full.ends_with('/') || full.len() <= strip {
            return None;
        }
        Some(&full[strip..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        for good in ["config", "packs/ab/cd", "a.b/c..d", "x/.y"] {
            validate(good).unwrap();
        }
        for bad in ["", "/abs", "a//b", "a/", "./a", "a/../b", "..", "a\0b"] {
            assert!(
                matches!(validate(bad), Err(StorageError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn roots_are_normalised() {
        assert_eq!(Root::new("").unwrap().as_str(), "");
        assert_eq!(Root::new("/a//b/").unwrap().as_str(), "a/b");
        assert!(Root::new("a/../b").is_err());
        let root = Root::new("r/s").unwrap();
        assert_eq!(root.full_key("packs/x").unwrap(), "r/s/packs/x");
        assert_eq!(root.join("packs/"), "r/s/packs/");
        assert_eq!(root.key_of("r/s/packs/x", "r/s/packs/"), Some("packs/x"));
        assert_eq!(root.key_of("r/s/packs/", "r/s/packs/"), None);
        assert_eq!(root.key_of("other/x", "r/s/"), None);
        assert_eq!(Root::default().key_of("a", ""), Some("a"));
    }
}
