//! Unit tests of the filesystem driver: layout, atomicity, resumable writers, confinement.

use super::*;
use futures::TryStreamExt;
use regstore_driver_api::{Driver, Registry, WalkControl, WalkOptions, WriterState};

fn setup() -> (tempfile::TempDir, Driver) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Driver::new(Arc::new(FilesystemDriver::new(dir.path())));
    (dir, d)
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

/// Names in a real directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn walk_all(d: &Driver, from: &str) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    d.walk(from, &WalkOptions::default(), |fi| {
        seen.push(fi.path.as_str().to_owned());
        Ok(WalkControl::Continue)
    })
    .await?;
    Ok(seen)
}

#[tokio::test]
async fn objects_are_plain_files_under_root() {
    let (dir, d) = setup();
    d.put_content("/docker/registry/v2/x", "hello")
        .await
        .unwrap();
    assert_eq!(
        fs::read(dir.path().join("docker/registry/v2/x")).unwrap(),
        b"hello"
    );
    assert_eq!(
        d.get_content("/docker/registry/v2/x").await.unwrap(),
        "hello"
    );
}

#[tokio::test]
async fn put_is_atomic_and_truncates_and_leaves_no_temp_files() {
    let (dir, d) = setup();
    d.put_content("/a/b", vec![1u8; 1 << 20]).await.unwrap();
    d.put_content("/a/b", vec![2u8; 1024]).await.unwrap();
    assert_eq!(d.get_content("/a/b").await.unwrap(), vec![2u8; 1024]);
    assert_eq!(names(&dir.path().join("a")), ["b"]);
    assert_eq!(
        d.list("/a")
            .await
            .unwrap()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["/a/b"]
    );
    // Readers holding the old file keep seeing the old content in full (rename, not rewrite).
    let mut old = d.reader("/a/b", 0).await.unwrap();
    d.put_content("/a/b", vec![3u8; 10]).await.unwrap();
    let mut got = Vec::new();
    while let Some(c) = old.try_next().await.unwrap() {
        got.extend_from_slice(&c);
    }
    assert_eq!(got, vec![2u8; 1024]);
}

#[tokio::test]
async fn reader_offsets_and_bounded_chunks() {
    let (_dir, d) = setup();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    d.put_content("/f", data.clone()).await.unwrap();
    for off in [0usize, 1, 65_535, 65_536, 100_000, 299_999] {
        assert_eq!(
            read_all(&d, "/f", off as i64).await.unwrap(),
            data[off..],
            "offset {off}"
        );
    }
    assert!(read_all(&d, "/f", 300_000).await.unwrap().is_empty());
    assert!(read_all(&d, "/f", 1 << 40).await.unwrap().is_empty());
    let mut s = d.reader("/f", 0).await.unwrap();
    while let Some(c) = s.try_next().await.unwrap() {
        assert!(c.len() <= READ_CHUNK);
    }
    for off in [0, 64] {
        let e = read_all(&d, "/missing", off).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(e.to_string(), "filesystem: Path not found: /missing");
    }
    // A directory is not an object.
    d.put_content("/dir/x", "x").await.unwrap();
    assert!(read_all(&d, "/dir", 0).await.unwrap_err().is_not_found());
    assert!(d.get_content("/dir").await.unwrap_err().is_not_found());
    // Below a file nothing exists.
    assert!(d.get_content("/f/x").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn list_and_stat() {
    let (_dir, d) = setup();
    // The root of an empty store (even before the directory exists) lists as empty.
    let missing_root = tempfile::tempdir().unwrap();
    let fresh = Driver::new(Arc::new(FilesystemDriver::new(
        missing_root.path().join("not-yet"),
    )));
    assert!(fresh.list("/").await.unwrap().is_empty());
    assert!(fresh.stat("/").await.unwrap().is_dir);

    assert!(d.list("/").await.unwrap().is_empty());
    d.put_content("/ab/c", "x").await.unwrap();
    d.put_content("/ab/cd/x", "yy").await.unwrap();
    let mut ab = d.list("/ab").await.unwrap();
    ab.sort();
    assert_eq!(
        ab.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["/ab/c", "/ab/cd"]
    );
    let e = d.list("/ab/nonexistent").await.unwrap_err();
    assert!(e.is_not_found() && e.to_string().ends_with("/ab/nonexistent"));
    assert!(d.list("/ab/c").await.unwrap_err().is_not_found());
    let f = d.stat("/ab/cd/x").await.unwrap();
    assert_eq!((f.size, f.is_dir, f.path.as_str()), (2, false, "/ab/cd/x"));
    assert!(f.mod_time.is_some());
    let dir = d.stat("/ab/cd").await.unwrap();
    assert_eq!((dir.size, dir.is_dir), (0, true));
    assert!(d.stat("/a").await.unwrap_err().is_not_found());
    assert!(d.stat("/ab/c/d").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn internals_never_show_in_list_or_walk() {
    let (dir, d) = setup();
    let mut w = d.writer("/up/data", false).await.unwrap();
    w.write("pending").await.unwrap();
    w.close().await.unwrap();
    // The pending upload exists on disk but not in the store's view.
    assert!(dir.path().join(INTERNAL_DIR).is_dir());
    assert!(d.list("/").await.unwrap().is_empty());
    assert!(walk_all(&d, "/").await.unwrap().is_empty());
    assert!(d.stat("/up/data").await.unwrap_err().is_not_found());
    assert!(d.get_content("/up/data").await.unwrap_err().is_not_found());
    // Stray temp files (a crash mid-put) are not listed either.
    d.put_content("/v/f", "x").await.unwrap();
    fs::write(dir.path().join("v/.~tmp.123"), "junk").unwrap();
    assert_eq!(
        d.list("/v")
            .await
            .unwrap()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["/v/f"]
    );
    assert_eq!(walk_all(&d, "/").await.unwrap(), ["/v", "/v/f"]);
}

#[tokio::test]
async fn empty_directories_are_pruned() {
    let (dir, d) = setup();
    d.put_content("/a/b/c/d", "x").await.unwrap();
    d.put_content("/a/keep", "x").await.unwrap();
    d.delete("/a/b/c/d").await.unwrap();
    assert_eq!(names(&dir.path().join("a")), ["keep"]);
    assert!(d.stat("/a/b").await.unwrap_err().is_not_found());
    d.move_object("/a/keep", "/z/moved").await.unwrap();
    assert_eq!(names(dir.path()), ["z"]);
    assert_eq!(
        d.list("/")
            .await
            .unwrap()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["/z"]
    );
    d.delete("/z").await.unwrap();
    assert!(d.list("/").await.unwrap().is_empty());
    // The root itself is never removed.
    assert!(dir.path().is_dir());
}

#[tokio::test]
async fn delete_semantics() {
    let (_dir, d) = setup();
    for p in ["/d/f", "/d/fsuffix", "/d/d/f", "/d/dsuffix/f"] {
        d.put_content(p, "x").await.unwrap();
    }
    d.delete("/d/f").await.unwrap();
    assert!(d.get_content("/d/f").await.unwrap_err().is_not_found());
    assert!(d.get_content("/d/fsuffix").await.is_ok());
    d.delete("/d/d").await.unwrap();
    assert!(d.get_content("/d/d/f").await.unwrap_err().is_not_found());
    assert!(d.get_content("/d/dsuffix/f").await.is_ok());
    let e = d.delete("/d/d").await.unwrap_err();
    assert!(e.is_not_found() && e.to_string().contains("filesystem"));
    d.delete("/d").await.unwrap();
    assert!(d.list("/").await.unwrap().is_empty());
}

#[tokio::test]
async fn move_semantics() {
    let (_dir, d) = setup();
    d.put_content("/src/a", "new").await.unwrap();
    d.put_content("/dst/b", "old-longer").await.unwrap();
    d.move_object("/src/a", "/dst/b").await.unwrap();
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
    assert!(d.get_content("/src/a").await.unwrap_err().is_not_found());
    let e = d.move_object("/missing", "/dst/b").await.unwrap_err();
    assert!(
        e.is_not_found() && e.to_string().contains("/missing"),
        "{e}"
    );
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
    d.put_content("/notadir", "x").await.unwrap();
    assert!(d.move_object("/notadir/foo", "/notadir/bar").await.is_err());
    assert!(d.move_object("/dst/b", "/notadir/bar").await.is_err());
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
    assert!(d.put_content("/notadir/x", "y").await.is_err());
    d.move_object("/dst/b", "/dst/b").await.unwrap();
    assert_eq!(d.get_content("/dst/b").await.unwrap(), "new");
    // A directory is not an object to move, and an object cannot replace a directory.
    d.put_content("/tree/leaf", "l").await.unwrap();
    assert!(d
        .move_object("/tree", "/elsewhere")
        .await
        .unwrap_err()
        .is_not_found());
    assert!(d.move_object("/dst/b", "/tree").await.is_err());
    assert!(d.put_content("/tree", "y").await.is_err());
    assert_eq!(d.get_content("/tree/leaf").await.unwrap(), "l");
}

#[tokio::test]
async fn writer_state_machine() {
    let (_dir, d) = setup();
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
    }

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
        state_of(&w.close().await.unwrap_err()),
        Some(WriterState::Closed)
    );
    assert_eq!(d.get_content("/w2").await.unwrap(), "abc");

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
}

#[tokio::test]
async fn resume_across_writers_and_driver_instances() {
    let (dir, d) = setup();
    let chunk = |b: u8| vec![b; WRITE_BUFFER + 17];
    let mut w = d.writer("/up/data", false).await.unwrap();
    w.write(chunk(1)).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(w.size(), chunk(1).len() as u64);
    assert!(d.list("/").await.unwrap().is_empty());

    // A second driver on the same root (a restarted registry) resumes the upload.
    let d2 = Driver::new(Arc::new(FilesystemDriver::new(dir.path())));
    let mut w = d2.writer("/up/data", true).await.unwrap();
    assert_eq!(w.size(), chunk(1).len() as u64);
    w.write(chunk(2)).await.unwrap();
    w.write("tail").await.unwrap();
    w.close().await.unwrap();
    let total = 2 * chunk(1).len() as u64 + 4;
    assert_eq!(w.size(), total);

    let mut w = d.writer("/up/data", true).await.unwrap();
    assert_eq!(w.size(), total);
    w.write(vec![3u8; 32]).await.unwrap();
    w.commit().await.unwrap();
    w.close().await.unwrap();
    assert_eq!(w.size(), total + 32);
    let mut want = chunk(1);
    want.extend(chunk(2));
    want.extend(b"tail");
    want.extend([3u8; 32]);
    assert_eq!(d.get_content("/up/data").await.unwrap(), want);
    // The upload was consumed, and no upload files are left behind.
    assert!(names(&dir.path().join(INTERNAL_DIR).join("uploads")).is_empty());
    let e = d.writer("/up/data", true).await.unwrap_err();
    assert!(matches!(e, Error::AppendToCommitted { .. }), "{e}");
}

#[tokio::test]
async fn cancel_and_drop_leave_nothing_behind() {
    let (dir, d) = setup();
    let uploads = dir.path().join(INTERNAL_DIR).join("uploads");
    let mut w = d.writer("/c", false).await.unwrap();
    w.write("abc").await.unwrap();
    w.close().await.unwrap();
    let mut w = d.writer("/c", true).await.unwrap();
    w.write("def").await.unwrap();
    w.cancel().await.unwrap();
    assert!(d.writer("/c", true).await.unwrap_err().is_not_found());
    assert!(names(&uploads).is_empty());

    let mut w = d.writer("/c", false).await.unwrap();
    w.write(vec![0u8; WRITE_BUFFER * 2]).await.unwrap();
    drop(w);
    assert!(names(&uploads).is_empty());
    assert!(d.list("/").await.unwrap().is_empty());

    // A fresh writer does not disturb a pending upload until it closes.
    let mut w = d.writer("/c", false).await.unwrap();
    w.write("one").await.unwrap();
    w.close().await.unwrap();
    let mut w2 = d.writer("/c", false).await.unwrap();
    w2.write("twotwo").await.unwrap();
    assert_eq!(d.writer("/c", true).await.unwrap().size(), 3);
    w2.close().await.unwrap();
    assert_eq!(d.writer("/c", true).await.unwrap().size(), 6);
}

#[tokio::test]
async fn commit_into_a_file_fails_and_keeps_upload() {
    let (_dir, d) = setup();
    d.put_content("/notadir", "x").await.unwrap();
    let mut w = d.writer("/notadir/w", false).await.unwrap();
    w.write("data").await.unwrap();
    assert!(w.commit().await.is_err());
    assert_eq!(d.get_content("/notadir").await.unwrap(), "x");
    w.cancel().await.unwrap();
}

#[tokio::test]
async fn traversal_paths_are_rejected() {
    let (_dir, d) = setup();
    for p in ["/../etc/passwd", "/a/../../x", "/.", "/a/./b"] {
        let e = d.get_content(p).await.unwrap_err();
        assert!(matches!(e, Error::InvalidPath { .. }), "{p}: {e}");
        let e = d.put_content(p, "x").await.unwrap_err();
        assert!(matches!(e, Error::InvalidPath { .. }), "{p}: {e}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_never_lead_outside_the_root() {
    use std::os::unix::fs::symlink;

    let (dir, d) = setup();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "secret").unwrap();
    symlink(outside.path(), dir.path().join("escape")).unwrap();
    symlink(outside.path().join("secret"), dir.path().join("leak")).unwrap();
    d.put_content("/inside/ok", "ok").await.unwrap();
    symlink(outside.path(), dir.path().join("inside/deeper")).unwrap();

    let refused = |e: &Error| !e.is_not_found() && e.to_string().contains("symbolic link");
    // Reads through a link (as a directory component or as the file itself).
    for p in ["/escape/secret", "/leak", "/inside/deeper/secret"] {
        let e = d.get_content(p).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
        let e = read_all(&d, p, 0).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
        let e = d.stat(p).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
        let e = d.writer(p, true).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
    }
    for p in ["/escape", "/inside/deeper"] {
        let e = d.list(p).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
    }
    // Writes through a link directory.
    for p in ["/escape/new", "/inside/deeper/new"] {
        let e = d.put_content(p, "pwned").await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
        let mut w = d.writer(p, false).await.unwrap();
        w.write("pwned").await.unwrap();
        let e = w.commit().await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
        w.cancel().await.unwrap();
        let e = d.move_object("/inside/ok", p).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
    }
    // Deleting through a link, or the link itself, is refused too.
    for p in ["/escape/secret", "/escape", "/leak"] {
        let e = d.delete(p).await.unwrap_err();
        assert!(refused(&e), "{p}: {e}");
    }
    // Overwriting the link file replaces the link itself, never its target.
    d.put_content("/leak", "replaced").await.unwrap();
    assert_eq!(d.get_content("/leak").await.unwrap(), "replaced");
    // Listings skip links instead of following them.
    let mut root = d.list("/").await.unwrap();
    root.sort();
    assert_eq!(
        root.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["/inside", "/leak"]
    );
    assert_eq!(
        d.list("/inside")
            .await
            .unwrap()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["/inside/ok"]
    );
    // Deleting a directory holding a link removes the link, not what it points to.
    d.delete("/inside").await.unwrap();
    assert_eq!(names(outside.path()), ["secret"]);
    assert_eq!(
        fs::read_to_string(outside.path().join("secret")).unwrap(),
        "secret"
    );
}

#[tokio::test]
async fn concurrent_creates_and_deletes_in_one_directory() {
    // Deletes prune empty parents while other tasks create files next to them.
    let (_dir, d) = setup();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25 {
                let p = format!("/shared/deep/t{i}-{round}");
                d.put_content(&p, "x").await?;
                let mut w = d.writer(&format!("{p}-w"), false).await?;
                w.write("y").await?;
                w.commit().await?;
                d.move_object(&format!("{p}-w"), &format!("/shared/other/t{i}-{round}"))
                    .await?;
                d.delete(&p).await?;
                d.delete(&format!("/shared/other/t{i}-{round}")).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(d.list("/").await.unwrap().is_empty());
}

#[tokio::test]
async fn factory_parameters() {
    let reg = Registry::new().with(DRIVER_NAME, Arc::new(FilesystemFactory));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let d = reg
        .create(
            "filesystem",
            &Parameters::new()
                .with("rootdirectory", root.as_str())
                .with("maxthreads", 25i64),
        )
        .await
        .unwrap();
    d.put_content("/x", "y").await.unwrap();
    assert!(dir.path().join("x").is_file());

    let bad = |e: Error, key: &str| {
        assert!(
            matches!(&e, Error::InvalidParameter { parameter, .. } if parameter == key),
            "{e}"
        );
    };
    bad(
        reg.create(
            "filesystem",
            &Parameters::new()
                .with("rootdirectory", root.as_str())
                .with("maxthreads", 24i64),
        )
        .await
        .unwrap_err(),
        "maxthreads",
    );
    bad(
        reg.create(
            "filesystem",
            &Parameters::new()
                .with("rootdirectory", root.as_str())
                .with("maxthreads", "lots"),
        )
        .await
        .unwrap_err(),
        "maxthreads",
    );
    bad(
        reg.create(
            "filesystem",
            &Parameters::new()
                .with("rootdirectory", root.as_str())
                .with("rootdir", "/x"),
        )
        .await
        .unwrap_err(),
        "rootdir",
    );
    bad(
        reg.create("filesystem", &Parameters::new().with("rootdirectory", ""))
            .await
            .unwrap_err(),
        "rootdirectory",
    );
    let file_root = dir.path().join("x").to_string_lossy().into_owned();
    bad(
        reg.create(
            "filesystem",
            &Parameters::new().with("rootdirectory", file_root.as_str()),
        )
        .await
        .unwrap_err(),
        "rootdirectory",
    );
    // Defaults: /var/lib/registry, resolved once, absolute.
    let default = FilesystemDriver::new(DEFAULT_ROOT_DIRECTORY);
    assert_eq!(default.root(), Path::new("/var/lib/registry"));
    let relative = FilesystemDriver::new("some/rel");
    assert!(relative.root().is_absolute());
    assert!(relative.root().ends_with("some/rel"));
}

#[tokio::test]
async fn max_threads_bounds_blocking_work() {
    let dir = tempfile::tempdir().unwrap();
    let drv = FilesystemDriver::with_max_threads(dir.path(), 2);
    assert_eq!(drv.shared.permits.available_permits(), 2);
    let d = Driver::new(Arc::new(drv.clone()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            d.put_content(&format!("/m/{i}"), vec![i as u8; 4096]).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(d.list("/m").await.unwrap().len(), 16);
    assert_eq!(drv.shared.permits.available_permits(), 2);
}

#[tokio::test]
async fn resumed_writer_owns_its_upload() {
    let (dir, d) = setup();
    let uploads = dir.path().join(INTERNAL_DIR).join("uploads");
    let mut w = d.writer("/u", false).await.unwrap();
    w.write("abc").await.unwrap();
    w.close().await.unwrap();

    // While one writer resumes the upload, nobody else can resume it...
    let mut resumed = d.writer("/u", true).await.unwrap();
    assert_eq!(resumed.size(), 3);
    assert!(d.writer("/u", true).await.unwrap_err().is_not_found());
    // ...and a fresh writer closing meanwhile does not change what the resumer commits.
    let mut other = d.writer("/u", false).await.unwrap();
    other.write("zzzzzzzz").await.unwrap();
    other.close().await.unwrap();
    resumed.write("def").await.unwrap();
    resumed.commit().await.unwrap();
    resumed.close().await.unwrap();
    assert_eq!(d.get_content("/u").await.unwrap(), "abcdef");
    // The other writer's upload is still pending, intact.
    let w = d.writer("/u", true).await.unwrap();
    assert_eq!(w.size(), 8);
    drop(w);

    // A resumer dropped without close gives the upload back (without its unflushed bytes).
    let mut w = d.writer("/u", true).await.unwrap();
    w.write("lost").await.unwrap();
    drop(w);
    let mut w = d.writer("/u", true).await.unwrap();
    assert_eq!(w.size(), 8);
    w.cancel().await.unwrap();
    assert!(names(&uploads).is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn planted_link_at_internal_directory_is_refused() {
    use std::os::unix::fs::symlink;

    let (dir, d) = setup();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), dir.path().join(INTERNAL_DIR)).unwrap();
    let e = d.writer("/x", false).await.unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(names(outside.path()).is_empty());
    // Same one level down.
    fs::remove_file(dir.path().join(INTERNAL_DIR)).unwrap();
    fs::create_dir(dir.path().join(INTERNAL_DIR)).unwrap();
    symlink(
        outside.path(),
        dir.path().join(INTERNAL_DIR).join("uploads"),
    )
    .unwrap();
    let e = d.writer("/x", false).await.unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(names(outside.path()).is_empty());
}

/// One sync the driver asked the OS for (recorded in test builds only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Synced {
    /// `File::sync_all` of the file at this path.
    File(PathBuf),
    /// A directory's sync.
    Dir(PathBuf),
}

/// Every sync of every driver in this test process; tests pick theirs by root directory.
static SYNCS: std::sync::Mutex<Vec<Synced>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn record_sync(s: Synced) {
    SYNCS.lock().unwrap_or_else(|e| e.into_inner()).push(s);
}

/// Removes and returns the recorded syncs below `root` (`root` itself included), in order.
fn take_syncs(root: &Path) -> Vec<Synced> {
    let mut all = SYNCS.lock().unwrap_or_else(|e| e.into_inner());
    let (mine, rest) = all.drain(..).partition(|s| match s {
        Synced::File(p) | Synced::Dir(p) => p.starts_with(root),
    });
    *all = rest;
    mine
}

fn durable_setup() -> (tempfile::TempDir, PathBuf, Driver) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fsd = FilesystemDriver::new(dir.path().join("store"));
    let root = fsd.root().to_owned();
    (dir, root, Driver::new(Arc::new(fsd)))
}

fn dirs(root: &Path, rels: &[&str]) -> Vec<Synced> {
    rels.iter()
        .map(|r| {
            Synced::Dir(if r.is_empty() {
                root.to_owned()
            } else {
                root.join(r)
            })
        })
        .collect()
}

#[tokio::test]
async fn put_content_syncs_the_file_then_every_new_directory_and_the_target_dir() {
    let (_tmp, root, d) = durable_setup();
    std::fs::create_dir_all(&root).unwrap();
    d.put_content("/a/b/c/f", b"x".to_vec()).await.unwrap();
    let got = take_syncs(&root);
    // New a, b, c: their parents (root, a, b) are synced as they are created; then the data
    // of the temporary file, then c after the rename.
    let (mkdirs, rest) = got.split_at(3);
    assert_eq!(mkdirs, dirs(&root, &["", "a", "a/b"]), "{got:?}");
    assert!(
        matches!(&rest[0], Synced::File(p) if p.parent() == Some(&root.join("a/b/c"))
            && p.to_string_lossy().contains(".~tmp.")),
        "{got:?}"
    );
    assert_eq!(&rest[1..], dirs(&root, &["a/b/c"]), "{got:?}");

    // Parents that exist cost nothing more: the file and its directory only.
    d.put_content("/a/b/c/g", b"y".to_vec()).await.unwrap();
    let got = take_syncs(&root);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(&got[0], Synced::File(_)), "{got:?}");
    assert_eq!(&got[1..], dirs(&root, &["a/b/c"]), "{got:?}");
}

#[tokio::test]
async fn close_syncs_the_upload_before_publishing_it_and_its_directory_after() {
    let (_tmp, root, d) = durable_setup();
    let mut w = d.writer("/x/y/blob", false).await.unwrap();
    // The internal directories are new: root (parent of .~regstore) and .~regstore synced.
    assert_eq!(
        take_syncs(&root),
        dirs(&root, &["", INTERNAL_DIR]),
        "opening a writer in a new store"
    );
    w.write(b"abc".to_vec()).await.unwrap();
    w.close().await.unwrap();
    let got = take_syncs(&root);
    let uploads = root.join(INTERNAL_DIR).join("uploads");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        matches!(&got[0], Synced::File(p) if p.parent() == Some(&uploads)
            && p.to_string_lossy().ends_with(".part")),
        "{got:?}"
    );
    assert_eq!(got[1], Synced::Dir(uploads), "{got:?}");
}

#[tokio::test]
async fn commit_syncs_the_data_every_new_directory_and_the_target_dir() {
    let (_tmp, root, d) = durable_setup();
    let mut w = d.writer("/x/y/blob", false).await.unwrap();
    w.write(b"abc".to_vec()).await.unwrap();
    w.close().await.unwrap();
    take_syncs(&root);
    // A resumed writer commits: the same checks hold as for a fresh one.
    let mut w = d.writer("/x/y/blob", true).await.unwrap();
    w.write(b"def".to_vec()).await.unwrap();
    w.commit().await.unwrap();
    let got = take_syncs(&root);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        matches!(&got[0], Synced::File(p) if p.to_string_lossy().ends_with(".part")),
        "data first: {got:?}"
    );
    // New x and x/y: root and x synced as they are created; x/y after the rename.
    assert_eq!(&got[1..], dirs(&root, &["", "x", "x/y"]), "{got:?}");
    assert_eq!(d.get_content("/x/y/blob").await.unwrap(), &b"abcdef"[..]);
}

#[tokio::test]
async fn move_to_a_new_nested_path_syncs_each_new_directory() {
    let (_tmp, root, d) = durable_setup();
    d.put_content("/src", b"x".to_vec()).await.unwrap();
    take_syncs(&root);
    d.move_object("/src", "/m/n/dst").await.unwrap();
    assert_eq!(take_syncs(&root), dirs(&root, &["", "m", "m/n"]));
}
