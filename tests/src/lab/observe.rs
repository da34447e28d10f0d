//! What the lab measures: a client in the gateway namespace probing both
//! VIPs with ICMP echo every 0.5 ms (the benchmark: 0.1 ms) (outage = longest gap between
//! answers), and a watcher per node recording, from its netlink view, when
//! it holds each VIP (two holders at once = dual ownership).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hb_agent::resources::netlink::Netlink;
use hb_agent::sender::clock;
use socket2::{Domain, Protocol, Socket, Type};

use super::topology::{NODES, VIPS};
use crate::netns::Netns;

/// The lab's probe interval: fine enough for its tables at 10 ms timings.
pub const PROBE_INTERVAL: Duration = Duration::from_micros(500);
/// The failover benchmark's: sub-millisecond outages need a finer probe
/// (an outage is measured no shorter than one interval).
pub const FAST_PROBE_INTERVAL: Duration = Duration::from_micros(100);
/// SCHED_FIFO priority of the probing thread: above every contender's.
const PROBER_PRIORITY: i32 = 60;

/// Answers per VIP, in arrival order: CLOCK_MONOTONIC ns and the node
/// that answered (by the reply's source MAC, its eth0; `None` for any other
/// MAC).
#[derive(Default)]
pub struct Replies {
    pub at: [Vec<u64>; 2],
    pub from: [Vec<Option<usize>>; 2],
}

pub struct Prober {
    pub interval: Duration,
    stop: Arc<AtomicBool>,
    pub replies: Arc<Mutex<Replies>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// vip2 is probed every this many intervals (see `Prober::start`).
fn vip2_every(interval: Duration) -> u64 {
    (PROBE_INTERVAL.as_nanos() / interval.as_nanos().max(1)).max(1) as u64
}

/// Which lab node's eth0 has this MAC.
fn node_of_mac(mac: &[u8]) -> Option<usize> {
    NODES.iter().position(|n| {
        let m: Vec<u8> = n
            .mac
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap_or(0))
            .collect();
        m == mac
    })
}

/// A non-blocking packet socket seeing every IPv4 frame of the namespace,
/// so replies can be told apart by the node that sent them.
fn packet_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    // SAFETY: plain socket(2); the fd is owned from here on.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            (libc::ETH_P_IP as u16).to_be() as i32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2).
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

impl Prober {
    /// Probes both VIPs from `gw` every `interval`.
    pub fn start(gw: &Netns, interval: Duration) -> anyhow::Result<Prober> {
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(Mutex::new(Replies::default()));
        let (s2, r2) = (stop.clone(), replies.clone());
        let path = format!("/run/netns/{}", gw.name);
        let thread = std::thread::spawn(move || {
            use std::os::fd::AsRawFd as _;
            crate::netns::enter(&path).expect("enter gateway namespace");
            // The client stands for another machine: the agents' real-time
            // threads (hb's, keepalived's, Heartbeat's) must not delay its
            // probes or the time stamps of their answers.
            let _ = clock::make_realtime(PROBER_PRIORITY);
            let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
                .expect("raw ICMP socket");
            sock.set_nonblocking(true).unwrap();
            // Replies are read with their Ethernet header from here; the
            // ICMP socket's own copies are drained and dropped.
            let pkt = packet_socket().expect("packet socket");
            let ident = (std::process::id() as u16) ^ 0x5a5a;
            let vips: Vec<Ipv4Addr> = VIPS.iter().map(|v| v.parse().unwrap()).collect();
            let mut seq: u16 = 0;
            // Faster than the lab's interval, only vip1 (what the benchmark
            // measures) gets every probe; vip2 keeps the lab's rate, which
            // halves the probing load.
            let vip2_every = vip2_every(interval);
            let mut next = clock::now_ns();
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
            let mut frame = [0u8; 2048];
            while !s2.load(Ordering::Relaxed) {
                clock::sleep_until(next);
                next += interval.as_nanos() as u64;
                seq = seq.wrapping_add(1);
                for (i, v) in vips.iter().enumerate() {
                    if i > 0 && u64::from(seq) % vip2_every != 0 {
                        continue;
                    }
                    let mut p = [0u8; 16];
                    p[0] = 8;
                    p[4..6].copy_from_slice(&(ident.wrapping_add(i as u16)).to_be_bytes());
                    p[6..8].copy_from_slice(&seq.to_be_bytes());
                    let c = hb_agent::ping::checksum(&p);
                    p[2..4].copy_from_slice(&c.to_be_bytes());
                    let to: SocketAddr = SocketAddrV4::new(*v, 0).into();
                    let _ = sock.send_to(&p, &to.into());
                }
                while sock.recv_from(&mut buf).is_ok() {}
                loop {
                    // SAFETY: recv into a buffer we own, of its length.
                    let n = unsafe {
                        libc::recv(pkt.as_raw_fd(), frame.as_mut_ptr().cast(), frame.len(), 0)
                    };
                    if n <= 0 {
                        break;
                    }
                    let d = &frame[..n as usize];
                    if d.len() < 14 + 20 + 8 {
                        continue;
                    }
                    let ihl = (d[14] & 0x0f) as usize * 4;
                    let icmp = 14 + ihl;
                    if d[14 + 9] != 1 || d.len() < icmp + 8 || d[icmp] != 0 {
                        continue;
                    }
                    let id = u16::from_be_bytes([d[icmp + 4], d[icmp + 5]]);
                    let vip = id.wrapping_sub(ident);
                    if vip < 2 {
                        let mut r = r2.lock().unwrap();
                        r.at[vip as usize].push(clock::now_ns());
                        r.from[vip as usize].push(node_of_mac(&d[6..12]));
                    }
                }
            }
        });
        Ok(Prober {
            interval,
            stop,
            replies,
            thread: Some(thread),
        })
    }

    /// Longest gap between answers from `vip` in [from, to], in ns (the
    /// whole window if it never answered).
    pub fn outage(&self, vip: usize, from: u64, to: u64) -> u64 {
        let r = self.replies.lock().unwrap();
        let mut last = from;
        let mut worst = 0;
        for &t in r.at[vip].iter().filter(|t| **t >= from && **t <= to) {
            worst = worst.max(t - last);
            last = t;
        }
        worst.max(to - last)
    }

    /// Whether `vip` answered in the last `window`.
    pub fn answering(&self, vip: usize, window: Duration) -> bool {
        let now = clock::now_ns();
        let r = self.replies.lock().unwrap();
        r.at[vip]
            .last()
            .is_some_and(|t| now - t <= window.as_nanos() as u64)
    }

    /// Time two nodes answered for `vip` in [from, to], as the client saw
    /// it: every answer from one node that arrived while another node was
    /// answering (between two of its answers at most [`TENURE_GAP`] apart)
    /// counts one probe interval. A clean hand-over (the old owner's last
    /// answer before the new owner's first) counts zero, however short.
    pub fn dual_answer_ns(&self, vip: usize, from: u64, to: u64) -> u64 {
        let r = self.replies.lock().unwrap();
        let answers: Vec<(u64, Option<usize>)> = r.at[vip]
            .iter()
            .zip(&r.from[vip])
            .filter(|(t, _)| **t >= from && **t <= to)
            .map(|(t, n)| (*t, *n))
            .collect();
        let every = if vip == 0 {
            1
        } else {
            vip2_every(self.interval)
        };
        interleaved(&answers) as u64 * every * self.interval.as_nanos() as u64
    }

    /// Runs of answers to `vip` in [from, to]: (node, first, last, count), ns from `from`.
    pub fn runs(&self, vip: usize, from: u64, to: u64) -> Vec<(Option<usize>, u64, u64, usize)> {
        let r = self.replies.lock().unwrap();
        let mut out: Vec<(Option<usize>, u64, u64, usize)> = Vec::new();
        for (t, n) in r.at[vip].iter().zip(&r.from[vip]) {
            if *t < from || *t > to {
                continue;
            }
            let t = t - from;
            match out.last_mut() {
                Some(l) if l.0 == *n && t - l.2 < 5_000_000 => {
                    l.2 = t;
                    l.3 += 1;
                }
                _ => out.push((*n, t, t, 1)),
            }
        }
        out
    }

    /// How often the answering node changed in [from, to], as the client
    /// saw it (a clean failover and failback: 2; a flapping owner: more).
    pub fn answer_switches(&self, vip: usize, from: u64, to: u64) -> usize {
        let r = self.replies.lock().unwrap();
        let seq: Vec<Option<usize>> = r.at[vip]
            .iter()
            .zip(&r.from[vip])
            .filter(|(t, _)| **t >= from && **t <= to)
            .map(|(_, n)| *n)
            .collect();
        seq.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// The first answer to `vip` from `node` at or after `from`.
    pub fn first_answer_from(&self, vip: usize, node: usize, from: u64) -> Option<u64> {
        let r = self.replies.lock().unwrap();
        r.at[vip]
            .iter()
            .zip(&r.from[vip])
            .find(|(t, n)| **t >= from && **n == Some(node))
            .map(|(t, _)| *t)
    }

    /// Answers to `vip` in [from, to] per node (index 3: unknown MAC).
    pub fn answers_by_node(&self, vip: usize, from: u64, to: u64) -> [usize; 4] {
        let r = self.replies.lock().unwrap();
        let mut out = [0; 4];
        for (t, n) in r.at[vip].iter().zip(&r.from[vip]) {
            if *t >= from && *t <= to {
                out[n.unwrap_or(3)] += 1;
            }
        }
        out
    }
}

/// Two answers of one node this close belong to one uninterrupted tenure.
pub const TENURE_GAP: Duration = Duration::from_micros(4 * 500);

/// How many answers arrived inside another node's tenure.
fn interleaved(answers: &[(u64, Option<usize>)]) -> usize {
    let gap = TENURE_GAP.as_nanos() as u64;
    let mut by: std::collections::BTreeMap<Option<usize>, Vec<u64>> = Default::default();
    for (t, n) in answers {
        by.entry(*n).or_default().push(*t);
    }
    answers
        .iter()
        .filter(|(t, n)| {
            by.iter().any(|(m, ts)| {
                if m == n {
                    return false;
                }
                let i = ts.partition_point(|x| x < t);
                i > 0 && i < ts.len() && ts[i] - ts[i - 1] <= gap
            })
        })
        .count()
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// (time, node, holds vip0, holds vip1), recorded on change.
pub type OwnerLog = Arc<Mutex<Vec<(u64, usize, [bool; 2])>>>;

pub struct Watcher {
    stop: Arc<AtomicBool>,
    pub log: OwnerLog,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// One thread per node: a dump for where things stand, then the
    /// kernel's address notifications (RTMGRP_IPV4_IFADDR), time-stamped as
    /// they arrive. Not polling: a dump per node every millisecond took the
    /// kernel's RTNL lock thousands of times a second, and the agents'
    /// takeovers (address adds) queued behind it.
    pub fn start(nodes: &[Netns]) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let log: OwnerLog = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (i, ns) in nodes.iter().enumerate() {
            let (stop, log) = (stop.clone(), log.clone());
            let path = format!("/run/netns/{}", ns.name);
            threads.push(std::thread::spawn(move || {
                crate::netns::enter(&path).expect("enter node namespace");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(watch_node(i, stop, log));
            }));
        }
        Watcher { stop, log, threads }
    }

    /// Which nodes hold `vip` now (by their addresses).
    pub fn holders(&self, vip: usize) -> Vec<usize> {
        let log = self.log.lock().unwrap();
        let mut cur = [false; 3];
        for (_, n, h) in log.iter() {
            cur[*n] = h[vip];
        }
        (0..3).filter(|n| cur[*n]).collect()
    }

    /// Total time in [from, to] during which two or more nodes held `vip`.
    pub fn dual_ns(&self, vip: usize, from: u64, to: u64) -> u64 {
        let log = self.log.lock().unwrap();
        let mut cur = [false; 3];
        let mut total = 0;
        let mut last = from;
        let mut dual = false;
        for (t, n, h) in log.iter() {
            if *t > to {
                break;
            }
            if *t > from && dual {
                total += t - last.max(from);
            }
            cur[*n] = h[vip];
            dual = cur.iter().filter(|x| **x).count() >= 2;
            last = (*t).max(from);
        }
        if dual {
            total += to - last.max(from);
        }
        total
    }
}

/// `rtnetlink.h`: IPv4 address changes.
const RTMGRP_IPV4_IFADDR: u32 = 0x10;

async fn watch_node(i: usize, stop: Arc<AtomicBool>, log: OwnerLog) {
    use futures::StreamExt as _;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage as M;
    use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
    use rtnetlink::sys::{AsyncSocket as _, SocketAddr};

    let vips: Vec<std::net::IpAddr> = VIPS.iter().map(|v| v.parse().unwrap()).collect();
    let vip_of = |m: &AddressMessage| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(x) | AddressAttribute::Local(x) => {
                vips.iter().position(|v| v == x)
            }
            _ => None,
        })
    };
    // Subscribed before the dump: no change falls between the two.
    let (mut conn, _handle, mut changes) = rtnetlink::new_connection().expect("netlink");
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_IPV4_IFADDR))
        .expect("subscribing to address changes");
    // Room for bursts (lab start-up adds many addresses at once): an
    // overrun loses notifications, and with them the holders' view.
    let _ = conn.socket_mut().socket_mut().set_rx_buf_sz(1 << 20);
    tokio::spawn(conn);
    let nl = Netlink::connect().expect("netlink");
    let mut held = [false; 2];
    if let Ok(addrs) = nl.addresses(None).await {
        for (k, v) in vips.iter().enumerate() {
            held[k] = addrs.iter().any(|a| a.addr == *v);
        }
    }
    log.lock().unwrap().push((clock::now_ns(), i, held));
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            Some((m, _)) = changes.next() => {
                let (vip, now) = match m.payload {
                    NetlinkPayload::InnerMessage(M::NewAddress(a)) => (vip_of(&a), true),
                    NetlinkPayload::InnerMessage(M::DelAddress(a)) => (vip_of(&a), false),
                    _ => (None, false),
                };
                if let Some(k) = vip
                    && held[k] != now
                {
                    held[k] = now;
                    log.lock().unwrap().push((clock::now_ns(), i, held));
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interleaved;

    const MS: u64 = 1_000_000;

    #[test]
    fn clean_hand_over_is_not_dual() {
        let a: Vec<_> = (0..10).map(|i| (i * MS / 2, Some(0))).collect();
        let b: Vec<_> = (0..10)
            .map(|i| (5 * MS + 100 + i * MS / 2, Some(1)))
            .collect();
        assert_eq!(interleaved(&[a, b].concat()), 0);
    }

    #[test]
    fn alternating_answers_are_dual() {
        let v: Vec<_> = (0..10)
            .map(|i| (i * MS / 2, Some(i as usize % 2)))
            .collect();
        // All but the first and last answer sit inside the other's tenure.
        assert_eq!(interleaved(&v), 8);
    }

    #[test]
    fn one_stale_answer_inside_a_tenure_counts() {
        let mut v: Vec<_> = (0..10).map(|i| (i * MS / 2, Some(1))).collect();
        v.insert(5, (2 * MS + MS / 4, Some(0)));
        assert_eq!(interleaved(&v), 1);
    }
}
