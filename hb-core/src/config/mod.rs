//! The configuration model: what hb-agent's parsers (ha.d directories,
//! TOML) produce and the rest of the agent reads.

pub mod diag;
pub mod model;

pub use diag::Diag;
pub use model::*;
