//! The S3 storage driver of regstore, on rusoto.
//!
//! [`S3Driver`] stores a registry's objects in one bucket, with distribution's key layout
//! (`rootdirectory` + path), so a Go registry and regstore can share a bucket. Build it from a
//! registry configuration with [`S3Factory`] (register it as `s3` and `s3aws`) or from an
//! [`S3Config`] with [`S3Driver::new`].
//!
//! rusoto stays inside this crate: no public item exposes a rusoto type, so the SDK can be
//! replaced without touching the rest of the workspace.

#![warn(missing_docs)]

mod config;
mod connection;
mod credentials;
mod dispatch;
mod driver;
mod error;
mod factory;
mod keys;
mod listxml;
mod reader;
mod s3api;
mod sigv2;
mod sigv4;
mod tail;
#[doc(hidden)]
pub mod test_support;
mod transport;
mod walk;
mod writer;

pub use config::{Credentials, S3Config};
pub use dispatch::RequestStats;
pub use driver::{IncompleteUpload, S3Driver};
pub use error::ObjectChanged;
pub use factory::S3Factory;
