//! `kernel_event`: ring-buffer records (hb-common's events.rs, decoded by
//! hb-core's rules/kernel_event.rs), then on into the cluster logic.
//!
//! Input: a run of records; each is a length byte (records may be short or
//! long, as a corrupt ring buffer could hand over) and that many bytes.
//!
//! Asserts: `KernelEvent::decode` accepts exactly the records of at least
//! `EVENT_LEN` bytes with a known kind, and gives back each field as the
//! little-endian bytes at its `repr(C)` offset; the heartbeat state in it
//! survives the advert translation (`wire_to_advert`/`advert_to_wire`); the
//! cluster events it stands for (`kernel_to_cluster`), fed to node 0 of a
//! three-node cluster, never make the state machine act for a group it is
//! not configured for or break its per-node rules (see `sim::Checker`).
use hb_common::events::{self as ev, EVENT_LEN};
use hb_common::wire::{ACK_DECLARED_DEAD, ACK_VALID, Ack, Claim, ClusterState, MAX_ACKS, MAX_CLAIMS};
use hb_core::cluster::Cluster;
use hb_core::rules::convert::{advert_to_wire, kernel_to_cluster, wire_to_advert};
use hb_core::rules::{KernelEvent, KernelEventKind};

use crate::Bytes;
use crate::sim::{Checker, spec_for, three_node_groups};

fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn state_at(b: &[u8], o: usize) -> ClusterState {
    let mut s = ClusterState {
        count: b[o],
        held: b[o + 1],
        eligible: b[o + 2],
        ping_reachable: b[o + 3],
        flags: b[o + 4],
        stuck: b[o + 5],
        takeover: b[o + 6],
        serving: b[o + 7],
        claims: [Claim::default(); MAX_CLAIMS],
        round: rd32(b, o + 72),
        reserved: rd32(b, o + 76),
        acks: [Ack::default(); MAX_ACKS],
    };
    for (i, c) in s.claims.iter_mut().enumerate() {
        let at = o + 8 + i * 8;
        *c = Claim {
            group: rd32(b, at),
            epoch: rd32(b, at + 4),
        };
    }
    for (i, a) in s.acks.iter_mut().enumerate() {
        let at = o + 80 + i * 8;
        *a = Ack {
            node: rd32(b, at),
            round: u16::from_le_bytes([b[at + 4], b[at + 5]]),
            flags: u16::from_le_bytes([b[at + 6], b[at + 7]]),
        };
    }
    s
}

/// Only the first `count` claims and their bits mean anything.
fn meaningful(s: &ClusterState) -> ClusterState {
    let n = usize::from(s.count).min(MAX_CLAIMS);
    let mask = if n == 8 { 0xff } else { (1u8 << n) - 1 };
    let mut m = *s;
    m.count = n as u8;
    m.held &= mask;
    m.eligible &= mask;
    m.stuck &= mask;
    m.takeover &= mask;
    m.serving &= mask;
    // The flag bits the advert knows (STATE_STANDBY, STATE_SETTLING, ...).
    let all = ClusterState {
        flags: 0xff,
        ..Default::default()
    };
    m.flags &= advert_to_wire(&wire_to_advert(&all)).flags;
    for c in &mut m.claims[n..] {
        *c = Claim::default();
    }
    // The round as the advert keeps it (16 bits), the acks that hold an
    // answer, in order, with the flags the advert knows.
    m.round &= 0xffff;
    m.reserved = 0;
    let valid: Vec<Ack> = s
        .acks
        .iter()
        .filter(|a| a.flags & ACK_VALID != 0)
        .map(|a| Ack {
            flags: a.flags & (ACK_VALID | ACK_DECLARED_DEAD),
            ..*a
        })
        .collect();
    m.acks = [Ack::default(); MAX_ACKS];
    m.acks[..valid.len()].copy_from_slice(&valid);
    m
}

pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let groups = three_node_groups(b.u8());
    let spec = spec_for(0, &groups, b.u8());
    let mut cluster = Cluster::new(spec.clone(), 0);
    let mut check = Checker::new(spec);
    let mut now = 0u64;
    check.deliver(&mut cluster, hb_core::cluster::Event::Start, now);
    while !b.is_empty() {
        let len = usize::from(b.u8());
        // Mostly whole records: a length byte of 0x80.. means EVENT_LEN.
        let len = if len >= 0x80 { EVENT_LEN } else { len * 2 };
        let mut raw = Vec::with_capacity(len);
        for _ in 0..len {
            raw.push(b.u8());
        }
        let got = KernelEvent::decode(&raw);
        if raw.len() < EVENT_LEN {
            assert_eq!(got, None, "short record accepted");
            continue;
        }
        let kind = match rd32(&raw, 0) {
            ev::EV_FIRST_HEARD => KernelEventKind::FirstHeard,
            ev::EV_DEAD => KernelEventKind::Dead,
            ev::EV_ALIVE_AGAIN => KernelEventKind::AliveAgain,
            ev::EV_RESTARTED => KernelEventKind::Restarted {
                old_incarnation: rd64(&raw, 48),
            },
            ev::EV_LATE => KernelEventKind::Late {
                gap_ns: rd64(&raw, 48),
            },
            ev::EV_STATE => KernelEventKind::State,
            _ => {
                assert_eq!(got, None, "unknown kind accepted");
                continue;
            }
        };
        let want = KernelEvent {
            kind,
            node_id: rd32(&raw, 4),
            ifindex: rd32(&raw, 8),
            ts_ns: rd64(&raw, 16),
            last_seen_ns: rd64(&raw, 24),
            incarnation: rd64(&raw, 32),
            seq: rd64(&raw, 40),
            state: state_at(&raw, 56),
        };
        assert_eq!(got, Some(want), "decoded fields");
        let e = want;

        let advert = wire_to_advert(&e.state);
        assert_eq!(
            advert_to_wire(&advert),
            meaningful(&e.state),
            "wire state through the advert"
        );
        assert_eq!(wire_to_advert(&advert_to_wire(&advert)), advert);

        // Node ids 0..3 are the cluster's (others must be ignored); time
        // moves by the low bits of ts_ns.
        let mut e = e;
        e.node_id %= 5;
        now += e.ts_ns % 4_000_000;
        for cev in kernel_to_cluster(&e) {
            check.deliver(&mut cluster, cev, now);
        }
        for done in check.completions() {
            check.deliver(&mut cluster, done, now);
        }
        check.deliver(&mut cluster, hb_core::cluster::Event::Tick, now);
    }
}
