//! The generic walk every backend can use, built on `list` and `stat`.

use crate::{FileInfo, Result, StorageDriver, StoragePath, WalkControl, WalkFn, WalkOptions};

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
pub async fn walk_fallback<D>(
    driver: &D,
    from: &StoragePath,
    options: &WalkOptions,
    f: &mut WalkFn<'_>,
) -> Result<()>
where
    D: StorageDriver + ?Sized,
{
    let _ = (driver, from, options, f);
    todo!("walk_fallback")
}

#[allow(dead_code)]
fn _assert_types(_: &FileInfo, _: WalkControl) {}
