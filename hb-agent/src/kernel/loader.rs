//! Loading and attaching the XDP program.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use tracing::{info, warn};

/// The XDP object built by build.rs from hb-ebpf.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/hb"));

/// Maps that outlive the agent when pinned: counters, peer state and its
/// timers keep running across an agent restart.
const PINNED_MAPS: [&str; 5] = ["CONFIG", "PEERS", "PEER_STATE", "COUNTERS", "EVENTS"];

/// The loaded program and its maps.
pub struct Kernel {
    pub(crate) ebpf: Ebpf,
    attachments: Vec<Attachment>,
    /// Where maps and links are pinned, if they are.
    pin_dir: Option<PathBuf>,
}

/// Where the program is attached and how.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub iface: String,
    pub ifindex: u32,
    pub mode: &'static str,
}

impl Kernel {
    /// Loads the program (verifier runs here). With `pin_dir`, maps are
    /// pinned there and reused if already present, so an agent restart keeps
    /// counters and peer state.
    pub fn load(pin_dir: Option<&Path>) -> Result<Kernel> {
        raise_memlock();
        let mut loader = EbpfLoader::new();
        if let Some(dir) = pin_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating BPF pin directory {}", dir.display()))?;
            for name in PINNED_MAPS {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut ebpf = loader.load(OBJECT).map_err(|e| {
            anyhow!(
                "loading the XDP program failed: {e:#}\n\
                 (needs root or CAP_BPF+CAP_NET_ADMIN; see README, Troubleshooting)"
            )
        })?;
        if let Err(e) = aya_log::EbpfLogger::init(&mut ebpf) {
            // The program may carry no log statements; not an error.
            tracing::debug!("kernel log forwarding not active: {e}");
        }
        for name in ["hb_xdp", "hb_deadline_probe"] {
            let prog: &mut Xdp = ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} missing from object"))?
                .try_into()?;
            prog.load().map_err(|e| verifier_error(name, e))?;
        }
        Ok(Kernel {
            ebpf,
            attachments: Vec::new(),
            pin_dir: pin_dir.map(Path::to_path_buf),
        })
    }

    /// Attaches the heartbeat program to `iface`: native (driver) mode
    /// first, generic (skb) mode as a logged fallback. With pinning, the
    /// attachment is a BPF link pinned as `link-<iface>`: it outlives the
    /// agent, so detection goes on while the agent restarts, and a new agent
    /// swaps its program into the pinned link atomically instead of
    /// detaching anything.
    pub fn attach(&mut self, iface: &str) -> Result<Attachment> {
        let ifindex = ifindex(iface)?;
        let pin = self
            .pin_dir
            .as_ref()
            .map(|d| d.join(format!("link-{iface}")));
        let prog: &mut Xdp = self
            .ebpf
            .program_mut("hb_xdp")
            .context("program hb_xdp missing")?
            .try_into()?;
        if let Some(path) = pin.as_ref().filter(|p| p.exists()) {
            match adopt_link(prog, path) {
                Ok(()) => {
                    info!(iface, ifindex, pin = %path.display(), "XDP link adopted from pin: detection never stopped");
                    return Ok(self.record(iface, ifindex, "adopted"));
                }
                Err(e) => {
                    warn!(iface, error = %format!("{e:#}"), "pinned XDP link unusable; attaching afresh");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let (id, mode) = match prog.attach(iface, XdpMode::Driver) {
            Ok(id) => (id, "native"),
            Err(e) => {
                warn!(iface, error = %e, "native XDP attach failed; falling back to generic (skb) mode");
                let id = prog.attach(iface, XdpMode::Skb).with_context(|| {
                    format!(
                        "attaching XDP to {iface} (native and generic both failed; \
                         \"File exists\": another XDP program is attached there, e.g. another \
                         hb agent for this interface, or an earlier one's link still pinned: \
                         `ip link show dev {iface}`, `bpftool link`)"
                    )
                })?;
                (id, "generic")
            }
        };
        if let Some(path) = pin {
            let link = prog.take_link(id)?;
            let fd = FdLink::try_from(link).context("XDP attachment is not a BPF link")?;
            // The pin keeps the link (and so the attachment) alive; the
            // link goes back to the program so it is the one running.
            let pinned = fd
                .pin(&path)
                .with_context(|| format!("pinning XDP link at {}", path.display()))?;
            prog.attach_to_link(XdpLink::try_from(FdLink::from(pinned))?)?;
        }
        info!(iface, ifindex, mode, "XDP program attached");
        Ok(self.record(iface, ifindex, mode))
    }

    fn record(&mut self, iface: &str, ifindex: u32, mode: &'static str) -> Attachment {
        let a = Attachment {
            iface: iface.to_string(),
            ifindex,
            mode,
        };
        self.attachments.push(a.clone());
        a
    }

    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The program, for BPF_PROG_TEST_RUN (tests and benchmarks).
    pub fn program(&self, name: &str) -> Result<&Xdp> {
        Ok(self
            .ebpf
            .program(name)
            .with_context(|| format!("program {name} missing"))?
            .try_into()?)
    }
}

/// Puts this program into the XDP link pinned at `path` (atomic replace).
fn adopt_link(prog: &mut Xdp, path: &Path) -> Result<()> {
    let pinned =
        PinnedLink::from_pin(path).with_context(|| format!("opening {}", path.display()))?;
    let link = XdpLink::try_from(FdLink::from(pinned))?;
    prog.attach_to_link(link)?;
    Ok(())
}

fn verifier_error(name: &str, e: aya::programs::ProgramError) -> anyhow::Error {
    // The verifier log is inside the error's Display; keep all of it.
    anyhow!("the kernel refused program {name}: {e:#}\nverifier log:\n{e:?}")
}

pub fn ifindex(iface: &str) -> Result<u32> {
    let c = std::ffi::CString::new(iface)?;
    // SAFETY: valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(anyhow!(
            "no interface named {iface:?} in this network namespace"
        ));
    }
    Ok(i)
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
fn raise_memlock() {
    let r = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) };
}

/// Default pin directory for a cluster: /sys/fs/bpf/hb/<cluster>.
pub fn pin_dir_for(cluster: &str) -> PathBuf {
    PathBuf::from("/sys/fs/bpf/hb").join(cluster)
}

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// How long pins in a directory live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinLife {
    /// On a BPF filesystem that outlives this process (the host's).
    Outlives,
    /// On a BPF filesystem this agent had to mount itself inside a mount
    /// namespace of its own (`ip netns exec`, `unshare -m`): it vanishes with
    /// the agent, and so does everything pinned there.
    DiesWithAgent,
}

/// Whether `dir` (or its nearest existing ancestor) is on a BPF filesystem;
/// if /sys/fs/bpf is not mounted yet, mounts it (as systemd would) and says
/// whether that mount outlives the agent.
pub fn ensure_bpffs(dir: &Path) -> Result<PinLife> {
    let on_bpffs = |p: &Path| {
        let mut p = p.to_path_buf();
        while !p.exists() {
            if !p.pop() {
                return false;
            }
        }
        nix::sys::statfs::statfs(&p).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC)
    };
    if on_bpffs(dir) {
        return Ok(PinLife::Outlives);
    }
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) {
        std::fs::create_dir_all(root)?;
        nix::mount::mount(
            Some("bpf"),
            root,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .context("mounting the BPF filesystem at /sys/fs/bpf")?;
        if on_bpffs(dir) {
            return Ok(if own_mount_namespace() {
                PinLife::DiesWithAgent
            } else {
                PinLife::Outlives
            });
        }
    }
    Err(anyhow!(
        "{} is not on a BPF filesystem (mount -t bpf bpf DIR)",
        dir.display()
    ))
}

/// Whether this process lives in a mount namespace its parent does not
/// share: `ip netns exec` (which also mounts a fresh /sys, hiding the
/// host's /sys/fs/bpf) and `unshare -m` exec the agent in one made for it,
/// which ends with it. Under systemd, or a shell in the host's namespace,
/// parent and agent share one. Unknown (unreadable) counts as shared.
fn own_mount_namespace() -> bool {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let ppid = nix::unistd::getppid().to_string();
    matches!((ns("self"), ns(&ppid)), (Some(a), Some(b)) if a != b)
}
