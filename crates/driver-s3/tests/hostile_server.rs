//! The S3 driver against a deliberately hostile local S3 server (a few lines of HTTP/1.1 on a
//! loopback socket, no real S3 needed): answers whose numbers are absurd or inconsistent, and
//! listings that never end. Every operation must end with a typed error naming the path —
//! never a panic, an aborted process, a hang or wrong bytes (issue 7).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use regstore_driver_api::{Error, Parameters, StorageDriver, StoragePath};
use regstore_driver_s3::{S3Config, S3Driver};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// One request as the fake server sees it.
struct Request {
    method: String,
    query: HashMap<String, String>,
    /// The `Range` header, if any.
    range: Option<String>,
    /// The request body (lossy UTF-8).
    body: String,
}

/// An answer: raw HTTP segments, written with a short pause between them (so the client sees
/// them as separate body chunks); the connection is closed after the last.
type Answer = Vec<Vec<u8>>;

/// `%XX` decoding of a query component (keys here are plain ASCII).
fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let v = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match v {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts a server answering every request with `answer(request)`; returns its endpoint.
async fn serve(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // Read the request body, so answering never resets a request that is still
                // being sent.
                let end = head
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(head.len(), |i| i + 4);
                let text = String::from_utf8_lossy(&head[..end]).into_owned();
                let body_len: usize = text
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = head[end..].to_vec();
                while body.len() < body_len {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&body).into_owned();
                let line = text.lines().next().unwrap_or_default();
                let mut words = line.split(' ');
                let method = words.next().unwrap_or_default().to_owned();
                let target = words.next().unwrap_or_default();
                let query = target
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or_default()
                    .split('&')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (decode(k), decode(v))
                    })
                    .collect();
                let range = text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("range").then(|| v.trim().to_owned())
                });
                let req = Request {
                    method,
                    query,
                    range,
                    body,
                };
                let segments = answer(&req);
                let last = segments.len().saturating_sub(1);
                for (i, s) in segments.into_iter().enumerate() {
                    if sock.write_all(&s).await.is_err() {
                        return;
                    }
                    let _ = sock.flush().await;
                    if i < last {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// A complete answer with `status`, extra `headers` and `body` (Content-Length = body length).
fn answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    vec![out]
}

fn driver(endpoint: &str, extra: &[(&str, &str)]) -> S3Driver {
    let mut p = Parameters::new()
        .with("regionendpoint", endpoint)
        .with("accesskey", "AKIDEXAMPLE")
        .with("secretkey", "not-a-secret")
        .with("region", "us-east-1")
        .with("bucket", "hostile")
        .with("forcepathstyle", "true")
        .with("maxretries", "0")
        .with("requesttimeout", "5s");
    for (k, v) in extra {
        p = p.with(*k, *v);
    }
    let config = S3Config::from_parameters(&p).unwrap_or_else(|e| panic!("config: {e}"));
    S3Driver::new(config).unwrap_or_else(|e| panic!("driver: {e}"))
}

fn path(s: &str) -> StoragePath {
    StoragePath::parse(s).unwrap_or_else(|| panic!("test path {s:?} is valid"))
}

/// Runs `f` with a time limit: a hostile server must not be able to hang an operation.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after 60 s (hang)"))
}

/// The error must be typed (not a panic) and name the path.
fn assert_names_path(e: &Error, p: &str) {
    let text = e.to_string();
    assert!(text.contains(p), "error does not name {p}: {text}");
}

#[tokio::test]
async fn get_content_with_an_absurd_content_length_is_an_error_not_an_abort() {
    // Declares a petabyte, sends six bytes in two chunks, closes: pre-sizing a buffer from the
    // declared length would abort the process.
    let endpoint = serve(|_| {
        vec![
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1125899906842624\r\n\r\nabc"
                .to_vec(),
            b"def".to_vec(),
        ]
    })
    .await;
    let d = driver(&endpoint, &[]);
    let out = bounded("get_content", d.get_content(&path("/h1/huge"))).await;
    let e = out.expect_err("a body shorter than its Content-Length is an error");
    assert_names_path(&e, "/h1/huge");
}

#[tokio::test]
async fn parallel_read_with_an_overflowing_content_range_is_an_error() {
    for range in [
        "bytes 0-18446744073709551615/*",
        "bytes 0-18446744073709551615/18446744073709551615",
        "bytes 0-9/5",
        "bytes 9-0/100",
        "bytes 0-99999999/100000000",
    ] {
        let endpoint = serve(move |_| {
            answer(
                "206 Partial Content",
                &[("Content-Range", range), ("ETag", "\"v1\"")],
                b"0123456789",
            )
        })
        .await;
        let d = driver(
            &endpoint,
            &[("readconcurrency", "4"), ("readchunksize", "1048576")],
        );
        let out = bounded("reader", d.reader(&path("/h1/ranged"), 0)).await;
        let e = out
            .err()
            .unwrap_or_else(|| panic!("{range}: must be refused"));
        assert!(matches!(e, Error::Backend { .. }), "{range}: {e:?}");
        assert_names_path(&e, "/h1/ranged");
    }
}

#[tokio::test]
async fn plain_read_of_another_range_is_an_error_not_wrong_bytes() {
    // Asked for bytes 5- and answered bytes 0-9: yielding them would shift the object.
    let endpoint = serve(|_| {
        answer(
            "206 Partial Content",
            &[("Content-Range", "bytes 0-9/10"), ("ETag", "\"v1\"")],
            b"0123456789",
        )
    })
    .await;
    let d = driver(&endpoint, &[("readconcurrency", "1")]);
    let out = bounded("reader", d.reader(&path("/h1/shifted"), 5)).await;
    let e = out.err().expect("another range must be refused");
    assert_names_path(&e, "/h1/shifted");
}

/// ListMultipartUploads naming one upload at the listed prefix; ListParts from `parts`.
fn resumable(
    parts: impl Fn(Option<i64>) -> (String, Option<i64>) + Send + Sync + 'static,
) -> impl Fn(&Request) -> Answer + Send + Sync + 'static {
    move |req| {
        if req.method != "GET" {
            return answer("501 Not Implemented", &[], b"");
        }
        if req.query.contains_key("uploads") {
            let key = req.query.get("prefix").cloned().unwrap_or_default();
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult>\
                 <Bucket>hostile</Bucket><IsTruncated>false</IsTruncated><Upload><Key>{key}</Key>\
                 <UploadId>u1</UploadId><Initiated>2026-11-23T15:35:23.000Z</Initiated></Upload>\
                 </ListMultipartUploadsResult>"
            );
            return answer(
                "200 OK",
                &[("Content-Type", "application/xml")],
                xml.as_bytes(),
            );
        }
        if req.query.contains_key("uploadId") {
            let marker = req
                .query
                .get("part-number-marker")
                .and_then(|m| m.parse().ok());
            let (items, next) = parts(marker);
            let trunc = match next {
                Some(n) => {
                    format!("<IsTruncated>true</IsTruncated><NextPartNumberMarker>{n}</NextPartNumberMarker>")
                }
                None => "<IsTruncated>false</IsTruncated>".to_owned(),
            };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListPartsResult><Bucket>hostile</Bucket>\
                 <UploadId>u1</UploadId>{trunc}{items}</ListPartsResult>"
            );
            return answer(
                "200 OK",
                &[("Content-Type", "application/xml")],
                xml.as_bytes(),
            );
        }
        answer("404 Not Found", &[], b"")
    }
}

fn part_xml(number: i64, size: &str) -> String {
    format!("<Part><PartNumber>{number}</PartNumber><ETag>\"e{number}\"</ETag><Size>{size}</Size></Part>")
}

#[tokio::test]
async fn resume_with_a_listing_that_goes_back_is_an_error_not_a_hang() {
    // Markers 2 → 3 → 2 → 3 …: each differs from the one before, so only a check for
    // markers already seen (or going backwards) stops it.
    let endpoint = serve(resumable(|marker| {
        let next = if marker == Some(3) {
            2
        } else {
            marker.unwrap_or(1) + 1
        };
        (part_xml(next - 1, "5242880"), Some(next))
    }))
    .await;
    let d = driver(&endpoint, &[]);
    let out = bounded("writer(append)", d.writer(&path("/h1/cycle"), true)).await;
    let e = out
        .err()
        .unwrap_or_else(|| panic!("a listing that goes back must be refused"));
    assert_names_path(&e, "/h1/cycle");
    assert!(e.to_string().contains("ListParts"), "{e}");
}

#[tokio::test]
async fn resume_with_overflowing_part_sizes_or_numbers_is_an_error() {
    let max = i64::MAX.to_string();
    // The sizes' sum overflows u64.
    let items: String = [1, 2, 3].iter().map(|&n| part_xml(n, &max)).collect();
    let endpoint = serve(resumable(move |_| (items.clone(), None))).await;
    let d = driver(&endpoint, &[]);
    let out = bounded("writer(append)", d.writer(&path("/h1/sizes"), true)).await;
    let e = out
        .err()
        .unwrap_or_else(|| panic!("absurd part values must be refused"));
    assert_names_path(&e, "/h1/sizes");
    // A part numbered i64::MAX after a gap is not content (only parts 1, 2, … without a gap
    // are), so the writer goes on after part 1 and no part number can overflow.
    let items = part_xml(1, "5242880") + &part_xml(i64::MAX, "5");
    let endpoint = serve(resumable(move |_| (items.clone(), None))).await;
    let d = driver(&endpoint, &[]);
    let w = bounded("writer(append)", d.writer(&path("/h1/sizes"), true))
        .await
        .unwrap_or_else(|e| panic!("a part after a gap is ignored, not an error: {e}"));
    assert_eq!(w.size(), 5 * 1024 * 1024);
}

#[tokio::test]
async fn get_content_is_a_plain_get_and_reads_an_empty_object() {
    // get_content sends no Range (an empty object then answers 200, not 416); the fake server
    // answers a ranged request with 400 so a regression cannot pass unnoticed.
    let endpoint = serve(|r| match (&r.method[..], &r.range) {
        ("GET", None) => answer("200 OK", &[("ETag", "\"e\"")], b""),
        _ => answer("400 Bad Request", &[], b""),
    })
    .await;
    let d = driver(&endpoint, &[]);
    let got = bounded("get_content", d.get_content(&path("/h1/empty")))
        .await
        .unwrap_or_else(|e| panic!("get_content: {e}"));
    assert!(got.is_empty());
}

#[tokio::test]
async fn honest_answers_still_work_through_the_fake_server() {
    // The harness itself: a consistent ranged answer reads back exactly.
    let endpoint = serve(|_| {
        answer(
            "206 Partial Content",
            &[("Content-Range", "bytes 0-9/10"), ("ETag", "\"v1\"")],
            b"0123456789",
        )
    })
    .await;
    let d = driver(
        &endpoint,
        &[("readconcurrency", "4"), ("readchunksize", "1048576")],
    );
    let mut s = bounded("reader", d.reader(&path("/h1/ok"), 0))
        .await
        .unwrap_or_else(|e| panic!("reader: {e}"));
    let mut got = Vec::new();
    while let Some(c) = s.next().await {
        got.extend_from_slice(&c.unwrap_or_else(|e| panic!("chunk: {e}")));
    }
    assert_eq!(got, b"0123456789");
    let parts = [part_xml(1, "5242880"), part_xml(2, "7")].concat();
    let endpoint = serve(resumable(move |_| (parts.clone(), None))).await;
    let d = driver(&endpoint, &[]);
    let w = bounded("writer(append)", d.writer(&path("/h1/ok"), true))
        .await
        .unwrap_or_else(|e| panic!("resume: {e}"));
    assert_eq!(w.size(), 5_242_887);
}

#[tokio::test]
async fn response_headers_that_rusoto_would_unwrap_are_ignored_not_panics() {
    // rusoto_s3 0.48 parses these informational headers with `unwrap`; the transport drops an
    // unparseable one (the driver reads none of them), so the operation neither panics nor
    // fails, and the bytes are right.
    for (header, value) in [
        ("x-amz-delete-marker", "maybe"),
        ("x-amz-server-side-encryption-bucket-key-enabled", "perhaps"),
        ("x-amz-mp-parts-count", "many"),
        ("x-amz-missing-meta", "-x"),
    ] {
        let endpoint = serve(move |_| {
            answer(
                "200 OK",
                &[(header, value), ("ETag", "\"v1\"")],
                b"0123456789",
            )
        })
        .await;
        let d = driver(&endpoint, &[]);
        let got = bounded("get_content", d.get_content(&path("/h1/hdr")))
            .await
            .unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(&got[..], b"0123456789", "{header}");
        let info = bounded("stat", d.stat(&path("/h1/hdr")))
            .await
            .unwrap_or_else(|e| panic!("{header}: stat: {e}"));
        assert_eq!(info.size, 10, "{header}");
    }
}

#[tokio::test]
async fn commit_answered_200_with_an_error_inside_fails() {
    // S3 may answer CompleteMultipartUpload with 200 and an <Error> body; rusoto parses it as
    // an empty result. Reporting success would lose the blob.
    let endpoint = serve(|req| {
        let xml = |body: &str| {
            answer(
                "200 OK",
                &[("Content-Type", "application/xml")],
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}").as_bytes(),
            )
        };
        match (req.method.as_str(), req.query.contains_key("uploadId")) {
            ("POST", false) => xml(
                "<InitiateMultipartUploadResult><Bucket>hostile</Bucket><Key>k</Key>\
                 <UploadId>u1</UploadId></InitiateMultipartUploadResult>",
            ),
            ("PUT", true) => answer("200 OK", &[("ETag", "\"p1\"")], b""),
            ("POST", true) => xml(
                "<Error><Code>InternalError</Code><Message>We encountered an internal error. \
                 Please try again.</Message><RequestId>r</RequestId></Error>",
            ),
            ("DELETE", true) => answer("204 No Content", &[], b""),
            _ => answer("501 Not Implemented", &[], b""),
        }
    })
    .await;
    let d = driver(&endpoint, &[]);
    let mut w = bounded("writer", d.writer(&path("/h1/commit"), false))
        .await
        .unwrap_or_else(|e| panic!("writer: {e}"));
    bounded("write", w.write(bytes::Bytes::from_static(b"blob")))
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let e = bounded("commit", w.commit())
        .await
        .expect_err("an error inside a 200 answer must fail the commit");
    assert_names_path(&e, "/h1/commit");
    assert!(e.to_string().contains("CompleteMultipartUpload"), "{e}");
}

/// A fake server for `delete`: lists `/del/a` and `/del/b`, and answers the first
/// `failing` DeleteObjects requests with a per-key `code` for every key (HTTP 200, as S3 does).
/// Every DeleteObjects body received goes into `bodies`.
fn deleting_server(
    code: &'static str,
    failing: usize,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
) -> impl Fn(&Request) -> Answer {
    let deletes = std::sync::atomic::AtomicUsize::new(0);
    move |r: &Request| {
        if r.method == "GET" && r.query.contains_key("list-type") {
            let body = "<?xml version=\"1.0\"?><ListBucketResult><Name>hostile</Name>\
                <Prefix>del</Prefix><KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>\
                <Contents><Key>del/a</Key><Size>1</Size></Contents>\
                <Contents><Key>del/b</Key><Size>1</Size></Contents></ListBucketResult>";
            return answer("200 OK", &[], body.as_bytes());
        }
        if r.method == "POST" && r.query.contains_key("delete") {
            let n = deletes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut b) = bodies.lock() {
                b.push(r.body.clone());
            }
            // `del/zzz` is never asked for: the answer naming it must not get it deleted.
            let errors = if n < failing {
                ["del/a", "del/b", "del/zzz"]
                    .iter()
                    .map(|k| {
                        format!(
                            "<Error><Key>{k}</Key><Code>{code}</Code>\
                             <Message>database is locked</Message></Error>"
                        )
                    })
                    .collect::<String>()
            } else {
                String::new()
            };
            let body = format!("<?xml version=\"1.0\"?><DeleteResult>{errors}</DeleteResult>");
            return answer("200 OK", &[], body.as_bytes());
        }
        answer("400 Bad Request", &[], b"")
    }
}

#[tokio::test]
async fn delete_retries_keys_the_server_failed_for_a_passing_reason() {
    // Garage under load answers DeleteObjects 200 with `ServiceUnavailable` for every key;
    // this one also names a key it was never asked to delete.
    let bodies = Arc::default();
    let endpoint = serve(deleting_server(
        "ServiceUnavailable",
        2,
        Arc::clone(&bodies),
    ))
    .await;
    let d = driver(&endpoint, &[("maxretries", "3")]);
    let e = bounded("delete", d.delete(&path("/del")))
        .await
        .expect_err("the key the server added is reported");
    // Only the stray key is left in the error: the two real ones were deleted on retry.
    assert_names_path(&e, "/del/zzz");
    assert!(!e.to_string().contains("/del/a:"), "{e}");
    let stats = d.request_stats();
    assert_eq!(stats.get("DeleteObjects"), 3, "{:?}", stats.snapshot());
    assert_eq!(stats.retries_snapshot().get("DeleteObjects"), Some(&2));
    let bodies = bodies.lock().map(|b| b.clone()).unwrap_or_default();
    assert_eq!(bodies.len(), 3);
    for b in &bodies {
        assert!(
            b.contains("<Key>del/a</Key>") && b.contains("<Key>del/b</Key>"),
            "{b}"
        );
        assert!(
            !b.contains("del/zzz"),
            "a key only the server named was sent: {b}"
        );
    }
}

#[tokio::test]
async fn delete_reports_keys_that_stay_failed_or_are_refused() {
    // Out of retries: the failures are reported per path.
    let endpoint = serve(deleting_server("SlowDown", 10, Arc::default())).await;
    let d = driver(&endpoint, &[("maxretries", "1")]);
    let e = bounded("delete", d.delete(&path("/del")))
        .await
        .expect_err("keys still failing after the retries are an error");
    assert_names_path(&e, "/del/a");
    assert_names_path(&e, "/del/b");
    assert_eq!(d.request_stats().get("DeleteObjects"), 2);
    // A refusal is not retried.
    let endpoint = serve(deleting_server("AccessDenied", 10, Arc::default())).await;
    let d = driver(&endpoint, &[("maxretries", "3")]);
    let e = bounded("delete", d.delete(&path("/del")))
        .await
        .expect_err("AccessDenied per key is an error");
    assert!(e.to_string().contains("AccessDenied"), "{e}");
    assert_eq!(d.request_stats().get("DeleteObjects"), 1);
}

/// How a listing server picks the next page's token (or key marker) from the one it was sent
/// (`None` on the first page); `None` ends the listing.
type NextToken = fn(Option<&str>) -> Option<String>;

/// The same token forever.
fn same_token_forever(_: Option<&str>) -> Option<String> {
    Some("T".to_owned())
}

/// A → B → A → B …: never the same token twice in a row.
fn two_token_cycle(sent: Option<&str>) -> Option<String> {
    Some(if sent == Some("A") { "B" } else { "A" }.to_owned())
}

/// An honest three-page listing: A → B → end.
fn three_pages(sent: Option<&str>) -> Option<String> {
    match sent {
        None => Some("A".to_owned()),
        Some("A") => Some("B".to_owned()),
        _ => None,
    }
}

/// A fake server whose ListObjectsV2 and ListMultipartUploads pages each hold one key below the
/// listed prefix and continue as `next` says; DeleteObjects succeeds. Counts listing requests.
fn paginating_server(
    next: NextToken,
    listings: Arc<std::sync::atomic::AtomicUsize>,
) -> impl Fn(&Request) -> Answer {
    move |r: &Request| {
        let xml = |body: String| {
            answer(
                "200 OK",
                &[("Content-Type", "application/xml")],
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}").as_bytes(),
            )
        };
        let prefix = r.query.get("prefix").cloned().unwrap_or_default();
        if r.method == "GET" && r.query.contains_key("list-type") {
            let n = listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let sent = r.query.get("continuation-token").map(String::as_str);
            let more = match next(sent) {
                Some(t) => format!(
                    "<IsTruncated>true</IsTruncated><NextContinuationToken>{t}</NextContinuationToken>"
                ),
                None => "<IsTruncated>false</IsTruncated>".to_owned(),
            };
            let key = format!("{}/k{n}", prefix.trim_end_matches('/'));
            return xml(format!(
                "<ListBucketResult><Name>hostile</Name><Prefix>{prefix}</Prefix>\
                 <KeyCount>1</KeyCount>{more}<Contents><Key>{key}</Key><Size>1</Size></Contents>\
                 </ListBucketResult>"
            ));
        }
        if r.method == "GET" && r.query.contains_key("uploads") {
            let n = listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let sent = r.query.get("key-marker").map(String::as_str);
            let more = match next(sent) {
                Some(t) => format!(
                    "<IsTruncated>true</IsTruncated><NextKeyMarker>{t}</NextKeyMarker>\
                     <NextUploadIdMarker>id</NextUploadIdMarker>"
                ),
                None => "<IsTruncated>false</IsTruncated>".to_owned(),
            };
            return xml(format!(
                "<ListMultipartUploadsResult><Bucket>hostile</Bucket>{more}<Upload>\
                 <Key>{prefix}/u{n}</Key><UploadId>u{n}</UploadId>\
                 <Initiated>2026-11-23T15:35:23.000Z</Initiated></Upload>\
                 </ListMultipartUploadsResult>"
            ));
        }
        if r.method == "POST" && r.query.contains_key("delete") {
            return xml("<DeleteResult></DeleteResult>".to_owned());
        }
        answer("400 Bad Request", &[], b"")
    }
}

/// What one operation against a paginating server did.
enum Paginated {
    /// Entries found (0 for delete).
    Done(usize),
    Failed(Error),
    /// Still running after the time limit: the listing loops.
    Hung,
}

/// `f` with a limit short enough that a looping listing is reported soon.
async fn soon<T>(
    f: impl std::future::Future<Output = Result<T, Error>>,
) -> Option<Result<T, Error>> {
    tokio::time::timeout(Duration::from_secs(10), f).await.ok()
}

/// Runs `list`, `walk`, `delete` and `list_incomplete_uploads` of `/loop` against a server
/// paginating as `next`; returns each operation's name, outcome and the listing requests it
/// sent. Every operation runs even if an earlier one hung, so one run shows every failure.
async fn paginate_every_operation(next: NextToken) -> Vec<(&'static str, Paginated, usize)> {
    use regstore_driver_api::{WalkControl, WalkOptions};
    let mut out = Vec::new();
    for op in ["list", "walk", "delete", "list_incomplete_uploads"] {
        let listings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let endpoint = serve(paginating_server(next, Arc::clone(&listings))).await;
        let d = driver(&endpoint, &[]);
        let p = path("/loop");
        let result = match op {
            "list" => soon(d.list(&p)).await.map(|r| r.map(|v| v.len())),
            "walk" => {
                let mut files = 0;
                let mut count = |i: &regstore_driver_api::FileInfo| {
                    files += usize::from(!i.is_dir);
                    Ok(WalkControl::Continue)
                };
                let r = soon(d.walk(&p, &WalkOptions::default(), &mut count)).await;
                r.map(|r| r.map(|()| files))
            }
            "delete" => soon(d.delete(&p)).await.map(|r| r.map(|()| 0)),
            _ => soon(d.list_incomplete_uploads(&p))
                .await
                .map(|r| r.map(|v| v.len())),
        };
        let outcome = match result {
            None => Paginated::Hung,
            Some(Ok(n)) => Paginated::Done(n),
            Some(Err(e)) => Paginated::Failed(e),
        };
        let sent = listings.load(std::sync::atomic::Ordering::SeqCst);
        out.push((op, outcome, sent));
    }
    out
}

#[tokio::test]
async fn listings_that_repeat_or_cycle_their_token_are_errors_not_endless_loops() {
    let mut problems = Vec::new();
    for (server, next) in [
        ("same token forever", same_token_forever as NextToken),
        ("two tokens in a cycle", two_token_cycle),
    ] {
        for (op, outcome, sent) in paginate_every_operation(next).await {
            let e = match outcome {
                Paginated::Failed(e) => e,
                Paginated::Done(n) => {
                    problems.push(format!("{server}: {op}: Ok ({n}) after {sent} pages"));
                    continue;
                }
                Paginated::Hung => {
                    problems.push(format!("{server}: {op}: still running after {sent} pages"));
                    continue;
                }
            };
            let text = e.to_string();
            let s3_op = if op == "list_incomplete_uploads" {
                "ListMultipartUploads"
            } else {
                "ListObjectsV2"
            };
            // Typed, naming the path and the operations, and stopped at the first repeat
            // rather than by some far-away page cap.
            if !matches!(e, Error::Backend { .. })
                || !text.contains("/loop")
                || !text.contains(s3_op)
                || !text.contains("does not advance")
                || sent > 3
            {
                problems.push(format!("{server}: {op}: after {sent} pages: {e:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn honest_multi_page_listings_are_followed_to_the_end() {
    for (op, outcome, sent) in paginate_every_operation(three_pages).await {
        match outcome {
            Paginated::Done(n) => {
                assert_eq!(sent, 3, "{op}");
                // One key per page (delete reports none).
                assert_eq!(n, if op == "delete" { 0 } else { 3 }, "{op}");
            }
            Paginated::Failed(e) => panic!("{op}: {e}"),
            Paginated::Hung => panic!("{op}: hung"),
        }
    }
}

#[tokio::test]
async fn a_failed_tail_record_ends_the_writer_so_a_retried_write_cannot_duplicate_bytes() {
    // The first PutObject (the empty tail record stored before the first part) is refused,
    // later ones succeed. The bytes of the failed write are already buffered: had the writer
    // accepted the caller's retry, the object would hold them twice.
    let puts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&puts);
    let endpoint =
        serve(
            move |req| match (req.method.as_str(), req.query.contains_key("uploadId")) {
                ("POST", false) => answer(
                    "200 OK",
                    &[("Content-Type", "application/xml")],
                    b"<InitiateMultipartUploadResult><Bucket>hostile</Bucket><Key>k</Key>\
                  <UploadId>u1</UploadId></InitiateMultipartUploadResult>",
                ),
                ("PUT", false) => {
                    if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        answer(
                            "403 Forbidden",
                            &[("Content-Type", "application/xml")],
                            b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>",
                        )
                    } else {
                        answer("200 OK", &[("ETag", "\"t\"")], b"")
                    }
                }
                ("PUT", true) => answer("200 OK", &[("ETag", "\"p\"")], b""),
                _ => answer("501 Not Implemented", &[], b""),
            },
        )
        .await;
    let d = driver(&endpoint, &[("chunksize", "5242880")]);
    let mut w = bounded("writer", d.writer(&path("/h1/tail"), false))
        .await
        .unwrap_or_else(|e| panic!("writer: {e}"));
    let part = bytes::Bytes::from(vec![7u8; 5 * 1024 * 1024]);
    let first = bounded("write", w.write(part.clone())).await;
    let e = first.expect_err("the refused tail record must fail the write");
    assert_names_path(&e, "/h1/tail");
    let retried = bounded("write again", w.write(part)).await;
    assert!(
        retried.is_err(),
        "a retried write after a failed record must be refused (size now {})",
        w.size()
    );
    assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn delete_many_failure_not_tied_to_a_sent_key_fails_the_whole_batch() {
    // A DeleteObjects answer whose <Error> has no <Key> (or a key that was never sent) cannot
    // be matched to a path: every path of the batch may still exist, and gc must not go on to
    // delete what they reference.
    for error in [
        "<Error><Code>AccessDenied</Code><Message>no</Message></Error>",
        "<Error><Key>del/zzz</Key><Code>AccessDenied</Code><Message>no</Message></Error>",
    ] {
        let endpoint = serve(move |r: &Request| {
            if r.method == "POST" && r.query.contains_key("delete") {
                let body = format!("<?xml version=\"1.0\"?><DeleteResult>{error}</DeleteResult>");
                return answer("200 OK", &[], body.as_bytes());
            }
            answer("400 Bad Request", &[], b"")
        })
        .await;
        let d = driver(&endpoint, &[]);
        let paths = [path("/del/a"), path("/del/b")];
        let failed = bounded("delete_many", d.delete_many(&paths)).await;
        let mut named: Vec<String> = failed.iter().map(|(p, _)| p.to_string()).collect();
        named.sort();
        assert_eq!(named, ["/del/a", "/del/b"], "{error}");
        assert!(
            failed[0].1.to_string().contains("AccessDenied"),
            "{}",
            failed[0].1
        );
    }
}
