//! An in-memory storage driver (`"inmemory"`).
//!
//! Everything lives in one process-local map behind a lock, so the driver is fast, needs no
//! setup and forgets everything when the last handle is dropped: meant for tests and for
//! throw-away registries. It follows the same contract as the persistent backends, including
//! resumable writers whose closed-but-uncommitted uploads stay invisible to readers.
//!
//! Layout: only objects are stored, keyed by their full path; a directory is any path that is a
//! proper prefix (up to a `/`) of an object's path. Directories therefore vanish with their last
//! object, which is what lets `list("/")` be empty again after a caller deletes what it wrote.
//!
//! ```
//! use std::sync::Arc;
//!
//! use regstore_driver_api::Driver;
//! use regstore_driver_inmemory::InMemoryDriver;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> regstore_driver_api::Result<()> {
//! let driver = Driver::new(Arc::new(InMemoryDriver::new()));
//! driver.put_content("/repositories/app/_manifests/tags/v1/current/link", "sha256:0123").await?;
//! let link = driver.get_content("/repositories/app/_manifests/tags/v1/current/link").await?;
//! assert_eq!(&link[..], b"sha256:0123");
//!
//! // A resumable upload: closed, resumed, committed; invisible until the commit.
//! let mut w = driver.writer("/uploads/1", false).await?;
//! w.write("hello ").await?;
//! w.close().await?;
//! assert!(driver.stat("/uploads/1").await.unwrap_err().is_not_found());
//! let mut w = driver.writer("/uploads/1", true).await?;
//! assert_eq!(w.size(), 6);
//! w.write("world").await?;
//! w.commit().await?;
//! assert_eq!(&driver.get_content("/uploads/1").await?[..], b"hello world");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use regstore_driver_api::{
    ByteStream, DriverFactory, Error, FileInfo, FileWriter, Parameters, Result, StorageDriver,
    StoragePath, WriterLifecycle,
};

/// Registration name of this driver, used in every error message.
pub const DRIVER_NAME: &str = "inmemory";

/// Size of the pieces a reader stream yields; the object is already in memory, so this only
/// bounds how much a consumer receives per poll.
const READ_CHUNK: usize = 64 * 1024;

/// A committed object.
#[derive(Clone)]
struct Object {
    data: Bytes,
    mod_time: SystemTime,
}

/// A closed, uncommitted upload, waiting to be resumed, committed or cancelled.
struct Upload {
    /// Identifies the upload so a writer only removes the upload it owns.
    id: u64,
    chunks: Vec<Bytes>,
    size: u64,
}

#[derive(Default)]
struct State {
    /// Committed objects by full path. Byte order of keys makes every subtree a contiguous range.
    objects: BTreeMap<String, Object>,
    /// Closed uploads by path; invisible to every read operation.
    uploads: HashMap<String, Upload>,
}

/// The first key after every key starting with `prefix` + `/`: `'0'` is the byte after `'/'`.
fn subtree_range(dir: &str) -> (Bound<String>, Bound<String>) {
    (
        Bound::Included(format!("{dir}/")),
        Bound::Excluded(format!("{dir}0")),
    )
}

impl State {
    /// Whether `path` is a directory: some object lies strictly below it.
    fn is_dir(&self, path: &StoragePath) -> bool {
        if path.is_root() {
            return !self.objects.is_empty();
        }
        self.objects
            .range(subtree_range(path.as_str()))
            .next()
            .is_some()
    }

    /// Refuses to place an object at `path` when an ancestor is an object (it would have to be
    /// a directory) or `path` itself is a directory.
    fn check_placeable(&self, path: &StoragePath) -> Result<()> {
        let mut p = path.parent();
        while !p.is_root() {
            if self.objects.contains_key(p.as_str()) {
                return Err(Error::backend(
                    DRIVER_NAME,
                    Some(path.as_str()),
                    format!("parent {p} is a file, not a directory"),
                ));
            }
            p = p.parent();
        }
        if self.is_dir(path) {
            return Err(Error::backend(
                DRIVER_NAME,
                Some(path.as_str()),
                "is a directory",
            ));
        }
        Ok(())
    }
}

/// The in-memory backend. Cloning gives another handle on the same store.
#[derive(Clone, Default)]
pub struct InMemoryDriver {
    state: Arc<RwLock<State>>,
    next_upload_id: Arc<AtomicU64>,
}

impl fmt::Debug for InMemoryDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.read();
        f.debug_struct("InMemoryDriver")
            .field("objects", &st.objects.len())
            .field("pending_uploads", &st.uploads.len())
            .finish()
    }
}

impl InMemoryDriver {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave the maps half-updated (every mutation is a
    // single insert/remove), so a poisoned lock is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn new_upload_id(&self) -> u64 {
        self.next_upload_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[async_trait]
impl StorageDriver for InMemoryDriver {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        self.read()
            .objects
            .get(path.as_str())
            .map(|o| o.data.clone())
            .ok_or_else(|| Error::not_found(DRIVER_NAME, path.as_str()))
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        let mut st = self.write();
        st.check_placeable(path)?;
        st.objects.insert(
            path.as_str().to_owned(),
            Object {
                data: content,
                mod_time: SystemTime::now(),
            },
        );
        Ok(())
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        let data = self.get_content(path).await?;
        // Offsets past the end give an empty stream, as the contract asks.
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let rest = data.slice(start..);
        let stream = futures::stream::unfold(rest, |mut rest| async move {
            if rest.is_empty() {
                None
            } else {
                let piece = rest.split_to(rest.len().min(READ_CHUNK));
                Some((Ok(piece), rest))
            }
        });
        Ok(Box::pin(stream))
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        let mut w = InMemoryWriter {
            driver: self.clone(),
            path: path.clone(),
            upload_id: self.new_upload_id(),
            chunks: Vec::new(),
            size: 0,
            lifecycle: WriterLifecycle::new(DRIVER_NAME, path.clone()),
        };
        if append {
            let st = self.read();
            if let Some(up) = st.uploads.get(path.as_str()) {
                w.upload_id = up.id;
                w.chunks = up.chunks.clone();
                w.size = up.size;
            } else if let Some(obj) = st.objects.get(path.as_str()) {
                if !obj.data.is_empty() {
                    return Err(Error::AppendToCommitted {
                        driver: DRIVER_NAME.to_owned(),
                        path: path.as_str().to_owned(),
                        size: obj.data.len() as u64,
                    });
                }
                // A committed empty object: appending to it is the same as writing afresh.
            } else {
                return Err(Error::not_found(DRIVER_NAME, path.as_str()));
            }
        }
        Ok(Box::new(w))
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        let st = self.read();
        if let Some(o) = st.objects.get(path.as_str()) {
            return Ok(FileInfo::file(
                path.clone(),
                o.data.len() as u64,
                Some(o.mod_time),
            ));
        }
        if path.is_root() || st.is_dir(path) {
            return Ok(FileInfo::dir(path.clone()));
        }
        Err(Error::not_found(DRIVER_NAME, path.as_str()))
    }

    async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
        let st = self.read();
        let range = if path.is_root() {
            (Bound::Unbounded, Bound::Unbounded)
        } else {
            subtree_range(path.as_str())
        };
        let prefix_len = if path.is_root() { 1 } else { path.len() + 1 };
        let mut children = BTreeSet::new();
        for key in st.objects.range::<String, _>(range).map(|(k, _)| k) {
            let rest = &key[prefix_len..];
            let first = rest.split('/').next().unwrap_or(rest);
            if let Some(child) = path.join(first) {
                children.insert(child);
            }
        }
        if children.is_empty() && !path.is_root() {
            return Err(Error::not_found(DRIVER_NAME, path.as_str()));
        }
        Ok(children.into_iter().collect())
    }

    async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
        let mut st = self.write();
        if !st.objects.contains_key(src.as_str()) {
            return Err(Error::not_found(DRIVER_NAME, src.as_str()));
        }
        if src == dst {
            return Ok(());
        }
        st.check_placeable(dst)?;
        if let Some(obj) = st.objects.remove(src.as_str()) {
            st.objects.insert(dst.as_str().to_owned(), obj);
        }
        Ok(())
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let mut st = self.write();
        let mut removed = st.objects.remove(path.as_str()).is_some();
        let below: Vec<String> = st
            .objects
            .range::<String, _>(subtree_range(path.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        removed |= !below.is_empty();
        for k in below {
            st.objects.remove(&k);
        }
        if removed {
            Ok(())
        } else {
            Err(Error::not_found(DRIVER_NAME, path.as_str()))
        }
    }
}

/// A writer of the in-memory driver: accumulates written pieces, publishes them as a pending
/// upload on `close` and as an object on `commit`.
pub struct InMemoryWriter {
    driver: InMemoryDriver,
    path: StoragePath,
    upload_id: u64,
    chunks: Vec<Bytes>,
    size: u64,
    lifecycle: WriterLifecycle,
}

impl fmt::Debug for InMemoryWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryWriter")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl InMemoryWriter {
    fn content(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut buf = BytesMut::with_capacity(usize::try_from(self.size).unwrap_or(0));
                for c in many {
                    buf.extend_from_slice(c);
                }
                buf.freeze()
            }
        }
    }

    /// Removes the pending upload this writer resumed or published, if it is still ours.
    fn drop_own_upload(&self, st: &mut State) {
        if st
            .uploads
            .get(self.path.as_str())
            .is_some_and(|u| u.id == self.upload_id)
        {
            st.uploads.remove(self.path.as_str());
        }
    }
}

#[async_trait]
impl FileWriter for InMemoryWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.lifecycle.check_open()?;
        if !data.is_empty() {
            self.size += data.len() as u64;
            self.chunks.push(data);
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
        let upload = Upload {
            id: self.upload_id,
            // Coalesce so a long resumed upload does not keep thousands of tiny pieces.
            chunks: vec![self.content()],
            size: self.size,
        };
        self.chunks = upload.chunks.clone();
        self.driver
            .write()
            .uploads
            .insert(self.path.as_str().to_owned(), upload);
        Ok(())
    }

    async fn cancel(&mut self) -> Result<()> {
        self.lifecycle.cancel()?;
        self.chunks.clear();
        let driver = self.driver.clone();
        self.drop_own_upload(&mut driver.write());
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.lifecycle.check_open()?;
        let data = self.content();
        let driver = self.driver.clone();
        let mut st = driver.write();
        st.check_placeable(&self.path)?;
        st.objects.insert(
            self.path.as_str().to_owned(),
            Object {
                data,
                mod_time: SystemTime::now(),
            },
        );
        self.drop_own_upload(&mut st);
        drop(st);
        self.lifecycle.committed();
        self.chunks.clear();
        Ok(())
    }
}

/// Builds [`InMemoryDriver`]s for a [`regstore_driver_api::Registry`]. Each `create` makes a
/// new, empty store.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemoryFactory;

#[async_trait]
impl DriverFactory for InMemoryFactory {
    /// The in-memory driver has no parameters; any key given is reported as
    /// [`Error::InvalidParameter`] so a misspelt configuration does not pass silently.
    async fn create(&self, params: &Parameters) -> Result<Arc<dyn StorageDriver>> {
        if let Some(key) = params.keys().next() {
            return Err(Error::invalid_parameter(
                DRIVER_NAME,
                key,
                "the inmemory driver takes no parameters",
            ));
        }
        Ok(Arc::new(InMemoryDriver::new()))
    }
}

#[cfg(test)]
mod tests;
