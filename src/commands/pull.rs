//! `pull`: a snapshot becomes its exact bytes again.
//!
//! ```text
//! planner thread: chunk-list tree ─► index lookups ─► coalesced ranged reads
//!   ─► fetch (N in flight, stream order kept) ─► decode + verify BLAKE3 (blocking pool)
//!   ─► writer thread: output, whole-stream hash
//! ```
//! Every chunk is verified before it is written; the stream hash and length are checked
//! at the end, and any mismatch is an error naming the snapshot and object.

use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::kib;
use crate::recompress::{Rebuilder, RecipeBlocks};
use crate::repo::chunklist::ChunkListReader;
use crate::repo::ids::Id;
use crate::repo::index::Index;
use crate::repo::manifest::{Manifest, StoredContainer};
use crate::repo::pack::{decode_blob, PackEntry};
use crate::repo::{pack_key, Repository};

/// Tunables of the pull pipeline.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Ranged reads in flight.
    pub reads: usize,
    /// Adjacent chunks of one pack are fetched in one read while both the stored bytes and
    /// the decoded bytes stay under this.
    pub read_span: u64,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            reads: 6,
            read_span: 4 * 1024 * 1024,
        }
    }
}

/// What a finished pull reports.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub duration: Duration,
}

/// One ranged read covering consecutive chunks of one pack.
struct ReadJob {
    pack: Id,
    range: Range<u64>,
    raw_len: u64,
    entries: Vec<PackEntry>,
}

/// Bytes of fetched and decoded data held at once: `reads` × `read_span`. A read takes
/// its share (stored + decoded bytes) before it starts, gives the stored part back once
/// decoded and the rest once written, so pull's memory has a hard bound. Without it the
/// peak was whatever moment most reads happened to be finished but not yet written: rare,
/// so an 8 GiB pull, sampling more moments, peaked 10–19 % higher than a 1 GiB one.
fn buffer_kib(opts: &PullOptions) -> usize {
    kib(opts.reads.max(1) as u64 * opts.read_span)
}

/// Restores snapshot `id` (whose manifest is `manifest`) into `out`.
pub fn pull(
    rt: &Handle,
    repo: &Repository,
    id: &str,
    manifest: &Manifest,
    out: &mut (dyn Write + Send),
    opts: &PullOptions,
    written: &AtomicU64,
) -> Result<PullOutcome> {
    let started = Instant::now();
    let index = rt.block_on(repo.load_read_index())?;
    let index = &index;
    let (job_tx, job_rx) = tokio::sync::mpsc::channel::<ReadJob>(opts.reads * 2);
    let (data_tx, data_rx) = crossbeam_channel::bounded::<(Vec<Vec<u8>>, OwnedSemaphorePermit)>(2);
    let buffer_kib = buffer_kib(opts);
    let buffer = Arc::new(Semaphore::new(buffer_kib));

    let (planned, fetched, wrote) = std::thread::scope(|s| {
        let planner = s.spawn(move || plan_reads(rt, repo, id, manifest, index, opts, job_tx));
        let writer = s.spawn(move || -> Result<Written> {
            let mut sink = Counted {
                out,
                hasher: blake3::Hasher::new(),
                total: 0,
                written,
            };
            let write_err = |e: std::io::Error| -> anyhow::Error {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    anyhow!(NotRebuilt(format!("snapshot {id} did not restore: {e}")))
                } else {
                    anyhow!(e).context("cannot write the restored data")
                }
            };
            let stored = match &manifest.container {
                // Each batch's permit is dropped once the batch is written.
                None => {
                    for (chunks, _permit) in data_rx {
                        for c in chunks {
                            sink.write_all(&c).map_err(write_err)?;
                        }
                    }
                    None
                }
                Some(container) => {
                    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                    let recipes = recipe_blocks(rt, repo, index, container)
                        .map_err(|e| e.context(format!("snapshot {id}")))?;
                    let mut rebuilder = Rebuilder::new(&mut sink, recipes, threads);
                    let mut hasher = blake3::Hasher::new();
                    for (chunks, _permit) in data_rx {
                        for c in chunks {
                            hasher.update(&c);
                            rebuilder.write_all(&c).map_err(write_err)?;
                        }
                    }
                    rebuilder.finish().map_err(write_err)?;
                    Some((hasher.count(), Id(*hasher.finalize().as_bytes())))
                }
            };
            sink.flush().map_err(write_err)?;
            Ok((sink.total, Id(*sink.hasher.finalize().as_bytes()), stored))
        });

        let fetched = rt.block_on(async {
            let storage = repo.storage().clone();
            let keys = repo.keys().clone();
            // Shares are taken here, one read after another in stream order, so the read
            // the writer waits for always holds its share: no deadlock.
            let jobs = stream::unfold(
                job_rx,
                |mut rx| async move { rx.recv().await.map(|j| (j, rx)) },
            )
            .then(|job| {
                let buffer = buffer.clone();
                async move {
                    let stored_kib = kib(job.range.end - job.range.start);
                    let share = stored_kib + kib(job.raw_len);
                    let permit = buffer
                        .acquire_many_owned(share.min(buffer_kib) as u32)
                        .await
                        .expect("the semaphore is never closed");
                    (job, permit, stored_kib)
                }
            });
            jobs.map(|(job, mut permit, stored_kib)| {
                let (storage, keys) = (storage.clone(), keys.clone());
                async move {
                    let key = pack_key(&job.pack);
                    let data = storage
                        .get_range(&key, job.range.clone())
                        .await
                        .with_context(|| format!("cannot read pack {key} of snapshot {id}"))?;
                    let id = id.to_string();
                    let chunks = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
                        job.entries
                            .iter()
                            .map(|e| {
                                let at = (e.offset as u64 - job.range.start) as usize;
                                decode_blob(e, &data[at..at + e.stored_len as usize], &keys)
                                    .with_context(|| {
                                        format!("snapshot {id}: pack {key} is damaged")
                                    })
                            })
                            .collect()
                    })
                    .await??;
                    // The stored bytes were freed with the blocking task.
                    drop(permit.split(stored_kib.min(permit.num_permits())));
                    Ok((chunks, permit))
                }
            })
            .buffered(opts.reads)
            .try_for_each(|batch| {
                let sent = data_tx
                    .send(batch)
                    .map_err(|_| anyhow!("the output writer stopped"));
                async move { sent }
            })
            .await
        });
        drop(data_tx);
        let planned = planner.join().expect("planner thread panicked");
        let wrote = writer.join().expect("writer thread panicked");
        (planned, fetched, wrote)
    });

    // The writer's error (e.g. a closed pipe) is the cause when it has one, unless the
    // data stopped coming first.
    let stopped_early = fetched.is_err() || planned.is_err();
    let wrote = match wrote {
        Err(e) if stopped_early && e.is::<NotRebuilt>() => None,
        w => Some(w?),
    };
    fetched?;
    planned?;
    let (bytes, hash, stored) = wrote.expect("the writer's error was returned above");
    if let (Some((len, h)), Some(c)) = (stored, &manifest.container) {
        if len != c.size || h.to_hex().as_str() != c.hash {
            bail!(
                "snapshot {id} did not restore intact: its stored container stream is {len} bytes hashing to {h}, expected {} bytes hashing to {}",
                c.size,
                c.hash
            );
        }
    }
    if bytes != manifest.logical_size || hash.to_hex() != manifest.stream_hash {
        bail!(
            "snapshot {id} did not restore intact: got {bytes} bytes hashing to {hash}, expected {} bytes hashing to {}",
            manifest.logical_size,
            manifest.stream_hash
        );
    }
    Ok(PullOutcome {
        bytes,
        duration: started.elapsed(),
    })
}

/// The recipe stream's blocks, read as the rebuilder needs them; its length, hash and
/// block count are checked at its end.
fn recipe_blocks<'a>(
    rt: &'a Handle,
    repo: &'a Repository,
    index: &'a Index,
    c: &'a StoredContainer,
) -> Result<RecipeBlocks<'a>> {
    let fetch = move |block: &Id| -> Result<Vec<u8>> {
        rt.block_on(repo.read_blob(index, block))
            .context("cannot read its recipe list")
    };
    let mut ids = ChunkListReader::new(&c.recipes, fetch)?;
    let mut hasher = blake3::Hasher::new();
    let mut blocks = 0u64;
    let mut checked = false;
    Ok(Box::new(std::iter::from_fn(move || {
        let to_io = |e: anyhow::Error| std::io::Error::other(format!("{e:#}"));
        match ids.next() {
            Some(id) => {
                let block = id
                    .and_then(|id| rt.block_on(repo.read_blob(index, &id)))
                    .map_err(to_io);
                if let Ok(b) = &block {
                    hasher.update(b);
                    blocks += 1;
                }
                Some(block)
            }
            None if !checked => {
                checked = true;
                let hash = Id(*hasher.finalize().as_bytes()).to_hex();
                (blocks != c.recipe_blocks
                    || hasher.count() != c.recipe_size
                    || hash.as_str() != c.recipe_hash)
                    .then(|| {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "its recipe stream is {} bytes in {blocks} blocks hashing to {hash}, expected {} bytes in {} blocks hashing to {}",
                                hasher.count(), c.recipe_size, c.recipe_blocks, c.recipe_hash
                            ),
                        ))
                    })
            }
            None => None,
        }
    })))
}

/// What the writer wrote (length, hash) and, for a recompressed snapshot, the data
/// stream it was fed (length, hash).
type Written = (u64, Id, Option<(u64, Id)>);

/// A container that did not rebuild: when the data stopped coming, a consequence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotRebuilt(String);

/// The output, counted and hashed as it is written.
struct Counted<'a> {
    out: &'a mut (dyn Write + Send),
    hasher: blake3::Hasher,
    total: u64,
    written: &'a AtomicU64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.total += n as u64;
        self.written.store(self.total, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Walks the chunk list and sends coalesced reads, in stream order.
fn plan_reads(
    rt: &Handle,
    repo: &Repository,
    id: &str,
    manifest: &Manifest,
    index: &Index,
    opts: &PullOptions,
    jobs: tokio::sync::mpsc::Sender<ReadJob>,
) -> Result<()> {
    let fetch = |block: &Id| -> Result<Vec<u8>> {
        rt.block_on(repo.read_blob(index, block))
            .with_context(|| format!("snapshot {id}: cannot read its chunk list"))
    };
    let reader = ChunkListReader::new(&manifest.chunks, fetch)
        .map_err(|e: anyhow::Error| e.context(format!("snapshot {id}")))?;
    let mut current: Option<ReadJob> = None;
    let mut count = 0u64;
    let send = |job: ReadJob| {
        jobs.blocking_send(job)
            .map_err(|_| anyhow!("the reader stopped"))
    };
    for chunk in reader {
        let chunk = chunk?;
        count += 1;
        let loc = index.get(&chunk).ok_or_else(|| {
            anyhow!(
                "snapshot {id} is damaged: chunk {chunk} is in no index segment (its pack is missing){}",
                index.skipped_note()
            )
        })?;
        let e = loc.entry;
        let (start, end) = (e.offset as u64, e.offset as u64 + e.stored_len as u64);
        match &mut current {
            Some(job)
                if job.pack == loc.pack
                    && job.range.end == start
                    && end - job.range.start <= opts.read_span
                    && job.raw_len + e.raw_len as u64 <= opts.read_span =>
            {
                job.range.end = end;
                job.raw_len += e.raw_len as u64;
                job.entries.push(e);
            }
            _ => {
                if let Some(job) = current.take() {
                    send(job)?;
                }
                current = Some(ReadJob {
                    pack: loc.pack,
                    range: start..end,
                    raw_len: e.raw_len as u64,
                    entries: vec![e],
                });
            }
        }
    }
    if let Some(job) = current {
        send(job)?;
    }
    if count != manifest.chunk_count {
        bail!(
            "snapshot {id} is damaged: its chunk list has {count} chunks, the manifest says {}",
            manifest.chunk_count
        );
    }
    Ok(())
}
