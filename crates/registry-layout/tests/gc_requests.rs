//! What a gc plan costs on S3, counted by the driver's own request statistics: links whose
//! listed ETag proves their content are not read, only kept manifests are, and listings grow
//! with ⌈objects/1000⌉ plus one per key range — not per repository or per shard.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Reg;
use regstore_registry_layout::gc::{self, GcOptions, NoProgress};
use regstore_registry_layout::listing::range_count;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reads_manifests_not_links_and_lists_by_range() {
    let Some(s3) = common::s3_driver("gc-requests").await else {
        return;
    };
    let mut r = Reg::on(Arc::new(s3.clone()));

    const REPOS: usize = 12;
    let mut liar = None;
    for i in 0..REPOS {
        let repo = format!("ns/r{i:02}");
        let l1 = r.layer(&repo).await;
        let l2 = r.layer(&repo).await;
        let (kept, _) = r.image(&repo, &[l1.clone(), l2]).await;
        r.tag(&repo, "t", &kept).await;
        // A tag moved away from `old`: untagged, collected with -m.
        let (old, _) = r.image(&repo, &[l1]).await;
        r.put(
            &format!("{}/link", r.layout.tag_index_entry(&repo, "t", &old)),
            old.to_string(),
        )
        .await;
        if i == 0 {
            // A revision link whose content is not its directory's digest: its ETag proves
            // nothing, so it must be read (and it names `kept`, which is tagged).
            let other = r.blob(b"{\"not\":\"a revision\"}").await;
            r.put(&r.layout.revision_link(&repo, &other), kept.to_string())
                .await;
            liar = Some(other);
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let stats = s3.request_stats();
    let before = stats.snapshot();
    let opts = GcOptions {
        delete_untagged: true,
        min_age: Duration::ZERO,
        jobs: 4,
        skip_bad_manifests: false,
    };
    let plan = gc::plan(&r.driver, &r.layout, &opts, &NoProgress)
        .await
        .unwrap();
    let after = stats.snapshot();
    let used = |op: &str| after.get(op).unwrap_or(&0) - before.get(op).unwrap_or(&0);
    println!("requests: {after:?} minus {before:?}");

    assert_eq!(
        plan.manifests.len(),
        REPOS,
        "one untagged manifest per repository"
    );
    let liar = liar.unwrap();
    assert!(
        plan.blobs.iter().any(|b| b.digest == liar),
        "the lying link's directory digest is not what it names: its blob is unmarked"
    );
    // Reads: each kept manifest once, plus the one link whose ETag does not match.
    assert_eq!(used("GetObject"), REPOS as u64 + 1, "GETs");
    assert_eq!(
        used("HeadObject"),
        0,
        "existence comes from the blob listing"
    );
    // Listings: the first scan of repositories/ (its level, the namespace `ns`, then one per
    // repository: 12, fewer than the 16 ranges of 4 jobs); blobs/ and the re-scan, each
    // small enough for one range (one request per 1000 keys): its level plus one page.
    let first = 2 + REPOS as u64;
    let bound = first + 2 + 3;
    assert!(
        used("ListObjectsV2") <= bound,
        "{} listings, expected at most {bound}",
        used("ListObjectsV2")
    );
    assert!(range_count(opts.jobs) > REPOS);

    // fsck reads the same way: every revision's manifest (tagged and untagged) and the one
    // link whose ETag proves nothing.
    let before = stats.snapshot();
    let report = regstore_registry_layout::fsck::check(
        &r.driver,
        &r.layout,
        &regstore_registry_layout::fsck::FsckOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    let after = stats.snapshot();
    let used = |op: &str| after.get(op).unwrap_or(&0) - before.get(op).unwrap_or(&0);
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.manifests, 2 * REPOS);
    assert_eq!(used("GetObject"), 2 * REPOS as u64 + 1, "fsck GETs");

    r.driver.delete("/docker").await.unwrap();
}
