//! Generated writer sequences against the model of the writer contract (see
//! `regstore_driver_conformance::writer_model`), on the server of `REGSTORE_S3_*`, at three
//! part sizes: the 5 MiB minimum, distribution's default 10 MiB and an odd 7 MiB + 1. Besides
//! what every backend is checked for, the S3 runs check the incomplete uploads after every
//! step (one per closed upload or open writer, none elsewhere), that a crashed writer resumes
//! exactly at its last `close`, and that no tail record is left once every upload ended.
//!
//! Each part size runs for `REGSTORE_MODEL_SECONDS` (default 25) from seed
//! `REGSTORE_MODEL_SEED` (default 1); `cargo xtask writer-model` runs longer. Without a
//! configured server every test prints `skipped: …` and returns; under `CI` they fail.

mod common;

use std::time::Duration;

use futures::FutureExt;
use regstore_driver_api::{Driver, StoragePath};
use regstore_driver_conformance::writer_model::{
    run_blocking, CrashResume, ModelFixture, ModelOptions, ModelRunner, UploadInspector,
};
use regstore_driver_conformance::Fixture;
use regstore_driver_s3::test_support::S3DriverTestExt as _;

use common::MIB;

fn runner(env: common::Env, part_size: u64) -> ModelRunner {
    runner_with(env, part_size, Vec::new())
}

/// [`runner`] with extra driver parameters.
fn runner_with(
    env: common::Env,
    part_size: u64,
    extra: Vec<(&'static str, String)>,
) -> ModelRunner {
    let mut options = ModelOptions::new(part_size);
    options.crash = CrashResume::Exact;
    ModelRunner::new(
        std::sync::Arc::new(move || {
            let env = env.clone();
            let extra = extra.clone();
            async move {
                let root = format!("/{}/", common::unique("regstore-model-"));
                let mut params = env.params(&root).with("chunksize", part_size.to_string());
                for (k, v) in extra {
                    params.insert(k, v);
                }
                let driver = env.driver_with(params).await;
                let (d1, d2, d3) = (driver.clone(), driver.clone(), driver.clone());
                let inspector = UploadInspector {
                    uploads: Box::new(move || {
                        let d = d1.clone();
                        async move {
                            let uploads = d.list_incomplete_uploads(&StoragePath::root()).await?;
                            Ok(uploads.into_iter().map(|u| u.path).collect())
                        }
                        .boxed()
                    }),
                    leftovers: Box::new(move || {
                        let d = d2.clone();
                        async move { Ok(d.writer_tail_keys().await?.len()) }.boxed()
                    }),
                };
                let fixture = Fixture::new(Driver::new(common::dyn_driver(&driver))).with_teardown(
                    move || async move {
                        common::cleanup(&d3).await;
                        Ok(())
                    },
                );
                Ok(ModelFixture {
                    fixture,
                    inspector: Some(inspector),
                })
            }
            .boxed()
        }),
        options,
    )
}

fn run(part_size: u64, label: &str) {
    let Some(env) = common::s3_env() else { return };
    let label = format!("s3 {label}, v4auth {}", env.v4auth);
    run_blocking(&runner(env, part_size), &label, Duration::from_secs(25));
}

#[test]
fn writer_model_at_5_mib_parts() {
    run(5 * MIB, "chunksize 5 MiB");
}

#[test]
fn writer_model_at_the_default_10_mib_parts() {
    run(10 * MIB, "chunksize 10 MiB");
}

#[test]
fn writer_model_at_odd_7_mib_plus_1_parts() {
    run(7 * MIB + 1, "chunksize 7 MiB + 1");
}

/// `spooldir` on: the same contract (crash resume, tail records, uploads) with the part being
/// filled in a file; afterwards no spool file is left in the directory (every writer was
/// committed, cancelled or dropped). 12 s by default: the writer logic is the one the other
/// runs cover, only the buffer differs.
#[test]
fn writer_model_with_spooldir() {
    let Some(env) = common::s3_env() else { return };
    let dir = tempfile::tempdir().expect("temporary spool directory");
    let label = format!("s3 chunksize 5 MiB, spooldir, v4auth {}", env.v4auth);
    let spool = dir.path().to_string_lossy().into_owned();
    run_blocking(
        &runner_with(env, 5 * MIB, vec![("spooldir", spool)]),
        &label,
        Duration::from_secs(12),
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("spool directory readable")
        .map(|e| e.map(|e| e.file_name()))
        .collect();
    assert!(left.is_empty(), "spool files left behind: {left:?}");
}
