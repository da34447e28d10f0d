//! The agent's own rules, pure like `cluster/`: no tokio, no sockets, no
//! clock (the time comes in with each input). One entry point, [`AgentCore::on`],
//! takes what the event loop received and tells an [`Executor`] what to do:
//!
//! ```text
//! event_loop (select!) ──Input──► AgentCore::on ──► Cluster::handle ──► Action
//!                                      │                                  │
//!                                      └──── Executor (executor.rs) ◄─────┘
//!                                            workers, sender, quick step, STONITH
//! ```
//!
//! What is decided here, beside the cluster's rules: the graceful hand-over
//! (stay until a peer serves each released group, or a deadtime), clean-ups
//! deferred until a peer serves, the lease-lapse rule, the quick step's
//! gating, who owns what for `status`, and warnings rendered with names.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use tracing::{info, warn};

pub mod checks;
pub mod convert;
pub mod histogram;
mod kernel_event;
pub mod step;
#[cfg(test)]
mod tests;
pub mod work;

use crate::cluster::{
    Action, AdminCmd, Advert, Cluster, ClusterSpec, Event, GroupId, GroupSpec, NodeId, Warning,
};
use crate::config::{Config, Node};
use crate::model::quick;
pub use kernel_event::{KernelEvent, KernelEventKind};
pub use work::{Done, Op};

/// How many warnings `status` keeps.
pub const WARNINGS_KEPT: usize = 20;

/// The time of an input, read once by the loop: the monotonic instant (the
/// agent's own deadlines) and the cluster clock (`sender::clock::now_ns`).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub at: Instant,
    pub ns: u64,
}

/// What the event loop hands the core: exactly its `select!` sources.
pub enum Input {
    /// A heartbeat event from the kernel's ring buffer.
    Kernel(KernelEvent),
    /// A group worker's report.
    Worker(Done),
    /// How many ping targets answer.
    Ping(u8),
    /// The periodic tick.
    Tick,
    /// How long the sender thread saw this process frozen (0: not).
    Stall { ns: u64 },
    /// `standby` / `takeover` (all groups, or the one named) from the
    /// control socket (status is the report's, hb-agent's report.rs).
    Admin { cmd: Admin, group: Option<String> },
    /// SIGTERM or SIGINT.
    Stop,
    /// A reload the loop applied to the kernel (peer timings): take it.
    Reloaded(Box<Config>),
    /// A health check's result (hb-agent's health/ runner).
    Check {
        group: GroupId,
        check: usize,
        probe: crate::health::Probe,
    },
    /// After each loop iteration; `lease_on_hold` with a service lease.
    Settle { lease_on_hold: Option<bool> },
}

/// An operator's command, as Heartbeat's hb_standby / hb_takeover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admin {
    /// Give groups to the other nodes.
    Standby,
    /// Take groups from the other nodes.
    Takeover,
}

/// The answer to an `Admin` input, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub ok: bool,
    pub message: String,
}

/// What the core asks of the world; the loop's implementation is
/// executor.rs, tests record the calls.
pub trait Executor {
    /// Queue `op` on `group`'s worker.
    fn submit(&mut self, group: GroupId, op: Op);
    /// No start or stop begins until `end_batch` (lane.rs): one batch of
    /// actions is queued whole.
    fn begin_batch(&mut self);
    fn end_batch(&mut self);
    /// Withdraw a group of network identity only at once; false if not
    /// such a group or if that failed (then `Op::Stop` it).
    fn hand_over(&mut self, group: GroupId) -> bool;
    /// Nothing of `group`'s queued or running.
    fn idle(&self, group: GroupId) -> bool;
    /// Let the kernel pass the group's traffic again (see groups.rs).
    fn pass_traffic(&mut self, group: GroupId) -> bool;
    /// The quick takeover step can run here (its sockets are open).
    fn can_quick_start(&self) -> bool;
    /// Run the quick takeover step; None without the sockets for it.
    fn quick_start(
        &mut self,
        group: &str,
        plan: &quick::Plan,
    ) -> Option<Result<quick::Done, String>>;
    /// Heartbeat this advert from now on, and send one now.
    fn advertise(&mut self, advert: &Advert);
    /// Run the STONITH command for `node`; its answer comes back as
    /// `Done::Cluster(Event::Fenced)`.
    fn fence(&mut self, node: NodeId, name: &str);
    /// Record on disk that `group` was taken at `epoch`.
    fn record_epoch(&mut self, group: &str, epoch: u32) -> Result<(), String>;
    /// Groups some live peer says it serves (its start finished).
    fn served_by_peers(&mut self) -> BTreeSet<GroupId>;
    /// Renew the service lease again.
    fn resume_lease(&mut self);
}

#[derive(Clone, Default)]
pub struct GroupCounts {
    pub takeovers: u64,
    pub releases: u64,
    pub durations: histogram::Histogram,
}

/// The graceful hand-over's state.
#[derive(Default)]
struct Handover {
    /// Groups held when the shutdown began: after releasing them the agent
    /// stays (heartbeating, attached) until a peer serves each, or a
    /// deadtime passes. The peer's takeover then runs on a quiet host:
    /// detaching XDP holds the kernel's RTNL lock for milliseconds, which
    /// every rtnetlink call on the host, the taker's included, waits for.
    handing_over: Vec<GroupId>,
    drain_until: Option<Instant>,
    /// Groups whose stop has not finished (their addresses may still be on
    /// an interface, withdrawn): the agent does not exit before they are.
    stopping: BTreeSet<GroupId>,
    /// Groups handed over with their addresses withdrawn, whose removal
    /// waits until a peer serves them (or this deadline): removing
    /// addresses takes the kernel's RTNL lock, which the taker's own
    /// netlink calls need at that very moment.
    deferred_cleanups: BTreeMap<GroupId, Instant>,
}

pub struct AgentCore {
    pub cfg: Config,
    pub local: Node,
    pub cluster: Cluster,
    pub started: Instant,
    pub warnings: VecDeque<String>,
    /// When each group last changed hands, as seen from here.
    pub owners: BTreeMap<GroupId, (Option<NodeId>, Instant)>,
    /// For metrics: takeovers/releases and takeover durations per group.
    pub group_counts: BTreeMap<GroupId, GroupCounts>,
    /// For metrics: times each peer was declared dead on all links.
    pub dead_events: BTreeMap<NodeId, u64>,
    /// What the quick takeover step puts up per group (`resources::quick`).
    pub quick_plans: BTreeMap<GroupId, quick::Plan>,
    /// The loop ends once this is set.
    pub exit: bool,
    /// When each pending takeover was decided.
    acquiring_since: BTreeMap<GroupId, Instant>,
    handover: Handover,
    /// Events raised while applying actions (a release done on the spot),
    /// fed after the batch that raised them.
    pending: VecDeque<Event>,
    feeding: bool,
    /// Every check of this node's groups (`checks.rs`).
    pub health: crate::health::Health,
    pub check_counts: checks::CheckCounts,
    /// Each group's health as last told to the cluster.
    health_said: BTreeMap<GroupId, bool>,
    /// Groups whose `when = "held"` checks run (held here).
    held_checked: BTreeSet<GroupId>,
}

impl AgentCore {
    pub fn new(cfg: Config, local: Node, cluster: Cluster, now: Now) -> AgentCore {
        let health = checks::health_of(&cfg, &local.name);
        let mut core = AgentCore {
            health,
            check_counts: checks::CheckCounts::default(),
            health_said: BTreeMap::new(),
            held_checked: BTreeSet::new(),
            cfg,
            local,
            cluster,
            started: now.at,
            warnings: VecDeque::new(),
            owners: BTreeMap::new(),
            group_counts: BTreeMap::new(),
            dead_events: BTreeMap::new(),
            quick_plans: BTreeMap::new(),
            exit: false,
            acquiring_since: BTreeMap::new(),
            handover: Handover::default(),
            pending: VecDeque::new(),
            feeding: false,
        };
        core.init_health(now);
        core
    }

    /// The one entry point: an input, at `now`; an answer for `Admin`.
    pub fn on(&mut self, input: Input, now: Now, x: &mut impl Executor) -> Option<Answer> {
        match input {
            Input::Kernel(e) => self.kernel_event(e, now, x),
            Input::Worker(d) => self.worker(d, now, x),
            Input::Ping(count) => {
                info!(reachable = count, "ping targets");
                self.feed(Event::PingReachable { count }, now, x);
            }
            Input::Tick => {
                self.health_tick(now, x);
                self.feed(Event::Tick, now, x);
            }
            Input::Check {
                group,
                check,
                probe,
            } => self.check_result(group, check, probe, now, x),
            Input::Stall { ns } => self.stall(ns, now, x),
            Input::Admin { cmd, group } => return Some(self.admin(cmd, group, now, x)),
            Input::Stop => self.shutdown(now, x),
            Input::Reloaded(cfg) => {
                self.cfg = *cfg;
                // What is in force now, so the operator sees the change.
                let t = &self.cfg.timing;
                info!(
                    keepalive = ?t.keepalive,
                    deadtime = ?t.deadtime,
                    warntime = ?t.warntime,
                    initdead = ?t.initdead,
                    "configuration reloaded"
                );
            }
            Input::Settle { lease_on_hold } => self.settle(lease_on_hold, now, x),
        }
        None
    }

    /// Events fed at start (adoption, the kernel's pinned view): as the
    /// loop's, before the first heartbeat goes out.
    pub fn feed_at_start(&mut self, ev: Event, now: Now, x: &mut impl Executor) {
        self.feed(ev, now, x);
    }

    /// A warning that is the shell's own (e.g. not pinned), for `status`.
    pub fn note_warning(&mut self, msg: String) {
        if self.warnings.len() == WARNINGS_KEPT {
            self.warnings.pop_front();
        }
        self.warnings.push_back(msg);
    }

    /// Groups whose stop has not finished.
    pub fn stopping(&self) -> &BTreeSet<GroupId> {
        &self.handover.stopping
    }

    /// Released with its addresses withdrawn, their removal still waiting
    /// for a peer to serve the group (or a deadtime).
    pub fn withdrawn(&self, group: GroupId) -> bool {
        self.handover.deferred_cleanups.contains_key(&group)
    }

    /// At exit: the deferred clean-ups, to run now.
    pub fn take_deferred_cleanups(&mut self) -> Vec<GroupId> {
        std::mem::take(&mut self.handover.deferred_cleanups)
            .into_keys()
            .collect()
    }

    pub fn group_name(&self, id: GroupId) -> String {
        self.cfg
            .group_by_id(id)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| format!("#{id:08x}"))
    }

    pub fn node_name(&self, id: NodeId) -> String {
        self.cfg
            .node_by_id(id)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| format!("#{id:08x}"))
    }

    fn kernel_event(&mut self, e: KernelEvent, now: Now, x: &mut impl Executor) {
        let was_alive = self.cluster.is_peer_alive(e.node_id);
        for ev in convert::kernel_to_cluster(&e) {
            self.feed(ev, now, x);
        }
        if was_alive && !self.cluster.is_peer_alive(e.node_id) {
            warn!(step = step::PEER_DEAD, peer = %self.node_name(e.node_id), "peer dead on all links");
            *self.dead_events.entry(e.node_id).or_default() += 1;
        }
    }

    fn worker(&mut self, d: Done, now: Now, x: &mut impl Executor) {
        match d {
            Done::Cluster(ev) => self.feed(ev, now, x),
            Done::StopFinished {
                group,
                handed_over,
                ok,
            } => self.stop_finished(group, handed_over, ok, now, x),
            Done::Restarted { group, check, ok } => self.restart_done(group, check, ok, now, x),
            Done::QuickPlan { group, plan } => match plan {
                Some(p) => {
                    self.quick_plans.insert(group, p);
                }
                None => {
                    self.quick_plans.remove(&group);
                }
            },
        }
    }

    /// A freeze, from the sender thread's view, is told to the cluster
    /// logic first. Only the sender's silence counts: peers take over after
    /// a deadtime without heartbeats, not after a slow event loop (at
    /// millisecond deadtimes a busy loop is routinely late by more than
    /// that, while the real-time sender is not).
    fn stall(&mut self, ns: u64, now: Now, x: &mut impl Executor) {
        if ns > self.cfg.timing.deadtime.as_nanos() as u64 {
            warn!(
                stall_ms = ns as f64 / 1e6,
                "this node was frozen longer than deadtime (SIGSTOP / VM pause?)"
            );
            self.feed(Event::Stalled { ns }, now, x);
        }
    }

    /// One event into the cluster logic, and its actions out.
    fn feed(&mut self, ev: Event, now: Now, x: &mut impl Executor) {
        self.pending.push_back(ev);
        if self.feeding {
            // Applying an action raised it: handled after that batch.
            return;
        }
        self.feed_pending(now, x);
    }

    /// The queued events, each with its actions.
    fn feed_pending(&mut self, now: Now, x: &mut impl Executor) {
        if self.pending.is_empty() {
            return;
        }
        self.feeding = true;
        // The batch's starts and stops all queued before any begins, so
        // they run in the written order (lane.rs), not the order emitted.
        x.begin_batch();
        while let Some(ev) = self.pending.pop_front() {
            self.feed_one(ev, now, x);
        }
        x.end_batch();
        self.feeding = false;
    }

    fn feed_one(&mut self, ev: Event, now: Now, x: &mut impl Executor) {
        match &ev {
            Event::Acquired { group } => {
                let c = self.group_counts.entry(*group).or_default();
                c.takeovers += 1;
                if let Some(t) = self.acquiring_since.remove(group) {
                    let took = now.at.saturating_duration_since(t);
                    c.durations.observe_duration(took);
                    info!(step = step::TAKEN_OVER, group = %self.group_name(*group), took_ms = took.as_secs_f64() * 1e3, "takeover finished");
                }
            }
            Event::Released { group } => self.group_counts.entry(*group).or_default().releases += 1,
            _ => {}
        }
        let actions = self.cluster.handle(ev, now.ns);
        for a in actions {
            self.apply(a, now, x);
        }
        self.track_owners(now);
        self.sync_held(now);
    }

    /// A release reason with node names instead of ids, for the log.
    fn reason(&self, r: crate::cluster::ReleaseReason) -> String {
        use crate::cluster::ReleaseReason as R;
        match r {
            R::SplitBrain { winner } => format!("split brain, {} keeps it", self.node_name(winner)),
            R::Failback { to } => format!("failback to {}", self.node_name(to)),
            R::Requested { by } => format!("requested by {}", self.node_name(by)),
            other => format!("{other:?}"),
        }
    }

    fn apply(&mut self, a: Action, now: Now, x: &mut impl Executor) {
        match a {
            Action::SendAdvert => x.advertise(&self.cluster.advert()),
            Action::Acquire { group, epoch } => self.acquire(group, epoch, now, x),
            Action::Release { group, reason } => {
                info!(step = step::RELEASING, group = %self.group_name(group), reason = %self.reason(reason), "releasing group");
                self.handover.stopping.insert(group);
                if x.hand_over(group) {
                    info!(step = step::RELEASED, group = %self.group_name(group), "group released (addresses withdrawn, removing them)");
                    self.pending.push_back(Event::Released { group });
                    self.handover
                        .deferred_cleanups
                        .insert(group, now.at + self.cfg.timing.deadtime);
                } else {
                    x.submit(group, Op::Stop);
                }
            }
            Action::Fence { node, group } => {
                if self.cfg.fencing.is_none() {
                    return;
                }
                let name = self.node_name(node);
                info!(node = %name, group = %self.group_name(group), "fencing before takeover");
                x.fence(node, &name);
            }
            Action::Warn(w) => self.warn(&w),
            Action::ResumeLease => {
                x.resume_lease();
                // A heartbeat now renews it: the addresses answer at once.
                x.advertise(&self.cluster.advert());
            }
            Action::Exit => self.exit_requested(now, x),
        }
    }

    fn acquire(&mut self, group: GroupId, epoch: u32, now: Now, x: &mut impl Executor) {
        info!(step = step::TAKING_OVER, group = %self.group_name(group), epoch, "taking over group");
        self.acquiring_since.insert(group, now.at);
        let deferred = self.handover.deferred_cleanups.remove(&group).is_some();
        if !deferred {
            self.quick_start(group, x);
        }
        // Before the group's worker starts anything, but after the quick
        // step: writing the file takes ~0.5 ms here, and the epoch is on
        // the wire already (SendAdvert comes first in the batch), so the
        // record guards only a restart of every node at once, which the
        // microseconds of the quick step do not change.
        // Recorded under the group's key, which never changes (Group::key).
        let key = self
            .cfg
            .group_by_id(group)
            .map_or_else(|| self.group_name(group), |g| g.key().to_string());
        if let Err(e) = x.record_epoch(&key, epoch) {
            warn!(group = %self.group_name(group), "could not record the takeover's epoch: {e}");
        }
        if deferred {
            // Back before its hand-over finished: remove first, so the
            // start puts everything up from a known state.
            x.submit(group, Op::CleanUp);
        }
        x.submit(group, Op::Start);
    }

    /// A takeover's first step on the loop's thread (`resources::quick`):
    /// the VIP up and announced before the group's worker even wakes. Only
    /// while the worker is idle (nothing of the group's in flight to race
    /// with) and its traffic passes again.
    fn quick_start(&mut self, group: GroupId, x: &mut impl Executor) {
        let Some(p) = self.quick_plans.get(&group) else {
            return;
        };
        if !x.can_quick_start() || !x.idle(group) || !x.pass_traffic(group) {
            return;
        }
        if let Some(Err(e)) = x.quick_start(&self.group_name(group), p) {
            // Its worker's start does it all; the plan is read again when
            // that finishes.
            warn!(group = %self.group_name(group), "quick takeover step failed, the full start follows: {e}");
            self.quick_plans.remove(&group);
        }
    }

    /// The pure logic speaks in ids; people read names.
    fn warn(&mut self, w: &Warning) {
        let msg = w.render(&|n| self.node_name(n), &|g| self.group_name(g));
        warn!(step = w.step(), "{msg}");
        self.note_warning(msg);
    }

    fn exit_requested(&mut self, now: Now, x: &mut impl Executor) {
        let alive = self
            .cfg
            .nodes
            .iter()
            .any(|n| n.id != self.local.id && self.cluster.is_peer_alive(n.id));
        if !alive {
            // Nobody to hand over to: nothing to wait for but our own
            // clean-up, which need not wait for a taker either.
            self.handover.handing_over.clear();
            for g in self.take_deferred_cleanups() {
                x.submit(g, Op::CleanUp);
            }
        }
        if self.handover.drain_until.is_none() {
            self.handover.drain_until = Some(now.at + self.cfg.timing.deadtime);
        }
        self.check_drained(now, x);
    }

    /// A group's stop is over (see `Done::StopFinished`).
    pub fn stop_finished(
        &mut self,
        group: GroupId,
        handed_over: bool,
        ok: bool,
        now: Now,
        x: &mut impl Executor,
    ) {
        self.handover.stopping.remove(&group);
        if handed_over && !ok {
            self.apply(Action::Warn(Warning::CleanupFailed { group }), now, x);
        }
    }

    /// SIGTERM/SIGINT: release in order; a second one exits without waiting
    /// for the hand-over.
    fn shutdown(&mut self, now: Now, x: &mut impl Executor) {
        if self.handover.drain_until.is_some() {
            self.exit = true;
            return;
        }
        if !self.cluster.is_shutting_down() {
            self.handover.handing_over = self.cluster.held_groups();
        }
        self.feed(Event::Shutdown, now, x);
    }

    /// After every loop iteration: deferred clean-ups, the end of a
    /// shutdown, and the service lease.
    fn settle(&mut self, lease_on_hold: Option<bool>, now: Now, x: &mut impl Executor) {
        self.run_deferred_cleanups(now, x);
        self.check_drained(now, x);
        let Some(on_hold) = lease_on_hold else {
            return;
        };
        if on_hold
            && !self.cluster.held_groups().is_empty()
            && !self.cluster.is_hang_settling()
            && !self.cluster.is_resuming()
        {
            // The lease lapsed (our silence reached a deadtime) and we
            // still hold something the hang rule is not already releasing
            // (the sender saw no stall, or a start finished after the
            // rule's window): same rule, the peers may have taken over;
            // our addresses stay fenced until we released them.
            let ns = self.cfg.timing.deadtime.as_nanos() as u64;
            self.feed(Event::Stalled { ns }, now, x);
        }
        if may_resume(on_hold, self.cluster.held_groups().len()) {
            x.resume_lease();
        }
    }

    /// Ends the shutdown once every stop finished (a withdrawn address
    /// must be gone before the XDP program that drops its traffic is
    /// detached) and a peer serves every released group (its start
    /// finished, so it no longer needs the kernel's RTNL lock that our exit
    /// takes), or a deadtime passed without one.
    fn check_drained(&mut self, now: Now, x: &mut impl Executor) {
        let Some(until) = self.handover.drain_until else {
            return;
        };
        if !self.handover.stopping.is_empty() {
            return;
        }
        let served = x.served_by_peers();
        let taken = self
            .handover
            .handing_over
            .iter()
            .all(|g| served.contains(g));
        if taken || now.at >= until {
            if !taken {
                warn!(
                    served = ?served,
                    "no peer confirmed serving the released groups within deadtime; stopping anyway"
                );
            }
            info!(taken_over = taken, "hand-over done; stopping");
            self.exit = true;
        }
    }

    /// Removes what is left of withdrawn groups once a peer serves them.
    fn run_deferred_cleanups(&mut self, now: Now, x: &mut impl Executor) {
        if self.handover.deferred_cleanups.is_empty() {
            return;
        }
        let served = x.served_by_peers();
        let due: Vec<GroupId> = self
            .handover
            .deferred_cleanups
            .iter()
            .filter(|(g, until)| served.contains(g) || now.at >= **until)
            .map(|(g, _)| *g)
            .collect();
        for g in due {
            self.handover.deferred_cleanups.remove(&g);
            x.submit(g, Op::CleanUp);
        }
    }

    /// Who holds what, as far as this node knows, for `status`.
    fn track_owners(&mut self, now: Now) {
        for g in &self.cluster.spec().groups {
            let owner = self.cluster.owner(g.id);
            let e = self.owners.entry(g.id).or_insert((None, now.at));
            if e.0 != owner {
                *e = (owner, now.at);
            }
        }
    }

    fn admin(
        &mut self,
        cmd: Admin,
        group: Option<String>,
        now: Now,
        x: &mut impl Executor,
    ) -> Answer {
        let refuse = |message: String| Answer { ok: false, message };
        let id = match &group {
            None => None,
            Some(name) => match self.cfg.group_named(name) {
                Some(g) if self.cluster.spec().group(g.id).is_some() => Some((g.id, &g.name)),
                Some(_) => return refuse(format!("group {name} does not run on this node")),
                None => return refuse(format!("no group named {name}")),
            },
        };
        // The group as `status` shows it, whichever name was given.
        let what = id.map_or_else(|| "all groups".to_string(), |(_, n)| n.clone());
        let id = id.map(|(id, _)| id);
        let (c, verb) = match cmd {
            Admin::Standby => (AdminCmd::Standby(id), "standby:"),
            Admin::Takeover => (AdminCmd::Takeover(id), "takeover:"),
        };
        self.feed(Event::Admin(c), now, x);
        Answer {
            ok: true,
            message: format!("{verb} {what}"),
        }
    }
}

/// The cluster state machine's view of `cfg` from `local`: the groups it
/// may run, their candidates in preference order, the timings and rules.
pub fn cluster_spec(cfg: &Config, local: &Node) -> ClusterSpec {
    let ns = |d: std::time::Duration| d.as_nanos() as u64;
    ClusterSpec {
        local: local.id,
        nodes: cfg.nodes.iter().map(|n| n.id).collect(),
        groups: cfg
            .groups
            .iter()
            .filter(|g| g.nodes.iter().any(|n| n.eq_ignore_ascii_case(&local.name)))
            .map(|g| GroupSpec {
                id: g.id,
                candidates: g
                    .nodes
                    .iter()
                    .filter_map(|n| cfg.node(n).map(|n| n.id))
                    .collect(),
            })
            .collect(),
        keepalive_ns: ns(cfg.timing.keepalive),
        deadtime_ns: ns(cfg.timing.deadtime),
        warntime_ns: ns(cfg.timing.warntime),
        initdead_ns: ns(cfg.timing.initdead),
        auto_failback: cfg.auto_failback,
        ping_targets: cfg.deciding_ping_targets(),
        ping_tie_break: cfg.ping_tie_break,
        fencing: cfg.fencing.is_some(),
        // The agent clears it when the lease could not be set up.
        leased: cfg.service_lease,
    }
}

/// Whether a lapsed lease may run again: only once nothing is held here.
pub fn may_resume(on_hold: bool, held_groups: usize) -> bool {
    if on_hold && held_groups == 0 {
        info!("service lease renewed again: everything held during the lapse is released");
        return true;
    }
    false
}
