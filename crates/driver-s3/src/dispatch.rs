//! The HTTP layer under rusoto: one [`Call`] from [`crate::s3api`] to the wire and back.
//!
//! `s3api` builds the rusoto client of each call with `Client::new_not_signing` over
//! [`Dispatcher::call`] — the driver's dispatcher bound to that call's [`Call`] (operation,
//! idempotence, replayable body) — so every request reaches [`Inner::send`] unsigned and
//! path-style (`/bucket/key`), together with what it is. There it is
//!
//! 1. rewritten to virtual-hosted style (`bucket.host`, path without `/bucket`) unless path
//!    style is forced ([`crate::addressing`]),
//! 2. given `Content-MD5` when it has a buffered body without one (`DeleteObjects`, several
//!    servers require it; `CompleteMultipartUpload`, which SigV2 would otherwise leave
//!    unprotected); streamed bodies get theirs from [`crate::s3api`],
//! 3. signed — SigV4 through [`crate::sigv4`], or SigV2 through [`crate::sigv2`], both over
//!    exactly the path and query it will send,
//! 4. counted in [`RequestStats`] under the call's operation and sent on a keep-alive pool
//!    ([`crate::client`], [`crate::transport`], which logs no header and no URL),
//! 5. retried when that is safe, signing every attempt afresh ([`crate::retry`]); a call that
//!    is not idempotent and was retried after an ambiguous failure is recovered
//!    ([`crate::upload_recovery`]),
//! 6. answered: a successful GetObject body streams back guarded and resumable
//!    ([`crate::get_body`]); every other answer is read whole here (capped), so a truncated
//!    listing or error document is retried like a reset, and handed to rusoto_s3 to parse.
//!
//! Signing here rather than in rusoto's client keeps one code path for both signature
//! versions and lets the SigV2 canonical resource match the final address.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt as _, StreamExt as _};
use md5::{Digest as _, Md5};
use rusoto_core::request::{
    DispatchSignedRequest, DispatchSignedRequestFuture, HttpDispatchError, HttpResponse,
};
use rusoto_core::signature::{SignedRequest, SignedRequestPayload};
use rusoto_core::ByteStream;

use crate::addressing::Addressing;
use crate::call::{stream_len_is, Body, Call, Operation};
use crate::client::{connector, http_client, user_agent};
use crate::config::S3Config;
use crate::credentials::CredentialsProvider;
use crate::get_body::{content_length, content_range, ContentRange, GuardedBody, Refetch, Resume};
use crate::retry::{
    classify_transport, jitter_unit, retryable_status, watch, Failed, FailureKind, Progress,
    RetryPolicy, Stalled,
};
use crate::sigv2;
use crate::sigv4::Signer;
use crate::stats::RequestStats;
use crate::transport;
use crate::upload_recovery::{abort_orphans, already_aborted, recover_complete, Resend};

/// Which signature the dispatcher adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureVersion {
    /// AWS Signature Version 4 ([`crate::sigv4`]).
    V4,
    /// AWS Signature Version 2 ([`crate::sigv2`]).
    V2,
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
fn answer_too_large(op: Operation, declared: Option<u64>) -> Failed {
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
    log: crate::loglevel::LogLevel,
}

/// rusoto's request dispatcher for this driver: addresses, signs, counts and sends.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<Inner>,
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
                log: config.log_level,
            }),
        }
    }

    /// The dispatcher of one `call`: build the rusoto client of that call over it, so each
    /// request it sends is addressed, signed, counted, retried and recovered as `call` says.
    pub(crate) fn call(&self, call: Call) -> CallDispatcher {
        CallDispatcher {
            inner: Arc::clone(&self.inner),
            call,
        }
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
        call: Call,
    ) -> Result<HttpResponse, HttpDispatchError> {
        let started = Instant::now();
        let op = call.op;
        // The object key, for orphan clean-up after a retried create.
        let key = call
            .key
            .clone()
            .filter(|_| op == Operation::CreateMultipartUpload);
        let pristine = (op == Operation::CreateMultipartUpload).then(|| unsigned_copy(&request));
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
                let replay = call.replayable_body.clone();
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
                // A call whose repetition is not harmless, repeated after an attempt that
                // may have been carried out: recover what the first attempt did.
                Ok(resp) if after_ambiguous && !call.idempotent() => {
                    return Ok(match op {
                        Operation::CompleteMultipartUpload => {
                            let xml = match &body {
                                Body::Buffer(b) => Some(b.clone()),
                                _ => None,
                            };
                            let head = request.request();
                            recover_complete(self, resp, head, xml, &resource, deadline).await
                        }
                        Operation::AbortMultipartUpload if resp.status.as_u16() == 404 => {
                            already_aborted(resp).await
                        }
                        Operation::CreateMultipartUpload => match (&key, &pristine) {
                            (Some(key), Some(pristine)) => {
                                let pristine = unsigned_copy(pristine);
                                abort_orphans(self, resp, pristine, key, started, deadline).await
                            }
                            _ => resp,
                        },
                        _ => resp,
                    });
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
                    op = op.name(),
                    attempts = retry,
                    kind = failed.kind.name(),
                    status = failed.status,
                    replayable = body.replayable(),
                    "s3 request failed; not retried"
                );
                crate::loglevel::gave_up(
                    self.log,
                    op.name(),
                    retry,
                    failed.kind.name(),
                    failed.status,
                );
                return failed.outcome;
            }
            let reason = match &failed.outcome {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            tracing::warn!(
                op = op.name(),
                attempt = retry,
                kind = failed.kind.name(),
                status = failed.status,
                error = %reason,
                delay_ms = delay.as_millis() as u64,
                "s3 request failed; retrying"
            );
            let ms = delay.as_millis() as u64;
            crate::loglevel::retrying(self.log, op.name(), retry, &reason, ms);
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
        op: Operation,
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

    /// The ranged GETs that continue a broken GetObject body of `template` with `If-Match`
    /// on `etag` (see [`Resume`]): each one attempt, with a fresh `operationtimeout` budget.
    fn refetch(self: &Arc<Self>, template: &Arc<Template>, resource: &str, etag: &str) -> Refetch {
        let inner = Arc::clone(self);
        let template = Arc::clone(template);
        let resource = resource.to_owned();
        let etag = etag.to_owned();
        Arc::new(move |range: String, retries_left: u32| {
            let mut req = template.request();
            req.remove_header("range");
            req.add_header("range", &range);
            req.remove_header("if-match");
            req.add_header("if-match", &etag);
            let req = Template::new(req);
            let inner = Arc::clone(&inner);
            let resource = resource.clone();
            async move {
                let deadline = Instant::now() + inner.policy.operation_timeout;
                inner
                    .attempt(
                        &req,
                        &mut Body::None,
                        &resource,
                        Operation::GetObject,
                        deadline,
                        retries_left,
                    )
                    .await
            }
            .boxed()
        })
    }

    /// One signed attempt of a copy of `template` (addressed, unsigned, without body) with
    /// the next payload of `body`. `retries_left` bounds how often a successful GetObject body
    /// may resume after breaking.
    async fn attempt(
        self: &Arc<Self>,
        template: &Arc<Template>,
        body: &mut Body,
        resource: &str,
        op: Operation,
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
        crate::loglevel::signed(self.log, op.name(), &request);
        crate::loglevel::body(self.log, op.name(), &request);
        let wire = crate::loglevel::describe(self.log, &request);
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
                tracing::debug!(op = op.name(), %method, error = %message, "s3 request failed");
                crate::loglevel::attempt_failed(self.log, op.name(), method, &message);
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
        tracing::debug!(op = op.name(), %method, status, "s3 request");
        crate::loglevel::answered(wire.as_ref(), op.name(), method, status);
        if op == Operation::GetObject && resp.status.is_success() {
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
                    fetch: self.refetch(template, resource, &etag),
                    policy: self.policy,
                    stats: Arc::clone(&self.stats),
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

impl Resend for Arc<Inner> {
    fn bucket(&self) -> &str {
        &self.addressing.bucket
    }

    fn plain_request(
        &self,
        base: &SignedRequest,
        method: &str,
        path: String,
        params: &[(&str, Option<&str>)],
    ) -> (SignedRequest, String) {
        Inner::plain_request(self, base, method, path, params)
    }

    fn send_with_retries(
        &self,
        request: SignedRequest,
        resource: &str,
        op: Operation,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Option<HttpResponse>> + Send {
        self.simple_with_retries(request, resource, op, deadline)
    }

    async fn send_once(
        &self,
        request: SignedRequest,
        resource: &str,
        op: Operation,
        deadline: Instant,
    ) -> Option<HttpResponse> {
        self.attempt(
            &Template::new(request),
            &mut Body::None,
            resource,
            op,
            deadline,
            0,
        )
        .await
        .ok()
    }

    fn orphan_aborted(&self) {
        self.stats.record_orphan_aborted();
    }
}

/// The dispatcher of one call: rusoto's client for that call sends through it, and every
/// request it dispatches is sent as `call` (see [`Dispatcher::call`]).
pub(crate) struct CallDispatcher {
    inner: Arc<Inner>,
    call: Call,
}

impl DispatchSignedRequest for CallDispatcher {
    fn dispatch(
        &self,
        request: SignedRequest,
        timeout: Option<Duration>,
    ) -> DispatchSignedRequestFuture {
        let inner = Arc::clone(&self.inner);
        let call = self.call.clone();
        async move { inner.send(request, timeout, call).await }.boxed()
    }
}

#[cfg(test)]
mod tests;
