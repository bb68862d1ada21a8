//! The command-line edge: argument parsing, logging, exit codes, and wiring the kando
//! compatibility layer to the commands. Exit status is 0 or 69, as upstream's.

mod args;
mod open;
mod password;
mod progress;
mod run;
mod s3;

use std::io::Write;

use clap::Parser;

pub use args::{Cli, Command, Endpoint, LocationCommand, RepoCommand};
pub use open::{open_storage, repository_root};

/// Exit status of every failure, as upstream kando (since 0.114).
pub const EXIT_FAILURE: i32 = 69;

/// Runs kando with the process's arguments and returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            // Help is not a failure; argument mistakes print clap's message and usage.
            let ok = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            let _ = e.print();
            return if ok { 0 } else { EXIT_FAILURE };
        }
    };
    init_logging(&cli.verbosity);
    match run::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // One line for the error, then its causes on the same line: pod logs stay readable.
            let mut msg = format!("Error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            let _ = writeln!(std::io::stderr(), "{}", msg.replace('\n', " "));
            EXIT_FAILURE
        }
    }
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
