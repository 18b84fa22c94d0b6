//! The S3 driver through the fault-injection proxy (`regstore-fault-proxy`) in front of a real
//! S3 server (RGW in the project's runs; environment as in `common`).
//!
//! * With resets, stalls, `503 SlowDown` and `500 InternalError` injected into a fifth of the
//!   requests, every operation still succeeds (the dispatcher retries) and every object reads
//!   back with the SHA-256 it was written with.
//! * With truncated answers injected, a read either returns exactly the stored bytes or fails:
//!   never short or wrong data.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use regstore_driver_api::{Error, StorageDriver, StoragePath};
use regstore_driver_s3::S3Driver;
use regstore_fault_proxy::{FaultKind, FaultProxy, ProxyConfig};

use common::{content, unique, Env, MIB};

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn path(s: &str) -> StoragePath {
    StoragePath::parse(s).unwrap_or_else(|| panic!("test path {s:?} is valid"))
}

/// A proxy injecting `kinds` into `rate` of the requests, and a driver on a fresh root going
/// through it with short timeouts and generous retries.
async fn through_proxy(
    env: &Env,
    rate: f64,
    kinds: &[FaultKind],
    seed: u64,
) -> Option<(FaultProxy, S3Driver)> {
    let upstream = env.upstream()?;
    // Create the bucket without faults, so set-up problems are not blamed on the proxy.
    env.driver().await;
    let proxy = FaultProxy::start(
        ProxyConfig::new(upstream)
            .with_faults(rate, seed)
            .with_kinds(kinds)
            .with_stall(Duration::from_secs(3))
            .with_run_for(Duration::from_secs(900)),
    )
    .await
    .unwrap_or_else(|e| panic!("fault proxy does not start: {e}"));
    let root = format!("/{}/", unique("regstore-faults-"));
    let params = env
        .params(&root)
        .with("regionendpoint", proxy.endpoint())
        .with("requesttimeout", "2s")
        .with("maxretries", "8");
    let driver = env.driver_with(params).await;
    Some((proxy, driver))
}

async fn read_all(
    driver: &S3Driver,
    p: &StoragePath,
    offset: u64,
) -> regstore_driver_api::Result<Vec<u8>> {
    let stream = driver.reader(p, offset).await?;
    let chunks: Vec<Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

async fn write_in_chunks(
    driver: &S3Driver,
    p: &StoragePath,
    data: &Bytes,
    append: bool,
) -> regstore_driver_api::Result<u64> {
    let mut w = driver.writer(p, append).await?;
    for chunk in data.chunks(MIB as usize) {
        w.write(data.slice_ref(chunk)).await?;
    }
    w.commit().await?;
    Ok(w.size())
}

#[tokio::test]
async fn operations_succeed_through_resets_stalls_and_server_errors() {
    let Some(env) = common::s3_env() else { return };
    let kinds = [
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::SlowDown,
        FaultKind::InternalError,
    ];
    let Some((proxy, driver)) = through_proxy(&env, 0.2, &kinds, 7).await else {
        return;
    };
    let sizes: [usize; 7] = [
        0,
        1,
        4096,
        300_000,
        5 * MIB as usize,
        5 * MIB as usize + 17,
        12 * MIB as usize,
    ];
    let mut expected = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let p = path(&format!("/dir/obj-{i}"));
        let data = content(i as u64, len);
        if i % 2 == 0 {
            driver
                .put_content(&p, data.clone())
                .await
                .unwrap_or_else(|e| panic!("put_content {p} ({len} bytes): {e}"));
        } else {
            let size = write_in_chunks(&driver, &p, &data, false)
                .await
                .unwrap_or_else(|e| panic!("writer {p} ({len} bytes): {e}"));
            assert_eq!(size, len as u64, "{p}");
        }
        expected.push((p, data));
    }

    // A resumed upload: close after 6 MiB (one full part and a tail), append 3 MiB more.
    let resumed = path("/dir/resumed");
    let whole = content(99, 9 * MIB as usize);
    let mut w = driver.writer(&resumed, false).await.expect("writer opens");
    w.write(whole.slice(..6 * MIB as usize))
        .await
        .expect("first half accepted");
    w.close().await.expect("close keeps the upload");
    let mut w = driver.writer(&resumed, true).await.expect("append resumes");
    assert_eq!(w.size(), 6 * MIB, "resumed size");
    w.write(whole.slice(6 * MIB as usize..))
        .await
        .expect("second half accepted");
    w.commit().await.expect("commit after resume");
    expected.push((resumed, whole));

    for (p, data) in &expected {
        let got = driver
            .get_content(p)
            .await
            .unwrap_or_else(|e| panic!("get_content {p}: {e}"));
        assert_eq!(sha256(&got), sha256(data), "{p}: SHA-256 of get_content");
        let offset = data.len() as u64 / 2;
        let tail = read_all(&driver, p, offset)
            .await
            .unwrap_or_else(|e| panic!("reader {p} at {offset}: {e}"));
        assert_eq!(
            sha256(&tail),
            sha256(&data[offset as usize..]),
            "{p}: SHA-256 of reader from {offset}"
        );
        let info = driver
            .stat(p)
            .await
            .unwrap_or_else(|e| panic!("stat {p}: {e}"));
        assert_eq!(info.size, data.len() as u64, "{p}: stat size");
    }

    let listed: BTreeSet<String> = driver
        .list(&path("/dir"))
        .await
        .expect("list")
        .iter()
        .map(|p| p.to_string())
        .collect();
    let want: BTreeSet<String> = expected.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(listed, want);

    let moved = path("/other/moved");
    driver
        .move_object(&expected[3].0, &moved)
        .await
        .expect("move");
    let got = driver
        .get_content(&moved)
        .await
        .expect("moved object reads");
    assert_eq!(sha256(&got), sha256(&expected[3].1));

    driver.delete(&path("/dir")).await.expect("delete dir");
    driver.delete(&path("/other")).await.expect("delete other");
    match driver.list(&StoragePath::root()).await {
        Ok(left) => assert!(left.is_empty(), "left after delete: {left:?}"),
        Err(e) => panic!("list root after delete: {e}"),
    }

    let stats = driver.request_stats();
    let counts = proxy.counts();
    println!(
        "requests {} faults {} (reset {} stall {} slowdown {} internal {}) retries {} {:?}",
        counts.requests,
        counts.faults(),
        counts.reset,
        counts.stalled,
        counts.slow_down,
        counts.internal_error,
        stats.retries(),
        stats.retries_snapshot()
    );
    assert!(counts.faults() >= 5, "too few faults injected: {counts:?}");
    assert!(stats.retries() >= counts.slow_down + counts.internal_error);
    // A reset CreateMultipartUpload may have created an upload nobody knows; nothing else
    // may be left behind.
    let leaked = driver
        .abort_uploads_under_root()
        .await
        .expect("list uploads");
    assert!(
        leaked as u64 <= stats.ambiguous_retries("CreateMultipartUpload"),
        "{leaked} uploads left, only {} ambiguous CreateMultipartUpload retries",
        stats.ambiguous_retries("CreateMultipartUpload")
    );
}

#[tokio::test]
async fn truncated_answers_never_yield_wrong_bytes() {
    let Some(env) = common::s3_env() else { return };
    let Some((proxy, proxied)) = through_proxy(&env, 0.3, &[FaultKind::Truncate], 11).await else {
        return;
    };
    // Write directly (same root, no proxy) so the reference bytes are certain.
    let root = proxied.config().root_directory.clone();
    let direct = env.driver_with(env.params(&format!("/{root}"))).await;
    let objects: Vec<(StoragePath, Bytes)> = [(0usize, 200_000usize), (1, 3 * MIB as usize)]
        .into_iter()
        .map(|(i, len)| (path(&format!("/t/obj-{i}")), content(1000 + i as u64, len)))
        .collect();
    for (p, data) in &objects {
        direct
            .put_content(p, data.clone())
            .await
            .expect("direct put");
    }

    let (mut ok, mut failed) = (0, 0);
    for round in 0..20 {
        for (p, data) in &objects {
            let got = if round % 2 == 0 {
                proxied.get_content(p).await.map(|b| b.to_vec())
            } else {
                read_all(&proxied, p, 0).await
            };
            match got {
                Ok(bytes) => {
                    assert_eq!(
                        bytes.len(),
                        data.len(),
                        "{p}: a successful read is complete"
                    );
                    assert_eq!(
                        sha256(&bytes),
                        sha256(data),
                        "{p}: a successful read is exact"
                    );
                    ok += 1;
                }
                Err(e) => {
                    assert!(
                        matches!(e, Error::Backend { .. }),
                        "{p}: a truncated body is a backend error, got {e:?}"
                    );
                    failed += 1;
                }
            }
        }
    }
    // Listings and stats are read whole by the dispatcher, so truncation is retried away.
    for _ in 0..10 {
        let listed = proxied.list(&path("/t")).await.expect("list is retried");
        assert_eq!(listed.len(), 2);
    }
    let counts = proxy.counts();
    println!(
        "reads ok {ok} failed {failed}; truncated {} of {} requests; retries {}",
        counts.truncated,
        counts.requests,
        proxied.request_stats().retries()
    );
    assert!(counts.truncated > 0, "no truncation injected: {counts:?}");
    assert!(ok > 0, "no read succeeded");
    direct.delete(&path("/t")).await.expect("cleanup");
}
