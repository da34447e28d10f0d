//! `check` for health checks: what only the host can say (an exec check's
//! program missing, an unknown systemd unit), and each check in the plan's
//! words. As for resources: a check that could never pass is an error, a
//! missing interface or directory a warning (`check` may run elsewhere).
use std::path::{Path, PathBuf};

use super::diag::Diag;
use super::duration::display;
use super::model::Config;
use hb_core::health::{CheckKind, CheckSpec, OnFail, ProcessBy, When};

/// Where systemd keeps unit files, in its own search order.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Words a shell command may start with that are not programs on PATH.
const SHELL_WORDS: &[&str] = &[
    "!", "(", "{", "[", "[[", "if", "for", "while", "until", "case", "exec", "test", "true",
    "false", "command", "type", "echo", "printf", "read", "cd", "exit", ":", ".", "source",
];

pub(crate) fn host(cfg: &Config, diags: &mut Vec<Diag>) {
    host_in(cfg, Path::new("/"), diags)
}

/// `host` with the filesystem root given, for tests.
pub(crate) fn host_in(cfg: &Config, root: &Path, diags: &mut Vec<Diag>) {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let path_dirs: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        .split(':')
        .map(at)
        .collect();
    for g in &cfg.groups {
        for c in &g.checks {
            let diag = |f: fn(&Path, String) -> Diag, msg: String| match &c.origin {
                Some(o) => f(&o.file, msg).at(o.line),
                None => f(Path::new("<config>"), msg),
            };
            let what = format!("check `{}` of group `{}`", c.name, g.name);
            match &c.kind {
                CheckKind::Exec { command } => {
                    let first = command.split_whitespace().next().unwrap_or("");
                    if first.contains('=') || SHELL_WORDS.contains(&first) {
                        continue;
                    }
                    if first.contains('/') {
                        let p = at(first);
                        if !p.exists() {
                            diags.push(
                                diag(Diag::error, format!("{what}: {first} does not exist"))
                                    .field("command"),
                            );
                        } else if !super::check::is_executable(&p) {
                            diags.push(
                                diag(
                                    Diag::error,
                                    format!("{what}: {first} is not an executable file"),
                                )
                                .field("command"),
                            );
                        }
                    } else if !path_dirs
                        .iter()
                        .any(|d| super::check::is_executable(&d.join(first)))
                    {
                        diags.push(
                            diag(Diag::error, format!("{what}: `{first}` is not on PATH"))
                                .field("command"),
                        );
                    }
                }
                CheckKind::Process(ProcessBy::Unit(u)) => {
                    if !at("/run/systemd/system").exists() {
                        diags.push(diag(Diag::warning, format!("{what}: systemd is not running on this host; unit {u} not checked")).field("unit"));
                        continue;
                    }
                    let unit = unit_name(u);
                    if !UNIT_DIRS.iter().any(|d| at(d).join(&unit).exists()) {
                        diags.push(
                            diag(
                                Diag::error,
                                format!(
                                    "{what}: unknown unit {unit} (not in {})",
                                    UNIT_DIRS.join(", ")
                                ),
                            )
                            .field("unit"),
                        );
                    }
                }
                CheckKind::Process(ProcessBy::Pidfile(p)) | CheckKind::File { path: p } => {
                    if let Some(dir) = p.parent()
                        && !at(&dir.to_string_lossy()).is_dir()
                    {
                        diags.push(
                            diag(
                                Diag::warning,
                                format!(
                                    "{what}: directory {} does not exist on this host",
                                    dir.display()
                                ),
                            )
                            .field("path"),
                        );
                    }
                }
                CheckKind::Interface { iface } if !at("/sys/class/net").join(iface).exists() => {
                    diags.push(
                        diag(
                            Diag::warning,
                            format!("{what}: interface `{iface}` does not exist on this host"),
                        )
                        .field("iface"),
                    );
                }
                _ => {}
            }
        }
    }
}

/// A unit name as systemd reads it: `nginx` is `nginx.service`.
pub fn unit_name(u: &str) -> String {
    if u.contains('.') {
        u.to_string()
    } else {
        format!("{u}.service")
    }
}

/// One check, as the plan says it.
pub(crate) fn plan(c: &CheckSpec) -> String {
    let d = display;
    let how = match &c.kind {
        k if k.event_driven() => "by event".to_string(),
        _ => format!("every {}, timeout {}", d(c.interval), d(c.timeout)),
    };
    let when = match c.when {
        When::Always => "",
        When::Held => ", only where the group is held",
    };
    let fail = match c.on_fail {
        OnFail::Failover => "fail over".to_string(),
        OnFail::Ignore => "ignore (shown, moves nothing)".to_string(),
        OnFail::Restart { max, window } => {
            format!(
                "restart in place up to {max} times in {}, then fail over",
                d(window)
            )
        }
    };
    format!(
        "{} ({how}{when}; down after {} failure(s), up after {} pass(es) and a hold-down of {}; on failure: {fail})",
        c.name,
        c.fall,
        c.rise,
        d(c.hold_down)
    )
}
