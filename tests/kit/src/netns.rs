//! Network namespaces a test creates and always removes (Drop, also on
//! panic), named per process and per test so tests run in parallel and
//! leave nothing behind.
//!
//! Nothing here touches the root namespace's interfaces: veth pairs are
//! created inside a test namespace with the peer moved straight into
//! another. Set-up and checks use `ip` (only the code under test must not).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, Result, bail};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique name for this process and `tag`: `hb<pid><tag><n>`.
pub fn unique(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    format!("hb{}{}{}", std::process::id(), tag, n)
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn output(cmd: &mut Command) -> Result<String> {
    let o = cmd
        .output()
        .with_context(|| format!("running {cmd:?} (is iproute2 installed?)"))?;
    if !o.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `ip <args>` outside any test namespace (only `netns add/del` and the
/// like: never a root-namespace interface).
pub fn ip(args: &[&str]) -> Result<()> {
    output(Command::new("ip").args(args)).map(drop)
}

/// A network namespace that exists as long as this value.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace with `lo` up, named `unique(tag)`.
    pub fn new(tag: &str) -> Result<Netns> {
        crate::require_root("a network-namespace test");
        let name = unique(tag);
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `/run/netns/<name>`, to enter it.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace; error with its stderr on failure.
    pub fn exec(&self, cmd: &[&str]) -> Result<String> {
        output(
            Command::new("ip")
                .args(["netns", "exec", &self.name])
                .args(cmd),
        )
        .with_context(|| format!("in namespace {}", self.name))
    }

    /// `ip -n <ns> <args>` for a set-up step or a check: panics on failure
    /// (with ip's message), returns stdout.
    pub fn ip(&self, args: &str) -> String {
        output(
            Command::new("ip")
                .args(["-n", &self.name])
                .args(args.split_whitespace()),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `sysctl -w key=value` inside the namespace; panics on failure.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-q", "-w", &format!("{key}={value}")])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Runs `f` on a new thread that has entered this namespace (threads it
    /// spawns stay in it too), and a private UTS namespace when `uts`, and
    /// returns its result; a panic in `f` goes on in the caller.
    pub fn run<R: Send + 'static>(
        &self,
        uts: bool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let path = self.path();
        let h = std::thread::spawn(move || -> Result<R> {
            enter(&path)?;
            if uts {
                unshare_uts()?;
            }
            Ok(f())
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &str) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    // SAFETY: valid fd; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!(
            "setns({path}): {} (needs CAP_SYS_ADMIN)",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Gives the calling thread a UTS namespace of its own (hostname tests).
pub fn unshare_uts() -> Result<()> {
    // SAFETY: affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
        bail!(
            "unshare(CLONE_NEWUTS): {} (needs CAP_SYS_ADMIN)",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// A veth pair `a_if`@a <-> `b_if`@b, both up, with optional addresses.
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
