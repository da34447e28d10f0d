use std::time::Duration;

use super::*;

const MS: u64 = 1_000_000;

fn spec(rise: u32, fall: u32, hold_ms: u64, when: When, on_fail: OnFail) -> CheckSpec {
    CheckSpec {
        name: "t".into(),
        kind: CheckKind::Exec {
            command: "true".into(),
        },
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(10),
        rise,
        fall,
        hold_down: Duration::from_millis(hold_ms),
        when,
        on_fail,
        origin: None,
    }
}

fn probe(ok: bool, at_ms: u64) -> Probe {
    Probe {
        ok,
        at: at_ms * MS,
        latency_ns: 0,
        detail: String::new(),
    }
}

fn book(s: CheckSpec) -> Health {
    Health::new([(7, std::slice::from_ref(&s))])
}

#[test]
fn no_result_yet_is_not_healthy_and_the_first_result_decides() {
    let mut h = book(spec(3, 3, 1000, When::Always, OnFail::Failover));
    assert!(
        !h.healthy(7, 0, false),
        "pending: not eligible before the first result"
    );
    let t = h.record(7, 0, probe(true, 1)).unwrap();
    assert_eq!(
        t.state,
        CheckState::Up,
        "no rise count for the first result"
    );
    assert!(h.healthy(7, 1, false));
    assert!(h.healthy(8, 1, false), "a group without checks is healthy");

    let mut h = book(spec(2, 3, 1000, When::Always, OnFail::Failover));
    assert_eq!(
        h.record(7, 0, probe(false, 1)).unwrap().state,
        CheckState::Down
    );
    h.record(7, 0, probe(true, 2));
    let t = h.record(7, 0, probe(true, 3)).unwrap();
    assert_eq!(t.state, CheckState::Up, "never seen up: rise, no hold-down");
}

#[test]
fn fall_failures_in_a_row_bring_it_down_and_a_pass_resets_the_count() {
    let mut h = book(spec(1, 3, 0, When::Always, OnFail::Failover));
    h.record(7, 0, probe(true, 0));
    for (i, ok) in [false, false, true, false, false].into_iter().enumerate() {
        assert!(
            h.record(7, 0, probe(ok, 1 + i as u64)).is_none(),
            "probe {i}"
        );
    }
    let t = h.record(7, 0, probe(false, 10)).unwrap();
    assert_eq!(t.state, CheckState::Down);
    assert!(!h.healthy(7, 10, false));
    assert_eq!(h.groups[&7][0].1.transitions, 1);
}

#[test]
fn after_a_fall_it_comes_up_only_after_rise_passes_and_the_hold_down() {
    let mut h = book(spec(2, 1, 100, When::Always, OnFail::Failover));
    h.record(7, 0, probe(true, 0));
    h.record(7, 0, probe(false, 10));
    assert!(h.record(7, 0, probe(true, 20)).is_none());
    assert!(
        h.record(7, 0, probe(true, 30)).is_none(),
        "risen, but held down"
    );
    assert!(
        h.tick(119 * MS).is_empty(),
        "passing since 20 ms: held down until 120"
    );
    let t = h.tick(120 * MS);
    assert_eq!(t.len(), 1, "the hold-down ran out: {t:?}");
    assert_eq!(t[0].state, CheckState::Up);
    assert!(h.healthy(7, 120 * MS, false));
}

#[test]
fn a_flapping_check_stays_down_while_it_flaps() {
    // Fails for 1 ms every 50 ms: the hold-down restarts at every failure.
    let mut h = book(spec(1, 1, 100, When::Always, OnFail::Failover));
    h.record(7, 0, probe(true, 0));
    let mut ups = 0;
    for cycle in 0..40u64 {
        let t0 = 10 + cycle * 50;
        h.record(7, 0, probe(false, t0));
        for k in 1..50 {
            if h.record(7, 0, probe(true, t0 + k)).is_some() {
                ups += 1;
            }
            ups += h.tick((t0 + k) * MS).len();
        }
    }
    assert_eq!(ups, 0, "came up while flapping");
    assert_eq!(
        h.groups[&7][0].1.transitions, 1,
        "one fall, then down throughout"
    );
    // It stops flapping: up once it has passed for a hold-down.
    let last = 10 + 39 * 50;
    assert!(h.record(7, 0, probe(true, last + 100)).is_none());
    assert_eq!(
        h.record(7, 0, probe(true, last + 101)).unwrap().state,
        CheckState::Up
    );
    assert!(h.healthy(7, (last + 101) * MS, false));
}

#[test]
fn held_checks_run_only_where_the_group_is_held() {
    let mut h = book(spec(1, 1, 100, When::Held, OnFail::Failover));
    assert!(h.healthy(7, 0, false), "idle where not held");
    assert!(
        h.record(7, 0, probe(false, 1)).is_none(),
        "an idle check ignores results"
    );
    assert_eq!(
        h.set_held(7, true, 2 * MS)[0].state,
        CheckState::Up,
        "started: up"
    );
    assert_eq!(
        h.record(7, 0, probe(false, 3)).unwrap().state,
        CheckState::Down
    );
    assert!(!h.healthy(7, 3 * MS, false));
    h.set_held(7, false, 4 * MS);
    assert!(
        !h.healthy(7, 50 * MS, false),
        "the group left after a fall: held down"
    );
    assert!(
        h.healthy(7, 103 * MS, false),
        "hold-down over: may take it again"
    );
}

#[test]
fn restart_in_place_up_to_max_per_window_then_fail_over() {
    let restart = OnFail::Restart {
        max: 2,
        window: Duration::from_millis(1000),
    };
    let mut h = book(spec(1, 1, 100, When::Held, restart));
    h.set_held(7, true, 0);
    for round in 0..2u64 {
        let at = 10 + round * 100;
        let t = h.record(7, 0, probe(false, at)).unwrap();
        assert!(t.restart, "round {round}: restart");
        assert!(h.healthy(7, at * MS, false), "restarting: the group stays");
        let t = h.restart_done(7, 0, true, (at + 5) * MS).unwrap();
        assert_eq!(t.state, CheckState::Up);
    }
    let t = h.record(7, 0, probe(false, 300)).unwrap();
    assert!(!t.restart, "two restarts within the window: fail over");
    assert!(!h.healthy(7, 300 * MS, false));
    // A failed restart fails over as well.
    let mut h = book(spec(1, 1, 100, When::Held, restart));
    h.set_held(7, true, 0);
    assert!(h.record(7, 0, probe(false, 1)).unwrap().restart);
    assert!(h.restart_done(7, 0, false, 2 * MS).is_none());
    assert!(!h.healthy(7, 2 * MS, false));
}

#[test]
fn an_ignored_check_never_makes_the_group_unhealthy() {
    let mut h = book(spec(1, 1, 100, When::Always, OnFail::Ignore));
    assert!(h.healthy(7, 0, false));
    assert_eq!(
        h.record(7, 0, probe(false, 1)).unwrap().state,
        CheckState::Down
    );
    assert!(h.healthy(7, MS, false));
}

#[test]
fn pending_keeps_a_held_group_and_a_reload_keeps_unchanged_checks() {
    let s = spec(1, 1, 100, When::Always, OnFail::Failover);
    let mut h = book(s.clone());
    assert!(h.healthy(7, 0, true), "no result yet: a holder keeps it");
    assert!(!h.healthy(7, 0, false), "but nobody takes it");
    h.record(7, 0, probe(false, 1));
    assert!(!h.healthy(7, MS, true));
    let mut changed = s.clone();
    changed.fall = 2;
    let same = h.carry_over(book(s));
    assert!(
        !same.healthy(7, MS, true),
        "unchanged check: still down after the reload"
    );
    let other = h.carry_over(book(changed));
    assert!(
        other.healthy(7, MS, true),
        "changed check: starts afresh (pending)"
    );
}

#[test]
fn the_hold_down_counts_from_the_first_pass_not_from_the_fall() {
    // A process check reports its death once, then nothing until the
    // service is back: the hold-down starts when it is back.
    let mut h = book(spec(1, 1, 1000, When::Always, OnFail::Failover));
    h.record(7, 0, probe(true, 0));
    h.record(7, 0, probe(false, 10));
    assert!(
        h.record(7, 0, probe(true, 5000)).is_none(),
        "back after 5 s: held down"
    );
    assert!(h.tick(5999 * MS).is_empty());
    assert_eq!(h.tick(6000 * MS)[0].state, CheckState::Up);
}
