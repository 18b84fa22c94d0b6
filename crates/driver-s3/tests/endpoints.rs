//! Endpoint-related parameters against the S3 server of `REGSTORE_S3_*` (see `common`):
//!
//! * `usedelimiterwalk: true` runs the conformance suite's walk cases, in the generic walk's
//!   order (the flat walk's key order does not apply to it);
//! * `redirectendpoint` pointing at the same server under another host name (`s3.localhost`
//!   instead of `127.0.0.1`): presigned URLs carry that host, are signed for it, still
//!   download (GET and HEAD), and do not pass for the internal host.
//!
//! Without a configured server every test prints `skipped: …` and returns (under `CI` it fails).

mod common;

use regstore_driver_api::{RedirectRequest, StorageDriver, StoragePath};
use regstore_driver_conformance::{run_all, Capabilities, Fixture, Report, Suite, WalkOrder};

fn suite(env: common::Env, extra: Vec<(&'static str, String)>, walk_order: WalkOrder) -> Suite {
    Suite::new(move || {
        let env = env.clone();
        let extra = extra.clone();
        async move {
            let root = format!("/{}/", common::unique("regstore-test-"));
            let mut params = env.params(&root);
            for (k, v) in extra {
                params.insert(k, v);
            }
            let driver = env.driver_with(params).await;
            let teardown_driver = driver.clone();
            Ok(
                Fixture::new(common::dyn_driver(&driver)).with_teardown(move || async move {
                    teardown_driver.abort_uploads_under_root().await.map(|_| ())
                }),
            )
        }
    })
    .with_capabilities(
        Capabilities::default()
            .with_walk_order(walk_order)
            .with_walk_missing_is_not_found(false)
            .with_part_size(common::MIB * 5)
            .with_redirect(true, false),
    )
}

fn check(report: &Report, want_cases: usize) {
    for c in &report.cases {
        println!("{}: {:?} ({:?})", c.name, c.outcome, c.duration);
    }
    assert!(
        report.cases.len() >= want_cases,
        "expected at least {want_cases} cases, ran {}",
        report.cases.len()
    );
    assert_eq!(report.skipped(), 0, "no case may be skipped");
    assert!(report.success(), "{} case(s) failed", report.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delimiter_walk_passes_the_walk_cases() {
    let Some(env) = common::s3_env() else { return };
    let suite = suite(
        env,
        vec![("usedelimiterwalk", "true".to_owned())],
        WalkOrder::SortedDepthFirst,
    );
    let report = run_all(&suite, Some("walk")).await;
    check(&report, 11);
}

/// `endpoint` with its host replaced by `s3.localhost`: the test RGW's `rgw dns name`, so
/// the same server answers path-style requests under that public name (any other name would
/// be taken for a bucket CNAME).
fn public_alias(endpoint: &str) -> String {
    let mut u = url::Url::parse(endpoint).expect("REGSTORE_S3_ENDPOINT is a URL");
    assert_eq!(
        u.host_str(),
        Some("127.0.0.1"),
        "this test needs a loopback server"
    );
    u.set_host(Some("s3.localhost")).expect("host replaced");
    u.set_path("");
    u.to_string()
}

/// Status, body and `Content-Length` of a `method` request for `url`.
async fn fetch(url: &url::Url, method: &str) -> (u16, Vec<u8>, Option<String>) {
    let client = hyper::Client::builder()
        .build::<_, hyper::Body>(regstore_test_support::localhost_connector());
    let req = hyper::Request::builder()
        .method(method)
        .uri(url.as_str())
        .body(hyper::Body::empty())
        .unwrap();
    let resp = client.request(req).await.expect("server answers");
    let status = resp.status().as_u16();
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = hyper::body::to_bytes(resp.into_body()).await.unwrap();
    (status, body.to_vec(), len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_endpoint_on_the_same_server_downloads() {
    let Some(env) = common::s3_env() else { return };
    let public = public_alias(&env.endpoint);
    let root = format!("/{}/", common::unique("regstore-test-"));
    let mut params = env.params(&root);
    params.insert("redirectendpoint", public.clone());
    let driver = env.driver_with(params).await;
    let path = StoragePath::parse("/docker/registry/v2/blobs/x/data").unwrap();
    let content = b"public bytes".to_vec();
    driver
        .put_content(&path, bytes::Bytes::from(content.clone()))
        .await
        .unwrap();

    let get = driver
        .redirect_url(&RedirectRequest::get(), &path)
        .await
        .unwrap()
        .expect("a presigned URL");
    // The public host and the path-style path; the request endpoint's host is not in it.
    let want = url::Url::parse(&public).unwrap();
    assert_eq!(get.host_str(), Some("s3.localhost"), "{get}");
    assert_eq!(get.port(), want.port());
    assert_eq!(
        get.path(),
        format!(
            "/{}/{}docker/registry/v2/blobs/x/data",
            env.bucket,
            &root[1..]
        ),
    );
    let (status, body, _) = fetch(&get, "GET").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, content);

    let head = driver
        .redirect_url(&RedirectRequest::head(), &path)
        .await
        .unwrap()
        .expect("a presigned URL");
    let (status, _, len) = fetch(&head, "HEAD").await;
    assert_eq!(status, 200);
    assert_eq!(len.as_deref(), Some("12"));

    // Signed for the public host: the same URL sent to the internal host is refused, so the
    // rewrite happened before signing, not after. (Only for servers that check signatures.)
    if env.server != "moto" {
        let mut internal = get.clone();
        internal.set_host(Some("127.0.0.1")).unwrap();
        let (status, _, _) = fetch(&internal, "GET").await;
        assert_eq!(
            status, 403,
            "a URL signed for s3.localhost must not pass for 127.0.0.1"
        );
    }
    common::cleanup(&driver).await;
}

/// Presigned URLs for Amazon S3 endpoints, checked as strings (presigning is local).
mod presigned_on_aws {
    use std::collections::BTreeMap;

    use regstore_driver_api::{Parameters, RedirectRequest, StorageDriver, StoragePath};
    use regstore_driver_s3::{S3Config, S3Driver};

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    async fn presign(extra: &[(&str, &str)]) -> url::Url {
        let mut p = Parameters::new()
            .with("accesskey", "AKIAIOSFODNN7EXAMPLE")
            .with("secretkey", SECRET)
            .with("rootdirectory", "/prod")
            .with("bucket", "bkt")
            .with("region", "us-west-2");
        for (k, v) in extra {
            p.insert(*k, *v);
        }
        let driver = S3Driver::new(S3Config::from_parameters(&p).unwrap()).unwrap();
        let path = StoragePath::parse("/docker/registry/v2/blobs/sha256/ab/data").unwrap();
        driver
            .redirect_url(&RedirectRequest::get(), &path)
            .await
            .unwrap()
            .expect("S3 presigns GET")
    }

    fn well_formed(url: &url::Url, host: &str, path: &str, region: &str) {
        assert_eq!(url.scheme(), "https", "{url}");
        assert_eq!(url.host_str(), Some(host), "{url}");
        assert_eq!(url.port(), None, "{url}");
        assert_eq!(url.path(), path, "{url}");
        let q: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(q["X-Amz-Expires"], "1200");
        let cred = &q["X-Amz-Credential"];
        assert!(
            cred.starts_with("AKIAIOSFODNN7EXAMPLE/")
                && cred.ends_with(&format!("/{region}/s3/aws4_request")),
            "{cred}"
        );
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(q["X-Amz-Signature"].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!url.as_str().contains("wJalrXUtnFEMI"));
    }

    const KEY: &str = "/prod/docker/registry/v2/blobs/sha256/ab/data";

    #[tokio::test]
    async fn virtual_hosted_dualstack_fips_and_accelerate() {
        let url = presign(&[]).await;
        well_formed(&url, "bkt.s3.us-west-2.amazonaws.com", KEY, "us-west-2");
        let url = presign(&[("usedualstack", "true")]).await;
        well_formed(
            &url,
            "bkt.s3.dualstack.us-west-2.amazonaws.com",
            KEY,
            "us-west-2",
        );
        let url = presign(&[("usefipsendpoint", "true"), ("usedualstack", "true")]).await;
        well_formed(
            &url,
            "bkt.s3-fips.dualstack.us-west-2.amazonaws.com",
            KEY,
            "us-west-2",
        );
        let url = presign(&[("accelerate", "true")]).await;
        well_formed(&url, "bkt.s3-accelerate.amazonaws.com", KEY, "us-west-2");
        let url = presign(&[("region", "cn-northwest-1"), ("usedualstack", "true")]).await;
        well_formed(
            &url,
            "bkt.s3.dualstack.cn-northwest-1.amazonaws.com.cn",
            KEY,
            "cn-northwest-1",
        );
        let url = presign(&[("region", "us-gov-west-1"), ("usefipsendpoint", "true")]).await;
        well_formed(
            &url,
            "bkt.s3-fips.us-gov-west-1.amazonaws.com",
            KEY,
            "us-gov-west-1",
        );
    }

    #[tokio::test]
    async fn dotted_buckets_are_path_style() {
        let url = presign(&[("bucket", "my.bucket"), ("usedualstack", "true")]).await;
        well_formed(
            &url,
            "s3.dualstack.us-west-2.amazonaws.com",
            &format!("/my.bucket{KEY}"),
            "us-west-2",
        );
    }

    #[tokio::test]
    async fn redirect_endpoint_replaces_scheme_and_host_only() {
        // Path style: the bucket stays in the path.
        let url = presign(&[
            ("forcepathstyle", "true"),
            ("redirectendpoint", "https://registry-blobs.example"),
        ])
        .await;
        well_formed(
            &url,
            "registry-blobs.example",
            &format!("/bkt{KEY}"),
            "us-west-2",
        );
        // Virtual-hosted: the whole host is replaced, as distribution does (the public name
        // stands for the bucket, e.g. a CNAME).
        let url = presign(&[("redirectendpoint", "https://blobs.example")]).await;
        well_formed(&url, "blobs.example", KEY, "us-west-2");
    }
}
