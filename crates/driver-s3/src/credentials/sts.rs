//! STS calls of the chain (rusoto_sts): `AssumeRoleWithWebIdentity` (unsigned, as AWS accepts
//! it) and `AssumeRole` (signed with the previous hop's credentials), with the endpoint
//! conventions of the current SDKs and bounded retries of transient errors.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusoto_core::{Client, Region, RusotoError};

use crate::net::Connector;
use crate::transport::Transport;
use rusoto_credential::{AwsCredentials, StaticProvider};
use rusoto_sts::{
    AssumeRoleError, AssumeRoleRequest, AssumeRoleWithWebIdentityError,
    AssumeRoleWithWebIdentityRequest, Sts, StsClient,
};

use super::chain::Chain;
use super::env::Vars;
use super::http::scrub;

/// Where STS calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The signing region.
    pub(crate) region: String,
    /// Scheme, host and port.
    pub(crate) endpoint: String,
}

/// The STS region and endpoint: region from `AWS_REGION`, `AWS_DEFAULT_REGION`, else the
/// driver's; endpoint from `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL` (unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else the regional endpoint (as the current SDKs
/// default to; the global endpoint is a legacy setting).
pub(crate) fn target(vars: &Vars, driver_region: &str) -> Target {
    let region = vars
        .get("AWS_REGION")
        .or_else(|| vars.get("AWS_DEFAULT_REGION"))
        .unwrap_or(driver_region)
        .to_owned();
    let configured = if vars.is_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
        None
    } else {
        vars.get("AWS_ENDPOINT_URL_STS")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
    };
    let endpoint = match configured {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://sts.{region}.{suffix}")
        }
    };
    Target { region, endpoint }
}

/// A failed STS call: what happened (secrets removed) and whether trying again may help.
#[derive(Debug)]
pub(crate) struct StsFailure {
    pub(crate) message: String,
    pub(crate) transient: bool,
}

/// `Code: Message` of an STS `ErrorResponse` body, or an excerpt when it is not one.
fn code_and_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].trim().to_owned())
    };
    match (field("Code"), field("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => format!("unexpected answer: {}", super::http::excerpt(body)),
    }
}

const THROTTLING: [&str; 4] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// Describes a rusoto error; `transient_service` says which modelled errors are worth retrying.
fn describe<E: std::fmt::Debug>(
    e: RusotoError<E>,
    transient_service: impl Fn(&E) -> bool,
    endpoint: &str,
) -> StsFailure {
    match e {
        RusotoError::Service(s) => StsFailure {
            transient: transient_service(&s),
            message: format!("{s:?}"),
        },
        RusotoError::HttpDispatch(d) => StsFailure {
            message: format!("cannot reach {endpoint}: {d}"),
            transient: true,
        },
        RusotoError::Unknown(r) => {
            let detail = code_and_message(&r.body);
            StsFailure {
                transient: r.status.is_server_error()
                    || THROTTLING.iter().any(|t| detail.starts_with(t)),
                message: format!("HTTP {}: {detail}", r.status.as_u16()),
            }
        }
        RusotoError::ParseError(p) => StsFailure {
            message: format!("unreadable answer: {p}"),
            transient: false,
        },
        RusotoError::Validation(v) => StsFailure {
            message: format!("invalid request: {v}"),
            transient: false,
        },
        RusotoError::Credentials(c) => StsFailure {
            message: format!("signing credentials: {c}"),
            transient: false,
        },
        RusotoError::Blocking => StsFailure {
            message: "blocking call failed".into(),
            transient: false,
        },
    }
}

/// Parses an ISO-8601 `Expiration` (whole or fractional seconds).
pub(crate) fn parse_expiration(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("unreadable Expiration {:?}: {e}", s.trim()))
}

fn region_of(t: &Target) -> Region {
    Region::Custom {
        name: t.region.clone(),
        endpoint: t.endpoint.clone(),
    }
}

fn into_credentials(c: Option<rusoto_sts::Credentials>) -> Result<AwsCredentials, StsFailure> {
    let c = c.ok_or_else(|| StsFailure {
        message: "answer holds no Credentials".into(),
        transient: false,
    })?;
    let expires = parse_expiration(&c.expiration).map_err(|message| StsFailure {
        message,
        transient: false,
    })?;
    Ok(AwsCredentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        Some(expires),
    ))
}

/// The HTTP client of an STS call: the driver's transport (which logs no header) over the
/// chain's connector (proxy and CA bundle as for the other credential endpoints).
fn sts_transport(chain: &Chain) -> Result<Transport<Connector>, StsFailure> {
    let http = chain.http("STS client").map_err(|e| StsFailure {
        message: e.to_string(),
        transient: false,
    })?;
    Ok(Transport::with_connector(
        &hyper::Client::builder(),
        http.connector().clone(),
    ))
}

/// One `AssumeRoleWithWebIdentity` call, unsigned, bounded by the chain's STS time-out.
pub(crate) async fn assume_role_with_web_identity(
    chain: &Chain,
    target: &Target,
    role_arn: &str,
    session_name: &str,
    token: &str,
) -> Result<AwsCredentials, StsFailure> {
    let http = sts_transport(chain)?;
    let client = StsClient::new_with_client(Client::new_not_signing(http), region_of(target));
    let request = AssumeRoleWithWebIdentityRequest {
        role_arn: role_arn.to_owned(),
        role_session_name: session_name.to_owned(),
        web_identity_token: token.to_owned(),
        ..Default::default()
    };
    let answer = bounded(
        chain.opts.sts_timeout,
        &target.endpoint,
        client.assume_role_with_web_identity(request),
    )
    .await?
    .map_err(|e| {
        describe(
            e,
            |s| {
                // IDPCommunicationError is transient by the API's own account; the Go SDKs
                // also retry InvalidIdentityToken (an IdP still publishing its keys).
                matches!(
                    s,
                    AssumeRoleWithWebIdentityError::IDPCommunicationError(_)
                        | AssumeRoleWithWebIdentityError::InvalidIdentityToken(_)
                )
            },
            &target.endpoint,
        )
    })
    .map_err(|mut f| {
        f.message = scrub(&f.message, &[token]);
        f
    })?;
    into_credentials(answer.credentials)
}

/// Optional settings of an `AssumeRole` call from a profile.
#[derive(Debug, Default, Clone)]
pub(crate) struct AssumeRoleExtras {
    pub(crate) external_id: Option<String>,
    pub(crate) duration_seconds: Option<i64>,
}

/// One signed `AssumeRole` call with `base` credentials, bounded by the chain's STS time-out.
pub(crate) async fn assume_role(
    chain: &Chain,
    target: &Target,
    base: &AwsCredentials,
    role_arn: &str,
    session_name: &str,
    extras: &AssumeRoleExtras,
) -> Result<AwsCredentials, StsFailure> {
    let http = sts_transport(chain)?;
    let provider = StaticProvider::new(
        base.aws_access_key_id().to_owned(),
        base.aws_secret_access_key().to_owned(),
        base.token().clone(),
        None,
    );
    let client = StsClient::new_with_client(Client::new_with(provider, http), region_of(target));
    let request = AssumeRoleRequest {
        role_arn: role_arn.to_owned(),
        role_session_name: session_name.to_owned(),
        external_id: extras.external_id.clone(),
        duration_seconds: extras.duration_seconds,
        ..Default::default()
    };
    let answer = bounded(
        chain.opts.sts_timeout,
        &target.endpoint,
        client.assume_role(request),
    )
    .await?
    .map_err(|e| describe(e, |_: &AssumeRoleError| false, &target.endpoint))
    .map_err(|mut f| {
        f.message = scrub(&f.message, &[base.aws_secret_access_key()]);
        f
    })?;
    into_credentials(answer.credentials)
}

async fn bounded<T>(
    limit: Duration,
    endpoint: &str,
    call: impl std::future::Future<Output = T>,
) -> Result<T, StsFailure> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| StsFailure {
            message: format!("no answer from {endpoint} within {limit:?}"),
            transient: true,
        })
}

/// A default session name in STS's alphabet (2–64 of `[A-Za-z0-9_+=,.@-]`).
pub(crate) fn default_session_name() -> String {
    format!("regstore-{}", Utc::now().timestamp_millis())
}

/// Checks a configured session name against STS's rules, so a typo is reported as such.
pub(crate) fn check_session_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if (2..=64).contains(&name.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "role session name {name:?} is invalid (2-64 characters of A-Z a-z 0-9 _+=,.@-)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        let t = target(&Vars::from_pairs(&[]), "eu-west-1");
        assert_eq!(t.endpoint, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(t.region, "eu-west-1");
        let t = target(&Vars::from_pairs(&[("AWS_REGION", "cn-north-1")]), "x");
        assert_eq!(t.endpoint, "https://sts.cn-north-1.amazonaws.com.cn");
        let v = Vars::from_pairs(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:2"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
        ]);
        let t = target(&v, "x");
        assert_eq!(
            (t.endpoint.as_str(), t.region.as_str()),
            ("http://127.0.0.1:2", "us-west-2")
        );
        let v = Vars::from_pairs(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1/")]);
        assert_eq!(target(&v, "r").endpoint, "http://127.0.0.1:1");
        let v = Vars::from_pairs(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
        ]);
        assert_eq!(target(&v, "r").endpoint, "https://sts.r.amazonaws.com");
    }

    #[test]
    fn error_bodies_and_expirations() {
        let body = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                     <Message>Not authorized</Message></Error></ErrorResponse>";
        assert_eq!(code_and_message(body), "AccessDenied: Not authorized");
        assert!(code_and_message(b"<html>oops</html>").contains("oops"));
        assert!(parse_expiration("2026-01-02T03:04:05Z").is_ok());
        assert!(parse_expiration("2026-01-02T03:04:05.123456Z").is_ok());
        assert!(parse_expiration("tomorrow").is_err());
        assert!(check_session_name(&default_session_name()).is_ok());
        assert!(check_session_name("bad name").is_err());
        assert!(check_session_name("x").is_err());
    }
}
