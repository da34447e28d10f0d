//! Withdrawing a group's service addresses in the kernel before removing
//! them: the hand-over's first step.
//!
//! A release used to end, on the wire, when its address left the
//! interface, after the hostname went back (resources stop right to left):
//! about 0.5-1 ms of netlink calls during which nobody answered, and only
//! then did the peers hear "released". Now, once only network identity is
//! left to stop (addresses, macvlan MACs, hostnames), the worker sets the
//! addresses' bits in the XDP program's `WITHDRAWN` map: from that write
//! on, the kernel drops all traffic for them (IP, ARP, neighbour
//! solicitations), the group is reported released and the peers may take
//! it over while the addresses are still being removed here (a group of
//! identity only: once a peer serves it; a group with scripts: right away).
//! The removal, or the next start of the group, clears its bits.
//!
//! Only addresses the service lease guards can be withdrawn (the guard
//! list is the map's index); a group with any other address, or with a MAC
//! replaced on the interface itself (that interface would keep sending with
//! the virtual MAC), is released the old way: everything stopped first
//! (`model::GroupResources::withdrawable_addresses` says which).

use std::net::IpAddr;
use std::sync::Mutex;

use hb_common::maps::{GuardConfig, MAX_GUARD_V4, MAX_GUARD_V6, WITHDRAWN_V6_SHIFT, WithdrawnBits};
use tracing::error;

use crate::kernel::maps::WithdrawnWriter;

/// The `WITHDRAWN` map and the guard list that indexes it. Shared by the
/// event loop and the resource workers (one write per release and start).
pub struct Withdrawal {
    guard: GuardConfig,
    /// Guarded addresses whose own interface runs the program: an address
    /// fenced on the heartbeat links only would go on answering there.
    withdrawable: Vec<IpAddr>,
    map: Mutex<(WithdrawnWriter, WithdrawnBits)>,
}

impl Withdrawal {
    /// Starts with nothing withdrawn. (`WITHDRAWN` is not pinned: a new
    /// program starts with it empty.)
    pub fn new(
        guard: GuardConfig,
        withdrawable: Vec<IpAddr>,
        mut writer: WithdrawnWriter,
    ) -> anyhow::Result<Withdrawal> {
        writer.set(0)?;
        Ok(Withdrawal {
            guard,
            withdrawable,
            map: Mutex::new((writer, 0)),
        })
    }

    /// Withdraws `addrs`; false (nothing changed) if one of them cannot be
    /// withdrawn or the map write failed.
    pub fn withdraw(&self, addrs: &[IpAddr]) -> bool {
        if !addrs.iter().all(|a| self.withdrawable.contains(a)) {
            return false;
        }
        let Some(bits) = bits_of(&self.guard, addrs) else {
            return false;
        };
        self.update("withdrawing", |b| b | bits)
    }

    /// Lets `addrs` be answered again (before a start, after a removal);
    /// false if the map write failed.
    pub fn restore(&self, addrs: &[IpAddr]) -> bool {
        let bits: WithdrawnBits = addrs
            .iter()
            .filter_map(|a| bits_of(&self.guard, std::slice::from_ref(a)))
            .fold(0, |acc, b| acc | b);
        bits == 0 || self.update("restoring", |b| b & !bits)
    }

    fn update(&self, what: &str, f: impl FnOnce(WithdrawnBits) -> WithdrawnBits) -> bool {
        let mut m = self.map.lock().expect("withdrawn map poisoned");
        let next = f(m.1);
        if next == m.1 {
            return true;
        }
        match m.0.set(next) {
            Ok(()) => {
                m.1 = next;
                true
            }
            Err(e) => {
                error!("{what} service addresses: {e:#}");
                false
            }
        }
    }
}

/// The `WITHDRAWN` bits of `addrs`, None if one is not in the guard list
/// (or there are none).
pub fn bits_of(g: &GuardConfig, addrs: &[IpAddr]) -> Option<WithdrawnBits> {
    if addrs.is_empty() {
        return None;
    }
    let mut bits = 0;
    for a in addrs {
        let bit = match a {
            IpAddr::V4(v4) => {
                let w = u32::from_ne_bytes(v4.octets());
                (0..(g.v4_count as usize).min(MAX_GUARD_V4)).find(|&i| g.v4[i] == w)?
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                WITHDRAWN_V6_SHIFT
                    + (0..(g.v6_count as usize).min(MAX_GUARD_V6)).find(|&i| g.v6[i] == o)?
            }
        };
        bits |= 1 << bit;
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::lease::guard_config;

    #[test]
    fn bits_follow_the_guard_list_v4_low_v6_from_bit_16() {
        let v4a: IpAddr = "192.168.32.21".parse().unwrap();
        let v4b: IpAddr = "192.168.32.22".parse().unwrap();
        let v6: IpAddr = "fd00::21".parse().unwrap();
        let g = guard_config(&[v4a, v6, v4b]);
        assert_eq!(bits_of(&g, &[v4a]), Some(1));
        assert_eq!(bits_of(&g, &[v4b]), Some(2));
        assert_eq!(bits_of(&g, &[v6]), Some(1 << 16));
        assert_eq!(bits_of(&g, &[v4b, v6]), Some(2 | 1 << 16));
    }

    #[test]
    fn an_unguarded_address_withdraws_nothing() {
        let g = guard_config(&["192.168.32.21".parse().unwrap()]);
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(bits_of(&g, &[other]), None);
        assert_eq!(
            bits_of(&g, &["192.168.32.21".parse().unwrap(), other]),
            None
        );
        assert_eq!(bits_of(&g, &[]), None);
    }
}
