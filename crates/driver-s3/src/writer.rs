//! The resumable writer: one S3 multipart upload per writer, on the final key.
//!
//! Every part except the last is exactly `chunksize` bytes (Cloudflare R2 rejects uploads with
//! unequal non-final parts, S3 any non-final part under 5 MiB). Bytes that do not fill a part
//! are never uploaded as one before `commit`: `close` stores them in a *tail record* under a
//! hidden key (see [`crate::tail`]) together with the number of the next part, and leaves the
//! upload open. A later writer opened with `append` finds the upload by exact key, its full
//! parts with ListParts and its remainder in the record, and goes on where the `close` left
//! it, with the same part size. So:
//! * nothing is readable at the path before `commit`, and content committed there before
//!   stays until then;
//! * a resume costs three requests (ListMultipartUploads, ListParts, GetObject of the record,
//!   which holds less than one part) and never re-bases;
//! * a writer that crashes (is dropped without `close`) after uploading more parts leaves the
//!   upload as the last `close` left it: before its first part a writer without a record
//!   writes an empty one, and parts numbered at or after the record's are ignored by a resume.
//!
//! Uploads left by distribution's Go driver or by regstore before tail records may end with a
//! short part that no part can follow. Such a writer *re-bases* once, before its first new
//! byte: it completes the upload (the partial object is briefly visible at the key), starts a
//! new one with the same encryption, KMS key id, storage class and ACL headers, copies the
//! whole `chunksize` parts back with ranged UploadPartCopy, reads the remainder (less than a
//! part) into its buffer, writes its tail record and deletes the object. Afterwards it is an
//! upload like any other.
//!
//! Parts upload concurrently while the caller keeps writing: a full part is handed to a task
//! of its own and `write` returns; with `multipartuploadconcurrency` parts in flight, the next
//! full part waits for one of them (back-pressure), so a writer holds at most
//! `chunksize × (concurrency + 1)` bytes whatever the object's size. The pieces the caller
//! wrote go to the HTTP body as they are (reference-counted `Bytes`, no copy). `close` and
//! `commit` wait for every part in flight and report the first failure; after a failed part
//! the writer refuses further writes (its content has a hole), and `commit` aborts the upload.
//! `commit` and `cancel` delete the tail record.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt, TryStreamExt};
use regstore_driver_api::{Error, FileWriter, Result, StoragePath, WriterLifecycle};
use tokio::task::JoinHandle;

use crate::error::{S3Error, DRIVER};
use crate::pagination::{all_uploads, PageGuard, MAX_LIST_PAGES};
use crate::s3api::{collect, PartInfo};
use crate::shared::Inner;
use crate::spool::Spool;
use crate::tail::{Tail, MAX_PART, MIN_PART};

/// Writes smaller than this are copied into one buffer; larger ones are kept as they are
/// (reference-counted, no copy) until their part is uploaded.
const COPY_BELOW: usize = 64 * 1024;

/// Most parts a resume accepts from ListParts before giving up: S3 allows 10,000 parts per
/// upload; this leaves room for odd servers while bounding memory.
const MAX_LISTED_PARTS: usize = 100_000;

/// Follows a paginated listing of `operation` from its first page to its last.
///
/// `fetch(marker)` gets one page: its items and the marker of the next page (`None` on the
/// last). Each item goes to `each`, whose `Err` stops the listing. A server whose listing
/// never ends is stopped by a [`PageGuard`] with a `Backend` error about `path` instead of
/// looping: a marker already seen, one that `advances(previous, next)` says goes backwards, or
/// more than `max_pages` pages.
async fn follow_pages<M, T, F, Fut>(
    operation: &'static str,
    path: &str,
    max_pages: usize,
    advances: fn(&M, &M) -> bool,
    mut fetch: F,
    mut each: impl FnMut(T) -> std::result::Result<(), String>,
) -> Result<()>
where
    M: Clone + Eq + std::hash::Hash + fmt::Debug,
    F: FnMut(Option<M>) -> Fut,
    Fut: std::future::Future<
        Output = std::result::Result<(Vec<T>, Option<M>), crate::error::S3Error>,
    >,
{
    let malformed =
        |why: String| Error::backend(DRIVER, Some(path), S3Error::malformed(operation, why));
    let mut guard = PageGuard::new(operation, "resume")
        .ordered(advances)
        .max_pages(max_pages);
    let mut marker: Option<M> = None;
    loop {
        let (items, next) = fetch(marker.take())
            .await
            .map_err(|e| e.into_backend(path))?;
        for item in items {
            each(item).map_err(&malformed)?;
        }
        let Some(next) = next else {
            return Ok(());
        };
        marker = Some(guard.next(next).map_err(|e| e.into_backend(path))?);
    }
}

/// Bytes waiting for the next part, as a list of pieces so large writes are never copied, or
/// in a spool file (`spooldir`).
#[derive(Default)]
struct PartBuffer {
    pieces: Vec<Bytes>,
    small: BytesMut,
    len: usize,
    /// With `spooldir`: the bytes live here, `pieces` and `small` stay empty.
    spool: Option<Spool>,
}

impl PartBuffer {
    fn push(&mut self, data: Bytes) {
        self.len += data.len();
        if data.len() >= COPY_BELOW {
            self.seal();
            self.pieces.push(data);
        } else {
            self.small.extend_from_slice(&data);
        }
    }

    fn seal(&mut self) {
        if !self.small.is_empty() {
            self.pieces.push(self.small.split().freeze());
        }
    }

    fn take(&mut self) -> Vec<Bytes> {
        self.seal();
        self.len = 0;
        std::mem::take(&mut self.pieces)
    }

    /// Everything buffered as one `Bytes`, leaving it buffered (joined, so asking again is
    /// free).
    fn contents(&mut self) -> Bytes {
        self.seal();
        if self.pieces.len() > 1 {
            let mut all = BytesMut::with_capacity(self.len);
            for p in &self.pieces {
                all.extend_from_slice(p);
            }
            self.pieces = vec![all.freeze()];
        }
        self.pieces.first().cloned().unwrap_or_default()
    }

    fn clear(&mut self) {
        self.pieces.clear();
        self.small.clear();
        self.len = 0;
    }

    /// [`push`](Self::push), or an append to the spool file.
    async fn append(&mut self, data: Bytes) -> std::io::Result<()> {
        match &mut self.spool {
            Some(s) => {
                s.push(&data).await?;
                self.len += data.len();
                Ok(())
            }
            None => {
                self.push(data);
                Ok(())
            }
        }
    }

    /// [`take`](Self::take), reading the spool file back (one piece) and emptying it.
    async fn take_part(&mut self) -> std::io::Result<Vec<Bytes>> {
        match &mut self.spool {
            Some(s) => {
                let all = s.take().await?;
                self.len = 0;
                Ok(vec![all])
            }
            None => Ok(self.take()),
        }
    }

    /// [`contents`](Self::contents), reading the spool file back.
    async fn read_all(&mut self) -> std::io::Result<Bytes> {
        match &mut self.spool {
            Some(s) => s.contents().await,
            None => Ok(self.contents()),
        }
    }

    /// Why the spool failed, as an error about `path`.
    fn spool_error(&self, path: &StoragePath, e: std::io::Error) -> Error {
        let file = self
            .spool
            .as_ref()
            .map_or_else(String::new, |s| format!(" {}", s.path().display()));
        Error::backend(DRIVER, Some(path), format!("spooldir file{file}: {e}"))
    }
}

/// What a resume found: the parts that are content, the part size to go on with, the bytes
/// after the last full part, and whether the upload can be continued as it is.
#[derive(Debug, PartialEq, Eq)]
struct ResumePlan {
    /// The content's parts, numbered `1..=parts.len()`.
    parts: Vec<PartInfo>,
    /// Size of every non-final part of this upload.
    chunk: u64,
    /// The bytes after the last full part (from the tail record).
    buffer: Bytes,
    /// Whether the upload has a tail record.
    has_tail: bool,
    /// Whether the parts end with one that no part may follow (an upload without a record,
    /// left by distribution or an older regstore): the writer re-bases before new bytes.
    legacy: bool,
}

/// Decides how to resume from the listed `parts` (sorted by number, no duplicates) and the
/// upload's tail record; `configured` is the driver's `chunksize`.
///
/// With a record, the parts before its number must all be there with its part size (else the
/// upload is damaged: an error, never a guess), and later parts are a crashed writer's
/// left-overs. Without one, the content is the run of parts numbered from 1 without a gap: a
/// part after a gap can only be a left-over of a part upload that failed.
fn plan_resume(
    mut parts: Vec<PartInfo>,
    tail: Option<Tail>,
    configured: u64,
) -> std::result::Result<ResumePlan, String> {
    if let Some(tail) = tail {
        let full = (tail.next_part - 1) as usize;
        for n in 1..=full {
            match parts.get(n - 1) {
                Some(p) if p.number == n as i64 && p.size == tail.part_size => {}
                Some(p) if p.number == n as i64 => {
                    return Err(format!(
                        "part {n} is {} bytes, the tail record says {}",
                        p.size, tail.part_size
                    ))
                }
                _ => return Err(format!("part {n} of the tail record is missing")),
            }
        }
        parts.truncate(full);
        return Ok(ResumePlan {
            parts,
            chunk: tail.part_size,
            buffer: tail.payload,
            has_tail: true,
            legacy: false,
        });
    }
    let run = parts
        .iter()
        .enumerate()
        .take_while(|(i, p)| p.number == *i as i64 + 1)
        .count();
    parts.truncate(run);
    let mut total: u64 = 0;
    for p in &parts {
        total = total
            .checked_add(p.size)
            .filter(|&s| i64::try_from(s).is_ok())
            .ok_or_else(|| "part sizes add up to more than an object can hold".to_owned())?;
    }
    // Parts all of one size that S3 lets another part follow: go on with that size.
    let common = parts
        .first()
        .map(|p| p.size)
        .filter(|&s| (MIN_PART..=MAX_PART).contains(&s) && parts.iter().all(|p| p.size == s));
    Ok(ResumePlan {
        legacy: !parts.is_empty() && common.is_none(),
        chunk: common.unwrap_or(configured),
        parts,
        buffer: Bytes::new(),
        has_tail: false,
    })
}

/// A writer on one multipart upload. See the module documentation.
pub(crate) struct S3Writer {
    inner: Arc<Inner>,
    path: StoragePath,
    key: String,
    upload_id: String,
    /// Uploaded parts, sorted by part number.
    parts: Vec<PartInfo>,
    /// Sum of the uploaded parts' sizes.
    flushed: u64,
    buf: PartBuffer,
    chunk: usize,
    /// Most parts uploading at once (`multipartuploadconcurrency`).
    concurrency: usize,
    /// Part uploads running on their own tasks; each yields its size and outcome.
    in_flight: FuturesUnordered<JoinHandle<(u64, Result<PartInfo>)>>,
    /// Bytes of the parts in flight (counted in `size` from the moment they are handed over).
    in_flight_bytes: u64,
    /// Number the next part gets (parts may finish out of order).
    next_number: i64,
    /// Why a part upload failed: the content has a hole, so the writer takes no more bytes.
    failed: Option<String>,
    /// Whether the upload has a tail record (this writer's or the one it resumed).
    has_tail: bool,
    /// Resumed parts that no part may follow: re-base before the first new byte.
    legacy: bool,
    /// Whether bytes were written since the writer opened (a `close` without any sends nothing).
    changed: bool,
    lifecycle: WriterLifecycle,
}

impl fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Writer")
            .field("path", &self.path)
            .field("parts", &self.parts.len())
            .field("flushed", &self.flushed)
            .field("buffered", &self.buf.len)
            .field("in_flight", &self.in_flight.len())
            .field("has_tail", &self.has_tail)
            .field("legacy", &self.legacy)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl S3Writer {
    fn new(
        inner: Arc<Inner>,
        path: StoragePath,
        key: String,
        upload_id: String,
        spool: Option<Spool>,
    ) -> Self {
        let chunk = usize::try_from(inner.api.config().chunk_size)
            .unwrap_or(usize::MAX)
            .max(MIN_PART as usize);
        let concurrency = inner.api.config().multipart_upload_concurrency.max(1);
        S3Writer {
            inner,
            lifecycle: WriterLifecycle::new(DRIVER, path.clone()),
            path,
            key,
            upload_id,
            parts: Vec::new(),
            flushed: 0,
            buf: PartBuffer {
                spool,
                ..PartBuffer::default()
            },
            chunk,
            concurrency,
            in_flight: FuturesUnordered::new(),
            in_flight_bytes: 0,
            next_number: 1,
            failed: None,
            has_tail: false,
            legacy: false,
            changed: false,
        }
    }

    /// The spool file of a new writer when `spooldir` is set; created before the upload so a
    /// failure leaves nothing behind.
    fn new_spool(inner: &Inner, path: &StoragePath) -> Result<Option<Spool>> {
        let Some(dir) = &inner.api.config().spool_dir else {
            return Ok(None);
        };
        Spool::create(dir).map(Some).map_err(|e| {
            Error::backend(
                DRIVER,
                Some(path),
                format!(
                    "spooldir {}: cannot create a spool file: {e}",
                    dir.display()
                ),
            )
        })
    }

    /// A writer on a new multipart upload at `path` (`append == false`).
    pub(crate) async fn create(inner: Arc<Inner>, path: StoragePath) -> Result<Self> {
        let key = inner.keys.key(&path);
        let spool = Self::new_spool(&inner, &path)?;
        let upload_id = inner
            .api
            .create_multipart_upload(&key, &inner.headers)
            .await
            .map_err(|e| e.into_backend(&path))?;
        Ok(Self::new(inner, path, key, upload_id, spool))
    }

    /// A writer resuming the upload a closed writer left at `path` (`append == true`).
    ///
    /// Finds the uploads whose key is exactly this path's (paginated; the most recently
    /// initiated wins if there are several), lists its parts and reads its tail record (see
    /// [`plan_resume`]). With no upload: an empty committed object starts afresh, a non-empty
    /// one is [`Error::AppendToCommitted`], a missing one is `PathNotFound`. A damaged upload
    /// (a record whose parts are missing, a record that fails its checks) is a `Backend` error
    /// naming the path.
    pub(crate) async fn resume(inner: Arc<Inner>, path: StoragePath) -> Result<Self> {
        let api = &inner.api;
        let key = inner.keys.key(&path);
        // The newest upload of exactly this key (one with a longer key shares the prefix).
        let best = all_uploads(api, &key, "resume")
            .await
            .map_err(|e| e.into_backend(&path))?
            .into_iter()
            .filter(|u| u.key == key)
            .fold(
                None,
                |best: Option<crate::s3api::UploadInfo>, u| match &best {
                    Some(b) if u.initiated < b.initiated => best,
                    _ => Some(u),
                },
            );

        let Some(upload) = best else {
            let head = api
                .head_object(&key)
                .await
                .map_err(|e| e.into_error(&path))?;
            if head.size == 0 {
                return Self::create(Arc::clone(&inner), path).await;
            }
            return Err(Error::AppendToCommitted {
                driver: DRIVER.to_owned(),
                path: path.to_string(),
                size: head.size,
            });
        };

        let mut parts = Vec::new();
        follow_pages(
            "ListParts",
            &path,
            MAX_LIST_PAGES,
            // Part number markers only grow.
            |prev: &i64, next: &i64| next > prev,
            |marker| {
                let (key, id) = (&key, &upload.upload_id);
                async move {
                    let page = api.list_parts(key, id, marker).await?;
                    Ok((page.parts, page.next_marker))
                }
            },
            |p| {
                parts.push(p);
                if parts.len() > MAX_LISTED_PARTS {
                    return Err(format!("more than {MAX_LISTED_PARTS} parts listed"));
                }
                Ok(())
            },
        )
        .await?;
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        let tail = read_tail(&inner, &key, &upload.upload_id, &path).await?;
        let plan = plan_resume(parts, tail, inner.api.config().chunk_size.max(MIN_PART)).map_err(
            |why| {
                Error::backend(
                    DRIVER,
                    Some(&path),
                    format!("cannot resume the upload: {why}; cancel it and upload again"),
                )
            },
        )?;
        let spool = Self::new_spool(&inner, &path)?;
        let mut w = Self::new(Arc::clone(&inner), path, key, upload.upload_id, spool);
        w.flushed = plan.parts.iter().map(|p| p.size).sum();
        w.next_number = plan.parts.len() as i64 + 1;
        w.parts = plan.parts;
        w.chunk = usize::try_from(plan.chunk).unwrap_or(usize::MAX);
        if let Err(e) = w.buf.append(plan.buffer).await {
            return Err(w.buf.spool_error(&w.path, e));
        }
        w.has_tail = plan.has_tail;
        w.legacy = plan.legacy;
        Ok(w)
    }

    /// Refuses use after a failed part: later bytes would land after a missing part.
    fn check_not_failed(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(Error::backend(
                DRIVER,
                Some(self.path.as_str()),
                format!("an earlier part upload of this writer failed ({why}); cancel it"),
            )),
            None => Ok(()),
        }
    }

    /// Records one finished part upload; a failure poisons the writer and is returned.
    fn settle(
        &mut self,
        joined: std::result::Result<(u64, Result<PartInfo>), tokio::task::JoinError>,
    ) -> Result<()> {
        let (len, outcome) = match joined {
            Ok(done) => done,
            Err(e) => (
                0,
                Err(Error::backend(
                    DRIVER,
                    Some(self.path.as_str()),
                    format!("part upload task ended abnormally: {e}"),
                )),
            ),
        };
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(len);
        match outcome {
            Ok(part) => {
                self.flushed += part.size;
                // Parts finish out of order; keep them sorted by number for completion.
                let at = self.parts.partition_point(|p| p.number < part.number);
                self.parts.insert(at, part);
                Ok(())
            }
            Err(e) => {
                if self.failed.is_none() {
                    self.failed = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Waits for every part in flight; the first failure is returned (after all have ended).
    async fn drain(&mut self) -> Result<()> {
        let mut first = None;
        while let Some(joined) = self.in_flight.next().await {
            if let Err(e) = self.settle(joined) {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => self.check_not_failed(),
        }
    }

    /// Stores the tail record: the parts before the next part number, then `payload`.
    async fn put_tail(&mut self, payload: Bytes) -> Result<()> {
        let record = Tail {
            next_part: self.next_number,
            part_size: self.chunk as u64,
            payload,
        };
        let tail_key = crate::tail::tail_key(self.inner.keys.root(), &self.key, &self.upload_id);
        self.inner
            .api
            .put_object(
                &tail_key,
                record.encode(&self.key),
                &self.inner.tail_headers,
            )
            .await
            .map_err(|e| e.into_backend(&self.path))?;
        self.has_tail = true;
        Ok(())
    }

    /// Deletes the tail record, if the upload has one.
    async fn delete_tail(&mut self) -> Result<()> {
        if !self.has_tail {
            return Ok(());
        }
        let tail_key = crate::tail::tail_key(self.inner.keys.root(), &self.key, &self.upload_id);
        self.inner
            .api
            .delete_object(&tail_key)
            .await
            .map_err(|e| e.into_backend(&self.path))?;
        self.has_tail = false;
        Ok(())
    }

    /// Hands what is buffered to a part upload of its own (nothing if the buffer is empty),
    /// first waiting for a free slot when `concurrency` parts are in flight. A part that is
    /// not the `last` one is preceded, once per upload, by a tail record of the content so
    /// far, so that a crash from here on resumes exactly there.
    async fn flush_part(&mut self, last: bool) -> Result<()> {
        self.check_not_failed()?;
        if self.buf.len == 0 {
            return Ok(());
        }
        if !last && !self.has_tail {
            if let Err(e) = self.put_tail(Bytes::new()).await {
                // The bytes are buffered and counted already: a caller retrying the write
                // would duplicate them, so the writer takes no more (as after a failed part).
                self.failed = Some(e.to_string());
                return Err(e);
            }
        }
        while self.in_flight.len() >= self.concurrency {
            if let Some(joined) = self.in_flight.next().await {
                self.settle(joined)?;
            }
        }
        let len = self.buf.len as u64;
        let pieces = match self.buf.take_part().await {
            Ok(p) => p,
            Err(e) => {
                let e = self.buf.spool_error(&self.path, e);
                self.failed = Some(e.to_string());
                return Err(e);
            }
        };
        let number = self.next_number;
        self.next_number += 1;
        let inner = Arc::clone(&self.inner);
        let key = self.key.clone();
        let upload_id = self.upload_id.clone();
        let path = self.path.clone();
        let upload = async move {
            let outcome = inner
                .api
                .upload_part(&key, &upload_id, number, pieces)
                .await
                .map_err(|e| e.into_backend(&path));
            (len, outcome)
        };
        self.in_flight_bytes += len;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => self.in_flight.push(rt.spawn(upload)),
            // Outside a runtime (never in practice: the HTTP client needs one) upload inline.
            Err(_) => {
                let done = upload.await;
                self.settle(Ok(done))?;
            }
        }
        Ok(())
    }

    /// Turns a resumed upload whose parts no part may follow into one of full parts plus a
    /// tail record (see the module docs). Runs at most once per writer, before any new byte.
    async fn rebase(&mut self) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let api = &inner.api;
        let path_owned = self.path.clone();
        let path = path_owned.as_str();
        if let Err(e) = api
            .complete_multipart_upload(&self.key, &self.upload_id, &self.parts)
            .await
        {
            let mut errors = vec![e.into_backend(path)];
            if let Err(a) = api.abort_multipart_upload(&self.key, &self.upload_id).await {
                errors.push(a.into_backend(path));
            }
            return Err(Error::Multiple {
                driver: DRIVER.to_owned(),
                errors,
            });
        }
        let total = self.flushed;
        let chunk = self.chunk as u64;
        self.parts.clear();
        self.flushed = 0;
        self.next_number = 1;
        // Same headers as every other write: encryption, KMS key id, class, ACL.
        self.upload_id = api
            .create_multipart_upload(&self.key, &self.inner.headers)
            .await
            .map_err(|e| e.into_backend(path))?;
        let full = total / chunk;
        let (key, upload_id) = (self.key.as_str(), self.upload_id.as_str());
        let copied: Vec<PartInfo> = futures::stream::iter(0..full)
            .map(|i| async move {
                let (start, end) = (i * chunk, (i + 1) * chunk - 1);
                api.upload_part_copy(key, upload_id, i as i64 + 1, key, Some((start, end)), chunk)
                    .await
            })
            .buffered(api.config().multipart_copy_max_concurrency.max(1))
            .try_collect()
            .await
            .map_err(|e| e.into_backend(path))?;
        self.next_number = full as i64 + 1;
        self.flushed = full * chunk;
        self.parts = copied;
        let rest = total - full * chunk;
        if rest > 0 {
            let answer = api
                .get_range(&self.key, full * chunk, Some(total - 1), None, path)
                .await
                .map_err(|e| e.into_error(path))?;
            let Some(answer) = answer.filter(|a| {
                a.content_length == Some(rest)
                    && a.range.as_ref().is_none_or(|r| r.start == full * chunk)
            }) else {
                return Err(Error::backend(
                    DRIVER,
                    Some(path),
                    format!("resumed upload: reading back its last {rest} bytes failed"),
                ));
            };
            let old = collect(Some(rest), answer.body, path).await?;
            self.buf
                .append(old)
                .await
                .map_err(|e| self.buf.spool_error(&path_owned, e))?;
        }
        let payload = self
            .buf
            .read_all()
            .await
            .map_err(|e| self.buf.spool_error(&path_owned, e))?;
        self.put_tail(payload).await?;
        // The old bytes now live in the new upload (parts and tail record): remove the object
        // the completion made visible, so nothing is readable at the path before `commit`.
        api.delete_object(&self.key)
            .await
            .map_err(|e| e.into_backend(path))?;
        Ok(())
    }

    /// Aborts the current upload and deletes its tail record, reporting `cause` (and any
    /// failure of the clean-up).
    async fn abort_after(&mut self, cause: Error) -> Error {
        self.stop_in_flight();
        let mut errors = vec![cause];
        if let Err(a) = self
            .inner
            .api
            .abort_multipart_upload(&self.key, &self.upload_id)
            .await
        {
            errors.push(a.into_backend(&self.path));
        }
        if let Err(e) = self.delete_tail().await {
            errors.push(e);
        }
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            Error::Multiple {
                driver: DRIVER.to_owned(),
                errors,
            }
        }
    }

    /// Stops the part uploads still running (their bytes are not wanted any more).
    fn stop_in_flight(&mut self) {
        for h in self.in_flight.iter() {
            h.abort();
        }
        self.in_flight = FuturesUnordered::new();
        self.in_flight_bytes = 0;
    }
}

/// Reads the tail record of upload `upload_id` of `key`; `None` when it has none.
async fn read_tail(
    inner: &Inner,
    key: &str,
    upload_id: &str,
    path: &StoragePath,
) -> Result<Option<Tail>> {
    let tail_key = crate::tail::tail_key(inner.keys.root(), key, upload_id);
    let damaged = |why: String| {
        Error::backend(
            DRIVER,
            Some(path),
            format!("cannot resume the upload: its tail record {tail_key} {why}"),
        )
    };
    let (len, body) = match inner.api.get_object(&tail_key, path).await {
        Ok(Some(answer)) => answer,
        Ok(None) => return Err(damaged("answered 416".to_owned())),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into_backend(path)),
    };
    // A record holds less than one part; refuse to buffer more than the largest one could be.
    match len {
        Some(n) if n <= crate::tail::MAX_RECORD => {}
        _ => return Err(damaged(format!("has an unexpected length ({len:?})"))),
    }
    let raw = collect(len, body, path).await?;
    Tail::decode(raw, key)
        .map(Some)
        .map_err(|why| damaged(format!("is damaged ({why})")))
}

impl Drop for S3Writer {
    /// A writer dropped without `close` loses its buffered bytes anyway; its part uploads
    /// must not keep running (and holding memory) behind the caller's back.
    fn drop(&mut self) {
        self.stop_in_flight();
    }
}

#[async_trait]
impl FileWriter for S3Writer {
    async fn write(&mut self, mut data: Bytes) -> Result<()> {
        self.lifecycle.check_open()?;
        self.check_not_failed()?;
        if data.is_empty() {
            return Ok(());
        }
        if self.legacy {
            if let Err(e) = self.rebase().await {
                // The upload may be completed, aborted or half re-created: this writer can no
                // longer tell, so it refuses further use instead of writing to the wrong one.
                self.lifecycle.poison();
                return Err(e);
            }
            self.legacy = false;
        }
        self.changed = true;
        while !data.is_empty() {
            let need = self.chunk - self.buf.len;
            let piece = if data.len() < need {
                std::mem::take(&mut data)
            } else {
                data.split_to(need)
            };
            if let Err(e) = self.buf.append(piece).await {
                // Part of the bytes may be in the file: the buffer cannot be trusted any more.
                let e = self.buf.spool_error(&self.path, e);
                self.failed = Some(e.to_string());
                return Err(e);
            }
            if self.buf.len == self.chunk {
                self.flush_part(false).await?;
            }
        }
        Ok(())
    }

    /// Uploaded bytes plus those in flight plus buffered ones: exact at every moment.
    fn size(&self) -> u64 {
        self.flushed + self.in_flight_bytes + self.buf.len as u64
    }

    async fn close(&mut self) -> Result<()> {
        if !self.lifecycle.close()? {
            return Ok(());
        }
        self.drain().await?;
        if !self.changed {
            // Nothing new: the upload is as the writer found it.
            return Ok(());
        }
        // Written even when nothing is buffered: it tells a resume to ignore parts a crashed
        // writer may have left at or after the next number.
        let payload = match self.buf.read_all().await {
            Ok(p) => p,
            Err(e) => return Err(self.buf.spool_error(&self.path, e)),
        };
        self.put_tail(payload).await
    }

    async fn cancel(&mut self) -> Result<()> {
        self.lifecycle.cancel()?;
        self.buf.clear();
        // Removes the spool file.
        self.buf.spool = None;
        self.stop_in_flight();
        self.inner
            .api
            .abort_multipart_upload(&self.key, &self.upload_id)
            .await
            .map_err(|e| e.into_backend(&self.path))?;
        self.delete_tail().await
    }

    async fn commit(&mut self) -> Result<()> {
        self.lifecycle.check_open()?;
        let flushed = self.flush_part(true).await;
        let drained = self.drain().await;
        // Everything is uploaded (or lost): remove the spool file.
        self.buf.spool = None;
        if let Err(cause) = flushed.and(drained) {
            // A part is missing: the upload can never be completed. Abort it so its parts do
            // not linger (and bill), and end the writer.
            self.lifecycle.poison();
            return Err(self.abort_after(cause).await);
        }
        if self.parts.is_empty() {
            // CompleteMultipartUpload needs at least one part: an empty blob is one empty part.
            let part = self
                .inner
                .api
                .upload_part(&self.key, &self.upload_id, 1, Vec::new())
                .await
                .map_err(|e| e.into_backend(&self.path))?;
            self.parts.push(part);
        }
        self.lifecycle.committed();
        if let Err(e) = self
            .inner
            .api
            .complete_multipart_upload(&self.key, &self.upload_id, &self.parts)
            .await
        {
            let cause = e.into_backend(&self.path);
            return Err(self.abort_after(cause).await);
        }
        // The content is committed; a record left behind is invisible and only costs its
        // bytes until `uploads abort` clears it, so failing to delete it is not an error.
        if let Err(e) = self.delete_tail().await {
            tracing::warn!(path = %self.path, error = %e, "could not delete the tail record");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_buffer_keeps_large_pieces_and_joins_small_ones() {
        let mut b = PartBuffer::default();
        b.push(Bytes::from_static(b"ab"));
        b.push(Bytes::from_static(b"cd"));
        let big = Bytes::from(vec![1u8; COPY_BELOW]);
        b.push(big.clone());
        b.push(Bytes::from_static(b"e"));
        assert_eq!(b.len, 4 + COPY_BELOW + 1);
        let pieces = b.take();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0], "abcd");
        // The large write is the same allocation, not a copy.
        assert_eq!(pieces[1].as_ptr(), big.as_ptr());
        assert_eq!(pieces[2], "e");
        assert_eq!(b.len, 0);
        assert!(b.take().is_empty());
    }

    /// Runs `follow_pages` over a scripted server: page `i` answers `script[i]` (items, next
    /// marker); asking past the script is a test failure. Returns the outcome, the markers
    /// asked for and the items seen.
    async fn scripted(
        script: Vec<(Vec<u32>, Option<i64>)>,
        max_pages: usize,
    ) -> (Result<()>, Vec<Option<i64>>, Vec<u32>) {
        let asked = std::cell::RefCell::new(Vec::new());
        let mut items = Vec::new();
        let out = follow_pages(
            "ListParts",
            "/up/data",
            max_pages,
            |prev: &i64, next: &i64| next > prev,
            |marker| {
                let n = {
                    let mut a = asked.borrow_mut();
                    a.push(marker);
                    a.len() - 1
                };
                let page = script.get(n).cloned();
                async move {
                    page.ok_or_else(|| S3Error::malformed("ListParts", "asked past the script"))
                }
            },
            |i| {
                items.push(i);
                Ok(())
            },
        )
        .await;
        (out, asked.into_inner(), items)
    }

    /// A `follow_pages` error must be a malformed-answer `Backend` error about the path.
    fn assert_listing_error(out: Result<()>, want: &str) {
        let e = out.expect_err("the listing must stop with an error");
        let text = e.to_string();
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        assert!(
            text.contains("/up/data") && text.contains("ListParts"),
            "{text}"
        );
        assert!(text.contains(want), "{text}");
    }

    #[tokio::test]
    async fn pages_are_followed_to_the_last() {
        let (out, asked, items) = scripted(
            vec![(vec![1, 2], Some(2)), (vec![3], Some(3)), (vec![4], None)],
            10,
        )
        .await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(asked, vec![None, Some(2), Some(3)]);
        assert_eq!(items, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_repeating_marker_stops_the_listing() {
        // A server that always answers the same next marker would be asked forever.
        let page = (vec![1], Some(5));
        let (out, asked, _) = scripted(vec![page; 1000], 100_000).await;
        assert_listing_error(out, "does not advance");
        assert_eq!(asked, vec![None, Some(5)]);
    }

    #[tokio::test]
    async fn a_cycling_or_backward_marker_stops_the_listing() {
        // 2 → 7 → 2: each differs from the one before, but the listing went backwards.
        let (out, asked, _) = scripted(
            vec![(vec![], Some(2)), (vec![], Some(7)), (vec![], Some(2))],
            100,
        )
        .await;
        assert_listing_error(out, "does not advance");
        assert_eq!(asked.len(), 3);
        // A cycle that the order check cannot see (markers of a listing with no order) is
        // caught by the set of markers already seen.
        let asked = std::cell::Cell::new(0usize);
        let out = follow_pages(
            "ListParts",
            "/up/data",
            100,
            |_: &i64, _: &i64| true,
            |_| {
                asked.set(asked.get() + 1);
                let next = [1i64, 2, 3][asked.get() % 3];
                async move { Ok((Vec::<u32>::new(), Some(next))) }
            },
            |_| Ok(()),
        )
        .await;
        assert_listing_error(out, "does not advance");
        assert_eq!(asked.get(), 4);
    }

    #[tokio::test]
    async fn an_endless_advancing_listing_stops_at_the_page_cap() {
        let asked = std::cell::Cell::new(0i64);
        let out = follow_pages(
            "ListParts",
            "/up/data",
            50,
            |prev: &i64, next: &i64| next > prev,
            |_| {
                asked.set(asked.get() + 1);
                let next = asked.get();
                async move { Ok((Vec::<u32>::new(), Some(next))) }
            },
            |_| Ok(()),
        )
        .await;
        assert_listing_error(out, "within 50 pages");
        assert_eq!(asked.get(), 50);
    }

    #[tokio::test]
    async fn an_item_error_or_a_fetch_error_stops_the_listing() {
        let out = follow_pages(
            "ListParts",
            "/up/data",
            10,
            |prev: &i64, next: &i64| next > prev,
            |_| async { Ok((vec![1u32, 2, 3], Some(1))) },
            |i| {
                if i == 2 {
                    Err("too many".to_owned())
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_listing_error(out, "too many");
        let out = follow_pages(
            "ListParts",
            "/up/data",
            10,
            |prev: &i64, next: &i64| next > prev,
            |_| async {
                Err::<(Vec<u32>, Option<i64>), _>(S3Error::malformed("ListParts", "bad xml"))
            },
            |_| Ok(()),
        )
        .await;
        assert_listing_error(out, "bad xml");
    }

    fn part(number: i64, size: u64) -> PartInfo {
        PartInfo {
            number,
            etag: "\"e\"".to_owned(),
            size,
        }
    }

    const MIB: u64 = 1024 * 1024;

    fn sizes(parts: &[PartInfo]) -> Vec<(i64, u64)> {
        parts.iter().map(|p| (p.number, p.size)).collect()
    }

    #[test]
    fn without_a_record_full_parts_go_on_and_short_ones_rebase() {
        let plan = plan_resume(vec![], None, 10 * MIB).unwrap();
        assert!(!plan.legacy && !plan.has_tail && plan.parts.is_empty());
        assert_eq!(plan.chunk, 10 * MIB);
        // Equal parts of at least 5 MiB: continued with their size, whatever is configured.
        let plan = plan_resume(vec![part(1, 7 * MIB), part(2, 7 * MIB)], None, 10 * MIB).unwrap();
        assert!(!plan.legacy);
        assert_eq!(plan.chunk, 7 * MIB);
        // distribution's short last part, a short only part, unequal parts: re-based once.
        for parts in [
            vec![part(1, 10 * MIB), part(2, 3)],
            vec![part(1, MIB)],
            vec![part(1, 10 * MIB), part(2, 12 * MIB)],
        ] {
            let plan = plan_resume(parts.clone(), None, 10 * MIB).unwrap();
            assert!(plan.legacy, "{parts:?}");
            assert_eq!(plan.chunk, 10 * MIB);
            assert_eq!(plan.parts, parts);
        }
        // A gap: what follows it is a failed writer's left-over, not content.
        let plan = plan_resume(
            vec![part(1, 5 * MIB), part(3, 5 * MIB), part(4, 1)],
            None,
            10 * MIB,
        )
        .unwrap();
        assert_eq!(sizes(&plan.parts), vec![(1, 5 * MIB)]);
        assert!(!plan.legacy);
        let plan = plan_resume(vec![part(2, 5 * MIB)], None, 10 * MIB).unwrap();
        assert!(plan.parts.is_empty() && !plan.legacy);
    }

    #[test]
    fn a_record_decides_the_content_and_later_parts_are_ignored() {
        let tail = |next_part, payload: &'static [u8]| Tail {
            next_part,
            part_size: 5 * MIB,
            payload: Bytes::from_static(payload),
        };
        let parts = vec![
            part(1, 5 * MIB),
            part(2, 5 * MIB),
            part(3, 5 * MIB),
            part(4, 2),
        ];
        let plan = plan_resume(parts.clone(), Some(tail(3, b"xyz")), 10 * MIB).unwrap();
        assert_eq!(sizes(&plan.parts), vec![(1, 5 * MIB), (2, 5 * MIB)]);
        assert_eq!(plan.chunk, 5 * MIB);
        assert_eq!(plan.buffer, "xyz");
        assert!(plan.has_tail && !plan.legacy);
        let plan = plan_resume(parts, Some(tail(1, b"")), 10 * MIB).unwrap();
        assert!(plan.parts.is_empty() && plan.buffer.is_empty());
        // Parts the record counts on must be there, with its size.
        let e = plan_resume(vec![part(1, 5 * MIB)], Some(tail(3, b"")), MIB).unwrap_err();
        assert!(e.contains("part 2") && e.contains("missing"), "{e}");
        let e = plan_resume(vec![part(1, 6 * MIB)], Some(tail(2, b"")), MIB).unwrap_err();
        assert!(e.contains("part 1 is"), "{e}");
    }

    #[test]
    fn server_sizes_that_overflow_are_refused() {
        let big = i64::MAX as u64;
        let e = plan_resume(vec![part(1, big), part(2, big), part(3, 2)], None, MIB);
        assert!(e.as_ref().is_err_and(|w| w.contains("add up")), "{e:?}");
        assert!(plan_resume(vec![part(1, big), part(2, 1)], None, MIB).is_err());
    }

    #[test]
    fn part_buffer_contents_keeps_what_is_buffered() {
        let mut b = PartBuffer::default();
        assert!(b.contents().is_empty());
        b.push(Bytes::from_static(b"ab"));
        b.push(Bytes::from(vec![7u8; COPY_BELOW]));
        b.push(Bytes::from_static(b"c"));
        let all = b.contents();
        assert_eq!(all.len(), 3 + COPY_BELOW);
        assert_eq!(b.contents(), all);
        assert_eq!(b.len, 3 + COPY_BELOW);
        assert_eq!(b.take().concat(), all.to_vec());
    }

    #[test]
    fn part_buffer_clear_forgets_everything() {
        let mut b = PartBuffer::default();
        b.push(Bytes::from_static(b"xyz"));
        b.push(Bytes::from(vec![0u8; COPY_BELOW * 2]));
        b.clear();
        assert_eq!(b.len, 0);
        assert!(b.take().is_empty());
    }
}
