//! The hb XDP program.
//!
//! Runs on every packet of a heartbeat interface. Anything that is not an hb
//! heartbeat leaves with XDP_PASS on the shortest path (`parse`). A heartbeat
//! is checked (cluster, known peer, replay, SipHash tag) and accounted in
//! `PEER_STATE`, then consumed (`heartbeat`). A per-peer-and-link bpf_timer
//! declares the peer dead after deadtime of silence and tells the agent via
//! the `EVENTS` ring buffer (`timer`). On service interfaces the same program
//! fences the node's service addresses with its heartbeat lease (`guard`).
#![no_std]
#![no_main]
// Inline asm on the BPF target (one unaligned 8-byte packet load; see `frame`).
#![feature(asm_experimental_arch)]

mod frame;
mod guard;
mod heartbeat;
mod maps;
mod parse;
mod timer;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn hb_xdp(ctx: XdpContext) -> u32 {
    if let Some(reason) = guard::blocks(&ctx) {
        maps::count(reason);
        return xdp_action::XDP_DROP;
    }
    let Some(off) = parse::heartbeat_offset(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    heartbeat::handle(&ctx, off)
}

/// Test path for the deadline decision: timers do not fire under
/// BPF_PROG_TEST_RUN, so tests feed `{node_id: u32, ifindex: u32, now_ns: u64}`
/// (little-endian) as the packet and this runs exactly what the timer callback
/// runs. Returns XDP_DROP if the peer was declared dead, XDP_PASS if the timer
/// would re-arm, XDP_ABORTED if there is no such entry. Never attached.
#[xdp]
pub fn hb_deadline_probe(ctx: XdpContext) -> u32 {
    timer::probe(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// bpf_timer helpers are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
