//! Suite, fixtures, capabilities, outcomes and the runner.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use regstore_driver_api::{Driver, Result};
use serde::Serialize;

use crate::cases::{self, CaseError, Ctx};

/// Default part size assumed by the cases that straddle part boundaries (S3's minimum, 5 MiB).
pub const DEFAULT_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The most retries [`Capabilities::redirect_retries`] allows: enough for a 10 % fault rate,
/// small enough that a backend failing every fetch still fails within seconds.
pub const MAX_REDIRECT_RETRIES: u32 = 8;

/// Runs after a case, when the harness no longer needs the store (removes a temp dir, a bucket
/// prefix, …). Its error fails the case.
pub type Teardown = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// One fresh, empty store for one case.
pub struct Fixture {
    /// The driver under test, as callers see it (paths validated by the handle).
    pub driver: Driver,
    /// What to run once the case and the clean-up check are done.
    pub teardown: Option<Teardown>,
}

impl Fixture {
    /// A fixture without teardown (an in-memory store that is simply dropped).
    pub fn new(driver: impl Into<Driver>) -> Self {
        Fixture {
            driver: driver.into(),
            teardown: None,
        }
    }

    /// Adds a teardown step. Steps run in the order they were added; the first error ends the
    /// teardown and fails the case.
    pub fn with_teardown<F, Fut>(mut self, teardown: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let previous = self.teardown.take();
        self.teardown = Some(Box::new(move || {
            async move {
                if let Some(p) = previous {
                    p().await?;
                }
                teardown().await
            }
            .boxed()
        }));
        self
    }

    /// Keeps `guard` alive until teardown and then drops it (for example a `tempfile::TempDir`
    /// that deletes the store's directory when dropped), after any earlier teardown step.
    pub fn keep_alive<G: Send + 'static>(self, guard: G) -> Self {
        self.with_teardown(move || async move {
            drop(guard);
            Ok(())
        })
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("driver", &self.driver)
            .field("teardown", &self.teardown.is_some())
            .finish()
    }
}

/// Builds a fresh fixture; called once per case.
pub type Constructor = Arc<dyn Fn() -> BoxFuture<'static, Result<Fixture>> + Send + Sync>;

/// The order in which a backend's walk visits entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkOrder {
    /// Distribution's `WalkFallback` (the default walk): depth first, children sorted by byte
    /// order of their full paths, so `/folder1`, its subtree, then `/folder1-suffix`.
    SortedDepthFirst,
    /// A flat key listing (S3): keys in byte order, so `/folder1-suffix/…` (`-` is 0x2D) comes
    /// before `/folder1/…` (`/` is 0x2F), and with a start-after hint the ancestors of the first
    /// entry after the hint are emitted again.
    KeyOrder,
}

/// What legitimately differs between backends; the cases adapt their expectations to it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Order of walks.
    pub walk_order: WalkOrder,
    /// Whether walking a missing directory is `PathNotFound` (the default walk) rather than
    /// `Ok` with no callback (S3's flat walk).
    pub walk_missing_is_not_found: bool,
    /// The backend's part size, for the cases that write across part boundaries; `None` means
    /// [`DEFAULT_PART_SIZE`].
    pub part_size: Option<u64>,
    /// Run the 5 GiB stream case (default: env `REGSTORE_CONFORMANCE_LARGE=1`); otherwise that
    /// case is reported as skipped.
    pub large_streams: bool,
    /// Concurrency cases at distribution's full sizes (128 MiB; 32 writers × 32 MiB) instead of
    /// its `-short` sizes (10 MiB; 8 × 8 MiB). Default: env `REGSTORE_CONFORMANCE_FULL=1`.
    pub full_size: bool,
    /// Whether the backend redirects: when true, GET and HEAD redirect URLs must be returned and
    /// are fetched over HTTP(S) (GET returns exactly the bytes, HEAD answers 200 with the right
    /// Content-Length); when false, the backend must answer "no redirect" (a URL it returns
    /// anyway fails the case, since an unfetched URL proves nothing).
    pub redirect: bool,
    /// Accept invalid TLS certificates when fetching redirect URLs (a local test server).
    pub redirect_skip_tls_verify: bool,
    /// How many times a fetch of a redirect URL is repeated after a transient failure (a
    /// transport error, a body cut short, `5xx` or `429`), with a short exponential back-off,
    /// as a real client (docker) does. `0`, the default, fetches once, so a backend that
    /// answers its own URLs badly fails the case. A `4xx` other than `429` (a bad signature's
    /// `403`) is never retried. Meant for suites run through a fault-injection proxy; at most
    /// [`MAX_REDIRECT_RETRIES`] is used.
    pub redirect_retries: u32,
    /// Time limit of one case (the 5 GiB case has none); a case over it fails.
    #[serde(serialize_with = "serialize_opt_duration")]
    pub case_timeout: Option<Duration>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

impl Default for Capabilities {
    /// The embedded backends' behaviour; `large_streams` and `full_size` from the environment.
    fn default() -> Self {
        Capabilities {
            walk_order: WalkOrder::SortedDepthFirst,
            walk_missing_is_not_found: true,
            part_size: None,
            large_streams: env_flag("REGSTORE_CONFORMANCE_LARGE"),
            full_size: env_flag("REGSTORE_CONFORMANCE_FULL"),
            redirect: false,
            redirect_skip_tls_verify: false,
            redirect_retries: 0,
            case_timeout: Some(Duration::from_secs(600)),
        }
    }
}

impl Capabilities {
    /// Sets [`walk_order`](Self::walk_order).
    pub fn with_walk_order(mut self, order: WalkOrder) -> Self {
        self.walk_order = order;
        self
    }

    /// Sets [`walk_missing_is_not_found`](Self::walk_missing_is_not_found).
    pub fn with_walk_missing_is_not_found(mut self, yes: bool) -> Self {
        self.walk_missing_is_not_found = yes;
        self
    }

    /// Sets [`part_size`](Self::part_size).
    pub fn with_part_size(mut self, part_size: u64) -> Self {
        self.part_size = Some(part_size);
        self
    }

    /// Sets [`large_streams`](Self::large_streams).
    pub fn with_large_streams(mut self, yes: bool) -> Self {
        self.large_streams = yes;
        self
    }

    /// Sets [`full_size`](Self::full_size).
    pub fn with_full_size(mut self, yes: bool) -> Self {
        self.full_size = yes;
        self
    }

    /// Sets [`redirect`](Self::redirect) and
    /// [`redirect_skip_tls_verify`](Self::redirect_skip_tls_verify).
    pub fn with_redirect(mut self, fetch: bool, skip_tls_verify: bool) -> Self {
        self.redirect = fetch;
        self.redirect_skip_tls_verify = skip_tls_verify;
        self
    }

    /// Sets [`redirect_retries`](Self::redirect_retries) (capped at [`MAX_REDIRECT_RETRIES`]).
    pub fn with_redirect_retries(mut self, retries: u32) -> Self {
        self.redirect_retries = retries.min(MAX_REDIRECT_RETRIES);
        self
    }

    /// Sets [`case_timeout`](Self::case_timeout).
    pub fn with_case_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.case_timeout = timeout;
        self
    }

    /// The part size in effect (never 0).
    pub fn effective_part_size(&self) -> u64 {
        self.part_size.unwrap_or(DEFAULT_PART_SIZE).max(1)
    }
}

/// A backend's constructor plus its capabilities.
#[derive(Clone)]
pub struct Suite {
    constructor: Constructor,
    capabilities: Capabilities,
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl Suite {
    /// A suite whose every case calls `constructor` for a fresh, empty store. Capabilities
    /// start at [`Capabilities::default`].
    pub fn new<F, Fut>(constructor: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Fixture>> + Send + 'static,
    {
        Suite {
            constructor: Arc::new(move || constructor().boxed()),
            capabilities: Capabilities::default(),
        }
    }

    /// A suite from an already boxed constructor.
    pub fn from_constructor(constructor: Constructor) -> Self {
        Suite {
            constructor,
            capabilities: Capabilities::default(),
        }
    }

    /// Replaces the capabilities.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Builds one fixture (also what the benchmarks use).
    pub async fn fixture(&self) -> Result<Fixture> {
        (self.constructor)().await
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum Outcome {
    /// Every expectation held and the store was left empty.
    Passed,
    /// Not run, for the given reason (an opt-in case not opted into). Not a pass.
    Skipped(String),
    /// An expectation failed; the message says which, with lengths and offsets, not payloads.
    Failed(String),
}

impl Outcome {
    /// Whether the case passed.
    pub fn is_passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }

    /// Whether the case failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn serialize_opt_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// The case's name (one of [`crate::CASES`]).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time including fixture set-up, the clean-up check and teardown; serialised as
    /// seconds.
    #[serde(serialize_with = "serialize_duration", rename = "duration_secs")]
    pub duration: Duration,
}

/// The result of [`run_all`], in case order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Name of the driver under test, from its first fixture (empty if none could be built).
    pub driver: String,
    /// Capabilities the cases ran with.
    pub capabilities: Capabilities,
    /// One entry per selected case.
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// Number of passed cases.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome.is_passed()).count()
    }

    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome.is_failed()).count()
    }

    /// Number of skipped cases.
    pub fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count()
    }

    /// True when no case failed (skips allowed).
    pub fn success(&self) -> bool {
        self.failed() == 0
    }
}

/// Runs the case called `name` against a fresh fixture: set-up, the case, the clean-up check
/// (`list("/")` must be empty or `PathNotFound`), teardown. An unknown name, a constructor
/// error, a panic in the driver or a time-out are failures too.
pub async fn run_case(suite: &Suite, name: &str) -> Outcome {
    run_case_named(suite, name).await.1
}

async fn run_case_named(suite: &Suite, name: &str) -> (String, Outcome) {
    let Some(case) = cases::find(name) else {
        return (
            String::new(),
            Outcome::Failed(format!("no conformance case named {name:?}")),
        );
    };
    let caps = suite.capabilities.clone();
    let fixture = match suite.fixture().await {
        Ok(f) => f,
        Err(e) => {
            return (
                String::new(),
                Outcome::Failed(format!("constructor failed: {e}")),
            )
        }
    };
    let driver = fixture.driver.clone();
    let driver_name = driver.name().to_owned();
    let ctx = Ctx::new(driver.clone(), caps.clone(), case.name);
    let timeout = if case.name == "write_read_large_streams" {
        None
    } else {
        caps.case_timeout
    };
    // The case runs as its own task so a panic inside the driver fails this case only.
    let task = tokio::spawn((case.run)(ctx));
    let abort = task.abort_handle();
    let joined = match timeout {
        Some(t) => tokio::time::timeout(t, task).await.ok(),
        None => Some(task.await),
    };
    if joined.is_none() {
        // A timed-out case must not keep writing while the clean-up check lists the store.
        abort.abort();
    }
    let mut outcome = match joined {
        None => Outcome::Failed(format!("timed out after {:?}", timeout.unwrap_or_default())),
        Some(Ok(Ok(()))) => Outcome::Passed,
        Some(Ok(Err(CaseError::Skipped(r)))) => Outcome::Skipped(r),
        Some(Ok(Err(CaseError::Failed(m)))) => Outcome::Failed(m),
        Some(Err(join)) => Outcome::Failed(panic_message(join)),
    };

    // Clean-up check: what distribution's TearDownTest does after every test.
    let leftovers = match driver.list("/").await {
        Ok(entries) => entries,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => {
            if outcome.is_passed() {
                outcome = Outcome::Failed(format!("clean-up check: list(\"/\") failed: {e}"));
            }
            Vec::new()
        }
    };
    if !leftovers.is_empty() {
        if outcome.is_passed() {
            let shown: Vec<&str> = leftovers.iter().take(10).map(|p| p.as_str()).collect();
            outcome = Outcome::Failed(format!(
                "driver did not clean up properly: list(\"/\") still shows {} entries: {:?}",
                leftovers.len(),
                shown
            ));
        }
        // Best effort, so a shared backend (a bucket) is not left dirty by a failed case.
        for p in &leftovers {
            let _ = driver.delete(p.as_str()).await;
        }
    }
    if let Some(teardown) = fixture.teardown {
        if let Err(e) = teardown().await {
            if outcome.is_passed() {
                outcome = Outcome::Failed(format!("teardown failed: {e}"));
            }
        }
    }
    (driver_name, outcome)
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if join.is_panic() {
        let payload = join.into_panic();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        format!("panicked: {text}")
    } else {
        "case task was cancelled".to_owned()
    }
}

/// Runs every case whose name contains `filter` (all when `None`), at most two at a time
/// (each with its own fixture), and reports them in [`crate::CASES`] order.
pub async fn run_all(suite: &Suite, filter: Option<&str>) -> Report {
    let selected: Vec<&'static str> = crate::CASES
        .iter()
        .copied()
        .filter(|n| filter.is_none_or(|f| n.contains(f)))
        .collect();
    let results: Vec<(usize, String, CaseReport)> =
        futures::stream::iter(selected.into_iter().enumerate())
            .map(|(i, name)| async move {
                let start = Instant::now();
                let (driver, outcome) = run_case_named(suite, name).await;
                (
                    i,
                    driver,
                    CaseReport {
                        name: name.to_owned(),
                        outcome,
                        duration: start.elapsed(),
                    },
                )
            })
            .buffer_unordered(2)
            .collect()
            .await;
    let mut results = results;
    results.sort_by_key(|(i, _, _)| *i);
    let driver = results
        .iter()
        .find(|(_, d, _)| !d.is_empty())
        .map(|(_, d, _)| d.clone())
        .unwrap_or_default();
    Report {
        driver,
        capabilities: suite.capabilities.clone(),
        cases: results.into_iter().map(|(_, _, c)| c).collect(),
    }
}
