//! Runs every check of this node's groups on a thread of its own (a check
//! that hangs, spins or floods output costs that thread, never the event
//! loop or the heartbeat sender), one task per check, each result sent to
//! the event loop as a [`Report`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use super::probe::{self, Outcome};
use crate::cluster::GroupId;
use crate::model::ResourceSpec;
use crate::resources::{ResourceState, Resources};
use hb_core::health::{CheckKind, CheckSpec, When};

/// One probe's result, for the rules.
#[derive(Debug)]
pub struct Report {
    pub group: GroupId,
    pub check: usize,
    pub outcome: Outcome,
    pub latency: Duration,
}

/// What a group's checks need.
#[derive(Clone)]
pub struct GroupChecks {
    pub id: GroupId,
    pub name: String,
    /// What its resources are named by (Group::key): a monitor check runs
    /// the resource's own status action, with its OCF instance.
    pub key: String,
    pub checks: Vec<CheckSpec>,
    pub resources: Vec<ResourceSpec>,
}

/// The checks' thread; stopped when dropped.
pub struct Checks {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Groups held here: their `when = "held"` checks run.
    pub held: watch::Sender<BTreeSet<GroupId>>,
}

impl Checks {
    /// No checks (a stand-in while they are replaced).
    pub fn disabled() -> Checks {
        Checks {
            stop: None,
            thread: None,
            held: watch::channel(BTreeSet::new()).0,
        }
    }

    /// Starts the checks of `groups`; none: no thread.
    pub fn start(
        groups: Vec<GroupChecks>,
        res: Arc<Resources>,
        tx: mpsc::UnboundedSender<Report>,
    ) -> Result<Checks> {
        let (held, held_rx) = watch::channel(BTreeSet::new());
        if groups.iter().all(|g| g.checks.is_empty()) {
            return Ok(Checks {
                stop: None,
                thread: None,
                held,
            });
        }
        let (stop, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("hb-checks".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!("health checks: no runtime: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    for g in groups {
                        for (i, c) in g.checks.iter().enumerate() {
                            let task = Task {
                                group: g.id,
                                group_name: g.name.clone(),
                                group_key: g.key.clone(),
                                index: i,
                                spec: c.clone(),
                                resources: g.resources.clone(),
                                res: res.clone(),
                                tx: tx.clone(),
                                held: held_rx.clone(),
                            };
                            tokio::spawn(task.run());
                        }
                    }
                    let _ = stop_rx.await;
                });
                // A file probe stuck on a hung mount must not hold up the exit.
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .context("starting the health-check thread")?;
        Ok(Checks {
            stop: Some(stop),
            thread: Some(thread),
            held,
        })
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Task {
    group: GroupId,
    group_name: String,
    /// Group::key, for the resources.
    group_key: String,
    index: usize,
    spec: CheckSpec,
    resources: Vec<ResourceSpec>,
    res: Arc<Resources>,
    tx: mpsc::UnboundedSender<Report>,
    held: watch::Receiver<BTreeSet<GroupId>>,
}

impl Task {
    fn send(&self, outcome: Outcome, latency: Duration) -> bool {
        debug!(group = %self.group_name, check = %self.spec.name, ok = outcome.ok, detail = %outcome.detail, "check result");
        self.tx
            .send(Report {
                group: self.group,
                check: self.index,
                outcome,
                latency,
            })
            .is_ok()
    }

    fn held_now(&self) -> bool {
        self.held.borrow().contains(&self.group)
    }

    /// A `when = "held"` check waits for its group to be held here.
    async fn wait_held(&mut self) -> bool {
        if self.spec.when == When::Always {
            return true;
        }
        let g = self.group;
        self.held.wait_for(|h| h.contains(&g)).await.is_ok()
    }

    /// Runs `fut` unless the group stops being held here first (then None).
    async fn while_held<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        if self.spec.when == When::Always {
            return Some(fut.await);
        }
        let g = self.group;
        let mut held = self.held.clone();
        tokio::select! {
            v = fut => Some(v),
            _ = held.wait_for(|h| !h.contains(&g)) => None,
        }
    }

    async fn run(mut self) {
        match self.spec.kind.clone() {
            CheckKind::Process(by) => {
                let mut w = probe::process::ProcessWatch::new(by.clone());
                loop {
                    if !self.wait_held().await {
                        return;
                    }
                    let interval = self.spec.interval;
                    let Some(o) = self.while_held(w.next(interval)).await else {
                        // Not held any more: the next hold starts afresh.
                        w = probe::process::ProcessWatch::new(by.clone());
                        continue;
                    };
                    // Event-driven: no probe to time.
                    if !self.send(o, Duration::ZERO) {
                        return;
                    }
                }
            }
            CheckKind::Interface { iface } => {
                let mut w = match probe::interface::CarrierWatch::new(&iface) {
                    Ok(w) => w,
                    Err(e) => {
                        let o = Outcome {
                            ok: false,
                            detail: format!("cannot watch {iface}: {e:#}"),
                        };
                        self.send(o, Duration::ZERO);
                        return;
                    }
                };
                loop {
                    let o = w.next().await;
                    if !self.send(o, Duration::ZERO) {
                        return;
                    }
                }
            }
            _ => self.poll().await,
        }
    }

    /// The polled kinds: one probe every interval (from the start of the
    /// last: a slow probe does not stretch the period, a probe never
    /// overlaps the next).
    async fn poll(mut self) {
        let mut tick = tokio::time::interval(self.spec.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !self.held_now() && !self.wait_held().await {
                return;
            }
            tick.tick().await;
            let t0 = Instant::now();
            let timeout = self.spec.timeout;
            let probe = self.probe_once(timeout);
            let Some(o) = self.while_held(probe).await else {
                continue;
            };
            if !self.send(o, t0.elapsed()) {
                return;
            }
        }
    }

    fn probe_once(&self, timeout: Duration) -> impl Future<Output = Outcome> + 'static {
        let kind = self.spec.kind.clone();
        let res = self.res.clone();
        let group = self.group_key.clone();
        let resources = self.resources.clone();
        async move {
            match kind {
                CheckKind::Tcp { addr } => probe::net::tcp(addr, timeout).await,
                CheckKind::Http(t) => probe::net::http(&t, timeout).await,
                CheckKind::Exec { command } => probe::exec::exec(&command, timeout).await,
                CheckKind::File { path } => probe::file::file(&path, timeout).await,
                CheckKind::Monitor { resource } => {
                    monitor(&res, &group, &resources, resource, timeout).await
                }
                CheckKind::Process(_) | CheckKind::Interface { .. } => unreachable!("event-driven"),
            }
        }
    }
}

/// The group's own script: LSB `status`, OCF `monitor`, Heartbeat `status`.
async fn monitor(
    res: &Resources,
    group: &str,
    resources: &[ResourceSpec],
    index: usize,
    timeout: Duration,
) -> Outcome {
    let Some(ResourceSpec::Script(spec)) = resources.get(index) else {
        return Outcome {
            ok: false,
            detail: "not a script resource".into(),
        };
    };
    let mut spec = spec.clone();
    // The script runner kills it (its process group) past this.
    spec.timeout = timeout;
    match res.scripts().status(group, &spec).await {
        Ok(ResourceState::InPlace) => Outcome {
            ok: true,
            detail: "running".into(),
        },
        Ok(ResourceState::Absent) => Outcome {
            ok: false,
            detail: "not running".into(),
        },
        Ok(ResourceState::Partial(what) | ResourceState::Unknown(what)) => Outcome::fail(what),
        Err(e) => Outcome::fail(e.to_string()),
    }
}
