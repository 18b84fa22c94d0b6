//! One configured S3 endpoint: the rusoto client (over [`Dispatcher`]) and presigning.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use regstore_driver_api::{Error, Result};
use rusoto_core::signature::SignedRequest;
use rusoto_core::{Client, Region};
use rusoto_s3::S3Client;

use crate::config::{S3Config, DRIVER_NAME};
use crate::credentials::{time_to_expiry, CredentialsProvider};
use crate::dispatch::{Addressing, Dispatcher, RequestStats};
use crate::sigv2;

/// Which request a presigned URL is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresignMethod {
    /// `GET` (GetObject).
    Get,
    /// `HEAD` (HeadObject).
    Head,
}

impl PresignMethod {
    fn as_str(self) -> &'static str {
        match self {
            PresignMethod::Get => "GET",
            PresignMethod::Head => "HEAD",
        }
    }
}

/// A configured S3 endpoint. Cheap to share behind the driver's `Arc`.
pub(crate) struct S3Connection {
    /// rusoto's S3 client. It does not sign: [`Dispatcher`] signs every request (v4 or v2).
    pub(crate) client: S3Client,
    /// The configuration it was built from.
    pub(crate) config: Arc<S3Config>,
    /// Requests sent, by operation.
    pub(crate) stats: Arc<RequestStats>,
    credentials: Arc<CredentialsProvider>,
    region: Region,
    addressing: Addressing,
}

/// The endpoint URL rusoto's `Region::Custom` expects: scheme, host, port and any base path,
/// without a trailing `/` (rusoto prepends the base path to every request path).
fn endpoint_string(config: &S3Config) -> String {
    match &config.region_endpoint {
        Some(url) => {
            let mut s = format!("{}://", url.scheme());
            if let Some(host) = url.host_str() {
                s.push_str(host);
            }
            if let Some(port) = url.port() {
                s.push_str(&format!(":{port}"));
            }
            s.push_str(url.path().trim_end_matches('/'));
            s
        }
        None => {
            let scheme = if config.secure { "https" } else { "http" };
            let suffix = if config.region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("{scheme}://s3.{}.{suffix}", config.region)
        }
    }
}

impl S3Connection {
    /// Builds the client for `config`. Fails only when the TLS connector cannot be built.
    pub(crate) fn new(config: S3Config) -> Result<Self> {
        let region = Region::Custom {
            name: config.region.clone(),
            endpoint: endpoint_string(&config),
        };
        let credentials = Arc::new(CredentialsProvider::new(&config.credentials));
        let stats = Arc::new(RequestStats::new());
        let dispatcher = Dispatcher::new(&config, Arc::clone(&credentials), Arc::clone(&stats))
            .map_err(|e| Error::backend(DRIVER_NAME, None, format!("TLS setup failed: {e}")))?;
        let client = S3Client::new_with_client(Client::new_not_signing(dispatcher), region.clone());
        let addressing = Addressing::new(&config);
        tracing::debug!(
            driver = DRIVER_NAME,
            endpoint = %endpoint_string(&config),
            bucket = %config.bucket,
            path_style = addressing.path_style,
            v4auth = config.v4auth,
            "s3 connection configured"
        );
        Ok(S3Connection {
            client,
            config: Arc::new(config),
            stats,
            credentials,
            region,
            addressing,
        })
    }

    /// Presigned GET/HEAD URL for `key` (already root-prefixed), v4 or v2 per config, expiring
    /// after `config.redirect_expiry` but never after the credentials' own expiry.
    pub(crate) async fn presign(&self, method: PresignMethod, key: &str) -> Result<url::Url> {
        let creds =
            self.credentials.credentials().await.map_err(|e| {
                Error::backend(DRIVER_NAME, Some(key), format!("no credentials: {e}"))
            })?;
        let mut expiry = self.config.redirect_expiry;
        if let Some(left) = time_to_expiry(&creds) {
            if left < expiry {
                tracing::debug!(
                    driver = DRIVER_NAME,
                    configured_secs = expiry.as_secs(),
                    capped_secs = left.as_secs(),
                    "presigned URL expiry capped at the temporary credentials' expiry"
                );
                expiry = left.max(Duration::from_secs(1));
            }
        }

        let mut request = SignedRequest::new(
            method.as_str(),
            "s3",
            &self.region,
            &format!("/{}/{key}", self.config.bucket),
        );
        let resource = self.addressing.apply(&mut request);
        let url = if self.config.v4auth {
            request.generate_presigned_url(&creds, &expiry, false)
        } else {
            let expires = Utc::now().timestamp() + expiry.as_secs() as i64;
            let query = sigv2::presign_query(method.as_str(), &creds, &resource, expires);
            let mut url = format!(
                "{}://{}{}",
                request.scheme(),
                request.hostname(),
                request.canonical_path()
            );
            url.push('?');
            let encoded: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", query_encode(v)))
                .collect();
            url.push_str(&encoded.join("&"));
            url
        };
        url::Url::parse(&url).map_err(|e| {
            Error::backend(
                DRIVER_NAME,
                Some(key),
                format!("presigned URL does not parse: {e}"),
            )
        })
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn query_encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use regstore_driver_api::Parameters;

    fn config(p: Parameters) -> S3Config {
        S3Config::from_parameters(&p).unwrap()
    }

    #[test]
    fn endpoints() {
        let c = config(
            Parameters::new()
                .with("bucket", "b")
                .with("regionendpoint", "http://127.0.0.1:9007/"),
        );
        assert_eq!(endpoint_string(&c), "http://127.0.0.1:9007");
        let c = config(
            Parameters::new()
                .with("bucket", "b")
                .with("regionendpoint", "https://gw.example/s3/"),
        );
        assert_eq!(endpoint_string(&c), "https://gw.example/s3");
        let c = config(
            Parameters::new()
                .with("bucket", "b")
                .with("region", "eu-west-1"),
        );
        assert_eq!(endpoint_string(&c), "https://s3.eu-west-1.amazonaws.com");
        let c = config(
            Parameters::new()
                .with("bucket", "b")
                .with("region", "cn-north-1")
                .with("secure", false),
        );
        assert_eq!(endpoint_string(&c), "http://s3.cn-north-1.amazonaws.com.cn");
    }

    fn static_params() -> Parameters {
        Parameters::new()
            .with("bucket", "bkt")
            .with("region", "us-east-1")
            .with("accesskey", "AKIAIOSFODNN7EXAMPLE")
            .with("secretkey", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    }

    #[tokio::test]
    async fn presign_v4_virtual_host_on_aws() {
        let conn = S3Connection::new(config(static_params().with("urlexpiry", "5m"))).unwrap();
        let url = conn
            .presign(PresignMethod::Get, "docker/registry/v2/x")
            .await
            .unwrap();
        assert_eq!(url.host_str(), Some("bkt.s3.us-east-1.amazonaws.com"));
        assert_eq!(url.path(), "/docker/registry/v2/x");
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["X-Amz-Expires"], "300");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert!(q["X-Amz-Credential"].starts_with("AKIAIOSFODNN7EXAMPLE/"));
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(!url.as_str().contains("wJalrXUtnFEMI"));
    }

    #[tokio::test]
    async fn presign_v2_path_style() {
        let conn = S3Connection::new(config(
            static_params()
                .with("regionendpoint", "http://127.0.0.1:9007")
                .with("v4auth", false)
                .with("sessiontoken", "TOK+/="),
        ))
        .unwrap();
        let before = Utc::now().timestamp();
        let url = conn.presign(PresignMethod::Head, "a/b").await.unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.path(), "/bkt/a/b");
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        let expires: i64 = q["Expires"].parse().unwrap();
        assert!(
            (before + 1200..=before + 1202).contains(&expires),
            "{expires}"
        );
        assert_eq!(q["x-amz-security-token"], "TOK+/=");
        let creds = rusoto_credential::AwsCredentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            Some("TOK+/=".into()),
            None,
        );
        let want = sigv2::presign_query("HEAD", &creds, "/bkt/a/b", expires);
        assert_eq!(q["Signature"], want[2].1);
    }

    #[test]
    fn credentials_debug_through_connection_config() {
        let conn = S3Connection::new(config(static_params())).unwrap();
        let s = format!("{:?}", conn.config);
        assert!(!s.contains("wJalrXUtnFEMI"), "{s}");
        assert!(matches!(
            conn.config.credentials,
            Credentials::Static { .. }
        ));
    }
}
