//! hb's pure core: everything that decides, and nothing that touches the
//! system. No sockets, no files, no threads, no clock (the time comes in
//! with each input), so every rule is a fast, deterministic unit test.
//!
//! - `cluster/`: the cluster state machine (who holds which group), with a
//!   multi-node simulator for its tests.
//! - `rules/`: the agent's own rules around it ([`rules::AgentCore::on`]):
//!   a kernel event, a worker's report, a tick or a signal becomes a
//!   decision, handed to an [`rules::Executor`] (hb-agent's
//!   agent/executor.rs makes it an action; resources/ touch the system).
//! - `config/`: the configuration as the parsers produce it (hb-agent's
//!   config/ reads ha.d directories and TOML into it).
//! - `model/`: what a resource group is made of, and the facts about it
//!   (service addresses, interfaces, the quick step's candidate).

pub mod cluster;
pub mod config;
pub mod health;
pub mod model;
pub mod rules;

/// `cargo test` runs only this crate's tests (the workspace's default
/// members); the rest needs root, the kernel and the eBPF toolchain.
#[cfg(test)]
mod elsewhere {
    #[test]
    #[ignore = "kernel, namespace, agent and lab tests need root and bpf-linker: run `cargo xtask test` as root"]
    fn kernel_namespace_agent_and_lab_tests() {}
}
