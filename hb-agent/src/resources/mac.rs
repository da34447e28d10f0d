//! MAC takeover, in two modes.
//!
//! **Replace** (the seed's Remac scripts, without their copy-paste slips): at
//! start the interface's *current* real MAC, up/down state, addresses (all but
//! link-scope) and the main-table routes out of it that the kernel does not
//! recreate itself (everything but proto kernel / ra, e.g. the default route)
//! are read and saved, in memory and in the group's state file, *before*
//! anything is changed. Then: link down, virtual MAC, up; if a VIP is given, the
//! real addresses are removed and the VIP added (without a VIP the real
//! addresses stay and only the MAC changes); the default route is set via
//! `gateway`, or via the previous default gateway when none is given. Stop puts
//! back exactly what was read. One interface can be replaced by one group at a
//! time: a second group asking is refused with a Conflict (it could only work by
//! silently breaking the first one; use Macvlan mode for several VMACs).
//!
//! **Macvlan**: a macvlan child (mode bridge) named `child`, or
//! [`child_name`]`(group)`, is created on the parent with the virtual MAC, set
//! up, and carries the VIP; stop parks it (see `macvlan_stop`). The parent is not touched. Note
//! that the parent, with Linux's default `arp_ignore=0`, also answers ARP for
//! the VIP with its own MAC; set `net.ipv4.conf.<parent>.arp_ignore=1` where
//! that matters (this module leaves the parent's sysctls alone).
pub use crate::model::addr::child_name;
use std::net::IpAddr;

use super::ResourceState;
use super::announce::AnnounceTarget;
use super::error::ResourceError;
use super::ipaddr;
use super::netlink::{Address, Link, MacvlanMode, Netlink, Route, fmt_mac};
use super::spec::{MacMode, MacSpec};
use super::state::{MacSaved, StateStore};

const RTPROT_KERNEL: u8 = 2;
const RTPROT_RA: u8 = 9;
const RTN_UNICAST: u8 = 1;

/// What a MAC resource start or stop did.
#[derive(Debug, Default)]
pub struct MacOutcome {
    pub changed: bool,
    /// Addresses to announce (the VIP after start; the restored real addresses
    /// after a Replace stop).
    pub targets: Vec<AnnounceTarget>,
    /// The interfaces of `targets` as they are now (index and MAC), when
    /// known without asking the kernel again.
    pub links: Vec<Link>,
}

fn check_ifname(name: &str) -> Result<(), ResourceError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.contains(['/', ':'])
        && !name.chars().any(char::is_whitespace)
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(ResourceError::Invalid {
            resource: format!("macvlan child {name:?}"),
            why: "an interface name is 1-15 characters without '/', ':' or spaces".into(),
        })
    }
}

fn target(iface: &str, addr: IpAddr) -> AnnounceTarget {
    AnnounceTarget {
        iface: iface.to_string(),
        addr,
    }
}

/// Starts `spec` for `group`: the interface itself (replace) or the
/// group's macvlan child takes the MAC.
pub async fn start(
    nl: &Netlink,
    store: &StateStore,
    group: &str,
    spec: &MacSpec,
) -> Result<MacOutcome, ResourceError> {
    match spec.child(group) {
        None => replace_start(nl, store, group, spec).await,
        Some(child) => macvlan_start(nl, &spec.iface, &child, spec.mac, spec.addr).await,
    }
}

pub async fn stop(
    nl: &Netlink,
    store: &StateStore,
    group: &str,
    spec: &MacSpec,
) -> Result<MacOutcome, ResourceError> {
    match spec.child(group) {
        None => replace_stop(nl, store, group, &spec.iface, spec.mac).await,
        Some(child) => macvlan_stop(nl, &spec.iface, &child).await,
    }
}

pub async fn status(
    nl: &Netlink,
    group: &str,
    spec: &MacSpec,
) -> Result<ResourceState, ResourceError> {
    let link_name = spec.link(group);
    let check_route = match spec.mode {
        MacMode::Replace => spec.gateway,
        MacMode::Macvlan { .. } => None,
    };
    let iface = spec.iface.as_str();
    let Some(link) = nl.link_by_name(&link_name).await? else {
        return Ok(ResourceState::Absent);
    };
    if link.mac != Some(spec.mac) {
        return Ok(ResourceState::Absent);
    }
    let mut missing = Vec::new();
    if let MacMode::Macvlan { .. } = spec.mode {
        let parent = nl.link(iface).await?;
        if link.kind.as_deref() != Some("macvlan") || link.parent != Some(parent.index) {
            return Ok(ResourceState::Partial(format!(
                "{link_name} exists but is not a macvlan child of {iface}"
            )));
        }
    }
    if let MacMode::Macvlan { .. } = spec.mode
        && nl
            .addresses(Some(link.index))
            .await?
            .iter()
            .all(|a| a.is_link_local_scope())
    {
        // Parked: created in advance or released.
        return Ok(ResourceState::Absent);
    }
    if !link.up {
        missing.push(format!("{link_name} is down"));
    }
    if let Some((a, p)) = spec.addr {
        let present = nl.addresses(Some(link.index)).await?;
        if !present.iter().any(|x| x.addr == a && x.prefix == p) {
            missing.push(format!("{a}/{p} missing on {link_name}"));
        }
    }
    if let Some(gw) = check_route {
        let routes = nl.default_routes(gw.is_ipv6()).await?;
        if !routes
            .iter()
            .any(|r| r.gateway == Some(gw) && r.oif == Some(link.index))
        {
            missing.push(format!("no default route via {gw} dev {link_name}"));
        }
    }
    if missing.is_empty() {
        Ok(ResourceState::InPlace)
    } else {
        Ok(ResourceState::Partial(missing.join("; ")))
    }
}

// ----- replace -----

async fn read_identity(
    nl: &Netlink,
    link: &Link,
    vmac: [u8; 6],
    addr: Option<(IpAddr, u8)>,
) -> Result<MacSaved, ResourceError> {
    let real_mac = link.mac.ok_or_else(|| ResourceError::Invalid {
        resource: format!("MAC takeover on {}", link.name),
        why: "the interface has no hardware address".into(),
    })?;
    let addresses: Vec<Address> = nl
        .addresses(Some(link.index))
        .await?
        .into_iter()
        .filter(|a| !a.is_link_local_scope())
        .collect();
    let mut routes = Vec::new();
    for v6 in [false, true] {
        routes.extend(nl.routes(v6).await?.into_iter().filter(|r| {
            r.oif == Some(link.index)
                && r.protocol != RTPROT_KERNEL
                && r.protocol != RTPROT_RA
                && r.kind == RTN_UNICAST
        }));
    }
    Ok(MacSaved {
        iface: link.name.clone(),
        real_mac,
        virtual_mac: vmac,
        was_up: link.up,
        addresses,
        routes,
        vip: addr,
    })
}

async fn replace_start(
    nl: &Netlink,
    store: &StateStore,
    group: &str,
    spec: &MacSpec,
) -> Result<MacOutcome, ResourceError> {
    let MacSpec {
        iface,
        mac: vmac,
        addr,
        gateway,
        ..
    } = spec;
    let (iface, vmac, addr, gateway) = (iface.as_str(), *vmac, *addr, *gateway);
    let link = nl.link(iface).await?;
    let saved = store.get(group).mac.into_iter().find(|m| m.iface == iface);
    let saved = match saved {
        Some(s) => s,
        None => {
            let other = store
                .snapshot()
                .into_iter()
                .find(|(g, st)| g != group && st.mac.iter().any(|m| m.iface == iface));
            if let Some((other, _)) = other {
                return Err(ResourceError::Conflict {
                    what: format!("MAC of {iface}"),
                    why: format!(
                        "group {other} already replaced it; one MAC replace per interface (use macvlan mode)"
                    ),
                });
            }
            if link.mac == Some(vmac) {
                return Err(ResourceError::Conflict {
                    what: format!("MAC of {iface}"),
                    why: format!(
                        "it already is the virtual MAC {} but no saved state of its real identity exists ({})",
                        fmt_mac(&vmac),
                        store.path(group).display()
                    ),
                });
            }
            let s = read_identity(nl, &link, vmac, addr).await?;
            store.update(group, |st| st.mac.push(s.clone()))?;
            tracing::info!(
                group,
                iface,
                real_mac = %fmt_mac(&s.real_mac),
                addresses = s.addresses.len(),
                routes = s.routes.len(),
                "saved real identity before MAC takeover"
            );
            s
        }
    };

    let mut out = MacOutcome::default();
    if link.mac != Some(vmac) {
        nl.set_up(&link, false).await?;
        nl.set_mac(&link, vmac).await?;
        nl.set_up(&link, true).await?;
        out.changed = true;
        tracing::info!(iface, mac = %fmt_mac(&vmac), "virtual MAC set");
    } else if !link.up {
        nl.set_up(&link, true).await?;
        out.changed = true;
    }
    let link = nl.link(iface).await?;

    match addr {
        Some((vip, prefix)) => {
            for a in &saved.addresses {
                if (a.addr, a.prefix) != (vip, prefix)
                    && nl.del_address(&link, a.addr, a.prefix).await?
                {
                    out.changed = true;
                }
            }
            out.changed |=
                ipaddr::ensure_on(nl, &link, &ipaddr::Wanted::plain(vip, prefix), None).await?;
            out.targets.push(target(iface, vip));
            let previous = saved
                .routes
                .iter()
                .find(|r| r.is_default() && r.v6 == vip.is_ipv6())
                .and_then(|r| r.gateway);
            if let Some(gw) = gateway.or(previous) {
                out.changed |= ensure_default_route(nl, &link, gw).await?;
            }
        }
        None => {
            // MAC only: the real addresses stay (IPv6 ones were flushed by the
            // link going down) and the routes the down flushed come back.
            for a in &saved.addresses {
                let a = Address {
                    index: link.index,
                    ..a.clone()
                };
                out.changed |= nl.add_address(&link, &a, true).await?;
                out.targets.push(target(iface, a.addr));
            }
            for r in &saved.routes {
                if r.is_default() && gateway.is_some_and(|g| g.is_ipv6() == r.v6) {
                    continue;
                }
                let r = Route {
                    oif: Some(link.index),
                    ..r.clone()
                };
                out.changed |= nl.add_route(&r).await?;
            }
            if let Some(gw) = gateway {
                out.changed |= ensure_default_route(nl, &link, gw).await?;
            }
        }
    }
    Ok(out)
}

async fn ensure_default_route(
    nl: &Netlink,
    link: &Link,
    gw: IpAddr,
) -> Result<bool, ResourceError> {
    let present = nl.default_routes(gw.is_ipv6()).await?;
    if present
        .iter()
        .any(|r| r.gateway == Some(gw) && r.oif == Some(link.index))
    {
        return Ok(false);
    }
    nl.replace_default_route(link, gw).await?;
    Ok(true)
}

async fn replace_stop(
    nl: &Netlink,
    store: &StateStore,
    group: &str,
    iface: &str,
    vmac: [u8; 6],
) -> Result<MacOutcome, ResourceError> {
    let saved = store.get(group).mac.into_iter().find(|m| m.iface == iface);
    let Some(saved) = saved else {
        return match nl.link_by_name(iface).await? {
            Some(l) if l.mac == Some(vmac) => Err(ResourceError::Conflict {
                what: format!("MAC of {iface}"),
                why: format!(
                    "it carries the virtual MAC {} but there is no saved state ({}) to restore from",
                    fmt_mac(&vmac),
                    store.path(group).display()
                ),
            }),
            _ => Ok(MacOutcome::default()),
        };
    };
    let link = nl.link(iface).await?;
    let mut out = MacOutcome::default();
    if link.mac != Some(saved.real_mac) {
        nl.set_up(&link, false).await?;
        nl.set_mac(&link, saved.real_mac).await?;
        out.changed = true;
        tracing::info!(iface, mac = %fmt_mac(&saved.real_mac), "real MAC restored");
    }
    if let Some((vip, prefix)) = saved.vip
        && !saved
            .addresses
            .iter()
            .any(|a| (a.addr, a.prefix) == (vip, prefix))
    {
        out.changed |= nl.del_address(&link, vip, prefix).await?;
    }
    let link = nl.link(iface).await?;
    if saved.was_up != link.up {
        nl.set_up(&link, saved.was_up).await?;
        out.changed = true;
    }
    for a in &saved.addresses {
        let a = Address {
            index: link.index,
            ..a.clone()
        };
        out.changed |= nl.add_address(&link, &a, false).await?;
    }
    if saved.was_up {
        for r in &saved.routes {
            let r = Route {
                oif: Some(link.index),
                ..r.clone()
            };
            out.changed |= nl.add_route(&r).await?;
        }
        out.targets = saved
            .addresses
            .iter()
            .map(|a| target(iface, a.addr))
            .collect();
    }
    store.update(group, |st| st.mac.retain(|m| m.iface != iface))?;
    Ok(out)
}

// ----- macvlan -----

/// `IFA_F_NOPREFIXROUTE` (linux/if_addr.h).
const IFA_F_NOPREFIXROUTE: u32 = 0x200;

/// The `IFA_F_*` flags a VIP on a macvlan child gets: no prefix route when
/// the parent's own addresses (`all` lists them) cover its subnet (see
/// `macvlan_start`).
pub fn vip_flags(all: &[Address], parent_index: u32, vip: IpAddr, prefix: u8) -> u32 {
    let covered = all.iter().any(|a| {
        a.index == parent_index
            && a.addr.is_ipv4() == vip.is_ipv4()
            && crate::resources::netlink::in_subnet(vip, a.addr, a.prefix)
            && a.prefix <= prefix
    });
    if covered { IFA_F_NOPREFIXROUTE } else { 0 }
}

async fn macvlan_start(
    nl: &Netlink,
    parent_name: &str,
    name: &str,
    vmac: [u8; 6],
    addr: Option<(IpAddr, u8)>,
) -> Result<MacOutcome, ResourceError> {
    check_ifname(name)?;
    let parent = nl.link(parent_name).await?;
    let mut out = MacOutcome::default();
    let child = match nl.link_by_name(name).await? {
        Some(c) => {
            if c.kind.as_deref() != Some("macvlan") || c.parent != Some(parent.index) {
                return Err(ResourceError::Conflict {
                    what: format!("interface {name}"),
                    why: format!("it exists and is not a macvlan child of {parent_name}"),
                });
            }
            if c.mac != Some(vmac) {
                nl.set_mac(&c, vmac).await?;
                out.changed = true;
            }
            c
        }
        None => {
            nl.add_macvlan(&parent, name, vmac, MacvlanMode::Bridge)
                .await?;
            quiet_if_v4(name, addr);
            out.changed = true;
            tracing::info!(parent = parent_name, child = name, mac = %fmt_mac(&vmac), "macvlan child created");
            nl.link(name).await?
        }
    };
    if !child.up {
        nl.set_up(&child, true).await?;
        out.changed = true;
    }
    if let Some((vip, prefix)) = addr {
        // Without its own subnet route the child never becomes the way out
        // for this node's traffic (pings to the ping node, ARP for the
        // gateway): that traffic would carry the virtual MAC and pull the
        // switch's entry for it to this node, away from whoever owns the
        // VIP now (seen in the lab: a node resuming from a hang took the
        // VIP's traffic for a deadtime). The parent's route serves instead
        // when it covers the VIP's subnet.
        // One dump for the parent's addresses and the child's.
        let all = nl.addresses(None).await?;
        let flags = vip_flags(&all, parent.index, vip, prefix);
        out.changed |= ipaddr::ensure_on(
            nl,
            &child,
            &ipaddr::Wanted {
                flags,
                ..ipaddr::Wanted::plain(vip, prefix)
            },
            Some(&all),
        )
        .await?;
        out.targets.push(target(name, vip));
        out.links.push(Link {
            mac: Some(vmac),
            up: true,
            ..child
        });
    }
    Ok(out)
}

/// Releasing a macvlan VIP *parks* the child: its addresses go, the child
/// stays. Creating or deleting a netdev, and setting one down, wait for an
/// RCU grace period under the global RTNL lock (10-15 ms measured in the
/// lab); adding or removing an address takes about 0.1 ms. So a child whose
/// VIP is IPv4 is kept up with IPv6 disabled: without addresses it neither
/// answers nor sends anything, and a takeover only adds the address. A
/// child carrying an IPv6 VIP needs IPv6 and would send link-local traffic
/// (dragging the switch's entry for the MAC), so it is parked down instead.
/// The agent parks children in advance (`Resources::prepare_group`).
async fn macvlan_stop(
    nl: &Netlink,
    parent_name: &str,
    name: &str,
) -> Result<MacOutcome, ResourceError> {
    let Some(child) = nl.link_by_name(name).await? else {
        return Ok(MacOutcome::default());
    };
    let parent = nl.link_by_name(parent_name).await?;
    let ours = child.kind.as_deref() == Some("macvlan")
        && parent.is_none_or(|p| child.parent == Some(p.index));
    if !ours {
        return Err(ResourceError::Conflict {
            what: format!("interface {name}"),
            why: format!("not touching it: it is not a macvlan child of {parent_name}"),
        });
    }
    let mut changed = false;
    for a in nl.addresses(Some(child.index)).await? {
        if !a.is_link_local_scope() {
            nl.del_address(&child, a.addr, a.prefix).await?;
            changed = true;
        }
    }
    if child.up && !ipv6_disabled(name) {
        nl.set_up(&child, false).await?;
        changed = true;
    }
    if changed {
        tracing::info!(child = name, "macvlan child parked (no addresses)");
    }
    Ok(MacOutcome {
        changed,
        ..Default::default()
    })
}

/// Creates the macvlan child of a group parked (see `macvlan_stop`), so a
/// later takeover does not pay for creating a netdev.
pub async fn macvlan_prepare(
    nl: &Netlink,
    parent_name: &str,
    name: &str,
    vmac: [u8; 6],
    addr: Option<(IpAddr, u8)>,
) -> Result<(), ResourceError> {
    check_ifname(name)?;
    if nl.link_by_name(name).await?.is_some() {
        return Ok(());
    }
    let parent = nl.link(parent_name).await?;
    nl.add_macvlan(&parent, name, vmac, MacvlanMode::Bridge)
        .await?;
    if quiet_if_v4(name, addr) {
        let child = nl.link(name).await?;
        nl.set_up(&child, true).await?;
    }
    tracing::info!(parent = parent_name, child = name, mac = %fmt_mac(&vmac), "macvlan child prepared (parked)");
    Ok(())
}

fn ipv6_sysctl(name: &str) -> String {
    format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
}

/// Disables IPv6 on a child whose VIP is IPv4 (or absent); true if done.
/// Also makes its reverse-path filter loose: the child's VIP has no route
/// of its own (see `macvlan_start`), so under a strict `rp_filter` (RHEL's
/// default) every packet arriving on it would fail the check.
fn quiet_if_v4(name: &str, addr: Option<(IpAddr, u8)>) -> bool {
    let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"), "2");
    if addr.is_some_and(|(a, _)| a.is_ipv6()) {
        return false;
    }
    std::fs::write(ipv6_sysctl(name), "1").is_ok()
}

fn ipv6_disabled(name: &str) -> bool {
    std::fs::read_to_string(ipv6_sysctl(name)).is_ok_and(|v| v.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::child_name;

    #[test]
    fn child_names_fit() {
        assert_eq!(child_name("web"), "hb-web");
        assert_eq!(child_name("group1"), "hb-group1");
        let a = child_name("averyverylonggroupname-1");
        let b = child_name("averyverylonggroupname-2");
        assert!(a.len() <= 15 && b.len() <= 15, "{a} {b}");
        assert!(a.starts_with("hb-averyve"));
        assert_ne!(a, b);
        let odd = child_name("a b/c");
        assert!(odd.len() <= 15 && !odd.contains(['/', ' ']), "{odd}");
    }
}
