//! Kernel events, typed, read from the ring buffer without busy-polling.

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use hb_common::{events as ev, wire::ClusterState};
use tokio::io::unix::AsyncFd;

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

/// The ring buffer registered with tokio: `next` sleeps in epoll until the
/// kernel submits an event.
pub struct EventStream {
    fd: AsyncFd<RingBuf<MapData>>,
}

impl EventStream {
    pub fn new(rb: RingBuf<MapData>) -> Result<EventStream> {
        // SAFETY: the RingBuf owns its map fd and keeps it open for as long
        // as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register(rb)? };
        Ok(EventStream { fd })
    }

    /// Waits for events and returns all that are ready (at least one).
    pub async fn next_batch(&mut self) -> Result<Vec<KernelEvent>> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            let rb = guard.get_inner_mut();
            let mut out = Vec::new();
            while let Some(item) = rb.next() {
                if let Some(e) = KernelEvent::decode(&item) {
                    out.push(e);
                }
            }
            guard.clear_ready();
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Drains without waiting (tests, shutdown).
    pub fn try_drain(&mut self) -> Vec<KernelEvent> {
        let rb = self.fd.get_mut();
        let mut out = Vec::new();
        while let Some(item) = rb.next() {
            if let Some(e) = KernelEvent::decode(&item) {
                out.push(e);
            }
        }
        out
    }
}
