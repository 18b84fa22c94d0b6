//! [`Call`]: one S3 operation as [`crate::s3api`] hands it to the dispatcher.
//!
//! rusoto_s3 builds the HTTP request of each operation and reads its answer; the `Call` says
//! what that request is — the [`Operation`], whether repeating it is harmless, and a copy of
//! its streamed body that can be sent again. It travels beside the request: `s3api` binds it
//! to a per-call dispatcher ([`crate::dispatch::Dispatcher::call`]) that the rusoto client of
//! that one call sends through, so the dispatcher never works out from the request's shape
//! what it is.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use rusoto_core::signature::SignedRequestPayload;
use rusoto_core::ByteStream;

use crate::retry::Progress;
use crate::transport;

/// The S3 operations the driver sends; [`crate::RequestStats`] counts by their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// S3 `AbortMultipartUpload`.
    AbortMultipartUpload,
    /// S3 `CompleteMultipartUpload`.
    CompleteMultipartUpload,
    /// S3 `CopyObject`.
    CopyObject,
    /// S3 `CreateBucket`.
    CreateBucket,
    /// S3 `CreateMultipartUpload`.
    CreateMultipartUpload,
    /// S3 `DeleteObject`.
    DeleteObject,
    /// S3 `DeleteObjects`.
    DeleteObjects,
    /// S3 `GetObject`.
    GetObject,
    /// S3 `GetObjectAcl`.
    GetObjectAcl,
    /// S3 `HeadObject`.
    HeadObject,
    /// S3 `ListMultipartUploads`.
    ListMultipartUploads,
    /// S3 `ListObjectsV2`.
    ListObjectsV2,
    /// S3 `ListParts`.
    ListParts,
    /// S3 `PutObject`.
    PutObject,
    /// S3 `UploadPart`.
    UploadPart,
    /// S3 `UploadPartCopy`.
    UploadPartCopy,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Operation {
    /// Every operation, in the order of their indexes ([`Operation::index`]).
    pub(crate) const ALL: [Operation; 16] = [
        Operation::AbortMultipartUpload,
        Operation::CompleteMultipartUpload,
        Operation::CopyObject,
        Operation::CreateBucket,
        Operation::CreateMultipartUpload,
        Operation::DeleteObject,
        Operation::DeleteObjects,
        Operation::GetObject,
        Operation::GetObjectAcl,
        Operation::HeadObject,
        Operation::ListMultipartUploads,
        Operation::ListObjectsV2,
        Operation::ListParts,
        Operation::PutObject,
        Operation::UploadPart,
        Operation::UploadPartCopy,
    ];

    /// The operation's S3 name (`GetObject`), as logs and [`crate::RequestStats`] show it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::CopyObject => "CopyObject",
            Operation::CreateBucket => "CreateBucket",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::DeleteObject => "DeleteObject",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::GetObject => "GetObject",
            Operation::GetObjectAcl => "GetObjectAcl",
            Operation::HeadObject => "HeadObject",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::ListParts => "ListParts",
            Operation::PutObject => "PutObject",
            Operation::UploadPart => "UploadPart",
            Operation::UploadPartCopy => "UploadPartCopy",
        }
    }

    /// Position in [`Operation::ALL`] (for counters indexed by operation).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether sending the request again after an attempt that may have been carried out
    /// (a reset after sending, a timeout) answers as the first attempt would have. True for
    /// every operation but three of the multipart life cycle, whose repetition the dispatcher
    /// recovers ([`crate::upload_recovery`]): a repeated `CreateMultipartUpload` may leave an
    /// orphaned upload, a repeated `CompleteMultipartUpload` or `AbortMultipartUpload` may
    /// answer `NoSuchUpload` although the first one did what was asked.
    pub(crate) fn idempotent(self) -> bool {
        !matches!(
            self,
            Operation::CreateMultipartUpload
                | Operation::CompleteMultipartUpload
                | Operation::AbortMultipartUpload
        )
    }
}

/// One S3 operation as `s3api` asks the dispatcher to send it (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// What the request does.
    pub(crate) op: Operation,
    /// The pieces of the request's streamed body, when the caller keeps them: then the body
    /// can be sent again, and the request retried (cloning `Bytes` copies nothing). `None`: a
    /// streamed body is sent once; bodies rusoto buffers itself are replayable anyway.
    pub(crate) replayable_body: Option<Vec<Bytes>>,
    /// The object key, for a `CreateMultipartUpload` (orphan clean-up lists uploads by it).
    pub(crate) key: Option<String>,
}

impl Call {
    /// A call of `op` without a replayable body or key.
    pub(crate) fn new(op: Operation) -> Self {
        Call {
            op,
            replayable_body: None,
            key: None,
        }
    }

    /// With `pieces` as a replayable copy of the streamed body: they must be exactly the bytes
    /// of the body rusoto sends (the dispatcher checks the length, and otherwise sends the
    /// body once).
    pub(crate) fn with_body(mut self, pieces: Vec<Bytes>) -> Self {
        self.replayable_body = Some(pieces);
        self
    }

    /// With the object `key` the request is about.
    pub(crate) fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Whether repeating this call is harmless (see [`Operation::idempotent`]).
    pub(crate) fn idempotent(&self) -> bool {
        self.op.idempotent()
    }
}

/// Largest chunk a replayed body is handed to hyper in, so progress is seen while it sends.
pub(crate) const REPLAY_CHUNK: usize = 1 << 20;

/// The body of one request, as far as it can be sent again.
pub(crate) enum Body {
    None,
    Buffer(Bytes),
    Pieces {
        pieces: Vec<Bytes>,
        len: usize,
    },
    /// Not replayable; `None` once it has been sent.
    Stream(Option<ByteStream>),
}

impl Body {
    pub(crate) fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(_))
    }

    /// The payload of the next attempt; `progress` is touched as hyper takes body chunks.
    pub(crate) fn next_payload(
        &mut self,
        progress: &Arc<Progress>,
    ) -> Option<SignedRequestPayload> {
        match self {
            Body::None => None,
            Body::Buffer(b) => Some(SignedRequestPayload::Buffer(b.clone())),
            Body::Pieces { pieces, len } => {
                let mut chunks = Vec::new();
                for p in pieces.iter() {
                    let mut at = 0;
                    while at < p.len() {
                        let end = (at + REPLAY_CHUNK).min(p.len());
                        chunks.push(p.slice(at..end));
                        at = end;
                    }
                }
                let progress = Arc::clone(progress);
                let stream = futures::stream::iter(chunks).map(move |c| {
                    progress.touch();
                    Ok(c)
                });
                Some(SignedRequestPayload::Stream(ByteStream::new_with_size(
                    stream, *len,
                )))
            }
            Body::Stream(s) => s.take().map(SignedRequestPayload::Stream),
        }
    }
}

/// Whether rusoto's streaming body announces exactly `len` bytes (see
/// [`transport::stream_len`]; when that cannot tell, the body is merely not retried).
pub(crate) fn stream_len_is(s: &ByteStream, len: usize) -> bool {
    transport::stream_len(s) == Some(len)
}
