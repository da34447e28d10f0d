//! The daemon: wires the kernel program, the heartbeat sender, the ping
//! nodes, the control socket and the resources around the pure rules
//! (hb-core's `rules` and `cluster`). One direction of data: kernel events
//! -> rules (event_loop.rs feeds them) -> decisions -> executor.rs ->
//! resources -> status (report.rs).

mod epochs;
mod event_loop;
mod executor;
mod fence;
mod groups;
mod lane;
mod lease;
pub mod notify;
mod realtime;
mod report;
mod startup;
mod withdraw;

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Source;

pub use crate::rules::convert::{advert_to_wire, wire_to_advert};

pub struct RunOptions {
    pub source: Source,
    pub socket: Option<PathBuf>,
    /// This node's name (default: hostname).
    pub node: Option<String>,
    /// Pin maps and XDP links (default /sys/fs/bpf/hb/<cluster>): detection
    /// and counters go on while the agent restarts, and the next agent
    /// adopts them.
    pub pin: bool,
    pub pin_dir: Option<PathBuf>,
    /// Where resources keep what they must restore (default /run/hb/<cluster>-<node>).
    pub state_dir: Option<PathBuf>,
}

/// Logs go through `tracing`: one line per event that matters, as text or JSON.
pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: under systemd stderr is the journal,
    // where escape codes would be stored as text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().flatten_event(true).init();
    } else {
        b.init();
    }
}

/// Runs the agent until SIGTERM/SIGINT (which release held groups in order).
///
/// The event loop and its helper tasks (ping, carrier, metrics, control
/// socket) share one thread that polls the kernel's readiness itself: a
/// heartbeat event wakes it directly, not through a worker thread first
/// (one scheduling hop less on a failover's path). Nothing there blocks:
/// netlink changes run on the resource thread, heartbeats on the sender's.
pub fn run(opts: RunOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(event_loop::run(opts));
    // A reload still stuck reading a file (a hung mount) must not hold up
    // the exit: dropping the runtime would wait for it forever.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    r
}

/// This host's name as Heartbeat took it (`uname -n`), lower-cased.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}
