//! `cargo xtask lab`: the seed's three-node cluster in network namespaces,
//! failing and recovering, with a timeline and a results table.
//!
//! Options: `--toml` (native configuration instead of ha.d directories),
//! `--only SUBSTRING` (run matching scenarios), `--json PATH` (default
//! lab-results/lab.json), `--keepalive-ms/--deadtime-ms N`, `--quiet`.
//! `HB_LAB_RUNS=1` prints, per scenario, which node answered each VIP when;
//! beside the JSON, `timeline-<scenario>.svg` draws it (and the faults and
//! the agents' steps), and `index.html` links them.

use std::sync::atomic::Ordering;

use anyhow::Result;
use hb_tests::lab::cli::{arg, flag};
use hb_tests::lab::{
    ABORT, Lab, LabOptions,
    agents::Timings,
    default_agent_bin, picture, report,
    scenarios::{self, ScenarioResult},
};

fn main() -> Result<()> {
    hb_tests::lab::catch_signals();
    let timings = Timings::from_args()?;
    let toml = flag("--toml");
    let only = arg("--only");
    let json_path = arg("--json").unwrap_or_else(|| "lab-results/lab.json".into());
    let workdir = std::env::temp_dir().join(format!("hb-lab-{}", std::process::id()));
    println!(
        "hb lab: node0, node1, node2 + switch + client/gateway in network namespaces\n\
         configuration: {} | keepalive {} ms, deadtime {} ms | client probes both VIPs every {} us",
        if toml {
            "native TOML"
        } else {
            "seed-style ha.d directories (ha.cf, haresources, authkeys)"
        },
        timings.keepalive_ms,
        timings.deadtime_ms,
        hb_tests::lab::observe::PROBE_INTERVAL.as_micros()
    );
    let mut lab = Lab::start(LabOptions {
        timings,
        toml,
        agent_bin: default_agent_bin()?,
        workdir,
        verbose: !flag("--quiet"),
        probe_interval: hb_tests::lab::observe::PROBE_INTERVAL,
    })?;
    let mut results: Vec<ScenarioResult> = Vec::new();
    for (name, f) in scenarios::all() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        if ABORT.load(Ordering::Relaxed) {
            break;
        }
        let r = scenarios::run(&mut lab, name, f);
        println!(
            "  -> {}: outage vip1 {:.1} ms, vip2 {:.1} ms; answers by node0/node1/node2/other: vip1 {:?}, vip2 {:?}{}",
            if r.passed() { "pass" } else { "FAIL" },
            r.outage_ms[0],
            r.outage_ms[1],
            r.answers[0],
            r.answers[1],
            r.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let failed = r.error.is_some();
        results.push(r);
        if failed {
            // Put the cluster back for the next scenario.
            let _ = lab.restore();
        }
    }
    println!("\n{}", report::table(&results));
    if let Some(dir) = std::path::Path::new(&json_path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, report::json(&results))?;
    println!("results written to {json_path}");
    // A timeline picture per scenario beside the JSON, and a page for them.
    let dir = std::path::Path::new(&json_path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let index = picture::write_all(dir, &results, &report::table(&results))?;
    println!(
        "timelines written to {}/timeline-*.svg, index {}",
        dir.display(),
        index.display()
    );
    drop(lab);
    let failed = results.iter().filter(|r| !r.passed()).count();
    if failed > 0 {
        anyhow::bail!("{failed} scenario(s) failed");
    }
    Ok(())
}
