//! The IpAddr resource: a (virtual) address with its prefix, broadcast and label.
//!
//! - `iface: None` means the interface whose connected subnet contains the
//!   address (longest prefix wins; an interface already holding the address
//!   exactly wins over all).
//! - IPv4: broadcast defaults to the subnet's conventional one (like
//!   Heartbeat's IPaddr); a label not starting with `<iface>:` is made
//!   `<iface>:<label>` (ifconfig alias style) and must fit in 15 characters.
//! - IPv6: added with NODAD, so the address is usable (and announceable) at
//!   once instead of after ~1 s of duplicate address detection.
//! - Starting an address already present with the same prefix changes nothing;
//!   stopping an absent one is Ok.
use std::net::{IpAddr, Ipv4Addr};

use super::announce::AnnounceTarget;
use super::error::ResourceError;
use super::netlink::{Address, Link, Netlink, default_broadcast, in_subnet};
use super::spec::IpSpec;

/// The interface holding `addr/prefix` exactly, if any.
pub async fn holder(
    nl: &Netlink,
    addr: IpAddr,
    prefix: Option<u8>,
) -> Result<Option<Link>, ResourceError> {
    let all = nl.addresses(None).await?;
    let Some(a) = all
        .iter()
        .find(|a| a.addr == addr && prefix.is_none_or(|p| p == a.prefix))
    else {
        return Ok(None);
    };
    nl.link_by_index(a.index).await
}

/// The interface an address without a configured interface goes to.
pub async fn find_interface(nl: &Netlink, addr: IpAddr) -> Result<Link, ResourceError> {
    if let Some(l) = holder(nl, addr, None).await? {
        return Ok(l);
    }
    let all = nl.addresses(None).await?;
    // Longest prefix; among equals the first in kernel order.
    let best = all
        .iter()
        .filter(|a| !a.addr.is_loopback() && a.scope < 254)
        .filter(|a| in_subnet(addr, a.addr, a.prefix))
        .fold(None::<&Address>, |best, a| match best {
            Some(b) if b.prefix >= a.prefix => Some(b),
            _ => Some(a),
        })
        .ok_or(ResourceError::NoInterfaceFor(addr))?;
    nl.link_by_index(best.index)
        .await?
        .ok_or(ResourceError::NoInterfaceFor(addr))
}

pub(crate) fn effective_label(
    iface: &str,
    label: Option<&str>,
) -> Result<Option<String>, ResourceError> {
    let Some(l) = label else { return Ok(None) };
    let full = if l == iface || l.starts_with(&format!("{iface}:")) {
        l.to_string()
    } else {
        format!("{iface}:{l}")
    };
    if full.len() > 15 {
        return Err(ResourceError::Invalid {
            resource: format!("label {full}"),
            why: "an address label is at most 15 characters and starts with the interface name"
                .into(),
        });
    }
    Ok(Some(full))
}

/// The prefix of this host's connected route to `addr` on `link`, as
/// Heartbeat's findif took the netmask from the routing table: the longest
/// of the link's own addresses (not `addr` itself) whose subnet holds it.
pub async fn connected_prefix(
    nl: &Netlink,
    addr: IpAddr,
    link: &Link,
) -> Result<Option<u8>, ResourceError> {
    let all = nl.addresses(Some(link.index)).await?;
    Ok(all
        .iter()
        .filter(|a| a.index == link.index && a.addr != addr && a.scope < 254)
        .filter(|a| in_subnet(addr, a.addr, a.prefix))
        .map(|a| a.prefix)
        .max())
}

/// `written` as is, or with `from_route` the connected route's prefix
/// (`written` being the fallback, said in the log when it is used).
pub async fn effective_prefix(
    nl: &Netlink,
    addr: IpAddr,
    written: u8,
    from_route: bool,
    link: &Link,
) -> Result<u8, ResourceError> {
    if !from_route {
        return Ok(written);
    }
    Ok(match connected_prefix(nl, addr, link).await? {
        Some(p) => p,
        None => {
            tracing::warn!(
                "{addr}: no netmask written and no connected route on {} holds it: /{written}",
                link.name
            );
            written
        }
    })
}

/// An address to put on an interface.
pub struct Wanted<'a> {
    pub addr: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<&'a str>,
    /// `IFA_F_*` flags for a new address (e.g. no prefix route).
    pub flags: u32,
}

impl Wanted<'_> {
    /// `addr/prefix`, no broadcast, label or flags.
    pub fn plain(addr: IpAddr, prefix: u8) -> Wanted<'static> {
        Wanted {
            addr,
            prefix,
            broadcast: None,
            label: None,
            flags: 0,
        }
    }
}

/// Adds `w` to `link` unless present. Returns whether it was added.
/// `present`: the addresses already listed (at least those of `link`),
/// saving a netlink round trip on a takeover's path; None lists them.
pub async fn ensure_on(
    nl: &Netlink,
    link: &Link,
    w: &Wanted<'_>,
    present: Option<&[Address]>,
) -> Result<bool, ResourceError> {
    let Wanted {
        addr,
        prefix,
        broadcast,
        label,
        flags,
    } = *w;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(ResourceError::Invalid {
            resource: format!("{addr}/{prefix}"),
            why: format!("prefix longer than {max}"),
        });
    }
    let listed;
    let present = match present {
        Some(p) => p,
        None => {
            listed = nl.addresses(Some(link.index)).await?;
            &listed
        }
    };
    if present
        .iter()
        .any(|a| a.index == link.index && a.addr == addr && a.prefix == prefix)
    {
        return Ok(false);
    }
    let broadcast = match addr {
        IpAddr::V4(v4) => broadcast.or_else(|| default_broadcast(v4, prefix)),
        IpAddr::V6(_) => None,
    };
    let label = if addr.is_ipv4() {
        effective_label(&link.name, label)?
    } else {
        None
    };
    let a = Address {
        index: link.index,
        addr,
        prefix,
        broadcast,
        label,
        scope: 0,
        flags,
    };
    nl.add_address(link, &a, true).await
}

/// Starts the resource; returns (changed, what to announce).
pub async fn start(nl: &Netlink, ip: &IpSpec) -> Result<(bool, AnnounceTarget), ResourceError> {
    let addr = ip.addr;
    let link = match &ip.iface {
        Some(n) => nl.link(n).await?,
        None => find_interface(nl, addr).await?,
    };
    let prefix = effective_prefix(nl, addr, ip.prefix, ip.route_prefix, &link).await?;
    let w = Wanted {
        addr,
        prefix,
        broadcast: ip.broadcast,
        label: ip.label.as_deref(),
        flags: 0,
    };
    let changed = ensure_on(nl, &link, &w, None).await?;
    if changed {
        tracing::info!("added {addr}/{prefix} to {}", link.name);
    }
    Ok((
        changed,
        AnnounceTarget {
            iface: link.name,
            addr,
        },
    ))
}

/// Stops the resource; returns whether something was removed. A prefix
/// taken from a route (`IpSpec::written_prefix` None): the address
/// whatever its prefix.
pub async fn stop(nl: &Netlink, ip: &IpSpec) -> Result<bool, ResourceError> {
    let (addr, prefix) = (ip.addr, ip.written_prefix());
    let link = match &ip.iface {
        Some(n) => match nl.link_by_name(n).await? {
            Some(l) => l,
            None => return Ok(false),
        },
        None => match holder(nl, addr, prefix).await? {
            Some(l) => l,
            None => return Ok(false),
        },
    };
    let prefix = match prefix {
        Some(p) => p,
        None => match nl
            .addresses(Some(link.index))
            .await?
            .iter()
            .find(|a| a.index == link.index && a.addr == addr)
        {
            Some(a) => a.prefix,
            None => return Ok(false),
        },
    };
    let removed = nl.del_address(&link, addr, prefix).await?;
    if removed {
        tracing::info!("removed {addr}/{prefix} from {}", link.name);
    }
    Ok(removed)
}

/// Whether the address (with its written prefix, else any) is on its
/// interface; with the owning interface.
pub async fn status(nl: &Netlink, ip: &IpSpec) -> Result<Option<String>, ResourceError> {
    let (addr, prefix) = (ip.addr, ip.written_prefix());
    match &ip.iface {
        Some(n) => {
            let Some(link) = nl.link_by_name(n).await? else {
                return Ok(None);
            };
            let present = nl.addresses(Some(link.index)).await?;
            Ok(present
                .iter()
                .any(|a| a.addr == addr && prefix.is_none_or(|p| p == a.prefix))
                .then_some(link.name))
        }
        None => Ok(holder(nl, addr, prefix).await?.map(|l| l.name)),
    }
}
