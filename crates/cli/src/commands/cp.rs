//! `cp --from CONFIG --to CONFIG [PATH]`: copy a tree between two backends (a migration from
//! filesystem to S3, say), resumably and verified.
//!
//! Resumable means idempotent: a file whose destination already exists with the source's size
//! is skipped, so a copy interrupted half-way is finished by running it again. Every copied
//! file is checked by stat'ing the destination after commit. Environment overrides
//! (`REGISTRY_STORAGE_*`) are not applied to either file: with two configurations it would be
//! ambiguous which one they are meant for.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use regstore_driver_api::{Driver, Error, FileInfo, WalkControl, WalkOptions};
use serde_json::json;

use super::files::WRITE_CHUNK;
use super::{print_json, print_line};
use crate::backends;
use crate::config::StorageConfig;
use crate::error::{CliError, CliResult};
use crate::output::{human_bytes, stderr_is_tty, PROGRESS_THRESHOLD};
use crate::Context;

/// What happened to one file.
enum FileOutcome {
    /// Copied and verified; bytes copied.
    Copied(u64),
    /// The destination already had a file of the same size.
    Skipped,
    /// The source disappeared between the walk and the copy (a registry in use deletes).
    Vanished,
    /// Copying failed; the message names the path.
    Failed(String),
    /// Ctrl-C came before or during the copy; the destination upload was cancelled.
    Interrupted,
}

/// Becomes `true` on Ctrl-C; copies check it before starting and race it while streaming.
type Stop = tokio::sync::watch::Receiver<bool>;

/// Runs the copy; exits 1 if any file failed (after trying every file).
pub async fn run(ctx: &Context, from: &Path, to: &Path, path: &str, jobs: usize) -> CliResult<()> {
    let from_cfg = StorageConfig::from_file(from)?;
    let to_cfg = StorageConfig::from_file(to)?;
    let src = backends::open_backend(&from_cfg).await?;
    let dst = backends::open_backend(&to_cfg).await?;
    let started = Instant::now();

    let files = source_files(&src, path).await?;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let progress = if stderr_is_tty() && total_bytes > PROGRESS_THRESHOLD {
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total_bytes),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let done_files = Arc::new(AtomicU64::new(0));
    let n_files = files.len() as u64;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });

    let outcomes: Vec<(String, FileOutcome)> = futures::stream::iter(files)
        .map(|info| {
            let (src, dst, progress, done_files, stop) = (
                src.clone(),
                dst.clone(),
                progress.clone(),
                done_files.clone(),
                stop.clone(),
            );
            async move {
                let path = info.path.to_string();
                let outcome = if *stop.borrow() {
                    FileOutcome::Interrupted
                } else {
                    copy_one(&src, &dst, &info, &progress, stop).await
                };
                let done = done_files.fetch_add(1, Ordering::Relaxed) + 1;
                progress.set_message(format!("{done}/{n_files} files"));
                if !matches!(outcome, FileOutcome::Copied(_)) {
                    progress.inc(info.size);
                }
                (path, outcome)
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    ctrl_c.abort();
    progress.finish_and_clear();

    let (mut copied, mut skipped, mut vanished, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut interrupted = 0u64;
    let mut failures = Vec::new();
    for (path, outcome) in outcomes {
        match outcome {
            FileOutcome::Copied(n) => {
                copied += 1;
                bytes += n;
            }
            FileOutcome::Skipped => skipped += 1,
            FileOutcome::Vanished => vanished += 1,
            FileOutcome::Failed(msg) => failures.push((path, msg)),
            FileOutcome::Interrupted => interrupted += 1,
        }
    }
    failures.sort();
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        print_json(&json!({
            "from": from_cfg.origin,
            "to": to_cfg.origin,
            "path": path,
            "files": n_files,
            "copied": copied,
            "skipped": skipped,
            "vanished": vanished,
            "failed": failures.len(),
            "interrupted": interrupted,
            "bytes_copied": bytes,
            "seconds": secs,
            "errors": failures.iter().map(|(_, m)| m).collect::<Vec<_>>(),
        }))?;
    } else {
        for (_, msg) in &failures {
            eprintln!("regstore: cp: {msg}");
        }
        print_line(format!(
            "cp {path}: {n_files} files: {copied} copied ({}), {skipped} already present, \
             {vanished} vanished, {} failed{} in {secs:.1}s ({} -> {})",
            human_bytes(bytes),
            failures.len(),
            if interrupted > 0 {
                format!(", {interrupted} not copied (interrupted)")
            } else {
                String::new()
            },
            src.name(),
            dst.name(),
        ))?;
    }
    if interrupted > 0 {
        return Err(CliError::Failed(format!(
            "cp: interrupted with {interrupted} of {n_files} files not copied \
             (run the same command again to resume)"
        )));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "cp: {} of {n_files} files failed (run the same command again to retry them)",
            failures.len()
        )))
    }
}

/// Every file below `path` (or `path` itself if it is a file), in walk order.
async fn source_files(src: &Driver, path: &str) -> CliResult<Vec<FileInfo>> {
    if path != "/" {
        let info = src.stat(path).await?;
        if !info.is_dir {
            return Ok(vec![info]);
        }
    }
    let mut files = Vec::new();
    src.walk(path, &WalkOptions::default(), |info| {
        if !info.is_dir {
            files.push(info.clone());
        }
        Ok(WalkControl::Continue)
    })
    .await?;
    Ok(files)
}

async fn copy_one(
    src: &Driver,
    dst: &Driver,
    info: &FileInfo,
    progress: &indicatif::ProgressBar,
    stop: Stop,
) -> FileOutcome {
    let path = info.path.as_str();
    match dst.stat(path).await {
        Ok(d) if !d.is_dir && d.size == info.size => return FileOutcome::Skipped,
        Ok(d) if d.is_dir => {
            return FileOutcome::Failed(format!(
                "{path}: is a directory on the destination ({})",
                dst.name()
            ))
        }
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return FileOutcome::Failed(e.to_string()),
    }
    match stream_copy(src, dst, path, progress, stop.clone()).await {
        Err(_) if *stop.borrow() => FileOutcome::Interrupted,
        Ok(n) if n != info.size => FileOutcome::Failed(format!(
            "{path}: read {n} bytes from {} but the walk reported {}; \
             the source changed during the copy",
            src.name(),
            info.size
        )),
        Ok(n) => match dst.stat(path).await {
            Ok(d) if !d.is_dir && d.size == n => FileOutcome::Copied(n),
            Ok(d) => FileOutcome::Failed(format!(
                "{path}: verification failed: {} has {} bytes after commit, expected {n}",
                dst.name(),
                d.size
            )),
            Err(e) => FileOutcome::Failed(format!("{path}: verification failed: {e}")),
        },
        Err(e) if e.is_not_found() && e.driver() == Some(src.name()) => FileOutcome::Vanished,
        Err(e) => FileOutcome::Failed(e.to_string()),
    }
}

/// Streams `path` from `src` into a new upload on `dst` and commits it; cancels on failure.
async fn stream_copy(
    src: &Driver,
    dst: &Driver,
    path: &str,
    progress: &indicatif::ProgressBar,
    mut stop: Stop,
) -> Result<u64, Error> {
    let mut stream = src.reader(path, 0).await?;
    let mut writer = dst.writer(path, false).await?;
    let copy = async {
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk?;
            while !chunk.is_empty() {
                let piece = chunk.split_to(chunk.len().min(WRITE_CHUNK));
                let len = piece.len() as u64;
                writer.write(piece).await?;
                n += len;
                progress.inc(len);
            }
        }
        writer.commit().await?;
        Ok(n)
    };
    let result = tokio::select! {
        r = copy => r,
        _ = stop.wait_for(|s| *s) => Err(Error::backend(
            dst.name(),
            Some(path),
            "interrupted; the upload was cancelled",
        )),
    };
    if result.is_err() {
        if let Err(e) = writer.cancel().await {
            tracing::warn!(path, error = %e, "cancelling a failed copy failed too");
        }
    }
    result
}
