//! The AWS IP filter against a local HTTP server serving ip-ranges JSON (reference §4.4), and
//! the CloudFront middleware's redirect decision built on it.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use regstore_driver_api::{Parameters, RedirectRequest, StorageDriver, StoragePath};
use regstore_driver_inmemory::InMemoryDriver;
use regstore_middleware_cloudfront::ipfilter::{AwsIpFilter, IpFilterConfig};
use regstore_middleware_cloudfront::{CloudFrontMiddleware, RedirectMiddleware};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(url: &str, regions: Option<&[&str]>, every: Duration) -> IpFilterConfig {
    IpFilterConfig {
        url: url.parse().unwrap(),
        regions: regions.map(|r| r.iter().map(|s| s.to_string()).collect()),
        update_frequency: every,
    }
}

async fn filter_for(json: &str, regions: Option<&[&str]>) -> (RangesServer, AwsIpFilter) {
    let server = RangesServer::json(200, json).await;
    let filter = AwsIpFilter::start(config(&server.url, regions, Duration::from_secs(3600)))
        .await
        .unwrap();
    (server, filter)
}

#[tokio::test]
async fn single_ipv4_prefix() {
    let (server, f) = filter_for(&ranges_json(&[("123.231.123.231/32", "")], &[]), None).await;
    let n = f.snapshot().expect("initialised");
    assert_eq!((n.ipv4_count(), n.ipv6_count()), (1, 0));
    assert!(f.contains(ip("123.231.123.231")));
    assert!(!f.contains(ip("123.231.123.232")));
    assert_eq!(server.hits(), 1);
    assert_eq!(f.fetch_attempts(), 1);
}

#[tokio::test]
async fn ipv6_prefix() {
    let (_s, f) = filter_for(&ranges_json(&[], &[("ff00::/16", "")]), None).await;
    let n = f.snapshot().expect("initialised");
    assert_eq!((n.ipv4_count(), n.ipv6_count()), (0, 1));
    assert!(f.contains(ip("ff00::")));
    assert!(!f.contains(ip("fe00::")));
}

#[tokio::test]
async fn ipv4_network() {
    for region in ["", "us-east-1"] {
        let (_s, f) = filter_for(&ranges_json(&[("192.168.0.0/24", region)], &[]), None).await;
        assert!(f.contains(ip("192.168.0.0")));
        assert!(f.contains(ip("192.168.0.1")));
        assert!(!f.contains(ip("192.169.0.0")));
    }
}

#[tokio::test]
async fn region_filter() {
    let json = ranges_json(
        &[("192.168.0.0/24", "us-east-1")],
        &[("2600:1f00::/24", "us-east-1")],
    );
    let (_s, f) = filter_for(&json, Some(&["us-east-1"])).await;
    assert!(f.contains(ip("192.168.0.1")));
    assert!(f.contains(ip("2600:1f00::5")));
    let (_s, f) = filter_for(&json, Some(&["us-west-2", "us-east-1"])).await;
    assert!(f.contains(ip("192.168.0.1")));
    let (_s, f) = filter_for(&json, Some(&["us-west-2"])).await;
    assert!(f.is_initialised());
    assert!(!f.contains(ip("192.168.0.1")));
    assert!(!f.contains(ip("2600:1f00::5")));
}

#[tokio::test]
async fn invalid_prefixes_are_skipped() {
    let (_s, f) = filter_for(
        &ranges_json(&[("9000", ""), ("192.168.0.0/24", "")], &[("zz::/999", "")]),
        None,
    )
    .await;
    let n = f.snapshot().unwrap();
    assert_eq!((n.ipv4_count(), n.ipv6_count()), (1, 0));
    assert!(f.contains(ip("192.168.0.200")));
}

#[tokio::test]
async fn failed_first_fetch_leaves_it_uninitialised() {
    let server = RangesServer::json(500, "boom").await;
    let f = AwsIpFilter::start(config(&server.url, None, Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(!f.is_initialised());
    assert!(!f.contains(ip("192.168.0.1")));
    let e = f.refresh().await.unwrap_err();
    assert!(e.contains("500") && e.contains("boom"), "{e}");
    // Nothing listening: also just uninitialised, not an error.
    let dead = AwsIpFilter::start(config(
        "http://127.0.0.1:9/x.json",
        None,
        Duration::from_secs(3600),
    ))
    .await
    .unwrap();
    assert!(!dead.is_initialised());
    assert_eq!(dead.fetch_attempts(), 1);
}

#[tokio::test]
async fn refresh_runs_regularly_and_survives_bad_bodies() {
    // Not JSON at first: the loop must go on fetching.
    let server = RangesServer::json(200, "this is not json").await;
    let f = AwsIpFilter::start(config(&server.url, None, Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(!f.is_initialised());
    assert!(
        eventually(15, || server.hits() >= 3).await,
        "only {} fetches",
        server.hits()
    );
    server.set_reply(200, ranges_json(&[("10.1.0.0/16", "")], &[]));
    assert!(
        eventually(15, || f.contains(ip("10.1.2.3"))).await,
        "refresh never picked up the new list"
    );
    // A later failure keeps the last good list.
    server.set_reply(503, "down");
    let hits = server.hits();
    assert!(eventually(15, || server.hits() >= hits + 2).await);
    assert!(f.contains(ip("10.1.2.3")));
    assert!(f.successful_fetches() >= 1);
}

#[tokio::test]
async fn dropping_the_middleware_stops_the_refresh_task() {
    let server = RangesServer::json(200, ranges_json(&[("10.1.0.0/16", "")], &[])).await;
    let (_d, key) = key_file("rsa2048-pkcs1.pem");
    let params = Parameters::new()
        .with("baseurl", "https://cdn.example.com/")
        .with("privatekey", key.as_str())
        .with("keypairid", "KID")
        .with("ipfilteredby", "aws")
        .with("updatefrequency", "100ms")
        .with("iprangesurl", server.url.as_str());
    let mw = CloudFrontMiddleware::from_parameters(Arc::new(InMemoryDriver::new()), &params)
        .await
        .unwrap();
    let liveness = mw.ip_filter().unwrap().state_liveness();
    assert!(
        eventually(15, || server.hits() >= 3).await,
        "refresh not running"
    );
    let as_driver: Arc<dyn StorageDriver> = Arc::new(mw);
    drop(as_driver);
    assert!(
        eventually(5, || liveness.upgrade().is_none()).await,
        "the refresh task still holds the filter state"
    );
    // Allow one request that may have been in flight, then nothing more.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let settled = server.hits();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.hits(), settled, "fetches continued after drop");
}

// --- the middleware's decision --------------------------------------------------------------

/// A CloudFront middleware over a driver whose own redirect is `https://s3.example/<path>` (a
/// stand-in for S3's presigned URL), with the IP filter serving 192.168.1.0/24 and
/// 2001:db8::/32.
async fn middleware(
    extra: &[(&str, &str)],
    status: u16,
) -> (RangesServer, tempfile::TempDir, CloudFrontMiddleware) {
    let server = RangesServer::json(
        status,
        &ranges_json(
            &[("192.168.1.0/24", "us-east-1")],
            &[("2001:db8::/32", "us-east-1")],
        ),
    )
    .await;
    let (dir, key) = key_file("rsa2048-pkcs1.pem");
    let s3ish = RedirectMiddleware::from_parameters(
        Arc::new(InMemoryDriver::new()),
        &Parameters::new().with("baseurl", "https://s3.example"),
    )
    .unwrap();
    let mut params = Parameters::new()
        .with("baseurl", "https://cdn.example.com/")
        .with("privatekey", key.as_str())
        .with("keypairid", "KID")
        .with("ipfilteredby", "aws")
        .with("iprangesurl", server.url.as_str());
    for (k, v) in extra {
        params.insert(*k, *v);
    }
    let mw = CloudFrontMiddleware::from_parameters(Arc::new(s3ish), &params)
        .await
        .unwrap();
    (server, dir, mw)
}

async fn target(mw: &CloudFrontMiddleware, req: RedirectRequest) -> String {
    let url = mw
        .redirect_url(&req, &StoragePath::parse("/a/b").unwrap())
        .await
        .unwrap()
        .expect("a redirect");
    if url.as_str() == "https://s3.example/a/b" {
        "s3".into()
    } else {
        assert!(
            url.as_str()
                .starts_with("https://cdn.example.com/a/b?Expires="),
            "{url}"
        );
        "cloudfront".into()
    }
}

fn from(peer: &str) -> RedirectRequest {
    RedirectRequest::get().with_remote_addr(ip(peer))
}

#[tokio::test]
async fn clients_inside_aws_get_the_wrapped_drivers_url() {
    let (_s, _d, mw) = middleware(&[], 200).await;
    assert_eq!(target(&mw, from("192.168.1.2")).await, "s3");
    assert_eq!(target(&mw, from("::ffff:192.168.1.2")).await, "s3");
    assert_eq!(target(&mw, from("2001:db8::7")).await, "s3");
    assert_eq!(target(&mw, from("192.168.0.2")).await, "cloudfront");
    assert_eq!(target(&mw, RedirectRequest::get()).await, "cloudfront");
    assert_eq!(target(&mw, RedirectRequest::head()).await, "cloudfront");
}

#[tokio::test]
async fn region_mismatch_sends_everyone_to_cloudfront() {
    let (_s, _d, mw) = middleware(
        &[("ipfilteredby", "awsregion"), ("awsregion", "eu-west-1")],
        200,
    )
    .await;
    assert_eq!(target(&mw, from("192.168.1.2")).await, "cloudfront");
    let (_s, _d, mw) = middleware(
        &[
            ("ipfilteredby", "awsregion"),
            ("awsregion", "eu-west-1,us-east-1"),
        ],
        200,
    )
    .await;
    assert_eq!(target(&mw, from("192.168.1.2")).await, "s3");
}

#[tokio::test]
async fn uninitialised_filter_sends_everyone_to_cloudfront() {
    let (_s, _d, mw) = middleware(&[], 500).await;
    assert!(!mw.ip_filter().unwrap().is_initialised());
    assert_eq!(target(&mw, from("192.168.1.2")).await, "cloudfront");
}

#[tokio::test]
async fn forwarding_headers_are_trusted_only_from_proxies() {
    let xff = |peer: &str, header: &str| {
        from(peer).with_forwarding_headers(Some(header.to_owned()), None)
    };
    // Without trusted proxies a client cannot spoof an AWS address.
    let (_s, _d, mw) = middleware(&[], 200).await;
    assert_eq!(
        target(&mw, xff("203.0.113.9", "192.168.1.2")).await,
        "cloudfront"
    );
    assert_eq!(
        target(
            &mw,
            from("203.0.113.9").with_forwarding_headers(None, Some("192.168.1.2".into()))
        )
        .await,
        "cloudfront"
    );

    let (_s, _d, mw) = middleware(&[("trustedproxies", "10.0.0.0/8")], 200).await;
    // Behind the trusted proxy, the address it recorded counts …
    assert_eq!(target(&mw, xff("10.0.0.1", "192.168.1.2")).await, "s3");
    assert_eq!(
        target(
            &mw,
            from("10.0.0.1").with_forwarding_headers(None, Some("192.168.1.2".into()))
        )
        .await,
        "s3"
    );
    // … but a forged entry left of the one the proxy appended does not.
    assert_eq!(
        target(&mw, xff("10.0.0.1", "192.168.1.2, 203.0.113.9")).await,
        "cloudfront"
    );
    // An untrusted peer's headers are still ignored.
    assert_eq!(
        target(&mw, xff("203.0.113.9", "192.168.1.2")).await,
        "cloudfront"
    );
}
