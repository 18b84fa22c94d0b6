//! Parallel ranged reads (`readconcurrency`, `readchunksize`) and the pipelined delete, against
//! the server of `REGSTORE_S3_*`, with request counts from `S3Driver::request_stats()`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::{Driver, Error, StorageDriver, StoragePath};
use regstore_driver_s3::{ObjectChanged, S3Driver};
use regstore_fault_proxy::{FaultKind, FaultProxy, ProxyConfig};

use common::MIB;

fn p(s: &str) -> StoragePath {
    match StoragePath::parse_dir(s) {
        Some(p) => p,
        None => panic!("bad test path {s}"),
    }
}

/// Bytes that differ at every offset of a part (so a misplaced part cannot compare equal).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Requests made by `f`, by operation (only those made).
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).unwrap_or(&0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// A driver reading in parts of 1 MiB, `concurrency` at once.
async fn reading_driver(env: &common::Env, concurrency: u64) -> S3Driver {
    env.driver_with(
        env.params(&format!("/{}/", common::unique("regstore-pread-")))
            .with("readconcurrency", concurrency.to_string())
            .with("readchunksize", MIB.to_string()),
    )
    .await
}

async fn read_from(d: &S3Driver, path: &StoragePath, offset: u64) -> Result<Vec<u8>, Error> {
    let s = d.reader(path, offset).await?;
    let chunks: Vec<Bytes> = s.try_collect().await?;
    Ok(chunks.concat())
}

/// A 4 MiB + 12345-byte object read with parts of 1 MiB, three at once, from offsets on,
/// next to and between part boundaries: every read is byte-identical to the written object
/// and costs one GetObject per part from the offset (one for a small object, one 416 past
/// the end).
#[tokio::test]
async fn parallel_read_across_part_boundaries() {
    let Some(env) = common::s3_env() else { return };
    let d = reading_driver(&env, 3).await;
    let size = 4 * MIB as usize + 12_345;
    let data = pattern(size, 7);
    let path = p("/pread/blob");
    ok("put", d.put_content(&path, Bytes::from(data.clone())).await);
    let stats = d.request_stats();
    let m = MIB as usize;
    for offset in [
        0,
        1,
        m - 1,
        m,
        m + 1,
        2 * m + 5,
        4 * m,
        size - 1,
        size,
        size + 10,
    ] {
        let before = stats.snapshot();
        let got = ok("read", read_from(&d, &path, offset as u64).await);
        let after = stats.snapshot();
        let want = data.get(offset..).unwrap_or_default();
        assert!(
            got == want,
            "offset {offset}: read {} bytes, want {} (first difference at {:?})",
            got.len(),
            want.len(),
            got.iter().zip(want).position(|(a, b)| a != b)
        );
        let parts = size.saturating_sub(offset).div_ceil(m).max(1) as u64;
        assert_eq!(
            delta(&before, &after),
            vec![("GetObject".to_owned(), parts)],
            "offset {offset}"
        );
    }
    // A small object: exactly one GetObject.
    let small = p("/pread/small");
    ok(
        "put small",
        d.put_content(&small, Bytes::from_static(b"tiny")).await,
    );
    let before = stats.snapshot();
    assert_eq!(ok("read small", read_from(&d, &small, 0).await), b"tiny");
    assert_eq!(
        delta(&before, &stats.snapshot()),
        vec![("GetObject".to_owned(), 1)]
    );
    // `readconcurrency` 1 is one plain GetObject however large the object.
    let single = env
        .driver_with(
            env.params(d.config().root_directory.as_str())
                .with("readconcurrency", "1"),
        )
        .await;
    let before = single.request_stats().snapshot();
    assert!(ok("read single", read_from(&single, &path, 3).await) == data[3..]);
    assert_eq!(
        delta(&before, &single.request_stats().snapshot()),
        vec![("GetObject".to_owned(), 1)]
    );
    // Dropping a reader mid-object is fine and the driver keeps working.
    let mut s = ok("reader", d.reader(&path, 0).await);
    let first = ok("first chunk", s.next().await.transpose()).unwrap_or_default();
    assert!(!first.is_empty() && data.starts_with(&first));
    drop(s);
    assert!(ok("read again", read_from(&d, &path, m as u64).await) == data[m..]);
    common::cleanup(&d).await;
}

/// Overwriting the object while a parallel read is at its first part: the parts fetched after
/// the overwrite carry `If-Match` on the old ETag, so the read ends with `ObjectChanged`
/// naming the path, and everything it yielded is a prefix of the old content (never bytes of
/// the new one).
#[tokio::test]
async fn overwrite_during_parallel_read_is_object_changed() {
    let Some(env) = common::s3_env() else { return };
    let d = reading_driver(&env, 2).await;
    let size = 6 * MIB as usize;
    let old = pattern(size, 1);
    let new = pattern(size, 99);
    let path = p("/pread/changing");
    ok("put", d.put_content(&path, Bytes::from(old.clone())).await);
    let mut s = ok("reader", d.reader(&path, 0).await);
    let mut got = ok("first chunk", s.next().await.transpose())
        .unwrap_or_default()
        .to_vec();
    ok("overwrite", d.put_content(&path, Bytes::from(new)).await);
    let mut failure = None;
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(b) => got.extend_from_slice(&b),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.unwrap_or_else(|| panic!("read of a changed object succeeded"));
    assert!(got.len() < size, "read {} bytes", got.len());
    assert!(
        got == old[..got.len()],
        "bytes of the new version were yielded"
    );
    let changed = match &e {
        Error::Backend { source, path, .. } => {
            assert_eq!(path.as_deref(), Some("/pread/changing"));
            source.downcast_ref::<ObjectChanged>().cloned()
        }
        other => panic!("unexpected error {other:?}"),
    };
    let changed = changed.unwrap_or_else(|| panic!("not ObjectChanged: {e}"));
    assert_eq!(changed.path, "/pread/changing");
    assert!(e.to_string().contains("/pread/changing"), "{e}");
    // A new read sees the new version whole.
    assert!(ok("re-read", read_from(&d, &path, 0).await) == pattern(size, 99));
    common::cleanup(&d).await;
}

/// Deleting 2100 objects (three pages) with listing and DeleteObjects overlapped: exactly
/// three ListObjectsV2 and three DeleteObjects, nothing left, and the neighbours `/pipe-x/keep`
/// and `/pipex` (same key prefix, not sub-paths) untouched.
#[tokio::test]
async fn pipelined_delete_counts_and_siblings() {
    let Some(env) = common::s3_env() else { return };
    let d = env
        .driver_with(env.params(&format!("/{}/", common::unique("regstore-pdel-"))))
        .await;
    let drv = Driver::new(common::dyn_driver(&d));
    let mut paths: Vec<String> = (0..2100)
        .map(|i| format!("/pipe/d{}/file{i}", i % 7))
        .collect();
    paths.push("/pipe-x/keep".to_owned());
    paths.push("/pipex".to_owned());
    futures::stream::iter(paths)
        .map(|path| {
            let drv = drv.clone();
            async move { drv.put_content(&path, &b"content"[..]).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    let stats = d.request_stats();
    let before = stats.snapshot();
    ok("delete", d.delete(&p("/pipe")).await);
    let del = delta(&before, &stats.snapshot());
    println!("delete of 2100 files: {del:?}");
    // The prefix `…/pipe` also lists `/pipe-x/keep` and `/pipex`: 2102 keys, three pages.
    assert_eq!(
        del,
        vec![
            ("DeleteObjects".to_owned(), 3),
            ("ListObjectsV2".to_owned(), 3)
        ]
    );
    assert!(d.stat(&p("/pipe")).await.is_err_and(|e| e.is_not_found()));
    assert_eq!(ok("stat keep", d.stat(&p("/pipe-x/keep")).await).size, 7);
    assert_eq!(ok("stat pipex", d.stat(&p("/pipex")).await).size, 7);
    // Deleting what is gone is PathNotFound after one listing.
    let before = stats.snapshot();
    assert!(d.delete(&p("/pipe")).await.is_err_and(|e| e.is_not_found()));
    assert_eq!(
        delta(&before, &stats.snapshot()),
        vec![("ListObjectsV2".to_owned(), 1)]
    );
    common::cleanup(&d).await;
}

/// Parallel reads through the fault proxy (truncated bodies, resets, 503s on 30 % of the
/// requests): the dispatcher retries failed part requests and resumes broken part bodies with
/// a ranged `If-Match` GET inside the part, so every read returns exactly the stored bytes
/// (SHA-256) from every offset.
#[tokio::test]
async fn parallel_read_through_faults_is_exact() {
    let Some(env) = common::s3_env() else { return };
    let Some(upstream) = env.upstream() else {
        return;
    };
    let root = format!("/{}/", common::unique("regstore-pread-faults-"));
    // Reference bytes written directly, without the proxy.
    let direct = env.driver_with(env.params(&root)).await;
    let size = 5 * MIB as usize + 333;
    let data = pattern(size, 42);
    let path = p("/faults/blob");
    ok(
        "direct put",
        direct.put_content(&path, Bytes::from(data.clone())).await,
    );
    let proxy = FaultProxy::start(
        ProxyConfig::new(upstream)
            .with_faults(0.3, 5)
            .with_kinds(&[FaultKind::Truncate, FaultKind::Reset, FaultKind::SlowDown])
            .with_stall(Duration::from_secs(1))
            .with_run_for(Duration::from_secs(600)),
    )
    .await
    .unwrap_or_else(|e| panic!("fault proxy does not start: {e}"));
    let proxied = env
        .driver_with(
            env.params(&root)
                .with("regionendpoint", proxy.endpoint())
                .with("readconcurrency", "3")
                .with("readchunksize", MIB.to_string())
                .with("requesttimeout", "5s")
                .with("maxretries", "10"),
        )
        .await;
    let m = MIB as usize;
    for round in 0..3 {
        for offset in [0, 1, m - 1, m + 7, 3 * m, size - 2] {
            let got = read_from(&proxied, &path, offset as u64)
                .await
                .unwrap_or_else(|e| panic!("round {round}: read from {offset}: {e}"));
            assert_eq!(got.len(), size - offset, "round {round}: offset {offset}");
            assert_eq!(
                sha256(&got),
                sha256(&data[offset..]),
                "round {round}: offset {offset}: SHA-256"
            );
        }
    }
    let counts = proxy.counts();
    let stats = proxied.request_stats();
    println!(
        "requests {} truncated {} reset {} slowdown {}; GetObject {} retries {:?}",
        counts.requests,
        counts.truncated,
        counts.reset,
        counts.slow_down,
        stats.get("GetObject"),
        stats.retries_snapshot()
    );
    assert!(counts.truncated > 0, "no truncation injected: {counts:?}");
    assert!(stats.retries() > 0, "nothing was retried or resumed");
    common::cleanup(&direct).await;
}
