//! [`S3Driver`]: the storage driver on one S3 bucket.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, FuturesUnordered, StreamExt, TryStreamExt};
use regstore_driver_api::{
    ByteStream, Error, FileInfo, FileWriter, RedirectMethod, RedirectRequest, Result,
    StorageDriver, StoragePath, WalkFn, WalkOptions,
};

use crate::config::S3Config;
use crate::connection::{PresignMethod, S3Connection};
use crate::error::{S3Error, DRIVER};
use crate::keys::KeyMapper;
use crate::pagination::{all_uploads, ObjectPages};
use crate::reader::{RangeSource, ReadPlan};
use crate::s3api::{
    collect, DeleteFailure, GetAnswer, ListRequest, S3Api, UploadInfo, WriteHeaders,
};
use crate::shared::Inner;
use crate::stats::RequestStats;
use crate::writer::S3Writer;

/// The S3 storage driver (registered as `s3` and `s3aws`; reports itself as `"s3aws"`).
///
/// Objects live under `rootdirectory` in one bucket with distribution's key layout, so a Go
/// registry and regstore can share a bucket. S3 has no directories: a directory is a key
/// prefix that has objects below it. Every write carries the configured content type, ACL,
/// encryption and storage-class headers. Cheap to clone; all methods may be called
/// concurrently.
///
/// Where S3 makes the behaviour differ from the generic contract:
/// * `stat("/")` is always a directory (after one listing that proves the bucket answers);
///   `stat` of anything else is HEAD, then a listing of `key/` — so `/ab/c` is never a
///   directory because `/ab/cd/x` exists. Only answers from S3 fall back to the listing;
///   network failures are returned.
/// * `walk` lists keys flat and visits entries in S3 key order (`/a-b/…` before `/a/…`);
///   walking a missing or empty directory returns `Ok(())` without calling the callback,
///   because S3 cannot tell an empty prefix from a missing one (see the `walk` module).
/// * Writers are multipart uploads of equal parts; a `close` keeps the bytes after the last
///   full part in a tail record under `<rootdirectory>.regstore~tails/`, a key no listing of
///   regstore reports (see the writer module).
/// * `redirect_url` answers presigned GET/HEAD URLs (SigV4 or SigV2 per configuration) and
///   `None` for other methods; `url_key` is the root-prefixed object key.
#[derive(Debug, Clone)]
pub struct S3Driver {
    pub(crate) inner: Arc<Inner>,
}

/// An incomplete multipart upload below a driver's root directory, as
/// [`S3Driver::list_incomplete_uploads`] reports it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteUpload {
    /// The storage path the upload will create when committed.
    pub path: StoragePath,
    /// The object key in the bucket (root directory included).
    pub key: String,
    /// S3's id of the upload.
    pub upload_id: String,
    /// When the upload was started (S3's `Initiated`); `None` when the server did not say or
    /// said it in a form that could not be read.
    pub initiated: Option<SystemTime>,
}

/// The ranges of one object, fetched through the driver's S3 API (for [`crate::reader`]).
struct ObjectSource {
    inner: Arc<Inner>,
    key: String,
    path: String,
}

impl RangeSource for ObjectSource {
    fn get(
        &self,
        start: u64,
        end: Option<u64>,
        if_match: Option<String>,
    ) -> BoxFuture<'static, std::result::Result<Option<GetAnswer>, S3Error>> {
        let inner = Arc::clone(&self.inner);
        let key = self.key.clone();
        let path = self.path.clone();
        Box::pin(async move {
            inner
                .api
                .get_range(&key, start, end, if_match.as_deref(), &path)
                .await
        })
    }
}

/// DeleteObjects requests of one `delete` in flight while the next page is listed.
const DELETE_BATCHES_IN_FLIGHT: usize = 4;

/// Whether S3 says the upload id is unknown (completed or aborted already).
fn is_no_such_upload(e: &S3Error) -> bool {
    e.code.as_deref() == Some("NoSuchUpload")
}

impl S3Driver {
    /// Connects to the bucket `config` names. Does not contact S3: a wrong endpoint or missing
    /// bucket shows on the first request.
    pub fn new(config: S3Config) -> Result<Self> {
        let keys = KeyMapper::new(&config.root_directory);
        let headers = WriteHeaders::from_config(&config);
        let tail_headers = WriteHeaders {
            storage_class: None,
            ..headers.clone()
        };
        let conn = S3Connection::new(config)?;
        Ok(S3Driver {
            inner: Arc::new(Inner {
                api: S3Api::new(conn),
                keys,
                headers,
                tail_headers,
            }),
        })
    }

    /// Counters of the HTTP requests this driver has sent, by S3 operation.
    pub fn request_stats(&self) -> Arc<RequestStats> {
        self.inner.api.stats()
    }

    /// The configuration the driver runs with.
    pub fn config(&self) -> &S3Config {
        self.inner.api.config()
    }

    /// Creates the bucket if it does not exist (an existing bucket of ours is fine). Meant for
    /// tests and first setup: a registry expects its bucket to exist and never calls this.
    pub async fn ensure_bucket(&self) -> Result<()> {
        self.inner
            .api
            .create_bucket()
            .await
            .map_err(|e| Error::backend(DRIVER, None, e))
    }

    /// Aborts every multipart upload under the root directory and returns how many. For test
    /// teardown and operators cleaning up after crashed writers; a running registry's open
    /// uploads would be lost. Unlike [`list_incomplete_uploads`](Self::list_incomplete_uploads)
    /// this also takes uploads whose keys do not spell a storage path, so nothing billed is
    /// left below the root. Uploads that vanish meanwhile (completed or aborted by someone
    /// else) are not counted and are no error. `regstore check` uses it to leave its scratch
    /// prefix empty.
    pub async fn abort_uploads_under_root(&self) -> Result<usize> {
        let api = &self.inner.api;
        let uploads = self
            .uploads_with_prefix(self.inner.keys.root(), None)
            .await?;
        let mut aborted = 0;
        for u in &uploads {
            match api.abort_multipart_upload(&u.key, &u.upload_id).await {
                Ok(()) => aborted += 1,
                Err(e) if is_no_such_upload(&e) => {}
                Err(e) => return Err(Error::backend(DRIVER, None, e)),
            }
        }
        self.delete_keys(&self.writer_tail_keys().await?).await?;
        Ok(aborted)
    }

    /// Deletes raw `keys` (not storage paths) in DeleteObjects batches of 1000; the first key
    /// S3 could not delete is the error.
    async fn delete_keys(&self, keys: &[String]) -> Result<()> {
        for batch in keys.chunks(1000) {
            let failures = self
                .inner
                .api
                .delete_objects(batch.to_vec())
                .await
                .map_err(|e| Error::backend(DRIVER, None, e))?;
            if let Some(f) = failures.first() {
                return Err(Error::backend(
                    DRIVER,
                    None,
                    format!("DeleteObjects: {}: {}: {}", f.key, f.code, f.message),
                ));
            }
        }
        Ok(())
    }

    /// One DeleteObjects of `keys` (at most 1000; `paths[i]` is the path of `keys[i]`) for
    /// [`StorageDriver::delete_many`]: the paths that may still exist, each with its error.
    async fn delete_batch(
        &self,
        keys: Vec<String>,
        paths: Vec<StoragePath>,
    ) -> Vec<(StoragePath, Error)> {
        let by_key: std::collections::HashMap<String, StoragePath> =
            keys.iter().cloned().zip(paths.iter().cloned()).collect();
        match self.inner.api.delete_objects(keys).await {
            Ok(failures) => {
                let mut out = Vec::with_capacity(failures.len());
                for f in failures {
                    let message = format!("DeleteObjects: {}: {}", f.code, f.message);
                    match by_key.get(&f.key) {
                        Some(p) => {
                            let e = Error::backend(DRIVER, Some(p.as_str()), message);
                            out.push((p.clone(), e));
                        }
                        // A failure the server did not tie to a key this request sent (no
                        // `<Key>`, or another spelling): any path of the batch may still
                        // exist, and a caller such as gc must not go on as if it did not.
                        None => {
                            return paths
                                .into_iter()
                                .map(|p| {
                                    let e = Error::backend(
                                        DRIVER,
                                        Some(p.as_str()),
                                        format!("{message} (for an unnamed key of this batch)"),
                                    );
                                    (p, e)
                                })
                                .collect();
                        }
                    }
                }
                out
            }
            // The request failed as a whole: each of its paths may still exist.
            Err(e) => {
                let msg = e.to_string();
                paths
                    .into_iter()
                    .map(|p| {
                        let e = Error::backend(DRIVER, Some(p.as_str()), msg.clone());
                        (p, e)
                    })
                    .collect()
            }
        }
    }

    /// The keys of every writer tail record under the root directory (see the writer module:
    /// a closed writer keeps the bytes after its last full part there). For tests and
    /// clean-up checks (through [`crate::test_support::S3DriverTestExt`]).
    pub(crate) async fn writer_tail_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .writer_tails()
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// Deletes the writer tail records whose upload no longer exists and that were written
    /// longer than `older_than` ago (`None`: any age), and returns how many. Such a record is
    /// left when a bucket lifecycle rule or another tool aborts an upload, or when a process
    /// dies between completing an upload and deleting its record; it is invisible to every
    /// listing and only costs its bytes (less than one part). `regstore uploads abort` of the
    /// whole root calls this.
    pub async fn delete_orphan_tail_records(
        &self,
        older_than: Option<std::time::Duration>,
    ) -> Result<usize> {
        let root = self.inner.keys.root().to_owned();
        // Records first, uploads second: an upload started between the two listings has no
        // record yet, so no live record can be taken for an orphan.
        let tails = self.writer_tails().await?;
        let live: std::collections::HashSet<String> = self
            .uploads_with_prefix(&root, None)
            .await?
            .iter()
            .map(|u| crate::tail::tail_key(&root, &u.key, &u.upload_id))
            .collect();
        let now = SystemTime::now();
        let orphans: Vec<String> = tails
            .into_iter()
            .filter(|(key, modified)| {
                !live.contains(key)
                    && older_than.is_none_or(|limit| {
                        modified.is_some_and(|m| now.duration_since(m).unwrap_or_default() >= limit)
                    })
            })
            .map(|(key, _)| key)
            .collect();
        self.delete_keys(&orphans).await?;
        Ok(orphans.len())
    }

    /// Every tail record under the root directory, with its modification time.
    async fn writer_tails(&self) -> Result<Vec<(String, Option<SystemTime>)>> {
        let prefix = crate::tail::tails_prefix(self.inner.keys.root());
        let mut keys = Vec::new();
        let first = ListRequest {
            prefix,
            max_keys: Some(1000),
            ..Default::default()
        };
        ObjectPages::new("list tail records", first)
            .for_each(&self.inner.api, |page| {
                keys.extend(page.objects.into_iter().map(|o| (o.key, o.last_modified)));
            })
            .await
            .map_err(|e| Error::backend(DRIVER, None, e))?;
        Ok(keys)
    }

    /// The incomplete multipart uploads at or below `under` (`/` for the whole root
    /// directory), in S3's order (by key, then by start time).
    ///
    /// An incomplete upload is a writer that was closed without commit (resumable with
    /// `append`), or one that was dropped, or whose process died, before commit or cancel. S3
    /// hides them from every object listing, never expires them on its own (unless the bucket
    /// has a lifecycle rule), and bills their parts until they are aborted. `/a/b` lists the
    /// upload of `/a/b` itself and those below `/a/b/`, never `/a/bc`. Uploads whose keys do
    /// not spell a valid storage path (foreign tools sharing the bucket) are not reported.
    /// Follows ListMultipartUploads pagination to the end.
    pub async fn list_incomplete_uploads(
        &self,
        under: &StoragePath,
    ) -> Result<Vec<IncompleteUpload>> {
        let keys = &self.inner.keys;
        let (prefix, exact) = if under.is_root() {
            (keys.root().to_owned(), None)
        } else {
            let key = keys.key(under);
            (key.clone(), Some(key))
        };
        let sub_prefix = exact.as_ref().map(|k| format!("{k}/"));
        let uploads = self
            .uploads_with_prefix(&prefix, Some(under.as_str()))
            .await?;
        Ok(uploads
            .into_iter()
            .filter(|u| match (&exact, &sub_prefix) {
                (Some(k), Some(sub)) => u.key == *k || u.key.starts_with(sub.as_str()),
                _ => true,
            })
            .filter_map(|u| {
                let path = keys.path(&u.key)?;
                // A key with a trailing `/` maps to a path but is not that path's object.
                (keys.key(&path) == u.key).then_some(IncompleteUpload {
                    path,
                    key: u.key,
                    upload_id: u.upload_id,
                    initiated: u.initiated,
                })
            })
            .collect())
    }

    /// Aborts one incomplete upload from [`list_incomplete_uploads`](Self::list_incomplete_uploads),
    /// deleting its parts and its tail record. Any writer still holding it fails on its next part or commit.
    ///
    /// Errors: `PathNotFound` naming the upload's path when S3 no longer knows the upload
    /// (completed or aborted meanwhile); `InvalidParameter` when `upload.key` is not the key
    /// of `upload.path` under this driver's root directory (the fields are public, and an
    /// upload from another driver must not reach into its bucket); `Backend` otherwise.
    pub async fn abort_incomplete_upload(&self, upload: &IncompleteUpload) -> Result<()> {
        if upload.path.is_root() || self.inner.keys.key(&upload.path) != upload.key {
            return Err(Error::invalid_parameter(
                DRIVER,
                "upload",
                format!(
                    "key {:?} is not the key of {} under this driver's root directory",
                    upload.key, upload.path
                ),
            ));
        }
        let aborted = match self
            .inner
            .api
            .abort_multipart_upload(&upload.key, &upload.upload_id)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_no_such_upload(&e) => Err(Error::not_found(DRIVER, upload.path.as_str())),
            Err(e) => Err(e.into_backend(&upload.path)),
        };
        // The upload's tail record (if it has one) goes with it, also when S3 had already
        // forgotten the upload (a lifecycle rule aborted it).
        let tail = crate::tail::tail_key(self.inner.keys.root(), &upload.key, &upload.upload_id);
        self.inner
            .api
            .delete_object(&tail)
            .await
            .map_err(|e| e.into_backend(&upload.path))?;
        aborted
    }

    /// Every upload whose key starts with `prefix`, all pages; errors name `path`.
    async fn uploads_with_prefix(
        &self,
        prefix: &str,
        path: Option<&str>,
    ) -> Result<Vec<UploadInfo>> {
        all_uploads(&self.inner.api, prefix, "list uploads")
            .await
            .map_err(|e| Error::backend(DRIVER, path, e))
    }

    /// Stat by listing `key/` (one key at most): a directory if anything is below it.
    async fn stat_by_list(&self, path: &StoragePath) -> Result<FileInfo> {
        let page = self
            .inner
            .api
            .list_objects_v2(ListRequest {
                prefix: self.inner.keys.dir_prefix(path),
                max_keys: Some(1),
                ..Default::default()
            })
            .await
            .map_err(|e| e.into_backend(path))?;
        if page.objects.is_empty() && page.common_prefixes.is_empty() {
            Err(Error::not_found(DRIVER, path.as_str()))
        } else {
            Ok(FileInfo::dir(path.clone()))
        }
    }

    /// Multipart copy of an object of `size` bytes: parts of `multipart_copy_chunk_size`,
    /// at most `multipart_copy_max_concurrency` in flight. Any failure aborts the upload so
    /// no parts are left behind.
    async fn multipart_copy(
        &self,
        src_key: &str,
        dst_key: &str,
        size: u64,
        dst: &str,
    ) -> Result<()> {
        let api = &self.inner.api;
        let cfg = api.config();
        let chunk = cfg.multipart_copy_chunk_size.max(1);
        let concurrency = cfg.multipart_copy_max_concurrency.max(1);
        let upload_id = api
            .create_multipart_upload(dst_key, &self.inner.headers)
            .await
            .map_err(|e| e.into_backend(dst))?;
        let count = size.div_ceil(chunk);
        let result: std::result::Result<Vec<_>, S3Error> = stream::iter(0..count)
            .map(|i| {
                let start = i * chunk;
                let end = ((i + 1) * chunk).min(size) - 1;
                let upload_id = upload_id.as_str();
                async move {
                    api.upload_part_copy(
                        dst_key,
                        upload_id,
                        i as i64 + 1,
                        src_key,
                        Some((start, end)),
                        end - start + 1,
                    )
                    .await
                }
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await;
        let outcome = match result {
            Ok(parts) => {
                api.complete_multipart_upload(dst_key, &upload_id, &parts)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            let mut errors = vec![e.into_backend(dst)];
            if let Err(abort) = api.abort_multipart_upload(dst_key, &upload_id).await {
                errors.push(abort.into_backend(dst));
            }
            return Err(if errors.len() == 1 {
                errors.remove(0)
            } else {
                Error::Multiple {
                    driver: DRIVER.to_owned(),
                    errors,
                }
            });
        }
        Ok(())
    }
}

#[async_trait]
impl StorageDriver for S3Driver {
    fn name(&self) -> &str {
        DRIVER
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        let key = self.inner.keys.key(path);
        match self
            .inner
            .api
            .get_object(&key, path)
            .await
            .map_err(|e| e.into_error(path))?
        {
            Some((len, stream)) => collect(len, stream, path).await,
            None => Ok(Bytes::new()),
        }
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        let key = self.inner.keys.key(path);
        self.inner
            .api
            .put_object(&key, content, &self.inner.headers)
            .await
            .map_err(|e| e.into_error(path))
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        let cfg = self.inner.api.config();
        let plan = ReadPlan {
            concurrency: cfg.read_concurrency,
            part_size: cfg.read_chunk_size,
        };
        let source = Arc::new(ObjectSource {
            inner: Arc::clone(&self.inner),
            key: self.inner.keys.key(path),
            path: path.to_string(),
        });
        crate::reader::open(source, path.as_str(), offset, plan).await
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        let w = if append {
            S3Writer::resume(Arc::clone(&self.inner), path.clone()).await?
        } else {
            S3Writer::create(Arc::clone(&self.inner), path.clone()).await?
        };
        Ok(Box::new(w))
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        if path.is_root() {
            // The root always exists; one listing checks that the bucket answers.
            self.inner
                .api
                .list_objects_v2(ListRequest {
                    prefix: self.inner.keys.dir_prefix(path),
                    max_keys: Some(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.into_backend(path))?;
            return Ok(FileInfo::dir(path.clone()));
        }
        let key = self.inner.keys.key(path);
        match self.inner.api.head_object(&key).await {
            Ok(head) => Ok(FileInfo::file(path.clone(), head.size, head.last_modified)),
            // Any answer from S3 (404 for a prefix, 403 where HEAD is denied but List is
            // allowed) falls back to a listing; a network failure is returned as is.
            Err(e) if e.is_api() => self.stat_by_list(path).await,
            Err(e) => Err(e.into_backend(path)),
        }
    }

    async fn list(&self, path: &StoragePath) -> Result<Vec<StoragePath>> {
        let prefix = self.inner.keys.dir_prefix(path);
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        let first = ListRequest {
            prefix: prefix.clone(),
            delimiter: Some("/".to_owned()),
            max_keys: Some(1000),
            ..Default::default()
        };
        ObjectPages::new("list", first)
            .for_each(&self.inner.api, |page| {
                // A folder marker `dir/` equals the prefix itself and is not a child; keys that
                // do not spell valid paths (foreign objects) are not reported.
                files.extend(
                    page.objects
                        .iter()
                        .filter(|o| o.key != prefix && !o.key.ends_with('/'))
                        .filter_map(|o| self.inner.keys.path(&o.key)),
                );
                dirs.extend(
                    page.common_prefixes
                        .iter()
                        .filter_map(|p| self.inner.keys.path(p)),
                );
            })
            .await
            .map_err(|e| e.into_backend(path))?;
        if files.is_empty() && dirs.is_empty() && !path.is_root() {
            return Err(Error::not_found(DRIVER, path.as_str()));
        }
        files.extend(dirs);
        Ok(files)
    }

    async fn move_object(&self, src: &StoragePath, dst: &StoragePath) -> Result<()> {
        let api = &self.inner.api;
        let src_key = self.inner.keys.key(src);
        let dst_key = self.inner.keys.key(dst);
        // HEAD first: a missing source must leave the destination untouched.
        let head = api
            .head_object(&src_key)
            .await
            .map_err(|e| e.into_error(src))?;
        if head.size <= api.config().multipart_copy_threshold_size {
            api.copy_object(&src_key, &dst_key, &self.inner.headers)
                .await
                .map_err(|e| e.into_error(src))?;
        } else {
            self.multipart_copy(&src_key, &dst_key, head.size, dst)
                .await?;
        }
        self.delete(src).await
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let api = &self.inner.api;
        let key = self.inner.keys.key(path);
        let sub_prefix = format!("{key}/");
        let mut pages = ObjectPages::new(
            "delete",
            ListRequest {
                prefix: key.clone(),
                max_keys: Some(1000),
                ..Default::default()
            },
        );
        let mut request = pages.first();
        let mut found = false;
        let mut failures: Vec<DeleteFailure> = Vec::new();
        let mut failed: Option<S3Error> = None;
        // Pipelined: the next page is listed while up to DELETE_BATCHES_IN_FLIGHT batches
        // of earlier pages are being deleted. The same requests as listing and deleting in
        // turn (⌈N/1000⌉ of each); only their overlap changes. Nothing here is spawned, so
        // dropping the future stops every request.
        let mut in_flight = FuturesUnordered::new();
        let settle = |done: std::result::Result<Vec<DeleteFailure>, S3Error>,
                      failures: &mut Vec<DeleteFailure>,
                      failed: &mut Option<S3Error>| match done {
            Ok(f) => failures.extend(f),
            Err(e) => {
                failed.get_or_insert(e);
            }
        };
        let listed: std::result::Result<(), S3Error> = loop {
            let list = api.list_objects_v2(request.clone());
            tokio::pin!(list);
            let page = loop {
                tokio::select! {
                    page = &mut list => break page,
                    Some(done) = in_flight.next() => settle(done, &mut failures, &mut failed),
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => break Err(e),
            };
            // Only the object itself and true subpaths: `/a` never takes `/ab` or `/a-b/…`.
            let batch: Vec<String> = page
                .objects
                .into_iter()
                .map(|o| o.key)
                .filter(|k| *k == key || k.starts_with(&sub_prefix))
                .collect();
            if !batch.is_empty() {
                found = true;
                while in_flight.len() >= DELETE_BATCHES_IN_FLIGHT {
                    if let Some(done) = in_flight.next().await {
                        settle(done, &mut failures, &mut failed);
                    }
                }
                in_flight.push(api.delete_objects(batch));
            }
            match page.next_token {
                Some(t) if failed.is_none() => match pages.after(Some(t)) {
                    Ok(Some(next)) => request = next,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                },
                _ => break Ok(()),
            }
        };
        // Let every batch already sent finish before reporting, so the outcome is settled.
        while let Some(done) = in_flight.next().await {
            settle(done, &mut failures, &mut failed);
        }
        listed.map_err(|e| e.into_backend(path))?;
        if let Some(e) = failed {
            return Err(e.into_backend(path));
        }
        if !failures.is_empty() {
            let errors = failures
                .into_iter()
                .map(|f| {
                    let p = self
                        .inner
                        .keys
                        .path(&f.key)
                        .map(|p| p.to_string())
                        .unwrap_or(f.key);
                    Error::backend(
                        DRIVER,
                        Some(&p),
                        format!("DeleteObjects: {}: {}", f.code, f.message),
                    )
                })
                .collect();
            return Err(Error::Multiple {
                driver: DRIVER.to_owned(),
                errors,
            });
        }
        if !found {
            return Err(Error::not_found(DRIVER, path.as_str()));
        }
        Ok(())
    }

    /// DeleteObjects (quiet) of up to 1000 keys per request, 4 batches at
    /// once, no listing: S3 answers success for a missing key, and a "directory" has no key of
    /// its own, so both delete nothing, as the contract asks. A request that fails as a whole
    /// fails each of its paths (with the same message); per-key failures name their path.
    async fn delete_many(&self, paths: &[StoragePath]) -> Vec<(StoragePath, Error)> {
        let batches: Vec<(Vec<String>, Vec<StoragePath>)> = paths
            .chunks(1000)
            .map(|c| {
                (
                    c.iter().map(|p| self.inner.keys.key(p)).collect(),
                    c.to_vec(),
                )
            })
            .collect();
        stream::iter(batches)
            .map(|(keys, paths)| self.delete_batch(keys, paths))
            .buffer_unordered(DELETE_BATCHES_IN_FLIGHT)
            .flat_map(stream::iter)
            .collect()
            .await
    }

    async fn redirect_url(
        &self,
        request: &RedirectRequest,
        path: &StoragePath,
    ) -> Result<Option<url::Url>> {
        let method = match request.method {
            RedirectMethod::Get => PresignMethod::Get,
            RedirectMethod::Head => PresignMethod::Head,
            RedirectMethod::Other => return Ok(None),
        };
        let key = self.inner.keys.key(path);
        self.inner
            .api
            .connection()
            .presign(method, &key)
            .await
            .map(Some)
    }

    async fn walk(
        &self,
        from: &StoragePath,
        options: &WalkOptions,
        f: &mut WalkFn<'_>,
    ) -> Result<()> {
        if self.inner.api.config().use_delimiter_walk {
            crate::walk_delimited::walk(&self.inner, from, options, f).await
        } else {
            crate::walk::walk(&self.inner, from, options, f).await
        }
    }

    fn url_key(&self, path: &StoragePath) -> String {
        self.inner.keys.key(path)
    }
}
