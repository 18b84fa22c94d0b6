//! Retry policy and failure classification of the dispatcher, and the time limits of one
//! attempt ([`Progress`], [`watch`]).
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
//! put in its [`Call`](crate::call::Call) (the writer's parts: `Bytes` handles, so a replay
//! copies nothing). A streaming body without that registration is sent once and never retried.
//! Certificate errors and malformed requests are final.
//!
//! The delay before retry `n` (1-based) is drawn uniformly from `[0, min(10 s, 100 ms · 2ⁿ⁻¹))`
//! ("full jitter", so throttled clients spread out instead of retrying in lock-step). At most
//! `maxretries` retries are made, and none once `operationtimeout` has passed since the first
//! attempt. Each retry is logged at `warn` (operation, attempt, status or failure kind, delay —
//! never headers, keys or signatures) and counted in [`RequestStats::retries`](crate::RequestStats::retries).
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
//! `NoSuchUpload` is success (the upload is gone); see [`crate::upload_recovery`]. Ambiguous retries are counted separately in
//! [`RequestStats::ambiguous_retries`](crate::RequestStats::ambiguous_retries).
//!
//! A successful GetObject body that breaks (reset, truncated, silent) is resumed within the
//! same retry budget: a ranged GET of the missing bytes with `If-Match` on the ETag, so the
//! rest comes from the same object version or the read fails ([`crate::get_body`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use rusoto_core::request::{HttpDispatchError, HttpResponse};

use crate::config::S3Config;

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
pub(crate) fn xml_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(text[start..start + len].trim().to_owned())
}

/// The `<Code>` of an S3 error document, if `body` is one.
pub(crate) fn s3_error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim())
}

/// A failed attempt: what went wrong and what to hand rusoto if it is not retried.
pub(crate) struct Failed {
    pub(crate) kind: FailureKind,
    pub(crate) status: Option<u16>,
    pub(crate) outcome: Result<HttpResponse, HttpDispatchError>,
}

impl Failed {
    pub(crate) fn transport(kind: FailureKind, message: String) -> Self {
        Failed {
            kind,
            status: None,
            outcome: Err(HttpDispatchError::new(message)),
        }
    }
}

/// When an attempt last made progress, for the inactivity limit.
pub(crate) struct Progress {
    start: Instant,
    last_nanos: AtomicU64,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            start: Instant::now(),
            last_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let n = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.fetch_max(n, Ordering::Relaxed);
    }

    pub(crate) fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_nanos(self.last_nanos.load(Ordering::Relaxed)) + idle
    }
}

/// Why [`watch`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stalled {
    /// No progress for the inactivity limit.
    Idle,
    /// The operation's deadline passed.
    Deadline,
}

/// Runs `fut` until it completes, no progress is seen for `idle`, or `deadline` passes.
pub(crate) async fn watch<F: Future>(
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
