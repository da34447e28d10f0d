//! `cargo xtask bench flood`: the lab's cluster under a flood of forged
//! heartbeats (`hb_tests::flood`) from an attacker on the heartbeat network
//! and one on the service network, sending as fast as this machine lets
//! them. Measures, in one lab (the lab's timings, 10 ms / 60 ms, unless
//! `--timings K/D`):
//!
//! 1. a quiet window without flood: the legitimate traffic's counter rates
//!    (subtracted from the flood's), agent CPU at rest;
//! 2. each flood kind alone for `--kind-seconds` (3): packets per second
//!    sent, reaching each node as its XDP program counted them, sent but
//!    not counted, and under which reasons;
//! 3. failover trials without flood, `--trials` (3) of each: graceful
//!    stop, cable pull, power off of node0, the client-visible outage of
//!    vip1 measured as `bench failover` does;
//! 4. `--seconds` (60) without flood nor faults (the control: what this
//!    host's other load alone does), then as long under the mixed flood:
//!    false failovers (counted as `bench failover` counts them), owner
//!    changes, client answers from the wrong node, agent / attacker /
//!    softirq CPU;
//! 5. the failover trials again under the mixed flood;
//!
//! then the XDP counters per reason per node over the whole run beside the
//! UDP stack's counters for what XDP passed, as tables, and all of it as
//! JSON in `target/bench-flood.json`. `--threads N`: sender threads per
//! attacker (1; more did not send faster on 2 cores); `--fault PREFIX`:
//! only the faults whose name starts with it (exploring).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hb_agent::rules::step;
use hb_common::maps::counter;
use hb_tests::fault::{Cable, Fault, Teardown};
use hb_tests::flood::{Attacker, Flood, Kind, Sent, clk_tck, cpu_ticks};
use hb_tests::lab::report::pct;
use hb_tests::lab::{
    ABORT, Lab, LabOptions,
    agents::{Timings, group_name},
    catch_signals, default_agent_bin,
    observe::FAST_PROBE_INTERVAL,
    topology::port,
};
use serde_json::{Value, json};

const FAULTS: [Fault; 3] = [
    Fault::Graceful,
    Fault::CablePull(Cable::Service),
    Fault::PowerOff(Teardown::AtPowerOn),
];

/// After the standby serves: time for the first answers to come back (as
/// `bench failover`).
const SETTLE: Duration = Duration::from_millis(40);

const NREASONS: usize = counter::COUNT as usize;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

struct Opts {
    seconds: f64,
    trials: usize,
    kind_seconds: f64,
    threads: usize,
    timings: Timings,
}

fn opts() -> Result<Opts> {
    let args: Vec<String> = std::env::args().collect();
    let num = |name: &str, def: f64| -> Result<f64> {
        match arg(&args, name) {
            Some(v) => v.parse().with_context(|| format!("{name} {v}")),
            None => Ok(def),
        }
    };
    let mut timings = Timings::default();
    if let Some(s) = arg(&args, "--timings") {
        let (k, d) = s
            .split_once('/')
            .with_context(|| format!("--timings {s}: expected KEEPALIVE_MS/DEADTIME_MS"))?;
        timings.keepalive_ms = k.parse().context("--timings: keepalive")?;
        timings.deadtime_ms = d.parse().context("--timings: deadtime")?;
        if !(timings.keepalive_ms > 0.0 && timings.deadtime_ms > timings.keepalive_ms) {
            bail!("--timings {s}: need 0 < keepalive < deadtime");
        }
        timings.warntime_ms = timings.deadtime_ms / 2.0;
        timings.initdead_ms = (timings.deadtime_ms * 25.0).max(300.0);
    }
    Ok(Opts {
        seconds: num("--seconds", 60.0)?,
        trials: num("--trials", 3.0)? as usize,
        kind_seconds: num("--kind-seconds", 3.0)?,
        threads: (num("--threads", 1.0)? as usize).max(1),
        timings,
    })
}

/// An interface's packet counters (`ip -s -j link`).
#[derive(Clone, Copy, Default, Debug)]
struct IfStat {
    rx_packets: u64,
    rx_dropped: u64,
    tx_dropped: u64,
}

fn if_stats(ns: &hb_tests::netns::Netns) -> Vec<(String, IfStat)> {
    let Ok(out) = ns.exec(&["ip", "-s", "-j", "link", "show"]) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let name = l.get("ifname")?.as_str()?.to_string();
            let s = l.get("stats64")?;
            let g = |dir: &str, k: &str| s.get(dir).and_then(|d| d.get(k)?.as_u64()).unwrap_or(0);
            Some((
                name,
                IfStat {
                    rx_packets: g("rx", "packets"),
                    rx_dropped: g("rx", "dropped"),
                    tx_dropped: g("tx", "dropped"),
                },
            ))
        })
        .collect()
}

/// The `cpu` line of /proc/stat: (busy, softirq, total) in clock ticks.
fn proc_stat() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, f.get(6).copied().unwrap_or(0), total.max(1))
}

/// A node's UDP stack counters (/proc/net/snmp of its namespace), where the
/// XDP program's passed "foreign" packets end: (NoPorts, IgnoredMulti,
/// InErrors, RcvbufErrors).
fn udp_snmp(ns: &hb_tests::netns::Netns) -> Option<[u64; 4]> {
    let text = ns.exec(&["cat", "/proc/net/snmp"]).ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let vals: Vec<&str> = udp.next()?.split_whitespace().collect();
    let get = |n: &str| -> u64 {
        names
            .iter()
            .position(|x| *x == n)
            .and_then(|i| vals.get(i)?.parse().ok())
            .unwrap_or(0)
    };
    Some([
        get("NoPorts"),
        get("IgnoredMulti"),
        get("InErrors"),
        get("RcvbufErrors"),
    ])
}

/// Frames dropped from the per-CPU input backlogs (/proc/net/softnet_stat,
/// second column, summed over CPUs; the whole machine).
fn softnet_dropped() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

/// Everything counted at one moment.
#[derive(Clone)]
struct Sample {
    at: Instant,
    sent: Sent,
    /// Per node: the XDP counters (None: its agent did not answer).
    counters: [Option<[u64; NREASONS]>; 3],
    /// Per node, [eth0, eth2]: the node's interface.
    node_if: [[IfStat; 2]; 3],
    /// Per node, [eth0, eth2]: its switch port.
    sw_if: [[IfStat; 2]; 3],
    agent_cpu: [Option<u64>; 3],
    attacker_cpu: u64,
    udp: [Option<[u64; 4]>; 3],
    softnet_dropped: u64,
    /// CPU time of the whole process (the client prober, the watchers,
    /// the attackers): (busy, softirq, total) system-wide.
    sys: (u64, u64, u64),
}

fn counters_of(l: &Lab, i: usize) -> Option<[u64; NREASONS]> {
    let st = l.agent(i).ok()?.status().ok()?;
    let mut out = [0; NREASONS];
    for (name, v) in st.counters {
        if let Some(k) = counter::NAMES.iter().position(|n| *n == name) {
            out[k] = v;
        }
    }
    Some(out)
}

fn sample(l: &Lab, flood: &Flood) -> Sample {
    let mut node_if = [[IfStat::default(); 2]; 3];
    let mut sw_if = [[IfStat::default(); 2]; 3];
    let sw = if_stats(&l.topo.sw);
    for i in 0..3 {
        let st = if_stats(&l.topo.nodes[i]);
        for (k, (ifname, svc)) in [("eth0", true), ("eth2", false)].into_iter().enumerate() {
            if let Some((_, s)) = st.iter().find(|(n, _)| n == ifname) {
                node_if[i][k] = *s;
            }
            if let Some((_, s)) = sw.iter().find(|(n, _)| *n == port(i, svc)) {
                sw_if[i][k] = *s;
            }
        }
    }
    Sample {
        at: Instant::now(),
        sent: flood.sent(),
        counters: std::array::from_fn(|i| counters_of(l, i)),
        node_if,
        sw_if,
        agent_cpu: std::array::from_fn(|i| {
            let pid = l.agent(i).ok()?.pid();
            cpu_ticks(&format!("/proc/{pid}/stat"))
        }),
        attacker_cpu: flood.sender_cpu_ticks(),
        udp: std::array::from_fn(|i| udp_snmp(&l.topo.nodes[i])),
        softnet_dropped: softnet_dropped(),
        sys: proc_stat(),
    }
}

/// Rates between two samples, per second.
#[derive(Clone, Debug, Default)]
struct Rates {
    secs: f64,
    /// Per network [service, heartbeat].
    sent_pps: [f64; 2],
    send_errors: [u64; 2],
    /// Per node: frames the attackers sent it (heartbeat network: all;
    /// service network: its share).
    sent_to_pps: [f64; 3],
    /// Per node and reason.
    xdp_pps: [[f64; NREASONS]; 3],
    /// Per node [eth0, eth2]: frames received.
    rx_pps: [[f64; 2]; 3],
    /// Per node: frames lost on the way in before the XDP program ran
    /// (the node's rx_dropped and its switch port's tx_dropped, both
    /// interfaces), per second.
    lost_pps: [f64; 3],
    /// Per node: the UDP stack counters of `udp_snmp`, per second.
    udp_pps: [[f64; 4]; 3],
    /// Frames dropped from the input backlogs, whole machine, per second.
    backlog_dropped_pps: f64,
    /// Per node: agent CPU, % of one core.
    agent_cpu_pct: [Option<f64>; 3],
    attacker_cpu_pct: f64,
    sys_busy_pct: f64,
    sys_softirq_pct: f64,
}

fn rates(a: &Sample, b: &Sample) -> Rates {
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let tck = clk_tck();
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let mut r = Rates {
        secs,
        ..Default::default()
    };
    for k in 0..2 {
        r.sent_pps[k] = d(a.sent.sent[k], b.sent.sent[k]);
        r.send_errors[k] = b.sent.errors[k] - a.sent.errors[k];
    }
    for i in 0..3 {
        r.sent_to_pps[i] =
            d(a.sent.sent[1], b.sent.sent[1]) + d(a.sent.sent_to[0][i], b.sent.sent_to[0][i]);
        if let (Some(x), Some(y)) = (a.counters[i], b.counters[i]) {
            for k in 0..NREASONS {
                r.xdp_pps[i][k] = d(x[k], y[k]);
            }
        }
        for k in 0..2 {
            let (x, y) = (a.node_if[i][k], b.node_if[i][k]);
            r.rx_pps[i][k] = d(x.rx_packets, y.rx_packets);
            r.lost_pps[i] += d(x.rx_dropped, y.rx_dropped)
                + d(a.sw_if[i][k].tx_dropped, b.sw_if[i][k].tx_dropped);
        }
        if let (Some(x), Some(y)) = (a.udp[i], b.udp[i]) {
            r.udp_pps[i] = std::array::from_fn(|k| d(x[k], y[k]));
        }
        if let (Some(x), Some(y)) = (a.agent_cpu[i], b.agent_cpu[i]) {
            r.agent_cpu_pct[i] = Some(y.saturating_sub(x) as f64 / tck / secs * 100.0);
        }
    }
    r.backlog_dropped_pps = d(a.softnet_dropped, b.softnet_dropped);
    r.attacker_cpu_pct = b.attacker_cpu.saturating_sub(a.attacker_cpu) as f64 / tck / secs * 100.0;
    let (busy, soft, total) = (
        b.sys.0 - a.sys.0,
        b.sys.1 - a.sys.1,
        (b.sys.2 - a.sys.2).max(1),
    );
    // % of one core: the share of all CPUs' time, times the CPU count.
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    r.sys_busy_pct = busy as f64 / total as f64 * 100.0 * ncpu;
    r.sys_softirq_pct = soft as f64 / total as f64 * 100.0 * ncpu;
    r
}

impl Rates {
    /// What the flood added over the quiet window's rates (legitimate
    /// heartbeats, the client's probes).
    fn minus(&self, q: &Rates) -> Rates {
        let mut r = self.clone();
        for i in 0..3 {
            for k in 0..NREASONS {
                r.xdp_pps[i][k] = (r.xdp_pps[i][k] - q.xdp_pps[i][k]).max(0.0);
            }
            for k in 0..2 {
                r.rx_pps[i][k] = (r.rx_pps[i][k] - q.rx_pps[i][k]).max(0.0);
            }
            r.lost_pps[i] = (r.lost_pps[i] - q.lost_pps[i]).max(0.0);
        }
        r
    }

    /// Forged packets the XDP program counted at node `i`, per second: all
    /// its reasons but accepted (the quiet rates subtracted already).
    fn counted(&self, i: usize) -> f64 {
        (0..NREASONS)
            .filter(|k| *k != counter::ACCEPTED as usize)
            .map(|k| self.xdp_pps[i][k])
            .sum()
    }

    /// Frames sent to node `i` that its XDP program did not count, as a
    /// share of those sent (negative: counted more, the samples' skew).
    fn uncounted(&self, i: usize) -> f64 {
        if self.sent_to_pps[i] < 1.0 {
            return 0.0;
        }
        (self.sent_to_pps[i] - self.counted(i)) / self.sent_to_pps[i] * 100.0
    }

    fn json(&self) -> Value {
        let per_node: Vec<Value> = (0..3)
            .map(|i| {
                let reasons: serde_json::Map<String, Value> = counter::NAMES
                    .iter()
                    .zip(self.xdp_pps[i])
                    .map(|(n, v)| (n.to_string(), json!(round(v))))
                    .collect();
                json!({
                    "node": format!("node{i}"),
                    "sent_to_pps": round(self.sent_to_pps[i]),
                    "xdp_counted_pps": round(self.counted(i)),
                    "uncounted_pct": round2(self.uncounted(i)),
                    "xdp_pps_by_reason": reasons,
                    "rx_pps_eth0": round(self.rx_pps[i][0]),
                    "rx_pps_eth2": round(self.rx_pps[i][1]),
                    "lost_before_xdp_pps": round(self.lost_pps[i]),
                    "agent_cpu_pct": self.agent_cpu_pct[i].map(round2),
                    "udp_noports_pps": round(self.udp_pps[i][0]),
                    "udp_ignoredmulti_pps": round(self.udp_pps[i][1]),
                })
            })
            .collect();
        json!({
            "seconds": round2(self.secs),
            "sent_pps_service_net": round(self.sent_pps[0]),
            "sent_pps_heartbeat_net": round(self.sent_pps[1]),
            "send_errors": self.send_errors,
            "backlog_dropped_pps": round(self.backlog_dropped_pps),
            "nodes": per_node,
            "attacker_cpu_pct": round2(self.attacker_cpu_pct),
            "system_busy_pct_of_one_core": round2(self.sys_busy_pct),
            "system_softirq_pct_of_one_core": round2(self.sys_softirq_pct),
        })
    }
}

/// Frames lost on the way into node `i` before its XDP program, between
/// two samples.
fn lost(a: &Sample, b: &Sample, i: usize) -> u64 {
    (0..2)
        .map(|k| {
            b.node_if[i][k]
                .rx_dropped
                .saturating_sub(a.node_if[i][k].rx_dropped)
                + b.sw_if[i][k]
                    .tx_dropped
                    .saturating_sub(a.sw_if[i][k].tx_dropped)
        })
        .sum()
}

fn round(v: f64) -> f64 {
    v.round()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// XDP drops per reason per node over the whole run, accumulated across
/// agent restarts (a power off wipes the pins, and the counters restart
/// from zero with the next agent).
struct Totals {
    last: [Option<[u64; NREASONS]>; 3],
    total: [[u64; NREASONS]; 3],
}

impl Totals {
    fn new() -> Totals {
        Totals {
            last: [None; 3],
            total: [[0; NREASONS]; 3],
        }
    }

    fn update(&mut self, l: &Lab) {
        for i in 0..3 {
            let Some(now) = counters_of(l, i) else {
                continue;
            };
            for k in 0..NREASONS {
                let before = self.last[i].map_or(0, |c| c[k]);
                self.total[i][k] += if now[k] >= before {
                    now[k] - before
                } else {
                    now[k]
                };
            }
            self.last[i] = Some(now);
        }
    }
}

/// Sleeps `d`, polling the timeline; an error on Ctrl-C.
fn hold(l: &mut Lab, d: Duration) -> Result<()> {
    let t0 = Instant::now();
    l.wait_for("a pause", d + Duration::from_secs(5), |_| t0.elapsed() >= d)?;
    Ok(())
}

/// Waits until the attackers heard every node.
fn wait_captures(l: &mut Lab, flood: &Flood) -> Result<()> {
    let t0 = Instant::now();
    while flood.heard().len() < 3 {
        if ABORT.load(std::sync::atomic::Ordering::Relaxed) {
            bail!("interrupted");
        }
        if t0.elapsed() > Duration::from_secs(10) {
            bail!(
                "the attackers captured heartbeats of only {:?} in 10 s",
                flood.heard()
            );
        }
        l.timeline.poll();
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// What moved service off a healthy node or looked like it, in the current
/// timeline: `faulted` is the node a trial faults (its own death and its
/// release are expected).
#[derive(Clone, Copy, Debug, Default)]
struct Falses {
    /// A healthy peer declared dead (dead on all links), per observer.
    peer_dead: usize,
    /// A healthy node releasing for a stall of its own or lost ping nodes.
    stall_or_ping: usize,
    /// A peer declared dead on one link (not all): the flood cost a link.
    link_dead: usize,
}

fn falses(l: &mut Lab, faulted: Option<&str>) -> Falses {
    l.timeline.poll();
    let healthy = |n: Option<&str>| n.is_some() && n != faulted;
    let mut f = Falses::default();
    for s in &l.timeline.steps {
        if s.step == step::PEER_DEAD && healthy(s.peer.as_deref()) {
            f.peer_dead += 1;
        }
        if healthy(Some(s.node))
            && (s.step == "warning.hang" || s.step == "warning.lost_connectivity")
        {
            f.stall_or_ping += 1;
        }
    }
    f.link_dead = l
        .timeline
        .entries
        .iter()
        .filter(|(_, e)| e.contains("peer dead on link") && faulted.is_none_or(|n| !e.contains(n)))
        .count();
    f
}

#[derive(Clone, Debug, Default)]
struct TrialStats {
    /// Client-visible outage of vip1, ms.
    outage_ms: Vec<f64>,
    /// From the fault until node1 holds vip1 (its netlink view), ms.
    served_ms: Vec<f64>,
    /// Per trial, ms after the fault (the agents' own log time stamps):
    /// `STEPS`, and the client's first answer from node1.
    steps: Vec<[Option<f64>; STEPS.len() + 1]>,
    failed: usize,
    false_peer_dead: usize,
    false_stall_or_ping: usize,
    errors: Vec<String>,
}

/// The steps of a failover of vip1 from node0 to node1, by the log's
/// `step` field, as `bench failover` reads them.
const STEPS: [(&str, &str); 5] = [
    ("node0", step::RELEASING),
    ("node0", step::RELEASED),
    ("node1", step::PEER_DEAD),
    ("node1", step::TAKING_OVER),
    ("node1", step::ADDRESS_UP),
];

fn steps(l: &mut Lab, t0: u64) -> [Option<f64>; STEPS.len() + 1] {
    l.timeline.poll();
    let vip1 = group_name(0, l.opts.toml);
    let mut out = [None; STEPS.len() + 1];
    for (i, (node, name)) in STEPS.iter().enumerate() {
        out[i] = l.timeline.first_step(node, name, &vip1);
    }
    out[STEPS.len()] = l
        .prober
        .first_answer_from(0, 1, t0)
        .map(|t| (t - t0) as f64 / 1e6);
    out
}

fn trials(l: &mut Lab, n: usize, totals: &mut Totals) -> Result<Vec<(Fault, TrialStats)>> {
    let to = l.settle_timeout();
    let mut out = Vec::new();
    // `--fault PREFIX`: only the faults whose name starts with it.
    let only = arg(&std::env::args().collect::<Vec<_>>(), "--fault");
    for f in FAULTS
        .into_iter()
        .filter(|f| only.as_deref().is_none_or(|o| f.name().starts_with(o)))
    {
        let mut st = TrialStats::default();
        for _ in 0..n {
            totals.update(l);
            let r = (|| -> Result<()> {
                l.timeline.begin(f.name());
                let t0 = l.now();
                l.inflict(f, 0)?;
                l.wait_for("standby serves vip1", to, |l| {
                    l.watcher.holders(0).contains(&1)
                })?;
                let served = l.now();
                std::thread::sleep(SETTLE);
                st.outage_ms
                    .push(l.prober.outage(0, t0, served + SETTLE.as_nanos() as u64) as f64 / 1e6);
                st.served_ms.push((served - t0) as f64 / 1e6);
                st.steps.push(steps(l, t0));
                l.recover(f, 0)?;
                l.wait_owners([Some(0), Some(2)], to)?;
                std::thread::sleep(SETTLE);
                Ok(())
            })();
            let fx = falses(l, Some("node0"));
            st.false_peer_dead += fx.peer_dead;
            st.false_stall_or_ping += fx.stall_or_ping;
            if let Err(e) = r {
                if ABORT.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(e);
                }
                eprintln!("{}: trial failed: {e:#}", f.name());
                st.failed += 1;
                st.errors.push(format!("{e:#}"));
                l.restore()
                    .context("restoring the lab after a failed trial")?;
            }
            totals.update(l);
        }
        out.push((f, st));
    }
    Ok(out)
}

/// node1's takeover decisions, ms after the fault, over the trials.
fn taking_over(s: &TrialStats) -> Vec<f64> {
    s.steps.iter().filter_map(|t| t[3]).collect()
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// The no-fault flood window's findings.
#[derive(Debug, Default)]
struct Window {
    falses: Falses,
    /// Times the holders of a VIP differed from the initial owners.
    owner_changes: usize,
    /// Client answers from a node other than the owner (vip1, vip2).
    wrong_answers: [usize; 2],
    /// Longest gap between the client's answers from vip1, ms.
    longest_gap_ms: f64,
    takeovers: usize,
}

/// Runs the current flood for `d` without faults, watching for anything
/// that moves service.
fn no_fault_window(l: &mut Lab, d: Duration) -> Result<Window> {
    l.timeline.begin("flood, no faults");
    let t0 = l.now();
    let start = Instant::now();
    let mut w = Window::default();
    let mut last_ok = true;
    let mut changes = 0;
    l.wait_for("the end of the window", d + Duration::from_secs(10), |l| {
        let ok = l.watcher.holders(0) == [0] && l.watcher.holders(1) == [2];
        if !ok && last_ok {
            changes += 1;
        }
        last_ok = ok;
        start.elapsed() >= d
    })?;
    let t1 = l.now();
    w.owner_changes = changes;
    w.falses = falses(l, None);
    w.takeovers = l
        .timeline
        .steps
        .iter()
        .filter(|s| s.step == step::TAKING_OVER || s.step == step::RELEASING)
        .count();
    let a = l.prober.answers_by_node(0, t0, t1);
    let b = l.prober.answers_by_node(1, t0, t1);
    w.wrong_answers = [a[1] + a[2] + a[3], b[0] + b[1] + b[3]];
    w.longest_gap_ms = l.prober.outage(0, t0, t1) as f64 / 1e6;
    Ok(w)
}

fn target_dir() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("exe dir")?;
    Ok(dir.parent().unwrap_or(dir).to_path_buf())
}

fn k(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1_000.0 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn main() -> Result<()> {
    catch_signals();
    let o = opts()?;
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let t = o.timings.clone();
    let mut l = Lab::start(LabOptions {
        timings: o.timings.clone(),
        toml: false,
        agent_bin: default_agent_bin()?,
        workdir: std::env::temp_dir().join(hb_tests::netns::unique("flood")),
        verbose: false,
        probe_interval: FAST_PROBE_INTERVAL,
    })?;
    let hb_atk = Attacker::attach(&l.topo, Cable::Heartbeat)?;
    let svc_atk = Attacker::attach(&l.topo, Cable::Service)?;
    let flood = Flood::start(&[&hb_atk, &svc_atk], o.threads)?;
    wait_captures(&mut l, &flood)?;
    let mut totals = Totals::new();
    totals.update(&l);
    let first = sample(&l, &flood);

    eprintln!("quiet window (no flood) ...");
    hold(&mut l, Duration::from_millis(500))?;
    let a = sample(&l, &flood);
    hold(&mut l, Duration::from_secs(3))?;
    let quiet = rates(&a, &sample(&l, &flood));

    let mut per_kind = Vec::new();
    for kind in Kind::SINGLE.into_iter().chain([Kind::Mixed]) {
        eprintln!("flood: {} ...", kind.name());
        flood.set(Some(kind));
        hold(&mut l, Duration::from_millis(500))?;
        let a = sample(&l, &flood);
        hold(&mut l, Duration::from_secs_f64(o.kind_seconds))?;
        let b = sample(&l, &flood);
        flood.set(None);
        per_kind.push((kind, rates(&a, &b).minus(&quiet)));
        hold(&mut l, Duration::from_millis(300))?;
    }
    let kinds_falses = falses(&mut l, None);
    totals.update(&l);

    eprintln!("failover trials without flood ...");
    let calm = trials(&mut l, o.trials, &mut totals)?;

    eprintln!("control: no flood for {} s, no faults ...", o.seconds);
    let ca = sample(&l, &flood);
    let control = no_fault_window(&mut l, Duration::from_secs_f64(o.seconds))?;
    let control_rates = rates(&ca, &sample(&l, &flood));
    totals.update(&l);

    eprintln!("mixed flood for {} s, no faults ...", o.seconds);
    flood.set(Some(Kind::Mixed));
    hold(&mut l, Duration::from_millis(500))?;
    let a = sample(&l, &flood);
    let window = no_fault_window(&mut l, Duration::from_secs_f64(o.seconds))?;
    let b = sample(&l, &flood);
    let long = rates(&a, &b);
    let long_forged = long.minus(&quiet);
    totals.update(&l);

    eprintln!("failover trials under the mixed flood ...");
    let flooded = trials(&mut l, o.trials, &mut totals)?;
    let sent_total = flood.sent();
    flood.set(None);
    totals.update(&l);
    let last = sample(&l, &flood);
    let udp: [[u64; 4]; 3] = std::array::from_fn(|i| match (first.udp[i], last.udp[i]) {
        (Some(a), Some(b)) => std::array::from_fn(|k| b[k].saturating_sub(a[k])),
        _ => [0; 4],
    });
    let load1 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    // ---- report ----
    println!(
        "# hb under a forged-heartbeat flood (keepalive {} ms, deadtime {} ms; {} sender thread(s) per attacker)\n",
        t.keepalive_ms, t.deadtime_ms, o.threads
    );
    println!(
        "Attackers: one on the heartbeat network (to the broadcast address: every node gets every frame), one on the service network (to each node's own address in turn). Load average before/after: {} / {}.\n",
        load0
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load1
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "## Rate per flood kind ({} s each; pps; legitimate traffic of a quiet window subtracted)\n",
        o.kind_seconds
    );
    println!(
        "| flood kind | sent, heartbeat net | sent, service net | reaching node0 / node1 / node2 (XDP-counted) | sent to the node but not XDP-counted, node0 / node1 / node2 | counted as | attacker CPU | softirq (system) |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for (kind, r) in &per_kind {
        let mut reasons: Vec<(usize, f64)> = (0..NREASONS)
            .filter(|k| *k != counter::ACCEPTED as usize)
            .map(|k| (k, (0..3).map(|i| r.xdp_pps[i][k]).sum::<f64>()))
            .filter(|(_, v)| *v >= 1.0)
            .collect();
        reasons.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = reasons.iter().map(|(_, v)| v).sum::<f64>().max(1.0);
        let as_: Vec<String> = reasons
            .iter()
            .filter(|(_, v)| *v / total >= 0.005)
            .map(|(k, v)| format!("{} {:.0}%", counter::NAMES[*k], v / total * 100.0))
            .collect();
        println!(
            "| {} | {} | {} | {} / {} / {} | {:.2}% / {:.2}% / {:.2}% | {} | {:.0}% | {:.0}% |",
            kind.name(),
            k(r.sent_pps[1]),
            k(r.sent_pps[0]),
            k(r.counted(0)),
            k(r.counted(1)),
            k(r.counted(2)),
            r.uncounted(0),
            r.uncounted(1),
            r.uncounted(2),
            as_.join(", "),
            r.attacker_cpu_pct,
            r.sys_softirq_pct,
        );
    }

    println!(
        "\n## False failovers: mixed flood for {:.0} s, no faults\n",
        long.secs
    );
    println!(
        "- sent: {} pps on the heartbeat network, {} pps on the service network; reaching node0 / node1 / node2 (XDP-counted): {} / {} / {} pps; sent to the node but not XDP-counted: {:.3}% / {:.3}% / {:.3}%; dropped on the way in before XDP (the nodes' rx_dropped, their switch ports' tx_dropped): {} / {} / {} pps; input backlog drops (whole machine): {} pps",
        k(long.sent_pps[1]),
        k(long.sent_pps[0]),
        k(long_forged.counted(0)),
        k(long_forged.counted(1)),
        k(long_forged.counted(2)),
        long_forged.uncounted(0),
        long_forged.uncounted(1),
        long_forged.uncounted(2),
        k(long_forged.lost_pps[0]),
        k(long_forged.lost_pps[1]),
        k(long_forged.lost_pps[2]),
        k(long.backlog_dropped_pps),
    );
    println!(
        "- false failovers: {} (as in `bench failover`: a healthy peer declared dead on all links, per observer: {}; a node releasing everything for a stall of its own or lost ping nodes: {}); takeovers and releases: {}; times the owners of the VIPs changed: {}; client answers from the wrong node: vip1 {}, vip2 {}",
        window.falses.peer_dead + window.falses.stall_or_ping,
        window.falses.peer_dead,
        window.falses.stall_or_ping,
        window.takeovers,
        window.owner_changes,
        window.wrong_answers[0],
        window.wrong_answers[1],
    );
    println!(
        "- a peer declared dead on one link only: {}; longest gap between vip1's answers at the client: {:.2} ms",
        window.falses.link_dead, window.longest_gap_ms
    );
    println!(
        "- control, the same time without flood just before: false failovers {} (healthy peer dead {}, stall/ping releases {}), dead on one link {}, owner changes {}, longest vip1 gap {:.2} ms; machine busy {:.0}% of one core (other work on this host counts too)",
        control.falses.peer_dead + control.falses.stall_or_ping,
        control.falses.peer_dead,
        control.falses.stall_or_ping,
        control.falses.link_dead,
        control.owner_changes,
        control.longest_gap_ms,
        control_rates.sys_busy_pct,
    );
    println!(
        "- during the per-kind runs: healthy peer declared dead {}, stall/ping releases {}, dead on one link {}",
        kinds_falses.peer_dead, kinds_falses.stall_or_ping, kinds_falses.link_dead
    );

    println!(
        "\n## Failover time of vip1 (node0 faulted), without and with the mixed flood ({} trials each)\n",
        o.trials
    );
    println!(
        "| fault | outage, no flood (median / max) | outage, flood (median / max) | node1 decides the takeover, ms after the fault was issued (its log), no flood / flood (median) | trials ok, no flood / flood | false failovers, no flood / flood |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for ((f, c), (_, w)) in calm.iter().zip(&flooded) {
        println!(
            "| {} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {}/{} / {}/{} | {} / {} |",
            f.name(),
            pct(&c.outage_ms, 0.5),
            max(&c.outage_ms),
            pct(&w.outage_ms, 0.5),
            max(&w.outage_ms),
            pct(&taking_over(c), 0.5),
            pct(&taking_over(w), 0.5),
            c.outage_ms.len(),
            c.outage_ms.len() + c.failed,
            w.outage_ms.len(),
            w.outage_ms.len() + w.failed,
            c.false_peer_dead + c.false_stall_or_ping,
            w.false_peer_dead + w.false_stall_or_ping,
        );
    }

    println!(
        "\n## XDP counters per reason per node, whole run (accumulated across agent restarts)\n"
    );
    println!("| reason | node0 | node1 | node2 |");
    println!("|---|---:|---:|---:|");
    for (kx, name) in counter::NAMES.iter().enumerate() {
        println!(
            "| {name}{} | {} | {} | {} |",
            if kx == counter::FOREIGN as usize {
                " (passed to the stack)"
            } else if kx == counter::ACCEPTED as usize {
                " (not a drop)"
            } else {
                ""
            },
            totals.total[0][kx],
            totals.total[1][kx],
            totals.total[2][kx]
        );
    }
    for (kx, name) in [
        "UDP NoPorts (foreign, to the node's address)",
        "UDP IgnoredMulti (foreign, broadcast)",
        "UDP InErrors",
        "UDP RcvbufErrors",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "| stack, after XDP passed it: {name} | {} | {} | {} |",
            udp[0][kx], udp[1][kx], udp[2][kx]
        );
    }
    println!(
        "| before XDP: the node's rx_dropped + its switch ports' tx_dropped | {} | {} | {} |",
        lost(&first, &last, 0),
        lost(&first, &last, 1),
        lost(&first, &last, 2)
    );
    println!(
        "\nThe UDP stack rows count what the XDP program passed (foreign: not a heartbeat), plus each node's own broadcast heartbeats, which the kernel loops back to its own stack without XDP (quiet window: NoPorts + IgnoredMulti {:.0} / {:.0} / {:.0} per second), plus, on node0, what arrived after each power-on before its new agent attached the XDP program (nothing protects a node whose agent is not running).",
        quiet.udp_pps[0][0] + quiet.udp_pps[0][1],
        quiet.udp_pps[1][0] + quiet.udp_pps[1][1],
        quiet.udp_pps[2][0] + quiet.udp_pps[2][1],
    );
    let sent_all = sent_total.sent[0] + sent_total.sent[1];
    println!(
        "\nframes sent by the attackers over the run: {} (heartbeat net {}, service net {}); sendmmsg calls refused (queue full): {}",
        sent_all,
        sent_total.sent[1],
        sent_total.sent[0],
        sent_total.errors[0] + sent_total.errors[1]
    );

    println!("\n## CPU (% of one core)\n");
    println!("| | quiet | mixed flood ({:.0} s) |", long.secs);
    println!("|---|---:|---:|");
    for i in 0..3 {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}%"));
        println!(
            "| agent node{i} (utime+stime) | {} | {} |",
            f(quiet.agent_cpu_pct[i]),
            f(long.agent_cpu_pct[i])
        );
    }
    println!(
        "| attacker sender threads | {:.1}% | {:.1}% |",
        quiet.attacker_cpu_pct, long.attacker_cpu_pct
    );
    println!(
        "| softirq, whole system | {:.1}% | {:.1}% |",
        quiet.sys_softirq_pct, long.sys_softirq_pct
    );
    println!(
        "| busy, whole system (of {} cores) | {:.1}% | {:.1}% |",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        quiet.sys_busy_pct,
        long.sys_busy_pct
    );

    let trials_json = |v: &[(Fault, TrialStats)]| -> Value {
        v.iter()
            .map(|(f, s)| {
                json!({
                    "fault": f.name(),
                    "outage_ms": s.outage_ms,
                    "standby_holds_vip1_ms_watcher_view": s.served_ms,
                    "steps_ms": s.steps.iter().map(|t| {
                        let m: serde_json::Map<String, Value> = STEPS
                            .iter()
                            .map(|(n, st)| format!("{n} {st}"))
                            .chain(["client: first answer from node1".to_string()])
                            .zip(t.iter())
                            .map(|(k, v)| (k, json!(v)))
                            .collect();
                        m
                    }).collect::<Vec<_>>(),
                    "failed": s.failed,
                    "errors": s.errors,
                    "false_peer_dead": s.false_peer_dead,
                    "false_stall_or_ping": s.false_stall_or_ping,
                })
            })
            .collect()
    };
    let totals_json: Vec<Value> = (0..3)
        .map(|i| {
            let m: serde_json::Map<String, Value> = counter::NAMES
                .iter()
                .zip(totals.total[i])
                .map(|(n, v)| (n.to_string(), json!(v)))
                .collect();
            json!({ "node": format!("node{i}"), "counters": m })
        })
        .collect();
    let report = json!({
        "timings": { "keepalive_ms": t.keepalive_ms, "deadtime_ms": t.deadtime_ms },
        "threads_per_attacker": o.threads,
        "loadavg_before": load0.trim(),
        "loadavg_after": load1.trim(),
        "quiet": quiet.json(),
        "per_kind": per_kind.iter().map(|(kd, r)| json!({
            "kind": kd.name(),
            "expected_reasons": kd.reasons(),
            "rates": r.json(),
        })).collect::<Vec<_>>(),
        "no_fault_window": {
            "seconds": round2(long.secs),
            "rates": long.json(),
            "forged_rates": long_forged.json(),
            "false_peer_dead": window.falses.peer_dead,
            "false_stall_or_ping": window.falses.stall_or_ping,
            "link_dead": window.falses.link_dead,
            "owner_changes": window.owner_changes,
            "takeovers_or_releases": window.takeovers,
            "wrong_answers_vip1_vip2": window.wrong_answers,
            "longest_vip1_gap_ms": window.longest_gap_ms,
        },
        "control_window_no_flood": {
            "seconds": round2(control_rates.secs),
            "false_peer_dead": control.falses.peer_dead,
            "false_stall_or_ping": control.falses.stall_or_ping,
            "link_dead": control.falses.link_dead,
            "owner_changes": control.owner_changes,
            "takeovers_or_releases": control.takeovers,
            "wrong_answers_vip1_vip2": control.wrong_answers,
            "longest_vip1_gap_ms": control.longest_gap_ms,
            "system_busy_pct_of_one_core": round2(control_rates.sys_busy_pct),
        },
        "trials_no_flood": trials_json(&calm),
        "trials_flood": trials_json(&flooded),
        "xdp_counters_whole_run": totals_json,
        "udp_stack_whole_run": (0..3).map(|i| json!({
            "node": format!("node{i}"),
            "NoPorts": udp[i][0], "IgnoredMulti": udp[i][1], "InErrors": udp[i][2], "RcvbufErrors": udp[i][3],
            "dropped_before_xdp": lost(&first, &last, i),
        })).collect::<Vec<_>>(),
        "backlog_dropped_whole_run": last.softnet_dropped - first.softnet_dropped,
        "frames_sent": { "heartbeat_net": sent_total.sent[1], "service_net": sent_total.sent[0],
                         "refused_calls": sent_total.errors[0] + sent_total.errors[1] },
    });
    let path = target_dir()?.join("bench-flood.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nJSON: {}", path.display());
    drop(flood);
    drop(svc_atk);
    drop(hb_atk);
    drop(l);
    Ok(())
}
