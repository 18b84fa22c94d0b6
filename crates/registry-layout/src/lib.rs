//! distribution's storage layout over any regstore driver: where blobs, links, revisions, tags
//! and uploads live ([`Layout`]), what a manifest references ([`Manifest`], parsed with
//! `oci-spec`), garbage collection ([`gc`]) and consistency checks ([`fsck`]).
//!
//! Everything here reads and writes through [`regstore_driver_api::Driver`], so a Rust
//! registry (or the `regstore` CLI) gets identical behaviour on every backend. See
//! `docs/gc.md` for what is marked, the live-safety argument and how this differs from
//! distribution's `registry garbage-collect`.

#![warn(missing_docs)]

mod digest;
mod error;
pub mod fsck;
pub mod gc;
mod layout;
pub mod listing;
mod manifest;
pub mod scan;

pub use digest::{Digest, DigestSet, InvalidDigest};
pub use error::{LayoutError, Result};
pub use layout::{Layout, DEFAULT_ROOT};
pub use manifest::{
    Manifest, ManifestError, ManifestKind, Reference, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    OCI_INDEX, OCI_MANIFEST,
};
