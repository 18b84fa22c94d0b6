//! The write headers (SSE mode, KMS key id, storage class, canned ACL) as S3 records them,
//! after every kind of write: PutObject, a multipart writer, a writer resumed after a short
//! tail (re-based by UploadPartCopy), and moves by CopyObject and by multipart copy. Runs
//! against moto (`REGSTORE_MOTO_ENDPOINT`), which stores all of them (RGW ignores AES256).

mod common;

use bytes::Bytes;
use regstore_driver_api::{Parameters, StorageDriver, StoragePath};
use regstore_driver_s3::test_support::{ObjectInspection, S3DriverTestExt};
use regstore_driver_s3::S3Driver;

use common::MIB;

fn p(s: &str) -> StoragePath {
    match StoragePath::parse(s) {
        Some(p) => p,
        None => panic!("bad test path {s}"),
    }
}

fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// What one configuration must leave on every object.
struct Expect {
    sse: Option<&'static str>,
    kms_suffix: Option<&'static str>,
    class: Option<&'static str>,
    /// A grant the canned ACL adds (`None`: no group grant at all).
    group_grant: Option<(&'static str, &'static str)>,
}

/// Every way the driver creates an object, each checked against `expect`.
async fn check_all_writes(d: &S3Driver, expect: &Expect) {
    let check = |what: &'static str, info: ObjectInspection| {
        assert_eq!(info.sse.as_deref(), expect.sse, "{what}: SSE {info:?}");
        match expect.kms_suffix {
            Some(k) => assert!(
                info.kms_key_id.as_deref().is_some_and(|id| id.ends_with(k)),
                "{what}: KMS key id {info:?}"
            ),
            None => assert_eq!(info.kms_key_id, None, "{what}: KMS key id {info:?}"),
        }
        match expect.class {
            Some(c) => assert_eq!(info.storage_class.as_deref(), Some(c), "{what}: {info:?}"),
            // No header sent: S3 stores its default and reports STANDARD as absent.
            None => assert!(
                info.storage_class.is_none() || info.storage_class.as_deref() == Some("STANDARD"),
                "{what}: storage class {info:?}"
            ),
        }
        let grants = match (&info.grants, expect.group_grant) {
            (Some(g), _) => g.clone(),
            // moto answers GetObjectAcl with a 500 for objects a multipart upload created
            // without any ACL header; with no ACL header sent there is no grant to find.
            (None, None) => Vec::new(),
            (None, Some(_)) => panic!("{what}: GetObjectAcl failed"),
        };
        let groups: Vec<&(String, String)> = grants
            .iter()
            .filter(|(g, _)| g == ALL_USERS || g == AUTH_USERS)
            .collect();
        match expect.group_grant {
            Some((g, perm)) => assert!(
                groups.iter().any(|(gg, pp)| gg == g && pp == perm),
                "{what}: expected {perm} for {g}, grants {grants:?}"
            ),
            None => assert!(groups.is_empty(), "{what}: unexpected grants {grants:?}"),
        }
    };

    // PutObject.
    ok(
        "put",
        d.put_content(&p("/h/put"), Bytes::from_static(b"put"))
            .await,
    );
    check(
        "PutObject",
        ok("inspect", d.inspect_object(&p("/h/put")).await),
    );

    // Multipart writer: 6 MiB = one 5 MiB part + a 1 MiB tail.
    let six = Bytes::from(vec![7u8; 6 * MIB as usize]);
    let mut w = ok("writer", d.writer(&p("/h/multipart"), false).await);
    ok("write", w.write(six.clone()).await);
    ok("commit", w.commit().await);
    check(
        "multipart writer",
        ok("inspect", d.inspect_object(&p("/h/multipart")).await),
    );

    // Resume after a short tail with ≥ 5 MiB written: re-based by UploadPartCopy.
    let mut w = ok("writer", d.writer(&p("/h/resumed"), false).await);
    ok("write", w.write(six.clone()).await);
    ok("close", w.close().await);
    let mut w = ok("resume", d.writer(&p("/h/resumed"), true).await);
    assert_eq!(w.size(), 6 * MIB);
    ok("write", w.write(Bytes::from_static(b"tail")).await);
    ok("commit", w.commit().await);
    assert_eq!(ok("stat", d.stat(&p("/h/resumed")).await).size, 6 * MIB + 4);
    check(
        "resumed writer (copy re-base)",
        ok("inspect", d.inspect_object(&p("/h/resumed")).await),
    );

    // Resume after a short tail under 5 MiB: re-based by reading back.
    let mut w = ok("writer", d.writer(&p("/h/small"), false).await);
    ok("write", w.write(Bytes::from_static(b"small")).await);
    ok("close", w.close().await);
    let mut w = ok("resume", d.writer(&p("/h/small"), true).await);
    ok("write", w.write(Bytes::from_static(b"-more")).await);
    ok("commit", w.commit().await);
    assert_eq!(ok("get", d.get_content(&p("/h/small")).await), "small-more");
    check(
        "resumed writer (read-back re-base)",
        ok("inspect", d.inspect_object(&p("/h/small")).await),
    );

    // Move by CopyObject (small) and by multipart copy (over the 5 MiB threshold).
    ok(
        "move small",
        d.move_object(&p("/h/put"), &p("/h/moved-small")).await,
    );
    check(
        "CopyObject",
        ok("inspect", d.inspect_object(&p("/h/moved-small")).await),
    );
    let before = d.request_stats().get("UploadPartCopy");
    ok(
        "move large",
        d.move_object(&p("/h/multipart"), &p("/h/moved-large"))
            .await,
    );
    assert_eq!(
        d.request_stats().get("UploadPartCopy") - before,
        2,
        "6 MiB with 5 MiB copy parts"
    );
    check(
        "multipart copy",
        ok("inspect", d.inspect_object(&p("/h/moved-large")).await),
    );
    assert_eq!(ok("get", d.get_content(&p("/h/moved-large")).await), six);

    ok("delete", d.delete(&p("/h")).await);
    common::cleanup(d).await;
}

async fn driver(env: &common::Env, extra: &[(&str, &str)]) -> S3Driver {
    let mut params: Parameters = env
        .params(&format!("/{}/", common::unique("regstore-headers-")))
        .with("multipartcopythresholdsize", (5 * MIB).to_string())
        .with("multipartcopychunksize", (5 * MIB).to_string());
    for (k, v) in extra {
        params.insert(*k, *v);
    }
    env.driver_with(params).await
}

#[tokio::test]
async fn aes256_class_and_public_read() {
    let Some(env) = common::moto_env() else {
        return;
    };
    let d = driver(
        &env,
        &[
            ("encrypt", "true"),
            ("storageclass", "STANDARD_IA"),
            ("objectacl", "public-read"),
        ],
    )
    .await;
    check_all_writes(
        &d,
        &Expect {
            sse: Some("AES256"),
            kms_suffix: None,
            class: Some("STANDARD_IA"),
            group_grant: Some((ALL_USERS, "READ")),
        },
    )
    .await;
}

#[tokio::test]
async fn kms_key_class_and_authenticated_read() {
    let Some(env) = common::moto_env() else {
        return;
    };
    let d = driver(
        &env,
        &[
            ("encrypt", "true"),
            ("keyid", "regstore-test-key-1"),
            ("storageclass", "REDUCED_REDUNDANCY"),
            ("objectacl", "authenticated-read"),
        ],
    )
    .await;
    check_all_writes(
        &d,
        &Expect {
            sse: Some("aws:kms"),
            kms_suffix: Some("regstore-test-key-1"),
            class: Some("REDUCED_REDUNDANCY"),
            group_grant: Some((AUTH_USERS, "READ")),
        },
    )
    .await;
}

/// `storageclass: NONE` and `objectownership: BucketOwnerEnforced`: no class and no ACL
/// header, so the object has S3's defaults (STANDARD, owner-only ACL) and no encryption.
#[tokio::test]
async fn none_class_and_no_acl_header() {
    let Some(env) = common::moto_env() else {
        return;
    };
    let d = driver(
        &env,
        &[
            ("storageclass", "NONE"),
            ("objectownership", "BucketOwnerEnforced"),
            // Would be visible as an AllUsers grant if an ACL header were still sent.
            ("objectacl", "public-read"),
        ],
    )
    .await;
    assert_eq!(d.config().object_acl, None);
    assert_eq!(d.config().storage_class, None);
    check_all_writes(
        &d,
        &Expect {
            sse: None,
            kms_suffix: None,
            class: None,
            group_grant: None,
        },
    )
    .await;
}
