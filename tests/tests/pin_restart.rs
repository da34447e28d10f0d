//! Pinned XDP link and maps: the kernel keeps detecting and counting while
//! the agent is down (kill -9), and the next agent adopts the pinned link
//! and maps, with counters intact.
//!
//! The pins go to a BPF filesystem this test mounts on a temporary
//! directory and unmounts at the end, not to the machine's /sys/fs/bpf.

use std::path::Path;
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData, PerCpuArray};
use hb_agent::{
    config::{Auth, AuthMethod, fnv1a32},
    control::StatusReport,
    sender::{LinkTarget, Sender, SenderConfig, clock},
};
use hb_common::{maps::counter, siphash::key_words};
use hb_tests::netns::BpfFs;
use hb_tests::twohost::{TwoHosts, config};

const CLUSTER: &str = "pin-test";
const SECRET: &str = "pin test secret";

fn received_from_a(s: &StatusReport) -> u64 {
    s.nodes
        .iter()
        .find(|n| n.name == "a")
        .and_then(|n| n.links.first())
        .map(|l| l.received)
        .unwrap_or(0)
}

fn accepted(pins: &Path) -> u64 {
    let data = MapData::from_pin(pins.join("COUNTERS")).unwrap();
    let m: PerCpuArray<MapData, u64> = PerCpuArray::try_from(Map::PerCpuArray(data)).unwrap();
    m.get(&counter::ACCEPTED, 0).unwrap().iter().sum()
}

#[test]
fn detection_survives_agent_restart_and_is_adopted() {
    let fs = BpfFs::mount().unwrap();
    let pins = fs.path().join("hb").join(CLUSTER);
    let h = TwoHosts::new("pn", &config(CLUSTER, SECRET, "20ms", "2s", "")).unwrap();
    let pins_arg = pins.to_str().unwrap();
    let start = || h.start_b(&["--pin-dir", pins_arg]).unwrap();

    // Node a: a real sender, 10 ms keepalive.
    let key = key_words(&Auth::from_secret(AuthMethod::Key, SECRET.as_bytes()).key);
    let _sender =
        h.a.run(false, move || {
            Sender::start(
                SenderConfig {
                    cluster_id: fnv1a32(CLUSTER),
                    node_id: fnv1a32("a"),
                    incarnation: clock::realtime_ns(),
                    keepalive: Duration::from_millis(10),
                    deadtime: Duration::from_secs(2),
                    key,
                    port: 694,
                    realtime: false,
                    spin: hb_agent::sender::DEFAULT_SPIN,
                },
                &[LinkTarget::Bcast {
                    iface: "eth2".into(),
                }],
            )
            .unwrap()
        })
        .unwrap();

    let first = start();
    let s = h.wait_status(|s| received_from_a(s) > 10);
    assert!(
        s.attachments.iter().any(|x| x.starts_with("eth2 (native")),
        "{:?}",
        s.attachments
    );
    assert!(pins.join("link-eth2").exists(), "XDP link pinned");
    let before = received_from_a(&s);

    // kill -9: no agent, yet the pinned program keeps accepting heartbeats.
    drop(first);
    let c1 = accepted(&pins);
    let t0 = Instant::now();
    while accepted(&pins) < c1 + 10 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "kernel stopped counting with the agent gone"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let xdp = h.b.exec(&["ip", "link", "show", "dev", "eth2"]).unwrap();
    assert!(xdp.contains("xdp"), "program still attached: {xdp}");

    // The next agent adopts the pinned link and maps: counters continue.
    let _second = start();
    let s = h.wait_status(|s| received_from_a(s) > before + 10);
    assert!(
        s.attachments.iter().any(|x| x == "eth2 (adopted)"),
        "{:?}",
        s.attachments
    );
    assert!(accepted(&pins) >= c1 + 10);
    let log = std::fs::read_to_string(h.log()).unwrap();
    assert!(log.contains("XDP link adopted from pin"), "{log}");
    // The kernel never said "first heard" to the new agent (a was alive all
    // along); the agent still knows a is alive, from the pinned state.
    assert_eq!(
        s.nodes
            .iter()
            .find(|n| n.name == "a")
            .map(|n| n.state.as_str()),
        Some("alive"),
        "{:?}",
        s.nodes
    );
}
