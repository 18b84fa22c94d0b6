//! The one place where rusoto's errors become regstore's.
//!
//! [`S3Error`] is what the rusoto seam (`s3api`) reports: the S3 operation, the HTTP status,
//! the S3 error code and message — and nothing else. It never carries request headers, so no
//! credential or signature can reach a log line through it. The driver turns it into a
//! regstore [`Error`] with [`S3Error::into_error`], naming the caller's path.

use std::fmt;

use regstore_driver_api::Error;
use rusoto_core::RusotoError;

/// Driver name used in every error this crate reports.
pub(crate) const DRIVER: &str = "s3aws";

/// Where a failure came from; decides whether the stat fallback may try a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// The server answered with an error status (an S3 "API" error).
    Api,
    /// The request did not get an answer: connection, TLS, timeout, credentials lookup.
    Transport,
    /// The request could not be built (rusoto validation).
    Request,
    /// The server answered, but the answer could not be understood.
    Malformed,
}

/// A failed S3 request, reduced to what is safe and useful to report.
#[derive(Debug, Clone)]
pub(crate) struct S3Error {
    /// The S3 operation (`GetObject`, `ListObjectsV2`, …).
    pub(crate) operation: &'static str,
    pub(crate) class: ErrorClass,
    /// HTTP status, when the server answered and rusoto kept it.
    pub(crate) status: Option<u16>,
    /// S3 error code (`NoSuchKey`, `InvalidRange`, `AccessDenied`, …).
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for S3Error {}

impl S3Error {
    /// An answer that does not have the shape S3 promises (missing ETag, upload id, …).
    pub(crate) fn malformed(operation: &'static str, message: impl Into<String>) -> Self {
        S3Error {
            operation,
            class: ErrorClass::Malformed,
            status: None,
            code: None,
            message: message.into(),
        }
    }

    /// Whether S3 says the key does not exist: `NoSuchKey`, or a 404 without a body (HEAD
    /// answers have none). `NoSuchBucket` and `NoSuchUpload` are not missing paths.
    pub(crate) fn is_not_found(&self) -> bool {
        match self.code.as_deref() {
            Some(code) => matches!(code, "NoSuchKey" | "NotFound"),
            None => self.status == Some(404),
        }
    }

    /// Whether S3 says the requested range starts at or after the end of the object.
    pub(crate) fn is_invalid_range(&self) -> bool {
        self.code.as_deref() == Some("InvalidRange") || self.status == Some(416)
    }

    /// Whether an `If-Match` (or other) precondition failed: the object is not the version
    /// the request named.
    pub(crate) fn is_precondition_failed(&self) -> bool {
        self.code.as_deref() == Some("PreconditionFailed") || self.status == Some(412)
    }

    /// Whether the server answered (as opposed to a network or client failure).
    pub(crate) fn is_api(&self) -> bool {
        self.class == ErrorClass::Api
    }

    /// The regstore error for a request about `path`: a missing key is `PathNotFound` naming
    /// `path`, everything else is `Backend` with this error as its source.
    pub(crate) fn into_error(self, path: &str) -> Error {
        if self.is_not_found() {
            Error::not_found(DRIVER, path)
        } else {
            Error::backend(DRIVER, Some(path), self)
        }
    }

    /// Like [`into_error`](Self::into_error) but never `PathNotFound` (for operations where a
    /// 404 means something other than a missing object, e.g. an aborted upload).
    pub(crate) fn into_backend(self, path: &str) -> Error {
        Error::backend(DRIVER, Some(path), self)
    }

    /// Converts a rusoto error of `operation`. `E`'s `Debug` output starts with the variant
    /// name, which rusoto names after the S3 error code; its `Display` is the server's message.
    pub(crate) fn from_rusoto<E>(operation: &'static str, err: RusotoError<E>) -> Self
    where
        E: fmt::Debug + fmt::Display,
    {
        match err {
            RusotoError::Service(e) => {
                let debug = format!("{e:?}");
                let code = debug
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .next()
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned);
                let status = match code.as_deref() {
                    Some("NoSuchKey" | "NoSuchUpload" | "NoSuchBucket") => Some(404),
                    _ => None,
                };
                S3Error {
                    operation,
                    class: ErrorClass::Api,
                    status,
                    code: code.map(clip),
                    message: clip(e.to_string()),
                }
            }
            RusotoError::Unknown(resp) => {
                Self::from_response(operation, resp.status.as_u16(), &resp.body)
            }
            RusotoError::HttpDispatch(e) => S3Error {
                operation,
                class: ErrorClass::Transport,
                status: None,
                code: None,
                message: format!("request failed: {e}"),
            },
            RusotoError::Credentials(e) => S3Error {
                operation,
                class: ErrorClass::Transport,
                status: None,
                code: None,
                // rusoto's credential errors describe the lookup, never the secret.
                message: format!("credentials unavailable: {e}"),
            },
            RusotoError::Validation(m) => S3Error {
                operation,
                class: ErrorClass::Request,
                status: None,
                code: None,
                message: format!("invalid request: {m}"),
            },
            RusotoError::ParseError(m) => S3Error::malformed(operation, clip(m)),
            RusotoError::Blocking => S3Error {
                operation,
                class: ErrorClass::Transport,
                status: None,
                code: None,
                message: "blocking call failed".to_owned(),
            },
        }
    }
}

impl S3Error {
    /// An error answer that rusoto did not map to a service error: status and XML body.
    fn from_response(operation: &'static str, status: u16, body: &[u8]) -> Self {
        let body = String::from_utf8_lossy(body);
        S3Error {
            operation,
            class: ErrorClass::Api,
            status: Some(status),
            code: xml_field(&body, "Code").map(clip),
            message: clip(xml_field(&body, "Message").unwrap_or_default()),
        }
    }
}

/// The object changed while a parallel read was fetching it: a later ranged GET found another
/// version (its `If-Match` on the first answer's ETag failed, the object was deleted or became
/// shorter, or the server answered another ETag). The reader stops with this error before
/// yielding any byte of the other version, so the bytes already yielded are a prefix of one
/// version. It is the source of the [`Error::Backend`] the stream yields; find it with
/// `std::error::Error::source` and `downcast_ref::<ObjectChanged>()`. Retrying the read from
/// the start reads the new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChanged {
    /// The storage path being read.
    pub path: String,
    /// The ETag of the version the read started on.
    pub etag: String,
    /// What showed the change (the server's answer).
    pub detail: String,
}

impl fmt::Display for ObjectChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} changed while being read (the read started on ETag {}): {}",
            self.path, self.etag, self.detail
        )
    }
}

impl std::error::Error for ObjectChanged {}

/// Longest server-provided text (error code, message) kept in an error, in bytes: the server
/// controls it, and every error ends up in a log line.
const MAX_SERVER_TEXT: usize = 1024;

/// `text` cut to at most [`MAX_SERVER_TEXT`] bytes (on a character boundary), marked with `…`
/// when cut.
fn clip(mut text: String) -> String {
    if text.len() > MAX_SERVER_TEXT {
        let mut end = MAX_SERVER_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The text of the first `<name>…</name>` element in an S3 XML error body, unescaped. Only
/// `Code` and `Message` are read: other elements (`StringToSign`, `SignatureProvided`) would
/// put signing material into a log line.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&close)?;
    let raw = body[start..start + len].trim();
    (!raw.is_empty()).then(|| {
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum FakeError {
        NoSuchKey(String),
    }
    impl fmt::Display for FakeError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                FakeError::NoSuchKey(m) => f.write_str(m),
            }
        }
    }

    fn unknown(status: u16, body: &str) -> S3Error {
        S3Error::from_response("Op", status, body.as_bytes())
    }

    #[test]
    fn service_error_keeps_code_and_message() {
        let e = S3Error::from_rusoto(
            "GetObject",
            RusotoError::Service(FakeError::NoSuchKey(
                "The specified key does not exist.".into(),
            )),
        );
        assert_eq!(e.code.as_deref(), Some("NoSuchKey"));
        assert!(e.is_not_found());
        assert!(e.is_api());
        let err = e.into_error("/a/b");
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "s3aws: Path not found: /a/b");
    }

    #[test]
    fn unknown_error_reads_only_code_and_message() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
                    <Message>bad &amp; wrong</Message><StringToSign>GET\nsecret-ish</StringToSign>\
                    <SignatureProvided>abcdef</SignatureProvided></Error>";
        let e = unknown(403, body);
        assert_eq!(e.status, Some(403));
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(e.message, "bad & wrong");
        let text = e.clone().into_error("/p").to_string();
        assert!(
            text.contains("Op (HTTP 403): SignatureDoesNotMatch: bad & wrong"),
            "{text}"
        );
        assert!(
            !text.contains("abcdef") && !text.contains("secret-ish"),
            "{text}"
        );
        assert!(!e.is_not_found());
    }

    #[test]
    fn server_text_is_clipped() {
        let long = "é".repeat(5000);
        let body = format!("<Error><Code>{long}</Code><Message>{long}</Message></Error>");
        let e = unknown(500, &body);
        assert!(
            e.message.len() <= MAX_SERVER_TEXT + '…'.len_utf8(),
            "{}",
            e.message.len()
        );
        assert!(e.message.ends_with('…') && e.message.starts_with("éé"));
        assert!(e.code.is_some_and(|c| c.len() <= MAX_SERVER_TEXT + 3));
        let e = S3Error::from_rusoto(
            "GetObject",
            RusotoError::Service(FakeError::NoSuchKey("x".repeat(100_000))),
        );
        assert!(e.message.len() <= MAX_SERVER_TEXT + 3);
        assert!(e.is_not_found());
        let e = S3Error::from_rusoto::<FakeError>("X", RusotoError::ParseError("y".repeat(9999)));
        assert!(e.message.len() <= MAX_SERVER_TEXT + 3);
        // Short text is kept as it is.
        assert_eq!(clip("short".to_owned()), "short");
    }

    #[test]
    fn bare_404_and_416() {
        let e = unknown(404, "");
        assert!(e.is_not_found());
        let e = unknown(416, "<Error><Code>InvalidRange</Code></Error>");
        assert!(e.is_invalid_range());
        assert!(!e.is_not_found());
        let e = unknown(404, "<Error><Code>NoSuchBucket</Code></Error>");
        assert!(!e.is_not_found());
    }

    #[test]
    fn transport_errors_are_not_api_errors() {
        let e = S3Error::from_rusoto::<FakeError>(
            "HeadObject",
            RusotoError::HttpDispatch(rusoto_core::request::HttpDispatchError::new(
                "connection refused".into(),
            )),
        );
        assert!(!e.is_api());
        assert!(!e.is_not_found());
        let e = S3Error::from_rusoto::<FakeError>("X", RusotoError::ParseError("junk".into()));
        assert_eq!(e.class, ErrorClass::Malformed);
    }
}
