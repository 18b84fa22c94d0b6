//! Just enough HTTP/1.1 for a one-request-per-connection proxy: reading a message head, knowing
//! how its body is framed, rewriting the head to `Connection: close`, and copying a framed body
//! byte for byte (chunk headers included) without buffering it.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest message head accepted (S3 heads are a few KiB; real servers cap at 8–64 KiB).
pub(crate) const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Largest chunk-size or trailer line accepted in a chunked body.
const MAX_LINE_BYTES: u64 = 4096;
/// Most headers parsed in one head.
const MAX_HEADERS: usize = 128;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one message head, up to and including the empty line. `Ok(None)` when the peer closed
/// the connection before sending anything (an idle connection closing is not an error). Empty
/// lines before the start line are skipped, as RFC 9112 §2.2 allows.
pub(crate) async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let room = MAX_HEAD_BYTES.saturating_sub(before as u64);
        if room == 0 {
            return Err(invalid("message head too large"));
        }
        let n = (&mut *r).take(room).read_until(b'\n', &mut head).await?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        let line = &head[before..];
        if !line.ends_with(b"\n") {
            return Err(invalid("message head too large"));
        }
        let blank = line == b"\r\n" || line == b"\n";
        if blank && before == 0 {
            head.clear();
            continue;
        }
        if blank {
            return Ok(Some(head));
        }
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all (`HEAD` responses, 204, 304, requests without length headers).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes (responses without a length).
    UntilEof,
}

/// The parts of a request head the proxy acts on, plus the head rewritten for the upstream.
pub(crate) struct RequestHead {
    pub method: String,
    pub framing: Framing,
    /// The client sent `Expect: 100-continue` and waits for an interim answer before the body.
    pub expects_continue: bool,
    /// The head to send upstream: the client's head with `Connection: close`.
    pub forward: Vec<u8>,
}

/// The parts of a response head the proxy acts on, plus the head rewritten for the client.
pub(crate) struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    /// The head to send to the client: the upstream's head with `Connection: close`.
    pub forward: Vec<u8>,
}

/// Body framing from the headers (RFC 9112 §6.3): chunked wins over a length; several
/// different lengths are an error (request smuggling territory, so refuse rather than guess).
fn framing_from_headers(headers: &[httparse::Header<'_>]) -> io::Result<Option<Framing>> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value);
            let last = v
                .rsplit(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if last == "chunked" {
                chunked = true;
            } else {
                return Err(invalid(format!("unsupported transfer-encoding {v:?}")));
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| invalid("invalid content-length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(invalid("conflicting content-length headers"));
            }
            length = Some(v);
        }
    }
    Ok(if chunked {
        Some(Framing::Chunked)
    } else {
        length.map(Framing::Length)
    })
}

/// Writes `headers` with any `Connection` header replaced by `Connection: close` (appended when
/// absent). The value is replaced in place rather than the header removed, so a request that
/// (unusually) signed its `Connection` header keeps the header's position and name.
fn write_headers(out: &mut Vec<u8>, headers: &[httparse::Header<'_>], drop_keep_alive: bool) {
    let mut saw_connection = false;
    for h in headers {
        if drop_keep_alive && h.name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        if h.name.eq_ignore_ascii_case("connection") {
            saw_connection = true;
            out.extend_from_slice(b"close");
        } else {
            out.extend_from_slice(h.value);
        }
        out.extend_from_slice(b"\r\n");
    }
    if !saw_connection {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a request head read by [`read_head`].
pub(crate) fn parse_request(head: &[u8]) -> io::Result<RequestHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("incomplete request head")),
        Err(e) => return Err(invalid(format!("bad request head: {e}"))),
    }
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(invalid("request head without method or target"));
    };
    let framing = framing_from_headers(req.headers)?.unwrap_or(Framing::Empty);
    let expects_continue = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue")
    });
    let mut forward = Vec::with_capacity(head.len() + 32);
    forward.extend_from_slice(method.as_bytes());
    forward.push(b' ');
    forward.extend_from_slice(path.as_bytes());
    forward.extend_from_slice(b" HTTP/1.1\r\n");
    write_headers(&mut forward, req.headers, false);
    Ok(RequestHead {
        method: method.to_owned(),
        framing,
        expects_continue,
        forward,
    })
}

/// Parses a response head read by [`read_head`]; `request_method` decides whether a body follows.
pub(crate) fn parse_response(head: &[u8], request_method: &str) -> io::Result<ResponseHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("incomplete response head")),
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    }
    let Some(status) = resp.code else {
        return Err(invalid("response head without status"));
    };
    let bodiless = request_method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304;
    let framing = if bodiless {
        Framing::Empty
    } else {
        framing_from_headers(resp.headers)?.unwrap_or(Framing::UntilEof)
    };
    let mut forward = Vec::with_capacity(head.len() + 32);
    forward.extend_from_slice(format!("HTTP/1.1 {status} ").as_bytes());
    forward.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    forward.extend_from_slice(b"\r\n");
    write_headers(&mut forward, resp.headers, true);
    Ok(ResponseHead {
        status,
        framing,
        forward,
    })
}

/// Copies exactly `n` bytes; fewer is `UnexpectedEof`.
async fn copy_exact<R, W>(r: &mut R, w: &mut W, n: u64) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = tokio::io::copy_buf(&mut (&mut *r).take(n), w).await?;
    if copied < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("body ended after {copied} of {n} bytes"),
        ));
    }
    Ok(())
}

/// Reads one line (with its CRLF) of at most [`MAX_LINE_BYTES`].
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *r)
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut line)
        .await?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() as u64 >= MAX_LINE_BYTES {
            invalid("chunk line too long")
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body ended early")
        });
    }
    Ok(line)
}

/// The size of a chunk from its size line (`1a;ext=v\r\n`).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("chunk size is not ASCII"))?;
    let hex = text.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| invalid(format!("bad chunk size {hex:?}")))
}

/// How much of a body [`copy_body`] forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// All of it.
    Whole,
    /// Stop half-way (a truncated body): half the bytes of a sized body, or half of the
    /// first chunk's data of a chunked one (never the terminating chunk).
    Half,
}

/// Copies a body framed as `framing` from `r` to `w`, byte for byte, and returns whether all
/// of it was copied (`false` only for [`Cut::Half`]).
pub(crate) async fn copy_body<R, W>(
    r: &mut R,
    w: &mut W,
    framing: Framing,
    cut: Cut,
) -> io::Result<bool>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty => Ok(true),
        Framing::Length(n) => {
            if cut == Cut::Half {
                copy_exact(r, w, n / 2).await?;
                Ok(false)
            } else {
                copy_exact(r, w, n).await?;
                Ok(true)
            }
        }
        Framing::UntilEof => {
            tokio::io::copy_buf(r, w).await?;
            Ok(true)
        }
        Framing::Chunked => loop {
            let line = read_line(r).await?;
            let size = chunk_size(&line)?;
            w.write_all(&line).await?;
            if cut == Cut::Half {
                copy_exact(r, w, size / 2).await?;
                return Ok(false);
            }
            if size == 0 {
                // Trailer section, ended by an empty line.
                loop {
                    let trailer = read_line(r).await?;
                    w.write_all(&trailer).await?;
                    if trailer == b"\r\n" || trailer == b"\n" {
                        return Ok(true);
                    }
                }
            }
            copy_exact(r, w, size).await?;
            let end = read_line(r).await?;
            if end != b"\r\n" && end != b"\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            w.write_all(&end).await?;
        },
    }
}

/// Copies a body framed as `framing` like [`copy_body`] with [`Cut::Whole`], except that one
/// data byte is inverted (XOR `0xFF`): the byte at `at` modulo the body's length for a sized
/// body, or at `at` modulo the size of the first non-empty chunk, within that chunk, for a
/// chunked one (chunk framing stays intact). Returns whether a byte was changed: `false` for a
/// body without data bytes, which is copied unchanged.
pub(crate) async fn copy_body_flipping<R, W>(
    r: &mut R,
    w: &mut W,
    framing: Framing,
    at: u64,
) -> io::Result<bool>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Copies `n > 0` bytes with the byte at `k < n` inverted.
    async fn flip_in<R, W>(r: &mut R, w: &mut W, n: u64, k: u64) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        copy_exact(r, w, k).await?;
        let b = r.read_u8().await?;
        w.write_all(&[b ^ 0xFF]).await?;
        copy_exact(r, w, n - k - 1).await
    }
    match framing {
        Framing::Length(n) if n > 0 => {
            flip_in(r, w, n, at % n).await?;
            Ok(true)
        }
        Framing::Chunked => {
            let mut flipped = false;
            loop {
                let line = read_line(r).await?;
                let size = chunk_size(&line)?;
                w.write_all(&line).await?;
                if size == 0 {
                    loop {
                        let trailer = read_line(r).await?;
                        w.write_all(&trailer).await?;
                        if trailer == b"\r\n" || trailer == b"\n" {
                            return Ok(flipped);
                        }
                    }
                }
                if flipped {
                    copy_exact(r, w, size).await?;
                } else {
                    flip_in(r, w, size, at % size).await?;
                    flipped = true;
                }
                let end = read_line(r).await?;
                if end != b"\r\n" && end != b"\n" {
                    return Err(invalid("chunk data not followed by CRLF"));
                }
                w.write_all(&end).await?;
            }
        }
        // Nothing to change (or nothing framed: a request has no until-EOF body).
        _ => copy_body(r, w, framing, Cut::Whole).await.map(|_| false),
    }
}

/// Reads and discards a body framed as `framing` (a request answered without forwarding it).
pub(crate) async fn drain_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    framing: Framing,
) -> io::Result<()> {
    copy_body(r, &mut tokio::io::sink(), framing, Cut::Whole)
        .await
        .map(|_| ())
}

/// Reads an upstream response head, skipping interim `1xx` responses (the proxy answers
/// `100 Continue` to the client itself, so upstream's must not reach it).
pub(crate) async fn read_final_response<R: AsyncBufRead + Unpin>(
    r: &mut R,
    request_method: &str,
) -> io::Result<ResponseHead> {
    loop {
        let Some(head) = read_head(r).await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "upstream closed without a response",
            ));
        };
        let parsed = parse_response(&head, request_method)?;
        if !(100..200).contains(&parsed.status) || parsed.status == 101 {
            return Ok(parsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn head_rewrite_and_framing() {
        let raw = b"\r\nPUT /b/k HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello";
        let mut r = tokio::io::BufReader::new(&raw[..]);
        let head = read_head(&mut r).await.unwrap().unwrap();
        let req = parse_request(&head).unwrap();
        assert_eq!(req.method, "PUT");
        assert_eq!(req.framing, Framing::Length(5));
        assert_eq!(
            req.forward,
            b"PUT /b/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\n"
        );
        let mut out = Vec::new();
        assert!(copy_body(&mut r, &mut out, req.framing, Cut::Whole)
            .await
            .unwrap());
        assert_eq!(out, b"hello");
    }

    #[tokio::test]
    async fn chunked_bodies_copy_verbatim_and_cut_in_half() {
        let body = b"4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\nTrailer: t\r\n\r\n";
        let mut out = Vec::new();
        let mut r = tokio::io::BufReader::new(&body[..]);
        assert!(copy_body(&mut r, &mut out, Framing::Chunked, Cut::Whole)
            .await
            .unwrap());
        assert_eq!(out, body);
        let mut out = Vec::new();
        let mut r = tokio::io::BufReader::new(&body[..]);
        assert!(!copy_body(&mut r, &mut out, Framing::Chunked, Cut::Half)
            .await
            .unwrap());
        assert_eq!(out, b"4;x=y\r\nab");
    }

    #[tokio::test]
    async fn flipping_changes_exactly_one_data_byte() {
        let body: Vec<u8> = (0u8..10).collect();
        for at in [0u64, 3, 9, 10, 12345] {
            let mut out = Vec::new();
            let mut r = tokio::io::BufReader::new(&body[..]);
            assert!(
                copy_body_flipping(&mut r, &mut out, Framing::Length(10), at)
                    .await
                    .unwrap()
            );
            let k = (at % 10) as usize;
            let mut want = body.clone();
            want[k] ^= 0xFF;
            assert_eq!(out, want, "at {at}");
        }
        // Chunked: inside the first non-empty chunk's data, framing and trailers untouched.
        let body = b"4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\nTrailer: t\r\n\r\n";
        let mut out = Vec::new();
        let mut r = tokio::io::BufReader::new(&body[..]);
        assert!(copy_body_flipping(&mut r, &mut out, Framing::Chunked, 6)
            .await
            .unwrap());
        let mut want = body.to_vec();
        want[7 + 2] ^= 0xFF;
        assert_eq!(out, want);
        // No data bytes: copied as is, reported unchanged.
        for (framing, raw) in [
            (Framing::Length(0), &b""[..]),
            (Framing::Empty, b""),
            (Framing::Chunked, b"0\r\n\r\n"),
        ] {
            let mut out = Vec::new();
            let mut r = tokio::io::BufReader::new(raw);
            assert!(!copy_body_flipping(&mut r, &mut out, framing, 5)
                .await
                .unwrap());
            assert_eq!(out, raw);
        }
    }

    #[test]
    fn response_framing_rules() {
        let h = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nKeep-Alive: timeout=5\r\n\r\n";
        let r = parse_response(h, "GET").unwrap();
        assert_eq!(r.framing, Framing::Length(10));
        assert_eq!(
            r.forward,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(parse_response(h, "HEAD").unwrap().framing, Framing::Empty);
        let h = b"HTTP/1.1 200 OK\r\nServer: s\r\n\r\n";
        assert_eq!(parse_response(h, "GET").unwrap().framing, Framing::UntilEof);
        let h = b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parse_response(h, "GET").unwrap().framing, Framing::Empty);
    }

    #[test]
    fn malformed_heads_are_errors_not_panics() {
        for h in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(
                parse_request(h).is_err(),
                "{:?}",
                String::from_utf8_lossy(h)
            );
        }
        assert!(chunk_size(b"zz\r\n").is_err());
    }

    #[tokio::test]
    async fn oversized_head_is_refused() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES as usize));
        raw.extend_from_slice(b"\r\n\r\n");
        let mut r = tokio::io::BufReader::new(&raw[..]);
        assert!(read_head(&mut r).await.is_err());
    }
}
