//! The local-directory backend: the embedded default, no server needed.
//!
//! Keys map to files under the root. Writes go to a unique temporary file in the same
//! directory, are fsynced, then renamed (or hard-linked, for create-if-absent), so a crash
//! never leaves a half-written object under its final name.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{keys, ObjectMeta, Storage, StorageError, StorageResult};

/// File names starting with this are in-progress writes, invisible to `list`. The full
/// name is `.tmp-<random>`. Its writer holds an exclusive `flock` on it until the file is
/// renamed or linked into place; a temp file nobody holds a lock on is a dead writer's
/// leftover. The kernel releases the lock when the writer dies, on any host sharing the
/// file system and in any PID namespace: no pid or host name is judged.
const TEMP_PREFIX: &str = ".tmp-";

/// Takes `f`'s exclusive lock without waiting; false when another process holds it.
fn try_lock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Removes the temp file at `path` if no writer holds it.
fn remove_if_abandoned(path: &Path) -> std::io::Result<bool> {
    let Ok(f) = std::fs::File::open(path) else {
        return Ok(false); // renamed into place or removed meanwhile
    };
    if !try_lock(&f) {
        return Ok(false);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn remove_dead_temps(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
    let Some(entries) = read_dir_if_exists(dir)? else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let Ok(ft) = entry.file_type() else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if ft.is_dir() {
            remove_dead_temps(&entry.path(), removed)?;
        } else if name.starts_with(TEMP_PREFIX) && remove_if_abandoned(&entry.path())? {
            *removed += 1;
        }
    }
    Ok(())
}

/// A repository stored in a directory of the local filesystem.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Uses `root` as the repository directory; it is created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    fn path_of(&self, key: &str) -> StorageResult<PathBuf> {
        keys::validate(key)?;
        Ok(self.root.join(key))
    }

    /// Writes `data` to a fresh temp file beside `path` and returns the temp path and the
    /// open file, whose lock tells cleaners the write is alive: keep it until the temp
    /// file is renamed or linked into place.
    fn write_temp(path: &Path, data: &[u8]) -> std::io::Result<(PathBuf, std::fs::File)> {
        let dir = path.parent().expect("object paths have a parent");
        let tmp = dir.join(format!("{TEMP_PREFIX}{:032x}", rand::random::<u128>()));
        // A concurrent delete may remove the directory, once empty, between its creation
        // and the temp file's (see `prune_empty_dirs`): create it again and retry. Once the
        // temp file exists the directory is not empty, and the rename or link that follows
        // is safe.
        let mut attempts = 0;
        let mut f = loop {
            std::fs::create_dir_all(dir)?;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(f) => break f,
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < 16 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        // Locked before anything is written; a cleaner that got in between (microseconds)
        // could only make this write fail, never damage an object.
        try_lock(&f);
        let result = f.write_all(data).and_then(|_| f.sync_data());
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok((tmp, f))
    }

    /// Writes `data` to a temp file beside `path` and hands it to `place` (rename or link),
    /// holding its lock throughout. A cleaner can take a temp file only in the instant
    /// between its creation and its lock (it then looks abandoned): `place` then finds it
    /// gone, and the write is simply done again.
    fn with_temp<T>(
        path: &Path,
        data: &[u8],
        key: &str,
        place: impl Fn(&Path) -> std::io::Result<T>,
    ) -> StorageResult<T> {
        let mut attempts = 0;
        loop {
            let (tmp, _held) = Self::write_temp(path, data).map_err(|e| io_err("write", key, e))?;
            match place(&tmp) {
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < 8 => attempts += 1,
                Err(e) => return Err(io_err("place", key, e)),
                // The rename or link is durable only once its directory is on disk.
                Ok(v) => {
                    return sync_dir_of(path)
                        .map(|_| v)
                        .map_err(|e| io_err("sync", key, e))
                }
            }
        }
    }

    /// Runs blocking filesystem work off the async workers.
    async fn blocking<T, F>(f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> StorageResult<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StorageError::other("local storage task", e))?
    }
}

/// Removes the directories above `path` that are empty, up to but not including `root`,
/// so deleting every object under a prefix (a path's refs) leaves no empty directory
/// behind. A directory that is not empty, or already gone, ends the walk: another writer
/// got there first, which is fine (`write_temp` retries if it loses the race).
fn prune_empty_dirs(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// fsyncs the directory holding `path`, so that a rename or link into it survives a crash.
fn sync_dir_of(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().expect("object paths have a parent");
    std::fs::File::open(dir)?.sync_all()
}

fn io_err(op: &str, key: &str, e: std::io::Error) -> StorageError {
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            StorageError::PermissionDenied {
                context: format!("{op} {key}"),
                source: e.into(),
            }
        }
        _ => StorageError::other(format!("{op} {key}"), e),
    }
}

/// `read_dir`, with a missing directory meaning "no entries".
fn read_dir_if_exists(dir: &Path) -> std::io::Result<Option<std::fs::ReadDir>> {
    match std::fs::read_dir(dir) {
        Ok(e) => Ok(Some(e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let Some(entries) = read_dir_if_exists(dir)? else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let key = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        // An object deleted while we list (a released lock, say) is simply not listed.
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else if meta.is_file() {
            out.push(ObjectMeta {
                key,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || {
            Self::with_temp(&path, &data, &key, |tmp| {
                let renamed = std::fs::rename(tmp, &path);
                if renamed.is_err() {
                    let _ = std::fs::remove_file(tmp);
                }
                renamed
            })
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || {
            Self::with_temp(&path, &data, &key, |tmp| {
                // link(2) fails if the target exists: an atomic create-if-absent of a
                // complete file.
                let linked = std::fs::hard_link(tmp, &path);
                let _ = std::fs::remove_file(tmp);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            })
        })
        .await
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || {
            std::fs::read(&path)
                .map(Bytes::from)
                .map_err(|e| io_err("read", &key, e))
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || {
            let mut f = std::fs::File::open(&path).map_err(|e| io_err("open", &key, e))?;
            let len = f.metadata().map_err(|e| io_err("stat", &key, e))?.len();
            if range.start > range.end || range.end > len {
                return Err(StorageError::other(
                    format!("read {key}"),
                    format!("range {range:?} is outside the object's {len} bytes"),
                ));
            }
            f.seek(SeekFrom::Start(range.start))
                .map_err(|e| io_err("seek", &key, e))?;
            let mut buf = vec![0u8; (range.end - range.start) as usize];
            f.read_exact(&mut buf)
                .map_err(|e| io_err("read", &key, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        Self::blocking(move || {
            // Walk only the deepest directory the prefix names completely.
            let dir_part = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            let mut out = Vec::new();
            walk(&root.join(dir_part), dir_part, &mut out)
                .map_err(|e| StorageError::other(format!("list {prefix}"), e))?;
            out.retain(|m| m.key.starts_with(&prefix));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let path = self.path_of(key)?;
        let root = self.root.clone();
        let key = key.to_string();
        Self::blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => {
                prune_empty_dirs(&root, &path);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", &key, e)),
        })
        .await
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta { key, size: m.len() })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", &key, e)),
        })
        .await
    }

    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    // A temp file's lock says whether its writer lives: its age is not needed.
    async fn cleanup_incomplete(&self, _older_than: std::time::Duration) -> StorageResult<usize> {
        let root = self.root.clone();
        Self::blocking(move || {
            let mut removed = 0;
            remove_dead_temps(&root, &mut removed)
                .map_err(|e| StorageError::other("clean up temporary files", e))?;
            Ok(removed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delete_prunes_empty_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let storage = LocalStorage::new(&root);
        for key in ["refs/a/b/x", "refs/a/y", "config"] {
            storage.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        storage.delete("refs/a/b/x").await.unwrap();
        assert!(!root.join("refs/a/b").exists());
        assert!(root.join("refs/a").is_dir());
        storage.delete("refs/a/y").await.unwrap();
        assert!(!root.join("refs").exists());
        assert!(root.is_dir());
        // Writing under a pruned prefix recreates it.
        storage
            .put("refs/a/z", Bytes::from_static(b"z"))
            .await
            .unwrap();
        assert_eq!(storage.get("refs/a/z").await.unwrap(), "z");
    }

    #[tokio::test]
    async fn rejects_escaping_keys() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        for key in ["../x", "a/../../x", "", "a//b", "/abs"] {
            assert!(
                storage.put(key, Bytes::from_static(b"x")).await.is_err(),
                "{key}"
            );
        }
    }
}
