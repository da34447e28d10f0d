//! What the campaign does to a node: the shared faults (`fault.rs`) and
//! the ones only the lab can inflict (commands, reloads, the ping node,
//! a kill in the middle of a hand-over). Each says how it is inflicted,
//! undone, named, and whether it takes the node out of service.

use std::time::Duration;

use anyhow::{Context as _, Result};
use hb_agent::control::{Request, client};
use hb_agent::sender::clock;

use crate::fault::{Cable, Fault, Node as _};
use crate::lab::Lab;
use crate::lab::agents::Layout;
use crate::lab::topology::NODES;

/// The standby of both groups in the seed's layout.
pub const STANDBY: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One of the shared faults (`fault.rs`).
    Fault(Fault),
    /// Both cables pulled with the agent running on: an isolated node.
    BothCables,
    /// A cable pulled and plugged `times` times, `down_ms` out (10-100 ms)
    /// and as long in between.
    Flap {
        cable: Cable,
        times: u8,
        down_ms: u8,
    },
    /// kill -9 of the agent `delay_us` after its SIGTERM: before, during or
    /// after its release (which takes about a millisecond); restarted to
    /// recover.
    KillMidRelease { delay_us: u16 },
    /// A primary stopped gracefully and the standby's agent killed -9
    /// `delay_us` later: before, during or after its takeover. Both
    /// restarted to recover.
    KillTakerMidTakeover { delay_us: u16 },
    /// SIGHUP with the configuration rewritten as it was (a good reload)
    /// or broken (the running one must stay); the good one back to recover.
    Reload { broken: bool },
    /// `hb-agent standby` (hb_standby); `hb-agent takeover` to recover.
    Standby,
    /// The ping node stops answering pings (every node loses it at once).
    PingLoss,
    /// Forged heartbeats of every kind, as fast as the attackers can, on
    /// both networks (`flood.rs`); switched off to recover. Needs
    /// `Lab::start_flood` (drawn only then).
    Flood,
}

/// Every kind the campaign draws, `rng` filling in their parameters; the
/// flood only `with_flood`.
pub fn draw_kind(rng: &mut fastrand::Rng, with_flood: bool) -> Kind {
    let cable = |rng: &mut fastrand::Rng| {
        if rng.bool() {
            Cable::Service
        } else {
            Cable::Heartbeat
        }
    };
    match rng.u8(0..13 + u8::from(with_flood)) {
        0 => Kind::Fault(Fault::Graceful),
        1 => Kind::Fault(Fault::CablePull(Cable::Service)),
        2 => Kind::Fault(Fault::CablePull(Cable::Heartbeat)),
        3 => Kind::Fault(Fault::PowerOff(crate::fault::Teardown::AtCut)),
        4 => Kind::Fault(Fault::Hang),
        5 => Kind::BothCables,
        6 => Kind::Flap {
            cable: cable(rng),
            times: rng.u8(1..6),
            down_ms: rng.u8(10..=100),
        },
        7 => Kind::KillMidRelease {
            delay_us: rng.u16(0..3000),
        },
        8 => Kind::KillTakerMidTakeover {
            delay_us: rng.u16(0..3000),
        },
        9 => Kind::Reload { broken: false },
        10 => Kind::Reload { broken: true },
        11 => Kind::Standby,
        12 => Kind::PingLoss,
        _ => Kind::Flood,
    }
}

impl Kind {
    /// For the summary table: parameters left out, a hang told short or
    /// long against `deadtime` by how long it is held.
    pub fn name(self, hold: Duration, deadtime: Duration) -> String {
        match self {
            Kind::Fault(Fault::Hang) if hold < deadtime => "hang < deadtime".into(),
            Kind::Fault(Fault::Hang) => "hang > deadtime".into(),
            Kind::Fault(f) => f.name().into(),
            Kind::BothCables => "both cables pull".into(),
            Kind::Flap {
                cable: Cable::Service,
                ..
            } => "service link flaps".into(),
            Kind::Flap { .. } => "heartbeat link flaps".into(),
            Kind::KillMidRelease { .. } => "kill -9 mid release".into(),
            Kind::KillTakerMidTakeover { .. } => "kill -9 of the taker mid takeover".into(),
            Kind::Reload { broken: false } => "SIGHUP, good config".into(),
            Kind::Reload { broken: true } => "SIGHUP, broken config".into(),
            Kind::Standby => "standby command".into(),
            Kind::PingLoss => "ping node unreachable".into(),
            Kind::Flood => "forged-heartbeat flood".into(),
        }
    }

    /// With its parameters, for a fault's title.
    pub fn describe(self, hold: Duration, deadtime: Duration) -> String {
        match self {
            Kind::Flap { times, down_ms, .. } => {
                format!("{} ({times} x {down_ms} ms)", self.name(hold, deadtime))
            }
            Kind::KillMidRelease { delay_us } | Kind::KillTakerMidTakeover { delay_us } => {
                format!(
                    "{} ({delay_us} us after SIGTERM)",
                    self.name(hold, deadtime)
                )
            }
            _ => self.name(hold, deadtime),
        }
    }

    /// Only a primary (node0, node2) has a group to give up or to lose to
    /// a killed taker.
    pub fn needs_primary(self) -> bool {
        matches!(self, Kind::Standby | Kind::KillTakerMidTakeover { .. })
    }

    /// How often this kind may rightly move a group: away and back (a
    /// flap: away and back each time).
    pub fn moves(self) -> usize {
        match self {
            Kind::Flap { times, .. } => 2 * usize::from(times),
            _ => 2,
        }
    }

    /// Not to be combined with a fault on another node: it touches the
    /// standby too, or every node at once.
    pub fn alone(self) -> bool {
        matches!(self, Kind::KillTakerMidTakeover { .. } | Kind::PingLoss)
    }

    /// The nodes this kind, inflicted on `i`, takes out of service (a node
    /// not listed must go on serving what it holds, or take over).
    pub fn out_of_service(self, i: usize) -> Vec<usize> {
        match self {
            Kind::Fault(Fault::CablePull(Cable::Heartbeat))
            | Kind::Flap {
                cable: Cable::Heartbeat,
                ..
            }
            | Kind::Reload { .. }
            | Kind::PingLoss
            | Kind::Flood => vec![],
            Kind::KillTakerMidTakeover { .. } => vec![i, STANDBY],
            _ => vec![i],
        }
    }

    /// Inflicts it on node `i`, noted in the timeline as `desc`.
    pub fn inflict(self, l: &mut Lab, i: usize, desc: &str) -> Result<()> {
        let name = NODES[i].name;
        l.timeline.note(&format!("{name}: {desc}"));
        match self {
            Kind::Fault(f) => f.inflict(&mut l.node(i)),
            Kind::BothCables => {
                l.topo.cable(i, true, false)?;
                l.topo.cable(i, false, false)
            }
            Kind::Flap {
                cable,
                times,
                down_ms,
            } => {
                let svc = cable == Cable::Service;
                let d = Duration::from_millis(down_ms.into());
                for _ in 0..times {
                    l.topo.cable(i, svc, false)?;
                    pause(l, d)?;
                    l.topo.cable(i, svc, true)?;
                    pause(l, d)?;
                }
                Ok(())
            }
            Kind::KillMidRelease { delay_us } => {
                l.agent(i)?.signal(libc::SIGTERM);
                spin(delay_us);
                l.node(i).kill()?;
                Ok(())
            }
            Kind::KillTakerMidTakeover { delay_us } => {
                let mut primary = l.agents[i]
                    .take()
                    .with_context(|| format!("{name} has no agent running"))?;
                primary.signal(libc::SIGTERM);
                spin(delay_us);
                l.node(STANDBY).kill()?;
                // Its hand-over finds no taker: it exits after a deadtime.
                let t = l.deadtime() * 10 + Duration::from_secs(5);
                primary
                    .proc
                    .wait_exit(t)?
                    .with_context(|| format!("{name} did not exit within {t:?} of SIGTERM"))?;
                Ok(())
            }
            Kind::Reload { broken } => {
                let from = l.log_len(i);
                if broken {
                    l.break_config(i)?;
                } else {
                    l.write_config(i, Layout::Seed)?;
                }
                l.agent(i)?.signal(libc::SIGHUP);
                let want = if broken {
                    "reload failed, the running configuration stays"
                } else {
                    "configuration reloaded"
                };
                l.wait_log(i, from, want, Duration::from_secs(5))
            }
            Kind::Standby => admin(l, i, Request::Standby { group: None }),
            Kind::PingLoss => {
                l.topo.gw.sysctl("net.ipv4.icmp_echo_ignore_all", "1");
                Ok(())
            }
            Kind::Flood => flood(l, Some(crate::flood::Kind::Mixed)),
        }
    }

    pub fn recover(self, l: &mut Lab, i: usize) -> Result<()> {
        let name = NODES[i].name;
        l.timeline.note(&format!("{name}: recovering"));
        match self {
            Kind::Fault(f) => f.recover(&mut l.node(i)),
            Kind::BothCables => {
                l.topo.cable(i, true, true)?;
                l.topo.cable(i, false, true)
            }
            Kind::Flap { .. } => Ok(()),
            Kind::KillMidRelease { .. } => l.start_agent(i),
            Kind::KillTakerMidTakeover { .. } => {
                l.start_agent(STANDBY)?;
                l.start_agent(i)
            }
            Kind::Reload { broken: false } => Ok(()),
            Kind::Reload { broken: true } => {
                let from = l.log_len(i);
                l.write_config(i, Layout::Seed)?;
                l.agent(i)?.signal(libc::SIGHUP);
                l.wait_log(i, from, "configuration reloaded", Duration::from_secs(5))
            }
            Kind::Standby => admin(l, i, Request::Takeover { group: None }),
            Kind::PingLoss => {
                l.topo.gw.sysctl("net.ipv4.icmp_echo_ignore_all", "0");
                Ok(())
            }
            Kind::Flood => flood(l, None),
        }
    }
}

fn flood(l: &Lab, kind: Option<crate::flood::Kind>) -> Result<()> {
    let (f, _) = l
        .flood
        .as_ref()
        .context("no flood: Lab::start_flood first")?;
    f.set(kind);
    Ok(())
}

/// `hb-agent standby` / `takeover` on node `i`'s control socket.
fn admin(l: &Lab, i: usize, req: Request) -> Result<()> {
    let r = client::call(&l.agent(i)?.socket, &req)?;
    anyhow::ensure!(r.ok, "{}: {req:?} refused: {}", NODES[i].name, r.message);
    Ok(())
}

/// Waits `d` with the timeline printed meanwhile.
fn pause(l: &mut Lab, d: Duration) -> Result<()> {
    let end = l.now() + d.as_nanos() as u64;
    l.wait_for("a flap", d * 2 + Duration::from_secs(1), |l| l.now() >= end)?;
    Ok(())
}

/// A precise wait of microseconds (a sleep would round them up).
fn spin(us: u16) {
    clock::sleep_until_precise(clock::now_ns() + u64::from(us) * 1000, 200_000);
}
