//! The driver's HTTP transport: a hyper 0.14 client that sends rusoto's `SignedRequest`s and
//! hands back rusoto's `HttpResponse`s, in place of rusoto's `HttpClient`.
//!
//! It exists so that nothing on the request path logs credentials: rusoto's client logs every
//! header (`Authorization` included) through the `log` crate at DEBUG. This one logs nothing;
//! the dispatcher logs operation, method and status only.
//!
//! The wire form is the one rusoto's client produced: `scheme://host` + the path encoded once
//! ([`sigv4::wire_path`]) + `?` + the canonical query ([`sigv4::canonical_query`]), the
//! request's headers as they are, a `user-agent` when the request has none. The response body
//! streams through unbuffered.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt as _, TryStreamExt as _};
use hyper::client::connect::Connect;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Body, Client, HeaderMap, Method, Request, Uri};
use rusoto_core::request::{
    DispatchSignedRequest, DispatchSignedRequestFuture, HttpDispatchError, HttpResponse,
};
use rusoto_core::signature::{SignedRequest, SignedRequestPayload};
use rusoto_core::ByteStream;

use crate::sigv4;

/// Completes `request` for sending and signing (SigV4 or SigV2): sets its
/// `canonical_uri`/`canonical_query_string` to the path and query it will be sent with, the
/// `host` header, `content-type` (`application/octet-stream` when absent, as rusoto did) and
/// `content-length` from the payload (left out for a stream of unknown length).
///
/// Header names are lower-cased, values of names differing only in case merged in order:
/// rusoto's `add_header` already lower-cases, but a name inserted directly would otherwise be
/// signed as one header and sent as another.
pub(crate) fn prepare(request: &mut SignedRequest) {
    if request
        .headers
        .keys()
        .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
    {
        let mut merged: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
        for (k, v) in std::mem::take(&mut request.headers) {
            merged.entry(k.to_ascii_lowercase()).or_default().extend(v);
        }
        request.headers = merged;
    }
    request.canonical_uri = sigv4::wire_path(request);
    request.canonical_query_string = sigv4::canonical_query(
        request
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref())),
    );
    let host = request.hostname();
    request
        .headers
        .insert("host".to_owned(), vec![host.into_bytes()]);
    request
        .headers
        .entry("content-type".to_owned())
        .or_insert_with(|| vec![b"application/octet-stream".to_vec()]);
    let len = match &request.payload {
        None => Some(0),
        Some(SignedRequestPayload::Buffer(b)) => Some(b.len()),
        Some(SignedRequestPayload::Stream(s)) => stream_len(s),
    };
    if let Some(len) = len {
        request.headers.insert(
            "content-length".to_owned(),
            vec![len.to_string().into_bytes()],
        );
    }
}

/// The length a streaming body announces, if any. rusoto keeps it private and shows it only
/// in `Debug` (`<ByteStream size_hint=Some(n)>`); should that text change, this answers
/// `None` and the request goes out without `Content-Length` (the writer's streamed bodies set
/// the header themselves, so S3 still gets one).
pub(crate) fn stream_len(s: &ByteStream) -> Option<usize> {
    let text = format!("{s:?}");
    text.strip_prefix("<ByteStream size_hint=Some(")?
        .strip_suffix(")>")?
        .parse()
        .ok()
}

/// The HTTP client of a driver: a keep-alive pool over connector `C`.
#[derive(Clone)]
pub(crate) struct Transport<C> {
    client: Client<C, Body>,
    default_user_agent: HeaderValue,
    /// The connector's proxy settings, for `Proxy-Authorization` on absolute-form requests.
    proxy: Option<crate::net::Connector>,
}

impl<C> Transport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// A transport sending through `builder`'s pool over `connector`.
    pub(crate) fn new(builder: &hyper::client::Builder, connector: C) -> Self {
        Transport {
            client: builder.build(connector),
            default_user_agent: HeaderValue::from_static(concat!(
                "regstore/",
                env!("CARGO_PKG_VERSION")
            )),
            proxy: None,
        }
    }
}

impl Transport<crate::net::Connector> {
    /// A transport over the driver's own [`Connector`](crate::net::Connector), adding the
    /// proxy's `Proxy-Authorization` to plain-http requests that go through it.
    pub(crate) fn with_connector(
        builder: &hyper::client::Builder,
        connector: crate::net::Connector,
    ) -> Self {
        let mut t = Transport::new(builder, connector.clone());
        t.proxy = Some(connector);
        t
    }
}

impl<C> Transport<C> {
    /// Uses `connector`'s proxy settings for `Proxy-Authorization` (see
    /// [`with_connector`](Transport::with_connector)).
    pub(crate) fn set_proxy(&mut self, connector: crate::net::Connector) {
        self.proxy = Some(connector);
    }
}

fn error(message: String) -> HttpDispatchError {
    HttpDispatchError::new(message)
}

/// The hyper request for `request` (see the module documentation for the wire form).
/// Errors name what was malformed, never a header value or the URL's query.
pub(crate) fn to_hyper(
    mut request: SignedRequest,
    default_user_agent: &HeaderValue,
) -> Result<Request<Body>, HttpDispatchError> {
    let method = match request.method.as_str() {
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        "HEAD" => Method::HEAD,
        "PATCH" => Method::PATCH,
        other => return Err(error(format!("Unsupported HTTP verb {other}"))),
    };
    if request.canonical_uri.is_empty() {
        prepare(&mut request);
    }
    let scheme: Cow<'_, str> = match &request.scheme {
        Some(s) => Cow::Borrowed(s.as_str()),
        None => Cow::Owned(request.scheme()),
    };
    let host: Cow<'_, str> = match &request.hostname {
        Some(h) => Cow::Borrowed(h.as_str()),
        None => Cow::Owned(request.hostname()),
    };
    let query = &request.canonical_query_string;
    let mut uri = String::with_capacity(
        scheme.len() + 3 + host.len() + request.canonical_uri.len() + 1 + query.len(),
    );
    uri.push_str(&scheme);
    uri.push_str("://");
    uri.push_str(&host);
    uri.push_str(&request.canonical_uri);
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    let uri = Uri::try_from(uri)
        .map_err(|e| error(format!("error building request: invalid uri: {e}")))?;

    let headers = std::mem::take(&mut request.headers);
    let mut map = HeaderMap::with_capacity(headers.len() + 1);
    for (name, values) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| error(format!("error parsing header name: {e}")))?;
        for v in values {
            let value = HeaderValue::from_maybe_shared(Bytes::from(v)).map_err(|_| {
                error(format!(
                    "error parsing header value: invalid value for {}",
                    name.as_str()
                ))
            })?;
            map.append(name.clone(), value);
        }
    }
    if !map.contains_key(hyper::header::USER_AGENT) {
        map.insert(hyper::header::USER_AGENT, default_user_agent.clone());
    }
    let body = match request.payload.take() {
        None => Body::empty(),
        Some(SignedRequestPayload::Buffer(b)) => Body::from(b),
        Some(SignedRequestPayload::Stream(s)) => Body::wrap_stream(s),
    };
    let mut out = Request::new(body);
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    *out.headers_mut() = map;
    Ok(out)
}

/// rusoto's view of a hyper response: status, headers as strings (a value that is not
/// visible ASCII is converted lossily instead of panicking, as rusoto did), body streamed.
pub(crate) fn from_hyper(resp: hyper::Response<Body>) -> HttpResponse {
    let (parts, body) = resp.into_parts();
    let mut headers = HeaderMap::<String>::with_capacity(parts.headers.len());
    let mut last: Option<HeaderName> = None;
    for (name, value) in parts.headers {
        if let Some(n) = name {
            last = Some(n);
        }
        if let Some(n) = &last {
            let v = match value.to_str() {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
            };
            if !rusoto_would_panic_on(n.as_str(), &v) {
                headers.append(n.clone(), v);
            }
        }
    }
    let body = body.map_err(|e| std::io::Error::other(format!("Error obtaining chunk: {e}")));
    HttpResponse {
        status: parts.status,
        headers,
        body: ByteStream::new(body),
    }
}

/// Informational headers that rusoto_s3 0.48 parses with `unwrap` (a panic on a value that does
/// not parse). The driver reads none of them, so a header that would not parse is dropped here
/// rather than crashing the caller's task. (`Content-Length` is parsed the same way but matters;
/// an unparseable one is caught as a malformed answer by `s3api`.)
const RUSOTO_PARSED_HEADERS: &[(&str, bool)] = &[
    // (name, true = bool / false = i64)
    ("x-amz-delete-marker", true),
    ("x-amz-server-side-encryption-bucket-key-enabled", true),
    ("x-amz-missing-meta", false),
    ("x-amz-mp-parts-count", false),
    ("x-amz-tagging-count", false),
];

/// Whether rusoto_s3 would panic parsing header `name` (lower-case) with `value`.
fn rusoto_would_panic_on(name: &str, value: &str) -> bool {
    RUSOTO_PARSED_HEADERS
        .iter()
        .find(|(n, _)| *n == name)
        .is_some_and(|(_, is_bool)| {
            if *is_bool {
                value.parse::<bool>().is_err()
            } else {
                value.parse::<i64>().is_err()
            }
        })
}

impl<C> DispatchSignedRequest for Transport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    fn dispatch(
        &self,
        request: SignedRequest,
        timeout: Option<Duration>,
    ) -> DispatchSignedRequestFuture {
        let built = to_hyper(request, &self.default_user_agent).map(|mut r| {
            if let Some(auth) = self
                .proxy
                .as_ref()
                .and_then(|p| p.proxy_authorization(r.uri()))
            {
                r.headers_mut()
                    .insert(hyper::header::PROXY_AUTHORIZATION, auth);
            }
            r
        });
        let client = self.client.clone();
        async move {
            let request = built?;
            let sent = client.request(request);
            let resp = match timeout {
                None => sent.await,
                Some(limit) => match tokio::time::timeout(limit, sent).await {
                    Ok(r) => r,
                    Err(_) => return Err(error("Timeout while dispatching request".to_owned())),
                },
            };
            let resp = resp.map_err(|e| error(format!("Error during dispatch: {e}")))?;
            Ok(from_hyper(resp))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusoto_core::param::{Params, ServiceParams};
    use rusoto_core::Region;

    fn ua() -> HeaderValue {
        HeaderValue::from_static("regstore/test")
    }

    #[test]
    fn wire_form_matches_what_rusoto_sent() {
        let region = Region::Custom {
            name: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9007/base".into(),
        };
        let mut r = SignedRequest::new("GET", "s3", &region, "/bkt/a b/ü+c");
        let mut p = Params::new();
        p.put("prefix", "x/y z");
        p.put_key("uploads");
        r.set_params(p);
        r.add_header("Range", "bytes=0-9");
        // rusoto's complement computed the path and query its client sent.
        let mut old = SignedRequest::new("GET", "s3", &region, "/bkt/a b/ü+c");
        old.set_params(r.params.clone());
        old.complement();
        prepare(&mut r);
        assert_eq!(r.canonical_uri, old.canonical_uri);
        assert_eq!(r.canonical_query_string, old.canonical_query_string);
        assert_eq!(r.headers["host"], old.headers["host"]);
        assert_eq!(r.headers["content-type"], old.headers["content-type"]);
        assert_eq!(r.headers["content-length"], old.headers["content-length"]);
        let h = to_hyper(r, &ua()).unwrap();
        assert_eq!(h.method(), Method::GET);
        assert_eq!(
            h.uri().to_string(),
            "http://127.0.0.1:9007/base/bkt/a%20b/%C3%BC%2Bc?prefix=x%2Fy%20z&uploads="
        );
        assert_eq!(h.headers()["range"], "bytes=0-9");
        assert_eq!(h.headers()["user-agent"], "regstore/test");
        assert_eq!(h.headers()["content-length"], "0");
    }

    #[test]
    fn bodies_and_errors() {
        let mut r = SignedRequest::new("PUT", "s3", &Region::UsEast1, "/b/k");
        r.set_payload(Some(b"abc".to_vec()));
        r.add_header("user-agent", "mine");
        r.add_header("x-amz-meta-a", "1");
        r.add_header("x-amz-meta-a", "2");
        r.headers
            .insert("X-Amz-Meta-A".to_owned(), vec![b"3".to_vec()]);
        prepare(&mut r);
        assert_eq!(r.headers["x-amz-meta-a"].len(), 3);
        assert!(!r.headers.contains_key("X-Amz-Meta-A"));
        assert_eq!(r.headers["content-length"], vec![b"3".to_vec()]);
        let h = to_hyper(r, &ua()).unwrap();
        assert_eq!(h.headers()["user-agent"], "mine");
        assert_eq!(h.headers().get_all("x-amz-meta-a").iter().count(), 3);
        assert_eq!(
            h.uri().to_string(),
            "https://s3.us-east-1.amazonaws.com/b/k"
        );

        let mut r = SignedRequest::new("PUT", "s3", &Region::UsEast1, "/b/k");
        r.set_payload_stream(ByteStream::new_with_size(
            futures::stream::iter(vec![Ok(Bytes::from_static(b"abcd"))]),
            4,
        ));
        prepare(&mut r);
        assert_eq!(r.headers["content-length"], vec![b"4".to_vec()]);
        let mut r = SignedRequest::new("PUT", "s3", &Region::UsEast1, "/b/k");
        r.set_payload_stream(ByteStream::new(futures::stream::iter(vec![Ok(
            Bytes::from_static(b"abcd"),
        )])));
        prepare(&mut r);
        assert!(!r.headers.contains_key("content-length"));

        let r = SignedRequest::new("BREW", "s3", &Region::UsEast1, "/b/k");
        let err = to_hyper(r, &ua()).unwrap_err().to_string();
        assert!(err.contains("Unsupported HTTP verb"), "{err}");
        let mut r = SignedRequest::new("GET", "s3", &Region::UsEast1, "/b/k");
        r.add_header("x-bad", "SECRET\nvalue");
        let err = to_hyper(r, &ua()).unwrap_err().to_string();
        assert!(err.contains("x-bad") && !err.contains("SECRET"), "{err}");
    }

    #[tokio::test]
    async fn responses_convert_without_panicking() {
        let resp = hyper::Response::builder()
            .status(206)
            .header("etag", "\"e\"")
            .header("x-amz-meta-n", HeaderValue::from_bytes(b"caf\xe9").unwrap())
            .header("x-multi", "a")
            .header("x-multi", "b")
            .header("x-amz-delete-marker", "maybe")
            .header("x-amz-mp-parts-count", "99999999999999999999")
            .header("x-amz-tagging-count", "3")
            .body(Body::from("body"))
            .unwrap();
        let r = from_hyper(resp);
        assert_eq!(r.status.as_u16(), 206);
        assert_eq!(r.headers.get("etag").map(String::as_str), Some("\"e\""));
        assert_eq!(
            r.headers.get("x-amz-meta-n").map(String::as_str),
            Some("caf\u{fffd}")
        );
        assert_eq!(r.headers.get_all("x-multi").iter().count(), 2);
        // rusoto_s3 would `unwrap` these parses: unparseable values are dropped, valid kept.
        assert!(r.headers.get("x-amz-delete-marker").is_none());
        assert!(r.headers.get("x-amz-mp-parts-count").is_none());
        assert_eq!(
            r.headers.get("x-amz-tagging-count").map(String::as_str),
            Some("3")
        );
        let body: Vec<Bytes> = r.body.try_collect().await.unwrap();
        assert_eq!(body.concat(), b"body");
    }
}
