//! [`RequestStats`]: counts of the requests the dispatcher sends, by S3 operation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::Operation;

/// Counts of HTTP requests sent, by S3 operation (`GetObject`, `UploadPart`, …).
///
/// Every request the driver sends is counted once when it is handed to the HTTP client,
/// whether it then succeeds or not. Lock-free; shared by all clones of a driver.
///
/// Retries are counted too: each retry is one more request in the operation's count, and
/// also one in [`retries`](Self::retries).
#[derive(Debug)]
pub struct RequestStats {
    counts: Vec<AtomicU64>,
    retries: Vec<AtomicU64>,
    ambiguous: Vec<AtomicU64>,
    orphans: AtomicU64,
}

impl Default for RequestStats {
    fn default() -> Self {
        let zeros = || Operation::ALL.iter().map(|_| AtomicU64::new(0)).collect();
        RequestStats {
            counts: zeros(),
            retries: zeros(),
            ambiguous: zeros(),
            orphans: AtomicU64::new(0),
        }
    }
}

/// The operation called `name`, if the driver sends it.
fn named(name: &str) -> Option<Operation> {
    Operation::ALL.into_iter().find(|o| o.name() == name)
}

impl RequestStats {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts of the operations seen so far; operations never sent are absent.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        Operation::ALL
            .iter()
            .zip(&self.counts)
            .filter_map(|(op, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| (op.name().to_owned(), n))
            })
            .collect()
    }

    /// Total requests sent.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Count of one operation (0 for unknown names).
    pub fn get(&self, operation: &str) -> u64 {
        named(operation).map_or(0, |o| self.counts[o.index()].load(Ordering::Relaxed))
    }

    /// Requests sent again after a failed attempt (every operation).
    pub fn retries(&self) -> u64 {
        self.retries.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Retries by operation; operations never retried are absent.
    pub fn retries_snapshot(&self) -> BTreeMap<String, u64> {
        Operation::ALL
            .iter()
            .zip(&self.retries)
            .filter_map(|(op, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| (op.name().to_owned(), n))
            })
            .collect()
    }

    /// Retries of `operation` after a failure that leaves open whether the server acted
    /// (reset after sending, timeout, truncated answer): for `CreateMultipartUpload` each may
    /// have left an orphaned upload (see the `upload_recovery` module). 0 for unknown names.
    pub fn ambiguous_retries(&self, operation: &str) -> u64 {
        named(operation).map_or(0, |o| self.ambiguous[o.index()].load(Ordering::Relaxed))
    }

    /// Orphaned multipart uploads the driver aborted itself: uploads a reset or timed-out
    /// `CreateMultipartUpload` created before its retry created the one in use.
    pub fn orphans_aborted(&self) -> u64 {
        self.orphans.load(Ordering::Relaxed)
    }

    /// Counts one request of `operation` handed to the HTTP client.
    pub(crate) fn record(&self, operation: Operation) {
        self.counts[operation.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one orphaned upload aborted ([`Self::orphans_aborted`]).
    pub(crate) fn record_orphan_aborted(&self) {
        self.orphans.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one retry of `operation`, `ambiguous` when the failed attempt may have been
    /// carried out.
    pub(crate) fn record_retry(&self, operation: Operation, ambiguous: bool) {
        let i = operation.index();
        self.retries[i].fetch_add(1, Ordering::Relaxed);
        if ambiguous {
            self.ambiguous[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}
