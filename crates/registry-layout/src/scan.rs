//! Reading a registry's metadata: which repositories exist, their revisions, tags, layer links
//! and uploads, and the content of link files.

use std::time::SystemTime;

use regstore_driver_api::{Driver, FileInfo, WalkControl, WalkOptions};

use crate::digest::Digest;
use crate::error::{LayoutError, Result};
use crate::layout::Layout;

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

/// What `<repo>/_manifests` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoManifests {
    /// Every file named `link` below `revisions/`, in walk order.
    pub revisions: Vec<LinkFile>,
    /// Every directory below `tags/`, sorted by name.
    pub tags: Vec<Tag>,
}

/// Walks `from`, treating a missing directory as empty (the filesystem reports it, S3 cannot)
/// and going on past empty directories: regstore's filesystem driver reports an empty
/// directory met mid-walk (a revision whose link the registry API deleted) as `PathNotFound`
/// and stops the walk, so the walk is resumed after it with a start-after hint.
pub async fn walk_files(driver: &Driver, from: &str) -> Result<Vec<FileInfo>> {
    walk_all(driver, from, |_| WalkControl::Continue)
        .await
        .map(|v| v.into_iter().filter(|f| !f.is_dir).collect())
}

/// The resuming walk behind [`walk_files`]: every entry, with `control` deciding descent.
async fn walk_all(
    driver: &Driver,
    from: &str,
    control: impl Fn(&FileInfo) -> WalkControl + Send + Sync,
) -> Result<Vec<FileInfo>> {
    let mut out: Vec<FileInfo> = Vec::new();
    let mut seen: std::collections::HashSet<String> = Default::default();
    let mut options = WalkOptions::default();
    // Each resume passes at least one more path, so this ends; the bound is a backstop.
    for _ in 0..1_000_000 {
        let r = driver
            .walk(from, &options, |fi| {
                if seen.insert(fi.path.to_string()) {
                    out.push(fi.clone());
                }
                Ok(control(fi))
            })
            .await;
        match r {
            Ok(()) => return Ok(out),
            Err(regstore_driver_api::Error::PathNotFound { path, .. })
                if path.trim_end_matches('/') != from.trim_end_matches('/') =>
            {
                let Some(hint) = regstore_driver_api::StoragePath::parse(&path) else {
                    return Ok(out);
                };
                if options.start_after.as_ref() == Some(&hint) {
                    return Ok(out);
                }
                options = WalkOptions::start_after(hint);
            }
            Err(e) if e.is_not_found() => return Ok(out),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Lists the repositories: every directory below `repositories/` that has a `_manifests`,
/// `_layers` or `_uploads` child (distribution 2.8 looks only for `_layers`, 3.x only for
/// `_manifests`; any of them is safer: a repository is never missed). Entries whose name starts
/// with `_` are not descended into. Sorted by name.
///
/// The namespace is listed one directory level at a time, `jobs` directories at once, never
/// below a repository's `_…` directories: one listing per namespace directory (on S3 a
/// delimiter listing), instead of a walk over every link of every repository.
pub async fn list_repositories(
    driver: &Driver,
    layout: &Layout,
    jobs: usize,
) -> Result<Vec<String>> {
    use futures::{StreamExt, TryStreamExt};
    let base = layout.repositories();
    let prefix = format!("{base}/");
    let mut repos = Vec::new();
    let mut frontier = vec![base.clone()];
    while !frontier.is_empty() {
        let listed: Vec<(String, Vec<String>)> = futures::stream::iter(frontier)
            .map(|dir| async move {
                match driver.list(&dir).await {
                    Ok(children) => {
                        Ok((dir, children.into_iter().map(|c| c.to_string()).collect()))
                    }
                    // Missing, an empty directory (the filesystem reports it so), or a file.
                    Err(e) if e.is_not_found() || e.is_invalid_input() => Ok((dir, Vec::new())),
                    Err(e) => Err(LayoutError::from(e)),
                }
            })
            .buffer_unordered(jobs.max(1))
            .try_collect()
            .await?;
        frontier = Vec::new();
        for (dir, children) in listed {
            let name = |c: &String| c.rsplit('/').next().unwrap_or("").to_owned();
            if children
                .iter()
                .any(|c| matches!(name(c).as_str(), "_manifests" | "_layers" | "_uploads"))
            {
                if let Some(rel) = dir.strip_prefix(&prefix) {
                    repos.push(rel.to_owned());
                }
            }
            frontier.extend(children.into_iter().filter(|c| !name(c).starts_with('_')));
        }
    }
    repos.sort();
    repos.dedup();
    Ok(repos)
}

fn link_file(fi: &FileInfo, alg: &str, hex: &str) -> LinkFile {
    LinkFile {
        path: fi.path.to_string(),
        dir_digest: Digest::from_parts(alg, hex).ok(),
        mod_time: fi.mod_time,
        etag: fi.etag.clone(),
    }
}

/// Scans `<repo>/_manifests`: revision links and tags.
pub async fn scan_manifests(driver: &Driver, layout: &Layout, repo: &str) -> Result<RepoManifests> {
    let base = layout.manifests(repo);
    let files = walk_files(driver, &base).await?;
    let mut out = RepoManifests::default();
    let mut tags: std::collections::BTreeMap<String, Tag> = Default::default();
    for fi in &files {
        let Some(rel) = fi.path.as_str().strip_prefix(&base) else {
            continue;
        };
        let parts: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["revisions", .., "link"] => {
                let lf = match parts.as_slice() {
                    ["revisions", alg, hex, "link"] => link_file(fi, alg, hex),
                    _ => LinkFile {
                        path: fi.path.to_string(),
                        dir_digest: None,
                        mod_time: fi.mod_time,
                        etag: fi.etag.clone(),
                    },
                };
                out.revisions.push(lf);
            }
            ["tags", tag, "current", "link"] => {
                let t = tags.entry((*tag).to_owned()).or_default();
                t.current = Some(LinkFile {
                    path: fi.path.to_string(),
                    dir_digest: None,
                    mod_time: fi.mod_time,
                    etag: fi.etag.clone(),
                });
            }
            ["tags", tag, "index", alg, hex, "link"] => {
                if let Ok(d) = Digest::from_parts(alg, hex) {
                    tags.entry((*tag).to_owned()).or_default().index.push(d);
                }
            }
            _ => {}
        }
    }
    out.tags = tags
        .into_iter()
        .map(|(name, mut t)| {
            t.name = name;
            t
        })
        .collect();
    Ok(out)
}

/// Scans `<repo>/_layers`: every `<alg>/<hex>/link`.
pub async fn scan_layers(driver: &Driver, layout: &Layout, repo: &str) -> Result<Vec<LinkFile>> {
    let base = layout.layers(repo);
    let files = walk_files(driver, &base).await?;
    Ok(files
        .iter()
        .filter_map(|fi| {
            let rel = fi.path.as_str().strip_prefix(&base)?;
            match rel
                .trim_start_matches('/')
                .split('/')
                .collect::<Vec<_>>()
                .as_slice()
            {
                [alg, hex, "link"] => Some(link_file(fi, alg, hex)),
                _ => None,
            }
        })
        .collect())
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

/// The shard directories to enumerate blobs from: every `blobs/<alg>/<xx>` (distribution
/// shards by the first two hex digits), so they can be walked concurrently.
pub async fn blob_shards(driver: &Driver, layout: &Layout) -> Result<Vec<String>> {
    let mut shards = Vec::new();
    let algs = match driver.list(&layout.blobs()).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(shards),
        Err(e) => return Err(e.into()),
    };
    for alg in algs {
        match driver.list(alg.as_str()).await {
            Ok(v) => shards.extend(v.into_iter().map(|p| p.to_string())),
            Err(e) if e.is_not_found() => {}
            // `blobs/<file>`: a stray object, not a shard; nothing to enumerate in it.
            Err(e) if e.is_invalid_input() => {}
            Err(e) => return Err(e.into()),
        }
    }
    shards.sort();
    Ok(shards)
}

/// Every blob of one shard, and the paths of files named `data` whose path does not decode
/// (callers decide: gc stops on them, fsck reports them). Other files are ignored.
pub async fn scan_shard(
    driver: &Driver,
    layout: &Layout,
    shard: &str,
) -> Result<(Vec<BlobFile>, Vec<String>)> {
    let files = walk_files(driver, shard).await?;
    let mut out = Vec::with_capacity(files.len());
    let mut bad = Vec::new();
    for fi in files {
        if fi.path.base_name() != "data" {
            continue;
        }
        match layout.digest_of_blob_path(fi.path.as_str()) {
            Some(digest) => out.push(BlobFile {
                digest,
                size: fi.size,
                mod_time: fi.mod_time,
            }),
            None => bad.push(fi.path.to_string()),
        }
    }
    Ok((out, bad))
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
