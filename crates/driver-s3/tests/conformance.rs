//! The whole conformance suite against the S3 server of `REGSTORE_S3_*` (see `common`), one
//! test per case, each on a fresh random `rootdirectory`. Parts are 5 MiB unless
//! `REGSTORE_S3_CHUNKSIZE` gives a byte count or `default` (no `chunksize` parameter: the
//! driver's 10 MiB); the suite's part size follows the driver's resolved `chunksize`, so the
//! cases that straddle part boundaries straddle the real ones. Without a configured server
//! every test prints `skipped: …` and returns (under `CI` it fails).

mod common;

use regstore_driver_conformance::{Capabilities, Fixture, Suite, WalkOrder};
use regstore_driver_s3::S3Config;

fn suite(env: common::Env) -> Suite {
    let chunk_size = common::conformance_chunk_size();
    // The part size the driver will really use, from the same parameters the cases get.
    let part_size = match S3Config::from_parameters(&env.params_with_chunk_size("/", chunk_size)) {
        Ok(c) => c.chunk_size,
        Err(e) => panic!("REGSTORE_S3_CHUNKSIZE gives a rejected configuration: {e}"),
    };
    println!("conformance on S3 with chunksize {part_size} bytes");
    Suite::new(move || {
        let env = env.clone();
        async move {
            let root = format!("/{}/", common::unique("regstore-test-"));
            let driver = env
                .driver_with(env.params_with_chunk_size(&root, chunk_size))
                .await;
            let teardown_driver = driver.clone();
            Ok(
                Fixture::new(common::dyn_driver(&driver)).with_teardown(move || async move {
                    // Objects are checked by the harness; uploads a case left open (closed
                    // writers) are aborted so the bucket does not accumulate them.
                    teardown_driver.abort_uploads_under_root().await.map(|_| ())
                }),
            )
        }
    })
    .with_capabilities(
        Capabilities::default()
            .with_walk_order(WalkOrder::KeyOrder)
            .with_walk_missing_is_not_found(false)
            .with_part_size(part_size)
            .with_redirect(true, false),
    )
}

/// The suite on the configured server, or `None` (after printing why) without one.
fn s3_suite() -> Option<Suite> {
    common::s3_env().map(suite)
}

regstore_driver_conformance::conformance_tests!(optional s3_suite);
