//! `regstore-bench gc-fill`: a synthetic registry in distribution's layout, written directly
//! through regstore's S3 driver, for the garbage-collection benchmark (`cargo xtask bench-gc`).
//!
//! Per repository (`bench/r00000` …), 20 blobs and a known garbage set:
//! * layers `L0`…`L7`, configs `C0`…`C4`, manifests `M0`…`M4` (Docker schema 2), orphans
//!   `O0`, `O1` (uploaded, linked in `_layers`, referenced by nothing);
//! * `M0` = config `C0` + `L0 L1`, `M1` = `C1` + `L2 L3`, `M2` = `C2` + `L4 L5`,
//!   `M3` = `C3` + `L6 L0`, `M4` = `C4` + `L1 L7`;
//! * tags `t0`…`t3` point at `M0`…`M3`; `M4` is untagged (in `t0`'s history: the tag moved);
//! * `_layers` links for every layer, config and orphan (15).
//!
//! So without `-m` the orphans are garbage (2 of 20 blobs, 10 %); with `-m` also `M4`, `C4` and
//! `L7` (5 of 20, 25 %) and one manifest per repository. 49 objects per repository. Every blob's
//! path names the SHA-256 of its content, so distribution reads it as it would a real one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::{StorageDriver, StoragePath};
use serde::Serialize;

/// Blobs per repository in the synthetic registry.
pub const BLOBS_PER_REPO: usize = 20;

/// What was written and what a collection should find.
#[derive(Debug, Serialize)]
pub struct FillReport {
    /// Repositories.
    pub repositories: usize,
    /// Blobs (including the manifests' own).
    pub blobs: usize,
    /// Manifest revisions.
    pub manifests: usize,
    /// Every object written.
    pub objects: u64,
    /// Blobs garbage without `-m`.
    pub garbage_blobs: usize,
    /// Blobs garbage with `-m`.
    pub garbage_blobs_untagged: usize,
    /// Manifests garbage with `-m`.
    pub garbage_manifests_untagged: usize,
    /// Blobs a collection with `-m` marks.
    pub marked_untagged: usize,
    /// Seconds the fill took.
    pub seconds: f64,
}

fn sha256_hex(b: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

struct Blob {
    hex: String,
    content: Bytes,
}

impl Blob {
    fn new(content: Vec<u8>) -> Blob {
        Blob {
            hex: sha256_hex(&content),
            content: Bytes::from(content),
        }
    }
    fn descriptor(&self, media_type: &str) -> serde_json::Value {
        serde_json::json!({
            "mediaType": media_type,
            "size": self.content.len(),
            "digest": format!("sha256:{}", self.hex),
        })
    }
}

/// Unique, deterministic bytes of `len` for blob `name` of repository `repo`.
fn filler(repo: usize, name: &str, len: usize) -> Vec<u8> {
    let mut v = format!("regstore gc bench {repo} {name} ").into_bytes();
    let mut i = 0u8;
    while v.len() < len {
        v.push(b'a' + i % 26);
        i = i.wrapping_add(7);
    }
    v
}

/// The objects of repository `r` under `root` (`<root>/docker/registry/v2`): (path, content).
fn repo_objects(root: &str, r: usize) -> Vec<(String, Bytes)> {
    let v2 = format!("{}/docker/registry/v2", root.trim_end_matches('/'));
    let name = format!("bench/r{r:05}");
    let layers: Vec<Blob> = (0..8)
        .map(|i| Blob::new(filler(r, &format!("L{i}"), 1024)))
        .collect();
    let configs: Vec<Blob> = (0..5)
        .map(|i| Blob::new(filler(r, &format!("C{i}"), 300)))
        .collect();
    let orphans: Vec<Blob> = (0..2)
        .map(|i| Blob::new(filler(r, &format!("O{i}"), 1024)))
        .collect();
    let uses: [[usize; 2]; 5] = [[0, 1], [2, 3], [4, 5], [6, 0], [1, 7]];
    let manifests: Vec<Blob> = uses
        .iter()
        .enumerate()
        .map(|(i, ls)| {
            let doc = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": configs[i].descriptor("application/vnd.docker.container.image.v1+json"),
                "layers": ls.iter().map(|l| layers[*l]
                    .descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip"))
                    .collect::<Vec<_>>(),
            });
            Blob::new(serde_json::to_vec_pretty(&doc).unwrap_or_default())
        })
        .collect();
    let link = |b: &Blob| Bytes::from(format!("sha256:{}", b.hex));
    let repo = format!("{v2}/repositories/{name}");
    let mut out = Vec::new();
    for b in layers
        .iter()
        .chain(&configs)
        .chain(&orphans)
        .chain(&manifests)
    {
        out.push((
            format!("{v2}/blobs/sha256/{}/{}/data", &b.hex[..2], b.hex),
            b.content.clone(),
        ));
    }
    for b in layers.iter().chain(&configs).chain(&orphans) {
        out.push((format!("{repo}/_layers/sha256/{}/link", b.hex), link(b)));
    }
    for m in &manifests {
        out.push((
            format!("{repo}/_manifests/revisions/sha256/{}/link", m.hex),
            link(m),
        ));
    }
    for (t, m) in manifests.iter().take(4).enumerate() {
        let tag = format!("{repo}/_manifests/tags/t{t}");
        out.push((format!("{tag}/current/link"), link(m)));
        out.push((format!("{tag}/index/sha256/{}/link", m.hex), link(m)));
    }
    out.push((
        format!(
            "{repo}/_manifests/tags/t0/index/sha256/{}/link",
            manifests[4].hex
        ),
        link(&manifests[4]),
    ));
    out
}

/// Writes the synthetic registry of `blobs` blobs (a multiple of [`BLOBS_PER_REPO`]) below
/// `root`, `inflight` puts at once.
pub async fn fill(
    driver: &dyn StorageDriver,
    root: &str,
    blobs: usize,
    inflight: usize,
) -> Result<FillReport> {
    if blobs == 0 || blobs % BLOBS_PER_REPO != 0 {
        bail!("--blobs {blobs}: must be a positive multiple of {BLOBS_PER_REPO}");
    }
    let repos = blobs / BLOBS_PER_REPO;
    let t = Instant::now();
    let written = AtomicU64::new(0);
    futures::stream::iter((0..repos).flat_map(|r| repo_objects(root, r)))
        .map(|(path, content)| {
            let written = &written;
            async move {
                let p = StoragePath::parse(&path).ok_or_else(|| anyhow!("bad path {path}"))?;
                driver
                    .put_content(&p, content)
                    .await
                    .with_context(|| format!("put {path}"))?;
                written.fetch_add(1, Ordering::Relaxed);
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(inflight.max(1))
        .try_collect::<()>()
        .await?;
    Ok(FillReport {
        repositories: repos,
        blobs,
        manifests: repos * 5,
        objects: written.load(Ordering::Relaxed),
        garbage_blobs: repos * 2,
        garbage_blobs_untagged: repos * 5,
        garbage_manifests_untagged: repos,
        marked_untagged: repos * 15,
        seconds: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_has_49_distinct_objects_and_true_digests() {
        let objs = repo_objects("/x", 3);
        assert_eq!(objs.len(), 49);
        let paths: std::collections::HashSet<&String> = objs.iter().map(|(p, _)| p).collect();
        assert_eq!(paths.len(), 49);
        for (p, c) in &objs {
            if let Some(rest) = p.strip_suffix("/data") {
                assert!(rest.ends_with(&sha256_hex(c)), "{p}");
            }
        }
        // Different repositories share no blob.
        let other = repo_objects("/x", 4);
        assert!(other.iter().all(|(p, _)| !paths.contains(p)));
    }
}
