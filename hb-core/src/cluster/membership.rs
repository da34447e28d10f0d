//! Per (node, link) liveness as the kernel reports it, aggregated to node level.
//!
//! A peer is alive while it is alive on ANY link, and dead only when every link it was heard on
//! is dead. Only the transitions of the aggregate are reported ([`Transition`]), so a flapping
//! link next to a healthy one is invisible to the state machine.
//!
//! It also keeps late-heartbeat episodes: [`Membership::late`] says when a late heartbeat is
//! worth a warning (once per peer per episode).

use std::collections::BTreeMap;

use super::spec::NodeId;

/// The pseudo link used for node-level `PeerUp` events.
pub const NODE_LINK: u32 = u32::MAX;

/// A node-level liveness change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Up(NodeId),
    Dead(NodeId),
}

#[derive(Clone, Debug, Default)]
struct PeerLinks {
    /// link -> alive.
    links: BTreeMap<u32, bool>,
    /// A warning was given in the current late episode.
    late_warned: bool,
    /// When the last late (> warntime) heartbeat was reported.
    last_late: u64,
}

impl PeerLinks {
    fn alive(&self) -> bool {
        self.links.values().any(|&a| a)
    }
}

/// Link-level liveness of every peer.
#[derive(Clone, Debug, Default)]
pub struct Membership {
    peers: BTreeMap<NodeId, PeerLinks>,
}

impl Membership {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&mut self, node: NodeId, f: impl FnOnce(&mut PeerLinks)) -> Option<Transition> {
        let p = self.peers.entry(node).or_default();
        let before = p.alive();
        f(p);
        let after = p.alive();
        if before == after {
            return None;
        }
        // A liveness change ends any late episode.
        p.late_warned = false;
        Some(if after {
            Transition::Up(node)
        } else {
            Transition::Dead(node)
        })
    }

    /// The peer was heard on `link`.
    pub fn link_up(&mut self, node: NodeId, link: u32) -> Option<Transition> {
        self.set(node, |p| {
            p.links.insert(link, true);
        })
    }

    /// The peer was silent on `link` for deadtime.
    pub fn link_dead(&mut self, node: NodeId, link: u32) -> Option<Transition> {
        self.set(node, |p| {
            p.links.insert(link, false);
        })
    }

    /// Node-level "alive" (a shell that aggregates itself): counts as the pseudo link
    /// [`NODE_LINK`].
    pub fn node_up(&mut self, node: NodeId) -> Option<Transition> {
        self.link_up(node, NODE_LINK)
    }

    /// Node-level "dead": every link of the node is dead.
    pub fn node_dead(&mut self, node: NodeId) -> Option<Transition> {
        self.set(node, |p| p.links.values_mut().for_each(|a| *a = false))
    }

    pub fn is_alive(&self, node: NodeId) -> bool {
        self.peers.get(&node).is_some_and(PeerLinks::alive)
    }

    /// The links the peer was heard on, with their state.
    pub fn links(&self, node: NodeId) -> Vec<(u32, bool)> {
        self.peers
            .get(&node)
            .map(|p| p.links.iter().map(|(&l, &a)| (l, a)).collect())
            .unwrap_or_default()
    }

    /// A heartbeat from `node` came `gap_ns` after the previous one. Returns true when it should
    /// be warned about: it is later than `warntime_ns` and no warning was given in the current
    /// episode. An episode ends when the peer is punctual again (a gap within warntime is
    /// reported), when no late heartbeat was reported for `deadtime_ns`, or when the peer's
    /// liveness changes.
    pub fn late(
        &mut self,
        node: NodeId,
        gap_ns: u64,
        warntime_ns: u64,
        deadtime_ns: u64,
        now: u64,
    ) -> bool {
        let p = self.peers.entry(node).or_default();
        if gap_ns <= warntime_ns {
            p.late_warned = false;
            return false;
        }
        let fresh_episode = !p.late_warned || now.saturating_sub(p.last_late) >= deadtime_ns;
        p.last_late = now;
        if fresh_episode {
            p.late_warned = true;
        }
        fresh_episode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_on_any_link_dead_on_all() {
        let mut m = Membership::new();
        assert_eq!(m.link_up(1, 0), Some(Transition::Up(1)));
        assert_eq!(m.link_up(1, 1), None);
        assert!(m.is_alive(1));
        assert_eq!(m.link_dead(1, 0), None, "still alive on link 1");
        assert!(m.is_alive(1));
        assert_eq!(m.link_up(1, 0), None);
        assert_eq!(m.link_dead(1, 1), None);
        assert_eq!(m.link_dead(1, 0), Some(Transition::Dead(1)));
        assert!(!m.is_alive(1));
        assert_eq!(m.link_dead(1, 0), None, "no repeated transition");
        assert_eq!(m.link_up(1, 1), Some(Transition::Up(1)));
        assert_eq!(m.links(1), vec![(0, false), (1, true)]);
        assert!(!m.is_alive(2), "never heard = not alive");
        assert_eq!(
            m.link_dead(2, 0),
            None,
            "dead on a link never heard: no transition"
        );
    }

    #[test]
    fn node_level_events() {
        let mut m = Membership::new();
        assert_eq!(m.node_up(3), Some(Transition::Up(3)));
        assert_eq!(m.link_up(3, 0), None);
        assert_eq!(m.node_dead(3), Some(Transition::Dead(3)));
        assert_eq!(m.links(3), vec![(0, false), (NODE_LINK, false)]);
        assert_eq!(m.link_up(3, 0), Some(Transition::Up(3)));
    }

    #[test]
    fn late_warns_once_per_episode() {
        let mut m = Membership::new();
        m.link_up(1, 0);
        let (warn, dead) = (30, 100);
        assert!(!m.late(1, 20, warn, dead, 1_000), "within warntime");
        assert!(m.late(1, 40, warn, dead, 1_010));
        assert!(!m.late(1, 45, warn, dead, 1_050), "same episode");
        assert!(
            !m.late(1, 45, warn, dead, 1_140),
            "still within deadtime of the last late one"
        );
        assert!(
            m.late(1, 45, warn, dead, 1_240),
            "quiet for deadtime: new episode"
        );
        assert!(
            !m.late(1, 10, warn, dead, 1_250),
            "punctual: ends the episode"
        );
        assert!(m.late(1, 50, warn, dead, 1_260), "new episode");
        m.link_dead(1, 0);
        m.link_up(1, 0);
        assert!(
            m.late(1, 50, warn, dead, 1_270),
            "liveness change ends the episode"
        );
        assert!(m.late(2, 50, warn, dead, 1_270), "episodes are per peer");
    }
}
