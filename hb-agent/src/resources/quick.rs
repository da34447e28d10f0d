//! A takeover's first step, done synchronously on the thread that decided it
//! (the agent's event loop), before the group's worker runs the full start.
//!
//! Why: the failover benchmark's step times showed the hop from the event
//! loop to the resource thread costing 0.07-0.5 ms on a loaded 2-vCPU host
//! (the woken thread waits for a CPU), and the full start another 0.2-0.3 ms
//! of lookups before the address is up. A group whose first resource is an
//! IPv4 VIP on a prepared macvlan child (created and parked at agent start,
//! see `mac::macvlan_prepare`), or on a named interface, needs only one
//! netlink request (RTM_NEWADDR on an index known in advance) and one
//! gratuitous ARP to be served by this node. The worker's start follows at once and finds the
//! address in place (nothing changes twice); it also announces again,
//! sets the hostname and reports the group started.
//!
//! Only groups without scripts qualify (their order matters and they may
//! take seconds), and only when their first resource is that macvlan VIP,
//! or an IPv4 `IPaddr` on a named interface (announced with that
//! interface's MAC; not when the group also replaces a MAC): the rule is
//! `model::GroupResources::quick_candidate`, the lookups are here.
//! The plan (child index, flags) is read at agent start and again after
//! every operation on the group (`Worker`), so it follows the interfaces;
//! a child gone or renumbered since fails the step with a reason, and the
//! worker's start then does everything the usual way.
//!
//! The cost, accepted: the request takes the kernel's RTNL lock like any
//! address change, so while something else on the host holds it (deleting
//! an interface, detaching XDP: milliseconds) the event loop waits with it,
//! where before only the resource thread did. Kernel timers keep timing
//! peers meanwhile and the sender keeps heartbeating; events are handled
//! when the lock comes free, which is also when any takeover could proceed.
//! The kernel answers within the request itself, so reading the answer
//! never waits. The one gratuitous ARP is not counted by the announcer's
//! rate limit: a takeover announces `count` + 1 times.

use std::net::{IpAddr, Ipv4Addr};

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::announce::{AnnounceGate, ETH_P_ARP, PacketSocket, garp_frame};
use super::netlink::{Netlink, default_broadcast};
use super::spec::{IpSpec, ResourceSpec};
use super::{ArpSettings, ResourceError};
use super::{ipaddr, mac};
use crate::model::{GroupResources, QuickCandidate};

pub use hb_core::model::quick::{Done, Plan};

/// The plan for `specs`, if the group qualifies (see the module comment
/// and `GroupResources::quick_candidate`) and its interface is in place now.
pub async fn plan(
    nl: &Netlink,
    group: &str,
    specs: &[ResourceSpec],
) -> Result<Option<Plan>, ResourceError> {
    match GroupResources::new(group, specs).quick_candidate() {
        Err(_) => Ok(None),
        Ok(QuickCandidate::Macvlan {
            spec,
            child,
            addr,
            prefix,
        }) => macvlan_plan(nl, &spec.iface, &child, spec.mac, addr, prefix).await,
        Ok(QuickCandidate::Ip { spec, iface, addr }) => ip_plan(nl, spec, iface, addr).await,
    }
}

async fn ip_plan(
    nl: &Netlink,
    ip: &IpSpec,
    iface: &str,
    addr: Ipv4Addr,
) -> Result<Option<Plan>, ResourceError> {
    let Some(link) = nl.link_by_name(iface).await? else {
        return Ok(None);
    };
    let (Some(mac), true) = (link.mac, link.up) else {
        return Ok(None);
    };
    // A label the full start would refuse: leave it to say so.
    let Ok(label) = ipaddr::effective_label(iface, ip.label.as_deref()) else {
        return Ok(None);
    };
    // As the full start would put it up (quietly: this runs after
    // every operation; the start says when it falls back).
    let prefix = match ip.route_prefix {
        true => ipaddr::connected_prefix(nl, IpAddr::V4(addr), &link)
            .await?
            .unwrap_or(ip.prefix),
        false => ip.prefix,
    };
    Ok(Some(Plan {
        iface: iface.to_string(),
        ifindex: link.index,
        mac,
        addr,
        prefix,
        broadcast: ip.broadcast.or_else(|| default_broadcast(addr, prefix)),
        label,
        flags: 0,
    }))
}

async fn macvlan_plan(
    nl: &Netlink,
    parent: &str,
    child: &str,
    vmac: [u8; 6],
    addr: Ipv4Addr,
    prefix: u8,
) -> Result<Option<Plan>, ResourceError> {
    let (Some(parent), Some(c)) = (
        nl.link_by_name(parent).await?,
        nl.link_by_name(child).await?,
    ) else {
        return Ok(None);
    };
    if c.kind.as_deref() != Some("macvlan")
        || c.parent != Some(parent.index)
        || c.mac != Some(vmac)
        || !c.up
    {
        return Ok(None);
    }
    let all = nl.addresses(None).await?;
    Ok(Some(Plan {
        iface: child.to_string(),
        ifindex: c.index,
        mac: vmac,
        addr,
        prefix,
        broadcast: default_broadcast(addr, prefix),
        label: None,
        flags: mac::vip_flags(&all, parent.index, IpAddr::V4(addr), prefix),
    }))
}

/// The sockets for quick steps, opened once in the agent's namespace.
pub struct QuickStarter {
    nl: Socket,
    packets: PacketSocket,
    reply_form: bool,
    gate: Option<AnnounceGate>,
    seq: std::cell::Cell<u32>,
}

impl QuickStarter {
    pub fn open(arp: &ArpSettings, gate: Option<AnnounceGate>) -> std::io::Result<QuickStarter> {
        let mut nl = Socket::new(NETLINK_ROUTE)?;
        nl.bind_auto()?;
        nl.connect(&SocketAddr::new(0, 0))?;
        Ok(QuickStarter {
            nl,
            packets: PacketSocket::open()?,
            reply_form: arp.reply_form,
            gate,
            seq: std::cell::Cell::new(0),
        })
    }

    /// Puts `p`'s address up and announces it once.
    pub fn run(&self, p: &Plan) -> Result<Done, String> {
        // The index must still name the child: indexes are not reused
        // until they wrap, but a child can be deleted and recreated (and
        // the lookup takes no lock).
        let now = nix::net::if_::if_nametoindex(p.iface.as_str()).ok();
        if now != Some(p.ifindex) {
            return Err(format!(
                "{} is no longer interface #{} (now {now:?})",
                p.iface, p.ifindex
            ));
        }
        let added = self.add_address(p)?;
        let announced = self.gate.as_ref().is_none_or(|g| (g.0)());
        if announced {
            self.packets
                .send(
                    p.ifindex,
                    [0xff; 6],
                    ETH_P_ARP,
                    &garp_frame(p.mac, p.addr, self.reply_form),
                )
                .map_err(|e| format!("gratuitous ARP for {} on {}: {e}", p.addr, p.iface))?;
        }
        Ok(Done { added, announced })
    }

    fn add_address(&self, p: &Plan) -> Result<bool, String> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let buf = new_address_request(p, seq);
        self.nl
            .send(&buf, 0)
            .map_err(|e| format!("sending RTM_NEWADDR for {}: {e}", p.iface))?;
        let mut answer = Vec::with_capacity(4096);
        loop {
            answer.clear();
            // Queued by the time `send` returned: never wait here.
            self.nl
                .recv(&mut answer, libc::MSG_DONTWAIT)
                .map_err(|e| format!("reading the answer to RTM_NEWADDR on {}: {e}", p.iface))?;
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer)
                .map_err(|e| format!("parsing the answer to RTM_NEWADDR: {e}"))?;
            if msg.header.sequence_number != seq {
                continue; // a late answer to an earlier request
            }
            return match msg.payload {
                NetlinkPayload::Error(e) => match e.raw_code() {
                    0 => Ok(true),
                    c if -c == libc::EEXIST => Ok(false),
                    _ => Err(format!(
                        "adding {}/{} to {}: {}",
                        p.addr,
                        p.prefix,
                        p.iface,
                        e.to_io()
                    )),
                },
                other => Err(format!("unexpected answer to RTM_NEWADDR: {other:?}")),
            };
        }
    }
}

/// RTM_NEWADDR for `p`, as the full start sends it (`ipaddr::ensure_on`):
/// local = address, broadcast, label, flags.
fn new_address_request(p: &Plan, seq: u32) -> Vec<u8> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = p.prefix;
    m.header.index = p.ifindex;
    let a = IpAddr::V4(p.addr);
    m.attributes.push(AddressAttribute::Local(a));
    m.attributes.push(AddressAttribute::Address(a));
    if let Some(b) = p.broadcast {
        m.attributes.push(AddressAttribute::Broadcast(b));
    }
    if let Some(l) = &p.label {
        m.attributes.push(AddressAttribute::Label(l.clone()));
    }
    if p.flags != 0 {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
                p.flags,
            )));
    }
    let mut msg = NetlinkMessage::from(RouteNetlinkMessage::NewAddress(m));
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    msg.header.sequence_number = seq;
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            iface: "hb-vip1".into(),
            ifindex: 7,
            mac: [0x00, 0x1e, 0x68, 0x1e, 0x99, 0x5e],
            addr: Ipv4Addr::new(192, 168, 32, 21),
            prefix: 24,
            broadcast: Some(Ipv4Addr::new(192, 168, 32, 255)),
            label: None,
            flags: 0x200,
        }
    }

    #[test]
    fn request_carries_what_the_full_start_would_add() {
        let buf = new_address_request(&plan(), 42);
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).unwrap();
        assert_eq!(msg.header.sequence_number, 42);
        assert_eq!(
            msg.header.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) = msg.payload else {
            panic!("not RTM_NEWADDR");
        };
        assert_eq!(m.header.index, 7);
        assert_eq!(m.header.prefix_len, 24);
        let a = IpAddr::V4(Ipv4Addr::new(192, 168, 32, 21));
        assert!(m.attributes.contains(&AddressAttribute::Local(a)));
        assert!(m.attributes.contains(&AddressAttribute::Address(a)));
        assert!(
            m.attributes
                .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(
                    192, 168, 32, 255
                )))
        );
        assert!(m.attributes.iter().any(
            |x| matches!(x, AddressAttribute::Flags(f) if f.contains(AddressFlags::Noprefixroute))
        ));
    }
}
