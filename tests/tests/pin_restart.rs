//! Pinned XDP link and maps: the kernel keeps detecting and counting while
//! the agent is down (kill -9), and the next agent adopts the pinned link
//! and maps, with counters intact.
//!
//! The pins go to a BPF filesystem this test mounts on a temporary
//! directory and unmounts at the end, not to the machine's /sys/fs/bpf.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData, PerCpuArray};
use hb_agent::{
    config::{Auth, AuthMethod, fnv1a32},
    control::{Request, StatusReport, client},
    sender::{LinkTarget, Sender, SenderConfig, clock},
};
use hb_common::{maps::counter, siphash::key_words};
use hb_tests::netns::{Netns, veth};

const CLUSTER: &str = "pin-test";
const SECRET: &str = "pin test secret";

struct BpfFs(PathBuf);

impl BpfFs {
    fn mount() -> BpfFs {
        let dir = std::env::temp_dir().join(hb_tests::netns::unique("bpffs"));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a BPF filesystem for the test");
        BpfFs(dir)
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        // Removing the pins detaches the program (once no agent holds it).
        let _ = std::fs::remove_dir_all(self.0.join("hb"));
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Ends the agent this test started, also on panic.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(ns: &Netns, conf: &Path, pins: &Path, sock: &Path, dir: &Path) -> Agent {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("b.log"))
        .unwrap();
    Agent(
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(hb_tests::lab::default_agent_bin().unwrap())
            .args(["run", "--node", "b", "--config"])
            .arg(conf)
            .arg("--pin-dir")
            .arg(pins)
            .arg("--socket")
            .arg(sock)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn wait_status(sock: &Path, mut ok: impl FnMut(&StatusReport) -> bool) -> StatusReport {
    let t0 = Instant::now();
    loop {
        if let Some(s) = client::call(sock, &Request::Status)
            .ok()
            .and_then(|r| r.status)
            && ok(&s)
        {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "agent status never as expected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    let fs = BpfFs::mount();
    let pins = fs.0.join("hb").join(CLUSTER);
    let a = Netns::new("pa").unwrap();
    let b = Netns::new("pb").unwrap();
    veth(
        &a,
        "eth2",
        Some("10.160.100.30/24"),
        &b,
        "eth2",
        Some("10.160.100.31/24"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(hb_tests::netns::unique("pin"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("hb.toml");
    std::fs::write(
        &conf,
        format!(
            "cluster = \"{CLUSTER}\"\nrealtime = false\n\
             [timing]\nkeepalive = \"20ms\"\ndeadtime = \"2s\"\nwarntime = \"1s\"\ninitdead = \"4s\"\n\
             [auth]\nsecret = \"{SECRET}\"\n\
             [[link]]\nname = \"hb\"\niface = \"eth2\"\nkind = \"bcast\"\n\
             [[node]]\nname = \"a\"\naddrs = {{ hb = \"10.160.100.30\" }}\n\
             [[node]]\nname = \"b\"\naddrs = {{ hb = \"10.160.100.31\" }}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sock = dir.join("b.sock");

    // Node a: a real sender, 10 ms keepalive.
    let key = key_words(&Auth::from_secret(AuthMethod::Key, SECRET.as_bytes()).key);
    let _sender = a
        .run(move || {
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
                },
                &[LinkTarget::Bcast {
                    iface: "eth2".into(),
                }],
            )
            .unwrap()
        })
        .unwrap();

    let first = start(&b, &conf, &pins, &sock, &dir);
    let s = wait_status(&sock, |s| received_from_a(s) > 10);
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
    let xdp = b.exec(&["ip", "link", "show", "dev", "eth2"]).unwrap();
    assert!(xdp.contains("xdp"), "program still attached: {xdp}");

    // The next agent adopts the pinned link and maps: counters continue.
    let _second = start(&b, &conf, &pins, &sock, &dir);
    let s = wait_status(&sock, |s| received_from_a(s) > before + 10);
    assert!(
        s.attachments.iter().any(|x| x == "eth2 (adopted)"),
        "{:?}",
        s.attachments
    );
    assert!(accepted(&pins) >= c1 + 10);
    let log = std::fs::read_to_string(dir.join("b.log")).unwrap();
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
    let _ = std::fs::remove_dir_all(&dir);
}
