//! One heartbeat: check, account, consume.
//!
//! Order of checks is cheapest-first so floods cost little: magic/version and
//! cluster, known peer, replay (compare two integers), then the SipHash tag.
//! Only a packet that passes all of them touches the peer's state.

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    helpers::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use hb_common::{
    events::{EV_ALIVE_AGAIN, EV_FIRST_HEARD, EV_LATE, EV_RESTARTED, EV_STATE},
    maps::{CFG_PASS_HEARTBEATS, PeerKey, STATUS_ALIVE, STATUS_DEAD, STATUS_UNKNOWN, counter},
    wire::{self, ClusterState, MAGIC, OFF_STATE, PACKET_LEN, STATE_LEN, VERSION},
};

use crate::{
    frame,
    maps::{CONFIG, PEER_STATE, PEERS, PeerValue, ZERO_PEER, count},
    parse::Payload,
    timer,
};

#[inline(always)]
fn drop_with(reason: u32) -> u32 {
    count(reason);
    xdp_action::XDP_DROP
}

#[inline(always)]
pub fn handle(ctx: &XdpContext, p: Payload) -> u32 {
    let mut buf = Packet([0u8; PACKET_LEN]);
    let start = ctx.data();
    if p.len < PACKET_LEN || start + p.off + PACKET_LEN > ctx.data_end() {
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
    // Copy out of the frame into an 8-aligned stack buffer, so the SipHash
    // and the state copy read whole words: 16 word loads and stores.
    let src = start + p.off;
    let dst = buf.0.as_mut_ptr() as *mut u64;
    let mut i = 0;
    while i < PACKET_LEN / 8 {
        // SAFETY: the 128 bytes from src are inside the frame (checked
        // above); dst is the 8-aligned 128-byte stack buffer.
        unsafe { dst.add(i).write(frame::load_u64(src + i * 8)) };
        i += 1;
    }
    let pkt = &buf.0;
    let (magic, version, cluster, node, incarnation, seq) = wire::peek_ids(pkt);
    if magic != MAGIC {
        count(counter::FOREIGN);
        return xdp_action::XDP_PASS;
    }
    let Some(cfg) = CONFIG.get(0) else {
        return drop_with(counter::NOT_CONFIGURED);
    };
    if version != VERSION {
        return drop_with(counter::BAD_VERSION);
    }
    if cluster != cfg.cluster_id {
        return drop_with(counter::WRONG_CLUSTER);
    }
    // SAFETY: the agent writes PEERS only as whole-value updates.
    let Some(peer) = (unsafe { PEERS.get(node) }) else {
        return drop_with(counter::UNKNOWN_PEER);
    };
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
    if !wire::verify(cfg.k0, cfg.k1, pkt) {
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
    let restarted = s.incarnation != 0 && incarnation > s.incarnation;
    let old_incarnation = s.incarnation;
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
    let state_changed = copy_state(&buf, &mut s.state);
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

/// Copies the packet's state into `dst`; true if it differed. Word-wise:
/// 9 loads and stores instead of 72 byte operations, and no struct
/// temporary on the 512-byte BPF stack.
#[inline(always)]
fn copy_state(pkt: &Packet, dst: &mut ClusterState) -> bool {
    const WORDS: usize = STATE_LEN / 8;
    // SAFETY: ClusterState is repr(C), STATE_LEN bytes, 8-aligned (its
    // claims are u32 pairs at offset 8), valid for any bit pattern.
    let d = unsafe { &mut *(dst as *mut ClusterState as *mut [u64; WORDS]) };
    let mut changed = false;
    let mut i = 0;
    while i < WORDS {
        let w = pkt.word(OFF_STATE / 8 + i);
        changed |= d[i] != w;
        d[i] = w;
        i += 1;
    }
    changed
}

/// The packet copied out of the frame, 8-aligned so that the SipHash and
/// the state copy read whole words.
#[repr(C, align(8))]
pub struct Packet(pub [u8; PACKET_LEN]);

impl Packet {
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        // SAFETY: i < PACKET_LEN / 8 at every call site; aligned by repr.
        unsafe { *(self.0.as_ptr() as *const u64).add(i) }
    }
}
