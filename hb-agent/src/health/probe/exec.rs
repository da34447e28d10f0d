//! `exec` checks: `/bin/sh -c COMMAND`, healthy iff it exits 0 in time.
//!
//! The script runs in a process group of its own so that a timeout kills
//! everything it started (`killpg`), not just the shell. Its stdout and
//! stderr share one pipe, of which hb keeps the first `OUTPUT_LIMIT` bytes
//! and drains the rest (so a chatty script is not blocked on a full pipe
//! and does not fail for it). hb never waits for the pipe's end: a script
//! that leaves a daemon holding its stdout is done when the shell exits.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use hb_core::health::OUTPUT_LIMIT;
use tokio::io::AsyncReadExt as _;
use tokio::net::unix::pipe;
use tokio::time::Instant;

use super::{DETAIL_LIMIT, Outcome, ms, one_line};

/// How long a killed script's shell gets to be reaped before hb leaves it
/// to tokio's orphan reaping (a process in uninterruptible sleep).
const REAP_WAIT: Duration = Duration::from_secs(1);
/// Most bytes read after the shell exited (what is already in the pipe):
/// a daemon that keeps writing to it cannot hold the check.
const AFTER_EXIT: usize = 64 * 1024;

/// Runs the check; see the module's doc.
pub async fn exec(command: &str, timeout: Duration) -> Outcome {
    match run(command, timeout).await {
        Err(e) => Outcome::fail(e),
        Ok(Ran {
            end: End::TimedOut, ..
        }) => Outcome::fail(format!(
            "timed out after {} (process group killed)",
            ms(timeout)
        )),
        Ok(Ran {
            end: End::Exited(st),
            output,
        }) => judge(st, &output),
    }
}

enum End {
    Exited(ExitStatus),
    TimedOut,
}

struct Ran {
    end: End,
    /// The first `OUTPUT_LIMIT` bytes of stdout and stderr, interleaved.
    output: Vec<u8>,
}

async fn run(command: &str, timeout: Duration) -> Result<Ran, String> {
    let deadline = Instant::now() + timeout;
    let (rx, tx) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let tx2 = tx.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(tx)
        .stderr(tx2)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    // The Command holds the pipe's write ends: without dropping it the
    // pipe could never end.
    drop(cmd);
    let mut child = spawned.map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let mut group = Group(child.id().map(|p| p as libc::pid_t));
    let mut rx =
        pipe::Receiver::from_owned_fd(OwnedFd::from(rx)).map_err(|e| format!("pipe: {e}"))?;

    let mut output = Vec::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = true;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st,
            r = rx.read(&mut buf), if open => match r {
                Ok(0) | Err(_) => open = false,
                Ok(n) => keep(&mut output, &buf[..n]),
            },
            _ = tokio::time::sleep_until(deadline) => {
                group.kill();
                if tokio::time::timeout(REAP_WAIT, child.wait()).await.is_ok() {
                    group.0 = None; // reaped: its pid may be reused now
                }
                return Ok(Ran { end: End::TimedOut, output });
            }
        }
    };
    group.0 = None;
    let status = status.map_err(|e| format!("waiting for /bin/sh: {e}"))?;
    // What the script wrote before it exited is in the pipe already.
    let mut after = 0;
    while open && after < AFTER_EXIT {
        match rx.try_read(&mut buf) {
            Ok(n) if n > 0 => {
                keep(&mut output, &buf[..n]);
                after += n;
            }
            _ => break, // the end, or nothing more there now
        }
    }
    Ok(Ran {
        end: End::Exited(status),
        output,
    })
}

fn keep(output: &mut Vec<u8>, bytes: &[u8]) {
    let room = OUTPUT_LIMIT.saturating_sub(output.len());
    output.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// `exit 0`, `exit 3: first line of output`, `killed by signal 9`.
fn judge(st: ExitStatus, output: &[u8]) -> Outcome {
    if let Some(sig) = st.signal() {
        return Outcome::fail(format!("killed by signal {sig}"));
    }
    let code = st.code().unwrap_or(-1);
    if code == 0 {
        return Outcome::pass("exit 0");
    }
    let text = String::from_utf8_lossy(output);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        None => Outcome::fail(format!("exit {code}")),
        Some(line) => {
            let head = format!("exit {code}: ");
            let room = DETAIL_LIMIT - head.chars().count();
            Outcome::fail(format!("{head}{}", one_line(line, room)))
        }
    }
}

/// The script's process group, killed on drop unless its leader (the
/// shell) was reaped: a cancelled check leaves nothing behind, and a
/// reaped leader's pid (the group's id) may belong to someone else.
struct Group(Option<libc::pid_t>);

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: plain syscall; the group is the script's own (its
            // leader is not reaped yet, so the id is not reused).
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn exit_status_and_first_line_of_output() {
        assert_eq!(exec("exit 0", T).await, Outcome::pass("exit 0"));
        assert_eq!(exec("exit 1", T).await, Outcome::fail("exit 1"));
        assert_eq!(
            exec("echo; echo '  disk full  ' >&2; echo more; exit 3", T).await,
            Outcome::fail("exit 3: disk full")
        );
        assert_eq!(
            exec("kill -9 $$", T).await,
            Outcome::fail("killed by signal 9")
        );
        // stdin is /dev/null: a script reading it does not wait.
        assert_eq!(exec("read x; exit 4", T).await, Outcome::fail("exit 4"));
    }

    #[tokio::test]
    async fn output_is_bounded_and_drained() {
        let t0 = std::time::Instant::now();
        let r = run("yes | head -c 10000000; exit 3", T).await.unwrap();
        assert!(matches!(r.end, End::Exited(st) if st.code() == Some(3)));
        assert_eq!(r.output.len(), OUTPUT_LIMIT);
        assert_eq!(
            exec("yes | head -c 10000000", T).await,
            Outcome::pass("exit 0")
        );
        println!("10 MB of output drained in {:?} (2 runs)", t0.elapsed());
        // One long line: cut to fit the detail.
        let o = exec("head -c 100000 /dev/zero | tr '\\0' x; exit 3", T).await;
        assert!(o.detail.starts_with("exit 3: xxx"), "{o:?}");
        assert!(
            o.detail.ends_with('…') && o.detail.chars().count() == DETAIL_LIMIT,
            "{o:?}"
        );
    }

    #[tokio::test]
    async fn a_daemon_holding_stdout_does_not_hold_the_check() {
        let t0 = std::time::Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = format!(
            "sleep 30 & echo $! > {}; echo started; exit 0",
            pidfile.display()
        );
        assert_eq!(exec(&cmd, T).await, Outcome::pass("exit 0"));
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        // The daemon is ours to end (it outlives a passing check by design).
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: the sleep this test started; its parent shell is gone, so
        // nothing else reaps and reuses it in between.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        println!("exec with a leftover daemon: {took:?}");
    }

    /// `pid` exits within a second (or is gone already).
    fn exits(pid: libc::pid_t) -> bool {
        // SAFETY: plain syscalls on a fd we own.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
            if fd < 0 {
                return true; // gone already
            }
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let n = libc::poll(&mut p, 1, 1000);
            libc::close(fd);
            n == 1
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let t0 = std::time::Instant::now();
        let o = exec(&cmd, Duration::from_millis(200)).await;
        let took = t0.elapsed();
        assert_eq!(
            o,
            Outcome::fail("timed out after 200 ms (process group killed)")
        );
        assert!(took < Duration::from_millis(400), "{took:?}");
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            exits(grandchild),
            "the script's background sleep survived the timeout"
        );

        // A script spinning the CPU is killed too.
        let t0 = std::time::Instant::now();
        let o = exec("while :; do :; done", Duration::from_millis(100)).await;
        assert!(
            !o.ok && o.detail.starts_with("timed out after 100 ms"),
            "{o:?}"
        );
        assert!(t0.elapsed() < Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_cancelled_check_kills_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        // Boxed, so that dropping it drops the check itself.
        let mut check = Box::pin(exec(&cmd, T));
        // Poll until the script has written its background pid, then drop.
        let pid = loop {
            tokio::select! {
                o = &mut check => panic!("finished: {o:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
        };
        drop(check);
        assert!(
            exits(pid),
            "the cancelled check's background sleep survived"
        );
    }
}
