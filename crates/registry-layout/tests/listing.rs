//! The partitioned listings against a naive model, on every backend order: in-memory and
//! filesystem (depth-first walks) and S3 (key order, where `a-b/…` sorts before `a/…`).
//!
//! Repository names are generated to hit the cases where the two orders disagree: names that
//! continue a sibling with `-` or `.`, nested repositories, namespaces of many repositories,
//! and a single namespace holding everything (which the scan must expand to get ranges).
//! The same model holds when the delimiter listings that choose the cuts answer "nothing here"
//! at random: they only choose where to cut, never what is covered.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Hooked, Hooks};
use regstore_driver_api::{Driver, Error, Result, StorageDriver, StoragePath};
use regstore_registry_layout::listing::{self, RepoFiles};
use regstore_registry_layout::{Digest, Layout};
use regstore_test_support::SplitMix64;

/// What a tree holds, per repository: revision digests, tags (name → current digest and
/// history) and layer digests; and every blob.
#[derive(Default, Debug, PartialEq, Eq)]
struct Model {
    repos: BTreeMap<String, RepoModel>,
    blobs: BTreeSet<Digest>,
}

#[derive(Default, Debug, PartialEq, Eq)]
struct RepoModel {
    revisions: BTreeSet<Digest>,
    tags: BTreeMap<String, BTreeSet<Digest>>,
    layers: BTreeSet<Digest>,
}

fn digest(rng: &mut SplitMix64) -> Digest {
    let bytes: Vec<u8> = (0..8).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    Digest::sha256_of(&bytes)
}

/// Repository names: families that continue each other with `-`, `.` and `/` at several
/// depths, plus `extra` plain ones under one namespace.
fn names(rng: &mut SplitMix64, extra: usize) -> Vec<String> {
    let mut out: Vec<String> = [
        "a",
        "a-b",
        "a.b",
        "a0",
        "a/b",
        "a/b-c",
        "a/b/c",
        "lib",
        "lib-x",
        "libx",
        "z",
        "ns/lib",
        "ns/lib-1",
        "ns/lib.2",
        "ns/lib/inner",
        "ns/m",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for i in 0..extra {
        let sep = ["-", ".", "", "/"][(rng.next_u64() % 4) as usize];
        out.push(format!("big/r{:03}{sep}{}", i % 40, rng.next_u64() % 3));
    }
    out.sort();
    out.dedup();
    out
}

async fn fill(driver: &Driver, layout: &Layout, repos: &[String], seed: u64) -> Model {
    let mut rng = SplitMix64::new(seed);
    let mut m = Model::default();
    let mut writes: Vec<(String, String)> = Vec::new();
    for repo in repos {
        let rm = m.repos.entry(repo.clone()).or_default();
        for _ in 0..(1 + rng.next_u64() % 3) {
            let d = digest(&mut rng);
            writes.push((layout.revision_link(repo, &d), d.to_string()));
            m.blobs.insert(d.clone());
            writes.push((layout.blob_data(&d), "m".into()));
            if rng.below(2) == 0 {
                let tag = format!("t{}", rng.next_u64() % 3);
                writes.push((layout.tag_current_link(repo, &tag), d.to_string()));
                writes.push((
                    format!("{}/link", layout.tag_index_entry(repo, &tag, &d)),
                    d.to_string(),
                ));
                rm.tags.entry(tag).or_default().insert(d.clone());
            }
            rm.revisions.insert(d);
        }
        for _ in 0..(rng.next_u64() % 3) {
            let d = digest(&mut rng);
            writes.push((layout.layer_link(repo, &d), d.to_string()));
            writes.push((layout.blob_data(&d), "l".into()));
            m.blobs.insert(d.clone());
            rm.layers.insert(d);
        }
        // Upload state is never reported.
        writes.push((format!("{}/u1/startedat", layout.uploads(repo)), "x".into()));
    }
    for (p, c) in writes {
        driver.put_content(&p, c.into_bytes()).await.unwrap();
    }
    m
}

fn model_of(scan: &BTreeMap<String, RepoFiles>) -> BTreeMap<String, RepoModel> {
    scan.iter()
        .map(|(repo, f)| {
            let rm = RepoModel {
                revisions: f
                    .revisions
                    .iter()
                    .filter_map(|l| l.dir_digest.clone())
                    .collect(),
                tags: f
                    .tags
                    .iter()
                    .map(|t| {
                        assert!(
                            t.current.is_some(),
                            "{repo}:{} has its current link",
                            t.name
                        );
                        (t.name.clone(), t.index.iter().cloned().collect())
                    })
                    .collect(),
                layers: f
                    .layers
                    .iter()
                    .filter_map(|l| l.dir_digest.clone())
                    .collect(),
            };
            (repo.clone(), rm)
        })
        .collect()
}

/// Names all below namespaces (as on a registry that serves one organisation): the scan must
/// expand them, two levels deep for `org/`.
fn namespaced(rng: &mut SplitMix64) -> Vec<String> {
    let mut out: Vec<String> = names(rng, 60)
        .into_iter()
        .map(|n| {
            if n.starts_with("big/") {
                n
            } else {
                format!("big/{n}")
            }
        })
        .collect();
    out.extend(["org/t1/x", "org/t1/x-y", "org/t2/z", "org/t2-b/w"].map(String::from));
    out.sort();
    out
}

async fn check(inner: Arc<dyn StorageDriver>, root: &str, seed: u64) {
    let driver = Driver::new(inner);
    let mut rng = SplitMix64::new(seed);
    let mixed = names(&mut rng, 120);
    check_tree(&driver, &format!("{root}/mixed"), &mixed, seed).await;
    let namespaced = namespaced(&mut rng);
    check_tree(
        &driver,
        &format!("{root}/namespaced"),
        &namespaced,
        seed + 1,
    )
    .await;
}

async fn check_tree(driver: &Driver, root: &str, repos: &[String], seed: u64) {
    let layout = Layout::new(root);
    let model = fill(driver, &layout, repos, seed).await;
    let all = |_: &Digest| true;
    let layers: u64 = model.repos.values().map(|r| r.layers.len() as u64).sum();
    for (jobs, ranges) in [(1, 1), (1, 7), (2, 2), (4, 16), (8, 3), (64, 256)] {
        let scan = listing::scan_repositories(driver, &layout, jobs, ranges, &all)
            .await
            .unwrap();
        let what = format!("{} with jobs {jobs}, ranges {ranges}", driver.name());
        assert_eq!(model_of(&scan.repos), model.repos, "repositories, {what}");
        assert_eq!(scan.layer_links, layers, "layer links counted, {what}");
        let (blobs, bad) = listing::scan_blobs(driver, &layout, jobs, ranges, &|_| true, &|_| {})
            .await
            .unwrap();
        assert!(bad.is_empty());
        let listed: Vec<Digest> = blobs.into_iter().map(|b| b.digest).collect();
        let set: BTreeSet<Digest> = listed.iter().cloned().collect();
        assert_eq!(set.len(), listed.len(), "each blob once, {what}");
        assert_eq!(set, model.blobs, "blobs, {what}");
    }
    // The layer filter keeps exactly what it accepts.
    let first_layer = model
        .repos
        .values()
        .flat_map(|r| r.layers.iter())
        .next()
        .cloned();
    let only = |d: &Digest| Some(d) == first_layer.as_ref();
    let scan = listing::scan_repositories(driver, &layout, 4, 4, &only)
        .await
        .unwrap();
    let kept: usize = scan.repos.values().map(|f| f.layers.len()).sum();
    assert_eq!(kept, usize::from(first_layer.is_some()));
}

#[tokio::test]
async fn inmemory_matches_the_model() {
    check(
        Arc::new(regstore_driver_inmemory::InMemoryDriver::new()),
        "",
        1,
    )
    .await;
}

#[tokio::test]
async fn filesystem_matches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    check(
        Arc::new(regstore_driver_filesystem::FilesystemDriver::new(
            dir.path(),
        )),
        "",
        2,
    )
    .await;
}

#[tokio::test]
async fn s3_key_order_matches_the_model() {
    let Some(inner) = common::s3_driver("listing").await else {
        return;
    };
    check(Arc::new(inner.clone()), "/docker", 3).await;
    Driver::new(Arc::new(inner))
        .delete("/docker")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_empty_store_lists_nothing() {
    let driver = Driver::new(Arc::new(regstore_driver_inmemory::InMemoryDriver::new()));
    let layout = Layout::default();
    let scan = listing::scan_repositories(&driver, &layout, 8, 16, &|_| true)
        .await
        .unwrap();
    assert!(scan.repos.is_empty() && scan.files == 0);
    let (blobs, bad) = listing::scan_blobs(&driver, &layout, 8, 16, &|_| true, &|_| {})
        .await
        .unwrap();
    assert!(blobs.is_empty() && bad.is_empty());
}

/// Delimiter listings (`list`) answer `PathNotFound` for about one directory in `1/odds`,
/// chosen by a seeded generator, as a server returning an empty page would; walks and
/// everything else pass through.
#[derive(Debug)]
struct EmptyListings {
    rng: std::sync::Mutex<SplitMix64>,
    odds: u64,
    lied: std::sync::atomic::AtomicUsize,
}

impl Hooks for EmptyListings {
    fn on_list(&self, p: &StoragePath) -> Result<()> {
        if self
            .rng
            .lock()
            .unwrap()
            .next_u64()
            .is_multiple_of(self.odds)
        {
            self.lied.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err(Error::not_found("empty-listings", p.as_str()));
        }
        Ok(())
    }
}

/// Every listing answering "nothing here" (so both `repositories/` and `blobs/` look missing),
/// and one in three at random (top level, namespaces, blob algorithms): the scans still find
/// every file of the model, on depth-first (in-memory) and key-order (S3) walks.
#[tokio::test]
async fn empty_listings_never_hide_files() {
    let mut backends: Vec<(Arc<dyn StorageDriver>, &str)> = vec![(
        Arc::new(regstore_driver_inmemory::InMemoryDriver::new()),
        "",
    )];
    let s3 = common::s3_driver("listing-empty").await;
    if let Some(s3) = &s3 {
        backends.push((Arc::new(s3.clone()), "/docker"));
    }
    for (inner, root) in backends {
        for (odds, seed) in [(1, 11), (3, 12), (3, 13)] {
            let (lying, driver) = Hooked::wrap(
                Arc::clone(&inner),
                EmptyListings {
                    rng: std::sync::Mutex::new(SplitMix64::new(seed)),
                    odds,
                    lied: Default::default(),
                },
            );
            let mut rng = SplitMix64::new(seed);
            let tree = format!("{root}/empty-{seed}");
            check_tree(&driver, &tree, &namespaced(&mut rng), seed).await;
            let lied = lying.hooks.lied.load(std::sync::atomic::Ordering::SeqCst);
            assert!(lied > 0, "{}: no listing answered empty", inner.name());
        }
    }
    if let Some(s3) = s3 {
        Driver::new(Arc::new(s3)).delete("/docker").await.unwrap();
    }
}
