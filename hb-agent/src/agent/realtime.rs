//! `realtime on` (Heartbeat's default, and ours) for the threads on a
//! failover's path, not only the heartbeat sender: the event loop (kernel
//! events, the cluster logic, carrier and ping watchers) and the resource
//! thread (netlink). On a busy host each hop between them otherwise waits
//! for a CFS time slice: 0.1-0.3 ms per hop measured in the lab on two
//! loaded cores, several hops per failover.
//!
//! They run SCHED_FIFO at [`PRIORITY`], below the sender's 50, so they can
//! never delay a heartbeat; with SCHED_RESET_ON_FORK, so resource scripts
//! they start run under the normal scheduler. Their work is short and
//! event-driven; the kernel's RT throttling keeps 5% of each second for
//! normal tasks should one ever spin.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

use crate::sender::clock;

/// Below the heartbeat sender's 50.
pub const PRIORITY: i32 = 40;

static ENABLED: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static APPLIED: Cell<bool> = const { Cell::new(false) };
}

/// Turns it on for the calling thread (the event loop) and, from its next
/// wake-up, for the resource thread (it calls [`apply_here`]).
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
    apply_here();
    info!(
        priority = PRIORITY,
        "event loop and resource threads run SCHED_FIFO"
    );
}

/// Makes the calling thread real-time once, if enabled. Cheap enough for
/// tokio's `on_thread_unpark`.
pub fn apply_here() {
    if !ENABLED.load(Ordering::Relaxed) || APPLIED.get() {
        return;
    }
    APPLIED.set(true);
    if let Err(e) = clock::make_realtime(PRIORITY)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        warn!(error = %e, "could not make the agent's threads real-time");
    }
}
