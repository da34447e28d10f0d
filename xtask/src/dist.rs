//! `cargo xtask dist`: a Debian package of hb-agent, built with dpkg-deb from
//! a staged tree and a control file, checked by lintian.
//!
//! | what                         | where                                         |
//! |------------------------------|-----------------------------------------------|
//! | the agent (eBPF embedded)    | /usr/sbin/hb-agent (stripped)                 |
//! | dist/hb-agent.service        | /lib/systemd/system/hb-agent.service          |
//! | fixtures/example.toml        | /etc/hb/hb.toml.example (conffile, 600)       |
//! | man pages (clap_mangen)      | /usr/share/man/man8/hb-agent*.8.gz            |
//! | completions (clap_complete)  | bash, zsh, fish vendor directories            |
//! | README, changelog, copyright | /usr/share/doc/hb-agent/                      |
//! | dist/debian/{postinst,...}   | maintainer scripts: daemon-reload, no start   |
//!
//! Depends come from dpkg-shlibdeps (libc6, libgcc-s1): the agent speaks
//! netlink itself and runs no `ip`, so iproute2 is not one; resource scripts
//! that need it (Heartbeat's IPaddr does) bring their own.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// Debian packages `dist` itself uses: dpkg-shlibdeps (dpkg-dev), lintian,
/// strip (binutils).
pub const PACKAGES: &[&str] = &["dpkg-dev", "lintian", "binutils"];

/// And `dist --prove`: a Debian root from Debian's packages (mmdebstrap),
/// a container booting it (systemd-container), ping across a restart.
pub const PROOF_PACKAGES: &[&str] = &["mmdebstrap", "systemd-container", "iputils-ping"];

pub const BIN: &str = "/usr/sbin/hb-agent";
const UNIT: &str = "lib/systemd/system/hb-agent.service";
const EXAMPLE: &str = "etc/hb/hb.toml.example";
const DOC: &str = "usr/share/doc/hb-agent";

/// Builds `target/dist/hb-agent_VERSION_ARCH.deb` from the release binary
/// (built by the caller) and returns its path.
pub fn build(ws: &Path) -> Result<PathBuf> {
    let version = env!("CARGO_PKG_VERSION");
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let changelog = fs::read_to_string(ws.join("dist/debian/changelog"))?;
    let first = changelog.lines().next().unwrap_or_default();
    if !first.starts_with(&format!("hb-agent ({version}) ")) {
        bail!(
            "dist/debian/changelog starts with {first:?}, not hb-agent ({version}): \
             add an entry for this version"
        );
    }
    let out = ws.join("target/dist");
    let root = out.join("pkg");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::create_dir_all(&root)?;
    let agent = ws.join("target/release/hb-agent");

    // The binary, stripped (the eBPF object is data in it and stays).
    let bin = stage(&root, BIN.trim_start_matches('/'))?;
    crate::exec(
        Command::new("strip")
            .args(["--strip-unneeded", "--remove-section=.comment", "-o"])
            .arg(&bin)
            .arg(&agent),
    )?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;

    let unit =
        crate::install::unit_for(&fs::read_to_string(ws.join("dist/hb-agent.service"))?, BIN)?;
    put(&root, UNIT, unit.as_bytes(), 0o644)?;
    // It holds a placeholder cluster key: not world-readable, as installed.
    put(
        &root,
        EXAMPLE,
        &fs::read(ws.join("hb-agent/fixtures/example.toml"))?,
        0o600,
    )?;

    let man = out.join("man");
    if man.exists() {
        fs::remove_dir_all(&man)?;
    }
    crate::exec(Command::new(&agent).arg("manpages").arg(&man))?;
    let mut pages = files(&man)?;
    pages.sort();
    for page in &pages {
        let name = page.file_name().unwrap().to_string_lossy();
        put(
            &root,
            &format!("usr/share/man/man8/{name}.gz"),
            &gzip(&fs::read(page)?)?,
            0o644,
        )?;
    }
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/hb-agent"),
        ("zsh", "usr/share/zsh/vendor-completions/_hb-agent"),
        ("fish", "usr/share/fish/vendor_completions.d/hb-agent.fish"),
    ] {
        let script = output(Command::new(&agent).args(["completions", shell]))?;
        put(&root, path, format!("{script}\n").as_bytes(), 0o644)?;
    }

    put(
        &root,
        &format!("{DOC}/README.md.gz"),
        &gzip(&fs::read(ws.join("README.md"))?)?,
        0o644,
    )?;
    put(
        &root,
        &format!("{DOC}/changelog.gz"),
        &gzip(changelog.as_bytes())?,
        0o644,
    )?;
    put(
        &root,
        &format!("{DOC}/copyright"),
        &fs::read(ws.join("dist/debian/copyright"))?,
        0o644,
    )?;
    put(
        &root,
        "usr/share/lintian/overrides/hb-agent",
        &fs::read(ws.join("dist/debian/lintian-overrides"))?,
        0o644,
    )?;

    // DEBIAN/: control, conffiles, maintainer scripts, md5sums.
    for script in ["postinst", "prerm", "postrm"] {
        put(
            &root,
            &format!("DEBIAN/{script}"),
            &fs::read(ws.join("dist/debian").join(script))?,
            0o755,
        )?;
    }
    put(
        &root,
        "DEBIAN/conffiles",
        format!("/{EXAMPLE}\n").as_bytes(),
        0o644,
    )?;
    let depends = shlib_depends(&out, &bin)?;
    let size_kib = du_kib(&root, &root.join("DEBIAN"))?;
    let control = format!(
        "Package: hb-agent\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: hb developers <hb@example.org>\n\
         Installed-Size: {size_kib}\n\
         Depends: {depends}\n\
         Suggests: iproute2\n\
         Section: admin\n\
         Priority: optional\n\
         Description: XDP-accelerated failover agent (a Heartbeat replacement)\n \
         hb does the job Linux-HA Heartbeat did: nodes heartbeat each other over\n \
         UDP port 694, and when a primary dies or loses its network a standby\n \
         takes over its service identity (IP address, MAC address, hostname,\n \
         resource scripts) and announces it with gratuitous ARP.\n \
         .\n \
         Heartbeats are received, authenticated and timed by an XDP program in\n \
         the kernel, which detects a missing peer with a BPF timer: failover in\n \
         milliseconds. It reads Heartbeat's ha.cf, haresources and authkeys\n \
         unchanged, or a native TOML file.\n"
    );
    put(&root, "DEBIAN/control", control.as_bytes(), 0o644)?;
    put(&root, "DEBIAN/md5sums", md5sums(&root)?.as_bytes(), 0o644)?;

    let deb = out.join(format!("hb-agent_{version}_{arch}.deb"));
    crate::exec(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb)
            .stdout(Stdio::null()),
    )?;
    Ok(deb)
}

/// lintian's verdict: every tag it prints is a failure (the overrides file
/// in the package explains the ones that stay).
pub fn lintian(deb: &Path) -> Result<()> {
    let o = Command::new("lintian")
        .args([
            "--fail-on",
            "error,warning,info,pedantic",
            "--info",
            "--pedantic",
        ])
        .arg(deb)
        .output()
        .context("running lintian")?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() || !text.trim().is_empty() {
        bail!(
            "lintian {}:\n{text}{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    eprintln!("dist: lintian: no tags (overrides: dist/debian/lintian-overrides)");
    Ok(())
}

/// `root/rel`, its directories made.
fn stage(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = root.join(rel);
    let dir = p.parent().context("a staged file has a directory")?;
    fs::create_dir_all(dir)?;
    // 755 whatever the umask: dpkg-deb packs the modes as they are.
    let mut d = dir;
    while d != root {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        d = d.parent().context("under the staging root")?;
    }
    Ok(p)
}

fn put(root: &Path, rel: &str, data: &[u8], mode: u32) -> Result<()> {
    let p = stage(root, rel)?;
    fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// gzip -9n: no name, no time stamp, so builds are reproducible.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running gzip")?;
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer"))??;
    if !o.status.success() {
        bail!("gzip failed: {}", o.status);
    }
    Ok(o.stdout)
}

/// `shlibs:Depends` for `bin`, from dpkg-shlibdeps (which wants a
/// debian/control beside it).
fn shlib_depends(work: &Path, bin: &Path) -> Result<String> {
    let dir = work.join("shlibdeps");
    fs::create_dir_all(dir.join("debian"))?;
    fs::write(
        dir.join("debian/control"),
        "Source: hb\n\nPackage: hb-agent\nArchitecture: any\n",
    )?;
    let o = output(
        Command::new("dpkg-shlibdeps")
            .arg("-O")
            .arg(format!("-e{}", bin.display()))
            .current_dir(&dir),
    )?;
    o.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_string)
        .with_context(|| format!("dpkg-shlibdeps said {o:?}"))
}

/// Installed-Size: the staged files' sizes in KiB, DEBIAN/ left out.
fn du_kib(root: &Path, skip: &Path) -> Result<u64> {
    let mut total = 0;
    for f in files(root)? {
        if !f.starts_with(skip) {
            total += fs::metadata(&f)?.len().div_ceil(1024);
        }
    }
    Ok(total)
}

fn md5sums(root: &Path) -> Result<String> {
    let mut rel: Vec<PathBuf> = files(root)?
        .into_iter()
        .filter(|f| !f.starts_with(root.join("DEBIAN")))
        .map(|f| f.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    rel.sort();
    Ok(output(Command::new("md5sum").args(&rel).current_dir(root))? + "\n")
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(files(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// stdout of `cmd` (setup's runner), without its final newline.
fn output(cmd: &mut Command) -> Result<String> {
    Ok(crate::setup::output(cmd)?.trim_end().to_string())
}
