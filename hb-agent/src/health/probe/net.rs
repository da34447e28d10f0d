//! TCP connect and HTTP/1.1 GET checks. Every socket is closed with linger
//! 0 (an RST): thousands of checks a second would otherwise leave as many
//! TIME_WAIT entries behind, on our side and the service's.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hb_core::health::{HttpTarget, OUTPUT_LIMIT};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use super::{Outcome, ms, timed_out};

/// Most bytes of an answer's status line and headers hb reads.
const HEAD_LIMIT: usize = 16 * 1024;

/// Ok iff a connection to `addr` is established within `timeout`.
pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Outcome {
    let t0 = Instant::now();
    match tokio::time::timeout(timeout, connect(addr)).await {
        Err(_) => Outcome::fail(timed_out(timeout)),
        Ok(Err(e)) => Outcome::fail(connect_error(&e)),
        Ok(Ok(_stream)) => Outcome::pass(format!("connected in {}", ms(t0.elapsed()))),
    }
}

/// `GET t.path` from `t.addr`; ok iff the status is `t.status` and the
/// body (its first `OUTPUT_LIMIT` bytes) holds `t.body`, all within
/// `timeout`.
pub async fn http(t: &HttpTarget, timeout: Duration) -> Outcome {
    let t0 = Instant::now();
    match tokio::time::timeout(timeout, get(t)).await {
        Err(_) => Outcome::fail(timed_out(timeout)),
        Ok(Err(detail)) => Outcome::fail(detail),
        Ok(Ok(status)) => Outcome::pass(format!("HTTP {status} in {}", ms(t0.elapsed()))),
    }
}

/// A connected stream whose close is an RST.
async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // SO_LINGER 0 never blocks on close (it aborts), so it is safe on the
    // loop's thread, unlike the non-zero linger tokio warns about.
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
    s.set_nodelay(true)?;
    s.connect(addr).await
}

fn connect_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => format!("connect: {e}"),
    }
}

/// The status when it passes, else why not.
async fn get(t: &HttpTarget) -> Result<u16, String> {
    let mut s = connect(t.addr).await.map_err(|e| connect_error(&e))?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hb-check\r\nConnection: close\r\n\r\n",
        t.path, t.host
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| io_error("sending the request", &e))?;

    // Status line (and, for a body check, the headers).
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break Some(i + 4);
        }
        if let Some(i) = find(&buf, b"\n\n") {
            break Some(i + 2); // bare newlines, as some tiny servers send
        }
        if t.body.is_none() && find(&buf, b"\n").is_some() {
            break None; // the status line is all we need
        }
        if buf.len() >= HEAD_LIMIT {
            break None;
        }
        if read_some(&mut s, &mut buf, HEAD_LIMIT).await? == 0 {
            if buf.is_empty() {
                return Err("connection closed without an answer".into());
            }
            break None;
        }
    };
    let status = status(&buf).ok_or("bad status line")?;
    if status != t.status {
        return Err(format!("HTTP {status} (expected {})", t.status));
    }
    let Some(want) = &t.body else {
        return Ok(status);
    };
    let Some(head_end) = head_end else {
        return Err(if buf.len() >= HEAD_LIMIT {
            "headers too long"
        } else {
            "no body"
        }
        .into());
    };

    // The body: its first OUTPUT_LIMIT bytes (fewer with a Content-Length),
    // searched raw (a chunked body's framing does not split a short needle
    // in practice, and the limit bounds the work either way).
    let limit = content_length(&buf[..head_end]).map_or(OUTPUT_LIMIT, |n| n.min(OUTPUT_LIMIT));
    let end = head_end + limit;
    loop {
        let body = &buf[head_end..buf.len().min(end)];
        if find(body, want.as_bytes()).is_some() {
            return Ok(status);
        }
        if buf.len() >= end || read_some(&mut s, &mut buf, end).await? == 0 {
            return Err(format!("body lacks {:?}", want));
        }
    }
}

/// Reads once into `buf`, never past `cap` bytes in all; 0 at the end.
async fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, cap: usize) -> Result<usize, String> {
    let room = cap.saturating_sub(buf.len()).min(8192);
    let old = buf.len();
    buf.resize(old + room, 0);
    let r = s.read(&mut buf[old..]).await;
    let n = *r.as_ref().unwrap_or(&0);
    buf.truncate(old + n);
    r.map_err(|e| io_error("reading the answer", &e))
}

fn io_error(what: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => format!("{what}: {e}"),
    }
}

/// `HTTP/1.x NNN ...` -> NNN.
fn status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut words = line.split(' ');
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = words.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = String::from_utf8_lossy(head);
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use hb_testkit::netns::Netns;
    use tokio::net::TcpListener;

    use super::*;
    use crate::health::probe::in_netns;

    fn netns() -> Netns {
        Netns::new("probe").unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A tiny HTTP server on 127.0.0.1 of the namespace, one answer per
    /// path; it keeps the requests it got.
    async fn server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut b = [0u8; 1024];
                    while find(&req, b"\r\n\r\n").is_none() {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&b[..n]),
                        }
                    }
                    let req = String::from_utf8_lossy(&req).into_owned();
                    let path = req.split(' ').nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(req);
                    let big = format!("{}needle", "x".repeat(100_000));
                    let answer = match path.as_str() {
                        "/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall is ok".into(),
                        "/down" => "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".into(),
                        "/big" => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{big}", big.len()),
                        "/short" => "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcok".into(),
                        "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n2\r\nok\r\n0\r\n\r\n".into(),
                        "/garbage" => "SSH-2.0-OpenSSH\r\n\r\n".into(),
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            "HTTP/1.1 200 OK\r\n\r\n".into()
                        }
                        _ => return, // closes without an answer
                    };
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (addr, seen)
    }

    fn target(addr: SocketAddr, path: &str, status: u16, body: Option<&str>) -> HttpTarget {
        HttpTarget::parse(
            &format!("http://{addr}{path}"),
            status,
            body.map(String::from),
        )
        .unwrap()
    }

    fn time_wait(ns: &Netns) -> usize {
        let out = ns.exec(&["ss", "-Htan", "state", "time-wait"]).unwrap();
        out.lines().count()
    }

    #[test]
    fn tcp_connects_refuses_times_out_and_leaves_no_time_wait() {
        let ns = netns();
        // A veth pair where nobody has 10.253.0.2: its ARP requests go
        // unanswered, so a connect to it hangs.
        ns.ip("link add v0 type veth peer name v1");
        ns.ip("addr add 10.253.0.1/24 dev v0");
        ns.ip("link set v0 up");
        ns.ip("link set v1 up");
        let per_probe = in_netns(&ns, || async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let o = tcp(addr, Duration::from_millis(500)).await;
            assert!(o.ok && o.detail.starts_with("connected in "), "{o:?}");

            let t0 = Instant::now();
            let n = 1000;
            for _ in 0..n {
                let o = tcp(addr, Duration::from_millis(500)).await;
                assert!(o.ok, "{o:?}");
                // Accept and drop: the server side closes too.
                drop(l.accept().await.unwrap());
            }
            let per_probe = t0.elapsed() / n;

            drop(l);
            let o = tcp(addr, Duration::from_millis(500)).await;
            assert_eq!(o, Outcome::fail("connection refused"));

            let t0 = Instant::now();
            let o = tcp("10.253.0.2:80".parse().unwrap(), Duration::from_millis(50)).await;
            let took = t0.elapsed();
            assert_eq!(o, Outcome::fail("timed out after 50 ms"));
            assert!(took < Duration::from_millis(150), "{took:?}");
            per_probe
        });
        assert_eq!(time_wait(&ns), 0, "linger 0 leaves no TIME_WAIT");
        println!("tcp probe: {per_probe:?} per probe (connect + RST, loopback)");
    }

    #[test]
    fn http_checks_status_body_and_time() {
        let ns = netns();
        let per_probe = in_netns(&ns, || async {
            let (addr, seen) = server().await;
            let t = Duration::from_millis(500);

            let o = http(&target(addr, "/ok", 200, Some("is ok")), t).await;
            assert!(o.ok && o.detail.starts_with("HTTP 200 in "), "{o:?}");
            let req = seen.lock().unwrap()[0].clone();
            assert_eq!(
                req,
                format!(
                    "GET /ok HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: hb-check\r\nConnection: close\r\n\r\n"
                )
            );

            let cases = [
                ("/ok", 200, None, Ok(())),
                ("/ok", 200, Some("nope"), Err("body lacks \"nope\"")),
                ("/down", 200, None, Err("HTTP 503 (expected 200)")),
                ("/down", 503, None, Ok(())),
                ("/chunked", 200, Some("ok"), Ok(())),
                ("/short", 200, Some("ok"), Err("body lacks \"ok\"")),
                ("/big", 200, Some("needle"), Err("body lacks \"needle\"")),
                ("/big", 200, Some("xxx"), Ok(())),
                ("/garbage", 200, None, Err("bad status line")),
                (
                    "/nothing",
                    200,
                    None,
                    Err("connection closed without an answer"),
                ),
            ];
            for (path, status, body, want) in cases {
                let o = http(&target(addr, path, status, body), t).await;
                match want {
                    Ok(()) => assert!(o.ok, "{path}: {o:?}"),
                    Err(d) => assert_eq!(o, Outcome::fail(d), "{path}"),
                }
            }

            let t0 = Instant::now();
            let o = http(&target(addr, "/slow", 200, None), Duration::from_millis(10)).await;
            assert_eq!(o, Outcome::fail("timed out after 10 ms"));
            assert!(t0.elapsed() < Duration::from_millis(100));

            let mut free = addr;
            free.set_port(1);
            let o = http(&target(free, "/", 200, None), t).await;
            assert_eq!(o, Outcome::fail("connection refused"));

            let n = 500;
            let t0 = Instant::now();
            for _ in 0..n {
                assert!(http(&target(addr, "/ok", 200, Some("ok")), t).await.ok);
            }
            t0.elapsed() / n
        });
        assert_eq!(time_wait(&ns), 0, "linger 0 leaves no TIME_WAIT");
        println!(
            "http probe: {per_probe:?} per probe (GET + body check, loopback, server on the same thread)"
        );
    }
}
