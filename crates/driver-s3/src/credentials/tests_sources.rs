//! Each network source against its loopback stand-in (`tests/common/standin.rs`), the bad
//! inputs (missing token file, STS refusal, hanging endpoints), and the cache (single flight,
//! refresh before expiry, failures not cached).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

#[path = "../../tests/common/standin.rs"]
mod standin;

use standin::{reply, sts_error, Creds, CredsFn, Reply, StandIn};

const SECRET: &str = "wJalrXUtnFEMI-unit-SECRET-5d1e";
const SESSION: &str = "FwoGZXIvYXdzEXAMPLE-unit-SESSION-9c2a";

fn fixed(id: &str, secs: i64) -> CredsFn {
    let c = Creds::expiring_in(id, SECRET, Some(SESSION), secs);
    Arc::new(move || c.clone())
}

/// Short limits so the bad-input tests finish quickly.
fn quick() -> Options {
    let mut o = Options::new("us-east-1");
    o.imds_timeout = Duration::from_millis(400);
    o.container_timeout = Duration::from_millis(400);
    o.sts_timeout = Duration::from_millis(800);
    o.container_attempts = 2;
    o.retry_base = Duration::from_millis(20);
    o
}

/// Vars that switch off everything but what a test sets (no real HOME, no IMDS).
fn vars(extra: &[(&str, &str)]) -> Vars {
    let mut pairs = vec![("HOME", "/nonexistent-regstore-home")];
    if !extra.iter().any(|(k, _)| k.starts_with("AWS_EC2_METADATA")) {
        pairs.push(("AWS_EC2_METADATA_DISABLED", "true"));
    }
    pairs.extend_from_slice(extra);
    Vars::from_pairs(&pairs)
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET) && !text.contains(SESSION), "{text}");
}

// ---------------------------------------------------------------- instance metadata (IMDSv2)

#[tokio::test]
async fn imds_v2_token_then_credentials() {
    let s = standin::imds("node-role", fixed("ASIAIMDS", 3600));
    let chain = Chain::new(
        vars(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &s.url)]),
        quick(),
    );
    let (c, source) = chain.resolve().await.expect("IMDSv2 credentials");
    assert_eq!(source, "instance metadata");
    assert_eq!(c.aws_access_key_id(), "ASIAIMDS");
    assert_eq!(c.token().as_deref(), Some(SESSION));
    assert!(c.expires_at().is_some());
    let hits = s.hits();
    assert_eq!(hits[0].method, "PUT", "{hits:?}");
    assert_eq!(
        hits[0].header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert!(hits[1..].iter().all(|h| h.method == "GET"
        && h.header("x-aws-ec2-metadata-token")
            .is_some_and(|t| t.starts_with("imds-token-1"))));
    assert_eq!(hits.len(), 3, "token, role list, role: {hits:?}");
    // The token is reused by the next lookup.
    chain.resolve().await.expect("again");
    assert_eq!(s.hits().iter().filter(|h| h.method == "PUT").count(), 1);
}

#[tokio::test]
async fn imds_refetches_a_token_the_server_stopped_accepting() {
    let s = standin::imds("r", fixed("ASIAIMDS", 3600));
    let mut o = quick();
    // A 1 s token is renewed after 0.75 s; the stand-in forgets tokens when it issues one.
    o.imds_token_ttl = Duration::from_secs(1);
    let chain = Chain::new(vars(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &s.url)]), o);
    chain.resolve().await.expect("first");
    tokio::time::sleep(Duration::from_millis(900)).await;
    chain.resolve().await.expect("after the token aged");
    let puts = s.hits().iter().filter(|h| h.method == "PUT").count();
    assert_eq!(puts, 2, "a token past its renewal time is replaced");
}

#[tokio::test]
async fn imds_v1_only_where_allowed() {
    // An instance without IMDSv2 support: the token PUT is 403, GETs need no token.
    let v1 = || {
        StandIn::start(|r| match (r.method.as_str(), r.path.as_str()) {
            ("PUT", _) => reply(403, ""),
            (_, "/latest/meta-data/iam/security-credentials/") => reply(200, "r"),
            (_, "/latest/meta-data/iam/security-credentials/r") => {
                reply(200, Creds::expiring_in("ASIAV1", SECRET, None, 3600).json())
            }
            _ => reply(404, ""),
        })
    };
    let s = v1();
    let chain = Chain::new(
        vars(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &s.url)]),
        quick(),
    );
    let (c, _) = chain.resolve().await.expect("IMDSv1 fallback after 403");
    assert_eq!(c.aws_access_key_id(), "ASIAV1");

    let s = v1();
    let chain = Chain::new(
        vars(&[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &s.url),
            ("AWS_EC2_METADATA_V1_DISABLED", "true"),
        ]),
        quick(),
    );
    let e = chain.resolve().await.expect_err("v1 forbidden");
    assert!(
        e.contains("instance metadata") && e.contains("AWS_EC2_METADATA_V1_DISABLED"),
        "{e}"
    );
    assert_eq!(s.hits().len(), 1, "no tokenless GET: {:?}", s.hits());
}

#[tokio::test]
async fn imds_hanging_is_bounded_and_named() {
    let s = StandIn::start(|_| Reply::Hang);
    let chain = Chain::new(
        vars(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &s.url)]),
        quick(),
    );
    let started = Instant::now();
    let e = chain.resolve().await.expect_err("a hung IMDS is an error");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.contains("instance metadata") && e.contains("no answer within"),
        "{e}"
    );
}

#[tokio::test]
async fn imds_disabled_or_absent_passes_on() {
    let chain = Chain::new(vars(&[]), quick());
    let e = chain.resolve().await.err().unwrap();
    assert!(e.contains("AWS_EC2_METADATA_DISABLED=true"), "{e}");
    // Nothing listens: absent, not an error, and quick.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{port}");
    let chain = Chain::new(
        vars(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)]),
        quick(),
    );
    let e = chain.resolve().await.err().unwrap();
    assert!(
        e.starts_with("no credentials found") && e.contains("not reachable"),
        "{e}"
    );
}

// ---------------------------------------------------------------- container endpoint

#[tokio::test]
async fn container_full_uri_sends_the_token_file_and_rereads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&file, "pod-token-1\n").unwrap();
    let s = standin::container("/v1/credentials", file.clone(), fixed("ASIAPOD", 3600));
    let url = format!("{}/v1/credentials", s.url);
    let chain = Chain::new(
        vars(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                file.to_str().unwrap(),
            ),
            // The file wins over the variable.
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale-variable-token"),
        ]),
        quick(),
    );
    let (c, source) = chain.resolve().await.expect("container credentials");
    assert_eq!((c.aws_access_key_id(), source), ("ASIAPOD", "container"));
    // Rotated by the kubelet: the next fetch must send the new content.
    std::fs::write(&file, "pod-token-2").unwrap();
    chain.resolve().await.expect("after rotation");
    let hits = s.hits();
    assert_eq!(hits[0].header("authorization"), Some("pod-token-1"));
    assert_eq!(hits[1].header("authorization"), Some("pod-token-2"));
    assert_eq!(hits[0].header("accept"), Some("application/json"));
}

#[tokio::test]
async fn container_relative_uri_and_token_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "ecs-token").unwrap();
    let s = standin::container("/v2/credentials/abc", file, fixed("ASIAECS", 3600));
    let mut o = quick();
    o.container_relative_base = s.url.clone();
    let chain = Chain::new(
        vars(&[
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/abc",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token"),
            // The relative URI wins.
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://192.0.2.1/never",
            ),
        ]),
        o,
    );
    let (c, _) = chain.resolve().await.expect("relative URI");
    assert_eq!(c.aws_access_key_id(), "ASIAECS");
}

#[tokio::test]
async fn container_refusals_missing_files_and_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "right-token").unwrap();
    let s = standin::container("/c", file, fixed("ASIA", 3600));
    let url = format!("{}/c", s.url);
    let wrong = Chain::new(
        vars(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-4711"),
        ]),
        quick(),
    );
    let e = wrong.resolve().await.expect_err("wrong token refused");
    assert!(
        e.contains("container") && e.contains("401") && e.contains("AccessDenied"),
        "{e}"
    );
    assert!(!e.contains("wrong-token-4711"), "{e}");

    let missing = Chain::new(
        vars(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/nonexistent/pod-token",
            ),
        ]),
        quick(),
    );
    let e = missing.resolve().await.expect_err("missing token file");
    assert!(
        e.contains("container") && e.contains("/nonexistent/pod-token"),
        "{e}"
    );

    let far = Chain::new(
        vars(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://192.0.2.7/creds",
        )]),
        quick(),
    );
    let e = far
        .resolve()
        .await
        .expect_err("plain http off-host refused");
    assert!(e.contains("only allowed"), "{e}");

    let hang = StandIn::start(|_| Reply::Hang);
    let url = format!("{}/c", hang.url);
    let chain = Chain::new(
        vars(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url)]),
        quick(),
    );
    let started = Instant::now();
    let e = chain.resolve().await.expect_err("hung endpoint");
    // 2 attempts × 0.4 s + back-off.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.contains("container") && e.contains("no answer within"),
        "{e}"
    );
}

// ---------------------------------------------------------------- web identity (STS)

fn web_identity_chain(sts: &StandIn, file: &std::path::Path, role: &str) -> Chain {
    Chain::new(
        vars(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", file.to_str().unwrap()),
            ("AWS_ROLE_ARN", role),
            ("AWS_ROLE_SESSION_NAME", "registry-pod"),
            ("AWS_ENDPOINT_URL_STS", &sts.url),
        ]),
        quick(),
    )
}

const ROLE: &str = "arn:aws:iam::123456789012:role/registry";

#[tokio::test]
async fn web_identity_form_fields_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "eyJhbGciOiJSUzI1NiJ9.jwt-1\n").unwrap();
    let s = standin::sts_web_identity(ROLE, file.clone(), fixed("ASIAWEB", 3600));
    let chain = web_identity_chain(&s, &file, ROLE);
    let (c, source) = chain.resolve().await.expect("web identity");
    assert_eq!((c.aws_access_key_id(), source), ("ASIAWEB", "web identity"));
    assert_eq!(c.aws_secret_access_key(), SECRET);
    let f = standin::form(&s.hits()[0].body);
    assert_eq!(f["RoleSessionName"], "registry-pod");
    assert_eq!(f["WebIdentityToken"], "eyJhbGciOiJSUzI1NiJ9.jwt-1");
    // Re-read on every refresh.
    std::fs::write(&file, "eyJhbGciOiJSUzI1NiJ9.jwt-2").unwrap();
    chain.resolve().await.expect("after rotation");
    assert_eq!(
        standin::form(&s.hits()[1].body)["WebIdentityToken"],
        "eyJhbGciOiJSUzI1NiJ9.jwt-2"
    );
}

#[tokio::test]
async fn web_identity_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "jwt-secret-value").unwrap();
    let s = standin::sts_web_identity(ROLE, file.clone(), fixed("ASIAWEB", 3600));

    // Missing token file: named, immediate, no STS call.
    let missing = dir.path().join("gone");
    let e = web_identity_chain(&s, &missing, ROLE)
        .resolve()
        .await
        .expect_err("missing file");
    assert!(e.contains("web identity") && e.contains("gone"), "{e}");
    assert!(s.hits().is_empty());

    // Wrong role: STS says AccessDenied; not retried; token not echoed.
    let e = web_identity_chain(&s, &file, "arn:aws:iam::123456789012:role/other")
        .resolve()
        .await
        .expect_err("wrong role");
    assert!(
        e.contains("web identity") && e.contains("AccessDenied"),
        "{e}"
    );
    assert!(!e.contains("jwt-secret-value"), "{e}");
    assert_eq!(s.hits().len(), 1, "AccessDenied is not retried");

    // A role without a token file variable is a configuration error.
    let chain = Chain::new(
        vars(&[("AWS_WEB_IDENTITY_TOKEN_FILE", file.to_str().unwrap())]),
        quick(),
    );
    let e = chain.resolve().await.err().unwrap();
    assert!(e.contains("AWS_ROLE_ARN is not set"), "{e}");

    // A hanging STS: bounded by the STS time-out (0.8 s here) on each of the attempts, plus
    // back-off; the wide margin is for a loaded machine: the stand-in itself never answers.
    let hang = StandIn::start(|_| Reply::Hang);
    let started = Instant::now();
    let e = web_identity_chain(&hang, &file, ROLE)
        .resolve()
        .await
        .err()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(e.contains("web identity") && e.contains("no answer"), "{e}");
}

#[tokio::test]
async fn web_identity_retries_idp_communication_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "jwt").unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = Arc::clone(&calls);
    let s = StandIn::start(move |_| {
        if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            reply(400, sts_error("IDPCommunicationError", "IdP unreachable"))
        } else {
            reply(
                200,
                Creds::expiring_in("ASIARETRY", SECRET, Some(SESSION), 3600)
                    .web_identity_xml("registry", "s"),
            )
        }
    });
    let (c, _) = web_identity_chain(&s, &file, ROLE)
        .resolve()
        .await
        .expect("second attempt");
    assert_eq!(c.aws_access_key_id(), "ASIARETRY");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------- cache

fn container_cache(s: &StandIn, file: &std::path::Path) -> ChainCache {
    let url = format!("{}/c", s.url);
    let mut o = quick();
    o.container_attempts = 1;
    ChainCache::new(Chain::new(
        vars(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                file.to_str().unwrap(),
            ),
        ]),
        o,
    ))
}

#[tokio::test]
async fn cache_single_flight_refresh_and_no_sticky_failure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "t").unwrap();
    // Generation n hands out key ASIAGEN<n> valid for 4 s; `fail` makes the endpoint 500.
    let generation = Arc::new(AtomicU32::new(0));
    let fail = Arc::new(Mutex::new(false));
    let (g, f) = (Arc::clone(&generation), Arc::clone(&fail));
    let s = StandIn::start(move |r| {
        if *f.lock().unwrap() {
            return reply(500, r#"{"code":"InternalError","message":"down"}"#);
        }
        assert_eq!(r.header("authorization"), Some("t"));
        let n = g.fetch_add(1, Ordering::SeqCst) + 1;
        reply(
            200,
            Creds::expiring_in(&format!("ASIAGEN{n}"), SECRET, None, 4).json(),
        )
    });
    let cache = Arc::new(container_cache(&s, &file));

    // 16 concurrent first requests: one fetch.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                cache
                    .credentials()
                    .await
                    .map(|c| c.aws_access_key_id().to_owned())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "ASIAGEN1");
    }
    assert_eq!(s.hits().len(), 1, "single flight");

    // Refreshed before expiry (4 s lifetime → refresh after 2 s).
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        cache.credentials().await.unwrap().aws_access_key_id(),
        "ASIAGEN2"
    );

    // A failed refresh while the old keys are still valid: served, not cached as failure.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    *fail.lock().unwrap() = true;
    let old = cache.credentials().await.expect("still-valid keys served");
    assert_eq!(old.aws_access_key_id(), "ASIAGEN2");
    // Once they expired, the failure is reported, naming the source, without secrets.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let e = cache
        .credentials()
        .await
        .expect_err("expired and source down")
        .to_string();
    assert!(e.contains("container") && e.contains("500"), "{e}");
    assert_no_secret(&e);
    // And the next request asks again: the failure was not cached.
    *fail.lock().unwrap() = false;
    assert_eq!(
        cache.credentials().await.unwrap().aws_access_key_id(),
        "ASIAGEN3"
    );
}

#[test]
fn provider_debug_shows_no_chain_contents() {
    let p = CredentialsProvider::new(&Credentials::Chain);
    assert_eq!(format!("{p:?}"), "Chain");
}
