//! The shared conformance suite through the middlewares over a fresh in-memory store per case:
//! every operation must reach the backend unchanged (errors still name `inmemory`), and the
//! suite's `redirect_url` case fetches the CloudFront URL it gets from a local stand-in edge
//! ([`common::FakeCloudFront`]) that verifies the signature like CloudFront and serves the
//! object, so GET returns the bytes and HEAD the length.
//!
//! The chain is `rewrite` (no options) then `cloudfront`, built with the factories a registry
//! uses.

mod common;

use std::sync::Arc;

use regstore_driver_api::{Driver, MiddlewareFactory, Parameters, StorageDriver};
use regstore_driver_conformance::{Capabilities, Fixture, Suite};
use regstore_driver_inmemory::InMemoryDriver;
use regstore_middleware_cloudfront::{CloudFrontFactory, RewriteFactory};

fn suite() -> Suite {
    Suite::new(|| async {
        let (dir, key) = common::key_file("rsa2048-pkcs1.pem");
        let backend: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
        let edge = common::FakeCloudFront::start(backend.clone(), "KCONFORMANCE", "").await;
        let rewritten = RewriteFactory.wrap(backend, &Parameters::new()).await?;
        let driver = CloudFrontFactory
            .wrap(
                rewritten,
                &Parameters::new()
                    .with("baseurl", edge.base_url.as_str())
                    .with("privatekey", key.as_str())
                    .with("keypairid", "KCONFORMANCE"),
            )
            .await?;
        assert_eq!(
            driver.name(),
            "inmemory",
            "middlewares keep the backend's name"
        );
        Ok(Fixture::new(Driver::new(driver)).keep_alive((dir, edge)))
    })
    .with_capabilities(Capabilities::default().with_redirect(true, false))
}

regstore_driver_conformance::conformance_tests!(suite);
