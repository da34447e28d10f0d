//! What a check is, as the configuration says it (TOML `[[group.check]]`,
//! or `ha.d/checks.toml` for Heartbeat directories). hb-agent's health/
//! runs them; [`super::Tracker`] turns their results into up and down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Origin;

/// Defaults, as keepalived's `vrrp_script` (interval 1 s, rise 1, fall 1),
/// plus a hold-down keepalived lacks: a check that fell stays down this
/// long after it passes again, so a flapping service cannot pull its group
/// back and forth.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Most bytes of a check's output (script, HTTP body, file) hb reads.
pub const OUTPUT_LIMIT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Unique within its group; default `KIND:TARGET` (`process:nginx`).
    pub name: String,
    pub kind: CheckKind,
    /// Between two probes (polled kinds), or between two looks for a
    /// process that is not running (process checks; its death is an event).
    pub interval: Duration,
    /// A probe that takes longer fails (and an exec check's process group
    /// is killed). Default: the interval, so probes never pile up.
    pub timeout: Duration,
    /// Consecutive passes to come up after a fall.
    pub rise: u32,
    /// Consecutive failures to go down.
    pub fall: u32,
    pub hold_down: Duration,
    pub when: When,
    pub on_fail: OnFail,
    pub origin: Option<Origin>,
}

/// Where a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// On every node that may hold the group (keepalived's `track_*`): a
    /// service that runs everywhere, the VIP moving between them.
    Always,
    /// Only where the group is held (Pacemaker's `monitor`): the service
    /// is one of the group's own resources, stopped elsewhere. A node
    /// that does not hold the group counts as passing once its hold-down
    /// after a fall is over.
    Held,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFail {
    /// The node becomes ineligible: the group moves to a healthy candidate.
    Failover,
    /// Restart the monitored resource in place, up to `max` times within
    /// `window`; past that, fail over (Pacemaker's migration-threshold and
    /// failure-timeout). Monitor checks only.
    Restart { max: u32, window: Duration },
    /// Log, count and show it; move nothing.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Process(ProcessBy),
    Tcp {
        addr: SocketAddr,
    },
    Http(HttpTarget),
    /// `/bin/sh -c COMMAND`, exit 0 = healthy.
    Exec {
        command: String,
    },
    /// keepalived's `track_file`: the file holds a number (0 = healthy) or
    /// a word (`up`/`ok`/`healthy` or `down`/`fail`/`failed`).
    File {
        path: PathBuf,
    },
    /// Carrier (up and lower layer up) of an interface, by event.
    Interface {
        iface: String,
    },
    /// The group's own script resource: LSB `status` / OCF `monitor`
    /// (Heartbeat scripts have `status` too), by index in the group's
    /// resources.
    Monitor {
        resource: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessBy {
    /// `/proc/PID/comm` or the basename of argv[0].
    Name(String),
    Pidfile(PathBuf),
    /// A systemd unit: the processes of its cgroup.
    Unit(String),
}

/// `http://HOST[:PORT][/PATH]`, HOST an IP address or `localhost` (a check
/// must not wait on DNS), and what the answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub url: String,
    pub addr: SocketAddr,
    /// The Host header.
    pub host: String,
    pub path: String,
    pub status: u16,
    /// A substring the body must contain (its first `OUTPUT_LIMIT` bytes).
    pub body: Option<String>,
}

impl HttpTarget {
    /// Parses `url`; the error says what is wrong with it.
    pub fn parse(url: &str, status: u16, body: Option<String>) -> Result<HttpTarget, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("{url:?}: https is not supported (check the service over plain http on a local port, or use an exec check)")
            } else {
                format!("{url:?}: expected http://HOST[:PORT]/PATH")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("{url:?}: bad port in {authority:?}"))?;
        let ip: std::net::IpAddr = if host == "localhost" {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| {
                    format!("{url:?}: host {host:?} is not an IP address (or localhost): a check does not wait on DNS")
                })?
        };
        if !(100..=599).contains(&status) {
            return Err(format!("status {status}: not an HTTP status (100-599)"));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{url:?}: the path has a space or a control character"
            ));
        }
        Ok(HttpTarget {
            url: url.to_string(),
            addr: SocketAddr::new(ip, port),
            host: authority.to_string(),
            path: path.to_string(),
            status,
            body,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` -> (host, port), port 80 unless given.
fn split_host_port(a: &str) -> Option<(&str, u16)> {
    if let Some(end) = a.find(']') {
        let (h, rest) = a.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Some((h, p.parse().ok()?)),
            None if rest.is_empty() => Some((h, 80)),
            None => None,
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) => Some((h, p.parse().ok()?)),
        None => Some((a, 80)),
    }
}

impl CheckKind {
    /// `process`, `tcp`, ...: as written in `type`.
    pub fn word(&self) -> &'static str {
        match self {
            CheckKind::Process(_) => "process",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Exec { .. } => "exec",
            CheckKind::File { .. } => "file",
            CheckKind::Interface { .. } => "interface",
            CheckKind::Monitor { .. } => "monitor",
        }
    }

    /// Known by event rather than by polling: the interval only paces the
    /// looks for a process that is not there.
    pub fn event_driven(&self) -> bool {
        matches!(self, CheckKind::Process(_) | CheckKind::Interface { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_parse_or_say_why_not() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/health", 200, None).unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/health")
        );
        let t = HttpTarget::parse("http://localhost", 204, None).unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        let t = HttpTarget::parse("http://[::1]:81/x", 200, None).unwrap();
        assert_eq!(t.addr, "[::1]:81".parse().unwrap());
        for (bad, says) in [
            ("https://10.0.0.1/", "https is not supported"),
            ("ftp://x", "expected http://"),
            ("http://web.example/", "not an IP address"),
            ("http://10.0.0.1:99999/", "bad port"),
            ("http:///x", "no host"),
            ("http://10.0.0.1/a b", "space"),
        ] {
            let e = HttpTarget::parse(bad, 200, None).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(
            HttpTarget::parse("http://10.0.0.1/", 42, None)
                .unwrap_err()
                .contains("status 42")
        );
    }
}
