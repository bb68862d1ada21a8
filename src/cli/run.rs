//! Dispatch: each command's argument handling, around the data paths in `commands`.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tokio::runtime::Runtime;

use super::args::{Cli, Command, Endpoint, LocationArgs, LocationCommand, PushTuning, RepoCommand};
use super::open::{open_storage, server_side_encryption};
use super::password;
use super::progress::{ProgressConfig, Reporter, Sample};
use crate::commands::delete::{self, Selection};
use crate::commands::gc::{self, GcOptions, GcReport};
use crate::commands::list;
use crate::commands::pull::{self, PullOptions};
use crate::commands::push::{self, PushCounters, PushOptions};
use crate::commands::repair;
use crate::commands::verify;
use crate::compat::output::{phase_output_line, snapshot_json, validate_key};
use crate::compat::profile::Profile;
use crate::compat::snapshot_arg::parse_snapshot_arg;
use crate::repo::config::ChunkerParams;
use crate::repo::crypto::Password;
use crate::repo::refs::{check_path_fits, normalize_path};
use crate::repo::Repository;
use crate::storage::s3::ServerSideEncryption;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if cli.version {
        return print_stdout(&version_line());
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(());
    };
    match command {
        Command::Output { key, value } => print_stdout(&phase_output_line(&key, &value)?),
        Command::Location { command } => location(
            command,
            ProgressConfig {
                quiet: cli.quiet,
                interval: std::time::Duration::from_secs_f64(
                    cli.progress_interval.clamp(0.05, 86_400.0),
                ),
            },
        ),
        Command::Repo { command } => repo(command),
    }
}

/// `kando version {"version": …, "gitCommit": …, "buildDate": …}`, upstream's shape.
fn version_line() -> String {
    format!(
        "kando version {{\"version\": \"{}\", \"gitCommit\": \"{}\", \"buildDate\": \"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        option_env!("KANDO_GIT_COMMIT").unwrap_or("unknown"),
        option_env!("KANDO_BUILD_DATE").unwrap_or("unknown"),
    )
}

/// Fails when kando started with standard output closed (`>&-`; see `cli::main`).
fn require_stdout(why: &str) -> Result<()> {
    if super::stdout_closed() {
        bail!("standard output is closed; {why}");
    }
    Ok(())
}

/// Writes one line to stdout; a closed stdout is an error, never a panic.
fn print_stdout(line: &str) -> Result<()> {
    require_stdout("nothing can be printed")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .context("cannot write to standard output")
}

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Parsed location flags: the profile, the normalised path and the opened repository.
struct Target {
    rt: Runtime,
    profile: Profile,
    path: String,
    repo_dir: String,
    stale_after: std::time::Duration,
    grace: std::time::Duration,
    password: Option<Password>,
    sse: Option<ServerSideEncryption>,
}

impl Target {
    fn new(args: &LocationArgs) -> Result<Target> {
        let profile = Profile::parse(&args.profile)?;
        let path = normalize_path(&args.path).map_err(|e| anyhow!(e))?;
        let password = password::read(args.password_file.as_deref())?;
        let sse = server_side_encryption(args.sse.as_deref(), args.sse_kms_key_id.as_deref())?;
        Ok(Target {
            password,
            sse,
            rt: runtime()?,
            profile,
            path,
            repo_dir: args.repo_dir.clone(),
            stale_after: std::time::Duration::from_secs(args.lock_stale_after),
            grace: std::time::Duration::from_secs(args.gc_grace),
        })
    }

    /// True for the local-directory backend (tuning defaults differ from S3's).
    fn is_local(&self) -> bool {
        self.profile.location.kind == crate::compat::profile::LocationType::Local
    }

    fn gc_options(&self) -> GcOptions {
        GcOptions {
            stale_after: self.stale_after,
            grace: self.grace,
            ..GcOptions::default()
        }
    }

    fn open(&self, create: bool) -> Result<Repository> {
        let password = self.password.as_ref();
        self.rt
            .block_on(async {
                let storage = open_storage(&self.profile, &self.repo_dir, self.sse.clone()).await?;
                if create {
                    Repository::open_or_create(storage, ChunkerParams::default(), password).await
                } else {
                    Repository::open(storage, password).await
                }
            })
            .map_err(password::explain)
    }
}

fn location(command: LocationCommand, progress: ProgressConfig) -> Result<()> {
    match command {
        LocationCommand::Push {
            source,
            from_command,
            location,
            output_name,
            tuning,
        } => {
            let source = match (source, from_command) {
                (_, Some(cmd)) => Source::Command(cmd),
                (Some(s), None) => Source::Path(s),
                (None, None) => bail!("push needs a source (`-` or a file) or --from-command"),
            };
            push_cmd(source, &location, &output_name, &tuning, progress)
        }
        LocationCommand::Pull {
            target,
            location,
            kopia_snapshot,
            reads,
        } => pull_cmd(
            &target,
            &location,
            kopia_snapshot.as_deref(),
            reads,
            progress,
        ),
        LocationCommand::Delete {
            extra: _,
            location,
            kopia_snapshot,
        } => delete_cmd(&location, kopia_snapshot.as_deref()),
    }
}

/// Where push reads from.
enum Source {
    /// `-` or a file path.
    Path(String),
    /// A producer command run with `sh -c`.
    Command(String),
}

/// Grows the pipe behind `fd` (if it is one) to 1 MiB, the unprivileged maximum. With the
/// default 64 KiB the producer and kando wake each other every 64 KiB: a re-push of a
/// known 658 MB dump took 1.6 s through `cat |` and 0.6 s from a file.
fn enlarge_pipe(fd: std::os::fd::RawFd) {
    #[cfg(target_os = "linux")]
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
        }
    }
}

/// Starts the producer of `--from-command`; its stdout is the push's input.
fn spawn_producer(cmd: &str) -> Result<(std::process::Child, Box<dyn Read + Send>)> {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run --from-command {cmd:?}"))?;
    let out = child.stdout.take().expect("stdout was piped");
    enlarge_pipe(std::os::fd::AsRawFd::as_raw_fd(&out));
    Ok((child, Box::new(out)))
}

/// Waits for the producer; anything but exit 0 is an error that stops the commit.
fn producer_succeeded(child: &mut std::process::Child) -> Result<()> {
    let status = child
        .wait()
        .context("cannot wait for the --from-command process")?;
    if !status.success() {
        bail!("the --from-command producer failed ({status}); no snapshot was committed");
    }
    Ok(())
}

fn push_cmd(
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
    check_push_path(&target)?;
    // A missing file fails before anything is created; the repository opens (or is created)
    // before a producer starts, so a wrong password or an unreachable store never costs a dump.
    let file_input: Option<Box<dyn Read + Send>> = match &source {
        Source::Command(_) => None,
        Source::Path(p) => Some(match Endpoint::parse(p) {
            Endpoint::Std => {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    bail!("standard input is a terminal; pipe the data into kando (… | kando location push -) or give a file path");
                }
                enlarge_pipe(0);
                // Read the raw descriptor: stdin's own buffering only adds a copy.
                Box::new(ManuallyDrop::new(unsafe { File::from_raw_fd(0) }).try_clone()?)
            }
            Endpoint::File(path) => Box::new(
                File::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
            ),
        }),
    };
    let repo = target.open(true)?;
    let mut producer = None;
    let input = match (file_input, &source) {
        (Some(input), _) => input,
        (None, Source::Command(cmd)) => {
            let (child, out) = spawn_producer(cmd)?;
            producer = Some(child);
            out
        }
        (None, Source::Path(_)) => unreachable!("paths were opened above"),
    };
    let producer = std::sync::Mutex::new(producer);
    let opts = PushOptions {
        jobs: tuning.jobs.unwrap_or_else(push::default_jobs),
        uploads: tuning
            .uploads
            .unwrap_or(if target.is_local() { 1 } else { 4 }),
        pack_size: tuning.pack_size_mib.clamp(1, 512) * 1024 * 1024,
        zstd_level: tuning.compression_level,
        stale_after: target.stale_after.max(std::time::Duration::from_secs(1)),
        ..PushOptions::default()
    };
    let counters = Arc::new(PushCounters::default());
    let reporter = {
        let c = counters.clone();
        Reporter::start("push", progress, None, move || Sample {
            bytes: c.read.load(Ordering::Relaxed),
            new_bytes: Some(c.new_raw.load(Ordering::Relaxed)),
        })
    };
    let outcome = push::push(
        target.rt.handle(),
        &repo,
        input,
        &target.path,
        &opts,
        &counters,
        &|| {
            if let Some(child) = producer.lock().unwrap().as_mut() {
                producer_succeeded(child)?;
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
    let outcome = outcome?;
    let secs = outcome.duration.as_secs_f64().max(1e-9);
    let dedup = if outcome.chunks == 0 {
        100.0
    } else {
        100.0 * (outcome.chunks - outcome.new_chunks) as f64 / outcome.chunks as f64
    };
    eprintln!(
        "kando: pushed {} in {:.1} s ({}/s), stored {} new, {dedup:.1}% of chunks deduplicated, snapshot {}",
        human_bytes(outcome.logical_size),
        secs,
        human_bytes((outcome.logical_size as f64 / secs) as u64),
        human_bytes(outcome.physical_size),
        outcome.id
    );
    let value = snapshot_json(&outcome.id, outcome.logical_size, outcome.physical_size);
    print_stdout(&phase_output_line(output_name, &value)?)
}

/// Fails before anything is read or written if a snapshot at the target's path could not
/// be committed (its ref key would be too long for the backend).
fn check_push_path(target: &Target) -> Result<()> {
    let loc = &target.profile.location;
    let root_len = if target.is_local() {
        0
    } else {
        super::open::repository_root(&loc.prefix, &target.repo_dir)?.len() + 1
    };
    check_path_fits(&target.path, target.password.is_some(), root_len).map_err(|e| anyhow!(e))
}

fn pull_cmd(
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
    let reads = reads.unwrap_or(if target.is_local() { 6 } else { 12 });
    let snapshot_id = snapshot.map(parse_snapshot_arg).transpose()?;
    let repo = target.open(false)?;
    pull_snapshot(&target, &repo, snapshot_id, target_arg, reads, progress)
}

fn pull_snapshot(
    target: &Target,
    repo: &Repository,
    snapshot_id: Option<String>,
    target_arg: &str,
    reads: usize,
    progress: ProgressConfig,
) -> Result<()> {
    let id = match snapshot_id {
        Some(id) => id,
        None => target
            .rt
            .block_on(list::newest_at(repo, &target.path))?
            .ok_or_else(|| {
                anyhow!(
                    "no snapshot at path {:?} in {}",
                    target.path,
                    repo.storage().describe()
                )
            })?,
    };
    let manifest = target.rt.block_on(repo.read_manifest(&id))?;
    let opts = PullOptions {
        reads: reads.max(1),
        ..PullOptions::default()
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
    let outcome = match Endpoint::parse(target_arg) {
        Endpoint::Std => {
            // Unbuffered fd 1: chunks are large, and Stdout's line buffering only adds copies.
            let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
            pull::pull(handle, repo, &id, &manifest, &mut *out, &opts, &written)
        }
        Endpoint::File(path) => {
            let mut outcome = None;
            write_atomically(&path, |file| {
                outcome = Some(pull::pull(
                    handle, repo, &id, &manifest, file, &opts, &written,
                )?);
                Ok(())
            })
            .map(|()| outcome.expect("set on success"))
        }
    };
    reporter.finish();
    let outcome = outcome?;
    let secs = outcome.duration.as_secs_f64().max(1e-9);
    eprintln!(
        "kando: pulled {} in {:.1} s ({}/s), verified, snapshot {id}",
        human_bytes(outcome.bytes),
        secs,
        human_bytes((outcome.bytes as f64 / secs) as u64)
    );
    Ok(())
}

/// Writes the pulled data to `path`. A regular file (or a new name) is written through a
/// temporary file in the same directory, moved into place only when `fill` succeeds: a
/// failed pull never leaves a partial file under the name. Anything else that exists (a
/// FIFO, /dev/null, a device) is opened and written directly, as upstream does: replacing
/// it with a regular file would break whoever reads it.
fn write_atomically(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            return fill(&mut file);
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        bail!("{} is not a file path", path.display());
    }
    // Short, so that any name the file system allows for the target still leaves room.
    let tmp = dir.join(format!(".kando-{:016x}.tmp", rand::random::<u64>()));
    // Registered first: a signal between the two must not leave the file behind.
    super::signals::register_temp(&tmp);
    let result = write_through_temp(&tmp, path, fill);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    super::signals::unregister_temp(&tmp);
    result
}

fn write_through_temp(
    tmp: &Path,
    path: &Path,
    fill: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    fill(&mut file)?;
    file.sync_all().context("cannot flush the restored file")?;
    drop(file);
    // Complete and verified: a signal no longer ends the process (signals.rs).
    super::signals::finishing();
    match std::fs::rename(tmp, path) {
        Ok(()) => Ok(()),
        // A bind-mounted file (a container's mount point) cannot be replaced, only written.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            copy_into(tmp, path)?;
            std::fs::remove_file(tmp).with_context(|| format!("cannot remove {}", tmp.display()))
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot move the restored data to {}", path.display()))
        }
    }
}

/// Copies the verified temporary file over `path` in place (when it cannot be renamed).
fn copy_into(tmp: &Path, path: &Path) -> Result<()> {
    let mut from =
        File::open(tmp).with_context(|| format!("cannot read back {}", tmp.display()))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    std::io::copy(&mut from, &mut to)
        .and_then(|_| to.sync_all())
        .with_context(|| format!("cannot write the restored data to {}", path.display()))?;
    Ok(())
}

fn delete_cmd(args: &LocationArgs, snapshot: Option<&str>) -> Result<()> {
    let target = Target::new(args)?;
    let selection = match snapshot {
        Some(s) => Selection::Id(parse_snapshot_arg(s)?),
        None if target.path.is_empty() => {
            bail!("delete needs --path or --kopia-snapshot (refusing to delete everything)")
        }
        None => Selection::Path(target.path.clone()),
    };
    let repo = match target.open(false) {
        Ok(r) => r,
        // Nothing was ever pushed there: nothing to delete by path.
        Err(e)
            if matches!(selection, Selection::Path(_))
                && e.to_string().contains("there is no kando repository") =>
        {
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
        Ok(report) => eprintln!("kando: {}", gc_summary(&report)),
        Err(e) => eprintln!(
            "kando: deleted {} snapshot(s); reclaiming space failed and was skipped: {e:#}",
            deleted.len()
        ),
    }
    Ok(())
}

fn gc_summary(r: &GcReport) -> String {
    let mut line = format!(
        "garbage collection: {} live snapshot(s), {} pack(s) deleted, {} rewritten, {} freed, {} index segment(s) merged",
        r.snapshots,
        r.packs_deleted,
        r.packs_rewritten,
        human_bytes(r.bytes_freed),
        r.segments_merged
    );
    if let Some((n, why)) = &r.waiting {
        line.push_str(&format!(
            "; reclaiming {n} more pack(s) deferred: {why} (a later delete or `kando repo gc` finishes it)"
        ));
    }
    line
}

fn repo(command: RepoCommand) -> Result<()> {
    match command {
        RepoCommand::Verify {
            location,
            kopia_snapshot,
            read_data,
        } => {
            let target = Target::new(&location)?;
            let snapshot = kopia_snapshot
                .as_deref()
                .map(parse_snapshot_arg)
                .transpose()?;
            let repo = target.open(false)?;
            let result = (|| {
                let refs = target.rt.block_on(repo.list_refs(&target.path))?;
                let refs: Vec<_> = match &snapshot {
                    Some(id) => {
                        let r: Vec<_> = target
                            .rt
                            .block_on(repo.list_refs(""))?
                            .into_iter()
                            .filter(|r| &r.id == id)
                            .collect();
                        if r.is_empty() {
                            bail!("snapshot {id} not found in {}", repo.storage().describe());
                        }
                        r
                    }
                    None => refs,
                };
                let read = read_data || snapshot.is_some();
                verify::verify(target.rt.handle(), &repo, &refs, read)
            })();
            let report = result?;
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
            eprintln!("kando: {}", gc_summary(&report));
            Ok(())
        }
        RepoCommand::Repair { location } => {
            let target = Target::new(&location)?;
            let repo = target.open(false)?;
            let report = target.rt.block_on(repair::repair(&repo))?;
            eprintln!(
                "kando: repair: index rebuilt from {} pack(s) ({} blobs), {} damaged pack(s) skipped, {} old segment(s) replaced",
                report.packs, report.blobs, report.damaged_packs.len(), report.segments_replaced
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
        RepoCommand::Init { location } => {
            let target = Target::new(&location)?;
            let repo = target
                .rt
                .block_on(async {
                    let storage =
                        open_storage(&target.profile, &target.repo_dir, target.sse.clone()).await?;
                    Repository::init(storage, ChunkerParams::default(), target.password.as_ref())
                        .await
                })
                .map_err(password::explain)?;
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
        RepoCommand::List { location } => {
            let target = Target::new(&location)?;
            let repo = target.open(false)?;
            let snapshots = target.rt.block_on(list::list(&repo, &target.path))?;
            let mut out = String::new();
            for s in snapshots {
                let m = &s.manifest;
                out.push_str(&format!(
                    "{}  {}  {}  {}  {}\n",
                    s.id, m.time, m.path, m.logical_size, m.stored_size
                ));
            }
            require_stdout("the list cannot be printed")?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .and_then(|_| stdout.flush())
                .context("cannot write to standard output")
        }
    }
}

/// Bytes in binary units for humans.
pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}
