//! A piece's recipe: what recreates its deflate bits from its plaintext. Blocks (kind,
//! verbatim dynamic header, token count), the model level, and the corrections to the
//! model's predictions. [`analyze`] makes one at push and proves it by writing the bits
//! again; [`rebuild`] writes the bits at pull.

use super::block_writer::BlockCursor;
use super::go_model::{GoModel, GO_LEVELS};
use super::inflate::{Block, BlockKind};
use super::tokens::{distance, is_literal, literal, matched, token_len};
use super::zlib_model::{Model, Oracle, LEVELS};

/// Model levels a recipe names: zlib's 1–9, and Go's 4–9 as 14–19.
const GO_LEVEL_BASE: u8 = 10;

fn known_level(level: u8) -> bool {
    (1..=9).contains(&level) || (GO_LEVEL_BASE + 4..=GO_LEVEL_BASE + 9).contains(&level)
}

/// Runs the model `level` names over `data` from `start`.
fn run_model(data: &[u8], start: usize, level: u8, oracle: &mut dyn Oracle) {
    if level > GO_LEVEL_BASE {
        let params = GO_LEVELS[(level - GO_LEVEL_BASE - 4) as usize];
        GoModel::new(data, start, params).run(start, oracle)
    } else {
        Model::new(data, start, LEVELS[level as usize]).run(start, oracle)
    }
}

/// The level Go's gzip.NewWriter uses (DefaultCompression = 6).
pub const GO_DEFAULT: u8 = GO_LEVEL_BASE + 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Bit offset of the piece's first bit in its first byte.
    pub phase: u8,
    /// zlib level of the model (1–9).
    pub level: u8,
    pub blocks: Vec<Block>,
    /// Bits after the last block up to the byte boundary, when the piece ends its stream.
    pub final_pad: Option<(u8, u8)>,
    /// (index among Huffman-coded tokens, actual token) where the model was wrong.
    pub corrections: Vec<(u64, u32)>,
}

/// A piece as push decoded it.
pub struct PieceInput<'a> {
    /// Window then plaintext.
    pub data: &'a [u8],
    pub start: usize,
    pub tokens: &'a [u32],
    pub blocks: &'a [Block],
    pub final_pad: Option<(u8, u8)>,
    /// The original bits: `compressed` from bit `phase` for `bits` bits.
    pub compressed: &'a [u8],
    pub phase: u8,
    pub bits: u64,
}

/// Push's side: compares each prediction with the stream's token and writes the token.
struct Recorder<'a> {
    cursor: BlockCursor<'a>,
    tokens: &'a [u32],
    next: usize,
    /// Index among Huffman-coded tokens.
    index: u64,
    corrections: Vec<(u64, u32)>,
    /// Stop after this many Huffman-coded tokens (level trials).
    stop_after: u64,
    /// Give up once corrections pass this.
    max_corrections: usize,
    error: Option<&'static str>,
}

impl Recorder<'_> {
    /// The stream's token for a Huffman-coded position, recording a wrong prediction.
    fn actual(&mut self, predicted: u32) -> Result<Option<u32>, &'static str> {
        if self.index >= self.stop_after {
            return Ok(None);
        }
        let Some(&t) = self.tokens.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        if t != predicted {
            self.corrections.push((self.index, t));
            if self.corrections.len() > self.max_corrections {
                return Err("too many corrections");
            }
        }
        self.index += 1;
        Ok(Some(t))
    }
}

impl Oracle for Recorder<'_> {
    fn next(&mut self, pos: usize, predicted: u32) -> Option<u32> {
        let r = match self.cursor.ready() {
            Ok(true) => Ok(Some(literal(self.cursor.data[pos]))),
            Ok(false) => self.actual(predicted),
            Err(e) => Err(e),
        };
        self.cursor.settle(r, &mut self.error)
    }
}

/// Pull's side: the model's prediction unless a correction says otherwise.
struct Replayer<'a> {
    cursor: BlockCursor<'a>,
    corrections: std::iter::Peekable<std::slice::Iter<'a, (u64, u32)>>,
    index: u64,
    error: Option<&'static str>,
}

impl Replayer<'_> {
    /// The token at a Huffman-coded position: a correction's, else the prediction.
    fn actual(&mut self, pos: usize, predicted: u32) -> Result<Option<u32>, &'static str> {
        let data = self.cursor.data;
        let t = match self.corrections.peek() {
            Some(&&(i, t)) if i == self.index => {
                self.corrections.next();
                // A literal correction stores no byte: it is the plaintext's.
                if is_literal(t) {
                    literal(data[pos])
                } else {
                    t
                }
            }
            _ => predicted,
        };
        self.index += 1;
        if token_len(t) > data.len() - pos || (!is_literal(t) && distance(t) > pos) {
            return Err("a correction points outside the plaintext");
        }
        Ok(Some(t))
    }
}

impl Oracle for Replayer<'_> {
    fn next(&mut self, pos: usize, predicted: u32) -> Option<u32> {
        let r = match self.cursor.ready() {
            Ok(true) => Ok(Some(literal(self.cursor.data[pos]))),
            Ok(false) => self.actual(pos, predicted),
            Err(e) => Err(e),
        };
        self.cursor.settle(r, &mut self.error)
    }
}

/// Huffman-coded tokens tried per level when choosing the model's level.
const TRIAL_TOKENS: u64 = 4096;

/// Corrections of one trial, or `None` when the level cannot even be tried.
fn trial(p: &PieceInput, level: u8, stop_after: u64) -> Option<usize> {
    let mut rec = Recorder {
        cursor: BlockCursor::new(p.blocks, p.data, p.start, p.phase, 0),
        tokens: p.tokens,
        next: 0,
        index: 0,
        corrections: Vec::new(),
        stop_after,
        max_corrections: usize::MAX,
        error: None,
    };
    run_model(p.data, p.start, level, &mut rec);
    rec.error.is_none().then_some(rec.corrections.len())
}

/// The level whose model fits the piece's first tokens best, trying `hint` first. Another
/// level replaces the hint only when it needs under half the corrections: a higher level
/// costs up to 30× more time at push and at pull, so a near tie goes to the hint (the
/// header's or the previous piece's level) and then to the cheaper level.
pub fn choose_level(p: &PieceInput, hint: u8) -> u8 {
    let hint = if known_level(hint) { hint } else { 6 };
    let limit = TRIAL_TOKENS;
    let mut best = (usize::MAX, hint);
    let others = (1..=9)
        .chain([16, 14, 15, 17, 18, 19])
        .filter(|&l| l != hint);
    for level in std::iter::once(hint).chain(others) {
        if let Some(c) = trial(p, level, limit) {
            if best.0 == usize::MAX || c < best.0 / 2 {
                best = (c, level);
            }
            // Good enough: a zlib-family producer at this level.
            if best.0 as u64 <= limit / 256 {
                break;
            }
        }
    }
    best.1
}

/// Makes and proves a piece's recipe: `Err` (why) when its bits cannot be written again
/// exactly, or when the corrections would cost more than `max_corrections`.
pub fn analyze(p: &PieceInput, level: u8, max_corrections: usize) -> Result<Recipe, &'static str> {
    let mut rec = Recorder {
        cursor: BlockCursor::new(p.blocks, p.data, p.start, p.phase, p.compressed.len() * 8),
        tokens: p.tokens,
        next: 0,
        index: 0,
        corrections: Vec::new(),
        stop_after: u64::MAX,
        max_corrections,
        error: None,
    };
    run_model(p.data, p.start, level, &mut rec);
    if let Some(e) = rec.error {
        return Err(e);
    }
    if rec.next != p.tokens.len() {
        return Err("tokens left over");
    }
    let Recorder {
        cursor,
        corrections,
        ..
    } = rec;
    let (bytes, bits) = cursor.finish(p.final_pad)?;
    if bits != p.bits || !same_bits(&bytes, p.compressed, p.phase, bits) {
        return Err("the re-encoded bits differ");
    }
    Ok(Recipe {
        phase: p.phase,
        level,
        blocks: p.blocks.to_vec(),
        final_pad: p.final_pad,
        corrections,
    })
}

/// Whether `a` and `b` hold the same `bits` bits from bit `phase` on.
fn same_bits(a: &[u8], b: &[u8], phase: u8, bits: u64) -> bool {
    let end = phase as u64 + bits;
    let full = (end / 8) as usize;
    if a.len() < end.div_ceil(8) as usize || b.len() < end.div_ceil(8) as usize {
        return false;
    }
    let low = 0xffu8 << phase;
    let first_ok = |x: u8, y: u8, mask: u8| (x ^ y) & mask == 0;
    if full == 0 {
        let mask = low & (((1u16 << (end % 8)) - 1) as u8);
        return first_ok(a[0], b[0], mask);
    }
    if !first_ok(a[0], b[0], low) || a[1..full] != b[1..full] {
        return false;
    }
    let tail = (end % 8) as u32;
    tail == 0 || first_ok(a[full], b[full], ((1u16 << tail) - 1) as u8)
}

/// Writes a piece's bits from its plaintext (`data[start..]`, window before it) and recipe:
/// the bytes (the first starting at bit `phase`) and the number of bits.
pub fn rebuild(r: &Recipe, data: &[u8], start: usize) -> Result<(Vec<u8>, u64), &'static str> {
    if !known_level(r.level) {
        return Err("unknown model level");
    }
    let hint = (data.len() - start) / 3;
    let mut rep = Replayer {
        cursor: BlockCursor::new(&r.blocks, data, start, r.phase, hint),
        corrections: r.corrections.iter().peekable(),
        index: 0,
        error: None,
    };
    run_model(data, start, r.level, &mut rep);
    if let Some(e) = rep.error {
        return Err(e);
    }
    if rep.corrections.next().is_some() {
        return Err("corrections left over");
    }
    if rep.cursor.at != data.len() {
        return Err("the blocks do not cover the plaintext");
    }
    rep.cursor.finish(r.final_pad)
}

// ---- serialisation ----

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub struct Cursor<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl Cursor<'_> {
    pub fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.data.get(self.pos).ok_or("recipe ends early")?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    pub fn bytes(&mut self, n: usize) -> Result<&[u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("recipe ends early")?;
        let s = self.data.get(self.pos..end).ok_or("recipe ends early")?;
        self.pos = end;
        Ok(s)
    }

    pub fn byte(&mut self) -> Result<u8, &'static str> {
        Ok(self.bytes(1)?[0])
    }
}

impl Recipe {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(self.phase);
        out.push(self.level);
        put_varint(&mut out, self.blocks.len() as u64);
        for b in &self.blocks {
            match &b.kind {
                BlockKind::Stored { pad_bits, pad, len } => {
                    out.push(b.last as u8);
                    out.extend_from_slice(&[*pad_bits, *pad]);
                    out.extend_from_slice(&len.to_le_bytes());
                }
                BlockKind::Fixed => {
                    out.push(b.last as u8 | 2);
                    put_varint(&mut out, b.tokens as u64);
                }
                BlockKind::Dynamic {
                    header,
                    header_bits,
                } => {
                    out.push(b.last as u8 | 4);
                    put_varint(&mut out, b.tokens as u64);
                    put_varint(&mut out, *header_bits as u64);
                    out.extend_from_slice(&header[..(*header_bits as usize).div_ceil(8)]);
                }
            }
        }
        match self.final_pad {
            None => out.push(0),
            Some((bits, v)) => out.extend_from_slice(&[1, bits, v]),
        }
        put_varint(&mut out, self.corrections.len() as u64);
        let mut last = 0u64;
        for &(i, t) in &self.corrections {
            put_varint(&mut out, i - last);
            last = i;
            if is_literal(t) {
                put_varint(&mut out, 0);
            } else {
                put_varint(&mut out, token_len(t) as u64 - 2);
                put_varint(&mut out, distance(t) as u64 - 1);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8], plain: &[u8]) -> Result<Recipe, &'static str> {
        let mut c = Cursor {
            data: bytes,
            pos: 0,
        };
        let phase = c.byte()?;
        let level = c.byte()?;
        if phase > 7 {
            return Err("bad phase");
        }
        let n = c.varint()? as usize;
        let mut blocks = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let flags = c.byte()?;
            let last = flags & 1 == 1;
            let (kind, tokens) = match flags >> 1 {
                0 => {
                    let b = c.bytes(4)?;
                    if b[0] > 7 {
                        return Err("bad stored padding");
                    }
                    (
                        BlockKind::Stored {
                            pad_bits: b[0],
                            pad: b[1],
                            len: u16::from_le_bytes([b[2], b[3]]),
                        },
                        0,
                    )
                }
                1 => (BlockKind::Fixed, c.varint()? as u32),
                2 => {
                    let tokens = c.varint()? as u32;
                    let header_bits = c.varint()? as u32;
                    let header = c.bytes((header_bits as usize).div_ceil(8))?.to_vec();
                    (
                        BlockKind::Dynamic {
                            header,
                            header_bits,
                        },
                        tokens,
                    )
                }
                _ => return Err("bad block kind"),
            };
            blocks.push(Block { last, kind, tokens });
        }
        let final_pad = match c.byte()? {
            0 => None,
            _ => {
                let b = c.bytes(2)?;
                if b[0] > 7 {
                    return Err("bad final padding");
                }
                Some((b[0], b[1]))
            }
        };
        let n = c.varint()? as usize;
        let mut corrections = Vec::with_capacity(n.min(plain.len() + 1));
        let mut index = 0u64;
        for k in 0..n {
            let delta = c.varint()?;
            if k > 0 && delta == 0 {
                return Err("corrections out of order");
            }
            index = index.checked_add(delta).ok_or("bad correction index")?;
            let t = match c.varint()? {
                0 => literal(0),
                l @ 1..=256 => {
                    let d = c.varint()?;
                    if d >= 32768 {
                        return Err("bad correction distance");
                    }
                    matched(l as u32 + 2, d as u32 + 1)
                }
                _ => return Err("bad correction length"),
            };
            corrections.push((index, t));
        }
        if c.pos != bytes.len() {
            return Err("trailing bytes after the recipe");
        }
        Ok(Recipe {
            phase,
            level,
            blocks,
            final_pad,
            corrections,
        })
    }
}
