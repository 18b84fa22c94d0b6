//! Shared set-up of the S3 integration tests: the environment contract, unique root
//! directories, and drivers built through the public factory path.
//!
//! Environment (set by `cargo xtask conformance`): `REGSTORE_S3_ENDPOINT`,
//! `REGSTORE_S3_ACCESS_KEY`, `REGSTORE_S3_SECRET_KEY`, `REGSTORE_S3_REGION` (default
//! us-east-1), `REGSTORE_S3_BUCKET` (created if missing), `REGSTORE_S3_V4AUTH` (default true),
//! `REGSTORE_S3_SERVER` (rgw|moto); `REGSTORE_MOTO_ENDPOINT` for the header tests;
//! `REGSTORE_S3_CHUNKSIZE` for the conformance suite's part size ([`conformance_chunk_size`]).
//! Missing variables fail the test when `CI` is set, and skip it with a printed reason otherwise.

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use regstore_driver_api::{Parameters, StorageDriver};
use regstore_driver_s3::{S3Config, S3Driver};

/// 1 MiB.
pub const MIB: u64 = 1024 * 1024;

/// Connection settings of the S3 server under test.
#[derive(Clone)]
pub struct Env {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub bucket: String,
    pub v4auth: bool,
    pub server: String,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("v4auth", &self.v4auth)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Handles a missing server: panics under CI, otherwise prints the skip reason. Returns `None`
/// so callers can `let Some(env) = … else { return };`.
pub fn unavailable<T>(reason: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set, so this is a failure, not a skip)");
    }
    println!("skipped: {reason}");
    None
}

/// The S3 server of `REGSTORE_S3_*`, or `None` after reporting why it is missing.
pub fn s3_env() -> Option<Env> {
    let (Some(endpoint), Some(access_key), Some(secret_key)) = (
        var("REGSTORE_S3_ENDPOINT"),
        var("REGSTORE_S3_ACCESS_KEY"),
        var("REGSTORE_S3_SECRET_KEY"),
    ) else {
        return unavailable(
            "REGSTORE_S3_ENDPOINT, REGSTORE_S3_ACCESS_KEY and REGSTORE_S3_SECRET_KEY are not all set \
             (run `cargo xtask conformance --backend s3`)",
        );
    };
    Some(Env {
        endpoint,
        access_key,
        secret_key,
        region: var("REGSTORE_S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
        bucket: var("REGSTORE_S3_BUCKET").unwrap_or_else(|| "regstore-test".to_owned()),
        v4auth: var("REGSTORE_S3_V4AUTH").is_none_or(|v| !v.eq_ignore_ascii_case("false")),
        server: var("REGSTORE_S3_SERVER").unwrap_or_default(),
    })
}

/// `chunksize` of the tests that do not pin their own: fast 5 MiB parts (the S3 minimum).
pub const TEST_CHUNK_SIZE: u64 = 5 * MIB;

/// The conformance suite's `chunksize` from `REGSTORE_S3_CHUNKSIZE`: a number of bytes, or
/// `default` for no `chunksize` parameter at all (the driver's own default, as a registry
/// configured without one gets). Unset or empty: `Some(TEST_CHUNK_SIZE)`. Anything else panics,
/// so a typo cannot silently run the suite at the usual size.
pub fn conformance_chunk_size() -> Option<u64> {
    match var("REGSTORE_S3_CHUNKSIZE") {
        None => Some(TEST_CHUNK_SIZE),
        Some(v) if v.trim().eq_ignore_ascii_case("default") => None,
        Some(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(e) => {
                panic!("REGSTORE_S3_CHUNKSIZE={v:?} is neither a byte count nor `default`: {e}")
            }
        },
    }
}

/// The moto server of `REGSTORE_MOTO_ENDPOINT` (any keys), or `None` after reporting.
pub fn moto_env() -> Option<Env> {
    let Some(endpoint) = var("REGSTORE_MOTO_ENDPOINT") else {
        return unavailable("REGSTORE_MOTO_ENDPOINT is not set (moto header tests)");
    };
    Some(Env {
        endpoint,
        access_key: "testing".to_owned(),
        secret_key: "testing".to_owned(),
        region: "us-east-1".to_owned(),
        bucket: "regstore-headers".to_owned(),
        v4auth: true,
        server: "moto".to_owned(),
    })
}

/// A name no other test run uses: time, process id, a counter and the std hasher's keys.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}{:016x}", h.finish())
}

impl Env {
    /// The driver parameters for this server, as a registry configuration would give them.
    pub fn params(&self, root: &str) -> Parameters {
        Parameters::new()
            .with("regionendpoint", self.endpoint.as_str())
            .with("accesskey", self.access_key.as_str())
            .with("secretkey", self.secret_key.as_str())
            .with("region", self.region.as_str())
            .with("bucket", self.bucket.as_str())
            .with("v4auth", if self.v4auth { "true" } else { "false" })
            .with("forcepathstyle", "true")
            .with("chunksize", TEST_CHUNK_SIZE.to_string())
            .with("rootdirectory", root)
    }

    /// [`params`](Self::params) with `chunksize` replaced by `chunk_size`, or removed (the
    /// driver's default) for `None`.
    pub fn params_with_chunk_size(&self, root: &str, chunk_size: Option<u64>) -> Parameters {
        let mut params = self.params(root);
        match chunk_size {
            Some(n) => params.insert("chunksize", n.to_string()),
            None => {
                params.remove("chunksize");
            }
        }
        params
    }

    /// Connection parameters only: every size, concurrency and timeout parameter at the
    /// driver's default, as in a registry's minimal `config.yml`.
    pub fn default_params(&self, root: &str) -> Parameters {
        self.params_with_chunk_size(root, None)
    }

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
