//! The one error type of the resources layer. Every variant says what failed, on
//! which interface / script / file, and why, so that a log line alone is enough.
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// A netlink request failed. `op` names the operation and the interface.
    #[error("netlink: {op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("interface {0} does not exist")]
    NoSuchInterface(String),

    #[error("no interface has a connected subnet containing {0}")]
    NoInterfaceFor(IpAddr),

    /// The resource description cannot be carried out as written.
    #[error("invalid resource {resource}: {why}")]
    Invalid { resource: String, why: String },

    /// The resource is held in a way that contradicts the request (e.g. a second
    /// MAC replace on an interface another group already replaced).
    #[error("conflict on {what}: {why}")]
    Conflict { what: String, why: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("state file {path}: {why}")]
    StateFile { path: PathBuf, why: String },

    #[error("setting hostname to {name:?}: {source}")]
    Hostname {
        name: String,
        #[source]
        source: nix::Error,
    },

    #[error("announcing {addr} on {iface}: {source}")]
    Announce {
        iface: String,
        addr: IpAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("script {name:?} not found in {searched:?}")]
    ScriptNotFound {
        name: String,
        searched: Vec<PathBuf>,
    },

    #[error("script {script} {action} failed (exit {code}): {output}", code = fmt_code(*.code))]
    ScriptFailed {
        script: String,
        action: String,
        /// None when killed by a signal.
        code: Option<i32>,
        output: String,
    },

    #[error(
        "script {script} {action} timed out after {timeout:?} (process group killed): {output}"
    )]
    ScriptTimeout {
        script: String,
        action: String,
        timeout: Duration,
        output: String,
    },

    /// start_group failed at resource `index`; the earlier ones were rolled back
    /// (right to left); `rollback_failures` lists what could not be undone.
    #[error("group {group}: starting {resource} failed: {source}{}", fmt_rollback(.rollback_failures))]
    Start {
        group: String,
        index: usize,
        resource: String,
        #[source]
        source: Box<ResourceError>,
        rollback_failures: Vec<(String, ResourceError)>,
    },
}

fn fmt_code(code: Option<i32>) -> String {
    code.map_or_else(|| "by signal".to_string(), |c| c.to_string())
}

fn fmt_rollback(failures: &[(String, ResourceError)]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let list: Vec<String> = failures.iter().map(|(r, e)| format!("{r}: {e}")).collect();
    format!("; rollback left behind: {}", list.join("; "))
}

/// The errno carried by a netlink error, if any (positive, e.g. `libc::EEXIST`).
pub(crate) fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

/// Shorthand: `.map_err(nl("adding 10.0.0.1/24 to eth0"))`.
pub(crate) fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> ResourceError {
    let op = op.into();
    move |source| ResourceError::Netlink { op, source }
}
