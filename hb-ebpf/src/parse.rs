//! Header parsing: Ethernet (one 802.1Q/802.1ad tag), IPv4 or IPv6, UDP.
//! Anything that is not UDP to the heartbeat port returns None (XDP_PASS)
//! before any map is touched but the config array.

use aya_ebpf::programs::XdpContext;
use hb_common::{maps::KernelConfig, wire::PACKET_LEN};

use crate::maps::CONFIG;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;
const IPV6_HLEN: usize = 40;
const UDP_HLEN: usize = 8;

/// Where the UDP payload of a packet to our port starts, its length by the
/// UDP header, and the configuration it was matched against.
pub struct Payload {
    pub off: usize,
    pub len: usize,
    pub cfg: &'static KernelConfig,
}

#[inline(always)]
pub fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    let start = ctx.data();
    if start + off + N > ctx.data_end() {
        return None;
    }
    // SAFETY: bounds checked against data_end just above.
    Some(unsafe { *((start + off) as *const [u8; N]) })
}

#[inline(always)]
fn be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    bytes::<2>(ctx, off).map(u16::from_be_bytes)
}

/// The frame's ethertype past one 802.1Q/802.1ad tag, and where its
/// network header starts.
#[inline(always)]
pub fn ethertype(ctx: &XdpContext) -> Option<(u16, usize)> {
    let proto = be16(ctx, 12)?;
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        return Some((be16(ctx, ETH_HLEN + 2)?, ETH_HLEN + VLAN_HLEN));
    }
    Some((proto, ETH_HLEN))
}

#[inline(always)]
pub fn heartbeat_offset(ctx: &XdpContext) -> Option<Payload> {
    let (proto, l3) = ethertype(ctx)?;
    let l4 = if proto == ETH_P_IP {
        let [vihl, _] = bytes::<2>(ctx, l3)?;
        if vihl >> 4 != 4 {
            return None;
        }
        let [_, _, frag_hi, frag_lo, _, p] = bytes::<6>(ctx, l3 + 4)?;
        // More-fragments flag or a fragment offset: heartbeats never fragment.
        if p != IPPROTO_UDP || (frag_hi & 0x3f) != 0 || frag_lo != 0 {
            return None;
        }
        let ihl = ((vihl & 0x0f) as usize) * 4;
        if ihl < 20 {
            return None;
        }
        l3 + ihl
    } else if proto == ETH_P_IPV6 {
        let [next, _] = bytes::<2>(ctx, l3 + 6)?;
        if next != IPPROTO_UDP {
            return None;
        }
        l3 + IPV6_HLEN
    } else {
        return None;
    };
    let udp = bytes::<8>(ctx, l4)?;
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let cfg = CONFIG.get(0)?;
    if dport != cfg.udp_port {
        return None;
    }
    let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    Some(Payload {
        off: l4 + UDP_HLEN,
        len: ulen.saturating_sub(UDP_HLEN).min(PACKET_LEN + 1),
        cfg,
    })
}
