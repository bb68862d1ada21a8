//! Writes deflate blocks' bits as tokens arrive: push proves a recipe with it, pull
//! rebuilds a piece with it. It also tells the model where stored blocks are (their bytes
//! are copied, not predicted).

use super::bits::{BitWriter, SliceBits};
use super::huffman::{canonical_codes, fixed_lengths, read_dynamic_lengths};
use super::inflate::{Block, BlockKind};
use super::tokens::{
    dist_code, distance, is_literal, token_len, DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_CODE,
    LEN_EXTRA,
};

/// Writes blocks' bits as tokens arrive, and tells the model where stored blocks are.
pub struct BlockCursor<'a> {
    blocks: &'a [Block],
    pub data: &'a [u8],
    /// Next plaintext byte (stored blocks copy from here).
    pub at: usize,
    next_block: usize,
    /// Tokens (or stored bytes) left in the current block; `None` before the first.
    left: Option<u32>,
    stored: bool,
    lit_codes: Vec<u32>,
    lit_lens: Vec<u8>,
    dist_codes: Vec<u32>,
    dist_lens: Vec<u8>,
    out: BitWriter,
}

impl<'a> BlockCursor<'a> {
    pub fn new(
        blocks: &'a [Block],
        data: &'a [u8],
        start: usize,
        phase: u8,
        bits_hint: usize,
    ) -> Self {
        BlockCursor {
            blocks,
            data,
            at: start,
            next_block: 0,
            left: None,
            stored: false,
            lit_codes: Vec::new(),
            lit_lens: Vec::new(),
            dist_codes: Vec::new(),
            dist_lens: Vec::new(),
            out: BitWriter::new(phase as u32, bits_hint / 8 + 16),
        }
    }

    /// Closes exhausted blocks and opens the next until one has something left.
    /// Returns whether the next emission lies in a stored block.
    pub fn ready(&mut self) -> Result<bool, &'static str> {
        while self.left == Some(0) || self.left.is_none() {
            if self.left == Some(0) && !self.stored {
                self.out.put(self.lit_codes[256], self.lit_lens[256] as u32);
            }
            let Some(block) = self.blocks.get(self.next_block) else {
                return Err("more plaintext than blocks");
            };
            self.next_block += 1;
            self.open(block)?;
        }
        Ok(self.stored)
    }

    fn open(&mut self, block: &Block) -> Result<(), &'static str> {
        self.out.put(block.last as u32, 1);
        match &block.kind {
            BlockKind::Stored { pad_bits, pad, len } => {
                self.out.put(0, 2);
                self.out.put(*pad as u32, *pad_bits as u32);
                if !self.out.bit_len().is_multiple_of(8) {
                    return Err("stored block not byte-aligned");
                }
                self.out.put(*len as u32 | ((!*len as u32) << 16), 32);
                let end = self.at + *len as usize;
                let bytes = self
                    .data
                    .get(self.at..end)
                    .ok_or("stored block past the plaintext")?;
                for &b in bytes {
                    self.out.put(b as u32, 8);
                }
                self.stored = true;
                self.left = Some(*len as u32);
            }
            BlockKind::Fixed => {
                self.out.put(1, 2);
                let (lit, dist) = fixed_lengths();
                self.set_codes(lit, dist)?;
                self.stored = false;
                self.left = Some(block.tokens);
            }
            BlockKind::Dynamic {
                header,
                header_bits,
            } => {
                self.out.put(2, 2);
                self.out.put_bitstring(header, *header_bits as usize);
                let mut src = SliceBits::new(header, 0);
                let (lit, dist) = read_dynamic_lengths(&mut src)?;
                if src.position() != *header_bits as usize {
                    return Err("block header length mismatch");
                }
                self.set_codes(lit, dist)?;
                self.stored = false;
                self.left = Some(block.tokens);
            }
        }
        Ok(())
    }

    fn set_codes(&mut self, lit: Vec<u8>, dist: Vec<u8>) -> Result<(), &'static str> {
        self.lit_codes = canonical_codes(&lit)?;
        self.dist_codes = canonical_codes(&dist)?;
        self.lit_lens = lit;
        self.dist_lens = dist;
        Ok(())
    }

    /// Writes the token just decided (nothing for stored bytes: written with the block).
    #[inline]
    fn emit(&mut self, t: u32) -> Result<(), &'static str> {
        let n = token_len(t);
        self.at += n;
        if let Some(left) = self.left.as_mut() {
            *left -= if self.stored { n as u32 } else { 1 };
        }
        if self.stored {
            return Ok(());
        }
        if is_literal(t) {
            let b = (t & 0xff) as usize;
            let len = self.lit_lens[b];
            if len == 0 {
                return Err("literal has no code");
            }
            self.out.put(self.lit_codes[b], len as u32);
        } else {
            let lc = LEN_CODE[n] as usize;
            let sym = 257 + lc;
            let len = *self.lit_lens.get(sym).ok_or("length has no code")?;
            if len == 0 {
                return Err("length has no code");
            }
            self.out.put(self.lit_codes[sym], len as u32);
            self.out
                .put((n - LEN_BASE[lc] as usize) as u32, LEN_EXTRA[lc] as u32);
            let d = distance(t);
            let dc = dist_code(d);
            let dlen = *self.dist_lens.get(dc).ok_or("distance has no code")?;
            if dlen == 0 {
                return Err("distance has no code");
            }
            self.out.put(self.dist_codes[dc], dlen as u32);
            self.out
                .put((d - DIST_BASE[dc] as usize) as u32, DIST_EXTRA[dc] as u32);
        }
        Ok(())
    }

    /// Writes the token an oracle decided (or keeps its error) and hands it to the model.
    pub fn settle(
        &mut self,
        decided: Result<Option<u32>, &'static str>,
        error: &mut Option<&'static str>,
    ) -> Option<u32> {
        match decided.and_then(|t| t.map(|t| self.emit(t).map(|()| t)).transpose()) {
            Ok(t) => t,
            Err(e) => {
                *error = Some(e);
                None
            }
        }
    }

    /// Closes the last block and any empty blocks after it, then the final padding.
    pub fn finish(mut self, final_pad: Option<(u8, u8)>) -> Result<(Vec<u8>, u64), &'static str> {
        loop {
            if self.left == Some(0) && !self.stored {
                self.out.put(self.lit_codes[256], self.lit_lens[256] as u32);
            }
            self.left = None;
            match self.blocks.get(self.next_block) {
                None => break,
                Some(b) => {
                    self.next_block += 1;
                    self.open(b)?;
                    if self.left != Some(0) {
                        return Err("a block after the plaintext is not empty");
                    }
                }
            }
        }
        if let Some((bits, v)) = final_pad {
            self.out.put(v as u32, bits as u32);
        }
        Ok(self.out.finish())
    }
}
