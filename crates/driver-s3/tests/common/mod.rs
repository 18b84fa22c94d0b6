//! Shared set-up of the S3 integration tests: the environment contract and names come from
//! `regstore-test-support` (see its `env` module for the variables); this module adds what
//! needs the driver itself: drivers built through the public configuration path, and cleanup.

#![allow(dead_code)]

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use regstore_driver_api::{Parameters, StorageDriver};
use regstore_driver_s3::{S3Config, S3Driver};
// Not every test binary uses every name.
#[allow(unused_imports)]
pub use regstore_test_support::{
    conformance_chunk_size, unavailable, unique, S3Env, MIB, TEST_CHUNK_SIZE,
};

/// The S3 server under test ([`S3Env`]) with the driver constructors of these tests.
#[derive(Clone, Debug)]
pub struct Env(pub S3Env);

impl Deref for Env {
    type Target = S3Env;

    fn deref(&self) -> &S3Env {
        &self.0
    }
}

/// The S3 server of `REGSTORE_S3_*`, or `None` after reporting why it is missing (a failure
/// under `CI`).
pub fn s3_env() -> Option<Env> {
    regstore_test_support::s3_env().map(Env)
}

/// The moto server of `REGSTORE_MOTO_ENDPOINT`, or `None` after reporting.
pub fn moto_env() -> Option<Env> {
    regstore_test_support::moto_env().map(Env)
}

/// Deterministic pseudo-random content (`regstore_test_support::content`), so a failure can be
/// reproduced from its seed.
pub fn content(seed: u64, len: usize) -> Bytes {
    Bytes::from(regstore_test_support::content(seed, len))
}

impl Env {
    /// A driver on a fresh root directory, after making sure the bucket exists.
    pub async fn driver_with(&self, params: Parameters) -> S3Driver {
        let config = match S3Config::from_parameters(&params) {
            Ok(c) => c,
            Err(e) => panic!("test configuration rejected: {e}"),
        };
        let driver = match S3Driver::new(config) {
            Ok(d) => d,
            Err(e) => panic!("cannot build driver: {e}"),
        };
        if let Err(e) = driver.ensure_bucket().await {
            panic!(
                "cannot create bucket {} on {}: {e}",
                self.bucket, self.endpoint
            );
        }
        driver
    }

    /// A driver on a fresh, unique root directory with the default test parameters.
    pub async fn driver(&self) -> S3Driver {
        self.driver_with(self.params(&format!("/{}/", unique("regstore-test-"))))
            .await
    }
}

/// Removes everything under the driver's root (objects and open uploads).
pub async fn cleanup(driver: &S3Driver) {
    let root = regstore_driver_api::StoragePath::root();
    if let Ok(entries) = driver.list(&root).await {
        for e in entries {
            let _ = driver.delete(&e).await;
        }
    }
    let _ = driver.abort_uploads_under_root().await;
}

/// The driver as the trait object callers hold.
pub fn dyn_driver(d: &S3Driver) -> Arc<dyn StorageDriver> {
    Arc::new(d.clone())
}
