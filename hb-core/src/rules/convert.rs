//! Translations between the wire/kernel world and the cluster logic.

use hb_common::wire::{
    self, ACK_DECLARED_DEAD, ACK_VALID, Claim, ClusterState, MAX_ACKS, MAX_CLAIMS, STATE_DAMPED,
    STATE_SETTLING, STATE_STANDBY,
};

use super::{KernelEvent, KernelEventKind};
use crate::cluster::{Ack, Advert, Event, GroupClaim};

const _: () = assert!(MAX_ACKS == crate::cluster::MAX_ACKS);

/// The cluster logic's advert as heartbeats carry it. At most MAX_CLAIMS
/// groups per node (`check` refuses more).
pub fn advert_to_wire(a: &Advert) -> ClusterState {
    let mut st = ClusterState {
        ping_reachable: a.ping_reachable,
        flags: if a.standby { STATE_STANDBY } else { 0 }
            | if a.settling { STATE_SETTLING } else { 0 }
            | if a.damped { STATE_DAMPED } else { 0 },
        ..Default::default()
    };
    for (i, c) in a.claims.iter().take(MAX_CLAIMS).enumerate() {
        st.claims[i] = Claim {
            group: c.group,
            epoch: c.epoch,
        };
        let bit = 1u8 << i;
        st.held |= if c.held { bit } else { 0 };
        st.eligible |= if c.eligible { bit } else { 0 };
        st.stuck |= if c.stuck { bit } else { 0 };
        st.takeover |= if c.takeover { bit } else { 0 };
        st.serving |= if c.serving { bit } else { 0 };
        st.count += 1;
    }
    st.round = u32::from(a.round);
    for (slot, k) in st.acks.iter_mut().zip(&a.acks) {
        *slot = wire::Ack {
            node: k.node,
            round: k.round,
            flags: ACK_VALID
                | if k.declared_dead {
                    ACK_DECLARED_DEAD
                } else {
                    0
                },
        };
    }
    st
}

pub fn wire_to_advert(st: &ClusterState) -> Advert {
    let n = (st.count as usize).min(MAX_CLAIMS);
    Advert {
        claims: (0..n)
            .map(|i| {
                let bit = 1u8 << i;
                GroupClaim {
                    group: st.claims[i].group,
                    epoch: st.claims[i].epoch,
                    held: st.held & bit != 0,
                    eligible: st.eligible & bit != 0,
                    stuck: st.stuck & bit != 0,
                    takeover: st.takeover & bit != 0,
                    serving: st.serving & bit != 0,
                }
            })
            .collect(),
        ping_reachable: st.ping_reachable,
        standby: st.flags & STATE_STANDBY != 0,
        settling: st.flags & STATE_SETTLING != 0,
        damped: st.flags & STATE_DAMPED != 0,
        round: st.round as u16,
        acks: st
            .acks
            .iter()
            .filter(|k| k.flags & ACK_VALID != 0)
            .map(|k| Ack {
                node: k.node,
                round: k.round,
                declared_dead: k.flags & ACK_DECLARED_DEAD != 0,
            })
            .collect(),
    }
}

/// The cluster events one kernel event stands for, in order.
pub fn kernel_to_cluster(e: &KernelEvent) -> Vec<Event> {
    let node = e.node_id;
    let link = e.ifindex;
    let advert = || Event::PeerAdvert {
        node,
        advert: wire_to_advert(&e.state),
    };
    match e.kind {
        KernelEventKind::FirstHeard | KernelEventKind::AliveAgain => {
            // The cluster logic wants a packet's LinkUp before its advert.
            vec![Event::LinkUp { node, link }, advert()]
        }
        KernelEventKind::Dead => vec![Event::LinkDead { node, link }],
        KernelEventKind::Restarted { .. } => vec![Event::PeerRestarted { node }, advert()],
        KernelEventKind::Late { gap_ns } => vec![Event::Late { node, link, gap_ns }],
        KernelEventKind::State => vec![advert()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_round_trips_through_the_wire_state() {
        let a = Advert {
            claims: vec![
                GroupClaim {
                    group: 7,
                    epoch: 3,
                    held: true,
                    eligible: true,
                    stuck: false,
                    takeover: false,
                    serving: true,
                },
                GroupClaim {
                    group: 9,
                    epoch: 1,
                    held: false,
                    eligible: false,
                    stuck: true,
                    takeover: true,
                    serving: false,
                },
            ],
            ping_reachable: 2,
            standby: true,
            settling: true,
            damped: true,
            round: 7,
            acks: vec![
                Ack {
                    node: 3,
                    round: 2,
                    declared_dead: false,
                },
                Ack {
                    node: 0,
                    round: 9,
                    declared_dead: true,
                },
            ],
        };
        assert_eq!(wire_to_advert(&advert_to_wire(&a)), a);
    }
}
