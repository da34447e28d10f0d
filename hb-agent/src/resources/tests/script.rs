//! Scripts: Heartbeat args, LSB status codes, OCF env and monitor 7, timeouts
//! that kill the whole process group, lookup order, what a script inherits
//! and how long it lives. No namespace needed: the scripts only touch their
//! temp dirs.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::*;
use crate::resources::script::ScriptRunner;
use crate::resources::{ResourceError, ResourceState, ScriptKind, ScriptSpec};

fn runner(dir: &Path) -> ScriptRunner {
    ScriptRunner::new(
        vec![dir.join("resource.d"), dir.join("init.d")],
        dir.join("ocf"),
    )
    .with_kill_grace(Duration::from_millis(300))
}

/// The group the scripts run for (OCF_RESOURCE_INSTANCE).
const G: &str = "g1";

fn call(
    name: &str,
    args: &[String],
    kind: &ScriptKind,
    params: &BTreeMap<String, String>,
    timeout: Duration,
) -> ScriptSpec {
    ScriptSpec {
        name: name.into(),
        args: args.to_vec(),
        kind: kind.clone(),
        params: params.clone(),
        timeout,
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn heartbeat_script_gets_args_then_action() {
    let d = tempdir();
    let log = d.path().join("log");
    write_script(
        &d.path().join("resource.d/Remac1"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\ncase \"$3\" in start|stop) exit 0;; *) echo \"Usage: $0 {{start|stop}}\"; exit 1;; esac\n",
            log.display()
        ),
    );
    let r = runner(d.path());
    let args = vec!["eth0".to_string(), "00:1E:68:1E:99:5E".to_string()];
    let (kind, params) = (ScriptKind::Heartbeat, BTreeMap::new());
    let c = call("Remac1", &args, &kind, &params, T);
    assert!(r.start(G, &c).await.expect("start"), "start ran");
    assert!(r.stop(G, &c).await.expect("stop"));
    assert_eq!(
        read(&log),
        "eth0 00:1E:68:1E:99:5E status\neth0 00:1E:68:1E:99:5E start\neth0 00:1E:68:1E:99:5E stop\n"
    );
}

#[tokio::test]
async fn lsb_status_codes_and_output() {
    let d = tempdir();
    let state = d.path().join("state");
    let log = d.path().join("log");
    write_script(
        &d.path().join("init.d/httpd"),
        &format!(
            "#!/bin/sh\necho \"$1\" >> {log}\ncase \"$1\" in\n status) code=$(cat {st}); [ \"$code\" = 0 ] && echo 'httpd (pid 42) is running...'; [ \"$code\" = 3 ] && echo 'httpd is stopped'; exit $code;;\n start) echo 0 > {st}; exit 0;;\n stop) echo 3 > {st}; exit 0;;\nesac\nexit 2\n",
            log = log.display(),
            st = state.display()
        ),
    );
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Lsb, BTreeMap::new(), vec![]);
    let c = call("httpd", &args, &kind, &params, T);
    std::fs::write(&state, "3").unwrap();
    assert_eq!(
        r.status(G, &c).await.unwrap(),
        ResourceState::Absent,
        "exit 3 = stopped"
    );
    assert!(r.start(G, &c).await.unwrap());
    assert_eq!(
        r.status(G, &c).await.unwrap(),
        ResourceState::InPlace,
        "exit 0 = running"
    );
    assert!(
        !r.start(G, &c).await.unwrap(),
        "already running: start not run again"
    );
    assert!(r.stop(G, &c).await.unwrap());
    assert_eq!(r.status(G, &c).await.unwrap(), ResourceState::Absent);
    assert_eq!(
        read(&log),
        "status\nstatus\nstart\nstatus\nstatus\nstop\nstatus\n"
    );
    // Heartbeat-style output without LSB codes.
    write_script(
        &d.path().join("resource.d/old"),
        "#!/bin/sh\necho OK\nexit 1\n",
    );
    let hb = ScriptKind::Heartbeat;
    let c = call("old", &args, &hb, &params, T);
    assert_eq!(
        r.status(G, &c).await.unwrap(),
        ResourceState::InPlace,
        "\"OK\" = up"
    );
    write_script(
        &d.path().join("resource.d/old2"),
        "#!/bin/sh\necho No\nexit 0\n",
    );
    let c = call("old2", &args, &hb, &params, T);
    assert_eq!(
        r.status(G, &c).await.unwrap(),
        ResourceState::Absent,
        "\"No\" = down"
    );
}

#[tokio::test]
async fn ocf_env_params_and_monitor_7() {
    let d = tempdir();
    let env = d.path().join("env");
    let flag = d.path().join("running");
    write_script(
        &d.path().join("ocf/resource.d/acme/Dummy"),
        &format!(
            "#!/bin/sh\nenv | grep '^OCF_' | sort > {env}\ncase \"$1\" in\n monitor) [ -e {f} ] && exit 0; exit 7;;\n start) touch {f}; exit 0;;\n stop) [ -e {f} ] || exit 7; rm {f}; exit 0;;\nesac\nexit 3\n",
            env = env.display(),
            f = flag.display()
        ),
    );
    let r = runner(d.path());
    let kind = ScriptKind::Ocf {
        provider: "acme".into(),
    };
    let params: BTreeMap<String, String> = [
        ("ip".to_string(), "192.168.32.21".to_string()),
        ("fs_type".to_string(), "ext3".to_string()),
    ]
    .into_iter()
    .collect();
    let args = vec![];
    let c = call("Dummy", &args, &kind, &params, T);
    assert_eq!(
        r.status(G, &c).await.unwrap(),
        ResourceState::Absent,
        "monitor 7 = not running"
    );
    assert!(r.start(G, &c).await.unwrap());
    assert_eq!(r.status(G, &c).await.unwrap(), ResourceState::InPlace);
    let e = read(&env);
    let root = d.path().join("ocf");
    for want in [
        format!("OCF_ROOT={}", root.display()),
        "OCF_RESOURCE_INSTANCE=g1_Dummy".to_string(),
        "OCF_RESOURCE_TYPE=Dummy".to_string(),
        "OCF_RESOURCE_PROVIDER=acme".to_string(),
        "OCF_RESKEY_ip=192.168.32.21".to_string(),
        "OCF_RESKEY_fs_type=ext3".to_string(),
        "OCF_RESKEY_CRM_meta_timeout=10000".to_string(),
    ] {
        assert!(e.lines().any(|l| l == want), "{want} missing from\n{e}");
    }
    assert!(r.stop(G, &c).await.unwrap());
    assert!(
        !r.stop(G, &c).await.unwrap(),
        "stop when not running (exit 7) is Ok"
    );
}

fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its reaper is dead.
        Ok(s) => s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

#[tokio::test]
async fn hanging_script_is_killed_with_its_process_group_at_timeout() {
    let d = tempdir();
    let pids = d.path().join("pids");
    write_script(
        &d.path().join("resource.d/hang"),
        &format!(
            "#!/bin/sh\nsleep 100 &\necho $$ $! > {p}\nwait\n",
            p = pids.display()
        ),
    );
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Heartbeat, BTreeMap::new(), vec![]);
    let c = call("hang", &args, &kind, &params, Duration::from_millis(500));
    let t0 = Instant::now();
    let err = r
        .run(G, &c, crate::resources::script::ScriptAction::Start)
        .await
        .unwrap_err();
    let took = t0.elapsed();
    match &err {
        ResourceError::ScriptTimeout {
            script, timeout, ..
        } => {
            assert!(script.ends_with("resource.d/hang"), "{err}");
            assert_eq!(*timeout, Duration::from_millis(500));
        }
        e => panic!("expected a timeout, got {e}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("hang") && msg.contains("500ms"), "{msg}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let text = read(&pids);
    let ids: Vec<i32> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{text}");
    // Give init a moment to reap the orphaned sleep.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(gone(ids[0]) && gone(ids[1])) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(ids[0]), "the script (pid {}) is gone", ids[0]);
    assert!(gone(ids[1]), "its child sleep (pid {}) is gone", ids[1]);
}

#[tokio::test]
async fn lookup_order_resource_d_then_init_d() {
    let d = tempdir();
    let log = d.path().join("log");
    for dir in ["resource.d", "init.d"] {
        write_script(
            &d.path().join(dir).join("both"),
            &format!("#!/bin/sh\necho {dir} >> {}\n", log.display()),
        );
    }
    write_script(
        &d.path().join("init.d/only_init"),
        &format!("#!/bin/sh\necho only_init >> {}\n", log.display()),
    );
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Lsb, BTreeMap::new(), vec![]);
    assert!(
        r.stop(G, &call("both", &args, &kind, &params, T))
            .await
            .unwrap()
    );
    assert!(
        r.stop(G, &call("only_init", &args, &kind, &params, T))
            .await
            .unwrap()
    );
    assert_eq!(read(&log), "resource.d\nonly_init\n");
    let err = r
        .stop(G, &call("missing", &args, &kind, &params, T))
        .await
        .unwrap_err();
    match &err {
        ResourceError::ScriptNotFound { name, searched } => {
            assert_eq!(name, "missing");
            assert_eq!(
                searched,
                &vec![d.path().join("resource.d"), d.path().join("init.d")]
            );
        }
        e => panic!("{e}"),
    }
}

#[tokio::test]
async fn failing_script_error_carries_code_and_output() {
    let d = tempdir();
    write_script(
        &d.path().join("resource.d/bad"),
        "#!/bin/sh\n[ \"$1\" = status ] && exit 3\necho 'cannot bind 0.0.0.0:80' >&2\nexit 1\n",
    );
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Lsb, BTreeMap::new(), vec![]);
    let err = r
        .start(G, &call("bad", &args, &kind, &params, T))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bad") && msg.contains("start") && msg.contains("exit 1"),
        "{msg}"
    );
    assert!(msg.contains("cannot bind 0.0.0.0:80"), "{msg}");
}

#[tokio::test]
async fn a_daemon_left_by_start_keeps_running_with_only_its_stdio() {
    let d = tempdir();
    let pids = d.path().join("pids");
    write_script(
        &d.path().join("resource.d/daemon"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = start ] || {{ echo stopped; exit 0; }}\n\
             sleep 301 </dev/null >/dev/null 2>&1 &\necho $! > {p}\nexit 0\n",
            p = pids.display()
        ),
    );
    let leak = Inheritable::open();
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Heartbeat, BTreeMap::new(), vec![]);
    assert!(
        r.start(G, &call("daemon", &args, &kind, &params, T))
            .await
            .unwrap()
    );
    let daemon = Leftover::wait_for(&pids, 0, "sleep 301");
    assert_eq!(
        daemon.fd_numbers(),
        vec![0, 1, 2],
        "the daemon holds descriptors of the agent's (fd {} is one)",
        leak.0
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        daemon.running(),
        "the daemon is the service: it keeps running"
    );
}

#[test]
fn a_running_script_dies_with_the_thread_that_started_it() {
    // The agent killed with SIGKILL: its resource thread ends without
    // dropping anything. Here: a thread that leaves its runtime, with the
    // call still running, behind.
    let d = tempdir();
    let pids = d.path().join("pids");
    write_script(
        &d.path().join("resource.d/hang"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = start ] || {{ echo stopped; exit 0; }}\n\
             echo $$ > {p}\nexec sleep 302\n",
            p = pids.display()
        ),
    );
    let r = runner(d.path());
    let p = pids.clone();
    let script = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(async move {
            let (kind, params, args) = (ScriptKind::Heartbeat, BTreeMap::new(), vec![]);
            let _ = r
                .run(
                    G,
                    &call("hang", &args, &kind, &params, Duration::from_secs(60)),
                    crate::resources::script::ScriptAction::Start,
                )
                .await;
        });
        let script = rt.block_on(async move {
            tokio::task::spawn_blocking(move || Leftover::wait_for(&p, 0, "sleep 302"))
                .await
                .unwrap()
        });
        std::mem::forget(rt);
        script
    })
    .join()
    .unwrap();
    assert!(
        script.wait_gone(Duration::from_secs(3)),
        "the script (pid {}) outlived the thread that started it",
        script.pid
    );
}

#[tokio::test]
async fn a_cancelled_call_kills_the_script_and_its_group() {
    // The agent stopping before a script finished: the call is dropped.
    let d = tempdir();
    let pids = d.path().join("pids");
    write_script(
        &d.path().join("resource.d/slow"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = start ] || {{ echo stopped; exit 0; }}\n\
             sleep 303 &\necho $$ $! > {p}\nwait\n",
            p = pids.display()
        ),
    );
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Heartbeat, BTreeMap::new(), vec![]);
    let c = call("slow", &args, &kind, &params, Duration::from_secs(60));
    let p = pids.clone();
    let sh = format!(
        "/bin/sh {} start",
        d.path().join("resource.d/slow").display()
    );
    let started = tokio::task::spawn_blocking(move || {
        let child = Leftover::wait_for(&p, 1, "sleep 303");
        (Leftover::wait_for(&p, 0, &sh), child)
    });
    let (script, child) = tokio::select! {
        _ = r.run(G, &c, crate::resources::script::ScriptAction::Start) => panic!("the script finished"),
        s = started => s.unwrap(),
    };
    assert!(
        script.wait_gone(Duration::from_secs(3)),
        "the script (pid {}) survived",
        script.pid
    );
    assert!(
        child.wait_gone(Duration::from_secs(3)),
        "its child (pid {}) survived",
        child.pid
    );
}

#[tokio::test]
async fn a_script_that_cannot_run_is_still_an_error_of_its_own() {
    // The descriptors are marked close-on-exec, not closed: std's pipe that
    // reports a failed exec (here EACCES) must stay open until the exec.
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir();
    let path = write_script(&d.path().join("resource.d/noexec"), "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = runner(d.path());
    let (kind, params, args) = (ScriptKind::Heartbeat, BTreeMap::new(), vec![]);
    let err = r
        .run(
            G,
            &call("noexec", &args, &kind, &params, T),
            crate::resources::script::ScriptAction::Start,
        )
        .await
        .unwrap_err();
    match &err {
        ResourceError::Io { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::EACCES), "{err}")
        }
        e => panic!("expected the exec error, got {e}"),
    }
}
