//! `tokenkeep`: the command-line face of Tokenkeep, a thin adapter over `tokenkeep-core`.
//!
//! Each subcommand reads its arguments (`args.rs`), runs one core operation (`tokenkeep_core::ops`) and prints the
//! result for people (tables, relative times: `render.rs`) or, with `--json`, as stable JSON (`output.rs`). Where
//! it runs is `backend.rs`'s choice: on the vault this process opens, or — while the app or `tokenkeep daemon`
//! holds the store — in that process, through its CLI socket. The output is the same either way.
//!
//! Errors go to stderr as one sentence saying what happened and what to do next; the exit status is 0 on
//! success, 1 on failure, 2 for a usage error, 3 when `verify` found damaged records, 130 when cancelled.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a terminal tool: printing is its job

/// `println!` for stdout that never panics: a reader that went away (`tokenkeep list | head -1`) ends the command
/// quietly, any other write error ends it with a message ([`output::stdout_failed`]).
macro_rules! outln {
    () => {
        $crate::output::write_stdout(::std::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(::std::format_args!("{}\n", ::std::format_args!($($arg)*)))
    };
}

/// `print!` for stdout that never panics (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(::std::format_args!($($arg)*))
    };
}

mod args;
mod backend;
mod commands;
mod output;
mod render;

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::store::PROGRAM_CLI;

use crate::args::Cli;
use crate::commands::{Cancelled, ChildExit, Damaged, EXIT_DAMAGED, NeedsYou};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) if error.is::<Cancelled>() => {
            eprintln!("tokenkeep: {error}");
            ExitCode::from(130)
        }
        // `exec`: the command's own status, and nothing more said.
        Err(error) if error.is::<ChildExit>() => {
            ExitCode::from(error.downcast_ref::<ChildExit>().map_or(1, |exit| exit.0))
        }
        // The summary is already printed: the status alone tells scripts.
        Err(error) if error.is::<NeedsYou>() => ExitCode::FAILURE,
        Err(error) if error.is::<Damaged>() => {
            eprintln!("tokenkeep: {error}");
            ExitCode::from(EXIT_DAMAGED)
        }
        Err(error) => {
            eprintln!("tokenkeep: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Settings resolved once from flags and environment.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) paths: ProfilePaths,
}

fn run(cli: Cli) -> Result<()> {
    let paths = ProfilePaths::resolve(Profile::resolve(cli.profile.as_deref())?, cli.home)?;
    paths.ensure()?;
    tokenkeep_core::logging::init(&tokenkeep_core::logging::LogConfig {
        dir: Some(&paths.logs_dir()),
        file_stem: PROGRAM_CLI,
        stderr: cli.verbose,
        default_filter: "info",
    })
    .with_context(|| format!("cannot open the log file in {}", paths.logs_dir().display()))?;
    commands::exec(&Context { paths }, cli.command)
}
