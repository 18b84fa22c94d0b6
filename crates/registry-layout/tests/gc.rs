//! Mark and sweep rules on the in-memory backend: the sets of distribution's scenarios (see
//! /docs/gc.md), the index fix, min-age, bad input, and that a sweep leaves nothing to collect.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in fixtures

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Reg;
use regstore_registry_layout::gc::{self, GcOptions, GcPlan, NoProgress};
use regstore_registry_layout::{Digest, LayoutError};

fn opts(m: bool) -> GcOptions {
    GcOptions {
        delete_untagged: m,
        min_age: Duration::ZERO,
        jobs: 4,
        skip_bad_manifests: false,
    }
}

async fn plan(r: &Reg, o: &GcOptions) -> GcPlan {
    // min_age 0 compares with the start time: make sure everything written is older.
    tokio::time::sleep(Duration::from_millis(5)).await;
    gc::plan(&r.driver, &r.layout, o, &NoProgress)
        .await
        .unwrap()
}

fn blobs(p: &GcPlan) -> BTreeSet<Digest> {
    p.blobs.iter().map(|b| b.digest.clone()).collect()
}

fn manifests(p: &GcPlan) -> BTreeSet<(String, Digest)> {
    p.manifests
        .iter()
        .map(|m| (m.repository.clone(), m.digest.clone()))
        .collect()
}

fn set<const N: usize>(d: [&Digest; N]) -> BTreeSet<Digest> {
    d.into_iter().cloned().collect()
}

/// Runs a real gc, then checks a second plan finds nothing.
async fn collect_and_recheck(r: &Reg, o: &GcOptions) -> GcPlan {
    let p = plan(r, o).await;
    let (_, err) = gc::sweep(&r.driver, &r.layout, &p, 4, &NoProgress).await;
    assert!(err.is_none(), "{err:?}");
    let again = plan(r, o).await;
    assert!(
        again.blobs.is_empty() && again.manifests.is_empty(),
        "{again:?}"
    );
    p
}

#[tokio::test]
async fn orphan_blob_is_collected_in_every_mode() {
    let mut r = Reg::new();
    let l = r.layer("r").await;
    let (m, _) = r.image("r", &[l.clone()]).await;
    r.tag("r", "t", &m).await;
    let orphan = r.layer("r").await;
    for mode in [false, true] {
        let p = plan(&r, &opts(mode)).await;
        assert_eq!(blobs(&p), set([&orphan]));
        assert!(p.manifests.is_empty());
        assert_eq!(p.layer_links.len(), 1);
    }
    collect_and_recheck(&r, &opts(false)).await;
    assert!(!r.blob_exists(&orphan).await && r.blob_exists(&l).await);
    assert!(!r.exists(&r.layout.layer_link("r", &orphan)).await);
}

#[tokio::test]
async fn moved_tag_frees_the_old_manifest_only_with_m() {
    let mut r = Reg::new();
    let shared = r.layer("r").await;
    let l1 = r.layer("r").await;
    let l2 = r.layer("r").await;
    let (m1, _) = r.image("r", &[l1, shared.clone()]).await;
    let (m2, c2) = r.image("r", &[l2.clone(), shared.clone()]).await;
    r.tag("r", "t", &m2).await;
    r.tag("r", "t", &m1).await; // moved: index keeps m2
    let p = plan(&r, &opts(false)).await;
    assert!(p.blobs.is_empty() && p.manifests.is_empty());
    let p = plan(&r, &opts(true)).await;
    assert_eq!(manifests(&p), [("r".to_owned(), m2.clone())].into());
    assert_eq!(blobs(&p), set([&m2, &c2, &l2]));
    assert_eq!(p.manifests[0].tags, vec!["t".to_owned()]);
    collect_and_recheck(&r, &opts(true)).await;
    assert!(!r.exists(&r.layout.revision_dir("r", &m2)).await);
    assert!(!r.exists(&r.layout.tag_index_entry("r", "t", &m2)).await);
    assert!(r.blob_exists(&shared).await && r.blob_exists(&m1).await);
}

#[tokio::test]
async fn api_deleted_manifest_frees_its_blobs() {
    let mut r = Reg::new();
    let l = r.layer("r").await;
    let (m, c) = r.image("r", &[l.clone()]).await;
    r.tag("r", "t", &m).await;
    r.api_delete("r", &m).await;
    for mode in [false, true] {
        let p = plan(&r, &opts(mode)).await;
        assert_eq!(blobs(&p), set([&m, &c, &l]));
        assert!(p.manifests.is_empty());
    }
}

#[tokio::test]
async fn children_of_a_tagged_index_are_kept_with_m() {
    for docker in [false, true] {
        let mut r = Reg::new();
        let la = r.layer("r").await;
        let lb = r.layer("r").await;
        let (a, ca) = r.image("r", &[la.clone()]).await;
        let (b, _) = r.image("r", &[lb.clone()]).await;
        let i = r.index("r", &[a.clone(), b.clone()], docker).await;
        r.tag("r", "latest", &i).await;
        for mode in [false, true] {
            let p = plan(&r, &opts(mode)).await;
            // distribution 2.8.2 with -m: manifests {a, b}, blobs {ca, la, cb, lb} (#3178).
            assert!(p.blobs.is_empty() && p.manifests.is_empty(), "{p:?}");
        }
        collect_and_recheck(&r, &opts(true)).await;
        assert!(r.blob_exists(&ca).await && r.exists(&r.layout.revision_link("r", &a)).await);
    }
}

#[tokio::test]
async fn untagged_index_goes_with_its_untagged_children() {
    let mut r = Reg::new();
    let la = r.layer("r").await;
    let (a, ca) = r.image("r", &[la.clone()]).await;
    let i = r.index("r", &[a.clone()], false).await;
    let (keep, _) = r.image("r", &[]).await;
    r.tag("r", "keep", &keep).await; // a tags/ directory exists
    let p = plan(&r, &opts(true)).await;
    assert_eq!(
        manifests(&p),
        [("r".to_owned(), a.clone()), ("r".to_owned(), i.clone())].into()
    );
    assert_eq!(blobs(&p), set([&i, &a, &ca, &la]));
}

#[tokio::test]
async fn untagged_index_with_tagged_children() {
    let mut r = Reg::new();
    let la = r.layer("r").await;
    let (a, _) = r.image("r", &[la]).await;
    r.tag("r", "a", &a).await;
    let i = r.index("r", &[a.clone()], true).await;
    let p = plan(&r, &opts(true)).await;
    assert_eq!(manifests(&p), [("r".to_owned(), i.clone())].into());
    assert_eq!(blobs(&p), set([&i]));
}

#[tokio::test]
async fn untagged_in_one_repo_tagged_in_another() {
    let mut r = Reg::new();
    let l = r.layer("aaa").await;
    r.link_layer("bbb", &l).await;
    let (m, _) = r.image("aaa", &[l]).await;
    r.put(&r.layout.revision_link("bbb", &m), m.to_string())
        .await;
    r.tag("bbb", "t", &m).await;
    let other = r.image("aaa", &[]).await.0;
    r.tag("aaa", "other", &other).await;
    let p = plan(&r, &opts(true)).await;
    assert_eq!(manifests(&p), [("aaa".to_owned(), m.clone())].into());
    assert!(p.blobs.is_empty());
}

#[tokio::test]
async fn shared_layers_survive_while_one_repo_uses_them() {
    let mut r = Reg::new();
    let shared = r.layer("a").await;
    r.link_layer("b", &shared).await;
    let (ma, ca) = r.image("a", &[shared.clone()]).await;
    let (mb, _) = r.image("b", &[shared.clone()]).await;
    r.tag("a", "t", &ma).await;
    r.tag("b", "t", &mb).await;
    r.api_delete("a", &ma).await;
    let p = plan(&r, &opts(false)).await;
    assert_eq!(blobs(&p), set([&ma, &ca]));
    // The link in `a` to the still-used shared layer stays.
    assert!(p.layer_links.iter().all(|l| l.digest != shared));
}

#[tokio::test]
async fn schema1_is_marked_by_fs_layers() {
    let mut r = Reg::new();
    let l = r.layer("r").await;
    let body = format!(
        r#"{{"schemaVersion":1,"name":"r","tag":"t","fsLayers":[{{"blobSum":"{l}"}},{{"blobSum":"{l}"}}],"history":[]}}"#
    );
    let m = r.manifest("r", body.as_bytes()).await;
    r.tag("r", "t", &m).await;
    let p = plan(&r, &opts(true)).await;
    assert!(p.blobs.is_empty(), "{p:?}");
    assert_eq!(p.marked, 2);
}

#[tokio::test]
async fn revision_without_blob_is_skipped() {
    let mut r = Reg::new();
    let l = r.layer("r").await;
    let (m, c) = r.image("r", &[l.clone()]).await;
    r.driver.delete(&r.layout.blob_dir(&m)).await.unwrap();
    let p = plan(&r, &opts(true)).await;
    assert!(p.manifests.is_empty());
    assert_eq!(blobs(&p), set([&c, &l]));
}

#[tokio::test]
async fn min_age_keeps_young_blobs_and_manifests() {
    let mut r = Reg::new();
    let l = r.layer("r").await;
    let (m, _) = r.image("r", &[l.clone()]).await;
    let orphan = r.layer("r").await;
    let young = GcOptions {
        min_age: Duration::from_secs(3600),
        ..opts(true)
    };
    let p = plan(&r, &young).await;
    assert!(p.blobs.is_empty() && p.manifests.is_empty(), "{p:?}");
    assert_eq!(p.kept_young_manifests, 1);
    // everything but the manifest's own blobs is unmarked and young
    assert_eq!(p.kept_young_blobs, 1);
    let p = plan(&r, &opts(true)).await;
    assert_eq!(manifests(&p), [("r".to_owned(), m)].into());
    assert!(blobs(&p).contains(&orphan));

    // Old blob, link rewritten after the cutoff (a push reusing it): kept.
    let r2 = Reg::new();
    let old = r2.blob(b"old").await;
    let o1 = GcOptions {
        min_age: Duration::from_millis(1500),
        ..opts(false)
    };
    tokio::time::sleep(Duration::from_millis(1600)).await;
    r2.link_layer("x", &old).await;
    let p = plan(&r2, &o1).await;
    assert!(p.blobs.is_empty(), "{p:?}");
    assert_eq!(p.kept_young_blobs, 1);
}

#[tokio::test]
async fn bad_manifest_stops_before_any_delete_unless_skipped() {
    let mut r = Reg::new();
    let orphan = r.layer("r").await;
    let bad = r.manifest("r", b"{\"schemaVersion\":7}").await;
    r.tag("r", "t", &bad).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = gc::plan(&r.driver, &r.layout, &opts(false), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(e, LayoutError::BadManifest { .. }));
    assert!(e.to_string().contains(&r.layout.blob_data(&bad)), "{e}");
    assert!(r.blob_exists(&orphan).await);
    let skip = GcOptions {
        skip_bad_manifests: true,
        ..opts(false)
    };
    let p = plan(&r, &skip).await;
    assert_eq!(p.bad_manifests.len(), 1);
    assert_eq!(blobs(&p), set([&orphan]));
}

#[tokio::test]
async fn bad_link_content_names_the_path() {
    let mut r = Reg::new();
    let (m, _) = r.image("r", &[]).await;
    let link = r.layout.revision_link("r", &m);
    r.put(&link, format!("{m}\n")).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = gc::plan(&r.driver, &r.layout, &opts(false), &NoProgress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&link), "{e}");
    r.put(&link, m.to_string()).await;
    r.put(&r.layout.tag_current_link("r", "t"), "sha256:XYZ")
        .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = gc::plan(&r.driver, &r.layout, &opts(true), &NoProgress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/tags/t/current/link"), "{e}");
    // harmless without -m, like distribution
    plan(&r, &opts(false)).await;
}

#[tokio::test]
async fn stray_blob_path_stops_the_run() {
    let r = Reg::new();
    r.put("/docker/registry/v2/blobs/sha256/zz/data", "x").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = gc::plan(&r.driver, &r.layout, &opts(false), &NoProgress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("blobs/sha256/zz/data"), "{e}");
}

#[tokio::test]
async fn empty_store_plans_nothing() {
    let r = Reg::new();
    let p = plan(&r, &opts(true)).await;
    assert_eq!((p.marked, p.blobs.len(), p.manifests.len()), (0, 0, 0));
}

#[tokio::test]
async fn empty_young_link_is_a_write_in_progress() {
    // distribution's filesystem driver truncates a link, then writes it: a live gc can read it
    // empty. Young: a write in progress, keep what it may name. Old: a bad link, as before.
    let mut r = Reg::new();
    let (old, _) = r.image("r", &[]).await;
    let (new, _) = r.image("r", &[]).await;
    r.tag("r", "t", &old).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let hour = GcOptions {
        min_age: Duration::from_secs(3600),
        ..opts(true)
    };
    // A tag being moved: nothing untagged in its repository is queued.
    r.put(&r.layout.tag_current_link("r", "t"), "").await;
    let p = gc::plan(&r.driver, &r.layout, &hour, &NoProgress)
        .await
        .unwrap();
    assert!(p.manifests.is_empty() && p.blobs.is_empty(), "{p:?}");
    // A revision being written: kept under the name of its directory, with what it references.
    r.tag("r", "t", &old).await;
    r.put(&r.layout.revision_link("r", &new), "").await;
    let p = gc::plan(&r.driver, &r.layout, &hour, &NoProgress)
        .await
        .unwrap();
    assert!(p.manifests.is_empty() && p.blobs.is_empty(), "{p:?}");
    // Older than the cutoff, an empty link is still a bad link.
    let e = gc::plan(&r.driver, &r.layout, &opts(true), &NoProgress)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&r.layout.revision_link("r", &new)),
        "{e}"
    );
}
