//! The repository format: the middle layer. It turns storage objects into packs, index
//! segments, manifests and refs, and knows the commit order
//! (packs → index segment → manifest → ref). It knows nothing of the CLI or of Kanister.
//!
//! Layout under the repository root (see README "Repository format"):
//! `config`, `packs/<2 hex>/<64 hex>`, `index/<64 hex>`, `snapshots/<32 hex>`,
//! `refs/<path…>/!s.<time>.<id>`.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::storage::DynStorage;

pub mod chunklist;
pub mod config;
pub mod ids;
pub mod index;
pub mod lock;
pub mod manifest;
pub mod pack;
pub mod refs;

use config::{ChunkerParams, Config};
use ids::Id;
use index::{Index, IndexSegment};
use manifest::Manifest;
use refs::SnapshotRef;

/// Key of the config object.
pub const CONFIG_KEY: &str = "config";
/// Concurrent reads when loading many small objects (index segments, manifests).
const METADATA_READS: usize = 16;

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

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    storage: DynStorage,
    config: Config,
}

impl Repository {
    /// Opens an existing repository; a missing config is a clear error.
    pub async fn open(storage: DynStorage) -> Result<Repository> {
        match storage.get(CONFIG_KEY).await {
            Ok(bytes) => Self::from_config_bytes(storage, &bytes),
            Err(e) if e.is_not_found() => bail!(
                "there is no kando repository at {} (nothing was ever pushed there)",
                storage.describe()
            ),
            Err(e) => Err(e).context("cannot read the repository config"),
        }
    }

    /// Opens the repository, creating it with `chunker` if it does not exist yet. Two
    /// racing creators both end up using whichever config landed first.
    pub async fn open_or_create(storage: DynStorage, chunker: ChunkerParams) -> Result<Repository> {
        match storage.get(CONFIG_KEY).await {
            Ok(bytes) => return Self::from_config_bytes(storage, &bytes),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e).context("cannot read the repository config"),
        }
        let config = Config::new(chunker);
        storage
            .put_if_absent(CONFIG_KEY, Bytes::from(config.encode()))
            .await
            .context("cannot create the repository config")?;
        // Re-read whatever won: on stores that ignore conditional writes the other writer's
        // config may have replaced ours, and everyone must agree on one.
        let bytes = storage
            .get(CONFIG_KEY)
            .await
            .context("cannot read back the repository config")?;
        Self::from_config_bytes(storage, &bytes)
    }

    fn from_config_bytes(storage: DynStorage, bytes: &[u8]) -> Result<Repository> {
        let config = Config::decode(bytes)
            .map_err(|e| anyhow!("{e} (object {CONFIG_KEY} in {})", storage.describe()))?;
        Ok(Repository { storage, config })
    }

    /// The storage backend.
    pub fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// The repository's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads and verifies one object whose name is the hash of its content.
    async fn get_verified(&self, key: &str, id: &Id) -> Result<Bytes> {
        let bytes = self
            .storage
            .get(key)
            .await
            .with_context(|| format!("cannot read {key}"))?;
        if Id::of(&bytes) != *id {
            bail!("object {key} is corrupt: its content does not match its name");
        }
        Ok(bytes)
    }

    /// Lists and loads every index segment.
    pub async fn load_index(&self) -> Result<Index> {
        let mut index = Index::default();
        self.for_each_index_segment(|_, seg| index.add_segment(&seg))
            .await?;
        Ok(index)
    }

    /// Calls `f` with every index segment and its key, loading several at once.
    pub async fn for_each_index_segment(
        &self,
        mut f: impl FnMut(String, IndexSegment),
    ) -> Result<()> {
        let listed = self
            .storage
            .list("index/")
            .await
            .context("cannot list index segments")?;
        let mut segments = stream::iter(listed)
            .map(|meta| async move {
                let name = meta.key.trim_start_matches("index/");
                let id = Id::from_hex(name)
                    .ok_or_else(|| anyhow!("unexpected object {} in index/", meta.key))?;
                let bytes = self.get_verified(&meta.key, &id).await?;
                let seg = IndexSegment::decode(&bytes)
                    .map_err(|e| anyhow!("index segment {} is damaged: {e}", meta.key))?;
                anyhow::Ok((meta.key, seg))
            })
            .buffer_unordered(METADATA_READS);
        while let Some((key, seg)) = segments.try_next().await? {
            f(key, seg);
        }
        Ok(())
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
        pack::decode_blob(e, &stored).with_context(|| format!("in pack {key}"))
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
        let bytes = segment.encode();
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
        let bytes = manifest.encode();
        let id = manifest::snapshot_id(&bytes);
        let key = manifest_key(&id);
        self.storage
            .put(&key, Bytes::from(bytes))
            .await
            .with_context(|| format!("cannot store manifest {key}"))?;
        Ok(id)
    }

    /// Commits a snapshot: writes its ref, the last step of a push.
    pub async fn write_ref(&self, manifest: &Manifest, id: &str) -> Result<()> {
        let key = refs::ref_key(&manifest.path, manifest.time_ns, id);
        self.storage
            .put(&key, Bytes::new())
            .await
            .with_context(|| format!("cannot store ref {key}"))
    }

    /// Reads and verifies a manifest. A manifest whose ref is gone (deleted, or a push that
    /// died before committing) counts as missing.
    pub async fn read_manifest(&self, id: &str) -> Result<Manifest> {
        if !manifest::is_snapshot_id(id) {
            bail!(
                "{id:?} is not a snapshot id (expected {} hex digits)",
                manifest::SNAPSHOT_ID_LEN
            );
        }
        let key = manifest_key(id);
        let bytes = match self.storage.get(&key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                bail!("snapshot {id} not found in {}", self.storage.describe())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read manifest {key}")),
        };
        if manifest::snapshot_id(&bytes) != id {
            bail!("manifest {key} is corrupt: its content does not match its name");
        }
        let m = Manifest::decode(&bytes).map_err(|e| anyhow!("manifest {key}: {e}"))?;
        let ref_key = refs::ref_key(&m.path, m.time_ns, id);
        if self.storage.head(&ref_key).await?.is_none() {
            bail!(
                "snapshot {id} not found in {} (it was deleted or never completed)",
                self.storage.describe()
            );
        }
        Ok(m)
    }

    /// Every committed snapshot at `path` or under `path/`, oldest first.
    pub async fn list_refs(&self, path: &str) -> Result<Vec<SnapshotRef>> {
        let listed = self
            .storage
            .list(&refs::refs_prefix(path))
            .await
            .context("cannot list snapshot refs")?;
        let mut out: Vec<SnapshotRef> = listed
            .iter()
            .filter_map(|m| refs::parse_ref_key(&m.key))
            .collect();
        out.sort_by(|a, b| (a.time_ns, &a.id).cmp(&(b.time_ns, &b.id)));
        Ok(out)
    }

    /// Reads the manifests of `refs`, several at a time, in order.
    pub async fn read_manifests(&self, refs: &[SnapshotRef]) -> Result<Vec<Manifest>> {
        stream::iter(refs)
            .map(|r| self.read_manifest(&r.id))
            .buffered(METADATA_READS)
            .try_collect()
            .await
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
