//! The S3 test environment contract (see docs/architecture.md): `REGSTORE_S3_ENDPOINT`,
//! `REGSTORE_S3_ACCESS_KEY`, `REGSTORE_S3_SECRET_KEY`, `REGSTORE_S3_REGION`,
//! `REGSTORE_S3_BUCKET`, `REGSTORE_S3_V4AUTH`. Missing variables fail the test when `CI` is set
//! and skip it with a printed reason otherwise.

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use regstore_driver_api::Parameters;
use regstore_driver_s3::{S3Config, S3Driver};

/// Connection settings of the S3 server under test. No `Debug`: it holds the secret.
pub struct Env {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub bucket: String,
    pub v4auth: bool,
    /// `REGSTORE_S3_SERVER` (`rgw`, `moto`, or empty when unknown).
    pub server: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The server of `REGSTORE_S3_*`, or `None` after printing why the test is skipped. Panics
/// under `CI` when the variables are missing.
pub fn s3_env() -> Option<Env> {
    let (Some(endpoint), Some(access_key), Some(secret_key)) = (
        var("REGSTORE_S3_ENDPOINT"),
        var("REGSTORE_S3_ACCESS_KEY"),
        var("REGSTORE_S3_SECRET_KEY"),
    ) else {
        let reason = "REGSTORE_S3_ENDPOINT, REGSTORE_S3_ACCESS_KEY and REGSTORE_S3_SECRET_KEY are \
                      not all set (run through `cargo xtask test` or `cargo xtask servers exec`)";
        if std::env::var_os("CI").is_some() {
            panic!("{reason} (CI is set, so this is a failure, not a skip)");
        }
        println!("skipped: {reason}");
        return None;
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

/// A root directory no other run uses.
pub fn unique_root(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

impl Env {
    /// Driver parameters for this server with `secret` as the secret key.
    pub fn params(&self, secret: &str, root: &str) -> Parameters {
        Parameters::new()
            .with("regionendpoint", self.endpoint.as_str())
            .with("accesskey", self.access_key.as_str())
            .with("secretkey", secret)
            .with("region", self.region.as_str())
            .with("bucket", self.bucket.as_str())
            .with("v4auth", self.v4auth)
            .with("forcepathstyle", true)
            .with("chunksize", (5i64 * 1024 * 1024).to_string())
            .with("rootdirectory", root)
    }

    /// A driver with the right keys on a fresh root, after making sure the bucket exists.
    pub async fn driver(&self, root: &str) -> S3Driver {
        let config = S3Config::from_parameters(&self.params(&self.secret_key, root))
            .expect("valid S3 parameters");
        let driver = S3Driver::new(config).expect("driver builds");
        driver
            .ensure_bucket()
            .await
            .expect("bucket exists or is created");
        driver
    }
}

/// Asserts that `text` holds no key material: neither of `secrets`, no SigV4 `Authorization`
/// value, no signature (header or presigned query), no SigV2 `AWS <key>:<sig>` value.
pub fn assert_clean(what: &str, text: &str, access_key: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !s.is_empty() && !text.contains(s),
            "{what} contains a secret ({} chars)",
            s.len()
        );
    }
    let lower = text.to_ascii_lowercase();
    for needle in [
        "aws4-hmac-sha256 credential=",
        "signature=",
        "x-amz-signature",
        "authorization:",
        "\"authorization\"",
    ] {
        if let Some(i) = lower.find(needle) {
            let start = i.saturating_sub(200);
            let end = (i + 200).min(text.len());
            panic!(
                "{what} contains {needle:?}: …{}…",
                text.get(start..end).unwrap_or("<not on a char boundary>")
            );
        }
    }
    let v2 = format!("aws {}:", access_key.to_ascii_lowercase());
    assert!(
        !lower.contains(&v2),
        "{what} contains a SigV2 Authorization value"
    );
}
