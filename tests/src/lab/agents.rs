//! The lab's agents: one `hb-agent run` per node, each in its node's
//! network namespace and in a UTS namespace of its own (so hostnames can
//! move), configured from a seed-style Heartbeat directory or native TOML.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hb_agent::control::{Request, StatusReport, client};
use hb_testkit::process::Process;

use super::topology::{GATEWAY, NODES, VHOSTS, VIPS, VMACS};

/// Milliseconds (fractions allowed: "0.2ms" is a valid ha.cf duration).
#[derive(Clone, Debug)]
pub struct Timings {
    pub keepalive_ms: f64,
    pub deadtime_ms: f64,
    pub warntime_ms: f64,
    pub initdead_ms: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            keepalive_ms: 10.0,
            deadtime_ms: 60.0,
            warntime_ms: 30.0,
            initdead_ms: 300.0,
        }
    }
}

/// Who knows whom and who may run what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// As the seed: each primary knows itself and the standby, and runs
    /// only its own group; the standby knows all three and runs both.
    Seed,
    /// Every node knows every other, and vip1 has all three as candidates
    /// (node0, node2, node1: the standby's priority order); vip2 as in
    /// the seed. For quorum with three candidates.
    Vip1OnAll,
}

impl Layout {
    /// Which groups node `i`'s haresources lists (or its TOML defines).
    fn groups_of(self, i: usize) -> &'static [usize] {
        match (self, i) {
            (_, 0) => &[0],
            (_, 1) => &[0, 1],
            (Layout::Seed, _) => &[1],
            (Layout::Vip1OnAll, _) => &[0, 1],
        }
    }

    /// ha.cf `node` lines (order = priority; the same order on every node).
    fn nodes_of(self, i: usize) -> &'static [usize] {
        match (self, i) {
            (Layout::Vip1OnAll, _) | (_, 1) => &[0, 2, 1],
            (_, 0) => &[0, 1],
            _ => &[2, 1],
        }
    }

    /// Group `g`'s candidates, most preferred first, as node `i` lists them.
    fn candidates(self, g: usize, i: usize) -> Vec<usize> {
        let all: &[usize] = match (self, g) {
            (Layout::Vip1OnAll, 0) => &[0, 2, 1],
            _ => &[primary_of(g), 1],
        };
        all.iter()
            .copied()
            .filter(|n| self.nodes_of(i).contains(n))
            .collect()
    }
}

fn primary_of(g: usize) -> usize {
    if g == 0 { 0 } else { 2 }
}

/// Group `g`'s name as the agents call it: the VIP its haresources line's
/// first resource carries (ha.d; the short name), or `vip1`/`vip2` (TOML).
pub fn group_name(g: usize, toml: bool) -> String {
    match toml {
        true => format!("vip{}", g + 1),
        false => VIPS[g].to_string(),
    }
}

/// Whether a group named `name` in `status` is the one of VIP `g`, in any
/// layout: TOML names it `vip1`, ha.d after the VIP in its first resource.
pub fn group_is_vip(name: &str, g: usize) -> bool {
    name == format!("vip{}", g + 1) || name == VIPS[g]
}

/// Group `g`'s whole first resource: the checks.toml of the lab names the
/// group by it (either name is accepted), so the lab also runs that path.
fn mac_resource(g: usize) -> String {
    format!("MacTakeover::eth0::{}::macvlan::{}/24", VMACS[g], VIPS[g])
}

/// A seed-style Heartbeat directory for node `i`: the tutorial's ha.cf
/// directives with lab timings (its `deadping 60` kept: a pulled cable
/// must be told by the carrier, not a minute later), heartbeats on both networks (`bcast eth2
/// eth0`: cutting one network alone must not split the cluster), and the
/// native MAC takeover in macvlan mode so the standby can hold both groups.
pub fn write_ha_dir(dir: &Path, i: usize, t: &Timings, layout: Layout) -> Result<()> {
    write_ha_dir_with_checks(dir, i, t, layout, &[])
}

/// `write_ha_dir`, with `checks` (each a check table's keys) on vip1's
/// group in `checks.toml` (none: no such file).
pub fn write_ha_dir_with_checks(
    dir: &Path,
    i: usize,
    t: &Timings,
    layout: Layout,
    checks: &[String],
) -> Result<()> {
    fs::create_dir_all(dir.join("resource.d"))?;
    let file = dir.join("checks.toml");
    let _ = fs::remove_file(&file);
    if !checks.is_empty() && layout.groups_of(i).contains(&0) {
        let mut s = String::from("# hb lab: health checks of vip1's group\n");
        for c in checks {
            s.push_str(&format!("[[check]]\ngroup = \"{}\"\n{c}", mac_resource(0)));
        }
        fs::write(&file, s)?;
    }
    let mut cf = format!(
        "# hb lab: node{i}'s ha.cf from the tutorial, with lab timings\n\
         logfacility     local0\n\
         keepalive {}ms\n\
         deadtime {}ms\n\
         warntime {}ms\n\
         initdead {}ms\n\
         deadping 60\n\
         udpport 694\n\
         bcast eth2 eth0\n\
         auto_failback on\n",
        t.keepalive_ms, t.deadtime_ms, t.warntime_ms, t.initdead_ms
    );
    for n in layout.nodes_of(i) {
        cf.push_str(&format!("node    node{n}\n"));
    }
    cf.push_str(&format!(
        "ping {GATEWAY}\nrespawn root /usr/lib/heartbeat/ipfail\napiauth ipfail gid=root uid=root\n"
    ));
    fs::write(dir.join("ha.cf"), cf)?;
    let mut hr = String::from("# hb lab haresources: one line per group, identical where shared\n");
    for g in layout.groups_of(i) {
        hr.push_str(&format!(
            "node{} {} Hostname::{}\n",
            primary_of(*g),
            mac_resource(*g),
            VHOSTS[*g]
        ));
    }
    fs::write(dir.join("haresources"), hr)?;
    let ak = dir.join("authkeys");
    fs::write(&ak, "auth 1\n1 sha1 hb-lab-shared-secret\n")?;
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// The same cluster in native TOML for node `i`.
pub fn write_toml(path: &Path, i: usize, t: &Timings, layout: Layout) -> Result<()> {
    write_toml_with_checks(path, i, t, layout, &[])
}

/// `write_toml`, with `checks` (each a check table's keys) as vip1's
/// `[[group.check]]` tables.
pub fn write_toml_with_checks(
    path: &Path,
    i: usize,
    t: &Timings,
    layout: Layout,
    checks: &[String],
) -> Result<()> {
    let mut s = format!(
        "cluster = \"heartbeat\"\nauto_failback = true\nping_nodes = [\"{GATEWAY}\"]\n\
         [timing]\nkeepalive = \"{}ms\"\ndeadtime = \"{}ms\"\nwarntime = \"{}ms\"\ninitdead = \"{}ms\"\ndeadping = \"60s\"\n\
         [auth]\nmethod = \"sha1\"\nsecret = \"hb-lab-shared-secret\"\n\
         [[link]]\nname = \"eth2\"\niface = \"eth2\"\nkind = \"bcast\"\n\
         [[link]]\nname = \"eth0\"\niface = \"eth0\"\nkind = \"bcast\"\n",
        t.keepalive_ms, t.deadtime_ms, t.warntime_ms, t.initdead_ms
    );
    for n in layout.nodes_of(i) {
        s.push_str(&format!(
            "[[node]]\nname = \"node{n}\"\naddrs = {{ eth2 = \"{}\", eth0 = \"{}\" }}\n",
            NODES[*n].hb_ip, NODES[*n].svc_ip
        ));
    }
    for g in layout.groups_of(i) {
        let nodes: Vec<String> = layout
            .candidates(*g, i)
            .iter()
            .map(|n| format!("\"node{n}\""))
            .collect();
        s.push_str(&format!(
            "[[group]]\nname = \"vip{}\"\nnodes = [{}]\n\
             [[group.resource]]\ntype = \"mac\"\niface = \"eth0\"\nmac = \"{}\"\nmode = \"macvlan\"\naddress = \"{}/24\"\n\
             [[group.resource]]\ntype = \"hostname\"\nname = \"{}\"\n",
            g + 1,
            nodes.join(", "),
            VMACS[*g],
            VIPS[*g],
            VHOSTS[*g]
        ));
        if *g == 0 {
            for c in checks {
                s.push_str(&format!("[[group.check]]\n{c}"));
            }
        }
    }
    fs::write(path, s)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// One running agent: the shared process guard (killed on drop), its
/// control socket and its log.
pub struct AgentProc {
    pub proc: Process,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl AgentProc {
    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    pub fn signal(&self, sig: i32) {
        self.proc.signal(sig);
    }

    pub fn status(&self) -> Result<StatusReport> {
        let r = client::call(&self.socket, &Request::Status)?;
        r.status.context("no status in reply")
    }

    /// Sends SIGTERM and waits for the agent to release and exit.
    pub fn stop(self, timeout: Duration) -> Result<()> {
        self.proc.stop(timeout)
    }

    /// kill -9, as a power cut.
    pub fn kill(mut self) {
        self.proc.kill();
    }

    /// The hostname in the agent's UTS namespace.
    pub fn hostname(&self) -> Result<String> {
        let o = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-u", "hostname"])
            .output()?;
        let name = String::from_utf8_lossy(&o.stdout).trim().to_string();
        // An agent that has just exited has no namespace left to read.
        if !o.status.success() || name.is_empty() {
            bail!(
                "reading the hostname of pid {}: {}",
                self.pid(),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(name)
    }
}

/// Where node `i`'s agent pins its XDP program, links and maps, on the
/// lab's own BPF filesystem `bpffs`: they outlive the agent as they would
/// on a host's /sys/fs/bpf (a killed agent's guard keeps fencing its
/// addresses); a power cut loses them (`LabNode::wipe`).
pub fn pin_dir(bpffs: &Path, i: usize) -> PathBuf {
    bpffs.join(NODES[i].name)
}

/// Starts node `i`'s agent in its namespace, as a user would run it (pinned
/// on the lab's `bpffs`), with the UTS namespace's hostname set to
/// `hostname` first (after a boot the node's own; an agent restart keeps
/// whatever hostname the node had).
#[allow(clippy::too_many_arguments)]
pub fn spawn_as(
    bin: &Path,
    netns: &str,
    i: usize,
    conf: &Path,
    toml: bool,
    dir: &Path,
    bpffs: &Path,
    hostname: &str,
) -> Result<AgentProc> {
    let name = NODES[i].name;
    let socket = dir.join(format!("{name}.sock"));
    let log = dir.join(format!("{name}.log"));
    let state = dir.join(format!("{name}-state"));
    let logf = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let cfg_flag = if toml { "--config" } else { "--ha-dir" };
    let child = Command::new("ip")
        .args(["netns", "exec", netns, "unshare", "--uts", "sh", "-c"])
        .arg(format!("hostname {hostname} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(["run", cfg_flag])
        .arg(conf)
        .args(["--node", name, "--pin-dir"])
        .arg(pin_dir(bpffs, i))
        .args(["--log-format", "json", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(&state)
        .env(
            "HB_LOG",
            std::env::var("HB_LAB_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let a = AgentProc {
        proc: Process::new(child),
        socket,
        log,
    };
    // Ready when its control socket answers.
    let t0 = Instant::now();
    while a.status().is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!(
                "{name}'s agent did not come up; log {}:\n{}",
                a.log.display(),
                fs::read_to_string(&a.log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(a)
}
