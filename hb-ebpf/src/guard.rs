//! The service lease guard: traffic for a guarded service address (IPv4 or
//! IPv6 destination, ARP or neighbour-solicitation target) is dropped once
//! this node's lease has lapsed, i.e. once its own heartbeats have been
//! silent for a deadtime. The peers' kernels declare it dead no earlier than
//! that, so a frozen node (SIGSTOP, VM pause, stuck agent) stops answering
//! for its VIPs before anyone else starts: no two nodes answer at once, even
//! while the frozen node still has the addresses configured.
//!
//! Pass-through cost when nothing is guarded: one array lookup.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use hb_common::maps::{GuardConfig, MAX_GUARD_V4, MAX_GUARD_V6};

use crate::maps::{GUARD, LEASE};
use crate::parse::{ETH_P_IP, ETH_P_IPV6, bytes, ethertype};

const ETH_P_ARP: u16 = 0x0806;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_SOLICIT: u8 = 135;

/// True if the packet is for a guarded address and the lease has lapsed.
#[inline(always)]
pub fn blocks(ctx: &XdpContext) -> bool {
    let Some(g) = GUARD.get(0) else {
        return false;
    };
    if g.v4_count == 0 && g.v6_count == 0 {
        return false;
    }
    if !guarded(ctx, g).unwrap_or(false) {
        return false;
    }
    let until = LEASE.get(0).copied().unwrap_or(0);
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() > until }
}

#[inline(always)]
fn guarded(ctx: &XdpContext, g: &GuardConfig) -> Option<bool> {
    let (proto, l3) = ethertype(ctx)?;
    if proto == ETH_P_IP {
        // Destination address.
        return Some(has_v4(g, u32::from_ne_bytes(bytes::<4>(ctx, l3 + 16)?)));
    }
    if proto == ETH_P_ARP {
        // Target protocol address of an Ethernet/IPv4 ARP packet.
        return Some(has_v4(g, u32::from_ne_bytes(bytes::<4>(ctx, l3 + 24)?)));
    }
    if proto == ETH_P_IPV6 {
        if has_v6(g, bytes::<16>(ctx, l3 + 24)?) {
            return Some(true);
        }
        // Neighbour solicitation for the address: its target follows the
        // 8-byte ICMPv6 header (destination is a solicited-node group).
        let [next, _] = bytes::<2>(ctx, l3 + 6)?;
        if next == IPPROTO_ICMPV6 {
            let [ty, _] = bytes::<2>(ctx, l3 + 40)?;
            if ty == ND_NEIGHBOR_SOLICIT {
                return Some(has_v6(g, bytes::<16>(ctx, l3 + 48)?));
            }
        }
    }
    Some(false)
}

#[inline(always)]
fn has_v4(g: &GuardConfig, a: u32) -> bool {
    let n = g.v4_count as usize;
    for i in 0..MAX_GUARD_V4 {
        if i >= n {
            break;
        }
        if g.v4[i] == a {
            return true;
        }
    }
    false
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
fn has_v6(g: &GuardConfig, a: [u8; 16]) -> bool {
    let n = g.v6_count as usize;
    let a = halves(&a);
    for i in 0..MAX_GUARD_V6 {
        if i >= n {
            break;
        }
        if halves(&g.v6[i]) == a {
            return true;
        }
    }
    false
}
