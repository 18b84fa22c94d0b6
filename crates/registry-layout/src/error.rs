//! The error of every operation of this crate; each message names the storage path concerned.

use crate::manifest::ManifestError;

/// What stops a scan, a garbage collection or an fsck.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The storage driver failed (its message names the driver and the path).
    #[error(transparent)]
    Storage(#[from] regstore_driver_api::Error),
    /// A manifest's bytes cannot be parsed.
    #[error("{path}: {source}")]
    BadManifest {
        /// The blob data path of the manifest.
        path: String,
        /// Why it cannot be parsed.
        source: ManifestError,
    },
    /// A link file does not hold exactly one digest.
    #[error("{path}: invalid link content {content:?}")]
    BadLink {
        /// The link's path.
        path: String,
        /// Its content (at most 80 characters).
        content: String,
    },
    /// A file named `data` below `blobs/` whose path is not `<alg>/<2hex>/<hex>/data`.
    #[error("{path}: not a blob path (expected blobs/<alg>/<first 2 hex>/<hex>/data)")]
    BadBlobPath {
        /// The file's path.
        path: String,
    },
}

/// Result of this crate's operations.
pub type Result<T, E = LayoutError> = std::result::Result<T, E>;
