//! `kando location push | pull | delete`: argument handling around the data paths, and the
//! plain objects upstream kando left behind (pull falls back to them, delete removes them).

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::args::{Endpoint, LocationArgs, PushTuning};
use super::progress::{ProgressConfig, Reporter, Sample};
use super::stdio::{self, print_stdout, require_stdout, Source};
use super::summary;
use super::target::Target;
use crate::commands::select::{self, Selection};
use crate::commands::{delete, gc, legacy, pull, push};
use crate::compat::output::{phase_output_line, snapshot_json, validate_key};
use crate::compat::snapshot_arg::parse_snapshot_arg;
use crate::repo::{NoRepository, Repository};

/// `push`: a stream becomes a snapshot; its id is printed as a Kanister output artifact.
pub(super) fn push(
    source: Source,
    args: &LocationArgs,
    output_name: &str,
    tuning: &PushTuning,
    progress: ProgressConfig,
) -> Result<()> {
    validate_key(output_name).context("--output-name")?;
    // The snapshot id goes to stdout at the end: with nowhere to report it, fail before a
    // snapshot nobody hears about is committed.
    require_stdout("the snapshot id could not be reported")?;
    let target = Target::new(args)?;
    target.check_push_path()?;
    // A missing file fails before anything is created; the repository opens (or is created)
    // before a producer starts, so a wrong password or an unreachable store never costs a dump.
    let file_input = stdio::open_input(&source)?;
    let repo = target.open(true)?;
    let (input, producer): (Box<dyn Read + Send>, _) = match (file_input, &source) {
        (Some(input), _) => (input, None),
        (None, Source::Command(cmd)) => {
            let (child, out) = stdio::spawn_producer(cmd)?;
            (out, Some(child))
        }
        (None, Source::Path(_)) => unreachable!("paths were opened above"),
    };
    let outcome = push_stream(&target, &repo, input, producer, tuning, progress)?;
    eprintln!("{}", summary::push_line(&outcome));
    let value = snapshot_json(&outcome.id, outcome.logical_size, outcome.physical_size);
    print_stdout(&phase_output_line(output_name, &value)?)
}

/// Runs the push pipeline on `input`; a producer must exit 0 before the commit.
pub(super) fn push_stream(
    target: &Target,
    repo: &Repository,
    input: Box<dyn Read + Send>,
    producer: Option<std::process::Child>,
    tuning: &PushTuning,
    progress: ProgressConfig,
) -> Result<push::PushOutcome> {
    let producer = std::sync::Mutex::new(producer);
    let counters = Arc::new(push::PushCounters::default());
    let reporter = {
        let c = counters.clone();
        Reporter::start("push", progress, None, move || Sample {
            bytes: c.read.load(Ordering::Relaxed),
            new_bytes: Some(c.new_raw.load(Ordering::Relaxed)),
        })
    };
    let outcome = push::push(
        target.rt.handle(),
        repo,
        input,
        &target.path,
        &target.push_options(tuning),
        &counters,
        &|| {
            if let Some(child) = producer.lock().unwrap().as_mut() {
                stdio::producer_succeeded(child)?;
            }
            // About to commit: a signal from here on no longer ends the process (signals.rs).
            super::signals::finishing();
            Ok(())
        },
    );
    reporter.finish();
    if let Some(mut child) = producer.into_inner().unwrap() {
        // A failed push must not leave the producer running (or blocked on a full pipe).
        let _ = child.kill();
        let _ = child.wait();
    }
    outcome
}

/// `pull`: a snapshot (by id, else the newest at --path) to stdout or a file. With no
/// snapshot at --path, the plain object upstream kando wrote there, if any.
pub(super) fn pull(
    target_arg: &str,
    args: &LocationArgs,
    snapshot: Option<&str>,
    reads: Option<usize>,
    progress: ProgressConfig,
) -> Result<()> {
    if Endpoint::parse(target_arg) == Endpoint::Std {
        require_stdout("there is nowhere to write the snapshot (give a file instead of -)")?;
    }
    let target = Target::new(args)?;
    let reads = target.pull_reads(reads);
    let selection = match snapshot {
        Some(s) => Selection::Id(parse_snapshot_arg(s)?),
        None => Selection::NewestAt(target.path.clone()),
    };
    let repo = match target.open(false) {
        Ok(repo) => Some(repo),
        Err(e) if e.is::<NoRepository>() && snapshot.is_none() => None,
        Err(e) => return Err(e),
    };
    let found = match repo {
        Some(repo) => {
            let newest = target
                .rt
                .block_on(select::resolve(&repo, &selection))?
                .pop();
            Ok((repo, newest))
        }
        None => Err(()),
    };
    let plain = if snapshot.is_none() {
        target.rt.block_on(async {
            let location = target.location().await?;
            let size = legacy::find(&location, &target.path, &target.repo_dir).await?;
            anyhow::Ok(size.map(|s| (location, s)))
        })?
    } else {
        None
    };
    let (repo, snapshot) = match (found, plain) {
        (Ok((repo, Some(r))), plain) => {
            if plain.is_some() {
                tracing::info!(
                    "both a snapshot ({}) and a plain object exist at {:?}; restoring the snapshot, the newer",
                    r.id,
                    target.path
                );
            }
            (repo, r)
        }
        (_, Some((location, size))) => {
            return pull_plain(&target, &location, size, target_arg, reads, progress)
        }
        (Ok((repo, None)), None) => anyhow::bail!(
            "no snapshot at path {:?} in {}",
            target.path,
            repo.storage().describe()
        ),
        (Err(()), None) => anyhow::bail!(
            "no snapshot at path {:?}: there is no kando repository at this location, and no plain object at that path either",
            target.path
        ),
    };
    if let Selection::Id(_) = selection {
        if !target.path.is_empty() && snapshot.path != target.path {
            tracing::warn!(
                "snapshot {} was pushed to --path {:?}, not {:?}; restoring it anyway",
                snapshot.id,
                snapshot.path,
                target.path
            );
        }
    }
    let id = snapshot.id;
    let manifest = target.rt.block_on(repo.read_manifest(&id))?;
    let opts = pull::PullOptions {
        reads,
        ..pull::PullOptions::default()
    };
    let written = Arc::new(AtomicU64::new(0));
    let reporter = {
        let w = written.clone();
        Reporter::start("pull", progress, Some(manifest.logical_size), move || {
            Sample {
                bytes: w.load(Ordering::Relaxed),
                new_bytes: None,
            }
        })
    };
    let handle = target.rt.handle();
    let outcome = stdio::write_output(target_arg, |out| {
        pull::pull(handle, &repo, &id, &manifest, out, &opts, &written)
    });
    reporter.finish();
    eprintln!("{}", summary::pull_line(&outcome?, &id));
    Ok(())
}

/// Streams the plain object at the target's path (written by upstream kando).
fn pull_plain(
    target: &Target,
    location: &crate::storage::DynStorage,
    size: u64,
    target_arg: &str,
    reads: usize,
    progress: ProgressConfig,
) -> Result<()> {
    eprintln!(
        "kando: {:?} is a plain object written without kando's repository (by upstream kando): restored as stored, not verified",
        target.path
    );
    let written = Arc::new(AtomicU64::new(0));
    let reporter = {
        let w = written.clone();
        Reporter::start("pull", progress, Some(size), move || Sample {
            bytes: w.load(Ordering::Relaxed),
            new_bytes: None,
        })
    };
    let started = std::time::Instant::now();
    let result = stdio::write_output(target_arg, |out| {
        legacy::pull(
            target.rt.handle(),
            location,
            &target.path,
            size,
            out,
            reads,
            &written,
        )
    });
    reporter.finish();
    let bytes = result?;
    let outcome = pull::PullOutcome {
        bytes,
        duration: started.elapsed(),
    };
    eprintln!(
        "{}",
        summary::pull_line(&outcome, "(plain object)").replace(", verified", "")
    );
    Ok(())
}

/// `delete`: a snapshot by id, or everything at --path and below it — our snapshots and
/// upstream's plain objects — then garbage collection.
pub(super) fn delete(args: &LocationArgs, snapshot: Option<&str>) -> Result<()> {
    let target = Target::new(args)?;
    let selection = match snapshot {
        Some(s) => Selection::Id(parse_snapshot_arg(s)?),
        None if target.path.is_empty() => {
            anyhow::bail!("delete needs --path or --kopia-snapshot (refusing to delete everything)")
        }
        None => Selection::Path(target.path.clone()),
    };
    if let Selection::Path(path) = &selection {
        let (count, bytes) = target.rt.block_on(async {
            legacy::delete(&target.location().await?, path, &target.repo_dir).await
        })?;
        if count > 0 {
            eprintln!(
                "kando: removed {count} plain object(s), {}, at or under {path:?} (written without kando's repository)",
                summary::human_bytes(bytes)
            );
        }
    }
    let repo = match target.open(false) {
        Ok(r) => r,
        // Nothing was ever pushed there: no snapshot to delete by path.
        Err(e) if e.is::<NoRepository>() && matches!(selection, Selection::Path(_)) => {
            tracing::info!("{e}");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let deleted = target.rt.block_on(delete::delete(&repo, &selection))?;
    if deleted.is_empty() {
        eprintln!(
            "kando: no snapshot at path {:?}; nothing deleted",
            target.path
        );
        return Ok(());
    }
    for r in &deleted {
        tracing::info!("deleted snapshot {} at {:?}", r.id, r.path);
    }
    // Reclaim space now; never fail the delete over it.
    match target.rt.block_on(gc::gc(&repo, &target.gc_options())) {
        Ok(report) => eprintln!("{}", summary::gc_line(&report)),
        Err(e) => eprintln!(
            "kando: deleted {} snapshot(s); reclaiming space failed and was skipped: {e:#}",
            deleted.len()
        ),
    }
    Ok(())
}
