//! `cargo xtask bench health`: client-visible outage when vip1's service
//! dies on node0 (kill -9) while node0 itself stays up, for hb's process
//! and HTTP checks and for keepalived's `vrrp_script` (and `track_process`
//! where keepalived has it), in one run on the same lab. The client talks
//! to the service itself at the VIP (a new TCP connection and `GET /`
//! every 0.25 ms, `service::Poller`): the outage is the time from the kill
//! until the first answer from node1's service, what a user sees.
//!
//! Options: `--trials N` (20), `--only PREFIX` (contenders whose name
//! starts with it), `--poll-us N` (250), `--timings K/D` (hb's keepalive
//! and deadtime in ms; the lab's 10/60), `--json` (JSON instead of the
//! table).

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use hb_agent::rules::step;
use hb_agent::sender::clock;
use hb_tests::lab::report::pct;
use hb_tests::lab::{
    ABORT, Lab, LabOptions,
    agents::Timings,
    default_agent_bin, health,
    keepalived::{self, Keepalived, Net, Script, Track, Variant},
    observe::{PROBE_INTERVAL, Watcher},
    service::{self, Services},
    timeline::Timeline,
    topology::Topology,
};
use serde::Serialize;

/// hb's checks: failback needs hold_down after the restarted service
/// passes again; short here, the trials are about the failover.
const HOLD_DOWN: &str = "100ms";

/// Quiet time before each kill (after the previous trial settled), and
/// after each trial's failback.
const QUIET: Duration = Duration::from_millis(300);

/// The longest a trial may take to fail over or back.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Default, Serialize)]
struct Column {
    name: String,
    /// What the contender runs (its configuration, in short).
    setting: String,
    outages_ms: Vec<f64>,
    /// Moves of vip1 the kill did not cause: answering-node changes the
    /// client saw beyond the failover and the failback of each trial.
    false_failovers: usize,
    /// Trials run, and of them failed (a failover or failback that did
    /// not happen in time; a failover measured before a failed failback
    /// still counts in `outages_ms`).
    ran: usize,
    failed: usize,
    /// Why it did not run (not available here).
    unavailable: Option<String>,
    /// hb only: when each of `STEPS` happened, ms after the kill.
    steps: Vec<[Option<f64>; STEPS.len()]>,
}

/// The steps of an hb failover on a check, by the agents' `step` log
/// field: (node, step, column title); the last is the client's answer.
const STEPS: [(&str, &str, &str); 5] = [
    ("node0", "check.down", "node0: check down"),
    ("node0", step::RELEASING, "node0: releasing group"),
    ("node1", step::TAKING_OVER, "node1: taking over group"),
    ("node1", step::ADDRESS_UP, "node1: address up"),
    ("client", "", "client: first answer from node1"),
];

impl Column {
    fn median(&self) -> f64 {
        pct(&self.outages_ms, 0.5)
    }
}

/// One of hb's columns: vip1's check on node `i`, as a check table's keys.
struct HbContender {
    name: &'static str,
    setting: String,
    checks: fn(usize) -> String,
}

/// One of keepalived's columns: how node `i`'s keepalived tracks its service.
struct KaContender {
    name: &'static str,
    setting: String,
    track: Box<dyn Fn(usize) -> Track>,
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Result<u64> {
    let t0 = clock::now_ns();
    loop {
        if f() {
            return Ok(clock::now_ns());
        }
        if ABORT.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        if clock::now_ns() - t0 > timeout.as_nanos() as u64 {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A random wait in [0, max): kills fall anywhere in the checks' cycle.
fn jitter(max: Duration) {
    let us = max.as_micros() as u64;
    if us > 0 {
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..us)));
    }
}

/// One trial on whatever runs vip1 (`holders` = the watcher's view): kill
/// node0's service, wait for node1's to answer (the outage), restart it
/// and wait for node0 to serve again. The false failovers it saw.
fn trial(
    s: &mut Services,
    holders: &dyn Fn() -> Vec<usize>,
    phase: Duration,
    col: &mut Column,
    mut timeline: Option<&mut Timeline>,
) -> Result<()> {
    let start = clock::now_ns();
    std::thread::sleep(QUIET);
    jitter(phase);
    if holders() != [0] || !s.poller.answering(0, Duration::from_millis(20)) {
        bail!("node0 does not serve vip1 before the kill");
    }
    // hb's steps are timed from here (its agents' logs).
    if let Some(tl) = timeline.as_deref_mut() {
        tl.begin("trial");
    }
    let t0 = s.kill(0)?;
    let p = &s.poller;
    wait("node1's service to answer at vip1", TRIAL_TIMEOUT, || {
        p.first_answer_from(1, t0).is_some()
    })?;
    let answered = p.first_answer_from(1, t0).expect("waited");
    col.outages_ms.push((answered - t0) as f64 / 1e6);
    if let Some(tl) = timeline {
        // The agents log asynchronously: a moment for the last lines.
        std::thread::sleep(Duration::from_millis(20));
        tl.poll();
        let mut row = STEPS.map(|(node, step, _)| tl.first_step(node, step, "vip1"));
        row[STEPS.len() - 1] = Some((answered - t0) as f64 / 1e6);
        col.steps.push(row);
    }
    s.start(0)?;
    let p = &s.poller;
    let t1 = clock::now_ns();
    wait("node0 to serve vip1 again", TRIAL_TIMEOUT, || {
        holders() == [0] && p.first_answer_from(0, t1).is_some()
    })
    .map_err(|e| {
        let now = clock::now_ns();
        let last = now - 1_000_000_000;
        e.context(format!(
            "vip1 held by {:?}; the client's last second: (requests, failed, by node) {:?}, failures {:?}",
            holders(),
            p.counts(last, now),
            p.failure_reasons(last, now)
        ))
    })?;
    std::thread::sleep(QUIET);
    let switches = s.poller.switches(start, clock::now_ns());
    col.false_failovers += switches.saturating_sub(2);
    s.poller.forget_before(start);
    Ok(())
}

fn trials(
    s: &mut Services,
    holders: &dyn Fn() -> Vec<usize>,
    phase: Duration,
    col: &mut Column,
    n: usize,
    mut timeline: Option<&mut Timeline>,
) {
    for k in 0..n {
        if ABORT.load(Ordering::Relaxed) {
            return;
        }
        col.ran += 1;
        if let Err(e) = trial(s, holders, phase, col, timeline.as_deref_mut()) {
            eprintln!("{} trial {}: failed: {e:#}", col.name, k + 1);
            col.failed += 1;
            if std::env::var_os("HB_BENCH_PAUSE").is_some() {
                eprintln!("paused for inspection (HB_BENCH_PAUSE): 600 s");
                std::thread::sleep(Duration::from_secs(600));
            }
            // Back to the start: both services running.
            for i in 0..2 {
                if !s.running(i) {
                    let _ = s.start(i);
                }
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

/// hb with vip1 checked by `checks(i)` on node0 and node1.
fn hb_column(
    col: &mut Column,
    timings: &Timings,
    poll: Duration,
    phase: Duration,
    n: usize,
    checks: fn(usize) -> String,
) -> Result<()> {
    let opts = LabOptions {
        timings: timings.clone(),
        toml: true,
        agent_bin: default_agent_bin()?,
        workdir: std::env::temp_dir().join(hb_tests::netns::unique("bench-health")),
        verbose: false,
        probe_interval: PROBE_INTERVAL,
    };
    let mut l = Lab::start_with(opts, |l| {
        let mut s = Services::new(l.workdir(), &l.topo.nodes, &l.topo.gw, poll)?;
        s.start_on(&[0, 1, 2])?;
        l.services = Some(s);
        l.vip1_checks = [0, 1, 2].map(|i| if i < 2 { vec![checks(i)] } else { vec![] });
        Ok(())
    })?;
    let to = l.settle_timeout();
    for i in [0, 1] {
        health::wait_health(&mut l, i, "healthy", to)?;
    }
    l.wait_settled([Some(0), Some(2)], to)?;
    let watcher = &l.watcher;
    let s = l.services.as_mut().context("services")?;
    let holders = || watcher.holders(0);
    trials(s, &holders, phase, col, n, Some(&mut l.timeline));
    Ok(())
}

/// keepalived on node0 (MASTER, 150) and node1 (BACKUP, 100) at its
/// fastest VRRP settings (advert_int 0.01, VRRPv3), tracking each node's
/// service with `track(i)`.
fn keepalived_column(
    col: &mut Column,
    poll: Duration,
    phase: Duration,
    n: usize,
    track: &dyn Fn(usize) -> Track,
) -> Result<()> {
    let dir = std::env::temp_dir().join(hb_tests::netns::unique("ka-health"));
    std::fs::create_dir_all(&dir)?;
    let topo = Topology::build()?;
    let watcher = Watcher::start(&topo.nodes);
    let mut s = Services::new(&dir, &topo.nodes, &topo.gw, poll)?;
    s.start_on(&[0, 1])?;
    let v = Variant {
        net: Net::Service,
        advert_int: "0.01",
        down_timer_adverts: None,
    };
    let mut ka = Vec::new();
    for i in 0..2 {
        let conf = keepalived::config_tracked(i, v, &track(i));
        ka.push(Keepalived::start_with_config(
            &topo.nodes[i].name,
            i,
            &conf,
            &dir,
        )?);
    }
    let p = &s.poller;
    let up = wait(
        "keepalived: node0 serves vip1",
        Duration::from_secs(20),
        || watcher.holders(0) == [0] && p.answering(0, Duration::from_millis(20)),
    );
    if let Err(e) = up {
        let log = std::fs::read_to_string(dir.join("keepalived-node0.log")).unwrap_or_default();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains(keepalived::NO_PROCESS_EVENTS))
        {
            let _ = std::fs::remove_dir_all(&dir);
            bail!("keepalived on node0: {l}");
        }
        return Err(e.context(format!("logs in {}", dir.display())));
    }
    std::thread::sleep(Duration::from_secs(1));
    let holders = || watcher.holders(0);
    trials(&mut s, &holders, phase, col, n, None);
    drop(ka);
    drop(s);
    drop(watcher);
    drop(topo);
    if col.failed == 0 {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("{}: logs kept in {}", col.name, dir.display());
    }
    Ok(())
}

fn parse_timings(s: &str) -> Result<Timings> {
    let (k, d) = s
        .split_once('/')
        .with_context(|| format!("--timings {s}: expected KEEPALIVE_MS/DEADTIME_MS"))?;
    let (keepalive_ms, deadtime_ms): (f64, f64) = (k.parse()?, d.parse()?);
    if !(keepalive_ms > 0.0 && deadtime_ms > keepalive_ms) {
        bail!("--timings {s}: need 0 < keepalive < deadtime");
    }
    Ok(Timings {
        keepalive_ms,
        deadtime_ms,
        warntime_ms: deadtime_ms / 2.0,
        initdead_ms: (deadtime_ms * 5.0).max(100.0),
    })
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn main() -> Result<()> {
    hb_testkit::require_root("the health-check benchmark");
    // Ctrl-C / SIGTERM unwind (namespaces and processes removed).
    hb_tests::lab::catch_signals();
    let n: usize = arg("--trials")
        .map(|v| v.parse().context("--trials"))
        .transpose()?
        .unwrap_or(20);
    let poll = Duration::from_micros(
        arg("--poll-us")
            .map(|v| v.parse().context("--poll-us"))
            .transpose()?
            .unwrap_or(250),
    );
    let timings = match arg("--timings") {
        Some(t) => parse_timings(&t)?,
        None => Timings::default(),
    };
    let only = arg("--only");
    let want = |name: &str| only.as_deref().is_none_or(|o| name.starts_with(o));
    let json = flag("--json");
    let mut cols: Vec<Column> = Vec::new();

    // hb: a process check by name (death by pidfd), and an HTTP check.
    let hb: [HbContender; 2] = [
        HbContender {
            name: "hb process check",
            setting: "type = \"process\" (by name; death by pidfd), fall 1, rise 1".into(),
            checks: |i| service::process_check(i, HOLD_DOWN),
        },
        HbContender {
            name: "hb HTTP check",
            setting: "type = \"http\", interval 10 ms (timeout = interval), fall 1, rise 1".into(),
            checks: |_| service::http_check("10ms", "10ms", HOLD_DOWN),
        },
    ];
    for HbContender {
        name,
        setting,
        checks,
    } in hb
    {
        let setting = format!(
            "{setting}; keepalive {} ms / deadtime {} ms",
            timings.keepalive_ms, timings.deadtime_ms
        );
        // Kills anywhere in a 10 ms check cycle.
        let phase = Duration::from_millis(10);
        if !want(name) {
            continue;
        }
        let mut col = Column {
            name: name.into(),
            setting,
            ..Default::default()
        };
        eprintln!("{name}: {n} trials");
        if let Err(e) = hb_column(&mut col, &timings, poll, phase, n, checks) {
            eprintln!("{name}: {e:#}");
            col.unavailable = Some(format!("did not run: {e:#}"));
        }
        cols.push(col);
    }

    // keepalived 2.2.7: vrrp_script at its fastest (interval is whole
    // seconds, at least 1: `interval 0.1` is refused and runs at 1 s).
    // `--ka-weight W` (exploring): a weight that moves the priority
    // (node0 150 + W below node1's 100) instead of FAULT.
    let weight: i32 = arg("--ka-weight")
        .map(|v| v.parse().context("--ka-weight"))
        .transpose()?
        .unwrap_or(0);
    let script = move |command: String| Script {
        command,
        interval: 1,
        timeout: 1,
        fall: 1,
        rise: 1,
        weight,
    };
    let effect = match weight {
        0 => "weight 0 (FAULT)".to_string(),
        w => format!("weight {w}"),
    };
    let ka: [KaContender; 2] = [
        KaContender {
            name: "keepalived vrrp_script (pgrep)",
            setting: format!(
                "interval 1 s (its floor), fall 1, rise 1, {effect}; advert_int 0.01, VRRPv3, GARP refresh 1 s"
            ),
            track: Box::new(move |i| {
                Track::Script(script(format!(
                    "/usr/bin/pgrep -x {}",
                    service::process_name(i)
                )))
            }),
        },
        KaContender {
            name: "keepalived vrrp_script (curl)",
            setting: format!(
                "interval 1 s, timeout 1 s, fall 1, rise 1, {effect}; advert_int 0.01, VRRPv3, GARP refresh 1 s"
            ),
            track: Box::new(move |_| {
                Track::Script(script(format!(
                    "/usr/bin/curl -sf -m 1 -o /dev/null http://127.0.0.1:{}/",
                    service::PORT
                )))
            }),
        },
    ];
    for KaContender {
        name,
        setting,
        track,
    } in ka
    {
        if !want(name) {
            continue;
        }
        let mut col = Column {
            name: name.into(),
            setting,
            ..Default::default()
        };
        eprintln!("{name}: {n} trials");
        if let Err(e) = keepalived_column(&mut col, poll, Duration::from_secs(1), n, &*track) {
            eprintln!("{name}: {e:#}");
            col.unavailable = Some(format!("did not run: {e:#}"));
        }
        cols.push(col);
    }
    // keepalived's event-driven process tracking, at its fastest (no
    // `delay`: keepalived refuses `delay 0`, its floor is 1 us, unset is none).
    let name = "keepalived track_process";
    if want(name) {
        let mut col = Column {
            name: name.into(),
            setting: "vrrp_track_process, quorum 1, weight 0 (FAULT); advert_int 0.01, VRRPv3, GARP refresh 1 s"
                .into(),
            ..Default::default()
        };
        eprintln!("{name}: {n} trials");
        let track = |i| Track::Process {
            name: service::process_name(i),
            weight: 0,
        };
        if let Err(e) = keepalived_column(&mut col, poll, Duration::from_millis(10), n, &track) {
            eprintln!("{name}: {e:#}");
            let msg = format!("{e:#}");
            col.unavailable = Some(if msg.contains(keepalived::NO_PROCESS_EVENTS) {
                "cannot run in the lab: keepalived learns of process deaths from the kernel's process-events connector, which exists only in the initial network namespace; in a node's namespace it logs \"Failed to set/clear process event listen - errno 111 - Connection refused\" and stays in FAULT".into()
            } else {
                format!("did not run: {msg}")
            });
        }
        cols.push(col);
    }

    if json {
        println!("{}", serde_json::to_string_pretty(&cols)?);
        return Ok(());
    }
    println!(
        "# client-visible outage when vip1's service is killed (kill -9) on node0: from the kill to the first answer from node1's service at the VIP (a new connection every {} us)\n",
        poll.as_micros()
    );
    println!("| contender | setting | trials ok | median | p95 | max | false failovers |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for c in &cols {
        match &c.unavailable {
            Some(why) if c.outages_ms.is_empty() => {
                println!("| {} | {} | - | {why} | - | - | - |", c.name, c.setting)
            }
            _ => println!(
                "| {} | {} | {}/{} | {} | {} | {} | {} |",
                c.name,
                c.setting,
                c.ran - c.failed,
                c.ran,
                ms(c.median()),
                ms(pct(&c.outages_ms, 0.95)),
                ms(c.outages_ms.iter().copied().fold(f64::NAN, f64::max)),
                c.false_failovers
            ),
        }
    }
    let median_of = |prefix: &str| {
        cols.iter()
            .filter(|c| c.name.starts_with(prefix) && !c.outages_ms.is_empty())
            .map(|c| (c.median(), c.name.as_str()))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    println!();
    for (name, target) in [("hb process check", 2.0), ("hb HTTP check", 12.0)] {
        if let Some(c) = cols
            .iter()
            .find(|c| c.name == name && !c.outages_ms.is_empty())
        {
            let m = c.median();
            println!(
                "- {name}: median {} (target <= {target} ms): {}",
                ms(m),
                if m <= target { "met" } else { "MISSED" }
            );
        }
    }
    if let (Some((k, kn)), Some((h, hn))) = (median_of("keepalived"), median_of("hb")) {
        println!(
            "- keepalived's best ({kn}, median {}) / hb's best ({hn}, median {}): {:.0}x (target >= 10x)",
            ms(k),
            ms(h),
            k / h
        );
        for c in cols
            .iter()
            .filter(|c| c.name.starts_with("hb") && !c.outages_ms.is_empty())
        {
            println!("- keepalived's best / {}: {:.0}x", c.name, k / c.median());
        }
    }
    for c in cols.iter().filter(|c| !c.steps.is_empty()) {
        println!(
            "\nwhere the time goes, {}: median ms after the kill (- = not logged in most trials)\n",
            c.name
        );
        let head: Vec<&str> = STEPS.iter().map(|(_, _, t)| *t).collect();
        println!("| {} |", head.join(" | "));
        println!("|{}", "---:|".repeat(STEPS.len()));
        let cells: Vec<String> = (0..STEPS.len())
            .map(|i| {
                let v: Vec<f64> = c.steps.iter().filter_map(|s| s[i]).collect();
                if v.len() * 2 < c.steps.len() {
                    "-".into()
                } else {
                    format!("{:.2}", pct(&v, 0.5))
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
    }
    Ok(())
}
