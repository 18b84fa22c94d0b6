//! One scenario for one client, run in a child process of its own so that the process's peak
//! RSS (read by the parent from `wait4`) belongs to that scenario alone.
//!
//! The child prints one JSON line: the [`Phase`]s it timed. Set-up that is not part of a
//! measurement (creating the 10,000 objects of a walk) happens before the clock starts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::path::Path as OsPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, WriteMultipart};
use regstore_driver_api::{Parameters, StorageDriver, StoragePath, WalkControl, WalkOptions};
use regstore_driver_s3::{S3Config, S3Driver};
use serde::{Deserialize, Serialize};

use crate::data;

/// Connection settings and tuning shared by every client of a run.
#[derive(Clone)]
pub struct Setup {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub bucket: String,
    /// Part size of multipart uploads, for both libraries.
    pub chunk_size: u64,
    /// Parts in flight per upload, for both libraries.
    pub concurrency: usize,
    /// Extra regstore driver parameters (`key=value`).
    pub driver_params: Vec<(String, String)>,
    /// object_store with `UNSIGNED-PAYLOAD` instead of its default SHA-256 of every body
    /// (regstore's streamed part bodies are sent unsigned; see docs/benchmarks.md).
    pub os_unsigned_payload: bool,
    pub seed: u64,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("chunk_size", &self.chunk_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Setup {
    /// Reads `REGSTORE_S3_ENDPOINT`, `…_ACCESS_KEY`, `…_SECRET_KEY`, `…_REGION`, `…_BUCKET`.
    pub fn from_env(
        chunk_size: u64,
        concurrency: usize,
        driver_params: Vec<(String, String)>,
        os_unsigned_payload: bool,
    ) -> Result<Setup> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    anyhow!("{k} is not set (run through `cargo xtask bench-s3`)")
                })
        };
        Ok(Setup {
            endpoint: var("REGSTORE_S3_ENDPOINT")?,
            access_key: var("REGSTORE_S3_ACCESS_KEY")?,
            secret_key: var("REGSTORE_S3_SECRET_KEY")?,
            region: var("REGSTORE_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
            bucket: var("REGSTORE_S3_BUCKET")?,
            chunk_size,
            concurrency,
            driver_params,
            os_unsigned_payload,
            seed: 0x05ee_d0fb_17e5,
        })
    }

    /// regstore's S3 driver, rooted at the bucket's top so keys match object_store's.
    pub fn regstore(&self) -> Result<S3Driver> {
        let mut p = Parameters::new()
            .with("regionendpoint", self.endpoint.as_str())
            .with("accesskey", self.access_key.as_str())
            .with("secretkey", self.secret_key.as_str())
            .with("region", self.region.as_str())
            .with("bucket", self.bucket.as_str())
            .with("forcepathstyle", "true")
            .with("v4auth", "true")
            .with("chunksize", self.chunk_size.to_string());
        for (k, v) in &self.driver_params {
            p.insert(k.as_str(), v.as_str());
        }
        let config = S3Config::from_parameters(&p).map_err(|e| anyhow!("driver config: {e}"))?;
        S3Driver::new(config).map_err(|e| anyhow!("driver: {e}"))
    }

    /// object_store's S3 backend as a Rust user would configure it for this server, with a
    /// request counter in its HTTP client.
    pub fn object_store(&self, counts: Counts) -> Result<AmazonS3> {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_region(&self.region)
            .with_bucket_name(&self.bucket)
            .with_unsigned_payload(self.os_unsigned_payload)
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .with_http_connector(CountingConnector { counts })
            .build()
            .context("object_store S3 builder")
    }
}

/// One timed phase of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    /// Scenario name (`stream-write`, `small-put`, …).
    pub name: String,
    pub secs: f64,
    /// Payload bytes moved by the phase (0 for metadata operations).
    pub bytes: u64,
    /// Operations done (objects written, read, listed, deleted).
    pub ops: u64,
    /// HTTP requests by S3 operation, `None` if the client cannot count them.
    pub requests: Option<BTreeMap<String, u64>>,
    /// CPU time (user + system, all threads) the client process spent in the phase: what the
    /// library costs, unlike `secs` mostly independent of the server and the machine's load.
    #[serde(default)]
    pub cpu_secs: f64,
}

/// When a phase started: wall clock and the process's CPU time.
#[derive(Clone, Copy)]
pub(crate) struct Start {
    wall: Instant,
    cpu: f64,
}

impl Start {
    pub(crate) fn now() -> Start {
        Start {
            wall: Instant::now(),
            cpu: cpu_secs(),
        }
    }

    /// The phase that started here and ends now.
    pub(crate) fn finish(
        self,
        name: &str,
        bytes: u64,
        ops: u64,
        requests: BTreeMap<String, u64>,
    ) -> Phase {
        Phase {
            name: name.into(),
            secs: self.wall.elapsed().as_secs_f64(),
            cpu_secs: cpu_secs() - self.cpu,
            bytes,
            ops,
            requests: Some(requests),
        }
    }
}

/// User + system CPU seconds of this process so far (all threads).
fn cpu_secs() -> f64 {
    // SAFETY: rusage is a plain C struct for which all-zero bytes are a valid value, and
    // getrusage only writes into the one out-pointer we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Request counts of object_store, classified by method, query and copy header.
pub type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

#[derive(Debug)]
struct CountingConnector {
    counts: Counts,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService {
            inner,
            counts: self.counts.clone(),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    counts: Counts,
}

#[async_trait::async_trait]
impl HttpService for CountingService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let query = req.uri().query().unwrap_or("");
        let has = |k: &str| {
            query
                .split('&')
                .any(|p| p == k || p.starts_with(&format!("{k}=")))
        };
        let copy = req.headers().contains_key("x-amz-copy-source");
        let op = match req.method().as_str() {
            "PUT" if has("partNumber") && copy => "UploadPartCopy",
            "PUT" if has("partNumber") => "UploadPart",
            "PUT" if copy => "CopyObject",
            "PUT" => "PutObject",
            "POST" if has("uploads") => "CreateMultipartUpload",
            "POST" if has("uploadId") => "CompleteMultipartUpload",
            "POST" if has("delete") => "DeleteObjects",
            "GET" if has("list-type") => "ListObjectsV2",
            "GET" => "GetObject",
            "HEAD" => "HeadObject",
            "DELETE" if has("uploadId") => "AbortMultipartUpload",
            "DELETE" => "DeleteObject",
            _ => "Other",
        };
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(op.to_owned()).or_default() += 1;
        }
        self.inner.execute(req).await
    }
}

/// Requests between two snapshots (operations with none left out).
pub(crate) fn diff(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// What a child is asked to do.
#[derive(Debug, Clone)]
pub struct Task {
    pub client: String,
    pub scenario: String,
    /// Key prefix of this client in this repetition (`bench/<run>/<rep>/<client>`).
    pub prefix: String,
    pub size: u64,
    pub small_count: usize,
    pub small_size: usize,
    pub small_inflight: usize,
    pub walk_count: usize,
    /// Time limit of one attempt of the resumed-upload scenario.
    pub attempt_timeout: std::time::Duration,
    /// Check the stored object's SHA-256 after the upload scenarios.
    pub verify: bool,
}

fn spath(s: &str) -> Result<StoragePath> {
    StoragePath::parse(s).ok_or_else(|| anyhow!("invalid storage path {s}"))
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> anyhow::Error {
    move |e| anyhow!("{what}: {e}")
}

/// Runs `task` and returns its phases.
pub async fn run(setup: &Setup, task: &Task) -> Result<Vec<Phase>> {
    match task.client.as_str() {
        "regstore" => run_regstore(setup, task).await,
        "object_store" => run_object_store(setup, task).await,
        other => bail!("unknown client {other}"),
    }
}

/// Keys of the walk tree: 100 directories of `count / 100` files (a registry's layout is
/// nested, so the walk has directories to report too).
fn tree_keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{prefix}/tree/d{:03}/f{:05}", i % 100, i))
        .collect()
}

async fn run_regstore(setup: &Setup, task: &Task) -> Result<Vec<Phase>> {
    let d = setup.regstore()?;
    let stats = d.request_stats();
    let big = spath(&format!("/{}/big", task.prefix))?;
    let mut phases = Vec::new();
    let mut phase = |name: &str, t: Start, bytes: u64, ops: u64, before: &BTreeMap<String, u64>| {
        phases.push(t.finish(name, bytes, ops, diff(&stats.snapshot(), before)))
    };
    match task.scenario.as_str() {
        "stream-write" => {
            let before = stats.snapshot();
            let t = Start::now();
            let mut w = d.writer(&big, false).await.map_err(err("writer"))?;
            for (i, len) in data::pieces(task.size) {
                w.write(data::piece(setup.seed, i, len))
                    .await
                    .map_err(err("write"))?;
            }
            w.commit().await.map_err(err("commit"))?;
            phase("stream-write", t, task.size, 1, &before);
        }
        "stream-read" => {
            let before = stats.snapshot();
            let t = Start::now();
            let mut s = d.reader(&big, 0).await.map_err(err("reader"))?;
            let mut n = 0u64;
            while let Some(chunk) = s.next().await {
                n += chunk.map_err(err("read"))?.len() as u64;
            }
            if n != task.size {
                bail!("read {n} bytes, expected {}", task.size);
            }
            phase("stream-read", t, n, 1, &before);
        }
        "move" => {
            let dst = spath(&format!("/{}/moved", task.prefix))?;
            let before = stats.snapshot();
            let t = Start::now();
            d.move_object(&big, &dst).await.map_err(err("move"))?;
            phase("move", t, task.size, 1, &before);
        }
        "small" => {
            let keys: Vec<StoragePath> = (0..task.small_count)
                .map(|i| spath(&format!("/{}/small/{i:05}", task.prefix)))
                .collect::<Result<_>>()?;
            let body = data::piece(setup.seed, 1 << 40, task.small_size);
            let before = stats.snapshot();
            let t = Start::now();
            futures::stream::iter(keys.iter())
                .map(|k| d.put_content(k, body.clone()))
                .buffer_unordered(task.small_inflight)
                .try_collect::<Vec<()>>()
                .await
                .map_err(err("put_content"))?;
            let n = task.small_count as u64;
            phase("small-put", t, n * task.small_size as u64, n, &before);
            let before = stats.snapshot();
            let t = Start::now();
            let got: Vec<Bytes> = futures::stream::iter(keys.iter())
                .map(|k| d.get_content(k))
                .buffer_unordered(task.small_inflight)
                .try_collect()
                .await
                .map_err(err("get_content"))?;
            if got.iter().any(|b| b.len() != task.small_size) {
                bail!("a small object came back with the wrong size");
            }
            phase("small-get", t, n * task.small_size as u64, n, &before);
        }
        "upload-fresh" | "upload-resumed" => {
            let p = crate::resumed::run(
                &d,
                &task.scenario,
                &task.prefix,
                setup.seed,
                task.attempt_timeout,
                task.verify,
            )
            .await?;
            phases.push(p);
        }
        "walk-delete" => {
            let tree = spath(&format!("/{}/tree", task.prefix))?;
            let keys = tree_keys(&task.prefix, task.walk_count);
            // Set-up, not measured: create the objects.
            futures::stream::iter(keys.iter())
                .map(|k| {
                    let d = &d;
                    async move {
                        d.put_content(&spath(&format!("/{k}"))?, Bytes::from_static(b"x"))
                            .await
                            .map_err(err("set-up put"))
                    }
                })
                .buffer_unordered(64)
                .try_collect::<Vec<()>>()
                .await?;
            let before = stats.snapshot();
            let t = Start::now();
            let mut files = 0u64;
            d.walk(&tree, &WalkOptions::default(), &mut |fi| {
                if !fi.is_dir {
                    files += 1;
                }
                Ok(WalkControl::Continue)
            })
            .await
            .map_err(err("walk"))?;
            if files != task.walk_count as u64 {
                bail!("walk saw {files} files, expected {}", task.walk_count);
            }
            phase("walk", t, 0, files, &before);
            let before = stats.snapshot();
            let t = Start::now();
            d.delete(&tree).await.map_err(err("delete"))?;
            phase("delete", t, 0, files, &before);
        }
        other => bail!("unknown scenario {other}"),
    }
    Ok(phases)
}

async fn run_object_store(setup: &Setup, task: &Task) -> Result<Vec<Phase>> {
    let counts: Counts = Arc::default();
    let s = setup.object_store(counts.clone())?;
    let snap = || counts.lock().map(|c| c.clone()).unwrap_or_default();
    let big = OsPath::from(format!("{}/big", task.prefix));
    let mut phases = Vec::new();
    let mut phase = |name: &str, t: Start, bytes: u64, ops: u64, before: &BTreeMap<String, u64>| {
        let after = counts.lock().map(|c| c.clone()).unwrap_or_default();
        phases.push(t.finish(name, bytes, ops, diff(&after, before)))
    };
    match task.scenario.as_str() {
        "stream-write" => {
            let before = snap();
            let t = Start::now();
            let upload = s.put_multipart(&big).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, setup.chunk_size as usize);
            for (i, len) in data::pieces(task.size) {
                // Back-pressure the way object_store's docs advise: at most `concurrency`
                // parts in flight, then hand over the piece without copying it.
                w.wait_for_capacity(setup.concurrency).await?;
                w.put(data::piece(setup.seed, i, len));
            }
            w.finish().await?;
            phase("stream-write", t, task.size, 1, &before);
        }
        "stream-read" => {
            let before = snap();
            let t = Start::now();
            let mut st = s.get(&big).await?.into_stream();
            let mut n = 0u64;
            while let Some(chunk) = st.next().await {
                n += chunk?.len() as u64;
            }
            if n != task.size {
                bail!("read {n} bytes, expected {}", task.size);
            }
            phase("stream-read", t, n, 1, &before);
        }
        "move" => {
            let dst = OsPath::from(format!("{}/moved", task.prefix));
            let before = snap();
            let t = Start::now();
            s.rename(&big, &dst).await?;
            phase("move", t, task.size, 1, &before);
        }
        "small" => {
            let keys: Vec<OsPath> = (0..task.small_count)
                .map(|i| OsPath::from(format!("{}/small/{i:05}", task.prefix)))
                .collect();
            let body = data::piece(setup.seed, 1 << 40, task.small_size);
            let before = snap();
            let t = Start::now();
            futures::stream::iter(keys.iter())
                .map(|k| s.put(k, PutPayload::from_bytes(body.clone())))
                .buffer_unordered(task.small_inflight)
                .try_collect::<Vec<_>>()
                .await?;
            let n = task.small_count as u64;
            phase("small-put", t, n * task.small_size as u64, n, &before);
            let before = snap();
            let t = Start::now();
            let got: Vec<Bytes> = futures::stream::iter(keys.iter())
                .map(|k| async { s.get(k).await?.bytes().await })
                .buffer_unordered(task.small_inflight)
                .try_collect()
                .await?;
            if got.iter().any(|b| b.len() != task.small_size) {
                bail!("a small object came back with the wrong size");
            }
            phase("small-get", t, n * task.small_size as u64, n, &before);
        }
        "walk-delete" => {
            let keys = tree_keys(&task.prefix, task.walk_count);
            futures::stream::iter(keys.iter())
                .map(|k| {
                    let s = &s;
                    async move {
                        s.put(&OsPath::from(k.as_str()), PutPayload::from_static(b"x"))
                            .await
                    }
                })
                .buffer_unordered(64)
                .try_collect::<Vec<_>>()
                .await?;
            let tree = OsPath::from(format!("{}/tree", task.prefix));
            let before = snap();
            let t = Start::now();
            let files = s
                .list(Some(&tree))
                .try_fold(0u64, |n, _| async move { Ok(n + 1) })
                .await?;
            if files != task.walk_count as u64 {
                bail!("list saw {files} objects, expected {}", task.walk_count);
            }
            phase("walk", t, 0, files, &before);
            let before = snap();
            let t = Start::now();
            let locations = s.list(Some(&tree)).map_ok(|m| m.location).boxed();
            let deleted = s
                .delete_stream(locations)
                .try_fold(0u64, |n, _| async move { Ok(n + 1) })
                .await?;
            phase("delete", t, 0, deleted, &before);
        }
        other => bail!("unknown scenario {other}"),
    }
    Ok(phases)
}
