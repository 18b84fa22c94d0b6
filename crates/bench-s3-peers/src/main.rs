//! `regstore-bench-s3-peers`: regstore's S3 driver, object_store's S3 backend and raw curl, side by side
//! on one S3 server (Garage, started by `cargo xtask bench-s3`).
//!
//! `regstore-bench-s3-peers run …` is the orchestrator: it runs every scenario for every client in a
//! child process of its own (`regstore-bench-s3-peers child …`), interleaved and repeated, reads each
//! child's peak RSS with `wait4`, and writes a JSON report, a Markdown table and an SVG chart.
//! The server comes from `REGSTORE_S3_*` (see `child::Setup::from_env`).

mod child;
mod data;
mod gcfill;
mod report;
mod resumed;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use regstore_driver_api::{StorageDriver, StoragePath};
use serde::{Deserialize, Serialize};

use child::{Phase, Setup, Task};

const MIB: u64 = 1024 * 1024;

#[derive(Parser)]
#[command(
    name = "regstore-bench-s3-peers",
    about = "S3 benchmark: regstore vs object_store vs curl"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the whole benchmark and write the reports.
    Run(RunArgs),
    /// Internal: one scenario for one client (prints its phases as JSON).
    Child(ChildArgs),
    /// Write the synthetic registry of the gc benchmark (`cargo xtask bench-gc`; see
    /// src/gcfill.rs) and print what a collection should find, as JSON.
    GcFill(GcFillArgs),
}

#[derive(Args)]
struct GcFillArgs {
    /// Path below which `docker/registry/v2` is written (the tools' `rootdirectory`).
    #[arg(long)]
    root: String,
    /// Blobs to write (a multiple of 20: one repository per 20).
    #[arg(long)]
    blobs: usize,
    /// Puts in flight.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
}

#[derive(Args, Clone)]
struct Tuning {
    /// Part size of multipart uploads (both libraries), MiB.
    #[arg(long, default_value_t = 10)]
    chunk_size_mib: u64,
    /// Parts in flight per upload (both libraries).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Extra regstore driver parameter, `key=value` (repeatable).
    #[arg(long = "driver-param")]
    driver_params: Vec<String>,
    /// Let object_store send `UNSIGNED-PAYLOAD` as regstore does for part bodies (default: its
    /// own default, a SHA-256 of every body).
    #[arg(long)]
    object_store_unsigned_payload: bool,
    /// Size of the streamed / moved object, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Number of small objects.
    #[arg(long, default_value_t = 1000)]
    small_count: usize,
    /// Size of each small object, bytes.
    #[arg(long, default_value_t = 1024)]
    small_size: usize,
    /// Small operations in flight.
    #[arg(long, default_value_t = 32)]
    small_inflight: usize,
    /// Objects created, walked and deleted.
    #[arg(long, default_value_t = 10_000)]
    walk_count: usize,
    /// Time limit of one attempt of the resumed-upload scenario, seconds.
    #[arg(long, default_value_t = 120)]
    attempt_timeout_secs: u64,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    tuning: Tuning,
    /// Repetitions of every scenario (interleaved across clients; medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Where the payload file for curl goes.
    #[arg(long)]
    scratch: PathBuf,
    /// JSON report.
    #[arg(long)]
    json: PathBuf,
    /// Markdown table (the same figures as printed).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// SVG chart.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Free-form description of the server (goes into the report).
    #[arg(long, default_value = "S3 server")]
    server: String,
    /// Only scenarios whose name contains one of these (repeatable).
    #[arg(long = "only")]
    only: Vec<String>,
}

#[derive(Args)]
struct ChildArgs {
    #[command(flatten)]
    tuning: Tuning,
    #[arg(long)]
    client: String,
    #[arg(long)]
    scenario: String,
    #[arg(long)]
    prefix: String,
    /// Check the stored object's SHA-256 after an upload scenario.
    #[arg(long)]
    verify: bool,
}

fn parse_params(v: &[String]) -> Result<Vec<(String, String)>> {
    v.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow!("--driver-param {s}: expected key=value"))
        })
        .collect()
}

fn setup(t: &Tuning) -> Result<Setup> {
    Setup::from_env(
        t.chunk_size_mib * MIB,
        t.concurrency,
        parse_params(&t.driver_params)?,
        t.object_store_unsigned_payload,
    )
}

fn task(t: &Tuning, client: &str, scenario: &str, prefix: &str, verify: bool) -> Task {
    Task {
        client: client.into(),
        scenario: scenario.into(),
        prefix: prefix.into(),
        size: t.size_mib * MIB,
        small_count: t.small_count,
        small_size: t.small_size,
        small_inflight: t.small_inflight,
        walk_count: t.walk_count,
        attempt_timeout: std::time::Duration::from_secs(t.attempt_timeout_secs),
        verify,
    }
}

fn gc_fill(a: GcFillArgs) -> Result<()> {
    let driver = Setup::from_env(10 * MIB, 4, Vec::new(), false)?.regstore()?;
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(gcfill::fill(&driver, &a.root, a.blobs, a.inflight))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Child(a) => run_child(a),
        Cmd::GcFill(a) => gc_fill(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

fn run_child(a: ChildArgs) -> Result<()> {
    let s = setup(&a.tuning)?;
    let t = task(&a.tuning, &a.client, &a.scenario, &a.prefix, a.verify);
    let phases = runtime()?.block_on(child::run(&s, &t))?;
    println!("{}", serde_json::to_string(&phases)?);
    Ok(())
}

/// One measured phase of one client in one repetition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub rep: usize,
    pub client: String,
    #[serde(flatten)]
    pub phase: Phase,
    /// Peak RSS of the process that ran the phase (the whole scenario's child), KiB.
    pub peak_rss_kib: u64,
}

/// Runs `cmd`, returns its stdout and peak RSS (KiB) from `wait4`. The child's stderr is passed
/// through; if it fails, its last `error:` message becomes the error, so a report names the
/// cause.
fn spawn_measured(cmd: &mut Command) -> Result<(String, u64)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let echo = child.stderr.take().map(|se| {
        std::thread::spawn(move || {
            use std::io::BufRead;
            // The child's error (printed last, maybe over several lines), from `error: ` on.
            let mut error: Option<Vec<String>> = None;
            for line in std::io::BufReader::new(se).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if let Some(e) = line.strip_prefix("error: ") {
                    error = Some(vec![e.to_owned()]);
                } else if let Some(lines) = error.as_mut().filter(|_| !line.trim().is_empty()) {
                    lines.push(line.trim().to_owned());
                }
            }
            error.map(|lines| lines.join(" "))
        })
    });
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        so.read_to_string(&mut out)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is a plain C struct for which all-zero bytes are a valid value, and
    // wait4 only writes into the two out-pointers we pass for the child we spawned.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let child_error = echo.and_then(|h| h.join().ok().flatten());
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        match child_error {
            Some(e) => bail!("{e}"),
            None => bail!("{:?} failed (status {status})", cmd.get_program()),
        }
    }
    Ok((out, ru.ru_maxrss as u64))
}

/// Longest wait for the removal of one repetition's objects: after a failed attempt the
/// server may be slow to answer, and the run must end rather than hang there.
const CLEANUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

const SCENARIOS: &[&str] = &[
    "stream-write",
    "stream-read",
    "move",
    "small",
    "walk-delete",
    "resumed-upload",
];
const CLIENTS: &[&str] = &["regstore", "object_store", "curl"];

/// One child run of a scenario: which client, which child scenario, and its key prefix under
/// the repetition.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    client: &'static str,
    scenario: &'static str,
    prefix: String,
}

/// The runs of scenario `sc` in one repetition whose rotated client order is `order`.
///
/// curl takes part in the stream scenarios only. A self-contained scenario that only the two
/// libraries run (small objects, walk/delete) runs A B B A: the client that runs first after
/// the previous scenario meets the server's background work from it (Garage settles blocks
/// and metadata for a while after 3 GiB of writes), and with three clients rotated over an
/// odd number of repetitions one library would otherwise go first twice as often. The
/// second run of a client gets its own prefix, so it creates objects rather than overwriting.
///
/// `resumed-upload` compares two ways of writing one object with regstore alone
/// (`upload-fresh`, `upload-resumed`; see the `resumed` module), A B B A as well, the variant
/// that goes first alternating with the repetition.
fn run_order(sc: &'static str, rep: usize, order: &[&'static str]) -> Vec<Run> {
    let run = |client, scenario, prefix: String| Run {
        client,
        scenario,
        prefix,
    };
    if sc == "resumed-upload" {
        let (a, b) = if rep % 2 == 0 {
            ("upload-fresh", "upload-resumed")
        } else {
            ("upload-resumed", "upload-fresh")
        };
        return vec![
            run("regstore", a, a.to_owned()),
            run("regstore", b, b.to_owned()),
            run("regstore", b, format!("{b}-2")),
            run("regstore", a, format!("{a}-2")),
        ];
    }
    let clients: Vec<&'static str> = order
        .iter()
        .copied()
        .filter(|c| *c != "curl" || sc.starts_with("stream"))
        .collect();
    match clients[..] {
        [a, b] if sc == "small" || sc == "walk-delete" => vec![
            run(a, sc, a.to_owned()),
            run(b, sc, b.to_owned()),
            run(b, sc, format!("{b}-2")),
            run(a, sc, format!("{a}-2")),
        ],
        _ => clients
            .iter()
            .map(|c| run(c, sc, (*c).to_owned()))
            .collect(),
    }
}

fn run(a: RunArgs) -> Result<()> {
    let s = setup(&a.tuning)?;
    let t = &a.tuning;
    std::fs::create_dir_all(&a.scratch)?;
    let payload = a.scratch.join("payload.bin");
    let size = t.size_mib * MIB;
    let scenarios: Vec<&'static str> = SCENARIOS
        .iter()
        .copied()
        .filter(|sc| a.only.is_empty() || a.only.iter().any(|o| sc.contains(o.as_str())))
        .collect();
    let need_curl = scenarios.iter().any(|s| s.starts_with("stream"));
    if need_curl && std::fs::metadata(&payload).map(|m| m.len()).ok() != Some(size) {
        eprintln!(
            "==> writing the {size}-byte payload for curl to {}",
            payload.display()
        );
        data::write_file(&payload, s.seed, size)?;
    }
    let curl_cfg = a.scratch.join("curl.cfg");
    write_curl_config(&curl_cfg, &s)?;
    let run_id = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    );
    let exe = std::env::current_exe()?;
    let rt = runtime()?;
    let cleaner = s.regstore()?;
    rt.block_on(cleaner.ensure_bucket())
        .map_err(|e| anyhow!("bucket: {e}"))?;
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    // Scenarios whose attempt failed, with why; they are not run again.
    let mut failed: Vec<(&str, String)> = Vec::new();
    for rep in 0..a.reps {
        // Rotate the client order each repetition so no client always runs first or last.
        let order: Vec<&str> = (0..CLIENTS.len())
            .map(|i| CLIENTS[(i + rep) % CLIENTS.len()])
            .collect();
        for sc in &scenarios {
            if failed.iter().any(|(s, _)| s == sc) {
                continue;
            }
            for Run {
                client,
                scenario,
                prefix,
            } in run_order(sc, rep, &order)
            {
                let client = &client;
                let prefix = format!("bench/{run_id}/r{rep}/{prefix}");
                let t0 = Instant::now();
                let attempt = if *client == "curl" {
                    curl(sc, &s, &curl_cfg, &payload, &prefix, size)
                } else {
                    let mut cmd = Command::new(&exe);
                    cmd.arg("child").args([
                        "--client",
                        client,
                        "--scenario",
                        scenario,
                        "--prefix",
                        &prefix,
                    ]);
                    // The uploaded bytes are read back once per run (the first upload-resumed
                    // attempt), outside the timed phase.
                    if rep == 0 && scenario == "upload-resumed" && !prefix.ends_with("-2") {
                        cmd.arg("--verify");
                    }
                    tuning_args(&mut cmd, t);
                    spawn_measured(&mut cmd)
                        .with_context(|| format!("{client} {scenario} (rep {rep})"))
                        .and_then(|(out, rss)| {
                            let phases: Vec<Phase> = serde_json::from_str(out.trim())
                                .with_context(|| format!("{client} {scenario}: output {out:?}"))?;
                            Ok((phases, rss))
                        })
                };
                let (phases, rss) = match attempt {
                    Ok(v) => v,
                    // A failed resumed upload (the time limit) is a result, not a crash: the
                    // other scenarios and the report go on, and the run fails at the end.
                    Err(e) if *sc == "resumed-upload" => {
                        eprintln!("    rep {rep} {client:<12} {scenario:<14} FAILED: {e:#}");
                        failed.push((sc, format!("rep {rep} {scenario}: {e:#}")));
                        break;
                    }
                    Err(e) => return Err(e),
                };
                for p in phases {
                    eprintln!(
                        "    rep {rep} {client:<12} {:<14} {:>8.3}s  rss {:>6} MiB  ({:.0}s)",
                        p.name,
                        p.secs,
                        rss / 1024,
                        t0.elapsed().as_secs_f64()
                    );
                    samples.push(Sample {
                        rep,
                        client: client.to_string(),
                        phase: p,
                        peak_rss_kib: rss,
                    });
                }
            }
        }
        // Remove this repetition's objects so the server's data does not grow with reps.
        let dir = StoragePath::parse(&format!("/bench/{run_id}/r{rep}"))
            .ok_or_else(|| anyhow!("bad cleanup path"))?;
        match rt.block_on(async { tokio::time::timeout(CLEANUP_LIMIT, cleaner.delete(&dir)).await })
        {
            Ok(Ok(()) | Err(regstore_driver_api::Error::PathNotFound { .. })) => {}
            Ok(Err(e)) => bail!("cleanup of {dir}: {e}"),
            Err(_) => eprintln!(
                "    warning: cleanup of {dir} not done after {} s; its objects are left",
                CLEANUP_LIMIT.as_secs()
            ),
        }
    }
    let meta = report::Meta {
        server: a.server.clone(),
        chunk_size: t.chunk_size_mib * MIB,
        concurrency: t.concurrency,
        size,
        small_count: t.small_count,
        small_size: t.small_size,
        small_inflight: t.small_inflight,
        walk_count: t.walk_count,
        attempt_timeout_secs: t.attempt_timeout_secs,
        reps: a.reps,
        driver_params: t.driver_params.clone(),
        object_store_unsigned_payload: t.object_store_unsigned_payload,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        total_secs: started.elapsed().as_secs_f64(),
        unix_time: run_id.parse().unwrap_or_default(),
    };
    let failures: Vec<String> = failed.iter().map(|(_, why)| why.clone()).collect();
    let rep = report::Report::build(meta, samples, failures.clone());
    let md = rep.markdown();
    println!("\n{md}");
    if let Some(parent) = a.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&a.json, serde_json::to_string_pretty(&rep)?)?;
    eprintln!("==> JSON report: {}", a.json.display());
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md)?;
        eprintln!("==> Markdown table: {}", p.display());
    }
    if let Some(p) = &a.svg {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, rep.svg())?;
        eprintln!("==> chart: {}", p.display());
    }
    if !failures.is_empty() {
        bail!("failed: {}", failures.join("; "));
    }
    Ok(())
}

fn tuning_args(cmd: &mut Command, t: &Tuning) {
    cmd.args(["--chunk-size-mib", &t.chunk_size_mib.to_string()])
        .args(["--concurrency", &t.concurrency.to_string()])
        .args(["--size-mib", &t.size_mib.to_string()])
        .args(["--small-count", &t.small_count.to_string()])
        .args(["--small-size", &t.small_size.to_string()])
        .args(["--small-inflight", &t.small_inflight.to_string()])
        .args(["--walk-count", &t.walk_count.to_string()])
        .args([
            "--attempt-timeout-secs",
            &t.attempt_timeout_secs.to_string(),
        ]);
    for p in &t.driver_params {
        cmd.args(["--driver-param", p]);
    }
    if t.object_store_unsigned_payload {
        cmd.arg("--object-store-unsigned-payload");
    }
}

/// curl reads the credentials from a config file (mode 0600) rather than its command line, so
/// they do not show in the process list.
fn write_curl_config(path: &Path, s: &Setup) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "user = \"{}:{}\"", s.access_key, s.secret_key)?;
    writeln!(f, "aws-sigv4 = \"aws:amz:{}:s3\"", s.region)?;
    Ok(())
}

/// The ceiling: one plain request of the whole payload (PUT from the page-cached file, GET to
/// /dev/null), `UNSIGNED-PAYLOAD` so curl does not hash 1 GiB first.
fn curl(
    scenario: &str,
    s: &Setup,
    cfg: &Path,
    payload: &Path,
    prefix: &str,
    size: u64,
) -> Result<(Vec<Phase>, u64)> {
    let url = format!(
        "{}/{}/{prefix}/big",
        s.endpoint.trim_end_matches('/'),
        s.bucket
    );
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "-K"])
        .arg(cfg)
        // No `-H Expect:` to skip the 100-continue round trip: curl 7.88 then signs a header
        // set that does not match the request and the server answers 403.
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .args(["-o", "/dev/null", "-w", "%{size_upload} %{size_download}"]);
    match scenario {
        "stream-write" => {
            cmd.arg("-T").arg(payload);
        }
        "stream-read" => {}
        other => bail!("curl has no {other} scenario"),
    }
    cmd.arg(&url);
    let t = Instant::now();
    let (out, rss) = spawn_measured(&mut cmd).with_context(|| format!("curl {scenario}"))?;
    let secs = t.elapsed().as_secs_f64();
    let moved: Vec<u64> = out
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok().map(|f| f as u64))
        .collect();
    let n = if scenario == "stream-write" {
        moved.first()
    } else {
        moved.get(1)
    };
    if n != Some(&size) {
        bail!("curl {scenario} moved {out:?} bytes, expected {size}");
    }
    let mut requests = BTreeMap::new();
    requests.insert(
        if scenario == "stream-write" {
            "PutObject"
        } else {
            "GetObject"
        }
        .to_owned(),
        1,
    );
    Ok((
        vec![Phase {
            name: scenario.into(),
            secs,
            bytes: size,
            ops: 1,
            requests: Some(requests),
            cpu_secs: 0.0,
        }],
        rss,
    ))
}

#[cfg(test)]
mod tests {
    use super::{run_order, Run};

    fn clients(runs: &[Run]) -> Vec<String> {
        runs.iter()
            .map(|r| format!("{}:{}", r.client, r.prefix))
            .collect()
    }

    #[test]
    fn stream_scenarios_run_each_client_once_in_the_rotated_order() {
        let runs = run_order("stream-write", 0, &["curl", "regstore", "object_store"]);
        assert_eq!(
            clients(&runs),
            [
                "curl:curl",
                "regstore:regstore",
                "object_store:object_store"
            ]
        );
        assert!(runs.iter().all(|r| r.scenario == "stream-write"));
        let runs = run_order("move", 1, &["curl", "regstore", "object_store"]);
        assert_eq!(
            clients(&runs),
            ["regstore:regstore", "object_store:object_store"]
        );
    }

    #[test]
    fn library_only_scenarios_are_counterbalanced_with_fresh_prefixes() {
        for (rep, order) in [
            ["regstore", "object_store", "curl"],
            ["object_store", "curl", "regstore"],
            ["curl", "regstore", "object_store"],
        ]
        .iter()
        .enumerate()
        {
            for sc in ["small", "walk-delete"] {
                let runs = run_order(sc, rep, order);
                let firsts = runs.iter().filter(|r| r.client == runs[0].client).count();
                assert_eq!(runs.len(), 4);
                assert_eq!(firsts, 2);
                assert_eq!(runs[0].client, runs[3].client);
                assert_eq!(runs[1].client, runs[2].client);
                let mut prefixes: Vec<&String> = runs.iter().map(|r| &r.prefix).collect();
                prefixes.sort();
                prefixes.dedup();
                assert_eq!(prefixes.len(), 4, "{runs:?}");
            }
        }
    }

    #[test]
    fn resumed_upload_runs_both_variants_a_b_b_a_alternating_by_repetition() {
        let order = ["regstore", "object_store", "curl"];
        let scen = |rep| -> Vec<&str> {
            run_order("resumed-upload", rep, &order)
                .iter()
                .map(|r| r.scenario)
                .collect()
        };
        assert_eq!(
            scen(0),
            [
                "upload-fresh",
                "upload-resumed",
                "upload-resumed",
                "upload-fresh"
            ]
        );
        assert_eq!(
            scen(1),
            [
                "upload-resumed",
                "upload-fresh",
                "upload-fresh",
                "upload-resumed"
            ]
        );
        let runs = run_order("resumed-upload", 0, &order);
        assert!(runs.iter().all(|r| r.client == "regstore"));
        let mut prefixes: Vec<&String> = runs.iter().map(|r| &r.prefix).collect();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), 4, "{runs:?}");
    }
}
