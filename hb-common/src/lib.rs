//! Types both sides of hb share: the heartbeat wire format and its SipHash tag
//! (`wire`, `siphash`), the values of the maps the agent and the XDP program
//! exchange (`maps`), the ring-buffer events (`events`) and the deadline
//! decision the kernel timer makes (`deadline`). One definition, tested once,
//! compiled into both the eBPF object and the agent.
#![no_std]

pub mod deadline;
pub mod events;
pub mod maps;
pub mod siphash;
pub mod wire;

#[cfg(test)]
extern crate std;
