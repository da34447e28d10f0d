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
use std::time::Instant;

use anyhow::{Context as _, Result};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::cluster::{Event, GroupId};
use crate::resources::{
    Resources,
    spec::{MacMode, ResourceSpec},
};

pub enum Op {
    Start,
    Stop,
}

/// What a finished operation reports to the main loop.
pub struct Done {
    pub event: Event,
}

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

pub struct GroupWorkers {
    queues: BTreeMap<GroupId, mpsc::UnboundedSender<Op>>,
}

impl GroupWorkers {
    /// One worker per group, on `rt`.
    pub fn spawn(
        rt: &Handle,
        resources: Arc<Resources>,
        groups: Vec<(GroupId, String, Vec<ResourceSpec>)>,
        neighbours: Vec<IpAddr>,
        done: mpsc::UnboundedSender<Done>,
    ) -> GroupWorkers {
        let mut queues = BTreeMap::new();
        for (id, name, specs) in groups {
            let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
            queues.insert(id, tx);
            let res = resources.clone();
            let done = done.clone();
            let neighbours = neighbours.clone();
            rt.spawn(async move {
                while let Some(op) = rx.recv().await {
                    let t0 = Instant::now();
                    let event = match op {
                        Op::Start => match res.start_group(&name, &specs).await {
                            Ok(report) => {
                                info!(group = %name, took_ms = t0.elapsed().as_secs_f64() * 1e3, announced = report.announced.len(), "group started");
                                refresh_paths(&res, &name, &specs, &neighbours).await;
                                Event::Acquired { group: id }
                            }
                            Err(e) => {
                                error!(group = %name, error = %e, "group start failed");
                                Event::AcquireFailed { group: id }
                            }
                        },
                        Op::Stop => {
                            let report = res.stop_group(&name, &specs).await;
                            if report.is_clean() {
                                info!(group = %name, took_ms = t0.elapsed().as_secs_f64() * 1e3, "group released");
                                Event::Released { group: id }
                            } else {
                                error!(group = %name, failures = ?report.failures, "group stop failed");
                                Event::ReleaseFailed { group: id }
                            }
                        }
                    };
                    if done.send(Done { event }).is_err() {
                        return;
                    }
                }
            });
        }
        GroupWorkers { queues }
    }

    pub fn submit(&self, group: GroupId, op: Op) {
        match self.queues.get(&group) {
            Some(q) => {
                let _ = q.send(op);
            }
            None => warn!(group, "no such group here"),
        }
    }
}

/// After a takeover, the neighbour entries the service needs (gateway,
/// ping nodes) are refreshed on the interfaces the group uses, so replies to
/// clients do not wait on a stale entry (Linux retries those once a second).
async fn refresh_paths(res: &Resources, group: &str, specs: &[ResourceSpec], ips: &[IpAddr]) {
    if ips.is_empty() {
        return;
    }
    let mut ifaces: Vec<String> = Vec::new();
    for s in specs {
        let i = match s {
            ResourceSpec::IpAddr { iface: Some(i), .. } => Some(i.clone()),
            ResourceSpec::Mac { iface, mode, .. } => Some(match mode {
                MacMode::Replace => iface.clone(),
                MacMode::Macvlan { child } => child
                    .clone()
                    .unwrap_or_else(|| crate::resources::mac::child_name(group)),
            }),
            _ => None,
        };
        if let Some(i) = i
            && !ifaces.contains(&i)
        {
            ifaces.push(i);
        }
    }
    for i in ifaces {
        if let Err(e) = res.refresh_neighbours(&i, ips).await {
            warn!(iface = %i, error = %e, "neighbour refresh failed");
        }
    }
}
