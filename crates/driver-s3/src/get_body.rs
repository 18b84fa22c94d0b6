//! The body of a successful GetObject: guarded against stopping short, running long or going
//! quiet ([`GuardedBody`]), and resumed after a break with a ranged GET of the same object
//! version ([`Resume`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt as _};
use rusoto_core::request::HttpResponse;
use rusoto_core::ByteStream;

use crate::call::Operation;
use crate::retry::{jitter_unit, Failed, RetryPolicy};
use crate::stats::RequestStats;

/// One attempt of the ranged GET that continues a broken body: given the `Range` header value
/// and the resumptions still allowed (for the new body's own resumption), the answer or the
/// failed attempt. The dispatcher builds it from the original request, so it is addressed,
/// signed and counted like any other attempt.
pub(crate) type Refetch =
    Arc<dyn Fn(String, u32) -> BoxFuture<'static, Result<HttpResponse, Failed>> + Send + Sync>;

/// How a broken GetObject body continues: a ranged GET of the rest of the same object version
/// (`If-Match` its ETag), so a reset or truncated download resumes instead of failing.
pub(crate) struct Resume {
    /// Sends one ranged GET (with `If-Match` on [`Self::etag`]).
    pub(crate) fetch: Refetch,
    /// Back-off between resumptions.
    pub(crate) policy: RetryPolicy,
    /// Where resumptions are counted (as GetObject retries).
    pub(crate) stats: Arc<RequestStats>,
    pub(crate) etag: String,
    /// Absolute offset of this body's first byte, and of the last byte wanted (inclusive);
    /// `start <= end` (from a validated [`ContentRange`] or a non-zero `Content-Length`).
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// The object's size when the first answer told it: every resumed answer must agree.
    pub(crate) total: Option<u64>,
    /// Resumptions still allowed (shared `maxretries` budget of the request).
    pub(crate) retries_left: u32,
    /// Resumptions made so far, numbering the back-off.
    pub(crate) retry: u32,
}

type PendingGet =
    Pin<Box<dyn Future<Output = Result<HttpResponse, (std::io::ErrorKind, String)>> + Send>>;

/// Checks that a resumed GetObject answer holds exactly bytes `from..=end` of an object of
/// `total` bytes (when known) and, when it names one, of the version with `etag` (a server
/// ignoring `If-Match` may serve a newer version): otherwise wrong bytes would be spliced
/// into the data. The message names what disagreed (never the ETag values).
pub(crate) fn check_resumed(
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
pub(crate) struct GuardedBody {
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
    pub(crate) fn new(
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
        let delay = r.policy.backoff(r.retry, jitter_unit());
        tracing::warn!(
            op = "GetObject",
            attempt = r.retry,
            kind = "body",
            error = %why,
            delay_ms = delay.as_millis() as u64,
            "s3 response body broke; fetching the rest"
        );
        r.stats.record_retry(Operation::GetObject, true);
        let range = format!("bytes={from}-{}", r.end);
        let fetch = Arc::clone(&r.fetch);
        let policy = r.policy;
        let stats = Arc::clone(&r.stats);
        let (end, total, etag) = (r.end, r.total, r.etag.clone());
        let mut left = r.retries_left;
        let mut retry = r.retry;
        r.retries_left = 0;
        self.pending = Some(Box::pin(async move {
            let mut delay = delay;
            loop {
                tokio::time::sleep(delay).await;
                let outcome = fetch(range.clone(), left).await;
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
                        delay = policy.backoff(retry, jitter_unit());
                        stats.record_retry(Operation::GetObject, f.kind.ambiguous());
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

/// A satisfied `Content-Range: bytes first-last/total` (RFC 9110 §14.4), validated:
/// `first <= last`, and `last < total` when the total is known (`*` is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) total: Option<u64>,
}

impl ContentRange {
    /// Parses a header value; `None` for anything malformed or impossible (the server
    /// controls it: signs, blanks, overflowing or reversed numbers all end here).
    pub(crate) fn parse(value: &str) -> Option<Self> {
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
    pub(crate) fn len(&self) -> Option<u64> {
        (self.last - self.first).checked_add(1)
    }
}

/// The answer's `Content-Range`, when present and valid (see [`ContentRange::parse`]).
pub(crate) fn content_range(resp: &HttpResponse) -> Option<ContentRange> {
    ContentRange::parse(resp.headers.get("content-range")?)
}

/// A strict HTTP decimal (`1*DIGIT`, no sign or blanks inside) that fits in `u64`.
pub(crate) fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `Content-Length` of an answer, when present and a valid decimal (hyper rejects a
/// malformed one on the wire before it gets here).
pub(crate) fn content_length(resp: &HttpResponse) -> Option<u64> {
    resp.headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| decimal(v.trim()))
}
