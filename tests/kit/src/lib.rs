//! The fixtures every hb test shares, in one place: a network namespace
//! that always goes away (`netns`), a BPF filesystem of the test's own, and
//! a guard that ends the process a test started, also on panic (`process`).
//! Used by hb-agent's resource tests and by the hb-tests crate (kernel,
//! namespace and lab tests, benchmarks).

pub mod netns;
pub mod process;

/// Panics (a test never passes silently) when the test cannot run for lack
/// of privilege; `what` says which test.
pub fn require_root(what: &str) {
    // SAFETY: trivial libc call.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "{what} needs root (it creates network namespaces and loads XDP programs): \
             run `cargo xtask test` as root. It does not pass silently; the pure tests \
             run anywhere with plain `cargo test`."
        );
    }
}
