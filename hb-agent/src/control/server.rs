//! The agent's end of the control socket.
//!
//! Requests are tiny JSON lines, so a client gets little: a request longer
//! than [`Limits::max_request`] is answered with an error and its connection
//! closed, having cost at most that much memory (plus one read buffer); at
//! most [`Limits::max_connections`] clients are served at once (one more is
//! told so and closed); a client that takes longer than [`Limits::idle`] to
//! send a request or to take its reply is dropped. Each connection is a task
//! of its own, so a slow or idle client never holds up the agent.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{debug, warn};

use super::{Request, Response};

/// A request with the channel its reply goes back on.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// What one client may cost the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest request, in bytes, newline excluded.
    pub max_request: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a client may take to send a whole request, or to take a
    /// reply (the agent's own time to answer is not counted).
    pub idle: Duration,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_request: 64 * 1024,
        max_connections: 64,
        idle: Duration::from_secs(60),
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// The read buffer of a connection (kept small: requests are tiny).
const READ_BUFFER: usize = 4096;

/// Removes the socket file when the agent stops.
pub struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds `path` (replacing a stale socket left by a killed agent, but not a
/// live one) and forwards requests to `tx`, within [`Limits::DEFAULT`].
pub fn serve(path: &Path, tx: mpsc::Sender<Incoming>) -> Result<SocketGuard> {
    serve_with(path, tx, Limits::DEFAULT)
}

/// [`serve`] within `limits`.
pub fn serve_with(path: &Path, tx: mpsc::Sender<Incoming>, limits: Limits) -> Result<SocketGuard> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another agent is already listening on {} (use --socket for a second one)",
                path.display()
            );
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // E.g. EMFILE: the error repeats until something
                    // closes, so do not spin on it.
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                warn!(
                    max = limits.max_connections,
                    "control socket: too many connections, one refused"
                );
                // A fresh socket's buffer takes the line at once; if not,
                // the client only misses the reason.
                let _ = stream.try_write(&reply_line(&Response::err(format!(
                    "too many control connections (at most {})",
                    limits.max_connections
                ))));
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, w) = stream.into_split();
                handle(r, w, tx, limits).await;
                drop(slot);
            });
        }
    });
    Ok(SocketGuard(path.to_path_buf()))
}

fn reply_line(resp: &Response) -> Vec<u8> {
    let mut out = serde_json::to_vec(resp).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Serves one connection: reads requests, one per line, forwards each to
/// `tx` and writes its reply, until the client closes, goes away, idles
/// longer than `limits.idle` or sends a request longer than
/// `limits.max_request` (answered with an error first).
pub async fn handle<R, W>(r: R, mut w: W, tx: mpsc::Sender<Incoming>, limits: Limits)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut r = BufReader::with_capacity(READ_BUFFER, r);
    let mut line = Vec::new();
    loop {
        let read = tokio::time::timeout(
            limits.idle,
            read_request(&mut r, &mut line, limits.max_request),
        )
        .await;
        let resp = match read {
            Err(_) => {
                debug!("control client idle too long, closed");
                return;
            }
            Ok(Err(e)) => {
                debug!(error = %e, "control client went away");
                return;
            }
            Ok(Ok(ReadRequest::Closed)) => return,
            Ok(Ok(ReadRequest::TooLong)) => {
                warn!(max = limits.max_request, "control request too long");
                let resp =
                    Response::err(format!("request longer than {} bytes", limits.max_request));
                let _ = tokio::time::timeout(limits.idle, w.write_all(&reply_line(&resp))).await;
                let _ = tokio::time::timeout(limits.idle, w.shutdown()).await;
                return;
            }
            Ok(Ok(ReadRequest::Line)) => match serde_json::from_slice::<Request>(&line) {
                Ok(req) => {
                    let (otx, orx) = oneshot::channel();
                    if tx.send((req, otx)).await.is_err() {
                        return;
                    }
                    orx.await
                        .unwrap_or_else(|_| Response::err("agent is stopping"))
                }
                Err(e) => {
                    warn!(error = %e, "bad control request");
                    Response::err(format!("bad request: {e}"))
                }
            },
        };
        match tokio::time::timeout(limits.idle, w.write_all(&reply_line(&resp))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                debug!("control client went away");
                return;
            }
            Err(_) => {
                debug!("control client took no reply, closed");
                return;
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ReadRequest {
    /// A request is in the buffer (newline and a `\r` before it removed).
    Line,
    /// End of input with nothing pending.
    Closed,
    /// More than the limit before a newline; the rest is left unread.
    TooLong,
}

/// Reads one line into `line` (cleared first), holding at most `max` bytes
/// of it: its capacity never exceeds `max`, whatever the client sends. A
/// last line without a newline counts, as with `lines()`.
async fn read_request<R: AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<ReadRequest> {
    line.clear();
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if line.is_empty() {
                ReadRequest::Closed
            } else {
                ReadRequest::Line
            });
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        let take = newline.unwrap_or(chunk.len());
        if line.len() + take > max {
            return Ok(ReadRequest::TooLong);
        }
        let want = line.len() + take;
        if want > line.capacity() {
            // Amortised growth, but never past `max`.
            let cap = (line.capacity() * 2).clamp(want, max);
            line.reserve_exact(cap - line.len());
        }
        line.extend_from_slice(&chunk[..take]);
        r.consume(newline.map_or(take, |i| i + 1));
        if newline.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(ReadRequest::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, Write as _};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, ReadBuf};

    use super::*;

    const MAX: usize = Limits::DEFAULT.max_request;

    /// Counts the bytes the server took from the client.
    struct Counting<R> {
        inner: R,
        taken: Arc<AtomicUsize>,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let before = buf.filled().len();
            let r = Pin::new(&mut self.inner).poll_read(cx, buf);
            let n = buf.filled().len() - before;
            self.taken.fetch_add(n, Ordering::SeqCst);
            r
        }
    }

    /// Answers every request with its Debug text.
    fn fake_agent() -> mpsc::Sender<Incoming> {
        let (tx, mut rx) = mpsc::channel::<Incoming>(4);
        tokio::spawn(async move {
            while let Some((req, reply)) = rx.recv().await {
                let _ = reply.send(Response::ok(format!("{req:?}")));
            }
        });
        tx
    }

    fn parse(line: &[u8]) -> Response {
        serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("reply {:?}: {e}", String::from_utf8_lossy(line)))
    }

    #[tokio::test]
    async fn oversize_request_is_refused_without_buffering_it() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (sr, sw) = tokio::io::split(server);
        let taken = Arc::new(AtomicUsize::new(0));
        let reader = Counting {
            inner: sr,
            taken: taken.clone(),
        };
        let served = tokio::spawn(handle(reader, sw, fake_agent(), Limits::DEFAULT));
        let (mut cr, mut cw) = tokio::io::split(client);
        // 16 MiB and no newline, the connection left open (the 1 GiB line
        // of the report, smaller): the server must answer and close.
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..256 {
                if cw.write_all(&chunk).await.is_err() {
                    return None;
                }
            }
            Some(cw)
        });
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), cr.read_to_end(&mut reply)).await;
        let n = taken.load(Ordering::SeqCst);
        assert!(
            read.is_ok(),
            "no reply and no close within 10 s; the server took {n} bytes"
        );
        assert!(
            n <= MAX + READ_BUFFER,
            "the server took {n} bytes, more than the limit {MAX} and one read buffer"
        );
        assert_eq!(reply.last(), Some(&b'\n'), "{reply:?}");
        let r = parse(&reply[..reply.len() - 1]);
        assert!(!r.ok);
        assert_eq!(r.message, "request longer than 65536 bytes");
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("connection task ended")
            .unwrap();
        assert!(
            writer.await.unwrap().is_none(),
            "the client's writes fail once the server closed"
        );
    }

    #[tokio::test]
    async fn a_request_of_exactly_the_limit_is_served_one_more_byte_is_not() {
        let (client, server) = tokio::io::duplex(1024 * 1024);
        let (sr, sw) = tokio::io::split(server);
        let served = tokio::spawn(handle(sr, sw, fake_agent(), Limits::DEFAULT));
        let (cr, mut cw) = tokio::io::split(client);
        let mut cr = tokio::io::BufReader::new(cr);
        let json = br#"{"cmd":"status"}"#;
        let mut req = json.to_vec();
        req.resize(MAX, b' ');
        req.push(b'\n');
        cw.write_all(&req).await.unwrap();
        let mut line = Vec::new();
        cr.read_until(b'\n', &mut line).await.unwrap();
        let r = parse(&line);
        assert!(r.ok && r.message == "Status", "{r:?}");
        // Same connection, CRLF, then one byte over the limit.
        cw.write_all(b"{\"cmd\":\"standby\",\"group\":\"web\"}\r\n")
            .await
            .unwrap();
        line.clear();
        cr.read_until(b'\n', &mut line).await.unwrap();
        let r = parse(&line);
        assert!(r.ok && r.message.contains("web"), "{r:?}");
        let mut req = json.to_vec();
        req.resize(MAX + 1, b' ');
        req.push(b'\n');
        cw.write_all(&req).await.unwrap();
        line.clear();
        cr.read_until(b'\n', &mut line).await.unwrap();
        let r = parse(&line);
        assert!(
            !r.ok && r.message == "request longer than 65536 bytes",
            "{r:?}"
        );
        line.clear();
        assert_eq!(cr.read_until(b'\n', &mut line).await.unwrap(), 0, "closed");
        served.await.unwrap();
    }

    #[tokio::test]
    async fn read_request_never_holds_more_than_the_limit() {
        let input = vec![b'x'; 1024 * 1024];
        let mut r = tokio::io::BufReader::with_capacity(READ_BUFFER, &input[..]);
        let mut line = Vec::new();
        let got = read_request(&mut r, &mut line, 10_000).await.unwrap();
        assert_eq!(got, ReadRequest::TooLong);
        assert!(line.len() <= 10_000, "{}", line.len());
        assert!(line.capacity() <= 10_000, "capacity {}", line.capacity());
        // A last line without a newline still counts; then the end.
        let mut r = tokio::io::BufReader::new(&b"a\nbc"[..]);
        assert_eq!(
            read_request(&mut r, &mut line, 10).await.unwrap(),
            ReadRequest::Line
        );
        assert_eq!(line, b"a");
        assert_eq!(
            read_request(&mut r, &mut line, 10).await.unwrap(),
            ReadRequest::Line
        );
        assert_eq!(line, b"bc");
        assert_eq!(
            read_request(&mut r, &mut line, 10).await.unwrap(),
            ReadRequest::Closed
        );
    }

    /// Over a real socket, as the report's client did it: the reply comes,
    /// the connection closes, the agent keeps serving.
    #[tokio::test]
    async fn oversize_request_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let _guard = serve(&path, fake_agent()).unwrap();
        let p = path.clone();
        let reply = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            // Fails (EPIPE) once the server closed.
            for _ in 0..256 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            let mut line = String::new();
            std::io::BufReader::new(&s).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        let r = parse(reply.trim_end().as_bytes());
        assert!(
            !r.ok && r.message == "request longer than 65536 bytes",
            "{r:?}"
        );
        let p = path.clone();
        let r =
            tokio::task::spawn_blocking(move || super::super::client::call(&p, &Request::Status))
                .await
                .unwrap()
                .unwrap();
        assert!(r.ok && r.message == "Status", "{r:?}");
    }

    fn short(idle_ms: u64, max_connections: usize) -> Limits {
        Limits {
            idle: Duration::from_millis(idle_ms),
            max_connections,
            ..Limits::DEFAULT
        }
    }

    #[tokio::test]
    async fn a_silent_or_slow_client_is_closed_after_the_idle_time() {
        // Nothing at all, half a request, or requests whose replies it
        // never reads (a 16-byte pipe: the reply cannot be written).
        for (sent, pipe) in [
            (&b""[..], 1024),
            (&b"{\"cmd\""[..], 1024),
            (&b"{\"cmd\":\"status\"}\n"[..], 16),
        ] {
            let (client, server) = tokio::io::duplex(pipe);
            let (sr, sw) = tokio::io::split(server);
            let served = tokio::spawn(handle(sr, sw, fake_agent(), short(200, 1)));
            let (_cr, mut cw) = tokio::io::split(client);
            cw.write_all(sent).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), served)
                .await
                .unwrap_or_else(|_| panic!("still serving after {sent:?}"))
                .unwrap();
        }
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let _guard = serve_with(&path, fake_agent(), short(60_000, 2)).unwrap();
        let p = path.clone();
        let (refused, served) = tokio::task::spawn_blocking(move || {
            let idle: Vec<_> = (0..2)
                .map(|_| std::os::unix::net::UnixStream::connect(&p).unwrap())
                .collect();
            let s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut refused = String::new();
            let mut r = std::io::BufReader::new(&s);
            r.read_line(&mut refused).unwrap();
            let mut rest = String::new();
            assert_eq!(r.read_line(&mut rest).unwrap(), 0, "then closed: {rest:?}");
            // A slot comes free when an idle client leaves.
            drop(idle);
            let t0 = std::time::Instant::now();
            let served = loop {
                match super::super::client::call(&p, &Request::Status) {
                    Ok(r) if r.ok => break r,
                    other => assert!(
                        t0.elapsed() < Duration::from_secs(5),
                        "never served again: {other:?}"
                    ),
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            (refused, served)
        })
        .await
        .unwrap();
        let r = parse(refused.trim_end().as_bytes());
        assert!(
            !r.ok && r.message == "too many control connections (at most 2)",
            "{r:?}"
        );
        assert_eq!(served.message, "Status");
    }
}
