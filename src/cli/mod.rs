//! The command-line edge: argument parsing, logging, exit codes, and wiring the kando
//! compatibility layer to the commands. Exit status is 0 or 69, as upstream's.

mod args;
mod azure;
mod gcs;
mod location_cmds;
mod open;
mod password;
mod progress;
mod repo_cmds;
mod run;
mod s3;
mod signals;
mod stdio;
mod summary;
mod target;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

pub use args::{Cli, Command, Endpoint, LocationCommand, RepoCommand};
pub use open::{open_storage, repository_root};

/// Exit status of every failure, as upstream kando (since 0.114).
pub const EXIT_FAILURE: i32 = 69;

/// True when the process started with file descriptor 1 closed (`>&-`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Records whether standard output was closed when the process started. The Rust runtime
/// opens /dev/null on a closed stdin, stdout or stderr before `main` (so a file kando opens
/// never becomes one of them), which would let `pull -` or push's output line vanish into
/// it with exit 0; so the binary calls this from an `.init_array` constructor, before the
/// runtime starts (src/main.rs).
pub fn record_inherited_stdio() {
    // SAFETY: fcntl on a plain integer, touching nothing else.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether standard output was closed when kando started (it is /dev/null now).
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Runs kando with the process's arguments and returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                // Help is not a failure.
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                // A bad value of a flag or environment variable: one line, like every
                // runtime failure (the value is the mistake, not the command's shape).
                ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
                    let _ = writeln!(std::io::stderr(), "Error: {}", one_line(&e));
                    EXIT_FAILURE
                }
                // Other argument mistakes print clap's message and usage.
                _ => {
                    let _ = e.print();
                    EXIT_FAILURE
                }
            };
        }
    };
    init_logging(&cli.verbosity);
    // Before any other thread starts (see signals.rs).
    match &cli.command {
        Some(Command::Location {
            command: Some(LocationCommand::Push { .. }),
            ..
        }) => signals::install(signals::Operation::Push),
        Some(Command::Location {
            command: Some(LocationCommand::Pull { .. }),
            ..
        }) => signals::install(signals::Operation::Pull),
        _ => {}
    }
    match run::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // A signal arriving now must not add a second error line.
            signals::finishing();
            // One line for the error, then its causes on the same line: pod logs stay readable.
            // A cause whose text the line already holds (errors that print their source,
            // as storage errors do) is not repeated.
            let mut msg = format!("Error: {e}");
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !msg.contains(&cause) {
                    msg.push_str(&format!(": {cause}"));
                }
            }
            let _ = writeln!(std::io::stderr(), "{}", msg.replace('\n', " "));
            EXIT_FAILURE
        }
    }
}

/// A clap error's message on one line, without its "error: " and "For more information"
/// decoration (a value with a newline in it, or the list of possible values, would
/// otherwise spread it over several).
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text
        .rsplit_once("\n\nFor more information")
        .map_or(text.as_str(), |(message, _)| message);
    let text = text.trim().strip_prefix("error: ").unwrap_or(text.trim());
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn init_logging(level: &str) {
    let level = match level.to_ascii_lowercase().as_str() {
        "debug" | "trace" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "error" | "fatal" | "panic" => tracing::Level::ERROR,
        _ => tracing::Level::WARN,
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("kando", level)
        // Dependencies (the AWS SDK above all) are noisy below warn.
        .with_default(if level == tracing::Level::ERROR {
            level
        } else {
            tracing::Level::WARN
        });
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Pod logs are files: colour codes there are noise.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .with(filter)
        .init();
}
