//! Mapping between storage paths and S3 object keys.
//!
//! The mapping is distribution's, byte for byte, so a Go registry and regstore can share a
//! bucket: `key = TrimLeft(TrimRight(rootdirectory, "/") + path, "/")`. With the root directory
//! normalised by the configuration to `""` or `"some/prefix/"`, that is the root directory
//! followed by the path without its leading `/`.

use regstore_driver_api::StoragePath;

/// The key space of one driver: its normalised root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyMapper {
    /// `""` or a prefix ending in `/` (never starting with `/`).
    root: String,
}

impl KeyMapper {
    /// A mapper for `root_directory`. Accepts the configuration's normalised form and, to be
    /// safe, any other spelling of the same root (`/registry`, `registry/`, `/`).
    pub(crate) fn new(root_directory: &str) -> Self {
        let trimmed = root_directory.trim_matches('/');
        let root = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}/")
        };
        KeyMapper { root }
    }

    /// The root prefix (`""` or ending in `/`).
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    /// The object key of `path`; for the root `/` this is the root prefix itself.
    pub(crate) fn key(&self, path: &StoragePath) -> String {
        let rel = path.as_str().trim_start_matches('/');
        let mut key = String::with_capacity(self.root.len() + rel.len());
        key.push_str(&self.root);
        key.push_str(rel);
        key
    }

    /// The prefix under which the descendants of `path` live: key + `/` (the root prefix for
    /// `/`). Listing with it never matches `/ab/cd` when asking about `/ab/c`.
    pub(crate) fn dir_prefix(&self, path: &StoragePath) -> String {
        if path.is_root() {
            self.root.clone()
        } else {
            let mut key = self.key(path);
            key.push('/');
            key
        }
    }

    /// The path a listed key stands for, or `None` when the key lies outside the root or does
    /// not spell a valid path (foreign objects in a shared bucket, folder markers, `a//b`).
    /// A trailing `/` (folder marker, common prefix) is ignored: `dir/` maps to `/dir`.
    pub(crate) fn path(&self, key: &str) -> Option<StoragePath> {
        let rel = key.strip_prefix(self.root.as_str())?;
        let rel = rel.strip_suffix('/').unwrap_or(rel);
        StoragePath::parse(&format!("/{rel}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> StoragePath {
        StoragePath::parse_dir(s).expect("valid test path")
    }

    #[test]
    fn keys_match_distribution() {
        // TrimLeft(TrimRight(root, "/") + path, "/") for the roots distribution users write.
        for (root, path, key) in [
            ("", "/docker/x", "docker/x"),
            ("/", "/docker/x", "docker/x"),
            ("/registry/", "/docker/x", "registry/docker/x"),
            ("/registry", "/docker/x", "registry/docker/x"),
            ("registry/", "/docker/x", "registry/docker/x"),
            ("a/b/", "/c", "a/b/c"),
            ("", "/", ""),
            ("/registry", "/", "registry/"),
        ] {
            assert_eq!(
                KeyMapper::new(root).key(&p(path)),
                key,
                "root {root:?} path {path}"
            );
        }
    }

    #[test]
    fn dir_prefix_adds_one_slash() {
        let m = KeyMapper::new("r/");
        assert_eq!(m.dir_prefix(&p("/a/b")), "r/a/b/");
        assert_eq!(m.dir_prefix(&p("/")), "r/");
        assert_eq!(KeyMapper::new("").dir_prefix(&p("/")), "");
    }

    #[test]
    fn keys_map_back() {
        let m = KeyMapper::new("/registry/");
        assert_eq!(m.path("registry/docker/x"), Some(p("/docker/x")));
        assert_eq!(m.path("registry/docker/"), Some(p("/docker")));
        assert_eq!(m.path("registry/"), None);
        assert_eq!(m.path("other/docker/x"), None);
        assert_eq!(m.path("registry/a//b"), None);
        assert_eq!(m.path("registry/a b"), None);
        let empty = KeyMapper::new("");
        assert_eq!(empty.path("test"), Some(p("/test")));
        assert_eq!(empty.path(""), None);
        for path in ["/a", "/a/b.c/d-e_f"] {
            assert_eq!(m.path(&m.key(&p(path))), Some(p(path)));
        }
    }
}
