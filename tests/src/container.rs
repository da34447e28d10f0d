//! A clean Debian 12 root file system (mmdebstrap, from Debian's packages)
//! and a container that boots it under its own systemd (systemd-nspawn
//! --boot): the ground the package proof (`cargo xtask dist --prove`)
//! installs the `.deb` on.
//!
//! The container joins a network namespace the proof made (never the root
//! namespace's), is not registered with a host systemd (this machine's init
//! is not systemd: `--register=no --keep-unit`), and is powered off on drop.
//! Commands run inside it through nsenter into its init's namespaces, with
//! a clean environment, so `systemctl` talks to the container's systemd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::netns::Netns;

/// What the root file system has besides minbase: an init to boot, a bus
/// for systemctl, man to read the pages. No Rust, no compiler.
pub const INCLUDE: &str = "systemd,systemd-sysv,dbus,man-db,procps";

/// Builds a minimal Debian 12 (bookworm) root in `dir` (must not exist).
pub fn debootstrap(dir: &Path) -> Result<Duration> {
    let t0 = Instant::now();
    let o = Command::new("mmdebstrap")
        .args(["--quiet", "--variant=minbase"])
        .arg(format!("--include={INCLUDE}"))
        .arg("bookworm")
        .arg(dir)
        .output()
        .context("running mmdebstrap (cargo xtask dist --prove installs it)")?;
    if !o.status.success() {
        bail!(
            "mmdebstrap bookworm {}: {}\n{}",
            dir.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(t0.elapsed())
}

/// `cmd` in `root` by chroot (the root is not booted): its output.
pub fn chroot(root: &Path, cmd: &[&str]) -> Result<Output> {
    Command::new("chroot")
        .arg(root)
        .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        .args(["DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("chroot {} {cmd:?}", root.display()))
}

/// A booted container.
pub struct Container {
    pub name: String,
    pub root: PathBuf,
    nspawn: Child,
    /// The container's init (its PID 1), as the host sees it.
    leader: u32,
    /// systemd-nspawn's console output.
    pub console: PathBuf,
}

impl Container {
    /// Boots `root` as machine `name` in `net`, with the capabilities the
    /// unit's bounding set names that nspawn leaves out by default (BPF,
    /// PERFMON; NET_ADMIN comes with a network namespace of its own).
    /// Waits until its systemd has finished booting.
    pub fn boot(root: &Path, name: &str, net: &Netns, console: &Path) -> Result<Container> {
        let log = std::fs::File::create(console)?;
        let nspawn = Command::new("systemd-nspawn")
            .args(["--quiet", "--boot", "--register=no", "--keep-unit"])
            .arg(format!("--machine={name}"))
            .arg("--directory")
            .arg(root)
            .arg(format!("--network-namespace-path={}", net.path()))
            .arg("--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN")
            // nspawn's seccomp filter refuses bpf(2) otherwise (EPERM on
            // the first map), whatever the capabilities.
            .arg("--system-call-filter=bpf")
            .arg("--console=pipe")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("running systemd-nspawn (systemd-container)")?;
        let mut c = Container {
            name: name.to_string(),
            root: root.to_path_buf(),
            leader: 0,
            nspawn,
            console: console.to_path_buf(),
        };
        let t0 = Instant::now();
        c.leader = loop {
            if let Some(pid) = c.init_pid() {
                break pid;
            }
            if let Some(st) = c.nspawn.try_wait()? {
                bail!("systemd-nspawn exited: {st}\n{}", c.console_text());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("no init in container {name}\n{}", c.console_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // `--wait` blocks until start-up finished, once systemd answers at
        // all (it says nothing before its bus is up: try again); degraded
        // is booted too (a unit a container cannot run failed).
        loop {
            let st = c.exec(&["systemctl", "is-system-running", "--wait"])?;
            let state = String::from_utf8_lossy(&st.stdout).trim().to_string();
            match state.as_str() {
                "running" | "degraded" => return Ok(c),
                "" | "initializing" | "starting" if t0.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => bail!(
                    "container {name} booted into {state:?}: {}\n{}",
                    String::from_utf8_lossy(&st.stderr).trim(),
                    c.console_text()
                ),
            }
        }
    }

    /// The init nspawn started: a child (or grandchild, with an inner
    /// helper) of nspawn named systemd.
    fn init_pid(&self) -> Option<u32> {
        let mut todo = vec![self.nspawn.id()];
        while let Some(p) = todo.pop() {
            let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).ok()?;
            for k in kids
                .split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok())
            {
                let comm = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return Some(k);
                }
                todo.push(k);
            }
        }
        None
    }

    /// `cmd` inside the container (all of its init's namespaces, a clean
    /// environment): its output, whatever its exit status.
    pub fn exec(&self, cmd: &[&str]) -> Result<Output> {
        Command::new("nsenter")
            .arg(format!("--target={}", self.leader))
            .args(["--all", "--root", "--wd"])
            .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(["LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("in container {}: {cmd:?}", self.name))
    }

    /// `cmd` inside; its stdout, or an error with its stderr.
    pub fn run(&self, cmd: &[&str]) -> Result<String> {
        let o = self.exec(cmd)?;
        if !o.status.success() {
            bail!(
                "in container {}: {cmd:?}: {}: {}{}",
                self.name,
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// One property of a unit (`systemctl show -P`).
    pub fn unit_property(&self, unit: &str, prop: &str) -> Result<String> {
        Ok(self
            .run(&["systemctl", "show", "-P", prop, unit])?
            .trim()
            .to_string())
    }

    pub fn console_text(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Powers the container off (its systemd stops every unit, the agent
    /// hands over) and waits for nspawn; kills it after `within`.
    pub fn power_off(&mut self, within: Duration) -> Result<()> {
        let _ = self.exec(&["systemctl", "poweroff", "--no-block"]);
        let t0 = Instant::now();
        while t0.elapsed() < within {
            if self.nspawn.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // nspawn started the container's init: killing it ends everything
        // in the container's PID namespace.
        if self.leader != 0 {
            // SAFETY: kill(2) with a pid this value started; no memory involved.
            unsafe { libc::kill(self.leader as i32, libc::SIGKILL) };
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        bail!("container {} did not power off in {within:?}", self.name)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if matches!(self.nspawn.try_wait(), Ok(None)) {
            let _ = self.power_off(Duration::from_secs(30));
        }
    }
}
