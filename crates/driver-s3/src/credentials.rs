//! Where the driver's AWS credentials come from, and a provider that hands them to the signers.
//!
//! Static keys from the configuration win when both `accesskey` and `secretkey` are non-empty
//! (as in distribution v3); otherwise the AWS SDKs' default chain is walked (see
//! [`chain`](self::chain): environment, web identity, profile, container endpoint, instance
//! metadata), and its answer cached until shortly before it expires. Refreshes are single
//! flight; a failed refresh is never cached. Secrets never reach `Debug`, logs or error
//! messages.

mod chain;
mod container;
mod env;
mod http;
mod imds;
mod json;
mod process;
mod profile;
mod sts;
#[cfg(test)]
mod tests_sources;
mod web_identity;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusoto_credential::{AwsCredentials, CredentialsError};

pub(crate) use chain::{Chain, Options};
pub(crate) use env::Vars;

/// The credentials the configuration asks for.
///
/// `Debug` shows at most the first four characters of the access key id and never the secret
/// key or session token.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Keys given in the configuration (`accesskey`, `secretkey`, optional `sessiontoken`).
    Static {
        /// The access key id.
        access_key: String,
        /// The secret access key.
        secret_key: String,
        /// A session token for temporary credentials (sent as `x-amz-security-token`).
        session_token: Option<String>,
    },
    /// The AWS SDKs' default chain, read from the process environment when the driver is
    /// built: environment keys, web identity, shared profile, container endpoint, EC2 instance
    /// metadata (docs/aws.md).
    Chain,
}

/// Shows a recognisable prefix of an access key id so an operator can tell keys apart in a log
/// without the log carrying the whole id.
fn key_hint(access_key: &str) -> String {
    let prefix: String = access_key.chars().take(4).collect();
    format!("{prefix}…")
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Static {
                access_key,
                session_token,
                ..
            } => f
                .debug_struct("Static")
                .field("access_key", &key_hint(access_key))
                .field("secret_key", &"<redacted>")
                .field(
                    "session_token",
                    &session_token.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Credentials::Chain => f.write_str("Chain"),
        }
    }
}

/// Refresh chain credentials this long before they expire (at most half their lifetime), so a
/// presigned URL made from them still has a useful lifetime and a request signed with them
/// does not race the expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Credentials without an expiry (environment, profile keys) are looked up again after this,
/// so an edited credentials file is seen without a restart.
const NO_EXPIRY_REUSE: Duration = Duration::from_secs(15 * 60);

/// After a failed refresh, still-valid credentials are served for this long before the next
/// attempt, so an outage of the source does not add its time-out to every request.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Cached chain credentials and when to look again.
struct Cached {
    creds: Arc<AwsCredentials>,
    refresh_at: Instant,
    retry_after: Option<Instant>,
}

impl Cached {
    fn new(creds: AwsCredentials) -> Self {
        let now = Instant::now();
        let refresh_at = match time_to_expiry(&creds) {
            None => now + NO_EXPIRY_REUSE,
            Some(left) => now + left - REFRESH_MARGIN.min(left / 2),
        };
        Cached {
            creds: Arc::new(creds),
            refresh_at,
            retry_after: None,
        }
    }

    /// The credentials, if they may be used without asking the chain.
    fn usable(&self, now: Instant) -> Option<Arc<AwsCredentials>> {
        let backing_off = self.retry_after.is_some_and(|t| now < t) && !is_expired(&self.creds);
        (now < self.refresh_at || backing_off).then(|| Arc::clone(&self.creds))
    }
}

fn is_expired(c: &AwsCredentials) -> bool {
    c.expires_at().is_some_and(|at| at <= Utc::now())
}

/// The chain with its cache. A refresh holds `flight`, so concurrent requests wait for one
/// lookup instead of starting their own.
pub(crate) struct ChainCache {
    chain: Chain,
    cached: std::sync::Mutex<Option<Cached>>,
    flight: tokio::sync::Mutex<()>,
}

impl ChainCache {
    /// A cache over `chain`, empty.
    pub(crate) fn new(chain: Chain) -> Self {
        ChainCache {
            chain,
            cached: std::sync::Mutex::new(None),
            flight: tokio::sync::Mutex::new(()),
        }
    }

    fn usable(&self) -> Option<Arc<AwsCredentials>> {
        let guard = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().and_then(|c| c.usable(Instant::now()))
    }

    /// Cached credentials, or a fresh lookup. When the lookup fails and the cached credentials
    /// have not expired yet, they are served (and the lookup retried a few seconds later);
    /// otherwise the failure is returned and nothing is cached.
    pub(crate) async fn credentials(&self) -> Result<Arc<AwsCredentials>, CredentialsError> {
        if let Some(c) = self.usable() {
            return Ok(c);
        }
        let _flight = self.flight.lock().await;
        if let Some(c) = self.usable() {
            return Ok(c); // another request refreshed while this one waited
        }
        match self.chain.resolve().await {
            Ok((creds, source)) => {
                tracing::debug!(
                    source,
                    access_key = %key_hint(creds.aws_access_key_id()),
                    expires_at = ?creds.expires_at(),
                    "s3aws: fetched credentials"
                );
                let cached = Cached::new(creds);
                let out = Arc::clone(&cached.creds);
                *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(cached);
                Ok(out)
            }
            Err(e) => {
                let mut guard = self.cached.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(old) = guard.as_mut().filter(|c| !is_expired(&c.creds)) {
                    tracing::warn!(
                        error = %e,
                        expires_at = ?old.creds.expires_at(),
                        "s3aws: credential refresh failed; using the current credentials until \
                         they expire"
                    );
                    old.retry_after = Some(Instant::now() + RETRY_AFTER_FAILURE);
                    return Ok(Arc::clone(&old.creds));
                }
                Err(CredentialsError::new(e))
            }
        }
    }
}

/// Hands out signing credentials for [`Credentials`].
pub(crate) enum CredentialsProvider {
    /// Fixed keys (shared: every request borrows them, none copies the secret).
    Static(Arc<AwsCredentials>),
    /// The default chain (boxed: it is large) with its cache.
    Chain(Box<ChainCache>),
}

impl fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsProvider::Static(c) => f
                .debug_tuple("Static")
                .field(&key_hint(c.aws_access_key_id()))
                .finish(),
            CredentialsProvider::Chain(_) => f.write_str("Chain"),
        }
    }
}

impl CredentialsProvider {
    /// A provider for `credentials`; the chain's STS calls default to us-east-1.
    #[cfg(test)]
    pub(crate) fn new(credentials: &Credentials) -> Self {
        Self::for_region(credentials, "us-east-1")
    }

    /// A provider for `credentials` of a driver in `region` (the chain's default STS region).
    /// The chain reads the process environment now.
    pub(crate) fn for_region(credentials: &Credentials, region: &str) -> Self {
        match credentials {
            Credentials::Static {
                access_key,
                secret_key,
                session_token,
            } => CredentialsProvider::Static(Arc::new(AwsCredentials::new(
                access_key.clone(),
                secret_key.clone(),
                session_token.clone(),
                None,
            ))),
            Credentials::Chain => CredentialsProvider::Chain(Box::new(ChainCache::new(
                Chain::new(Vars::from_process(), Options::new(region)),
            ))),
        }
    }

    /// Current credentials. Chain credentials are reused until [`REFRESH_MARGIN`] before their
    /// expiry. The error names the failing source and why, never a secret. Shared, so handing
    /// them to each request copies no key material.
    pub(crate) async fn credentials(&self) -> Result<Arc<AwsCredentials>, CredentialsError> {
        match self {
            CredentialsProvider::Static(c) => Ok(Arc::clone(c)),
            CredentialsProvider::Chain(cache) => cache.credentials().await,
        }
    }
}

/// Whether `c` expires less than `margin` from now (never, for credentials without expiry).
#[cfg(test)]
fn expires_within(c: &AwsCredentials, margin: Duration) -> bool {
    match c.expires_at() {
        None => false,
        Some(at) => {
            let left = at.signed_duration_since(Utc::now());
            left.to_std().map(|d| d < margin).unwrap_or(true)
        }
    }
}

/// Time left before `c` expires, `None` for credentials that do not expire. Already-expired
/// credentials report zero.
pub(crate) fn time_to_expiry(c: &AwsCredentials) -> Option<Duration> {
    c.expires_at().map(|at| {
        at.signed_duration_since(Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "FQoGZXIvYXdzEXAMPLETOKENvalue";

    #[test]
    fn debug_redacts_secret_and_token() {
        let c = Credentials::Static {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: SECRET.into(),
            session_token: Some(TOKEN.into()),
        };
        for s in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!s.contains(SECRET), "{s}");
            assert!(!s.contains(TOKEN), "{s}");
            assert!(!s.contains("AKIAIOSFODNN7EXAMPLE"), "{s}");
            assert!(s.contains("<redacted>") && s.contains("AKIA…"), "{s}");
        }
        let p = CredentialsProvider::new(&c);
        let s = format!("{p:?}");
        assert!(!s.contains(SECRET) && !s.contains(TOKEN), "{s}");
        assert_eq!(format!("{:?}", Credentials::Chain), "Chain");
    }

    #[tokio::test]
    async fn static_provider_returns_the_configured_keys() {
        let p = CredentialsProvider::new(&Credentials::Static {
            access_key: "AK".into(),
            secret_key: "SK".into(),
            session_token: Some("T".into()),
        });
        let c = p.credentials().await.unwrap();
        assert_eq!(c.aws_access_key_id(), "AK");
        assert_eq!(c.aws_secret_access_key(), "SK");
        assert_eq!(c.token().as_deref(), Some("T"));
        assert_eq!(time_to_expiry(&c), None);
    }

    #[test]
    fn expiry_helpers() {
        let soon = AwsCredentials::new(
            "a",
            "b",
            None,
            Some(Utc::now() + chrono::Duration::seconds(60)),
        );
        assert!(expires_within(&soon, REFRESH_MARGIN));
        let left = time_to_expiry(&soon).unwrap();
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
        let later = AwsCredentials::new(
            "a",
            "b",
            None,
            Some(Utc::now() + chrono::Duration::hours(1)),
        );
        assert!(!expires_within(&later, REFRESH_MARGIN));
        let past = AwsCredentials::new(
            "a",
            "b",
            None,
            Some(Utc::now() - chrono::Duration::hours(1)),
        );
        assert!(expires_within(&past, REFRESH_MARGIN));
        assert_eq!(time_to_expiry(&past), Some(Duration::ZERO));
    }

    /// The only test that touches `AWS_*` variables (nothing else in this crate reads them).
    #[tokio::test]
    async fn chain_reads_environment_and_caches() {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFROMENV");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "SECRETFROMENV");
        std::env::set_var("AWS_SESSION_TOKEN", "TOKENFROMENV");
        let p = CredentialsProvider::new(&Credentials::Chain);
        let c = p.credentials().await.expect("environment credentials");
        assert_eq!(c.aws_access_key_id(), "AKIDFROMENV");
        assert_eq!(c.aws_secret_access_key(), "SECRETFROMENV");
        assert_eq!(c.token().as_deref(), Some("TOKENFROMENV"));
        // Cached: a changed environment is not seen until the cached keys near expiry.
        std::env::set_var("AWS_ACCESS_KEY_ID", "OTHER");
        let again = p.credentials().await.expect("cached credentials");
        assert_eq!(again.aws_access_key_id(), "AKIDFROMENV");
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            std::env::remove_var(k);
        }
    }
}
