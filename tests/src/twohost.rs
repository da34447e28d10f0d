//! Two hosts, a and b, on a veth pair (eth2, 10.160.100.30/31), with an
//! `hb-agent run` as node b driven by a TOML file: the fixture of the
//! metrics, reload and pinning tests. Everything is removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use hb_agent::control::{Request, StatusReport, client};
use hb_testkit::process::Process;

use crate::netns::{Netns, heartbeat_pair};

/// The TOML every two-host test uses: cluster `cluster`, nodes a and b on
/// link `hb` (eth2, bcast), and `extra` lines at the top level.
pub fn config(cluster: &str, secret: &str, keepalive: &str, deadtime: &str, extra: &str) -> String {
    format!(
        "cluster = \"{cluster}\"\nrealtime = false\n{extra}\n\
         [timing]\nkeepalive = \"{keepalive}\"\ndeadtime = \"{deadtime}\"\n\
         [auth]\nsecret = \"{secret}\"\n\
         [[link]]\nname = \"hb\"\niface = \"eth2\"\nkind = \"bcast\"\n\
         [[node]]\nname = \"a\"\naddrs = {{ hb = \"10.160.100.30\" }}\n\
         [[node]]\nname = \"b\"\naddrs = {{ hb = \"10.160.100.31\" }}\n"
    )
}

pub struct TwoHosts {
    pub a: Netns,
    pub b: Netns,
    /// Configuration, socket, logs and state of b's agent.
    pub dir: PathBuf,
    pub conf: PathBuf,
}

impl TwoHosts {
    pub fn new(tag: &str, config: &str) -> Result<TwoHosts> {
        let (a, b) = heartbeat_pair(tag)?;
        let dir = std::env::temp_dir().join(crate::netns::unique(tag));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("hb.toml");
        let h = TwoHosts { a, b, dir, conf };
        h.write_config(config)?;
        Ok(h)
    }

    /// Replaces b's configuration (mode 600: it holds the key).
    pub fn write_config(&self, text: &str) -> Result<()> {
        std::fs::write(&self.conf, text)?;
        std::fs::set_permissions(&self.conf, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("b.sock")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("b.log")
    }

    /// Starts node b's agent with `args` added (e.g. `--no-pin`).
    pub fn start_b(&self, args: &[&str]) -> Result<Process> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.b.name])
            .arg(crate::lab::default_agent_bin()?)
            .args(["run", "--node", "b", "--config"])
            .arg(&self.conf)
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(Process::new(child))
    }

    /// Polls b's control socket until `ok` holds for its status.
    pub fn wait_status(&self, mut ok: impl FnMut(&StatusReport) -> bool) -> StatusReport {
        let t0 = Instant::now();
        loop {
            if let Some(s) = client::call(&self.socket(), &Request::Status)
                .ok()
                .and_then(|r| r.status)
                && ok(&s)
            {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "b's status never as expected"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until b's log contains `what`; returns the log.
    pub fn wait_log(&self, what: &str) -> String {
        let t0 = Instant::now();
        loop {
            let l = std::fs::read_to_string(self.log()).unwrap_or_default();
            if l.contains(what) {
                return l;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no {what:?} in b's log:\n{l}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
