//! `push`: a byte stream becomes a snapshot.
//!
//! ```text
//! input ─► chunker thread (FastCDC) ─► workers (BLAKE3 id, dedup, zstd, seal)
//!            ─► packer thread (packs, index segments) ─► uploads (N in flight)
//!          workers ─► assembler thread (stream order restored, chunk-list tree)
//! end: index segment ─► manifest ─► ref (the commit point) ─► outcome
//! ```
//! Every stage is joined by a bounded channel, so memory is set by the options, not by the
//! stream's length. A failure anywhere stops the whole pipeline and no ref is written.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::recompress;
mod recipes;
use crate::repo::chunklist::ChunkListWriter;
use crate::repo::ids::Id;
use crate::repo::index::IndexSegment;
use crate::repo::journal;
use crate::repo::manifest::{
    Manifest, StoredContainer, CONTAINER_FORMAT, MANIFEST_VERSION, MANIFEST_VERSION_CONTAINER,
};
use crate::repo::pack::{BlobEncoder, Codec, PackBuilder, PackEntry, Packer};
use crate::repo::session::Session;
use crate::repo::Repository;
use fastcdc::v2020::{Normalization, StreamCDC};
use recipes::RecipeStore;

/// Tunables of the push pipeline. Defaults were chosen by measurement (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Threads hashing and compressing chunks.
    pub jobs: usize,
    /// Packs being uploaded at once.
    pub uploads: usize,
    /// A pack is closed once its blob data reaches this many bytes.
    pub pack_size: usize,
    /// zstd level for chunk data.
    pub zstd_level: i32,
    /// Entries per index segment before another is started (bounds memory on huge pushes).
    pub segment_entries: usize,
    /// How often the push's session is refreshed (a quarter of this) so gc waits for it.
    pub stale_after: Duration,
    /// Store a gzip or zlib input as plaintext plus reconstruction data (`recompress`).
    pub gzip_dedup: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: default_jobs(),
            uploads: 4,
            pack_size: crate::repo::DEFAULT_PACK_SIZE,
            zstd_level: 3,
            segment_entries: crate::repo::SEGMENT_ENTRIES,
            stale_after: crate::repo::session::DEFAULT_STALE_AFTER,
            gzip_dedup: true,
        }
    }
}

/// One thread per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Live figures of a running push, read by the progress reporter.
#[derive(Debug, Default)]
pub struct PushCounters {
    /// Bytes read from the input.
    pub read: AtomicU64,
    /// Raw bytes of chunks the repository did not have.
    pub new_raw: AtomicU64,
    /// Bytes of packs stored so far.
    pub stored: AtomicU64,
}

/// What a finished push reports.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The new snapshot's id.
    pub id: String,
    /// Bytes read from the input.
    pub logical_size: u64,
    /// Bytes this push added to the repository.
    pub physical_size: u64,
    /// Chunks in the stream.
    pub chunks: u64,
    /// Chunks that were new to the repository.
    pub new_chunks: u64,
    /// Wall time of the whole push.
    pub duration: Duration,
    /// What happened to a gzip or zlib input.
    pub recompress: Option<recompress::Report>,
}

/// A blob on its way into a pack.
struct StoredBlob {
    id: Id,
    codec: Codec,
    raw_len: u32,
    stored: Bytes,
    /// The chunk's part of the in-flight budget (none for chunk-list blocks).
    _share: Share,
}

/// A chunk's part of push's in-flight budget, held by every copy of the chunk on its way
/// (to the assembler, which hashes it, and to the packer, which copies it into a pack)
/// and given back when the last one is dropped.
type Share = Option<Arc<OwnedSemaphorePermit>>;

/// Bytes of chunk data between the chunker and the pack being filled: enough for every
/// worker to have two maximum-size chunks at hand. The channels alone bound the number
/// of chunks, not their sizes; the rare moment when many large chunks were in flight set
/// the peak, and a longer stream met more of them (1 → 8 GiB: +8–13 %).
fn budget_kib(jobs: usize, max_chunk: u32) -> usize {
    super::kib(((jobs + 2) * 2) as u64 * max_chunk as u64)
}

/// Marks an error that only reports a downstream stage stopping, not a cause.
#[derive(Debug, thiserror::Error)]
#[error("push pipeline stopped")]
struct Stopped;

fn send<T>(tx: &Sender<T>, v: T) -> Result<()> {
    tx.send(v).map_err(|_| anyhow!(Stopped))
}

/// Ends a push's session when dropped.
struct EndOnDrop<'a> {
    rt: &'a Handle,
    session: Option<Session>,
}

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.rt.block_on(s.end());
        }
    }
}

/// Marks a chunk this push stores itself in [`Known`].
const STORED_HERE: u32 = u32::MAX;

/// The chunks the push can deduplicate against, by pack number, and the packs it used.
struct Known {
    blobs: HashMap<Id, u32>,
    packs: Vec<Id>,
    used: HashSet<u32>,
}

impl Known {
    /// True when `id` is new (the caller stores it); else records its pack as used.
    fn claim(&mut self, id: Id) -> bool {
        match self.blobs.entry(id) {
            Entry::Occupied(o) => {
                if *o.get() != STORED_HERE {
                    self.used.insert(*o.get());
                }
                false
            }
            Entry::Vacant(v) => {
                v.insert(STORED_HERE);
                true
            }
        }
    }
}

/// Pushes `input` as a new snapshot at `path` (already normalised). The push announces a
/// session (so gc waits for it) and commits through the gc journal (so gc can never delete
/// what it used, however long it was paused).
/// Reads up to `n` bytes from the start of `input` (fewer at its end).
fn read_head(input: &mut impl Read, n: usize) -> Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!("cannot read the input: {e}")),
        }
    }
    head.truncate(got);
    Ok(head)
}

pub fn push(
    rt: &Handle,
    repo: &Repository,
    mut input: impl Read + Send,
    path: &str,
    opts: &PushOptions,
    counters: &PushCounters,
    before_commit: &dyn Fn() -> Result<()>,
) -> Result<PushOutcome> {
    let storage = repo.storage();
    let after_epoch = rt.block_on(journal::latest_epoch(storage))?;
    let session = rt.block_on(Session::begin(
        storage,
        "push",
        after_epoch,
        opts.stale_after,
    ))?;
    // Ended however the push ends (an error returns early from anywhere below).
    let _session = EndOnDrop {
        rt,
        session: Some(session),
    };
    let started = Instant::now();
    let start_time = SystemTime::now();
    // Read after the session is announced: a condemnation we do not see here is one gc
    // made after seeing our session, and gc then waits for us.
    let state = rt.block_on(journal::read_latest(repo.storage()))?;
    let listed = rt.block_on(repo.list_packs())?;
    let mut known = Known {
        blobs: HashMap::new(),
        packs: Vec::new(),
        used: HashSet::new(),
    };
    let mut numbers: HashMap<Id, u32> = HashMap::new();
    // Never deduplicate against a pack that is gone or that gc condemned.
    rt.block_on(repo.for_each_index_segment(true, |_, seg| {
        for (pack, entries) in seg.packs {
            if !listed.contains_key(&pack) || state.pack_is_condemned(&pack.to_hex()) {
                continue;
            }
            let n = *numbers.entry(pack).or_insert_with(|| {
                known.packs.push(pack);
                (known.packs.len() - 1) as u32
            });
            for e in entries {
                known.blobs.entry(e.id).or_insert(n);
            }
        }
    }))?;
    drop(numbers);
    let known = Mutex::new(known);
    let chunker = repo.config().chunker;
    let keys = repo.keys();
    let jobs = opts.jobs.max(1);

    let budget_kib = budget_kib(jobs, chunker.max);
    let budget = Arc::new(Semaphore::new(budget_kib));
    let (work_tx, work_rx) = bounded::<(u64, Vec<u8>, Share)>(jobs * 2);
    // Workers hand each chunk's buffer on to the assembler, which hashes the stream in
    // order: the serial chunker thread then only runs FastCDC.
    let (order_tx, order_rx) = bounded::<(u64, Id, bool, Bytes, Share)>(jobs * 2);
    let (blob_tx, blob_rx) = bounded::<StoredBlob>(jobs * 2);

    // A gzip or zlib input is stored as a container stream (plaintext and recipes).
    let head = read_head(&mut input, 16)?;
    let format = opts.gzip_dedup.then(|| recompress::detect(&head)).flatten();
    let input = std::io::Cursor::new(head).chain(input);
    let mut report = None;

    let mut recipes_stored = None;
    let (chunked, workers, assembled, packed, parsed) = std::thread::scope(|s| {
        let (source, parser): (Box<dyn Read + Send + '_>, _) = match format {
            Some(format) => {
                let store =
                    RecipeStore::new(keys.clone(), &known, blob_tx.clone(), opts.zstd_level);
                let (store, done) = match store {
                    Ok(s) => s,
                    Err(e) => {
                        return (
                            Err(e),
                            Vec::new(),
                            Err(anyhow!(Stopped)),
                            Err(anyhow!(Stopped)),
                            None,
                        )
                    }
                };
                recipes_stored = Some(done);
                let (reader, parser) = recompress::spawn(s, input, format, jobs, Box::new(store));
                report = Some(reader.report());
                (Box::new(reader), Some(parser))
            }
            None => (Box::new(input), None),
        };
        let chunker = s.spawn(move || -> Result<u64> {
            let mut total = 0u64;
            let cdc = StreamCDC::with_level_and_seed(
                source,
                chunker.min as usize,
                chunker.avg as usize,
                chunker.max as usize,
                Normalization::Level1,
                keys.chunker_seed(),
            );
            for (seq, chunk) in cdc.enumerate() {
                let chunk = chunk.map_err(|e| anyhow!("cannot read the input: {e}"))?;
                total += chunk.data.len() as u64;
                counters.read.store(total, Ordering::Relaxed);
                // Taken in stream order, so the chunk the assembler waits for always has
                // its share: no deadlock.
                let share = super::kib(chunk.data.len() as u64).min(budget_kib) as u32;
                let permit = rt
                    .block_on(budget.clone().acquire_many_owned(share))
                    .expect("the semaphore is never closed");
                send(&work_tx, (seq as u64, chunk.data, Some(Arc::new(permit))))?;
            }
            Ok(total)
        });

        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                let (rx, order_tx, blob_tx) = (work_rx.clone(), order_tx.clone(), blob_tx.clone());
                let known = &known;
                s.spawn(move || -> Result<()> {
                    let mut encoder = BlobEncoder::new(Some(opts.zstd_level), keys.clone())
                        .context("cannot set up zstd")?;
                    for (seq, data, share) in rx {
                        let data = Bytes::from(data);
                        let id = keys.chunk_id(&data);
                        let is_new = known.lock().unwrap().claim(id);
                        if is_new {
                            counters
                                .new_raw
                                .fetch_add(data.len() as u64, Ordering::Relaxed);
                            let (codec, stored) = encoder.encode(&id, &data);
                            let raw_len = data.len() as u32;
                            send(
                                &blob_tx,
                                StoredBlob {
                                    id,
                                    codec,
                                    raw_len,
                                    stored,
                                    _share: share.clone(),
                                },
                            )?;
                        }
                        send(&order_tx, (seq, id, is_new, data, share))?;
                    }
                    Ok(())
                })
            })
            .collect();
        drop((work_rx, order_tx));

        let assembler_blob_tx = blob_tx.clone();
        let known_ref = &known;
        let assembler = s.spawn(
            move || -> Result<(crate::repo::chunklist::ChunkTree, u64, u64, Id)> {
                let mut hasher = blake3::Hasher::new();
                let mut writer = ChunkListWriter::new(keys.clone());
                // Chunk-list blocks are hashes: compressing them gains nothing.
                let mut encoder = BlobEncoder::new(None, keys.clone())?;
                let mut emit = |id: Id, block: Vec<u8>| -> Result<()> {
                    if known_ref.lock().unwrap().claim(id) {
                        let block = Bytes::from(block);
                        let (codec, stored) = encoder.encode(&id, &block);
                        send(
                            &assembler_blob_tx,
                            StoredBlob {
                                id,
                                codec,
                                raw_len: block.len() as u32,
                                stored,
                                _share: None,
                            },
                        )?;
                    }
                    Ok(())
                };
                let mut pending = BTreeMap::new();
                let (mut next, mut new_chunks) = (0u64, 0u64);
                for (seq, id, is_new, data, share) in order_rx {
                    pending.insert(seq, (id, data, share));
                    new_chunks += is_new as u64;
                    while let Some((id, data, _share)) = pending.remove(&next) {
                        hasher.update(&data);
                        writer.push(id, &mut emit)?;
                        next += 1;
                    }
                }
                if !pending.is_empty() {
                    return Err(anyhow!(Stopped));
                }
                let count = writer.count();
                let stream_hash = Id(*hasher.finalize().as_bytes());
                Ok((writer.finish(&mut emit)?, count, new_chunks, stream_hash))
            },
        );
        drop(blob_tx);

        let packer = s.spawn(move || pack_and_upload(rt, repo, blob_rx, opts, counters));

        let chunked = chunker.join().expect("chunker thread panicked");
        let workers: Vec<Result<()>> = workers
            .into_iter()
            .map(|w| w.join().expect("worker thread panicked"))
            .collect();
        let assembled = assembler.join().expect("assembler thread panicked");
        let packed = packer.join().expect("packer thread panicked");
        let parsed = parser.map(|p| {
            p.join().expect("recompress parser panicked").map_err(|e| {
                if e.get_ref().is_some_and(|e| e.is::<recompress::Stopped>()) {
                    anyhow!(Stopped)
                } else {
                    anyhow!("cannot read the input: {e}")
                }
            })
        });
        (chunked, workers, assembled, packed, parsed)
    });

    // Report the cause, not the echo of a stage stopping because another failed.
    let mut errors: Vec<anyhow::Error> = Vec::new();
    let packed = packed.map_err(|e| errors.push(e));
    for w in workers {
        if let Err(e) = w {
            errors.push(e);
        }
    }
    let assembled = assembled.map_err(|e| errors.push(e));
    let chunked = chunked.map_err(|e| errors.push(e));
    // The parser's read error is the cause when the container stream stopped early.
    let parsed = match parsed {
        Some(Err(e)) if e.is::<Stopped>() => {
            errors.push(e);
            None
        }
        Some(Err(e)) => {
            errors.insert(0, e);
            None
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    if let Some(i) = errors.iter().position(|e| !e.is::<Stopped>()) {
        return Err(errors.swap_remove(i));
    }
    if let Some(e) = errors.pop() {
        return Err(e);
    }
    let (
        Ok((stored_size, own_packs)),
        Ok((tree, chunk_count, new_chunks, stream_hash)),
        Ok(logical_size),
    ) = (packed, assembled, chunked)
    else {
        unreachable!("every error was returned above")
    };

    let time_ns = start_time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    // With a container, the chunks hold its data stream; the snapshot still names the
    // input's bytes.
    let recipes = recipes_stored.and_then(|d| d.lock().unwrap().take());
    let (version, logical_size, stream_hash, container) = match (parsed, recipes) {
        (None, _) => (MANIFEST_VERSION, logical_size, stream_hash.to_hex(), None),
        (Some(_), None) => return Err(anyhow!("the recipe stream was not stored")),
        (Some((input_len, input_hash)), Some((tree, blocks, size, hash))) => (
            MANIFEST_VERSION_CONTAINER,
            input_len,
            input_hash.to_hex().to_string(),
            Some(StoredContainer {
                format: CONTAINER_FORMAT.to_string(),
                size: logical_size,
                hash: stream_hash.to_hex(),
                recipes: tree,
                recipe_blocks: blocks,
                recipe_size: size,
                recipe_hash: hash.to_hex(),
            }),
        ),
    };
    let manifest = Manifest {
        version,
        path: path.to_string(),
        time: humantime::format_rfc3339_millis(start_time).to_string(),
        time_ns,
        host: crate::repo::session::hostname(),
        logical_size,
        stored_size,
        stream_hash,
        chunk_count,
        chunks: tree,
        container,
    };
    before_commit()?;
    let id = rt.block_on(repo.write_manifest(&manifest))?;
    let known = known.into_inner().unwrap();
    let mut uses: HashSet<Id> = known
        .used
        .iter()
        .map(|&n| known.packs[n as usize])
        .collect();
    uses.extend(own_packs);
    rt.block_on(repo.commit_snapshot(&manifest, &id, &uses))?;
    Ok(PushOutcome {
        id,
        logical_size,
        physical_size: stored_size,
        chunks: chunk_count,
        new_chunks,
        duration: started.elapsed(),
        recompress: report.map(|r| r.lock().unwrap().clone()),
    })
}

/// Packs blobs, uploads packs with `opts.uploads` in flight, and writes index segments for
/// packs once they are durable. Returns the bytes stored and the packs written.
fn pack_and_upload(
    rt: &Handle,
    repo: &Repository,
    blobs: Receiver<StoredBlob>,
    opts: &PushOptions,
    counters: &PushCounters,
) -> Result<(u64, Vec<Id>)> {
    let in_flight = Arc::new(Semaphore::new(opts.uploads.max(1)));
    let (done_tx, done_rx) = unbounded::<Result<(Id, Vec<PackEntry>, u64)>>();
    let mut segment = IndexSegment::default();
    let (mut started, mut finished, mut stored) = (0usize, 0usize, 0u64);
    let mut written = Vec::new();

    let mut record =
        |done: Result<(Id, Vec<PackEntry>, u64)>, segment: &mut IndexSegment| -> Result<()> {
            let (pack, entries, len) = done?;
            stored += len;
            written.push(pack);
            counters.stored.fetch_add(len, Ordering::Relaxed);
            segment.packs.push((pack, entries));
            if segment.len() >= opts.segment_entries {
                // Only packs already durable are in the segment: the commit order holds.
                stored += rt.block_on(repo.write_index_segment(segment))?.1;
                *segment = IndexSegment::default();
            }
            Ok(())
        };

    let upload = |builder: PackBuilder, started: &mut usize| {
        let (bytes, id, entries) = builder.finish(repo.keys());
        let permit = rt
            .block_on(in_flight.clone().acquire_owned())
            .expect("semaphore never closes");
        let (repo, done_tx) = (repo.clone(), done_tx.clone());
        *started += 1;
        rt.spawn(async move {
            let len = bytes.len() as u64;
            let result = repo.write_pack(&id, Bytes::from(bytes)).await;
            drop(permit);
            let _ = done_tx.send(result.map(|()| (id, entries, len)));
        });
    };

    let mut packer = Packer::new(opts.pack_size);
    for blob in blobs {
        if let Some(full) = packer.seal_before(blob.stored.len()) {
            // The next buffer is taken (by `add`) only once this upload has its slot,
            // that is once an earlier upload freed its buffer: two packs in memory with
            // one upload at a time, not three.
            upload(full, &mut started);
        }
        packer.add(blob.id, blob.codec, blob.raw_len, &blob.stored);
        while let Ok(done) = done_rx.try_recv() {
            finished += 1;
            record(done, &mut segment)?;
        }
    }
    if let Some(last) = packer.finish() {
        upload(last, &mut started);
    }
    drop(done_tx);
    // The input ended: wait for the last uploads (an error still waits for the others so
    // nothing is left writing behind our back).
    let mut first_error = None;
    while finished < started {
        let done = done_rx.recv().context("upload task vanished")?;
        finished += 1;
        if let Err(e) = record(done, &mut segment) {
            first_error.get_or_insert(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if !segment.is_empty() {
        stored += rt.block_on(repo.write_index_segment(&segment))?.1;
    }
    Ok((stored, written))
}
