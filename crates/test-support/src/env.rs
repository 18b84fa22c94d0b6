//! The S3 test environment contract and the skip-or-fail rule.
//!
//! Variables (set by `cargo xtask test`, `cargo xtask conformance --backend s3` and
//! `cargo xtask servers up|exec`):
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `REGSTORE_S3_ENDPOINT` | the server's URL | required |
//! | `REGSTORE_S3_ACCESS_KEY`, `REGSTORE_S3_SECRET_KEY` | its keys | required |
//! | `REGSTORE_S3_REGION` | signing region | `us-east-1` |
//! | `REGSTORE_S3_BUCKET` | bucket (tests create it if missing) | `regstore-test` |
//! | `REGSTORE_S3_V4AUTH` | `false` selects SigV2 | `true` |
//! | `REGSTORE_S3_SERVER` | `rgw`, `moto`, … (what the server checks) | empty |
//! | `REGSTORE_S3_CHUNKSIZE` | the conformance suite's part size, or `default` | 5 MiB |
//! | `REGSTORE_MOTO_ENDPOINT` | a moto server, for the header tests | required by those |
//!
//! A missing server fails the test when `CI` is set and skips it with a printed reason
//! otherwise ([`unavailable`]).

use std::net::{SocketAddr, ToSocketAddrs};

use regstore_driver_api::Parameters;

/// 1 MiB.
pub const MIB: u64 = 1024 * 1024;

/// `chunksize` of the tests that do not pin their own: 5 MiB parts, the S3 minimum, so
/// multipart paths are exercised with little data.
pub const TEST_CHUNK_SIZE: u64 = 5 * MIB;

/// Connection settings of the S3 server under test. `Debug` leaves the keys out.
#[derive(Clone)]
pub struct S3Env {
    /// `REGSTORE_S3_ENDPOINT`.
    pub endpoint: String,
    /// `REGSTORE_S3_ACCESS_KEY`.
    pub access_key: String,
    /// `REGSTORE_S3_SECRET_KEY`.
    pub secret_key: String,
    /// `REGSTORE_S3_REGION`.
    pub region: String,
    /// `REGSTORE_S3_BUCKET`.
    pub bucket: String,
    /// `REGSTORE_S3_V4AUTH` is not `false`.
    pub v4auth: bool,
    /// `REGSTORE_S3_SERVER` (`rgw`, `moto`, or empty when unknown).
    pub server: String,
}

impl std::fmt::Debug for S3Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Env")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("v4auth", &self.v4auth)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Handles a missing server or tool: panics when `CI` is set (a skipped test must not count as
/// a pass there), otherwise prints `skipped: <reason>`. Returns `None` so callers can write
/// `let Some(x) = … else { return };`.
pub fn unavailable<T>(reason: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set, so this is a failure, not a skip)");
    }
    println!("skipped: {reason}");
    None
}

/// The S3 server of `REGSTORE_S3_*`, or `None` after [`unavailable`] reported why it is missing.
pub fn s3_env() -> Option<S3Env> {
    let (Some(endpoint), Some(access_key), Some(secret_key)) = (
        var("REGSTORE_S3_ENDPOINT"),
        var("REGSTORE_S3_ACCESS_KEY"),
        var("REGSTORE_S3_SECRET_KEY"),
    ) else {
        return unavailable(
            "REGSTORE_S3_ENDPOINT, REGSTORE_S3_ACCESS_KEY and REGSTORE_S3_SECRET_KEY are not all set \
             (run through `cargo xtask test` or `cargo xtask servers exec rgw -- …`)",
        );
    };
    Some(S3Env {
        endpoint,
        access_key,
        secret_key,
        region: var("REGSTORE_S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
        bucket: var("REGSTORE_S3_BUCKET").unwrap_or_else(|| "regstore-test".to_owned()),
        v4auth: var("REGSTORE_S3_V4AUTH").is_none_or(|v| !v.eq_ignore_ascii_case("false")),
        server: var("REGSTORE_S3_SERVER").unwrap_or_default(),
    })
}

/// The moto server of `REGSTORE_MOTO_ENDPOINT` (moto takes any keys; bucket
/// `regstore-headers`), or `None` after [`unavailable`] reported why it is missing.
pub fn moto_env() -> Option<S3Env> {
    let Some(endpoint) = var("REGSTORE_MOTO_ENDPOINT") else {
        return unavailable("REGSTORE_MOTO_ENDPOINT is not set (moto header tests)");
    };
    Some(S3Env {
        endpoint,
        access_key: "testing".to_owned(),
        secret_key: "testing".to_owned(),
        region: "us-east-1".to_owned(),
        bucket: "regstore-headers".to_owned(),
        v4auth: true,
        server: "moto".to_owned(),
    })
}

/// The conformance suite's `chunksize` from `REGSTORE_S3_CHUNKSIZE`: a number of bytes, or
/// `default` for no `chunksize` parameter at all (the driver's own default, as a registry
/// configured without one gets). Unset or empty: `Some(TEST_CHUNK_SIZE)`. Anything else panics,
/// so a typo cannot silently run the suite at the usual size.
pub fn conformance_chunk_size() -> Option<u64> {
    match var("REGSTORE_S3_CHUNKSIZE") {
        None => Some(TEST_CHUNK_SIZE),
        Some(v) if v.trim().eq_ignore_ascii_case("default") => None,
        Some(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(e) => {
                panic!("REGSTORE_S3_CHUNKSIZE={v:?} is neither a byte count nor `default`: {e}")
            }
        },
    }
}

/// The loopback address `endpoint` (a URL) resolves to. The fault proxy and the other
/// stand-ins forward to loopback only, so anything else is an error naming the endpoint.
pub fn loopback_upstream(endpoint: &str) -> Result<SocketAddr, String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("endpoint {endpoint:?} has no port"))?;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| format!("{endpoint} is not on the loopback interface"))
}

impl S3Env {
    /// The driver parameters for this server, as a registry configuration would give them:
    /// path-style addressing, [`TEST_CHUNK_SIZE`] parts, root directory `root`.
    pub fn params(&self, root: &str) -> Parameters {
        self.params_with_secret(&self.secret_key, root)
    }

    /// [`params`](Self::params) with `secret` as the secret key (tests of wrong keys and of
    /// secret redaction).
    pub fn params_with_secret(&self, secret: &str, root: &str) -> Parameters {
        Parameters::new()
            .with("regionendpoint", self.endpoint.as_str())
            .with("accesskey", self.access_key.as_str())
            .with("secretkey", secret)
            .with("region", self.region.as_str())
            .with("bucket", self.bucket.as_str())
            .with("v4auth", if self.v4auth { "true" } else { "false" })
            .with("forcepathstyle", "true")
            .with("chunksize", TEST_CHUNK_SIZE.to_string())
            .with("rootdirectory", root)
    }

    /// [`params`](Self::params) with `chunksize` replaced by `chunk_size`, or removed (the
    /// driver's default) for `None`.
    pub fn params_with_chunk_size(&self, root: &str, chunk_size: Option<u64>) -> Parameters {
        let mut params = self.params(root);
        match chunk_size {
            Some(n) => params.insert("chunksize", n.to_string()),
            None => {
                params.remove("chunksize");
            }
        }
        params
    }

    /// Connection parameters only: every size, concurrency and timeout parameter at the
    /// driver's default, as in a registry's minimal `config.yml`.
    pub fn default_params(&self, root: &str) -> Parameters {
        self.params_with_chunk_size(root, None)
    }

    /// The loopback address of this server, or `None` after [`unavailable`] reported that it
    /// is not on this machine (the fault proxy forwards to loopback only).
    pub fn upstream(&self) -> Option<SocketAddr> {
        match loopback_upstream(&self.endpoint) {
            Ok(addr) => Some(addr),
            Err(e) => unavailable(&format!("the fault proxy forwards to loopback only: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> S3Env {
        S3Env {
            endpoint: "http://127.0.0.1:9000".into(),
            access_key: "AKID".into(),
            secret_key: "very-secret".into(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            v4auth: false,
            server: "rgw".into(),
        }
    }

    #[test]
    fn debug_hides_the_keys() {
        let s = format!("{:?}", env());
        assert!(!s.contains("very-secret") && !s.contains("AKID"), "{s}");
    }

    fn get(p: &Parameters, k: &str) -> Option<String> {
        p.get(k).and_then(|v| v.as_scalar_string())
    }

    #[test]
    fn params_follow_the_environment() {
        let p = env().params("/r/");
        assert_eq!(get(&p, "v4auth").as_deref(), Some("false"));
        assert_eq!(get(&p, "rootdirectory").as_deref(), Some("/r/"));
        assert_eq!(get(&p, "chunksize").as_deref(), Some("5242880"));
        assert!(get(&env().default_params("/r/"), "chunksize").is_none());
        assert_eq!(
            get(&env().params_with_secret("other", "/"), "secretkey").as_deref(),
            Some("other")
        );
    }

    #[test]
    fn upstream_is_loopback_only() {
        assert_eq!(
            loopback_upstream("http://127.0.0.1:9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert!(loopback_upstream("http://192.0.2.1:9000")
            .unwrap_err()
            .contains("loopback"));
        assert!(loopback_upstream("not a url").is_err());
    }
}
