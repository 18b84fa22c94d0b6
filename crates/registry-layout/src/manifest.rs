//! What a stored manifest references, decided the way distribution's manifest store decides
//! it (by `schemaVersion` and `mediaType` in the content), parsed with `oci-spec`'s types.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::digest::Digest;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-arch).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-arch).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The kind of a parsed manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// Docker schema 1 (signed or not): references its `fsLayers`.
    Schema1,
    /// An image manifest (Docker schema 2 or OCI): references its config and layers.
    Image,
    /// A manifest list or OCI index: references child manifests.
    Index,
}

/// One reference of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The referenced content.
    pub digest: Digest,
    /// The reference is a child manifest of an index (so it has references of its own).
    pub is_manifest: bool,
    /// The descriptor lists external `urls` (a foreign layer the registry may not hold).
    pub foreign: bool,
}

/// A manifest's kind and references, in document order (duplicates kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// What kind of manifest it is.
    pub kind: ManifestKind,
    /// What it references.
    pub references: Vec<Reference>,
}

/// Why stored content is not a manifest distribution would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or a JSON document of the wrong shape for its declared type.
    #[error("unparseable manifest: {0}")]
    Syntax(String),
    /// `schemaVersion` is neither 1 nor 2.
    #[error("unrecognized manifest schema version {0}")]
    SchemaVersion(String),
    /// A schema 2 document with a media type distribution does not store.
    #[error("unrecognized manifest content type {0}")]
    MediaType(String),
}

#[derive(Deserialize)]
struct Schema1 {
    #[serde(rename = "fsLayers")]
    fs_layers: Vec<FsLayer>,
}

#[derive(Deserialize)]
struct FsLayer {
    #[serde(rename = "blobSum")]
    blob_sum: String,
}

fn reference(d: &Descriptor, is_manifest: bool) -> Result<Reference, ManifestError> {
    Ok(Reference {
        digest: Digest::parse(d.digest().as_ref())
            .map_err(|e| ManifestError::Syntax(e.to_string()))?,
        is_manifest,
        foreign: d.urls().as_ref().is_some_and(|u| !u.is_empty()),
    })
}

impl Manifest {
    /// Parses stored manifest bytes. The rules are distribution's: `schemaVersion` 1 →
    /// schema 1 (`fsLayers[].blobSum`); 2 with the Docker or OCI manifest media type → config
    /// and layers; 2 with the manifest-list or OCI-index media type → `manifests[]`; 2 without
    /// a media type → an index when `manifests` is present and not null, else an image
    /// manifest; anything else is an error. The content's own digest is not checked here.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let syntax = |e: serde_json::Error| ManifestError::Syntax(e.to_string());
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(syntax)?;
        let version = v.get("schemaVersion");
        match version.and_then(|s| s.as_u64()) {
            Some(1) => {
                let m: Schema1 = serde_json::from_value(v).map_err(syntax)?;
                let references = m
                    .fs_layers
                    .iter()
                    .map(|l| {
                        Ok(Reference {
                            digest: Digest::parse(&l.blob_sum)
                                .map_err(|e| ManifestError::Syntax(e.to_string()))?,
                            is_manifest: false,
                            foreign: false,
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Manifest {
                    kind: ManifestKind::Schema1,
                    references,
                })
            }
            Some(2) => {
                let media_type = match v.get("mediaType") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => return Err(ManifestError::MediaType(other.to_string())),
                };
                let is_index = match media_type.as_deref() {
                    Some(DOCKER_MANIFEST | OCI_MANIFEST) => false,
                    Some(DOCKER_MANIFEST_LIST | OCI_INDEX) => true,
                    Some(other) => return Err(ManifestError::MediaType(other.to_owned())),
                    None => v.get("manifests").is_some_and(|m| !m.is_null()),
                };
                if is_index {
                    let idx: ImageIndex = serde_json::from_value(v).map_err(syntax)?;
                    let references = idx
                        .manifests()
                        .iter()
                        .map(|d| reference(d, true))
                        .collect::<Result<_, _>>()?;
                    Ok(Manifest {
                        kind: ManifestKind::Index,
                        references,
                    })
                } else {
                    let m: ImageManifest = serde_json::from_value(v).map_err(syntax)?;
                    let mut references = vec![reference(m.config(), false)?];
                    for l in m.layers() {
                        references.push(reference(l, false)?);
                    }
                    Ok(Manifest {
                        kind: ManifestKind::Image,
                        references,
                    })
                }
            }
            _ => Err(ManifestError::SchemaVersion(
                version.map_or_else(|| "0".to_owned(), |v| v.to_string()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::sha256_of(s.as_bytes()).to_string()
    }

    #[test]
    fn image_index_schema1_and_errors() {
        let img = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"{}"}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1,"digest":"{}"}},
                      {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":1,"digest":"{}","urls":["https://x.invalid/l"]}}]}}"#,
            d("c"),
            d("l"),
            d("f")
        );
        let m = Manifest::parse(img.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        let refs: Vec<_> = m.references.iter().map(|r| r.digest.to_string()).collect();
        assert_eq!(refs, vec![d("c"), d("l"), d("f")]);
        assert!(m.references[2].foreign && !m.references[1].foreign);

        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            d("a")
        );
        let m = Manifest::parse(idx.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert!(m.references[0].is_manifest);

        let s1 = format!(
            r#"{{"schemaVersion":1,"name":"r","tag":"t","fsLayers":[{{"blobSum":"{0}"}},{{"blobSum":"{0}"}}]}}"#,
            d("l")
        );
        let m = Manifest::parse(s1.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Schema1);
        assert_eq!(m.references.len(), 2);

        assert!(matches!(
            Manifest::parse(b"{}"),
            Err(ManifestError::SchemaVersion(_))
        ));
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#),
            Err(ManifestError::MediaType(_))
        ));
        assert!(matches!(
            Manifest::parse(b"not json"),
            Err(ManifestError::Syntax(_))
        ));
        // `manifests` of the wrong type: distribution panics; we report it.
        assert!(Manifest::parse(br#"{"schemaVersion":2,"manifests":7}"#).is_err());
        // a bad digest inside a reference is an error, not a silent skip
        assert!(
            Manifest::parse(br#"{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:XYZ"}]}"#)
                .is_err()
        );
    }
}
