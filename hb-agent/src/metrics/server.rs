//! A minimal HTTP/1.1 server for Prometheus scrapes: `GET /metrics` (or
//! `HEAD`) answers 200 with the text exposition format, any other path 404.
//!
//! Where the data comes from: the agent's state (cluster logic, owners,
//! counters, the `Kernel` handle to the BPF maps) lives on its event loop,
//! so the server does not hold any of it. For each scrape it sends a
//! [`ScrapeReply`] (a oneshot sender) over an mpsc channel; the event loop
//! builds a `MetricsSnapshot` right then (reading the BPF maps), renders
//! it and sends the text back. Data is therefore always as fresh as the
//! scrape, nothing is cached or polled between scrapes, and no lock is
//! shared with the loop. If the loop does not answer within
//! [`RENDER_TIMEOUT`] (or is gone) the scrape gets 503.
//!
//! Robustness: one task per connection, at most [`MAX_CONNECTIONS`] at once
//! (further ones wait in the listen backlog), request head capped at
//! [`MAX_REQUEST_BYTES`] and [`READ_TIMEOUT`], one request per connection
//! (`Connection: close`), malformed requests get 400 and the connection is
//! closed. Nothing on the request path panics.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::timeout;
use tracing::{debug, warn};

/// The agent answers a scrape by sending the rendered page on this.
pub type ScrapeReply = oneshot::Sender<String>;
/// The server's end of the scrape channel; the agent's loop holds the
/// `mpsc::Receiver<ScrapeReply>`.
pub type ScrapeRequests = mpsc::Sender<ScrapeReply>;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Largest request head (request line and headers) accepted.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Time a client gets to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the agent's loop gets to render a scrape.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client gets to take the response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MetricsServer {
    listener: TcpListener,
    scrapes: ScrapeRequests,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port; see [`Self::local_addr`]).
    pub async fn bind(addr: SocketAddr, scrapes: ScrapeRequests) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics endpoint {addr}"))?;
        Ok(MetricsServer { listener, scrapes })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the agent drops its end of the scrape channel.
    pub async fn run(self) -> Result<()> {
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return Ok(());
            };
            let accepted = tokio::select! {
                _ = self.scrapes.closed() => return Ok(()),
                r = self.listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let scrapes = self.scrapes.clone();
                    tokio::spawn(async move {
                        handle(stream, scrapes).await;
                        debug!(%peer, "metrics connection done");
                        drop(permit);
                    });
                }
                Err(e) => {
                    // EMFILE and the like: do not spin.
                    warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Binds `addr` and serves until the agent drops its end of the channel.
pub async fn serve(addr: SocketAddr, scrapes: ScrapeRequests) -> Result<()> {
    MetricsServer::bind(addr, scrapes).await?.run().await
}

struct Response {
    status: u16,
    reason: &'static str,
    extra_header: Option<&'static str>,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, reason: &'static str) -> Self {
        Response {
            status,
            reason,
            extra_header: None,
            content_type: "text/plain; charset=utf-8",
            body: format!("{reason}\n"),
        }
    }

    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut o = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if let Some(h) = self.extra_header {
            o.push_str(h);
            o.push_str("\r\n");
        }
        o.push_str("\r\n");
        let mut b = o.into_bytes();
        if !head_only {
            b.extend_from_slice(self.body.as_bytes());
        }
        b
    }
}

enum HeadError {
    /// The client went away or the socket failed: nothing to answer.
    Gone,
    TooLarge,
    /// EOF before the end of the head.
    Truncated,
}

async fn handle(mut stream: TcpStream, scrapes: ScrapeRequests) {
    let _ = stream.set_nodelay(true);
    let (resp, head_only) = match timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => (Response::text(408, "Request Timeout"), false),
        Ok(Err(HeadError::Gone)) => return,
        Ok(Err(HeadError::TooLarge)) => (
            Response::text(431, "Request Header Fields Too Large"),
            false,
        ),
        Ok(Err(HeadError::Truncated)) => (Response::text(400, "Bad Request"), false),
        Ok(Ok(head)) => respond(&head, &scrapes).await,
    };
    let bytes = resp.to_bytes(head_only);
    let _ = timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    // Take what the client may still send (a body, the rest of an oversized
    // head) so closing does not reset the connection before it reads the
    // response.
    let mut sink = [0u8; 4096];
    let _ = timeout(Duration::from_secs(1), async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads up to the blank line ending the request head.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Err(HeadError::Gone),
            Ok(0) => return Err(HeadError::Truncated),
            Ok(n) => n,
            Err(_) => return Err(HeadError::Gone),
        };
        // Only the new bytes (and 3 before them) can complete the terminator.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf[from..]) {
            buf.truncate(from + end);
            return Ok(buf);
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Offset just past `\r\n\r\n` (or a bare `\n\n`, which lenient clients send).
fn head_end(b: &[u8]) -> Option<usize> {
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Routes a complete request head; returns the response and whether it is
/// for a HEAD request (headers only).
async fn respond(head: &[u8], scrapes: &ScrapeRequests) -> (Response, bool) {
    let bad = (Response::text(400, "Bad Request"), false);
    let line = head.split(|&c| c == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad;
    };
    if !version.starts_with("HTTP/") {
        return bad;
    }
    if !version.starts_with("HTTP/1.") {
        return (Response::text(505, "HTTP Version Not Supported"), false);
    }
    if !target.starts_with('/') {
        return bad;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Response::text(405, "Method Not Allowed");
            r.extra_header = Some("Allow: GET, HEAD");
            return (r, false);
        }
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return (Response::text(404, "Not Found"), head_only);
    }
    let resp = match scrape(scrapes).await {
        Some(body) => Response {
            status: 200,
            reason: "OK",
            extra_header: None,
            content_type: CONTENT_TYPE,
            body,
        },
        None => Response::text(503, "Service Unavailable"),
    };
    (resp, head_only)
}

/// Asks the agent's loop for a rendered page.
async fn scrape(scrapes: &ScrapeRequests) -> Option<String> {
    let (tx, rx) = oneshot::channel();
    timeout(RENDER_TIMEOUT, async {
        scrapes.send(tx).await.ok()?;
        rx.await.ok()
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use tokio::task::JoinHandle;

    use super::*;
    use crate::metrics::render::{MetricsSnapshot, render};

    /// Starts the server on a free port with a stand-in agent loop that
    /// answers each scrape with a fresh page (numbered, to show freshness).
    async fn start() -> (SocketAddr, JoinHandle<Result<()>>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<ScrapeReply>(4);
        let srv = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx)
            .await
            .unwrap();
        let addr = srv.local_addr().unwrap();
        let server = tokio::spawn(srv.run());
        let agent = tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(reply) = rx.recv().await {
                n += 1;
                let snap = MetricsSnapshot {
                    sender: crate::metrics::render::SenderMetrics {
                        sent: n,
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let _ = reply.send(render(&snap));
            }
        });
        (addr, server, agent)
    }

    /// Sends raw bytes, half-closes, reads everything back.
    async fn raw(addr: SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The server may answer and close before taking all of an oversized
        // request; a failed write is part of what is being tested.
        let _ = s.write_all(req).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn split(resp: &str) -> (&str, &str) {
        resp.split_once("\r\n\r\n").expect("complete response")
    }

    #[tokio::test]
    async fn scrape_returns_fresh_metrics() {
        let (addr, _srv, _agent) = start().await;
        for n in 1..=2 {
            let resp = raw(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let (head, body) = split(&resp);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(head.contains("\r\nContent-Type: text/plain; version=0.0.4"));
            assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
            assert!(head.contains("\r\nConnection: close"));
            assert!(body.contains("# TYPE hb_heartbeats_sent_total counter\n"));
            assert!(body.contains(&format!("\nhb_heartbeats_sent_total {n}\n")));
        }
        // A query string is ignored; HTTP/1.0 and bare LF are accepted.
        let resp = raw(addr, b"GET /metrics?x=1 HTTP/1.0\n\n").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        // HEAD: headers only.
        let resp = raw(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        let (head, body) = split(&resp);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn other_paths_and_methods() {
        let (addr, _srv, _agent) = start().await;
        let resp = raw(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 404 Not Found\r\n"), "{resp}");
        let resp = raw(addr, b"GET /metricsx HTTP/1.1\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 404 "), "{resp}");
        let resp = raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 405 "), "{resp}");
        assert!(resp.contains("\r\nAllow: GET, HEAD\r\n"));
    }

    #[tokio::test]
    async fn garbage_requests_are_refused_and_server_survives() {
        let (addr, srv, _agent) = start().await;
        let big = vec![b'A'; 100 * 1024];
        let mut huge_headers = b"GET /metrics HTTP/1.1\r\n".to_vec();
        huge_headers
            .extend(std::iter::repeat_n(b"X-Pad: yyyyyyyyyyyy\r\n".as_slice(), 1000).flatten());
        let cases: Vec<(&[u8], &str)> = vec![
            (b"garbage\r\n\r\n", "400"),
            (b"\x00\xff\xfe\r\n\r\n", "400"),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", "400"),
            (b"GET metrics HTTP/1.1\r\n\r\n", "400"),
            (b"GET /metrics SPDY/3\r\n\r\n", "400"),
            (b"GET /metrics HTTP/2.0\r\n\r\n", "505"),
            (b"GET /metrics HTTP/1.1\r\n", "400"), // truncated head
            (&big, "431"),
            (&huge_headers, "431"),
            (b"", ""), // connect and close: no answer
        ];
        for (req, want) in cases {
            let resp = raw(addr, req).await;
            if want.is_empty() {
                assert!(resp.is_empty(), "{resp}");
            } else {
                // An oversized request may be reset before the response is
                // read; if anything came back it must be the right status.
                let ok = resp.starts_with(&format!("HTTP/1.1 {want} "))
                    || (want == "431" && resp.is_empty());
                assert!(
                    ok,
                    "{:?} -> {resp:?}",
                    String::from_utf8_lossy(&req[..req.len().min(40)])
                );
            }
        }
        assert!(!srv.is_finished());
        let resp = raw(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    }

    #[tokio::test]
    async fn unanswered_scrape_is_503_and_server_stops_with_agent() {
        let (tx, mut rx) = mpsc::channel::<ScrapeReply>(1);
        let srv = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx)
            .await
            .unwrap();
        let addr = srv.local_addr().unwrap();
        let server = tokio::spawn(srv.run());
        // An agent that drops the reply without answering.
        let agent = tokio::spawn(async move {
            if let Some(reply) = rx.recv().await {
                drop(reply);
            }
        });
        let resp = raw(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 503 "), "{resp}");
        agent.await.unwrap(); // drops the receiver
        let done = timeout(Duration::from_secs(5), server).await;
        assert!(matches!(done, Ok(Ok(Ok(())))));
    }
}
