//! A fixed-answer HTTP/1.1 stand-in on 127.0.0.1, for the tests whose upstream (an ip-ranges
//! list, a credentials endpoint, STS, an S3 that refuses) only has to answer the same way every
//! time and be counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head (and declared body) read before answering anyway.
const MAX_REQUEST: usize = 1024 * 1024;

#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// Answers every request with the current reply (status, content type, body; one request per
/// connection) and counts the requests. Stops when dropped.
pub struct ReplyServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash; any path is answered alike.
    pub url: String,
    hits: Arc<AtomicU64>,
    reply: Arc<Mutex<Reply>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReplyServer {
    /// Starts a server answering `status` with a `content_type` body. Panics when no loopback
    /// port can be bound (a test environment failure, not a test result).
    pub async fn start(status: u16, content_type: &str, body: impl Into<String>) -> ReplyServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind a loopback port for a stand-in: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("stand-in has no local address: {e}"));
        let hits = Arc::new(AtomicU64::new(0));
        let reply = Arc::new(Mutex::new(Reply {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
        }));
        let (h, r) = (Arc::clone(&hits), Arc::clone(&reply));
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(answer(sock, Arc::clone(&h), Arc::clone(&r)));
            }
        });
        ReplyServer {
            url: format!("http://{addr}"),
            hits,
            reply,
            task,
        }
    }

    /// [`start`](Self::start) with `application/json`.
    pub async fn json(status: u16, body: impl Into<String>) -> ReplyServer {
        Self::start(status, "application/json", body).await
    }

    /// Requests answered or being answered so far (counted once a request head has arrived).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Changes the status and body of later answers (the content type stays).
    pub fn set_reply(&self, status: u16, body: impl Into<String>) {
        let mut reply = self.reply.lock().unwrap_or_else(PoisonError::into_inner);
        reply.status = status;
        reply.body = body.into();
    }
}

impl Drop for ReplyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head and any `Content-Length` body), then answers and closes.
async fn answer(mut sock: TcpStream, hits: Arc<AtomicU64>, reply: Arc<Mutex<Reply>>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let mut counted = false;
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            if seen.len() > MAX_REQUEST {
                break;
            }
            continue;
        };
        if !counted {
            hits.fetch_add(1, Ordering::SeqCst);
            counted = true;
        }
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if seen.len() >= end + 4 + len.min(MAX_REQUEST) {
            break;
        }
    }
    let reply = reply.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.body
    );
    let _ = sock.write_all(response.as_bytes()).await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str) -> String {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn answers_counts_and_changes_its_reply() {
        let server = ReplyServer::json(503, "down").await;
        let first = get(&server.url).await;
        assert!(first.starts_with("HTTP/1.1 503 "), "{first}");
        assert!(first.contains("content-type: application/json") && first.ends_with("down"));
        server.set_reply(200, "{}");
        let second = get(&server.url).await;
        assert!(
            second.starts_with("HTTP/1.1 200 ") && second.ends_with("{}"),
            "{second}"
        );
        assert_eq!(server.hits(), 2);
    }
}
