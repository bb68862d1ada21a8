//! Push's side: turns a gzip or zlib input into a container stream (see `container`).
//!
//! ```text
//! parser thread: framing + inflate ─► pieces (≈1 MiB of plaintext, cut at block ends)
//!   ─► analysis workers (model level, corrections, proof by re-encoding)
//! parser ─► items in input order ─► ContainerReader (read by push's chunker thread)
//! ```
//! Channels are bounded, so memory is a few pieces per worker whatever the stream's size.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::container::{put_varint, INLINE_MAX, MAGIC, TAG_BYTES, TAG_END, TAG_PIECE, TAG_RAW};
use super::framing::{self, Format};
use super::inflate::{inflate_block, Block, Decoded, InflateError, Input};
use super::recipe::{analyze, choose_level, PieceInput};
use std::io::Write;

/// Plaintext per piece: the unit of parallel analysis and restore.
const PIECE_TARGET: usize = 1 << 20;
/// A piece is refused (the stream then stored as it came) past these: blocks no real
/// producer writes, and the bound on memory.
const MAX_PIECE_PLAIN: usize = 16 << 20;
const MAX_PIECE_TOKENS: usize = 4 << 20;
/// Raw input moves in records of at most this.
const RAW_RECORD: usize = 1 << 20;

/// What happened to the input, for the one line push prints.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub format: Option<Format>,
    /// Input bytes represented as plaintext plus recipes.
    pub recompressed: u64,
    pub input_len: u64,
    /// Why some of it was stored as it came (the first reason).
    pub fallback: Option<String>,
    pub pieces: u64,
    pub members: u64,
    /// Bytes of recipes (reconstruction data) stored.
    pub recipe_bytes: u64,
}

impl Report {
    /// `gzip stream: 98.7 % stored as plaintext (…)`.
    pub fn line(&self) -> Option<String> {
        let format = self.format?;
        let pct = if self.input_len == 0 {
            100.0
        } else {
            self.recompressed as f64 * 100.0 / self.input_len as f64
        };
        let mut s = format!("{} stream: {pct:.1} % stored as plaintext", format.name());
        if let Some(why) = &self.fallback {
            s.push_str(&format!("; the rest stored as it came ({why})"));
        }
        Some(s)
    }
}

struct Piece {
    stream: u64,
    /// Set once the stream goes as it came: its remaining pieces need no analysis.
    abandoned: Arc<AtomicBool>,
    stream_start: bool,
    start_bit: u64,
    end_bit: u64,
    compressed: Vec<u8>,
    data: Vec<u8>,
    start: usize,
    tokens: Vec<u32>,
    blocks: Vec<Block>,
    final_pad: Option<(u8, u8)>,
}

enum Item {
    Raw {
        at: u64,
        bytes: Vec<u8>,
    },
    Piece(Arc<Piece>, Receiver<Result<Vec<u8>, String>>),
    /// A stream ended (stats only).
    Member,
    /// Why the parser stores the rest as it came.
    Fallback(String),
}

struct Job {
    piece: Arc<Piece>,
    hint: Arc<AtomicU8>,
    result: Sender<Result<Vec<u8>, String>>,
}

/// Starts the parser and analysis threads in `scope` over `input`; returns the reader of
/// the data stream (raw bytes and plaintext), and the handle that yields the input's
/// length and hash. The recipe stream goes to `recipes`, flushed at its end.
pub fn spawn<'scope, 'env, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, 'env>,
    input: R,
    format: Format,
    workers: usize,
    recipes: Box<dyn Write + Send + 'scope>,
) -> (
    ContainerReader<'scope>,
    ScopedJoinHandle<'scope, io::Result<(u64, blake3::Hash)>>,
) {
    let workers = workers.max(1);
    let (item_tx, item_rx) = bounded::<Item>(workers + 1);
    let (job_tx, job_rx) = bounded::<Job>(workers);
    for _ in 0..workers {
        let rx = job_rx.clone();
        scope.spawn(move || {
            for job in rx {
                let r = if job.piece.abandoned.load(Ordering::Relaxed) {
                    Err("abandoned".to_string())
                } else {
                    analyze_piece(&job.piece, &job.hint)
                };
                let _ = job.result.send(r);
            }
        });
    }
    let report = Arc::new(Mutex::new(Report {
        format: Some(format),
        ..Report::default()
    }));
    let parser = scope.spawn(move || parse(Input::new(input), format, item_tx, job_tx));
    let reader = ContainerReader {
        items: item_rx,
        out: Vec::new(),
        plain: None,
        recipes,
        records: MAGIC.to_vec(),
        at: 0,
        covered_bits: 0,
        abandoned: None,
        done: false,
        report,
    };
    (reader, parser)
}

fn analyze_piece(p: &Piece, hint: &AtomicU8) -> Result<Vec<u8>, String> {
    let input = PieceInput {
        data: &p.data,
        start: p.start,
        tokens: &p.tokens,
        blocks: &p.blocks,
        final_pad: p.final_pad,
        compressed: &p.compressed,
        phase: (p.start_bit % 8) as u8,
        bits: p.end_bit - p.start_bit,
    };
    // A level that fitted the stream's previous piece well is used without trials (they
    // cost ~10 % of a piece at level 9).
    let known = hint.load(Ordering::Relaxed);
    let level = if known & CONFIRMED != 0 {
        known & !CONFIRMED
    } else {
        choose_level(&input, known)
    };
    // Corrections past ~1/3 of the compressed size cost more than they save.
    let budget = p.compressed.len() / 6 + 64;
    let recipe = analyze(&input, level, budget).map_err(|e| match e {
        "too many corrections" => "a compressor this model does not reproduce".to_string(),
        e => e.to_string(),
    })?;
    let tokens = p.tokens.len().max(1);
    let fits = recipe.corrections.len() * 200 <= tokens;
    hint.store(level | if fits { CONFIRMED } else { 0 }, Ordering::Relaxed);
    Ok(recipe.encode())
}

/// Marks a stream's level hint as confirmed: its last piece needed corrections for under
/// 0.5 % of its tokens.
const CONFIRMED: u8 = 0x80;

type Sent = Result<(), ()>;

/// The parser stopped because push's pipeline did (its cause is reported there).
#[derive(Debug, thiserror::Error)]
#[error("the push pipeline stopped")]
pub struct Stopped;

fn parse<R: Read>(
    mut input: Input<R>,
    first: Format,
    items: Sender<Item>,
    jobs: Sender<Job>,
) -> io::Result<(u64, blake3::Hash)> {
    let send = |item: Item| -> Sent { items.send(item).map_err(|_| ()) };
    let format = first;
    let mut stream = 0u64;
    let outcome: io::Result<Sent> = (|| {
        loop {
            let at = input.bit_pos() / 8;
            let header = match framing::read_header(&mut input, format)? {
                Ok(h) => h,
                Err(h) => {
                    let len = h.len() as u64;
                    if send(Item::Raw { at, bytes: h }).is_err() {
                        return Ok(Err(()));
                    }
                    return raw_rest(&mut input, at + len, &send);
                }
            };
            let hint = Arc::new(AtomicU8::new(framing::level_hint(format, &header)));
            if send(Item::Raw { at, bytes: header }).is_err() {
                return Ok(Err(()));
            }
            stream += 1;
            match deflate_stream(&mut input, stream, &hint, &send, &jobs)? {
                Err((from, why)) => {
                    let _ = send(Item::Fallback(format!("at input byte {from}: {why}")));
                    return raw_rest(&mut input, from, &send);
                }
                Ok(()) => {
                    let _ = send(Item::Member);
                }
            }
            let at = input.bit_pos() / 8;
            let trailer = input.read_bytes(format.trailer_len())?;
            let len = trailer.len() as u64;
            if send(Item::Raw { at, bytes: trailer }).is_err() {
                return Ok(Err(()));
            }
            // Concatenated gzip members each get the same treatment; anything else after
            // the stream is kept as it came.
            if format == Format::Gzip && framing::is_gzip(input.peek_bytes(3)?) {
                continue;
            }
            return raw_rest(&mut input, at + len, &send);
        }
    })();
    drop(items);
    drop(jobs);
    if outcome?.is_err() {
        return Err(io::Error::other(Stopped));
    }
    input.finish()
}

fn raw_rest<R: Read>(
    input: &mut Input<R>,
    from: u64,
    send: &dyn Fn(Item) -> Sent,
) -> io::Result<Sent> {
    let mut at = from;
    while let Some(bytes) = input.drain_rest(at, RAW_RECORD)? {
        let len = bytes.len() as u64;
        if send(Item::Raw { at, bytes }).is_err() {
            return Ok(Err(()));
        }
        at += len;
    }
    Ok(Ok(()))
}

/// Inflates one deflate stream into pieces. `Ok(Err((byte, why)))`: the stream could not
/// be parsed from its piece starting at `byte` on (that piece was not sent).
fn deflate_stream<R: Read>(
    input: &mut Input<R>,
    stream: u64,
    hint: &Arc<AtomicU8>,
    send: &dyn Fn(Item) -> Sent,
    jobs: &Sender<Job>,
) -> io::Result<Result<(), (u64, String)>> {
    let mut start_bit = input.bit_pos();
    let mut dec = Decoded::new(Vec::new());
    let mut stream_start = true;
    let abandoned = Arc::new(AtomicBool::new(false));
    loop {
        match inflate_block(input, &mut dec, MAX_PIECE_PLAIN) {
            Ok(()) => {}
            Err(InflateError::Io(e)) => return Err(e),
            Err(e) => return Ok(Err((start_bit / 8, e.to_string()))),
        }
        if dec.tokens.len() > MAX_PIECE_TOKENS {
            return Ok(Err((
                start_bit / 8,
                "a deflate block with too many symbols".into(),
            )));
        }
        let last = dec.blocks.last().is_some_and(|b| b.last);
        let final_pad = last.then(|| input.align());
        if !(last || dec.plain_len() >= PIECE_TARGET) {
            continue;
        }
        let end_bit = input.bit_pos();
        let compressed = input.bytes(start_bit / 8, end_bit.div_ceil(8)).to_vec();
        let window = dec.window_after();
        let done = std::mem::replace(&mut dec, Decoded::new(window));
        let piece = Arc::new(Piece {
            stream,
            abandoned: abandoned.clone(),
            stream_start,
            start_bit,
            end_bit,
            compressed,
            data: done.data,
            start: done.start,
            tokens: done.tokens,
            blocks: done.blocks,
            final_pad,
        });
        let (tx, rx) = bounded(1);
        let job = Job {
            piece: piece.clone(),
            hint: hint.clone(),
            result: tx,
        };
        if jobs.send(job).is_err() || send(Item::Piece(piece, rx)).is_err() {
            return Ok(Ok(()));
        }
        input.discard_before(end_bit / 8);
        stream_start = false;
        start_bit = end_bit;
        if last {
            return Ok(Ok(()));
        }
    }
}

/// The data stream, in input order: what push chunks and stores. The records saying what
/// each run of it is go to the recipe stream.
pub struct ContainerReader<'a> {
    items: Receiver<Item>,
    out: Vec<u8>,
    /// A piece whose plaintext is read next, in place (no copy on the hot path).
    plain: Option<Arc<Piece>>,
    recipes: Box<dyn Write + Send + 'a>,
    /// Recipe records not yet written to `recipes`.
    records: Vec<u8>,
    at: usize,
    /// Input bits the records so far stand for.
    covered_bits: u64,
    /// A stream whose analysis failed: the rest of it goes as it came.
    abandoned: Option<u64>,
    done: bool,
    report: Arc<Mutex<Report>>,
}

impl ContainerReader<'_> {
    /// The report, complete once the reader has returned end of stream.
    pub fn report(&self) -> Arc<Mutex<Report>> {
        self.report.clone()
    }

    /// The data-stream bytes of the current item.
    fn pending(&self) -> &[u8] {
        match &self.plain {
            Some(p) => &p.data[p.start..],
            None => &self.out,
        }
    }

    /// Appends a RAW record for input bytes from `at`, without what is already covered
    /// (a partial byte a piece ended in is sent again whole; pull drops its bits).
    fn raw(&mut self, at: u64, bytes: &[u8]) {
        let from = self.covered_bits / 8;
        let skip = from.saturating_sub(at) as usize;
        if skip < bytes.len() {
            let run = &bytes[skip..];
            if run.len() <= INLINE_MAX {
                self.records.push(TAG_BYTES);
                put_varint(&mut self.records, run.len() as u64);
                self.records.extend_from_slice(run);
            } else {
                self.records.push(TAG_RAW);
                put_varint(&mut self.records, run.len() as u64);
                self.out.extend_from_slice(run);
            }
        }
        self.covered_bits = self.covered_bits.max((at + bytes.len() as u64) * 8);
    }

    fn next_item(&mut self) -> io::Result<()> {
        let Ok(item) = self.items.recv() else {
            self.records.push(TAG_END);
            self.recipes.write_all(&self.records)?;
            self.recipes.flush()?;
            self.done = true;
            let mut r = self.report.lock().unwrap();
            r.input_len = self.covered_bits / 8;
            return Ok(());
        };
        match item {
            Item::Raw { at, bytes } => self.raw(at, &bytes),
            Item::Member => self.report.lock().unwrap().members += 1,
            Item::Fallback(why) => {
                let mut r = self.report.lock().unwrap();
                r.fallback.get_or_insert(why);
            }
            Item::Piece(p, result) => {
                let result = if self.abandoned == Some(p.stream) {
                    Err(String::new())
                } else {
                    result
                        .recv()
                        .unwrap_or_else(|_| Err("analysis stopped".into()))
                };
                match result {
                    Ok(recipe) => {
                        self.records.push(TAG_PIECE);
                        self.records.push(!p.stream_start as u8);
                        put_varint(&mut self.records, recipe.len() as u64);
                        self.records.extend_from_slice(&recipe);
                        let plain = &p.data[p.start..];
                        put_varint(&mut self.records, plain.len() as u64);
                        self.plain = Some(p.clone());
                        self.covered_bits = p.end_bit;
                        let mut r = self.report.lock().unwrap();
                        r.recompressed += (p.end_bit - p.start_bit) / 8;
                        r.pieces += 1;
                        r.recipe_bytes += recipe.len() as u64;
                    }
                    Err(why) => {
                        if self.abandoned != Some(p.stream) {
                            self.abandoned = Some(p.stream);
                            p.abandoned.store(true, Ordering::Relaxed);
                            let mut r = self.report.lock().unwrap();
                            if r.fallback.is_none() {
                                r.fallback =
                                    Some(format!("at input byte {}: {why}", p.start_bit / 8));
                            }
                        }
                        self.raw(p.start_bit / 8, &p.compressed);
                    }
                }
            }
        }
        if self.records.len() >= 64 * 1024 {
            self.recipes.write_all(&self.records)?;
            self.records.clear();
        }
        Ok(())
    }
}

impl Read for ContainerReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending().len() {
            if self.done {
                return Ok(0);
            }
            self.out.clear();
            self.plain = None;
            self.at = 0;
            self.next_item()?;
        }
        let pending = self.pending();
        let n = buf.len().min(pending.len() - self.at);
        buf[..n].copy_from_slice(&pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
