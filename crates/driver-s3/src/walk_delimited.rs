//! Walk by delimiter listings (`usedelimiterwalk: true`, distribution PR #4796).
//!
//! The default walk ([`crate::walk`]) lists every key below `from` in one flat listing: cheap
//! for small trees, but a `/v2/_catalog` walk over the repositories of a large registry lists
//! every layer link and manifest revision. This walk lists one directory at a time with
//! `delimiter=/`: each level costs ⌈entries/1000⌉ requests, and a subtree the callback skips
//! ([`WalkControl::SkipDir`]) is never listed.
//!
//! The order is the generic walk's (children sorted by full path, depth first: `/folder1`
//! and its subtree before `/folder1-suffix`), entries carry size and modification time from
//! the listing (no stat per entry). Start-after hints follow the generic walk: the hint is
//! walked as a directory, then each ancestor up to `from`, skipping children at or before the
//! path just walked. As with the flat walk, a missing or empty `from` walks nothing and returns
//! `Ok(())`, and folder markers (`dir/` objects) are never files.
//!
//! Memory: the sorted children of each open level (depth × entries per directory).

use std::sync::Arc;

use regstore_driver_api::{FileInfo, Result, StoragePath, WalkControl, WalkFn, WalkOptions};

use crate::pagination::PageGuard;
use crate::s3api::ListRequest;
use crate::shared::Inner;

/// The children of `dir` from delimiter listings, sorted by path.
async fn children(inner: &Arc<Inner>, dir: &StoragePath) -> Result<Vec<FileInfo>> {
    let prefix = inner.keys.dir_prefix(dir);
    let mut out = Vec::new();
    let mut guard = PageGuard::new("ListObjectsV2", "walk");
    let mut token = None;
    loop {
        let page = inner
            .api
            .list_objects_v2(ListRequest {
                prefix: prefix.clone(),
                delimiter: Some("/".to_owned()),
                continuation_token: token,
                max_keys: Some(1000),
                ..Default::default()
            })
            .await
            .map_err(|e| e.into_backend(dir))?;
        for p in &page.common_prefixes {
            if let Some(path) = inner.keys.path(p).filter(|c| c.parent() == *dir) {
                out.push(FileInfo::dir(path));
            }
        }
        for obj in &page.objects {
            if obj.key.ends_with('/') {
                // A folder marker: the directory itself (prefix == key) or, on servers that
                // do not roll it into a common prefix, a child directory.
                if let Some(path) = inner
                    .keys
                    .path(&obj.key)
                    .filter(|c| c.parent() == *dir && c != dir)
                {
                    out.push(FileInfo::dir(path));
                }
                continue;
            }
            if let Some(path) = inner.keys.path(&obj.key).filter(|c| c.parent() == *dir) {
                out.push(
                    FileInfo::file(path, obj.size, obj.last_modified).with_etag(obj.etag.clone()),
                );
            }
        }
        match page.next_token {
            Some(t) => token = Some(guard.next(t).map_err(|e| e.into_backend(dir))?),
            None => break,
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    // A marker and a common prefix may name the same directory.
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

/// How a walk of one subtree ended.
enum Flow {
    Finished,
    Stopped,
}

/// Walks below `dir` depth first, skipping children `<= start_after`.
async fn walk_dir(
    inner: &Arc<Inner>,
    dir: &StoragePath,
    start_after: Option<&StoragePath>,
    f: &mut WalkFn<'_>,
) -> Result<Flow> {
    let mut stack = vec![children(inner, dir).await?.into_iter()];
    while let Some(level) = stack.last_mut() {
        let Some(entry) = level.next() else {
            stack.pop();
            continue;
        };
        if start_after.is_some_and(|after| entry.path.as_str() <= after.as_str()) {
            continue;
        }
        match f(&entry)? {
            WalkControl::Continue if entry.is_dir => {
                stack.push(children(inner, &entry.path).await?.into_iter());
            }
            WalkControl::Continue | WalkControl::SkipDir => {}
            WalkControl::Stop => return Ok(Flow::Stopped),
        }
    }
    Ok(Flow::Finished)
}

/// `path` with `/` as the lowest byte, so byte order is depth-first walk order.
fn depth_first_key(path: &StoragePath) -> Vec<u8> {
    path.as_bytes()
        .iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

/// See the module documentation.
pub(crate) async fn walk(
    inner: &Arc<Inner>,
    from: &StoragePath,
    options: &WalkOptions,
    f: &mut WalkFn<'_>,
) -> Result<()> {
    let Some(hint) = options.start_after.as_ref() else {
        return walk_dir(inner, from, None, f).await.map(|_| ());
    };
    if !hint.is_under(from) && hint != from {
        return if depth_first_key(hint) < depth_first_key(from) {
            walk_dir(inner, from, None, f).await.map(|_| ())
        } else {
            Ok(())
        };
    }
    let mut after = hint.clone();
    let mut base = hint.clone();
    loop {
        if let Flow::Stopped = walk_dir(inner, &base, Some(&after), f).await? {
            return Ok(());
        }
        if base == *from {
            return Ok(());
        }
        after = base.clone();
        base = base.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_first_key_orders_subtrees_first() {
        let p = |s: &str| StoragePath::parse(s).unwrap();
        assert!(depth_first_key(&p("/a/b")) < depth_first_key(&p("/a-b")));
        assert!(depth_first_key(&p("/a")) < depth_first_key(&p("/a/b")));
    }
}
