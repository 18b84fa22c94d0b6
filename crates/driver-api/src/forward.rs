//! [`forward_storage_driver!`](crate::forward_storage_driver): the forwarding half of a storage
//! middleware.
//!
//! A middleware (distribution's "storage middleware") wraps any driver and changes what one
//! operation answers — in practice [`StorageDriver::redirect_url`](crate::StorageDriver::redirect_url):
//! CloudFront, redirect and rewrite all do only that. Everything else must reach the wrapped
//! driver unchanged, errors included (they keep naming the wrapped driver), and writing those
//! ten methods by hand for every middleware invites one to be forgotten or altered. The macro
//! writes them.
//!
//! A macro rather than a blanket `impl<T: Middleware> StorageDriver for T`: with a blanket impl
//! every middleware type would carry two traits with the same method names, so calling
//! `mw.redirect_url(…)` on it would be ambiguous wherever both are in scope.

/// Implements [`StorageDriver`](crate::StorageDriver) for a middleware type by forwarding every
/// method to the `Arc<dyn StorageDriver>` (or any `StorageDriver`) in one of its fields.
///
/// * `forward_storage_driver!(Type, field);` forwards everything, `redirect_url` included.
/// * `forward_storage_driver!(Type, field, async fn redirect_url(…) -> … { … });` forwards
///   everything except `redirect_url`, which is the function given (its signature is the
///   trait's). `name` and `url_key` are forwarded, so errors and CDN keys stay the wrapped
///   driver's.
///
/// A middleware that changes other operations too implements the trait by hand.
///
/// # Example: a third-party middleware
///
/// Redirects `GET`s to a mirror that serves the same paths; everything else goes to the
/// wrapped driver:
///
/// ```
/// use std::sync::Arc;
///
/// use regstore_driver_api::{
///     forward_storage_driver, Driver, RedirectMethod, RedirectRequest, Result, StorageDriver,
///     StoragePath, Url,
/// };
///
/// #[derive(Debug)]
/// struct Mirror {
///     inner: Arc<dyn StorageDriver>,
///     base: Url,
/// }
///
/// forward_storage_driver!(
///     Mirror,
///     inner,
///     async fn redirect_url(
///         &self,
///         request: &RedirectRequest,
///         path: &StoragePath,
///     ) -> Result<Option<Url>> {
///         if request.method != RedirectMethod::Get {
///             return self.inner.redirect_url(request, path).await;
///         }
///         Ok(self.base.join(path.as_str().trim_start_matches('/')).ok())
///     }
/// );
/// # #[derive(Debug)]
/// # struct Backend;
/// # #[regstore_driver_api::async_trait]
/// # impl StorageDriver for Backend {
/// #     fn name(&self) -> &str { "backend" }
/// #     async fn get_content(&self, p: &StoragePath) -> Result<regstore_driver_api::Bytes> {
/// #         Err(regstore_driver_api::Error::not_found("backend", p.as_str()))
/// #     }
/// #     async fn put_content(&self, _: &StoragePath, _: regstore_driver_api::Bytes) -> Result<()> { Ok(()) }
/// #     async fn reader(&self, p: &StoragePath, _: u64) -> Result<regstore_driver_api::ByteStream> {
/// #         Err(regstore_driver_api::Error::not_found("backend", p.as_str()))
/// #     }
/// #     async fn writer(&self, _: &StoragePath, _: bool) -> Result<Box<dyn regstore_driver_api::FileWriter>> {
/// #         Err(regstore_driver_api::Error::unsupported("backend", "writer"))
/// #     }
/// #     async fn stat(&self, p: &StoragePath) -> Result<regstore_driver_api::FileInfo> {
/// #         Err(regstore_driver_api::Error::not_found("backend", p.as_str()))
/// #     }
/// #     async fn list(&self, _: &StoragePath) -> Result<Vec<StoragePath>> { Ok(Vec::new()) }
/// #     async fn move_object(&self, s: &StoragePath, _: &StoragePath) -> Result<()> {
/// #         Err(regstore_driver_api::Error::not_found("backend", s.as_str()))
/// #     }
/// #     async fn delete(&self, p: &StoragePath) -> Result<()> {
/// #         Err(regstore_driver_api::Error::not_found("backend", p.as_str()))
/// #     }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let backend: Arc<dyn StorageDriver> = Arc::new(Backend);
/// let mirror = Driver::new(Arc::new(Mirror {
///     inner: backend,
///     base: Url::parse("https://mirror.example/registry/").unwrap(),
/// }));
/// let path = "/docker/registry/v2/blobs/data";
/// let url = mirror.redirect_url(&RedirectRequest::get(), path).await?;
/// assert_eq!(
///     url.unwrap().as_str(),
///     "https://mirror.example/registry/docker/registry/v2/blobs/data"
/// );
/// // Everything else is the backend's, and its errors name it.
/// let e = mirror.stat(path).await.unwrap_err();
/// assert!(e.is_not_found() && e.driver() == Some("backend"));
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! forward_storage_driver {
    ($ty:ty, $field:ident $(,)?) => {
        $crate::forward_storage_driver!(
            $ty,
            $field,
            async fn redirect_url(
                &self,
                request: &$crate::RedirectRequest,
                path: &$crate::StoragePath,
            ) -> $crate::Result<::core::option::Option<$crate::Url>> {
                self.$field.redirect_url(request, path).await
            }
        );
    };
    ($ty:ty, $field:ident, $($redirect_url:tt)+) => {
        #[$crate::async_trait]
        impl $crate::StorageDriver for $ty {
            fn name(&self) -> &str {
                self.$field.name()
            }

            async fn get_content(
                &self,
                path: &$crate::StoragePath,
            ) -> $crate::Result<$crate::Bytes> {
                self.$field.get_content(path).await
            }

            async fn put_content(
                &self,
                path: &$crate::StoragePath,
                content: $crate::Bytes,
            ) -> $crate::Result<()> {
                self.$field.put_content(path, content).await
            }

            async fn reader(
                &self,
                path: &$crate::StoragePath,
                offset: u64,
            ) -> $crate::Result<$crate::ByteStream> {
                self.$field.reader(path, offset).await
            }

            async fn writer(
                &self,
                path: &$crate::StoragePath,
                append: bool,
            ) -> $crate::Result<::std::boxed::Box<dyn $crate::FileWriter>> {
                self.$field.writer(path, append).await
            }

            async fn stat(&self, path: &$crate::StoragePath) -> $crate::Result<$crate::FileInfo> {
                self.$field.stat(path).await
            }

            async fn list(
                &self,
                path: &$crate::StoragePath,
            ) -> $crate::Result<::std::vec::Vec<$crate::StoragePath>> {
                self.$field.list(path).await
            }

            async fn move_object(
                &self,
                src: &$crate::StoragePath,
                dst: &$crate::StoragePath,
            ) -> $crate::Result<()> {
                self.$field.move_object(src, dst).await
            }

            async fn delete(&self, path: &$crate::StoragePath) -> $crate::Result<()> {
                self.$field.delete(path).await
            }

            async fn delete_many(
                &self,
                paths: &[$crate::StoragePath],
            ) -> ::std::vec::Vec<($crate::StoragePath, $crate::Error)> {
                self.$field.delete_many(paths).await
            }

            async fn walk(
                &self,
                from: &$crate::StoragePath,
                options: &$crate::WalkOptions,
                f: &mut $crate::WalkFn<'_>,
            ) -> $crate::Result<()> {
                self.$field.walk(from, options, f).await
            }

            fn url_key(&self, path: &$crate::StoragePath) -> ::std::string::String {
                self.$field.url_key(path)
            }

            $($redirect_url)+
        }
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use crate::{
        async_trait, ByteStream, Bytes, Error, FileInfo, FileWriter, RedirectRequest, Result,
        StorageDriver, StoragePath, Url, WalkControl, WalkFn, WalkOptions,
    };

    const NAME: &str = "recorder";

    /// Records each call as `method path…` and answers something that identifies it.
    #[derive(Debug, Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
    }

    impl Recorder {
        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    #[async_trait]
    impl StorageDriver for Recorder {
        fn name(&self) -> &str {
            NAME
        }
        async fn get_content(&self, p: &StoragePath) -> Result<Bytes> {
            self.record(format!("get_content {p}"));
            Ok(Bytes::from(p.to_string()))
        }
        async fn put_content(&self, p: &StoragePath, c: Bytes) -> Result<()> {
            self.record(format!("put_content {p} {}", c.len()));
            Ok(())
        }
        async fn reader(&self, p: &StoragePath, offset: u64) -> Result<ByteStream> {
            self.record(format!("reader {p} {offset}"));
            Err(Error::not_found(NAME, p.as_str()))
        }
        async fn writer(&self, p: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
            self.record(format!("writer {p} {append}"));
            Err(Error::unsupported(NAME, "writer"))
        }
        async fn stat(&self, p: &StoragePath) -> Result<FileInfo> {
            self.record(format!("stat {p}"));
            Ok(FileInfo::file(p.clone(), 7, None))
        }
        async fn list(&self, p: &StoragePath) -> Result<Vec<StoragePath>> {
            self.record(format!("list {p}"));
            Ok(vec![p.join("child").unwrap()])
        }
        async fn move_object(&self, s: &StoragePath, d: &StoragePath) -> Result<()> {
            self.record(format!("move_object {s} {d}"));
            Ok(())
        }
        async fn delete(&self, p: &StoragePath) -> Result<()> {
            self.record(format!("delete {p}"));
            Err(Error::not_found(NAME, p.as_str()))
        }
        async fn delete_many(&self, ps: &[StoragePath]) -> Vec<(StoragePath, Error)> {
            let names: Vec<&str> = ps.iter().map(|p| p.as_str()).collect();
            self.record(format!("delete_many {}", names.join(" ")));
            vec![(ps[0].clone(), Error::unsupported(NAME, "delete_many"))]
        }
        async fn walk(
            &self,
            from: &StoragePath,
            _: &WalkOptions,
            f: &mut WalkFn<'_>,
        ) -> Result<()> {
            self.record(format!("walk {from}"));
            f(&FileInfo::dir(from.join("w").unwrap())).map(|_| ())
        }
        async fn redirect_url(&self, _: &RedirectRequest, p: &StoragePath) -> Result<Option<Url>> {
            self.record(format!("redirect_url {p}"));
            Ok(Url::parse(&format!("https://backend.example{p}")).ok())
        }
        fn url_key(&self, p: &StoragePath) -> String {
            format!("root{p}")
        }
    }

    #[derive(Debug)]
    struct Plain {
        wrapped: Arc<Recorder>,
    }
    forward_storage_driver!(Plain, wrapped);

    #[derive(Debug)]
    struct NoRedirect {
        wrapped: Arc<Recorder>,
    }
    forward_storage_driver!(
        NoRedirect,
        wrapped,
        async fn redirect_url(&self, _: &RedirectRequest, _: &StoragePath) -> Result<Option<Url>> {
            Ok(None)
        }
    );

    #[tokio::test]
    async fn every_method_reaches_the_wrapped_driver_unchanged() {
        let recorder = Arc::new(Recorder::default());
        let mw = Plain {
            wrapped: Arc::clone(&recorder),
        };
        let (a, b) = (
            StoragePath::parse("/a").unwrap(),
            StoragePath::parse("/b").unwrap(),
        );
        assert_eq!(mw.name(), NAME);
        assert_eq!(mw.get_content(&a).await.unwrap(), Bytes::from("/a"));
        mw.put_content(&a, Bytes::from("xyz")).await.unwrap();
        assert!(mw.reader(&a, 3).await.err().unwrap().is_not_found());
        assert_eq!(
            mw.writer(&a, true).await.err().unwrap().driver(),
            Some(NAME)
        );
        assert_eq!(mw.stat(&a).await.unwrap().size, 7);
        assert_eq!(mw.list(&a).await.unwrap()[0].as_str(), "/a/child");
        mw.move_object(&a, &b).await.unwrap();
        assert!(mw.delete(&b).await.unwrap_err().is_not_found());
        let failed = mw.delete_many(&[a.clone(), b.clone()]).await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, a);
        let mut seen = Vec::new();
        mw.walk(&a, &WalkOptions::default(), &mut |i| {
            seen.push(i.path.to_string());
            Ok(WalkControl::Continue)
        })
        .await
        .unwrap();
        assert_eq!(seen, ["/a/w"]);
        let url = mw.redirect_url(&RedirectRequest::get(), &a).await.unwrap();
        assert_eq!(url.unwrap().as_str(), "https://backend.example/a");
        assert_eq!(mw.url_key(&a), "root/a");
        assert_eq!(
            *recorder.calls.lock().unwrap(),
            [
                "get_content /a",
                "put_content /a 3",
                "reader /a 3",
                "writer /a true",
                "stat /a",
                "list /a",
                "move_object /a /b",
                "delete /b",
                "delete_many /a /b",
                "walk /a",
                "redirect_url /a",
            ]
        );
    }

    #[tokio::test]
    async fn a_given_redirect_url_replaces_the_forwarded_one() {
        let recorder = Arc::new(Recorder::default());
        let mw = NoRedirect {
            wrapped: Arc::clone(&recorder),
        };
        let a = StoragePath::parse("/a").unwrap();
        assert_eq!(
            mw.redirect_url(&RedirectRequest::get(), &a).await.unwrap(),
            None
        );
        assert_eq!(mw.stat(&a).await.unwrap().size, 7);
        assert_eq!(*recorder.calls.lock().unwrap(), ["stat /a"]);
    }
}
