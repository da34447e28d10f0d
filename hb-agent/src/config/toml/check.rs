//! `[[group.check]]` (hb.toml) and `[[check]]` (ha.d/checks.toml) tables ->
//! CheckSpec. As resources: one flat table for every `type`, and a key that
//! does not belong to the type is an error at its line.
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use ::toml::Spanned;

use super::build::Build;
use super::schema::CheckT;
use crate::config::values;
use crate::model::ResourceSpec;
use hb_core::health::{
    CheckKind, CheckSpec, DEFAULT_HOLD_DOWN, DEFAULT_INTERVAL, DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_WINDOW, HttpTarget, OnFail, ProcessBy, When,
};

/// More checks than this on one group is a mistake, not a configuration.
pub const MAX_CHECKS_PER_GROUP: usize = 16;

const TYPES: &str =
    "\"process\", \"tcp\", \"http\", \"exec\", \"file\", \"interface\" or \"monitor\"";

impl Build<'_> {
    /// The checks of group `group` (its resources for `monitor`); `prefix`
    /// is `group.check` or `check` (checks.toml), for the messages.
    pub(super) fn checks(
        &mut self,
        checks: &[&Spanned<CheckT>],
        group: &str,
        resources: &[ResourceSpec],
        prefix: &str,
    ) -> Vec<CheckSpec> {
        let mut out: Vec<CheckSpec> = Vec::new();
        for c in checks {
            let Some(spec) = self.check(c.get_ref(), resources, prefix) else {
                continue;
            };
            if out.iter().any(|o| o.name == spec.name) {
                let msg = format!(
                    "group `{group}` has two checks named `{}` (set `name` to tell them apart)",
                    spec.name
                );
                self.error(&c.get_ref().kind, &format!("{prefix}.name"), msg);
                continue;
            }
            out.push(spec);
        }
        if out.len() > MAX_CHECKS_PER_GROUP {
            let msg = format!(
                "group `{group}` has {} checks, at most {MAX_CHECKS_PER_GROUP}",
                out.len()
            );
            self.error(&checks[MAX_CHECKS_PER_GROUP].get_ref().kind, prefix, msg);
        }
        out
    }

    fn check(&mut self, c: &CheckT, resources: &[ResourceSpec], prefix: &str) -> Option<CheckSpec> {
        let kind = c.kind.get_ref().as_str();
        let allowed: &[&str] = match kind {
            "process" => &["process", "pidfile", "unit"],
            "tcp" => &["address"],
            "http" => &["url", "status", "body"],
            "exec" => &["command"],
            "file" => &["path"],
            "interface" => &["iface"],
            "monitor" => &["resource", "max_restarts", "restart_window"],
            other => {
                let msg = format!("expected {TYPES}, found {other:?}");
                self.error(&c.kind, &format!("{prefix}.type"), msg);
                return None;
            }
        };
        let errors_before = self.error_count();
        for (field, span) in present_fields(c) {
            if !allowed.contains(&field) && !COMMON.contains(&field) {
                let msg = format!("does not apply to type = \"{kind}\"");
                let d = self.spot(span).error(&format!("{prefix}.{field}"), msg);
                self.diags.push(d);
            }
        }
        let (what, target) = self.check_kind(c, resources, prefix)?;
        let f = |name: &str| format!("{prefix}.{name}");
        let interval = self.positive(&c.interval, &f("interval"), DEFAULT_INTERVAL);
        let timeout = self.positive(&c.timeout, &f("timeout"), interval);
        let count = |b: &mut Self, v: &Option<Spanned<u32>>, name: &str| match v {
            Some(n) if *n.get_ref() == 0 => {
                b.error(n, &f(name), "must be at least 1");
                1
            }
            Some(n) => *n.get_ref(),
            None => 1,
        };
        let rise = count(self, &c.rise, "rise");
        let fall = count(self, &c.fall, "fall");
        let hold_down = c
            .hold_down
            .as_ref()
            .map_or(DEFAULT_HOLD_DOWN, |h| h.get_ref().0);
        let monitor = matches!(what, CheckKind::Monitor { .. });
        let when = match &c.when {
            Some(w) if monitor => {
                self.error(
                    w,
                    &f("when"),
                    "a monitor check runs where its group is held; `when` does not apply",
                );
                When::Held
            }
            Some(w) => self.parse(w, &f("when"), |s| match s {
                "always" => Ok(When::Always),
                "held" => Ok(When::Held),
                _ => Err(format!("expected \"always\" or \"held\", found {s:?}")),
            })?,
            None if monitor => When::Held,
            None => When::Always,
        };
        let on_fail = match &c.on_fail {
            Some(o) => self.parse(o, &f("on_fail"), |s| match s {
                "failover" => Ok(OnFail::Failover),
                "ignore" => Ok(OnFail::Ignore),
                "restart" if monitor => Ok(OnFail::Restart {
                    max: DEFAULT_MAX_RESTARTS,
                    window: DEFAULT_RESTART_WINDOW,
                }),
                "restart" => Err("only a monitor check can restart (it knows which resource); use type = \"monitor\" or on_fail = \"failover\"".to_string()),
                _ => Err(format!("expected \"failover\", \"restart\" or \"ignore\", found {s:?}")),
            })?,
            None => OnFail::Failover,
        };
        let on_fail = match on_fail {
            OnFail::Restart { max, window } => OnFail::Restart {
                max: c.max_restarts.as_ref().map_or(max, |m| *m.get_ref()),
                window: self.positive(&c.restart_window, &f("restart_window"), window),
            },
            other => {
                for (v, name) in [
                    (c.max_restarts.as_ref().map(Spanned::span), "max_restarts"),
                    (
                        c.restart_window.as_ref().map(Spanned::span),
                        "restart_window",
                    ),
                ] {
                    if let Some(span) = v {
                        let d = self
                            .spot(span)
                            .error(&f(name), "applies only with on_fail = \"restart\"");
                        self.diags.push(d);
                    }
                }
                other
            }
        };
        if timeout > Duration::from_secs(3600) || interval > Duration::from_secs(86400) {
            self.error(
                &c.kind,
                &f("timeout"),
                "interval at most 1 day, timeout at most 1 hour",
            );
        }
        let name = match &c.name {
            Some(n) => {
                self.parse(n, &f("name"), |s| values::name("check", s));
                n.get_ref().clone()
            }
            None => format!("{kind}:{target}"),
        };
        (self.error_count() == errors_before).then_some(CheckSpec {
            name,
            kind: what,
            interval,
            timeout,
            rise,
            fall,
            hold_down,
            when,
            on_fail,
            origin: Some(self.origin(c.kind.span())),
        })
    }

    /// The kind with its target, and the target as a default name says it.
    fn check_kind(
        &mut self,
        c: &CheckT,
        resources: &[ResourceSpec],
        prefix: &str,
    ) -> Option<(CheckKind, String)> {
        let f = |name: &str| format!("{prefix}.{name}");
        let need = |b: &mut Self, name: &str| {
            let kind = c.kind.get_ref().clone();
            b.error(
                &c.kind,
                &f(name),
                format!("type = \"{kind}\" needs `{name}`"),
            );
        };
        match c.kind.get_ref().as_str() {
            "process" => {
                let given = [c.process.is_some(), c.pidfile.is_some(), c.unit.is_some()];
                if given.iter().filter(|&&g| g).count() != 1 {
                    let kind = &c.kind;
                    self.error(kind, &f("process"), "type = \"process\" needs exactly one of `process` (a name), `pidfile` or `unit`");
                    return None;
                }
                if let Some(p) = &c.process {
                    let n = p.get_ref();
                    if n.is_empty() || n.contains('/') || n.chars().any(char::is_whitespace) {
                        self.error(p, &f("process"), format!("{n:?}: a process name has no slash or space (for a path, use `pidfile` or an exec check)"));
                        return None;
                    }
                    return Some((CheckKind::Process(ProcessBy::Name(n.clone())), n.clone()));
                }
                if let Some(p) = &c.pidfile {
                    if !p.get_ref().is_absolute() {
                        self.error(p, &f("pidfile"), "must be an absolute path");
                        return None;
                    }
                    let t = p.get_ref().display().to_string();
                    return Some((
                        CheckKind::Process(ProcessBy::Pidfile(p.get_ref().clone())),
                        t,
                    ));
                }
                let u = c.unit.as_ref()?;
                let name = u.get_ref();
                if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
                    self.error(
                        u,
                        &f("unit"),
                        format!("{name:?} is not a systemd unit name"),
                    );
                    return None;
                }
                Some((
                    CheckKind::Process(ProcessBy::Unit(name.clone())),
                    name.clone(),
                ))
            }
            "tcp" => {
                let Some(a) = &c.address else {
                    need(self, "address");
                    return None;
                };
                let addr = self.parse(a, &f("address"), |s| {
                    s.parse::<SocketAddr>()
                        .map_err(|_| format!("expected IP:PORT (or [IPv6]:PORT), found {s:?}"))
                })?;
                Some((CheckKind::Tcp { addr }, addr.to_string()))
            }
            "http" => {
                let Some(u) = &c.url else {
                    need(self, "url");
                    return None;
                };
                let status = c.status.as_ref().map_or(200, |s| *s.get_ref());
                let body = c.body.as_ref().map(|b| b.get_ref().clone());
                if let Some(b) = &c.body
                    && b.get_ref().is_empty()
                {
                    self.error(b, &f("body"), "empty: leave `body` out to accept any body");
                }
                let t = self.parse(u, &f("url"), |s| HttpTarget::parse(s, status, body))?;
                let name = t.url.clone();
                Some((CheckKind::Http(t), name))
            }
            "exec" => {
                let Some(cmd) = &c.command else {
                    need(self, "command");
                    return None;
                };
                if cmd.get_ref().trim().is_empty() {
                    self.error(cmd, &f("command"), "empty command");
                    return None;
                }
                let first = cmd
                    .get_ref()
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                Some((
                    CheckKind::Exec {
                        command: cmd.get_ref().clone(),
                    },
                    first,
                ))
            }
            "file" => {
                let Some(p) = &c.path else {
                    need(self, "path");
                    return None;
                };
                if !p.get_ref().is_absolute() {
                    self.error(p, &f("path"), "must be an absolute path");
                    return None;
                }
                let t = p.get_ref().display().to_string();
                Some((
                    CheckKind::File {
                        path: p.get_ref().clone(),
                    },
                    t,
                ))
            }
            "interface" => {
                let Some(i) = &c.iface else {
                    need(self, "iface");
                    return None;
                };
                self.parse(i, &f("iface"), values::iface)?;
                Some((
                    CheckKind::Interface {
                        iface: i.get_ref().clone(),
                    },
                    i.get_ref().clone(),
                ))
            }
            "monitor" => {
                let scripts: Vec<(usize, &str)> = resources
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| match r {
                        ResourceSpec::Script(s) => Some((i, s.name.as_str())),
                        _ => None,
                    })
                    .collect();
                let pick = match &c.resource {
                    Some(r) => match scripts.iter().find(|(_, n)| *n == r.get_ref()) {
                        Some(&found) => found,
                        None => {
                            let names: Vec<&str> = scripts.iter().map(|(_, n)| *n).collect();
                            let msg = format!(
                                "`{}` is not a script resource of this group (its scripts: {})",
                                r.get_ref(),
                                if names.is_empty() {
                                    "none".to_string()
                                } else {
                                    names.join(", ")
                                }
                            );
                            self.error(r, &f("resource"), msg);
                            return None;
                        }
                    },
                    None => match scripts.as_slice() {
                        [one] => *one,
                        [] => {
                            self.error(&c.kind, &f("type"), "a monitor check watches one of the group's script resources (lsb, ocf or script); this group has none");
                            return None;
                        }
                        _ => {
                            need(self, "resource");
                            return None;
                        }
                    },
                };
                Some((CheckKind::Monitor { resource: pick.0 }, pick.1.to_string()))
            }
            _ => None,
        }
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }
}

/// Keys every check type takes.
const COMMON: &[&str] = &[
    "name",
    "group",
    "interval",
    "timeout",
    "rise",
    "fall",
    "hold_down",
    "when",
    "on_fail",
];

/// (key, span) of every optional key present in a check table.
fn present_fields(c: &CheckT) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            out.push((name, span));
        }
    };
    add("process", c.process.as_ref().map(Spanned::span));
    add("pidfile", c.pidfile.as_ref().map(Spanned::span));
    add("unit", c.unit.as_ref().map(Spanned::span));
    add("address", c.address.as_ref().map(Spanned::span));
    add("url", c.url.as_ref().map(Spanned::span));
    add("status", c.status.as_ref().map(Spanned::span));
    add("body", c.body.as_ref().map(Spanned::span));
    add("command", c.command.as_ref().map(Spanned::span));
    add("path", c.path.as_ref().map(Spanned::span));
    add("iface", c.iface.as_ref().map(Spanned::span));
    add("resource", c.resource.as_ref().map(Spanned::span));
    add("max_restarts", c.max_restarts.as_ref().map(Spanned::span));
    add(
        "restart_window",
        c.restart_window.as_ref().map(Spanned::span),
    );
    out
}
