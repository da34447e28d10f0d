//! `check`: what can only be verified on the host, read-only. Missing or
//! non-executable scripts are errors (the group could never start); missing
//! interfaces are warnings, since `check` may run on another machine than
//! the node (e.g. when validating a cluster's files centrally).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::diag::Diag;
use super::model::{Config, Group};
use crate::resources::spec::{ResourceSpec, ScriptKind};

const SYS_CLASS_NET: &str = "/sys/class/net";
/// OCF_ROOT's standard location; agents live in resource.d/PROVIDER/AGENT.
const OCF_ROOT: &str = "/usr/lib/ocf";

pub fn check(cfg: &Config) -> Vec<Diag> {
    check_in(cfg, Path::new(SYS_CLASS_NET), Path::new(OCF_ROOT))
}

/// `check` with the system directories given, for tests.
pub(crate) fn check_in(cfg: &Config, net: &Path, ocf_root: &Path) -> Vec<Diag> {
    let mut diags = Vec::new();
    for group in &cfg.groups {
        for res in &group.resources {
            if let ResourceSpec::Script { name, kind, .. } = res {
                script(cfg, group, name, kind, ocf_root, &mut diags);
            }
        }
    }
    interfaces(cfg, net, &mut diags);
    diags
}

/// Where a group's problems are reported: its haresources/TOML line.
fn at_group(cfg: &Config, group: &Group, diag: fn(&Path, String) -> Diag, msg: String) -> Diag {
    match &group.origin {
        Some(o) => diag(&o.file, msg).at(o.line),
        None => diag(main_file(cfg), msg),
    }
}

fn main_file(cfg: &Config) -> &Path {
    cfg.source
        .first()
        .map_or(Path::new("<config>"), PathBuf::as_path)
}

fn script(
    cfg: &Config,
    group: &Group,
    name: &str,
    kind: &ScriptKind,
    ocf_root: &Path,
    diags: &mut Vec<Diag>,
) {
    let candidates: Vec<PathBuf> = match kind {
        ScriptKind::Ocf { provider } => vec![ocf_root.join("resource.d").join(provider).join(name)],
        ScriptKind::Heartbeat | ScriptKind::Lsb => {
            cfg.script_dirs.iter().map(|d| d.join(name)).collect()
        }
    };
    let error = |msg: String| at_group(cfg, group, Diag::error, msg).field(name);
    match candidates.iter().find(|p| p.exists()) {
        Some(path) if !is_executable(path) => diags.push(error(format!(
            "{} (group `{}`) is not an executable file",
            path.display(),
            group.name
        ))),
        Some(_) => {}
        None => {
            let dirs: Vec<String> = candidates
                .iter()
                .filter_map(|p| p.parent().map(|d| d.display().to_string()))
                .collect();
            diags.push(error(format!(
                "script `{name}` (group `{}`) not found in {}",
                group.name,
                dirs.join(", ")
            )));
        }
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn interfaces(cfg: &Config, net: &Path, diags: &mut Vec<Diag>) {
    let mut seen = BTreeSet::new();
    let mut missing = |iface: &str, what: String, diags: &mut Vec<Diag>, group: Option<&Group>| {
        if !seen.insert(iface.to_string()) || net.join(iface).exists() {
            return;
        }
        let msg = format!("interface `{iface}` ({what}) does not exist on this host");
        let warn = |f: &Path, m: String| Diag::warning(f, m);
        diags.push(
            match group {
                Some(g) => at_group(cfg, g, warn, msg),
                None => warn(main_file(cfg), msg),
            }
            .field("iface"),
        );
    };
    for link in &cfg.links {
        missing(&link.iface, format!("link `{}`", link.name), diags, None);
    }
    for group in &cfg.groups {
        for res in &group.resources {
            let iface = match res {
                ResourceSpec::IpAddr { iface: Some(i), .. } => i,
                ResourceSpec::Mac { iface, .. } => iface,
                _ => continue,
            };
            missing(iface, format!("group `{}`", group.name), diags, Some(group));
        }
    }
}
