//! S3 behaviour the generic conformance suite does not cover (distribution's `s3_test.go`
//! tests that are not in the suite, plus request-count and error-hygiene checks), against the
//! server of `REGSTORE_S3_*`.

mod common;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::{Driver, StorageDriver, StoragePath, WalkControl, WalkOptions};
use regstore_driver_s3::test_support::S3DriverTestExt;
use regstore_driver_s3::{S3Config, S3Driver};

use common::MIB;

fn p(s: &str) -> StoragePath {
    match StoragePath::parse_dir(s) {
        Some(p) => p,
        None => panic!("bad test path {s}"),
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// distribution's TestEmptyRootList: drivers with root `""` and `"/"` list the bucket root
/// and every entry is a valid absolute path (the prefixed driver's root shows up as one).
#[tokio::test]
async fn empty_root_list() {
    let Some(env) = common::s3_env() else { return };
    let root = common::unique("regstore-emptyroot-");
    let rooted = env.driver_with(env.params(&format!("/{root}/"))).await;
    ok(
        "put",
        rooted
            .put_content(&p("/test"), Bytes::from_static(b"data"))
            .await,
    );
    for empty in ["", "/"] {
        let d = env.driver_with(env.params(empty)).await;
        let entries = ok("list /", d.list(&StoragePath::root()).await);
        assert!(
            entries.iter().any(|e| e.as_str() == format!("/{root}")),
            "root {empty:?}: /{root} missing from {} entries",
            entries.len()
        );
        for e in &entries {
            assert!(StoragePath::is_valid(e.as_str()), "invalid path {e:?}");
        }
        let fi = ok("stat", d.stat(&p(&format!("/{root}/test"))).await);
        assert_eq!(fi.size, 4);
    }
    ok("delete", rooted.delete(&p("/test")).await);
    common::cleanup(&rooted).await;
}

/// distribution's TestStorageClass: what the driver writes is what S3 reports (STANDARD is
/// reported as absent by AWS; some servers name it). Classes this RGW knows: STANDARD,
/// REDUCED_REDUNDANCY, STANDARD_IA; NONE sends no header.
#[tokio::test]
async fn storage_class() {
    let Some(env) = common::s3_env() else { return };
    let root = format!("/{}/", common::unique("regstore-class-"));
    for class in ["NONE", "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA"] {
        let d = env
            .driver_with(env.params(&root).with("storageclass", class))
            .await;
        let path = p(&format!("/class/{}", class.to_lowercase()));
        ok("put", d.put_content(&path, Bytes::from_static(b"x")).await);
        let got = ok("inspect", d.inspect_object(&path).await).storage_class;
        match class {
            "NONE" => {}
            "STANDARD" => assert!(
                got.is_none() || got.as_deref() == Some("STANDARD"),
                "STANDARD object reports {got:?}"
            ),
            other => assert_eq!(got.as_deref(), Some(other), "class of {path}"),
        }
        ok("get", d.get_content(&path).await);
    }
    let d = env.driver_with(env.params(&root)).await;
    ok("delete", d.delete(&p("/class")).await);
    common::cleanup(&d).await;
}

/// distribution's TestWalkEmptyUploadsDir: an empty folder-marker key (`…/_uploads/`, as
/// left by other tools) is never reported as a file or as a path with an empty base name;
/// the directory it names is reported, and List does not show the marker as a child.
#[tokio::test]
async fn walk_empty_uploads_dir() {
    let Some(env) = common::s3_env() else { return };
    let d = env
        .driver_with(env.params(&format!("/{}/", common::unique("s3walktest-"))))
        .await;
    let base = "docker/registry/v2/repositories/testimg";
    ok(
        "marker",
        d.put_raw_key(&format!("{base}/_uploads/"), Bytes::new())
            .await,
    );
    ok(
        "file",
        d.put_raw_key(
            &format!("{base}/_layers/sha256/abc/link"),
            Bytes::from_static(b"l"),
        )
        .await,
    );
    let mut seen = Vec::new();
    let mut f = |fi: &regstore_driver_api::FileInfo| {
        seen.push((fi.path.to_string(), fi.is_dir));
        Ok(WalkControl::Continue)
    };
    ok(
        "walk",
        d.walk(&p("/docker/registry/v2"), &WalkOptions::default(), &mut f)
            .await,
    );
    assert!(!seen.is_empty());
    for (path, _) in &seen {
        assert!(
            !path.ends_with('/') && !path.is_empty(),
            "bad entry {path:?}"
        );
    }
    let uploads = format!("/{base}/_uploads");
    assert!(
        seen.contains(&(uploads.clone(), true)),
        "{uploads} not reported as a directory: {seen:?}"
    );
    assert!(!seen.contains(&(uploads.clone(), false)));
    // List of the marker's directory: the marker is not its own child.
    match d.list(&p(&uploads)).await {
        Err(e) if e.is_not_found() => {}
        other => panic!("list({uploads}) = {other:?}, expected PathNotFound"),
    }
    ok("delete", d.delete(&p("/docker")).await);
    common::cleanup(&d).await;
}

/// distribution's TestMoveWithMultipartCopy with a low threshold: a 12 MiB object moves by
/// three UploadPartCopy calls (5 + 5 + 2 MiB), arrives intact, and the source is gone.
#[tokio::test]
async fn move_with_multipart_copy() {
    let Some(env) = common::s3_env() else { return };
    let params = env
        .params(&format!("/{}/", common::unique("regstore-mpcopy-")))
        .with("multipartcopythresholdsize", (5 * MIB).to_string())
        .with("multipartcopychunksize", (5 * MIB).to_string())
        .with("multipartcopymaxconcurrency", "2");
    let d = env.driver_with(params).await;
    let data = Bytes::from(pattern(12 * MIB as usize, 7));
    ok("put", d.put_content(&p("/mp/src"), data.clone()).await);
    let before = d.request_stats().snapshot();
    ok("move", d.move_object(&p("/mp/src"), &p("/mp/dst")).await);
    let after = d.request_stats().snapshot();
    let delta = |op: &str| after.get(op).unwrap_or(&0) - before.get(op).unwrap_or(&0);
    assert_eq!(delta("UploadPartCopy"), 3, "requests: {after:?}");
    assert_eq!(delta("CopyObject"), 0);
    assert_eq!(delta("CompleteMultipartUpload"), 1);
    let got = ok("get", d.get_content(&p("/mp/dst")).await);
    assert!(got == data, "moved content differs ({} bytes)", got.len());
    assert!(d
        .get_content(&p("/mp/src"))
        .await
        .is_err_and(|e| e.is_not_found()));
    ok("delete", d.delete(&p("/mp")).await);
    common::cleanup(&d).await;
}

/// Request counts of the two operations whose cost matters most: a 12 MiB writer (three
/// 5 MiB-bounded parts, and its tail record) and deleting a directory of 1005 files (two pages, two batches).
#[tokio::test]
async fn request_counts() {
    let Some(env) = common::s3_env() else { return };
    let d = env
        .driver_with(env.params(&format!("/{}/", common::unique("regstore-count-"))))
        .await;
    let stats = d.request_stats();

    let before = stats.snapshot();
    let mut w = ok("writer", d.writer(&p("/count/blob"), false).await);
    for i in 0..12u8 {
        ok(
            "write",
            w.write(Bytes::from(pattern(MIB as usize, i))).await,
        );
    }
    ok("commit", w.commit().await);
    ok("close", w.close().await);
    let after = stats.snapshot();
    let write: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).unwrap_or(&0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    println!("12 MiB write: {write:?}");
    assert_eq!(
        write,
        vec![
            ("CompleteMultipartUpload".to_owned(), 1),
            ("CreateMultipartUpload".to_owned(), 1),
            // The empty tail record stored before the first part (so a crash resumes exactly
            // at the start) and its removal at commit.
            ("DeleteObject".to_owned(), 1),
            ("PutObject".to_owned(), 1),
            ("UploadPart".to_owned(), 3),
        ]
    );
    ok("delete blob", d.delete(&p("/count")).await);

    let drv = Driver::new(common::dyn_driver(&d));
    futures::stream::iter(0..1005)
        .map(|i| {
            let drv = drv.clone();
            async move {
                drv.put_content(&format!("/many/file{i}"), &b"content"[..])
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    let before = stats.snapshot();
    ok("delete 1005", d.delete(&p("/many")).await);
    let after = stats.snapshot();
    let del: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).unwrap_or(&0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    println!("delete of 1005 files: {del:?}");
    assert_eq!(
        del,
        vec![
            ("DeleteObjects".to_owned(), 2),
            ("ListObjectsV2".to_owned(), 2)
        ]
    );
    match d.list(&p("/many")).await {
        Err(e) if e.is_not_found() => {}
        other => panic!("after delete: {other:?}"),
    }
    common::cleanup(&d).await;
}

/// A writer closed on a short tail and resumed keeps writing with the configured SSE-KMS key
/// (distribution re-creates the upload without the key id). RGW knows `testkey-1`.
#[tokio::test]
async fn resume_short_tail_keeps_kms_key() {
    let Some(env) = common::s3_env() else { return };
    if env.server != "rgw" && env.server != "moto" {
        println!("skipped: SSE-KMS needs a server with KMS keys (REGSTORE_S3_SERVER=rgw|moto)");
        return;
    }
    let params = env
        .params(&format!("/{}/", common::unique("regstore-kms-")))
        .with("encrypt", "true")
        .with("keyid", "testkey-1");
    let d = env.driver_with(params).await;
    let path = p("/kms/blob");
    let a = pattern(MIB as usize, 1);
    let b = pattern(MIB as usize, 2);
    let mut w = ok("writer", d.writer(&path, false).await);
    ok("write", w.write(Bytes::from(a.clone())).await);
    ok("close", w.close().await);
    let mut w = ok("resume", d.writer(&path, true).await);
    assert_eq!(w.size(), MIB);
    ok("write", w.write(Bytes::from(b.clone())).await);
    ok("commit", w.commit().await);
    ok("close", w.close().await);
    assert_eq!(w.size(), 2 * MIB);
    let got = ok("get", d.get_content(&path).await);
    assert!(got.len() == a.len() + b.len() && got[..a.len()] == a[..] && got[a.len()..] == b[..]);
    let info = ok("inspect", d.inspect_object(&path).await);
    assert_eq!(info.sse.as_deref(), Some("aws:kms"), "{info:?}");
    assert!(
        info.kms_key_id
            .as_deref()
            .is_some_and(|k| k.ends_with("testkey-1")),
        "KMS key id lost: {info:?}"
    );
    ok("delete", d.delete(&p("/kms")).await);
    common::cleanup(&d).await;
}

/// Stat of a partial component is never a directory (#3620), and a resumed writer on a path
/// with nothing to resume is `PathNotFound`; with committed content, `AppendToCommitted`.
#[tokio::test]
async fn stat_and_append_edges() {
    let Some(env) = common::s3_env() else { return };
    let d = env
        .driver_with(env.params(&format!("/{}/", common::unique("regstore-edges-"))))
        .await;
    ok(
        "put",
        d.put_content(&p("/ab/cd/x"), Bytes::from_static(b"x"))
            .await,
    );
    assert!(d.stat(&p("/ab/c")).await.is_err_and(|e| e.is_not_found()));
    assert!(ok("stat dir", d.stat(&p("/ab/cd")).await).is_dir);
    assert!(ok("stat dir", d.stat(&p("/ab")).await).is_dir);
    let root = ok("stat /", d.stat(&StoragePath::root()).await);
    assert!(root.is_dir);
    match d.writer(&p("/ab/none"), true).await {
        Err(e) if e.is_not_found() => {}
        other => panic!("append to missing: {other:?}"),
    }
    match d.writer(&p("/ab/cd/x"), true).await {
        Err(regstore_driver_api::Error::AppendToCommitted { size: 1, .. }) => {}
        other => panic!("append to committed: {other:?}"),
    }
    ok("delete", d.delete(&p("/ab")).await);
    common::cleanup(&d).await;
}

/// A wrong secret gives a Backend error naming the operation and S3's code, never the keys.
#[tokio::test]
async fn auth_errors_do_not_leak_credentials() {
    let Some(env) = common::s3_env() else { return };
    if env.server != "rgw" {
        println!("skipped: needs a server that verifies signatures (REGSTORE_S3_SERVER=rgw)");
        return;
    }
    let secret = "NOT-THE-SECRET-0123456789";
    let params = env
        .params(&format!("/{}/", common::unique("regstore-auth-")))
        .with("secretkey", secret);
    let config = ok("config", S3Config::from_parameters(&params));
    let d = ok("driver", S3Driver::new(config));
    let err = match d.put_content(&p("/x"), Bytes::from_static(b"x")).await {
        Ok(()) => panic!("a wrong secret was accepted"),
        Err(e) => e,
    };
    let text = format!("{err} {err:?}");
    assert!(text.contains("PutObject"), "{text}");
    assert!(
        text.contains("SignatureDoesNotMatch") || text.contains("403"),
        "{text}"
    );
    assert!(!text.contains(secret), "secret in error: {text}");
    assert!(!text.contains("Signature="), "signature in error: {text}");
}

/// A network failure is an error, not a missing path: stat must not fall back to listing and
/// report `PathNotFound` when S3 never answered. Needs no server.
#[tokio::test]
async fn network_errors_are_not_not_found() {
    let params = regstore_driver_api::Parameters::new()
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        .with("regionendpoint", "http://127.0.0.1:9")
        .with("accesskey", "AKIDEXAMPLE")
        .with("secretkey", "SECRETEXAMPLE")
        .with("region", "us-east-1")
        .with("bucket", "nowhere")
        .with("forcepathstyle", "true");
    let config = ok("config", S3Config::from_parameters(&params));
    let d = ok("driver", S3Driver::new(config));
    for r in [
        d.stat(&p("/a")).await.map(|_| ()),
        d.get_content(&p("/a")).await.map(|_| ()),
        d.delete(&p("/a")).await,
        d.list(&p("/a")).await.map(|_| ()),
    ] {
        match r {
            Err(e) => {
                assert!(!e.is_not_found(), "network failure reported as {e}");
                assert_eq!(e.driver(), Some("s3aws"));
            }
            Ok(()) => panic!("request to a closed port succeeded"),
        }
    }
}

/// With several open uploads on one key, `append` resumes the most recently initiated one.
#[tokio::test]
async fn resume_picks_latest_upload() {
    let Some(env) = common::s3_env() else { return };
    let d = env
        .driver_with(env.params(&format!("/{}/", common::unique("regstore-latest-"))))
        .await;
    let path = p("/latest/blob");
    let mut first = ok("writer 1", d.writer(&path, false).await);
    ok("write 1", first.write(Bytes::from_static(b"first")).await);
    ok("close 1", first.close().await);
    // Upload initiation times have one-second resolution on some servers.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut second = ok("writer 2", d.writer(&path, false).await);
    ok(
        "write 2",
        second.write(Bytes::from_static(b"second!")).await,
    );
    ok("close 2", second.close().await);
    let mut w = ok("resume", d.writer(&path, true).await);
    assert_eq!(w.size(), 7, "resumed the older upload");
    ok("commit", w.commit().await);
    assert_eq!(ok("get", d.get_content(&path).await), "second!");
    ok("delete", d.delete(&p("/latest")).await);
    // The older upload is still open; teardown aborts it.
    assert_eq!(ok("abort", d.abort_uploads_under_root().await), 1);
    common::cleanup(&d).await;
}

/// A multipart copy whose source disappears half-way (deleted after the first part was
/// copied) fails the move with an error, aborts its upload (nothing left behind) and does not
/// create the destination.
#[tokio::test]
async fn failed_multipart_copy_aborts() {
    let Some(env) = common::s3_env() else { return };
    let params = env
        .params(&format!("/{}/", common::unique("regstore-copyfail-")))
        .with("multipartcopythresholdsize", (5 * MIB).to_string())
        .with("multipartcopychunksize", (5 * MIB).to_string())
        .with("multipartcopymaxconcurrency", "1");
    let d = env.driver_with(params).await;
    let data = Bytes::from(pattern(40 * MIB as usize, 3));
    ok("put", d.put_content(&p("/cf/src"), data).await);
    let stats = d.request_stats();
    let copied_before = stats.get("UploadPartCopy");
    let aborts_before = stats.get("AbortMultipartUpload");
    let mover = {
        let d = d.clone();
        tokio::spawn(async move { d.move_object(&p("/cf/src"), &p("/cf/dst")).await })
    };
    // Eight parts are copied one at a time: remove the source once the first is under way.
    while stats.get("UploadPartCopy") == copied_before && !mover.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    ok("delete src", d.delete(&p("/cf/src")).await);
    let result = ok("join", mover.await);
    assert!(
        result.is_err(),
        "move succeeded although its source vanished"
    );
    assert_eq!(stats.get("AbortMultipartUpload") - aborts_before, 1);
    assert_eq!(
        ok("abort", d.abort_uploads_under_root().await),
        0,
        "upload leaked"
    );
    assert!(d.stat(&p("/cf/dst")).await.is_err_and(|e| e.is_not_found()));
    common::cleanup(&d).await;
}
