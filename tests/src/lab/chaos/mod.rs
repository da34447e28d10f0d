//! A seeded random fault campaign on the lab (`cargo xtask chaos`): faults
//! drawn from the shared vocabulary (`fault.rs`), one or two nodes at a
//! time, held for a random while, then undone; after each, once settled,
//! the invariants are checked. The same seed draws the same faults.

pub mod kind;
pub mod usage;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Lab;
use super::scenarios::{self, INITIAL, Phases, ScenarioResult};
use super::topology::NODES;
use kind::Kind;

/// The candidates of vip1 and vip2 in the seed's layout.
const CANDIDATES: [[usize; 2]; 2] = [[0, 1], [2, 1]];

/// Longest outage a VIP may see while one of its candidates is untouched:
/// generous against the lab's detection (a deadtime) plus a takeover, and
/// the quorum wait of a node that came back (the tests guard bounds, the
/// lab's table measures).
pub const OUTAGE_BOUND: Duration = Duration::from_secs(3);

/// One draw: a fault on one node, or two on different nodes at once, held
/// for `hold` before they are undone (a hang shorter or longer than a
/// deadtime, a cable out for a while).
#[derive(Clone, Debug)]
pub struct Draw {
    pub faults: Vec<(usize, Kind)>,
    pub hold: Duration,
    /// The lab's deadtime, which names a hang short or long.
    pub deadtime: Duration,
}

impl Draw {
    pub fn name(&self) -> String {
        self.faults
            .iter()
            .map(|(i, k)| {
                format!(
                    "{} {}",
                    NODES[*i].name,
                    k.describe(self.hold, self.deadtime)
                )
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The kind of fault, for the summary: the first one's, `+` another
    /// when two nodes fail together (both primaries named as such).
    pub fn kind(&self) -> String {
        let first = self.faults[0].1.name(self.hold, self.deadtime);
        match self.faults.as_slice() {
            [_] => first,
            [(a, _), (b, _)] if a + b == 2 && a != b => format!("{first} + the other primary"),
            _ => format!("{first} + another node"),
        }
    }

    /// The nodes out of service while the draw holds.
    fn out_of_service(&self) -> Vec<usize> {
        self.faults
            .iter()
            .flat_map(|(i, k)| k.out_of_service(*i))
            .collect()
    }

    /// VIPs with a candidate this draw leaves in service: they must stay
    /// served.
    pub fn must_serve(&self) -> [bool; 2] {
        let out = self.out_of_service();
        [0, 1].map(|v| CANDIDATES[v].iter().any(|c| !out.contains(c)))
    }

    /// Nothing in it warrants a move (a heartbeat cable, a reload, the
    /// ping node lost by all): every VIP must stay where it is.
    pub fn moves_nothing(&self) -> bool {
        self.out_of_service().is_empty()
    }
}

/// The next draw from `rng`; holds up to six deadtimes. A fifth of the
/// draws hit two nodes at once, a third of those both primaries.
pub fn draw(rng: &mut fastrand::Rng, deadtime: Duration, with_flood: bool) -> Draw {
    let k = kind::draw_kind(rng, with_flood);
    let first = match k.needs_primary() {
        true => [0, 2][rng.usize(0..2)],
        false => rng.usize(0..3),
    };
    let mut faults = vec![(first, k)];
    if !k.alone() && rng.u8(0..5) == 0 {
        let other = match first != kind::STANDBY && rng.u8(0..3) == 0 {
            true => 2 - first,
            false => (first + rng.usize(1..3)) % 3,
        };
        let k2 = loop {
            let k2 = kind::draw_kind(rng, with_flood);
            if !(k2.alone() || k2.needs_primary() && other == kind::STANDBY) {
                break k2;
            }
        };
        faults.push((other, k2));
    }
    let hold = deadtime.mul_f64(rng.f64() * 6.0);
    Draw {
        faults,
        hold,
        deadtime,
    }
}

/// Inflicts `d`, holds, undoes it (last first) and waits for the initial
/// owners; flap dampening may hold a failback back up to 30 deadtimes.
pub fn inflict_and_recover(l: &mut Lab, d: &Draw) -> Result<Phases> {
    let t0 = l.now();
    for &(i, k) in &d.faults {
        k.inflict(l, i, &k.describe(d.hold, d.deadtime))?;
    }
    let end = l.now() + d.hold.as_nanos() as u64;
    l.wait_for(
        "the fault's hold",
        d.hold * 2 + Duration::from_secs(1),
        |l| l.now() >= end,
    )?;
    let during = [0, 1].map(|v| {
        let h = l.watcher.holders(v);
        h.iter()
            .map(|n| NODES[*n].name)
            .collect::<Vec<_>>()
            .join("+")
    });
    for &(i, k) in d.faults.iter().rev() {
        k.recover(l, i)?;
    }
    let timeout = l.settle_timeout() + l.deadtime() * 32;
    l.wait_settled(INITIAL, timeout)?;
    Ok(Phases {
        failover_ns: Some(l.now() - t0),
        during: Some(during),
        resumed_at: None,
    })
}

/// What went wrong in one fault's run, if anything.
pub fn violations(l: &mut Lab, d: &Draw, r: &ScenarioResult) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(e) = &r.error {
        v.push(format!("did not settle: {e}"));
    }
    for (vip, ms) in r.dual_answer_ms.iter().enumerate() {
        if *ms > 0.0 {
            v.push(format!("two nodes answered vip{} for {ms:.1} ms", vip + 1));
        }
    }
    let bound = OUTAGE_BOUND.as_secs_f64() * 1e3;
    for (vip, (serve, ms)) in d.must_serve().iter().zip(r.outage_ms).enumerate() {
        if *serve && ms > bound {
            v.push(format!(
                "vip{} unanswered for {ms:.1} ms with a candidate untouched (bound {bound} ms)",
                vip + 1
            ));
        }
    }
    // A flood may cost requests (it shares the CPU with everything); it
    // must not move a group, checked below.
    if let Some(http) = r.http
        && d.moves_nothing()
        && !d.faults.iter().any(|(_, k)| *k == Kind::Flood)
    {
        for (vip, (_, failed)) in http.iter().enumerate() {
            if *failed > 0 {
                v.push(format!(
                    "{failed} HTTP request(s) to vip{} failed although nothing warranted a move",
                    vip + 1
                ));
            }
        }
    }
    // A failover that happens twice: more takeovers than the draw's faults
    // account for (two slack for a failback held back and retried).
    let bound = d.faults.iter().map(|(_, k)| k.moves()).sum::<usize>() + 2;
    for vip in 0..2 {
        let takes = l
            .timeline
            .steps
            .iter()
            .filter(|s| {
                s.at >= 0.0
                    && s.step == hb_agent::rules::step::TAKING_OVER
                    && s.group
                        .as_deref()
                        .is_some_and(|g| super::agents::group_is_vip(g, vip))
            })
            .count();
        if takes > bound {
            v.push(format!(
                "vip{} taken over {takes} times (the draw accounts for {bound})",
                vip + 1
            ));
        }
    }
    if d.moves_nothing() {
        for (vip, by_node) in r.answers.iter().enumerate() {
            if by_node[..3].iter().filter(|n| **n > 0).count() > 1 {
                v.push(format!(
                    "vip{} changed hands although nothing warranted it",
                    vip + 1
                ));
            }
        }
    }
    if r.error.is_none() && !r.identity_ok {
        v.push(format!("identity: {}", r.identity.join("; ")));
    }
    for (node, agent) in NODES.iter().zip(l.agents.iter_mut()) {
        match agent.as_mut().map(|a| a.proc.running()) {
            Some(true) => {}
            Some(false) => v.push(format!("{}'s agent died", node.name)),
            None => v.push(format!("{} has no agent after recovery", node.name)),
        }
    }
    v
}

/// One fault of the campaign, measured.
pub struct Outcome {
    pub draw: Draw,
    pub result: ScenarioResult,
    pub violations: Vec<String>,
}

/// What to run: `faults` draws or until `until`, whichever comes first.
pub struct Plan {
    pub seed: u64,
    pub faults: Option<usize>,
    pub until: Option<Instant>,
    pub stop_on_violation: bool,
}

/// A campaign's results: each fault, and every agent's usage before the
/// first and after each.
pub struct Report {
    pub seed: u64,
    pub outcomes: Vec<Outcome>,
    pub usage: Vec<Vec<usage::Usage>>,
}

impl Report {
    pub fn lives(&self) -> Vec<usage::Life> {
        usage::lives(&self.usage)
    }

    /// Every violation: the faults', and agents that grew.
    pub fn violations(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .outcomes
            .iter()
            .enumerate()
            .flat_map(|(k, o)| {
                o.violations
                    .iter()
                    .map(move |x| format!("fault {} ({}): {x}", k + 1, o.draw.name()))
            })
            .collect();
        v.extend(usage::growth_violations(&self.lives()));
        v
    }

    /// Per fault kind, then the agents' usage: Markdown.
    pub fn tables(&self) -> String {
        format!("{}\n{}", table(&self.outcomes), usage::table(&self.lives()))
    }

    pub fn json(&self) -> serde_json::Value {
        let faults: Vec<serde_json::Value> = self
            .outcomes
            .iter()
            .enumerate()
            .map(|(k, o)| {
                serde_json::json!({
                    "fault": k + 1,
                    "name": o.draw.name(),
                    "kind": o.draw.kind(),
                    "hold_ms": o.draw.hold.as_secs_f64() * 1e3,
                    "must_serve": o.draw.must_serve(),
                    "outage_ms": o.result.outage_ms,
                    "dual_answer_ms": o.result.dual_answer_ms,
                    "http_requests_failed": o.result.http,
                    "violations": o.violations,
                })
            })
            .collect();
        serde_json::json!({
            "seed": self.seed,
            "faults": faults,
            "agents": self.lives(),
            "violations": self.violations(),
        })
    }
}

/// Runs the draws of `plan` on `l`.
pub fn campaign(l: &mut Lab, plan: &Plan) -> Result<Report> {
    let seed = plan.seed;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut report = Report {
        seed,
        outcomes: Vec::new(),
        usage: vec![usage::sample(l)],
    };
    let of = plan.faults.map_or("?".to_string(), |n| n.to_string());
    for k in 0.. {
        if plan.faults.is_some_and(|n| k >= n) || plan.until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        if super::ABORT.load(std::sync::atomic::Ordering::Relaxed) {
            bail!("interrupted");
        }
        let d = draw(&mut rng, l.deadtime(), l.flood.is_some());
        let name = format!("fault {} of {of} (seed {seed}): {}", k + 1, d.name());
        let t0 = l.now();
        let result = scenarios::run(l, &name, |l| inflict_and_recover(l, &d));
        if let Some((c, _)) = &l.http {
            c.forget_before(t0);
        }
        let violations = violations(l, &d, &result);
        let failed = !violations.is_empty();
        if !l.opts.verbose {
            // One line per fault: a long campaign shows where it is.
            println!(
                "fault {} of {of}: {} | outage {:.1} / {:.1} ms{}",
                k + 1,
                d.name(),
                result.outage_ms[0],
                result.outage_ms[1],
                if failed { " | VIOLATION" } else { "" }
            );
        }
        if failed {
            eprintln!(
                "VIOLATION at fault {} (seed {seed}, {}):\n  {}",
                k + 1,
                d.name(),
                violations.join("\n  ")
            );
            for (i, node) in NODES.iter().enumerate() {
                eprintln!("--- last lines of {}'s log ---", node.name);
                eprintln!("{}", l.log_tail(i, 20));
            }
        }
        report.outcomes.push(Outcome {
            draw: d,
            result,
            violations,
        });
        if failed {
            if plan.stop_on_violation {
                break;
            }
            l.restore()?;
        }
        report.usage.push(usage::sample(l));
    }
    Ok(report)
}

/// Per fault kind: count, outage of the affected VIP(s) p50/p99/max,
/// violations; Markdown.
pub fn table(out: &[Outcome]) -> String {
    let mut kinds: Vec<String> = out.iter().map(|o| o.draw.kind()).collect();
    kinds.sort();
    kinds.dedup();
    let mut s = String::from(
        "| fault | count | outage p50 | outage p99 | outage max | HTTP requests failed | violations |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for k in kinds {
        let of: Vec<&Outcome> = out.iter().filter(|o| o.draw.kind() == k).collect();
        let mut outages: Vec<f64> = of
            .iter()
            .map(|o| o.result.outage_ms[0].max(o.result.outage_ms[1]))
            .collect();
        outages.sort_by(f64::total_cmp);
        let pct = |p: f64| outages[((outages.len() - 1) as f64 * p).round() as usize];
        let (sent, failed) = of
            .iter()
            .filter_map(|o| o.result.http)
            .flatten()
            .fold((0, 0), |(s, f), (a, b)| (s + a, f + b));
        s.push_str(&format!(
            "| {k} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {failed} of {sent} | {} |\n",
            of.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0),
            of.iter().map(|o| o.violations.len()).sum::<usize>()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Cable, Fault};

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let dt = Duration::from_millis(60);
        let names = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..50)
                .map(|_| {
                    let d = draw(&mut rng, dt, false);
                    (d.name(), d.hold)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(7), names(7));
        assert_ne!(names(7), names(8));
    }

    #[test]
    fn draws_cover_every_kind_and_two_nodes_on_distinct_nodes() {
        let dt = Duration::from_millis(60);
        let mut rng = fastrand::Rng::with_seed(1);
        let draws: Vec<Draw> = (0..2000).map(|_| draw(&mut rng, dt, true)).collect();
        let mut names: Vec<String> = draws.iter().map(|d| d.kind()).collect();
        names.sort();
        names.dedup();
        for k in [
            "graceful stop",
            "cable pull",
            "heartbeat cable pull",
            "both cables pull",
            "power off",
            "hang < deadtime",
            "hang > deadtime",
            "service link flaps",
            "heartbeat link flaps",
            "kill -9 mid release",
            "kill -9 of the taker mid takeover",
            "SIGHUP, good config",
            "SIGHUP, broken config",
            "standby command",
            "ping node unreachable",
            "forged-heartbeat flood",
        ] {
            assert!(names.iter().any(|n| n == k), "{k:?} never drawn: {names:?}");
        }
        assert!(names.iter().any(|n| n.ends_with("+ the other primary")));
        let pairs: Vec<&Draw> = draws.iter().filter(|d| d.faults.len() == 2).collect();
        assert!(!pairs.is_empty());
        assert!(pairs.iter().all(|d| d.faults[0].0 != d.faults[1].0));
        for d in &draws {
            for (i, k) in &d.faults {
                assert!(!(k.needs_primary() && *i == kind::STANDBY), "{}", d.name());
            }
            assert!(d.faults.len() == 1 || d.faults.iter().all(|(_, k)| !k.alone()));
        }
    }

    fn of(faults: Vec<(usize, Kind)>) -> Draw {
        Draw {
            faults,
            hold: Duration::ZERO,
            deadtime: Duration::from_millis(60),
        }
    }

    #[test]
    fn a_vip_must_stay_served_while_one_of_its_candidates_is_untouched() {
        let hang = Kind::Fault(Fault::Hang);
        assert_eq!(of(vec![(0, hang)]).must_serve(), [true, true]);
        assert_eq!(of(vec![(1, hang)]).must_serve(), [true, true]);
        let both = of(vec![(0, hang), (1, Kind::Fault(Fault::Graceful))]);
        assert_eq!(both.must_serve(), [false, true]);
        let taker = of(vec![(0, Kind::KillTakerMidTakeover { delay_us: 0 })]);
        assert_eq!(
            taker.must_serve(),
            [false, true],
            "the standby is killed too"
        );
    }

    #[test]
    fn what_takes_no_node_out_of_service_must_move_nothing() {
        let hb = Kind::Fault(Fault::CablePull(Cable::Heartbeat));
        assert!(of(vec![(0, hb), (1, Kind::Reload { broken: true })]).moves_nothing());
        assert!(of(vec![(2, Kind::PingLoss)]).moves_nothing());
        assert!(!of(vec![(0, hb), (1, Kind::Standby)]).moves_nothing());
    }
}
