//! The TOML file's shape, as serde reads it. Every table denies unknown keys
//! and keeps spans (`Spanned`), so later checks can name the line.
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ::toml::Spanned;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::config::duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileT {
    pub(super) cluster: Spanned<String>,
    pub(super) cluster_id: Option<u32>,
    pub(super) udp_port: Option<Spanned<u16>>,
    pub(super) auto_failback: Option<bool>,
    #[serde(default)]
    pub(super) ping_nodes: Vec<Spanned<String>>,
    pub(super) control_socket: Option<Spanned<PathBuf>>,
    pub(super) metrics_addr: Option<Spanned<String>>,
    pub(super) script_dirs: Option<Spanned<Vec<Spanned<PathBuf>>>>,
    pub(super) script_timeout: Option<Spanned<Dur>>,
    pub(super) realtime: Option<bool>,
    pub(super) service_lease: Option<bool>,
    pub(super) two_node_tie_break: Option<Spanned<String>>,
    pub(super) timing: Option<TimingT>,
    pub(super) auth: Spanned<AuthT>,
    #[serde(default)]
    pub(super) node: Vec<Spanned<NodeT>>,
    #[serde(default)]
    pub(super) link: Vec<Spanned<LinkT>>,
    #[serde(default)]
    pub(super) group: Vec<Spanned<GroupT>>,
    #[serde(default)]
    pub(super) ping_group: Vec<Spanned<PingGroupT>>,
    pub(super) fencing: Option<Spanned<FencingT>>,
    pub(super) arp: Option<ArpT>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimingT {
    pub(super) keepalive: Option<Spanned<Dur>>,
    pub(super) deadtime: Option<Spanned<Dur>>,
    pub(super) warntime: Option<Spanned<Dur>>,
    pub(super) initdead: Option<Spanned<Dur>>,
    pub(super) deadping: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthT {
    pub(super) method: Option<Spanned<String>>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeT {
    pub(super) name: Spanned<String>,
    pub(super) id: Option<u32>,
    #[serde(default)]
    pub(super) addrs: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkT {
    pub(super) name: Spanned<String>,
    pub(super) iface: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) group: Option<Spanned<String>>,
    pub(super) ttl: Option<Spanned<u8>>,
    pub(super) loopback: Option<Spanned<bool>>,
    pub(super) peers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupT {
    pub(super) name: Spanned<String>,
    pub(super) nodes: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) resource: Vec<Spanned<ResourceT>>,
    #[serde(default)]
    pub(super) check: Vec<Spanned<CheckT>>,
}

/// `ha.d/checks.toml`: the checks of a Heartbeat directory's groups (ha.cf
/// and haresources have no words for them), each naming its group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChecksFileT {
    #[serde(default)]
    pub(super) check: Vec<Spanned<CheckT>>,
}

/// One flat table for every check type, as resources (keys that do not
/// belong to the `type` are named with their line).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckT {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) name: Option<Spanned<String>>,
    /// checks.toml only: the group, by its name in `status`.
    pub(super) group: Option<Spanned<String>>,
    pub(super) process: Option<Spanned<String>>,
    pub(super) pidfile: Option<Spanned<PathBuf>>,
    pub(super) unit: Option<Spanned<String>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) status: Option<Spanned<u16>>,
    pub(super) body: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<PathBuf>>,
    pub(super) iface: Option<Spanned<String>>,
    pub(super) resource: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<Dur>>,
    pub(super) timeout: Option<Spanned<Dur>>,
    pub(super) rise: Option<Spanned<u32>>,
    pub(super) fall: Option<Spanned<u32>>,
    pub(super) hold_down: Option<Spanned<DurOrZero>>,
    pub(super) when: Option<Spanned<String>>,
    pub(super) on_fail: Option<Spanned<String>>,
    pub(super) max_restarts: Option<Spanned<u32>>,
    pub(super) restart_window: Option<Spanned<Dur>>,
}

/// A duration where "0s" means none (the hold-down).
#[derive(Debug, Clone, Copy)]
pub(super) struct DurOrZero(pub(super) Duration);

impl<'de> Deserialize<'de> for DurOrZero {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(DurVisitor { allow_off: true })?;
        Ok(DurOrZero(v.unwrap_or_default()))
    }
}

/// One flat table for every resource type, so each key keeps its own span
/// and a key that does not belong to the `type` is named with its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResourceT {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) iface: Option<Spanned<String>>,
    pub(super) broadcast: Option<Spanned<String>>,
    pub(super) label: Option<Spanned<String>>,
    pub(super) mac: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) child: Option<Spanned<String>>,
    pub(super) gateway: Option<Spanned<String>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) args: Option<Spanned<Vec<String>>>,
    pub(super) provider: Option<Spanned<String>>,
    pub(super) params: Option<Spanned<BTreeMap<String, String>>>,
    pub(super) timeout: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PingGroupT {
    pub(super) name: Spanned<String>,
    pub(super) addrs: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FencingT {
    pub(super) command: Spanned<String>,
    pub(super) timeout: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArpT {
    pub(super) count: Option<Spanned<u32>>,
    pub(super) interval: Option<Spanned<Dur>>,
    pub(super) reply_form: Option<bool>,
    pub(super) refresh: Option<Spanned<Refresh>>,
    pub(super) na_router_flag: Option<bool>,
}

/// A duration string with units; a bare number is refused with a hint.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dur(pub(super) Duration);

/// `arp.refresh`: a duration, or "off".
#[derive(Debug, Clone, Copy)]
pub(super) struct Refresh(pub(super) Option<Duration>);

/// Reads a duration string; `off` is accepted only when `allow_off`.
pub(super) struct DurVisitor {
    pub(super) allow_off: bool,
}

fn needs_units<E: de::Error>(n: impl fmt::Display) -> E {
    E::custom(format!(
        "a duration needs units: write \"{n}s\" or \"{n}ms\", not {n}"
    ))
}

impl Visitor<'_> for DurVisitor {
    type Value = Option<Duration>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(duration::TOML_EXPECTED)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        if self.allow_off && s == "off" {
            return Ok(None);
        }
        duration::parse_with_units(s).map(Some).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Err(needs_units(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Err(needs_units(n))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Err(needs_units(n))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(DurVisitor { allow_off: false })?;
        Ok(Dur(v.unwrap_or_default()))
    }
}

impl<'de> Deserialize<'de> for Refresh {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurVisitor { allow_off: true })
            .map(Refresh)
    }
}
