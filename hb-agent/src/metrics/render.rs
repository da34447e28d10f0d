//! The metrics snapshot and its rendering in the Prometheus text exposition
//! format, version 0.0.4.
//!
//! Written by hand rather than with the `prometheus-client` crate: the agent
//! already holds every value (kernel maps, cluster state, sender stats) and
//! only needs to print them at scrape time, so a registry of live metric
//! objects would duplicate that state for no gain. The format is small
//! (HELP/TYPE lines, label escaping, cumulative histogram buckets), this
//! keeps hb-agent's dependencies unchanged, and `render` stays a pure
//! function that the tests below pin down line by line.

use std::fmt::{self, Display, Write as _};

use hb_common::maps::{PeerKey, PeerStats, STATUS_ALIVE, counter};
pub use hb_core::rules::histogram::{Histogram, TAKEOVER_BUCKETS};

/// Everything one scrape shows. Plain data: the agent fills it from the
/// kernel maps, its cluster state and the sender's stats, then calls
/// [`render`].
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    pub cluster: String,
    /// This node's name.
    pub node: String,
    /// CLOCK_MONOTONIC ns when the snapshot was taken: the clock of
    /// `PeerStats::last_seen_ns`.
    pub now_ns: u64,
    /// One entry per peer and link, as in `PEER_STATE`.
    pub links: Vec<LinkMetrics>,
    /// XDP verdict counters summed over CPUs, indexed by `counter::*`
    /// (what `Kernel::counters()` returns).
    pub counters: [u64; counter::COUNT as usize],
    /// Agent-level events per peer.
    pub peers: Vec<PeerMetrics>,
    pub groups: Vec<GroupMetrics>,
    pub checks: Vec<CheckMetrics>,
    pub sender: SenderMetrics,
}

/// One health check of a group, as this node runs it.
#[derive(Clone, Debug, Default)]
pub struct CheckMetrics {
    pub group: String,
    pub check: String,
    /// 1 when it lets this node hold the group (up, or idle where the group
    /// is not held), 0 when down or without a result yet.
    pub up: bool,
    pub transitions: u64,
    pub duration: Histogram,
}

/// What the kernel knows about one peer on one link.
#[derive(Clone, Debug, Default)]
pub struct LinkMetrics {
    /// Peer node name.
    pub peer: String,
    /// Interface name of the link.
    pub link: String,
    pub stats: PeerStats,
}

/// What the agent (not the kernel) counted for one peer.
#[derive(Clone, Debug, Default)]
pub struct PeerMetrics {
    pub peer: String,
    /// Times the agent declared the peer dead (dead on all of its links).
    pub dead_events: u64,
}

/// One resource group.
#[derive(Clone, Debug, Default)]
pub struct GroupMetrics {
    pub name: String,
    /// Node name of the current owner, if any.
    pub owner: Option<String>,
    pub epoch: u64,
    /// Takeovers of this group by this node.
    pub takeovers: u64,
    /// Releases of this group by this node.
    pub releases: u64,
    /// How long this node's takeovers of the group took.
    pub takeover_duration: Histogram,
}

/// The heartbeat sender's counters (from `sender::stats::StatsSnapshot`).
#[derive(Clone, Debug, Default)]
pub struct SenderMetrics {
    /// Heartbeats sent (each one goes out on every link).
    pub sent: u64,
    /// Failed sends, counted per link.
    pub send_errors: u64,
    /// 99th percentile of send lateness, seconds (`p99_us as f64 / 1e6`).
    pub lateness_p99_seconds: f64,
}

impl MetricsSnapshot {
    /// Builds [`LinkMetrics`] from `Kernel::peer_states()`, naming peers and
    /// links with the given lookups; entries whose peer has no name (not in
    /// the configuration) are left out.
    pub fn links_from(
        states: &[(PeerKey, PeerStats)],
        peer_name: impl Fn(u32) -> Option<String>,
        link_name: impl Fn(u32) -> String,
    ) -> Vec<LinkMetrics> {
        states
            .iter()
            .filter_map(|(k, s)| {
                Some(LinkMetrics {
                    peer: peer_name(k.node_id)?,
                    link: link_name(k.ifindex),
                    stats: *s,
                })
            })
            .collect()
    }
}

/// Renders `s` in the text exposition format 0.0.4. Every family gets its
/// `# HELP` and `# TYPE` lines once, even when it has no samples.
fn checks(o: &mut Out, checks: &[CheckMetrics]) {
    if checks.is_empty() {
        return;
    }
    o.family(
        "hb_check_up",
        "gauge",
        "1 while the health check lets this node hold its group, 0 while it fails (or has no result yet).",
    );
    for c in checks {
        let l = [("group", c.group.as_str()), ("check", c.check.as_str())];
        o.sample("hb_check_up", &l, u64::from(c.up));
    }
    o.family(
        "hb_check_transitions_total",
        "counter",
        "Times the health check went down or came back up.",
    );
    for c in checks {
        let l = [("group", c.group.as_str()), ("check", c.check.as_str())];
        o.sample("hb_check_transitions_total", &l, c.transitions);
    }
    o.family(
        "hb_check_duration_seconds",
        "histogram",
        "How long the health check's probes took (process and interface checks, known by event, count 0).",
    );
    for c in checks {
        let h = &c.duration;
        for (le, n) in h.cumulative() {
            let le = Value::F(le).to_string();
            o.sample(
                "hb_check_duration_seconds_bucket",
                &[("group", &c.group), ("check", &c.check), ("le", &le)],
                n,
            );
        }
        let l = [("group", c.group.as_str()), ("check", c.check.as_str())];
        o.sample("hb_check_duration_seconds_sum", &l, Value::F(h.sum()));
        o.sample("hb_check_duration_seconds_count", &l, h.count());
    }
}

pub fn render(s: &MetricsSnapshot) -> String {
    let mut o = Out::default();

    o.family(
        "hb_node_info",
        "gauge",
        "Constant 1, labelled with this agent's cluster and node name.",
    );
    o.sample(
        "hb_node_info",
        &[("cluster", &s.cluster), ("node", &s.node)],
        1,
    );

    // Per peer and link, from the kernel's PEER_STATE.
    type LinkValue = fn(&LinkMetrics, u64) -> Option<Value>;
    let link_families: [(&str, &str, &str, LinkValue); 8] = [
        (
            "hb_heartbeats_received_total",
            "counter",
            "Heartbeats accepted from a peer on a link.",
            |l, _| Some(Value::U(l.stats.received)),
        ),
        (
            "hb_heartbeats_lost_total",
            "counter",
            "Heartbeats from a peer that never arrived on a link (sequence gaps).",
            |l, _| Some(Value::U(l.stats.lost)),
        ),
        (
            "hb_heartbeats_late_total",
            "counter",
            "Heartbeats that arrived more than warntime after the previous one.",
            |l, _| Some(Value::U(l.stats.late)),
        ),
        (
            "hb_peer_last_heard_seconds",
            "gauge",
            "Seconds since the last heartbeat accepted from a peer on a link.",
            // No sample for an entry that never accepted a heartbeat.
            |l, now| {
                (l.stats.last_seen_ns != 0)
                    .then(|| Value::F(now.saturating_sub(l.stats.last_seen_ns) as f64 / 1e9))
            },
        ),
        (
            "hb_peer_jitter_seconds",
            "gauge",
            "Smoothed inter-arrival jitter of a peer's heartbeats on a link.",
            |l, _| Some(Value::F(l.stats.jitter_ns as f64 / 1e9)),
        ),
        (
            "hb_peer_up",
            "gauge",
            "1 if the kernel considers the peer alive on the link, else 0.",
            |l, _| Some(Value::U((l.stats.status == STATUS_ALIVE) as u64)),
        ),
        (
            "hb_peer_incarnation_changes_total",
            "counter",
            "Times a peer's incarnation changed (it restarted), seen on a link.",
            |l, _| Some(Value::U(l.stats.incarnation_changes)),
        ),
        (
            "hb_peer_deaths_total",
            "counter",
            "Times the kernel declared a peer dead on a link (deadtime expired).",
            |l, _| Some(Value::U(l.stats.deaths)),
        ),
    ];
    for (name, kind, help, value) in link_families {
        o.family(name, kind, help);
        for l in &s.links {
            if let Some(v) = value(l, s.now_ns) {
                o.sample(name, &[("peer", &l.peer), ("link", &l.link)], v);
            }
        }
    }

    o.family(
        "hb_peer_dead_events_total",
        "counter",
        "Times the agent declared a peer dead (dead on all of its links).",
    );
    for p in &s.peers {
        o.sample(
            "hb_peer_dead_events_total",
            &[("peer", &p.peer)],
            p.dead_events,
        );
    }

    // XDP verdicts: every reason other than accepted and foreign is a drop.
    o.family(
        "hb_xdp_packets_accepted_total",
        "counter",
        "Heartbeats the XDP program accepted.",
    );
    o.sample(
        "hb_xdp_packets_accepted_total",
        &[],
        s.counters[counter::ACCEPTED as usize],
    );
    o.family(
        "hb_xdp_packets_dropped_total",
        "counter",
        "Packets the XDP program dropped, by reason (lease_expired: traffic for a service address while the service lease had lapsed; withdrawn: for an address this node released and is still removing; the others: heartbeat port).",
    );
    for (i, (name, v)) in counter::NAMES.iter().zip(s.counters).enumerate() {
        if i as u32 != counter::ACCEPTED && i as u32 != counter::FOREIGN {
            o.sample("hb_xdp_packets_dropped_total", &[("reason", name)], v);
        }
    }
    o.family(
        "hb_xdp_packets_passed_total",
        "counter",
        "Packets to the heartbeat port the XDP program passed to the network stack, by reason.",
    );
    o.sample(
        "hb_xdp_packets_passed_total",
        &[("reason", counter::NAMES[counter::FOREIGN as usize])],
        s.counters[counter::FOREIGN as usize],
    );

    // Resource groups.
    o.family(
        "hb_group_owner",
        "gauge",
        "1 labelled with the node that owns the resource group; 0 with owner=\"\" when none does.",
    );
    for g in &s.groups {
        let (owner, v) = match &g.owner {
            Some(n) => (n.as_str(), 1),
            None => ("", 0),
        };
        o.sample("hb_group_owner", &[("group", &g.name), ("owner", owner)], v);
    }
    o.family(
        "hb_group_epoch",
        "gauge",
        "Ownership epoch of the resource group.",
    );
    for g in &s.groups {
        o.sample("hb_group_epoch", &[("group", &g.name)], g.epoch);
    }
    o.family(
        "hb_group_takeovers_total",
        "counter",
        "Takeovers of the resource group by this node.",
    );
    for g in &s.groups {
        o.sample(
            "hb_group_takeovers_total",
            &[("group", &g.name)],
            g.takeovers,
        );
    }
    o.family(
        "hb_group_releases_total",
        "counter",
        "Releases of the resource group by this node.",
    );
    for g in &s.groups {
        o.sample("hb_group_releases_total", &[("group", &g.name)], g.releases);
    }
    o.family(
        "hb_takeover_duration_seconds",
        "histogram",
        "Time this node took to take over a resource group.",
    );
    for g in &s.groups {
        let h = &g.takeover_duration;
        for (le, c) in h.cumulative() {
            let le = Value::F(le).to_string();
            o.sample(
                "hb_takeover_duration_seconds_bucket",
                &[("group", &g.name), ("le", &le)],
                c,
            );
        }
        o.sample(
            "hb_takeover_duration_seconds_sum",
            &[("group", &g.name)],
            Value::F(h.sum()),
        );
        o.sample(
            "hb_takeover_duration_seconds_count",
            &[("group", &g.name)],
            h.count(),
        );
    }

    checks(&mut o, &s.checks);

    // Sender.
    o.family(
        "hb_heartbeats_sent_total",
        "counter",
        "Heartbeats this node sent (each one goes out on every link).",
    );
    o.sample("hb_heartbeats_sent_total", &[], s.sender.sent);
    o.family(
        "hb_heartbeat_send_errors_total",
        "counter",
        "Heartbeat sends that failed, counted per link.",
    );
    o.sample("hb_heartbeat_send_errors_total", &[], s.sender.send_errors);
    o.family(
        "hb_heartbeat_send_lateness_p99_seconds",
        "gauge",
        "99th percentile of how late scheduled heartbeats left, since the agent started.",
    );
    o.sample(
        "hb_heartbeat_send_lateness_p99_seconds",
        &[],
        Value::F(s.sender.lateness_p99_seconds),
    );

    o.0
}

/// A sample value: integers print exactly, floats in Prometheus spelling.
#[derive(Clone, Copy, Debug)]
enum Value {
    U(u64),
    F(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F(v)
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::U(v) => write!(f, "{v}"),
            Value::F(v) if v.is_nan() => f.write_str("NaN"),
            Value::F(v) if v == f64::INFINITY => f.write_str("+Inf"),
            Value::F(v) if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            // Rust's Display is the shortest round-trip decimal, never
            // exponent notation: valid for Prometheus ("1", "0.0005", "2.5").
            Value::F(v) => write!(f, "{v}"),
        }
    }
}

#[derive(Default)]
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl Into<Value>) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", v.into());
    }
}

/// Label values: backslash, double quote and line feed are escaped.
fn escape_label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// HELP text: backslash and line feed are escaped (quotes are not).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use hb_common::maps::STATUS_DEAD;

    use super::*;

    fn small() -> MetricsSnapshot {
        let mut h = Histogram::new(&[0.01, 0.1, 1.0]);
        h.observe(0.005);
        h.observe(0.01); // le is inclusive
        h.observe(0.5);
        h.observe(3.0);
        let mut counters = [0u64; counter::COUNT as usize];
        counters[counter::ACCEPTED as usize] = 1000;
        counters[counter::BAD_TAG as usize] = 3;
        counters[counter::FOREIGN as usize] = 7;
        MetricsSnapshot {
            cluster: "prod".into(),
            node: "alpha".into(),
            now_ns: 10_000_000_000,
            links: vec![
                LinkMetrics {
                    peer: "beta".into(),
                    link: "eth0".into(),
                    stats: PeerStats {
                        last_seen_ns: 9_750_000_000,
                        received: 500,
                        lost: 2,
                        late: 1,
                        jitter_ns: 1_500,
                        status: STATUS_ALIVE,
                        incarnation_changes: 1,
                        deaths: 0,
                        ..Default::default()
                    },
                },
                LinkMetrics {
                    peer: "we\"ird\\na\nme".into(),
                    link: "eth1".into(),
                    stats: PeerStats {
                        last_seen_ns: 0,
                        status: STATUS_DEAD,
                        deaths: 4,
                        ..Default::default()
                    },
                },
            ],
            counters,
            peers: vec![PeerMetrics {
                peer: "beta".into(),
                dead_events: 2,
            }],
            groups: vec![
                GroupMetrics {
                    name: "web".into(),
                    owner: Some("alpha".into()),
                    epoch: 5,
                    takeovers: 4,
                    releases: 3,
                    takeover_duration: h,
                },
                GroupMetrics {
                    name: "db".into(),
                    owner: None,
                    epoch: 0,
                    takeovers: 0,
                    releases: 0,
                    takeover_duration: Histogram::new(&[1.0]),
                },
            ],
            checks: Vec::new(),
            sender: SenderMetrics {
                sent: 1234,
                send_errors: 2,
                lateness_p99_seconds: 0.000051,
            },
        }
    }

    const EXPECTED: &str = r#"# HELP hb_node_info Constant 1, labelled with this agent's cluster and node name.
# TYPE hb_node_info gauge
hb_node_info{cluster="prod",node="alpha"} 1
# HELP hb_heartbeats_received_total Heartbeats accepted from a peer on a link.
# TYPE hb_heartbeats_received_total counter
hb_heartbeats_received_total{peer="beta",link="eth0"} 500
hb_heartbeats_received_total{peer="we\"ird\\na\nme",link="eth1"} 0
# HELP hb_heartbeats_lost_total Heartbeats from a peer that never arrived on a link (sequence gaps).
# TYPE hb_heartbeats_lost_total counter
hb_heartbeats_lost_total{peer="beta",link="eth0"} 2
hb_heartbeats_lost_total{peer="we\"ird\\na\nme",link="eth1"} 0
# HELP hb_heartbeats_late_total Heartbeats that arrived more than warntime after the previous one.
# TYPE hb_heartbeats_late_total counter
hb_heartbeats_late_total{peer="beta",link="eth0"} 1
hb_heartbeats_late_total{peer="we\"ird\\na\nme",link="eth1"} 0
# HELP hb_peer_last_heard_seconds Seconds since the last heartbeat accepted from a peer on a link.
# TYPE hb_peer_last_heard_seconds gauge
hb_peer_last_heard_seconds{peer="beta",link="eth0"} 0.25
# HELP hb_peer_jitter_seconds Smoothed inter-arrival jitter of a peer's heartbeats on a link.
# TYPE hb_peer_jitter_seconds gauge
hb_peer_jitter_seconds{peer="beta",link="eth0"} 0.0000015
hb_peer_jitter_seconds{peer="we\"ird\\na\nme",link="eth1"} 0
# HELP hb_peer_up 1 if the kernel considers the peer alive on the link, else 0.
# TYPE hb_peer_up gauge
hb_peer_up{peer="beta",link="eth0"} 1
hb_peer_up{peer="we\"ird\\na\nme",link="eth1"} 0
# HELP hb_peer_incarnation_changes_total Times a peer's incarnation changed (it restarted), seen on a link.
# TYPE hb_peer_incarnation_changes_total counter
hb_peer_incarnation_changes_total{peer="beta",link="eth0"} 1
hb_peer_incarnation_changes_total{peer="we\"ird\\na\nme",link="eth1"} 0
# HELP hb_peer_deaths_total Times the kernel declared a peer dead on a link (deadtime expired).
# TYPE hb_peer_deaths_total counter
hb_peer_deaths_total{peer="beta",link="eth0"} 0
hb_peer_deaths_total{peer="we\"ird\\na\nme",link="eth1"} 4
# HELP hb_peer_dead_events_total Times the agent declared a peer dead (dead on all of its links).
# TYPE hb_peer_dead_events_total counter
hb_peer_dead_events_total{peer="beta"} 2
# HELP hb_xdp_packets_accepted_total Heartbeats the XDP program accepted.
# TYPE hb_xdp_packets_accepted_total counter
hb_xdp_packets_accepted_total 1000
# HELP hb_xdp_packets_dropped_total Packets the XDP program dropped, by reason (lease_expired: traffic for a service address while the service lease had lapsed; withdrawn: for an address this node released and is still removing; the others: heartbeat port).
# TYPE hb_xdp_packets_dropped_total counter
hb_xdp_packets_dropped_total{reason="malformed"} 0
hb_xdp_packets_dropped_total{reason="bad_version"} 0
hb_xdp_packets_dropped_total{reason="wrong_cluster"} 0
hb_xdp_packets_dropped_total{reason="unknown_peer"} 0
hb_xdp_packets_dropped_total{reason="bad_tag"} 3
hb_xdp_packets_dropped_total{reason="replay"} 0
hb_xdp_packets_dropped_total{reason="old_incarnation"} 0
hb_xdp_packets_dropped_total{reason="not_configured"} 0
hb_xdp_packets_dropped_total{reason="state_full"} 0
hb_xdp_packets_dropped_total{reason="lease_expired"} 0
hb_xdp_packets_dropped_total{reason="withdrawn"} 0
# HELP hb_xdp_packets_passed_total Packets to the heartbeat port the XDP program passed to the network stack, by reason.
# TYPE hb_xdp_packets_passed_total counter
hb_xdp_packets_passed_total{reason="foreign"} 7
# HELP hb_group_owner 1 labelled with the node that owns the resource group; 0 with owner="" when none does.
# TYPE hb_group_owner gauge
hb_group_owner{group="web",owner="alpha"} 1
hb_group_owner{group="db",owner=""} 0
# HELP hb_group_epoch Ownership epoch of the resource group.
# TYPE hb_group_epoch gauge
hb_group_epoch{group="web"} 5
hb_group_epoch{group="db"} 0
# HELP hb_group_takeovers_total Takeovers of the resource group by this node.
# TYPE hb_group_takeovers_total counter
hb_group_takeovers_total{group="web"} 4
hb_group_takeovers_total{group="db"} 0
# HELP hb_group_releases_total Releases of the resource group by this node.
# TYPE hb_group_releases_total counter
hb_group_releases_total{group="web"} 3
hb_group_releases_total{group="db"} 0
# HELP hb_takeover_duration_seconds Time this node took to take over a resource group.
# TYPE hb_takeover_duration_seconds histogram
hb_takeover_duration_seconds_bucket{group="web",le="0.01"} 2
hb_takeover_duration_seconds_bucket{group="web",le="0.1"} 2
hb_takeover_duration_seconds_bucket{group="web",le="1"} 3
hb_takeover_duration_seconds_bucket{group="web",le="+Inf"} 4
hb_takeover_duration_seconds_sum{group="web"} 3.515
hb_takeover_duration_seconds_count{group="web"} 4
hb_takeover_duration_seconds_bucket{group="db",le="1"} 0
hb_takeover_duration_seconds_bucket{group="db",le="+Inf"} 0
hb_takeover_duration_seconds_sum{group="db"} 0
hb_takeover_duration_seconds_count{group="db"} 0
# HELP hb_heartbeats_sent_total Heartbeats this node sent (each one goes out on every link).
# TYPE hb_heartbeats_sent_total counter
hb_heartbeats_sent_total 1234
# HELP hb_heartbeat_send_errors_total Heartbeat sends that failed, counted per link.
# TYPE hb_heartbeat_send_errors_total counter
hb_heartbeat_send_errors_total 2
# HELP hb_heartbeat_send_lateness_p99_seconds 99th percentile of how late scheduled heartbeats left, since the agent started.
# TYPE hb_heartbeat_send_lateness_p99_seconds gauge
hb_heartbeat_send_lateness_p99_seconds 0.000051
"#;

    #[test]
    fn exact_output_for_small_snapshot() {
        let got = render(&small());
        for (i, (g, e)) in got.lines().zip(EXPECTED.lines()).enumerate() {
            assert_eq!(g, e, "line {}", i + 1);
        }
        assert_eq!(got, EXPECTED);
    }

    /// Structural check of the format on any output: HELP then TYPE once
    /// per family, every sample inside the family its TYPE line opened,
    /// families contiguous, the text ends with a newline.
    fn check_format(text: &str) {
        assert!(text.ends_with('\n'));
        let mut seen = HashSet::new();
        let mut current: Option<(String, String)> = None;
        let mut pending_help: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(name.clone()), "family {name} twice");
                pending_help = Some(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let (name, kind) = (it.next().unwrap(), it.next().unwrap());
                assert_eq!(
                    pending_help.take().as_deref(),
                    Some(name),
                    "TYPE without HELP"
                );
                assert!(["counter", "gauge", "histogram"].contains(&kind));
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
                assert!(name.starts_with("hb_"), "{name}");
                current = Some((name.to_string(), kind.to_string()));
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                let (fam, kind) = current.as_ref().expect("sample before TYPE");
                let ok = if kind == "histogram" {
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suf| name.strip_suffix(suf) == Some(fam.as_str()))
                } else {
                    name == fam
                };
                assert!(ok, "sample {name} in family {fam}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(
                    value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                    "value {value}"
                );
            }
        }
    }

    #[test]
    fn health_checks_render_per_group_and_check() {
        let mut h = Histogram::new(&[0.001, 0.01]);
        h.observe(0.0002);
        h.observe(0.02);
        let s = MetricsSnapshot {
            checks: vec![CheckMetrics {
                group: "web".into(),
                check: "http:http://127.0.0.1/".into(),
                up: false,
                transitions: 3,
                duration: h,
            }],
            ..MetricsSnapshot::default()
        };
        let out = render(&s);
        check_format(&out);
        let l = "{group=\"web\",check=\"http:http://127.0.0.1/\"}";
        for want in [
            format!("hb_check_up{l} 0"),
            format!("hb_check_transitions_total{l} 3"),
            format!("hb_check_duration_seconds_count{l} 2"),
            "hb_check_duration_seconds_bucket{group=\"web\",check=\"http:http://127.0.0.1/\",le=\"0.001\"} 1".to_string(),
        ] {
            assert!(out.contains(&want), "{want} in\n{out}");
        }
        assert!(
            !render(&MetricsSnapshot::default()).contains("hb_check_up"),
            "no checks, no families"
        );
    }

    #[test]
    fn format_is_well_formed() {
        check_format(&render(&small()));
        check_format(&render(&MetricsSnapshot::default()));
    }

    #[test]
    fn families_are_present_without_samples() {
        let out = render(&MetricsSnapshot::default());
        assert!(out.contains("# TYPE hb_takeover_duration_seconds histogram\n"));
        assert!(out.contains("# TYPE hb_peer_up gauge\n"));
        assert!(!out.contains("hb_peer_up{"));
        assert!(out.contains("hb_xdp_packets_accepted_total 0\n"));
    }

    #[test]
    fn label_and_help_escaping() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
    }

    #[test]
    fn float_spelling() {
        assert_eq!(Value::F(1.0).to_string(), "1");
        assert_eq!(Value::F(0.0005).to_string(), "0.0005");
        assert_eq!(Value::F(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::F(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::F(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::U(u64::MAX).to_string(), "18446744073709551615");
    }

    #[test]
    fn links_from_kernel_states() {
        let states = [
            (
                PeerKey {
                    node_id: 2,
                    ifindex: 3,
                },
                PeerStats {
                    received: 9,
                    ..Default::default()
                },
            ),
            (
                PeerKey {
                    node_id: 99,
                    ifindex: 3,
                },
                PeerStats::default(),
            ),
        ];
        let links = MetricsSnapshot::links_from(
            &states,
            |id| (id == 2).then(|| "beta".to_string()),
            |idx| format!("if{idx}"),
        );
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].peer, "beta");
        assert_eq!(links[0].link, "if3");
        assert_eq!(links[0].stats.received, 9);
    }
}
