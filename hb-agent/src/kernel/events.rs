//! Kernel events read from the ring buffer without busy-polling (their
//! type and decoding are pure: hb-core's rules/kernel_event.rs).

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

pub use hb_core::rules::{KernelEvent, KernelEventKind};

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
