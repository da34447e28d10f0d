//! What a resource group is made of, as the configuration describes it.
//! Shared by the config parsers (which produce it) and the resources (which run it).
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    /// `IPaddr::192.168.60.200/24/eth0/192.168.60.255` (Heartbeat), `IPaddr2::...`,
    /// or `type = "ip"` in TOML.
    IpAddr {
        addr: IpAddr,
        prefix: u8,
        /// No prefix written: each start takes it (like the interface, when
        /// none is written) from the host's connected route to `addr`, as
        /// Heartbeat's findif did; `prefix` only when no route holds it.
        /// Stop and status then match the address whatever its prefix.
        route_prefix: bool,
        /// None = the interface whose connected subnet contains `addr`.
        iface: Option<String>,
        broadcast: Option<Ipv4Addr>,
        label: Option<String>,
    },
    /// `MacTakeover::eth0::00:1E:68:1E:99:5E::replace[::192.168.32.21/24[::192.168.32.254]]`
    /// or `type = "mac"` in TOML.
    Mac {
        iface: String,
        mac: [u8; 6],
        mode: MacMode,
        /// The VIP carried by the interface (replace) or by the macvlan child.
        addr: Option<(IpAddr, u8)>,
        /// Default route via this gateway while held (replace mode).
        gateway: Option<IpAddr>,
    },
    /// `Hostname::nodevir` or `type = "hostname"` in TOML.
    Hostname { name: String },
    /// Anything else: a script looked up in resource.d then init.d (or an OCF agent).
    Script {
        name: String,
        args: Vec<String>,
        kind: ScriptKind,
        /// OCF_RESKEY_* parameters (OCF) ; empty otherwise.
        params: BTreeMap<String, String>,
        timeout: Duration,
    },
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

impl ResourceSpec {
    /// The service address this resource puts up, if any.
    pub fn service_address(&self) -> Option<IpAddr> {
        match self {
            ResourceSpec::IpAddr { addr, .. } => Some(*addr),
            ResourceSpec::Mac {
                addr: Some((a, _)), ..
            } => Some(*a),
            _ => None,
        }
    }

    /// Network identity (an address, a MAC, a hostname) rather than a
    /// service script: what may still be in place, withdrawn in the kernel,
    /// while a peer takes the group over (see `stop_group_with`).
    pub fn is_identity(&self) -> bool {
        !matches!(self, ResourceSpec::Script { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn service_address_of_each_kind() {
        let a: IpAddr = "10.0.0.5".parse().unwrap();
        let mac = ResourceSpec::Mac {
            iface: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            mode: MacMode::Replace,
            addr: Some((a, 24)),
            gateway: None,
        };
        assert_eq!(mac.service_address(), Some(a));
        let host = ResourceSpec::Hostname { name: "x".into() };
        assert_eq!(host.service_address(), None);
    }
}
