//! Health checks in the lab: vip1's service (`hb-service`, service.rs) runs
//! on every node, node0 and node1 check it (`when = "always"`, keepalived
//! style), and the service fails instead of the node: killed with SIGKILL,
//! failing everywhere, slow under load. What the client of the service
//! sees is measured by the service's own client (`service::Poller`).
//!
//! The scenarios set the services and checks up themselves (a rolling
//! restart of node1 then node0 with the new configuration, when it
//! differs) and leave them in place: in the lab's list they come last.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::Lab;
use super::LabOptions;
use super::agents::{Layout, group_is_vip, group_name};
use super::scenarios::{INITIAL, Phases};
use super::service::{self, Services};
use super::topology::NODES;
use hb_agent::rules::step;

/// A check that fell stays down this long after passing again.
pub const HOLD_DOWN: Duration = Duration::from_secs(1);
const HOLD_DOWN_STR: &str = "1s";

/// Longest client-visible outage these scenarios accept (generous: a
/// loaded 2-core machine; the benchmark measures it).
pub const FAILOVER_MAX: Duration = Duration::from_secs(1);

/// How long a group whose checks fail everywhere must stay where it is.
pub const STAY_STILL: Duration = Duration::from_secs(3);

/// How often the service's client requests vip1 in the lab.
pub const LAB_POLL: Duration = Duration::from_micros(500);

/// Which checks vip1 gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// `type = "process"`: the node's own `hb-service-nI`, by name.
    Process,
    /// `type = "http"`, interval 10 ms, timeout 5 ms, fall 1.
    Http,
}

/// Node `i`'s checks on vip1 for `kind` (node2 runs no vip1).
pub fn checks_for(kind: Checks, i: usize) -> Vec<String> {
    if i == 2 {
        return Vec::new();
    }
    vec![match kind {
        Checks::Process => service::process_check(i, HOLD_DOWN_STR),
        Checks::Http => service::http_check("10ms", "5ms", HOLD_DOWN_STR),
    }]
}

/// The services started on every node and their client, if not yet.
pub fn start_services(l: &mut Lab) -> Result<()> {
    if l.services.is_none() {
        let s = Services::new(l.workdir(), &l.topo.nodes, &l.topo.gw, LAB_POLL)?;
        l.services = Some(s);
    }
    let s = l.services.as_mut().expect("just set");
    for i in 0..3 {
        if !s.running(i) {
            s.start(i)?;
        }
        s.set_slow(i, false)?;
    }
    Ok(())
}

/// A lab whose nodes run the service and check it with `kind` from the
/// start (what the tests and the benchmark use).
pub fn start_lab(opts: LabOptions, kind: Checks) -> Result<Lab> {
    Lab::start_with(opts, |l| {
        start_services(l)?;
        l.vip1_checks = [0, 1, 2].map(|i| checks_for(kind, i));
        Ok(())
    })
}

pub fn services(l: &mut Lab) -> Result<&mut Services> {
    l.services.as_mut().context("the services are not running")
}

/// Services running and vip1 checked with `kind`: when the checks differ,
/// node1 then node0 restarted with them (vip1 moves to node1 and back).
pub fn ensure(l: &mut Lab, kind: Checks) -> Result<()> {
    start_services(l)?;
    // The client's memory: this scenario's requests only.
    let now = l.now();
    services(l)?.poller.forget_before(now);
    let want = [0, 1, 2].map(|i| checks_for(kind, i));
    if l.vip1_checks != want {
        l.vip1_checks = want;
        let timeout = l.settle_timeout() + HOLD_DOWN;
        for i in [1, 0] {
            l.timeline.note(&format!(
                "restarting {} with {kind:?} checks on vip1",
                NODES[i].name
            ));
            if let Some(a) = l.agents[i].take() {
                a.stop(Duration::from_secs(10))?;
            }
            l.write_config(i, Layout::Seed)?;
            l.start_agent(i)?;
            l.wait_owners(INITIAL, timeout)?;
        }
    }
    let timeout = l.settle_timeout() + HOLD_DOWN;
    for i in [0, 1] {
        wait_health(l, i, "healthy", timeout)?;
    }
    l.wait_settled(INITIAL, timeout)?;
    Ok(())
}

/// Node `i`'s `status` of vip1: its health and its checks' states.
pub fn vip1_health(l: &Lab, i: usize) -> Result<(Option<String>, Vec<String>)> {
    let st = l.agent(i)?.status()?;
    let g = st
        .groups
        .iter()
        .find(|g| group_is_vip(&g.name, 0))
        .with_context(|| format!("{} has no vip1 group", NODES[i].name))?;
    let checks = g
        .checks
        .iter()
        .map(|c| format!("{} {} ({})", c.name, c.state, c.detail))
        .collect();
    Ok((g.health.clone(), checks))
}

/// Waits until node `i`'s `status` says vip1 is `want` here (`healthy`,
/// `UNHEALTHY`, `pending`).
pub fn wait_health(l: &mut Lab, i: usize, want: &str, timeout: Duration) -> Result<Duration> {
    let mut last = String::new();
    let what = format!("{} to say vip1 is {want} there", NODES[i].name);
    l.wait_for(&what, timeout, |l| match vip1_health(l, i) {
        Ok((h, c)) => {
            last = format!("{h:?}, checks {c:?}");
            h.as_deref() == Some(want)
        }
        Err(e) => {
            last = format!("{e:#}");
            false
        }
    })
    .map_err(|e| e.context(format!("its status: {last}")))
}

/// vip1's address changes in [from, to] (CLOCK_MONOTONIC ns), from every
/// node's netlink view: (acquisitions, removals).
pub fn vip1_moves(l: &Lab, from: u64, to: u64) -> (usize, usize) {
    let log = l.watcher.log.lock().unwrap();
    let mut cur = [None::<bool>; 3];
    let (mut up, mut down) = (0, 0);
    for (t, n, h) in log.iter() {
        let prev = cur[*n].replace(h[0]);
        if *t < from || *t > to || prev == Some(h[0]) || prev.is_none() {
            continue;
        }
        if h[0] { up += 1 } else { down += 1 }
    }
    (up, down)
}

/// Steps the agents logged about vip1 since `from` (an index into the
/// timeline's steps): (node, step).
fn vip1_steps_since(l: &mut Lab, from: usize) -> Vec<(&'static str, String)> {
    l.timeline.poll();
    let vip1 = group_name(0, l.opts.toml);
    l.timeline.steps[from.min(l.timeline.steps.len())..]
        .iter()
        .filter(|s| s.group.as_deref() == Some(vip1.as_str()))
        .map(|s| (s.node, s.step.clone()))
        .collect()
}

fn steps_now(l: &mut Lab) -> usize {
    l.timeline.poll();
    l.timeline.steps.len()
}

/// Waits until the client gets an answer from `node`'s service among the
/// requests that ended after `t0`: when it arrived.
fn wait_answer(l: &mut Lab, node: usize, t0: u64, timeout: Duration) -> Result<u64> {
    let what = format!("{}'s service to answer for vip1", NODES[node].name);
    l.wait_for(&what, timeout, |l| {
        l.services
            .as_ref()
            .and_then(|s| s.poller.first_answer_from(node, t0))
            .is_some()
    })?;
    let s = l.services.as_ref().expect("checked");
    Ok(s.poller.first_answer_from(node, t0).expect("checked"))
}

/// Keeps the cluster running for `d`: vip1 must stay on `holder` (its
/// address, and the client's answers), no agent may take it over or
/// release it; with `answered` (the holder's service runs), every request
/// must be answered. Fails with what moved.
fn stays(l: &mut Lab, holder: usize, d: Duration, why: &str, answered: bool) -> Result<()> {
    let (t0, s0) = (l.now(), steps_now(l));
    let end = t0 + d.as_nanos() as u64;
    let mut moved = None;
    l.wait_for(why, d * 2, |l| {
        if moved.is_none() && l.watcher.holders(0) != [holder] {
            moved = Some(format!("vip1 held by {:?}", l.watcher.holders(0)));
        }
        l.now() >= end
    })?;
    let t1 = l.now();
    let (up, down) = vip1_moves(l, t0, t1);
    let acts: Vec<String> = vip1_steps_since(l, s0)
        .into_iter()
        .filter(|(_, s)| s.starts_with("takeover.") || s.starts_with("release."))
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    let poller = &services(l)?.poller;
    let (_, failed, by) = poller.counts(t0, t1);
    let reasons = poller.failure_reasons(t0, t1);
    let others: usize = (0..3).filter(|&n| n != holder).map(|n| by[n]).sum();
    if moved.is_some() || up + down > 0 || !acts.is_empty() || others > 0 {
        bail!(
            "{why}: vip1 moved ({}; address changes: {up} up, {down} down; agents: {acts:?}; answers from other nodes: {others})",
            moved.unwrap_or_else(|| "the address stayed".into())
        );
    }
    if answered && failed > 0 {
        bail!(
            "{why}: vip1 stayed on {}, but {failed} requests to it failed ({reasons:?}; answered by node0/node1/node2: {by:?})",
            NODES[holder].name
        );
    }
    l.timeline.note(&format!(
        "vip1 stayed on {} for {d:?}: no takeover, no release, every answer from it",
        NODES[holder].name
    ));
    Ok(())
}

/// The service on node0 killed with SIGKILL: node0's process check sees
/// it die (pidfd) and hands vip1 to node1 (its check passes), which
/// answers within `FAILOVER_MAX` of the kill (the client's view: from the
/// kill until node1's service answers at the VIP). Restarted, node0's
/// check rises and vip1 goes back after `HOLD_DOWN` (and failback
/// stability), not before.
pub fn service_killed(l: &mut Lab) -> Result<Phases> {
    ensure(l, Checks::Process)?;
    service_dies_and_returns(
        l,
        |l| {
            let t = services(l)?.kill(0)?;
            l.timeline.note("node0: hb-service killed (SIGKILL)");
            Ok(t)
        },
        |l| {
            services(l)?.start(0)?;
            l.timeline.note("node0: hb-service restarted");
            Ok(())
        },
    )
}

/// vip1's HTTP check (every 10 ms, timeout 5 ms, fall 1) on node0 starts
/// to time out: its service answers 50 ms late (under load). vip1 moves to
/// node1 within `FAILOVER_MAX`; the service fast again, it comes back after
/// `HOLD_DOWN`.
pub fn http_check_times_out(l: &mut Lab) -> Result<Phases> {
    ensure(l, Checks::Http)?;
    service_dies_and_returns(
        l,
        |l| {
            let t = l.now();
            services(l)?.set_slow(0, true)?;
            l.timeline.note(&format!(
                "node0: hb-service slow (answers {} ms late)",
                service::SLOW_MS
            ));
            Ok(t)
        },
        |l| {
            services(l)?.set_slow(0, false)?;
            l.timeline.note("node0: hb-service fast again");
            Ok(())
        },
    )
}

/// `fail` breaks node0's service (returning when), vip1 must go to node1
/// within `FAILOVER_MAX`, stay there while node0's service is broken,
/// `repair` mends it, and vip1 must come back no sooner than `HOLD_DOWN`.
fn service_dies_and_returns(
    l: &mut Lab,
    fail: impl FnOnce(&mut Lab) -> Result<u64>,
    repair: impl FnOnce(&mut Lab) -> Result<()>,
) -> Result<Phases> {
    let timeout = l.settle_timeout() + HOLD_DOWN;
    let s0 = steps_now(l);
    let t0 = fail(l)?;
    let answered = wait_answer(l, 1, t0, timeout)?;
    let outage = Duration::from_nanos(answered - t0);
    l.timeline.note(&format!(
        "node1's service answers for vip1 {:.2} ms after the fault",
        outage.as_secs_f64() * 1e3
    ));
    if outage > FAILOVER_MAX {
        bail!("client-visible outage {outage:?}, more than {FAILOVER_MAX:?}");
    }
    l.wait_owners([Some(1), Some(2)], timeout)?;
    let during = [0, 1].map(|v| {
        let h = l.watcher.holders(v);
        h.iter()
            .map(|n| NODES[*n].name)
            .collect::<Vec<_>>()
            .join("+")
    });
    wait_health(l, 0, "UNHEALTHY", timeout)?;
    let steps = vip1_steps_since(l, s0);
    if !steps
        .iter()
        .any(|(n, s)| *n == "node0" && s == "check.down")
    {
        bail!("node0 logged no `check down` for vip1 (its vip1 steps: {steps:?})");
    }
    // node0 is no candidate while its service is broken: vip1 stays.
    stays(
        l,
        1,
        l.deadtime() * 5,
        "vip1 to stay on node1 while node0's service is broken",
        true,
    )?;
    let t_repair = l.now();
    repair(l)?;
    let back = wait_answer(l, 0, t_repair, timeout + HOLD_DOWN)?;
    let failback = Duration::from_nanos(back - t_repair);
    l.timeline.note(&format!(
        "node0's service answers for vip1 again {:.0} ms after the repair (hold_down {HOLD_DOWN:?})",
        failback.as_secs_f64() * 1e3
    ));
    // The repair comes before the check can pass again: failback only
    // after hold_down from then (5% for the clocks of two processes).
    if failback < HOLD_DOWN.mul_f64(0.95) {
        bail!("vip1 came back {failback:?} after the repair, before hold_down ({HOLD_DOWN:?})");
    }
    wait_health(l, 0, "healthy", timeout)?;
    l.wait_owners(INITIAL, timeout)?;
    stays(
        l,
        0,
        l.deadtime() * 5,
        "vip1 to stay on node0 after the failback",
        true,
    )?;
    let t1 = l.now();
    // From just before the fault: node0's last answers count.
    let before = t0.saturating_sub(100_000_000);
    let switches = services(l)?.poller.switches(before, t1);
    if switches != 2 {
        bail!(
            "the client saw the answering node change {switches} times (a failover and a failback: 2)"
        );
    }
    Ok(Phases {
        failover_ns: Some(answered - t0),
        during: Some(during),
        resumed_at: None,
    })
}

/// The service fails on both candidates of vip1. First on node1 then on
/// node0, which holds vip1: node0 has no healthy candidate to hand it to,
/// so it keeps it (a warning, `status` UNHEALTHY on both), with no release
/// or takeover for `STAY_STILL`. Then node0's service alone fails: vip1
/// goes to node1 (one takeover); then node1's fails too: vip1 stays on
/// node1 (no ping-pong between two failing nodes). Services restarted,
/// vip1 ends on node0.
pub fn service_fails_everywhere(l: &mut Lab) -> Result<Phases> {
    ensure(l, Checks::Process)?;
    let timeout = l.settle_timeout() + HOLD_DOWN;
    // Part 1: vip1 on node0, both services dead.
    services(l)?.kill(1)?;
    l.timeline.note("node1: hb-service killed (SIGKILL)");
    wait_health(l, 1, "UNHEALTHY", timeout)?;
    let s0 = steps_now(l);
    services(l)?.kill(0)?;
    l.timeline.note("node0: hb-service killed (SIGKILL) too");
    wait_health(l, 0, "UNHEALTHY", timeout)?;
    stays(
        l,
        0,
        STAY_STILL,
        "vip1 to stay on node0, its service failing everywhere",
        false,
    )?;
    l.timeline.poll();
    let warned = l.timeline.steps[s0..]
        .iter()
        .any(|s| s.node == "node0" && s.step.contains("no_healthy_candidate"));
    if !warned {
        bail!("node0 did not warn that no other candidate can take vip1");
    }
    let (h1, _) = vip1_health(l, 1)?;
    if h1.as_deref() != Some("UNHEALTHY") {
        bail!("node1 says vip1 is {h1:?} there, its service dead");
    }
    let during = ["node0".to_string(), "node2".to_string()];
    services(l)?.start(0)?;
    l.timeline.note("node0: hb-service restarted");
    wait_health(l, 0, "healthy", timeout + HOLD_DOWN)?;
    stays(
        l,
        0,
        l.deadtime() * 5,
        "vip1 to stay on node0, healthy again",
        true,
    )?;
    services(l)?.start(1)?;
    l.timeline.note("node1: hb-service restarted");
    wait_health(l, 1, "healthy", timeout + HOLD_DOWN)?;
    // Part 2: node0's service fails, vip1 moves; then node1's fails too.
    let t0 = services(l)?.kill(0)?;
    l.timeline.note("node0: hb-service killed (SIGKILL)");
    let answered = wait_answer(l, 1, t0, timeout)?;
    l.wait_owners([Some(1), Some(2)], timeout)?;
    wait_health(l, 0, "UNHEALTHY", timeout)?;
    services(l)?.kill(1)?;
    l.timeline.note("node1: hb-service killed (SIGKILL) too");
    wait_health(l, 1, "UNHEALTHY", timeout)?;
    stays(
        l,
        1,
        STAY_STILL,
        "vip1 to stay on node1, its service failing everywhere",
        false,
    )?;
    let t1 = l.now();
    let (up, _) = vip1_moves(l, t0, t1);
    if up != 1 {
        bail!("vip1 was taken {up} times since node0's service died (want 1: node1, once)");
    }
    // Both back: vip1 goes to node0 once, node1 takes nothing, and the
    // client is answered by node0 from then on.
    let (t2, s2) = (l.now(), steps_now(l));
    services(l)?.start_on(&[0, 1])?;
    l.timeline.note("node0, node1: hb-service restarted");
    wait_health(l, 0, "healthy", timeout + HOLD_DOWN)?;
    l.wait_owners(INITIAL, timeout + HOLD_DOWN)?;
    stays(
        l,
        0,
        l.deadtime() * 5,
        "vip1 to stay on node0, both services back",
        true,
    )?;
    let takeovers: Vec<&str> = vip1_steps_since(l, s2)
        .into_iter()
        .filter(|(_, s)| s == step::TAKING_OVER)
        .map(|(n, _)| n)
        .collect();
    let (up, _) = vip1_moves(l, t2, l.now());
    if takeovers != ["node0"] || up != 1 {
        bail!(
            "both services back, vip1 should go to node0 once: takeovers by {takeovers:?}, address up {up} times"
        );
    }
    Ok(Phases {
        failover_ns: Some(answered - t0),
        during: Some(during),
        resumed_at: None,
    })
}
