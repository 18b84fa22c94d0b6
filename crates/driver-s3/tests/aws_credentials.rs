//! Keyless credentials end to end: the driver, with no `accesskey`/`secretkey`, stores and
//! reads objects on a moto that enforces authentication, with its credentials from each source
//! of the default chain — environment keys, a profile with `role_arn` + `source_profile` (moto's
//! STS AssumeRole), the container endpoint with a token file, IMDSv2 and web identity (loopback
//! stand-ins handing out keys moto minted) — and picks up rotated keys without a restart.
//!
//! The test starts its own moto (`python3 -m moto.server`, installed by `cargo xtask test`)
//! with `INITIAL_NO_AUTH_ACTION_COUNT` covering the IAM set-up, so it runs wherever the other
//! moto tests run; without moto it skips, or fails when `CI` is set. One test function: the
//! scenarios change the process environment, which the chain reads when a driver is built.

mod common;
#[path = "common/standin.rs"]
mod standin;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use regstore_driver_api::{Parameters, StorageDriver, StoragePath};
use regstore_driver_s3::{S3Config, S3Driver};
use rusoto_core::signature::SignedRequest;
use rusoto_core::{DispatchSignedRequest, HttpClient, Region};
use rusoto_credential::AwsCredentials;
use standin::{Creds, CredsFn};

const ACCOUNT: &str = "123456789012";
const BUCKET: &str = "regstore-keyless";
/// The unauthenticated requests of the set-up below; everything after them must be signed.
const SETUP_ACTIONS: usize = 9;

/// A signed (SigV4) query-protocol call to moto; returns status and body.
async fn call(
    endpoint: &str,
    service: &str,
    creds: &AwsCredentials,
    params: &[(&str, &str)],
) -> (u16, String) {
    let region = Region::Custom {
        name: "us-east-1".into(),
        endpoint: endpoint.into(),
    };
    let mut req = SignedRequest::new("POST", service, &region, "/");
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().copied())
        .finish();
    req.set_content_type("application/x-www-form-urlencoded".into());
    req.set_payload(Some(body.into_bytes()));
    req.sign(creds);
    // A plain-HTTP connector: rusoto's own `HttpClient::new()` is https-only when rusoto_core
    // is built with rustls (the rustls configuration of this crate).
    let mut resp = HttpClient::from_connector(hyper::client::HttpConnector::new())
        .dispatch(req, Some(Duration::from_secs(30)))
        .await
        .expect("moto answers");
    let resp = resp.buffer().await.expect("body");
    (
        resp.status.as_u16(),
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

/// The text of the first `<name>` element.
fn field(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    xml[start..end].to_owned()
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const ASSUME_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
const TRUST_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity"]}]}"#;

/// IAM keys as (id, secret).
type Keys = (String, String);

fn keys(xml: &str) -> Keys {
    (field(xml, "AccessKeyId"), field(xml, "SecretAccessKey"))
}

fn aws(k: &Keys) -> AwsCredentials {
    AwsCredentials::new(k.0.clone(), k.1.clone(), None, None)
}

/// The set-up, exactly [`SETUP_ACTIONS`] requests (signed with made-up keys: moto does not
/// check them yet, but needs the signature's scope to route to IAM).
async fn setup(url: &str) -> (Keys, Keys, Keys, String) {
    let any = AwsCredentials::new("AKIASETUP", "setup", None, None);
    let iam = |params: Vec<(&'static str, String)>| {
        let any = any.clone();
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = call(url, "iam", &any, &p).await;
            assert_eq!(status, 200, "IAM set-up call {p:?}: {body}");
            body
        }
    };
    let v = |s: &str| s.to_owned();
    iam(vec![
        ("Action", v("CreateUser")),
        ("Version", v("2010-05-08")),
        ("UserName", v("e2e")),
    ])
    .await;
    iam(vec![
        ("Action", v("PutUserPolicy")),
        ("Version", v("2010-05-08")),
        ("UserName", v("e2e")),
        ("PolicyName", v("all")),
        ("PolicyDocument", v(ALLOW_ALL)),
    ])
    .await;
    let k1 = keys(
        &iam(vec![
            ("Action", v("CreateAccessKey")),
            ("Version", v("2010-05-08")),
            ("UserName", v("e2e")),
        ])
        .await,
    );
    let k2 = keys(
        &iam(vec![
            ("Action", v("CreateAccessKey")),
            ("Version", v("2010-05-08")),
            ("UserName", v("e2e")),
        ])
        .await,
    );
    iam(vec![
        ("Action", v("CreateRole")),
        ("Version", v("2010-05-08")),
        ("RoleName", v("registry")),
        ("AssumeRolePolicyDocument", v(TRUST_ALL)),
    ])
    .await;
    iam(vec![
        ("Action", v("PutRolePolicy")),
        ("Version", v("2010-05-08")),
        ("RoleName", v("registry")),
        ("PolicyName", v("all")),
        ("PolicyDocument", v(ALLOW_ALL)),
    ])
    .await;
    iam(vec![
        ("Action", v("CreateUser")),
        ("Version", v("2010-05-08")),
        ("UserName", v("limited")),
    ])
    .await;
    iam(vec![
        ("Action", v("PutUserPolicy")),
        ("Version", v("2010-05-08")),
        ("UserName", v("limited")),
        ("PolicyName", v("assume-only")),
        ("PolicyDocument", v(ASSUME_ONLY)),
    ])
    .await;
    let limited = keys(
        &iam(vec![
            ("Action", v("CreateAccessKey")),
            ("Version", v("2010-05-08")),
            ("UserName", v("limited")),
        ])
        .await,
    );
    (
        k1,
        k2,
        limited,
        format!("arn:aws:iam::{ACCOUNT}:role/registry"),
    )
}

/// Temporary role credentials from moto's (signed) AssumeRole.
async fn assume(url: &str, with: &Keys, role: &str, session: &str) -> Creds {
    let (status, body) = call(
        url,
        "sts",
        &aws(with),
        &[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", session),
        ],
    )
    .await;
    assert_eq!(status, 200, "AssumeRole: {body}");
    Creds {
        id: field(&body, "AccessKeyId"),
        secret: field(&body, "SecretAccessKey"),
        token: Some(field(&body, "SessionToken")),
        expiration: field(&body, "Expiration"),
    }
}

/// Clears every `AWS_*` variable, then sets `vars` (plus a private HOME and no IMDS unless the
/// scenario sets its own).
fn environment(home: &std::path::Path, vars: &[(&str, &str)]) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            std::env::remove_var(k);
        }
    }
    std::env::set_var("HOME", home);
    if !vars.iter().any(|(k, _)| k.starts_with("AWS_EC2_METADATA")) {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
}

/// A driver with no keys in its configuration (so it uses the chain, read now).
fn keyless(url: &str, root: &str) -> S3Driver {
    let p = Parameters::new()
        .with("regionendpoint", url)
        .with("region", "us-east-1")
        .with("bucket", BUCKET)
        .with("v4auth", "true")
        .with("forcepathstyle", "true")
        .with("rootdirectory", root);
    let config = S3Config::from_parameters(&p).expect("keyless configuration");
    S3Driver::new(config).expect("driver")
}

/// Put and get one object; the error text on failure.
async fn roundtrip(driver: &S3Driver, name: &str) -> Result<(), String> {
    let path = StoragePath::parse(&format!("/keyless/{name}")).expect("path");
    let content = format!("stored with credentials from {name}");
    driver
        .put_content(&path, Bytes::from(content.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let got = driver.get_content(&path).await.map_err(|e| e.to_string())?;
    assert_eq!(got, content.as_bytes(), "{name}: content differs");
    Ok(())
}

fn assert_refused(e: &str, codes: &[&str], what: &str) {
    assert!(
        codes.iter().any(|c| e.contains(c)),
        "{what}: expected one of {codes:?}, got: {e}"
    );
}

fn rotating(initial: Creds) -> (CredsFn, Arc<Mutex<Creds>>) {
    let current = Arc::new(Mutex::new(initial));
    let c2 = Arc::clone(&current);
    (Arc::new(move || c2.lock().unwrap().clone()), current)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_sources_against_moto_with_authentication() {
    let started = Instant::now();
    let Some(moto) = regstore_test_support::EnforcedMoto::start(SETUP_ACTIONS, "") else {
        return;
    };
    let url = moto.url.clone();
    let (k1, k2, limited, role) = setup(&url).await;
    let home = tempfile::tempdir().unwrap();
    let root = format!("/{}/", common::unique("keyless-"));

    // Environment keys; this driver also creates the bucket (signed: set-up is over).
    environment(
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", &k1.0),
            ("AWS_SECRET_ACCESS_KEY", &k1.1),
        ],
    );
    let d = keyless(&url, &root);
    d.ensure_bucket()
        .await
        .expect("bucket with environment keys");
    roundtrip(&d, "environment")
        .await
        .expect("environment keys");

    // moto really checks: unknown key, wrong secret and a user without S3 rights are refused.
    environment(
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000"),
            ("AWS_SECRET_ACCESS_KEY", &k1.1),
        ],
    );
    let e = roundtrip(&keyless(&url, &root), "unknown")
        .await
        .expect_err("unknown key accepted");
    assert_refused(&e, &["InvalidAccessKeyId", "403"], "unknown key");
    environment(
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", &k1.0),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
        ],
    );
    let e = roundtrip(&keyless(&url, &root), "badsig")
        .await
        .expect_err("bad signature accepted");
    assert_refused(&e, &["SignatureDoesNotMatch", "403"], "wrong secret");
    environment(
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", &limited.0),
            ("AWS_SECRET_ACCESS_KEY", &limited.1),
        ],
    );
    let e = roundtrip(&keyless(&url, &root), "limited")
        .await
        .expect_err("limited user may not write");
    assert_refused(&e, &["AccessDenied", "403"], "user without S3 rights");

    // Profile: role_arn + source_profile (the limited user, which may only assume the role).
    let cfg = home.path().join("config");
    let crd = home.path().join("credentials");
    std::fs::write(
        &cfg,
        format!("[profile app]\nrole_arn = {role}\nsource_profile = base\nrole_session_name = registry-app\n"),
    )
    .unwrap();
    std::fs::write(
        &crd,
        format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            limited.0, limited.1
        ),
    )
    .unwrap();
    environment(
        home.path(),
        &[
            ("AWS_PROFILE", "app"),
            ("AWS_CONFIG_FILE", cfg.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", crd.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", &url),
        ],
    );
    roundtrip(&keyless(&url, &root), "profile")
        .await
        .expect("profile role_arn + source_profile");

    // Container full URI + token file (EKS Pod Identity shape).
    let token_file = home.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, "pod-identity-token\n").unwrap();
    let (creds, _) = rotating(assume(&url, &k1, &role, "container").await);
    let container = standin::container("/v1/credentials", token_file.clone(), creds);
    let full = format!("{}/v1/credentials", container.url);
    environment(
        home.path(),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
        ],
    );
    roundtrip(&keyless(&url, &root), "container")
        .await
        .expect("container credentials");
    assert!(!container.hits().is_empty());

    // IMDSv2.
    let (creds, _) = rotating(assume(&url, &k1, &role, "imds").await);
    let imds = standin::imds("registry-node", creds);
    environment(
        home.path(),
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url)],
    );
    roundtrip(&keyless(&url, &root), "imds")
        .await
        .expect("IMDSv2 credentials");
    assert_eq!(imds.hits()[0].method, "PUT");

    // Web identity: the STS stand-in answers with keys moto minted.
    let jwt = home.path().join("web-identity-token");
    std::fs::write(&jwt, "eyJhbGciOiJSUzI1NiJ9.e2e.sig\n").unwrap();
    let (creds, _) = rotating(assume(&url, &k1, &role, "webidentity").await);
    let role_static: &'static str = Box::leak(role.clone().into_boxed_str());
    let sts = standin::sts_web_identity(role_static, jwt.clone(), creds);
    environment(
        home.path(),
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", jwt.to_str().unwrap()),
            ("AWS_ROLE_ARN", &role),
            ("AWS_ENDPOINT_URL_STS", &sts.url),
        ],
    );
    roundtrip(&keyless(&url, &root), "web-identity")
        .await
        .expect("web identity");
    assert_eq!(sts.hits().len(), 1);

    // Rotation: the container endpoint hands out k2 expiring in 4 s; k2 is then deleted and
    // the endpoint hands out k1. The same driver must pick k1 up by itself.
    let (creds, current) = rotating(Creds::expiring_in(&k2.0, &k2.1, None, 4));
    let rot = standin::container("/v1/credentials", token_file.clone(), creds);
    let full = format!("{}/v1/credentials", rot.url);
    environment(
        home.path(),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
        ],
    );
    let d = keyless(&url, &root);
    roundtrip(&d, "rotation-1").await.expect("first keys");
    let (status, body) = call(
        &url,
        "iam",
        &aws(&k1),
        &[
            ("Action", "DeleteAccessKey"),
            ("Version", "2010-05-08"),
            ("UserName", "e2e"),
            ("AccessKeyId", &k2.0),
        ],
    )
    .await;
    assert_eq!(status, 200, "DeleteAccessKey: {body}");
    *current.lock().unwrap() = Creds::expiring_in(&k1.0, &k1.1, None, 3600);
    // The deleted key is refused now, so success below proves the driver switched keys.
    environment(
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", &k2.0),
            ("AWS_SECRET_ACCESS_KEY", &k2.1),
        ],
    );
    let e = roundtrip(&keyless(&url, &root), "deleted")
        .await
        .expect_err("deleted key accepted");
    assert_refused(&e, &["InvalidAccessKeyId", "403"], "deleted key");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    roundtrip(&d, "rotation-2")
        .await
        .expect("rotated keys picked up without a restart");
    assert_eq!(
        rot.hits().len(),
        2,
        "one fetch per key generation: {:?}",
        rot.hits()
    );

    environment(home.path(), &[]);
    println!("keyless end-to-end scenarios took {:?}", started.elapsed());
}
