//! `cargo xtask install [--root DESTDIR] [--prefix /usr/local]`: put the
//! built agent, its systemd unit and the example configuration in place.
//!
//! | what                   | where                                   | mode |
//! |------------------------|-----------------------------------------|------|
//! | target/release/hb-agent| PREFIX/bin/hb-agent                     | 755  |
//! | dist/hb-agent.service  | /etc/systemd/system/hb-agent.service    | 644  |
//! | fixtures/example.toml  | /etc/hb/hb.toml.example                 | 600  |
//!
//! Everything lands under DESTDIR when one is given (for packaging). The
//! unit's `ExecStart=` is rewritten for PREFIX. `/etc/hb/hb.toml` itself is
//! never written: it is the operator's. Idempotent: files already identical
//! are left alone, and each file is replaced by a rename, so installing over
//! a running agent's binary works (no "text file busy") and a reader never
//! sees half a file.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// Where the unit in dist/ expects the binary; rewritten for other prefixes.
const UNIT_DEFAULT_BIN: &str = "/usr/local/bin/hb-agent";
const UNIT_PATH: &str = "/etc/systemd/system/hb-agent.service";
const EXAMPLE_PATH: &str = "/etc/hb/hb.toml.example";
const CONFIG_PATH: &str = "/etc/hb/hb.toml";

/// What to install, from the workspace.
struct Sources {
    binary: PathBuf,
    unit: PathBuf,
    example: PathBuf,
}

impl Sources {
    fn in_workspace(root: &Path) -> Sources {
        Sources {
            binary: root.join("target/release/hb-agent"),
            unit: root.join("dist/hb-agent.service"),
            example: root.join("hb-agent/fixtures/example.toml"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The file did not exist.
    Installed,
    /// The file existed with other contents or mode.
    Updated,
    /// Already identical.
    Unchanged,
    /// Exists and is deliberately not touched.
    Kept,
    /// Does not exist and is deliberately not created.
    Absent,
}

#[derive(Debug)]
struct Step {
    /// The path on the target system (without DESTDIR).
    path: PathBuf,
    mode: Option<u32>,
    outcome: Outcome,
}

/// Installs from this workspace; the caller has run setup and built
/// `target/release/hb-agent`.
pub fn run(prefix: &Path, dest_root: Option<&Path>) -> Result<()> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent dir")?;
    let src = Sources::in_workspace(ws);
    if !src.binary.is_file() {
        bail!(
            "{} not found: run `cargo xtask build` first",
            src.binary.display()
        );
    }
    let steps = install(&src, prefix, dest_root)?;
    report(&steps, dest_root);
    Ok(())
}

fn install(src: &Sources, prefix: &Path, dest_root: Option<&Path>) -> Result<Vec<Step>> {
    if !prefix.is_absolute() {
        bail!(
            "--prefix must be an absolute path (it is where systemd runs the agent from), not {}",
            prefix.display()
        );
    }
    let bin_path = prefix.join("bin/hb-agent");
    let bin_str = bin_path
        .to_str()
        .context("--prefix must be valid UTF-8 (it goes into the unit file)")?;
    if bin_str.contains(char::is_whitespace) {
        bail!("--prefix must not contain whitespace (it goes into ExecStart=)");
    }

    let binary =
        fs::read(&src.binary).with_context(|| format!("reading {}", src.binary.display()))?;
    let unit =
        fs::read_to_string(&src.unit).with_context(|| format!("reading {}", src.unit.display()))?;
    let unit = unit_for(&unit, bin_str).with_context(|| src.unit.display().to_string())?;
    let example =
        fs::read(&src.example).with_context(|| format!("reading {}", src.example.display()))?;

    let mut steps = Vec::new();
    let mut put = |path: &Path, data: &[u8], mode: u32| -> Result<()> {
        let outcome = put_file(&under(dest_root, path), data, mode)?;
        steps.push(Step {
            path: path.to_path_buf(),
            mode: Some(mode),
            outcome,
        });
        Ok(())
    };
    put(&bin_path, &binary, 0o755)?;
    put(Path::new(UNIT_PATH), unit.as_bytes(), 0o644)?;
    // The example holds a (placeholder) cluster key, and a copy of it made
    // with `cp -p` must not end up world-readable either.
    put(Path::new(EXAMPLE_PATH), &example, 0o600)?;

    let config = under(dest_root, Path::new(CONFIG_PATH));
    steps.push(Step {
        path: CONFIG_PATH.into(),
        mode: None,
        outcome: if config.exists() {
            Outcome::Kept
        } else {
            Outcome::Absent
        },
    });
    Ok(steps)
}

/// dist/hb-agent.service as installed: run from `bin`.
pub fn unit_for(unit: &str, bin: &str) -> Result<String> {
    if !unit.contains(UNIT_DEFAULT_BIN) {
        bail!("the unit no longer mentions {UNIT_DEFAULT_BIN}: cannot point it at {bin}");
    }
    Ok(unit.replace(UNIT_DEFAULT_BIN, bin))
}

/// `path` (absolute, on the target system) under DESTDIR.
fn under(dest_root: Option<&Path>, path: &Path) -> PathBuf {
    match dest_root {
        Some(r) => r.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// Makes `dest` hold `data` with `mode`, replacing it by a rename.
fn put_file(dest: &Path, data: &[u8], mode: u32) -> Result<Outcome> {
    let old_mode = fs::metadata(dest)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777);
    if let Some(old_mode) = old_mode
        && fs::read(dest).is_ok_and(|old| old == data)
    {
        if old_mode == mode {
            return Ok(Outcome::Unchanged);
        }
        fs::set_permissions(dest, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {mode:o} {}", dest.display()))?;
        return Ok(Outcome::Updated);
    }

    let dir = dest.parent().context("destination has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = dest.file_name().context("destination has no file name")?;
    let tmp = dir.join(format!(".{}.xtask-new", name.to_string_lossy()));
    let _ = fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        // Created with the final mode (at most: umask may narrow it), so a
        // secret is never readable by others, even for a moment.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("installing {}", dest.display()));
    }
    Ok(if old_mode.is_some() {
        Outcome::Updated
    } else {
        Outcome::Installed
    })
}

fn report(steps: &[Step], dest_root: Option<&Path>) {
    if let Some(r) = dest_root {
        println!(
            "installed under {} (paths below are relative to it):",
            r.display()
        );
    }
    for s in steps {
        let mode = s.mode.map(|m| format!(" ({m:o})")).unwrap_or_default();
        let what = match s.outcome {
            Outcome::Installed => "installed",
            Outcome::Updated => "updated  ",
            Outcome::Unchanged => "unchanged",
            Outcome::Kept => "kept     ",
            Outcome::Absent => "absent   ",
        };
        println!("  {what} {}{mode}", s.path.display());
    }
    let have_config = steps
        .iter()
        .any(|s| s.path == Path::new(CONFIG_PATH) && s.outcome == Outcome::Kept);
    let bin_changed = steps
        .first()
        .is_some_and(|s| matches!(s.outcome, Outcome::Updated));
    println!("\nnext steps:");
    if have_config {
        println!(
            "  - {CONFIG_PATH} is kept as it was; compare it with {EXAMPLE_PATH} for new settings"
        );
    } else {
        println!("  - create the configuration from the example, then edit nodes, links, groups");
        println!("    and [auth] (a new secret, the same on every node):");
        println!("      install -m 600 {EXAMPLE_PATH} {CONFIG_PATH}");
        println!("    (or point ExecStart= at --ha-dir /etc/ha.d with `systemctl edit hb-agent`)");
    }
    println!("  - hb-agent check --config {CONFIG_PATH}");
    println!("  - systemctl daemon-reload");
    println!("  - systemctl enable --now hb-agent");
    if bin_changed {
        println!("  - if it was already running: systemctl restart hb-agent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop (xtask
    /// has no tempfile dependency).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let p = std::env::temp_dir()
                .join(format!("hb-xtask-install-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The real unit and example, with a fake binary.
    fn sources(t: &TempDir) -> Sources {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let binary = t.0.join("hb-agent-fake");
        fs::write(&binary, b"#!/bin/sh\necho fake\n").unwrap();
        Sources {
            binary,
            ..Sources::in_workspace(ws)
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn outcomes(steps: &[Step]) -> Vec<Outcome> {
        steps.iter().map(|s| s.outcome).collect()
    }

    #[test]
    fn installs_files_with_modes_under_destdir() {
        let t = TempDir::new("fresh");
        let src = sources(&t);
        let root = t.0.join("root");
        let steps = install(&src, Path::new("/usr/local"), Some(&root)).unwrap();
        use Outcome::*;
        assert_eq!(outcomes(&steps), [Installed, Installed, Installed, Absent]);

        let bin = root.join("usr/local/bin/hb-agent");
        assert_eq!(fs::read(&bin).unwrap(), fs::read(&src.binary).unwrap());
        assert_eq!(mode(&bin), 0o755);

        let unit = root.join("etc/systemd/system/hb-agent.service");
        assert_eq!(mode(&unit), 0o644);
        let text = fs::read_to_string(&unit).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/hb-agent run --config /etc/hb/hb.toml"));
        assert!(text.contains("Type=notify"));

        let ex = root.join("etc/hb/hb.toml.example");
        assert_eq!(fs::read(&ex).unwrap(), fs::read(&src.example).unwrap());
        assert_eq!(mode(&ex), 0o600);

        assert!(!root.join("etc/hb/hb.toml").exists());
        // No temporary files left behind.
        for d in ["usr/local/bin", "etc/systemd/system", "etc/hb"] {
            let n = fs::read_dir(root.join(d)).unwrap().count();
            assert_eq!(n, 1, "{d}");
        }
    }

    #[test]
    fn is_idempotent_and_repairs_modes() {
        let t = TempDir::new("again");
        let src = sources(&t);
        let root = t.0.join("root");
        let prefix = Path::new("/usr/local");
        install(&src, prefix, Some(&root)).unwrap();
        let steps = install(&src, prefix, Some(&root)).unwrap();
        use Outcome::*;
        assert_eq!(outcomes(&steps), [Unchanged, Unchanged, Unchanged, Absent]);

        // Someone loosened the example's mode and the binary changed.
        let ex = root.join("etc/hb/hb.toml.example");
        fs::set_permissions(&ex, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&src.binary, b"#!/bin/sh\necho newer\n").unwrap();
        let steps = install(&src, prefix, Some(&root)).unwrap();
        assert_eq!(outcomes(&steps), [Updated, Unchanged, Updated, Absent]);
        assert_eq!(mode(&ex), 0o600);
        let bin = root.join("usr/local/bin/hb-agent");
        assert_eq!(fs::read(&bin).unwrap(), b"#!/bin/sh\necho newer\n");
        assert_eq!(mode(&bin), 0o755);
    }

    #[test]
    fn never_touches_an_existing_config() {
        let t = TempDir::new("keep");
        let src = sources(&t);
        let root = t.0.join("root");
        let cfg = root.join("etc/hb/hb.toml");
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, "cluster = \"mine\"\n").unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o640)).unwrap();

        let steps = install(&src, Path::new("/usr/local"), Some(&root)).unwrap();
        assert_eq!(steps[3].outcome, Outcome::Kept);
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "cluster = \"mine\"\n");
        assert_eq!(mode(&cfg), 0o640);
    }

    #[test]
    fn other_prefix_moves_binary_and_exec_start() {
        let t = TempDir::new("prefix");
        let src = sources(&t);
        let root = t.0.join("root");
        install(&src, Path::new("/usr"), Some(&root)).unwrap();
        assert!(root.join("usr/bin/hb-agent").is_file());
        assert!(!root.join("usr/local").exists());
        let text = fs::read_to_string(root.join("etc/systemd/system/hb-agent.service")).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/hb-agent run --config"));
        assert!(text.contains("#ExecStart=/usr/bin/hb-agent run --ha-dir /etc/ha.d"));
        assert!(!text.contains("/usr/local"));
    }

    #[test]
    fn refuses_bad_prefixes() {
        let t = TempDir::new("bad");
        let src = sources(&t);
        let root = t.0.join("root");
        assert!(install(&src, Path::new("usr/local"), Some(&root)).is_err());
        assert!(install(&src, Path::new("/opt/my hb"), Some(&root)).is_err());
        assert!(!root.exists());
    }

    #[test]
    fn under_joins_absolute_paths_below_destdir() {
        let r = Path::new("/tmp/pkg");
        assert_eq!(
            under(Some(r), Path::new("/etc/hb/x")),
            PathBuf::from("/tmp/pkg/etc/hb/x")
        );
        assert_eq!(
            under(None, Path::new("/etc/hb/x")),
            PathBuf::from("/etc/hb/x")
        );
    }
}
