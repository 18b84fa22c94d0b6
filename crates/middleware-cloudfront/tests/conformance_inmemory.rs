//! The shared conformance suite through the middlewares over a fresh in-memory store per case:
//! every operation must reach the backend unchanged (errors still name `inmemory`).
//!
//! The chain is built the way a registry builds it from configuration — `Registry` with the
//! in-memory factory and this crate's `register`, entries `rewrite` (no options) then
//! `cloudfront` — so the factories and the chain order are exercised too. The suite's
//! `redirect_url` case reports "skipped" here: the CloudFront URL it gets cannot be fetched
//! without CloudFront (the signing itself is checked in `signing.rs` and `ipfilter.rs`).

mod common;

use regstore_driver_api::{MiddlewareConfig, Parameters, Registry};
use regstore_driver_conformance::{Fixture, Suite};
use regstore_driver_inmemory::InMemoryFactory;
use std::sync::Arc;

fn suite() -> Suite {
    Suite::new(|| async {
        let (dir, key) = common::key_file("rsa2048-pkcs1.pem");
        let mut registry = Registry::new().with("inmemory", Arc::new(InMemoryFactory));
        regstore_middleware_cloudfront::register(&mut registry);
        let chain = [
            MiddlewareConfig {
                name: "rewrite".into(),
                options: Parameters::new(),
                disabled: false,
            },
            MiddlewareConfig {
                name: "cloudfront".into(),
                options: Parameters::new()
                    .with("baseurl", "https://d111111abcdef8.cloudfront.net/")
                    .with("privatekey", key.as_str())
                    .with("keypairid", "KCONFORMANCE"),
                disabled: false,
            },
            MiddlewareConfig {
                name: "no-such-middleware".into(),
                options: Parameters::new(),
                disabled: true,
            },
        ];
        let driver = registry
            .create_with_middlewares("inmemory", &Parameters::new(), &chain)
            .await?;
        assert_eq!(
            driver.name(),
            "inmemory",
            "middlewares keep the backend's name"
        );
        Ok(Fixture::new(driver).keep_alive(dir))
    })
}

regstore_driver_conformance::conformance_tests!(suite);
