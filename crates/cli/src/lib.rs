//! `regstore`: inspect, copy, repair and check a container registry's storage from the same
//! `config.yml` the registry uses.
//!
//! The binary is a thin shell over this library: [`Cli`] is the command line, [`run`] executes
//! it and returns the process exit code (see [`error`] for the code table). Every command goes
//! through the driver-api [`regstore_driver_api::Driver`] handle, so it behaves identically on
//! every backend, and every error names the driver, the path or the configuration key.
//!
//! ```
//! use clap::Parser;
//! use regstore_cli::{run, Cli};
//!
//! # #[tokio::main]
//! # async fn main() {
//! let dir = tempfile::tempdir().unwrap();
//! let config = dir.path().join("config.yml");
//! let yaml = format!("storage:\n  filesystem:\n    rootdirectory: {}\n", dir.path().join("data").display());
//! std::fs::write(&config, yaml).unwrap();
//! // What `regstore --config config.yml --json ls /` does; 0 is success.
//! let cli = Cli::try_parse_from(["regstore", "--config", config.to_str().unwrap(), "--json", "ls", "/"]).unwrap();
//! assert_eq!(run(cli).await, 0);
//! # }
//! ```

#![warn(missing_docs)]

pub mod backends;
pub mod commands;
pub mod config;
pub mod error;
pub mod gc_args;
pub mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use regstore_driver_api::duration::{parse_duration_with, Syntax};

use crate::config::{process_env, StorageConfig};
use crate::error::{CliError, CliResult, EXIT_OK};

/// The `regstore` command line.
#[derive(Debug, Parser)]
#[command(
    name = "regstore",
    version,
    about = "Inspect, copy and check container-registry storage (filesystem, S3, …) from its config.yml",
    long_about = "Inspect, copy and check container-registry storage from the registry's own \
                  config.yml (storage: and middleware: storage: sections).\n\n\
                  Without --config or $REGSTORE_CONFIG the embedded filesystem backend is used, \
                  rooted at $REGSTORE_DATA_DIR, $XDG_DATA_HOME/regstore or ~/.local/share/regstore.\n\
                  REGISTRY_STORAGE=<backend> and REGISTRY_STORAGE_<BACKEND>_<PARAM>=value override \
                  the file as they do for the registry.\n\n\
                  Exit codes: 0 ok, 1 backend failure, 2 invalid input or configuration \
                  (including operations a backend does not support), 3 not found."
)]
pub struct Cli {
    /// Registry configuration file (default: $REGSTORE_CONFIG, else the embedded default).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print one JSON document per command instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// HTTP method a redirect URL is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Method {
    /// A `GET` (download).
    Get,
    /// A `HEAD` (metadata only).
    Head,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a directory (or show a file).
    Ls {
        /// Show type, size and modification time of each entry.
        #[arg(short = 'l')]
        long: bool,
        /// List everything below the directory.
        #[arg(short = 'R')]
        recursive: bool,
        /// Storage path, e.g. /docker/registry/v2.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Show type, size and modification time of a path.
    Stat {
        /// Storage path.
        path: String,
    },
    /// Write an object's bytes to stdout.
    Cat {
        /// Storage path of the object.
        path: String,
    },
    /// Store a local file (or stdin) at a path, streaming it through the backend's writer.
    Put {
        /// Storage path of the object to create or replace.
        path: String,
        /// Local file to read; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
    /// Move an object (the destination is replaced).
    Mv {
        /// Source path.
        src: String,
        /// Destination path.
        dst: String,
    },
    /// Delete an object, or with -r a directory and everything below it.
    Rm {
        /// Delete directories recursively.
        #[arg(short = 'r')]
        recursive: bool,
        /// Storage path.
        path: String,
    },
    /// Print the redirect URL a registry would send a client for an object (through the
    /// configured middleware chain), or say that there is none.
    Url {
        /// The client request's method.
        #[arg(long, value_enum, default_value = "GET")]
        method: Method,
        /// Storage path of the object.
        path: String,
    },
    /// Walk every file and directory below a path, depth first.
    Walk {
        /// Resume after this path (in walk order), as a paginated catalog would.
        #[arg(long, value_name = "PATH")]
        start_after: Option<String>,
        /// Storage path to walk.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Total size and file count below a path.
    Du {
        /// Storage path.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Incomplete multipart uploads (S3 only): they are invisible and cost storage.
    Uploads {
        /// What to do with them.
        #[command(subcommand)]
        action: UploadsAction,
    },
    /// Copy a tree from one backend to another (resumable: files the destination already
    /// holds with the same content are skipped; blobs are checked against their digest).
    Cp {
        /// Configuration of the source backend.
        #[arg(long, value_name = "CONFIG")]
        from: PathBuf,
        /// Configuration of the destination backend.
        #[arg(long, value_name = "CONFIG")]
        to: PathBuf,
        /// Copies running at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Skip a destination file that has the source's size without reading it: fast, but a
        /// moved tag link or a corrupt blob of the right size is not copied again.
        #[arg(long)]
        size_only: bool,
        /// Tree to copy.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Run the conformance suite and a short throughput measurement against the configured
    /// backend, under a scratch prefix that is removed afterwards.
    Check {
        /// Run only cases whose name contains this text.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// Skip the throughput measurement.
        #[arg(long)]
        no_bench: bool,
    },
    /// Run the benchmark set against the configured backend under a scratch prefix.
    Bench {
        /// Run only benchmarks whose name contains this text.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// Repetitions of each operation.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        iterations: u32,
        /// Also run the 1 GiB benchmarks (put_get_1gib holds 1 GiB in memory).
        #[arg(long)]
        include_1gib: bool,
    },
    /// Garbage-collect distribution's layout (registry garbage-collect, safe while the
    /// registry runs); see docs/gc.md.
    Gc(gc_args::Gc),
    /// Check distribution's layout for corrupt blobs, dangling links and tags, broken
    /// manifests and stale uploads; exit 1 when anything is wrong.
    Fsck(gc_args::Fsck),
}

/// `uploads` subcommands.
#[derive(Debug, Subcommand)]
pub enum UploadsAction {
    /// List incomplete multipart uploads at or below a path: path, upload id, start time, age.
    Ls {
        /// Only uploads started longer ago than this (e.g. 90m, 1.5h, 7d, 2w; a bare number is seconds).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
        older_than: Option<std::time::Duration>,
        /// Storage path: the upload of this path and every upload below it.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Abort incomplete multipart uploads at or below a path: those older than --older-than,
    /// or with --all every one (a running registry's open pushes would fail).
    Abort {
        /// Only uploads started longer ago than this (e.g. 90m, 1.5h, 7d, 2w; a bare number is seconds).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, conflicts_with = "all")]
        older_than: Option<std::time::Duration>,
        /// Abort every upload at or below the path, however recent.
        #[arg(long)]
        all: bool,
        /// Storage path: the upload of this path and every upload below it.
        #[arg(default_value = "/")]
        path: String,
    },
}

/// The syntax of `--older-than`: Go's, plus `d`/`w` and bare seconds (`90`), because an
/// operator's flag is never part of a configuration shared with a Go registry (see
/// `regstore_driver_api::duration` for which parameter accepts what).
const DURATION_FLAG_SYNTAX: Syntax = Syntax::GO.with_days_and_weeks().with_bare_seconds();

/// A duration flag; clap names the flag and the value in its error around ours.
pub(crate) fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_with(s.trim(), DURATION_FLAG_SYNTAX).map_err(|e| e.to_string())
}

/// What every command gets: how to print and which configuration applies.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--json` was given.
    pub json: bool,
    /// `--config` as given (the file is loaded lazily: `cp` does not use it).
    pub config_path: Option<PathBuf>,
    /// The process environment snapshot.
    pub env: config::Env,
}

impl Context {
    /// Loads the main configuration (file, `$REGSTORE_CONFIG` or the embedded default).
    pub fn storage_config(&self) -> CliResult<StorageConfig> {
        StorageConfig::load(self.config_path.as_deref(), &self.env)
    }
}

/// Runs a parsed command line and returns the exit code; errors are printed to stderr as one
/// line (`regstore: <message>`), or as `{"error": …, "exit_code": …}` on stdout with `--json`.
pub async fn run(cli: Cli) -> i32 {
    let ctx = Context {
        json: cli.json,
        config_path: cli.config,
        env: process_env(),
    };
    match commands::dispatch(&ctx, cli.command).await {
        Ok(()) => EXIT_OK,
        Err(e) if e.is_broken_pipe() => EXIT_OK,
        Err(e) => report_error(&ctx, &e),
    }
}

fn report_error(ctx: &Context, e: &CliError) -> i32 {
    let code = e.exit_code();
    let message = e.to_string().replace('\n', "; ");
    let message = message.trim_end_matches("; ");
    // A `Failed` command has already printed its result document; a second one would break
    // "one JSON document per command".
    if ctx.json && !matches!(e, CliError::Failed(_)) {
        println!(
            "{}",
            serde_json::json!({"error": message, "exit_code": code})
        );
    }
    eprintln!("regstore: {message}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn duration_flags_take_go_syntax_days_weeks_and_bare_seconds() {
        for (raw, secs) in [
            ("90", 90.0),
            ("15m", 900.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("500ms", 0.5),
            ("7d", 604_800.0),
            ("2w", 1_209_600.0),
            (" 24h ", 86_400.0),
        ] {
            assert_eq!(
                parse_duration_arg(raw),
                Ok(Duration::from_secs_f64(secs)),
                "{raw}"
            );
        }
        for bad in ["", "h", "5x", "10m5", "-1h", "1e3s", "7 d"] {
            let e = parse_duration_arg(bad).expect_err(bad);
            assert!(e.contains(&format!("{:?}", bad.trim())), "{e}");
        }
    }

    #[test]
    fn a_bad_duration_flag_names_the_flag_and_the_value() {
        let e = Cli::try_parse_from(["regstore", "uploads", "ls", "--older-than", "5x"])
            .expect_err("5x is no duration");
        let text = e.to_string();
        assert!(
            text.contains("--older-than") && text.contains("5x"),
            "{text}"
        );
    }
}
