//! `cargo xtask gc-diff`: the differential tests of `regstore gc` against distribution's own
//! `garbage-collect` (crates/cli/tests/gc_diff.rs) on the filesystem and on Ceph RGW, and the
//! live tests (pushes beside a gc loop, on the filesystem and on RGW), with Debian's `docker-registry` (2.8.2) and `skopeo`
//! installed when missing. `CI=true` is set so the tests fail rather than skip if a tool or
//! the S3 server is absent.

use anyhow::Result;

use crate::runner::Runner;
use crate::servers::{apt_get, which, Kind};

/// Installs `docker-registry` and `skopeo` (about 15 s) when either is missing.
pub fn ensure_tools() -> Result<()> {
    if which("docker-registry").is_some() && which("skopeo").is_some() {
        return Ok(());
    }
    apt_get(&["install", "-y", "docker-registry", "skopeo"])
}

/// Runs the differential tests: the S3 ones against RGW (the `REGSTORE_S3_*` server if set,
/// else one started here), whose variables the tests receive.
pub fn gc_diff(r: &mut Runner) -> Result<()> {
    r.stage("install docker-registry and skopeo", "", ensure_tools)?;
    // No separate `--no-run` build first: under `cargo xtask` every cargo step rebuilds `ring`
    // and what depends on it (its build script's rerun-if-env-changed sees xtask's
    // CARGO_MANIFEST_DIR/CARGO_PKG_*), so a second step would compile everything twice.
    let rgw = crate::s3_target(r, Kind::Rgw)?;
    let bucket = crate::bucket_for(&rgw);
    let mut cmd = crate::cargo();
    cmd.args([
        "test",
        "-p",
        "regstore-cli",
        "--test",
        "gc_diff",
        "--",
        "--include-ignored",
        // All at once: the tests mostly wait on the Go registry, RGW and skopeo, and the live
        // test's 30 s bound the run (≈ 50 s instead of ≈ 105 s two at a time).
        "--test-threads",
        "10",
    ])
    .envs(rgw.info().s3_env(true, &bucket))
    .env("CI", "true");
    let result = r.run("regstore gc vs distribution garbage-collect", &mut cmd);
    drop(rgw);
    result
}
