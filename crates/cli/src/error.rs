//! The CLI's error type and how each error maps onto an exit code.

use regstore_driver_api::Error as DriverError;

/// Exit code: the command succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: the backend failed (network, permissions, server errors, a failed check).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: invalid input or configuration (bad path, bad config key, unsupported operation).
pub const EXIT_INVALID: i32 = 2;
/// Exit code: the path does not exist.
pub const EXIT_NOT_FOUND: i32 = 3;

/// Everything a command can fail with. Each message is one line that names the config key, the
/// path or the file concerned, and never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error reported by a driver or middleware (its message names driver and path).
    #[error("{0}")]
    Driver(#[from] DriverError),

    /// The configuration is unusable; `key` is the dotted key (`storage.s3.chunksize`) or the
    /// environment variable that is wrong.
    #[error("invalid configuration {origin}: {key}: {message}")]
    Config {
        /// Where the configuration came from (a file path, or "embedded default").
        origin: String,
        /// The offending key.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// The command line asks for something that cannot be done (a directory without `-r`, …).
    #[error("{0}")]
    Input(String),

    /// A path given on the command line does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The command ran and printed its result, but the result is a failure (a failed check,
    /// files that could not be copied). With `--json` no error document is added.
    #[error("{0}")]
    Failed(String),

    /// A local file or stream could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written (a local path, "stdout", …).
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CliError {
    /// A local I/O error about `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }

    /// The process exit code for this error: 3 not found, 2 invalid input, config or an
    /// operation the backend does not support, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Driver(e) => driver_exit_code(e),
            CliError::Config { .. } | CliError::Input(_) => EXIT_INVALID,
            CliError::NotFound(_) => EXIT_NOT_FOUND,
            CliError::Failed(_) => EXIT_FAILURE,
            CliError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                _ => EXIT_FAILURE,
            },
        }
    }

    /// Whether the error means a broken pipe on stdout (`regstore cat x | head`), which is
    /// not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Exit code of a driver error. `Unsupported` counts as invalid input: the operation will never
/// work against this backend, so retrying (what exit 1 suggests) is pointless.
fn driver_exit_code(e: &DriverError) -> i32 {
    match e {
        DriverError::Unsupported { .. } => EXIT_INVALID,
        DriverError::Multiple { errors, .. } if !errors.is_empty() => {
            let codes: Vec<i32> = errors.iter().map(driver_exit_code).collect();
            if codes.iter().all(|c| *c == codes[0]) {
                codes[0]
            } else {
                EXIT_FAILURE
            }
        }
        e if e.is_not_found() => EXIT_NOT_FOUND,
        e if e.is_invalid_input() => EXIT_INVALID,
        _ => EXIT_FAILURE,
    }
}

/// Result of a CLI operation.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_error_kind() {
        assert_eq!(
            CliError::from(DriverError::not_found("fs", "/a")).exit_code(),
            EXIT_NOT_FOUND
        );
        assert_eq!(
            CliError::from(DriverError::invalid_path("fs", "a")).exit_code(),
            EXIT_INVALID
        );
        assert_eq!(
            CliError::from(DriverError::unsupported("fs", "uploads")).exit_code(),
            EXIT_INVALID
        );
        assert_eq!(
            CliError::from(DriverError::backend("s3aws", None, "boom")).exit_code(),
            EXIT_FAILURE
        );
        let many = DriverError::Multiple {
            driver: "s3aws".into(),
            errors: vec![
                DriverError::not_found("s3aws", "/a"),
                DriverError::not_found("s3aws", "/b"),
            ],
        };
        assert_eq!(CliError::from(many).exit_code(), EXIT_NOT_FOUND);
        let mixed = DriverError::Multiple {
            driver: "s3aws".into(),
            errors: vec![
                DriverError::not_found("s3aws", "/a"),
                DriverError::backend("s3aws", None, "x"),
            ],
        };
        assert_eq!(CliError::from(mixed).exit_code(), EXIT_FAILURE);
        assert_eq!(
            CliError::io("f", std::io::Error::from(std::io::ErrorKind::NotFound)).exit_code(),
            EXIT_NOT_FOUND
        );
    }
}
