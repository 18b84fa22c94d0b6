//! The `rewrite` middleware: edits the wrapped driver's redirect URLs.

use std::sync::Arc;

use async_trait::async_trait;
use regstore_driver_api::{
    forward_storage_driver, Error, MiddlewareFactory, Parameters, RedirectRequest, Result,
    StorageDriver, StoragePath,
};

use crate::{strict_string, REWRITE};

fn bad(key: &str, message: impl Into<String>) -> Error {
    Error::invalid_parameter(REWRITE, key, message)
}

/// Wraps a driver and rewrites the redirect URLs it produces.
///
/// Options, all optional strings (another type → `<key> must be a string`):
/// * `scheme` — `http` or `https`, replaces the URL's scheme;
/// * `host` — `HOST[:PORT]`, replaces host and port (a host without port drops the original
///   port, as distribution's `URL.Host` assignment does);
/// * `trimpathprefix` — removed from the start of the URL's path when the path starts with it at
///   a component boundary (`/some/path` trims `/some/path/file` to `/file`, not `/some/pathx`).
///
/// When the wrapped driver answers `None` (serve the bytes yourself) the answer stays `None`;
/// distribution would turn it into a bogus `https://host` redirect. Rewriting the host of an S3
/// SigV4 presigned URL invalidates its signature unless the new host forwards the original
/// `Host` header.
#[derive(Debug)]
pub struct RewriteMiddleware {
    inner: Arc<dyn StorageDriver>,
    scheme: Option<String>,
    host: Option<(String, Option<u16>)>,
    trim_path_prefix: Option<String>,
}

fn option(params: &Parameters, key: &str) -> Result<Option<String>> {
    Ok(strict_string(params, key)
        .map_err(|()| bad(key, format!("{key} must be a string")))?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

impl RewriteMiddleware {
    /// Builds the middleware around `inner` from its options.
    pub fn from_parameters(
        inner: Arc<dyn StorageDriver>,
        params: &Parameters,
    ) -> Result<RewriteMiddleware> {
        let scheme = option(params, "scheme")?
            .map(|s| {
                let s = s.to_ascii_lowercase();
                if matches!(s.as_str(), "http" | "https") {
                    Ok(s)
                } else {
                    Err(bad(
                        "scheme",
                        format!("scheme must be http or https, got {s:?}"),
                    ))
                }
            })
            .transpose()?;
        let host = option(params, "host")?
            .map(|h| {
                let probe = url::Url::parse(&format!("http://{h}/")).ok().filter(|u| {
                    u.path() == "/" && u.username().is_empty() && u.password().is_none()
                });
                match probe.as_ref().and_then(|u| u.host_str()) {
                    Some(host) => Ok((host.to_owned(), probe.as_ref().and_then(url::Url::port))),
                    None => Err(bad(
                        "host",
                        format!("host must be HOST or HOST:PORT, got {h:?}"),
                    )),
                }
            })
            .transpose()?;
        let trim_path_prefix = option(params, "trimpathprefix")?
            .map(|p| {
                let p = p.trim_end_matches('/');
                if p.starts_with('/') {
                    p.to_owned()
                } else {
                    format!("/{p}")
                }
            })
            .filter(|p| p != "/");
        Ok(RewriteMiddleware {
            inner,
            scheme,
            host,
            trim_path_prefix,
        })
    }

    /// Applies the configured rewrites to `url`.
    pub fn rewrite(&self, mut url: url::Url) -> Result<url::Url> {
        let fail = |what: &str| {
            Error::backend(
                REWRITE,
                None,
                format!("cannot rewrite the {what} of the wrapped driver's redirect URL"),
            )
        };
        if let Some(scheme) = &self.scheme {
            url.set_scheme(scheme).map_err(|()| fail("scheme"))?;
        }
        if let Some((host, port)) = &self.host {
            url.set_host(Some(host)).map_err(|_| fail("host"))?;
            url.set_port(*port).map_err(|()| fail("port"))?;
        }
        if let Some(prefix) = &self.trim_path_prefix {
            let path = url.path().to_owned();
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    url.set_path(if rest.is_empty() { "/" } else { rest });
                }
            }
        }
        Ok(url)
    }
}

forward_storage_driver!(
    RewriteMiddleware,
    inner,
    async fn redirect_url(
        &self,
        request: &RedirectRequest,
        path: &StoragePath,
    ) -> Result<Option<url::Url>> {
        match self.inner.redirect_url(request, path).await? {
            None => Ok(None),
            Some(url) => self.rewrite(url).map(Some),
        }
    }
);

/// Builds [`RewriteMiddleware`] from a `middleware: storage:` entry named `rewrite`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RewriteFactory;

#[async_trait]
impl MiddlewareFactory for RewriteFactory {
    async fn wrap(
        &self,
        inner: Arc<dyn StorageDriver>,
        options: &Parameters,
    ) -> Result<Arc<dyn StorageDriver>> {
        Ok(Arc::new(RewriteMiddleware::from_parameters(
            inner, options,
        )?))
    }
}
