//! The resumed-upload scenario (issue 12): what a registry's chunked blob upload costs when the
//! client pauses and resumes, against the same bytes written by one writer.
//!
//! - `upload-fresh`: one writer writes [`TOTAL`] bytes in [`WRITE`]-byte writes and commits.
//! - `upload-resumed`: a fresh writer writes [`CLOSED`] bytes and `close`s (its last part is
//!   shorter than the 10 MiB default `chunksize`), then a writer opened with `append` writes
//!   the other [`TOTAL`] − [`CLOSED`] bytes and commits. Both writers are in the timed phase.
//!
//! Both use regstore's S3 driver at the run's `chunksize` (the default 10 MiB). Every attempt
//! has a time limit so that a writer that re-uploads its parts on every call fails the run
//! with a clear message instead of hanging it. Each attempt writes bytes of its own (the seed
//! depends on the key prefix), so a deduplicating server cannot favour the one that runs
//! second; the verifying attempt reads the object back and compares its SHA-256 with the
//! generator's.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use futures::StreamExt;
use regstore_driver_api::{StorageDriver, StoragePath};
use regstore_driver_s3::S3Driver;

use crate::child::{diff, Phase, Start};
use crate::data;

const MIB: u64 = 1024 * 1024;
/// Size of each `write` call, as a registry gets a blob's body from the network.
pub const WRITE: usize = 32 * 1024;
/// Bytes written before the `close`: less than a 10 MiB part, so the closed upload ends on a
/// short part that the resumed writer must build on.
pub const CLOSED: u64 = 7 * MIB;
/// Bytes of the whole object.
pub const TOTAL: u64 = 27 * MIB;

/// The payload of one attempt: [`TOTAL`] bytes as [`WRITE`]-byte pieces of a generator seeded
/// per attempt.
struct Payload {
    seed: u64,
}

impl Payload {
    fn pieces(&self, from: u64, to: u64) -> impl Iterator<Item = Bytes> + '_ {
        let w = WRITE as u64;
        (from / w..to.div_ceil(w)).map(move |i| {
            let len = (to - i * w).min(w) as usize;
            data::piece(self.seed, i, len)
        })
    }

    fn sha256(&self) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for p in self.pieces(0, TOTAL) {
            ctx.update(&p);
        }
        ctx.finish().as_ref().to_vec()
    }
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> anyhow::Error {
    move |e| anyhow!("{what}: {e}")
}

/// Writes `from..to` of the payload through `w`.
async fn write_range(
    w: &mut Box<dyn regstore_driver_api::FileWriter>,
    payload: &Payload,
    from: u64,
    to: u64,
) -> Result<()> {
    for piece in payload.pieces(from, to) {
        w.write(piece).await.map_err(err("write"))?;
    }
    Ok(())
}

/// The upload of one variant, untimed.
async fn upload(d: &S3Driver, path: &StoragePath, payload: &Payload, resumed: bool) -> Result<()> {
    let mut w = d.writer(path, false).await.map_err(err("writer"))?;
    if resumed {
        write_range(&mut w, payload, 0, CLOSED).await?;
        w.close().await.map_err(err("close"))?;
        w = d.writer(path, true).await.map_err(err("writer (append)"))?;
        if w.size() != CLOSED {
            bail!(
                "resumed writer reports {} bytes, {CLOSED} were closed",
                w.size()
            );
        }
        write_range(&mut w, payload, CLOSED, TOTAL).await?;
    } else {
        write_range(&mut w, payload, 0, TOTAL).await?;
    }
    w.commit().await.map_err(err("commit"))
}

/// Runs `upload-fresh` or `upload-resumed` under `prefix`: the timed upload (at most
/// `timeout`), then, with `verify`, a SHA-256 comparison of the stored object.
pub async fn run(
    d: &S3Driver,
    scenario: &str,
    prefix: &str,
    base_seed: u64,
    timeout: Duration,
    verify: bool,
) -> Result<Phase> {
    let resumed = match scenario {
        "upload-fresh" => false,
        "upload-resumed" => true,
        other => bail!("unknown upload scenario {other}"),
    };
    let path = StoragePath::parse(&format!("/{prefix}/upload"))
        .ok_or_else(|| anyhow!("invalid storage path under {prefix}"))?;
    let payload = Payload {
        seed: data::seed_for(base_seed, prefix),
    };
    let stats = d.request_stats();
    let before = stats.snapshot();
    let t = Start::now();
    match tokio::time::timeout(timeout, upload(d, &path, &payload, resumed)).await {
        Ok(r) => r?,
        Err(_) => {
            // Do not leave the unfinished multipart upload on the server.
            let _ = d.abort_uploads_under_root().await;
            bail!(
                "{scenario}: not done after {} s (time limit of one attempt); requests so far: {:?}",
                timeout.as_secs(),
                diff(&stats.snapshot(), &before)
            );
        }
    }
    let phase = t.finish(scenario, TOTAL, 1, diff(&stats.snapshot(), &before));
    let size = d.stat(&path).await.map_err(err("stat"))?.size;
    if size != TOTAL {
        bail!("{scenario}: stored object has {size} bytes, expected {TOTAL}");
    }
    if verify {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut s = d.reader(&path, 0).await.map_err(err("reader"))?;
        while let Some(chunk) = s.next().await {
            ctx.update(&chunk.map_err(err("read"))?);
        }
        if ctx.finish().as_ref() != payload.sha256().as_slice() {
            bail!("{scenario}: SHA-256 of the stored object differs from the bytes written");
        }
        eprintln!("    {scenario}: SHA-256 of the stored {TOTAL} bytes verified");
    }
    Ok(phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_the_close_join_to_the_whole_payload() {
        let p = Payload { seed: 3 };
        let whole: Vec<u8> = p.pieces(0, TOTAL).flat_map(|b| b.to_vec()).collect();
        let split: Vec<u8> = p
            .pieces(0, CLOSED)
            .chain(p.pieces(CLOSED, TOTAL))
            .flat_map(|b| b.to_vec())
            .collect();
        assert_eq!(whole.len() as u64, TOTAL);
        assert!(whole == split);
        assert!(p.pieces(0, TOTAL).all(|b| b.len() == WRITE));
    }

    #[test]
    fn attempts_get_different_bytes() {
        let a = Payload {
            seed: data::seed_for(1, "bench/1/r0/upload-fresh"),
        };
        let b = Payload {
            seed: data::seed_for(1, "bench/1/r0/upload-resumed"),
        };
        assert_ne!(a.sha256(), b.sha256());
    }
}
