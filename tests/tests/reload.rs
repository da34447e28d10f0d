//! SIGHUP reloads the configuration; a file that no longer loads leaves the
//! running configuration in place and the agent serving, with the error
//! (file:line: field) in its log.

use hb_tests::twohost::{TwoHosts, config};

fn conf(keepalive: &str) -> String {
    config("reload-test", "reload", keepalive, "2s", "")
}

#[test]
fn bad_config_on_sighup_keeps_the_old_one_running() {
    let h = TwoHosts::new("rl", &conf("100ms")).unwrap();
    let mut agent = h.start_b(&["--no-pin"]).unwrap();
    h.wait_status(|_| true);

    // A typo: reload refused, the agent keeps running with the old file.
    h.write_config(&conf("100ms").replace("keepalive", "keeplive"))
        .unwrap();
    agent.signal(libc::SIGHUP);
    let l = h.wait_log("reload failed");
    assert!(
        l.contains("hb.toml:"),
        "the error names the file and line:\n{l}"
    );
    assert!(l.contains("keeplive"), "and the field:\n{l}");
    assert!(agent.running(), "agent still running");
    assert_eq!(
        h.wait_status(|_| true).cluster,
        "reload-test",
        "still answering"
    );

    // A good file: applied.
    h.write_config(&conf("200ms")).unwrap();
    agent.signal(libc::SIGHUP);
    h.wait_log("configuration reloaded");
    assert!(agent.running());
}

/// Configuration replaced by a FIFO: the reload must neither block the
/// agent (status answers, heartbeats go on) nor be applied. Before, the
/// reload read it on the event loop and the whole agent stalled until the
/// FIFO was written.
#[test]
fn a_fifo_in_place_of_the_config_does_not_stall_the_agent() {
    let h = TwoHosts::new("rf", &conf("100ms")).unwrap();
    let mut agent = h.start_b(&["--no-pin"]).unwrap();
    h.wait_status(|_| true);
    std::fs::remove_file(&h.conf).unwrap();
    let c = std::ffi::CString::new(h.conf.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path in the test's own directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    agent.signal(libc::SIGHUP);
    let before = h.wait_status(|_| true).uptime_s;
    // Status keeps answering, with time moving on, while the FIFO sits there.
    h.wait_status(|s| s.uptime_s > before + 0.5);
    assert!(agent.running());
    // A second SIGHUP while the first may still wait: no pile-up, no crash.
    agent.signal(libc::SIGHUP);
    h.wait_status(|s| s.uptime_s > before + 0.7);
    assert!(agent.running());
    // And it still stops when asked.
    agent.signal(libc::SIGTERM);
    let t0 = std::time::Instant::now();
    while agent.running() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "agent did not exit on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The pinger keeps the targets and deadping it started with: a reload
/// that changes them says they need a restart (timings still apply).
#[test]
fn a_reload_that_changes_ping_nodes_says_they_need_a_restart() {
    let h = TwoHosts::new("rp", &conf("100ms")).unwrap();
    let agent = h.start_b(&["--no-pin"]).unwrap();
    h.wait_status(|_| true);
    h.write_config(&config(
        "reload-test",
        "reload",
        "100ms",
        "2s",
        "ping_nodes = [\"10.160.100.30\"]",
    ))
    .unwrap();
    agent.signal(libc::SIGHUP);
    let l = h.wait_log("configuration reloaded");
    assert!(l.contains("ping nodes or deadping changed"), "{l}");
}
