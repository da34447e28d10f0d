//! The service health checks watch: `hb-service` (src/bin/hb-service.rs),
//! a process of its own on each node, in the node's network namespace,
//! answering HTTP on port 80 with its node's name; and a client in the
//! gateway namespace requesting vip1 from it continuously (`Poller`), so
//! an outage is measured as a user sees it: from the service's death to
//! the first answer from the standby's service.
//!
//! All the lab's nodes share one PID namespace, so each node's service has
//! a name of its own (`hb-service-n0`, ...: a link to the binary, as comm
//! is the executable's file name) and a check by name finds only its own
//! node's.

use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hb_agent::sender::clock;
use hb_testkit::process::Process;

use super::topology::{NODES, VIPS};
use crate::netns::Netns;

pub const PORT: u16 = 80;

/// How long a slow service waits before each answer (`hb-service --slow-ms`).
pub const SLOW_MS: u64 = 50;

/// The name of node `i`'s service process (comm, and argv[0]'s basename).
pub fn process_name(i: usize) -> String {
    format!("hb-service-n{i}")
}

/// The `hb-service` binary beside the running test or program (built by
/// `cargo xtask lab|bench|chaos`, and by `cargo test` with the tests).
pub fn service_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("exe dir")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("hb-service");
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p hb-tests --bin hb-service)",
            bin.display()
        );
    }
    Ok(bin)
}

/// The services of the lab's nodes.
pub struct Services {
    // Field order is drop order: the client before the processes.
    pub poller: Poller,
    procs: [Option<Process>; 3],
    /// Per node: the link `hb-service-nI` and the namespace.
    links: Vec<PathBuf>,
    netns: Vec<String>,
    dir: PathBuf,
}

impl Services {
    /// Links per node in `dir`, and the client polling vip1 from `gw`
    /// every `every`; no service runs yet (`start`).
    pub fn new(dir: &Path, nodes: &[Netns], gw: &Netns, every: Duration) -> Result<Services> {
        let bin = service_bin()?;
        let dir = dir.join("services");
        std::fs::create_dir_all(&dir)?;
        let mut links = Vec::new();
        for i in 0..nodes.len() {
            let link = dir.join(process_name(i));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&bin, &link)
                .with_context(|| format!("linking {}", link.display()))?;
            links.push(link);
        }
        Ok(Services {
            poller: Poller::start(gw, every)?,
            procs: [None, None, None],
            links,
            netns: nodes.iter().map(|n| n.name.clone()).collect(),
            dir,
        })
    }

    fn pidfile(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.pid", process_name(i)))
    }

    /// Starts node `i`'s service and waits until it listens.
    pub fn start(&mut self, i: usize) -> Result<()> {
        if self.running(i) {
            bail!("{}'s service already runs", NODES[i].name);
        }
        let pidfile = self.pidfile(i);
        let _ = std::fs::remove_file(&pidfile);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", process_name(i))))?;
        // `ip netns exec` execs the program itself: the child is the service.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns[i]])
            .arg(&self.links[i])
            .arg(NODES[i].name)
            .args(["--port", &PORT.to_string()])
            .args(["--slow-ms", &SLOW_MS.to_string()])
            .arg("--pidfile")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting hb-service")?;
        let mut p = Process::new(child);
        let t0 = Instant::now();
        loop {
            let named = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            if named == Some(p.pid()) {
                break;
            }
            if !p.running() || t0.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{}'s service did not come up (log in {})",
                    NODES[i].name,
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.procs[i] = Some(p);
        Ok(())
    }

    /// Starts the services of `nodes`.
    pub fn start_on(&mut self, nodes: &[usize]) -> Result<()> {
        nodes.iter().try_for_each(|&i| self.start(i))
    }

    pub fn running(&mut self, i: usize) -> bool {
        self.procs[i].as_mut().is_some_and(|p| p.running())
    }

    pub fn pid(&self, i: usize) -> Option<i32> {
        self.procs[i].as_ref().map(|p| p.pid())
    }

    /// kill -9 of node `i`'s service, as a crash; the time just before the
    /// signal (CLOCK_MONOTONIC ns).
    pub fn kill(&mut self, i: usize) -> Result<u64> {
        let mut p = self.procs[i]
            .take()
            .with_context(|| format!("{}'s service is not running", NODES[i].name))?;
        let t = clock::now_ns();
        p.kill();
        Ok(t)
    }

    /// SIGTERM and wait (an operator's stop).
    pub fn stop(&mut self, i: usize) -> Result<()> {
        match self.procs[i].take() {
            Some(p) => p.stop(Duration::from_secs(5)),
            None => Ok(()),
        }
    }

    /// Slow mode (every answer `SLOW_MS` late) on or off.
    pub fn set_slow(&self, i: usize, on: bool) -> Result<()> {
        let p = self.procs[i]
            .as_ref()
            .with_context(|| format!("{}'s service is not running", NODES[i].name))?;
        p.signal(if on { libc::SIGUSR1 } else { libc::SIGUSR2 });
        Ok(())
    }
}

/// One request of the poller: when it started and ended (CLOCK_MONOTONIC
/// ns), and the node whose service answered, or why it failed.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub sent: u64,
    pub done: u64,
    pub node: Option<usize>,
    pub error: Option<&'static str>,
}

/// The client: one thread in the gateway namespace opening a new TCP
/// connection to vip1:80 every `every` for one `GET /` (non-blocking, many
/// in flight: a request whose SYN went nowhere while the VIP moved must not
/// hold up the next), each given `timeout`. Real-time (as the lab's
/// prober), so the agents' real-time threads do not delay its requests or
/// the time stamps of their answers.
pub struct Poller {
    pub every: Duration,
    stop: Arc<AtomicBool>,
    pub done: Arc<Mutex<Vec<Answer>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A request not answered within this has failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(100);

/// SCHED_FIFO priority of the client: the lab's prober's.
const POLLER_PRIORITY: i32 = 60;

impl Poller {
    pub fn start(gw: &Netns, every: Duration) -> Result<Poller> {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(Vec::new()));
        let (s, d) = (stop.clone(), done.clone());
        let path = gw.path();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            if let Err(e) = crate::netns::enter(&path) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let _ = clock::make_realtime(POLLER_PRIORITY);
            let _ = ready_tx.send(Ok(()));
            poll_loop(&s, &d, every);
        });
        ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the service client's thread died"))??;
        Ok(Poller {
            every,
            stop,
            done,
            thread: Some(thread),
        })
    }

    /// The first answer from `node`'s service among requests that ended
    /// at or after `from`: when it arrived.
    pub fn first_answer_from(&self, node: usize, from: u64) -> Option<u64> {
        let d = self.done.lock().unwrap();
        d[ended_from(&d, from)..]
            .iter()
            .find(|a| a.node == Some(node))
            .map(|a| a.done)
    }

    /// Whether `node` answered a request that ended in the last `window`.
    pub fn answering(&self, node: usize, window: Duration) -> bool {
        let since = clock::now_ns().saturating_sub(window.as_nanos() as u64);
        self.first_answer_from(node, since).is_some()
    }

    /// Answers of requests started in [from, to], in the order they were
    /// sent (a slow node's late answers to requests sent before the VIP
    /// moved are no move back).
    fn answers(&self, from: u64, to: u64) -> Vec<Answer> {
        let d = self.done.lock().unwrap();
        let mut v: Vec<Answer> = d[ended_from(&d, from)..]
            .iter()
            .filter(|a| a.sent >= from && a.sent <= to)
            .copied()
            .collect();
        v.sort_by_key(|a| a.sent);
        v
    }

    /// How often the answering node changed among requests started in
    /// [from, to] (a failover and its failback: 2).
    pub fn switches(&self, from: u64, to: u64) -> usize {
        let nodes: Vec<usize> = self
            .answers(from, to)
            .iter()
            .filter_map(|a| a.node)
            .collect();
        nodes.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// Requests started in [from, to]: (all, failed, answered per node).
    pub fn counts(&self, from: u64, to: u64) -> (usize, usize, [usize; 3]) {
        let a = self.answers(from, to);
        let mut by = [0; 3];
        for n in a.iter().filter_map(|a| a.node) {
            by[n] += 1;
        }
        (a.len(), a.iter().filter(|a| a.node.is_none()).count(), by)
    }

    /// Longest time in [from, to] without a successful answer, ns.
    pub fn outage(&self, from: u64, to: u64) -> u64 {
        let d = self.done.lock().unwrap();
        let mut t: Vec<u64> = d[ended_from(&d, from)..]
            .iter()
            .filter(|a| a.node.is_some() && a.done <= to)
            .map(|a| a.done)
            .collect();
        t.sort_unstable();
        let mut last = from;
        let mut worst = 0;
        for x in t {
            worst = worst.max(x - last);
            last = x;
        }
        worst.max(to - last)
    }

    /// The reasons requests started in [from, to] failed, with counts.
    pub fn failure_reasons(&self, from: u64, to: u64) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for e in self.answers(from, to).iter().filter_map(|a| a.error) {
            match out.iter_mut().find(|(r, _)| *r == e) {
                Some(x) => x.1 += 1,
                None => out.push((e, 1)),
            }
        }
        out
    }

    /// Forgets requests that ended before `t` (a long run's memory).
    pub fn forget_before(&self, t: u64) {
        self.done.lock().unwrap().retain(|a| a.done >= t);
    }
}

/// The first of `done` (in the order requests ended, as the client
/// appends them) that ended at or after `t`.
fn ended_from(done: &[Answer], t: u64) -> usize {
    done.partition_point(|a| a.done < t)
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A request in flight.
struct Conn {
    sock: socket2::Socket,
    sent: u64,
    /// The request is written; reading the answer.
    reading: bool,
    buf: Vec<u8>,
}

const REQUEST: &[u8] = b"GET / HTTP/1.0\r\nHost: vip1\r\n\r\n";

fn poll_loop(stop: &AtomicBool, done: &Mutex<Vec<Answer>>, every: Duration) {
    let addr: std::net::SocketAddr =
        std::net::SocketAddrV4::new(VIPS[0].parse().unwrap(), PORT).into();
    let addr: socket2::SockAddr = addr.into();
    let every = every.as_nanos() as u64;
    let timeout = REQUEST_TIMEOUT.as_nanos() as u64;
    let mut next = clock::now_ns();
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut finished: Vec<Answer> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = clock::now_ns();
        if now >= next {
            // Ticks missed (a stalled machine) are skipped, not made up.
            next += every;
            if next <= now {
                next = now + every;
            }
            match open(&addr) {
                Ok(sock) => conns.push(Conn {
                    sock,
                    sent: now,
                    reading: false,
                    buf: Vec::new(),
                }),
                Err(e) => finished.push(Answer {
                    sent: now,
                    done: now,
                    node: None,
                    error: Some(e),
                }),
            }
        }
        fds.clear();
        fds.extend(conns.iter().map(|c| libc::pollfd {
            fd: c.sock.as_raw_fd(),
            events: if c.reading {
                libc::POLLIN
            } else {
                libc::POLLOUT
            },
            revents: 0,
        }));
        let wait = next.saturating_sub(clock::now_ns());
        let ts = libc::timespec {
            tv_sec: (wait / 1_000_000_000) as libc::time_t,
            tv_nsec: (wait % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: fds is a valid array of its length; no signal mask.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        let now = clock::now_ns();
        let mut k = 0;
        let mut i = 0;
        while i < conns.len() {
            let rev = if n > 0 { fds[k].revents } else { 0 };
            k += 1;
            let outcome = if rev != 0 {
                step(&mut conns[i], rev)
            } else if now - conns[i].sent > timeout {
                Some(Err(if conns[i].reading {
                    "no answer in time"
                } else {
                    "connect timed out"
                }))
            } else {
                None
            };
            match outcome {
                Some(r) => {
                    // The last request moves to `i`, its pollfd (with its
                    // revents) to the same place: both stay in step.
                    let c = conns.swap_remove(i);
                    fds.swap_remove(k - 1);
                    k -= 1;
                    finished.push(Answer {
                        sent: c.sent,
                        done: now,
                        node: r.ok(),
                        error: r.err(),
                    });
                }
                None => i += 1,
            }
        }
        if !finished.is_empty() {
            done.lock().unwrap().append(&mut finished);
        }
    }
}

/// A non-blocking socket connecting to `addr`, closed with a reset (no
/// TIME_WAIT: thousands of requests a second must not run out of ports).
fn open(addr: &socket2::SockAddr) -> Result<socket2::Socket, &'static str> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None).map_err(|_| "socket")?;
    s.set_linger(Some(Duration::ZERO)).map_err(|_| "linger")?;
    let _ = s.set_nodelay(true);
    match s.connect(addr) {
        Ok(()) => Ok(s),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err("connection refused"),
        Err(_) => Err("connect failed"),
    }
}

/// Advances a request on `rev`; its end (the node that answered, or why
/// not) when it ended.
fn step(c: &mut Conn, rev: libc::c_short) -> Option<Result<usize, &'static str>> {
    use std::io::{Read as _, Write as _};
    if !c.reading {
        if let Ok(Some(e)) | Err(e) = c.sock.take_error() {
            return Some(Err(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused",
                std::io::ErrorKind::ConnectionReset => "reset",
                _ => "connect failed",
            }));
        }
        if rev & libc::POLLOUT == 0 {
            return None;
        }
        return match (&c.sock).write(REQUEST) {
            Ok(n) if n == REQUEST.len() => {
                c.reading = true;
                None
            }
            _ => Some(Err("request not sent")),
        };
    }
    let mut chunk = [0u8; 512];
    loop {
        match (&c.sock).read(&mut chunk) {
            Ok(0) => return Some(parse(&c.buf)),
            Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(_) => return Some(Err("reset while reading")),
        }
    }
}

/// The node named in an answer.
fn parse(buf: &[u8]) -> Result<usize, &'static str> {
    let text = String::from_utf8_lossy(buf);
    if !text.starts_with("HTTP/1.0 200") {
        return Err("not a 200 answer");
    }
    let body = text.split("\r\n\r\n").nth(1).ok_or("no body")?;
    NODES
        .iter()
        .position(|n| n.name == body)
        .ok_or("answer from no node")
}

/// A `[[group.check]]` body (keys only): node `i`'s process check of its
/// service, by name.
pub fn process_check(i: usize, hold_down: &str) -> String {
    format!(
        "type = \"process\"\nprocess = \"{}\"\ninterval = \"100ms\"\nrise = 1\nfall = 1\nhold_down = \"{hold_down}\"\nwhen = \"always\"\non_fail = \"failover\"\n",
        process_name(i)
    )
}

/// A `[[group.check]]` body: an HTTP check of the node's own service.
pub fn http_check(interval: &str, timeout: &str, hold_down: &str) -> String {
    format!(
        "type = \"http\"\nurl = \"http://127.0.0.1:{PORT}/\"\nstatus = 200\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\nrise = 1\nfall = 1\nhold_down = \"{hold_down}\"\nwhen = \"always\"\non_fail = \"failover\"\n"
    )
}
