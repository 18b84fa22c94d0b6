//! Fetching redirect URLs over HTTP(S), for the `redirect_url` case.

use hyper::body::HttpBody;
use hyper::client::HttpConnector;
use hyper::{Body, Client, Method, Request};
use hyper_tls::HttpsConnector;

/// The most body bytes read from a redirect URL; the case stores 32 bytes, so anything larger
/// is a wrong object and need not be held.
const MAX_BODY: usize = 1024 * 1024;

/// Sends GET (or HEAD) to `url` and returns status, body (empty for HEAD) and the
/// Content-Length header. The URL is never put into an error: presigned URLs carry
/// credentials.
pub async fn fetch(
    url: &url::Url,
    head: bool,
    skip_tls_verify: bool,
) -> Result<(u16, Vec<u8>, Option<u64>), String> {
    let mut tls = native_tls::TlsConnector::builder();
    if skip_tls_verify {
        tls.danger_accept_invalid_certs(true);
        tls.danger_accept_invalid_hostnames(true);
    }
    let tls = tls.build().map_err(|e| format!("cannot set up TLS: {e}"))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = HttpsConnector::from((http, tokio_native_tls::TlsConnector::from(tls)));
    let client: Client<_, Body> = Client::builder().build(https);
    let request = Request::builder()
        .method(if head { Method::HEAD } else { Method::GET })
        .uri(url.as_str())
        .body(Body::empty())
        .map_err(|e| format!("not a usable URI ({} scheme): {e}", url.scheme()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("request to host {:?} failed: {e}", url.host_str()))?;
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = Vec::new();
    if !head {
        let mut b = response.into_body();
        while let Some(chunk) = b.data().await {
            let chunk = chunk.map_err(|e| format!("reading the body failed: {e}"))?;
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(format!("body larger than {MAX_BODY} bytes"));
            }
        }
    }
    Ok((status, body, length))
}
