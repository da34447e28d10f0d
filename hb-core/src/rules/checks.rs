//! Health checks in the rules: a probe's result (from hb-agent's health/
//! runner) goes into `health::Health`; when a group's health changes here,
//! the cluster hears `Event::Health` and moves the group. One log line per
//! check transition; restarts in place go to the group's worker.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{info, warn};

use super::histogram::Histogram;
use super::{AgentCore, Executor, Now, Op};
use crate::cluster::{Event, GroupId, HoldState};
use crate::config::Config;
use crate::health::{CheckState, Health, Probe, Transition, When};

/// Upper bounds of `hb_check_duration_seconds`: 100 us to 10 s.
pub const CHECK_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// The checks of the groups this node may hold, from `cfg`.
pub fn health_of(cfg: &Config, local: &str) -> Health {
    Health::new(
        cfg.groups
            .iter()
            .filter(|g| g.nodes.iter().any(|n| n == local))
            .map(|g| (g.id, g.checks.as_slice())),
    )
}

/// Per check, for metrics: how long its probes took.
#[derive(Clone, Default)]
pub struct CheckCounts {
    pub durations: BTreeMap<(GroupId, usize), Histogram>,
}

impl AgentCore {
    /// Before `Start`: tell the cluster which groups wait for their checks'
    /// first results (a node takes nothing its checks have not passed).
    pub(super) fn init_health(&mut self, now: Now) {
        for (g, healthy) in self.health.snapshot(now.ns, &BTreeSet::new()) {
            self.health_said.insert(g, healthy);
            // Before Start nothing acts: the actions (an advert) are moot,
            // the next heartbeat carries the state.
            let _ = self
                .cluster
                .handle(Event::Health { group: g, healthy }, now.ns);
        }
    }

    /// One probe's result.
    pub(super) fn check_result(
        &mut self,
        group: GroupId,
        check: usize,
        probe: Probe,
        now: Now,
        x: &mut impl Executor,
    ) {
        self.check_counts
            .durations
            .entry((group, check))
            .or_insert_with(|| Histogram::new(CHECK_BUCKETS))
            .observe(probe.latency_ns as f64 / 1e9);
        let t = self.health.record(group, check, probe);
        self.health_changed(t.into_iter().collect(), now, x);
    }

    /// An in-place restart (`on_fail = "restart"`) is over.
    pub(super) fn restart_done(
        &mut self,
        group: GroupId,
        check: usize,
        ok: bool,
        now: Now,
        x: &mut impl Executor,
    ) {
        let name = self.check_name(group, check);
        if ok {
            info!(group = %self.group_name(group), check = %name, "restarted in place");
        } else {
            warn!(group = %self.group_name(group), check = %name, "restart in place failed: failing over");
        }
        let t = self.health.restart_done(group, check, ok, now.ns);
        self.health_changed(t.into_iter().collect(), now, x);
    }

    /// Hold-downs running out, and `when = "held"` checks following their
    /// group (started here or gone).
    pub(super) fn health_tick(&mut self, now: Now, x: &mut impl Executor) {
        let t = self.health.tick(now.ns);
        self.health_changed(t, now, x);
    }

    /// After the cluster acted: a group started or stopped here starts or
    /// stops its `when = "held"` checks; and a group that became held or
    /// unheld here is judged again (no result yet keeps a held group: an
    /// agent restarted on a node serving it adopts it, and must not hand
    /// it away before its checks have reported).
    pub(super) fn sync_held(&mut self, now: Now) {
        if self.health.groups.is_empty() {
            return;
        }
        let held = self.checks_held();
        if held != self.held_checked {
            let groups: Vec<GroupId> = self.health.groups.keys().copied().collect();
            for g in groups {
                let (was, is) = (self.held_checked.contains(&g), held.contains(&g));
                if was != is {
                    for t in self.health.set_held(g, is, now.ns) {
                        self.log_transition(&t);
                    }
                }
            }
            self.held_checked = held;
        }
        // Whatever changed is told to the cluster after this batch.
        self.queue_health_events(now);
    }

    /// Groups whose `when = "held"` checks run here now: held and serving
    /// (its start finished).
    pub fn checks_held(&self) -> BTreeSet<GroupId> {
        self.health
            .groups
            .iter()
            .filter(|(_, cs)| cs.iter().any(|(_, t)| t.when == When::Held))
            .map(|(&g, _)| g)
            .filter(|&g| self.cluster.hold_state(g) == Some(HoldState::Held))
            .collect()
    }

    fn health_changed(&mut self, ts: Vec<Transition>, now: Now, x: &mut impl Executor) {
        for t in &ts {
            self.log_transition(t);
            if t.restart {
                match self.monitored(t.group, t.check) {
                    Some(resource) => x.submit(
                        t.group,
                        Op::Restart {
                            check: t.check,
                            resource,
                        },
                    ),
                    None => {
                        let _ = self.health.restart_done(t.group, t.check, false, now.ns);
                    }
                }
            }
        }
        self.queue_health_events(now);
        if !self.feeding {
            self.feed_pending(now, x);
        }
    }

    fn queue_health_events(&mut self, now: Now) {
        let held: BTreeSet<GroupId> = self.cluster.held_groups().into_iter().collect();
        for (g, healthy) in self.health.snapshot(now.ns, &held) {
            if self.health_said.insert(g, healthy) != Some(healthy) {
                if healthy {
                    info!(group = %self.group_name(g), "group healthy here: its checks pass");
                } else {
                    warn!(group = %self.group_name(g), "group unhealthy here: a check fails; not eligible for it");
                }
                self.pending.push_back(Event::Health { group: g, healthy });
            }
        }
    }

    fn log_transition(&self, t: &Transition) {
        let Some((name, tr)) = self
            .health
            .groups
            .get(&t.group)
            .and_then(|c| c.get(t.check))
        else {
            return;
        };
        let detail = tr.last.as_ref().map_or("", |p| p.detail.as_str());
        let group = self.group_name(t.group);
        match t.state {
            CheckState::Down if t.restart => {
                warn!(step = "check.down", %group, check = %name, %detail, "check down: restarting in place")
            }
            CheckState::Down => {
                warn!(step = "check.down", %group, check = %name, %detail, "check down")
            }
            CheckState::Up => info!(step = "check.up", %group, check = %name, %detail, "check up"),
            CheckState::Idle => {
                info!(step = "check.idle", %group, check = %name, "check idle (group not held here)")
            }
            CheckState::Pending => {}
        }
    }

    /// A reload's checks: the records of unchanged ones carried over.
    pub fn reload_checks(&mut self, cfg: &Config, now: Now, x: &mut impl Executor) {
        let new = health_of(cfg, &self.local.name);
        self.health = self.health.carry_over(new);
        // New `when = "held"` checks of groups held here start running.
        for &g in &self.held_checked {
            if let Some(cs) = self.health.groups.get_mut(&g) {
                for (_, t) in cs.iter_mut().filter(|(_, t)| t.state == CheckState::Idle) {
                    t.set_held(true, now.ns);
                }
            }
        }
        self.queue_health_events(now);
        if !self.feeding {
            self.feed_pending(now, x);
        }
    }

    /// The resource a monitor check watches.
    fn monitored(&self, group: GroupId, check: usize) -> Option<usize> {
        match self.health.specs(group).get(check)?.kind {
            crate::health::CheckKind::Monitor { resource } => Some(resource),
            _ => None,
        }
    }

    /// Groups whose `when = "held"` checks run here, as last synced.
    pub fn held_checked(&self) -> &BTreeSet<GroupId> {
        &self.held_checked
    }

    pub fn check_name(&self, group: GroupId, check: usize) -> String {
        self.health
            .groups
            .get(&group)
            .and_then(|c| c.get(check))
            .map_or_else(|| format!("#{check}"), |(n, _)| n.clone())
    }
}
