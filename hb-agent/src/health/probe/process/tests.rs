//! Process watches on processes these tests start (and only those), named
//! uniquely per test process so nothing else on the host matches.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hb_testkit::process::Process;

use super::*;

const RESCAN: Duration = Duration::from_millis(50);
/// A generous bound for a death notice (measured: well under 1 ms).
const NOTICE: Duration = Duration::from_millis(200);

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `hbsvc<pid><n>`: no other process on the host has it.
fn unique() -> String {
    format!(
        "hbsvc{}{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// `sleep 30` with argv[0] = `name` (its comm stays `sleep`).
fn sleeper(name: &str) -> Process {
    let c = Command::new("sleep")
        .arg0(name)
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawning sleep");
    execed(Process::new(c), name)
}

/// Waits until `p`'s exec is complete (its argv[0] is `argv0`): spawn
/// returns once the child left our memory, a moment before the kernel
/// has set its new arguments and comm.
fn execed(p: Process, argv0: &str) -> Process {
    let path = format!("/proc/{}/cmdline", p.pid());
    let t0 = Instant::now();
    loop {
        let cmd = std::fs::read(&path).unwrap_or_default();
        if cmd.split(|&c| c == 0).next() == Some(argv0.as_bytes()) {
            return p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "pid {} never ran {argv0}",
            p.pid()
        );
        std::thread::yield_now();
    }
}

/// Kills `p` while `w.next()` waits, and says what it reported and when
/// after the SIGKILL.
async fn kill_during_next(w: &mut ProcessWatch, p: &Process) -> (Outcome, Duration) {
    let mut t0 = None;
    let (o, ()) = tokio::join!(w.next(RESCAN), async {
        // `next` runs first (join polls in order) and waits on the pidfd.
        tokio::task::yield_now().await;
        t0 = Some(Instant::now());
        p.signal(libc::SIGKILL);
    });
    (o, t0.unwrap().elapsed())
}

/// Exited (a zombie, not reaped: the watch must not count it).
fn wait_exited(p: &Process) {
    let fd = scan::pidfd_open(p.pid()).unwrap();
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(
        unsafe { libc::poll(&mut pfd, 1, 5000) },
        1,
        "pid {} did not exit",
        p.pid()
    );
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "min {:?} median {:?} max {:?} (n={})",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::test]
async fn death_is_noticed_at_once_by_name() {
    let mut lat = Vec::new();
    for _ in 0..20 {
        let name = unique();
        let mut p = sleeper(&name);
        let mut w = ProcessWatch::new(ProcessBy::Name(name.clone()));
        assert_eq!(
            w.next(RESCAN).await,
            Outcome::pass(format!("pid {}", p.pid()))
        );
        let (o, took) = kill_during_next(&mut w, &p).await;
        assert_eq!(o, Outcome::fail(format!("no process named {name}")));
        assert!(took < NOTICE, "{took:?}");
        lat.push(took);
        p.kill();
    }
    println!(
        "process death notice (pidfd + one /proc look): {}",
        stats(lat)
    );
}

#[tokio::test]
async fn one_of_several_dying_is_no_change() {
    let name = unique();
    let mut a = sleeper(&name);
    let mut b = sleeper(&name);
    let mut w = ProcessWatch::new(ProcessBy::Name(name.clone()));
    assert_eq!(w.next(RESCAN).await, Outcome::pass("2 processes"));
    a.signal(libc::SIGKILL);
    // Several rescans' worth of nothing to report (a cancelled call loses
    // nothing).
    let quiet = tokio::time::timeout(RESCAN * 6, w.next(RESCAN)).await;
    assert!(quiet.is_err(), "reported {quiet:?} with one of two alive");
    let (o, took) = kill_during_next(&mut w, &b).await;
    assert_eq!(o, Outcome::fail(format!("no process named {name}")));
    assert!(took < NOTICE, "{took:?}");
    a.kill();
    b.kill();
}

#[tokio::test]
async fn a_process_that_appears_is_found_by_the_next_look() {
    let name = unique();
    let mut w = ProcessWatch::new(ProcessBy::Name(name.clone()));
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::fail(format!("no process named {name}"))
    );
    let mut p = sleeper(&name);
    let t0 = Instant::now();
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::pass(format!("pid {}", p.pid()))
    );
    assert!(t0.elapsed() < RESCAN * 4, "{:?}", t0.elapsed());
    // And one that comes back after a death, too.
    let (o, _) = kill_during_next(&mut w, &p).await;
    assert!(!o.ok);
    p.kill();
    let mut q = sleeper(&name);
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::pass(format!("pid {}", q.pid()))
    );
    q.kill();
}

#[tokio::test]
async fn names_match_comm_cut_to_15_or_argv0_basename() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{}-with-a-long-name", unique());
    let exe = dir.path().join(&long);
    // A symlink (no freshly written executable: no ETXTBSY races); its
    // name becomes the comm, cut to 15 bytes.
    std::os::unix::fs::symlink(which("sleep"), &exe).unwrap();
    let c = Command::new(&exe).arg0("x").arg("30").spawn().unwrap();
    let mut p = execed(Process::new(c), "x");
    for n in [long.as_str(), &long[..15]] {
        let mut w = ProcessWatch::new(ProcessBy::Name(n.to_string()));
        assert_eq!(
            w.next(RESCAN).await,
            Outcome::pass(format!("pid {}", p.pid())),
            "{n}"
        );
    }
    // argv[0] as a path: its basename counts; a prefix of it does not.
    let name = unique();
    let mut q = sleeper(&format!("/opt/hb-test/{name}"));
    let mut w = ProcessWatch::new(ProcessBy::Name(name.clone()));
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::pass(format!("pid {}", q.pid()))
    );
    let mut w = ProcessWatch::new(ProcessBy::Name(name[..name.len() - 1].to_string()));
    assert!(!w.next(RESCAN).await.ok);
    p.kill();
    q.kill();
}

fn which(cmd: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| PathBuf::from(d).join(cmd))
        .find(|p| p.exists())
        .unwrap()
}

#[tokio::test]
async fn zombies_do_not_count() {
    let name = unique();
    let mut p = sleeper(&name);
    p.signal(libc::SIGKILL);
    wait_exited(&p); // a zombie now: exited, not reaped
    let mut w = ProcessWatch::new(ProcessBy::Name(name.clone()));
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::fail(format!("no process named {name}"))
    );
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("z.pid");
    std::fs::write(&pf, format!("{}\n", p.pid())).unwrap();
    let mut w = ProcessWatch::new(ProcessBy::Pidfile(pf.clone()));
    let o = w.next(RESCAN).await;
    assert_eq!(
        o,
        Outcome::fail(format!(
            "pidfile {}: pid {} is not running",
            pf.display(),
            p.pid()
        ))
    );
    p.kill();
}

#[tokio::test]
async fn pidfile_states_and_death() {
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("svc.pid");
    let what = format!("pidfile {}", pf.display());
    let mut w = ProcessWatch::new(ProcessBy::Pidfile(pf.clone()));
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::fail(format!("{what}: no such file"))
    );
    std::fs::write(&pf, "garbage").unwrap();
    let mut w = ProcessWatch::new(ProcessBy::Pidfile(pf.clone()));
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::fail(format!("{what}: no pid in it"))
    );

    let mut p = sleeper(&unique());
    std::fs::write(&pf, format!("{}\n", p.pid())).unwrap();
    // The watch that saw garbage finds it at its next look.
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::pass(format!("pid {}", p.pid()))
    );
    let (o, took) = kill_during_next(&mut w, &p).await;
    assert_eq!(
        o,
        Outcome::fail(format!("{what}: pid {} is not running", p.pid()))
    );
    assert!(took < NOTICE, "{took:?}");
    p.kill();

    // A pidfile that names another process while the old one lives on is
    // a change too (at the next look).
    let mut a = sleeper(&unique());
    std::fs::write(&pf, format!("{}\n", a.pid())).unwrap();
    let mut w = ProcessWatch::new(ProcessBy::Pidfile(pf.clone()));
    assert!(w.next(RESCAN).await.ok);
    std::fs::write(&pf, "999999999\n").unwrap();
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::fail(format!("{what}: pid 999999999 is not running"))
    );
    a.kill();
}

#[tokio::test]
async fn unit_processes_from_its_cgroup() {
    // A stand-in cgroup hierarchy: the unit's cgroup.procs and a
    // sub-cgroup's (as a unit with Delegate=) list our two sleeps.
    let root = tempfile::tempdir().unwrap();
    let cg = root.path().join("system.slice/hbtest.service");
    std::fs::create_dir_all(cg.join("payload")).unwrap();
    let mut a = sleeper(&unique());
    let mut b = sleeper(&unique());
    std::fs::write(cg.join("cgroup.procs"), format!("{}\n", a.pid())).unwrap();
    std::fs::write(cg.join("payload/cgroup.procs"), format!("{}\n", b.pid())).unwrap();
    let mut w =
        ProcessWatch::with_cgroup_roots(ProcessBy::Unit("hbtest".into()), vec![root.path().into()]);
    assert_eq!(w.next(RESCAN).await, Outcome::pass("2 processes"));
    a.signal(libc::SIGKILL);
    let quiet = tokio::time::timeout(RESCAN * 3, w.next(RESCAN)).await;
    assert!(quiet.is_err(), "reported {quiet:?} with one of two alive");
    let (o, took) = kill_during_next(&mut w, &b).await;
    assert_eq!(o, Outcome::fail("unit hbtest.service: no process"));
    assert!(took < NOTICE, "{took:?}");
    a.kill();
    b.kill();
}

#[tokio::test]
async fn a_unit_hb_cannot_find_asks_systemd() {
    // No such cgroup: systemctl (absent, not booted with systemd here, or
    // not knowing the unit) has no process either.
    let root = tempfile::tempdir().unwrap();
    let unit = format!("hbnosuch{}.service", std::process::id());
    let mut w =
        ProcessWatch::with_cgroup_roots(ProcessBy::Unit(unit.clone()), vec![root.path().into()]);
    let t0 = Instant::now();
    assert_eq!(
        w.next(RESCAN).await,
        Outcome::fail(format!("unit {unit}: no process"))
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(unit_name("nginx"), "nginx.service");
    assert_eq!(unit_name("web.socket"), "web.socket");
}

#[tokio::test]
async fn proc_scan_cost_and_death_notice_with_many_processes() {
    let n = 300;
    let name = unique();
    let mut crowd: Vec<Process> = (0..n).map(|_| sleeper(&format!("{}x", unique()))).collect();
    let mut p = sleeper(&name);
    let total = scan::all_pids().len();

    let mut hit = Vec::new();
    let mut miss = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        assert_eq!(scan::by_name(&name, None).procs.len(), 1);
        hit.push(t0.elapsed());
        let t0 = Instant::now();
        assert!(scan::by_name("hb-no-such-proc", None).procs.is_empty());
        miss.push(t0.elapsed());
    }
    let mut w = ProcessWatch::new(ProcessBy::Name(name));
    assert!(w.next(RESCAN).await.ok);
    let (o, took) = kill_during_next(&mut w, &p).await;
    assert!(!o.ok && took < NOTICE, "{o:?} {took:?}");
    println!("/proc look by name over {total} processes: {}", stats(hit));
    println!(
        "/proc look, no match, over {total} processes: {}",
        stats(miss)
    );
    println!("death notice with {total} processes on the host: {took:?}");
    p.kill();
    for c in &mut crowd {
        c.kill();
    }
}
