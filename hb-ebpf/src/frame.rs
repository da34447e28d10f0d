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

/// The 8 bytes at `addr + OFF`, as a little-endian `u64`, in one load
/// with the offset in the instruction.
///
/// # Safety
/// `addr + OFF..addr + OFF + 8` must be inside the frame, proven to the
/// verifier by a `data_end` check on the same pointer.
#[inline(always)]
pub unsafe fn load_u64_at<const OFF: i16>(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: the caller guarantees the bytes are in the frame; the
    // instruction only reads them.
    unsafe {
        asm!(
            "{v} = *(u64 *)({p} + {o})",
            v = lateout(reg) v,
            p = in(reg) addr,
            o = const OFF,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// `addr`, hidden from LLVM's optimiser. The verifier knows a packet pointer
/// is in bounds only through the very register a `data_end` comparison was
/// made on (and its copies and spills); LLVM, seeing `data + off`, may
/// recompute that sum after a helper call into a fresh register the verifier
/// knows nothing about. A value that comes out of an asm block cannot be
/// recomputed, so it is kept. The block is one `rX = rX` rather than empty:
/// an empty one still gets a BTF line_info entry, at the same instruction
/// offset as the next, which the kernel rejects.
#[inline(always)]
pub fn opaque(mut addr: usize) -> usize {
    // SAFETY: a register move, no memory access.
    unsafe { asm!("{0} = {0}", inout(reg) addr, options(nomem, nostack, preserves_flags)) };
    addr
}
