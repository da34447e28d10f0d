//! `cargo xtask chaos`: a seeded random fault campaign on the lab, with
//! invariant checks after every fault (see `lab::chaos`).
//!
//! Options: `--seed S` (default: from the clock; printed, and the same seed
//! draws the same faults), `--faults N` (default 20, or unbounded with
//! `--minutes`), `--minutes M` (stop drawing after M minutes), `--toml`,
//! `--keepalive-ms/--deadtime-ms N`, `--json PATH` (default
//! lab-results/chaos.json), `--stop-on-violation`, `--verbose`,
//! `--flood` (also draw a forged-heartbeat flood, switched on and off),
//! `--dry-run` (print the draws only).

use std::time::{Duration, Instant};

use anyhow::Result;
use hb_tests::lab::cli::{arg, flag, parsed};
use hb_tests::lab::{Lab, LabOptions, agents::Timings, chaos, default_agent_bin, observe};

fn main() -> Result<()> {
    hb_tests::lab::catch_signals();
    let timings = Timings::from_args()?;
    let seed: u64 = parsed("--seed")?.unwrap_or(hb_agent::sender::clock::realtime_ns() % 1_000_000);
    let minutes: Option<f64> = parsed("--minutes")?;
    let faults: Option<usize> = match (parsed("--faults")?, minutes) {
        (Some(n), _) => Some(n),
        (None, None) => Some(20),
        (None, Some(_)) => None,
    };
    if flag("--dry-run") {
        // The draws alone, without a lab: what a seed would do.
        let mut rng = fastrand::Rng::with_seed(seed);
        let deadtime = Duration::from_secs_f64(timings.deadtime_ms / 1e3);
        for k in 0..faults.unwrap_or(20) {
            let d = chaos::draw(&mut rng, deadtime, flag("--flood"));
            println!(
                "fault {}: {} (held {:.0} ms)",
                k + 1,
                d.name(),
                d.hold.as_secs_f64() * 1e3
            );
        }
        return Ok(());
    }
    let json_path = arg("--json").unwrap_or_else(|| "lab-results/chaos.json".into());
    println!(
        "hb chaos: seed {seed}, {} faults{}, keepalive {} ms, deadtime {} ms (replay: --seed {seed}{})",
        faults.map_or("unbounded".into(), |n| n.to_string()),
        minutes.map_or(String::new(), |m| format!(" within {m} min")),
        timings.keepalive_ms,
        timings.deadtime_ms,
        if flag("--flood") { " --flood" } else { "" }
    );
    let mut lab = Lab::start(LabOptions {
        timings,
        toml: flag("--toml"),
        agent_bin: default_agent_bin()?,
        workdir: std::env::temp_dir().join(format!("hb-chaos-{}", std::process::id())),
        verbose: flag("--verbose"),
        probe_interval: observe::PROBE_INTERVAL,
    })?;
    lab.start_http()?;
    if flag("--flood") {
        lab.start_flood(1)?;
    }
    let plan = chaos::Plan {
        seed,
        faults,
        until: minutes.map(|m| Instant::now() + Duration::from_secs_f64(m * 60.0)),
        stop_on_violation: flag("--stop-on-violation"),
    };
    let started = Instant::now();
    let report = chaos::campaign(&mut lab, &plan)?;
    drop(lab);
    println!("\n{}", report.tables());
    if let Some(dir) = std::path::Path::new(&json_path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)?;
    let bad = report.violations();
    println!(
        "seed {seed}: {} faults in {:.1} min, {} violations (JSON: {json_path})",
        report.outcomes.len(),
        started.elapsed().as_secs_f64() / 60.0,
        bad.len()
    );
    for v in &bad {
        println!("  {v}");
    }
    if !bad.is_empty() {
        anyhow::bail!("{} violation(s); replay with --seed {seed}", bad.len());
    }
    Ok(())
}
