//! Flap dampening, as routing daemons damp flapping routes: every time a node stops being
//! eligible for a group it was eligible for (a pulled cable lost its ping nodes, a stall, a
//! standby), its penalty grows by one, and the penalty halves every half-life. A node whose
//! penalty is above [`FREE`] is *unsteady* until it has been eligible without interruption for
//! `base x 2^(penalty - FREE)`, at most `max`: it gets no group back by failback, and it leaves
//! an unheld group to a steady candidate if there is one. A loss or two (one fault often drops
//! eligibility twice: a healed partition shows the peer before our ping node answers again)
//! change nothing, so a first failover or failback is never slowed.

/// Penalty that costs nothing yet (routing daemons: suppress only past a threshold).
pub const FREE: f64 = 2.0;

/// A node's flap penalty: its value when last changed, and when that was (ns).
#[derive(Clone, Copy, Debug, Default)]
pub struct Flaps {
    value: f64,
    at: u64,
}

impl Flaps {
    pub fn penalty(&self, now: u64, half_life: u64) -> f64 {
        let dt = now.saturating_sub(self.at) as f64;
        self.value * (-dt / half_life.max(1) as f64).exp2()
    }

    /// One more flap at `now`.
    pub fn add(&mut self, now: u64, half_life: u64) {
        self.value = self.penalty(now, half_life) + 1.0;
        self.at = now;
    }
}

/// Is a node steady: penalty at most one, or eligible since `since` for long enough?
pub fn steady(penalty: f64, since: Option<u64>, now: u64, base: u64, max: u64) -> bool {
    if penalty <= FREE {
        return true;
    }
    // f64 -> u64 saturates; the cap bounds it anyway.
    let wait = ((base as f64) * (penalty - FREE).exp2()).min(max as f64) as u64;
    since.is_some_and(|s| now.saturating_sub(s) >= wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_halves_per_half_life_and_waits_grow_exponentially() {
        let mut f = Flaps::default();
        f.add(0, 100);
        assert_eq!(f.penalty(100, 100), 0.5);
        f.add(100, 100);
        assert_eq!(f.penalty(100, 100), 1.5);
        assert!(steady(2.0, None, 0, 10, 1000), "two losses: steady at once");
        assert!(!steady(4.0, Some(0), 39, 10, 1000), "penalty 4: 10 x 4");
        assert!(steady(4.0, Some(0), 40, 10, 1000));
        assert!(steady(50.0, Some(0), 1000, 10, 1000), "capped");
        assert!(!steady(3.0, None, 1000, 10, 1000), "not eligible now");
    }
}
