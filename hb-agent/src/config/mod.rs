//! hb's configuration: read either a Heartbeat ha.d directory (ha.cf,
//! haresources, authkeys) or a native TOML file into one validated `Config`.
//!
//! No global state. `load` reads files; for an ha.d directory it also asks
//! the host what Heartbeat asked it (names resolved, this host's addresses
//! and connected routes: see `host`), read-only. `check` additionally looks
//! (read-only) at scripts and interfaces.
mod authkeys;
mod check;
mod check_probes;
pub mod duration;
mod file;
mod hacf;
mod hadir;
mod haresources;
pub mod host;
mod text;
mod toml;
mod validate;
mod values;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

/// The configuration model and its diagnostics are pure (hb-core): the
/// parsers here produce them.
pub use hb_core::config::{diag, model};

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
