//! Kernel events, typed: one ring-buffer record decoded (the reading,
//! which waits in epoll, is the shell's: hb-agent's kernel/events.rs).

use hb_common::{events as ev, wire::ClusterState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelEventKind {
    FirstHeard,
    Dead,
    AliveAgain,
    /// Incarnation changed: the peer's agent restarted.
    Restarted {
        old_incarnation: u64,
    },
    /// Heartbeat later than warntime.
    Late {
        gap_ns: u64,
    },
    /// The cluster state in the peer's heartbeats changed.
    State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelEvent {
    pub kind: KernelEventKind,
    pub node_id: u32,
    pub ifindex: u32,
    /// CLOCK_MONOTONIC ns when the kernel raised it.
    pub ts_ns: u64,
    pub last_seen_ns: u64,
    pub incarnation: u64,
    pub seq: u64,
    pub state: ClusterState,
}

impl KernelEvent {
    /// Decodes one ring-buffer record; None for a record of unknown kind or size.
    pub fn decode(raw: &[u8]) -> Option<KernelEvent> {
        if raw.len() < ev::EVENT_LEN {
            return None;
        }
        // SAFETY: Event is repr(C) plain data; length checked; unaligned read.
        let e: ev::Event = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
        let kind = match e.kind {
            ev::EV_FIRST_HEARD => KernelEventKind::FirstHeard,
            ev::EV_DEAD => KernelEventKind::Dead,
            ev::EV_ALIVE_AGAIN => KernelEventKind::AliveAgain,
            ev::EV_RESTARTED => KernelEventKind::Restarted {
                old_incarnation: e.aux,
            },
            ev::EV_LATE => KernelEventKind::Late { gap_ns: e.aux },
            ev::EV_STATE => KernelEventKind::State,
            _ => return None,
        };
        Some(KernelEvent {
            kind,
            node_id: e.node_id,
            ifindex: e.ifindex,
            ts_ns: e.ts_ns,
            last_seen_ns: e.last_seen_ns,
            incarnation: e.incarnation,
            seq: e.seq,
            state: e.state,
        })
    }
}
