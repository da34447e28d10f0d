//! Thin helpers over rtnetlink: links, addresses, routes, macvlan children and
//! neighbour entries. Everything the resources change goes through here; nothing
//! shells out to `ip`. The netlink socket belongs to the network namespace of the
//! thread that called [`Netlink::connect`].
pub use crate::model::addr::{default_broadcast, fmt_mac, in_subnet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{LinkMacVlan, LinkUnspec, RouteMessageBuilder};
use serde::{Deserialize, Serialize};

use super::error::{ResourceError, netlink_errno, nl};

/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;

/// A network interface as read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Current hardware address (None for interfaces without one).
    pub mac: Option<[u8; 6]>,
    /// Administrative state (IFF_UP).
    pub up: bool,
    /// `Some("macvlan")`, `Some("veth")`, ... when the kernel reports a kind.
    pub kind: Option<String>,
    /// IFLA_LINK: the parent of a macvlan/vlan child.
    pub parent: Option<u32>,
}

/// An address as read from (or to be written to) the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// rtnetlink scope (0 universe, 200 site, 253 link, 254 host).
    pub scope: u8,
    /// IFA_F_* flags (as read; only NODAD is ever written).
    pub flags: u32,
}

impl Address {
    pub fn is_link_local_scope(&self) -> bool {
        self.scope >= 253
    }
}

/// A route as read from (or to be written to) the kernel. Enough to restore a
/// static or DHCP route exactly; multipath routes are not represented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub v6: bool,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub metric: Option<u32>,
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    pub kind: u8,
    pub pref_src: Option<IpAddr>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.dst_len == 0
    }

    /// A default route via `gateway` out of `oif` in the main table.
    pub fn default_via(gateway: IpAddr, oif: u32) -> Route {
        Route {
            v6: gateway.is_ipv6(),
            dst: None,
            dst_len: 0,
            gateway: Some(gateway),
            oif: Some(oif),
            metric: None,
            table: RT_TABLE_MAIN,
            protocol: u8::from(RouteProtocol::Static),
            scope: u8::from(RouteScope::Universe),
            kind: u8::from(RouteType::Unicast),
            pref_src: None,
        }
    }
}

/// A neighbour (ARP / NDP) cache state, as `ip neigh` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Failed,
    Noarp,
    Permanent,
    None,
    Other(u16),
}

impl From<NeighbourState> for NeighState {
    fn from(s: NeighbourState) -> Self {
        match s {
            NeighbourState::Incomplete => Self::Incomplete,
            NeighbourState::Reachable => Self::Reachable,
            NeighbourState::Stale => Self::Stale,
            NeighbourState::Delay => Self::Delay,
            NeighbourState::Probe => Self::Probe,
            NeighbourState::Failed => Self::Failed,
            NeighbourState::Noarp => Self::Noarp,
            NeighbourState::Permanent => Self::Permanent,
            NeighbourState::None => Self::None,
            NeighbourState::Other(v) => Self::Other(v),
            _ => Self::Other(u16::from(s)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub index: u32,
    pub ip: IpAddr,
    pub lladdr: Option<Vec<u8>>,
    pub state: NeighState,
    raw: NeighbourMessage,
}

/// Macvlan modes the resources use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Bridge,
    Private,
}

fn ip_of_route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn link_from_msg(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        kind: None,
        parent: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(a);
                link.mac = Some(m);
            }
            LinkAttribute::Link(p) => link.parent = Some(*p),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(match k {
                            InfoKind::MacVlan => "macvlan".to_string(),
                            InfoKind::Veth => "veth".to_string(),
                            InfoKind::Dummy => "dummy".to_string(),
                            InfoKind::Bridge => "bridge".to_string(),
                            InfoKind::Vlan => "vlan".to_string(),
                            other => format!("{other:?}").to_lowercase(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn address_from_msg(msg: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut a = Address {
        index: msg.header.index,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix: msg.header.prefix_len,
        broadcast: None,
        label: None,
        scope: u8::from(msg.header.scope),
        flags: u32::from(msg.header.flags.bits()),
    };
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Broadcast(b) => a.broadcast = Some(*b),
            AddressAttribute::Label(l) => a.label = Some(l.clone()),
            AddressAttribute::Flags(f) => a.flags = f.bits(),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links. Prefer LOCAL when present.
    a.addr = local.or(address)?;
    Some(a)
}

fn route_from_msg(msg: &RouteMessage) -> Route {
    let mut r = Route {
        v6: msg.header.address_family == AddressFamily::Inet6,
        dst: None,
        dst_len: msg.header.destination_prefix_length,
        gateway: None,
        oif: None,
        metric: None,
        table: u32::from(msg.header.table),
        protocol: u8::from(msg.header.protocol),
        scope: u8::from(msg.header.scope),
        kind: u8::from(msg.header.kind),
        pref_src: None,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => r.dst = ip_of_route_addr(a),
            RouteAttribute::Gateway(a) => r.gateway = ip_of_route_addr(a),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Priority(p) => r.metric = Some(*p),
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::PrefSource(a) => r.pref_src = ip_of_route_addr(a),
            _ => {}
        }
    }
    r
}

fn route_to_msg(r: &Route) -> RouteMessage {
    let mut msg = if r.v6 {
        RouteMessageBuilder::<Ipv6Addr>::new().build()
    } else {
        RouteMessageBuilder::<Ipv4Addr>::new().build()
    };
    msg.header.destination_prefix_length = r.dst_len;
    msg.header.protocol = RouteProtocol::from(r.protocol);
    msg.header.scope = RouteScope::from(r.scope);
    msg.header.kind = RouteType::from(r.kind);
    if r.table < 256 {
        msg.header.table = r.table as u8;
    } else {
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        msg.attributes.push(RouteAttribute::Table(r.table));
    }
    if let Some(d) = r.dst {
        msg.attributes.push(RouteAttribute::Destination(d.into()));
    }
    if let Some(g) = r.gateway {
        msg.attributes.push(RouteAttribute::Gateway(g.into()));
    }
    if let Some(o) = r.oif {
        msg.attributes.push(RouteAttribute::Oif(o));
    }
    if let Some(m) = r.metric {
        msg.attributes.push(RouteAttribute::Priority(m));
    }
    if let Some(s) = r.pref_src {
        msg.attributes.push(RouteAttribute::PrefSource(s.into()));
    }
    msg
}

fn neighbour_from_msg(msg: NeighbourMessage) -> Option<Neighbour> {
    let mut ip = None;
    let mut lladdr = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(l) => lladdr = Some(l.clone()),
            _ => {}
        }
    }
    Some(Neighbour {
        index: msg.header.ifindex,
        ip: ip?,
        lladdr,
        state: msg.header.state.into(),
        raw: msg,
    })
}

/// How often a dump refused as busy is tried again.
const DUMP_RETRIES: u32 = 5;

/// A handle on the kernel's routing netlink, in the caller's network namespace.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    /// One dump at a time on the socket: the kernel refuses a second one
    /// while the first runs (EBUSY), and group workers run concurrently.
    dumps: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Netlink {
    /// Opens a netlink socket in the current thread's network namespace and
    /// spawns its connection task. Must be called from inside a tokio runtime.
    pub fn connect() -> Result<Self, ResourceError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| ResourceError::Io {
                what: "opening a rtnetlink socket".into(),
                source,
            })?;
        tokio::spawn(conn);
        Ok(Netlink {
            handle,
            dumps: Default::default(),
        })
    }

    /// Collects a netlink request's answer, one dump at a time on this
    /// socket; a dump refused as busy anyway (EBUSY) is tried again.
    async fn dump<T, S>(&self, mut request: impl FnMut() -> S) -> Result<Vec<T>, rtnetlink::Error>
    where
        S: futures::Stream<Item = Result<T, rtnetlink::Error>>,
    {
        let _one = self.dumps.lock().await;
        let mut tries = 0;
        loop {
            match request().try_collect::<Vec<T>>().await {
                Err(e) if netlink_errno(&e) == Some(libc::EBUSY) && tries < DUMP_RETRIES => {
                    tries += 1;
                    tracing::debug!(tries, "netlink dump refused as busy; trying again");
                }
                r => return r,
            }
        }
    }

    // ----- links -----

    pub async fn links(&self) -> Result<Vec<Link>, ResourceError> {
        let msgs: Vec<LinkMessage> = self
            .dump(|| self.handle.link().get().execute())
            .await
            .map_err(nl("listing links"))?;
        Ok(msgs.iter().map(link_from_msg).collect())
    }

    /// The link called `name`, or None.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>, ResourceError> {
        // A plain request, not a dump: no need to queue behind one.
        let res: Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_name(name)
            .execute()
            .try_collect()
            .await;
        match res {
            Ok(msgs) => Ok(msgs.first().map(link_from_msg)),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl(format!("reading link {name}"))(e)),
        }
    }

    /// The link called `name`; an error naming it when absent.
    pub async fn link(&self, name: &str) -> Result<Link, ResourceError> {
        self.link_by_name(name)
            .await?
            .ok_or_else(|| ResourceError::NoSuchInterface(name.to_string()))
    }

    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>, ResourceError> {
        // A plain request, not a dump: no need to queue behind one.
        let res: Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_collect()
            .await;
        match res {
            Ok(msgs) => Ok(msgs.first().map(link_from_msg)),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl(format!("reading link #{index}"))(e)),
        }
    }

    pub async fn set_up(&self, link: &Link, up: bool) -> Result<(), ResourceError> {
        let b = LinkUnspec::new_with_index(link.index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(nl(format!(
                "setting {} {}",
                link.name,
                if up { "up" } else { "down" }
            )))
    }

    pub async fn set_mac(&self, link: &Link, mac: [u8; 6]) -> Result<(), ResourceError> {
        let msg = LinkUnspec::new_with_index(link.index)
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(nl(format!(
                "setting MAC {} on {}",
                fmt_mac(&mac),
                link.name
            )))
    }

    /// Creates a macvlan child `name` on `parent` with hardware address `mac`
    /// (left down).
    pub async fn add_macvlan(
        &self,
        parent: &Link,
        name: &str,
        mac: [u8; 6],
        mode: MacvlanMode,
    ) -> Result<(), ResourceError> {
        let mode = match mode {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
        };
        let msg = LinkMacVlan::new(name, parent.index, mode)
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!("creating macvlan {name} on {}", parent.name)))
    }

    pub async fn del_link(&self, link: &Link) -> Result<(), ResourceError> {
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(nl(format!("deleting link {}", link.name))(e)),
        }
    }

    // ----- addresses -----

    /// Addresses of one interface (`Some(index)`) or of all.
    pub async fn addresses(&self, index: Option<u32>) -> Result<Vec<Address>, ResourceError> {
        let msgs: Vec<AddressMessage> = self
            .dump(|| {
                let mut req = self.handle.address().get();
                if let Some(i) = index {
                    req = req.set_link_index_filter(i);
                }
                req.execute()
            })
            .await
            .map_err(nl("listing addresses"))?;
        Ok(msgs.iter().filter_map(address_from_msg).collect())
    }

    /// Adds `a` to `link` with its broadcast, label (IPv4) and settable
    /// flags (nodad, noprefixroute, mngtmpaddr, autojoin); IPv6 addresses also
    /// get NODAD when `nodad`. `Ok(false)` when the address was already there
    /// (nothing changed).
    pub async fn add_address(
        &self,
        link: &Link,
        a: &Address,
        nodad: bool,
    ) -> Result<bool, ResourceError> {
        let mut req = self.handle.address().add(link.index, a.addr, a.prefix);
        let msg = req.message_mut();
        let mut flags = AddressFlags::from_bits_retain(a.flags)
            & (AddressFlags::Nodad
                | AddressFlags::Noprefixroute
                | AddressFlags::Managetempaddr
                | AddressFlags::Mcautojoin);
        if a.addr.is_ipv4() {
            // The builder computed a default broadcast; honour the caller's.
            msg.attributes
                .retain(|x| !matches!(x, AddressAttribute::Broadcast(_)));
            if let Some(b) = a.broadcast {
                msg.attributes.push(AddressAttribute::Broadcast(b));
            }
            if let Some(l) = &a.label {
                msg.attributes.push(AddressAttribute::Label(l.clone()));
            }
            flags.remove(AddressFlags::Nodad | AddressFlags::Managetempaddr);
        } else if nodad {
            flags |= AddressFlags::Nodad;
        }
        if !flags.is_empty() {
            msg.attributes.push(AddressAttribute::Flags(flags));
        }
        msg.header.scope = a.scope.into();
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(nl(format!(
                "adding {}/{} to {}",
                a.addr, a.prefix, link.name
            ))(e)),
        }
    }

    /// Removes `addr/prefix` from `link`. `Ok(false)` when it was not there.
    pub async fn del_address(
        &self,
        link: &Link,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<bool, ResourceError> {
        let present: Vec<AddressMessage> = self
            .dump(|| {
                self.handle
                    .address()
                    .get()
                    .set_link_index_filter(link.index)
                    .set_address_filter(addr)
                    .execute()
            })
            .await
            .map_err(nl(format!("listing addresses of {}", link.name)))?;
        let mut removed = false;
        for msg in present {
            if msg.header.prefix_len != prefix {
                continue;
            }
            match self.handle.address().del(msg).execute().await {
                Ok(()) => removed = true,
                Err(e)
                    if matches!(
                        netlink_errno(&e),
                        Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ENODEV)
                    ) => {}
                Err(e) => {
                    return Err(nl(format!("removing {addr}/{prefix} from {}", link.name))(
                        e,
                    ));
                }
            }
        }
        Ok(removed)
    }

    // ----- routes -----

    /// Routes of the main table of one family.
    pub async fn routes(&self, v6: bool) -> Result<Vec<Route>, ResourceError> {
        let q = if v6 {
            RouteMessageBuilder::<Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().build()
        };
        let msgs: Vec<RouteMessage> = self
            .dump(|| self.handle.route().get(q.clone()).execute())
            .await
            .map_err(nl("listing routes"))?;
        Ok(msgs
            .iter()
            .map(route_from_msg)
            .filter(|r| r.table == RT_TABLE_MAIN)
            .collect())
    }

    /// Default routes (main table) of one family.
    pub async fn default_routes(&self, v6: bool) -> Result<Vec<Route>, ResourceError> {
        Ok(self
            .routes(v6)
            .await?
            .into_iter()
            .filter(Route::is_default)
            .filter(|r| r.kind == u8::from(RouteType::Unicast))
            .collect())
    }

    /// Adds `r`; `Ok(false)` when an identical route already existed.
    pub async fn add_route(&self, r: &Route) -> Result<bool, ResourceError> {
        match self.handle.route().add(route_to_msg(r)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(nl(format!("adding route {}", describe_route(r)))(e)),
        }
    }

    /// Adds or replaces the main-table default route of `gateway`'s family so
    /// that it goes via `gateway` out of `link`.
    pub async fn replace_default_route(
        &self,
        link: &Link,
        gateway: IpAddr,
    ) -> Result<(), ResourceError> {
        let r = Route::default_via(gateway, link.index);
        self.handle
            .route()
            .add(route_to_msg(&r))
            .replace()
            .execute()
            .await
            .map_err(nl(format!(
                "setting default route via {gateway} dev {}",
                link.name
            )))
    }

    /// Deletes `r`; `Ok(false)` when it was not there.
    pub async fn del_route(&self, r: &Route) -> Result<bool, ResourceError> {
        match self.handle.route().del(route_to_msg(r)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(netlink_errno(&e), Some(libc::ESRCH) | Some(libc::ENOENT)) => {
                Ok(false)
            }
            Err(e) => Err(nl(format!("deleting route {}", describe_route(r)))(e)),
        }
    }

    // ----- neighbours -----

    /// Neighbour entries for `ip` (on `index` only when given).
    pub async fn neighbours(
        &self,
        index: Option<u32>,
        ip: IpAddr,
    ) -> Result<Vec<Neighbour>, ResourceError> {
        let family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let msgs: Vec<NeighbourMessage> = self
            .dump(|| {
                self.handle
                    .neighbours()
                    .get()
                    .set_address_family(family)
                    .execute()
            })
            .await
            .map_err(nl(format!("listing neighbours for {ip}")))?;
        Ok(msgs
            .into_iter()
            .filter_map(neighbour_from_msg)
            .filter(|n| n.ip == ip && index.is_none_or(|i| n.index == i))
            .collect())
    }

    /// The state of the neighbour entry for `ip` on `link`, if there is one.
    pub async fn neighbour_state(
        &self,
        link: &Link,
        ip: IpAddr,
    ) -> Result<Option<NeighState>, ResourceError> {
        Ok(self
            .neighbours(Some(link.index), ip)
            .await?
            .first()
            .map(|n| n.state))
    }

    pub async fn del_neighbour(&self, n: &Neighbour) -> Result<(), ResourceError> {
        match self.handle.neighbours().del(n.raw.clone()).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT) | Some(libc::ESRCH)) => Ok(()),
            Err(e) => Err(nl(format!("deleting neighbour {} on #{}", n.ip, n.index))(
                e,
            )),
        }
    }

    /// Deletes every neighbour entry for `ip` (on `index` only when given);
    /// returns how many were removed.
    pub async fn flush_neighbours(
        &self,
        index: Option<u32>,
        ip: IpAddr,
    ) -> Result<usize, ResourceError> {
        let list = self.neighbours(index, ip).await?;
        for n in &list {
            self.del_neighbour(n).await?;
        }
        Ok(list.len())
    }

    /// Asks the kernel to resolve `ip` on `link` now (RTM_NEWNEIGH with
    /// NTF_USE: the kernel creates the entry if needed and sends its first
    /// ARP request / neighbour solicitation immediately; the answer makes the
    /// entry REACHABLE).
    pub async fn resolve_neighbour(&self, link: &Link, ip: IpAddr) -> Result<(), ResourceError> {
        let mut req = self
            .handle
            .neighbours()
            .add(link.index, ip)
            .state(NeighbourState::None)
            .flags(NeighbourFlags::Use)
            .replace();
        req.message_mut().header.kind = RouteType::Unspec;
        req.execute().await.map_err(nl(format!(
            "triggering resolution of {ip} on {}",
            link.name
        )))
    }
}

pub fn describe_route(r: &Route) -> String {
    let dst = match r.dst {
        Some(d) => format!("{d}/{}", r.dst_len),
        None if r.dst_len == 0 => "default".to_string(),
        None => format!("?/{}", r.dst_len),
    };
    let mut s = dst;
    if let Some(g) = r.gateway {
        s += &format!(" via {g}");
    }
    if let Some(o) = r.oif {
        s += &format!(" oif #{o}");
    }
    if let Some(m) = r.metric {
        s += &format!(" metric {m}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_and_broadcast() {
        let a: IpAddr = "192.168.32.21".parse().unwrap();
        let n: IpAddr = "192.168.32.30".parse().unwrap();
        assert!(in_subnet(a, n, 24));
        assert!(!in_subnet(a, n, 29));
        assert!(in_subnet(a, n, 0));
        let v6: IpAddr = "fd00::21".parse().unwrap();
        assert!(in_subnet(v6, "fd00::1".parse().unwrap(), 64));
        assert!(!in_subnet(v6, a, 0));
        assert_eq!(
            default_broadcast("192.168.32.21".parse().unwrap(), 24),
            Some("192.168.32.255".parse().unwrap())
        );
        assert_eq!(default_broadcast("10.0.0.1".parse().unwrap(), 31), None);
        assert_eq!(
            fmt_mac(&[0, 0x1e, 0x68, 0x1e, 0x99, 0x5e]),
            "00:1e:68:1e:99:5e"
        );
    }
}
