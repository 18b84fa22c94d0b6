//! Configuration parsing never panics: arbitrary YAML → `Parameters` → the S3 driver's
//! `S3Config` and the CloudFront, redirect and rewrite middlewares' option parsers. A parsed
//! S3 configuration never shows its secret key or session token in `Debug`.
//!
//! The CloudFront parser reads the file named by `privatekey`; the fuzzer must not make it
//! read arbitrary files (a FIFO or `/dev/stdin` would hang it), so a string `privatekey` is
//! replaced with one of the committed test keys (a non-string value is kept, to exercise the
//! type check).

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use regstore_driver_api::duration::parse_duration;
use regstore_driver_api::{Parameters, StorageDriver, Value};
use regstore_driver_inmemory::InMemoryDriver;
use regstore_driver_s3::S3Config;
use regstore_middleware_cloudfront::{
    CloudFrontOptions, RedirectMiddleware, RewriteMiddleware, UrlSigner,
};

const KEYS: [&str; 3] = [
    "rsa2048-pkcs1.pem",
    "ec-p256-pkcs8.pem",
    "rsa1024-pkcs1.pem",
];

fn test_key(pick: usize) -> String {
    format!(
        "{}/../crates/middleware-cloudfront/tests/data/{}",
        env!("CARGO_MANIFEST_DIR"),
        KEYS[pick % KEYS.len()]
    )
}

fuzz_target!(|data: &[u8]| {
    // PEM input goes to the key loader directly (the bytes of a `privatekey` file).
    if data.starts_with(b"-----BEGIN") {
        let _ = UrlSigner::from_pem(data, "K2JCJMDEHXQW5F", None);
        return;
    }
    let Ok(mut params) = serde_yaml_ng::from_slice::<Parameters>(data) else {
        return;
    };

    let s3 = S3Config::from_parameters(&params);
    if let Ok(config) = &s3 {
        let shown = format!("{config:?}");
        for key in ["secretkey", "sessiontoken"] {
            if let Ok(Some(secret)) = params.string("s3aws", key) {
                // Short values can occur by chance in unrelated fields, and a value that the
                // input also puts into another parameter (e.g. the bucket) is shown as that.
                let elsewhere = params.keys().filter(|k| *k != key).any(|k| {
                    matches!(params.string("s3aws", k), Ok(Some(v)) if v.contains(&secret))
                });
                if secret.len() >= 12 && !elsewhere {
                    assert!(!shown.contains(&secret), "{key} shown in Debug: {shown}");
                }
            }
        }
    }

    for key in params.keys().map(str::to_owned).collect::<Vec<_>>() {
        if let Ok(Some(s)) = params.string("fuzz", &key) {
            let _ = parse_duration(&s);
        }
    }

    if matches!(params.get("privatekey"), Some(Value::String(_))) {
        params.insert("privatekey", test_key(data.len()));
    }
    let _ = CloudFrontOptions::from_parameters(&params);

    let inner: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
    let _ = RedirectMiddleware::from_parameters(inner.clone(), &params);
    if let Ok(rewrite) = RewriteMiddleware::from_parameters(inner, &params) {
        for u in [
            "https://bucket.s3.amazonaws.com/docker/registry/v2/blobs/x?X-Amz-Signature=1",
            "http://127.0.0.1:9000/a",
        ] {
            if let Ok(u) = url::Url::parse(u) {
                let _ = rewrite.rewrite(u);
            }
        }
    }
});
