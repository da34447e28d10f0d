//! One worker task per resource group: start and stop requests for a group
//! run strictly one after another, in the order the cluster logic issued
//! them, and their outcomes go back to the main loop as cluster events.
//!
//! The workers, and the rtnetlink connection they use, run on a runtime of
//! their own ([`ResourceThread`]), not on the main loop's. Handing a request
//! to rtnetlink (`sendmsg`) sleeps on the kernel's RTNL lock while anything
//! else on the host holds it: another process adding or removing interfaces,
//! attaching or detaching XDP (7-15 ms measured for a veth). On a worker of
//! the main runtime that sleep can also stop the runtime's timers and I/O
//! (they are driven by an idle worker, and the other one may be parked
//! without them), so heartbeat events, the tick and hang detection froze
//! with it; a freeze longer than deadtime was taken for a hang and every
//! group released. Now only resource operations wait for the lock.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::lane::{self, Lane};
use super::withdraw::Withdrawal;
use crate::cluster::{Event, GroupId};
use crate::model::GroupResources;
use crate::resources::{Resources, spec::ResourceSpec};
use crate::rules::step;

pub use hb_core::rules::work::{Done, Op};

/// A single-threaded runtime on a thread of its own (`hb-resources`) for
/// resource operations; it stops (cancelling what still runs there, e.g.
/// periodic announcements) when this is dropped.
pub struct ResourceThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl ResourceThread {
    pub fn start() -> Result<ResourceThread> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_unpark(super::realtime::apply_here)
            .build()
            .context("building the resources runtime")?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("hb-resources".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                })
            })
            .context("starting the resources thread")?;
        Ok(ResourceThread {
            handle,
            _stop: stop,
        })
    }

    /// Where `Resources::new` must be called (`handle().enter()`) so that
    /// its rtnetlink connection runs here, and where the workers are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// A group as its worker knows it: `name` for the logs, `key` for the
/// resources (Group::key: state, child names, OCF instances).
pub struct GroupNames {
    pub id: GroupId,
    pub name: String,
    pub key: String,
    pub specs: Vec<ResourceSpec>,
}

pub struct GroupWorkers {
    queues: BTreeMap<GroupId, mpsc::UnboundedSender<Op>>,
    /// Per group, operations submitted and not finished yet.
    in_flight: BTreeMap<GroupId, Arc<AtomicUsize>>,
    /// Per group that can be handed over by withdrawing its service
    /// addresses: those addresses.
    withdrawable: BTreeMap<GroupId, Vec<IpAddr>>,
    withdrawal: Option<Arc<Withdrawal>>,
    /// Per group, where it is written (its place in the lane).
    position: BTreeMap<GroupId, usize>,
    lane: Arc<Lane>,
}

impl GroupWorkers {
    /// One worker per group, on `rt`; `groups` in the order they are
    /// written, which is the order their starts run in (lane.rs). With
    /// `withdrawal`, releases hand the group over as soon as its addresses
    /// are withdrawn in the kernel.
    pub fn spawn(
        rt: &Handle,
        resources: Arc<Resources>,
        groups: Vec<GroupNames>,
        neighbours: Vec<IpAddr>,
        withdrawal: Option<Arc<Withdrawal>>,
        done: mpsc::UnboundedSender<Done>,
    ) -> GroupWorkers {
        let mut queues = BTreeMap::new();
        let mut in_flight = BTreeMap::new();
        let mut withdrawable = BTreeMap::new();
        let mut position = BTreeMap::new();
        let lane = Arc::new(Lane::default());
        for (
            pos,
            GroupNames {
                id,
                name,
                key,
                specs,
            },
        ) in groups.into_iter().enumerate()
        {
            position.insert(id, pos);
            let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
            queues.insert(id, tx);
            let busy = Arc::new(AtomicUsize::new(0));
            in_flight.insert(id, busy.clone());
            if let Some(addrs) = GroupResources::new(&key, &specs).withdrawable_addresses() {
                withdrawable.insert(id, addrs);
            }
            let w = Worker {
                id,
                pos,
                lane: lane.clone(),
                name,
                key,
                specs,
                res: resources.clone(),
                neighbours: neighbours.clone(),
                withdrawal: withdrawal.clone(),
                done: done.clone(),
            };
            rt.spawn(async move {
                while let Some(op) = rx.recv().await {
                    let ok = match op {
                        Op::Start => {
                            let _turn = w.lane.enter(w.pos, lane::Kind::Start).await;
                            w.start().await
                        }
                        Op::Stop => {
                            let _turn = w.lane.enter(w.pos, lane::Kind::Stop).await;
                            w.stop().await
                        }
                        Op::CleanUp => w.clean_up().await,
                        Op::Restart { check, resource } => w.restart(check, resource).await,
                    };
                    busy.fetch_sub(1, Ordering::SeqCst);
                    if !ok || !w.report_quick_plan().await {
                        return;
                    }
                }
            });
        }
        GroupWorkers {
            queues,
            in_flight,
            withdrawable,
            withdrawal,
            position,
            lane,
        }
    }

    /// While the returned guard lives, no start or stop begins: the caller
    /// is submitting one batch, whose order the lane is to decide.
    pub fn hold(&self) -> lane::Hold {
        self.lane.hold()
    }

    /// No operation of `group`'s is queued or running: the caller may touch
    /// its resources without racing its worker (`resources::quick`).
    pub fn idle(&self, group: GroupId) -> bool {
        self.in_flight
            .get(&group)
            .is_some_and(|n| n.load(Ordering::SeqCst) == 0)
    }

    /// Lets the kernel pass `group`'s traffic again (its start does the
    /// same). False if that failed, or if the group is not one handed over
    /// by withdrawing its addresses while addresses can be withdrawn: leave
    /// its start to its worker then.
    pub fn pass_traffic(&self, group: GroupId) -> bool {
        match (&self.withdrawal, self.withdrawable.get(&group)) {
            (None, _) => true,
            (Some(w), Some(addrs)) => w.restore(addrs),
            (Some(_), None) => false,
        }
    }

    /// Releases a group handed over by withdrawing its addresses at once,
    /// on the caller's thread: withdraws its addresses in the kernel; their
    /// removal (`Op::CleanUp`) is up to the caller. False (nothing done)
    /// for any other group, or if the withdrawal failed: stop it with
    /// `Op::Stop`.
    pub fn hand_over(&self, group: GroupId) -> bool {
        let (Some(w), Some(addrs)) = (&self.withdrawal, self.withdrawable.get(&group)) else {
            return false;
        };
        w.withdraw(addrs)
    }

    pub fn submit(&self, group: GroupId, op: Op) {
        match self.queues.get(&group) {
            Some(q) => {
                if let Some(n) = self.in_flight.get(&group) {
                    n.fetch_add(1, Ordering::SeqCst);
                }
                let kind = match op {
                    Op::Start => Some(lane::Kind::Start),
                    Op::Stop => Some(lane::Kind::Stop),
                    Op::CleanUp | Op::Restart { .. } => None,
                };
                if let (Some(k), Some(&pos)) = (kind, self.position.get(&group)) {
                    self.lane.queue(pos, k);
                }
                let _ = q.send(op);
            }
            None => warn!(group, "no such group here"),
        }
    }
}

/// One group's worker: its resources and where to report.
struct Worker {
    id: GroupId,
    /// Where the group is written: its place in the lane.
    pos: usize,
    lane: Arc<Lane>,
    /// For the logs.
    name: String,
    /// For the resources (Group::key).
    key: String,
    specs: Vec<ResourceSpec>,
    res: Arc<Resources>,
    neighbours: Vec<IpAddr>,
    withdrawal: Option<Arc<Withdrawal>>,
    done: mpsc::UnboundedSender<Done>,
}

impl Worker {
    fn facts(&self) -> GroupResources<'_> {
        GroupResources::new(&self.key, &self.specs)
    }

    /// False once the main loop is gone.
    fn report(&self, d: Done) -> bool {
        self.done.send(d).is_ok()
    }

    /// The interfaces may have changed with the operation just done (a
    /// child created or recreated): tell the main loop the plan as it is.
    async fn report_quick_plan(&self) -> bool {
        let plan = match self.res.quick_plan(&self.key, &self.specs).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(group = %self.name, error = %e, "reading the quick takeover plan");
                None
            }
        };
        self.report(Done::QuickPlan {
            group: self.id,
            plan,
        })
    }

    async fn start(&self) -> bool {
        let t0 = Instant::now();
        if let Some(w) = &self.withdrawal
            && !w.restore(&self.facts().addresses())
        {
            // The kernel would go on dropping its traffic.
            error!(group = %self.name, "group start failed: its addresses stay withdrawn");
            return self.report(Done::Cluster(Event::AcquireFailed { group: self.id }));
        }
        let event = match self.res.start_group(&self.key, &self.specs).await {
            Ok(report) => {
                info!(step = step::STARTED, group = %self.name, took_ms = t0.elapsed().as_secs_f64() * 1e3, announced = report.announced.len(), "group started");
                refresh_paths(&self.res, self.facts(), &self.neighbours).await;
                Event::Acquired { group: self.id }
            }
            Err(e) => {
                error!(group = %self.name, error = %e, "group start failed");
                Event::AcquireFailed { group: self.id }
            }
        };
        self.report(Done::Cluster(event))
    }

    /// The group's addresses are gone from here: stop dropping their
    /// traffic (it is the new owner's, e.g. its gratuitous ARPs).
    fn unwithdraw(&self) {
        if let Some(w) = &self.withdrawal {
            w.restore(&self.facts().addresses());
        }
    }

    /// A check's `on_fail = "restart"`: the monitored script's stop, then
    /// its start, in the group's queue (never beside its start or stop).
    async fn restart(&self, check: usize, resource: usize) -> bool {
        let t0 = Instant::now();
        let ok = match self.specs.get(resource) {
            Some(ResourceSpec::Script(spec)) => {
                let scripts = self.res.scripts();
                match scripts.stop(&self.key, spec).await {
                    Ok(_) => match scripts.start(&self.key, spec).await {
                        Ok(_) => true,
                        Err(e) => {
                            error!(group = %self.name, script = %spec.name, error = %e, "restart in place: start failed");
                            false
                        }
                    },
                    Err(e) => {
                        error!(group = %self.name, script = %spec.name, error = %e, "restart in place: stop failed");
                        false
                    }
                }
            }
            _ => false,
        };
        info!(group = %self.name, ok, took_ms = t0.elapsed().as_secs_f64() * 1e3, "restart in place finished");
        self.report(Done::Restarted {
            group: self.id,
            check,
            ok,
        })
    }

    /// After `GroupWorkers::hand_over`: the group is released already.
    async fn clean_up(&self) -> bool {
        let t0 = Instant::now();
        let report = self.res.stop_group(&self.key, &self.specs).await;
        let ok = report.is_clean();
        if ok {
            self.unwithdraw();
            info!(group = %self.name, took_ms = t0.elapsed().as_secs_f64() * 1e3, "group cleaned up");
        } else {
            error!(group = %self.name, failures = ?report.failures, "group clean-up failed");
        }
        self.report(Done::StopFinished {
            group: self.id,
            handed_over: true,
            ok,
        })
    }

    /// Stops right to left; a group with scripts is handed over once only
    /// its network identity is left (see withdraw.rs).
    async fn stop(&self) -> bool {
        let t0 = Instant::now();
        let mut handed_over = false;
        let report = self
            .res
            .stop_group_with(&self.key, &self.specs, |left| {
                let withdrawable = GroupResources::new(&self.key, left).withdrawable_addresses();
                let (Some(w), Some(addrs)) = (&self.withdrawal, withdrawable) else {
                    return;
                };
                if w.withdraw(&addrs) {
                    handed_over = true;
                    info!(step = step::RELEASED, group = %self.name, took_ms = t0.elapsed().as_secs_f64() * 1e3, addresses = ?addrs, "group released (addresses withdrawn, removing them)");
                    let _ = self.done.send(Done::Cluster(Event::Released { group: self.id }));
                }
            })
            .await;
        let clean = report.is_clean();
        if !clean {
            error!(group = %self.name, failures = ?report.failures, "group stop failed");
        } else if handed_over {
            self.unwithdraw();
            info!(group = %self.name, took_ms = t0.elapsed().as_secs_f64() * 1e3, "group cleaned up");
        } else {
            info!(step = step::RELEASED, group = %self.name, took_ms = t0.elapsed().as_secs_f64() * 1e3, "group released");
        }
        if !handed_over {
            let event = if clean {
                Event::Released { group: self.id }
            } else {
                Event::ReleaseFailed { group: self.id }
            };
            if !self.report(Done::Cluster(event)) {
                return false;
            }
        }
        self.report(Done::StopFinished {
            group: self.id,
            handed_over,
            ok: clean,
        })
    }
}

/// After a takeover, the neighbour entries the service needs (gateway,
/// ping nodes) are refreshed on the interfaces the group uses, so replies to
/// clients do not wait on a stale entry (Linux retries those once a second).
async fn refresh_paths(res: &Resources, group: GroupResources<'_>, ips: &[IpAddr]) {
    if ips.is_empty() {
        return;
    }
    for i in group.service_interfaces() {
        if let Err(e) = res.refresh_neighbours(&i, ips).await {
            warn!(iface = %i, error = %e, "neighbour refresh failed");
        }
    }
}
