//! Helpers shared by the integration tests: test keys, signature checks, and a tiny HTTP server
//! on 127.0.0.1 that serves an ip-ranges document and counts requests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// What the server answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering every request with the current [`Reply`]
/// and counting requests. Stops when dropped.
pub struct RangesServer {
    pub url: String,
    hits: Arc<AtomicU64>,
    reply: Arc<Mutex<Reply>>,
    task: tokio::task::JoinHandle<()>,
}

impl RangesServer {
    pub async fn start(status: u16, body: &str) -> RangesServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicU64::new(0));
        let reply = Arc::new(Mutex::new(Reply {
            status,
            body: body.to_owned(),
        }));
        let (h, r) = (hits.clone(), reply.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (h, r) = (h.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let reply = r.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        reply.status,
                        reply.body.len(),
                        reply.body
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        RangesServer {
            url: format!("http://{addr}/ip-ranges.json"),
            hits,
            reply,
            task,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set_reply(&self, status: u16, body: &str) {
        *self.reply.lock().unwrap() = Reply {
            status,
            body: body.to_owned(),
        };
    }
}

impl Drop for RangesServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

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
