//! `tokenkeep`: the command-line face of Tokenkeep, a thin adapter over `tokenkeep-core`.
//!
//! Each subcommand parses its arguments, calls core, and prints the result for people (or as JSON with `--json`).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a terminal tool: printing is its job

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokenkeep_core::profile::{self, Profile, ProfilePaths};

/// Program name recorded in logs.
const PROGRAM: &str = "tokenkeep";

/// Tokenkeep keeps your social accounts' OAuth tokens encrypted and fresh.
#[derive(Debug, Parser)]
#[command(name = "tokenkeep", version, about, propagate_version = true)]
struct Cli {
    /// Profile to use (default: `dev` for debug builds, `prod` for release builds).
    #[arg(long, global = true, env = profile::ENV_PROFILE, value_name = "NAME")]
    profile: Option<String>,
    /// Directory holding every profile's data (default: the platform's data directory).
    #[arg(long, global = true, env = profile::ENV_HOME, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show where this profile keeps its data.
    Paths {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tokenkeep: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let paths = ProfilePaths::resolve(Profile::resolve(cli.profile.as_deref())?, cli.home)?;
    tracing::debug!(program = PROGRAM, profile = %paths.profile(), "resolved profile");
    match cli.command {
        Command::Paths { json } => {
            if json {
                let value = serde_json::json!({
                    "profile": paths.profile().as_str(),
                    "dir": paths.dir(),
                    "store": paths.store_dir(),
                    "logs": paths.logs_dir(),
                    "config": paths.config_file(),
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("profile  {}", paths.profile());
                println!("data     {}", paths.dir().display());
                println!("store    {}", paths.store_dir().display());
                println!("logs     {}", paths.logs_dir().display());
                println!("config   {}", paths.config_file().display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
