//! The process's standard streams and files: push's input (stdin, a file, or a producer
//! command), pull's output (stdout, a file replaced atomically, or a FIFO/device written
//! through), and printing to stdout only what Kanister reads there.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::args::Endpoint;

/// Fails when kando started with standard output closed (`>&-`; see `cli::main`).
pub(super) fn require_stdout(why: &str) -> Result<()> {
    if super::stdout_closed() {
        bail!("standard output is closed; {why}");
    }
    Ok(())
}

/// Writes one line to stdout; a closed stdout is an error, never a panic.
pub(super) fn print_stdout(line: &str) -> Result<()> {
    require_stdout("nothing can be printed")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .context("cannot write to standard output")
}

/// Where push reads from.
pub(super) enum Source {
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
pub(super) fn spawn_producer(cmd: &str) -> Result<(std::process::Child, Box<dyn Read + Send>)> {
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
pub(super) fn producer_succeeded(child: &mut std::process::Child) -> Result<()> {
    let status = child
        .wait()
        .context("cannot wait for the --from-command process")?;
    if !status.success() {
        bail!("the --from-command producer failed ({status}); no snapshot was committed");
    }
    Ok(())
}

/// Opens push's input when it is stdin or a file (a producer starts later, once the
/// repository is open); `None` for `--from-command`.
pub(super) fn open_input(source: &Source) -> Result<Option<Box<dyn Read + Send>>> {
    Ok(match source {
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
    })
}

/// Writes pulled data to `target` (`-` or a path) through `fill`.
pub(super) fn write_output<T>(
    target: &str,
    fill: impl FnOnce(&mut (dyn Write + Send)) -> Result<T>,
) -> Result<T> {
    match Endpoint::parse(target) {
        Endpoint::Std => {
            // Unbuffered fd 1: chunks are large, and Stdout's line buffering only adds copies.
            let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
            fill(&mut *out)
        }
        Endpoint::File(path) => {
            let mut outcome = None;
            write_atomically(&path, |file| {
                outcome = Some(fill(file)?);
                Ok(())
            })
            .map(|()| outcome.expect("set on success"))
        }
    }
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
