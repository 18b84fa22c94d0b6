//! The S3 driver's configuration, parsed from a registry's `storage: s3:` parameters.
//!
//! Every parameter distribution's S3 driver documents is accepted with distribution's defaults,
//! except `v4auth`, which defaults to `true` here as in distribution's code (its documentation
//! said `false`; SigV2 is legacy and refused by most AWS regions). Later additions users rely on
//! — `forcepathstyle`, `sessiontoken`, `objectownership`, `urlexpiry`, connection-pool knobs —
//! are parsed too. Every invalid value is an [`Error::InvalidParameter`] naming the parameter and
//! what is allowed; no message carries a credential.

use std::time::Duration;

use regstore_driver_api::duration::{parse_duration_with, Syntax};
use regstore_driver_api::{Error, Parameters, Result, Value};

pub use crate::credentials::Credentials;

/// The driver name used in errors (distribution's `s3aws`).
pub(crate) const DRIVER_NAME: &str = "s3aws";

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Smallest part S3 accepts for a non-final multipart part.
pub const MIN_CHUNK_SIZE: u64 = 5 * MIB;
/// Largest part S3 accepts.
pub const MAX_CHUNK_SIZE: u64 = 5 * GIB;
/// Default `chunksize` (distribution: twice the minimum).
pub const DEFAULT_CHUNK_SIZE: u64 = 10 * MIB;
/// Default `multipartcopychunksize` and `multipartcopythresholdsize`.
pub const DEFAULT_MULTIPART_COPY_SIZE: u64 = 32 * MIB;
/// Default `multipartcopymaxconcurrency`.
pub const DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY: u64 = 100;
/// Default `multipartuploadconcurrency`: parts of one writer uploading at once.
pub const DEFAULT_MULTIPART_UPLOAD_CONCURRENCY: u64 = 4;
/// Largest `multipartuploadconcurrency`: a writer holds up to this many parts plus one in memory.
pub const MAX_MULTIPART_UPLOAD_CONCURRENCY: u64 = 64;
/// Default `readconcurrency`: parts of one read fetched at once (1 = one plain GetObject).
pub const DEFAULT_READ_CONCURRENCY: u64 = 4;
/// Largest `readconcurrency`: a reader holds up to this many parts in memory.
pub const MAX_READ_CONCURRENCY: u64 = 64;
/// Default `readchunksize`: bytes per ranged GET of a parallel read.
pub const DEFAULT_READ_CHUNK_SIZE: u64 = 8 * MIB;
/// Smallest `readchunksize`: below this, per-request overhead dominates.
pub const MIN_READ_CHUNK_SIZE: u64 = MIB;
/// Default `urlexpiry` (distribution's fixed 20 minutes).
pub const DEFAULT_REDIRECT_EXPIRY: Duration = Duration::from_secs(20 * 60);
/// Longest presigned URL SigV4 allows (7 days).
pub const MAX_REDIRECT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default `maxidleconnsperhost`.
pub const DEFAULT_MAX_IDLE_PER_HOST: u64 = 64;
/// Default `idleconntimeout` (Go's `http.DefaultTransport` value).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default `maxretries`: retries after the first attempt, so 5 attempts in all.
pub const DEFAULT_MAX_RETRIES: u64 = 4;
/// Largest `maxretries`.
pub const MAX_MAX_RETRIES: u64 = 20;
/// Default `connecttimeout`: establishing one TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `requesttimeout`: the longest one attempt may go without progress.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Default `operationtimeout`: the budget of one operation's attempts and back-off waits.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Storage classes accepted by `storageclass` (after upper-casing). `NONE` sends no header.
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "OUTPOSTS",
    "EXPRESS_ONEZONE",
    "NONE",
];

/// Canned ACLs accepted by `objectacl` (exact, case-sensitive, as distribution checks them).
pub const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// Values of `objectownership` (S3's bucket ownership controls).
pub const OBJECT_OWNERSHIP: &[&str] = &[
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
];

/// Every parameter key this driver reads; others are ignored with a warning, as distribution
/// ignores unknown keys.
const KNOWN_KEYS: &[&str] = &[
    "accesskey",
    "secretkey",
    "sessiontoken",
    "region",
    "regionendpoint",
    "bucket",
    "encrypt",
    "keyid",
    "secure",
    "skipverify",
    "v4auth",
    "chunksize",
    "multipartcopychunksize",
    "multipartcopymaxconcurrency",
    "multipartcopythresholdsize",
    "multipartuploadconcurrency",
    "readconcurrency",
    "readchunksize",
    "rootdirectory",
    "storageclass",
    "objectacl",
    "objectownership",
    "forcepathstyle",
    "useragent",
    "urlexpiry",
    "maxidleconnsperhost",
    "idleconntimeout",
    "maxretries",
    "connecttimeout",
    "requesttimeout",
    "operationtimeout",
    "usedualstack",
    "accelerate",
    "usefipsendpoint",
    "loglevel",
    "redirectendpoint",
    "usedelimiterwalk",
    "spooldir",
];

/// The parsed, validated configuration of one S3 driver instance.
///
/// Holds no rusoto type so it can be public. `Debug` is safe to log: [`Credentials`] redacts
/// the secret key and session token.
#[derive(Clone, Debug, PartialEq)]
pub struct S3Config {
    /// Bucket name (`bucket`, required).
    pub bucket: String,
    /// Signing region (`region`); `us-east-1` when `regionendpoint` is set and `region` is not.
    pub region: String,
    /// Custom endpoint (`regionendpoint`): an `http`/`https` URL with a host. `None` = AWS
    /// (`s3.<region>.amazonaws.com`).
    pub region_endpoint: Option<url::Url>,
    /// Path-style addressing (`forcepathstyle`); defaults to `true` when `regionendpoint` is
    /// set (MinIO, Ceph and most S3-compatible stores need it), `false` otherwise.
    pub force_path_style: bool,
    /// Use HTTPS when the endpoint does not name a scheme (`secure`, default `true`).
    pub secure: bool,
    /// Skip TLS certificate verification (`skipverify`, default `false`).
    pub skip_verify: bool,
    /// Sign with SigV4 (`v4auth`, default `true`); `false` = SigV2 (custom endpoints only).
    pub v4auth: bool,
    /// Server-side encryption on writes (`encrypt`).
    pub encrypt: bool,
    /// KMS key id (`keyid`); sent whenever set, `aws:kms` when `encrypt` is on.
    pub key_id: Option<String>,
    /// Multipart part size for writers (`chunksize`, [5 MiB, 5 GiB], default 10 MiB).
    pub chunk_size: u64,
    /// Part size for multipart copy (`multipartcopychunksize`, [5 MiB, 5 GiB], default 32 MiB).
    pub multipart_copy_chunk_size: u64,
    /// Concurrent `UploadPartCopy` calls (`multipartcopymaxconcurrency`, [1, 10000], default 100).
    pub multipart_copy_max_concurrency: usize,
    /// Objects up to this size move with one `CopyObject` (`multipartcopythresholdsize`,
    /// [0, 5 GiB], default 32 MiB); larger ones use multipart copy.
    pub multipart_copy_threshold_size: u64,
    /// Parts one writer uploads at once while its caller keeps writing
    /// (`multipartuploadconcurrency`, [1, 64], default 4). A writer holds at most
    /// `chunk_size × (this + 1)` bytes: the parts in flight and the one being filled.
    pub multipart_upload_concurrency: usize,
    /// Ranged GETs of one read in flight at once (`readconcurrency`, [1, 64], default 4); 1
    /// reads with one plain GetObject. A reader holds at most `read_chunk_size × this` bytes.
    pub read_concurrency: usize,
    /// Bytes per ranged GET of a parallel read (`readchunksize`, [1 MiB, 5 GiB], default
    /// 8 MiB). Independent of `chunksize`: read parts have no S3 minimum and must not change
    /// how objects are uploaded.
    pub read_chunk_size: u64,
    /// Key prefix (`rootdirectory`), normalised to `""` or `"some/prefix/"`: no leading `/`,
    /// exactly one trailing `/`. Key = `root_directory + path[1..]`, byte-compatible with
    /// distribution's `TrimLeft(TrimRight(root, "/") + path, "/")`.
    pub root_directory: String,
    /// `x-amz-storage-class` for writes; `None` when `storageclass: NONE` (send no header).
    pub storage_class: Option<String>,
    /// Canned ACL (`objectacl`, default `private`); `None` when `objectownership` is
    /// `BucketOwnerEnforced` (ACL-disabled buckets reject any ACL header).
    pub object_acl: Option<String>,
    /// Extra `User-Agent` text (`useragent`), appended to rusoto's.
    pub user_agent: Option<String>,
    /// Lifetime of presigned redirect URLs (`urlexpiry`, [1s, 7d], default 20 min); never
    /// beyond the expiry of temporary credentials.
    pub redirect_expiry: Duration,
    /// Idle keep-alive connections kept per host (`maxidleconnsperhost`, [0, 10000], default 64;
    /// 0 = close every connection after its request).
    pub max_idle_conns_per_host: usize,
    /// How long an idle keep-alive connection is kept (`idleconntimeout`, [0s, 1d], default
    /// 90s; 0 = no limit).
    pub idle_conn_timeout: Duration,
    /// Retries of a failed request that is safe to repeat (`maxretries`, [0, 20], default 4,
    /// so 5 attempts). See the `dispatch` module for what is retried.
    pub max_retries: u32,
    /// Longest wait for one TCP (and TLS) connection (`connecttimeout`, [1s, 10m], default 10s).
    pub connect_timeout: Duration,
    /// Longest time one attempt may go without progress — no request-body chunk taken, no
    /// response head, no response-body chunk (`requesttimeout`, [1s, 1h], default 120s). It is
    /// an inactivity limit, so large parts on slow links are not cut while bytes move.
    pub request_timeout: Duration,
    /// Budget of one operation (`operationtimeout`, [1s, 24h], default 15m): no attempt or
    /// back-off wait starts after it, and an attempt still waiting for its response when it
    /// runs out fails. A streaming GetObject body, once its head has arrived, is limited only
    /// by `requesttimeout`.
    pub operation_timeout: Duration,
    /// Dual-stack (IPv6) Amazon S3 endpoints (`usedualstack`, default `false`); see
    /// [`crate::endpoint`] for the hosts and the refused combinations.
    pub use_dualstack: bool,
    /// S3 Transfer Acceleration endpoints (`accelerate`, default `false`).
    pub accelerate: bool,
    /// FIPS endpoints (`usefipsendpoint`, default `false`).
    pub use_fips_endpoint: bool,
    /// Request logging (`loglevel`, default `off`), emitted as `tracing` events on target
    /// [`crate::loglevel::TARGET`].
    pub log_level: crate::loglevel::LogLevel,
    /// Public endpoint for presigned redirect URLs only (`redirectendpoint`): their scheme and
    /// host are replaced by this URL's before signing. `None` = the request endpoint.
    pub redirect_endpoint: Option<url::Url>,
    /// Walk with one delimiter listing per directory instead of one flat listing of every key
    /// (`usedelimiterwalk`, default `false`; distribution PR #4796).
    pub use_delimiter_walk: bool,
    /// Directory where each writer spools the part it is filling (`spooldir`; distribution
    /// PR #4920), instead of holding up to `chunksize` in memory. Checked writable at start-up.
    /// `None` = memory.
    pub spool_dir: Option<std::path::PathBuf>,
    /// Static keys or the provider chain.
    pub credentials: Credentials,
}

fn invalid(key: &str, message: impl Into<String>) -> Error {
    Error::invalid_parameter(DRIVER_NAME, key, message)
}

/// A string parameter where an empty string means "not set".
fn opt_string(p: &Parameters, key: &str) -> Result<Option<String>> {
    Ok(p.string(DRIVER_NAME, key)?.filter(|s| !s.is_empty()))
}

/// A secret string parameter. The generic getter's error would describe the value; a secret's
/// value must never be described, so only its type is named.
fn secret_string(p: &Parameters, key: &str) -> Result<Option<String>> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        // YAML reads an all-digit key as a number; distribution formats it back.
        Some(Value::Int(i)) => Ok(Some(i.to_string())),
        Some(Value::Float(_) | Value::Bool(_)) => Err(invalid(
            key,
            "must be a string (quote it in YAML); value not shown",
        )),
        Some(_) => Err(invalid(key, "must be a string; value not shown")),
    }
}

/// How an endpoint value appears in an error: quoted, unless it may carry user info
/// (`user:password@host`), which would put a credential into logs.
fn shown_url(raw: &str) -> String {
    if raw.contains('@') {
        "(value not shown: it carries user info)".to_owned()
    } else {
        format!("{raw:?}")
    }
}

/// Parses `regionendpoint`. Without a scheme (`minio:9000`, as the AWS SDKs accept) the scheme
/// follows `secure`.
fn parse_endpoint(raw: &str, secure: bool) -> Result<url::Url> {
    const KEY: &str = "regionendpoint";
    let shown = shown_url(raw);
    let with_scheme;
    let text = if raw.contains("://") {
        raw
    } else {
        with_scheme = format!("{}://{raw}", if secure { "https" } else { "http" });
        &with_scheme
    };
    let url = url::Url::parse(text).map_err(|e| {
        invalid(
            KEY,
            format!("must be an http or https URL such as http://minio:9000, got {shown}: {e}"),
        )
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(
            KEY,
            format!(
                "must use the http or https scheme, got {:?} in {shown}",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(KEY, format!("must name a host, got {shown}")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            KEY,
            format!("must not carry a query or fragment, got {shown}"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL here: it carries credentials.
        return Err(invalid(
            KEY,
            "must not carry credentials (user:password@); use accesskey and secretkey",
        ));
    }
    Ok(url)
}

/// Parses `redirectendpoint` with distribution's rules (HEAD, PR #4870): a URL with a scheme
/// and a host, no base path (empty or `/`) and no query. Also refused here: a scheme other
/// than http/https, a fragment, and user info (never echoed: it would be a credential).
fn parse_redirect_endpoint(raw: &str) -> Result<url::Url> {
    const KEY: &str = "redirectendpoint";
    let shown = shown_url(raw);
    if !raw.contains("://") {
        return Err(invalid(
            KEY,
            format!(
                "no scheme specified: must be a URL such as https://cdn.example.com, got {shown}"
            ),
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|e| invalid(KEY, format!("unable to parse {shown}: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            KEY,
            "must not carry credentials (user:password@); presigned URLs carry their own",
        ));
    }
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(
            KEY,
            format!(
                "must use the http or https scheme, got {:?} in {shown}",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(KEY, format!("no host specified in {shown}")));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(invalid(
            KEY,
            format!("cannot contain a base path: {:?}", url.path()),
        ));
    }
    if url.query().is_some() {
        return Err(invalid(
            KEY,
            format!("cannot contain query parameters: {shown}"),
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid(KEY, format!("cannot contain a fragment: {shown}")));
    }
    Ok(url)
}

/// The syntax of this driver's duration parameters: Go's, plus a whole number of seconds. They
/// are regstore's own parameters (distribution's S3 driver has no timeouts), so no `d`/`w`
/// (see `regstore_driver_api::duration`).
const DURATION_SYNTAX: Syntax = Syntax::GO.with_bare_seconds();

fn duration_param(
    p: &Parameters,
    key: &str,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration> {
    let allowed = || {
        format!(
            "must be a duration such as \"20m\" or \"1200s\", or a whole number of seconds, \
             between {}s and {}s (inclusive)",
            min.as_secs(),
            max.as_secs()
        )
    };
    let d = match p.get(key) {
        None => return Ok(default),
        Some(Value::Int(i)) => u64::try_from(*i)
            .map(Duration::from_secs)
            .map_err(|_| invalid(key, format!("{}, got {i}", allowed())))?,
        Some(Value::String(s)) => parse_duration_with(s.trim(), DURATION_SYNTAX)
            .map_err(|e| invalid(key, format!("{}, got {e}", allowed())))?,
        Some(v) => return Err(invalid(key, format!("{}, got {}", allowed(), v.describe()))),
    };
    if d < min || d > max {
        return Err(invalid(
            key,
            format!("{}, got {}s", allowed(), d.as_secs_f64()),
        ));
    }
    Ok(d)
}

/// `"/a/b/"`, `"a/b"`, `"/a/b"` → `"a/b/"`; `""` and `"/"` → `""`.
fn normalise_root(raw: &str) -> String {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

fn normalise_ownership(s: &str) -> String {
    OBJECT_OWNERSHIP
        .iter()
        .find(|o| o.eq_ignore_ascii_case(s))
        .map_or_else(|| s.to_owned(), |o| (*o).to_owned())
}

impl S3Config {
    /// The endpoint requests go to and the bucket addressing (see [`crate::endpoint`]). Fails
    /// only for a configuration [`from_parameters`](Self::from_parameters) would have refused.
    pub fn endpoint(&self) -> Result<crate::endpoint::Endpoint> {
        crate::endpoint::resolve(&crate::endpoint::EndpointOptions {
            region: &self.region,
            region_endpoint: self.region_endpoint.as_ref(),
            bucket: &self.bucket,
            secure: self.secure,
            force_path_style: self.force_path_style,
            dualstack: self.use_dualstack,
            fips: self.use_fips_endpoint,
            accelerate: self.accelerate,
        })
        .map_err(|e| invalid(e.parameter, e.message))
    }

    /// Parses and validates `p`. Unknown keys are ignored with a `warn!` naming them.
    pub fn from_parameters(p: &Parameters) -> Result<S3Config> {
        let unknown: Vec<&str> = p.keys().filter(|k| !KNOWN_KEYS.contains(k)).collect();
        if !unknown.is_empty() {
            tracing::warn!(driver = DRIVER_NAME, keys = ?unknown, "ignoring unknown S3 parameters");
        }

        let bucket = p
            .string(DRIVER_NAME, "bucket")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("bucket", "is required: the name of an existing bucket"))?;

        let secure = p.bool(DRIVER_NAME, "secure", true)?;
        let region_endpoint = opt_string(p, "regionendpoint")?
            .map(|s| parse_endpoint(&s, secure))
            .transpose()?;
        let region = match (opt_string(p, "region")?, &region_endpoint) {
            (Some(r), _) => r,
            (None, Some(_)) => "us-east-1".to_owned(),
            (None, None) => {
                return Err(invalid(
                    "region",
                    "is required when regionendpoint is not set (for example us-east-1)",
                ))
            }
        };

        let v4auth = p.bool(DRIVER_NAME, "v4auth", true)?;
        if !v4auth {
            match &region_endpoint {
                None => {
                    return Err(invalid(
                        "v4auth",
                        "false (SigV2) needs a regionendpoint: on Amazon S3 this storage driver \
                         can only be used with v4 authentication (SigV4; eu-central-1 and every \
                         region opened since 2014 refuse SigV2, and AWS has deprecated it \
                         everywhere); use v4auth: true",
                    ))
                }
                Some(u) if u.host_str().is_some_and(crate::endpoint::is_amazon_host) => {
                    return Err(invalid(
                        "v4auth",
                        "false (SigV2) cannot be used with an Amazon S3 (amazonaws.com) endpoint: \
                         on Amazon S3 this storage driver can only be used with v4 \
                         authentication (SigV4); use v4auth: true",
                    ))
                }
                Some(_) => {}
            }
        }

        let force_path_style = p.bool(DRIVER_NAME, "forcepathstyle", region_endpoint.is_some())?;
        let use_dualstack = p.bool(DRIVER_NAME, "usedualstack", false)?;
        let accelerate = p.bool(DRIVER_NAME, "accelerate", false)?;
        let use_fips_endpoint = p.bool(DRIVER_NAME, "usefipsendpoint", false)?;
        crate::endpoint::resolve(&crate::endpoint::EndpointOptions {
            region: &region,
            region_endpoint: region_endpoint.as_ref(),
            bucket: &bucket,
            secure,
            force_path_style,
            dualstack: use_dualstack,
            fips: use_fips_endpoint,
            accelerate,
        })
        .map_err(|e| invalid(e.parameter, e.message))?;
        let log_level = crate::loglevel::LogLevel::from_parameters(p)?;
        let redirect_endpoint = opt_string(p, "redirectendpoint")?
            .map(|s| parse_redirect_endpoint(&s))
            .transpose()?;
        let use_delimiter_walk = p.bool(DRIVER_NAME, "usedelimiterwalk", false)?;
        let spool_dir = opt_string(p, "spooldir")?
            .map(|s| {
                let dir = std::path::PathBuf::from(s);
                crate::spool::probe(&dir).map(|()| dir).map_err(|why| {
                    invalid("spooldir", format!("must be a writable directory: {why}"))
                })
            })
            .transpose()?;
        let skip_verify = p.bool(DRIVER_NAME, "skipverify", false)?;
        let encrypt = p.bool(DRIVER_NAME, "encrypt", false)?;
        let key_id = opt_string(p, "keyid")?;

        let chunk_size = p.int_in_range(
            DRIVER_NAME,
            "chunksize",
            DEFAULT_CHUNK_SIZE,
            MIN_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
        )?;
        let multipart_copy_chunk_size = p.int_in_range(
            DRIVER_NAME,
            "multipartcopychunksize",
            DEFAULT_MULTIPART_COPY_SIZE,
            MIN_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
        )?;
        let multipart_copy_max_concurrency = p.int_in_range(
            DRIVER_NAME,
            "multipartcopymaxconcurrency",
            DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY,
            1,
            10_000,
        )? as usize;
        let multipart_copy_threshold_size = p.int_in_range(
            DRIVER_NAME,
            "multipartcopythresholdsize",
            DEFAULT_MULTIPART_COPY_SIZE,
            0,
            MAX_CHUNK_SIZE,
        )?;
        let multipart_upload_concurrency = p.int_in_range(
            DRIVER_NAME,
            "multipartuploadconcurrency",
            DEFAULT_MULTIPART_UPLOAD_CONCURRENCY,
            1,
            MAX_MULTIPART_UPLOAD_CONCURRENCY,
        )? as usize;
        let read_concurrency = p.int_in_range(
            DRIVER_NAME,
            "readconcurrency",
            DEFAULT_READ_CONCURRENCY,
            1,
            MAX_READ_CONCURRENCY,
        )? as usize;
        let read_chunk_size = p.int_in_range(
            DRIVER_NAME,
            "readchunksize",
            DEFAULT_READ_CHUNK_SIZE,
            MIN_READ_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
        )?;

        let root_directory =
            normalise_root(&p.string(DRIVER_NAME, "rootdirectory")?.unwrap_or_default());

        let storage_class = p.one_of(
            DRIVER_NAME,
            "storageclass",
            "STANDARD",
            STORAGE_CLASSES,
            |s| s.to_ascii_uppercase(),
        )?;
        let storage_class = (storage_class != "NONE").then_some(storage_class);

        let object_acl = p.one_of(DRIVER_NAME, "objectacl", "private", CANNED_ACLS, |s| {
            s.to_owned()
        })?;
        let ownership = p.one_of(
            DRIVER_NAME,
            "objectownership",
            "ObjectWriter",
            OBJECT_OWNERSHIP,
            normalise_ownership,
        )?;
        let object_acl = (ownership != "BucketOwnerEnforced").then_some(object_acl);

        let user_agent = opt_string(p, "useragent")?;
        if let Some(ua) = &user_agent {
            if ua.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "useragent",
                    "must not contain control characters such as newlines",
                ));
            }
        }

        let redirect_expiry = duration_param(
            p,
            "urlexpiry",
            DEFAULT_REDIRECT_EXPIRY,
            Duration::from_secs(1),
            MAX_REDIRECT_EXPIRY,
        )?;
        let max_idle_conns_per_host = p.int_in_range(
            DRIVER_NAME,
            "maxidleconnsperhost",
            DEFAULT_MAX_IDLE_PER_HOST,
            0,
            10_000,
        )? as usize;
        let idle_conn_timeout = duration_param(
            p,
            "idleconntimeout",
            DEFAULT_IDLE_TIMEOUT,
            Duration::ZERO,
            Duration::from_secs(24 * 3600),
        )?;

        let max_retries = p.int_in_range(
            DRIVER_NAME,
            "maxretries",
            DEFAULT_MAX_RETRIES,
            0,
            MAX_MAX_RETRIES,
        )? as u32;
        let connect_timeout = duration_param(
            p,
            "connecttimeout",
            DEFAULT_CONNECT_TIMEOUT,
            Duration::from_secs(1),
            Duration::from_secs(600),
        )?;
        let request_timeout = duration_param(
            p,
            "requesttimeout",
            DEFAULT_REQUEST_TIMEOUT,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?;
        let operation_timeout = duration_param(
            p,
            "operationtimeout",
            DEFAULT_OPERATION_TIMEOUT,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        )?;

        let access_key = secret_string(p, "accesskey")?;
        let secret_key = secret_string(p, "secretkey")?;
        let session_token = secret_string(p, "sessiontoken")?;
        let credentials = match (access_key, secret_key) {
            (Some(access_key), Some(secret_key)) => Credentials::Static {
                access_key,
                secret_key,
                session_token,
            },
            (ak, sk) => {
                if ak.is_some() || sk.is_some() {
                    tracing::warn!(
                        driver = DRIVER_NAME,
                        "only one of accesskey and secretkey is set; both are needed for static \
                         credentials, using the AWS default chain instead (environment, web \
                         identity, profile, container endpoint, IMDSv2; see docs/aws.md)"
                    );
                }
                if session_token.is_some() {
                    tracing::warn!(
                        driver = DRIVER_NAME,
                        "sessiontoken is ignored without accesskey and secretkey"
                    );
                }
                Credentials::Chain
            }
        };

        Ok(S3Config {
            bucket,
            region,
            region_endpoint,
            force_path_style,
            secure,
            skip_verify,
            v4auth,
            encrypt,
            key_id,
            chunk_size,
            multipart_copy_chunk_size,
            multipart_copy_max_concurrency,
            multipart_copy_threshold_size,
            multipart_upload_concurrency,
            read_concurrency,
            read_chunk_size,
            root_directory,
            storage_class,
            object_acl,
            user_agent,
            redirect_expiry,
            max_idle_conns_per_host,
            idle_conn_timeout,
            max_retries,
            connect_timeout,
            request_timeout,
            operation_timeout,
            use_dualstack,
            accelerate,
            use_fips_endpoint,
            log_level,
            redirect_endpoint,
            use_delimiter_walk,
            spool_dir,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "SESSIONTOKEN-EXAMPLE-0123456789";

    fn yaml(s: &str) -> Parameters {
        serde_yaml_ng::from_str(s).expect("test YAML parses")
    }

    fn base() -> Parameters {
        Parameters::new()
            .with("bucket", "b")
            .with("region", "us-east-1")
    }

    fn err(p: &Parameters) -> String {
        S3Config::from_parameters(p)
            .expect_err("configuration must be rejected")
            .to_string()
    }

    fn assert_err(p: &Parameters, key: &str, needles: &[&str]) {
        let e = S3Config::from_parameters(p).expect_err("configuration must be rejected");
        match &e {
            Error::InvalidParameter { parameter, .. } => assert_eq!(parameter, key, "{e}"),
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
        let s = e.to_string();
        assert!(s.starts_with("s3aws: invalid parameter "), "{s}");
        for n in needles {
            assert!(s.contains(n), "{s:?} should contain {n:?}");
        }
    }

    #[test]
    fn defaults() {
        let c = S3Config::from_parameters(&base()).unwrap();
        assert_eq!(c.bucket, "b");
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.region_endpoint, None);
        assert!(!c.force_path_style);
        assert!(c.secure && !c.skip_verify && c.v4auth && !c.encrypt);
        assert_eq!(c.key_id, None);
        assert_eq!(c.chunk_size, 10 * MIB);
        assert_eq!(c.multipart_copy_chunk_size, 32 * MIB);
        assert_eq!(c.multipart_copy_max_concurrency, 100);
        assert_eq!(c.multipart_copy_threshold_size, 32 * MIB);
        assert_eq!(c.root_directory, "");
        assert_eq!(c.storage_class.as_deref(), Some("STANDARD"));
        assert_eq!(c.object_acl.as_deref(), Some("private"));
        assert_eq!(c.user_agent, None);
        assert_eq!(c.redirect_expiry, Duration::from_secs(1200));
        assert_eq!(c.max_idle_conns_per_host, 64);
        assert_eq!(c.idle_conn_timeout, Duration::from_secs(90));
        assert_eq!(c.credentials, Credentials::Chain);
    }

    #[test]
    fn full_yaml_config() {
        let c = S3Config::from_parameters(&yaml(
            r#"
accesskey: AKIDEXAMPLE
secretkey: SECRETEXAMPLE
sessiontoken: tok
region: eu-west-1
regionendpoint: http://127.0.0.1:9007
bucket: registry
encrypt: "true"
keyid: testkey-1
secure: false
skipverify: "1"
v4auth: "false"
chunksize: "5242880"
multipartcopychunksize: 6291456
multipartcopymaxconcurrency: "7"
multipartcopythresholdsize: 0
rootdirectory: /registry/
storageclass: standard_ia
objectacl: bucket-owner-full-control
forcepathstyle: False
useragent: regstore-test/1
urlexpiry: 1h30m
maxidleconnsperhost: "8"
idleconntimeout: 15
"#,
        ))
        .unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(
            c.region_endpoint.as_ref().map(url::Url::as_str),
            Some("http://127.0.0.1:9007/")
        );
        assert!(!c.force_path_style);
        assert!(c.encrypt && !c.secure && c.skip_verify && !c.v4auth);
        assert_eq!(c.key_id.as_deref(), Some("testkey-1"));
        assert_eq!(c.chunk_size, 5 * MIB);
        assert_eq!(c.multipart_copy_chunk_size, 6 * MIB);
        assert_eq!(c.multipart_copy_max_concurrency, 7);
        assert_eq!(c.multipart_copy_threshold_size, 0);
        assert_eq!(c.root_directory, "registry/");
        assert_eq!(c.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(c.object_acl.as_deref(), Some("bucket-owner-full-control"));
        assert_eq!(c.user_agent.as_deref(), Some("regstore-test/1"));
        assert_eq!(c.redirect_expiry, Duration::from_secs(5400));
        assert_eq!(c.max_idle_conns_per_host, 8);
        assert_eq!(c.idle_conn_timeout, Duration::from_secs(15));
        assert_eq!(
            c.credentials,
            Credentials::Static {
                access_key: "AKIDEXAMPLE".into(),
                secret_key: "SECRETEXAMPLE".into(),
                session_token: Some("tok".into()),
            }
        );
    }

    #[test]
    fn endpoint_defaults_region_and_path_style() {
        let c = S3Config::from_parameters(
            &Parameters::new()
                .with("bucket", "b")
                .with("regionendpoint", "https://minio.example:9000"),
        )
        .unwrap();
        assert_eq!(c.region, "us-east-1");
        assert!(c.force_path_style, "regionendpoint implies path style");
        let c = S3Config::from_parameters(&base().with("forcepathstyle", true)).unwrap();
        assert!(
            c.force_path_style,
            "forcepathstyle works without an endpoint"
        );
        // Any region name is accepted: no baked-in list.
        let c = S3Config::from_parameters(&base().with("region", "xx-future-9")).unwrap();
        assert_eq!(c.region, "xx-future-9");
    }

    #[test]
    fn missing_bucket_and_region() {
        assert_err(
            &Parameters::new().with("region", "us-east-1"),
            "bucket",
            &["required"],
        );
        assert_err(&base().with("bucket", ""), "bucket", &["required"]);
        assert_err(
            &Parameters::new().with("bucket", "b"),
            "region",
            &["regionendpoint"],
        );
        assert_err(
            &Parameters::new().with("bucket", "b").with("region", ""),
            "region",
            &["required"],
        );
    }

    #[test]
    fn bad_endpoints() {
        for (ep, needle) in [
            ("not a url", "http or https URL"),
            ("ftp://minio:9000", "scheme"),
            ("file:///tmp/x", "scheme"),
            ("http://minio:9000/?x=1", "query"),
        ] {
            assert_err(
                &base().with("regionendpoint", ep),
                "regionendpoint",
                &[needle],
            );
        }
        // No scheme: `secure` decides.
        for (secure, want) in [(true, "https://minio:9000/"), (false, "http://minio:9000/")] {
            let c = S3Config::from_parameters(
                &base()
                    .with("regionendpoint", "minio:9000")
                    .with("secure", secure),
            )
            .unwrap();
            assert_eq!(c.region_endpoint.map(String::from).as_deref(), Some(want));
        }
        let e = err(&base().with("regionendpoint", "http://user:hunter2@minio:9000"));
        assert!(e.contains("credentials") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn endpoint_options_parse_and_refuse_bad_combinations() {
        let c = S3Config::from_parameters(&base()).unwrap();
        assert!(!c.use_dualstack && !c.accelerate && !c.use_fips_endpoint);
        assert!(!c.use_delimiter_walk && c.redirect_endpoint.is_none());
        assert_eq!(c.log_level, crate::loglevel::LogLevel::Off);
        let c = S3Config::from_parameters(&yaml(
            "bucket: bkt\nregion: us-gov-west-1\nusedualstack: true\nusefipsendpoint: \"true\"\n\
             usedelimiterwalk: true\nloglevel: debugwithsigning\n",
        ))
        .unwrap();
        assert!(c.use_dualstack && c.use_fips_endpoint && c.use_delimiter_walk);
        assert_eq!(c.log_level, crate::loglevel::LogLevel::DebugWithSigning);
        assert_eq!(
            c.endpoint().unwrap().base,
            "https://s3-fips.dualstack.us-gov-west-1.amazonaws.com"
        );
        // YAML `off` is a boolean false: logging off, as distribution reads it.
        let c = S3Config::from_parameters(&yaml("bucket: b\nregion: r\nloglevel: off\n")).unwrap();
        assert_eq!(c.log_level, crate::loglevel::LogLevel::Off);
        assert_err(
            &base().with("loglevel", "verbose"),
            "loglevel",
            &["debugwithhttpbody", "\"verbose\""],
        );
        for key in [
            "usedualstack",
            "accelerate",
            "usefipsendpoint",
            "usedelimiterwalk",
        ] {
            assert_err(&base().with(key, "yes"), key, &["boolean"]);
        }
        assert_err(
            &base()
                .with("accelerate", true)
                .with("usefipsendpoint", true),
            "accelerate",
            &["FIPS"],
        );
        assert_err(
            &base().with("bucket", "my.bucket").with("accelerate", true),
            "accelerate",
            &["\"my.bucket\"", "dots"],
        );
        assert_err(
            &base().with("accelerate", true).with("forcepathstyle", true),
            "accelerate",
            &["forcepathstyle"],
        );
        for key in ["accelerate", "usedualstack", "usefipsendpoint"] {
            assert_err(
                &base()
                    .with("regionendpoint", "http://minio:9000")
                    .with(key, true),
                key,
                &["regionendpoint"],
            );
        }
        assert_err(
            &base()
                .with("region", "cn-north-1")
                .with("usefipsendpoint", true),
            "usefipsendpoint",
            &["aws-cn"],
        );
        assert_err(
            &base().with("region", "EU-WEST-1"),
            "region",
            &["host name"],
        );
        // With a custom endpoint the region only signs: any text goes.
        S3Config::from_parameters(
            &base()
                .with("region", "Garage Region")
                .with("regionendpoint", "http://127.0.0.1:3900"),
        )
        .unwrap();
        // Dotted buckets work on AWS, path style, in every partition.
        for region in ["us-east-1", "cn-north-1", "us-gov-east-1"] {
            let c =
                S3Config::from_parameters(&base().with("region", region).with("bucket", "a.b.c"))
                    .unwrap();
            let e = c.endpoint().unwrap();
            assert!(e.path_style && e.base.contains(region), "{e:?}");
        }
    }

    #[test]
    fn spooldir_must_be_a_writable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let c = S3Config::from_parameters(
            &base().with("spooldir", dir.path().to_string_lossy().into_owned()),
        )
        .unwrap();
        assert_eq!(c.spool_dir.as_deref(), Some(dir.path()));
        assert_eq!(S3Config::from_parameters(&base()).unwrap().spool_dir, None);
        assert_err(
            &base().with(
                "spooldir",
                dir.path().join("missing").to_string_lossy().into_owned(),
            ),
            "spooldir",
            &["writable directory", "not a directory"],
        );
        #[cfg(target_os = "linux")]
        assert_err(
            &base().with("spooldir", "/proc"),
            "spooldir",
            &["cannot create"],
        );
    }

    #[test]
    fn redirect_endpoint_validation() {
        let c = S3Config::from_parameters(
            &base().with("redirectendpoint", "https://cdn.example:8443/"),
        )
        .unwrap();
        assert_eq!(
            c.redirect_endpoint.map(String::from).as_deref(),
            Some("https://cdn.example:8443/")
        );
        for (raw, needle) in [
            ("cdn.example", "no scheme"),
            ("https://", "unable to parse"),
            ("https://cdn.example/base", "base path"),
            ("https://cdn.example/?a=b", "query"),
            ("https://cdn.example/#x", "fragment"),
            ("ftp://cdn.example", "scheme"),
        ] {
            assert_err(
                &base().with("redirectendpoint", raw),
                "redirectendpoint",
                &[needle],
            );
        }
        let e = err(&base().with("redirectendpoint", "https://u:hunter2@cdn.example"));
        assert!(e.contains("credentials") && !e.contains("hunter2"), "{e}");
        let e = err(&base().with("redirectendpoint", "https://u:hunter2@[bad"));
        assert!(!e.contains("hunter2"), "{e}");
        // Without a scheme, and for regionendpoint too: user info is never echoed.
        let e = err(&base().with("redirectendpoint", "u:hunter2@cdn.example"));
        assert!(e.contains("no scheme") && !e.contains("hunter2"), "{e}");
        let e = err(&base().with("regionendpoint", "ftp://u:hunter2@minio:9000"));
        assert!(e.contains("scheme") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn v4auth_false_rules() {
        assert_err(
            &base().with("v4auth", false),
            "v4auth",
            &[
                "regionendpoint",
                "SigV4",
                "2014",
                "only be used with v4 authentication",
            ],
        );
        for host in [
            "https://s3.cn-north-1.amazonaws.com.cn",
            "https://bkt.s3.amazonaws.com",
        ] {
            assert_err(
                &base().with("v4auth", false).with("regionendpoint", host),
                "v4auth",
                &["Amazon S3", "v4 authentication"],
            );
        }
        assert_err(
            &base()
                .with("v4auth", "false")
                .with("regionendpoint", "https://s3.eu-central-1.amazonaws.com"),
            "v4auth",
            &["amazonaws.com", "SigV4"],
        );
        let c = S3Config::from_parameters(
            &base()
                .with("v4auth", false)
                .with("regionendpoint", "http://127.0.0.1:9007"),
        )
        .unwrap();
        assert!(!c.v4auth);
    }

    #[test]
    fn booleans() {
        for key in [
            "encrypt",
            "secure",
            "skipverify",
            "v4auth",
            "forcepathstyle",
        ] {
            assert_err(&base().with(key, "yes"), key, &["boolean", "\"yes\""]);
            assert_err(&base().with(key, 1i64), key, &["boolean"]);
        }
        for (v, want) in [("t", true), ("TRUE", true), ("0", false), ("False", false)] {
            let c = S3Config::from_parameters(&base().with("encrypt", v)).unwrap();
            assert_eq!(c.encrypt, want, "{v}");
        }
    }

    #[test]
    fn integer_ranges() {
        let cases: &[(&str, i64, &str)] = &[
            (
                "chunksize",
                5 * MIB as i64 - 1,
                "between 5242880 and 5368709120",
            ),
            (
                "chunksize",
                5 * GIB as i64 + 1,
                "between 5242880 and 5368709120",
            ),
            (
                "multipartcopychunksize",
                1,
                "between 5242880 and 5368709120",
            ),
            (
                "multipartcopychunksize",
                6 * GIB as i64,
                "between 5242880 and 5368709120",
            ),
            ("multipartcopymaxconcurrency", 0, "between 1 and 10000"),
            ("multipartcopymaxconcurrency", 10_001, "between 1 and 10000"),
            ("multipartcopythresholdsize", -1, "between 0 and 5368709120"),
            (
                "multipartcopythresholdsize",
                5 * GIB as i64 + 1,
                "between 0 and 5368709120",
            ),
            ("maxidleconnsperhost", -1, "between 0 and 10000"),
        ];
        for (key, v, needle) in cases {
            assert_err(&base().with(*key, *v), key, &[needle]);
            assert_err(&base().with(*key, v.to_string()), key, &[needle]);
        }
        assert_err(&base().with("chunksize", "ten"), "chunksize", &["\"ten\""]);
        assert_err(
            &base().with("chunksize", true),
            "chunksize",
            &["whole number"],
        );
        // The bounds themselves are accepted.
        for (key, v) in [
            ("chunksize", 5 * MIB),
            ("chunksize", 5 * GIB),
            ("multipartcopymaxconcurrency", 10_000),
            ("multipartcopythresholdsize", 0),
        ] {
            S3Config::from_parameters(&base().with(key, v as i64)).unwrap();
        }
    }

    #[test]
    fn multipart_upload_concurrency_default_bounds_and_rejections() {
        let c = S3Config::from_parameters(&base()).unwrap();
        assert_eq!(c.multipart_upload_concurrency, 4);
        for v in [1i64, 64] {
            let c =
                S3Config::from_parameters(&base().with("multipartuploadconcurrency", v)).unwrap();
            assert_eq!(c.multipart_upload_concurrency, v as usize);
        }
        for v in [0i64, 65, -1] {
            assert_err(
                &base().with("multipartuploadconcurrency", v),
                "multipartuploadconcurrency",
                &["between 1 and 64"],
            );
        }
    }

    #[test]
    fn read_parameters_default_bounds_and_rejections() {
        let c = S3Config::from_parameters(&base()).unwrap();
        assert_eq!(c.read_concurrency, 4);
        assert_eq!(c.read_chunk_size, 8 * MIB);
        for v in [1i64, 64] {
            let c = S3Config::from_parameters(&base().with("readconcurrency", v)).unwrap();
            assert_eq!(c.read_concurrency, v as usize);
        }
        for v in [0i64, 65, -1] {
            assert_err(
                &base().with("readconcurrency", v),
                "readconcurrency",
                &["between 1 and 64"],
            );
        }
        for v in [MIB as i64, 5 * GIB as i64] {
            let c = S3Config::from_parameters(&base().with("readchunksize", v)).unwrap();
            assert_eq!(c.read_chunk_size, v as u64);
        }
        for v in [0i64, MIB as i64 - 1, 5 * GIB as i64 + 1] {
            assert_err(
                &base().with("readchunksize", v),
                "readchunksize",
                &["between 1048576 and 5368709120"],
            );
        }
        assert_err(
            &base().with("readconcurrency", "four"),
            "readconcurrency",
            &["\"four\""],
        );
    }

    #[test]
    fn storage_classes() {
        for class in STORAGE_CLASSES {
            let c =
                S3Config::from_parameters(&base().with("storageclass", class.to_ascii_lowercase()))
                    .unwrap();
            if *class == "NONE" {
                assert_eq!(c.storage_class, None);
            } else {
                assert_eq!(c.storage_class.as_deref(), Some(*class));
            }
        }
        assert_err(
            &base().with("storageclass", "GLACIER"),
            "storageclass",
            &[
                "STANDARD, REDUCED_REDUNDANCY",
                "EXPRESS_ONEZONE, NONE",
                "\"GLACIER\"",
            ],
        );
        assert_err(
            &base().with("storageclass", 5i64),
            "storageclass",
            &["\"5\""],
        );
    }

    #[test]
    fn acls_and_ownership() {
        for acl in CANNED_ACLS {
            let c = S3Config::from_parameters(&base().with("objectacl", *acl)).unwrap();
            assert_eq!(c.object_acl.as_deref(), Some(*acl));
        }
        assert_err(
            &base().with("objectacl", "Private"),
            "objectacl",
            &["public-read", "\"Private\""],
        );
        assert_err(
            &base().with("objectacl", "log-delivery-write"),
            "objectacl",
            &["bucket-owner-full-control"],
        );
        let c = S3Config::from_parameters(
            &base()
                .with("objectownership", "BucketOwnerEnforced")
                .with("objectacl", "public-read"),
        )
        .unwrap();
        assert_eq!(c.object_acl, None, "ACL-disabled bucket: no ACL header");
        for o in ["bucketownerpreferred", "ObjectWriter"] {
            let c = S3Config::from_parameters(&base().with("objectownership", o)).unwrap();
            assert_eq!(c.object_acl.as_deref(), Some("private"));
        }
        assert_err(
            &base().with("objectownership", "Owner"),
            "objectownership",
            &["BucketOwnerEnforced, BucketOwnerPreferred, ObjectWriter"],
        );
    }

    #[test]
    fn root_directory_normalisation() {
        for (raw, want) in [
            ("", ""),
            ("/", ""),
            ("//", ""),
            ("/registry/", "registry/"),
            ("registry", "registry/"),
            ("/a/b", "a/b/"),
        ] {
            let c = S3Config::from_parameters(&base().with("rootdirectory", raw)).unwrap();
            assert_eq!(c.root_directory, want, "{raw:?}");
        }
    }

    #[test]
    fn durations() {
        for (raw, secs) in [
            ("20m", 1200.0),
            ("1200s", 1200.0),
            ("1200", 1200.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("168h", 604800.0),
            ("1500ms", 1.5),
        ] {
            let c = S3Config::from_parameters(&base().with("urlexpiry", raw)).unwrap();
            assert_eq!(c.redirect_expiry.as_secs_f64(), secs, "{raw}");
        }
        let c = S3Config::from_parameters(&base().with("urlexpiry", 60i64)).unwrap();
        assert_eq!(c.redirect_expiry, Duration::from_secs(60));
        for raw in ["0s", "500ms", "169h", "8d", "soon", "-5m", "m", "5x"] {
            assert_err(
                &base().with("urlexpiry", raw),
                "urlexpiry",
                &["between 1s and 604800s"],
            );
        }
        assert_err(
            &base().with("urlexpiry", 0i64),
            "urlexpiry",
            &["between 1s"],
        );
        assert_err(&base().with("urlexpiry", -3i64), "urlexpiry", &["got -3"]);
        assert_err(&base().with("urlexpiry", true), "urlexpiry", &["duration"]);
        let c = S3Config::from_parameters(&base().with("idleconntimeout", "0")).unwrap();
        assert_eq!(c.idle_conn_timeout, Duration::ZERO);
        assert_err(
            &base().with("idleconntimeout", "25h"),
            "idleconntimeout",
            &["86400s"],
        );
        let c = S3Config::from_parameters(&base().with("connecttimeout", "2m3.5s")).unwrap();
        assert_eq!(c.connect_timeout, Duration::from_millis(123_500));
        for raw in ["", "1.2.3s", "1e3s", "2 m", "3d"] {
            assert_err(
                &base().with("connecttimeout", raw),
                "connecttimeout",
                &[&format!("got invalid duration {raw:?}")],
            );
        }
    }

    #[test]
    fn retry_and_timeout_parameters() {
        let c = S3Config::from_parameters(&base()).unwrap();
        assert_eq!(c.max_retries, 4);
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.request_timeout, Duration::from_secs(120));
        assert_eq!(c.operation_timeout, Duration::from_secs(900));
        let c = S3Config::from_parameters(&yaml(
            "bucket: b\nregion: us-east-1\nmaxretries: 0\nconnecttimeout: 3s\n\
                 requesttimeout: \"2m30s\"\noperationtimeout: 1h\n",
        ))
        .unwrap();
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        assert_eq!(c.request_timeout, Duration::from_secs(150));
        assert_eq!(c.operation_timeout, Duration::from_secs(3600));
        let c = S3Config::from_parameters(&base().with("maxretries", "20")).unwrap();
        assert_eq!(c.max_retries, 20);
        for bad in ["21", "-1", "many"] {
            assert_err(
                &base().with("maxretries", bad),
                "maxretries",
                &["between 0 and 20"],
            );
        }
        assert_err(
            &base().with("connecttimeout", "0s"),
            "connecttimeout",
            &["between 1s and 600s"],
        );
        assert_err(
            &base().with("requesttimeout", "2h"),
            "requesttimeout",
            &["between 1s and 3600s"],
        );
        assert_err(
            &base().with("operationtimeout", "soon"),
            "operationtimeout",
            &["between 1s and 86400s"],
        );
    }

    #[test]
    fn useragent_control_characters_rejected() {
        assert_err(
            &base().with("useragent", "a\r\nX-Evil: 1"),
            "useragent",
            &["control"],
        );
    }

    #[test]
    fn credentials_selection() {
        let c = S3Config::from_parameters(&base().with("accesskey", "AK")).unwrap();
        assert_eq!(c.credentials, Credentials::Chain, "secret missing → chain");
        let c = S3Config::from_parameters(
            &base()
                .with("accesskey", "")
                .with("secretkey", "")
                .with("sessiontoken", "t"),
        )
        .unwrap();
        assert_eq!(c.credentials, Credentials::Chain, "empty keys → chain");
        let c = S3Config::from_parameters(&base().with("accesskey", "AK").with("secretkey", "SK"))
            .unwrap();
        assert_eq!(
            c.credentials,
            Credentials::Static {
                access_key: "AK".into(),
                secret_key: "SK".into(),
                session_token: None
            }
        );
    }

    #[test]
    fn secrets_never_in_debug_or_errors() {
        let p = base()
            .with("accesskey", "AKIAIOSFODNN7EXAMPLE")
            .with("secretkey", SECRET)
            .with("sessiontoken", TOKEN);
        let c = S3Config::from_parameters(&p).unwrap();
        for s in [format!("{c:?}"), format!("{c:#?}"), format!("{p:?}")] {
            assert!(!s.contains(SECRET) && !s.contains(TOKEN), "{s}");
        }
        // Every error path with the secrets present in the map.
        let bad = [
            p.clone().with("chunksize", 1i64),
            p.clone().with("bucket", ""),
            p.clone().with("storageclass", "x"),
            p.clone().with("v4auth", false),
            p.clone().with("urlexpiry", "x"),
            p.clone().with("regionendpoint", "ftp://x"),
        ];
        for b in &bad {
            let e = S3Config::from_parameters(b).unwrap_err();
            for s in [e.to_string(), format!("{e:?}")] {
                assert!(!s.contains(SECRET) && !s.contains(TOKEN), "{s}");
            }
        }
        // A secret given with the wrong YAML type is not echoed either.
        for key in ["secretkey", "sessiontoken", "accesskey"] {
            let e =
                S3Config::from_parameters(&base().with(key, Value::Float(98765.4321))).unwrap_err();
            for s in [e.to_string(), format!("{e:?}")] {
                assert!(s.contains(key) && !s.contains("98765"), "{s}");
            }
        }
        // An all-digit key (YAML integer) is taken as its decimal text.
        let c = S3Config::from_parameters(&yaml(
            "bucket: b\nregion: r\naccesskey: 123\nsecretkey: 456\n",
        ))
        .unwrap();
        assert_eq!(
            c.credentials,
            Credentials::Static {
                access_key: "123".into(),
                secret_key: "456".into(),
                session_token: None
            }
        );
    }
}
