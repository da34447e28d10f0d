//! One UDP socket per heartbeat link, as Heartbeat's bcast / mcast / ucast.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context as _, Result};
use socket2::{Domain, Protocol, Socket, Type};

/// How heartbeats leave on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkTarget {
    /// To 255.255.255.255 on `iface`.
    Bcast { iface: String },
    /// To a multicast group, out of `iface`.
    Mcast {
        iface: String,
        group: IpAddr,
        ttl: u32,
        loopback: bool,
    },
    /// To each peer address, out of `iface`.
    Ucast { iface: String, peers: Vec<IpAddr> },
}

impl LinkTarget {
    pub fn iface(&self) -> &str {
        match self {
            LinkTarget::Bcast { iface }
            | LinkTarget::Mcast { iface, .. }
            | LinkTarget::Ucast { iface, .. } => iface,
        }
    }
}

pub struct LinkSocket {
    pub target: LinkTarget,
    sock: Socket,
    dests: Vec<SocketAddr>,
}

impl LinkSocket {
    pub fn open(target: &LinkTarget, port: u16) -> Result<LinkSocket> {
        let iface = target.iface();
        let v6 = match target {
            LinkTarget::Mcast { group, .. } => group.is_ipv6(),
            LinkTarget::Ucast { peers, .. } => peers.first().is_some_and(|p| p.is_ipv6()),
            LinkTarget::Bcast { .. } => false,
        };
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .context("creating heartbeat socket")?;
        sock.bind_device(Some(iface.as_bytes()))
            .with_context(|| format!("binding heartbeat socket to {iface}"))?;
        // Heartbeats are tiny and time-critical: ask for the highest
        // priority queueing band the qdisc offers (TC_PRIO_CONTROL).
        let _ = sock.set_tos(0xc0);
        let _ = setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_PRIORITY, 7);
        let dests = match target {
            LinkTarget::Bcast { .. } => {
                sock.set_broadcast(true)?;
                vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), port)]
            }
            LinkTarget::Mcast {
                group,
                ttl,
                loopback,
                ..
            } => {
                let idx = crate::kernel::loader::ifindex(iface)?;
                match group {
                    IpAddr::V4(_) => {
                        set_multicast_if_index_v4(&sock, idx)?;
                        sock.set_multicast_ttl_v4(*ttl)?;
                        sock.set_multicast_loop_v4(*loopback)?;
                    }
                    IpAddr::V6(_) => {
                        sock.set_multicast_if_v6(idx)?;
                        sock.set_multicast_hops_v6(*ttl)?;
                        sock.set_multicast_loop_v6(*loopback)?;
                    }
                }
                vec![SocketAddr::new(*group, port)]
            }
            LinkTarget::Ucast { peers, .. } => {
                peers.iter().map(|p| SocketAddr::new(*p, port)).collect()
            }
        };
        sock.set_nonblocking(true)?;
        Ok(LinkSocket {
            target: target.clone(),
            sock,
            dests,
        })
    }

    /// Sends one packet to every destination; returns how many sends failed
    /// (a link that is down fails here and is simply not heard by peers).
    pub fn send(&self, pkt: &[u8]) -> usize {
        self.dests
            .iter()
            .filter(|d| self.sock.send_to(pkt, &(**d).into()).is_err())
            .count()
    }
}

/// setsockopt(2) with an int value, on any socket.
pub fn setsockopt_int(
    s: &impl std::os::fd::AsRawFd,
    level: i32,
    name: i32,
    val: i32,
) -> std::io::Result<()> {
    // SAFETY: valid fd and int option.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&val as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// IP_MULTICAST_IF by interface index (ip_mreqn), so the link need not have
/// an address of its own.
fn set_multicast_if_index_v4(s: &Socket, ifindex: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let m = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as i32,
    };
    // SAFETY: valid fd and struct.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&m as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
