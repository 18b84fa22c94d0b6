//! Where the driver's AWS credentials come from, and a provider that hands them to the signers.
//!
//! Static keys from the configuration win when both `accesskey` and `secretkey` are non-empty
//! (as in distribution v3); otherwise rusoto's provider chain (environment, shared profile,
//! container role, instance metadata) is asked, and its answer cached until shortly before it
//! expires. Secrets never reach `Debug`, logs or error messages.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rusoto_credential::{AwsCredentials, ChainProvider, CredentialsError, ProvideAwsCredentials};
use tokio::sync::Mutex;

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
    /// rusoto's default chain: environment variables, shared profile, container (ECS) role,
    /// EC2 instance metadata.
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

/// Refresh chain credentials this long before they expire, so a presigned URL made from them
/// still has a useful lifetime and a request signed with them does not race the expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Hands out signing credentials for [`Credentials`].
///
/// The chain variant caches successful answers only: rusoto's `AutoRefreshingProvider` caches a
/// failed lookup forever, so one instance-metadata hiccup at startup would disable the driver
/// until restart. Here a failure is returned to the caller and the next request asks again.
pub(crate) enum CredentialsProvider {
    /// Fixed keys (shared: every request borrows them, none copies the secret).
    Static(Arc<AwsCredentials>),
    /// rusoto's chain (boxed: it is large) with a success-only cache.
    Chain {
        chain: Box<ChainProvider>,
        cached: Mutex<Option<Arc<AwsCredentials>>>,
    },
}

impl fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsProvider::Static(c) => f
                .debug_tuple("Static")
                .field(&key_hint(c.aws_access_key_id()))
                .finish(),
            CredentialsProvider::Chain { .. } => f.write_str("Chain"),
        }
    }
}

impl CredentialsProvider {
    /// A provider for `credentials`.
    pub(crate) fn new(credentials: &Credentials) -> Self {
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
            Credentials::Chain => CredentialsProvider::Chain {
                chain: Box::new(ChainProvider::new()),
                cached: Mutex::new(None),
            },
        }
    }

    /// Current credentials. Chain credentials are reused until [`REFRESH_MARGIN`] before their
    /// expiry. The error message is rusoto's and names the sources it tried, not secrets.
    /// Shared, so handing them to each request copies no key material.
    pub(crate) async fn credentials(&self) -> Result<Arc<AwsCredentials>, CredentialsError> {
        match self {
            CredentialsProvider::Static(c) => Ok(Arc::clone(c)),
            CredentialsProvider::Chain { chain, cached } => {
                let mut guard = cached.lock().await;
                if let Some(c) = guard.as_ref() {
                    if !expires_within(c, REFRESH_MARGIN) {
                        return Ok(Arc::clone(c));
                    }
                }
                let fresh = Arc::new(chain.credentials().await?);
                tracing::debug!(
                    expires_at = ?fresh.expires_at(),
                    "s3aws: fetched credentials from the provider chain"
                );
                *guard = Some(Arc::clone(&fresh));
                Ok(fresh)
            }
        }
    }
}

/// Whether `c` expires less than `margin` from now (never, for credentials without expiry).
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
