//! EC2 instance metadata (IMDS) credentials, IMDSv2 first: `PUT /latest/api/token` with a TTL
//! header, then every GET carries the token. IMDSv1 (no token) is used only where the SDKs
//! allow it: the token request was refused with 403/404/405 and `AWS_EC2_METADATA_V1_DISABLED`
//! is not `true`. A token request that times out is an error, not a fallback: an instance that
//! requires tokens would only time out again, and a clear error beats a silent v1 attempt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::{Body, Method, Request};
use tokio::sync::Mutex;

use super::chain::{Chain, Found, SourceError};
use super::http::{excerpt, Answer, SendError};
use super::json;

const TOKEN_PATH: &str = "/latest/api/token";
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

/// A token and when to stop using it.
struct Token {
    value: String,
    renew_at: Instant,
}

/// The IMDS client state kept between lookups: the session token and whether the instance
/// refused tokens (then v1 for the rest of the driver's life, as in the Go SDKs).
pub(crate) struct Imds {
    token: Mutex<Option<Token>>,
    v1: AtomicBool,
}

/// Why a step failed: the service is not there at all (the chain goes on), or it failed.
enum Fail {
    Unreachable(String),
    Error(String),
}

impl Imds {
    /// A client without a token yet.
    pub(crate) fn new() -> Self {
        Imds {
            token: Mutex::new(None),
            v1: AtomicBool::new(false),
        }
    }

    /// The base URL: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the IPv4 or IPv6 address of
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`.
    fn endpoint(chain: &Chain) -> Result<String, String> {
        if let Some(e) = chain.vars.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            let url = url::Url::parse(e)
                .map_err(|err| format!("AWS_EC2_METADATA_SERVICE_ENDPOINT {e:?}: {err}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT {e:?} is not an http(s) URL"
                ));
            }
            return Ok(e.trim_end_matches('/').to_owned());
        }
        match chain.vars.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
            None => Ok("http://169.254.169.254".into()),
            Some(m) if m.eq_ignore_ascii_case("ipv4") => Ok("http://169.254.169.254".into()),
            Some(m) if m.eq_ignore_ascii_case("ipv6") => Ok("http://[fd00:ec2::254]".into()),
            Some(m) => Err(format!(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE {m:?} is not IPv4 or IPv6"
            )),
        }
    }

    /// Instance-role credentials, or absent when IMDS is disabled, unreachable, or the
    /// instance has no role.
    pub(crate) async fn credentials(&self, chain: &Chain) -> Result<Found, SourceError> {
        if chain.vars.is_true("AWS_EC2_METADATA_DISABLED") {
            return Ok(Found::Absent("AWS_EC2_METADATA_DISABLED=true".into()));
        }
        let base = Self::endpoint(chain).map_err(|e| SourceError::new("instance metadata", e))?;
        let source = format!("instance metadata at {base}");
        let err = |reason: String| SourceError::new(&source, reason);
        let roles = match self.get(chain, &base, ROLE_PATH).await {
            Ok(a) if a.status == 404 => {
                return Ok(Found::Absent(format!(
                    "{base} has no instance profile (role list: HTTP 404)"
                )))
            }
            Ok(a) if a.status == 200 => a,
            Ok(a) => {
                return Err(err(format!(
                    "role list: HTTP {}: {}",
                    a.status,
                    excerpt(&a.body)
                )))
            }
            Err(Fail::Unreachable(why)) => {
                return Ok(Found::Absent(format!("{base} is not reachable ({why})")))
            }
            Err(Fail::Error(e)) => return Err(err(e)),
        };
        let text = String::from_utf8_lossy(&roles.body);
        let Some(role) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
            return Ok(Found::Absent(format!("{base} lists no instance role")));
        };
        if role.contains(['/', '?', '#']) {
            return Err(err(format!("role name {role:?} is not a path segment")));
        }
        let path = format!("{ROLE_PATH}{role}");
        match self.get(chain, &base, &path).await {
            Ok(a) if a.status == 200 => json::credentials(&a.body, false)
                .map(Found::Creds)
                .map_err(|e| err(format!("role {role}: unreadable answer: {e}"))),
            Ok(a) => Err(err(format!("role {role}: HTTP {}", a.status))),
            Err(Fail::Unreachable(why)) | Err(Fail::Error(why)) => {
                Err(err(format!("role {role}: {why}")))
            }
        }
    }

    /// The current token: a cached one, a new one, or `None` for IMDSv1.
    async fn token(&self, chain: &Chain, base: &str) -> Result<Option<String>, Fail> {
        if self.v1.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(Some(t.value.clone()));
            }
        }
        let http = chain
            .http("instance metadata")
            .map_err(|e| Fail::Error(e.reason))?;
        let ttl = chain.opts.imds_token_ttl.as_secs().clamp(1, 21600);
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("{base}{TOKEN_PATH}"))
            .header(TTL_HEADER, ttl.to_string())
            .body(Body::empty())
            .map_err(|e| Fail::Error(format!("token request: {e}")))?;
        let answer = match http.send(req, chain.opts.imds_timeout).await {
            Ok(a) => a,
            Err(SendError::Connect(e)) => return Err(Fail::Unreachable(e)),
            Err(SendError::TimedOut(t)) => {
                return Err(Fail::Error(format!(
                    "token request (PUT {TOKEN_PATH}) got no answer within {t:?} \
                     (in a container, the instance's metadata hop limit may need to be 2)"
                )))
            }
            Err(SendError::Other(e)) => return Err(Fail::Error(format!("token request: {e}"))),
        };
        match answer.status {
            200 => {}
            403..=405 => {
                if chain.vars.is_true("AWS_EC2_METADATA_V1_DISABLED") {
                    return Err(Fail::Error(format!(
                        "token request refused (HTTP {}) and AWS_EC2_METADATA_V1_DISABLED=true \
                         forbids IMDSv1",
                        answer.status
                    )));
                }
                tracing::warn!(
                    status = answer.status,
                    "instance metadata refused a session token; falling back to IMDSv1"
                );
                self.v1.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            s => return Err(Fail::Error(format!("token request: HTTP {s}"))),
        }
        let value = String::from_utf8_lossy(&answer.body).trim().to_owned();
        if value.is_empty() || value.contains(['\r', '\n']) {
            return Err(Fail::Error(
                "token request: unusable token in the answer".into(),
            ));
        }
        // The granted TTL; an endpoint that does not echo it gets the one we asked for.
        let granted = answer
            .headers
            .get(TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(ttl)
            .max(1);
        let lifetime = Duration::from_secs(granted);
        // Renew 2 minutes early (a quarter of the lifetime for short tokens).
        let early = Duration::from_secs(120).min(lifetime / 4);
        *guard = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime - early,
        });
        Ok(Some(value))
    }

    /// A GET with the token; retries 5xx and a 401 (stale token, fetched anew), never a
    /// timeout.
    async fn get(&self, chain: &Chain, base: &str, path: &str) -> Result<Answer, Fail> {
        let http = chain
            .http("instance metadata")
            .map_err(|e| Fail::Error(e.reason))?;
        let attempts = chain.opts.imds_attempts.max(1);
        let mut last = String::new();
        for _ in 0..attempts {
            let token = self.token(chain, base).await?;
            let mut req = Request::builder()
                .method(Method::GET)
                .uri(format!("{base}{path}"));
            if let Some(t) = &token {
                req = req.header(TOKEN_HEADER, t.as_str());
            }
            let req = req
                .body(Body::empty())
                .map_err(|e| Fail::Error(format!("GET {path}: {e}")))?;
            match http.send(req, chain.opts.imds_timeout).await {
                Ok(a) if a.status == 401 && token.is_some() => {
                    *self.token.lock().await = None;
                    last = format!("GET {path}: HTTP 401 (token refused)");
                }
                Ok(a) if a.status >= 500 => last = format!("GET {path}: HTTP {}", a.status),
                Ok(a) => return Ok(a),
                Err(SendError::Connect(e)) => return Err(Fail::Unreachable(e)),
                Err(e) => return Err(Fail::Error(format!("GET {path}: {e}"))),
            }
        }
        Err(Fail::Error(format!("{last} (after {attempts} attempts)")))
    }
}
