//! Suite, fixtures, outcomes and the runner.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use regstore_driver_api::{Driver, Result};
use serde::Serialize;

use crate::capabilities::Capabilities;
use crate::cases::{self, CaseError, Ctx};

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
