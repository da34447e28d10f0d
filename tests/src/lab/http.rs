//! A real service and its clients: an HTTP server on every node (port 80,
//! every address, so whichever node holds a VIP serves it, answering with
//! its node name), and in the client namespace a client opening a new TCP
//! connection for one request every millisecond to each VIP. What the
//! campaign counts: requests that failed (refused, reset, timed out, an
//! answer that is not a node's), and who answered the others.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hb_agent::sender::clock;

use super::topology::{NODES, VIPS};
use crate::netns::Netns;

pub const PORT: u16 = 80;
/// How often the client opens a connection to each VIP.
pub const REQUEST_EVERY: Duration = Duration::from_millis(1);
/// A request not answered within this has failed (a VIP nobody serves
/// leaves the SYN unanswered; the kernel would retry for a minute).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(200);

/// The HTTP servers, one thread per node, each serving every connection
/// concurrently (one stalled client must not hold up the others, as with
/// any real server).
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    pub fn start(nodes: &[Netns]) -> anyhow::Result<Servers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (i, ns) in nodes.iter().enumerate() {
            let path = ns.path();
            let stop = stop.clone();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            threads.push(std::thread::spawn(move || {
                let l = crate::netns::enter(&path).and_then(|()| {
                    let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT))?;
                    l.set_nonblocking(true)?;
                    Ok(l)
                });
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from);
                let (l, rt) = match (l, rt) {
                    (Ok(l), Ok(rt)) => {
                        let _ = ready_tx.send(Ok(()));
                        (l, rt)
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(serve(l, NODES[i].name, stop));
            }));
            ready_rx
                .recv()
                .map_err(|_| anyhow::anyhow!("HTTP server thread of {} died", NODES[i].name))??;
        }
        Ok(Servers { stop, threads })
    }
}

/// Answers each connection with `name` and closes it (HTTP/1.0).
async fn serve(l: TcpListener, name: &'static str, stop: Arc<AtomicBool>) {
    let Ok(l) = tokio::net::TcpListener::from_std(l) else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(20), l.accept()).await;
        let Ok(Ok((c, _))) = accepted else { continue };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(c, name)).await;
        });
    }
}

async fn answer(mut c: tokio::net::TcpStream, name: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut req = [0u8; 512];
    // The request line and headers fit one read here.
    if c.read(&mut req).await? > 0 {
        let body = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{name}",
            name.len()
        );
        c.write_all(body.as_bytes()).await?;
        c.shutdown().await?;
    }
    Ok(())
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One request: when it was started (CLOCK_MONOTONIC ns), which VIP, and
/// the node that answered (None: it failed).
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub at: u64,
    pub vip: usize,
    pub node: Option<usize>,
    /// Why it failed (None: answered).
    pub error: Option<&'static str>,
}

/// The client: a thread in the client namespace running the requests.
pub struct Client {
    stop: Arc<AtomicBool>,
    pub done: Arc<Mutex<Vec<Request>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    pub fn start(gw: &Netns) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(Vec::new()));
        let (s, d) = (stop.clone(), done.clone());
        let path = gw.path();
        let thread = std::thread::spawn(move || {
            crate::netns::enter(&path).expect("enter client namespace");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime");
            rt.block_on(run_client(s, d));
        });
        Client {
            stop,
            done,
            thread: Some(thread),
        }
    }

    /// Per VIP: requests started in [from, to] and how many of them failed.
    pub fn failed(&self, from: u64, to: u64) -> [(usize, usize); 2] {
        let done = self.done.lock().unwrap();
        let mut out = [(0, 0); 2];
        for r in done.iter().filter(|r| r.at >= from && r.at <= to) {
            out[r.vip].0 += 1;
            out[r.vip].1 += usize::from(r.node.is_none());
        }
        out
    }

    /// Per VIP: which nodes answered requests started in [from, to].
    pub fn answered_by(&self, from: u64, to: u64) -> [[usize; 3]; 2] {
        let done = self.done.lock().unwrap();
        let mut out = [[0; 3]; 2];
        for r in done.iter().filter(|r| r.at >= from && r.at <= to) {
            if let Some(n) = r.node {
                out[r.vip][n] += 1;
            }
        }
        out
    }

    /// Per VIP, the stretches of failed requests started in [from, to]
    /// (failures under 5 ms apart joined): (vip, first, last, count, the
    /// first one's reason).
    pub fn failure_runs(&self, from: u64, to: u64) -> Vec<(usize, u64, u64, usize, &'static str)> {
        let done = self.done.lock().unwrap();
        let mut runs: Vec<(usize, u64, u64, usize, &'static str)> = Vec::new();
        for vip in 0..2 {
            let mut fails: Vec<(u64, &'static str)> = done
                .iter()
                .filter(|r| r.vip == vip && r.node.is_none() && r.at >= from && r.at <= to)
                .map(|r| (r.at, r.error.unwrap_or("?")))
                .collect();
            fails.sort_unstable();
            for (t, why) in fails {
                match runs.last_mut() {
                    Some(r) if r.0 == vip && t - r.2 < 5_000_000 => {
                        r.2 = t;
                        r.3 += 1;
                    }
                    _ => runs.push((vip, t, t, 1, why)),
                }
            }
        }
        runs
    }

    /// Forgets requests started before `t` (a long campaign's memory).
    pub fn forget_before(&self, t: u64) {
        self.done.lock().unwrap().retain(|r| r.at >= t);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run_client(stop: Arc<AtomicBool>, done: Arc<Mutex<Vec<Request>>>) {
    let vips: Vec<SocketAddr> = VIPS
        .iter()
        .map(|v| SocketAddrV4::new(v.parse().unwrap(), PORT).into())
        .collect();
    let mut tick = tokio::time::interval(REQUEST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut inflight = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tick.tick() => {
                for (vip, addr) in vips.iter().enumerate() {
                    let (addr, done) = (*addr, done.clone());
                    inflight.spawn(async move {
                        let at = clock::now_ns();
                        let stage = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
                        let r = tokio::time::timeout(REQUEST_TIMEOUT, request(addr, &stage)).await;
                        let (node, error) = match r {
                            Ok(Ok(n)) => (Some(n), None),
                            Ok(Err(e)) => (None, Some(e)),
                            Err(_) => (None, Some(STAGES[usize::from(stage.load(Ordering::Relaxed))])),
                        };
                        done.lock().unwrap().push(Request { at, vip, node, error });
                    });
                }
            }
            Some(_) = inflight.join_next() => {}
        }
    }
    inflight.shutdown().await;
}

/// What a request timed out in (its stage when the timeout struck).
const STAGES: [&str; 3] = ["connect timed out", "no answer in time", "answer cut short"];

/// One connection, one request; the node named in the answer, or why not.
async fn request(
    addr: SocketAddr,
    stage: &std::sync::atomic::AtomicU8,
) -> Result<usize, &'static str> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = tokio::net::TcpSocket::new_v4().map_err(|_| "socket")?;
    // Closed with a reset: no TIME_WAIT, so a million requests do not run
    // the client out of ports. (Deprecated for blocking on drop, which a
    // zero linger does not: the reset goes out at once.)
    #[allow(deprecated)]
    s.set_linger(Some(Duration::ZERO)).map_err(|_| "linger")?;
    let mut c = s.connect(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused",
        _ => "connect failed",
    })?;
    stage.store(1, Ordering::Relaxed);
    c.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        .await
        .map_err(|_| "request not sent")?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        let n = c
            .read(&mut chunk)
            .await
            .map_err(|_| "reset while reading")?;
        if n == 0 {
            break;
        }
        stage.store(2, Ordering::Relaxed);
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.0 200") {
        return Err("not a 200 answer");
    }
    let body = text.split("\r\n\r\n").nth(1).ok_or("no body")?;
    NODES
        .iter()
        .position(|n| n.name == body)
        .ok_or("answer from no node")
}
