//! Streaming inflate that keeps what a re-encoder needs: every block's kind and header
//! bits, and the token sequence, beside the plaintext. Reads the input through
//! [`Input`], which also hashes and counts every byte the push received.

use std::io::{self, Read};

use super::bits::{extract_bits, BitSource};
use super::huffman::{fixed_lengths, read_dynamic_lengths, Decoder};
use super::tokens::{literal, matched, DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_EXTRA};

/// Bytes asked of the input at a time.
const READ_SIZE: usize = 256 * 1024;

/// The pushed bytes, buffered from the oldest byte still needed, with a bit cursor.
pub struct Input<R> {
    src: R,
    buf: Vec<u8>,
    /// Input offset of `buf[0]`.
    base: u64,
    /// Next byte of `buf` to move into `acc`.
    next: usize,
    acc: u64,
    /// Bits in `acc`.
    n: u32,
    eof: bool,
    hasher: blake3::Hasher,
}

impl<R: Read> Input<R> {
    pub fn new(src: R) -> Self {
        Input {
            src,
            buf: Vec::new(),
            base: 0,
            next: 0,
            acc: 0,
            n: 0,
            eof: false,
            hasher: blake3::Hasher::new(),
        }
    }

    /// Reads more input; false at its end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_SIZE, 0);
        let got = loop {
            match self.src.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + got);
        self.hasher.update(&self.buf[old..]);
        if got == 0 {
            self.eof = true;
        }
        Ok(got > 0)
    }

    /// Makes at least `k` (≤ 56) bits available if the input has them.
    #[inline]
    fn need(&mut self, k: u32) -> io::Result<()> {
        if self.n < k && self.next + 8 <= self.buf.len() {
            // Eight bytes at once; the accumulator takes as many whole bytes as fit.
            let v = u64::from_le_bytes(self.buf[self.next..self.next + 8].try_into().unwrap());
            self.acc |= v << self.n;
            let take = (63 - self.n) / 8;
            self.next += take as usize;
            self.n += take * 8;
            return Ok(());
        }
        while self.n < k {
            if self.next < self.buf.len() {
                self.acc |= (self.buf[self.next] as u64) << self.n;
                self.n += 8;
                self.next += 1;
            } else if !self.fill()? {
                break;
            }
        }
        Ok(())
    }

    #[inline]
    fn consume(&mut self, k: u32) {
        self.acc >>= k;
        self.n -= k;
    }

    /// Input offset, in bits, of the next unread bit.
    pub fn bit_pos(&self) -> u64 {
        (self.base + self.next as u64) * 8 - self.n as u64
    }

    /// Skips to the next byte boundary; returns the skipped bits (count, value).
    pub fn align(&mut self) -> (u8, u8) {
        let k = self.n % 8;
        let v = (self.acc & ((1 << k) - 1)) as u8;
        self.consume(k);
        // Whole bytes still in the accumulator go back to the buffer.
        self.next -= (self.n / 8) as usize;
        self.acc = 0;
        self.n = 0;
        (k as u8, v)
    }

    /// Reads whole bytes (the cursor must be byte-aligned); fewer at the input's end.
    pub fn read_bytes(&mut self, count: usize) -> io::Result<Vec<u8>> {
        debug_assert_eq!(self.n, 0);
        while self.buf.len() - self.next < count && self.fill()? {}
        let take = count.min(self.buf.len() - self.next);
        let v = self.buf[self.next..self.next + take].to_vec();
        self.next += take;
        Ok(v)
    }

    /// The next `count` bytes without consuming them (fewer at the end of input).
    pub fn peek_bytes(&mut self, count: usize) -> io::Result<&[u8]> {
        debug_assert_eq!(self.n, 0);
        while self.buf.len() - self.next < count && self.fill()? {}
        let end = (self.next + count).min(self.buf.len());
        Ok(&self.buf[self.next..end])
    }

    /// Input bytes `from..to` (offsets), which must still be buffered.
    pub fn bytes(&self, from: u64, to: u64) -> &[u8] {
        &self.buf[(from - self.base) as usize..(to - self.base) as usize]
    }

    /// Forgets buffered input before offset `to`.
    pub fn discard_before(&mut self, to: u64) {
        let k = (to - self.base) as usize;
        debug_assert!(k <= self.next);
        self.buf.drain(..k);
        self.base = to;
        self.next -= k;
    }

    /// The rest of the input from byte offset `from`, in pieces of exactly `size` bytes
    /// but the last. Never shorter because a read was: push stores short runs in the
    /// recipe stream, so sizes that followed the pipe's reads made the data stream, and
    /// with it dedup, differ between two pushes of the same bytes.
    pub fn drain_rest(&mut self, from: u64, size: usize) -> io::Result<Option<Vec<u8>>> {
        self.acc = 0;
        self.n = 0;
        self.next = (from - self.base) as usize;
        while self.buf.len() < self.next + size && self.fill()? {}
        if self.buf.len() <= self.next {
            return Ok(None);
        }
        let take = size.min(self.buf.len() - self.next);
        let v = self.buf[self.next..self.next + take].to_vec();
        self.next += take;
        self.discard_before(self.base + self.next as u64);
        Ok(Some(v))
    }

    /// Bytes read so far and their BLAKE3 hash (call at the end of input).
    pub fn finish(mut self) -> io::Result<(u64, blake3::Hash)> {
        while self.fill()? {
            self.buf.clear();
            self.next = 0;
        }
        let len = self.hasher.count();
        Ok((len, self.hasher.finalize()))
    }
}

impl<R: Read> BitSource for Input<R> {
    fn bits(&mut self, count: u32) -> Option<u32> {
        self.need(count).ok()?;
        if self.n < count {
            return None;
        }
        let v = (self.acc & ((1u64 << count) - 1)) as u32;
        self.consume(count);
        Some(v)
    }
}

/// How one block was coded; enough, with its tokens, to write its bits again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    /// Stored: the bits skipped to reach a byte boundary, then LEN bytes.
    Stored {
        pad_bits: u8,
        pad: u8,
        len: u16,
    },
    Fixed,
    /// The header after BTYPE (code lengths), verbatim.
    Dynamic {
        header: Vec<u8>,
        header_bits: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub last: bool,
    pub kind: BlockKind,
    /// Tokens of a fixed or dynamic block (its end-of-block code not counted).
    pub tokens: u32,
}

/// Why a deflate stream could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    #[error("the deflate data ends early")]
    Truncated,
    #[error("invalid deflate data: {0}")]
    Invalid(&'static str),
    #[error("a deflate block is larger than {0} MiB of plaintext")]
    TooLarge(usize),
    #[error("cannot read the input: {0}")]
    Io(#[from] io::Error),
}

/// Plaintext and tokens decoded since the last cut, with the window before them.
pub struct Decoded {
    /// Up to 32 KiB of earlier plaintext of this stream, then the new plaintext.
    pub data: Vec<u8>,
    /// Where the new plaintext starts in `data`.
    pub start: usize,
    pub tokens: Vec<u32>,
    pub blocks: Vec<Block>,
}

impl Decoded {
    pub fn new(window: Vec<u8>) -> Decoded {
        let start = window.len();
        Decoded {
            data: window,
            start,
            tokens: Vec::new(),
            blocks: Vec::new(),
        }
    }

    pub fn plain_len(&self) -> usize {
        self.data.len() - self.start
    }

    /// The last 32 KiB of plaintext: the window of what follows.
    pub fn window_after(&self) -> Vec<u8> {
        self.data[self.data.len().saturating_sub(32768)..].to_vec()
    }
}

/// Decodes one block into `out`; `max_plain` bounds the plaintext held.
pub fn inflate_block<R: Read>(
    input: &mut Input<R>,
    out: &mut Decoded,
    max_plain: usize,
) -> Result<(), InflateError> {
    let head = input.bits(3).ok_or(InflateError::Truncated)?;
    let last = head & 1 == 1;
    match head >> 1 {
        0 => {
            let (pad_bits, pad) = input.align();
            let lens = input.read_bytes(4)?;
            if lens.len() < 4 {
                return Err(InflateError::Truncated);
            }
            let len = u16::from_le_bytes([lens[0], lens[1]]);
            if len != !u16::from_le_bytes([lens[2], lens[3]]) {
                return Err(InflateError::Invalid("stored block length check failed"));
            }
            if out.plain_len() + len as usize > max_plain {
                return Err(InflateError::TooLarge(max_plain >> 20));
            }
            let bytes = input.read_bytes(len as usize)?;
            if bytes.len() < len as usize {
                return Err(InflateError::Truncated);
            }
            out.data.extend_from_slice(&bytes);
            out.blocks.push(Block {
                last,
                kind: BlockKind::Stored { pad_bits, pad, len },
                tokens: 0,
            });
        }
        1 => {
            let (lit, dist) = fixed_lengths();
            let (lit, dist) = (Decoder::new(&lit).unwrap(), Decoder::new(&dist).unwrap());
            let tokens = inflate_codes(input, out, &lit, &dist, max_plain)?;
            out.blocks.push(Block {
                last,
                kind: BlockKind::Fixed,
                tokens,
            });
        }
        2 => {
            let from = input.bit_pos();
            let (lit, dist) = read_dynamic_lengths(input).map_err(|e| {
                if e.contains("ends") {
                    InflateError::Truncated
                } else {
                    InflateError::Invalid(e)
                }
            })?;
            let to = input.bit_pos();
            let first = from / 8;
            let bytes = input.bytes(first, to.div_ceil(8));
            let header = extract_bits(bytes, from - first * 8, to - from);
            let lit = Decoder::new(&lit).map_err(InflateError::Invalid)?;
            let dist = Decoder::new(&dist).map_err(InflateError::Invalid)?;
            let tokens = inflate_codes(input, out, &lit, &dist, max_plain)?;
            out.blocks.push(Block {
                last,
                kind: BlockKind::Dynamic {
                    header,
                    header_bits: (to - from) as u32,
                },
                tokens,
            });
        }
        _ => return Err(InflateError::Invalid("reserved block type")),
    }
    Ok(())
}

/// Decodes a Huffman-coded block's symbols up to its end-of-block code.
fn inflate_codes<R: Read>(
    input: &mut Input<R>,
    out: &mut Decoded,
    lit: &Decoder,
    dist: &Decoder,
    max_plain: usize,
) -> Result<u32, InflateError> {
    let mut count = 0u32;
    let limit = out.start + max_plain;
    loop {
        // A length symbol, its extra bits, a distance symbol and its extra bits: ≤ 48 bits.
        input.need(48)?;
        let (sym, len) = lit
            .lookup(input.acc)
            .ok_or(InflateError::Invalid("invalid literal/length code"))?;
        if len > input.n {
            return Err(InflateError::Truncated);
        }
        input.consume(len);
        if sym < 256 {
            out.data.push(sym as u8);
            out.tokens.push(literal(sym as u8));
        } else if sym == 256 {
            return Ok(count);
        } else {
            let code = sym as usize - 257;
            if code >= 29 {
                return Err(InflateError::Invalid("invalid length code"));
            }
            let extra = LEN_EXTRA[code] as u32;
            if input.n < extra {
                return Err(InflateError::Truncated);
            }
            let length = LEN_BASE[code] as u32 + (input.acc & ((1 << extra) - 1)) as u32;
            input.consume(extra);
            if length > 258 || (code == 27 && length == 258) {
                // 258 written as code 284 + 31 is not something our encoder reproduces.
                return Err(InflateError::Invalid("length 258 coded as 284"));
            }
            let (dsym, dlen) = dist
                .lookup(input.acc)
                .ok_or(InflateError::Invalid("invalid distance code"))?;
            if dlen > input.n {
                return Err(InflateError::Truncated);
            }
            input.consume(dlen);
            let dsym = dsym as usize;
            if dsym >= 30 {
                return Err(InflateError::Invalid("invalid distance code"));
            }
            let dextra = DIST_EXTRA[dsym] as u32;
            if input.n < dextra {
                return Err(InflateError::Truncated);
            }
            let d = DIST_BASE[dsym] as usize + (input.acc & ((1 << dextra) - 1)) as usize;
            input.consume(dextra);
            if d > out.data.len() {
                return Err(InflateError::Invalid("distance too far back"));
            }
            let from = out.data.len() - d;
            if d >= length as usize {
                out.data.extend_from_within(from..from + length as usize);
            } else {
                for i in 0..length as usize {
                    let b = out.data[from + i];
                    out.data.push(b);
                }
            }
            out.tokens.push(matched(length, d as u32));
        }
        count += 1;
        if out.data.len() > limit {
            return Err(InflateError::TooLarge((limit - out.start) >> 20));
        }
    }
}
