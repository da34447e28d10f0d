//! `file` checks, as keepalived's `track_file`: the file holds a number (0
//! is healthy) or a word (`up`/`ok`/`healthy`, `down`/`fail`/`failed`).
//!
//! The read runs on tokio's blocking pool, with the check's timeout: a file
//! on a hung mount must not stall the loop. Such a read cannot be cancelled,
//! so its thread stays stuck until the kernel lets go; hb starts no second
//! read of a path whose last one still hangs (it fails at once instead), so
//! a hung mount costs one thread per path, not one per interval. A FIFO is
//! opened non-blocking, so it never hangs the open.

use std::collections::HashSet;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use hb_core::health::OUTPUT_LIMIT;

use super::{Outcome, one_line, timed_out};

/// Paths whose read is still running on the blocking pool.
static READING: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Reads `path` (at most `OUTPUT_LIMIT` bytes, within `timeout`) and judges
/// what it holds.
pub async fn file(path: &Path, timeout: Duration) -> Outcome {
    let Some(_guard) = Reading::start(path) else {
        return Outcome::fail(format!("{}: an earlier read still hangs", path.display()));
    };
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        // The guard goes with the read: the path is free when it returns.
        let _guard = _guard;
        read(&owned)
    });
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Outcome::fail(timed_out(timeout)),
        Ok(Err(e)) => Outcome::fail(format!("reading {}: {e}", path.display())),
        Ok(Ok(Err(e))) if e.kind() == std::io::ErrorKind::NotFound => Outcome::fail("no such file"),
        Ok(Ok(Err(e))) => Outcome::fail(format!("reading {}: {e}", path.display())),
        Ok(Ok(Ok(bytes))) => judge(&bytes),
    }
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let mut out = Vec::new();
    f.take(OUTPUT_LIMIT as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// The path's entry in [`READING`], removed on drop.
struct Reading(PathBuf);

impl Reading {
    fn start(path: &Path) -> Option<Reading> {
        let mut set = READING.lock().unwrap_or_else(|p| p.into_inner());
        set.get_or_insert_with(HashSet::new)
            .insert(path.to_path_buf())
            .then(|| Reading(path.to_path_buf()))
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        let mut set = READING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = set.as_mut() {
            s.remove(&self.0);
        }
    }
}

fn judge(bytes: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(bytes);
    let v = text.trim();
    if v.is_empty() {
        return Outcome::fail("empty");
    }
    if let Ok(n) = v.parse::<i64>() {
        return if n == 0 {
            Outcome::pass("0")
        } else {
            Outcome::fail(format!("value {n} (not 0)"))
        };
    }
    match v.to_ascii_lowercase().as_str() {
        "up" | "ok" | "healthy" => Outcome::pass(v),
        "down" | "fail" | "failed" => Outcome::fail(v),
        _ => Outcome::fail(format!("unreadable value {:?}", one_line(v, 60))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn numbers_and_words() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        for (content, want) in [
            ("0\n", Outcome::pass("0")),
            ("  3 ", Outcome::fail("value 3 (not 0)")),
            ("-1", Outcome::fail("value -1 (not 0)")),
            ("UP\n", Outcome::pass("UP")),
            ("healthy", Outcome::pass("healthy")),
            ("ok", Outcome::pass("ok")),
            ("down", Outcome::fail("down")),
            ("Failed\n", Outcome::fail("Failed")),
            ("fail", Outcome::fail("fail")),
            ("", Outcome::fail("empty")),
            (" \n", Outcome::fail("empty")),
            ("maybe", Outcome::fail("unreadable value \"maybe\"")),
        ] {
            std::fs::write(&p, content).unwrap();
            assert_eq!(file(&p, T).await, want, "{content:?}");
        }
        assert_eq!(
            file(&dir.path().join("nope"), T).await,
            Outcome::fail("no such file")
        );
        // Only the first OUTPUT_LIMIT bytes are read.
        std::fs::write(&p, "x".repeat(OUTPUT_LIMIT * 4)).unwrap();
        let o = file(&p, T).await;
        assert!(
            !o.ok && o.detail.starts_with("unreadable value \"xxx"),
            "{o:?}"
        );
    }

    #[tokio::test]
    async fn a_fifo_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t0 = std::time::Instant::now();
        let o = file(&p, Duration::from_millis(200)).await;
        assert!(!o.ok, "{o:?}");
        assert!(t0.elapsed() < Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_path_whose_read_still_hangs_is_not_read_again() {
        let p = Path::new("/hb-test/hanging");
        // Stand in for a read stuck on a hung mount.
        let stuck = Reading::start(p).unwrap();
        let o = file(p, Duration::from_millis(20)).await;
        assert_eq!(
            o,
            Outcome::fail("/hb-test/hanging: an earlier read still hangs")
        );
        drop(stuck);
        assert_eq!(
            file(p, Duration::from_millis(200)).await,
            Outcome::fail("no such file")
        );
    }
}
