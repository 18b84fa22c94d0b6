//! The `cloudfront` middleware: CloudFront signed URLs in front of any driver.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use regstore_driver_api::{
    forward_storage_driver, Error, MiddlewareFactory, Parameters, RedirectMethod, RedirectRequest,
    Result, StorageDriver, StoragePath, Value,
};

use crate::cidr::Cidr;
use crate::ipfilter::{AwsIpFilter, IpFilterConfig};
use crate::sign::{HashAlgorithm, SignError, UrlSigner};
use crate::{strict_string, CLOUDFRONT};
use regstore_driver_api::duration::parse_duration;

/// How long signed URLs stay valid unless `duration` says otherwise.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(20 * 60);
/// How often the AWS IP list is refreshed unless `updatefrequency` says otherwise.
pub const DEFAULT_UPDATE_FREQUENCY: Duration = Duration::from_secs(12 * 3600);
/// Where AWS publishes its address ranges.
pub const DEFAULT_IP_RANGES_URL: &str = "https://ip-ranges.amazonaws.com/ip-ranges.json";

const IPFILTEREDBY_MSG: &str =
    "ipfilteredby only allows a string with the following value: none|aws|awsregion";
const AWSREGION_MSG: &str = "awsRegion must be a comma separated string of valid aws regions";

/// Which clients get the wrapped driver's own URL instead of a CloudFront one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpFilterMode {
    /// Everyone gets CloudFront (`ipfilteredby: none`, the default).
    None,
    /// Clients in any AWS range (`ipfilteredby: aws`).
    Aws,
    /// Clients in AWS ranges of these regions, lower-case (`ipfilteredby: awsregion`).
    AwsRegion(Vec<String>),
}

/// The parsed options of the `cloudfront` middleware.
///
/// | option | meaning |
/// |---|---|
/// | `baseurl` (required) | `SCHEME://HOST[/PATH]`; `https://` is assumed without a scheme; a trailing `/` is added |
/// | `privatekey` (required) | path of a PEM private key: RSA (PKCS#1 or PKCS#8) or ECDSA P-256 (PKCS#8 or SEC1) |
/// | `keypairid` (required) | CloudFront key pair id or key-group public key id |
/// | `duration` | Go duration string, default `20m` |
/// | `hashalgorithm` | `sha1` (default for RSA) or `sha256` (adds `Hash-Algorithm=SHA256`; ECDSA keys always use it) |
/// | `ipfilteredby` | `none` (default), `aws`, `awsregion` |
/// | `awsregion` | comma-separated regions, required with `awsregion` |
/// | `updatefrequency` | Go duration, default `12h`; the legacy spelling `updatefrenquency` is accepted with a warning |
/// | `iprangesurl` | default `https://ip-ranges.amazonaws.com/ip-ranges.json` |
/// | `trustedproxies` | comma-separated IPs/CIDRs (or a list) whose `X-Forwarded-For` / `X-Real-Ip` are believed |
///
/// Differences from distribution: a `duration` or `updatefrequency` that is not a string is an
/// error (distribution silently ignores it), zero durations are errors, PKCS#8 and ECDSA keys
/// work, and forwarding headers are ignored unless the peer is a trusted proxy (distribution
/// believes any client's `X-Forwarded-For`, so a client could claim an AWS address).
#[derive(Debug)]
pub struct CloudFrontOptions {
    /// Base URL of the distribution, ending in `/`.
    pub base_url: url::Url,
    /// The key that signs, with its key pair id and hash.
    pub signer: UrlSigner,
    /// Lifetime of a signed URL.
    pub duration: Duration,
    /// The AWS IP filter mode.
    pub ip_filter: IpFilterMode,
    /// Refresh period of the AWS IP list.
    pub update_frequency: Duration,
    /// Where the AWS IP list is fetched from.
    pub ip_ranges_url: url::Url,
    /// Peers whose forwarding headers are trusted.
    pub trusted_proxies: Vec<Cidr>,
}

fn bad(parameter: &str, message: impl Into<String>) -> Error {
    Error::invalid_parameter(CLOUDFRONT, parameter, message)
}

impl CloudFrontOptions {
    /// Parses and validates `params` (reading the private key file). The first problem is
    /// returned as [`Error::InvalidParameter`] naming the option, checked in distribution's
    /// order: baseurl, privatekey, keypairid, (hashalgorithm), duration, ipfilteredby,
    /// awsregion, updatefrequency, iprangesurl, (trustedproxies).
    pub fn from_parameters(params: &Parameters) -> Result<CloudFrontOptions> {
        let base_url = parse_base_url(params)?;

        let key_path = strict_string(params, "privatekey")
            .map_err(|()| bad("privatekey", "privatekey must be a string"))?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("privatekey", "no privatekey provided"))?;
        let pem = std::fs::read(&key_path).map_err(|e| {
            bad(
                "privatekey",
                format!("failed to read privatekey file {key_path:?}: {e}"),
            )
        })?;
        warn_if_exposed(Path::new(&key_path));

        let key_pair_id = strict_string(params, "keypairid")
            .map_err(|()| bad("keypairid", "keypairid must be a string"))?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("keypairid", "no keypairid provided"))?;

        let hash = match strict_string(params, "hashalgorithm") {
            Err(()) => return Err(bad("hashalgorithm", "hashalgorithm must be a string")),
            Ok(None) => None,
            Ok(Some(s)) => Some(HashAlgorithm::parse(&s).ok_or_else(|| {
                bad(
                    "hashalgorithm",
                    format!("hashalgorithm must be sha1 or sha256, got {s:?}"),
                )
            })?),
        };
        let signer = UrlSigner::from_pem(&pem, key_pair_id, hash).map_err(|e| match e {
            SignError::InvalidKeyPairId => bad("keypairid", e.to_string()),
            SignError::UnsupportedAlgorithm(_) => bad("hashalgorithm", e.to_string()),
            other => bad("privatekey", format!("{other} (file {key_path:?})")),
        })?;

        let duration = duration_option(params, "duration")?.unwrap_or(DEFAULT_DURATION);

        let ip_filter = match params.get("ipfilteredby") {
            None => IpFilterMode::None,
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" | "none" => IpFilterMode::None,
                "aws" => IpFilterMode::Aws,
                "awsregion" => IpFilterMode::AwsRegion(parse_regions(params)?),
                _ => return Err(bad("ipfilteredby", IPFILTEREDBY_MSG)),
            },
            Some(_) => return Err(bad("ipfilteredby", IPFILTEREDBY_MSG)),
        };

        let update_frequency = update_frequency(params)?.unwrap_or(DEFAULT_UPDATE_FREQUENCY);

        let ip_ranges_url = match strict_string(params, "iprangesurl") {
            Err(()) => return Err(bad("iprangesurl", "iprangesurl must be a string")),
            Ok(s) => {
                let s = s.unwrap_or_else(|| DEFAULT_IP_RANGES_URL.to_owned());
                let u = url::Url::parse(s.trim())
                    .map_err(|e| bad("iprangesurl", format!("invalid iprangesurl {s:?}: {e}")))?;
                if !matches!(u.scheme(), "http" | "https") {
                    return Err(bad(
                        "iprangesurl",
                        format!("invalid iprangesurl {s:?}: the scheme must be http or https"),
                    ));
                }
                u
            }
        };

        let trusted_proxies = parse_trusted_proxies(params)?;

        Ok(CloudFrontOptions {
            base_url,
            signer,
            duration,
            ip_filter,
            update_frequency,
            ip_ranges_url,
            trusted_proxies,
        })
    }
}

fn parse_base_url(params: &Parameters) -> Result<url::Url> {
    let raw = strict_string(params, "baseurl")
        .map_err(|()| bad("baseurl", "baseurl must be a string"))?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("baseurl", "no baseurl provided"))?;
    let mut s = if raw.contains("://") {
        raw.clone()
    } else {
        format!("https://{raw}")
    };
    if !s.ends_with('/') {
        s.push('/');
    }
    let u =
        url::Url::parse(&s).map_err(|e| bad("baseurl", format!("invalid baseurl {raw:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad(
            "baseurl",
            format!("invalid baseurl {raw:?}: expected http(s)://HOST[/PATH]"),
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(
            "baseurl",
            format!("invalid baseurl {raw:?}: must not have a query or fragment"),
        ));
    }
    Ok(u)
}

/// A Go duration option (distribution parses these with `time.ParseDuration`: no `d` or `w`,
/// no bare numbers); `None` when absent. Durations must be positive.
fn duration_option(params: &Parameters, key: &str) -> Result<Option<Duration>> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let d =
                parse_duration(s.trim()).map_err(|e| bad(key, format!("invalid {key}: {e}")))?;
            if d.is_zero() {
                return Err(bad(
                    key,
                    format!("invalid {key}: must be greater than zero"),
                ));
            }
            Ok(Some(d))
        }
        Some(v) => Err(bad(
            key,
            format!(
                "invalid {key}: expected a duration string such as \"20m\" or \"3000s\", got {}",
                v.describe()
            ),
        )),
    }
}

fn update_frequency(params: &Parameters) -> Result<Option<Duration>> {
    const LEGACY: &str = "updatefrenquency";
    if params.get(LEGACY).is_some() {
        if params.get("updatefrequency").is_some() {
            tracing::warn!(
                "cloudfront: both updatefrequency and the deprecated misspelling updatefrenquency are set; using updatefrequency"
            );
        } else {
            tracing::warn!(
                "cloudfront: option updatefrenquency is deprecated, use updatefrequency"
            );
            return duration_option(params, LEGACY);
        }
    }
    duration_option(params, "updatefrequency")
}

fn parse_regions(params: &Parameters) -> Result<Vec<String>> {
    let entries: Vec<String> = match params.get("awsregion") {
        None => return Err(bad("awsregion", "awsRegion is not defined")),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad("awsregion", AWSREGION_MSG)),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(bad("awsregion", AWSREGION_MSG)),
    };
    let regions: Vec<String> = entries
        .iter()
        .map(|r| r.trim().to_ascii_lowercase())
        .filter(|r| !r.is_empty())
        .collect();
    if regions.is_empty() {
        return Err(bad("awsregion", "awsRegion is not defined"));
    }
    Ok(regions)
}

fn parse_trusted_proxies(params: &Parameters) -> Result<Vec<Cidr>> {
    let entries: Vec<String> = match params.get("trustedproxies") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| {
                v.as_scalar_string().ok_or_else(|| {
                    bad(
                        "trustedproxies",
                        "trustedproxies must be a comma separated string of IP addresses or CIDR ranges",
                    )
                })
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(bad(
                "trustedproxies",
                "trustedproxies must be a comma separated string of IP addresses or CIDR ranges",
            ))
        }
    };
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            Cidr::parse(e, true).map_err(|err| {
                bad(
                    "trustedproxies",
                    format!("invalid trustedproxies entry: {err}"),
                )
            })
        })
        .collect()
}

/// Warns when the key file can be read by group or others: the key lets anyone mint URLs.
fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o044 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "cloudfront: the privatekey file is readable by group or others; restrict it to mode 0600"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Wraps a driver and answers redirects with CloudFront signed URLs.
///
/// Every other operation is forwarded unchanged. See [`CloudFrontOptions`] for the options.
/// Redirect decision, per request:
/// 1. a method other than GET/HEAD gets no redirect (`None`);
/// 2. with an IP filter, a client inside the selected AWS ranges gets the wrapped driver's
///    own redirect (for S3 a presigned URL; for other drivers possibly `None`);
/// 3. everyone else gets `baseurl + inner.url_key(path)` signed with a canned policy that
///    expires `duration` from now.
///
/// The client address is the connection's peer; `X-Forwarded-For` (its right-most entry that
/// is not itself a trusted proxy) and then `X-Real-Ip` are used only when the peer is one of
/// `trustedproxies`. Unknown clients get CloudFront.
#[derive(Debug)]
pub struct CloudFrontMiddleware {
    inner: Arc<dyn StorageDriver>,
    base_url: url::Url,
    signer: UrlSigner,
    duration: Duration,
    trusted_proxies: Vec<Cidr>,
    ip_filter: Option<AwsIpFilter>,
}

impl CloudFrontMiddleware {
    /// Builds the middleware from configuration options (see [`CloudFrontOptions`]).
    pub async fn from_parameters(
        inner: Arc<dyn StorageDriver>,
        params: &Parameters,
    ) -> Result<CloudFrontMiddleware> {
        Self::new(inner, CloudFrontOptions::from_parameters(params)?).await
    }

    /// Builds the middleware. With an IP filter this fetches the AWS list once (a failed fetch
    /// is logged; the filter then matches nobody until a refresh succeeds) and starts the
    /// refresh task, which ends when the middleware is dropped. Must run in a Tokio runtime.
    pub async fn new(
        inner: Arc<dyn StorageDriver>,
        options: CloudFrontOptions,
    ) -> Result<CloudFrontMiddleware> {
        let regions = match options.ip_filter {
            IpFilterMode::None => None,
            IpFilterMode::Aws => Some(None),
            IpFilterMode::AwsRegion(r) => Some(Some(r)),
        };
        let ip_filter = match regions {
            None => None,
            Some(regions) => Some(
                AwsIpFilter::start(IpFilterConfig {
                    url: options.ip_ranges_url,
                    regions,
                    update_frequency: options.update_frequency,
                })
                .await
                .map_err(|e| Error::backend(CLOUDFRONT, None, e))?,
            ),
        };
        Ok(CloudFrontMiddleware {
            inner,
            base_url: options.base_url,
            signer: options.signer,
            duration: options.duration,
            trusted_proxies: options.trusted_proxies,
            ip_filter,
        })
    }

    /// The AWS IP filter, when one is configured.
    pub fn ip_filter(&self) -> Option<&AwsIpFilter> {
        self.ip_filter.as_ref()
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &Arc<dyn StorageDriver> {
        &self.inner
    }

    /// The client address this middleware believes for `request` (see the type's docs).
    pub fn client_ip(&self, request: &RedirectRequest) -> Option<IpAddr> {
        client_ip(request, &self.trusted_proxies)
    }

    /// The CloudFront URL for `path`, signed to expire at `expires` (Unix seconds).
    pub fn signed_url(&self, path: &StoragePath, expires: u64) -> Result<url::Url> {
        let resource = format!("{}{}", self.base_url, self.inner.url_key(path));
        let resource = url::Url::parse(&resource)
            .map_err(|e| Error::backend(CLOUDFRONT, Some(path.as_str()), e))?;
        let signed = self
            .signer
            .sign_canned(resource.as_str(), expires)
            .map_err(|e| Error::backend(CLOUDFRONT, Some(path.as_str()), e))?;
        url::Url::parse(&signed).map_err(|e| Error::backend(CLOUDFRONT, Some(path.as_str()), e))
    }
}

forward_storage_driver!(
    CloudFrontMiddleware,
    inner,
    async fn redirect_url(
        &self,
        request: &RedirectRequest,
        path: &StoragePath,
    ) -> Result<Option<url::Url>> {
        if request.method == RedirectMethod::Other {
            return Ok(None);
        }
        if let Some(filter) = &self.ip_filter {
            if let Some(ip) = self.client_ip(request) {
                if filter.contains(ip) {
                    return self.inner.redirect_url(request, path).await;
                }
            }
        }
        let expires = SystemTime::now()
            .checked_add(self.duration)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(u64::MAX, |d| d.as_secs());
        self.signed_url(path, expires).map(Some)
    }
);

/// Parses one forwarding-header entry: an address, `addr:port` or `[v6]:port`.
fn parse_ip_loose(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

fn client_ip(request: &RedirectRequest, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = request.remote_addr?.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    // Each proxy appends the address it received from, so everything left of the last
    // untrusted entry may be forged by the client: take the right-most entry that is not a
    // trusted proxy. An unparseable entry there means the chain cannot be believed.
    if let Some(xff) = request
        .forwarded_for
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let entries: Vec<&str> = xff.split(',').collect();
        let mut leftmost = None;
        for entry in entries.iter().rev() {
            let ip = parse_ip_loose(entry)?;
            if !is_trusted(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        return leftmost;
    }
    if let Some(ip) = request.real_ip.as_deref().and_then(parse_ip_loose) {
        return Some(ip);
    }
    Some(peer)
}

/// Builds [`CloudFrontMiddleware`] from a `middleware: storage:` entry named `cloudfront`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudFrontFactory;

#[async_trait]
impl MiddlewareFactory for CloudFrontFactory {
    async fn wrap(
        &self,
        inner: Arc<dyn StorageDriver>,
        options: &Parameters,
    ) -> Result<Arc<dyn StorageDriver>> {
        Ok(Arc::new(
            CloudFrontMiddleware::from_parameters(inner, options).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn req(peer: &str, xff: Option<&str>, real: Option<&str>) -> RedirectRequest {
        RedirectRequest::get()
            .with_remote_addr(ip(peer))
            .with_forwarding_headers(xff.map(str::to_owned), real.map(str::to_owned))
    }

    #[test]
    fn forwarding_headers_need_a_trusted_peer() {
        let trusted = vec![Cidr::parse("10.0.0.0/8", true).unwrap()];
        // Untrusted peer: headers ignored (a client cannot claim an AWS address).
        assert_eq!(
            client_ip(
                &req("203.0.113.5", Some("52.95.1.1"), Some("52.95.1.2")),
                &trusted
            ),
            Some(ip("203.0.113.5"))
        );
        // No trusted proxies at all: same.
        assert_eq!(
            client_ip(&req("10.0.0.1", Some("52.95.1.1"), None), &[]),
            Some(ip("10.0.0.1"))
        );
        // Trusted peer: right-most untrusted XFF entry; a forged left entry is ignored.
        assert_eq!(
            client_ip(
                &req("10.0.0.1", Some("52.95.1.1, 198.51.100.7, 10.0.0.2"), None),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(&req("10.0.0.1", Some("198.51.100.7:4711"), None), &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(&req("10.0.0.1", Some("[2001:db8::1]:443"), None), &trusted),
            Some(ip("2001:db8::1"))
        );
        // Garbage in the believed part of the chain: unknown client.
        assert_eq!(
            client_ip(&req("10.0.0.1", Some("1.2.3.4, junk"), None), &trusted),
            None
        );
        // Only proxies in the chain: the left-most one.
        assert_eq!(
            client_ip(&req("10.0.0.1", Some("10.9.9.9, 10.0.0.2"), None), &trusted),
            Some(ip("10.9.9.9"))
        );
        // X-Real-Ip when there is no XFF; the peer when neither helps.
        assert_eq!(
            client_ip(&req("10.0.0.1", None, Some("198.51.100.9")), &trusted),
            Some(ip("198.51.100.9"))
        );
        assert_eq!(
            client_ip(&req("10.0.0.1", None, Some("nope")), &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_ip(&RedirectRequest::get(), &trusted), None);
    }
}
