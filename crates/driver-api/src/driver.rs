//! The backend trait and the values it exchanges.

use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::{Result, StoragePath};

/// A stream of an object's bytes, read lazily from the backend; never the whole object at once.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// What [`StorageDriver::stat`] and walks report about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The path, as the caller would address it.
    pub path: StoragePath,
    /// Size in bytes; 0 for directories.
    pub size: u64,
    /// Last modification time, when the backend knows it (directories usually do not).
    pub mod_time: Option<SystemTime>,
    /// Whether the path is a directory (a prefix of other paths) rather than an object.
    pub is_dir: bool,
    /// The backend's entity tag of a file's content, when its listing or stat reports one
    /// (S3: the `ETag`, without quotes), else `None`. Opaque: it changes when the content
    /// changes. S3 makes it the hex MD5 of the content for single-part uploads without SSE-KMS
    /// or SSE-C, which lets a caller that knows what a small file should contain check it
    /// without reading it; a tag that matches nothing proves nothing.
    pub etag: Option<String>,
}

impl FileInfo {
    /// A file entry.
    pub fn file(path: StoragePath, size: u64, mod_time: Option<SystemTime>) -> Self {
        FileInfo {
            path,
            size,
            mod_time,
            is_dir: false,
            etag: None,
        }
    }

    /// This entry with an entity tag (see [`FileInfo::etag`]).
    pub fn with_etag(mut self, etag: Option<String>) -> Self {
        self.etag = etag;
        self
    }

    /// A directory entry (size 0, no time).
    pub fn dir(path: StoragePath) -> Self {
        FileInfo {
            path,
            size: 0,
            mod_time: None,
            is_dir: true,
            etag: None,
        }
    }
}

/// The HTTP method of the request a redirect is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectMethod {
    /// `GET`: fetch the bytes.
    Get,
    /// `HEAD`: fetch only the headers.
    Head,
    /// Any other method; drivers answer "no redirect".
    Other,
}

impl RedirectMethod {
    /// Maps an HTTP method name (case-insensitive).
    pub fn from_name(name: &str) -> Self {
        if name.eq_ignore_ascii_case("GET") {
            RedirectMethod::Get
        } else if name.eq_ignore_ascii_case("HEAD") {
            RedirectMethod::Head
        } else {
            RedirectMethod::Other
        }
    }
}

/// The parts of a client's HTTP request that decide its redirect.
///
/// `remote_addr` is the peer of the connection. The forwarding headers are only hints: a
/// middleware trusts them only when `remote_addr` is one of its configured proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedirectRequest {
    /// Method of the client's request.
    pub method: RedirectMethod,
    /// Address of the connection's peer, if known.
    pub remote_addr: Option<IpAddr>,
    /// Value of the `X-Forwarded-For` header, if any.
    pub forwarded_for: Option<String>,
    /// Value of the `X-Real-Ip` header, if any.
    pub real_ip: Option<String>,
}

impl RedirectRequest {
    /// A request with `method` and no address information.
    pub fn new(method: RedirectMethod) -> Self {
        RedirectRequest {
            method,
            remote_addr: None,
            forwarded_for: None,
            real_ip: None,
        }
    }

    /// A `GET` request.
    pub fn get() -> Self {
        Self::new(RedirectMethod::Get)
    }

    /// A `HEAD` request.
    pub fn head() -> Self {
        Self::new(RedirectMethod::Head)
    }

    /// Sets the connection's peer address.
    pub fn with_remote_addr(mut self, addr: IpAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }

    /// Sets the `X-Forwarded-For` and `X-Real-Ip` header values.
    pub fn with_forwarding_headers(
        mut self,
        forwarded_for: Option<String>,
        real_ip: Option<String>,
    ) -> Self {
        self.forwarded_for = forwarded_for;
        self.real_ip = real_ip;
        self
    }
}

/// What a walk callback asks the walk to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkControl {
    /// Go on; if the entry is a directory, descend into it.
    Continue,
    /// If the entry is a directory, do not descend into it; on a file, same as `Continue`.
    SkipDir,
    /// Stop the whole walk; the walk returns `Ok(())` (distribution's `ErrFilledBuffer`).
    Stop,
}

/// The callback of a walk. Returning `Err` stops the walk and the walk returns that error.
pub type WalkFn<'a> = dyn FnMut(&FileInfo) -> Result<WalkControl> + Send + 'a;

/// Options of a walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalkOptions {
    /// Advisory: the walk may begin with the first entry after this path (in the walk's own
    /// order), so a paginated catalog need not re-walk what it already returned.
    pub start_after: Option<StoragePath>,
}

impl WalkOptions {
    /// Options with a start-after hint.
    pub fn start_after(hint: StoragePath) -> Self {
        WalkOptions {
            start_after: Some(hint),
        }
    }
}

/// The default [`StorageDriver::delete_many`]: [`stat`](StorageDriver::stat) and
/// [`delete`](StorageDriver::delete) each path in turn, with the batch semantics documented
/// there (a directory or a missing path is no error). Public for wrappers that override
/// `delete_many` only in some cases and otherwise want each path to pass through their own
/// `delete`.
pub async fn delete_each<D: StorageDriver + ?Sized>(
    driver: &D,
    paths: &[StoragePath],
) -> Vec<(StoragePath, crate::Error)> {
    let mut failed = Vec::new();
    for p in paths {
        let r = match driver.stat(p).await {
            Ok(fi) if fi.is_dir => Ok(()),
            Ok(_) => driver.delete(p).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => failed.push((p.clone(), e)),
        }
    }
    failed
}

/// A backend: where a registry keeps its bytes.
///
/// Paths reaching these methods are already validated by [`crate::Driver`]: object paths are
/// never `/`, offsets are never negative. Implementations must be safe to call concurrently and
/// must report missing paths as [`Error::PathNotFound`](crate::Error::PathNotFound) naming the path the caller gave.
#[async_trait]
pub trait StorageDriver: Send + Sync + fmt::Debug + 'static {
    /// Registration name used in every error message (`"inmemory"`, `"filesystem"`, `"s3aws"`).
    fn name(&self) -> &str;

    /// The whole content of the object at `path`. Meant for small objects (manifests, links).
    async fn get_content(&self, path: &StoragePath) -> Result<Bytes>;

    /// Replaces the object at `path` with `content` atomically: readers see the old or the new
    /// content, never a mix, and a shorter put leaves no tail of a longer one.
    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()>;

    /// Streams the object from byte `offset`. An offset at or past the end yields an empty
    /// stream, not an error; a missing object is `PathNotFound` at any offset.
    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream>;

    /// Opens a resumable writer. With `append == false` a new, empty upload starts. With
    /// `append == true` the writer resumes an upload that an earlier writer closed without
    /// committing, and its [`FileWriter::size`] equals the bytes written so far; appending to
    /// a committed empty object starts afresh; appending to committed non-empty content is
    /// [`Error::AppendToCommitted`](crate::Error::AppendToCommitted); with nothing to resume it is `PathNotFound`.
    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>>;

    /// Describes `path`: a file with its size and time, or a directory (a path with
    /// descendants). `PathNotFound` if neither. Never reports `/ab/c` as a directory merely
    /// because `/ab/cd/x` exists.
    async fn stat(&self, path: &StoragePath) -> Result<FileInfo>;

    /// The direct children of directory `path` (files and directories), absolute and without
    /// trailing slash, in no particular order. `PathNotFound` if `path` has no children and is
    /// not the root; the root of an empty store lists as empty.
    async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>>;

    /// Moves the object `src` to `dst`, replacing `dst`. Afterwards `src` is gone. A missing
    /// `src` is `PathNotFound` and leaves `dst` untouched.
    async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()>;

    /// Deletes `path` and everything below it (only true subpaths: deleting `/a` never touches
    /// `/ab`). `PathNotFound` if nothing was there.
    async fn delete(&self, path: &StoragePath) -> Result<()>;

    /// Deletes exactly the objects `paths` name — a batch, for callers (garbage collection)
    /// that already know every key from a listing and would otherwise pay a [`delete`](Self::delete)
    /// (on S3 a listing plus a delete) per object.
    ///
    /// Semantics, the same on every backend:
    /// * each path is one object; nothing below it is touched (`/a` never takes `/a/b`), and a
    ///   path that names only a directory, or nothing, deletes nothing and **is not an error**
    ///   (a retry after a partial failure must succeed);
    /// * the paths are independent: no order among them is promised, and a failure of one does
    ///   not stop the others. The answer lists every path that may still exist, each with its
    ///   error naming it; an empty answer means all are gone. Callers that need an order
    ///   (references before what they reference) issue one call per step;
    /// * directories left empty disappear as they do after [`delete`](Self::delete).
    ///
    /// The default stats and deletes each path in turn. S3 sends DeleteObjects of up to 1000
    /// keys each, so `n` objects cost ⌈n/1000⌉ requests and no listing.
    async fn delete_many(&self, paths: &[StoragePath]) -> Vec<(StoragePath, crate::Error)> {
        delete_each(self, paths).await
    }

    /// A URL from which a client can fetch the object directly with `request`'s method, or
    /// `None` when the registry should serve the bytes itself.
    async fn redirect_url(
        &self,
        request: &RedirectRequest,
        path: &StoragePath,
    ) -> Result<Option<url::Url>> {
        let _ = (request, path);
        Ok(None)
    }

    /// Visits every file and directory below `from` (not `from` itself), depth first, calling
    /// `f` for each; see [`WalkControl`] for what `f` can ask. Walking a missing directory is
    /// `PathNotFound` unless the backend documents otherwise. The default lists and stats each
    /// level ([`crate::walk::walk_fallback`]) in byte order of full paths.
    async fn walk(
        &self,
        from: &StoragePath,
        options: &WalkOptions,
        f: &mut WalkFn<'_>,
    ) -> Result<()> {
        crate::walk::walk_fallback(self, from, options, f).await
    }

    /// The key under which the backend stores `path`, relative to what a CDN in front of it
    /// serves (S3: root directory + path without the leading slash). Middlewares that build
    /// URLs for a backend (CloudFront) append it to their base URL.
    fn url_key(&self, path: &StoragePath) -> String {
        path.as_str().trim_start_matches('/').to_owned()
    }
}

/// A resumable writer for one path.
///
/// Bytes written are flushed to the backend by [`close`](Self::close) and become readable only
/// after [`commit`](Self::commit). A closed writer can be resumed by opening
/// [`StorageDriver::writer`] again with `append`. After `close`, `commit` or `cancel`, writes
/// fail with [`Error::WriterState`](crate::Error::WriterState); `close` after `commit` is allowed and does nothing.
#[async_trait]
pub trait FileWriter: Send + Sync + fmt::Debug {
    /// Appends `data`. Backends may buffer; a returned `Ok` means the bytes are accepted.
    async fn write(&mut self, data: Bytes) -> Result<()>;

    /// Bytes in the upload. Exact after `close` or `commit`; while writing, a backend may count
    /// only what it has flushed.
    fn size(&self) -> u64;

    /// Flushes everything accepted and ends this writer, leaving the upload resumable.
    async fn close(&mut self) -> Result<()>;

    /// Discards the upload and everything written to it.
    async fn cancel(&mut self) -> Result<()>;

    /// Flushes and makes the content readable at the path, replacing what was there.
    async fn commit(&mut self) -> Result<()>;
}
