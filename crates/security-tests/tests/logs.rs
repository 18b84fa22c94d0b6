//! Everything logged at TRACE while the S3 driver works (put, get, list, stat, a multipart
//! upload, move, delete, presigning, a refused request) holds no key material: no secret key,
//! no session token, no `Authorization` value, no signature.
//!
//! Two capture paths, one process-wide buffer (this file is its own test binary, so the
//! global subscriber and logger see only these tests):
//! * a `tracing` subscriber at TRACE — what regstore's binaries install;
//! * a `log` logger at TRACE — what an embedding program using the `log` ecosystem would see
//!   from rusoto, which logs through `log`, not `tracing`.

mod common;

use std::io::Write;
use std::sync::{Mutex, Once};

use bytes::Bytes;
use regstore_driver_api::{RedirectMethod, RedirectRequest, StorageDriver, StoragePath};
use regstore_driver_s3::{S3Config, S3Driver};

/// The captured text of both paths, by origin.
struct Capture {
    tracing: Vec<u8>,
    log: Vec<u8>,
}

static CAPTURE: Mutex<Capture> = Mutex::new(Capture {
    tracing: Vec::new(),
    log: Vec::new(),
});

/// Installs the subscriber and the logger once for this test binary.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| TracingWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        static LOGGER: LogCapture = LogCapture;
        log::set_logger(&LOGGER).expect("first logger");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

struct TracingWriter;

impl Write for TracingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut c) = CAPTURE.lock() {
            c.tracing.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct LogCapture;

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}\n", record.level(), record.target(), record.args());
        if let Ok(mut c) = CAPTURE.lock() {
            c.log.extend_from_slice(line.as_bytes());
        }
    }
    fn flush(&self) {}
}

/// Runs a representative workload against the server; `None` when it is not configured.
async fn workload() -> Option<common::Env> {
    let env = common::s3_env()?;
    let root = common::unique("security-logs-");
    let driver = common::driver(&env, &root).await;
    let small = StoragePath::parse("/logs/small").unwrap();
    let big = StoragePath::parse("/logs/big").unwrap();
    let moved = StoragePath::parse("/logs/moved").unwrap();
    driver
        .put_content(&small, Bytes::from_static(b"hello"))
        .await
        .expect("put");
    assert_eq!(
        &driver.get_content(&small).await.expect("get")[..],
        b"hello"
    );
    driver.stat(&small).await.expect("stat");
    driver
        .list(&StoragePath::parse("/logs").unwrap())
        .await
        .expect("list");
    // A multipart upload (two 5 MiB parts plus a tail).
    let mut w = driver.writer(&big, false).await.expect("writer");
    let chunk = Bytes::from(vec![7u8; 5 * 1024 * 1024]);
    for _ in 0..2 {
        w.write(chunk.clone()).await.expect("write");
    }
    w.write(Bytes::from_static(b"tail")).await.expect("write");
    w.commit().await.expect("commit");
    driver.move_object(&big, &moved).await.expect("move");
    let url = driver
        .redirect_url(&RedirectRequest::new(RedirectMethod::Get), &small)
        .await
        .expect("presign");
    assert!(url.is_some());
    driver
        .delete(&StoragePath::parse("/logs").unwrap())
        .await
        .expect("delete");
    // A refused request: wrong secret.
    let wrong = format!("{}-wrong", env.secret_key);
    let bad =
        S3Driver::new(S3Config::from_parameters(&env.params_with_secret(&wrong, &root)).unwrap())
            .unwrap();
    assert!(bad.get_content(&small).await.is_err());
    Some(env)
}

fn captured() -> (String, String) {
    let c = CAPTURE.lock().expect("capture lock");
    (
        String::from_utf8_lossy(&c.tracing).into_owned(),
        String::from_utf8_lossy(&c.log).into_owned(),
    )
}

#[tokio::test]
async fn tracing_output_at_trace_holds_no_key_material() {
    install();
    let Some(env) = workload().await else {
        return;
    };
    let (tracing_text, _) = captured();
    assert!(
        tracing_text.len() > 1000,
        "TRACE capture is suspiciously small ({} bytes): is the subscriber installed?",
        tracing_text.len()
    );
    common::assert_clean(
        "tracing output at TRACE",
        &tracing_text,
        &env.access_key,
        &[&env.secret_key],
    );
}

/// rusoto logs through the `log` crate. Its HTTP client (`rusoto_core::request`) logged every
/// header at DEBUG, `Authorization` included, and its signer (`rusoto_signature`) the canonical
/// headers with `x-amz-security-token`; the driver now signs (`sigv4`) and sends (`transport`)
/// itself, so neither runs. What rusoto still logs through `log` (the names of XML elements it
/// ignores in error answers, such as `RequestId`) holds no key material, which this test checks
/// with a `log` logger at TRACE.
#[tokio::test]
async fn log_crate_records_at_trace_hold_no_key_material() {
    install();
    // Proves the `log` path is captured, so an empty capture cannot pass by accident.
    log::debug!(target: "regstore_security_tests", "log capture canary");
    let Some(env) = workload().await else {
        return;
    };
    let (_, log_text) = captured();
    assert!(
        log_text.contains("log capture canary"),
        "the log-crate logger captured nothing: is it installed?"
    );
    common::assert_clean(
        "log-crate output at TRACE",
        &log_text,
        &env.access_key,
        &[&env.secret_key],
    );
}
