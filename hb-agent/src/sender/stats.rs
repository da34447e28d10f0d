//! Send-time statistics: how late each scheduled heartbeat left, in a
//! fixed histogram (1 µs buckets up to 2 ms) the timing thread fills
//! without allocating or locking.

use std::sync::atomic::{AtomicU64, Ordering};

const BUCKETS: usize = 2000;

pub struct SendStats {
    hist: Box<[AtomicU64]>,
    overflow: AtomicU64,
    max_ns: AtomicU64,
    sent: AtomicU64,
    send_errors: AtomicU64,
}

impl Default for SendStats {
    fn default() -> Self {
        SendStats {
            hist: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            overflow: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct StatsSnapshot {
    pub scheduled: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub max_late_ns: u64,
    /// Lateness percentiles in µs (bucket upper bound).
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

impl SendStats {
    pub fn record_lateness(&self, ns: u64) {
        let us = (ns / 1000) as usize;
        match self.hist.get(us) {
            Some(b) => b.fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    pub fn record_send(&self, failed: usize) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.send_errors.fetch_add(failed as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let counts: Vec<u64> = self
            .hist
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let over = self.overflow.load(Ordering::Relaxed);
        let total: u64 = counts.iter().sum::<u64>() + over;
        let pct = |p: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let want = ((total as f64) * p).ceil() as u64;
            let mut acc = 0;
            for (us, c) in counts.iter().enumerate() {
                acc += c;
                if acc >= want {
                    return us as u64 + 1;
                }
            }
            BUCKETS as u64
        };
        StatsSnapshot {
            scheduled: total,
            sent: self.sent.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            max_late_ns: self.max_ns.load(Ordering::Relaxed),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_histogram() {
        let s = SendStats::default();
        for _ in 0..98 {
            s.record_lateness(3_500); // bucket 3 -> reported as <= 4 us
        }
        s.record_lateness(50_000);
        s.record_lateness(5_000_000); // overflow
        let snap = s.snapshot();
        assert_eq!(snap.scheduled, 100);
        assert_eq!(snap.p50_us, 4);
        assert_eq!(snap.p99_us, 51);
        assert_eq!(snap.max_late_ns, 5_000_000);
    }
}
