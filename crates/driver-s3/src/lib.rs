//! The S3 storage driver of regstore, on rusoto.
//!
//! [`S3Driver`] stores a registry's objects in one bucket, with distribution's key layout
//! (`rootdirectory` + path), so a Go registry and regstore can share a bucket. Build it from a
//! registry configuration with [`S3Factory`] (register it as `s3` and `s3aws`) or from an
//! [`S3Config`] with [`S3Driver::new`].
//!
//! rusoto stays inside this crate: no public item exposes a rusoto type, so the SDK can be
//! replaced without touching the rest of the workspace.
//!
//! ```
//! use std::sync::Arc;
//!
//! use regstore_driver_api::{Driver, Parameters, RedirectRequest};
//! use regstore_driver_s3::{S3Config, S3Driver};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> regstore_driver_api::Result<()> {
//! // The `storage: s3:` section of a registry's config.yml.
//! let params: Parameters = serde_yaml_ng::from_str(
//!     "bucket: registry\nregion: eu-west-1\nrootdirectory: /prod\n\
//!      accesskey: AKIAEXAMPLE\nsecretkey: not-a-real-secret\n",
//! )
//! .unwrap();
//! let config = S3Config::from_parameters(&params)?;
//! // No request is sent until the driver is used.
//! let driver = Driver::new(Arc::new(S3Driver::new(config)?));
//! // Presigning is local: a GET redirect for a blob, signed with SigV4.
//! let url = driver
//!     .redirect_url(&RedirectRequest::get(), "/docker/registry/v2/blobs/data")
//!     .await?
//!     .unwrap();
//! assert!(url.path().ends_with("/prod/docker/registry/v2/blobs/data"));
//! assert!(url.query().unwrap().contains("X-Amz-Signature="));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod addressing;
mod call;
mod client;
mod config;
mod connection;
mod credentials;
mod dispatch;
mod driver;
pub mod endpoint;
mod error;
mod factory;
mod get_body;
mod keys;
mod listxml;
pub mod loglevel;
mod net;
mod pagination;
mod reader;
mod retry;
mod s3api;
mod s3time;
mod shared;
mod sigv2;
mod sigv4;
mod spool;
mod stats;
mod tail;
#[doc(hidden)]
pub mod test_support;
mod transport;
mod upload_recovery;
mod walk;
mod walk_delimited;
mod writer;

pub use config::{Credentials, S3Config};
pub use driver::{IncompleteUpload, S3Driver};
pub use error::ObjectChanged;
pub use factory::S3Factory;
pub use stats::RequestStats;
