//! hb-agent: the daemon and CLI around the XDP heartbeat program.
//!
//! - `kernel`: load/attach the XDP program, its maps and events.
//! - `sender`: the heartbeat sender (dedicated timing thread).

pub mod kernel;
pub mod sender;
