//! The request and answer types of [`super::S3Api`]: the driver's own small structs, so no
//! rusoto type leaves the seam.

use std::time::SystemTime;

use regstore_driver_api::ByteStream;

use crate::config::S3Config;

/// Headers every object-creating request carries (PutObject, CreateMultipartUpload,
/// CopyObject): content type, canned ACL, server-side encryption, KMS key id, storage class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteHeaders {
    pub(crate) content_type: String,
    /// Canned ACL; `None` sends no `x-amz-acl` (buckets with ACLs disabled).
    pub(crate) acl: Option<String>,
    /// `AES256` or `aws:kms`; `None` when encryption is off.
    pub(crate) sse: Option<String>,
    /// KMS key id, only together with `aws:kms`.
    pub(crate) kms_key_id: Option<String>,
    /// Storage class; `None` sends no header (`storageclass: NONE`).
    pub(crate) storage_class: Option<String>,
}

impl WriteHeaders {
    /// The headers `config` asks for. A KMS key id is sent only with encryption on: S3 rejects
    /// a key id without `aws:kms`.
    pub(crate) fn from_config(config: &S3Config) -> Self {
        let kms_key_id = config
            .key_id
            .clone()
            .filter(|k| config.encrypt && !k.is_empty());
        let sse = config.encrypt.then(|| {
            if kms_key_id.is_some() {
                "aws:kms".to_owned()
            } else {
                "AES256".to_owned()
            }
        });
        WriteHeaders {
            content_type: "application/octet-stream".to_owned(),
            acl: config.object_acl.clone(),
            sse,
            kms_key_id,
            storage_class: config.storage_class.clone(),
        }
    }
}

/// What HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectHead {
    pub(crate) size: u64,
    pub(crate) last_modified: Option<SystemTime>,
    pub(crate) sse: Option<String>,
    pub(crate) kms_key_id: Option<String>,
    pub(crate) storage_class: Option<String>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) last_modified: Option<SystemTime>,
    /// The ETag without quotes, when listed.
    pub(crate) etag: Option<String>,
}

/// Arguments of one ListObjectsV2 request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListRequest {
    pub(crate) prefix: String,
    pub(crate) delimiter: Option<String>,
    pub(crate) start_after: Option<String>,
    pub(crate) continuation_token: Option<String>,
    pub(crate) max_keys: Option<i64>,
}

/// One page of ListObjectsV2. `next_token` is `Some` exactly when the listing continues.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListPage {
    pub(crate) objects: Vec<ListedObject>,
    pub(crate) common_prefixes: Vec<String>,
    pub(crate) next_token: Option<String>,
}

/// One in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadInfo {
    pub(crate) key: String,
    pub(crate) upload_id: String,
    pub(crate) initiated: Option<SystemTime>,
}

/// One page of ListMultipartUploads; `next` holds the (key, upload id) markers of the next.
#[derive(Debug, Clone, Default)]
pub(crate) struct UploadsPage {
    pub(crate) uploads: Vec<UploadInfo>,
    pub(crate) next: Option<(String, String)>,
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartInfo {
    pub(crate) number: i64,
    pub(crate) etag: String,
    pub(crate) size: u64,
}

/// One page of ListParts; `next_marker` is the part-number marker of the next page.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartsPage {
    pub(crate) parts: Vec<PartInfo>,
    pub(crate) next_marker: Option<i64>,
}

/// A key that DeleteObjects could not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeleteFailure {
    pub(crate) key: String,
    pub(crate) code: String,
    pub(crate) message: String,
}

/// `Content-Range: bytes <start>-<end>/<total>` of a ranged answer (`total` `None` for `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) start: u64,
    /// Last byte sent, inclusive.
    pub(crate) end: u64,
    pub(crate) total: Option<u64>,
}

impl ContentRange {
    /// Parses the header value; `None` for anything but a well-formed, ordered byte range.
    pub(crate) fn parse(v: &str) -> Option<Self> {
        let rest = v.trim().strip_prefix("bytes ")?;
        let (span, total) = rest.split_once('/')?;
        let (a, b) = span.trim().split_once('-')?;
        let start: u64 = a.trim().parse().ok()?;
        let end: u64 = b.trim().parse().ok()?;
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse::<u64>().ok()?),
        };
        // `end == u64::MAX` would make the range one byte longer than any length can say
        // (`end + 1` overflows): no object has such a byte, so the header is malformed.
        if end < start || end == u64::MAX || total.is_some_and(|t| end >= t) {
            return None;
        }
        Some(ContentRange { start, end, total })
    }
}

/// A successful GetObject.
pub(crate) struct GetAnswer {
    /// `Content-Length` of this answer's body.
    pub(crate) content_length: Option<u64>,
    /// The bytes sent; `None` when the answer carries no `Content-Range` (the server ignored
    /// `Range` and sent the whole object from byte 0).
    pub(crate) range: Option<ContentRange>,
    /// The object's ETag, quotes kept as sent.
    pub(crate) etag: Option<String>,
    pub(crate) body: ByteStream,
}

impl std::fmt::Debug for GetAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetAnswer")
            .field("content_length", &self.content_length)
            .field("range", &self.range)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// One grant of an object ACL (for header tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclGrant {
    /// Grantee URI (groups such as AllUsers) or canonical id.
    pub(crate) grantee: String,
    pub(crate) permission: String,
}
