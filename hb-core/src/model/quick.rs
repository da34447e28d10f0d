//! The quick takeover step's plan and outcome, as data (hb-agent's
//! resources/quick.rs works the plan out through netlink and runs it).

use std::net::Ipv4Addr;

/// What the quick step puts up for one group, worked out at agent start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where the address goes (a parked macvlan child, or the interface an
    /// `IPaddr` names) and the MAC its gratuitous ARP carries.
    pub iface: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// `IFA_F_*` flags, as the full start would add the address.
    pub flags: u32,
}

/// What a quick step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The address was added (false: it was there already).
    pub added: bool,
    /// The gratuitous ARP went out (false: the service lease holds it back).
    pub announced: bool,
}
