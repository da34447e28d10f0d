//! The static input of the state machine: who we are, who the others are, which groups we may
//! hold and the timings. Built by the shell from `hb.toml` or from a Heartbeat `ha.d` directory
//! (`node` lines = `nodes`, haresources lines naming this node = `groups`).

use std::fmt;

/// A node, as numbered by the configuration (the same number on every node).
pub type NodeId = u32;
/// A resource group (one haresources line), as numbered by the configuration.
pub type GroupId = u32;

/// Most groups one node may be configured for: a heartbeat carries at most this many claims.
pub const MAX_GROUPS: usize = 8;

/// Most answers to peers' stall rounds one heartbeat carries (`resume.rs`).
pub const MAX_ACKS: usize = 2;

/// A failed start keeps us ineligible for the group, and a failed stop is retried, after this
/// many deadtimes.
pub const FAILURE_HOLDOFF_DEADTIMES: u64 = 10;

/// auto_failback hands a group back only to a node that has been alive without interruption for
/// this many deadtimes (damps flapping links).
pub const FAILBACK_STABLE_DEADTIMES: u64 = 2;

/// Last man standing (corosync votequorum's `last_man_standing`): a candidate dead this many
/// deadtimes while the others had quorum is no longer expected. Two that vanish within the
/// window count as a partition: the survivor has no quorum and nothing is dropped.
pub const LAST_MAN_STANDING_DEADTIMES: u64 = 2;

/// Flap dampening (`flaps.rs`): every time a node stops being eligible (it lost its ping nodes,
/// went standby, stalled), its flap penalty grows by one (each node counts its own, and its
/// heartbeats say when the penalty holds it back: `Advert::damped`), and the penalty
/// halves every this many deadtimes, but at least every [`FLAP_HALF_LIFE_MIN_NS`]. Past two, the node must also have stayed eligible for
/// [`FAILBACK_STABLE_DEADTIMES`] x 2^(penalty - 2) deadtimes before it gets a group back or takes
/// one a steadier candidate could take.
pub const FLAP_HALF_LIFE_DEADTIMES: u64 = 30;

/// The shortest half-life of the flap penalty: a cable can flap no faster than the node notices
/// its ping node again (at most once a second with a long deadping), so at short deadtimes a
/// half-life of deadtimes alone would forget flaps between two of them (seen in the lab:
/// 150 ms deadtime, one loss a second, vip1 failed back after every few).
pub const FLAP_HALF_LIFE_MIN_NS: u64 = 60_000_000_000;

/// The longest failback wait dampening imposes, in deadtimes (6 s at the lab's 200 ms).
pub const FLAP_MAX_HOLD_DEADTIMES: u64 = 30;

/// Everything the state machine needs to know that never changes while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// This node.
    pub local: NodeId,
    /// All configured nodes including `local`, in priority order (first = highest). Every node's
    /// list must order the nodes it shares with another node's list the same way (priority
    /// breaks split-brain ties, and both sides must agree on the winner).
    pub nodes: Vec<NodeId>,
    /// Groups this node may hold (from its own configuration), at most [`MAX_GROUPS`].
    pub groups: Vec<GroupSpec>,
    /// Heartbeat interval.
    pub keepalive_ns: u64,
    /// A peer silent this long is dead (the kernel reports it; we use it for settling times).
    pub deadtime_ns: u64,
    /// A heartbeat later than this is worth a warning.
    pub warntime_ns: u64,
    /// After start, how long to wait for peers never heard before acting without them.
    pub initdead_ns: u64,
    /// Give a group back to a more preferred candidate when it is available again.
    pub auto_failback: bool,
    /// Number of ping nodes + ping groups configured (0 = none).
    pub ping_targets: usize,
    /// With two candidates, the other dead and ping targets configured: take the group only
    /// while reaching one of them (false: regardless, as Heartbeat did).
    pub ping_tie_break: bool,
    /// A fencing (STONITH) command is configured.
    pub fencing: bool,
    /// The service lease fences our addresses while we are silent: after a stall we keep our
    /// groups, fenced, until the peers say whether they declared us dead (`resume.rs`).
    /// Without it a stall releases everything at once.
    pub leased: bool,
}

/// One resource group this node may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub id: GroupId,
    /// Nodes that may hold the group, in preference order (first = preferred / primary).
    pub candidates: Vec<NodeId>,
}

/// What is wrong with a [`ClusterSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    LocalNotListed { local: NodeId },
    DuplicateNode { node: NodeId },
    TooManyGroups { count: usize },
    DuplicateGroup { group: GroupId },
    LocalNotCandidate { group: GroupId },
    UnknownCandidate { group: GroupId, node: NodeId },
    DuplicateCandidate { group: GroupId, node: NodeId },
    ZeroKeepalive,
    DeadtimeNotAboveKeepalive { keepalive_ns: u64, deadtime_ns: u64 },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalNotListed { local } => {
                write!(f, "this node ({local}) is not in the node list")
            }
            Self::DuplicateNode { node } => write!(f, "node {node} is listed twice"),
            Self::TooManyGroups { count } => write!(
                f,
                "{count} resource groups configured for this node, at most {MAX_GROUPS} are supported"
            ),
            Self::DuplicateGroup { group } => write!(f, "group {group} is configured twice"),
            Self::LocalNotCandidate { group } => {
                write!(f, "group {group}: this node is not one of its candidates")
            }
            Self::UnknownCandidate { group, node } => {
                write!(
                    f,
                    "group {group}: candidate {node} is not a configured node"
                )
            }
            Self::DuplicateCandidate { group, node } => {
                write!(f, "group {group}: candidate {node} is listed twice")
            }
            Self::ZeroKeepalive => write!(f, "keepalive must be greater than zero"),
            Self::DeadtimeNotAboveKeepalive {
                keepalive_ns,
                deadtime_ns,
            } => write!(
                f,
                "deadtime ({deadtime_ns} ns) must be longer than keepalive ({keepalive_ns} ns)"
            ),
        }
    }
}

impl std::error::Error for SpecError {}

impl ClusterSpec {
    /// Checks what the state machine relies on. The machine does not panic on a bad spec, but
    /// its decisions are only meaningful for a valid one.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !self.nodes.contains(&self.local) {
            return Err(SpecError::LocalNotListed { local: self.local });
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if self.nodes[..i].contains(n) {
                return Err(SpecError::DuplicateNode { node: *n });
            }
        }
        if self.groups.len() > MAX_GROUPS {
            return Err(SpecError::TooManyGroups {
                count: self.groups.len(),
            });
        }
        for (i, g) in self.groups.iter().enumerate() {
            if self.groups[..i].iter().any(|o| o.id == g.id) {
                return Err(SpecError::DuplicateGroup { group: g.id });
            }
            for (j, c) in g.candidates.iter().enumerate() {
                if !self.nodes.contains(c) {
                    return Err(SpecError::UnknownCandidate {
                        group: g.id,
                        node: *c,
                    });
                }
                if g.candidates[..j].contains(c) {
                    return Err(SpecError::DuplicateCandidate {
                        group: g.id,
                        node: *c,
                    });
                }
            }
            if !g.candidates.contains(&self.local) {
                return Err(SpecError::LocalNotCandidate { group: g.id });
            }
        }
        if self.keepalive_ns == 0 {
            return Err(SpecError::ZeroKeepalive);
        }
        if self.deadtime_ns <= self.keepalive_ns {
            return Err(SpecError::DeadtimeNotAboveKeepalive {
                keepalive_ns: self.keepalive_ns,
                deadtime_ns: self.deadtime_ns,
            });
        }
        Ok(())
    }

    /// Position of `node` in the priority order (0 = highest); `None` for an unknown node.
    pub fn priority(&self, node: NodeId) -> Option<usize> {
        self.nodes.iter().position(|&n| n == node)
    }

    /// Is `node` a configured peer (a configured node other than us)?
    pub fn is_peer(&self, node: NodeId) -> bool {
        node != self.local && self.nodes.contains(&node)
    }

    /// The group with this id, if we are configured for it.
    pub fn group(&self, id: GroupId) -> Option<&GroupSpec> {
        self.groups.iter().find(|g| g.id == id)
    }
}
