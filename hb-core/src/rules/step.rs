//! The `step` field of the log lines that mark a failover's steps: a
//! stable name for tools (the benchmark, the lab's timeline) to match,
//! so that rewording a message cannot silently empty a measurement.

pub const PEER_DEAD: &str = "peer.dead";
pub const RELEASING: &str = "release.decided";
pub const RELEASED: &str = "release.done";
pub const TAKING_OVER: &str = "takeover.decided";
pub const ADDRESS_UP: &str = "takeover.address_up";
pub const STARTED: &str = "takeover.started";
pub const TAKEN_OVER: &str = "takeover.done";
