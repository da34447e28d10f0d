//! Ring-buffer events from the XDP program (and its timer) to the agent.

use crate::wire::ClusterState;

pub const EV_FIRST_HEARD: u32 = 1;
pub const EV_DEAD: u32 = 2;
pub const EV_ALIVE_AGAIN: u32 = 3;
/// The peer's incarnation changed: its agent restarted.
pub const EV_RESTARTED: u32 = 4;
/// A heartbeat came more than warntime after the previous one; `aux` = gap ns.
pub const EV_LATE: u32 = 5;
/// The cluster state carried in heartbeats changed.
pub const EV_STATE: u32 = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: u32,
    pub node_id: u32,
    pub ifindex: u32,
    pub _pad: u32,
    /// CLOCK_MONOTONIC ns when the kernel emitted the event.
    pub ts_ns: u64,
    pub last_seen_ns: u64,
    pub incarnation: u64,
    pub seq: u64,
    /// Kind-specific: gap for EV_LATE, old incarnation for EV_RESTARTED,
    /// deadtime for EV_DEAD.
    pub aux: u64,
    pub state: ClusterState,
}
pub const EVENT_LEN: usize = 56 + crate::wire::STATE_LEN;
const _: () = assert!(core::mem::size_of::<Event>() == EVENT_LEN);
