//! The subcommands. Each prints its result itself: human text by default, exactly one JSON
//! document on stdout with `--json`.

mod check;
mod cp;
mod files;
mod fsck;
pub(crate) mod gc;
mod uploads;

use serde_json::Value;

use crate::error::{CliError, CliResult};
use crate::{Command, Context};
pub use gc::GcArgs;

/// Runs one subcommand.
pub async fn dispatch(ctx: &Context, command: Command) -> CliResult<()> {
    match command {
        Command::Ls {
            long,
            recursive,
            path,
        } => files::ls(ctx, &path, long, recursive).await,
        Command::Stat { path } => files::stat(ctx, &path).await,
        Command::Cat { path } => files::cat(ctx, &path).await,
        Command::Put { path, file } => files::put(ctx, &path, file.as_deref()).await,
        Command::Mv { src, dst } => files::mv(ctx, &src, &dst).await,
        Command::Rm { recursive, path } => files::rm(ctx, &path, recursive).await,
        Command::Url { method, path } => files::url(ctx, &path, method).await,
        Command::Walk { start_after, path } => {
            files::walk(ctx, &path, start_after.as_deref()).await
        }
        Command::Du { path } => files::du(ctx, &path).await,
        Command::Uploads { action } => uploads::run(ctx, action).await,
        Command::Cp {
            from,
            to,
            jobs,
            size_only,
            path,
        } => {
            let compare = if size_only {
                cp::Compare::SizeOnly
            } else {
                cp::Compare::Content
            };
            cp::run(ctx, &from, &to, &path, usize::from(jobs), compare).await
        }
        Command::Check { filter, no_bench } => {
            check::check(ctx, filter.as_deref(), !no_bench).await
        }
        Command::Bench {
            filter,
            iterations,
            include_1gib,
        } => check::bench(ctx, filter.as_deref(), iterations, include_1gib).await,
        Command::Gc(a) => gc::run(ctx, a.into_args()).await,
        Command::Fsck(a) => {
            let (root, options) = a.into_options();
            fsck::run(ctx, &root, options).await
        }
    }
}

/// Prints `doc` as the command's one JSON document.
pub(crate) fn print_json(doc: &Value) -> CliResult<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, doc)
        .map_err(|e| CliError::io("stdout", std::io::Error::other(e)))?;
    writeln!(out).map_err(|e| CliError::io("stdout", e))
}

/// Prints one line of human output, turning a closed stdout into an error the caller stops on.
pub(crate) fn print_line(line: impl std::fmt::Display) -> CliResult<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").map_err(|e| CliError::io("stdout", e))
}
