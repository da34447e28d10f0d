//! Prometheus metrics: a snapshot of what the agent knows, rendered in the
//! text exposition format (0.0.4), served over a minimal HTTP endpoint.
//!
//! - `render`: plain-data snapshot types and the pure `render` function.
//! - `server`: `GET /metrics` on a TCP socket; each scrape asks the agent's
//!   event loop for a freshly rendered page over a channel.

pub mod render;
pub mod server;

pub use render::{
    CheckMetrics, GroupMetrics, Histogram, LinkMetrics, MetricsSnapshot, PeerMetrics,
    SenderMetrics, TAKEOVER_BUCKETS, render,
};
pub use server::{CONTENT_TYPE, MetricsServer, ScrapeReply, ScrapeRequests};
