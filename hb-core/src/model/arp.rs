//! Announcement settings: read by config, used by resources/announce.rs.

use std::time::Duration;

/// How addresses are announced (gratuitous ARP / unsolicited NA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpSettings {
    /// Packets per address per announcement.
    pub count: u32,
    /// Gap between two packets for the same address.
    pub interval: Duration,
    /// Send ARP replies (op=2) instead of requests (op=1): some switches only
    /// learn from replies.
    pub reply_form: bool,
    /// Re-announce held addresses this often (None: never).
    pub refresh: Option<Duration>,
    /// Set the router flag in unsolicited neighbour advertisements.
    pub na_router_flag: bool,
}

impl Default for ArpSettings {
    /// Heartbeat's IPaddr2 defaults: 5 packets, 200 ms apart, request form.
    fn default() -> Self {
        ArpSettings {
            count: 5,
            interval: Duration::from_millis(200),
            reply_form: false,
            refresh: Some(Duration::from_secs(10)),
            na_router_flag: false,
        }
    }
}
