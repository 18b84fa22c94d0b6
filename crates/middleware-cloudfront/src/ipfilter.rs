//! The AWS IP filter: which client addresses are inside AWS.
//!
//! AWS publishes its address ranges as JSON (`ip-ranges.json`). Clients inside AWS fetch from
//! S3 directly (cheaper and faster than through CloudFront), so the CloudFront middleware asks
//! this filter before signing. The list is fetched once at start and then refreshed in the
//! background; a failed fetch keeps the previous list, and until a first fetch succeeds the
//! filter matches nothing (everyone gets CloudFront).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::HttpBody as _;
use serde::Deserialize;

use crate::cidr::Cidr;

/// Upper bound of an ip-ranges document (the real one is a few MiB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long one fetch may take before it counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The ip-ranges JSON document, reduced to the fields the filter reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct IpRanges {
    /// IPv4 ranges.
    #[serde(default)]
    pub prefixes: Vec<Ipv4Prefix>,
    /// IPv6 ranges.
    #[serde(default)]
    pub ipv6_prefixes: Vec<Ipv6Prefix>,
}

/// One IPv4 range of the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ipv4Prefix {
    /// The range in CIDR notation.
    pub ip_prefix: String,
    /// AWS region (`us-east-1`, `GLOBAL`, …).
    #[serde(default)]
    pub region: String,
    /// AWS service (`AMAZON`, `S3`, …); not used for filtering, as in distribution.
    #[serde(default)]
    pub service: String,
}

/// One IPv6 range of the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ipv6Prefix {
    /// The range in CIDR notation.
    pub ipv6_prefix: String,
    /// AWS region.
    #[serde(default)]
    pub region: String,
    /// AWS service; not used for filtering.
    #[serde(default)]
    pub service: String,
}

/// The networks a filter matches, split by address family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    v4: Vec<Cidr>,
    v6: Vec<Cidr>,
    /// The same networks as sorted, merged, inclusive address intervals, so a lookup is a
    /// binary search rather than a scan of thousands of prefixes.
    v4_ranges: Vec<(u128, u128)>,
    v6_ranges: Vec<(u128, u128)>,
}

/// First and last address of `c` as numbers (IPv4 in the low 32 bits).
fn interval(c: &Cidr) -> (u128, u128) {
    let (start, width) = match c.network() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
        IpAddr::V6(a) => (u128::from(a), 128u32),
    };
    let host_bits = width - u32::from(c.prefix_len());
    let span = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (start, start + span)
}

fn merged(cidrs: &[Cidr]) -> Vec<(u128, u128)> {
    let mut ranges: Vec<(u128, u128)> = cidrs.iter().map(interval).collect();
    ranges.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn in_ranges(ranges: &[(u128, u128)], x: u128) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= x);
    after > 0 && ranges[after - 1].1 >= x
}

impl Networks {
    /// The networks of `ranges` whose region is one of `regions` (lower-case; `None` keeps
    /// every region). Unparseable prefixes are logged and skipped; a prefix listed as IPv4 but
    /// holding an IPv6 network (or the reverse) is filed under its real family.
    pub fn from_ranges(ranges: &IpRanges, regions: Option<&[String]>) -> Networks {
        let wanted = |region: &str| {
            regions.is_none_or(|rs| rs.iter().any(|r| r.eq_ignore_ascii_case(region.trim())))
        };
        let mut out = Networks::default();
        let entries = ranges
            .prefixes
            .iter()
            .map(|p| (&p.ip_prefix, &p.region))
            .chain(
                ranges
                    .ipv6_prefixes
                    .iter()
                    .map(|p| (&p.ipv6_prefix, &p.region)),
            );
        for (prefix, region) in entries {
            if !wanted(region) {
                continue;
            }
            match prefix.trim().parse::<Cidr>() {
                Ok(c) if c.is_ipv4() => out.v4.push(c),
                Ok(c) => out.v6.push(c),
                Err(e) => tracing::warn!(error = %e, "skipping invalid AWS IP prefix"),
            }
        }
        out.v4_ranges = merged(&out.v4);
        out.v6_ranges = merged(&out.v6);
        out
    }

    /// Number of IPv4 networks.
    pub fn ipv4_count(&self) -> usize {
        self.v4.len()
    }

    /// Number of IPv6 networks.
    pub fn ipv6_count(&self) -> usize {
        self.v6.len()
    }

    /// The networks an address is checked against: IPv4 (and IPv4-mapped IPv6) addresses
    /// against the IPv4 list, other IPv6 addresses against the IPv6 list.
    pub fn candidates(&self, ip: IpAddr) -> &[Cidr] {
        match ip.to_canonical() {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        }
    }

    /// Whether `ip` is inside one of the networks (a binary search over merged intervals).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => in_ranges(&self.v4_ranges, u128::from(u32::from(a))),
            IpAddr::V6(a) => in_ranges(&self.v6_ranges, u128::from(a)),
        }
    }
}

/// How the filter fetches and which regions it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpFilterConfig {
    /// Where to GET the ip-ranges JSON (http or https).
    pub url: url::Url,
    /// Regions to keep (lower-case); `None` keeps all of AWS.
    pub regions: Option<Vec<String>>,
    /// Time between refreshes.
    pub update_frequency: Duration,
}

type HttpsClient = hyper::Client<hyper_tls::HttpsConnector<hyper::client::HttpConnector>>;

struct Shared {
    config: IpFilterConfig,
    client: HttpsClient,
    /// `None` until a fetch succeeds.
    networks: RwLock<Option<Arc<Networks>>>,
    attempts: AtomicU64,
    successes: AtomicU64,
}

/// A live AWS IP filter: fetched at start, refreshed in a background task.
///
/// The task holds only a weak reference to the filter's state and is aborted when the filter
/// is dropped, so dropping the middleware leaves nothing running.
pub struct AwsIpFilter {
    shared: Arc<Shared>,
    task: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for AwsIpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nets = self.snapshot();
        f.debug_struct("AwsIpFilter")
            .field("url", &self.shared.config.url.as_str())
            .field("regions", &self.shared.config.regions)
            .field("update_frequency", &self.shared.config.update_frequency)
            .field("initialised", &nets.is_some())
            .field("ipv4", &nets.as_ref().map_or(0, |n| n.ipv4_count()))
            .field("ipv6", &nets.as_ref().map_or(0, |n| n.ipv6_count()))
            .finish()
    }
}

impl AwsIpFilter {
    /// Fetches the list once (a failure is logged and leaves the filter uninitialised) and
    /// starts the refresh task. Must run inside a Tokio runtime; otherwise, or if no TLS
    /// context can be created, it returns an error message.
    pub async fn start(config: IpFilterConfig) -> Result<AwsIpFilter, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the AWS IP filter needs a Tokio runtime".to_owned())?;
        let shared = Arc::new(Shared {
            client: https_client()?,
            config,
            networks: RwLock::new(None),
            attempts: AtomicU64::new(0),
            successes: AtomicU64::new(0),
        });
        shared.update().await;
        let weak = Arc::downgrade(&shared);
        let period = shared.config.update_frequency;
        let task = runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = weak.upgrade() else {
                    break;
                };
                shared.update().await;
            }
        });
        Ok(AwsIpFilter {
            shared,
            task: Some(task.abort_handle()),
        })
    }

    /// Whether a fetch has succeeded.
    pub fn is_initialised(&self) -> bool {
        self.snapshot().is_some()
    }

    /// The current list, if initialised.
    pub fn snapshot(&self) -> Option<Arc<Networks>> {
        match self.shared.networks.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `ip` is inside AWS (per the configured regions). Always false while
    /// uninitialised.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.snapshot().is_some_and(|n| n.contains(ip))
    }

    /// Fetches attempted so far (initial one included).
    pub fn fetch_attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::Relaxed)
    }

    /// Fetches that replaced the list.
    pub fn successful_fetches(&self) -> u64 {
        self.shared.successes.load(Ordering::Relaxed)
    }

    /// Fetches the list now, outside the schedule. `Err` describes a failed fetch (the
    /// previous list stays).
    pub async fn refresh(&self) -> Result<(), String> {
        self.shared.try_update().await
    }

    /// A weak handle to the state the refresh task uses; it dies with the filter, which lets
    /// tests observe that nothing outlives the middleware.
    #[doc(hidden)]
    pub fn state_liveness(&self) -> std::sync::Weak<impl Sized + Send + Sync> {
        Arc::downgrade(&self.shared)
    }
}

impl Drop for AwsIpFilter {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Shared {
    async fn update(&self) {
        if let Err(e) = self.try_update().await {
            tracing::warn!(url = %self.config.url, error = %e, "failed to update AWS IP ranges");
        }
    }

    async fn try_update(&self) -> Result<(), String> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let body = tokio::time::timeout(FETCH_TIMEOUT, fetch(&self.client, &self.config.url))
            .await
            .map_err(|_| format!("timed out after {FETCH_TIMEOUT:?}"))??;
        let ranges: IpRanges =
            serde_json::from_slice(&body).map_err(|e| format!("invalid ip-ranges JSON: {e}"))?;
        let networks = Networks::from_ranges(&ranges, self.config.regions.as_deref());
        tracing::debug!(
            ipv4 = networks.ipv4_count(),
            ipv6 = networks.ipv6_count(),
            "updated AWS IP ranges"
        );
        let networks = Some(Arc::new(networks));
        match self.networks.write() {
            Ok(mut g) => *g = networks,
            Err(poisoned) => *poisoned.into_inner() = networks,
        }
        self.successes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn https_client() -> Result<HttpsClient, String> {
    let tls =
        native_tls::TlsConnector::new().map_err(|e| format!("cannot create a TLS context: {e}"))?;
    let mut http = hyper::client::HttpConnector::new();
    http.enforce_http(false);
    let connector =
        hyper_tls::HttpsConnector::from((http, tokio_native_tls::TlsConnector::from(tls)));
    Ok(hyper::Client::builder().build(connector))
}

async fn fetch(client: &HttpsClient, url: &url::Url) -> Result<Bytes, String> {
    let uri: hyper::Uri = url
        .as_str()
        .parse()
        .map_err(|e| format!("invalid URL: {e}"))?;
    let response = client
        .get(uri)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("reading the response failed: {e}"))?;
        if data.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("response larger than {MAX_BODY_BYTES} bytes"));
        }
        data.extend_from_slice(&chunk);
    }
    if status != hyper::StatusCode::OK {
        let excerpt = String::from_utf8_lossy(&data[..data.len().min(200)]).into_owned();
        return Err(format!("unexpected status {status}: {excerpt}"));
    }
    Ok(Bytes::from(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(prefix: &str, region: &str) -> Ipv4Prefix {
        Ipv4Prefix {
            ip_prefix: prefix.into(),
            region: region.into(),
            service: "EC2".into(),
        }
    }

    #[test]
    fn parsing_is_field_for_field() {
        let raw = r#"{"syncToken":"1","createDate":"x",
          "prefixes":[{"ip_prefix":"192.168.0.0/24","region":"us-east-1","service":"EC2","network_border_group":"us-east-1"}],
          "ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24","region":"us-west-2","service":"S3"}]}"#;
        let r: IpRanges = serde_json::from_str(raw).unwrap();
        assert_eq!(r.prefixes, vec![v4("192.168.0.0/24", "us-east-1")]);
        assert_eq!(
            r.prefixes[0].service, "EC2",
            "service kept even though unused"
        );
        assert_eq!(
            r.ipv6_prefixes,
            vec![Ipv6Prefix {
                ipv6_prefix: "2600:1f00::/24".into(),
                region: "us-west-2".into(),
                service: "S3".into()
            }]
        );
    }

    #[test]
    fn region_filter_and_invalid_entries() {
        let r = IpRanges {
            prefixes: vec![
                v4("9000", "us-east-1"),
                v4("192.168.0.0/24", "US-EAST-1"),
                v4("10.0.0.0/8", "eu-west-1"),
            ],
            ipv6_prefixes: vec![],
        };
        let all = Networks::from_ranges(&r, None);
        assert_eq!((all.ipv4_count(), all.ipv6_count()), (2, 0));
        let east = Networks::from_ranges(&r, Some(&["us-east-1".to_owned()]));
        assert_eq!(east.ipv4_count(), 1);
        assert!(east.contains(ip("192.168.0.7")));
        assert!(!east.contains(ip("10.1.1.1")));
        let none = Networks::from_ranges(&r, Some(&["us-west-2".to_owned()]));
        assert!(!none.contains(ip("192.168.0.7")));
    }

    #[test]
    fn interval_search_agrees_with_a_scan() {
        let prefixes = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.255.255.255/32",
            "11.0.0.0/8",
            "192.168.0.0/24",
            "192.168.2.0/23",
            "0.0.0.0/1",
            "255.255.255.255/32",
        ];
        let r = IpRanges {
            prefixes: prefixes.iter().map(|p| v4(p, "")).collect(),
            ipv6_prefixes: ["::/0", "2001:db8::/32", "ffff::/16"]
                .iter()
                .map(|p| Ipv6Prefix {
                    ipv6_prefix: p.to_string(),
                    ..Default::default()
                })
                .collect(),
        };
        let n = Networks::from_ranges(&r, None);
        let probes = [
            "9.255.255.255",
            "10.0.0.0",
            "10.200.1.1",
            "11.255.255.255",
            "12.0.0.0",
            "127.0.0.1",
            "128.0.0.0",
            "192.167.255.255",
            "192.168.0.255",
            "192.168.1.0",
            "192.168.2.0",
            "192.168.3.255",
            "192.168.4.0",
            "255.255.255.254",
            "255.255.255.255",
            "::",
            "2001:db8::1",
            "ffff:ffff::1",
        ];
        for p in probes {
            let a = ip(p);
            let scan = n.candidates(a).iter().any(|c| c.contains(a));
            assert_eq!(n.contains(a), scan, "{p}");
        }
        let single = Networks::from_ranges(
            &IpRanges {
                prefixes: vec![v4("192.168.0.0/24", "")],
                ipv6_prefixes: vec![],
            },
            None,
        );
        assert!(!single.contains(ip("::1")));
        assert!(!single.contains(ip("192.168.1.0")));
        assert!(single.contains(ip("192.168.0.0")));
    }

    #[test]
    fn address_families_pick_their_list() {
        let r = IpRanges {
            prefixes: vec![v4("192.168.0.0/24", "")],
            ipv6_prefixes: vec![
                Ipv6Prefix {
                    ipv6_prefix: "ff00::/16".into(),
                    ..Default::default()
                },
                Ipv6Prefix {
                    ipv6_prefix: "2001:db8::/32".into(),
                    ..Default::default()
                },
            ],
        };
        let n = Networks::from_ranges(&r, None);
        assert_eq!(n.candidates(ip("1.2.3.4")).len(), 1);
        assert_eq!(n.candidates(ip("::ffff:1.2.3.4")).len(), 1);
        assert_eq!(n.candidates(ip("ff00::1")).len(), 2);
        assert!(n.contains(ip("ff00::")));
        assert!(!n.contains(ip("fe00::")));
    }
}
