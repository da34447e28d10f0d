//! hb-agent: the daemon and CLI around the XDP heartbeat program.
//!
//! What decides is pure and lives in hb-core (re-exported here as
//! `cluster`, `model` and `rules`); this crate is the shell that feeds it
//! and carries its decisions out:
//!
//! - `agent`: start-up, the event loop, the executor of the rules' decisions.
//! - `config`: native TOML and Heartbeat ha.d parsers, validation.
//! - `kernel`: load/attach the XDP program, its maps and events.
//! - `sender`: the heartbeat sender (dedicated timing thread).
//! - `ping`: ping nodes / ping groups (connectivity, as ipfail).
//! - `resources`: what takeover and release do (IP, MAC, hostname, ARP, scripts).
//! - `metrics`: the Prometheus endpoint, fed from the BPF maps at scrape time.
//! - `control`: the control socket and `status` output.

pub mod agent;
pub mod carrier;
/// The cluster state machine, the resource model and the agent's rules:
/// pure, in hb-core.
pub use hb_core::{cluster, model, rules};
pub mod config;
pub mod control;
pub mod health;
pub mod kernel;
pub mod metrics;
pub mod ping;
pub mod resources;
pub mod sender;
