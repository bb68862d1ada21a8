//! Snapshot manifests: one small JSON object per snapshot, named by its hash.

use serde::{Deserialize, Serialize};

use super::chunklist::ChunkTree;
use super::ids::Id;

/// Version of the manifest layout written by this build.
pub const MANIFEST_VERSION: u32 = 1;
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
}

impl Manifest {
    /// Serialises the manifest; its snapshot id is derived from these bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifests always serialise")
    }

    /// Parses a manifest read from the store.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a valid manifest: {e}"))?;
        if m.version != MANIFEST_VERSION {
            return Err(format!(
                "manifest version {} is not supported by this kando (expects {MANIFEST_VERSION})",
                m.version
            ));
        }
        Ok(m)
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

    proptest! {
        #[test]
        fn roundtrip(path in "[a-z/]{0,40}", n in any::<u64>(), ids in proptest::collection::vec(any::<[u8;32]>(), 0..5)) {
            let m = Manifest {
                version: MANIFEST_VERSION, path, time: "2026-11-25T00:00:00Z".into(), time_ns: n,
                host: "h".into(), logical_size: n, stored_size: n / 2, stream_hash: Id::of(b"").to_hex(),
                chunk_count: ids.len() as u64,
                chunks: ChunkTree { depth: 0, ids: ids.iter().map(|i| Id(*i).to_hex()).collect() },
            };
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
