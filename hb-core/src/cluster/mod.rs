//! Pure cluster decision logic: events in, actions out.
//!
//! No sockets, no clock, no threads, no randomness: time comes in as `now` (monotonic
//! nanoseconds) with every event, so every scenario of the seed (and the nasty ones) is a fast,
//! deterministic unit test. The shell around it (kernel ring buffer, heartbeat sender, resource
//! scripts, fencing command, control socket) turns the world into [`Event`]s and executes the
//! [`Action`]s.
//!
//! ```text
//!  kernel ring buffer ── LinkUp/LinkDead/Late ──► Membership ──(node up/dead)──┐
//!  peer heartbeats ───── PeerAdvert/PeerRestarted ─────────────────────────────┤
//!  pingd ─────────────── PingReachable ────────────────────────────────────────┤
//!  health checks ─────── Health ───────────────────────────────────────────────┤
//!  control socket ────── Admin(Standby|Takeover) ──────────────────────────────┼─► Cluster::handle(ev, now)
//!  resource runner ───── Acquired/AcquireFailed/Released/ReleaseFailed ────────┤        │
//!  fencing runner ────── Fenced ───────────────────────────────────────────────┤        │ re-evaluates every group
//!  main loop ─────────── Start/Tick/Stalled/Shutdown/AdoptHeld ────────────────┘        ▼
//!                                                 Vec<Action>: SendAdvert (first), Acquire, Release,
//!                                                 Fence, Warn, Exit (last)
//!  heartbeat sender ◄── Cluster::advert() (claims per group, ping count, standby, settling)
//! ```
//!
//! # Rules (numbers as in the design brief)
//!
//! * **Who holds G** (2): the first candidate, in preference order, that is alive and eligible.
//!   A node acquires G only when no alive peer advertises it held (3), all alive candidates have
//!   told us their claims, it is its turn, it has quorum (6) and every suspect is fenced (3).
//!   A hand-over is always release-then-acquire: a node advertises `held` from the moment it
//!   starts acquiring until its release has *completed*. The acquirer uses epoch = highest
//!   epoch known + 1.
//! * **auto_failback** (2): the holder releases G when a more preferred candidate is alive,
//!   eligible, not settling, not holding, and has been alive without interruption for two
//!   deadtimes ([`FAILBACK_STABLE_DEADTIMES`]; silence is noticed a deadtime late, so this
//!   means at least one deadtime of real contact, which damps flapping links); a node that
//!   keeps losing eligibility (a flapping cable) must also have stayed eligible for an
//!   exponentially growing wait (flap dampening, [`FLAP_HALF_LIFE_DEADTIMES`]).
//!   Failover away from a node is never delayed by this; only the way back is. Without
//!   auto_failback the holder keeps G unless a more preferred candidate asks for it
//!   (`takeover` flag, from `hb_takeover`) (10).
//! * **initdead** (1): before Start nothing is taken. A group is acted on once every other
//!   candidate of it has been heard (advert received) or initdead elapsed; until then, and
//!   until our ping targets are measured, we advertise `settling`. Peers do not fail groups
//!   back to a settling node, but they do leave an unheld group to a more preferred settling one.
//! * **N+1** (4): groups are independent; one node may hold several.
//! * **Connectivity** (5): with ping targets, we are ineligible for G while an alive, eligible
//!   candidate of G reaches strictly more targets than we do. Ties (0 = 0 included) move nothing.
//! * **Health** (added to the brief): `Health { group, healthy: false }` (the group's checks fail
//!   here, hb-core's `health` having applied rise, fall and hold-down) makes us ineligible for
//!   G, and our adverts say so; a holder releases G (`Unhealthy`) only to a candidate that can
//!   take it now, else keeps it and warns once (`NoHealthyCandidate`). An unhealthy node takes
//!   nothing, not even from a dead holder (keepalived's FAULT state). A node that offered a
//!   group in a hand-over (released it and advertised itself ineligible) does not take it back
//!   for two keepalives while a candidate that can take it is alive: that candidate may be
//!   taking it already, and its `held` advert is on its way.
//! * **Quorum** (6) is counted per group over its candidates (only they can hold it): with three
//!   or more candidates we need a strict majority of them visible (self included); with 2, when the
//!   other is dead, we need `ping_targets == 0` or at least one ping target reached (unless
//!   `ping_tie_break` is off: then none, as Heartbeat). Quorum is
//!   only needed to take a group; held groups are kept. (Counting all configured nodes would
//!   forbid the N+1 standby from covering both primaries at once, rule 4.)
//! * **Split brain** (7): if another alive node advertises G held, the higher epoch wins, then
//!   the higher priority (earlier in `nodes`); the loser releases at once.
//! * **Fencing** (3, 9): with fencing, before taking G we fence every node that may still hold
//!   it: a dead node whose last advert said held, a candidate never heard (after initdead), and
//!   an alive node whose stop of G failed (`stuck`). A failed fence warns and blocks; it is
//!   retried no faster than once per deadtime. A fenced node counts as dead and holding nothing
//!   until it comes up again. Without fencing, a dead holder is assumed gone.
//! * **Hang** (8): `Stalled{ns}` with `ns + keepalive > deadtime` (the last heartbeat may have
//!   left up to a keepalive before the stall) releases every group, and we stay ineligible and
//!   settling for a deadtime of fresh information. A held group stays advertised `held` until
//!   its `Released` arrives, so no peer starts it while our stop is still running; a peer that
//!   took over during the hang has a higher epoch and keeps it.
//! * **Failed start** (9): clean-up `Release`, then ineligible for 10 x deadtime
//!   ([`FAILURE_HOLDOFF_DEADTIMES`]) or until `Takeover`.
//! * **Failed stop** (9): warn; the group is `Stuck`: advertised held + stuck + not eligible, so
//!   nobody starts it next to our half-stopped resources. Peers with fencing fence us and take
//!   it; without fencing it stays here (the operator is warned on both sides). The stop is
//!   retried every 10 x deadtime; a success makes the group ordinary again.
//! * **Admin** (10): `Standby` makes us ineligible for the group(s) and hands held ones to an
//!   alive, eligible, non-settling candidate (kept if there is none); `Takeover` clears
//!   standby and the start hold-off and raises the `takeover` flag until we hold the group.
//! * **Shutdown** (11): ineligible for everything; releases held groups one at a time, most
//!   recently acquired first; a group whose stop fails is left stuck (advertised so) and the
//!   shutdown goes on; then `Exit`.
//! * **Serialisation** (12): one outstanding operation per group (and one fence per node);
//!   decisions are recomputed from the state on every event, so nothing needs queueing.
//! * **Warntime** (13), **PeerRestarted** (14: its claims are void until its next advert; an
//!   alive candidate without an advert blocks acquisition of its groups), **AdoptHeld** (15:
//!   held at once; the epoch follows the highest one learned during initdead, conflicts go
//!   through the split-brain rule).
//!
//! # Network cut (documented behaviour)
//!
//! When every heartbeat link between two candidates is cut but both still reach the ping node,
//! each sees the other dead; the one that does not hold G takes it (it has the 2-node quorum
//! through the ping node). Without fencing both then hold G, exactly as Heartbeat did: use
//! several heartbeat links (membership needs all of them dead) or fencing, which makes the
//! taker power the holder off first. When the cut heals, the split-brain rule leaves G with the
//! higher epoch (the taker), then auto_failback returns it. When the holder is cut off from the
//! ping node too (its whole network is down), only the side that reaches the ping node takes
//! over; the isolated holder keeps G but serves nobody, and releases it on healing.
//!
//! Flapping: a link that flaps next to a healthy one is invisible (membership needs every link
//! dead); silences shorter than deadtime never reach us. Each silence longer than deadtime on the
//! only link is a real partition and is handled like one (a takeover on the side that lacks the
//! group, resolved by epoch on healing), but a group is never failed back into a flapping link:
//! the target must have been seen alive for two deadtimes.
//!
//! # Shell contract
//!
//! Deliver `Stalled` before any event that queued up during the stall; `PeerRestarted` before
//! the new incarnation's first `PeerAdvert`; a packet's `LinkUp` before its `PeerAdvert` (an
//! advert from a peer membership calls dead makes us wait a deadtime before taking anything
//! from it, so a misordered shell costs time, never a fenced live node); a `PeerAdvert`
//! whenever a peer's advert differs from the last one delivered (and after a restart); a
//! `Tick` about every keepalive. Send a heartbeat with [`Cluster::advert`] on `SendAdvert` and
//! on every keepalive; send the final one before acting on `Exit`. Call
//! [`ClusterSpec::validate`] before [`Cluster::new`].

mod event;
mod flaps;
mod membership;
mod resume;
mod spec;
mod state;

#[cfg(test)]
mod tests;

pub use event::{Ack, Action, AdminCmd, Advert, Event, GroupClaim, ReleaseReason, Warning};
pub use membership::{Membership, NODE_LINK, Transition};
pub use resume::ROUND_TIMEOUT_DEADTIMES;
pub use spec::{
    ClusterSpec, FAILBACK_STABLE_DEADTIMES, FAILURE_HOLDOFF_DEADTIMES, FLAP_HALF_LIFE_DEADTIMES,
    FLAP_HALF_LIFE_MIN_NS, FLAP_MAX_HOLD_DEADTIMES, GroupId, GroupSpec,
    LAST_MAN_STANDING_DEADTIMES, MAX_ACKS, MAX_GROUPS, NodeId, SpecError,
};
pub use state::{Cluster, HoldState};
