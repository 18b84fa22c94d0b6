//! Model-based testing of resumable writers.
//!
//! A seeded generator builds sequences of writer operations over a few paths — open (fresh or
//! `append`), writes of many sizes and granularities, `close`, `commit`, `cancel`, and a
//! *crash* (the writer dropped without `close`) — weighted towards the sizes where writers
//! break: 0, 1, the 5 MiB minimum part ± 1, the backend's part size ± 1, twice the part size.
//! Each sequence runs against a fresh store and, step by step, against a plain in-memory model
//! of the [`FileWriter`](regstore_driver_api::FileWriter) contract. After every step the runner
//! compares what a registry can observe: `size()` and the errors of the step, `get_content`,
//! `stat`, `list` and a `reader` at a random offset of the path, and (when the backend can
//! tell) which incomplete uploads exist. Nothing may be visible at a path before `commit`.
//!
//! On a failure the sequence is shrunk — steps removed, writes made smaller — to a short one
//! that still fails, and [`ModelFailure`] prints the seed and that sequence.
//!
//! ```no_run
//! use std::time::Duration;
//! use regstore_driver_conformance::writer_model::{ModelOptions, ModelRunner};
//! # async fn demo(suite: regstore_driver_conformance::Suite) {
//! let runner = ModelRunner::from_suite(suite, ModelOptions::new(5 * 1024 * 1024));
//! let report = runner.run_for(1, Duration::from_secs(30)).await;
//! if let Err(failure) = report {
//!     panic!("{failure}");
//! }
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regstore_driver_api::{Driver, Error, Result, StoragePath, Writer};

use crate::data::{compare, Stream64};
use crate::harness::{Fixture, Suite};

const MIB: u64 = 1024 * 1024;

/// S3's minimum size of a non-final part, an edge for every backend.
const MIN_PART: u64 = 5 * MIB;

/// The most write calls one generated write step makes.
const MAX_PIECES: u64 = 2048;

/// What a backend may do with a writer dropped without `close` (a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashResume {
    /// A resume finds exactly what the last `close` left (the S3 driver).
    Exact,
    /// A resume finds at least what the last `close` left and at most every byte written,
    /// always a prefix of the written bytes (a backend that flushes as it goes, like the
    /// filesystem driver).
    Prefix,
}

/// Lists the incomplete uploads of the store under test (for backends that have them), and
/// counts internal objects a writer may leave (such as S3 tail records).
pub struct UploadInspector {
    /// The paths that have an incomplete upload, once per upload.
    pub uploads: Box<dyn Fn() -> BoxFuture<'static, Result<Vec<StoragePath>>> + Send + Sync>,
    /// How many internal objects are left; must be 0 once every upload is committed or
    /// cancelled.
    pub leftovers: Box<dyn Fn() -> BoxFuture<'static, Result<usize>> + Send + Sync>,
}

impl fmt::Debug for UploadInspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadInspector")
    }
}

/// A fresh store for one sequence, with its inspector if the backend has one.
#[derive(Debug)]
pub struct ModelFixture {
    /// The store (and its teardown).
    pub fixture: Fixture,
    /// What the runner asks about incomplete uploads; `None` skips those checks.
    pub inspector: Option<UploadInspector>,
}

/// Builds a [`ModelFixture`] per sequence.
pub type ModelConstructor = Arc<dyn Fn() -> BoxFuture<'static, Result<ModelFixture>> + Send + Sync>;

/// How sequences are generated and judged.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// The backend's part size (`chunksize`); sizes are weighted around it.
    pub part_size: u64,
    /// Steps per sequence.
    pub steps: usize,
    /// Paths a sequence uses (1 to 8).
    pub paths: usize,
    /// The most bytes one upload grows to.
    pub max_object: u64,
    /// What a crash leaves.
    pub crash: CrashResume,
    /// The most time shrinking a failure may take.
    pub shrink_budget: Duration,
    /// Whether a fresh writer may start on a path that holds committed content (a registry
    /// never does: every upload has a path of its own). On by default.
    pub overwrite_committed: bool,
    /// The most time one step may take; a slower step is a failure (a writer that re-uploads
    /// on every write is as broken as one that loses bytes).
    pub step_timeout: Duration,
}

impl ModelOptions {
    /// Defaults for a backend with `part_size`: 24 steps over 2 paths, objects up to 3 parts,
    /// crashes resumed exactly, 60 seconds per step at most, 5 minutes of shrinking.
    pub fn new(part_size: u64) -> Self {
        ModelOptions {
            part_size: part_size.max(1),
            steps: 24,
            paths: 2,
            max_object: 3 * part_size.max(MIN_PART) + 1,
            crash: CrashResume::Exact,
            shrink_budget: Duration::from_secs(300),
            step_timeout: Duration::from_secs(60),
            overwrite_committed: true,
        }
    }
}

/// One step of a sequence. `path` indexes the sequence's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `writer(path, append)`.
    Open {
        /// Which path.
        path: usize,
        /// Resume (`true`) or start afresh.
        append: bool,
    },
    /// `len` bytes (seeded by `fill`) in writes of `piece` bytes.
    Write {
        /// Which path.
        path: usize,
        /// Bytes in all.
        len: u64,
        /// Bytes per `write` call.
        piece: u64,
        /// Seed of the bytes.
        fill: u64,
    },
    /// `close`.
    Close {
        /// Which path.
        path: usize,
    },
    /// `commit`.
    Commit {
        /// Which path.
        path: usize,
    },
    /// `cancel`.
    Cancel {
        /// Which path.
        path: usize,
    },
    /// The writer dropped without `close`.
    Crash {
        /// Which path.
        path: usize,
    },
}

impl Op {
    fn path(&self) -> usize {
        match *self {
            Op::Open { path, .. }
            | Op::Write { path, .. }
            | Op::Close { path }
            | Op::Commit { path }
            | Op::Cancel { path }
            | Op::Crash { path } => path,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open { path, append } => write!(f, "p{path}: writer(append = {append})"),
            Op::Write {
                path, len, piece, ..
            } => write!(f, "p{path}: write {len} bytes in writes of {piece}"),
            Op::Close { path } => write!(f, "p{path}: close"),
            Op::Commit { path } => write!(f, "p{path}: commit"),
            Op::Cancel { path } => write!(f, "p{path}: cancel"),
            Op::Crash { path } => write!(f, "p{path}: drop without close (crash)"),
        }
    }
}

/// A sequence that failed, with the shortest failing sequence found from it.
#[derive(Debug, Clone)]
pub struct ModelFailure {
    /// The generator's seed.
    pub seed: u64,
    /// What went wrong in the generated sequence.
    pub message: String,
    /// How many steps the generated sequence had.
    pub generated_steps: usize,
    /// The shrunk sequence.
    pub shrunk: Vec<Op>,
    /// What went wrong in the shrunk sequence.
    pub shrunk_message: String,
}

impl fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "writer model: seed {} failed after shrinking {} steps to {}:",
            self.seed,
            self.generated_steps,
            self.shrunk.len()
        )?;
        for (i, op) in self.shrunk.iter().enumerate() {
            writeln!(f, "  {i:>3}. {op}")?;
        }
        writeln!(f, "  shrunk failure: {}", self.shrunk_message)?;
        write!(f, "  generated failure: {}", self.message)
    }
}

impl std::error::Error for ModelFailure {}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelReport {
    /// Sequences run (all passed).
    pub sequences: u64,
    /// Steps run in all.
    pub steps: u64,
    /// Bytes written in all.
    pub bytes: u64,
}

/// Runs generated sequences against fresh stores.
#[derive(Clone)]
pub struct ModelRunner {
    constructor: ModelConstructor,
    options: ModelOptions,
}

impl fmt::Debug for ModelRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelRunner")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ModelRunner {
    /// A runner on stores from `constructor`.
    pub fn new(constructor: ModelConstructor, options: ModelOptions) -> Self {
        ModelRunner {
            constructor,
            options,
        }
    }

    /// A runner on the stores of a conformance [`Suite`], without upload inspection.
    pub fn from_suite(suite: Suite, options: ModelOptions) -> Self {
        let suite = Arc::new(suite);
        Self::new(
            Arc::new(move || {
                let suite = Arc::clone(&suite);
                async move {
                    Ok(ModelFixture {
                        fixture: suite.fixture().await?,
                        inspector: None,
                    })
                }
                .boxed()
            }),
            options,
        )
    }

    /// The options in use.
    pub fn options(&self) -> &ModelOptions {
        &self.options
    }

    /// The sequence `seed` generates.
    pub fn generate(&self, seed: u64) -> Vec<Op> {
        generate(&self.options, seed)
    }

    /// Runs the sequences of seeds `first_seed`, `first_seed + 1`, … until `budget` has passed
    /// (at least one). The first failure is shrunk and returned.
    pub async fn run_for(
        &self,
        first_seed: u64,
        budget: Duration,
    ) -> std::result::Result<ModelReport, ModelFailure> {
        let started = Instant::now();
        let mut report = ModelReport::default();
        let mut seed = first_seed;
        loop {
            let stats = self.run_seed(seed).await?;
            report.sequences += 1;
            report.steps += stats.steps;
            report.bytes += stats.bytes;
            seed += 1;
            if started.elapsed() >= budget {
                return Ok(report);
            }
        }
    }

    /// Runs the sequence of `seed`; a failure is shrunk.
    pub async fn run_seed(&self, seed: u64) -> std::result::Result<ModelReport, ModelFailure> {
        let ops = self.generate(seed);
        match self.run_ops(&ops).await {
            Ok(stats) => Ok(stats),
            Err(message) => {
                let (shrunk, shrunk_message) = self.shrink(ops.clone(), message.clone()).await;
                Err(ModelFailure {
                    seed,
                    message,
                    generated_steps: ops.len(),
                    shrunk,
                    shrunk_message,
                })
            }
        }
    }

    /// Runs `ops` on a fresh store; `Err` says which step diverged from the model and how.
    pub async fn run_ops(&self, ops: &[Op]) -> std::result::Result<ModelReport, String> {
        let ModelFixture { fixture, inspector } = (self.constructor)()
            .await
            .map_err(|e| format!("fixture: {e}"))?;
        let mut run = Run::new(fixture.driver.clone(), &self.options, inspector);
        let outcome = run.all(ops).await;
        let stats = ModelReport {
            sequences: 1,
            steps: run.steps,
            bytes: run.bytes,
        };
        drop(run);
        if let Some(teardown) = fixture.teardown {
            if let Err(e) = teardown().await {
                if outcome.is_ok() {
                    return Err(format!("teardown: {e}"));
                }
            }
        }
        outcome.map(|()| stats)
    }

    /// Greedy shrinking: drop runs of steps (halves, quarters, … single steps), then make
    /// writes smaller, keeping every change after which the sequence still fails.
    async fn shrink(&self, mut ops: Vec<Op>, mut message: String) -> (Vec<Op>, String) {
        let started = Instant::now();
        let in_time = || started.elapsed() < self.options.shrink_budget;
        let mut chunk = ops.len().div_ceil(2).max(1);
        while in_time() {
            let mut removed = false;
            let mut at = 0;
            while at < ops.len() && in_time() {
                let mut candidate = ops.clone();
                candidate.drain(at..(at + chunk).min(ops.len()));
                match self.run_ops(&candidate).await {
                    Err(m) => {
                        ops = candidate;
                        message = m;
                        removed = true;
                    }
                    Ok(_) => at += chunk,
                }
            }
            if chunk == 1 && !removed {
                break;
            }
            chunk = (chunk / 2).max(1);
        }
        let mut i = 0;
        while i < ops.len() && in_time() {
            if let Op::Write { len, piece, .. } = ops[i] {
                for smaller in [0, 1, len / 2, MIN_PART - 1, self.options.part_size - 1] {
                    if smaller >= len {
                        continue;
                    }
                    let mut candidate = ops.clone();
                    if let Op::Write {
                        len: l, piece: p, ..
                    } = &mut candidate[i]
                    {
                        *l = smaller;
                        *p = piece.max(smaller.div_ceil(MAX_PIECES)).max(1);
                    }
                    if let Err(m) = self.run_ops(&candidate).await {
                        ops = candidate;
                        message = m;
                        break;
                    }
                }
            }
            i += 1;
        }
        (ops, message)
    }
}

/// Runs `runner` for a test: seeds from `REGSTORE_MODEL_SEED` (default 1) on, for
/// `REGSTORE_MODEL_SECONDS` (default `default_budget`), on a runtime of its own; prints what ran
/// and panics with the shrunk failure. For `#[test]` functions of backend crates.
pub fn run_blocking(runner: &ModelRunner, label: &str, default_budget: Duration) {
    let seed = std::env::var("REGSTORE_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let budget = std::env::var("REGSTORE_MODEL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default_budget, Duration::from_secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let started = Instant::now();
    match rt.block_on(runner.run_for(seed, budget)) {
        Ok(r) => println!(
            "writer model ({label}): {} sequences, {} steps, {} MiB written, seeds {seed}..{}, {:.1} s",
            r.sequences,
            r.steps,
            r.bytes / MIB,
            seed + r.sequences,
            started.elapsed().as_secs_f64()
        ),
        Err(failure) => panic!("writer model ({label}): {failure}"),
    }
}

/// The sequence of `seed` under `options`. The generator tracks which paths have a writer or
/// an upload so most steps are meaningful; the runner skips steps that are not (a write
/// without a writer), so any subsequence is runnable too.
pub fn generate(options: &ModelOptions, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let paths = options.paths.clamp(1, 8);
    let mut open = vec![false; paths];
    let mut upload = vec![false; paths];
    let mut size = vec![0u64; paths];
    let mut ops = Vec::with_capacity(options.steps);
    while ops.len() < options.steps {
        let path = rng.gen_range(0..paths);
        let op = if open[path] {
            match rng.gen_range(0..100) {
                0..=54 => {
                    let room = options.max_object.saturating_sub(size[path]);
                    let len = edge_size(&mut rng, options.part_size).min(room);
                    size[path] += len;
                    Op::Write {
                        path,
                        len,
                        piece: piece_size(&mut rng, len, options.part_size),
                        fill: rng.gen(),
                    }
                }
                55..=71 => Op::Close { path },
                72..=83 => Op::Commit { path },
                84..=93 => Op::Crash { path },
                _ => Op::Cancel { path },
            }
        } else {
            // Mostly resume an upload there is; sometimes resume where there is none (an
            // error or a committed object) or start afresh.
            let append = if upload[path] {
                rng.gen_range(0..10) < 9
            } else {
                rng.gen_range(0..10) < 2
            };
            Op::Open { path, append }
        };
        match &op {
            Op::Open { append, .. } => {
                open[path] = true;
                if !append || !upload[path] {
                    size[path] = 0;
                }
                upload[path] = true;
            }
            Op::Close { .. } | Op::Crash { .. } => open[path] = false,
            Op::Commit { .. } | Op::Cancel { .. } => {
                open[path] = false;
                upload[path] = false;
                size[path] = 0;
            }
            Op::Write { .. } => {}
        }
        ops.push(op);
    }
    ops
}

/// A write size weighted towards the edges where writers break.
fn edge_size(rng: &mut StdRng, part: u64) -> u64 {
    let edges = [
        0,
        1,
        2,
        4095,
        32 * 1024,
        MIN_PART - 1,
        MIN_PART,
        MIN_PART + 1,
        part - 1,
        part,
        part + 1,
        2 * part,
    ];
    match rng.gen_range(0..10) {
        0..=5 => edges[rng.gen_range(0..edges.len())],
        6..=7 => rng.gen_range(0..=64 * 1024),
        _ => rng.gen_range(0..=2 * part),
    }
}

/// The size of each `write` call for a write of `len` bytes: single bytes to whole parts,
/// never more than [`MAX_PIECES`] calls.
fn piece_size(rng: &mut StdRng, len: u64, part: u64) -> u64 {
    let choices = [1, 7, 32 * 1024, MIB, part, len.max(1)];
    let piece = choices[rng.gen_range(0..choices.len())];
    piece.max(len.div_ceil(MAX_PIECES)).max(1)
}

/// What a path's upload holds between writers, in the model.
#[derive(Debug, Clone)]
enum Pending {
    /// No upload.
    None,
    /// Closed with exactly these bytes.
    Closed(Vec<u8>),
    /// A writer crashed: a resume finds `data[..n]` for some `n` in `min..=data.len()`; with
    /// `may_vanish` (a fresh writer that never closed) the upload may also not exist.
    Crashed {
        data: Vec<u8>,
        min: usize,
        may_vanish: bool,
    },
}

/// An open writer and what the model expects of it.
struct OpenWriter {
    writer: Writer,
    content: Vec<u8>,
    /// What a crash now leaves, by the contract: the content at open (`None`: a fresh writer).
    base: Option<Vec<u8>>,
}

struct PathState {
    name: String,
    dir: String,
    committed: Option<Vec<u8>>,
    pending: Pending,
    writer: Option<OpenWriter>,
}

/// One sequence in progress.
struct Run<'a> {
    driver: Driver,
    options: &'a ModelOptions,
    inspector: Option<UploadInspector>,
    paths: Vec<PathState>,
    rng: StdRng,
    steps: u64,
    bytes: u64,
}

impl<'a> Run<'a> {
    fn new(driver: Driver, options: &'a ModelOptions, inspector: Option<UploadInspector>) -> Self {
        let paths = (0..options.paths.clamp(1, 8))
            .map(|i| PathState {
                name: format!("/model/p{i}/data"),
                dir: format!("/model/p{i}"),
                committed: None,
                pending: Pending::None,
                writer: None,
            })
            .collect();
        Run {
            driver,
            options,
            inspector,
            paths,
            rng: StdRng::seed_from_u64(0x5eed),
            steps: 0,
            bytes: 0,
        }
    }

    async fn all(&mut self, ops: &[Op]) -> std::result::Result<(), String> {
        for (i, op) in ops.iter().enumerate() {
            if op.path() >= self.paths.len() {
                continue;
            }
            let limit = self.options.step_timeout;
            let ran = tokio::time::timeout(limit, self.step(op))
                .await
                .map_err(|_| format!("step {i} ({op}): took longer than {limit:?}"))?
                .map_err(|e| format!("step {i} ({op}): {e}"))?;
            if ran {
                self.steps += 1;
                self.observe(op.path())
                    .await
                    .map_err(|e| format!("after step {i} ({op}): {e}"))?;
            }
        }
        self.finish()
            .await
            .map_err(|e| format!("after the last step: {e}"))
    }

    /// Runs one step; `false` if it does not apply in the current state.
    async fn step(&mut self, op: &Op) -> std::result::Result<bool, String> {
        let p = op.path();
        match *op {
            Op::Open { append, .. } => {
                let st = &self.paths[p];
                let fresh_over_committed = !append && st.committed.is_some();
                if st.writer.is_some()
                    || (!append && !matches!(st.pending, Pending::None))
                    || (fresh_over_committed && !self.options.overwrite_committed)
                {
                    return Ok(false);
                }
                if append {
                    self.resume(p).await?;
                } else {
                    let w = self
                        .driver
                        .writer(&st.name, false)
                        .await
                        .map_err(|e| format!("writer: {e}"))?;
                    check_size("size of a new writer", w.size(), 0)?;
                    self.paths[p].writer = Some(OpenWriter {
                        writer: w,
                        content: Vec::new(),
                        base: None,
                    });
                }
            }
            Op::Write {
                len, piece, fill, ..
            } => {
                let Some(w) = self.paths[p].writer.as_mut() else {
                    return Ok(false);
                };
                let mut source = Stream64::new(fill);
                let mut data = vec![0u8; len as usize];
                source.fill(&mut data);
                let data = Bytes::from(data);
                for start in (0..data.len()).step_by(piece.max(1) as usize) {
                    let end = (start + piece.max(1) as usize).min(data.len());
                    w.writer
                        .write(data.slice(start..end))
                        .await
                        .map_err(|e| format!("write at {start}: {e}"))?;
                }
                w.content.extend_from_slice(&data);
                self.bytes += len;
                check_size("size after writes", w.writer.size(), w.content.len())?;
            }
            Op::Close { .. } => {
                let Some(mut w) = self.paths[p].writer.take() else {
                    return Ok(false);
                };
                w.writer.close().await.map_err(|e| format!("close: {e}"))?;
                check_size("size after close", w.writer.size(), w.content.len())?;
                self.paths[p].pending = Pending::Closed(w.content);
            }
            Op::Commit { .. } => {
                let Some(mut w) = self.paths[p].writer.take() else {
                    return Ok(false);
                };
                w.writer
                    .commit()
                    .await
                    .map_err(|e| format!("commit: {e}"))?;
                check_size("size after commit", w.writer.size(), w.content.len())?;
                w.writer
                    .close()
                    .await
                    .map_err(|e| format!("close after commit: {e}"))?;
                let st = &mut self.paths[p];
                st.committed = Some(w.content);
                st.pending = Pending::None;
            }
            Op::Cancel { .. } => {
                let Some(mut w) = self.paths[p].writer.take() else {
                    return Ok(false);
                };
                w.writer
                    .cancel()
                    .await
                    .map_err(|e| format!("cancel: {e}"))?;
                self.paths[p].pending = Pending::None;
            }
            Op::Crash { .. } => {
                let Some(w) = self.paths[p].writer.take() else {
                    return Ok(false);
                };
                drop(w.writer);
                let exact = self.options.crash == CrashResume::Exact;
                self.paths[p].pending = match (w.base, exact) {
                    (Some(base), true) => Pending::Closed(base),
                    (None, true) => Pending::Crashed {
                        data: Vec::new(),
                        min: 0,
                        may_vanish: true,
                    },
                    (base, false) => Pending::Crashed {
                        min: base.as_ref().map_or(0, Vec::len),
                        may_vanish: base.is_none(),
                        data: w.content,
                    },
                };
            }
        }
        Ok(true)
    }

    /// `writer(path, append = true)` against what the model allows.
    async fn resume(&mut self, p: usize) -> std::result::Result<(), String> {
        let st = &self.paths[p];
        let got = self.driver.writer(&st.name, true).await;
        // What a resume finds where no upload is: the committed object decides.
        let no_upload = |got: &Result<Writer>| -> std::result::Result<(), String> {
            match (&st.committed, got) {
                (Some(c), Err(Error::AppendToCommitted { size, .. })) if !c.is_empty() => {
                    check_size("AppendToCommitted size", *size, c.len())
                }
                (Some(c), Ok(w)) if c.is_empty() => check_size("size", w.size(), 0),
                (None, Err(Error::PathNotFound { .. })) => Ok(()),
                (c, got) => Err(format!(
                    "resume without an upload (committed: {:?} bytes): got {}",
                    c.as_ref().map(Vec::len),
                    describe(got)
                )),
            }
        };
        let content = match (&st.pending, &got) {
            (Pending::None, _) => {
                no_upload(&got)?;
                Vec::new()
            }
            (Pending::Closed(c), Ok(w)) => {
                check_size("size of the resumed writer", w.size(), c.len())?;
                c.clone()
            }
            (Pending::Closed(c), Err(e)) => {
                return Err(format!("resume of a closed {}-byte upload: {e}", c.len()))
            }
            (
                Pending::Crashed {
                    data,
                    min,
                    may_vanish,
                },
                _,
            ) => match &got {
                Ok(w) if (*min as u64..=data.len() as u64).contains(&w.size()) => {
                    data[..w.size() as usize].to_vec()
                }
                _ if *may_vanish && no_upload(&got).is_ok() => Vec::new(),
                _ => {
                    return Err(format!(
                        "resume after a crash: expected a size in {min}..={}{}, got {}",
                        data.len(),
                        if *may_vanish { " or no upload" } else { "" },
                        describe(&got)
                    ))
                }
            },
        };
        let st = &mut self.paths[p];
        st.pending = Pending::None;
        if let Ok(w) = got {
            st.writer = Some(OpenWriter {
                writer: w,
                base: Some(content.clone()),
                content,
            });
        }
        Ok(())
    }

    /// Compares everything observable about path `p` (and the store's uploads).
    async fn observe(&mut self, p: usize) -> std::result::Result<(), String> {
        let st = &self.paths[p];
        match (&st.committed, self.driver.get_content(&st.name).await) {
            (Some(c), Ok(got)) => compare("get_content", &got, c)?,
            (None, Err(Error::PathNotFound { .. })) => {}
            (c, got) => {
                return Err(format!(
                    "get_content: expected {}, got {}",
                    c.as_ref()
                        .map_or("PathNotFound".to_owned(), |c| format!("{} bytes", c.len())),
                    match got {
                        Ok(b) => format!("{} bytes (visible before commit?)", b.len()),
                        Err(e) => e.to_string(),
                    }
                ))
            }
        }
        match (&st.committed, self.driver.stat(&st.name).await) {
            (Some(c), Ok(info)) if !info.is_dir => check_size("stat size", info.size, c.len())?,
            (None, Err(Error::PathNotFound { .. })) => {}
            (_, got) => return Err(format!("stat: unexpected {got:?}")),
        }
        let listed = self.driver.list(&st.dir).await;
        match (&st.committed, listed) {
            (Some(_), Ok(entries)) => {
                let names: Vec<&str> = entries.iter().map(|e| e.as_str()).collect();
                if names != [st.name.as_str()] {
                    return Err(format!("list {}: got {names:?}", st.dir));
                }
            }
            (None, Err(Error::PathNotFound { .. })) => {}
            (None, Ok(entries)) if entries.is_empty() => {}
            (_, got) => return Err(format!("list {}: unexpected {got:?}", st.dir)),
        }
        if let Some(c) = &st.committed {
            let offset = self.rng.gen_range(0..=c.len());
            let mut stream = self
                .driver
                .reader(&st.name, offset as i64)
                .await
                .map_err(|e| format!("reader at {offset}: {e}"))?;
            let mut got = Vec::new();
            while let Some(chunk) = stream.next().await {
                got.extend_from_slice(&chunk.map_err(|e| format!("reader at {offset}: {e}"))?);
            }
            compare(&format!("reader at {offset}"), &got, &c[offset..])?;
        }
        self.check_uploads().await
    }

    /// Incomplete uploads: every closed upload and open writer has one, nothing else does.
    async fn check_uploads(&self) -> std::result::Result<(), String> {
        let Some(inspector) = &self.inspector else {
            return Ok(());
        };
        let got = (inspector.uploads)()
            .await
            .map_err(|e| format!("listing incomplete uploads: {e}"))?;
        let mut seen = BTreeSet::new();
        for path in &got {
            let Some(st) = self.paths.iter().find(|s| s.name == path.as_str()) else {
                return Err(format!("an incomplete upload of unknown path {path}"));
            };
            if !seen.insert(path.as_str()) {
                return Err(format!("more than one incomplete upload of {path}"));
            }
            if st.writer.is_none() && matches!(st.pending, Pending::None) {
                return Err(format!("an incomplete upload of {path}, which has none"));
            }
        }
        for st in &self.paths {
            let required = st.writer.is_some() || matches!(st.pending, Pending::Closed(_));
            if required && !seen.contains(st.name.as_str()) {
                return Err(format!("no incomplete upload of {}", st.name));
            }
        }
        Ok(())
    }

    /// Cancels every upload left, then requires the store to hold only committed objects.
    async fn finish(&mut self) -> std::result::Result<(), String> {
        for p in 0..self.paths.len() {
            if self.paths[p].writer.is_none() && matches!(self.paths[p].pending, Pending::None) {
                continue;
            }
            if self.paths[p].writer.is_none() {
                self.resume(p).await?;
            }
            if let Some(mut w) = self.paths[p].writer.take() {
                w.writer
                    .cancel()
                    .await
                    .map_err(|e| format!("cancel {}: {e}", self.paths[p].name))?;
            }
        }
        for p in 0..self.paths.len() {
            self.observe(p).await?;
        }
        // Nothing a writer keeps for itself may show at the top either.
        let top = self
            .driver
            .list("/")
            .await
            .map_err(|e| format!("list /: {e}"))?;
        let any_committed = self.paths.iter().any(|s| s.committed.is_some());
        let names: Vec<&str> = top.iter().map(|e| e.as_str()).collect();
        if names
            != if any_committed {
                vec!["/model"]
            } else {
                vec![]
            }
        {
            return Err(format!("list /: got {names:?}"));
        }
        if let Some(inspector) = &self.inspector {
            let left = (inspector.leftovers)()
                .await
                .map_err(|e| format!("counting leftovers: {e}"))?;
            if left != 0 {
                return Err(format!(
                    "{left} internal objects left after every upload ended"
                ));
            }
        }
        Ok(())
    }
}

fn check_size(what: &str, got: u64, expected: usize) -> std::result::Result<(), String> {
    if got == expected as u64 {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, expected {expected}"))
    }
}

fn describe(got: &Result<Writer>) -> String {
    match got {
        Ok(w) => format!("a writer of size {}", w.size()),
        Err(e) => format!("error {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_reaches_the_edges() {
        let options = ModelOptions::new(10 * MIB);
        assert_eq!(generate(&options, 7), generate(&options, 7));
        assert_ne!(generate(&options, 7), generate(&options, 8));
        let mut sizes = BTreeSet::new();
        let mut kinds = std::collections::HashSet::new();
        for seed in 0..200 {
            for op in generate(&options, seed) {
                if let Op::Write { len, piece, .. } = op {
                    sizes.insert(len);
                    assert!(len.div_ceil(piece) <= MAX_PIECES, "{len} in {piece}");
                }
                kinds.insert(std::mem::discriminant(&op));
            }
        }
        for edge in [
            0,
            1,
            MIN_PART - 1,
            MIN_PART,
            MIN_PART + 1,
            10 * MIB - 1,
            10 * MIB,
        ] {
            assert!(sizes.contains(&edge), "size {edge} never generated");
        }
        assert_eq!(kinds.len(), 6, "every kind of step is generated");
    }
}
