//! Recovery of the multipart-upload requests whose repetition is not harmless, after a retry
//! that followed a failure leaving open whether the server acted (see [`crate::retry`]):
//!
//! * a retried `CreateMultipartUpload` may have created an upload before the one in use:
//!   [`abort_orphans`] finds and aborts it;
//! * a retried `CompleteMultipartUpload` answered `NoSuchUpload` may have completed on the
//!   first attempt: [`recover_complete`] compares the object's ETag with the multipart ETag of
//!   the parts sent;
//! * a retried `AbortMultipartUpload` answered `NoSuchUpload` is done ([`already_aborted`]).
//!
//! The requests these send go through the dispatcher ([`Resend`]), so they are addressed,
//! signed, counted and retried like any other.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use md5::{Digest as _, Md5};
use rusoto_core::request::HttpResponse;
use rusoto_core::signature::SignedRequest;
use rusoto_core::ByteStream;

use crate::call::Operation;
use crate::retry::{s3_error_code, xml_field};
use crate::s3time::parse_time;

/// What recovery needs from the dispatcher: body-less requests of its own, addressed, signed,
/// counted and sent like every other request.
pub(crate) trait Resend: Sync {
    /// The bucket every request targets.
    fn bucket(&self) -> &str;

    /// A request like `base` (same endpoint) without its headers and parameters: `method` on
    /// the path-style `path` with `params`, addressed; returns it with its SigV2 resource.
    fn plain_request(
        &self,
        base: &SignedRequest,
        method: &str,
        path: String,
        params: &[(&str, Option<&str>)],
    ) -> (SignedRequest, String);

    /// Sends an addressed, body-less `request` (SigV2 resource `resource`) of `op` with the
    /// retry policy, until `deadline`. `None` when every attempt failed in transport.
    fn send_with_retries(
        &self,
        request: SignedRequest,
        resource: &str,
        op: Operation,
        deadline: Instant,
    ) -> impl Future<Output = Option<HttpResponse>> + Send;

    /// Like [`Self::send_with_retries`], one attempt only.
    fn send_once(
        &self,
        request: SignedRequest,
        resource: &str,
        op: Operation,
        deadline: Instant,
    ) -> impl Future<Output = Option<HttpResponse>> + Send;

    /// Counts one orphaned upload aborted.
    fn orphan_aborted(&self);
}

/// A `CreateMultipartUpload` that succeeded after an attempt that may have created an
/// upload too: that earlier upload is an orphan nobody knows the id of. Uploads of the same
/// key initiated since the first attempt (by the server's clock: its `Date` minus the time
/// elapsed here, less 2 s) other than the one just created are aborted. The registry gives
/// every upload its own key, so no other writer's upload can match; a writer resuming an
/// older upload of this key is safe because that upload was initiated before the window.
/// Failures here only log: the orphan then waits for `uploads abort`.
pub(crate) async fn abort_orphans(
    d: &impl Resend,
    resp: HttpResponse,
    pristine: SignedRequest,
    key: &str,
    started: Instant,
    deadline: Instant,
) -> HttpResponse {
    let mut resp = resp;
    let body = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
    let chunks: Vec<Bytes> = body.filter_map(|c| async { c.ok() }).collect().await;
    let bytes = chunks.concat();
    resp.body = ByteStream::from(bytes.clone());
    if !resp.status.is_success() {
        return resp;
    }
    let Some(new_id) = xml_field(&bytes, "UploadId") else {
        return resp;
    };
    let Some(server_now) = resp.headers.get("date").and_then(|d| parse_time(d)) else {
        return resp;
    };
    let window = started.elapsed() + Duration::from_secs(2);
    let since = server_now
        .checked_sub(window)
        .unwrap_or(std::time::UNIX_EPOCH);
    let until = server_now
        .checked_add(Duration::from_secs(2))
        .unwrap_or(server_now);

    let bucket_path = format!("/{}", d.bucket());
    let (list, resource) = d.plain_request(
        &pristine,
        "GET",
        bucket_path,
        &[("uploads", None), ("prefix", Some(key))],
    );
    let listed = match d
        .send_with_retries(list, &resource, Operation::ListMultipartUploads, deadline)
        .await
    {
        Some(r) if r.status.is_success() => {
            let chunks: Vec<Bytes> = r.body.filter_map(|c| async { c.ok() }).collect().await;
            chunks.concat()
        }
        _ => {
            tracing::warn!(
                op = "CreateMultipartUpload",
                "could not list uploads to remove an orphan of a retried create"
            );
            return resp;
        }
    };
    let text = String::from_utf8_lossy(&listed);
    let mut orphans = Vec::new();
    for upload in text.split("<Upload>").skip(1) {
        let upload = upload.as_bytes();
        let (Some(k), Some(id), Some(at)) = (
            xml_field(upload, "Key"),
            xml_field(upload, "UploadId"),
            xml_field(upload, "Initiated").and_then(|t| parse_time(&t)),
        ) else {
            continue;
        };
        if k == key && id != new_id && at >= since && at <= until {
            orphans.push(id);
        }
    }
    for id in orphans {
        let (abort, resource) = d.plain_request(
            &pristine,
            "DELETE",
            pristine.path.clone(),
            &[("uploadId", Some(id.as_str()))],
        );
        let outcome = d
            .send_with_retries(abort, &resource, Operation::AbortMultipartUpload, deadline)
            .await;
        // 404 NoSuchUpload after a retry: an earlier attempt aborted it.
        let ok = matches!(&outcome, Some(r) if r.status.is_success() || r.status.as_u16() == 404);
        tracing::warn!(
            op = "CreateMultipartUpload",
            aborted = ok,
            "aborted the orphaned upload of a retried CreateMultipartUpload"
        );
        if ok {
            d.orphan_aborted();
        }
    }
    resp
}

/// A `CompleteMultipartUpload` retried after an attempt that may have completed the upload
/// answers `NoSuchUpload` when the first attempt did. Then the object's ETag tells: a
/// multipart ETag is the MD5 of the parts' MD5s plus `-<part count>`, all known from the
/// request body. When HEAD shows exactly that ETag the upload was completed with these parts
/// and a success answer is handed to rusoto; otherwise the `NoSuchUpload` answer stands.
pub(crate) async fn recover_complete(
    d: &impl Resend,
    resp: HttpResponse,
    mut head: SignedRequest,
    xml: Option<Bytes>,
    resource: &str,
    deadline: Instant,
) -> HttpResponse {
    if resp.status.as_u16() != 404 {
        return resp;
    }
    let Some(xml) = xml else {
        return resp;
    };
    let mut resp = resp;
    let answer = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
    let answer: Vec<Bytes> = answer.filter_map(|c| async { c.ok() }).collect().await;
    let answer = answer.concat();
    resp.body = ByteStream::from(answer.clone());
    if s3_error_code(&answer) != Some("NoSuchUpload") {
        return resp;
    }
    let Some(expected) = multipart_etag(&xml) else {
        return resp;
    };
    head.method = "HEAD".to_owned();
    head.params.clear();
    for h in ["content-type", "content-md5", "content-length"] {
        head.remove_header(h);
    }
    let Some(found) = d
        .send_once(head, resource, Operation::HeadObject, deadline)
        .await
    else {
        return resp;
    };
    let etag = found
        .headers
        .get("etag")
        .map(|e| e.trim().trim_matches('"').to_owned());
    if found.status.is_success() && etag.as_deref() == Some(expected.as_str()) {
        tracing::warn!(
            op = "CompleteMultipartUpload",
            "a retried CompleteMultipartUpload found its upload already completed with the \
             same parts (ETag matches); treating it as done"
        );
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult>\
             <ETag>&quot;{expected}&quot;</ETag></CompleteMultipartUploadResult>"
        );
        resp.status = hyper::StatusCode::OK;
        resp.headers.remove(hyper::header::CONTENT_LENGTH);
        resp.body = ByteStream::from(xml.into_bytes());
    }
    resp
}

/// A retried AbortMultipartUpload answered `NoSuchUpload` after an attempt that may have gone
/// through: the upload is gone, which is what was asked, so the answer becomes `204`.
pub(crate) async fn already_aborted(mut resp: HttpResponse) -> HttpResponse {
    let body = std::mem::replace(&mut resp.body, ByteStream::from(Vec::new()));
    let chunks: Vec<Bytes> = body.filter_map(|c| async { c.ok() }).collect().await;
    let bytes = chunks.concat();
    if s3_error_code(&bytes) == Some("NoSuchUpload") {
        tracing::debug!(
            op = "AbortMultipartUpload",
            "retried abort found the upload gone; done"
        );
        resp.status = hyper::StatusCode::NO_CONTENT;
        resp.headers.remove(hyper::header::CONTENT_LENGTH);
        resp.body = ByteStream::from(Vec::new());
    } else {
        resp.body = ByteStream::from(bytes);
    }
    resp
}

/// The ETag S3 gives an object completed from the parts listed in a CompleteMultipartUpload
/// request body: hex MD5 of the concatenated binary part MD5s, `-`, the part count. `None`
/// when a part ETag is not a plain MD5 (SSE-KMS parts, for example).
pub(crate) fn multipart_etag(complete_xml: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(complete_xml).ok()?;
    let mut digests = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<ETag>") {
        let after = &rest[start + "<ETag>".len()..];
        let end = after.find("</ETag>")?;
        let etag = after[..end].replace("&quot;", "").replace('"', "");
        let etag = etag.trim();
        if etag.len() != 32 {
            return None;
        }
        for i in (0..32).step_by(2) {
            digests.push(u8::from_str_radix(etag.get(i..i + 2)?, 16).ok()?);
        }
        rest = &after[end..];
    }
    if digests.is_empty() {
        return None;
    }
    let sum = Md5::digest(&digests);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{hex}-{}", digests.len() / 16))
}
