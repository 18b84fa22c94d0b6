//! Walk cases (reference §1.6 for the default walk, §4.3 item 10 for S3's flat walk), with the
//! expected order chosen by [`WalkOrder`].

use std::sync::{Arc, Mutex};

use regstore_driver_api::{Error, FileInfo, StoragePath, WalkControl, WalkOptions};

use super::{ensure, fail, CaseError, CaseResult, Ctx, Step};
use crate::capabilities::WalkOrder;

/// The files of distribution's walk tests; every file's content is its own path.
const FILES: &[&str] = &[
    "/file1",
    "/folder1/file1",
    "/folder1-suffix/file1",
    "/folder2/file1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4/file1",
];

const SORTED_ALL: &[&str] = &[
    "/file1",
    "/folder1",
    "/folder1/file1",
    "/folder1-suffix",
    "/folder1-suffix/file1",
    "/folder2",
    "/folder2/file1",
    "/folder3",
    "/folder3/subfolder1",
    "/folder3/subfolder1/subfolder1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2",
    "/folder3/subfolder2/subfolder1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4",
    "/folder4/file1",
];

const KEY_ALL: &[&str] = &[
    "/file1",
    "/folder1-suffix",
    "/folder1-suffix/file1",
    "/folder1",
    "/folder1/file1",
    "/folder2",
    "/folder2/file1",
    "/folder3",
    "/folder3/subfolder1",
    "/folder3/subfolder1/subfolder1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2",
    "/folder3/subfolder2/subfolder1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4",
    "/folder4/file1",
];

const FOLDER3_SUBTREE: &[&str] = &[
    "/folder3/subfolder1",
    "/folder3/subfolder1/subfolder1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2",
    "/folder3/subfolder2/subfolder1",
    "/folder3/subfolder2/subfolder1/file1",
];

fn all(c: &Ctx) -> &'static [&'static str] {
    match c.caps.walk_order {
        WalkOrder::SortedDepthFirst => SORTED_ALL,
        WalkOrder::KeyOrder => KEY_ALL,
    }
}

/// Whether `p` is `dir` or below it.
fn within(p: &str, dir: &str) -> bool {
    p == dir || p.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

async fn make_tree(c: &Ctx) -> CaseResult {
    for f in FILES {
        c.put(f, f.as_bytes().to_vec()).await?;
    }
    Ok(())
}

async fn remove_tree(c: &Ctx) -> CaseResult {
    for top in [
        "/file1",
        "/folder1",
        "/folder1-suffix",
        "/folder2",
        "/folder3",
        "/folder4",
    ] {
        c.delete(top).await?;
    }
    Ok(())
}

/// Runs `body` on the tree and removes the tree whatever `body` returned.
async fn with_tree<F, Fut>(c: Ctx, body: F) -> CaseResult
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = CaseResult>,
{
    make_tree(&c).await?;
    let result = body(c.clone()).await;
    let cleanup = remove_tree(&c).await;
    result.and(cleanup)
}

/// Checks the visited entries against `expected`: same paths in the same order, `is_dir` right
/// for each (a tree entry is a file exactly when it is in [`FILES`]) and file sizes equal to
/// the path length.
fn check_entries(what: &str, got: &[FileInfo], expected: &[&str]) -> CaseResult {
    let paths: Vec<&str> = got.iter().map(|f| f.path.as_str()).collect();
    if paths != expected {
        let at = paths
            .iter()
            .zip(expected.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(paths.len().min(expected.len()));
        fail!(
            "{what}: walk visited {} entries, expected {}; first difference at index {at}: got {:?}, expected {:?}\n  got:      {paths:?}\n  expected: {expected:?}",
            paths.len(),
            expected.len(),
            paths.get(at),
            expected.get(at)
        );
    }
    for fi in got {
        let p = fi.path.as_str();
        let is_file = FILES.contains(&p);
        ensure!(
            fi.is_dir != is_file,
            "{what}: {p} reported with is_dir = {}",
            fi.is_dir
        );
        if is_file {
            ensure!(
                fi.size == p.len() as u64,
                "{what}: {p} reported with size {}, expected {}",
                fi.size,
                p.len()
            );
        }
    }
    Ok(())
}

fn hint(p: &str) -> Result<WalkOptions, CaseError> {
    StoragePath::parse(p)
        .map(WalkOptions::start_after)
        .ok_or_else(|| CaseError::Failed(format!("bad hint {p}")))
}

pub async fn walk_all(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let got = c.walk_collect("/", &WalkOptions::default()).await?;
        check_entries("walk(/)", &got, all(&c))
    })
    .await
}

/// Walks answering `SkipDir` on `skip` and failing if anything below it is visited.
async fn walk_skipping(c: &Ctx, skip: &str) -> CaseResult {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let skip_owned = skip.to_owned();
    c.d.walk("/", &WalkOptions::default(), move |fi| {
        if let Ok(mut s) = seen2.lock() {
            s.push(fi.clone());
        }
        if fi.path.as_str() == skip_owned {
            Ok(WalkControl::SkipDir)
        } else {
            Ok(WalkControl::Continue)
        }
    })
    .await
    .step(format!("walk(/) skipping {skip}"))?;
    let got = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let expected: Vec<&str> = all(c)
        .iter()
        .copied()
        .filter(|p| *p == skip || !within(p, skip))
        .collect();
    check_entries(&format!("walk(/) with SkipDir on {skip}"), &got, &expected)
}

pub async fn walk_skip_dir(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        walk_skipping(&c, "/folder1").await?;
        walk_skipping(&c, "/folder3").await?;
        // SkipDir on a file is the same as Continue (distribution v3).
        let mut seen = Vec::new();
        c.d.walk("/", &WalkOptions::default(), |fi| {
            seen.push(fi.clone());
            Ok(if fi.is_dir {
                WalkControl::Continue
            } else {
                WalkControl::SkipDir
            })
        })
        .await
        .step("walk(/) answering SkipDir on every file")?;
        check_entries("walk(/) with SkipDir on files", &seen, all(&c))
    })
    .await
}

pub async fn walk_start_after_hint_from_root(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let deep = "/folder3/subfolder1/subfolder1/file1";
        let got = c.walk_collect("/", &hint(deep)?).await?;
        let expected: &[&str] = match c.caps.walk_order {
            WalkOrder::SortedDepthFirst => &[
                "/folder3/subfolder2",
                "/folder3/subfolder2/subfolder1",
                "/folder3/subfolder2/subfolder1/file1",
                "/folder4",
                "/folder4/file1",
            ],
            // A flat listing re-emits the ancestors of the first key after the hint.
            WalkOrder::KeyOrder => &[
                "/folder3",
                "/folder3/subfolder2",
                "/folder3/subfolder2/subfolder1",
                "/folder3/subfolder2/subfolder1/file1",
                "/folder4",
                "/folder4/file1",
            ],
        };
        check_entries(&format!("walk(/) after {deep}"), &got, expected)?;

        let got = c.walk_collect("/", &hint("/folder1/file1")?).await?;
        let expected: Vec<&str> = match c.caps.walk_order {
            // `/folder1-suffix` sorts after `/folder1`'s subtree.
            WalkOrder::SortedDepthFirst => SORTED_ALL[3..].to_vec(),
            // `folder1-suffix/…` sorts before `folder1/file1` as a key.
            WalkOrder::KeyOrder => KEY_ALL[5..].to_vec(),
        };
        check_entries("walk(/) after /folder1/file1", &got, &expected)
    })
    .await
}

pub async fn walk_start_after_hint_from_subdir(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let deep = "/folder3/subfolder1/subfolder1/file1";
        let got = c.walk_collect("/folder3", &hint(deep)?).await?;
        check_entries(
            &format!("walk(/folder3) after {deep}"),
            &got,
            &FOLDER3_SUBTREE[3..],
        )
    })
    .await
}

pub async fn walk_hint_outside_after(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let got = c.walk_collect("/folder1", &hint("/folder2")?).await?;
        check_entries("walk(/folder1) after /folder2", &got, &[])?;
        if c.caps.walk_order == WalkOrder::SortedDepthFirst {
            // In depth-first order `/folder1-suffix` comes after all of `/folder1`; as an S3
            // key it sorts before `folder1/…`, so a flat listing would walk everything.
            let got = c
                .walk_collect("/folder1", &hint("/folder1-suffix")?)
                .await?;
            check_entries("walk(/folder1) after /folder1-suffix", &got, &[])?;
        }
        // A hint outside and before `from` walks everything.
        let got = c.walk_collect("/folder1", &hint("/a")?).await?;
        check_entries("walk(/folder1) after /a", &got, &["/folder1/file1"])
    })
    .await
}

pub async fn walk_hint_equals_from(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let got = c.walk_collect("/folder3", &hint("/folder3")?).await?;
        check_entries("walk(/folder3) after /folder3", &got, FOLDER3_SUBTREE)
    })
    .await
}

pub async fn walk_hint_missing_inside(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let h = "/folder3/notafolder/notafile";
        let got = c.walk_collect("/folder3", &hint(h)?).await?;
        check_entries(&format!("walk(/folder3) after {h}"), &got, FOLDER3_SUBTREE)
    })
    .await
}

pub async fn walk_stop_early(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let mut seen = Vec::new();
        c.d.walk("/", &WalkOptions::default(), |fi| {
            seen.push(fi.clone());
            Ok(if fi.path.as_str() == "/folder1/file1" {
                WalkControl::Stop
            } else {
                WalkControl::Continue
            })
        })
        .await
        .step("walk(/) stopped at /folder1/file1")?;
        let end = all(&c)
            .iter()
            .position(|p| *p == "/folder1/file1")
            .map_or(0, |i| i + 1);
        check_entries("walk(/) with Stop", &seen, &all(&c)[..end])
    })
    .await
}

pub async fn walk_error_stops(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        const MARKER: &str = "conformance callback error";
        let mut seen = Vec::new();
        let res =
            c.d.walk("/", &WalkOptions::default(), |fi| {
                seen.push(fi.clone());
                Err(Error::backend("conformance", None, MARKER))
            })
            .await;
        match res {
            Ok(()) => fail!("walk(/) returned Ok although the callback failed"),
            Err(e) => ensure!(
                e.to_string().contains(MARKER),
                "walk(/) returned an error other than the callback's: {e}"
            ),
        }
        check_entries("walk(/) with a failing callback", &seen, &["/file1"])
    })
    .await
}

pub async fn walk_from_subdir(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let got = c.walk_collect("/folder1", &WalkOptions::default()).await?;
        check_entries("walk(/folder1)", &got, &["/folder1/file1"])
    })
    .await
}

pub async fn walk_missing_dir(c: Ctx) -> CaseResult {
    with_tree(c, |c| async move {
        let missing = "/folder9";
        let mut seen = Vec::new();
        let res =
            c.d.walk(missing, &WalkOptions::default(), |fi| {
                seen.push(fi.path.as_str().to_owned());
                Ok(WalkControl::Continue)
            })
            .await;
        ensure!(seen.is_empty(), "walk({missing}) visited {seen:?}");
        if c.caps.walk_missing_is_not_found {
            c.expect_not_found(format!("walk({missing})"), res, missing)
        } else {
            res.step(format!("walk({missing}) (expected Ok with no entries)"))
        }
    })
    .await
}
