//! `spooldir` against the S3 server of `REGSTORE_S3_*` (see `common`): the part being filled
//! is in a file of the directory (not in memory), the bytes arrive intact across a `close` and
//! an `append` resume, and the file is removed on commit, cancel and drop. The writer model
//! runs with `spooldir` in `writer_model.rs`.
//!
//! Without a configured server every test prints `skipped: …` and returns (under `CI` it fails).

mod common;

use bytes::Bytes;
use regstore_driver_api::{StorageDriver, StoragePath};

/// Sizes of the files in `dir`.
fn spooled(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .expect("spool directory readable")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_spooled_to_files_that_are_removed() {
    let Some(env) = common::s3_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = format!("/{}/", common::unique("regstore-test-"));
    let mut params = env.params(&root);
    params.insert("spooldir", dir.path().to_string_lossy().into_owned());
    let driver = env.driver_with(params).await;
    let path = StoragePath::parse("/blob/data").unwrap();
    let part = 5 * common::MIB as usize;
    let content: Vec<u8> = (0..part * 2 + 12345).map(|i| (i % 251) as u8).collect();

    // Less than a part: all of it in the spool file.
    let mut w = driver.writer(&path, false).await.unwrap();
    w.write(Bytes::copy_from_slice(&content[..1_000_000]))
        .await
        .unwrap();
    assert_eq!(spooled(dir.path()), vec![1_000_000]);
    // Past a part: the full part left the file for its upload, the rest is spooled.
    w.write(Bytes::copy_from_slice(&content[1_000_000..part + 777]))
        .await
        .unwrap();
    assert_eq!(spooled(dir.path()), vec![777]);
    w.close().await.unwrap();
    drop(w);
    assert!(
        spooled(dir.path()).is_empty(),
        "dropped writer: file removed"
    );

    // Resume: the tail record's bytes come back into a new spool file.
    let mut w = driver.writer(&path, true).await.unwrap();
    assert_eq!(w.size(), (part + 777) as u64);
    assert_eq!(spooled(dir.path()), vec![777]);
    w.write(Bytes::copy_from_slice(&content[part + 777..]))
        .await
        .unwrap();
    w.commit().await.unwrap();
    assert!(spooled(dir.path()).is_empty(), "commit: file removed");
    drop(w);
    let got = driver.get_content(&path).await.unwrap();
    assert!(got[..] == content[..], "content differs after spooling");

    // Cancel removes the file too.
    let mut w = driver.writer(&path, false).await.unwrap();
    w.write(Bytes::from_static(b"abc")).await.unwrap();
    assert_eq!(spooled(dir.path()), vec![3]);
    w.cancel().await.unwrap();
    assert!(spooled(dir.path()).is_empty(), "cancel: file removed");
    drop(w);
    common::cleanup(&driver).await;
}
