//! `cargo xtask bench-s3`: Garage on 127.0.0.1, then `regstore-bench-s3-peers run`
//! (crates/bench-s3-peers) measuring regstore's S3 driver, object_store's S3 backend and curl
//! side by side.
//!
//! Garage is installed once with `cargo install garage@2.5.0 --locked --root target/tools`
//! (about 7 minutes on 2 cores) and reused from there. Each run starts a fresh single-node
//! Garage under `target/bench/garage/` (metadata on sqlite, compression off so the server does
//! not spend the machine's two cores compressing incompressible bytes), imports a throw-away key,
//! creates the bucket with `garage bucket create` + `garage bucket allow`, runs the benchmark, and
//! stops the server whatever the outcome.
//!
//! Outputs: `target/bench/s3.json` (every sample, medians, target checks), `target/bench/s3.md`
//! (the table of `docs/benchmarks.md`), `docs/benchmarks/s3.svg` (the chart).
//! Extra arguments for the benchmark binary (`--reps 5`, `--size-mib 256`, …) go in
//! `REGSTORE_BENCH_ARGS`, split on whitespace. `REGSTORE_BENCH_BIN` names a
//! `regstore-bench-s3-peers` built earlier to run instead of building one (before/after
//! comparisons on the same set-up).

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::runner::Runner;
use crate::{cargo, servers, workspace_root};

pub(crate) const GARAGE_VERSION: &str = "2.5.0";

/// The parts in flight that both libraries are configured with, and the part size (MiB).
const CONCURRENCY: usize = 4;
const CHUNK_MIB: u64 = 10;

fn garage_bin() -> PathBuf {
    workspace_root()
        .join("target")
        .join("tools")
        .join("bin")
        .join("garage")
}

/// Installs Garage under target/tools unless the right version is already there.
pub(crate) fn ensure_garage(r: &mut Runner) -> Result<PathBuf> {
    let bin = garage_bin();
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(GARAGE_VERSION))
        .unwrap_or(false);
    if !installed {
        let mut cmd = cargo();
        cmd.args([
            "install",
            &format!("garage@{GARAGE_VERSION}"),
            "--locked",
            "--root",
        ])
        .arg(workspace_root().join("target").join("tools"));
        r.run("install garage (once; ~7 min on 2 cores)", &mut cmd)?;
    }
    Ok(bin)
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// A running Garage, killed when dropped.
pub(crate) struct Garage {
    child: Child,
    pub(crate) endpoint: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) bucket: String,
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn garage_cmd(bin: &Path, cfg: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run garage {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "garage {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn start_garage(bin: &Path, dir: &Path) -> Result<Garage> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir.join("meta"))?;
    fs::create_dir_all(dir.join("data"))?;
    let (s3, rpc, admin) = (free_port()?, free_port()?, free_port()?);
    if s3 == rpc || rpc == admin || s3 == admin {
        bail!("port collision while picking free ports; run again");
    }
    let cfg = dir.join("garage.toml");
    fs::write(
        &cfg,
        format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
            secret = servers::random_hex(32),
        ),
    )?;
    let log = fs::File::create(dir.join("garage.log"))?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&cfg)
        .arg("server")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start garage server")?;
    let mut g = Garage {
        child,
        endpoint: format!("http://127.0.0.1:{s3}"),
        access_key: format!("GK{}", servers::random_hex(12)),
        secret_key: servers::random_hex(32),
        bucket: "regstore-bench".into(),
    };
    let t = Instant::now();
    let status = loop {
        if let Some(st) = g.child.try_wait()? {
            bail!(
                "garage exited at start-up ({st}); see {}",
                dir.join("garage.log").display()
            );
        }
        match garage_cmd(bin, &cfg, &["status"]) {
            Ok(s) if s.contains(&format!("127.0.0.1:{rpc}")) => break s,
            _ if t.elapsed() > Duration::from_secs(30) => {
                bail!(
                    "garage not ready after 30 s; see {}",
                    dir.join("garage.log").display()
                )
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let node = status
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{rpc}")))
        .and_then(|l| l.split_whitespace().next())
        .context("node id not found in `garage status`")?
        .to_owned();
    garage_cmd(
        bin,
        &cfg,
        &["layout", "assign", "-z", "dc1", "-c", "100G", &node],
    )?;
    garage_cmd(bin, &cfg, &["layout", "apply", "--version", "1"])?;
    garage_cmd(
        bin,
        &cfg,
        &[
            "key",
            "import",
            "--yes",
            "-n",
            "bench",
            &g.access_key,
            &g.secret_key,
        ],
    )?;
    garage_cmd(bin, &cfg, &["bucket", "create", &g.bucket])?;
    garage_cmd(
        bin,
        &cfg,
        &[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &g.bucket,
            "--key",
            &g.access_key,
        ],
    )?;
    // The S3 port answers once the layout is applied.
    let t = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, s3)).is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("garage's S3 port {s3} not open after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    g.endpoint = format!("http://127.0.0.1:{s3}");
    Ok(g)
}

/// The S3 benchmark; `filter` keeps the scenarios whose name contains it.
pub fn s3(r: &mut Runner, filter: Option<&str>) -> Result<()> {
    let root = workspace_root();
    let bench_manifest = root
        .join("crates")
        .join("bench-s3-peers")
        .join("Cargo.toml");
    let target = root.join("target");
    let out = target.join("bench");
    // REGSTORE_BENCH_BIN runs a binary built earlier (for example from another commit, to
    // measure before and after a change on the same Garage set-up) instead of building one.
    let bench_bin = match std::env::var_os("REGSTORE_BENCH_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let mut build = cargo();
            build
                .args(["build", "--release", "--manifest-path"])
                .arg(&bench_manifest)
                .arg("--target-dir")
                .arg(&target);
            r.run("build regstore-bench-s3-peers (release)", &mut build)?;
            target.join("release").join("regstore-bench-s3-peers")
        }
    };
    let bin = ensure_garage(r)?;
    let garage = r.stage(
        "start garage",
        "single node on 127.0.0.1 under target/bench/garage",
        || start_garage(&bin, &out.join("garage")),
    )?;
    eprintln!("    garage is at {}", garage.endpoint);
    let mut cmd = Command::new(&bench_bin);
    cmd.current_dir(&root)
        .arg("run")
        .arg("--scratch")
        .arg(out.join("scratch"))
        .arg("--json")
        .arg(out.join("s3.json"))
        .arg("--markdown")
        .arg(out.join("s3.md"))
        .arg("--svg")
        .arg(root.join("docs").join("benchmarks").join("s3.svg"))
        .args([
            "--server",
            &format!("Garage {GARAGE_VERSION} (single node, sqlite, no compression)"),
        ])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(["--chunk-size-mib", &CHUNK_MIB.to_string()])
        // The same in-flight limit object_store gets (also the driver's default, stated so the
        // comparison does not silently change with it).
        .args([
            "--driver-param",
            &format!("multipartuploadconcurrency={CONCURRENCY}"),
        ])
        .env("REGSTORE_S3_ENDPOINT", &garage.endpoint)
        .env("REGSTORE_S3_ACCESS_KEY", &garage.access_key)
        .env("REGSTORE_S3_SECRET_KEY", &garage.secret_key)
        .env("REGSTORE_S3_REGION", "us-east-1")
        .env("REGSTORE_S3_BUCKET", &garage.bucket);
    if let Some(f) = filter {
        cmd.args(["--only", f]);
    }
    if let Ok(extra) = std::env::var("REGSTORE_BENCH_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let result = r.run("bench s3: regstore vs object_store vs curl", &mut cmd);
    drop(garage);
    result
}
