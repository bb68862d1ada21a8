//! The repository format: the middle layer. It turns storage objects into packs, index
//! segments, manifests and refs, and knows the commit order
//! (packs → index segment → manifest → ref). It knows nothing of the CLI or of Kanister.
//! `Repository` is one concept, the repository's objects read and written (~550 lines); the
//! formats themselves live in the sibling files.
//!
//! Layout under the repository root (see README "Repository format"):
//! `config`, `packs/<2 hex>/<64 hex>`, `index/<64 hex>`, `snapshots/<32 hex>`,
//! `refs/<path…>/!s.<time>.<id>`. An encrypted repository seals every object but `config`
//! (see `crypto.rs`).

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::storage::DynStorage;

pub mod chunklist;
mod commit;
pub mod config;
pub mod crypto;
pub mod ids;
pub mod index;
pub mod journal;
pub mod manifest;
pub mod pack;
pub mod refs;
pub mod session;

pub use commit::CommitError;
use config::{ChunkerParams, Config};
use crypto::{KdfParams, KeySlot, Keys, Password, Sealed};
use ids::Id;
use index::{Index, IndexSegment};
use manifest::Manifest;
use refs::SnapshotRef;

/// Key of the config object.
pub const CONFIG_KEY: &str = "config";
/// Concurrent reads when loading many small objects (index segments, manifests).
const METADATA_READS: usize = 16;
/// Default size at which a pack is sealed (push and gc's rewrites).
pub const DEFAULT_PACK_SIZE: usize = 8 * 1024 * 1024;
/// Entries per index segment before another is started (bounds memory on huge pushes).
pub const SEGMENT_ENTRIES: usize = 65_536;

/// Key of pack `id`. Two hex digits of fan-out keep local directories small.
pub fn pack_key(id: &Id) -> String {
    let hex = id.to_hex();
    format!("packs/{}/{hex}", &hex[..2])
}

/// Key of index segment `id`.
pub fn index_key(id: &Id) -> String {
    format!("index/{id}")
}

/// Key of the manifest of snapshot `id`.
pub fn manifest_key(id: &str) -> String {
    format!("snapshots/{id}")
}

/// A segment that could not be loaded; the flag says it was not found.
struct SegmentError(anyhow::Error, bool);

impl SegmentError {
    fn is_not_found(&self) -> bool {
        self.1
    }
}

/// Opening a repository that does not exist (callers may treat it as "nothing there").
#[derive(Debug, thiserror::Error)]
#[error("there is no kando repository at {0} (nothing was ever pushed there)")]
pub struct NoRepository(pub String);

/// Why an encrypted (or plain) repository could not be opened with the password given.
/// The CLI adds how to give one; this layer knows nothing of flags.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Encrypted, and no password.
    #[error("the repository at {0} is encrypted and no password was given")]
    Missing(String),
    /// Plain, and a password: never silently one or the other.
    #[error("the repository at {0} is not encrypted, but a password was given")]
    Unexpected(String),
    /// The password does not unwrap the key.
    #[error("wrong password for the encrypted repository at {0}")]
    Wrong(String),
}

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    storage: DynStorage,
    config: Config,
    keys: Keys,
}

impl Repository {
    /// Opens an existing repository; a missing config is a clear error. An encrypted one
    /// needs `password`; a plain one refuses it.
    pub async fn open(storage: DynStorage, password: Option<&Password>) -> Result<Repository> {
        match storage.get(CONFIG_KEY).await {
            Ok(bytes) => Self::from_config_bytes(storage, &bytes, password),
            Err(e) if e.is_not_found() => Err(NoRepository(storage.describe()).into()),
            Err(e) => Err(e).context("cannot read the repository config"),
        }
    }

    /// Opens the repository, creating it with `chunker` if it does not exist yet, encrypted
    /// when a password is given. Two racing creators both end up using whichever config
    /// landed first (and a creator whose password does not open it fails).
    pub async fn open_or_create(
        storage: DynStorage,
        chunker: ChunkerParams,
        password: Option<&Password>,
    ) -> Result<Repository> {
        match storage.get(CONFIG_KEY).await {
            Ok(bytes) => return Self::from_config_bytes(storage, &bytes, password),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e).context("cannot read the repository config"),
        }
        Self::create(&storage, chunker, password).await?;
        // Re-read whatever won: on stores that ignore conditional writes the other writer's
        // config may have replaced ours, and everyone must agree on one.
        let bytes = storage
            .get(CONFIG_KEY)
            .await
            .context("cannot read back the repository config")?;
        Self::from_config_bytes(storage, &bytes, password)
    }

    /// Creates a repository; an existing one is an error.
    pub async fn init(
        storage: DynStorage,
        chunker: ChunkerParams,
        password: Option<&Password>,
    ) -> Result<Repository> {
        if !Self::create(&storage, chunker, password).await? {
            bail!(
                "a kando repository already exists at {}; nothing was changed",
                storage.describe()
            );
        }
        Self::open(storage, password).await
    }

    /// Writes a new config unless one exists; true when ours landed.
    async fn create(
        storage: &DynStorage,
        chunker: ChunkerParams,
        password: Option<&Password>,
    ) -> Result<bool> {
        let mut config = Config::new(chunker);
        if let Some(password) = password {
            let (slot, _) = KeySlot::create(password, &config.id, KdfParams::default())?;
            config.version = config::ENCRYPTED_FORMAT_VERSION;
            config.encryption = Some(slot);
        }
        storage
            .put_if_absent(CONFIG_KEY, Bytes::from(config.encode()))
            .await
            .context("cannot create the repository config")
    }

    fn from_config_bytes(
        storage: DynStorage,
        bytes: &[u8],
        password: Option<&Password>,
    ) -> Result<Repository> {
        let config = Config::decode(bytes)
            .map_err(|e| anyhow!("{e} (object {CONFIG_KEY} in {})", storage.describe()))?;
        let keys = match (&config.encryption, password) {
            (None, None) => Keys::plain(),
            (None, Some(_)) => return Err(KeyError::Unexpected(storage.describe()).into()),
            (Some(_), None) => return Err(KeyError::Missing(storage.describe()).into()),
            (Some(slot), Some(pw)) => match slot.unlock(pw, &config.id) {
                Ok(keys) => keys,
                Err(crypto::CryptoError::WrongPassword) => {
                    return Err(KeyError::Wrong(storage.describe()).into())
                }
                Err(e) => bail!("{e} (object {CONFIG_KEY} in {})", storage.describe()),
            },
        };
        Ok(Repository {
            storage,
            config,
            keys,
        })
    }

    /// The keys every blob, id and object of this repository is made with.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The storage backend.
    pub fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// The repository's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every pack that exists, with its size.
    pub async fn list_packs(&self) -> Result<HashMap<Id, u64>> {
        Ok(self
            .storage
            .list("packs/")
            .await
            .context("cannot list packs")?
            .into_iter()
            .filter_map(|m| Some((Id::from_hex(m.key.rsplit('/').next()?)?, m.size)))
            .collect())
    }

    /// The index as readers use it: only packs that exist, preferring copies in packs gc
    /// has not condemned. Damaged segments are skipped with a warning. Writes nothing.
    pub async fn load_read_index(&self) -> Result<Index> {
        let state = journal::read_latest(&self.storage).await?;
        let listed = self.list_packs().await?;
        let mut index = Index::default();
        let mut skipped = Vec::new();
        self.for_each_index_segment_reporting(Some(&mut skipped), |_, seg| {
            index.add_segment_ranked(&seg, |p| journal::read_rank(&state, &listed, p))
        })
        .await?;
        index.skipped = skipped;
        Ok(index)
    }

    /// Calls `f` with every index segment and its key, loading several at once. With
    /// `skip_damaged`, a segment that cannot be read or verified is skipped with a
    /// warning (readers: the chunks may be indexed elsewhere); otherwise it is an error
    /// (gc: its packs would look unused).
    pub async fn for_each_index_segment(
        &self,
        skip_damaged: bool,
        f: impl FnMut(String, IndexSegment),
    ) -> Result<()> {
        let mut skipped = Vec::new();
        self.for_each_index_segment_reporting(skip_damaged.then_some(&mut skipped), f)
            .await
    }

    /// [`Repository::for_each_index_segment`], collecting what was skipped into `skipped`
    /// (`None`: a damaged segment is an error).
    async fn for_each_index_segment_reporting(
        &self,
        mut skipped: Option<&mut Vec<String>>,
        mut f: impl FnMut(String, IndexSegment),
    ) -> Result<()> {
        // gc writes a merged segment before deleting the ones it merged: a segment that
        // vanished between listing and reading is in a newer one, so list again and read
        // what is new, until a pass finds nothing missing.
        let mut seen: HashSet<String> = HashSet::new();
        for _ in 0..16 {
            let listed: Vec<String> = self
                .storage
                .list("index/")
                .await
                .context("cannot list index segments")?
                .into_iter()
                .map(|m| m.key)
                .filter(|k| !seen.contains(k))
                .collect();
            seen.extend(listed.iter().cloned());
            let mut vanished = false;
            let mut segments = stream::iter(listed)
                .map(|key| async move {
                    let loaded = self.load_segment(&key).await;
                    (key, loaded)
                })
                .buffer_unordered(METADATA_READS);
            while let Some((key, loaded)) = segments.next().await {
                match loaded {
                    Ok(seg) => f(key, seg),
                    Err(e) if e.is_not_found() => vanished = true,
                    Err(e) if skipped.is_some() => {
                        tracing::warn!(
                            "skipping index segment {key}: {:#} (`kando repo repair` rebuilds the index)",
                            e.0
                        );
                        if let Some(s) = skipped.as_deref_mut() {
                            s.push(format!("{key}: {:#}", e.0));
                        }
                    }
                    Err(e) => {
                        return Err(e.0.context(format!(
                            "index segment {key} is unreadable; run `kando repo repair`"
                        )))
                    }
                }
            }
            if !vanished {
                return Ok(());
            }
        }
        bail!("the index kept changing while it was read (garbage collection running?); try again")
    }

    async fn load_segment(&self, key: &str) -> Result<IndexSegment, SegmentError> {
        let name = key.trim_start_matches("index/");
        let id = Id::from_hex(name)
            .ok_or_else(|| SegmentError(anyhow!("unexpected object {key} in index/"), false))?;
        let bytes = match self.storage.get(key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(SegmentError(anyhow!(e), true)),
            Err(e) => return Err(SegmentError(anyhow!(e), false)),
        };
        if Id::of(&bytes) != id {
            return Err(SegmentError(
                anyhow!("its content does not match its name"),
                false,
            ));
        }
        let bytes = self
            .keys
            .open(Sealed::Index, &bytes)
            .map_err(|e| SegmentError(anyhow!("{e}"), false))?;
        IndexSegment::decode(&bytes).map_err(|e| SegmentError(anyhow!("damaged: {e}"), false))
    }

    /// Reads one blob (a chunk or a chunk-list block), verifying its hash.
    pub async fn read_blob(&self, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let loc = index
            .get(id)
            .ok_or_else(|| anyhow!("blob {id} is referenced but not in any index segment"))?;
        let key = pack_key(&loc.pack);
        let e = &loc.entry;
        let stored = self
            .storage
            .get_range(&key, e.offset as u64..e.offset as u64 + e.stored_len as u64)
            .await
            .with_context(|| format!("cannot read blob {id} from pack {key}"))?;
        pack::decode_blob(e, &stored, &self.keys).with_context(|| format!("in pack {key}"))
    }

    /// Stores a finished pack under its name.
    pub async fn write_pack(&self, id: &Id, bytes: Bytes) -> Result<()> {
        let key = pack_key(id);
        self.storage
            .put(&key, bytes)
            .await
            .with_context(|| format!("cannot store pack {key}"))
    }

    /// Stores an index segment; returns its key and size.
    pub async fn write_index_segment(&self, segment: &IndexSegment) -> Result<(String, u64)> {
        let bytes = self.keys.seal(Sealed::Index, segment.encode());
        let key = index_key(&Id::of(&bytes));
        let len = bytes.len() as u64;
        self.storage
            .put(&key, Bytes::from(bytes))
            .await
            .with_context(|| format!("cannot store index segment {key}"))?;
        Ok((key, len))
    }

    /// Stores a manifest and returns its snapshot id. The snapshot is not visible until
    /// [`Repository::write_ref`] runs.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<String> {
        let bytes = self.keys.seal(Sealed::Manifest, manifest.encode());
        let id = manifest::snapshot_id(&bytes);
        let key = manifest_key(&id);
        self.storage
            .put(&key, Bytes::from(bytes))
            .await
            .with_context(|| format!("cannot store manifest {key}"))?;
        Ok(id)
    }

    /// The key of the ref of snapshot `id` of `manifest`.
    pub fn ref_key(&self, manifest: &Manifest, id: &str) -> String {
        refs::ref_key(&self.keys, &manifest.path, manifest.time_ns, id)
    }

    /// Commits a snapshot: writes its ref, the last step of a push. A plain repository's
    /// ref is empty (its key says everything); an encrypted one's holds the sealed path.
    pub async fn write_ref(&self, manifest: &Manifest, id: &str) -> Result<()> {
        let key = self.ref_key(manifest, id);
        let body = if self.keys.is_encrypted() {
            self.keys
                .seal(Sealed::Ref, manifest.path.as_bytes().to_vec())
        } else {
            Vec::new()
        };
        self.storage
            .put(&key, Bytes::from(body))
            .await
            .with_context(|| format!("cannot store ref {key}"))
    }

    /// Reads and verifies a manifest. A manifest whose ref is gone (deleted, or a push that
    /// died before committing) counts as missing.
    pub async fn read_manifest(&self, id: &str) -> Result<Manifest> {
        let Some(m) = self.read_manifest_unchecked(id).await? else {
            bail!("snapshot {id} not found in {}", self.storage.describe());
        };
        let ref_key = self.ref_key(&m, id);
        if self.storage.head(&ref_key).await?.is_none() && !self.committed_in_journal(id).await? {
            bail!(
                "snapshot {id} not found in {} (it was deleted or never completed)",
                self.storage.describe()
            );
        }
        Ok(m)
    }

    /// True when the journal records snapshot `id` as committed (its ref may be pending).
    async fn committed_in_journal(&self, id: &str) -> Result<bool> {
        let state = journal::read_latest(&self.storage).await?;
        Ok(state.committed.iter().any(|c| c.id == id))
    }

    /// Reads and verifies a manifest whatever its ref; `None` when there is no manifest.
    pub async fn read_manifest_unchecked(&self, id: &str) -> Result<Option<Manifest>> {
        if !manifest::is_snapshot_id(id) {
            bail!(
                "{id:?} is not a snapshot id (expected {} hex digits)",
                manifest::SNAPSHOT_ID_LEN
            );
        }
        let key = manifest_key(id);
        let bytes = match self.storage.get(&key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read manifest {key}")),
        };
        if manifest::snapshot_id(&bytes) != id {
            bail!("manifest {key} is corrupt: its content does not match its name");
        }
        let bytes = self
            .keys
            .open(Sealed::Manifest, &bytes)
            .map_err(|e| anyhow!("manifest {key}: {e}"))?;
        let m = Manifest::decode(&bytes).map_err(|e| anyhow!("manifest {key}: {e}"))?;
        Ok(Some(m))
    }

    /// Reads the manifests of listed refs, several at a time, in order. `None` for a
    /// snapshot deleted since it was listed (its ref is gone); a manifest missing while its
    /// ref is still there is damage, and an error.
    pub async fn read_manifests_if_live(
        &self,
        refs: &[SnapshotRef],
    ) -> Result<Vec<Option<Manifest>>> {
        stream::iter(refs)
            .map(|r| async move {
                match self.read_manifest_unchecked(&r.id).await? {
                    Some(m) => Ok(Some(m)),
                    None if self.storage.head(&r.key).await?.is_none() => Ok(None),
                    None => bail!(
                        "snapshot {} at {:?} has a ref but no manifest: the repository is damaged (run `kando repo repair`)",
                        r.id,
                        r.path
                    ),
                }
            })
            .buffered(METADATA_READS)
            .try_collect()
            .await
    }

    /// Every committed snapshot at `path` or under `path/`, oldest first.
    pub async fn list_refs(&self, path: &str) -> Result<Vec<SnapshotRef>> {
        let listed = self
            .storage
            .list(&refs::refs_prefix(&self.keys, path))
            .await
            .context("cannot list snapshot refs")?;
        let parsed = listed.iter().filter_map(|m| refs::parse_ref_key(&m.key));
        let mut out: Vec<SnapshotRef> = if self.keys.is_encrypted() {
            stream::iter(parsed)
                .map(|r| self.unseal_ref(r))
                .buffered(METADATA_READS)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
                // A (vanishingly unlikely) tag collision must not select another path.
                .filter(|r| {
                    path.is_empty() || r.path == path || r.path.starts_with(&format!("{path}/"))
                })
                .collect()
        } else {
            parsed.collect()
        };
        out.sort_by(|a, b| (a.time_ns, &a.id).cmp(&(b.time_ns, &b.id)));
        Ok(out)
    }

    /// Replaces an encrypted ref's path tags by the path sealed in its body, checking the
    /// body belongs to this key.
    /// `None` when the ref was deleted since it was listed.
    async fn unseal_ref(&self, mut r: SnapshotRef) -> Result<Option<SnapshotRef>> {
        let body = match self.storage.get(&r.key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read ref {}", r.key)),
        };
        let path = self
            .keys
            .open(Sealed::Ref, &body)
            .ok()
            .and_then(|p| String::from_utf8(p).ok())
            .filter(|p| refs::ref_key(&self.keys, p, r.time_ns, &r.id) == r.key)
            .ok_or_else(|| anyhow!("ref {} is damaged or was tampered with", r.key))?;
        r.path = path;
        Ok(Some(r))
    }

    /// Reads the manifests of `refs`, several at a time, in order, leaving out snapshots
    /// deleted since they were listed.
    pub async fn read_manifests(
        &self,
        refs: &[SnapshotRef],
    ) -> Result<Vec<(SnapshotRef, Manifest)>> {
        let manifests = self.read_manifests_if_live(refs).await?;
        Ok(refs
            .iter()
            .cloned()
            .zip(manifests)
            .filter_map(|(r, m)| Some((r, m?)))
            .collect())
    }

    /// Removes a snapshot: its ref first (it disappears at once), then its manifest. The
    /// data stays until garbage collection proves nothing else needs it.
    pub async fn delete_snapshot(&self, r: &SnapshotRef) -> Result<()> {
        self.storage
            .delete(&r.key)
            .await
            .with_context(|| format!("cannot delete ref {}", r.key))?;
        let key = manifest_key(&r.id);
        self.storage
            .delete(&key)
            .await
            .with_context(|| format!("cannot delete manifest {key}"))
    }
}
