//! Hooks for regstore's own tests, examples and fuzz targets. **Not part of the supported
//! API**: hidden from the documentation, outside semver, changed or removed in any release.
//!
//! They live here rather than on [`S3Driver`] so that the supported API is exactly what the
//! documentation shows; a test opts in with `use regstore_driver_s3::test_support::*`.

use async_trait::async_trait;
use bytes::Bytes;
use regstore_driver_api::{Result, StoragePath};

use crate::S3Driver;

pub use crate::listxml::{fuzz_parse_list, fuzz_rusoto_parse_list, ListXmlFuzzOutput};
pub use crate::sigv2::{fuzz_sign_request, SigV2FuzzInput, SigV2FuzzOutput};

/// What [`S3DriverTestExt::inspect_object`] reports about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInspection {
    /// `x-amz-server-side-encryption` of the object.
    pub sse: Option<String>,
    /// `x-amz-server-side-encryption-aws-kms-key-id` of the object.
    pub kms_key_id: Option<String>,
    /// `x-amz-storage-class` of the object (S3 omits it for STANDARD).
    pub storage_class: Option<String>,
    /// The ACL's grants as `(grantee, permission)`; `None` when the server refused to answer.
    pub grants: Option<Vec<(String, String)>>,
}

/// Test-only operations on an [`S3Driver`], as methods so call sites read like driver calls.
#[async_trait]
pub trait S3DriverTestExt {
    /// Reads back the encryption, storage class and ACL S3 recorded for `path` (header tests).
    async fn inspect_object(&self, path: &StoragePath) -> Result<ObjectInspection>;

    /// Stores `data` under the raw `relative_key` below the root directory, bypassing path
    /// validation (tests use it for folder markers such as `dir/`).
    async fn put_raw_key(&self, relative_key: &str, data: Bytes) -> Result<()>;

    /// The keys of every writer tail record under the root directory (see the writer module:
    /// a closed writer keeps the bytes after its last full part there).
    async fn writer_tail_keys(&self) -> Result<Vec<String>>;
}

#[async_trait]
impl S3DriverTestExt for S3Driver {
    async fn inspect_object(&self, path: &StoragePath) -> Result<ObjectInspection> {
        let inner = &self.inner;
        let key = inner.keys.key(path);
        let head = inner
            .api
            .head_object(&key)
            .await
            .map_err(|e| e.into_error(path))?;
        let grants = inner.api.get_object_acl(&key).await.ok().map(|g| {
            g.into_iter()
                .map(|g| (g.grantee, g.permission))
                .collect::<Vec<_>>()
        });
        Ok(ObjectInspection {
            sse: head.sse,
            kms_key_id: head.kms_key_id,
            storage_class: head.storage_class,
            grants,
        })
    }

    async fn put_raw_key(&self, relative_key: &str, data: Bytes) -> Result<()> {
        let inner = &self.inner;
        let key = format!("{}{}", inner.keys.root(), relative_key);
        inner
            .api
            .put_object(&key, data, &inner.headers)
            .await
            .map_err(|e| e.into_error(relative_key))
    }

    async fn writer_tail_keys(&self) -> Result<Vec<String>> {
        S3Driver::writer_tail_keys(self).await
    }
}
