//! `cargo xtask fuzz [--seconds N] [TARGET]`: the cargo-fuzz (libFuzzer)
//! targets of fuzz/, each run for a bounded time, then a table.
//!
//! Per target: the corpus directory (fuzz/corpus/TARGET, not committed) is
//! seeded at run time from the hand-made seeds (fuzz/seeds/TARGET), the
//! fixtures (hb-agent/fixtures) and the Heartbeat corpus (shared/hacorpus
//! beside the checkout); every input under fuzz/regressions/TARGET (crashes
//! found before, fixed since) is replayed and must pass; then libFuzzer runs
//! for the given seconds. A crash is kept under fuzz/artifacts/TARGET and
//! fails the command once every target has run.
//!
//! The targets are built without a sanitizer (`-s none`): the code fuzzed is
//! safe Rust (the one `unsafe` read, in the ring-buffer decode, is length
//! checked), so AddressSanitizer would find nothing there and would halve
//! the executions; debug assertions (overflow checks) stay on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

/// Every target, in the order they run (see fuzz/src/*.rs for what each
/// asserts).
pub const TARGETS: &[&str] = &[
    "wire",
    "kernel_event",
    "hacf",
    "haresources",
    "authkeys",
    "toml",
    "control",
    "cluster",
];

/// How long `cargo xtask test` runs each target.
pub const TEST_SECONDS: u64 = 10;

struct Outcome {
    target: &'static str,
    seconds: f64,
    execs: u64,
    corpus: usize,
    crashes: usize,
    regressions: usize,
}

/// Builds the targets, then runs `only` (or all) for `seconds` each.
pub fn run(root: &Path, seconds: u64, only: Option<&str>) -> Result<()> {
    let targets: Vec<&'static str> = match only {
        None => TARGETS.to_vec(),
        Some(t) => match TARGETS.iter().find(|&&k| k == t) {
            Some(&k) => vec![k],
            None => bail!("unknown fuzz target {t:?}: one of {}", TARGETS.join(", ")),
        },
    };
    let fuzz = root.join("fuzz");
    let started = Instant::now();
    let st = Command::new("cargo")
        .args(["+nightly", "fuzz", "build", "--sanitizer", "none"])
        // cargo-fuzz's default of one codegen unit makes the build of
        // hb-agent and its dependencies twice as long on two cores.
        .args(["--codegen-units", "16"])
        .current_dir(&fuzz)
        .status()
        .context("running cargo fuzz build")?;
    if !st.success() {
        bail!("cargo fuzz build failed: {st}");
    }
    eprintln!(
        "fuzz: targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let bin_dir = fuzz.join("target").join(host_triple()?).join("release");
    let mut outcomes = Vec::new();
    for t in targets {
        outcomes.push(run_target(root, &bin_dir, t, seconds)?);
    }
    print_table(&outcomes);
    let failed = outcomes.iter().filter(|o| o.crashes > 0).count();
    // The plain closing line CI's log reader counts.
    println!("fuzz: {} passed, {failed} failed", outcomes.len() - failed);
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crashes > 0)
        .map(|o| o.target)
        .collect();
    if !crashed.is_empty() {
        bail!(
            "fuzz targets crashed: {} (inputs under fuzz/artifacts/; make each a regression \
             test, see README, Fuzzing)",
            crashed.join(", ")
        );
    }
    Ok(())
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .args(["+nightly", "-vV"])
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The Heartbeat corpus: `shared/hacorpus` beside the checkout (as CI lays
/// it), else the workplace's.
fn hacorpus(root: &Path) -> Option<PathBuf> {
    [
        root.join("../shared/hacorpus"),
        PathBuf::from("/work/shared/hacorpus"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// ha.d directories to seed the ha.d targets with: the fixtures', then the
/// corpus cases' (each `CASE/ha.d`).
fn ha_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut dirs = Vec::new();
    let fixtures = root.join("hb-agent/fixtures");
    for fixture in ["seed", "seed-fixed"] {
        for node in ["node0", "node1", "node2"] {
            let d = fixtures.join(fixture).join(node);
            if d.join("ha.cf").is_file() {
                dirs.push((format!("{fixture}-{node}"), d));
            }
        }
    }
    if let Some(corpus) = hacorpus(root) {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        cases.sort();
        for case in cases {
            let d = case.join("ha.d");
            if d.join("ha.cf").is_file() {
                let name = case.file_name().unwrap_or_default().to_string_lossy();
                dirs.push((format!("hacorpus-{name}"), d));
            }
        }
    } else {
        eprintln!("fuzz: no shared/hacorpus beside the checkout: seeding from the fixtures only");
    }
    dirs
}

/// Seeds for `target`, as (file name, bytes).
fn seeds(root: &Path, target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = files_in(&root.join("fuzz/seeds").join(target))
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect();
    // The ha.d targets read `tested \0 other \0 other` (fuzz/src/config.rs).
    let order: Option<[&str; 3]> = match target {
        "hacf" => Some(["ha.cf", "haresources", "authkeys"]),
        "haresources" => Some(["haresources", "ha.cf", "authkeys"]),
        "authkeys" => Some(["authkeys", "ha.cf", "haresources"]),
        _ => None,
    };
    if let Some(order) = order {
        for (name, dir) in ha_dirs(root) {
            let read = |f: &str| std::fs::read(dir.join(f)).ok();
            let Some(first) = read(order[0]) else {
                continue;
            };
            let mut input = first;
            // A missing partner stays out: the target uses the seed's.
            if let (Some(a), Some(b)) = (read(order[1]), read(order[2])) {
                input.push(0);
                input.extend(a);
                input.push(0);
                input.extend(b);
            }
            out.push((name, input));
        }
    }
    if target == "toml"
        && let Ok(t) = std::fs::read(root.join("hb-agent/fixtures/example.toml"))
    {
        out.push(("example.toml".into(), t));
    }
    out
}

fn run_target(root: &Path, bin_dir: &Path, target: &'static str, seconds: u64) -> Result<Outcome> {
    let fuzz = root.join("fuzz");
    let bin = bin_dir.join(target);
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    for (name, bytes) in seeds(root, target) {
        std::fs::write(corpus.join(format!("seed-{name}")), bytes)?;
    }

    // Crashes found before: each must pass now.
    let regressions = files_in(&fuzz.join("regressions").join(target));
    if !regressions.is_empty() {
        let st = Command::new(&bin)
            .args(&regressions)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", bin.display()))?;
        if !st.success() {
            bail!(
                "fuzz target {target}: a regression input under fuzz/regressions/{target} fails \
                 again (run `{} FILE` on each to see which)",
                bin.display()
            );
        }
    }

    let before = files_in(&artifacts).len();
    eprintln!("fuzz: {target} for {seconds} s");
    let started = Instant::now();
    let out = Command::new(&bin)
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args([
            "-print_final_stats=1",
            "-max_len=4096",
            "-timeout=20",
            "-rss_limit_mb=2048",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let stat = |key: &str| -> u64 {
        log.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let execs = stat("stat::number_of_executed_units:");
    let new_crashes = files_in(&artifacts).len().saturating_sub(before);
    let crashes = if out.status.success() {
        new_crashes
    } else {
        new_crashes.max(1)
    };
    if crashes > 0 {
        // The panic and the input libFuzzer saved, for the one who fixes it.
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for l in tail.into_iter().rev() {
            eprintln!("  {target}: {l}");
        }
    }
    Ok(Outcome {
        target,
        seconds: elapsed,
        execs,
        corpus: files_in(&corpus).len(),
        crashes,
        regressions: regressions.len(),
    })
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<14} {:>7} {:>12} {:>9} {:>8} {:>8} {:>11}",
        "target", "seconds", "executions", "exec/s", "corpus", "crashes", "regressions"
    );
    for o in outcomes {
        let rate = if o.seconds > 0.0 {
            o.execs as f64 / o.seconds
        } else {
            0.0
        };
        println!(
            "{:<14} {:>7.0} {:>12} {:>9.0} {:>8} {:>8} {:>11}",
            o.target, o.seconds, o.execs, rate, o.corpus, o.crashes, o.regressions
        );
    }
}
