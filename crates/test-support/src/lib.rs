//! Helpers shared by every regstore test tree (integration tests, examples, soak runs), so that
//! the S3 test environment contract and the small generators live in one place.
//!
//! * [`S3Env`]: the `REGSTORE_S3_*` environment contract that `cargo xtask test` and
//!   `cargo xtask servers exec` set, and driver [`Parameters`](regstore_driver_api::Parameters)
//!   built from it;
//! * [`unavailable`]: a missing server is a printed skip locally and a failure when `CI` is set;
//! * [`unique`]: names no other run uses (root directories, buckets, prefixes);
//! * [`content`] and [`SplitMix64`]: reproducible pseudo-random bytes;
//! * [`loopback_upstream`]: the loopback address of a server, for the fault proxy and other
//!   stand-ins that forward to it;
//! * [`EnforcedMoto`]: a private moto that enforces keys and signatures after its set-up;
//! * [`localhost_connector`]: `*.localhost` resolved to 127.0.0.1, for virtual-hosted tests;
//! * [`ReplyServer`]: a fixed-answer HTTP stand-in that counts requests (ip-ranges lists,
//!   credential endpoints, a refusing S3).
//!
//! Dev-only (`publish = false`), and deliberately free of backend crates: a driver's tests build
//! their driver from [`S3Env::params`] themselves, so no dependency cycle can form.

mod content;
mod env;
mod moto;
mod names;
mod resolver;
mod server;

pub use content::{content, splitmix64, SplitMix64};
pub use env::{
    conformance_chunk_size, loopback_upstream, moto_env, s3_env, unavailable, S3Env, MIB,
    TEST_CHUNK_SIZE,
};
pub use moto::EnforcedMoto;
pub use names::unique;
pub use resolver::{localhost_connector, LocalhostResolver};
pub use server::ReplyServer;
