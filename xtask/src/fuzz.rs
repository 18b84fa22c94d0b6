//! `cargo xtask fuzz`: runs every cargo-fuzz target of `fuzz/` for a bounded time.
//!
//! cargo-fuzz needs nightly compiler flags (`-Zsanitizer`, sanitizer coverage); the stable
//! toolchain accepts them with `RUSTC_BOOTSTRAP=1`, so no nightly toolchain is needed. The tool
//! is installed once under `target/tools/` (`cargo install --locked`), fuzz builds go to
//! `target/fuzz/`, the growing corpus to `target/fuzz/corpus/<target>/` (the committed seeds in
//! `fuzz/seeds/<target>/` are read too), and a crash leaves its input under
//! `fuzz/artifacts/<target>/` and fails the step.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::runner::Runner;
use crate::workspace_root;

/// The targets of `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: &[&str] = &[
    "path_validation",
    "config_parsing",
    "sigv2_canonical",
    "sigv2_sign_request",
    "ip_ranges",
    "list_objects_v2",
    "duration",
];

/// `target/tools`: where xtask installs the cargo plugins it needs.
pub fn tools_root() -> PathBuf {
    workspace_root().join("target").join("tools")
}

/// The path of an installed plugin binary, installing `package` with `cargo install --locked`
/// under [`tools_root`] when it is missing.
pub fn ensure_tool(r: &mut Runner, package: &str, binary: &str) -> Result<PathBuf> {
    let root = tools_root();
    let bin = root.join("bin").join(binary);
    if bin.is_file() {
        return Ok(bin);
    }
    let mut cmd = crate::cargo();
    cmd.args(["install", package, "--locked", "--root"])
        .arg(&root)
        // A separate target dir: the install must not wait on (or invalidate) workspace builds.
        .env("CARGO_TARGET_DIR", root.join("build"));
    r.run(&format!("install {package}"), &mut cmd)?;
    if !bin.is_file() {
        bail!(
            "`cargo install {package}` finished but {} is missing",
            bin.display()
        );
    }
    Ok(bin)
}

/// A `cargo-fuzz fuzz …` command (the plugin binary called the way cargo calls it) with the
/// stable compiler unlocked for cargo-fuzz's `-Z` flags.
fn cargo_fuzz(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    cmd.current_dir(workspace_root())
        .arg("fuzz")
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Builds all targets, then runs each for `seconds` (libFuzzer's `-max_total_time`).
pub fn fuzz(r: &mut Runner, seconds: u64, only: &[String]) -> Result<()> {
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    for t in only {
        if !TARGETS.contains(&t.as_str()) {
            bail!(
                "unknown fuzz target {t:?} (targets: {})",
                TARGETS.join(", ")
            );
        }
    }
    let targets: Vec<&str> = if only.is_empty() {
        TARGETS.to_vec()
    } else {
        only.iter().map(String::as_str).collect()
    };
    let tool = ensure_tool(r, "cargo-fuzz", "cargo-fuzz")?;
    let root = workspace_root();
    let target_dir = root.join("target").join("fuzz");

    let mut build = cargo_fuzz(&tool);
    build.arg("build").arg("--target-dir").arg(&target_dir);
    r.run("fuzz build (all targets)", &mut build)?;

    for t in targets {
        let corpus = target_dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = root.join("fuzz").join("seeds").join(t);
        let mut run = cargo_fuzz(&tool);
        run.args(["run", t])
            .arg("--target-dir")
            .arg(&target_dir)
            .arg(&corpus);
        if seeds.is_dir() {
            run.arg(&seeds);
        }
        run.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            // Bounded memory and per-input time: a slow input is a finding, not a hang.
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .arg("-print_final_stats=1");
        r.run(&format!("fuzz {t} ({seconds}s)"), &mut run)?;
    }
    Ok(())
}
