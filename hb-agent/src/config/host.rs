//! What reading an ha.d directory asks of the host, as Heartbeat asked it:
//! names in `ucast`/`ping` are resolved (Heartbeat's ucast plugin called
//! gethostbyname() on its target, `ucast: cannot resolve hostname`), a
//! `ucast` line naming this host's own address is not sent to, and an IP
//! resource without a netmask takes it from the connected route (Heartbeat's
//! findif searched the routing table). Tests give a [`Host`] of their own.
use std::net::{IpAddr, ToSocketAddrs};

/// One address of this host: its interface and its connected prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    pub iface: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

pub trait Host {
    /// A name's addresses, as the system resolver gives them (first first).
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String>;
    /// This host's addresses; empty when they cannot be listed.
    fn addresses(&self) -> Vec<HostAddr>;
}

/// The machine this runs on: getaddrinfo() and getifaddrs().
pub struct SystemHost;

impl Host for SystemHost {
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let addrs = (name, 0)
            .to_socket_addrs()
            .map_err(|e| format!("`{name}` does not resolve: {e}"))?;
        let mut out: Vec<IpAddr> = Vec::new();
        for a in addrs {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        if out.is_empty() {
            return Err(format!("`{name}` does not resolve: no address"));
        }
        Ok(out)
    }

    fn addresses(&self) -> Vec<HostAddr> {
        let Ok(all) = nix::ifaddrs::getifaddrs() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ifa in all {
            let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
                continue;
            };
            let (addr, prefix) = if let (Some(a), Some(m)) =
                (addr.as_sockaddr_in(), mask.as_sockaddr_in())
            {
                (IpAddr::V4(a.ip()), u32::from(m.ip()).leading_ones() as u8)
            } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                (IpAddr::V6(a.ip()), u128::from(m.ip()).leading_ones() as u8)
            } else {
                continue;
            };
            out.push(HostAddr {
                iface: ifa.interface_name,
                addr,
                prefix,
            });
        }
        out
    }
}

/// The connected subnet of this host that holds `addr`: the interface
/// holding `addr` itself first, else the longest prefix (as findif and
/// `resources::ipaddr::find_interface` choose). Loopback is skipped.
pub fn connected(addrs: &[HostAddr], addr: IpAddr) -> Option<&HostAddr> {
    if let Some(exact) = addrs.iter().find(|a| a.addr == addr) {
        return Some(exact);
    }
    addrs
        .iter()
        .filter(|a| !a.addr.is_loopback() && a.addr.is_ipv4() == addr.is_ipv4())
        .filter(|a| crate::model::in_subnet(addr, a.addr, a.prefix))
        .fold(None::<&HostAddr>, |best, a| match best {
            Some(b) if b.prefix >= a.prefix => Some(b),
            _ => Some(a),
        })
}

/// A fixed host, for tests and for reading a directory as another machine.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    pub names: Vec<(String, Vec<IpAddr>)>,
    pub addrs: Vec<HostAddr>,
}

impl Host for FakeHost {
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        self.names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("`{name}` does not resolve"))
    }

    fn addresses(&self) -> Vec<HostAddr> {
        self.addrs.clone()
    }
}
