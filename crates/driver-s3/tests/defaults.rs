//! The size parameters at the driver's defaults, at their edges, against the server of
//! `REGSTORE_S3_*`: drivers built from connection parameters only (no `chunksize`,
//! `multipartcopythresholdsize`, `multipartcopychunksize`, `readchunksize`, `readconcurrency`),
//! as a registry's minimal `config.yml` gives them. The other tests pin small sizes to stay
//! fast; these check that the defaults themselves move and read objects whole, on the side of
//! each threshold the request counts say. `docs/s3.md` lists which test covers which default.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::TryStreamExt;
use regstore_driver_api::{StorageDriver, StoragePath};
use regstore_driver_s3::S3Driver;

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

/// Requests between two snapshots, by operation (only those made).
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).unwrap_or(&0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// A driver with every size parameter at its default, on a fresh root.
async fn default_driver(env: &common::Env, prefix: &str) -> S3Driver {
    env.driver_with(env.default_params(&format!("/{}/", common::unique(prefix))))
        .await
}

/// Moves an object of `size` bytes (a prefix of `data`) and returns the move's requests, after
/// checking that the destination holds exactly those bytes and the source is gone.
async fn move_and_check(env: &common::Env, data: Bytes, size: usize) -> Vec<(String, u64)> {
    let d = default_driver(env, "regstore-defmove-").await;
    let (src, dst) = (p("/mv/src"), p("/mv/dst"));
    let data = data.slice(..size);
    ok("put", d.put_content(&src, data.clone()).await);
    let before = d.request_stats().snapshot();
    ok("move", d.move_object(&src, &dst).await);
    let moved = delta(&before, &d.request_stats().snapshot());
    let got = ok("get", d.get_content(&dst).await);
    assert_eq!(got.len(), size, "size {size}: moved object's length");
    assert!(
        sha256(&got) == sha256(&data),
        "size {size}: moved content differs"
    );
    assert!(
        d.stat(&src).await.is_err_and(|e| e.is_not_found()),
        "size {size}: source still there after the move"
    );
    ok("delete", d.delete(&p("/mv")).await);
    common::cleanup(&d).await;
    moved
}

/// `multipartcopythresholdsize` and `multipartcopychunksize` at their 32 MiB defaults: objects
/// of threshold − 1 and threshold bytes move with one CopyObject, threshold + 1 with a
/// multipart copy of two parts (32 MiB and 1 byte); every move arrives intact (SHA-256).
#[tokio::test]
async fn move_at_default_multipart_copy_threshold() {
    let Some(env) = common::s3_env() else { return };
    let cfg = default_driver(&env, "regstore-defcfg-")
        .await
        .config()
        .clone();
    // distribution's defaults; if they ever change, this test must follow on purpose.
    assert_eq!(cfg.multipart_copy_threshold_size, 32 * MIB);
    assert_eq!(cfg.multipart_copy_chunk_size, 32 * MIB);
    let t = cfg.multipart_copy_threshold_size as usize;
    let data = Bytes::from(pattern(t + 1, 11));
    // Three drivers (own roots, own counters) at once: the three sizes cost one round of time.
    let (below, at, above) = tokio::join!(
        move_and_check(&env, data.clone(), t - 1),
        move_and_check(&env, data.clone(), t),
        move_and_check(&env, data.clone(), t + 1),
    );
    // Only the copy requests are checked: the source's delete (list + batch) is not at issue.
    let count = |moved: &[(String, u64)], op: &str| {
        moved.iter().find(|(o, _)| o == op).map_or(0, |(_, n)| *n)
    };
    for (what, moved) in [("threshold - 1", &below), ("threshold", &at)] {
        assert_eq!(count(moved, "CopyObject"), 1, "{what}: {moved:?}");
        assert_eq!(count(moved, "UploadPartCopy"), 0, "{what}: {moved:?}");
        assert_eq!(
            count(moved, "CreateMultipartUpload"),
            0,
            "{what}: {moved:?}"
        );
    }
    assert_eq!(count(&above, "CopyObject"), 0, "threshold + 1: {above:?}");
    assert_eq!(
        count(&above, "CreateMultipartUpload"),
        1,
        "threshold + 1: {above:?}"
    );
    assert_eq!(
        count(&above, "UploadPartCopy"),
        2,
        "threshold + 1: {above:?}"
    );
    assert_eq!(
        count(&above, "CompleteMultipartUpload"),
        1,
        "threshold + 1: {above:?}"
    );
}

/// `readchunksize` and `readconcurrency` at their defaults (8 MiB, 4): reads of chunk + 1,
/// chunk and chunk − 1 remaining bytes cost 2, 1 and 1 ranged GetObject, a read of
/// 4 × chunk + 1 (more parts than are fetched at once) costs 5, and each is byte-identical.
#[tokio::test]
async fn read_at_default_read_chunk_size() {
    let Some(env) = common::s3_env() else { return };
    let d = default_driver(&env, "regstore-defread-").await;
    assert_eq!(d.config().read_chunk_size, 8 * MIB);
    assert_eq!(d.config().read_concurrency, 4);
    let rc = d.config().read_chunk_size as usize;
    let stats = d.request_stats();
    let size = 4 * rc + 1;
    let data = pattern(size, 5);
    let path = p("/read/blob");
    ok("put", d.put_content(&path, Bytes::from(data.clone())).await);
    // Offsets leaving chunk + 1, chunk, chunk − 1 bytes, and the whole object.
    for (offset, gets) in [
        (size - rc - 1, 2),
        (size - rc, 1),
        (size - rc + 1, 1),
        (0, 5),
    ] {
        let before = stats.snapshot();
        let s = ok("reader", d.reader(&path, offset as u64).await);
        let chunks: Vec<Bytes> = ok("read", s.try_collect().await);
        let got = chunks.concat();
        let after = stats.snapshot();
        assert_eq!(got.len(), size - offset, "offset {offset}: length");
        assert!(
            sha256(&got) == sha256(&data[offset..]),
            "offset {offset}: content differs"
        );
        assert_eq!(
            delta(&before, &after),
            vec![("GetObject".to_owned(), gets)],
            "offset {offset}"
        );
    }
    ok("delete", d.delete(&p("/read")).await);
    common::cleanup(&d).await;
}
