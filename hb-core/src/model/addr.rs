//! Address arithmetic and names both the configuration and the
//! resources need: pure functions.

use std::net::{IpAddr, Ipv4Addr};

/// `aa:bb:cc:dd:ee:ff`, lower case.
pub fn fmt_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// True when `addr` lies in `net/prefix`.
pub fn in_subnet(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The conventional broadcast of `addr/prefix` (None for /31 and /32).
pub fn default_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    if prefix >= 31 {
        return None;
    }
    let host = u32::MAX >> u32::from(prefix);
    Some(Ipv4Addr::from(u32::from(addr) | host))
}

/// The default macvlan child name: `hb-<group>` when that fits the kernel's
/// 15 characters and the group name is made of `[A-Za-z0-9_.-]`; otherwise
/// `hb-<first 7 usable chars>-<4 hex digits of a hash of the group name>`, so
/// two long group names with the same beginning still get different children.
pub fn child_name(group: &str) -> String {
    let clean: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == group && group.len() <= 12 && !group.is_empty() {
        return format!("hb-{group}");
    }
    // FNV-1a, stable across builds and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in group.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let short: String = clean.chars().take(7).collect();
    format!("hb-{short}-{:04x}", h & 0xffff)
}
