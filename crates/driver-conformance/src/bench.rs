//! A small benchmark set after distribution's `BenchDriver`: put/get and writer-stream of
//! empty, 1 KiB, 1 MiB and 1 GiB objects; list and delete of 5 and 50 files.
//!
//! The functions measure; they assert nothing about speed. Each benchmark gets its own fixture
//! from the [`Suite`] and leaves the store empty. Results are [`Measurement`]s that
//! `cargo xtask bench` and the CLI print.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use regstore_driver_api::{Error, Result};
use serde::Serialize;

use crate::data::Stream64;
use crate::harness::Suite;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// Names of all benchmarks, in run order.
pub const BENCHES: &[&str] = &[
    "put_get_empty",
    "put_get_1kib",
    "put_get_1mib",
    "put_get_1gib",
    "stream_empty",
    "stream_1kib",
    "stream_1mib",
    "stream_1gib",
    "list_5",
    "list_50",
    "delete_5",
    "delete_50",
];

/// How much work each benchmark does.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BenchOptions {
    /// Repetitions of each operation (1 GiB benchmarks always run once).
    pub iterations: u32,
    /// Include the 1 GiB benchmarks (`put_get_1gib` holds 1 GiB in memory, like
    /// distribution's; `stream_1gib` streams from a generator).
    pub include_1gib: bool,
}

impl Default for BenchOptions {
    /// Ten iterations, no 1 GiB benchmarks.
    fn default() -> Self {
        BenchOptions {
            iterations: 10,
            include_1gib: false,
        }
    }
}

impl BenchOptions {
    /// Sets [`iterations`](Self::iterations) (at least 1).
    pub fn with_iterations(mut self, iterations: u32) -> Self {
        self.iterations = iterations.max(1);
        self
    }

    /// Sets [`include_1gib`](Self::include_1gib).
    pub fn with_1gib(mut self, yes: bool) -> Self {
        self.include_1gib = yes;
        self
    }
}

/// One benchmark's result. Serialises as `name`, `ops`, `bytes`, `elapsed_secs`,
/// `mib_per_sec` and `ops_per_sec`.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Benchmark name (one of [`BENCHES`]).
    pub name: String,
    /// Operations timed (a put+get pair, a stream write+read, a list or a delete count as one).
    pub ops: u64,
    /// Payload bytes moved (written plus read); 0 for list and delete.
    pub bytes: u64,
    /// Wall time of the timed part.
    pub elapsed: Duration,
}

impl Serialize for Measurement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            name: &'a str,
            ops: u64,
            bytes: u64,
            elapsed_secs: f64,
            mib_per_sec: f64,
            ops_per_sec: f64,
        }
        Json {
            name: &self.name,
            ops: self.ops,
            bytes: self.bytes,
            elapsed_secs: self.elapsed.as_secs_f64(),
            mib_per_sec: self.mib_per_sec(),
            ops_per_sec: self.ops_per_sec(),
        }
        .serialize(s)
    }
}

impl Measurement {
    /// Throughput in MiB/s (0 when no bytes moved or no time elapsed).
    pub fn mib_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if self.bytes == 0 || s == 0.0 {
            0.0
        } else {
            self.bytes as f64 / MIB as f64 / s
        }
    }

    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s == 0.0 {
            0.0
        } else {
            self.ops as f64 / s
        }
    }
}

/// Runs the benchmarks whose name contains `filter` (all when `None`; the 1 GiB ones only
/// with [`BenchOptions::include_1gib`]), one after another so they do not disturb each other.
/// Stops at the first driver error.
pub async fn run_benches(
    suite: &Suite,
    filter: Option<&str>,
    options: &BenchOptions,
) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for name in BENCHES {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        if name.ends_with("_1gib") && !options.include_1gib {
            continue;
        }
        out.push(run_bench(suite, name, options).await?);
    }
    Ok(out)
}

/// Runs the benchmark called `name` on a fresh fixture and tears the fixture down.
pub async fn run_bench(suite: &Suite, name: &str, options: &BenchOptions) -> Result<Measurement> {
    let fixture = suite.fixture().await?;
    let d = fixture.driver.clone();
    let iters = u64::from(options.iterations.max(1));
    let result = match name {
        "put_get_empty" => put_get(&d, 0, iters).await,
        "put_get_1kib" => put_get(&d, KIB, iters).await,
        "put_get_1mib" => put_get(&d, MIB, iters).await,
        "put_get_1gib" => put_get(&d, GIB, 1).await,
        "stream_empty" => stream(&d, 0, iters).await,
        "stream_1kib" => stream(&d, KIB, iters).await,
        "stream_1mib" => stream(&d, MIB, iters).await,
        "stream_1gib" => stream(&d, GIB, 1).await,
        "list_5" => list(&d, 5, iters).await,
        "list_50" => list(&d, 50, iters).await,
        "delete_5" => delete(&d, 5, iters).await,
        "delete_50" => delete(&d, 50, iters).await,
        other => Err(Error::backend(
            d.name(),
            None,
            format!("no benchmark named {other:?}"),
        )),
    };
    if let Some(t) = fixture.teardown {
        t().await?;
    }
    result.map(|(ops, bytes, elapsed)| Measurement {
        name: name.to_owned(),
        ops,
        bytes,
        elapsed,
    })
}

type Timed = Result<(u64, u64, Duration)>;

fn payload(size: u64) -> Bytes {
    let mut v = vec![0u8; usize::try_from(size).unwrap_or(0)];
    Stream64::new(size).fill(&mut v);
    Bytes::from(v)
}

fn mismatch(d: &regstore_driver_api::Driver, path: &str, got: u64, want: u64) -> Error {
    Error::backend(
        d.name(),
        Some(path),
        format!("benchmark read back {got} bytes, expected {want}"),
    )
}

async fn put_get(d: &regstore_driver_api::Driver, size: u64, iters: u64) -> Timed {
    let content = payload(size);
    let path = "/bench/putget";
    let start = Instant::now();
    for _ in 0..iters {
        d.put_content(path, content.clone()).await?;
        let got = d.get_content(path).await?;
        if got.len() as u64 != size {
            return Err(mismatch(d, path, got.len() as u64, size));
        }
    }
    let elapsed = start.elapsed();
    d.delete("/bench").await?;
    Ok((iters, 2 * size * iters, elapsed))
}

async fn stream(d: &regstore_driver_api::Driver, size: u64, iters: u64) -> Timed {
    let path = "/bench/stream";
    let chunk = MIB.min(size.max(1));
    let mut buf = vec![0u8; usize::try_from(chunk).unwrap_or(1)];
    let start = Instant::now();
    for _ in 0..iters {
        let mut gen = Stream64::new(size);
        let mut w = d.writer(path, false).await?;
        let mut written = 0u64;
        while written < size {
            let n = chunk.min(size - written) as usize;
            gen.fill(&mut buf[..n]);
            w.write(Bytes::copy_from_slice(&buf[..n])).await?;
            written += n as u64;
        }
        w.commit().await?;
        w.close().await?;
        let mut s = d.reader(path, 0).await?;
        let mut read = 0u64;
        while let Some(c) = s.try_next().await? {
            read += c.len() as u64;
        }
        if read != size {
            return Err(mismatch(d, path, read, size));
        }
    }
    let elapsed = start.elapsed();
    d.delete("/bench").await?;
    Ok((iters, 2 * size * iters, elapsed))
}

async fn put_files(d: &regstore_driver_api::Driver, n: usize) -> Result<()> {
    for i in 0..n {
        d.put_content(&format!("/bench/list/file{i}"), &b"content"[..])
            .await?;
    }
    Ok(())
}

async fn list(d: &regstore_driver_api::Driver, n: usize, iters: u64) -> Timed {
    put_files(d, n).await?;
    let start = Instant::now();
    for _ in 0..iters {
        let got = d.list("/bench/list").await?;
        if got.len() != n {
            return Err(mismatch(d, "/bench/list", got.len() as u64, n as u64));
        }
    }
    let elapsed = start.elapsed();
    d.delete("/bench").await?;
    Ok((iters, 0, elapsed))
}

async fn delete(d: &regstore_driver_api::Driver, n: usize, iters: u64) -> Timed {
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        put_files(d, n).await?;
        let start = Instant::now();
        d.delete("/bench/list").await?;
        elapsed += start.elapsed();
    }
    match d.delete("/bench").await {
        Err(e) if !e.is_not_found() => return Err(e),
        _ => {}
    }
    Ok((iters, 0, elapsed))
}
