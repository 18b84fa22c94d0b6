//! A small HTTP client for the credential endpoints (instance metadata, container endpoint):
//! every exchange bounded in time and size, TLS verified.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::HttpBody;
use hyper::{Body, Client, HeaderMap, Request};

use super::env::Vars;
use crate::net::proxy::ProxyConfig;
use crate::net::{tls, Connector};

/// Largest answer body read from a credential endpoint; a credentials document is < 4 KiB.
const MAX_BODY: usize = 64 * 1024;

/// An answer: status, headers and the whole (capped) body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Why an exchange got no answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made (nothing listens, no route): the service is not here.
    Connect(String),
    /// No complete answer within the time limit.
    TimedOut(Duration),
    /// Anything else (broken connection, oversized body).
    Other(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::TimedOut(t) => write!(f, "no answer within {t:?}"),
            SendError::Other(e) => f.write_str(e),
        }
    }
}

/// The client. Cheap to share by reference.
pub(crate) struct Http {
    client: Client<Connector, Body>,
    connector: Connector,
}

impl Http {
    /// A client that gives up connecting after `connect_timeout`, with the proxy and CA
    /// bundle settings of `vars` (the S3 client's rules: see [`crate::net`]); TLS always
    /// verified. Fails when a proxy or CA bundle variable is unusable (the error names it).
    pub(crate) fn new(connect_timeout: Duration, vars: &Vars) -> Result<Self, String> {
        let get = |k: &str| vars.get(k).map(str::to_owned);
        let proxy = ProxyConfig::from_lookup(&get)?;
        let tls = tls::Tls::new(false, tls::ca_bundle_from(&get).as_ref())?;
        let connector = Connector::new(connect_timeout, true, tls, proxy);
        // No idle pool: credential fetches are rare, and a pooled connection to an endpoint
        // that went away would only turn into a confusing error.
        let client = Client::builder()
            .pool_max_idle_per_host(0)
            .build::<_, Body>(connector.clone());
        Ok(Http { client, connector })
    }

    /// The connector, for the STS client (same proxy and trust settings).
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Sends `request` and reads the whole answer within `timeout` (connection included).
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
        timeout: Duration,
    ) -> Result<Answer, SendError> {
        let mut request = request;
        if let Some(auth) = self.connector.proxy_authorization(request.uri()) {
            request
                .headers_mut()
                .insert(hyper::header::PROXY_AUTHORIZATION, auth);
        }
        let exchange = async {
            let resp = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    SendError::Connect(e.to_string())
                } else {
                    SendError::Other(e.to_string())
                }
            })?;
            let status = resp.status().as_u16();
            let (parts, mut body) = resp.into_parts();
            let mut buf = BytesMut::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(|e| SendError::Other(format!("reading answer: {e}")))?;
                if buf.len() + chunk.len() > MAX_BODY {
                    return Err(SendError::Other(format!(
                        "answer larger than {MAX_BODY} bytes"
                    )));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Answer {
                status,
                headers: parts.headers,
                body: buf.freeze(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(SendError::TimedOut(timeout)),
        }
    }
}

/// Removes every occurrence of each of `secrets` (of 4 characters or more) from `text`, for
/// messages that quote a remote answer which might echo something we sent.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "<redacted>");
    }
    out
}

/// A short, printable excerpt of an answer body for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    clean.trim().to_owned()
}
