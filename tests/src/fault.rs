//! One vocabulary of faults, shared by the lab's scenarios, the failover
//! benchmark's three contenders (hb, keepalived, Heartbeat) and the fault
//! campaign: what a fault does to a node is written once, here, and each
//! contender only says how its daemon is stopped, started, signalled,
//! killed and what its node loses with a reboot (`Node`).

use anyhow::Result;

use crate::lab::topology::Topology;

/// A node's cable, by the network it plugs into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cable {
    /// eth0: the service network (clients, the gateway, the ping node).
    Service,
    /// eth2: the dedicated heartbeat network.
    Heartbeat,
}

/// When a powered-off node's processes and RAM go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Teardown {
    /// At the cut, as on a real machine: frozen, both cables dark within
    /// microseconds (so it cannot react to its links dying), then killed
    /// and wiped (the lab).
    AtCut,
    /// Frozen and cut off at once; killed and wiped only at power-on,
    /// after the standby serves. Every lab node shares one kernel, whose
    /// teardown (XDP detach, deleting interfaces) holds the RTNL lock for
    /// milliseconds and would stall the standby's own address change, as a
    /// real powered-off machine's teardown could not (the benchmark: the
    /// same for every contender).
    AtPowerOn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The failover daemon stopped as its operator would (SIGTERM,
    /// `heartbeat -k`); started again to recover.
    Graceful,
    /// One cable pulled; plugged back to recover.
    CablePull(Cable),
    /// Power off; power on is a fresh boot and a daemon start.
    PowerOff(Teardown),
    /// The daemon hangs (SIGSTOP of all its processes); SIGCONT to recover.
    /// Its kernel goes on (a SIGSTOP is not a kernel hang).
    Hang,
}

/// A node of the lab as a fault sees it: its place in the wiring and its
/// failover daemon (hb's agent, keepalived, Heartbeat).
pub trait Node {
    fn topo(&self) -> &Topology;
    /// Its index in `topo` (node0, node1, ...).
    fn index(&self) -> usize;
    /// Stops the daemon as its operator would, and waits for it to exit.
    fn stop(&mut self) -> Result<()>;
    fn start(&mut self) -> Result<()>;
    /// Signals every process of the daemon.
    fn signal(&self, sig: libc::c_int) -> Result<()>;
    /// kill -9 of the daemon (nothing if it is not running).
    fn kill(&mut self) -> Result<()>;
    /// What a reboot loses with the RAM: virtual interfaces, addresses the
    /// daemon put up, its state files and pins.
    fn wipe(&mut self) -> Result<()>;
}

impl Fault {
    /// Every fault of the seed's tests, with the power off as `teardown`
    /// says.
    pub const fn seed(teardown: Teardown) -> [Fault; 4] {
        [
            Fault::Graceful,
            Fault::CablePull(Cable::Service),
            Fault::PowerOff(teardown),
            Fault::Hang,
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Graceful => "graceful stop",
            Fault::CablePull(Cable::Service) => "cable pull",
            Fault::CablePull(Cable::Heartbeat) => "heartbeat cable pull",
            Fault::PowerOff(_) => "power off",
            Fault::Hang => "hang (SIGSTOP)",
        }
    }

    pub fn inflict(self, n: &mut dyn Node) -> Result<()> {
        let i = n.index();
        match self {
            Fault::Graceful => n.stop(),
            Fault::CablePull(c) => n.topo().cable(i, c == Cable::Service, false),
            Fault::PowerOff(teardown) => {
                n.signal(libc::SIGSTOP)?;
                n.topo().both_cables_fast(i, false)?;
                if teardown == Teardown::AtCut {
                    n.kill()?;
                    n.wipe()?;
                }
                Ok(())
            }
            Fault::Hang => n.signal(libc::SIGSTOP),
        }
    }

    pub fn recover(self, n: &mut dyn Node) -> Result<()> {
        let i = n.index();
        match self {
            Fault::Graceful => n.start(),
            Fault::CablePull(c) => n.topo().cable(i, c == Cable::Service, true),
            Fault::PowerOff(teardown) => {
                if teardown == Teardown::AtPowerOn {
                    n.kill()?;
                    n.wipe()?;
                }
                n.topo().cable(i, true, true)?;
                n.topo().cable(i, false, true)?;
                n.start()
            }
            Fault::Hang => n.signal(libc::SIGCONT),
        }
    }
}

/// Whatever a failed trial left on `n` undone: killed, wiped, both cables
/// in, started afresh.
pub fn restart_from_scratch(n: &mut dyn Node) -> Result<()> {
    n.kill()?;
    n.wipe()?;
    let i = n.index();
    n.topo().cable(i, true, true)?;
    n.topo().cable(i, false, true)?;
    n.start()
}
