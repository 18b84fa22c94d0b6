//! The whole conformance suite against the S3 server of `REGSTORE_S3_*` (see `common`), one
//! test per case, each on a fresh random `rootdirectory` with 5 MiB parts.
//!
//! The suite's `conformance_tests!` macro cannot skip when the server is not configured, so
//! this file generates the same one-test-per-case functions itself and checks below that its
//! list equals the suite's [`CASES`](regstore_driver_conformance::CASES): a case added to the
//! suite fails `case_list_matches_the_suite` until it is added here.

mod common;

use regstore_driver_conformance::{
    run_case, Capabilities, Fixture, Outcome, Suite, WalkOrder, CASES,
};

fn suite(env: common::Env) -> Suite {
    Suite::new(move || {
        let env = env.clone();
        async move {
            let driver = env.driver().await;
            let teardown_driver = driver.clone();
            Ok(
                Fixture::new(common::dyn_driver(&driver)).with_teardown(move || async move {
                    // Objects are checked by the harness; uploads a case left open (closed
                    // writers) are aborted so the bucket does not accumulate them.
                    teardown_driver.abort_uploads_under_root().await.map(|_| ())
                }),
            )
        }
    })
    .with_capabilities(
        Capabilities::default()
            .with_walk_order(WalkOrder::KeyOrder)
            .with_walk_missing_is_not_found(false)
            .with_part_size(5 * common::MIB)
            .with_redirect(true, false),
    )
}

fn run(name: &str) {
    let Some(env) = common::s3_env() else { return };
    let name = name.trim_start_matches("r#");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("{name}: cannot build a Tokio runtime: {e}"),
    };
    match runtime.block_on(run_case(&suite(env), name)) {
        Outcome::Passed => {}
        Outcome::Skipped(reason) => println!("skipped: {name}: {reason}"),
        Outcome::Failed(message) => panic!("{name} failed: {message}"),
    }
}

macro_rules! cases {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        $(
            #[test]
            $(#[$m])*
            fn $name() {
                run(stringify!($name));
            }
        )*
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

cases!(
    root_exists,
    valid_paths,
    invalid_paths,
    write_read_1,
    write_read_2,
    write_read_3,
    write_read_4,
    write_read_non_utf8,
    truncate,
    read_nonexistent,
    write_read_streams_1,
    write_read_streams_2,
    write_read_streams_3,
    write_read_streams_4,
    write_read_streams_non_utf8,
    #[ignore = "5 GiB; set REGSTORE_CONFORMANCE_LARGE=1 and run with --ignored"]
    write_read_large_streams,
    reader_with_offset,
    continue_stream_append_large,
    continue_stream_append_small,
    read_nonexistent_stream,
    write_zero_byte_stream_then_append,
    write_zero_byte_content_then_append,
    list,
    r#move,
    move_overwrite,
    move_nonexistent,
    move_invalid,
    delete,
    redirect_url,
    delete_nonexistent,
    delete_folder,
    delete_only_deletes_subpaths,
    stat_call,
    put_content_multiple_times,
    concurrent_stream_reads,
    concurrent_file_streams,
    walk_all,
    walk_skip_dir,
    walk_start_after_hint_from_root,
    walk_start_after_hint_from_subdir,
    walk_hint_outside_after,
    walk_hint_equals_from,
    walk_hint_missing_inside,
    walk_stop_early,
    walk_error_stops,
    walk_from_subdir,
    walk_missing_dir,
    delete_table,
    over_thousand_blobs,
    list_objects_v2,
    stat_no_false_directory,
    move_large,
    invalid_paths_traversal,
    writer_cancel_leaves_nothing,
    writer_state_errors,
    reader_boundary_offsets,
    append_straddling_part_size,
    move_missing_source_keeps_destination,
    negative_offset,
);

#[test]
fn case_list_matches_the_suite() {
    let listed: Vec<&str> = LISTED.iter().map(|n| n.trim_start_matches("r#")).collect();
    assert_eq!(
        listed,
        CASES.to_vec(),
        "tests/conformance.rs is out of date"
    );
}
