//! The suite must catch broken drivers: each test wraps the in-memory backend with one
//! deliberate fault and checks that the cases aimed at that behaviour fail (and that a correct
//! backend passes them), so no case is a test that cannot fail.

use std::sync::Arc;

use regstore_driver_api::{
    async_trait, ByteStream, Bytes, Driver, Error, FileInfo, FileWriter, Result, StorageDriver,
    StoragePath,
};
use regstore_driver_conformance::{
    run_all, run_case, Capabilities, Fixture, Outcome, Suite, WalkOrder, CASES,
};
use regstore_driver_inmemory::InMemoryDriver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Delete by plain string prefix, the S3 bug: deleting `/a` also deletes `/ab`.
    PrefixDelete,
    /// Delete answers Ok and deletes nothing.
    NoopDelete,
    /// Reader ignores the offset.
    IgnoreOffset,
    /// Stat panics.
    PanicInStat,
    /// PathNotFound from get_content names another driver.
    ForeignNotFound,
    /// Writers report one byte more than they hold.
    SizeOffByOne,
    /// A missing source of a move is reported as success.
    MoveMissingOk,
}

#[derive(Debug)]
struct Faulty {
    inner: InMemoryDriver,
    fault: Fault,
}

#[derive(Debug)]
struct OffByOne(Box<dyn FileWriter>);

#[async_trait]
impl FileWriter for OffByOne {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.0.write(data).await
    }
    fn size(&self) -> u64 {
        self.0.size() + 1
    }
    async fn close(&mut self) -> Result<()> {
        self.0.close().await
    }
    async fn cancel(&mut self) -> Result<()> {
        self.0.cancel().await
    }
    async fn commit(&mut self) -> Result<()> {
        self.0.commit().await
    }
}

#[async_trait]
impl StorageDriver for Faulty {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        match self.inner.get_content(path).await {
            Err(Error::PathNotFound { path, .. }) if self.fault == Fault::ForeignNotFound => {
                Err(Error::not_found("someone-else", path))
            }
            r => r,
        }
    }
    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        self.inner.put_content(path, content).await
    }
    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        let offset = if self.fault == Fault::IgnoreOffset {
            0
        } else {
            offset
        };
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        let w = self.inner.writer(path, append).await?;
        Ok(if self.fault == Fault::SizeOffByOne {
            Box::new(OffByOne(w))
        } else {
            w
        })
    }
    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        if self.fault == Fault::PanicInStat {
            panic!("deliberate panic in stat");
        }
        self.inner.stat(path).await
    }
    async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
        self.inner.list(path).await
    }
    async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
        match self.inner.move_object(src, dst).await {
            Err(e) if e.is_not_found() && self.fault == Fault::MoveMissingOk => Ok(()),
            r => r,
        }
    }
    async fn delete(&self, path: &StoragePath) -> Result<()> {
        match self.fault {
            Fault::NoopDelete => Ok(()),
            Fault::PrefixDelete => {
                let parent = path.parent();
                let siblings = self.inner.list(&parent).await?;
                let mut any = false;
                for s in siblings {
                    if s.as_str().starts_with(path.as_str()) {
                        self.inner.delete(&s).await?;
                        any = true;
                    }
                }
                if any {
                    Ok(())
                } else {
                    Err(Error::not_found(self.name(), path.as_str()))
                }
            }
            _ => self.inner.delete(path).await,
        }
    }
}

fn suite(fault: Fault) -> Suite {
    Suite::new(move || async move {
        let backend: Arc<dyn StorageDriver> = Arc::new(Faulty {
            inner: InMemoryDriver::new(),
            fault,
        });
        Ok(Fixture::new(Driver::new(backend)))
    })
}

async fn expect_failed(fault: Fault, case: &str, needle: &str) {
    match run_case(&suite(fault), case).await {
        Outcome::Failed(m) => assert!(
            m.contains(needle),
            "{case} with {fault:?} failed, but the message lacks {needle:?}: {m}"
        ),
        other => panic!("{case} with {fault:?}: expected Failed, got {other:?}"),
    }
    assert_eq!(
        run_case(&suite(Fault::None), case).await,
        Outcome::Passed,
        "{case} must pass on the correct backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_delete_is_caught() {
    expect_failed(
        Fault::PrefixDelete,
        "delete_only_deletes_subpaths",
        "suffix",
    )
    .await;
    expect_failed(
        Fault::PrefixDelete,
        "delete_table",
        "delete(/folder1) also deleted /folder1-v2/file1",
    )
    .await;
    expect_failed(
        Fault::PrefixDelete,
        "stat_no_false_directory",
        "delete(/foo)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_delete_fails_the_clean_up_check() {
    expect_failed(Fault::NoopDelete, "delete", "expected PathNotFound").await;
    expect_failed(
        Fault::NoopDelete,
        "write_read_1",
        "did not clean up properly",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_offset_is_caught() {
    expect_failed(
        Fault::IgnoreOffset,
        "reader_with_offset",
        "first difference",
    )
    .await;
    expect_failed(Fault::IgnoreOffset, "reader_boundary_offsets", "reader(").await;
    expect_failed(
        Fault::IgnoreOffset,
        "concurrent_stream_reads",
        "content differs",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_panic_fails_only_that_case() {
    expect_failed(Fault::PanicInStat, "stat_call", "deliberate panic in stat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_must_name_the_driver() {
    expect_failed(Fault::ForeignNotFound, "read_nonexistent", "someone-else").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_sizes_are_checked() {
    expect_failed(Fault::SizeOffByOne, "continue_stream_append_small", "size").await;
    expect_failed(
        Fault::SizeOffByOne,
        "append_straddling_part_size",
        "resumed at 1",
    )
    .await;
    expect_failed(
        Fault::SizeOffByOne,
        "write_zero_byte_stream_then_append",
        "size",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_move_source_is_caught() {
    expect_failed(
        Fault::MoveMissingOk,
        "move_nonexistent",
        "expected PathNotFound",
    )
    .await;
    expect_failed(
        Fault::MoveMissingOk,
        "move_missing_source_keeps_destination",
        "expected PathNotFound",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_expectations_follow_the_declared_order() {
    let wrong = suite(Fault::None)
        .with_capabilities(Capabilities::default().with_walk_order(WalkOrder::KeyOrder));
    for case in [
        "walk_all",
        "walk_stop_early",
        "walk_start_after_hint_from_root",
    ] {
        assert!(
            run_case(&wrong, case).await.is_failed(),
            "{case} passed with the wrong walk order"
        );
    }
    let wrong = suite(Fault::None)
        .with_capabilities(Capabilities::default().with_walk_missing_is_not_found(false));
    assert!(run_case(&wrong, "walk_missing_dir").await.is_failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_expected_but_not_offered_fails() {
    let s =
        suite(Fault::None).with_capabilities(Capabilities::default().with_redirect(true, false));
    assert!(run_case(&s, "redirect_url").await.is_failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_case_is_skipped_not_passed_and_unknown_case_fails() {
    let s = suite(Fault::None).with_capabilities(Capabilities::default().with_large_streams(false));
    assert!(matches!(
        run_case(&s, "write_read_large_streams").await,
        Outcome::Skipped(_)
    ));
    assert!(run_case(&s, "no_such_case").await.is_failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_reports_every_selected_case_in_order() {
    let s = suite(Fault::None).with_capabilities(Capabilities::default().with_large_streams(false));
    let report = run_all(&s, Some("write_read")).await;
    let names: Vec<&str> = report.cases.iter().map(|c| c.name.as_str()).collect();
    let expected: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|n| n.contains("write_read"))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(report.driver, "inmemory");
    assert_eq!(report.skipped(), 1, "the 5 GiB case is skipped");
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.passed(), expected.len() - 1);
    let json = serde_json::to_value(&report).expect("report serialises");
    assert_eq!(json["cases"][0]["outcome"]["status"], "passed");
    assert!(json["cases"][0]["duration_secs"].is_f64());

    let broken = run_all(&suite(Fault::NoopDelete), Some("delete")).await;
    assert!(!broken.success());
}

/// A backend whose redirect URLs point at a tiny local HTTP server serving its objects, so the
/// redirect case's HTTP fetching is exercised for real.
#[derive(Debug)]
struct Redirecting {
    inner: InMemoryDriver,
    base: String,
}

#[async_trait]
impl StorageDriver for Redirecting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        self.inner.get_content(path).await
    }
    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        self.inner.put_content(path, content).await
    }
    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        self.inner.writer(path, append).await
    }
    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        self.inner.stat(path).await
    }
    async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
        self.inner.list(path).await
    }
    async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
        self.inner.move_object(src, dst).await
    }
    async fn delete(&self, path: &StoragePath) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn redirect_url(
        &self,
        request: &regstore_driver_api::RedirectRequest,
        path: &StoragePath,
    ) -> Result<Option<url::Url>> {
        use regstore_driver_api::RedirectMethod;
        if request.method == RedirectMethod::Other {
            return Ok(None);
        }
        url::Url::parse(&format!("{}{}", self.base, path.as_str()))
            .map(Some)
            .map_err(|e| Error::backend(self.name(), Some(path.as_str()), e))
    }
}

/// Serves GET/HEAD of `store`'s objects over HTTP/1.1 (one request per connection); with
/// `corrupt` the first byte served is flipped.
async fn serve(store: InMemoryDriver, corrupt: bool) -> String {
    serve_flaky(store, corrupt, Vec::new()).await.0
}

/// A failure the redirect server answers instead of the object.
#[derive(Debug, Clone, Copy)]
enum Flake {
    /// This status, empty body.
    Status(u16),
    /// The connection closed without any answer.
    Close,
    /// The head and half of the body, then the connection closed.
    Truncate,
    /// A normal answer.
    Pass,
}

/// [`serve`] that first answers the `script`'s failures, one per request, in order, and
/// counts the requests it receives.
async fn serve_flaky(
    store: InMemoryDriver,
    corrupt: bool,
    script: Vec<Flake>,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let script = Arc::new(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let store = store.clone();
            let counter = counter.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let mut parts = line.split(' ');
                let method = parts.next().unwrap_or("");
                let path = parts.next().unwrap_or("");
                let flake = script.get(counter.fetch_add(1, Ordering::SeqCst)).copied();
                match flake {
                    Some(Flake::Status(code)) => {
                        let r = format!(
                            "HTTP/1.1 {code} Flaky\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = sock.write_all(r.as_bytes()).await;
                        let _ = sock.shutdown().await;
                        return;
                    }
                    Some(Flake::Close) => return,
                    Some(Flake::Truncate | Flake::Pass) | None => {}
                }
                let body = match StoragePath::parse(path) {
                    Some(p) => store.get_content(&p).await.ok(),
                    None => None,
                };
                let response = match body {
                    Some(b) => {
                        let mut b = b.to_vec();
                        if corrupt {
                            if let Some(x) = b.first_mut() {
                                *x ^= 0xff;
                            }
                        }
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .into_bytes();
                        if method == "GET" {
                            r.extend_from_slice(&b);
                        }
                        if matches!(flake, Some(Flake::Truncate)) {
                            r.truncate(r.len() - b.len() / 2 - 1);
                        }
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), requests)
}

fn redirecting_suite(corrupt: bool) -> Suite {
    Suite::new(move || async move {
        let inner = InMemoryDriver::new();
        let base = serve(inner.clone(), corrupt).await;
        let backend: Arc<dyn StorageDriver> = Arc::new(Redirecting { inner, base });
        Ok(Fixture::new(Driver::new(backend)))
    })
    .with_capabilities(Capabilities::default().with_redirect(true, false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_urls_are_fetched_and_compared() {
    assert_eq!(
        run_case(&redirecting_suite(false), "redirect_url").await,
        Outcome::Passed
    );
    match run_case(&redirecting_suite(true), "redirect_url").await {
        Outcome::Failed(m) => assert!(m.contains("first difference at offset 0"), "{m}"),
        other => panic!("corrupted redirect content not caught: {other:?}"),
    }
    // A URL offered while the suite was told the backend does not redirect is a failure, not
    // a silent pass.
    let s = redirecting_suite(false).with_capabilities(Capabilities::default());
    assert!(run_case(&s, "redirect_url").await.is_failed());
}

/// A redirecting suite whose server first answers `script`'s failures, with `retries`
/// redirect retries, and the server's request counter.
fn flaky_suite(
    script: Vec<Flake>,
    retries: Option<u32>,
) -> (Suite, Arc<std::sync::atomic::AtomicUsize>) {
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let total = requests.clone();
    let mut caps = Capabilities::default().with_redirect(true, false);
    if let Some(n) = retries {
        caps = caps.with_redirect_retries(n);
    }
    let suite = Suite::new(move || {
        let script = script.clone();
        let total = total.clone();
        async move {
            let inner = InMemoryDriver::new();
            let (base, requests) = serve_flaky(inner.clone(), false, script).await;
            // The case runs once per suite here; hand its server's counter out.
            let backend: Arc<dyn StorageDriver> = Arc::new(Redirecting { inner, base });
            let fixture = Fixture::new(Driver::new(backend)).with_teardown(move || async move {
                total.store(
                    requests.load(std::sync::atomic::Ordering::SeqCst),
                    std::sync::atomic::Ordering::SeqCst,
                );
                Ok(())
            });
            Ok(fixture)
        }
    })
    .with_capabilities(caps);
    (suite, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_fetch_is_one_shot_by_default() {
    // Plain conformance runs must fail on a backend whose URLs fail, even transiently.
    for flake in [
        Flake::Status(503),
        Flake::Status(500),
        Flake::Close,
        Flake::Truncate,
    ] {
        let (s, requests) = flaky_suite(vec![flake], None);
        match run_case(&s, "redirect_url").await {
            Outcome::Failed(_) => {}
            other => panic!("{flake:?} with no retries configured: {other:?}"),
        }
        assert_eq!(
            requests.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{flake:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_fetch_retries_transient_failures_when_configured() {
    // GET: 503, reset, truncated body, 429, 500 — then the object; HEAD: fine.
    let script = vec![
        Flake::Status(503),
        Flake::Close,
        Flake::Truncate,
        Flake::Status(429),
        Flake::Status(500),
    ];
    let (s, requests) = flaky_suite(script, Some(5));
    assert_eq!(run_case(&s, "redirect_url").await, Outcome::Passed);
    // Five failed GETs, the good GET, the HEAD.
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 7);

    // HEAD failing transiently is retried too (the GET takes the first request).
    let (s, requests) = flaky_suite(
        vec![Flake::Pass, Flake::Truncate, Flake::Status(502)],
        Some(2),
    );
    assert_eq!(run_case(&s, "redirect_url").await, Outcome::Passed);
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_fetch_retries_are_bounded_and_never_cover_a_4xx() {
    // A 403 (bad signature) or 404 is the server's verdict: never retried.
    for code in [403, 404, 400] {
        let (s, requests) = flaky_suite(vec![Flake::Status(code)], Some(5));
        match run_case(&s, "redirect_url").await {
            Outcome::Failed(m) => assert!(m.contains(&format!("answered {code}")), "{m}"),
            other => panic!("{code} was not a failure: {other:?}"),
        }
        assert_eq!(
            requests.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{code}"
        );
    }
    // More transient failures than retries: fails after 1 + retries attempts.
    let (s, requests) = flaky_suite(vec![Flake::Close; 4], Some(2));
    match run_case(&s, "redirect_url").await {
        Outcome::Failed(m) => assert!(m.contains("after 3 attempts"), "{m}"),
        other => panic!("persistent failure passed: {other:?}"),
    }
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    // The configured count is capped.
    assert_eq!(
        Capabilities::default()
            .with_redirect_retries(1000)
            .redirect_retries,
        regstore_driver_conformance::MAX_REDIRECT_RETRIES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benches_measure_and_leave_the_store_empty() {
    use regstore_driver_conformance::bench::{run_benches, BenchOptions, BENCHES};
    let s = suite(Fault::None);
    let opts = BenchOptions::default().with_iterations(2);
    let ms = run_benches(&s, None, &opts).await.expect("benchmarks run");
    let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
    let expected: Vec<&str> = BENCHES
        .iter()
        .copied()
        .filter(|n| !n.ends_with("_1gib"))
        .collect();
    assert_eq!(names, expected);
    let one_mib = ms
        .iter()
        .find(|m| m.name == "put_get_1mib")
        .expect("1 MiB bench");
    assert_eq!(one_mib.ops, 2);
    assert_eq!(one_mib.bytes, 2 * 2 * 1024 * 1024);
    assert!(one_mib.mib_per_sec() > 0.0);
    let json = serde_json::to_value(one_mib).expect("measurement serialises");
    assert_eq!(json["bytes"], 4 * 1024 * 1024);
    assert!(json["mib_per_sec"].as_f64().is_some_and(|v| v > 0.0));
    let list = ms.iter().find(|m| m.name == "list_50").expect("list bench");
    assert_eq!((list.ops, list.bytes), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_runs_in_order_and_its_error_fails_the_case() {
    use std::sync::Mutex;
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let s = Suite::new(move || {
        let log = log2.clone();
        async move {
            let backend: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
            let (l1, l2) = (log.clone(), log.clone());
            Ok(Fixture::new(Driver::new(backend))
                .with_teardown(move || async move {
                    l1.lock().expect("log").push("first");
                    Ok(())
                })
                .with_teardown(move || async move {
                    l2.lock().expect("log").push("second");
                    Err(Error::backend("inmemory", None, "teardown broke"))
                }))
        }
    });
    match run_case(&s, "root_exists").await {
        Outcome::Failed(m) => assert!(m.contains("teardown broke"), "{m}"),
        other => panic!("teardown error not reported: {other:?}"),
    }
    assert_eq!(*log.lock().expect("log"), vec!["first", "second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_case_times_out() {
    #[derive(Debug)]
    struct Hang(InMemoryDriver);
    #[async_trait]
    impl StorageDriver for Hang {
        fn name(&self) -> &str {
            self.0.name()
        }
        async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
            self.0.get_content(path).await
        }
        async fn put_content(&self, _: &StoragePath, _: Bytes) -> Result<()> {
            futures::future::pending().await
        }
        async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
            self.0.reader(path, offset).await
        }
        async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
            self.0.writer(path, append).await
        }
        async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
            self.0.stat(path).await
        }
        async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
            self.0.list(path).await
        }
        async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
            self.0.move_object(src, dst).await
        }
        async fn delete(&self, path: &StoragePath) -> Result<()> {
            self.0.delete(path).await
        }
    }
    let s = Suite::new(|| async {
        let backend: Arc<dyn StorageDriver> = Arc::new(Hang(InMemoryDriver::new()));
        Ok(Fixture::new(Driver::new(backend)))
    })
    .with_capabilities(
        Capabilities::default().with_case_timeout(Some(std::time::Duration::from_millis(300))),
    );
    match run_case(&s, "write_read_1").await {
        Outcome::Failed(m) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("hang not reported: {other:?}"),
    }
}
