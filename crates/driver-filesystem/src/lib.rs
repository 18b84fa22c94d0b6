//! The local-filesystem storage driver (`"filesystem"`), regstore's embedded default.
//!
//! # On-disk layout
//!
//! * `<root>/<path>` — every committed object is a regular file at its storage path below the
//!   root directory, and every storage directory is a real directory: the same layout as
//!   distribution's filesystem driver, so an existing registry directory can be served as is.
//! * `<root>/.~regstore/uploads/<sha256 of path>` — the closed, uncommitted upload of a path
//!   (what a writer's `close` leaves and `append` resumes). Each writer writes to its own
//!   `<sha256>.<unique>.part` next to it — a resuming writer first claims the pending upload by
//!   renaming it there — and `close` renames that file back over the pending upload, so a new
//!   upload never disturbs a pending one until it is itself closed, and the bytes a writer
//!   commits are always its own. `.part` files of a crashed process are not collected.
//! * `<dir>/.~tmp.<unique>` — the temporary file of an atomic `put_content`, renamed over the
//!   target once written and synced.
//!
//! Every internal name contains `~`, which no storage path component may contain, so no valid
//! path can address internal files and [`StorageDriver::list`] (hence walks) skips them: the
//! visible tree is exactly the committed objects. After `delete` and `move_object` the driver
//! removes directories left empty, up to the root, so `list`/`stat`/walks report no phantom
//! directories (an empty non-root directory lists as `PathNotFound`, as in the other backends).
//!
//! # Confinement
//!
//! Paths reach the driver validated (no `.`/`..`), and the driver never follows a symbolic link
//! below the root: each component is checked with `lstat` and files are opened with
//! `O_NOFOLLOW`, so a link planted inside the root gives an error instead of a read or write
//! outside it. The root itself may be a link (it is configuration, not data). A concurrent
//! process that swaps a checked directory for a link between the check and the use is outside
//! this guarantee.
//!
//! # Durability
//!
//! What `put_content`, `commit` and `move_object` report as done, and the upload `close`
//! leaves, survives power loss: file data is synced before the rename that publishes it, the
//! directory renamed into is synced after, and each directory a write creates is made durable
//! by syncing its parent. Cost: two fsyncs per put, commit or close, plus one per new
//! directory (none when the parents exist, as for most registry writes).
//!
//! Blocking file operations run on tokio's blocking pool, at most `maxthreads` at a time.
//!
//! ```
//! use std::sync::Arc;
//!
//! use regstore_driver_api::Driver;
//! use regstore_driver_filesystem::FilesystemDriver;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> regstore_driver_api::Result<()> {
//! let root = tempfile::tempdir().unwrap();
//! let driver = Driver::new(Arc::new(FilesystemDriver::new(root.path())));
//! driver.put_content("/docker/registry/v2/blobs/data", "layer").await?;
//! // The same layout as distribution's filesystem driver: the path is the file.
//! let on_disk = std::fs::read(root.path().join("docker/registry/v2/blobs/data")).unwrap();
//! assert_eq!(on_disk, b"layer");
//! assert_eq!(driver.list("/docker/registry/v2").await?.len(), 1);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use regstore_driver_api::{
    ByteStream, DriverFactory, Error, FileInfo, FileWriter, Parameters, Result, StorageDriver,
    StoragePath, WriterLifecycle,
};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Registration name of this driver, used in every error message.
pub const DRIVER_NAME: &str = "filesystem";

/// Default `rootdirectory`, as in distribution.
pub const DEFAULT_ROOT_DIRECTORY: &str = "/var/lib/registry";

/// Default `maxthreads`: concurrent blocking filesystem operations.
pub const DEFAULT_MAX_THREADS: u64 = 100;

/// Smallest accepted `maxthreads` (distribution's minimum).
pub const MIN_MAX_THREADS: u64 = 25;

/// Largest accepted `maxthreads`; beyond this the limit is meaningless.
pub const MAX_MAX_THREADS: u64 = 1 << 20;

/// Directory below the root holding the driver's own state; not a valid path component.
const INTERNAL_DIR: &str = ".~regstore";

/// Size of the pieces a reader stream yields (and the most a reader holds in memory).
const READ_CHUNK: usize = 64 * 1024;

/// A writer accumulates this many bytes before writing them to its file.
const WRITE_BUFFER: usize = 1024 * 1024;

/// How often an operation that creates parent directories is retried when a concurrent
/// delete removed a directory it had just created (empty directories are pruned).
const CREATE_ATTEMPTS: usize = 8;

/// A name no other file in the store has: process id, counter, clock.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos}", std::process::id())
}

fn io_error(path: &StoragePath, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::not_found(DRIVER_NAME, path.as_str())
    } else {
        Error::backend(DRIVER_NAME, Some(path.as_str()), e)
    }
}

fn symlink_error(path: &StoragePath, at: &str) -> Error {
    Error::backend(
        DRIVER_NAME,
        Some(path.as_str()),
        format!("refusing to follow symbolic link at {at}"),
    )
}

/// Whether an `io::Error` means "no such file" for our purposes (a file where a directory was
/// expected means the path cannot exist either).
fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Options that open an existing file without following a symbolic link in its last component.
fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o
}

/// What lies at a path below the root.
enum Found {
    Missing,
    File(Metadata),
    Dir(Metadata),
    /// A FIFO, socket or device: never part of a store, and reading one could block.
    Other,
}

/// The synchronous core: every method runs on the blocking pool.
struct Fs {
    root: PathBuf,
}

impl Fs {
    fn uploads_dir(&self) -> PathBuf {
        self.root.join(INTERNAL_DIR).join("uploads")
    }

    /// Creates the internal upload directory if needed, refusing links in its place (a link
    /// there would send uploads outside the root).
    fn ensure_uploads_dir(&self, for_path: &StoragePath) -> Result<PathBuf> {
        fs::create_dir_all(&self.root).map_err(|e| io_error(for_path, e))?;
        let mut cur = self.root.clone();
        let mut created = NewDirs::default();
        for c in [INTERNAL_DIR, "uploads"] {
            cur.push(c);
            match fs::create_dir(&cur) {
                Ok(()) => {
                    created.add(&cur);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(for_path, e)),
            }
            let m = fs::symlink_metadata(&cur).map_err(|e| io_error(for_path, e))?;
            if m.file_type().is_symlink() {
                return Err(symlink_error(for_path, &format!("internal directory {c}")));
            }
            if !m.is_dir() {
                return Err(Error::backend(
                    DRIVER_NAME,
                    Some(for_path.as_str()),
                    format!("internal directory {c} is not a directory"),
                ));
            }
        }
        created.sync_parents();
        Ok(cur)
    }

    /// The pending-upload file of `path`. Hashing keeps the name short and free of `/`.
    fn pending_path(&self, path: &StoragePath) -> PathBuf {
        self.uploads_dir()
            .join(hex::encode(Sha256::digest(path.as_str().as_bytes())))
    }

    /// Looks `path` up component by component with `lstat`: a symbolic link anywhere below the
    /// root is an error, a file where a directory is needed means the path is missing.
    fn lookup(&self, path: &StoragePath) -> Result<(PathBuf, Found)> {
        let mut cur = self.root.clone();
        let mut shown = String::new();
        let comps: Vec<&str> = path.components().collect();
        if comps.is_empty() {
            return match fs::metadata(&cur) {
                Ok(m) if m.is_dir() => Ok((cur, Found::Dir(m))),
                Ok(_) => Err(Error::backend(
                    DRIVER_NAME,
                    Some("/"),
                    "root directory is not a directory",
                )),
                Err(e) if is_missing(&e) => Ok((cur, Found::Missing)),
                Err(e) => Err(io_error(path, e)),
            };
        }
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            shown.push('/');
            shown.push_str(c);
            let m = match fs::symlink_metadata(&cur) {
                Ok(m) => m,
                Err(e) if is_missing(&e) => return Ok((cur, Found::Missing)),
                Err(e) => return Err(io_error(path, e)),
            };
            let ft = m.file_type();
            if ft.is_symlink() {
                return Err(symlink_error(path, &shown));
            }
            if i + 1 == comps.len() {
                let found = if ft.is_dir() {
                    Found::Dir(m)
                } else if ft.is_file() {
                    Found::File(m)
                } else {
                    Found::Other
                };
                return Ok((cur, found));
            }
            if !ft.is_dir() {
                return Ok((cur, Found::Missing));
            }
        }
        Ok((cur, Found::Missing))
    }

    /// Creates `dir` and its missing ancestors below the root, refusing links and files in the
    /// way. Retries from the root when a concurrent prune removed a directory meanwhile.
    fn mkdirs(&self, dir: &StoragePath, for_path: &StoragePath) -> Result<PathBuf> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.mkdirs_once(dir, for_path) {
                Err(MkdirsError::Raced) if attempt < CREATE_ATTEMPTS => continue,
                Err(MkdirsError::Raced) => {
                    return Err(Error::backend(
                        DRIVER_NAME,
                        Some(for_path.as_str()),
                        "parent directories kept disappearing while being created",
                    ))
                }
                Err(MkdirsError::Fatal(e)) => return Err(e),
                Ok(p) => return Ok(p),
            }
        }
    }

    fn mkdirs_once(
        &self,
        dir: &StoragePath,
        for_path: &StoragePath,
    ) -> Result<PathBuf, MkdirsError> {
        fs::create_dir_all(&self.root).map_err(|e| MkdirsError::Fatal(io_error(for_path, e)))?;
        let mut cur = self.root.clone();
        let mut shown = String::new();
        let mut created = NewDirs::default();
        for c in dir.components() {
            cur.push(c);
            shown.push('/');
            shown.push_str(c);
            let m = match fs::symlink_metadata(&cur) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match fs::create_dir(&cur) {
                        Ok(()) => {
                            created.add(&cur);
                            continue;
                        }
                        // Someone else created it (or something) meanwhile: check what it is.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            return Err(MkdirsError::Raced)
                        }
                        Err(e) => return Err(MkdirsError::Fatal(io_error(for_path, e))),
                    }
                    match fs::symlink_metadata(&cur) {
                        Ok(m) => m,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            return Err(MkdirsError::Raced)
                        }
                        Err(e) => return Err(MkdirsError::Fatal(io_error(for_path, e))),
                    }
                }
                Err(e) => return Err(MkdirsError::Fatal(io_error(for_path, e))),
            };
            if m.file_type().is_symlink() {
                return Err(MkdirsError::Fatal(symlink_error(for_path, &shown)));
            }
            if !m.is_dir() {
                return Err(MkdirsError::Fatal(Error::backend(
                    DRIVER_NAME,
                    Some(for_path.as_str()),
                    format!("parent {shown} is a file, not a directory"),
                )));
            }
        }
        created.sync_parents();
        Ok(cur)
    }

    /// Runs `op` in `path`'s parent directory (created if needed), retrying when a concurrent
    /// prune removed the directory between its creation and `op`.
    fn in_parent<T>(
        &self,
        path: &StoragePath,
        mut op: impl FnMut(&Path) -> io::Result<T>,
    ) -> Result<T> {
        let parent = path.parent();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = self.mkdirs(&parent, path)?;
            match op(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < CREATE_ATTEMPTS => {
                    continue
                }
                r => return r.map_err(|e| io_error(path, e)),
            }
        }
    }

    /// Removes the now-empty directories above `path`, up to (not including) the root, so
    /// they do not linger as phantom entries. Stops at the first directory that is not empty.
    fn prune(&self, path: &StoragePath) {
        let mut dir = path.parent();
        while !dir.is_root() {
            let full = self.full_path(&dir);
            if fs::remove_dir(&full).is_err() {
                break;
            }
            dir = dir.parent();
        }
    }

    fn full_path(&self, path: &StoragePath) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(path.components());
        p
    }

    /// Opens the regular file at `path` for reading; `PathNotFound` for anything else.
    fn open_file(&self, path: &StoragePath) -> Result<(File, Metadata)> {
        match self.lookup(path)? {
            (full, Found::File(_)) => {
                let f = no_follow()
                    .read(true)
                    .open(&full)
                    .map_err(|e| open_error(path, e))?;
                let m = f.metadata().map_err(|e| io_error(path, e))?;
                if !m.is_file() {
                    return Err(Error::not_found(DRIVER_NAME, path.as_str()));
                }
                Ok((f, m))
            }
            (_, Found::Other) => Err(not_regular(path)),
            _ => Err(Error::not_found(DRIVER_NAME, path.as_str())),
        }
    }

    fn get_content(&self, path: &StoragePath) -> Result<Vec<u8>> {
        let (mut f, m) = self.open_file(path)?;
        let mut buf = Vec::with_capacity(usize::try_from(m.len()).unwrap_or(0));
        f.read_to_end(&mut buf).map_err(|e| io_error(path, e))?;
        Ok(buf)
    }

    fn put_content(&self, path: &StoragePath, content: &[u8]) -> Result<()> {
        let target_name = path.base_name().to_owned();
        self.in_parent(path, |dir| {
            let tmp = dir.join(format!(".~tmp.{}", unique_suffix()));
            let res = (|| {
                let mut f = no_follow().write(true).create_new(true).open(&tmp)?;
                f.write_all(content)?;
                sync_file(&f, &tmp)?;
                drop(f);
                fs::rename(&tmp, dir.join(&target_name))?;
                sync_dir(dir);
                Ok(())
            })();
            if res.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            res
        })
    }

    fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        match self.lookup(path)? {
            (_, Found::File(m)) => Ok(FileInfo::file(path.clone(), m.len(), m.modified().ok())),
            (_, Found::Dir(m)) => Ok(FileInfo {
                mod_time: m.modified().ok(),
                ..FileInfo::dir(path.clone())
            }),
            (_, Found::Other) => Err(not_regular(path)),
            (_, Found::Missing) if path.is_root() => Ok(FileInfo::dir(path.clone())),
            (_, Found::Missing) => Err(Error::not_found(DRIVER_NAME, path.as_str())),
        }
    }

    fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
        let full = match self.lookup(path)? {
            (full, Found::Dir(_)) => full,
            (_, Found::Missing) if path.is_root() => return Ok(Vec::new()),
            _ => return Err(Error::not_found(DRIVER_NAME, path.as_str())),
        };
        let entries = fs::read_dir(&full).map_err(|e| io_error(path, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(path, e))?;
            // Internal and temporary names are not valid components, so `join` drops them.
            let Some(child) = entry.file_name().to_str().and_then(|n| path.join(n)) else {
                continue;
            };
            let ft = match entry.file_type() {
                Ok(ft) => ft,
                // Removed since read_dir saw it.
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(io_error(path, e)),
            };
            if ft.is_symlink() {
                tracing::warn!(path = %child, "filesystem: ignoring symbolic link in store");
                continue;
            }
            if ft.is_file() || ft.is_dir() {
                out.push(child);
            }
        }
        if out.is_empty() && !path.is_root() {
            return Err(Error::not_found(DRIVER_NAME, path.as_str()));
        }
        Ok(out)
    }

    fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
        let src_full = match self.lookup(src)? {
            (full, Found::File(_)) => full,
            (_, Found::Other) => return Err(not_regular(src)),
            _ => return Err(Error::not_found(DRIVER_NAME, src.as_str())),
        };
        if src == dst {
            return Ok(());
        }
        let name = dst.base_name().to_owned();
        let moved = self.in_parent(dst, |dir| {
            // A missing source after the check means a concurrent move or delete won; only
            // a missing destination directory (pruned meanwhile) is worth a retry.
            if let Err(e) = fs::symlink_metadata(&src_full) {
                return if is_missing(&e) { Ok(false) } else { Err(e) };
            }
            fs::rename(&src_full, dir.join(&name))?;
            sync_dir(dir);
            Ok(true)
        })?;
        if !moved {
            return Err(Error::not_found(DRIVER_NAME, src.as_str()));
        }
        self.prune(src);
        Ok(())
    }

    fn delete(&self, path: &StoragePath) -> Result<()> {
        let res = match self.lookup(path)? {
            (_, Found::Missing) => return Err(Error::not_found(DRIVER_NAME, path.as_str())),
            (full, Found::Dir(_)) => fs::remove_dir_all(full),
            (full, _) => fs::remove_file(full),
        };
        res.map_err(|e| io_error(path, e))?;
        self.prune(path);
        Ok(())
    }
}

enum MkdirsError {
    /// A directory disappeared while the chain was being created.
    Raced,
    Fatal(Error),
}

fn not_regular(path: &StoragePath) -> Error {
    Error::backend(DRIVER_NAME, Some(path.as_str()), "not a regular file")
}

/// `O_NOFOLLOW` on a link fails with `ELOOP`: report it as the link refusal it is.
fn open_error(path: &StoragePath, e: io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        symlink_error(path, path.as_str())
    } else {
        io_error(path, e)
    }
}

// Durability (see the crate documentation). The sync helpers record their calls in test
// builds, so the unit tests can check which syncs an operation made.

/// Syncs `file` (at `path`) to disk: data and metadata.
fn sync_file(file: &File, path: &Path) -> io::Result<()> {
    #[cfg(test)]
    tests::record_sync(tests::Synced::File(path.to_owned()));
    #[cfg(not(test))]
    let _ = path;
    file.sync_all()
}

/// Makes a rename into (or a new entry of) `dir` durable. Best effort: a failure here does not
/// undo the rename, which already happened, and only matters after a crash.
fn sync_dir(dir: &Path) {
    #[cfg(test)]
    tests::record_sync(tests::Synced::Dir(dir.to_owned()));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Directories one operation created, whose entries in their parents must be made durable.
#[derive(Default)]
struct NewDirs(Vec<PathBuf>);

impl NewDirs {
    fn add(&mut self, dir: &Path) {
        self.0.push(dir.to_owned());
    }

    /// Syncs the parent of each created directory, once each (a chain `a/b/c` syncs the
    /// parent of `a`, then `a`, then `b`; `c` itself is synced by whoever puts a file in it).
    fn sync_parents(self) {
        let mut last: Option<&Path> = None;
        for dir in &self.0 {
            if let Some(parent) = dir.parent() {
                if last != Some(parent) {
                    sync_dir(parent);
                    last = Some(parent);
                }
            }
        }
    }
}

/// State shared by the driver and its writers and readers.
struct Shared {
    fs: Fs,
    /// Bounds concurrent blocking operations (`maxthreads`).
    permits: Arc<Semaphore>,
    max_threads: usize,
}

impl Shared {
    /// Runs `f` on the blocking pool once a permit is free.
    async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        F: FnOnce(&Fs) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::backend(DRIVER_NAME, None, "driver is shutting down"))?;
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // Held until the work is done, even if the caller stops waiting.
            let _permit = permit;
            f(&me.fs)
        })
        .await
        .map_err(|e| Error::backend(DRIVER_NAME, None, format!("blocking task failed: {e}")))
    }
}

/// The filesystem backend. Cloning gives another handle on the same root and thread limit.
#[derive(Clone)]
pub struct FilesystemDriver {
    shared: Arc<Shared>,
}

impl fmt::Debug for FilesystemDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilesystemDriver")
            .field("root", &self.shared.fs.root)
            .field("max_threads", &self.shared.max_threads)
            .finish()
    }
}

impl FilesystemDriver {
    /// A driver storing below `root` with the default `maxthreads`. A relative `root` is
    /// resolved against the current directory now, so later `chdir`s do not move the store.
    /// The directory is created on the first write.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self::with_max_threads(root, DEFAULT_MAX_THREADS as usize)
    }

    /// Like [`new`](Self::new), allowing at most `max_threads` (at least 1) blocking
    /// filesystem operations at once.
    pub fn with_max_threads(root: impl AsRef<Path>, max_threads: usize) -> Self {
        let root = root.as_ref();
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let max_threads = max_threads.clamp(1, Semaphore::MAX_PERMITS);
        FilesystemDriver {
            shared: Arc::new(Shared {
                fs: Fs { root },
                permits: Arc::new(Semaphore::new(max_threads)),
                max_threads,
            }),
        }
    }

    /// The absolute root directory.
    pub fn root(&self) -> &Path {
        &self.shared.fs.root
    }
}

#[async_trait]
impl StorageDriver for FilesystemDriver {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        let p = path.clone();
        self.shared
            .blocking(move |fs| fs.get_content(&p))
            .await?
            .map(Bytes::from)
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        let p = path.clone();
        self.shared
            .blocking(move |fs| fs.put_content(&p, &content))
            .await?
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        let p = path.clone();
        let file = self
            .shared
            .blocking(move |fs| {
                let (mut f, m) = fs.open_file(&p)?;
                // Past the end the stream is simply empty.
                if offset > 0 && offset < m.len() {
                    f.seek(SeekFrom::Start(offset))
                        .map_err(|e| io_error(&p, e))?;
                }
                Ok::<_, Error>((offset < m.len()).then_some(f))
            })
            .await??;
        let state = ReadState {
            shared: Arc::clone(&self.shared),
            path: path.clone(),
            file,
        };
        Ok(Box::pin(futures::stream::unfold(state, read_chunk)))
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        let p = path.clone();
        let opened = self
            .shared
            .blocking(move |fs| open_writer(fs, &p, append))
            .await??;
        Ok(Box::new(FilesystemWriter {
            shared: Arc::clone(&self.shared),
            path: path.clone(),
            file: Some(opened.file),
            work_path: opened.work_path,
            pending_path: opened.pending_path,
            resumed: opened.resumed,
            owns_work_file: true,
            buf: Vec::new(),
            buf_len: 0,
            size: opened.size,
            lifecycle: WriterLifecycle::new(DRIVER_NAME, path.clone()),
        }))
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        let p = path.clone();
        self.shared.blocking(move |fs| fs.stat(&p)).await?
    }

    async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
        let p = path.clone();
        self.shared.blocking(move |fs| fs.list(&p)).await?
    }

    async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
        let (s, d) = (src.clone(), dst.clone());
        self.shared
            .blocking(move |fs| fs.move_object(&s, &d))
            .await?
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let p = path.clone();
        self.shared.blocking(move |fs| fs.delete(&p)).await?
    }
}

/// Where a reader stream is.
struct ReadState {
    shared: Arc<Shared>,
    path: StoragePath,
    /// `None` once the end (or an error) was reached.
    file: Option<File>,
}

/// Reads the next piece of at most [`READ_CHUNK`] bytes on the blocking pool.
async fn read_chunk(mut st: ReadState) -> Option<(Result<Bytes>, ReadState)> {
    let file = st.file.take()?;
    let p = st.path.clone();
    let res = st
        .shared
        .blocking(move |_| {
            let mut file = file;
            let mut buf = Vec::with_capacity(READ_CHUNK);
            let r = Read::by_ref(&mut file)
                .take(READ_CHUNK as u64)
                .read_to_end(&mut buf);
            (file, r.map(|_| buf).map_err(|e| io_error(&p, e)))
        })
        .await;
    match res {
        Ok((file, Ok(buf))) => {
            if buf.is_empty() {
                return None;
            }
            st.file = Some(file);
            Some((Ok(Bytes::from(buf)), st))
        }
        Ok((_, Err(e))) | Err(e) => Some((Err(e), st)),
    }
}

/// What `open_writer` prepared.
struct OpenedWriter {
    file: File,
    work_path: PathBuf,
    pending_path: PathBuf,
    resumed: bool,
    size: u64,
}

fn open_writer(fs: &Fs, path: &StoragePath, append: bool) -> Result<OpenedWriter> {
    let pending_path = fs.pending_path(path);
    let uploads = fs.ensure_uploads_dir(path)?;
    let file_name = pending_path
        .file_name()
        .map(|n| format!("{}.{}.part", n.to_string_lossy(), unique_suffix()))
        .unwrap_or_else(|| format!("upload.{}.part", unique_suffix()));
    let work_path = uploads.join(file_name);
    if append {
        // Claim the pending upload by renaming it to this writer's own file: from now on no
        // other writer can change the bytes this one commits, and a second resumer finds
        // nothing to resume instead of interleaving with this one.
        match fs::symlink_metadata(&pending_path) {
            Ok(m) if m.is_file() => match fs::rename(&pending_path, &work_path) {
                Ok(()) => {
                    let file = no_follow()
                        .append(true)
                        .open(&work_path)
                        .map_err(|e| open_error(path, e))?;
                    let size = file.metadata().map_err(|e| io_error(path, e))?.len();
                    return Ok(OpenedWriter {
                        file,
                        work_path,
                        pending_path,
                        resumed: true,
                        size,
                    });
                }
                // Claimed by a concurrent resumer meanwhile: nothing left to resume.
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(io_error(path, e)),
            },
            Ok(_) => return Err(not_regular(path)),
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(io_error(path, e)),
        }
        match fs.lookup(path)? {
            (_, Found::File(m)) if m.len() > 0 => {
                return Err(Error::AppendToCommitted {
                    driver: DRIVER_NAME.to_owned(),
                    path: path.as_str().to_owned(),
                    size: m.len(),
                })
            }
            // A committed empty object: appending to it is writing afresh.
            (_, Found::File(_)) => {}
            _ => return Err(Error::not_found(DRIVER_NAME, path.as_str())),
        }
    }
    let file = no_follow()
        .write(true)
        .create_new(true)
        .open(&work_path)
        .map_err(|e| io_error(path, e))?;
    Ok(OpenedWriter {
        file,
        work_path,
        pending_path,
        resumed: false,
        size: 0,
    })
}

/// A writer of the filesystem driver.
///
/// Writes are buffered (up to 1 MiB) and appended to an upload file under the internal
/// directory; `close` makes that file the path's pending upload, `commit` renames it onto the
/// path. Every writer works on its own file (`<sha256>.<unique>.part`; a resumed writer first
/// renames the pending upload to it), so concurrent writers of one path never mix bytes.
/// Dropping a fresh writer without `close` discards what it wrote.
pub struct FilesystemWriter {
    shared: Arc<Shared>,
    path: StoragePath,
    /// `None` while a blocking write holds it, or after a failed write lost it.
    file: Option<File>,
    work_path: PathBuf,
    pending_path: PathBuf,
    /// Whether this writer resumed (claimed) a pending upload rather than starting afresh.
    resumed: bool,
    /// Whether `work_path` is still this writer's to publish or clean up.
    owns_work_file: bool,
    buf: Vec<Bytes>,
    buf_len: usize,
    size: u64,
    lifecycle: WriterLifecycle,
}

impl fmt::Debug for FilesystemWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilesystemWriter")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("resumed", &self.resumed)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl FilesystemWriter {
    fn take_file(&mut self) -> Result<File> {
        self.file.take().ok_or_else(|| {
            Error::backend(
                DRIVER_NAME,
                Some(self.path.as_str()),
                "writer is unusable after an earlier write failed",
            )
        })
    }

    /// Writes the buffered pieces to the upload file; with `sync`, also makes them durable.
    async fn flush(&mut self, sync: bool) -> Result<()> {
        if self.buf.is_empty() && !sync {
            return Ok(());
        }
        let mut file = self.take_file()?;
        let pieces = std::mem::take(&mut self.buf);
        self.buf_len = 0;
        let (p, work) = (self.path.clone(), self.work_path.clone());
        let (file, res) = self
            .shared
            .blocking(move |_| {
                let r = (|| {
                    for piece in &pieces {
                        file.write_all(piece)?;
                    }
                    if sync {
                        sync_file(&file, &work)?;
                    }
                    Ok(())
                })();
                (file, r.map_err(|e| io_error(&p, e)))
            })
            .await?;
        self.file = Some(file);
        res
    }
}

#[async_trait]
impl FileWriter for FilesystemWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.lifecycle.check_open()?;
        if data.is_empty() {
            return Ok(());
        }
        self.size += data.len() as u64;
        self.buf_len += data.len();
        self.buf.push(data);
        if self.buf_len >= WRITE_BUFFER {
            self.flush(false).await?;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn close(&mut self) -> Result<()> {
        // After commit or cancel there is nothing left to flush.
        if !self.lifecycle.close()? {
            return Ok(());
        }
        // Synced before it is published: a closed upload is resumable after power loss.
        self.flush(true).await?;
        self.file = None;
        // Publish as the path's pending upload, replacing an older one.
        let (work, pending, p) = (
            self.work_path.clone(),
            self.pending_path.clone(),
            self.path.clone(),
        );
        self.shared
            .blocking(move |_| {
                fs::rename(&work, &pending).map_err(|e| io_error(&p, e))?;
                if let Some(dir) = pending.parent() {
                    sync_dir(dir);
                }
                Ok(())
            })
            .await??;
        self.owns_work_file = false;
        Ok(())
    }

    async fn cancel(&mut self) -> Result<()> {
        self.lifecycle.cancel()?;
        self.buf.clear();
        self.buf_len = 0;
        self.file = None;
        self.owns_work_file = false;
        let (work, p) = (self.work_path.clone(), self.path.clone());
        self.shared
            .blocking(move |_| match fs::remove_file(&work) {
                Err(e) if !is_missing(&e) => Err(io_error(&p, e)),
                _ => Ok(()),
            })
            .await?
    }

    async fn commit(&mut self) -> Result<()> {
        self.lifecycle.check_open()?;
        self.flush(true).await?;
        let (work, p) = (self.work_path.clone(), self.path.clone());
        let name = self.path.base_name().to_owned();
        self.shared
            .blocking(move |fs| {
                fs.in_parent(&p, |dir| {
                    fs::rename(&work, dir.join(&name))?;
                    sync_dir(dir);
                    Ok(())
                })
            })
            .await??;
        self.owns_work_file = false;
        self.lifecycle.committed();
        self.file = None;
        Ok(())
    }
}

impl Drop for FilesystemWriter {
    /// A writer dropped while it still owns its file (never closed, committed or cancelled,
    /// or a failed close): a resumed upload is given back as the pending upload, with what
    /// was flushed, unless a newer one took its place (`hard_link` never replaces); a fresh
    /// upload was never resumable, so its file is removed rather than leaked.
    fn drop(&mut self) {
        if !self.owns_work_file {
            return;
        }
        self.file = None;
        if self.resumed {
            let _ = fs::hard_link(&self.work_path, &self.pending_path);
        }
        let _ = fs::remove_file(&self.work_path);
    }
}

/// Builds [`FilesystemDriver`]s for a [`regstore_driver_api::Registry`].
///
/// Parameters: `rootdirectory` (default `/var/lib/registry`; relative paths resolve against the
/// current directory) and `maxthreads` (default 100, at least 25). Any other key is an
/// [`Error::InvalidParameter`] naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilesystemFactory;

#[async_trait]
impl DriverFactory for FilesystemFactory {
    async fn create(&self, params: &Parameters) -> Result<Arc<dyn StorageDriver>> {
        if let Some(key) = params
            .keys()
            .find(|k| !matches!(*k, "rootdirectory" | "maxthreads"))
        {
            return Err(Error::invalid_parameter(
                DRIVER_NAME,
                key,
                "unknown parameter; the filesystem driver accepts rootdirectory and maxthreads",
            ));
        }
        let root = params
            .string(DRIVER_NAME, "rootdirectory")?
            .unwrap_or_else(|| DEFAULT_ROOT_DIRECTORY.to_owned());
        if root.is_empty() {
            return Err(Error::invalid_parameter(
                DRIVER_NAME,
                "rootdirectory",
                "must not be empty",
            ));
        }
        let max_threads = params.int_in_range(
            DRIVER_NAME,
            "maxthreads",
            DEFAULT_MAX_THREADS,
            MIN_MAX_THREADS,
            MAX_MAX_THREADS,
        )?;
        let driver =
            FilesystemDriver::with_max_threads(&root, usize::try_from(max_threads).unwrap_or(1));
        let check_root = driver.root().to_path_buf();
        let is_bad = tokio::task::spawn_blocking(move || {
            fs::metadata(&check_root).is_ok_and(|m| !m.is_dir())
        })
        .await
        .unwrap_or(false);
        if is_bad {
            return Err(Error::invalid_parameter(
                DRIVER_NAME,
                "rootdirectory",
                format!("{root} exists and is not a directory"),
            ));
        }
        Ok(Arc::new(driver))
    }
}

#[cfg(test)]
mod tests;
