//! Telling the segment who owns an address now: gratuitous ARP (IPv4) and
//! unsolicited neighbour advertisements (IPv6), sent from an AF_PACKET socket on
//! the owning interface with the interface's *current* MAC (so after a MAC
//! takeover, the virtual one).
//!
//! The kernel's `arp_notify` announces only the first address of a device, so
//! every address of a group is announced here, `count` times `interval` apart.
//!
//! Rate limit: for each (interface, address) at most `count` packets leave in any
//! sliding window of `count * interval` (at least [`MIN_WINDOW`]), however often
//! an announcement is asked for. A node resuming from a hang that replays many
//! takeovers, or an operator hammering `takeover`, cannot burst hundreds of
//! GARPs; the packets over the limit are counted as `suppressed`.
//!
//! [`Announcer::refresh_neighbours`] fixes the other direction: the service's
//! own neighbour entries (gateway, ping nodes) that are STALE / INCOMPLETE /
//! FAILED are deleted and re-resolved at once, instead of waiting for the
//! kernel's once-a-second retry.
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ResourceError;
use super::netlink::{Link, NeighState, Netlink, in_subnet};

pub use crate::model::ArpSettings;

/// Floor of the rate-limit window (applies when `count * interval` is smaller,
/// e.g. interval 0).
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

pub(crate) const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];

/// An address to announce and the interface that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnnounceTarget {
    pub iface: String,
    pub addr: IpAddr,
}

#[derive(Debug, Default)]
pub struct AnnounceOutcome {
    /// Packets sent.
    pub sent: usize,
    /// Packets withheld by the rate limit.
    pub suppressed: usize,
    pub errors: Vec<ResourceError>,
}

/// What [`Announcer::refresh_neighbours`] did for one IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourRefresh {
    pub ip: IpAddr,
    /// State before (None: no entry).
    pub before: Option<NeighState>,
    /// True when the entry was deleted and re-resolved (or first resolved).
    pub refreshed: bool,
}

/// Sliding-window limiter: at most `count` packets per key per window.
#[derive(Debug)]
pub struct RateLimiter {
    count: usize,
    window: Duration,
    sent: HashMap<AnnounceTarget, VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(settings: &ArpSettings) -> Self {
        let window = settings
            .interval
            .saturating_mul(settings.count)
            .max(MIN_WINDOW);
        RateLimiter {
            count: settings.count as usize,
            window,
            sent: HashMap::new(),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Takes one slot for `key` at `now` if the window has room.
    pub fn try_take(&mut self, key: &AnnounceTarget, now: Instant) -> bool {
        let q = self.sent.entry(key.clone()).or_default();
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.count {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// Whether announcements may go out now: the agent's service lease is
/// running. A node resuming from a freeze must not send the rounds that
/// were due while it was frozen: they would pull the clients and the switch
/// back to it, away from the node that took over meanwhile.
#[derive(Clone)]
pub struct AnnounceGate(pub std::sync::Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for AnnounceGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnnounceGate")
    }
}

/// Sends announcements and refreshes neighbour entries.
#[derive(Debug)]
pub struct Announcer {
    settings: ArpSettings,
    gate: Option<AnnounceGate>,
    netlink: Netlink,
    limiter: Mutex<RateLimiter>,
    /// One long-lived send-only socket: closing an AF_PACKET socket waits for
    /// an RCU grace period (synchronize_net), so one per call would stall the
    /// caller's thread under a burst of announcements.
    sock: PacketSocket,
}

impl Announcer {
    /// Opens the AF_PACKET socket in the calling thread's network namespace.
    pub fn new(settings: ArpSettings, netlink: Netlink) -> Result<Self, ResourceError> {
        let limiter = Mutex::new(RateLimiter::new(&settings));
        let sock = PacketSocket::open().map_err(|source| ResourceError::Io {
            what: "opening an AF_PACKET socket for announcements".into(),
            source,
        })?;
        Ok(Announcer {
            settings,
            gate: None,
            netlink,
            limiter,
            sock,
        })
    }

    /// Announce only while `gate` says so.
    pub fn with_gate(mut self, gate: Option<AnnounceGate>) -> Self {
        self.gate = gate;
        self
    }

    pub fn settings(&self) -> &ArpSettings {
        &self.settings
    }

    /// Announces every target `count` times, `interval` apart (rounds: one
    /// packet per target per round), within the rate limit.
    pub async fn announce(&self, targets: &[AnnounceTarget]) -> AnnounceOutcome {
        self.announce_rounds(targets, 0..self.settings.count).await
    }

    /// Rounds `rounds` of [`Announcer::announce`] (0 is the first): each
    /// round but round 0 waits `interval` first. A takeover sends round 0
    /// inline, the moment the address is up, and the rest in the background.
    pub async fn announce_rounds(
        &self,
        targets: &[AnnounceTarget],
        rounds: std::ops::Range<u32>,
    ) -> AnnounceOutcome {
        self.announce_rounds_via(targets, rounds, &[]).await
    }

    /// [`Announcer::announce_rounds`] through `known` links (index and
    /// MAC as the caller just set them) instead of looking them up.
    pub async fn announce_rounds_via(
        &self,
        targets: &[AnnounceTarget],
        rounds: std::ops::Range<u32>,
        known: &[Link],
    ) -> AnnounceOutcome {
        let mut out = AnnounceOutcome::default();
        let rounds = rounds.start..rounds.end.min(self.settings.count);
        if targets.is_empty() || rounds.is_empty() {
            return out;
        }
        // Resolve each interface once: index and current MAC.
        let mut links: HashMap<String, Link> = HashMap::new();
        let mut live: Vec<&AnnounceTarget> = Vec::new();
        for t in targets {
            if !links.contains_key(&t.iface)
                && let Some(l) = known.iter().find(|l| l.name == t.iface && l.mac.is_some())
            {
                links.insert(t.iface.clone(), l.clone());
            }
            if !links.contains_key(&t.iface) {
                match self.netlink.link(&t.iface).await {
                    Ok(l) if l.mac.is_some() => {
                        links.insert(t.iface.clone(), l);
                    }
                    Ok(_) => {
                        out.errors.push(ResourceError::Announce {
                            iface: t.iface.clone(),
                            addr: t.addr,
                            source: std::io::Error::other("interface has no MAC address"),
                        });
                        continue;
                    }
                    Err(e) => {
                        out.errors.push(e);
                        continue;
                    }
                }
            }
            live.push(t);
        }
        let sock = &self.sock;
        for round in rounds.clone() {
            if round > 0 && !self.settings.interval.is_zero() {
                tokio::time::sleep(self.settings.interval).await;
            }
            if self.gate.as_ref().is_some_and(|g| !(g.0)()) {
                tracing::debug!("announcement withheld: the service lease is not running");
                out.suppressed += live.len() * (rounds.end - round) as usize;
                break;
            }
            for t in &live {
                let allowed = self
                    .limiter
                    .lock()
                    .expect("announce limiter poisoned")
                    .try_take(t, Instant::now());
                if !allowed {
                    out.suppressed += 1;
                    continue;
                }
                let link = &links[&t.iface];
                let mac = link.mac.expect("checked above");
                let (frame, proto) = match t.addr {
                    IpAddr::V4(v4) => (garp_frame(mac, v4, self.settings.reply_form), ETH_P_ARP),
                    IpAddr::V6(v6) => (
                        unsolicited_na_frame(mac, v6, self.settings.na_router_flag),
                        ETH_P_IPV6,
                    ),
                };
                let dst = if t.addr.is_ipv4() {
                    BROADCAST
                } else {
                    [0x33, 0x33, 0, 0, 0, 1]
                };
                match sock.send(link.index, dst, proto, &frame) {
                    Ok(()) => out.sent += 1,
                    Err(source) => out.errors.push(ResourceError::Announce {
                        iface: t.iface.clone(),
                        addr: t.addr,
                        source,
                    }),
                }
            }
        }
        tracing::debug!(
            sent = out.sent,
            suppressed = out.suppressed,
            errors = out.errors.len(),
            "announced {} address(es)",
            live.len()
        );
        out
    }

    /// For the gateway / ping-node `ips` reached through `iface`: deletes
    /// entries that are not usable now (STALE, INCOMPLETE, FAILED, DELAY,
    /// PROBE, NONE), then has the kernel resolve them at once (NTF_USE: its
    /// first ARP request / NS leaves immediately and the answer makes the entry
    /// REACHABLE) and sends one ARP request / NS of our own from an address of
    /// `iface` (which also refreshes the peer's entry for that address).
    /// REACHABLE, PERMANENT and NOARP entries are left alone.
    pub async fn refresh_neighbours(
        &self,
        iface: &str,
        ips: &[IpAddr],
    ) -> Result<Vec<NeighbourRefresh>, ResourceError> {
        let link = self.netlink.link(iface).await?;
        let addrs = self.netlink.addresses(Some(link.index)).await?;
        let sock = &self.sock;
        let mut report = Vec::new();
        for &ip in ips {
            let entries = self.netlink.neighbours(Some(link.index), ip).await?;
            let before = entries.first().map(|n| n.state);
            let healthy = matches!(
                before,
                Some(NeighState::Reachable | NeighState::Permanent | NeighState::Noarp)
            );
            if healthy {
                report.push(NeighbourRefresh {
                    ip,
                    before,
                    refreshed: false,
                });
                continue;
            }
            for n in &entries {
                self.netlink.del_neighbour(n).await?;
            }
            self.netlink.resolve_neighbour(&link, ip).await?;
            if let Some(mac) = link.mac {
                // Source: an address of ours on the same subnet, else any of
                // the same family (link-local allowed for IPv6).
                let src = addrs
                    .iter()
                    .filter(|a| a.addr.is_ipv4() == ip.is_ipv4())
                    .find(|a| in_subnet(ip, a.addr, a.prefix))
                    .or_else(|| addrs.iter().find(|a| a.addr.is_ipv4() == ip.is_ipv4()))
                    .map(|a| a.addr);
                let sent = match (src, ip) {
                    (Some(IpAddr::V4(s)), IpAddr::V4(t)) => sock.send(
                        link.index,
                        BROADCAST,
                        ETH_P_ARP,
                        &arp_request_frame(mac, s, t),
                    ),
                    (Some(IpAddr::V6(s)), IpAddr::V6(t)) => sock.send(
                        link.index,
                        solicited_node_mac(t),
                        ETH_P_IPV6,
                        &neighbour_solicitation_frame(mac, s, t),
                    ),
                    _ => Ok(()),
                };
                if let Err(e) = sent {
                    tracing::warn!("refresh_neighbours: sending a probe for {ip} on {iface}: {e}");
                }
            }
            report.push(NeighbourRefresh {
                ip,
                before,
                refreshed: true,
            });
        }
        Ok(report)
    }
}

// ----- the socket -----

/// A send-only AF_PACKET socket (protocol 0: receives nothing).
#[derive(Debug)]
pub(crate) struct PacketSocket(OwnedFd);

impl PacketSocket {
    pub(crate) fn open() -> std::io::Result<Self> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        Ok(PacketSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn send(
        &self,
        ifindex: u32,
        dst: [u8; 6],
        proto: u16,
        frame: &[u8],
    ) -> std::io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst);
        // SAFETY: frame and sll outlive the call; lengths are theirs.
        let n = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

// ----- frames (pure; unit-tested below and parsed back in the namespace tests) -----

fn eth_header(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(90);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn arp_frame(
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = eth_header(eth_dst, sha, ETH_P_ARP);
    f.extend_from_slice(&1u16.to_be_bytes()); // htype ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // ptype ipv4
    f.push(6);
    f.push(4);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0); // minimum Ethernet frame (without FCS)
    f
}

/// Gratuitous ARP for `ip` owned by `mac`: sender = target = `ip`, Ethernet
/// destination broadcast. Request form: op 1, target MAC ff:ff:ff:ff:ff:ff
/// (as `arping -U`); reply form: op 2, target MAC = `mac` (as `arping -A`).
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr, reply: bool) -> Vec<u8> {
    if reply {
        arp_frame(BROADCAST, 2, mac, ip, mac, ip)
    } else {
        arp_frame(BROADCAST, 1, mac, ip, BROADCAST, ip)
    }
}

/// A broadcast ARP request for `target` from `sender`.
pub fn arp_request_frame(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(BROADCAST, 1, mac, sender, [0; 6], target)
}

/// The ICMPv6 checksum over the IPv6 pseudo-header and `icmp`.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = if chunk.len() == 2 {
                u16::from_be_bytes([chunk[0], chunk[1]])
            } else {
                u16::from_be_bytes([chunk[0], 0])
            };
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv6_icmp_frame(
    eth_dst: [u8; 6],
    mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    let ck = icmpv6_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth_header(eth_dst, mac, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(58); // next header: ICMPv6
    f.push(255); // hop limit, required by RFC 4861
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// Unsolicited neighbour advertisement for `ip` owned by `mac`: to ff02::1,
/// override flag set, solicited flag clear, router flag as asked, with the
/// target link-layer address option.
pub fn unsolicited_na_frame(mac: [u8; 6], ip: Ipv6Addr, router: bool) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = vec![136, 0, 0, 0];
    let flags: u32 = 0x2000_0000 | if router { 0x8000_0000 } else { 0 };
    icmp.extend_from_slice(&flags.to_be_bytes());
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[2, 1]); // target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac);
    ipv6_icmp_frame([0x33, 0x33, 0, 0, 0, 1], mac, ip, all_nodes, icmp)
}

fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

fn solicited_node_mac(target: Ipv6Addr) -> [u8; 6] {
    let o = solicited_node(target).octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A neighbour solicitation for `target` from `src` (to its solicited-node
/// multicast address, with the source link-layer address option).
pub fn neighbour_solicitation_frame(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&mac);
    ipv6_icmp_frame(
        solicited_node_mac(target),
        mac,
        src,
        solicited_node(target),
        icmp,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x00, 0x1e, 0x68, 0x1e, 0x99, 0x5e];

    #[test]
    fn garp_request_and_reply_layout() {
        let ip: Ipv4Addr = "192.168.32.21".parse().unwrap();
        let f = garp_frame(MAC, ip, false);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &BROADCAST);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &ip.octets());
        assert_eq!(&f[38..42], &ip.octets());
        let r = garp_frame(MAC, ip, true);
        assert_eq!(&r[20..22], &[0, 2]);
        assert_eq!(&r[32..38], &MAC);
    }

    #[test]
    fn na_checksum_verifies() {
        let ip: Ipv6Addr = "fd00::21".parse().unwrap();
        let f = unsolicited_na_frame(MAC, ip, true);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(f[14 + 7], 255);
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4] & 0xe0, 0xa0); // router + override, not solicited
        // Summing a packet including its checksum gives 0 (i.e. !sum == 0).
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
        assert_eq!(icmpv6_checksum(src, dst, icmp), 0);
        let no_router = unsolicited_na_frame(MAC, ip, false);
        assert_eq!(no_router[54 + 4] & 0xe0, 0x20);
    }

    #[test]
    fn ns_goes_to_solicited_node() {
        let t: Ipv6Addr = "fd00::1:2:3".parse().unwrap();
        let f = neighbour_solicitation_frame(MAC, "fd00::21".parse().unwrap(), t);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
        assert_eq!(
            icmpv6_checksum(
                Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap()),
                Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap()),
                &f[54..]
            ),
            0
        );
    }

    #[test]
    fn limiter_allows_count_per_window() {
        let s = ArpSettings {
            count: 3,
            interval: Duration::from_millis(500),
            ..ArpSettings::default()
        };
        let mut l = RateLimiter::new(&s);
        assert_eq!(l.window(), Duration::from_millis(1500));
        let k = AnnounceTarget {
            iface: "eth0".into(),
            addr: "10.0.0.1".parse().unwrap(),
        };
        let other = AnnounceTarget {
            iface: "eth0".into(),
            addr: "10.0.0.2".parse().unwrap(),
        };
        let t0 = Instant::now();
        let taken = (0..100).filter(|_| l.try_take(&k, t0)).count();
        assert_eq!(taken, 3);
        assert!(l.try_take(&other, t0), "limits are per address");
        assert!(!l.try_take(&k, t0 + Duration::from_millis(1499)));
        assert!(l.try_take(&k, t0 + Duration::from_millis(1500)));
        // Interval zero still gets a window (MIN_WINDOW).
        let z = RateLimiter::new(&ArpSettings {
            count: 2,
            interval: Duration::ZERO,
            ..ArpSettings::default()
        });
        assert_eq!(z.window(), MIN_WINDOW);
    }
}
