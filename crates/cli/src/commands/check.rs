//! `check` and `bench`: the conformance suite and the benchmark set against the configured
//! backend, each case on a fresh scratch root that is removed afterwards.
//!
//! Isolation: every case needs an empty store of its own. The configured backend is rebuilt
//! per case with its `rootdirectory` moved to `<configured root>/regstore-check-<random>/case-N`
//! (a subdirectory of the data root for the filesystem backend, a key prefix for S3), so a
//! check never sees or touches the registry's own data next to it. The whole
//! `regstore-check-<random>` prefix is deleted at the end, and on S3 the multipart uploads a
//! case left open below it are aborted too.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regstore_driver_api::{Driver, Error};
use regstore_driver_conformance::bench::{self, BenchOptions, Measurement};
use regstore_driver_conformance::{
    run_all, Capabilities, Fixture, Outcome, Report, Suite, WalkOrder,
};
use serde_json::json;

use super::{print_json, print_line};
use crate::backends;
use crate::config::StorageConfig;
use crate::error::{CliError, CliResult};
use crate::Context;

/// The benchmarks `check` runs as its short throughput measurement.
const CHECK_BENCHES: &[&str] = &[
    "put_get_1kib",
    "put_get_1mib",
    "stream_1mib",
    "list_50",
    "delete_50",
];

/// Iterations of each benchmark within `check`.
const CHECK_BENCH_ITERATIONS: u32 = 3;

/// A scratch area below the configured root, and how to build per-case drivers in it.
struct Scratch {
    config: StorageConfig,
    /// `regstore-check-<random>`: the one directory/prefix everything goes under.
    name: String,
    /// The configured root (`rootdirectory` as given, without trailing `/`).
    root: String,
    counter: AtomicUsize,
}

impl Scratch {
    fn new(config: &StorageConfig) -> CliResult<Scratch> {
        let backend = config.backend.to_ascii_lowercase();
        let root = match config.params.string(&backend, "rootdirectory")? {
            Some(r) => r,
            None if backend == "filesystem" => {
                regstore_driver_filesystem::DEFAULT_ROOT_DIRECTORY.to_owned()
            }
            None => String::new(),
        };
        if backend != "inmemory" && backend != "filesystem" && !backends::is_s3(&backend) {
            return Err(CliError::Input(format!(
                "check/bench: do not know how to isolate a scratch root for backend {:?} \
                 (supported: filesystem, s3, s3aws, inmemory)",
                config.backend
            )));
        }
        Ok(Scratch {
            config: config.clone(),
            name: format!("regstore-check-{:08x}", rand::random::<u32>()),
            root: root.trim_end_matches('/').to_owned(),
            counter: AtomicUsize::new(0),
        })
    }

    /// The configuration of the next case: same parameters, root moved into the scratch area.
    fn next_case(&self) -> StorageConfig {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut config = self.config.clone();
        if config.backend != "inmemory" {
            let case_root = if self.root.is_empty() {
                format!("{}/case-{n}", self.name)
            } else {
                format!("{}/{}/case-{n}", self.root, self.name)
            };
            config.params.insert("rootdirectory", case_root);
        }
        config
    }

    /// Where the scratch area is, for humans.
    fn describe(&self) -> String {
        if self.config.backend == "inmemory" {
            "a fresh in-memory store per case".into()
        } else if self.root.is_empty() {
            format!("{}/", self.name)
        } else {
            format!("{}/{}/", self.root, self.name)
        }
    }

    /// Deletes the whole scratch area (and on S3 aborts uploads left below it).
    async fn cleanup(&self, base: &Driver) -> CliResult<()> {
        if self.config.backend == "inmemory" {
            return Ok(());
        }
        if backends::is_s3(&self.config.backend) {
            let mut config = self.config.clone();
            let prefix = if self.root.is_empty() {
                self.name.clone()
            } else {
                format!("{}/{}", self.root, self.name)
            };
            config.params.insert("rootdirectory", prefix);
            if let Some(s3) = backends::open_s3(&config)? {
                s3.abort_uploads_under_root().await?;
            }
        }
        match base.delete(&format!("/{}", self.name)).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Capabilities of the configured backend, so cases expect what it legitimately does.
    fn capabilities(&self) -> CliResult<Capabilities> {
        let caps = Capabilities::default();
        if !backends::is_s3(&self.config.backend) {
            return Ok(caps);
        }
        let s3 = regstore_driver_s3::S3Config::from_parameters(&self.config.params)?;
        Ok(caps
            .with_walk_order(WalkOrder::KeyOrder)
            .with_walk_missing_is_not_found(false)
            .with_part_size(s3.chunk_size)
            .with_redirect(true, s3.skip_verify))
    }
}

/// A suite whose constructor builds the configured backend in a fresh case root.
fn suite(scratch: Arc<Scratch>) -> CliResult<Suite> {
    let caps = scratch.capabilities()?;
    let suite = Suite::new(move || {
        let scratch = scratch.clone();
        async move {
            let case = scratch.next_case();
            let driver = backends::open_backend(&case)
                .await
                .map_err(|e| Error::backend("regstore", None, e.to_string()))?;
            let fixture = Fixture::new(driver);
            if case.backend == "filesystem" {
                let dir = case
                    .params
                    .get("rootdirectory")
                    .and_then(|v| v.as_scalar_string())
                    .map(PathBuf::from);
                return Ok(fixture.with_teardown(move || async move {
                    if let Some(dir) = dir {
                        remove_dir(dir).await?;
                    }
                    Ok(())
                }));
            }
            if backends::is_s3(&case.backend) {
                let s3 = backends::open_s3(&case)
                    .map_err(|e| Error::backend("regstore", None, e.to_string()))?;
                return Ok(fixture.with_teardown(move || async move {
                    // The harness checked that no object is left; closed-but-uncommitted
                    // uploads are invisible to it and would cost money.
                    if let Some(s3) = s3 {
                        s3.abort_uploads_under_root().await?;
                    }
                    Ok(())
                }));
            }
            Ok(fixture)
        }
    });
    Ok(suite.with_capabilities(caps))
}

async fn remove_dir(dir: PathBuf) -> regstore_driver_api::Result<()> {
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::backend(
            "filesystem",
            Some(&dir.display().to_string()),
            e,
        )),
    }
}

/// Runs `f` with a scratch area and removes it afterwards, whatever `f` returned.
async fn with_scratch<T, F, Fut>(ctx: &Context, f: F) -> CliResult<(StorageConfig, Arc<Scratch>, T)>
where
    F: FnOnce(Arc<Scratch>) -> Fut,
    Fut: std::future::Future<Output = CliResult<T>>,
{
    let config = ctx.storage_config()?;
    // Building the configured backend first turns every configuration error into exit 2 before
    // anything runs.
    let base = backends::open_backend(&config).await?;
    let scratch = Arc::new(Scratch::new(&config)?);
    let result = f(scratch.clone()).await;
    let cleaned = scratch.cleanup(&base).await;
    let value = result?;
    cleaned.map_err(|e| {
        CliError::Driver(Error::backend(
            config.backend.clone(),
            Some(&scratch.describe()),
            format!("could not remove the scratch area: {e}"),
        ))
    })?;
    Ok((config, scratch, value))
}

/// `check`: conformance suite plus a short throughput measurement.
pub async fn check(ctx: &Context, filter: Option<&str>, run_bench: bool) -> CliResult<()> {
    if let Some(f) = filter {
        if !regstore_driver_conformance::CASES
            .iter()
            .any(|c| c.contains(f))
        {
            return Err(CliError::Input(format!(
                "check: no conformance case matches the filter {f:?}"
            )));
        }
    }
    let started = Instant::now();
    let (config, scratch, (report, benches)) = with_scratch(ctx, |scratch| async move {
        let suite = suite(scratch)?;
        if !ctx.json && crate::output::stderr_is_tty() {
            eprintln!("regstore check: running the conformance suite…");
        }
        let report = run_all(&suite, filter).await;
        let benches = if run_bench && report.success() {
            let options = BenchOptions::default().with_iterations(CHECK_BENCH_ITERATIONS);
            let mut out = Vec::new();
            for name in CHECK_BENCHES {
                out.push(bench::run_bench(&suite, name, &options).await);
            }
            out
        } else {
            Vec::new()
        };
        Ok((report, benches))
    })
    .await?;
    let elapsed = started.elapsed();
    let bench_errors: Vec<String> = benches
        .iter()
        .filter_map(|b| b.as_ref().err().map(|e| e.to_string()))
        .collect();
    let measurements: Vec<&Measurement> = benches.iter().filter_map(|b| b.as_ref().ok()).collect();

    if ctx.json {
        print_json(&json!({
            "backend": config.backend,
            "driver": report.driver,
            "config": config.origin,
            "scratch": scratch.describe(),
            "passed": report.passed(),
            "failed": report.failed(),
            "skipped": report.skipped(),
            "success": report.success() && bench_errors.is_empty(),
            "seconds": elapsed.as_secs_f64(),
            "report": report,
            "bench": measurements,
            "bench_errors": bench_errors,
        }))?;
    } else {
        print_line(format!(
            "backend {} ({}) from {}; scratch {} (removed)",
            config.backend,
            report.driver,
            config.origin,
            scratch.describe()
        ))?;
        print_report(&report)?;
        if !measurements.is_empty() {
            print_line("")?;
            print_line(format!(
                "throughput ({CHECK_BENCH_ITERATIONS} iterations each):"
            ))?;
            print_measurements(&measurements)?;
        }
        for e in &bench_errors {
            print_line(format!("bench error: {e}"))?;
        }
        print_line(format!(
            "check: {} passed, {} failed, {} skipped in {:.1}s",
            report.passed(),
            report.failed(),
            report.skipped(),
            elapsed.as_secs_f64()
        ))?;
    }
    if report.failed() > 0 {
        return Err(CliError::Failed(format!(
            "check: {} of {} conformance cases failed against {}",
            report.failed(),
            report.cases.len(),
            config.backend
        )));
    }
    if !bench_errors.is_empty() {
        return Err(CliError::Failed(format!(
            "check: the throughput measurement failed: {}",
            bench_errors[0]
        )));
    }
    Ok(())
}

fn print_report(report: &Report) -> CliResult<()> {
    let width = report
        .cases
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    print_line(format!(
        "{:<width$}  {:<6}  {:>8}",
        "CASE", "RESULT", "TIME"
    ))?;
    for c in &report.cases {
        let result = match &c.outcome {
            Outcome::Passed => "pass",
            Outcome::Skipped(_) => "skip",
            Outcome::Failed(_) => "FAIL",
        };
        print_line(format!(
            "{:<width$}  {:<6}  {:>8}",
            c.name,
            result,
            secs(c.duration)
        ))?;
    }
    for c in &report.cases {
        match &c.outcome {
            Outcome::Failed(m) => print_line(format!("FAIL {}: {m}", c.name))?,
            Outcome::Skipped(m) => print_line(format!("skip {}: {m}", c.name))?,
            Outcome::Passed => {}
        }
    }
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn print_measurements(ms: &[&Measurement]) -> CliResult<()> {
    print_line(format!(
        "{:<16}  {:>6}  {:>12}  {:>9}  {:>10}  {:>10}",
        "BENCH", "OPS", "BYTES", "TIME", "MiB/s", "ops/s"
    ))?;
    for m in ms {
        print_line(format!(
            "{:<16}  {:>6}  {:>12}  {:>9}  {:>10.1}  {:>10.1}",
            m.name,
            m.ops,
            m.bytes,
            secs(m.elapsed),
            m.mib_per_sec(),
            m.ops_per_sec()
        ))?;
    }
    Ok(())
}

/// `bench`: the benchmark set under a scratch prefix.
pub async fn bench(
    ctx: &Context,
    filter: Option<&str>,
    iterations: u32,
    include_1gib: bool,
) -> CliResult<()> {
    let options = BenchOptions::default()
        .with_iterations(iterations)
        .with_1gib(include_1gib);
    let selected = bench::BENCHES
        .iter()
        .any(|b| filter.is_none_or(|f| b.contains(f)) && (include_1gib || !b.ends_with("_1gib")));
    if !selected {
        return Err(CliError::Input(format!(
            "bench: no benchmark matches the filter {:?} (known: {}; the 1 GiB ones need \
             --include-1gib)",
            filter.unwrap_or_default(),
            bench::BENCHES.join(", ")
        )));
    }
    let (config, scratch, result) = with_scratch(ctx, |scratch| {
        let options = options.clone();
        async move {
            let suite = suite(scratch)?;
            Ok(bench::run_benches(&suite, filter, &options).await)
        }
    })
    .await?;
    let measurements = result?;
    if ctx.json {
        return print_json(&json!({
            "backend": config.backend,
            "config": config.origin,
            "scratch": scratch.describe(),
            "options": options,
            "bench": measurements,
        }));
    }
    print_line(format!(
        "backend {} from {}; scratch {} (removed); {} iterations each",
        config.backend,
        config.origin,
        scratch.describe(),
        options.iterations
    ))?;
    print_measurements(&measurements.iter().collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(yaml: &str) -> Scratch {
        Scratch::new(&StorageConfig::from_yaml(yaml, "c.yml").unwrap()).unwrap()
    }

    fn root_of(c: &StorageConfig) -> String {
        c.params
            .get("rootdirectory")
            .and_then(|v| v.as_scalar_string())
            .unwrap()
    }

    #[test]
    fn case_roots_live_under_one_scratch_prefix_of_the_configured_root() {
        let s = scratch("storage:\n  filesystem:\n    rootdirectory: /srv/registry/\n");
        assert!(s.name.starts_with("regstore-check-") && s.name.len() == 23);
        let a = root_of(&s.next_case());
        let b = root_of(&s.next_case());
        assert_eq!(a, format!("/srv/registry/{}/case-0", s.name));
        assert_eq!(b, format!("/srv/registry/{}/case-1", s.name));
        assert_eq!(s.describe(), format!("/srv/registry/{}/", s.name));

        let s = scratch("storage:\n  s3:\n    bucket: b\n");
        assert_eq!(root_of(&s.next_case()), format!("{}/case-0", s.name));
        let s = scratch("storage:\n  s3:\n    bucket: b\n    rootdirectory: /reg\n");
        assert_eq!(root_of(&s.next_case()), format!("/reg/{}/case-0", s.name));

        // No rootdirectory: the filesystem driver's default root.
        let s = scratch("storage:\n  filesystem:\n");
        assert!(root_of(&s.next_case()).starts_with("/var/lib/registry/regstore-check-"));

        // In memory: no root to move, every case is a fresh store anyway.
        let s = scratch("storage:\n  inmemory:\n");
        assert!(s.next_case().params.get("rootdirectory").is_none());
    }

    #[test]
    fn unknown_backends_cannot_be_isolated() {
        let c = StorageConfig::from_yaml("storage:\n  azure:\n    container: c\n", "c").unwrap();
        let e = Scratch::new(&c).err().unwrap();
        assert_eq!(e.exit_code(), crate::error::EXIT_INVALID);
        assert!(e.to_string().contains("azure"), "{e}");
    }
}
