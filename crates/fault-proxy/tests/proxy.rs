//! The proxy in front of a tiny local HTTP server, observed by a real HTTP client (hyper).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Body, Client, Method, Request, StatusCode};
use regstore_fault_proxy::{FaultKind, FaultPlan, FaultProxy, ProxyConfig, ProxyError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The deterministic content of `/bytes/N` and `/chunked/N`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

/// A minimal HTTP/1.1 origin: `GET|HEAD /bytes/N` (Content-Length), `GET /chunked/N` (chunked,
/// 1000-byte chunks), `PUT|POST /echo` (echoes the body). Keeps connections alive unless the
/// request says `Connection: close`, so the proxy's own close handling is what is tested.
struct Origin {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn origin() -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.spawn(origin_conn(s, counter.clone()));
        }
    });
    Origin {
        addr,
        requests,
        task,
    }
}

async fn origin_conn(stream: TcpStream, counter: Arc<AtomicU64>) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            lines.push(line.trim_end().to_owned());
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let mut start = lines.first().map(|l| l.split(' ')).into_iter().flatten();
        let method = start.next().unwrap_or("").to_owned();
        let target = start.next().unwrap_or("").to_owned();
        let header = |name: &str| {
            lines.iter().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        let conn = if close { "close" } else { "keep-alive" };
        let n: usize = target
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut out = Vec::new();
        if target.starts_with("/chunked/") {
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Origin: yes\r\nConnection: {conn}\r\n\r\n"
                )
                .as_bytes(),
            );
            for chunk in pattern(n).chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            let payload = if target.starts_with("/echo") {
                body
            } else {
                pattern(n)
            };
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Origin: yes\r\nConnection: {conn}\r\n\r\n",
                    payload.len()
                )
                .as_bytes(),
            );
            if method != "HEAD" {
                out.extend_from_slice(&payload);
            }
        }
        if w.write_all(&out).await.is_err() || close {
            return;
        }
    }
}

async fn proxy(origin: &Origin, config: impl FnOnce(ProxyConfig) -> ProxyConfig) -> FaultProxy {
    FaultProxy::start(config(ProxyConfig::new(origin.addr)))
        .await
        .expect("proxy starts")
}

fn only(kind: FaultKind) -> impl FnOnce(ProxyConfig) -> ProxyConfig {
    move |c| c.with_faults(1.0, 7).with_kinds(&[kind])
}

async fn get(
    base: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, hyper::HeaderMap, Result<Vec<u8>, hyper::Error>), hyper::Error> {
    let client = Client::new();
    let req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .body(Body::from(body))
        .unwrap();
    let resp = client.request(req).await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = hyper::body::to_bytes(resp.into_body())
        .await
        .map(|b| b.to_vec());
    Ok((status, headers, body))
}

#[tokio::test]
async fn rate_zero_passes_everything_through_byte_identically() {
    let origin = origin().await;
    let proxy = proxy(&origin, |c| c.with_faults(0.0, 1)).await;
    let base = proxy.endpoint();
    // One pooled client for all requests: the proxy's `Connection: close` must keep a
    // keep-alive client working, request after request.
    let client = Client::new();
    let upload = pattern(300_001);
    let mut sent = 0;
    for round in 0..5 {
        for (method, path, body, want) in [
            (
                Method::GET,
                "/bytes/100000".to_owned(),
                vec![],
                pattern(100_000),
            ),
            (Method::GET, "/bytes/0".to_owned(), vec![], vec![]),
            (
                Method::GET,
                "/chunked/54321".to_owned(),
                vec![],
                pattern(54_321),
            ),
            (
                Method::PUT,
                format!("/echo/{round}"),
                upload.clone(),
                upload.clone(),
            ),
            (Method::HEAD, "/bytes/77".to_owned(), vec![], vec![]),
        ] {
            let req = Request::builder()
                .method(method.clone())
                .uri(format!("{base}{path}"))
                .body(Body::from(body))
                .unwrap();
            let resp = client.request(req).await.expect("request through proxy");
            assert_eq!(resp.status(), StatusCode::OK, "{method} {path}");
            assert_eq!(resp.headers()["x-origin"], "yes", "{method} {path}");
            if method == Method::HEAD {
                assert_eq!(resp.headers()["content-length"], "77");
            }
            let got = hyper::body::to_bytes(resp.into_body())
                .await
                .expect("whole body");
            assert!(got[..] == want[..], "{method} {path}: body differs");
            sent += 1;
        }
    }
    let counts = proxy.counts();
    assert_eq!(counts.requests, sent, "{counts}");
    assert_eq!(counts.passed, sent, "{counts}");
    assert_eq!(counts.faults(), 0, "{counts}");
    assert_eq!(counts.proxy_errors, 0, "{counts}");
    assert_eq!(origin.requests.load(Ordering::SeqCst), sent);
}

#[tokio::test]
async fn reset_happens_after_the_upstream_answered() {
    let origin = origin().await;
    let proxy = proxy(&origin, only(FaultKind::Reset)).await;
    let result = get(&proxy.endpoint(), Method::PUT, "/echo", pattern(5000)).await;
    let err = result.expect_err("the client must see the reset");
    assert!(
        err.is_incomplete_message() || err.to_string().to_lowercase().contains("reset"),
        "unexpected error kind: {err:?}"
    );
    assert_eq!(
        origin.requests.load(Ordering::SeqCst),
        1,
        "upstream got the request"
    );
    assert_eq!(proxy.counts().reset, 1);
}

#[tokio::test]
async fn stall_delays_but_delivers() {
    let origin = origin().await;
    let stall = Duration::from_millis(400);
    let proxy = proxy(&origin, |c| only(FaultKind::Stall)(c).with_stall(stall)).await;
    let t = Instant::now();
    let (status, _, body) = get(&proxy.endpoint(), Method::GET, "/bytes/2048", vec![])
        .await
        .unwrap();
    assert!(t.elapsed() >= stall, "answered after {:?}", t.elapsed());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap(), pattern(2048));
    assert_eq!(proxy.counts().stalled, 1);
}

#[tokio::test]
async fn truncate_cuts_sized_and_chunked_bodies_and_bodiless_heads() {
    let origin = origin().await;
    let proxy = proxy(&origin, only(FaultKind::Truncate)).await;
    for path in ["/bytes/100000", "/chunked/20000"] {
        let (status, _, body) = get(&proxy.endpoint(), Method::GET, path, vec![])
            .await
            .expect("the head arrives whole");
        assert_eq!(status, StatusCode::OK);
        let err = body.expect_err("the body must end early");
        assert!(
            err.is_incomplete_message() || err.to_string().contains("end"),
            "{path}: {err:?}"
        );
    }
    // HEAD has no body to cut: the head itself is cut.
    let r = get(&proxy.endpoint(), Method::HEAD, "/bytes/10", vec![]).await;
    assert!(
        r.is_err(),
        "a cut head is an error, got {:?}",
        r.map(|x| x.0)
    );
    assert_eq!(proxy.counts().truncated, 3);
}

#[tokio::test]
async fn corrupt_body_inverts_one_request_byte_where_the_seed_says() {
    let origin = origin().await;
    let proxy = proxy(&origin, only(FaultKind::CorruptBody)).await;
    let plan = FaultPlan::new(7, 1.0, &[FaultKind::CorruptBody]).unwrap();
    let sent = pattern(70_001);
    for n in 0..3u64 {
        let (status, _, body) = get(&proxy.endpoint(), Method::PUT, "/echo", sent.clone())
            .await
            .expect("the exchange completes");
        assert_eq!(status, StatusCode::OK);
        let got = body.expect("whole echo");
        assert_eq!(got.len(), sent.len());
        let diff: Vec<usize> = (0..sent.len()).filter(|&i| got[i] != sent[i]).collect();
        let at = (plan.corrupt_offset(n) % sent.len() as u64) as usize;
        assert_eq!(diff, vec![at], "connection {n}");
        assert_eq!(got[at], sent[at] ^ 0xFF);
    }
    // Nothing to corrupt: passed through unchanged, counted as passed.
    let (status, _, body) = get(&proxy.endpoint(), Method::GET, "/bytes/100", vec![])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap(), pattern(100));
    let counts = proxy.counts();
    assert_eq!(counts.corrupted, 3, "{counts}");
    assert_eq!(counts.get(FaultKind::CorruptBody), 3);
    assert_eq!(counts.passed, 1, "{counts}");
    assert_eq!(counts.faults(), 3, "{counts}");
    // The same seed puts the byte at the same place; another seed elsewhere.
    let again = FaultPlan::new(7, 1.0, &[FaultKind::CorruptBody]).unwrap();
    let other = FaultPlan::new(8, 1.0, &[FaultKind::CorruptBody]).unwrap();
    let offsets = |p: &FaultPlan| (0..16).map(|n| p.corrupt_offset(n)).collect::<Vec<_>>();
    assert_eq!(offsets(&plan), offsets(&again));
    assert_ne!(offsets(&plan), offsets(&other));
}

#[tokio::test]
async fn synthetic_s3_errors_are_answered_without_forwarding() {
    let origin = origin().await;
    for (kind, status, code) in [
        (
            FaultKind::SlowDown,
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
        ),
        (
            FaultKind::InternalError,
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
        ),
    ] {
        let proxy = proxy(&origin, only(kind)).await;
        for (method, body) in [(Method::GET, vec![]), (Method::PUT, pattern(200_000))] {
            let (got, headers, body) = get(&proxy.endpoint(), method.clone(), "/echo", body)
                .await
                .expect("an error response, not a transport error");
            assert_eq!(got, status, "{kind} {method}");
            assert_eq!(headers["content-type"], "application/xml");
            let body = String::from_utf8(body.unwrap()).unwrap();
            assert!(body.contains(&format!("<Code>{code}</Code>")), "{body}");
            assert!(body.starts_with("<?xml"), "{body}");
        }
        assert_eq!(proxy.counts().get(kind), 2);
    }
    assert_eq!(
        origin.requests.load(Ordering::SeqCst),
        0,
        "nothing was forwarded"
    );
}

#[tokio::test]
async fn seeded_mix_matches_the_plan() {
    let origin = origin().await;
    let kinds = FaultKind::ALL;
    let seed = 2024;
    let proxy = proxy(&origin, |c| {
        c.with_faults(0.5, seed)
            .with_kinds(&kinds)
            .with_stall(Duration::from_millis(20))
    })
    .await;
    let n = 60u64;
    let mut outcomes = Vec::new();
    for _ in 0..n {
        // Sequential, so connection i gets decision i.
        let r = get(&proxy.endpoint(), Method::GET, "/bytes/4096", vec![]).await;
        let ok = matches!(&r, Ok((StatusCode::OK, _, Ok(b))) if *b == pattern(4096));
        outcomes.push(ok);
    }
    let plan = FaultPlan::new(seed, 0.5, &kinds).unwrap();
    let counts = proxy.counts();
    for (i, ok) in outcomes.iter().enumerate() {
        let want_ok = matches!(plan.decide(i as u64), None | Some(FaultKind::Stall));
        assert_eq!(
            *ok,
            want_ok,
            "request {i}: plan says {:?}",
            plan.decide(i as u64)
        );
    }
    for kind in kinds {
        let planned = (0..n).filter(|&i| plan.decide(i) == Some(kind)).count() as u64;
        assert_eq!(counts.get(kind), planned, "{kind}: {counts}");
        assert!(planned > 0, "the seed exercises {kind}");
    }
    assert_eq!(counts.requests, n);
    assert_eq!(counts.passed + counts.faults(), n, "{counts}");
}

#[tokio::test]
async fn non_loopback_upstreams_are_refused() {
    for bad in [
        "10.1.2.3:9000",
        "192.168.0.10:80",
        "93.184.216.34:80",
        "[2001:db8::1]:80",
    ] {
        let upstream: SocketAddr = bad.parse().unwrap();
        let err = FaultProxy::start(ProxyConfig::new(upstream))
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::NotLoopback(_)), "{bad}: {err}");
    }
    let origin = origin().await;
    let p = proxy(&origin, |c| c).await;
    assert!(
        p.local_addr().ip().is_loopback(),
        "listens on loopback only"
    );
}

#[tokio::test]
async fn bounded_by_connections_deadline_and_drop() {
    let origin = origin().await;
    // Connection budget: two requests, then the listener is gone.
    let p = proxy(&origin, |c| c.with_max_connections(2)).await;
    for _ in 0..2 {
        let (status, _, body) = get(&p.endpoint(), Method::GET, "/bytes/1", vec![])
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.unwrap(), pattern(1));
    }
    let counts = p.wait().await;
    assert_eq!(counts.requests, 2);

    // Deadline: stops by itself.
    let p = proxy(&origin, |c| c.with_run_for(Duration::from_millis(200))).await;
    let addr = p.local_addr();
    let counts = tokio::time::timeout(Duration::from_secs(5), p.wait())
        .await
        .expect("stopped by its deadline");
    assert_eq!(counts.requests, 0);
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");

    // Drop: stops at once.
    let p = proxy(&origin, |c| c).await;
    let addr = p.local_addr();
    drop(p);
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "a dropped proxy stops listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_all_finish_and_counts_add_up() {
    let origin = origin().await;
    let proxy = proxy(&origin, |c| {
        c.with_faults(0.3, 99)
            .with_stall(Duration::from_millis(50))
            .with_max_concurrent(8)
    })
    .await;
    let base = proxy.endpoint();
    let client = Client::new();
    let n = 48u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = client.clone();
        let base = base.clone();
        tasks.spawn(async move {
            let body = pattern(10_000 + i as usize);
            let req = Request::builder()
                .method(Method::PUT)
                .uri(format!("{base}/echo/{i}"))
                .body(Body::from(body.clone()))
                .unwrap();
            match client.request(req).await {
                Ok(resp) if resp.status() == StatusCode::OK => {
                    // Whatever arrives whole is exactly what was sent.
                    if let Ok(got) = hyper::body::to_bytes(resp.into_body()).await {
                        assert!(got[..] == body[..], "request {i}: wrong bytes");
                    }
                }
                Ok(resp) => {
                    let _ = hyper::body::to_bytes(resp.into_body()).await;
                }
                Err(_) => {}
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(r) = tasks.join_next().await {
            r.expect("client task");
        }
    })
    .await
    .expect("every client finishes");
    // The proxy counts a request as passed once it has forwarded the last byte, which can be
    // just after the client has read it: give the connection tasks a moment to settle.
    let mut counts = proxy.counts();
    for _ in 0..100 {
        if counts.passed + counts.faults() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        counts = proxy.counts();
    }
    assert_eq!(counts.requests, n, "{counts}");
    assert_eq!(counts.passed + counts.faults(), n, "{counts}");
    assert_eq!(counts.proxy_errors, 0, "{counts}");
    assert!(counts.faults() > 0 && counts.passed > 0, "{counts}");
}
