//! The one decision the kernel timer makes, kept apart so that the timer
//! callback, a BPF_PROG_TEST_RUN test path and unit tests all run the same
//! code (timers do not fire under BPF_PROG_TEST_RUN).
//!
//! The XDP path does not re-arm the timer on every heartbeat (an hrtimer
//! restart costs more than the rest of the packet's processing); it only
//! records `last_seen`. When the timer fires it asks this function whether
//! the peer really went silent for `deadtime`, or whether to sleep again for
//! the remainder. Detection still happens exactly `deadtime` after the last
//! heartbeat.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Silent for at least deadtime: the peer is dead.
    Expired,
    /// Heard since the timer was armed: fire again after this many ns.
    RearmIn(u64),
}

#[inline(always)]
pub fn check(now_ns: u64, last_seen_ns: u64, deadtime_ns: u64) -> Deadline {
    let silent = now_ns.saturating_sub(last_seen_ns);
    if silent >= deadtime_ns {
        Deadline::Expired
    } else {
        Deadline::RearmIn(deadtime_ns - silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_exactly_at_deadtime() {
        assert_eq!(check(1_000 + 5_000, 1_000, 5_000), Deadline::Expired);
        assert_eq!(check(1_000 + 4_999, 1_000, 5_000), Deadline::RearmIn(1));
    }

    #[test]
    fn rearms_for_the_remainder() {
        assert_eq!(check(10_000, 8_000, 5_000), Deadline::RearmIn(3_000));
    }

    #[test]
    fn clock_before_last_seen_does_not_underflow() {
        // last_seen written on another CPU a hair after `now` was read.
        assert_eq!(check(999, 1_000, 5_000), Deadline::RearmIn(5_000));
    }
}
