//! The caller-facing handle: validates input once, for every backend.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use tokio::io::AsyncRead;

use crate::{
    ByteStream, Error, FileInfo, FileWriter, RedirectRequest, Result, StorageDriver, StoragePath,
    WalkControl, WalkOptions,
};

/// A cheap-to-clone handle on a backend (`Arc<dyn StorageDriver>`), taking paths as strings.
///
/// This plays the part of distribution's `base` wrapper: object paths must be valid and not `/`
/// (stat, list and walk also accept `/`), offsets must not be negative, and a violation is a
/// typed [`Error`] naming the driver and the path — the backend is never called with bad input.
#[derive(Debug, Clone)]
pub struct Driver {
    inner: Arc<dyn StorageDriver>,
}

impl Driver {
    /// Wraps a backend (or a middleware chain).
    pub fn new(inner: Arc<dyn StorageDriver>) -> Self {
        Driver { inner }
    }

    /// The wrapped backend, e.g. to hand to a middleware.
    pub fn inner(&self) -> &Arc<dyn StorageDriver> {
        &self.inner
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    fn object_path(&self, path: &str) -> Result<StoragePath> {
        StoragePath::parse(path).ok_or_else(|| Error::invalid_path(self.name(), path))
    }

    fn dir_path(&self, path: &str) -> Result<StoragePath> {
        StoragePath::parse_dir(path).ok_or_else(|| Error::invalid_path(self.name(), path))
    }

    /// See [`StorageDriver::get_content`].
    pub async fn get_content(&self, path: &str) -> Result<Bytes> {
        let p = self.object_path(path)?;
        self.inner.get_content(&p).await
    }

    /// See [`StorageDriver::put_content`].
    pub async fn put_content(&self, path: &str, content: impl Into<Bytes>) -> Result<()> {
        let p = self.object_path(path)?;
        self.inner.put_content(&p, content.into()).await
    }

    /// See [`StorageDriver::reader`]. A negative offset is [`Error::InvalidOffset`] (checked
    /// before the path, as distribution does).
    pub async fn reader(&self, path: &str, offset: i64) -> Result<ByteStream> {
        let Ok(off) = u64::try_from(offset) else {
            return Err(Error::InvalidOffset {
                driver: self.name().to_owned(),
                path: path.to_owned(),
                offset,
            });
        };
        let p = self.object_path(path)?;
        self.inner.reader(&p, off).await
    }

    /// [`reader`](Self::reader) as an [`AsyncRead`], for `tokio::io::copy` and friends.
    pub async fn async_reader(
        &self,
        path: &str,
        offset: i64,
    ) -> Result<impl AsyncRead + Send + Unpin + 'static> {
        let stream = self.reader(path, offset).await?;
        Ok(tokio_util::io::StreamReader::new(
            stream.map_err(std::io::Error::other),
        ))
    }

    /// See [`StorageDriver::writer`].
    pub async fn writer(&self, path: &str, append: bool) -> Result<Writer> {
        let p = self.object_path(path)?;
        Ok(Writer {
            inner: self.inner.writer(&p, append).await?,
            driver: self.name().to_owned(),
            path: p,
        })
    }

    /// See [`StorageDriver::stat`].
    pub async fn stat(&self, path: &str) -> Result<FileInfo> {
        let p = self.dir_path(path)?;
        self.inner.stat(&p).await
    }

    /// See [`StorageDriver::list`].
    pub async fn list(&self, path: &str) -> Result<Vec<StoragePath>> {
        let p = self.dir_path(path)?;
        self.inner.list(&p).await
    }

    /// See [`StorageDriver::move_object`]. The source is validated first, then the destination.
    pub async fn move_object(&self, src: &str, dst: &str) -> Result<()> {
        let s = self.object_path(src)?;
        let d = self.object_path(dst)?;
        self.inner.move_object(&s, &d).await
    }

    /// See [`StorageDriver::delete`].
    pub async fn delete(&self, path: &str) -> Result<()> {
        let p = self.object_path(path)?;
        self.inner.delete(&p).await
    }

    /// See [`StorageDriver::delete_many`]. Every path is validated before any is deleted: one
    /// invalid path is an [`Error::InvalidPath`] naming it and nothing is deleted. `Ok` holds
    /// the paths that may still exist, each with its error (empty: all gone).
    pub async fn delete_many<S: AsRef<str>>(
        &self,
        paths: &[S],
    ) -> Result<Vec<(StoragePath, Error)>> {
        let ps = paths
            .iter()
            .map(|p| self.object_path(p.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if ps.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.inner.delete_many(&ps).await)
    }

    /// See [`StorageDriver::redirect_url`].
    pub async fn redirect_url(
        &self,
        request: &RedirectRequest,
        path: &str,
    ) -> Result<Option<url::Url>> {
        let p = self.object_path(path)?;
        self.inner.redirect_url(request, &p).await
    }

    /// See [`StorageDriver::walk`].
    pub async fn walk<F>(&self, from: &str, options: &WalkOptions, mut f: F) -> Result<()>
    where
        F: FnMut(&FileInfo) -> Result<WalkControl> + Send,
    {
        let p = self.dir_path(from)?;
        self.inner.walk(&p, options, &mut f).await
    }
}

impl From<Arc<dyn StorageDriver>> for Driver {
    fn from(inner: Arc<dyn StorageDriver>) -> Self {
        Driver::new(inner)
    }
}

/// A writer obtained from [`Driver::writer`]; adds convenience over [`FileWriter`].
#[derive(Debug)]
pub struct Writer {
    inner: Box<dyn FileWriter>,
    driver: String,
    path: StoragePath,
}

impl Writer {
    /// See [`FileWriter::write`].
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<()> {
        self.inner.write(data.into()).await
    }

    /// Copies everything `reader` yields into the writer in pieces of at most `buf_size`
    /// bytes, returning the number of bytes copied. Memory stays bounded by `buf_size`.
    pub async fn copy_from<R>(&mut self, reader: &mut R, buf_size: usize) -> Result<u64>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        use tokio::io::AsyncReadExt;
        let mut total = 0u64;
        loop {
            let mut buf = bytes::BytesMut::with_capacity(buf_size.max(1));
            while buf.len() < buf.capacity() {
                let n = reader
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| Error::backend(&self.driver, Some(&self.path), e))?;
                if n == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                return Ok(total);
            }
            total += buf.len() as u64;
            self.inner.write(buf.freeze()).await?;
        }
    }

    /// The path being written.
    pub fn path(&self) -> &StoragePath {
        &self.path
    }

    /// See [`FileWriter::size`].
    pub fn size(&self) -> u64 {
        self.inner.size()
    }

    /// See [`FileWriter::close`].
    pub async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }

    /// See [`FileWriter::cancel`].
    pub async fn cancel(&mut self) -> Result<()> {
        self.inner.cancel().await
    }

    /// See [`FileWriter::commit`].
    pub async fn commit(&mut self) -> Result<()> {
        self.inner.commit().await
    }

    /// The backend's writer.
    pub fn into_inner(self) -> Box<dyn FileWriter> {
        self.inner
    }
}
