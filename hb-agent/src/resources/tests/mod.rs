//! Real tests of the resources layer, in network namespaces built per test.
//!
//! Each test makes its own namespaces with the fixture every hb test shares
//! (hb-testkit's `Netns`: removed on drop, also on panic), joined by veth
//! pairs that never touch the root namespace, and runs the code under test
//! in a fresh thread inside one of them (with a UTS namespace of its own for
//! hostname tests) on its own current-thread tokio runtime (`BlockOn`).
//! Setup and checks use `ip` (only the code under test must not). Without
//! root these tests panic with a clear message instead of passing.
mod announce;
mod group;
mod hostname;
mod ipaddr;
mod mac;
mod neighbour;
mod script;

use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use hb_testkit::netns::Netns;
pub use hb_testkit::process::{Inheritable, Leftover};

use super::{ArpSettings, ResourceSpec, Resources, ResourcesConfig};

pub const VMAC1: [u8; 6] = [0x00, 0x1e, 0x68, 0x1e, 0x99, 0x5e];
pub const VMAC2: [u8; 6] = [0x00, 0x1e, 0x68, 0x1e, 0x88, 0x5e];

/// A namespace of this test's own (the shared fixture, hb-testkit).
pub fn netns() -> Netns {
    Netns::new("res").unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs async code under test inside a namespace.
pub trait BlockOn {
    /// Runs `f` on a fresh thread inside this namespace (and a private UTS
    /// namespace when `uts`), on its own current-thread tokio runtime.
    fn block_on<F, Fut, R>(&self, uts: bool, f: F) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static;
}

impl BlockOn for Netns {
    fn block_on<F, Fut, R>(&self, uts: bool, f: F) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        self.run(uts, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        })
        .unwrap_or_else(|e| panic!("{e:#}"))
    }
}

/// Two hosts on one segment: `node` (eth0 192.168.32.31/24, default via
/// .254) and `gw` (eth0 192.168.32.254/24), joined by a veth pair made
/// directly inside the namespaces.
pub struct Lan {
    pub node: Netns,
    pub gw: Netns,
}

pub const NODE_IP: &str = "192.168.32.31";
pub const GW_IP: &str = "192.168.32.254";

impl Lan {
    pub fn new() -> Lan {
        let node = netns();
        let gw = netns();
        node.ip(&format!(
            "link add eth0 type veth peer name eth0 netns {}",
            gw.name
        ));
        // Quiet IPv6 autoconfiguration noise on the wire.
        for ns in [&node, &gw] {
            ns.sysctl("net.ipv6.conf.eth0.accept_ra", "0");
            ns.sysctl("net.ipv6.conf.eth0.dad_transmits", "0");
        }
        node.ip("addr add 192.168.32.31/24 brd + dev eth0");
        node.ip("link set eth0 up");
        gw.ip("addr add 192.168.32.254/24 brd + dev eth0");
        gw.ip("link set eth0 up");
        node.ip("route add default via 192.168.32.254");
        Lan { node, gw }
    }
}

/// A tempdir and a `Resources` config pointing its state dir into it.
pub fn config(state: &tempfile::TempDir, arp: ArpSettings) -> ResourcesConfig {
    ResourcesConfig {
        arp,
        state_dir: state.path().join("run-hb"),
        script_dirs: vec![state.path().join("resource.d"), state.path().join("init.d")],
        ocf_root: state.path().join("ocf"),
        ..ResourcesConfig::default()
    }
}

pub fn resources(cfg: ResourcesConfig) -> Resources {
    Resources::new(cfg).expect("Resources::new")
}

pub fn quick_arp() -> ArpSettings {
    ArpSettings {
        count: 3,
        interval: Duration::from_millis(50),
        reply_form: false,
        refresh: None,
        na_router_flag: false,
    }
}

pub fn ip_spec(addr: &str, prefix: u8, iface: Option<&str>) -> ResourceSpec {
    ResourceSpec::IpAddr(super::IpSpec {
        addr: addr.parse().unwrap(),
        prefix,
        route_prefix: false,
        iface: iface.map(str::to_string),
        broadcast: None,
        label: None,
    })
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The MAC of `iface` in `ns`, as `ip` prints it.
pub fn mac_of(ns: &Netns, iface: &str) -> String {
    let out = ns.ip(&format!("-o link show dev {iface}"));
    let i = out.find("link/ether ").expect("link/ether") + "link/ether ".len();
    out[i..i + 17].to_string()
}

/// Lines of `ip -n ns <args>` with volatile fields removed (lifetimes).
pub fn lines(ns: &Netns, args: &str) -> Vec<String> {
    ns.ip(args)
        .lines()
        .map(|l| {
            l.replace('\\', " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty() && !l.starts_with("valid_lft"))
        .map(|l| match l.find(" valid_lft") {
            Some(i) => l[..i].to_string(),
            None => l,
        })
        .collect()
}

// ----- capturing frames in a namespace -----

/// A receive-all AF_PACKET socket on `iface` inside a namespace, read by a
/// thread until `finish`.
pub struct Capture {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

impl Capture {
    pub fn start(ns: &Netns, iface: &str) -> Capture {
        let path = ns.path();
        let iface = iface.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            hb_testkit::netns::enter(&path).unwrap_or_else(|e| panic!("{e:#}"));
            let idx = nix::net::if_::if_nametoindex(iface.as_str())
                .unwrap_or_else(|e| panic!("if_nametoindex({iface}): {e}"));
            // SAFETY: plain socket/bind/setsockopt/recvfrom calls on a fd we own.
            unsafe {
                let fd = libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    (libc::ETH_P_ALL as u16).to_be() as i32,
                );
                assert!(
                    fd >= 0,
                    "AF_PACKET socket: {}",
                    std::io::Error::last_os_error()
                );
                let fd = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
                sll.sll_ifindex = idx as i32;
                let r = libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
                let tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 20_000,
                };
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                ready_tx.send(()).unwrap();
                let mut frames = Vec::new();
                let mut buf = [0u8; 4096];
                while !stop2.load(Ordering::SeqCst) {
                    let mut from: libc::sockaddr_ll = std::mem::zeroed();
                    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                    let n = libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&mut from as *mut libc::sockaddr_ll).cast(),
                        &mut len,
                    );
                    if n > 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
                        frames.push(buf[..n as usize].to_vec());
                    }
                }
                frames
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("capture thread did not start");
        Capture { stop, handle }
    }

    /// Waits `settle`, stops, and returns the frames received.
    pub fn finish(self, settle: Duration) -> Vec<Vec<u8>> {
        std::thread::sleep(settle);
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.join() {
            Ok(f) => f,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// An ARP frame, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arp {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

fn mac6(b: &[u8]) -> [u8; 6] {
    b[..6].try_into().unwrap()
}

pub fn parse_arp(f: &[u8]) -> Option<Arp> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] {
        return None;
    }
    Some(Arp {
        eth_dst: mac6(&f[0..]),
        eth_src: mac6(&f[6..]),
        op: u16::from_be_bytes([f[20], f[21]]),
        sha: mac6(&f[22..]),
        spa: f[28..32].try_into().unwrap(),
        tha: mac6(&f[32..]),
        tpa: f[38..42].try_into().unwrap(),
    })
}

/// A neighbour advertisement, parsed, with its checksum verified independently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Na {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub hop_limit: u8,
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
    pub target: std::net::Ipv6Addr,
    pub tlla: Option<[u8; 6]>,
    pub checksum_ok: bool,
}

pub fn parse_na(f: &[u8]) -> Option<Na> {
    if f.len() < 14 + 40 + 24 || f[12..14] != [0x86, 0xdd] || f[20] != 58 || f[54] != 136 {
        return None;
    }
    let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
    let icmp = &f[54..54 + plen];
    let src: [u8; 16] = f[22..38].try_into().unwrap();
    let dst: [u8; 16] = f[38..54].try_into().unwrap();
    // RFC 4443 checksum: one's complement sum over pseudo-header + message.
    let mut data = Vec::new();
    data.extend_from_slice(&src);
    data.extend_from_slice(&dst);
    data.extend_from_slice(&(plen as u32).to_be_bytes());
    data.extend_from_slice(&[0, 0, 0, 58]);
    data.extend_from_slice(icmp);
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut sum: u64 = data
        .chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut tlla = None;
    let mut opts = &icmp[24..];
    while opts.len() >= 8 && opts[1] != 0 {
        let l = opts[1] as usize * 8;
        if opts[0] == 2 && l >= 8 {
            tlla = Some(mac6(&opts[2..]));
        }
        opts = &opts[l.min(opts.len())..];
    }
    Some(Na {
        eth_dst: mac6(&f[0..]),
        eth_src: mac6(&f[6..]),
        src: src.into(),
        dst: dst.into(),
        hop_limit: f[21],
        router: icmp[4] & 0x80 != 0,
        solicited: icmp[4] & 0x40 != 0,
        override_: icmp[4] & 0x20 != 0,
        target: <[u8; 16]>::try_from(&icmp[8..24]).unwrap().into(),
        tlla,
        checksum_ok: sum == 0xffff,
    })
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes an executable script.
pub fn write_script(path: &std::path::Path, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}
