//! AWS Signature Version 4 for S3, written from the AWS specification ("Authenticating
//! Requests (AWS Signature Version 4)" in the Amazon S3 API Reference).
//!
//! A request is signed over its canonical form:
//!
//! ```text
//! METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
//! ```
//!
//! * the canonical URI is the path exactly as it goes on the wire (S3 encodes it once, unlike
//!   the other AWS services), which [`wire_path`] produces for both the signer and the
//!   transport, so the two cannot disagree;
//! * the canonical query is the parameters, each name and value encoded with RFC 3986's
//!   unreserved set kept, sorted by encoded name then value ([`canonical_query`]); it is also
//!   the query sent;
//! * every header is signed except `authorization`, `content-length` and `user-agent` (the
//!   set rusoto signed before, so the wire form did not change): names lower-case, values
//!   trimmed with inner whitespace runs collapsed, several values joined with `,`;
//! * the payload hash (`x-amz-content-sha256`) is the hex SHA-256 of a buffered body, of the
//!   empty string without a body, and `UNSIGNED-PAYLOAD` for a streamed body.
//!
//! The string to sign is `AWS4-HMAC-SHA256 \n date-time \n scope \n hex(SHA-256(canonical
//! request))`, the scope `yyyymmdd/region/s3/aws4_request`, and the signature the hex
//! HMAC-SHA256 of it under the signing key derived from the secret, date, region and service.
//! [`Signer`] caches that key for the current day, so a request costs one HMAC, not five.
//!
//! Nothing here logs: header values, signatures, tokens and keys must never reach a log.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use ring::{digest, hmac};
use rusoto_core::signature::{SignedRequest, SignedRequestPayload};
use rusoto_core::Region;
use rusoto_credential::AwsCredentials;

/// The payload hash of a body that is streamed, not hashed.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Hex SHA-256 of the empty string: the payload hash of a request without a body.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers never signed: `authorization` carries the signature, a proxy may rewrite
/// `content-length` (chunked re-encoding) and `user-agent`.
fn unsigned_header(name: &str) -> bool {
    matches!(name, "authorization" | "content-length" | "user-agent")
}

/// Appends `s` percent-encoded: RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) kept,
/// `/` kept when `keep_slash`, every other byte as `%XY` with upper-case hex.
fn push_encoded(out: &mut String, s: &str, keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The base path of a custom endpoint (`https://gw.example/s3` → `/s3`), if it has one.
fn endpoint_path(region: &Region) -> Option<&str> {
    let Region::Custom { endpoint, .. } = region else {
        return None;
    };
    let rest = endpoint
        .find("://")
        .map_or(endpoint.as_str(), |i| &endpoint[i + 3..]);
    rest.find('/').map(|i| &rest[i..])
}

/// The path of `request` as sent on the wire and signed: the endpoint's base path, if any,
/// plus the request path, percent-encoded once with `/` kept (`/` when both are empty).
pub(crate) fn wire_path(request: &SignedRequest) -> String {
    let base = endpoint_path(&request.region).unwrap_or("");
    if request.path.is_empty() {
        return if base.is_empty() {
            "/".to_owned()
        } else {
            base.to_owned()
        };
    }
    let mut out = String::with_capacity(base.len() + request.path.len() + 8);
    push_encoded(&mut out, base, true);
    push_encoded(&mut out, &request.path, true);
    out
}

/// The canonical query string of `params`, which is also the query sent: `name=value` pairs
/// (`name=` for a value-less sub-resource such as `uploads`), encoded, sorted by encoded
/// name then encoded value, joined with `&`. Empty without parameters.
pub(crate) fn canonical_query<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, Option<&'a str>)>,
{
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .map(|(k, v)| {
            let mut name = String::with_capacity(k.len());
            push_encoded(&mut name, k, false);
            let mut value = String::new();
            if let Some(v) = v {
                push_encoded(&mut value, v, false);
            }
            (name, value)
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&k);
        out.push('=');
        out.push_str(&v);
    }
    out
}

/// `yyyymmddThhmmssZ` for `now`.
pub(crate) fn amz_date(now: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(16);
    let _ = write!(
        s,
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    s
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Hex SHA-256 of `data` (the payload hash of a buffered body).
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// Appends one header's canonical value: every value trimmed, inner runs of spaces and tabs
/// collapsed to one space, values joined with `,`. Bytes that are not UTF-8 (never sent by
/// the driver) are replaced rather than refused, so a bad value fails at the server, not here.
fn push_canonical_values(out: &mut String, values: &[Vec<u8>]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = String::from_utf8_lossy(v);
        let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
        if let Some(first) = words.next() {
            out.push_str(first);
            for w in words {
                out.push(' ');
                out.push_str(w);
            }
        }
    }
}

/// A signing key derived for one day, region and service from one secret.
struct CachedKey {
    date: String,
    region: String,
    service: String,
    /// The secret the key was derived from, to tell credential rotations apart. Never shown.
    secret: String,
    key: hmac::Key,
}

/// Signs requests and presigns URLs with SigV4, caching the derived signing key.
///
/// One per driver (shared by every request); the cache holds one key, replaced when the day,
/// region, service or secret changes. No `Debug`: it holds key material.
pub(crate) struct Signer {
    cache: Mutex<Option<CachedKey>>,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}

impl Signer {
    /// A signer with an empty key cache.
    pub(crate) fn new() -> Self {
        Signer {
            cache: Mutex::new(None),
        }
    }

    /// The signing key for `date` (`yyyymmdd`), `region`, `service` and `secret`:
    /// HMAC chain `"AWS4" + secret` → date → region → service → `aws4_request`.
    fn signing_key(&self, secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
        let hit = |c: &CachedKey| {
            c.date == date && c.region == region && c.service == service && c.secret == secret
        };
        if let Ok(guard) = self.cache.lock() {
            if let Some(c) = guard.as_ref().filter(|c| hit(c)) {
                return c.key.clone();
            }
        }
        let step = |key: &[u8], data: &str| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        };
        let k_date = step(format!("AWS4{secret}").as_bytes(), date);
        let k_region = step(k_date.as_ref(), region);
        let k_service = step(k_region.as_ref(), service);
        let k_signing = step(k_service.as_ref(), "aws4_request");
        let key = hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref());
        if let Ok(mut guard) = self.cache.lock() {
            *guard = Some(CachedKey {
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
                secret: secret.to_owned(),
                key: key.clone(),
            });
        }
        key
    }

    /// The hex signature of the canonical request `canonical` at `amz_date` for `scope`.
    fn signature(
        &self,
        secret: &str,
        amz_date: &str,
        scope: &Scope<'_>,
        canonical: &str,
    ) -> String {
        let hashed = sha256_hex(canonical.as_bytes());
        let scope_text = scope.to_string();
        let mut sts =
            String::with_capacity(ALGORITHM.len() + amz_date.len() + scope_text.len() + 70);
        sts.push_str(ALGORITHM);
        sts.push('\n');
        sts.push_str(amz_date);
        sts.push('\n');
        sts.push_str(&scope_text);
        sts.push('\n');
        sts.push_str(&hashed);
        let key = self.signing_key(secret, scope.date, scope.region, scope.service);
        hex(hmac::sign(&key, sts.as_bytes()).as_ref())
    }

    /// Signs `request` in place at `now`: sets `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token` (only with a session token; removed otherwise) and
    /// `authorization`.
    ///
    /// `request` must be complete and addressed as it will be sent
    /// ([`crate::transport::prepare`]): `host`, `content-type`, `content-length`, and its
    /// `canonical_uri`/`canonical_query_string` fields holding the wire path and query.
    /// Signing again (a retry) replaces every header this adds.
    pub(crate) fn sign(
        &self,
        request: &mut SignedRequest,
        credentials: &AwsCredentials,
        now: DateTime<Utc>,
    ) {
        let amz_date = amz_date(now);
        for h in [
            "authorization",
            "x-amz-date",
            "x-amz-content-sha256",
            "x-amz-security-token",
        ] {
            request.headers.remove(h);
        }
        let payload_hash: Cow<'static, str> = match &request.payload {
            None => Cow::Borrowed(EMPTY_SHA256),
            Some(SignedRequestPayload::Buffer(b)) => Cow::Owned(sha256_hex(b)),
            Some(SignedRequestPayload::Stream(_)) => Cow::Borrowed(UNSIGNED_PAYLOAD),
        };
        request
            .headers
            .insert("x-amz-date".to_owned(), vec![amz_date.as_bytes().to_vec()]);
        request.headers.insert(
            "x-amz-content-sha256".to_owned(),
            vec![payload_hash.as_bytes().to_vec()],
        );
        if let Some(token) = credentials.token() {
            request.headers.insert(
                "x-amz-security-token".to_owned(),
                vec![token.as_bytes().to_vec()],
            );
        }

        // Header names are lower-case when added through rusoto; lower-case and sort anyway so
        // a name inserted directly cannot break the order the server computes.
        let mut headers: Vec<(Cow<'_, str>, &Vec<Vec<u8>>)> = request
            .headers
            .iter()
            .map(|(k, v)| {
                let name = if k.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(k.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(k.as_str())
                };
                (name, v)
            })
            .filter(|(k, _)| !unsigned_header(k))
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));

        let mut signed = String::with_capacity(headers.len() * 16);
        for (k, _) in &headers {
            if !signed.is_empty() {
                signed.push(';');
            }
            signed.push_str(k);
        }
        let path: Cow<'_, str> = if request.canonical_uri.is_empty() {
            Cow::Owned(wire_path(request))
        } else {
            Cow::Borrowed(request.canonical_uri.as_str())
        };
        let mut canonical = String::with_capacity(512);
        canonical.push_str(&request.method);
        canonical.push('\n');
        canonical.push_str(&path);
        canonical.push('\n');
        canonical.push_str(&request.canonical_query_string);
        canonical.push('\n');
        for (k, v) in &headers {
            canonical.push_str(k);
            canonical.push(':');
            push_canonical_values(&mut canonical, v);
            canonical.push('\n');
        }
        canonical.push('\n');
        canonical.push_str(&signed);
        canonical.push('\n');
        canonical.push_str(&payload_hash);

        let scope = Scope {
            date: &amz_date[..8],
            region: request.region.name(),
            service: &request.service,
        };
        let signature = self.signature(
            credentials.aws_secret_access_key(),
            &amz_date,
            &scope,
            &canonical,
        );
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            credentials.aws_access_key_id()
        );
        request
            .headers
            .insert("authorization".to_owned(), vec![authorization.into_bytes()]);
    }

    /// A presigned URL (query-string authentication) for a body-less `method` request of
    /// `scheme://host` + `path` (already encoded as sent: [`wire_path`]), valid for
    /// `expires` from `now`. Only `host` is signed; the payload is `UNSIGNED-PAYLOAD`, as S3
    /// requires for presigned URLs. A session token travels as `X-Amz-Security-Token`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn presign(
        &self,
        method: &str,
        scheme: &str,
        host: &str,
        path: &str,
        region: &str,
        credentials: &AwsCredentials,
        now: DateTime<Utc>,
        expires: Duration,
    ) -> String {
        let amz_date = amz_date(now);
        let scope = Scope {
            date: &amz_date[..8],
            region,
            service: "s3",
        };
        let credential = format!("{}/{scope}", credentials.aws_access_key_id());
        let expires = expires.as_secs().to_string();
        let mut params: Vec<(&str, Option<&str>)> = vec![
            ("X-Amz-Algorithm", Some(ALGORITHM)),
            ("X-Amz-Credential", Some(&credential)),
            ("X-Amz-Date", Some(&amz_date)),
            ("X-Amz-Expires", Some(&expires)),
            ("X-Amz-SignedHeaders", Some("host")),
        ];
        if let Some(token) = credentials.token() {
            params.push(("X-Amz-Security-Token", Some(token)));
        }
        let query = canonical_query(params);
        let canonical =
            format!("{method}\n{path}\n{query}\nhost:{host}\n\nhost\n{UNSIGNED_PAYLOAD}");
        let signature = self.signature(
            credentials.aws_secret_access_key(),
            &amz_date,
            &scope,
            &canonical,
        );
        format!("{scheme}://{host}{path}?{query}&X-Amz-Signature={signature}")
    }
}

/// The credential scope `yyyymmdd/region/service/aws4_request`.
struct Scope<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

#[cfg(test)]
mod tests {
    //! Vectors from the Amazon S3 API Reference, "Examples: Signature Calculations" in
    //! "Authenticating Requests: Using the Authorization Header (AWS Signature Version 4)" and
    //! "Authenticating Requests: Using Query Parameters": access key `AKIAIOSFODNN7EXAMPLE`,
    //! secret `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`, bucket `examplebucket`, region
    //! `us-east-1`, 2013-05-24T00:00:00Z.

    use super::*;
    use chrono::TimeZone as _;
    use rusoto_core::param::{Params, ServiceParams};

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials::new(AK, SK, token.map(str::to_owned), None)
    }

    fn example_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap()
    }

    /// A request as the transport prepares it, for `https://examplebucket.s3.amazonaws.com`.
    fn request(method: &str, path: &str, params: &[(&str, Option<&str>)]) -> SignedRequest {
        let mut r = SignedRequest::new(method, "s3", &Region::UsEast1, path);
        r.set_hostname(Some("examplebucket.s3.amazonaws.com".into()));
        let mut p = Params::new();
        for (k, v) in params {
            match v {
                Some(v) => p.put(k, *v),
                None => p.put_key(k),
            }
        }
        r.set_params(p);
        r.add_header("host", "examplebucket.s3.amazonaws.com");
        r.canonical_uri = wire_path(&r);
        r.canonical_query_string =
            canonical_query(r.params.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
        r
    }

    fn header(r: &SignedRequest, name: &str) -> String {
        r.headers
            .get(name)
            .and_then(|v| v.first())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn get_object_with_range() {
        let mut r = request("GET", "/test.txt", &[]);
        r.add_header("Range", "bytes=0-9");
        Signer::new().sign(&mut r, &creds(None), example_time());
        assert_eq!(
            header(&r, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(header(&r, "x-amz-date"), "20130524T000000Z");
        assert_eq!(header(&r, "x-amz-content-sha256"), EMPTY_SHA256);
        assert!(!r.headers.contains_key("x-amz-security-token"));
    }

    #[test]
    fn put_object_with_buffered_body() {
        let mut r = request("PUT", "/test$file.text", &[]);
        r.add_header("Date", "Fri, 24 May 2013 00:00:00 GMT");
        r.add_header("x-amz-storage-class", "REDUCED_REDUNDANCY");
        r.set_payload(Some(b"Welcome to Amazon S3.".to_vec()));
        Signer::new().sign(&mut r, &creds(None), example_time());
        assert_eq!(
            header(&r, "x-amz-content-sha256"),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let auth = header(&r, "authorization");
        assert!(
            auth.ends_with(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, \
                 Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{auth}"
        );
    }

    #[test]
    fn get_bucket_lifecycle_and_list_objects() {
        let mut r = request("GET", "/", &[("lifecycle", None)]);
        assert_eq!(r.canonical_query_string, "lifecycle=");
        Signer::new().sign(&mut r, &creds(None), example_time());
        assert!(header(&r, "authorization").ends_with(
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        ));
        let mut r = request(
            "GET",
            "/",
            &[("max-keys", Some("2")), ("prefix", Some("J"))],
        );
        assert_eq!(r.canonical_query_string, "max-keys=2&prefix=J");
        Signer::new().sign(&mut r, &creds(None), example_time());
        assert!(header(&r, "authorization").ends_with(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ));
    }

    #[test]
    fn presigned_get() {
        let url = Signer::new().presign(
            "GET",
            "https",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            "us-east-1",
            &creds(None),
            example_time(),
            Duration::from_secs(86400),
        );
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn session_token_is_signed_and_resigning_replaces_headers() {
        let signer = Signer::new();
        let mut r = request("GET", "/test.txt", &[]);
        signer.sign(&mut r, &creds(Some("TOKEN+/=")), example_time());
        assert_eq!(header(&r, "x-amz-security-token"), "TOKEN+/=");
        assert!(header(&r, "authorization")
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
        // A retry a second later: one value per header, a new signature.
        let first = header(&r, "authorization");
        signer.sign(
            &mut r,
            &creds(Some("TOKEN+/=")),
            example_time() + chrono::Duration::seconds(1),
        );
        for h in ["authorization", "x-amz-date", "x-amz-security-token"] {
            assert_eq!(r.headers[h].len(), 1, "{h}");
        }
        assert_ne!(header(&r, "authorization"), first);
        // Without a token the header goes.
        signer.sign(&mut r, &creds(None), example_time());
        assert!(!r.headers.contains_key("x-amz-security-token"));

        let url = signer.presign(
            "HEAD",
            "http",
            "h:9000",
            "/b/k",
            "us-east-1",
            &creds(Some("T/k+n")),
            example_time(),
            Duration::from_secs(60),
        );
        assert!(url.contains("&X-Amz-Security-Token=T%2Fk%2Bn&"), "{url}");
    }

    #[test]
    fn key_cache_follows_date_and_secret() {
        let signer = Signer::new();
        let a =
            hex(hmac::sign(&signer.signing_key(SK, "20130524", "us-east-1", "s3"), b"x").as_ref());
        let again =
            hex(hmac::sign(&signer.signing_key(SK, "20130524", "us-east-1", "s3"), b"x").as_ref());
        assert_eq!(a, again);
        let other_day =
            hex(hmac::sign(&signer.signing_key(SK, "20130525", "us-east-1", "s3"), b"x").as_ref());
        assert_ne!(a, other_day);
        let other_secret = hex(hmac::sign(
            &signer.signing_key("other", "20130525", "us-east-1", "s3"),
            b"x",
        )
        .as_ref());
        assert_ne!(other_day, other_secret);
        // A fresh signer (no cache) derives the same key.
        let fresh = hex(hmac::sign(
            &Signer::new().signing_key(SK, "20130524", "us-east-1", "s3"),
            b"x",
        )
        .as_ref());
        assert_eq!(a, fresh);
    }

    #[test]
    fn canonical_forms() {
        let mut out = String::new();
        push_canonical_values(
            &mut out,
            &[b"  a   b \t c  ".to_vec(), b"\"q  x\"".to_vec()],
        );
        assert_eq!(out, "a b c,\"q x\"");
        assert_eq!(
            canonical_query([("b", Some("x y")), ("a", None), ("A", Some("é/+="))]),
            "A=%C3%A9%2F%2B%3D&a=&b=x%20y"
        );
        assert_eq!(canonical_query(std::iter::empty()), "");
        assert_eq!(amz_date(example_time()), "20130524T000000Z");
    }

    /// The wire path is byte for byte what rusoto's `canonical_path` produced, which the
    /// SigV2 resource and every existing server run were built on.
    #[test]
    fn wire_path_matches_the_previous_encoding() {
        let custom = Region::Custom {
            name: "us-east-1".into(),
            endpoint: "https://gw.example/base path".into(),
        };
        for path in [
            "",
            "/",
            "/bkt",
            "/bkt/a b/c+d=e&f?g#h",
            "/bkt/ünï/çødé/~_.-",
            "/bkt/%41/x:y@z!$'()*,;",
        ] {
            for region in [&Region::UsEast1, &custom] {
                let r = SignedRequest::new("GET", "s3", region, path);
                assert_eq!(wire_path(&r), r.canonical_path(), "{path} {region:?}");
            }
        }
    }
}
