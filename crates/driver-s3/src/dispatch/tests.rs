//! Tests of the dispatcher and the modules under it (retry, request statistics, GetObject
//! bodies, upload recovery), through scripted HTTP answers.

use super::*;
use crate::addressing::virtual_host_compatible;
use crate::call::REPLAY_CHUNK;
use crate::get_body::decimal;
use crate::retry::{BACKOFF_BASE, BACKOFF_CAP};
use crate::upload_recovery::multipart_etag;
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
fn operations_have_distinct_names_in_index_order() {
    let names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, names, "sorted and distinct");
    for (i, op) in Operation::ALL.iter().enumerate() {
        assert_eq!(op.index(), i, "{op}");
        assert_eq!(op.to_string(), op.name());
    }
    let not_idempotent: Vec<&str> = Operation::ALL
        .iter()
        .filter(|o| !Call::new(**o).idempotent())
        .map(|o| o.name())
        .collect();
    assert_eq!(
        not_idempotent,
        [
            "AbortMultipartUpload",
            "CompleteMultipartUpload",
            "CreateMultipartUpload"
        ]
    );
}

#[test]
fn stats_count_and_snapshot() {
    let s = RequestStats::new();
    assert_eq!(s.total(), 0);
    assert!(s.snapshot().is_empty());
    s.record(Operation::GetObject);
    s.record(Operation::GetObject);
    s.record(Operation::UploadPart);
    assert_eq!(s.total(), 3);
    assert_eq!(s.get("GetObject"), 2);
    assert_eq!(s.get("NotAnOp"), 0);
    let snap = s.snapshot();
    assert_eq!(snap.len(), 2);
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
    // Every buffered body gets one (CompleteMultipartUpload's XML would otherwise travel
    // unprotected under SigV2); no body, or an empty one, gets none.
    let mut r = req("POST", "/bkt/k", &[], &[("uploadId", "u")]);
    r.set_payload(Some(b"<CompleteMultipartUpload/>".to_vec()));
    ensure_content_md5(&mut r);
    let want = base64_std(&Md5::digest(b"<CompleteMultipartUpload/>"));
    assert_eq!(r.headers["content-md5"], vec![want.into_bytes()]);
    let mut r = req("PUT", "/bkt", &[], &[]);
    r.set_payload(Some(Vec::new()));
    ensure_content_md5(&mut r);
    assert!(!r.headers.contains_key("content-md5"));
    let mut r = req("GET", "/bkt/k", &[], &[]);
    ensure_content_md5(&mut r);
    assert!(!r.headers.contains_key("content-md5"));
}

#[tokio::test]
async fn a_body_refused_for_its_digest_is_sent_again_with_the_same_digest() {
    let bad_digest: &[u8] = b"<Error><Code>BadDigest</Code></Error>";
    let pieces = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")];
    let md5 = base64_std(&Md5::digest(b"abc"));
    let (d, script, stats) = scripted(vec![Answer::Http(400, None, bad_digest)], &[]);
    let mut r = req("PUT", "/bkt/k", &[], &[]);
    r.add_header("content-md5", &md5);
    r.set_payload_stream(ByteStream::new_with_size(
        futures::stream::iter(pieces.clone().into_iter().map(Ok)),
        3,
    ));
    let resp = d
        .call(Call::new(Operation::PutObject).with_body(pieces))
        .dispatch(r, None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200);
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|s| s.body == b"abc" && s.content_md5 == md5));
    assert_eq!(stats.retries_snapshot()["PutObject"], 1);
    // Refused every time: the refusal is the answer once the retries are spent.
    let (d, script, _) = scripted(
        (0..3)
            .map(|_| Answer::Http(400, None, bad_digest))
            .collect(),
        &[("maxretries", "2")],
    );
    let mut r = req("POST", "/bkt", &["delete"], &[]);
    r.set_payload(Some(b"<Delete/>".to_vec()));
    let resp = d
        .call(Call::new(Operation::DeleteObjects))
        .dispatch(r, None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 400);
    assert_eq!(script.seen().len(), 3);
}

#[test]
fn backoff_schedule_is_capped_full_jitter() {
    let p = RetryPolicy {
        max_retries: 20,
        base: BACKOFF_BASE,
        cap: BACKOFF_CAP,
        request_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(1),
    };
    let ceilings: Vec<u128> = (1..=10).map(|n| p.backoff_ceiling(n).as_millis()).collect();
    assert_eq!(
        ceilings,
        [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
    );
    assert_eq!(p.backoff_ceiling(0), BACKOFF_BASE);
    assert_eq!(p.backoff_ceiling(u32::MAX), BACKOFF_CAP);
    assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
    assert_eq!(p.backoff(3, 0.5), Duration::from_millis(200));
    assert_eq!(p.backoff(3, f64::NAN), Duration::ZERO);
    for n in 1..=12 {
        for _ in 0..200 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
            assert!(p.backoff(n, u) < p.backoff_ceiling(n));
        }
    }
    // The draws spread over the interval rather than repeating one value.
    let draws: std::collections::BTreeSet<u64> =
        (0..100).map(|_| (jitter_unit() * 1000.0) as u64).collect();
    assert!(draws.len() > 50, "{}", draws.len());
    let c = S3Config::from_parameters(
        &regstore_driver_api::Parameters::new()
            .with("bucket", "b")
            .with("region", "us-east-1")
            .with("maxretries", 7i64)
            .with("requesttimeout", "30s"),
    )
    .unwrap();
    let from = RetryPolicy::from_config(&c);
    assert_eq!(from.max_retries, 7);
    assert_eq!(from.request_timeout, Duration::from_secs(30));
    assert_eq!(from.operation_timeout, Duration::from_secs(900));
}

#[test]
fn retry_classification() {
    for (status, body, want) in [
        (500, "", true),
        (502, "", true),
        (503, "<Error><Code>SlowDown</Code></Error>", true),
        (504, "", true),
        (599, "", true),
        (429, "", true),
        (408, "", true),
        (501, "", false),
        (400, "<Error><Code>RequestTimeout</Code></Error>", true),
        (400, "<Error><Code>BadDigest</Code></Error>", true),
        (
            400,
            "<Error><Code>XAmzContentSHA256Mismatch</Code></Error>",
            true,
        ),
        (400, "<Error><Code>MalformedXML</Code></Error>", true),
        (400, "<Error><Code>InvalidDigest</Code></Error>", false),
        (400, "<Error><Code>InvalidArgument</Code></Error>", false),
        (400, "not xml", false),
        (403, "", false),
        (404, "", false),
        (416, "", false),
        (200, "", false),
        (301, "", false),
    ] {
        assert_eq!(
            retryable_status(status, body.as_bytes()),
            want,
            "{status} {body}"
        );
    }
    for (msg, kind) in [
        (
            "error trying to connect: tcp connect error: Connection refused (os error 111)",
            FailureKind::Refused,
        ),
        (
            "error trying to connect: dns error: failed to lookup address",
            FailureKind::Refused,
        ),
        (
            "Error during dispatch: connection reset by peer (os error 104)",
            FailureKind::Reset,
        ),
        ("Broken pipe (os error 32)", FailureKind::Reset),
        (
            "Error during dispatch: connection closed before message completed",
            FailureKind::Closed,
        ),
        (
            "error reading a body from connection: end of file before message length reached",
            FailureKind::Truncated,
        ),
        ("Timeout while dispatching request", FailureKind::Timeout),
        ("operation timed out", FailureKind::Timeout),
        (
            "error trying to connect: certificate verify failed: self signed certificate",
            FailureKind::Fatal,
        ),
        ("Unsupported HTTP verb FOO", FailureKind::Fatal),
        ("s3aws: no credentials: none found", FailureKind::Fatal),
        ("something new from hyper", FailureKind::Transport),
    ] {
        assert_eq!(classify_transport(msg), kind, "{msg}");
    }
    assert!(!FailureKind::Fatal.retryable());
    assert!(FailureKind::Status.retryable() && !FailureKind::Status.ambiguous());
    assert!(FailureKind::Refused.retryable() && !FailureKind::Refused.ambiguous());
    for k in [
        FailureKind::Reset,
        FailureKind::Closed,
        FailureKind::Truncated,
        FailureKind::Timeout,
        FailureKind::Transport,
    ] {
        assert!(k.retryable() && k.ambiguous(), "{k:?}");
    }
}

/// One scripted answer of [`Scripted`].
enum Answer {
    /// Status, declared Content-Length (None = the body's length), body.
    Http(u16, Option<u64>, &'static [u8]),
    /// A transport error with this text.
    Fail(&'static str),
    /// Never answers.
    Hang,
    /// `200`, `Content-Length` 10, five body bytes, then silence.
    StallBody,
    /// Status, exactly these headers, body bytes, then (when set) a transport error.
    Raw(
        u16,
        Vec<(&'static str, String)>,
        &'static [u8],
        Option<&'static str>,
    ),
    /// Status, no `Content-Length`, this many MiB of body in 1 MiB chunks.
    Huge(u16, usize),
}

/// What [`Scripted`] saw of one attempt.
#[derive(Debug, Clone)]
struct Seen {
    body: Vec<u8>,
    authorization: String,
    date: String,
    content_md5: String,
}

/// An HTTP client answering from a script, recording each attempt's body and signature.
#[derive(Clone)]
struct Scripted {
    answers: Arc<std::sync::Mutex<std::collections::VecDeque<Answer>>>,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Scripted {
    fn new(answers: Vec<Answer>) -> Self {
        Scripted {
            answers: Arc::new(std::sync::Mutex::new(answers.into())),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl DispatchSignedRequest for Scripted {
    fn dispatch(
        &self,
        request: SignedRequest,
        _timeout: Option<Duration>,
    ) -> DispatchSignedRequestFuture {
        let this = self.clone();
        async move {
            let header = |k: &str| {
                request
                    .headers
                    .get(k)
                    .and_then(|v| v.first())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            let (authorization, date) = (header("authorization"), header("x-amz-date"));
            let content_md5 = header("content-md5");
            let body = match request.payload {
                None => Vec::new(),
                Some(SignedRequestPayload::Buffer(b)) => b.to_vec(),
                Some(SignedRequestPayload::Stream(s)) => {
                    let chunks: Vec<Bytes> = s.map(|c| c.unwrap()).collect().await;
                    chunks.concat()
                }
            };
            this.seen.lock().unwrap().push(Seen {
                body,
                authorization,
                date,
                content_md5,
            });
            let answer = this.answers.lock().unwrap().pop_front();
            match answer.unwrap_or(Answer::Http(200, None, b"")) {
                Answer::Http(status, declared, body) => {
                    let mut headers = hyper::HeaderMap::<String>::default();
                    let len = declared.unwrap_or(body.len() as u64);
                    headers.insert(hyper::header::CONTENT_LENGTH, len.to_string());
                    Ok(HttpResponse {
                        status: hyper::StatusCode::from_u16(status).unwrap(),
                        body: ByteStream::from(body.to_vec()),
                        headers,
                    })
                }
                Answer::Fail(text) => Err(HttpDispatchError::new(text.to_owned())),
                Answer::Hang => futures::future::pending().await,
                Answer::Raw(status, fields, body, then) => {
                    let mut headers = hyper::HeaderMap::<String>::default();
                    for (k, v) in fields {
                        headers.insert(k, v);
                    }
                    let chunks =
                        vec![Ok(Bytes::from_static(body))]
                            .into_iter()
                            .chain(then.map(|e| {
                                Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, e))
                            }));
                    Ok(HttpResponse {
                        status: hyper::StatusCode::from_u16(status).unwrap(),
                        body: ByteStream::new(futures::stream::iter(chunks)),
                        headers,
                    })
                }
                Answer::Huge(status, mib) => {
                    let chunk = Bytes::from(vec![b'x'; 1 << 20]);
                    let body = futures::stream::repeat_with(move || Ok(chunk.clone())).take(mib);
                    Ok(HttpResponse {
                        status: hyper::StatusCode::from_u16(status).unwrap(),
                        body: ByteStream::new(body),
                        headers: hyper::HeaderMap::default(),
                    })
                }
                Answer::StallBody => {
                    let mut headers = hyper::HeaderMap::<String>::default();
                    headers.insert(hyper::header::CONTENT_LENGTH, "10".to_owned());
                    let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"01234"))])
                        .chain(futures::stream::pending());
                    Ok(HttpResponse {
                        status: hyper::StatusCode::OK,
                        body: ByteStream::new(body),
                        headers,
                    })
                }
            }
        }
        .boxed()
    }
}

fn scripted(
    answers: Vec<Answer>,
    extra: &[(&str, &str)],
) -> (Dispatcher, Scripted, Arc<RequestStats>) {
    let mut p = regstore_driver_api::Parameters::new()
        .with("bucket", "bkt")
        .with("regionendpoint", "http://127.0.0.1:9")
        .with("accesskey", "AK")
        .with("secretkey", "SECRETVALUE123");
    for (k, v) in extra {
        p = p.with(*k, v.to_string());
    }
    let config = S3Config::from_parameters(&p).unwrap();
    let creds = Arc::new(CredentialsProvider::new(&config.credentials));
    let stats = Arc::new(RequestStats::new());
    let script = Scripted::new(answers);
    let d = Dispatcher::with_http(&config, creds, Arc::clone(&stats), Box::new(script.clone()));
    (d, script, stats)
}

async fn body_of(resp: HttpResponse) -> Result<Vec<u8>, std::io::Error> {
    let chunks: Vec<std::io::Result<Bytes>> = resp.body.collect().await;
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

#[tokio::test]
async fn retries_throttling_resets_and_truncated_answers_then_succeeds() {
    let (d, script, stats) = scripted(
        vec![
            Answer::Http(503, None, b"<Error><Code>SlowDown</Code></Error>"),
            Answer::Fail("Error during dispatch: connection reset by peer"),
            Answer::Http(200, Some(100), b"<ListBucketResult>"),
            Answer::Http(200, None, b"<ListBucketResult/>"),
        ],
        &[],
    );
    let r = req("GET", "/bkt", &[], &[("list-type", "2")]);
    let resp = d
        .call(Call::new(Operation::ListObjectsV2))
        .dispatch(r, None)
        .await
        .expect("succeeds after retries");
    assert_eq!(resp.status.as_u16(), 200);
    assert_eq!(body_of(resp).await.unwrap(), b"<ListBucketResult/>");
    assert_eq!(stats.get("ListObjectsV2"), 4);
    assert_eq!(stats.retries(), 3);
    assert_eq!(stats.retries_snapshot()["ListObjectsV2"], 3);
    // The reset and the truncated answer leave open whether the server acted.
    assert_eq!(stats.ambiguous_retries("ListObjectsV2"), 2);
    let seen = script.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert!(
            s.authorization
                .starts_with("AWS4-HMAC-SHA256 Credential=AK/"),
            "{s:?}"
        );
        assert_eq!(
            s.date.len(),
            16,
            "every attempt is signed with its own date: {s:?}"
        );
    }
}

#[tokio::test]
async fn gives_up_after_maxretries_and_returns_the_last_answer() {
    let (d, script, stats) = scripted(
        (0..10)
            .map(|_| Answer::Http(500, None, b"<Error><Code>InternalError</Code></Error>"))
            .collect(),
        &[("maxretries", "2")],
    );
    let resp = d
        .call(Call::new(Operation::HeadObject))
        .dispatch(req("HEAD", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 500);
    assert_eq!(script.seen().len(), 3);
    assert_eq!(stats.retries(), 2);
    let (d, script, _) = scripted(
        vec![Answer::Fail("connection reset by peer")],
        &[("maxretries", "0")],
    );
    let err = d
        .call(Call::new(Operation::HeadObject))
        .dispatch(req("HEAD", "/bkt/k", &[], &[]), None)
        .await
        .err()
        .expect("the reset is the answer");
    assert!(err.to_string().contains("reset"), "{err}");
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn final_answers_are_not_retried() {
    for answer in [
        Answer::Http(404, None, b"<Error><Code>NoSuchKey</Code></Error>"),
        Answer::Http(403, None, b"<Error><Code>AccessDenied</Code></Error>"),
        Answer::Http(501, None, b""),
        Answer::Fail("error trying to connect: certificate verify failed"),
    ] {
        let (d, script, stats) = scripted(vec![answer, Answer::Http(200, None, b"")], &[]);
        let _ = d
            .call(Call::new(Operation::GetObject))
            .dispatch(req("GET", "/bkt/k", &[], &[]), None)
            .await;
        assert_eq!(script.seen().len(), 1);
        assert_eq!(stats.retries(), 0);
    }
}

#[tokio::test]
async fn buffered_and_registered_bodies_are_replayed_unregistered_streams_are_not() {
    // A buffered body (DeleteObjects XML) is sent again unchanged.
    let (d, script, _) = scripted(vec![Answer::Http(500, None, b"")], &[]);
    let mut r = req("POST", "/bkt", &["delete"], &[]);
    r.set_payload(Some(b"<Delete/>".to_vec()));
    let resp = d
        .call(Call::new(Operation::DeleteObjects))
        .dispatch(r, None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200);
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body == b"<Delete/>"));

    // A streaming body nobody registered goes out once.
    let (d, script, stats) = scripted(vec![Answer::Http(503, None, b"")], &[]);
    let mut r = req("PUT", "/bkt/k", &[], &[]);
    r.set_payload_stream(ByteStream::new_with_size(
        futures::stream::iter(vec![Ok(Bytes::from_static(b"abc"))]),
        3,
    ));
    let resp = d
        .call(Call::new(Operation::PutObject))
        .dispatch(r, None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 503);
    assert_eq!(script.seen().len(), 1);
    assert_eq!(stats.retries(), 0);

    // Registered pieces (several, one larger than a replay chunk) are replayed whole.
    let big = Bytes::from(vec![7u8; REPLAY_CHUNK + 5]);
    let pieces = vec![
        Bytes::from_static(b"head-"),
        big.clone(),
        Bytes::from_static(b"-tail"),
    ];
    let want: Vec<u8> = pieces.concat();
    let (d, script, stats) = scripted(
        vec![
            Answer::Fail("connection reset by peer"),
            Answer::Http(503, None, b""),
        ],
        &[],
    );
    let mut r = req(
        "PUT",
        "/bkt/k",
        &[],
        &[("partNumber", "1"), ("uploadId", "u")],
    );
    r.set_payload_stream(ByteStream::new_with_size(
        futures::stream::iter(pieces.clone().into_iter().map(Ok)),
        want.len(),
    ));
    let resp = d
        .call(Call::new(Operation::UploadPart).with_body(pieces.clone()))
        .dispatch(r, None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200);
    let seen = script.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.body == want));
    assert_eq!(stats.retries_snapshot()["UploadPart"], 2);

    // Registered pieces that do not match the body's length are not trusted.
    let (d, script, _) = scripted(vec![Answer::Http(500, None, b"")], &[]);
    let mut r = req("PUT", "/bkt/k", &[], &[]);
    r.set_payload_stream(ByteStream::new_with_size(
        futures::stream::iter(vec![Ok(Bytes::from_static(b"abcd"))]),
        4,
    ));
    let resp = d
        .call(Call::new(Operation::PutObject).with_body(vec![Bytes::from_static(b"abc")]))
        .dispatch(r, None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 500);
    assert_eq!(script.seen().len(), 1);
}

#[test]
fn multipart_etags() {
    // Two parts whose MD5s are those of "a" and "b".
    let (a, b) = (Md5::digest(b"a"), Md5::digest(b"b"));
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let xml = format!(
        "<CompleteMultipartUpload><Part><ETag>&quot;{}&quot;</ETag><PartNumber>1</PartNumber>\
         </Part><Part><ETag>\"{}\"</ETag><PartNumber>2</PartNumber></Part>\
         </CompleteMultipartUpload>",
        hex(&a),
        hex(&b)
    );
    let want = format!(
        "{}-2",
        hex(&Md5::digest([a.as_slice(), b.as_slice()].concat()))
    );
    assert_eq!(
        multipart_etag(xml.as_bytes()).as_deref(),
        Some(want.as_str())
    );
    assert_eq!(multipart_etag(b"<CompleteMultipartUpload/>"), None);
    assert_eq!(multipart_etag(b"<ETag>\"kms-style-etag\"</ETag>"), None);
    assert_eq!(multipart_etag(b"<ETag>zz</ETag"), None);
}

#[tokio::test]
async fn get_object_body_short_of_content_length_is_an_error() {
    let (d, _, _) = scripted(vec![Answer::Http(200, Some(10), b"01234")], &[]);
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    let err = body_of(resp).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("5 of 10 bytes"), "{err}");
    let (d, _, _) = scripted(vec![Answer::Http(200, Some(3), b"01234")], &[]);
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    assert!(body_of(resp).await.is_err());
    let (d, _, _) = scripted(vec![Answer::Http(206, None, b"01234")], &[]);
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    assert_eq!(body_of(resp).await.unwrap(), b"01234");
}

#[test]
fn content_range_and_length_parsing_rejects_bad_server_input() {
    let r = |a, b, t| {
        Some(ContentRange {
            first: a,
            last: b,
            total: t,
        })
    };
    assert_eq!(ContentRange::parse("bytes 0-9/10"), r(0, 9, Some(10)));
    assert_eq!(ContentRange::parse(" bytes 5-9/* "), r(5, 9, None));
    let max = u64::MAX;
    assert_eq!(
        ContentRange::parse(&format!("bytes 0-{}/{max}", max - 1)),
        r(0, max - 1, Some(max))
    );
    assert_eq!(r(0, max, None).unwrap().len(), None);
    for bad in [
        "bytes -1-9/10",
        "bytes 0--9/10",
        "bytes +0-9/10",
        "bytes 9-0/10",
        "bytes 0-10/10",
        "bytes 0-9/0",
        "bytes 0-18446744073709551616/*",
        "bytes 18446744073709551616-1/*",
        "bytes */10",
        "bytes 0-9",
        "bytes 0-9/ 10",
        "bytes 0 -9/10",
        "bytes 0-9/10/11",
        "bytes 0-9/-1",
        "items 0-9/10",
        "bytes 0x1-9/10",
        "",
        "bytes 1-２/10",
    ] {
        assert_eq!(ContentRange::parse(bad), None, "{bad:?}");
    }
    assert_eq!(decimal("0"), Some(0));
    assert_eq!(decimal("18446744073709551615"), Some(u64::MAX));
    for bad in ["", "-1", "+1", "1 ", "18446744073709551616", "1e3", "٣"] {
        assert_eq!(decimal(bad), None, "{bad:?}");
    }
}

fn headers(fields: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// Collects a body, keeping the bytes that came before an error.
async fn bytes_and_error(resp: HttpResponse) -> (Vec<u8>, Option<std::io::Error>) {
    let mut body = resp.body;
    let mut out = Vec::new();
    while let Some(c) = body.next().await {
        match c {
            Ok(c) => out.extend_from_slice(&c),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

const RESET: Option<&str> = Some("connection reset by peer");

#[tokio::test]
async fn a_broken_body_resumes_with_the_requested_range() {
    let first = headers(&[("etag", "\"e\""), ("content-length", "10")]);
    let rest = headers(&[
        ("etag", "\"e\""),
        ("content-length", "5"),
        ("content-range", "bytes 5-9/10"),
    ]);
    let (d, script, _) = scripted(
        vec![
            Answer::Raw(200, first, b"01234", RESET),
            Answer::Raw(206, rest, b"56789", None),
        ],
        &[("maxretries", "2")],
    );
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    let (bytes, err) = bytes_and_error(resp).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(bytes, b"0123456789");
    assert_eq!(script.seen().len(), 2);
}

#[tokio::test]
async fn a_resumed_answer_with_another_range_ends_the_body_with_an_error() {
    let first = || headers(&[("etag", "\"e\""), ("content-length", "10")]);
    let wrong: [(&str, &str, &'static [u8]); 6] = [
        // Right range, other version (the server ignored If-Match).
        ("bytes 5-9/10", "5", b"abcde"),
        // Same length, other offset: accepted before, splicing "01234" in again.
        ("bytes 0-4/10", "5", b"01234"),
        ("bytes 5-8/10", "4", b"5678"),
        ("bytes 5-9/20", "5", b"56789"),
        ("bytes 5-9/10", "4", b"5678"),
        ("garbage", "5", b"56789"),
    ];
    for (i, (range, len, body)) in wrong.into_iter().enumerate() {
        let rest = headers(&[
            ("etag", if i == 0 { "\"other\"" } else { "\"e\"" }),
            ("content-length", len),
            ("content-range", range),
        ]);
        let (d, script, _) = scripted(
            vec![
                Answer::Raw(200, first(), b"01234", RESET),
                Answer::Raw(206, rest, body, None),
            ],
            &[("maxretries", "2")],
        );
        let resp = d
            .call(Call::new(Operation::GetObject))
            .dispatch(req("GET", "/bkt/k", &[], &[]), None)
            .await
            .unwrap();
        let (bytes, err) = bytes_and_error(resp).await;
        let err = err.unwrap_or_else(|| panic!("{range}: no error, got {bytes:?}"));
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidData,
            "{range}: {err}"
        );
        assert!(err.to_string().contains("resuming"), "{range}: {err}");
        assert_eq!(bytes, b"01234", "{range}");
        assert_eq!(script.seen().len(), 2, "{range}");
    }
    // A missing Content-Range on the resumed 206.
    let rest = headers(&[("etag", "\"e\""), ("content-length", "5")]);
    let (d, _, _) = scripted(
        vec![
            Answer::Raw(200, first(), b"01234", RESET),
            Answer::Raw(206, rest, b"56789", None),
        ],
        &[("maxretries", "2")],
    );
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    let (bytes, err) = bytes_and_error(resp).await;
    assert_eq!(bytes, b"01234");
    assert!(err.unwrap().to_string().contains("Content-Range"));
}

#[tokio::test]
async fn an_impossible_first_range_never_resumes_or_overflows() {
    let max = u64::MAX;
    let cases: [(String, Option<&str>, &'static [u8]); 4] = [
        // Reversed (start past end): its resume offset overflowed.
        (format!("bytes {}-3/10", max - 4), Some("10"), b"01234"),
        // The last byte of the largest object, then a break: `start + seen` overflows.
        (format!("bytes {max}-{max}/*"), None, b"0"),
        (format!("bytes {max}-{max}/*"), Some("1"), b"0"),
        // Content-Range disagreeing with Content-Length.
        ("bytes 0-9/10".to_owned(), Some("7"), b"01234"),
    ];
    for (range, len, body) in cases {
        let mut first = headers(&[("etag", "\"e\""), ("content-range", &range)]);
        if let Some(len) = len {
            first.push(("content-length", len.to_owned()));
        }
        let (d, script, _) = scripted(
            vec![
                Answer::Raw(206, first, body, RESET),
                Answer::Http(206, None, b"never"),
            ],
            &[("maxretries", "2")],
        );
        let resp = d
            .call(Call::new(Operation::GetObject))
            .dispatch(req("GET", "/bkt/k", &[], &[]), None)
            .await
            .unwrap();
        let (bytes, err) = bytes_and_error(resp).await;
        assert!(err.is_some(), "{range}");
        assert_eq!(bytes, body, "{range}");
        assert_eq!(script.seen().len(), 1, "{range}: resumed");
    }
}

fn dispatch_error(outcome: Result<HttpResponse, HttpDispatchError>) -> String {
    match outcome {
        Ok(resp) => panic!("answered HTTP {}", resp.status),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_partial_answer_without_content_length_is_held_to_its_range() {
    let over = headers(&[("content-range", "bytes 0-4/10")]);
    let (d, _, _) = scripted(vec![Answer::Raw(206, over, b"0123456789", None)], &[]);
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    let (bytes, err) = bytes_and_error(resp).await;
    let err = err.unwrap_or_else(|| panic!("no error, got {bytes:?}"));
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(bytes.is_empty(), "{bytes:?}");
    let exact = headers(&[("content-range", "bytes 5-9/10")]);
    let (d, _, _) = scripted(vec![Answer::Raw(206, exact, b"56789", None)], &[]);
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    assert_eq!(body_of(resp).await.unwrap(), b"56789");
}

#[tokio::test]
async fn oversized_answers_fail_without_retry() {
    let list = || req("GET", "/bkt", &[], &[("list-type", "2")]);
    let (d, script, stats) = scripted(
        vec![Answer::Http(200, Some(MAX_ANSWER_BYTES + 1), b"")],
        &[],
    );
    let err = dispatch_error(
        d.call(Call::new(Operation::ListObjectsV2))
            .dispatch(list(), None)
            .await,
    );
    assert!(err.contains("ListObjectsV2 answer too large"), "{err}");
    assert!(err.contains("Content-Length"), "{err}");
    assert_eq!(script.seen().len(), 1);
    assert_eq!(stats.retries(), 0);

    let (d, script, _) = scripted(vec![Answer::Huge(200, 17)], &[]);
    let err = dispatch_error(
        d.call(Call::new(Operation::ListObjectsV2))
            .dispatch(list(), None)
            .await,
    );
    assert!(err.contains("ListObjectsV2 answer too large"), "{err}");
    assert_eq!(script.seen().len(), 1);

    // Error documents are capped too (a GetObject that failed).
    let (d, _, _) = scripted(vec![Answer::Huge(404, 17)], &[]);
    let err = dispatch_error(
        d.call(Call::new(Operation::GetObject))
            .dispatch(req("GET", "/bkt/k", &[], &[]), None)
            .await,
    );
    assert!(err.contains("GetObject answer too large"), "{err}");

    // Up to the cap is read.
    let (d, _, _) = scripted(vec![Answer::Huge(200, 16)], &[]);
    let resp = d
        .call(Call::new(Operation::ListObjectsV2))
        .dispatch(list(), None)
        .await
        .unwrap();
    assert_eq!(body_of(resp).await.unwrap().len(), 16 << 20);
}

#[tokio::test]
async fn a_get_object_body_that_goes_silent_fails_after_requesttimeout() {
    let (d, _, _) = scripted(
        vec![Answer::StallBody],
        &[("requesttimeout", "1s"), ("maxretries", "0")],
    );
    let t = Instant::now();
    let resp = d
        .call(Call::new(Operation::GetObject))
        .dispatch(req("GET", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    let err = body_of(resp).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("stalled"), "{err}");
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_silent_server_times_out_and_is_retried() {
    let (d, script, stats) = scripted(
        vec![Answer::Hang, Answer::Http(200, None, b"")],
        &[("requesttimeout", "1s")],
    );
    let t = Instant::now();
    let resp = d
        .call(Call::new(Operation::HeadObject))
        .dispatch(req("HEAD", "/bkt/k", &[], &[]), None)
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(script.seen().len(), 2);
    assert_eq!(stats.ambiguous_retries("HeadObject"), 1);
    // With no retries left the timeout is the answer, within the operation budget.
    let (d, _, _) = scripted(
        vec![Answer::Hang],
        &[("requesttimeout", "1s"), ("maxretries", "0")],
    );
    let err = d
        .call(Call::new(Operation::HeadObject))
        .dispatch(req("HEAD", "/bkt/k", &[], &[]), None)
        .await
        .err()
        .expect("the timeout is the answer");
    assert!(err.to_string().contains("requesttimeout"), "{err}");
    let (d, script, _) = scripted(
        (0..5).map(|_| Answer::Hang).collect(),
        &[
            ("requesttimeout", "1s"),
            ("operationtimeout", "2s"),
            ("maxretries", "20"),
        ],
    );
    let t = Instant::now();
    assert!(d
        .call(Call::new(Operation::HeadObject))
        .dispatch(req("HEAD", "/bkt/k", &[], &[]), None)
        .await
        .is_err());
    assert!(
        t.elapsed() < Duration::from_millis(2900),
        "{:?}",
        t.elapsed()
    );
    assert!(script.seen().len() <= 3);
}

#[cfg(feature = "native-tls")]
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
    let identity =
        native_tls::Identity::from_pkcs8(&std::fs::read(&cert).ok()?, &std::fs::read(&key).ok()?)
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
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Some((port, task, heads))
}

#[cfg(feature = "native-tls")]
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
        let res = d
            .call(Call::new(Operation::HeadObject))
            .dispatch(r, Some(Duration::from_secs(10)))
            .await;
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
