//! `cargo xtask bench failover`: client-visible outage of vip1 when node0
//! fails, for hb, for keepalived and for Heartbeat itself, in the same lab
//! with the same client probe (ICMP echo to the VIP every 0.1 ms; outage =
//! longest gap between answers from the fault until the standby serves).
//! One invocation runs all contenders so the comparison is fair.
//! `--trials N` (default 10); `--only`, `--fault`, `--fastest` for exploring.
//! The outages are also drawn, per fault and contender, in an SVG chart:
//! lab-results/bench-failover.svg, or `--svg PATH`.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use hb_agent::rules::step;
use hb_agent::sender::clock;
use hb_tests::fault::{self, Fault, Node, Teardown};
use hb_tests::lab::report::pct;
use hb_tests::lab::{
    Lab, LabOptions,
    agents::{Timings, group_name},
    cpu, default_agent_bin,
    heartbeat::{self, Heartbeat},
    keepalived::{Keepalived, Net, Variant},
    observe::{FAST_PROBE_INTERVAL, Prober, Watcher},
    topology::{Topology, VIPS},
};

/// The seed's four faults. A power off, as the standby sees it: the node
/// stops (frozen) and its switch ports go dark at once; its processes are
/// killed and its interfaces removed only at power-on (`Teardown::AtPowerOn`
/// says why). The same for every contender.
const FAULTS: [Fault; 4] = Fault::seed(Teardown::AtPowerOn);

/// The faults to run: all, or with `--fault PREFIX` those whose name starts
/// with it (exploring; the README's table runs all).
fn faults() -> Vec<Fault> {
    let args: Vec<String> = std::env::args().collect();
    let only = arg(&args, "--fault");
    FAULTS
        .into_iter()
        .filter(|f| only.as_deref().is_none_or(|o| f.name().starts_with(o)))
        .collect()
}

#[derive(Default, Clone)]
struct Stats {
    outages_ms: Vec<f64>,
    /// Hang: time the hung node's address stayed configured beside the new
    /// owner's after SIGCONT (netlink view).
    dual_after_resume_ms: Vec<f64>,
    /// Hang: time two nodes answered the client, from SIGSTOP until the
    /// primary serves alone again (`Prober::dual_answer_ns`).
    dual_answer_ms: Vec<f64>,
    /// Hang: changes of the answering node the client saw, from SIGSTOP
    /// until the primary serves alone again (clean: 2).
    switches: Vec<f64>,
    /// After a hang: from SIGCONT until vip1 answers again.
    unanswered_after_resume_ms: Vec<f64>,
    /// hb only: when each step of the failover happened, ms after the fault.
    steps: Vec<[Option<f64>; STEPS.len()]>,
    failed: usize,
    /// hb only: see `false_deaths`.
    false_failovers: usize,
}

impl Stats {
    /// What a hang trial leaves: vip1 on two nodes after SIGCONT (`resumed`),
    /// two nodes answering and answering-node changes from SIGSTOP (`t0`),
    /// until the primary serves alone again (`back`).
    fn record_hang(&mut self, w: &Watcher, p: &Prober, t0: u64, resumed: u64, back: u64) {
        self.dual_after_resume_ms
            .push(w.dual_ns(0, resumed, back) as f64 / 1e6);
        self.dual_answer_ms
            .push(p.dual_answer_ns(0, t0, back) as f64 / 1e6);
        self.switches.push(p.answer_switches(0, t0, back) as f64);
    }
}

/// The steps of an hb failover of vip1 from node0 to node1, by the log's
/// `step` field (agent/step.rs): (node, step, column title), and the
/// client's first answer from node1.
const STEPS: [(&str, &str, &str); 7] = [
    ("node0", step::RELEASING, "releasing group"),
    ("node0", step::RELEASED, "group released"),
    ("node1", step::PEER_DEAD, "peer dead on all links"),
    ("node1", step::TAKING_OVER, "taking over group"),
    ("node1", step::ADDRESS_UP, "address up (quick step)"),
    ("node1", step::STARTED, "group started"),
    ("client", "", "first answer from node1"),
];

fn steps(l: &Lab, t0: u64) -> [Option<f64>; STEPS.len()] {
    let vip1 = group_name(0, l.opts.toml);
    let mut out = [None; STEPS.len()];
    for (i, (node, name, _)) in STEPS.iter().enumerate() {
        if *node == "client" {
            out[i] = l
                .prober
                .first_answer_from(0, 1, t0)
                .map(|t| (t - t0) as f64 / 1e6);
            continue;
        }
        out[i] = l.timeline.first_step(node, name, &vip1);
    }
    out
}

/// hb's fastest timings that passed every lab scenario on this 2-core
/// machine with no false failover in the benchmark (0.25 ms / 1 ms did not
/// even bring the lab up: starting agents stall the VM for over a
/// millisecond); `--fastest K/D` tries others.
const FASTEST: Timings = Timings {
    keepalive_ms: 0.5,
    deadtime_ms: 2.0,
    warntime_ms: 1.0,
    initdead_ms: 100.0,
};

const SETTLE: Duration = Duration::from_millis(40);

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Result<u64> {
    let t0 = clock::now_ns();
    loop {
        if f() {
            return Ok(clock::now_ns());
        }
        if clock::now_ns() - t0 > timeout.as_nanos() as u64 {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// Outage of vip1 in [t0, served + SETTLE]: the fault until the standby
/// serves, plus time for the first answers to come back.
fn outage(p: &Prober, t0: u64, served: u64) -> f64 {
    pause(SETTLE);
    p.outage(0, t0, served + SETTLE.as_nanos() as u64) as f64 / 1e6
}

/// hb's trials, and how often a healthy node (node1, node2: only node0 is
/// ever faulted) was declared dead during them: false failovers.
fn hb_trials(timings: Timings, trials: usize) -> Result<HbColumn> {
    let mut l = Lab::start(LabOptions {
        timings,
        toml: false,
        agent_bin: default_agent_bin()?,
        workdir: std::env::temp_dir().join(hb_tests::netns::unique("bench")),
        verbose: false,
        probe_interval: FAST_PROBE_INTERVAL,
    })?;
    let to = l.settle_timeout();
    let pids: Vec<Vec<i32>> = (0..3)
        .map(|i| l.agent(i).map(|a| vec![a.pid()]))
        .collect::<Result<_>>()?;
    let idle = cpu::usage(&pids, IDLE_WINDOW);
    let threads = cpu::usage_by_thread(pids[1][0], IDLE_WINDOW);
    let mut out = Vec::new();
    let mut false_dead = 0;
    for f in faults() {
        let mut st = Stats::default();
        for _ in 0..trials {
            let r = (|| -> Result<()> {
                l.timeline.begin(f.name());
                let t0 = l.now();
                f.inflict(&mut l.node(0))?;
                l.wait_for("standby serves vip1", to, |l| {
                    l.watcher.holders(0).contains(&1)
                })?;
                let served = l.now();
                st.outages_ms.push(outage(&l.prober, t0, served));
                l.timeline.poll();
                st.steps.push(steps(&l, t0));
                // Recover and wait for node0 to hold vip1 alone again.
                let resumed = l.now();
                f.recover(&mut l.node(0))?;
                l.wait_owners([Some(0), Some(2)], to)?;
                if f == Fault::Hang {
                    st.record_hang(&l.watcher, &l.prober, t0, resumed, l.now());
                }
                pause(SETTLE);
                Ok(())
            })();
            // Counted per trial: the next `begin` starts a new timeline.
            let n = false_deaths(&mut l);
            false_dead += n;
            st.false_failovers += n;
            if let Err(e) = r {
                eprintln!("hb {}: trial failed: {e:#}", f.name());
                st.failed += 1;
                out.push((f, st));
                return Ok(HbColumn {
                    faults: out,
                    false_dead,
                    idle,
                    threads,
                });
            }
        }
        out.push((f, st));
    }
    Ok(HbColumn {
        faults: out,
        false_dead,
        idle,
        threads,
    })
}

/// One contender's trials, per fault.
type Column = Vec<(Fault, Stats)>;

/// One hb column: its trials, its false failovers, and its idle cost
/// (percent of a core per node, settled, before the first fault; and
/// node1's by thread).
struct HbColumn {
    faults: Vec<(Fault, Stats)>,
    false_dead: usize,
    idle: Vec<f64>,
    threads: std::collections::BTreeMap<String, f64>,
}

/// How long idle CPU is measured, once per contender, on the settled
/// cluster before its first fault.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// What the agents logged in this trial's timeline that moves service off
/// a healthy node: node1 or node2 declared dead (a line per observer), or
/// one of them releasing everything after a stall of its own or giving up
/// a group for lost ping nodes (only node0 is ever faulted).
fn false_deaths(l: &mut Lab) -> usize {
    l.timeline.poll();
    let false_ones: Vec<String> = l
        .timeline
        .steps
        .iter()
        .filter(|s| {
            (s.step == step::PEER_DEAD && s.peer.as_deref() != Some("node0"))
                || (s.node != "node0"
                    && (s.step == "warning.hang" || s.step == "warning.lost_connectivity"))
        })
        .map(|s| format!("{} {} {}", s.node, s.step, s.peer.as_deref().unwrap_or("")))
        .collect();
    if !false_ones.is_empty() {
        // What the run leaves to explain them (the lab's logs go with it).
        let stalls: Vec<String> = l
            .timeline
            .steps
            .iter()
            .filter(|s| s.step.starts_with("warning.stall"))
            .map(|s| format!("{} {}", s.node, s.step))
            .collect();
        eprintln!(
            "false failover: {}; stalls logged in the trial: {}",
            false_ones.join(", "),
            if stalls.is_empty() {
                "none".to_string()
            } else {
                stalls.join(", ")
            }
        );
    }
    false_ones.len()
}

/// A contender run by its own daemons on a bare topology (keepalived,
/// Heartbeat): node0 as a fault sees it (`Node`), and how to wait between
/// trials. The trial loop (`contender_trials`) is the same for both.
trait Contender: Node {
    fn label(&self) -> &'static str;
    /// Longest wait for the standby to serve, or node0 to be back.
    fn timeout(&self) -> Duration;
    /// Node0 holds vip1 alone again: settle before the next trial; the hang
    /// trial's time from SIGCONT (`resumed`) to vip1 answering again goes
    /// into `st` where the contender leaves it unanswered for a while.
    fn settle(&mut self, f: Fault, st: &mut Stats, resumed: u64) -> Result<()>;
    /// Back to the initial state after a failed trial.
    fn reset(&mut self) -> Result<()>;
}

/// `trials` of each fault against `c`, observed by `watcher` and `prober`.
fn contender_trials(
    c: &mut dyn Contender,
    watcher: &Watcher,
    prober: &Prober,
    trials: usize,
) -> Result<Vec<(Fault, Stats)>> {
    let to = c.timeout();
    let mut out = Vec::new();
    for f in faults() {
        let mut st = Stats::default();
        for _ in 0..trials {
            let r = (|| -> Result<()> {
                let t0 = clock::now_ns();
                f.inflict(&mut *c)?;
                let served = wait(&format!("{}: node1 serves vip1", c.label()), to, || {
                    watcher.holders(0).contains(&1)
                })?;
                st.outages_ms.push(outage(prober, t0, served));
                let resumed = clock::now_ns();
                f.recover(&mut *c)?;
                let back = wait(
                    &format!("{}: node0 holds vip1 again", c.label()),
                    to,
                    || watcher.holders(0) == [0],
                )?;
                if f == Fault::Hang {
                    st.record_hang(watcher, prober, t0, resumed, back);
                }
                c.settle(f, &mut st, resumed)
            })();
            if let Err(e) = r {
                eprintln!("{} {}: trial failed: {e:#}", c.label(), f.name());
                st.failed += 1;
                c.reset()?;
            }
        }
        out.push((f, st));
    }
    Ok(out)
}

/// keepalived on node0 (MASTER) and node1 (BACKUP).
struct KeepalivedRun<'a> {
    topo: &'a Topology,
    v: Variant,
    dir: std::path::PathBuf,
    ka: [Option<Keepalived>; 2],
}

impl KeepalivedRun<'_> {
    fn start_on(&self, i: usize) -> Result<Keepalived> {
        Keepalived::start(&self.topo.nodes[i].name, i, self.v, &self.dir)
    }

    fn node0(&self) -> Result<&Keepalived> {
        self.ka[0]
            .as_ref()
            .context("keepalived on node0 is not running")
    }
}

/// node0's keepalived.
impl Node for KeepalivedRun<'_> {
    fn topo(&self) -> &Topology {
        self.topo
    }

    fn index(&self) -> usize {
        0
    }

    fn stop(&mut self) -> Result<()> {
        self.ka[0].take().context("node0 not running")?.stop();
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        self.ka[0] = Some(self.start_on(0)?);
        Ok(())
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        self.node0()?.signal_all(sig);
        Ok(())
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(k) = self.ka[0].take() {
            k.kill();
        }
        Ok(())
    }

    /// Its VRRP interface (and the VIP on it).
    fn wipe(&mut self) -> Result<()> {
        let _ = self.topo.nodes[0].exec(&["ip", "link", "del", "vrrp51"]);
        Ok(())
    }
}

impl Contender for KeepalivedRun<'_> {
    fn label(&self) -> &'static str {
        "keepalived"
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    fn settle(&mut self, _: Fault, _: &mut Stats, _: u64) -> Result<()> {
        pause(Duration::from_millis(200));
        Ok(())
    }

    /// node0 restarted from scratch, whatever the failed trial left (a
    /// frozen daemon, its interface, cut cables).
    fn reset(&mut self) -> Result<()> {
        fault::restart_from_scratch(self)
    }
}

fn keepalived_trials(v: Variant, trials: usize) -> Result<(Column, Vec<f64>)> {
    let dir = std::env::temp_dir().join(hb_tests::netns::unique("ka"));
    std::fs::create_dir_all(&dir)?;
    let topo = Topology::build()?;
    let watcher = Watcher::start(&topo.nodes);
    let prober = Prober::start(&topo.gw, FAST_PROBE_INTERVAL)?;
    let mut run = KeepalivedRun {
        topo: &topo,
        v,
        dir: dir.clone(),
        ka: [None, None],
    };
    run.ka = [Some(run.start_on(0)?), Some(run.start_on(1)?)];
    wait("keepalived: node0 MASTER with vip1", run.timeout(), || {
        watcher.holders(0) == [0]
    })?;
    pause(Duration::from_millis(200));
    // Each node's keepalived: its parent and its VRRP child.
    let pids: Vec<Vec<i32>> = run
        .ka
        .iter()
        .flatten()
        .map(|k| {
            std::iter::once(k.child.id() as i32)
                .chain(k.vrrp_pid())
                .collect()
        })
        .collect();
    let idle = cpu::usage(&pids, IDLE_WINDOW);
    let out = contender_trials(&mut run, &watcher, &prober, trials).map(|o| (o, idle));
    drop(run);
    drop(prober);
    drop(watcher);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Before each fault Heartbeat must be settled: its logs unchanged for
/// this long (after a failback it still runs scripts: send_arp for a
/// second, ipfail's ping-count exchange, status scripts) ...
const HEARTBEAT_QUIET: Duration = Duration::from_secs(2);

/// ... and both master control processes up for this long: a node that
/// (re)started less than about 5 s ago was declared dead only some 2.5 s
/// after its link (measured by hand: power-off outages of 2.5 s instead of
/// 0.5 s two seconds after a restart, none after six). node0 restarts after
/// a graceful stop and a power off, node1 restarts itself after the hang
/// ("returning after partition"). The benchmark measures failover from a
/// settled cluster, as for the other contenders.
const HEARTBEAT_STEADY: Duration = Duration::from_secs(6);

/// Waits (at most 30 s) until both Heartbeats are settled.
fn heartbeat_settle(hb: &[Option<Heartbeat>; 2]) {
    let size = || -> u64 {
        hb.iter()
            .flatten()
            .filter_map(|h| std::fs::metadata(h.log()).ok())
            .map(|m| m.len())
            .sum()
    };
    let steady = || {
        hb.iter()
            .flatten()
            .all(|h| h.master_age().is_some_and(|a| a >= HEARTBEAT_STEADY))
    };
    let t0 = std::time::Instant::now();
    let (mut last, mut since) = (size(), std::time::Instant::now());
    while (since.elapsed() < HEARTBEAT_QUIET || !steady()) && t0.elapsed() < Duration::from_secs(30)
    {
        pause(Duration::from_millis(20));
        let now = size();
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
    }
}

/// Longest wait for vip1 to answer again after a trial (a stale ARP entry
/// at the gateway goes through REACHABLE, STALE, DELAY and PROBE first).
const UNANSWERED_MAX: Duration = Duration::from_secs(90);

/// Linux-HA Heartbeat 3.0.6 on node0 and node1.
struct HeartbeatRun<'a> {
    topo: &'a Topology,
    watcher: &'a Watcher,
    prober: &'a Prober,
    dir: std::path::PathBuf,
    hb: [Option<Heartbeat>; 2],
}

impl HeartbeatRun<'_> {
    fn start_on(&self, i: usize) -> Result<Heartbeat> {
        Heartbeat::start(&self.topo.nodes[i].name, i, &self.dir)
    }

    fn node0(&self) -> Result<&Heartbeat> {
        self.hb[0]
            .as_ref()
            .context("heartbeat on node0 is not running")
    }

    /// A fresh cluster, also after a failed trial (v1 Heartbeat can stay
    /// with both nodes owning vip1): both stopped, vip1 gone, cables in,
    /// node0 started first, then node1, as two v1 Heartbeats starting
    /// within each other's initdead can both take vip1 and keep it.
    fn fresh(&mut self) -> Result<()> {
        self.hb = [None, None];
        for (i, ns) in self.topo.nodes.iter().take(2).enumerate() {
            let _ = ns.exec(&[
                "ip",
                "addr",
                "del",
                &format!("{}/24", VIPS[0]),
                "dev",
                "eth0",
            ]);
            self.topo.cable(i, true, true)?;
            self.topo.cable(i, false, true)?;
        }
        self.hb[0] = Some(self.start_on(0)?);
        let watcher = self.watcher;
        wait("heartbeat: node0 holds vip1", self.timeout(), || {
            watcher.holders(0) == [0]
        })?;
        self.hb[1] = Some(self.start_on(1)?);
        heartbeat_settle(&self.hb);
        let prober = self.prober;
        wait("heartbeat: vip1 answers", UNANSWERED_MAX, || {
            prober.answering(0, Duration::from_millis(5))
        })?;
        Ok(())
    }
}

/// node0's Heartbeat.
impl Node for HeartbeatRun<'_> {
    fn topo(&self) -> &Topology {
        self.topo
    }

    fn index(&self) -> usize {
        0
    }

    fn stop(&mut self) -> Result<()> {
        self.hb[0]
            .take()
            .context("node0 not running")?
            .stop(Duration::from_secs(20))
    }

    fn start(&mut self) -> Result<()> {
        self.hb[0] = Some(self.start_on(0)?);
        Ok(())
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        self.node0()?.signal_all(sig);
        Ok(())
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(h) = self.hb[0].take() {
            h.kill();
        }
        Ok(())
    }

    /// The VIP its IPaddr put up.
    fn wipe(&mut self) -> Result<()> {
        let vip = format!("{}/24", VIPS[0]);
        let _ = self.topo.nodes[0].exec(&["ip", "addr", "del", &vip, "dev", "eth0"]);
        Ok(())
    }
}

impl Contender for HeartbeatRun<'_> {
    fn label(&self) -> &'static str {
        "heartbeat"
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// node0 kept vip1 through the hang and does not announce it again,
    /// so the gateway's ARP entry names node1 until it expires: every
    /// trial starts with vip1 answering.
    fn settle(&mut self, f: Fault, st: &mut Stats, resumed: u64) -> Result<()> {
        let prober = self.prober;
        let answers = wait("heartbeat: vip1 answers", UNANSWERED_MAX, || {
            prober.answering(0, Duration::from_millis(5))
        })?;
        if f == Fault::Hang {
            st.unanswered_after_resume_ms
                .push((answers - resumed) as f64 / 1e6);
        }
        heartbeat_settle(&self.hb);
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        self.fresh()
            .with_context(|| format!("logs in {}", self.dir.display()))
    }
}

fn heartbeat_trials(trials: usize) -> Result<(Column, Vec<f64>)> {
    let dir = std::env::temp_dir().join(hb_tests::netns::unique("heartbeat"));
    std::fs::create_dir_all(&dir)?;
    let topo = Topology::build()?;
    let watcher = Watcher::start(&topo.nodes);
    let prober = Prober::start(&topo.gw, FAST_PROBE_INTERVAL)?;
    let mut run = HeartbeatRun {
        topo: &topo,
        watcher: &watcher,
        prober: &prober,
        dir: dir.clone(),
        hb: [None, None],
    };
    run.reset()?;
    let pids: Vec<Vec<i32>> = run.hb.iter().flatten().map(|h| h.pids()).collect();
    let idle = cpu::usage(&pids, IDLE_WINDOW);
    let out = contender_trials(&mut run, &watcher, &prober, trials)?;
    drop(run);
    drop(prober);
    drop(watcher);
    drop(topo);
    if out.iter().any(|(_, s)| s.failed > 0) {
        eprintln!(
            "heartbeat: logs of the failed trials kept in {}",
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok((out, idle))
}

/// `--name value` from the command line.
fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// `--fastest K/D`: keepalive/deadtime in ms for hb's fastest column.
fn parse_timings(s: &str) -> Result<Timings> {
    let (k, d) = s
        .split_once('/')
        .with_context(|| format!("--fastest {s}: expected KEEPALIVE_MS/DEADTIME_MS"))?;
    let keepalive_ms: f64 = k
        .parse()
        .with_context(|| format!("--fastest {s}: keepalive"))?;
    let deadtime_ms: f64 = d
        .parse()
        .with_context(|| format!("--fastest {s}: deadtime"))?;
    if !(keepalive_ms > 0.0 && deadtime_ms > keepalive_ms) {
        bail!("--fastest {s}: need 0 < keepalive < deadtime");
    }
    Ok(Timings {
        keepalive_ms,
        deadtime_ms,
        warntime_ms: deadtime_ms / 2.0,
        initdead_ms: (deadtime_ms * 25.0).max(100.0),
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let trials: usize = arg(&args, "--trials")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // `--only hb` (or keepalived, heartbeat): run only the contenders whose
    // column name starts with it (exploring; the README's table runs all).
    let only = arg(&args, "--only");
    let want = |name: &str| only.as_deref().is_none_or(|o| name.starts_with(o));
    // Its fastest timings that passed the whole lab (every scenario, no
    // false failover) on this 2-core machine.
    let fastest = match arg(&args, "--fastest") {
        Some(s) => parse_timings(&s)?,
        None => FASTEST,
    };
    println!(
        "# hb vs keepalived vs Heartbeat: client-visible outage of vip1 when node0 fails ({trials} trials per fault)\n"
    );
    let mut columns: Vec<(String, Vec<(Fault, Stats)>)> = Vec::new();
    let eq = Timings {
        keepalive_ms: 10.0,
        deadtime_ms: 30.0,
        warntime_ms: 20.0,
        initdead_ms: 300.0,
    };
    let fast = Timings {
        keepalive_ms: 2.0,
        deadtime_ms: 10.0,
        warntime_ms: 6.0,
        initdead_ms: 200.0,
    };
    let push = Timings {
        keepalive_ms: 0.3,
        deadtime_ms: 1.2,
        warntime_ms: 0.6,
        initdead_ms: 100.0,
    };
    let push_too = fastest.keepalive_ms > push.keepalive_ms;
    let mut hb_columns = vec![
        ("hb 10 ms / 30 ms (keepalived-equivalent)".to_string(), eq),
        ("hb 2 ms / 10 ms".to_string(), fast),
        (
            format!(
                "hb {} ms / {} ms",
                fastest.keepalive_ms, fastest.deadtime_ms
            ),
            fastest,
        ),
    ];
    if push_too {
        hb_columns.push(("hb 0.3 ms / 1.2 ms".to_string(), push));
    }
    // Per contender: idle CPU per node (% of a core), and for hb its false
    // failovers (None: the column did not run to the end) and node1's
    // threads.
    let mut idle: Vec<(String, Vec<f64>)> = Vec::new();
    let mut false_dead: Vec<(String, Option<usize>)> = Vec::new();
    let mut threads = Vec::new();
    for (name, t) in hb_columns {
        if !want(&name) {
            continue;
        }
        // A column that cannot run (the lab does not settle at timings this
        // short) stays in the table, empty, with the reason.
        match hb_trials(t, trials) {
            Ok(c) => {
                let complete = c.faults.iter().all(|(_, s)| s.failed == 0);
                false_dead.push((name.clone(), complete.then_some(c.false_dead)));
                idle.push((name.clone(), c.idle));
                threads.push((name.clone(), c.threads));
                columns.push((name, c.faults));
            }
            Err(e) => {
                eprintln!("{name}: {e:#}");
                false_dead.push((name.clone(), None));
                columns.push((name, Vec::new()));
            }
        }
    }
    let keepalived = [
        // Its floor, as its users would set it up for speed.
        Variant {
            net: Net::Service,
            advert_int: "0.01",
            down_timer_adverts: None,
        },
        Variant {
            net: Net::HeartbeatNetTrack,
            advert_int: "0.01",
            down_timer_adverts: None,
        },
        Variant {
            net: Net::Service,
            advert_int: "0.01",
            down_timer_adverts: Some(1),
        },
        // Its usual setting.
        Variant {
            net: Net::Service,
            advert_int: "1",
            down_timer_adverts: None,
        },
    ];
    for v in keepalived {
        if want(&v.name()) {
            let (col, i) = keepalived_trials(v, trials)?;
            idle.push((v.name(), i));
            columns.push((v.name(), col));
        }
    }
    let t = &heartbeat::TIMINGS;
    let name = format!(
        "heartbeat 3.0.6 keepalive {} ms / deadtime {} ms (bcast eth2, ping + ipfail)",
        t.keepalive_ms, t.deadtime_ms
    );
    if want(&name) {
        // A column of its own failing (Heartbeat not installed, a cluster
        // that would not come up) leaves the others' results standing.
        let (col, i) = heartbeat_trials(trials).unwrap_or_else(|e| {
            eprintln!("heartbeat: {e:#}");
            (Vec::new(), Vec::new())
        });
        idle.push((name.clone(), i));
        columns.push((name, col));
    }
    println!(
        "| fault | contender | median outage | p95 outage | trials ok | two answering, hang to recovery (median) | answering node changes, hang to recovery (median; clean = 2) | address on two nodes after resume (median) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for f in FAULTS {
        for (name, col) in &columns {
            let Some((_, st)) = col.iter().find(|(g, _)| *g == f) else {
                println!("| {} | {name} | - | - | 0 | - | - | - |", f.name());
                continue;
            };
            println!(
                "| {} | {name} | {:.2} ms | {:.2} ms | {}/{} | {} | {} | {} |",
                f.name(),
                pct(&st.outages_ms, 0.5),
                pct(&st.outages_ms, 0.95),
                st.outages_ms.len(),
                st.outages_ms.len() + st.failed,
                median_or_dash(&st.dual_answer_ms, " ms"),
                median_or_dash(&st.switches, ""),
                median_or_dash(&st.dual_after_resume_ms, " ms"),
            );
        }
    }
    let svg_path = arg(&args, "--svg").unwrap_or_else(|| "lab-results/bench-failover.svg".into());
    write_chart(&svg_path, &columns, trials)?;
    for (name, col) in &columns {
        if let Some((_, st)) = col
            .iter()
            .find(|(_, s)| !s.unanswered_after_resume_ms.is_empty())
        {
            println!(
                "\n{name}, hang: after SIGCONT vip1 went unanswered for {:.0} ms (median; p95 {:.0} ms): \
                 node0 kept it through the hang and does not announce it again, so the gateway's \
                 ARP entry still named node1 until it expired.",
                pct(&st.unanswered_after_resume_ms, 0.5),
                pct(&st.unanswered_after_resume_ms, 0.95)
            );
        }
    }
    for (name, col) in columns.iter().filter(|(n, _)| n.starts_with("hb")) {
        println!("\nwhere the time goes, {name}: median ms after the fault (- = step not taken)\n");
        let head: Vec<String> = STEPS.iter().map(|(n, _, m)| format!("{n}: {m}")).collect();
        println!("| fault | {} |", head.join(" | "));
        println!("|---|{}", "---:|".repeat(STEPS.len()));
        for (f, st) in col {
            let cells: Vec<String> = (0..STEPS.len())
                .map(|i| {
                    let v: Vec<f64> = st.steps.iter().filter_map(|s| s[i]).collect();
                    if v.len() * 2 < st.steps.len().max(1) {
                        "-".to_string()
                    } else {
                        format!("{:.2}", pct(&v, 0.5))
                    }
                })
                .collect();
            println!("| {} | {} |", f.name(), cells.join(" | "));
        }
    }
    print_idle(&idle, &threads);
    println!(
        "\nfalse failovers during hb's trials: a healthy node (node1 or node2) declared dead, releasing everything after a stall, or giving up a group for lost ping nodes"
    );
    for (name, n) in &false_dead {
        let per_fault: Vec<String> = columns
            .iter()
            .filter(|(c, _)| c == name)
            .flat_map(|(_, col)| col.iter())
            .map(|(f, st)| format!("{} {}", f.name(), st.false_failovers))
            .collect();
        match n {
            Some(n) => println!("- {name}: {n} ({})", per_fault.join(", ")),
            None => println!(
                "- {name}: column incomplete (a trial failed or the lab did not start); {}",
                per_fault.join(", ")
            ),
        }
    }
    // The fastest hb column that ran to the end with no false failover:
    // the columns run from slowest to fastest.
    let safe = false_dead
        .iter()
        .rev()
        .find(|(_, n)| *n == Some(0))
        .map(|(name, _)| name.clone());
    let Some(safe) = safe else {
        println!("\nno hb column ran without a false failover: no ratio");
        return Ok(());
    };
    println!(
        "\nratio keepalived (best variant) / {safe} (hb's fastest column with no false failover in this run), median outage:"
    );
    for f in FAULTS {
        let median = |c: &Vec<(Fault, Stats)>| {
            c.iter()
                .find(|(g, _)| *g == f)
                .map(|(_, s)| pct(&s.outages_ms, 0.5))
        };
        let keepalived = columns
            .iter()
            .filter(|(n, _)| n.starts_with("keepalived"))
            .filter_map(|(_, c)| median(c))
            .fold(f64::NAN, f64::min);
        let hb = columns
            .iter()
            .find(|(n, _)| *n == safe)
            .and_then(|(_, c)| median(c))
            .unwrap_or(f64::NAN);
        println!("- {}: {:.1}x", f.name(), keepalived / hb);
    }
    Ok(())
}

/// Idle CPU per node and contender, and hb's by thread (node1).
fn print_idle(
    idle: &[(String, Vec<f64>)],
    threads: &[(String, std::collections::BTreeMap<String, f64>)],
) {
    println!(
        "\nidle CPU, % of one core per node over {} s, settled, before the first fault (hb: node0, node1, node2; keepalived and Heartbeat: node0 master, node1 backup)\n",
        IDLE_WINDOW.as_secs()
    );
    println!("| contender | node0 | node1 | node2 |");
    println!("|---|---:|---:|---:|");
    for (name, v) in idle {
        let cell = |i: usize| v.get(i).map_or("-".to_string(), |x| format!("{x:.2} %"));
        println!("| {name} | {} | {} | {} |", cell(0), cell(1), cell(2));
    }
    for (name, t) in threads {
        let cells: Vec<String> = t
            .iter()
            .filter(|(_, v)| **v >= 0.01)
            .map(|(n, v)| format!("{n} {v:.2} %"))
            .collect();
        println!("- {name}, node1 by thread: {}", cells.join(", "));
    }
}

/// The outage distributions as an SVG chart at `path` (`bench_chart.rs`):
/// per fault that ran, every column's trials.
fn write_chart(path: &str, columns: &[(String, Column)], trials: usize) -> Result<()> {
    use hb_tests::bench_chart::{Group, Series, chart};
    let groups: Vec<Group> = faults()
        .into_iter()
        .map(|f| Group {
            fault: f.name().to_string(),
            series: columns
                .iter()
                .map(|(name, col)| {
                    let st = col.iter().find(|(g, _)| *g == f).map(|(_, s)| s);
                    Series {
                        name: name.clone(),
                        outages_ms: st.map(|s| s.outages_ms.clone()).unwrap_or_default(),
                        failed: st.map_or(0, |s| s.failed),
                    }
                })
                .collect(),
        })
        .collect();
    let svg = chart(
        "hb vs keepalived vs Heartbeat: client-visible outage of vip1 when node0 fails",
        &format!(
            "{trials} trials per fault and contender; one dot per trial; the client probes vip1 every {} us",
            FAST_PROBE_INTERVAL.as_micros()
        ),
        &groups,
    );
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, svg).with_context(|| format!("writing {path}"))?;
    println!("\nchart of the outages written to {path}");
    Ok(())
}

fn median_or_dash(v: &[f64], unit: &str) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        format!("{:.2}{unit}", pct(v, 0.5))
    }
}
