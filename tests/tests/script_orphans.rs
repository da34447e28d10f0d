//! What a resource script leaves behind when the agent dies or stops, with
//! a real agent (node b, `--no-pin`) in a namespace:
//!
//! - a daemon a start script leaves running (the service) holds none of the
//!   agent's descriptors, survives a kill -9 of the agent, and the next
//!   agent attaches its XDP program and comes up;
//! - a script still running when the agent is killed with SIGKILL dies
//!   with it;
//! - a script still running when the agent stops (SIGTERM) is waited for
//!   until its timeout, which kills its process group: nothing of it
//!   outlives the agent.
//!
//! Every process a script starts is killed at the end of its test, by pid
//! (checked against its command line), also on panic.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hb_agent::control::{Request, client};
use hb_testkit::process::{Inheritable, Leftover};
use hb_tests::twohost::{TwoHosts, config};

/// Two hosts; b runs group `g` of one Heartbeat script `name` with `body`
/// and `timeout`.
fn hosts(tag: &str, name: &str, body: &str, timeout: &str) -> (TwoHosts, PathBuf) {
    let h = TwoHosts::new(tag, "").unwrap();
    let rd = h.dir.join("resource.d");
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::write(rd.join(name), body).unwrap();
    std::fs::set_permissions(rd.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = format!("script_dirs = [\"{}\"]", rd.display());
    let text = config("orphans", "orphans", "100ms", "1s", &extra)
        .replace("[timing]\n", "[timing]\ninitdead = \"1s\"\n")
        + &format!(
            "[[group]]\nname = \"g\"\nnodes = [\"b\"]\n\
             [[group.resource]]\ntype = \"script\"\nname = \"{name}\"\ntimeout = \"{timeout}\"\n"
        );
    h.write_config(&text).unwrap();
    let dir = h.dir.clone();
    (h, dir)
}

fn agent_up(h: &TwoHosts, held: bool) {
    let t0 = Instant::now();
    loop {
        let s = client::call(&h.socket(), &Request::Status)
            .ok()
            .and_then(|r| r.status);
        if let Some(s) = s
            && (!held || s.groups.iter().any(|g| g.name == "g" && g.local == "held"))
        {
            return;
        }
        let log = std::fs::read_to_string(h.log()).unwrap_or_default();
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "b never came up{}:\n{log}",
            if held { " holding g" } else { "" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A start script that leaves `sleep SECS` running as its daemon.
fn daemon_script(secs: u32) -> String {
    format!(
        "#!/bin/sh\nd=$(dirname \"$0\")/..\ncase \"$1\" in\n\
         start) sleep {secs} </dev/null >/dev/null 2>&1 &\n echo $! > $d/daemon.pid; touch $d/running; exit 0;;\n\
         stop) rm -f $d/running; exit 0;;\n\
         status) [ -e $d/running ] && echo running || echo stopped; exit 0;;\nesac\n"
    )
}

#[test]
fn a_daemon_left_by_a_script_holds_no_agent_fd_and_outlives_a_kill_9() {
    let (h, dir) = hosts("so", "Daemon", &daemon_script(311), "60s");
    let leak = Inheritable::open();
    let mut first = h.start_b(&["--no-pin"]).unwrap();
    drop(leak);
    agent_up(&h, true);
    let daemon = Leftover::wait_for(&dir.join("daemon.pid"), 0, "sleep 311");
    let fds = daemon.fds();
    assert_eq!(
        fds.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "the daemon holds descriptors of the agent's: {fds:?}"
    );

    // kill -9: the service stays; the next agent attaches and takes over.
    first.kill();
    assert!(
        daemon.running(),
        "the daemon is the service: it keeps running"
    );
    let _second = h.start_b(&["--no-pin"]).unwrap();
    agent_up(&h, true);
    let log = std::fs::read_to_string(h.log()).unwrap();
    assert_eq!(
        log.matches("XDP program attached").count(),
        2,
        "both agents attached:\n{log}"
    );
    assert!(!log.contains("File exists"), "{log}");
}

#[test]
fn a_script_running_when_the_agent_is_killed_dies_with_it() {
    let body = "#!/bin/sh\nd=$(dirname \"$0\")/..\ncase \"$1\" in\n\
                start) echo $$ > $d/script.pid; exec sleep 312;;\n\
                stop) exit 0;;\nstatus) echo stopped; exit 0;;\nesac\n";
    let (h, dir) = hosts("sk", "Hang", body, "60s");
    let mut first = h.start_b(&["--no-pin"]).unwrap();
    agent_up(&h, false);
    let script = Leftover::wait_for(&dir.join("script.pid"), 0, "sleep 312");
    first.kill();
    assert!(
        script.wait_gone(Duration::from_secs(3)),
        "the script (pid {}) outlived the agent",
        script.pid
    );
    let _second = h.start_b(&["--no-pin"]).unwrap();
    agent_up(&h, false);
    let log = std::fs::read_to_string(h.log()).unwrap();
    assert_eq!(log.matches("XDP program attached").count(), 2, "{log}");
}

#[test]
fn a_script_running_when_the_agent_stops_is_killed_with_its_group() {
    // A stop that never ends: the agent waits for it until its timeout,
    // which kills its process group, and only then exits.
    let body = "#!/bin/sh\nd=$(dirname \"$0\")/..\ncase \"$1\" in\n\
                start) touch $d/running; exit 0;;\n\
                stop) sleep 313 &\n echo $$ $! > $d/script.pid; wait;;\n\
                status) [ -e $d/running ] && echo running || echo stopped; exit 0;;\nesac\n";
    let (h, dir) = hosts("st", "Slow", body, "2s");
    let mut agent = h.start_b(&["--no-pin"]).unwrap();
    agent_up(&h, true);
    agent.signal(libc::SIGTERM);
    let pids = dir.join("script.pid");
    let child = Leftover::wait_for(&pids, 1, "sleep 313");
    let sh = format!("/bin/sh {} stop", dir.join("resource.d/Slow").display());
    let script = Leftover::wait_for(&pids, 0, &sh);
    let t0 = Instant::now();
    while agent.running() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the agent did not stop:\n{}",
            std::fs::read_to_string(h.log()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        script.wait_gone(Duration::from_secs(3)),
        "the script (pid {}) outlived the agent",
        script.pid
    );
    assert!(
        child.wait_gone(Duration::from_secs(3)),
        "its child (pid {}) outlived the agent",
        child.pid
    );
}

/// The case as reported: the agent started the way `ip netns exec` users
/// do, without `--pin-dir`. It used to pin on a /sys/fs/bpf mounted in its
/// private mount namespace, which a daemon left by a script kept alive
/// after kill -9, with the pinned XDP link; the next agent (a new mount
/// namespace, which cannot see those pins) failed with "File exists".
#[test]
fn a_daemon_keeping_the_old_mount_namespace_does_not_block_the_restart() {
    let (h, dir) = hosts("sm", "Daemon", &daemon_script(313), "60s");
    let mut first = h.start_b(&[]).unwrap();
    agent_up(&h, true);
    let daemon = Leftover::wait_for(&dir.join("daemon.pid"), 0, "sleep 313");
    first.kill();
    assert!(daemon.running());
    let _second = h.start_b(&[]).unwrap();
    agent_up(&h, true);
}
