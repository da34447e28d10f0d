//! Values of the maps the agent fills and the XDP program updates.
//!
//! Timer state and agent-written configuration live in separate maps on
//! purpose: any userspace write to an element cancels its bpf_timer, so the
//! agent never writes `PEER_STATE` (the kernel creates those entries), and the
//! kernel never writes `PEERS`/`CONFIG`.

use crate::wire::ClusterState;

/// `CONFIG[0]`: what the XDP program needs to recognise and verify heartbeats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelConfig {
    pub cluster_id: u32,
    /// UDP destination port of heartbeats, host byte order.
    pub udp_port: u16,
    pub flags: u16,
    /// SipHash key words (see `siphash::key_words`).
    pub k0: u64,
    pub k1: u64,
}

/// Heartbeats go on to the network stack after accounting instead of being
/// consumed (for tcpdump or a userspace listener while debugging).
pub const CFG_PASS_HEARTBEATS: u16 = 1;

/// `PEERS[node_id]`: a peer the agent knows, with its timings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerConfig {
    pub deadtime_ns: u64,
    pub warntime_ns: u64,
}

/// Key of `PEER_STATE`: liveness is tracked per peer and per link, so that a
/// peer is dead only when it is dead on all of its links.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    pub node_id: u32,
    pub ifindex: u32,
}

pub const STATUS_UNKNOWN: u32 = 0;
pub const STATUS_ALIVE: u32 = 1;
pub const STATUS_DEAD: u32 = 2;

/// What the kernel knows about one peer on one link. The eBPF side wraps
/// this with a leading `bpf_timer` (16 bytes); see [`PeerEntry`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// CLOCK_MONOTONIC ns of the last accepted heartbeat.
    pub last_seen_ns: u64,
    pub first_seen_ns: u64,
    pub incarnation: u64,
    pub last_seq: u64,
    pub received: u64,
    /// Sum of sequence gaps: heartbeats that never arrived.
    pub lost: u64,
    /// Heartbeats that came more than warntime after the previous one.
    pub late: u64,
    pub incarnation_changes: u64,
    pub deaths: u64,
    /// Last inter-arrival time.
    pub last_gap_ns: u64,
    /// Smoothed |gap - previous gap| (RFC 3550 style, gain 1/16).
    pub jitter_ns: u64,
    pub max_gap_ns: u64,
    /// Deadtime in force, copied from `PEERS` so the timer callback needs no lookup.
    pub deadtime_ns: u64,
    pub ifindex: u32,
    /// STATUS_* value.
    pub status: u32,
    /// Non-zero once the kernel has initialised this entry's timer.
    pub timer_ready: u32,
    /// Non-zero while the timer takes a second look (it fired late: our
    /// own stall, see `deadline`).
    pub graced: u32,
    /// The cluster state the last heartbeat carried.
    pub state: ClusterState,
}

/// `PEER_STATE` value as userspace reads it: the kernel's `struct bpf_timer`
/// (opaque, 16 bytes, reads back as zeroes) followed by the stats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerEntry {
    pub timer: [u64; 2],
    pub stats: PeerStats,
}

/// Indexes of the per-CPU `COUNTERS` array.
pub mod counter {
    pub const ACCEPTED: u32 = 0;
    /// Heartbeat magic on our port but too short or inconsistent.
    pub const MALFORMED: u32 = 1;
    pub const BAD_VERSION: u32 = 2;
    pub const WRONG_CLUSTER: u32 = 3;
    pub const UNKNOWN_PEER: u32 = 4;
    pub const BAD_TAG: u32 = 5;
    /// Sequence not newer than the last accepted one in this incarnation.
    pub const REPLAY: u32 = 6;
    /// Incarnation older than the one in force.
    pub const OLD_INCARNATION: u32 = 7;
    /// The agent has not written CONFIG yet.
    pub const NOT_CONFIGURED: u32 = 8;
    /// PEER_STATE could not take a new entry.
    pub const STATE_FULL: u32 = 9;
    /// UDP to our port without our magic: passed on untouched.
    pub const FOREIGN: u32 = 10;
    /// Traffic for a guarded service address while the service lease had
    /// lapsed (this node's heartbeats stopped: peers may own it by now).
    pub const LEASE_EXPIRED: u32 = 11;
    /// Traffic for a service address this node has withdrawn (released,
    /// still being removed: its bit in `WITHDRAWN` is set).
    pub const WITHDRAWN: u32 = 12;
    pub const COUNT: u32 = 13;

    /// Names for logs and metrics, indexed like the constants.
    pub const NAMES: [&str; COUNT as usize] = [
        "accepted",
        "malformed",
        "bad_version",
        "wrong_cluster",
        "unknown_peer",
        "bad_tag",
        "replay",
        "old_incarnation",
        "not_configured",
        "state_full",
        "foreign",
        "lease_expired",
        "withdrawn",
    ];
}

/// `GUARD[0]`: the service addresses the XDP program fences with the
/// service lease. Written by the agent; empty (both counts 0) = no guard.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardConfig {
    pub v4_count: u32,
    pub v6_count: u32,
    /// IPv4 addresses as they appear on the wire (`u32::from_ne_bytes(octets)`).
    pub v4: [u32; MAX_GUARD_V4],
    pub v6: [[u8; 16]; MAX_GUARD_V6],
}

pub const MAX_GUARD_V4: usize = 16;
pub const MAX_GUARD_V6: usize = 8;

/// `WITHDRAWN[0]`: guarded addresses this node no longer answers for,
/// whatever the lease says: bit `i` (0..16) for `GuardConfig::v4[i]`, bit
/// `16 + j` for `v6[j]`. A release sets its addresses' bits first, so the
/// node stops answering at once and may hand the group over before the
/// slower address and hostname changes are done; the next start clears them.
pub type WithdrawnBits = u64;

/// The `WITHDRAWN` bit of `GuardConfig::v6[j]`.
pub const WITHDRAWN_V6_SHIFT: usize = MAX_GUARD_V4;

/// `LEASE[0]`: CLOCK_MONOTONIC ns until which this node may answer for its
/// guarded addresses. The sender renews it to `send time + deadtime` with
/// every heartbeat, so it lapses no later than the peers' kernels declare
/// this node dead: a frozen node goes quiet before anyone takes over.
pub type LeaseUntil = u64;

pub const MAX_PEERS: u32 = 256;
/// PEER_STATE holds one entry per peer and link.
pub const MAX_PEER_LINKS: u32 = 1024;

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all are repr(C) plain integers/arrays with no padding holes
    // that matter (explicit _pad fields), valid for any bit pattern.
    unsafe impl aya::Pod for KernelConfig {}
    unsafe impl aya::Pod for PeerConfig {}
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for PeerEntry {}
    unsafe impl aya::Pod for GuardConfig {}
    unsafe impl aya::Pod for crate::events::Event {}
}

const _: () = assert!(core::mem::size_of::<KernelConfig>() == 24);
const _: () =
    assert!(core::mem::size_of::<GuardConfig>() == 8 + 4 * MAX_GUARD_V4 + 16 * MAX_GUARD_V6);
const _: () = assert!(core::mem::size_of::<PeerStats>() == 13 * 8 + 16 + crate::wire::STATE_LEN);
const _: () = assert!(core::mem::size_of::<PeerEntry>() == 16 + core::mem::size_of::<PeerStats>());
