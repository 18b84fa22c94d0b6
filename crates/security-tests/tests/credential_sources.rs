//! Keyless credential sources leak nothing: with credentials from the container endpoint and
//! from web identity, neither the errors nor the `Debug` output nor the TRACE log carry the
//! secret key, the session token, the container authorization token or the web-identity
//! token — not even when the remote side echoes them back in its error message.
//!
//! Its own test binary: it sets `AWS_*` variables and installs the global subscriber.

use std::io::Write;
use std::sync::{Mutex, Once};

use bytes::Bytes;
use regstore_driver_api::{Parameters, StorageDriver, StoragePath};
use regstore_driver_s3::{S3Config, S3Driver};
use regstore_test_support::ReplyServer;

const SECRET: &str = "wJalrXUtnFEMI-keyless-SECRET-0b7d44";
const SESSION: &str = "FwoGZXIvYXdzEXAMPLE-keyless-SESSION-e19f";
const POD_TOKEN: &str = "pod-identity-token-keyless-6a2c";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.keyless-jwt-93d1";

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut l) = LOG.lock() {
            l.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Capture)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    });
}

fn clear_aws_env(home: &std::path::Path) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            std::env::remove_var(k);
        }
    }
    std::env::set_var("HOME", home);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

fn keyless(endpoint: &str) -> S3Driver {
    let p = Parameters::new()
        .with("regionendpoint", endpoint)
        .with("region", "us-east-1")
        .with("bucket", "keyless-security")
        .with("forcepathstyle", "true")
        .with("maxretries", "0");
    S3Driver::new(S3Config::from_parameters(&p).unwrap()).unwrap()
}

fn assert_clean(what: &str, text: &str) {
    for s in [SECRET, SESSION, POD_TOKEN, JWT] {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
    let lower = text.to_ascii_lowercase();
    for needle in [
        "aws4-hmac-sha256 credential=",
        "signature=",
        "authorization:",
    ] {
        assert!(!lower.contains(needle), "{what} contains {needle}: {text}");
    }
}

async fn put_error(driver: &S3Driver) -> String {
    let path = StoragePath::parse("/keyless/probe").unwrap();
    let e = driver
        .put_content(&path, Bytes::from_static(b"x"))
        .await
        .expect_err("must fail");
    format!("{e} | {e:?} | {driver:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_sources_leak_no_secret() {
    install();
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("pod-token");
    std::fs::write(&token_file, format!("{POD_TOKEN}\n")).unwrap();
    let s3 = ReplyServer::start(
        403,
        "application/xml",
        "<Error><Code>InvalidAccessKeyId</Code><Message>unknown key</Message></Error>",
    )
    .await;

    // 1. The container endpoint refuses and echoes the token in its message.
    let refusing = ReplyServer::start(
        401,
        "application/json",
        format!(r#"{{"code":"AccessDenied","message":"token {POD_TOKEN} rejected"}}"#),
    )
    .await;
    clear_aws_env(home.path());
    std::env::set_var(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/v1/credentials", refusing.url),
    );
    std::env::set_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file);
    let e = put_error(&keyless(&s3.url)).await;
    assert!(
        e.contains("container") && e.contains("401"),
        "names source and reason: {e}"
    );
    assert_clean("container refusal", &e);

    // 2. The container endpoint hands out credentials; S3 refuses them.
    let granting = ReplyServer::start(
        200,
        "application/json",
        format!(
            r#"{{"AccessKeyId":"ASIAKEYLESSSECURITY1","SecretAccessKey":"{SECRET}","Token":"{SESSION}","Expiration":"2099-01-01T00:00:00Z"}}"#
        ),
    )
    .await;
    std::env::set_var(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/v1/credentials", granting.url),
    );
    let e = put_error(&keyless(&s3.url)).await;
    assert!(e.contains("403") || e.contains("InvalidAccessKeyId"), "{e}");
    assert_clean("S3 refusal of container credentials", &e);

    // 3. STS refuses the web identity and echoes the token.
    let jwt_file = home.path().join("jwt");
    std::fs::write(&jwt_file, JWT).unwrap();
    let sts = ReplyServer::start(
        403,
        "text/xml",
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>token {JWT} not trusted</Message></Error></ErrorResponse>"
        ),
    )
    .await;
    clear_aws_env(home.path());
    std::env::set_var("AWS_WEB_IDENTITY_TOKEN_FILE", &jwt_file);
    std::env::set_var("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/registry");
    std::env::set_var("AWS_ENDPOINT_URL_STS", &sts.url);
    let e = put_error(&keyless(&s3.url)).await;
    assert!(
        e.contains("web identity") && e.contains("AccessDenied"),
        "{e}"
    );
    assert_clean("STS refusal", &e);

    clear_aws_env(home.path());
    let log = String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned();
    assert!(!log.is_empty(), "the TRACE log captured something");
    assert_clean("TRACE log", &log);
}
