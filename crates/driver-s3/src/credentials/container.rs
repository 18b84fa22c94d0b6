//! Container credentials: ECS task roles (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` against
//! 169.254.170.2) and EKS Pod Identity or any local agent (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
//! with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
//!
//! A full URI over plain http must point at a loopback or the ECS/EKS link-local agent
//! addresses (every address a host name resolves to included), as in the SDKs: the token and
//! the credentials must not cross a network in clear text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hyper::{Body, Method, Request};
use rusoto_credential::AwsCredentials;

use super::chain::{Chain, Found, SourceError};
use super::http::{scrub, SendError};
use super::json;

/// Whether plain http may go to `ip`.
fn allowed_ip(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2))
        || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23))
}

/// Validates a full URI: https anywhere, http only to allowed hosts.
async fn check_full_uri(raw: &str, timeout: Duration) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => return Ok(url),
        "http" => {}
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let ips: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(timeout, lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                Ok(Err(e)) => return Err(format!("cannot resolve {name}: {e}")),
                Err(_) => return Err(format!("resolving {name} took longer than {timeout:?}")),
            }
        }
        None => return Err("no host".into()),
    };
    if ips.is_empty() || !ips.iter().all(|ip| allowed_ip(*ip)) {
        return Err(format!(
            "plain http is only allowed to loopback, 169.254.170.2, 169.254.170.23 or \
             fd00:ec2::23 (host resolves to {ips:?}); use https"
        ));
    }
    Ok(url)
}

/// The URL without query or credentials, for messages.
fn shown(url: &url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

/// The authorization token: the file (re-read on every fetch: Pod Identity rotates it) before
/// the variable; a trailing newline is dropped, any other line break is refused.
async fn authorization(chain: &Chain) -> Result<Option<String>, String> {
    let token = match chain.vars.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(file) => {
            let raw = tokio::fs::read_to_string(file).await.map_err(|e| {
                format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}: {e}")
            })?;
            raw.trim_end_matches(['\r', '\n']).to_owned()
        }
        None => match chain.vars.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            Some(t) => t.to_owned(),
            None => return Ok(None),
        },
    };
    if token.contains(['\r', '\n']) {
        return Err("the authorization token contains a line break".into());
    }
    if token.is_empty() {
        return Err("the authorization token is empty".into());
    }
    Ok(Some(token))
}

/// Container credentials if either URI variable is set (the relative one wins, as in the
/// current SDKs).
pub(crate) async fn from_env(chain: &Chain) -> Result<Found, SourceError> {
    let vars = &chain.vars;
    let (source, url) = if let Some(rel) = vars.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let source = "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)".to_owned();
        let joined = format!(
            "{}/{}",
            chain.opts.container_relative_base.trim_end_matches('/'),
            rel.trim_start_matches('/')
        );
        let url = url::Url::parse(&joined)
            .map_err(|e| SourceError::new(&source, format!("not a URL path: {e}")))?;
        (source, url)
    } else if let Some(full) = vars.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let source = "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)".to_owned();
        let url = check_full_uri(full, chain.opts.container_timeout)
            .await
            .map_err(|e| SourceError::new(&source, e))?;
        (source, url)
    } else {
        return Ok(Found::Absent(
            "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor \
             AWS_CONTAINER_CREDENTIALS_FULL_URI is set"
                .into(),
        ));
    };
    let source = format!("{source} at {}", shown(&url));
    fetch(chain, &source, &url).await.map(Found::Creds)
}

async fn fetch(chain: &Chain, source: &str, url: &url::Url) -> Result<AwsCredentials, SourceError> {
    let err = |reason: String| SourceError::new(source, reason);
    let http = chain.http(source)?;
    let attempts = chain.opts.container_attempts.max(1);
    let mut backoff = chain.opts.retry_base;
    let mut last = String::new();
    for attempt in 1..=attempts {
        let token = authorization(chain).await.map_err(err)?;
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header("accept", "application/json");
        if let Some(t) = &token {
            req = req.header("authorization", t.as_str());
        }
        let req = req
            .body(Body::empty())
            .map_err(|_| err("the authorization token is not a valid header value".into()))?;
        let secrets: Vec<&str> = token.as_deref().into_iter().collect();
        match http.send(req, chain.opts.container_timeout).await {
            Ok(a) if a.status == 200 => {
                return json::credentials(&a.body, false)
                    .map_err(|e| err(format!("unreadable answer: {e}")))
            }
            Ok(a) if a.status >= 500 => {
                last = format!("HTTP {}{}", a.status, json::error_code(&a.body, &secrets));
            }
            Ok(a) => {
                return Err(err(format!(
                    "HTTP {}{}",
                    a.status,
                    json::error_code(&a.body, &secrets)
                )))
            }
            Err(e @ (SendError::Connect(_) | SendError::TimedOut(_))) => {
                last = scrub(&e.to_string(), &secrets);
            }
            Err(e) => last = scrub(&e.to_string(), &secrets),
        }
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(err(format!("{last} (after {attempts} attempts)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_uri_host_rules() {
        let t = Duration::from_secs(2);
        for ok in [
            "http://127.0.0.1:8080/creds",
            "http://127.0.0.2/creds",
            "http://[::1]/x",
            "http://169.254.170.2/v2/credentials/abc",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://localhost:1/x",
            "https://credentials.example.com/x",
        ] {
            assert!(check_full_uri(ok, t).await.is_ok(), "{ok} must be allowed");
        }
        for bad in [
            "http://10.0.0.1/creds",
            "http://169.254.169.254/latest",
            "http://192.0.2.10/x",
            "ftp://127.0.0.1/x",
            "not a url",
        ] {
            assert!(
                check_full_uri(bad, t).await.is_err(),
                "{bad} must be refused"
            );
        }
    }
}
