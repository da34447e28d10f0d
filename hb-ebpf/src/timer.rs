//! Per-peer-and-link deadline timers and the events they raise.
//!
//! The XDP path arms the timer only when a peer comes alive; afterwards the
//! timer keeps itself going: each time it fires it asks
//! `hb_common::deadline::check` whether the peer has been silent for
//! deadtime, and either declares it dead or sleeps for the remainder. So a
//! heartbeat costs a timestamp store, not an hrtimer restart.

use aya_ebpf::{
    bindings::{bpf_timer, xdp_action},
    cty::c_void,
    helpers::{bpf_ktime_get_ns, bpf_timer_init, bpf_timer_set_callback, bpf_timer_start},
    programs::XdpContext,
};
use hb_common::{
    deadline::{self, Deadline},
    events::{EV_DEAD, Event},
    maps::{PeerKey, PeerStats, STATUS_ALIVE, STATUS_DEAD},
};

use crate::maps::{EVENTS, PEER_STATE, PeerValue};

const CLOCK_MONOTONIC: u64 = 1;

/// Sends one event to the agent. A full ring buffer loses the event; the
/// agent also reconciles from PEER_STATE, so nothing is lost for good.
#[inline(always)]
pub fn emit(kind: u32, key: &PeerKey, s: &PeerStats, aux: u64) {
    if let Some(mut slot) = EVENTS.reserve(0) {
        // Field by field into the ring buffer: an Event temporary would cost
        // 128 bytes of the 512-byte BPF stack.
        let ev: *mut Event = slot.as_mut_ptr();
        // SAFETY: `ev` points at a reserved, exclusively owned slot.
        unsafe {
            (*ev).kind = kind;
            (*ev).node_id = key.node_id;
            (*ev).ifindex = key.ifindex;
            (*ev)._pad = 0;
            (*ev).ts_ns = bpf_ktime_get_ns();
            (*ev).last_seen_ns = s.last_seen_ns;
            (*ev).incarnation = s.incarnation;
            (*ev).seq = s.last_seq;
            (*ev).aux = aux;
            core::ptr::copy_nonoverlapping(&raw const s.state, &raw mut (*ev).state, 1);
        }
        slot.submit(0);
    }
}

/// (Re)starts the entry's timer to fire after `ns`, initialising it on first use.
///
/// # Safety
/// `e` must point at a live `PEER_STATE` value.
#[inline(always)]
pub unsafe fn arm(e: *mut PeerValue, ns: u64) {
    unsafe {
        let t: *mut bpf_timer = &raw mut (*e).timer;
        if (*e).stats.timer_ready == 0 {
            let map = (&raw const PEER_STATE).cast_mut().cast::<c_void>();
            if bpf_timer_init(t, map, CLOCK_MONOTONIC) != 0 {
                // -EBUSY: another CPU initialised it first; fine.
            }
            let cb: unsafe extern "C" fn(*mut c_void, *mut PeerKey, *mut PeerValue) -> i32 =
                on_timer;
            bpf_timer_set_callback(t, cb as *mut c_void);
            (*e).stats.timer_ready = 1;
        }
        bpf_timer_start(t, ns, 0);
    }
}

/// What the timer does when it fires, shared with the test path. Returns
/// the delay to re-arm with, or None when the peer was declared dead.
#[inline(always)]
fn on_deadline(key: &PeerKey, s: &mut PeerStats, now: u64) -> Option<u64> {
    if s.status != STATUS_ALIVE {
        return None;
    }
    match deadline::check(now, s.last_seen_ns, s.deadtime_ns, s.graced != 0) {
        Deadline::RearmIn(ns) => {
            s.graced = 0;
            Some(ns)
        }
        Deadline::Grace(ns) => {
            s.graced = 1;
            Some(ns)
        }
        Deadline::Expired => {
            s.graced = 0;
            s.status = STATUS_DEAD;
            s.deaths += 1;
            emit(EV_DEAD, key, s, s.deadtime_ns);
            None
        }
    }
}

/// The bpf_timer callback (softirq context).
unsafe extern "C" fn on_timer(_map: *mut c_void, key: *mut PeerKey, value: *mut PeerValue) -> i32 {
    unsafe {
        let now = bpf_ktime_get_ns();
        if let Some(ns) = on_deadline(&*key, &mut (*value).stats, now) {
            bpf_timer_start(&raw mut (*value).timer, ns, 0);
        }
    }
    0
}

/// Entry of the `hb_deadline_probe` test program.
#[inline(always)]
pub fn probe(ctx: &XdpContext) -> u32 {
    let start = ctx.data();
    if start + 16 > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: 16 bytes bounds-checked above.
    let raw = unsafe { *(start as *const [u8; 16]) };
    let key = PeerKey {
        node_id: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
        ifindex: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
    };
    let now = u64::from_le_bytes([
        raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15],
    ]);
    let Some(e) = PEER_STATE.get_ptr_mut(key) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: map value pointer.
    match on_deadline(&key, unsafe { &mut (*e).stats }, now) {
        Some(_) => xdp_action::XDP_PASS,
        None => xdp_action::XDP_DROP,
    }
}
