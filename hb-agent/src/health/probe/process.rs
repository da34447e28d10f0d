//! `process` checks, by event: a service's death is known from its pidfds
//! (readable the moment the process exits), not by polling for it.
//!
//! [`ProcessWatch::next`] reports the current state at once, then only a
//! change: all watched processes gone (after one look for a replacement
//! already there), or one appearing while none was. Looks (`scan`) run on
//! the blocking pool with a timeout; one that hangs is waited for again
//! rather than started anew, so a stuck /proc read costs one thread.

mod scan;

use std::collections::HashSet;
use std::future::poll_fn;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hb_core::health::ProcessBy;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Outcome;
use scan::Found;

/// Longest hb waits for one look at /proc (or a cgroup, or a pidfile).
const LOOK_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest `systemctl show` may take.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(1);

pub struct ProcessWatch {
    by: ProcessBy,
    /// What the last call said; None before the first.
    reported: Option<bool>,
    /// The live processes, while up.
    watched: Vec<Watched>,
    /// A look that outlived its timeout, still running.
    pending: Option<JoinHandle<Found>>,
    next_look: Instant,
    /// Where units' cgroups are (found at the first look).
    cgroup_roots: Option<Vec<PathBuf>>,
    /// The pids the last full look by name listed: the look at a death
    /// reads only the others (new processes), to be quick.
    known: Option<Arc<HashSet<i32>>>,
}

struct Watched {
    pid: i32,
    fd: AsyncFd<std::os::fd::OwnedFd>,
}

enum Woke {
    Died(Vec<usize>),
    Look,
}

impl ProcessWatch {
    pub fn new(by: ProcessBy) -> ProcessWatch {
        ProcessWatch {
            by,
            reported: None,
            watched: Vec::new(),
            pending: None,
            next_look: Instant::now(),
            cgroup_roots: None,
            known: None,
        }
    }

    /// A watch that looks for units' cgroups under `roots` (tests).
    #[cfg(test)]
    fn with_cgroup_roots(by: ProcessBy, roots: Vec<PathBuf>) -> ProcessWatch {
        ProcessWatch {
            cgroup_roots: Some(roots),
            ..ProcessWatch::new(by)
        }
    }

    /// The state now (first call), then at its next change. `rescan` paces
    /// the looks for new processes, up or down; a death needs none.
    /// Cancel-safe: a dropped call loses no state change.
    pub async fn next(&mut self, rescan: Duration) -> Outcome {
        if self.reported.is_none() {
            let o = self.look_and_adopt(rescan, false).await;
            self.reported = Some(o.ok);
            return o;
        }
        loop {
            if self.reported == Some(false) {
                tokio::time::sleep_until(self.next_look).await;
                let o = self.look_and_adopt(rescan, false).await;
                if o.ok {
                    self.reported = Some(true);
                    return o;
                }
                continue;
            }
            if self.watched.is_empty() {
                // All gone: one look, at this instant, for a replacement.
                let o = self.look_and_adopt(rescan, true).await;
                if !o.ok {
                    self.reported = Some(false);
                    return o;
                }
                continue;
            }
            let at = self.next_look;
            let woke = tokio::select! {
                biased;
                dead = deaths(&self.watched) => Woke::Died(dead),
                _ = tokio::time::sleep_until(at) => Woke::Look,
            };
            match woke {
                Woke::Died(dead) => {
                    for i in dead.into_iter().rev() {
                        self.watched.swap_remove(i);
                    }
                }
                Woke::Look => {
                    self.next_look = Instant::now() + rescan;
                    // A failed look keeps the processes watched as they are.
                    if let Ok(found) = self.look(false).await {
                        if found.procs.is_empty() {
                            // Alive but no longer matching (a new pidfile,
                            // a process out of the cgroup): gone for us.
                            self.watched.clear();
                            self.reported = Some(false);
                            return Outcome::fail(found.none);
                        }
                        self.adopt(found);
                    }
                }
            }
        }
    }

    /// Looks (`quick`: at a death), watches what it found, and says so.
    async fn look_and_adopt(&mut self, rescan: Duration, quick: bool) -> Outcome {
        let found = self.look(quick).await;
        self.next_look = Instant::now() + rescan;
        match found {
            Err(why) => {
                self.watched.clear();
                Outcome::fail(why)
            }
            Ok(f) => self.adopt(f),
        }
    }

    /// Watches exactly the processes of `found`.
    fn adopt(&mut self, found: Found) -> Outcome {
        self.watched = found
            .procs
            .into_iter()
            .filter_map(|p| {
                // SAFETY: the pidfd is owned by the AsyncFd and neither
                // replaced nor closed while registered.
                let fd =
                    unsafe { AsyncFd::register_with_interest(p.fd, Interest::READABLE) }.ok()?;
                Some(Watched { pid: p.pid, fd })
            })
            .collect();
        match self.watched.as_slice() {
            [] => Outcome::fail(found.none),
            [one] => Outcome::pass(format!("pid {}", one.pid)),
            many => Outcome::pass(format!("{} processes", many.len())),
        }
    }

    /// The check's processes now; Err when the look itself failed.
    async fn look(&mut self, quick: bool) -> Result<Found, String> {
        let found = match &self.by {
            ProcessBy::Name(n) => {
                let n = n.clone();
                let known = self.known.clone().filter(|_| quick);
                let mut found = self
                    .blocking(move || scan::by_name(&n, known.as_deref()))
                    .await?;
                if let Some(listed) = found.listed.take() {
                    self.known = Some(Arc::new(listed));
                }
                found
            }
            ProcessBy::Pidfile(p) => {
                let p = p.clone();
                self.blocking(move || scan::by_pidfile(&p)).await?
            }
            ProcessBy::Unit(u) => {
                let unit = unit_name(u);
                let roots = self.roots().await?;
                let (u, r) = (unit.clone(), roots.clone());
                let found = self.blocking(move || scan::by_unit(&u, &r)).await?;
                if !found.ask_systemd {
                    found
                } else {
                    let (cgroup, main_pid) = systemctl_show(&unit).await;
                    self.blocking(move || scan::by_systemd(&unit, &roots, &cgroup, main_pid))
                        .await?
                }
            }
        };
        Ok(found)
    }

    async fn roots(&mut self) -> Result<Vec<PathBuf>, String> {
        if self.cgroup_roots.is_none() {
            let r = tokio::task::spawn_blocking(scan::cgroup_roots);
            let r = tokio::time::timeout(LOOK_TIMEOUT, r)
                .await
                .map_err(|_| "reading /proc/self/mountinfo timed out".to_string())?
                .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
            self.cgroup_roots = Some(r);
        }
        Ok(self.cgroup_roots.clone().unwrap_or_default())
    }

    /// Runs `f` on the blocking pool within LOOK_TIMEOUT; when an earlier
    /// look still runs (it hung, or its call was dropped), waits for that
    /// one instead: its answer is older, but every process in it is
    /// re-checked by its pidfd, and a stuck look never has company.
    async fn blocking(
        &mut self,
        f: impl FnOnce() -> Found + Send + 'static,
    ) -> Result<Found, String> {
        let h = self
            .pending
            .get_or_insert_with(|| tokio::task::spawn_blocking(f));
        let r = tokio::time::timeout(LOOK_TIMEOUT, h).await;
        if r.is_ok() {
            self.pending = None;
        }
        match r {
            Ok(Ok(mut found)) => {
                found.procs.retain(|p| !scan::exited(&p.fd));
                Ok(found)
            }
            Ok(Err(e)) => Err(format!("looking for processes: {e}")),
            Err(_) => Err("looking for processes timed out (a /proc read hangs)".into()),
        }
    }
}

/// `nginx` -> `nginx.service`; names with a type stay as they are.
fn unit_name(u: &str) -> String {
    if u.contains('.') {
        u.to_string()
    } else {
        format!("{u}.service")
    }
}

/// systemd's `ControlGroup` and `MainPID` of `unit` (empty and 0 when it
/// does not say).
async fn systemctl_show(unit: &str) -> (String, i32) {
    let out = tokio::process::Command::new("systemctl")
        .args(["show", "-p", "ControlGroup", "-p", "MainPID", "--", unit])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let Ok(Ok(out)) = tokio::time::timeout(SYSTEMCTL_TIMEOUT, out).await else {
        return (String::new(), 0);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut cgroup = String::new();
    let mut pid = 0;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("ControlGroup=") {
            cgroup = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("MainPID=") {
            pid = v.trim().parse().unwrap_or(0);
        }
    }
    (cgroup, pid)
}

/// The indices of the watched processes that have exited, once one has.
async fn deaths(watched: &[Watched]) -> Vec<usize> {
    poll_fn(|cx| {
        // Polls every pidfd (so that each registers the waker) and collects
        // all that are readable: a group killed at once is one wake-up.
        let dead: Vec<usize> = watched
            .iter()
            .enumerate()
            .filter(|(_, w)| w.fd.poll_read_ready(cx).is_ready())
            .map(|(i, _)| i)
            .collect();
        if dead.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(dead)
        }
    })
    .await
}

#[cfg(test)]
mod tests;
