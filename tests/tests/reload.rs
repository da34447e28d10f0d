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
