//! `cargo xtask chaos`: a seeded random fault campaign on the lab, with
//! invariant checks after every fault (see `lab::chaos`).
//!
//! Options: `--seed S` (default: from the clock; printed, and the same seed
//! draws the same faults), `--faults N` (default 20), `--toml`,
//! `--keepalive-ms/--deadtime-ms N`, `--stop-on-violation`, `--verbose`.

use anyhow::Result;
use hb_tests::lab::{Lab, LabOptions, agents::Timings, chaos, default_agent_bin, observe};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn main() -> Result<()> {
    hb_tests::lab::catch_signals();
    let mut timings = Timings::default();
    if let Some(v) = arg("--keepalive-ms") {
        timings.keepalive_ms = v.parse()?;
    }
    if let Some(v) = arg("--deadtime-ms") {
        timings.deadtime_ms = v.parse()?;
        timings.warntime_ms = timings.deadtime_ms / 2.0;
        timings.initdead_ms = timings.deadtime_ms * 5.0;
    }
    let seed: u64 = match arg("--seed") {
        Some(s) => s.parse()?,
        None => hb_agent::sender::clock::realtime_ns() % 1_000_000,
    };
    let n: usize = arg("--faults").map_or(Ok(20), |s| s.parse())?;
    println!(
        "hb chaos: seed {seed}, {n} faults, keepalive {} ms, deadtime {} ms (replay: --seed {seed})",
        timings.keepalive_ms, timings.deadtime_ms
    );
    let mut lab = Lab::start(LabOptions {
        timings,
        toml: flag("--toml"),
        agent_bin: default_agent_bin()?,
        workdir: std::env::temp_dir().join(format!("hb-chaos-{}", std::process::id())),
        verbose: flag("--verbose"),
        probe_interval: observe::PROBE_INTERVAL,
    })?;
    let out = chaos::campaign(&mut lab, seed, n, flag("--stop-on-violation"))?;
    drop(lab);
    println!("\n{}", chaos::table(&out));
    let bad: usize = out.iter().map(|o| o.violations.len()).sum();
    println!("seed {seed}: {} faults, {bad} violations", out.len());
    if bad > 0 {
        anyhow::bail!("{bad} violation(s); replay with --seed {seed}");
    }
    Ok(())
}
