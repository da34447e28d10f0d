//! The takeover-duration histogram the rules keep per group (rendered as
//! Prometheus text by hb-agent's metrics/render.rs).

use std::time::Duration;

/// Default buckets of `hb_takeover_duration_seconds`, in seconds.
pub const TAKEOVER_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A Prometheus-style histogram: fixed upper bounds (`le`, inclusive), a
/// count per bucket, the sum and count of observations.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Per bucket, not cumulative; the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Default for Histogram {
    /// A histogram with [`TAKEOVER_BUCKETS`].
    fn default() -> Self {
        Histogram::new(&TAKEOVER_BUCKETS)
    }
}

impl Histogram {
    /// `bounds` are sorted and deduplicated; non-finite ones are dropped
    /// (`+Inf` is always implied).
    pub fn new(bounds: &[f64]) -> Self {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|x| x.is_finite()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let n = b.len() + 1;
        Histogram {
            bounds: b,
            counts: vec![0; n],
            sum: 0.0,
        }
    }

    /// Records one observation in seconds; NaN is ignored.
    pub fn observe(&mut self, secs: f64) {
        if secs.is_nan() {
            return;
        }
        let i = self.bounds.partition_point(|&b| b < secs);
        self.counts[i] += 1;
        self.sum += secs;
    }

    pub fn observe_duration(&mut self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut acc = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.counts)
            .map(move |(b, c)| {
                acc += c;
                (b, acc)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let mut h = Histogram::default();
        assert_eq!(h.cumulative().count(), TAKEOVER_BUCKETS.len() + 1);
        h.observe(0.0005); // first bucket, inclusive
        h.observe(0.0006);
        h.observe(100.0);
        h.observe(f64::NAN);
        h.observe_duration(Duration::from_millis(3));
        assert_eq!(h.count(), 4);
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c[0], (0.0005, 1));
        assert_eq!(c[1], (0.001, 2));
        assert_eq!(c[3], (0.005, 3));
        assert_eq!(c[13], (10.0, 3));
        assert_eq!(c[14], (f64::INFINITY, 4));
        assert!((h.sum() - 100.0041).abs() < 1e-9);

        let h = Histogram::new(&[1.0, f64::NAN, 0.5, 1.0, f64::INFINITY]);
        let b: Vec<_> = h.cumulative().map(|(b, _)| b).collect();
        assert_eq!(b, [0.5, 1.0, f64::INFINITY]);
    }
}
