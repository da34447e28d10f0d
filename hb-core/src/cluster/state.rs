//! The cluster state machine: [`Cluster::handle`] takes one [`Event`] and returns the
//! [`Action`]s it calls for. It is level-triggered: every event updates what we know, then every
//! group is re-evaluated from scratch against the rules, so an event that arrives while an
//! operation is outstanding is not lost; it is simply looked at again when the operation
//! completes.

use std::collections::{BTreeMap, BTreeSet};

use super::event::{Action, AdminCmd, Advert, Event, GroupClaim, ReleaseReason, Warning};
use super::flaps::{self, Flaps};
use super::membership::{Membership, Transition};
use super::resume::{PeerView, ROUND_TIMEOUT_DEADTIMES, Resume, Verdict};
use super::spec::{
    ClusterSpec, FAILBACK_STABLE_DEADTIMES, FAILURE_HOLDOFF_DEADTIMES, FLAP_HALF_LIFE_DEADTIMES,
    FLAP_HALF_LIFE_MIN_NS, FLAP_MAX_HOLD_DEADTIMES, GroupId, LAST_MAN_STANDING_DEADTIMES,
    MAX_GROUPS, NodeId,
};

/// Where one of our groups stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldState {
    /// Not held, nothing outstanding.
    Idle,
    /// `Acquire` emitted, waiting for `Acquired` / `AcquireFailed`.
    Acquiring,
    Held,
    /// `Release` emitted, waiting for `Released` / `ReleaseFailed`.
    Releasing,
    /// A stop failed: resources in an unknown state, advertised as held and stuck.
    Stuck,
}

impl HoldState {
    /// Advertised as held: our resources are, or may be, in place.
    pub fn on_wire(self) -> bool {
        self != Self::Idle
    }
}

#[derive(Clone, Debug)]
struct PeerState {
    /// When the peer was last seen coming up (or restarting).
    alive_since: u64,
    /// Its latest advert in the current incarnation.
    advert: Option<Advert>,
    /// We have had an advert from it at least once since we started.
    ever_heard: bool,
    /// Fenced successfully: treated as dead and holding nothing until it comes up again.
    fenced: bool,
    /// An advert arrived while membership said the peer was dead (the shell delivered it out of
    /// order): it may well be alive, so nothing is taken from it for a deadtime.
    heard_while_dead_at: Option<u64>,
    /// Since when membership says it is dead (None: alive, or never heard).
    dead_since: Option<u64>,
}

impl PeerState {
    fn new(now: u64) -> Self {
        PeerState {
            alive_since: now,
            advert: None,
            ever_heard: false,
            fenced: false,
            heard_while_dead_at: None,
            dead_since: None,
        }
    }
}

#[derive(Clone, Debug)]
struct GroupState {
    id: GroupId,
    candidates: Vec<NodeId>,
    hold: HoldState,
    /// Our hold epoch (meaningful while `hold.on_wire()`).
    epoch: u32,
    /// Highest epoch seen for this group (ours included).
    known_epoch: u32,
    /// Held through `AdoptHeld`; its epoch follows what we learn until initdead is over.
    adopted: bool,
    /// Acquisition order (for the shutdown order).
    seq: u64,
    standby: bool,
    takeover: bool,
    failed_until: Option<u64>,
    stuck_retry_at: u64,
    shutdown_tried: bool,
    warned_quorum: bool,
    warned_stuck_peer: bool,
    conn_lost: bool,
    split_warned: BTreeSet<NodeId>,
    /// Since when we are eligible for it without interruption (flap dampening).
    eligible_since: Option<u64>,
    /// Its health checks fail here (`Event::Health`).
    unhealthy: bool,
    /// Released for a hand-over (standby, unhealthy, failback, ...), and
    /// when an advert first offered it since (free, and we not eligible):
    /// a peer may be taking it, so we do not take it back for two
    /// keepalives (its held advert is on its way) while a candidate that
    /// can take it is alive.
    handed_off: bool,
    offered_at: Option<u64>,
    /// Warned that it stays here unhealthy (once per episode).
    warned_unhealthy: bool,
    /// Candidates that left one after another while we had quorum, each dead for a
    /// [`LAST_MAN_STANDING_DEADTIMES`] window: no longer expected (votequorum's
    /// `last_man_standing`). Back in as soon as they are alive.
    gone: BTreeSet<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FenceState {
    InFlight,
    Failed { at: u64 },
}

/// The pure decision logic of one node. See the [module docs](super) for the rules.
#[derive(Clone, Debug)]
pub struct Cluster {
    spec: ClusterSpec,
    membership: Membership,
    peers: BTreeMap<NodeId, PeerState>,
    groups: Vec<GroupState>,
    fences: BTreeMap<NodeId, FenceState>,
    now: u64,
    started_at: Option<u64>,
    ping: Option<u8>,
    hang_until: Option<u64>,
    /// The stall rule's rounds: ours, and our answers to peers' (`resume.rs`).
    resume: Resume,
    shutting_down: bool,
    exited: bool,
    next_seq: u64,
    last_advert: Option<Advert>,
    /// Our own flap penalty: we damp ourselves as peers damp us.
    flaps: Flaps,
}

fn beats(a_epoch: u32, a_prio: usize, b_epoch: u32, b_prio: usize) -> bool {
    a_epoch > b_epoch || (a_epoch == b_epoch && a_prio < b_prio)
}

impl Cluster {
    /// A state machine for `spec` (call [`ClusterSpec::validate`] first). Nothing happens until
    /// [`Event::Start`].
    pub fn new(spec: ClusterSpec, now: u64) -> Self {
        let peers = spec
            .nodes
            .iter()
            .filter(|&&n| n != spec.local)
            .map(|&n| (n, PeerState::new(now)))
            .collect();
        let groups = spec
            .groups
            .iter()
            .map(|g| GroupState {
                id: g.id,
                candidates: g.candidates.clone(),
                hold: HoldState::Idle,
                epoch: 0,
                known_epoch: 0,
                adopted: false,
                seq: 0,
                standby: false,
                takeover: false,
                failed_until: None,
                stuck_retry_at: 0,
                shutdown_tried: false,
                warned_quorum: false,
                warned_stuck_peer: false,
                conn_lost: false,
                split_warned: BTreeSet::new(),
                eligible_since: None,
                unhealthy: false,
                warned_unhealthy: false,
                handed_off: false,
                offered_at: None,
                gone: BTreeSet::new(),
            })
            .collect();
        Self {
            spec,
            membership: Membership::new(),
            peers,
            groups,
            fences: BTreeMap::new(),
            now,
            started_at: None,
            ping: None,
            hang_until: None,
            resume: Resume::default(),
            shutting_down: false,
            exited: false,
            next_seq: 0,
            last_advert: None,
            flaps: Flaps::default(),
        }
    }

    /// Before [`Event::Start`]: `group` was taken here at `epoch` by an earlier run (the
    /// agent's record). Epochs never go backwards: the next takeover uses a higher one, and an
    /// adopted group holds at least this one.
    pub fn remember_epoch(&mut self, group: GroupId, epoch: u32) {
        if let Some(i) = self.group_index(group) {
            let g = &mut self.groups[i];
            g.known_epoch = g.known_epoch.max(epoch);
        }
    }

    /// Feeds one event; returns what to do. `now` is monotonic nanoseconds (a smaller value than
    /// an earlier call's is treated as the earlier value).
    pub fn handle(&mut self, ev: Event, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.exited {
            return out;
        }
        self.now = self.now.max(now);
        self.apply(ev, &mut out);
        self.evaluate(&mut out);
        self.drive_shutdown(&mut out);
        // The hand-over is done once a peer advertises the group held above the epoch
        // we held it at (a taker takes at a higher one; an older holder's claim, say the
        // loser of a split brain still releasing, does not end it): that advert is what
        // the window waited for; a later release (failback to us) is to be taken.
        for i in 0..self.groups.len() {
            let (gid, ours) = (self.groups[i].id, self.groups[i].epoch);
            if self.groups[i].offered_at.is_some()
                && self.spec.nodes.iter().any(|&n| {
                    n != self.spec.local
                        && self.peer_alive(n)
                        && self.claim(n, gid).is_some_and(|c| c.held && c.epoch > ours)
                })
            {
                self.groups[i].offered_at = None;
            }
        }
        let advert = self.advert();
        let now = self.now;
        for g in &mut self.groups {
            if g.handed_off && advert.claim(g.id).is_some_and(|c| !c.held && !c.eligible) {
                g.handed_off = false;
                g.offered_at = Some(now);
            }
        }
        if self.last_advert.as_ref() != Some(&advert) {
            self.last_advert = Some(advert);
            out.insert(0, Action::SendAdvert);
        }
        out
    }

    /// What our heartbeats must say now.
    pub fn advert(&self) -> Advert {
        let claims = self
            .groups
            .iter()
            .enumerate()
            .take(MAX_GROUPS)
            .map(|(i, g)| GroupClaim {
                group: g.id,
                epoch: if g.hold.on_wire() {
                    g.epoch
                } else {
                    g.known_epoch
                },
                held: g.hold.on_wire(),
                eligible: self.local_eligible(i),
                stuck: g.hold == HoldState::Stuck,
                takeover: g.takeover && !self.shutting_down,
                serving: g.hold == HoldState::Held,
            })
            .collect();
        Advert {
            claims,
            ping_reachable: self.our_ping(),
            standby: !self.groups.is_empty() && self.groups.iter().all(|g| g.standby),
            settling: self.settling(),
            damped: self.damped(),
            round: self.resume.round(),
            acks: self.resume.acks(),
        }
    }

    // ----- read-only views for status, metrics and tests -----

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Our state for `group`; `None` if we are not configured for it.
    pub fn hold_state(&self, group: GroupId) -> Option<HoldState> {
        self.group_index(group).map(|i| self.groups[i].hold)
    }

    /// Groups whose resources are (or may be) in place here.
    pub fn held_groups(&self) -> Vec<GroupId> {
        self.groups
            .iter()
            .filter(|g| g.hold.on_wire())
            .map(|g| g.id)
            .collect()
    }

    /// Is the peer alive (and not fenced) as far as we know?
    pub fn is_peer_alive(&self, node: NodeId) -> bool {
        self.peer_alive(node)
    }

    /// Who holds `group`, as far as this node knows: itself if its hold state is not idle,
    /// else the first alive peer (in priority order) whose heartbeats say it holds it.
    pub fn owner(&self, group: GroupId) -> Option<NodeId> {
        if matches!(self.hold_state(group), Some(s) if s != HoldState::Idle) {
            return Some(self.spec.local);
        }
        self.spec
            .nodes
            .iter()
            .copied()
            .filter(|&n| n != self.spec.local && self.peer_alive(n))
            .find(|&n| {
                self.peer_advert(n)
                    .and_then(|a| a.claim(group))
                    .is_some_and(|c| c.held)
            })
    }

    /// The latest advert of a peer in its current incarnation.
    pub fn peer_advert(&self, node: NodeId) -> Option<&Advert> {
        self.peers.get(&node).and_then(|p| p.advert.as_ref())
    }

    pub fn is_settling(&self) -> bool {
        self.settling()
    }

    /// Releasing everything after a stall of ours (the hang rule) is under way.
    pub fn is_hang_settling(&self) -> bool {
        self.hang_settling()
    }

    /// After a stall of ours, waiting (fenced) for the peers' answers (`resume.rs`).
    pub fn is_resuming(&self) -> bool {
        self.resume.waiting().is_some()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// `Exit` was emitted; every later event is ignored.
    pub fn has_exited(&self) -> bool {
        self.exited
    }

    // ----- event intake -----

    fn apply(&mut self, ev: Event, out: &mut Vec<Action>) {
        let now = self.now;
        match ev {
            Event::Start => {
                if self.started_at.is_none() {
                    self.started_at = Some(now);
                }
            }
            Event::PeerUp { node } => {
                if self.spec.is_peer(node) {
                    let t = self.membership.node_up(node);
                    self.on_transition(t);
                }
            }
            Event::PeerDead { node } => {
                if self.spec.is_peer(node) {
                    let t = self.membership.node_dead(node);
                    self.on_transition(t);
                }
            }
            Event::LinkUp { node, link } => {
                if self.spec.is_peer(node) {
                    let t = self.membership.link_up(node, link);
                    self.on_transition(t);
                }
            }
            Event::LinkDead { node, link } => {
                if self.spec.is_peer(node) {
                    let t = self.membership.link_dead(node, link);
                    self.on_transition(t);
                }
            }
            Event::Late { node, link, gap_ns } => {
                if self.spec.is_peer(node)
                    && self.membership.late(
                        node,
                        gap_ns,
                        self.spec.warntime_ns,
                        self.spec.deadtime_ns,
                        now,
                    )
                {
                    out.push(Action::Warn(Warning::LateHeartbeat { node, link, gap_ns }));
                }
            }
            Event::PeerAdvert { node, advert } => self.on_advert(node, advert),
            Event::PeerRestarted { node } => {
                self.resume.restarted(node);
                if let Some(p) = self.peers.get_mut(&node) {
                    p.advert = None;
                    p.fenced = false;
                    p.alive_since = now;
                    self.fences.remove(&node);
                    for g in &mut self.groups {
                        g.split_warned.remove(&node);
                    }
                }
            }
            Event::PingReachable { count } => self.ping = Some(count),
            Event::Health { group, healthy } => match self.group_index(group) {
                Some(i) => {
                    let g = &mut self.groups[i];
                    g.unhealthy = !healthy;
                    g.warned_unhealthy &= g.unhealthy;
                }
                None => out.push(Action::Warn(Warning::UnknownGroup { group })),
            },
            Event::Tick => {}
            Event::Admin(cmd) => self.admin(cmd, out),
            Event::Acquired { group } => {
                if let Some(i) = self.expect(group, HoldState::Acquiring, "Acquired", out) {
                    let g = &mut self.groups[i];
                    g.hold = HoldState::Held;
                    g.takeover = false;
                }
            }
            Event::AcquireFailed { group } => {
                if let Some(i) = self.expect(group, HoldState::Acquiring, "AcquireFailed", out) {
                    let until = now.saturating_add(self.holdoff());
                    let g = &mut self.groups[i];
                    g.failed_until = Some(until);
                    out.push(Action::Warn(Warning::AcquireFailed { group }));
                    self.release(i, ReleaseReason::StartFailed, out);
                }
            }
            Event::Released { group } => {
                if let Some(i) = self.expect(group, HoldState::Releasing, "Released", out) {
                    let g = &mut self.groups[i];
                    g.hold = HoldState::Idle;
                    g.adopted = false;
                }
            }
            Event::ReleaseFailed { group } => {
                if let Some(i) = self.expect(group, HoldState::Releasing, "ReleaseFailed", out) {
                    let retry = now.saturating_add(self.holdoff());
                    let g = &mut self.groups[i];
                    g.hold = HoldState::Stuck;
                    g.stuck_retry_at = retry;
                    out.push(Action::Warn(Warning::ReleaseFailed { group }));
                }
            }
            Event::Fenced { node, ok } => {
                self.fences.remove(&node);
                if ok {
                    if let Some(p) = self.peers.get_mut(&node) {
                        p.fenced = true;
                    }
                } else {
                    self.fences.insert(node, FenceState::Failed { at: now });
                    out.push(Action::Warn(Warning::FencingFailed { node }));
                }
            }
            Event::Stalled { ns } => {
                // Conservative: the last heartbeat before the stall may have left up to one
                // keepalive before the stall began.
                if ns.saturating_add(self.spec.keepalive_ns) > self.spec.deadtime_ns {
                    let holding = self.groups.iter().any(|g| g.hold.on_wire());
                    if holding && self.spec.leased {
                        // Fenced by the lapsed lease: ask the peers (resume.rs).
                        self.resume.begin(now, ns);
                        out.push(Action::Warn(Warning::Stalled { ns, waiting: true }));
                    } else {
                        self.hang_until = Some(now.saturating_add(self.spec.deadtime_ns));
                        out.push(Action::Warn(match holding {
                            true => Warning::Hang { ns, by: None },
                            false => Warning::Stalled { ns, waiting: false },
                        }));
                    }
                }
            }
            Event::Shutdown => {
                self.shutting_down = true;
                for g in &mut self.groups {
                    g.takeover = false;
                }
            }
            Event::AdoptHeld { group } => match self.group_index(group) {
                Some(i) => {
                    let seq = self.next_seq;
                    let g = &mut self.groups[i];
                    if g.hold == HoldState::Idle {
                        g.hold = HoldState::Held;
                        g.adopted = true;
                        g.epoch = g.known_epoch;
                        g.seq = seq;
                        self.next_seq += 1;
                    }
                }
                None => out.push(Action::Warn(Warning::UnknownGroup { group })),
            },
        }
    }

    /// The index of `group` if its state is `expected`; warns otherwise.
    fn expect(
        &self,
        group: GroupId,
        expected: HoldState,
        event: &'static str,
        out: &mut Vec<Action>,
    ) -> Option<usize> {
        match self.group_index(group) {
            None => {
                out.push(Action::Warn(Warning::UnknownGroup { group }));
                None
            }
            Some(i) if self.groups[i].hold == expected => Some(i),
            Some(_) => {
                out.push(Action::Warn(Warning::UnexpectedCompletion { group, event }));
                None
            }
        }
    }

    fn holdoff(&self) -> u64 {
        self.spec
            .deadtime_ns
            .saturating_mul(FAILURE_HOLDOFF_DEADTIMES)
    }

    fn on_transition(&mut self, t: Option<Transition>) {
        match t {
            Some(Transition::Up(node)) => {
                if let Some(p) = self.peers.get_mut(&node) {
                    p.alive_since = self.now;
                    p.fenced = false;
                    p.heard_while_dead_at = None;
                    p.dead_since = None;
                }
                for g in &mut self.groups {
                    g.gone.remove(&node);
                }
            }
            Some(Transition::Dead(node)) => {
                self.resume.declared_dead(node);
                if let Some(p) = self.peers.get_mut(&node) {
                    p.dead_since = Some(self.now);
                }
            }
            None => {}
        }
    }

    /// Last man standing: while we have quorum for group `i`, a candidate dead for the window
    /// stops being expected, so the survivors of failures that came one after another keep
    /// quorum down to the last one (Heartbeat took over there too). Candidates that vanish
    /// together (a partition) leave the rest without quorum, and nothing is dropped then.
    fn update_expected(&mut self, i: usize) {
        if !self.quorum(i).1 {
            return;
        }
        let window = self
            .spec
            .deadtime_ns
            .saturating_mul(LAST_MAN_STANDING_DEADTIMES);
        let now = self.now;
        let local = self.spec.local;
        let leaving: Vec<NodeId> = self.groups[i]
            .candidates
            .iter()
            .copied()
            .filter(|&c| c != local && !self.groups[i].gone.contains(&c))
            .filter(|c| {
                self.peers
                    .get(c)
                    .and_then(|p| p.dead_since)
                    .is_some_and(|t| now >= t.saturating_add(window))
            })
            .collect();
        // One at a time: the next is looked at with the smaller expected count.
        if let Some(&c) = leaving.first() {
            self.groups[i].gone.insert(c);
        }
    }

    fn flap_half_life(&self) -> u64 {
        self.spec
            .deadtime_ns
            .saturating_mul(FLAP_HALF_LIFE_DEADTIMES)
            .max(FLAP_HALF_LIFE_MIN_NS)
    }

    fn on_advert(&mut self, node: NodeId, advert: Advert) {
        if !self.spec.is_peer(node) {
            return;
        }
        // An adopted group takes the epoch the cluster knows for it, as long as we are still
        // learning (initdead); the advert that ends initdead still counts.
        let learning = !self.initdead_over();
        for c in &advert.claims {
            if let Some(i) = self.group_index(c.group) {
                let g = &mut self.groups[i];
                g.known_epoch = g.known_epoch.max(c.epoch);
                if g.adopted && learning && g.hold.on_wire() {
                    g.epoch = g.known_epoch;
                }
            }
        }
        self.resume.peer_round(node, advert.round);
        let alive = self.membership.is_alive(node);
        if let Some(p) = self.peers.get_mut(&node) {
            p.ever_heard = true;
            p.advert = Some(advert);
            if !alive {
                p.heard_while_dead_at = Some(self.now);
            }
        }
    }

    fn admin(&mut self, cmd: AdminCmd, out: &mut Vec<Action>) {
        let (sel, standby) = match cmd {
            AdminCmd::Standby(sel) => (sel, true),
            AdminCmd::Takeover(sel) => (sel, false),
        };
        if let Some(group) = sel
            && self.group_index(group).is_none()
        {
            out.push(Action::Warn(Warning::UnknownGroup { group }));
            return;
        }
        for g in &mut self.groups {
            if sel.is_some_and(|s| s != g.id) {
                continue;
            }
            if standby {
                g.standby = true;
                g.takeover = false;
            } else {
                g.standby = false;
                g.failed_until = None;
                g.takeover = g.hold != HoldState::Held;
            }
        }
    }

    // ----- derived facts -----

    fn group_index(&self, group: GroupId) -> Option<usize> {
        self.groups.iter().position(|g| g.id == group)
    }

    fn initdead_elapsed(&self) -> bool {
        self.started_at
            .is_some_and(|t| self.now >= t.saturating_add(self.spec.initdead_ns))
    }

    /// initdead is over: its time elapsed, or every peer has been heard.
    fn initdead_over(&self) -> bool {
        self.started_at.is_some()
            && (self.initdead_elapsed() || self.peers.values().all(|p| p.ever_heard))
    }

    fn hang_settling(&self) -> bool {
        self.hang_until.is_some_and(|t| self.now < t)
    }

    /// Ping targets are configured but not measured yet (and initdead has not run out).
    fn ping_pending(&self) -> bool {
        self.spec.ping_targets > 0 && self.ping.is_none() && !self.initdead_elapsed()
    }

    fn settling(&self) -> bool {
        !self.initdead_over()
            || self.hang_settling()
            || self.ping_pending()
            || self.resume.waiting().is_some()
    }

    fn our_ping(&self) -> u8 {
        self.ping.unwrap_or(0)
    }

    fn peer_alive(&self, node: NodeId) -> bool {
        self.membership.is_alive(node) && self.peers.get(&node).is_some_and(|p| !p.fenced)
    }

    fn claim(&self, node: NodeId, group: GroupId) -> Option<&GroupClaim> {
        self.peers
            .get(&node)
            .and_then(|p| p.advert.as_ref())
            .and_then(|a| a.claim(group))
    }

    fn peer_eligible(&self, node: NodeId, group: GroupId) -> bool {
        self.peer_alive(node) && self.claim(node, group).is_some_and(|c| c.eligible)
    }

    fn peer_settling(&self, node: NodeId) -> bool {
        self.peers
            .get(&node)
            .and_then(|p| p.advert.as_ref())
            .is_none_or(|a| a.settling)
    }

    /// Alive without interruption, as far as we know, for [`FAILBACK_STABLE_DEADTIMES`]
    /// deadtimes. Silence is only noticed a deadtime late, so two deadtimes of "alive" guarantee
    /// at least one of real contact.
    fn peer_stable(&self, node: NodeId) -> bool {
        let need = self
            .spec
            .deadtime_ns
            .saturating_mul(FAILBACK_STABLE_DEADTIMES);
        self.peers
            .get(&node)
            .is_some_and(|p| self.now.saturating_sub(p.alive_since) >= need)
    }

    /// Flap dampening (`flaps.rs`): is `node` steady for group `i`? A node judges itself, and
    /// says so in its adverts (`Advert::damped`); peers go by what it says. Two views of one
    /// node's flaps drift apart (an eligibility lost and back between two adverts), and a
    /// holder that failed a group back to a node that held itself back left it unserved (the
    /// fault campaign: 1.6 s, seed 3).
    fn steady(&self, node: NodeId, i: usize) -> bool {
        if node != self.spec.local {
            return self.peer_advert(node).is_some_and(|a| !a.damped);
        }
        let half_life = self.flap_half_life();
        let penalty = self.flaps.penalty(self.now, half_life);
        let since = self.groups[i].eligible_since;
        let dt = self.spec.deadtime_ns;
        flaps::steady(
            penalty,
            since,
            self.now,
            dt.saturating_mul(FAILBACK_STABLE_DEADTIMES),
            dt.saturating_mul(FLAP_MAX_HOLD_DEADTIMES),
        )
    }

    /// Flap dampening holds us back: for a group we are eligible for, we are not steady (one
    /// flag for every group: the penalty is the node's, and the groups' eligibility comes and
    /// goes together but for a per-group standby, where the flag errs on the side of waiting).
    fn damped(&self) -> bool {
        let local = self.spec.local;
        (0..self.groups.len()).any(|i| self.local_eligible(i) && !self.steady(local, i))
    }

    /// Our own eligibility, as peers see it in our adverts: when it drops, one flap more.
    fn track_own_eligibility(&mut self) {
        let mut lost = false;
        for i in 0..self.groups.len() {
            let eligible = self.local_eligible(i);
            let g = &mut self.groups[i];
            match (g.eligible_since, eligible) {
                (Some(_), false) => {
                    g.eligible_since = None;
                    lost = true;
                }
                (None, true) => g.eligible_since = Some(self.now),
                _ => {}
            }
        }
        if lost {
            let half_life = self.flap_half_life();
            self.flaps.add(self.now, half_life);
        }
    }

    /// Could `node` take `group` from us right now (alive, eligible, not settling, not holding)?
    fn handoff_target(&self, node: NodeId, group: GroupId) -> bool {
        self.peer_eligible(node, group)
            && !self.peer_settling(node)
            && self.claim(node, group).is_some_and(|c| !c.held)
    }

    /// Rule 5: an alive candidate that is eligible for the group reaches more ping targets.
    fn conn_lost(&self, i: usize) -> Option<(NodeId, u8)> {
        if self.spec.ping_targets == 0 || self.ping_pending() {
            return None;
        }
        let g = &self.groups[i];
        let ours = self.our_ping();
        g.candidates
            .iter()
            .filter(|&&c| c != self.spec.local && self.peer_eligible(c, g.id))
            .filter_map(|&c| {
                let theirs = self.peer_advert(c)?.ping_reachable;
                (theirs > ours).then_some((c, theirs))
            })
            .max_by_key(|&(_, theirs)| theirs)
    }

    fn local_eligible(&self, i: usize) -> bool {
        let g = &self.groups[i];
        !self.shutting_down
            && !g.standby
            && !g.unhealthy
            && !self.hang_settling()
            && g.failed_until.is_none_or(|t| self.now >= t)
            && g.hold != HoldState::Stuck
            && g.candidates.contains(&self.spec.local)
            && self.conn_lost(i).is_none()
    }

    /// initdead is over for this group: its time ran out or every other candidate was heard.
    fn ready(&self, i: usize) -> bool {
        self.initdead_elapsed()
            || self.groups[i]
                .candidates
                .iter()
                .filter(|&&c| c != self.spec.local)
                .all(|c| self.peers.get(c).is_some_and(|p| p.ever_heard))
    }

    /// The first candidate in preference order that is alive, eligible and steady (flap
    /// dampening); if none is steady, the first that is alive and eligible.
    fn first_eligible(&self, i: usize) -> Option<NodeId> {
        let g = &self.groups[i];
        let eligible = |c: NodeId| {
            if c == self.spec.local {
                self.local_eligible(i)
            } else {
                self.peer_eligible(c, g.id)
            }
        };
        let mut found = g.candidates.iter().copied().filter(|&c| eligible(c));
        // hb_takeover beats dampening (the operator asked), not preference.
        // Else the holder releases on the request, the damped asker does
        // not take, the holder takes it again: a hand-over every few ms.
        let asked = |c: NodeId| {
            if c == self.spec.local {
                g.takeover
            } else {
                self.claim(c, g.id).is_some_and(|cl| cl.takeover)
            }
        };
        let first = found.clone().next();
        found.find(|&c| self.steady(c, i) || asked(c)).or(first)
    }

    /// Rule 6, per group: (visible candidates, whether that is a quorum).
    ///
    /// A candidate whose last advert (alive or dead) does not list G is not
    /// configured for G on its own side and does not count: a Heartbeat
    /// haresources line makes every ha.cf node a candidate, but in the seed's
    /// N+1 setup node0 never runs vip2, and counting it would leave the
    /// standby without quorum when both primaries are down.
    fn quorum(&self, i: usize) -> (usize, bool) {
        let g = &self.groups[i];
        let counts = |c: NodeId| {
            c == self.spec.local
                || (!g.gone.contains(&c)
                    && self
                        .peers
                        .get(&c)
                        .and_then(|p| p.advert.as_ref())
                        .is_none_or(|a| a.claim(g.id).is_some()))
        };
        let n = g.candidates.iter().filter(|&&c| counts(c)).count();
        let visible = 1 + g
            .candidates
            .iter()
            .filter(|&&c| c != self.spec.local && counts(c) && self.peer_alive(c))
            .count();
        let ok = match n {
            0 | 1 => true,
            2 => {
                visible >= 2
                    || !self.spec.ping_tie_break
                    || self.spec.ping_targets == 0
                    || self.our_ping() >= 1
            }
            _ => visible * 2 > n,
        };
        (visible, ok)
    }

    /// Peers that are not alive but may hold the group: their last advert said held, or they
    /// are candidates we never heard from. With fencing they must be fenced first.
    fn dead_suspects(&self, i: usize) -> Vec<NodeId> {
        let g = &self.groups[i];
        self.spec
            .nodes
            .iter()
            .copied()
            .filter(|&n| {
                let Some(p) = self.peers.get(&n) else {
                    return false;
                };
                if p.fenced || self.membership.is_alive(n) {
                    return false;
                }
                match &p.advert {
                    Some(a) => a.claim(g.id).is_some_and(|c| c.held),
                    None => !p.ever_heard && g.candidates.contains(&n),
                }
            })
            .collect()
    }

    /// A peer that is a candidate of the group, or claims it held, sent an advert within the last
    /// deadtime although membership says it is dead: wait, it may be alive.
    fn heard_while_dead(&self, i: usize) -> bool {
        let g = &self.groups[i];
        self.peers.iter().any(|(&n, p)| {
            !p.fenced
                && !self.membership.is_alive(n)
                && p.heard_while_dead_at
                    .is_some_and(|t| self.now < t.saturating_add(self.spec.deadtime_ns))
                && (g.candidates.contains(&n) || self.claim(n, g.id).is_some_and(|c| c.held))
        })
    }

    // ----- decisions -----

    fn evaluate(&mut self, out: &mut Vec<Action>) {
        if self.started_at.is_none() || self.shutting_down {
            return;
        }
        self.track_own_eligibility();
        self.judge_round(out);
        for i in 0..self.groups.len() {
            self.update_expected(i);
            self.note_connectivity(i, out);
            let (_, has_quorum) = self.quorum(i);
            if has_quorum {
                self.groups[i].warned_quorum = false;
            }
            match self.groups[i].hold {
                HoldState::Idle => self.try_acquire(i, out),
                HoldState::Held => {
                    if let Some(reason) = self.release_reason(i, out) {
                        self.release(i, reason, out);
                    }
                }
                HoldState::Stuck => {
                    if self.now >= self.groups[i].stuck_retry_at {
                        self.release(i, ReleaseReason::Retry, out);
                    }
                }
                HoldState::Acquiring | HoldState::Releasing => {}
            }
        }
    }

    /// The stall rule: keep or release once the peers have answered our round (`resume.rs`).
    fn judge_round(&mut self, out: &mut Vec<Action>) {
        let Some(w) = self.resume.waiting() else {
            return;
        };
        let local = self.spec.local;
        let ours: Vec<GroupId> = self.held_groups();
        let live = self
            .spec
            .nodes
            .iter()
            .copied()
            .filter(|&n| n != local && self.peer_alive(n))
            .map(|n| {
                let advert = self.peer_advert(n);
                PeerView {
                    node: n,
                    advert,
                    holds_ours: advert.is_some_and(|a| {
                        a.claims.iter().any(|c| c.held && ours.contains(&c.group))
                    }),
                }
            });
        let verdict = self.resume.verdict(local, live);
        let timeout = self
            .spec
            .deadtime_ns
            .saturating_mul(ROUND_TIMEOUT_DEADTIMES);
        let now = self.now;
        // At start (a lease a previous agent left lapsed) the peers not heard yet are not
        // known to be alive: no verdict before initdead is over.
        let verdict = match verdict {
            Verdict::Keep if !self.initdead_over() => Verdict::Pending,
            v => v,
        };
        let by = match verdict {
            Verdict::Pending if now < w.since.saturating_add(timeout) => return,
            Verdict::Pending => None,
            Verdict::Release { by } => Some(by),
            Verdict::Keep => {
                self.resume.end();
                out.push(Action::ResumeLease);
                out.push(Action::Warn(Warning::StallForgiven {
                    ns: w.stall_ns,
                    waited_ns: now.saturating_sub(w.since),
                }));
                return;
            }
        };
        self.resume.end();
        self.hang_until = Some(now.saturating_add(self.spec.deadtime_ns));
        out.push(Action::Warn(Warning::Hang { ns: w.stall_ns, by }));
    }

    fn note_connectivity(&mut self, i: usize, out: &mut Vec<Action>) {
        let lost = self.conn_lost(i);
        let ours = self.our_ping();
        let g = &mut self.groups[i];
        match (lost, g.conn_lost) {
            (Some((peer, theirs)), false) => {
                g.conn_lost = true;
                out.push(Action::Warn(Warning::LostConnectivity {
                    group: g.id,
                    ours,
                    peer,
                    theirs,
                }));
            }
            (None, true) => g.conn_lost = false,
            _ => {}
        }
    }

    fn release(&mut self, i: usize, reason: ReleaseReason, out: &mut Vec<Action>) {
        let g = &mut self.groups[i];
        g.hold = HoldState::Releasing;
        use ReleaseReason as R;
        if matches!(
            reason,
            R::Standby
                | R::Unhealthy
                | R::LostConnectivity
                | R::NotEligible
                | R::Failback { .. }
                | R::Requested { .. }
        ) {
            g.handed_off = true;
            g.offered_at = None;
        }
        out.push(Action::Release {
            group: g.id,
            reason,
        });
    }

    /// Rule 7 for a group we hold: returns the winner if another holder beats us. Warns once per
    /// (group, peer) episode when we win.
    fn split_brain(&mut self, i: usize, out: &mut Vec<Action>) -> Option<NodeId> {
        let local = self.spec.local;
        let our_prio = self.spec.priority(local).unwrap_or(usize::MAX);
        let gid = self.groups[i].id;
        let epoch = self.groups[i].epoch;
        let claimants: Vec<(NodeId, u32)> = self
            .spec
            .nodes
            .iter()
            .copied()
            .filter(|&n| n != local && self.peer_alive(n))
            .filter_map(|n| {
                let c = self.claim(n, gid)?;
                c.held.then_some((n, c.epoch))
            })
            .collect();
        let g = &mut self.groups[i];
        g.split_warned
            .retain(|n| claimants.iter().any(|&(c, _)| c == *n));
        let prio = |n: NodeId| self.spec.priority(n).unwrap_or(usize::MAX);
        if let Some(&(winner, _)) = claimants
            .iter()
            .find(|&&(n, e)| beats(e, prio(n), epoch, our_prio))
        {
            out.push(Action::Warn(Warning::SplitBrainResolved {
                group: gid,
                winner,
                loser: local,
            }));
            return Some(winner);
        }
        for &(n, _) in &claimants {
            if g.split_warned.insert(n) {
                out.push(Action::Warn(Warning::SplitBrainResolved {
                    group: gid,
                    winner: local,
                    loser: n,
                }));
            }
        }
        None
    }

    /// Should we give up a group we hold?
    fn release_reason(&mut self, i: usize, out: &mut Vec<Action>) -> Option<ReleaseReason> {
        if self.hang_settling() {
            return Some(ReleaseReason::Hang);
        }
        if let Some(winner) = self.split_brain(i, out) {
            return Some(ReleaseReason::SplitBrain { winner });
        }
        let local = self.spec.local;
        let g = &self.groups[i];
        if !self.local_eligible(i) {
            // Give it away only to someone who can take it now.
            let target = g
                .candidates
                .iter()
                .any(|&c| c != local && self.handoff_target(c, g.id));
            if !target {
                if g.unhealthy && !g.warned_unhealthy {
                    let group = g.id;
                    self.groups[i].warned_unhealthy = true;
                    out.push(Action::Warn(Warning::NoHealthyCandidate { group }));
                }
                return None;
            }
            return Some(if g.standby {
                ReleaseReason::Standby
            } else if g.unhealthy {
                ReleaseReason::Unhealthy
            } else if self.conn_lost(i).is_some() {
                ReleaseReason::LostConnectivity
            } else {
                ReleaseReason::NotEligible
            });
        }
        let ours = g.candidates.iter().position(|&c| c == local)?;
        for &c in &g.candidates[..ours] {
            if !self.handoff_target(c, g.id) {
                continue;
            }
            if self.spec.auto_failback && self.peer_stable(c) && self.steady(c, i) {
                return Some(ReleaseReason::Failback { to: c });
            }
            if self.claim(c, g.id).is_some_and(|cl| cl.takeover) {
                return Some(ReleaseReason::Requested { by: c });
            }
        }
        None
    }

    /// Should we take a group nobody holds?
    /// We offered the group in a hand-over less than two keepalives ago
    /// and a candidate that can take it is alive: it is theirs to take. Without this, a
    /// node that handed a group to a damped candidate and became eligible
    /// again a moment later took it back before the taker's advert
    /// arrived, at the same epoch (the lab: unhealthy holder recovering
    /// just after its hand-over, 1 run in 10).
    fn handing_off(&self, i: usize) -> bool {
        let g = &self.groups[i];
        let Some(t) = g.offered_at else {
            return false;
        };
        let window = self.spec.keepalive_ns.saturating_mul(2);
        !g.takeover
            && self.now < t.saturating_add(window)
            && g.candidates
                .iter()
                .any(|&c| c != self.spec.local && self.peer_alive(c) && self.peer_eligible(c, g.id))
    }

    fn try_acquire(&mut self, i: usize, out: &mut Vec<Action>) {
        let local = self.spec.local;
        if !self.local_eligible(i) || self.ping_pending() || !self.ready(i) || self.handing_off(i) {
            return;
        }
        let gid = self.groups[i].id;
        // Rule 3: only when no alive peer advertises it held (a stuck one may be fenced).
        let mut stuck = Vec::new();
        for &n in &self.spec.nodes {
            if n == local || !self.peer_alive(n) {
                continue;
            }
            if let Some(c) = self.claim(n, gid)
                && c.held
            {
                if !c.stuck {
                    return;
                }
                stuck.push(n);
            }
        }
        // An alive candidate whose claims we do not know yet may hold it.
        let unknown = self.groups[i]
            .candidates
            .iter()
            .any(|&c| c != local && self.peer_alive(c) && self.peer_advert(c).is_none());
        if unknown || self.heard_while_dead(i) {
            return;
        }
        // Rule 2: it must be our turn.
        if self.first_eligible(i) != Some(local) {
            return;
        }
        // Rule 6.
        let (visible, has_quorum) = self.quorum(i);
        if !has_quorum {
            let g = &mut self.groups[i];
            if !g.warned_quorum {
                g.warned_quorum = true;
                out.push(Action::Warn(Warning::NoQuorum {
                    group: gid,
                    visible,
                    candidates: g.candidates.len(),
                }));
            }
            return;
        }
        // Rule 3 / 9: fence first where needed.
        if !stuck.is_empty() && !self.spec.fencing {
            let g = &mut self.groups[i];
            if !g.warned_stuck_peer {
                g.warned_stuck_peer = true;
                out.push(Action::Warn(Warning::PeerStuck {
                    group: gid,
                    node: stuck[0],
                }));
            }
            return;
        }
        if self.spec.fencing {
            stuck.extend(self.dead_suspects(i));
            if let Some(&node) = stuck.first() {
                match self.fences.get(&node) {
                    Some(FenceState::InFlight) => {}
                    Some(FenceState::Failed { at })
                        if self.now < at.saturating_add(self.spec.deadtime_ns) => {}
                    _ => {
                        self.fences.insert(node, FenceState::InFlight);
                        out.push(Action::Fence { node, group: gid });
                    }
                }
                return;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let g = &mut self.groups[i];
        g.known_epoch = g.known_epoch.saturating_add(1);
        g.epoch = g.known_epoch;
        g.hold = HoldState::Acquiring;
        g.seq = seq;
        g.adopted = false;
        g.takeover = false;
        g.warned_stuck_peer = false;
        out.push(Action::Acquire {
            group: gid,
            epoch: g.epoch,
        });
    }

    /// Rule 11: one release at a time, most recently acquired first, then `Exit`.
    fn drive_shutdown(&mut self, out: &mut Vec<Action>) {
        if !self.shutting_down || self.exited {
            return;
        }
        if self
            .groups
            .iter()
            .any(|g| matches!(g.hold, HoldState::Acquiring | HoldState::Releasing))
        {
            return;
        }
        let next = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                g.hold == HoldState::Held || (g.hold == HoldState::Stuck && !g.shutdown_tried)
            })
            .max_by_key(|(_, g)| g.seq)
            .map(|(i, _)| i);
        match next {
            Some(i) => {
                self.groups[i].shutdown_tried = true;
                self.release(i, ReleaseReason::Shutdown, out);
            }
            None => {
                self.exited = true;
                out.push(Action::Exit);
            }
        }
    }
}
