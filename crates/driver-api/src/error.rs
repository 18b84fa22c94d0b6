//! The one error type every driver, middleware and caller shares.

use std::fmt;

/// A boxed error from a backend, a middleware or a walk callback.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with the driver [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The state that made a [`crate::FileWriter`] refuse an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// `close` was called.
    Closed,
    /// `commit` was called.
    Committed,
    /// `cancel` was called.
    Cancelled,
}

impl fmt::Display for WriterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriterState::Closed => "closed",
            WriterState::Committed => "committed",
            WriterState::Cancelled => "cancelled",
        })
    }
}

/// Every error a storage driver reports.
///
/// Each message starts with the driver's name and names the path where there is one, the way
/// distribution's drivers print them (`"s3aws: Path not found: /a/b"`), so a log line says which
/// backend and object failed. Secrets never appear in a message: backends map provider errors
/// into [`Error::Backend`] at one boundary and must not copy credentials into them.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path (or a parent directory it was listed or walked from) does not exist.
    #[error("{driver}: Path not found: {path}")]
    PathNotFound {
        /// Driver name.
        driver: String,
        /// The path as the caller gave it.
        path: String,
    },

    /// The path does not match `^(/[A-Za-z0-9._-]+)+$` or has a `.` or `..` component.
    #[error("{driver}: invalid path: {path}")]
    InvalidPath {
        /// Driver name.
        driver: String,
        /// The rejected path.
        path: String,
    },

    /// A read offset was negative.
    #[error("{driver}: invalid offset: {offset} for path: {path}")]
    InvalidOffset {
        /// Driver name.
        driver: String,
        /// The path read from.
        path: String,
        /// The rejected offset.
        offset: i64,
    },

    /// The driver does not implement this operation.
    #[error("{driver}: unsupported method: {operation}")]
    Unsupported {
        /// Driver name.
        driver: String,
        /// The operation that was asked for.
        operation: &'static str,
    },

    /// A configuration parameter is missing or has a value outside its allowed range or set.
    #[error("{driver}: invalid parameter {parameter}: {message}")]
    InvalidParameter {
        /// Driver (or middleware) name.
        driver: String,
        /// The parameter's key as written in the configuration.
        parameter: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// A writer was used after `close`, `commit` or `cancel` ended what it may do.
    #[error("{driver}: writer for {path} already {state}")]
    WriterState {
        /// Driver name.
        driver: String,
        /// The path the writer writes.
        path: String,
        /// Why the writer refused.
        state: WriterState,
    },

    /// Appending to a path whose committed content is not empty (distribution leaves this
    /// undefined; regstore refuses it rather than guess).
    #[error("{driver}: cannot append to {path}: it holds committed content of {size} bytes")]
    AppendToCommitted {
        /// Driver name.
        driver: String,
        /// The path.
        path: String,
        /// Size of the committed content.
        size: u64,
    },

    /// No driver of this name is registered with the factory.
    #[error("storage driver not registered: {name}")]
    UnknownDriver {
        /// The name asked for.
        name: String,
    },

    /// Anything else the backend (or a walk callback) reported, with its source.
    #[error("{driver}: {}{source}", path.as_deref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Backend {
        /// Driver name.
        driver: String,
        /// The path concerned, if any.
        path: Option<String>,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// Several errors at once (for example per-key failures of a batched delete).
    #[error("{driver}: {}", format_many(errors))]
    Multiple {
        /// Driver name.
        driver: String,
        /// The individual errors, in the order they were reported.
        errors: Vec<Error>,
    },
}

fn format_many(errors: &[Error]) -> String {
    match errors {
        [] => "<nil>".to_owned(),
        [one] => one.to_string(),
        many => {
            let mut s = String::from("errors:\n");
            for e in many {
                s.push_str(&e.to_string());
                s.push('\n');
            }
            s
        }
    }
}

impl Error {
    /// `PathNotFound` for `path` reported by `driver`.
    pub fn not_found(driver: impl Into<String>, path: impl Into<String>) -> Self {
        Error::PathNotFound {
            driver: driver.into(),
            path: path.into(),
        }
    }

    /// `InvalidPath` for `path` reported by `driver`.
    pub fn invalid_path(driver: impl Into<String>, path: impl Into<String>) -> Self {
        Error::InvalidPath {
            driver: driver.into(),
            path: path.into(),
        }
    }

    /// `InvalidParameter` naming the parameter and what is allowed.
    pub fn invalid_parameter(
        driver: impl Into<String>,
        parameter: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            driver: driver.into(),
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    /// `Backend` error about `path` (or about no particular path when `None`).
    pub fn backend(
        driver: impl Into<String>,
        path: Option<&str>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            driver: driver.into(),
            path: path.map(str::to_owned),
            source: source.into(),
        }
    }

    /// `Unsupported` for `operation`.
    pub fn unsupported(driver: impl Into<String>, operation: &'static str) -> Self {
        Error::Unsupported {
            driver: driver.into(),
            operation,
        }
    }

    /// True for [`Error::PathNotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::PathNotFound { .. })
    }

    /// True for errors caused by the caller's input (path, offset, parameter, writer misuse),
    /// as opposed to a backend failure; a CLI maps these to its "invalid input" exit code.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidPath { .. }
                | Error::InvalidOffset { .. }
                | Error::InvalidParameter { .. }
                | Error::WriterState { .. }
                | Error::AppendToCommitted { .. }
                | Error::UnknownDriver { .. }
        )
    }

    /// The driver named in the error, if any.
    pub fn driver(&self) -> Option<&str> {
        match self {
            Error::PathNotFound { driver, .. }
            | Error::InvalidPath { driver, .. }
            | Error::InvalidOffset { driver, .. }
            | Error::Unsupported { driver, .. }
            | Error::InvalidParameter { driver, .. }
            | Error::WriterState { driver, .. }
            | Error::AppendToCommitted { driver, .. }
            | Error::Backend { driver, .. }
            | Error::Multiple { driver, .. } => Some(driver),
            Error::UnknownDriver { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_driver_and_path() {
        assert_eq!(
            Error::not_found("s3aws", "/a/b").to_string(),
            "s3aws: Path not found: /a/b"
        );
        assert_eq!(
            Error::InvalidOffset {
                driver: "fs".into(),
                path: "/x".into(),
                offset: -1
            }
            .to_string(),
            "fs: invalid offset: -1 for path: /x"
        );
        assert_eq!(
            Error::backend("foo", None, "unexpected error").to_string(),
            "foo: unexpected error"
        );
        assert_eq!(
            Error::backend("foo", Some("/p"), "boom").to_string(),
            "foo: /p: boom"
        );
    }

    #[test]
    fn multiple_formats_like_distribution() {
        let none = Error::Multiple {
            driver: "foo".into(),
            errors: vec![],
        };
        assert_eq!(none.to_string(), "foo: <nil>");
        let one = Error::Multiple {
            driver: "foo".into(),
            errors: vec![Error::backend("foo", None, "a")],
        };
        assert_eq!(one.to_string(), "foo: foo: a");
        let two = Error::Multiple {
            driver: "foo".into(),
            errors: vec![
                Error::backend("foo", None, "a"),
                Error::backend("foo", None, "b"),
            ],
        };
        assert_eq!(two.to_string(), "foo: errors:\nfoo: a\nfoo: b\n");
    }

    #[test]
    fn classification() {
        assert!(Error::not_found("d", "/p").is_not_found());
        assert!(Error::invalid_path("d", "p").is_invalid_input());
        assert!(!Error::backend("d", None, "x").is_invalid_input());
        assert_eq!(Error::unsupported("d", "walk").driver(), Some("d"));
    }
}
