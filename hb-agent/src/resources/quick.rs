//! A takeover's first step, done synchronously on the thread that decided it
//! (the agent's event loop), before the group's worker runs the full start.
//!
//! Why: the failover benchmark's step times showed the hop from the event
//! loop to the resource thread costing 0.07-0.5 ms on a loaded 2-vCPU host
//! (the woken thread waits for a CPU), and the full start another 0.2-0.3 ms
//! of lookups before the address is up. A group whose first resource is an
//! IPv4 VIP on a prepared macvlan child (created and parked at agent start,
//! see `mac::macvlan_prepare`) needs only one netlink request (RTM_NEWADDR
//! on the child's index, known in advance) and one gratuitous ARP to be
//! served by this node. The worker's start follows at once and finds the
//! address in place (nothing changes twice); it also announces again,
//! sets the hostname and reports the group started.
//!
//! Only groups made of network identity alone qualify (no scripts: their
//! order matters and they may take seconds), and only when their first
//! resource is that macvlan VIP. Anything unexpected (child gone, another
//! index) fails the quick step with a reason; the worker's start then does
//! everything the usual way.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::announce::{AnnounceGate, ETH_P_ARP, PacketSocket, garp_frame};
use super::mac;
use super::netlink::{Netlink, default_broadcast};
use super::spec::{MacMode, ResourceSpec};
use super::{ArpSettings, ResourceError};

/// What the quick step puts up for one group, worked out at agent start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The parked macvlan child and its (virtual) MAC.
    pub iface: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// `IFA_F_*` flags, as the full start would add the address.
    pub flags: u32,
}

/// The plan for `specs`, if the group qualifies (see the module comment)
/// and its child is in place now.
pub async fn plan(
    nl: &Netlink,
    group: &str,
    specs: &[ResourceSpec],
) -> Result<Option<Plan>, ResourceError> {
    if !specs.iter().all(ResourceSpec::is_identity) {
        return Ok(None);
    }
    let Some(ResourceSpec::Mac {
        iface,
        mac: vmac,
        mode: MacMode::Macvlan { child },
        addr: Some((IpAddr::V4(addr), prefix)),
        ..
    }) = specs.first()
    else {
        return Ok(None);
    };
    let name = child.clone().unwrap_or_else(|| mac::child_name(group));
    let (Some(parent), Some(c)) = (nl.link_by_name(iface).await?, nl.link_by_name(&name).await?)
    else {
        return Ok(None);
    };
    if c.kind.as_deref() != Some("macvlan")
        || c.parent != Some(parent.index)
        || c.mac != Some(*vmac)
        || !c.up
    {
        return Ok(None);
    }
    let all = nl.addresses(None).await?;
    Ok(Some(Plan {
        iface: name,
        ifindex: c.index,
        mac: *vmac,
        addr: *addr,
        prefix: *prefix,
        flags: mac::vip_flags(&all, parent.index, IpAddr::V4(*addr), *prefix),
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

/// Longest wait for the kernel's answer (it answers within the request
/// itself; this only bounds a surprise).
const ANSWER_TIMEOUT: Duration = Duration::from_millis(100);

impl QuickStarter {
    pub fn open(arp: &ArpSettings, gate: Option<AnnounceGate>) -> std::io::Result<QuickStarter> {
        let mut nl = Socket::new(NETLINK_ROUTE)?;
        nl.bind_auto()?;
        nl.connect(&SocketAddr::new(0, 0))?;
        set_recv_timeout(&nl, ANSWER_TIMEOUT)?;
        Ok(QuickStarter {
            nl,
            packets: PacketSocket::open()?,
            reply_form: arp.reply_form,
            gate,
            seq: std::cell::Cell::new(0),
        })
    }

    /// Puts `p`'s address up and announces it once. Ok(true) when it was
    /// added, Ok(false) when it was there already.
    pub fn run(&self, p: &Plan) -> Result<bool, String> {
        let added = self.add_address(p)?;
        if self.gate.as_ref().is_none_or(|g| (g.0)()) {
            self.packets
                .send(
                    p.ifindex,
                    [0xff; 6],
                    ETH_P_ARP,
                    &garp_frame(p.mac, p.addr, self.reply_form),
                )
                .map_err(|e| format!("gratuitous ARP for {} on {}: {e}", p.addr, p.iface))?;
        }
        Ok(added)
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
            self.nl
                .recv(&mut answer, 0)
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
/// local = address, the subnet's broadcast, the plan's flags.
fn new_address_request(p: &Plan, seq: u32) -> Vec<u8> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = p.prefix;
    m.header.index = p.ifindex;
    let a = IpAddr::V4(p.addr);
    m.attributes.push(AddressAttribute::Local(a));
    m.attributes.push(AddressAttribute::Address(a));
    if let Some(b) = default_broadcast(p.addr, p.prefix) {
        m.attributes.push(AddressAttribute::Broadcast(b));
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

fn set_recv_timeout(s: &Socket, d: Duration) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt with a pointer to a timeval and its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
