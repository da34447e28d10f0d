//! A short fault campaign (`cargo xtask chaos` runs long ones): random
//! faults from a fixed seed on the seed's cluster with timings
//! generous enough for a loaded 2-core machine; every invariant the
//! campaign checks must hold after every fault. Ignored until the identity
//! violations campaigns still find after overlapping faults are fixed
//! (issue 14's note: seed 8212 faults 53 and 119, and seed 1 fault 16 in one
//! run of two); a fresh seed per run joins it then.

use hb_tests::lab::{Lab, LabOptions, agents::Timings, chaos, default_agent_bin};

fn lab() -> Lab {
    Lab::start(LabOptions {
        timings: Timings {
            keepalive_ms: 20.0,
            deadtime_ms: 150.0,
            warntime_ms: 80.0,
            initdead_ms: 600.0,
        },
        toml: false,
        agent_bin: default_agent_bin().expect("hb-agent binary (cargo xtask test builds it)"),
        workdir: std::env::temp_dir().join(hb_tests::netns::unique("chaos")),
        verbose: false,
        probe_interval: hb_tests::lab::observe::PROBE_INTERVAL,
    })
    .expect("lab starts and settles")
}

fn assert_clean(seed: u64, n: usize) {
    let mut l = lab();
    let out = chaos::campaign(&mut l, seed, n, false).expect("campaign runs");
    drop(l);
    let bad: Vec<String> = out
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.violations.is_empty())
        .map(|(k, o)| {
            format!(
                "fault {} ({}): {}",
                k + 1,
                o.draw.name(),
                o.violations.join("; ")
            )
        })
        .collect();
    println!("seed {seed}:\n{}", chaos::table(&out));
    assert_eq!(out.len(), n);
    assert!(
        bad.is_empty(),
        "seed {seed} (replay: cargo xtask chaos --seed {seed}):\n{}",
        bad.join("\n")
    );
}

#[test]
#[ignore = "long campaigns still find identity violations after overlapping faults (issue 14): run with --ignored"]
fn twenty_faults_from_a_fixed_seed_break_no_invariant() {
    assert_clean(1, 20);
}
