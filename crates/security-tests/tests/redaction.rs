//! No key material in `Debug` output or errors: S3 configuration, credentials, driver,
//! CloudFront middleware; and an S3 error for a wrong secret (needs the S3 server).

mod common;

use std::sync::Arc;

use bytes::Bytes;
use regstore_driver_api::{
    Parameters, RedirectMethod, RedirectRequest, StorageDriver, StoragePath, Value,
};
use regstore_driver_inmemory::InMemoryDriver;
use regstore_driver_s3::{S3Config, S3Driver};
use regstore_middleware_cloudfront::{CloudFrontMiddleware, CloudFrontOptions};

const SECRET: &str = "wJalrXUtnFEMI-redaction-test-SECRET-3f9a1c";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE-redaction-test-TOKEN-77b2";
const ACCESS: &str = "AKIAREDACTIONTEST0001";

fn params() -> Parameters {
    Parameters::new()
        .with("bucket", "redaction-bucket")
        .with("region", "us-east-1")
        .with("regionendpoint", "http://127.0.0.1:1")
        .with("accesskey", ACCESS)
        .with("secretkey", SECRET)
        .with("sessiontoken", TOKEN)
}

#[test]
fn s3_config_credentials_and_driver_debug_hide_secrets() {
    let p = params();
    let shown = format!("{p:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");

    let config = S3Config::from_parameters(&p).expect("valid parameters");
    for shown in [format!("{config:?}"), format!("{config:#?}")] {
        assert!(!shown.contains(SECRET), "secret in S3Config Debug: {shown}");
        assert!(!shown.contains(TOKEN), "token in S3Config Debug: {shown}");
        assert!(
            !shown.contains(ACCESS),
            "whole access key in Debug: {shown}"
        );
    }
    let creds = format!("{:?}", config.credentials);
    assert!(!creds.contains(SECRET) && !creds.contains(TOKEN), "{creds}");

    let driver = S3Driver::new(config).expect("driver builds without network");
    for shown in [format!("{driver:?}"), format!("{driver:#?}")] {
        assert!(!shown.contains(SECRET), "secret in S3Driver Debug");
        assert!(!shown.contains(TOKEN), "token in S3Driver Debug");
    }
}

#[test]
fn invalid_parameters_do_not_echo_secrets() {
    for (key, value) in [
        ("chunksize", Value::from("lots")),
        ("secure", Value::from("maybe")),
        ("storageclass", Value::from("COLD")),
        ("regionendpoint", Value::from("::not a url")),
        ("secretkey", Value::List(vec![Value::from(SECRET)])),
        ("sessiontoken", Value::Map(Default::default())),
    ] {
        let err = S3Config::from_parameters(&params().with(key, value)).expect_err(key);
        for e in [format!("{err}"), format!("{err:?}")] {
            assert!(!e.contains(SECRET) && !e.contains(TOKEN), "{key}: {e}");
        }
    }
}

#[tokio::test]
async fn presigned_urls_carry_no_secret() {
    for v4 in [true, false] {
        let config = S3Config::from_parameters(&params().with("v4auth", v4)).unwrap();
        let driver = S3Driver::new(config).unwrap();
        let path = StoragePath::parse("/docker/registry/v2/blobs/x").unwrap();
        let url = driver
            .redirect_url(&RedirectRequest::new(RedirectMethod::Get), &path)
            .await
            .expect("presigning needs no network")
            .expect("S3 redirects");
        assert!(
            !url.as_str().contains(SECRET),
            "secret in presigned URL (v4={v4})"
        );
    }
}

fn key_path(name: &str) -> String {
    format!(
        "{}/../middleware-cloudfront/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The base64 lines of a PEM file: any of them in a Debug output would be key material.
fn pem_body_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("test key readable")
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn cloudfront_debug_hides_the_private_key() {
    for key in ["rsa2048-pkcs1.pem", "ec-p256-sec1.pem"] {
        let path = key_path(key);
        let lines = pem_body_lines(&path);
        assert!(!lines.is_empty());
        let p = Parameters::new()
            .with("baseurl", "https://d111111abcdef8.cloudfront.net/")
            .with("privatekey", path.as_str())
            .with("keypairid", "K2JCJMDEHXQW5F");
        let options = CloudFrontOptions::from_parameters(&p).expect("valid options");
        let shown_options = format!("{options:#?}");
        let inner: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
        let mw = CloudFrontMiddleware::new(inner, options)
            .await
            .expect("middleware builds");
        let shown_mw = format!("{mw:?} {mw:#?}");
        for shown in [&shown_options, &shown_mw] {
            for line in &lines {
                // Any 16-character run of the key's base64 would be a leak.
                for w in line.as_bytes().chunks(16).filter(|c| c.len() == 16) {
                    let w = std::str::from_utf8(w).unwrap();
                    assert!(!shown.contains(w), "{key}: key material in Debug: {shown}");
                }
            }
            assert!(!shown.contains("PRIVATE KEY"), "{key}: {shown}");
        }
    }
}

#[tokio::test]
async fn wrong_secret_error_holds_no_secret() {
    let Some(env) = common::s3_env() else {
        return;
    };
    if env.server.eq_ignore_ascii_case("moto") {
        // moto accepts any signature, so there is no refusal to inspect.
        println!("skipped: REGSTORE_S3_SERVER=moto does not verify signatures");
        return;
    }
    let wrong = format!("{}-wrong-7c1e", env.secret_key);
    let root = common::unique("security-wrong-secret-");
    let config = S3Config::from_parameters(&env.params_with_secret(&wrong, &root)).unwrap();
    let driver = S3Driver::new(config).unwrap();
    let path = StoragePath::parse("/secret/probe").unwrap();
    let mut errors = Vec::new();
    match driver.put_content(&path, Bytes::from_static(b"x")).await {
        Ok(()) => panic!(
            "a wrong secret key must be refused (server at {})",
            env.endpoint
        ),
        Err(e) => errors.push(e),
    }
    if let Err(e) = driver.get_content(&path).await {
        errors.push(e);
    }
    if let Err(e) = driver.stat(&path).await {
        errors.push(e);
    }
    for e in &errors {
        let text = format!("{e} | {e:?} | {:?}", std::error::Error::source(e));
        common::assert_clean(
            "S3 error for a wrong secret",
            &text,
            &env.access_key,
            &[&wrong, &env.secret_key],
        );
    }
    let first = format!("{}", errors[0]);
    assert!(
        first.contains("403")
            || first.to_ascii_lowercase().contains("signature")
            || first.to_ascii_lowercase().contains("denied"),
        "the error says why: {first}"
    );
}

/// The leak detector itself catches each kind of key material (so a passing log or error check
/// means something).
#[test]
fn leak_detector_catches_each_pattern() {
    let samples = [
        format!("x {SECRET} y"),
        "authorization: AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request".into(),
        "GET /b/k?X-Amz-Signature=abcdef".into(),
        "?AWSAccessKeyId=AKIA&Signature=abc%2F".into(),
        format!("Authorization: AWS {ACCESS}:c2lnbmF0dXJl"),
        "headers: {\"authorization\": \"x\"}".into(),
    ];
    for s in samples {
        let caught =
            std::panic::catch_unwind(|| common::assert_clean("sample", &s, ACCESS, &[SECRET]));
        assert!(caught.is_err(), "not caught: {s}");
    }
    common::assert_clean("clean", "PUT /b/k 200 OK in 3 ms", ACCESS, &[SECRET]);
}
