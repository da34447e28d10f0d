//! What a resource group is made of, as the configuration describes it.
//! Shared by the config parsers (which produce it) and the resources (which run it).
//!
//! One struct per kind: the parsers build it, and start, stop and status
//! take it as it is, so a field is named once rather than re-packed on the
//! way to each of them.
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::addr::fmt_mac;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacMode {
    /// The seed's semantics: the interface itself takes the virtual MAC (and the
    /// virtual IP, and a default route); the real ones are read at takeover and
    /// restored on release.
    Replace,
    /// The virtual MAC lives on a macvlan child (named `hb-<group>` unless set)
    /// that carries the VIP; the parent keeps its identity.
    Macvlan { child: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptKind {
    /// Heartbeat resource.d script: `name arg... start|stop|status`.
    Heartbeat,
    /// LSB init script: `name start|stop|status`, status exit 0 = running, 3 = stopped.
    Lsb,
    /// OCF agent: OCF_RESKEY_* params, start|stop|monitor, exit 7 = not running.
    Ocf { provider: String },
}

/// `IPaddr::192.168.60.200/24/eth0/192.168.60.255` (Heartbeat), `IPaddr2::...`,
/// or `type = "ip"` in TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSpec {
    pub addr: IpAddr,
    pub prefix: u8,
    /// No prefix written: each start takes it (like the interface, when
    /// none is written) from the host's connected route to `addr`, as
    /// Heartbeat's findif did; `prefix` only when no route holds it.
    /// Stop and status then match the address whatever its prefix.
    pub route_prefix: bool,
    /// None = the interface whose connected subnet contains `addr`.
    pub iface: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
}

/// `MacTakeover::eth0::00:1E:68:1E:99:5E::replace[::192.168.32.21/24[::192.168.32.254]]`
/// or `type = "mac"` in TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacSpec {
    pub iface: String,
    pub mac: [u8; 6],
    pub mode: MacMode,
    /// The VIP carried by the interface (replace) or by the macvlan child.
    pub addr: Option<(IpAddr, u8)>,
    /// Default route via this gateway while held (replace mode).
    pub gateway: Option<IpAddr>,
}

/// `Hostname::nodevir` or `type = "hostname"` in TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostnameSpec {
    pub name: String,
}

/// Anything else: a script looked up in resource.d then init.d (or an OCF agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    pub name: String,
    pub args: Vec<String>,
    pub kind: ScriptKind,
    /// OCF_RESKEY_* parameters (OCF) ; empty otherwise.
    pub params: BTreeMap<String, String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    IpAddr(IpSpec),
    Mac(MacSpec),
    Hostname(HostnameSpec),
    Script(ScriptSpec),
}

impl MacMode {
    /// The macvlan child that carries the MAC and the VIP: the one named,
    /// else `child_name(group)`. None in replace mode (the interface itself).
    pub fn macvlan_child(&self, group: &str) -> Option<String> {
        match self {
            MacMode::Replace => None,
            MacMode::Macvlan { child } => Some(
                child
                    .clone()
                    .unwrap_or_else(|| super::addr::child_name(group)),
            ),
        }
    }
}

impl IpSpec {
    /// The prefix stop and status match: the written one, or any (None)
    /// when it was taken from a route at start (the route may have changed
    /// since).
    pub fn written_prefix(&self) -> Option<u8> {
        (!self.route_prefix).then_some(self.prefix)
    }
}

impl MacSpec {
    /// The macvlan child of `group` that carries the MAC (see
    /// [`MacMode::macvlan_child`]); None in replace mode.
    pub fn child(&self, group: &str) -> Option<String> {
        self.mode.macvlan_child(group)
    }

    /// The interface that takes the virtual MAC: the macvlan child, or in
    /// replace mode the interface itself.
    pub fn link(&self, group: &str) -> String {
        self.child(group).unwrap_or_else(|| self.iface.clone())
    }
}

impl ScriptSpec {
    /// `OCF_RESOURCE_INSTANCE`: the script's name within its group.
    pub fn instance(&self, group: &str) -> String {
        format!("{group}_{}", self.name)
    }
}

impl ResourceSpec {
    /// The service address this resource puts up, if any.
    pub fn service_address(&self) -> Option<IpAddr> {
        match self {
            ResourceSpec::IpAddr(ip) => Some(ip.addr),
            ResourceSpec::Mac(m) => m.addr.map(|(a, _)| a),
            _ => None,
        }
    }

    /// Network identity (an address, a MAC, a hostname) rather than a
    /// service script: what may still be in place, withdrawn in the kernel,
    /// while a peer takes the group over (see `stop_group_with`).
    pub fn is_network_identity(&self) -> bool {
        !matches!(self, ResourceSpec::Script(_))
    }
}

// One-line descriptions for reports and logs.

impl fmt::Display for IpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IpAddr {}/{} on {}",
            self.addr,
            self.prefix,
            self.iface.as_deref().unwrap_or("(auto)")
        )
    }
}

impl fmt::Display for MacSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.mode {
            MacMode::Replace => "replace".to_string(),
            MacMode::Macvlan { child } => {
                format!("macvlan {}", child.as_deref().unwrap_or("(default)"))
            }
        };
        write!(f, "Mac {} on {} ({mode})", fmt_mac(&self.mac), self.iface)
    }
}

impl fmt::Display for HostnameSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hostname {}", self.name)
    }
}

impl fmt::Display for ScriptSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.kind {
            ScriptKind::Heartbeat => write!(f, "Script {name}"),
            ScriptKind::Lsb => write!(f, "LSB {name}"),
            ScriptKind::Ocf { provider } => write!(f, "OCF {provider}:{name}"),
        }
    }
}

impl fmt::Display for ResourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceSpec::IpAddr(ip) => ip.fmt(f),
            ResourceSpec::Mac(m) => m.fmt(f),
            ResourceSpec::Hostname(h) => h.fmt(f),
            ResourceSpec::Script(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(mode: MacMode) -> MacSpec {
        MacSpec {
            iface: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            mode,
            addr: Some(("10.0.0.5".parse().unwrap(), 24)),
            gateway: None,
        }
    }

    #[test]
    fn macvlan_child_is_the_named_one_or_the_default() {
        let named = MacMode::Macvlan {
            child: Some("web0".into()),
        };
        let default = MacMode::Macvlan { child: None };
        assert_eq!(named.macvlan_child("web").as_deref(), Some("web0"));
        assert_eq!(default.macvlan_child("web").as_deref(), Some("hb-web"));
        assert_eq!(MacMode::Replace.macvlan_child("web"), None);
    }

    #[test]
    fn a_mac_is_taken_by_its_child_or_by_the_interface_itself() {
        let macvlan = mac(MacMode::Macvlan { child: None });
        assert_eq!(macvlan.child("web").as_deref(), Some("hb-web"));
        assert_eq!(macvlan.link("web"), "hb-web");
        let replace = mac(MacMode::Replace);
        assert_eq!(replace.child("web"), None);
        assert_eq!(replace.link("web"), "eth0");
    }

    #[test]
    fn a_prefix_from_the_route_matches_any_at_stop() {
        let mut ip = IpSpec {
            addr: "10.0.0.5".parse().unwrap(),
            prefix: 24,
            route_prefix: false,
            iface: None,
            broadcast: None,
            label: None,
        };
        assert_eq!(ip.written_prefix(), Some(24));
        ip.route_prefix = true;
        assert_eq!(ip.written_prefix(), None);
    }

    #[test]
    fn service_address_of_each_kind() {
        let a: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            ResourceSpec::Mac(mac(MacMode::Replace)).service_address(),
            Some(a)
        );
        let host = ResourceSpec::Hostname(HostnameSpec { name: "x".into() });
        assert_eq!(host.service_address(), None);
    }

    #[test]
    fn descriptions_name_the_kind_and_what_it_holds() {
        let m = ResourceSpec::Mac(mac(MacMode::Macvlan { child: None }));
        assert_eq!(
            m.to_string(),
            "Mac 02:00:00:00:00:01 on eth0 (macvlan (default))"
        );
        let s = ScriptSpec {
            name: "IPaddr2".into(),
            args: vec![],
            kind: ScriptKind::Ocf {
                provider: "heartbeat".into(),
            },
            params: BTreeMap::new(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(s.to_string(), "OCF heartbeat:IPaddr2");
        assert_eq!(s.instance("web"), "web_IPaddr2");
    }
}
