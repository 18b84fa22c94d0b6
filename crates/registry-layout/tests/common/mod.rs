//! Builds registry trees the way distribution writes them, on the in-memory backend; wraps a
//! backend in test hooks ([`Hooked`]).
#![allow(dead_code)]

use std::sync::Arc;

use regstore_driver_api::{
    async_trait, ByteStream, Bytes, Driver, Error, FileInfo, FileWriter, Result, StorageDriver,
    StoragePath, WalkFn, WalkOptions,
};
use regstore_registry_layout::{Digest, Layout};

pub struct Reg {
    pub driver: Driver,
    pub layout: Layout,
    n: u32,
}

impl Reg {
    pub fn new() -> Self {
        Self::on(Arc::new(regstore_driver_inmemory::InMemoryDriver::new()))
    }

    /// A registry tree on `inner` (tests that wrap the backend keep a handle to it).
    pub fn on(inner: Arc<dyn regstore_driver_api::StorageDriver>) -> Self {
        Reg {
            driver: Driver::new(inner),
            layout: Layout::default(),
            n: 0,
        }
    }

    pub async fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.driver.put_content(path, bytes.into()).await.unwrap();
    }

    /// Stores a blob (no link).
    pub async fn blob(&self, bytes: &[u8]) -> Digest {
        let d = Digest::sha256_of(bytes);
        self.put(&self.layout.blob_data(&d), bytes.to_vec()).await;
        d
    }

    /// A fresh unique blob linked into `repo`, as a layer upload does.
    pub async fn layer(&mut self, repo: &str) -> Digest {
        self.n += 1;
        let d = self.blob(format!("layer-{}", self.n).as_bytes()).await;
        self.link_layer(repo, &d).await;
        d
    }

    pub async fn link_layer(&self, repo: &str, d: &Digest) {
        self.put(&self.layout.layer_link(repo, d), d.to_string())
            .await;
    }

    /// Pushes an image manifest (config + given layers) by digest; returns (manifest, config).
    pub async fn image(&mut self, repo: &str, layers: &[Digest]) -> (Digest, Digest) {
        self.n += 1;
        let config = self
            .blob(format!("{{\"config\":{}}}", self.n).as_bytes())
            .await;
        self.link_layer(repo, &config).await;
        for l in layers {
            self.link_layer(repo, l).await;
        }
        let desc =
            |mt: &str, d: &Digest| format!(r#"{{"mediaType":"{mt}","size":1,"digest":"{d}"}}"#);
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
            desc("application/vnd.oci.image.config.v1+json", &config),
            layers
                .iter()
                .map(|l| desc("application/vnd.oci.image.layer.v1.tar+gzip", l))
                .collect::<Vec<_>>()
                .join(",")
        );
        let m = self.manifest(repo, body.as_bytes()).await;
        (m, config)
    }

    /// Stores manifest bytes as a revision of `repo`.
    pub async fn manifest(&self, repo: &str, body: &[u8]) -> Digest {
        let d = self.blob(body).await;
        self.put(&self.layout.revision_link(repo, &d), d.to_string())
            .await;
        d
    }

    /// Pushes an index over `children` (already revisions of `repo`).
    pub async fn index(&self, repo: &str, children: &[Digest], docker: bool) -> Digest {
        let (mt, child_mt) = if docker {
            (
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
        } else {
            (
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
            )
        };
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","manifests":[{}]}}"#,
            children
                .iter()
                .map(|c| format!(
                    r#"{{"mediaType":"{child_mt}","size":1,"digest":"{c}","platform":{{"architecture":"amd64","os":"linux"}}}}"#
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        self.manifest(repo, body.as_bytes()).await
    }

    pub async fn tag(&self, repo: &str, tag: &str, d: &Digest) {
        self.put(&self.layout.tag_current_link(repo, tag), d.to_string())
            .await;
        self.put(
            &format!("{}/link", self.layout.tag_index_entry(repo, tag, d)),
            d.to_string(),
        )
        .await;
    }

    /// What the registry API's DELETE by digest does: the revision link, and every tag
    /// currently pointing at it.
    pub async fn api_delete(&self, repo: &str, d: &Digest) {
        self.driver
            .delete(&self.layout.revision_link(repo, d))
            .await
            .unwrap();
        let tags = self.layout.tags(repo);
        if let Ok(list) = self.driver.list(&tags).await {
            for t in list {
                let cur = format!("{t}/current/link");
                if let Ok(b) = self.driver.get_content(&cur).await {
                    if b.as_ref() == d.to_string().as_bytes() {
                        self.driver.delete(t.as_str()).await.unwrap();
                    }
                }
            }
        }
    }

    pub async fn exists(&self, path: &str) -> bool {
        self.driver.stat(path).await.is_ok()
    }

    pub async fn blob_exists(&self, d: &Digest) -> bool {
        self.exists(&self.layout.blob_data(d)).await
    }
}

/// An S3 driver on the `REGSTORE_S3_*` server, on a fresh root directory named after `prefix`,
/// its bucket created; `None` (after `unavailable` said why) without a server.
pub async fn s3_driver(prefix: &str) -> Option<regstore_driver_s3::S3Driver> {
    let env = regstore_test_support::s3_env()?;
    let root = format!("/{}", regstore_test_support::unique(prefix));
    let config = regstore_driver_s3::S3Config::from_parameters(&env.params(&root))
        .unwrap_or_else(|e| panic!("S3 test configuration: {e}"));
    let s3 =
        regstore_driver_s3::S3Driver::new(config).unwrap_or_else(|e| panic!("S3 test driver: {e}"));
    s3.ensure_bucket().await.expect("create bucket");
    Some(s3)
}

/// What a test wrapper changes about a backend, for [`Hooked`]; every hook defaults to
/// passing through untouched.
pub trait Hooks: Send + Sync + std::fmt::Debug + 'static {
    /// Before each `list`: an error here is the answer instead of the listing.
    fn on_list(&self, _path: &StoragePath) -> Result<()> {
        Ok(())
    }
    /// Before each `walk`.
    fn on_walk(&self, _from: &StoragePath) {}
    /// Before each `delete`: an error here is the answer and nothing is deleted.
    fn on_delete(&self, _path: &StoragePath) -> Result<()> {
        Ok(())
    }
    /// Before each `delete_many`: `Some(refused)` sends the other paths to the backend's own
    /// `delete_many` and answers each refused path with an error (not deleted); `None` (the
    /// default) deletes path by path through the wrapper's `delete`, so `on_delete` sees each.
    fn on_delete_many(&self, _paths: &[StoragePath]) -> Option<Vec<StoragePath>> {
        None
    }
}

/// A backend wrapped by test [`Hooks`]; everything the hooks do not intercept goes to `inner`.
#[derive(Debug)]
pub struct Hooked<H> {
    pub inner: Arc<dyn StorageDriver>,
    pub hooks: H,
}

impl<H: Hooks> Hooked<H> {
    /// `hooks` around `inner`, and a [`Driver`] handle on the wrapper.
    pub fn wrap(inner: Arc<dyn StorageDriver>, hooks: H) -> (Arc<Self>, Driver) {
        let hooked = Arc::new(Hooked { inner, hooks });
        let driver = Driver::new(Arc::clone(&hooked) as Arc<dyn StorageDriver>);
        (hooked, driver)
    }
}

#[async_trait]
impl<H: Hooks> StorageDriver for Hooked<H> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn get_content(&self, p: &StoragePath) -> Result<Bytes> {
        self.inner.get_content(p).await
    }
    async fn put_content(&self, p: &StoragePath, c: Bytes) -> Result<()> {
        self.inner.put_content(p, c).await
    }
    async fn reader(&self, p: &StoragePath, o: u64) -> Result<ByteStream> {
        self.inner.reader(p, o).await
    }
    async fn writer(&self, p: &StoragePath, a: bool) -> Result<Box<dyn FileWriter>> {
        self.inner.writer(p, a).await
    }
    async fn stat(&self, p: &StoragePath) -> Result<FileInfo> {
        self.inner.stat(p).await
    }
    async fn list(&self, p: &StoragePath) -> Result<Vec<StoragePath>> {
        self.hooks.on_list(p)?;
        self.inner.list(p).await
    }
    async fn move_object(&self, s: &StoragePath, d: &StoragePath) -> Result<()> {
        self.inner.move_object(s, d).await
    }
    async fn delete(&self, p: &StoragePath) -> Result<()> {
        self.hooks.on_delete(p)?;
        self.inner.delete(p).await
    }
    async fn delete_many(&self, ps: &[StoragePath]) -> Vec<(StoragePath, Error)> {
        let Some(refused) = self.hooks.on_delete_many(ps) else {
            return regstore_driver_api::delete_each(self, ps).await;
        };
        let good: Vec<StoragePath> = ps
            .iter()
            .filter(|p| !refused.contains(p))
            .cloned()
            .collect();
        let mut out = self.inner.delete_many(&good).await;
        out.extend(refused.into_iter().map(|p| {
            let e = Error::backend("hooked", Some(p.as_str()), "refused");
            (p, e)
        }));
        out
    }
    async fn walk(&self, f: &StoragePath, o: &WalkOptions, cb: &mut WalkFn<'_>) -> Result<()> {
        self.hooks.on_walk(f);
        self.inner.walk(f, o, cb).await
    }
}
