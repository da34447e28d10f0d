//! The XDP program on crafted packets through BPF_PROG_TEST_RUN: each test
//! asserts the verdict and the map/counter change it causes.

use hb_agent::{kernel::KernelEventKind, sender::clock};
use hb_common::{
    events as ev,
    maps::{STATUS_ALIVE, STATUS_DEAD, counter},
    wire::{Claim, OFF_STATE, OFF_TAG, OFF_VERSION, PACKET_LEN},
};
use hb_tests::{
    kernel::*,
    packets::{Frame, L3, arp_frame, arp_request_for, neighbour_solicitation_for, to_addr},
};

fn hb_frame(inc: u64, seq: u64) -> Vec<u8> {
    Frame::udp(L3::V4, PORT, &heartbeat(inc, seq)).build()
}

fn only_changed(before: &[u64], after: &[u64], idx: u32, by: u64) {
    for i in 0..before.len() {
        let want = before[i] + if i as u32 == idx { by } else { 0 };
        assert_eq!(after[i], want, "counter {} ", counter::NAMES[i]);
    }
}

#[tokio::test]
async fn valid_heartbeat_is_accounted_and_consumed() {
    let mut t = TestKernel::new();
    let c0 = t.counters();
    assert_eq!(t.run(&hb_frame(5, 1)), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::ACCEPTED, 1);
    let s = t.peer().expect("peer entry created");
    assert_eq!(
        (s.received, s.last_seq, s.incarnation, s.status),
        (1, 1, 5, STATUS_ALIVE)
    );
    assert_eq!(s.ifindex, LO);
    assert_eq!(s.deadtime_ns, DEADTIME_NS);
    let evs = t.events.try_drain();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].kind, KernelEventKind::FirstHeard);
    assert_eq!(evs[0].node_id, PEER);
}

#[tokio::test]
async fn pass_flag_lets_heartbeats_through_after_accounting() {
    let mut t = TestKernel::new();
    t.k.set_config(hb_common::maps::KernelConfig {
        cluster_id: CLUSTER,
        udp_port: PORT,
        flags: hb_common::maps::CFG_PASS_HEARTBEATS,
        k0: KEY.0,
        k1: KEY.1,
    })
    .unwrap();
    assert_eq!(t.run(&hb_frame(5, 1)), XDP_PASS);
    assert_eq!(t.counters()[counter::ACCEPTED as usize], 1);
}

#[tokio::test]
async fn forged_tag_is_dropped_and_counted() {
    let t = TestKernel::new();
    let mut p = heartbeat(5, 1);
    p[OFF_TAG] ^= 1;
    let c0 = t.counters();
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::BAD_TAG, 1);
    assert!(
        t.peer().is_none(),
        "a forged heartbeat must not create state"
    );
}

#[tokio::test]
async fn forged_body_with_valid_looking_header_is_rejected() {
    let t = TestKernel::new();
    let p = heartbeat_with(|h| h.state.ping_reachable = 9, 5, 1);
    let mut q = p.clone();
    q[OFF_STATE + 3] = 1; // change ping_reachable without re-signing
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &q).build()), XDP_DROP);
    assert_eq!(t.counters()[counter::BAD_TAG as usize], 1);
}

/// The kernel resumes a verified peer's tag from a cached state after its
/// first words (all but seq and send time); that cache must never let a
/// wrong tag through, nor outlive the key it was computed under.
#[tokio::test]
async fn cached_tag_prefix_passes_nothing_the_full_tag_would_not() {
    let t = TestKernel::new();
    assert_eq!(t.run(&hb_frame(5, 1)), XDP_DROP);
    assert_eq!(t.counters()[counter::ACCEPTED as usize], 1);
    // Same first words as the cached ones, body changed without re-signing.
    let mut p = heartbeat_with(|h| h.state.ping_reachable = 1, 5, 2);
    p[OFF_STATE + 3] = 2;
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    // Same first words, tag flipped.
    let mut p = heartbeat(5, 3);
    p[OFF_TAG + 7] ^= 0x80;
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    assert_eq!(t.counters()[counter::BAD_TAG as usize], 2);
    // Signed right: accepted from the cache.
    assert_eq!(t.run(&hb_frame(5, 4)), XDP_DROP);
    assert_eq!(t.counters()[counter::ACCEPTED as usize], 2);
}

#[tokio::test]
async fn a_new_key_rejects_the_old_one_despite_the_tag_cache() {
    let mut t = TestKernel::new();
    assert_eq!(t.run(&hb_frame(5, 1)), XDP_DROP);
    let new_key = (KEY.0 ^ 0x5a5a, KEY.1.rotate_left(7));
    t.k.set_config(hb_common::maps::KernelConfig {
        cluster_id: CLUSTER,
        udp_port: PORT,
        flags: 0,
        k0: new_key.0,
        k1: new_key.1,
    })
    .unwrap();
    let c0 = t.counters();
    // Old key, same first words as the cached state.
    assert_eq!(t.run(&hb_frame(5, 2)), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::BAD_TAG, 1);
    // New key.
    let mut hb = hb_common::wire::Heartbeat::decode(KEY.0, KEY.1, &heartbeat(5, 3)).unwrap();
    hb.seq = 3;
    let p = hb.encode(new_key.0, new_key.1);
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    assert_eq!(t.counters()[counter::ACCEPTED as usize], 2);
    // And the old key again, now that the new key's state is cached.
    assert_eq!(t.run(&hb_frame(5, 4)), XDP_DROP);
    assert_eq!(t.counters()[counter::BAD_TAG as usize], 2);
    assert_eq!(t.peer().unwrap().last_seq, 3);
}

#[tokio::test]
async fn replayed_heartbeat_is_dropped() {
    let t = TestKernel::new();
    assert_eq!(t.run(&hb_frame(5, 10)), XDP_DROP);
    let c0 = t.counters();
    assert_eq!(t.run(&hb_frame(5, 10)), XDP_DROP);
    assert_eq!(t.run(&hb_frame(5, 9)), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::REPLAY, 2);
    assert_eq!(t.peer().unwrap().received, 1);
}

#[tokio::test]
async fn old_incarnation_is_dropped_new_one_is_a_restart() {
    let mut t = TestKernel::new();
    assert_eq!(t.run(&hb_frame(5, 10)), XDP_DROP);
    let c0 = t.counters();
    assert_eq!(t.run(&hb_frame(4, 11)), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::OLD_INCARNATION, 1);
    // A restarted peer starts its sequence again.
    assert_eq!(t.run(&hb_frame(6, 1)), XDP_DROP);
    let s = t.peer().unwrap();
    assert_eq!(
        (s.incarnation, s.last_seq, s.incarnation_changes, s.lost),
        (6, 1, 1, 0)
    );
    let kinds: Vec<_> = t.events.try_drain().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            KernelEventKind::FirstHeard,
            KernelEventKind::Restarted { old_incarnation: 5 }
        ]
    );
}

#[tokio::test]
async fn sequence_gaps_count_as_lost() {
    let t = TestKernel::new();
    t.run(&hb_frame(5, 1));
    t.run(&hb_frame(5, 2));
    t.run(&hb_frame(5, 6));
    let s = t.peer().unwrap();
    assert_eq!((s.received, s.lost, s.last_seq), (3, 3, 6));
}

#[tokio::test]
async fn unknown_peer_wrong_cluster_bad_version() {
    let t = TestKernel::new();
    let c0 = t.counters();
    let p = heartbeat_with(|h| h.node_id = 0x9999, 5, 1);
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::UNKNOWN_PEER, 1);

    let c0 = t.counters();
    let p = heartbeat_with(|h| h.cluster_id = CLUSTER + 1, 5, 1);
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::WRONG_CLUSTER, 1);

    let c0 = t.counters();
    let mut p = heartbeat(5, 1);
    p[OFF_VERSION] = 9;
    assert_eq!(t.run(&Frame::udp(L3::V4, PORT, &p).build()), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::BAD_VERSION, 1);
    assert!(t.peer().is_none());
}

#[tokio::test]
async fn truncated_at_every_header_boundary_passes_untouched() {
    let t = TestKernel::new();
    for vlan in [None, Some(7)] {
        for l3 in [L3::V4, L3::V6] {
            let mut f = Frame::udp(l3, PORT, &heartbeat(5, 1));
            f.vlan = vlan;
            let full = f.build();
            let bounds = f.header_boundaries();
            let (udp_end, inner) = bounds.split_last().unwrap();
            for &cut in inner {
                // BPF_PROG_TEST_RUN needs at least an Ethernet header.
                let cut = cut.max(14);
                let c0 = t.counters();
                assert_eq!(
                    t.run(&full[..cut]),
                    XDP_PASS,
                    "{l3:?} vlan {vlan:?} cut at {cut}"
                );
                assert_eq!(t.counters(), c0, "{l3:?} vlan {vlan:?} cut at {cut}");
            }
            // Whole UDP header, no payload: not recognisably ours, passed on
            // and counted as foreign traffic on our port.
            let c0 = t.counters();
            assert_eq!(t.run(&full[..*udp_end]), XDP_PASS);
            only_changed(&c0, &t.counters(), counter::FOREIGN, 1);
        }
    }
    assert!(t.peer().is_none());
}

#[tokio::test]
async fn truncated_heartbeat_payload_is_malformed() {
    let t = TestKernel::new();
    let p = heartbeat(5, 1);
    for n in [4, 47, 120, PACKET_LEN - 1] {
        let c0 = t.counters();
        assert_eq!(
            t.run(&Frame::udp(L3::V4, PORT, &p[..n]).build()),
            XDP_DROP,
            "len {n}"
        );
        only_changed(&c0, &t.counters(), counter::MALFORMED, 1);
    }
    assert!(t.peer().is_none());
}

#[tokio::test]
async fn wrong_port_passes_without_accounting() {
    let t = TestKernel::new();
    let c0 = t.counters();
    assert_eq!(
        t.run(&Frame::udp(L3::V4, 695, &heartbeat(5, 1)).build()),
        XDP_PASS
    );
    assert_eq!(t.counters(), c0);
    assert!(t.peer().is_none());
}

#[tokio::test]
async fn vlan_and_ipv6_heartbeats_are_accepted() {
    let t = TestKernel::new();
    let frames = [
        Frame::udp(L3::V4, PORT, &heartbeat(5, 1)).vlan(100),
        Frame::udp(L3::V6, PORT, &heartbeat(5, 2)),
        Frame::udp(L3::V6, PORT, &heartbeat(5, 3)).vlan(4094),
    ];
    for f in &frames {
        assert_eq!(t.run(&f.build()), XDP_DROP, "{f:?}");
    }
    assert_eq!(t.counters()[counter::ACCEPTED as usize], 3);
    assert_eq!(t.peer().unwrap().received, 3);
}

#[tokio::test]
async fn other_traffic_passes() {
    let t = TestKernel::new();
    let c0 = t.counters();
    assert_eq!(t.run(&arp_frame()), XDP_PASS);
    assert_eq!(t.run(&Frame::udp(L3::V4, 53, b"dns?").build()), XDP_PASS);
    assert_eq!(
        t.run(&Frame::udp(L3::V6, 80, &[0u8; 200]).build()),
        XDP_PASS
    );
    assert_eq!(t.counters(), c0, "pass-through traffic is not counted");
    // UDP to our port that is not ours (e.g. a legacy Heartbeat node).
    assert_eq!(
        t.run(&Frame::udp(L3::V4, PORT, &[b'x'; 200]).build()),
        XDP_PASS
    );
    only_changed(&c0, &t.counters(), counter::FOREIGN, 1);
}

#[tokio::test]
async fn state_changes_raise_events_and_late_heartbeats_warn() {
    let mut t = TestKernel::new();
    t.run(&hb_frame(5, 1));
    let mut claim = Claim {
        group: 77,
        epoch: 3,
    };
    let with_claim = |seq, c: Claim| {
        let p = heartbeat_with(
            |h| {
                h.state.count = 1;
                h.state.held = 1;
                h.state.claims[0] = c;
            },
            5,
            seq,
        );
        Frame::udp(L3::V4, PORT, &p).build()
    };
    t.run(&with_claim(2, claim));
    t.run(&with_claim(3, claim)); // same state: no event
    claim.epoch = 4;
    std::thread::sleep(std::time::Duration::from_nanos(WARNTIME_NS + 1_000_000));
    t.run(&with_claim(4, claim));
    let evs = t.events.try_drain();
    let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
    assert_eq!(kinds[0], KernelEventKind::FirstHeard);
    assert_eq!(kinds[1], KernelEventKind::State);
    assert_eq!(
        evs[1].state.claims[0],
        Claim {
            group: 77,
            epoch: 3
        }
    );
    assert!(matches!(kinds[2], KernelEventKind::Late { gap_ns } if gap_ns > WARNTIME_NS));
    assert_eq!(kinds[3], KernelEventKind::State);
    assert_eq!(kinds.len(), 4);
    assert_eq!(t.peer().unwrap().late, 1);
}

#[tokio::test]
async fn deadline_decision_via_test_path() {
    let mut t = TestKernel::new();
    t.run(&hb_frame(5, 1));
    let seen = t.peer().unwrap().last_seen_ns;
    assert_eq!(
        t.probe_deadline(seen + DEADTIME_NS - 1),
        XDP_PASS,
        "not yet dead: re-arm"
    );
    assert_eq!(t.peer().unwrap().status, STATUS_ALIVE);
    assert_eq!(
        t.probe_deadline(seen + DEADTIME_NS),
        XDP_DROP,
        "dead at deadtime"
    );
    let s = t.peer().unwrap();
    assert_eq!((s.status, s.deaths), (STATUS_DEAD, 1));
    let evs = t.events.try_drain();
    assert_eq!(evs.last().unwrap().kind, KernelEventKind::Dead);
    // Declared once only.
    assert_eq!(t.probe_deadline(seen + 2 * DEADTIME_NS), XDP_DROP);
    assert_eq!(t.peer().unwrap().deaths, 1);
    assert_eq!(t.probe_deadline(0).min(1), 1);
    // Back.
    t.run(&hb_frame(5, 2));
    assert_eq!(t.peer().unwrap().status, STATUS_ALIVE);
    let evs = t.events.try_drain();
    assert!(evs.iter().any(|e| e.kind == KernelEventKind::AliveAgain));
    let _ = ev::EV_DEAD;
}

#[tokio::test]
async fn real_bpf_timer_declares_a_silent_peer_dead() {
    let mut t = TestKernel::new();
    t.run(&hb_frame(5, 1));
    // Keep it alive past several deadtimes, then stop.
    for seq in 2..8 {
        std::thread::sleep(std::time::Duration::from_nanos(DEADTIME_NS / 2));
        t.run(&hb_frame(5, seq));
    }
    assert_eq!(
        t.peer().unwrap().status,
        STATUS_ALIVE,
        "heard every deadtime/2: alive"
    );
    let stopped = hb_agent::sender::clock::now_ns();
    let evs = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let b = t.events.next_batch().await.unwrap();
            if b.iter().any(|e| e.kind == KernelEventKind::Dead) {
                return b;
            }
        }
    })
    .await
    .expect("the kernel timer must report the peer dead");
    let dead = evs
        .iter()
        .find(|e| e.kind == KernelEventKind::Dead)
        .unwrap();
    let after = dead.ts_ns - dead.last_seen_ns;
    assert!(after >= DEADTIME_NS, "not before deadtime: {after} ns");
    assert!(dead.ts_ns >= stopped);
    assert_eq!(t.peer().unwrap().status, STATUS_DEAD);
}

#[tokio::test]
async fn a_late_timer_looks_again_before_declaring_dead() {
    let t = TestKernel::new();
    t.run(&hb_frame(5, 1));
    let seen = t.peer().unwrap().last_seen_ns;
    let slack = hb_common::deadline::slack(DEADTIME_NS);
    // Fired more than a slack past its due time: this machine stalled and
    // the peer's heartbeats of that time may still be queued.
    assert_eq!(
        t.probe_deadline(seen + DEADTIME_NS + slack + 1),
        XDP_PASS,
        "a late timer looks again"
    );
    let s = t.peer().unwrap();
    assert_eq!((s.status, s.graced), (STATUS_ALIVE, 1));
    // A queued heartbeat arrives meanwhile: alive, the grace is over.
    t.run(&hb_frame(5, 2));
    let seen = t.peer().unwrap().last_seen_ns;
    assert_eq!(t.probe_deadline(seen + 1), XDP_PASS);
    assert_eq!(t.peer().unwrap().graced, 0);
    // Late again and still silent a slack later: dead, once.
    assert_eq!(t.probe_deadline(seen + DEADTIME_NS + slack + 1), XDP_PASS);
    assert_eq!(
        t.probe_deadline(seen + DEADTIME_NS + 2 * slack + 2),
        XDP_DROP,
        "silent after the second look: dead"
    );
    let s = t.peer().unwrap();
    assert_eq!((s.status, s.deaths, s.graced), (STATUS_DEAD, 1, 0));
}

// ----- the service lease guard -----

const VIP4: &str = "192.168.32.21";
const VIP6: &str = "fd00::21";

fn guarded(lease_until: u64) -> TestKernel {
    let mut t = TestKernel::new();
    let mut g = hb_common::maps::GuardConfig {
        v4_count: 1,
        v6_count: 1,
        ..Default::default()
    };
    g.v4[0] = u32::from_ne_bytes(VIP4.parse::<std::net::Ipv4Addr>().unwrap().octets());
    g.v6[0] = VIP6.parse::<std::net::Ipv6Addr>().unwrap().octets();
    t.k.set_guard(g).unwrap();
    t.k.lease_writer().unwrap().set(lease_until).unwrap();
    t
}

/// Service traffic of every kind the guard knows: IPv4 to the VIP, ARP for
/// it, IPv6 to it, neighbour solicitation for it.
fn service_frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "ipv4",
            to_addr(Frame::udp(L3::V4, 80, b"x").build(), VIP4.parse().unwrap()),
        ),
        ("arp", arp_request_for(VIP4.parse().unwrap())),
        (
            "ipv6",
            to_addr(Frame::udp(L3::V6, 80, b"x").build(), VIP6.parse().unwrap()),
        ),
        ("nd", neighbour_solicitation_for(VIP6.parse().unwrap())),
    ]
}

#[tokio::test]
async fn guard_passes_service_traffic_while_the_lease_runs() {
    let t = guarded(clock::now_ns() + 10_000_000_000);
    let c0 = t.counters();
    for (what, f) in service_frames() {
        assert_eq!(t.run(&f), XDP_PASS, "{what}");
    }
    assert_eq!(c0, t.counters());
}

#[tokio::test]
async fn guard_drops_service_traffic_once_the_lease_lapsed() {
    let t = guarded(clock::now_ns() - 1);
    for (what, f) in service_frames() {
        let c0 = t.counters();
        assert_eq!(t.run(&f), XDP_DROP, "{what}");
        only_changed(&c0, &t.counters(), counter::LEASE_EXPIRED, 1);
    }
    // Other addresses and the node's own traffic are not fenced ...
    let c0 = t.counters();
    let other = to_addr(
        Frame::udp(L3::V4, 80, b"x").build(),
        "192.168.32.30".parse().unwrap(),
    );
    assert_eq!(t.run(&other), XDP_PASS);
    assert_eq!(t.run(&arp_frame()), XDP_PASS);
    assert_eq!(c0, t.counters());
    // ... and heartbeats still count: the lease fences service, not liveness.
    assert_eq!(t.run(&hb_frame(5, 1)), XDP_DROP);
    only_changed(&c0, &t.counters(), counter::ACCEPTED, 1);
}

#[tokio::test]
async fn guard_without_addresses_fences_nothing() {
    let mut t = guarded(1);
    t.k.set_guard(Default::default()).unwrap();
    for (what, f) in service_frames() {
        assert_eq!(t.run(&f), XDP_PASS, "{what}");
    }
}

#[tokio::test]
async fn withdrawn_addresses_are_dropped_while_the_lease_runs() {
    let t = guarded(clock::now_ns() + 10_000_000_000);
    let mut w = t.k.withdrawn_writer().unwrap();
    // Bit 0: v4[0]; bit 16: v6[0] (hb_common::maps::WITHDRAWN_V6_SHIFT).
    w.set(1).unwrap();
    let frames = service_frames();
    for (what, f) in &frames {
        let c0 = t.counters();
        let v4 = matches!(*what, "ipv4" | "arp");
        let want = if v4 { XDP_DROP } else { XDP_PASS };
        assert_eq!(t.run(f), want, "{what} with only the IPv4 VIP withdrawn");
        if v4 {
            only_changed(&c0, &t.counters(), counter::WITHDRAWN, 1);
        } else {
            assert_eq!(c0, t.counters(), "{what}");
        }
    }
    w.set(1 << hb_common::maps::WITHDRAWN_V6_SHIFT).unwrap();
    for (what, f) in &frames {
        let v6 = matches!(*what, "ipv6" | "nd");
        let want = if v6 { XDP_DROP } else { XDP_PASS };
        assert_eq!(t.run(f), want, "{what} with only the IPv6 VIP withdrawn");
    }
    // Restored: everything answers again.
    w.set(0).unwrap();
    for (what, f) in &frames {
        assert_eq!(t.run(f), XDP_PASS, "{what} restored");
    }
}

/// The verifier's work for the heartbeat program, with headroom under its
/// limit of 1,000,000 instructions (181k for wire version 2): a change that
/// multiplies the paths through the program shows here first.
#[tokio::test]
async fn the_program_verifies_with_headroom() {
    let t = TestKernel::new();
    let p = t.k.program("hb_xdp").unwrap();
    let n = p.info().unwrap().verified_instruction_count();
    eprintln!("hb_xdp: {n:?} instructions verified");
    assert!(n.is_some_and(|n| n < 500_000), "{n:?}");
}
