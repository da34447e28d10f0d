//! Health checks: runs each group's checks (probe/) and reports every
//! result to the event loop, where hb-core's `health` turns them into up
//! and down and the cluster moves the group.

pub mod probe;
mod runner;

pub use runner::{Checks, GroupChecks, Report};
