//! The stall rule with the service lease (`resume.rs`) on the simulator: every step checks that
//! at most one node answers for a group (resources in place and lease running).

use super::super::{Action, ReleaseReason, Warning};
use super::sim::{DEAD_STEPS, Sim, VIP1, VIP2};

fn leased() -> Sim {
    Sim::seed_with(|s| s.leased = true)
}

fn warned(s: &Sim, mark: usize, n: u32, f: impl Fn(&Warning) -> bool) -> bool {
    s.warnings_since(mark, n).iter().any(f)
}

/// node0 stalls alone: node1 declares it dead and takes vip1. node0 resumes fenced, hears that
/// node1 declared it dead (or holds vip1), and releases, as the hang rule always did. One node
/// answers for vip1 at every step.
#[test]
fn stalled_alone_releases_as_before() {
    let mut s = leased();
    s.hang(0);
    s.run_until(DEAD_STEPS + 3, "node1 took vip1", |s| {
        s.answering(VIP1) == [1]
    });
    s.run(2);
    let m = s.mark();
    s.resume(0);
    s.run_until(4, "node0 released vip1", |s| s.holders(VIP1) == [1]);
    assert!(
        warned(&s, m, 0, |w| matches!(w, Warning::Hang { by: Some(1), .. })),
        "{:?}",
        s.warnings_since(m, 0)
    );
    assert!(
        s.actions_since(m, 0).iter().any(|a| matches!(
            a,
            Action::Release {
                group: VIP1,
                reason: ReleaseReason::Hang
            }
        )),
        "released by the hang rule"
    );
    s.run_until(4 * DEAD_STEPS, "vip1 failed back", |s| {
        s.answering(VIP1) == [0]
    });
}

/// Every machine pauses at once for twice deadtime: no kernel declares anyone dead (late timers
/// look again), every node resumes, fenced if it holds something, and all peers answer that
/// they declared nobody dead: nothing moves, no group is released or taken.
#[test]
fn all_stalled_together_nobody_moves() {
    let mut s = leased();
    let m = s.mark();
    s.pause_machines(&[0, 1, 2]);
    s.run(2 * DEAD_STEPS);
    s.resume_machines(&[0, 1, 2]);
    s.run_until(4, "both primaries answer again", |s| {
        s.answering(VIP1) == [0] && s.answering(VIP2) == [2]
    });
    s.run(3 * DEAD_STEPS);
    assert_eq!(s.acquires_since(m), []);
    assert_eq!(s.releases_since(m), []);
    for n in [0, 2] {
        assert!(
            warned(&s, m, n, |w| matches!(w, Warning::StallForgiven { .. })),
            "node{n}: {:?}",
            s.warnings_since(m, n)
        );
        assert!(!warned(&s, m, n, |w| matches!(w, Warning::Hang { .. })));
    }
    assert!(
        warned(&s, m, 1, |w| matches!(
            w,
            Warning::Stalled { waiting: false, .. }
        )),
        "node1 holds nothing: it only settles"
    );
    assert_eq!((s.holders(VIP1), s.holders(VIP2)), (vec![0], vec![2]));
}

/// While node0 waits for the answers its addresses stay fenced: between resume and the answer,
/// nobody answers for vip1 (an outage of a few heartbeats, not two owners).
#[test]
fn fenced_until_the_answers_arrive() {
    let mut s = leased();
    s.pause_machines(&[0, 1]);
    s.run(2 * DEAD_STEPS);
    s.resume_machines(&[0, 1]);
    s.step();
    assert!(s.agent(0).is_resuming(), "waits for node1's answer");
    assert_eq!(s.answering(VIP1), [], "fenced meanwhile");
    s.run_until(3, "node0 answers again", |s| s.answering(VIP1) == [0]);
    assert!(!s.agent(0).is_resuming());
}

/// node1 declares node0 dead and starts taking vip1 (its start takes a while) just as node0
/// resumes: node0 hears it and releases; one node answers at every step, and vip1 ends on one
/// node.
#[test]
fn a_takeover_racing_the_resume_leaves_one_owner() {
    let mut s = leased();
    s.op_delay = 3 * super::sim::KA;
    s.hang(0);
    s.run_until(DEAD_STEPS + 3, "node1 starts taking vip1", |s| {
        s.holders(VIP1).contains(&1)
    });
    let m = s.mark();
    s.resume(0);
    s.run_until(2 * DEAD_STEPS, "vip1 on one node", |s| {
        s.holders(VIP1).len() == 1
    });
    assert!(warned(&s, m, 0, |w| matches!(w, Warning::Hang { .. })));
    s.run_until(6 * DEAD_STEPS, "vip1 failed back", |s| {
        s.answering(VIP1) == [0] && s.holders(VIP1) == [0]
    });
}

/// node0 and node1 pause together; node2, running, declares node1 dead (it holds nothing of
/// node2's). node0 keeps vip1: its only peer for it, node1, answers that it declared nobody
/// dead.
#[test]
fn a_shared_stall_with_a_running_third_node_keeps_vip1() {
    let mut s = leased();
    let m = s.mark();
    s.pause_machines(&[0, 1]);
    s.run(2 * DEAD_STEPS);
    s.resume_machines(&[0, 1]);
    s.run(3 * DEAD_STEPS);
    assert_eq!(s.releases_since(m), []);
    assert_eq!(s.answering(VIP1), [0]);
    assert_eq!(s.answering(VIP2), [2]);
}

/// A peer that died during the shared stall is declared dead a slack after the resume, and is
/// then no longer waited for: the survivor keeps its group.
#[test]
fn a_peer_dead_after_the_stall_is_not_waited_for() {
    let mut s = leased();
    let m = s.mark();
    s.pause_machines(&[0, 1]);
    s.run(2 * DEAD_STEPS);
    s.power_off(1);
    s.resume(0);
    s.run_until(2 * DEAD_STEPS, "node0 answers again", |s| {
        s.answering(VIP1) == [0]
    });
    assert_eq!(
        s.releases_since(m),
        [],
        "kept, not released and taken again"
    );
}
