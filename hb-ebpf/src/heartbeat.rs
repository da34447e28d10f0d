//! One heartbeat: check, account, consume.
//!
//! Order of checks is cheapest-first so floods cost little: magic/version and
//! cluster, known peer, replay (compare two integers), then the SipHash tag.
//! Only a packet that passes all of them touches the peer's state.
//!
//! The packet is never copied: every field, the SipHash input and the state
//! are read as whole words where they lie in the frame (`frame::load_u64`,
//! one instruction each).

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    helpers::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use hb_common::{
    events::{EV_ALIVE_AGAIN, EV_FIRST_HEARD, EV_LATE, EV_RESTARTED, EV_STATE},
    maps::{
        CFG_PASS_HEARTBEATS, KernelConfig, PeerKey, STATUS_ALIVE, STATUS_DEAD, STATUS_UNKNOWN,
        counter,
    },
    siphash::SipWords,
    wire::{
        ClusterState, MAGIC, OFF_SEND_TS, OFF_SEQ, OFF_STATE, OFF_TAG, PACKET_LEN, SIGNED_WORDS,
        STATE_LEN, VERSION,
    },
};

use crate::{
    frame,
    maps::{
        PEER_STATE, PEERS, PREFIX_WORDS, PeerValue, TAG_PREFIX, TAG_PREFIX_SLOTS, ZERO_PEER, count,
    },
    parse::Payload,
    timer,
};

#[inline(always)]
fn drop_with(reason: u32) -> u32 {
    count(reason);
    xdp_action::XDP_DROP
}

/// The PACKET_LEN heartbeat bytes in the frame, bounds-checked once.
#[derive(Clone, Copy)]
struct Words(usize);

impl Words {
    /// Bytes `OFF..OFF + 8` as a little-endian word: one load, the offset
    /// in the instruction.
    #[inline(always)]
    fn at<const OFF: i16>(self) -> u64 {
        const { assert!(OFF >= 0 && OFF % 8 == 0 && OFF as usize + 8 <= PACKET_LEN) };
        // SAFETY: `Words` is only made for an address with PACKET_LEN bytes
        // in the frame behind it, checked against data_end; OFF is inside.
        unsafe { frame::load_u64_at::<OFF>(self.0) }
    }

    /// Bytes `8i..8i + 8` as a little-endian word (`i` < PACKET_LEN / 8).
    #[inline(always)]
    fn get(self, i: usize) -> u64 {
        // SAFETY: as in `at`; i < PREFIX_WORDS at every call site.
        unsafe { frame::load_u64_at::<0>(self.0 + i * 8) }
    }
}

#[inline(always)]
pub fn handle(ctx: &XdpContext, p: Payload) -> u32 {
    let base = frame::opaque(ctx.data() + p.off);
    if p.len < PACKET_LEN || base + PACKET_LEN > ctx.data_end() {
        // Short: ours only if it starts with our magic.
        let mut m = [0u8; 4];
        if unsafe { bpf_xdp_load_bytes(ctx.ctx, p.off as u32, m.as_mut_ptr().cast(), 4) } == 0
            && u32::from_le_bytes(m) == MAGIC
        {
            return drop_with(counter::MALFORMED);
        }
        count(counter::FOREIGN);
        return xdp_action::XDP_PASS;
    }
    let w = Words(base);
    let cfg = p.cfg;
    // Word 0: magic, version, flags, reserved. Word 1: cluster, node.
    let w0 = w.at::<0>();
    if w0 as u32 != MAGIC {
        count(counter::FOREIGN);
        return xdp_action::XDP_PASS;
    }
    if (w0 >> 32) as u8 != VERSION {
        return drop_with(counter::BAD_VERSION);
    }
    let w1 = w.at::<8>();
    if w1 as u32 != cfg.cluster_id {
        return drop_with(counter::WRONG_CLUSTER);
    }
    let node = (w1 >> 32) as u32;
    // SAFETY: the agent writes PEERS only as whole-value updates.
    let Some(peer) = (unsafe { PEERS.get(node) }) else {
        return drop_with(counter::UNKNOWN_PEER);
    };
    let incarnation = w.at::<16>();
    const _: () = assert!(OFF_SEQ == 128);
    let seq = w.at::<128>();
    let key = PeerKey {
        node_id: node,
        ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
    };
    let mut v = PEER_STATE.get_ptr_mut(key);
    if let Some(e) = v {
        // SAFETY: pointer into the map value, valid for this program run.
        let s = unsafe { &(*e).stats };
        if incarnation < s.incarnation {
            return drop_with(counter::OLD_INCARNATION);
        }
        if incarnation == s.incarnation && seq <= s.last_seq {
            return drop_with(counter::REPLAY);
        }
    }
    if !tag_ok(cfg, w, node) {
        return drop_with(counter::BAD_TAG);
    }
    if v.is_none() {
        let Some(zero) = ZERO_PEER.get_ptr(0) else {
            return drop_with(counter::STATE_FULL);
        };
        // SAFETY: map value pointer of PeerValue's size; nobody writes
        // ZERO_PEER, and all-zero is a valid PeerValue.
        let zero = unsafe { &*zero.cast::<PeerValue>() };
        if PEER_STATE.insert(key, zero, BPF_NOEXIST as u64).is_err() {
            // Another CPU may have created it just now; the lookup decides.
        }
        v = PEER_STATE.get_ptr_mut(key);
    }
    let Some(e) = v else {
        return drop_with(counter::STATE_FULL);
    };
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: map value pointer; concurrent writers are other CPUs receiving
    // the same peer on the same link, which RSS keeps on one queue.
    let s = unsafe { &mut (*e).stats };
    let was = s.status;
    let old_incarnation = s.incarnation;
    let restarted = old_incarnation != 0 && incarnation > old_incarnation;
    if was != STATUS_UNKNOWN {
        let gap = now.saturating_sub(s.last_seen_ns);
        let d = gap.abs_diff(s.last_gap_ns);
        s.jitter_ns = s.jitter_ns + d / 16 - s.jitter_ns / 16;
        s.last_gap_ns = gap;
        if gap > s.max_gap_ns {
            s.max_gap_ns = gap;
        }
        if !restarted && seq > s.last_seq + 1 {
            s.lost += seq - s.last_seq - 1;
        }
        if was == STATUS_ALIVE && peer.warntime_ns != 0 && gap > peer.warntime_ns {
            s.late += 1;
            timer::emit(EV_LATE, &key, s, gap);
        }
    } else {
        s.first_seen_ns = now;
        s.ifindex = key.ifindex;
    }
    if restarted {
        s.incarnation_changes += 1;
    }
    s.incarnation = incarnation;
    s.last_seq = seq;
    s.last_seen_ns = now;
    s.received += 1;
    s.deadtime_ns = peer.deadtime_ns;
    let state_changed = copy_state(w, &mut s.state);
    if was != STATUS_ALIVE {
        s.status = STATUS_ALIVE;
        // SAFETY: `e` points at a PEER_STATE value.
        unsafe { timer::arm(e, peer.deadtime_ns) };
        let kind = if was == STATUS_DEAD {
            EV_ALIVE_AGAIN
        } else {
            EV_FIRST_HEARD
        };
        timer::emit(kind, &key, s, 0);
    }
    if restarted {
        timer::emit(EV_RESTARTED, &key, s, old_incarnation);
    }
    if state_changed && was == STATUS_ALIVE {
        timer::emit(EV_STATE, &key, s, 0);
    }
    count(counter::ACCEPTED);
    if cfg.flags & CFG_PASS_HEARTBEATS != 0 {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

/// Whether the packet's SipHash-2-4 tag (word 15) is right: the same
/// function as `hb_common::wire::tag`, over the words in the frame, resumed
/// after the first STABLE_LEN bytes from `TAG_PREFIX` when the key and those
/// bytes match what it was computed from.
#[inline(always)]
fn tag_ok(cfg: &KernelConfig, w: Words, node: u32) -> bool {
    let slot = (node ^ (node >> 8) ^ (node >> 16) ^ (node >> 24)) & (TAG_PREFIX_SLOTS - 1);
    let cache = TAG_PREFIX.get_ptr_mut(slot);
    let mut hit = false;
    let mut h = SipWords::new(cfg.k0, cfg.k1);
    if let Some(c) = cache {
        // SAFETY: this CPU's slot of a per-CPU array. XDP runs with
        // migration and bottom halves off, so no other run of this program
        // interleaves with this one on this CPU. (Were one to, as could on
        // PREEMPT_RT, a torn slot could only make a right tag fail, never a
        // wrong one pass: the state is still secret and never revealed.)
        let c = unsafe { &*c };
        let mut diff = (c.k0 ^ cfg.k0) | (c.k1 ^ cfg.k1);
        let mut i = 0;
        while i < PREFIX_WORDS {
            diff |= c.words[i] ^ w.get(i);
            i += 1;
        }
        if diff == 0 {
            h.v = c.state;
            hit = true;
        }
    }
    if !hit {
        let mut i = 0;
        while i < PREFIX_WORDS {
            h.word(w.get(i));
            i += 1;
        }
    }
    let prefix = h.v;
    const _: () = assert!(OFF_SEND_TS == 136 && SIGNED_WORDS == 18 && OFF_TAG == 144);
    h.word(w.at::<128>());
    h.word(w.at::<136>());
    let ok = h.finish(SIGNED_WORDS) == w.at::<144>();
    if ok && !hit {
        if let Some(c) = cache {
            // SAFETY: as above.
            let c = unsafe { &mut *c };
            c.k0 = cfg.k0;
            c.k1 = cfg.k1;
            let mut i = 0;
            while i < PREFIX_WORDS {
                c.words[i] = w.get(i);
                i += 1;
            }
            c.state = prefix;
        }
    }
    ok
}

/// Copies the packet's state into `dst`; true if it differed. Word-wise
/// from the frame, unrolled: 12 loads, compares and stores.
#[inline(always)]
fn copy_state(w: Words, dst: &mut ClusterState) -> bool {
    const WORDS: usize = STATE_LEN / 8;
    const _: () = assert!(OFF_STATE == 32 && WORDS == 12);
    // SAFETY: ClusterState is repr(C), STATE_LEN bytes, 8-aligned (its
    // claims are u32 pairs at offset 8), valid for any bit pattern.
    let d = unsafe { &mut *(dst as *mut ClusterState as *mut [u64; WORDS]) };
    let mut diff = 0;
    // `opaque` keeps the or of xors as it is written: LLVM would turn it
    // into one compare-and-branch per word (BPF has no setcc), and the
    // verifier walks every combination of those branches: 2^WORDS paths
    // (2^12 was past its limit of a million instructions).
    macro_rules! state_word {
        ($($i:literal $off:literal),*) => {$(
            let x = w.at::<$off>();
            diff = frame::opaque((diff | (d[$i] ^ x)) as usize) as u64;
            d[$i] = x;
        )*};
    }
    state_word!(
        0 32, 1 40, 2 48, 3 56, 4 64, 5 72, 6 80, 7 88, 8 96, 9 104, 10 112, 11 120
    );
    diff != 0
}
