//! Shared helpers of the security tests. The S3 environment contract (and its skip-or-fail
//! rule under `CI`) comes from `regstore-test-support`; this module adds the driver built from
//! it and the check that a text holds no key material.

#![allow(dead_code)]

use regstore_driver_s3::{S3Config, S3Driver};
#[allow(unused_imports)] // not every test binary uses every name
pub use regstore_test_support::{s3_env, unique, S3Env as Env};

/// A driver with the right keys on root directory `root`, after making sure the bucket exists.
pub async fn driver(env: &Env, root: &str) -> S3Driver {
    let config = S3Config::from_parameters(&env.params(root)).expect("valid S3 parameters");
    let driver = S3Driver::new(config).expect("driver builds");
    driver
        .ensure_bucket()
        .await
        .expect("bucket exists or is created");
    driver
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
