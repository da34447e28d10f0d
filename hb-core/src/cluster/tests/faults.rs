//! Fencing, failed operations, flapping links and quorum, on the simulator.

use super::super::{Action, ClusterSpec, Event, ReleaseReason, Warning};
use super::sim::{DEAD_STEPS, Sim, VIP1, VIP2, spec};

/// Two nodes [0, 1] sharing vip1 (node0 preferred), one ping node, `links` heartbeat links.
fn two_node(links: u32, f: impl Fn(&mut ClusterSpec)) -> Sim {
    let mut specs = vec![
        spec(0, &[0, 1], &[(VIP1, &[0, 1])]),
        spec(1, &[0, 1], &[(VIP1, &[0, 1])]),
    ];
    for s in &mut specs {
        s.ping_targets = 1;
        f(s);
    }
    let mut s = Sim::new(specs, links);
    s.boot_all();
    s.run(3);
    assert_eq!(s.holders(VIP1), [0]);
    s
}

/// Three nodes that all know each other, one group with all three as candidates.
fn three_node() -> Sim {
    let specs = (0..3)
        .map(|n| spec(n, &[0, 1, 2], &[(VIP1, &[0, 1, 2])]))
        .collect();
    let mut s = Sim::new(specs, 1);
    s.boot_all();
    s.run(3);
    assert_eq!(s.holders(VIP1), [0]);
    s
}

#[test]
fn fencing_makes_a_hang_safe() {
    // The seed's test 4 with STONITH: the standby powers the hung primary off first, so there
    // is never a second holder.
    let mut s = two_node(1, |s| s.fencing = true);
    let m = s.mark();
    s.hang(0);
    s.run_until(DEAD_STEPS + 4, "node1 fenced node0 and took over", |s| {
        !s.nodes[0].powered && s.holders(VIP1) == [1]
    });
    let a1 = s.actions_since(m, 1);
    let fence = a1.iter().position(|a| {
        *a == Action::Fence {
            node: 0,
            group: VIP1,
        }
    });
    let acquire = a1.iter().position(|a| matches!(a, Action::Acquire { .. }));
    assert!(fence.unwrap() < acquire.unwrap());
    s.boot(0);
    s.run_until(3 * DEAD_STEPS, "failed back", |s| s.holders(VIP1) == [0]);
}

#[test]
fn failed_fencing_blocks_the_takeover() {
    let mut s = two_node(1, |s| s.fencing = true);
    s.fence_ok = false;
    let m = s.mark();
    s.hang(0);
    s.run(5 * DEAD_STEPS);
    assert_eq!(
        s.holders(VIP1),
        [0],
        "the hung node keeps it, nobody else starts it"
    );
    let failures = s
        .warnings_since(m, 1)
        .iter()
        .filter(|w| **w == Warning::FencingFailed { node: 0 })
        .count();
    assert!(
        (3..=5).contains(&failures),
        "retried once per deadtime: {failures}"
    );
    s.fence_ok = true;
    s.run_until(DEAD_STEPS + 2, "fenced and taken over", |s| {
        s.holders(VIP1) == [1]
    });
}

#[test]
fn failed_start_moves_the_group_to_the_next_candidate() {
    let mut s = three_node();
    s.nodes[1].fail_acquire.insert(VIP1);
    let m = s.mark();
    s.power_off(0);
    s.run_until(DEAD_STEPS + 6, "node2 took vip1", |s| {
        s.holders(VIP1) == [2]
    });
    assert!(
        s.warnings_since(m, 1)
            .contains(&Warning::AcquireFailed { group: VIP1 })
    );
    assert_eq!(s.acquires_since(m), [(1, VIP1, 2), (2, VIP1, 3)]);
    s.run(5 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [2], "node1 holds off");
}

#[test]
fn failed_stop_without_fencing_keeps_the_group_where_it_is() {
    let mut s = Sim::seed();
    s.power_off(0);
    s.run(DEAD_STEPS + 3);
    assert_eq!(s.holders(VIP1), [1]);
    s.nodes[1].fail_release.insert(VIP1);
    let m = s.mark();
    s.boot(0);
    s.run(3 * DEAD_STEPS);
    assert_eq!(
        s.holders(VIP1),
        [1],
        "stuck on node1, node0 does not start it"
    );
    assert!(
        s.warnings_since(m, 1)
            .contains(&Warning::ReleaseFailed { group: VIP1 })
    );
    assert!(s.warnings_since(m, 0).contains(&Warning::PeerStuck {
        group: VIP1,
        node: 1
    }));
    // The stop works again: the retry (10 deadtimes after the failure) lets node0 have it.
    s.nodes[1].fail_release.clear();
    s.run_until(12 * DEAD_STEPS, "vip1 back on node0", |s| {
        s.holders(VIP1) == [0]
    });
    assert!(s.actions_since(m, 1).contains(&Action::Release {
        group: VIP1,
        reason: ReleaseReason::Retry
    }));
}

#[test]
fn failed_stop_with_fencing_is_resolved_by_fencing() {
    let mut s = Sim::seed_with(|s| s.fencing = true);
    s.power_off(0);
    s.run_until(DEAD_STEPS + 4, "node1 took vip1", |s| {
        s.holders(VIP1) == [1]
    });
    s.nodes[1].fail_release.insert(VIP1);
    let m = s.mark();
    s.boot(0);
    s.run_until(3 * DEAD_STEPS, "node0 fenced node1 and took vip1", |s| {
        !s.nodes[1].powered && s.holders(VIP1) == [0]
    });
    assert!(s.actions_since(m, 0).contains(&Action::Fence {
        node: 1,
        group: VIP1
    }));
    assert_eq!(s.holders(VIP2), [2]);
}

#[test]
fn flapping_second_link_never_causes_failover() {
    let mut s = two_node(2, |_| {});
    let m = s.mark();
    for _ in 0..5 {
        s.cut(0, 1, 1);
        s.run(DEAD_STEPS + 2);
        s.heal(0, 1, 1);
        s.run(2);
    }
    assert!(s.acquires_since(m).is_empty() && s.releases_since(m).is_empty());
    let link_dead = s
        .events
        .iter()
        .filter(|(_, n, e)| *n == 1 && *e == Event::LinkDead { node: 0, link: 1 })
        .count();
    assert_eq!(
        link_dead, 5,
        "the kernel did report the link dead each time"
    );
    assert_eq!(s.holders(VIP1), [0]);
}

#[test]
fn short_flaps_on_the_only_link_are_invisible() {
    let mut s = two_node(1, |_| {});
    let m = s.mark();
    for _ in 0..10 {
        s.cut_all(0, 1);
        s.run(DEAD_STEPS - 1);
        s.heal_all(0, 1);
        s.run(1);
    }
    assert!(
        !s.events[..]
            .iter()
            .any(|(_, _, e)| matches!(e, Event::LinkDead { .. }))
    );
    assert!(s.acquires_since(m).is_empty() && s.releases_since(m).is_empty());
}

#[test]
fn long_flaps_on_the_only_link_converge_once_it_is_stable() {
    // Each outage longer than deadtime is a real partition (a takeover on each side that lacks
    // the group); short reconnections in between never fail back. Once the link is stable the
    // group ends on the preferred node with a single holder.
    let mut s = two_node(1, |_| {});
    s.strict = false;
    let m = s.mark();
    let flaps = 4;
    for _ in 0..flaps {
        s.cut_all(0, 1);
        s.run(DEAD_STEPS + 3);
        s.heal_all(0, 1);
        s.run(2);
    }
    let moves = s.acquires_since(m).len();
    assert!(
        moves <= flaps,
        "at most one takeover per outage: {moves}\n{}",
        s.dump()
    );
    let failbacks = s.log[m..]
        .iter()
        .filter(|r| {
            matches!(
                r.action,
                Action::Release {
                    reason: ReleaseReason::Failback { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        failbacks, 0,
        "never failed back to a node seen for less than deadtime"
    );
    s.run_until(3, "split brain resolved", |s| s.holders(VIP1).len() == 1);
    s.strict = true;
    s.run_until(3 * DEAD_STEPS, "settled on node0", |s| {
        s.holders(VIP1) == [0]
    });
}

#[test]
fn a_node_alone_out_of_three_takes_nothing() {
    let mut s = three_node();
    let m = s.mark();
    // node2 is cut off from both others: it sees the holder die but has no quorum.
    s.cut_all(2, 0);
    s.cut_all(2, 1);
    s.run(4 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [0], "no second holder");
    let no_quorum: Vec<_> = s
        .warnings_since(m, 2)
        .into_iter()
        .filter(|w| matches!(w, Warning::NoQuorum { .. }))
        .collect();
    assert_eq!(
        no_quorum,
        [Warning::NoQuorum {
            group: VIP1,
            visible: 1,
            candidates: 3
        }],
        "warned once"
    );
    // node0 dies later: node2 left while node0 and node1 had quorum, so node1 is the last man
    // standing and takes over; node2, cut off, never had quorum and still takes nothing.
    s.power_off(0);
    s.run_until(3 * DEAD_STEPS, "node1 took vip1", |s| {
        s.holders(VIP1) == [1]
    });
    s.run(3 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [1], "one holder");
    s.heal_all(2, 1);
    s.run(2 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [1]);
}

/// Heartbeat's case 38 (three nodes, one group): the nodes die one after another and the last
/// one takes over, as under Heartbeat (corosync's last_man_standing); before, hb required a
/// majority of three and the survivor never took the group.
#[test]
fn the_last_of_three_that_died_one_after_another_takes_over() {
    let mut s = three_node();
    s.power_off(0);
    s.run_until(2 * DEAD_STEPS, "node1 took vip1", |s| {
        s.holders(VIP1) == [1]
    });
    s.run(3 * DEAD_STEPS);
    s.power_off(1);
    s.run_until(2 * DEAD_STEPS, "node2, the last, took vip1", |s| {
        s.holders(VIP1) == [2]
    });
}

/// votequorum's wait_for_all: candidates never heard count as expected, so a node that boots
/// alone out of three takes nothing however long it waits (initdead and far beyond); the first
/// peer it hears makes two of three, and one of them takes the group.
#[test]
fn a_node_booted_alone_out_of_three_waits_for_a_peer() {
    let specs = (0..3)
        .map(|n| spec(n, &[0, 1, 2], &[(VIP1, &[0, 1, 2])]))
        .collect();
    let mut s = Sim::new(specs, 1);
    s.boot(2);
    s.run(20 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), Vec::<u32>::new(), "alone out of three");
    s.boot(1);
    s.run_until(20 * DEAD_STEPS, "node1 took vip1", |s| {
        s.holders(VIP1) == [1]
    });
}

/// Two of three gone at once look like a partition: the one left has no quorum.
#[test]
fn two_of_three_gone_at_once_leave_no_quorum() {
    let mut s = three_node();
    s.power_off(0);
    s.power_off(1);
    s.run(6 * DEAD_STEPS);
    assert!(s.holders(VIP1).is_empty(), "{:?}", s.holders(VIP1));
}

#[test]
fn two_node_heartbeat_cut_without_ping_takes_nothing() {
    let mut s = two_node(1, |_| {});
    s.set_ping(1, 0);
    s.cut_all(0, 1);
    let m = s.mark();
    s.run(4 * DEAD_STEPS);
    assert_eq!(
        s.holders(VIP1),
        [0],
        "node1 reaches no ping node: no takeover"
    );
    assert!(
        s.warnings_since(m, 1)
            .iter()
            .any(|w| matches!(w, Warning::NoQuorum { group: VIP1, .. }))
    );
    s.heal_all(0, 1);
    s.set_ping(1, 1);
    s.run(2 * DEAD_STEPS);
    assert_eq!(s.holders(VIP1), [0]);
}

#[test]
fn standby_covers_one_primary_while_the_other_is_cut_off() {
    // node2 loses its service cable while node0 is powered off: node1 serves both groups.
    let mut s = Sim::seed();
    s.power_off(0);
    s.set_ping(2, 0);
    s.run_until(DEAD_STEPS + 4, "node1 serves both", |s| {
        s.holders(VIP1) == [1] && s.holders(VIP2) == [1]
    });
    s.set_ping(2, 1);
    s.run_until(4, "vip2 back on node2", |s| s.holders(VIP2) == [2]);
    assert_eq!(s.holders(VIP1), [1]);
}
