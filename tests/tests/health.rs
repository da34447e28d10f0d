//! Health checks in the lab (tests/src/lab/health.rs): vip1's service
//! (`hb-service`, a process of its own on each node) fails instead of the
//! node. Each test builds its own lab with the services running and vip1's
//! checks configured from the start, runs one scenario and asserts what
//! the scenario checks (its error names what went wrong): the client of
//! the service answered by node1 within a second of the kill, failback no
//! sooner than hold_down, no move at all while the service fails on both
//! candidates, the HTTP check's timeout moving vip1. Generous bounds for a
//! loaded 2-core machine; `cargo xtask bench health` measures.

use hb_tests::lab::{
    Lab, LabOptions,
    agents::Timings,
    default_agent_bin,
    health::{self, Checks},
    scenarios::{self, ScenarioResult},
};

const DEADTIME_MS: f64 = 150.0;

/// One lab at a time: every lab's nodes share the test's PID namespace,
/// and node0's service in one lab has the same name as in another, so a
/// process check in one would see the other's service (CI: a kill went
/// unnoticed while the parallel test's node0 service ran).
static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab(toml: bool, kind: Checks) -> (std::sync::MutexGuard<'static, ()>, Lab) {
    let guard = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    (guard, start(toml, kind))
}

fn start(toml: bool, kind: Checks) -> Lab {
    let timings = Timings {
        keepalive_ms: 20.0,
        deadtime_ms: DEADTIME_MS,
        warntime_ms: 80.0,
        initdead_ms: 600.0,
    };
    let opts = LabOptions {
        timings,
        toml,
        agent_bin: default_agent_bin().expect("hb-agent binary (cargo xtask test builds it)"),
        workdir: std::env::temp_dir().join(hb_tests::netns::unique("health")),
        verbose: std::env::var_os("HB_LAB_VERBOSE").is_some(),
        probe_interval: hb_tests::lab::observe::PROBE_INTERVAL,
    };
    health::start_lab(opts, kind).expect("lab starts with the services checked, and settles")
}

fn run(l: &mut Lab, name: &str) -> ScenarioResult {
    let (n, f) = scenarios::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("scenario exists");
    let r = scenarios::run(l, n, f);
    eprintln!("{}", hb_tests::lab::report::table(std::slice::from_ref(&r)));
    if r.error.is_some() {
        for i in 0..3 {
            eprintln!("--- node{i}'s log, last lines:\n{}", l.log_tail(i, 40));
        }
    }
    assert!(r.error.is_none(), "{name}: {:?}", r.error);
    assert!(r.identity_ok, "{name}: identity wrong: {:?}", r.identity);
    assert_eq!(
        r.owner_after,
        ["node0", "node2"],
        "{name}: vip1 back on node0"
    );
    assert_eq!(
        r.dual_answer_ms,
        [0.0, 0.0],
        "{name}: two nodes answered the client for one VIP"
    );
    // vip2 is not concerned.
    assert!(
        r.outage_ms[1] < 50.0,
        "{name}: vip2 outage {:?}",
        r.outage_ms
    );
    r
}

fn failover_ms(r: &ScenarioResult) -> f64 {
    let f = r.failover_ms.expect("the scenario measures the failover");
    assert!(
        f < health::FAILOVER_MAX.as_secs_f64() * 1e3,
        "client-visible outage {f} ms"
    );
    f
}

/// SIGKILL of node0's service: node1's service answers for vip1 within a
/// second (the scenario measures from the kill to node1's first answer);
/// restarted, vip1 fails back after hold_down. Seed-style ha.d directory:
/// the checks in `ha.d/checks.toml`.
#[test]
fn killed_service_fails_over_and_back_after_hold_down() {
    killed_service(false);
}

/// The same in native TOML (`[[group.check]]`).
#[test]
fn killed_service_fails_over_native_toml() {
    killed_service(true);
}

fn killed_service(toml: bool) {
    let (_one, mut l) = lab(toml, Checks::Process);
    let r = run(
        &mut l,
        "vip1's service on node0 killed (SIGKILL) + restarted",
    );
    assert_eq!(r.owner_during, ["node1", "node2"]);
    eprintln!("client-visible outage: {:.2} ms", failover_ms(&r));
}

/// The service failing on both candidates: vip1 stays where it is (no
/// release, no takeover, every answer from the holder for 3 s), status
/// UNHEALTHY on both, a warning; no ping-pong after a real failover.
#[test]
fn service_failing_everywhere_moves_nothing() {
    let (_one, mut l) = lab(true, Checks::Process);
    let r = run(&mut l, "vip1's service failing on node0 and node1");
    failover_ms(&r);
}

/// HTTP check every 10 ms with a 5 ms timeout, fall 1: node0's service
/// answers 50 ms late (under load) and vip1 moves to node1; fast again, it
/// comes back after hold_down.
#[test]
fn http_check_timing_out_moves_the_vip() {
    let (_one, mut l) = lab(true, Checks::Http);
    let r = run(
        &mut l,
        "vip1's HTTP check on node0 times out (slow service) + recovers",
    );
    assert_eq!(r.owner_during, ["node1", "node2"]);
    eprintln!("from slow to node1 answering: {:.2} ms", failover_ms(&r));
}
