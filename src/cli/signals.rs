//! SIGTERM, SIGINT and SIGHUP during a push or pull. Kanister cancels a phase by sending
//! SIGTERM; a terminal sends SIGINT or SIGHUP. Any of them ends the process the way every
//! other failure does: one `Error:` line, exit 69, and a pull's partial output file removed.
//!
//! The signals are blocked before any other thread exists (every later thread inherits the
//! mask; children get a clean mask from `std::process::Command`), and one thread takes them
//! with `sigwait`, so nothing runs in a signal handler. A killed push needs no cleanup: the
//! repository's commit order already guarantees that an unfinished push leaves no snapshot.
//!
//! Once the main thread reaches its point of no return ([`finishing`]: a push about to
//! commit, a pull's output complete and verified, or an error being reported), a signal no
//! longer ends the process: the main thread's own outcome decides the exit status, so the
//! message never claims "nothing was committed" about a snapshot that was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::EXIT_FAILURE;

/// What the process is doing, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `location push`.
    Push,
    /// `location pull`.
    Pull,
}

struct State {
    op: Option<Operation>,
    /// Files to remove if a signal ends the process (a pull's temporary output).
    temps: Vec<PathBuf>,
    /// Past the point of no return: signals no longer end the process.
    finishing: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    op: None,
    temps: Vec::new(),
    finishing: false,
});

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes over SIGTERM, SIGINT and SIGHUP for `op`. Must run before any other thread is
/// started (the signals must be blocked in every thread for `sigwait` to receive them).
pub fn install(op: Operation) {
    state().op = Some(op);
    // SAFETY: plain libc calls on a local, initialised signal set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("kando-signals".to_string())
        .stack_size(128 * 1024)
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is initialised; `sig` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                return;
            }
            interrupted(sig);
        });
    if spawned.is_err() {
        // No thread to take them: let the signals act as they would have.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Removes `path` if a signal ends the process before [`unregister_temp`].
pub fn register_temp(path: &Path) {
    state().temps.push(path.to_path_buf());
}

/// Forgets a path given to [`register_temp`].
pub fn unregister_temp(path: &Path) {
    state().temps.retain(|p| p != path);
}

/// From now on a signal no longer ends the process (see the module comment). Blocks while
/// a signal is being handled, which ends the process.
pub fn finishing() {
    state().finishing = true;
}

fn signal_name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        n => format!("signal {n}"),
    }
}

fn interrupted(sig: libc::c_int) {
    // Held until the process exits: the main thread cannot start committing meanwhile.
    let state = state();
    if state.finishing {
        tracing::info!(
            "{} received while finishing; finishing first",
            signal_name(sig)
        );
        return;
    }
    let mut removed = false;
    for t in &state.temps {
        removed |= std::fs::remove_file(t).is_ok();
    }
    let what = match (state.op, removed) {
        (Some(Operation::Push), _) => "nothing was committed",
        (_, true) => "the partial output was removed",
        (_, false) => "the output is incomplete",
    };
    let _ = writeln!(
        std::io::stderr(),
        "Error: interrupted by {}; {what}",
        signal_name(sig)
    );
    std::process::exit(EXIT_FAILURE);
}
