//! The agent's event loop: the `select!` over its sources, each turned
//! into an [`Input`] for the core (core.rs), whose decisions the executor
//! carries out (executor.rs); then the exit. The wiring is startup.rs's.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::executor::Exec;
use super::groups::Done;
use super::report::{self, View};
use super::startup::{self, Parts, now};
use super::{RunOptions, notify};
use crate::config::Config;
use crate::control::{Request, Response};
use crate::health::Checks;
use crate::kernel::{Kernel, KernelEvent};
use crate::rules::{Admin, AgentCore, Input};
use hb_core::health::Probe;

/// Longest wait at exit for resources still being removed.
const FINISH_STOPS_MAX: Duration = Duration::from_secs(10);

/// The core's timers (settling, hold-offs, retries, the stall rule's
/// timeout) are in deadtimes, and heartbeats, detection and check results
/// do not wait for the tick: it runs every deadtime, 10 to 100 ms.
/// Ticking every keepalive cost a fifth of the agent's idle CPU at 1 ms
/// (each tick is an epoll wake-up, tokio's own eventfd write and a pass
/// over the rules, ~50 us here).
const TICK_MIN: Duration = Duration::from_millis(10);
const TICK_MAX: Duration = Duration::from_millis(100);

/// The loop's own wake-ups: signals, the tick, systemd's watchdog, a stall
/// the sender saw.
struct Wakeups {
    term: Signal,
    int: Signal,
    hup: Signal,
    tick: tokio::time::Interval,
    watchdog: Option<Duration>,
    last_watchdog: Instant,
    stall: std::sync::Arc<tokio::sync::Notify>,
}

impl Wakeups {
    fn new(deadtime: Duration, stall: std::sync::Arc<tokio::sync::Notify>) -> Result<Wakeups> {
        let mut tick = tokio::time::interval(deadtime.clamp(TICK_MIN, TICK_MAX));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Ok(Wakeups {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            tick,
            watchdog: notify::watchdog_interval(),
            last_watchdog: Instant::now(),
            stall,
        })
    }

    /// Tells systemd's watchdog we are alive, as often as it asks.
    fn watchdog(&mut self) {
        if let Some(w) = self.watchdog
            && self.last_watchdog.elapsed() >= w
        {
            notify::watchdog_ping();
            self.last_watchdog = Instant::now();
        }
    }
}

pub async fn run(opts: RunOptions) -> Result<()> {
    let mut p = startup::assemble(&opts).await?;
    let mut w = Wakeups::new(p.core.cfg.timing.deadtime, p.exec.sender.stall_notify())?;
    // Real-time from here on: not while loading and verifying the XDP
    // program (milliseconds of CPU that would starve the host).
    if p.core.cfg.realtime {
        super::realtime::enable();
    }
    // A reload reads files: off the event loop (a FIFO or a hung NFS mount
    // in their place must not stop heartbeats, takeovers or the control
    // socket), one at a time.
    let (reload_tx, mut reload_rx) = mpsc::channel::<Result<Config>>(1);
    let mut reloading = false;
    let (core, x) = (&mut p.core, &mut p.exec);
    while !core.exit {
        tokio::select! {
            biased;
            batch = p.events.next_batch() => {
                // A freeze must be known before the events queued during it.
                let ns = x.sender.take_stall().unwrap_or(0);
                core.on(Input::Stall { ns }, now(), x);
                x.served_cache = None;
                // Each logged just before it is decided on, as it comes.
                for e in batch? {
                    log_kernel_event(core, &x.kernel, &e);
                    core.on(Input::Kernel(e), now(), x);
                }
            }
            Some(d) = p.done_rx.recv() => { core.on(Input::Worker(d), now(), x); }
            Some(r) = p.check_rx.recv() => {
                let n = now();
                let probe = Probe {
                    ok: r.outcome.ok,
                    at: n.ns,
                    latency_ns: r.latency.as_nanos().min(u64::MAX as u128) as u64,
                    detail: r.outcome.detail,
                };
                core.on(Input::Check { group: r.group, check: r.check, probe }, n, x);
            }
            Ok(()) = p.ping_rx.changed() => {
                let count = *p.ping_rx.borrow_and_update();
                if let Some(count) = count {
                    core.on(Input::Ping(count), now(), x);
                }
            }
            _ = w.stall.notified() => {
                // Fenced by the lapsed lease until the peers answer: at once.
                let ns = x.sender.take_stall().unwrap_or(0);
                core.on(Input::Stall { ns }, now(), x);
            }
            _ = w.tick.tick() => {
                let ns = x.sender.take_stall().unwrap_or(0);
                core.on(Input::Stall { ns }, now(), x);
                core.on(Input::Tick, now(), x);
                w.watchdog();
            }
            Some(reply) = p.scrape_rx.recv() => {
                let v = View { core, kernel: &x.kernel, sender: &x.sender };
                let _ = reply.send(crate::metrics::render(&report::metrics(&v)));
            }
            Some((req, reply)) = p.ctl_rx.recv() => { let _ = reply.send(control(core, x, req)); }
            _ = w.term.recv() => {
                info!("SIGTERM: releasing groups and stopping");
                notify::stopping();
                core.on(Input::Stop, now(), x);
            }
            _ = w.int.recv() => {
                info!("SIGINT: releasing groups and stopping");
                core.on(Input::Stop, now(), x);
            }
            _ = w.hup.recv() => {
                if reloading {
                    warn!("SIGHUP: a reload is still reading the configuration; ignored");
                } else {
                    reloading = true;
                    let (src, tx) = (opts.source.clone(), reload_tx.clone());
                    tokio::task::spawn_blocking(move || {
                        let _ = tx.blocking_send(startup::load_config(&src));
                    });
                }
            }
            Some(new) = reload_rx.recv() => {
                reloading = false;
                if reload(core, x, new) {
                    restart_checks(&mut p.checks, &mut p.check_rx, core, &p.resources, x);
                }
            }
        }
        let lease_on_hold = p.lease.as_ref().map(|l| l.on_hold());
        core.on(Input::Settle { lease_on_hold }, now(), x);
        // `when = "held"` checks follow their groups.
        p.checks.held.send_if_modified(|h| {
            let now_held = core.held_checked();
            (h != now_held).then(|| *h = now_held.clone()).is_some()
        });
    }
    finish(p).await;
    Ok(())
}

fn control(core: &mut AgentCore, x: &mut Exec, req: Request) -> Response {
    match req {
        Request::Status => {
            let v = View {
                core,
                kernel: &x.kernel,
                sender: &x.sender,
            };
            Response {
                ok: true,
                message: String::new(),
                status: Some(report::report(&v)),
            }
        }
        Request::Standby { group } => admin(core, x, Admin::Standby, group),
        Request::Takeover { group } => admin(core, x, Admin::Takeover, group),
    }
}

fn admin(core: &mut AgentCore, x: &mut Exec, cmd: Admin, group: Option<String>) -> Response {
    match core.on(Input::Admin { cmd, group }, now(), x) {
        Some(a) if a.ok => Response::ok(a.message),
        Some(a) => Response::err(a.message),
        None => Response::err("no answer"),
    }
}

/// The exit: withdrawn addresses gone before the program that drops
/// their traffic is (a second signal skips only the wait for a peer), the
/// guard cleared, then the XDP links and maps closed.
async fn finish(mut p: Parts) {
    finish_stops(&mut p.core, &mut p.exec, &mut p.done_rx).await;
    if p.lease.is_some() {
        // Pinned, the program outlives us: fence nothing once we are gone.
        if let Err(e) = p.exec.kernel.set_guard(Default::default()) {
            warn!("clearing the service lease guard: {e:#}");
        }
    }
    info!("agent stopped");
    // Without pinning, closing the XDP links detaches the program; on veth
    // that holds the kernel's RTNL lock for 7-15 ms (measured in the lab),
    // and rtnetlink requests anywhere on the host, in every network
    // namespace (the lab's other nodes), wait for it.
    let t = Instant::now();
    drop(p);
    tracing::debug!(
        took_us = t.elapsed().as_micros() as u64,
        "XDP links and maps closed"
    );
}

/// Runs the clean-ups still deferred and waits (at most
/// [`FINISH_STOPS_MAX`]) for every stop to finish.
async fn finish_stops(
    core: &mut AgentCore,
    x: &mut Exec,
    done_rx: &mut mpsc::UnboundedReceiver<Done>,
) {
    for g in core.take_deferred_cleanups() {
        x.workers.submit(g, super::groups::Op::CleanUp);
    }
    let until = tokio::time::Instant::now() + FINISH_STOPS_MAX;
    while !core.stopping().is_empty() {
        match tokio::time::timeout_at(until, done_rx.recv()).await {
            Ok(Some(Done::StopFinished {
                group,
                handed_over,
                ok,
            })) => core.stop_finished(group, handed_over, ok, now(), x),
            Ok(Some(Done::Cluster(_) | Done::QuickPlan { .. } | Done::Restarted { .. })) => {}
            Ok(None) | Err(_) => {
                warn!(groups = ?core.stopping(), "exiting before these groups' resources were removed");
                return;
            }
        }
    }
}

fn log_kernel_event(core: &AgentCore, kernel: &Kernel, e: &KernelEvent) {
    use crate::kernel::KernelEventKind as K;
    let peer = core.node_name(e.node_id);
    let link = kernel
        .attachments()
        .iter()
        .find(|a| a.ifindex == e.ifindex)
        .map(|a| a.iface.clone())
        .unwrap_or_default();
    let silent_ms = e.ts_ns.saturating_sub(e.last_seen_ns) as f64 / 1e6;
    match e.kind {
        K::Dead => warn!(%peer, %link, silent_ms, "peer dead on link (kernel timer)"),
        K::FirstHeard => info!(%peer, %link, "peer up on link (first heard)"),
        K::AliveAgain => info!(%peer, %link, "peer up on link again"),
        K::Restarted { .. } => info!(%peer, %link, "peer restarted (new incarnation)"),
        // The core warns of it (`warning.late_heartbeat`), once an episode.
        K::Late { gap_ns } => {
            tracing::debug!(%peer, %link, gap_ms = gap_ns as f64 / 1e6, "late heartbeat")
        }
        K::State => tracing::debug!(%peer, %link, "peer state changed"),
    }
}

/// SIGHUP: apply the configuration read again (off the loop). One that
/// failed to load leaves the running one in place. Timings, keys and
/// health checks apply at once; changes to nodes, links or groups need a
/// restart (said in the log). True when the checks changed.
fn reload(core: &mut AgentCore, x: &mut Exec, loaded: Result<Config>) -> bool {
    let new = match loaded {
        Ok(c) => c,
        Err(e) => {
            error!("reload failed, the running configuration stays: {e:#}");
            return false;
        }
    };
    let old = &core.cfg;
    let without_checks = |c: &Config| {
        let mut g = c.groups.clone();
        g.iter_mut().for_each(|g| g.checks.clear());
        g
    };
    let checks_changed = new
        .groups
        .iter()
        .map(|g| &g.checks)
        .ne(old.groups.iter().map(|g| &g.checks));
    let structural = new.nodes != old.nodes
        || new.links != old.links
        || without_checks(&new) != without_checks(old)
        || new.cluster_id != old.cluster_id;
    if structural {
        warn!(
            "reload: nodes, links or groups changed; restart the agent to apply them (timings still apply)"
        );
    }
    // The pinger runs with what it was started with (a start-up window of
    // its own: see ping.rs); say so rather than pretend.
    if new.deadping() != old.deadping()
        || new.ping_nodes != old.ping_nodes
        || new.ping_groups != old.ping_groups
    {
        warn!("reload: ping nodes or deadping changed; restart the agent to apply them");
    }
    let mut cfg = old.clone();
    // Health checks apply at once (unless the groups changed otherwise).
    let checks = checks_changed && !structural;
    if checks {
        for (g, n) in cfg.groups.iter_mut().zip(&new.groups) {
            g.checks = n.checks.clone();
        }
        info!("reload: health checks changed; restarting them (unchanged ones keep their state)");
    }
    cfg.timing = new.timing;
    cfg.arp = new.arp.clone();
    cfg.warnings = new.warnings.clone();
    if let Err(e) = startup::set_peers(&mut x.kernel, &cfg, &core.local) {
        error!("reload: updating peer timings failed: {e:#}");
        return false;
    }
    core.on(Input::Reloaded(Box::new(cfg)), now(), x);
    checks
}

/// A reload changed the checks: their thread is replaced (the old one
/// stopped first, so no result of an old check arrives after), and the
/// core keeps the records of the unchanged ones.
fn restart_checks(
    checks: &mut Checks,
    rx: &mut mpsc::UnboundedReceiver<crate::health::Report>,
    core: &mut AgentCore,
    resources: &std::sync::Arc<crate::resources::Resources>,
    x: &mut Exec,
) {
    let (tx, new_rx) = mpsc::unbounded_channel();
    let groups = startup::group_checks(&core.cfg, &core.local.name);
    *checks = Checks::disabled();
    match Checks::start(groups, resources.clone(), tx) {
        Ok(c) => {
            *checks = c;
            *rx = new_rx;
        }
        Err(e) => error!("reload: restarting the health checks failed: {e:#}"),
    }
    let cfg = core.cfg.clone();
    core.reload_checks(&cfg, now(), x);
}
