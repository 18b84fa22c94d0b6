//! `loglevel`: distribution's AWS SDK request logging, mapped onto `tracing`.
//!
//! distribution hands `loglevel` to aws-sdk-go, which then prints requests to the registry's
//! log. Here the driver emits the same kinds of records as `tracing` events at `INFO` on the
//! target [`TARGET`], so they show with any subscriber at the default level and can be filtered
//! on their own (`REGSTORE_LOG=regstore_driver_s3::aws=info`). With `off` (the default)
//! nothing is emitted and nothing is formatted.
//!
//! | value | records |
//! |---|---|
//! | `off` | none |
//! | `debug` | one per attempt: operation, method, host, path and query, status, milliseconds |
//! | `debugwithsigning` | `debug` + the signature's algorithm, credential scope and signed header names |
//! | `debugwithhttpbody` | `debug` + the request bodies the driver builds itself (XML, at most 4 KiB) |
//! | `debugwithrequestretries` | `debug` + every retry with its reason and delay |
//! | `debugwithrequesterrors` | `debug` + every failed attempt and every request given up |
//! | `debugwitheventstreambody` | `debug` (the driver uses no S3 event streams) |
//!
//! Never logged: secret keys, session tokens, signatures, the access key id, object data
//! (`PutObject`/`UploadPart` bodies), and header values other than those named above.

use regstore_driver_api::{Error, Parameters, Result, Value};
use rusoto_core::signature::{SignedRequest, SignedRequestPayload};

use crate::error::DRIVER as DRIVER_NAME;

/// The `tracing` target of every record this module emits.
pub const TARGET: &str = "regstore_driver_s3::aws";

/// Largest request body logged by `debugwithhttpbody`.
const MAX_BODY: usize = 4096;

/// A `loglevel` value (distribution's names, matched case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    /// No records (the default; YAML `off`, which YAML reads as `false`, is this too).
    #[default]
    Off,
    /// One record per attempt.
    Debug,
    /// `Debug` plus signing details (no secrets).
    DebugWithSigning,
    /// `Debug` plus the driver's own request bodies.
    DebugWithHttpBody,
    /// `Debug` plus retries.
    DebugWithRequestRetries,
    /// `Debug` plus failed attempts and requests given up.
    DebugWithRequestErrors,
    /// `Debug` (no event streams are used).
    DebugWithEventStreamBody,
}

const NAMES: &[(&str, LogLevel)] = &[
    ("off", LogLevel::Off),
    ("debug", LogLevel::Debug),
    ("debugwithsigning", LogLevel::DebugWithSigning),
    ("debugwithhttpbody", LogLevel::DebugWithHttpBody),
    ("debugwithrequestretries", LogLevel::DebugWithRequestRetries),
    ("debugwithrequesterrors", LogLevel::DebugWithRequestErrors),
    (
        "debugwitheventstreambody",
        LogLevel::DebugWithEventStreamBody,
    ),
];

impl LogLevel {
    /// Reads `loglevel`. Absent, empty, `off` or YAML `false` is [`LogLevel::Off`]. Unlike
    /// distribution, which quietly treats an unknown value as `off`, an unknown value is an
    /// error naming the parameter and the allowed values: a typo should not silently disable
    /// the logging someone asked for.
    pub fn from_parameters(p: &Parameters) -> Result<LogLevel> {
        let allowed = || NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        match p.get("loglevel") {
            None | Some(Value::Bool(false)) => Ok(LogLevel::Off),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(LogLevel::Off),
            Some(Value::String(s)) => NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(s.trim()))
                .map(|(_, l)| *l)
                .ok_or_else(|| {
                    Error::invalid_parameter(
                        DRIVER_NAME,
                        "loglevel",
                        format!("must be one of {}, got {s:?}", allowed()),
                    )
                }),
            Some(v) => Err(Error::invalid_parameter(
                DRIVER_NAME,
                "loglevel",
                format!("must be one of {}, got {}", allowed(), v.describe()),
            )),
        }
    }

    /// Whether any record is emitted.
    pub fn enabled(self) -> bool {
        self != LogLevel::Off
    }
}

/// What a `debug` record says about a request, captured before it is sent.
#[derive(Debug)]
pub(crate) struct Wire {
    started: std::time::Instant,
    host: String,
    target: String,
}

/// Captures the request's host and path-and-query when records are on.
pub(crate) fn describe(level: LogLevel, request: &SignedRequest) -> Option<Wire> {
    if !level.enabled() {
        return None;
    }
    let mut target = crate::sigv4::wire_path(request);
    if !request.canonical_query_string.is_empty() {
        target.push('?');
        target.push_str(&request.canonical_query_string);
    }
    Some(Wire {
        started: std::time::Instant::now(),
        host: request.hostname(),
        target,
    })
}

/// The `debug` record of one answered attempt.
pub(crate) fn answered(wire: Option<&Wire>, op: &str, method: &str, status: u16) {
    if let Some(w) = wire {
        let ms = w.started.elapsed().as_millis() as u64;
        tracing::info!(target: TARGET, op, method, host = %w.host, target = %w.target, status, ms, "s3 request");
    }
}

/// `debugwithrequesterrors`: an attempt that got no answer.
pub(crate) fn attempt_failed(level: LogLevel, op: &str, method: &str, error: &str) {
    if level == LogLevel::DebugWithRequestErrors {
        tracing::info!(target: TARGET, op, method, error, "s3 request attempt failed");
    }
}

/// `debugwithrequesterrors`: a request given up (not retried any more).
pub(crate) fn gave_up(level: LogLevel, op: &str, attempts: u32, kind: &str, status: Option<u16>) {
    if level == LogLevel::DebugWithRequestErrors {
        tracing::info!(target: TARGET, op, attempts, kind, status, "s3 request failed; not retried");
    }
}

/// `debugwithrequestretries`: a retry about to wait `delay_ms`.
pub(crate) fn retrying(level: LogLevel, op: &str, attempt: u32, reason: &str, delay_ms: u64) {
    if level == LogLevel::DebugWithRequestRetries {
        tracing::info!(target: TARGET, op, attempt, reason, delay_ms, "s3 request retry");
    }
}

/// The loggable part of a signed request's `Authorization` header: algorithm, credential scope
/// without the access key id, signed header names. Never the signature.
pub(crate) fn signing_summary(request: &SignedRequest) -> Option<String> {
    let auth = request.headers.get("authorization")?.first()?;
    let auth = std::str::from_utf8(auth).ok()?;
    if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") {
        let mut scope = "";
        let mut signed = "";
        for part in rest.split(',').map(str::trim) {
            if let Some(c) = part.strip_prefix("Credential=") {
                scope = c.split_once('/').map_or("", |(_, s)| s);
            } else if let Some(s) = part.strip_prefix("SignedHeaders=") {
                signed = s;
            }
        }
        Some(format!(
            "AWS4-HMAC-SHA256 scope={scope} signed_headers={signed}"
        ))
    } else if auth.starts_with("AWS ") {
        Some("AWS (SigV2, HMAC-SHA1)".to_owned())
    } else {
        Some("unknown scheme".to_owned())
    }
}

/// `debugwithsigning`: the signature's non-secret details.
pub(crate) fn signed(level: LogLevel, op: &str, request: &SignedRequest) {
    if level == LogLevel::DebugWithSigning {
        if let Some(summary) = signing_summary(request) {
            let payload = request
                .headers
                .get("x-amz-content-sha256")
                .and_then(|v| v.first())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            tracing::info!(target: TARGET, op, signature = %summary, payload_sha256 = %payload, "s3 request signed");
        }
    }
}

/// `debugwithhttpbody`: a buffered request body the driver built (XML), never object data.
pub(crate) fn body(level: LogLevel, op: &str, request: &SignedRequest) {
    if level != LogLevel::DebugWithHttpBody || matches!(op, "PutObject" | "UploadPart") {
        return;
    }
    if let Some(SignedRequestPayload::Buffer(b)) = &request.payload {
        let shown = &b[..b.len().min(MAX_BODY)];
        tracing::info!(target: TARGET, op, len = b.len(), body = %String::from_utf8_lossy(shown), "s3 request body");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusoto_core::Region;

    #[test]
    fn parses_distribution_values() {
        let p = |v: Value| Parameters::new().with("loglevel", v);
        assert_eq!(
            LogLevel::from_parameters(&Parameters::new()).unwrap(),
            LogLevel::Off
        );
        assert_eq!(
            LogLevel::from_parameters(&p(Value::Bool(false))).unwrap(),
            LogLevel::Off
        );
        for (name, level) in NAMES {
            assert_eq!(
                LogLevel::from_parameters(&p(Value::String(name.to_ascii_uppercase()))).unwrap(),
                *level
            );
        }
        assert_eq!(
            LogLevel::from_parameters(&p(Value::String("DebugWithSigning".into()))).unwrap(),
            LogLevel::DebugWithSigning
        );
        for bad in [
            Value::String("verbose".into()),
            Value::Bool(true),
            Value::Int(3),
        ] {
            let e = LogLevel::from_parameters(&p(bad)).unwrap_err().to_string();
            assert!(
                e.contains("loglevel") && e.contains("debugwithrequesterrors"),
                "{e}"
            );
        }
    }

    #[test]
    fn signing_summary_has_no_key_id_or_signature() {
        let mut r = SignedRequest::new("GET", "s3", &Region::UsEast1, "/b/k");
        r.add_header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=deadbeef0123",
        );
        let s = signing_summary(&r).unwrap();
        assert_eq!(
            s,
            "AWS4-HMAC-SHA256 scope=20250101/us-east-1/s3/aws4_request \
             signed_headers=host;x-amz-content-sha256;x-amz-date"
        );
        let mut r = SignedRequest::new("GET", "s3", &Region::UsEast1, "/b/k");
        r.add_header("authorization", "AWS AKIDEXAMPLE:c2lnbmF0dXJl");
        let s = signing_summary(&r).unwrap();
        assert!(!s.contains("AKID") && !s.contains("c2ln"), "{s}");
    }

    #[test]
    fn describe_only_when_enabled() {
        let r = SignedRequest::new("GET", "s3", &Region::UsEast1, "/b/k");
        assert!(describe(LogLevel::Off, &r).is_none());
        let w = describe(LogLevel::Debug, &r).unwrap();
        assert_eq!(w.target, "/b/k");
    }
}
