//! The maps the program shares with the agent. Names are the agent's API.

use aya_ebpf::{
    bindings::bpf_timer,
    btf_maps::{Array, HashMap, PerCpuArray, RingBuf},
    macros::btf_map,
};
use hb_common::{
    events::Event,
    maps::{
        GuardConfig, KernelConfig, LeaseUntil, MAX_PEER_LINKS, MAX_PEERS, PeerConfig, PeerKey,
        PeerStats, WithdrawnBits, counter,
    },
};

/// Written by the agent: cluster id, port, key.
#[btf_map]
pub static CONFIG: Array<KernelConfig, 1> = Array::new();

/// Written by the agent: the service addresses fenced by the lease.
#[btf_map]
pub static GUARD: Array<GuardConfig, 1> = Array::new();

/// Written by the agent: guarded addresses released and being cleaned up.
#[btf_map]
pub static WITHDRAWN: Array<WithdrawnBits, 1> = Array::new();

/// Written by the agent's heartbeat sender with every heartbeat.
#[btf_map]
pub static LEASE: Array<LeaseUntil, 1> = Array::new();

/// Written by the agent: the peers it expects, by node id.
#[btf_map]
pub static PEERS: HashMap<u32, PeerConfig, { MAX_PEERS as usize }> = HashMap::new();

/// A `PEER_STATE` value: the timer must be described in BTF, so this type
/// lives here rather than in hb-common (userspace reads it as `PeerEntry`).
#[repr(C)]
pub struct PeerValue {
    pub timer: bpf_timer,
    pub stats: PeerStats,
}

/// Written only by this program (a userspace write would cancel the timer).
#[btf_map]
pub static PEER_STATE: HashMap<PeerKey, PeerValue, { MAX_PEER_LINKS as usize }> = HashMap::new();

/// All-zero bytes the size of a PeerValue: the template new PEER_STATE
/// entries are copied from (a 200-byte value does not fit on the BPF stack
/// beside the packet). Plain words, not PeerValue: the verifier refuses a
/// helper argument that points at a map value holding a bpf_timer.
#[btf_map]
pub static ZERO_PEER: Array<[u64; PEER_VALUE_WORDS], 1> = Array::new();
pub const PEER_VALUE_WORDS: usize = core::mem::size_of::<PeerValue>() / 8;
const _: () = assert!(core::mem::size_of::<PeerValue>() % 8 == 0);

/// Per CPU, in a slot chosen by the sender's node id: the SipHash state
/// after the first `STABLE_LEN` bytes of a heartbeat that verified (all but
/// seq and send time: the same in every heartbeat of a peer until its state
/// changes), with the key and the words it was computed from. A heartbeat
/// whose key and first words match resumes from it: 3 of the tag's 19
/// compressions instead of 16, the same tag. Written only after a tag
/// verifies, so forged traffic cannot evict a peer's entry. Per CPU so that
/// no other CPU writes a slot while it is read; never pinned (a cache).
#[btf_map]
pub static TAG_PREFIX: PerCpuArray<TagPrefix, { TAG_PREFIX_SLOTS as usize }> = PerCpuArray::new();
pub const TAG_PREFIX_SLOTS: u32 = 256;
pub const PREFIX_WORDS: usize = hb_common::wire::STABLE_LEN / 8;

#[repr(C)]
pub struct TagPrefix {
    pub k0: u64,
    pub k1: u64,
    /// The heartbeat's first words; word 0 holds the magic, so an all-zero
    /// (never written) slot matches no heartbeat.
    pub words: [u64; PREFIX_WORDS],
    /// `SipWords::v` after those words.
    pub state: [u64; 4],
}

/// Verdict counters, indexed by `hb_common::maps::counter`.
#[btf_map]
pub static COUNTERS: PerCpuArray<u64, { counter::COUNT as usize }> = PerCpuArray::new();

/// Events to the agent. 256 KiB: thousands of events of slack if the agent
/// is slow to drain, and events are rare (state changes only).
#[btf_map]
pub static EVENTS: RingBuf<Event, { 256 * 1024 }> = RingBuf::new();

#[inline(always)]
pub fn count(idx: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot, only this CPU writes it.
        unsafe { *c += 1 };
    }
}
