//! A small deterministic multi-node simulator: N [`Cluster`]s, a "kernel" per node that records
//! when each peer was last heard on each link, a "shell" per node that turns that into
//! LinkUp/LinkDead/PeerRestarted/PeerAdvert/PingReachable/Tick events, and resource / fencing
//! runners that answer Acquire/Release/Fence. Time advances one keepalive per step.
//!
//! Invariants checked after every step:
//! * always: a node's resources match what its agent thinks it holds; never two outstanding
//!   operations on one group (rule 12);
//! * when `strict`: at most one node answers for a group: powered, running, with its
//!   resources in place and, with `leased` specs, its service lease running (the agent's
//!   sender/lease.rs, modelled in [`SimLease`]).

use std::collections::{BTreeMap, BTreeSet};

use super::super::{
    Action, Advert, Cluster, ClusterSpec, Event, GroupId, GroupSpec, HoldState, NodeId,
};

pub const KA: u64 = 1_000_000;
pub const DEAD: u64 = 5 * KA;
pub const WARN: u64 = 3 * KA;
pub const INITDEAD: u64 = 10 * KA;
/// Steps in one deadtime.
pub const DEAD_STEPS: u64 = DEAD / KA;

pub const VIP1: GroupId = 1;
pub const VIP2: GroupId = 2;

pub fn spec(local: NodeId, nodes: &[NodeId], groups: &[(GroupId, &[NodeId])]) -> ClusterSpec {
    ClusterSpec {
        local,
        nodes: nodes.to_vec(),
        groups: groups
            .iter()
            .map(|(id, c)| GroupSpec {
                id: *id,
                candidates: c.to_vec(),
            })
            .collect(),
        keepalive_ns: KA,
        deadtime_ns: DEAD,
        warntime_ns: WARN,
        initdead_ns: INITDEAD,
        auto_failback: true,
        ping_targets: 0,
        ping_tie_break: true,
        fencing: false,
        leased: false,
    }
}

/// The seed's three nodes, each with its own view: node0 knows [node0, node1] and vip1; node2
/// knows [node2, node1] and vip2; node1 knows all three (node0, node2, node1) and both groups.
/// One ping node each.
pub fn seed_specs() -> Vec<ClusterSpec> {
    let mut v = vec![
        spec(0, &[0, 1], &[(VIP1, &[0, 1])]),
        spec(1, &[0, 2, 1], &[(VIP1, &[0, 1]), (VIP2, &[2, 1])]),
        spec(2, &[2, 1], &[(VIP2, &[2, 1])]),
    ];
    for s in &mut v {
        s.ping_targets = 1;
    }
    v
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

/// The service lease as the agent's sender keeps it: renewed with every heartbeat to a
/// deadtime ahead; found lapsed at renewal, it holds until resumed (by the cluster's
/// `ResumeLease`, or once nothing is held).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimLease {
    until: u64,
    hold: bool,
}

impl SimLease {
    fn renew(&mut self, now: u64, deadtime: u64) {
        if self.hold {
            return;
        }
        if self.until != 0 && now > self.until {
            self.hold = true;
            return;
        }
        self.until = now + deadtime;
    }

    fn running(&self, now: u64) -> bool {
        !self.hold && (self.until == 0 || now <= self.until)
    }
}

#[derive(Debug)]
pub struct SimNode {
    pub spec: ClusterSpec,
    pub agent: Option<Cluster>,
    pub powered: bool,
    hung_since: Option<u64>,
    stall_pending: Option<u64>,
    /// The whole machine stopped with the agent (not only the agent): on resume its kernel's
    /// late timers look again before declaring a silent peer dead (hb-common `deadline`).
    machine_paused: bool,
    pub lease: SimLease,
    incarnation: u32,
    pub resources: BTreeSet<GroupId>,
    ops: Vec<(u64, Event)>,
    pending: BTreeMap<GroupId, &'static str>,
    kernel: BTreeMap<NodeId, KernelPeer>,
    shell: BTreeMap<NodeId, ShellPeer>,
    pub ping: u8,
    reported_ping: Option<u8>,
    pub fail_acquire: BTreeSet<GroupId>,
    pub fail_release: BTreeSet<GroupId>,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub at: u64,
    pub node: NodeId,
    pub action: Action,
}

#[derive(Debug)]
pub struct Sim {
    pub now: u64,
    pub nodes: Vec<SimNode>,
    links: u32,
    cut: BTreeSet<(NodeId, NodeId, u32)>,
    pub op_delay: u64,
    pub fence_ok: bool,
    pub strict: bool,
    pub log: Vec<Record>,
    pub events: Vec<(u64, NodeId, Event)>,
}

impl Sim {
    /// All nodes powered off; `links` heartbeat links between every pair.
    pub fn new(specs: Vec<ClusterSpec>, links: u32) -> Self {
        let nodes = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                assert_eq!(spec.local as usize, i, "node ids are indexes");
                spec.validate().expect("valid spec");
                SimNode {
                    spec,
                    agent: None,
                    powered: false,
                    hung_since: None,
                    stall_pending: None,
                    machine_paused: false,
                    lease: SimLease::default(),
                    incarnation: 0,
                    resources: BTreeSet::new(),
                    ops: Vec::new(),
                    pending: BTreeMap::new(),
                    kernel: BTreeMap::new(),
                    shell: BTreeMap::new(),
                    ping: 1,
                    reported_ping: None,
                    fail_acquire: BTreeSet::new(),
                    fail_release: BTreeSet::new(),
                }
            })
            .collect();
        Self {
            now: 0,
            nodes,
            links,
            cut: BTreeSet::new(),
            op_delay: 0,
            fence_ok: true,
            strict: true,
            log: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The seed, booted and converged: node0 holds vip1, node2 holds vip2.
    pub fn seed() -> Self {
        Self::seed_with(|_| {})
    }

    pub fn seed_with(f: impl Fn(&mut ClusterSpec)) -> Self {
        let mut specs = seed_specs();
        specs.iter_mut().for_each(f);
        let mut s = Self::new(specs, 1);
        s.boot_all();
        s.run(3);
        assert_eq!(s.holders(VIP1), [0], "seed converged: vip1 on node0");
        assert_eq!(s.holders(VIP2), [2], "seed converged: vip2 on node2");
        s
    }

    pub fn boot_all(&mut self) {
        for n in 0..self.nodes.len() {
            self.boot(n as NodeId);
        }
    }

    /// Power on and start the agent.
    pub fn boot(&mut self, n: NodeId) {
        let node = &mut self.nodes[n as usize];
        assert!(!node.powered, "node {n} already powered");
        node.powered = true;
        self.start_agent(n);
    }

    /// Start the agent (resources already in place are adopted).
    pub fn start_agent(&mut self, n: NodeId) {
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        assert!(node.powered && node.agent.is_none());
        node.incarnation += 1;
        node.agent = Some(Cluster::new(node.spec.clone(), now));
        node.shell.clear();
        node.reported_ping = None;
        node.hung_since = None;
        node.stall_pending = None;
        node.machine_paused = false;
        let held: Vec<GroupId> = node.resources.iter().copied().collect();
        self.deliver(n, Event::Start);
        for group in held {
            self.deliver(n, Event::AdoptHeld { group });
        }
    }

    /// kill -9 of the agent, then start it again: resources stay in place.
    pub fn restart_agent(&mut self, n: NodeId) {
        let node = &mut self.nodes[n as usize];
        node.agent = None;
        node.ops.clear();
        node.pending.clear();
        self.start_agent(n);
    }

    pub fn power_off(&mut self, n: NodeId) {
        let node = &mut self.nodes[n as usize];
        node.powered = false;
        node.agent = None;
        node.resources.clear();
        node.ops.clear();
        node.pending.clear();
        node.kernel.clear();
        node.shell.clear();
        node.hung_since = None;
        node.stall_pending = None;
        node.machine_paused = false;
        node.lease = SimLease::default();
    }

    pub fn shutdown(&mut self, n: NodeId) {
        self.deliver(n, Event::Shutdown);
    }

    /// The agent stops running (SIGSTOP): no heartbeats sent, no events processed. The kernel
    /// keeps recording what it hears.
    pub fn hang(&mut self, n: NodeId) {
        self.nodes[n as usize].hung_since = Some(self.now);
    }

    pub fn resume(&mut self, n: NodeId) {
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        let since = node.hung_since.take().expect("node was hung");
        node.stall_pending = Some(now - since);
        if std::mem::take(&mut node.machine_paused) {
            // The kernel timers fired late: each looks again a slack later (a quarter of
            // deadtime) before it declares a peer dead, so a peer heard again by then is not.
            let d = node.spec.deadtime_ns;
            let grace_from = (now + d / 4).saturating_sub(d);
            for kp in node.kernel.values_mut() {
                for t in kp.heard.values_mut() {
                    *t = (*t).max(grace_from);
                }
            }
        }
    }

    /// The machines of `nodes` stop at once (a VM pause of the host they share): agents and
    /// kernels alike.
    pub fn pause_machines(&mut self, nodes: &[NodeId]) {
        for &n in nodes {
            self.hang(n);
            self.nodes[n as usize].machine_paused = true;
        }
    }

    pub fn resume_machines(&mut self, nodes: &[NodeId]) {
        for &n in nodes {
            self.resume(n);
        }
    }

    pub fn cut(&mut self, a: NodeId, b: NodeId, link: u32) {
        self.cut.insert((a.min(b), a.max(b), link));
    }

    pub fn heal(&mut self, a: NodeId, b: NodeId, link: u32) {
        self.cut.remove(&(a.min(b), a.max(b), link));
    }

    pub fn cut_all(&mut self, a: NodeId, b: NodeId) {
        for l in 0..self.links {
            self.cut(a, b, l);
        }
    }

    pub fn heal_all(&mut self, a: NodeId, b: NodeId) {
        for l in 0..self.links {
            self.heal(a, b, l);
        }
    }

    fn is_cut(&self, a: NodeId, b: NodeId, link: u32) -> bool {
        self.cut.contains(&(a.min(b), a.max(b), link))
    }

    pub fn set_ping(&mut self, n: NodeId, v: u8) {
        self.nodes[n as usize].ping = v;
    }

    pub fn agent(&self, n: NodeId) -> &Cluster {
        self.nodes[n as usize]
            .agent
            .as_ref()
            .expect("agent running")
    }

    /// Powered nodes with the group's resources in place.
    pub fn holders(&self, g: GroupId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.powered && n.resources.contains(&g))
            .map(|n| n.spec.local)
            .collect()
    }

    /// Nodes that answer for the group now: powered with its resources in place (a stopped
    /// agent's kernel still answers) and, with leased specs, the lease running (the kernel
    /// fences the addresses past it).
    pub fn answering(&self, g: GroupId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.powered && n.resources.contains(&g))
            .filter(|n| !n.spec.leased || n.lease.running(self.now))
            .map(|n| n.spec.local)
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

    /// Steps until `cond` holds; panics after `max` steps.
    pub fn run_until(&mut self, max: u64, what: &str, cond: impl Fn(&Sim) -> bool) -> u64 {
        for i in 0..=max {
            if cond(self) {
                return i;
            }
            self.step();
        }
        panic!("not reached after {max} steps: {what}\n{}", self.dump());
    }

    pub fn step(&mut self) {
        self.now += KA;
        for s in 0..self.nodes.len() as NodeId {
            if self.active(s) {
                self.transmit(s);
            }
        }
        for n in 0..self.nodes.len() as NodeId {
            self.process(n);
        }
        self.check();
    }

    fn transmit(&mut self, s: NodeId) {
        let advert = self.agent(s).advert();
        let inc = self.nodes[s as usize].incarnation;
        let now = self.now;
        let node = &mut self.nodes[s as usize];
        let d = node.spec.deadtime_ns;
        node.lease.renew(now, d);
        for r in 0..self.nodes.len() as NodeId {
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
        // Completions of operations.
        let ops = std::mem::take(&mut self.nodes[n as usize].ops);
        let (due, later): (Vec<_>, Vec<_>) = ops.into_iter().partition(|(at, _)| *at <= now);
        self.nodes[n as usize].ops = later;
        for (_, ev) in due {
            if !self.active(n) {
                return;
            }
            let node = &mut self.nodes[n as usize];
            match &ev {
                Event::Acquired { group }
                | Event::AcquireFailed { group }
                | Event::ReleaseFailed { group } => {
                    node.pending.remove(group);
                }
                Event::Released { group } => {
                    node.pending.remove(group);
                    node.resources.remove(group);
                }
                Event::Fenced { node: t, ok: true } => self.power_off(*t),
                _ => {}
            }
            self.deliver(n, ev);
        }
        // Membership and adverts, as the shell would report them.
        let deadtime = self.nodes[n as usize].spec.deadtime_ns;
        let peers: Vec<NodeId> = self.nodes[n as usize]
            .spec
            .nodes
            .iter()
            .copied()
            .filter(|&p| p != n)
            .collect();
        for p in peers {
            let Some(kp) = self.nodes[n as usize].kernel.get(&p).cloned() else {
                continue;
            };
            let sh = self.nodes[n as usize].shell.entry(p).or_default();
            if sh.incarnation != Some(kp.incarnation) {
                let restarted = sh.incarnation.is_some();
                sh.incarnation = Some(kp.incarnation);
                sh.advert = None;
                if restarted {
                    self.deliver(n, Event::PeerRestarted { node: p });
                }
            }
            for link in 0..self.links {
                let alive = kp
                    .heard
                    .get(&link)
                    .is_some_and(|&t| now.saturating_sub(t) <= deadtime);
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
            let sh = self.nodes[n as usize].shell.entry(p).or_default();
            if kp.advert.is_some() && kp.advert != sh.advert {
                sh.advert = kp.advert.clone();
                let advert = kp.advert.clone().unwrap();
                self.deliver(n, Event::PeerAdvert { node: p, advert });
            }
        }
        let node = &mut self.nodes[n as usize];
        if node.reported_ping != Some(node.ping) {
            node.reported_ping = Some(node.ping);
            let count = node.ping;
            self.deliver(n, Event::PingReachable { count });
        }
        self.deliver(n, Event::Tick);
        // The agent's settle step: a lapsed lease runs again once nothing is held.
        let node = &mut self.nodes[n as usize];
        if node.lease.hold
            && node
                .agent
                .as_ref()
                .is_some_and(|a| a.held_groups().is_empty())
        {
            node.lease = SimLease::default();
        }
    }

    /// Hands one event to node `n`'s agent and executes the actions.
    pub fn deliver(&mut self, n: NodeId, ev: Event) {
        let now = self.now;
        let Some(agent) = self.nodes[n as usize].agent.as_mut() else {
            return;
        };
        if !matches!(ev, Event::Tick) {
            self.events.push((now, n, ev.clone()));
        }
        let actions = agent.handle(ev, now);
        for action in actions {
            self.log.push(Record {
                at: now,
                node: n,
                action: action.clone(),
            });
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
                let node = &self.nodes[n as usize];
                if node.powered && node.agent.is_some() {
                    self.transmit(n);
                }
            }
            Action::Acquire { group, .. } => {
                let node = &mut self.nodes[n as usize];
                let prev = node.pending.insert(group, "acquire");
                assert!(
                    prev.is_none(),
                    "rule 12: node {n} acquires {group} during {prev:?}"
                );
                node.resources.insert(group);
                let ev = if node.fail_acquire.contains(&group) {
                    Event::AcquireFailed { group }
                } else {
                    Event::Acquired { group }
                };
                self.schedule(n, ev);
            }
            Action::Release { group, .. } => {
                let node = &mut self.nodes[n as usize];
                let prev = node.pending.insert(group, "release");
                assert!(
                    prev.is_none(),
                    "rule 12: node {n} releases {group} during {prev:?}"
                );
                let ev = if node.fail_release.contains(&group) {
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
            Action::Warn(_) => {}
            Action::ResumeLease => {
                // As the agent: resumed, and renewed by a heartbeat sent at once.
                self.nodes[n as usize].lease = SimLease::default();
                self.transmit(n);
            }
            Action::Exit => self.nodes[n as usize].agent = None,
        }
    }

    fn check(&self) {
        for node in &self.nodes {
            if let Some(agent) = &node.agent {
                for g in &node.spec.groups {
                    let held = agent.hold_state(g.id).is_some_and(HoldState::on_wire);
                    assert_eq!(
                        held,
                        node.resources.contains(&g.id),
                        "node {} group {}: agent and resources disagree\n{}",
                        node.spec.local,
                        g.id,
                        self.dump()
                    );
                }
            }
        }
        if !self.strict {
            return;
        }
        let groups: BTreeSet<GroupId> = self
            .nodes
            .iter()
            .flat_map(|n| n.spec.groups.iter().map(|g| g.id))
            .collect();
        for g in groups {
            let h = self.answering(g);
            assert!(
                h.len() <= 1,
                "t={}: group {g} answered by {h:?}\n{}",
                self.now,
                self.dump()
            );
        }
    }

    /// The action log, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for r in self.log.iter().rev().take(60).rev() {
            s.push_str(&format!(
                "  t={:>4} node{} {:?}\n",
                r.at / KA,
                r.node,
                r.action
            ));
        }
        s
    }

    /// Log position, to look at what happened after it.
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    pub fn actions_since(&self, mark: usize, n: NodeId) -> Vec<Action> {
        self.log[mark..]
            .iter()
            .filter(|r| r.node == n)
            .map(|r| r.action.clone())
            .collect()
    }

    /// Acquire actions (node, group, epoch) since `mark`.
    pub fn acquires_since(&self, mark: usize) -> Vec<(NodeId, GroupId, u32)> {
        self.log[mark..]
            .iter()
            .filter_map(|r| match r.action {
                Action::Acquire { group, epoch } => Some((r.node, group, epoch)),
                _ => None,
            })
            .collect()
    }

    /// Release actions (node, group) since `mark`.
    pub fn releases_since(&self, mark: usize) -> Vec<(NodeId, GroupId)> {
        self.log[mark..]
            .iter()
            .filter_map(|r| match r.action {
                Action::Release { group, .. } => Some((r.node, group)),
                _ => None,
            })
            .collect()
    }

    pub fn warnings_since(&self, mark: usize, n: NodeId) -> Vec<super::super::Warning> {
        self.actions_since(mark, n)
            .into_iter()
            .filter_map(|a| match a {
                Action::Warn(w) => Some(w),
                _ => None,
            })
            .collect()
    }
}
