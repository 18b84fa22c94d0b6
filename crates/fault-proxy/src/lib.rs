//! A loopback-only HTTP/1.1 fault-injection proxy for regstore's reliability tests.
//!
//! [`FaultProxy`] listens on `127.0.0.1` (an ephemeral port), forwards each request to an
//! upstream S3 server that must itself be on the loopback interface, and, for a configured
//! fraction of the requests (decided by a seeded generator, so a run can be repeated), injects
//! one [`FaultKind`]:
//!
//! * [`FaultKind::Reset`] — the request reaches the server, but the client's connection is
//!   reset (TCP RST) before it sees the response: the operation may have happened.
//! * [`FaultKind::Stall`] — the response is held back for the configured stall, then sent.
//! * [`FaultKind::Truncate`] — the response head and half of the body are sent, then the
//!   connection is closed mid-body.
//! * [`FaultKind::SlowDown`] / [`FaultKind::InternalError`] — an S3 error document
//!   (`503 SlowDown` / `500 InternalError`) is answered without forwarding the request.
//! * [`FaultKind::CorruptBody`] — one byte of the *request* body is inverted on its way to the
//!   server (its position drawn from the seed and the connection's index, so a run can be
//!   repeated); the answer is passed back unchanged. A request without a body passes as is.
//!   Unlike the others this fault changes data, so it is never drawn unless asked for: it is
//!   not in [`FaultKind::ALL`], the default set.
//!
//! # One request per connection
//!
//! Every request is forwarded with `Connection: close` and every response is given to the client
//! with `Connection: close`, so each TCP connection carries exactly one exchange. That keeps the
//! proxy small and its faults unambiguous (a reset hits exactly one request) at the cost of a
//! TCP handshake per request, which on loopback is negligible. The proxy still parses request and
//! response framing (`Content-Length`, chunked) so that it can consume a body it does not forward,
//! cut a body in half, and never wait for an upstream that ignores `Connection: close`.
//! `Expect: 100-continue` is answered by the proxy itself; upstream's interim responses are
//! dropped.
//!
//! # Bounds
//!
//! The proxy accepts at most [`ProxyConfig::max_connections`] connections over its life, serves
//! at most [`ProxyConfig::max_concurrent`] at once, gives each connection
//! [`ProxyConfig::connection_timeout`], and stops by itself after [`ProxyConfig::run_for`] or
//! when the [`FaultProxy`] is dropped, whichever comes first. Stalls are capped at
//! [`MAX_STALL`].

#![warn(missing_docs)]

mod http;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::http::{Cut, Framing};

/// The longest stall the proxy agrees to inject.
pub const MAX_STALL: Duration = Duration::from_secs(30);
/// The longest a proxy may run.
pub const MAX_RUN: Duration = Duration::from_secs(6 * 3600);
/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One kind of injected fault. See the crate documentation for what each does on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Connection reset after the upstream answered, before the client sees the response.
    Reset,
    /// The response is delayed by [`ProxyConfig::stall`].
    Stall,
    /// The connection closes half-way through the response body.
    Truncate,
    /// `503 SlowDown` S3 error, request not forwarded.
    SlowDown,
    /// `500 InternalError` S3 error, request not forwarded.
    InternalError,
    /// One byte of the request body inverted on the way to the server (opt-in: not in
    /// [`FaultKind::ALL`]).
    CorruptBody,
}

impl FaultKind {
    /// Every kind that leaves the bytes of a request intact, in a fixed order: the default
    /// set. [`FaultKind::CorruptBody`] is left out so that adding it changed neither what an
    /// existing seed draws nor the meaning of "all faults" (none of these may change data).
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::Truncate,
        FaultKind::SlowDown,
        FaultKind::InternalError,
    ];

    /// Every kind: [`FaultKind::ALL`] and [`FaultKind::CorruptBody`].
    pub const EVERY: [FaultKind; 6] = [
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::Truncate,
        FaultKind::SlowDown,
        FaultKind::InternalError,
        FaultKind::CorruptBody,
    ];

    /// The kind's name on the command line and in reports (`reset`, `stall`, `truncate`,
    /// `slowdown`, `internal-error`, `corrupt-body`).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Stall => "stall",
            FaultKind::Truncate => "truncate",
            FaultKind::SlowDown => "slowdown",
            FaultKind::InternalError => "internal-error",
            FaultKind::CorruptBody => "corrupt-body",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::EVERY
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::EVERY.iter().map(|k| k.name()).collect();
                format!("unknown fault kind {s:?} (one of {})", names.join(", "))
            })
    }
}

/// Which requests get which fault: a pure function of the seed and the connection's index, so
/// the same seed gives the same sequence of decisions on every run.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    rate: f64,
    kinds: Vec<FaultKind>,
}

// SplitMix64 (the tests' shared generator): version-independent, so a `rand` bump cannot change
// which requests a recorded seed faults.
use regstore_test_support::splitmix64;

impl FaultPlan {
    /// A plan faulting a `rate` fraction (0.0–1.0) of requests, each with a kind drawn uniformly
    /// from `kinds`.
    pub fn new(seed: u64, rate: f64, kinds: &[FaultKind]) -> Result<FaultPlan, ProxyError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(ProxyError::InvalidRate(rate));
        }
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() && rate > 0.0 {
            return Err(ProxyError::NoKinds);
        }
        Ok(FaultPlan { seed, rate, kinds })
    }

    /// The fault for the `n`-th connection (0-based), or `None` to pass it through.
    pub fn decide(&self, n: u64) -> Option<FaultKind> {
        if self.rate <= 0.0 || self.kinds.is_empty() {
            return None;
        }
        let a = splitmix64(self.seed ^ splitmix64(n));
        let b = splitmix64(a);
        // 53 random bits → uniform in [0, 1).
        let u = (a >> 11) as f64 / (1u64 << 53) as f64;
        if u >= self.rate {
            return None;
        }
        let i = (b % self.kinds.len() as u64) as usize;
        self.kinds.get(i).copied()
    }

    /// Where [`FaultKind::CorruptBody`] inverts a byte of the `n`-th connection's request
    /// body: a draw reduced modulo the body's length (see the crate documentation). Depends
    /// on the seed and `n` only.
    pub fn corrupt_offset(&self, n: u64) -> u64 {
        splitmix64(splitmix64(self.seed ^ splitmix64(n)) ^ 0xC0AA_0B0D_F11B_0000)
    }
}

/// Why a proxy could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream is not on the loopback interface (127.0.0.0/8 or ::1): this proxy only
    /// ever sends test traffic to the local machine.
    #[error("upstream {0} is not a loopback address (only 127.0.0.0/8 and ::1 are allowed)")]
    NotLoopback(SocketAddr),
    /// The fault rate is not within 0.0–1.0.
    #[error("fault rate {0} is not between 0 and 1")]
    InvalidRate(f64),
    /// A positive rate with no fault kind to choose from.
    #[error("a positive fault rate needs at least one fault kind")]
    NoKinds,
    /// The stall is longer than [`MAX_STALL`].
    #[error("stall {0:?} is longer than the maximum {MAX_STALL:?}")]
    StallTooLong(Duration),
    /// A limit that must be positive is zero, or the run is longer than [`MAX_RUN`].
    #[error("invalid limit: {0}")]
    InvalidLimit(&'static str),
    /// Binding the listener failed.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Io(#[from] io::Error),
}

/// Everything a [`FaultProxy`] needs. Build with [`ProxyConfig::new`] and the `with_*` methods;
/// the defaults pass every request through unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// The S3 server to forward to; must be a loopback address.
    pub upstream: SocketAddr,
    /// Seed of the fault decisions.
    pub seed: u64,
    /// Fraction of connections that get a fault (0.0–1.0). Default 0.
    pub rate: f64,
    /// Kinds to choose from, uniformly. Default: all of [`FaultKind::ALL`].
    pub kinds: Vec<FaultKind>,
    /// Delay of a [`FaultKind::Stall`]; at most [`MAX_STALL`]. Default 2 s.
    pub stall: Duration,
    /// Connections accepted over the proxy's life; after that it refuses new ones. Default 1,000,000.
    pub max_connections: u64,
    /// Connections served at once; further ones wait in the listen backlog. Default 256.
    pub max_concurrent: usize,
    /// Longest life of one connection; it is closed after that. Default 5 min.
    pub connection_timeout: Duration,
    /// The proxy stops by itself after this long; at most [`MAX_RUN`]. Default 30 min.
    pub run_for: Duration,
}

impl ProxyConfig {
    /// A pass-through configuration for `upstream` with the defaults listed on the fields.
    pub fn new(upstream: SocketAddr) -> ProxyConfig {
        ProxyConfig {
            upstream,
            seed: 0,
            rate: 0.0,
            kinds: FaultKind::ALL.to_vec(),
            stall: Duration::from_secs(2),
            max_connections: 1_000_000,
            max_concurrent: 256,
            connection_timeout: Duration::from_secs(300),
            run_for: Duration::from_secs(1800),
        }
    }

    /// Sets the fault rate and seed.
    pub fn with_faults(mut self, rate: f64, seed: u64) -> ProxyConfig {
        self.rate = rate;
        self.seed = seed;
        self
    }

    /// Restricts the fault kinds.
    pub fn with_kinds(mut self, kinds: &[FaultKind]) -> ProxyConfig {
        self.kinds = kinds.to_vec();
        self
    }

    /// Sets the stall of [`FaultKind::Stall`].
    pub fn with_stall(mut self, stall: Duration) -> ProxyConfig {
        self.stall = stall;
        self
    }

    /// Sets the run deadline.
    pub fn with_run_for(mut self, run_for: Duration) -> ProxyConfig {
        self.run_for = run_for;
        self
    }

    /// Sets how many connections are served at once.
    pub fn with_max_concurrent(mut self, max: usize) -> ProxyConfig {
        self.max_concurrent = max;
        self
    }

    /// Sets the total connection budget.
    pub fn with_max_connections(mut self, max: u64) -> ProxyConfig {
        self.max_connections = max;
        self
    }

    /// The fault plan of this configuration, after checking every bound.
    pub fn validate(&self) -> Result<FaultPlan, ProxyError> {
        if !is_loopback(self.upstream.ip()) {
            return Err(ProxyError::NotLoopback(self.upstream));
        }
        if self.stall > MAX_STALL {
            return Err(ProxyError::StallTooLong(self.stall));
        }
        if self.max_connections == 0 {
            return Err(ProxyError::InvalidLimit("max_connections must be positive"));
        }
        if self.max_concurrent == 0 || self.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(ProxyError::InvalidLimit(
                "max_concurrent must be positive and at most tokio's semaphore limit",
            ));
        }
        if self.connection_timeout.is_zero() {
            return Err(ProxyError::InvalidLimit(
                "connection_timeout must be positive",
            ));
        }
        if self.run_for.is_zero() || self.run_for > MAX_RUN {
            return Err(ProxyError::InvalidLimit(
                "run_for must be positive and at most MAX_RUN (6 h)",
            ));
        }
        FaultPlan::new(self.seed, self.rate, &self.kinds)
    }
}

/// Whether `ip` is on the loopback interface: 127.0.0.0/8, ::1, or an IPv4-mapped 127.x.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Counts of what a proxy did, for reports. A snapshot; see [`FaultProxy::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Connections that carried a request.
    pub requests: u64,
    /// Requests forwarded without a fault (including those whose fault could not be applied
    /// because the exchange failed first; see `proxy_errors`).
    pub passed: u64,
    /// Connections reset after the upstream answered.
    pub reset: u64,
    /// Responses delayed.
    pub stalled: u64,
    /// Responses cut half-way.
    pub truncated: u64,
    /// `503 SlowDown` answered.
    pub slow_down: u64,
    /// `500 InternalError` answered.
    pub internal_error: u64,
    /// Request bodies forwarded with one byte inverted.
    pub corrupted: u64,
    /// Exchanges that failed inside the proxy: unparseable request, upstream unreachable or
    /// misbehaving, a client that went away, a connection over its time limit.
    pub proxy_errors: u64,
}

impl FaultCounts {
    /// The count of one fault kind.
    pub fn get(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::Reset => self.reset,
            FaultKind::Stall => self.stalled,
            FaultKind::Truncate => self.truncated,
            FaultKind::SlowDown => self.slow_down,
            FaultKind::InternalError => self.internal_error,
            FaultKind::CorruptBody => self.corrupted,
        }
    }

    /// Faults injected, all kinds together.
    pub fn faults(&self) -> u64 {
        FaultKind::EVERY.iter().map(|&k| self.get(k)).sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests {} (passed {}), faults {}: reset {}, stall {}, truncate {}, slowdown {}, \
             internal-error {}, corrupt-body {}; proxy errors {}",
            self.requests,
            self.passed,
            self.faults(),
            self.reset,
            self.stalled,
            self.truncated,
            self.slow_down,
            self.internal_error,
            self.corrupted,
            self.proxy_errors
        )
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    passed: AtomicU64,
    reset: AtomicU64,
    stalled: AtomicU64,
    truncated: AtomicU64,
    slow_down: AtomicU64,
    internal_error: AtomicU64,
    corrupted: AtomicU64,
    proxy_errors: AtomicU64,
}

impl Counters {
    fn fault(&self, kind: FaultKind) {
        let c = match kind {
            FaultKind::Reset => &self.reset,
            FaultKind::Stall => &self.stalled,
            FaultKind::Truncate => &self.truncated,
            FaultKind::SlowDown => &self.slow_down,
            FaultKind::InternalError => &self.internal_error,
            FaultKind::CorruptBody => &self.corrupted,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FaultCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultCounts {
            requests: g(&self.requests),
            passed: g(&self.passed),
            reset: g(&self.reset),
            stalled: g(&self.stalled),
            truncated: g(&self.truncated),
            slow_down: g(&self.slow_down),
            internal_error: g(&self.internal_error),
            corrupted: g(&self.corrupted),
            proxy_errors: g(&self.proxy_errors),
        }
    }
}

/// A running proxy. Dropping it stops the proxy and closes every connection it holds.
pub struct FaultProxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("counts", &self.counts())
            .finish()
    }
}

impl FaultProxy {
    /// Validates `config`, binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start(config: ProxyConfig) -> Result<FaultProxy, ProxyError> {
        let plan = config.validate()?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(Settings { config, plan }),
            counters.clone(),
        ));
        Ok(FaultProxy {
            addr,
            counters,
            task,
        })
    }

    /// The address the proxy listens on (always `127.0.0.1`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the endpoint to give an S3 client instead of the upstream.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the proxy has done so far.
    pub fn counts(&self) -> FaultCounts {
        self.counters.snapshot()
    }

    /// Whether the proxy has stopped (deadline passed, or connection budget used and drained).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the proxy stops by itself, then returns the final counts.
    pub async fn wait(mut self) -> FaultCounts {
        let _ = (&mut self.task).await;
        self.counts()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

struct Settings {
    config: ProxyConfig,
    plan: FaultPlan,
}

async fn accept_loop(listener: TcpListener, settings: Arc<Settings>, counters: Arc<Counters>) {
    let deadline = tokio::time::Instant::now() + settings.config.run_for;
    let limit = Arc::new(Semaphore::new(settings.config.max_concurrent));
    // Owned here so that ending this task (deadline, abort) aborts every connection.
    let mut tasks = JoinSet::new();
    let serve_all = async {
        let mut accepted = 0u64;
        while accepted < settings.config.max_connections {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            while tasks.try_join_next().is_some() {}
            let (stream, _peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "fault proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let n = accepted;
            accepted += 1;
            let fault = settings.plan.decide(n);
            let settings = settings.clone();
            let counters = counters.clone();
            tasks.spawn(async move {
                let timeout = settings.config.connection_timeout;
                match tokio::time::timeout(timeout, serve(stream, n, fault, &settings, &counters))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        counters.proxy_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(n, error = %e, "fault proxy: exchange failed");
                    }
                    Err(_) => {
                        counters.proxy_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(n, "fault proxy: connection timed out");
                    }
                }
                drop(permit);
            });
        }
        // Budget used: refuse new connections, let the accepted ones finish.
        drop(listener);
        while tasks.join_next().await.is_some() {}
    };
    if tokio::time::timeout_at(deadline, serve_all).await.is_err() {
        tracing::debug!("fault proxy: run deadline reached");
    }
}

/// The S3 error document of a synthetic error response.
fn s3_error(kind: FaultKind, n: u64) -> (u16, &'static str, String) {
    let (status, reason, code, message) = match kind {
        FaultKind::SlowDown => (
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        _ => (
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>fault-proxy-{n}</RequestId><HostId>regstore-fault-proxy</HostId></Error>"
    );
    (status, reason, body)
}

/// Serves one connection: one request, with `fault` applied.
async fn serve(
    client: TcpStream,
    n: u64,
    fault: Option<FaultKind>,
    settings: &Settings,
    counters: &Counters,
) -> io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::with_capacity(64 * 1024, client_read);
    let Some(head) = http::read_head(&mut client_read).await? else {
        return Ok(());
    };
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let request = match http::parse_request(&head) {
        Ok(r) => r,
        Err(e) => {
            let _ = client_write
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return Err(e);
        }
    };
    if request.expects_continue {
        client_write
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }

    if let Some(kind @ (FaultKind::SlowDown | FaultKind::InternalError)) = fault {
        // Consume the body first: closing with unread input would make the kernel send RST,
        // and the client would see a reset instead of the error response.
        http::drain_body(&mut client_read, request.framing).await?;
        let (status, reason, body) = s3_error(kind, n);
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             x-amz-request-id: fault-proxy-{n}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if !request.method.eq_ignore_ascii_case("HEAD") {
            response.extend_from_slice(body.as_bytes());
        }
        client_write.write_all(&response).await?;
        client_write.shutdown().await?;
        counters.fault(kind);
        tracing::debug!(n, fault = %kind, "fault proxy: synthetic error");
        return Ok(());
    }

    let upstream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(settings.config.upstream),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to upstream timed out"))
    .and_then(|r| r);
    let upstream = match upstream {
        Ok(s) => s,
        Err(e) => {
            let _ = client_write
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return Err(e);
        }
    };
    let (up_read, mut up_write) = upstream.into_split();
    let mut up_read = BufReader::with_capacity(64 * 1024, up_read);
    up_write.write_all(&request.forward).await?;
    // A corrupted body that had no byte to change passes as an ordinary request.
    let fault = if fault == Some(FaultKind::CorruptBody) {
        let at = settings.plan.corrupt_offset(n);
        http::copy_body_flipping(&mut client_read, &mut up_write, request.framing, at)
            .await?
            .then_some(FaultKind::CorruptBody)
    } else {
        http::copy_body(&mut client_read, &mut up_write, request.framing, Cut::Whole).await?;
        fault
    };
    up_write.flush().await?;
    let response = http::read_final_response(&mut up_read, &request.method).await?;

    match fault {
        Some(FaultKind::Reset) => {
            let client = client_read
                .into_inner()
                .reunite(client_write)
                .map_err(|_| io::Error::other("internal: client stream halves do not match"))?;
            // Zero linger: close sends RST instead of FIN.
            client.set_zero_linger()?;
            drop(client);
            counters.fault(FaultKind::Reset);
            tracing::debug!(n, fault = "reset", "fault proxy: connection reset");
            return Ok(());
        }
        Some(FaultKind::Stall) => {
            tokio::time::sleep(settings.config.stall).await;
        }
        Some(FaultKind::Truncate) => {
            match response.framing {
                Framing::Length(len) if len > 0 => {
                    client_write.write_all(&response.forward).await?;
                    http::copy_body(&mut up_read, &mut client_write, response.framing, Cut::Half)
                        .await?;
                }
                Framing::Chunked => {
                    client_write.write_all(&response.forward).await?;
                    http::copy_body(&mut up_read, &mut client_write, response.framing, Cut::Half)
                        .await?;
                }
                // No body to cut, or one delimited by the close itself (a prefix of it would
                // look complete): cut the head instead, which every client detects.
                _ => {
                    let half = response.forward.len() / 2;
                    client_write
                        .write_all(response.forward.get(..half).unwrap_or_default())
                        .await?;
                }
            }
            client_write.shutdown().await?;
            counters.fault(FaultKind::Truncate);
            tracing::debug!(n, fault = "truncate", "fault proxy: response truncated");
            return Ok(());
        }
        _ => {}
    }

    client_write.write_all(&response.forward).await?;
    http::copy_body(
        &mut up_read,
        &mut client_write,
        response.framing,
        Cut::Whole,
    )
    .await?;
    client_write.shutdown().await?;
    match fault {
        Some(kind) => {
            counters.fault(kind);
            tracing::debug!(n, fault = %kind, "fault proxy: fault applied");
        }
        None => {
            counters.passed.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_reproducible_and_close_to_its_rate() {
        let plan = FaultPlan::new(42, 0.25, &FaultKind::ALL).unwrap();
        let a: Vec<_> = (0..4000).map(|n| plan.decide(n)).collect();
        let b: Vec<_> = (0..4000).map(|n| plan.decide(n)).collect();
        assert_eq!(a, b);
        let faults = a.iter().filter(|f| f.is_some()).count();
        assert!(
            (800..1200).contains(&faults),
            "{faults} of 4000 at rate 0.25"
        );
        for kind in FaultKind::ALL {
            let c = a.iter().filter(|f| **f == Some(kind)).count();
            assert!((120..280).contains(&c), "{kind}: {c}");
        }
        let other = FaultPlan::new(43, 0.25, &FaultKind::ALL).unwrap();
        let c: Vec<_> = (0..4000).map(|n| other.decide(n)).collect();
        assert_ne!(a, c, "a different seed gives a different sequence");
    }

    #[test]
    fn rate_bounds() {
        let none = FaultPlan::new(1, 0.0, &FaultKind::ALL).unwrap();
        assert!((0..1000).all(|n| none.decide(n).is_none()));
        let all = FaultPlan::new(1, 1.0, &[FaultKind::Stall]).unwrap();
        assert!((0..1000).all(|n| all.decide(n) == Some(FaultKind::Stall)));
        assert!(FaultPlan::new(1, 1.5, &FaultKind::ALL).is_err());
        assert!(FaultPlan::new(1, f64::NAN, &FaultKind::ALL).is_err());
        assert!(FaultPlan::new(1, 0.5, &[]).is_err());
    }

    #[test]
    fn loopback_only() {
        for ok in [
            "127.0.0.1:1",
            "127.9.8.7:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            let a: SocketAddr = ok.parse().unwrap();
            assert!(ProxyConfig::new(a).validate().is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1:80",
            "192.168.1.1:80",
            "8.8.8.8:53",
            "[2001:db8::1]:80",
            "0.0.0.0:80",
        ] {
            let a: SocketAddr = bad.parse().unwrap();
            assert!(
                matches!(
                    ProxyConfig::new(a).validate(),
                    Err(ProxyError::NotLoopback(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_bounds() {
        let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(ProxyConfig::new(up)
            .with_stall(Duration::from_secs(31))
            .validate()
            .is_err());
        assert!(ProxyConfig::new(up)
            .with_max_connections(0)
            .validate()
            .is_err());
        assert!(ProxyConfig::new(up)
            .with_run_for(Duration::ZERO)
            .validate()
            .is_err());
        assert!(ProxyConfig::new(up)
            .with_run_for(MAX_RUN + Duration::from_secs(1))
            .validate()
            .is_err());
    }

    #[test]
    fn kind_names_round_trip() {
        for k in FaultKind::EVERY {
            assert_eq!(k.name().parse::<FaultKind>().unwrap(), k);
        }
        assert!(!FaultKind::ALL.contains(&FaultKind::CorruptBody));
        assert!("boom".parse::<FaultKind>().is_err());
    }
}
