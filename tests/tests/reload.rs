//! SIGHUP reloads the configuration; a file that no longer loads leaves the
//! running configuration in place and the agent serving, with the error
//! (file:line: field) in its log.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hb_agent::control::{Request, client};
use hb_tests::netns::{Netns, veth};

fn config(keepalive: &str) -> String {
    format!(
        "cluster = \"reload-test\"\nrealtime = false\n\
         [timing]\nkeepalive = \"{keepalive}\"\ndeadtime = \"2s\"\nwarntime = \"1s\"\ninitdead = \"4s\"\n\
         [auth]\nsecret = \"reload\"\n\
         [[link]]\nname = \"hb\"\niface = \"eth2\"\nkind = \"bcast\"\n\
         [[node]]\nname = \"a\"\naddrs = {{ hb = \"10.160.100.30\" }}\n\
         [[node]]\nname = \"b\"\naddrs = {{ hb = \"10.160.100.31\" }}\n"
    )
}

#[test]
fn bad_config_on_sighup_keeps_the_old_one_running() {
    let a = Netns::new("ra").unwrap();
    let b = Netns::new("rb").unwrap();
    veth(
        &a,
        "eth2",
        Some("10.160.100.30/24"),
        &b,
        "eth2",
        Some("10.160.100.31/24"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(hb_tests::netns::unique("reload"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("hb.toml");
    std::fs::write(&conf, config("100ms")).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sock = dir.join("b.sock");
    let log = dir.join("b.log");
    let child = Command::new("ip")
        .args(["netns", "exec", &b.name])
        .arg(hb_tests::lab::default_agent_bin().unwrap())
        .args(["run", "--node", "b", "--no-pin", "--config"])
        .arg(&conf)
        .arg("--socket")
        .arg(&sock)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    /// Ends the agent this test started, also on panic.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut agent = Kill(child);
    let status = || {
        client::call(&sock, &Request::Status)
            .ok()
            .and_then(|r| r.status)
    };
    let t0 = Instant::now();
    while status().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "agent did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let wait_log = |what: &str| {
        let t0 = Instant::now();
        loop {
            let l = std::fs::read_to_string(&log).unwrap_or_default();
            if l.contains(what) {
                return l;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no {what:?} in the log:\n{l}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // A typo: reload refused, the agent keeps running with the old file.
    std::fs::write(&conf, config("100ms").replace("keepalive", "keeplive")).unwrap();
    // SAFETY: signals only the agent this test started.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGHUP) };
    let l = wait_log("reload failed");
    assert!(
        l.contains("hb.toml:"),
        "the error names the file and line:\n{l}"
    );
    assert!(l.contains("keeplive"), "and the field:\n{l}");
    assert!(
        matches!(agent.0.try_wait(), Ok(None)),
        "agent still running"
    );
    assert_eq!(status().expect("still answering").cluster, "reload-test");

    // A good file: applied.
    std::fs::write(&conf, config("200ms")).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGHUP) };
    wait_log("configuration reloaded");
    assert!(matches!(agent.0.try_wait(), Ok(None)));
    let _ = std::fs::remove_dir_all(&dir);
}
