//! Helpers shared by hb's kernel and namespace tests: packet builders and
//! network-namespace fixtures that clean up after themselves.

pub mod bench_chart;
pub mod container;
pub mod fault;
pub mod flood;
pub mod kernel;
pub mod lab;
pub mod packets;
pub mod pair;
pub mod scrape;
pub mod svg;
pub mod twohost;

/// The shared namespace fixture (hb-testkit), reached here as before.
pub use hb_testkit::netns;
