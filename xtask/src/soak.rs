//! `cargo xtask soak --seconds N`: the bounded soak of the S3 driver through the fault proxy.
//!
//! xtask only orchestrates: it builds the `soak` example of `regstore-driver-s3`, starts Ceph
//! RGW (or reuses the server announced in `REGSTORE_S3_*`), and runs the example with the test
//! environment contract set. The example starts the fault proxy in front of the server, runs the
//! concurrent writers and readers, verifies every object by SHA-256, checks for leaked
//! multipart uploads, prints its report, and exits non-zero when a check failed.

use anyhow::{bail, Result};

use crate::runner::Runner;
use crate::servers::Kind;

/// Longest soak accepted (the proxy's own limit is 6 h).
const MAX_SECONDS: u64 = 6 * 3600;

/// What `cargo xtask soak` was asked for.
pub struct SoakArgs {
    /// How long the workers run.
    pub seconds: u64,
    /// Concurrent writer/reader tasks.
    pub workers: u32,
    /// Fraction of proxied requests that get a fault.
    pub rate: f64,
    /// Seed of the fault plan and the workers' choices; the example picks one when `None`.
    pub seed: Option<u64>,
}

/// Builds and runs the soak; fails when the soak reports a failed check.
pub fn soak(r: &mut Runner, args: &SoakArgs) -> Result<()> {
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        bail!("--seconds must be between 1 and {MAX_SECONDS}");
    }
    if !(0.0..=1.0).contains(&args.rate) {
        bail!("--rate must be between 0 and 1");
    }
    let mut build = crate::cargo();
    build.args(["build", "-p", "regstore-driver-s3", "--example", "soak"]);
    r.run("build soak", &mut build)?;

    let target = crate::s3_target(r, Kind::Rgw)?;
    let bucket = crate::bucket_for(&target);
    let mut cmd = crate::cargo();
    cmd.args([
        "run",
        "-q",
        "-p",
        "regstore-driver-s3",
        "--example",
        "soak",
        "--",
    ]);
    cmd.arg("--seconds").arg(args.seconds.to_string());
    cmd.arg("--workers").arg(args.workers.to_string());
    cmd.arg("--rate").arg(args.rate.to_string());
    if let Some(seed) = args.seed {
        cmd.arg("--seed").arg(seed.to_string());
    }
    cmd.envs(target.info().s3_env(true, &bucket));
    let label = format!(
        "soak {}s, {} workers, fault rate {}",
        args.seconds, args.workers, args.rate
    );
    let result = r.run(&label, &mut cmd);
    drop(target);
    result
}
