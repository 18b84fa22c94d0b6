//! The concurrent part uploader (issue 6) against the server of `REGSTORE_S3_*`: parts upload
//! while the caller writes, yet the object is byte-exact, every non-final part is exactly
//! `chunksize`, `size` is exact at every moment, and close/append/commit see every part.

mod common;

use bytes::Bytes;
use futures::TryStreamExt;
use regstore_driver_api::{StorageDriver, StoragePath};

use common::MIB;

fn p(s: &str) -> StoragePath {
    match StoragePath::parse(s) {
        Some(p) => p,
        None => panic!("bad test path {s}"),
    }
}

fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Bytes that differ at every offset modulo 251, so a swapped or missing part shows.
fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 4099) as u8)
        .collect()
}

#[tokio::test]
async fn parts_upload_concurrently_and_the_object_is_exact() {
    let Some(env) = common::s3_env() else { return };
    let root = format!("/{}/", common::unique("regstore-wconc-"));
    let d = env
        .driver_with(env.params(&root).with("multipartuploadconcurrency", 3i64))
        .await;
    assert_eq!(d.config().multipart_upload_concurrency, 3);
    let stats = d.request_stats();
    let path = p("/blob");
    // 5 full 5 MiB parts + a 123-byte tail, written in 700 KiB pieces and a few tiny ones.
    let total = (5 * MIB) as usize * 5 + 123;
    let data = content(total);
    let before = stats.get("UploadPart");
    let mut w = ok("writer", d.writer(&path, false).await);
    let mut off = 0usize;
    let mut step = 0usize;
    while off < total {
        let n = if step % 7 == 3 { 17 } else { 700 * 1024 }.min(total - off);
        ok(
            "write",
            w.write(Bytes::copy_from_slice(&data[off..off + n])).await,
        );
        off += n;
        step += 1;
        assert_eq!(
            w.size(),
            off as u64,
            "size is exact while parts are in flight"
        );
    }
    ok("commit", w.commit().await);
    assert_eq!(
        stats.get("UploadPart") - before,
        6,
        "5 full parts and the tail"
    );
    let got: Vec<Bytes> = ok(
        "read",
        ok("reader", d.reader(&path, 0).await).try_collect().await,
    );
    let got: Vec<u8> = got.concat();
    assert_eq!(got.len(), total);
    assert!(got == data, "object content differs from what was written");
    common::cleanup(&d).await;
}

#[tokio::test]
async fn close_waits_for_parts_and_append_resumes_after_them() {
    let Some(env) = common::s3_env() else { return };
    let root = format!("/{}/", common::unique("regstore-wconc-"));
    let d = env
        .driver_with(env.params(&root).with("multipartuploadconcurrency", 4i64))
        .await;
    let path = p("/resumed");
    let first = (5 * MIB) as usize * 3; // exactly three parts, all in flight at close
    let data = content(first + (5 * MIB) as usize + 9);
    let mut w = ok("writer", d.writer(&path, false).await);
    ok(
        "write",
        w.write(Bytes::copy_from_slice(&data[..first])).await,
    );
    ok("close", w.close().await);
    drop(w);
    let mut w = ok("append", d.writer(&path, true).await);
    assert_eq!(
        w.size(),
        first as u64,
        "every part of the closed writer is found"
    );
    ok(
        "write",
        w.write(Bytes::copy_from_slice(&data[first..])).await,
    );
    ok("commit", w.commit().await);
    let got: Vec<Bytes> = ok(
        "read",
        ok("reader", d.reader(&path, 0).await).try_collect().await,
    );
    assert!(got.concat() == data, "resumed object differs");
    common::cleanup(&d).await;
}

#[test]
fn concurrency_parameter_is_validated() {
    let params = regstore_driver_api::Parameters::new()
        .with("bucket", "b")
        .with("region", "us-east-1")
        .with("multipartuploadconcurrency", 65i64);
    assert!(regstore_driver_s3::S3Config::from_parameters(&params).is_err());
}

/// Part uploads that fail: the failure surfaces (from a later `write` or from `commit`), the
/// writer takes no more bytes, and nothing appears at the path. The proxy accepts one
/// connection only (CreateMultipartUpload uses it) and the driver does not retry, so the part
/// uploads fail.
#[tokio::test]
async fn a_failed_part_poisons_the_writer_and_commit_fails() {
    use regstore_fault_proxy::{FaultProxy, ProxyConfig};
    let Some(env) = common::s3_env() else { return };
    let Some(upstream) = url_addr(&env.endpoint) else {
        common::unavailable::<()>(&format!(
            "the fault proxy forwards to a loopback address; {} is not one",
            env.endpoint
        ));
        return;
    };
    let root = format!("/{}/", common::unique("regstore-wconc-fail-"));
    let direct = env.driver_with(env.params(&root)).await;
    let proxy = ok(
        "fault proxy",
        FaultProxy::start(
            ProxyConfig::new(upstream)
                .with_max_connections(1)
                .with_run_for(std::time::Duration::from_secs(120)),
        )
        .await,
    );
    // Built directly (no bucket check) so the proxy's one connection is the upload's.
    let params = env
        .params(&root)
        .with("regionendpoint", proxy.endpoint())
        .with("maxretries", 0i64)
        .with("multipartuploadconcurrency", 4i64);
    let config = ok(
        "config",
        regstore_driver_s3::S3Config::from_parameters(&params),
    );
    let d = ok("driver", regstore_driver_s3::S3Driver::new(config));
    let path = p("/failing");
    let data = Bytes::from(content((5 * MIB) as usize * 5));
    let mut w = ok("writer", d.writer(&path, false).await);
    let mut failed = false;
    for piece in data.chunks(MIB as usize) {
        if w.write(data.slice_ref(piece)).await.is_err() {
            failed = true;
            break;
        }
    }
    if failed {
        assert!(
            w.write(Bytes::from_static(b"more")).await.is_err(),
            "a writer whose part failed must refuse further bytes"
        );
    }
    assert!(
        w.commit().await.is_err(),
        "commit must report the failed part"
    );
    assert!(
        w.write(Bytes::from_static(b"more")).await.is_err(),
        "the writer is over after a failed commit"
    );
    match direct.stat(&path).await {
        Err(regstore_driver_api::Error::PathNotFound { .. }) => {}
        other => panic!("nothing may appear at the path after a failed commit, got {other:?}"),
    }
    let _ = direct.abort_uploads_under_root().await;
    common::cleanup(&direct).await;
}

fn url_addr(endpoint: &str) -> Option<std::net::SocketAddr> {
    let rest = endpoint.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    let addr: std::net::SocketAddr = hostport.parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}
