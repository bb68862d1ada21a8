//! `kando repo …`: our maintenance commands (verify, gc, repair, init, list, import).

use std::io::Write;

use anyhow::{bail, Context, Result};

use super::args::{LocationArgs, PushTuning, RepoCommand};
use super::location_cmds::push_stream;
use super::progress::ProgressConfig;
use super::stdio::require_stdout;
use super::summary::{self, human_bytes};
use super::target::Target;
use crate::commands::gc::{self, GcOptions};
use crate::commands::select::{resolve, Selection};
use crate::commands::{legacy, list, repair, verify};
use crate::compat::snapshot_arg::parse_snapshot_arg;

/// Runs a `repo` subcommand.
pub(super) fn run(command: RepoCommand, progress: ProgressConfig) -> Result<()> {
    match command {
        RepoCommand::Verify {
            location,
            kopia_snapshot,
            read_data,
        } => verify_cmd(&location, kopia_snapshot.as_deref(), read_data),
        RepoCommand::Gc {
            location,
            repack_dead_pct,
        } => {
            let target = Target::new(&location)?;
            let repo = target.open(false)?;
            let opts = GcOptions {
                repack_dead_pct,
                ..target.gc_options()
            };
            let report = target.rt.block_on(gc::gc(&repo, &opts))?;
            eprintln!("{}", summary::gc_line(&report));
            Ok(())
        }
        RepoCommand::Repair { location } => repair_cmd(&location),
        RepoCommand::Init { location } => {
            let target = Target::new(&location)?;
            let repo = target.init()?;
            eprintln!(
                "kando: created {} repository {} at {}",
                if repo.keys().is_encrypted() {
                    "encrypted (argon2id + XChaCha20-Poly1305)"
                } else {
                    "plain (unencrypted)"
                },
                repo.config().id,
                repo.storage().describe()
            );
            Ok(())
        }
        RepoCommand::List { location, legacy } => list_cmd(&location, legacy),
        RepoCommand::Import {
            location,
            remove_plain,
        } => import_cmd(&location, remove_plain, progress),
    }
}

fn verify_cmd(location: &LocationArgs, snapshot: Option<&str>, read_data: bool) -> Result<()> {
    let target = Target::new(location)?;
    let selection = match snapshot {
        Some(s) => Selection::Id(parse_snapshot_arg(s)?),
        None => Selection::Path(target.path.clone()),
    };
    let repo = target.open(false)?;
    let refs = target.rt.block_on(resolve(&repo, &selection))?;
    let read = read_data || snapshot.is_some();
    let report = verify::verify(target.rt.handle(), &repo, &refs, read)?;
    for p in &report.problems {
        eprintln!("kando: problem: {p}");
    }
    if !report.problems.is_empty() {
        bail!(
            "verify found {} problem(s) in {} snapshot(s) (listed above)",
            report.problems.len(),
            report.snapshots
        );
    }
    eprintln!(
        "kando: verified {} snapshot(s), {} chunk references, {} of data read back intact",
        report.snapshots,
        report.chunks,
        human_bytes(report.bytes_verified)
    );
    Ok(())
}

fn repair_cmd(location: &LocationArgs) -> Result<()> {
    let target = Target::new(location)?;
    let repo = target.open(false)?;
    let report = target.rt.block_on(repair::repair(&repo))?;
    eprintln!(
        "kando: repair: index rebuilt from {} pack(s) ({} blobs), {} damaged pack(s) skipped, {} old segment(s) replaced",
        report.packs,
        report.blobs,
        report.damaged_packs.len(),
        report.segments_replaced
    );
    for p in &report.damaged_packs {
        eprintln!("kando: repair: damaged pack {p}");
    }
    for s in &report.unrestorable {
        eprintln!(
            "kando: repair: snapshot {} at {:?} can no longer be restored: {}",
            s.id, s.path, s.why
        );
    }
    if report.unrestorable.is_empty() {
        eprintln!(
            "kando: repair: every snapshot ({}) can be restored",
            report.snapshots
        );
    }
    Ok(())
}

fn list_cmd(location: &LocationArgs, plain: bool) -> Result<()> {
    let target = Target::new(location)?;
    let mut out = String::new();
    if plain {
        let objects = target.rt.block_on(async {
            legacy::list(&target.location().await?, &target.path, &target.repo_dir).await
        })?;
        for m in objects {
            out.push_str(&format!("{}  {}\n", m.key, m.size));
        }
    } else {
        let repo = target.open(false)?;
        for s in target.rt.block_on(list::list(&repo, &target.path))? {
            let m = &s.manifest;
            out.push_str(&format!(
                "{}  {}  {}  {}  {}\n",
                s.id, m.time, m.path, m.logical_size, m.stored_size
            ));
        }
    }
    require_stdout("the list cannot be printed")?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .context("cannot write to standard output")
}

/// Stores the plain object at --path as a snapshot at the same path.
fn import_cmd(location: &LocationArgs, remove_plain: bool, progress: ProgressConfig) -> Result<()> {
    let target = Target::new(location)?;
    if target.path.is_empty() {
        bail!("repo import needs --path: the plain object to import");
    }
    target.check_push_path()?;
    let plain = target.rt.block_on(target.location())?;
    let size = target
        .rt
        .block_on(legacy::find(&plain, &target.path, &target.repo_dir))?
        .ok_or_else(|| anyhow::anyhow!("no plain object at {:?}", target.path))?;
    let repo = target.open(true)?;
    let input = legacy::PlainReader::new(
        target.rt.handle().clone(),
        plain.clone(),
        &target.path,
        size,
    );
    let tuning = PushTuning::measured_defaults();
    let outcome = push_stream(&target, &repo, Box::new(input), None, &tuning, progress)?;
    if outcome.logical_size != size {
        bail!(
            "the plain object changed while it was imported ({} of {size} bytes); it was kept",
            outcome.logical_size
        );
    }
    eprintln!("{}", summary::push_line(&outcome));
    eprintln!(
        "kando: imported plain object {:?} as snapshot {}",
        target.path, outcome.id
    );
    if remove_plain {
        // Only once the snapshot reads back whole.
        let refs = target
            .rt
            .block_on(resolve(&repo, &Selection::Id(outcome.id.clone())))?;
        let report = verify::verify(target.rt.handle(), &repo, &refs, true)?;
        if !report.problems.is_empty() {
            bail!(
                "the imported snapshot did not verify ({}); the plain object was kept",
                report.problems.join("; ")
            );
        }
        target
            .rt
            .block_on(plain.delete(&target.path))
            .with_context(|| format!("cannot remove the plain object {:?}", target.path))?;
        eprintln!("kando: removed the plain object {:?}", target.path);
    }
    Ok(())
}
