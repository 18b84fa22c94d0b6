//! [`Addressing`]: where a request for the driver's bucket goes (virtual-hosted or path style).

use rusoto_core::signature::SignedRequest;

use crate::config::S3Config;
use crate::sigv4;

/// Whether `bucket` can be a DNS label prefix without breaking TLS (no dots, lower-case
/// letters, digits and hyphens). Other buckets stay path-style, as the AWS SDKs do.
pub(crate) fn virtual_host_compatible(bucket: &str) -> bool {
    crate::endpoint::virtual_hostable(bucket)
}

/// How a request for `bucket` is addressed.
#[derive(Debug, Clone)]
pub(crate) struct Addressing {
    /// The bucket every request of this driver targets.
    pub(crate) bucket: String,
    /// Keep `/bucket/key` on the endpoint host instead of `bucket.host/key`.
    pub(crate) path_style: bool,
}

impl Addressing {
    /// From the configuration: virtual-hosted unless `forcepathstyle` or the bucket name
    /// cannot be a host label.
    pub(crate) fn new(config: &S3Config) -> Self {
        Addressing {
            bucket: config.bucket.clone(),
            path_style: config.force_path_style || !virtual_host_compatible(&config.bucket),
        }
    }

    /// Rewrites a rusoto path-style request (`/bucket[/key]`) to the final address and returns
    /// the SigV2 canonical resource path for it: the path as sent, prefixed with `/bucket` for
    /// virtual-hosted requests. Requests for other buckets (none today) are left path-style.
    pub(crate) fn apply(&self, request: &mut SignedRequest) -> String {
        if !self.path_style {
            let rest = request
                .path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(self.bucket.as_str()))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(str::to_owned);
            if let Some(rest) = rest {
                let host = format!("{}.{}", self.bucket, request.hostname());
                request.set_hostname(Some(host));
                request.path = if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest
                };
                return format!("/{}{}", self.bucket, sigv4::wire_path(request));
            }
        }
        sigv4::wire_path(request)
    }
}
