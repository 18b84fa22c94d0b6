//! Consistency checks of distribution's layout, and the few repairs that are safe.
//!
//! [`check`] reports, without modifying anything unless a [`Repair`] asks: blobs whose bytes do
//! not hash to their path's digest (with `verify_digests`, streamed), layer and revision links
//! to missing blobs, link files that do not hold a digest, tags whose current link names a
//! missing revision, manifests that cannot be parsed or reference missing blobs, and
//! incomplete uploads older than `upload_max_age`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::Driver;
use serde::Serialize;
use sha2::Digest as _;

use crate::digest::{Digest, DigestSet};
use crate::error::{LayoutError, Result};
use crate::gc::Progress;
use crate::layout::Layout;
use crate::listing::{self, RepoFiles};
use crate::manifest::Manifest;
use crate::scan::{self, LinkFile};

/// What a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// A blob's bytes do not hash to the digest its path names.
    CorruptBlob,
    /// A `_layers` link names a blob that does not exist.
    DanglingLayerLink,
    /// A revision link names a blob that does not exist.
    DanglingRevisionLink,
    /// A link file's content is not exactly one digest.
    BadLink,
    /// A tag's `current/link` names a digest that is not a revision of the repository.
    DanglingTag,
    /// A revision's manifest cannot be parsed.
    BadManifest,
    /// A manifest references a blob that does not exist (foreign layers excepted).
    MissingReference,
    /// An incomplete upload older than the limit.
    StaleUpload,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The path concerned (the link, the blob data, the manifest, the upload directory).
    pub path: String,
    /// Details: the digest expected, the error, the upload's age.
    pub detail: String,
    /// Whether a repair removed it.
    pub repaired: bool,
}

/// Which problems to fix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repair {
    /// Delete layer and revision links whose blob is missing (the registry answers "unknown"
    /// for them anyway; a revision's tags stay and are reported as dangling).
    pub dangling_links: bool,
    /// Delete `_uploads/<id>` directories older than the limit.
    pub stale_uploads: bool,
}

/// How to check.
#[derive(Debug, Clone)]
pub struct FsckOptions {
    /// Read every blob and compare its sha256/384/512 with its path.
    pub verify_digests: bool,
    /// Reads running at once (at least 1).
    pub jobs: usize,
    /// Uploads started longer ago than this are stale (default one week).
    pub upload_max_age: Duration,
    /// What to fix.
    pub repair: Repair,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            verify_digests: false,
            jobs: 8,
            upload_max_age: Duration::from_secs(7 * 24 * 3600),
            repair: Repair::default(),
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FsckReport {
    /// Blobs found.
    pub blobs: usize,
    /// Bytes hashed (with `verify_digests`).
    pub bytes_verified: u64,
    /// Repositories visited.
    pub repositories: usize,
    /// Manifests parsed.
    pub manifests: usize,
    /// Links checked (layer, revision and tag), read or proved by their ETag.
    pub links: usize,
    /// Every finding, sorted by kind and path.
    pub problems: Vec<Problem>,
}

impl FsckReport {
    /// Whether nothing is wrong (repaired problems still count: the store was not clean).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Ctx<'a> {
    driver: &'a Driver,
    layout: &'a Layout,
    opts: &'a FsckOptions,
    blobs: DigestSet,
    problems: Mutex<Vec<Problem>>,
    progress: &'a dyn Progress,
    counts: Mutex<(usize, usize)>,
}

impl Ctx<'_> {
    fn report(&self, kind: ProblemKind, path: String, detail: String, repaired: bool) {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        p.push(Problem {
            kind,
            path,
            detail,
            repaired,
        });
    }

    fn count(&self, manifests: usize, links: usize) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.0 += manifests;
        c.1 += links;
    }

    async fn delete(&self, path: &str) -> Result<bool> {
        match self.driver.delete(path).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a link; a bad one is reported and yields `None`. A link whose listed ETag proves
    /// it holds one of `known` is not read (see [`scan::proven_digest`]).
    async fn link(&self, l: &LinkFile, known: &[&Digest]) -> Result<Option<Digest>> {
        self.count(0, 1);
        if let Some(d) = scan::proven_digest(l, known.iter().copied()) {
            return Ok(Some(d.clone()));
        }
        match scan::read_link(self.driver, &l.path).await {
            Ok(d) => Ok(Some(d)),
            Err(LayoutError::BadLink { path, content }) => {
                self.report(
                    ProblemKind::BadLink,
                    path,
                    format!("content {content:?}"),
                    false,
                );
                Ok(None)
            }
            Err(LayoutError::Storage(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn check_repo(&self, repo: &str, state: &RepoFiles) -> Result<()> {
        let repair = self.opts.repair;
        let jobs = self.opts.jobs.max(1);
        let layers: Vec<(&LinkFile, Option<Digest>)> = futures::stream::iter(state.layers.iter())
            .map(|l| async move {
                let known: Vec<&Digest> = l.dir_digest.iter().collect();
                Ok::<_, LayoutError>((l, self.link(l, &known).await?))
            })
            .buffered(jobs)
            .try_collect()
            .await?;
        for (l, d) in layers {
            let Some(d) = d else { continue };
            if !self.blobs.contains(&d) {
                let fixed = repair.dangling_links
                    && self.delete(&self.layout.layer_link_dir(repo, &d)).await?;
                self.report(
                    ProblemKind::DanglingLayerLink,
                    l.path.clone(),
                    format!("{d}: no blob"),
                    fixed,
                );
            }
        }
        let mut revisions: HashSet<Digest> = HashSet::new();
        let links: Vec<(String, Option<Digest>)> = futures::stream::iter(state.revisions.iter())
            .map(|l| async move {
                let known: Vec<&Digest> = l.dir_digest.iter().collect();
                Ok::<_, LayoutError>((l.path.clone(), self.link(l, &known).await?))
            })
            .buffer_unordered(jobs)
            .try_collect()
            .await?;
        let mut manifests = Vec::new();
        for (path, d) in links {
            let Some(d) = d else { continue };
            if self.blobs.contains(&d) {
                // Two links naming one manifest (a link whose content is not its directory's
                // digest): check it once.
                if revisions.insert(d.clone()) {
                    manifests.push(d);
                }
            } else {
                let fixed = repair.dangling_links
                    && self
                        .delete(path.strip_suffix("/link").unwrap_or(&path))
                        .await?;
                self.report(
                    ProblemKind::DanglingRevisionLink,
                    path,
                    format!("{d}: no blob"),
                    fixed,
                );
            }
        }
        for t in &state.tags {
            let Some(cur) = &t.current else { continue };
            let known: Vec<&Digest> = t.index.iter().chain(revisions.iter()).collect();
            let Some(d) = self.link(cur, &known).await? else {
                continue;
            };
            if !revisions.contains(&d) {
                self.report(
                    ProblemKind::DanglingTag,
                    cur.path.clone(),
                    format!(
                        "tag {} names {d}, which is not a revision with a blob",
                        t.name
                    ),
                    false,
                );
            }
        }
        let _: Vec<()> = futures::stream::iter(manifests.iter())
            .map(|d| self.check_manifest(d))
            .buffer_unordered(jobs)
            .try_collect()
            .await?;
        self.check_uploads(&state.uploads).await
    }

    async fn check_manifest(&self, d: &Digest) -> Result<()> {
        let path = self.layout.blob_data(d);
        let bytes = match self.driver.get_content(&path).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.count(1, 0);
        match Manifest::parse(&bytes) {
            Ok(m) => {
                let missing: BTreeSet<&Digest> = m
                    .references
                    .iter()
                    .filter(|r| !r.foreign && !self.blobs.contains(&r.digest))
                    .map(|r| &r.digest)
                    .collect();
                for r in missing {
                    self.report(
                        ProblemKind::MissingReference,
                        path.clone(),
                        format!("{d} references {r}, which has no blob"),
                        false,
                    );
                }
            }
            Err(e) => self.report(ProblemKind::BadManifest, path, e.to_string(), false),
        }
        Ok(())
    }

    async fn check_uploads(&self, startedat: &[LinkFile]) -> Result<()> {
        let now = SystemTime::now();
        for fi in startedat {
            let dir = fi
                .path
                .strip_suffix("/startedat")
                .unwrap_or(&fi.path)
                .to_owned();
            // The content is the start time (RFC 3339); fall back to the file's own time.
            let started = match self.driver.get_content(&fi.path).await {
                Ok(b) => chrono::DateTime::parse_from_rfc3339(String::from_utf8_lossy(&b).trim())
                    .ok()
                    .map(SystemTime::from)
                    .or(fi.mod_time),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(started) = started else { continue };
            let age = now.duration_since(started).unwrap_or_default();
            if age > self.opts.upload_max_age {
                let fixed = self.opts.repair.stale_uploads && self.delete(&dir).await?;
                self.report(
                    ProblemKind::StaleUpload,
                    dir,
                    format!("started {} hours ago", age.as_secs() / 3600),
                    fixed,
                );
            }
        }
        Ok(())
    }
}

async fn verify_blob(driver: &Driver, layout: &Layout, d: &Digest) -> Result<(u64, bool)> {
    let mut stream = driver.reader(&layout.blob_data(d), 0).await?;
    enum H {
        S256(sha2::Sha256),
        S384(sha2::Sha384),
        S512(sha2::Sha512),
    }
    let mut h = match d.algorithm() {
        "sha384" => H::S384(sha2::Sha384::new()),
        "sha512" => H::S512(sha2::Sha512::new()),
        _ => H::S256(sha2::Sha256::new()),
    };
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        match &mut h {
            H::S256(h) => h.update(&chunk),
            H::S384(h) => h.update(&chunk),
            H::S512(h) => h.update(&chunk),
        }
    }
    let got = match h {
        H::S256(h) => hex::encode(h.finalize()),
        H::S384(h) => hex::encode(h.finalize()),
        H::S512(h) => hex::encode(h.finalize()),
    };
    Ok((n, got == d.hex()))
}

/// Checks the whole layout (see the module documentation). Storage errors stop the check;
/// everything else is a [`Problem`] in the report.
pub async fn check(
    driver: &Driver,
    layout: &Layout,
    opts: &FsckOptions,
    progress: &dyn Progress,
) -> Result<FsckReport> {
    let jobs = opts.jobs.max(1);
    progress.stage("blobs");
    let mut problems = Vec::new();
    let (all, bad) = listing::scan_blobs(
        driver,
        layout,
        jobs,
        listing::ranges_for(jobs, None),
        &|_| true,
        &|n| progress.tick(n),
    )
    .await?;
    problems.extend(bad.into_iter().map(|path| Problem {
        kind: ProblemKind::CorruptBlob,
        path,
        detail: "not a blob path (blobs/<alg>/<2hex>/<hex>/data)".into(),
        repaired: false,
    }));
    let mut blobs = DigestSet::new();
    for b in &all {
        blobs.insert(&b.digest);
    }
    blobs.seal();
    let mut bytes_verified = 0;
    if opts.verify_digests {
        progress.stage("verify");
        let results: Vec<(Digest, u64, bool)> = futures::stream::iter(all.iter())
            .map(|b| async move {
                let (n, ok) = verify_blob(driver, layout, &b.digest).await?;
                progress.tick(n);
                Ok::<_, LayoutError>((b.digest.clone(), n, ok))
            })
            .buffer_unordered(jobs)
            .try_collect()
            .await?;
        for (d, n, ok) in results {
            bytes_verified += n;
            if !ok {
                problems.push(Problem {
                    kind: ProblemKind::CorruptBlob,
                    path: layout.blob_data(&d),
                    detail: format!("content does not hash to {d}"),
                    repaired: false,
                });
            }
        }
    }
    progress.stage("repositories");
    let all_layers = |_: &Digest| true;
    let repos = listing::scan_repositories(
        driver,
        layout,
        jobs,
        listing::ranges_for(jobs, None),
        &all_layers,
    )
    .await?
    .repos;
    let ctx = Ctx {
        driver,
        layout,
        opts,
        blobs,
        problems: Mutex::new(problems),
        progress,
        counts: Mutex::new((0, 0)),
    };
    let _: Vec<()> = futures::stream::iter(repos.iter())
        .map(|(r, state)| async {
            ctx.check_repo(r, state).await?;
            ctx.progress.tick(1);
            Ok::<_, LayoutError>(())
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    let mut problems = ctx.problems.into_inner().unwrap_or_else(|e| e.into_inner());
    problems.sort_by(|a, b| (a.kind, &a.path, &a.detail).cmp(&(b.kind, &b.path, &b.detail)));
    let (manifests, links) = ctx.counts.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(FsckReport {
        blobs: all.len(),
        bytes_verified,
        repositories: repos.len(),
        manifests,
        links,
        problems,
    })
}
