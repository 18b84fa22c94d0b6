//! Proxy selection from the environment, with the rules of Go's `http.ProxyFromEnvironment`
//! (golang.org/x/net/http/httpproxy), which distribution's S3 driver uses through the AWS SDK:
//!
//! - `HTTPS_PROXY` for `https` URLs, `HTTP_PROXY` for `http` URLs; the upper-case name wins
//!   over the lower-case one when both are set (non-empty). `HTTP_PROXY` is ignored when
//!   `REQUEST_METHOD` is set (CGI, "httpoxy").
//! - A proxy value without a scheme is taken as `http://value`; a proxy without a port uses 80
//!   (`http`) — or 443 for an `https://` proxy, which this client refuses (see below).
//! - Never proxied: the host `localhost` and loopback IP literals (`127.0.0.0/8`, `::1`).
//! - `NO_PROXY` (or `no_proxy`): comma-separated; `*` disables the proxy entirely; an IP or CIDR
//!   matches IP literal hosts; `name` matches the name and its subdomains, `.name` and `*.name`
//!   its subdomains only; any entry may carry a `:port`, which must then match the request's
//!   port as well. Matching is case-insensitive and by suffix on whole labels only.
//!
//! Differences from Go, on purpose: only `http://` proxies are supported (Go also speaks TLS to
//! an `https://` proxy and SOCKS5): any other proxy scheme is refused when the driver starts,
//! naming the variable, rather than silently sending requests directly.

use std::net::IpAddr;

use base64::Engine as _;
use hyper::Uri;

/// A proxy to send requests through.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// Proxy host (IPv6 without brackets).
    pub(crate) host: String,
    /// Proxy port.
    pub(crate) port: u16,
    /// `Proxy-Authorization` value (`Basic …`) from the proxy URL's user info, if any.
    pub(crate) authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The authorization is a password: never printed.
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Proxy {
    /// `host:port` for a CONNECT line or a socket address, IPv6 bracketed.
    pub(crate) fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `*`: nothing is proxied.
    All,
    /// An IP address, optionally with a port.
    Ip(IpAddr, Option<u16>),
    /// A CIDR block (any port).
    Cidr(IpAddr, u8),
    /// A domain: `suffix` starts with `.`; `exact` also matches the bare name (entries written
    /// without a leading `.` or `*.`).
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

/// The proxy settings read from the environment once, when a client is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyConfig {
    http: Option<Proxy>,
    https: Option<Proxy>,
    rules: Vec<Rule>,
}

/// The first non-empty value of `names`.
fn first_set(get: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        get(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| ((*n).to_owned(), v))
    })
}

impl ProxyConfig {
    /// Reads `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (and their lower-case forms) from the
    /// process environment. Errors name the variable and why its value is refused (never the
    /// value: it may hold a password).
    pub(crate) fn from_env() -> Result<Self, String> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env) with the variables from `get` (tests).
    pub(crate) fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let cgi = get("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        let http = match first_set(get, &["HTTP_PROXY", "http_proxy"]) {
            Some((name, value)) if !cgi => Some(parse_proxy(&name, &value)?),
            _ => None,
        };
        let https = match first_set(get, &["HTTPS_PROXY", "https_proxy"]) {
            Some((name, value)) => Some(parse_proxy(&name, &value)?),
            None => None,
        };
        let rules = first_set(get, &["NO_PROXY", "no_proxy"])
            .map(|(_, v)| parse_no_proxy(&v))
            .unwrap_or_default();
        Ok(ProxyConfig { http, https, rules })
    }

    /// Whether any proxy is configured at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for a request to `uri`, or `None` to connect directly.
    pub(crate) fn for_uri(&self, uri: &Uri) -> Option<&Proxy> {
        let https = uri.scheme_str() == Some("https");
        let proxy = if https {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        self.use_proxy(host, port).then_some(proxy)
    }

    /// Go's `useProxy`: false for localhost, loopback IPs and `NO_PROXY` matches.
    fn use_proxy(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim()
            .to_ascii_lowercase();
        if host == "localhost" {
            return false;
        }
        let ip: Option<IpAddr> = host.parse().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        for rule in &self.rules {
            let matched = match rule {
                Rule::All => true,
                Rule::Ip(want, want_port) => {
                    ip == Some(*want) && want_port.is_none_or(|p| p == port)
                }
                Rule::Cidr(net, bits) => ip.is_some_and(|ip| cidr_contains(*net, *bits, ip)),
                Rule::Domain {
                    suffix,
                    exact,
                    port: want_port,
                } => {
                    (host.ends_with(suffix.as_str()) || (*exact && host == suffix[1..]))
                        && want_port.is_none_or(|p| p == port)
                }
            };
            if matched {
                return false;
            }
        }
        true
    }
}

/// Parses one proxy URL (`name` is the variable it came from, for errors).
fn parse_proxy(name: &str, value: &str) -> Result<Proxy, String> {
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url =
        url::Url::parse(&with_scheme).map_err(|e| format!("{name}: not a proxy URL ({e})"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{name}: proxy scheme {:?} is not supported (only http:// proxies; the connection \
             to an https endpoint is tunnelled with CONNECT)",
            url.scheme()
        ));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(format!("{name}: proxy URL has no host")),
    };
    let port = url.port().unwrap_or(80);
    let authorization = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ))
    };
    Ok(Proxy {
        host,
        port,
        authorization,
    })
}

/// Percent-decoding of URL user info (`+` and `&` are literal there, unlike in a form).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `NO_PROXY` as Go's httpproxy does; entries it cannot make sense of are ignored.
fn parse_no_proxy(value: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            rules.push(Rule::All);
            continue;
        }
        if let Some((net, bits)) = parse_cidr(&entry) {
            rules.push(Rule::Cidr(net, bits));
            continue;
        }
        // host[:port], [v6]:port, or a bare IP (v6 without brackets).
        let (host, port) = split_host_port(&entry);
        if let Ok(ip) = host.parse::<IpAddr>() {
            rules.push(Rule::Ip(ip, port));
            continue;
        }
        if host.is_empty() {
            continue;
        }
        let host = host
            .strip_prefix("*.")
            .map(|h| format!(".{h}"))
            .unwrap_or(host);
        let (suffix, exact) = if host.starts_with('.') {
            (host, false)
        } else {
            (format!(".{host}"), true)
        };
        rules.push(Rule::Domain {
            suffix,
            exact,
            port,
        });
    }
    rules
}

/// Splits `host:port` (the port only when it parses), handling `[v6]:port` and bare v6.
fn split_host_port(entry: &str) -> (String, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h.to_owned(), port);
        }
    }
    if entry.matches(':').count() == 1 {
        let (h, p) = entry.split_once(':').unwrap_or((entry, ""));
        if let Ok(port) = p.parse() {
            return (h.to_owned(), Some(port));
        }
    }
    (entry.to_owned(), None)
}

fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = entry.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    // Compared in IPv6 form, IPv4 as IPv4-mapped (`::ffff:a.b.c.d`, prefix + 96): Go treats a
    // mapped address as its IPv4 form, and this way `10.0.0.0/8` and `::ffff:10.0.0.0/104`
    // are the same network without a prefix length ever exceeding its address family.
    let wide = |a: IpAddr| match a {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 96u32),
        IpAddr::V6(v6) => (u128::from(v6), 0),
    };
    let (n, extra) = wide(net);
    let (i, _) = wide(ip);
    let bits = u32::from(bits) + extra;
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits.min(128))
    };
    n & mask == i & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> ProxyConfig {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProxyConfig::from_lookup(&move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    fn proxied(c: &ProxyConfig, url: &str) -> bool {
        c.for_uri(&url.parse().unwrap()).is_some()
    }

    #[test]
    fn scheme_selects_the_variable_and_upper_case_wins() {
        let c = cfg(&[
            ("HTTP_PROXY", "http://up:3128"),
            ("http_proxy", "http://low:1"),
            ("https_proxy", "sec:8443"),
        ]);
        let p = c.for_uri(&"http://s3.example/".parse().unwrap()).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("up", 3128));
        let p = c.for_uri(&"https://s3.example/".parse().unwrap()).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("sec", 8443));
        let c = cfg(&[("HTTPS_PROXY", "http://p:1")]);
        assert!(
            !proxied(&c, "http://s3.example/"),
            "http uses HTTP_PROXY only"
        );
        assert!(cfg(&[("HTTP_PROXY", "")]).is_empty());
        let p = cfg(&[("HTTP_PROXY", "proxy.corp")]).http.unwrap();
        assert_eq!(p.port, 80);
    }

    #[test]
    fn cgi_ignores_http_proxy() {
        let c = cfg(&[
            ("HTTP_PROXY", "http://p:1"),
            ("HTTPS_PROXY", "http://p:2"),
            ("REQUEST_METHOD", "GET"),
        ]);
        assert!(!proxied(&c, "http://s3.example/"));
        assert!(proxied(&c, "https://s3.example/"));
    }

    #[test]
    fn loopback_and_localhost_are_never_proxied() {
        let c = cfg(&[("HTTP_PROXY", "http://p:1")]);
        for u in [
            "http://localhost:9000/",
            "http://LOCALHOST/",
            "http://127.0.0.1/",
            "http://127.0.0.2:80/",
            "http://[::1]:9000/",
        ] {
            assert!(!proxied(&c, u), "{u}");
        }
        // As in Go: names merely ending in localhost, other IPs and 0.0.0.0 are proxied.
        for u in [
            "http://local.localhost/",
            "http://localhost.net/",
            "http://[::2]/",
            "http://0.0.0.0:9000/",
            "http://169.254.169.254/",
        ] {
            assert!(proxied(&c, u), "{u}");
        }
    }

    #[test]
    fn no_proxy_matching_follows_go() {
        // Go's own table (net/http proxy_test + httpproxy tests), with
        // NO_PROXY="foobar.com, .barbaz.net, *.wildcard.io, 10.0.0.0/8, 192.168.1.1, ::1:5, example.org:8080".
        let c = cfg(&[
            ("HTTP_PROXY", "http://p:1"),
            (
                "no_proxy",
                "foobar.com, .barbaz.net, *.wildcard.io, 10.0.0.0/8, 192.168.1.1, example.org:8080, [2001:db8::1]:443",
            ),
        ]);
        let cases = [
            ("http://barbaz.net/", true), // ".barbaz.net" does not match the bare name
            ("http://www.barbaz.net/", false),
            ("http://foobar.com/", false),
            ("http://www.foobar.com/", false),
            ("http://foofoobar.com/", true),
            ("http://baz.com/", true),
            ("http://wildcard.io/", true),
            ("http://a.wildcard.io/", false),
            ("http://10.1.2.3/", false),
            ("http://11.1.2.3/", true),
            ("http://192.168.1.1/", false),
            ("http://192.168.1.2/", true),
            ("http://example.org:8080/", false),
            ("http://example.org/", true),
            ("http://[2001:db8::1]:443/", false),
            ("http://[2001:db8::1]:80/", true),
            ("http://FOOBAR.com/", false),
        ];
        for (u, want) in cases {
            assert_eq!(proxied(&c, u), want, "{u}");
        }
        let all = cfg(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")]);
        assert!(!proxied(&all, "https://s3.amazonaws.com/"));
        let upper = cfg(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "amazonaws.com"),
            ("no_proxy", ""),
        ]);
        assert!(!proxied(&upper, "https://s3.eu-west-1.amazonaws.com/"));
    }

    #[test]
    fn credentials_in_the_proxy_url_become_basic_auth_and_are_never_printed() {
        let c = cfg(&[("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy:3128")]);
        let p = c.https.clone().unwrap();
        let want = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {want}").as_str())
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains(&want) && !shown.contains("p%3Ass"),
            "{shown}"
        );
        // `&` and `+` are literal in user info (the url crate leaves them unencoded).
        let c = cfg(&[("HTTPS_PROXY", "http://u:pa&s+s@proxy:3128")]);
        let want = base64::engine::general_purpose::STANDARD.encode("u:pa&s+s");
        assert_eq!(
            c.https.unwrap().authorization.as_deref(),
            Some(format!("Basic {want}").as_str())
        );
    }

    #[test]
    fn cidr_rules_compare_ipv4_mapped_networks_as_ipv4() {
        let c = cfg(&[
            ("HTTP_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                "::ffff:10.0.0.0/104, 172.16.0.0/12, 2001:db8::/32",
            ),
        ]);
        for (u, want) in [
            ("http://10.9.8.7/", false),
            ("http://11.0.0.1/", true),
            ("http://[::ffff:172.16.5.5]/", false),
            ("http://172.32.0.1/", true),
            ("http://[2001:db8:1::5]/", false),
            ("http://[2001:db9::5]/", true),
        ] {
            assert_eq!(proxied(&c, u), want, "{u}");
        }
    }

    #[test]
    fn unsupported_proxy_schemes_are_refused_naming_the_variable() {
        for v in ["https://who:pw@p:443", "socks5://who:pw@p:1080"] {
            let e = ProxyConfig::from_lookup(&|k| (k == "HTTPS_PROXY").then(|| v.to_owned()))
                .unwrap_err();
            assert!(e.starts_with("HTTPS_PROXY:") && !e.contains("who"), "{e}");
        }
    }
}
