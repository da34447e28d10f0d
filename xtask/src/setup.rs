//! `cargo xtask setup`: make a fresh machine ready, idempotently.
//!
//! 1. the nightly toolchain with rust-src (the eBPF crate needs build-std);
//! 2. bpf-linker 0.13 linked against the nightly's own libLLVM (nothing else
//!    of LLVM 22 can be downloaded here; see docs in README, Building);
//! 3. the Debian packages the project uses;
//! 4. for `cargo xtask fuzz` and `test` (and `setup` itself): cargo-fuzz.
//!
//! Each step checks first and does nothing when already done.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

const BPF_LINKER_VERSION: &str = "0.13.0";

/// cargo-fuzz, built with the stable toolchain (`--locked`: its own
/// lockfile, so a newer dependency cannot break the build); the targets
/// themselves build with the nightly that setup installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Debian packages and why: iproute2 (ip netns/veth for tests and the lab),
/// iputils-ping and arping (probes), tcpdump (debugging captures),
/// net-tools (ifconfig/route used by the seed's Remac scripts), stress-ng
/// (load in benchmarks), keepalived (the failover benchmark's comparison),
/// bpftool (inspecting maps, troubleshooting).
const PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "arping",
    "tcpdump",
    "net-tools",
    "stress-ng",
    "keepalived",
    "bpftool",
];

/// Installed by `cargo xtask bench failover` only: Linux-HA Heartbeat 3.0.6,
/// its third contender. It pulls in cluster-glue, resource-agents and more,
/// which nothing else needs, so `setup` (and the tests) leave it out.
const BENCH_FAILOVER_PACKAGES: &[&str] = &["heartbeat"];

/// What `cargo xtask bench failover` needs beyond `run`.
pub fn bench_failover() -> Result<()> {
    debian_packages(BENCH_FAILOVER_PACKAGES)
}

/// Services that packages above would start on this host (in the root
/// namespace) and enable at boot, where they are not wanted: the benchmark
/// runs them only inside the lab's namespaces. heartbeat's postinst runs
/// `invoke-rc.d heartbeat start` (and, under systemd, starts
/// heartbeat.service); its dependency cluster-glue starts and enables
/// logd.service (ha_logd) under systemd. While packages install, a
/// policy-rc.d denies every start (see [`DenyServiceStarts`]); the services
/// of a package this setup installed are then disabled at boot. A host that
/// already had the package keeps its own settings.
const NO_SERVICES: &[(&str, &[&str])] = &[("heartbeat", &["heartbeat", "logd"])];

const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// Debian's way to keep maintainer scripts from starting services
/// (invoke-rc.d and deb-systemd-invoke both ask it): a policy-rc.d that
/// exits 101, for as long as this guard lives. An existing policy-rc.d is
/// the administrator's and is left as it is.
struct DenyServiceStarts {
    installed: bool,
}

impl DenyServiceStarts {
    fn install() -> Result<DenyServiceStarts> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::path::Path::new(POLICY_RC_D);
        if path.exists() {
            return Ok(DenyServiceStarts { installed: false });
        }
        std::fs::write(
            path,
            "#!/bin/sh\n# cargo xtask setup: no service starts while it installs packages\nexit 101\n",
        )
        .with_context(|| format!("writing {POLICY_RC_D}"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
        Ok(DenyServiceStarts { installed: true })
    }
}

impl Drop for DenyServiceStarts {
    fn drop(&mut self) {
        if self.installed {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}

/// Keeps `service` from starting at boot: systemd unit and SysV links
/// (systemctl works without systemd running), or update-rc.d alone.
fn disable_at_boot(service: &str) {
    let quiet = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let done = quiet(Command::new("systemctl").args([
        "--no-reload",
        "disable",
        &format!("{service}.service"),
    ])) || quiet(Command::new("update-rc.d").args([service, "disable"]));
    if !done {
        eprintln!("setup: warning: could not disable {service} at boot");
    }
}

pub fn run() -> Result<()> {
    nightly_rust_src()?;
    bpf_linker()?;
    debian_packages(PACKAGES)?;
    Ok(())
}

/// What `cargo xtask fuzz` needs beyond `run`: cargo-fuzz, installed only
/// when `cargo fuzz --version` does not answer with the pinned version.
pub fn cargo_fuzz() -> Result<()> {
    let ok = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION)
        });
    if ok {
        return Ok(());
    }
    eprintln!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute and a half)");
    status(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--locked",
        "--force",
        "--version",
        CARGO_FUZZ_VERSION,
    ]))
}

pub fn output(cmd: &mut Command) -> Result<String> {
    let o = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !o.status.success() {
        bail!("{cmd:?} failed: {}", o.status);
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn status(cmd: &mut Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

fn nightly_rust_src() -> Result<()> {
    let have_nightly = Command::new("rustc")
        .args(["+nightly", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_nightly {
        eprintln!("setup: installing the nightly toolchain");
        status(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))?;
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: adding rust-src to nightly");
        status(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
}

fn bpf_linker() -> Result<()> {
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let sysroot = PathBuf::from(sysroot.trim());
    let vv = output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    let major = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("nightly rustc does not report its LLVM version")?
        .to_string();
    let so = std::fs::read_dir(sysroot.join("lib"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .context("the nightly toolchain ships no libLLVM.so.*")?;
    // A directory that lives as long as the user's toolchains: bpf-linker's
    // rpath points here, so it must not be under target/ (cargo clean).
    let pfx = home().join(format!(".local/share/hb/llvm-{major}"));
    let lib = pfx.join("lib");
    std::fs::create_dir_all(&lib)?;
    for name in ["libLLVM.so", so.as_str()] {
        let link = lib.join(name);
        let target = sysroot.join("lib").join(&so);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
    }
    let ok = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        });
    if ok {
        return Ok(());
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against the nightly's LLVM {major} (about a minute)"
    );
    status(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--force",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", &pfx),
    )
}

pub fn debian_packages(packages: &[&'static str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    status(
        Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null()),
    )?;
    let deny = DenyServiceStarts::install()?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null()),
    )?;
    drop(deny);
    for (pkg, services) in NO_SERVICES {
        if missing.contains(pkg) {
            services.iter().for_each(|s| disable_at_boot(s));
        }
    }
    Ok(())
}
