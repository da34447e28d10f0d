//! A seeded random fault campaign on the lab (`cargo xtask chaos`): faults
//! drawn from the shared vocabulary (`fault.rs`), one or two nodes at a
//! time, held for a random while, then undone; after each, once settled,
//! the invariants are checked. The same seed draws the same faults.

use std::time::Duration;

use anyhow::{Result, bail};

use super::Lab;
use super::scenarios::{self, INITIAL, Phases, ScenarioResult};
use super::topology::NODES;
use crate::fault::{Cable, Fault, Teardown};

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
    pub faults: Vec<(usize, Fault)>,
    pub hold: Duration,
}

impl Draw {
    pub fn name(&self) -> String {
        self.faults
            .iter()
            .map(|(i, f)| format!("{} {}", NODES[*i].name, f.name()))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The kind of fault, for the summary: the first one's, `+` another
    /// when two nodes fail together.
    pub fn kind(&self) -> String {
        let first = self.faults[0].1.name();
        match self.faults.len() {
            1 => first.to_string(),
            _ => format!("{first} + another node"),
        }
    }

    /// VIPs with a candidate this draw leaves alone: they must stay served.
    pub fn must_serve(&self) -> [bool; 2] {
        [0, 1].map(|v| {
            CANDIDATES[v]
                .iter()
                .any(|c| self.faults.iter().all(|(i, _)| i != c))
        })
    }
}

const KINDS: [Fault; 5] = [
    Fault::Graceful,
    Fault::CablePull(Cable::Service),
    Fault::CablePull(Cable::Heartbeat),
    Fault::PowerOff(Teardown::AtCut),
    Fault::Hang,
];

/// The next draw from `rng`; holds up to six deadtimes.
pub fn draw(rng: &mut fastrand::Rng, deadtime: Duration) -> Draw {
    let first = rng.usize(0..3);
    let mut faults = vec![(first, KINDS[rng.usize(0..KINDS.len())])];
    if rng.u8(0..5) == 0 {
        let other = (first + rng.usize(1..3)) % 3;
        faults.push((other, KINDS[rng.usize(0..KINDS.len())]));
    }
    let hold = deadtime.mul_f64(rng.f64() * 6.0);
    Draw { faults, hold }
}

/// Inflicts `d`, holds, undoes it (last first) and waits for the initial
/// owners; flap dampening may hold a failback back up to 30 deadtimes.
pub fn inflict_and_recover(l: &mut Lab, d: &Draw) -> Result<Phases> {
    let t0 = l.now();
    for &(i, f) in &d.faults {
        l.inflict(f, i)?;
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
    for &(i, f) in d.faults.iter().rev() {
        l.recover(f, i)?;
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

/// Runs `n` draws from `seed`; `stop` on the first violation.
pub fn campaign(l: &mut Lab, seed: u64, n: usize, stop: bool) -> Result<Vec<Outcome>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    for k in 0..n {
        if super::ABORT.load(std::sync::atomic::Ordering::Relaxed) {
            bail!("interrupted");
        }
        let d = draw(&mut rng, l.deadtime());
        let name = format!("fault {} of {n} (seed {seed}): {}", k + 1, d.name());
        let result = scenarios::run(l, &name, |l| inflict_and_recover(l, &d));
        let violations = violations(l, &d, &result);
        let failed = !violations.is_empty();
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
        out.push(Outcome {
            draw: d,
            result,
            violations,
        });
        if failed {
            if stop {
                break;
            }
            l.restore()?;
        }
    }
    Ok(out)
}

/// Per fault kind: count, outage of the affected VIP(s) p50/p99/max,
/// violations; Markdown.
pub fn table(out: &[Outcome]) -> String {
    let mut kinds: Vec<String> = out.iter().map(|o| o.draw.kind()).collect();
    kinds.sort();
    kinds.dedup();
    let mut s = String::from(
        "| fault | count | outage p50 | outage p99 | outage max | violations |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for k in kinds {
        let of: Vec<&Outcome> = out.iter().filter(|o| o.draw.kind() == k).collect();
        let mut outages: Vec<f64> = of
            .iter()
            .map(|o| o.result.outage_ms[0].max(o.result.outage_ms[1]))
            .collect();
        outages.sort_by(f64::total_cmp);
        let pct = |p: f64| outages[((outages.len() - 1) as f64 * p).round() as usize];
        s.push_str(&format!(
            "| {k} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |\n",
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

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let dt = Duration::from_millis(60);
        let names = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..50)
                .map(|_| {
                    let d = draw(&mut rng, dt);
                    (d.name(), d.hold)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(7), names(7));
        assert_ne!(names(7), names(8));
    }

    #[test]
    fn draws_cover_every_kind_and_two_nodes_on_distinct_nodes() {
        let mut rng = fastrand::Rng::with_seed(1);
        let draws: Vec<Draw> = (0..500)
            .map(|_| draw(&mut rng, Duration::from_millis(60)))
            .collect();
        for k in KINDS {
            assert!(
                draws.iter().any(|d| d.faults[0].1 == k),
                "{k:?} never drawn"
            );
        }
        let pairs: Vec<&Draw> = draws.iter().filter(|d| d.faults.len() == 2).collect();
        assert!(!pairs.is_empty());
        assert!(pairs.iter().all(|d| d.faults[0].0 != d.faults[1].0));
    }

    #[test]
    fn a_vip_must_stay_served_while_one_of_its_candidates_is_untouched() {
        let one = |i| Draw {
            faults: vec![(i, Fault::Hang)],
            hold: Duration::ZERO,
        };
        assert_eq!(one(0).must_serve(), [true, true]);
        assert_eq!(one(1).must_serve(), [true, true]);
        let both = Draw {
            faults: vec![(0, Fault::Hang), (1, Fault::Graceful)],
            hold: Duration::ZERO,
        };
        assert_eq!(both.must_serve(), [false, true]);
    }
}
