//! The service lease guard: traffic for a guarded service address (IPv4 or
//! IPv6 destination, ARP or neighbour-solicitation target) is dropped once
//! this node's lease has lapsed, i.e. once its own heartbeats have been
//! silent for a deadtime. The peers' kernels declare it dead no earlier than
//! that, so a frozen node (SIGSTOP, VM pause, stuck agent) stops answering
//! for its VIPs before anyone else starts: no two nodes answer at once, even
//! while the frozen node still has the addresses configured.
//!
//! A released address is dropped the same way, lease or not, while the
//! agent is still removing it (`WITHDRAWN`): a release takes effect on the
//! wire in the time of one map write.
//!
//! Pass-through cost when nothing is guarded: one array lookup.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use hb_common::maps::{GuardConfig, MAX_GUARD_V4, MAX_GUARD_V6, WITHDRAWN_V6_SHIFT, counter};

use crate::maps::{GUARD, LEASE, WITHDRAWN};
use crate::parse::{ETH_P_IP, ETH_P_IPV6, bytes, ethertype};

const ETH_P_ARP: u16 = 0x0806;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_SOLICIT: u8 = 135;

/// Why a packet for a guarded address must be dropped: the drop counter
/// to bump, or None to let it through.
#[inline(always)]
pub fn blocks(ctx: &XdpContext) -> Option<u32> {
    let g = GUARD.get(0)?;
    if g.v4_count == 0 && g.v6_count == 0 {
        return None;
    }
    let bit = guarded(ctx, g)?;
    if bit == 0 {
        return None;
    }
    if WITHDRAWN.get(0).copied().unwrap_or(0) & bit != 0 {
        return Some(counter::WITHDRAWN);
    }
    let until = LEASE.get(0).copied().unwrap_or(0);
    // SAFETY: plain helper call.
    if unsafe { bpf_ktime_get_ns() } > until {
        return Some(counter::LEASE_EXPIRED);
    }
    None
}

/// The `WITHDRAWN` bit of the guarded address the packet is for (0: none).
#[inline(always)]
fn guarded(ctx: &XdpContext, g: &GuardConfig) -> Option<u64> {
    let (proto, l3) = ethertype(ctx)?;
    if proto == ETH_P_IP {
        // Destination address.
        return Some(v4_bit(g, u32::from_ne_bytes(bytes::<4>(ctx, l3 + 16)?)));
    }
    if proto == ETH_P_ARP {
        // Target protocol address of an Ethernet/IPv4 ARP packet.
        return Some(v4_bit(g, u32::from_ne_bytes(bytes::<4>(ctx, l3 + 24)?)));
    }
    if proto == ETH_P_IPV6 {
        let bit = v6_bit(g, bytes::<16>(ctx, l3 + 24)?);
        if bit != 0 {
            return Some(bit);
        }
        // Neighbour solicitation for the address: its target follows the
        // 8-byte ICMPv6 header (destination is a solicited-node group).
        let [next, _] = bytes::<2>(ctx, l3 + 6)?;
        if next == IPPROTO_ICMPV6 {
            let [ty, _] = bytes::<2>(ctx, l3 + 40)?;
            if ty == ND_NEIGHBOR_SOLICIT {
                return Some(v6_bit(g, bytes::<16>(ctx, l3 + 48)?));
            }
        }
    }
    Some(0)
}

#[inline(always)]
fn v4_bit(g: &GuardConfig, a: u32) -> u64 {
    let n = g.v4_count as usize;
    for i in 0..MAX_GUARD_V4 {
        if i >= n {
            break;
        }
        if g.v4[i] == a {
            return 1 << i;
        }
    }
    0
}

#[inline(always)]
fn halves(a: &[u8; 16]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&a[..8]);
    hi.copy_from_slice(&a[8..]);
    (u64::from_ne_bytes(lo), u64::from_ne_bytes(hi))
}

#[inline(always)]
fn v6_bit(g: &GuardConfig, a: [u8; 16]) -> u64 {
    let n = g.v6_count as usize;
    let a = halves(&a);
    for i in 0..MAX_GUARD_V6 {
        if i >= n {
            break;
        }
        if halves(&g.v6[i]) == a {
            return 1 << (WITHDRAWN_V6_SHIFT + i);
        }
    }
    0
}
