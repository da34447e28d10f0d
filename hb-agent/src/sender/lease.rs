//! The service lease: renewed with every heartbeat to `now + deadtime` and
//! written to the kernel, which fences the service addresses past it (see
//! hb-ebpf `guard`). Peers declare this node dead no earlier than a deadtime
//! after its last heartbeat, so the lease lapses first.
//!
//! A lease found lapsed at renewal time means this node was silent long
//! enough for peers to take over. It then stays lapsed (the kernel keeps
//! fencing, announcements stay quiet) until the agent, having released what
//! it held, calls [`Lease::resume`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::warn;

use super::clock;

/// Where the lease is written (the kernel's `LEASE` map).
pub type LeaseSink = Box<dyn FnMut(u64) + Send>;

pub struct Lease {
    deadtime_ns: u64,
    sink: Mutex<LeaseSink>,
    /// End of the lease last written; 0 = none yet (a fresh lease follows).
    until: AtomicU64,
    /// Lapsed and held so until `resume`.
    hold: AtomicBool,
}

impl Lease {
    /// `lapsed`: the lease in force has already lapsed (a previous agent died
    /// holding it), so start on hold.
    pub fn new(sink: LeaseSink, deadtime_ns: u64, lapsed: bool) -> Lease {
        Lease {
            deadtime_ns,
            sink: Mutex::new(sink),
            until: AtomicU64::new(0),
            hold: AtomicBool::new(lapsed),
        }
    }

    /// Called by the sender with every heartbeat.
    pub fn renew(&self) {
        let mut sink = self.sink.lock().unwrap();
        if self.hold.load(Ordering::SeqCst) {
            return;
        }
        let now = clock::now_ns();
        let until = self.until.load(Ordering::SeqCst);
        if until != 0 && now > until {
            self.hold.store(true, Ordering::SeqCst);
            warn!(
                lapsed_ms = (now - until) as f64 / 1e6,
                "service lease lapsed: this node was silent for a deadtime; its service addresses stay fenced until it has released them"
            );
            return;
        }
        let next = now + self.deadtime_ns;
        sink(next);
        self.until.store(next, Ordering::SeqCst);
    }

    /// May this node speak for its service addresses now (announce them)?
    pub fn running(&self) -> bool {
        if self.hold.load(Ordering::SeqCst) {
            return false;
        }
        let until = self.until.load(Ordering::SeqCst);
        until == 0 || clock::now_ns() <= until
    }

    pub fn on_hold(&self) -> bool {
        self.hold.load(Ordering::SeqCst)
    }

    /// Renew again from the next heartbeat.
    pub fn resume(&self) {
        self.until.store(0, Ordering::SeqCst);
        self.hold.store(false, Ordering::SeqCst);
    }

    pub fn until(&self) -> u64 {
        self.until.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn lease(deadtime_ns: u64) -> (Lease, Arc<Mutex<Vec<u64>>>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let l = Lease::new(
            Box::new(move |u| w.lock().unwrap().push(u)),
            deadtime_ns,
            false,
        );
        (l, written)
    }

    #[test]
    fn renewal_writes_a_deadtime_ahead() {
        let (l, w) = lease(1_000_000_000);
        let t0 = clock::now_ns();
        l.renew();
        let u = w.lock().unwrap()[0];
        assert!(u >= t0 + 1_000_000_000 && u < clock::now_ns() + 1_000_000_000);
        assert_eq!(l.until(), u);
        assert!(l.running());
    }

    #[test]
    fn a_lapsed_lease_holds_until_resumed() {
        let (l, w) = lease(1_000); // 1 us: lapsed by the next renewal
        l.renew();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(!l.running(), "past its end");
        l.renew();
        assert!(l.on_hold());
        l.renew();
        assert_eq!(w.lock().unwrap().len(), 1, "no renewal while on hold");
        l.resume();
        assert!(l.running() && !l.on_hold());
        l.renew();
        assert_eq!(w.lock().unwrap().len(), 2);
    }

    #[test]
    fn started_lapsed_it_waits_for_resume() {
        let l = Lease::new(Box::new(|_| {}), 1_000_000, true);
        assert!(l.on_hold() && !l.running());
    }
}
