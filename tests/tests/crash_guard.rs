//! A crashed agent must not leave its node answering for its VIP: the XDP
//! guard (service lease) has to outlive the agent. Node b's agent holds a
//! VIP on eth2, pinned on a BPF filesystem that outlives it (the test's own,
//! in the host's mount namespace, as /sys/fs/bpf on a real host), and is
//! killed with SIGKILL while no standby runs. Its kernel keeps the address
//! configured, but within about a deadtime the lapsed lease makes the
//! pinned program drop everything for it: node a's pings go unanswered.
//! Where pins cannot outlive the agent (`--no-pin`), the agent says so.
//!
//! Before the fix the lab and these tests ran with `--no-pin` under
//! `ip netns exec`, and after a kill -9 the VIP answered every probe.

use std::time::{Duration, Instant};

use hb_tests::netns::BpfFs;
use hb_tests::twohost::{TwoHosts, config};

const VIP: &str = "10.160.100.40";

fn group() -> String {
    format!(
        "[[group]]\nname = \"web\"\nnodes = [\"b\"]\n\
         [[group.resource]]\ntype = \"ip\"\naddress = \"{VIP}/24\"\niface = \"eth2\"\n"
    )
}

fn answers(h: &TwoHosts) -> bool {
    h.a.exec(&["ping", "-c", "1", "-W", "0.2", VIP]).is_ok()
}

#[test]
fn killed_agent_leaves_its_vip_fenced() {
    let fs = BpfFs::mount().unwrap();
    let pins = fs.path().join("b");
    let h = TwoHosts::new(
        "cg",
        &config("crash", "crash secret", "20ms", "200ms", &group()),
    )
    .unwrap();
    let mut agent = h.start_b(&["--pin-dir", pins.to_str().unwrap()]).unwrap();
    h.wait_status(|s| {
        s.groups
            .iter()
            .any(|g| g.name == "web" && g.local == "held")
    });
    assert!(answers(&h), "b serves {VIP}");

    agent.kill();
    let killed = Instant::now();
    // The lease lapses a deadtime after the last heartbeat; generous bound.
    while answers(&h) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "{VIP} still answered 5 s after the agent was killed: its guard died with it"
        );
    }
    let addrs =
        h.b.exec(&["ip", "-o", "addr", "show", "dev", "eth2"])
            .unwrap();
    assert!(
        addrs.contains(VIP),
        "the address stays configured (nobody removed it): {addrs}"
    );
    for _ in 0..5 {
        assert!(!answers(&h), "{VIP} answered again with no agent running");
    }
    let xdp = h.b.exec(&["ip", "link", "show", "dev", "eth2"]).unwrap();
    assert!(
        xdp.contains("xdp"),
        "the pinned program is still attached: {xdp}"
    );
}

#[test]
fn unpinned_agent_says_a_crash_leaves_it_unguarded() {
    let h = TwoHosts::new(
        "cw",
        &config("crashw", "crash secret", "20ms", "200ms", &group()),
    )
    .unwrap();
    let _agent = h.start_b(&["--no-pin"]).unwrap();
    h.wait_log("not pinning (--no-pin)");
    let s = h.wait_status(|s| s.warnings.iter().any(|w| w.contains("--no-pin")));
    assert!(
        s.warnings.iter().any(|w| w.contains("unfenced")),
        "{:?}",
        s.warnings
    );
}

/// `ip netns exec` runs the agent in a mount namespace of its own, with a
/// fresh /sys: a /sys/fs/bpf it mounted there would die with it (or live
/// on with a daemon a script left, blocking the next agent's attach), so
/// it does not pin, and says so.
#[test]
fn agent_in_its_own_mount_namespace_says_its_pins_die_with_it() {
    let h = TwoHosts::new(
        "cm",
        &config("crashm", "crash secret", "20ms", "200ms", &group()),
    )
    .unwrap();
    let _agent = h.start_b(&[]).unwrap();
    let log = h.wait_log("which no later agent can see");
    assert!(
        log.contains("--pin-dir"),
        "the warning says what to do: {log}"
    );
}
