//! Bounded soak of the S3 driver through the fault-injection proxy (`cargo xtask soak`).
//!
//! ```text
//! cargo run -p regstore-driver-s3 --example soak -- --seconds 60 [--workers 64] [--rate 0.2]
//!     [--seed N] [--write-mib-per-sec 16]
//! ```
//!
//! The S3 server comes from the test environment contract (`REGSTORE_S3_ENDPOINT`,
//! `REGSTORE_S3_ACCESS_KEY`, `REGSTORE_S3_SECRET_KEY`, `REGSTORE_S3_BUCKET`, optional
//! `REGSTORE_S3_REGION` and `REGSTORE_S3_V4AUTH`; see `regstore-test-support`) and must be on
//! the loopback interface. A
//! [`FaultProxy`] in front of it resets, stalls, truncates and answers `503 SlowDown` /
//! `500 InternalError` for `--rate` of the requests. `--workers` tasks then, until the time is
//! up, write objects of random sizes (0–12 MiB; `put_content`, multipart writers, writers closed
//! and resumed with `append`, writers cancelled; 30% of operations), delete earlier objects
//! (10%), and read back random earlier objects (60%, whole or from an offset), checking every
//! read against the SHA-256 of what was written.
//!
//! At the end a driver that bypasses the proxy checks every committed object (lost or corrupted
//! objects fail the run), that no cancelled or deleted object is visible, that no object whose write
//! failed holds other bytes than the ones written, and that no multipart upload is left under
//! the soak's root (any left are listed, counted and aborted). The driver aborts the orphans of
//! `CreateMultipartUpload` requests the proxy reset after the server had created an upload
//! (see the `dispatch` module); the report shows how many. Exit status 0 means every check
//! passed.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt as _;
use regstore_driver_api::{Error, Parameters, StorageDriver, StoragePath};
use regstore_driver_s3::{S3Config, S3Driver};
use regstore_fault_proxy::{FaultKind, FaultProxy, ProxyConfig};
use regstore_test_support::{loopback_upstream, S3Env, SplitMix64};

const MIB: usize = 1024 * 1024;
/// Largest object written.
const MAX_OBJECT: usize = 12 * MIB;
/// Distinct starting offsets into the content pool, so objects differ.
const POOL_OFFSETS: usize = 4 * MIB;

/// Command-line options.
struct Options {
    seconds: u64,
    workers: usize,
    rate: f64,
    seed: u64,
    write_mib_per_sec: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        seconds: 60,
        workers: 64,
        rate: 0.2,
        write_mib_per_sec: 16,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => o.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--workers" => o.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--rate" => o.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seed" => o.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--write-mib-per-sec" => {
                o.write_mib_per_sec = value()?
                    .parse()
                    .map_err(|e| format!("--write-mib-per-sec: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !(1..=6 * 3600).contains(&o.seconds) {
        return Err("--seconds must be between 1 and 21600".into());
    }
    if !(1..=1024).contains(&o.workers) {
        return Err("--workers must be between 1 and 1024".into());
    }
    if !(0.0..=1.0).contains(&o.rate) {
        return Err("--rate must be between 0 and 1".into());
    }
    Ok(o)
}

/// Per-worker random choices, reproducible from the seed (the tests' SplitMix64).
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Random bytes every object is a slice of: an object is `(offset, len)` into the pool, so
/// content costs no generation and any slice's SHA-256 can be recomputed.
struct Pool(Bytes);

impl Pool {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5EED);
        let mut v = Vec::with_capacity(MAX_OBJECT + POOL_OFFSETS + 8);
        while v.len() < MAX_OBJECT + POOL_OFFSETS {
            v.extend_from_slice(&rng.next().to_le_bytes());
        }
        Pool(Bytes::from(v))
    }
    fn object(&self, o: &Object) -> Bytes {
        self.0.slice(o.offset..o.offset + o.len)
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// What was written at a path.
#[derive(Clone, Copy, Debug)]
struct Object {
    offset: usize,
    len: usize,
}

/// Caps the bytes written per second over the run: RGW on memstore keeps every written byte
/// (and every part of every upload) in RAM until its garbage collection runs, so an unbounded
/// soak fills a 4 GiB store within a minute and the server stops answering.
struct WriteBudget {
    started: Instant,
    bytes_per_sec: u64,
    granted: AtomicU64,
}

impl WriteBudget {
    /// Takes `len` bytes of budget if the run has earned them by now.
    fn take(&self, len: u64) -> bool {
        let earned = (self.started.elapsed().as_secs_f64() * self.bytes_per_sec as f64) as u64
            + 16 * MIB as u64;
        self.granted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                (g + len <= earned).then_some(g + len)
            })
            .is_ok()
    }
}

/// Shared tallies.
#[derive(Default)]
struct Tally {
    put_content: AtomicU64,
    multipart: AtomicU64,
    resumed: AtomicU64,
    cancelled: AtomicU64,
    write_errors: AtomicU64,
    deletes: AtomicU64,
    delete_errors: AtomicU64,
    reads: AtomicU64,
    read_retries: AtomicU64,
    read_failures: AtomicU64,
    corrupted_reads: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
}

/// Paths by outcome, for the final check.
#[derive(Default)]
struct Ledger {
    committed: HashMap<StoragePath, Object>,
    cancelled: Vec<StoragePath>,
    deleted: Vec<StoragePath>,
    uncertain: HashMap<StoragePath, Object>,
}

struct Worker {
    id: usize,
    budget: Arc<WriteBudget>,
    driver: S3Driver,
    pool: Arc<Pool>,
    tally: Arc<Tally>,
    ledger: Arc<Mutex<Ledger>>,
    rng: Rng,
    mine: Vec<(StoragePath, Object)>,
    n: u64,
}

fn path(s: &str) -> StoragePath {
    StoragePath::parse(s).unwrap_or_else(|| panic!("soak path {s:?} is valid"))
}

impl Worker {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(mut self, until: Instant) {
        while Instant::now() < until {
            // A third writes, a tenth deletes, the rest reads: RGW on memstore keeps every
            // written byte in RAM until its garbage collection, so writes are the scarce part.
            let roll = self.rng.below(100);
            if self.mine.is_empty() || roll < 30 {
                if !self.write().await {
                    // Over the write budget: read instead, or wait a little.
                    if self.mine.is_empty() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        self.read().await;
                    }
                }
            } else if roll < 40 {
                self.delete().await;
            } else {
                self.read().await;
            }
        }
    }

    fn random_object(&mut self) -> Object {
        let len = match self.rng.below(10) {
            0..=3 => self.rng.below(64 * 1024) as usize,
            4..=7 => self.rng.below(5 * MIB as u64) as usize,
            _ => 5 * MIB + self.rng.below((MAX_OBJECT - 5 * MIB) as u64 + 1) as usize,
        };
        Object {
            offset: self.rng.below(POOL_OFFSETS as u64) as usize,
            len,
        }
    }

    /// Writes one object; `false` (nothing done) when the write budget is spent for now.
    async fn write(&mut self) -> bool {
        let obj = self.random_object();
        if !self.budget.take(obj.len as u64) {
            return false;
        }
        self.n += 1;
        let p = path(&format!("/w{:03}/o{:05}", self.id, self.n));
        let data = self.pool.object(&obj);
        let mode = self.rng.below(100);
        let result = if mode < 25 {
            self.driver
                .put_content(&p, data.clone())
                .await
                .map(|_| "put")
        } else if mode < 45 {
            self.resumed_write(&p, &data).await.map(|_| "resumed")
        } else if mode < 55 {
            self.cancelled_write(&p, &data).await.map(|_| "cancelled")
        } else {
            self.chunked_write(&p, &data, false)
                .await
                .map(|_| "multipart")
        };
        match result {
            Ok("cancelled") => {
                self.tally.cancelled.fetch_add(1, Ordering::Relaxed);
                self.ledger().cancelled.push(p);
            }
            Ok(kind) => {
                let counter = match kind {
                    "put" => &self.tally.put_content,
                    "resumed" => &self.tally.resumed,
                    _ => &self.tally.multipart,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.tally
                    .bytes_written
                    .fetch_add(obj.len as u64, Ordering::Relaxed);
                self.ledger().committed.insert(p.clone(), obj);
                self.mine.push((p, obj));
            }
            Err(e) => {
                eprintln!("soak: write {p} ({} bytes) failed: {e}", obj.len);
                self.tally.write_errors.fetch_add(1, Ordering::Relaxed);
                self.ledger().uncertain.insert(p, obj);
            }
        }
        true
    }

    /// Writes `data` in random slices; commits unless `keep_open`, then the writer is closed.
    async fn chunked_write(
        &mut self,
        p: &StoragePath,
        data: &Bytes,
        append: bool,
    ) -> regstore_driver_api::Result<Box<dyn regstore_driver_api::FileWriter>> {
        let mut w = self.driver.writer(p, append).await?;
        let mut at = 0;
        while at < data.len() {
            let n = (1 + self.rng.below(2 * MIB as u64) as usize).min(data.len() - at);
            if let Err(e) = w.write(data.slice(at..at + n)).await {
                let _ = w.cancel().await;
                return Err(e);
            }
            at += n;
        }
        if let Err(e) = w.commit().await {
            let _ = w.cancel().await;
            return Err(e);
        }
        Ok(w)
    }

    async fn resumed_write(
        &mut self,
        p: &StoragePath,
        data: &Bytes,
    ) -> regstore_driver_api::Result<()> {
        let cut = self.rng.below(data.len() as u64 + 1) as usize;
        let mut w = self.driver.writer(p, false).await?;
        let first = async {
            w.write(data.slice(..cut)).await?;
            w.close().await
        };
        if let Err(e) = first.await {
            let _ = w.cancel().await;
            return Err(e);
        }
        let mut w = self.driver.writer(p, true).await?;
        if w.size() != cut as u64 {
            let _ = w.cancel().await;
            return Err(Error::backend(
                "soak",
                Some(p.as_str()),
                format!("resumed writer has {} bytes, {cut} were closed", w.size()),
            ));
        }
        let rest = async {
            w.write(data.slice(cut..)).await?;
            w.commit().await
        };
        if let Err(e) = rest.await {
            let _ = w.cancel().await;
            return Err(e);
        }
        Ok(())
    }

    async fn cancelled_write(
        &mut self,
        p: &StoragePath,
        data: &Bytes,
    ) -> regstore_driver_api::Result<()> {
        let mut w = self.driver.writer(p, false).await?;
        let cut = self.rng.below(data.len() as u64 + 1) as usize;
        let wrote = w.write(data.slice(..cut)).await;
        // Cancel whatever happened: the upload must go either way.
        let cancelled = w.cancel().await;
        wrote?;
        cancelled
    }

    /// Deletes one of this worker's objects and checks it is gone.
    async fn delete(&mut self) {
        let i = self.rng.below(self.mine.len() as u64) as usize;
        let (p, _) = self.mine.swap_remove(i);
        self.tally.deletes.fetch_add(1, Ordering::Relaxed);
        let outcome = match self.driver.delete(&p).await {
            Ok(()) => Ok(()),
            // A retried delete whose first attempt went through finds nothing: still gone.
            Err(Error::PathNotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                self.ledger().committed.remove(&p);
                self.ledger().deleted.push(p);
            }
            Err(e) => {
                eprintln!("soak: delete {p} failed: {e}");
                self.tally.delete_errors.fetch_add(1, Ordering::Relaxed);
                // Its state is unknown now: gone, or still the committed bytes.
                let obj = self.ledger().committed.remove(&p);
                if let Some(obj) = obj {
                    self.ledger().uncertain.insert(p, obj);
                }
            }
        }
    }

    async fn read(&mut self) {
        let i = self.rng.below(self.mine.len() as u64) as usize;
        let (p, obj) = self.mine[i].clone();
        let offset = if self.rng.chance(50) {
            0
        } else {
            self.rng.below(obj.len as u64 + 1) as usize
        };
        let want = sha256(&self.pool.object(&obj)[offset..]);
        self.tally.reads.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..4 {
            let got = if offset == 0 && self.rng.chance(50) {
                self.driver.get_content(&p).await.map(|b| b.to_vec())
            } else {
                match self.driver.reader(&p, offset as u64).await {
                    Ok(s) => s.try_collect::<Vec<Bytes>>().await.map(|c| c.concat()),
                    Err(e) => Err(e),
                }
            };
            match got {
                Ok(bytes) if sha256(&bytes) == want => {
                    self.tally
                        .bytes_read
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    return;
                }
                Ok(bytes) => {
                    eprintln!(
                        "soak: CORRUPTED read of {p} from {offset}: {} bytes, expected {}",
                        bytes.len(),
                        obj.len - offset
                    );
                    self.tally.corrupted_reads.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    if attempt == 3 {
                        eprintln!("soak: read {p} failed 4 times: {e}");
                        self.tally.read_failures.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    self.tally.read_retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The test environment's parameters for `endpoint` (the server itself or the proxy in front).
fn params(env: &S3Env, endpoint: &str, root: &str) -> Parameters {
    S3Env {
        endpoint: endpoint.to_owned(),
        ..env.clone()
    }
    .params(root)
}

fn driver(p: &Parameters) -> Result<S3Driver, String> {
    let config = S3Config::from_parameters(p).map_err(|e| e.to_string())?;
    S3Driver::new(config).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    match soak().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

async fn soak() -> Result<bool, String> {
    let o = parse_args()?;
    let env = regstore_test_support::s3_env().ok_or("the S3 test environment is not set")?;
    let (endpoint, bucket) = (env.endpoint.clone(), env.bucket.clone());
    let root = format!("soak-{}-{}/", o.seed, std::process::id());
    let direct = driver(&params(&env, &endpoint, &root))?;
    direct.ensure_bucket().await.map_err(|e| e.to_string())?;

    let proxy = FaultProxy::start(
        ProxyConfig::new(loopback_upstream(&endpoint)?)
            .with_faults(o.rate, o.seed)
            .with_stall(Duration::from_secs(6))
            .with_run_for(Duration::from_secs(o.seconds + 1800)),
    )
    .await
    .map_err(|e| format!("fault proxy: {e}"))?;
    let proxied = driver(
        &params(&env, &proxy.endpoint(), &root)
            .with("requesttimeout", "4s")
            .with("maxretries", "6")
            // A server that stops answering ends the soak within minutes, not hours.
            .with("operationtimeout", "60s"),
    )?;

    println!(
        "soak: {}s, {} workers, fault rate {:.2} (seed {}), objects 0-12 MiB, chunksize 5 MiB, \
         writes capped at {} MiB/s, root {bucket}/{root}",
        o.seconds, o.workers, o.rate, o.seed, o.write_mib_per_sec
    );
    let pool = Arc::new(Pool::new(o.seed));
    let tally = Arc::new(Tally::default());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(o.seconds);
    let budget = Arc::new(WriteBudget {
        started,
        bytes_per_sec: o.write_mib_per_sec * MIB as u64,
        granted: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for id in 0..o.workers {
        let w = Worker {
            id,
            budget: Arc::clone(&budget),
            driver: proxied.clone(),
            pool: Arc::clone(&pool),
            tally: Arc::clone(&tally),
            ledger: Arc::clone(&ledger),
            rng: Rng::new(o.seed.wrapping_mul(1000).wrapping_add(id as u64)),
            mine: Vec::new(),
            n: 0,
        };
        tasks.push(tokio::spawn(w.run(until)));
    }
    let mut panicked = 0;
    for t in tasks {
        if t.await.is_err() {
            panicked += 1;
        }
    }
    let ran = started.elapsed();

    // Final check without the proxy.
    let ledger = std::mem::take(&mut *ledger.lock().unwrap_or_else(|e| e.into_inner()));
    let (mut lost, mut corrupted, mut visible_cancelled, mut uncertain_bad) = (0, 0, 0, 0);
    let mut sorted: Vec<_> = ledger.committed.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (p, obj) in &sorted {
        match direct.get_content(p).await {
            Ok(b) if sha256(&b) == sha256(&pool.object(obj)) => {}
            Ok(b) => {
                eprintln!(
                    "soak: CORRUPTED {p}: {} bytes, expected {}",
                    b.len(),
                    obj.len
                );
                corrupted += 1;
            }
            Err(e) => {
                eprintln!("soak: LOST {p}: {e}");
                lost += 1;
            }
        }
    }
    for p in &ledger.cancelled {
        if direct.stat(p).await.is_ok() {
            eprintln!("soak: cancelled object {p} is visible");
            visible_cancelled += 1;
        }
    }
    let mut resurrected = 0;
    for p in &ledger.deleted {
        if direct.stat(p).await.is_ok() {
            eprintln!("soak: deleted object {p} is visible");
            resurrected += 1;
        }
    }
    for (p, obj) in &ledger.uncertain {
        match direct.get_content(p).await {
            Ok(b) if sha256(&b) != sha256(&pool.object(obj)) => {
                eprintln!("soak: failed write {p} left other bytes");
                uncertain_bad += 1;
            }
            _ => {}
        }
    }
    let leaked = direct
        .abort_uploads_under_root()
        .await
        .map_err(|e| format!("listing uploads: {e}"))? as u64;
    let stats = proxied.request_stats();
    let orphan_budget = stats.ambiguous_retries("CreateMultipartUpload");

    // Remove the soak's objects.
    for dir in direct.list(&StoragePath::root()).await.unwrap_or_default() {
        let _ = direct.delete(&dir).await;
    }

    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let counts = proxy.counts();
    let writes = t(&tally.put_content) + t(&tally.multipart) + t(&tally.resumed);
    println!("ran {:.1}s", ran.as_secs_f64());
    println!(
        "operations: {} writes committed (put_content {}, multipart writer {}, closed+resumed {}), \
         {} writers cancelled, {} writes failed; {} deletes ({} failed); {} reads ({} re-read after an error, {} failed 4 times); \
         {:.1} MiB written, {:.1} MiB read",
        writes,
        t(&tally.put_content),
        t(&tally.multipart),
        t(&tally.resumed),
        t(&tally.cancelled),
        t(&tally.write_errors),
        t(&tally.deletes),
        t(&tally.delete_errors),
        t(&tally.reads),
        t(&tally.read_retries),
        t(&tally.read_failures),
        t(&tally.bytes_written) as f64 / MIB as f64,
        t(&tally.bytes_read) as f64 / MIB as f64,
    );
    let by_kind: BTreeMap<&str, u64> = FaultKind::ALL
        .iter()
        .map(|k| (k.name(), counts.get(*k)))
        .collect();
    println!(
        "faults injected: {} of {} proxied requests {:?}",
        counts.faults(),
        counts.requests,
        by_kind
    );
    println!(
        "driver: {} HTTP requests, {} retries {:?}; {} ambiguous CreateMultipartUpload retries, \
         {} orphaned uploads aborted by the driver",
        stats.total(),
        stats.retries(),
        stats.retries_snapshot(),
        orphan_budget,
        stats.orphans_aborted()
    );
    println!(
        "verification: {} committed objects checked by SHA-256: {} corrupted, {} lost; \
         {} corrupted reads; {} cancelled and {} deleted objects visible; \
         {} failed writes with other bytes; \
         {} multipart uploads left, {} worker panics",
        sorted.len(),
        corrupted,
        lost,
        t(&tally.corrupted_reads),
        visible_cancelled,
        resurrected,
        uncertain_bad,
        leaked,
        panicked
    );
    let pass = corrupted == 0
        && lost == 0
        && t(&tally.corrupted_reads) == 0
        && visible_cancelled == 0
        && resurrected == 0
        && uncertain_bad == 0
        && leaked == 0
        && panicked == 0
        && writes > 0;
    println!("result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}
