//! `cargo xtask writer-model`: the model-based writer tests (regstore_driver_conformance's
//! `writer_model`) for longer than the test suite gives them, on one backend.

use anyhow::Result;

use crate::runner::Runner;
use crate::servers::Kind;
use crate::{bucket_for, cargo, s3_target, Backend, Sig};

/// What to run and for how long.
pub struct WriterModelArgs {
    pub backend: Backend,
    pub sig: Sig,
    /// Seconds per part size (the S3 tests run three part sizes side by side).
    pub seconds: u64,
    /// First seed; `None` takes one from the clock (printed, so a failure reproduces).
    pub seed: Option<u64>,
}

/// Runs the backend's `writer_model` tests with `REGSTORE_MODEL_SECONDS` and
/// `REGSTORE_MODEL_SEED` set; for S3 on a fresh RGW (or the server of `REGSTORE_S3_*`).
pub fn run(r: &mut Runner, args: &WriterModelArgs) -> Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000_000)
    });
    let test_file = if args.backend == Backend::S3 {
        "writer_model"
    } else {
        "conformance"
    };
    let mut cmd = cargo();
    cmd.args(["test", "-p", args.backend.package(), "--test", test_file])
        .args(["writer_model", "--", "--nocapture"])
        .env("REGSTORE_MODEL_SECONDS", args.seconds.to_string())
        .env("REGSTORE_MODEL_SEED", seed.to_string());
    let label = format!(
        "writer model {} for {} s from seed {seed}",
        match (args.backend, args.sig) {
            (Backend::Inmemory, _) => "inmemory",
            (Backend::Filesystem, _) => "filesystem",
            (Backend::S3, Sig::V4) => "s3 (rgw, sig v4)",
            (Backend::S3, Sig::V2) => "s3 (rgw, sig v2)",
        },
        args.seconds
    );
    if args.backend != Backend::S3 {
        return r.run(&label, &mut cmd);
    }
    let mut build = cargo();
    build.args([
        "test",
        "-p",
        args.backend.package(),
        "--test",
        test_file,
        "--no-run",
    ]);
    r.run("build writer model tests", &mut build)?;
    let target = s3_target(r, Kind::Rgw)?;
    cmd.envs(
        target
            .info()
            .s3_env(args.sig == Sig::V4, &bucket_for(&target)),
    );
    let result = r.run(&label, &mut cmd);
    drop(target);
    result
}
