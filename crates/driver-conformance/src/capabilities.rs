//! What legitimately differs between backends ([`Capabilities`]), which the cases adapt to.
//!
//! Its own module so that the cases and the runner both depend on it without depending on
//! each other.

use std::time::Duration;

use serde::Serialize;

/// Default part size assumed by the cases that straddle part boundaries (S3's minimum, 5 MiB).
pub const DEFAULT_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The most retries [`Capabilities::redirect_retries`] allows: enough for a 10 % fault rate,
/// small enough that a backend failing every fetch still fails within seconds.
pub const MAX_REDIRECT_RETRIES: u32 = 8;

/// The order in which a backend's walk visits entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkOrder {
    /// Distribution's `WalkFallback` (the default walk): depth first, children sorted by byte
    /// order of their full paths, so `/folder1`, its subtree, then `/folder1-suffix`.
    SortedDepthFirst,
    /// A flat key listing (S3): keys in byte order, so `/folder1-suffix/…` (`-` is 0x2D) comes
    /// before `/folder1/…` (`/` is 0x2F), and with a start-after hint the ancestors of the first
    /// entry after the hint are emitted again.
    KeyOrder,
}

/// What legitimately differs between backends; the cases adapt their expectations to it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Order of walks.
    pub walk_order: WalkOrder,
    /// Whether walking a missing directory is `PathNotFound` (the default walk) rather than
    /// `Ok` with no callback (S3's flat walk).
    pub walk_missing_is_not_found: bool,
    /// The backend's part size, for the cases that write across part boundaries; `None` means
    /// [`DEFAULT_PART_SIZE`].
    pub part_size: Option<u64>,
    /// Run the 5 GiB stream case (default: env `REGSTORE_CONFORMANCE_LARGE=1`); otherwise that
    /// case is reported as skipped.
    pub large_streams: bool,
    /// Concurrency cases at distribution's full sizes (128 MiB; 32 writers × 32 MiB) instead of
    /// its `-short` sizes (10 MiB; 8 × 8 MiB). Default: env `REGSTORE_CONFORMANCE_FULL=1`.
    pub full_size: bool,
    /// Whether the backend redirects: when true, GET and HEAD redirect URLs must be returned and
    /// are fetched over HTTP(S) (GET returns exactly the bytes, HEAD answers 200 with the right
    /// Content-Length); when false, the backend must answer "no redirect" (a URL it returns
    /// anyway fails the case, since an unfetched URL proves nothing).
    pub redirect: bool,
    /// Accept invalid TLS certificates when fetching redirect URLs (a local test server).
    pub redirect_skip_tls_verify: bool,
    /// How many times a fetch of a redirect URL is repeated after a transient failure (a
    /// transport error, a body cut short, `5xx` or `429`), with a short exponential back-off,
    /// as a real client (docker) does. `0`, the default, fetches once, so a backend that
    /// answers its own URLs badly fails the case. A `4xx` other than `429` (a bad signature's
    /// `403`) is never retried. Meant for suites run through a fault-injection proxy; at most
    /// [`MAX_REDIRECT_RETRIES`] is used.
    pub redirect_retries: u32,
    /// Time limit of one case (the 5 GiB case has none); a case over it fails.
    #[serde(serialize_with = "serialize_opt_duration")]
    pub case_timeout: Option<Duration>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

impl Default for Capabilities {
    /// The embedded backends' behaviour; `large_streams` and `full_size` from the environment.
    fn default() -> Self {
        Capabilities {
            walk_order: WalkOrder::SortedDepthFirst,
            walk_missing_is_not_found: true,
            part_size: None,
            large_streams: env_flag("REGSTORE_CONFORMANCE_LARGE"),
            full_size: env_flag("REGSTORE_CONFORMANCE_FULL"),
            redirect: false,
            redirect_skip_tls_verify: false,
            redirect_retries: 0,
            case_timeout: Some(Duration::from_secs(600)),
        }
    }
}

impl Capabilities {
    /// Sets [`walk_order`](Self::walk_order).
    pub fn with_walk_order(mut self, order: WalkOrder) -> Self {
        self.walk_order = order;
        self
    }

    /// Sets [`walk_missing_is_not_found`](Self::walk_missing_is_not_found).
    pub fn with_walk_missing_is_not_found(mut self, yes: bool) -> Self {
        self.walk_missing_is_not_found = yes;
        self
    }

    /// Sets [`part_size`](Self::part_size).
    pub fn with_part_size(mut self, part_size: u64) -> Self {
        self.part_size = Some(part_size);
        self
    }

    /// Sets [`large_streams`](Self::large_streams).
    pub fn with_large_streams(mut self, yes: bool) -> Self {
        self.large_streams = yes;
        self
    }

    /// Sets [`full_size`](Self::full_size).
    pub fn with_full_size(mut self, yes: bool) -> Self {
        self.full_size = yes;
        self
    }

    /// Sets [`redirect`](Self::redirect) and
    /// [`redirect_skip_tls_verify`](Self::redirect_skip_tls_verify).
    pub fn with_redirect(mut self, fetch: bool, skip_tls_verify: bool) -> Self {
        self.redirect = fetch;
        self.redirect_skip_tls_verify = skip_tls_verify;
        self
    }

    /// Sets [`redirect_retries`](Self::redirect_retries) (capped at [`MAX_REDIRECT_RETRIES`]).
    pub fn with_redirect_retries(mut self, retries: u32) -> Self {
        self.redirect_retries = retries.min(MAX_REDIRECT_RETRIES);
        self
    }

    /// Sets [`case_timeout`](Self::case_timeout).
    pub fn with_case_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.case_timeout = timeout;
        self
    }

    /// The part size in effect (never 0).
    pub fn effective_part_size(&self) -> u64 {
        self.part_size.unwrap_or(DEFAULT_PART_SIZE).max(1)
    }
}

fn serialize_opt_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
