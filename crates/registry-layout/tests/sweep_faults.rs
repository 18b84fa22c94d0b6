//! A storage error in the middle of a sweep leaves a consistent store: the backend is wrapped
//! in a driver whose N-th delete fails, for every N the sweep reaches. After each failure
//! fsck finds nothing wrong (no link, revision or kept manifest names a deleted blob), every
//! tagged image is intact, and a second gc finishes the job.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in fixtures

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Hooked, Hooks, Reg};
use regstore_driver_api::{Error, Result, StorageDriver, StoragePath};
use regstore_registry_layout::fsck::{self, FsckOptions};
use regstore_registry_layout::gc::{self, GcOptions, NoProgress};
use regstore_registry_layout::Digest;

/// Delete number `fail_at` (1-based, counted across all callers) fails with a backend error
/// without deleting anything.
#[derive(Debug)]
struct FailNthDelete {
    deletes: AtomicUsize,
    fail_at: usize,
}

impl FailNthDelete {
    fn at(fail_at: usize) -> Self {
        FailNthDelete {
            deletes: AtomicUsize::new(0),
            fail_at,
        }
    }
}

impl Hooks for FailNthDelete {
    fn on_delete(&self, path: &StoragePath) -> Result<()> {
        if self.deletes.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(Error::backend(
                "faulty",
                Some(path.as_str()),
                "injected delete failure",
            ));
        }
        Ok(())
    }
}

fn opts(m: bool) -> GcOptions {
    GcOptions {
        delete_untagged: m,
        min_age: Duration::ZERO,
        jobs: 4,
        skip_bad_manifests: false,
    }
}

/// The images that must survive every gc, by (repository, tag, manifest, blobs).
type Kept = Vec<(&'static str, &'static str, Digest, Vec<Digest>)>;

/// A store with garbage of every kind gc collects: a moved tag, a manifest deleted by digest,
/// an untagged index with its children, an orphan blob, shared layers, and a tagged index
/// whose children must stay.
async fn seed(inner: Arc<dyn StorageDriver>) -> (Reg, Kept) {
    let mut r = Reg::on(inner);
    let shared = r.layer("a").await;
    r.link_layer("b", &shared).await;
    let mut kept = Kept::new();
    // a: moved tag (old revision untagged), shared layer
    let l_old = r.layer("a").await;
    let (old, _) = r.image("a", &[shared.clone(), l_old]).await;
    r.tag("a", "latest", &old).await;
    let l_new = r.layer("a").await;
    let (new, c_new) = r.image("a", &[shared.clone(), l_new.clone()]).await;
    r.tag("a", "latest", &new).await;
    kept.push(("a", "latest", new, vec![shared.clone(), l_new, c_new]));
    // b: a manifest deleted by digest, one tagged
    let l_gone = r.layer("b").await;
    let (gone, _) = r.image("b", &[shared.clone(), l_gone]).await;
    r.tag("b", "gone", &gone).await;
    r.api_delete("b", &gone).await;
    let (keep_b, c_b) = r.image("b", &[shared.clone()]).await;
    r.tag("b", "v1", &keep_b).await;
    kept.push(("b", "v1", keep_b, vec![shared.clone(), c_b]));
    // c: an untagged index with its untagged children, and a tagged one
    let mut children = Vec::new();
    for _ in 0..2 {
        let l = r.layer("c").await;
        children.push(r.image("c", &[l]).await.0);
    }
    r.index("c", &children, false).await;
    let l_k = r.layer("c").await;
    let (child, c_k) = r.image("c", &[l_k.clone()]).await;
    let idx = r.index("c", &[child.clone()], true).await;
    r.tag("c", "multi", &idx).await;
    kept.push(("c", "multi", idx, vec![child, l_k, c_k]));
    // an orphan blob (a failed push)
    r.blob(b"orphan").await;
    (r, kept)
}

async fn assert_intact(r: &Reg, kept: &Kept, when: &str) {
    for (repo, tag, m, blobs) in kept {
        let cur = r
            .driver
            .get_content(&r.layout.tag_current_link(repo, tag))
            .await
            .unwrap();
        assert_eq!(
            cur.as_ref(),
            m.to_string().as_bytes(),
            "{when}: {repo}:{tag}"
        );
        assert!(r.blob_exists(m).await, "{when}: {repo}:{tag} manifest");
        for b in blobs {
            assert!(r.blob_exists(b).await, "{when}: {repo}:{tag} blob {b}");
        }
    }
}

#[tokio::test]
async fn a_failed_delete_at_any_point_leaves_a_consistent_store() {
    for m in [false, true] {
        // How many deletes does an undisturbed sweep make?
        let (counter, _) = Hooked::wrap(
            Arc::new(regstore_driver_inmemory::InMemoryDriver::new()),
            FailNthDelete::at(0),
        );
        let (r, kept) = seed(counter.clone()).await;
        let before = counter.hooks.deletes.load(Ordering::SeqCst); // api_delete's own deletes
        tokio::time::sleep(Duration::from_millis(5)).await;
        let p = gc::plan(&r.driver, &r.layout, &opts(m), &NoProgress)
            .await
            .unwrap();
        let (_, err) = gc::sweep(&r.driver, &r.layout, &p, 4, &NoProgress).await;
        assert!(err.is_none(), "{err:?}");
        let total = counter.hooks.deletes.load(Ordering::SeqCst) - before;
        // The plan has real work in every phase, so every phase gets a failure below.
        assert!(
            !p.blobs.is_empty() && (!m || !p.manifests.is_empty()),
            "{p:?}"
        );
        assert!(
            total >= p.blobs.len() + p.manifests.len() + p.layer_links.len(),
            "{total} deletes for {p:?}"
        );
        assert_intact(&r, &kept, "undisturbed").await;
        eprintln!("m={m}: failing each of the sweep's {total} deletes in turn");

        for n in 1..=total {
            let inner: Arc<dyn StorageDriver> =
                Arc::new(regstore_driver_inmemory::InMemoryDriver::new());
            let (_, kept) = seed(inner.clone()).await;
            let (failing, _) = Hooked::wrap(inner.clone(), FailNthDelete::at(n));
            let failing = Reg::on(failing);
            tokio::time::sleep(Duration::from_millis(5)).await;
            let p = gc::plan(&failing.driver, &failing.layout, &opts(m), &NoProgress)
                .await
                .unwrap();
            let (_, err) = gc::sweep(&failing.driver, &failing.layout, &p, 4, &NoProgress).await;
            let e = err.unwrap_or_else(|| panic!("m={m} n={n}: the injected failure was lost"));
            assert!(e.to_string().contains("injected delete failure"), "{e}");

            let healthy = Reg::on(inner);
            assert_intact(&healthy, &kept, &format!("m={m} after failing delete {n}")).await;
            let rep = fsck::check(
                &healthy.driver,
                &healthy.layout,
                &FsckOptions::default(),
                &NoProgress,
            )
            .await
            .unwrap();
            assert!(
                rep.is_clean(),
                "m={m} after failing delete {n}: {:#?}",
                rep.problems
            );
            // A second gc finishes, and then nothing is left to collect.
            let p2 = gc::plan(&healthy.driver, &healthy.layout, &opts(m), &NoProgress)
                .await
                .unwrap();
            let (_, err) = gc::sweep(&healthy.driver, &healthy.layout, &p2, 4, &NoProgress).await;
            assert!(err.is_none(), "m={m} n={n}: second gc: {err:?}");
            let p3 = gc::plan(&healthy.driver, &healthy.layout, &opts(m), &NoProgress)
                .await
                .unwrap();
            assert!(
                p3.blobs.is_empty() && p3.manifests.is_empty() && p3.layer_links.is_empty(),
                "m={m} n={n}: left after the second gc: {p3:?}"
            );
            // The two runs together deleted exactly what one undisturbed run does.
            let mut first: Vec<_> = p.blobs.iter().map(|b| b.digest.clone()).collect();
            first.sort();
            let mut both: Vec<_> = p2.blobs.iter().map(|b| b.digest.clone()).collect();
            both.sort();
            assert!(
                both.iter().all(|d| first.contains(d)),
                "m={m} n={n}: the second gc found new garbage"
            );
            assert_intact(&healthy, &kept, &format!("m={m} n={n} after the second gc")).await;
        }
    }
}
