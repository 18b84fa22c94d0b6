//! `cargo xtask gc-diff`: the differential tests of `regstore gc` against distribution's own
//! `garbage-collect` (crates/cli/tests/gc_diff.rs), with Debian's `docker-registry` (2.8.2)
//! and `skopeo` installed when missing. `CI=true` is set so the tests fail rather than skip
//! if either tool is still absent.

use anyhow::Result;

use crate::runner::Runner;
use crate::servers::{apt_get, which};

/// Installs `docker-registry` and `skopeo` (about 15 s) when either is missing.
pub fn ensure_tools() -> Result<()> {
    if which("docker-registry").is_some() && which("skopeo").is_some() {
        return Ok(());
    }
    apt_get(&["install", "-y", "docker-registry", "skopeo"])
}

/// Runs the differential tests.
pub fn gc_diff(r: &mut Runner) -> Result<()> {
    r.stage("install docker-registry and skopeo", "", ensure_tools)?;
    let mut cmd = crate::cargo();
    cmd.args([
        "test",
        "-p",
        "regstore-cli",
        "--test",
        "gc_diff",
        "--",
        "--include-ignored",
    ])
    .env("CI", "true");
    r.run("regstore gc vs distribution garbage-collect", &mut cmd)
}
