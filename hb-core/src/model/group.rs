//! What a group's resources say about its addresses and interfaces: the
//! facts the service lease, the hand-over, the neighbour refresh, the
//! quick step and `check` each need, answered here from the specs alone
//! (no I/O: an interface the configuration leaves out stays unknown, and
//! the caller that needs it looks it up).

use std::net::{IpAddr, Ipv4Addr};

use super::resource::{IpSpec, MacMode, MacSpec, ResourceSpec};

/// The resources of one group, with the group's name.
///
/// A borrowing view rather than methods on `[ResourceSpec]`: the name is
/// part of the facts (it names a macvlan child when none is written, and
/// the child is where that resource's service runs). Borrowed, not owned:
/// the specs stay where they live (the configuration's `Group`, a group's
/// worker), and a release asks about what is left of a group, a prefix of
/// its specs.
#[derive(Debug, Clone, Copy)]
pub struct GroupResources<'a> {
    name: &'a str,
    specs: &'a [ResourceSpec],
}

/// One service address of a group, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress<'a> {
    pub addr: IpAddr,
    /// The interface its packets arrive on, when the configuration names
    /// it: an IP resource's interface; a MAC resource's `iface` in both
    /// modes (a macvlan child's packets arrive through its parent). None:
    /// the interface is found by subnet when the group starts.
    pub arrives_on: Option<&'a str>,
    /// The interface that holds it: an IP resource's interface, the
    /// macvlan child, or the interface itself in replace mode.
    pub held_on: Option<String>,
}

impl ServiceAddress<'_> {
    /// Whether the configuration names its interface: only then is it
    /// known before a start where the address will be.
    pub fn named(&self) -> bool {
        self.arrives_on.is_some()
    }
}

/// What a takeover's quick step (`resources::quick`) would put up: the
/// group's first resource, when the group qualifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuickCandidate<'a> {
    /// An IPv4 VIP on the group's macvlan child (created and parked ahead,
    /// so only the address is missing).
    Macvlan {
        spec: &'a MacSpec,
        child: String,
        addr: Ipv4Addr,
        prefix: u8,
    },
    /// An IPv4 address on the interface the configuration names.
    Ip {
        spec: &'a IpSpec,
        iface: &'a str,
        addr: Ipv4Addr,
    },
}

/// Why a group has no quick step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoQuickStep {
    /// No resources.
    Empty,
    /// The group runs scripts: their order matters and they may take seconds.
    Scripts,
    /// The first resource puts up no address (a hostname, a MAC without one).
    NoAddress,
    /// The first resource replaces the interface's own MAC: a link down and
    /// up, not one request.
    ReplacesMac,
    /// The quick step announces with one gratuitous ARP: IPv4 only.
    Ipv6,
    /// The address's interface is found by subnet when the group starts.
    UnnamedInterface,
    /// A MAC replaced later in the group would make the first announcement,
    /// with the interface's own MAC, a wrong one.
    MacReplacedLater,
}

/// The interfaces of one network resource (see [`ServiceAddress`]).
struct Placement<'a> {
    arrives_on: Option<&'a str>,
    held_on: Option<String>,
}

impl<'a> GroupResources<'a> {
    pub fn new(name: &'a str, specs: &'a [ResourceSpec]) -> GroupResources<'a> {
        GroupResources { name, specs }
    }

    /// Where a network resource is; None for a hostname or a script.
    fn placement(&self, spec: &'a ResourceSpec) -> Option<Placement<'a>> {
        match spec {
            ResourceSpec::IpAddr(ip) => Some(Placement {
                arrives_on: ip.iface.as_deref(),
                held_on: ip.iface.clone(),
            }),
            ResourceSpec::Mac(m) => Some(Placement {
                arrives_on: Some(&m.iface),
                held_on: Some(m.link(self.name)),
            }),
            ResourceSpec::Hostname(_) | ResourceSpec::Script(_) => None,
        }
    }

    fn placements(&self) -> impl Iterator<Item = Placement<'a>> + '_ {
        self.specs.iter().filter_map(|s| self.placement(s))
    }

    /// The addresses the group puts up, in order, with their interfaces.
    pub fn service_addresses(&self) -> Vec<ServiceAddress<'a>> {
        self.specs
            .iter()
            .filter_map(|s| {
                let addr = s.service_address()?;
                let p = self.placement(s)?;
                Some(ServiceAddress {
                    addr,
                    arrives_on: p.arrives_on,
                    held_on: p.held_on,
                })
            })
            .collect()
    }

    /// The addresses alone (e.g. to let them be answered again before a start).
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.specs
            .iter()
            .filter_map(ResourceSpec::service_address)
            .collect()
    }

    /// The service addresses, if the group can be handed over by
    /// withdrawing them in the kernel: addresses on a named interface,
    /// macvlan MACs and hostnames only, at least one address. None
    /// otherwise (see `agent::withdraw`).
    pub fn withdrawable_addresses(&self) -> Option<Vec<IpAddr>> {
        let mut addrs = Vec::new();
        for s in self.specs {
            match s {
                ResourceSpec::Hostname(_) => {}
                // Only on a named interface: one found by subnet may differ
                // from the one the program was attached to.
                ResourceSpec::IpAddr(IpSpec { iface: None, .. }) => return None,
                // The interface would keep sending with the virtual MAC.
                ResourceSpec::Mac(MacSpec {
                    mode: MacMode::Replace,
                    ..
                })
                | ResourceSpec::Script(_) => return None,
                ResourceSpec::IpAddr(_) | ResourceSpec::Mac(_) => addrs.extend(s.service_address()),
            }
        }
        (!addrs.is_empty()).then_some(addrs)
    }

    /// The interfaces the configuration names, which must exist on the
    /// host (a macvlan child's parent, not the child: hb creates that).
    pub fn host_interfaces(&self) -> Vec<&'a str> {
        distinct(self.placements().filter_map(|p| p.arrives_on))
    }

    /// The interfaces the group's service runs on once started: those of
    /// its addresses and MACs (with or without an address), where known.
    pub fn service_interfaces(&self) -> Vec<String> {
        distinct(self.placements().filter_map(|p| p.held_on))
    }

    /// The default gateways the group's MAC resources set while held.
    pub fn gateways(&self) -> Vec<IpAddr> {
        self.specs
            .iter()
            .filter_map(|s| match s {
                ResourceSpec::Mac(m) => m.gateway,
                _ => None,
            })
            .collect()
    }

    /// What the quick step would put up, or why it has nothing to: only
    /// groups of network identity qualify, and only for their first
    /// resource, when it is an IPv4 VIP on a macvlan child, or an IPv4
    /// address on a named interface with no MAC replaced later in the group.
    /// Whether the interface is in place is for the caller to find out.
    pub fn quick_candidate(&self) -> Result<QuickCandidate<'a>, NoQuickStep> {
        if !self.specs.iter().all(ResourceSpec::is_network_identity) {
            return Err(NoQuickStep::Scripts);
        }
        match self.specs.first().ok_or(NoQuickStep::Empty)? {
            ResourceSpec::Mac(m) => {
                let child = m.child(self.name).ok_or(NoQuickStep::ReplacesMac)?;
                match m.addr.ok_or(NoQuickStep::NoAddress)? {
                    (IpAddr::V4(addr), prefix) => Ok(QuickCandidate::Macvlan {
                        spec: m,
                        child,
                        addr,
                        prefix,
                    }),
                    (IpAddr::V6(_), _) => Err(NoQuickStep::Ipv6),
                }
            }
            ResourceSpec::IpAddr(ip) => {
                let IpAddr::V4(addr) = ip.addr else {
                    return Err(NoQuickStep::Ipv6);
                };
                let iface = ip.iface.as_deref().ok_or(NoQuickStep::UnnamedInterface)?;
                if self.replaces_a_mac() {
                    return Err(NoQuickStep::MacReplacedLater);
                }
                Ok(QuickCandidate::Ip {
                    spec: ip,
                    iface,
                    addr,
                })
            }
            ResourceSpec::Hostname(_) | ResourceSpec::Script(_) => Err(NoQuickStep::NoAddress),
        }
    }

    fn replaces_a_mac(&self) -> bool {
        self.specs.iter().any(|s| {
            matches!(
                s,
                ResourceSpec::Mac(MacSpec {
                    mode: MacMode::Replace,
                    ..
                })
            )
        })
    }
}

/// Each item once, in the order first seen.
fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{HostnameSpec, ScriptKind, ScriptSpec};

    const VIP: &str = "192.168.32.21";

    fn vip() -> IpAddr {
        VIP.parse().unwrap()
    }

    fn ip_at(addr: &str, iface: Option<&str>) -> ResourceSpec {
        ResourceSpec::IpAddr(IpSpec {
            addr: addr.parse().unwrap(),
            prefix: 24,
            route_prefix: false,
            iface: iface.map(str::to_string),
            broadcast: None,
            label: None,
        })
    }

    fn ip(iface: Option<&str>) -> ResourceSpec {
        ip_at(VIP, iface)
    }

    fn mac_at(mode: MacMode, addr: Option<&str>) -> ResourceSpec {
        ResourceSpec::Mac(MacSpec {
            iface: "eth0".into(),
            mac: [0, 0x1e, 0x68, 0x1e, 0x99, 0x5e],
            mode,
            addr: addr.map(|a| (a.parse().unwrap(), 24)),
            gateway: None,
        })
    }

    fn mac(mode: MacMode) -> ResourceSpec {
        mac_at(mode, Some(VIP))
    }

    fn macvlan() -> ResourceSpec {
        mac(MacMode::Macvlan { child: None })
    }

    fn host() -> ResourceSpec {
        ResourceSpec::Hostname(HostnameSpec {
            name: "nodevir".into(),
        })
    }

    fn script() -> ResourceSpec {
        ResourceSpec::Script(ScriptSpec {
            name: "httpd".into(),
            args: vec![],
            kind: ScriptKind::Heartbeat,
            params: Default::default(),
            timeout: Duration::from_secs(1),
        })
    }

    fn web(specs: &[ResourceSpec]) -> GroupResources<'_> {
        GroupResources::new("web", specs)
    }

    #[test]
    fn service_addresses_say_where_packets_arrive_and_where_they_are_held() {
        let specs = [
            ip_at("10.0.0.1", Some("eth1")),
            ip_at("10.0.0.2", None),
            mac_at(MacMode::Macvlan { child: None }, Some("10.0.0.3")),
            mac_at(MacMode::Replace, Some("10.0.0.4")),
            mac_at(MacMode::Replace, None),
            host(),
            script(),
        ];
        let at = |a: &str, arrives: Option<&'static str>, held: Option<&str>| ServiceAddress {
            addr: a.parse().unwrap(),
            arrives_on: arrives,
            held_on: held.map(str::to_string),
        };
        let got = web(&specs).service_addresses();
        assert_eq!(
            got,
            vec![
                at("10.0.0.1", Some("eth1"), Some("eth1")),
                at("10.0.0.2", None, None),
                // A macvlan child's packets arrive through its parent.
                at("10.0.0.3", Some("eth0"), Some("hb-web")),
                at("10.0.0.4", Some("eth0"), Some("eth0")),
            ]
        );
        let named: Vec<bool> = got.iter().map(ServiceAddress::named).collect();
        assert_eq!(named, [true, false, true, true]);
        let addrs: Vec<IpAddr> = got.iter().map(|s| s.addr).collect();
        assert_eq!(web(&specs).addresses(), addrs);
    }

    #[test]
    fn only_addresses_macvlans_and_hostnames_are_handed_over_withdrawn() {
        assert_eq!(
            web(&[macvlan(), host()]).withdrawable_addresses(),
            Some(vec![vip()])
        );
        assert_eq!(
            web(&[ip(Some("eth0")), host()]).withdrawable_addresses(),
            Some(vec![vip()])
        );
        // The interface keeps sending with a replaced MAC: stop it first.
        assert_eq!(
            web(&[mac(MacMode::Replace), host()]).withdrawable_addresses(),
            None
        );
        // Nothing to withdraw.
        assert_eq!(web(&[host()]).withdrawable_addresses(), None);
        assert_eq!(web(&[]).withdrawable_addresses(), None);
        // An address without a named interface may be started elsewhere
        // than where the program runs.
        assert_eq!(web(&[ip(None), host()]).withdrawable_addresses(), None);
        assert_eq!(web(&[macvlan(), script()]).withdrawable_addresses(), None);
    }

    #[test]
    fn interfaces_of_the_host_and_of_the_service() {
        let specs = [
            ip(Some("eth1")),
            ip(None),
            mac(MacMode::Macvlan {
                child: Some("web0".into()),
            }),
            mac_at(MacMode::Macvlan { child: None }, None),
            mac_at(MacMode::Replace, None),
            ip(Some("eth1")),
            host(),
            script(),
        ];
        // What must exist: the named interfaces, a macvlan's parent.
        assert_eq!(web(&specs).host_interfaces(), ["eth1", "eth0"]);
        // Where the service runs: the children, the replaced interface,
        // also for a MAC without an address.
        assert_eq!(
            web(&specs).service_interfaces(),
            ["eth1", "web0", "hb-web", "eth0"]
        );
    }

    #[test]
    fn gateways_of_the_mac_resources() {
        let gw: IpAddr = "192.168.32.254".parse().unwrap();
        let mut with_gw = mac(MacMode::Replace);
        if let ResourceSpec::Mac(m) = &mut with_gw {
            m.gateway = Some(gw);
        }
        assert_eq!(web(&[ip(Some("eth0")), with_gw, host()]).gateways(), [gw]);
    }

    #[test]
    fn quick_step_for_a_first_ipv4_vip_on_a_macvlan_child() {
        let specs = [macvlan(), host()];
        let Ok(QuickCandidate::Macvlan {
            child,
            addr,
            prefix,
            ..
        }) = web(&specs).quick_candidate()
        else {
            panic!("{:?}", web(&specs).quick_candidate());
        };
        assert_eq!(
            (child.as_str(), addr.to_string(), prefix),
            ("hb-web", VIP.into(), 24)
        );
        // A MAC replaced later does not stop it: the child has its own MAC.
        let later = [macvlan(), mac_at(MacMode::Replace, None)];
        assert!(web(&later).quick_candidate().is_ok());
    }

    #[test]
    fn quick_step_for_a_first_ipv4_address_on_a_named_interface() {
        let specs = [ip(Some("eth0")), host()];
        let Ok(QuickCandidate::Ip { iface, addr, .. }) = web(&specs).quick_candidate() else {
            panic!("{:?}", web(&specs).quick_candidate());
        };
        assert_eq!((iface, addr.to_string()), ("eth0", VIP.into()));
    }

    #[test]
    fn no_quick_step_and_why() {
        let why = |specs: &[ResourceSpec]| web(specs).quick_candidate().err();
        assert_eq!(why(&[]), Some(NoQuickStep::Empty));
        assert_eq!(why(&[macvlan(), script()]), Some(NoQuickStep::Scripts));
        assert_eq!(why(&[host(), macvlan()]), Some(NoQuickStep::NoAddress));
        assert_eq!(
            why(&[mac_at(MacMode::Macvlan { child: None }, None)]),
            Some(NoQuickStep::NoAddress)
        );
        assert_eq!(
            why(&[mac(MacMode::Replace)]),
            Some(NoQuickStep::ReplacesMac)
        );
        assert_eq!(
            why(&[ip_at("fd00::21", Some("eth0"))]),
            Some(NoQuickStep::Ipv6)
        );
        assert_eq!(
            why(&[mac_at(MacMode::Macvlan { child: None }, Some("fd00::21"))]),
            Some(NoQuickStep::Ipv6)
        );
        assert_eq!(why(&[ip(None)]), Some(NoQuickStep::UnnamedInterface));
        assert_eq!(
            why(&[ip(Some("eth0")), mac_at(MacMode::Replace, None)]),
            Some(NoQuickStep::MacReplacedLater)
        );
    }
}
