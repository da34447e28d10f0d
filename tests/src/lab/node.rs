//! A lab node running hb's agent, as a fault sees it (`fault::Node`).

use std::time::Duration;

use anyhow::{Context as _, Result};

use super::Lab;
use super::agents::pin_dir;
use super::topology::{NODES, Topology};
use crate::fault::{Fault, Node};

/// Node `i` of `lab`: `Lab::node`.
pub struct LabNode<'a> {
    lab: &'a mut Lab,
    i: usize,
}

impl Lab {
    pub fn node(&mut self, i: usize) -> LabNode<'_> {
        LabNode { lab: self, i }
    }

    /// `f` inflicted on node `i`, noted in the timeline.
    pub fn inflict(&mut self, f: Fault, i: usize) -> Result<()> {
        self.timeline
            .note(&format!("{}: {}", NODES[i].name, f.name()));
        f.inflict(&mut self.node(i))
    }

    /// After a failed scenario: every cable in, every agent running (a
    /// frozen one resumed), the initial owners back.
    pub fn restore(&mut self) -> Result<()> {
        if self.services.is_some() {
            super::health::start_services(self)?;
        }
        for i in 0..3 {
            self.topo.cable(i, true, true)?;
            self.topo.cable(i, false, true)?;
            match &self.agents[i] {
                Some(a) => a.signal(libc::SIGCONT),
                None => self.start_agent(i)?,
            }
        }
        let t = self.settle_timeout() + Duration::from_secs(5);
        self.wait_owners(super::scenarios::INITIAL, t)?;
        Ok(())
    }

    /// `f` undone on node `i`, noted in the timeline.
    pub fn recover(&mut self, f: Fault, i: usize) -> Result<()> {
        self.timeline
            .note(&format!("{}: recovering from {}", NODES[i].name, f.name()));
        f.recover(&mut self.node(i))
    }
}

impl Node for LabNode<'_> {
    fn topo(&self) -> &Topology {
        &self.lab.topo
    }

    fn index(&self) -> usize {
        self.i
    }

    fn stop(&mut self) -> Result<()> {
        let a = self.lab.agents[self.i]
            .take()
            .with_context(|| format!("{} has no agent running", NODES[self.i].name))?;
        a.stop(Duration::from_secs(10))
    }

    fn start(&mut self) -> Result<()> {
        self.lab.start_agent(self.i)
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        self.lab.agent(self.i)?.signal(sig);
        Ok(())
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(a) = self.lab.agents[self.i].take() {
            self.lab.kept_hostname[self.i] = a.hostname().ok();
            a.kill();
        }
        Ok(())
    }

    /// The agent's virtual interfaces (`hb-*`), its state directory and its
    /// pins: a bpffs lives in RAM, so the XDP links only the pins kept go
    /// with a power cut.
    fn wipe(&mut self) -> Result<()> {
        self.lab.kept_hostname[self.i] = None;
        let ns = &self.lab.topo.nodes[self.i];
        let links = ns.exec(&["ip", "-o", "link", "show"])?;
        for line in links.lines() {
            if let Some(name) = line
                .split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n))
                && name.starts_with("hb-")
            {
                ns.exec(&["ip", "link", "del", name])?;
            }
        }
        let name = NODES[self.i].name;
        let _ = std::fs::remove_dir_all(self.lab.workdir().join(format!("{name}-state")));
        let _ = std::fs::remove_dir_all(pin_dir(self.lab.bpffs.path(), self.i));
        Ok(())
    }
}
