//! The driver's hyper connector: TCP (with the configured connect timeout), through an HTTP
//! proxy when the environment asks for one ([`proxy`], Go's `ProxyFromEnvironment` rules), and
//! TLS with the stack chosen at build time ([`tls`]).
//!
//! Through a proxy, an `https` endpoint is reached with a `CONNECT host:port` tunnel (TLS runs
//! end to end with the endpoint, the proxy sees only the host name), and an `http` endpoint with
//! absolute-form requests (`GET http://host/path`) sent to the proxy; a user and password in the
//! proxy URL are sent as `Proxy-Authorization: Basic` (on the CONNECT, or by the transport on
//! each absolute-form request: see [`Connector::proxy_authorization`]).
//!
//! One [`Connector`] serves the S3 requests, and another the credential endpoints and STS, so
//! everything the driver sends follows the same proxy and trust settings.

pub(crate) mod proxy;
pub(crate) mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::connect::{Connected, Connection};
use hyper::client::HttpConnector;
use hyper::header::HeaderValue;
use hyper::Uri;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use proxy::ProxyConfig;
use tls::Tls;

/// Error type of the connector (what hyper's `Connect` wants).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest CONNECT answer head read from a proxy.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// Connects to endpoints directly or through the environment's proxy, with TLS for `https`.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    tls: Tls,
    proxy: Arc<ProxyConfig>,
    /// Bound on the CONNECT exchange with a proxy (the TCP connect has its own).
    connect_timeout: Duration,
}

impl Connector {
    /// A connector reading the proxy variables and the CA bundle variables from the process
    /// environment now. TCP connects give up after `connect_timeout`; certificates are checked
    /// unless `skip_verify`. Errors name the variable at fault.
    pub(crate) fn from_env(
        connect_timeout: Duration,
        skip_verify: bool,
        nodelay: bool,
    ) -> Result<Self, String> {
        let proxy = ProxyConfig::from_env()?;
        let bundle = tls::ca_bundle_from(&|k| std::env::var(k).ok());
        let tls = Tls::new(skip_verify, bundle.as_ref())?;
        tracing::debug!(
            tls = tls::STACK,
            ca_bundle = bundle.as_ref().map(|b| b.variable),
            proxy = !proxy.is_empty(),
            "s3aws: HTTP connector configured"
        );
        Ok(Self::new(connect_timeout, nodelay, tls, proxy))
    }

    /// A connector with explicit TLS and proxy settings.
    pub(crate) fn new(
        connect_timeout: Duration,
        nodelay: bool,
        tls: Tls,
        proxy: ProxyConfig,
    ) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(nodelay);
        Connector {
            tcp,
            tls,
            proxy: Arc::new(proxy),
            connect_timeout,
        }
    }

    /// The `Proxy-Authorization` value to add to a request for `uri` sent in absolute form to
    /// an HTTP proxy (plain `http` endpoints only: for `https` it went on the CONNECT).
    pub(crate) fn proxy_authorization(&self, uri: &Uri) -> Option<HeaderValue> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let auth = self.proxy.for_uri(uri)?.authorization.as_deref()?;
        let mut v = HeaderValue::from_str(auth).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    async fn connect(mut self, uri: Uri) -> Result<Stream, BoxError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => return Err(format!("unsupported URL scheme {other:?}").into()),
        };
        let host = uri
            .host()
            .ok_or("URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let Some(proxy) = self.proxy.for_uri(&uri).cloned() else {
            let tcp = tower_service::Service::call(&mut self.tcp, uri).await?;
            return if https {
                Ok(Stream::Tls(Box::new(self.tls.connect(&host, tcp).await?)))
            } else {
                Ok(Stream::Plain {
                    tcp,
                    via_proxy: false,
                })
            };
        };
        let proxy_uri: Uri = format!("http://{}", proxy.authority()).parse()?;
        let mut tcp = tower_service::Service::call(&mut self.tcp, proxy_uri)
            .await
            .map_err(|e| format!("proxy {}: {e}", proxy.authority()))?;
        if !https {
            return Ok(Stream::Plain {
                tcp,
                via_proxy: true,
            });
        }
        let target = proxy::authority(&host, port);
        match tokio::time::timeout(
            self.connect_timeout,
            tunnel(&mut tcp, &target, proxy.authorization.as_deref()),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("proxy {}: {e}", proxy.authority()).into()),
            Err(_) => {
                return Err(format!(
                    "proxy {}: no answer to CONNECT {target} within {:?}",
                    proxy.authority(),
                    self.connect_timeout
                )
                .into())
            }
        }
        Ok(Stream::Tls(Box::new(self.tls.connect(&host, tcp).await?)))
    }
}

/// Asks the proxy on `tcp` for a tunnel to `target` (`host:port`); Ok when it answers 2xx.
async fn tunnel(tcp: &mut TcpStream, target: &str, auth: Option<&str>) -> Result<(), String> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending CONNECT {target}: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer to CONNECT {target}: {e}"))?;
        if n == 0 {
            return Err(format!("closed the connection on CONNECT {target}"));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_CONNECT_HEAD {
            return Err(format!("answer to CONNECT {target} is too large"));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("").trim();
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if status_line.starts_with("HTTP/1.") && code.starts_with('2') && code.len() == 3 {
        Ok(())
    } else {
        let shown: String = status_line.chars().take(120).collect();
        Err(format!("refused CONNECT {target}: {shown}"))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// A connection made by [`Connector`].
pub(crate) enum Stream {
    /// Plain TCP to the endpoint, or to an HTTP proxy (`via_proxy`: requests go in absolute
    /// form).
    Plain { tcp: TcpStream, via_proxy: bool },
    /// TLS to the endpoint (directly or through a CONNECT tunnel).
    Tls(Box<tls::TlsStream>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain { via_proxy, .. } => Connected::new().proxy(*via_proxy),
            Stream::Tls(_) => Connected::new(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain { tcp, .. } => tcp.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot fake proxy: records the request head, answers `answer`.
    async fn fake_proxy(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (addr, h)
    }

    fn via(addr: &str) -> Connector {
        let a = addr.to_owned();
        let proxy = ProxyConfig::from_lookup(&move |k| {
            (k == "HTTPS_PROXY").then(|| format!("http://user:pw@{a}"))
        })
        .unwrap();
        Connector::new(
            Duration::from_secs(2),
            true,
            Tls::new(false, None).unwrap(),
            proxy,
        )
    }

    #[tokio::test]
    async fn https_goes_through_a_connect_tunnel_with_proxy_auth() {
        let (addr, seen) = fake_proxy("HTTP/1.1 403 Forbidden\r\n\r\n").await;
        let err = via(&addr)
            .connect("https://bucket.s3.example.com:8443/k".parse().unwrap())
            .await
            .err()
            .expect("a refused CONNECT fails the connection");
        let head = seen.await.unwrap();
        assert!(
            head.starts_with("CONNECT bucket.s3.example.com:8443 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Proxy-Authorization: Basic dXNlcjpwdw=="),
            "{head}"
        );
        let e = err.to_string();
        assert!(
            e.contains("403") && e.contains(&addr) && !e.contains("dXNlcjpwdw"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_silent_proxy_times_out_within_the_connect_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let _hold = tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let t = std::time::Instant::now();
        let e = via(&addr)
            .connect("https://s3.example.com/".parse().unwrap())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(t.elapsed() < Duration::from_secs(5), "{e}");
        assert!(e.contains("no answer to CONNECT"), "{e}");
    }
}
