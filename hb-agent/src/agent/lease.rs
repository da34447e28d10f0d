//! The service lease, agent side: which addresses the XDP program fences,
//! on which interfaces, and when a lapsed lease may run again.
//!
//! The sender renews `LEASE` to `send time + deadtime` with every heartbeat;
//! the kernel drops traffic for the guarded addresses past it (hb-ebpf
//! `guard`). Peers declare us dead no earlier than a deadtime after our last
//! heartbeat reached them, so a frozen node goes quiet before anyone takes
//! over. After a lapse the lease stays lapsed until this node holds nothing
//! (the hang rule has released it all); then it runs again.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hb_common::maps::{GuardConfig, MAX_GUARD_V4, MAX_GUARD_V6};
use tracing::{error, info, warn};

use crate::config::Group;
use crate::kernel::Kernel;
use crate::resources::{Resources, ipaddr};
use crate::sender::{Lease, clock};

/// The lease over the kernel's `LEASE` map; on hold from the start if the
/// lease in force (left by a previous agent, pinned) has already lapsed.
pub fn open(kernel: &Kernel, deadtime: Duration) -> Result<Arc<Lease>> {
    let until = kernel.lease_until()?;
    let lapsed = until != 0 && clock::now_ns() > until;
    let mut w = kernel.lease_writer()?;
    let mut failing = false;
    let sink = Box::new(move |until| match w.set(until) {
        Ok(()) => failing = false,
        Err(e) if !failing => {
            failing = true;
            error!("renewing the service lease: {e:#}");
        }
        Err(_) => {}
    });
    Ok(Arc::new(Lease::new(
        sink,
        deadtime.as_nanos() as u64,
        lapsed,
    )))
}

/// What [`fence`] set up.
pub struct Fenced {
    /// The `GUARD` value written.
    pub guard: GuardConfig,
    /// The addresses whose own interface runs the program (named in the
    /// configuration): only these can be withdrawn (see withdraw.rs).
    pub on_their_interface: Vec<IpAddr>,
}

/// Fences `groups`' service addresses: attaches the program to the
/// interfaces their traffic arrives on and fills `GUARD`.
pub async fn fence(
    kernel: &mut Kernel,
    groups: &[&Group],
    resources: &Resources,
) -> Result<Fenced> {
    let (addrs, ifaces, on_their_interface) = targets(groups, resources).await;
    for i in &ifaces {
        if !kernel.attachments().iter().any(|a| &a.iface == i) {
            kernel.attach(i)?;
        }
    }
    let guard = guard_config(&addrs);
    kernel.set_guard(guard)?;
    info!(
        addresses = addrs.len(),
        interfaces = %ifaces.join(","),
        "service lease fences the service addresses"
    );
    Ok(Fenced {
        guard,
        on_their_interface,
    })
}

/// Service addresses of `groups`, the interfaces their traffic arrives on
/// (looked up here for an address whose interface is not named), and the
/// addresses whose interface the configuration names (an address found by
/// subnet may end up elsewhere when it is started).
async fn targets(
    groups: &[&Group],
    resources: &Resources,
) -> (Vec<IpAddr>, Vec<String>, Vec<IpAddr>) {
    let mut addrs = Vec::new();
    let mut ifaces: Vec<String> = Vec::new();
    let mut named = Vec::new();
    for g in groups {
        for sa in g.facts().service_addresses() {
            let addr = sa.addr;
            if sa.named() && !named.contains(&addr) {
                named.push(addr);
            }
            let iface = match sa.arrives_on {
                Some(i) => Some(i.to_string()),
                None => ipaddr::find_interface(resources.netlink(), addr)
                    .await
                    .map(|l| l.name)
                    .map_err(|e| {
                        warn!(group = %g.name, %addr, error = %e, "service lease: no interface for the address yet; fencing it on the heartbeat links only");
                    })
                    .ok(),
            };
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
            if let Some(i) = iface
                && !ifaces.contains(&i)
            {
                ifaces.push(i);
            }
        }
    }
    (addrs, ifaces, named)
}

/// The `GUARD` value for `addrs`; addresses beyond the map's room are
/// reported and left unfenced.
pub fn guard_config(addrs: &[IpAddr]) -> GuardConfig {
    let mut g = GuardConfig::default();
    for a in addrs {
        match a {
            IpAddr::V4(v4) if (g.v4_count as usize) < MAX_GUARD_V4 => {
                g.v4[g.v4_count as usize] = u32::from_ne_bytes(v4.octets());
                g.v4_count += 1;
            }
            IpAddr::V6(v6) if (g.v6_count as usize) < MAX_GUARD_V6 => {
                g.v6[g.v6_count as usize] = v6.octets();
                g.v6_count += 1;
            }
            _ => {
                warn!(addr = %a, "service lease: too many service addresses; this one is not fenced")
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_config_packs_both_families_in_wire_order() {
        let g = guard_config(&[
            "192.168.32.21".parse().unwrap(),
            "fd00::21".parse().unwrap(),
            "192.168.32.22".parse().unwrap(),
        ]);
        assert_eq!((g.v4_count, g.v6_count), (2, 1));
        assert_eq!(g.v4[0].to_ne_bytes(), [192, 168, 32, 21]);
        assert_eq!(g.v4[1].to_ne_bytes(), [192, 168, 32, 22]);
        assert_eq!(g.v6[0][0..2], [0xfd, 0]);
        assert_eq!(g.v6[0][15], 0x21);
    }

    #[test]
    fn guard_config_keeps_the_first_addresses_that_fit() {
        let many: Vec<IpAddr> = (0..40u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let g = guard_config(&many);
        assert_eq!(g.v4_count as usize, MAX_GUARD_V4);
        assert_eq!(g.v4[MAX_GUARD_V4 - 1].to_ne_bytes(), [10, 0, 0, 15]);
    }
}
