//! The stall rule: what a node does when it resumes from a stall longer than deadtime (SIGSTOP,
//! a VM pause), decided from what its peers say, not from the stall's length alone.
//!
//! Pauses of the whole machine stop every node at once; then no peer declared anyone dead (each
//! kernel timer that fires late looks again before it declares a death, hb-common's
//! `deadline`), and releasing would be a failover for nothing. A node stalled alone was
//! declared dead, and a peer may be taking its groups. The node cannot tell the two apart from
//! its own clock; its peers can. So:
//!
//! * The resumed node keeps what it holds but answers for none of it: its service lease lapsed
//!   during the silence and stays lapsed (the kernel drops traffic for its addresses and it
//!   sends no announcements) until this rule says otherwise. Its heartbeats carry a new
//!   `round` (non-zero).
//! * A peer that sees a new round answers it in its own heartbeats: an [`Ack`] for that node
//!   and round, saying whether it declared the node dead since its previous answer to it.
//! * The resumed node keeps its groups and renews its lease once every live peer has answered
//!   this round without having declared it dead, and none holds one of its groups. It releases
//!   everything (the hang rule, as before) as soon as one answers that it did, or holds one of
//!   its groups, or when no decision came within [`ROUND_TIMEOUT_DEADTIMES`].
//!
//! Why no two nodes ever answer for a group. The resumed node Q answers only with a running
//! lease, so only after a Keep. A peer P takes Q's group only after it declared Q dead (or Q
//! released it). P answers a round after processing every event before Q's heartbeat that
//! carried the round, which Q sent after its stall; the kernel reports a death before any later
//! heartbeat (one ring buffer, in order). So a death P declared during the stall is in its
//! answer, and Q releases. If P had declared none, P heard Q alive after the stall and can
//! declare Q dead again only after another deadtime of silence from Q; Q's lease, renewed with
//! each heartbeat to a deadtime after it, has lapsed by then (the argument the lease always
//! rests on). A peer Q believes dead is not asked: either it is dead, or it does not hear Q
//! either and the partition rules apply as without a stall. Peers' own stalls only delay their
//! answers; until every live peer has answered, Q stays fenced. Lost heartbeats only delay the
//! answer too: it stays in every heartbeat until Q's round ends.

use std::collections::{BTreeMap, BTreeSet};

use super::event::{Ack, Advert};
use super::spec::{MAX_ACKS, NodeId};

/// How long a resumed node waits for its peers' answers, in deadtimes, before it releases
/// everything as the hang rule did. A peer that died meanwhile is declared dead within about
/// a deadtime of the stall's end; then it is no longer waited for.
pub const ROUND_TIMEOUT_DEADTIMES: u64 = 2;

/// Our own wait after a stall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub round: u16,
    pub since: u64,
    /// How long the stall was.
    pub stall_ns: u64,
}

/// What our peers' answers say about our round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every live peer heard us after the stall and had not declared us dead.
    Keep,
    /// This peer declared us dead, or holds one of our groups: it may have taken over.
    Release { by: NodeId },
    /// Some live peer has not answered yet.
    Pending,
}

/// One live peer as the verdict needs it.
pub struct PeerView<'a> {
    pub node: NodeId,
    /// Its latest advert (None: none heard in its current incarnation).
    pub advert: Option<&'a Advert>,
    /// It claims to hold one of the groups we hold.
    pub holds_ours: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Rounds begun so far; the wire carries the low 16 bits, never 0.
    rounds: u16,
    waiting: Option<Waiting>,
    /// Peers we declared dead since our last answer to them.
    declared_dead: BTreeSet<NodeId>,
    /// Our answers in force: peer -> (its round, we had declared it dead).
    answers: BTreeMap<NodeId, (u16, bool)>,
}

impl Resume {
    /// We resumed from a stall: a new round.
    pub fn begin(&mut self, now: u64, stall_ns: u64) -> u16 {
        self.rounds = self.rounds.wrapping_add(1).max(1);
        self.waiting = Some(Waiting {
            round: self.rounds,
            since: now,
            stall_ns,
        });
        self.rounds
    }

    /// The round is decided (or given up).
    pub fn end(&mut self) -> Option<Waiting> {
        self.waiting.take()
    }

    pub fn waiting(&self) -> Option<Waiting> {
        self.waiting
    }

    /// What our heartbeats carry: our open round, 0 if none.
    pub fn round(&self) -> u16 {
        self.waiting.map_or(0, |w| w.round)
    }

    /// Membership declared the peer dead.
    pub fn declared_dead(&mut self, node: NodeId) {
        self.declared_dead.insert(node);
        self.answers.remove(&node);
    }

    /// The peer's agent restarted: its rounds start again, and what we declared of its
    /// previous incarnation is not news to the new one (any group we took from it shows in our
    /// claims, which its verdict looks at).
    pub fn restarted(&mut self, node: NodeId) {
        self.declared_dead.remove(&node);
        self.answers.remove(&node);
    }

    /// A peer's advert: answer a round we have not answered yet; forget one that ended.
    pub fn peer_round(&mut self, node: NodeId, round: u16) {
        if round == 0 {
            self.answers.remove(&node);
            return;
        }
        if self.answers.get(&node).is_some_and(|a| a.0 == round) {
            return;
        }
        let dead = self.declared_dead.remove(&node);
        self.answers.insert(node, (round, dead));
    }

    /// Our answers as heartbeats carry them (the first [`MAX_ACKS`]; more wait for a slot,
    /// which frees as soon as a peer's round ends).
    pub fn acks(&self) -> Vec<Ack> {
        self.answers
            .iter()
            .take(MAX_ACKS)
            .map(|(&node, &(round, declared_dead))| Ack {
                node,
                round,
                declared_dead,
            })
            .collect()
    }

    /// The verdict on our open round, from every live peer (`local`: us).
    pub fn verdict<'a>(
        &self,
        local: NodeId,
        live: impl IntoIterator<Item = PeerView<'a>>,
    ) -> Verdict {
        let Some(w) = self.waiting else {
            return Verdict::Keep;
        };
        let mut pending = false;
        for p in live {
            if p.holds_ours {
                return Verdict::Release { by: p.node };
            }
            let ack = p.advert.and_then(|a| {
                a.acks
                    .iter()
                    .find(|k| k.node == local && k.round == w.round)
            });
            match ack {
                Some(k) if k.declared_dead => return Verdict::Release { by: p.node },
                Some(_) => {}
                None => pending = true,
            }
        }
        if pending {
            Verdict::Pending
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(acks: &[Ack]) -> Advert {
        Advert {
            acks: acks.to_vec(),
            ..Default::default()
        }
    }

    fn ack(node: NodeId, round: u16, declared_dead: bool) -> Ack {
        Ack {
            node,
            round,
            declared_dead,
        }
    }

    fn view(node: NodeId, a: &Advert) -> PeerView<'_> {
        PeerView {
            node,
            advert: Some(a),
            holds_ours: false,
        }
    }

    #[test]
    fn keeps_once_every_live_peer_answered_alive() {
        let mut r = Resume::default();
        let round = r.begin(100, 50);
        assert_eq!(round, 1);
        let (a1, a2) = (advert(&[ack(0, round, false)]), advert(&[]));
        assert_eq!(r.verdict(0, [view(1, &a1), view(2, &a2)]), Verdict::Pending);
        let a2 = advert(&[ack(7, round, true), ack(0, round, false)]);
        assert_eq!(r.verdict(0, [view(1, &a1), view(2, &a2)]), Verdict::Keep);
        assert_eq!(r.verdict(0, []), Verdict::Keep, "nobody alive to ask");
    }

    #[test]
    fn releases_on_a_death_or_a_taken_group() {
        let mut r = Resume::default();
        let round = r.begin(100, 50);
        let dead = advert(&[ack(0, round, true)]);
        let fine = advert(&[ack(0, round, false)]);
        assert_eq!(
            r.verdict(0, [view(1, &fine), view(2, &dead)]),
            Verdict::Release { by: 2 }
        );
        let taken = PeerView {
            node: 1,
            advert: Some(&fine),
            holds_ours: true,
        };
        assert_eq!(r.verdict(0, [taken]), Verdict::Release { by: 1 });
    }

    #[test]
    fn an_answer_to_an_old_round_does_not_count() {
        let mut r = Resume::default();
        let first = r.begin(100, 50);
        r.end();
        let second = r.begin(200, 50);
        assert_ne!(first, second);
        let old = advert(&[ack(0, first, false)]);
        assert_eq!(r.verdict(0, [view(1, &old)]), Verdict::Pending);
    }

    #[test]
    fn peer_side_answers_each_round_once_with_deaths_since_the_last_answer() {
        let mut r = Resume::default();
        r.declared_dead(5);
        r.peer_round(5, 1);
        assert_eq!(r.acks(), [ack(5, 1, true)]);
        r.peer_round(5, 1);
        assert_eq!(r.acks(), [ack(5, 1, true)], "same round: same answer");
        r.peer_round(5, 0);
        assert!(r.acks().is_empty(), "its round ended");
        r.peer_round(5, 2);
        assert_eq!(
            r.acks(),
            [ack(5, 2, false)],
            "no death since the last answer"
        );
        r.declared_dead(5);
        assert!(r.acks().is_empty(), "a dead peer's round is void");
        r.restarted(5);
        r.peer_round(5, 1);
        assert_eq!(
            r.acks(),
            [ack(5, 1, false)],
            "a new incarnation starts clean"
        );
    }

    #[test]
    fn at_most_max_acks_answers_at_once() {
        let mut r = Resume::default();
        for n in 1..=5 {
            r.peer_round(n, 1);
        }
        assert_eq!(r.acks().len(), MAX_ACKS);
        let next = MAX_ACKS as NodeId + 1;
        assert!(!r.acks().iter().any(|a| a.node == next));
        r.peer_round(1, 0);
        assert!(r.acks().iter().any(|a| a.node == next), "a slot freed");
    }

    #[test]
    fn rounds_skip_zero_on_wrap() {
        let mut r = Resume {
            rounds: u16::MAX,
            ..Default::default()
        };
        assert_eq!(r.begin(0, 0), 1);
    }
}
