//! The HTTP layer under rusoto: addressing, signing (SigV4 or SigV2), request statistics.
//!
//! The rusoto client is built with `Client::new_not_signing`, so every request reaches
//! [`Dispatcher`] unsigned and path-style (`/bucket/key`). The dispatcher then
//!
//! 1. rewrites it to virtual-hosted style (`bucket.host`, path without `/bucket`) unless path
//!    style is forced,
//! 2. adds `Content-MD5` to every buffered body that lacks one (`DeleteObjects`, several
//!    servers require it; `CompleteMultipartUpload`, which SigV2 would otherwise leave
//!    unprotected); streamed bodies get theirs from [`crate::s3api`],
//! 3. signs it — SigV4 through [`crate::sigv4`], or SigV2 through [`crate::sigv2`], both over
//!    exactly the path and query it will send,
//! 4. counts it in [`RequestStats`] by S3 operation and sends it on a keep-alive pool
//!    ([`crate::transport`], which logs no header and no URL),
//! 5. retries it when that is safe (below), signing every attempt afresh.
//!
//! Signing here rather than in rusoto's client keeps one code path for both signature
//! versions and lets the SigV2 canonical resource match the final address.
//!
//! # Retries
//!
//! An attempt is retried when it failed in a way that may pass on its own:
//!
//! * the server answered 5xx (except 501 Not Implemented), 429, 408, or 400 with the S3 code
//!   `RequestTimeout` (S3's "your socket was idle" answer) — this covers `503 SlowDown`;
//! * the server answered 400 `BadDigest` or `XAmzContentSHA256Mismatch`: the body it received
//!   does not match the digest computed here from the very bytes a retry sends again, so it
//!   was changed on the way and a resend may arrive intact (nothing was stored); likewise 400
//!   `MalformedXML`, since every XML body sent is rusoto's own well-formed output (RGW reports
//!   a CompleteMultipartUpload body changed on the way that way under SigV2, not as
//!   `BadDigest`). A server that keeps refusing costs at most `maxretries` resends;
//! * the transport failed: connection refused or reset, closed before the answer, the answer
//!   truncated (fewer body bytes than `Content-Length`), or no progress for `requesttimeout`.
//!
//! …and only when the request can be sent again byte for byte: no body, a buffered body
//! (rusoto's `SignedRequestPayload::Buffer`), or a streaming body whose pieces the caller
//! registered with [`with_replayable_body`] (the writer's parts: `Bytes` handles, so a replay
//! copies nothing). A streaming body without that registration is sent once and never retried.
//! Certificate errors and malformed requests are final.
//!
//! The delay before retry `n` (1-based) is drawn uniformly from `[0, min(10 s, 100 ms · 2ⁿ⁻¹))`
//! ("full jitter", so throttled clients spread out instead of retrying in lock-step). At most
//! `maxretries` retries are made, and none once `operationtimeout` has passed since the first
//! attempt. Each retry is logged at `warn` (operation, attempt, status or failure kind, delay —
//! never headers, keys or signatures) and counted in [`RequestStats::retries`].
//!
//! Answers other than a successful GetObject are read whole here (they are small XML
//! documents), so a truncated listing or error document is retried like a reset. A
//! successful GetObject body streams to the caller; when it cannot be resumed (below) it ends
//! with an error, never short data, if it stops before `Content-Length` bytes or goes quiet for
//! `requesttimeout`.
//!
//! Some failures leave it open whether the server acted (a reset after the request was sent,
//! a timeout, a truncated answer). Repeating is still right for every S3 operation the driver
//! uses except two, which such retries can affect: a repeated `CreateMultipartUpload` may leave
//! the first upload orphaned (the registry's `uploads abort` removes it), and a repeated
//! `CompleteMultipartUpload` may answer `NoSuchUpload` although the first one completed. The
//! second case is recovered: the object's ETag is compared with the multipart ETag of the parts
//! sent, and a match is success. Likewise a retried `AbortMultipartUpload` answered
//! `NoSuchUpload` is success (the upload is gone). Ambiguous retries are counted separately in
//! [`RequestStats::ambiguous_retries`].
//!
//! A successful GetObject body that breaks (reset, truncated, silent) is resumed within the
//! same retry budget: a ranged GET of the missing bytes with `If-Match` on the ETag, so the
//! rest comes from the same object version or the read fails.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt as _, Stream, StreamExt as _};
use md5::{Digest as _, Md5};
use rusoto_core::request::{
    DispatchSignedRequest, DispatchSignedRequestFuture, HttpDispatchError, HttpResponse,
};
use rusoto_core::signature::{SignedRequest, SignedRequestPayload};
use rusoto_core::ByteStream;

use crate::config::S3Config;
use crate::credentials::CredentialsProvider;
use crate::net::Connector;
use crate::sigv2;
use crate::sigv4::{self, Signer};
use crate::transport::{self, Transport};

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
///
/// Retries are counted too: each retry is one more request in the operation's count, and
/// also one in [`retries`](Self::retries).
#[derive(Debug)]
pub struct RequestStats {
    counts: Vec<AtomicU64>,
    retries: Vec<AtomicU64>,
    ambiguous: Vec<AtomicU64>,
    orphans: AtomicU64,
}

impl Default for RequestStats {
    fn default() -> Self {
        let zeros = || OPERATIONS.iter().map(|_| AtomicU64::new(0)).collect();
        RequestStats {
            counts: zeros(),
            retries: zeros(),
            ambiguous: zeros(),
            orphans: AtomicU64::new(0),
        }
    }
}

fn op_index(operation: &str) -> usize {
    OPERATIONS
        .iter()
        .position(|o| *o == operation)
        .unwrap_or(OPERATIONS.len() - 1)
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

    /// Requests sent again after a failed attempt (every operation).
    pub fn retries(&self) -> u64 {
        self.retries.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Retries by operation; operations never retried are absent.
    pub fn retries_snapshot(&self) -> BTreeMap<String, u64> {
        OPERATIONS
            .iter()
            .zip(&self.retries)
            .filter_map(|(name, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| ((*name).to_owned(), n))
            })
            .collect()
    }

    /// Retries of `operation` after a failure that leaves open whether the server acted
    /// (reset after sending, timeout, truncated answer): for `CreateMultipartUpload` each may
    /// have left an orphaned upload (see the `dispatch` module). 0 for unknown names.
    pub fn ambiguous_retries(&self, operation: &str) -> u64 {
        OPERATIONS
            .iter()
            .position(|o| *o == operation)
            .map_or(0, |i| self.ambiguous[i].load(Ordering::Relaxed))
    }

    /// Orphaned multipart uploads the driver aborted itself: uploads a reset or timed-out
    /// `CreateMultipartUpload` created before its retry created the one in use.
    pub fn orphans_aborted(&self) -> u64 {
        self.orphans.load(Ordering::Relaxed)
    }

    fn record(&self, operation: &'static str) {
        self.counts[op_index(operation)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_retry(&self, operation: &'static str, ambiguous: bool) {
        let i = op_index(operation);
        self.retries[i].fetch_add(1, Ordering::Relaxed);
        if ambiguous {
            self.ambiguous[i].fetch_add(1, Ordering::Relaxed);
        }
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
                return format!("/{}{}", self.bucket, sigv4::wire_path(request));
            }
        }
        sigv4::wire_path(request)
    }
}

/// Which signature the dispatcher adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureVersion {
    /// AWS Signature Version 4 ([`crate::sigv4`]).
    V4,
    /// AWS Signature Version 2 ([`crate::sigv2`]).
    V2,
}

/// How failed requests are retried and how long attempts may take (from [`S3Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: u32,
    /// Ceiling of the first back-off delay; doubles with every retry.
    pub(crate) base: Duration,
    /// Largest back-off ceiling.
    pub(crate) cap: Duration,
    /// Longest an attempt may go without progress.
    pub(crate) request_timeout: Duration,
    /// Budget of all attempts and waits of one operation.
    pub(crate) operation_timeout: Duration,
}

/// First back-off ceiling.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Largest back-off ceiling.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(10);

impl RetryPolicy {
    /// The policy `config` asks for, with the fixed 100 ms base and 10 s cap.
    pub(crate) fn from_config(config: &S3Config) -> Self {
        RetryPolicy {
            max_retries: config.max_retries,
            base: BACKOFF_BASE,
            cap: BACKOFF_CAP,
            request_timeout: config.request_timeout,
            operation_timeout: config.operation_timeout,
        }
    }

    /// The exclusive upper bound of the delay before retry `retry` (1-based):
    /// `min(cap, base · 2^(retry-1))`.
    pub(crate) fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << exp)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The delay before retry `retry` for a uniform draw `unit` in `[0, 1)` (full jitter).
    pub(crate) fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.backoff_ceiling(retry).mul_f64(unit)
    }
}

/// A uniform draw from `[0, 1)`. Jitter only needs to differ between clients and calls, not
/// to be unpredictable, so std's randomly keyed hasher over a counter is enough.
pub(crate) fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Why an attempt failed, as far as the retry decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The server answered an error status worth retrying (5xx but 501, 429, 408, or 400
    /// `RequestTimeout`).
    Status,
    /// The connection could not be opened (refused, DNS): the server never saw the request.
    Refused,
    /// Reset or broken pipe.
    Reset,
    /// The connection closed before the whole answer arrived.
    Closed,
    /// Fewer answer bytes than `Content-Length`.
    Truncated,
    /// No progress for `requesttimeout`, or the operation's budget ran out.
    Timeout,
    /// Another transport failure (retried, since hyper's wording changes between versions).
    Transport,
    /// A failure that repeating cannot fix: certificate errors, malformed requests.
    Fatal,
}

impl FailureKind {
    /// Short name for logs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FailureKind::Status => "status",
            FailureKind::Refused => "refused",
            FailureKind::Reset => "reset",
            FailureKind::Closed => "closed",
            FailureKind::Truncated => "truncated",
            FailureKind::Timeout => "timeout",
            FailureKind::Transport => "transport",
            FailureKind::Fatal => "fatal",
        }
    }

    /// Whether a retry may help.
    pub(crate) fn retryable(self) -> bool {
        self != FailureKind::Fatal
    }

    /// Whether the server may have carried the request out although the attempt failed.
    pub(crate) fn ambiguous(self) -> bool {
        matches!(
            self,
            FailureKind::Reset
                | FailureKind::Closed
                | FailureKind::Truncated
                | FailureKind::Timeout
                | FailureKind::Transport
        )
    }
}

/// Classifies a transport error by its text (hyper's and rusoto's errors carry no kind).
pub(crate) fn classify_transport(message: &str) -> FailureKind {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if has(&[
        "certificate",
        "tls handshake",
        "ssl",
        "unsupported http verb",
        "error parsing header",
        "error building request",
        "invalid uri",
        "no credentials",
    ]) {
        FailureKind::Fatal
    } else if has(&["refused", "dns error", "failed to lookup"]) {
        FailureKind::Refused
    } else if has(&["reset", "broken pipe"]) {
        FailureKind::Reset
    } else if has(&[
        "end of file before message length",
        "incompletemessage",
        "incomplete",
        "truncated",
        "unexpected eof",
    ]) {
        FailureKind::Truncated
    } else if has(&["timeout", "timed out"]) {
        FailureKind::Timeout
    } else if has(&["closed"]) {
        FailureKind::Closed
    } else {
        FailureKind::Transport
    }
}

/// Whether an answered status (with its buffered body, when read) is worth retrying.
pub(crate) fn retryable_status(status: u16, body: &[u8]) -> bool {
    match status {
        408 | 429 => true,
        501 => false,
        500..=599 => true,
        // The digests are computed from the bytes a retry resends: a mismatch is damage in
        // transit, not a wrong request (see the module documentation).
        400 => matches!(
            s3_error_code(body),
            Some("RequestTimeout" | "BadDigest" | "XAmzContentSHA256Mismatch" | "MalformedXML")
        ),
        _ => false,
    }
}

/// The text of the first `<name>` element of an XML document (no entity decoding: used for
/// upload ids, keys and times, which never contain entities).
fn xml_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(text[start..start + len].trim().to_owned())
}

/// The `<Code>` of an S3 error document, if `body` is one.
fn s3_error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim())
}

tokio::task_local! {
    /// The pieces of the streaming body of the rusoto call running in this task, if the caller
    /// registered them with [`with_replayable_body`].
    static REPLAYABLE_BODY: Vec<Bytes>;
}

/// Runs `call` (one rusoto request future) with `pieces` registered as a replayable copy of
/// its streaming body, so that the dispatcher may retry it. The pieces must be exactly the
/// bytes of the body `call` sends (the dispatcher checks the length and otherwise does not
/// retry). Cloning `Bytes` shares the buffers: nothing is copied.
pub(crate) async fn with_replayable_body<F: Future>(pieces: Vec<Bytes>, call: F) -> F::Output {
    REPLAYABLE_BODY.scope(pieces, call).await
}

/// Largest chunk a replayed body is handed to hyper in, so progress is seen while it sends.
const REPLAY_CHUNK: usize = 1 << 20;

/// The body of one request, as far as it can be sent again.
enum Body {
    None,
    Buffer(Bytes),
    Pieces {
        pieces: Vec<Bytes>,
        len: usize,
    },
    /// Not replayable; `None` once it has been sent.
    Stream(Option<ByteStream>),
}

impl Body {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(_))
    }

    /// The payload of the next attempt; `progress` is touched as hyper takes body chunks.
    fn next_payload(&mut self, progress: &Arc<Progress>) -> Option<SignedRequestPayload> {
        match self {
            Body::None => None,
            Body::Buffer(b) => Some(SignedRequestPayload::Buffer(b.clone())),
            Body::Pieces { pieces, len } => {
                let mut chunks = Vec::new();
                for p in pieces.iter() {
                    let mut at = 0;
                    while at < p.len() {
                        let end = (at + REPLAY_CHUNK).min(p.len());
                        chunks.push(p.slice(at..end));
                        at = end;
                    }
                }
                let progress = Arc::clone(progress);
                let stream = futures::stream::iter(chunks).map(move |c| {
                    progress.touch();
                    Ok(c)
                });
                Some(SignedRequestPayload::Stream(ByteStream::new_with_size(
                    stream, *len,
                )))
            }
            Body::Stream(s) => s.take().map(SignedRequestPayload::Stream),
        }
    }
}

/// When an attempt last made progress, for the inactivity limit.
struct Progress {
    start: Instant,
    last_nanos: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            start: Instant::now(),
            last_nanos: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let n = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.fetch_max(n, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_nanos(self.last_nanos.load(Ordering::Relaxed)) + idle
    }
}

/// Why [`watch`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stalled {
    Idle,
    Deadline,
}

/// Runs `fut` until it completes, no progress is seen for `idle`, or `deadline` passes.
async fn watch<F: Future>(
    fut: F,
    progress: &Progress,
    idle: Duration,
    deadline: Instant,
) -> Result<F::Output, Stalled> {
    tokio::pin!(fut);
    // Most answers of small requests are already buffered: finish those without registering
    // a timer.
    if let Poll::Ready(out) = futures::poll!(&mut fut) {
        return Ok(out);
    }
    loop {
        let wake = progress.idle_deadline(idle).min(deadline);
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Stalled::Deadline);
                }
                if now >= progress.idle_deadline(idle) {
                    return Err(Stalled::Idle);
                }
            }
        }
    }
}

/// How a broken GetObject body continues: a ranged GET of the rest of the same object version
/// (`If-Match` its ETag), so a reset or truncated download resumes instead of failing.
struct Resume {
    inner: Arc<Inner>,
    /// The addressed, unsigned GET (shared with the attempt that made this body).
    template: Arc<Template>,
    resource: String,
    etag: String,
    /// Absolute offset of this body's first byte, and of the last byte wanted (inclusive);
    /// `start <= end` (from a validated [`ContentRange`] or a non-zero `Content-Length`).
    start: u64,
    end: u64,
    /// The object's size when the first answer told it: every resumed answer must agree.
    total: Option<u64>,
    /// Resumptions still allowed (shared `maxretries` budget of the request).
    retries_left: u32,
    /// Resumptions made so far, numbering the back-off.
    retry: u32,
}

type PendingGet =
    Pin<Box<dyn Future<Output = Result<HttpResponse, (std::io::ErrorKind, String)>> + Send>>;

/// Checks that a resumed GetObject answer holds exactly bytes `from..=end` of an object of
/// `total` bytes (when known) and, when it names one, of the version with `etag` (a server
/// ignoring `If-Match` may serve a newer version): otherwise wrong bytes would be spliced
/// into the data. The message names what disagreed (never the ETag values).
fn check_resumed(
    resp: &HttpResponse,
    from: u64,
    end: u64,
    total: Option<u64>,
    etag: &str,
) -> Result<(), String> {
    if resp.headers.get("etag").is_some_and(|e| e.trim() != etag) {
        return Err("resuming the body answered another object version (ETag changed)".to_owned());
    }
    let Some(got) = content_range(resp) else {
        return Err(format!(
            "resuming the body answered HTTP 206 without a valid Content-Range \
             (wanted bytes {from}-{end})"
        ));
    };
    let total_agrees = match (total, got.total) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    };
    if got.first != from || got.last != end || !total_agrees {
        let shown = |t: Option<u64>| t.map_or_else(|| "*".to_owned(), |t| t.to_string());
        return Err(format!(
            "resuming the body answered bytes {}-{}/{} instead of {from}-{end}/{}",
            got.first,
            got.last,
            shown(got.total),
            shown(total)
        ));
    }
    if let (Some(len), Some(want)) = (content_length(resp), got.len()) {
        if len != want {
            return Err(format!(
                "resuming the body answered Content-Length {len} for a range of {want} bytes"
            ));
        }
    }
    Ok(())
}

/// A successful GetObject body: ends with an error when it stops short of (or runs past)
/// `Content-Length`, or goes quiet for the request timeout — never with short data. When it
/// breaks and the object has an ETag, the rest is fetched again ([`Resume`]) within the
/// request's retry budget.
struct GuardedBody {
    inner: ByteStream,
    idle: Duration,
    /// Armed when the body first has to wait, re-armed by every chunk after that: a small
    /// body already buffered by hyper never registers a timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expected: Option<u64>,
    seen: u64,
    done: bool,
    resume: Option<Resume>,
    pending: Option<PendingGet>,
}

impl GuardedBody {
    fn new(
        inner: ByteStream,
        expected: Option<u64>,
        idle: Duration,
        resume: Option<Resume>,
    ) -> Self {
        GuardedBody {
            inner,
            idle,
            timer: None,
            expected,
            seen: 0,
            done: false,
            resume,
            pending: None,
        }
    }

    fn fail(
        &mut self,
        kind: std::io::ErrorKind,
        message: String,
    ) -> Poll<Option<std::io::Result<Bytes>>> {
        self.done = true;
        Poll::Ready(Some(Err(std::io::Error::new(kind, message))))
    }

    /// Starts fetching the rest after a break described by `why`; `false` when not allowed
    /// (then the caller ends the body with its error).
    fn start_resume(&mut self, why: &str) -> bool {
        let Some(r) = self.resume.as_mut() else {
            return false;
        };
        // `start` comes from the server: an offset past `u64::MAX` cannot be resumed.
        let Some(from) = r.start.checked_add(self.seen) else {
            return false;
        };
        if r.retries_left == 0 || from > r.end {
            return false;
        }
        r.retries_left -= 1;
        r.retry += 1;
        let delay = r.inner.policy.backoff(r.retry, jitter_unit());
        tracing::warn!(
            op = "GetObject",
            attempt = r.retry,
            kind = "body",
            error = %why,
            delay_ms = delay.as_millis() as u64,
            "s3 response body broke; fetching the rest"
        );
        r.inner.stats.record_retry("GetObject", true);
        let mut req = r.template.request();
        req.remove_header("range");
        req.add_header("range", &format!("bytes={from}-{}", r.end));
        req.remove_header("if-match");
        req.add_header("if-match", &r.etag);
        let req = Template::new(req);
        let inner = Arc::clone(&r.inner);
        let resource = r.resource.clone();
        let (end, total, etag) = (r.end, r.total, r.etag.clone());
        let mut left = r.retries_left;
        let mut retry = r.retry;
        r.retries_left = 0;
        self.pending = Some(Box::pin(async move {
            let mut delay = delay;
            loop {
                tokio::time::sleep(delay).await;
                let deadline = Instant::now() + inner.policy.operation_timeout;
                let outcome = inner
                    .attempt(
                        &req,
                        &mut Body::None,
                        &resource,
                        "GetObject",
                        deadline,
                        left,
                    )
                    .await;
                match outcome {
                    Ok(resp) if resp.status.as_u16() == 206 => {
                        return match check_resumed(&resp, from, end, total, &etag) {
                            Ok(()) => Ok(resp),
                            Err(msg) => Err((std::io::ErrorKind::InvalidData, msg)),
                        }
                    }
                    Ok(resp) => {
                        return Err((
                            std::io::ErrorKind::Other,
                            format!(
                                "resuming the body answered HTTP {} (object changed?)",
                                resp.status.as_u16()
                            ),
                        ))
                    }
                    Err(f) if f.kind.retryable() && left > 0 => {
                        left -= 1;
                        retry += 1;
                        delay = inner.policy.backoff(retry, jitter_unit());
                        inner.stats.record_retry("GetObject", f.kind.ambiguous());
                    }
                    Err(f) => {
                        return Err((
                            std::io::ErrorKind::Other,
                            match f.outcome {
                                Err(e) => e.to_string(),
                                Ok(resp) => format!(
                                    "resuming the body answered HTTP {}",
                                    resp.status.as_u16()
                                ),
                            },
                        ))
                    }
                }
            }
        }));
        true
    }
}

impl Stream for GuardedBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(pending) = this.pending.as_mut() {
                match pending.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(resp)) => {
                        this.pending = None;
                        // The new body guards itself and may resume again with what is left.
                        this.inner = resp.body;
                        this.timer = None;
                        continue;
                    }
                    Poll::Ready(Err((kind, msg))) => {
                        this.pending = None;
                        return this.fail(kind, msg);
                    }
                }
            }
            return match this.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.seen = this.seen.saturating_add(chunk.len() as u64);
                    if let Some(want) = this.expected {
                        if this.seen > want {
                            let msg = format!(
                                "response body longer than announced ({} > {want} bytes)",
                                this.seen
                            );
                            return this.fail(std::io::ErrorKind::InvalidData, msg);
                        }
                    }
                    if let Some(timer) = this.timer.as_mut() {
                        timer
                            .as_mut()
                            .reset(tokio::time::Instant::now() + this.idle);
                    }
                    Poll::Ready(Some(Ok(chunk)))
                }
                Poll::Ready(Some(Err(e))) => {
                    if this.start_resume(&e.to_string()) {
                        continue;
                    }
                    this.done = true;
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Ready(None) => match this.expected {
                    Some(want) if this.seen < want => {
                        let msg = format!(
                            "response body truncated: {} of {want} bytes (Content-Length)",
                            this.seen
                        );
                        if this.start_resume(&msg) {
                            continue;
                        }
                        this.fail(std::io::ErrorKind::UnexpectedEof, msg)
                    }
                    _ => {
                        this.done = true;
                        Poll::Ready(None)
                    }
                },
                Poll::Pending => {
                    let idle = this.idle;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                    if timer.as_mut().poll(cx).is_ready() {
                        let msg = format!(
                            "response body stalled: no data for {}s (requesttimeout)",
                            this.idle.as_secs_f64()
                        );
                        if this.start_resume(&msg) {
                            continue;
                        }
                        return this.fail(std::io::ErrorKind::TimedOut, msg);
                    }
                    Poll::Pending
                }
            };
        }
    }
}

/// A retried AbortMultipartUpload answered `NoSuchUpload` after an attempt that may have gone
/// through: the upload is gone, which is what was asked, so the answer becomes `204`.
async fn already_aborted(mut resp: HttpResponse) -> HttpResponse {
    let body = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
    let chunks: Vec<Bytes> = body.filter_map(|c| async { c.ok() }).collect().await;
    let bytes = chunks.concat();
    if s3_error_code(&bytes) == Some("NoSuchUpload") {
        tracing::debug!(
            op = "AbortMultipartUpload",
            "retried abort found the upload gone; done"
        );
        resp.status = hyper::StatusCode::NO_CONTENT;
        resp.headers.remove(hyper::header::CONTENT_LENGTH);
        resp.body = ByteStream::from(Vec::new());
    } else {
        resp.body = ByteStream::from(bytes);
    }
    resp
}

/// A satisfied `Content-Range: bytes first-last/total` (RFC 9110 §14.4), validated:
/// `first <= last`, and `last < total` when the total is known (`*` is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    first: u64,
    last: u64,
    total: Option<u64>,
}

impl ContentRange {
    /// Parses a header value; `None` for anything malformed or impossible (the server
    /// controls it: signs, blanks, overflowing or reversed numbers all end here).
    fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (a, b) = range.split_once('-')?;
        let (first, last) = (decimal(a)?, decimal(b)?);
        let total = match total {
            "*" => None,
            t => Some(decimal(t)?),
        };
        if first > last || total.is_some_and(|t| last >= t) {
            return None;
        }
        Some(ContentRange { first, last, total })
    }

    /// Bytes in the range (`last - first + 1`); `None` only for `0-u64::MAX`.
    fn len(&self) -> Option<u64> {
        (self.last - self.first).checked_add(1)
    }
}

/// The answer's `Content-Range`, when present and valid (see [`ContentRange::parse`]).
fn content_range(resp: &HttpResponse) -> Option<ContentRange> {
    ContentRange::parse(resp.headers.get("content-range")?)
}

/// A strict HTTP decimal (`1*DIGIT`, no sign or blanks inside) that fits in `u64`.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether rusoto's streaming body announces exactly `len` bytes (see
/// [`transport::stream_len`]; when that cannot tell, the body is merely not retried).
fn stream_len_is(s: &ByteStream, len: usize) -> bool {
    transport::stream_len(s) == Some(len)
}

/// The ETag S3 gives an object completed from the parts listed in a CompleteMultipartUpload
/// request body: hex MD5 of the concatenated binary part MD5s, `-`, the part count. `None`
/// when a part ETag is not a plain MD5 (SSE-KMS parts, for example).
pub(crate) fn multipart_etag(complete_xml: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(complete_xml).ok()?;
    let mut digests = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<ETag>") {
        let after = &rest[start + "<ETag>".len()..];
        let end = after.find("</ETag>")?;
        let etag = after[..end].replace("&quot;", "").replace('"', "");
        let etag = etag.trim();
        if etag.len() != 32 {
            return None;
        }
        for i in (0..32).step_by(2) {
            digests.push(u8::from_str_radix(etag.get(i..i + 2)?, 16).ok()?);
        }
        rest = &after[end..];
    }
    if digests.is_empty() {
        return None;
    }
    let sum = Md5::digest(&digests);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{hex}-{}", digests.len() / 16))
}

/// `Content-Length` of an answer, when present and a valid decimal (hyper rejects a
/// malformed one on the wire before it gets here).
fn content_length(resp: &HttpResponse) -> Option<u64> {
    resp.headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| decimal(v.trim()))
}

/// An addressed, unsigned request without its body: what every attempt signs a copy of.
/// A separate type (not a body-less `SignedRequest`) so it can be shared between tasks: a
/// `SignedRequest` is not `Sync` because of its payload.
struct Template {
    method: String,
    service: String,
    region: rusoto_core::Region,
    path: String,
    headers: BTreeMap<String, Vec<Vec<u8>>>,
    params: BTreeMap<String, Option<String>>,
    scheme: Option<String>,
    hostname: Option<String>,
}

impl Template {
    /// Takes the request's parts; its payload, if any, is dropped (the caller took it).
    fn new(r: SignedRequest) -> Arc<Self> {
        Arc::new(Template {
            method: r.method,
            service: r.service,
            region: r.region,
            path: r.path,
            headers: r.headers,
            params: r.params,
            scheme: r.scheme,
            hostname: r.hostname,
        })
    }

    /// A body-less, unsigned request to sign and send.
    fn request(&self) -> SignedRequest {
        SignedRequest {
            method: self.method.clone(),
            service: self.service.clone(),
            region: self.region.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            params: self.params.clone(),
            scheme: self.scheme.clone(),
            hostname: self.hostname.clone(),
            payload: None,
            canonical_query_string: String::new(),
            canonical_uri: String::new(),
        }
    }
}

/// A copy of an addressed, unsigned request without its body.
fn unsigned_copy(r: &SignedRequest) -> SignedRequest {
    SignedRequest {
        method: r.method.clone(),
        service: r.service.clone(),
        region: r.region.clone(),
        path: r.path.clone(),
        headers: r.headers.clone(),
        params: r.params.clone(),
        scheme: r.scheme.clone(),
        hostname: r.hostname.clone(),
        payload: None,
        canonical_query_string: r.canonical_query_string.clone(),
        canonical_uri: r.canonical_uri.clone(),
    }
}

/// The largest answer other than a successful GetObject body that is read into memory. The
/// largest legitimate ones are 1000-entry listings (ListObjectsV2, ListParts,
/// ListMultipartUploads) and DeleteObjects results, about 1.5 MiB even with 1024-byte keys,
/// every one escaped: 16 MiB leaves a wide margin and still bounds a hostile server.
const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// The non-retried failure of an answer over [`MAX_ANSWER_BYTES`] (`declared`: its
/// `Content-Length`, when that alone gave it away).
fn answer_too_large(op: &str, declared: Option<u64>) -> Failed {
    let size = match declared {
        Some(len) => format!("Content-Length {len}"),
        None => "body".to_owned(),
    };
    Failed::transport(
        FailureKind::Fatal,
        format!(
            "s3aws: {op} answer too large: its {size} exceeds the {} MiB limit",
            MAX_ANSWER_BYTES >> 20
        ),
    )
}

/// A failed attempt: what went wrong and what to hand rusoto if it is not retried.
struct Failed {
    kind: FailureKind,
    status: Option<u16>,
    outcome: Result<HttpResponse, HttpDispatchError>,
}

impl Failed {
    fn transport(kind: FailureKind, message: String) -> Self {
        Failed {
            kind,
            status: None,
            outcome: Err(HttpDispatchError::new(message)),
        }
    }
}

struct Inner {
    /// The HTTP transport ([`Transport`]; boxed so tests can give it another connector or a
    /// scripted double).
    http: Box<dyn DispatchSignedRequest + Send + Sync>,
    credentials: Arc<CredentialsProvider>,
    /// SigV4 signer with its cached signing key.
    signer: Signer,
    signature: SignatureVersion,
    addressing: Addressing,
    user_agent: String,
    stats: Arc<RequestStats>,
    policy: RetryPolicy,
}

/// rusoto's request dispatcher for this driver: addresses, signs, counts and sends.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<Inner>,
}

/// Builds the driver's connector: proxies and CA bundle from the environment, TLS certificates
/// verified unless `skip_verify`; opening a TCP connection may take at most `connect_timeout`.
fn connector(skip_verify: bool, connect_timeout: Duration) -> Result<Connector, String> {
    if skip_verify {
        // Said once per driver, at start-up: a config that turns verification off should be
        // visible in the logs, not only in the file.
        tracing::warn!(
            "s3aws: skipverify is set: TLS certificates and host names are not verified"
        );
    }
    // Small requests go out in one or two writes and wait for the answer: Nagle's algorithm
    // would only hold a request's tail back for the server's delayed ACK (nodelay).
    Connector::from_env(connect_timeout, skip_verify, true)
}

impl Dispatcher {
    /// A dispatcher for `config`, signing with `credentials` and counting into `stats`.
    pub(crate) fn new(
        config: &S3Config,
        credentials: Arc<CredentialsProvider>,
        stats: Arc<RequestStats>,
    ) -> Result<Self, String> {
        let connector = connector(config.skip_verify, config.connect_timeout)?;
        let mut http = http_client(config, connector.clone());
        http.set_proxy(connector);
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
                signer: Signer::new(),
                signature: if config.v4auth {
                    SignatureVersion::V4
                } else {
                    SignatureVersion::V2
                },
                addressing: Addressing::new(config),
                user_agent: user_agent(config),
                stats,
                policy: RetryPolicy::from_config(config),
            }),
        }
    }
}

/// The driver's HTTP transport over `connector`, with the configured keep-alive pool.
pub(crate) fn http_client<C>(config: &S3Config, connector: C) -> Transport<C>
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
    Transport::new(&builder, connector)
}

/// `regstore/<version> rusoto/0.48` plus the configured `useragent`, if any.
fn user_agent(config: &S3Config) -> String {
    let base = format!("regstore/{} rusoto/0.48", env!("CARGO_PKG_VERSION"));
    match &config.user_agent {
        Some(extra) => format!("{base} {extra}"),
        None => base,
    }
}

/// Adds `Content-MD5` of a non-empty buffered body when the request has none, and drops
/// duplicates (rusoto's own helper looks the header up with the wrong case and may add a
/// second one). The header is signed with the rest, so the server can refuse a changed body.
fn ensure_content_md5(request: &mut SignedRequest) {
    if let Some(values) = request.headers.get_mut("content-md5") {
        values.truncate(1);
        return;
    }
    if let Some(SignedRequestPayload::Buffer(body)) = &request.payload {
        if body.is_empty() {
            return;
        }
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
        self: &Arc<Self>,
        mut request: SignedRequest,
        timeout: Option<Duration>,
        replay: Option<Vec<Bytes>>,
    ) -> Result<HttpResponse, HttpDispatchError> {
        let started = Instant::now();
        let op = operation(&request, &self.addressing.bucket);
        // The object key of a path-style `/bucket/key` request, for orphan clean-up.
        let key = if op == "CreateMultipartUpload" {
            request
                .path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(self.addressing.bucket.as_str()))
                .and_then(|p| p.strip_prefix('/'))
                .map(str::to_owned)
        } else {
            None
        };
        let pristine = (op == "CreateMultipartUpload").then(|| unsigned_copy(&request));
        ensure_content_md5(&mut request);
        let resource = self.addressing.apply(&mut request);
        request.headers.insert(
            "user-agent".to_owned(),
            vec![self.user_agent.as_bytes().to_vec()],
        );
        let mut body = match request.payload.take() {
            None => Body::None,
            Some(SignedRequestPayload::Buffer(b)) => Body::Buffer(b),
            Some(SignedRequestPayload::Stream(s)) => {
                let pieces_len = replay
                    .as_ref()
                    .map(|p| p.iter().map(Bytes::len).sum::<usize>());
                match (replay, pieces_len) {
                    (Some(pieces), Some(len)) if stream_len_is(&s, len) => {
                        Body::Pieces { pieces, len }
                    }
                    _ => Body::Stream(Some(s)),
                }
            }
        };
        // The template of every attempt: each signs its own copy, a GetObject body that may
        // resume keeps a handle instead of another copy.
        let request = Template::new(request);
        let budget = timeout.map_or(self.policy.operation_timeout, |t| {
            t.min(self.policy.operation_timeout)
        });
        let deadline = started + budget;
        let mut retry = 0u32;
        let mut after_ambiguous = false;
        loop {
            let failed = match self
                .attempt(
                    &request,
                    &mut body,
                    &resource,
                    op,
                    deadline,
                    self.policy.max_retries.saturating_sub(retry),
                )
                .await
            {
                Ok(resp) if after_ambiguous && op == "CompleteMultipartUpload" => {
                    let xml = match &body {
                        Body::Buffer(b) => Some(b.clone()),
                        _ => None,
                    };
                    let head = request.request();
                    return Ok(self
                        .recover_complete(resp, head, xml, &resource, deadline)
                        .await);
                }
                Ok(resp)
                    if after_ambiguous
                        && op == "AbortMultipartUpload"
                        && resp.status.as_u16() == 404 =>
                {
                    return Ok(already_aborted(resp).await)
                }
                Ok(resp) if after_ambiguous && op == "CreateMultipartUpload" => {
                    if let (Some(key), Some(pristine)) = (&key, &pristine) {
                        let pristine = unsigned_copy(pristine);
                        return Ok(self
                            .abort_orphans(resp, pristine, key, started, deadline)
                            .await);
                    }
                    return Ok(resp);
                }
                Ok(resp) => return Ok(resp),
                Err(f) => f,
            };
            retry += 1;
            let delay = self.policy.backoff(retry, jitter_unit());
            let give_up = !failed.kind.retryable()
                || !body.replayable()
                || retry > self.policy.max_retries
                || Instant::now() + delay >= deadline;
            if give_up {
                tracing::debug!(
                    op,
                    attempts = retry,
                    kind = failed.kind.name(),
                    status = failed.status,
                    replayable = body.replayable(),
                    "s3 request failed; not retried"
                );
                return failed.outcome;
            }
            let reason = match &failed.outcome {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            tracing::warn!(
                op,
                attempt = retry,
                kind = failed.kind.name(),
                status = failed.status,
                error = %reason,
                delay_ms = delay.as_millis() as u64,
                "s3 request failed; retrying"
            );
            self.stats.record_retry(op, failed.kind.ambiguous());
            after_ambiguous |= failed.kind.ambiguous();
            drop(failed);
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends a body-less `request` with the retry policy (for the clean-up requests the
    /// dispatcher makes itself). `None` when every attempt failed in transport.
    async fn simple_with_retries(
        self: &Arc<Self>,
        request: SignedRequest,
        resource: &str,
        op: &'static str,
        deadline: Instant,
    ) -> Option<HttpResponse> {
        let request = Template::new(request);
        let mut retry = 0;
        loop {
            let outcome = self
                .attempt(&request, &mut Body::None, resource, op, deadline, 0)
                .await;
            let kind = match outcome {
                Ok(r) => return Some(r),
                Err(f) if f.kind.retryable() => f.kind,
                Err(_) => return None,
            };
            retry += 1;
            let delay = self.policy.backoff(retry, jitter_unit());
            if retry > self.policy.max_retries || Instant::now() + delay >= deadline {
                return None;
            }
            self.stats.record_retry(op, kind.ambiguous());
            tokio::time::sleep(delay).await;
        }
    }

    /// A request like `base` (same endpoint) without its headers and parameters: `method` on
    /// the path-style `path` with `params`, addressed; returns it with its SigV2 resource.
    fn plain_request(
        &self,
        base: &SignedRequest,
        method: &str,
        path: String,
        params: &[(&str, Option<&str>)],
    ) -> (SignedRequest, String) {
        let mut r = unsigned_copy(base);
        r.method = method.to_owned();
        r.path = path;
        r.headers.clear();
        r.params.clear();
        for (k, v) in params {
            r.params.insert((*k).to_owned(), v.map(str::to_owned));
        }
        let resource = self.addressing.apply(&mut r);
        r.add_header("user-agent", &self.user_agent);
        (r, resource)
    }

    /// A `CreateMultipartUpload` that succeeded after an attempt that may have created an
    /// upload too: that earlier upload is an orphan nobody knows the id of. Uploads of the same
    /// key initiated since the first attempt (by the server's clock: its `Date` minus the time
    /// elapsed here, less 2 s) other than the one just created are aborted. The registry gives
    /// every upload its own key, so no other writer's upload can match; a writer resuming an
    /// older upload of this key is safe because that upload was initiated before the window.
    /// Failures here only log: the orphan then waits for `uploads abort`.
    async fn abort_orphans(
        self: &Arc<Self>,
        resp: HttpResponse,
        pristine: SignedRequest,
        key: &str,
        started: Instant,
        deadline: Instant,
    ) -> HttpResponse {
        let mut resp = resp;
        let body = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
        let chunks: Vec<Bytes> = body.filter_map(|c| async { c.ok() }).collect().await;
        let bytes = chunks.concat();
        resp.body = ByteStream::from(bytes.clone());
        if !resp.status.is_success() {
            return resp;
        }
        let Some(new_id) = xml_field(&bytes, "UploadId") else {
            return resp;
        };
        let Some(server_now) = resp
            .headers
            .get("date")
            .and_then(|d| crate::s3api::parse_time(d))
        else {
            return resp;
        };
        let window = started.elapsed() + Duration::from_secs(2);
        let since = server_now
            .checked_sub(window)
            .unwrap_or(std::time::UNIX_EPOCH);
        let until = server_now
            .checked_add(Duration::from_secs(2))
            .unwrap_or(server_now);

        let bucket_path = format!("/{}", self.addressing.bucket);
        let (list, resource) = self.plain_request(
            &pristine,
            "GET",
            bucket_path,
            &[("uploads", None), ("prefix", Some(key))],
        );
        let listed = match self
            .simple_with_retries(list, &resource, "ListMultipartUploads", deadline)
            .await
        {
            Some(r) if r.status.is_success() => {
                let chunks: Vec<Bytes> = r.body.filter_map(|c| async { c.ok() }).collect().await;
                chunks.concat()
            }
            _ => {
                tracing::warn!(
                    op = "CreateMultipartUpload",
                    "could not list uploads to remove an orphan of a retried create"
                );
                return resp;
            }
        };
        let text = String::from_utf8_lossy(&listed);
        let mut orphans = Vec::new();
        for upload in text.split("<Upload>").skip(1) {
            let upload = upload.as_bytes();
            let (Some(k), Some(id), Some(at)) = (
                xml_field(upload, "Key"),
                xml_field(upload, "UploadId"),
                xml_field(upload, "Initiated").and_then(|t| crate::s3api::parse_time(&t)),
            ) else {
                continue;
            };
            if k == key && id != new_id && at >= since && at <= until {
                orphans.push(id);
            }
        }
        for id in orphans {
            let (abort, resource) = self.plain_request(
                &pristine,
                "DELETE",
                pristine.path.clone(),
                &[("uploadId", Some(id.as_str()))],
            );
            let outcome = self
                .simple_with_retries(abort, &resource, "AbortMultipartUpload", deadline)
                .await;
            // 404 NoSuchUpload after a retry: an earlier attempt aborted it.
            let ok =
                matches!(&outcome, Some(r) if r.status.is_success() || r.status.as_u16() == 404);
            tracing::warn!(
                op = "CreateMultipartUpload",
                aborted = ok,
                "aborted the orphaned upload of a retried CreateMultipartUpload"
            );
            if ok {
                self.stats.orphans.fetch_add(1, Ordering::Relaxed);
            }
        }
        resp
    }

    /// A `CompleteMultipartUpload` retried after an attempt that may have completed the upload
    /// answers `NoSuchUpload` when the first attempt did. Then the object's ETag tells: a
    /// multipart ETag is the MD5 of the parts' MD5s plus `-<part count>`, all known from the
    /// request body. When HEAD shows exactly that ETag the upload was completed with these parts
    /// and a success answer is handed to rusoto; otherwise the `NoSuchUpload` answer stands.
    async fn recover_complete(
        self: &Arc<Self>,
        resp: HttpResponse,
        mut head: SignedRequest,
        xml: Option<Bytes>,
        resource: &str,
        deadline: Instant,
    ) -> HttpResponse {
        if resp.status.as_u16() != 404 {
            return resp;
        }
        let Some(xml) = xml else {
            return resp;
        };
        let mut resp = resp;
        let answer = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
        let answer: Vec<Bytes> = answer.filter_map(|c| async { c.ok() }).collect().await;
        let answer = answer.concat();
        resp.body = ByteStream::from(answer.clone());
        if s3_error_code(&answer) != Some("NoSuchUpload") {
            return resp;
        }
        let Some(expected) = multipart_etag(&xml) else {
            return resp;
        };
        head.method = "HEAD".to_owned();
        head.params.clear();
        for h in ["content-type", "content-md5", "content-length"] {
            head.remove_header(h);
        }
        let Ok(found) = self
            .attempt(
                &Template::new(head),
                &mut Body::None,
                resource,
                "HeadObject",
                deadline,
                0,
            )
            .await
        else {
            return resp;
        };
        let etag = found
            .headers
            .get("etag")
            .map(|e| e.trim().trim_matches('"').to_owned());
        if found.status.is_success() && etag.as_deref() == Some(expected.as_str()) {
            tracing::warn!(
                op = "CompleteMultipartUpload",
                "a retried CompleteMultipartUpload found its upload already completed with the \
                 same parts (ETag matches); treating it as done"
            );
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult>\
                 <ETag>&quot;{expected}&quot;</ETag></CompleteMultipartUploadResult>"
            );
            resp.status = hyper::StatusCode::OK;
            resp.headers.remove(hyper::header::CONTENT_LENGTH);
            resp.body = ByteStream::from(xml.into_bytes());
        }
        resp
    }

    /// One signed attempt of a copy of `template` (addressed, unsigned, without body) with
    /// the next payload of `body`. `retries_left` bounds how often a successful GetObject body
    /// may resume after breaking.
    async fn attempt(
        self: &Arc<Self>,
        template: &Arc<Template>,
        body: &mut Body,
        resource: &str,
        op: &'static str,
        deadline: Instant,
        retries_left: u32,
    ) -> Result<HttpResponse, Failed> {
        let idle = self.policy.request_timeout;
        let mut request = template.request();
        let progress = Arc::new(Progress::new());
        request.payload = body.next_payload(&progress);
        let creds = self.credentials.credentials().await.map_err(|e| {
            Failed::transport(FailureKind::Fatal, format!("s3aws: no credentials: {e}"))
        })?;
        transport::prepare(&mut request);
        match self.signature {
            SignatureVersion::V4 => self.signer.sign(&mut request, &creds, chrono::Utc::now()),
            SignatureVersion::V2 => {
                sigv2::sign_request(&mut request, &creds, resource, chrono::Utc::now());
            }
        }
        self.stats.record(op);
        // For logs and the HEAD check; a static name instead of a copy of the request's.
        let method: &'static str = match request.method.as_str() {
            "GET" => "GET",
            "PUT" => "PUT",
            "POST" => "POST",
            "DELETE" => "DELETE",
            "HEAD" => "HEAD",
            _ => "other",
        };
        let sent = watch(self.http.dispatch(request, None), &progress, idle, deadline).await;
        let mut resp = match sent {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let message = e.to_string();
                tracing::debug!(op, %method, error = %message, "s3 request failed");
                return Err(Failed::transport(classify_transport(&message), message));
            }
            Err(stalled) => {
                let message = match stalled {
                    Stalled::Idle => format!(
                        "s3aws: no progress for {}s (requesttimeout)",
                        idle.as_secs_f64()
                    ),
                    Stalled::Deadline => "s3aws: operationtimeout reached".to_owned(),
                };
                return Err(Failed::transport(FailureKind::Timeout, message));
            }
        };
        let status = resp.status.as_u16();
        tracing::debug!(op, %method, status, "s3 request");
        if op == "GetObject" && resp.status.is_success() {
            let expected = content_length(&resp);
            let etag = resp.headers.get("etag").map(|e| e.trim().to_owned());
            // Where this body lies in the object, when the answer says so consistently: a
            // missing, malformed or impossible Content-Range, or one disagreeing with
            // Content-Length, leaves the body without resumption (it can still fail, never
            // continue from a wrong offset).
            let span = match (status, content_range(&resp)) {
                (206, Some(r)) if expected.is_none() || expected == r.len() => Some(r),
                (206, _) => None,
                _ => expected
                    .filter(|len| *len > 0 && status == 200)
                    .map(|len| ContentRange {
                        first: 0,
                        last: len - 1,
                        total: Some(len),
                    }),
            };
            let resume = match (etag, span) {
                (Some(etag), Some(span)) if !etag.is_empty() => Some(Resume {
                    inner: Arc::clone(self),
                    template: Arc::clone(template),
                    resource: resource.to_owned(),
                    etag,
                    start: span.first,
                    end: span.last,
                    total: span.total,
                    retries_left,
                    retry: 0,
                }),
                _ => None,
            };
            // A partial answer without Content-Length is still held to its range's length.
            let expected = match (status, expected) {
                (206, None) => span.and_then(|s| s.len()),
                _ => expected,
            };
            let inner = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
            resp.body = ByteStream::new(GuardedBody::new(inner, expected, idle, resume));
            return Ok(resp);
        }
        // Every other answer is a small document: read it whole so a truncated one is retried.
        // Whole, but capped: only time limits would bound it otherwise. Every caller that
        // reads such an answer again (orphan clean-up, completion recovery, rusoto's
        // parsers) gets this buffered copy, so the cap covers them all.
        progress.touch();
        let expected = (method != "HEAD" && status != 204 && status != 304)
            .then(|| content_length(&resp))
            .flatten();
        if let Some(len) = expected.filter(|len| *len > MAX_ANSWER_BYTES) {
            return Err(answer_too_large(op, Some(len)));
        }
        let read = async {
            let mut buf = BytesMut::new();
            while let Some(chunk) = resp.body.next().await {
                let chunk = chunk.map_err(|e| Some(e.to_string()))?;
                progress.touch();
                if (buf.len() as u64).saturating_add(chunk.len() as u64) > MAX_ANSWER_BYTES {
                    return Err(None);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok::<_, Option<String>>(buf.freeze())
        };
        let bytes = match watch(read, &progress, idle, deadline).await {
            Ok(Ok(b)) => b,
            Ok(Err(None)) => return Err(answer_too_large(op, None)),
            Ok(Err(Some(message))) => {
                let message = format!("s3aws: reading the {op} answer: {message}");
                return Err(Failed::transport(classify_transport(&message), message));
            }
            Err(_) => {
                return Err(Failed::transport(
                    FailureKind::Timeout,
                    format!("s3aws: reading the {op} answer timed out"),
                ))
            }
        };
        if let Some(want) = expected {
            if bytes.len() as u64 != want {
                return Err(Failed::transport(
                    FailureKind::Truncated,
                    format!(
                        "s3aws: {op} answer truncated: {} of {want} bytes (Content-Length)",
                        bytes.len()
                    ),
                ));
            }
        }
        let retry = retryable_status(status, &bytes);
        resp.body = ByteStream::new(futures::stream::iter(Some(Ok(bytes))));
        if retry {
            Err(Failed {
                kind: FailureKind::Status,
                status: Some(status),
                outcome: Ok(resp),
            })
        } else {
            Ok(resp)
        }
    }
}

impl DispatchSignedRequest for Dispatcher {
    fn dispatch(
        &self,
        request: SignedRequest,
        timeout: Option<Duration>,
    ) -> DispatchSignedRequestFuture {
        let inner = Arc::clone(&self.inner);
        async move {
            // Read on first poll, which happens inside the caller's `with_replayable_body`.
            let replay = REPLAYABLE_BODY.try_with(Clone::clone).ok();
            inner.send(request, timeout, replay).await
        }
        .boxed()
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
        let resp = with_replayable_body(pieces, d.dispatch(r, None))
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
        let resp = d.dispatch(r, None).await.unwrap();
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
                        let body =
                            futures::stream::repeat_with(move || Ok(chunk.clone())).take(mib);
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
        let resp = d.dispatch(r, None).await.expect("succeeds after retries");
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
            let _ = d.dispatch(req("GET", "/bkt/k", &[], &[]), None).await;
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
        let resp = d.dispatch(r, None).await.unwrap();
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
        let resp = d.dispatch(r, None).await.unwrap();
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
        let resp = with_replayable_body(pieces.clone(), d.dispatch(r, None))
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
        let resp = with_replayable_body(vec![Bytes::from_static(b"abc")], d.dispatch(r, None))
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
            .dispatch(req("GET", "/bkt/k", &[], &[]), None)
            .await
            .unwrap();
        let err = body_of(resp).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("5 of 10 bytes"), "{err}");
        let (d, _, _) = scripted(vec![Answer::Http(200, Some(3), b"01234")], &[]);
        let resp = d
            .dispatch(req("GET", "/bkt/k", &[], &[]), None)
            .await
            .unwrap();
        assert!(body_of(resp).await.is_err());
        let (d, _, _) = scripted(vec![Answer::Http(206, None, b"01234")], &[]);
        let resp = d
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
        let err = dispatch_error(d.dispatch(list(), None).await);
        assert!(err.contains("ListObjectsV2 answer too large"), "{err}");
        assert!(err.contains("Content-Length"), "{err}");
        assert_eq!(script.seen().len(), 1);
        assert_eq!(stats.retries(), 0);

        let (d, script, _) = scripted(vec![Answer::Huge(200, 17)], &[]);
        let err = dispatch_error(d.dispatch(list(), None).await);
        assert!(err.contains("ListObjectsV2 answer too large"), "{err}");
        assert_eq!(script.seen().len(), 1);

        // Error documents are capped too (a GetObject that failed).
        let (d, _, _) = scripted(vec![Answer::Huge(404, 17)], &[]);
        let err = dispatch_error(d.dispatch(req("GET", "/bkt/k", &[], &[]), None).await);
        assert!(err.contains("GetObject answer too large"), "{err}");

        // Up to the cap is read.
        let (d, _, _) = scripted(vec![Answer::Huge(200, 16)], &[]);
        let resp = d.dispatch(list(), None).await.unwrap();
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
