//! A model of Go's compress/flate at levels 4–9 (deflate.go: `deflate`, `findMatch`):
//! what mongodump `--gzip` and every Go program's gzip.NewWriter write (level 6 by
//! default). Same contract as `zlib_model`: it predicts, an [`Oracle`] answers, and after
//! a wrong prediction both push and pull restart it the same way.
//!
//! Go differs from zlib in ways that change every other token: 4-byte hashes in a
//! 2^17-entry table, no length-3 matches (length 4 only within 4096 bytes), a lazy rule
//! that searches from scratch at each position (not for something longer than the
//! previous match), position 0 matchable, and distances up to 32768.

use super::tokens::{literal, matched};
use super::zlib_model::{lazy_emit, Oracle};

const WSIZE: usize = 32768;
const WMASK: usize = WSIZE - 1;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;

/// One row of Go's `levels` table (the lazy levels 4–9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoParams {
    pub good: u32,
    pub lazy: u32,
    pub nice: u32,
    pub chain: u32,
}

/// Go's levels 4–9, indexed by level − 4.
pub const GO_LEVELS: [GoParams; 6] = [
    GoParams {
        good: 4,
        lazy: 4,
        nice: 16,
        chain: 16,
    },
    GoParams {
        good: 8,
        lazy: 16,
        nice: 32,
        chain: 32,
    },
    GoParams {
        good: 8,
        lazy: 16,
        nice: 128,
        chain: 128,
    },
    GoParams {
        good: 8,
        lazy: 32,
        nice: 128,
        chain: 256,
    },
    GoParams {
        good: 32,
        lazy: 128,
        nice: 258,
        chain: 1024,
    },
    GoParams {
        good: 32,
        lazy: 258,
        nice: 258,
        chain: 4096,
    },
];

#[inline]
fn hash4(b: &[u8]) -> usize {
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (v.wrapping_mul(0x1e35a7bd) >> (32 - HASH_BITS)) as usize
}

pub struct GoModel<'a> {
    buf: &'a [u8],
    end: usize,
    params: GoParams,
    /// Positions + 1 (0: none), as Go keeps them (`index + hashOffset`).
    head: Vec<u32>,
    prev: Box<[u32; WSIZE]>,
    /// Positions below this are in the hash table.
    inserted: usize,
}

impl<'a> GoModel<'a> {
    /// A model over `buf` predicting from `start`; `buf[..start]` is the window, hashed.
    pub fn new(buf: &'a [u8], start: usize, params: GoParams) -> GoModel<'a> {
        let mut m = GoModel {
            buf,
            end: buf.len(),
            params,
            head: vec![0; HASH_SIZE],
            prev: Box::new([0; WSIZE]),
            inserted: start.saturating_sub(WSIZE),
        };
        if start > 0 {
            m.insert_through(start - 1);
        }
        m
    }

    /// Hashes every position up to `q` that has four bytes before the end.
    #[inline]
    fn insert_through(&mut self, q: usize) {
        let last = q.min(self.end.saturating_sub(4));
        while self.inserted <= last {
            let p = self.inserted;
            let h = hash4(&self.buf[p..p + 4]);
            self.prev[p & WMASK] = self.head[h];
            self.head[h] = p as u32 + 1;
            self.inserted += 1;
        }
        self.inserted = self.inserted.max(q + 1);
    }

    /// Go's `findMatch` from `cur`: the first longest match over 3 bytes (4 only within
    /// 4096), at most `chain` candidates back to `pos - 32768`.
    fn find_match(&self, pos: usize, mut cur: usize) -> Option<(usize, usize)> {
        let p = &self.params;
        let look = (self.end - pos).min(258);
        let nice = (p.nice as usize).min(look);
        let min_index = pos as isize - WSIZE as isize;
        let mut length = 3usize;
        if look <= length {
            return None;
        }
        let mut found = None;
        let buf = self.buf;
        let scan = &buf[pos..pos + look];
        let mut w_end = scan[length];
        let mut tries = p.chain;
        while tries > 0 {
            let cand = &buf[cur..cur + look];
            if cand[length] == w_end {
                let n = super::zlib_model::common_prefix(cand, scan);
                if n > length && (n > 4 || pos - cur <= 4096) {
                    length = n;
                    found = Some((n, pos - cur));
                    if n >= nice {
                        break;
                    }
                    w_end = scan[n];
                }
            }
            if cur as isize == min_index {
                break;
            }
            let next = self.prev[cur & WMASK] as isize - 1;
            if next < min_index || next < 0 {
                break;
            }
            cur = next as usize;
            tries -= 1;
        }
        found
    }

    /// Predicts tokens from `pos` to the end, asking `oracle` for each.
    pub fn run(&mut self, mut pos: usize, oracle: &mut dyn Oracle) {
        let lazy = self.params.lazy as usize;
        let mut available = false;
        let (mut length, mut offset) = (3usize, 0usize);
        let mut chain_head: isize = -1;
        while pos < self.end {
            let lookahead = self.end - pos;
            if pos + 4 <= self.end {
                self.insert_through(pos);
                chain_head = self.prev[pos & WMASK] as isize - 1;
            }
            let (prev_length, prev_offset) = (length, offset);
            length = 3;
            offset = 0;
            let min_index = pos.saturating_sub(WSIZE) as isize;
            if chain_head >= min_index
                && chain_head >= 0
                && lookahead > prev_length
                && prev_length < lazy
            {
                if let Some((n, d)) = self.find_match(pos, chain_head as usize) {
                    length = n;
                    offset = d;
                }
            }
            let predicted = if prev_length >= 4 && length <= prev_length {
                matched(prev_length as u32, prev_offset as u32)
            } else if available {
                literal(self.buf[pos - 1])
            } else {
                available = true;
                pos += 1;
                continue;
            };
            let Some((next, restart)) =
                lazy_emit(oracle, pos, predicted, |q| self.insert_through(q))
            else {
                return;
            };
            pos = next;
            if restart {
                available = false;
                length = 3;
            }
        }
        if available {
            let at = pos - 1;
            let _ = oracle.next(at, literal(self.buf[at]));
        }
    }
}
