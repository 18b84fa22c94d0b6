//! What a registry's metadata looks like once listed (link files, tags, blobs) and how a link
//! file's content is read and checked. The listings themselves are in [`crate::listing`].

use std::time::SystemTime;

use regstore_driver_api::Driver;

use crate::digest::Digest;
use crate::error::{LayoutError, Result};

/// A link file found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFile {
    /// Its path.
    pub path: String,
    /// The digest its directory names (`<alg>/<hex>/link`), when the path has that shape. The
    /// file's content, not this, is what distribution uses; see [`read_link`].
    pub dir_digest: Option<Digest>,
    /// Its modification time, when the backend reports one.
    pub mod_time: Option<SystemTime>,
    /// Its entity tag, when the listing reports one (see [`link_etag_names`]).
    pub etag: Option<String>,
}

/// A tag of a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tag {
    /// The tag name.
    pub name: String,
    /// `current/link`, if the tag has one.
    pub current: Option<LinkFile>,
    /// Digests named by `index/<alg>/<hex>/` entries (the tag's history).
    pub index: Vec<Digest>,
}

/// Reads a link file and parses its content as strictly as distribution does (no
/// whitespace, lowercase hex).
pub async fn read_link(driver: &Driver, path: &str) -> Result<Digest> {
    let bytes = driver.get_content(path).await?;
    let text = String::from_utf8_lossy(&bytes);
    Digest::parse(&text).map_err(|_| LayoutError::BadLink {
        path: path.to_owned(),
        content: text.chars().take(80).collect(),
    })
}

/// Whether a link file's entity tag proves that its content is exactly `digest` as
/// distribution writes it (`sha256:<hex>`, nothing else): S3 makes the ETag of a single-part
/// upload without SSE-KMS/SSE-C the hex MD5 of the content. A match lets gc skip reading the
/// link; an ETag that is no MD5 (KMS, multipart, another backend) matches nothing, and the
/// caller reads the link as distribution does.
pub fn link_etag_names(etag: &str, digest: &Digest) -> bool {
    use md5::{Digest as _, Md5};
    etag.len() == 32 && etag.eq_ignore_ascii_case(&hex::encode(Md5::digest(digest.as_str())))
}

/// The digest among `known` that `link`'s listed ETag proves it holds (see
/// [`link_etag_names`]), if any: the caller then need not read the link.
pub fn proven_digest<'a>(
    link: &LinkFile,
    known: impl IntoIterator<Item = &'a Digest>,
) -> Option<&'a Digest> {
    let etag = link.etag.as_deref()?;
    known.into_iter().find(|d| link_etag_names(etag, d))
}

/// A blob found below `blobs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFile {
    /// The digest its path names.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, when known.
    pub mod_time: Option<SystemTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_etag_is_the_md5_of_exactly_the_digest_string() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        // md5("sha256:aaa…a"), computed independently.
        let md5 = "a5e6de3c46119f3b337fe6bf671a0541";
        assert!(link_etag_names(md5, &d));
        assert!(link_etag_names(&md5.to_uppercase(), &d));
        let other = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        assert!(!link_etag_names(md5, &other));
        // Multipart and KMS ETags are no MD5 and match nothing.
        assert!(!link_etag_names(&format!("{md5}-2"), &d));
        assert!(!link_etag_names("", &d));
    }
}
