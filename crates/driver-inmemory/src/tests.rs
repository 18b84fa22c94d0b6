//! Unit tests of the in-memory driver: writer state machine, append rules and tree edge cases.

use super::*;
use futures::TryStreamExt;
use regstore_driver_api::{Driver, Registry, WalkControl, WalkOptions, WriterState};

fn driver() -> Driver {
    Driver::new(Arc::new(InMemoryDriver::new()))
}

fn state_of(e: &Error) -> Option<WriterState> {
    match e {
        Error::WriterState { state, .. } => Some(*state),
        _ => None,
    }
}

async fn read_all(d: &Driver, path: &str, offset: i64) -> Result<Vec<u8>> {
    let chunks: Vec<Bytes> = d.reader(path, offset).await?.try_collect().await?;
    Ok(chunks.concat())
}

#[tokio::test]
async fn put_get_truncate_and_not_found() {
    let d = driver();
    d.put_content("/a/b", vec![1u8; 1024]).await.unwrap();
    d.put_content("/a/b", vec![2u8; 10]).await.unwrap();
    assert_eq!(d.get_content("/a/b").await.unwrap(), vec![2u8; 10]);
    let e = d.get_content("/a/c").await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "inmemory: Path not found: /a/c");
    // A directory is not an object.
    assert!(d.get_content("/a").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn reader_offsets() {
    let d = driver();
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    d.put_content("/f", data.clone()).await.unwrap();
    assert_eq!(read_all(&d, "/f", 0).await.unwrap(), data);
    assert_eq!(read_all(&d, "/f", 70_000).await.unwrap(), data[70_000..]);
    assert_eq!(read_all(&d, "/f", 199_999).await.unwrap(), data[199_999..]);
    assert!(read_all(&d, "/f", 200_000).await.unwrap().is_empty());
    assert!(read_all(&d, "/f", 1 << 40).await.unwrap().is_empty());
    assert!(read_all(&d, "/missing", 0)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(read_all(&d, "/missing", 64)
        .await
        .unwrap_err()
        .is_not_found());
    // Chunks are bounded.
    let mut s = d.reader("/f", 0).await.unwrap();
    while let Some(c) = s.try_next().await.unwrap() {
        assert!(c.len() <= READ_CHUNK);
    }
}

#[tokio::test]
async fn list_stat_and_directories() {
    let d = driver();
    assert!(d.list("/").await.unwrap().is_empty());
    assert!(d.stat("/").await.unwrap().is_dir);
    d.put_content("/ab/c", "x").await.unwrap();
    d.put_content("/ab/cd/x", "yy").await.unwrap();
    d.put_content("/ab-c", "z").await.unwrap();
    let mut root = d.list("/").await.unwrap();
    root.sort();
    assert_eq!(
        root.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["/ab", "/ab-c"]
    );
    let mut ab = d.list("/ab").await.unwrap();
    ab.sort();
    assert_eq!(
        ab.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["/ab/c", "/ab/cd"]
    );
    // Listing a file or a missing directory is PathNotFound naming the path.
    let e = d.list("/ab/c").await.unwrap_err();
    assert!(e.is_not_found() && e.to_string().ends_with("/ab/c"), "{e}");
    assert!(d.list("/nope").await.unwrap_err().is_not_found());
    let f = d.stat("/ab/cd/x").await.unwrap();
    assert_eq!((f.size, f.is_dir), (2, false));
    assert!(f.mod_time.is_some());
    let dir = d.stat("/ab/cd").await.unwrap();
    assert_eq!(
        (dir.size, dir.is_dir, dir.path.as_str()),
        (0, true, "/ab/cd")
    );
    // "/ab/c" is a file even though "/ab/cd/x" exists; "/a" is nothing.
    assert!(!d.stat("/ab/c").await.unwrap().is_dir);
    assert!(d.stat("/a").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn files_and_directories_do_not_overlap() {
    let d = driver();
    d.put_content("/notadir", "x").await.unwrap();
    assert!(d.put_content("/notadir/foo", "y").await.is_err());
    d.put_content("/dir/f", "x").await.unwrap();
    assert!(d.put_content("/dir", "y").await.is_err());
    // Move into a file's "subdirectory" and move of a missing source both fail.
    assert!(d.move_object("/notadir/foo", "/notadir/bar").await.is_err());
    assert!(d.move_object("/dir/f", "/notadir/bar").await.is_err());
    assert_eq!(d.get_content("/dir/f").await.unwrap(), "x");
    let mut w = d.writer("/notadir/w", false).await.unwrap();
    w.write("data").await.unwrap();
    assert!(w.commit().await.is_err());
}

#[tokio::test]
async fn move_semantics() {
    let d = driver();
    d.put_content("/src/a", "new").await.unwrap();
    d.put_content("/dst/b", "old-longer").await.unwrap();
    d.move_object("/src/a", "/dst/b").await.unwrap();
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
    assert!(d.get_content("/src/a").await.unwrap_err().is_not_found());
    // The source directory disappeared with its only object.
    assert!(d.list("/src").await.unwrap_err().is_not_found());
    let e = d.move_object("/missing", "/dst/b").await.unwrap_err();
    assert!(
        e.is_not_found() && e.to_string().contains("/missing"),
        "{e}"
    );
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
    // A directory is not an object to move.
    assert!(d
        .move_object("/dst", "/elsewhere")
        .await
        .unwrap_err()
        .is_not_found());
    // Moving onto itself keeps the content.
    d.move_object("/dst/b", "/dst/b").await.unwrap();
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
}

#[tokio::test]
async fn delete_only_true_subpaths() {
    let d = driver();
    for p in ["/d/f", "/d/fsuffix", "/d/d/f", "/d/dsuffix/f"] {
        d.put_content(p, "x").await.unwrap();
    }
    d.delete("/d/f").await.unwrap();
    assert!(d.get_content("/d/f").await.unwrap_err().is_not_found());
    assert!(d.get_content("/d/fsuffix").await.is_ok());
    d.delete("/d/d").await.unwrap();
    assert!(d.get_content("/d/d/f").await.unwrap_err().is_not_found());
    assert!(d.get_content("/d/dsuffix/f").await.is_ok());
    assert!(d.delete("/d/d").await.unwrap_err().is_not_found());
    assert!(d.delete("/nothing").await.unwrap_err().is_not_found());
    d.delete("/d").await.unwrap();
    assert!(d.list("/").await.unwrap().is_empty());
}

#[tokio::test]
async fn writer_state_machine() {
    let d = driver();

    // Write / commit / cancel after close.
    let mut w = d.writer("/w", false).await.unwrap();
    w.write("abc").await.unwrap();
    w.close().await.unwrap();
    assert_eq!(w.size(), 3);
    for e in [
        w.write("x").await.unwrap_err(),
        w.commit().await.unwrap_err(),
        w.cancel().await.unwrap_err(),
        w.close().await.unwrap_err(),
    ] {
        assert_eq!(state_of(&e), Some(WriterState::Closed), "{e}");
        assert!(e.is_invalid_input());
    }

    // After commit: write/commit/cancel say committed; close is a no-op, then closed.
    let mut w = d.writer("/w2", false).await.unwrap();
    w.write("abc").await.unwrap();
    w.commit().await.unwrap();
    for e in [
        w.write("x").await.unwrap_err(),
        w.commit().await.unwrap_err(),
        w.cancel().await.unwrap_err(),
    ] {
        assert_eq!(state_of(&e), Some(WriterState::Committed), "{e}");
    }
    w.close().await.unwrap();
    assert_eq!(w.size(), 3);
    assert_eq!(
        state_of(&w.write("x").await.unwrap_err()),
        Some(WriterState::Closed)
    );
    assert_eq!(
        state_of(&w.close().await.unwrap_err()),
        Some(WriterState::Closed)
    );
    assert_eq!(d.get_content("/w2").await.unwrap(), "abc");

    // After cancel: write/commit/cancel say cancelled; close is allowed once (the registry
    // calls cancel then close), nothing is stored.
    let mut w = d.writer("/w3", false).await.unwrap();
    w.write("abc").await.unwrap();
    w.cancel().await.unwrap();
    for e in [
        w.write("x").await.unwrap_err(),
        w.commit().await.unwrap_err(),
        w.cancel().await.unwrap_err(),
    ] {
        assert_eq!(state_of(&e), Some(WriterState::Cancelled), "{e}");
    }
    w.close().await.unwrap();
    assert!(d.get_content("/w3").await.unwrap_err().is_not_found());
    assert!(d.writer("/w3", true).await.unwrap_err().is_not_found());
    let msg = d
        .writer("/w3", false)
        .await
        .unwrap()
        .into_inner()
        .commit()
        .await;
    assert!(msg.is_ok());
}

// Resuming, cancelling a resumed upload and appending after commit are conformance cases
// (`closed_upload_invisible_and_resumable`, `cancel_discards_resumed_upload`, the
// `write_zero_byte_*_then_append` pair); what follows is this backend's own choice.

/// A fresh writer's close replaces the pending upload it did not resume (backends differ here:
/// S3 keeps both uploads and resumes the latest initiated).
#[tokio::test]
async fn fresh_writer_close_replaces_pending_upload() {
    let d = driver();
    let mut w = d.writer("/c", false).await.unwrap();
    w.write("one").await.unwrap();
    w.close().await.unwrap();
    let mut w = d.writer("/c", false).await.unwrap();
    w.write("tw").await.unwrap();
    w.close().await.unwrap();
    let w = d.writer("/c", true).await.unwrap();
    assert_eq!(w.size(), 2);
}

#[tokio::test]
async fn walk_uses_fallback_order() {
    let d = driver();
    for p in ["/folder1/file1", "/folder1-suffix/file1", "/file1"] {
        d.put_content(p, "x").await.unwrap();
    }
    let mut seen = Vec::new();
    d.walk("/", &WalkOptions::default(), |fi| {
        seen.push(fi.path.as_str().to_owned());
        Ok(WalkControl::Continue)
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        [
            "/file1",
            "/folder1",
            "/folder1/file1",
            "/folder1-suffix",
            "/folder1-suffix/file1"
        ]
    );
    let e = d
        .walk("/missing", &WalkOptions::default(), |_| {
            Ok(WalkControl::Continue)
        })
        .await
        .unwrap_err();
    assert!(e.is_not_found());
}

#[tokio::test]
async fn redirect_is_none_and_factory_rejects_parameters() {
    let d = driver();
    d.put_content("/r", "x").await.unwrap();
    assert_eq!(
        d.redirect_url(&regstore_driver_api::RedirectRequest::get(), "/r")
            .await
            .unwrap(),
        None
    );
    let reg = Registry::new().with(DRIVER_NAME, Arc::new(InMemoryFactory));
    let made = reg.create("inmemory", &Parameters::new()).await.unwrap();
    assert_eq!(made.name(), "inmemory");
    let e = reg
        .create("inmemory", &Parameters::new().with("rootdirectory", "/x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidParameter { parameter, .. } if parameter == "rootdirectory"),
        "{e}"
    );
}

#[tokio::test]
async fn concurrent_writers_do_not_interfere() {
    let d = driver();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("/conc/{i}");
            let mut w = d.writer(&path, false).await?;
            for _ in 0..100 {
                w.write(vec![i; 1000]).await?;
                tokio::task::yield_now().await;
            }
            w.commit().await?;
            w.close().await?;
            let got = d.get_content(&path).await?;
            assert_eq!(got, vec![i; 100_000]);
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(d.list("/conc").await.unwrap().len(), 8);
}
