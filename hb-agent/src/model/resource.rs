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

impl ResourceSpec {
    /// Network identity (an address, a MAC, a hostname) rather than a
    /// service script: what may still be in place, withdrawn in the kernel,
    /// while a peer takes the group over (see `stop_group_with`).
    pub fn is_identity(&self) -> bool {
        !matches!(self, ResourceSpec::Script { .. })
    }
}
