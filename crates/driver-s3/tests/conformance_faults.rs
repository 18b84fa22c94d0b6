//! The whole conformance suite against the S3 server of `REGSTORE_S3_*` (see `common`) **through
//! the fault-injection proxy** (`regstore-fault-proxy`): one test per case, each with its own
//! proxy and a fresh random `rootdirectory`, and the driver's `regionendpoint` pointed at the
//! proxy.
//!
//! The proxy injects every fault kind — connection resets after the server acted, short stalls
//! (200 ms), responses truncated mid-body, `503 SlowDown` and `500 InternalError` — into
//! [`FAULT_RATE`] of the requests, decided by a fixed seed ([`SEED`], or
//! `REGSTORE_FAULTS_SEED`), so a failing run can be repeated. The dispatcher's retries
//! (`maxretries`, resumed GetObject bodies; `docs/s3.md`) must make every case pass unchanged.
//!
//! Reads are verified by content: every read the suite makes of stored data goes through its
//! helpers `expect_content` / `expect_stream` (byte-for-byte comparison of `get_content` and of
//! `reader(path, offset)` read to the end, reporting the first differing offset), the 5 GiB
//! case compares SHA-256 of the read-back stream, and `redirect_url` compares the body fetched
//! from the presigned URL byte for byte. A short or wrong body therefore fails the case. The
//! presigned URLs point at the proxy as well; that fetch is retried after a transient failure
//! ([`REDIRECT_RETRIES`]), never after a `4xx` such as a bad signature's `403`.
//!
//! Each proxy is bounded: it stops when its fixture's teardown drops it, when the test's
//! runtime ends, and in any case after [`PROXY_RUN_FOR`] (longer than the harness's 600 s case
//! timeout) or [`PROXY_MAX_CONNECTIONS`] connections.
//!
//! Without a configured server every test prints `skipped: …` and returns; under `CI` it fails.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use regstore_driver_conformance::{Capabilities, Fixture, Suite, WalkOrder};
use regstore_fault_proxy::{FaultKind, FaultProxy, ProxyConfig};

/// Fraction of proxied requests that get a fault.
const FAULT_RATE: f64 = 0.1;
/// Seed of the proxy's fault decisions unless `REGSTORE_FAULTS_SEED` gives another.
const SEED: u64 = 20_261_123;
/// Retries of the suite's fetch of a presigned URL after a transient failure (the proxy's
/// faults hit it like any other request). Six attempts at a 10 % fault rate fail one time in
/// a million.
const REDIRECT_RETRIES: u32 = 5;
/// Delay of an injected stall: short, so it is a slow answer and not a time-out.
const STALL: Duration = Duration::from_millis(200);
/// Hard stop of a proxy that outlives its case (the harness times a case out after 600 s).
const PROXY_RUN_FOR: Duration = Duration::from_secs(660);
/// Connection budget of one proxy (the largest case makes a few thousand requests).
const PROXY_MAX_CONNECTIONS: u64 = 200_000;

fn seed() -> u64 {
    match std::env::var("REGSTORE_FAULTS_SEED") {
        Ok(s) => match s.trim().parse() {
            Ok(v) => v,
            Err(e) => panic!("REGSTORE_FAULTS_SEED={s:?} is not a u64: {e}"),
        },
        Err(_) => SEED,
    }
}

fn suite(env: common::Env, upstream: SocketAddr) -> Suite {
    let seed = seed();
    Suite::new(move || {
        let env = env.clone();
        async move {
            // Started on the case's own runtime: the proxy dies with it at the latest.
            let proxy = FaultProxy::start(
                ProxyConfig::new(upstream)
                    .with_faults(FAULT_RATE, seed)
                    .with_kinds(&FaultKind::ALL)
                    .with_stall(STALL)
                    .with_run_for(PROXY_RUN_FOR)
                    .with_max_connections(PROXY_MAX_CONNECTIONS),
            )
            .await
            .map_err(|e| {
                regstore_driver_api::Error::backend("s3aws", None, format!("fault proxy: {e}"))
            })?;
            let root = format!("/{}/", common::unique("regstore-conf-faults-"));
            let params = env
                .params(&root)
                .with("regionendpoint", proxy.endpoint())
                .with("maxretries", "8")
                .with("requesttimeout", "10s");
            // `driver_with` also creates the bucket if needed, through the proxy (retried).
            let driver = env.driver_with(params).await;
            let uploads_driver = driver.clone();
            let report_driver = driver.clone();
            Ok(Fixture::new(common::dyn_driver(&driver))
                .with_teardown(move || async move {
                    // Uploads a case left open (closed writers) are aborted so the bucket does
                    // not accumulate them; through the proxy, so this is retried too.
                    uploads_driver.abort_uploads_under_root().await.map(|_| ())
                })
                .with_teardown(move || async move {
                    let counts = proxy.counts();
                    let stats = report_driver.request_stats();
                    println!(
                        "fault proxy (seed {seed}, rate {FAULT_RATE}): {} requests, {} faults \
                         (reset {}, stall {}, truncate {}, slowdown {}, internal-error {}), \
                         {} proxy errors; driver: {} requests, {} retries {:?}",
                        counts.requests,
                        counts.faults(),
                        counts.reset,
                        counts.stalled,
                        counts.truncated,
                        counts.slow_down,
                        counts.internal_error,
                        counts.proxy_errors,
                        stats.total(),
                        stats.retries(),
                        stats.retries_snapshot()
                    );
                    // Every request of the driver must have gone through the proxy; a fixture
                    // that bypassed it would make this suite prove nothing.
                    if stats.total() > 0 && counts.requests == 0 {
                        return Err(regstore_driver_api::Error::backend(
                            "s3aws",
                            None,
                            "the driver made requests but none reached the fault proxy",
                        ));
                    }
                    drop(proxy);
                    Ok(())
                }))
        }
    })
    .with_capabilities(
        Capabilities::default()
            .with_walk_order(WalkOrder::KeyOrder)
            .with_walk_missing_is_not_found(false)
            .with_part_size(5 * common::MIB)
            .with_redirect(true, false)
            // The presigned URLs are fetched through the proxy too, and a real client (docker)
            // retries such a fetch; the plain suite (`conformance.rs`) stays one-shot.
            .with_redirect_retries(REDIRECT_RETRIES),
    )
}

/// The suite on the configured (local) server through a fault proxy, or `None` (after printing
/// why) without one.
fn s3_faults_suite() -> Option<Suite> {
    let env = common::s3_env()?;
    let upstream = env.upstream()?;
    Some(suite(env, upstream))
}

regstore_driver_conformance::conformance_tests!(optional s3_faults_suite);
