//! Streaming reads, optionally as parallel ranged GETs of one object version.
//!
//! With `readconcurrency` 1 a read is one GetObject from the offset to the end, as before.
//! Above 1 the first request is a ranged GetObject of one part (`readchunksize` bytes from the
//! offset). Its answer tells the object's size (`Content-Range: …/<total>`) and version
//! (ETag). An object that ends within that part has cost exactly one request, as a small read
//! must. When more remains, the rest is cut into parts of `readchunksize` bytes, and up to
//! `readconcurrency` parts (the one being yielded included) are fetched at once, each by its own
//! task, each with `If-Match: <etag>` so every byte comes from the version the read started on.
//!
//! Bytes are yielded strictly in order: the part at the head of the window streams as it
//! arrives, later parts collect what they have fetched until they reach the head. A new part is
//! started only when the head part has been yielded completely, so one reader holds at most
//! `readconcurrency × readchunksize` bytes however large the object is (back-pressure: a slow
//! consumer stops the fetching). Dropping the stream aborts the part tasks still running.
//!
//! Answers that do not fit are handled without mixing versions:
//! * a server that ignores `Range` (200 with the whole object) is read as one stream, its first
//!   `offset` bytes skipped;
//! * 416 on the first request (offset at or past the end, an empty object) is an empty stream;
//! * an answer without ETag or without a known total cannot guard later parts: the read falls
//!   back to one unbounded GetObject from the offset (a second request; never mixed bytes);
//! * a later part answered with 412, 404, 416, another ETag or another range ends the stream
//!   with [`ObjectChanged`] naming the path, before any byte of the other version is yielded;
//! * a first answer whose `Content-Range` is not the range asked for or is inconsistent (end
//!   before start, at or past the total, beyond any length) is a `Backend` error from `open`;
//! * a part whose body runs past its range is cut off with an error as soon as the excess
//!   arrives, even while it waits behind the head, so what a part holds never exceeds its
//!   range (this keeps the `readconcurrency × readchunksize` bound against such a server).
//!
//! The dispatcher resumes a broken body with a ranged `If-Match` GET of the rest of the range it
//! answered, so a reset inside one part is repaired inside that part.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use regstore_driver_api::{ByteStream, Error, Result};

use crate::error::{ObjectChanged, S3Error, DRIVER};
use crate::s3api::{ContentRange, GetAnswer};

/// Where the window gets its ranges from: the driver's S3 API, or a fake in tests.
pub(crate) trait RangeSource: Send + Sync + 'static {
    /// GetObject of bytes `start..=end` (`end` `None`: to the end), only if the ETag is
    /// `if_match` when given. `Ok(None)` for 416.
    fn get(
        &self,
        start: u64,
        end: Option<u64>,
        if_match: Option<String>,
    ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>>;
}

/// How a read is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadPlan {
    /// Parts fetched at once, the one being yielded included; 1 = one plain GetObject.
    pub(crate) concurrency: usize,
    /// Bytes per part (≥ 1).
    pub(crate) part_size: u64,
}

/// Opens a read of the object behind `src` from `offset`. Errors of the first request (a
/// missing object: `PathNotFound`) are returned here; later failures end the stream.
pub(crate) async fn open(
    src: Arc<dyn RangeSource>,
    path: &str,
    offset: u64,
    plan: ReadPlan,
) -> Result<ByteStream> {
    if plan.concurrency <= 1 {
        return single(&*src, path, offset).await;
    }
    let part = plan.part_size.max(1);
    let first_end = offset.saturating_add(part - 1);
    let Some(first) = src
        .get(offset, Some(first_end), None)
        .await
        .map_err(|e| e.into_error(path))?
    else {
        // 416: the offset is at or past the end. A missing key answers 404 first, so this is
        // an existing object and the stream is simply empty.
        return Ok(Box::pin(stream::empty()));
    };
    let Some(range) = first.range else {
        // The server ignored Range: this body is the whole object.
        return Ok(skip(first.body, offset));
    };
    // The answer must be the bytes asked for (or fewer, where the object ends) and agree with
    // itself; the server controls these numbers, so nothing is computed from them unchecked.
    let length = range
        .end
        .checked_sub(range.start)
        .and_then(|n| n.checked_add(1));
    let next = range.end.checked_add(1);
    let (Some(length), Some(next)) = (length, next) else {
        return Err(bad_first_range(path, offset, first_end, &range));
    };
    if range.start != offset || range.end > first_end || range.total.is_some_and(|t| next > t) {
        return Err(bad_first_range(path, offset, first_end, &range));
    }
    let head = Part {
        stream: first.body,
        remaining: length,
        _task: None,
    };
    match (range.total, first.etag) {
        (Some(total), _) if next >= total => Ok(checked(head, path)),
        (Some(total), Some(etag)) => {
            let mut w = Window {
                src,
                path: path.to_owned(),
                etag,
                total,
                part_size: part,
                concurrency: plan.concurrency,
                next_start: next,
                queue: VecDeque::from([head]),
                done: false,
            };
            w.refill();
            Ok(Box::pin(stream::unfold(w, |mut w| async move {
                let item = w.next().await?;
                Some((item, w))
            })))
        }
        // No ETag (nothing to guard later parts with) or no total: read the rest as one
        // stream, as before, rather than risk bytes of two versions.
        _ => {
            drop(head);
            single(&*src, path, offset).await
        }
    }
}

/// The error for a first answer whose `Content-Range` is not the range asked for, or is
/// inconsistent (`end` before `start`, past the total, or beyond any length).
fn bad_first_range(path: &str, offset: u64, asked_end: u64, range: &ContentRange) -> Error {
    let total = range.total.map_or("*".to_owned(), |t| t.to_string());
    Error::backend(
        DRIVER,
        Some(path),
        S3Error::malformed(
            "GetObject",
            format!(
                "asked for bytes {offset}-{asked_end}, answered Content-Range bytes {}-{}/{total}",
                range.start, range.end
            ),
        ),
    )
}

/// One GetObject from `offset` to the end.
async fn single(src: &dyn RangeSource, path: &str, offset: u64) -> Result<ByteStream> {
    match src
        .get(offset, None, None)
        .await
        .map_err(|e| e.into_error(path))?
    {
        None => Ok(Box::pin(stream::empty())),
        Some(a) => match a.range {
            None if offset > 0 => Ok(skip(a.body, offset)),
            None => Ok(a.body),
            // Bytes from elsewhere, or a range that stops before the object's end, would be
            // yielded as if they were the object from `offset`: refuse them.
            Some(r)
                if r.start != offset
                    || r.total.is_some_and(|t| r.end.checked_add(1) != Some(t)) =>
            {
                let total = r.total.map_or("*".to_owned(), |t| t.to_string());
                Err(Error::backend(
                    DRIVER,
                    Some(path),
                    S3Error::malformed(
                        "GetObject",
                        format!(
                            "asked for bytes {offset}- (to the end), answered Content-Range bytes {}-{}/{total}",
                            r.start, r.end
                        ),
                    ),
                ))
            }
            Some(_) => Ok(a.body),
        },
    }
}

/// `body` without its first `n` bytes (for servers that answer a ranged GET with everything).
fn skip(body: ByteStream, n: u64) -> ByteStream {
    if n == 0 {
        return body;
    }
    Box::pin(
        body.scan(n, |left, chunk| {
            let out = match chunk {
                Ok(b) if *left >= b.len() as u64 => {
                    *left -= b.len() as u64;
                    Ok(Bytes::new())
                }
                Ok(b) => {
                    let cut = *left as usize;
                    *left = 0;
                    Ok(b.slice(cut..))
                }
                Err(e) => Err(e),
            };
            futures::future::ready(Some(out))
        })
        .filter(|c| futures::future::ready(!matches!(c, Ok(b) if b.is_empty()))),
    )
}

/// A lone part whose length is checked (the object ended within the first part).
fn checked(part: Part, path: &str) -> ByteStream {
    let w = Window {
        src: Arc::new(NoSource),
        path: path.to_owned(),
        etag: String::new(),
        total: 0,
        part_size: 1,
        concurrency: 1,
        next_start: 0,
        queue: VecDeque::from([part]),
        done: false,
    };
    Box::pin(stream::unfold(w, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

/// The source of a window that never fetches another part.
struct NoSource;

impl RangeSource for NoSource {
    fn get(
        &self,
        _: u64,
        _: Option<u64>,
        _: Option<String>,
    ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
        Box::pin(async { Err(S3Error::malformed("GetObject", "no further part expected")) })
    }
}

/// Aborts a part's task when the part is dropped (stream dropped, or an error ended it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One part of the window: its bytes in order, and how many are still due.
struct Part {
    stream: ByteStream,
    remaining: u64,
    _task: Option<AbortOnDrop>,
}

/// The parts in flight, head first.
struct Window {
    src: Arc<dyn RangeSource>,
    path: String,
    etag: String,
    total: u64,
    part_size: u64,
    concurrency: usize,
    /// First byte not yet given to a part.
    next_start: u64,
    queue: VecDeque<Part>,
    done: bool,
}

impl Window {
    fn fail(&mut self, e: Error) -> Option<Result<Bytes>> {
        self.done = true;
        // Stop every part still fetching.
        self.queue.clear();
        Some(Err(e))
    }

    fn broken(&self, message: String) -> Error {
        part_error(&self.path, message)
    }

    /// The next chunk in object order; `None` after the last byte or after an error.
    async fn next(&mut self) -> Option<Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            let head = self.queue.front_mut()?;
            match head.stream.next().await {
                Some(Ok(b)) if b.is_empty() => {}
                Some(Ok(b)) => {
                    let len = b.len() as u64;
                    if len > head.remaining {
                        let msg =
                            format!("a part ran {} bytes past its range", len - head.remaining);
                        return self.fail(self.broken(msg));
                    }
                    head.remaining -= len;
                    return Some(Ok(b));
                }
                Some(Err(e)) => return self.fail(e),
                None if head.remaining > 0 => {
                    let msg = format!("a part ended {} bytes short", head.remaining);
                    return self.fail(self.broken(msg));
                }
                None => {
                    self.queue.pop_front();
                    self.refill();
                    if self.queue.is_empty() {
                        self.done = true;
                        return None;
                    }
                }
            }
        }
    }

    /// Starts parts until the window is full or the object is covered.
    fn refill(&mut self) {
        while self.queue.len() < self.concurrency && self.next_start < self.total {
            let start = self.next_start;
            let end = start.saturating_add(self.part_size - 1).min(self.total - 1);
            self.next_start = end + 1;
            let (tx, rx) = futures::channel::mpsc::unbounded();
            let task = fetch_part(
                Arc::clone(&self.src),
                self.path.clone(),
                self.etag.clone(),
                start,
                end,
                tx,
            );
            let handle = match tokio::runtime::Handle::try_current() {
                Ok(rt) => Some(AbortOnDrop(rt.spawn(task))),
                // Outside a runtime (never in practice: the HTTP client needs one) the part
                // cannot run on its own; fail it instead of blocking.
                Err(_) => None,
            };
            let stream: ByteStream = if handle.is_some() {
                Box::pin(rx)
            } else {
                let e = self.broken("parallel read outside a Tokio runtime".to_owned());
                Box::pin(stream::iter([Err(e)]))
            };
            self.queue.push_back(Part {
                stream,
                remaining: end - start + 1,
                _task: handle,
            });
        }
    }
}

/// Fetches bytes `start..=end` of version `etag` and forwards them to `tx` as they arrive.
/// Ends quietly when the receiver is gone (the reader was dropped).
async fn fetch_part(
    src: Arc<dyn RangeSource>,
    path: String,
    etag: String,
    start: u64,
    end: u64,
    tx: futures::channel::mpsc::UnboundedSender<Result<Bytes>>,
) {
    let changed = |detail: String| {
        Error::backend(
            DRIVER,
            Some(&path),
            ObjectChanged {
                path: path.clone(),
                etag: etag.clone(),
                detail,
            },
        )
    };
    let answer = match src.get(start, Some(end), Some(etag.clone())).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            let e = changed(format!("bytes {start}-{end} are past its end now (416)"));
            let _ = tx.unbounded_send(Err(e));
            return;
        }
        Err(e) if e.is_precondition_failed() || e.is_not_found() => {
            let _ = tx.unbounded_send(Err(changed(e.to_string())));
            return;
        }
        Err(e) => {
            let _ = tx.unbounded_send(Err(e.into_backend(&path)));
            return;
        }
    };
    if let Some(found) = answer.etag.as_deref() {
        if found != etag {
            let e = changed(format!("GetObject answered ETag {found}"));
            let _ = tx.unbounded_send(Err(e));
            return;
        }
    }
    match answer.range {
        Some(r) if r.start == start && r.end == end => {}
        other => {
            let what = match other {
                Some(r) => format!("bytes {}-{}", r.start, r.end),
                None => "the whole object".to_owned(),
            };
            let e = changed(format!("asked for bytes {start}-{end}, answered {what}"));
            let _ = tx.unbounded_send(Err(e));
            return;
        }
    }
    // Until this part reaches the head of the window its bytes wait in the channel, so the
    // part's length is enforced here, as they arrive: a body running past its range is cut
    // off with an error instead of being buffered without limit.
    let mut remaining = end - start + 1;
    let mut body = answer.body;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(b) if b.len() as u64 > remaining => {
                let msg = format!(
                    "a part ran {} bytes past its range",
                    b.len() as u64 - remaining
                );
                let _ = tx.unbounded_send(Err(part_error(&path, msg)));
                return;
            }
            Ok(b) => {
                remaining -= b.len() as u64;
                Ok(b)
            }
            Err(e) => Err(e),
        };
        let stop = chunk.is_err();
        if tx.unbounded_send(chunk).is_err() || stop {
            return;
        }
    }
}

/// A transport error of a part's body about `path` (the window reports those the same way).
fn part_error(path: &str, message: String) -> Error {
    Error::backend(
        DRIVER,
        Some(path),
        S3Error {
            operation: "GetObject",
            class: crate::error::ErrorClass::Transport,
            status: None,
            code: None,
            message,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// One request the fake saw.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        start: u64,
        end: Option<u64>,
        if_match: Option<String>,
    }

    /// An in-memory object behind a configurable S3 answerer.
    struct Fake {
        state: Mutex<FakeState>,
        seen: Mutex<Vec<Seen>>,
        /// Bodies not yet dropped (tasks still holding a response).
        live_bodies: Arc<AtomicUsize>,
        ignore_range: bool,
        send_etag: bool,
        /// Answer chunks of this many bytes.
        chunk: usize,
        /// Bodies of non-first requests never finish (to test dropping).
        stall_later: bool,
    }

    struct FakeState {
        data: Vec<u8>,
        etag: String,
        /// Replace the object with `.0` (ETag `.1`) once this many requests were answered.
        change_after: Option<(usize, Vec<u8>, String)>,
    }

    impl Fake {
        fn new(data: Vec<u8>) -> Self {
            Fake {
                state: Mutex::new(FakeState {
                    data,
                    etag: "\"v1\"".to_owned(),
                    change_after: None,
                }),
                seen: Mutex::new(Vec::new()),
                live_bodies: Arc::new(AtomicUsize::new(0)),
                ignore_range: false,
                send_etag: true,
                chunk: 3,
                stall_later: false,
            }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    /// Counts a body as live until it is dropped.
    struct LiveGuard(Arc<AtomicUsize>);
    impl Drop for LiveGuard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl RangeSource for Arc<Fake> {
        fn get(
            &self,
            start: u64,
            end: Option<u64>,
            if_match: Option<String>,
        ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
            let this = Arc::clone(self);
            Box::pin(async move {
                let n = {
                    let mut seen = this.seen.lock().expect("lock");
                    seen.push(Seen {
                        start,
                        end,
                        if_match: if_match.clone(),
                    });
                    seen.len()
                };
                let (data, etag) = {
                    let mut st = this.state.lock().expect("lock");
                    if let Some((after, _, _)) = &st.change_after {
                        if n > *after {
                            if let Some((_, d, e)) = st.change_after.take() {
                                st.data = d;
                                st.etag = e;
                            }
                        }
                    }
                    (st.data.clone(), st.etag.clone())
                };
                if let Some(m) = &if_match {
                    if *m != etag {
                        return Err(S3Error {
                            operation: "GetObject",
                            class: crate::error::ErrorClass::Api,
                            status: Some(412),
                            code: Some("PreconditionFailed".to_owned()),
                            message: String::new(),
                        });
                    }
                }
                let len = data.len() as u64;
                let (bytes, range) = if this.ignore_range {
                    (data, None)
                } else {
                    if start >= len {
                        return Ok(None);
                    }
                    let last = end.unwrap_or(len - 1).min(len - 1);
                    (
                        data[start as usize..=last as usize].to_vec(),
                        Some(ContentRange {
                            start,
                            end: last,
                            total: Some(len),
                        }),
                    )
                };
                let chunks: Vec<Result<Bytes>> = bytes
                    .chunks(this.chunk)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                this.live_bodies.fetch_add(1, Ordering::SeqCst);
                let guard = LiveGuard(Arc::clone(&this.live_bodies));
                let stall = this.stall_later && n > 1;
                let body = stream::iter(chunks).chain(stream::once(async move {
                    if stall {
                        futures::future::pending::<()>().await;
                    }
                    drop(guard);
                    Ok(Bytes::new())
                }));
                Ok(Some(GetAnswer {
                    content_length: None,
                    range,
                    etag: this.send_etag.then_some(etag),
                    body: Box::pin(body),
                }))
            })
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 256) as u8).collect()
    }

    async fn read_all(s: ByteStream) -> (Vec<u8>, Option<Error>) {
        let mut s = s;
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            match c {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    const PLAN: ReadPlan = ReadPlan {
        concurrency: 3,
        part_size: 10,
    };

    async fn open_fake(fake: &Arc<Fake>, offset: u64, plan: ReadPlan) -> Result<ByteStream> {
        open(Arc::new(Arc::clone(fake)), "/p/blob", offset, plan).await
    }

    #[tokio::test]
    async fn reads_in_order_from_any_offset_with_if_match() {
        let d = data(95);
        for offset in [0u64, 1, 9, 10, 11, 37, 84, 85, 94] {
            let fake = Arc::new(Fake::new(d.clone()));
            let s = open_fake(&fake, offset, PLAN).await.expect("open");
            let (got, err) = read_all(s).await;
            assert!(err.is_none(), "offset {offset}: {err:?}");
            assert_eq!(got, d[offset as usize..], "offset {offset}");
            let seen = fake.seen();
            // One request per part of 10 from the offset.
            let parts = (95 - offset).div_ceil(10) as usize;
            assert_eq!(seen.len(), parts, "offset {offset}: {seen:?}");
            assert_eq!(seen[0].if_match, None);
            assert_eq!(seen[0].start, offset);
            assert_eq!(seen[0].end, Some(offset + 9));
            let mut starts: Vec<u64> = seen.iter().map(|s| s.start).collect();
            starts.sort_unstable();
            let want: Vec<u64> = (0..parts as u64).map(|i| offset + 10 * i).collect();
            assert_eq!(starts, want, "offset {offset}");
            for s in &seen[1..] {
                assert_eq!(s.if_match.as_deref(), Some("\"v1\""));
                assert_eq!(s.end, Some((s.start + 9).min(94)));
            }
        }
    }

    #[tokio::test]
    async fn small_object_is_one_request() {
        let d = data(10);
        let fake = Arc::new(Fake::new(d.clone()));
        let (got, err) = read_all(open_fake(&fake, 0, PLAN).await.expect("open")).await;
        assert!(err.is_none());
        assert_eq!(got, d);
        assert_eq!(fake.seen().len(), 1);
    }

    #[tokio::test]
    async fn offset_at_or_past_end_is_empty_after_one_request() {
        for offset in [10u64, 11, 1000] {
            let fake = Arc::new(Fake::new(data(10)));
            let (got, err) = read_all(open_fake(&fake, offset, PLAN).await.expect("open")).await;
            assert!(err.is_none());
            assert!(got.is_empty());
            assert_eq!(fake.seen().len(), 1);
        }
    }

    #[tokio::test]
    async fn concurrency_one_is_one_unbounded_get() {
        let d = data(95);
        let fake = Arc::new(Fake::new(d.clone()));
        let plan = ReadPlan {
            concurrency: 1,
            part_size: 10,
        };
        let (got, err) = read_all(open_fake(&fake, 5, plan).await.expect("open")).await;
        assert!(err.is_none());
        assert_eq!(got, d[5..]);
        assert_eq!(
            fake.seen(),
            vec![Seen {
                start: 5,
                end: None,
                if_match: None
            }]
        );
    }

    #[tokio::test]
    async fn range_ignoring_server_is_read_once_and_skipped() {
        let d = data(95);
        for plan in [
            PLAN,
            ReadPlan {
                concurrency: 1,
                ..PLAN
            },
        ] {
            for offset in [0u64, 2, 3, 50] {
                let mut f = Fake::new(d.clone());
                f.ignore_range = true;
                let fake = Arc::new(f);
                let (got, err) =
                    read_all(open_fake(&fake, offset, plan).await.expect("open")).await;
                assert!(err.is_none());
                assert_eq!(got, d[offset as usize..], "offset {offset} {plan:?}");
                assert_eq!(fake.seen().len(), 1);
            }
        }
    }

    #[tokio::test]
    async fn no_etag_falls_back_to_one_plain_get() {
        let d = data(95);
        let mut f = Fake::new(d.clone());
        f.send_etag = false;
        let fake = Arc::new(f);
        let (got, err) = read_all(open_fake(&fake, 7, PLAN).await.expect("open")).await;
        assert!(err.is_none());
        assert_eq!(got, d[7..]);
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[1],
            Seen {
                start: 7,
                end: None,
                if_match: None
            }
        );
    }

    #[tokio::test]
    async fn window_is_bounded_and_advances_with_the_consumer() {
        let d = data(100);
        let fake = Arc::new(Fake::new(d.clone()));
        let mut s = open_fake(&fake, 0, PLAN).await.expect("open");
        let settle = || tokio::time::sleep(std::time::Duration::from_millis(20));
        settle().await;
        // Head plus two more: three parts requested, not ten.
        assert_eq!(fake.seen().len(), 3);
        // Consume the head part (10 bytes in chunks of 3) but not past it.
        let mut got = Vec::new();
        while got.len() < 10 {
            let c = s.next().await.expect("chunk").expect("ok");
            got.extend_from_slice(&c);
        }
        assert_eq!(got.len(), 10, "chunks never straddle parts");
        settle().await;
        assert_eq!(
            fake.seen().len(),
            3,
            "no new part before the head is finished"
        );
        // The head's end is noticed on the next poll, which starts the fourth part.
        let c = s.next().await.expect("chunk").expect("ok");
        got.extend_from_slice(&c);
        settle().await;
        assert_eq!(fake.seen().len(), 4);
        let (rest, err) = read_all(s).await;
        assert!(err.is_none());
        got.extend(rest);
        assert_eq!(got, d);
        assert_eq!(fake.seen().len(), 10);
    }

    #[tokio::test]
    async fn changed_object_gives_object_changed_and_no_foreign_bytes() {
        let old = data(95);
        let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
        let mut f = Fake::new(old.clone());
        f.state.get_mut().expect("lock").change_after = Some((2, new, "\"v2\"".to_owned()));
        let fake = Arc::new(f);
        let (got, err) = read_all(open_fake(&fake, 0, PLAN).await.expect("open")).await;
        let err = err.expect("the read must fail");
        assert!(got.len() < old.len());
        assert_eq!(got, old[..got.len()], "only bytes of the first version");
        let changed = match &err {
            Error::Backend { source, path, .. } => {
                assert_eq!(path.as_deref(), Some("/p/blob"));
                source.downcast_ref::<ObjectChanged>().cloned()
            }
            other => panic!("unexpected {other:?}"),
        };
        let changed = changed.expect("ObjectChanged source");
        assert_eq!(changed.path, "/p/blob");
        assert_eq!(changed.etag, "\"v1\"");
        assert!(err.to_string().contains("/p/blob"), "{err}");
    }

    #[tokio::test]
    async fn server_ignoring_if_match_is_caught_by_etag() {
        // A server that answers another ETag even though If-Match was sent.
        struct Liar(Arc<Fake>);
        impl RangeSource for Liar {
            fn get(
                &self,
                start: u64,
                end: Option<u64>,
                _if_match: Option<String>,
            ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
                let first = self.0.seen().is_empty();
                let fut = self.0.get(start, end, None);
                Box::pin(async move {
                    let mut a = fut.await?;
                    if let (Some(a), false) = (a.as_mut(), first) {
                        a.etag = Some("\"other\"".to_owned());
                    }
                    Ok(a)
                })
            }
        }
        let fake = Arc::new(Fake::new(data(30)));
        let s = open(Arc::new(Liar(fake)), "/x", 0, PLAN)
            .await
            .expect("open");
        let (got, err) = read_all(s).await;
        assert_eq!(got.len(), 10);
        assert!(err
            .expect("error")
            .to_string()
            .contains("changed while being read"));
    }

    #[tokio::test]
    async fn missing_object_is_not_found_from_open() {
        struct Missing;
        impl RangeSource for Missing {
            fn get(
                &self,
                _: u64,
                _: Option<u64>,
                _: Option<String>,
            ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
                Box::pin(async {
                    Err(S3Error {
                        operation: "GetObject",
                        class: crate::error::ErrorClass::Api,
                        status: Some(404),
                        code: Some("NoSuchKey".to_owned()),
                        message: String::new(),
                    })
                })
            }
        }
        for plan in [
            PLAN,
            ReadPlan {
                concurrency: 1,
                ..PLAN
            },
        ] {
            let e = open(Arc::new(Missing), "/gone", 0, plan).await.err();
            assert!(e.is_some_and(|e| e.is_not_found()));
        }
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_part_tasks() {
        let mut f = Fake::new(data(100));
        f.stall_later = true;
        let fake = Arc::new(f);
        let mut s = open_fake(&fake, 0, PLAN).await.expect("open");
        let _ = s.next().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The head body and two stalled later bodies are alive.
        assert_eq!(fake.live_bodies.load(Ordering::SeqCst), 3);
        drop(s);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(fake.live_bodies.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn short_or_long_parts_are_errors() {
        // A later part whose body is shorter than its range.
        struct Short(Arc<Fake>);
        impl RangeSource for Short {
            fn get(
                &self,
                start: u64,
                end: Option<u64>,
                m: Option<String>,
            ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
                let later = m.is_some();
                let fut = self.0.get(start, end, m);
                Box::pin(async move {
                    let mut a = fut.await?;
                    if let (Some(a), true) = (a.as_mut(), later) {
                        let body = std::mem::replace(&mut a.body, Box::pin(stream::empty()));
                        a.body = Box::pin(body.take(1));
                    }
                    Ok(a)
                })
            }
        }
        let fake = Arc::new(Fake::new(data(30)));
        let s = open(Arc::new(Short(fake)), "/x", 0, PLAN)
            .await
            .expect("open");
        let (got, err) = read_all(s).await;
        assert_eq!(
            got.len(),
            13,
            "head part plus the one chunk of the short part"
        );
        assert!(err.expect("error").to_string().contains("short"));
    }

    /// A source whose first answer carries `range` (the server controls it) over 10 bytes.
    struct FirstRange(ContentRange);
    impl RangeSource for FirstRange {
        fn get(
            &self,
            _: u64,
            _: Option<u64>,
            _: Option<String>,
        ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
            let range = self.0;
            Box::pin(async move {
                Ok(Some(GetAnswer {
                    content_length: None,
                    range: Some(range),
                    etag: Some("\"v1\"".to_owned()),
                    body: Box::pin(stream::iter([Ok(Bytes::from(vec![7u8; 10]))])),
                }))
            })
        }
    }

    #[tokio::test]
    async fn inconsistent_first_range_is_a_typed_error() {
        let r = |start, end, total| ContentRange { start, end, total };
        for range in [
            // `end + 1` overflows (a parse that let it through must not panic here).
            r(0, u64::MAX, None),
            r(0, u64::MAX, Some(u64::MAX)),
            r(5, u64::MAX, None),
            // End before start.
            r(0, 0, None).with_end_before_start(),
            // End at or past the total.
            r(0, 9, Some(5)),
            r(0, 9, Some(9)),
            // More than was asked for (bytes 0-9).
            r(0, 19, Some(100)),
            // Another start.
            r(1, 9, Some(100)),
        ] {
            let e = open(Arc::new(FirstRange(range)), "/p/odd", 0, PLAN)
                .await
                .err()
                .unwrap_or_else(|| panic!("{range:?} must be refused"));
            assert!(matches!(e, Error::Backend { .. }), "{range:?}: {e:?}");
            assert!(e.to_string().contains("/p/odd"), "{e}");
        }
        // The consistent answer still reads.
        let s = open(Arc::new(FirstRange(r(0, 9, Some(10)))), "/p/odd", 0, PLAN)
            .await
            .expect("open");
        let (got, err) = read_all(s).await;
        assert!(err.is_none());
        assert_eq!(got, vec![7u8; 10]);
    }

    impl ContentRange {
        /// A range whose end is one before its start (parse never builds one).
        fn with_end_before_start(self) -> Self {
            ContentRange {
                start: self.start + 1,
                ..self
            }
        }
    }

    #[tokio::test]
    async fn a_later_part_running_past_its_range_is_cut_off_as_it_arrives() {
        // Later parts send their range and then bytes without end; the head is not consumed,
        // so those parts wait in the window: what they may hold must stay bounded.
        struct Endless(Arc<Fake>, Arc<std::sync::atomic::AtomicU64>);
        impl RangeSource for Endless {
            fn get(
                &self,
                start: u64,
                end: Option<u64>,
                m: Option<String>,
            ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
                let later = m.is_some();
                let fut = self.0.get(start, end, m);
                let extra = Arc::clone(&self.1);
                Box::pin(async move {
                    let mut a = fut.await?;
                    if let (Some(a), true) = (a.as_mut(), later) {
                        let body = std::mem::replace(&mut a.body, Box::pin(stream::empty()));
                        let more = stream::unfold(extra, |extra| async move {
                            tokio::task::yield_now().await;
                            extra.fetch_add(1, Ordering::SeqCst);
                            Some((Ok(Bytes::from_static(b"x")), extra))
                        });
                        a.body = Box::pin(body.chain(more));
                    }
                    Ok(a)
                })
            }
        }
        let extra = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let d = data(100);
        let fake = Arc::new(Fake::new(d.clone()));
        let mut s = open(
            Arc::new(Endless(fake, Arc::clone(&extra))),
            "/p/long",
            0,
            PLAN,
        )
        .await
        .expect("open");
        let first = s.next().await.expect("chunk").expect("ok");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Two later parts in flight, each stopped at its first byte past the range.
        assert!(
            extra.load(Ordering::SeqCst) <= 2,
            "pulled {} bytes past the parts' ranges",
            extra.load(Ordering::SeqCst)
        );
        let (rest, err) = read_all(s).await;
        let mut got = first.to_vec();
        got.extend(rest);
        assert_eq!(got, d[..got.len()], "only the object's own bytes");
        assert_eq!(got.len(), 20, "the head part and the second part's range");
        let err = err.expect("the overlong part must end the read");
        assert!(err.to_string().contains("past its range"), "{err}");
        assert!(err.to_string().contains("/p/long"), "{err}");
    }

    #[tokio::test]
    async fn plain_read_refuses_a_range_other_than_asked() {
        // Asked for bytes 5- (readconcurrency 1): another start, or an answer that stops
        // before the end, must not be yielded as the object from byte 5.
        let plan = ReadPlan {
            concurrency: 1,
            ..PLAN
        };
        let r = |start, end, total| ContentRange { start, end, total };
        for range in [r(0, 9, Some(10)), r(6, 9, Some(10)), r(5, 8, Some(10))] {
            let e = open(Arc::new(FirstRange(range)), "/p/odd", 5, plan)
                .await
                .err()
                .unwrap_or_else(|| panic!("{range:?} must be refused"));
            assert!(e.to_string().contains("/p/odd"), "{e}");
        }
        for range in [r(5, 9, Some(10)), r(5, 9, None)] {
            assert!(open(Arc::new(FirstRange(range)), "/p/odd", 5, plan)
                .await
                .is_ok());
        }
    }
}
