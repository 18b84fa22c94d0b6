//! The `redirect` middleware: unsigned redirects to `baseurl` + storage path.

use std::sync::Arc;

use async_trait::async_trait;
use regstore_driver_api::{
    forward_storage_driver, Error, MiddlewareFactory, Parameters, RedirectMethod, RedirectRequest,
    Result, StorageDriver, StoragePath,
};

use crate::{strict_string, REDIRECT};

fn bad(message: impl Into<String>) -> Error {
    Error::invalid_parameter(REDIRECT, "baseurl", message)
}

/// Wraps a driver and redirects GET/HEAD to `baseurl` joined with the storage path, for a proxy
/// or CDN that serves the backend's files under their storage paths.
///
/// Option `baseurl` (required): `SCHEME://HOST[:PORT][/BASEPATH]`. Errors, as in distribution:
/// `no baseurl provided`, `baseurl must be a string`, `unable to parse redirect baseurl: …`,
/// `no scheme specified for redirect baseurl`, `no host specified for redirect baseurl`.
/// The redirect is `scheme://host[:port]` + the base path joined with the storage path
/// (`https://example.com/path` + `/morty/data` → `https://example.com/path/morty/data`), with no
/// query and no signature; object existence is not checked. Other methods get `None`.
#[derive(Debug)]
pub struct RedirectMiddleware {
    inner: Arc<dyn StorageDriver>,
    base: url::Url,
    base_path: String,
}

impl RedirectMiddleware {
    /// Builds the middleware around `inner` from its options.
    pub fn from_parameters(
        inner: Arc<dyn StorageDriver>,
        params: &Parameters,
    ) -> Result<RedirectMiddleware> {
        let raw = strict_string(params, "baseurl")
            .map_err(|()| bad("baseurl must be a string"))?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad("no baseurl provided"))?;
        let raw = raw.trim();
        let base = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                return Err(bad("no scheme specified for redirect baseurl"))
            }
            Err(url::ParseError::EmptyHost) => {
                return Err(bad("no host specified for redirect baseurl"))
            }
            Err(e) => {
                return Err(bad(format!(
                    "unable to parse redirect baseurl: {raw} ({e})"
                )))
            }
        };
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host specified for redirect baseurl"));
        }
        let base_path = base.path().trim_end_matches('/').to_owned();
        Ok(RedirectMiddleware {
            inner,
            base,
            base_path,
        })
    }

    /// The redirect URL for `path` (what `redirect_url` answers for GET and HEAD).
    pub fn url_for(&self, path: &StoragePath) -> url::Url {
        let mut u = self.base.clone();
        u.set_query(None);
        u.set_fragment(None);
        // StoragePath always starts with '/' and has no empty, '.' or '..' components, so the
        // join is already clean.
        u.set_path(&format!("{}{}", self.base_path, path.as_str()));
        u
    }
}

forward_storage_driver!(
    RedirectMiddleware,
    inner,
    async fn redirect_url(
        &self,
        request: &RedirectRequest,
        path: &StoragePath,
    ) -> Result<Option<url::Url>> {
        if request.method == RedirectMethod::Other {
            return Ok(None);
        }
        Ok(Some(self.url_for(path)))
    }
);

/// Builds [`RedirectMiddleware`] from a `middleware: storage:` entry named `redirect`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedirectFactory;

#[async_trait]
impl MiddlewareFactory for RedirectFactory {
    async fn wrap(
        &self,
        inner: Arc<dyn StorageDriver>,
        options: &Parameters,
    ) -> Result<Arc<dyn StorageDriver>> {
        Ok(Arc::new(RedirectMiddleware::from_parameters(
            inner, options,
        )?))
    }
}
