//! `package-proof DEB` (run by `cargo xtask dist --prove`): the package on a
//! clean Debian 12 with no Rust, then under a real systemd.
//!
//! 1. mmdebstrap a minimal bookworm root (Debian's packages only); install
//!    the `.deb` there with apt; in it, `hb-agent --version`, `hb-agent
//!    check` on the shipped example, `man hb-agent`, and no cargo or rustc.
//! 2. Boot that root with systemd-nspawn as node a of a two-node cluster, in
//!    a network namespace of this run's own; node b is an agent in a second
//!    namespace on the host (container + namespace). Then, against the
//!    unit as packaged: `systemctl start` reaches READY (Type=notify) and a
//!    holds the group; the watchdog is fed; the agent runs with exactly the
//!    unit's capability bounding set, XDP attached and its sender
//!    SCHED_FIFO; `systemctl reload` applies a new configuration and keeps
//!    the old one when the new one is broken; a `kill -9` is restarted by
//!    systemd, which adopts the group while b never takes it and the VIP
//!    keeps answering; `systemctl stop` hands the group to b before the unit
//!    is stopped.
//!
//! Prints one line per check and a table; exits non-zero if any failed.
//! Every namespace, container and file it made is removed at the end, also
//! after a failure or Ctrl-C (at the next wait).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hb_agent::control::StatusReport;
use hb_tests::container::{self, Container};
use hb_tests::twohost::{self, TwoHosts};

const UNIT: &str = "hb-agent.service";
const VIP: &str = "10.160.100.100";
/// The unit's CapabilityBoundingSet, by number (linux/capability.h).
const CAPS: &[(&str, u32)] = &[
    ("CAP_KILL", 5),
    ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_NICE", 23),
    ("CAP_PERFMON", 38),
    ("CAP_BPF", 39),
];

struct Checks {
    rows: Vec<(String, bool, String)>,
}

impl Checks {
    fn check(&mut self, what: &str, r: Result<String>) -> bool {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(e) => (false, format!("{e:#}")),
        };
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
        self.rows.push((what.to_string(), ok, detail));
        ok
    }
}

fn main() -> Result<()> {
    let deb = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: package-proof PATH/hb-agent_VERSION_ARCH.deb")?,
    );
    hb_testkit::require_root("the package proof");
    // Ctrl-C or SIGTERM: the next wait fails, and the namespaces, the
    // container and the root are removed on the way out.
    hb_tests::lab::catch_signals();
    let work = std::env::temp_dir().join(hb_tests::netns::unique("pkg"));
    std::fs::create_dir_all(&work)?;
    let mut c = Checks { rows: Vec::new() };
    let r = prove(&deb, &work, &mut c);
    let _ = std::fs::remove_dir_all(&work);
    if let Err(e) = &r {
        c.check("the proof ran to its end", Err(anyhow::anyhow!("{e:#}")));
    }
    println!("\n| check | result | detail |\n|---|---|---|");
    for (what, ok, detail) in &c.rows {
        let detail = detail.replace('|', "\\|").replace('\n', " ");
        println!(
            "| {what} | {} | {detail} |",
            if *ok { "ok" } else { "FAIL" }
        );
    }
    let failed = c.rows.iter().filter(|r| !r.1).count();
    println!("\n{} passed, {failed} failed", c.rows.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn prove(deb: &Path, work: &Path, c: &mut Checks) -> Result<()> {
    let root = work.join("root");
    let took = container::debootstrap(&root)?;
    c.check(
        "a clean Debian 12 root from Debian's packages",
        Ok(format!(
            "mmdebstrap minbase + {} in {:.0} s",
            container::INCLUDE,
            took.as_secs_f64()
        )),
    );
    installed(deb, &root, c)?;
    booted(&root, work, c)
}

/// Step 1: apt installs the package; the commands work; no toolchain.
fn installed(deb: &Path, root: &Path, c: &mut Checks) -> Result<()> {
    let in_root = "/tmp/hb-agent.deb";
    std::fs::copy(deb, root.join(in_root.trim_start_matches('/')))?;
    let o = container::chroot(root, &["apt-get", "install", "-y", "-q", in_root])?;
    c.check(
        "apt-get install ./hb-agent.deb",
        ok_or(&o).map(|_| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.lines()
                .find(|l| l.contains("newly installed"))
                .unwrap_or("installed")
                .trim()
                .to_string()
        }),
    );
    let o = container::chroot(
        root,
        &[
            "sh",
            "-c",
            "command -v cargo rustc rustup; ls -d /root/.cargo /root/.rustup 2>/dev/null; true",
        ],
    )?;
    let found = String::from_utf8_lossy(&o.stdout).trim().to_string();
    c.check(
        "no Rust in that root",
        if found.is_empty() {
            Ok("no cargo, rustc, rustup, ~/.cargo".into())
        } else {
            Err(anyhow::anyhow!("found {found}"))
        },
    );
    let o = container::chroot(root, &["hb-agent", "--version"])?;
    let version = format!("hb-agent {}", env!("CARGO_PKG_VERSION"));
    c.check(
        "hb-agent --version",
        ok_or(&o).and_then(|s| match s.trim() == version {
            true => Ok(s.trim().to_string()),
            false => bail!("said {s:?}, not {version:?}"),
        }),
    );
    let o = container::chroot(
        root,
        &[
            "hb-agent",
            "check",
            "--config",
            "/etc/hb/hb.toml.example",
            "--node",
            "node0",
        ],
    )?;
    c.check(
        "hb-agent check on the shipped example",
        ok_or(&o).map(|s| s.lines().last().unwrap_or_default().to_string()),
    );
    let o = container::chroot(root, &["man", "-P", "cat", "hb-agent"])?;
    c.check(
        "man hb-agent",
        ok_or(&o).and_then(|s| match s.contains("XDP-accelerated failover agent") {
            true => Ok(format!("{} lines", s.lines().count())),
            false => bail!("page without its description:\n{s}"),
        }),
    );
    let o = container::chroot(root, &["man", "-P", "cat", "hb-agent-check"])?;
    c.check(
        "man hb-agent-check",
        ok_or(&o).map(|s| format!("{} lines", s.lines().count())),
    );
    let o = container::chroot(root, &["systemctl", "is-enabled", UNIT])?;
    let said = String::from_utf8_lossy(&o.stdout).trim().to_string();
    c.check(
        "installing enabled nothing",
        match said.as_str() {
            "disabled" => Ok("hb-agent.service disabled".into()),
            s => Err(anyhow::anyhow!("is-enabled says {s:?}")),
        },
    );
    Ok(())
}

fn ok_or(o: &std::process::Output) -> Result<String> {
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        bail!(
            "{}: {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}

/// The cluster: node a in the container, b on the host, one group.
fn config(warntime: &str) -> String {
    let mut s = twohost::config(
        "pkg",
        "package proof secret",
        "100ms",
        // Longer than systemd's RestartSec=2s plus a start: a killed agent
        // is back before its peer may declare it dead.
        "5s",
        "",
    );
    // As a production node runs: the sender SCHED_FIFO (Heartbeat's
    // `realtime on`); CAP_SYS_NICE in the bounding set is for that.
    s = s.replace("realtime = false", "realtime = true");
    s = s.replace(
        "deadtime = \"5s\"\n",
        &format!("deadtime = \"5s\"\nwarntime = \"{warntime}\"\ninitdead = \"5s\"\n"),
    );
    s.push_str(&format!(
        "[[group]]\nname = \"vip\"\nnodes = [\"a\", \"b\"]\n\
         [[group.resource]]\ntype = \"ip\"\naddress = \"{VIP}/24\"\niface = \"eth2\"\n"
    ));
    s
}

/// Writes a's configuration into the container's /etc/hb/hb.toml.
fn write_a_config(root: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let p = root.join("etc/hb/hb.toml");
    std::fs::write(&p, text)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn a_status(ct: &Container) -> Result<StatusReport> {
    let s = ct.run(&["hb-agent", "status", "--json"])?;
    serde_json::from_str(&s).context("hb-agent status --json")
}

fn owner(s: &StatusReport) -> Option<String> {
    s.groups.iter().find(|g| g.name == "vip")?.owner.clone()
}

fn holds_vip(ns: &hb_tests::netns::Netns) -> bool {
    ns.ip("-4 addr show dev eth2")
        .contains(&format!("{VIP}/24"))
}

/// Polls `cond` every 20 ms for up to `within`.
fn wait(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > within {
            bail!("{what}: not within {within:?}");
        }
        if hb_tests::lab::ABORT.load(std::sync::atomic::Ordering::Relaxed) {
            bail!("{what}: interrupted");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(t0.elapsed())
}

/// Step 2: the unit under the container's systemd.
fn booted(root: &Path, work: &Path, c: &mut Checks) -> Result<()> {
    std::fs::write(root.join("etc/hostname"), "a\n")?;
    write_a_config(root, &config("2s"))?;
    let hosts = TwoHosts::new("pkg", &config("2s"))?;
    let t0 = Instant::now();
    let mut ct = Container::boot(root, "hbproof", &hosts.a, &work.join("console.log"))?;
    c.check(
        "boots under systemd-nspawn --boot",
        Ok(format!(
            "systemd {} up in {:.1} s, in namespace {}",
            ct.run(&["systemctl", "--version"])?
                .split_whitespace()
                .nth(1)
                .unwrap_or("?"),
            t0.elapsed().as_secs_f64(),
            hosts.a.name
        )),
    );

    // Start: blocks until READY=1.
    let t0 = Instant::now();
    let o = ct.exec(&["systemctl", "start", UNIT])?;
    let started = ok_or(&o).and_then(|_| {
        let st = ct.unit_property(UNIT, "ActiveState")?;
        let sub = ct.unit_property(UNIT, "SubState")?;
        match (st.as_str(), sub.as_str()) {
            ("active", "running") => Ok(format!(
                "active/running after {:.2} s (Type={})",
                t0.elapsed().as_secs_f64(),
                ct.unit_property(UNIT, "Type")?
            )),
            _ => bail!("{st}/{sub}"),
        }
    });
    if !c.check("systemctl start reaches READY", started) {
        let log = ct.exec(&["journalctl", "-u", UNIT, "-o", "cat", "--no-pager"])?;
        bail!(
            "the unit did not start:\n{}",
            String::from_utf8_lossy(&log.stdout)
        );
    }
    let b = hosts.start_b(&[])?;
    let held = wait("a holds vip, b sees it", Duration::from_secs(15), || {
        holds_vip(&hosts.a)
            && a_status(&ct).is_ok_and(|s| owner(&s).as_deref() == Some("a"))
            && hosts_b_owner(&hosts).as_deref() == Some("a")
    });
    c.check(
        "node a (the unit) holds the group, b agrees",
        held.map(|d| {
            format!(
                "{VIP} on a's eth2, {:.1} s after b started",
                d.as_secs_f64()
            )
        }),
    );

    c.check("the watchdog is fed", watchdog(&ct));
    c.check("capabilities: the bounding set, no more", capabilities(&ct));
    c.check("the agent works within them", working(&ct));
    c.check(
        "systemctl reload applies a new configuration",
        reload(&ct, root),
    );
    c.check(
        "kill -9: restarted by systemd, group adopted",
        kill9(&ct, &hosts),
    );
    c.check(
        "systemctl stop hands over before stopping",
        stop(&ct, &hosts),
    );
    c.check(
        "apt-get remove stops it, handing over; purge",
        remove(&ct, &hosts),
    );

    drop(b);
    let t0 = Instant::now();
    ct.power_off(Duration::from_secs(60))?;
    c.check(
        "the container powers off",
        Ok(format!("in {:.1} s", t0.elapsed().as_secs_f64())),
    );
    Ok(())
}

fn hosts_b_owner(hosts: &TwoHosts) -> Option<String> {
    let r = hb_agent::control::client::call(&hosts.socket(), &hb_agent::control::Request::Status)
        .ok()?;
    owner(&r.status?)
}

/// systemd's last watchdog ping moves on: the agent sends WATCHDOG=1.
fn watchdog(ct: &Container) -> Result<String> {
    let usec = ct.unit_property(UNIT, "WatchdogUSec")?;
    let stamp = || ct.unit_property(UNIT, "WatchdogTimestampMonotonic");
    let first = stamp()?;
    let d = wait("a second watchdog ping", Duration::from_secs(8), || {
        stamp().is_ok_and(|s| s != first && s != "0")
    })?;
    Ok(format!(
        "WatchdogUSec={usec}, timestamp moved within {:.1} s",
        d.as_secs_f64()
    ))
}

fn main_pid(ct: &Container) -> Result<u32> {
    let p: u32 = ct.unit_property(UNIT, "MainPID")?.parse()?;
    if p == 0 {
        bail!("no MainPID");
    }
    Ok(p)
}

/// CapBnd and CapEff of the running agent are exactly the unit's set.
fn capabilities(ct: &Container) -> Result<String> {
    let pid = main_pid(ct)?;
    let status = ct.run(&["cat", &format!("/proc/{pid}/status")])?;
    let want: u64 = CAPS.iter().map(|(_, n)| 1u64 << n).sum();
    let field = |name: &str| -> Result<u64> {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(u64::from_str_radix(v.trim(), 16)?)
    };
    for f in ["CapBnd:", "CapEff:"] {
        let got = field(f)?;
        if got != want {
            bail!(
                "{f} {got:#x}, the unit says {want:#x} (extra {:#x}, missing {:#x})",
                got & !want,
                want & !got
            );
        }
    }
    let names: Vec<&str> = CAPS.iter().map(|(n, _)| *n).collect();
    Ok(format!("CapBnd = CapEff = {want:#x}: {}", names.join(" ")))
}

/// XDP attached, heartbeats authenticated, the sender SCHED_FIFO.
fn working(ct: &Container) -> Result<String> {
    let s = a_status(ct)?;
    if s.attachments.is_empty() || !s.authenticated {
        bail!(
            "attachments {:?}, authenticated {}",
            s.attachments,
            s.authenticated
        );
    }
    let pid = main_pid(ct)?;
    let policies = ct.run(&[
        "sh",
        "-c",
        &format!(
            "for t in /proc/{pid}/task/*; do echo $(cat $t/comm) $(cut -d' ' -f41 $t/stat); done"
        ),
    ])?;
    // Field 41 of stat is the policy: 1 = SCHED_FIFO.
    let fifo: Vec<&str> = policies
        .lines()
        .filter(|l| l.ends_with(" 1"))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    if fifo.is_empty() {
        bail!("no SCHED_FIFO thread (realtime = true):\n{policies}");
    }
    Ok(format!(
        "XDP on {}, SCHED_FIFO thread {}",
        s.attachments.join(", "),
        fifo.join(", ")
    ))
}

fn journal(ct: &Container) -> Result<String> {
    ct.run(&["journalctl", "-u", UNIT, "-o", "cat", "--no-pager"])
}

/// A new warntime shows in the agent's log as applied; a broken file is
/// refused and the agent runs on.
fn reload(ct: &Container, root: &Path) -> Result<String> {
    let pid = main_pid(ct)?;
    let before = journal(ct)?.lines().count();
    write_a_config(root, &config("3s"))?;
    ct.run(&["systemctl", "reload", UNIT])?;
    let applied = wait("the reload logged", Duration::from_secs(10), || {
        journal(ct).is_ok_and(|j| {
            j.lines()
                .skip(before)
                .any(|l| l.contains("configuration reloaded") && l.contains("warntime=3s"))
        })
    });
    let new_lines = |j: String| j.lines().skip(before).collect::<Vec<_>>().join("\n");
    if applied.is_err() {
        bail!("no reload in the log:\n{}", new_lines(journal(ct)?));
    }
    let before = journal(ct)?.lines().count();
    write_a_config(root, "cluster = \"pkg\"\nthis is not toml\n")?;
    ct.run(&["systemctl", "reload", UNIT])?;
    wait("the refusal logged", Duration::from_secs(10), || {
        journal(ct).is_ok_and(|j| j.lines().skip(before).any(|l| l.contains("reload failed")))
    })?;
    write_a_config(root, &config("3s"))?;
    let still = main_pid(ct)?;
    if still != pid || ct.unit_property(UNIT, "ActiveState")? != "active" {
        bail!("the agent did not run on: pid {pid} -> {still}");
    }
    Ok(format!(
        "warntime 2s -> 3s applied; a broken file refused, same pid {pid} runs on"
    ))
}

/// kill -9 of the agent: systemd restarts it (Restart=on-failure), the new
/// agent adopts the group; meanwhile the VIP stays on a, answers pings
/// from b, and b never takes the group.
fn kill9(ct: &Container, hosts: &TwoHosts) -> Result<String> {
    let pid = main_pid(ct)?;
    let restarts: u32 = ct.unit_property(UNIT, "NRestarts")?.parse()?;
    // Pings from b every 20 ms across the restart.
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &hosts.b.name,
            "ping",
            "-n",
            "-q",
            "-i",
            "0.02",
        ])
        .args(["-w", "8", VIP])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    ct.run(&["kill", "-9", &pid.to_string()])?;
    let mut vip_gone = 0;
    let mut b_took = false;
    let back = wait("a new agent, active", Duration::from_secs(15), || {
        vip_gone += usize::from(!holds_vip(&hosts.a));
        b_took |= hosts_b_owner(hosts).as_deref() == Some("b") || holds_vip(&hosts.b);
        main_pid(ct).is_ok_and(|p| p != pid)
            && ct
                .unit_property(UNIT, "ActiveState")
                .is_ok_and(|s| s == "active")
            && a_status(ct).is_ok_and(|s| {
                s.groups
                    .iter()
                    .any(|g| g.name == "vip" && g.local == "held")
            })
    })?;
    let out = ping.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stats = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("no ping statistics")
        .to_string();
    let n = |word: &str| -> u64 {
        stats
            .split(',')
            .find(|p| p.contains(word))
            .and_then(|p| p.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let (sent, got) = (n("transmitted"), n("received"));
    let now: u32 = ct.unit_property(UNIT, "NRestarts")?.parse()?;
    let adopted = journal(ct)?.contains("adopting the group");
    if now != restarts + 1 || !adopted || vip_gone > 0 || b_took || sent == 0 || got + 2 < sent {
        bail!(
            "restarts {restarts} -> {now}, adopted {adopted}, VIP missing on a in {vip_gone} polls, \
             b took it: {b_took}, ping: {stats}"
        );
    }
    Ok(format!(
        "restart {restarts} -> {now}, held again {:.1} s after the kill; VIP never left a, \
         b never took it; pings from b: {got} of {sent} answered",
        back.as_secs_f64()
    ))
}

/// `systemctl stop` returns only once the agent exited, and it exits only
/// after handing over: at that moment b already holds the group.
fn stop(ct: &Container, hosts: &TwoHosts) -> Result<String> {
    let t0 = Instant::now();
    ct.run(&["systemctl", "stop", UNIT])?;
    let took = t0.elapsed();
    let b_owner = hosts_b_owner(hosts);
    let b_has = holds_vip(&hosts.b);
    let a_has = holds_vip(&hosts.a);
    let state = ct.unit_property(UNIT, "ActiveState")?;
    if b_owner.as_deref() != Some("b") || !b_has || a_has || state != "inactive" {
        bail!(
            "after stop: b's status says owner {b_owner:?}, VIP on b {b_has}, on a {a_has}, unit {state}"
        );
    }
    Ok(format!(
        "stop took {:.2} s; when it returned b held {VIP} and a did not",
        took.as_secs_f64()
    ))
}

/// Started again (and given the group back: auto_failback), the package
/// removed while it runs: prerm stops the unit, which hands over first;
/// purge takes the conffile too.
fn remove(ct: &Container, hosts: &TwoHosts) -> Result<String> {
    let exists = |test: &str, path: &str| -> Result<bool> {
        Ok(ct.exec(&["test", test, path])?.status.success())
    };
    ct.run(&["systemctl", "start", UNIT])?;
    wait("a holds vip again", Duration::from_secs(15), || {
        holds_vip(&hosts.a) && hosts_b_owner(hosts).as_deref() == Some("a")
    })?;
    // An operator's enablement, which purge must take away too.
    ct.run(&["systemctl", "enable", UNIT])?;
    let wants = "/etc/systemd/system/multi-user.target.wants/hb-agent.service";
    let t0 = Instant::now();
    ct.run(&["apt-get", "remove", "-y", "-q", "hb-agent"])?;
    let took = t0.elapsed();
    let (b_has, a_has) = (holds_vip(&hosts.b), holds_vip(&hosts.a));
    let state = ct.unit_property(UNIT, "ActiveState")?;
    let bin = exists("-e", "/usr/sbin/hb-agent")?;
    if !b_has || a_has || state == "active" || bin {
        bail!("after remove: VIP on b {b_has}, on a {a_has}, unit {state}, binary left {bin}");
    }
    let kept = exists("-e", "/etc/hb/hb.toml.example")?;
    ct.run(&["apt-get", "purge", "-y", "-q", "hb-agent"])?;
    let purged = !exists("-e", "/etc/hb/hb.toml.example")?;
    let unlinked = !exists("-L", wants)?;
    if !kept || !purged || !unlinked {
        bail!(
            "conffile kept by remove: {kept}, gone after purge: {purged}; \
             the operator's enablement gone after purge: {unlinked}"
        );
    }
    Ok(format!(
        "remove took {:.2} s; then b held {VIP}, a did not, the unit {state}; \
         the conffile stayed until purge, which also took the enablement away",
        took.as_secs_f64()
    ))
}
