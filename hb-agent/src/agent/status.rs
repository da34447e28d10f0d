//! The `status` report, built from the cluster logic and the kernel maps.

use hb_common::maps::{STATUS_ALIVE, STATUS_DEAD, counter};

use super::runtime::Agent;
use crate::cluster::{GroupId, HoldState, NodeId};
use crate::control::status::{GroupStatus, LinkStatus, NodeStatus, StatusReport};
use crate::metrics::{GroupMetrics, MetricsSnapshot, PeerMetrics, SenderMetrics};
use crate::sender::clock;

/// Who holds `group`: this node if its hold state is not idle, else the
/// alive peer whose heartbeats say so.
pub fn owner_of(a: &Agent, group: GroupId) -> Option<NodeId> {
    if matches!(a.cluster.hold_state(group), Some(s) if s != HoldState::Idle) {
        return Some(a.local.id);
    }
    a.cfg
        .nodes
        .iter()
        .filter(|n| n.id != a.local.id && a.cluster.is_peer_alive(n.id))
        .find(|n| {
            a.cluster
                .peer_advert(n.id)
                .and_then(|adv| adv.claim(group))
                .is_some_and(|c| c.held)
        })
        .map(|n| n.id)
}

fn ifname(a: &Agent, idx: u32) -> String {
    a.kernel
        .attachments()
        .iter()
        .find(|x| x.ifindex == idx)
        .map(|x| x.iface.clone())
        .unwrap_or_else(|| format!("if{idx}"))
}

/// What a scrape shows: read from the BPF maps now, plus the agent's own
/// per-group and per-peer counts.
pub fn metrics(a: &Agent) -> MetricsSnapshot {
    let states = a.kernel.peer_states().unwrap_or_default();
    let sender = a.sender.stats();
    MetricsSnapshot {
        cluster: a.cfg.cluster.clone(),
        node: a.local.name.clone(),
        now_ns: clock::now_ns(),
        links: MetricsSnapshot::links_from(
            &states,
            |id| a.cfg.node_by_id(id).map(|n| n.name.clone()),
            |idx| ifname(a, idx),
        ),
        counters: a.kernel.counters().unwrap_or_default(),
        peers: a
            .cfg
            .nodes
            .iter()
            .filter(|n| n.id != a.local.id)
            .map(|n| PeerMetrics {
                peer: n.name.clone(),
                dead_events: a.dead_events.get(&n.id).copied().unwrap_or(0),
            })
            .collect(),
        groups: a
            .cfg
            .groups
            .iter()
            .filter(|g| a.cluster.spec().group(g.id).is_some())
            .map(|g| {
                let c = a.group_counts.get(&g.id).cloned().unwrap_or_default();
                GroupMetrics {
                    name: g.name.clone(),
                    owner: owner_of(a, g.id).map(|o| a.node_name(o)),
                    epoch: a.cluster.advert().claim(g.id).map(|c| c.epoch).unwrap_or(0) as u64,
                    takeovers: c.takeovers,
                    releases: c.releases,
                    takeover_duration: c.durations,
                }
            })
            .collect(),
        sender: SenderMetrics {
            sent: sender.sent,
            send_errors: sender.send_errors,
            lateness_p99_seconds: sender.p99_us as f64 / 1e6,
        },
    }
}

pub fn report(a: &Agent) -> StatusReport {
    let now = clock::now_ns();
    let states = a.kernel.peer_states().unwrap_or_default();
    let ifname = |idx: u32| ifname(a, idx);
    let nodes = a
        .cfg
        .nodes
        .iter()
        .map(|n| {
            let local = n.id == a.local.id;
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
                } else if a.cluster.is_peer_alive(n.id) {
                    "alive".into()
                } else if states.iter().any(|(k, _)| k.node_id == n.id) {
                    "dead".into()
                } else {
                    "unknown".into()
                },
                links,
            }
        })
        .collect();
    let groups = a
        .cfg
        .groups
        .iter()
        .filter(|g| a.cluster.spec().group(g.id).is_some())
        .map(|g| {
            let owner = owner_of(a, g.id);
            let epoch = a.cluster.advert().claim(g.id).map(|c| c.epoch).unwrap_or(0);
            GroupStatus {
                name: g.name.clone(),
                owner: owner.map(|o| a.node_name(o)),
                since_s: a.owners.get(&g.id).map(|(_, t)| t.elapsed().as_secs_f64()),
                epoch,
                local: match a.cluster.hold_state(g.id) {
                    Some(HoldState::Held) => "held",
                    Some(HoldState::Acquiring) => "starting",
                    Some(HoldState::Releasing) => "stopping",
                    Some(HoldState::Stuck) => "STUCK (stop failed)",
                    _ => "-",
                }
                .into(),
            }
        })
        .collect();
    let mut warnings: Vec<String> = Vec::new();
    if !a.cfg.auth.authenticated {
        warnings.push("heartbeats are NOT authenticated (authkeys uses crc)".into());
    }
    warnings.extend(a.warnings.iter().cloned());
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
        cluster: a.cfg.cluster.clone(),
        node: a.local.name.clone(),
        uptime_s: a.started.elapsed().as_secs_f64(),
        authenticated: a.cfg.auth.authenticated,
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
