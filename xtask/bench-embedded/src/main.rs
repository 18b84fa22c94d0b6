//! Runs `regstore_driver_conformance::bench` (the scenarios `regstore bench` runs too) against
//! the embedded backends and prints a table;
//! a JSON report goes to the path given with `--json`. Started by `cargo xtask bench` (release
//! build); numbers from a debug build are meaningless.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use regstore_driver_api::{Driver, StorageDriver};
use regstore_driver_conformance::bench::{run_benches, BenchOptions, Measurement};
use regstore_driver_conformance::{Fixture, Suite};
use regstore_driver_filesystem::FilesystemDriver;
use regstore_driver_inmemory::InMemoryDriver;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "xtask-bench-embedded",
    about = "benchmarks of the embedded backends"
)]
struct Args {
    /// Backends to measure (repeatable).
    #[arg(long = "backend", value_enum, required = true)]
    backends: Vec<Backend>,
    /// Repetitions of each operation.
    #[arg(long, default_value_t = 10)]
    iterations: u32,
    /// Include the 1 GiB benchmarks.
    #[arg(long)]
    large: bool,
    /// Only the benchmarks whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Where the filesystem backend's stores go (a temp dir below it per benchmark).
    #[arg(long)]
    scratch: PathBuf,
    /// Write the measurements as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Inmemory,
    Filesystem,
}

#[derive(Serialize)]
struct Row {
    backend: Backend,
    #[serde(flatten)]
    measurement: Measurement,
    mib_per_sec: f64,
    ops_per_sec: f64,
}

fn suite(backend: Backend, scratch: PathBuf) -> Suite {
    match backend {
        Backend::Inmemory => Suite::new(|| async {
            let d: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
            Ok(Fixture::new(Driver::new(d)))
        }),
        Backend::Filesystem => Suite::new(move || {
            let scratch = scratch.clone();
            async move {
                let dir = tempfile::Builder::new()
                    .prefix("bench-")
                    .tempdir_in(&scratch)
                    .map_err(|e| regstore_driver_api::Error::backend("filesystem", None, e))?;
                let d: Arc<dyn StorageDriver> = Arc::new(FilesystemDriver::new(dir.path()));
                Ok(Fixture::new(Driver::new(d)).keep_alive(dir))
            }
        }),
    }
}

fn name(b: Backend) -> &'static str {
    match b {
        Backend::Inmemory => "inmemory",
        Backend::Filesystem => "filesystem",
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.scratch)
        .with_context(|| format!("create {}", args.scratch.display()))?;
    let options = BenchOptions::default()
        .with_iterations(args.iterations)
        .with_1gib(args.large);
    let mut rows = Vec::new();
    println!(
        "{:<11} {:<15} {:>6} {:>11} {:>11} {:>10}",
        "backend", "bench", "ops", "MiB/s", "ops/s", "seconds"
    );
    for &backend in &args.backends {
        let suite = suite(backend, args.scratch.clone());
        let measurements = run_benches(&suite, args.filter.as_deref(), &options)
            .await
            .with_context(|| format!("benchmarks on {}", name(backend)))?;
        for m in measurements {
            println!(
                "{:<11} {:<15} {:>6} {:>11.1} {:>11.1} {:>10.3}",
                name(backend),
                m.name,
                m.ops,
                m.mib_per_sec(),
                m.ops_per_sec(),
                m.elapsed.as_secs_f64()
            );
            rows.push(Row {
                backend,
                mib_per_sec: m.mib_per_sec(),
                ops_per_sec: m.ops_per_sec(),
                measurement: m,
            });
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}
