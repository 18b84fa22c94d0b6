//! [`Inner`]: the state a driver shares with its writers and walks.
//!
//! Its own module so that [`crate::driver`] uses [`crate::writer`] and [`crate::walk`], and
//! they use this, without the two depending on each other.

use crate::keys::KeyMapper;
use crate::s3api::{S3Api, WriteHeaders};

/// Shared state of a driver and its writers.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) api: S3Api,
    pub(crate) keys: KeyMapper,
    pub(crate) headers: WriteHeaders,
    /// Headers of writer tail records: the same encryption and ACL, the default storage class
    /// (a record lives minutes to days; infrequent-access classes bill at least 30 days).
    pub(crate) tail_headers: WriteHeaders,
}
