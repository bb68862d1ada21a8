//! The ordered chunk list of a snapshot, stored as a tree so a manifest stays small for any
//! stream length. Leaves are data chunk ids; a full block of ids is stored as a blob
//! (deduplicated and packed like any chunk) and its id moves one level up. The manifest
//! holds only the top level: at most [`INLINE_MAX`] ids.
//!
//! Block format: magic "KNDOLST1" then 32-byte ids back to back.

use serde::{Deserialize, Serialize};

use super::crypto::Keys;
use super::ids::Id;

/// Magic prefix of a chunk-list block.
pub const BLOCK_MAGIC: &[u8; 8] = b"KNDOLST1";
/// Ids per stored block (1 MiB of ids).
pub const BLOCK_IDS: usize = 32 * 1024;
/// Most ids the manifest holds inline.
pub const INLINE_MAX: usize = 1024;
/// Deepest tree accepted when reading (a guard against corrupt manifests).
pub const MAX_DEPTH: u32 = 8;

/// The top of a chunk-list tree, as stored in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkTree {
    /// 0: `ids` are data chunks; n: they are blocks of depth n-1.
    pub depth: u32,
    /// Hex ids of the top level.
    pub ids: Vec<String>,
}

/// Encodes one block.
pub fn encode_block(ids: &[Id]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + ids.len() * 32);
    out.extend_from_slice(BLOCK_MAGIC);
    for id in ids {
        out.extend_from_slice(&id.0);
    }
    out
}

/// Decodes one block.
pub fn decode_block(bytes: &[u8]) -> Result<Vec<Id>, &'static str> {
    let body = bytes
        .strip_prefix(BLOCK_MAGIC.as_slice())
        .ok_or("not a chunk-list block (bad magic)")?;
    if body.len() % 32 != 0 || body.is_empty() {
        return Err("chunk-list block has a partial or no id");
    }
    Ok(body
        .chunks_exact(32)
        .map(|c| Id(c.try_into().unwrap()))
        .collect())
}

/// Builds the tree while ids stream in; full blocks are handed to `emit` at once, so
/// memory stays at one block per level.
#[derive(Debug)]
pub struct ChunkListWriter {
    keys: Keys,
    levels: Vec<Vec<Id>>,
    count: u64,
    block_ids: usize,
    inline_max: usize,
}

impl ChunkListWriter {
    /// A writer naming blocks as the repository with `keys` names chunks.
    pub fn new(keys: Keys) -> Self {
        Self::with_shape(keys, BLOCK_IDS, INLINE_MAX)
    }

    /// A writer with other block and inline sizes (tests use small ones to build deep trees).
    pub fn with_shape(keys: Keys, block_ids: usize, inline_max: usize) -> Self {
        assert!(block_ids >= 2 && inline_max >= 1);
        ChunkListWriter {
            keys,
            levels: Vec::new(),
            count: 0,
            block_ids,
            inline_max,
        }
    }

    /// Number of leaf ids pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends the next data chunk id.
    pub fn push<E>(
        &mut self,
        id: Id,
        emit: &mut impl FnMut(Id, Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.count += 1;
        self.push_at(0, id, emit)
    }

    fn push_at<E>(
        &mut self,
        level: usize,
        id: Id,
        emit: &mut impl FnMut(Id, Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.levels.len() == level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(id);
        if self.levels[level].len() == self.block_ids {
            let ids = std::mem::take(&mut self.levels[level]);
            let block = encode_block(&ids);
            let block_id = self.keys.chunk_id(&block);
            emit(block_id, block)?;
            self.push_at(level + 1, block_id, emit)?;
        }
        Ok(())
    }

    /// Flushes partial blocks and returns the tree's top for the manifest.
    pub fn finish<E>(
        mut self,
        emit: &mut impl FnMut(Id, Vec<u8>) -> Result<(), E>,
    ) -> Result<ChunkTree, E> {
        let mut level = 0;
        loop {
            if level == self.levels.len() {
                return Ok(ChunkTree {
                    depth: 0,
                    ids: vec![],
                });
            }
            let is_top = level + 1 == self.levels.len();
            let ids = std::mem::take(&mut self.levels[level]);
            if is_top && ids.len() <= self.inline_max {
                return Ok(ChunkTree {
                    depth: level as u32,
                    ids: ids.iter().map(Id::to_hex).collect(),
                });
            }
            if !ids.is_empty() {
                let block = encode_block(&ids);
                let block_id = self.keys.chunk_id(&block);
                emit(block_id, block)?;
                if is_top {
                    self.levels.push(Vec::new());
                }
                self.levels[level + 1].push(block_id);
            }
            level += 1;
        }
    }
}

/// A damaged chunk-list structure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChunkListError(String);

/// Walks a tree in order, fetching blocks on demand through `fetch`.
pub struct ChunkListReader<F> {
    stack: Vec<(Vec<Id>, usize, u32)>,
    fetch: F,
}

impl<F, E> ChunkListReader<F>
where
    F: FnMut(&Id) -> Result<Vec<u8>, E>,
    E: From<ChunkListError>,
{
    /// Starts at the manifest's top level.
    pub fn new(tree: &ChunkTree, fetch: F) -> Result<Self, E> {
        if tree.depth > MAX_DEPTH {
            return Err(E::from(ChunkListError(format!(
                "chunk list depth {} exceeds {MAX_DEPTH}",
                tree.depth
            ))));
        }
        let ids = tree
            .ids
            .iter()
            .map(|h| {
                Id::from_hex(h)
                    .ok_or_else(|| E::from(ChunkListError(format!("bad chunk id {h:?}"))))
            })
            .collect::<Result<Vec<_>, E>>()?;
        Ok(ChunkListReader {
            stack: vec![(ids, 0, tree.depth)],
            fetch,
        })
    }
}

impl<F, E> Iterator for ChunkListReader<F>
where
    F: FnMut(&Id) -> Result<Vec<u8>, E>,
    E: From<ChunkListError>,
{
    type Item = Result<Id, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (ids, pos, depth) = self.stack.last_mut()?;
            if *pos == ids.len() {
                self.stack.pop();
                continue;
            }
            let id = ids[*pos];
            *pos += 1;
            if *depth == 0 {
                return Some(Ok(id));
            }
            let child_depth = *depth - 1;
            let block = match (self.fetch)(&id) {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            match decode_block(&block) {
                Ok(children) => self.stack.push((children, 0, child_depth)),
                Err(why) => {
                    return Some(Err(E::from(ChunkListError(format!(
                        "chunk-list block {id}: {why}"
                    )))))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn roundtrip(n: u64) {
        roundtrip_shaped(n, ChunkListWriter::new(Keys::plain()), INLINE_MAX);
    }

    fn roundtrip_shaped(n: u64, mut w: ChunkListWriter, inline_max: usize) {
        let mut store: HashMap<Id, Vec<u8>> = HashMap::new();
        let ids: Vec<Id> = (0..n).map(|i| Id::of(&i.to_le_bytes())).collect();
        let mut emit = |id: Id, b: Vec<u8>| -> anyhow::Result<()> {
            store.insert(id, b);
            Ok(())
        };
        for id in &ids {
            w.push(*id, &mut emit).unwrap();
        }
        let tree = w.finish(&mut emit).unwrap();
        assert!(tree.ids.len() <= inline_max);
        let got: Vec<Id> = ChunkListReader::new(&tree, |id: &Id| {
            store
                .get(id)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("missing"))
        })
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
        assert_eq!(got, ids, "n={n}");
    }

    #[test]
    fn trees_of_every_shape_roundtrip() {
        for n in [
            0,
            1,
            2,
            1023,
            1024,
            1025,
            BLOCK_IDS as u64 - 1,
            BLOCK_IDS as u64,
            BLOCK_IDS as u64 + 1,
            3 * BLOCK_IDS as u64 + 7,
        ] {
            roundtrip(n);
        }
    }

    #[test]
    fn deep_tree_roundtrips() {
        // Blocks of 4 ids, 3 inline: 200 ids need depth 3.
        for n in [0, 3, 4, 5, 12, 13, 16, 17, 200] {
            roundtrip_shaped(n, ChunkListWriter::with_shape(Keys::plain(), 4, 3), 3);
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_blocks_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = decode_block(&bytes);
            let mut with_magic = BLOCK_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode_block(&with_magic);
        }
    }

    #[test]
    fn damaged_blocks_are_errors() {
        assert!(decode_block(b"").is_err());
        assert!(decode_block(BLOCK_MAGIC).is_err());
        let mut b = encode_block(&[Id::of(b"x")]);
        b.pop();
        assert!(decode_block(&b).is_err());
        let tree = ChunkTree {
            depth: 1,
            ids: vec![Id::of(b"x").to_hex()],
        };
        let r: anyhow::Result<Vec<Id>> =
            ChunkListReader::new(&tree, |_: &Id| anyhow::Ok(b"junk".to_vec()))
                .unwrap()
                .collect();
        assert!(r.is_err());
        let deep = ChunkTree {
            depth: 99,
            ids: vec![],
        };
        assert!(ChunkListReader::new(&deep, |_: &Id| anyhow::Ok(vec![])).is_err());
    }
}
