//! The cases, their dispatch table and the helpers they share.

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::TryStreamExt;
use rand::rngs::StdRng;
use regstore_driver_api::{Driver, Error, FileInfo, WalkOptions};

use crate::capabilities::Capabilities;
use crate::data;

mod basic;
mod extra;
mod uploads;
mod walk;

/// Why a case did not pass.
#[derive(Debug)]
pub enum CaseError {
    /// An expectation failed.
    Failed(String),
    /// The case was not run.
    Skipped(String),
}

/// What a case returns.
pub type CaseResult = Result<(), CaseError>;

/// Fails the case with a formatted message.
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::cases::CaseError::Failed(format!($($arg)+)))
    };
}

/// Fails the case unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            fail!($($arg)+);
        }
    };
}

pub(crate) use {ensure, fail};

/// Attaches the step being performed to an unexpected driver error.
pub trait Step<T> {
    /// Maps `Err(e)` to a failure `"<what>: unexpected error: <e>"`.
    fn step(self, what: impl fmt::Display) -> Result<T, CaseError>;
}

impl<T> Step<T> for Result<T, Error> {
    fn step(self, what: impl fmt::Display) -> Result<T, CaseError> {
        self.map_err(|e| CaseError::Failed(format!("{what}: unexpected error: {e}")))
    }
}

impl From<String> for CaseError {
    fn from(s: String) -> Self {
        CaseError::Failed(s)
    }
}

/// What a case gets: its driver, the backend's capabilities and its own name (the seed of its
/// data).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub d: Driver,
    pub caps: Capabilities,
    pub case: &'static str,
}

impl Ctx {
    pub fn new(d: Driver, caps: Capabilities, case: &'static str) -> Self {
        Ctx { d, caps, case }
    }

    pub fn name(&self) -> &str {
        self.d.name()
    }

    pub fn rng(&self, label: &str) -> StdRng {
        data::rng(self.case, label)
    }

    pub fn part_size(&self) -> u64 {
        self.caps.effective_part_size()
    }

    pub async fn put(&self, path: &str, content: impl Into<Bytes>) -> CaseResult {
        self.d
            .put_content(path, content)
            .await
            .step(format!("put_content({path})"))
    }

    pub async fn get(&self, path: &str) -> Result<Vec<u8>, CaseError> {
        self.d
            .get_content(path)
            .await
            .map(|b| b.to_vec())
            .step(format!("get_content({path})"))
    }

    /// Reads the whole stream from `offset`.
    pub async fn read_all(&self, path: &str, offset: i64) -> Result<Vec<u8>, CaseError> {
        let what = format!("reader({path}, {offset})").to_string();
        let stream = self.d.reader(path, offset).await.step(&what)?;
        let chunks: Vec<Bytes> = stream.try_collect().await.step(&what)?;
        let mut v = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
        for c in chunks {
            v.extend_from_slice(&c);
        }
        Ok(v)
    }

    /// `get_content(path)` equals `expected`.
    pub async fn expect_content(&self, path: &str, expected: &[u8]) -> CaseResult {
        let got = self.get(path).await?;
        data::compare(&format!("get_content({path})"), &got, expected)?;
        Ok(())
    }

    /// `reader(path, offset)` read to the end equals `expected`.
    pub async fn expect_stream(&self, path: &str, offset: i64, expected: &[u8]) -> CaseResult {
        let got = self.read_all(path, offset).await?;
        data::compare(&format!("reader({path}, {offset})"), &got, expected)?;
        Ok(())
    }

    /// Writes `content` through a new writer the way `io.Copy` does (32 KiB pieces), checks the
    /// count, commits and closes.
    pub async fn write_stream(&self, path: &str, content: &[u8]) -> CaseResult {
        let mut w = self
            .d
            .writer(path, false)
            .await
            .step(format!("writer({path}, false)"))?;
        let mut src: &[u8] = content;
        let n = w
            .copy_from(&mut src, 32 * 1024)
            .await
            .step(format!("writing {path}"))?;
        ensure!(
            n == content.len() as u64,
            "writing {path}: copied {n} bytes, expected {}",
            content.len()
        );
        w.commit().await.step(format!("commit({path})"))?;
        w.close()
            .await
            .step(format!("close({path}) after commit"))?;
        Ok(())
    }

    pub async fn delete(&self, path: &str) -> CaseResult {
        self.d.delete(path).await.step(format!("delete({path})"))
    }

    pub async fn stat(&self, path: &str) -> Result<FileInfo, CaseError> {
        self.d.stat(path).await.step(format!("stat({path})"))
    }

    pub async fn list_sorted(&self, path: &str) -> Result<Vec<String>, CaseError> {
        let mut v: Vec<String> = self
            .d
            .list(path)
            .await
            .step(format!("list({path})"))?
            .into_iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    /// `res` is `PathNotFound` naming `path` and this driver, with the driver in the message.
    pub fn expect_not_found<T: fmt::Debug>(
        &self,
        what: impl fmt::Display,
        res: Result<T, Error>,
        path: &str,
    ) -> CaseResult {
        match &res {
            Err(e @ Error::PathNotFound { driver, path: p }) => {
                ensure!(
                    driver == self.name() && e.to_string().contains(self.name()),
                    "{what}: PathNotFound names driver {driver:?}, expected {:?}",
                    self.name()
                );
                ensure!(
                    p == path,
                    "{what}: PathNotFound names path {p:?}, expected {path:?}"
                );
                Ok(())
            }
            Err(e) => fail!("{what}: expected PathNotFound for {path}, got error: {e}"),
            Ok(v) => fail!(
                "{what}: expected PathNotFound for {path}, got Ok({})",
                short_debug(v)
            ),
        }
    }

    /// `res` is `InvalidPath` naming `path` and this driver.
    pub fn expect_invalid_path<T: fmt::Debug>(
        &self,
        what: impl fmt::Display,
        res: Result<T, Error>,
        path: &str,
    ) -> CaseResult {
        match &res {
            Err(e @ Error::InvalidPath { driver, path: p }) => {
                ensure!(
                    driver == self.name() && e.to_string().contains(self.name()),
                    "{what}: InvalidPath names driver {driver:?}, expected {:?}",
                    self.name()
                );
                ensure!(
                    p == path,
                    "{what}: InvalidPath names path {p:?}, expected {path:?}"
                );
                Ok(())
            }
            Err(e) => fail!("{what}: expected InvalidPath for {path:?}, got error: {e}"),
            Ok(v) => fail!(
                "{what}: expected InvalidPath for {path:?}, got Ok({})",
                short_debug(v)
            ),
        }
    }

    /// Walks `from` with `options`, answering `Continue`, and returns the visited entries.
    pub async fn walk_collect(
        &self,
        from: &str,
        options: &WalkOptions,
    ) -> Result<Vec<FileInfo>, CaseError> {
        let mut seen = Vec::new();
        self.d
            .walk(from, options, |fi| {
                seen.push(fi.clone());
                Ok(regstore_driver_api::WalkControl::Continue)
            })
            .await
            .step(format!("walk({from}, {options:?})"))?;
        Ok(seen)
    }
}

/// A Debug rendering cut to 200 characters, so an unexpected success never prints megabytes.
pub fn short_debug<T: fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} chars)", &s[..end], s.len())
    } else {
        s
    }
}

/// One entry of the dispatch table.
pub struct Case {
    pub name: &'static str,
    pub run: fn(Ctx) -> BoxFuture<'static, CaseResult>,
}

macro_rules! table {
    ($($name:literal => $f:path),* $(,)?) => {
        static TABLE: &[Case] = &[$(Case { name: $name, run: |c| Box::pin($f(c)) }),*];
        /// Every case name, in table order.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

table! {
    "root_exists" => basic::root_exists,
    "valid_paths" => basic::valid_paths,
    "invalid_paths" => basic::invalid_paths,
    "write_read_1" => basic::write_read_1,
    "write_read_2" => basic::write_read_2,
    "write_read_3" => basic::write_read_3,
    "write_read_4" => basic::write_read_4,
    "write_read_non_utf8" => basic::write_read_non_utf8,
    "truncate" => basic::truncate,
    "read_nonexistent" => basic::read_nonexistent,
    "write_read_streams_1" => basic::write_read_streams_1,
    "write_read_streams_2" => basic::write_read_streams_2,
    "write_read_streams_3" => basic::write_read_streams_3,
    "write_read_streams_4" => basic::write_read_streams_4,
    "write_read_streams_non_utf8" => basic::write_read_streams_non_utf8,
    "write_read_large_streams" => basic::write_read_large_streams,
    "reader_with_offset" => basic::reader_with_offset,
    "continue_stream_append_large" => basic::continue_stream_append_large,
    "continue_stream_append_small" => basic::continue_stream_append_small,
    "read_nonexistent_stream" => basic::read_nonexistent_stream,
    "write_zero_byte_stream_then_append" => basic::write_zero_byte_stream_then_append,
    "write_zero_byte_content_then_append" => basic::write_zero_byte_content_then_append,
    "list" => basic::list,
    "move" => basic::move_,
    "move_overwrite" => basic::move_overwrite,
    "move_nonexistent" => basic::move_nonexistent,
    "move_invalid" => basic::move_invalid,
    "delete" => basic::delete,
    "redirect_url" => basic::redirect_url,
    "delete_nonexistent" => basic::delete_nonexistent,
    "delete_folder" => basic::delete_folder,
    "delete_only_deletes_subpaths" => basic::delete_only_deletes_subpaths,
    "stat_call" => basic::stat_call,
    "put_content_multiple_times" => basic::put_content_multiple_times,
    "concurrent_stream_reads" => basic::concurrent_stream_reads,
    "concurrent_file_streams" => basic::concurrent_file_streams,
    "walk_all" => walk::walk_all,
    "walk_skip_dir" => walk::walk_skip_dir,
    "walk_start_after_hint_from_root" => walk::walk_start_after_hint_from_root,
    "walk_start_after_hint_from_subdir" => walk::walk_start_after_hint_from_subdir,
    "walk_hint_outside_after" => walk::walk_hint_outside_after,
    "walk_hint_equals_from" => walk::walk_hint_equals_from,
    "walk_hint_missing_inside" => walk::walk_hint_missing_inside,
    "walk_stop_early" => walk::walk_stop_early,
    "walk_error_stops" => walk::walk_error_stops,
    "walk_from_subdir" => walk::walk_from_subdir,
    "walk_missing_dir" => walk::walk_missing_dir,
    "delete_table" => extra::delete_table,
    "delete_many" => extra::delete_many,
    "over_thousand_blobs" => extra::over_thousand_blobs,
    "list_objects_v2" => extra::list_objects_v2,
    "stat_no_false_directory" => extra::stat_no_false_directory,
    "move_large" => extra::move_large,
    "invalid_paths_traversal" => extra::invalid_paths_traversal,
    "writer_cancel_leaves_nothing" => extra::writer_cancel_leaves_nothing,
    "writer_state_errors" => extra::writer_state_errors,
    "reader_boundary_offsets" => extra::reader_boundary_offsets,
    "append_straddling_part_size" => extra::append_straddling_part_size,
    "move_missing_source_keeps_destination" => extra::move_missing_source_keeps_destination,
    "negative_offset" => extra::negative_offset,
    "closed_upload_invisible_and_resumable" => uploads::closed_upload_invisible_and_resumable,
    "cancel_discards_resumed_upload" => uploads::cancel_discards_resumed_upload,
}

/// The case called `name`.
pub fn find(name: &str) -> Option<&'static Case> {
    TABLE.iter().find(|c| c.name == name)
}
