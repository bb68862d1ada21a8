//! The container stream: what a snapshot of a recompressed input stores and chunks.
//!
//! ```text
//! "KDZ1" record* END
//! RAW   = 0x01 len:varint bytes          input bytes as they came
//! PIECE = 0x02 continues:u8 recipe_len:varint recipe plain_len:varint plaintext
//! END   = 0x00
//! ```
//! A PIECE recreates a run of deflate bits from its plaintext and recipe (`recipe.rs`);
//! with `continues` its window is the last 32 KiB of the previous PIECE's plaintext.
//! Pieces join at bit level: a piece's first byte is completed by the bits the previous
//! one ended with. A RAW record after a piece starts with that whole partial byte, so the
//! pending bits are dropped. [`Rebuilder`] turns the container back into the input, with
//! pieces rebuilt in parallel and written in order.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::recipe::{rebuild, Cursor, Recipe};

pub const MAGIC: &[u8; 4] = b"KDZ1";
pub const TAG_END: u8 = 0;
pub const TAG_RAW: u8 = 1;
pub const TAG_PIECE: u8 = 2;
/// Largest record a reader accepts (push writes RAW ≤ 1 MiB, pieces ≤ 16 MiB + recipe).
const MAX_RECORD: u64 = 64 << 20;
const WINDOW: usize = 32768;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn damaged(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the stored gzip reconstruction data is damaged: {why}"),
    )
}

struct Job {
    recipe: Vec<u8>,
    data: Vec<u8>,
    start: usize,
    stream_start: bool,
    result: Sender<Result<(Vec<u8>, u64, u8), String>>,
}

enum Queued {
    Raw(Vec<u8>),
    Piece(Receiver<Result<(Vec<u8>, u64, u8), String>>),
}

/// Writes the original input from a container stream fed through [`Write`].
pub struct Rebuilder<W: Write> {
    out: W,
    input: Vec<u8>,
    magic_seen: bool,
    ended: bool,
    window: Option<Vec<u8>>,
    /// Bits (value, count) the last piece ended with, completed by the next piece.
    pending: (u8, u8),
    queue: VecDeque<Queued>,
    max_queued: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> Rebuilder<W> {
    pub fn new(out: W, threads: usize) -> Self {
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
                            let (bytes, bits) =
                                rebuild(&recipe, &job.data, job.start, job.stream_start)?;
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
            input: Vec::new(),
            magic_seen: false,
            ended: false,
            window: None,
            pending: (0, 0),
            queue: VecDeque::new(),
            max_queued: threads * 2 + 2,
            jobs: Some(tx),
            workers,
        }
    }

    /// Parses whole records from the buffered input.
    fn parse(&mut self) -> io::Result<()> {
        let mut used = 0;
        loop {
            let rest = &self.input[used..];
            if !self.magic_seen {
                if rest.len() < 4 {
                    break;
                }
                if &rest[..4] != MAGIC {
                    return Err(damaged("no container header"));
                }
                self.magic_seen = true;
                used += 4;
                continue;
            }
            if rest.is_empty() {
                break;
            }
            if self.ended {
                return Err(damaged("data after the end record"));
            }
            let mut c = Cursor { data: rest, pos: 1 };
            match rest[0] {
                TAG_END => {
                    self.ended = true;
                    used += 1;
                }
                TAG_RAW => {
                    let Ok(len) = c.varint() else { break };
                    if len > MAX_RECORD {
                        return Err(damaged("record too large"));
                    }
                    let Ok(bytes) = c.bytes(len as usize) else {
                        break;
                    };
                    let bytes = bytes.to_vec();
                    used += c.pos;
                    self.window = None;
                    self.enqueue(Queued::Raw(bytes))?;
                }
                TAG_PIECE => {
                    let Ok(flag) = c.byte() else { break };
                    let Ok(rlen) = c.varint() else { break };
                    if rlen > MAX_RECORD {
                        return Err(damaged("record too large"));
                    }
                    let Ok(recipe) = c.bytes(rlen as usize) else {
                        break;
                    };
                    let recipe = recipe.to_vec();
                    let Ok(plen) = c.varint() else { break };
                    if plen > MAX_RECORD {
                        return Err(damaged("record too large"));
                    }
                    let Ok(plain) = c.bytes(plen as usize) else {
                        break;
                    };
                    let window = match (flag, self.window.take()) {
                        (0, _) => Vec::new(),
                        (1, Some(w)) => w,
                        _ => return Err(damaged("a piece continues nothing")),
                    };
                    let start = window.len();
                    let mut data = window;
                    data.extend_from_slice(plain);
                    used += c.pos;
                    self.window = Some(data[data.len().saturating_sub(WINDOW)..].to_vec());
                    let (tx, rx) = bounded(1);
                    let job = Job {
                        recipe,
                        data,
                        start,
                        stream_start: flag == 0,
                        result: tx,
                    };
                    self.jobs
                        .as_ref()
                        .expect("jobs open until finish")
                        .send(job)
                        .map_err(|_| damaged("rebuild workers stopped"))?;
                    self.enqueue(Queued::Piece(rx))?;
                }
                t => return Err(damaged(format!("unknown record type {t}"))),
            }
        }
        self.input.drain(..used);
        Ok(())
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
                self.pending = if end % 8 == 0 {
                    (0, 0)
                } else {
                    (bytes[full] & ((1u8 << (end % 8)) - 1), (end % 8) as u8)
                };
                Ok(())
            }
        }
    }

    /// Writes everything still queued and checks the container ended cleanly.
    pub fn finish(mut self) -> io::Result<()> {
        self.parse()?;
        while !self.queue.is_empty() {
            self.write_front()?;
        }
        if !self.ended || !self.input.is_empty() {
            return Err(damaged("the container stream is incomplete"));
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

impl<W: Write> Write for Rebuilder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.input.extend_from_slice(buf);
        self.parse()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for Rebuilder<W> {
    fn drop(&mut self) {
        self.jobs = None;
        self.queue.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
