//! The `status` report and the metrics snapshot, built from a read-only
//! view of the core and the kernel maps (nothing depends on this module
//! but the event loop).

use hb_common::maps::{STATUS_ALIVE, STATUS_DEAD, counter};

use crate::cluster::GroupId;
use crate::cluster::HoldState;
use crate::control::status::{CheckStatus, GroupStatus, LinkStatus, NodeStatus, StatusReport};
use crate::kernel::Kernel;
use crate::metrics::Histogram;
use crate::metrics::{CheckMetrics, GroupMetrics, MetricsSnapshot, PeerMetrics, SenderMetrics};
use crate::rules::AgentCore;
use crate::sender::Sender;
use crate::sender::clock;
use hb_core::health::CheckState;

/// What the report reads: the core's state, the kernel's maps, the sender.
pub struct View<'a> {
    pub core: &'a AgentCore,
    pub kernel: &'a Kernel,
    pub sender: &'a Sender,
}

fn ifname(a: &View, idx: u32) -> String {
    a.kernel
        .attachments()
        .iter()
        .find(|x| x.ifindex == idx)
        .map(|x| x.iface.clone())
        .unwrap_or_else(|| format!("if{idx}"))
}

/// What a scrape shows: read from the BPF maps now, plus the agent's own
/// per-group and per-peer counts.
pub fn metrics(a: &View) -> MetricsSnapshot {
    let states = a.kernel.peer_states().unwrap_or_default();
    let sender = a.sender.stats();
    MetricsSnapshot {
        cluster: a.core.cfg.cluster.clone(),
        node: a.core.local.name.clone(),
        now_ns: clock::now_ns(),
        links: MetricsSnapshot::links_from(
            &states,
            |id| a.core.cfg.node_by_id(id).map(|n| n.name.clone()),
            |idx| ifname(a, idx),
        ),
        counters: a.kernel.counters().unwrap_or_default(),
        peers: a
            .core
            .cfg
            .nodes
            .iter()
            .filter(|n| n.id != a.core.local.id)
            .map(|n| PeerMetrics {
                peer: n.name.clone(),
                dead_events: a.core.dead_events.get(&n.id).copied().unwrap_or(0),
            })
            .collect(),
        groups: a
            .core
            .cfg
            .groups
            .iter()
            .filter(|g| a.core.cluster.spec().group(g.id).is_some())
            .map(|g| {
                let c = a.core.group_counts.get(&g.id).cloned().unwrap_or_default();
                GroupMetrics {
                    name: g.name.clone(),
                    owner: a.core.cluster.owner(g.id).map(|o| a.core.node_name(o)),
                    epoch: a
                        .core
                        .cluster
                        .advert()
                        .claim(g.id)
                        .map(|c| c.epoch)
                        .unwrap_or(0) as u64,
                    takeovers: c.takeovers,
                    releases: c.releases,
                    takeover_duration: c.durations,
                }
            })
            .collect(),
        checks: check_metrics(a),
        sender: SenderMetrics {
            sent: sender.sent,
            send_errors: sender.send_errors,
            lateness_p99_seconds: sender.p99_us as f64 / 1e6,
        },
    }
}

fn check_metrics(a: &View) -> Vec<CheckMetrics> {
    let now = clock::now_ns();
    let h = &a.core.health;
    h.groups
        .iter()
        .flat_map(|(&g, cs)| {
            cs.iter()
                .enumerate()
                .map(move |(i, (name, t))| CheckMetrics {
                    group: a.core.group_name(g),
                    check: name.clone(),
                    up: t.passing(now, a.core.cluster.held_groups().contains(&g)),
                    transitions: t.transitions,
                    duration: a
                        .core
                        .check_counts
                        .durations
                        .get(&(g, i))
                        .cloned()
                        .unwrap_or_else(|| Histogram::new(hb_core::rules::checks::CHECK_BUCKETS)),
                })
        })
        .collect()
}

pub fn report(a: &View) -> StatusReport {
    let states = a.kernel.peer_states().unwrap_or_default();
    let nodes = nodes(a, &states);
    let groups = groups(a);
    let mut warnings: Vec<String> = Vec::new();
    if !a.core.cfg.auth.authenticated {
        warnings.push("heartbeats are NOT authenticated (authkeys uses crc)".into());
    }
    warnings.extend(a.core.warnings.iter().cloned());
    let counters = a
        .kernel
        .counters()
        .map(|c| {
            c.iter()
                .enumerate()
                .map(|(i, v)| (counter::NAMES[i].to_string(), *v))
                .collect()
        })
        .unwrap_or_default();
    StatusReport {
        cluster: a.core.cfg.cluster.clone(),
        node: a.core.local.name.clone(),
        uptime_s: a.core.started.elapsed().as_secs_f64(),
        authenticated: a.core.cfg.auth.authenticated,
        nodes,
        groups,
        warnings,
        counters,
        attachments: a
            .kernel
            .attachments()
            .iter()
            .map(|x| format!("{} ({})", x.iface, x.mode))
            .collect(),
    }
}

type PeerStates = [(hb_common::maps::PeerKey, hb_common::maps::PeerStats)];

fn nodes(a: &View, states: &PeerStates) -> Vec<NodeStatus> {
    let now = clock::now_ns();
    let ifname = |idx: u32| ifname(a, idx);
    a.core
        .cfg
        .nodes
        .iter()
        .map(|n| {
            let local = n.id == a.core.local.id;
            let links = states
                .iter()
                .filter(|(k, _)| k.node_id == n.id)
                .map(|(k, s)| LinkStatus {
                    iface: ifname(k.ifindex),
                    state: match s.status {
                        STATUS_ALIVE => "up",
                        STATUS_DEAD => "dead",
                        _ => "unknown",
                    }
                    .into(),
                    last_heard_ms: Some(now.saturating_sub(s.last_seen_ns) as f64 / 1e6),
                    received: s.received,
                    lost: s.lost,
                    late: s.late,
                    jitter_us: s.jitter_ns as f64 / 1e3,
                })
                .collect();
            NodeStatus {
                name: n.name.clone(),
                id: n.id,
                local,
                state: if local {
                    "local".into()
                } else if a.core.cluster.is_peer_alive(n.id) {
                    "alive".into()
                } else if states.iter().any(|(k, _)| k.node_id == n.id) {
                    "dead".into()
                } else {
                    "unknown".into()
                },
                links,
            }
        })
        .collect()
}

fn groups(a: &View) -> Vec<GroupStatus> {
    a.core
        .cfg
        .groups
        .iter()
        .filter(|g| a.core.cluster.spec().group(g.id).is_some())
        .map(|g| {
            let owner = a.core.cluster.owner(g.id);
            let epoch = a
                .core
                .cluster
                .advert()
                .claim(g.id)
                .map(|c| c.epoch)
                .unwrap_or(0);
            GroupStatus {
                name: g.name.clone(),
                aka: g.aka.clone(),
                resources: g.resources.iter().map(resource_line).collect(),
                owner: owner.map(|o| a.core.node_name(o)),
                since_s: a
                    .core
                    .owners
                    .get(&g.id)
                    .map(|(_, t)| t.elapsed().as_secs_f64()),
                epoch,
                local: match a.core.cluster.hold_state(g.id) {
                    Some(HoldState::Held) => "held",
                    Some(HoldState::Acquiring) => "starting",
                    Some(HoldState::Releasing) => "stopping",
                    Some(HoldState::Stuck) => "STUCK (stop failed)",
                    // Released (peers may take it) but not yet removed here.
                    _ if a.core.withdrawn(g.id) => "withdrawn",
                    _ if a.core.stopping().contains(&g.id) => "stopping",
                    _ => "-",
                }
                .into(),
                health: health(a, g.id),
                checks: checks(a, g.id),
            }
        })
        .collect()
}

/// A resource for `status`: its description, and a script's arguments
/// (`Script drbddisk r0`: two drbddisk groups must read apart).
fn resource_line(r: &crate::model::ResourceSpec) -> String {
    match r {
        crate::model::ResourceSpec::Script(s) if !s.args.is_empty() => {
            format!("{r} {}", s.args.join(" "))
        }
        _ => r.to_string(),
    }
}

fn health(a: &View, g: GroupId) -> Option<String> {
    let cs = a.core.health.groups.get(&g)?;
    let now = clock::now_ns();
    let held = a.core.cluster.held_groups().contains(&g);
    Some(
        if a.core.health.healthy(g, now, held) {
            "healthy"
        } else if cs.iter().any(|(_, t)| t.state == CheckState::Pending) {
            "pending"
        } else {
            "UNHEALTHY"
        }
        .into(),
    )
}

fn checks(a: &View, g: GroupId) -> Vec<CheckStatus> {
    let now = clock::now_ns();
    let ago = |t: u64| now.saturating_sub(t) as f64 / 1e9;
    let Some(cs) = a.core.health.groups.get(&g) else {
        return Vec::new();
    };
    cs.iter()
        .map(|(name, t)| CheckStatus {
            name: name.clone(),
            state: if t.restarting {
                "restarting".into()
            } else {
                t.state.word().into()
            },
            last_ok: t.last.as_ref().map(|p| p.ok),
            detail: t
                .last
                .as_ref()
                .map(|p| p.detail.clone())
                .unwrap_or_default(),
            latency_ms: t.last.as_ref().map(|p| p.latency_ns as f64 / 1e6),
            last_s: t.last.as_ref().map(|p| ago(p.at)),
            passes: t.passes,
            fails: t.fails,
            last_change_s: t.last_change.map(ago),
            transitions: t.transitions,
            restarts: t.restarts.len(),
        })
        .collect()
}
