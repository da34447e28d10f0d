//! The lab: the seed's three-node cluster in network namespaces, its
//! failures, and what a client sees. Used by `cargo xtask lab`, by the
//! integration tests in `tests/tests/lab.rs` and by the failover benchmark.

pub mod agents;
pub mod chaos;
pub mod cli;
pub mod cpu;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod keepalived;
pub mod node;
pub mod observe;
pub mod picture;
pub mod report;
pub mod scenarios;
pub mod service;
pub mod timeline;
pub mod topology;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hb_agent::sender::clock;

use agents::{AgentProc, Layout, Timings};
use observe::{Prober, Watcher};
use topology::{NODES, Topology};

/// Set by Ctrl-C / SIGTERM: every wait returns an error so the lab unwinds
/// and its guards remove namespaces and processes.
pub static ABORT: AtomicBool = AtomicBool::new(false);

/// Ctrl-C and SIGTERM set ABORT (the lab then unwinds and cleans up)
/// instead of killing the process with namespaces left behind.
pub fn catch_signals() {
    // SAFETY: blocking signals in this (the only) thread before any other
    // thread exists, then waiting for them on a dedicated thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set2 = set;
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set2, &mut sig);
            eprintln!("\ninterrupted: tearing the lab down");
            ABORT.store(true, Ordering::SeqCst);
        });
    }
}

pub struct LabOptions {
    pub timings: Timings,
    /// Native TOML instead of seed-style ha.d directories.
    pub toml: bool,
    pub agent_bin: PathBuf,
    /// Where configurations, sockets and logs go (removed at the end).
    pub workdir: PathBuf,
    /// Print the timeline as it happens.
    pub verbose: bool,
    /// How often the client probes each VIP.
    pub probe_interval: std::time::Duration,
}

pub struct Lab {
    // Field order is drop order: observers and agents go before the namespaces.
    /// The forged-heartbeat flood and its attackers, once `start_flood`
    /// ran (idle until set).
    pub flood: Option<(crate::flood::Flood, Vec<crate::flood::Attacker>)>,
    /// The HTTP servers and their client, once `start_http` ran.
    pub http: Option<(http::Client, http::Servers)>,
    /// `hb-service` on the nodes and its client, once started (`service.rs`).
    pub services: Option<service::Services>,
    pub prober: Prober,
    pub watcher: Watcher,
    pub agents: [Option<AgentProc>; 3],
    /// The agents' pins (after them: a pinned link is released when both
    /// the agent and the pin are gone).
    pub bpffs: crate::netns::BpfFs,
    pub timeline: timeline::Timeline,
    pub topo: Topology,
    pub opts: LabOptions,
    confs: Vec<PathBuf>,
    /// Per node, the health checks on vip1's group (each a check table's
    /// keys) its configuration gets (`write_config`; `health.rs`).
    pub vip1_checks: [Vec<String>; 3],
    /// The hostname each killed agent left, until its next start.
    kept_hostname: [Option<String>; 3],
    _dir: DirGuard,
}

struct DirGuard(PathBuf);

impl Drop for DirGuard {
    /// `HB_LAB_KEEP=1` keeps the work dir (configurations, agent logs).
    fn drop(&mut self) {
        if std::env::var_os("HB_LAB_KEEP").is_some_and(|v| v == "1") {
            eprintln!("lab work dir kept: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The agent binary next to the running test/bench executable's target dir.
pub fn default_agent_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("exe dir")?.to_path_buf();
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("hb-agent");
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build -p hb-agent with the same profile)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Lab {
    pub fn start(opts: LabOptions) -> Result<Lab> {
        Lab::start_with(opts, |_| Ok(()))
    }

    /// `start`, with `before_agents` run on the lab once its network is up
    /// and before any agent starts (services to check, `vip1_checks`).
    pub fn start_with(
        opts: LabOptions,
        before_agents: impl FnOnce(&mut Lab) -> Result<()>,
    ) -> Result<Lab> {
        hb_testkit::require_root("the lab");
        let dir = opts.workdir.clone();
        std::fs::create_dir_all(&dir)?;
        let guard = DirGuard(dir.clone());
        let topo = Topology::build()?;
        let bpffs = crate::netns::BpfFs::mount()?;
        let confs: Vec<PathBuf> = NODES
            .iter()
            .map(|node| match opts.toml {
                true => dir.join(format!("{}.toml", node.name)),
                false => dir.join(format!("{}-ha.d", node.name)),
            })
            .collect();
        let watcher = Watcher::start(&topo.nodes);
        let prober = Prober::start(&topo.gw, opts.probe_interval)?;
        let timeline = timeline::Timeline::new(dir.clone(), opts.verbose);
        let mut lab = Lab {
            flood: None,
            http: None,
            services: None,
            prober,
            watcher,
            agents: [None, None, None],
            bpffs,
            timeline,
            topo,
            opts,
            confs,
            vip1_checks: Default::default(),
            kept_hostname: [None, None, None],
            _dir: guard,
        };
        before_agents(&mut lab)?;
        for i in 0..3 {
            lab.write_config(i, Layout::Seed)?;
            lab.start_agent(i)?;
        }
        if let Err(e) = lab.wait_owners([Some(0), Some(2)], lab.settle_timeout()) {
            // The agents' own account, before the lab (and its logs) go.
            let logs: Vec<String> = (0..3)
                .map(|i| format!("--- node{i}'s log, last lines:\n{}", lab.log_tail(i, 30)))
                .collect();
            return Err(e.context(format!(
                "initial state: node0 should hold vip1 and node2 vip2\n{}",
                logs.join("\n")
            )));
        }
        lab.timeline
            .note("cluster up: node0 holds vip1, node2 holds vip2");
        Ok(lab)
    }

    /// An HTTP server on every node and a client requesting from each VIP
    /// every millisecond (`http.rs`); the scenarios count its failures.
    pub fn start_http(&mut self) -> Result<()> {
        let servers = http::Servers::start(&self.topo.nodes)?;
        let client = http::Client::start(&self.topo.gw);
        self.http = Some((client, servers));
        // The first answers say the client and servers are connected.
        let t0 = self.now();
        self.wait_for("the first HTTP answers", Duration::from_secs(5), |l| {
            let c = &l.http.as_ref().expect("just set").0;
            c.answered_by(t0, u64::MAX)
                .iter()
                .all(|by| by.iter().sum::<usize>() > 0)
        })?;
        Ok(())
    }

    /// Attackers on both networks, capturing the heartbeats they see, and
    /// a flood of forged ones ready to be switched on (`flood.rs`).
    pub fn start_flood(&mut self, threads: usize) -> Result<()> {
        use crate::fault::Cable;
        use crate::flood::{Attacker, Flood};
        let atk = vec![
            Attacker::attach(&self.topo, Cable::Heartbeat)?,
            Attacker::attach(&self.topo, Cable::Service)?,
        ];
        let flood = Flood::start(&atk.iter().collect::<Vec<_>>(), threads)?;
        self.flood = Some((flood, atk));
        // Replays and spoofs are made of captured heartbeats.
        self.wait_for(
            "the attackers to capture heartbeats",
            Duration::from_secs(5),
            |l| l.flood.as_ref().is_some_and(|(f, _)| f.heard().len() >= 3),
        )?;
        Ok(())
    }

    /// Writes node `i`'s configuration for `layout` (read at its next start).
    pub fn write_config(&self, i: usize, layout: Layout) -> Result<()> {
        let (c, t, k) = (&self.confs[i], &self.opts.timings, &self.vip1_checks[i]);
        match self.opts.toml {
            true => agents::write_toml_with_checks(c, i, t, layout, k),
            false => agents::write_ha_dir_with_checks(c, i, t, layout, k),
        }
    }

    /// A rolling change of every node's configuration to `layout`, as an
    /// operator would do it: one node at a time in `order` (a primary's
    /// group moves to the standby and back), the initial owners restored
    /// after each. The order matters: a node still on the old layout must
    /// never hand a group to a node it does not know (it would not hear it
    /// serve, and keep its withdrawn copy a deadtime), nor miss one that
    /// holds it.
    pub fn reconfigure(&mut self, layout: Layout, order: [usize; 3]) -> Result<()> {
        for i in order {
            self.timeline.note(&format!(
                "restarting {} with layout {layout:?}",
                NODES[i].name
            ));
            if let Some(a) = self.agents[i].take() {
                a.stop(Duration::from_secs(10))?;
            }
            self.write_config(i, layout)?;
            self.start_agent(i)?;
            self.wait_owners([Some(0), Some(2)], self.settle_timeout())?;
        }
        Ok(())
    }

    pub fn deadtime(&self) -> Duration {
        Duration::from_secs_f64(self.opts.timings.deadtime_ms / 1e3)
    }

    /// Generous: initdead plus several deadtimes for failback stability.
    pub fn settle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.opts.timings.initdead_ms / 1e3)
            + self.deadtime() * 20
            + Duration::from_secs(2)
    }

    /// Starts node `i`'s agent, its hostname what a killed agent left (a
    /// kill is no reboot) or the node's own.
    pub fn start_agent(&mut self, i: usize) -> Result<()> {
        let host = self.kept_hostname[i].take();
        self.start_agent_as(i, host.as_deref().unwrap_or(NODES[i].name))
    }

    /// Starts node `i`'s agent with the node's hostname currently `hostname`.
    pub fn start_agent_as(&mut self, i: usize, hostname: &str) -> Result<()> {
        let log = self.opts.workdir.join(format!("{}.log", NODES[i].name));
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        // Noted before and after: the agent logs its start-up in between,
        // before its control socket answers.
        self.timeline
            .note(&format!("starting {}'s agent", NODES[i].name));
        let a = agents::spawn_as(
            &self.opts.agent_bin,
            &self.topo.nodes[i].name,
            i,
            &self.confs[i],
            self.opts.toml,
            &self.opts.workdir,
            self.bpffs.path(),
            hostname,
        )?;
        self.timeline.watch_log(i, &a.log, from);
        self.timeline.note(&format!(
            "{} agent started (pid {}, control socket answering)",
            NODES[i].name,
            a.pid()
        ));
        self.agents[i] = Some(a);
        Ok(())
    }

    pub fn agent(&self, i: usize) -> Result<&AgentProc> {
        self.agents[i]
            .as_ref()
            .with_context(|| format!("{} has no agent running", NODES[i].name))
    }

    /// Polls `cond` every millisecond until it holds, printing the timeline
    /// meanwhile; error after `timeout` or on Ctrl-C.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Lab) -> bool,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        loop {
            self.timeline.poll();
            if cond(self) {
                return Ok(t0.elapsed());
            }
            if ABORT.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            if t0.elapsed() > timeout {
                bail!(
                    "timed out after {timeout:?} waiting for {what}; holders now: vip1 {:?}, vip2 {:?}",
                    self.watcher.holders(0),
                    self.watcher.holders(1)
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until exactly the given node holds each VIP (None: nobody).
    pub fn wait_owners(&mut self, want: [Option<usize>; 2], timeout: Duration) -> Result<Duration> {
        self.wait_for(&format!("owners {want:?}"), timeout, |l| {
            (0..2).all(|v| l.watcher.holders(v) == want[v].into_iter().collect::<Vec<_>>())
        })
    }

    /// Waits until the cluster has settled on `want`: the addresses say so
    /// (as `wait_owners`), and every running agent's `status` agrees: all
    /// name the same owner, which reports the group held, and no other
    /// node is starting it or still removing it (withdrawn, stopping). An
    /// address alone can mislead: a released group's address stays on its
    /// interface, withdrawn, until a peer serves it.
    pub fn wait_settled(
        &mut self,
        want: [Option<usize>; 2],
        timeout: Duration,
    ) -> Result<Duration> {
        let mut disagreement = String::new();
        let mut asked = Instant::now() - Duration::from_secs(1);
        // Agreement must last: a node back from a fault may still be about
        // to move a group (its ping node not yet answering again).
        let stable = self.deadtime() * 2;
        let mut agreed_since: Option<Instant> = None;
        let r = self.wait_for(&format!("settled on owners {want:?}"), timeout, |l| {
            let addrs_ok =
                (0..2).all(|v| l.watcher.holders(v) == want[v].into_iter().collect::<Vec<_>>());
            if !addrs_ok {
                disagreement = "the addresses do not say so".into();
                agreed_since = None;
                return false;
            }
            // Agents answer status on their event loop: not every millisecond.
            if asked.elapsed() < Duration::from_millis(5) {
                return false;
            }
            asked = Instant::now();
            match l.agents_agree(want) {
                Ok(()) => agreed_since.get_or_insert(asked).elapsed() >= stable,
                Err(e) => {
                    disagreement = e;
                    agreed_since = None;
                    false
                }
            }
        });
        r.map_err(|e| e.context(format!("agents: {disagreement}")))
    }

    /// Whether every running agent's `status` says `want` (see `wait_settled`).
    fn agents_agree(&self, want: [Option<usize>; 2]) -> std::result::Result<(), String> {
        for (i, a) in self.agents.iter().enumerate() {
            let Some(a) = a else { continue };
            let name = NODES[i].name;
            let st = a.status().map_err(|e| format!("{name}: status: {e:#}"))?;
            for (v, owner) in want.iter().enumerate() {
                let Some(g) = st.groups.iter().find(|g| agents::group_is_vip(&g.name, v)) else {
                    // Not configured here (a layout without it): fine unless
                    // this node is meant to hold it.
                    if *owner == Some(i) {
                        return Err(format!("{name}: no group for vip{}", v + 1));
                    }
                    continue;
                };
                let want_owner = owner.map(|o| NODES[o].name);
                let want_local = if *owner == Some(i) { "held" } else { "-" };
                if g.owner.as_deref() != want_owner || g.local != want_local {
                    return Err(format!(
                        "{name} says vip{} owner {:?}, here {:?} (want {want_owner:?}, {want_local:?})",
                        v + 1,
                        g.owner,
                        g.local
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn now(&self) -> u64 {
        clock::now_ns()
    }

    pub fn workdir(&self) -> &Path {
        &self.opts.workdir
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.opts.workdir.join(format!("{}.log", NODES[i].name))
    }

    /// How long node `i`'s agent log is now (for `wait_log`).
    pub fn log_len(&self, i: usize) -> u64 {
        std::fs::metadata(self.log_path(i)).map_or(0, |m| m.len())
    }

    /// Waits until node `i`'s agent logs `needle` after byte `from`.
    pub fn wait_log(&mut self, i: usize, from: u64, needle: &str, timeout: Duration) -> Result<()> {
        let path = self.log_path(i);
        let what = format!("{} to log {needle:?}", NODES[i].name);
        self.wait_for(&what, timeout, |_| {
            std::fs::read(&path).is_ok_and(|b| {
                b.get(from as usize..)
                    .is_some_and(|tail| String::from_utf8_lossy(tail).contains(needle))
            })
        })?;
        Ok(())
    }

    /// Node `i`'s configuration with a line no parser accepts (for a
    /// reload that must fail and leave the running one in place).
    pub fn break_config(&self, i: usize) -> Result<()> {
        use std::io::Write as _;
        let path = match self.opts.toml {
            true => self.confs[i].clone(),
            false => self.confs[i].join("ha.cf"),
        };
        let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
        let line = match self.opts.toml {
            true => "[timing\ndeadtime = \"banana\"\n",
            false => "deadtime banana\n",
        };
        f.write_all(line.as_bytes())?;
        Ok(())
    }

    /// The last `n` lines of node `i`'s agent log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
