//! A forged-heartbeat flood: attackers plugged into the lab's switch (one
//! on the heartbeat network, one on the service network) that send UDP to
//! the heartbeat port as fast as the machine lets them, with what an
//! attacker on the wire can make without the cluster key: random bytes,
//! heartbeats copied from the wire with a wrong tag, replays, spoofed node
//! ids with higher incarnations and sequence numbers, unknown node ids,
//! other cluster ids (`Kind`).
//!
//! Each attacker captures the real heartbeats on its network (the nodes
//! broadcast them) with a packet socket; the forged kinds are made from
//! those captures, so the attacker knows exactly what the wire shows and
//! nothing more. Frames are built whole (Ethernet, IPv4, UDP) and sent on
//! a packet socket with `sendmmsg`, 64 at a time, from a pool rebuilt
//! every 100 ms (fresh captures, fresh random bytes). On the heartbeat
//! network they go to the broadcast address, as heartbeats do (the bridge
//! delivers each to every node); on the service network to each node's
//! own MAC and address in turn, so that the client in the gateway
//! namespace, the instrument that measures outages, is not flooded itself.
//! Source MACs are the attacker's own: the switch's forwarding table is
//! not poisoned (that would be another attack).

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hb_common::wire::{
    MAGIC, OFF_CLUSTER, OFF_INCARNATION, OFF_NODE, OFF_SEQ, OFF_STATE, OFF_TAG, OFF_VERSION,
    PACKET_LEN, VERSION,
};

use crate::fault::Cable;
use crate::lab::topology::{ATTACKER_IPS, ATTACKER_MACS, NODES, Topology, attacker_index};
use crate::netns::Netns;
use hb_agent::sender::socket::setsockopt_int;

/// What the attacker sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Random bytes of random length (1..200); a quarter of them start
    /// with the heartbeat magic and are short, a quarter are PACKET_LEN bytes
    /// after the magic with a wrong version.
    Random,
    /// A captured heartbeat with its sequence number far ahead and a
    /// random tag: everything right but the tag (the tag's cached prefix
    /// matches: the cheap path of the check).
    WrongTag,
    /// Captured heartbeats sent again as they were.
    Replay,
    /// A member's node id with a higher incarnation and sequence number and
    /// random state bytes (the tag's cached prefix misses: a full SipHash
    /// per packet, the dearest path), random tag.
    Spoofed,
    /// The right cluster id, a node id no node has.
    UnknownNode,
    /// A captured heartbeat with another cluster id.
    OtherCluster,
    /// All of the above in equal shares, interleaved.
    Mixed,
}

impl Kind {
    /// Every single kind (not `Mixed`).
    pub const SINGLE: [Kind; 6] = [
        Kind::Random,
        Kind::WrongTag,
        Kind::Replay,
        Kind::Spoofed,
        Kind::UnknownNode,
        Kind::OtherCluster,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Random => "random bytes",
            Kind::WrongTag => "wrong tag",
            Kind::Replay => "replay",
            Kind::Spoofed => "spoofed node, higher incarnation/seq",
            Kind::UnknownNode => "unknown node id",
            Kind::OtherCluster => "other cluster id",
            Kind::Mixed => "mixed (all kinds)",
        }
    }

    /// The XDP counters (`hb_common::maps::counter::NAMES`) this kind's
    /// packets are expected to land in.
    pub fn reasons(self) -> &'static [&'static str] {
        match self {
            Kind::Random => &["foreign", "malformed", "bad_version"],
            // A node not configured for the model's sender (in the seed,
            // node0 and node2 do not know each other) counts unknown_peer.
            Kind::WrongTag | Kind::Spoofed => &["bad_tag", "unknown_peer"],
            Kind::Replay => &["replay", "old_incarnation", "unknown_peer"],
            Kind::UnknownNode => &["unknown_peer"],
            Kind::OtherCluster => &["wrong_cluster"],
            Kind::Mixed => &[
                "foreign",
                "malformed",
                "bad_version",
                "bad_tag",
                "replay",
                "old_incarnation",
                "unknown_peer",
                "wrong_cluster",
            ],
        }
    }

    fn code(k: Option<Kind>) -> u8 {
        match k {
            None => 0,
            Some(k) => 1 + Kind::SINGLE.iter().position(|x| *x == k).unwrap_or(6) as u8,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        match c {
            0 => None,
            c => Some(
                Kind::SINGLE
                    .get(c as usize - 1)
                    .copied()
                    .unwrap_or(Kind::Mixed),
            ),
        }
    }
}

/// One heartbeat seen on the wire: its sender's IPv4 address and payload.
#[derive(Clone, Copy)]
struct Seen {
    src: Ipv4Addr,
    payload: [u8; PACKET_LEN],
}

/// What the attackers captured: the latest heartbeat of every node id,
/// and the last few hundred in arrival order (for replays).
#[derive(Default)]
struct Captures {
    latest: HashMap<u32, Seen>,
    recent: VecDeque<Seen>,
    total: u64,
}

const RECENT: usize = 512;

/// An attacker host on one network (`Topology::attach_attacker`).
pub struct Attacker {
    pub net: Cable,
    ns: Netns,
}

impl Attacker {
    pub fn attach(topo: &Topology, net: Cable) -> Result<Attacker> {
        Ok(Attacker {
            net,
            ns: topo.attach_attacker(net)?,
        })
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }
}

/// Where one network's frames go: destination MAC and address, and the
/// node index counted for it (`None`: broadcast, every node).
#[derive(Clone, Copy)]
struct Target {
    mac: [u8; 6],
    ip: Ipv4Addr,
    node: Option<usize>,
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (d, b) in m.iter_mut().zip(s.split(':')) {
        *d = u8::from_str_radix(b, 16).unwrap_or(0);
    }
    m
}

fn targets(net: Cable) -> Vec<Target> {
    match net {
        Cable::Heartbeat => vec![Target {
            mac: [0xff; 6],
            ip: Ipv4Addr::BROADCAST,
            node: None,
        }],
        Cable::Service => NODES
            .iter()
            .enumerate()
            .map(|(i, n)| Target {
                mac: parse_mac(n.mac),
                ip: n.svc_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                node: Some(i),
            })
            .collect(),
    }
}

/// Counters of one network's senders.
#[derive(Default)]
pub struct NetCounters {
    /// Frames the kernel took (sendmmsg's count).
    pub sent: AtomicU64,
    /// Of those, per node (service network: each node's share; heartbeat
    /// network: every frame reaches every node, counted in `sent`).
    pub sent_to: [AtomicU64; 3],
    /// sendmmsg calls that failed (ENOBUFS: the veth's queue was full).
    pub errors: AtomicU64,
}

/// A sent-frame count at one moment, for rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    /// Per network (`attacker_index`: 0 service, 1 heartbeat).
    pub sent: [u64; 2],
    pub sent_to: [[u64; 3]; 2],
    pub errors: [u64; 2],
}

/// The running flood: capture and sender threads in the attackers'
/// namespaces. Idle until `set`; stopped and joined on drop.
pub struct Flood {
    stop: Arc<AtomicBool>,
    kind: Arc<AtomicU8>,
    caps: Arc<Mutex<Captures>>,
    counters: [Arc<NetCounters>; 2],
    /// Thread ids of the sender threads (their CPU time).
    tids: Arc<Mutex<Vec<i32>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Frames per sendmmsg call.
const BATCH: usize = 64;
/// Frames in a sender's pool (a multiple of BATCH).
const POOL: usize = 1024;
/// How often a sender rebuilds its pool.
const REBUILD: Duration = Duration::from_millis(100);

impl Flood {
    /// Starts capturing on every attacker's network, and `threads` sender
    /// threads per attacker (idle until `set`).
    pub fn start(attackers: &[&Attacker], threads: usize) -> Result<Flood> {
        let mut f = Flood {
            stop: Arc::new(AtomicBool::new(false)),
            kind: Arc::new(AtomicU8::new(0)),
            caps: Arc::new(Mutex::new(Captures::default())),
            counters: [Arc::default(), Arc::default()],
            tids: Arc::default(),
            threads: Vec::new(),
        };
        for a in attackers {
            let path = a.ns.path();
            let (stop, caps) = (f.stop.clone(), f.caps.clone());
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            f.threads.push(std::thread::spawn(move || {
                let r = crate::netns::enter(&path).and_then(|()| capture_socket());
                match r {
                    Ok(fd) => {
                        let _ = ready_tx.send(Ok(()));
                        capture(fd, &stop, &caps);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            }));
            ready_rx
                .recv()
                .context("capture thread died")?
                .context("capture socket")?;
            for t in 0..threads {
                let path = a.ns.path();
                let k = attacker_index(a.net);
                let ctx = Sender {
                    stop: f.stop.clone(),
                    kind: f.kind.clone(),
                    caps: f.caps.clone(),
                    counters: f.counters[k].clone(),
                    src_mac: parse_mac(ATTACKER_MACS[k]),
                    src_ip: ATTACKER_IPS[k].parse()?,
                    targets: targets(a.net),
                    seed: 0x9e37_79b9_7f4a_7c15 ^ ((k as u64) << 32) ^ t as u64,
                };
                let tids = f.tids.clone();
                let (ready_tx, ready_rx) = std::sync::mpsc::channel();
                f.threads.push(std::thread::spawn(move || {
                    // SAFETY: trivial syscall.
                    tids.lock().unwrap().push(unsafe { libc::gettid() });
                    let r = crate::netns::enter(&path).and_then(|()| send_socket());
                    match r {
                        Ok(fd) => {
                            let _ = ready_tx.send(Ok(()));
                            ctx.run(fd);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                }));
                ready_rx
                    .recv()
                    .context("sender thread died")?
                    .context("sender socket")?;
            }
        }
        Ok(f)
    }

    /// What to send from now on (`None`: nothing).
    pub fn set(&self, kind: Option<Kind>) {
        self.kind.store(Kind::code(kind), Ordering::SeqCst);
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::from_code(self.kind.load(Ordering::SeqCst))
    }

    /// Node ids heard so far (from the captured heartbeats).
    pub fn heard(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.caps.lock().unwrap().latest.keys().copied().collect();
        v.sort();
        v
    }

    /// Heartbeats captured so far.
    pub fn captured(&self) -> u64 {
        self.caps.lock().unwrap().total
    }

    pub fn sent(&self) -> Sent {
        let mut s = Sent::default();
        for (k, c) in self.counters.iter().enumerate() {
            s.sent[k] = c.sent.load(Ordering::Relaxed);
            s.errors[k] = c.errors.load(Ordering::Relaxed);
            for i in 0..3 {
                s.sent_to[k][i] = c.sent_to[i].load(Ordering::Relaxed);
            }
        }
        s
    }

    /// CPU time (user + system) of the sender threads so far, in clock
    /// ticks (`CLK_TCK`).
    pub fn sender_cpu_ticks(&self) -> u64 {
        self.tids
            .lock()
            .unwrap()
            .iter()
            .map(|t| cpu_ticks(&format!("/proc/self/task/{t}/stat")).unwrap_or(0))
            .sum()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.set(None);
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// utime + stime of a /proc/.../stat file, in clock ticks.
pub fn cpu_ticks(stat_path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second.
pub fn clk_tck() -> f64 {
    // SAFETY: trivial libc call.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn owned(fd: i32) -> Result<OwnedFd> {
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifindex_eth0() -> Result<i32> {
    // SAFETY: a NUL-terminated constant name.
    let i = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
    if i == 0 {
        bail!("eth0: {}", std::io::Error::last_os_error());
    }
    Ok(i as i32)
}

fn sockaddr_ll(ifindex: i32, proto: u16) -> libc::sockaddr_ll {
    // SAFETY: plain data, all-zero is valid.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto.to_be();
    sa.sll_ifindex = ifindex;
    sa
}

fn bind_ll(fd: &OwnedFd, sa: &libc::sockaddr_ll) -> Result<()> {
    // SAFETY: a sockaddr_ll of its own size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        bail!("bind: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A packet socket on eth0 that sees the IPv4 frames arriving (not the
/// ones this host sends), with a 100 ms receive timeout.
fn capture_socket() -> Result<OwnedFd> {
    let proto = libc::ETH_P_IP as u16;
    // SAFETY: plain socket(2).
    let fd = owned(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto.to_be()),
        )
    })?;
    setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
    bind_ll(&fd, &sockaddr_ll(ifindex_eth0()?, proto))?;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: a timeval of its own size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    Ok(fd)
}

/// The heartbeat in an Ethernet frame, if it is one (UDP to 694 with the
/// magic and at least PACKET_LEN bytes).
fn heartbeat_in(frame: &[u8]) -> Option<Seen> {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ip[0] >> 4 != 4 || ip[9] != 17 || ihl < 20 || ip.len() < ihl + 8 {
        return None;
    }
    let udp = &ip[ihl..];
    if u16::from_be_bytes([udp[2], udp[3]]) != hb_common::wire::DEFAULT_PORT {
        return None;
    }
    let payload: &[u8; PACKET_LEN] = udp[8..].first_chunk()?;
    if u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) != MAGIC {
        return None;
    }
    Some(Seen {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        payload: *payload,
    })
}

fn capture(fd: OwnedFd, stop: &AtomicBool, caps: &Mutex<Captures>) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: recv into a buffer we own, of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        if let Some(seen) = heartbeat_in(&buf[..n as usize]) {
            let node = rd32(&seen.payload, OFF_NODE);
            let mut c = caps.lock().unwrap();
            c.latest.insert(node, seen);
            if c.recent.len() == RECENT {
                c.recent.pop_front();
            }
            c.recent.push_back(seen);
            c.total += 1;
        }
    }
}

/// A packet socket on eth0 for sending whole frames (bound to no protocol:
/// it receives nothing), past the qdisc.
fn send_socket() -> Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd =
        owned(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    let _ = setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1);
    let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20);
    bind_ll(&fd, &sockaddr_ll(ifindex_eth0()?, 0))?;
    Ok(fd)
}

fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn rd64(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

fn wr32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn wr64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// The IPv4 header checksum.
fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 + UDP frame to the heartbeat port (no UDP checksum,
/// as IPv4 allows).
fn frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 28 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&hb_common::wire::DEFAULT_PORT.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// One sender thread's context.
struct Sender {
    stop: Arc<AtomicBool>,
    kind: Arc<AtomicU8>,
    caps: Arc<Mutex<Captures>>,
    counters: Arc<NetCounters>,
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    targets: Vec<Target>,
    seed: u64,
}

/// The member node ids a payload kind needs, from the captures.
struct Snapshot {
    latest: Vec<Seen>,
    recent: Vec<Seen>,
}

impl Sender {
    /// One payload of `kind` and the source address to send it from.
    fn payload(&self, rng: &mut fastrand::Rng, kind: Kind, snap: &Snapshot) -> (Vec<u8>, Ipv4Addr) {
        let model = (!snap.latest.is_empty()).then(|| snap.latest[rng.usize(..snap.latest.len())]);
        let Some(m) = model.filter(|_| kind != Kind::Random) else {
            // Random (also what the model-based kinds fall back to before
            // anything was captured).
            let mut p: Vec<u8> = match rng.u8(..4) {
                0 => {
                    let mut p = MAGIC.to_le_bytes().to_vec();
                    p.extend((0..rng.usize(0..PACKET_LEN - 4)).map(|_| rng.u8(..)));
                    p
                }
                1 => {
                    let mut p = vec![0u8; PACKET_LEN];
                    rng.fill(&mut p);
                    wr32(&mut p, 0, MAGIC);
                    p[OFF_VERSION] = loop {
                        let v = rng.u8(..);
                        if v != VERSION {
                            break v;
                        }
                    };
                    p
                }
                _ => (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect(),
            };
            // Pure random bytes that happen to start with the magic: rare
            // enough to leave as they are.
            p.shrink_to_fit();
            return (p, self.src_ip);
        };
        let mut p = m.payload;
        match kind {
            Kind::Random | Kind::Mixed => unreachable!("handled by the caller"),
            Kind::WrongTag => {
                let seq = rd64(&p, OFF_SEQ);
                wr64(&mut p, OFF_SEQ, seq + 1_000_000 + rng.u64(..1_000_000));
                wr64(&mut p, OFF_TAG, rng.u64(..));
            }
            Kind::Replay => {
                let r = &snap.recent;
                let s = if r.is_empty() {
                    m
                } else {
                    r[rng.usize(..r.len())]
                };
                return (s.payload.to_vec(), s.src);
            }
            Kind::Spoofed => {
                let inc = rd64(&p, OFF_INCARNATION);
                wr64(&mut p, OFF_INCARNATION, inc + 1 + rng.u64(..1000));
                let seq = rd64(&p, OFF_SEQ);
                wr64(&mut p, OFF_SEQ, seq + 1 + rng.u64(..1_000_000));
                rng.fill(&mut p[OFF_STATE + 8..OFF_SEQ]);
                wr64(&mut p, OFF_TAG, rng.u64(..));
            }
            Kind::UnknownNode => {
                let members: Vec<u32> = snap
                    .latest
                    .iter()
                    .map(|s| rd32(&s.payload, OFF_NODE))
                    .collect();
                let id = loop {
                    let id = rng.u32(..);
                    if !members.contains(&id) {
                        break id;
                    }
                };
                wr32(&mut p, OFF_NODE, id);
                wr64(&mut p, OFF_TAG, rng.u64(..));
            }
            Kind::OtherCluster => {
                let c = rd32(&p, OFF_CLUSTER);
                wr32(&mut p, OFF_CLUSTER, c ^ (1 + rng.u32(..u32::MAX - 1)));
                wr64(&mut p, OFF_TAG, rng.u64(..));
            }
        }
        // Spoofed and replayed-like frames claim the member's address.
        (p.to_vec(), m.src)
    }

    /// A new pool of frames of `kind`; frame `i` goes to
    /// `targets[i % targets.len()]`.
    fn pool(&self, rng: &mut fastrand::Rng, kind: Kind) -> Vec<Vec<u8>> {
        let snap = {
            let c = self.caps.lock().unwrap();
            Snapshot {
                latest: c.latest.values().copied().collect(),
                recent: c.recent.iter().copied().collect(),
            }
        };
        (0..POOL)
            .map(|i| {
                let k = match kind {
                    Kind::Mixed => Kind::SINGLE[(i / self.targets.len()) % Kind::SINGLE.len()],
                    k => k,
                };
                let (p, src) = self.payload(rng, k, &snap);
                let t = self.targets[i % self.targets.len()];
                frame(t.mac, self.src_mac, src, t.ip, 1024 + rng.u16(..60000), &p)
            })
            .collect()
    }

    fn run(self, fd: OwnedFd) {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let mut cur: Option<Kind> = None;
        let mut batch = Batch::default();
        let mut built = Instant::now();
        let mut j = 0usize;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(kind) = Kind::from_code(self.kind.load(Ordering::Relaxed)) else {
                cur = None;
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            if cur != Some(kind) || built.elapsed() >= REBUILD {
                batch = Batch::new(self.pool(&mut rng, kind));
                cur = Some(kind);
                built = Instant::now();
                j = 0;
            }
            let hdrs = &mut batch.hdrs;
            let n = BATCH.min(hdrs.len() - j);
            // SAFETY: `hdrs[j..j + n]` point at iovecs and frames that the
            // batch owns and keeps in place until it is replaced.
            let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs[j..].as_mut_ptr(), n as u32, 0) };
            if r <= 0 {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                // A full queue: let the softirq drain it.
                std::thread::yield_now();
                continue;
            }
            let r = r as usize;
            self.counters.sent.fetch_add(r as u64, Ordering::Relaxed);
            if self.targets.len() > 1 {
                let mut per = [0u64; 3];
                for k in j..j + r {
                    if let Some(node) = self.targets[k % self.targets.len()].node {
                        per[node] += 1;
                    }
                }
                for (c, v) in self.counters.sent_to.iter().zip(per) {
                    c.fetch_add(v, Ordering::Relaxed);
                }
            }
            j = (j + r) % hdrs.len();
        }
    }
}

/// A pool of frames with the iovecs and message headers sendmmsg takes,
/// pointing into it (heap buffers: they stay in place when this moves).
#[derive(Default)]
struct Batch {
    _frames: Vec<Vec<u8>>,
    _iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new(mut frames: Vec<Vec<u8>>) -> Batch {
        let mut iov: Vec<libc::iovec> = frames
            .iter_mut()
            .map(|f| libc::iovec {
                iov_base: f.as_mut_ptr().cast(),
                iov_len: f.len(),
            })
            .collect();
        let hdrs = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: plain data, all-zero is valid.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        Batch {
            _frames: frames,
            _iov: iov,
            hdrs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_back_as_heartbeats() {
        let mut p = [0u8; PACKET_LEN];
        wr32(&mut p, 0, MAGIC);
        wr32(&mut p, OFF_NODE, 7);
        let src = Ipv4Addr::new(10, 160, 100, 30);
        let f = frame([0xff; 6], [2; 6], src, Ipv4Addr::BROADCAST, 5000, &p);
        let seen = heartbeat_in(&f).expect("a heartbeat");
        assert_eq!(seen.src, src);
        assert_eq!(rd32(&seen.payload, OFF_NODE), 7);
        assert_eq!(ip_checksum(&f[14..34]), 0, "checksum verifies");
    }

    #[test]
    fn kind_codes_round_trip() {
        for k in Kind::SINGLE.into_iter().chain([Kind::Mixed]) {
            assert_eq!(Kind::from_code(Kind::code(Some(k))), Some(k));
        }
        assert_eq!(Kind::from_code(Kind::code(None)), None);
    }
}
