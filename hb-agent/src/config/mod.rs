//! hb's configuration: read either a Heartbeat ha.d directory (ha.cf,
//! haresources, authkeys) or a native TOML file into one validated `Config`.
//!
//! No global state. `load` reads files; for an ha.d directory it also asks
//! the host what Heartbeat asked it (names resolved, this host's addresses
//! and connected routes: see `host`), read-only. `check` additionally looks
//! (read-only) at scripts and interfaces.
mod authkeys;
mod check;
pub mod diag;
pub mod duration;
mod file;
mod hacf;
mod hadir;
mod haresources;
pub mod host;
pub mod model;
mod text;
mod toml;
mod validate;
mod values;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

pub use self::check::{Plan, check, plan};
pub use self::diag::{Diag, Severity, has_errors};
pub use self::hadir::{load_ha_dir, load_ha_dir_on};
pub use self::model::*;
pub use self::toml::{load_toml, load_toml_str};

/// Where a configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A native TOML file.
    Toml(PathBuf),
    /// A Heartbeat ha.d directory.
    HaDir(PathBuf),
}

impl Source {
    /// A directory is an ha.d directory, anything else a TOML file.
    pub fn from_path(path: &Path) -> Source {
        if path.is_dir() {
            Source::HaDir(path.to_path_buf())
        } else {
            Source::Toml(path.to_path_buf())
        }
    }
}

/// Reads and validates a configuration. `Err` holds every diagnostic found
/// (errors and warnings, in file and line order); `Ok` carries the warnings
/// in `Config::warnings`.
pub fn load(src: &Source) -> Result<Config, Vec<Diag>> {
    match src {
        Source::Toml(path) => load_toml(path),
        Source::HaDir(dir) => load_ha_dir(dir),
    }
}

impl Config {
    /// A node by name; names compare case-insensitively, as in Heartbeat.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    pub fn node_by_id(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node this host is (`name` is normally `uname -n`), or an error
    /// saying which names the cluster knows.
    pub fn local_node(&self, name: &str) -> Result<&Node, Diag> {
        self.node(name).ok_or_else(|| {
            let known: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            let file = self
                .source
                .first()
                .map_or(Path::new("<config>"), PathBuf::as_path);
            Diag::error(
                file,
                format!(
                    "this host (`{name}`) is not a node of cluster `{}` (nodes: {}); \
                     node names must match `uname -n`",
                    self.cluster,
                    known.join(", ")
                ),
            )
            .field("node")
        })
    }

    /// 0 = most preferred (first `node` line / first [[node]]).
    pub fn priority(&self, node: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(node))
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn group_by_id(&self, id: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// Groups this node may run (it is one of their candidates).
    pub fn groups_for<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups
            .iter()
            .filter(move |g| g.nodes.iter().any(|n| n.eq_ignore_ascii_case(node)))
    }

    /// Groups whose preferred (first) candidate is this node.
    pub fn preferred_groups<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups.iter().filter(move |g| {
            g.nodes
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(node))
        })
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}
