//! AWS Signature Version 2 for S3 (`v4auth: false`), header and query-string (presigned) forms.
//!
//! String-to-sign, as AWS specifies it and distribution's signer builds it:
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Date \n CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! * Date is the `Date` header, empty when an `x-amz-date` header is present, and the `Expires`
//!   value (seconds since the epoch) for query-string authentication.
//! * CanonicalizedAmzHeaders: every `x-amz-*` header, lower-cased, values trimmed and joined
//!   with `,`, as `name:value\n`, sorted by name.
//! * CanonicalizedResource: the path as sent (path style: `/bucket/key`, and `/bucket` — not
//!   `/bucket/` — for bucket-level requests; virtual-hosted style: `/bucket` + the path sent),
//!   then `?` and the sorted sub-resources of a fixed list, `k` or `k=v` with raw values.
//! * Signature = base64(HMAC-SHA1(secret, string-to-sign)).
//!
//! Reference: Amazon S3 API Reference, "Signing and authenticating REST requests (AWS signature
//! version 2)", <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html>
//! (sections "Constructing the CanonicalizedResource element", "Authentication examples" and
//! "Query string request authentication alternative"); the unit tests below use its examples.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::hmac;
use rusoto_core::signature::SignedRequest;
use rusoto_credential::AwsCredentials;

/// Query parameters that are part of the canonical resource (AWS's list, as distribution's
/// signer has it). Others — `list-type`, `prefix`, `max-keys`, … — are not signed.
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "delete",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Request headers as rusoto keeps them: names (lower-cased by `add_header`, but the map is
/// public, so not necessarily), one or more values each.
pub(crate) type Headers = BTreeMap<String, Vec<Vec<u8>>>;

/// `headers` with every name lower-cased and the values of names that differ only in case
/// merged, in the map's iteration order (which is also the order the dispatcher sends them in).
fn lowercase_names(headers: &Headers) -> Headers {
    let mut out = Headers::new();
    for (name, values) in headers {
        out.entry(name.to_ascii_lowercase())
            .or_default()
            .extend(values.iter().cloned());
    }
    out
}

/// Whether `b` is HTTP whitespace that a header value may carry around or inside it.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// One header value as it enters the string to sign: leading and trailing whitespace trimmed,
/// and every run of whitespace that holds a line break (obsolete line folding) replaced by one
/// space, so a value can never add a line to the string to sign. Other bytes, non-UTF-8 ones
/// included, are kept as they are sent: the server signs the raw bytes.
fn canonical_value(value: &[u8], out: &mut Vec<u8>) {
    let start = value.iter().position(|&b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| !is_ws(b))
        .map_or(start, |i| i + 1);
    let value = value.get(start..end).unwrap_or_default();
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if is_ws(b) {
            let run_end = value
                .get(i..)
                .and_then(|rest| rest.iter().position(|&c| !is_ws(c)))
                .map_or(value.len(), |n| i + n);
            let run = value.get(i..run_end).unwrap_or_default();
            if run.iter().any(|&c| c == b'\r' || c == b'\n') {
                out.push(b' ');
            } else {
                out.extend_from_slice(run);
            }
            i = run_end;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// The canonical values of a header (see [`canonical_value`]) joined with `,`.
fn join_values(values: &[Vec<u8>], out: &mut Vec<u8>) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        canonical_value(v, out);
    }
}

/// The canonical resource: `resource_path` plus the sub-resources found in `params` (rusoto's
/// decoded query parameters; a key without value is written bare), sorted by name.
pub(crate) fn canonical_resource(
    resource_path: &str,
    params: &BTreeMap<String, Option<String>>,
) -> String {
    // `params` is a BTreeMap, so the names come sorted and each once.
    let subs: Vec<String> = params
        .iter()
        .filter(|(k, _)| SUB_RESOURCES.contains(&k.as_str()))
        .map(|(k, v)| match v.as_deref() {
            None | Some("") => k.clone(),
            Some(v) => format!("{k}={v}"),
        })
        .collect();
    if subs.is_empty() {
        resource_path.to_owned()
    } else {
        format!("{resource_path}?{}", subs.join("&"))
    }
}

/// The string to sign (bytes: header values need not be UTF-8). `expires` is `Some(epoch
/// seconds)` for query-string authentication and takes the place of the date. Header names
/// are compared without case.
pub(crate) fn string_to_sign(
    method: &str,
    headers: &Headers,
    expires: Option<&str>,
    resource_path: &str,
    params: &BTreeMap<String, Option<String>>,
) -> Vec<u8> {
    let headers = lowercase_names(headers);
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    for name in ["content-md5", "content-type"] {
        if let Some(values) = headers.get(name) {
            join_values(values, &mut out);
        }
        out.push(b'\n');
    }
    match expires {
        Some(e) => out.extend_from_slice(e.as_bytes()),
        None if headers.contains_key("x-amz-date") => {}
        None => {
            if let Some(values) = headers.get("date") {
                join_values(values, &mut out);
            }
        }
    }
    out.push(b'\n');
    // `lowercase_names` gives a BTreeMap of lower-cased names: iteration is sorted by name.
    for (name, values) in &headers {
        if name.starts_with("x-amz-") {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            join_values(values, &mut out);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(canonical_resource(resource_path, params).as_bytes());
    out
}

/// base64(HMAC-SHA1(secret, string_to_sign)).
pub(crate) fn signature(secret: &str, string_to_sign: impl AsRef<[u8]>) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, string_to_sign.as_ref());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// RFC 1123 date with the `GMT` zone name HTTP requires (distribution's signer prints `UTC`,
/// which strict servers reject).
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Signs `request` in place with the `Authorization: AWS <key>:<sig>` header.
///
/// `request` must already be complete (host, content type, content length: rusoto's
/// `complement`) and addressed as it will be sent; `resource_path` is the canonical resource
/// path for it (see the module documentation). Sets `Date` to `now` and, for temporary
/// credentials, `x-amz-security-token`. Header names are lower-cased in place first (values of
/// names that differ only in case merged), so what is sent is exactly what is signed.
pub(crate) fn sign_request(
    request: &mut SignedRequest,
    credentials: &AwsCredentials,
    resource_path: &str,
    now: DateTime<Utc>,
) {
    sign_request_sts(request, credentials, resource_path, now);
}

/// [`sign_request`], returning the string it signed.
fn sign_request_sts(
    request: &mut SignedRequest,
    credentials: &AwsCredentials,
    resource_path: &str,
    now: DateTime<Utc>,
) -> Vec<u8> {
    if request
        .headers
        .keys()
        .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
    {
        request.headers = lowercase_names(&request.headers);
    }
    request.remove_header("authorization");
    request.remove_header("date");
    request.add_header("date", &http_date(now));
    request.remove_header("x-amz-security-token");
    if let Some(token) = credentials.token() {
        request.add_header("x-amz-security-token", token);
    }
    let sts = string_to_sign(
        &request.method,
        &request.headers,
        None,
        resource_path,
        &request.params,
    );
    let sig = signature(credentials.aws_secret_access_key(), &sts);
    request.add_header(
        "authorization",
        &format!("AWS {}:{sig}", credentials.aws_access_key_id()),
    );
    sts
}

/// Input of [`fuzz_sign_request`]. **Fuzzing only, not API.**
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SigV2FuzzInput<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Headers, put into the request's header map under their names as given (no
    /// lower-casing), in this order.
    pub headers: &'a [(String, Vec<u8>)],
    /// Query parameters (`None`: a key without `=`); a later duplicate replaces an earlier one.
    pub params: &'a [(String, Option<String>)],
    /// The request path, also used as the canonical resource path.
    pub resource_path: &'a str,
    /// Access key id.
    pub access_key: &'a str,
    /// Secret access key.
    pub secret_key: &'a str,
    /// Session token of temporary credentials.
    pub token: Option<&'a str>,
    /// Signing time, seconds since the epoch (clamped to what `chrono` represents).
    pub now: i64,
}

/// What [`fuzz_sign_request`] produced. **Fuzzing only, not API.**
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct SigV2FuzzOutput {
    /// The string that was signed.
    pub string_to_sign: Vec<u8>,
    /// The request's headers after signing (names as the request holds them).
    pub headers: Vec<(String, Vec<Vec<u8>>)>,
}

/// **Fuzzing only, not API** (no stability promise; used by `fuzz/`): builds a rusoto request
/// from `input` and signs it with the same code the dispatcher uses for SigV2 requests, then
/// returns the string to sign and the signed headers, so a fuzz target can check the header
/// canonicalisation and the canonical resource without a network.
#[doc(hidden)]
pub fn fuzz_sign_request(input: &SigV2FuzzInput<'_>) -> SigV2FuzzOutput {
    let region = rusoto_core::Region::Custom {
        name: "us-east-1".into(),
        endpoint: "http://127.0.0.1:9".into(),
    };
    let mut request = SignedRequest::new(input.method, "s3", &region, input.resource_path);
    for (name, value) in input.headers {
        request
            .headers
            .entry(name.clone())
            .or_default()
            .push(value.clone());
    }
    for (k, v) in input.params {
        request.params.insert(k.clone(), v.clone());
    }
    let credentials = AwsCredentials::new(
        input.access_key,
        input.secret_key,
        input.token.map(str::to_owned),
        None,
    );
    let now = DateTime::from_timestamp(input.now, 0).unwrap_or_default();
    let string_to_sign = sign_request_sts(&mut request, &credentials, input.resource_path, now);
    SigV2FuzzOutput {
        string_to_sign,
        headers: request.headers.into_iter().collect(),
    }
}

/// Query parameters of a SigV2 presigned URL for a body-less `method` request (GET or HEAD)
/// of `resource_path`, valid until `expires` (epoch seconds): `AWSAccessKeyId`, `Expires`,
/// `Signature` and, for temporary credentials, `x-amz-security-token` (which is signed as an
/// amz header, as AWS requires). Values are raw; the caller URL-encodes them.
pub(crate) fn presign_query(
    method: &str,
    credentials: &AwsCredentials,
    resource_path: &str,
    expires: i64,
) -> Vec<(&'static str, String)> {
    let mut headers = Headers::new();
    if let Some(token) = credentials.token() {
        headers.insert(
            "x-amz-security-token".to_owned(),
            vec![token.as_bytes().to_vec()],
        );
    }
    let expires = expires.to_string();
    let sts = string_to_sign(
        method,
        &headers,
        Some(&expires),
        resource_path,
        &BTreeMap::new(),
    );
    let mut query = vec![
        ("AWSAccessKeyId", credentials.aws_access_key_id().to_owned()),
        ("Expires", expires),
        (
            "Signature",
            signature(credentials.aws_secret_access_key(), &sts),
        ),
    ];
    if let Some(token) = credentials.token() {
        query.push(("x-amz-security-token", token.clone()));
    }
    query
}

#[cfg(test)]
mod tests {
    //! Examples from the Amazon S3 API Reference, "Signing and authenticating REST requests
    //! (AWS signature version 2)", section "Authentication examples" and "Query string request
    //! authentication alternative":
    //! <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html>
    //! (bucket `johnsmith`, access key `AKIAIOSFODNN7EXAMPLE`, secret
    //! `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`). The requests there are virtual-hosted, so
    //! the canonical resource is `/johnsmith` + the path sent.

    use super::*;
    use rusoto_core::Region;

    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.entry(k.to_ascii_lowercase())
                .or_default()
                .push(v.as_bytes().to_vec());
        }
        h
    }

    fn params(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    fn check(sts: &[u8], want_sts: &str, want_sig: &str) {
        assert_eq!(String::from_utf8_lossy(sts), want_sts);
        assert_eq!(signature(SECRET, sts), want_sig);
    }

    #[test]
    fn aws_example_object_get() {
        // GET /photos/puppy.jpg, Host: johnsmith.s3.amazonaws.com
        let h = headers(&[
            ("Host", "johnsmith.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        let sts = string_to_sign("GET", &h, None, "/johnsmith/photos/puppy.jpg", &params(&[]));
        check(
            &sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
            "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
        );
    }

    #[test]
    fn aws_example_object_put() {
        let h = headers(&[
            ("Content-Type", "image/jpeg"),
            ("Content-Length", "94328"),
            ("Host", "johnsmith.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 21:15:45 +0000"),
        ]);
        let sts = string_to_sign("PUT", &h, None, "/johnsmith/photos/puppy.jpg", &params(&[]));
        check(
            &sts,
            "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
            "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
        );
    }

    #[test]
    fn aws_example_list() {
        // GET /?prefix=photos&max-keys=50&marker=puppy: none of these is a sub-resource.
        let h = headers(&[
            ("User-Agent", "Mozilla/5.0"),
            ("Host", "johnsmith.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 19:42:41 +0000"),
        ]);
        let p = params(&[
            ("prefix", Some("photos")),
            ("max-keys", Some("50")),
            ("marker", Some("puppy")),
        ]);
        let sts = string_to_sign("GET", &h, None, "/johnsmith/", &p);
        check(
            &sts,
            "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
            "htDYFYduRNen8P9ZfE/s9SuKy0U=",
        );
    }

    #[test]
    fn aws_example_fetch_acl() {
        // GET /?acl
        let h = headers(&[
            ("Host", "johnsmith.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 19:44:46 +0000"),
        ]);
        let sts = string_to_sign("GET", &h, None, "/johnsmith/", &params(&[("acl", None)]));
        check(
            &sts,
            "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
            "c2WLPFtWHVgbEmeEG93a4cG37dM=",
        );
        // rusoto keeps a bare key as `None`; an empty value signs the same.
        let sts2 = string_to_sign(
            "GET",
            &h,
            None,
            "/johnsmith/",
            &params(&[("acl", Some(""))]),
        );
        assert_eq!(sts, sts2);
    }

    #[test]
    fn aws_example_delete_with_x_amz_date() {
        // The x-amz-date header replaces Date: the Date line stays, empty. The guide prints
        // the string-to-sign without that empty line and a signature over that shorter string
        // (9b2sXq0K…); servers (and AWS's own SDKs) keep the positional empty line, so the
        // signature for what is actually sent is R4dJ53KE…. Both are checked: the HMAC
        // reproduces the published value for the published string.
        let h = headers(&[
            ("User-Agent", "dotnet"),
            ("Host", "s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 21:20:27 +0000"),
            ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
        ]);
        let sts = string_to_sign(
            "DELETE",
            &h,
            None,
            "/johnsmith/photos/puppy.jpg",
            &params(&[]),
        );
        check(
            &sts,
            "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg",
            "R4dJ53KECjStyBO5iTBJZ4XVOaI=",
        );
        assert_eq!(
            signature(
                SECRET,
                "DELETE\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
            ),
            "9b2sXq0KfxsxHtdZkzx/9Ngqyh8="
        );
    }

    #[test]
    fn aws_example_upload_with_meta_headers() {
        // CNAME-style bucket static.johnsmith.net; the two X-Amz-Meta-ReviewedBy headers are
        // folded into one comma-joined value.
        let h = headers(&[
            ("User-Agent", "curl/7.15.5"),
            ("Host", "static.johnsmith.net:8080"),
            ("Date", "Tue, 27 Mar 2007 21:06:08 +0000"),
            ("x-amz-acl", "public-read"),
            ("content-type", "application/x-download"),
            ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
            ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
            ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
            ("X-Amz-Meta-FileChecksum", "0x02661779"),
            ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
            ("Content-Disposition", "attachment; filename=database.dat"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", "5913339"),
        ]);
        let sts = string_to_sign(
            "PUT",
            &h,
            None,
            "/static.johnsmith.net/db-backup.dat.gz",
            &params(&[]),
        );
        check(
            &sts,
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\n\
             Tue, 27 Mar 2007 21:06:08 +0000\n\
             x-amz-acl:public-read\n\
             x-amz-meta-checksumalgorithm:crc32\n\
             x-amz-meta-filechecksum:0x02661779\n\
             x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n\
             /static.johnsmith.net/db-backup.dat.gz",
            "ilyl83RwaSoYIEdixDQcA4OnAnc=",
        );
    }

    #[test]
    fn aws_example_query_string_authentication() {
        // GET /photos/puppy.jpg?AWSAccessKeyId=…&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D
        // &Expires=1175139620, Host: johnsmith.s3.amazonaws.com
        let creds = AwsCredentials::new(AKID, SECRET, None, None);
        let q = presign_query("GET", &creds, "/johnsmith/photos/puppy.jpg", 1175139620);
        assert_eq!(
            q,
            vec![
                ("AWSAccessKeyId", AKID.to_owned()),
                ("Expires", "1175139620".to_owned()),
                ("Signature", "NpgCjnDzrM+WFzoENXmpNDUsSn8=".to_owned()),
            ]
        );
        let sts = string_to_sign(
            "GET",
            &Headers::new(),
            Some("1175139620"),
            "/johnsmith/photos/puppy.jpg",
            &params(&[]),
        );
        assert_eq!(sts, b"GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg");
    }

    #[test]
    fn presign_with_session_token_signs_the_token() {
        let creds = AwsCredentials::new(AKID, SECRET, Some("TOKEN".into()), None);
        let q = presign_query("HEAD", &creds, "/b/k", 100);
        let want_sts = "HEAD\n\n\n100\nx-amz-security-token:TOKEN\n/b/k";
        assert_eq!(q[2], ("Signature", signature(SECRET, want_sts)));
        assert_eq!(q[3], ("x-amz-security-token", "TOKEN".to_owned()));
    }

    #[test]
    fn sub_resources_sorted_and_others_ignored() {
        let p = params(&[
            ("uploadId", Some("2~abc")),
            ("partNumber", Some("3")),
            ("list-type", Some("2")),
            ("prefix", Some("a/")),
        ]);
        assert_eq!(
            canonical_resource("/bucket/key", &p),
            "/bucket/key?partNumber=3&uploadId=2~abc"
        );
        assert_eq!(
            canonical_resource("/bucket", &params(&[("delete", None)])),
            "/bucket?delete"
        );
        assert_eq!(
            canonical_resource("/bucket/k", &params(&[("uploads", None)])),
            "/bucket/k?uploads"
        );
        // Bucket-level path-style request: the path sent is `/bucket`, and so is the resource.
        assert_eq!(
            canonical_resource("/bucket", &params(&[("list-type", Some("2"))])),
            "/bucket"
        );
    }

    #[test]
    fn http_date_is_rfc1123_gmt() {
        let t = DateTime::parse_from_rfc3339("2007-03-27T19:36:42Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(http_date(t), "Tue, 27 Mar 2007 19:36:42 GMT");
    }

    #[test]
    fn sign_request_sets_date_token_and_authorization() {
        let region = Region::Custom {
            name: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9007".into(),
        };
        let mut r = SignedRequest::new("PUT", "s3", &region, "/bucket/photos/puppy.jpg");
        r.add_header("x-amz-acl", "private");
        r.complement();
        let t = DateTime::parse_from_rfc3339("2007-03-27T21:15:45Z")
            .unwrap()
            .with_timezone(&Utc);
        let creds = AwsCredentials::new(AKID, SECRET, Some("TOK".into()), None);
        sign_request(&mut r, &creds, "/bucket/photos/puppy.jpg", t);
        let sts = "PUT\n\napplication/octet-stream\nTue, 27 Mar 2007 21:15:45 GMT\n\
                   x-amz-acl:private\nx-amz-security-token:TOK\n/bucket/photos/puppy.jpg";
        let auth = format!("AWS {AKID}:{}", signature(SECRET, sts));
        assert_eq!(r.headers["authorization"], vec![auth.into_bytes()]);
        assert_eq!(
            r.headers["date"],
            vec![b"Tue, 27 Mar 2007 21:15:45 GMT".to_vec()]
        );
        // Signing twice (a retry) replaces rather than duplicates the headers.
        sign_request(&mut r, &creds, "/bucket/photos/puppy.jpg", t);
        assert_eq!(r.headers["authorization"].len(), 1);
        assert_eq!(r.headers["x-amz-security-token"].len(), 1);
        assert_eq!(r.headers["date"].len(), 1);
    }

    // The properties below were broken before the fuzz target `sigv2_sign_request` was added
    // (the header map is public, values came through `from_utf8_lossy` and `str::trim`).

    #[test]
    fn header_names_are_case_insensitive_and_merged() {
        let lower = headers(&[
            ("content-type", "text/plain"),
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-a", "2"),
        ]);
        let mut mixed = Headers::new();
        mixed.insert("Content-Type".into(), vec![b"text/plain".to_vec()]);
        mixed.insert("X-Amz-Meta-A".into(), vec![b"1".to_vec()]);
        mixed.insert("x-amz-meta-a".into(), vec![b"2".to_vec()]);
        let p = params(&[]);
        let want = "PUT\n\ntext/plain\n\nx-amz-meta-a:1,2\n/b/k";
        assert_eq!(
            string_to_sign("PUT", &lower, None, "/b/k", &p),
            want.as_bytes()
        );
        assert_eq!(
            string_to_sign("PUT", &mixed, None, "/b/k", &p),
            want.as_bytes()
        );
    }

    #[test]
    fn sign_request_lowercases_names_in_place() {
        let region = Region::Custom {
            name: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9007".into(),
        };
        let mut r = SignedRequest::new("GET", "s3", &region, "/b/k");
        r.headers.insert("Date".into(), vec![b"old".to_vec()]);
        r.headers
            .insert("X-Amz-Security-Token".into(), vec![b"stale".to_vec()]);
        r.headers
            .insert("Authorization".into(), vec![b"AWS x:y".to_vec()]);
        let t = DateTime::from_timestamp(0, 0).unwrap();
        let creds = AwsCredentials::new(AKID, SECRET, Some("TOK".into()), None);
        let sts = sign_request_sts(&mut r, &creds, "/b/k", t);
        assert_eq!(
            String::from_utf8(sts).unwrap(),
            "GET\n\n\nThu, 01 Jan 1970 00:00:00 GMT\nx-amz-security-token:TOK\n/b/k"
        );
        let names: Vec<&str> = r.headers.keys().map(String::as_str).collect();
        assert_eq!(names, ["authorization", "date", "x-amz-security-token"]);
        assert!(r.headers.values().all(|v| v.len() == 1));
    }

    #[test]
    fn folded_values_cannot_add_lines() {
        let h = headers(&[
            ("x-amz-meta-a", "one\r\n two \n\tthree"),
            ("x-amz-meta-b", "  keep  inner  spaces\t"),
            ("content-type", "text/plain\nx-amz-forged:1"),
        ]);
        let sts = string_to_sign("PUT", &h, None, "/b/k", &params(&[]));
        assert_eq!(
            String::from_utf8(sts).unwrap(),
            "PUT\n\ntext/plain x-amz-forged:1\n\n\
             x-amz-meta-a:one two three\n\
             x-amz-meta-b:keep  inner  spaces\n/b/k"
        );
    }

    #[test]
    fn values_are_signed_as_raw_bytes() {
        let mut h = Headers::new();
        // Not UTF-8 (sent as is; the server signs these bytes, not U+FFFD), and a trailing
        // no-break space, which is not HTTP whitespace and must stay.
        h.insert("x-amz-meta-a".into(), vec![vec![b'a', 0xFF, b'b']]);
        h.insert("x-amz-meta-b".into(), vec!["c\u{a0}".as_bytes().to_vec()]);
        let sts = string_to_sign("GET", &h, None, "/b/k", &params(&[]));
        let mut want = b"GET\n\n\n\nx-amz-meta-a:a\xFFb\nx-amz-meta-b:c".to_vec();
        want.extend_from_slice("\u{a0}\n/b/k".as_bytes());
        assert_eq!(sts, want);
    }

    #[test]
    fn fuzz_entry_point_signs_like_sign_request() {
        let hdrs = [("X-Amz-Acl".to_owned(), b"private".to_vec())];
        let prm = [("uploadId".to_owned(), Some("u".to_owned()))];
        let out = fuzz_sign_request(&SigV2FuzzInput {
            method: "PUT",
            headers: &hdrs,
            params: &prm,
            resource_path: "/b/k",
            access_key: AKID,
            secret_key: SECRET,
            token: None,
            now: 0,
        });
        let want = "PUT\n\n\nThu, 01 Jan 1970 00:00:00 GMT\nx-amz-acl:private\n/b/k?uploadId=u";
        assert_eq!(String::from_utf8_lossy(&out.string_to_sign), want);
        let auth = format!("AWS {AKID}:{}", signature(SECRET, want));
        assert!(out
            .headers
            .contains(&("authorization".to_owned(), vec![auth.into_bytes()])));
    }
}
