//! The CloudFront middleware as a driver: registry chains, forwarding, the URL it signs.

mod common;

use std::sync::Arc;

use common::*;
use regstore_driver_api::{
    Error, MiddlewareConfig, Parameters, RedirectMethod, RedirectRequest, Registry, StorageDriver,
    StoragePath,
};
use regstore_driver_inmemory::{InMemoryDriver, InMemoryFactory};
use regstore_middleware_cloudfront::CloudFrontMiddleware;
use ring::signature::RSA_PKCS1_2048_8192_SHA256;

fn entry(name: &str, options: Parameters) -> MiddlewareConfig {
    MiddlewareConfig {
        name: name.into(),
        options,
        disabled: false,
    }
}

#[tokio::test]
async fn registry_builds_chains_in_order() {
    let mut registry = Registry::new().with("inmemory", Arc::new(InMemoryFactory));
    regstore_middleware_cloudfront::register(&mut registry);
    // redirect (innermost) → rewrite → outermost: the rewrite edits the redirect's URL.
    let chain = [
        entry(
            "redirect",
            Parameters::new().with("baseurl", "http://origin.example/base"),
        ),
        entry(
            "rewrite",
            Parameters::new()
                .with("scheme", "https")
                .with("host", "cdn.example.com")
                .with("trimpathprefix", "/base"),
        ),
        MiddlewareConfig {
            name: "not-registered".into(),
            options: Parameters::new(),
            disabled: true,
        },
    ];
    let d = registry
        .create_with_middlewares("inmemory", &Parameters::new(), &chain)
        .await
        .unwrap();
    assert_eq!(d.name(), "inmemory");
    let url = d
        .redirect_url(&RedirectRequest::get(), "/docker/x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(url.as_str(), "https://cdn.example.com/docker/x");
    // Operations go through to the backend.
    d.put_content("/docker/x", &b"hello"[..]).await.unwrap();
    assert_eq!(&d.get_content("/docker/x").await.unwrap()[..], b"hello");
    let e = d.get_content("/docker/missing").await.unwrap_err();
    assert!(
        matches!(&e, Error::PathNotFound { driver, .. } if driver == "inmemory"),
        "{e}"
    );

    let bad = [entry("redirect", Parameters::new())];
    let e = registry
        .create_with_middlewares("inmemory", &Parameters::new(), &bad)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no baseurl provided"), "{e}");
    let unknown = [entry("nope", Parameters::new())];
    assert!(registry
        .create_with_middlewares("inmemory", &Parameters::new(), &unknown)
        .await
        .is_err());
}

/// A backend whose keys live under a root directory, like S3 with `rootdirectory`.
#[derive(Debug)]
struct Rooted(InMemoryDriver);

#[regstore_driver_api::async_trait]
impl StorageDriver for Rooted {
    fn name(&self) -> &str {
        "rooted"
    }
    async fn get_content(&self, p: &StoragePath) -> regstore_driver_api::Result<bytes::Bytes> {
        self.0.get_content(p).await
    }
    async fn put_content(
        &self,
        p: &StoragePath,
        c: bytes::Bytes,
    ) -> regstore_driver_api::Result<()> {
        self.0.put_content(p, c).await
    }
    async fn reader(
        &self,
        p: &StoragePath,
        o: u64,
    ) -> regstore_driver_api::Result<regstore_driver_api::ByteStream> {
        self.0.reader(p, o).await
    }
    async fn writer(
        &self,
        p: &StoragePath,
        a: bool,
    ) -> regstore_driver_api::Result<Box<dyn regstore_driver_api::FileWriter>> {
        self.0.writer(p, a).await
    }
    async fn stat(
        &self,
        p: &StoragePath,
    ) -> regstore_driver_api::Result<regstore_driver_api::FileInfo> {
        self.0.stat(p).await
    }
    async fn list(&self, p: &StoragePath) -> regstore_driver_api::Result<Vec<StoragePath>> {
        self.0.list(p).await
    }
    async fn move_object(
        &self,
        s: &StoragePath,
        d: &StoragePath,
    ) -> regstore_driver_api::Result<()> {
        self.0.move_object(s, d).await
    }
    async fn delete(&self, p: &StoragePath) -> regstore_driver_api::Result<()> {
        self.0.delete(p).await
    }
    fn url_key(&self, path: &StoragePath) -> String {
        format!("registry-root/{}", path.as_str().trim_start_matches('/'))
    }
}

#[tokio::test]
async fn signed_url_uses_the_backends_key_and_base_path() {
    let (_d, key) = key_file("rsa2048-pkcs8.pem");
    let mw = CloudFrontMiddleware::from_parameters(
        Arc::new(Rooted(InMemoryDriver::new())),
        &Parameters::new()
            .with("baseurl", "cdn.example.com/edge")
            .with("privatekey", key.as_str())
            .with("keypairid", "KID")
            .with("hashalgorithm", "sha256")
            .with("duration", "1h"),
    )
    .await
    .unwrap();
    assert_eq!(mw.name(), "rooted");
    let path = StoragePath::parse("/docker/registry/v2/blobs/sha256/ab/abc/data").unwrap();
    assert_eq!(
        mw.url_key(&path),
        "registry-root/docker/registry/v2/blobs/sha256/ab/abc/data",
        "url_key is forwarded"
    );
    let url = mw
        .redirect_url(&RedirectRequest::head(), &path)
        .await
        .unwrap()
        .unwrap()
        .to_string();
    let resource =
        "https://cdn.example.com/edge/registry-root/docker/registry/v2/blobs/sha256/ab/abc/data";
    let expires: u64 = param(&url, "Expires").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 3590..=now + 3605).contains(&expires));
    assert_eq!(
        url,
        format!(
            "{resource}?Expires={expires}&Signature={}&Key-Pair-Id=KID&Hash-Algorithm=SHA256",
            param(&url, "Signature")
        )
    );
    assert!(verify(
        &RSA_PKCS1_2048_8192_SHA256,
        &data("rsa2048-public-pkcs1.der"),
        regstore_middleware_cloudfront::sign::canned_policy_json(resource, expires).as_bytes(),
        &param(&url, "Signature")
    ));
    // Methods other than GET/HEAD get no redirect.
    let other = RedirectRequest::new(RedirectMethod::Other);
    assert_eq!(mw.redirect_url(&other, &path).await.unwrap(), None);
}

#[tokio::test]
async fn fake_edge_rejects_tampered_urls() {
    // The stand-in edge used by the conformance test must itself refuse bad signatures, or
    // its passing would prove nothing.
    let (_d, key) = key_file("rsa2048-pkcs1.pem");
    let backend: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
    let path = StoragePath::parse("/a/b").unwrap();
    backend.put_content(&path, "bytes".into()).await.unwrap();
    let edge = FakeCloudFront::start(backend.clone(), "KID", "").await;
    let mw = CloudFrontMiddleware::from_parameters(
        backend,
        &Parameters::new()
            .with("baseurl", edge.base_url.as_str())
            .with("privatekey", key.as_str())
            .with("keypairid", "KID"),
    )
    .await
    .unwrap();
    let url = mw
        .redirect_url(&RedirectRequest::get(), &path)
        .await
        .unwrap()
        .unwrap()
        .to_string();
    assert_eq!(http_get(&url).await, (200, b"bytes".to_vec()));
    let other_path = url.replace("/a/b?", "/a/c?");
    assert_eq!(http_get(&other_path).await.0, 403);
    let expires = param(&url, "Expires");
    let later = url.replace(
        &format!("Expires={expires}"),
        &format!("Expires={}", expires.parse::<u64>().unwrap() + 1),
    );
    assert_eq!(http_get(&later).await.0, 403);
    assert_eq!(
        http_get(&url.replace("Key-Pair-Id=KID", "Key-Pair-Id=KOTHER"))
            .await
            .0,
        403
    );
    assert_eq!(edge.served.load(std::sync::atomic::Ordering::SeqCst), 1);
}
