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
    ByteStream, FileInfo, FileWriter, RedirectMethod, RedirectRequest, StorageDriver, WalkControl,
    WalkFn, WalkOptions,
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
