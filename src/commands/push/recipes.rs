//! The recipe stream of a recompressed input (`recompress::container`), stored as it is
//! written: fixed-size blocks become blobs beside the data chunks, listed in their own
//! chunk-list tree, so a long stream's recipes never sit in memory whole.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use crossbeam_channel::Sender;

use super::{Known, StoredBlob};
use crate::repo::chunklist::{ChunkListWriter, ChunkTree};
use crate::repo::crypto::Keys;
use crate::repo::ids::Id;
use crate::repo::pack::BlobEncoder;

/// Recipe bytes per stored block.
const BLOCK: usize = 256 * 1024;

/// The stored recipe stream: its tree, block count, length and hash.
pub(super) type Stored = (ChunkTree, u64, u64, Id);

pub(super) struct RecipeStore<'a> {
    keys: Keys,
    known: &'a Mutex<Known>,
    blobs: Sender<StoredBlob>,
    /// zstd for recipe blocks; none for tree blocks (hashes).
    encoder: BlobEncoder,
    tree_encoder: BlobEncoder,
    writer: ChunkListWriter,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    done: Arc<Mutex<Option<Stored>>>,
}

impl<'a> RecipeStore<'a> {
    pub(super) fn new(
        keys: Keys,
        known: &'a Mutex<Known>,
        blobs: Sender<StoredBlob>,
        zstd_level: i32,
    ) -> anyhow::Result<(Self, Arc<Mutex<Option<Stored>>>)> {
        let done = Arc::new(Mutex::new(None));
        Ok((
            RecipeStore {
                encoder: BlobEncoder::new(Some(zstd_level), keys.clone())?,
                tree_encoder: BlobEncoder::new(None, keys.clone())?,
                writer: ChunkListWriter::new(keys.clone()),
                keys,
                known,
                blobs,
                buf: Vec::new(),
                hasher: blake3::Hasher::new(),
                done: done.clone(),
            },
            done,
        ))
    }

    fn store_block(&mut self, block: Vec<u8>) -> io::Result<()> {
        let id = self.keys.chunk_id(&block);
        let RecipeStore {
            known,
            blobs,
            encoder,
            tree_encoder,
            writer,
            ..
        } = self;
        store(known, blobs, encoder, id, block)?;
        writer.push(id, &mut |id, b| store(known, blobs, tree_encoder, id, b))
    }
}

/// Sends a blob to the packer unless the repository or this push has it already.
fn store(
    known: &Mutex<Known>,
    blobs: &Sender<StoredBlob>,
    encoder: &mut BlobEncoder,
    id: Id,
    block: Vec<u8>,
) -> io::Result<()> {
    if known.lock().unwrap().claim(id) {
        let block = Bytes::from(block);
        let (codec, stored) = encoder.encode(&id, &block);
        blobs
            .send(StoredBlob {
                id,
                codec,
                raw_len: block.len() as u32,
                stored,
                _share: None,
            })
            .map_err(|_| io::Error::other("push pipeline stopped"))?;
    }
    Ok(())
}

impl Write for RecipeStore<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.buf.extend_from_slice(buf);
        while self.buf.len() >= BLOCK {
            let rest = self.buf.split_off(BLOCK);
            let block = std::mem::replace(&mut self.buf, rest);
            self.store_block(block)?;
        }
        Ok(buf.len())
    }

    /// Called once, at the end of the recipe stream: stores the last block and the tree.
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let block = std::mem::take(&mut self.buf);
            self.store_block(block)?;
        }
        let count = self.writer.count();
        let fresh = ChunkListWriter::new(self.keys.clone());
        let RecipeStore {
            known,
            blobs,
            tree_encoder,
            writer,
            hasher,
            ..
        } = self;
        let writer = std::mem::replace(writer, fresh);
        let tree = writer.finish(&mut |id, b| store(known, blobs, tree_encoder, id, b))?;
        let size = hasher.count();
        let hash = Id(*hasher.finalize().as_bytes());
        *self.done.lock().unwrap() = Some((tree, count, size, hash));
        Ok(())
    }
}
