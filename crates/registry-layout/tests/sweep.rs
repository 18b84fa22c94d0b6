//! The sweep's requests and its order on failure: exact objects in batches of
//! [`gc::SWEEP_BATCH`] through `delete_many`, no listing and no per-directory `delete`; a failed
//! step stops the sweep before anything its objects reference is deleted.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Hooked, Hooks, Reg};
use regstore_driver_api::{Driver, Result, StoragePath};
use regstore_registry_layout::gc::{self, GcOptions, NoProgress};

/// Counts calls and refuses, in `delete_many`, the paths containing `fail`.
#[derive(Debug, Default)]
struct Counting {
    delete_many: AtomicUsize,
    deletes: AtomicUsize,
    listings: AtomicUsize,
    fail: Mutex<Option<String>>,
}

impl Hooks for Counting {
    fn on_list(&self, _: &StoragePath) -> Result<()> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn on_walk(&self, _: &StoragePath) {
        self.listings.fetch_add(1, Ordering::SeqCst);
    }
    fn on_delete(&self, _: &StoragePath) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn on_delete_many(&self, ps: &[StoragePath]) -> Option<Vec<StoragePath>> {
        self.delete_many.fetch_add(1, Ordering::SeqCst);
        let fail = self.fail.lock().unwrap().clone();
        Some(
            ps.iter()
                .filter(|p| fail.as_deref().is_some_and(|f| p.as_str().contains(f)))
                .cloned()
                .collect(),
        )
    }
}

fn counting(r: &Reg) -> (Arc<Hooked<Counting>>, Driver) {
    Hooked::wrap(Arc::clone(r.driver.inner()), Counting::default())
}

fn opts() -> GcOptions {
    GcOptions {
        delete_untagged: true,
        min_age: Duration::ZERO,
        jobs: 4,
        skip_bad_manifests: false,
    }
}

#[tokio::test]
async fn sweep_deletes_exact_objects_in_batches_without_listing() {
    let mut r = Reg::new();
    let kept = r.layer("r").await;
    let (m1, _) = r.image("r", std::slice::from_ref(&kept)).await;
    let l2 = r.layer("r").await;
    let (m2, _) = r.image("r", std::slice::from_ref(&l2)).await;
    r.tag("r", "t", &m2).await;
    r.tag("r", "t", &m1).await; // moved: m2 is untagged, in t's history
    let mut orphans = Vec::new();
    for _ in 0..2_100 {
        orphans.push(r.layer("r").await);
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (c, d) = counting(&r);
    let p = gc::plan(&d, &r.layout, &opts(), &NoProgress).await.unwrap();
    // 2,100 orphans + m2, its config and l2; their layer links (not m2's: manifests are not
    // linked in _layers).
    assert_eq!((p.blobs.len(), p.manifests.len()), (2_103, 1));
    assert_eq!(p.layer_links.len(), 2_102);
    let before = c.hooks.listings.load(Ordering::SeqCst);
    let (out, err) = gc::sweep(&d, &r.layout, &p, 4, &NoProgress).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        (out.manifests, out.layer_links, out.blobs),
        (1, 2_102, 2_103)
    );
    // tag-history entry 1 + revision 1 + links ⌈2102/1000⌉ + blobs ⌈2103/1000⌉.
    assert_eq!(c.hooks.delete_many.load(Ordering::SeqCst), 1 + 1 + 3 + 3);
    assert_eq!(c.hooks.deletes.load(Ordering::SeqCst), 0);
    assert_eq!(
        c.hooks.listings.load(Ordering::SeqCst),
        before,
        "the sweep listed"
    );
    assert!(!r.exists(&r.layout.revision_dir("r", &m2)).await);
    assert!(!r.exists(&r.layout.tag_index_entry("r", "t", &m2)).await);
    for o in orphans.iter().take(50) {
        assert!(!r.blob_exists(o).await);
        assert!(!r.exists(&r.layout.layer_link_dir("r", o)).await);
    }
    assert!(r.blob_exists(&kept).await && r.blob_exists(&m1).await);
    let again = gc::plan(&d, &r.layout, &opts(), &NoProgress).await.unwrap();
    assert!(again.blobs.is_empty() && again.manifests.is_empty() && again.layer_links.is_empty());
}

#[tokio::test]
async fn a_failed_link_step_stops_before_any_blob_and_a_rerun_finishes() {
    let mut r = Reg::new();
    let a = r.layer("r").await;
    let b = r.layer("r").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (c, d) = counting(&r);
    let p = gc::plan(&d, &r.layout, &opts(), &NoProgress).await.unwrap();
    assert_eq!(p.blobs.len(), 2);
    *c.hooks.fail.lock().unwrap() = Some(format!("_layers/sha256/{}", a.hex()));
    let (out, err) = gc::sweep(&d, &r.layout, &p, 4, &NoProgress).await;
    let e = err.expect("the refused link is an error").to_string();
    assert!(
        e.contains(&a.hex().to_string()) && e.contains("refused"),
        "{e}"
    );
    // The other link went; no blob did: every remaining link still names an existing blob.
    assert_eq!((out.layer_links, out.blobs), (1, 0));
    assert!(r.exists(&r.layout.layer_link("r", &a)).await && r.blob_exists(&a).await);
    assert!(!r.exists(&r.layout.layer_link("r", &b)).await && r.blob_exists(&b).await);
    *c.hooks.fail.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let p = gc::plan(&d, &r.layout, &opts(), &NoProgress).await.unwrap();
    let (out, err) = gc::sweep(&d, &r.layout, &p, 4, &NoProgress).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!((out.layer_links, out.blobs), (1, 2));
    assert!(!r.blob_exists(&a).await && !r.blob_exists(&b).await);
}
