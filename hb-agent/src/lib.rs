//! hb-agent: the daemon and CLI around the XDP heartbeat program.
//!
//! - `cluster`: the pure decision logic (events in, actions out; no I/O).
//! - `agent`: the daemon's event loop around it.
//! - `config`: native TOML and Heartbeat ha.d parsers, validation.
//! - `kernel`: load/attach the XDP program, its maps and events.
//! - `sender`: the heartbeat sender (dedicated timing thread).
//! - `ping`: ping nodes / ping groups (connectivity, as ipfail).
//! - `resources`: what takeover and release do (IP, MAC, hostname, ARP, scripts).
//! - `metrics`: the Prometheus endpoint, fed from the BPF maps at scrape time.
//! - `control`: the control socket and `status` output.

pub mod agent;
pub mod carrier;
/// The cluster state machine, a crate of its own (pure, see hb-cluster).
pub use hb_cluster as cluster;
pub mod config;
pub mod control;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod ping;
pub mod resources;
pub mod sender;
