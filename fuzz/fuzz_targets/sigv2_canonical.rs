//! SigV2 presigning (canonical resource, string to sign, query) never panics on any bucket,
//! root directory, endpoint, session token or object path, always yields a parseable URL with
//! a signature, and never puts the secret key in it.
//!
//! The SigV2 string-to-sign builder is private to the S3 driver; this target reaches it
//! through the public path that uses it without network: an `S3Driver` with `v4auth: false`
//! and static keys answering `redirect_url` (a presigned GET/HEAD URL).
//!
//! Input: fields separated by 0xFF bytes: bucket, rootdirectory, regionendpoint,
//! sessiontoken, object path, then a flags byte (bit 0: HEAD, bit 1: forcepathstyle).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use regstore_driver_api::{
    Parameters, RedirectMethod, RedirectRequest, StorageDriver, StoragePath,
};
use regstore_driver_s3::{S3Config, S3Driver};

const SECRET: &str = "fuzzSECRETkeyTHATmustNEVERleak0123456789";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds")
    })
}

/// Points the driver at an empty CA set before the first TLS connector is built: every
/// `S3Driver::new` builds one, and loading the system bundle each time would cap the fuzzer at a
/// few inputs per second. Presigning never connects, so no CA is needed. `AWS_CA_BUNDLE` would
/// win over `SSL_CERT_FILE` (docs/aws.md), so it is removed.
fn no_system_cas() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::env::remove_var("AWS_CA_BUNDLE");
        std::env::set_var("SSL_CERT_FILE", "/dev/null");
        std::env::set_var("SSL_CERT_DIR", "/nonexistent-regstore-fuzz");
    });
}

fuzz_target!(|data: &[u8]| {
    no_system_cas();
    let mut fields = data.split(|&b| b == 0xFF);
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let bucket = next();
    let root = next();
    let endpoint = next();
    let token = next();
    let path = next();
    let flags = next().bytes().next().unwrap_or(0);

    let mut params = Parameters::new()
        .with("bucket", bucket)
        .with("region", "us-east-1")
        .with("accesskey", "AKIDFUZZ")
        .with("secretkey", SECRET)
        .with("v4auth", false)
        .with("rootdirectory", root)
        .with("forcepathstyle", flags & 2 != 0);
    if !endpoint.is_empty() {
        params.insert("regionendpoint", endpoint);
    }
    if !token.is_empty() {
        params.insert("sessiontoken", token);
    }
    let Ok(config) = S3Config::from_parameters(&params) else {
        return;
    };
    let Some(path) = StoragePath::parse(&path).or_else(|| StoragePath::parse("/a/b")) else {
        return;
    };
    let Ok(driver) = S3Driver::new(config) else {
        return;
    };
    let request = RedirectRequest::new(if flags & 1 != 0 {
        RedirectMethod::Head
    } else {
        RedirectMethod::Get
    });
    let result = runtime().block_on(driver.redirect_url(&request, &path));
    if let Ok(Some(url)) = result {
        let s = url.as_str();
        assert!(!s.contains(SECRET), "secret in presigned URL {s}");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(
            pairs.iter().any(|(k, v)| k == "Signature" && !v.is_empty()),
            "no Signature in {s}"
        );
        assert!(pairs
            .iter()
            .any(|(k, v)| k == "AWSAccessKeyId" && v == "AKIDFUZZ"));
    }
});
