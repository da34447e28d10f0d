//! What the rules ask of a group's worker, and what a worker reports back
//! (hb-agent's agent/groups.rs runs them).

use crate::cluster::{Event, GroupId};
use crate::model::quick;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    /// Remove what is left of a group already handed over, its addresses
    /// withdrawn by [`GroupWorkers::hand_over`].
    CleanUp,
    /// Restart in place the group's script resource `resource` (by index),
    /// which its check `check` monitors (`on_fail = "restart"`): its stop,
    /// then its start.
    Restart {
        check: usize,
        resource: usize,
    },
}

/// What an operation reports to the main loop.
pub enum Done {
    /// For the cluster logic (started, released, failed).
    Cluster(Event),
    /// A stop is over, its resources removed (`ok`) or not. With
    /// `handed_over` the group was reported released earlier, when its
    /// addresses were withdrawn (see withdraw.rs); a failure then leaves
    /// them withdrawn.
    StopFinished {
        group: GroupId,
        handed_over: bool,
        ok: bool,
    },
    /// A restart in place (`Op::Restart`) is over.
    Restarted {
        group: GroupId,
        check: usize,
        ok: bool,
    },
    /// What the quick takeover step would put up for the group now
    /// (`resources::quick`), read after each of its operations.
    QuickPlan {
        group: GroupId,
        plan: Option<quick::Plan>,
    },
}
