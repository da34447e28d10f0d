//! What goes in ([`Event`]), what comes out ([`Action`], [`Warning`]) and what our heartbeats
//! carry ([`Advert`]).

use std::fmt;

use super::spec::{GroupId, NodeId};

/// One group as a node sees it, carried in every heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupClaim {
    pub group: GroupId,
    /// The node's hold epoch while it holds the group (or is starting / stopping it), otherwise
    /// the highest epoch it has seen for the group.
    pub epoch: u32,
    /// The node's resources for the group are (or may be) in place: set from the moment it
    /// starts acquiring until its release has completed.
    pub held: bool,
    /// The node would take the group if it were its turn (configured, not standby, not cut off
    /// from the ping nodes, no recent failed start, not shutting down, not settling after a
    /// hang, not stuck).
    pub eligible: bool,
    /// Added to the brief: the node's stop of this group failed, its resources are in an unknown
    /// state. With fencing configured the next candidate fences the node and takes the group.
    pub stuck: bool,
    /// Added to the brief: the node asks the current holder to hand the group over (`hb_takeover`).
    /// Honoured only by a holder less preferred than the asking node.
    pub takeover: bool,
    /// The node's resources for the group are all started (held, not starting or stopping):
    /// what a node handing the group over waits for before it stops.
    pub serving: bool,
}

/// A node's answer to a peer's stall round (`resume.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ack {
    pub node: NodeId,
    pub round: u16,
    /// We declared `node` dead since our previous answer to it.
    pub declared_dead: bool,
}

/// The wire-visible state of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Advert {
    /// One claim per configured group, at most `MAX_GROUPS`.
    pub claims: Vec<GroupClaim>,
    /// How many ping targets the node reaches now.
    pub ping_reachable: u8,
    /// The node is in standby for all its groups.
    pub standby: bool,
    /// The node is in initdead (or has not measured its ping targets yet), or has just resumed
    /// from a hang. Peers do not fail groups back to a settling node.
    pub settling: bool,
    /// Flap dampening holds the node back (its own count, `flaps.rs`): peers do not fail a
    /// group back to it, and leave an unheld group to a steady candidate.
    pub damped: bool,
    /// Non-zero: the node resumed from a stall and waits, fenced, for its peers' answers to
    /// this round before it keeps or releases its groups.
    pub round: u16,
    /// Its answers to peers' rounds.
    pub acks: Vec<Ack>,
}

impl Advert {
    /// The claim for `group`, if the node advertises one.
    pub fn claim(&self, group: GroupId) -> Option<&GroupClaim> {
        self.claims.iter().find(|c| c.group == group)
    }
}

/// Operator commands (`hb-agent standby [GROUP]`, `hb-agent takeover [GROUP]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminCmd {
    /// `hb_standby`: give the group (all groups for `None`) away and stay ineligible until
    /// `Takeover`.
    Standby(Option<GroupId>),
    /// `hb_takeover`: clear standby (and a start failure hold-off) and take the group(s) back,
    /// from a less preferred holder through its release.
    Takeover(Option<GroupId>),
}

/// Inputs of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The agent started: initdead begins.
    Start,
    /// Node-level liveness, for a shell that aggregates links itself. `PeerUp` counts as a
    /// pseudo link; `PeerDead` declares every link of the node dead.
    PeerUp {
        node: NodeId,
    },
    PeerDead {
        node: NodeId,
    },
    /// Raw per-link liveness from the kernel (the peer was heard / was silent for deadtime on
    /// this link). Aggregated by `Membership`.
    LinkUp {
        node: NodeId,
        link: u32,
    },
    LinkDead {
        node: NodeId,
        link: u32,
    },
    /// A heartbeat arrived `gap_ns` after the previous one from the same peer on this link.
    Late {
        node: NodeId,
        link: u32,
        gap_ns: u64,
    },
    /// The latest advert a peer's heartbeat carried. The shell delivers it whenever it differs
    /// from the last one delivered for that peer, and again (even if equal) after
    /// `PeerRestarted`.
    PeerAdvert {
        node: NodeId,
        advert: Advert,
    },
    /// The peer's incarnation changed (its agent restarted): its old claims are void. Deliver it
    /// before the new incarnation's first `PeerAdvert`.
    PeerRestarted {
        node: NodeId,
    },
    /// How many of our ping targets we reach now.
    PingReachable {
        count: u8,
    },
    /// The group's health checks pass here (`healthy`) or not (hb-core's
    /// `health`, with rise, fall and hold-down already applied): an
    /// unhealthy node is not eligible for the group and hands it to a
    /// healthy candidate (kept here if there is none).
    Health {
        group: GroupId,
        healthy: bool,
    },
    /// Periodic (e.g. every keepalive): lets time-based rules (initdead, settling, retries,
    /// hold-offs) fire.
    Tick,
    Admin(AdminCmd),
    /// Results of [`Action::Acquire`] / [`Action::Release`].
    Acquired {
        group: GroupId,
    },
    AcquireFailed {
        group: GroupId,
    },
    Released {
        group: GroupId,
    },
    ReleaseFailed {
        group: GroupId,
    },
    /// Result of [`Action::Fence`].
    Fenced {
        node: NodeId,
        ok: bool,
    },
    /// Our own loop / heartbeat sender did not run for this long (SIGSTOP, VM pause). The shell
    /// delivers it before any event that queued up meanwhile.
    Stalled {
        ns: u64,
    },
    /// SIGTERM: release everything in order, then `Exit`.
    Shutdown,
    /// At start: the group's resources are already in place (the agent restarted while holding
    /// it). Adopt them without an outage.
    AdoptHeld {
        group: GroupId,
    },
}

/// Why a group is released (for logs and status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    /// We resumed from a stall longer than a peer's patience.
    Hang,
    /// Another node holds it too and wins (higher epoch, or same epoch and higher priority).
    SplitBrain { winner: NodeId },
    /// Operator standby.
    Standby,
    /// A candidate reaching more ping targets can take it.
    LostConnectivity,
    /// Its health checks fail here and a healthy candidate can take it.
    Unhealthy,
    /// We are not eligible for another reason (hold-off) and someone else can take it.
    NotEligible,
    /// auto_failback: a more preferred candidate is back.
    Failback { to: NodeId },
    /// A more preferred candidate asked for it (`hb_takeover`).
    Requested { by: NodeId },
    /// Clean-up after a failed start.
    StartFailed,
    /// Orderly shutdown.
    Shutdown,
    /// Retry of a stop that failed earlier.
    Retry,
}

/// Outputs of the state machine, for the shell to execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the group's resources; answer with `Acquired` or `AcquireFailed`.
    Acquire {
        group: GroupId,
        epoch: u32,
    },
    /// Stop the group's resources; answer with `Released` or `ReleaseFailed`.
    Release {
        group: GroupId,
        reason: ReleaseReason,
    },
    /// Fence (power off) `node` so that we can take `group`; answer with `Fenced`.
    Fence {
        node: NodeId,
        group: GroupId,
    },
    /// Every live peer answered our stall round without having declared us dead: the lapsed
    /// service lease may run again, and we keep our groups.
    ResumeLease,
    /// `Cluster::advert` changed: send a heartbeat now. Always
    /// the first action of a batch.
    SendAdvert,
    Warn(Warning),
    /// Shutdown is complete (always the last action of its batch, after the final
    /// `SendAdvert`); the state machine ignores every later event.
    Exit,
}

/// Things an operator should hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// Once per peer per episode of late heartbeats.
    LateHeartbeat {
        node: NodeId,
        link: u32,
        gap_ns: u64,
    },
    FencingFailed {
        node: NodeId,
    },
    AcquireFailed {
        group: GroupId,
    },
    ReleaseFailed {
        group: GroupId,
    },
    /// A group handed over with its addresses withdrawn could not be fully
    /// removed afterwards: the addresses stay withdrawn (never answered).
    CleanupFailed {
        group: GroupId,
    },
    /// A peer's stop failed and no fencing is configured: the group stays with it.
    PeerStuck {
        group: GroupId,
        node: NodeId,
    },
    /// Two nodes held the group; `winner` keeps it, `loser` releases.
    SplitBrainResolved {
        group: GroupId,
        winner: NodeId,
        loser: NodeId,
    },
    /// A candidate for the group reaches more ping targets than we do.
    LostConnectivity {
        group: GroupId,
        ours: u8,
        peer: NodeId,
        theirs: u8,
    },
    /// The group's checks fail here, and no other candidate can take it:
    /// it stays (serving what it can) until one can.
    NoHealthyCandidate {
        group: GroupId,
    },
    /// We should take the group over but do not see enough of its candidates.
    NoQuorum {
        group: GroupId,
        visible: usize,
        candidates: usize,
    },
    /// We were stalled longer than a peer waits for us: every group is released (`by`: the
    /// peer that declared us dead or holds one of our groups; None: no lease to wait behind,
    /// or no answer in time).
    Hang {
        ns: u64,
        by: Option<NodeId>,
    },
    /// We were stalled longer than deadtime: fenced by our lapsed lease, we wait for the peers'
    /// word (`waiting`), or, holding nothing, settle for a deadtime.
    Stalled {
        ns: u64,
        waiting: bool,
    },
    /// Every live peer heard us after the stall and had not declared us dead: we keep our
    /// groups and answer for them again.
    StallForgiven {
        ns: u64,
        waited_ns: u64,
    },
    /// An event or command named a group we are not configured for.
    UnknownGroup {
        group: GroupId,
    },
    /// A completion arrived for an operation that was not outstanding.
    UnexpectedCompletion {
        group: GroupId,
        event: &'static str,
    },
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Warning {
    /// A stable name for the log's `step` field (`warning.hang`, ...).
    pub fn step(&self) -> &'static str {
        match self {
            Self::LateHeartbeat { .. } => "warning.late_heartbeat",
            Self::FencingFailed { .. } => "warning.fencing_failed",
            Self::AcquireFailed { .. } => "warning.start_failed",
            Self::ReleaseFailed { .. } => "warning.stop_failed",
            Self::CleanupFailed { .. } => "warning.cleanup_failed",
            Self::PeerStuck { .. } => "warning.peer_stuck",
            Self::SplitBrainResolved { .. } => "warning.split_brain",
            Self::LostConnectivity { .. } => "warning.lost_connectivity",
            Self::NoHealthyCandidate { .. } => "warning.no_healthy_candidate",
            Self::NoQuorum { .. } => "warning.no_quorum",
            Self::Hang { .. } => "warning.hang",
            Self::Stalled { .. } => "warning.stalled",
            Self::StallForgiven { .. } => "warning.stall_forgiven",
            Self::UnknownGroup { .. } => "warning.unknown_group",
            Self::UnexpectedCompletion { .. } => "warning.unexpected_completion",
        }
    }

    /// The warning with node and group ids rendered by `node` and `group`
    /// (names, for people; the `Display` form prints the ids).
    pub fn render(
        &self,
        node: &dyn Fn(NodeId) -> String,
        group: &dyn Fn(GroupId) -> String,
    ) -> String {
        let mut out = String::new();
        let _ = self.write(&mut out, node, group);
        out
    }

    fn write(
        &self,
        f: &mut dyn fmt::Write,
        nf: &dyn Fn(NodeId) -> String,
        gf: &dyn Fn(GroupId) -> String,
    ) -> fmt::Result {
        match self {
            Self::LateHeartbeat { node, link, gap_ns } => {
                let node = nf(*node);
                write!(
                    f,
                    "late heartbeat from node {node} on link {link}: {:.1} ms since the previous one",
                    ms(*gap_ns)
                )
            }
            Self::FencingFailed { node } => {
                let node = nf(*node);
                write!(
                    f,
                    "fencing node {node} failed; takeover blocked, will retry"
                )
            }
            Self::AcquireFailed { group } => {
                let group = gf(*group);
                write!(
                    f,
                    "starting group {group} failed; cleaning up and leaving it to the next candidate"
                )
            }
            Self::ReleaseFailed { group } => {
                let group = gf(*group);
                write!(
                    f,
                    "stopping group {group} failed; it stays advertised as held (stuck) until a stop succeeds or we are fenced"
                )
            }
            Self::CleanupFailed { group } => {
                let group = gf(*group);
                write!(
                    f,
                    "removing group {group}'s resources after its hand-over failed; its addresses stay withdrawn in the kernel (not answered) until it starts here again"
                )
            }
            Self::PeerStuck { group, node } => {
                let group = gf(*group);
                let node = nf(*node);
                write!(
                    f,
                    "node {node} failed to stop group {group} and no fencing is configured: the group stays with it"
                )
            }
            Self::SplitBrainResolved {
                group,
                winner,
                loser,
            } => {
                let group = gf(*group);
                let winner = nf(*winner);
                let loser = nf(*loser);
                write!(
                    f,
                    "split brain on group {group}: held by nodes {winner} and {loser}; {winner} keeps it, {loser} releases"
                )
            }
            Self::LostConnectivity {
                group,
                ours,
                peer,
                theirs,
            } => {
                let group = gf(*group);
                let peer = nf(*peer);
                write!(
                    f,
                    "lost connectivity: we reach {ours} ping target(s), node {peer} reaches {theirs}; giving up group {group}"
                )
            }
            Self::NoHealthyCandidate { group } => {
                let group = gf(*group);
                write!(
                    f,
                    "group {group}'s checks fail here and no other candidate can take it: it stays here"
                )
            }
            Self::NoQuorum {
                group,
                visible,
                candidates,
            } => {
                let group = gf(*group);
                write!(
                    f,
                    "no quorum to take group {group}: {visible} of {candidates} candidates visible"
                )
            }
            Self::Hang { ns, by } => {
                write!(
                    f,
                    "we were stalled for {:.1} ms (longer than peers wait): releasing every group",
                    ms(*ns)
                )?;
                match by {
                    Some(n) => write!(f, " ({} declared us dead or holds one of them)", nf(*n)),
                    None => Ok(()),
                }
            }
            Self::Stalled { ns, waiting: true } => write!(
                f,
                "we were stalled for {:.1} ms (longer than deadtime): our addresses stay fenced \
                 until every live peer says whether it declared us dead",
                ms(*ns)
            ),
            Self::Stalled { ns, waiting: false } => write!(
                f,
                "we were stalled for {:.1} ms (longer than deadtime), holding nothing: settling \
                 for a deadtime",
                ms(*ns)
            ),
            Self::StallForgiven { ns, waited_ns } => write!(
                f,
                "stalled for {:.1} ms, but every live peer heard us after it and had not declared \
                 us dead (answered in {:.2} ms): keeping our groups",
                ms(*ns),
                ms(*waited_ns)
            ),
            Self::UnknownGroup { group } => {
                let group = gf(*group);
                write!(f, "group {group} is not configured here")
            }
            Self::UnexpectedCompletion { group, event } => {
                let group = gf(*group);
                write!(
                    f,
                    "{event} for group {group}, which had no such operation outstanding"
                )
            }
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &|n| n.to_string(), &|g| g.to_string())
    }
}
