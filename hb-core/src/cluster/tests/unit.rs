//! One state machine, events fed by hand.

use super::super::{
    Action, AdminCmd, Advert, Cluster, ClusterSpec, Event, GroupClaim, GroupId, GroupSpec,
    HoldState, NodeId, ReleaseReason, SpecError, Warning,
};
use super::sim::{DEAD, INITDEAD, KA, WARN, seed_specs, spec};

const G: GroupId = 1;

struct One {
    c: Cluster,
    now: u64,
}

impl One {
    fn new(spec: ClusterSpec) -> Self {
        spec.validate().expect("valid spec");
        Self {
            c: Cluster::new(spec, 0),
            now: 0,
        }
    }

    /// Created and started at time 0.
    fn started(spec: ClusterSpec) -> Self {
        let mut o = Self::new(spec);
        o.ev(Event::Start);
        o
    }

    fn ev(&mut self, ev: Event) -> Vec<Action> {
        self.c.handle(ev, self.now)
    }

    fn at(&mut self, t: u64) -> Vec<Action> {
        self.now = t;
        self.ev(Event::Tick)
    }

    fn advance(&mut self, dt: u64) -> Vec<Action> {
        self.at(self.now + dt)
    }

    fn up(&mut self, node: NodeId, advert: Advert) -> Vec<Action> {
        let mut a = self.ev(Event::PeerUp { node });
        a.extend(self.ev(Event::PeerAdvert { node, advert }));
        a
    }

    fn advert(&mut self, node: NodeId, advert: Advert) -> Vec<Action> {
        self.ev(Event::PeerAdvert { node, advert })
    }

    fn our_claim(&self) -> GroupClaim {
        *self.c.advert().claim(G).expect("claim for G")
    }
}

/// Node `local` of a two-node cluster [0, 1] sharing group G (node0 preferred).
fn two(local: NodeId) -> ClusterSpec {
    spec(local, &[0, 1], &[(G, &[0, 1])])
}

fn adv(claims: &[GroupClaim], ping: u8) -> Advert {
    Advert {
        claims: claims.to_vec(),
        ping_reachable: ping,
        ..Default::default()
    }
}

fn held(epoch: u32) -> GroupClaim {
    GroupClaim {
        group: G,
        epoch,
        held: true,
        eligible: true,
        ..GroupClaim::default()
    }
}

fn free(epoch: u32) -> GroupClaim {
    GroupClaim {
        group: G,
        epoch,
        held: false,
        eligible: true,
        ..GroupClaim::default()
    }
}

fn ineligible(epoch: u32) -> GroupClaim {
    GroupClaim {
        eligible: false,
        ..free(epoch)
    }
}

fn acquires(a: &[Action]) -> Vec<(GroupId, u32)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Acquire { group, epoch } => Some((*group, *epoch)),
            _ => None,
        })
        .collect()
}

fn releases(a: &[Action]) -> Vec<(GroupId, ReleaseReason)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Release { group, reason } => Some((*group, *reason)),
            _ => None,
        })
        .collect()
}

fn fences(a: &[Action]) -> Vec<NodeId> {
    a.iter()
        .filter_map(|a| match a {
            Action::Fence { node, .. } => Some(*node),
            _ => None,
        })
        .collect()
}

fn warns(a: &[Action]) -> Vec<Warning> {
    a.iter()
        .filter_map(|a| match a {
            Action::Warn(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

/// node1 of [0, 1], started, past initdead, holding G with epoch 1 (node0 dead, never heard).
fn node1_holding() -> One {
    let mut o = One::started(two(1));
    assert_eq!(acquires(&o.at(INITDEAD)), [(G, 1)]);
    o.ev(Event::Acquired { group: G });
    assert_eq!(o.c.hold_state(G), Some(HoldState::Held));
    o
}

/// node0 of [0, 1], started, node1 heard, holding G with epoch 1.
fn node0_holding(spec: ClusterSpec) -> One {
    let mut o = One::started(spec);
    o.ev(Event::PingReachable { count: 1 });
    let a = o.up(1, adv(&[free(0)], 1));
    assert_eq!(acquires(&a), [(G, 1)]);
    o.ev(Event::Acquired { group: G });
    o
}

#[test]
fn spec_validation() {
    for s in seed_specs() {
        assert_eq!(s.validate(), Ok(()));
    }
    let base = two(0);
    let bad = |f: &dyn Fn(&mut ClusterSpec)| {
        let mut s = base.clone();
        f(&mut s);
        let e = s.validate().unwrap_err();
        assert!(!e.to_string().is_empty());
        e
    };
    assert_eq!(
        bad(&|s| s.local = 7),
        SpecError::LocalNotListed { local: 7 }
    );
    assert_eq!(
        bad(&|s| s.nodes.push(1)),
        SpecError::DuplicateNode { node: 1 }
    );
    assert_eq!(
        bad(&|s| {
            s.groups = (0..9)
                .map(|id| GroupSpec {
                    id,
                    candidates: vec![0],
                })
                .collect()
        }),
        SpecError::TooManyGroups { count: 9 }
    );
    assert_eq!(
        bad(&|s| s.groups.push(s.groups[0].clone())),
        SpecError::DuplicateGroup { group: G }
    );
    assert_eq!(
        bad(&|s| s.groups[0].candidates = vec![1]),
        SpecError::LocalNotCandidate { group: G }
    );
    assert_eq!(
        bad(&|s| s.groups[0].candidates.push(5)),
        SpecError::UnknownCandidate { group: G, node: 5 }
    );
    assert_eq!(
        bad(&|s| s.groups[0].candidates.push(0)),
        SpecError::DuplicateCandidate { group: G, node: 0 }
    );
    assert_eq!(bad(&|s| s.keepalive_ns = 0), SpecError::ZeroKeepalive);
    assert!(matches!(
        bad(&|s| s.deadtime_ns = KA),
        SpecError::DeadtimeNotAboveKeepalive { .. }
    ));
}

#[test]
fn first_event_sends_advert_then_only_changes_do() {
    let mut o = One::new(two(1));
    let a = o.ev(Event::Start);
    assert_eq!(a, [Action::SendAdvert]);
    let advert = o.c.advert();
    assert!(advert.settling, "initdead: settling");
    assert!(!advert.standby);
    assert_eq!(advert.ping_reachable, 0);
    assert_eq!(advert.claims, [free(0)]);
    assert_eq!(o.advance(KA), [], "nothing changed, nothing sent");
    assert_eq!(
        o.ev(Event::PingReachable { count: 0 }),
        [],
        "same ping count"
    );
    assert_eq!(
        o.ev(Event::PingReachable { count: 2 }),
        [Action::SendAdvert]
    );
    assert_eq!(o.c.advert().ping_reachable, 2);
}

#[test]
fn nothing_happens_before_start() {
    let mut o = One::new(two(0));
    o.at(INITDEAD * 3);
    let a = o.up(1, adv(&[free(0)], 0));
    assert!(acquires(&a).is_empty());
    assert!(o.c.advert().settling);
    let a = o.ev(Event::Start);
    assert_eq!(acquires(&a), [(G, 1)], "acts once started");
}

#[test]
fn initdead_standby_waits_for_unheard_preferred_node() {
    let mut o = One::started(two(1));
    for t in 1..INITDEAD / KA {
        assert_eq!(acquires(&o.at(t * KA)), [], "t={t}: node0 may still appear");
        assert!(o.c.advert().settling);
    }
    let a = o.at(INITDEAD);
    assert_eq!(a[0], Action::SendAdvert, "advert first");
    assert_eq!(acquires(&a), [(G, 1)]);
    assert!(!o.c.advert().settling);
    assert!(o.our_claim().held, "advertised held while starting");
}

#[test]
fn preferred_node_acquires_once_it_heard_nobody_holds() {
    let mut o = One::started(two(0));
    assert_eq!(
        acquires(&o.ev(Event::PeerUp { node: 1 })),
        [],
        "claims unknown yet"
    );
    let a = o.advert(
        1,
        Advert {
            settling: true,
            ..adv(&[free(0)], 0)
        },
    );
    assert_eq!(acquires(&a), [(G, 1)], "well before initdead");
    assert!(!o.c.advert().settling, "every peer heard: initdead over");
}

#[test]
fn standby_defers_to_a_settling_preferred_node() {
    let mut o = One::started(two(1));
    o.up(
        0,
        Advert {
            settling: true,
            ..adv(&[free(0)], 0)
        },
    );
    for t in 1..3 * INITDEAD / KA {
        assert_eq!(
            acquires(&o.at(t * KA)),
            [],
            "node0 is alive, eligible and first"
        );
    }
}

#[test]
fn takeover_of_dead_holder_uses_max_epoch_plus_one() {
    let mut o = One::started(two(1));
    o.up(0, adv(&[held(7)], 0));
    assert_eq!(acquires(&o.at(INITDEAD)), [], "node0 holds it");
    let a = o.ev(Event::PeerDead { node: 0 });
    assert_eq!(a[0], Action::SendAdvert);
    assert_eq!(acquires(&a), [(G, 8)]);
    let c = o.our_claim();
    assert!(c.held && c.epoch == 8);
}

/// A node killed in the middle of a takeover at epoch 2 and restarted alone
/// (its peer still dead) must not take the group at epoch 1 again.
#[test]
fn restart_takes_over_above_the_remembered_epoch() {
    let mut o = One::new(two(1));
    o.c.remember_epoch(G, 2);
    o.ev(Event::Start);
    assert_eq!(acquires(&o.at(INITDEAD)), [(G, 3)]);
    let mut adopted = One::new(two(0));
    adopted.c.remember_epoch(G, 2);
    adopted.ev(Event::Start);
    adopted.ev(Event::AdoptHeld { group: G });
    assert_eq!(
        adopted.our_claim().epoch,
        2,
        "adopted at the epoch it was taken at"
    );
}

#[test]
fn one_operation_per_group_at_a_time() {
    let mut o = One::started(two(1));
    assert_eq!(acquires(&o.at(INITDEAD)), [(G, 1)]);
    // node0 shows up holding G with a higher epoch while our start is still running.
    let a = o.up(0, adv(&[held(5)], 0));
    assert_eq!(
        releases(&a),
        [],
        "no Release while the Acquire is outstanding"
    );
    let a = o.ev(Event::Acquired { group: G });
    assert_eq!(releases(&a), [(G, ReleaseReason::SplitBrain { winner: 0 })]);
    // node0 dies while our stop is running: no Acquire until the Release completed.
    assert_eq!(acquires(&o.ev(Event::PeerDead { node: 0 })), []);
    assert_eq!(acquires(&o.advance(KA)), []);
    let a = o.ev(Event::Released { group: G });
    assert_eq!(acquires(&a), [(G, 6)], "re-evaluated on completion");
}

#[test]
fn restarted_peer_claims_are_void_until_its_next_advert() {
    let mut o = One::started(two(1));
    o.up(0, adv(&[held(3)], 0));
    o.at(INITDEAD);
    let a = o.ev(Event::PeerRestarted { node: 0 });
    assert_eq!(
        acquires(&a),
        [],
        "alive candidate with unknown claims blocks"
    );
    assert_eq!(o.c.peer_advert(0), None);
    let a = o.advert(0, adv(&[ineligible(3)], 0));
    assert_eq!(
        acquires(&a),
        [(G, 4)],
        "it holds nothing now and is not eligible"
    );
}

#[test]
fn unknown_nodes_groups_and_completions() {
    let mut o = One::started(two(0));
    let a = o.up(2, adv(&[held(9)], 0));
    assert!(
        acquires(&a).is_empty() && warns(&a).is_empty(),
        "node2 is not ours"
    );
    assert!(!o.c.is_peer_alive(2));
    assert_eq!(
        acquires(&o.up(1, adv(&[free(0)], 0))),
        [(G, 1)],
        "epoch 9 not learned"
    );
    assert_eq!(
        warns(&o.ev(Event::Acquired { group: 99 })),
        [Warning::UnknownGroup { group: 99 }]
    );
    assert_eq!(
        warns(&o.ev(Event::Admin(AdminCmd::Standby(Some(99))))),
        [Warning::UnknownGroup { group: 99 }]
    );
    assert_eq!(
        warns(&o.ev(Event::Released { group: G })),
        [Warning::UnexpectedCompletion {
            group: G,
            event: "Released"
        }]
    );
    assert_eq!(o.c.hold_state(G), Some(HoldState::Acquiring), "unchanged");
}

#[test]
fn adopt_held_keeps_resources_and_learns_the_epoch() {
    let mut o = One::new(two(0));
    o.ev(Event::Start);
    let a = o.ev(Event::AdoptHeld { group: G });
    assert_eq!(
        a,
        [Action::SendAdvert],
        "advertised held at once, no Acquire"
    );
    assert_eq!(o.c.hold_state(G), Some(HoldState::Held));
    assert_eq!(o.our_claim().epoch, 0);
    let a = o.up(1, adv(&[free(4)], 0));
    assert!(acquires(&a).is_empty() && releases(&a).is_empty());
    assert_eq!(o.our_claim().epoch, 4, "max known + 0");
    o.advert(1, adv(&[free(9)], 0));
    assert_eq!(o.our_claim().epoch, 4, "initdead over: epoch fixed");
    assert_eq!(o.c.held_groups(), [G]);
}

#[test]
fn adopted_group_conflict_goes_through_split_brain_rule() {
    // node1 restarted while holding G, but node0 holds it too: same epoch, node0 has priority.
    let mut o = One::started(two(1));
    o.ev(Event::AdoptHeld { group: G });
    let a = o.up(0, adv(&[held(4)], 0));
    assert_eq!(o.our_claim().epoch, 4);
    assert_eq!(releases(&a), [(G, ReleaseReason::SplitBrain { winner: 0 })]);
    assert_eq!(
        warns(&a),
        [Warning::SplitBrainResolved {
            group: G,
            winner: 0,
            loser: 1
        }]
    );
}

#[test]
fn short_stall_does_nothing() {
    let mut o = node0_holding(two(0));
    o.advance(KA);
    assert_eq!(o.ev(Event::Stalled { ns: DEAD - 2 * KA }), []);
    assert_eq!(o.c.hold_state(G), Some(HoldState::Held));
}

#[test]
fn long_stall_releases_everything_and_settles_for_a_deadtime() {
    let mut o = node0_holding(two(0));
    o.advance(KA);
    let a = o.ev(Event::Stalled { ns: DEAD });
    assert_eq!(warns(&a), [Warning::Hang { ns: DEAD, by: None }]);
    assert_eq!(releases(&a), [(G, ReleaseReason::Hang)]);
    let c = o.our_claim();
    assert!(
        c.held && !c.eligible,
        "held until the stop completed, not eligible"
    );
    assert!(o.c.advert().settling);
    o.ev(Event::Released { group: G });
    assert!(!o.our_claim().held);
    let resumed = o.now;
    while o.now + KA < resumed + DEAD {
        assert_eq!(acquires(&o.advance(KA)), [], "settling after the hang");
    }
    assert_eq!(
        acquires(&o.at(resumed + DEAD)),
        [(G, 2)],
        "normal rules again"
    );
    assert!(!o.c.advert().settling);
}

#[test]
fn stall_just_under_deadtime_counts_as_a_hang() {
    // The last heartbeat may have left a keepalive before the stall began.
    let mut o = node0_holding(two(0));
    let a = o.ev(Event::Stalled { ns: DEAD - KA / 2 });
    assert_eq!(releases(&a), [(G, ReleaseReason::Hang)]);
}

#[test]
fn split_brain_higher_epoch_wins_and_winner_warns_once() {
    let mut o = node1_holding();
    o.advance(KA);
    // node0 appears holding an older epoch: we keep it.
    let a = o.up(0, adv(&[held(0)], 0));
    assert_eq!(releases(&a), []);
    assert_eq!(
        warns(&a),
        [Warning::SplitBrainResolved {
            group: G,
            winner: 1,
            loser: 0
        }]
    );
    assert_eq!(warns(&o.advance(KA)), [], "once per episode");
    // It now claims a newer epoch: we lose.
    let a = o.advert(0, adv(&[held(2)], 0));
    assert_eq!(releases(&a), [(G, ReleaseReason::SplitBrain { winner: 0 })]);
}

#[test]
fn split_brain_equal_epochs_priority_wins() {
    let mut o = node1_holding();
    let a = o.up(0, adv(&[held(1)], 0));
    assert_eq!(releases(&a), [(G, ReleaseReason::SplitBrain { winner: 0 })]);

    let mut o = node0_holding(two(0));
    let a = o.advert(1, adv(&[held(1)], 0));
    assert_eq!(releases(&a), [], "node0 has priority");
}

#[test]
fn fencing_precedes_takeover_of_a_dead_holder() {
    let mut s = two(1);
    s.fencing = true;
    let mut o = One::started(s);
    o.up(0, adv(&[held(1)], 0));
    let a = o.ev(Event::PeerDead { node: 0 });
    assert_eq!(fences(&a), [0]);
    assert!(a.contains(&Action::Fence { node: 0, group: G }));
    assert_eq!(acquires(&a), []);
    assert_eq!(o.advance(KA), [], "one fence at a time");
    let a = o.ev(Event::Fenced { node: 0, ok: true });
    assert_eq!(acquires(&a), [(G, 2)]);
    assert!(!o.c.is_peer_alive(0));
}

#[test]
fn failed_fencing_blocks_and_is_retried_once_per_deadtime() {
    let mut s = two(1);
    s.fencing = true;
    let mut o = One::started(s);
    o.up(0, adv(&[held(1)], 0));
    o.ev(Event::PeerDead { node: 0 });
    let failed_at = o.now;
    let a = o.ev(Event::Fenced { node: 0, ok: false });
    assert_eq!(warns(&a), [Warning::FencingFailed { node: 0 }]);
    assert_eq!(acquires(&a), []);
    while o.now + KA < failed_at + DEAD {
        let a = o.advance(KA);
        assert!(fences(&a).is_empty() && acquires(&a).is_empty());
    }
    assert_eq!(fences(&o.at(failed_at + DEAD)), [0], "retry");
    assert_eq!(
        acquires(&o.ev(Event::Fenced { node: 0, ok: true })),
        [(G, 2)]
    );
}

#[test]
fn fencing_an_unheard_candidate_after_initdead() {
    let mut s = two(1);
    s.fencing = true;
    let mut o = One::started(s);
    let a = o.at(INITDEAD);
    assert_eq!(fences(&a), [0], "node0 never heard: it may hold G");
    assert_eq!(
        acquires(&o.ev(Event::Fenced { node: 0, ok: true })),
        [(G, 1)]
    );
}

#[test]
fn no_fencing_needed_when_the_dead_peer_held_nothing() {
    let mut s = two(1);
    s.fencing = true;
    let mut o = One::started(s.clone());
    assert_eq!(acquires(&o.up(0, adv(&[free(1)], 0))), []);
    // Its final advert before a graceful exit: nothing held, not eligible.
    let a = o.advert(0, adv(&[ineligible(1)], 0));
    assert_eq!((fences(&a), acquires(&a)), (vec![], vec![(G, 2)]));
    assert_eq!(o.ev(Event::PeerDead { node: 0 }), []);

    // A holder that died and came back with a new incarnation holds nothing any more.
    let mut o = One::started(s);
    o.up(0, adv(&[held(1)], 0));
    let a = o.ev(Event::PeerDead { node: 0 });
    assert_eq!(fences(&a), [0]);
    let a = o.ev(Event::PeerRestarted { node: 0 });
    assert_eq!((fences(&a), acquires(&a)), (vec![], vec![(G, 2)]));
    // The fence result arriving late changes nothing.
    let a = o.ev(Event::Fenced { node: 0, ok: false });
    assert_eq!(warns(&a), [Warning::FencingFailed { node: 0 }]);
    assert_eq!(o.c.hold_state(G), Some(HoldState::Acquiring));
}

#[test]
fn advert_before_link_up_never_gets_a_live_holder_fenced() {
    // A shell that delivers a packet's advert before its LinkUp: the peer holds G and is alive.
    let setup = || {
        let mut s = two(1);
        s.fencing = true;
        let mut o = One::started(s);
        assert_eq!(
            fences(&o.at(INITDEAD)),
            [0],
            "never heard: fence before taking"
        );
        o.ev(Event::Fenced { node: 0, ok: false });
        o.at(INITDEAD + DEAD - KA);
        let a = o.advert(0, adv(&[held(1)], 0));
        assert_eq!((fences(&a), acquires(&a)), (vec![], vec![]));
        o
    };
    let mut o = setup();
    let a = o.at(INITDEAD + DEAD);
    assert!(
        fences(&a).is_empty(),
        "fence retry due, but node0 may be alive: wait"
    );
    let a = o.ev(Event::PeerUp { node: 0 });
    assert_eq!((fences(&a), acquires(&a)), (vec![], vec![]), "alive holder");
    // Had it really been dead, we would have gone on a deadtime later.
    let mut o = setup();
    assert_eq!(fences(&o.at(INITDEAD + 2 * DEAD - KA)), [0]);
}

#[test]
fn failed_start_cleans_up_and_holds_off() {
    let mut o = One::started(two(1));
    o.at(INITDEAD);
    let failed_at = o.now;
    let a = o.ev(Event::AcquireFailed { group: G });
    assert_eq!(warns(&a), [Warning::AcquireFailed { group: G }]);
    assert_eq!(releases(&a), [(G, ReleaseReason::StartFailed)]);
    assert!(o.our_claim().held, "clean-up still running");
    o.ev(Event::Released { group: G });
    let c = o.our_claim();
    assert!(!c.held && !c.eligible);
    o.at(failed_at + 10 * DEAD - KA);
    assert_eq!(o.c.hold_state(G), Some(HoldState::Idle));
    assert_eq!(
        acquires(&o.at(failed_at + 10 * DEAD)),
        [(G, 2)],
        "hold-off over"
    );

    // Takeover clears the hold-off at once.
    let mut o = One::started(two(1));
    o.at(INITDEAD);
    o.ev(Event::AcquireFailed { group: G });
    o.ev(Event::Released { group: G });
    let a = o.ev(Event::Admin(AdminCmd::Takeover(None)));
    assert_eq!(acquires(&a), [(G, 2)]);
}

#[test]
fn failed_stop_sticks_and_is_retried() {
    let mut o = node0_holding(two(0));
    o.at(DEAD);
    o.advert(1, adv(&[free(1)], 1));
    let a = o.ev(Event::Admin(AdminCmd::Standby(None)));
    assert_eq!(releases(&a), [(G, ReleaseReason::Standby)]);
    let failed_at = o.now;
    let a = o.ev(Event::ReleaseFailed { group: G });
    assert_eq!(warns(&a), [Warning::ReleaseFailed { group: G }]);
    assert_eq!(o.c.hold_state(G), Some(HoldState::Stuck));
    let c = o.our_claim();
    assert!(c.held && c.stuck && !c.eligible, "{c:?}");
    assert_eq!(releases(&o.at(failed_at + 10 * DEAD - KA)), []);
    assert_eq!(
        releases(&o.at(failed_at + 10 * DEAD)),
        [(G, ReleaseReason::Retry)]
    );
    o.ev(Event::Released { group: G });
    let c = o.our_claim();
    assert!(!c.held && !c.stuck);
}

#[test]
fn stuck_peer_blocks_without_fencing() {
    let mut o = One::started(two(1));
    let stuck = GroupClaim {
        stuck: true,
        eligible: false,
        ..held(1)
    };
    let a = o.up(0, adv(&[stuck], 0));
    assert_eq!(acquires(&a), []);
    assert_eq!(warns(&a), [Warning::PeerStuck { group: G, node: 0 }]);
    assert_eq!(warns(&o.advance(KA)), [], "warned once");
    assert_eq!(acquires(&o.at(20 * DEAD)), []);
}

#[test]
fn stuck_peer_is_fenced_then_taken_over() {
    let mut s = two(1);
    s.fencing = true;
    let mut o = One::started(s);
    let stuck = GroupClaim {
        stuck: true,
        eligible: false,
        ..held(1)
    };
    let a = o.up(0, adv(&[stuck], 0));
    assert_eq!(fences(&a), [0]);
    let a = o.ev(Event::Fenced { node: 0, ok: true });
    assert_eq!(
        acquires(&a),
        [(G, 2)],
        "fenced: no longer a holder, though not dead yet"
    );
    // When it reboots it is a peer again.
    o.ev(Event::PeerDead { node: 0 });
    o.ev(Event::PeerRestarted { node: 0 });
    o.up(0, adv(&[free(2)], 0));
    assert!(o.c.is_peer_alive(0));
}

#[test]
fn standby_keeps_a_group_nobody_else_can_take() {
    let mut o = node1_holding();
    let a = o.ev(Event::Admin(AdminCmd::Standby(None)));
    assert_eq!(releases(&a), []);
    let advert = o.c.advert();
    assert!(advert.standby && !advert.claims[0].eligible);
    // node0 appears but is still settling: not yet.
    let a = o.up(
        0,
        Advert {
            settling: true,
            ..adv(&[free(0)], 0)
        },
    );
    assert_eq!(releases(&a), []);
    let a = o.advert(0, adv(&[free(1)], 0));
    assert_eq!(releases(&a), [(G, ReleaseReason::Standby)]);
    o.ev(Event::Released { group: G });
    assert_eq!(
        acquires(&o.at(o.now + 100 * DEAD)),
        [],
        "standby until Takeover"
    );
    let a = o.ev(Event::Admin(AdminCmd::Takeover(Some(G))));
    assert!(!o.c.advert().standby);
    assert!(o.our_claim().eligible && o.our_claim().takeover);
    assert_eq!(acquires(&a), [], "node0 is first and eligible");
}

#[test]
fn takeover_requests_are_honoured_only_from_more_preferred_nodes() {
    // auto_failback off: node1 keeps G when node0 returns, until node0 asks.
    let mut s = two(1);
    s.auto_failback = false;
    let mut o = One::started(s);
    o.at(INITDEAD);
    o.ev(Event::Acquired { group: G });
    o.up(0, adv(&[free(1)], 0));
    assert_eq!(releases(&o.at(o.now + 10 * DEAD)), [], "no failback");
    let ask = GroupClaim {
        takeover: true,
        ..free(1)
    };
    let a = o.advert(0, adv(&[ask], 0));
    assert_eq!(releases(&a), [(G, ReleaseReason::Requested { by: 0 })]);

    let mut s = two(0);
    s.auto_failback = false;
    let mut o = node0_holding(s);
    let a = o.advert(1, adv(&[ask], 0));
    assert_eq!(releases(&a), [], "node1 is less preferred");
}

#[test]
fn auto_failback_waits_for_a_stable_preferred_node() {
    let mut o = node1_holding();
    let back = o.now;
    o.up(0, adv(&[free(1)], 0));
    while o.now + KA < back + 2 * DEAD {
        assert_eq!(releases(&o.advance(KA)), []);
    }
    assert_eq!(
        releases(&o.at(back + 2 * DEAD)),
        [(G, ReleaseReason::Failback { to: 0 })]
    );
}

#[test]
fn flapping_single_link_gives_at_most_one_takeover_and_no_early_failback() {
    let mut o = One::started(two(1));
    o.ev(Event::LinkUp { node: 0, link: 0 });
    o.advert(0, adv(&[held(1)], 0));
    let mut acquired = 0;
    let mut released = 0;
    for round in 0..6 {
        let a = o.ev(Event::LinkDead { node: 0, link: 0 });
        acquired += acquires(&a).len();
        if !acquires(&a).is_empty() {
            o.ev(Event::Acquired { group: G });
        }
        o.advance(2 * KA);
        let mut a = o.ev(Event::LinkUp { node: 0, link: 0 });
        if round == 0 {
            // It released after the split brain and holds nothing now.
            a.extend(o.advert(0, adv(&[free(2)], 0)));
        }
        released += releases(&a).len();
        o.advance(2 * KA);
    }
    assert_eq!((acquired, released), (1, 0), "one takeover, no ping-pong");
    let stable_from = o.now;
    o.ev(Event::Tick);
    assert_eq!(
        releases(&o.at(stable_from + 2 * DEAD)),
        [(G, ReleaseReason::Failback { to: 0 })]
    );
}

#[test]
fn second_link_hides_a_flapping_one() {
    let mut o = One::started(two(1));
    o.ev(Event::LinkUp { node: 0, link: 0 });
    o.ev(Event::LinkUp { node: 0, link: 1 });
    o.advert(0, adv(&[held(1)], 0));
    for _ in 0..10 {
        let a = o.ev(Event::LinkDead { node: 0, link: 1 });
        assert!(acquires(&a).is_empty());
        o.advance(KA);
        o.ev(Event::LinkUp { node: 0, link: 1 });
        o.advance(KA);
    }
    assert!(o.c.is_peer_alive(0));
    assert_eq!(o.c.hold_state(G), Some(HoldState::Idle));
    assert_eq!(acquires(&o.ev(Event::LinkDead { node: 0, link: 0 })), []);
    assert_eq!(
        acquires(&o.ev(Event::LinkDead { node: 0, link: 1 })),
        [(G, 2)]
    );
}

#[test]
fn shutdown_releases_in_reverse_acquisition_order() {
    let mut o = One::new(spec(0, &[0], &[(1, &[0]), (2, &[0]), (3, &[0])]));
    o.ev(Event::AdoptHeld { group: 2 });
    o.ev(Event::AdoptHeld { group: 3 });
    let a = o.ev(Event::Start);
    assert_eq!(acquires(&a), [(1, 1)], "alone: no peer to wait for");
    o.ev(Event::Acquired { group: 1 });
    let a = o.ev(Event::Shutdown);
    assert_eq!(a[0], Action::SendAdvert);
    assert_eq!(releases(&a), [(1, ReleaseReason::Shutdown)]);
    assert!(o.c.advert().claims.iter().all(|c| !c.eligible));
    assert_eq!(o.ev(Event::Tick), [], "one at a time");
    let a = o.ev(Event::Released { group: 1 });
    assert_eq!(releases(&a), [(3, ReleaseReason::Shutdown)]);
    assert!(!o.c.advert().claim(1).unwrap().held);
    let a = o.ev(Event::Released { group: 3 });
    assert_eq!(releases(&a), [(2, ReleaseReason::Shutdown)]);
    let a = o.ev(Event::Released { group: 2 });
    assert_eq!(
        a,
        [Action::SendAdvert, Action::Exit],
        "final advert, then Exit"
    );
    assert!(o.c.advert().claims.iter().all(|c| !c.held && !c.eligible));
    assert!(o.c.has_exited());
    assert_eq!(o.ev(Event::Start), []);
    assert_eq!(o.ev(Event::Admin(AdminCmd::Takeover(None))), []);
}

#[test]
fn shutdown_goes_on_after_a_failed_stop_and_waits_for_a_running_start() {
    let mut o = One::new(spec(0, &[0], &[(1, &[0]), (2, &[0])]));
    o.ev(Event::Start);
    o.ev(Event::Acquired { group: 1 });
    // Group 2's start is still running.
    let a = o.ev(Event::Shutdown);
    assert_eq!(releases(&a), [], "waits for the outstanding Acquire");
    let a = o.ev(Event::Acquired { group: 2 });
    assert_eq!(releases(&a), [(2, ReleaseReason::Shutdown)]);
    let a = o.ev(Event::ReleaseFailed { group: 2 });
    assert_eq!(warns(&a), [Warning::ReleaseFailed { group: 2 }]);
    assert_eq!(releases(&a), [(1, ReleaseReason::Shutdown)]);
    let a = o.ev(Event::Released { group: 1 });
    assert_eq!(a.last(), Some(&Action::Exit));
    let c = *o.c.advert().claim(2).unwrap();
    assert!(
        c.held && c.stuck,
        "peers see it stuck (and fence us if they can)"
    );
}

#[test]
fn quorum_needs_a_majority_of_three_candidates() {
    let g3 = &[(G, &[0, 1, 2][..])];
    let mut o = One::started(spec(2, &[0, 1, 2], g3));
    o.up(0, adv(&[held(1)], 0));
    o.up(1, adv(&[free(1)], 0));
    o.ev(Event::PeerDead { node: 0 });
    assert_eq!(o.c.hold_state(G), Some(HoldState::Idle), "node1 is next");
    let a = o.ev(Event::PeerDead { node: 1 });
    assert_eq!(acquires(&a), [], "alone out of 3");
    assert_eq!(
        warns(&a),
        [Warning::NoQuorum {
            group: G,
            visible: 1,
            candidates: 3
        }]
    );
    assert_eq!(o.at(10 * INITDEAD), [], "warned once, still nothing");
    // node1 comes back in standby: two of three visible, our turn.
    let a = o.up(1, adv(&[ineligible(1)], 0));
    assert_eq!(acquires(&a), [(G, 2)]);
}

#[test]
fn two_node_tie_is_broken_by_the_ping_node() {
    let mut s = two(1);
    s.ping_targets = 1;
    let mut o = One::started(s);
    o.ev(Event::PingReachable { count: 0 });
    o.up(0, adv(&[held(1)], 0));
    let a = o.ev(Event::PeerDead { node: 0 });
    assert_eq!(acquires(&a), []);
    assert_eq!(
        warns(&a),
        [Warning::NoQuorum {
            group: G,
            visible: 1,
            candidates: 2
        }]
    );
    let a = o.ev(Event::PingReachable { count: 1 });
    assert_eq!(acquires(&a), [(G, 2)], "the ping node breaks the tie");
}

#[test]
fn without_the_ping_tie_break_the_survivor_takes_over_as_heartbeat() {
    let mut s = two(1);
    s.ping_targets = 1;
    s.ping_tie_break = false;
    let mut o = One::started(s);
    o.ev(Event::PingReachable { count: 0 });
    o.up(0, adv(&[held(1)], 0));
    let a = o.ev(Event::PeerDead { node: 0 });
    assert_eq!(acquires(&a), [(G, 2)], "reaching no ping target");
}

#[test]
fn connectivity_ties_move_nothing_and_a_better_peer_takes_over() {
    let mut s = two(0);
    s.ping_targets = 2;
    let mut o = node0_holding(s);
    o.at(DEAD);
    // Ties, reached without ever being behind: nothing moves.
    let steps = [
        Event::PeerAdvert {
            node: 1,
            advert: adv(&[free(1)], 1),
        },
        Event::PingReachable { count: 2 },
        Event::PeerAdvert {
            node: 1,
            advert: adv(&[free(1)], 2),
        },
        Event::PeerAdvert {
            node: 1,
            advert: adv(&[free(1)], 0),
        },
        Event::PingReachable { count: 0 },
        Event::PingReachable { count: 1 },
    ];
    for ev in steps {
        let a = o.ev(ev.clone());
        assert_eq!(releases(&a), [], "{ev:?}");
        assert!(o.our_claim().eligible);
    }
    let a = o.advert(1, adv(&[free(1)], 2));
    assert_eq!(releases(&a), [(G, ReleaseReason::LostConnectivity)]);
    assert_eq!(
        warns(&a),
        [Warning::LostConnectivity {
            group: G,
            ours: 1,
            peer: 1,
            theirs: 2
        }]
    );
    assert!(!o.our_claim().eligible);
}

/// node0 of [0, 1] with one ping node, holding G at epoch 1, lost the
/// ping node and released G (offered in a hand-over) 0.1 keepalive ago.
fn handed_over_for_connectivity() -> One {
    let mut s = two(0);
    s.ping_targets = 1;
    let mut o = node0_holding(s);
    o.at(DEAD);
    let a = o.ev(Event::PingReachable { count: 0 });
    assert_eq!(releases(&a), [(G, ReleaseReason::LostConnectivity)]);
    o.ev(Event::Released { group: G });
    o.now += KA / 10;
    o
}

#[test]
fn a_failback_right_after_a_hand_over_is_taken_at_once() {
    // The lab's cable pull (plug back within a keepalive): node0 hands G
    // over for connectivity, node1 takes it and, node0 reaching the ping
    // node again, fails it back a few ms later, all within the two
    // keepalives node0 holds back after offering it. node1's held advert
    // ended that hand-over: node0 takes the release at once, not at its
    // next tick (which left vip1 unserved for 15-70 ms).
    let mut o = handed_over_for_connectivity();
    assert_eq!(
        acquires(&o.advert(1, adv(&[held(2)], 1))),
        [],
        "node1 took it"
    );
    o.now += KA / 10;
    o.ev(Event::PingReachable { count: 1 });
    o.now += KA / 10;
    let a = o.advert(1, adv(&[free(2)], 1));
    assert_eq!(
        acquires(&a),
        [(G, 3)],
        "the failback, 0.3 keepalives after the offer"
    );
}

#[test]
fn an_older_held_claim_does_not_end_a_hand_over() {
    // node1 still says held at the epoch we held G at (a split brain's
    // loser releasing, say): that is no taker, so the window stays and we
    // do not take G back at once when it lets go.
    let mut o = handed_over_for_connectivity();
    o.advert(1, adv(&[held(1)], 1));
    o.ev(Event::PingReachable { count: 1 });
    o.now += KA / 10;
    let a = o.advert(1, adv(&[free(1)], 1));
    assert_eq!(acquires(&a), [], "still handing off to node1");
}

#[test]
fn connectivity_does_not_hand_over_to_an_ineligible_peer() {
    let mut s = two(0);
    s.ping_targets = 1;
    let mut o = node0_holding(s);
    o.advert(1, adv(&[ineligible(1)], 1));
    let a = o.ev(Event::PingReachable { count: 0 });
    assert_eq!(releases(&a), [], "node1 is in standby: keep serving");
    assert!(o.our_claim().eligible);
}

#[test]
fn ping_not_measured_yet_means_settling_not_acquiring() {
    let mut s = two(0);
    s.ping_targets = 1;
    let mut o = One::started(s);
    let a = o.up(1, adv(&[free(0)], 1));
    assert_eq!(acquires(&a), [], "our ping count is unknown");
    assert!(o.c.advert().settling);
    assert!(o.our_claim().eligible, "not cut off as far as we know");
    let a = o.ev(Event::PingReachable { count: 1 });
    assert_eq!(acquires(&a), [(G, 1)]);
    assert!(!o.c.advert().settling);
}

#[test]
fn warntime_warns_once_per_episode() {
    let mut o = One::started(two(0));
    o.ev(Event::LinkUp { node: 1, link: 0 });
    let late = |gap_ns| Event::Late {
        node: 1,
        link: 0,
        gap_ns,
    };
    assert_eq!(o.ev(late(WARN)), [], "not later than warntime");
    let a = o.ev(late(WARN + 1));
    assert_eq!(
        warns(&a),
        [Warning::LateHeartbeat {
            node: 1,
            link: 0,
            gap_ns: WARN + 1
        }]
    );
    assert_eq!(a.len(), 1, "a warning, nothing else");
    o.advance(KA);
    assert!(warns(&o.ev(late(WARN + 2))).is_empty(), "same episode");
    o.ev(late(KA));
    assert_eq!(warns(&o.ev(late(WARN + 3))).len(), 1, "new episode");
    assert!(
        warns(&o.ev(Event::Late {
            node: 5,
            link: 0,
            gap_ns: DEAD
        }))
        .is_empty(),
        "unknown node"
    );
    assert!(
        Warning::LateHeartbeat {
            node: 1,
            link: 0,
            gap_ns: 3_500_000
        }
        .to_string()
        .contains("3.5 ms")
    );
}
