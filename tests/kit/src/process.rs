//! The one guard for a process a test started (an agent, a competitor's
//! daemon): it can be signalled, stopped and killed, and is killed and
//! reaped on drop, also on panic. Only the process itself is signalled: a
//! test ends only what it started.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

pub struct Process {
    child: Option<Child>,
}

impl Process {
    pub fn new(child: Child) -> Process {
        Process { child: Some(child) }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends `sig` to the process (not its group), if it still runs.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: signals only the process this guard started and has
            // not reaped yet (so its pid is not reused).
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// Still running (not exited, not reaped).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `timeout` for the process to exit; its status, or None
    /// if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
        let Some(c) = self.child.as_mut() else {
            bail!("process already reaped");
        };
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.try_wait()? {
                return Ok(Some(st));
            }
            if t0.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGTERM, as an operator's stop; SIGKILL and an error if it has not
    /// exited within `timeout`.
    pub fn stop(mut self, timeout: Duration) -> Result<()> {
        self.signal(libc::SIGTERM);
        if self.wait_exit(timeout)?.is_none() {
            self.kill();
            bail!("process {} did not stop within {timeout:?}", self.pid());
        }
        self.child = None;
        Ok(())
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process a test's script started (a daemon it left behind), found by
/// the pid it wrote; killed on drop if it still runs that program.
pub struct Leftover {
    pub pid: i32,
    pub cmdline: String,
}

impl Leftover {
    /// Waits until `file` names a pid (word `word`) running `cmdline`.
    pub fn wait_for(file: &Path, word: usize, cmdline: &str) -> Leftover {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if let Some(pid) = text
                .split_whitespace()
                .nth(word)
                .and_then(|w| w.parse().ok())
            {
                let l = Leftover {
                    pid,
                    cmdline: cmdline.to_string(),
                };
                if l.running() {
                    return l;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no {cmdline:?} named in {file:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Alive (not a zombie) and still the same program.
    pub fn running(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        let cmd = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        !stat.is_empty()
            && !zombie
            && String::from_utf8_lossy(&cmd).replace('\0', " ").trim() == self.cmdline
    }

    pub fn fds(&self) -> Vec<(i32, String)> {
        let mut v: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let target = std::fs::read_link(e.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                (e.file_name().to_string_lossy().parse().unwrap(), target)
            })
            .collect();
        v.sort();
        v
    }

    /// The descriptor numbers it holds.
    pub fn fd_numbers(&self) -> Vec<i32> {
        self.fds().into_iter().map(|(fd, _)| fd).collect()
    }

    pub fn wait_gone(&self, within: Duration) -> bool {
        let t0 = Instant::now();
        while self.running() && t0.elapsed() < within {
            std::thread::sleep(Duration::from_millis(20));
        }
        !self.running()
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if self.running() {
            // SAFETY: a process this test's script started (checked above).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// Opens /dev/null without O_CLOEXEC in this process, so that the agent
/// started next inherits it, as an agent does from a launcher that leaks
/// one (a supervisor's pipe, a shell's descriptor).
pub struct Inheritable(pub i32);

impl Inheritable {
    pub fn open() -> Inheritable {
        // SAFETY: open(2) of a constant path, no O_CLOEXEC on purpose.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 3, "{}", std::io::Error::last_os_error());
        Inheritable(fd)
    }
}

impl Drop for Inheritable {
    fn drop(&mut self) {
        // SAFETY: the descriptor `open` opened.
        unsafe { libc::close(self.0) };
    }
}
