//! The storage-driver contract of regstore.
//!
//! A registry stores blobs, manifests and upload state through a [`StorageDriver`]. Backends
//! (in-memory, filesystem, S3, …) implement that trait; middlewares wrap any `Arc<dyn
//! StorageDriver>` and implement it again. Callers use the [`Driver`] handle, which validates
//! paths and offsets before a backend sees them, so every backend receives only well-formed
//! input and reports errors of one shape ([`Error`]).
//!
//! The semantics follow CNCF distribution's Go drivers (see `docs/architecture.md`), with two
//! deliberate differences: `.` and `..` path components are rejected, and redirect URLs answer
//! `Ok(None)` for "serve the bytes yourself".
//!
//! ```
//! use regstore_driver_api::duration::parse_duration;
//! use regstore_driver_api::{Parameters, StoragePath};
//!
//! // Paths are validated once, here, for every backend.
//! let path = StoragePath::parse("/docker/registry/v2/repositories/app").unwrap();
//! assert_eq!(path.parent().as_str(), "/docker/registry/v2/repositories");
//! assert!(StoragePath::parse("/a/../b").is_none());
//!
//! // A `storage:` section of a config.yml, read the way distribution reads it.
//! let params: Parameters = serde_yaml_ng::from_str("chunksize: \"10485760\"\nencrypt: true").unwrap();
//! assert_eq!(params.int_in_range("s3", "chunksize", 0, 1, u64::MAX).unwrap(), 10_485_760);
//! assert!(params.bool("s3", "encrypt", false).unwrap());
//! assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
//! ```
//!
//! A backend implements [`StorageDriver`]; a middleware wraps one and usually lets
//! [`forward_storage_driver!`] forward what it does not change (see there for a complete
//! third-party middleware).

#![warn(missing_docs)]

mod driver;
pub mod duration;
mod error;
mod factory;
mod forward;
mod handle;
mod lifecycle;
pub mod params;
mod path;
pub mod walk;

pub use driver::{
    delete_each, ByteStream, FileInfo, FileWriter, RedirectMethod, RedirectRequest, StorageDriver,
    WalkControl, WalkFn, WalkOptions,
};
pub use error::{BoxError, Error, Result, WriterState};
pub use factory::{DriverFactory, MiddlewareConfig, MiddlewareFactory, Registry};
pub use handle::{Driver, Writer};
pub use lifecycle::WriterLifecycle;
pub use params::{Parameters, Value};
pub use path::StoragePath;

/// Re-exported so backends and callers agree on the byte and trait-object types.
pub use async_trait::async_trait;
pub use bytes::Bytes;
/// Re-exported so backends, middlewares and callers name one URL type (redirects).
pub use url::Url;
