//! What `hb-agent status` shows, and how it prints for people.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusReport {
    pub cluster: String,
    pub node: String,
    pub uptime_s: f64,
    pub authenticated: bool,
    pub nodes: Vec<NodeStatus>,
    pub groups: Vec<GroupStatus>,
    pub warnings: Vec<String>,
    /// XDP verdict counters by name.
    pub counters: Vec<(String, u64)>,
    pub attachments: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub id: u32,
    pub local: bool,
    /// "alive", "dead", "unknown" (never heard), or "local".
    pub state: String,
    pub links: Vec<LinkStatus>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LinkStatus {
    pub iface: String,
    pub state: String,
    pub last_heard_ms: Option<f64>,
    pub received: u64,
    pub lost: u64,
    pub late: u64,
    pub jitter_us: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    /// The whole first resource when `name` is its short form (haresources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aka: Option<String>,
    /// Its resources in start order, one line each.
    #[serde(default)]
    pub resources: Vec<String>,
    pub owner: Option<String>,
    pub since_s: Option<f64>,
    pub epoch: u32,
    /// What this node is doing with it: held, starting, stopping, withdrawn
    /// (released, its addresses not yet removed here), STUCK, -.
    pub local: String,
    /// With checks: `healthy`, `UNHEALTHY` (not eligible here) or
    /// `pending` (no result yet).
    #[serde(default)]
    pub health: Option<String>,
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
}

/// One health check as this node runs it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    /// pending, up, down, idle (a `when = "held"` check where the group is
    /// not held), restarting.
    pub state: String,
    /// The last probe: passed or not, what it saw, how long it took, how
    /// long ago.
    pub last_ok: Option<bool>,
    pub detail: String,
    pub latency_ms: Option<f64>,
    pub last_s: Option<f64>,
    /// Consecutive passes / failures.
    pub passes: u32,
    pub fails: u32,
    pub last_change_s: Option<f64>,
    pub transitions: u64,
    /// In-place restarts within the restart window.
    #[serde(default)]
    pub restarts: usize,
}

impl StatusReport {
    /// The table people read.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "cluster {}  node {}  up {:.0}s  heartbeats {}",
            self.cluster,
            self.node,
            self.uptime_s,
            if self.authenticated {
                "authenticated"
            } else {
                "NOT AUTHENTICATED"
            }
        );
        let _ = writeln!(
            o,
            "\nNODE        STATE    LINK      LAST HEARD  RECEIVED      LOST  LATE  JITTER"
        );
        for n in &self.nodes {
            if n.links.is_empty() {
                let _ = writeln!(o, "{:<11} {:<8} -", n.name, n.state);
            }
            for (i, l) in n.links.iter().enumerate() {
                let name = if i == 0 { n.name.as_str() } else { "" };
                let st = if i == 0 { n.state.as_str() } else { "" };
                let heard = l
                    .last_heard_ms
                    .map(|m| format!("{m:.1} ms"))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    o,
                    "{name:<11} {st:<8} {:<9} {heard:>10}  {:>8}  {:>8}  {:>4}  {:.0} us ({})",
                    l.iface, l.received, l.lost, l.late, l.jitter_us, l.state
                );
            }
        }
        let _ = writeln!(
            o,
            "\nGROUP                 OWNER       EPOCH  SINCE     HERE"
        );
        for g in &self.groups {
            let since = g
                .since_s
                .map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "-".into());
            let health = match g.health.as_deref() {
                Some("healthy") | None => String::new(),
                Some(h) => format!(" ({h})"),
            };
            let _ = writeln!(
                o,
                "{:<21} {:<11} {:>5}  {since:<9} {}{health}",
                g.name,
                g.owner.as_deref().unwrap_or("-"),
                g.epoch,
                g.local
            );
            if !g.resources.is_empty() {
                let _ = writeln!(o, "  {}", g.resources.join(", then "));
            }
        }
        if self.groups.iter().any(|g| !g.checks.is_empty()) {
            let _ = writeln!(
                o,
                "\nCHECK                          GROUP        STATE       LAST  LATENCY     RUN  CHANGED  DETAIL"
            );
            for g in &self.groups {
                for c in &g.checks {
                    let last = match c.last_ok {
                        Some(true) => "pass",
                        Some(false) => "FAIL",
                        None => "-",
                    };
                    let lat = c.latency_ms.map_or("-".into(), |m| format!("{m:.2} ms"));
                    let run = match (c.passes, c.fails) {
                        (0, 0) => "-".to_string(),
                        (p, 0) => format!("+{p}"),
                        (_, f) => format!("-{f}"),
                    };
                    let changed = c.last_change_s.map_or("-".into(), |s| format!("{s:.1}s"));
                    let _ = writeln!(
                        o,
                        "{:<30} {:<12} {:<11} {last:<5} {lat:>8} {run:>7}  {changed:<8} {}",
                        c.name, g.name, c.state, c.detail
                    );
                }
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(o, "\nWARNINGS");
            for w in &self.warnings {
                let _ = writeln!(o, "  ! {w}");
            }
        }
        let dropped: Vec<String> = self
            .counters
            .iter()
            .filter(|(n, v)| *v > 0 && n != "accepted")
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let accepted = self
            .counters
            .iter()
            .find(|(n, _)| n == "accepted")
            .map(|(_, v)| *v)
            .unwrap_or(0);
        let _ = writeln!(
            o,
            "\nXDP: {} | accepted={accepted} {}",
            self.attachments.join(", "),
            if dropped.is_empty() {
                "dropped=none".to_string()
            } else {
                dropped.join(" ")
            }
        );
        o
    }
}
