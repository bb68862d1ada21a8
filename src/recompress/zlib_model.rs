//! A model of zlib's match finder (deflate.c: `deflate_fast`, `deflate_slow`,
//! `longest_match`), which GNU gzip shares (same hash, chains, lazy rules and level table).
//! Run over the plaintext, it predicts the token stream a zlib-family compressor wrote;
//! an [`Oracle`] answers each prediction with the token actually used. Push records where
//! they differ (the corrections); pull replays the prediction with those corrections.
//!
//! After a wrong prediction the model resets to a plain state at the position after the
//! actual token. Both sides run the same code on the same plaintext and tokens, so they
//! stay in step whatever the producer did; a good model only makes corrections rare.

use super::tokens::{is_literal, literal, matched, token_len};

const WSIZE: usize = 32768;
const WMASK: usize = WSIZE - 1;
const HASH_SIZE: usize = 1 << 15;
/// zlib's MAX_DIST: WSIZE - MIN_LOOKAHEAD.
const MAX_DIST: usize = WSIZE - 262;
/// Length-3 matches further than this are not worth it (zlib and gzip).
const TOO_FAR: usize = 4096;

/// One row of zlib's `configuration_table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub lazy: bool,
    pub good: u32,
    /// `max_lazy` for lazy levels, `max_insert_length` for the fast ones.
    pub max_lazy: u32,
    pub nice: u32,
    pub chain: u32,
}

/// zlib's levels 1–9 (index 0 unused).
pub const LEVELS: [Params; 10] = [
    Params {
        lazy: false,
        good: 0,
        max_lazy: 0,
        nice: 0,
        chain: 0,
    },
    Params {
        lazy: false,
        good: 4,
        max_lazy: 4,
        nice: 8,
        chain: 4,
    },
    Params {
        lazy: false,
        good: 4,
        max_lazy: 5,
        nice: 16,
        chain: 8,
    },
    Params {
        lazy: false,
        good: 4,
        max_lazy: 6,
        nice: 32,
        chain: 32,
    },
    Params {
        lazy: true,
        good: 4,
        max_lazy: 4,
        nice: 16,
        chain: 16,
    },
    Params {
        lazy: true,
        good: 8,
        max_lazy: 16,
        nice: 32,
        chain: 32,
    },
    Params {
        lazy: true,
        good: 8,
        max_lazy: 16,
        nice: 128,
        chain: 128,
    },
    Params {
        lazy: true,
        good: 8,
        max_lazy: 32,
        nice: 128,
        chain: 256,
    },
    Params {
        lazy: true,
        good: 32,
        max_lazy: 128,
        nice: 258,
        chain: 1024,
    },
    Params {
        lazy: true,
        good: 32,
        max_lazy: 258,
        nice: 258,
        chain: 4096,
    },
];

/// Answers each predicted token with the token the stream has at `pos`; `None` stops.
pub trait Oracle {
    fn next(&mut self, pos: usize, predicted: u32) -> Option<u32>;
}

pub struct Model<'a> {
    buf: &'a [u8],
    end: usize,
    params: Params,
    /// Hash heads and chain links, as zlib keeps them: 16-bit offsets from `base`, 0 for
    /// none (so the stream's first byte is never a candidate, as in zlib), slid down by
    /// WSIZE when positions would overflow. Half the cache footprint of 32-bit positions:
    /// the chain walk is bound by these loads.
    head: Box<[u16; HASH_SIZE]>,
    prev: Box<[u16; WSIZE]>,
    base: usize,
    /// Positions below this have been inserted (or skipped).
    inserted: usize,
}

#[inline]
fn hash(b: &[u8]) -> usize {
    (((b[0] as usize) << 10) ^ ((b[1] as usize) << 5) ^ b[2] as usize) & (HASH_SIZE - 1)
}

impl<'a> Model<'a> {
    /// A model over `buf`, predicting from `start`; `buf[..start]` is the window (already
    /// seen plaintext, all of it hashed). `buf[0]` is never a candidate: at the stream's
    /// start zlib's NIL excludes it, in a later piece it is out of reach.
    pub fn new(buf: &'a [u8], start: usize, params: Params) -> Model<'a> {
        let mut m = Model {
            buf,
            end: buf.len(),
            params,
            head: Box::new([0; HASH_SIZE]),
            prev: Box::new([0; WSIZE]),
            base: 0,
            inserted: start.saturating_sub(WSIZE),
        };
        if start > 0 {
            m.insert_through(start - 1);
        }
        m
    }

    /// Inserts every position up to `q` that has three bytes before the end.
    #[inline]
    fn insert_through(&mut self, q: usize) {
        let last = q.min(self.end.saturating_sub(3));
        while self.inserted <= last {
            let p = self.inserted;
            if p - self.base > u16::MAX as usize {
                self.slide();
            }
            let h = hash(&self.buf[p..p + 3]);
            self.prev[p & WMASK] = self.head[h];
            self.head[h] = (p - self.base) as u16;
            self.inserted += 1;
        }
        self.inserted = self.inserted.max(q + 1);
    }

    /// Moves `base` up by WSIZE (zlib's `slide_hash`). Positions then dropped are more
    /// than MAX_DIST behind any position still searched from.
    fn slide(&mut self) {
        self.base += WSIZE;
        let down = |v: &mut u16| *v = v.saturating_sub(WSIZE as u16);
        self.head.iter_mut().for_each(down);
        self.prev.iter_mut().for_each(down);
    }

    /// zlib's INSERT_STRING: hashes `pos` and returns the chain it joined (0: none).
    #[inline]
    fn lookup(&mut self, pos: usize) -> u16 {
        if pos + 3 > self.end {
            return 0;
        }
        self.insert_through(pos);
        self.prev[pos & WMASK]
    }

    #[inline]
    fn first_candidate(&self, pos: usize, head: u16) -> Option<usize> {
        let c = self.base + head as usize;
        (head != 0 && pos - c <= MAX_DIST).then_some(c)
    }

    /// zlib's `longest_match`: the first longest match in the chain from `cur`, longer
    /// than `prev_length`; `match_start` changes only when one is found.
    fn longest_match(
        &self,
        pos: usize,
        mut cur: usize,
        prev_length: u32,
        match_start: &mut usize,
    ) -> u32 {
        let p = &self.params;
        let mut chain = if prev_length >= p.good {
            p.chain >> 2
        } else {
            p.chain
        };
        let lookahead = self.end - pos;
        let max_len = lookahead.min(258);
        let nice = (p.nice as usize).min(lookahead);
        let mut best = prev_length as usize;
        if best >= max_len {
            return best.min(lookahead) as u32;
        }
        // Candidates must lie after `pos - MAX_DIST` (zlib's `limit`), as offsets from base.
        let limit = if pos > MAX_DIST {
            (pos - MAX_DIST).saturating_sub(self.base) as u16
        } else {
            0
        };
        let buf = self.buf;
        let scan = &buf[pos..pos + max_len];
        let u16_at = |s: &[u8], i: usize| u16::from_le_bytes([s[i], s[i + 1]]);
        // Only a candidate longer than `best` matters, so any test that passes every such
        // candidate may reject the others: its first two bytes and those around `best`.
        let scan_start = u16_at(scan, 0);
        let mut scan_end = u16_at(scan, best - 1);
        loop {
            let m = cur;
            // m < pos, so the candidate's bytes up to max_len are in the buffer.
            let cand = &buf[m..m + max_len];
            if u16_at(cand, best - 1) == scan_end && u16_at(cand, 0) == scan_start {
                let len = common_prefix(cand, scan);
                if len > best {
                    *match_start = m;
                    best = len;
                    if len >= nice || len >= max_len {
                        break;
                    }
                    scan_end = u16_at(scan, best - 1);
                }
            }
            let next = self.prev[m & WMASK];
            chain -= 1;
            if next <= limit || chain == 0 {
                break;
            }
            cur = self.base + next as usize;
        }
        best.min(lookahead) as u32
    }

    /// Predicts tokens from `pos` to the end, asking `oracle` for each.
    pub fn run(&mut self, pos: usize, oracle: &mut dyn Oracle) {
        if self.params.lazy {
            self.run_lazy(pos, oracle)
        } else {
            self.run_fast(pos, oracle)
        }
    }

    fn run_fast(&mut self, mut pos: usize, oracle: &mut dyn Oracle) {
        let mut match_start = 0;
        while pos < self.end {
            let head = self.lookup(pos);
            let mut len = 0;
            if let Some(c) = self.first_candidate(pos, head) {
                len = self.longest_match(pos, c, 2, &mut match_start);
            }
            let predicted = if len >= 3 {
                matched(len, (pos - match_start) as u32)
            } else {
                literal(self.buf[pos])
            };
            let Some(actual) = oracle.next(pos, predicted) else {
                return;
            };
            let n = token_len(actual);
            if !is_literal(actual) {
                if n <= self.params.max_lazy as usize && self.end - (pos + n) >= 3 {
                    self.insert_through(pos + n - 1);
                } else {
                    self.inserted = self.inserted.max(pos + n);
                }
            }
            pos += n;
        }
    }

    fn run_lazy(&mut self, mut pos: usize, oracle: &mut dyn Oracle) {
        let max_lazy = self.params.max_lazy;
        let mut available = false;
        let mut match_length = 2u32;
        let mut match_start = 0usize;
        while pos < self.end {
            let head = self.lookup(pos);
            let prev_length = match_length;
            let prev_match = match_start;
            match_length = 2;
            if prev_length < max_lazy {
                if let Some(c) = self.first_candidate(pos, head) {
                    match_length = self.longest_match(pos, c, prev_length, &mut match_start);
                    if match_length == 3 && pos - match_start > TOO_FAR {
                        match_length = 2;
                    }
                }
            }
            let predicted = if prev_length >= 3 && match_length <= prev_length {
                matched(prev_length, (pos - 1 - prev_match) as u32)
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
                match_length = 2;
            }
        }
        if available {
            let at = pos - 1;
            let _ = oracle.next(at, literal(self.buf[at]));
        }
    }
}

/// One emission of a lazy matcher (zlib's `deflate_slow`, Go's `deflate`): the token at
/// `at = pos - 1` is predicted; the oracle says what it is. Returns the next position and
/// whether the matcher restarts plainly — after any match, or after a literal that was not
/// the prediction — or `None` to stop. A literal as predicted keeps the match already
/// found at `pos`, so the next position is `pos + 1`.
pub(super) fn lazy_emit(
    oracle: &mut dyn Oracle,
    pos: usize,
    predicted: u32,
    insert_through: impl FnOnce(usize),
) -> Option<(usize, bool)> {
    let at = pos - 1;
    let actual = oracle.next(at, predicted)?;
    if is_literal(predicted) && actual == predicted {
        return Some((pos + 1, false));
    }
    let n = token_len(actual);
    insert_through(at + n - 1);
    Some((at + n, true))
}

/// Length of the common prefix of two equally long slices.
#[inline]
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}
