//! Health checks, the pure half: what a check is (spec.rs), one check's
//! up and down with rise, fall and hold-down (tracker.rs), and a node's
//! view of every check of its groups (this file). hb-agent's health/ runs
//! the probes; the rules feed their results here and tell the cluster when
//! a group's health changes (`Event::Health`), which makes the node
//! ineligible for it and hands it to a healthy candidate.
//!
//! A group is healthy on a node when every check of it that counts
//! (`on_fail` not `ignore`) passes: up, or idle (a `when = "held"` check
//! where the group is not held) past its hold-down. A check with no result
//! yet does not pass: a node takes no group before its checks have said
//! the service is there.

pub mod spec;
pub mod tracker;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::GroupId;
pub use spec::*;
pub use tracker::{CheckState, Probe, Tracker};

/// A check's state changed: one log line, one metric count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub group: GroupId,
    pub check: usize,
    pub state: CheckState,
    /// It went down and is to be restarted in place (`on_fail = "restart"`):
    /// the group stays until the restart's result.
    pub restart: bool,
}

/// Every check of every group of this node.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub groups: BTreeMap<GroupId, Vec<(String, Tracker)>>,
    /// What each was built from.
    specs: BTreeMap<GroupId, Vec<CheckSpec>>,
}

impl Health {
    pub fn new<'a>(groups: impl IntoIterator<Item = (GroupId, &'a [CheckSpec])>) -> Health {
        let specs: BTreeMap<GroupId, Vec<CheckSpec>> = groups
            .into_iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(g, c)| (g, c.to_vec()))
            .collect();
        Health {
            groups: specs
                .iter()
                .map(|(&g, cs)| {
                    let ts = cs.iter().map(|c| (c.name.clone(), Tracker::new(c)));
                    (g, ts.collect())
                })
                .collect(),
            specs,
        }
    }

    /// The settings of `group`'s checks.
    pub fn specs(&self, group: GroupId) -> &[CheckSpec] {
        self.specs.get(&group).map_or(&[], Vec::as_slice)
    }

    /// Does `group` pass all its checks here now (`held`: held here)?
    /// No checks: yes.
    pub fn healthy(&self, group: GroupId, now: u64, held: bool) -> bool {
        self.groups
            .get(&group)
            .is_none_or(|cs| cs.iter().all(|(_, t)| t.passing(now, held)))
    }

    pub fn tracker_mut(&mut self, group: GroupId, check: usize) -> Option<&mut Tracker> {
        self.groups
            .get_mut(&group)
            .and_then(|cs| cs.get_mut(check))
            .map(|(_, t)| t)
    }

    /// A probe's result; the transition if the check's state changed.
    pub fn record(&mut self, group: GroupId, check: usize, p: Probe) -> Option<Transition> {
        let now = p.at;
        let t = self.tracker_mut(group, check)?;
        let state = t.record(p)?;
        let restart = state == CheckState::Down && t.begin_restart(now);
        Some(Transition {
            group,
            check,
            state,
            restart,
        })
    }

    /// An in-place restart's result.
    pub fn restart_done(
        &mut self,
        group: GroupId,
        check: usize,
        ok: bool,
        now: u64,
    ) -> Option<Transition> {
        let state = self.tracker_mut(group, check)?.restart_done(ok, now)?;
        Some(Transition {
            group,
            check,
            state,
            restart: false,
        })
    }

    /// Time passing (hold-downs running out).
    pub fn tick(&mut self, now: u64) -> Vec<Transition> {
        let mut out = Vec::new();
        for (&group, cs) in &mut self.groups {
            each_change(group, cs, &mut out, |t| t.tick(now));
        }
        out
    }

    /// The group was started here (`held`) or is no longer held: its
    /// `when = "held"` checks start or stop.
    pub fn set_held(&mut self, group: GroupId, held: bool, now: u64) -> Vec<Transition> {
        let mut out = Vec::new();
        if let Some(cs) = self.groups.get_mut(&group) {
            each_change(group, cs, &mut out, |t| t.set_held(held, now));
        }
        out
    }

    /// Every group's health now (`held`: the groups held here).
    pub fn snapshot(&self, now: u64, held: &BTreeSet<GroupId>) -> BTreeMap<GroupId, bool> {
        self.groups
            .keys()
            .map(|&g| (g, self.healthy(g, now, held.contains(&g))))
            .collect()
    }

    /// The checks of `new` (a reload), keeping the record of every check
    /// whose name and settings are unchanged: a reload must not forget that
    /// a service is down, nor make a held group wait for results again.
    pub fn carry_over(&self, mut new: Health) -> Health {
        for (g, cs) in &mut new.groups {
            let (Some(now), Some(was), Some(old)) =
                (new.specs.get(g), self.specs.get(g), self.groups.get(g))
            else {
                continue;
            };
            for (i, (name, t)) in cs.iter_mut().enumerate() {
                if let Some(j) = was.iter().position(|s| s.name == *name)
                    && was[j] == now[i]
                {
                    *t = old[j].1.clone();
                }
            }
        }
        new
    }
}

/// `f` on every check of `group`; each state it changed, as a transition.
fn each_change(
    group: GroupId,
    cs: &mut [(String, Tracker)],
    out: &mut Vec<Transition>,
    mut f: impl FnMut(&mut Tracker) -> Option<CheckState>,
) {
    for (check, (_, t)) in cs.iter_mut().enumerate() {
        if let Some(state) = f(t) {
            out.push(Transition {
                group,
                check,
                state,
                restart: false,
            });
        }
    }
}
