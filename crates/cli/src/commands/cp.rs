//! `cp --from CONFIG --to CONFIG [PATH]`: copy a tree between two backends (a migration from
//! filesystem to S3, say), resumably and verified.
//!
//! Resumable means idempotent: a file whose destination already holds the same content is
//! skipped, so a copy interrupted half-way is finished by running it again. "Same content" is
//! checked, not assumed from the size: a tag link is always 71 bytes whatever digest it names.
//! A blob (`…/blobs/sha256/<2 hex>/<64 hex>/data`) is checked by hashing the destination
//! against the digest in its path; any other file by comparing both sides byte for byte. Both
//! are streamed. [`Compare::SizeOnly`] (`--size-only`) is the old fast mode that trusts sizes.
//!
//! Every copied blob is hashed on the way through and committed only if it matches its digest,
//! so a corrupt source blob is reported instead of being spread; every copied file is checked
//! by stat'ing the destination after commit. Environment overrides
//! (`REGISTRY_STORAGE_*`) are not applied to either file: with two configurations it would be
//! ambiguous which one they are meant for.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use regstore_driver_api::{ByteStream, Driver, Error, FileInfo, WalkControl, WalkOptions};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::files::WRITE_CHUNK;
use super::{print_json, print_line};
use crate::backends;
use crate::config::StorageConfig;
use crate::error::{CliError, CliResult};
use crate::output::{human_bytes, stderr_is_tty, PROGRESS_THRESHOLD};
use crate::Context;

/// How an existing destination file is judged to be already copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// By content: blobs are hashed against the digest in their path, other files compared
    /// with the source byte for byte (reads every existing destination file once more).
    Content,
    /// By size only (`--size-only`): fast, but misses a moved tag link or a corrupt blob.
    SizeOnly,
}

impl Compare {
    fn name(self) -> &'static str {
        match self {
            Compare::Content => "content",
            Compare::SizeOnly => "size",
        }
    }
}

/// What happened to one file.
enum FileOutcome {
    /// Copied and verified; bytes copied, and whether a different destination file of the same
    /// size was replaced (only content comparison finds those).
    Copied(u64, bool),
    /// The destination already had the file (same content, or same size with `--size-only`).
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

/// Runs the copy, comparing existing destination files as `compare` says; exits 1 if any file
/// failed (after trying every file).
pub async fn run(
    ctx: &Context,
    from: &Path,
    to: &Path,
    path: &str,
    jobs: usize,
    compare: Compare,
) -> CliResult<()> {
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
                    copy_one(&src, &dst, &info, compare, &progress, stop).await
                };
                let done = done_files.fetch_add(1, Ordering::Relaxed) + 1;
                progress.set_message(format!("{done}/{n_files} files"));
                if !matches!(outcome, FileOutcome::Copied(..)) {
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
    let (mut interrupted, mut replaced) = (0u64, 0u64);
    let mut failures = Vec::new();
    for (path, outcome) in outcomes {
        match outcome {
            FileOutcome::Copied(n, replacing) => {
                copied += 1;
                bytes += n;
                replaced += u64::from(replacing);
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
            "compare": compare.name(),
            "files": n_files,
            "copied": copied,
            "replaced": replaced,
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
            "cp {path}: {n_files} files: {copied} copied ({}{}), {skipped} already present \
             (same {}), {vanished} vanished, {} failed{} in {secs:.1}s ({} -> {})",
            human_bytes(bytes),
            if replaced > 0 {
                format!(", {replaced} replacing a different file of the same size")
            } else {
                String::new()
            },
            compare.name(),
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

/// Copies one file unless the destination already has it (as `compare` judges).
async fn copy_one(
    src: &Driver,
    dst: &Driver,
    info: &FileInfo,
    compare: Compare,
    progress: &indicatif::ProgressBar,
    stop: Stop,
) -> FileOutcome {
    let path = info.path.as_str();
    let digest = blob_digest(path);
    let mut replacing = false;
    match dst.stat(path).await {
        Ok(d) if d.is_dir => {
            return FileOutcome::Failed(format!(
                "{path}: is a directory on the destination ({})",
                dst.name()
            ))
        }
        Ok(d) if d.size == info.size => {
            let same = match (compare, digest) {
                (Compare::SizeOnly, _) => Ok(true),
                (Compare::Content, Some(want)) => hash_of(dst, path).await.map(|h| h == want),
                (Compare::Content, None) => same_content(src, dst, path).await,
            };
            match same {
                Ok(true) => return FileOutcome::Skipped,
                Ok(false) => replacing = true,
                Err(e) if e.is_not_found() && e.driver() == Some(src.name()) => {
                    return FileOutcome::Vanished
                }
                Err(e) => return FileOutcome::Failed(format!("{path}: comparing: {e}")),
            }
        }
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return FileOutcome::Failed(e.to_string()),
    }
    match stream_copy(src, dst, path, digest.as_ref(), progress, stop.clone()).await {
        Err(_) if *stop.borrow() => FileOutcome::Interrupted,
        Ok(n) if n != info.size => FileOutcome::Failed(format!(
            "{path}: read {n} bytes from {} but the walk reported {}; \
             the source changed during the copy",
            src.name(),
            info.size
        )),
        Ok(n) => match dst.stat(path).await {
            Ok(d) if !d.is_dir && d.size == n => FileOutcome::Copied(n, replacing),
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

/// A SHA-256 digest as raw bytes.
type Sha256Digest = [u8; 32];

/// The digest a distribution blob path names (`…/blobs/sha256/<2 hex>/<64 hex>/data`, the two
/// hex being the digest's first two), or `None` for any other path. Only lowercase hex counts,
/// as distribution writes it; anything else is compared as an ordinary file.
fn blob_digest(path: &str) -> Option<Sha256Digest> {
    let mut tail = path.rsplit('/');
    let (data, hex, prefix, algo, blobs) = (
        tail.next()?,
        tail.next()?,
        tail.next()?,
        tail.next()?,
        tail.next()?,
    );
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if data != "data"
        || algo != "sha256"
        || blobs != "blobs"
        || hex.len() != 64
        || !lower_hex(hex)
        || prefix != &hex[..2]
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// SHA-256 of the object at `path` on `driver`, streamed.
async fn hash_of(driver: &Driver, path: &str) -> Result<Sha256Digest, Error> {
    let mut stream = driver.reader(path, 0).await?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(chunk?);
    }
    Ok(hasher.finalize().into())
}

/// Whether `path` holds the same bytes on both drivers, streaming both and stopping at the
/// first difference; memory is bounded by one chunk of each stream.
async fn same_content(src: &Driver, dst: &Driver, path: &str) -> Result<bool, Error> {
    let (mut a, mut b) = (src.reader(path, 0).await?, dst.reader(path, 0).await?);
    let (mut x, mut y) = (Bytes::new(), Bytes::new());
    loop {
        if x.is_empty() {
            match next_non_empty(&mut a).await? {
                Some(c) => x = c,
                // `a` has ended: equal only if `b` has nothing left either.
                None => return Ok(y.is_empty() && next_non_empty(&mut b).await?.is_none()),
            }
        }
        if y.is_empty() {
            match next_non_empty(&mut b).await? {
                Some(c) => y = c,
                None => return Ok(false),
            }
        }
        let n = x.len().min(y.len());
        if x[..n] != y[..n] {
            return Ok(false);
        }
        x.advance(n);
        y.advance(n);
    }
}

/// The next non-empty chunk of `stream`, or `None` at its end.
async fn next_non_empty(stream: &mut ByteStream) -> Result<Option<Bytes>, Error> {
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if !chunk.is_empty() {
            return Ok(Some(chunk));
        }
    }
    Ok(None)
}

/// Streams `path` from `src` into a new upload on `dst` and commits it; cancels on failure.
/// With `digest` (a blob) the bytes are hashed on the way and the upload is committed only if
/// they match it, so a corrupt source is reported rather than copied.
async fn stream_copy(
    src: &Driver,
    dst: &Driver,
    path: &str,
    digest: Option<&Sha256Digest>,
    progress: &indicatif::ProgressBar,
    mut stop: Stop,
) -> Result<u64, Error> {
    let mut stream = src.reader(path, 0).await?;
    let mut writer = dst.writer(path, false).await?;
    let copy = async {
        let mut n = 0u64;
        let mut hasher = digest.map(|_| Sha256::new());
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            while !chunk.is_empty() {
                let piece = chunk.split_to(chunk.len().min(WRITE_CHUNK));
                let len = piece.len() as u64;
                writer.write(piece).await?;
                n += len;
                progress.inc(len);
            }
        }
        if let (Some(h), Some(want)) = (hasher, digest) {
            let got: Sha256Digest = h.finalize().into();
            if &got != want {
                return Err(Error::backend(
                    src.name(),
                    Some(path),
                    format!(
                        "source content hashes to sha256:{}, not the digest in its path; \
                         the source blob is corrupt and was not copied",
                        hex::encode(got)
                    ),
                ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_digest_accepts_only_distribution_blob_paths() {
        let d = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let ok = format!("/docker/registry/v2/blobs/sha256/9f/{d}/data");
        assert_eq!(blob_digest(&ok).map(hex::encode).as_deref(), Some(d));
        for bad in [
            format!("/docker/registry/v2/blobs/sha256/00/{d}/data"),
            format!(
                "/docker/registry/v2/blobs/sha256/9F/{}/data",
                d.to_uppercase()
            ),
            format!("/docker/registry/v2/blobs/sha512/9f/{d}/data"),
            format!("/docker/registry/v2/blobs/sha256/9f/{d}/link"),
            format!("/docker/registry/v2/blobs/sha256/9f/{}/data", &d[1..]),
            format!("/docker/registry/v2/repositories/r/_layers/sha256/{d}/link"),
            "/data".to_owned(),
        ] {
            assert_eq!(blob_digest(&bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn same_content_compares_across_chunk_boundaries() {
        use regstore_driver_inmemory::InMemoryDriver;
        let a = Driver::new(Arc::new(InMemoryDriver::new()));
        let b = Driver::new(Arc::new(InMemoryDriver::new()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        a.put_content("/f", data.clone()).await.unwrap();
        // Written in uneven pieces so the two readers' chunks do not line up.
        let mut w = b.writer("/f", false).await.unwrap();
        for piece in data.chunks(7_777) {
            w.write(piece.to_vec()).await.unwrap();
        }
        w.commit().await.unwrap();
        assert!(same_content(&a, &b, "/f").await.unwrap());
        let mut longer = data.clone();
        longer.push(0);
        b.put_content("/f", longer).await.unwrap();
        assert!(!same_content(&a, &b, "/f").await.unwrap());
        assert!(!same_content(&b, &a, "/f").await.unwrap());
        let mut flipped = data;
        flipped[299_999] ^= 1;
        b.put_content("/f", flipped).await.unwrap();
        assert!(!same_content(&a, &b, "/f").await.unwrap());
    }
}
