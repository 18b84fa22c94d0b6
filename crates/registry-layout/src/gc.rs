//! Mark-and-sweep garbage collection of distribution's layout, safe beside a running registry.
//!
//! [`plan`] decides everything and deletes nothing; [`sweep`] carries a plan out. The sets are
//! distribution's (see `docs/gc.md`), with two deliberate differences: children of a kept
//! index (and everything they reference) are kept even with `delete_untagged` (distribution
//! 2.8 frees them, #3178), and nothing modified after `start − min_age` is deleted.
//!
//! Phases of [`plan`]:
//! 1. **mark**: list `repositories/` ([`listing::scan_repositories`]: a flat walk cut into
//!    ranges); per repository (concurrently), read every revision link; keep a revision when
//!    `delete_untagged` is off, a tag's `current/link` names it, or its link is young; mark a
//!    kept manifest, its references, and — for an index — the children that are revisions of
//!    the same repository, recursively. Untagged, old revisions are queued. A link whose listed
//!    ETag is the MD5 of the digest it should hold is not read ([`scan::link_etag_names`]):
//!    on S3 only manifests are read.
//! 2. **blobs**: list `blobs/` ([`listing::scan_blobs`], ranges of shards, concurrently); an
//!    unmarked blob older than the cutoff is a candidate; a queued revision whose blob is not
//!    listed is dropped (distribution skips it).
//! 3. **re-scan**: list the repositories again; a `_layers` link to a candidate that is young
//!    (a push or mount during or just before the run) saves the candidate; a young revision
//!    link not seen in phase 1 is marked like a tagged one; a queued revision whose link was
//!    rewritten (re-pushed) is dropped from the queue. Old links to candidates are queued for
//!    deletion with their blob.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::Driver;

use crate::digest::{Digest, DigestSet};
use crate::error::{LayoutError, Result};
use crate::layout::Layout;
use crate::listing::{self, RepoFiles};
use crate::manifest::Manifest;
use crate::scan::{self, LinkFile};

/// What to collect and how.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Also delete manifests no tag currently points at (distribution's `-m`).
    pub delete_untagged: bool,
    /// Nothing modified after `start − min_age` is deleted (see `docs/gc.md` for the race
    /// argument).
    pub min_age: Duration,
    /// Listings running at once, reads running at once, and deletes running at once (each at
    /// least 1): up to `2 × jobs` requests in flight while marking.
    pub jobs: usize,
    /// Record unparseable manifests and bad link files and go on (keeping the manifest, but
    /// not what it may reference) instead of stopping before any delete.
    pub skip_bad_manifests: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            delete_untagged: false,
            min_age: DEFAULT_MIN_AGE,
            jobs: 8,
            skip_bad_manifests: false,
        }
    }
}

/// The default `min_age`: longer than any push takes, so a push that began before the run
/// cannot have uploaded blobs that are old by this measure (see `docs/gc.md`).
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(24 * 3600);

/// Progress callbacks; every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A phase begins (`"repositories"`, `"blobs"`, `"re-scan"`, `"delete"`).
    fn stage(&self, _name: &'static str) {}
    /// `n` more items of the current phase are done.
    fn tick(&self, _n: u64) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// An untagged manifest to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDeletion {
    /// The repository.
    pub repository: String,
    /// The manifest digest (the revision link's content, as distribution uses it).
    pub digest: Digest,
    /// Tags whose history (`index/`) names the digest; those entries are deleted too.
    pub tags: Vec<String>,
    /// The revision link's modification time, compared again by the re-scan.
    mod_time: Option<SystemTime>,
    /// Every file the scan found below the revision directory (the link, and the signature
    /// links old registries wrote), so the sweep deletes exact objects without listing.
    files: Vec<String>,
}

/// A blob to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDeletion {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A `_layers` link to delete (its blob is deleted too).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LayerLinkDeletion {
    /// The repository.
    pub repository: String,
    /// The linked digest.
    pub digest: Digest,
}

/// Everything a run decided; [`sweep`] deletes exactly this.
#[derive(Debug, Clone)]
pub struct GcPlan {
    /// When marking started.
    pub started: SystemTime,
    /// `started − min_age`: only what is older than this may be deleted.
    pub cutoff: SystemTime,
    /// Repositories visited.
    pub repositories: usize,
    /// Distinct digests marked (distribution's "N blobs marked").
    pub marked: usize,
    /// Heap bytes of the mark set (32 per sha256 digest).
    pub mark_set_bytes: usize,
    /// Untagged manifests to delete (with `delete_untagged`), by repository and digest.
    pub manifests: Vec<ManifestDeletion>,
    /// Blobs to delete, by digest.
    pub blobs: Vec<BlobDeletion>,
    /// Layer links to delete, by repository and digest.
    pub layer_links: Vec<LayerLinkDeletion>,
    /// Unmarked blobs kept because they are younger than the cutoff or have a young link.
    pub kept_young_blobs: usize,
    /// Untagged manifests kept because their revision link is younger than the cutoff.
    pub kept_young_manifests: usize,
    /// Manifests and links skipped with `skip_bad_manifests`, one message each (naming the path).
    pub bad_manifests: Vec<String>,
}

impl GcPlan {
    /// Total bytes of the blobs to delete.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

struct Ctx<'a> {
    driver: &'a Driver,
    layout: &'a Layout,
    opts: &'a GcOptions,
    cutoff: SystemTime,
    started: SystemTime,
    marks: Mutex<DigestSet>,
    bad: Mutex<Vec<String>>,
    progress: &'a dyn Progress,
    /// Reads (links, manifests) in flight, at most `jobs` whatever the nesting of ranges,
    /// repositories and manifests above them.
    reads: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a set half-updated in a way that matters here.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_young(t: Option<SystemTime>, cutoff: SystemTime) -> bool {
    // Unknown time: assume young, never delete on a guess.
    t.is_none_or(|t| t >= cutoff)
}

impl Ctx<'_> {
    fn jobs(&self) -> usize {
        self.opts.jobs.max(1)
    }

    fn mark(&self, d: &Digest) {
        lock(&self.marks).insert(d);
    }

    fn bad(&self, e: LayoutError) -> Result<()> {
        if self.opts.skip_bad_manifests {
            lock(&self.bad).push(e.to_string());
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Reads a link while the registry may be writing it. distribution's filesystem driver
    /// writes a link by truncating the file and then writing it, so a concurrent reader can
    /// find it empty (the live test met this). An empty link is read again after 10, 40 and
    /// 160 ms; one still empty whose file is younger than the cutoff is a write in progress,
    /// `Ok(None)` (the caller keeps what it may name). An empty old link, or any other bad
    /// content, stays [`LayoutError::BadLink`].
    async fn read_live_link(&self, path: &str) -> Result<Option<Digest>> {
        let _permit = self.reads.acquire().await.ok();
        let mut pause = Duration::from_millis(10);
        for _ in 0..3 {
            match scan::read_link(self.driver, path).await {
                Err(LayoutError::BadLink { content, .. }) if content.is_empty() => {
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
                r => return r.map(Some),
            }
        }
        match self.driver.stat(path).await {
            Ok(fi) if is_young(fi.mod_time, self.cutoff) => Ok(None),
            Ok(_) => scan::read_link(self.driver, path).await.map(Some),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks a kept manifest and what it references; returns the child manifests (of an
    /// index) to visit next. A missing blob is skipped silently, as distribution does.
    async fn visit(&self, d: &Digest) -> Result<Vec<Digest>> {
        let path = self.layout.blob_data(d);
        let read = {
            let _permit = self.reads.acquire().await.ok();
            self.driver.get_content(&path).await
        };
        let bytes = match read {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        self.mark(d);
        let m = match Manifest::parse(&bytes) {
            Ok(m) => m,
            Err(source) => {
                self.bad(LayoutError::BadManifest { path, source })?;
                return Ok(Vec::new());
            }
        };
        let mut children = Vec::new();
        for r in &m.references {
            self.mark(&r.digest);
            if r.is_manifest {
                children.push(r.digest.clone());
            }
        }
        Ok(children)
    }

    /// Visits `roots` and, breadth first, the index children for which `follow` is true.
    /// Returns every digest visited.
    async fn visit_all(
        &self,
        roots: Vec<Digest>,
        follow: impl Fn(&Digest) -> bool,
    ) -> Result<HashSet<Digest>> {
        let mut seen: HashSet<Digest> = roots.iter().cloned().collect();
        let mut frontier = roots;
        while !frontier.is_empty() {
            let children: Vec<Vec<Digest>> = futures::stream::iter(frontier.iter())
                .map(|d| self.visit(d))
                .buffer_unordered(self.jobs())
                .try_collect()
                .await?;
            self.progress.tick(frontier.len() as u64);
            frontier = children
                .into_iter()
                .flatten()
                .filter(|c| follow(c) && seen.insert(c.clone()))
                .collect();
        }
        Ok(seen)
    }

    /// Reads revision links concurrently: digest (from content) → link. A link whose listed
    /// ETag proves it names its directory's digest is not read (see [`scan::link_etag_names`]).
    async fn read_revisions(&self, links: &[LinkFile]) -> Result<BTreeMap<Digest, LinkFile>> {
        let read: Vec<(LinkFile, Result<Option<Digest>>)> =
            futures::stream::iter(links.iter().cloned())
                .map(|l| async move {
                    if let Some(d) = scan::proven_digest(&l, &l.dir_digest).cloned() {
                        return (l, Ok(Some(d)));
                    }
                    let r = self.read_live_link(&l.path).await;
                    (l, r)
                })
                .buffer_unordered(self.jobs())
                .collect()
                .await;
        let mut out = BTreeMap::new();
        for (l, r) in read {
            match r {
                Ok(Some(d)) => {
                    out.insert(d, l);
                }
                // A manifest PUT writing this revision now: keep what the directory names, as
                // a young revision (its time is unknown, so it is never queued).
                Ok(None) => {
                    if let Some(d) = l.dir_digest.clone() {
                        let young = LinkFile {
                            mod_time: None,
                            ..l
                        };
                        out.insert(d, young);
                    }
                }
                Err(LayoutError::Storage(s)) if s.is_not_found() => {}
                Err(e @ LayoutError::BadLink { .. }) => {
                    // Keep what the directory names, so skipping never frees more.
                    if let Some(d) = &l.dir_digest {
                        self.mark(d);
                    }
                    self.bad(e)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The digest a tag's `current/link` names: proved by its ETag when that matches one of
    /// `known` (the tag's history and the repository's revisions), else read.
    async fn read_tag(&self, cur: &LinkFile, known: &[&Digest]) -> Result<Option<Digest>> {
        match scan::proven_digest(cur, known.iter().copied()) {
            Some(d) => Ok(Some(d.clone())),
            None => self.read_live_link(&cur.path).await,
        }
    }

    /// Phase 1 for one repository: marks, and returns the untagged manifests to delete if
    /// their blob exists (checked against the blob listing) and the number kept for being
    /// young.
    async fn mark_repo(
        &self,
        repo: &str,
        state: &RepoFiles,
    ) -> Result<(Vec<ManifestDeletion>, usize)> {
        let revisions = self.read_revisions(&state.revisions).await?;
        let mut tagged: HashSet<Digest> = HashSet::new();
        let mut tags_unreadable = false;
        if self.opts.delete_untagged {
            for t in &state.tags {
                let Some(cur) = &t.current else { continue };
                let known: Vec<&Digest> = t.index.iter().chain(revisions.keys()).collect();
                match self.read_tag(cur, &known).await {
                    Ok(Some(d)) => {
                        tagged.insert(d);
                    }
                    // A tag being moved now: which revision it leaves is unknown, so delete
                    // nothing untagged in this repository this time.
                    Ok(None) => tags_unreadable = true,
                    Err(LayoutError::Storage(e)) if e.is_not_found() => {}
                    Err(e @ LayoutError::BadLink { .. }) => {
                        // Which revision the tag means is unknown: delete nothing untagged here.
                        tags_unreadable = true;
                        self.bad(e)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let mut kept = Vec::new();
        let mut untagged = Vec::new();
        let mut young = 0;
        for (d, link) in &revisions {
            let is_young = is_young(link.mod_time, self.cutoff);
            if !self.opts.delete_untagged || tags_unreadable || tagged.contains(d) {
                kept.push(d.clone());
            } else if is_young {
                young += 1;
                kept.push(d.clone());
            } else {
                untagged.push(d.clone());
            }
        }
        let visited = self.visit_all(kept, |c| revisions.contains_key(c)).await?;
        let mut queued: Vec<ManifestDeletion> = untagged
            .into_iter()
            .filter(|d| !visited.contains(d))
            .map(|d| ManifestDeletion {
                repository: repo.to_owned(),
                tags: state
                    .tags
                    .iter()
                    .filter(|t| t.index.contains(&d))
                    .map(|t| t.name.clone())
                    .collect(),
                mod_time: revisions.get(&d).and_then(|l| l.mod_time),
                files: {
                    let dir = format!("{}/", self.layout.revision_dir(repo, &d));
                    let mut f: Vec<String> = state
                        .revisions
                        .iter()
                        .filter(|l| l.path.starts_with(&dir))
                        .map(|l| l.path.clone())
                        .collect();
                    f.push(self.layout.revision_link(repo, &d));
                    f.sort();
                    f.dedup();
                    f
                },
                digest: d,
            })
            .collect();
        queued.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok((queued, young))
    }

    /// Phase 3 for one repository, whose scan kept only the layer links to candidates: young
    /// and old layer links to candidates; every young revision is visited (marked with what it
    /// references, children followed wherever their blob is: conservative) and reported, so a
    /// queued revision that was re-pushed is kept.
    async fn rescan_repo(&self, state: &RepoFiles) -> Result<RescanRepo> {
        let mut out = RescanRepo::default();
        for l in &state.layers {
            let Some(d) = &l.dir_digest else { continue };
            if is_young(l.mod_time, self.cutoff) {
                out.saved.push(d.clone());
            } else {
                out.links.push(d.clone());
            }
        }
        let young: Vec<LinkFile> = state
            .revisions
            .iter()
            .filter(|l| is_young(l.mod_time, self.cutoff))
            .cloned()
            .collect();
        let revisions = self.read_revisions(&young).await?;
        out.young_revisions = revisions.keys().cloned().collect();
        self.visit_all(out.young_revisions.clone(), |_| true)
            .await?;
        Ok(out)
    }
}

/// Phase 1's result for one range of repositories.
struct MarkedRange {
    marked: Vec<(Vec<ManifestDeletion>, usize)>,
    names: Vec<String>,
    files: u64,
    layer_links: u64,
}

#[derive(Default)]
struct RescanRepo {
    saved: Vec<Digest>,
    links: Vec<Digest>,
    young_revisions: Vec<Digest>,
}

/// Decides what a garbage collection deletes; deletes nothing. Stops at the first storage
/// error, bad manifest or bad link (unless `skip_bad_manifests`), naming the path.
pub async fn plan(
    driver: &Driver,
    layout: &Layout,
    opts: &GcOptions,
    progress: &dyn Progress,
) -> Result<GcPlan> {
    let started = SystemTime::now();
    let cutoff = started
        .checked_sub(opts.min_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let ctx = Ctx {
        driver,
        layout,
        opts,
        cutoff,
        started,
        marks: Mutex::new(DigestSet::new()),
        bad: Mutex::new(Vec::new()),
        progress,
        reads: tokio::sync::Semaphore::new(opts.jobs.max(1)),
    };

    // Phase 1: mark.
    progress.stage("repositories");
    let no_layers = |_: &Digest| false;
    let jobs = opts.jobs.max(1);
    // Range by range: each range's repositories are marked as soon as it is listed, and only
    // the ranges in flight are held.
    let ranges =
        listing::RepoRanges::discover(driver, layout, jobs, listing::ranges_for(jobs, None))
            .await?;
    let per_range: Vec<MarkedRange> = futures::stream::iter(0..ranges.len())
        .map(|i| {
            let (ctx, ranges, no_layers) = (&ctx, &ranges, &no_layers);
            async move {
                let scan = ranges.scan(driver, i, no_layers).await?;
                let marked: Vec<(Vec<ManifestDeletion>, usize)> =
                    futures::stream::iter(scan.repos.iter())
                        .map(|(r, state)| ctx.mark_repo(r, state))
                        .buffer_unordered(ctx.jobs())
                        .try_collect()
                        .await?;
                Ok::<_, LayoutError>(MarkedRange {
                    marked,
                    names: scan.repos.into_keys().collect(),
                    files: scan.files,
                    layer_links: scan.layer_links,
                })
            }
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    let mut names: HashSet<String> = HashSet::new();
    let (mut files_seen, mut layer_links_seen) = (0u64, 0u64);
    let mut queued: Vec<ManifestDeletion> = Vec::new();
    let mut kept_young_manifests = 0;
    for r in per_range {
        names.extend(r.names);
        files_seen += r.files;
        layer_links_seen += r.layer_links;
        for (q, y) in r.marked {
            queued.extend(q);
            kept_young_manifests += y;
        }
    }
    let repositories = names.len();
    drop(names);
    // A repository created during the listing can be met by two ranges: queue it once.
    queued.sort_by(|a, b| {
        (a.repository.as_str(), &a.digest).cmp(&(b.repository.as_str(), &b.digest))
    });
    queued.dedup_by(|a, b| a.repository == b.repository && a.digest == b.digest);
    lock(&ctx.marks).seal();

    // Phase 2: candidate blobs. Each blob is filtered against the sealed mark set as it is
    // listed, so only unmarked old blobs are kept in memory (not every blob of the store).
    progress.stage("blobs");
    let queued_digests: HashSet<Digest> = queued.iter().map(|q| q.digest.clone()).collect();
    let present: Mutex<HashSet<Digest>> = Mutex::new(HashSet::new());
    let young_count = std::sync::atomic::AtomicUsize::new(0);
    // Taken out of the mutex for the listing (read by every range at once), put back after.
    let marks = std::mem::take(&mut *lock(&ctx.marks));
    let found = {
        let keep = |b: &scan::BlobFile| {
            if queued_digests.contains(&b.digest) {
                lock(&present).insert(b.digest.clone());
            }
            if marks.contains(&b.digest) {
                return false;
            }
            if is_young(b.mod_time, cutoff) {
                young_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
            true
        };
        // At least one blob per mark or layer link: about as many keys as that to list.
        let ranges = listing::ranges_for(jobs, Some(marks.len() as u64 + layer_links_seen));
        listing::scan_blobs(driver, layout, jobs, ranges, &keep, &|n| progress.tick(n)).await
    };
    *lock(&ctx.marks) = marks;
    let (old, bad) = found?;
    if let Some(path) = bad.into_iter().next() {
        // Neither keep nor delete what cannot be named: stop before any delete.
        return Err(LayoutError::BadBlobPath { path });
    }
    // An untagged revision whose blob is gone is skipped silently (distribution's Stat fails).
    let present = present.into_inner().unwrap_or_else(|e| e.into_inner());
    queued.retain(|q| present.contains(&q.digest));
    let mut kept_young_blobs = young_count.into_inner();
    let mut candidates: HashMap<Digest, u64> =
        old.into_iter().map(|b| (b.digest, b.size)).collect();

    // Phase 3: re-scan for what a running registry wrote meanwhile.
    progress.stage("re-scan");
    let is_candidate = |d: &Digest| candidates.contains_key(d);
    let ranges = listing::RepoRanges::discover(
        driver,
        layout,
        jobs,
        listing::ranges_for(jobs, Some(files_seen)),
    )
    .await?;
    // Marks of this phase go to a fresh set: a queued manifest they reach is kept.
    let mut marks = std::mem::take(&mut *lock(&ctx.marks));
    let rescans: Vec<Vec<(String, RescanRepo)>> = futures::stream::iter(0..ranges.len())
        .map(|i| {
            let (ctx, ranges, is_candidate) = (&ctx, &ranges, &is_candidate);
            async move {
                let scan = ranges.scan(driver, i, is_candidate).await?;
                futures::stream::iter(scan.repos)
                    .map(|(r, state)| async move {
                        let out = ctx.rescan_repo(&state).await?;
                        ctx.progress.tick(1);
                        Ok::<_, LayoutError>((r, out))
                    })
                    .buffer_unordered(ctx.jobs())
                    .try_collect()
                    .await
            }
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    let rescans: Vec<(String, RescanRepo)> = rescans.into_iter().flatten().collect();
    let mut late = std::mem::take(&mut *lock(&ctx.marks));
    late.seal();
    marks.extend(&late);
    let mut saved: HashSet<Digest> = HashSet::new();
    let mut rewritten: HashSet<(String, Digest)> = HashSet::new();
    let mut links: BTreeSet<LayerLinkDeletion> = BTreeSet::new();
    for (repo, r) in &rescans {
        saved.extend(r.saved.iter().cloned());
        for d in &r.young_revisions {
            rewritten.insert((repo.clone(), d.clone()));
        }
        for d in &r.links {
            links.insert(LayerLinkDeletion {
                repository: repo.clone(),
                digest: d.clone(),
            });
        }
    }
    let keep_blob = |d: &Digest| late.contains(d) || saved.contains(d);
    let before = candidates.len();
    candidates.retain(|d, _| !keep_blob(d));
    kept_young_blobs += before - candidates.len();
    links.retain(|l| candidates.contains_key(&l.digest));
    let before = queued.len();
    // Re-pushed meanwhile, or referenced by something pushed meanwhile: keep.
    queued.retain(|q| {
        !rewritten.contains(&(q.repository.clone(), q.digest.clone())) && !late.contains(&q.digest)
    });
    kept_young_manifests += before - queued.len();

    let mut blobs: Vec<BlobDeletion> = candidates
        .into_iter()
        .map(|(digest, size)| BlobDeletion { digest, size })
        .collect();
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    queued.sort_by(|a, b| {
        (a.repository.as_str(), &a.digest).cmp(&(b.repository.as_str(), &b.digest))
    });
    let bad_manifests = std::mem::take(&mut *lock(&ctx.bad));
    Ok(GcPlan {
        started: ctx.started,
        cutoff,
        repositories,
        marked: marks.len(),
        mark_set_bytes: marks.heap_bytes(),
        manifests: queued,
        blobs,
        layer_links: links.into_iter().collect(),
        kept_young_blobs,
        kept_young_manifests,
        bad_manifests,
    })
}

/// What [`sweep`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Manifest revisions deleted.
    pub manifests: usize,
    /// Layer links deleted.
    pub layer_links: usize,
    /// Blobs deleted.
    pub blobs: usize,
    /// Bytes of the blobs deleted.
    pub bytes: u64,
}

/// Paths per [`Driver::delete_many`] call: one DeleteObjects request on S3.
pub const SWEEP_BATCH: usize = 1000;

/// Deletes what `plan` lists, in an order that keeps the store consistent if it stops half
/// way: tag-history entries of the queued manifests, then their revision links, then layer
/// links, then blobs — references always go before what they reference, so a blob is never
/// missing while a link or revision in the plan still names it. Each step deletes the exact
/// objects the scans found ([`Driver::delete_many`], [`SWEEP_BATCH`] paths per call, `jobs`
/// calls at once: on S3 ⌈objects/1000⌉ DeleteObjects and no listing) and starts only when the
/// step before it fully succeeded. Already-missing paths count as deleted. A failure ends the
/// sweep after its step, returning the error (naming the paths) with what was done so far;
/// running gc again finishes the job. A stray file distribution never writes (anything but
/// `data` in a blob directory) is not deleted and keeps its directory.
pub async fn sweep(
    driver: &Driver,
    layout: &Layout,
    plan: &GcPlan,
    jobs: usize,
    progress: &dyn Progress,
) -> (SweepOutcome, Option<LayoutError>) {
    let mut out = SweepOutcome::default();
    progress.stage("delete");
    let jobs = jobs.max(1);
    let tick = |n: usize| progress.tick(n as u64);

    // 1. Tag-history entries of the queued manifests, then their revision files.
    let entries = plan.manifests.iter().flat_map(|m| {
        m.tags.iter().map(|t| {
            format!(
                "{}/link",
                layout.tag_index_entry(&m.repository, t, &m.digest)
            )
        })
    });
    let failed = delete_batched(driver, entries, jobs, |_| {}).await;
    if let Some(e) = failed.into_error(driver) {
        return (out, Some(e));
    }
    let files = plan.manifests.iter().flat_map(|m| {
        let link = m
            .files
            .is_empty()
            .then(|| layout.revision_link(&m.repository, &m.digest));
        link.into_iter().chain(m.files.iter().cloned())
    });
    let failed = delete_batched(driver, files, jobs, |_| {}).await;
    out.manifests = plan
        .manifests
        .iter()
        .filter(|m| !m.files.iter().any(|f| failed.paths.contains(f)))
        .count();
    tick(out.manifests);
    if let Some(e) = failed.into_error(driver) {
        return (out, Some(e));
    }

    // 2. Layer links to the blobs about to go.
    let links = plan
        .layer_links
        .iter()
        .map(|l| layout.layer_link(&l.repository, &l.digest));
    let failed = delete_batched(driver, links, jobs, tick).await;
    out.layer_links = plan.layer_links.len() - failed.paths.len();
    if let Some(e) = failed.into_error(driver) {
        return (out, Some(e));
    }

    // 3. Blobs.
    let data = plan.blobs.iter().map(|b| layout.blob_data(&b.digest));
    let failed = delete_batched(driver, data, jobs, tick).await;
    for b in &plan.blobs {
        if failed.paths.is_empty() || !failed.paths.contains(&layout.blob_data(&b.digest)) {
            out.blobs += 1;
            out.bytes += b.size;
        }
    }
    (out, failed.into_error(driver))
}

/// The paths of a batched delete that may still exist, and why.
#[derive(Default)]
struct Failed {
    paths: HashSet<String>,
    errors: Vec<regstore_driver_api::Error>,
}

/// At most this many per-path errors are kept in a sweep's error; the rest are counted.
const MAX_REPORTED_FAILURES: usize = 20;

impl Failed {
    fn into_error(self, driver: &Driver) -> Option<LayoutError> {
        let n = self.errors.len();
        let mut errors = self.errors;
        match n {
            0 => None,
            1 => errors.pop().map(LayoutError::from),
            _ => {
                errors.truncate(MAX_REPORTED_FAILURES);
                if n > MAX_REPORTED_FAILURES {
                    errors.push(regstore_driver_api::Error::backend(
                        driver.name(),
                        None,
                        format!("and {} more paths not deleted", n - MAX_REPORTED_FAILURES),
                    ));
                }
                Some(LayoutError::Storage(regstore_driver_api::Error::Multiple {
                    driver: driver.name().to_owned(),
                    errors,
                }))
            }
        }
    }
}

/// Deletes `paths` with [`Driver::delete_many`], [`SWEEP_BATCH`] per call and `jobs` calls at
/// once; `done(n)` is told how many of each call are gone. Missing paths count as deleted.
/// Paths are built as batches are sent, so at most `jobs` batches of them exist at a time (a
/// sweep of millions of objects does not hold millions of paths).
async fn delete_batched(
    driver: &Driver,
    paths: impl Iterator<Item = String> + Send,
    jobs: usize,
    done: impl Fn(usize),
) -> Failed {
    let mut failed = Failed::default();
    let mut calls = futures::stream::iter(paths)
        .chunks(SWEEP_BATCH)
        .map(|chunk| async move {
            let r = driver.delete_many(&chunk).await;
            (chunk, r)
        })
        .buffer_unordered(jobs);
    while let Some((chunk, r)) = calls.next().await {
        match r {
            Ok(list) => {
                done(chunk.len() - list.len());
                for (p, e) in list {
                    failed.paths.insert(p.to_string());
                    failed.errors.push(e);
                }
            }
            // Nothing of the chunk was deleted (an invalid path; cannot come from a layout).
            Err(e) => {
                failed.paths.extend(chunk);
                failed.errors.push(e);
            }
        }
    }
    failed
}
