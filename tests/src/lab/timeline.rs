//! A readable timeline: the lab's own steps plus what each agent logged
//! (detections, takeovers, releases, announcements), in ms since the
//! current scenario began.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::SystemTime;

use super::topology::NODES;

pub struct Timeline {
    origin_wall: f64,
    files: Vec<(usize, PathBuf, u64)>,
    verbose: bool,
    /// In time order (ms since the scenario began), whenever each was read.
    pub entries: Vec<(f64, String)>,
    /// The agents' lines with a `step` field (agent/step.rs), structured.
    pub steps: Vec<Step>,
    /// Every interesting agent line, by what it is about (see `doubled`).
    said: Vec<Said>,
    _dir: PathBuf,
}

/// An agent line reduced to what event it reports.
#[derive(Clone, Debug, PartialEq)]
struct Said {
    at: f64,
    node: usize,
    message: String,
    /// `group`, `peer`, `link`, `resource` fields: what the event is about.
    about: [Option<String>; 4],
}

/// One agent log line with a `step` field, in ms since the scenario began.
#[derive(Clone, Debug)]
pub struct Step {
    pub at: f64,
    /// The node that logged it.
    pub node: &'static str,
    pub step: String,
    pub group: Option<String>,
    pub peer: Option<String>,
}

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as tracing writes it
/// (`2026-11-25T22:30:01.123456Z`).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.trim_end_matches('Z');
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let ss = t.next()?.parse::<f64>().ok()?;
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

/// Agent log messages worth a line in the timeline.
const INTERESTING: &[&str] = &[
    "peer dead",
    "peer up",
    "taking over group",
    "releasing group",
    "group started",
    "address up (quick step)",
    "group released",
    "group start failed",
    "group stop failed",
    "fencing",
    "frozen",
    "agent started",
    "agent stopped",
    "SIGTERM",
    "ping targets",
    "adopting",
    "resource start",
    "resource stop",
    "split brain",
    "WARN",
    "no peer confirmed",
];

impl Timeline {
    pub fn new(dir: PathBuf, verbose: bool) -> Timeline {
        Timeline {
            origin_wall: wall_now(),
            files: Vec::new(),
            verbose,
            entries: Vec::new(),
            steps: Vec::new(),
            said: Vec::new(),
            _dir: dir,
        }
    }

    /// A new scenario: times count from now.
    pub fn begin(&mut self, title: &str) {
        self.poll();
        self.origin_wall = wall_now();
        self.entries.clear();
        self.steps.clear();
        self.said.clear();
        if self.verbose {
            println!("\n=== {title}");
        }
    }

    /// Follows `path` from byte `from` (the log's length before the agent
    /// was started, so a restarted agent's old lines are not read again).
    pub fn watch_log(&mut self, node: usize, path: &std::path::Path, from: u64) {
        self.files.retain(|(n, _, _)| *n != node);
        self.files.push((node, path.to_path_buf(), from));
    }

    /// Files `line` in time order. Printed as read: since a note first
    /// reads what the agents logged until then, the printed lines go
    /// forward too (unless an agent's line reached its file late).
    fn push(&mut self, at: f64, line: String) {
        if self.verbose {
            println!("  {at:>8.1} ms  {line}");
        }
        let i = self.entries.partition_point(|(t, _)| *t <= at);
        self.entries.insert(i, (at, line));
    }

    /// A lab step, stamped now, after what the agents logged before it.
    pub fn note(&mut self, msg: &str) {
        self.poll();
        let at = (wall_now() - self.origin_wall) * 1e3;
        self.push(at, format!("lab: {msg}"));
    }

    /// Agent lines that report one event twice: the same node, message and
    /// subject (group, peer, link) within `within_ms` of each other, as in
    /// `group started` logged by the resources and again by the agent.
    /// Each pair as text, for an assertion message.
    pub fn doubled(&self, within_ms: f64) -> Vec<String> {
        let mut out = Vec::new();
        for (i, a) in self.said.iter().enumerate() {
            if let Some(b) = self.said[i + 1..].iter().find(|b| {
                b.node == a.node
                    && b.message == a.message
                    && b.about == a.about
                    && (b.at - a.at).abs() <= within_ms
            }) {
                out.push(format!(
                    "{}: {:?} {:?} at {:.1} and {:.1} ms",
                    NODES[a.node].name, a.message, a.about, a.at, b.at
                ));
            }
        }
        out
    }

    /// When `node` first logged `step` in this scenario (ms after its
    /// start), for `group` (a peer's death is nobody's group).
    pub fn first_step(&self, node: &str, step: &str, group: &str) -> Option<f64> {
        self.steps
            .iter()
            .find(|s| {
                s.at >= 0.0
                    && s.node == node
                    && s.step == step
                    && (step == hb_agent::rules::step::PEER_DEAD
                        || s.group.as_deref() == Some(group))
            })
            .map(|s| s.at)
    }

    /// Reads what the agents logged since the last call.
    pub fn poll(&mut self) {
        let mut new = Vec::new();
        let mut steps = Vec::new();
        let mut said = Vec::new();
        for (node, path, off) in self.files.iter_mut() {
            let Ok(mut f) = std::fs::File::open(&*path) else {
                continue;
            };
            if f.seek(SeekFrom::Start(*off)).is_err() {
                continue;
            }
            let mut s = String::new();
            if f.read_to_string(&mut s).is_err() {
                continue;
            }
            // Keep a partial last line for next time.
            let complete = s.rfind('\n').map(|i| i + 1).unwrap_or(0);
            *off += complete as u64;
            for line in s[..complete].lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if let Some(st) = step_of(*node, &v) {
                    steps.push(st);
                }
                if let Some(e) = format_line(*node, &v) {
                    said.push(said_of(*node, &v, e.0));
                    new.push(e);
                }
            }
        }
        new.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (wall, text) in new {
            let at = (wall - self.origin_wall) * 1e3;
            self.push(at, text);
        }
        for mut st in steps {
            st.at = (st.at - self.origin_wall) * 1e3;
            self.steps.push(st);
        }
        for mut s in said {
            s.at = (s.at - self.origin_wall) * 1e3;
            self.said.push(s);
        }
    }
}

/// An interesting line (`format_line` took it) by its event; `at` in wall s.
fn said_of(node: usize, v: &serde_json::Value, at: f64) -> Said {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Said {
        at,
        node,
        message: field("message").unwrap_or_default(),
        about: [
            field("group"),
            field("peer"),
            field("link"),
            field("resource"),
        ],
    }
}

/// The line's step, if it has a `step` field; `at` in wall seconds.
fn step_of(node: usize, v: &serde_json::Value) -> Option<Step> {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Some(Step {
        at: parse_rfc3339(v.get("timestamp")?.as_str()?)?,
        node: NODES[node].name,
        step: field("step")?,
        group: field("group"),
        peer: field("peer"),
    })
}

fn format_line(node: usize, v: &serde_json::Value) -> Option<(f64, String)> {
    let msg = v.get("message")?.as_str()?.to_string();
    let level = v.get("level").and_then(|l| l.as_str()).unwrap_or("");
    if !INTERESTING.iter().any(|k| msg.contains(k) || level == *k) {
        return None;
    }
    let ts = parse_rfc3339(v.get("timestamp")?.as_str()?)?;
    let mut extra = Vec::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if matches!(
                k.as_str(),
                "message" | "timestamp" | "level" | "target" | "threadName" | "threadId"
            ) {
                continue;
            }
            extra.push(format!("{k}={}", val.to_string().trim_matches('"')));
        }
    }
    let name = NODES[node].name;
    Some((
        ts,
        format!("{name}: {msg} {}", extra.join(" "))
            .trim_end()
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_read_from_its_fields_not_its_message() {
        let line = r#"{"timestamp":"1970-01-01T00:00:02Z","level":"INFO","message":"worded anyhow","step":"takeover.decided","group":"vip1","epoch":3}"#;
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = step_of(1, &v).unwrap();
        assert_eq!(
            (s.at, s.node, s.step.as_str()),
            (2.0, "node1", "takeover.decided")
        );
        assert_eq!((s.group.as_deref(), s.peer), (Some("vip1"), None));
        let plain = serde_json::json!({"timestamp": "1970-01-01T00:00:02Z", "message": "x"});
        assert!(step_of(1, &plain).is_none(), "no step field: not a step");
    }

    #[test]
    fn one_event_logged_twice_is_found() {
        let mut t = Timeline::new(PathBuf::from("/nonexistent"), false);
        let line = |at: f64, msg: &str, group: &str| Said {
            at,
            node: 1,
            message: msg.into(),
            about: [Some(group.into()), None, None, None],
        };
        t.said = vec![
            line(10.0, "group started", "vip1"),
            line(10.4, "group started", "vip1"),
            line(10.4, "group started", "vip2"),
            line(900.0, "group started", "vip1"),
        ];
        let d = t.doubled(5.0);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].starts_with("node1: \"group started\""), "{d:?}");
    }

    #[test]
    fn entries_stay_in_time_order() {
        let mut t = Timeline::new(PathBuf::from("/nonexistent"), false);
        t.push(296.4, "lab: node0 agent started".into());
        t.push(50.2, "node0: config".into());
        let at: Vec<f64> = t.entries.iter().map(|e| e.0).collect();
        assert_eq!(at, [50.2, 296.4]);
    }

    #[test]
    fn rfc3339_epoch_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800.0));
    }
}
