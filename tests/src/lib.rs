//! Helpers shared by hb's kernel and namespace tests: packet builders and
//! network-namespace fixtures that clean up after themselves.

pub mod kernel;
pub mod lab;
pub mod netns;
pub mod packets;
pub mod pair;
pub mod twohost;
