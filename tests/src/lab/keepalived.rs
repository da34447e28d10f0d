//! keepalived in the same lab, for the failover benchmark: VRRP between
//! node0 (MASTER, priority 150) and node1 (BACKUP, 100) for vip1, set up as
//! its users would for the fastest failover it supports (VRRPv3, advert_int
//! 0.01 s, its floor; use_vmac; real-time priority; immediate GARP).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::topology::VIPS;

/// Which network carries VRRP adverts.
#[derive(Clone, Copy, Debug)]
pub enum Net {
    /// VRRP on the service network (eth0), the usual setup.
    Service,
    /// VRRP on the heartbeat network (eth2) with `track_interface eth0`.
    HeartbeatNetTrack,
}

/// One keepalived setup of the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub net: Net,
    /// Seconds, as written in the configuration ("0.01" is its floor).
    pub advert_int: &'static str,
    /// `down_timer_adverts N`: the backup takes over after N missed adverts
    /// instead of the RFC's 3 (plus skew). Not in the RFC.
    pub down_timer_adverts: Option<u32>,
}

impl Variant {
    pub fn name(&self) -> String {
        let mut s = format!("keepalived 2.2.7 advert_int {}", self.advert_int);
        match self.net {
            Net::Service => s.push_str(", VRRP on eth0"),
            Net::HeartbeatNetTrack => s.push_str(", VRRP on eth2 + track_interface eth0"),
        }
        if let Some(n) = self.down_timer_adverts {
            s.push_str(&format!(", down_timer_adverts {n}"));
        }
        s
    }
}

pub fn config(i: usize, v: Variant) -> String {
    let (state, prio) = if i == 0 {
        ("MASTER", 150)
    } else {
        ("BACKUP", 100)
    };
    let (iface, mut extra) = match v.net {
        Net::Service => ("eth0", String::new()),
        Net::HeartbeatNetTrack => ("eth2", "  track_interface {\n    eth0\n  }\n".to_string()),
    };
    if let Some(n) = v.down_timer_adverts {
        extra.push_str(&format!("  down_timer_adverts {n}\n"));
    }
    format!(
        "global_defs {{\n  router_id node{i}\n  vrrp_version 3\n  vrrp_garp_master_delay 0\n  \
         vrrp_garp_master_repeat 3\n  vrrp_garp_interval 0.001\n  vrrp_rt_priority 50\n  \
         script_user root\n}}\n\
         vrrp_instance VI_1 {{\n  state {state}\n  interface {iface}\n{extra}  virtual_router_id 51\n  \
         priority {prio}\n  advert_int {}\n  use_vmac vrrp51\n  vmac_xmit_base\n  \
         virtual_ipaddress {{\n    {}/24 dev eth0\n  }}\n}}\n",
        v.advert_int, VIPS[0]
    )
}

/// A `vrrp_script` the instance tracks (the health-check benchmark): run
/// every `interval` s (keepalived 2.2.7 takes whole seconds, at least 1),
/// `fall` failures take it down, `rise` passes up; `weight` 0 puts the
/// instance in FAULT while it fails, another weight moves its priority.
#[derive(Clone, Debug)]
pub struct Script {
    pub command: String,
    pub interval: u32,
    pub timeout: u32,
    pub fall: u32,
    pub rise: u32,
    pub weight: i32,
}

/// How keepalived watches node `i`'s service (the health-check benchmark).
#[derive(Clone, Debug)]
pub enum Track {
    Script(Script),
    /// `vrrp_track_process`: a process by name (needs a keepalived built
    /// with --enable-track-process), `weight` as a script's.
    Process {
        name: String,
        weight: i32,
    },
}

/// `config(i, v)` with the instance tracking node `i`'s service by `t`.
pub fn config_tracked(i: usize, v: Variant, t: &Track) -> String {
    let (block, track) = match t {
        Track::Script(s) => (
            format!(
                "vrrp_script chk_service {{\n  script \"{}\"\n  interval {}\n  timeout {}\n  fall {}\n  rise {}\n  weight {}\n}}\n",
                s.command, s.interval, s.timeout, s.fall, s.rise, s.weight
            ),
            "  track_script {\n    chk_service\n  }\n",
        ),
        Track::Process { name, weight } => (
            format!(
                "vrrp_track_process service {{\n  process {name}\n  weight {weight}\n  quorum 1\n}}\n"
            ),
            "  track_process {\n    service\n  }\n",
        ),
    };
    // A master's gratuitous ARP every second, as its users set it: the
    // old master's last answers, sent from the virtual MAC after the new
    // master's first announcements, otherwise leave the switch sending
    // vip1's traffic to the old master until its entry ages out (5 min;
    // seen in this benchmark: vmac_xmit_base sends adverts from eth0's
    // MAC, so nothing else corrects it).
    let base = config(i, v).replacen(
        "  script_user root\n",
        "  script_user root\n  vrrp_garp_master_refresh 1\n",
        1,
    );
    let at = base.find("vrrp_instance").expect("an instance");
    let (head, inst) = base.split_at(at);
    let inst = inst.replacen(
        "  virtual_ipaddress",
        &format!("{track}  virtual_ipaddress"),
        1,
    );
    format!("{head}{block}{inst}")
}

/// What keepalived logs when it cannot listen for process events: its
/// `vrrp_track_process` learns of deaths from the kernel's process-events
/// connector (NETLINK_CONNECTOR), which exists only in the initial network
/// namespace, so inside one (the lab's nodes) the request is refused
/// (errno 111) and every tracked process stays "not found".
pub const NO_PROCESS_EVENTS: &str = "Failed to set/clear process event listen";

pub struct Keepalived {
    pub child: Child,
    vrrp_pid: PathBuf,
}

impl Keepalived {
    pub fn start(netns: &str, i: usize, v: Variant, dir: &Path) -> Result<Keepalived> {
        Keepalived::start_with_config(netns, i, &config(i, v), dir)
    }

    /// keepalived on node `i` with the configuration `text`.
    pub fn start_with_config(netns: &str, i: usize, text: &str, dir: &Path) -> Result<Keepalived> {
        let conf = dir.join(format!("keepalived-node{i}.conf"));
        std::fs::write(&conf, text)?;
        let pid = dir.join(format!("keepalived-node{i}.pid"));
        let vrrp_pid = dir.join(format!("keepalived-node{i}-vrrp.pid"));
        let _ = std::fs::remove_file(&vrrp_pid);
        let log = std::fs::File::create(dir.join(format!("keepalived-node{i}.log")))?;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                netns,
                "keepalived",
                "--dont-fork",
                "--log-console",
                "--vrrp",
            ])
            .arg("--use-file")
            .arg(&conf)
            .arg("--pid")
            .arg(&pid)
            .arg("--vrrp_pid")
            .arg(&vrrp_pid)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting keepalived (cargo xtask setup installs it)")?;
        Ok(Keepalived { child, vrrp_pid })
    }

    /// The VRRP child process (the one that sends adverts).
    pub fn vrrp_pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.vrrp_pid)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn signal_all(&self, sig: i32) {
        if let Some(p) = self.vrrp_pid() {
            // SAFETY: signals only processes this benchmark started.
            unsafe { libc::kill(p, sig) };
        }
        // SAFETY: as above.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM and wait: keepalived sends a priority-0 advert on the way out.
    pub fn stop(mut self) {
        // SAFETY: signals only the keepalived this benchmark started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..500 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn kill(self) {
        self.signal_all(libc::SIGKILL);
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.signal_all(libc::SIGCONT);
        self.signal_all(libc::SIGKILL);
        let _ = self.child.wait();
    }
}
