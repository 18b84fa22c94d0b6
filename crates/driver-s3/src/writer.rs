//! The resumable writer: one S3 multipart upload per writer, on the final key.
//!
//! Every part except the last is exactly `chunksize` bytes (Cloudflare R2 rejects uploads with
//! unequal non-final parts). `close` uploads what is buffered as a possibly short part and
//! leaves the upload open, so a later writer opened with `append` finds it by exact key,
//! rebuilds its parts and size from ListParts, and goes on.
//!
//! A short last part (from a `close`) cannot be followed by more parts: S3 needs every
//! non-final part to be at least 5 MiB, R2 needs it to be `chunksize`. Before the first new
//! byte such a writer *re-bases*: it completes the upload (the partial object becomes
//! visible at the key), starts a new upload with the same encryption, KMS key id, storage
//! class and ACL headers (distribution forgets the KMS key id here), and then
//! * if the content so far is under 5 MiB, reads it back into the buffer, so the new upload
//!   again has only `chunksize` parts;
//! * otherwise copies the whole object as part 1 (UploadPartCopy). Part 1 then has the old
//!   size, not `chunksize`: S3 accepts that, R2's equal-part rule cannot be met after a copy.
//!   Re-reading gigabytes to satisfy R2 would make every resumed push cost a full download,
//!   so regstore accepts this trade-off (as distribution does); registries on R2 should not
//!   rely on resuming uploads larger than 5 MiB that were closed on a short part.
//!
//! Parts upload concurrently while the caller keeps writing: a full part is handed to a task
//! of its own and `write` returns; with `multipartuploadconcurrency` parts in flight, the next
//! full part waits for one of them (back-pressure), so a writer holds at most
//! `chunksize × (concurrency + 1)` bytes whatever the object's size. The pieces the caller
//! wrote go to the HTTP body as they are (reference-counted `Bytes`, no copy). `close` and
//! `commit` wait for every part in flight and report the first failure; after a failed part
//! the writer refuses further writes (its content has a hole), and `commit` aborts the upload.
//!
//! Finally the completed object is deleted again (distribution leaves it), so nothing is
//! readable at the path before `commit` except during the few requests of a re-base. Two
//! consequences: content committed at the path *before* this writer started is gone after a
//! re-base (a registry never overwrites a path it is uploading to), and a crash inside the
//! re-base can leave the partial object visible.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use regstore_driver_api::{Error, FileWriter, Result, StoragePath, WriterLifecycle};
use tokio::task::JoinHandle;

use crate::driver::Inner;
use crate::error::{S3Error, DRIVER};
use crate::s3api::{collect, PartInfo};

/// S3's minimum size of a non-final part.
const MIN_PART: u64 = 5 * 1024 * 1024;

/// Writes smaller than this are copied into one buffer; larger ones are kept as they are
/// (reference-counted, no copy) until their part is uploaded.
const COPY_BELOW: usize = 64 * 1024;

/// Most pages a resume follows in one listing. Far more than any honest listing needs (ListParts
/// holds at most 10,000 parts, 1,000 per page), small enough that a server whose markers never
/// end cannot keep a writer open forever.
const MAX_LIST_PAGES: usize = 100_000;

/// Most parts a resume accepts from ListParts before giving up: S3 allows 10,000 parts per
/// upload; this leaves room for odd servers while bounding memory.
const MAX_LISTED_PARTS: usize = 100_000;

/// Follows a paginated listing of `operation` from its first page to its last.
///
/// `fetch(marker)` gets one page: its items and the marker of the next page (`None` on the
/// last). Each item goes to `each`, whose `Err` stops the listing. A server whose listing
/// never ends is stopped with a `Backend` error about `path` instead of looping: a marker
/// already seen, one that `advances(previous, next)` says goes backwards, or more than
/// `max_pages` pages.
async fn follow_pages<M, T, F, Fut>(
    operation: &'static str,
    path: &str,
    max_pages: usize,
    advances: impl Fn(&M, &M) -> bool,
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
    let mut seen = std::collections::HashSet::new();
    let mut marker: Option<M> = None;
    for _ in 0..max_pages {
        let (items, next) = fetch(marker.clone())
            .await
            .map_err(|e| e.into_backend(path))?;
        for item in items {
            each(item).map_err(&malformed)?;
        }
        let Some(next) = next else {
            return Ok(());
        };
        if marker.as_ref().is_some_and(|prev| !advances(prev, &next)) || !seen.insert(next.clone())
        {
            return Err(malformed(format!(
                "listing does not advance (next marker {next:?} after {marker:?})"
            )));
        }
        marker = Some(next);
    }
    Err(malformed(format!(
        "listing did not end within {max_pages} pages"
    )))
}

/// Size and next part number of an upload resumed with `parts` (sorted by number, from
/// ListParts). Server-provided numbers and sizes are checked, not trusted: a size sum beyond
/// what S3 can describe (`i64`) or a part number outside `1..=i32::MAX` is an error.
fn resumed_state(parts: &[PartInfo]) -> std::result::Result<(u64, i64), String> {
    let mut size: u64 = 0;
    for p in parts {
        // S3 numbers parts 1 to 10,000; allowing up to i32::MAX leaves room for odd servers
        // while the writer's later `next_number += 1` can never overflow.
        if !(1..=i64::from(i32::MAX)).contains(&p.number) {
            return Err(format!("part number {} is out of range", p.number));
        }
        size = size
            .checked_add(p.size)
            .filter(|&s| i64::try_from(s).is_ok())
            .ok_or_else(|| "part sizes add up to more than an object can hold".to_owned())?;
    }
    // Every number is in range (checked above), so this cannot overflow.
    let next = parts.last().map_or(1, |p| p.number + 1);
    Ok((size, next))
}

/// Bytes waiting for the next part, as a list of pieces so large writes are never copied.
#[derive(Default)]
struct PartBuffer {
    pieces: Vec<Bytes>,
    small: BytesMut,
    len: usize,
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

    fn clear(&mut self) {
        self.pieces.clear();
        self.small.clear();
        self.len = 0;
    }
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
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl S3Writer {
    fn new(inner: Arc<Inner>, path: StoragePath, key: String, upload_id: String) -> Self {
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
            buf: PartBuffer::default(),
            chunk,
            concurrency,
            in_flight: FuturesUnordered::new(),
            in_flight_bytes: 0,
            next_number: 1,
            failed: None,
        }
    }

    /// A writer on a new multipart upload at `path` (`append == false`).
    pub(crate) async fn create(inner: Arc<Inner>, path: StoragePath) -> Result<Self> {
        let key = inner.keys.key(&path);
        let upload_id = inner
            .api
            .create_multipart_upload(&key, &inner.headers)
            .await
            .map_err(|e| e.into_backend(&path))?;
        Ok(Self::new(inner, path, key, upload_id))
    }

    /// A writer resuming the upload a closed writer left at `path` (`append == true`).
    ///
    /// Finds the uploads whose key is exactly this path's (paginated; the most recently
    /// initiated wins if there are several) and rebuilds parts and size from ListParts. With
    /// no upload: an empty committed object starts afresh, a non-empty one is
    /// [`Error::AppendToCommitted`], a missing one is `PathNotFound`.
    pub(crate) async fn resume(inner: Arc<Inner>, path: StoragePath) -> Result<Self> {
        let api = &inner.api;
        let key = inner.keys.key(&path);
        let mut best: Option<crate::s3api::UploadInfo> = None;
        follow_pages(
            "ListMultipartUploads",
            &path,
            MAX_LIST_PAGES,
            // Keys come in order: the key marker never goes back.
            |prev: &(String, String), next: &(String, String)| next.0 >= prev.0,
            |marker| {
                let key = &key;
                async move {
                    let page = api.list_multipart_uploads(key, marker).await?;
                    Ok((page.uploads, page.next))
                }
            },
            |u| {
                if u.key == key && best.as_ref().is_none_or(|b| u.initiated >= b.initiated) {
                    best = Some(u);
                }
                Ok(())
            },
        )
        .await?;

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
        let (flushed, next_number) = resumed_state(&parts).map_err(|why| {
            Error::backend(DRIVER, Some(&path), S3Error::malformed("ListParts", why))
        })?;
        let mut w = Self::new(Arc::clone(&inner), path, key, upload.upload_id);
        w.flushed = flushed;
        w.next_number = next_number;
        w.parts = parts;
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
                // Parts finish out of order; keep them sorted by number for ListParts-like
                // use (re-base, completion).
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

    /// Hands what is buffered to a part upload of its own (nothing if the buffer is empty),
    /// first waiting for a free slot when `concurrency` parts are in flight.
    async fn flush_part(&mut self) -> Result<()> {
        self.check_not_failed()?;
        if self.buf.len == 0 {
            return Ok(());
        }
        while self.in_flight.len() >= self.concurrency {
            if let Some(joined) = self.in_flight.next().await {
                self.settle(joined)?;
            }
        }
        let len = self.buf.len as u64;
        let pieces = self.buf.take();
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

    /// Whether the last uploaded part is too short to be followed by another.
    fn needs_rebase(&self) -> bool {
        self.parts
            .last()
            .is_some_and(|p| p.size < MIN_PART || p.size < self.chunk as u64)
    }

    /// Completes the current upload and continues on a new one (see the module docs).
    async fn rebase(&mut self) -> Result<()> {
        let api = &self.inner.api;
        let path = self.path.as_str();
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
        self.parts.clear();
        self.flushed = 0;
        // Same headers as every other write: encryption, KMS key id, class, ACL.
        self.upload_id = api
            .create_multipart_upload(&self.key, &self.inner.headers)
            .await
            .map_err(|e| e.into_backend(path))?;
        if total < MIN_PART {
            let old = match api
                .get_object(&self.key, path)
                .await
                .map_err(|e| e.into_error(path))?
            {
                // The read-back must be exactly `total` bytes: a declared length that differs
                // is refused before reading, and without one `total` bounds what is buffered.
                Some((Some(len), _)) if len != total => {
                    return Err(Error::backend(
                        DRIVER,
                        Some(path),
                        format!("resumed upload: read back {len} bytes, expected {total}"),
                    ));
                }
                Some((len, stream)) => collect(len.or(Some(total)), stream, path).await?,
                None => Bytes::new(),
            };
            if old.len() as u64 != total {
                return Err(Error::backend(
                    DRIVER,
                    Some(path),
                    format!(
                        "resumed upload: read back {} bytes, expected {total}",
                        old.len()
                    ),
                ));
            }
            self.buf.push(old);
        } else {
            let part = api
                .upload_part_copy(&self.key, &self.upload_id, 1, &self.key, None, total)
                .await
                .map_err(|e| e.into_backend(path))?;
            self.flushed = total;
            self.parts.push(part);
        }
        // The old bytes now live in the new upload (buffer or part 1): remove the object the
        // completion made visible, so nothing is readable at the path before `commit`.
        api.delete_object(&self.key)
            .await
            .map_err(|e| e.into_backend(path))?;
        Ok(())
    }

    /// Aborts the current upload, reporting `cause` (and an abort failure, if any).
    async fn abort_after(&mut self, cause: Error) -> Error {
        self.stop_in_flight();
        match self
            .inner
            .api
            .abort_multipart_upload(&self.key, &self.upload_id)
            .await
        {
            Ok(()) => cause,
            Err(a) => Error::Multiple {
                driver: DRIVER.to_owned(),
                errors: vec![cause, a.into_backend(&self.path)],
            },
        }
    }
}

impl S3Writer {
    /// Stops the part uploads still running (their bytes are not wanted any more).
    fn stop_in_flight(&mut self) {
        for h in self.in_flight.iter() {
            h.abort();
        }
        self.in_flight = FuturesUnordered::new();
        self.in_flight_bytes = 0;
    }
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
        if self.needs_rebase() {
            if let Err(e) = self.rebase().await {
                // The upload may be completed, aborted or half re-created: this writer can no
                // longer tell, so it refuses further use instead of writing to the wrong one.
                self.lifecycle.poison();
                return Err(e);
            }
        }
        while !data.is_empty() {
            let need = self.chunk - self.buf.len;
            if data.len() < need {
                self.buf.push(data);
                break;
            }
            self.buf.push(data.split_to(need));
            self.flush_part().await?;
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
        let flushed = self.flush_part().await;
        let drained = self.drain().await;
        flushed.and(drained)
    }

    async fn cancel(&mut self) -> Result<()> {
        self.lifecycle.cancel()?;
        self.buf.clear();
        self.stop_in_flight();
        self.inner
            .api
            .abort_multipart_upload(&self.key, &self.upload_id)
            .await
            .map_err(|e| e.into_backend(&self.path))
    }

    async fn commit(&mut self) -> Result<()> {
        self.lifecycle.check_open()?;
        let flushed = self.flush_part().await;
        let drained = self.drain().await;
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

    #[test]
    fn resumed_state_adds_sizes_and_numbers() {
        assert_eq!(resumed_state(&[]), Ok((0, 1)));
        assert_eq!(
            resumed_state(&[part(1, 5), part(2, 7), part(4, 1)]),
            Ok((13, 5))
        );
    }

    #[test]
    fn resumed_state_refuses_overflowing_server_values() {
        // Sizes whose sum overflows u64 (each fits S3's i64 on its own).
        let big = i64::MAX as u64;
        let e = resumed_state(&[part(1, big), part(2, big), part(3, 2)]);
        assert!(e.as_ref().is_err_and(|w| w.contains("add up")), "{e:?}");
        // A sum that fits u64 but no S3 length.
        let e = resumed_state(&[part(1, big), part(2, 1)]);
        assert!(e.is_err(), "{e:?}");
        // `number + 1` would overflow, here or at the next part uploaded.
        for n in [i64::MAX, i64::MAX - 1, i64::from(i32::MAX) + 1] {
            let e = resumed_state(&[part(1, 1), part(n, 1)]);
            assert!(
                e.as_ref().is_err_and(|w| w.contains("out of range")),
                "{e:?}"
            );
        }
        assert_eq!(
            resumed_state(&[part(i64::from(i32::MAX), 1)]),
            Ok((1, i64::from(i32::MAX) + 1))
        );
        // Numbers S3 never gives.
        assert!(resumed_state(&[part(0, 1)]).is_err());
        assert!(resumed_state(&[part(-3, 1), part(1, 1)]).is_err());
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
