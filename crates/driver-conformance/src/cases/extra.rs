//! Cases beyond distribution's suite: S3-inspired generic ones (reference §4.3) and regstore's
//! own (traversal paths, writer states, boundary offsets, appends across part sizes).

use futures::StreamExt;
use regstore_driver_api::{Error, RedirectRequest, WalkOptions, WriterState};

use super::basic::delete_if_present;
use super::{ensure, fail, short_debug, CaseResult, Ctx, Step};
use crate::data::random_bytes;

/// The top-level entries of the tree that the delete cases build from [`DELETE_OBJECTS`],
/// removed after each case whatever it left.
const DELETE_TREE_TOPS: [&str; 7] = [
    "/file1",
    "/file1-2",
    "/folder1",
    "/folder2",
    "/folder3",
    "/folder4",
    "/folder1-v2",
];

/// The objects of distribution's S3 `TestDelete`.
const DELETE_OBJECTS: &[&str] = &[
    "/file1",
    "/file1-2",
    "/folder1/file1",
    "/folder2/file1",
    "/folder3/file1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4/file1",
    "/folder1-v2/file1",
    "/folder1-v2/subfolder1/file1",
];

enum DeleteExpect {
    /// Delete succeeds and exactly these objects are gone.
    Gone(Vec<&'static str>),
    NotFound,
    Invalid,
}

pub async fn delete_table(c: Ctx) -> CaseResult {
    let mut table: Vec<(&str, DeleteExpect)> = vec![
        ("/folder1", DeleteExpect::Gone(vec!["/folder1/file1"])),
        ("/folder2", DeleteExpect::Gone(vec!["/folder2/file1"])),
        (
            "/folder3",
            DeleteExpect::Gone(vec![
                "/folder3/file1",
                "/folder3/subfolder1/subfolder1/file1",
                "/folder3/subfolder2/subfolder1/file1",
            ]),
        ),
        ("/path/does/not/exist", DeleteExpect::NotFound),
        ("/path/is/invalid/", DeleteExpect::Invalid),
        ("/path/is/invalid*", DeleteExpect::Invalid),
    ];
    for obj in DELETE_OBJECTS {
        table.push((obj, DeleteExpect::Gone(vec![obj])));
    }
    let result = delete_table_run(&c, &table).await;
    for top in DELETE_TREE_TOPS {
        delete_if_present(&c, top).await?;
    }
    result
}

async fn delete_table_run(c: &Ctx, table: &[(&str, DeleteExpect)]) -> CaseResult {
    for (target, expect) in table {
        for obj in DELETE_OBJECTS {
            c.put(obj, obj.as_bytes().to_vec()).await?;
        }
        let res = c.d.delete(target).await;
        let gone: &[&str] = match expect {
            DeleteExpect::Gone(g) => {
                res.step(format!("delete({target})"))?;
                g
            }
            DeleteExpect::NotFound => {
                c.expect_not_found(format!("delete({target})"), res, target)?;
                &[]
            }
            DeleteExpect::Invalid => {
                c.expect_invalid_path(format!("delete({target:?})"), res, target)?;
                &[]
            }
        };
        for obj in DELETE_OBJECTS {
            let st = c.d.stat(obj).await;
            if gone.contains(obj) {
                match st {
                    Err(e) if e.is_not_found() => {}
                    Ok(fi) if fi.is_dir => {}
                    Ok(_) => fail!("after delete({target}): {obj} still exists"),
                    Err(e) => fail!("after delete({target}): stat({obj}): {e}"),
                }
            } else {
                match st {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {
                        fail!("delete({target}) also deleted {obj}")
                    }
                    Err(e) => fail!("after delete({target}): stat({obj}): {e}"),
                }
            }
        }
    }
    Ok(())
}

/// `delete_many`: exact objects only (a directory path deletes nothing), missing paths are no
/// error, more than one S3 batch (1000 keys), emptied directories vanish, a retry succeeds, and
/// one invalid path rejects the whole call before anything is deleted.
pub async fn delete_many(c: Ctx) -> CaseResult {
    const MANY: &str = "/manyfiles";
    let result = delete_many_run(&c, MANY).await;
    for top in DELETE_TREE_TOPS.iter().copied().chain([MANY]) {
        delete_if_present(&c, top).await?;
    }
    result
}

async fn delete_many_run(c: &Ctx, many: &str) -> CaseResult {
    for obj in DELETE_OBJECTS {
        c.put(obj, obj.as_bytes().to_vec()).await?;
    }
    let names: Vec<String> = (0..1003).map(|i| format!("{many}/f{i:04}")).collect();
    let results: Vec<CaseResult> = futures::stream::iter(names.clone())
        .map(|p| {
            let c = c.clone();
            async move { c.put(&p, &b"x"[..]).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let gone = [
        "/file1",
        "/folder3/subfolder1/subfolder1/file1",
        "/folder1-v2/file1",
    ];
    let mut paths: Vec<String> = gone.iter().map(|s| s.to_string()).collect();
    // A directory (not expanded) and paths that name nothing.
    paths.extend(
        [
            "/folder1",
            "/folder3/subfolder2",
            "/no/such/object",
            "/file1-2x",
        ]
        .map(String::from),
    );
    paths.extend(names.iter().cloned());
    let failed = c.d.delete_many(&paths).await.step("delete_many")?;
    ensure!(
        failed.is_empty(),
        "delete_many reported failures: {}",
        short_debug(&failed)
    );
    for obj in DELETE_OBJECTS {
        let st = c.d.stat(obj).await;
        match (gone.contains(obj), st) {
            (true, Err(e)) if e.is_not_found() => {}
            (true, Ok(_)) => fail!("after delete_many: {obj} still exists"),
            (false, Ok(fi)) if !fi.is_dir => {}
            (false, Ok(_)) => fail!("after delete_many: {obj} is a directory"),
            (false, Err(e)) if e.is_not_found() => fail!("delete_many also deleted {obj}"),
            (_, Err(e)) => fail!("after delete_many: stat({obj}): {e}"),
        }
    }
    c.expect_not_found(
        "list of a directory whose objects delete_many took",
        c.d.list(many).await,
        many,
    )?;
    c.expect_not_found(
        "stat of a directory delete_many emptied",
        c.d.stat("/folder3/subfolder1").await,
        "/folder3/subfolder1",
    )?;
    let again = c.d.delete_many(&paths).await.step("delete_many again")?;
    ensure!(
        again.is_empty(),
        "repeated delete_many reported failures: {}",
        short_debug(&again)
    );
    let res = c.d.delete_many(&["/file1-2", "/bad*path"]).await;
    c.expect_invalid_path("delete_many with an invalid path", res, "/bad*path")?;
    c.d.stat("/file1-2")
        .await
        .step("stat(/file1-2) after a rejected delete_many")?;
    Ok(())
}

pub async fn over_thousand_blobs(c: Ctx) -> CaseResult {
    const DIR: &str = "/thousandfiletest";
    let results: Vec<CaseResult> = futures::stream::iter(0..1005)
        .map(|i| {
            let c = c.clone();
            async move { c.put(&format!("{DIR}/file{i}"), &b"content"[..]).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failed = results.into_iter().find(|r| r.is_err());
    if let Some(err) = failed {
        delete_if_present(&c, DIR).await?;
        return err;
    }
    let n = c.d.list(DIR).await.step(format!("list({DIR})"))?.len();
    let deleted = c.delete(DIR).await;
    ensure!(n == 1005, "list({DIR}) returned {n} entries, expected 1005");
    deleted?;
    c.expect_not_found("list after deleting 1005 files", c.d.list(DIR).await, DIR)
}

pub async fn list_objects_v2(c: Ctx) -> CaseResult {
    const PREFIX: &str = "/test-list-objects-v2";
    let files: Vec<String> = (0..6).map(|i| format!("{PREFIX}/{i}")).collect();
    let result = async {
        for f in &files {
            c.put(f, f.as_bytes().to_vec()).await?;
        }
        let fi = c.stat(&files[0]).await?;
        ensure!(!fi.is_dir, "stat({}) says directory", files[0]);
        ensure!(
            fi.size == files[0].len() as u64,
            "stat({}).size = {}, expected {}",
            files[0],
            fi.size,
            files[0].len()
        );
        ensure!(
            fi.path.as_str() == files[0],
            "stat({}).path = {}",
            files[0],
            fi.path.as_str()
        );
        let sub = format!("{PREFIX}/sub");
        let sub0 = format!("{sub}/0");
        c.put(&sub0, sub0.as_bytes().to_vec()).await?;
        let mut expected: Vec<String> = files.clone();
        expected.push(sub.clone());
        expected.sort();
        let got = c.list_sorted(PREFIX).await?;
        ensure!(
            got == expected,
            "list({PREFIX}) = {got:?}, expected {expected:?}"
        );

        let walked = c.walk_collect(PREFIX, &WalkOptions::default()).await?;
        let paths: Vec<&str> = walked.iter().map(|f| f.path.as_str()).collect();
        let mut want: Vec<&str> = files.iter().map(String::as_str).collect();
        want.push(&sub);
        want.push(&sub0);
        ensure!(
            paths == want,
            "walk({PREFIX}) = {paths:?}, expected {want:?}"
        );
        for fi in &walked {
            let p = fi.path.as_str();
            if p == sub {
                ensure!(fi.is_dir, "walk: {p} is not reported as a directory");
            } else {
                ensure!(!fi.is_dir, "walk: {p} is reported as a directory");
                ensure!(
                    fi.size == p.len() as u64,
                    "walk: {p} has size {}, expected {}",
                    fi.size,
                    p.len()
                );
            }
        }
        Ok(())
    }
    .await;
    let deleted = c.delete(PREFIX).await;
    result.and(deleted)
}

pub async fn stat_no_false_directory(c: Ctx) -> CaseResult {
    c.put("/ab/cd/x", &b"x"[..]).await?;
    c.put("/foobar", &b"foobar"[..]).await?;
    let result = async {
        c.expect_not_found(
            "stat(/ab/c) with only /ab/cd/x",
            c.d.stat("/ab/c").await,
            "/ab/c",
        )?;
        c.expect_not_found(
            "list(/ab/c) with only /ab/cd/x",
            c.d.list("/ab/c").await,
            "/ab/c",
        )?;
        c.expect_not_found(
            "stat(/foo) with only /foobar",
            c.d.stat("/foo").await,
            "/foo",
        )?;
        let fi = c.stat("/ab/cd").await?;
        ensure!(fi.is_dir, "stat(/ab/cd) is not a directory");
        c.expect_not_found(
            "delete(/foo) with only /foobar",
            c.d.delete("/foo").await,
            "/foo",
        )?;
        c.expect_not_found(
            "delete(/ab/c) with only /ab/cd/x",
            c.d.delete("/ab/c").await,
            "/ab/c",
        )?;
        c.expect_content("/foobar", b"foobar").await?;
        c.expect_content("/ab/cd/x", b"x").await
    }
    .await;
    let d1 = delete_if_present(&c, "/ab").await;
    let d2 = delete_if_present(&c, "/foobar").await;
    result.and(d1).and(d2)
}

pub async fn move_large(c: Ctx) -> CaseResult {
    let size = usize::try_from(c.part_size().saturating_mul(2).saturating_add(1))
        .map_err(|_| format!("part size {} too large", c.part_size()))?;
    let content = random_bytes(&mut c.rng("content"), size);
    c.put("/move-large/src", content.clone()).await?;
    let result = async {
        c.d.move_object("/move-large/src", "/move-large/dst")
            .await
            .step("move of a large object")?;
        c.expect_content("/move-large/dst", &content).await?;
        c.expect_not_found(
            "get_content of the moved source",
            c.d.get_content("/move-large/src").await,
            "/move-large/src",
        )
    }
    .await;
    let deleted = delete_if_present(&c, "/move-large").await;
    result.and(deleted)
}

pub async fn invalid_paths_traversal(c: Ctx) -> CaseResult {
    c.put("/ok", &b"ok"[..]).await?;
    let result = async {
        for p in ["/a/../b", "/..", "/./x", "/a/.", "/a/./b", "/."] {
            traversal_rejected(&c, p).await?;
        }
        // Distribution's invalid paths, for every object operation (not only put/get).
        for p in ["", "abc", "//bcd", "/abc_123/", "/a b", "/a*"] {
            traversal_rejected(&c, p).await?;
        }
        c.expect_content("/ok", b"ok").await
    }
    .await;
    let deleted = c.delete("/ok").await;
    result.and(deleted)
}

async fn traversal_rejected(c: &Ctx, p: &str) -> CaseResult {
    let d = &c.d;
    c.expect_invalid_path(
        format!("put_content({p:?})"),
        d.put_content(p, &b"x"[..]).await,
        p,
    )?;
    c.expect_invalid_path(format!("get_content({p:?})"), d.get_content(p).await, p)?;
    c.expect_invalid_path(
        format!("reader({p:?}, 0)"),
        d.reader(p, 0).await.map(|_| ()),
        p,
    )?;
    c.expect_invalid_path(format!("writer({p:?}, false)"), d.writer(p, false).await, p)?;
    c.expect_invalid_path(format!("writer({p:?}, true)"), d.writer(p, true).await, p)?;
    c.expect_invalid_path(format!("stat({p:?})"), d.stat(p).await, p)?;
    c.expect_invalid_path(format!("list({p:?})"), d.list(p).await, p)?;
    c.expect_invalid_path(
        format!("walk({p:?})"),
        d.walk(p, &WalkOptions::default(), |_| {
            Ok(regstore_driver_api::WalkControl::Continue)
        })
        .await,
        p,
    )?;
    c.expect_invalid_path(
        format!("move({p:?}, /ok2)"),
        d.move_object(p, "/ok2").await,
        p,
    )?;
    c.expect_invalid_path(
        format!("move(/ok, {p:?})"),
        d.move_object("/ok", p).await,
        p,
    )?;
    c.expect_invalid_path(format!("delete({p:?})"), d.delete(p).await, p)?;
    c.expect_invalid_path(
        format!("redirect_url({p:?})"),
        d.redirect_url(&RedirectRequest::get(), p).await,
        p,
    )
}

/// After a cancel: nothing readable, nothing listed, nothing to resume.
async fn nothing_left(c: &Ctx, path: &str, what: &str) -> CaseResult {
    c.expect_not_found(
        format!("get_content after {what}"),
        c.d.get_content(path).await,
        path,
    )?;
    c.expect_not_found(
        format!("reader after {what}"),
        c.d.reader(path, 0).await.map(|_| ()),
        path,
    )?;
    c.expect_not_found(format!("stat after {what}"), c.d.stat(path).await, path)?;
    match c.d.list("/").await {
        Ok(v) if v.is_empty() => {}
        Err(e) if e.is_not_found() => {}
        Ok(v) => fail!("list(/) after {what} shows {}", short_debug(&v)),
        Err(e) => fail!("list(/) after {what}: {e}"),
    }
    c.expect_not_found(
        format!("writer(append) after {what}"),
        c.d.writer(path, true).await,
        path,
    )
}

pub async fn writer_cancel_leaves_nothing(c: Ctx) -> CaseResult {
    let path = "/cancel/me";
    let content = random_bytes(&mut c.rng("content"), 1024);

    let mut w = c.d.writer(path, false).await.step("writer(false)")?;
    w.write(content.clone()).await.step("write")?;
    w.cancel().await.step("cancel")?;
    nothing_left(&c, path, "cancelling an open writer").await?;

    let mut w = c.d.writer(path, false).await.step("writer(false)")?;
    w.write(content.clone()).await.step("write")?;
    w.close().await.step("close")?;
    c.expect_not_found(
        "get_content of a closed, uncommitted upload",
        c.d.get_content(path).await,
        path,
    )?;
    let mut w =
        c.d.writer(path, true)
            .await
            .step("writer(append) after close")?;
    ensure!(
        w.size() == 1024,
        "resumed size is {}, expected 1024",
        w.size()
    );
    w.cancel().await.step("cancel of a resumed writer")?;
    nothing_left(&c, path, "cancelling a resumed writer").await?;

    // Cancelling a new upload over committed content leaves that content alone.
    c.put(path, &b"committed"[..]).await?;
    let mut w =
        c.d.writer(path, false)
            .await
            .step("writer(false) over content")?;
    w.write(content).await.step("write")?;
    w.cancel().await.step("cancel")?;
    c.expect_content(path, b"committed").await?;
    c.delete("/cancel").await
}

fn expect_state<T: std::fmt::Debug>(
    c: &Ctx,
    what: &str,
    res: Result<T, Error>,
    path: &str,
    want: WriterState,
) -> CaseResult {
    match &res {
        Err(
            e @ Error::WriterState {
                driver,
                path: p,
                state,
            },
        ) => {
            ensure!(*state == want, "{what}: state {state}, expected {want}");
            ensure!(
                p == path,
                "{what}: error names path {p:?}, expected {path:?}"
            );
            ensure!(
                driver == c.name() && e.to_string().contains(c.name()),
                "{what}: error names driver {driver:?}, expected {:?}",
                c.name()
            );
            Ok(())
        }
        Err(e) => fail!("{what}: expected WriterState({want}), got {e}"),
        Ok(v) => fail!(
            "{what}: expected WriterState({want}), got Ok({})",
            short_debug(v)
        ),
    }
}

pub async fn writer_state_errors(c: Ctx) -> CaseResult {
    // After close.
    let p = "/states/closed";
    let mut w = c.d.writer(p, false).await.step("writer")?;
    w.write(&b"abc"[..]).await.step("write")?;
    w.close().await.step("close")?;
    let closed = WriterState::Closed;
    expect_state(&c, "write after close", w.write(&b"x"[..]).await, p, closed)?;
    expect_state(&c, "commit after close", w.commit().await, p, closed)?;
    expect_state(&c, "cancel after close", w.cancel().await, p, closed)?;
    expect_state(&c, "close after close", w.close().await, p, closed)?;
    let mut w =
        c.d.writer(p, true)
            .await
            .step("writer(append) after close")?;
    ensure!(w.size() == 3, "resumed size {}, expected 3", w.size());
    w.cancel().await.step("cancel of the resumed writer")?;

    // After commit.
    let p = "/states/committed";
    let mut w = c.d.writer(p, false).await.step("writer")?;
    w.write(&b"abc"[..]).await.step("write")?;
    w.commit().await.step("commit")?;
    let committed = WriterState::Committed;
    expect_state(
        &c,
        "write after commit",
        w.write(&b"x"[..]).await,
        p,
        committed,
    )?;
    expect_state(&c, "commit after commit", w.commit().await, p, committed)?;
    expect_state(&c, "cancel after commit", w.cancel().await, p, committed)?;
    w.close().await.step("close after commit (allowed)")?;
    c.expect_content(p, b"abc").await?;

    // After cancel.
    let p = "/states/cancelled";
    let mut w = c.d.writer(p, false).await.step("writer")?;
    w.write(&b"abc"[..]).await.step("write")?;
    w.cancel().await.step("cancel")?;
    let cancelled = WriterState::Cancelled;
    expect_state(
        &c,
        "write after cancel",
        w.write(&b"x"[..]).await,
        p,
        cancelled,
    )?;
    expect_state(&c, "commit after cancel", w.commit().await, p, cancelled)?;
    expect_state(&c, "cancel after cancel", w.cancel().await, p, cancelled)?;
    // The registry calls Close after Cancel and ignores its error: either answer is fine,
    // but an error must be the writer-state one.
    match w.close().await {
        Ok(()) => {}
        Err(e) => expect_state(&c, "close after cancel", Err::<(), _>(e), p, cancelled)?,
    }
    c.expect_not_found("get_content after cancel", c.d.get_content(p).await, p)?;
    c.delete("/states").await
}

pub async fn reader_boundary_offsets(c: Ctx) -> CaseResult {
    let ps = c.part_size();
    let size = ps.saturating_mul(2).saturating_add(7);
    let size_us = usize::try_from(size).map_err(|_| format!("size {size} too large"))?;
    let ps_us = size_us.saturating_sub(7) / 2;
    let content = random_bytes(&mut c.rng("content"), size_us);
    let path = "/boundary/object";
    let mut w = c.d.writer(path, false).await.step("writer")?;
    for piece in [
        &content[..ps_us],
        &content[ps_us..2 * ps_us],
        &content[2 * ps_us..],
    ] {
        w.write(piece.to_vec()).await.step("write")?;
    }
    w.commit().await.step("commit")?;
    w.close().await.step("close")?;
    let result = async {
        let offsets = [
            0,
            1,
            ps - 1,
            ps,
            ps + 1,
            2 * ps - 1,
            2 * ps,
            2 * ps + 1,
            size - 1,
            size,
            size + 1,
            size + ps,
        ];
        for off in offsets {
            let start = usize::try_from(off).unwrap_or(usize::MAX).min(size_us);
            let off = i64::try_from(off).map_err(|_| format!("offset {off} too large"))?;
            c.expect_stream(path, off, &content[start..]).await?;
        }
        c.expect_stream(path, i64::MAX, &[]).await
    }
    .await;
    let deleted = c.delete("/boundary").await;
    result.and(deleted)
}

pub async fn append_straddling_part_size(c: Ctx) -> CaseResult {
    let ps = usize::try_from(c.part_size()).map_err(|_| "part size too large".to_owned())?;
    let total = ps - 1 + 2 + ps + 3;
    let content = random_bytes(&mut c.rng("content"), total);
    let path = "/straddle/upload";
    let pieces = [
        &content[..ps - 1],
        &content[ps - 1..ps + 1],
        &content[ps + 1..],
    ];
    let mut expected_size = 0usize;
    for (i, piece) in pieces.iter().enumerate() {
        let mut w = c.d.writer(path, i > 0).await.step(format!("writer #{i}"))?;
        ensure!(
            w.size() == expected_size as u64,
            "writer #{i} resumed at {}, expected {expected_size}",
            w.size()
        );
        w.write(piece.to_vec()).await.step(format!("write #{i}"))?;
        w.close().await.step(format!("close #{i}"))?;
        expected_size += piece.len();
        ensure!(
            w.size() == expected_size as u64,
            "size after close #{i} is {}, expected {expected_size}",
            w.size()
        );
        c.expect_not_found(
            format!("get_content before commit (after close #{i})"),
            c.d.get_content(path).await,
            path,
        )?;
    }
    let mut w = c.d.writer(path, true).await.step("writer to commit")?;
    ensure!(
        w.size() == total as u64,
        "final writer resumed at {}, expected {total}",
        w.size()
    );
    w.commit().await.step("commit")?;
    w.close().await.step("close after commit")?;
    ensure!(
        w.size() == total as u64,
        "size after commit {}, expected {total}",
        w.size()
    );
    c.expect_content(path, &content).await?;
    c.expect_stream(path, 0, &content).await?;
    let fi = c.stat(path).await?;
    ensure!(
        fi.size == total as u64,
        "stat size {}, expected {total}",
        fi.size
    );
    c.delete("/straddle").await
}

pub async fn move_missing_source_keeps_destination(c: Ctx) -> CaseResult {
    let dst = "/keep/dst";
    let content = random_bytes(&mut c.rng("content"), 64);
    c.put(dst, content.clone()).await?;
    for src in [
        "/keep/src",
        "/elsewhere/src",
        "/keep/dst-missing",
        "/keep/dst/below",
    ] {
        c.expect_not_found(
            format!("move({src}, {dst})"),
            c.d.move_object(src, dst).await,
            src,
        )?;
        c.expect_content(dst, &content).await?;
        let fi = c.stat(dst).await?;
        ensure!(
            fi.size == 64,
            "stat({dst}).size = {} after a failed move",
            fi.size
        );
    }
    c.delete("/keep").await
}

pub async fn negative_offset(c: Ctx) -> CaseResult {
    let path = "/negative/offset";
    c.put(path, &b"0123456789"[..]).await?;
    let result = async {
        for (p, off) in [
            (path, -1),
            (path, i64::MIN),
            ("/negative/missing", -1),
            ("", -5),
        ] {
            match c.d.reader(p, off).await {
                Err(
                    ref e @ Error::InvalidOffset {
                        ref driver,
                        path: ref ep,
                        offset,
                    },
                ) => {
                    ensure!(
                        offset == off,
                        "reader({p:?}, {off}): offset {offset} reported"
                    );
                    ensure!(ep == p, "reader({p:?}, {off}): path {ep:?} reported");
                    ensure!(
                        driver == c.name() && e.to_string().contains(c.name()),
                        "reader({p:?}, {off}): driver {driver:?} reported"
                    );
                }
                Err(e) => fail!("reader({p:?}, {off}): expected InvalidOffset, got {e}"),
                Ok(_) => fail!("reader({p:?}, {off}): expected InvalidOffset, got a stream"),
            }
        }
        match c.d.async_reader(path, -1).await {
            Err(Error::InvalidOffset { offset: -1, .. }) => {}
            Err(e) => fail!("async_reader(-1): expected InvalidOffset, got {e}"),
            Ok(_) => fail!("async_reader(-1): expected InvalidOffset, got a reader"),
        }
        c.expect_content(path, b"0123456789").await
    }
    .await;
    let deleted = c.delete("/negative").await;
    result.and(deleted)
}
