//! Option parsing of the three middlewares (reference §3 and the cases of §4.4).

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use regstore_driver_api::{Error, Parameters, RedirectRequest, StorageDriver, StoragePath, Value};
use regstore_driver_inmemory::InMemoryDriver;
use regstore_middleware_cloudfront::{
    CloudFrontMiddleware, CloudFrontOptions, HashAlgorithm, IpFilterMode, RedirectMiddleware,
    RewriteMiddleware,
};

fn inmemory() -> Arc<dyn StorageDriver> {
    Arc::new(InMemoryDriver::new())
}

fn path(s: &str) -> StoragePath {
    StoragePath::parse(s).unwrap()
}

/// Asserts `InvalidParameter` from `driver` naming `parameter`, with `needle` in the message.
fn assert_invalid(
    result: Result<impl std::fmt::Debug, Error>,
    driver: &str,
    parameter: &str,
    needle: &str,
) {
    match result {
        Err(Error::InvalidParameter {
            driver: d,
            parameter: p,
            message,
        }) => {
            assert_eq!((d.as_str(), p.as_str()), (driver, parameter), "{message}");
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        other => panic!("expected InvalidParameter({parameter}) from {driver}, got {other:?}"),
    }
}

fn cf_params(key: &str) -> Parameters {
    Parameters::new()
        .with("baseurl", "https://cdn.example.com")
        .with("privatekey", key)
        .with("keypairid", "KID")
}

fn cf(p: &Parameters) -> regstore_driver_api::Result<CloudFrontOptions> {
    CloudFrontOptions::from_parameters(p)
}

#[test]
fn cloudfront_required_options() {
    let (_d, key) = key_file("rsa1024-pkcs1.pem");
    assert_invalid(
        cf(&Parameters::new()),
        "cloudfront",
        "baseurl",
        "no baseurl provided",
    );
    assert_invalid(
        cf(&cf_params(&key).with("baseurl", 5i64)),
        "cloudfront",
        "baseurl",
        "baseurl must be a string",
    );
    assert_invalid(
        cf(&cf_params(&key).with("baseurl", "https://")),
        "cloudfront",
        "baseurl",
        "invalid baseurl",
    );
    assert_invalid(
        cf(&cf_params(&key).with("baseurl", "https://cdn.example.com/?x=1")),
        "cloudfront",
        "baseurl",
        "query",
    );
    let mut p = cf_params(&key);
    p.remove("privatekey");
    assert_invalid(cf(&p), "cloudfront", "privatekey", "no privatekey provided");
    assert_invalid(
        cf(&cf_params(&key).with("privatekey", true)),
        "cloudfront",
        "privatekey",
        "privatekey must be a string",
    );
    assert_invalid(
        cf(&cf_params("/nonexistent/key.pem")),
        "cloudfront",
        "privatekey",
        "failed to read privatekey file",
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    assert_invalid(
        cf(&cf_params(junk.to_str().unwrap())),
        "cloudfront",
        "privatekey",
        "failed to decode private key",
    );
    let mut p = cf_params(&key);
    p.remove("keypairid");
    assert_invalid(cf(&p), "cloudfront", "keypairid", "no keypairid provided");
    assert_invalid(
        cf(&cf_params(&key).with("keypairid", 7i64)),
        "cloudfront",
        "keypairid",
        "keypairid must be a string",
    );
    assert_invalid(
        cf(&cf_params(&key).with("keypairid", "K&Expires=1")),
        "cloudfront",
        "keypairid",
        "invalid key pair id",
    );
}

#[test]
fn cloudfront_optional_options() {
    let (_d, key) = key_file("rsa2048-pkcs8.pem");
    let o = cf(&cf_params(&key)).unwrap();
    assert_eq!(o.duration, Duration::from_secs(20 * 60));
    assert_eq!(o.update_frequency, Duration::from_secs(12 * 3600));
    assert_eq!(o.ip_filter, IpFilterMode::None);
    assert_eq!(
        o.ip_ranges_url.as_str(),
        "https://ip-ranges.amazonaws.com/ip-ranges.json"
    );
    assert_eq!(o.signer.hash_algorithm(), HashAlgorithm::Sha1);
    assert!(o.trusted_proxies.is_empty());

    let o = cf(&cf_params(&key)
        .with("duration", "3000s")
        .with("ipfilteredby", " AWSRegion ")
        .with("awsregion", "us-east-1, US-WEST-2,")
        .with("updatefrequency", "1h30m")
        .with("iprangesurl", "http://127.0.0.1:1/r.json")
        .with("hashalgorithm", "SHA256")
        .with("trustedproxies", "10.0.0.0/8, 192.0.2.1 ,2001:db8::/32"))
    .unwrap();
    assert_eq!(o.duration, Duration::from_secs(3000));
    assert_eq!(
        o.ip_filter,
        IpFilterMode::AwsRegion(vec!["us-east-1".into(), "us-west-2".into()])
    );
    assert_eq!(o.update_frequency, Duration::from_secs(5400));
    assert_eq!(o.ip_ranges_url.as_str(), "http://127.0.0.1:1/r.json");
    assert_eq!(o.signer.hash_algorithm(), HashAlgorithm::Sha256);
    let proxies: Vec<String> = o.trusted_proxies.iter().map(|c| c.to_string()).collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]);

    assert_eq!(
        cf(&cf_params(&key).with("ipfilteredby", "aws"))
            .unwrap()
            .ip_filter,
        IpFilterMode::Aws
    );
    assert_eq!(
        cf(&cf_params(&key).with("ipfilteredby", ""))
            .unwrap()
            .ip_filter,
        IpFilterMode::None
    );
    // Lists are accepted where a comma list is.
    let list = Value::List(vec!["eu-west-1".into(), "EU-CENTRAL-1".into()]);
    assert_eq!(
        cf(&cf_params(&key)
            .with("ipfilteredby", "awsregion")
            .with("awsregion", list))
        .unwrap()
        .ip_filter,
        IpFilterMode::AwsRegion(vec!["eu-west-1".into(), "eu-central-1".into()])
    );
    // The legacy misspelling is honoured (with a warning) when the right key is absent.
    let o = cf(&cf_params(&key).with("updatefrenquency", "2h")).unwrap();
    assert_eq!(o.update_frequency, Duration::from_secs(7200));
    let o = cf(&cf_params(&key)
        .with("updatefrenquency", "2h")
        .with("updatefrequency", "3h"))
    .unwrap();
    assert_eq!(o.update_frequency, Duration::from_secs(3 * 3600));
}

#[test]
fn cloudfront_option_errors() {
    let (_d, key) = key_file("rsa1024-pkcs1.pem");
    let p = || cf_params(&key);
    assert_invalid(
        cf(&p().with("duration", "3000 s")),
        "cloudfront",
        "duration",
        "invalid duration",
    );
    assert_invalid(
        cf(&p().with("duration", 3000i64)),
        "cloudfront",
        "duration",
        "invalid duration",
    );
    assert_invalid(
        cf(&p().with("duration", "0s")),
        "cloudfront",
        "duration",
        "greater than zero",
    );
    let msg = "ipfilteredby only allows a string with the following value: none|aws|awsregion";
    assert_invalid(
        cf(&p().with("ipfilteredby", 1i64)),
        "cloudfront",
        "ipfilteredby",
        msg,
    );
    assert_invalid(
        cf(&p().with("ipfilteredby", "gcp")),
        "cloudfront",
        "ipfilteredby",
        msg,
    );
    assert_invalid(
        cf(&p().with("ipfilteredby", "awsregion")),
        "cloudfront",
        "awsregion",
        "awsRegion is not defined",
    );
    assert_invalid(
        cf(&p()
            .with("ipfilteredby", "awsregion")
            .with("awsregion", " , ")),
        "cloudfront",
        "awsregion",
        "awsRegion is not defined",
    );
    assert_invalid(
        cf(&p()
            .with("ipfilteredby", "awsregion")
            .with("awsregion", 5i64)),
        "cloudfront",
        "awsregion",
        "awsRegion must be a comma separated string of valid aws regions",
    );
    assert_invalid(
        cf(&p().with("updatefrequency", "soon")),
        "cloudfront",
        "updatefrequency",
        "invalid updatefrequency",
    );
    assert_invalid(
        cf(&p().with("updatefrenquency", "soon")),
        "cloudfront",
        "updatefrenquency",
        "invalid updatefrenquency",
    );
    assert_invalid(
        cf(&p().with("iprangesurl", 1i64)),
        "cloudfront",
        "iprangesurl",
        "iprangesurl must be a string",
    );
    assert_invalid(
        cf(&p().with("iprangesurl", "ftp://x/y")),
        "cloudfront",
        "iprangesurl",
        "http or https",
    );
    assert_invalid(
        cf(&p().with("hashalgorithm", "md5")),
        "cloudfront",
        "hashalgorithm",
        "sha1 or sha256",
    );
    // ring refuses 1024-bit RSA keys and CloudFront wants 2048.
    assert_invalid(
        cf(&p().with("hashalgorithm", "sha256")),
        "cloudfront",
        "privatekey",
        "2048",
    );
    let (_e, ec) = key_file("ec-p256-pkcs8.pem");
    assert_invalid(
        cf(&cf_params(&ec).with("hashalgorithm", "sha1")),
        "cloudfront",
        "hashalgorithm",
        "sha256",
    );
    assert_invalid(
        cf(&p().with("trustedproxies", "10.0.0.0/8, proxy.local")),
        "cloudfront",
        "trustedproxies",
        "proxy.local",
    );
    assert_invalid(
        cf(&p().with("trustedproxies", "10.0.0.0/33")),
        "cloudfront",
        "trustedproxies",
        "invalid trustedproxies entry",
    );
}

/// distribution's TestCloudFrontStorageMiddlewareGenerateKey: scheme-less baseurl, 1024-bit
/// PKCS#1 key, key pair id `test`.
#[tokio::test]
async fn cloudfront_scheme_less_baseurl_and_small_key() {
    let (_d, key) = key_file("rsa1024-pkcs1.pem");
    let p = Parameters::new()
        .with("baseurl", "example.com")
        .with("privatekey", key.as_str())
        .with("keypairid", "test");
    let mw = CloudFrontMiddleware::from_parameters(inmemory(), &p)
        .await
        .unwrap();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let url = mw
        .redirect_url(
            &RedirectRequest::get(),
            &path("/docker/registry/v2/blobs/x/data"),
        )
        .await
        .unwrap()
        .expect("a CloudFront URL");
    let s = url.as_str();
    assert!(
        s.starts_with("https://example.com/docker/registry/v2/blobs/x/data?Expires="),
        "{s}"
    );
    assert!(s.ends_with("&Key-Pair-Id=test"), "{s}");
    let expires: u64 = param(s, "Expires").parse().unwrap();
    assert!(
        (before + 1200..=before + 1205).contains(&expires),
        "{expires} vs {before}"
    );
}

// --- redirect (§3.2, §4.4) ------------------------------------------------------------------

fn redirect(baseurl: Option<Value>) -> regstore_driver_api::Result<RedirectMiddleware> {
    let mut p = Parameters::new();
    if let Some(v) = baseurl {
        p.insert("baseurl", v);
    }
    RedirectMiddleware::from_parameters(inmemory(), &p)
}

#[test]
fn redirect_option_errors() {
    assert_invalid(redirect(None), "redirect", "baseurl", "no baseurl provided");
    assert_invalid(
        redirect(Some(Value::Int(1))),
        "redirect",
        "baseurl",
        "baseurl must be a string",
    );
    assert_invalid(
        redirect(Some("example.com".into())),
        "redirect",
        "baseurl",
        "no scheme specified for redirect baseurl",
    );
    assert_invalid(
        redirect(Some("https://".into())),
        "redirect",
        "baseurl",
        "no host specified for redirect baseurl",
    );
    assert_invalid(
        redirect(Some("https://exa mple.com".into())),
        "redirect",
        "baseurl",
        "unable to parse redirect baseurl",
    );
}

#[tokio::test]
async fn redirect_urls() {
    let get = RedirectRequest::get();
    let m = redirect(Some("https://example.com:5443".into())).unwrap();
    let u = m
        .redirect_url(&get, &path("/rick/data"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.as_str(), "https://example.com:5443/rick/data");
    let m = redirect(Some("http://example.com".into())).unwrap();
    let u = m
        .redirect_url(&RedirectRequest::head(), &path("/morty/data"))
        .await
        .unwrap();
    assert_eq!(u.unwrap().as_str(), "http://example.com/morty/data");
    for base in ["https://example.com/path", "https://example.com/path/"] {
        let m = redirect(Some(base.into())).unwrap();
        let u = m
            .redirect_url(&get, &path("/morty/data"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.as_str(), "https://example.com/path/morty/data", "{base}");
    }
    let other = RedirectRequest::new(regstore_driver_api::RedirectMethod::Other);
    assert_eq!(
        m.redirect_url(&other, &path("/morty/data")).await.unwrap(),
        None
    );
}

// --- rewrite (§3.3, §4.4) -------------------------------------------------------------------

/// The wrapped "driver" answers `http://some.host/some/path/file` for `/file`, like
/// distribution's mock.
fn rewrite(options: Parameters) -> regstore_driver_api::Result<RewriteMiddleware> {
    let inner = RedirectMiddleware::from_parameters(
        inmemory(),
        &Parameters::new().with("baseurl", "http://some.host/some/path"),
    )
    .unwrap();
    RewriteMiddleware::from_parameters(Arc::new(inner), &options)
}

async fn rewritten(m: &RewriteMiddleware) -> String {
    m.redirect_url(&RedirectRequest::get(), &path("/file"))
        .await
        .unwrap()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn rewrite_cases() {
    assert_eq!(
        rewritten(&rewrite(Parameters::new()).unwrap()).await,
        "http://some.host/some/path/file"
    );
    assert_invalid(
        rewrite(Parameters::new().with("scheme", 1i64)),
        "rewrite",
        "scheme",
        "scheme must be a string",
    );
    assert_invalid(
        rewrite(Parameters::new().with("host", true)),
        "rewrite",
        "host",
        "host must be a string",
    );
    assert_invalid(
        rewrite(Parameters::new().with("trimpathprefix", 2i64)),
        "rewrite",
        "trimpathprefix",
        "trimpathprefix must be a string",
    );
    assert_invalid(
        rewrite(Parameters::new().with("scheme", "gopher")),
        "rewrite",
        "scheme",
        "http or https",
    );
    assert_invalid(
        rewrite(Parameters::new().with("host", "a b/c")),
        "rewrite",
        "host",
        "HOST:PORT",
    );
    let m = rewrite(
        Parameters::new()
            .with("scheme", "https")
            .with("host", "example.com"),
    )
    .unwrap();
    assert_eq!(rewritten(&m).await, "https://example.com/some/path/file");
    let m = rewrite(Parameters::new().with("host", "cdn.example.com:8443")).unwrap();
    assert_eq!(
        rewritten(&m).await,
        "http://cdn.example.com:8443/some/path/file"
    );
    let m = rewrite(Parameters::new().with("trimpathprefix", "/some/path")).unwrap();
    assert_eq!(rewritten(&m).await, "http://some.host/file");
    // Only at a component boundary.
    let m = rewrite(Parameters::new().with("trimpathprefix", "/some/pa")).unwrap();
    assert_eq!(rewritten(&m).await, "http://some.host/some/path/file");
}

#[tokio::test]
async fn rewrite_keeps_no_redirect() {
    // The in-memory driver never redirects; distribution would invent `https://example.com`.
    let m = RewriteMiddleware::from_parameters(
        inmemory(),
        &Parameters::new()
            .with("scheme", "https")
            .with("host", "example.com"),
    )
    .unwrap();
    assert_eq!(
        m.redirect_url(&RedirectRequest::get(), &path("/file"))
            .await
            .unwrap(),
        None
    );
}

// --- warnings -------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// The log lines `f` emits.
fn logs_of(f: impl FnOnce()) -> String {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = capture.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[cfg(unix)]
#[test]
fn warns_about_readable_key_files_and_the_legacy_option() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_d, key) = key_file("rsa2048-pkcs1.pem");
    let quiet = logs_of(|| {
        cf(&cf_params(&key)).unwrap();
    });
    assert!(!quiet.contains("readable"), "{quiet}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loud = logs_of(|| {
        cf(&cf_params(&key)).unwrap();
    });
    assert!(loud.contains("readable by group or others"), "{loud}");
    assert!(!loud.contains("BEGIN"), "the key itself is never logged");
    let legacy = logs_of(|| {
        cf(&cf_params(&key).with("updatefrenquency", "1h")).unwrap();
    });
    assert!(
        legacy.contains("updatefrenquency is deprecated"),
        "{legacy}"
    );
}
