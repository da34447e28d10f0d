//! Script resources: Heartbeat resource.d scripts, LSB init scripts, OCF agents.
//!
//! - Heartbeat: `<dir>/name arg... start|stop|status`, looked up in the script
//!   directories in order (resource.d, then init.d).
//! - LSB: `<dir>/name start|stop|status`, same lookup.
//! - OCF: `$OCF_ROOT/resource.d/<provider>/<name> start|stop|monitor` with
//!   `OCF_ROOT`, `OCF_RESOURCE_INSTANCE` (`<group>_<name>`),
//!   `OCF_RESOURCE_TYPE`, `OCF_RESOURCE_PROVIDER`, `OCF_RA_VERSION_*`,
//!   `OCF_RESKEY_CRM_meta_timeout` (ms) and `OCF_RESKEY_<k>=<v>` for each parameter.
//!
//! Status: OCF monitor exit 0 = running, 7 = not running, else Unknown. LSB
//! status exit 0 = running, 1-3 = not running; other codes fall back to the
//! output, else Unknown. Heartbeat scripts: the output only, as Heartbeat's
//! ResourceManager did (negatives first, so "not running" is not mistaken for
//! "running"): "stopped", "not running" or the word "No" = down; "running" or
//! the word "OK" = up; anything else (e.g. usage text from a script without a
//! status action, whatever its exit code) = down, so its start always runs.
//!
//! Start runs status first and does nothing when the script says it is already
//! running (as Heartbeat's ResourceManager did). Stop of OCF accepts exit 7.
//!
//! Every call has a timeout. The script runs in its own process group; on
//! expiry the group gets SIGTERM, then SIGKILL after a short grace (or as soon
//! as the group is empty), and the call fails with a Timeout error naming the
//! script and the timeout. stdout and stderr are captured (up to 64 KiB,
//! trimmed) into the error or the debug log. Daemons a successful start leaves
//! behind are not touched.
//!
//! What a script gets from the agent, and how long it may live:
//!
//! - Descriptors: its stdin (/dev/null), stdout and stderr (the capture
//!   pipes) and nothing else. Every other descriptor is made close-on-exec
//!   in the child before exec, whatever its flag in the agent: one the agent
//!   inherited from whatever started it, or one of its own that a library
//!   opened without `O_CLOEXEC` (the kernel's BPF and netlink descriptors
//!   are close-on-exec already). A daemon the script leaves behind would
//!   otherwise keep it open for as long as it runs, after the agent is gone
//!   (a launcher's pipe that then never sees its end, a socket, a lock).
//! - The script process dies with the agent: it gets SIGKILL when the
//!   thread that spawned it exits (`PR_SET_PDEATHSIG`), also when the agent
//!   is killed with SIGKILL. That thread is the resource thread
//!   (`agent::groups::ResourceThread`, `hb-resources`): the group workers
//!   run there, on a runtime of its own, and tokio forks a child on the
//!   thread that polls the spawn. It lives from the agent's start to its
//!   exit, so the signal fires at the agent's exit, never in between. (A
//!   caller that runs scripts on a thread that ends sooner, e.g. a tokio
//!   blocking thread, would see them killed then.) The signal is not
//!   inherited across fork: what the script started survives a kill -9 of
//!   the agent (a daemon it was starting may be among it).
//! - A script still running when its call is dropped, or when the agent
//!   exits before it finished (an error, a panic; a normal stop waits for
//!   every script of its groups, until their timeout), is killed with its
//!   whole process group (SIGKILL), as at a timeout.
//! - Daemons that a script which finished (a start that exited) leaves
//!   running are the service (an LSB init script starting httpd): they keep
//!   running, also when the agent stops or dies. Only the descriptor
//!   inheritance is cut for them.
use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::ResourceState;
use super::error::ResourceError;
use super::spec::{ScriptKind, ScriptSpec};

/// Default OCF_ROOT.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// Time between SIGTERM and SIGKILL for a timed-out script.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);
const OUTPUT_CAP: usize = 64 * 1024;
const OCF_NOT_RUNNING: i32 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptAction {
    Start,
    Stop,
    /// `status` (Heartbeat, LSB) or `monitor` (OCF).
    Status,
}

/// Exit code (None if killed by a signal) and trimmed combined output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutput {
    pub code: Option<i32>,
    pub output: String,
}

#[derive(Debug, Clone)]
pub struct ScriptRunner {
    dirs: Vec<PathBuf>,
    ocf_root: PathBuf,
    grace: Duration,
}

impl ScriptRunner {
    /// `dirs`: Heartbeat/LSB lookup order (e.g. /etc/ha.d/resource.d, /etc/init.d).
    pub fn new(dirs: Vec<PathBuf>, ocf_root: PathBuf) -> Self {
        ScriptRunner {
            dirs,
            ocf_root,
            grace: DEFAULT_KILL_GRACE,
        }
    }

    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Where the script of `spec` is.
    pub fn resolve(&self, spec: &ScriptSpec) -> Result<PathBuf, ResourceError> {
        match &spec.kind {
            ScriptKind::Ocf { provider } => {
                let p = self
                    .ocf_root
                    .join("resource.d")
                    .join(provider)
                    .join(&spec.name);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(ResourceError::ScriptNotFound {
                        name: format!("ocf:{provider}:{}", spec.name),
                        searched: vec![p],
                    })
                }
            }
            ScriptKind::Heartbeat | ScriptKind::Lsb => {
                let direct = Path::new(&spec.name);
                if direct.is_absolute() {
                    return if direct.is_file() {
                        Ok(direct.to_path_buf())
                    } else {
                        Err(ResourceError::ScriptNotFound {
                            name: spec.name.to_string(),
                            searched: vec![direct.to_path_buf()],
                        })
                    };
                }
                if spec.name.contains('/') || spec.name.is_empty() || spec.name == ".." {
                    return Err(ResourceError::Invalid {
                        resource: format!("script {:?}", spec.name),
                        why: "a script name is a file name in the script directories, or an absolute path".into(),
                    });
                }
                self.dirs
                    .iter()
                    .map(|d| d.join(&spec.name))
                    .find(|p| p.is_file())
                    .ok_or_else(|| ResourceError::ScriptNotFound {
                        name: spec.name.to_string(),
                        searched: self.dirs.clone(),
                    })
            }
        }
    }

    fn describe(spec: &ScriptSpec, path: &Path) -> String {
        match &spec.kind {
            ScriptKind::Ocf { provider } => {
                format!("ocf:{provider}:{} ({})", spec.name, path.display())
            }
            _ => path.display().to_string(),
        }
    }

    /// Runs one action and returns its exit code and output, whatever the code.
    /// Errors: not found, cannot spawn, timeout.
    /// `group`: the one the script belongs to (OCF_RESOURCE_INSTANCE).
    pub async fn run(
        &self,
        group: &str,
        spec: &ScriptSpec,
        action: ScriptAction,
    ) -> Result<ScriptOutput, ResourceError> {
        let path = self.resolve(spec)?;
        let script = Self::describe(spec, &path);
        let verb = match (action, &spec.kind) {
            (ScriptAction::Start, _) => "start",
            (ScriptAction::Stop, _) => "stop",
            (ScriptAction::Status, ScriptKind::Ocf { .. }) => "monitor",
            (ScriptAction::Status, _) => "status",
        };
        let mut cmd = tokio::process::Command::new(&path);
        match &spec.kind {
            ScriptKind::Heartbeat => {
                cmd.args(&spec.args).arg(verb);
            }
            ScriptKind::Lsb => {
                cmd.arg(verb);
            }
            ScriptKind::Ocf { provider } => {
                cmd.arg(verb)
                    .env("OCF_ROOT", &self.ocf_root)
                    .env("OCF_RESOURCE_INSTANCE", spec.instance(group))
                    .env("OCF_RESOURCE_TYPE", &spec.name)
                    .env("OCF_RESOURCE_PROVIDER", provider)
                    .env("OCF_RA_VERSION_MAJOR", "1")
                    .env("OCF_RA_VERSION_MINOR", "0")
                    .env(
                        "OCF_RESKEY_CRM_meta_timeout",
                        spec.timeout.as_millis().to_string(),
                    );
                for (k, v) in &spec.params {
                    cmd.env(format!("OCF_RESKEY_{k}"), v);
                }
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let agent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child and makes only
        // async-signal-safe calls (raw system calls, no allocation).
        unsafe {
            cmd.as_std_mut().pre_exec(move || prepare_child(agent));
        }
        // ETXTBSY: a script just written while another thread forked; retry briefly.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => {
                    return Err(ResourceError::Io {
                        what: format!("running {script} {verb}"),
                        source,
                    });
                }
            }
        };
        let pgid = child.id().map(|p| p as i32);
        // Declared after `child`, so dropped (the group killed) before it.
        let mut in_flight = InFlight::register(pgid);
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect(out, buf.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect(err, buf.clone())));
        }
        tracing::debug!(script = %script, action = verb, "running script");

        let waited = tokio::time::timeout(spec.timeout, child.wait()).await;
        let status = match waited {
            Ok(Ok(st)) => {
                // Reaped: what the script leaves running is the service.
                in_flight.finished();
                Some(st)
            }
            Ok(Err(source)) => {
                return Err(ResourceError::Io {
                    what: format!("waiting for {script} {verb}"),
                    source,
                });
            }
            Err(_) => None,
        };
        let Some(status) = status else {
            if let Some(pgid) = pgid {
                kill_group(pgid, &mut child, self.grace).await;
            }
            in_flight.finished();
            let output = drain(readers, &buf).await;
            tracing::warn!(script = %script, action = verb, timeout = ?spec.timeout, "script timed out, process group killed");
            return Err(ResourceError::ScriptTimeout {
                script,
                action: verb.to_string(),
                timeout: spec.timeout,
                output,
            });
        };
        let output = drain(readers, &buf).await;
        tracing::debug!(script = %script, action = verb, code = ?status.code(), output = %output, "script finished");
        Ok(ScriptOutput {
            code: status.code(),
            output,
        })
    }

    /// The script's view of whether it is running.
    pub async fn status(
        &self,
        group: &str,
        spec: &ScriptSpec,
    ) -> Result<ResourceState, ResourceError> {
        let out = self.run(group, spec, ScriptAction::Status).await?;
        Ok(interpret_status(&spec.kind, &out))
    }

    /// Starts unless status says it is running. Returns whether start ran.
    pub async fn start(&self, group: &str, spec: &ScriptSpec) -> Result<bool, ResourceError> {
        if self.status(group, spec).await? == ResourceState::InPlace {
            return Ok(false);
        }
        let out = self.run(group, spec, ScriptAction::Start).await?;
        if out.code == Some(0) {
            Ok(true)
        } else {
            Err(self.failed(spec, "start", out))
        }
    }

    /// Stops. Returns Ok(true); exit 7 from an OCF agent (not running) is Ok.
    pub async fn stop(&self, group: &str, spec: &ScriptSpec) -> Result<bool, ResourceError> {
        let out = self.run(group, spec, ScriptAction::Stop).await?;
        match (out.code, &spec.kind) {
            (Some(0), _) => Ok(true),
            (Some(OCF_NOT_RUNNING), ScriptKind::Ocf { .. }) => Ok(false),
            _ => Err(self.failed(spec, "stop", out)),
        }
    }

    fn failed(&self, spec: &ScriptSpec, action: &str, out: ScriptOutput) -> ResourceError {
        let script = self
            .resolve(spec)
            .map(|p| Self::describe(spec, &p))
            .unwrap_or_else(|_| spec.name.to_string());
        ResourceError::ScriptFailed {
            script,
            action: action.to_string(),
            code: out.code,
            output: out.output,
        }
    }
}

/// Maps a status/monitor result to a resource state (see the module doc).
pub fn interpret_status(kind: &ScriptKind, out: &ScriptOutput) -> ResourceState {
    if let ScriptKind::Ocf { .. } = kind {
        return match out.code {
            Some(0) => ResourceState::InPlace,
            Some(OCF_NOT_RUNNING) => ResourceState::Absent,
            c => ResourceState::Unknown(format!("monitor exit {c:?}: {}", out.output)),
        };
    }
    let lower = out.output.to_lowercase();
    let words: Vec<&str> = out
        .output
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let says_down =
        lower.contains("stopped") || lower.contains("not running") || words.contains(&"No");
    let says_up = !says_down && (lower.contains("running") || words.contains(&"OK"));
    match kind {
        ScriptKind::Lsb => match out.code {
            Some(0) => ResourceState::InPlace,
            Some(1..=3) => ResourceState::Absent,
            _ if says_down => ResourceState::Absent,
            _ if says_up => ResourceState::InPlace,
            c => ResourceState::Unknown(format!("status exit {c:?}: {}", out.output)),
        },
        // Heartbeat's ResourceManager read only the output: a script without a
        // status action (usage text, any exit code) counts as not running, so
        // its start always runs.
        _ if says_up => ResourceState::InPlace,
        _ => ResourceState::Absent,
    }
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(mut r: R, buf: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut b = buf.lock().expect("output buffer poisoned");
                let room = OUTPUT_CAP.saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// Waits briefly for the output readers (a daemon the script left behind may
/// hold the pipes open forever), then returns what was read, trimmed.
async fn drain(readers: Vec<tokio::task::JoinHandle<()>>, buf: &Arc<Mutex<Vec<u8>>>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    for r in readers {
        let abort = r.abort_handle();
        if tokio::time::timeout_at(deadline, r).await.is_err() {
            abort.abort();
        }
    }
    let b = buf.lock().expect("output buffer poisoned");
    String::from_utf8_lossy(&b).trim().to_string()
}

/// In the forked child, before exec (see the module doc): dies with the
/// agent's resource thread, and keeps only descriptors 0, 1 and 2 across
/// exec. Only async-signal-safe calls: the agent is multi-threaded.
fn prepare_child(agent: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain system calls on this (child) process.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        // The agent died before the prctl: the signal will not come.
        if libc::getppid() != agent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        cloexec_from(3);
    }
    Ok(())
}

/// Without close_range's CLOEXEC (Linux < 5.11), descriptors are marked
/// one by one up to RLIMIT_NOFILE, but no further than this.
const FD_LOOP_MAX: u64 = 1 << 20;

/// Makes every descriptor from `low` up close-on-exec. Marked, not
/// closed: std reports a failed exec (ETXTBSY, which `run` retries,
/// EACCES) through a close-on-exec pipe of its own, which must stay open
/// until the exec.
///
/// # Safety
/// Only in a child between fork and exec (it changes every descriptor).
unsafe fn cloexec_from(low: libc::c_uint) {
    // SAFETY: close_range(2) and fcntl(2) on this process's descriptors.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            low,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0
        {
            return;
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(FD_LOOP_MAX)
        } else {
            FD_LOOP_MAX
        };
        for fd in u64::from(low)..top {
            libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Process groups of the scripts running now (their leader not reaped yet,
/// so the id is still theirs).
static IN_FLIGHT: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static AT_EXIT: Once = Once::new();

fn in_flight() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// A script's process group while the script runs: killed (SIGKILL) if the
/// call is dropped before the script finished, or if the agent exits first
/// (an `atexit` handler: at exit the resource thread may be gone before it
/// dropped its calls).
struct InFlight(Option<i32>);

impl InFlight {
    fn register(pgid: Option<i32>) -> InFlight {
        AT_EXIT.call_once(|| {
            // SAFETY: registers a handler that only makes kill(2) calls.
            unsafe {
                libc::atexit(kill_in_flight);
            }
        });
        if let Some(pgid) = pgid {
            in_flight().insert(pgid);
        }
        InFlight(pgid)
    }

    /// The script was reaped (or its group killed): leave the group alone.
    fn finished(&mut self) {
        if let Some(pgid) = self.0.take() {
            in_flight().remove(&pgid);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: signals the group of a script not reaped yet.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            in_flight().remove(&pgid);
        }
    }
}

extern "C" fn kill_in_flight() {
    for pgid in in_flight().iter() {
        // SAFETY: as in `InFlight::drop`.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks for existence.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// SIGTERM to the group, up to `grace` for it to empty, then SIGKILL; reaps
/// the leader.
async fn kill_group(pgid: i32, child: &mut tokio::process::Child, grace: Duration) {
    // SAFETY: signalling a process group we created.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    let mut leader_reaped = false;
    while tokio::time::Instant::now() < deadline {
        if !leader_reaped && matches!(child.try_wait(), Ok(Some(_))) {
            leader_reaped = true;
        }
        if leader_reaped && !group_alive(pgid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: as above; ESRCH when the group is already gone is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, s: &str) -> ScriptOutput {
        ScriptOutput {
            code: Some(code),
            output: s.to_string(),
        }
    }

    #[test]
    fn status_mapping() {
        let hb = ScriptKind::Heartbeat;
        assert_eq!(
            interpret_status(&hb, &out(0, "httpd is running")),
            ResourceState::InPlace
        );
        assert_eq!(
            interpret_status(&hb, &out(0, "httpd is not running")),
            ResourceState::Absent
        );
        assert_eq!(interpret_status(&hb, &out(0, "OK")), ResourceState::InPlace);
        assert_eq!(interpret_status(&hb, &out(0, "No")), ResourceState::Absent);
        assert_eq!(
            interpret_status(&hb, &out(1, "stopped")),
            ResourceState::Absent
        );
        assert_eq!(interpret_status(&hb, &out(3, "")), ResourceState::Absent);
        assert_eq!(
            interpret_status(&hb, &out(0, "")),
            ResourceState::Absent,
            "exit 0 alone is not enough"
        );
        assert_eq!(
            interpret_status(&hb, &out(1, "usage: x {start|stop}")),
            ResourceState::Absent
        );
        let lsb = ScriptKind::Lsb;
        assert_eq!(interpret_status(&lsb, &out(0, "")), ResourceState::InPlace);
        assert_eq!(interpret_status(&lsb, &out(3, "")), ResourceState::Absent);
        assert_eq!(
            interpret_status(&lsb, &out(4, "foo is running")),
            ResourceState::InPlace
        );
        assert!(matches!(
            interpret_status(&lsb, &out(4, "")),
            ResourceState::Unknown(_)
        ));
        let ocf = ScriptKind::Ocf {
            provider: "heartbeat".into(),
        };
        assert_eq!(interpret_status(&ocf, &out(0, "")), ResourceState::InPlace);
        assert_eq!(
            interpret_status(&ocf, &out(7, "running")),
            ResourceState::Absent
        );
        assert!(matches!(
            interpret_status(&ocf, &out(1, "")),
            ResourceState::Unknown(_)
        ));
    }
}
