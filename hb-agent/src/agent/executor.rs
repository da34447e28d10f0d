//! Where the core's decisions become actions: the group workers (and
//! their lane), the heartbeat sender, the quick takeover step, STONITH,
//! the epoch record and the kernel's view of who serves what. Everything
//! here does I/O or hands work to a thread that does; what to do is
//! decided in core.rs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::info;

use super::groups::{Done, GroupWorkers, Op};
use super::{epochs::Epochs, lane};
use crate::cluster::{Advert, Event, GroupId, NodeId};
use crate::config::Fencing;
use crate::kernel::Kernel;
use crate::resources::quick::{self, QuickStarter};
use crate::rules::{Executor, convert, step};
use crate::sender::{Sender, lease::Lease};

pub struct Exec {
    pub kernel: Kernel,
    pub sender: Sender,
    pub workers: GroupWorkers,
    /// The sockets of the quick takeover step (None: could not open them).
    pub quick: Option<QuickStarter>,
    pub epochs: Epochs,
    pub fencing: Option<Fencing>,
    pub lease: Option<Arc<Lease>>,
    /// Where workers and STONITH report.
    pub done_tx: mpsc::UnboundedSender<Done>,
    /// `served_by_peers` as last read; cleared when kernel events arrive.
    pub served_cache: Option<BTreeSet<GroupId>>,
    /// The lane held while the core submits one batch (empty otherwise).
    pub batch: Vec<lane::Hold>,
}

impl Exec {}

impl Executor for Exec {
    fn submit(&mut self, group: GroupId, op: Op) {
        self.workers.submit(group, op);
    }

    fn begin_batch(&mut self) {
        self.batch.push(self.workers.hold());
    }

    fn end_batch(&mut self) {
        self.batch.pop();
    }

    fn hand_over(&mut self, group: GroupId) -> bool {
        self.workers.hand_over(group)
    }

    fn idle(&self, group: GroupId) -> bool {
        self.workers.idle(group)
    }

    fn pass_traffic(&mut self, group: GroupId) -> bool {
        self.workers.pass_traffic(group)
    }

    fn can_quick_start(&self) -> bool {
        self.quick.is_some()
    }

    fn quick_start(
        &mut self,
        group: &str,
        plan: &quick::Plan,
    ) -> Option<Result<quick::Done, String>> {
        let q = self.quick.as_ref()?;
        let t = Instant::now();
        let r = q.run(plan);
        if let Ok(done) = &r {
            info!(
                step = step::ADDRESS_UP,
                group,
                added = done.added,
                announced = done.announced,
                took_us = t.elapsed().as_micros() as u64,
                "address up (quick step)"
            );
        }
        Some(r)
    }

    fn advertise(&mut self, advert: &Advert) {
        self.sender.set_state(convert::advert_to_wire(advert));
        self.sender.send_now();
    }

    fn fence(&mut self, node: NodeId, name: &str) {
        let Some(f) = self.fencing.clone() else {
            return;
        };
        let tx = self.done_tx.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let ok = super::fence::fence(&f.command, &name, f.timeout).await;
            let _ = tx.send(Done::Cluster(Event::Fenced { node, ok }));
        });
    }

    fn record_epoch(&mut self, group: &str, epoch: u32) -> Result<(), String> {
        self.epochs
            .record(group, epoch)
            .map_err(|e| format!("{e:#}"))
    }

    /// Read from the kernel's map (the cluster logic takes no events after
    /// Exit), once per change: the core asks on every loop iteration, and
    /// each read is a map walk (a few syscalls per peer and link).
    fn served_by_peers(&mut self) -> BTreeSet<GroupId> {
        if let Some(s) = &self.served_cache {
            return s.clone();
        }
        let s: BTreeSet<GroupId> = self
            .kernel
            .peer_states()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, s)| s.status == hb_common::maps::STATUS_ALIVE)
            .flat_map(|(_, s)| convert::wire_to_advert(&s.state).claims)
            .filter(|c| c.serving)
            .map(|c| c.group)
            .collect();
        self.served_cache = Some(s.clone());
        s
    }

    fn resume_lease(&mut self) {
        if let Some(l) = &self.lease {
            l.resume();
        }
    }
}
