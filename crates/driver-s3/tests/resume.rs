//! Resuming writers at the part sizes users run, against the server of `REGSTORE_S3_*`.
//!
//! A registry handles a chunked push by opening `writer(path, append = true)` per chunk,
//! copying the body in 32 KiB writes and closing. At the default `chunksize` (10 MiB) a chunk
//! that closed between 5 MiB and the part size used to make every later write re-base the
//! upload (complete, create, copy, delete), turning a 27 MiB push into minutes. These tests
//! close at every edge around the minimum part size and the part size, resume, write 20 MiB
//! in 32 KiB writes and commit, and check the bytes and the requests the driver sent: no
//! re-base for uploads regstore made, exactly one for uploads with a short last part made by
//! another client (as distribution's Go driver leaves them).
//!
//! Without a configured server every test prints `skipped: …` and returns; under `CI` they
//! fail.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use regstore_driver_api::{FileWriter, StorageDriver, StoragePath};
use regstore_driver_s3::test_support::S3DriverTestExt as _;
use regstore_driver_s3::S3Driver;
use sha2::{Digest, Sha256};

use common::MIB;

/// distribution's default `chunksize`.
const DEFAULT_CHUNK: u64 = 10 * MIB;
/// What a registry writes per call (io.Copy's buffer).
const WRITE: usize = 32 * 1024;
/// Bytes the resumed writer adds.
const MORE: usize = 20 * MIB as usize;

fn content(seed: u64, len: usize) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

async fn write_in_32k(w: &mut dyn FileWriter, data: &Bytes) {
    for start in (0..data.len()).step_by(WRITE) {
        let end = (start + WRITE).min(data.len());
        if let Err(e) = w.write(data.slice(start..end)).await {
            panic!("write at {start}: {e}");
        }
    }
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A driver on a fresh root with `chunksize` `chunk`.
async fn driver(env: &common::Env, chunk: u64) -> S3Driver {
    let root = format!("/{}/", common::unique("regstore-resume-"));
    env.driver_with(env.params(&root).with("chunksize", chunk.to_string()))
        .await
}

/// Checks the committed object and that nothing is left: no upload, no tail record.
async fn assert_committed(driver: &S3Driver, p: &StoragePath, expected: &[u8]) {
    let got = driver
        .get_content(p)
        .await
        .unwrap_or_else(|e| panic!("get_content {p}: {e}"));
    assert_eq!(got.len(), expected.len(), "length of {p}");
    assert_eq!(hex_sha256(&got), hex_sha256(expected), "SHA-256 of {p}");
    let uploads = driver
        .list_incomplete_uploads(&StoragePath::root())
        .await
        .unwrap_or_else(|e| panic!("list uploads: {e}"));
    assert!(uploads.is_empty(), "uploads left: {uploads:?}");
    let tails = driver
        .writer_tail_keys()
        .await
        .unwrap_or_else(|e| panic!("list tail records: {e}"));
    assert!(tails.is_empty(), "tail records left: {tails:?}");
}

/// The reproduction at the default part size, for closed sizes at every edge.
#[test]
fn resume_after_a_close_at_any_size_never_rebases() {
    let Some(env) = common::s3_env() else { return };
    let m = MIB as usize;
    let closed_sizes = [
        0,
        1,
        3 * m,
        5 * m - 1,
        5 * m,
        5 * m + 1,
        7 * m,
        10 * m - 1,
        10 * m,
        10 * m + 1,
        20 * m + 5,
    ];
    runtime().block_on(async {
        for (i, &closed) in closed_sizes.iter().enumerate() {
            let driver = driver(&env, DEFAULT_CHUNK).await;
            let p = StoragePath::parse("/repo/_uploads/u/data").expect("path");
            let first = content(i as u64 + 1, closed);
            let more = content(i as u64 + 100, MORE);
            let started = Instant::now();
            let mut w = driver.writer(&p, false).await.expect("writer");
            write_in_32k(w.as_mut(), &first).await;
            w.close().await.expect("close");
            assert_eq!(w.size(), closed as u64, "size after close");
            drop(w);
            // Nothing is visible at the path before commit.
            assert!(driver.stat(&p).await.is_err(), "{p} visible after close");
            let before = driver.request_stats().snapshot();
            let resumed = tokio::time::timeout(Duration::from_secs(120), async {
                let mut w = driver.writer(&p, true).await.expect("writer(append)");
                assert_eq!(w.size(), closed as u64, "size after resume");
                write_in_32k(w.as_mut(), &more).await;
                assert_eq!(w.size(), (closed + MORE) as u64, "size after writes");
                w.commit().await.expect("commit");
            })
            .await;
            assert!(
                resumed.is_ok(),
                "closed at {closed}: resume took over 120 s"
            );
            let stats = driver.request_stats();
            let sent = |op: &str| stats.get(op) - before.get(op).copied().unwrap_or(0);
            println!(
                "closed at {closed:>9}: {:.2} s, resumed writer sent {:?}",
                started.elapsed().as_secs_f64(),
                stats.snapshot()
            );
            assert_eq!(sent("CompleteMultipartUpload"), 1, "closed at {closed}");
            assert_eq!(sent("UploadPartCopy"), 0, "closed at {closed}");
            assert_eq!(sent("CreateMultipartUpload"), 0, "closed at {closed}");
            // Every part of the object not uploaded before the close, each sent once.
            let chunk = DEFAULT_CHUNK as usize;
            let parts = (closed + MORE).div_ceil(chunk) - closed / chunk;
            assert_eq!(sent("UploadPart"), parts as u64, "closed at {closed}");
            assert_committed(&driver, &p, &[first, more].concat()).await;
            common::cleanup(&driver).await;
        }
    });
}

/// The tail record keeps committed content in place until `commit`, and `cancel` leaves it.
#[test]
fn content_committed_before_the_writer_stays_until_commit() {
    let Some(env) = common::s3_env() else { return };
    runtime().block_on(async {
        let driver = driver(&env, DEFAULT_CHUNK).await;
        let p = StoragePath::parse("/a/data").expect("path");
        let old = content(7, 1234);
        driver.put_content(&p, old.clone()).await.expect("put");
        for commit in [false, true] {
            let mut w = driver.writer(&p, false).await.expect("writer");
            write_in_32k(w.as_mut(), &content(8, 7 * MIB as usize)).await;
            w.close().await.expect("close");
            let mut w = driver.writer(&p, true).await.expect("writer(append)");
            let new = content(9, MORE);
            write_in_32k(w.as_mut(), &new).await;
            assert_eq!(driver.get_content(&p).await.expect("get"), old);
            if commit {
                w.commit().await.expect("commit");
                let all = [content(8, 7 * MIB as usize), new].concat();
                assert_committed(&driver, &p, &all).await;
            } else {
                w.cancel().await.expect("cancel");
                assert_committed(&driver, &p, &old).await;
            }
        }
        common::cleanup(&driver).await;
    });
}

/// An upload left by another client with a short last part (what distribution's Go driver
/// leaves at `close`) or unequal parts is re-based once, then goes on in full parts.
#[test]
fn a_foreign_upload_with_a_short_last_part_rebases_once() {
    let Some(env) = common::s3_env() else { return };
    let m = MIB as usize;
    let layouts: [&[usize]; 4] = [
        &[3 * m],
        &[10 * m, 3 * m],
        &[10 * m, 10 * m, 7 * m],
        &[6 * m, 7 * m + 1],
    ];
    runtime().block_on(async {
        for (i, layout) in layouts.iter().enumerate() {
            let driver = driver(&env, DEFAULT_CHUNK).await;
            let p = StoragePath::parse("/repo/_uploads/go/data").expect("path");
            let key = driver.url_key(&p);
            let parts: Vec<Bytes> = layout
                .iter()
                .enumerate()
                .map(|(n, &len)| content((i * 10 + n) as u64 + 1, len))
                .collect();
            foreign::leave_upload(&env, &key, &parts).await;
            let closed: usize = layout.iter().sum();
            let more = content(99, MORE);
            let before = driver.request_stats().snapshot();
            let mut w = driver.writer(&p, true).await.expect("writer(append)");
            assert_eq!(w.size(), closed as u64, "size of the foreign upload");
            write_in_32k(w.as_mut(), &more).await;
            w.commit().await.expect("commit");
            let stats = driver.request_stats();
            let sent = |op: &str| stats.get(op) - before.get(op).copied().unwrap_or(0);
            println!("foreign parts {layout:?}: {:?}", stats.snapshot());
            // One completion for the re-base, one for the commit: never more.
            assert_eq!(sent("CompleteMultipartUpload"), 2, "{layout:?}");
            assert_eq!(sent("CreateMultipartUpload"), 1, "{layout:?}");
            let full = closed / DEFAULT_CHUNK as usize;
            assert_eq!(sent("UploadPartCopy"), full as u64, "{layout:?}");
            let mut expected = parts.concat();
            expected.extend_from_slice(&more);
            assert_committed(&driver, &p, &expected).await;
            common::cleanup(&driver).await;
        }
    });
}

/// A record whose upload was aborted behind the driver's back (a lifecycle rule) is found and
/// deleted by `delete_orphan_tail_records`; a live upload's record is kept.
#[test]
fn orphaned_tail_records_are_deleted_live_ones_kept() {
    let Some(env) = common::s3_env() else { return };
    runtime().block_on(async {
        let driver = driver(&env, DEFAULT_CHUNK).await;
        let (a, b) = (
            StoragePath::parse("/a/data").expect("path"),
            StoragePath::parse("/b/data").expect("path"),
        );
        for p in [&a, &b] {
            let mut w = driver.writer(p, false).await.expect("writer");
            write_in_32k(w.as_mut(), &content(3, 3 * MIB as usize)).await;
            w.close().await.expect("close");
        }
        assert_eq!(driver.writer_tail_keys().await.expect("records").len(), 2);
        let uploads = driver
            .list_incomplete_uploads(&a)
            .await
            .expect("list uploads");
        assert_eq!(uploads.len(), 1);
        foreign::abort_upload(&env, &uploads[0].key, &uploads[0].upload_id).await;
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            driver
                .delete_orphan_tail_records(hour)
                .await
                .expect("orphans"),
            0
        );
        assert_eq!(
            driver
                .delete_orphan_tail_records(None)
                .await
                .expect("orphans"),
            1
        );
        assert_eq!(driver.writer_tail_keys().await.expect("records").len(), 1);
        // The live upload still resumes with its bytes.
        let w = driver.writer(&b, true).await.expect("writer(append)");
        assert_eq!(w.size(), 3 * MIB);
        drop(w);
        common::cleanup(&driver).await;
        assert!(driver.writer_tail_keys().await.expect("records").is_empty());
    });
}

/// Another S3 client (rusoto_s3 with its own signer), standing in for distribution's driver.
mod foreign {
    use bytes::Bytes;
    use rusoto_core::{credential::StaticProvider, HttpClient, Region};
    use rusoto_s3::{
        AbortMultipartUploadRequest, CreateMultipartUploadRequest, S3Client, UploadPartRequest,
        S3 as _,
    };

    fn client(env: &super::common::Env) -> S3Client {
        S3Client::new_with(
            HttpClient::new().expect("http client"),
            StaticProvider::new_minimal(env.access_key.clone(), env.secret_key.clone()),
            Region::Custom {
                name: env.region.clone(),
                endpoint: env.endpoint.clone(),
            },
        )
    }

    /// Aborts an upload as a bucket lifecycle rule would: without the driver.
    pub async fn abort_upload(env: &super::common::Env, key: &str, upload_id: &str) {
        client(env)
            .abort_multipart_upload(AbortMultipartUploadRequest {
                bucket: env.bucket.clone(),
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
                ..Default::default()
            })
            .await
            .expect("AbortMultipartUpload");
    }

    /// Starts an upload of `key` with `parts` and leaves it open.
    pub async fn leave_upload(env: &super::common::Env, key: &str, parts: &[Bytes]) {
        let client = client(env);
        let id = client
            .create_multipart_upload(CreateMultipartUploadRequest {
                bucket: env.bucket.clone(),
                key: key.to_owned(),
                ..Default::default()
            })
            .await
            .expect("CreateMultipartUpload")
            .upload_id
            .expect("upload id");
        for (n, data) in parts.iter().enumerate() {
            client
                .upload_part(UploadPartRequest {
                    bucket: env.bucket.clone(),
                    key: key.to_owned(),
                    upload_id: id.clone(),
                    part_number: n as i64 + 1,
                    content_length: Some(data.len() as i64),
                    body: Some(data.to_vec().into()),
                    ..Default::default()
                })
                .await
                .expect("UploadPart");
        }
    }
}
