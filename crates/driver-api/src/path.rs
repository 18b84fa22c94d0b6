//! Validated storage paths.

use std::fmt;

/// An absolute storage path that has passed validation.
///
/// A path is one or more components, each `/` followed by one or more of `[A-Za-z0-9._-]`
/// (distribution's `^(/[A-Za-z0-9._-]+)+$`), and no component is `.` or `..` (distribution
/// accepts those; a filesystem backend would escape its root). The root `/` exists as a value
/// only for the operations that accept it (stat, list, walk): see [`StoragePath::parse_dir`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoragePath(String);

impl StoragePath {
    /// The root `/`.
    pub fn root() -> Self {
        StoragePath("/".to_owned())
    }

    /// Parses an object path; `/` is rejected. Errors carry no driver name (the caller's
    /// [`crate::Driver`] adds it); use [`is_valid`](Self::is_valid) for a plain check.
    pub fn parse(s: &str) -> Option<Self> {
        Self::is_valid(s).then(|| StoragePath(s.to_owned()))
    }

    /// Parses a path that may also be the root `/` (stat, list and walk accept it).
    pub fn parse_dir(s: &str) -> Option<Self> {
        if s == "/" {
            Some(Self::root())
        } else {
            Self::parse(s)
        }
    }

    /// Whether `s` is a valid object path (never true for `/`).
    pub fn is_valid(s: &str) -> bool {
        let Some(rest) = s.strip_prefix('/') else {
            return false;
        };
        rest.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
    }

    /// The path as a string, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components, without slashes; empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The last component (`"b"` for `/a/b`); empty for the root.
    pub fn base_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The parent directory; the root's parent is the root.
    pub fn parent(&self) -> StoragePath {
        match self.0.rfind('/') {
            Some(0) | None => Self::root(),
            Some(i) => StoragePath(self.0[..i].to_owned()),
        }
    }

    /// `self` joined with one or more validated components (`"c"` or `"c/d"`); `None` if the
    /// result is not a valid path.
    pub fn join(&self, rel: &str) -> Option<StoragePath> {
        let joined = if self.is_root() {
            format!("/{rel}")
        } else {
            format!("{}/{rel}", self.0)
        };
        Self::parse(&joined)
    }

    /// Whether `self` is `ancestor` or lies below it (`/a/b` is under `/a`, `/ab` is not).
    pub fn is_under(&self, ancestor: &StoragePath) -> bool {
        ancestor.is_root()
            || self.0 == ancestor.0
            || (self.0.starts_with(&ancestor.0) && self.0.as_bytes()[ancestor.0.len()] == b'/')
    }
}

impl fmt::Debug for StoragePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StoragePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StoragePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for StoragePath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StoragePath {
    type Err = InvalidPathString;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_dir(s).ok_or_else(|| InvalidPathString(s.to_owned()))
    }
}

/// A string that is not a valid [`StoragePath`] (from [`str::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path: {0}")]
pub struct InvalidPathString(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_valid_paths() {
        for p in [
            "/a",
            "/2",
            "/aa",
            "/a.a",
            "/0-9/abcdefg",
            "/abcdefg/z.75",
            "/abc/1.2.3.4.5-6_zyx/123.z/4",
            "/docker/docker-registry",
            "/123.abc",
            "/abc./abc",
            "/.abc",
            "/a--b",
            "/a-.b",
            "/_.abc",
            "/Docker/docker-registry",
            "/Abc/Cba",
            "/...",
        ] {
            assert!(StoragePath::is_valid(p), "{p} should be valid");
        }
    }

    #[test]
    fn invalid_paths_and_traversal() {
        for p in [
            "",
            "/",
            "abc",
            "123.abc",
            "//bcd",
            "/abc_123/",
            "/a/../b",
            "/..",
            "/.",
            "/a/.",
            "/a b",
            "/a/b*",
            "/ä",
            "/a\0b",
            "/a//b",
        ] {
            assert!(!StoragePath::is_valid(p), "{p:?} should be invalid");
        }
        assert!(StoragePath::parse_dir("/").unwrap().is_root());
        assert!(StoragePath::parse("/").is_none());
    }

    #[test]
    fn parent_join_under() {
        let p = StoragePath::parse("/a/b/c").unwrap();
        assert_eq!(p.parent().as_str(), "/a/b");
        assert_eq!(p.base_name(), "c");
        assert_eq!(
            StoragePath::parse("/a").unwrap().parent(),
            StoragePath::root()
        );
        assert_eq!(StoragePath::root().join("x").unwrap().as_str(), "/x");
        assert_eq!(p.join("d/e").unwrap().as_str(), "/a/b/c/d/e");
        assert!(p.join("..").is_none());
        let a = StoragePath::parse("/a").unwrap();
        assert!(p.is_under(&a));
        assert!(!StoragePath::parse("/ab").unwrap().is_under(&a));
        assert!(!StoragePath::parse("/a-b/c").unwrap().is_under(&a));
        assert!(a.is_under(&a));
        assert!(a.is_under(&StoragePath::root()));
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
