//! What the agent must remember about a held group to release it correctly, even
//! after an agent restart: one small JSON file per group, `<state_dir>/<group>.json`,
//! named by what the agent passes as the group, its key (`Group::key`), which does
//! not change with its display name (state_dir is given to `Resources::new`;
//! `/run/hb` in production, so it vanishes on reboot, like the MAC and hostname
//! changes it describes).
//!
//! A file is written (atomically: temp file + rename) *before* the change it
//! describes is made, and removed when the group holds nothing that needs
//! restoring any more.
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::ResourceError;
use super::netlink::{Address, Route};

/// The real identity of an interface read before a MAC replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacSaved {
    pub iface: String,
    pub real_mac: [u8; 6],
    pub virtual_mac: [u8; 6],
    pub was_up: bool,
    /// Addresses (not link-scope) present before the takeover, in kernel order.
    pub addresses: Vec<Address>,
    /// Main-table routes out of the interface that the kernel does not
    /// recreate by itself (not proto kernel / ra), e.g. the default route.
    pub routes: Vec<Route>,
    /// The VIP put on the interface while held.
    pub vip: Option<(IpAddr, u8)>,
}

/// This group's entry in the hostname stack (see `hostname.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostnameSaved {
    pub name: String,
    /// The hostname in force right before this entry was pushed.
    pub previous: Option<String>,
    /// Acquisition order; the highest applies.
    pub seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    #[serde(default)]
    pub mac: Vec<MacSaved>,
    #[serde(default)]
    pub hostname: Option<HostnameSaved>,
}

impl GroupState {
    pub fn is_empty(&self) -> bool {
        self.mac.is_empty() && self.hostname.is_none()
    }
}

/// In-memory copy of all groups' state, mirrored to the state directory.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    groups: Mutex<HashMap<String, GroupState>>,
}

/// `<group>.json` with anything but `[A-Za-z0-9_.-]` (and a leading dot)
/// escaped as `%XX`.
pub fn file_name(group: &str) -> String {
    let mut s = String::new();
    for (i, b) in group.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s + ".json"
}

fn group_of(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".json")?;
    let bytes = stem.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = stem.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl StateStore {
    /// Creates the directory if needed (mode 0700) and loads every state file.
    pub fn open(dir: &Path) -> Result<Self, ResourceError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| ResourceError::Io {
                what: format!("creating state directory {}", dir.display()),
                source,
            })?;
        let mut groups = HashMap::new();
        let rd = std::fs::read_dir(dir).map_err(|source| ResourceError::Io {
            what: format!("reading state directory {}", dir.display()),
            source,
        })?;
        for entry in rd.flatten() {
            let fname = entry.file_name().to_string_lossy().into_owned();
            let Some(group) = group_of(&fname) else {
                continue;
            };
            let path = entry.path();
            let text = std::fs::read_to_string(&path).map_err(|source| ResourceError::Io {
                what: format!("reading state file {}", path.display()),
                source,
            })?;
            let st: GroupState =
                serde_json::from_str(&text).map_err(|e| ResourceError::StateFile {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            tracing::info!(group, path = %path.display(), "loaded saved resource state");
            groups.insert(group, st);
        }
        Ok(StateStore {
            dir: dir.to_path_buf(),
            groups: Mutex::new(groups),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, group: &str) -> PathBuf {
        self.dir.join(file_name(group))
    }

    pub fn get(&self, group: &str) -> GroupState {
        self.lock().get(group).cloned().unwrap_or_default()
    }

    /// A copy of every group's state.
    pub fn snapshot(&self) -> HashMap<String, GroupState> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, GroupState>> {
        self.groups.lock().expect("state store poisoned")
    }

    /// Runs `f` on the state of every group, then writes the files of the
    /// groups whose state changed. The lock is held throughout (no await).
    pub fn update_all<R>(
        &self,
        f: impl FnOnce(&mut HashMap<String, GroupState>) -> Result<R, ResourceError>,
    ) -> Result<R, ResourceError> {
        let mut groups = self.lock();
        let before = groups.clone();
        let result = f(&mut groups);
        groups.retain(|_, st| !st.is_empty());
        let mut names: Vec<&String> = groups.keys().chain(before.keys()).collect();
        names.sort();
        names.dedup();
        for g in names {
            if groups.get(g) != before.get(g) {
                self.write(g, groups.get(g))?;
            }
        }
        result
    }

    /// Runs `f` on one group's state and persists it if it changed.
    pub fn update<R>(
        &self,
        group: &str,
        f: impl FnOnce(&mut GroupState) -> R,
    ) -> Result<R, ResourceError> {
        self.update_all(|all| Ok(f(all.entry(group.to_string()).or_default())))
    }

    fn write(&self, group: &str, st: Option<&GroupState>) -> Result<(), ResourceError> {
        let path = self.path(group);
        match st {
            None => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(ResourceError::Io {
                    what: format!("removing state file {}", path.display()),
                    source,
                }),
            },
            Some(st) => {
                let text =
                    serde_json::to_string_pretty(st).map_err(|e| ResourceError::StateFile {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, text)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|source| ResourceError::Io {
                        what: format!("writing state file {}", path.display()),
                        source,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        for g in ["web", "group 1", "a/b", ".hidden", "né"] {
            let f = file_name(g);
            assert!(!f.contains('/') && !f.starts_with('.'), "{f}");
            assert_eq!(group_of(&f).as_deref(), Some(g));
        }
    }

    #[test]
    fn store_persists_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store
            .update("g1", |st| {
                st.hostname = Some(HostnameSaved {
                    name: "nodevir".into(),
                    previous: Some("node1".into()),
                    seq: 1,
                })
            })
            .unwrap();
        assert!(store.path("g1").exists());
        let again = StateStore::open(dir.path()).unwrap();
        assert_eq!(again.get("g1"), store.get("g1"));
        store.update("g1", |st| st.hostname = None).unwrap();
        assert!(!store.path("g1").exists());
    }
}
