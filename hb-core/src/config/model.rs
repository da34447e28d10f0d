//! The typed configuration. Both front ends (a Heartbeat ha.d directory and the
//! native TOML file) produce exactly this, already validated; the rest of the
//! agent never sees where it came from except through `source` and `warnings`.
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hkdf::Hkdf;
use sha2::Sha256;

use super::diag::Diag;
use crate::model::{GroupResources, ResourceSpec};

/// Heartbeat's well-known port (IANA "ha-cluster").
pub const DEFAULT_UDP_PORT: u16 = 694;
/// How long a resource script may run before it is treated as failed.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Fencing commands (power switches) can be slow; a minute is generous.
pub const DEFAULT_FENCING_TIMEOUT: Duration = Duration::from_secs(60);
/// Cluster name used for an ha.d directory without an hb `cluster` line.
pub const HA_DIR_CLUSTER: &str = "heartbeat";
/// HKDF salt: versioned so a future wire format can change keys cleanly.
pub const KEY_SALT: &[u8] = b"hb heartbeat v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub cluster: String,
    pub cluster_id: u32,
    pub udp_port: u16,
    pub auth: Auth,
    /// In priority order (the order of ha.cf `node` lines).
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub timing: Timing,
    pub auto_failback: bool,
    pub groups: Vec<Group>,
    pub ping_nodes: Vec<IpAddr>,
    pub ping_groups: Vec<PingGroup>,
    /// Whether connectivity to the ping nodes moves groups (ipfail/pingd).
    /// Heartbeat only watched ping nodes unless ha.cf respawned ipfail or
    /// pingd; TOML's `ping_nodes` always decide.
    pub ping_moves_groups: bool,
    /// Two candidates, the other dead: take the group only while reaching
    /// a ping target (hb's tie-break against a partition; the default), or
    /// regardless, as Heartbeat did (TOML `two_node_tie_break = "none"`).
    pub ping_tie_break: bool,
    /// Heartbeat's `deadping`, when given: how long a ping node may stay
    /// silent before it counts as unreachable. See [`Config::deadping`].
    pub deadping: Option<Duration>,
    pub fencing: Option<Fencing>,
    pub arp: ArpSettings,
    pub control_socket: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    pub script_dirs: Vec<PathBuf>,
    pub script_timeout: Duration,
    /// The heartbeat sender runs SCHED_FIFO.
    pub realtime: bool,
    /// Fence the service addresses with the heartbeat lease (see `guard` in hb-ebpf).
    pub service_lease: bool,
    /// Ignored directives and other non-fatal findings, with file:line.
    pub warnings: Vec<Diag>,
    /// The settings left at their default (`keepalive`, `udpport`, ...), as
    /// the ha.d directives are named (for TOML too, so that `check` says
    /// the same of both); None when not known (built in code).
    pub unset: Option<Vec<&'static str>>,
    /// The files the configuration was read from.
    pub source: Vec<PathBuf>,
}

impl Config {
    /// A node by name; names compare case-insensitively, as in Heartbeat.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    pub fn node_by_id(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node this host is (`name` is normally `uname -n`), or an error
    /// saying which names the cluster knows.
    pub fn local_node(&self, name: &str) -> Result<&Node, Diag> {
        self.node(name).ok_or_else(|| {
            let known: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            let file = self
                .source
                .first()
                .map_or(Path::new("<config>"), PathBuf::as_path);
            Diag::error(
                file,
                format!(
                    "this host (`{name}`) is not a node of cluster `{}` (nodes: {}); \
                     node names must match `uname -n`",
                    self.cluster,
                    known.join(", ")
                ),
            )
            .field("node")
        })
    }

    /// 0 = most preferred (first `node` line / first [[node]]).
    pub fn priority(&self, node: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(node))
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn group_by_id(&self, id: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// A group by its name or, for a haresources group, its whole first
    /// resource (`Group::aka`).
    pub fn group_named(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.answers_to(name))
    }

    /// Groups this node may run (it is one of their candidates).
    pub fn groups_for<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups
            .iter()
            .filter(move |g| g.nodes.iter().any(|n| n.eq_ignore_ascii_case(node)))
    }

    /// Groups whose preferred (first) candidate is this node.
    pub fn preferred_groups<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups.iter().filter(move |g| {
            g.nodes
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(node))
        })
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// fnv1a32(name) unless given in TOML. Carried in every heartbeat.
    pub id: u32,
    /// Link name -> this node's address on that link (may be empty for bcast).
    pub addrs: BTreeMap<String, IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Bcast,
    Mcast {
        group: IpAddr,
        ttl: u8,
        loopback: bool,
    },
    Ucast {
        peers: Vec<IpAddr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub iface: String,
    pub kind: LinkKind,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Interval between heartbeats.
    pub keepalive: Duration,
    /// Silence after which a peer is declared dead.
    pub deadtime: Duration,
    /// Silence after which a late heartbeat is logged.
    pub warntime: Duration,
    /// Deadtime used right after start-up, while networks come up.
    pub initdead: Duration,
}

impl Timing {
    /// Heartbeat's defaults (config.c): keepalive 1s, deadtime 30s, warntime
    /// deadtime/2. TOML's initdead defaults to 2 x deadtime, the minimum
    /// Heartbeat's documentation asks for; an ha.d directory uses
    /// [`Timing::heartbeat_defaults`], Heartbeat's own rule.
    pub fn with_defaults(
        keepalive: Option<Duration>,
        deadtime: Option<Duration>,
        warntime: Option<Duration>,
        initdead: Option<Duration>,
    ) -> Timing {
        Self::with_initdead_rule(keepalive, deadtime, warntime, initdead, |d| {
            d.saturating_mul(2)
        })
    }

    /// As [`Timing::with_defaults`], with initdead as Heartbeat's
    /// init_config() computed it when unset (see [`heartbeat_initdead`]).
    pub fn heartbeat_defaults(
        keepalive: Option<Duration>,
        deadtime: Option<Duration>,
        warntime: Option<Duration>,
        initdead: Option<Duration>,
    ) -> Timing {
        Self::with_initdead_rule(keepalive, deadtime, warntime, initdead, heartbeat_initdead)
    }

    pub fn with_initdead_rule(
        keepalive: Option<Duration>,
        deadtime: Option<Duration>,
        warntime: Option<Duration>,
        initdead: Option<Duration>,
        rule: fn(Duration) -> Duration,
    ) -> Timing {
        let keepalive = keepalive.unwrap_or(Duration::from_secs(1));
        let deadtime = deadtime.unwrap_or(Duration::from_secs(30));
        Timing {
            keepalive,
            deadtime,
            warntime: warntime.unwrap_or(deadtime / 2),
            initdead: initdead.unwrap_or_else(|| rule(deadtime)),
        }
    }
}

/// Heartbeat's initdead when unset: deadtime if deadtime is over 10 s, 12 s
/// if deadtime is under 6 s, else twice deadtime. From Heartbeat 3.0's
/// heartbeat/config.c, init_config(): `if (config->deadtime_ms > 10000)
/// initial_deadtime_ms = deadtime_ms; else if (deadtime_ms < 6000)
/// initial_deadtime_ms = 12000; else initial_deadtime_ms = 2 * deadtime_ms`.
pub fn heartbeat_initdead(deadtime: Duration) -> Duration {
    if deadtime > Duration::from_secs(10) {
        deadtime
    } else if deadtime < Duration::from_secs(6) {
        Duration::from_secs(12)
    } else {
        deadtime * 2
    }
}

/// The shortest default for `deadping`: a ping node is someone else's
/// machine across the network, answering when its scheduler lets it; with
/// millisecond deadtimes, two missed echoes (a VM pausing for 2 ms, seen in
/// the lab at every link change) would move every group of every node at
/// once. Pulled cables are caught from the carrier at once anyway.
pub const MIN_DEFAULT_DEADPING: Duration = Duration::from_millis(20);

impl Config {
    /// How long a ping node may stay silent: `deadping` as configured, else
    /// deadtime (as Heartbeat) but at least [`MIN_DEFAULT_DEADPING`].
    pub fn deadping(&self) -> Duration {
        self.deadping
            .unwrap_or_else(|| self.timing.deadtime.max(MIN_DEFAULT_DEADPING))
    }

    /// How many ping targets the cluster rules count (connectivity, the
    /// two-node quorum): none when they are watched only (Heartbeat
    /// without ipfail/pingd); the pinger still runs for status and logs.
    pub fn deciding_ping_targets(&self) -> usize {
        if self.ping_moves_groups {
            self.ping_nodes.len() + self.ping_groups.len()
        } else {
            0
        }
    }
}

/// Where a group was defined, so `check` can point at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// What logs, `status`, metrics and `standby GROUP` call it: short
    /// (haresources: see `aka`).
    pub name: String,
    /// The group's whole first resource as haresources wrote it, when `name`
    /// is a shorter form of it (`192.168.32.21` for
    /// `MacTakeover::eth0::00:1E:68:1E:99:5E::macvlan::192.168.32.21/24`).
    /// `standby`, `takeover` and checks.toml accept it as well as `name`;
    /// state is kept under it (`key`).
    pub aka: Option<String>,
    /// fnv1a32 of the name as first written (`aka` when there is one), so a
    /// group's id, on the wire and in the kernel maps, does not depend on
    /// how it is displayed.
    pub id: u32,
    /// Candidate nodes, most preferred first.
    pub nodes: Vec<String>,
    /// Started left to right, stopped right to left.
    pub resources: Vec<ResourceSpec>,
    /// Health checks (`[[group.check]]`, or `ha.d/checks.toml`).
    pub checks: Vec<crate::health::CheckSpec>,
    pub origin: Option<Origin>,
    /// For an IP resource (by index in `resources`) whose line left out the
    /// prefix or the interface (haresources allows both, as Heartbeat's
    /// findif took them from the routing table): where hb found them.
    /// Resources not listed were written in full.
    pub found: BTreeMap<usize, IpFound>,
}

impl Group {
    /// Whether `name` is this group's name or its `aka`. Case does not
    /// matter: a short name may be a MAC or an IPv6 address, which
    /// haresources may write in either case.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self
                .aka
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(name))
    }

    /// What the group's state is kept under and its resources are named
    /// by: restore state and epochs, a macvlan child's default name,
    /// `OCF_RESOURCE_INSTANCE`. The name as first written (`aka`, else
    /// `name`), so that none of them changes with the short name, nor when
    /// a clash makes the short name the whole one.
    pub fn key(&self) -> &str {
        self.aka.as_deref().unwrap_or(&self.name)
    }

    /// What its resources say about its addresses and interfaces.
    pub fn facts(&self) -> GroupResources<'_> {
        GroupResources::new(self.key(), &self.resources)
    }
}

/// Where an IP resource's prefix and interface come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpFound {
    pub prefix: Found,
    pub iface: Found,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Written,
    /// From this host's connected route when the configuration was read
    /// (the subnet of one of its addresses holding the address).
    Route {
        iface: String,
        prefix: u8,
    },
    /// No connected route of this host holds the address: the prefix is
    /// the /24 (/64) fallback; the interface is looked for again when the
    /// group starts.
    NotFound,
}

/// A set of addresses that counts as reachable if any member answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingGroup {
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fencing {
    /// Run via `sh -c`; `%n` is replaced by the name of the node to fence.
    pub command: String,
    pub timeout: Duration,
}

/// Announcement settings: one type shared with the resources that use them.
pub use crate::model::ArpSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Heartbeat's crc: a checksum, authenticates nothing.
    Crc,
    /// Heartbeat's sha1 secret, kept for compatibility of configuration only:
    /// the key is derived with HKDF-SHA256 (info "sha1").
    Sha1,
    /// As Sha1, info "md5".
    Md5,
    /// Native: a raw key or a secret (info "secret").
    Key,
}

impl AuthMethod {
    /// The HKDF info string for this method, as bytes.
    pub fn info(self) -> &'static [u8] {
        match self {
            AuthMethod::Crc => b"crc",
            AuthMethod::Sha1 => b"sha1",
            AuthMethod::Md5 => b"md5",
            AuthMethod::Key => b"secret",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    pub method: AuthMethod,
    /// Heartbeat MAC key; all zero for crc.
    pub key: [u8; 16],
    /// False for crc: anyone on the link can forge heartbeats.
    pub authenticated: bool,
}

impl Auth {
    pub fn crc() -> Auth {
        Auth {
            method: AuthMethod::Crc,
            key: [0; 16],
            authenticated: false,
        }
    }

    /// Key from a shared secret: HKDF-SHA256, salt `KEY_SALT`, info = the
    /// method name (`sha1`, `md5`, or `secret` for TOML `secret = ...`).
    pub fn from_secret(method: AuthMethod, secret: &[u8]) -> Auth {
        Auth {
            method,
            key: derive_key(method.info(), secret),
            authenticated: true,
        }
    }
}

/// Never print the key: configurations end up in logs and bug reports.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("method", &self.method)
            .field("key", &"<redacted>")
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

/// HKDF-SHA256(salt = `KEY_SALT`, ikm = secret, info) -> 16 bytes.
pub fn derive_key(info: &[u8], secret: &[u8]) -> [u8; 16] {
    let hk = Hkdf::<Sha256>::new(Some(KEY_SALT), secret);
    let mut out = [0u8; 16];
    hk.expand(info, &mut out)
        .expect("16 bytes is a valid HKDF-SHA256 output length");
    out
}

/// FNV-1a, 32 bits: stable ids from names, so every node computes the same
/// ids without coordination.
pub fn fnv1a32(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer (fuzz/regressions/haresources/keepalive-overflow):
    /// the default initdead (2 x deadtime) overflowed for a huge deadtime.
    #[test]
    fn default_initdead_of_a_huge_deadtime_saturates() {
        let t = Timing::with_defaults(None, Some(Duration::MAX), None, None);
        assert_eq!(t.initdead, Duration::MAX);
    }

    #[test]
    fn fnv1a32_known_vectors() {
        // Reference values of the FNV-1a 32-bit test suite.
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn derived_keys_depend_on_method_and_secret() {
        let a = derive_key(b"sha1", b"HI!");
        assert_eq!(a, derive_key(b"sha1", b"HI!"));
        assert_ne!(a, derive_key(b"md5", b"HI!"));
        assert_ne!(a, derive_key(b"sha1", b"HI?"));
        assert_ne!(a, [0; 16]);
    }

    #[test]
    fn auth_debug_redacts_the_key() {
        let auth = Auth::from_secret(AuthMethod::Key, b"s3cret");
        let shown = format!("{auth:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", auth.key)), "{shown}");
    }

    #[test]
    fn heartbeat_default_timing() {
        let t = Timing::with_defaults(None, None, None, None);
        assert_eq!(t.keepalive, Duration::from_secs(1));
        assert_eq!(t.deadtime, Duration::from_secs(30));
        assert_eq!(t.warntime, Duration::from_secs(15));
        assert_eq!(t.initdead, Duration::from_secs(60));
        let t = Timing::heartbeat_defaults(None, None, None, None);
        assert_eq!(t.initdead, Duration::from_secs(30));
    }

    #[test]
    fn initdead_default_is_heartbeats_rule() {
        let s = Duration::from_secs;
        let initdead = |d| Timing::heartbeat_defaults(None, Some(d), None, None).initdead;
        assert_eq!(initdead(s(30)), s(30)); // over 10 s: deadtime
        assert_eq!(
            initdead(Duration::from_millis(10_001)),
            Duration::from_millis(10_001)
        );
        assert_eq!(initdead(s(10)), s(20)); // 6-10 s: twice deadtime
        assert_eq!(initdead(s(6)), s(12));
        assert_eq!(initdead(s(5)), s(12)); // under 6 s: 12 s
        assert_eq!(initdead(Duration::from_millis(300)), s(12));
        // Written: as written.
        let t = Timing::heartbeat_defaults(None, Some(s(5)), None, Some(s(7)));
        assert_eq!(t.initdead, s(7));
    }
}
