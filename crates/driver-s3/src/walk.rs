//! Walk by one flat listing, with directories inferred from the keys.
//!
//! S3 has no directories, so listing level by level would cost one request per directory.
//! Instead the walk lists every key below `from` without a delimiter (keys arrive in byte
//! order) and emits, before each file, the directories between the previous file's directory
//! and this one's. The order is therefore S3's key order, not the sorted-children order of the
//! generic walk: `/folder1-suffix/…` comes before `/folder1/…` because `-` sorts before `/`.
//!
//! Differences from the generic walk, all deliberate (distribution's S3 driver does the same):
//! * walking a missing or empty directory returns `Ok(())` without calling the callback — an
//!   empty prefix and a missing one cannot be told apart, and a registry's garbage collector
//!   must not fail on an empty store;
//! * with a start-after hint, the listing starts after the hint's key, and the ancestors of
//!   the first key listed are emitted again (they sort before the hint, but the walk cannot
//!   know it already reported them);
//! * folder-marker keys (`dir/`, empty objects some tools create) are never reported as files;
//!   the directory they name is.
//!
//! The next page is requested as soon as a page has arrived, before the callback sees its
//! entries, so the server's listing and the answer's parsing overlap with the callback's work.
//! A full walk still costs ⌈N/1000⌉ requests; a walk the callback stops (or fails) early may
//! have sent one listing more than it used, which is aborted.

use std::sync::Arc;

use futures::future::BoxFuture;
use regstore_driver_api::{FileInfo, Result, StoragePath, WalkControl, WalkFn, WalkOptions};

use crate::error::S3Error;
use crate::pagination::ObjectPages;
use crate::s3api::{ListPage, ListRequest};
use crate::shared::Inner;

/// A listing started ahead of need; aborted when dropped.
enum Pending {
    Spawned(tokio::task::JoinHandle<std::result::Result<ListPage, S3Error>>),
    /// Outside a runtime (never in practice: the HTTP client needs one): run when awaited.
    Inline(BoxFuture<'static, std::result::Result<ListPage, S3Error>>),
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Pending::Spawned(h) = self {
            h.abort();
        }
    }
}

impl Pending {
    fn start(inner: &Arc<Inner>, req: ListRequest) -> Self {
        let inner = Arc::clone(inner);
        let fut = async move { inner.api.list_objects_v2(req).await };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => Pending::Spawned(rt.spawn(fut)),
            Err(_) => Pending::Inline(Box::pin(fut)),
        }
    }

    async fn wait(mut self) -> std::result::Result<ListPage, S3Error> {
        match &mut self {
            Pending::Spawned(h) => match h.await {
                Ok(r) => r,
                Err(e) => Err(S3Error {
                    operation: "ListObjectsV2",
                    class: crate::error::ErrorClass::Transport,
                    status: None,
                    code: None,
                    message: format!("listing task failed: {e}"),
                }),
            },
            Pending::Inline(f) => f.await,
        }
    }
}

/// The directories to emit before an entry whose directory is `dir`, top-down: `dir` and its
/// ancestors below `from`, stopping at the previously emitted directory or any of its
/// ancestors (those were emitted already).
fn new_dirs(from: &StoragePath, prev: &StoragePath, dir: &StoragePath) -> Vec<StoragePath> {
    let mut out = Vec::new();
    let mut d = dir.clone();
    while d != *from && !d.is_root() && !prev.is_under(&d) && d.is_under(from) {
        let parent = d.parent();
        out.push(d);
        d = parent;
    }
    out.reverse();
    out
}

/// See the module documentation.
pub(crate) async fn walk(
    inner: &Arc<Inner>,
    from: &StoragePath,
    options: &WalkOptions,
    f: &mut WalkFn<'_>,
) -> Result<()> {
    let prefix = inner.keys.dir_prefix(from);
    // StartAfter only for a real hint: a StartAfter equal to the bare prefix makes some
    // servers (SeaweedFS) answer nothing.
    let start_after = options
        .start_after
        .as_ref()
        .filter(|h| !h.is_root())
        .map(|h| inner.keys.key(h));
    let mut pages = ObjectPages::new(
        "walk",
        ListRequest {
            prefix: prefix.clone(),
            start_after: start_after.clone(),
            max_keys: Some(1000),
            ..Default::default()
        },
    );
    let mut prev_dir = from.clone();
    let mut skip: Option<StoragePath> = None;
    let mut pending = Some(Pending::start(inner, pages.first()));

    while let Some(p) = pending.take() {
        let page = p.wait().await.map_err(|e| e.into_backend(from))?;
        // A looping token is reported after this page's entries: a callback that stops on
        // them never sees the error.
        let mut refused = None;
        match pages.after(page.next_token.clone()) {
            Ok(Some(next)) => pending = Some(Pending::start(inner, next)),
            Ok(None) => {}
            Err(e) => refused = Some(e),
        }

        for obj in &page.objects {
            let is_marker = obj.key.ends_with('/');
            let Some(path) = inner.keys.path(&obj.key) else {
                // The prefix's own marker, or a key that is no valid path (foreign object).
                continue;
            };
            if !path.is_under(from) || path == *from {
                continue;
            }
            let dir = if is_marker {
                path.clone()
            } else {
                path.parent()
            };
            let mut entries: Vec<FileInfo> = new_dirs(from, &prev_dir, &dir)
                .into_iter()
                .map(FileInfo::dir)
                .collect();
            prev_dir = dir;
            if !is_marker {
                entries.push(
                    FileInfo::file(path, obj.size, obj.last_modified).with_etag(obj.etag.clone()),
                );
            }
            for entry in entries {
                if let Some(s) = &skip {
                    if entry.path.is_under(s) {
                        continue;
                    }
                }
                match f(&entry) {
                    Ok(WalkControl::Continue) => {}
                    Ok(WalkControl::SkipDir) => {
                        if entry.is_dir {
                            skip = Some(entry.path.clone());
                        }
                    }
                    Ok(WalkControl::Stop) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(e) = refused {
            return Err(e.into_backend(from));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> StoragePath {
        StoragePath::parse_dir(s).expect("valid test path")
    }

    #[test]
    fn infers_directories_top_down() {
        let root = p("/");
        assert_eq!(new_dirs(&root, &root, &p("/")), Vec::<StoragePath>::new());
        assert_eq!(
            new_dirs(&root, &root, &p("/a/b/c")),
            vec![p("/a"), p("/a/b"), p("/a/b/c")]
        );
        // Sibling of the previous directory: only the new one.
        assert_eq!(
            new_dirs(&root, &p("/a/b/c"), &p("/a/b/d")),
            vec![p("/a/b/d")]
        );
        // Back up to an ancestor of the previous directory: nothing new.
        assert_eq!(
            new_dirs(&root, &p("/a/b/c"), &p("/a/b")),
            Vec::<StoragePath>::new()
        );
        // `/folder1-suffix` then `/folder1`: not an ancestor despite the string prefix.
        assert_eq!(
            new_dirs(&root, &p("/folder1-suffix"), &p("/folder1")),
            vec![p("/folder1")]
        );
        // Never `from` itself or above it.
        assert_eq!(
            new_dirs(&p("/a"), &p("/a"), &p("/a/b/c")),
            vec![p("/a/b"), p("/a/b/c")]
        );
    }
}
