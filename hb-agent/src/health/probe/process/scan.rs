//! Finding a check's processes: by name in /proc, by pidfile, by systemd
//! unit (its cgroup). Synchronous: these run on tokio's blocking pool, as a
//! read of /proc/PID/cmdline takes the target's mmap lock and can hang on
//! a process stuck in a page fault (`ps` hanging on a hung NFS mount).
//!
//! Every process found is returned with a pidfd opened *before* it is
//! checked once more: a pid reused between the listing and the open is
//! caught by that check, and one reused after it by the pidfd itself.
//!
//! Cost: a look by name opens two small /proc files per process (`comm`,
//! `cmdline`; the costlier `stat` only for the few that match), about 2-3 µs
//! each; at a death only the processes that are new since the last full
//! look are read (see [`by_name`]).

use std::collections::HashSet;
use std::fs::File;
use std::io::{ErrorKind, Read as _};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};

/// comm is cut to this many bytes (TASK_COMM_LEN - 1).
const COMM_LEN: usize = 15;
/// PF_KTHREAD in /proc/PID/stat's flags.
const PF_KTHREAD: u64 = 0x0020_0000;

/// A live process of the check and its pidfd.
pub struct Proc {
    pub pid: i32,
    pub fd: OwnedFd,
}

/// What a look found; when nothing, `none` says what is missing.
pub struct Found {
    pub procs: Vec<Proc>,
    pub none: String,
    /// A unit whose cgroup is not where hb looked: ask systemd.
    pub ask_systemd: bool,
    /// Every pid a full look by name listed.
    pub listed: Option<HashSet<i32>>,
}

impl Found {
    fn none(why: String) -> Found {
        Found {
            procs: Vec::new(),
            none: why,
            ask_systemd: false,
            listed: None,
        }
    }
}

/// Processes whose comm is `name` (cut to 15 bytes, as the kernel cuts it)
/// or whose argv[0]'s basename is `name`; not zombies, not kernel threads,
/// not this process. With `known` (the pids of the last full look), only
/// other pids are read: at a death, a replacement is a new process, and
/// this look must be quick. A full look says which pids it listed.
pub fn by_name(name: &str, known: Option<&HashSet<i32>>) -> Found {
    let me = std::process::id() as i32;
    let listed = all_pids();
    let new = |p: &i32| *p != me && known.is_none_or(|k| !k.contains(p));
    let candidates = listed
        .iter()
        .copied()
        .filter(new)
        .filter(|&p| named(p, name));
    let procs = open_verified(candidates, |p| named(p, name) && user_process(p));
    let found = Found::none(format!("no process named {name}"));
    let listed = known.is_none().then(|| listed.into_iter().collect());
    Found {
        procs,
        listed,
        ..found
    }
}

/// The process whose pid is in `pidfile`.
pub fn by_pidfile(pidfile: &Path) -> Found {
    let what = format!("pidfile {}", pidfile.display());
    let text = match read_small(pidfile, 64) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Found::none(format!("{what}: no such file"));
        }
        Err(e) => return Found::none(format!("{what}: {e}")),
    };
    let Some(pid) = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|&p| p > 0)
    else {
        return Found::none(format!("{what}: no pid in it"));
    };
    let procs = open_verified([pid].into_iter().filter(|&p| live(p)), live);
    Found {
        procs,
        ..Found::none(format!("{what}: pid {pid} is not running"))
    }
}

/// The processes of `unit`'s cgroup (and its sub-cgroups), looked for
/// under `system.slice` of each cgroup hierarchy in `roots`.
pub fn by_unit(unit: &str, roots: &[PathBuf]) -> Found {
    let dirs: Vec<PathBuf> = roots
        .iter()
        .map(|r| r.join("system.slice").join(unit))
        .collect();
    match dirs.iter().find(|d| d.is_dir()) {
        Some(d) => in_cgroup(unit, d),
        None => Found {
            ask_systemd: true,
            ..Found::none(no_process(unit))
        },
    }
}

/// The processes of the cgroup `cgroup` (as systemd names it: `/system.slice/x.service`)
/// in the first hierarchy of `roots` that has it, else of `main_pid`.
pub fn by_systemd(unit: &str, roots: &[PathBuf], cgroup: &str, main_pid: i32) -> Found {
    let rel = cgroup.trim_start_matches('/');
    if !rel.is_empty()
        && let Some(d) = roots.iter().map(|r| r.join(rel)).find(|d| d.is_dir())
    {
        return in_cgroup(unit, &d);
    }
    let procs = open_verified([main_pid].into_iter().filter(|&p| p > 0 && live(p)), live);
    Found {
        procs,
        ..Found::none(no_process(unit))
    }
}

fn no_process(unit: &str) -> String {
    format!("unit {unit}: no process")
}

fn in_cgroup(unit: &str, dir: &Path) -> Found {
    let me = std::process::id() as i32;
    let pids = cgroup_pids(dir);
    let mut procs = open_verified(pids.into_iter().filter(|&p| p != me), live);
    // Once more after the opens: a process that left the cgroup (or a pid
    // reused outside it) is not the unit's.
    let still: HashSet<i32> = cgroup_pids(dir).into_iter().collect();
    procs.retain(|p| still.contains(&p.pid));
    Found {
        procs,
        ..Found::none(no_process(unit))
    }
}

/// The pids in `dir`'s cgroup.procs and its sub-cgroups' (a unit with
/// `Delegate=` has some).
fn cgroup_pids(dir: &Path) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>, depth: u32) {
        if let Ok(t) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if depth >= 8 {
            return;
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out, depth + 1);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out, 0);
    out
}

/// The cgroup hierarchies systemd keeps units in: every cgroup2 mount and
/// the named v1 `systemd` one (hybrid set-ups), else /sys/fs/cgroup.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/proc/self/mountinfo") {
        for l in t.lines() {
            let Some((pre, post)) = l.split_once(" - ") else {
                continue;
            };
            let Some(mnt) = pre.split(' ').nth(4) else {
                continue;
            };
            let mut post = post.split(' ');
            let fstype = post.next().unwrap_or("");
            let opts = post.nth(1).unwrap_or("");
            if fstype == "cgroup2"
                || (fstype == "cgroup" && opts.split(',').any(|o| o == "name=systemd"))
            {
                roots.push(PathBuf::from(mnt.replace("\\040", " ")));
            }
        }
    }
    if roots.is_empty() {
        roots.push("/sys/fs/cgroup".into());
    }
    roots
}

/// Opens a pidfd for each of `pids` and keeps those that `still(pid)`
/// after the open and had not exited then.
fn open_verified(pids: impl Iterator<Item = i32>, still: impl Fn(i32) -> bool) -> Vec<Proc> {
    pids.filter_map(|pid| {
        let fd = pidfd_open(pid)?;
        (still(pid) && !exited(&fd)).then_some(Proc { pid, fd })
    })
    .collect()
}

pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: see above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The pidfd's process has exited (a pidfd polls readable then).
pub fn exited(fd: &OwnedFd) -> bool {
    use std::os::fd::AsRawFd as _;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) != 0 }
}

/// Every process (thread group) in /proc.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// /proc/PID/stat's state and flags.
struct Stat {
    state: u8,
    flags: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let mut buf = [0u8; 512];
    let b = read_once(&format!("/proc/{pid}/stat"), &mut buf)?;
    // `pid (comm) S ppid pgrp session tty tpgid flags ...`; comm may hold
    // anything, `)` included: it ends at the last `)`.
    let close = b.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(b.get(close + 2..)?).ok()?;
    let mut f = rest.split(' ');
    let state = *f.next()?.as_bytes().first()?;
    let flags = f.nth(5)?.parse().ok()?;
    Some(Stat { state, flags })
}

/// Running (not a zombie, not dead).
fn live(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, b'Z' | b'X' | b'x'))
}

/// Running and not a kernel thread.
fn user_process(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, b'Z' | b'X' | b'x') && s.flags & PF_KTHREAD == 0)
}

/// comm or argv[0]'s basename is `name`.
fn named(pid: i32, name: &str) -> bool {
    let n = name.as_bytes();
    let mut buf = [0u8; 64];
    if let Some(comm) = read_once(&format!("/proc/{pid}/comm"), &mut buf)
        && comm.strip_suffix(b"\n").unwrap_or(comm) == &n[..n.len().min(COMM_LEN)]
    {
        return true;
    }
    // argv[0] (up to its NUL); one read holds it but for a very long path.
    let path = format!("/proc/{pid}/cmdline");
    const ONE_READ: usize = 1024;
    let mut buf = [0u8; ONE_READ];
    let Some(mut cmd) = read_once(&path, &mut buf) else {
        return false;
    };
    let long;
    if !cmd.contains(&0) && cmd.len() == ONE_READ {
        let Ok(c) = read_small(Path::new(&path), 64 * 1024) else {
            return false;
        };
        long = c;
        cmd = &long;
    }
    let argv0 = cmd.split(|&c| c == 0).next().unwrap_or(&[]);
    let base = argv0.rsplit(|&c| c == b'/').next().unwrap_or(&[]);
    base == n
}

/// One read of a /proc file: what the kernel gives at once (a whole
/// `stat`, argv[0]), without the read that finds the end.
fn read_once<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let mut f = File::open(path).ok()?;
    let n = f.read(buf).ok()?;
    Some(&buf[..n])
}

/// At most `max` bytes of a file, in one or a few reads.
fn read_small(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut out = Vec::with_capacity(max.min(1024));
    f.take(max as u64).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_names() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(matches!(s.state, b'R' | b'S'));
        assert!(live(me) && user_process(me));
        // kthreadd: pid 2 where the kernel's threads are visible.
        if named(2, "kthreadd") {
            assert!(
                live(2) && !user_process(2),
                "kernel threads are never a service"
            );
        }
        let found = by_name("kthreadd", None);
        assert!(found.procs.is_empty());
        assert!(found.listed.unwrap().contains(&me));
    }

    #[test]
    fn finds_cgroup_hierarchies() {
        let roots = cgroup_roots();
        assert!(!roots.is_empty());
    }
}
