//! Health checks on the seed's simulator: `Event::Health` as the rules
//! deliver it once rise, fall and hold-down are applied (hb-core's health).

use super::super::{Event, ReleaseReason, Warning};
use super::sim::{DEAD_STEPS, Sim, VIP1, VIP2};

fn health(s: &mut Sim, n: u32, healthy: bool) {
    s.deliver(
        n,
        Event::Health {
            group: VIP1,
            healthy,
        },
    );
}

#[test]
fn a_failing_check_on_the_holder_hands_the_group_to_the_standby_and_back() {
    let mut s = Sim::seed();
    s.run(2 * DEAD_STEPS);
    let m = s.mark();
    health(&mut s, 0, false);
    s.run_until(4, "node1 took vip1", |s| s.holders(VIP1) == [1]);
    assert!(
        s.actions_since(m, 0)
            .contains(&super::super::Action::Release {
                group: VIP1,
                reason: ReleaseReason::Unhealthy
            })
    );
    assert_eq!(
        s.acquires_since(m),
        [(1, VIP1, 2)],
        "one takeover, no deadtime wait"
    );
    s.run(3 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [1], "stays away while node0 is unhealthy");

    let m = s.mark();
    health(&mut s, 0, true);
    s.run_until(4 * DEAD_STEPS, "failback to node0", |s| {
        s.holders(VIP1) == [0]
    });
    assert_eq!(s.acquires_since(m), [(0, VIP1, 3)]);
    assert_eq!(s.holders(VIP2), [2], "vip2 untouched");
}

#[test]
fn no_healthy_candidate_leaves_the_group_where_it_is() {
    let mut s = Sim::seed();
    s.run(2 * DEAD_STEPS);
    let m = s.mark();
    health(&mut s, 1, false);
    s.run(2);
    health(&mut s, 0, false);
    s.run(4 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [0], "kept: nobody healthy to give it to");
    assert_eq!(s.releases_since(m), [], "nothing moved");
    let warned: Vec<_> = s
        .warnings_since(m, 0)
        .into_iter()
        .filter(|w| matches!(w, Warning::NoHealthyCandidate { group: VIP1 }))
        .collect();
    assert_eq!(warned.len(), 1, "warned once");

    // The standby recovers: now it can take it.
    health(&mut s, 1, true);
    s.run_until(4, "node1 took vip1", |s| s.holders(VIP1) == [1]);
}

#[test]
fn an_unhealthy_standby_does_not_take_over_from_a_dead_primary() {
    let mut s = Sim::seed();
    s.run(2 * DEAD_STEPS);
    health(&mut s, 1, false);
    s.run(2);
    let m = s.mark();
    s.power_off(0);
    s.run(4 * DEAD_STEPS);
    assert_eq!(
        s.holders(VIP1),
        Vec::<u32>::new(),
        "as keepalived's FAULT state"
    );
    assert_eq!(s.acquires_since(m), []);
    health(&mut s, 1, true);
    s.run_until(2 * DEAD_STEPS, "node1 took vip1", |s| {
        s.holders(VIP1) == [1]
    });
}

#[test]
fn a_holder_that_recovers_just_after_handing_over_does_not_take_the_group_back() {
    // The lab's race (1 run in 10): node0 damped by earlier flaps, node1
    // holding vip1 unhealthy; node1 hands it to node0, recovers a moment
    // later and, node0 being damped, took it back at the same epoch as
    // node0 took it: two holders until the split-brain rule ended it.
    let mut s = Sim::seed();
    s.run(2 * DEAD_STEPS);
    health(&mut s, 0, false);
    s.run_until(4, "node1 took vip1", |s| s.holders(VIP1) == [1]);
    for _ in 0..3 {
        health(&mut s, 0, true);
        s.run(1);
        health(&mut s, 0, false);
        s.run(1);
    }
    health(&mut s, 0, true);
    s.run(2 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [1], "node0 damped: no failback yet");
    assert!(s.agent(0).advert().damped, "node0 says it is damped");
    let m = s.mark();
    health(&mut s, 1, false);
    health(&mut s, 1, true);
    s.run(4 * DEAD_STEPS);
    let dual = s
        .acquires_since(m)
        .iter()
        .filter(|(_, g, _)| *g == VIP1)
        .count();
    assert_eq!(s.holders(VIP1).len(), 1);
    assert!(
        dual <= 1,
        "vip1 taken {dual} times: {:?}",
        s.acquires_since(m)
    );
}
