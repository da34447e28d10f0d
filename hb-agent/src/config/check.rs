//! `check`: what can only be verified on the host, read-only. Missing or
//! non-executable scripts are errors (the group could never start); missing
//! interfaces are warnings, since `check` may run on another machine than
//! the node (e.g. when validating a cluster's files centrally).
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::diag::Diag;
use super::duration::display;
use super::model::{Config, Found, Group, LinkKind};
use crate::cluster::LAST_MAN_STANDING_DEADTIMES;
use crate::model::{HostnameSpec, IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec};
use crate::model::{default_broadcast, fmt_mac};

const SYS_CLASS_NET: &str = "/sys/class/net";
/// OCF_ROOT's standard location; agents live in resource.d/PROVIDER/AGENT.
const OCF_ROOT: &str = "/usr/lib/ocf";

pub fn check(cfg: &Config) -> Vec<Diag> {
    check_in(cfg, Path::new(SYS_CLASS_NET), Path::new(OCF_ROOT))
}

/// `check` with the system directories given, for tests.
pub(crate) fn check_in(cfg: &Config, net: &Path, ocf_root: &Path) -> Vec<Diag> {
    let mut diags = Vec::new();
    for group in &cfg.groups {
        for res in &group.resources {
            if let ResourceSpec::Script(ScriptSpec { name, kind, .. }) = res {
                script(cfg, group, name, kind, ocf_root, &mut diags);
            }
        }
    }
    interfaces(cfg, net, &mut diags);
    super::check_probes::host(cfg, &mut diags);
    diags
}

/// Where a group's problems are reported: its haresources/TOML line.
fn at_group(cfg: &Config, group: &Group, diag: fn(&Path, String) -> Diag, msg: String) -> Diag {
    match &group.origin {
        Some(o) => diag(&o.file, msg).at(o.line),
        None => diag(main_file(cfg), msg),
    }
}

fn main_file(cfg: &Config) -> &Path {
    cfg.source
        .first()
        .map_or(Path::new("<config>"), PathBuf::as_path)
}

fn script(
    cfg: &Config,
    group: &Group,
    name: &str,
    kind: &ScriptKind,
    ocf_root: &Path,
    diags: &mut Vec<Diag>,
) {
    let candidates = script_candidates(cfg, name, kind, ocf_root);
    let error = |msg: String| at_group(cfg, group, Diag::error, msg).field(name);
    match candidates.iter().find(|p| p.exists()) {
        Some(path) if !is_executable(path) => diags.push(error(format!(
            "{} (group `{}`) is not an executable file",
            path.display(),
            group.name
        ))),
        Some(_) => {}
        None => {
            let dirs: Vec<String> = candidates
                .iter()
                .filter_map(|p| p.parent().map(|d| d.display().to_string()))
                .collect();
            diags.push(error(format!(
                "script `{name}` (group `{}`) not found in {}",
                group.name,
                dirs.join(", ")
            )));
        }
    }
}

/// Where a script is looked for, in order.
fn script_candidates(cfg: &Config, name: &str, kind: &ScriptKind, ocf_root: &Path) -> Vec<PathBuf> {
    match kind {
        ScriptKind::Ocf { provider } => vec![ocf_root.join("resource.d").join(provider).join(name)],
        ScriptKind::Heartbeat | ScriptKind::Lsb => {
            cfg.script_dirs.iter().map(|d| d.join(name)).collect()
        }
    }
}

#[cfg(unix)]
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
pub(crate) fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn interfaces(cfg: &Config, net: &Path, diags: &mut Vec<Diag>) {
    let mut seen = BTreeSet::new();
    let mut missing = |iface: &str, what: String, diags: &mut Vec<Diag>, group: Option<&Group>| {
        if !seen.insert(iface.to_string()) || net.join(iface).exists() {
            return;
        }
        let msg = format!("interface `{iface}` ({what}) does not exist on this host");
        let warn = |f: &Path, m: String| Diag::warning(f, m);
        diags.push(
            match group {
                Some(g) => at_group(cfg, g, warn, msg),
                None => warn(main_file(cfg), msg),
            }
            .field("iface"),
        );
    };
    for link in &cfg.links {
        missing(&link.iface, format!("link `{}`", link.name), diags, None);
    }
    for group in &cfg.groups {
        for iface in group.facts().host_interfaces() {
            missing(iface, format!("group `{}`", group.name), diags, Some(group));
        }
    }
}

/// What `check` understood: the plan hb would run on one node, for people
/// (`render`) and tools (serde, `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub source: Vec<String>,
    /// The node this plan is for (`--node`, else the host name).
    pub this_node: String,
    /// False when `this_node` is not one of the cluster's nodes.
    pub is_a_node: bool,
    /// In priority order.
    pub nodes: Vec<PlanNode>,
    pub links: Vec<PlanLink>,
    pub timing: Vec<PlanValue>,
    /// Groups in start order (haresources/TOML order).
    pub groups: Vec<PlanGroup>,
    pub ping: Vec<String>,
    pub ping_groups: Vec<PlanPingGroup>,
    /// Whether connectivity to them moves groups (ipfail/pingd) or they
    /// are watched only.
    pub ping_moves_groups: bool,
    pub deadping: PlanValue,
    pub fencing: Option<String>,
    /// Every directive hb does not act on, and what that changes.
    pub ignored: Vec<PlanIgnored>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanNode {
    pub name: String,
    pub id: String,
    pub priority: usize,
    pub this_node: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanLink {
    pub name: String,
    pub iface: String,
    pub kind: String,
    pub port: u16,
    /// Where heartbeats go: the peers (ucast), the group (mcast) or
    /// 255.255.255.255 (bcast).
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanValue {
    pub name: String,
    pub value: String,
    /// "written" or "default" (empty when not known).
    pub from: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanGroup {
    pub name: String,
    /// Its whole first resource, when `name` is short (haresources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aka: Option<String>,
    pub id: String,
    pub at: String,
    /// Most preferred first.
    pub candidates: Vec<String>,
    /// Whether this node is a candidate.
    pub here: bool,
    /// In start order (stopped in reverse).
    pub resources: Vec<PlanResource>,
    /// When this group may be taken over (cluster rule 6), in words.
    pub quorum: String,
    /// Its health checks, in words.
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanResource {
    /// ip | mac | hostname | script | lsb | ocf
    pub kind: String,
    /// One line, as hb will run it.
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanPingGroup {
    pub name: String,
    pub addrs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanIgnored {
    pub at: String,
    pub directive: String,
    pub what: String,
}

/// The plan for node `node` (compared case-insensitively).
pub fn plan(cfg: &Config, node: &str) -> Plan {
    plan_in(cfg, node, Path::new(OCF_ROOT))
}

pub(crate) fn plan_in(cfg: &Config, node: &str, ocf_root: &Path) -> Plan {
    let this = cfg.node(node).map(|n| n.name.clone());
    let is_a_node = this.is_some();
    let this = this.unwrap_or_else(|| node.to_string());
    let from = |name: &str| match &cfg.unset {
        Some(unset) if unset.contains(&name) => "default".to_string(),
        Some(_) => "written".to_string(),
        None => String::new(),
    };
    let d = display;
    let t = &cfg.timing;
    let timing = [
        ("keepalive", d(t.keepalive)),
        ("deadtime", d(t.deadtime)),
        ("warntime", d(t.warntime)),
        ("initdead", d(t.initdead)),
        (
            "auto_failback",
            if cfg.auto_failback { "on" } else { "off" }.to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| PlanValue {
        name: name.to_string(),
        value,
        from: from(name),
    })
    .collect();
    let links = cfg
        .links
        .iter()
        .map(|l| {
            let (kind, to) = match &l.kind {
                LinkKind::Bcast => ("bcast".to_string(), vec!["255.255.255.255".to_string()]),
                LinkKind::Mcast {
                    group,
                    ttl,
                    loopback,
                } => (
                    format!("mcast (ttl {ttl}, loop {})", u8::from(*loopback)),
                    vec![group.to_string()],
                ),
                LinkKind::Ucast { peers } => (
                    "ucast".to_string(),
                    peers.iter().map(|p| p.to_string()).collect(),
                ),
            };
            PlanLink {
                name: l.name.clone(),
                iface: l.iface.clone(),
                kind,
                port: l.port,
                to,
            }
        })
        .collect();
    let groups = cfg
        .groups
        .iter()
        .map(|g| PlanGroup {
            name: g.name.clone(),
            aka: g.aka.clone(),
            id: format!("{:#010x}", g.id),
            at: g.origin.as_ref().map_or(String::new(), |o| {
                format!("{}:{}", o.file.display(), o.line)
            }),
            candidates: g.nodes.clone(),
            here: g.nodes.iter().any(|n| n.eq_ignore_ascii_case(&this)),
            resources: g
                .resources
                .iter()
                .enumerate()
                .map(|(i, r)| plan_resource(cfg, g, i, r, ocf_root))
                .collect(),
            quorum: quorum_rule(g.nodes.len(), cfg),
            checks: g.checks.iter().map(super::check_probes::plan).collect(),
        })
        .collect();
    Plan {
        source: cfg.source.iter().map(|p| p.display().to_string()).collect(),
        nodes: cfg
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| PlanNode {
                name: n.name.clone(),
                id: format!("{:#010x}", n.id),
                priority: i,
                this_node: n.name == this,
            })
            .collect(),
        this_node: this,
        is_a_node,
        links,
        timing,
        groups,
        ping: cfg.ping_nodes.iter().map(|a| a.to_string()).collect(),
        ping_moves_groups: cfg.ping_moves_groups,
        ping_groups: cfg
            .ping_groups
            .iter()
            .map(|g| PlanPingGroup {
                name: g.name.clone(),
                addrs: g.addrs.iter().map(|a| a.to_string()).collect(),
            })
            .collect(),
        deadping: PlanValue {
            name: "deadping".into(),
            value: d(cfg.deadping()),
            from: match from("deadping").as_str() {
                "default" => "default (deadtime)".to_string(),
                other => other.to_string(),
            },
        },
        fencing: cfg.fencing.as_ref().map(|f| f.command.clone()),
        ignored: ignored(cfg),
    }
}

/// Rule 6 of `cluster` for a group of `candidates`, in words.
fn quorum_rule(candidates: usize, cfg: &Config) -> String {
    let pings = cfg.deciding_ping_targets();
    match candidates {
        0 | 1 => "none needed (one candidate)".into(),
        2 if pings == 0 => "none: a candidate takes the group when the other is dead, \
                            as Heartbeat did (no ping targets deciding)"
            .into(),
        2 if !cfg.ping_tie_break => "none: a candidate takes the group when the other is \
                                     dead, as Heartbeat did (two_node_tie_break = \"none\")"
            .into(),
        2 => "the other candidate alive, or a ping target reached: a node that reaches \
              nothing does not take over from a dead peer (hb's tie-break against a \
              partition; Heartbeat took over; TOML two_node_tie_break = \"none\" does too)"
            .into(),
        n => format!(
            "a strict majority of the {n} candidates visible ({} of {n}; a candidate never \
             heard counts); a candidate dead for {LAST_MAN_STANDING_DEADTIMES} deadtimes while \
             the rest had quorum stops counting, so the survivor of failures one after another \
             takes over (last man standing, as Heartbeat did), and candidates lost together (a \
             partition) leave the rest without quorum",
            n / 2 + 1
        ),
    }
}

fn plan_resource(
    cfg: &Config,
    group: &Group,
    index: usize,
    r: &ResourceSpec,
    ocf_root: &Path,
) -> PlanResource {
    match r {
        ResourceSpec::IpAddr(IpSpec {
            addr,
            prefix,
            iface,
            broadcast,
            label,
            ..
        }) => {
            let found = group.found.get(&index);
            let said = |f: Option<&Found>, what: &str| match f {
                None | Some(Found::Written) => "written".to_string(),
                Some(Found::Route { iface, prefix }) => {
                    format!("from this host's routes ({iface}, /{prefix})")
                }
                Some(Found::NotFound) if what == "prefix" => {
                    "not given, and no connected route of this host holds it: assumed".to_string()
                }
                Some(Found::NotFound) => {
                    "not given: the interface whose subnet holds it, when the group starts"
                        .to_string()
                }
            };
            let prefix_from = said(found.map(|f| &f.prefix), "prefix");
            let iface_from = said(found.map(|f| &f.iface), "iface");
            // The interface hb will use: written, or the route's.
            let shown_iface = iface.clone().or_else(|| match found.map(|f| &f.iface) {
                Some(Found::Route { iface, .. }) => Some(iface.clone()),
                _ => None,
            });
            let bcast = match addr {
                IpAddr::V4(v4) => broadcast
                    .or_else(|| default_broadcast(*v4, *prefix))
                    .map(|b| b.to_string()),
                IpAddr::V6(_) => None,
            };
            let mut text = format!(
                "address {addr}/{prefix} ({prefix_from}) on {} ({iface_from})",
                shown_iface.as_deref().unwrap_or("(auto)")
            );
            if let Some(b) = &bcast {
                let how = if broadcast.is_some() {
                    ""
                } else {
                    " (from the prefix)"
                };
                text.push_str(&format!(", broadcast {b}{how}"));
            }
            if let Some(l) = label {
                text.push_str(&format!(", label {l}"));
            }
            PlanResource {
                kind: "ip".into(),
                text,
                addr: Some(addr.to_string()),
                prefix: Some(*prefix),
                prefix_from: Some(prefix_from),
                iface: shown_iface,
                iface_from: Some(iface_from),
                broadcast: bcast,
                label: label.clone(),
                ..Default::default()
            }
        }
        ResourceSpec::Mac(
            m @ MacSpec {
                iface,
                mac,
                mode,
                addr,
                gateway,
            },
        ) => {
            let mode_text = match mode {
                MacMode::Replace => format!("replace: {iface} itself takes the MAC"),
                MacMode::Macvlan { .. } => format!(
                    "macvlan: child {} of {iface} takes the MAC",
                    m.child(group.key()).unwrap_or_default()
                ),
            };
            let mut text = format!("MAC {} ({mode_text})", fmt_mac(mac));
            if let Some((a, p)) = addr {
                text.push_str(&format!(", address {a}/{p}"));
            }
            if let Some(g) = gateway {
                text.push_str(&format!(", default route via {g}"));
            }
            PlanResource {
                kind: "mac".into(),
                text,
                addr: addr.map(|(a, _)| a.to_string()),
                prefix: addr.map(|(_, p)| p),
                iface: Some(iface.clone()),
                mac: Some(fmt_mac(mac)),
                mac_mode: Some(match mode {
                    MacMode::Replace => "replace".into(),
                    MacMode::Macvlan { .. } => "macvlan".into(),
                }),
                ..Default::default()
            }
        }
        ResourceSpec::Hostname(HostnameSpec { name }) => PlanResource {
            kind: "hostname".into(),
            text: format!("hostname {name}"),
            ..Default::default()
        },
        ResourceSpec::Script(ScriptSpec {
            name, args, kind, ..
        }) => {
            let path = script_candidates(cfg, name, kind, ocf_root)
                .into_iter()
                .find(|p| p.exists());
            let shown = path.as_ref().map_or_else(
                || format!("{name} (not found)"),
                |p| p.display().to_string(),
            );
            let (k, how) = match kind {
                ScriptKind::Ocf { .. } => ("ocf", "start|stop|monitor, OCF_RESKEY_*"),
                ScriptKind::Lsb => ("lsb", "start|stop|status"),
                ScriptKind::Heartbeat => ("script", "start|stop|status"),
            };
            let args = if args.is_empty() {
                String::new()
            } else {
                format!(" {}", args.join(" "))
            };
            PlanResource {
                kind: k.into(),
                text: format!("{shown}{args} {how}"),
                path: path.map(|p| p.display().to_string()),
                ..Default::default()
            }
        }
    }
}

/// Every directive read and not acted on (the "ignored:" and "unknown
/// directive" warnings), with what that changes.
fn ignored(cfg: &Config) -> Vec<PlanIgnored> {
    let media = cfg.links.len();
    cfg.warnings
        .iter()
        .filter(|w| {
            w.message.starts_with("ignored: ") || w.message.starts_with("unknown directive")
        })
        .map(|w| {
            let directive = w.field.clone().unwrap_or_default();
            let mut what = w
                .message
                .strip_prefix("ignored: ")
                .unwrap_or(&w.message)
                .to_string();
            if directive == "serial" {
                let names: Vec<&str> = cfg.links.iter().map(|l| l.name.as_str()).collect();
                what.push_str(&format!(
                    "; {media} heartbeat medi{} left: {}",
                    if media == 1 { "um" } else { "a" },
                    names.join(", ")
                ));
            }
            PlanIgnored {
                at: match w.line {
                    Some(l) => format!("{}:{l}", w.file.display()),
                    None => w.file.display().to_string(),
                },
                directive,
                what,
            }
        })
        .collect()
}

impl Plan {
    /// The plan as text, one fact a line.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut line = |s: String| {
            o.push_str(&s);
            o.push('\n');
        };
        line(format!("plan for node {}", self.this_node));
        if !self.is_a_node {
            line(format!(
                "  (not one of the nodes: give --node NAME; as {} this host runs no group)",
                self.this_node
            ));
        }
        line("nodes (priority order):".into());
        for n in &self.nodes {
            let me = if n.this_node { "  <- this node" } else { "" };
            line(format!("  {}. {} id {}{me}", n.priority + 1, n.name, n.id));
        }
        line("heartbeat media:".into());
        for l in &self.links {
            line(format!(
                "  {} on {}: {} port {} to {}",
                l.name,
                l.iface,
                l.kind,
                l.port,
                if l.to.is_empty() {
                    "nobody from this host".to_string()
                } else {
                    l.to.join(", ")
                }
            ));
        }
        line("timing:".into());
        for v in &self.timing {
            let from = if v.from.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.from)
            };
            line(format!("  {} {}{from}", v.name, v.value));
        }
        line(
            "groups (this node starts its groups one at a time in this order, and stops \
             them in reverse; each group's resources likewise):"
                .into(),
        );
        for g in &self.groups {
            let here = if g.here {
                ""
            } else {
                "  (this node is not a candidate)"
            };
            let aka = g
                .aka
                .as_ref()
                .map_or(String::new(), |a| format!(" (also `{a}`)"));
            line(format!(
                "  {}{aka} id {} at {}: candidates {}{here}",
                g.name,
                g.id,
                g.at,
                g.candidates.join(", ")
            ));
            for (i, r) in g.resources.iter().enumerate() {
                line(format!("    {}. {}", i + 1, r.text));
            }
            line(format!("    quorum to take it: {}", g.quorum));
            for c in &g.checks {
                line(format!("    check {c}"));
            }
        }
        if self.ping.is_empty() && self.ping_groups.is_empty() {
            line("ping targets: none".into());
        } else {
            line(format!(
                "ping targets: {} (deadping {} {}; {})",
                self.ping.join(", "),
                self.deadping.value,
                self.deadping.from,
                if self.ping_moves_groups {
                    "a node reaching fewer than a peer gives its groups to it"
                } else {
                    "watched only: no ipfail/pingd, they move no groups"
                }
            ));
            for g in &self.ping_groups {
                line(format!("  ping_group {}: {}", g.name, g.addrs.join(", ")));
            }
        }
        if let Some(f) = &self.fencing {
            line(format!("fencing: {f}"));
        }
        if self.ignored.is_empty() {
            line("ignored directives: none".into());
        } else {
            line("ignored directives:".into());
            for i in &self.ignored {
                line(format!("  {}: {}: {}", i.at, i.directive, i.what));
            }
        }
        o
    }
}
