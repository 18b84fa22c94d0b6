//! Fetching redirect URLs over HTTP(S), for the `redirect_url` case.

use std::time::Duration;

use hyper::body::HttpBody;
use hyper::client::HttpConnector;
use hyper::{Body, Client, Method, Request};
use hyper_tls::HttpsConnector;

/// The most body bytes read from a redirect URL; the case stores 32 bytes, so anything larger
/// is a wrong object and need not be held.
const MAX_BODY: usize = 1024 * 1024;

/// First back-off of [`fetch_with_retries`]; doubled per retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Status, body (empty for HEAD) and Content-Length of a fetched URL.
pub type Fetched = (u16, Vec<u8>, Option<u64>);

/// Whether an answer is worth another attempt: a transport failure (including a body cut
/// short), a server error or `429 Too Many Requests`. Other statuses are the server's verdict
/// on the URL itself — a `403` for a bad signature must fail the case, not be retried.
fn transient(result: &Result<Fetched, String>) -> bool {
    match result {
        Err(_) => true,
        Ok((status, _, _)) => *status >= 500 || *status == 429,
    }
}

/// [`fetch`], repeated up to `retries` more times (at most
/// [`MAX_REDIRECT_RETRIES`](crate::MAX_REDIRECT_RETRIES)) while the outcome is
/// [`transient`], pausing 50 ms, 100 ms, … (at most 1 s) in between. Returns the last outcome;
/// an error says how many attempts were made.
pub async fn fetch_with_retries(
    url: &url::Url,
    head: bool,
    skip_tls_verify: bool,
    retries: u32,
) -> Result<Fetched, String> {
    let retries = retries.min(crate::MAX_REDIRECT_RETRIES);
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = fetch(url, head, skip_tls_verify).await;
        if attempt > retries || !transient(&result) {
            return match result {
                Err(e) if attempt > 1 => Err(format!("{e} (after {attempt} attempts)")),
                other => other,
            };
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sends GET (or HEAD) to `url` and returns status, body (empty for HEAD) and the
/// Content-Length header. The URL is never put into an error: presigned URLs carry
/// credentials.
pub async fn fetch(url: &url::Url, head: bool, skip_tls_verify: bool) -> Result<Fetched, String> {
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
