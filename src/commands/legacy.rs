//! Objects upstream kando wrote: one plain object per push, at `join(prefix, path)`, with
//! no repository around it. After switching images a team still has them; these functions
//! restore, list, import and delete them. They work on a storage rooted at the location's
//! prefix (not at the repository) and never touch anything inside the repository directory.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::runtime::Handle;

use crate::storage::{DynStorage, ObjectMeta};

/// Bytes per ranged read of a plain object (pull holds at most `reads` of them).
pub const READ_SPAN: u64 = 4 * 1024 * 1024;

/// True when `key` is `path` itself or below it (whole components) and outside the
/// repository directory `repo_dir`.
fn selects(key: &str, path: &str, repo_dir: &str) -> bool {
    let in_repo = key == repo_dir || key.starts_with(&format!("{repo_dir}/"));
    let under = path.is_empty() || key == path || key.starts_with(&format!("{path}/"));
    !in_repo && under
}

/// The plain object at `path`, if there is one (and it is not repository data).
pub async fn find(storage: &DynStorage, path: &str, repo_dir: &str) -> Result<Option<u64>> {
    if path.is_empty() || !selects(path, path, repo_dir) {
        return Ok(None);
    }
    Ok(storage
        .head(path)
        .await
        .with_context(|| format!("cannot look for a plain object at {path}"))?
        .map(|m| m.size))
}

/// Plain objects at `path` and under `path/` (every one when `path` is empty), outside
/// the repository directory.
pub async fn list(storage: &DynStorage, path: &str, repo_dir: &str) -> Result<Vec<ObjectMeta>> {
    Ok(storage
        .list(path)
        .await
        .context("cannot list the location")?
        .into_iter()
        .filter(|m| selects(&m.key, path, repo_dir))
        .collect())
}

/// Streams the plain object `key` of `size` bytes into `out`, `reads` ranged reads in
/// flight and in order. Returns the bytes written.
pub fn pull(
    rt: &Handle,
    storage: &DynStorage,
    key: &str,
    size: u64,
    out: &mut (dyn Write + Send),
    reads: usize,
    written: &AtomicU64,
) -> Result<u64> {
    let ranges =
        (0..size.div_ceil(READ_SPAN)).map(|i| i * READ_SPAN..((i + 1) * READ_SPAN).min(size));
    rt.block_on(async {
        let mut parts = stream::iter(ranges)
            .map(|r| async move {
                storage
                    .get_range(key, r.clone())
                    .await
                    .with_context(|| format!("cannot read {key} at {}..{}", r.start, r.end))
            })
            .buffered(reads.max(1));
        let mut total = 0u64;
        while let Some(part) = parts.try_next().await? {
            tokio::task::block_in_place(|| out.write_all(&part))
                .context("cannot write the restored data")?;
            total += part.len() as u64;
            written.store(total, Ordering::Relaxed);
        }
        tokio::task::block_in_place(|| out.flush()).context("cannot write the restored data")?;
        if total != size {
            return Err(anyhow!(
                "{key} changed while it was read ({total} of {size} bytes)"
            ));
        }
        Ok(total)
    })
}

/// Deletes the plain objects at `path` and under `path/`. Returns (count, bytes). An
/// object the store refuses to delete (retention) is reported and skipped.
pub async fn delete(storage: &DynStorage, path: &str, repo_dir: &str) -> Result<(usize, u64)> {
    if path.is_empty() {
        return Ok((0, 0)); // never the whole location
    }
    let (mut count, mut bytes) = (0, 0);
    for m in list(storage, path, repo_dir).await? {
        match storage.delete(&m.key).await {
            Ok(()) => {
                count += 1;
                bytes += m.size;
            }
            Err(e) => tracing::warn!("plain object {} not deleted: {e}", m.key),
        }
    }
    Ok((count, bytes))
}

/// A plain object read sequentially, for importing it through push.
pub struct PlainReader {
    rt: Handle,
    storage: DynStorage,
    key: String,
    size: u64,
    pos: u64,
    buf: Bytes,
}

impl PlainReader {
    /// Reads `key` (`size` bytes) from the start.
    pub fn new(rt: Handle, storage: DynStorage, key: &str, size: u64) -> Self {
        PlainReader {
            rt,
            storage,
            key: key.to_string(),
            size,
            pos: 0,
            buf: Bytes::new(),
        }
    }
}

impl Read for PlainReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.pos >= self.size {
                return Ok(0);
            }
            let end = (self.pos + READ_SPAN).min(self.size);
            self.buf = self
                .rt
                .block_on(self.storage.get_range(&self.key, self.pos..end))
                .map_err(std::io::Error::other)?;
            self.pos = end;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn whole_components_outside_the_repository() {
        assert!(selects("db/2026-11-30/x.gz", "db/2026-11-30", "kando-repo"));
        assert!(selects("db/2026-11-30", "db/2026-11-30", "kando-repo"));
        assert!(!selects(
            "db/2026-11-30x/x.gz",
            "db/2026-11-30",
            "kando-repo"
        ));
        assert!(!selects("kando-repo/config", "", "kando-repo"));
        assert!(!selects(
            "kando-repo/packs/aa/bb",
            "kando-repo",
            "kando-repo"
        ));
        assert!(selects("kando-repo2/x", "", "kando-repo"));
    }
}
