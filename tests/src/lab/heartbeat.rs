//! Linux-HA Heartbeat itself (Debian's `heartbeat` 3.0.6, v1 mode: `crm
//! off`, haresources) in the same lab, for the failover benchmark: node0
//! primary for vip1, node1 its standby, the seed's ha.cf at its smallest
//! workable timings.
//!
//! Each node runs in its network namespace and in a UTS and mount namespace
//! of its own (hostname `node<i>`, as Heartbeat matches `uname -n` against
//! the `node` lines), with its own directories bound over the package's:
//! `/etc/ha.d` (a copy of the package's harc, rc.d and resource.d plus this
//! node's ha.cf, haresources and authkeys), `/var/lib/heartbeat` (uuid,
//! generation, hostcache: kept across restarts, like a disk), `/run` (pid
//! file, API sockets, resource-agent state: emptied on every start, like a
//! tmpfs at boot) and `/var/log` (ha-log).
//!
//! Heartbeat forks a master control process, FIFO reader, one reader and
//! one writer per medium, ipfail (respawned, in a process group of its own),
//! and resource scripts with their own children (send_arp runs on in the
//! background); after a partition it may restart itself, and the restarted
//! master daemonizes into a new session. What they all share is the mount
//! namespace this module creates for the node: that is how they are found,
//! signalled and killed, and nothing outside it is touched.
//!
//! Timings: Heartbeat keeps time in `times()` clock ticks (10 ms here), so
//! 10 ms is the smallest keepalive that means anything; `deadtime` must be
//! more than twice keepalive; ha.cf takes `ms` suffixes (not `s`). See
//! [`TIMINGS`] for what was measured.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::agents::Timings;
use super::topology::{GATEWAY, VIPS};

/// The master control process's binary (what `heartbeat.service` runs).
pub const HEARTBEAT_BIN: &str = "/usr/libexec/heartbeat/heartbeat";

/// The smallest timings that held on the 2-core lab machine while another
/// build kept both cores busy: keepalive 10 ms is one clock tick; deadtime
/// must exceed two keepalives, and at 30 ms (three ticks) both nodes
/// logged late heartbeats of 20 ms by the hundred a minute, one tick from a
/// false failover, while at 40 ms none came in 65 s + 120 s idle (nor in 40
/// benchmark trials); warntime between them; initdead 1 s, at least
/// deadtime (the benchmark starts node0 alone, then node1: two nodes that
/// start within each other's initdead can both take vip1, and v1
/// Heartbeat then keeps both owning it). Not proof against everything: once
/// in some 65 trials both masters stalled 90-100 ms at the same moment and
/// each declared the other dead.
pub const TIMINGS: Timings = Timings {
    keepalive_ms: 10.0,
    deadtime_ms: 40.0,
    warntime_ms: 30.0,
    initdead_ms: 1000.0,
};

/// node0 primary for vip1, node1 the standby, as the seed's tutorial has it
/// (`IPaddr2` where the tutorial's generic example uses `IPaddr`: same
/// arguments, `ip` instead of `ifconfig` aliases).
fn haresources() -> String {
    format!("node0 IPaddr2::{}/24/eth0\n", VIPS[0])
}

/// The seed's ha.cf for node `i` (both nodes have the same), with `t`:
/// heartbeats broadcast on eth2, the gateway as ping node and ipfail
/// (which makes a node that lost the service network hand over), and
/// `auto_failback on`.
pub fn ha_cf(t: &Timings) -> String {
    format!(
        "# Heartbeat 3.0.6 in the hb lab: the seed's ha.cf at its smallest timings\n\
         logfile /var/log/ha-log\n\
         debugfile /var/log/ha-debug\n\
         use_logd no\n\
         keepalive {}ms\n\
         deadtime {}ms\n\
         warntime {}ms\n\
         initdead {}ms\n\
         deadping {}ms\n\
         udpport 694\n\
         bcast eth2\n\
         auto_failback on\n\
         node node0\n\
         node node1\n\
         ping {GATEWAY}\n\
         respawn hacluster /usr/libexec/heartbeat/ipfail\n\
         apiauth ipfail gid=haclient uid=hacluster\n\
         crm off\n",
        t.keepalive_ms, t.deadtime_ms, t.warntime_ms, t.initdead_ms, t.deadtime_ms
    )
}

/// Writes node `i`'s ha.cf, haresources and authkeys (mode 600, as
/// Heartbeat requires) into `ha_d`.
pub fn config(i: usize, t: &Timings, ha_d: &Path) -> Result<()> {
    debug_assert!(i < 2, "Heartbeat runs on node0 and node1 only");
    fs::write(ha_d.join("ha.cf"), ha_cf(t))?;
    fs::write(ha_d.join("haresources"), haresources())?;
    let ak = ha_d.join("authkeys");
    fs::write(&ak, "auth 1\n1 sha1 hb-lab-shared-secret\n")?;
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Runs inside `ip netns exec NS unshare --uts --mount --propagation
/// private`: $1 the node's directory, $2 its name. Ends in `exec`, so the
/// master control process is the process this module started.
const START: &str = r#"set -e
readlink /proc/self/ns/mnt > "$1/mntns"
hostname "$2"
mount --bind "$1/ha.d" /etc/ha.d
mount --bind "$1/lib" /var/lib/heartbeat
mount --bind "$1/run" /run
mount --bind "$1/log" /var/log
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm /run/lock /run/resource-agents
chown -R hacluster:haclient /run/heartbeat /run/crm
chmod 750 /run/heartbeat /run/crm
exec "$3" -f
"#;

fn copy_tree(from: &str, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{from}/."))
        .arg(to)
        .status()
        .context("running cp")?;
    if !st.success() {
        bail!("cp -a {from}/. {}: {st}", to.display());
    }
    Ok(())
}

/// Node `i`'s directory under `dir`, set up on first use: the package's
/// /etc/ha.d and /var/lib/heartbeat copied (scripts, core directories with
/// their owners), this node's configuration written; `run` emptied.
fn prepare(i: usize, t: &Timings, dir: &Path) -> Result<PathBuf> {
    if !Path::new(HEARTBEAT_BIN).exists() || !Path::new("/etc/ha.d/harc").exists() {
        bail!(
            "Heartbeat is not installed: cargo xtask setup installs the Debian package heartbeat"
        );
    }
    let d = dir.join(format!("heartbeat-node{i}"));
    if !d.join("ha.d").exists() {
        copy_tree("/etc/ha.d", &d.join("ha.d"))?;
        copy_tree("/var/lib/heartbeat", &d.join("lib"))?;
    }
    config(i, t, &d.join("ha.d"))?;
    let run = d.join("run");
    let _ = fs::remove_dir_all(&run);
    fs::create_dir_all(&run)?;
    let _ = fs::remove_file(d.join("mntns"));
    fs::create_dir_all(d.join("log"))?;
    Ok(d)
}

/// The live processes (pid, state) in mount namespace `ns` (as
/// `readlink /proc/PID/ns/mnt` shows it).
fn in_mount_ns(ns: &str) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if fs::read_link(format!("/proc/{pid}/ns/mnt")).ok().as_deref() != Some(Path::new(ns)) {
            continue;
        }
        if let Some(state) = state(pid)
            && state != 'Z'
            && state != 'X'
        {
            out.push((pid, state));
        }
    }
    out
}

/// A process's state letter from /proc/PID/stat.
fn state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...; comm may hold anything.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

pub struct Heartbeat {
    pub child: Child,
    pub dir: PathBuf,
    /// The node's mount namespace, once the start script has recorded it.
    mntns: std::cell::OnceCell<String>,
    reaped: bool,
}

impl Heartbeat {
    /// Starts node `i`'s Heartbeat with [`TIMINGS`].
    pub fn start(netns: &str, i: usize, dir: &Path) -> Result<Heartbeat> {
        Self::start_with(netns, i, &TIMINGS, dir)
    }

    pub fn start_with(netns: &str, i: usize, t: &Timings, dir: &Path) -> Result<Heartbeat> {
        let d = prepare(i, t, dir)?;
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("stdout.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns])
            .args(["unshare", "--uts", "--mount", "--propagation", "private"])
            .args(["sh", "-c", START, "hb-heartbeat-start"])
            .arg(&d)
            .arg(format!("node{i}"))
            .arg(HEARTBEAT_BIN)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting heartbeat (cargo xtask setup installs it)")?;
        Ok(Heartbeat {
            child,
            dir: d,
            mntns: std::cell::OnceCell::new(),
            reaped: false,
        })
    }

    /// Every live process this Heartbeat started: those in its mount
    /// namespace, or the starter itself before it has made one.
    pub fn processes(&self) -> Vec<(i32, char)> {
        if self.mntns.get().is_none()
            && let Ok(ns) = fs::read_to_string(self.dir.join("mntns"))
            && !ns.trim().is_empty()
        {
            let _ = self.mntns.set(ns.trim().to_string());
        }
        match self.mntns.get() {
            Some(ns) => in_mount_ns(ns),
            None if !self.reaped => state(self.child.id() as i32)
                .filter(|s| *s != 'Z')
                .map(|s| vec![(self.child.id() as i32, s)])
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    pub fn pids(&self) -> Vec<i32> {
        self.processes().into_iter().map(|(p, _)| p).collect()
    }

    /// The master control process: what /run/heartbeat.pid names (it moves
    /// when Heartbeat restarts itself), if it is one of ours.
    pub fn master(&self) -> Option<i32> {
        let procs = self.processes();
        fs::read_to_string(self.dir.join("run/heartbeat.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| procs.iter().any(|(q, _)| q == p))
            .or_else(|| {
                let c = self.child.id() as i32;
                procs.iter().any(|(q, _)| *q == c).then_some(c)
            })
    }

    /// How long the current master control process has been running
    /// (Heartbeat restarts itself after a partition).
    pub fn master_age(&self) -> Option<Duration> {
        let pid = self.master()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 22, starttime, in clock ticks since boot; fields counted
        // from the state (field 3), after the comm.
        let rest = &stat[stat.rfind(')')? + 1..];
        let start: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let up: f64 = fs::read_to_string("/proc/uptime")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(Duration::from_secs_f64((up - start / hz).max(0.0)))
    }

    /// Signals every process of this Heartbeat. SIGSTOP is repeated until
    /// all are stopped (a process forked meanwhile would otherwise run on);
    /// SIGKILL until none is left.
    pub fn signal_all(&self, sig: i32) {
        for _ in 0..500 {
            let pending: Vec<i32> = self
                .processes()
                .into_iter()
                .filter(|(_, st)| sig != libc::SIGSTOP || (*st != 'T' && *st != 't'))
                .map(|(p, _)| p)
                .collect();
            if pending.is_empty() {
                return;
            }
            for p in &pending {
                // SAFETY: signals only processes in the mount namespace
                // this module created (or the starter it spawned).
                unsafe { libc::kill(*p, sig) };
            }
            if sig != libc::SIGSTOP && sig != libc::SIGKILL {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn reap(&mut self) {
        if !self.reaped {
            self.signal_all(libc::SIGCONT);
            self.signal_all(libc::SIGKILL);
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    /// `heartbeat -k`: SIGTERM to the master, which releases its resources
    /// (they move to the standby) and exits; waits up to `timeout`, then
    /// kills what is left.
    pub fn stop(mut self, timeout: Duration) -> Result<()> {
        let Some(master) = self.master() else {
            self.reap();
            bail!("heartbeat is not running");
        };
        // SAFETY: signals only the master this module started.
        unsafe { libc::kill(master, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.processes().iter().any(|(p, _)| *p == master) {
            if t0.elapsed() > timeout {
                self.reap();
                bail!("heartbeat did not stop within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.reap();
        Ok(())
    }

    /// Power off: SIGKILL to every process at once.
    pub fn kill(mut self) {
        self.reap();
    }

    /// The node's ha-log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log/ha-log")
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.reap();
    }
}
