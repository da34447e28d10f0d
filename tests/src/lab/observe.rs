//! What the lab measures: a client in the gateway namespace probing both
//! VIPs with ICMP echo every half millisecond (outage = longest gap between
//! answers), and a watcher per node recording, from its netlink view, when
//! it holds each VIP (two holders at once = dual ownership).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hb_agent::resources::netlink::Netlink;
use hb_agent::sender::clock;
use socket2::{Domain, Protocol, Socket, Type};

use super::topology::VIPS;
use crate::netns::Netns;

pub const PROBE_INTERVAL: Duration = Duration::from_micros(500);

/// Reply times per VIP (CLOCK_MONOTONIC ns).
#[derive(Default)]
pub struct Replies {
    pub at: [Vec<u64>; 2],
}

pub struct Prober {
    stop: Arc<AtomicBool>,
    pub replies: Arc<Mutex<Replies>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    pub fn start(gw: &Netns) -> anyhow::Result<Prober> {
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(Mutex::new(Replies::default()));
        let (s2, r2) = (stop.clone(), replies.clone());
        let path = format!("/run/netns/{}", gw.name);
        let thread = std::thread::spawn(move || {
            crate::netns::enter(&path).expect("enter gateway namespace");
            let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
                .expect("raw ICMP socket");
            sock.set_nonblocking(true).unwrap();
            let ident = (std::process::id() as u16) ^ 0x5a5a;
            let vips: Vec<Ipv4Addr> = VIPS.iter().map(|v| v.parse().unwrap()).collect();
            let mut seq: u16 = 0;
            let mut next = clock::now_ns();
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
            while !s2.load(Ordering::Relaxed) {
                clock::sleep_until(next);
                next += PROBE_INTERVAL.as_nanos() as u64;
                seq = seq.wrapping_add(1);
                for (i, v) in vips.iter().enumerate() {
                    let mut p = [0u8; 16];
                    p[0] = 8;
                    p[4..6].copy_from_slice(&(ident.wrapping_add(i as u16)).to_be_bytes());
                    p[6..8].copy_from_slice(&seq.to_be_bytes());
                    let c = hb_agent::ping::checksum(&p);
                    p[2..4].copy_from_slice(&c.to_be_bytes());
                    let to: SocketAddr = SocketAddrV4::new(*v, 0).into();
                    let _ = sock.send_to(&p, &to.into());
                }
                while let Ok((n, _)) = sock.recv_from(&mut buf) {
                    // SAFETY: recv_from initialised n bytes.
                    let d: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                    let ihl = (d[0] & 0x0f) as usize * 4;
                    if d.len() < ihl + 8 || d[ihl] != 0 {
                        continue;
                    }
                    let id = u16::from_be_bytes([d[ihl + 4], d[ihl + 5]]);
                    let vip = id.wrapping_sub(ident);
                    if vip < 2 {
                        r2.lock().unwrap().at[vip as usize].push(clock::now_ns());
                    }
                }
            }
        });
        Ok(Prober {
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
                rt.block_on(async move {
                    let nl = Netlink::connect().expect("netlink");
                    let vips: Vec<std::net::IpAddr> =
                        VIPS.iter().map(|v| v.parse().unwrap()).collect();
                    let mut prev = [false; 2];
                    log.lock().unwrap().push((clock::now_ns(), i, prev));
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(addrs) = nl.addresses(None).await {
                            let now = [
                                addrs.iter().any(|a| a.addr == vips[0]),
                                addrs.iter().any(|a| a.addr == vips[1]),
                            ];
                            if now != prev {
                                log.lock().unwrap().push((clock::now_ns(), i, now));
                                prev = now;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
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

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
