//! Dispatch: which command runs, with which of its arguments. The commands themselves are
//! in `location_cmds.rs` and `repo_cmds.rs`.

use anyhow::{bail, Result};

use super::args::{Cli, Command, LocationCommand};
use super::location_cmds;
use super::progress::ProgressConfig;
use super::repo_cmds;
use super::stdio::{print_stdout, Source};
use super::summary::version_line;
use crate::compat::output::phase_output_line;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if cli.version {
        return print_stdout(&version_line());
    }
    let progress = ProgressConfig {
        quiet: cli.quiet,
        interval: std::time::Duration::from_secs_f64(cli.progress_interval),
    };
    let Some(command) = cli.command else {
        return print_help(&[]);
    };
    match command {
        Command::Output { key, value } => print_stdout(&phase_output_line(&key, &value)?),
        Command::Location { location, command } => match command {
            None => print_help(&["location"]),
            Some(LocationCommand::Push {
                source,
                from_command,
                output_name,
                tuning,
            }) => {
                let source = match (source, from_command) {
                    (_, Some(cmd)) => Source::Command(cmd),
                    (Some(s), None) => Source::Path(s),
                    (None, None) => bail!("push needs a source (`-` or a file) or --from-command"),
                };
                location_cmds::push(source, &location, &output_name, &tuning, progress)
            }
            Some(LocationCommand::Pull {
                target,
                kopia_snapshot,
                reads,
            }) => location_cmds::pull(
                &target,
                &location,
                kopia_snapshot.as_deref(),
                reads,
                progress,
            ),
            Some(LocationCommand::Delete {
                extra: _,
                kopia_snapshot,
            }) => location_cmds::delete(&location, kopia_snapshot.as_deref()),
        },
        Command::Repo { command } => repo_cmds::run(command, progress),
    }
}

/// Help of the command at `path` (`kando location` alone prints its help, as upstream).
fn print_help(path: &[&str]) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for name in path {
        cmd = cmd
            .find_subcommand(name)
            .expect("a known subcommand")
            .clone();
    }
    cmd.print_help()?;
    Ok(())
}
