//! Web identity (EKS IRSA and other OIDC federation): a token file plus a role ARN, exchanged
//! with STS `AssumeRoleWithWebIdentity`. The token file is re-read on every attempt because
//! the kubelet rotates it.

use std::time::Duration;

use rusoto_credential::AwsCredentials;

use super::chain::{Chain, Found, SourceError};
use super::sts;

/// Longest token STS accepts.
const MAX_TOKEN: usize = 20_000;

/// The environment form: `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, optional
/// `AWS_ROLE_SESSION_NAME`. A token file without a role is a configuration error (as in the Go
/// SDKs), not a reason to look further.
pub(crate) async fn from_env(chain: &Chain) -> Result<Found, SourceError> {
    let Some(file) = chain.vars.get("AWS_WEB_IDENTITY_TOKEN_FILE") else {
        return Ok(Found::Absent(
            "AWS_WEB_IDENTITY_TOKEN_FILE is not set".into(),
        ));
    };
    let source = format!("web identity (AWS_WEB_IDENTITY_TOKEN_FILE={file})");
    let Some(role) = chain.vars.get("AWS_ROLE_ARN") else {
        return Err(SourceError::new(source, "AWS_ROLE_ARN is not set"));
    };
    let session = chain.vars.get("AWS_ROLE_SESSION_NAME");
    fetch(chain, &source, file, role, session)
        .await
        .map(Found::Creds)
}

/// Reads the token file: trimmed, non-empty, within STS's size limit.
async fn read_token(file: &str) -> Result<String, String> {
    let raw = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| format!("cannot read the token file {file}: {e}"))?;
    let token = raw.trim();
    if token.is_empty() {
        return Err(format!("the token file {file} is empty"));
    }
    if token.len() > MAX_TOKEN {
        return Err(format!(
            "the token in {file} is longer than {MAX_TOKEN} bytes"
        ));
    }
    Ok(token.to_owned())
}

/// Exchanges the token of `file` for credentials of `role`, retrying transient STS errors
/// with back-off and a fresh read of the file each time. Used by the profile source too.
pub(crate) async fn fetch(
    chain: &Chain,
    source: &str,
    file: &str,
    role: &str,
    session: Option<&str>,
) -> Result<AwsCredentials, SourceError> {
    let err = |reason: String| SourceError::new(source, reason);
    let session = match session {
        Some(s) => {
            sts::check_session_name(s).map_err(err)?;
            s.to_owned()
        }
        None => sts::default_session_name(),
    };
    let target = sts::target(&chain.vars, &chain.opts.region);
    let attempts = chain.opts.sts_attempts.max(1);
    let mut backoff = chain.opts.retry_base;
    for attempt in 1..=attempts {
        let token = read_token(file).await.map_err(err)?;
        match sts::assume_role_with_web_identity(chain, &target, role, &session, &token).await {
            Ok(c) => return Ok(c),
            Err(f) if f.transient && attempt < attempts => {
                tracing::warn!(
                    source,
                    attempt,
                    error = %f.message,
                    "AssumeRoleWithWebIdentity failed, retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(20));
            }
            Err(f) => {
                return Err(err(format!(
                    "AssumeRoleWithWebIdentity for {role} at {} failed: {}",
                    target.endpoint, f.message
                )))
            }
        }
    }
    unreachable_attempts(source)
}

/// The loop above returns on its last attempt; this keeps the function total without a panic.
fn unreachable_attempts(source: &str) -> Result<AwsCredentials, SourceError> {
    Err(SourceError::new(source, "no attempt was made"))
}
