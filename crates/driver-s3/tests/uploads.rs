//! Incomplete multipart uploads through the public API (`list_incomplete_uploads`,
//! `abort_incomplete_upload`) against the server of `REGSTORE_S3_*`: what a closed, cancelled
//! or dropped writer leaves behind, and that nothing outside the asked-for subtree or the
//! driver's root directory is reported or reachable.

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use regstore_driver_api::{Error, StorageDriver, StoragePath};
use regstore_driver_s3::{IncompleteUpload, S3Driver};

use common::MIB;

fn p(s: &str) -> StoragePath {
    match StoragePath::parse_dir(s) {
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

fn data(len: u64, seed: u8) -> Bytes {
    Bytes::from(
        (0..len as usize)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1] ^ seed)
            .collect::<Vec<u8>>(),
    )
}

/// Opens a writer on `path`, writes 6 MiB (one 5 MiB part goes to S3) and closes it without
/// commit: the upload stays open, resumable.
async fn closed_upload(d: &S3Driver, path: &str) {
    let mut w = ok("writer", d.writer(&p(path), false).await);
    ok("write", w.write(data(6 * MIB, 7)).await);
    ok("close", w.close().await);
}

async fn listed(d: &S3Driver, under: &str) -> Vec<IncompleteUpload> {
    ok("list uploads", d.list_incomplete_uploads(&p(under)).await)
}

fn paths(uploads: &[IncompleteUpload]) -> Vec<&str> {
    uploads.iter().map(|u| u.path.as_str()).collect()
}

/// A writer closed without commit is listed with its path, key and a recent start time;
/// aborting it removes it (the listing is empty, `append` finds nothing) and a second abort
/// says the upload is gone.
#[tokio::test]
async fn closed_writer_is_listed_and_abort_removes_it() {
    let Some(env) = common::s3_env() else { return };
    let d = env.driver().await;
    let before = SystemTime::now();
    closed_upload(&d, "/docker/_uploads/u1/data").await;

    let all = listed(&d, "/").await;
    assert_eq!(paths(&all), ["/docker/_uploads/u1/data"]);
    let u = &all[0];
    assert_eq!(u.key, d.url_key(&p("/docker/_uploads/u1/data")));
    assert!(!u.upload_id.is_empty());
    let initiated = match u.initiated {
        Some(t) => t,
        None => panic!("the server gave no Initiated time: {u:?}"),
    };
    // Same machine as the server; allow for one-second resolution and a little skew.
    let slack = Duration::from_secs(120);
    assert!(
        initiated + slack >= before && initiated <= SystemTime::now() + slack,
        "initiated {initiated:?} is not around {before:?}"
    );

    // The subtree, the path itself: listed. A sibling with a longer name or an unrelated
    // subtree: not.
    assert_eq!(
        paths(&listed(&d, "/docker/_uploads").await),
        [u.path.as_str()]
    );
    assert_eq!(
        paths(&listed(&d, "/docker/_uploads/u1/data").await),
        [u.path.as_str()]
    );
    assert!(listed(&d, "/docker/_uploads/u").await.is_empty());
    assert!(listed(&d, "/docker/_uploads/u1/dat").await.is_empty());
    assert!(listed(&d, "/other").await.is_empty());

    ok("abort", d.abort_incomplete_upload(u).await);
    assert!(listed(&d, "/").await.is_empty(), "upload still listed");
    let err = match d.writer(&u.path, true).await {
        Ok(_) => panic!("append found an upload after abort"),
        Err(e) => e,
    };
    assert!(err.is_not_found(), "{err}");
    let again = d.abort_incomplete_upload(u).await;
    assert!(
        again.as_ref().is_err_and(Error::is_not_found),
        "second abort: {again:?}"
    );
    assert_eq!(ok("abort all", d.abort_uploads_under_root().await), 0);
    common::cleanup(&d).await;
}

/// `cancel` leaves no upload behind; a dropped writer leaves one that the listing shows and
/// one abort removes — issue 7's "nothing left once cancel or `uploads abort` runs".
#[tokio::test]
async fn cancelled_writer_leaves_none_and_dropped_writer_is_abortable() {
    let Some(env) = common::s3_env() else { return };
    let d = env.driver().await;

    let mut w = ok("writer", d.writer(&p("/c/cancelled"), false).await);
    ok("write", w.write(data(6 * MIB, 1)).await);
    ok("cancel", w.cancel().await);
    drop(w);
    assert!(listed(&d, "/").await.is_empty(), "cancel left an upload");

    let mut w = ok("writer", d.writer(&p("/c/dropped"), false).await);
    ok("write", w.write(data(6 * MIB, 2)).await);
    drop(w);
    let left = listed(&d, "/").await;
    assert_eq!(paths(&left), ["/c/dropped"]);
    for u in &left {
        ok("abort", d.abort_incomplete_upload(u).await);
    }
    assert!(listed(&d, "/").await.is_empty(), "abort left an upload");
    assert!(d
        .stat(&p("/c/dropped"))
        .await
        .is_err_and(|e| e.is_not_found()));
    common::cleanup(&d).await;
}

/// Several uploads, also several on one key, all listed and sorted by key; uploads of another
/// driver's root directory in the same bucket are neither listed nor abortable through this
/// driver, and an upload whose key was tampered with is refused before any request.
#[tokio::test]
async fn other_roots_are_invisible_and_out_of_reach() {
    let Some(env) = common::s3_env() else { return };
    let base = common::unique("regstore-uploads-");
    let d = env.driver_with(env.params(&format!("/{base}/a/"))).await;
    // A root that shares the first one's name as a string prefix, and its parent.
    let sibling = env.driver_with(env.params(&format!("/{base}/ab/"))).await;
    let parent = env.driver_with(env.params(&format!("/{base}/"))).await;

    closed_upload(&d, "/x/one").await;
    closed_upload(&d, "/x/one").await;
    closed_upload(&d, "/y").await;
    closed_upload(&sibling, "/x/one").await;

    let mine = listed(&d, "/").await;
    assert_eq!(paths(&mine), ["/x/one", "/x/one", "/y"]);
    assert_ne!(mine[0].upload_id, mine[1].upload_id);
    assert_eq!(paths(&listed(&sibling, "/").await), ["/x/one"]);
    // The parent sees both roots' uploads, under its own paths.
    assert_eq!(
        paths(&listed(&parent, "/").await),
        ["/a/x/one", "/a/x/one", "/a/y", "/ab/x/one"]
    );
    assert_eq!(
        paths(&listed(&parent, "/a").await),
        ["/a/x/one", "/a/x/one", "/a/y"]
    );

    // The sibling's upload, handed to this driver: refused, and still there afterwards.
    let theirs = listed(&sibling, "/").await;
    let refused = d.abort_incomplete_upload(&theirs[0]).await;
    assert!(
        matches!(refused, Err(Error::InvalidParameter { .. })),
        "{refused:?}"
    );
    let mut tampered = mine[2].clone();
    tampered.key = theirs[0].key.clone();
    let refused = d.abort_incomplete_upload(&tampered).await;
    assert!(
        matches!(refused, Err(Error::InvalidParameter { .. })),
        "{refused:?}"
    );
    assert_eq!(listed(&sibling, "/").await.len(), 1);

    for u in &mine {
        ok("abort", d.abort_incomplete_upload(u).await);
    }
    assert!(listed(&d, "/").await.is_empty());
    assert_eq!(paths(&listed(&sibling, "/").await), ["/x/one"]);
    // The teardown helper counts what it aborted.
    assert_eq!(ok("abort all", sibling.abort_uploads_under_root().await), 1);
    assert!(listed(&parent, "/").await.is_empty());
    for drv in [&d, &sibling, &parent] {
        common::cleanup(drv).await;
    }
}
