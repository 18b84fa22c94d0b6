//! One configured S3 endpoint: rusoto clients bound to one [`Call`] each (over
//! [`Dispatcher::call`]) and presigning.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use regstore_driver_api::{Error, Result};
use rusoto_core::signature::SignedRequest;
use rusoto_core::{Client, Region};
use rusoto_s3::S3Client;

use crate::addressing::Addressing;
use crate::call::Call;
use crate::config::{S3Config, DRIVER_NAME};
use crate::credentials::{time_to_expiry, CredentialsProvider};
use crate::dispatch::Dispatcher;
use crate::sigv2;
use crate::sigv4::{self, Signer};
use crate::stats::RequestStats;

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
    /// Addresses, signs, counts, retries and sends every request (v4 or v2); rusoto's
    /// clients do not sign.
    dispatcher: Dispatcher,
    /// The configuration it was built from.
    pub(crate) config: Arc<S3Config>,
    /// Requests sent, by operation.
    pub(crate) stats: Arc<RequestStats>,
    credentials: Arc<CredentialsProvider>,
    region: Region,
    addressing: Addressing,
    /// SigV4 presigning, with its cached signing key.
    signer: Signer,
}

/// The endpoint URL rusoto's `Region::Custom` expects: scheme, host, port and any base path,
/// without a trailing `/` (rusoto prepends the base path to every request path).
fn endpoint_string(config: &S3Config) -> String {
    config.endpoint().map(|e| e.base).unwrap_or_default()
}

impl S3Connection {
    /// Builds the client for `config`. Fails only when the TLS connector cannot be built.
    pub(crate) fn new(config: S3Config) -> Result<Self> {
        Self::build(config, None)
    }

    /// Like [`new`](Self::new) but sending through `http` instead of the default hyper client
    /// (tests resolve virtual-hosted names with it).
    #[cfg(test)]
    pub(crate) fn with_http(
        config: S3Config,
        http: Box<dyn rusoto_core::request::DispatchSignedRequest + Send + Sync>,
    ) -> Result<Self> {
        Self::build(config, Some(http))
    }

    fn build(
        config: S3Config,
        http: Option<Box<dyn rusoto_core::request::DispatchSignedRequest + Send + Sync>>,
    ) -> Result<Self> {
        config.endpoint()?;
        let region = Region::Custom {
            name: config.region.clone(),
            endpoint: endpoint_string(&config),
        };
        let credentials = Arc::new(CredentialsProvider::for_region(
            &config.credentials,
            &config.region,
        ));
        let stats = Arc::new(RequestStats::new());
        let dispatcher = match http {
            Some(http) => Ok(Dispatcher::with_http(
                &config,
                Arc::clone(&credentials),
                Arc::clone(&stats),
                http,
            )),
            None => Dispatcher::new(&config, Arc::clone(&credentials), Arc::clone(&stats)),
        }
        .map_err(|e| Error::backend(DRIVER_NAME, None, format!("TLS setup failed: {e}")))?;
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
            dispatcher,
            config: Arc::new(config),
            stats,
            credentials,
            region,
            addressing,
            signer: Signer::new(),
        })
    }

    /// rusoto's S3 client for one `call`: it builds the request of that operation and reads
    /// its answer; the dispatcher sends it as `call` says. Cheap (an `Arc` and the region).
    pub(crate) fn client(&self, call: Call) -> S3Client {
        S3Client::new_with_client(self.raw(call), self.region.clone())
    }

    /// The same not-signing client without rusoto_s3 on top, for one `call`: sends a request
    /// built by `s3api` through the dispatcher and hands back the raw answer, for operations
    /// whose answer we parse ourselves (ListObjectsV2).
    pub(crate) fn raw(&self, call: Call) -> Client {
        Client::new_not_signing(self.dispatcher.call(call))
    }

    /// The region (and endpoint) requests are built for.
    pub(crate) fn region(&self) -> &Region {
        &self.region
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
        if let Some(redirect) = &self.config.redirect_endpoint {
            let (scheme, authority) = crate::endpoint::redirect_authority(redirect);
            request.scheme = Some(scheme);
            request.set_hostname(Some(authority));
        }
        let url = if self.config.v4auth {
            self.signer.presign(
                method.as_str(),
                &request.scheme(),
                &request.hostname(),
                &sigv4::wire_path(&request),
                self.region.name(),
                &creds,
                Utc::now(),
                expiry,
            )
        } else {
            let expires = Utc::now().timestamp() + expiry.as_secs() as i64;
            let query = sigv2::presign_query(method.as_str(), &creds, &resource, expires);
            let mut url = format!(
                "{}://{}{}",
                request.scheme(),
                request.hostname(),
                sigv4::wire_path(&request)
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

/// Checks against a real S3 server (Ceph RGW in the project's runs), configured by the test
/// environment contract: `REGSTORE_S3_ENDPOINT`, `REGSTORE_S3_ACCESS_KEY`,
/// `REGSTORE_S3_SECRET_KEY`, `REGSTORE_S3_REGION` (default us-east-1), `REGSTORE_S3_BUCKET`
/// (created if missing), `REGSTORE_S3_SERVER` (`rgw` by default; `moto` checks no signatures,
/// so the tampering checks are skipped there). Without them the tests fail when `CI` is set
/// and print "skipped" otherwise.
#[cfg(test)]
mod server_tests {
    use super::*;
    use crate::call::Operation;
    use futures::TryStreamExt as _;
    use regstore_driver_api::Parameters;
    use rusoto_s3::{
        CompleteMultipartUploadRequest, CompletedMultipartUpload, CompletedPart, CopyObjectRequest,
        CreateBucketError, CreateBucketRequest, CreateMultipartUploadRequest, Delete,
        DeleteObjectsRequest, GetObjectRequest, HeadObjectRequest, ListObjectsV2Request,
        ObjectIdentifier, PutObjectRequest, UploadPartRequest, S3,
    };

    use regstore_test_support::S3Env as Env;

    /// The server of the test environment contract (`regstore-test-support`), or `None` after
    /// reporting why it is missing (a failure under `CI`).
    fn env() -> Option<Env> {
        regstore_test_support::s3_env()
    }

    /// moto checks no signatures, so the tampering checks are skipped there.
    fn verifies_signatures(e: &Env) -> bool {
        e.server != "moto"
    }

    async fn connect(e: &Env, v4auth: bool) -> S3Connection {
        let p = Parameters::new()
            .with("regionendpoint", e.endpoint.as_str())
            .with("region", e.region.as_str())
            .with("bucket", e.bucket.as_str())
            .with("accesskey", e.access_key.as_str())
            .with("secretkey", e.secret_key.as_str())
            .with("v4auth", v4auth)
            .with("useragent", "regstore-transport-test");
        let conn = S3Connection::new(S3Config::from_parameters(&p).unwrap()).unwrap();
        let created = conn
            .client(Call::new(Operation::CreateBucket))
            .create_bucket(CreateBucketRequest {
                bucket: e.bucket.clone(),
                ..Default::default()
            })
            .await;
        match created {
            Ok(_)
            | Err(rusoto_core::RusotoError::Service(
                CreateBucketError::BucketAlreadyOwnedByYou(_)
                | CreateBucketError::BucketAlreadyExists(_),
            )) => {}
            Err(err) => panic!("cannot create bucket {}: {err}", e.bucket),
        }
        conn
    }

    fn unique_prefix(tag: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("transport-test/{tag}-{}-{nanos}/", std::process::id())
    }

    async fn get_bytes(conn: &S3Connection, key: &str) -> Vec<u8> {
        // moto (the virtual-hosted tests' server) now and then answers a GET under load with
        // its generic HTML 500 page; the driver's dispatcher retries such answers, so the test
        // does too, twice, by the same rule.
        let mut attempt = 0;
        let out = loop {
            let r = conn
                .client(Call::new(Operation::GetObject))
                .get_object(GetObjectRequest {
                    bucket: conn.config.bucket.clone(),
                    key: key.to_owned(),
                    ..Default::default()
                })
                .await;
            match r {
                Err(rusoto_core::RusotoError::Unknown(ref resp))
                    if crate::retry::retryable_status(resp.status.as_u16(), &resp.body)
                        && attempt < 2 =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                r => break r.unwrap_or_else(|e| panic!("GetObject {key}: {e}")),
            }
        };
        let body = out.body.expect("GetObject returns a body");
        body.map_ok(|b| b.to_vec())
            .try_concat()
            .await
            .expect("body reads")
    }

    /// Every operation family the driver uses, signed v4 or v2, against the server.
    async fn operations(v4auth: bool) {
        let Some(e) = env() else { return };
        let conn = connect(&e, v4auth).await;
        let c = |op| conn.client(Call::new(op));
        let b = e.bucket.clone();
        let prefix = unique_prefix(if v4auth { "v4" } else { "v2" });

        // PutObject, buffered and streamed (v4 streams sign UNSIGNED-PAYLOAD), with the
        // headers the driver sends on writes.
        let small = format!("{prefix}small");
        c(Operation::PutObject)
            .put_object(PutObjectRequest {
                bucket: b.clone(),
                key: small.clone(),
                body: Some(b"hello transport".to_vec().into()),
                content_type: Some("application/octet-stream".into()),
                acl: Some("private".into()),
                storage_class: Some("STANDARD".into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("PutObject: {err}"));
        let streamed = format!("{prefix}streamed");
        let stream = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"part one, ")),
            Ok(bytes::Bytes::from_static(b"part two")),
        ]);
        c(Operation::PutObject)
            .put_object(PutObjectRequest {
                bucket: b.clone(),
                key: streamed.clone(),
                body: Some(rusoto_core::ByteStream::new_with_size(stream, 18)),
                content_length: Some(18),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("PutObject (stream): {err}"));
        assert_eq!(get_bytes(&conn, &small).await, b"hello transport");
        assert_eq!(get_bytes(&conn, &streamed).await, b"part one, part two");

        // Ranged GET.
        let ranged = c(Operation::GetObject)
            .get_object(GetObjectRequest {
                bucket: b.clone(),
                key: small.clone(),
                range: Some("bytes=6-".into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("GetObject range: {err}"));
        assert_eq!(ranged.content_length, Some(9));

        // HeadObject.
        let head = c(Operation::HeadObject)
            .head_object(HeadObjectRequest {
                bucket: b.clone(),
                key: small.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("HeadObject: {err}"));
        assert_eq!(head.content_length, Some(15));

        // Multipart: create, a 5 MiB part and a short final part, complete.
        let big = format!("{prefix}multi/big");
        let upload = c(Operation::CreateMultipartUpload)
            .create_multipart_upload(CreateMultipartUploadRequest {
                bucket: b.clone(),
                key: big.clone(),
                content_type: Some("application/octet-stream".into()),
                acl: Some("private".into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("CreateMultipartUpload: {err}"));
        let upload_id = upload.upload_id.expect("upload id");
        let part1 = vec![b'a'; 5 * 1024 * 1024];
        let mut parts = Vec::new();
        for (n, data) in [(1i64, part1.clone()), (2, b"tail".to_vec())] {
            let out = c(Operation::UploadPart)
                .upload_part(UploadPartRequest {
                    bucket: b.clone(),
                    key: big.clone(),
                    upload_id: upload_id.clone(),
                    part_number: n,
                    content_length: Some(data.len() as i64),
                    body: Some(data.into()),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|err| panic!("UploadPart {n}: {err}"));
            parts.push(CompletedPart {
                e_tag: out.e_tag,
                part_number: Some(n),
            });
        }
        c(Operation::CompleteMultipartUpload)
            .complete_multipart_upload(CompleteMultipartUploadRequest {
                bucket: b.clone(),
                key: big.clone(),
                upload_id,
                multipart_upload: Some(CompletedMultipartUpload { parts: Some(parts) }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("CompleteMultipartUpload: {err}"));
        let got = get_bytes(&conn, &big).await;
        assert_eq!(got.len(), 5 * 1024 * 1024 + 4);
        assert!(got.ends_with(b"tail"));

        // CopyObject.
        let copy = format!("{prefix}copy");
        c(Operation::CopyObject)
            .copy_object(CopyObjectRequest {
                bucket: b.clone(),
                key: copy.clone(),
                copy_source: rusoto_s3::util::encode_key(format!("{b}/{small}")),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("CopyObject: {err}"));
        assert_eq!(get_bytes(&conn, &copy).await, b"hello transport");

        // ListObjectsV2: a bucket-level request (`/bucket`, the path SigV2 must sign as is).
        let listed = c(Operation::ListObjectsV2)
            .list_objects_v2(ListObjectsV2Request {
                bucket: b.clone(),
                prefix: Some(prefix.clone()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("ListObjectsV2: {err}"));
        let mut keys: Vec<String> = listed
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![copy.clone(), big.clone(), small.clone(), streamed.clone()]
        );

        // DeleteObjects (Content-MD5 added by the dispatcher when missing).
        let deleted = c(Operation::DeleteObjects)
            .delete_objects(DeleteObjectsRequest {
                bucket: b.clone(),
                delete: Delete {
                    objects: keys
                        .iter()
                        .map(|k| ObjectIdentifier {
                            key: k.clone(),
                            version_id: None,
                        })
                        .collect(),
                    quiet: Some(false),
                },
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("DeleteObjects: {err}"));
        assert!(deleted.errors.unwrap_or_default().is_empty());
        assert_eq!(deleted.deleted.unwrap_or_default().len(), 4);
        let listed = c(Operation::ListObjectsV2)
            .list_objects_v2(ListObjectsV2Request {
                bucket: b.clone(),
                prefix: Some(prefix.clone()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("ListObjectsV2: {err}"));
        assert_eq!(listed.key_count, Some(0));

        let stats = conn.stats.snapshot();
        for (op, min) in [
            ("PutObject", 2),
            ("GetObject", 5),
            ("HeadObject", 1),
            ("CreateMultipartUpload", 1),
            ("UploadPart", 2),
            ("CompleteMultipartUpload", 1),
            ("CopyObject", 1),
            ("ListObjectsV2", 2),
            ("DeleteObjects", 1),
        ] {
            assert!(
                stats.get(op).copied().unwrap_or(0) >= min,
                "{op}: {stats:?}"
            );
        }
        assert_eq!(stats.get("Other"), None, "{stats:?}");
    }

    #[tokio::test]
    async fn operations_signed_v4() {
        operations(true).await;
    }

    #[tokio::test]
    async fn operations_signed_v2() {
        operations(false).await;
    }

    async fn fetch(method: hyper::Method, url: &url::Url) -> (u16, Option<u64>, Vec<u8>) {
        let client = hyper::Client::new();
        let req = hyper::Request::builder()
            .method(method)
            .uri(url.as_str())
            .body(hyper::Body::empty())
            .expect("request builds");
        let resp = client.request(req).await.expect("server answers");
        let status = resp.status().as_u16();
        let len = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = hyper::body::to_bytes(resp.into_body())
            .await
            .expect("body reads")
            .to_vec();
        (status, len, body)
    }

    /// Replaces one query parameter's value.
    fn with_param(url: &url::Url, name: &str, value: &str) -> url::Url {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == name {
                    (k, value.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        let mut u = url.clone();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u
    }

    async fn presigned(v4auth: bool) {
        let Some(e) = env() else { return };
        let conn = connect(&e, v4auth).await;
        let key = format!(
            "{}object",
            unique_prefix(if v4auth { "pre4" } else { "pre2" })
        );
        let data = b"presigned payload bytes".to_vec();
        conn.client(Call::new(Operation::PutObject))
            .put_object(PutObjectRequest {
                bucket: e.bucket.clone(),
                key: key.clone(),
                body: Some(data.clone().into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("PutObject: {err}"));

        let get = conn.presign(PresignMethod::Get, &key).await.unwrap();
        let (status, _, body) = fetch(hyper::Method::GET, &get).await;
        assert_eq!(status, 200, "GET {get}");
        assert_eq!(body, data);

        let head = conn.presign(PresignMethod::Head, &key).await.unwrap();
        let (status, len, _) = fetch(hyper::Method::HEAD, &head).await;
        assert_eq!(status, 200, "HEAD {head}");
        assert_eq!(len, Some(data.len() as u64));

        if verifies_signatures(&e) {
            // A GET URL does not authorise HEAD, a tampered signature or expiry is refused,
            // and the URL is bound to its key.
            let (status, _, _) = fetch(hyper::Method::HEAD, &get).await;
            assert_eq!(status, 403, "HEAD with a GET-signed URL");
            let sig = if v4auth {
                "X-Amz-Signature"
            } else {
                "Signature"
            };
            let zero_sig = if v4auth {
                "0".repeat(64)
            } else {
                "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()
            };
            let bad_sig = with_param(&get, sig, &zero_sig);
            assert_eq!(fetch(hyper::Method::GET, &bad_sig).await.0, 403);
            let bad_expiry = if v4auth {
                with_param(&get, "X-Amz-Expires", "86400")
            } else {
                let q: std::collections::BTreeMap<_, _> = get.query_pairs().into_owned().collect();
                let later = q["Expires"].parse::<i64>().unwrap() + 3600;
                with_param(&get, "Expires", &later.to_string())
            };
            assert_eq!(fetch(hyper::Method::GET, &bad_expiry).await.0, 403);
            let mut other_key = get.clone();
            other_key.set_path(&format!("{}x", get.path()));
            assert_eq!(fetch(hyper::Method::GET, &other_key).await.0, 403);
        }
    }

    #[tokio::test]
    async fn presigned_urls_v4() {
        presigned(true).await;
    }

    #[tokio::test]
    async fn presigned_urls_v2() {
        presigned(false).await;
    }

    /// A v2 request signed with the wrong secret is refused: the server really checks the
    /// signature this module computes (so the passing runs above prove it right).
    #[tokio::test]
    async fn wrong_secret_is_refused() {
        let Some(mut e) = env() else { return };
        if !verifies_signatures(&e) {
            eprintln!("skipped: server does not verify signatures");
            return;
        }
        let good = connect(&e, true).await;
        drop(good);
        e.secret_key.push('x');
        for v4auth in [true, false] {
            let p = Parameters::new()
                .with("regionendpoint", e.endpoint.as_str())
                .with("bucket", e.bucket.as_str())
                .with("accesskey", e.access_key.as_str())
                .with("secretkey", e.secret_key.as_str())
                .with("v4auth", v4auth);
            let conn = S3Connection::new(S3Config::from_parameters(&p).unwrap()).unwrap();
            let res = conn
                .client(Call::new(Operation::ListObjectsV2))
                .list_objects_v2(ListObjectsV2Request {
                    bucket: e.bucket.clone(),
                    max_keys: Some(1),
                    ..Default::default()
                })
                .await;
            let err = res.expect_err("a wrong secret must be refused").to_string();
            assert!(!err.contains(&e.secret_key), "{err}");
        }
    }

    use regstore_test_support::localhost_connector;

    /// Virtual-hosted addressing end to end (moto routes `bucket.localhost` by Host; it does
    /// not check signatures, so this proves addressing, not the vhost SigV2 resource).
    async fn virtual_hosted(v4auth: bool) {
        let Some(moto) = regstore_test_support::moto_env().map(|m| m.endpoint) else {
            return;
        };
        let port = url::Url::parse(&moto)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .expect("REGSTORE_MOTO_ENDPOINT is a URL with a port");
        let bucket = if v4auth {
            "drv-vhost-v4"
        } else {
            "drv-vhost-v2"
        };
        let p = Parameters::new()
            .with("regionendpoint", format!("http://localhost:{port}"))
            .with("forcepathstyle", false)
            .with("bucket", bucket)
            .with("accesskey", "AK")
            .with("secretkey", "SK")
            .with("v4auth", v4auth);
        let config = S3Config::from_parameters(&p).unwrap();
        let http = crate::client::http_client(&config, localhost_connector());
        let conn = S3Connection::with_http(config, Box::new(http)).unwrap();
        assert!(!conn.addressing.path_style);
        let c = |op| conn.client(Call::new(op));
        match c(Operation::CreateBucket)
            .create_bucket(CreateBucketRequest {
                bucket: bucket.into(),
                ..Default::default()
            })
            .await
        {
            Ok(_)
            | Err(rusoto_core::RusotoError::Service(
                CreateBucketError::BucketAlreadyOwnedByYou(_)
                | CreateBucketError::BucketAlreadyExists(_),
            )) => {}
            Err(err) => panic!("CreateBucket (vhost): {err}"),
        }
        let key = format!("{}obj", unique_prefix("vhost"));
        c(Operation::PutObject)
            .put_object(PutObjectRequest {
                bucket: bucket.into(),
                key: key.clone(),
                body: Some(b"virtual".to_vec().into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("PutObject (vhost): {err}"));
        assert_eq!(get_bytes(&conn, &key).await, b"virtual");
        let listed = c(Operation::ListObjectsV2)
            .list_objects_v2(ListObjectsV2Request {
                bucket: bucket.into(),
                prefix: Some(key.clone()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("ListObjectsV2 (vhost): {err}"));
        assert_eq!(listed.key_count, Some(1));

        let url = conn.presign(PresignMethod::Get, &key).await.unwrap();
        assert_eq!(url.host_str(), Some(format!("{bucket}.localhost").as_str()));
        assert_eq!(url.path(), format!("/{key}"));
        let client = hyper::Client::builder().build::<_, hyper::Body>(localhost_connector());
        let resp = client
            .get(url.as_str().parse().expect("presigned URL is a URI"))
            .await
            .expect("moto answers");
        assert_eq!(resp.status().as_u16(), 200);
        let body = hyper::body::to_bytes(resp.into_body()).await.unwrap();
        assert_eq!(&body[..], b"virtual");

        let deleted = c(Operation::DeleteObjects)
            .delete_objects(DeleteObjectsRequest {
                bucket: bucket.into(),
                delete: Delete {
                    objects: vec![ObjectIdentifier {
                        key: key.clone(),
                        version_id: None,
                    }],
                    quiet: None,
                },
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("DeleteObjects (vhost): {err}"));
        assert_eq!(deleted.deleted.unwrap_or_default().len(), 1);
        let stats = conn.stats.snapshot();
        assert_eq!(stats.get("PutObject"), Some(&1), "{stats:?}");
        assert_eq!(stats.get("DeleteObjects"), Some(&1), "{stats:?}");
        assert_eq!(stats.get("ListObjectsV2"), Some(&1), "{stats:?}");
    }

    #[tokio::test]
    async fn virtual_hosted_v4() {
        virtual_hosted(true).await;
    }

    #[tokio::test]
    async fn virtual_hosted_v2() {
        virtual_hosted(false).await;
    }
}
