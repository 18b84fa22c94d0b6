//! fsck on planted corruptions: every one is found, a clean store reports nothing, and
//! repairs remove only what they name.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in fixtures

mod common;

use common::Reg;
use regstore_registry_layout::fsck::{self, FsckOptions, ProblemKind, Repair};
use regstore_registry_layout::gc::NoProgress;
use regstore_registry_layout::Digest;

fn kinds(r: &fsck::FsckReport) -> Vec<(ProblemKind, String)> {
    r.problems
        .iter()
        .map(|p| (p.kind, p.path.clone()))
        .collect()
}

#[tokio::test]
async fn clean_store_is_clean_and_every_planted_corruption_is_found() {
    let mut r = Reg::new();
    let l = r.layer("r").await;
    let (m, c) = r.image("r", &[l.clone()]).await;
    r.tag("r", "t", &m).await;
    let o = FsckOptions {
        verify_digests: true,
        ..FsckOptions::default()
    };
    let rep = fsck::check(&r.driver, &r.layout, &o, &NoProgress)
        .await
        .unwrap();
    assert!(rep.is_clean(), "{rep:?}");
    assert_eq!((rep.blobs, rep.manifests), (3, 1));

    // 1. a blob whose bytes do not match its digest
    r.put(&r.layout.blob_data(&l), b"tampered".to_vec()).await;
    // 2. a layer link and 3. a revision link to missing blobs
    let gone = Digest::sha256_of(b"gone");
    r.link_layer("r", &gone).await;
    r.put(&r.layout.revision_link("r", &gone), gone.to_string())
        .await;
    // 4. a tag naming a digest that is no revision
    r.put(
        &r.layout.tag_current_link("r", "dangling"),
        gone.to_string(),
    )
    .await;
    // 5. a manifest referencing a missing blob (its config)
    r.driver.delete(&r.layout.blob_dir(&c)).await.unwrap();
    // 6. a bad link
    r.put(&r.layout.layer_link("s", &l), "not a digest").await;
    // 7. an unparseable manifest
    let bad = r
        .manifest("s", b"{\"schemaVersion\":2,\"mediaType\":\"text/x\"}")
        .await;
    // 8. a stale upload (startedat is RFC 3339), and a fresh one that is fine
    r.put(
        "/docker/registry/v2/repositories/r/_uploads/u1/startedat",
        "2020-01-01T00:00:00Z",
    )
    .await;
    r.put(
        "/docker/registry/v2/repositories/r/_uploads/u2/startedat",
        chrono::Utc::now().to_rfc3339(),
    )
    .await;

    let rep = fsck::check(&r.driver, &r.layout, &o, &NoProgress)
        .await
        .unwrap();
    let found = kinds(&rep);
    let want = [
        (ProblemKind::CorruptBlob, r.layout.blob_data(&l)),
        (
            ProblemKind::DanglingLayerLink,
            r.layout.layer_link("r", &gone),
        ),
        (
            ProblemKind::DanglingRevisionLink,
            r.layout.revision_link("r", &gone),
        ),
        (ProblemKind::BadLink, r.layout.layer_link("s", &l)),
        (
            ProblemKind::DanglingTag,
            r.layout.tag_current_link("r", "dangling"),
        ),
        (ProblemKind::BadManifest, r.layout.blob_data(&bad)),
        (ProblemKind::MissingReference, r.layout.blob_data(&m)),
        // the deleted config's own layer link dangles too
        (ProblemKind::DanglingLayerLink, r.layout.layer_link("r", &c)),
        (
            ProblemKind::StaleUpload,
            "/docker/registry/v2/repositories/r/_uploads/u1".to_owned(),
        ),
    ];
    for w in &want {
        assert!(found.contains(w), "missing {w:?} in {found:#?}");
    }
    assert_eq!(found.len(), want.len(), "{found:#?}");
    assert!(rep.problems.iter().all(|p| !p.repaired));
    // nothing was modified
    assert!(r.exists(&r.layout.layer_link("r", &gone)).await);

    let fix = FsckOptions {
        repair: Repair {
            dangling_links: true,
            stale_uploads: true,
        },
        ..o.clone()
    };
    let rep = fsck::check(&r.driver, &r.layout, &fix, &NoProgress)
        .await
        .unwrap();
    let repaired: Vec<_> = rep
        .problems
        .iter()
        .filter(|p| p.repaired)
        .map(|p| p.kind)
        .collect();
    assert_eq!(
        repaired,
        vec![
            ProblemKind::DanglingLayerLink,
            ProblemKind::DanglingLayerLink,
            ProblemKind::DanglingRevisionLink,
            ProblemKind::StaleUpload
        ]
    );
    assert!(!r.exists(&r.layout.layer_link("r", &gone)).await);
    assert!(!r.exists(&r.layout.revision_dir("r", &gone)).await);
    assert!(
        r.exists("/docker/registry/v2/repositories/r/_uploads/u2/startedat")
            .await
    );
    let rep = fsck::check(&r.driver, &r.layout, &o, &NoProgress)
        .await
        .unwrap();
    assert_eq!(rep.problems.len(), 5, "{:#?}", rep.problems);
}
