//! The seed's tests and the failures around them, each a function that
//! breaks something, waits for the cluster to react, repairs it and waits
//! for the original state, while the client keeps probing both VIPs.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::Lab;
use super::agents::Layout;
use super::topology::{NODES, VHOSTS, VIPS, VMACS};
use crate::fault::{Cable, Fault, Node as _, Teardown};
use hb_agent::cluster::LAST_MAN_STANDING_DEADTIMES;

/// Initial owners: node0 holds vip1, node2 holds vip2; node1 is the standby.
pub const INITIAL: [Option<usize>; 2] = [Some(0), Some(2)];
pub const STANDBY: usize = 1;

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    /// Longest gap between answers per VIP over the whole scenario, ms.
    pub outage_ms: [f64; 2],
    /// Time from the fault until the standby served the affected VIP(s), ms.
    pub failover_ms: Option<f64>,
    pub owner_before: [String; 2],
    pub owner_during: [String; 2],
    pub owner_after: [String; 2],
    /// Time two nodes held one VIP, per VIP, ms (whole scenario), by their
    /// addresses (netlink view).
    pub dual_ms: [f64; 2],
    /// Time two nodes answered the client for one VIP, per VIP, ms (whole
    /// scenario; see `Prober::dual_answer_ns`). An address fenced by the
    /// service lease holds but does not answer.
    pub dual_answer_ms: [f64; 2],
    /// Answers per VIP by node0, node1, node2 and unknown source MAC.
    pub answers: [[usize; 4]; 2],
    /// Of which after a hung node resumed (target: 0).
    pub dual_after_resume_ms: Option<[f64; 2]>,
    pub identity_ok: bool,
    pub identity: Vec<String>,
    pub error: Option<String>,
    /// Per VIP: HTTP requests started during the scenario and how many
    /// failed (when the lab runs its HTTP client).
    pub http: Option<[(usize, usize); 2]>,
    /// The scenario's timeline as a picture (`picture.rs`; not in the JSON).
    #[serde(skip)]
    pub picture: Option<super::picture::Picture>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.identity_ok
    }
}

pub type ScenarioFn = fn(&mut Lab) -> Result<Phases>;

/// What a scenario reports about its own phases.
#[derive(Default)]
pub struct Phases {
    pub failover_ns: Option<u64>,
    pub during: Option<[String; 2]>,
    pub resumed_at: Option<u64>,
}

pub fn all() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        ("node0 graceful stop + restart", |l| graceful_stop(l, 0)),
        ("node0 service cable pulled + plugged", |l| cable_pull(l, 0)),
        ("node0 power off + on", |l| power_off(l, &[0])),
        ("node0 hung (SIGSTOP) + resumed", |l| hang(l, 0)),
        ("node2 graceful stop + restart", |l| graceful_stop(l, 2)),
        ("node2 service cable pulled + plugged", |l| cable_pull(l, 2)),
        ("node2 power off + on", |l| power_off(l, &[2])),
        ("node2 hung (SIGSTOP) + resumed", |l| hang(l, 2)),
        ("node0 and node2 down together", |l| power_off(l, &[0, 2])),
        ("heartbeat network cut", heartbeat_net_cut),
        ("flapping heartbeat link on node0", flapping_link),
        ("flapping service cable on node0", flapping_cable),
        (
            "vip1 on three candidates: node0, then node2 power off",
            last_man_standing,
        ),
        // Health checks (health.rs): they leave vip1's checks and the
        // services in place, so they come last.
        (
            "vip1's service on node0 killed (SIGKILL) + restarted",
            super::health::service_killed,
        ),
        (
            "vip1's service failing on node0 and node1",
            super::health::service_fails_everywhere,
        ),
        (
            "vip1's HTTP check on node0 times out (slow service) + recovers",
            super::health::http_check_times_out,
        ),
    ]
}

fn vip_of(node: usize) -> usize {
    if node == 0 { 0 } else { 1 }
}

fn owners_str(l: &Lab) -> [String; 2] {
    [0, 1].map(|v| {
        let h = l.watcher.holders(v);
        if h.is_empty() {
            "-".to_string()
        } else {
            h.iter()
                .map(|n| NODES[*n].name)
                .collect::<Vec<_>>()
                .join("+")
        }
    })
}

/// Runs one scenario with its measurements.
pub fn run(l: &mut Lab, name: &str, f: impl FnOnce(&mut Lab) -> Result<Phases>) -> ScenarioResult {
    let before = owners_str(l);
    // t0 right after the timeline's origin: the picture puts the prober's
    // answers (from t0) and the timeline's entries (from its origin) on
    // one axis.
    l.timeline.begin(name);
    let t0 = l.now();
    let r = f(l);
    let t1 = l.now();
    if std::env::var_os("HB_LAB_RUNS").is_some() {
        for v in 0..2 {
            for (n, a, b, c) in l.prober.runs(v, t0, t1) {
                eprintln!(
                    "vip{} {n:?} {:.1}..{:.1} ms x{c}",
                    v + 1,
                    a as f64 / 1e6,
                    b as f64 / 1e6
                );
            }
        }
    }
    // Identity is checked once every agent agrees the cluster is back to
    // its initial owners, not merely once the addresses say so.
    let timeout = l.settle_timeout();
    let r = r.and_then(|p| l.wait_settled(INITIAL, timeout).map(|_| p));
    let (phases, error) = match r {
        Ok(p) => (p, None),
        Err(e) => (Phases::default(), Some(format!("{e:#}"))),
    };
    let (identity_ok, identity) = if error.is_none() {
        check_identity(l)
    } else {
        (false, vec![])
    };
    // Requests started up to t1 have all ended (answered or timed out)
    // once a request's timeout has passed.
    let http = l.http.is_some().then(|| {
        let end = t1 + super::http::REQUEST_TIMEOUT.as_nanos() as u64;
        let _ = l.wait_for("the last requests", super::http::REQUEST_TIMEOUT * 4, |l| {
            l.now() > end
        });
        let c = &l.http.as_ref().expect("checked").0;
        if std::env::var_os("HB_LAB_RUNS").is_some() {
            for (v, a, b, n, why) in c.failure_runs(t0, t1) {
                eprintln!(
                    "vip{} HTTP failed {:.1}..{:.1} ms x{n} (first: {why})",
                    v + 1,
                    (a - t0) as f64 / 1e6,
                    (b - t0) as f64 / 1e6
                );
            }
        }
        c.failed(t0, t1)
    });
    // The picture runs on to here: the settling and its steps included.
    let t_end = l.now();
    l.timeline.poll();
    let mut result = ScenarioResult {
        name: name.to_string(),
        outage_ms: [0, 1].map(|v| l.prober.outage(v, t0, t1) as f64 / 1e6),
        failover_ms: phases.failover_ns.map(|n| n as f64 / 1e6),
        owner_before: before,
        owner_during: phases.during.unwrap_or_else(|| ["?".into(), "?".into()]),
        owner_after: owners_str(l),
        dual_ms: [0, 1].map(|v| l.watcher.dual_ns(v, t0, t1) as f64 / 1e6),
        dual_answer_ms: [0, 1].map(|v| l.prober.dual_answer_ns(v, t0, t1) as f64 / 1e6),
        answers: [0, 1].map(|v| l.prober.answers_by_node(v, t0, t1)),
        dual_after_resume_ms: phases
            .resumed_at
            .map(|r| [0, 1].map(|v| l.watcher.dual_ns(v, r, t1) as f64 / 1e6)),
        identity_ok,
        identity,
        error,
        http,
        picture: None,
    };
    result.picture = Some(super::picture::Picture::from_lab(l, &result, t0, t_end));
    result
}

pub fn during_owners(node_down: &[usize]) -> [Option<usize>; 2] {
    let mut w = INITIAL;
    for n in node_down {
        w[vip_of(*n)] = Some(STANDBY);
    }
    w
}

/// The seed's test 1: stop the primary's heartbeat gracefully; the standby
/// takes over; restarting the primary takes it back (auto_failback).
pub fn graceful_stop(l: &mut Lab, i: usize) -> Result<Phases> {
    fail_over_and_back(l, &[i], Fault::Graceful)
}

/// The seed's test 2: the primary's public cable is pulled; it loses its ping
/// node, releases, the standby takes over; plugged back, it fails back.
pub fn cable_pull(l: &mut Lab, i: usize) -> Result<Phases> {
    fail_over_and_back(l, &[i], Fault::CablePull(Cable::Service))
}

/// The seed's test 3: power off (agent killed, addresses gone with the RAM,
/// both cables dead); power on = a fresh boot and agent start.
pub fn power_off(l: &mut Lab, nodes: &[usize]) -> Result<Phases> {
    fail_over_and_back(l, nodes, POWER_OFF)
}

/// Power goes at once: the agent must not see its links die and react (it
/// would hand over like a pulled cable), so it is frozen, both cables cut
/// within microseconds, then killed (its exit, closing BPF objects, takes
/// tens of ms while the kernel would still answer) and wiped.
const POWER_OFF: Fault = Fault::PowerOff(Teardown::AtCut);

/// `f` inflicted on `nodes`; the others take their groups over; `f`
/// undone, the groups go home.
fn fail_over_and_back(l: &mut Lab, nodes: &[usize], f: Fault) -> Result<Phases> {
    let t0 = l.now();
    for &i in nodes {
        l.inflict(f, i)?;
    }
    let timeout = l.settle_timeout();
    l.wait_owners(during_owners(nodes), timeout)?;
    let failover_ns = l.now() - t0;
    let during = owners_str(l);
    for &i in nodes {
        l.recover(f, i)?;
    }
    l.wait_owners(INITIAL, timeout)?;
    Ok(Phases {
        failover_ns: Some(failover_ns),
        during: Some(during),
        resumed_at: None,
    })
}

/// Quorum with three candidates (issue 12, corpus case 38): vip1 may run
/// on all three nodes. node0 fails, node2 (next in priority) takes vip1
/// with two of three visible; a while later node2 fails too, and node1,
/// the last man standing, takes both groups: node0 dead for more than the
/// window no longer counts (Heartbeat took over there too). Power back on,
/// the groups go home; the seed's layout is restored before and after, by
/// rolling restarts that keep both VIPs served.
pub fn last_man_standing(l: &mut Lab) -> Result<Phases> {
    // Standby first, then node0 (its vip1 goes to node1: node2 does not
    // run it yet), then node2.
    l.reconfigure(Layout::Vip1OnAll, [1, 0, 2])?;
    let timeout = l.settle_timeout();
    l.inflict(POWER_OFF, 0)?;
    l.wait_owners([Some(2), Some(2)], timeout)?;
    // The rule is one of time: a candidate dead for LAST_MAN_STANDING
    // deadtimes while the others had quorum stops being expected. Nothing
    // to await but the clock; twice the window.
    std::thread::sleep(l.deadtime() * (2 * LAST_MAN_STANDING_DEADTIMES as u32));
    let t0 = l.now();
    l.inflict(POWER_OFF, 2)?;
    l.wait_owners([Some(1), Some(1)], timeout)
        .context("node1, the last candidate standing, should take vip1 and vip2")?;
    let failover_ns = l.now() - t0;
    let during = owners_str(l);
    l.recover(POWER_OFF, 2)?;
    l.recover(POWER_OFF, 0)?;
    l.wait_owners(INITIAL, timeout)?;
    // node2 first (it stops running vip1), so that node0's vip1 goes to
    // node1, which node0's seed layout knows.
    l.reconfigure(Layout::Seed, [2, 0, 1])?;
    Ok(Phases {
        failover_ns: Some(failover_ns),
        during: Some(during),
        resumed_at: None,
    })
}

/// The seed's test 4: the primary hangs (SIGSTOP). Its kernel still holds
/// the VIP (a SIGSTOP is not a kernel hang) but stops answering for it when
/// its service lease lapses, before the standby takes over; on SIGCONT the
/// primary gives up the address at once, then fails back normally.
pub fn hang(l: &mut Lab, i: usize) -> Result<Phases> {
    let t0 = l.now();
    let v = vip_of(i);
    l.inflict(Fault::Hang, i)?;
    let timeout = l.settle_timeout();
    l.wait_for("the standby to take over", timeout, |l| {
        l.watcher.holders(v).contains(&STANDBY)
    })?;
    let failover_ns = l.now() - t0;
    let during = owners_str(l);
    // Let it stay frozen a few deadtimes, as a real hang would.
    let freeze = l.deadtime() * 3;
    let hold = l.now() + freeze.as_nanos() as u64;
    l.wait_for("the freeze to last", freeze * 2, |l| l.now() >= hold)?;
    let resumed = l.now();
    l.recover(Fault::Hang, i)?;
    l.wait_owners(INITIAL, timeout)?;
    Ok(Phases {
        failover_ns: Some(failover_ns),
        during: Some(during),
        resumed_at: Some(resumed),
    })
}

/// kill -9 of node0's agent and an immediate restart, within deadtime (so
/// run it with a deadtime of a second or more): the new agent finds vip1's
/// resources in place and adopts the group; node1 never takes over and the
/// client sees no outage.
pub fn agent_restart(l: &mut Lab) -> Result<Phases> {
    let host = l.agent(0)?.hostname()?;
    l.timeline.note("kill -9 of node0's agent, restart at once");
    l.node(0).kill()?;
    l.start_agent_as(0, &host)?;
    let during = owners_str(l);
    // Prove the adoption: the new agent reports node0 holding vip1 itself,
    // and nobody moved meanwhile.
    let timeout = l.settle_timeout();
    l.wait_for("node0's new agent to hold vip1", timeout, |l| {
        l.agents[0]
            .as_ref()
            .and_then(|a| a.status().ok())
            .is_some_and(|s| {
                s.groups
                    .iter()
                    .any(|g| super::agents::group_is_vip(&g.name, 0) && g.local == "held")
            })
    })?;
    hold_steady(l, l.deadtime() * 2)?;
    Ok(Phases {
        failover_ns: None,
        during: Some(during),
        resumed_at: None,
    })
}

/// Only the heartbeat network (eth2) is cut. Heartbeats also travel on the
/// service network (`bcast eth2 eth0`), so nobody may move: no split brain.
pub fn heartbeat_net_cut(l: &mut Lab) -> Result<Phases> {
    let cut = Fault::CablePull(Cable::Heartbeat);
    for i in 0..3 {
        l.inflict(cut, i)?;
    }
    let during = hold_steady(l, l.deadtime() * 10)?;
    for i in 0..3 {
        l.recover(cut, i)?;
    }
    hold_steady(l, l.deadtime() * 3)?;
    Ok(Phases {
        failover_ns: None,
        during: Some(during),
        resumed_at: None,
    })
}

/// node0's heartbeat link flaps (down and up every half deadtime): with the
/// second link alive, nothing may move.
pub fn flapping_link(l: &mut Lab) -> Result<Phases> {
    l.timeline.note("flapping node0's eth2 20 times");
    let half = l.deadtime() / 2;
    let cut = Fault::CablePull(Cable::Heartbeat);
    for k in 0..40 {
        match k % 2 {
            0 => cut.inflict(&mut l.node(0))?,
            _ => cut.recover(&mut l.node(0))?,
        }
        hold_steady(l, half)?;
    }
    cut.recover(&mut l.node(0))?;
    l.timeline.note("node0's eth2 plugged for good");
    let during = hold_steady(l, l.deadtime() * 3)?;
    Ok(Phases {
        failover_ns: None,
        during: Some(during),
        resumed_at: None,
    })
}

/// How often the client may see vip1's answering node change while node0's
/// service cable flaps: the first losses move it (a failover is never
/// delayed) and fail it back, then flap dampening keeps it on node1 (the
/// simulator's bound is 5 moves; before dampening, 86 moves in 10 s).
pub const FLAP_SWITCHES_MAX: usize = 6;

/// node0's service cable down and up every 50 ms for 10 s (the case that
/// moved vip1 86 times), then plugged for good: vip1 must stay (almost)
/// still meanwhile and fail back after. Undamped, the client saw 7 changes
/// in the first 5 s here (the lab's `deadping 60` pings once a second, so
/// node0 finds its ping node again at most that often), 4-5 damped.
pub fn flapping_cable(l: &mut Lab) -> Result<Phases> {
    l.timeline
        .note("flapping node0's eth0 cable every 50 ms for 10 s");
    let t0 = l.now();
    let period = Duration::from_millis(50);
    let pull = Fault::CablePull(Cable::Service);
    for k in 0..200 {
        match k % 2 {
            0 => pull.inflict(&mut l.node(0))?,
            _ => pull.recover(&mut l.node(0))?,
        }
        // Pacing the fault, not waiting for the cluster: the timeline
        // goes on meanwhile.
        let end = l.now() + period.as_nanos() as u64;
        let _ = l.wait_for("flap", period * 2, |l| l.now() >= end);
    }
    pull.recover(&mut l.node(0))?;
    let t1 = l.now();
    let during = owners_str(l);
    let switches = l.prober.answer_switches(0, t0, t1);
    l.timeline.note(&format!(
        "cable plugged for good; vip1's answering node changed {switches} times while it flapped"
    ));
    if switches > FLAP_SWITCHES_MAX {
        bail!("vip1's answering node changed {switches} times while node0's cable flapped");
    }
    // Dampening holds node0 back for at most 30 deadtimes once it is steady.
    let timeout = l.settle_timeout() + l.deadtime() * 32;
    l.wait_owners(INITIAL, timeout)?;
    Ok(Phases {
        failover_ns: None,
        during: Some(during),
        resumed_at: None,
    })
}

/// Waits `d` while asserting that the initial owners stay put.
fn hold_steady(l: &mut Lab, d: Duration) -> Result<[String; 2]> {
    let end = l.now() + d.as_nanos() as u64;
    let mut moved = None;
    let _ = l.wait_for("steady", d * 2, |l| {
        if moved.is_none()
            && (0..2).any(|v| l.watcher.holders(v) != INITIAL[v].into_iter().collect::<Vec<_>>())
        {
            moved = Some(owners_str(l));
        }
        l.now() >= end
    });
    if let Some(m) = moved {
        bail!(
            "ownership moved although it should not have: vip1 {} vip2 {}",
            m[0],
            m[1]
        );
    }
    Ok(owners_str(l))
}

/// After settling: every running node has its expected IP, MAC and
/// hostname: node0 vip1/VMAC1/nodevir, node2 vip2/VMAC2/nodevir2, node1 its
/// own, and every eth0 its real MAC and address.
pub fn check_identity(l: &Lab) -> (bool, Vec<String>) {
    let mut notes = Vec::new();
    let mut ok = true;
    for (i, n) in NODES.iter().enumerate() {
        let ns = &l.topo.nodes[i];
        let held: Vec<usize> = INITIAL
            .iter()
            .enumerate()
            .filter(|(_, o)| **o == Some(i))
            .map(|(v, _)| v)
            .collect();
        let addrs = ns.exec(&["ip", "-o", "addr", "show"]).unwrap_or_default();
        let links = ns.exec(&["ip", "-o", "link", "show"]).unwrap_or_default();
        let eth0 = links.lines().find(|x| x.contains(": eth0")).unwrap_or("");
        let mut bad = |what: String| {
            ok = false;
            notes.push(format!("{}: {what}", n.name));
        };
        if !eth0.to_lowercase().contains(n.mac) {
            bad(format!("eth0 MAC is not the real {}", n.mac));
        }
        if !addrs.contains(&format!("{}/24", n.svc_ip)) {
            bad(format!("eth0 lost its address {}", n.svc_ip));
        }
        for v in 0..2 {
            let has = addrs.contains(&format!("inet {}/", VIPS[v]));
            if has != held.contains(&v) {
                bad(format!(
                    "{} {}",
                    if has { "holds" } else { "lacks" },
                    VIPS[v]
                ));
            }
            // The interface carrying a held VIP must carry its virtual MAC
            // (parked macvlan children keep the MAC but hold no address).
            if held.contains(&v)
                && let Some(dev) = addrs
                    .lines()
                    .find(|x| x.contains(&format!("inet {}/", VIPS[v])))
                    .and_then(|x| x.split_whitespace().nth(1))
            {
                let dev = dev.split('@').next().unwrap_or(dev);
                let link = ns
                    .exec(&["ip", "-o", "link", "show", "dev", dev])
                    .unwrap_or_default();
                if !link.to_lowercase().contains(&VMACS[v].to_lowercase()) {
                    bad(format!(
                        "{} is on {dev} without the virtual MAC {}",
                        VIPS[v], VMACS[v]
                    ));
                }
            }
        }
        if let Some(a) = &l.agents[i] {
            let want = held.last().map(|v| VHOSTS[*v]).unwrap_or(n.name);
            match a.hostname() {
                Ok(h) if h == want => {}
                Ok(h) => bad(format!("hostname {h}, expected {want}")),
                Err(e) => bad(format!("hostname unreadable: {e}")),
            }
        }
    }
    if ok {
        notes.push("IP, MAC and hostname right on every node".into());
    }
    (ok, notes)
}
