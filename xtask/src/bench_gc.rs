//! `cargo xtask bench-gc [--blobs N]…`: `regstore gc` against distribution's own
//! `docker-registry garbage-collect` (Debian's 2.8.2) on the same Garage, in one run.
//!
//! For each size, `regstore-bench-s3-peers gc-fill` (crates/bench-s3-peers/src/gcfill.rs) writes two identical
//! synthetic registries through regstore's S3 driver, under the root directories
//! `/gc<N>-regstore` and `/gc<N>-distribution` of one bucket (20 blobs, 5 manifests and 49
//! objects per repository; with `-m` 25 % of the blobs and one manifest per repository are
//! garbage). Then, each under `/usr/bin/time` (wall time, peak RSS) with Garage's request counter
//! (`api_s3_request_counter` of its admin `/metrics`) read before and after:
//! `regstore gc --dry-run -m`, `docker-registry garbage-collect --dry-run -m`, and the real
//! runs of both, each on its own copy. Both dry runs must find exactly the planted garbage, and
//! a dry run after regstore's real run nothing.
//!
//! Release builds of `regstore` and `regstore-bench-s3-peers`. Outputs `target/bench/gc.json`,
//! `target/bench/gc.md` (the table of docs/benchmarks.md) and `docs/benchmarks/gc.svg`.
//! Not part of CI: about 1 min at 2,000 blobs and 6–10 min at 20,000 on 2 loaded cores,
//! most of it filling the store and distribution's serial run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::bench::{ensure_garage, start_garage, Garage, GARAGE_VERSION};
use crate::runner::Runner;
use crate::servers::{apt_get, which};
use crate::{cargo, workspace_root};

/// Options of `cargo xtask bench-gc`.
#[derive(clap::Args)]
pub struct BenchGcArgs {
    /// Blob counts to measure (multiples of 20; repeatable).
    #[arg(long = "blobs", default_values_t = [2000usize, 20000])]
    blobs: Vec<usize>,
    /// `regstore gc --jobs`.
    #[arg(long, default_value_t = 32)]
    jobs: u16,
    /// Delay every request of both tools by this many milliseconds (regstore-fault-proxy with
    /// every request stalled), as a remote S3 would; outputs then go to `gc-latency<N>.*`.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

/// One measured command.
#[derive(Debug, Clone, serde::Serialize)]
struct Run {
    blobs: usize,
    tool: &'static str,
    mode: &'static str,
    seconds: f64,
    peak_rss_mib: f64,
    requests: u64,
    by_operation: BTreeMap<String, u64>,
    eligible_blobs: Option<usize>,
    eligible_manifests: Option<usize>,
}

/// What the synthetic registry holds (printed by `regstore-bench-s3-peers gc-fill`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct Fill {
    repositories: usize,
    blobs: usize,
    manifests: usize,
    objects: u64,
    garbage_blobs_untagged: usize,
    garbage_manifests_untagged: usize,
    seconds: f64,
}

struct Ctx<'a> {
    garage: &'a Garage,
    /// The endpoint the measured tools use (Garage, or the delaying proxy in front of it).
    tool_endpoint: String,
    metrics_url: String,
    regstore: PathBuf,
    bench: PathBuf,
    dir: PathBuf,
}

impl Ctx<'_> {
    /// Garage's S3 request counters by endpoint.
    fn counters(&self) -> Result<BTreeMap<String, u64>> {
        let out = Command::new("curl")
            .args(["-sf", &self.metrics_url])
            .output()
            .context("curl Garage's /metrics")?;
        if !out.status.success() {
            bail!("GET {} failed", self.metrics_url);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("api_s3_request_counter{") else {
                continue;
            };
            let ep = rest
                .split("api_endpoint=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("?")
                .to_owned();
            let v: f64 = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            *m.entry(ep).or_insert(0) += v as u64;
        }
        if m.is_empty() {
            bail!("no api_s3_request_counter in Garage's /metrics");
        }
        Ok(m)
    }

    fn s3_env(&self, cmd: &mut Command) {
        let g = self.garage;
        cmd.env("REGSTORE_S3_ENDPOINT", &g.endpoint)
            .env("REGSTORE_S3_ACCESS_KEY", &g.access_key)
            .env("REGSTORE_S3_SECRET_KEY", &g.secret_key)
            .env("REGSTORE_S3_REGION", "us-east-1")
            .env("REGSTORE_S3_BUCKET", &g.bucket);
    }

    fn fill(&self, root: &str, blobs: usize) -> Result<Fill> {
        let mut cmd = Command::new(&self.bench);
        cmd.args(["gc-fill", "--root", root, "--blobs", &blobs.to_string()]);
        self.s3_env(&mut cmd);
        let out = cmd.stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            bail!(
                "regstore-bench-s3-peers gc-fill --root {root} failed ({})",
                out.status
            );
        }
        serde_json::from_slice(&out.stdout).context("gc-fill's report")
    }

    /// distribution's config.yml for the registry under `root` (regstore reads the same file).
    fn config(&self, root: &str) -> Result<PathBuf> {
        let g = self.garage;
        let path = self
            .dir
            .join(format!("config{}.yml", root.replace('/', "-")));
        fs::write(
            &path,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  delete:\n    enabled: true\n  \
                 s3:\n    accesskey: {}\n    secretkey: {}\n    region: us-east-1\n    \
                 regionendpoint: {}\n    bucket: {}\n    rootdirectory: {root}\n    secure: false\n    \
                 v4auth: true\nhttp:\n  addr: 127.0.0.1:0\n",
                g.access_key, g.secret_key, self.tool_endpoint, g.bucket
            ),
        )?;
        Ok(path)
    }

    /// Runs `cmd` under `/usr/bin/time`, counting Garage's requests; returns the run and stdout.
    fn measure(
        &self,
        cmd: Command,
        blobs: usize,
        tool: &'static str,
        mode: &'static str,
    ) -> Result<(Run, String)> {
        let timing = self.dir.join("time.txt");
        let mut timed = Command::new("/usr/bin/time");
        timed
            .args(["-f", "%e %M", "-o"])
            .arg(&timing)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => timed.env(k, v),
                None => timed.env_remove(k),
            };
        }
        let before = self.counters()?;
        let t = Instant::now();
        let out = timed
            .output()
            .with_context(|| format!("run {tool} {mode}"))?;
        let wall = t.elapsed().as_secs_f64();
        let after = self.counters()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "{tool} {mode} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        let time = fs::read_to_string(&timing).unwrap_or_default();
        let rss_kib: f64 = time
            .lines()
            .last()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let by_operation: BTreeMap<String, u64> = after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let (eb, em) = summary(&stdout);
        let run = Run {
            blobs,
            tool,
            mode,
            seconds: wall,
            peak_rss_mib: rss_kib / 1024.0,
            requests: by_operation.values().sum(),
            by_operation,
            eligible_blobs: eb,
            eligible_manifests: em,
        };
        eprintln!(
            "    {tool:<12} {mode:<8} {:>8.2} s {:>7.1} MiB {:>7} requests {:?}",
            run.seconds, run.peak_rss_mib, run.requests, run.by_operation
        );
        Ok((run, stdout))
    }

    fn regstore(&self, cfg: &Path, dry: bool, jobs: u16) -> Command {
        let mut c = Command::new(&self.regstore);
        c.arg("--config")
            .arg(cfg)
            .args(["gc", "-m", "--min-age", "0s", "--jobs"]);
        c.arg(jobs.to_string());
        if dry {
            c.arg("--dry-run");
        }
        c
    }

    fn distribution(&self, cfg: &Path, dry: bool) -> Command {
        let mut c = Command::new("docker-registry");
        c.arg("garbage-collect").arg("-m");
        if dry {
            c.arg("--dry-run");
        }
        c.arg(cfg);
        c
    }
}

/// `N blobs marked, M blobs and K manifests eligible for deletion` → (M, K).
fn summary(out: &str) -> (Option<usize>, Option<usize>) {
    for line in out.lines() {
        let Some(i) = line.find(" blobs marked, ") else {
            continue;
        };
        let words: Vec<&str> = line[i + 15..].split_whitespace().collect();
        if let [m, "blobs", "and", k, "manifests", ..] = words.as_slice() {
            return (m.parse().ok(), k.parse().ok());
        }
    }
    (None, None)
}

/// The benchmark.
pub fn bench_gc(r: &mut Runner, args: &BenchGcArgs) -> Result<()> {
    let root = workspace_root();
    let target = root.join("target");
    for n in &args.blobs {
        if *n == 0 || n % 20 != 0 {
            bail!("--blobs {n}: must be a positive multiple of 20");
        }
    }
    let mut build = cargo();
    build.args(["build", "--release", "-p", "regstore-cli"]);
    r.run("build regstore (release)", &mut build)?;
    let mut build = cargo();
    build
        .args(["build", "--release", "--manifest-path"])
        .arg(
            root.join("crates")
                .join("bench-s3-peers")
                .join("Cargo.toml"),
        )
        .arg("--target-dir")
        .arg(&target);
    r.run("build regstore-bench-s3-peers (release)", &mut build)?;
    r.stage(
        "install docker-registry",
        "Debian's distribution 2.8.2",
        || {
            if which("docker-registry").is_some() {
                Ok(())
            } else {
                apt_get(&["install", "-y", "docker-registry"])
            }
        },
    )?;
    let garage_bin = ensure_garage(r)?;
    let dir = target.join("bench").join("gc");
    let garage = r.stage(
        "start garage",
        "single node under target/bench/gc/garage",
        || start_garage(&garage_bin, &dir.join("garage")),
    )?;
    let toml = fs::read_to_string(dir.join("garage").join("garage.toml"))?;
    let admin = toml
        .split("[admin]")
        .nth(1)
        .and_then(|s| s.split('"').nth(1))
        .context("admin address in garage.toml")?
        .to_owned();
    // Killed on every exit path.
    struct Proxy(std::process::Child);
    impl Drop for Proxy {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut proxy = None;
    let mut tool_endpoint = garage.endpoint.clone();
    if args.latency_ms > 0 {
        let bin = target.join("debug").join("regstore-fault-proxy");
        if !bin.exists() {
            let mut b = cargo();
            b.args(["build", "-p", "regstore-fault-proxy"]);
            r.run("build regstore-fault-proxy", &mut b)?;
        }
        let upstream = garage.endpoint.trim_start_matches("http://").to_owned();
        let mut child = Command::new(&bin)
            .args(["--upstream", &upstream, "--rate", "1", "--kinds", "stall"])
            .args([
                "--stall-ms",
                &args.latency_ms.to_string(),
                "--seconds",
                "7200",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start regstore-fault-proxy")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            use std::io::BufRead;
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        proxy = Some(Proxy(child));
        if !line.trim().starts_with("http://") {
            bail!("regstore-fault-proxy printed {line:?}, not its endpoint");
        }
        tool_endpoint = line.trim().to_owned();
        eprintln!(
            "    every request of the tools delayed {} ms by {tool_endpoint}",
            args.latency_ms
        );
    }
    let ctx = Ctx {
        tool_endpoint,
        garage: &garage,
        metrics_url: format!("http://{admin}/metrics"),
        regstore: target.join("release").join("regstore"),
        bench: target.join("release").join("regstore-bench-s3-peers"),
        dir: dir.clone(),
    };
    let mut runs: Vec<Run> = Vec::new();
    let mut fills: Vec<Fill> = Vec::new();
    for &n in &args.blobs {
        let (ra, rb) = (format!("/gc{n}-regstore"), format!("/gc{n}-distribution"));
        eprintln!("==> {n} blobs: filling {ra} and {rb}");
        let fill = ctx.fill(&ra, n)?;
        ctx.fill(&rb, n)?;
        eprintln!(
            "    {} repositories, {} manifests, {} objects per copy ({:.1} s each)",
            fill.repositories, fill.manifests, fill.objects, fill.seconds
        );
        let (ca, cb) = (ctx.config(&ra)?, ctx.config(&rb)?);
        let expect = (
            Some(fill.garbage_blobs_untagged),
            Some(fill.garbage_manifests_untagged),
        );
        let (a, _) = ctx.measure(ctx.regstore(&ca, true, args.jobs), n, "regstore", "dry-run")?;
        let (b, _) = ctx.measure(ctx.distribution(&cb, true), n, "distribution", "dry-run")?;
        for x in [&a, &b] {
            if (x.eligible_blobs, x.eligible_manifests) != expect {
                bail!(
                    "{} --dry-run found {:?} blobs and {:?} manifests, expected {:?}",
                    x.tool,
                    x.eligible_blobs,
                    x.eligible_manifests,
                    expect
                );
            }
        }
        let (c, _) = ctx.measure(ctx.regstore(&ca, false, args.jobs), n, "regstore", "delete")?;
        let (d, _) = ctx.measure(ctx.distribution(&cb, false), n, "distribution", "delete")?;
        let (after, _) =
            ctx.measure(ctx.regstore(&ca, true, args.jobs), n, "regstore", "recheck")?;
        if after.eligible_blobs != Some(0) || after.eligible_manifests != Some(0) {
            bail!("after regstore gc, a dry run still finds {after:?}");
        }
        runs.extend([a, b, c, d]);
        fills.push(fill);
    }
    drop(proxy);
    drop(garage);
    let md = table(&runs, &fills);
    print!("{md}");
    let out = target.join("bench");
    let name = match args.latency_ms {
        0 => "gc".to_owned(),
        ms => format!("gc-latency{ms}"),
    };
    fs::write(out.join(format!("{name}.md")), &md)?;
    fs::write(
        out.join(format!("{name}.json")),
        serde_json::to_string_pretty(&serde_json::json!({
            "server": format!("Garage {GARAGE_VERSION} (single node, sqlite)"),
            "jobs": args.jobs,
            "latency_ms": args.latency_ms,
            "fills": fills,
            "runs": runs,
        }))?,
    )?;
    let svg = root
        .join("docs")
        .join("benchmarks")
        .join(format!("{name}.svg"));
    fs::write(&svg, chart(&runs))?;
    eprintln!(
        "==> target/bench/{name}.md, target/bench/{name}.json, {}",
        svg.display()
    );
    Ok(())
}

fn find<'a>(runs: &'a [Run], n: usize, tool: &str, mode: &str) -> Option<&'a Run> {
    runs.iter()
        .find(|r| r.blobs == n && r.tool == tool && r.mode == mode)
}

/// The Markdown table: each run, and distribution ÷ regstore.
fn table(runs: &[Run], fills: &[Fill]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| blobs | objects | run | regstore s | distribution s | ×faster | regstore requests | distribution requests | regstore peak MiB | distribution peak MiB |"
    );
    let _ = writeln!(s, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in fills {
        for mode in ["dry-run", "delete"] {
            let (Some(a), Some(b)) = (
                find(runs, f.blobs, "regstore", mode),
                find(runs, f.blobs, "distribution", mode),
            ) else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {} | {} | `-m` {mode} | {:.2} | {:.2} | {:.1} | {} | {} | {:.0} | {:.0} |",
                f.blobs,
                f.objects,
                a.seconds,
                b.seconds,
                b.seconds / a.seconds.max(1e-9),
                a.requests,
                b.requests,
                a.peak_rss_mib,
                b.peak_rss_mib
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Requests by S3 operation:");
    let _ = writeln!(s);
    for r in runs {
        let ops: Vec<String> = r
            .by_operation
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "* {} blobs, {} {}: {}",
            r.blobs,
            r.tool,
            r.mode,
            ops.join(", ")
        );
    }
    for f in fills {
        let deleted = f.garbage_blobs_untagged as u64 + f.repositories as u64 * 6; // per repository: 4 layer links, 1 revision, 1 tag-index entry
        let bound = f.objects.div_ceil(1000) + deleted.div_ceil(1000);
        let _ = writeln!(
            s,
            "\n{} blobs: ⌈objects/1000⌉ + ⌈deleted/1000⌉ = {} + {} = {bound} requests (deleted objects: {deleted}).",
            f.blobs,
            f.objects.div_ceil(1000),
            deleted.div_ceil(1000)
        );
    }
    s
}

/// A chart panel: its title and the value it plots.
type Panel = (&'static str, fn(&Run) -> f64);

/// A two-panel SVG: wall time and requests of the real (`delete`) runs against blob count.
fn chart(runs: &[Run]) -> String {
    let (w, h, pad) = (360.0, 240.0, 48.0);
    let mut sizes: Vec<usize> = runs.iter().map(|r| r.blobs).collect();
    sizes.sort();
    sizes.dedup();
    let xmax = *sizes.last().unwrap_or(&1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        2.0 * w,
        h + 30.0
    );
    let panels: [Panel; 2] = [
        ("wall time, s (gc -m, deleting)", |r| r.seconds),
        ("S3 requests (gc -m, deleting)", |r| r.requests as f64),
    ];
    for (i, (title, val)) in panels.iter().enumerate() {
        let x0 = i as f64 * w;
        let ymax = runs
            .iter()
            .filter(|r| r.mode == "delete")
            .map(val)
            .fold(1.0_f64, f64::max)
            * 1.1;
        let px = |b: f64| x0 + pad + (w - 2.0 * pad) * b / xmax;
        let py = |v: f64| h - pad + 10.0 - (h - 2.0 * pad) * v / ymax;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">{title}</text>",
            x0 + w / 2.0
        );
        let _ = writeln!(
            s,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/><line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{3}\" stroke=\"black\"/>",
            px(0.0),
            py(0.0),
            px(xmax),
            py(ymax)
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{xmax:.0} blobs</text>",
            px(0.0) - 4.0,
            py(ymax / 1.1) + 4.0,
            ymax / 1.1,
            px(xmax),
            py(0.0) + 14.0
        );
        for (tool, color) in [("regstore", "#1f77b4"), ("distribution", "#d62728")] {
            let pts: Vec<String> = sizes
                .iter()
                .filter_map(|n| find(runs, *n, tool, "delete"))
                .map(|r| format!("{:.1},{:.1}", px(r.blobs as f64), py(val(r))))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                pts.join(" ")
            );
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"60\" y=\"{0}\" fill=\"#1f77b4\">■ regstore gc</text><text x=\"200\" y=\"{0}\" fill=\"#d62728\">■ distribution 2.8.2 garbage-collect</text>",
        h + 20.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line_of_both_tools() {
        let out = "manifest eligible for deletion: sha256:aa\n\n\
                   7 blobs marked, 3 blobs and 1 manifests eligible for deletion\n\
                   blob eligible for deletion: sha256:bb\n";
        assert_eq!(summary(out), (Some(3), Some(1)));
        assert_eq!(summary("nothing"), (None, None));
    }
}
