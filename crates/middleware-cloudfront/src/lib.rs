//! Storage middlewares for regstore: CloudFront signed URLs, redirect and rewrite.
//!
//! A middleware wraps any `Arc<dyn StorageDriver>`, forwards every operation to it unchanged
//! (errors keep naming the wrapped driver; [`regstore_driver_api::forward_storage_driver!`] writes
//! that part) and answers only
//! [`StorageDriver::redirect_url`](regstore_driver_api::StorageDriver::redirect_url) differently:
//!
//! * [`CloudFrontMiddleware`] (`cloudfront`) — a CloudFront signed URL for the object's key
//!   (`baseurl` + [`StorageDriver::url_key`](regstore_driver_api::StorageDriver::url_key), so S3's root directory is part of it and the
//!   distribution's origin path must be empty). Clients inside AWS can be sent to the wrapped
//!   driver's own URL instead ([`ipfilter`]). Signing lives in [`sign`] and is usable on its own,
//!   including custom policies.
//! * [`RedirectMiddleware`] (`redirect`) — `baseurl` + the storage path, unsigned.
//! * [`RewriteMiddleware`] (`rewrite`) — the wrapped driver's URL with scheme, host or a path
//!   prefix replaced.
//!
//! [`register`] adds the three factories to a [`Registry`], which builds chains from the
//! `middleware: storage:` configuration in order (the first entry wraps the backend).
//!
//! Options are parsed like distribution parses them (reference §3); differences are documented
//! on each options type.
//!
//! ```
//! use std::sync::Arc;
//!
//! use regstore_driver_api::{Driver, Parameters, RedirectRequest, StorageDriver};
//! use regstore_driver_inmemory::InMemoryDriver;
//! use regstore_middleware_cloudfront::RedirectMiddleware;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> regstore_driver_api::Result<()> {
//! let backend: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
//! let options = Parameters::new().with("baseurl", "https://cdn.example/registry");
//! let driver = Driver::new(Arc::new(RedirectMiddleware::from_parameters(backend, &options)?));
//! driver.put_content("/blobs/data", "layer").await?; // forwarded to the backend
//! let url = driver.redirect_url(&RedirectRequest::get(), "/blobs/data").await?;
//! assert_eq!(url.unwrap().as_str(), "https://cdn.example/registry/blobs/data");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

use std::sync::Arc;

use regstore_driver_api::{Parameters, Registry, Value};

mod cidr;
mod cloudfront;
pub mod ipfilter;
mod redirect;
mod rewrite;
pub mod sign;

pub use cidr::{Cidr, CidrError};
pub use cloudfront::{
    CloudFrontFactory, CloudFrontMiddleware, CloudFrontOptions, IpFilterMode, DEFAULT_DURATION,
    DEFAULT_IP_RANGES_URL, DEFAULT_UPDATE_FREQUENCY,
};
pub use redirect::{RedirectFactory, RedirectMiddleware};
pub use rewrite::{RewriteFactory, RewriteMiddleware};
pub use sign::{HashAlgorithm, Policy, SignError, UrlSigner};

/// Name under which the CloudFront middleware registers, and the driver name in its errors.
pub const CLOUDFRONT: &str = "cloudfront";
/// Name under which the redirect middleware registers.
pub const REDIRECT: &str = "redirect";
/// Name under which the rewrite middleware registers.
pub const REWRITE: &str = "rewrite";

/// Registers the `cloudfront`, `redirect` and `rewrite` middleware factories.
pub fn register(registry: &mut Registry) {
    registry.register_middleware(CLOUDFRONT, Arc::new(CloudFrontFactory));
    registry.register_middleware(REDIRECT, Arc::new(RedirectFactory));
    registry.register_middleware(REWRITE, Arc::new(RewriteFactory));
}

/// A string option that must really be a string (not a number or boolean, which
/// [`Parameters::string`] would accept): distribution type-asserts these options. `None` when
/// absent; `Err(())` when present with another type.
fn strict_string(params: &Parameters, key: &str) -> Result<Option<String>, ()> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}
