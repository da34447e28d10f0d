//! Network namespaces a test creates and always removes (Drop), named per
//! test run so tests can run in parallel and leave nothing behind.
//!
//! Nothing here touches the root namespace's interfaces: veth pairs are
//! created with both ends moved straight into test namespaces.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, Result, bail};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique name prefix for this process: `hb<pid>x<n>`.
pub fn unique(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    format!("hb{}{}{}", std::process::id(), tag, n)
}

pub fn ip(args: &[&str]) -> Result<()> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !o.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Netns> {
        crate::kernel::assert_root();
        let name = unique(tag);
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs a command inside the namespace; error with its stderr on failure.
    pub fn exec(&self, cmd: &[&str]) -> Result<String> {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .with_context(|| format!("running {cmd:?} in {}", self.name))?;
        if !o.status.success() {
            bail!(
                "{} in {}: {}",
                cmd.join(" "),
                self.name,
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Runs `f` on a new thread that has entered this namespace (threads it
    /// spawns stay in it too) and returns its result.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
        let path = format!("/run/netns/{}", self.name);
        let h = std::thread::spawn(move || -> Result<R> {
            enter(&path)?;
            Ok(f())
        });
        h.join()
            .map_err(|_| anyhow::anyhow!("thread in namespace panicked"))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Moves the calling thread into the namespace at `path`.
pub fn enter(path: &str) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: valid fd; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A veth pair `a_if`@a <-> `b_if`@b, both up, with optional IPv4 addresses.
pub fn veth(
    a: &Netns,
    a_if: &str,
    a_addr: Option<&str>,
    b: &Netns,
    b_if: &str,
    b_addr: Option<&str>,
) -> Result<()> {
    // Created inside `a` so no interface ever exists in the root namespace.
    a.exec(&[
        "ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ])?;
    for (ns, ifc, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        if let Some(addr) = addr {
            ns.exec(&["ip", "addr", "add", addr, "dev", ifc])?;
        }
        ns.exec(&["ip", "link", "set", ifc, "up"])?;
    }
    Ok(())
}

/// Hosts a and b on a veth pair: eth2 with 10.160.100.30/24 and .31/24,
/// the heartbeat network of the two-host tests.
pub fn heartbeat_pair(tag: &str) -> Result<(Netns, Netns)> {
    let a = Netns::new(&format!("{tag}a"))?;
    let b = Netns::new(&format!("{tag}b"))?;
    veth(
        &a,
        "eth2",
        Some("10.160.100.30/24"),
        &b,
        "eth2",
        Some("10.160.100.31/24"),
    )?;
    Ok((a, b))
}

/// A BPF filesystem of the test's own, mounted on a temporary directory in
/// the test's (the host's) mount namespace: pins there outlive an agent
/// started under `ip netns exec`, whose private mount namespace (and any
/// bpffs mounted inside it) goes away with the agent, as they outlive an
/// agent on a real host's /sys/fs/bpf. Unmounted on drop, which releases
/// every pin (and detaches pinned XDP links no agent holds any more).
pub struct BpfFs(PathBuf);

impl BpfFs {
    pub fn mount() -> Result<BpfFs> {
        let dir = std::env::temp_dir().join(unique("bpffs"));
        std::fs::create_dir_all(&dir)?;
        let st = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&dir)
            .status()
            .context("running mount")?;
        if !st.success() {
            let _ = std::fs::remove_dir(&dir);
            bail!("mounting a BPF filesystem on {}: {st}", dir.display());
        }
        Ok(BpfFs(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
