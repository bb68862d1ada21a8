//! What a snapshot of a recompressed input stores: two streams, each chunked and stored
//! like any stream.
//!
//! - The *data stream*: input bytes kept as they came and the plaintext of deflate pieces,
//!   concatenated with nothing between them, so it chunks and deduplicates exactly as the
//!   plaintext pushed on its own would.
//! - The *recipe stream* says what each run of the data stream is:
//!
//! ```text
//! "KDZ1" record* END
//! RAW   = 0x01 len:varint                                   next len data bytes, as they are
//! BYTES = 0x03 len:varint bytes                             input bytes held here (headers,
//!                                                           trailers: kept out of the data)
//! PIECE = 0x02 continues:u8 recipe_len:varint recipe plain_len:varint
//!                                                           next plain_len data bytes: plaintext
//! END   = 0x00
//! ```
//! A PIECE recreates a run of deflate bits from its plaintext and recipe (`recipe.rs`);
//! with `continues` its window is the last 32 KiB of the previous PIECE's plaintext.
//! Pieces join at bit level: a piece's first byte is completed by the bits the previous
//! one ended with. A RAW record after a piece starts with that whole partial byte, so the
//! pending bits are dropped. [`Rebuilder`] turns both streams back into the input, with
//! pieces rebuilt in parallel and written in order.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::recipe::{rebuild, Recipe};

pub const MAGIC: &[u8; 4] = b"KDZ1";
pub const TAG_END: u8 = 0;
pub const TAG_RAW: u8 = 1;
pub const TAG_PIECE: u8 = 2;
pub const TAG_BYTES: u8 = 3;
/// Raw runs up to this size go in the recipe stream, so the data stream of a clean gzip
/// member is its plaintext alone and chunks exactly like it.
pub const INLINE_MAX: usize = 4096;
/// Largest piece or recipe a reader accepts (push writes pieces of ≤ 16 MiB).
const MAX_RECORD: u64 = 64 << 20;
const WINDOW: usize = 32768;

pub use super::recipe::put_varint;

fn damaged(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the stored gzip reconstruction data is damaged: {why}"),
    )
}

/// A rebuilt piece: its bytes, its bit count and the bit phase of its first byte.
type Rebuilt = Result<(Vec<u8>, u64, u8), String>;

struct Job {
    recipe: Vec<u8>,
    data: Vec<u8>,
    start: usize,
    result: Sender<Rebuilt>,
}

enum Queued {
    Raw(Vec<u8>),
    Piece(Receiver<Rebuilt>),
}

/// The record being filled from the data stream.
enum Record {
    None,
    Raw(u64),
    Piece {
        continues: bool,
        recipe: Vec<u8>,
        plain: Vec<u8>,
        want: usize,
    },
    End,
}

/// Blocks of the recipe stream, in order.
pub type RecipeBlocks<'a> = Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send + 'a>;

/// Writes the original input from the data stream fed through [`Write`] and the recipe
/// stream read from `recipes`.
pub struct Rebuilder<'a, W: Write> {
    out: W,
    recipes: RecipeBlocks<'a>,
    rbuf: Vec<u8>,
    rpos: usize,
    magic_seen: bool,
    record: Record,
    window: Option<Vec<u8>>,
    /// Bits (value, count) the last piece ended with, completed by the next piece.
    pending: (u8, u8),
    queue: VecDeque<Queued>,
    max_queued: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl<'a, W: Write> Rebuilder<'a, W> {
    pub fn new(out: W, recipes: RecipeBlocks<'a>, threads: usize) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Job>(threads);
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    for job in rx {
                        let r = (|| {
                            let plain = &job.data[job.start..];
                            let recipe = Recipe::decode(&job.recipe, plain)?;
                            let phase = recipe.phase;
                            let (bytes, bits) = rebuild(&recipe, &job.data, job.start)?;
                            Ok((bytes, bits, phase))
                        })()
                        .map_err(|e: &str| e.to_string());
                        let _ = job.result.send(r);
                    }
                })
            })
            .collect();
        Rebuilder {
            out,
            recipes,
            rbuf: Vec::new(),
            rpos: 0,
            magic_seen: false,
            record: Record::None,
            window: None,
            pending: (0, 0),
            queue: VecDeque::new(),
            max_queued: threads * 2 + 2,
            jobs: Some(tx),
            workers,
        }
    }

    /// The next `n` bytes of the recipe stream, reading blocks as needed.
    fn recipe_bytes(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.rbuf.len() - self.rpos < n {
            match self.recipes.next() {
                Some(block) => {
                    self.rbuf.drain(..self.rpos);
                    self.rpos = 0;
                    self.rbuf.extend_from_slice(&block?);
                }
                None => return Err(damaged("the recipe stream ends early")),
            }
        }
        let s = &self.rbuf[self.rpos..self.rpos + n];
        self.rpos += n;
        Ok(s)
    }

    fn recipe_varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.recipe_bytes(1)?[0];
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(damaged("varint too long"))
    }

    /// Reads the next record's header from the recipe stream.
    fn next_record(&mut self) -> io::Result<()> {
        if !self.magic_seen {
            if self.recipe_bytes(4)? != MAGIC {
                return Err(damaged("no recipe stream header"));
            }
            self.magic_seen = true;
        }
        self.record = match self.recipe_bytes(1)?[0] {
            TAG_END => Record::End,
            TAG_RAW => Record::Raw(self.recipe_varint()?),
            TAG_BYTES => {
                let n = self.recipe_varint()?;
                if n > INLINE_MAX as u64 {
                    return Err(damaged("inline bytes too long"));
                }
                let bytes = self.recipe_bytes(n as usize)?.to_vec();
                self.window = None;
                self.enqueue(Queued::Raw(bytes))?;
                Record::None
            }
            TAG_PIECE => {
                let continues = match self.recipe_bytes(1)?[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(damaged("bad piece flag")),
                };
                let rlen = self.recipe_varint()?;
                if rlen > MAX_RECORD {
                    return Err(damaged("recipe too large"));
                }
                let recipe = self.recipe_bytes(rlen as usize)?.to_vec();
                let want = self.recipe_varint()?;
                if want > MAX_RECORD {
                    return Err(damaged("piece too large"));
                }
                Record::Piece {
                    continues,
                    recipe,
                    plain: Vec::with_capacity(want as usize),
                    want: want as usize,
                }
            }
            t => return Err(damaged(format!("unknown record type {t}"))),
        };
        Ok(())
    }

    /// Consumes data bytes; with `finishing`, also the records that need none.
    fn advance(&mut self, mut data: &[u8], finishing: bool) -> io::Result<()> {
        loop {
            if matches!(self.record, Record::None) {
                if data.is_empty() && !finishing {
                    return Ok(());
                }
                self.next_record()?;
            }
            match &mut self.record {
                // Bytes held in the recipe stream: queued already.
                Record::None => {}
                Record::End => {
                    return if data.is_empty() {
                        Ok(())
                    } else {
                        Err(damaged("data after the end record"))
                    };
                }
                Record::Raw(left) => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let done = *left == 0;
                    if n > 0 {
                        let bytes = data[..n].to_vec();
                        data = &data[n..];
                        self.window = None;
                        self.enqueue(Queued::Raw(bytes))?;
                    }
                    if done {
                        self.window = None;
                        self.record = Record::None;
                    } else {
                        return Ok(());
                    }
                }
                Record::Piece { plain, want, .. } => {
                    let n = (*want - plain.len()).min(data.len());
                    plain.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if plain.len() < *want {
                        return Ok(());
                    }
                    let Record::Piece {
                        continues,
                        recipe,
                        plain,
                        ..
                    } = std::mem::replace(&mut self.record, Record::None)
                    else {
                        unreachable!()
                    };
                    self.dispatch(continues, recipe, plain)?;
                }
            }
        }
    }

    fn dispatch(&mut self, continues: bool, recipe: Vec<u8>, plain: Vec<u8>) -> io::Result<()> {
        let window = match (continues, self.window.take()) {
            (false, _) => Vec::new(),
            (true, Some(w)) => w,
            (true, None) => return Err(damaged("a piece continues nothing")),
        };
        let start = window.len();
        let mut data = window;
        data.extend_from_slice(&plain);
        self.window = Some(data[data.len().saturating_sub(WINDOW)..].to_vec());
        let (tx, rx) = bounded(1);
        let job = Job {
            recipe,
            data,
            start,
            result: tx,
        };
        self.jobs
            .as_ref()
            .expect("jobs open until finish")
            .send(job)
            .map_err(|_| damaged("rebuild workers stopped"))?;
        self.enqueue(Queued::Piece(rx))
    }

    fn enqueue(&mut self, q: Queued) -> io::Result<()> {
        self.queue.push_back(q);
        while self.queue.len() > self.max_queued {
            self.write_front()?;
        }
        Ok(())
    }

    /// Writes the oldest queued output, waiting for its rebuild.
    fn write_front(&mut self) -> io::Result<()> {
        match self.queue.pop_front() {
            None => Ok(()),
            Some(Queued::Raw(bytes)) => {
                self.pending = (0, 0);
                self.out.write_all(&bytes)
            }
            Some(Queued::Piece(rx)) => {
                let (mut bytes, bits, phase) = rx
                    .recv()
                    .map_err(|_| damaged("a rebuild worker stopped"))?
                    .map_err(damaged)?;
                if phase != self.pending.1 {
                    return Err(damaged("pieces do not join"));
                }
                if let Some(first) = bytes.first_mut() {
                    *first |= self.pending.0;
                }
                let end = phase as u64 + bits;
                let full = (end / 8) as usize;
                self.out.write_all(&bytes[..full])?;
                self.pending = if end.is_multiple_of(8) {
                    (0, 0)
                } else {
                    (bytes[full] & ((1u8 << (end % 8)) - 1), (end % 8) as u8)
                };
                Ok(())
            }
        }
    }

    /// Writes everything still queued and checks that both streams ended together.
    pub fn finish(mut self) -> io::Result<()> {
        self.advance(&[], true)?;
        if !matches!(self.record, Record::End) {
            return Err(damaged("the data stream ends before the recipes do"));
        }
        if self.rpos != self.rbuf.len() || self.recipes.next().is_some() {
            return Err(damaged("bytes after the recipe stream's end"));
        }
        while !self.queue.is_empty() {
            self.write_front()?;
        }
        if self.pending.1 != 0 {
            return Err(damaged("the last piece ends inside a byte"));
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.out.flush()
    }
}

impl<W: Write> Write for Rebuilder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.advance(buf, false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for Rebuilder<'_, W> {
    fn drop(&mut self) {
        self.jobs = None;
        self.queue.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
