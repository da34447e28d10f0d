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
//!
//! Except after a stall of our own: the timer is always due exactly at
//! `last_seen + deadtime`, so when it fires much later than that, this
//! machine was not running (VM pause, a stuck CPU), and the peer's
//! heartbeats of that time may still sit unprocessed in the receive
//! queues. Silence we could not observe is no evidence: the timer looks
//! again once, a slack later, before declaring the peer dead.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Silent for at least deadtime: the peer is dead.
    Expired,
    /// Heard since the timer was armed: fire again after this many ns.
    RearmIn(u64),
    /// Silent, but the timer fired more than a slack late (our own stall):
    /// look again after this many ns, once.
    Grace(u64),
}

/// Shortest slack: hrtimer wake-ups in a VM are late by tens of
/// microseconds routinely.
pub const MIN_SLACK_NS: u64 = 100_000;

/// How late the timer may fire before the silence is not trusted: a
/// quarter of deadtime, at least [`MIN_SLACK_NS`].
#[inline(always)]
pub fn slack(deadtime_ns: u64) -> u64 {
    let q = deadtime_ns / 4;
    if q > MIN_SLACK_NS { q } else { MIN_SLACK_NS }
}

/// Shortest second look. When the whole machine paused, every peer's
/// sender paused with us and must be scheduled again before its next
/// heartbeat: on this 2-vCPU VM, with three agents waking at once, a
/// quarter of a 1.2 ms deadtime (0.3 ms) was not always enough (1 false
/// failover in 40 `bench failover` trials at 0.3 ms / 1.2 ms). It only
/// delays declaring a peer dead when our own timer fired late.
pub const MIN_GRACE_NS: u64 = 1_000_000;

/// How long the second look waits: the slack, at least [`MIN_GRACE_NS`].
#[inline(always)]
pub fn grace(deadtime_ns: u64) -> u64 {
    let s = slack(deadtime_ns);
    if s > MIN_GRACE_NS { s } else { MIN_GRACE_NS }
}

/// `graced`: the previous firing already granted a grace.
#[inline(always)]
pub fn check(now_ns: u64, last_seen_ns: u64, deadtime_ns: u64, graced: bool) -> Deadline {
    let silent = now_ns.saturating_sub(last_seen_ns);
    if silent < deadtime_ns {
        return Deadline::RearmIn(deadtime_ns - silent);
    }
    let late = silent - deadtime_ns;
    let slack = slack(deadtime_ns);
    if late > slack && !graced {
        Deadline::Grace(grace(deadtime_ns))
    } else {
        Deadline::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: u64 = 4_000_000;

    #[test]
    fn expires_exactly_at_deadtime() {
        assert_eq!(check(1_000 + D, 1_000, D, false), Deadline::Expired);
        assert_eq!(check(1_000 + D - 1, 1_000, D, false), Deadline::RearmIn(1));
    }

    #[test]
    fn rearms_for_the_remainder() {
        assert_eq!(check(10_000, 8_000, 5_000, false), Deadline::RearmIn(3_000));
    }

    #[test]
    fn clock_before_last_seen_does_not_underflow() {
        // last_seen written on another CPU a hair after `now` was read.
        assert_eq!(check(999, 1_000, 5_000, false), Deadline::RearmIn(5_000));
    }

    #[test]
    fn a_timer_late_by_more_than_the_slack_looks_again_once() {
        let late = 1_000 + D + slack(D) + 1;
        assert_eq!(check(late, 1_000, D, false), Deadline::Grace(grace(D)));
        // Still silent a grace later: dead.
        assert_eq!(check(late + grace(D), 1_000, D, true), Deadline::Expired);
        // Within the slack: no second look.
        assert_eq!(
            check(1_000 + D + slack(D), 1_000, D, false),
            Deadline::Expired
        );
    }

    #[test]
    fn slack_is_a_quarter_of_deadtime_with_a_floor() {
        assert_eq!(slack(4_000_000), 1_000_000);
        assert_eq!(slack(200_000), MIN_SLACK_NS);
    }

    #[test]
    fn the_second_look_waits_at_least_a_millisecond() {
        assert_eq!(grace(1_200_000), MIN_GRACE_NS);
        assert_eq!(grace(40_000_000), 10_000_000);
    }
}
