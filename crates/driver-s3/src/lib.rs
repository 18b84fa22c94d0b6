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
// Until the transport (connection.rs, dispatch.rs) lands, only the modules that do not
// depend on it are compiled; driver.rs, s3api.rs, walk.rs, writer.rs and factory.rs follow.
#[allow(dead_code)]
mod error;
#[allow(dead_code)]
mod keys;
mod sigv2;

pub use config::S3Config;
