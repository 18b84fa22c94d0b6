//! Partitioned flat listings of `repositories/` and `blobs/`: every file of the tree in about
//! ⌈files/1000⌉ S3 requests plus one per key range, with `jobs` ranges walked at once.
//!
//! A walk on S3 is one flat listing (no request per directory), but a single listing is one
//! sequential chain of pages. So the key space is cut into ranges, each walked on its own with a
//! start-after hint and stopped at the next range's first key:
//!
//! * **blobs**: `blobs/<alg>/` is cut at two-hex-digit shard names (`00`, `10`, … for 16
//!   ranges), so R ranges cost R requests more than one chain, not one per shard (256);
//! * **repositories**: the namespace is listed level by level (delimiter listings) until there
//!   are enough units (top-level names, or the children of a namespace that is not itself a
//!   repository); sibling units are grouped into ranges.
//!
//! Walk order differs by backend: S3 lists in key order (`a-b/…` before `a/…`, because `-`
//! sorts before `/`), the generic walk depth first (`a/…` before `a-b/…`). The two agree on
//! siblings unless one name continues another with a byte below `/` (`-` or `.`), so a range
//! never begins at such a name; then every name of an earlier range comes before every name
//! of a later one in both orders. A walk skips entries of other known ranges and stops at
//! the first entry of a later range; entries of a name that appeared after the units were
//! listed (a repository pushed meanwhile) are kept by whichever walk meets them (callers
//! de-duplicate by path).
//!
//! The delimiter listings only choose where to cut; coverage does not depend on them. A
//! directory's first range starts at its beginning and its last runs to its end, and a
//! directory whose listing came back empty (missing, vanished, or a server answering an
//! empty page) is still walked whole, once — so an empty answer never hides a subtree. The
//! only extra cost is one request for a store without `repositories/` or `blobs/`.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::{Driver, FileInfo, StoragePath, WalkControl, WalkOptions};

use crate::error::{LayoutError, Result};
use crate::layout::Layout;
use crate::scan::{BlobFile, LinkFile, Tag};
use crate::Digest;

/// The most key ranges a listing is cut into for `jobs` concurrent walks: `jobs` rounded up to
/// a power of two, between 16 and 256. Each range costs up to one request more than a single
/// chain of pages.
pub fn range_count(jobs: usize) -> usize {
    jobs.max(1).next_power_of_two().clamp(16, 256)
}

/// The ranges to cut a listing of about `expected` keys into (unknown: [`range_count`]): no
/// more than one per 1000 keys, so the ranges' extra requests never exceed the pages
/// themselves; at least one; and on a large listing more than `jobs` — up to 256, one per
/// 100,000 keys — so that a caller holding what the ranges in flight found holds only part of
/// the listing.
pub fn ranges_for(jobs: usize, expected: Option<u64>) -> usize {
    let most = range_count(jobs);
    let Some(n) = expected else { return most };
    let per = |keys: u64| usize::try_from(n.div_ceil(keys)).unwrap_or(usize::MAX);
    per(1000).min(most.max(per(100_000)).min(256)).max(1)
}

/// Walks `from` starting after `start` (a path below `from`, or none). A missing `from` walks
/// nothing (the filesystem reports it, S3 cannot). regstore's filesystem driver reports an
/// empty directory met mid-walk (a revision whose link the registry API deleted) as
/// `PathNotFound` and stops the walk, so the walk is resumed after it with a start-after hint.
async fn walk_range(
    driver: &Driver,
    from: &str,
    start: Option<&str>,
    f: &mut (dyn FnMut(&FileInfo) -> WalkControl + Send),
) -> Result<()> {
    let mut options = match start.and_then(StoragePath::parse) {
        Some(hint) => WalkOptions::start_after(hint),
        None => WalkOptions::default(),
    };
    loop {
        let r = driver.walk(from, &options, |fi| Ok(f(fi))).await;
        match r {
            Ok(()) => return Ok(()),
            Err(regstore_driver_api::Error::PathNotFound { path, driver })
                if path.trim_end_matches('/') != from.trim_end_matches('/') =>
            {
                // Each resume passes one more path; a path that cannot be a hint, or the same
                // one twice, would loop. Ending quietly would drop the rest of the range (and
                // with it marks), so it is an error.
                let hint = StoragePath::parse(&path)
                    .filter(|h| options.start_after.as_ref() != Some(h))
                    .ok_or_else(|| {
                        LayoutError::from(regstore_driver_api::Error::not_found(driver, &path))
                    })?;
                options = WalkOptions::start_after(hint);
            }
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The name of `child` (a path) relative to `parent`: its last component.
fn base_name(child: &str) -> &str {
    child.rsplit('/').next().unwrap_or("")
}

/// The first path component of `path` below `parent/`, if `path` is below it.
fn first_component<'a>(parent: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(parent)?.strip_prefix('/')?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Cuts the sorted `names` into about `target` contiguous ranges, never before a name that
/// continues another name of the set with a byte below `/` (`lib-a` after `lib`): only there
/// do key order and depth-first order disagree, and the names that do so follow their prefix
/// at once in sorted order, so keeping them in their prefix's range keeps every range's
/// names before the next range's in both orders. Returns each name's range index.
fn cut(names: &[String], target: usize) -> HashMap<String, usize> {
    let set: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let per = names.len().div_ceil(target.max(1)).max(1);
    let mut out = HashMap::with_capacity(names.len());
    let (mut range, mut in_range) = (0usize, 0usize);
    for name in names {
        let has_prefix_sibling = (1..name.len()).any(|i| {
            name.as_bytes()[i] < b'/' && name.is_char_boundary(i) && set.contains(&name[..i])
        });
        if in_range >= per && !has_prefix_sibling {
            range += 1;
            in_range = 0;
        }
        out.insert(name.clone(), range);
        in_range += 1;
    }
    out
}

/// Sibling units below one directory, cut into ranges.
struct Parent {
    /// The directory's path.
    path: String,
    /// Unit name → range index.
    range_of: HashMap<String, usize>,
    /// The first name of each range, in order.
    firsts: Vec<String>,
}

impl Parent {
    fn new(path: String, mut names: Vec<String>, target: usize) -> Self {
        names.sort();
        names.dedup();
        let range_of = cut(&names, target);
        let mut firsts: Vec<String> = Vec::new();
        for n in &names {
            if range_of[n] == firsts.len() {
                firsts.push(n.clone());
            }
        }
        Parent {
            path,
            range_of,
            firsts,
        }
    }

    /// Walks range `r`, handing every file of it (and of names not known here) to `f`.
    async fn walk(
        &self,
        driver: &Driver,
        r: usize,
        f: &mut (dyn FnMut(&FileInfo) + Send),
    ) -> Result<()> {
        // The first range starts at the beginning, so names that sort before every known one
        // are met too.
        let start = (r > 0).then(|| format!("{}/{}", self.path, self.firsts[r]));
        walk_range(driver, &self.path, start.as_deref(), &mut |fi| {
            let Some(name) = first_component(&self.path, fi.path.as_str()) else {
                return WalkControl::Continue;
            };
            match self.range_of.get(name) {
                Some(&other) if other > r => WalkControl::Stop,
                Some(&other) if other < r => {
                    if fi.is_dir {
                        WalkControl::SkipDir
                    } else {
                        WalkControl::Continue
                    }
                }
                _ => {
                    if !fi.is_dir {
                        f(fi);
                    }
                    WalkControl::Continue
                }
            }
        })
        .await
    }
}

/// What a scan of `repositories/` keeps of one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoFiles {
    /// Files named `link` below `_manifests/revisions/`, sorted by path.
    pub revisions: Vec<LinkFile>,
    /// Tags, sorted by name.
    pub tags: Vec<Tag>,
    /// `_layers/<alg>/<hex>/link` files that the caller's filter kept, sorted by path.
    pub layers: Vec<LinkFile>,
    /// `_uploads/<id>/startedat` files (incomplete uploads), sorted by path.
    pub uploads: Vec<LinkFile>,
}

/// Which files of `_layers` a repository scan keeps (they can be most of the tree).
pub type LayerFilter<'a> = &'a (dyn Fn(&Digest) -> bool + Sync);

/// What a walk found in one repository, before sorting.
#[derive(Default)]
struct RepoAcc {
    revisions: Vec<LinkFile>,
    tags: BTreeMap<String, Tag>,
    layers: Vec<LinkFile>,
    uploads: Vec<LinkFile>,
}

fn link_file(fi: &FileInfo, digest: Option<Digest>) -> LinkFile {
    LinkFile {
        path: fi.path.to_string(),
        dir_digest: digest,
        mod_time: fi.mod_time,
        etag: fi.etag.clone(),
    }
}

/// Files one range walk of `repositories/` found, by repository.
type Found = BTreeMap<String, RepoAcc>;

/// Files the walk meets go to their repository: in `<repo>/_manifests/…`, `<repo>/_layers/…`
/// or `<repo>/_uploads/…`, `<repo>` (one or more components, none starting with `_`) is the
/// repository. Returns whether the file is a `_layers` link (kept or not).
fn classify(base: &str, fi: &FileInfo, layers: LayerFilter<'_>, out: &mut Found) -> bool {
    let Some(rel) = fi
        .path
        .as_str()
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let parts: Vec<&str> = rel.split('/').collect();
    let Some(at) = parts.iter().position(|p| p.starts_with('_')) else {
        return false;
    };
    if at == 0 {
        return false;
    }
    let repo = parts[..at].join("/");
    match &parts[at..] {
        ["_manifests", "revisions", rest @ .., "link"] => {
            let digest = match rest {
                [alg, hex] => Digest::from_parts(alg, hex).ok(),
                _ => None,
            };
            let acc = out.entry(repo).or_default();
            acc.revisions.push(link_file(fi, digest));
        }
        ["_manifests", "tags", tag, "current", "link"] => {
            let acc = out.entry(repo).or_default();
            let t = acc.tags.entry((*tag).to_owned()).or_default();
            t.current = Some(link_file(fi, None));
        }
        ["_manifests", "tags", tag, "index", alg, hex, "link"] => {
            if let Ok(d) = Digest::from_parts(alg, hex) {
                let acc = out.entry(repo).or_default();
                acc.tags.entry((*tag).to_owned()).or_default().index.push(d);
            }
        }
        ["_layers", alg, hex, "link"] => {
            if let Ok(d) = Digest::from_parts(alg, hex) {
                if layers(&d) {
                    let acc = out.entry(repo).or_default();
                    acc.layers.push(link_file(fi, Some(d)));
                }
            }
            return true;
        }
        ["_uploads", _, "startedat"] => {
            let acc = out.entry(repo).or_default();
            acc.uploads.push(link_file(fi, None));
        }
        // Upload data, and anything distribution does not write.
        _ => {}
    }
    false
}

/// Lists the units of `repositories/`: the names below it, or — while there are at most a
/// quarter as many as `target` — the names one level further down, when every name of a
/// directory is a namespace (a directory without a `_…` child, so not a repository). A
/// directory is replaced by its children only as a whole, so no walk covers another's names.
/// At most three levels; each level costs one listing per name, at most `target / 4`.
async fn units(driver: &Driver, base: &str, jobs: usize, target: usize) -> Result<Vec<Parent>> {
    // (directory, child names)
    let list = |dir: String| async move {
        match driver.list(&dir).await {
            Ok(children) => Ok((
                dir,
                children
                    .iter()
                    .map(|c| base_name(c.as_str()).to_owned())
                    .collect::<Vec<_>>(),
            )),
            // Missing, an empty directory (the filesystem reports it so), or a file.
            Err(e) if e.is_not_found() || e.is_invalid_input() => Ok((dir, Vec::new())),
            Err(e) => Err(LayoutError::from(e)),
        }
    };
    let (_, top) = list(base.to_owned()).await?;
    let mut groups: Vec<(String, Vec<String>)> = vec![(base.to_owned(), top)];
    for _ in 0..3 {
        let count: usize = groups.iter().map(|(_, n)| n.len()).sum();
        // Expanding costs a listing per name, wasted on names that are repositories; it is
        // worth it only while it can multiply the ranges.
        if count * 4 > target || count == 0 {
            break;
        }
        let mut next: Vec<(String, Vec<String>)> = Vec::new();
        let mut changed = false;
        for (p, names) in groups {
            // A directory listed as empty has nothing to expand into: it stays, walked whole.
            if names.is_empty() || names.iter().any(|n| n.starts_with('_')) {
                next.push((p, names));
                continue;
            }
            let dirs: Vec<String> = names.iter().map(|n| format!("{p}/{n}")).collect();
            let listed: Vec<(String, Vec<String>)> = futures::stream::iter(dirs)
                .map(list)
                .buffered(jobs.max(1))
                .try_collect()
                .await?;
            if listed
                .iter()
                .any(|(_, children)| children.iter().any(|c| c.starts_with('_')))
            {
                next.push((p, names));
                continue;
            }
            changed = true;
            // A namespace listed as empty stays, to be walked whole (see the module docs).
            next.extend(listed);
        }
        groups = next;
        if !changed {
            break;
        }
    }
    let count: usize = groups.iter().map(|(_, n)| n.len()).sum::<usize>().max(1);
    Ok(groups
        .into_iter()
        .map(|(p, n)| {
            // Each directory gets ranges in proportion to its share of the units.
            let share = (target * n.len()).div_ceil(count);
            Parent::new(p, n, share)
        })
        .collect())
}

/// What [`scan_repositories`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoScan {
    /// By repository name; a repository with no revision link, tag, kept layer link or upload
    /// is absent.
    pub repos: BTreeMap<String, RepoFiles>,
    /// Files the walk met below `repositories/` (a size hint for the next listing of it).
    pub files: u64,
    /// `_layers` links the walk met, kept or not.
    pub layer_links: u64,
}

/// The key ranges of `repositories/`, found once by [`RepoRanges::discover`]; each is then
/// scanned on its own, so a caller can process ranges as they arrive and hold only the ranges
/// in flight.
#[derive(Debug)]
pub struct RepoRanges {
    base: String,
    parents: Vec<Parent>,
    /// (parent index, range index within it)
    walks: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Parent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parent")
            .field("path", &self.path)
            .field("ranges", &self.firsts.len())
            .finish()
    }
}

impl RepoRanges {
    /// Lists the units of `repositories/` (delimiter listings; see the module documentation)
    /// and cuts them into about `ranges` ranges.
    pub async fn discover(
        driver: &Driver,
        layout: &Layout,
        jobs: usize,
        ranges: usize,
    ) -> Result<Self> {
        let base = layout.repositories();
        let parents = units(driver, &base, jobs, ranges.max(1)).await?;
        let walks = parents
            .iter()
            .enumerate()
            // A directory listed as empty has no names but is still walked, whole, once.
            .flat_map(|(i, p)| (0..p.firsts.len().max(1)).map(move |r| (i, r)))
            .collect();
        Ok(RepoRanges {
            base,
            parents,
            walks,
        })
    }

    /// The number of ranges.
    pub fn len(&self) -> usize {
        self.walks.len()
    }

    /// Whether there is nothing to scan. Never true after [`discover`](Self::discover): even
    /// a `repositories/` listed as missing is walked once, in case the listing was wrong.
    pub fn is_empty(&self) -> bool {
        self.walks.is_empty()
    }

    /// Scans range `i` (`0..len()`): the revision links, tags, (filtered) layer links and
    /// uploads of every repository in it. A repository's files are never split between ranges
    /// (a range is a set of whole directories); one created after [`discover`](Self::discover)
    /// may be met, whole, by two ranges.
    pub async fn scan(
        &self,
        driver: &Driver,
        i: usize,
        layers: LayerFilter<'_>,
    ) -> Result<RepoScan> {
        let Some(&(p, r)) = self.walks.get(i) else {
            return Ok(RepoScan::default());
        };
        let mut out = Found::new();
        let (mut files, mut layer_links) = (0u64, 0u64);
        let base = &self.base;
        self.parents[p]
            .walk(driver, r, &mut |fi| {
                files += 1;
                layer_links += u64::from(classify(base, fi, layers, &mut out));
            })
            .await?;
        Ok(RepoScan {
            repos: out
                .into_iter()
                .map(|(repo, acc)| (repo, acc.finish()))
                .collect(),
            files,
            layer_links,
        })
    }
}

impl RepoAcc {
    fn finish(self) -> RepoFiles {
        let mut f = RepoFiles {
            revisions: self.revisions,
            layers: self.layers,
            uploads: self.uploads,
            tags: self
                .tags
                .into_iter()
                .map(|(name, mut t)| {
                    t.name = name;
                    t
                })
                .collect(),
        };
        f.normalize();
        f
    }
}

impl RepoFiles {
    /// Sorts every list and drops duplicates (the same path met twice).
    fn normalize(&mut self) {
        for v in [&mut self.revisions, &mut self.layers, &mut self.uploads] {
            v.sort_by(|a, b| a.path.cmp(&b.path));
            v.dedup_by(|a, b| a.path == b.path);
        }
        for t in &mut self.tags {
            t.index.sort();
            t.index.dedup();
        }
    }

    /// Adds what another range found for the same repository.
    fn merge(&mut self, other: RepoFiles) {
        self.revisions.extend(other.revisions);
        self.layers.extend(other.layers);
        self.uploads.extend(other.uploads);
        for t in other.tags {
            match self.tags.iter_mut().find(|x| x.name == t.name) {
                Some(x) => {
                    x.current = x.current.take().or(t.current);
                    x.index.extend(t.index);
                }
                None => self.tags.push(t),
            }
        }
        self.tags.sort_by(|a, b| a.name.cmp(&b.name));
        self.normalize();
    }
}

/// Every revision link, tag, (filtered) layer link and upload of every repository, from a
/// partitioned walk of `repositories/` in about `ranges` ranges, `jobs` at once (see the
/// module documentation and [`ranges_for`]), merged. Holds the whole result; a caller that
/// can work range by range uses [`RepoRanges`] and holds only the ranges in flight.
pub async fn scan_repositories(
    driver: &Driver,
    layout: &Layout,
    jobs: usize,
    ranges: usize,
    layers: LayerFilter<'_>,
) -> Result<RepoScan> {
    let ranges = RepoRanges::discover(driver, layout, jobs, ranges).await?;
    let found: Vec<RepoScan> = futures::stream::iter(0..ranges.len())
        .map(|i| ranges.scan(driver, i, layers))
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    let mut out = RepoScan::default();
    for f in found {
        out.files += f.files;
        out.layer_links += f.layer_links;
        for (repo, files) in f.repos {
            match out.repos.entry(repo) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(files);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(files),
            }
        }
    }
    Ok(out)
}

/// The two-hex-digit shard names at which `ranges` blob ranges begin (the first is `00`).
fn shard_cuts(ranges: usize) -> Vec<String> {
    let ranges = ranges.clamp(1, 256);
    (0..ranges)
        .map(|i| format!("{:02x}", i * 256 / ranges))
        .collect()
}

/// Every blob below `blobs/` that `keep` accepts, and the paths of files named `data` whose
/// path does not decode (gc stops on them, fsck reports them), from a partitioned walk: each
/// `blobs/<alg>/` is cut into `ranges` ranges at shard boundaries (see [`ranges_for`]), `jobs`
/// walked at once. `keep` sees every blob as it is listed, so only what it keeps is held in memory;
/// `progress(n)` is told how many blobs each range listed.
pub async fn scan_blobs(
    driver: &Driver,
    layout: &Layout,
    jobs: usize,
    ranges: usize,
    keep: &(dyn Fn(&BlobFile) -> bool + Sync),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<BlobFile>, Vec<String>)> {
    let algs = match driver.list(&layout.blobs()).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let cuts = shard_cuts(ranges);
    // (directory, range): each algorithm's directory cut at shard names; when the listing
    // found none, `blobs/` itself, whole (see the module docs).
    let mut walks: Vec<(String, Option<usize>)> = Vec::new();
    for alg in &algs {
        walks.extend((0..cuts.len()).map(|r| (alg.to_string(), Some(r))));
    }
    if walks.is_empty() {
        walks.push((layout.blobs(), None));
    }
    let cuts = &cuts;
    let found: Vec<(Vec<BlobFile>, Vec<String>)> = futures::stream::iter(walks)
        .map(|(alg, r)| async move {
            let (mut kept, mut bad, mut seen) = (Vec::new(), Vec::new(), 0u64);
            let r_start = r.filter(|&r| r > 0);
            let start = r_start.map(|r| format!("{alg}/{}", cuts[r]));
            let end = r.and_then(|r| cuts.get(r + 1)).map(String::as_str);
            walk_range(driver, &alg, start.as_deref(), &mut |fi| {
                let Some(shard) = first_component(&alg, fi.path.as_str()) else {
                    return WalkControl::Continue;
                };
                if end.is_some_and(|end| shard >= end) {
                    return WalkControl::Stop;
                }
                if r_start.is_some_and(|r| shard < cuts[r].as_str()) {
                    return if fi.is_dir {
                        WalkControl::SkipDir
                    } else {
                        WalkControl::Continue
                    };
                }
                if fi.is_dir || fi.path.base_name() != "data" {
                    return WalkControl::Continue;
                }
                seen += 1;
                match layout.digest_of_blob_path(fi.path.as_str()) {
                    Some(digest) => {
                        let b = BlobFile {
                            digest,
                            size: fi.size,
                            mod_time: fi.mod_time,
                        };
                        if keep(&b) {
                            kept.push(b);
                        }
                    }
                    None => bad.push(fi.path.to_string()),
                }
                WalkControl::Continue
            })
            .await?;
            progress(seen);
            Ok::<_, LayoutError>((kept, bad))
        })
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    let (mut kept, mut bad) = (Vec::new(), Vec::new());
    for (k, b) in found {
        kept.extend(k);
        bad.extend(b);
    }
    bad.sort();
    Ok((kept, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ranges_grow_with_jobs_within_bounds() {
        assert_eq!(range_count(0), 16);
        assert_eq!(range_count(16), 16);
        assert_eq!(range_count(17), 32);
        assert_eq!(range_count(32), 32);
        assert_eq!(range_count(1000), 256);
        assert_eq!(ranges_for(32, None), 32);
        assert_eq!(ranges_for(32, Some(0)), 1);
        assert_eq!(ranges_for(32, Some(1000)), 1);
        assert_eq!(ranges_for(32, Some(1001)), 2);
        assert_eq!(ranges_for(32, Some(20_000)), 20);
        assert_eq!(ranges_for(32, Some(3_200_000)), 32);
        assert_eq!(ranges_for(32, Some(6_400_000)), 64);
        assert_eq!(ranges_for(32, Some(u64::MAX)), 256);
    }

    #[test]
    fn shard_cuts_are_even_two_digit_boundaries() {
        assert_eq!(shard_cuts(1), names(&["00"]));
        assert_eq!(shard_cuts(4), names(&["00", "40", "80", "c0"]));
        assert_eq!(shard_cuts(16)[15], "f0");
        let all = shard_cuts(256);
        assert_eq!((all[0].as_str(), all[255].as_str()), ("00", "ff"));
        assert_eq!(shard_cuts(1000).len(), 256);
    }

    #[test]
    fn a_range_never_begins_at_a_name_that_continues_a_sibling_below_slash() {
        // "lib-a" and "lib.b" continue the sibling "lib" with a byte below `/`: S3 lists them
        // before "lib/…", the generic walk after, so no range may begin at them. "libx"
        // sorts after "lib/…" in both orders.
        let n = names(&["a", "b", "lib", "lib-a", "lib.b", "libx", "z"]);
        let r = cut(&n, 7);
        assert_eq!(r["a"], 0);
        assert_eq!(r["b"], 1);
        assert_eq!(r["lib"], 2);
        assert_eq!(r["lib-a"], 2);
        assert_eq!(r["lib.b"], 2);
        assert_eq!(r["libx"], 3);
        assert_eq!(r["z"], 4);
        // "a-b" continues "a"; "a-b-c" continues "a-b" (and "a").
        let r = cut(&names(&["a", "a-b", "a-b-c", "c"]), 4);
        assert_eq!((r["a"], r["a-b"], r["a-b-c"], r["c"]), (0, 0, 0, 1));
        // One range: everything in it.
        assert!(cut(&n, 1).values().all(|&v| v == 0));
        // More ranges than names: one name per range where allowed.
        assert_eq!(cut(&names(&["a", "b"]), 10)["b"], 1);
    }
}
