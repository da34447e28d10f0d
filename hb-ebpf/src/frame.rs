//! Whole-word loads from the frame.
//!
//! LLVM's BPF backend assumes strict alignment: an unaligned `u64` read
//! (`read_unaligned`) becomes 8 byte loads and 14 shifts and ors, ~23
//! instructions per word. Heartbeat payloads start 2 bytes past an 8-byte
//! boundary (14 + 20 + 8), so every word of the packet was read that way.
//! The kernel allows unaligned packet access wherever the architecture has
//! efficient unaligned access (x86-64, arm64: the verifier checks packet
//! alignment only in strict mode), so one `ldxdw` does the same job.

use core::arch::asm;

/// The 8 bytes at `addr`, as a little-endian `u64`, in one load.
///
/// # Safety
/// `addr..addr + 8` must be inside the frame, proven to the verifier by a
/// `data_end` check on the same pointer.
#[inline(always)]
pub unsafe fn load_u64(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: the caller guarantees the bytes are in the frame; the
    // instruction only reads them.
    unsafe {
        asm!(
            "{v} = *(u64 *)({p} + 0)",
            v = lateout(reg) v,
            p = in(reg) addr,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}
