//! What the cluster targets share: three-node specs, a per-node checker of
//! the state machine's actions, and a small multi-node simulator (after
//! hb-core's cluster/tests/sim.rs, which is test-only there).
use std::collections::{BTreeMap, BTreeSet};

use hb_core::cluster::{
    Action, AdminCmd, Advert, Cluster, ClusterSpec, Event, GroupId, GroupSpec, HoldState, NodeId,
    ReleaseReason,
};

pub const KA: u64 = 1_000_000;
pub const DEAD: u64 = 5 * KA;
pub const WARN: u64 = 3 * KA;
pub const INITDEAD: u64 = 10 * KA;
pub const NODES: [NodeId; 3] = [0, 1, 2];
/// How long two nodes may both hold a group after a race of decisions
/// (see `Sim::check_holders`): two deadtimes, past the longest operation.
pub const DOUBLE_HOLD_STEPS: u64 = 2 * DEAD / KA;
/// A group no node is configured for.
pub const UNKNOWN_GROUP: GroupId = 99;

/// Groups of a three-node cluster (id, candidates in preference order), in
/// one of four layouts.
pub fn three_node_groups(sel: u8) -> Vec<(GroupId, Vec<NodeId>)> {
    match sel % 4 {
        0 => vec![(1, vec![0, 1, 2])],
        1 => vec![(1, vec![0, 1, 2]), (2, vec![2, 1, 0])],
        // The seed's N+1: two primaries, one standby for both.
        2 => vec![(1, vec![0, 1]), (2, vec![2, 1])],
        _ => vec![(1, vec![1, 0, 2]), (2, vec![0, 2]), (3, vec![2, 1])],
    }
}

/// Node `local`'s spec: the groups it is a candidate of. `flags`: bit 0
/// auto_failback off, bit 1 one ping target, bit 2 no ping tie-break, bit 3
/// fencing.
pub fn spec_for(local: NodeId, groups: &[(GroupId, Vec<NodeId>)], flags: u8) -> ClusterSpec {
    ClusterSpec {
        local,
        nodes: NODES.to_vec(),
        groups: groups
            .iter()
            .filter(|(_, c)| c.contains(&local))
            .map(|(id, c)| GroupSpec {
                id: *id,
                candidates: c.clone(),
            })
            .collect(),
        keepalive_ns: KA,
        deadtime_ns: DEAD,
        warntime_ns: WARN,
        initdead_ns: INITDEAD,
        auto_failback: flags & 1 == 0,
        ping_targets: usize::from(flags & 2 != 0),
        ping_tie_break: flags & 4 == 0,
        fencing: flags & 8 != 0,
        // The lease is not modelled here (hb-core's simulator does: cluster/tests/stall.rs).
        leased: false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Acquire,
    Release,
}

/// One node's agent as its shell sees it: which groups have their resources
/// (possibly) in place and which operation is outstanding. Every batch of
/// actions is checked against it, and the state machine's own view
/// (`hold_state`) must agree with it after every event.
///
/// Per-node rules asserted:
/// * no action names a group the node is not configured for; a fence names
///   a configured peer, and only with fencing configured;
/// * one operation at a time per group (rule 12);
/// * a release always before an acquire: `Acquire` only for a group whose
///   resources are not in place (any earlier hold was released, and the
///   release completed), `Release` only for one whose resources are;
/// * epochs only grow: each `Acquire` of a group carries a higher epoch than
///   every earlier one on this node (across agent restarts: the agent's
///   record, `remember_epoch`);
/// * a failed start is cleaned up at once (`Release` with `StartFailed`);
/// * `SendAdvert` comes first in a batch, `Exit` last, nothing after `Exit`.
#[derive(Clone, Debug)]
pub struct Checker {
    pub spec: ClusterSpec,
    pub in_place: BTreeSet<GroupId>,
    /// In place from an earlier agent, until its `AdoptHeld`.
    adopting: BTreeSet<GroupId>,
    outstanding: BTreeMap<GroupId, Op>,
    /// Highest epoch acquired or adopted per group: the agent's record.
    pub epochs: BTreeMap<GroupId, u32>,
    exited: bool,
    /// Actions of the last batch, for the shell to execute.
    pub last: Vec<Action>,
}

impl Checker {
    pub fn new(spec: ClusterSpec) -> Self {
        Checker {
            spec,
            in_place: BTreeSet::new(),
            adopting: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            epochs: BTreeMap::new(),
            exited: false,
            last: Vec::new(),
        }
    }

    /// A new agent process on the same node: resources and the epoch record
    /// stay, outstanding operations are lost.
    /// Returns the groups to adopt (`AdoptHeld`).
    pub fn restarted(&mut self) -> Vec<GroupId> {
        self.adopting.extend(std::mem::take(&mut self.in_place));
        self.outstanding.clear();
        self.exited = false;
        self.adopting.iter().copied().collect()
    }

    /// The group's resources are (or may be) in place on this node.
    pub fn holds(&self, g: GroupId) -> bool {
        self.in_place.contains(&g) || self.adopting.contains(&g)
    }

    /// Power off: nothing stays in place.
    pub fn powered_off(&mut self) {
        self.in_place.clear();
        self.adopting.clear();
        self.outstanding.clear();
        self.exited = false;
    }

    fn configured(&self, g: GroupId) -> bool {
        self.spec.group(g).is_some()
    }

    pub fn has_exited(&self) -> bool {
        self.exited
    }

    /// Successful completions of every outstanding operation.
    pub fn completions(&self) -> Vec<Event> {
        self.outstanding
            .iter()
            .map(|(&group, op)| match op {
                Op::Acquire => Event::Acquired { group },
                Op::Release => Event::Released { group },
            })
            .collect()
    }

    /// Hands `ev` to `c`, checks the actions and the agreement of the
    /// models; the actions are in `self.last`.
    pub fn deliver(&mut self, c: &mut Cluster, ev: Event, now: u64) -> &[Action] {
        let local = self.spec.local;
        // The shell's side of completions and adoption.
        let completion = match &ev {
            Event::Acquired { group } | Event::AcquireFailed { group } => {
                Some((*group, Op::Acquire))
            }
            Event::Released { group } | Event::ReleaseFailed { group } => {
                Some((*group, Op::Release))
            }
            _ => None,
        };
        let expected = completion.filter(|(g, op)| self.outstanding.get(g) == Some(op));
        let start_failed = match (&ev, expected) {
            (Event::AcquireFailed { group }, Some(_)) => Some(*group),
            _ => None,
        };
        let adopt = match &ev {
            Event::AdoptHeld { group } if self.configured(*group) => {
                c.hold_state(*group) == Some(HoldState::Idle)
            }
            _ => false,
        };
        let ev_shown = ev.clone();
        let actions = c.handle(ev.clone(), now);
        if self.exited {
            assert!(
                actions.is_empty(),
                "node {local}: acted after Exit: {actions:?}"
            );
        }
        if let Some((g, _)) = expected {
            self.outstanding.remove(&g);
            if matches!(ev, Event::Released { .. }) {
                self.in_place.remove(&g);
            }
        }
        if let Event::AdoptHeld { group } = ev
            && self.adopting.remove(&group)
        {
            assert!(
                adopt,
                "node {local}: group {group} in place, not idle at adoption"
            );
            self.in_place.insert(group);
        }
        let n = actions.len();
        for (i, a) in actions.iter().enumerate() {
            let ctx = || format!("node {local} on {ev_shown:?} at {now}: {actions:?}");
            match a {
                Action::SendAdvert => assert_eq!(i, 0, "SendAdvert not first: {}", ctx()),
                Action::Exit => {
                    assert_eq!(i, n - 1, "Exit not last: {}", ctx());
                    self.exited = true;
                }
                Action::Warn(_) | Action::ResumeLease => {}
                Action::Fence { node, group } => {
                    assert!(
                        self.configured(*group),
                        "fence for unknown group: {}",
                        ctx()
                    );
                    assert!(
                        self.spec.is_peer(*node),
                        "fence of a node that is not a peer: {}",
                        ctx()
                    );
                    assert!(self.spec.fencing, "fence without fencing: {}", ctx());
                }
                Action::Acquire { group, epoch } => {
                    assert!(
                        self.configured(*group),
                        "acquire of unknown group: {}",
                        ctx()
                    );
                    assert!(
                        !self.outstanding.contains_key(group),
                        "rule 12: acquire during {:?}: {}",
                        self.outstanding[group],
                        ctx()
                    );
                    assert!(
                        !self.in_place.contains(group) && !self.adopting.contains(group),
                        "acquire of group {group} not released before: {}",
                        ctx()
                    );
                    let prev = self.epochs.get(group).copied().unwrap_or(0);
                    assert!(
                        *epoch > prev,
                        "epoch {epoch} of group {group} not above {prev}: {}",
                        ctx()
                    );
                    self.epochs.insert(*group, *epoch);
                    self.outstanding.insert(*group, Op::Acquire);
                    self.in_place.insert(*group);
                }
                Action::Release { group, reason } => {
                    assert!(
                        self.configured(*group),
                        "release of unknown group: {}",
                        ctx()
                    );
                    assert!(
                        !self.outstanding.contains_key(group),
                        "rule 12: release during {:?}: {}",
                        self.outstanding[group],
                        ctx()
                    );
                    assert!(
                        self.in_place.contains(group),
                        "release of group {group} not held: {}",
                        ctx()
                    );
                    if start_failed == Some(*group) {
                        assert_eq!(*reason, ReleaseReason::StartFailed, "{}", ctx());
                    }
                    self.outstanding.insert(*group, Op::Release);
                }
            }
        }
        if let Some(g) = start_failed {
            assert_eq!(
                self.outstanding.get(&g),
                Some(&Op::Release),
                "node {local}: failed start of {g} not cleaned up: {actions:?}"
            );
        }
        for g in &self.spec.groups {
            let hold = c.hold_state(g.id).expect("configured group");
            let want = match (self.outstanding.get(&g.id), self.in_place.contains(&g.id)) {
                (Some(Op::Acquire), _) => vec![HoldState::Acquiring],
                (Some(Op::Release), _) => vec![HoldState::Releasing],
                (None, true) => vec![HoldState::Held, HoldState::Stuck],
                (None, false) => vec![HoldState::Idle],
            };
            assert!(
                want.contains(&hold),
                "node {local} group {}: state machine says {hold:?}, its actions say {want:?} \
                 (after {ev_shown:?})",
                g.id
            );
        }
        for g in [UNKNOWN_GROUP, 0] {
            if !self.configured(g) {
                assert_eq!(c.hold_state(g), None);
            }
        }
        // Adopted epochs are what the agent records too.
        for g in &self.spec.groups {
            if let Some(claim) = c.advert().claim(g.id)
                && claim.held
            {
                let e = self.epochs.entry(g.id).or_insert(0);
                *e = (*e).max(claim.epoch);
            }
        }
        self.last = actions;
        &self.last
    }
}

#[derive(Clone, Debug, Default)]
struct KernelPeer {
    heard: BTreeMap<u32, u64>,
    incarnation: u32,
    advert: Option<Advert>,
}

#[derive(Clone, Debug, Default)]
struct ShellPeer {
    links: BTreeMap<u32, bool>,
    incarnation: Option<u32>,
    advert: Option<Advert>,
}

#[derive(Debug)]
pub struct SimNode {
    pub agent: Option<Cluster>,
    pub check: Checker,
    pub powered: bool,
    hung_since: Option<u64>,
    stall_pending: Option<u64>,
    incarnation: u32,
    ops: Vec<(u64, Event)>,
    kernel: BTreeMap<NodeId, KernelPeer>,
    shell: BTreeMap<NodeId, ShellPeer>,
    pub ping: u8,
    reported_ping: Option<u8>,
    pub fail_acquire: BTreeSet<GroupId>,
    pub fail_release: BTreeSet<GroupId>,
    /// Operator commands, delivered at the node's next turn (after what
    /// its kernel heard), as the control socket's reach the event loop.
    pub admin: Vec<AdminCmd>,
}

/// Three nodes, `links` heartbeat links between each pair; time advances a
/// keepalive per step. See sim.rs in hb-core's cluster tests.
pub struct Sim {
    pub now: u64,
    pub nodes: Vec<SimNode>,
    pub links: u32,
    cut: BTreeSet<(NodeId, NodeId, u32)>,
    pub op_delay: u64,
    pub fence_ok: bool,
    /// Check after every step that at most one powered node has a group's
    /// resources in place.
    pub strict: bool,
    /// Stops may fail during a shutdown too. The agent then exits leaving
    /// the group in place (rule 11: "the shutdown goes on"), and without
    /// fencing a peer takes it a deadtime later: two holders, by design
    /// (see fuzz/regressions/README.md). Off in the crash model.
    pub shutdown_stops_fail: bool,
    double_since: BTreeMap<GroupId, u64>,
    log: std::collections::VecDeque<(u64, Entry)>,
}

/// One line of the simulator's log, formatted only when a check fails.
enum Entry {
    Note(&'static str, NodeId),
    Cut(NodeId, NodeId, u32),
    In(NodeId, Event),
    Out(NodeId, Action),
}

impl Sim {
    pub fn new(specs: Vec<ClusterSpec>, links: u32) -> Self {
        let nodes = specs
            .into_iter()
            .map(|spec| {
                spec.validate().expect("valid spec");
                SimNode {
                    agent: None,
                    check: Checker::new(spec),
                    powered: false,
                    hung_since: None,
                    stall_pending: None,
                    incarnation: 0,
                    ops: Vec::new(),
                    kernel: BTreeMap::new(),
                    shell: BTreeMap::new(),
                    ping: 1,
                    reported_ping: None,
                    fail_acquire: BTreeSet::new(),
                    fail_release: BTreeSet::new(),
                    admin: Vec::new(),
                }
            })
            .collect();
        Sim {
            now: 0,
            nodes,
            links,
            cut: BTreeSet::new(),
            op_delay: 0,
            fence_ok: true,
            strict: true,
            shutdown_stops_fail: true,
            double_since: BTreeMap::new(),
            log: Default::default(),
        }
    }

    fn note(&mut self, e: Entry) {
        if self.log.len() >= 100 {
            self.log.pop_front();
        }
        self.log.push_back((self.now, e));
    }

    pub fn powered(&self, n: NodeId) -> bool {
        self.nodes[n as usize].powered
    }

    pub fn has_agent(&self, n: NodeId) -> bool {
        self.nodes[n as usize].agent.is_some()
    }

    pub fn is_hung(&self, n: NodeId) -> bool {
        self.nodes[n as usize].hung_since.is_some()
    }

    pub fn boot(&mut self, n: NodeId) {
        if self.powered(n) {
            return;
        }
        self.note(Entry::Note("boot", n));
        self.nodes[n as usize].powered = true;
        self.start_agent(n);
    }

    /// Starts the agent of a powered node that has none (resources in place
    /// are adopted).
    pub fn start_agent(&mut self, n: NodeId) {
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        if !node.powered || node.agent.is_some() {
            return;
        }
        node.incarnation += 1;
        let mut agent = Cluster::new(node.check.spec.clone(), now);
        for (&g, &e) in &node.check.epochs {
            agent.remember_epoch(g, e);
        }
        node.agent = Some(agent);
        let held = node.check.restarted();
        node.shell.clear();
        node.reported_ping = None;
        node.hung_since = None;
        node.stall_pending = None;
        self.deliver(n, Event::Start);
        for group in held {
            self.deliver(n, Event::AdoptHeld { group });
        }
    }

    /// kill -9 and start again: resources stay in place.
    pub fn restart_agent(&mut self, n: NodeId) {
        if !self.powered(n) {
            return;
        }
        self.note(Entry::Note("restart agent", n));
        let node = &mut self.nodes[n as usize];
        node.agent = None;
        node.ops.clear();
        self.start_agent(n);
    }

    pub fn power_off(&mut self, n: NodeId) {
        self.note(Entry::Note("power off", n));
        let node = &mut self.nodes[n as usize];
        node.powered = false;
        node.agent = None;
        node.check.powered_off();
        node.admin.clear();
        node.ops.clear();
        node.kernel.clear();
        node.shell.clear();
        node.hung_since = None;
        node.stall_pending = None;
    }

    pub fn hang(&mut self, n: NodeId) {
        if self.active(n) {
            self.note(Entry::Note("hang", n));
            self.nodes[n as usize].hung_since = Some(self.now);
        }
    }

    pub fn resume(&mut self, n: NodeId) {
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        if let Some(since) = node.hung_since.take() {
            node.stall_pending = Some(now - since);
            self.note(Entry::Note("resume", n));
        }
    }

    pub fn cut(&mut self, a: NodeId, b: NodeId, link: u32) {
        if a != b {
            self.note(Entry::Cut(a, b, link));
            self.cut.insert((a.min(b), a.max(b), link));
        }
    }

    pub fn heal(&mut self, a: NodeId, b: NodeId, link: u32) {
        self.cut.remove(&(a.min(b), a.max(b), link));
    }

    pub fn heal_everything(&mut self) {
        self.note(Entry::Note("heal everything", 0));
        self.cut.clear();
        self.fence_ok = true;
        for n in NODES {
            self.resume(n);
            let node = &mut self.nodes[n as usize];
            node.fail_acquire.clear();
            node.fail_release.clear();
            node.ping = 1;
        }
        for n in NODES {
            self.boot(n);
            self.start_agent(n);
        }
    }

    fn is_cut(&self, a: NodeId, b: NodeId, link: u32) -> bool {
        self.cut.contains(&(a.min(b), a.max(b), link))
    }

    /// Powered nodes with the group's resources in place.
    pub fn holders(&self, g: GroupId) -> Vec<NodeId> {
        NODES
            .iter()
            .copied()
            .filter(|&n| {
                let node = &self.nodes[n as usize];
                node.powered && node.check.holds(g)
            })
            .collect()
    }

    pub fn groups(&self) -> BTreeSet<GroupId> {
        self.nodes
            .iter()
            .flat_map(|n| n.check.spec.groups.iter().map(|g| g.id))
            .collect()
    }

    fn active(&self, n: NodeId) -> bool {
        let node = &self.nodes[n as usize];
        node.powered && node.agent.is_some() && node.hung_since.is_none()
    }

    pub fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.step();
        }
    }

    pub fn step(&mut self) {
        self.now += KA;
        for s in NODES {
            if self.active(s) {
                self.transmit(s);
            }
        }
        for n in NODES {
            self.process(n);
        }
        if self.strict {
            self.check_holders();
        }
    }

    /// At most one powered node holds a group, but for a race: two nodes
    /// that decide within the same keepalive on what they knew (both take
    /// an unheld group, each seeing the other ineligible or dead) both
    /// hold it, at the same epoch even; the split-brain rule (higher
    /// epoch, then higher priority) must end that within
    /// [`DOUBLE_HOLD_STEPS`]. A holder whose stop failed (stuck) keeps the
    /// group by design until its retry, and is not counted.
    fn check_holders(&mut self) {
        for g in self.groups() {
            let h: Vec<NodeId> = self
                .holders(g)
                .into_iter()
                .filter(|&n| {
                    let node = &self.nodes[n as usize];
                    node.agent
                        .as_ref()
                        .is_none_or(|a| a.hold_state(g) != Some(HoldState::Stuck))
                })
                .collect();
            if h.len() <= 1 {
                self.double_since.remove(&g);
                continue;
            }
            let since = *self.double_since.entry(g).or_insert(self.now);
            assert!(
                self.now - since <= DOUBLE_HOLD_STEPS * KA,
                "one holder per group: t={} group {g} held by {h:?} since t={}\n{}",
                self.now / KA,
                since / KA,
                self.dump()
            );
        }
    }

    fn transmit(&mut self, s: NodeId) {
        let Some(agent) = self.nodes[s as usize].agent.as_ref() else {
            return;
        };
        let advert = agent.advert();
        let inc = self.nodes[s as usize].incarnation;
        let now = self.now;
        for r in NODES {
            if r == s || !self.nodes[r as usize].powered {
                continue;
            }
            for link in 0..self.links {
                if self.is_cut(s, r, link) {
                    continue;
                }
                let kp = self.nodes[r as usize].kernel.entry(s).or_default();
                kp.heard.insert(link, now);
                kp.incarnation = inc;
                kp.advert = Some(advert.clone());
            }
        }
    }

    fn process(&mut self, n: NodeId) {
        if !self.active(n) {
            return;
        }
        let now = self.now;
        if let Some(ns) = self.nodes[n as usize].stall_pending.take() {
            self.deliver(n, Event::Stalled { ns });
        }
        let ops = std::mem::take(&mut self.nodes[n as usize].ops);
        let (due, later): (Vec<_>, Vec<_>) = ops.into_iter().partition(|(at, _)| *at <= now);
        self.nodes[n as usize].ops = later;
        for (_, ev) in due {
            if !self.active(n) {
                return;
            }
            if let Event::Fenced { node: t, ok: true } = ev {
                self.power_off(t);
            }
            self.deliver(n, ev);
        }
        for p in NODES {
            if p == n {
                continue;
            }
            let Some(kp) = self.nodes[n as usize].kernel.get(&p).cloned() else {
                continue;
            };
            for link in 0..self.links {
                let alive = kp
                    .heard
                    .get(&link)
                    .is_some_and(|&t| now.saturating_sub(t) <= DEAD);
                let sh = self.nodes[n as usize].shell.entry(p).or_default();
                let was = sh.links.get(&link).copied().unwrap_or(false);
                if alive != was {
                    sh.links.insert(link, alive);
                    let ev = if alive {
                        Event::LinkUp { node: p, link }
                    } else {
                        Event::LinkDead { node: p, link }
                    };
                    self.deliver(n, ev);
                }
            }
            // A restart after the links came up, as the XDP program
            // reports them (EV_ALIVE_AGAIN, then EV_RESTARTED): delivered
            // before LinkUp, a restarted peer that was dead is not fenced
            // (fuzz/regressions/README.md).
            let sh = self.nodes[n as usize].shell.entry(p).or_default();
            if sh.incarnation != Some(kp.incarnation) {
                let restarted = sh.incarnation.is_some();
                sh.incarnation = Some(kp.incarnation);
                sh.advert = None;
                if restarted {
                    self.deliver(n, Event::PeerRestarted { node: p });
                }
            }
            let sh = self.nodes[n as usize].shell.entry(p).or_default();
            if kp.advert.is_some() && kp.advert != sh.advert {
                sh.advert = kp.advert.clone();
                let advert = kp.advert.clone().unwrap();
                self.deliver(n, Event::PeerAdvert { node: p, advert });
            }
        }
        for cmd in std::mem::take(&mut self.nodes[n as usize].admin) {
            self.deliver(n, Event::Admin(cmd));
        }
        let node = &mut self.nodes[n as usize];
        if node.reported_ping != Some(node.ping) {
            node.reported_ping = Some(node.ping);
            let count = node.ping;
            self.deliver(n, Event::PingReachable { count });
        }
        self.deliver(n, Event::Tick);
    }

    /// Hands one event to node `n`'s agent (if it runs and is not hung)
    /// and executes the actions.
    pub fn deliver(&mut self, n: NodeId, ev: Event) {
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        if node.hung_since.is_some() {
            return;
        }
        let Some(agent) = node.agent.as_mut() else {
            return;
        };
        let shown = (!matches!(ev, Event::Tick)).then(|| ev.clone());
        let actions = node.check.deliver(agent, ev, now).to_vec();
        if let Some(ev) = shown {
            self.note(Entry::In(n, ev));
        }
        for action in actions {
            self.note(Entry::Out(n, action.clone()));
            self.apply(n, action);
        }
    }

    fn schedule(&mut self, n: NodeId, ev: Event) {
        let at = self.now + self.op_delay;
        self.nodes[n as usize].ops.push((at, ev));
    }

    fn apply(&mut self, n: NodeId, action: Action) {
        match action {
            Action::SendAdvert => {
                if self.powered(n) && self.has_agent(n) {
                    self.transmit(n);
                }
            }
            Action::Acquire { group, .. } => {
                let ev = if self.nodes[n as usize].fail_acquire.contains(&group) {
                    Event::AcquireFailed { group }
                } else {
                    Event::Acquired { group }
                };
                self.schedule(n, ev);
            }
            Action::Release { group, reason } => {
                let may_fail = reason != ReleaseReason::Shutdown || self.shutdown_stops_fail;
                let ev = if may_fail && self.nodes[n as usize].fail_release.contains(&group) {
                    Event::ReleaseFailed { group }
                } else {
                    Event::Released { group }
                };
                self.schedule(n, ev);
            }
            Action::Fence { node, .. } => {
                let ok = self.fence_ok;
                self.schedule(n, Event::Fenced { node, ok });
            }
            Action::Warn(_) | Action::ResumeLease => {}
            Action::Exit => self.nodes[n as usize].agent = None,
        }
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (at, e) in &self.log {
            let line = match e {
                Entry::Note(what, n) => format!("{what} node{n}"),
                Entry::Cut(a, b, link) => format!("cut {a}-{b} link {link}"),
                Entry::In(n, ev) => format!("node{n} <- {ev:?}"),
                Entry::Out(n, a) => format!("node{n} -> {a:?}"),
            };
            s.push_str(&format!("  t={:>4} {line}\n", at / KA));
        }
        s
    }
}
