//! The HTTP layer under rusoto: addressing, signing (SigV4 or SigV2), request statistics.
//!
//! The rusoto client is built with `Client::new_not_signing`, so every request reaches
//! [`Dispatcher`] unsigned and path-style (`/bucket/key`). The dispatcher then
//!
//! 1. rewrites it to virtual-hosted style (`bucket.host`, path without `/bucket`) unless path
//!    style is forced,
//! 2. adds `Content-MD5` to `DeleteObjects` if missing (several servers require it),
//! 3. signs it — SigV4 through rusoto's signer, or SigV2 through [`crate::sigv2`] over exactly
//!    the path it will send,
//! 4. counts it in [`RequestStats`] by S3 operation and sends it on a keep-alive pool.
//!
//! Signing here rather than in rusoto's client keeps one code path for both signature
//! versions and lets the SigV2 canonical resource match the final address.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use hyper::client::HttpConnector;
use hyper_tls::HttpsConnector;
use md5::{Digest as _, Md5};
use rusoto_core::request::{
    DispatchSignedRequest, DispatchSignedRequestFuture, HttpClient, HttpDispatchError,
};
use rusoto_core::signature::{SignedRequest, SignedRequestPayload};

use crate::config::S3Config;
use crate::credentials::CredentialsProvider;
use crate::sigv2;

/// S3 operation names counted by [`RequestStats`], in a fixed order.
const OPERATIONS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateMultipartUpload",
    "DeleteBucket",
    "DeleteObject",
    "DeleteObjects",
    "GetBucketAcl",
    "GetBucketLocation",
    "GetObject",
    "GetObjectAcl",
    "HeadBucket",
    "HeadObject",
    "ListMultipartUploads",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "PutBucketAcl",
    "PutObject",
    "PutObjectAcl",
    "UploadPart",
    "UploadPartCopy",
    "Other",
];

/// Counts of HTTP requests sent, by S3 operation (`GetObject`, `UploadPart`, …).
///
/// Every request the driver sends is counted once when it is handed to the HTTP client,
/// whether it then succeeds or not. Lock-free; shared by all clones of a driver.
#[derive(Debug)]
pub struct RequestStats {
    counts: Vec<AtomicU64>,
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            counts: OPERATIONS.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl RequestStats {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts of the operations seen so far; operations never sent are absent.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        OPERATIONS
            .iter()
            .zip(&self.counts)
            .filter_map(|(name, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| ((*name).to_owned(), n))
            })
            .collect()
    }

    /// Total requests sent.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Count of one operation (0 for unknown names).
    pub fn get(&self, operation: &str) -> u64 {
        OPERATIONS
            .iter()
            .position(|o| *o == operation)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    fn record(&self, operation: &'static str) {
        let i = OPERATIONS
            .iter()
            .position(|o| *o == operation)
            .unwrap_or(OPERATIONS.len() - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The S3 operation a path-style request performs, from its method, sub-resources, whether
/// it names an object, and the copy-source header.
pub(crate) fn operation(request: &SignedRequest, bucket: &str) -> &'static str {
    let has = |k: &str| request.params.contains_key(k);
    let object_level = {
        let rest = request
            .path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(bucket))
            .unwrap_or("");
        rest.len() > 1 && rest.starts_with('/')
    };
    let copy = request.headers.contains_key("x-amz-copy-source");
    match (request.method.as_str(), object_level) {
        ("GET", false) if has("list-type") => "ListObjectsV2",
        ("GET", false) if has("uploads") => "ListMultipartUploads",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) if has("acl") => "GetBucketAcl",
        ("GET", false) => "ListObjects",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) if has("acl") => "GetObjectAcl",
        ("GET", true) => "GetObject",
        ("HEAD", false) => "HeadBucket",
        ("HEAD", true) => "HeadObject",
        ("PUT", false) if has("acl") => "PutBucketAcl",
        ("PUT", false) => "CreateBucket",
        ("PUT", true) if has("uploadId") && copy => "UploadPartCopy",
        ("PUT", true) if has("uploadId") => "UploadPart",
        ("PUT", true) if has("acl") => "PutObjectAcl",
        ("PUT", true) if copy => "CopyObject",
        ("PUT", true) => "PutObject",
        ("POST", false) if has("delete") => "DeleteObjects",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", false) => "DeleteBucket",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        _ => "Other",
    }
}

/// Whether `bucket` can be a DNS label prefix without breaking TLS (no dots, lower-case
/// letters, digits and hyphens). Other buckets stay path-style, as the AWS SDKs do.
fn virtual_host_compatible(bucket: &str) -> bool {
    !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// How a request for `bucket` is addressed.
#[derive(Debug, Clone)]
pub(crate) struct Addressing {
    /// The bucket every request of this driver targets.
    pub(crate) bucket: String,
    /// Keep `/bucket/key` on the endpoint host instead of `bucket.host/key`.
    pub(crate) path_style: bool,
}

impl Addressing {
    /// From the configuration: virtual-hosted unless `forcepathstyle` or the bucket name
    /// cannot be a host label.
    pub(crate) fn new(config: &S3Config) -> Self {
        Addressing {
            bucket: config.bucket.clone(),
            path_style: config.force_path_style || !virtual_host_compatible(&config.bucket),
        }
    }

    /// Rewrites a rusoto path-style request (`/bucket[/key]`) to the final address and returns
    /// the SigV2 canonical resource path for it: the path as sent, prefixed with `/bucket` for
    /// virtual-hosted requests. Requests for other buckets (none today) are left path-style.
    pub(crate) fn apply(&self, request: &mut SignedRequest) -> String {
        if !self.path_style {
            let rest = request
                .path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(self.bucket.as_str()))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(str::to_owned);
            if let Some(rest) = rest {
                let host = format!("{}.{}", self.bucket, request.hostname());
                request.set_hostname(Some(host));
                request.path = if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest
                };
                return format!("/{}{}", self.bucket, request.canonical_path());
            }
        }
        request.canonical_path()
    }
}

/// Which signature the dispatcher adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureVersion {
    /// AWS Signature Version 4 (rusoto's signer).
    V4,
    /// AWS Signature Version 2 ([`crate::sigv2`]).
    V2,
}

struct Inner {
    /// rusoto's hyper client (boxed so tests can give it another connector).
    http: Box<dyn DispatchSignedRequest + Send + Sync>,
    credentials: Arc<CredentialsProvider>,
    signature: SignatureVersion,
    addressing: Addressing,
    user_agent: String,
    stats: Arc<RequestStats>,
}

/// rusoto's request dispatcher for this driver: addresses, signs, counts and sends.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<Inner>,
}

/// Builds the HTTPS-capable connector. TLS certificates are verified unless `skip_verify`.
fn connector(skip_verify: bool) -> Result<HttpsConnector<HttpConnector>, native_tls::Error> {
    if !skip_verify {
        return Ok(HttpsConnector::new());
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let tls = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true)
        .build()?;
    Ok(HttpsConnector::from((
        http,
        tokio_native_tls::TlsConnector::from(tls),
    )))
}

impl Dispatcher {
    /// A dispatcher for `config`, signing with `credentials` and counting into `stats`.
    pub(crate) fn new(
        config: &S3Config,
        credentials: Arc<CredentialsProvider>,
        stats: Arc<RequestStats>,
    ) -> Result<Self, native_tls::Error> {
        let http = http_client(config, connector(config.skip_verify)?);
        Ok(Self::with_http(config, credentials, stats, Box::new(http)))
    }

    /// A dispatcher sending through `http` (tests use this to resolve virtual hosts).
    pub(crate) fn with_http(
        config: &S3Config,
        credentials: Arc<CredentialsProvider>,
        stats: Arc<RequestStats>,
        http: Box<dyn DispatchSignedRequest + Send + Sync>,
    ) -> Self {
        Dispatcher {
            inner: Arc::new(Inner {
                http,
                credentials,
                signature: if config.v4auth {
                    SignatureVersion::V4
                } else {
                    SignatureVersion::V2
                },
                addressing: Addressing::new(config),
                user_agent: user_agent(config),
                stats,
            }),
        }
    }
}

/// rusoto's HTTP client over `connector`, with the configured keep-alive pool.
pub(crate) fn http_client<C>(config: &S3Config, connector: C) -> HttpClient<C>
where
    C: hyper::client::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut builder = hyper::Client::builder();
    builder.pool_max_idle_per_host(config.max_idle_conns_per_host);
    builder.pool_idle_timeout(if config.idle_conn_timeout.is_zero() {
        None
    } else {
        Some(config.idle_conn_timeout)
    });
    HttpClient::from_builder(builder, connector)
}

/// `regstore/<version> rusoto/0.48` plus the configured `useragent`, if any.
fn user_agent(config: &S3Config) -> String {
    let base = format!("regstore/{} rusoto/0.48", env!("CARGO_PKG_VERSION"));
    match &config.user_agent {
        Some(extra) => format!("{base} {extra}"),
        None => base,
    }
}

/// Adds `Content-MD5` of a buffered body when the request has none, and drops duplicates
/// (rusoto's own helper looks the header up with the wrong case and may add a second one).
fn ensure_content_md5(request: &mut SignedRequest) {
    if let Some(values) = request.headers.get_mut("content-md5") {
        values.truncate(1);
        return;
    }
    if let Some(SignedRequestPayload::Buffer(body)) = &request.payload {
        let digest = Md5::digest(body);
        let value = base64_std(&digest);
        request.add_header("content-md5", &value);
    }
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Inner {
    async fn send(
        &self,
        mut request: SignedRequest,
        timeout: Option<Duration>,
    ) -> Result<rusoto_core::request::HttpResponse, HttpDispatchError> {
        let op = operation(&request, &self.addressing.bucket);
        if op == "DeleteObjects" {
            ensure_content_md5(&mut request);
        }
        let resource = self.addressing.apply(&mut request);
        request.remove_header("user-agent");
        request.add_header("user-agent", &self.user_agent);
        let creds = self
            .credentials
            .credentials()
            .await
            .map_err(|e| HttpDispatchError::new(format!("s3aws: no credentials: {e}")))?;
        match self.signature {
            SignatureVersion::V4 => request.sign(&creds),
            SignatureVersion::V2 => {
                request.complement();
                sigv2::sign_request(&mut request, &creds, &resource, chrono::Utc::now());
            }
        }
        self.stats.record(op);
        let method = request.method.clone();
        let result = self.http.dispatch(request, timeout).await;
        match &result {
            Ok(resp) => tracing::debug!(op, %method, status = resp.status.as_u16(), "s3 request"),
            Err(e) => tracing::debug!(op, %method, error = %e, "s3 request failed"),
        }
        result
    }
}

impl DispatchSignedRequest for Dispatcher {
    fn dispatch(
        &self,
        request: SignedRequest,
        timeout: Option<Duration>,
    ) -> DispatchSignedRequestFuture {
        let inner = Arc::clone(&self.inner);
        async move { inner.send(request, timeout).await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusoto_core::param::{Params, ServiceParams};
    use rusoto_core::Region;

    fn region() -> Region {
        Region::Custom {
            name: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9007".into(),
        }
    }

    fn req(method: &str, path: &str, keys: &[&str], values: &[(&str, &str)]) -> SignedRequest {
        let mut r = SignedRequest::new(method, "s3", &region(), path);
        let mut p = Params::new();
        for k in keys {
            p.put_key(k);
        }
        for (k, v) in values {
            p.put(k, *v);
        }
        r.set_params(p);
        r
    }

    #[test]
    fn operations_are_classified() {
        let b = "bkt";
        let cases: Vec<(SignedRequest, &str)> = vec![
            (req("GET", "/bkt/a/b", &[], &[]), "GetObject"),
            (req("HEAD", "/bkt/a/b", &[], &[]), "HeadObject"),
            (req("PUT", "/bkt/a/b", &[], &[]), "PutObject"),
            (
                req("POST", "/bkt/a/b", &["uploads"], &[]),
                "CreateMultipartUpload",
            ),
            (
                req(
                    "PUT",
                    "/bkt/a/b",
                    &[],
                    &[("partNumber", "1"), ("uploadId", "u")],
                ),
                "UploadPart",
            ),
            (
                req("POST", "/bkt/a/b", &[], &[("uploadId", "u")]),
                "CompleteMultipartUpload",
            ),
            (
                req("DELETE", "/bkt/a/b", &[], &[("uploadId", "u")]),
                "AbortMultipartUpload",
            ),
            (
                req("GET", "/bkt/a/b", &[], &[("uploadId", "u")]),
                "ListParts",
            ),
            (
                req("GET", "/bkt", &[], &[("list-type", "2")]),
                "ListObjectsV2",
            ),
            (
                req("GET", "/bkt", &["uploads"], &[("prefix", "a")]),
                "ListMultipartUploads",
            ),
            (req("POST", "/bkt", &["delete"], &[]), "DeleteObjects"),
            (req("DELETE", "/bkt/a", &[], &[]), "DeleteObject"),
            (req("HEAD", "/bkt", &[], &[]), "HeadBucket"),
            (req("PUT", "/bkt", &[], &[]), "CreateBucket"),
            (req("GET", "/bkt", &[], &[]), "ListObjects"),
            (req("GET", "/bkt/a", &["acl"], &[]), "GetObjectAcl"),
            (req("PATCH", "/bkt/a", &[], &[]), "Other"),
        ];
        for (r, want) in cases {
            assert_eq!(
                operation(&r, b),
                want,
                "{} {} {:?}",
                r.method,
                r.path,
                r.params
            );
        }
        let mut copy = req("PUT", "/bkt/a", &[], &[]);
        copy.add_header("x-amz-copy-source", "/bkt/b");
        assert_eq!(operation(&copy, b), "CopyObject");
        let mut part_copy = req(
            "PUT",
            "/bkt/a",
            &[],
            &[("partNumber", "2"), ("uploadId", "u")],
        );
        part_copy.add_header("x-amz-copy-source", "/bkt/b");
        assert_eq!(operation(&part_copy, b), "UploadPartCopy");
        // Another bucket whose name starts with ours is bucket-level, not our key "x".
        assert_eq!(operation(&req("GET", "/bktx", &[], &[]), b), "ListObjects");
        assert_eq!(operation(&req("GET", "/bkt/x", &[], &[]), b), "GetObject");
        // A trailing slash alone names no key.
        assert_eq!(operation(&req("GET", "/bkt/", &[], &[]), b), "ListObjects");
    }

    #[test]
    fn stats_count_and_snapshot() {
        let s = RequestStats::new();
        assert_eq!(s.total(), 0);
        assert!(s.snapshot().is_empty());
        s.record("GetObject");
        s.record("GetObject");
        s.record("UploadPart");
        s.record("NotAnOp");
        assert_eq!(s.total(), 4);
        assert_eq!(s.get("GetObject"), 2);
        assert_eq!(s.get("Other"), 1);
        let snap = s.snapshot();
        assert_eq!(snap.len(), 3);
        assert_eq!(snap["UploadPart"], 1);
    }

    #[test]
    fn addressing_path_and_virtual_host() {
        let path = Addressing {
            bucket: "bkt".into(),
            path_style: true,
        };
        let mut r = req("GET", "/bkt", &[], &[("list-type", "2")]);
        assert_eq!(
            path.apply(&mut r),
            "/bkt",
            "bucket-level path style: no trailing slash"
        );
        assert_eq!(r.hostname(), "127.0.0.1:9007");
        let mut r = req("GET", "/bkt/a b/c", &[], &[]);
        assert_eq!(
            path.apply(&mut r),
            "/bkt/a%20b/c",
            "signs the encoded path as sent"
        );

        let vhost = Addressing {
            bucket: "bkt".into(),
            path_style: false,
        };
        let mut r = req("GET", "/bkt/a/b", &[], &[]);
        assert_eq!(vhost.apply(&mut r), "/bkt/a/b");
        assert_eq!(r.hostname(), "bkt.127.0.0.1:9007");
        assert_eq!(r.canonical_path(), "/a/b");
        let mut r = req("GET", "/bkt", &[], &[]);
        assert_eq!(vhost.apply(&mut r), "/bkt/");
        assert_eq!(r.canonical_path(), "/");
        assert!(!virtual_host_compatible("my.bucket"));
        assert!(!virtual_host_compatible("My-Bucket"));
        assert!(virtual_host_compatible("my-bucket-1"));
    }

    #[test]
    fn delete_objects_gets_one_content_md5() {
        let mut r = req("POST", "/bkt", &["delete"], &[]);
        r.set_payload(Some(b"<Delete/>".to_vec()));
        ensure_content_md5(&mut r);
        let want = base64_std(&Md5::digest(b"<Delete/>"));
        assert_eq!(r.headers["content-md5"], vec![want.clone().into_bytes()]);
        r.add_header("Content-MD5", &want);
        ensure_content_md5(&mut r);
        assert_eq!(r.headers["content-md5"].len(), 1);
    }

    /// A one-file HTTPS server with a fresh self-signed certificate (made with the `openssl`
    /// command), answering every request `200 OK`. `None` when `openssl` is unavailable.
    async fn self_signed_server() -> Option<(
        u16,
        tokio::task::JoinHandle<()>,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    )> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let dir = tempfile::tempdir().ok()?;
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let ok = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=regstore-test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return None;
        }
        let identity = native_tls::Identity::from_pkcs8(
            &std::fs::read(&cert).ok()?,
            &std::fs::read(&key).ok()?,
        )
        .expect("openssl wrote a usable identity");
        let acceptor = tokio_native_tls::TlsAcceptor::from(
            native_tls::TlsAcceptor::new(identity).expect("acceptor builds"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        let port = listener.local_addr().ok()?.port();
        let (heads_tx, heads) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let heads_tx = heads_tx.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = heads_tx.send(String::from_utf8_lossy(&buf).to_lowercase());
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Some((port, task, heads))
    }

    #[tokio::test]
    async fn tls_verified_by_default_and_skipverify_accepts_self_signed() {
        let Some((port, server, mut heads)) = self_signed_server().await else {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but the openssl command is unavailable for the TLS test");
            }
            eprintln!("skipped: the openssl command is unavailable");
            return;
        };
        let endpoint = format!("https://127.0.0.1:{port}");
        for (skip_verify, v4auth) in [(false, true), (true, true), (true, false)] {
            let config = S3Config::from_parameters(
                &regstore_driver_api::Parameters::new()
                    .with("bucket", "bkt")
                    .with("regionendpoint", endpoint.as_str())
                    .with("accesskey", "AK")
                    .with("secretkey", "SECRETVALUE123")
                    .with("sessiontoken", "SESSIONTOKEN456")
                    .with("useragent", "my-registry/2.0")
                    .with("v4auth", v4auth)
                    .with("skipverify", skip_verify),
            )
            .unwrap();
            let creds = Arc::new(CredentialsProvider::new(&config.credentials));
            let stats = Arc::new(RequestStats::new());
            let d = Dispatcher::new(&config, creds, Arc::clone(&stats)).unwrap();
            let region = Region::Custom {
                name: "us-east-1".into(),
                endpoint: endpoint.clone(),
            };
            let r = SignedRequest::new("HEAD", "s3", &region, "/bkt/key");
            let res = d.dispatch(r, Some(Duration::from_secs(10))).await;
            if skip_verify {
                let resp = res.expect("skipverify accepts a self-signed certificate");
                assert_eq!(resp.status.as_u16(), 200);
            } else {
                let Err(err) = res else {
                    panic!("a self-signed certificate must be refused by default");
                };
                assert!(err.to_string().contains("certificate"), "{err}");
            }
            assert_eq!(stats.get("HeadObject"), 1);
            if skip_verify {
                let head = heads.recv().await.expect("the server saw the request");
                assert!(head.starts_with("head /bkt/key http/1.1\r\n"), "{head}");
                assert!(head.contains("user-agent: regstore/"), "{head}");
                assert!(head.contains(" rusoto/0.48 my-registry/2.0\r\n"), "{head}");
                assert_eq!(head.matches("user-agent").count(), 1, "{head}");
                assert!(!head.contains("secretvalue123"), "{head}");
                assert!(
                    head.contains("x-amz-security-token: sessiontoken456"),
                    "{head}"
                );
                if v4auth {
                    assert!(
                        head.contains("authorization: aws4-hmac-sha256 credential=ak/"),
                        "{head}"
                    );
                } else {
                    assert!(head.contains("authorization: aws ak:"), "{head}");
                    let date = head
                        .lines()
                        .find_map(|l| l.strip_prefix("date: "))
                        .expect("v2 sends a date header");
                    assert!(date.ends_with(" gmt"), "{date}");
                }
            }
        }
        server.abort();
    }
}
