//! The AWS SDKs' default credential chain, in the order of the Go SDKs (distribution's):
//! environment keys → web identity (env) → shared profile → container endpoint → instance
//! metadata. (Static keys from the configuration are handled before the chain.)
//!
//! A source that is not configured or not present ("absent") passes to the next; a source that
//! is configured but fails stops the chain with its error, as in the SDKs: silently falling
//! through to, say, instance metadata after a broken web-identity set-up would hand out the
//! wrong identity.

use std::fmt;
use std::time::Duration;

use rusoto_credential::AwsCredentials;

use super::env::{self, Vars};
use super::http::Http;
use super::imds::Imds;
use super::{container, profile, web_identity};

/// What one source found.
pub(crate) enum Found {
    /// Credentials.
    Creds(AwsCredentials),
    /// Not configured or not present here; the reason goes into the final "no credentials"
    /// message.
    Absent(String),
}

/// A configured source that failed. Names the source and the reason, never a secret.
#[derive(Debug, Clone)]
pub(crate) struct SourceError {
    /// The source, with the variable or file that selected it.
    pub(crate) source: String,
    /// What went wrong.
    pub(crate) reason: String,
}

impl SourceError {
    /// An error of `source` for `reason`.
    pub(crate) fn new(source: impl Into<String>, reason: impl Into<String>) -> Self {
        SourceError {
            source: source.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// Time limits, attempts and fixed addresses of the network sources. The defaults follow the
/// SDKs; tests shorten them and point the fixed addresses at loopback.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The driver's region: the STS region when neither `AWS_REGION` nor `AWS_DEFAULT_REGION`
    /// is set.
    pub(crate) region: String,
    /// One instance-metadata exchange (connection included). SDKs use 1 s: IMDS is local.
    pub(crate) imds_timeout: Duration,
    /// Attempts of one metadata GET on 5xx/401 (timeouts are not retried: an absent or hung
    /// IMDS must fail fast).
    pub(crate) imds_attempts: u32,
    /// Lifetime asked for an IMDSv2 token (`X-aws-ec2-metadata-token-ttl-seconds`).
    pub(crate) imds_token_ttl: Duration,
    /// One container-endpoint exchange.
    pub(crate) container_timeout: Duration,
    /// Attempts against the container endpoint (connection errors, timeouts, 5xx).
    pub(crate) container_attempts: u32,
    /// Base of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS: `http://169.254.170.2`).
    pub(crate) container_relative_base: String,
    /// One STS call.
    pub(crate) sts_timeout: Duration,
    /// Attempts of one STS call on transient errors.
    pub(crate) sts_attempts: u32,
    /// First back-off between attempts (doubled each time).
    pub(crate) retry_base: Duration,
    /// A `credential_process` command.
    pub(crate) process_timeout: Duration,
}

impl Options {
    /// SDK-like defaults for a driver in `region`.
    pub(crate) fn new(region: &str) -> Self {
        Options {
            region: region.to_owned(),
            imds_timeout: Duration::from_secs(1),
            imds_attempts: 3,
            imds_token_ttl: Duration::from_secs(21600),
            container_timeout: Duration::from_secs(5),
            container_attempts: 3,
            container_relative_base: "http://169.254.170.2".to_owned(),
            sts_timeout: Duration::from_secs(10),
            sts_attempts: 3,
            retry_base: Duration::from_millis(500),
            process_timeout: Duration::from_secs(60),
        }
    }
}

/// The chain: environment snapshot, options, and the state that outlives one lookup (the
/// HTTP client, the IMDSv2 token).
pub(crate) struct Chain {
    pub(crate) vars: Vars,
    pub(crate) opts: Options,
    http: Result<Http, String>,
    pub(crate) imds: Imds,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("vars", &self.vars)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// A chain over `vars` with `opts`.
    pub(crate) fn new(vars: Vars, opts: Options) -> Self {
        let connect = opts.imds_timeout.max(Duration::from_secs(2));
        let http = Http::new(connect, &vars);
        Chain {
            vars,
            opts,
            http,
            imds: Imds::new(),
        }
    }

    /// The HTTP client, or why there is none (TLS could not be set up), as an error of `source`.
    pub(crate) fn http(&self, source: &str) -> Result<&Http, SourceError> {
        self.http
            .as_ref()
            .map_err(|e| SourceError::new(source, e.clone()))
    }

    /// Walks the sources in order; the first that has credentials wins. The error names the
    /// failing source, or every source and why it had nothing.
    pub(crate) async fn resolve(&self) -> Result<(AwsCredentials, &'static str), String> {
        let mut absent: Vec<String> = Vec::new();
        macro_rules! step {
            ($name:expr, $found:expr) => {
                match $found {
                    Ok(Found::Creds(c)) => return Ok((c, $name)),
                    Ok(Found::Absent(why)) => absent.push(format!("{}: {why}", $name)),
                    Err(e) => return Err(e.to_string()),
                }
            };
        }
        step!("environment", env::from_env(&self.vars));
        step!("web identity", web_identity::from_env(self).await);
        step!("profile", profile::from_profile(self).await);
        step!("container", container::from_env(self).await);
        step!("instance metadata", self.imds.credentials(self).await);
        Err(format!("no credentials found ({})", absent.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_configured_names_every_source() {
        let vars = Vars::from_pairs(&[
            ("HOME", "/nonexistent-regstore-home"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let chain = Chain::new(vars, Options::new("us-east-1"));
        let e = chain.resolve().await.expect_err("no credentials");
        for name in [
            "environment",
            "web identity",
            "profile",
            "container",
            "instance metadata",
        ] {
            assert!(e.contains(name), "{name} missing in {e}");
        }
    }

    #[tokio::test]
    async fn environment_wins_over_later_sources() {
        let vars = Vars::from_pairs(&[
            ("AWS_ACCESS_KEY_ID", "AKENV"),
            ("AWS_SECRET_ACCESS_KEY", "SKENV"),
            // Would be a hard error if the chain got that far.
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"),
        ]);
        let chain = Chain::new(vars, Options::new("us-east-1"));
        let (c, source) = chain.resolve().await.expect("environment keys");
        assert_eq!((c.aws_access_key_id(), source), ("AKENV", "environment"));
    }
}
