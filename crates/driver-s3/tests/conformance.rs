//! The whole conformance suite against the S3 server of `REGSTORE_S3_*` (see `common`), one
//! test per case, each on a fresh random `rootdirectory` with 5 MiB parts. Without a
//! configured server every test prints `skipped: …` and returns (under `CI` it fails).

mod common;

use regstore_driver_conformance::{Capabilities, Fixture, Suite, WalkOrder};

fn suite(env: common::Env) -> Suite {
    Suite::new(move || {
        let env = env.clone();
        async move {
            let driver = env.driver().await;
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
            .with_part_size(5 * common::MIB)
            .with_redirect(true, false),
    )
}

/// The suite on the configured server, or `None` (after printing why) without one.
fn s3_suite() -> Option<Suite> {
    common::s3_env().map(suite)
}

regstore_driver_conformance::conformance_tests!(optional s3_suite);
