//! Where distribution keeps what: the paths of blobs, links, revisions, tags and uploads.

use crate::digest::Digest;

/// The default root of distribution's layout inside a storage driver.
pub const DEFAULT_ROOT: &str = "/docker/registry/v2";

/// distribution's path scheme below a root (normally [`DEFAULT_ROOT`]). Every path is a driver
/// path (absolute, `/`-separated); none of these functions touches storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new(DEFAULT_ROOT)
    }
}

impl Layout {
    /// A layout rooted at `root` (a trailing `/` is ignored).
    pub fn new(root: &str) -> Self {
        let root = root.trim_end_matches('/');
        Layout {
            root: if root.is_empty() {
                String::new()
            } else {
                root.to_owned()
            },
        }
    }

    /// The root (`/docker/registry/v2`); `/` is the empty string.
    pub fn root(&self) -> &str {
        if self.root.is_empty() {
            "/"
        } else {
            &self.root
        }
    }

    /// `<root>/blobs`.
    pub fn blobs(&self) -> String {
        format!("{}/blobs", self.root)
    }

    /// `<root>/blobs/<alg>/<hex[0:2]>/<hex>`: the directory a blob's deletion removes.
    pub fn blob_dir(&self, d: &Digest) -> String {
        let hex = d.hex();
        format!(
            "{}/blobs/{}/{}/{}",
            self.root,
            d.algorithm(),
            &hex[..2.min(hex.len())],
            hex
        )
    }

    /// `<root>/blobs/<alg>/<hex[0:2]>/<hex>/data`: the blob's bytes.
    pub fn blob_data(&self, d: &Digest) -> String {
        format!("{}/data", self.blob_dir(d))
    }

    /// The digest a blob data path names (`…/blobs/<alg>/<2hex>/<hex>/data`), or `None` when
    /// the path is not one (a stray file, a shard that does not match its hex).
    pub fn digest_of_blob_path(&self, path: &str) -> Option<Digest> {
        let rel = path.strip_prefix(&self.blobs())?.strip_prefix('/')?;
        let parts: Vec<&str> = rel.split('/').collect();
        match parts.as_slice() {
            [alg, shard, hex, "data"] if hex.get(..2) == Some(*shard) => {
                Digest::from_parts(alg, hex).ok()
            }
            _ => None,
        }
    }

    /// `<root>/repositories`.
    pub fn repositories(&self) -> String {
        format!("{}/repositories", self.root)
    }

    /// `<root>/repositories/<name>`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/repositories/{}", self.root, name)
    }

    /// `<repo>/_layers`.
    pub fn layers(&self, repo: &str) -> String {
        format!("{}/_layers", self.repository(repo))
    }

    /// `<repo>/_layers/<alg>/<hex>`: the directory of a layer link.
    pub fn layer_link_dir(&self, repo: &str, d: &Digest) -> String {
        format!("{}/{}/{}", self.layers(repo), d.algorithm(), d.hex())
    }

    /// `<repo>/_layers/<alg>/<hex>/link`.
    pub fn layer_link(&self, repo: &str, d: &Digest) -> String {
        format!("{}/link", self.layer_link_dir(repo, d))
    }

    /// `<repo>/_manifests`.
    pub fn manifests(&self, repo: &str) -> String {
        format!("{}/_manifests", self.repository(repo))
    }

    /// `<repo>/_manifests/revisions`.
    pub fn revisions(&self, repo: &str) -> String {
        format!("{}/revisions", self.manifests(repo))
    }

    /// `<repo>/_manifests/revisions/<alg>/<hex>`: what deleting a manifest removes.
    pub fn revision_dir(&self, repo: &str, d: &Digest) -> String {
        format!("{}/{}/{}", self.revisions(repo), d.algorithm(), d.hex())
    }

    /// `<repo>/_manifests/revisions/<alg>/<hex>/link`.
    pub fn revision_link(&self, repo: &str, d: &Digest) -> String {
        format!("{}/link", self.revision_dir(repo, d))
    }

    /// `<repo>/_manifests/tags`.
    pub fn tags(&self, repo: &str) -> String {
        format!("{}/tags", self.manifests(repo))
    }

    /// `<repo>/_manifests/tags/<tag>/current/link`: the digest the tag points at.
    pub fn tag_current_link(&self, repo: &str, tag: &str) -> String {
        format!("{}/{}/current/link", self.tags(repo), tag)
    }

    /// `<repo>/_manifests/tags/<tag>/index/<alg>/<hex>`: one entry of the tag's history.
    pub fn tag_index_entry(&self, repo: &str, tag: &str, d: &Digest) -> String {
        format!(
            "{}/{}/index/{}/{}",
            self.tags(repo),
            tag,
            d.algorithm(),
            d.hex()
        )
    }

    /// `<repo>/_uploads`.
    pub fn uploads(&self, repo: &str) -> String {
        format!("{}/_uploads", self.repository(repo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_distribution() {
        let l = Layout::default();
        let d = Digest::sha256_of(b"x");
        let h = d.hex().to_owned();
        assert_eq!(
            l.blob_data(&d),
            format!("/docker/registry/v2/blobs/sha256/{}/{h}/data", &h[..2])
        );
        assert_eq!(l.digest_of_blob_path(&l.blob_data(&d)), Some(d.clone()));
        assert_eq!(
            l.digest_of_blob_path("/docker/registry/v2/blobs/sha256/zz/data"),
            None
        );
        assert_eq!(
            l.revision_link("a/b", &d),
            format!("/docker/registry/v2/repositories/a/b/_manifests/revisions/sha256/{h}/link")
        );
        assert_eq!(
            l.tag_index_entry("r", "t", &d),
            format!("/docker/registry/v2/repositories/r/_manifests/tags/t/index/sha256/{h}")
        );
        assert_eq!(Layout::new("/").blobs(), "/blobs");
    }
}
