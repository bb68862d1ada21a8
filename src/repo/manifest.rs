//! Snapshot manifests: one small JSON object per snapshot, named by its hash.

use serde::{Deserialize, Serialize};

use super::chunklist::ChunkTree;
use super::ids::Id;

/// Version of the manifest layout written by this build for a stream stored as it came.
pub const MANIFEST_VERSION: u32 = 1;
/// Version of a manifest whose chunks hold a container stream (a recompressed gzip or
/// zlib input, `recompress::container`): a kando that knows only version 1 refuses it
/// rather than restore the container's bytes, or let its gc walk only part of it.
pub const MANIFEST_VERSION_CONTAINER: u32 = 2;
/// Hex characters of a snapshot id (128 bits).
pub const SNAPSHOT_ID_LEN: usize = 32;

/// Everything needed to restore one pushed stream, and to show it in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Normalised `--path` the stream was pushed to.
    pub path: String,
    /// Push time, RFC 3339 UTC.
    pub time: String,
    /// Push time in nanoseconds since the Unix epoch (orders snapshots of one path).
    pub time_ns: u64,
    /// Host that pushed it.
    pub host: String,
    /// Bytes read from the input.
    pub logical_size: u64,
    /// Bytes this push added to the repository (packs, index, manifest).
    pub stored_size: u64,
    /// BLAKE3 of the whole stream, hex.
    pub stream_hash: String,
    /// Number of data chunks.
    pub chunk_count: u64,
    /// The ordered chunk list.
    pub chunks: ChunkTree,
    /// Version 2: the chunks hold this container stream, which rebuilds the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<StoredContainer>,
}

/// A version-2 snapshot: its chunks hold the data stream of a recompressed input, and
/// the recipe stream that rebuilds the input from it has its own chunk list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredContainer {
    /// The format of both streams: `kdz1`.
    pub format: String,
    /// The data stream's length and BLAKE3 hash, hex.
    pub size: u64,
    pub hash: String,
    /// The recipe stream: its blocks, their number, its length and hash.
    pub recipes: ChunkTree,
    pub recipe_blocks: u64,
    pub recipe_size: u64,
    pub recipe_hash: String,
}

/// The container format this build writes and reads.
pub const CONTAINER_FORMAT: &str = "kdz1";

impl Manifest {
    /// Every chunk-list tree the snapshot needs: its chunks, and its recipes if any.
    pub fn trees(&self) -> impl Iterator<Item = &ChunkTree> {
        std::iter::once(&self.chunks).chain(self.container.as_ref().map(|c| &c.recipes))
    }

    /// Serialises the manifest; its snapshot id is derived from these bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifests always serialise")
    }

    /// Parses a manifest read from the store.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a valid manifest: {e}"))?;
        match (m.version, &m.container) {
            (MANIFEST_VERSION, None) => Ok(m),
            (MANIFEST_VERSION_CONTAINER, Some(c)) if c.format == CONTAINER_FORMAT => Ok(m),
            (MANIFEST_VERSION_CONTAINER, Some(c)) => Err(format!(
                "snapshot stored in container format {:?}, which this kando does not know: restore it with a newer kando",
                c.format
            )),
            _ => Err(format!(
                "manifest version {} is not supported by this kando (expects {MANIFEST_VERSION} or {MANIFEST_VERSION_CONTAINER}): restore it with a newer kando",
                m.version
            )),
        }
    }
}

/// The snapshot id of manifest bytes: the first [`SNAPSHOT_ID_LEN`] hex digits of their hash.
pub fn snapshot_id(manifest_bytes: &[u8]) -> String {
    Id::of(manifest_bytes).to_hex()[..SNAPSHOT_ID_LEN].to_string()
}

/// True when `s` has the shape of a snapshot id.
pub fn is_snapshot_id(s: &str) -> bool {
    s.len() == SNAPSHOT_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn versions_and_containers_must_agree() {
        let plain = r#"{"version":1,"path":"p","time":"t","time_ns":1,"host":"h","logical_size":1,"stored_size":1,"stream_hash":"00","chunk_count":0,"chunks":{"depth":0,"ids":[]}}"#;
        assert!(Manifest::decode(plain.as_bytes()).is_ok());
        let v2_without = plain.replace(r#""version":1"#, r#""version":2"#);
        assert!(Manifest::decode(v2_without.as_bytes()).is_err());
        let c = r#","container":{"format":"kdz1","size":5,"hash":"00","recipes":{"depth":0,"ids":[]},"recipe_blocks":0,"recipe_size":0,"recipe_hash":"00"}}"#;
        let v2 = format!("{}{c}", &v2_without[..v2_without.len() - 1]);
        assert!(Manifest::decode(v2.as_bytes()).is_ok());
        let v1_with = v2.replace(r#""version":2"#, r#""version":1"#);
        assert!(Manifest::decode(v1_with.as_bytes()).is_err());
        let unknown = v2.replace("kdz1", "kdz9");
        assert!(Manifest::decode(unknown.as_bytes())
            .unwrap_err()
            .contains("newer kando"));
        let v3 = plain.replace(r#""version":1"#, r#""version":3"#);
        assert!(Manifest::decode(v3.as_bytes())
            .unwrap_err()
            .contains("version 3"));
    }

    proptest! {
        #[test]
        fn roundtrip(path in "[a-z/]{0,40}", n in any::<u64>(), ids in proptest::collection::vec(any::<[u8;32]>(), 0..5)) {
            let m = Manifest {
                version: MANIFEST_VERSION, path, time: "2026-11-25T00:00:00Z".into(), time_ns: n,
                host: "h".into(), logical_size: n, stored_size: n / 2, stream_hash: Id::of(b"").to_hex(),
                chunk_count: ids.len() as u64,
                chunks: ChunkTree { depth: 0, ids: ids.iter().map(|i| Id(*i).to_hex()).collect() },
                container: (n % 2 == 1).then(|| StoredContainer {
                    format: CONTAINER_FORMAT.into(), size: n / 3, hash: Id::of(b"x").to_hex(),
                    recipes: ChunkTree { depth: 0, ids: vec![Id::of(b"r").to_hex()] },
                    recipe_blocks: 1, recipe_size: 9, recipe_hash: Id::of(b"y").to_hex(),
                }),
            };
            let m = Manifest { version: if m.container.is_some() { MANIFEST_VERSION_CONTAINER } else { MANIFEST_VERSION }, ..m };
            let bytes = m.encode();
            prop_assert_eq!(Manifest::decode(&bytes).unwrap(), m);
            prop_assert!(is_snapshot_id(&snapshot_id(&bytes)));
            let cut = bytes.len() / 2;
            prop_assert!(Manifest::decode(&bytes[..cut]).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Manifest::decode(&bytes);
        }
    }
}
