//! The generic walk every backend can use, built on `list` and `stat`.

use crate::{
    Error, FileInfo, Result, StorageDriver, StoragePath, WalkControl, WalkFn, WalkOptions,
};

/// Walks `from` depth first with `driver.list` and `driver.stat`, children sorted by plain byte
/// order of their full paths (so `/folder1` < `/folder1-suffix` < `/folder2`, and a directory is
/// followed at once by its subtree). Semantics are distribution's `WalkFallback`:
///
/// * a child whose stat is `PathNotFound` (deleted meanwhile) is skipped; other errors abort;
/// * walking a missing directory is `PathNotFound`;
/// * [`WalkControl::SkipDir`] skips a directory's subtree, [`WalkControl::Stop`] ends the walk
///   with `Ok(())`, an `Err` from `f` ends it with that error;
/// * with a start-after hint, only entries after the hint in this order are visited (a hint
///   outside `from` that sorts before it walks everything, after it walks nothing).
///
/// Unlike distribution, [`WalkControl::Stop`] ends the whole walk even when a hint made the
/// walk resume at several levels (distribution stopped only the current level there).
pub async fn walk_fallback<D>(
    driver: &D,
    from: &StoragePath,
    options: &WalkOptions,
    f: &mut WalkFn<'_>,
) -> Result<()>
where
    D: StorageDriver + ?Sized,
{
    let Some(hint) = options.start_after.as_ref() else {
        return walk_dir(driver, from, None, f).await.map(|_| ());
    };
    if !hint.is_under(from) {
        // Outside `from`: the whole of `from` is either before or after the hint in walk order.
        // Walk order is depth first, so compare with `/` sorting below every other byte.
        return if depth_first_key(hint) < depth_first_key(from) {
            walk_dir(driver, from, None, f).await.map(|_| ())
        } else {
            Ok(())
        };
    }
    // Inside `from` (or equal to it): walk the hint itself as a directory (all its children sort
    // after it), then each ancestor up to `from`, skipping the children at or before the path
    // just walked. A level that does not exist (the hint is a file, or missing) is skipped.
    let mut after = hint.clone();
    let mut base = hint.clone();
    loop {
        match walk_dir(driver, &base, Some(after.as_str()), f).await {
            Ok(Flow::Stopped) => return Ok(()),
            Ok(Flow::Finished) => {}
            // This level does not exist: go on with its parent. A path deeper down that
            // vanished mid-walk is the caller's error to see: swallowing it here would end the
            // walk early, without a word, at the first ancestor that is `from`.
            Err(Error::PathNotFound { ref path, .. })
                if path.trim_end_matches('/') == base.as_str().trim_end_matches('/') => {}
            Err(e) => return Err(e),
        }
        if base == *from {
            return Ok(());
        }
        after = base.clone();
        base = base.parent();
    }
}

/// `path` with every `/` replaced by NUL, so that byte order equals depth-first walk order
/// (`/a/b` before `/a-b`).
fn depth_first_key(path: &StoragePath) -> Vec<u8> {
    path.as_bytes()
        .iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

/// How a walk of one subtree ended.
enum Flow {
    /// Every entry was visited (or skipped as asked).
    Finished,
    /// The callback asked to stop the whole walk.
    Stopped,
}

/// Lists `dir` and returns its children in byte order.
async fn sorted_children<D>(driver: &D, dir: &StoragePath) -> Result<Vec<StoragePath>>
where
    D: StorageDriver + ?Sized,
{
    let mut children = driver.list(dir).await?;
    children.sort_unstable();
    Ok(children)
}

/// Walks the subtree below `dir`, skipping every child `<= start_after` (the hint never lies
/// deeper than a child of `dir`, so descendants of a visited child all sort after it).
/// Iterative, with one sorted child list per open level, so deep trees need no recursion.
async fn walk_dir<D>(
    driver: &D,
    dir: &StoragePath,
    start_after: Option<&str>,
    f: &mut WalkFn<'_>,
) -> Result<Flow>
where
    D: StorageDriver + ?Sized,
{
    let mut stack = vec![sorted_children(driver, dir).await?.into_iter()];
    while let Some(level) = stack.last_mut() {
        let Some(child) = level.next() else {
            stack.pop();
            continue;
        };
        if start_after.is_some_and(|after| child.as_str() <= after) {
            continue;
        }
        let info: FileInfo = match driver.stat(&child).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => {
                tracing::debug!(path = %child, "walk: entry vanished between list and stat");
                continue;
            }
            Err(e) => return Err(e),
        };
        match f(&info)? {
            WalkControl::Continue if info.is_dir => {
                stack.push(sorted_children(driver, &child).await?.into_iter());
            }
            WalkControl::Continue | WalkControl::SkipDir => {}
            WalkControl::Stop => return Ok(Flow::Stopped),
        }
    }
    Ok(Flow::Finished)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::{ByteStream, Error, FileWriter};

    const NAME: &str = "walktest";

    /// A read-only tree of files (directories implied by paths). `ghosts` are listed but their
    /// stat says not found, as if deleted between list and stat.
    #[derive(Debug, Default)]
    struct TreeDriver {
        files: BTreeMap<String, u64>,
        ghosts: BTreeSet<String>,
        /// Directories whose stat succeeds but whose listing says not found, as if emptied and
        /// removed between the two.
        vanishing: BTreeSet<String>,
    }

    impl TreeDriver {
        fn with_files(paths: &[&str]) -> Self {
            TreeDriver {
                files: paths.iter().map(|p| ((*p).to_owned(), 1)).collect(),
                ghosts: BTreeSet::new(),
                vanishing: BTreeSet::new(),
            }
        }

        fn is_dir(&self, p: &StoragePath) -> bool {
            p.is_root() || self.files.keys().any(|k| k.starts_with(&format!("{p}/")))
        }
    }

    #[async_trait]
    impl StorageDriver for TreeDriver {
        fn name(&self) -> &str {
            NAME
        }
        async fn get_content(&self, _: &StoragePath) -> Result<Bytes> {
            Err(Error::unsupported(NAME, "get_content"))
        }
        async fn put_content(&self, _: &StoragePath, _: Bytes) -> Result<()> {
            Err(Error::unsupported(NAME, "put_content"))
        }
        async fn reader(&self, _: &StoragePath, _: u64) -> Result<ByteStream> {
            Err(Error::unsupported(NAME, "reader"))
        }
        async fn writer(&self, _: &StoragePath, _: bool) -> Result<Box<dyn FileWriter>> {
            Err(Error::unsupported(NAME, "writer"))
        }
        async fn stat(&self, p: &StoragePath) -> Result<FileInfo> {
            if self.ghosts.contains(p.as_str()) {
                Err(Error::not_found(NAME, p.as_str()))
            } else if let Some(size) = self.files.get(p.as_str()) {
                Ok(FileInfo::file(p.clone(), *size, None))
            } else if self.is_dir(p) {
                Ok(FileInfo::dir(p.clone()))
            } else {
                Err(Error::not_found(NAME, p.as_str()))
            }
        }
        async fn list(&self, p: &StoragePath) -> Result<Vec<StoragePath>> {
            if !self.is_dir(p) || self.vanishing.contains(p.as_str()) {
                return Err(Error::not_found(NAME, p.as_str()));
            }
            let prefix = if p.is_root() {
                "/".to_owned()
            } else {
                format!("{p}/")
            };
            let mut out = BTreeSet::new();
            for k in self.files.keys().chain(self.ghosts.iter()) {
                if let Some(rest) = k.strip_prefix(&prefix) {
                    let first = rest.split('/').next().unwrap_or(rest);
                    out.extend(p.join(first));
                }
            }
            // Reverse order, so the walk's own sorting is what the tests observe.
            Ok(out.into_iter().rev().collect())
        }
        async fn move_object(&self, _: &StoragePath, _: &StoragePath) -> Result<()> {
            Err(Error::unsupported(NAME, "move_object"))
        }
        async fn delete(&self, _: &StoragePath) -> Result<()> {
            Err(Error::unsupported(NAME, "delete"))
        }
    }

    fn tree() -> TreeDriver {
        TreeDriver::with_files(&[
            "/file1",
            "/folder1/file1",
            "/folder1-suffix/file1",
            "/folder2/file1",
            "/folder3/subfolder1/subfolder1/file1",
            "/folder3/subfolder2/subfolder1/file1",
            "/folder4/file1",
        ])
    }

    /// The full walk of [`tree`] from `/`, with whether each entry is a directory.
    const ALL: [(&str, bool); 16] = [
        ("/file1", false),
        ("/folder1", true),
        ("/folder1/file1", false),
        ("/folder1-suffix", true),
        ("/folder1-suffix/file1", false),
        ("/folder2", true),
        ("/folder2/file1", false),
        ("/folder3", true),
        ("/folder3/subfolder1", true),
        ("/folder3/subfolder1/subfolder1", true),
        ("/folder3/subfolder1/subfolder1/file1", false),
        ("/folder3/subfolder2", true),
        ("/folder3/subfolder2/subfolder1", true),
        ("/folder3/subfolder2/subfolder1/file1", false),
        ("/folder4", true),
        ("/folder4/file1", false),
    ];

    fn p(s: &str) -> StoragePath {
        StoragePath::parse_dir(s).expect("test path")
    }

    /// Walks and records every visited path; `control` decides the answer per path.
    async fn run(
        d: &TreeDriver,
        from: &str,
        hint: Option<&str>,
        mut control: impl FnMut(&FileInfo) -> Result<WalkControl> + Send,
    ) -> (Vec<String>, Result<()>) {
        let options = hint
            .map(|h| WalkOptions::start_after(p(h)))
            .unwrap_or_default();
        let mut seen = Vec::new();
        let mut f = |fi: &FileInfo| {
            seen.push(fi.path.as_str().to_owned());
            control(fi)
        };
        let res = walk_fallback(d, &p(from), &options, &mut f).await;
        (seen, res)
    }

    async fn walk_paths(from: &str, hint: Option<&str>) -> Vec<String> {
        let (seen, res) = run(&tree(), from, hint, |_| Ok(WalkControl::Continue)).await;
        res.expect("walk succeeds");
        seen
    }

    fn all_from(first: &str) -> Vec<String> {
        ALL.iter()
            .map(|(p, _)| (*p).to_owned())
            .skip_while(|p| p != first)
            .collect()
    }

    /// A directory that vanishes mid-walk deep below a resumed walk's levels is reported, not
    /// taken for a missing level (which ended the walk early, silently, before `/folder4`).
    #[tokio::test]
    async fn a_directory_vanishing_during_a_resumed_walk_is_an_error_not_the_end() {
        let mut d = tree();
        d.vanishing.insert("/folder3/subfolder1".to_owned());
        let (seen, res) = run(&d, "/", Some("/folder1"), |_| Ok(WalkControl::Continue)).await;
        match res {
            Err(Error::PathNotFound { path, .. }) => assert_eq!(path, "/folder3/subfolder1"),
            other => panic!("expected the vanished directory, got {other:?}"),
        }
        assert_eq!(seen.last().map(String::as_str), Some("/folder3/subfolder1"));
        // Resuming after it, as callers do, visits the rest.
        let (rest, res) = run(&d, "/", Some("/folder3/subfolder1"), |_| {
            Ok(WalkControl::Continue)
        })
        .await;
        res.unwrap();
        assert_eq!(rest, all_from("/folder3/subfolder2"));
    }

    #[tokio::test]
    async fn walk_all_in_depth_first_byte_order() {
        let (seen, res) = run(&tree(), "/", None, |fi| {
            let want = ALL
                .iter()
                .find(|(p, _)| *p == fi.path.as_str())
                .map(|(_, d)| *d);
            assert_eq!(want, Some(fi.is_dir), "is_dir of {}", fi.path);
            Ok(WalkControl::Continue)
        })
        .await;
        res.unwrap();
        assert_eq!(seen, all_from("/file1"));
        assert_eq!(seen.len(), 16);
    }

    #[tokio::test]
    async fn skip_dir() {
        let (seen, res) = run(&tree(), "/", None, |fi| {
            Ok(if fi.path.as_str() == "/folder1" {
                WalkControl::SkipDir
            } else {
                WalkControl::Continue
            })
        })
        .await;
        res.unwrap();
        let want: Vec<String> = all_from("/file1")
            .into_iter()
            .filter(|p| p != "/folder1/file1")
            .collect();
        assert_eq!(seen, want);
    }

    #[tokio::test]
    async fn skip_dir_on_a_file_is_a_no_op() {
        let (seen, res) = run(&tree(), "/", None, |_| Ok(WalkControl::SkipDir)).await;
        res.unwrap();
        // Every top-level entry, and nothing below any directory.
        assert_eq!(
            seen,
            [
                "/file1",
                "/folder1",
                "/folder1-suffix",
                "/folder2",
                "/folder3",
                "/folder4"
            ]
        );
    }

    #[tokio::test]
    async fn hint_inside_a_sibling_prefix() {
        // `-` sorts before `/`: the walk must resume at /folder1-suffix, not skip it.
        assert_eq!(
            walk_paths("/", Some("/folder1/file1")).await,
            all_from("/folder1-suffix")
        );
    }

    #[tokio::test]
    async fn hint_deep_in_tree_from_root() {
        // /folder3 itself is not emitted again.
        assert_eq!(
            walk_paths("/", Some("/folder3/subfolder1/subfolder1/file1")).await,
            all_from("/folder3/subfolder2")
        );
    }

    #[tokio::test]
    async fn hint_deep_in_tree_from_subfolder() {
        assert_eq!(
            walk_paths("/folder3", Some("/folder3/subfolder1/subfolder1/file1")).await,
            [
                "/folder3/subfolder2",
                "/folder3/subfolder2/subfolder1",
                "/folder3/subfolder2/subfolder1/file1"
            ]
        );
    }

    #[tokio::test]
    async fn hint_outside_and_after_walks_nothing() {
        assert!(walk_paths("/folder1", Some("/folder1-suffix"))
            .await
            .is_empty());
        assert!(walk_paths("/folder3", Some("/folder4/file1"))
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn hint_outside_and_before_walks_everything() {
        // "/folder1-suffix/file1" sorts before "/folder3" in walk order.
        assert_eq!(
            walk_paths("/folder3", Some("/folder1-suffix/file1")).await,
            walk_paths("/folder3", None).await
        );
        // In plain byte order "/folder1-suffix" < "/folder1/x", but in walk order /folder1's
        // subtree comes first: a hint at /folder1-suffix is after everything in /folder1.
        assert!(walk_paths("/folder1", Some("/folder1-suffix/file1"))
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn hint_equal_to_from_walks_whole_subtree() {
        assert_eq!(
            walk_paths("/folder3", Some("/folder3")).await,
            walk_paths("/folder3", None).await
        );
        assert_eq!(walk_paths("/folder3", None).await.len(), 6);
        assert_eq!(walk_paths("/", Some("/")).await, all_from("/file1"));
    }

    #[tokio::test]
    async fn hint_naming_missing_path_walks_what_follows() {
        assert_eq!(
            walk_paths("/folder3", Some("/folder3/notafolder/notafile")).await,
            walk_paths("/folder3", None).await
        );
        assert_eq!(
            walk_paths("/", Some("/folder2/zzz")).await,
            all_from("/folder3")
        );
    }

    #[tokio::test]
    async fn stop_early() {
        let (seen, res) = run(&tree(), "/", None, |fi| {
            Ok(if fi.path.as_str() == "/folder1/file1" {
                WalkControl::Stop
            } else {
                WalkControl::Continue
            })
        })
        .await;
        res.unwrap();
        assert_eq!(seen, ["/file1", "/folder1", "/folder1/file1"]);
    }

    #[tokio::test]
    async fn stop_ends_every_level_of_a_hinted_walk() {
        // distribution would go on with /folder4 after stopping inside /folder3.
        let (seen, res) = run(
            &tree(),
            "/",
            Some("/folder3/subfolder1/subfolder1/file1"),
            |fi| {
                Ok(if fi.path.as_str() == "/folder3/subfolder2" {
                    WalkControl::Stop
                } else {
                    WalkControl::Continue
                })
            },
        )
        .await;
        res.unwrap();
        assert_eq!(seen, ["/folder3/subfolder2"]);
    }

    #[tokio::test]
    async fn error_from_callback_stops_and_propagates() {
        let (seen, res) = run(&tree(), "/", None, |_| {
            Err(Error::backend(NAME, None, "callback failed"))
        })
        .await;
        assert_eq!(seen, ["/file1"]);
        let e = res.unwrap_err();
        assert!(e.to_string().contains("callback failed"), "{e}");
        // Also through a hinted walk.
        let (seen, res) = run(&tree(), "/", Some("/folder2"), |_| {
            Err(Error::backend(NAME, None, "callback failed"))
        })
        .await;
        // The hint's own subtree sorts after the hint, so it comes first.
        assert_eq!(seen, ["/folder2/file1"]);
        assert!(res.is_err());
    }

    #[tokio::test]
    async fn walk_from_subfolder() {
        assert_eq!(walk_paths("/folder1", None).await, ["/folder1/file1"]);
    }

    #[tokio::test]
    async fn walk_missing_directory_is_not_found() {
        let (seen, res) = run(&tree(), "/nope", None, |_| Ok(WalkControl::Continue)).await;
        assert!(seen.is_empty());
        let e = res.unwrap_err();
        assert!(e.is_not_found() && e.to_string().contains("/nope"), "{e}");
        // Walking a file is walking something that is not a directory.
        let (_, res) = run(&tree(), "/file1", None, |_| Ok(WalkControl::Continue)).await;
        assert!(res.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn walk_empty_root() {
        let d = TreeDriver::default();
        let (seen, res) = run(&d, "/", None, |_| Ok(WalkControl::Continue)).await;
        res.unwrap();
        assert!(seen.is_empty());
    }

    #[tokio::test]
    async fn file_removed_between_list_and_stat() {
        let mut d = TreeDriver::with_files(&["/zoidberg"]);
        d.ghosts.insert("/bender".to_owned());
        let (seen, res) = run(&d, "/", None, |_| Ok(WalkControl::Continue)).await;
        res.unwrap();
        assert_eq!(seen, ["/zoidberg"]);
    }
}
