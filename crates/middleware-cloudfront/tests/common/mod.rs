//! Helpers shared by the integration tests: test keys, signature checks, the ip-ranges stand-in
//! (`regstore-test-support`'s `ReplyServer`) and a signature-checking CloudFront edge.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).unwrap_or_else(|e| panic!("reading test data {name}: {e}"))
}

/// Reverses CloudFront's base64 substitutions and decodes.
pub fn cloudfront_unbase64(s: &str) -> Vec<u8> {
    let std: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(std)
        .expect("valid CloudFront base64")
}

/// The query parameters of a signed URL, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let (_, q) = url.split_once('?').expect("signed URL has a query");
    q.split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub fn param(url: &str, name: &str) -> String {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} missing in {url}"))
        .1
}

/// The uncompressed P-256 point at the end of a SubjectPublicKeyInfo.
pub fn ec_public_point() -> Vec<u8> {
    let spki = data("ec-p256-public-spki.der");
    spki[spki.len() - 65..].to_vec()
}

pub fn verify(
    alg: &'static dyn ring::signature::VerificationAlgorithm,
    public_key: &[u8],
    message: &[u8],
    signature_b64: &str,
) -> bool {
    ring::signature::UnparsedPublicKey::new(alg, public_key)
        .verify(message, &cloudfront_unbase64(signature_b64))
        .is_ok()
}

/// A private key copied into a temp dir with mode 0600 (so no permission warning clutters the
/// log), kept alive by the returned guard.
pub fn key_file(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, data(name)).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let p = path.to_str().expect("utf-8 temp path").to_owned();
    (dir, p)
}

/// The ip-ranges list stand-in: answers every request with its JSON and counts them.
#[allow(unused_imports)] // not every test binary uses it
pub use regstore_test_support::ReplyServer as RangesServer;

/// An ip-ranges document with the given IPv4 and IPv6 (prefix, region) entries.
pub fn ranges_json(v4: &[(&str, &str)], v6: &[(&str, &str)]) -> String {
    let v4: Vec<_> = v4
        .iter()
        .map(|(p, r)| serde_json::json!({"ip_prefix": p, "region": r, "service": "EC2"}))
        .collect();
    let v6: Vec<_> = v6
        .iter()
        .map(|(p, r)| serde_json::json!({"ipv6_prefix": p, "region": r, "service": "S3"}))
        .collect();
    serde_json::json!({"syncToken": "1", "createDate": "2026-01-01-00-00-00", "prefixes": v4, "ipv6_prefixes": v6})
        .to_string()
}

/// Polls `cond` every 20 ms until it holds or `secs` pass; returns whether it held.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A stand-in for a CloudFront edge on 127.0.0.1: it checks a request's canned-policy signature
/// the way CloudFront does (rebuilds the policy from the requested URL and `Expires`, verifies
/// `Signature` with the public key for the announced `Hash-Algorithm`, checks `Key-Pair-Id` and
/// the expiry) and then serves the object from `origin`, mapping the URL path back to a storage
/// path by removing `strip_prefix` (the origin's root directory). Anything else is 403/404.
pub struct FakeCloudFront {
    pub base_url: String,
    pub served: Arc<AtomicU64>,
    pub rejected: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloudFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Edge {
    origin: Arc<dyn regstore_driver_api::StorageDriver>,
    rsa_public_key: Vec<u8>,
    key_pair_id: String,
    strip_prefix: String,
    base_url: String,
}

impl FakeCloudFront {
    /// Verifies with the RSA public key of `rsa2048-pkcs1.pem`.
    pub async fn start(
        origin: Arc<dyn regstore_driver_api::StorageDriver>,
        key_pair_id: &str,
        strip_prefix: &str,
    ) -> FakeCloudFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}/", listener.local_addr().expect("addr"));
        let edge = Arc::new(Edge {
            origin,
            rsa_public_key: data("rsa2048-public-pkcs1.der"),
            key_pair_id: key_pair_id.to_owned(),
            strip_prefix: strip_prefix.trim_matches('/').to_owned(),
            base_url: base_url.clone(),
        });
        let served = Arc::new(AtomicU64::new(0));
        let rejected = Arc::new(AtomicU64::new(0));
        let (s, r) = (served.clone(), rejected.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (edge, s, r) = (edge.clone(), s.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let (status, body, length) = edge.answer(&head).await;
                    if status == 200 {
                        s.fetch_add(1, Ordering::SeqCst);
                    } else {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    let header = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(header.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeCloudFront {
            base_url,
            served,
            rejected,
            task,
        }
    }
}

impl Edge {
    /// (status, body, content-length).
    async fn answer(&self, head: &str) -> (u16, Vec<u8>, usize) {
        let deny = |why: &str| {
            let b = why.as_bytes().to_vec();
            let n = b.len();
            (403u16, b, n)
        };
        let mut parts = head.lines().next().unwrap_or("").split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return deny("bad request line");
        };
        let Some((path, query)) = target.split_once('?') else {
            return deny("unsigned");
        };
        let mut expires = None;
        let mut signature = None;
        let mut key_pair_id = None;
        let mut hash = "SHA1";
        let mut other = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("Expires", v)) => expires = v.parse::<u64>().ok(),
                Some(("Signature", v)) => signature = Some(v),
                Some(("Key-Pair-Id", v)) => key_pair_id = Some(v),
                Some(("Hash-Algorithm", v)) => hash = v,
                _ => other.push(pair),
            }
        }
        let (Some(expires), Some(signature), Some(kid)) = (expires, signature, key_pair_id) else {
            return deny("missing signing parameters");
        };
        if kid != self.key_pair_id {
            return deny("unknown key pair id");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if expires <= now {
            return deny("expired");
        }
        let mut resource = format!("{}{}", self.base_url.trim_end_matches('/'), path);
        if !other.is_empty() {
            resource = format!("{resource}?{}", other.join("&"));
        }
        let policy = regstore_middleware_cloudfront::sign::canned_policy_json(&resource, expires);
        let alg: &'static dyn ring::signature::VerificationAlgorithm = match hash {
            "SHA1" => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "SHA256" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return deny("unknown hash algorithm"),
        };
        if !verify(alg, &self.rsa_public_key, policy.as_bytes(), signature) {
            return deny("bad signature");
        }
        let key = path.trim_start_matches('/');
        let rel = if self.strip_prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(self.strip_prefix.as_str())
                .and_then(|k| k.strip_prefix('/'))
        };
        let Some(storage_path) =
            rel.and_then(|r| regstore_driver_api::StoragePath::parse(&format!("/{r}")))
        else {
            return (404, Vec::new(), 0);
        };
        match self.origin.get_content(&storage_path).await {
            Ok(bytes) => {
                let n = bytes.len();
                if method == "HEAD" {
                    (200, Vec::new(), n)
                } else {
                    (200, bytes.to_vec(), n)
                }
            }
            Err(_) => (404, Vec::new(), 0),
        }
    }
}

/// A plain-HTTP GET of `url` (status, body).
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    let client = hyper::Client::new();
    let uri: hyper::Uri = url.parse().expect("valid URI");
    let response = client.get(uri).await.expect("HTTP GET");
    let status = response.status().as_u16();
    let body = hyper::body::to_bytes(response.into_body())
        .await
        .expect("body");
    (status, body.to_vec())
}
