//! The S3 storage driver of regstore, on rusoto.
//!
//! rusoto stays inside this crate: no public item exposes a rusoto type, so the SDK can be
//! replaced without touching the rest of the workspace.

mod config;
mod connection;
mod credentials;
mod dispatch;
mod sigv2;
