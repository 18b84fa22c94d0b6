//! regstore's task runner (`cargo xtask …`, alias in `.cargo/config.toml`).
//!
//! CI logic lives here in Rust rather than in shell so that `.ci/run`, the GitHub workflow and a
//! developer's terminal run exactly the same steps. Every step is printed before it runs with its
//! elapsed time after; a failure names the step.

mod bench;
mod bench_gc;
mod deny;
mod distribution;
mod fuzz;
mod module_cycles;
mod package;
mod runner;
mod servers;
mod soak;
mod writer_model;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use runner::Runner;
use servers::{Kind, Mode, Server, ServerInfo};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "regstore developer and CI tasks",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the conformance suite against one backend; exits non-zero on any failure.
    Conformance(ConformanceArgs),
    /// Start, show or stop local S3 servers for running `cargo test` by hand.
    Servers {
        #[command(subcommand)]
        action: ServersCmd,
    },
    /// fmt check, clippy -D warnings, docs with warnings denied, then every test of the workspace
    /// with RGW and moto running so the S3 integration tests really run.
    Test {
        /// Run every step even if fmt, clippy or docs fail; fail at the end naming all failures.
        #[arg(long)]
        keep_going: bool,
    },
    /// What `.ci/run` runs after `cargo xtask test`: the main job (`regstore check`), the SigV2
    /// conformance run on RGW and the SigV4 one at the driver's default chunksize.
    Ci,
    /// The shared benchmark scenarios (driver-conformance's `bench` module, also behind
    /// `regstore bench`) against the embedded backends (release build of xtask/bench-embedded).
    Bench(BenchArgs),
    /// regstore's S3 driver vs object_store's S3 backend vs curl on a local Garage
    /// (crates/bench-s3-peers, release build). Extra benchmark arguments go in
    /// REGSTORE_BENCH_ARGS; see docs/benchmarks.md.
    #[command(name = "bench-s3")]
    BenchS3(BenchS3Args),
    /// `regstore gc` vs distribution's `garbage-collect` on a synthetic registry on Garage
    /// (release build; not in CI: ~1 min at 2,000 blobs, 6–10 min at 20,000).
    BenchGc(bench_gc::BenchGcArgs),
    /// Run every cargo-fuzz target of fuzz/ for a bounded time (installs cargo-fuzz under
    /// target/tools; RUSTC_BOOTSTRAP=1 lets the stable toolchain build them).
    Fuzz(FuzzArgs),
    /// cargo-deny licence, ban and source checks of deny.toml (offline); --advisories adds the
    /// advisory check, which fetches the RustSec database from GitHub.
    Deny {
        #[arg(long)]
        advisories: bool,
    },
    /// `cargo package` of every published crate (offline-capable, --no-verify) and
    /// cargo-machete's unused-dependency check (installs it under target/tools).
    Package,
    /// The model-based writer tests (generated sequences against a model of the writer
    /// contract) on one backend for longer than the test suite runs them.
    WriterModel(WriterModelCli),
    /// Bounded soak of the S3 driver through the fault-injection proxy on RGW: concurrent
    /// writers and readers, SHA-256 verification, no lost objects, no leaked uploads.
    Soak(SoakCli),
    /// Differential tests of `regstore gc` against distribution's `garbage-collect` on the
    /// filesystem and on RGW, the live test and the mid-sweep cut-off (installs docker-registry
    /// and skopeo with apt when missing; starts RGW unless REGSTORE_S3_* names a server).
    GcDiff,
    /// Fails when the top-level modules of a crate import each other in a cycle (textual
    /// check of `crate::`/`super::` paths; part of `cargo xtask test`).
    ModuleCycles,
}

#[derive(Args)]
struct ConformanceArgs {
    /// Backend under test.
    #[arg(long, value_enum)]
    backend: Backend,
    /// S3 server to start (s3 backend only; ignored when REGSTORE_S3_ENDPOINT is set).
    #[arg(long, value_enum, default_value_t = ServerArg::Rgw)]
    server: ServerArg,
    /// Request signing for the s3 backend.
    #[arg(long, value_enum, default_value_t = Sig::V4)]
    sig: Sig,
    /// Also run the large cases (the 5 GiB stream): REGSTORE_CONFORMANCE_LARGE=1, --include-ignored.
    #[arg(long)]
    large: bool,
    /// Run the exhaustive variants of the cases: REGSTORE_CONFORMANCE_FULL=1.
    #[arg(long)]
    full: bool,
    /// The s3 driver's `chunksize` in bytes, or `default` for none (the driver's 10 MiB):
    /// REGSTORE_S3_CHUNKSIZE. Without it the tests' 5 MiB.
    #[arg(long, value_parser = parse_chunksize)]
    chunksize: Option<String>,
}

/// Checks `--chunksize` here so a typo fails before a server is started.
fn parse_chunksize(s: &str) -> Result<String, String> {
    if s.eq_ignore_ascii_case("default") || s.parse::<u64>().is_ok() {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is neither a byte count nor `default`"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    Inmemory,
    Filesystem,
    S3,
}

impl Backend {
    fn package(self) -> &'static str {
        match self {
            Backend::Inmemory => "regstore-driver-inmemory",
            Backend::Filesystem => "regstore-driver-filesystem",
            Backend::S3 => "regstore-driver-s3",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerArg {
    Rgw,
    Moto,
}

impl ServerArg {
    fn kind(self) -> Kind {
        match self {
            ServerArg::Rgw => Kind::Rgw,
            ServerArg::Moto => Kind::Moto,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Sig {
    V4,
    V2,
}

#[derive(Subcommand)]
enum ServersCmd {
    /// Start servers that keep running after xtask exits, and print their `export` lines.
    Up {
        #[arg(value_enum, default_value_t = Which::All)]
        which: Which,
    },
    /// Print the `export` lines for the running servers: `eval "$(cargo xtask servers env)"`.
    Env,
    /// Stop the servers started by `servers up`.
    Down,
    /// Start servers for the duration of one command, run it with the environment contract set,
    /// then stop them (whatever the command's outcome): `servers exec all -- cargo test -p …`.
    Exec {
        #[arg(value_enum)]
        which: Which,
        /// Signing announced in REGSTORE_S3_V4AUTH.
        #[arg(long, value_enum, default_value_t = Sig::V4)]
        sig: Sig,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Rgw,
    Moto,
    All,
}

#[derive(Args)]
struct SoakCli {
    /// How long the workers run (at most 6 h).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent writer/reader tasks.
    #[arg(long, default_value_t = 64)]
    workers: u32,
    /// Fraction of requests the proxy faults (0-1).
    #[arg(long, default_value_t = 0.2)]
    rate: f64,
    /// Seed of the faults and the workers' choices (default: the clock).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct WriterModelCli {
    /// Backend under test (s3: Ceph RGW, started unless REGSTORE_S3_ENDPOINT is set).
    #[arg(long, value_enum, default_value_t = Backend::S3)]
    backend: Backend,
    /// Request signing for the s3 backend.
    #[arg(long, value_enum, default_value_t = Sig::V4)]
    sig: Sig,
    /// Seconds per part size (S3 runs 5 MiB, 10 MiB and 7 MiB + 1 side by side).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// First seed (default: from the clock; printed so a failure reproduces).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct FuzzArgs {
    /// Seconds per target (libFuzzer -max_total_time).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Only these targets (repeatable); all of them when omitted.
    #[arg(long = "target")]
    targets: Vec<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// Embedded backend to benchmark (inmemory or filesystem); both when omitted. S3 is
    /// `cargo xtask bench-s3`.
    #[arg(long, value_parser = embedded_backend)]
    backend: Option<Backend>,
    /// Repetitions of each operation.
    #[arg(long, default_value_t = 10)]
    iterations: u32,
    /// Include the 1 GiB put/get and stream benchmarks.
    #[arg(long)]
    large: bool,
    /// Only the benchmarks whose name contains this.
    #[arg(long)]
    filter: Option<String>,
}

/// `--backend` of `cargo xtask bench`: the embedded backends only, and a pointer to
/// `bench-s3` instead of a silent switch to a benchmark that takes other options.
fn embedded_backend(s: &str) -> Result<Backend, String> {
    match s {
        "inmemory" => Ok(Backend::Inmemory),
        "filesystem" => Ok(Backend::Filesystem),
        "s3" => Err(
            "S3 is benchmarked by `cargo xtask bench-s3 [--filter TEXT]` (regstore vs \
                     object_store vs curl on Garage); it takes neither --iterations nor --large"
                .into(),
        ),
        _ => Err(format!(
            "unknown backend {s:?}: expected inmemory or filesystem"
        )),
    }
}

#[derive(Args)]
struct BenchS3Args {
    /// Only the scenarios whose name contains this (passed to the benchmark as `--only`).
    #[arg(long)]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    runner::install_interrupt_handler();
    let keep_going = matches!(cli.command, Cmd::Test { keep_going: true });
    let mut r = Runner::new(keep_going);
    let result = match cli.command {
        Cmd::Conformance(args) => conformance(&mut r, &args),
        Cmd::Servers {
            action:
                ServersCmd::Exec {
                    which,
                    sig,
                    command,
                },
        } => servers_exec(&mut r, which, sig, &command),
        Cmd::Servers { action } => servers_cmd(action),
        Cmd::Test { .. } => test(&mut r),
        Cmd::Ci => ci(&mut r),
        Cmd::Bench(args) => bench(&mut r, &args),
        Cmd::BenchS3(args) => bench::s3(&mut r, args.filter.as_deref()),
        Cmd::Fuzz(args) => fuzz::fuzz(&mut r, args.seconds, &args.targets),
        Cmd::Deny { advisories } => deny::deny(&mut r, advisories),
        Cmd::Package => package::package(&mut r),
        Cmd::WriterModel(a) => writer_model::run(
            &mut r,
            &writer_model::WriterModelArgs {
                backend: a.backend,
                sig: a.sig,
                seconds: a.seconds,
                seed: a.seed,
            },
        ),
        Cmd::Soak(a) => soak::soak(
            &mut r,
            &soak::SoakArgs {
                seconds: a.seconds,
                workers: a.workers,
                rate: a.rate,
                seed: a.seed,
            },
        ),
        Cmd::GcDiff => distribution::gc_diff(&mut r),
        Cmd::ModuleCycles => r.stage("module cycles", "", || {
            module_cycles::module_cycles(&workspace_root())
        }),
        Cmd::BenchGc(a) => bench_gc::bench_gc(&mut r, &a),
    };
    r.summary();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    // `cargo run` (how `cargo xtask` starts) gives xtask its own package variables. Build
    // scripts that declare `rerun-if-env-changed` on them (ring does, for CARGO_MANIFEST_DIR and
    // CARGO_PKG_*) would otherwise see other values than under a plain `cargo`, and rebuild
    // themselves and everything above them on every switch between the two.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if is_package_variable(name) {
                cmd.env_remove(name);
            }
        }
    }
    cmd
}

/// The variables cargo sets for the package it runs or builds, as opposed to configuration
/// (`CARGO`, `CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_INCREMENTAL`, …), which children inherit.
fn is_package_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

/// An S3 server for a run: one xtask started (stopped when dropped) or one the developer announced
/// in the environment.
enum Target {
    Started(Server),
    External(ServerInfo),
}

impl Target {
    fn info(&self) -> &ServerInfo {
        match self {
            Target::Started(s) => &s.info,
            Target::External(i) => i,
        }
    }
}

fn start_server(r: &mut Runner, kind: Kind) -> Result<Target> {
    let label = format!("start {}", kind.name());
    let server = r.stage(
        &label,
        "on 127.0.0.1, fresh keys, under target/servers/",
        || servers::start(kind, Mode::Attached),
    )?;
    eprintln!("    {} is at {}", kind.name(), server.info.endpoint);
    Ok(Target::Started(server))
}

/// The S3 server for `REGSTORE_S3_*`: the one in the environment, or a fresh `kind` server.
pub(crate) fn s3_target(r: &mut Runner, kind: Kind) -> Result<Target> {
    match ServerInfo::from_s3_env()? {
        Some(info) => {
            eprintln!(
                "==> using the S3 server from REGSTORE_S3_ENDPOINT ({}, {})",
                info.endpoint,
                info.kind.name()
            );
            Ok(Target::External(info))
        }
        None => start_server(r, kind),
    }
}

/// The bucket for a run: the environment's, a fixed name on a fresh server, a unique one on a
/// shared server so concurrent runs of several developers do not meet.
pub(crate) fn bucket_for(target: &Target) -> String {
    if let Ok(b) = std::env::var("REGSTORE_S3_BUCKET") {
        if !b.is_empty() {
            return b;
        }
    }
    match target {
        Target::Started(_) => "regstore-conformance".into(),
        Target::External(_) => format!("regstore-xtask-{}", servers::random_hex(4)),
    }
}

fn conformance(r: &mut Runner, args: &ConformanceArgs) -> Result<()> {
    conformance_runs(r, std::slice::from_ref(args))
}

/// The `cargo test` command and step label of one conformance run (server environment not set).
fn conformance_command(args: &ConformanceArgs) -> (Command, String) {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        args.backend.package(),
        "--test",
        "conformance",
    ]);
    if args.full {
        cmd.env("REGSTORE_CONFORMANCE_FULL", "1");
    }
    if args.large {
        cmd.env("REGSTORE_CONFORMANCE_LARGE", "1");
        cmd.args(["--", "--include-ignored"]);
    }
    if let Some(c) = &args.chunksize {
        cmd.env("REGSTORE_S3_CHUNKSIZE", c);
    }
    let backend_label = match args.backend {
        Backend::Inmemory => "inmemory".to_string(),
        Backend::Filesystem => "filesystem".to_string(),
        Backend::S3 => format!(
            "s3 ({}, sig {}, chunksize {})",
            args.server.kind().name(),
            if args.sig == Sig::V4 { "v4" } else { "v2" },
            args.chunksize.as_deref().unwrap_or("5 MiB")
        ),
    };
    (cmd, format!("conformance {backend_label}"))
}

/// Runs the suite once per entry of `runs`, which share one backend (and for S3 one server
/// kind): S3 runs share one build and one server start-up. Every run goes ahead even if an
/// earlier one failed; the first failure is returned.
fn conformance_runs(r: &mut Runner, runs: &[ConformanceArgs]) -> Result<()> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    if runs
        .iter()
        .any(|a| a.backend != first.backend || a.server != first.server)
    {
        bail!("internal: conformance runs of one call must share backend and server");
    }
    let mut result = Ok(());
    if first.backend != Backend::S3 {
        for a in runs {
            let (mut cmd, label) = conformance_command(a);
            let run = r.run(&label, &mut cmd);
            result = result.and(run);
        }
        return result;
    }
    // Compile first so the server does not sit idle (and a compile error does not cost a start-up).
    let mut build = cargo();
    build.args([
        "test",
        "-p",
        first.backend.package(),
        "--test",
        "conformance",
        "--no-run",
    ]);
    r.run("build conformance tests", &mut build)?;
    let target = s3_target(r, first.server.kind())?;
    let bucket = bucket_for(&target);
    for a in runs {
        let (mut cmd, label) = conformance_command(a);
        cmd.envs(target.info().s3_env(a.sig == Sig::V4, &bucket));
        let run = r.run(&label, &mut cmd);
        result = result.and(run);
    }
    drop(target);
    result
}

fn test(r: &mut Runner) -> Result<()> {
    r.check("cargo fmt", cargo().args(["fmt", "--all", "--check"]))?;
    r.stage("module cycles", "", || {
        module_cycles::module_cycles(&workspace_root())
    })?;
    r.check(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    r.check(
        "cargo doc",
        cargo()
            .env("RUSTDOCFLAGS", "-Dwarnings")
            .args(["doc", "--workspace", "--no-deps"]),
    )?;
    r.run(
        "build tests",
        cargo().args(["test", "--workspace", "--no-run"]),
    )?;
    // Tests that start their own moto (authentication enforced: driver-s3's aws_credentials,
    // the CLI's keyless test) need it installed even when an external moto serves the rest;
    // the proxy tests start Debian's tinyproxy.
    servers::ensure_moto_installed()?;
    servers::ensure_tinyproxy_installed()?;
    let rgw = s3_target(r, Kind::Rgw)?;
    let moto = match ServerInfo::from_moto_env() {
        Some(info) => {
            eprintln!(
                "==> using moto from REGSTORE_MOTO_ENDPOINT ({})",
                info.endpoint
            );
            Target::External(info)
        }
        None => start_server(r, Kind::Moto)?,
    };
    let bucket = bucket_for(&rgw);
    let mut cmd = cargo();
    // --no-fail-fast: every test binary runs and prints its summary, so one failing crate does not
    // hide the state of the others.
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .envs(rgw.info().s3_env(true, &bucket))
        .env("REGSTORE_MOTO_ENDPOINT", &moto.info().endpoint);
    r.check("cargo test", &mut cmd)?;
    rustls_configuration(r, rgw.info().s3_env(true, &bucket), &moto.info().endpoint)?;
    r.finish()
}

/// The S3 driver built with rustls instead of native-tls: no OpenSSL in its dependency graph,
/// and its unit tests and network tests (CA bundles, proxies) pass with that stack.
fn rustls_configuration(
    r: &mut Runner,
    s3_env: Vec<(&'static str, String)>,
    moto_endpoint: &str,
) -> Result<()> {
    const FEATURES: [&str; 4] = [
        "-p",
        "regstore-driver-s3",
        "--no-default-features",
        "--features=rustls-webpki-roots",
    ];
    eprintln!("==> rustls build: checking the dependency graph for OpenSSL");
    let out = cargo()
        .args(["tree", "-e", "normal,build", "--prefix", "none"])
        .args(FEATURES)
        .output()
        .context("cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // openssl-probe (a pure-Rust search for CA files, through rusoto_core's rustls) is fine.
    let tree = String::from_utf8_lossy(&out.stdout);
    let linked: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("openssl") && !l.starts_with("openssl-probe")) || l.contains("native-tls")
        })
        .collect();
    if !linked.is_empty() {
        bail!(
            "the rustls build of regstore-driver-s3 still depends on OpenSSL: {}",
            linked.join(", ")
        );
    }
    let mut cmd = cargo();
    cmd.arg("test")
        .args(FEATURES)
        .args(["--lib", "--test", "network", "--test", "aws_credentials"])
        .envs(s3_env)
        .env("REGSTORE_MOTO_ENDPOINT", moto_endpoint);
    r.check("cargo test (driver-s3 with rustls)", &mut cmd)
}

fn ci(r: &mut Runner) -> Result<()> {
    // The README's main job: the CLI's `check` (the conformance suite in a scratch prefix of the
    // configured backend, here the embedded filesystem default). A debug build shares the test
    // build's artifacts; the README shows the release form for people.
    let mut cmd = cargo();
    cmd.args(["run", "-p", "regstore-cli", "--", "check"]);
    r.check("regstore check", &mut cmd)?;
    // SigV4 on RGW at 5 MiB parts already ran inside `cargo xtask test`. On one more RGW:
    // SigV2, and the suite at the driver's default `chunksize` (10 MiB, no parameter) as a
    // registry without one runs it, so part-boundary cases straddle 10 MiB parts.
    let s3 = |sig, chunksize: Option<&str>| ConformanceArgs {
        backend: Backend::S3,
        server: ServerArg::Rgw,
        sig,
        large: false,
        full: false,
        chunksize: chunksize.map(str::to_owned),
    };
    conformance_runs(r, &[s3(Sig::V2, None), s3(Sig::V4, Some("default"))])?;
    // The writer model with SigV2 (SigV4 ran inside `cargo xtask test`), fixed seeds.
    writer_model::run(
        r,
        &writer_model::WriterModelArgs {
            backend: Backend::S3,
            sig: Sig::V2,
            seconds: 20,
            seed: Some(1),
        },
    )?;
    // regstore gc against distribution's own garbage-collect on the same store, filesystem and
    // RGW, plus the live test (installs Debian's docker-registry and skopeo when missing).
    distribution::gc_diff(r)
}

fn servers_exec(r: &mut Runner, which: Which, sig: Sig, command: &[String]) -> Result<()> {
    let Some((program, args)) = command.split_first() else {
        bail!("no command given after `--`");
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    // Held until the command has finished; dropping them stops the servers.
    let mut targets = Vec::new();
    if which != Which::Moto {
        let rgw = s3_target(r, Kind::Rgw)?;
        cmd.envs(rgw.info().s3_env(sig == Sig::V4, &bucket_for(&rgw)));
        targets.push(rgw);
    }
    if which != Which::Rgw {
        let moto = match ServerInfo::from_moto_env() {
            Some(info) => Target::External(info),
            None => start_server(r, Kind::Moto)?,
        };
        if which == Which::Moto {
            cmd.envs(moto.info().s3_env(sig == Sig::V4, &bucket_for(&moto)));
        }
        cmd.env("REGSTORE_MOTO_ENDPOINT", &moto.info().endpoint);
        targets.push(moto);
    }
    let result = r.run("command", &mut cmd);
    let t = std::time::Instant::now();
    drop(targets);
    eprintln!("==> servers stopped in {:.1}s", t.elapsed().as_secs_f64());
    result
}

fn servers_cmd(action: ServersCmd) -> Result<()> {
    match action {
        ServersCmd::Exec { .. } => bail!("internal: exec is dispatched in main"),
        ServersCmd::Up { which } => {
            let kinds: &[Kind] = match which {
                Which::Rgw => &[Kind::Rgw],
                Which::Moto => &[Kind::Moto],
                Which::All => &[Kind::Rgw, Kind::Moto],
            };
            for &kind in kinds {
                if let Some(p) = servers::load_persisted(kind)? {
                    if p.alive() {
                        eprintln!("{} already running at {}", kind.name(), p.info.endpoint);
                        continue;
                    }
                    eprintln!("{}: stale state (processes gone), restarting", kind.name());
                    p.stop()?;
                }
                eprintln!("==> starting {} (detached)", kind.name());
                let t = std::time::Instant::now();
                let info = servers::start(kind, Mode::Detached)?.persist()?;
                eprintln!(
                    "    {} ready at {} in {:.1}s",
                    kind.name(),
                    info.endpoint,
                    t.elapsed().as_secs_f64()
                );
            }
            print_env()
        }
        ServersCmd::Env => print_env(),
        ServersCmd::Down => {
            let mut any = false;
            for kind in [Kind::Rgw, Kind::Moto] {
                if let Some(p) = servers::load_persisted(kind)? {
                    eprintln!("stopping {} ({})", kind.name(), p.info.endpoint);
                    p.stop()?;
                    any = true;
                }
            }
            if !any {
                eprintln!(
                    "no servers recorded under {}",
                    servers::servers_root().display()
                );
            }
            Ok(())
        }
    }
}

/// `export` lines for the servers `servers up` started: RGW (or, without it, moto) for
/// `REGSTORE_S3_*`, moto for `REGSTORE_MOTO_ENDPOINT`.
fn print_env() -> Result<()> {
    let mut live = Vec::new();
    for kind in [Kind::Rgw, Kind::Moto] {
        if let Some(p) = servers::load_persisted(kind)? {
            if p.alive() {
                live.push(p.info.clone());
            } else {
                eprintln!(
                    "{}: recorded but no longer running; `cargo xtask servers up` restarts it",
                    kind.name()
                );
            }
        }
    }
    if live.is_empty() {
        bail!("no servers running; start them with `cargo xtask servers up`");
    }
    let s3 = live
        .iter()
        .find(|i| i.kind == Kind::Rgw)
        .or_else(|| live.first());
    if let Some(info) = s3 {
        for (k, v) in info.s3_env(true, "regstore-dev") {
            println!("export {k}={v}");
        }
    }
    if let Some(moto) = live.iter().find(|i| i.kind == Kind::Moto) {
        println!("export REGSTORE_MOTO_ENDPOINT={}", moto.endpoint);
    }
    Ok(())
}

fn bench(r: &mut Runner, args: &BenchArgs) -> Result<()> {
    let backends: Vec<&str> = match args.backend {
        Some(Backend::Inmemory) => vec!["inmemory"],
        Some(Backend::Filesystem) => vec!["filesystem"],
        // `embedded_backend` never yields S3; keep the error should that change.
        Some(Backend::S3) => bail!("--backend s3: use `cargo xtask bench-s3`"),
        None => vec!["inmemory", "filesystem"],
    };
    let out = workspace_root().join("target").join("bench");
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "xtask-bench-embedded",
        "--",
    ]);
    for b in backends {
        cmd.args(["--backend", b]);
    }
    cmd.arg("--iterations")
        .arg(args.iterations.to_string())
        .arg("--scratch")
        .arg(out.join("scratch"))
        .arg("--json")
        .arg(out.join("embedded.json"));
    if args.large {
        cmd.arg("--large");
    }
    if let Some(f) = &args.filter {
        cmd.args(["--filter", f]);
    }
    r.run("bench (release build)", &mut cmd)
}

#[cfg(test)]
mod tests {
    use super::is_package_variable;

    #[test]
    fn package_variables_are_dropped_configuration_is_kept() {
        for v in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_PRE",
            "CARGO_CRATE_NAME",
        ] {
            assert!(is_package_variable(v), "{v}");
        }
        for v in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_TERM_COLOR",
        ] {
            assert!(!is_package_variable(v), "{v}");
        }
    }
}
