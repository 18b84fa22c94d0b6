//! The regstore storage-driver conformance suite, as a library.
//!
//! Any backend — one of regstore's or a user's — proves it behaves like distribution's drivers
//! by building a [`Suite`] from its own constructor and running the cases:
//!
//! ```no_run
//! // tests/conformance.rs of a backend crate
//! use std::sync::Arc;
//!
//! use regstore_driver_api::{Driver, StorageDriver};
//! use regstore_driver_conformance::{Capabilities, Fixture, Suite};
//!
//! fn suite() -> Suite {
//!     Suite::new(|| async {
//!         // A fresh, EMPTY store on every call (a new temp dir, a new bucket prefix, …).
//!         let backend: Arc<dyn StorageDriver> =
//!             Arc::new(regstore_driver_inmemory::InMemoryDriver::new());
//!         Ok(Fixture::new(Driver::new(backend)))
//!     })
//!     .with_capabilities(Capabilities::default())
//! }
//!
//! regstore_driver_conformance::conformance_tests!(suite);
//! # fn main() {}
//! ```
//!
//! The macro emits one `#[test]` per case (named exactly as the case, see [`CASES`]), so
//! `cargo test` and nextest report each case on its own. Programs (the CLI's `check`, the
//! xtask) call [`run_all`] and print the serialisable [`Report`].
//!
//! ```
//! use std::sync::Arc;
//!
//! use regstore_driver_api::Driver;
//! use regstore_driver_conformance::{run_all, Fixture, Suite};
//! use regstore_driver_inmemory::InMemoryDriver;
//!
//! # #[tokio::main]
//! # async fn main() {
//! let suite = Suite::new(|| async {
//!     Ok(Fixture::new(Driver::new(Arc::new(InMemoryDriver::new()))))
//! });
//! // The cases whose names contain "write_read" (`None` runs them all).
//! let report = run_all(&suite, Some("write_read")).await;
//! assert!(report.passed() >= 4);
//! assert_eq!(report.failed(), 0);
//! # }
//! ```
//!
//! Each case gets its own fixture from the constructor, so cases run in parallel without
//! seeing each other's objects. After a case the harness requires `list("/")` to be empty (or
//! `PathNotFound`) — a driver whose `delete` leaves entries behind fails there — and then runs
//! the fixture's teardown.
//!
//! What differs legitimately between backends (walk order, walking a missing directory, part
//! size, whether redirect URLs are fetchable) is described by [`Capabilities`].

#![warn(missing_docs)]

pub mod bench;
mod capabilities;
mod cases;
mod data;
mod harness;
mod redirect;
pub mod writer_model;

pub use capabilities::{Capabilities, WalkOrder, DEFAULT_PART_SIZE, MAX_REDIRECT_RETRIES};
pub use harness::{
    run_all, run_case, CaseReport, Constructor, Fixture, Outcome, Report, Suite, Teardown,
};

/// The suite's deterministic generator, public so that tests, fault plans and benchmarks built
/// on this crate draw the same reproducible bytes and choices.
pub use data::{splitmix64, Stream64};

/// Names of every case, in the order [`run_all`] runs and reports them.
pub const CASES: &[&str] = cases::NAMES;

/// Emits one test function per conformance case, named exactly as the case.
///
/// The argument is the path of a function `fn() -> Suite`. Each test builds its own Tokio
/// multi-threaded runtime (two workers), runs [`run_case`], panics with the case's message when
/// it failed and prints `skipped: <reason>` when it was skipped. The 5 GiB stream case is
/// emitted with `#[ignore]`: run it with `REGSTORE_CONFORMANCE_LARGE=1 cargo test -- --ignored`.
///
/// The case `move` is a Rust keyword, so its test function is `r#move` (libtest prints it so;
/// `cargo test move` selects it). The tests do not use `#[tokio::test]`, so the calling crate
/// needs no `tokio` dependency of its own.
///
/// For backends that need an external service, `conformance_tests!(optional suite)` takes a
/// `fn() -> Option<Suite>` instead: when it returns `None` each test returns at once. The
/// function decides (and prints why) — and should panic rather than answer `None` when the
/// service is required (for example when the `CI` variable is set).
///
/// ```no_run
/// use regstore_driver_conformance::Suite;
///
/// fn suite_if_configured() -> Option<Suite> {
///     if std::env::var_os("MY_SERVER_URL").is_none() {
///         assert!(std::env::var_os("CI").is_none(), "CI needs MY_SERVER_URL");
///         println!("skipped: MY_SERVER_URL is not set");
///         return None;
///     }
///     # None
///     // Some(Suite::new(...))
/// }
///
/// regstore_driver_conformance::conformance_tests!(optional suite_if_configured);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (optional $suite:path) => {
        $crate::__conformance_case_list!(optional_tests[$suite]);
    };
    ($suite:path) => {
        $crate::__conformance_case_list!(tests[$suite]);
    };
}

/// The case list the macro expands; one entry per case. Kept next to [`CASES`]'s dispatch table
/// and checked against it by a unit test, so a case cannot be forgotten in either.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case_list {
    (@expand tests [$suite:path] $({ $(#[$m:meta])* $name:ident })*) => {
        $(
            #[test]
            $(#[$m])*
            fn $name() {
                $crate::__private::run_test(|| $suite(), stringify!($name));
            }
        )*
    };
    (@expand optional_tests [$suite:path] $({ $(#[$m:meta])* $name:ident })*) => {
        $(
            #[test]
            $(#[$m])*
            fn $name() {
                if let Some(suite) = $suite() {
                    $crate::__private::run_test(|| suite, stringify!($name));
                }
            }
        )*
    };
    (@expand names [] $({ $(#[$m:meta])* $name:ident })*) => {
        &[$(stringify!($name)),*]
    };
    ($mode:ident [$($args:tt)*]) => {
        $crate::__conformance_case_list! { @expand $mode [$($args)*]
            { root_exists }
            { valid_paths }
            { invalid_paths }
            { write_read_1 }
            { write_read_2 }
            { write_read_3 }
            { write_read_4 }
            { write_read_non_utf8 }
            { truncate }
            { read_nonexistent }
            { write_read_streams_1 }
            { write_read_streams_2 }
            { write_read_streams_3 }
            { write_read_streams_4 }
            { write_read_streams_non_utf8 }
            {
                #[ignore = "5 GiB; set REGSTORE_CONFORMANCE_LARGE=1 and run with --ignored"]
                write_read_large_streams
            }
            { reader_with_offset }
            { continue_stream_append_large }
            { continue_stream_append_small }
            { read_nonexistent_stream }
            { write_zero_byte_stream_then_append }
            { write_zero_byte_content_then_append }
            { list }
            { r#move }
            { move_overwrite }
            { move_nonexistent }
            { move_invalid }
            { delete }
            { redirect_url }
            { delete_nonexistent }
            { delete_folder }
            { delete_only_deletes_subpaths }
            { stat_call }
            { put_content_multiple_times }
            { concurrent_stream_reads }
            { concurrent_file_streams }
            { walk_all }
            { walk_skip_dir }
            { walk_start_after_hint_from_root }
            { walk_start_after_hint_from_subdir }
            { walk_hint_outside_after }
            { walk_hint_equals_from }
            { walk_hint_missing_inside }
            { walk_stop_early }
            { walk_error_stops }
            { walk_from_subdir }
            { walk_missing_dir }
            { delete_table }
            { delete_many }
            { over_thousand_blobs }
            { list_objects_v2 }
            { stat_no_false_directory }
            { move_large }
            { invalid_paths_traversal }
            { writer_cancel_leaves_nothing }
            { writer_state_errors }
            { reader_boundary_offsets }
            { append_straddling_part_size }
            { move_missing_source_keeps_destination }
            { negative_offset }
            { closed_upload_invisible_and_resumable }
            { cancel_discards_resumed_upload }
        }
    };
}

/// Support for the macro's expansion; not part of the public contract.
#[doc(hidden)]
pub mod __private {
    use crate::{run_case, Outcome, Suite};

    /// Runs one case on a fresh two-worker runtime and turns its outcome into a test result.
    pub fn run_test(suite: impl FnOnce() -> Suite, name: &str) {
        // `stringify!(r#move)` keeps the raw-identifier prefix; case names do not have it.
        let name = name.trim_start_matches("r#");
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("{name}: cannot build a Tokio runtime: {e}"),
        };
        let suite = suite();
        match runtime.block_on(run_case(&suite, name)) {
            Outcome::Passed => {}
            Outcome::Skipped(reason) => println!("skipped: {name}: {reason}"),
            Outcome::Failed(message) => panic!("{name} failed: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_case_list_equals_cases() {
        let from_macro: &[&str] = __conformance_case_list!(names[]);
        let from_macro: Vec<&str> = from_macro
            .iter()
            .map(|n| n.trim_start_matches("r#"))
            .collect();
        assert_eq!(from_macro, CASES.to_vec());
    }

    #[test]
    fn case_names_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for name in CASES {
            assert!(seen.insert(*name), "duplicate case {name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name} is not snake_case"
            );
        }
    }
}
