//! Semantic rules shared by both front ends, so an ha.d directory and a TOML
//! file are held to the same standard. Each front end says where things were
//! written (`Spot`), so messages point at the right file and line.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::Diag;
use super::duration::display;
use super::model::{Config, Timing};
use crate::cluster::MAX_GROUPS;
use crate::model::fmt_mac;
use crate::model::{IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec};

/// Where a value was written; `line` is None for defaults and file-level facts.
#[derive(Debug, Clone)]
pub(crate) struct Spot {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl Spot {
    pub fn new(file: &Path, line: Option<usize>) -> Spot {
        Spot {
            file: file.to_path_buf(),
            line,
        }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> Diag {
        Diag::error(&self.file, message)
            .at_opt(self.line)
            .field(field)
    }

    /// `file:line`, for naming another place in a message.
    pub fn place(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    pub fn warning(&self, field: &str, message: impl Into<String>) -> Diag {
        Diag::warning(&self.file, message)
            .at_opt(self.line)
            .field(field)
    }
}

/// A timing value as given (None = default) and where.
pub(crate) type Given = (Option<Duration>, Spot);

/// Fills Heartbeat's defaults and applies Heartbeat's rules:
/// keepalive > 0; deadtime > 2 x keepalive (config.c refuses
/// `deadtime <= 2 * keepalive`); warntime < deadtime; initdead >= deadtime
/// (error) and >= 2 x deadtime (warning, as Heartbeat's documentation asks).
/// `names` gives the field names as the front end spells them.
pub(crate) fn timing(given: [Given; 4], names: [&str; 4], diags: &mut Vec<Diag>) -> Timing {
    timing_with(given, names, |d| d.saturating_mul(2), diags)
}

/// As [`timing`], with the rule for initdead when it is not given.
pub(crate) fn timing_with(
    [keepalive, deadtime, warntime, initdead]: [Given; 4],
    names: [&str; 4],
    initdead_rule: fn(Duration) -> Duration,
    diags: &mut Vec<Diag>,
) -> Timing {
    let t = Timing::with_initdead_rule(
        keepalive.0,
        deadtime.0,
        warntime.0,
        initdead.0,
        initdead_rule,
    );
    let [k_name, d_name, w_name, i_name] = names;
    let d = display;
    if t.keepalive.is_zero() {
        diags.push(keepalive.1.error(k_name, "must be greater than zero"));
    } else if t.deadtime <= t.keepalive.saturating_mul(2) {
        // Blame the value the operator wrote: deadtime if given, else keepalive.
        let (spot, field) = if deadtime.0.is_some() {
            (&deadtime.1, d_name)
        } else {
            (&keepalive.1, k_name)
        };
        diags.push(spot.error(
            field,
            format!(
                "deadtime ({}) must be more than twice keepalive ({})",
                d(t.deadtime),
                d(t.keepalive)
            ),
        ));
    }
    if warntime.0.is_some() {
        if t.warntime >= t.deadtime {
            diags.push(warntime.1.error(
                w_name,
                format!(
                    "warntime ({}) must be less than deadtime ({})",
                    d(t.warntime),
                    d(t.deadtime)
                ),
            ));
        } else if t.warntime <= t.keepalive {
            diags.push(warntime.1.warning(
                w_name,
                format!(
                    "warntime ({}) is not more than keepalive ({}): every heartbeat would count as late",
                    d(t.warntime),
                    d(t.keepalive)
                ),
            ));
        }
    }
    if initdead.0.is_some() {
        if t.initdead < t.deadtime {
            diags.push(initdead.1.error(
                i_name,
                format!(
                    "initdead ({}) must not be less than deadtime ({})",
                    d(t.initdead),
                    d(t.deadtime)
                ),
            ));
        } else if t.initdead < t.deadtime.saturating_mul(2) {
            diags.push(initdead.1.warning(
                i_name,
                format!(
                    "initdead ({}) is less than twice deadtime ({}); Heartbeat advises at least 2 x deadtime",
                    d(t.initdead),
                    d(t.deadtime)
                ),
            ));
        }
    }
    t
}

/// Node and group ids travel in every heartbeat: they must be unique.
/// `node_spots`/`group_spots` run parallel to `cfg.nodes`/`cfg.groups`.
pub(crate) fn identities(
    cfg: &Config,
    node_spots: &[Spot],
    group_spots: &[Spot],
    diags: &mut Vec<Diag>,
) {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, node) in cfg.nodes.iter().enumerate() {
        if let Some(&j) = names.get(&node.name.to_ascii_lowercase()) {
            diags.push(node_spots[i].error(
                "node",
                format!(
                    "node `{}` is already declared (as `{}`)",
                    node.name, cfg.nodes[j].name
                ),
            ));
            continue;
        }
        names.insert(node.name.to_ascii_lowercase(), i);
        if let Some(&j) = ids.get(&node.id) {
            diags.push(node_spots[i].error(
                "node",
                format!(
                    "node `{}` has the same id ({:#010x}) as node `{}`; rename one{}",
                    node.name, node.id, cfg.nodes[j].name, " (or give explicit ids in TOML)"
                ),
            ));
        }
        ids.insert(node.id, i);
    }
    let mut group_ids: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, group) in cfg.groups.iter().enumerate() {
        if let Some(&j) = group_ids.get(&group.id) {
            diags.push(group_spots[i].error(
                "group",
                format!(
                    "group `{}` has the same id ({:#010x}) as group `{}`; rename one",
                    group.name, group.id, cfg.groups[j].name
                ),
            ));
        }
        group_ids.insert(group.id, i);
    }
}

/// Things a node can hold only once: its interface's MAC (replace mode) and
/// its hostname. A node that is a candidate for two groups claiming the same
/// thing can run only one of them at a time (the seed's node1 is the standby
/// for both vip1 and vip2, so it cannot cover both primaries at once).
pub(crate) fn exclusive_claims(cfg: &Config, group_spots: &[Spot], diags: &mut Vec<Diag>) {
    fn claims(resources: &[ResourceSpec]) -> Vec<String> {
        resources
            .iter()
            .filter_map(|r| match r {
                ResourceSpec::Mac(MacSpec {
                    iface,
                    mode: MacMode::Replace,
                    ..
                }) => Some(format!("replace the MAC of {iface}")),
                ResourceSpec::Hostname(_) => Some("set the hostname".to_string()),
                _ => None,
            })
            .collect()
    }
    for node in &cfg.nodes {
        let mut holder: BTreeMap<String, usize> = BTreeMap::new();
        for (i, group) in cfg.groups.iter().enumerate() {
            if !group.nodes.contains(&node.name) {
                continue;
            }
            for claim in claims(&group.resources) {
                match holder.get(&claim) {
                    Some(&j) => diags.push(group_spots[i].warning(
                        "group",
                        format!(
                            "node `{}` is a candidate for groups `{}` and `{}`, which both {claim}: \
                             it can hold only one of them at a time",
                            node.name, cfg.groups[j].name, group.name
                        ),
                    )),
                    None => {
                        holder.insert(claim, i);
                    }
                }
            }
        }
    }
}

/// A heartbeat carries one claim per group its sender may hold, at most
/// `MAX_GROUPS`; the agent would refuse more only when it starts, so say it
/// here, at the group that goes over, for every node.
pub(crate) fn groups_per_node(cfg: &Config, group_spots: &[Spot], diags: &mut Vec<Diag>) {
    for node in &cfg.nodes {
        let theirs: Vec<usize> = (0..cfg.groups.len())
            .filter(|&i| {
                cfg.groups[i]
                    .nodes
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&node.name))
            })
            .collect();
        if let Some(&over) = theirs.get(MAX_GROUPS) {
            diags.push(group_spots[over].error(
                "group",
                format!(
                    "node `{}` is a candidate for {} groups, at most {MAX_GROUPS} are supported \
                     (group `{}` is number {})",
                    node.name,
                    theirs.len(),
                    cfg.groups[over].name,
                    MAX_GROUPS + 1
                ),
            ));
        }
    }
}

/// An address or a virtual MAC that a group brings up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Claim {
    Addr(IpAddr),
    Mac([u8; 6]),
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Claim::Addr(a) => write!(f, "address {a}"),
            Claim::Mac(m) => write!(f, "virtual MAC {}", fmt_mac(m)),
        }
    }
}

/// Every address and virtual MAC of a group: IPaddr, MacTakeover/`mac`
/// (its MAC and its address), and the OCF address agents' `ip`/`ipv6addr`.
fn group_claims(resources: &[ResourceSpec]) -> BTreeSet<Claim> {
    let mut out = BTreeSet::new();
    for r in resources {
        match r {
            ResourceSpec::IpAddr(IpSpec { addr, .. }) => {
                out.insert(Claim::Addr(addr.to_canonical()));
            }
            ResourceSpec::Mac(MacSpec { mac, addr, .. }) => {
                out.insert(Claim::Mac(*mac));
                if let Some((a, _)) = addr {
                    out.insert(Claim::Addr(a.to_canonical()));
                }
            }
            ResourceSpec::Script(ScriptSpec {
                name,
                kind: ScriptKind::Ocf { .. },
                params,
                ..
            }) => {
                let key = match name.as_str() {
                    "IPaddr" | "IPaddr2" => "ip",
                    "IPv6addr" => "ipv6addr",
                    _ => continue,
                };
                if let Some(Ok(a)) = params.get(key).map(|v| v.parse::<IpAddr>()) {
                    out.insert(Claim::Addr(a.to_canonical()));
                }
            }
            _ => {}
        }
    }
    out
}

/// An address or a virtual MAC belongs to one group: two groups carrying it
/// can be held at once on different nodes, and both would answer for it.
pub(crate) fn unique_addresses(cfg: &Config, group_spots: &[Spot], diags: &mut Vec<Diag>) {
    let mut holder: BTreeMap<Claim, usize> = BTreeMap::new();
    for (i, group) in cfg.groups.iter().enumerate() {
        for claim in group_claims(&group.resources) {
            let Some(&j) = holder.get(&claim) else {
                holder.insert(claim, i);
                continue;
            };
            diags.push(group_spots[i].error(
                "group",
                format!(
                    "groups `{}` ({}) and `{}` ({}) both carry {claim}: they can be held at \
                     once on different nodes, both answering for it",
                    cfg.groups[j].name,
                    group_spots[j].place(),
                    group.name,
                    group_spots[i].place()
                ),
            ));
        }
    }
}

/// Keeps diagnostics in reading order: by file (in the order given), then
/// line, file-level ones first.
pub(crate) fn sort(diags: &mut [Diag], files: &[PathBuf]) {
    diags.sort_by_key(|d| {
        let file = files
            .iter()
            .position(|f| *f == d.file)
            .unwrap_or(files.len());
        (file, d.line.unwrap_or(0))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(secs: Option<f64>, line: usize) -> Given {
        (
            secs.map(Duration::from_secs_f64),
            Spot::new(Path::new("ha.cf"), Some(line)),
        )
    }

    fn run(k: Option<f64>, d: Option<f64>, w: Option<f64>, i: Option<f64>) -> Vec<String> {
        let mut diags = Vec::new();
        let names = ["keepalive", "deadtime", "warntime", "initdead"];
        timing(
            [given(k, 1), given(d, 2), given(w, 3), given(i, 4)],
            names,
            &mut diags,
        );
        diags
            .iter()
            .map(|d| format!("{}{d}", if d.is_error() { "E " } else { "W " }))
            .collect()
    }

    #[test]
    fn seed_timings_are_fine() {
        assert!(run(Some(2.0), Some(60.0), Some(20.0), Some(240.0)).is_empty());
        assert!(run(None, None, None, None).is_empty());
    }

    #[test]
    fn timing_rules() {
        assert_eq!(
            run(Some(2.0), Some(4.0), None, None),
            ["E ha.cf:2: deadtime: deadtime (4s) must be more than twice keepalive (2s)"]
        );
        assert_eq!(
            run(Some(40.0), None, None, None),
            ["E ha.cf:1: keepalive: deadtime (30s) must be more than twice keepalive (40s)"]
        );
        assert_eq!(
            run(Some(1.0), Some(10.0), Some(10.0), None),
            ["E ha.cf:3: warntime: warntime (10s) must be less than deadtime (10s)"]
        );
        assert_eq!(
            run(Some(1.0), Some(10.0), None, Some(15.0)),
            [
                "W ha.cf:4: initdead: initdead (15s) is less than twice deadtime (10s); Heartbeat advises at least 2 x deadtime"
            ]
        );
        assert_eq!(
            run(Some(1.0), Some(10.0), None, Some(5.0)),
            ["E ha.cf:4: initdead: initdead (5s) must not be less than deadtime (10s)"]
        );
        assert_eq!(
            run(Some(0.0), None, None, None),
            ["E ha.cf:1: keepalive: must be greater than zero"]
        );
        assert_eq!(run(Some(0.5), Some(1.5), None, None), Vec::<String>::new());
    }

    /// Found by the fuzzer (fuzz/regressions/haresources/keepalive-overflow):
    /// `keepalive 00000000013433964061180035070` panicked ("overflow when
    /// multiplying duration by scalar") instead of being refused.
    #[test]
    fn huge_timings_are_refused_not_a_panic() {
        let names = ["keepalive", "deadtime", "warntime", "initdead"];
        let at = |line| Spot::new(Path::new("ha.cf"), Some(line));
        let huge = Duration::from_secs(13_433_964_061_180_035_070);
        let mut diags = Vec::new();
        timing(
            [
                (Some(huge), at(1)),
                (None, at(2)),
                (None, at(3)),
                (None, at(4)),
            ],
            names,
            &mut diags,
        );
        assert!(diags.iter().any(|d| d.is_error()), "{diags:?}");
        let mut diags = Vec::new();
        let t = timing(
            [
                (None, at(1)),
                (Some(Duration::MAX), at(2)),
                (None, at(3)),
                (None, at(4)),
            ],
            names,
            &mut diags,
        );
        assert_eq!(t.initdead, Duration::MAX);
    }
}
