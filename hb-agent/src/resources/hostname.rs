//! The Hostname resource.
//!
//! # Rule when several held groups name a hostname: a stack
//!
//! Each group that acquires a `Hostname` resource pushes an entry
//! `(group, name, previous, seq)` where `previous` is the hostname in force just
//! before and `seq` the acquisition order. **The most recently acquired group's
//! hostname applies.** Releasing:
//! - the top entry sets the hostname back to its `previous`, which is the next
//!   entry's name (or, for the last one, the node's own hostname from before any
//!   takeover);
//! - an entry below the top changes nothing visible: it is removed and the entry
//!   above it inherits its `previous`, so the chain stays intact and the node's
//!   own hostname always comes back when the last group goes.
//!
//! Example (the seed's standby node1 holding both primaries' groups):
//! `node1` → acquire g1 (`nodevir`) → acquire g2 (`nodevir2`) → hostname
//! `nodevir2`; release g2 → `nodevir`; release g1 → `node1`. Releasing g1 first
//! instead keeps `nodevir2`, and releasing g2 then gives `node1`.
//!
//! The stack lives in the groups' state files (see `state.rs`), so an agent
//! restart keeps it. Acquiring a group again is idempotent: it keeps its place.
use std::collections::HashMap;

use super::error::ResourceError;
use super::spec::HostnameSpec;
use super::state::{GroupState, HostnameSaved};

pub fn current() -> Result<String, ResourceError> {
    nix::unistd::gethostname()
        .map_err(|e| ResourceError::Io {
            what: "reading the hostname".into(),
            source: e.into(),
        })
        .map(|h| h.to_string_lossy().into_owned())
}

fn set(name: &str) -> Result<(), ResourceError> {
    nix::unistd::sethostname(name).map_err(|source| ResourceError::Hostname {
        name: name.to_string(),
        source,
    })?;
    tracing::info!(hostname = name, "hostname set");
    Ok(())
}

fn validate(name: &str) -> Result<(), ResourceError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ResourceError::Invalid {
            resource: format!("Hostname::{name}"),
            why: "a hostname is 1-64 characters of letters, digits, '-', '.', '_'".into(),
        })
    }
}

/// The group whose entry is on top of the stack.
fn top(all: &HashMap<String, GroupState>) -> Option<(&String, &HostnameSaved)> {
    all.iter()
        .filter_map(|(g, st)| st.hostname.as_ref().map(|h| (g, h)))
        .max_by_key(|(_, h)| h.seq)
}

/// Acquires `spec`'s name for `group`. Returns whether the hostname was changed.
pub fn start(
    all: &mut HashMap<String, GroupState>,
    group: &str,
    spec: &HostnameSpec,
) -> Result<bool, ResourceError> {
    let name = spec.name.as_str();
    validate(name)?;
    let now = current()?;
    if let Some(h) = all.get(group).and_then(|st| st.hostname.as_ref()) {
        if h.name == name {
            let is_top = top(all).is_some_and(|(g, _)| g == group);
            if is_top && now != name {
                set(name)?;
                return Ok(true);
            }
            return Ok(false);
        }
        // Same group, another name (config changed): drop the old entry first.
        stop(all, group)?;
    }
    let now = current()?;
    let seq = top(all).map_or(1, |(_, h)| h.seq + 1);
    if now == name && top(all).is_none() {
        tracing::warn!(
            group,
            hostname = name,
            "hostname already set with no saved state: the previous hostname is unknown and will not be restored"
        );
    }
    all.entry(group.to_string()).or_default().hostname = Some(HostnameSaved {
        name: name.to_string(),
        previous: (now != name).then_some(now.clone()),
        seq,
    });
    if now != name {
        if let Err(e) = set(name) {
            if let Some(st) = all.get_mut(group) {
                st.hostname = None;
            }
            return Err(e);
        }
        return Ok(true);
    }
    Ok(false)
}

/// Releases `group`'s hostname. Returns whether the hostname was changed.
pub fn stop(all: &mut HashMap<String, GroupState>, group: &str) -> Result<bool, ResourceError> {
    let Some(mine) = all.get(group).and_then(|st| st.hostname.clone()) else {
        return Ok(false);
    };
    let is_top = top(all).is_some_and(|(g, _)| g == group);
    let mut changed = false;
    if is_top {
        if let Some(prev) = &mine.previous
            && current()? != *prev
        {
            set(prev)?;
            changed = true;
        }
    } else {
        // The entry right above ours inherits our `previous`.
        let above = all
            .iter_mut()
            .filter_map(|(_, st)| st.hostname.as_mut())
            .filter(|h| h.seq > mine.seq)
            .min_by_key(|h| h.seq);
        if let Some(h) = above {
            h.previous = mine.previous.clone();
        }
    }
    if let Some(st) = all.get_mut(group) {
        st.hostname = None;
    }
    Ok(changed)
}

/// True when `group`'s hostname is in place under the stack rule: its entry is
/// held and, if it is on top, the hostname is `spec`'s name. Without an
/// entry (no saved state), in place when the hostname already is that name.
pub fn status(
    all: &HashMap<String, GroupState>,
    group: &str,
    spec: &HostnameSpec,
) -> Result<bool, ResourceError> {
    let name = spec.name.as_str();
    let now = current()?;
    match all.get(group).and_then(|st| st.hostname.as_ref()) {
        Some(h) if h.name == name => {
            let is_top = top(all).is_some_and(|(g, _)| g == group);
            Ok(!is_top || now == name)
        }
        Some(_) => Ok(false),
        None => Ok(now == name),
    }
}
