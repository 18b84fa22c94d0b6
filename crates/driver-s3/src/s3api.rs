//! The seam between the driver and rusoto_s3.
//!
//! Every S3 call the driver makes goes through [`S3Api`], which takes and returns this module's
//! own small types. rusoto's request/response structs and errors never leave this file (errors
//! leave as [`S3Error`]), so the driver logic reads as S3 semantics, not SDK plumbing, and the
//! SDK could be swapped here alone. Answers that lack something S3 promises (an ETag, an upload
//! id, a continuation token on a truncated page) become typed errors, never panics.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::{ByteStream, Error};
use rusoto_s3::S3 as _;

use crate::call::{Call, Operation};
use crate::config::S3Config;
use crate::connection::S3Connection;
use crate::error::{S3Error, DRIVER};
use crate::listxml;
use crate::retry::{jitter_unit, RetryPolicy};
use crate::s3time::parse_time;
use crate::stats::RequestStats;

mod types;
pub(crate) use types::*;

/// Per-key DeleteObjects error codes that say "try again" rather than "no": the server's
/// own trouble or throttling, never a permission or a malformed key.
fn transient_delete_code(code: &str) -> bool {
    matches!(
        code,
        "InternalError" | "ServiceUnavailable" | "SlowDown" | "RequestTimeout"
    )
}

/// A streaming request body made of `pieces`, handed to rusoto without copying them.
fn body(pieces: Vec<Bytes>) -> (rusoto_core::ByteStream, usize) {
    let len = pieces.iter().map(Bytes::len).sum();
    let stream = rusoto_core::ByteStream::new_with_size(
        futures::stream::iter(pieces.into_iter().map(Ok)),
        len,
    );
    (stream, len)
}

/// Bodies at least this long are digested on tokio's blocking pool rather than on the task's
/// worker thread (MD5 runs at roughly 600 MB/s, so this is about 0.4 ms of CPU; a 5 MiB part
/// takes several ms, which would hold up every other task on that worker).
const MD5_OFF_THREAD: usize = 256 << 10;

/// `Content-MD5` of a body sent as `pieces`: base64 of the MD5 of their concatenation,
/// digested piece by piece (nothing is joined or copied).
pub(crate) fn content_md5(pieces: &[Bytes]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    let mut md5 = md5::Md5::new();
    for p in pieces {
        md5.update(p);
    }
    base64::engine::general_purpose::STANDARD.encode(md5.finalize())
}

/// [`content_md5`] of `pieces`, on the blocking pool for a large body so the runtime's worker
/// keeps driving other requests (the writer's parts in flight) meanwhile. Computed once per
/// request: the dispatcher's retries resend the same pieces with the same header.
async fn content_md5_of(pieces: &[Bytes]) -> String {
    let len: usize = pieces.iter().map(Bytes::len).sum();
    if len < MD5_OFF_THREAD {
        return content_md5(pieces);
    }
    // Cloning `Bytes` shares the buffers.
    let shared = pieces.to_vec();
    match tokio::task::spawn_blocking(move || content_md5(&shared)).await {
        Ok(digest) => digest,
        // The blocking pool is shutting down (or the closure panicked): digest here instead.
        Err(_) => content_md5(pieces),
    }
}

/// A length reported by S3 (`i64`) as `u64`; negative is malformed.
fn length(operation: &'static str, what: &str, v: Option<i64>) -> Result<u64, S3Error> {
    let v = v.ok_or_else(|| S3Error::malformed(operation, format!("answer has no {what}")))?;
    u64::try_from(v).map_err(|_| S3Error::malformed(operation, format!("negative {what}: {v}")))
}

/// The S3 client of one driver, bound to its bucket.
pub(crate) struct S3Api {
    conn: S3Connection,
    bucket: String,
}

impl std::fmt::Debug for S3Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Api")
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl S3Api {
    /// Wraps a connection.
    pub(crate) fn new(conn: S3Connection) -> Self {
        let bucket = conn.config.bucket.clone();
        S3Api { conn, bucket }
    }

    /// The configuration the connection was built from.
    pub(crate) fn config(&self) -> &Arc<S3Config> {
        &self.conn.config
    }

    /// Request counters of the connection.
    pub(crate) fn stats(&self) -> Arc<RequestStats> {
        Arc::clone(&self.conn.stats)
    }

    /// The connection (for presigning).
    pub(crate) fn connection(&self) -> &S3Connection {
        &self.conn
    }

    /// `bucket/key` as CopySource wants it. Keys are made of `[A-Za-z0-9._/-]` only (paths
    /// are validated), so nothing needs escaping.
    fn copy_source(&self, key: &str) -> String {
        format!("{}/{}", self.bucket, key)
    }

    /// PutObject of `data` at `key` with `headers`.
    ///
    /// The body carries its `Content-MD5` (signed with either signature version), so a body
    /// changed on the way is refused by the server (`BadDigest`) instead of stored.
    pub(crate) async fn put_object(
        &self,
        key: &str,
        data: Bytes,
        headers: &WriteHeaders,
    ) -> Result<(), S3Error> {
        const OP: &str = "PutObject";
        // The dispatcher may retry only a body it can send again: register the `Bytes`.
        let replay = vec![data.clone()];
        let md5 = content_md5_of(&replay).await;
        let (body, len) = body(vec![data]);
        let req = rusoto_s3::PutObjectRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_length: Some(len as i64),
            content_md5: Some(md5),
            body: Some(body),
            content_type: Some(headers.content_type.clone()),
            acl: headers.acl.clone(),
            server_side_encryption: headers.sse.clone(),
            ssekms_key_id: headers.kms_key_id.clone(),
            storage_class: headers.storage_class.clone(),
            ..Default::default()
        };
        call(
            OP,
            self.conn
                .client(Call::new(Operation::PutObject).with_body(replay))
                .put_object(req),
        )
        .await?;
        Ok(())
    }

    /// GetObject of the whole object, without a `Range` header: every server answers a plain
    /// GET the same way, empty objects included (`bytes=0-` on an empty object is a 416). A
    /// body that breaks is still resumed from its `Content-Length` by the dispatcher. The
    /// body is streamed as it arrives; stream errors become `Backend` errors about `path`.
    /// `Ok(None)` only if a server answers 416 anyway.
    pub(crate) async fn get_object(
        &self,
        key: &str,
        path: &str,
    ) -> Result<Option<(Option<u64>, ByteStream)>, S3Error> {
        Ok(self
            .get(key, None, None, path)
            .await?
            .map(|a| (a.content_length, a.body)))
    }

    /// GetObject of bytes `start..=end` (`end` `None`: to the end of the object), only if the
    /// object's ETag is `if_match` when given. `Ok(None)` when S3 says the range is
    /// unsatisfiable (416). A failed precondition is an error with status 412 (see
    /// [`S3Error::is_precondition_failed`]). The answer says which bytes came
    /// ([`GetAnswer::range`] is `None` when the server ignored `Range` and sent the whole
    /// object). A body that breaks is resumed by the dispatcher with the same `If-Match`
    /// and the answer's own range end, so this composes with the window reader.
    pub(crate) async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
        if_match: Option<&str>,
        path: &str,
    ) -> Result<Option<GetAnswer>, S3Error> {
        let range = match end {
            Some(end) => format!("bytes={start}-{end}"),
            None => format!("bytes={start}-"),
        };
        self.get(key, Some(range), if_match, path).await
    }

    /// GetObject with an optional `Range` and `If-Match`; see [`Self::get_range`].
    async fn get(
        &self,
        key: &str,
        range: Option<String>,
        if_match: Option<&str>,
        path: &str,
    ) -> Result<Option<GetAnswer>, S3Error> {
        const OP: &str = "GetObject";
        let req = rusoto_s3::GetObjectRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            range,
            if_match: if_match.map(str::to_owned),
            ..Default::default()
        };
        let out = match call(
            OP,
            self.conn
                .client(Call::new(Operation::GetObject))
                .get_object(req),
        )
        .await
        {
            Ok(out) => out,
            Err(e) => {
                return if e.is_invalid_range() {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let content_length = out.content_length.and_then(|l| u64::try_from(l).ok());
        let range = match out.content_range.as_deref() {
            Some(v) => Some(ContentRange::parse(v).ok_or_else(|| {
                S3Error::malformed(OP, format!("unreadable Content-Range {v:?}"))
            })?),
            None => None,
        };
        let etag = out
            .e_tag
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty());
        let body: ByteStream = match out.body {
            Some(b) => {
                let path = path.to_owned();
                Box::pin(b.map_err(move |e| {
                    Error::backend(
                        DRIVER,
                        Some(&path),
                        S3Error {
                            operation: OP,
                            class: crate::error::ErrorClass::Transport,
                            status: None,
                            code: None,
                            message: format!("reading body: {e}"),
                        },
                    )
                }))
            }
            None => Box::pin(futures::stream::empty()),
        };
        Ok(Some(GetAnswer {
            content_length,
            range,
            etag,
            body,
        }))
    }

    /// HeadObject.
    pub(crate) async fn head_object(&self, key: &str) -> Result<ObjectHead, S3Error> {
        const OP: &str = "HeadObject";
        let req = rusoto_s3::HeadObjectRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            ..Default::default()
        };
        let out = call(
            OP,
            self.conn
                .client(Call::new(Operation::HeadObject))
                .head_object(req),
        )
        .await?;
        Ok(ObjectHead {
            size: length(OP, "Content-Length", out.content_length)?,
            last_modified: out.last_modified.as_deref().and_then(parse_time),
            sse: out.server_side_encryption,
            kms_key_id: out.ssekms_key_id,
            storage_class: out.storage_class,
        })
    }

    /// One page of ListObjectsV2. Counts come from the entries, never from `KeyCount` (some
    /// servers omit it).
    ///
    /// The request is built here exactly as rusoto_s3 builds it and goes through the same
    /// not-signing client and dispatcher (addressing, signing, retries, counted as
    /// `ListObjectsV2`); an error answer is mapped by rusoto_s3's own error reader as before.
    /// Only a successful answer is read by our [`listxml`] reader instead of rusoto_s3's
    /// deserializer, which cost about 12.5 ms per 1000-key page — most of a walk's time.
    pub(crate) async fn list_objects_v2(&self, r: ListRequest) -> Result<ListPage, S3Error> {
        use rusoto_core::param::{Params, ServiceParams};
        use rusoto_core::RusotoError;
        use rusoto_s3::ListObjectsV2Error;
        const OP: &str = "ListObjectsV2";
        let mut request = rusoto_core::signature::SignedRequest::new(
            "GET",
            "s3",
            self.conn.region(),
            &format!("/{}", self.bucket),
        );
        let mut params = Params::new();
        if let Some(t) = &r.continuation_token {
            params.put("continuation-token", t);
        }
        if let Some(d) = &r.delimiter {
            params.put("delimiter", d);
        }
        if let Some(m) = &r.max_keys {
            params.put("max-keys", m);
        }
        params.put("prefix", &r.prefix);
        if let Some(s) = &r.start_after {
            params.put("start-after", s);
        }
        params.put("list-type", "2");
        request.set_params(params);
        let mut response = self
            .conn
            .raw(Call::new(Operation::ListObjectsV2))
            .sign_and_dispatch(request)
            .await
            .map_err(|e| S3Error::from_rusoto(OP, RusotoError::<ListObjectsV2Error>::from(e)))?;
        if !response.status.is_success() {
            let buffered = response.buffer().await.map_err(|e| {
                S3Error::from_rusoto(OP, RusotoError::<ListObjectsV2Error>::HttpDispatch(e))
            })?;
            return Err(S3Error::from_rusoto(
                OP,
                ListObjectsV2Error::from_response(buffered),
            ));
        }
        let body = read_capped(OP, response.body, listxml::MAX_BODY).await?;
        let out = listxml::parse(&body).map_err(|e| S3Error::malformed(OP, e.to_string()))?;
        let mut objects = Vec::with_capacity(out.contents.len());
        for o in out.contents {
            let key = o
                .key
                .ok_or_else(|| S3Error::malformed(OP, "listed object without a key"))?;
            objects.push(ListedObject {
                size: o.size.unwrap_or(0),
                last_modified: o.last_modified.as_deref().and_then(parse_time),
                etag: o.etag,
                key,
            });
        }
        let next_token = if out.is_truncated == Some(true) {
            Some(
                out.next_continuation_token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        S3Error::malformed(OP, "truncated listing without NextContinuationToken")
                    })?,
            )
        } else {
            None
        };
        Ok(ListPage {
            objects,
            common_prefixes: out.common_prefixes,
            next_token,
        })
    }

    /// CreateMultipartUpload at `key` with `headers`; returns the upload id.
    pub(crate) async fn create_multipart_upload(
        &self,
        key: &str,
        headers: &WriteHeaders,
    ) -> Result<String, S3Error> {
        const OP: &str = "CreateMultipartUpload";
        let req = rusoto_s3::CreateMultipartUploadRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_type: Some(headers.content_type.clone()),
            acl: headers.acl.clone(),
            server_side_encryption: headers.sse.clone(),
            ssekms_key_id: headers.kms_key_id.clone(),
            storage_class: headers.storage_class.clone(),
            ..Default::default()
        };
        let out = call(
            OP,
            self.conn
                .client(Call::new(Operation::CreateMultipartUpload).with_key(key))
                .create_multipart_upload(req),
        )
        .await?;
        out.upload_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| S3Error::malformed(OP, "answer has no UploadId"))
    }

    /// UploadPart `number` of `upload_id` with the concatenation of `pieces`; returns the part.
    /// Like [`Self::put_object`], the part carries its `Content-MD5` (an empty part too).
    pub(crate) async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i64,
        pieces: Vec<Bytes>,
    ) -> Result<PartInfo, S3Error> {
        const OP: &str = "UploadPart";
        let replay = pieces.clone();
        let md5 = content_md5_of(&replay).await;
        let (body, len) = body(pieces);
        let size = len as u64;
        let req = rusoto_s3::UploadPartRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            part_number: number,
            content_length: Some(len as i64),
            content_md5: Some(md5),
            body: Some(body),
            ..Default::default()
        };
        let out = call(
            OP,
            self.conn
                .client(Call::new(Operation::UploadPart).with_body(replay))
                .upload_part(req),
        )
        .await?;
        let etag = out
            .e_tag
            .ok_or_else(|| S3Error::malformed(OP, "answer has no ETag"))?;
        Ok(PartInfo { number, etag, size })
    }

    /// UploadPartCopy of `src_key` (bytes `range` inclusive, or the whole object) as part
    /// `number`. `size` is what the caller knows the copied range to be.
    pub(crate) async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        number: i64,
        src_key: &str,
        range: Option<(u64, u64)>,
        size: u64,
    ) -> Result<PartInfo, S3Error> {
        const OP: &str = "UploadPartCopy";
        let req = rusoto_s3::UploadPartCopyRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            part_number: number,
            copy_source: self.copy_source(src_key),
            copy_source_range: range.map(|(a, b)| format!("bytes={a}-{b}")),
            ..Default::default()
        };
        let out = call(
            OP,
            self.conn
                .client(Call::new(Operation::UploadPartCopy))
                .upload_part_copy(req),
        )
        .await?;
        let etag = out
            .copy_part_result
            .and_then(|r| r.e_tag)
            .ok_or_else(|| S3Error::malformed(OP, "answer has no CopyPartResult ETag"))?;
        Ok(PartInfo { number, etag, size })
    }

    /// CompleteMultipartUpload with `parts` (sent sorted by part number).
    pub(crate) async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> Result<(), S3Error> {
        const OP: &str = "CompleteMultipartUpload";
        let mut completed: Vec<rusoto_s3::CompletedPart> = parts
            .iter()
            .map(|p| rusoto_s3::CompletedPart {
                e_tag: Some(p.etag.clone()),
                part_number: Some(p.number),
            })
            .collect();
        completed.sort_by_key(|p| p.part_number);
        let req = rusoto_s3::CompleteMultipartUploadRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            multipart_upload: Some(rusoto_s3::CompletedMultipartUpload {
                parts: Some(completed),
            }),
            ..Default::default()
        };
        let out = call(
            OP,
            self.conn
                .client(Call::new(Operation::CompleteMultipartUpload))
                .complete_multipart_upload(req),
        )
        .await?;
        // S3 may answer 200 and put the error in the body (it keeps the connection alive while
        // assembling); rusoto parses any root element, so such an answer arrives as a result
        // with nothing in it. A real result names the bucket, the location or the ETag (RGW's
        // ETag reaches us empty, so one of them is enough); an `<Error>` has none of them.
        if out.bucket.is_none() && out.location.is_none() && out.e_tag.is_none() {
            return Err(S3Error::malformed(
                OP,
                "answer is not a CompleteMultipartUploadResult (an error inside a 200 answer?)",
            ));
        }
        Ok(())
    }

    /// AbortMultipartUpload.
    pub(crate) async fn abort_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        const OP: &str = "AbortMultipartUpload";
        let req = rusoto_s3::AbortMultipartUploadRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            ..Default::default()
        };
        self.conn
            .client(Call::new(Operation::AbortMultipartUpload))
            .abort_multipart_upload(req)
            .await
            .map_err(|e| S3Error::from_rusoto(OP, e))?;
        Ok(())
    }

    /// One page of ListMultipartUploads under `prefix`, continuing after `marker`
    /// (key marker, upload id marker).
    pub(crate) async fn list_multipart_uploads(
        &self,
        prefix: &str,
        marker: Option<(String, String)>,
    ) -> Result<UploadsPage, S3Error> {
        const OP: &str = "ListMultipartUploads";
        let (key_marker, upload_id_marker) = match marker {
            Some((k, u)) => (Some(k), Some(u)),
            None => (None, None),
        };
        let req = rusoto_s3::ListMultipartUploadsRequest {
            bucket: self.bucket.clone(),
            prefix: Some(prefix.to_owned()),
            key_marker,
            upload_id_marker,
            ..Default::default()
        };
        let out = self
            .conn
            .client(Call::new(Operation::ListMultipartUploads))
            .list_multipart_uploads(req)
            .await
            .map_err(|e| S3Error::from_rusoto(OP, e))?;
        let mut uploads = Vec::new();
        for u in out.uploads.unwrap_or_default() {
            let (Some(key), Some(upload_id)) = (u.key, u.upload_id) else {
                return Err(S3Error::malformed(OP, "upload without Key or UploadId"));
            };
            uploads.push(UploadInfo {
                key,
                upload_id,
                initiated: u.initiated.as_deref().and_then(parse_time),
            });
        }
        let next = if out.is_truncated == Some(true) {
            let key = out.next_key_marker.unwrap_or_default();
            let id = out.next_upload_id_marker.unwrap_or_default();
            if key.is_empty() && id.is_empty() {
                return Err(S3Error::malformed(OP, "truncated listing without markers"));
            }
            Some((key, id))
        } else {
            None
        };
        Ok(UploadsPage { uploads, next })
    }

    /// One page of ListParts, continuing after part number `marker`.
    pub(crate) async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<i64>,
    ) -> Result<PartsPage, S3Error> {
        const OP: &str = "ListParts";
        let req = rusoto_s3::ListPartsRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            part_number_marker: marker,
            ..Default::default()
        };
        let out = self
            .conn
            .client(Call::new(Operation::ListParts))
            .list_parts(req)
            .await
            .map_err(|e| S3Error::from_rusoto(OP, e))?;
        let mut parts = Vec::new();
        for p in out.parts.unwrap_or_default() {
            let (Some(number), Some(etag)) = (p.part_number, p.e_tag) else {
                return Err(S3Error::malformed(OP, "part without PartNumber or ETag"));
            };
            parts.push(PartInfo {
                number,
                etag,
                size: length(OP, "part Size", p.size)?,
            });
        }
        let next_marker = if out.is_truncated == Some(true) {
            let m = out
                .next_part_number_marker
                .or_else(|| parts.last().map(|p| p.number))
                .ok_or_else(|| S3Error::malformed(OP, "truncated listing without marker"))?;
            if Some(m) == marker {
                return Err(S3Error::malformed(OP, "listing does not advance"));
            }
            Some(m)
        } else {
            None
        };
        Ok(PartsPage { parts, next_marker })
    }

    /// CopyObject `src_key` → `dst_key` with `headers` (metadata directive COPY).
    pub(crate) async fn copy_object(
        &self,
        src_key: &str,
        dst_key: &str,
        headers: &WriteHeaders,
    ) -> Result<(), S3Error> {
        const OP: &str = "CopyObject";
        let req = rusoto_s3::CopyObjectRequest {
            bucket: self.bucket.clone(),
            key: dst_key.to_owned(),
            copy_source: self.copy_source(src_key),
            content_type: Some(headers.content_type.clone()),
            acl: headers.acl.clone(),
            server_side_encryption: headers.sse.clone(),
            ssekms_key_id: headers.kms_key_id.clone(),
            storage_class: headers.storage_class.clone(),
            ..Default::default()
        };
        let out = call(
            OP,
            self.conn
                .client(Call::new(Operation::CopyObject))
                .copy_object(req),
        )
        .await?;
        // As for CompleteMultipartUpload: an error may come inside a 200 answer.
        let result = out.copy_object_result;
        if result.is_none_or(|r| r.e_tag.is_none() && r.last_modified.is_none()) {
            return Err(S3Error::malformed(
                OP,
                "answer is not a CopyObjectResult (an error inside a 200 answer?)",
            ));
        }
        Ok(())
    }

    /// DeleteObject of one key (S3 answers success for a missing key too).
    pub(crate) async fn delete_object(&self, key: &str) -> Result<(), S3Error> {
        const OP: &str = "DeleteObject";
        let req = rusoto_s3::DeleteObjectRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            ..Default::default()
        };
        call(
            OP,
            self.conn
                .client(Call::new(Operation::DeleteObject))
                .delete_object(req),
        )
        .await?;
        Ok(())
    }

    /// DeleteObjects of at most 1000 `keys` (Quiet: only failures are answered; rusoto adds
    /// the Content-MD5 several servers require). Returns the keys S3 could not delete.
    pub(crate) async fn delete_objects(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<DeleteFailure>, S3Error> {
        const OP: &str = "DeleteObjects";
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if keys.len() > 1000 {
            return Err(S3Error {
                operation: OP,
                class: crate::error::ErrorClass::Request,
                status: None,
                code: None,
                message: format!("{} keys in one request (at most 1000)", keys.len()),
            });
        }
        // A 200 answer can still list keys the server failed to delete for a passing reason
        // (Garage under load answers `ServiceUnavailable: database is locked` per key; AWS
        // documents `InternalError` and `SlowDown`). Those keys are sent again, alone, with the
        // dispatcher's back-off and `maxretries` budget; the rest are reported as they are.
        let policy = RetryPolicy::from_config(&self.conn.config);
        let mut keys = keys;
        let mut failures = Vec::new();
        let mut retry = 0u32;
        loop {
            // Only keys this request named are sent again, each once: a server's answer must
            // not be able to make the driver delete anything else.
            let mut asked: std::collections::HashSet<String> = keys.iter().cloned().collect();
            let mut again = Vec::new();
            for f in self.delete_objects_once(keys).await? {
                if transient_delete_code(&f.code)
                    && retry < policy.max_retries
                    && asked.remove(&f.key)
                {
                    again.push(f.key);
                } else {
                    failures.push(f);
                }
            }
            if again.is_empty() {
                return Ok(failures);
            }
            retry += 1;
            self.conn
                .stats
                .record_retry(Operation::DeleteObjects, false);
            tracing::debug!(
                op = OP,
                retry,
                keys = again.len(),
                "s3 retrying keys DeleteObjects could not delete"
            );
            tokio::time::sleep(policy.backoff(retry, jitter_unit())).await;
            keys = again;
        }
    }

    /// One DeleteObjects request (quiet mode: the answer lists failures only).
    async fn delete_objects_once(&self, keys: Vec<String>) -> Result<Vec<DeleteFailure>, S3Error> {
        const OP: &str = "DeleteObjects";
        let req = rusoto_s3::DeleteObjectsRequest {
            bucket: self.bucket.clone(),
            delete: rusoto_s3::Delete {
                objects: keys
                    .into_iter()
                    .map(|key| rusoto_s3::ObjectIdentifier {
                        key,
                        version_id: None,
                    })
                    .collect(),
                quiet: Some(true),
            },
            ..Default::default()
        };
        let out = self
            .conn
            .client(Call::new(Operation::DeleteObjects))
            .delete_objects(req)
            .await
            .map_err(|e| S3Error::from_rusoto(OP, e))?;
        Ok(out
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| DeleteFailure {
                key: e.key.unwrap_or_default(),
                code: e.code.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
            })
            .collect())
    }

    /// CreateBucket (for tests and first setup); an existing bucket owned by us is success.
    pub(crate) async fn create_bucket(&self) -> Result<(), S3Error> {
        const OP: &str = "CreateBucket";
        let region = self.conn.config.region.clone();
        let req = rusoto_s3::CreateBucketRequest {
            bucket: self.bucket.clone(),
            // us-east-1 is the default location and must not be named explicitly.
            create_bucket_configuration: (region != "us-east-1" && !region.is_empty()).then_some(
                rusoto_s3::CreateBucketConfiguration {
                    location_constraint: Some(region),
                },
            ),
            ..Default::default()
        };
        match self
            .conn
            .client(Call::new(Operation::CreateBucket))
            .create_bucket(req)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = S3Error::from_rusoto(OP, e);
                if e.code.as_deref() == Some("BucketAlreadyOwnedByYou") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// GetObjectAcl (for header tests).
    pub(crate) async fn get_object_acl(&self, key: &str) -> Result<Vec<AclGrant>, S3Error> {
        const OP: &str = "GetObjectAcl";
        let req = rusoto_s3::GetObjectAclRequest {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            ..Default::default()
        };
        let out = self
            .conn
            .client(Call::new(Operation::GetObjectAcl))
            .get_object_acl(req)
            .await
            .map_err(|e| S3Error::from_rusoto(OP, e))?;
        Ok(out
            .grants
            .unwrap_or_default()
            .into_iter()
            .map(|g| AclGrant {
                grantee: g
                    .grantee
                    .map(|g| g.uri.or(g.id).unwrap_or(g.type_))
                    .unwrap_or_default(),
                permission: g.permission.unwrap_or_default(),
            })
            .collect())
    }
}

/// Reads a whole answer body of at most `max` bytes (an answer we parse ourselves). A longer
/// body is a malformed answer, a broken one a transport error.
async fn read_capped(
    operation: &'static str,
    mut body: rusoto_core::ByteStream,
    max: usize,
) -> Result<Vec<u8>, S3Error> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| S3Error {
            operation,
            class: crate::error::ErrorClass::Transport,
            status: None,
            code: None,
            message: format!("reading body: {e}"),
        })?;
        if out.len().saturating_add(chunk.len()) > max {
            return Err(S3Error::malformed(
                operation,
                format!("answer longer than {max} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Most bytes [`collect`] reserves up front from a server-declared length. A larger declared
/// length is not trusted for allocation (an absurd `Content-Length` would abort the process):
/// the buffer grows as bytes actually arrive instead.
const COLLECT_PREALLOC_MAX: usize = 4 << 20;

/// Runs one rusoto call of `operation`, converting its error.
///
/// rusoto_s3 0.48 `unwrap`s the parse of some response headers (`x-amz-delete-marker`,
/// `x-amz-server-side-encryption-bucket-key-enabled`, `x-amz-mp-parts-count`, a
/// `Content-Length` beyond `i64`, …) in GetObject, HeadObject, PutObject, DeleteObject,
/// CopyObject and the multipart writes: a server sending an odd value there would panic inside
/// the call and take the caller's task down. The transport already drops unparseable values of
/// the informational ones (`transport::from_hyper`); any panic left (e.g. that `Content-Length`)
/// is caught here and becomes a malformed-answer error (the panic hook still reports it once).
async fn call<T, E>(
    operation: &'static str,
    request: impl std::future::Future<Output = Result<T, rusoto_core::RusotoError<E>>>,
) -> Result<T, S3Error>
where
    E: std::fmt::Debug + std::fmt::Display,
{
    match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(request)).await {
        Ok(answer) => answer.map_err(|e| S3Error::from_rusoto(operation, e)),
        Err(_) => Err(S3Error::malformed(
            operation,
            "the answer could not be parsed (a response header with an invalid value)",
        )),
    }
}

/// Collects a stream into one buffer (for small objects). With a declared length `len`
/// (`Content-Length`) the buffer is pre-sized up to [`COLLECT_PREALLOC_MAX`], and the body
/// must be exactly `len` bytes: more is an error as soon as it arrives, fewer when it ends
/// (both `Backend` errors about `path`), so wrong bytes are never returned.
pub(crate) async fn collect(
    len: Option<u64>,
    mut stream: ByteStream,
    path: &str,
) -> Result<Bytes, Error> {
    let mismatch = |got: u64, n: u64, how: &str| {
        Error::backend(
            DRIVER,
            Some(path),
            S3Error::malformed(
                "GetObject",
                format!("body {how}: {got} bytes, Content-Length {n}"),
            ),
        )
    };
    let mut got: u64 = 0;
    let mut first: Option<Bytes> = None;
    let mut buf: Option<bytes::BytesMut> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        got = got.saturating_add(chunk.len() as u64);
        if let Some(n) = len.filter(|&n| got > n) {
            return Err(mismatch(got, n, "longer than declared"));
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(chunk),
            (Some(f), None) => {
                let cap = len
                    .and_then(|l| usize::try_from(l).ok())
                    .unwrap_or(0)
                    .min(COLLECT_PREALLOC_MAX);
                let mut b = bytes::BytesMut::with_capacity(cap.max(f.len() + chunk.len()));
                b.extend_from_slice(f);
                b.extend_from_slice(&chunk);
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&chunk),
        }
    }
    if let Some(n) = len.filter(|&n| got != n) {
        return Err(mismatch(got, n, "shorter than declared"));
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            ContentRange::parse("bytes 0-9/100"),
            Some(ContentRange {
                start: 0,
                end: 9,
                total: Some(100)
            })
        );
        assert_eq!(
            ContentRange::parse(" bytes 5-5/*"),
            Some(ContentRange {
                start: 5,
                end: 5,
                total: None
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes 9-0/100",
            "bytes 0-100/100",
            "bytes */100",
            "items 0-9/100",
            "bytes 0-9/x",
            "bytes -1-9/100",
            // `end + 1` would overflow.
            "bytes 0-18446744073709551615/*",
            "bytes 5-18446744073709551615/*",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_md5_is_over_the_pieces_joined() {
        // RFC 1321 test vectors, base64 as Content-MD5 carries them.
        assert_eq!(content_md5(&[]), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(content_md5(&[Bytes::new()]), "1B2M2Y8AsgTpgAmY7PhCfg==");
        let abc = "kAFQmDzST7DWlj99KOF/cg==";
        assert_eq!(content_md5(&[Bytes::from_static(b"abc")]), abc);
        let split = [
            Bytes::from_static(b"a"),
            Bytes::new(),
            Bytes::from_static(b"bc"),
        ];
        assert_eq!(content_md5(&split), abc);
    }

    type Params = std::collections::BTreeMap<String, Option<String>>;

    /// Records the signed requests the dispatcher hands to the transport; answers 200 with
    /// an ETag.
    #[derive(Clone, Default)]
    struct Recorder {
        #[allow(clippy::type_complexity)]
        seen: Arc<std::sync::Mutex<Vec<(crate::sigv2::Headers, Vec<u8>, String, Params)>>>,
    }

    impl rusoto_core::request::DispatchSignedRequest for Recorder {
        fn dispatch(
            &self,
            request: rusoto_core::signature::SignedRequest,
            _timeout: Option<std::time::Duration>,
        ) -> rusoto_core::request::DispatchSignedRequestFuture {
            use futures::FutureExt as _;
            let seen = Arc::clone(&self.seen);
            async move {
                let body = match request.payload {
                    Some(rusoto_core::signature::SignedRequestPayload::Stream(s)) => {
                        let chunks: Vec<Bytes> = s.try_collect().await.unwrap_or_default();
                        chunks.concat()
                    }
                    Some(rusoto_core::signature::SignedRequestPayload::Buffer(b)) => b.to_vec(),
                    None => Vec::new(),
                };
                seen.lock().unwrap_or_else(|e| e.into_inner()).push((
                    request.headers,
                    body,
                    request.path,
                    request.params,
                ));
                let mut headers = hyper::HeaderMap::<String>::default();
                headers.insert("etag", "\"e\"".to_owned());
                headers.insert(hyper::header::CONTENT_LENGTH, "0".to_owned());
                Ok(rusoto_core::request::HttpResponse {
                    status: hyper::StatusCode::OK,
                    body: rusoto_core::ByteStream::from(Vec::new()),
                    headers,
                })
            }
            .boxed()
        }
    }

    fn header(h: &crate::sigv2::Headers, name: &str) -> String {
        h.get(name)
            .and_then(|v| v.first())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn uploaded_bodies_carry_a_signed_content_md5() {
        let big = Bytes::from(vec![7u8; MD5_OFF_THREAD + 3]);
        for v4auth in [true, false] {
            let config = S3Config::from_parameters(
                &regstore_driver_api::Parameters::new()
                    .with("bucket", "bkt")
                    .with("regionendpoint", "http://127.0.0.1:9")
                    .with("forcepathstyle", true)
                    .with("accesskey", "AK")
                    .with("secretkey", "SECRETVALUE123")
                    .with("v4auth", v4auth),
            )
            .unwrap();
            let recorder = Recorder::default();
            let api = S3Api::new(
                S3Connection::with_http(config.clone(), Box::new(recorder.clone())).unwrap(),
            );
            let headers = WriteHeaders::from_config(&config);
            api.put_object("k", Bytes::from_static(b"abc"), &headers)
                .await
                .unwrap();
            let pieces = vec![big.slice(..10), big.slice(10..), Bytes::from_static(b"x")];
            api.upload_part("k", "u", 1, pieces.clone()).await.unwrap();
            api.upload_part("k", "u", 2, Vec::new()).await.unwrap();
            api.put_object("k", Bytes::new(), &headers).await.unwrap();
            let seen = recorder.seen.lock().unwrap().clone();
            assert_eq!(seen.len(), 4);
            let want = [
                content_md5(&[Bytes::from_static(b"abc")]),
                content_md5(&pieces),
                content_md5(&[]),
                content_md5(&[]),
            ];
            for ((h, body, path, params), want) in seen.iter().zip(want) {
                assert_eq!(h.get("content-md5").map(Vec::len), Some(1), "{path}");
                assert_eq!(header(h, "content-md5"), want, "v4auth {v4auth}");
                assert_eq!(content_md5(&[Bytes::from(body.clone())]), want);
                let auth = header(h, "authorization");
                if v4auth {
                    let signed = auth
                        .split("SignedHeaders=")
                        .nth(1)
                        .and_then(|s| s.split(',').next())
                        .unwrap_or_default();
                    assert!(signed.split(';').any(|n| n == "content-md5"), "{auth}");
                    // The body itself stays unhashed (one digest per body is enough).
                    assert_eq!(header(h, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
                } else {
                    // The SigV2 string to sign holds Content-MD5 on its second line, and the
                    // signature sent is the one over that string.
                    let sts = crate::sigv2::string_to_sign("PUT", h, None, path, params);
                    let text = String::from_utf8_lossy(&sts).into_owned();
                    assert_eq!(text.lines().nth(1), Some(want.as_str()), "{text}");
                    let sig = crate::sigv2::signature("SECRETVALUE123", &sts);
                    assert_eq!(auth, format!("AWS AK:{sig}"));
                }
            }
        }
    }

    #[tokio::test]
    async fn collect_joins_chunks() {
        let s: ByteStream = Box::pin(futures::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"cd")),
            Ok(Bytes::from_static(b"e")),
        ]));
        assert_eq!(collect(Some(5), s, "/p").await.unwrap_or_default(), "abcde");
        let one: ByteStream = Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"x"))]));
        assert_eq!(collect(None, one, "/p").await.unwrap_or_default(), "x");
        let none: ByteStream = Box::pin(futures::stream::empty());
        assert_eq!(collect(None, none, "/p").await.unwrap_or_default(), "");
    }

    fn chunks(n: usize) -> ByteStream {
        Box::pin(futures::stream::iter(
            (0..n).map(|_| Ok(Bytes::from_static(b"ab"))),
        ))
    }

    #[tokio::test]
    async fn collect_survives_an_absurd_content_length() {
        // Pre-sizing from this length would abort the process (capacity overflow or OOM);
        // the body is only 6 bytes, so the declared length is a lie and an error.
        for absurd in [u64::MAX, u64::MAX / 2, 1 << 50] {
            let e = collect(Some(absurd), chunks(3), "/p/x")
                .await
                .expect_err("shorter than declared");
            let text = e.to_string();
            assert!(text.contains("/p/x") && text.contains("shorter"), "{text}");
        }
    }

    #[tokio::test]
    async fn collect_checks_the_declared_length() {
        let e = collect(Some(3), chunks(100), "/p/x")
            .await
            .expect_err("longer than declared");
        assert!(e.to_string().contains("longer"), "{e}");
        assert!(collect(Some(7), chunks(3), "/p/x").await.is_err());
        assert_eq!(
            collect(Some(6), chunks(3), "/p/x")
                .await
                .unwrap_or_default(),
            "ababab"
        );
        // A single chunk is checked too.
        assert!(collect(Some(1), chunks(1), "/p/x").await.is_err());
        let empty: ByteStream = Box::pin(futures::stream::empty());
        assert!(collect(Some(1), empty, "/p/x").await.is_err());
    }

    #[tokio::test]
    async fn collect_stops_reading_past_the_declared_length() {
        // An endless body: the error must come as soon as it exceeds the declared length.
        let endless: ByteStream = Box::pin(futures::stream::repeat_with(|| {
            Ok(Bytes::from_static(b"0123456789"))
        }));
        assert!(collect(Some(25), endless, "/p/x").await.is_err());
    }
}
