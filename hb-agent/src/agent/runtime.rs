//! The agent's event loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use hb_common::{
    maps::{KernelConfig, PeerConfig},
    siphash::key_words,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::{
    RunOptions, convert,
    groups::{Done, GroupWorkers, Op, ResourceThread},
    lease, status,
    withdraw::Withdrawal,
};
use crate::{
    cluster::{Action, AdminCmd, Cluster, ClusterSpec, Event, GroupId, GroupSpec, NodeId, Warning},
    config::{self, Config, LinkKind, Node, Severity},
    control::{Request, Response, server},
    kernel::{Kernel, events::EventStream},
    ping::{Pinger, Target},
    resources::{
        AnnounceGate, Resources, ResourcesConfig,
        quick::{self, QuickStarter},
    },
    sender::{LinkTarget, Sender, SenderConfig, clock},
};

/// How many warnings `status` keeps.
const WARNINGS_KEPT: usize = 20;

/// Longest wait at exit for resources still being removed.
const FINISH_STOPS_MAX: Duration = Duration::from_secs(10);

pub struct Agent {
    pub(super) cfg: Config,
    pub(super) local: Node,
    pub(super) cluster: Cluster,
    pub(super) kernel: Kernel,
    pub(super) sender: Sender,
    workers: GroupWorkers,
    pub(super) started: Instant,
    pub(super) warnings: VecDeque<String>,
    /// The highest epoch each group was taken at here, on disk.
    pub(super) epochs: super::epochs::Epochs,
    /// When each group last changed hands, as seen from here.
    pub(super) owners: BTreeMap<GroupId, (Option<NodeId>, Instant)>,
    done_tx: mpsc::UnboundedSender<Done>,
    exit: bool,
    /// For metrics: takeovers/releases and takeover durations per group.
    pub(super) group_counts: BTreeMap<GroupId, GroupCounts>,
    /// When each pending takeover was decided.
    acquiring_since: BTreeMap<GroupId, Instant>,
    /// For metrics: times each peer was declared dead on all links.
    pub(super) dead_events: BTreeMap<NodeId, u64>,
    /// Groups held when the shutdown began: after releasing them the agent
    /// stays (heartbeating, attached) until a peer serves each, or a
    /// deadtime passes. The peer's takeover then runs on a quiet host:
    /// detaching XDP holds the kernel's RTNL lock for milliseconds, which
    /// every rtnetlink call on the host, the taker's included, waits for.
    handing_over: Vec<GroupId>,
    drain_until: Option<Instant>,
    /// Groups whose stop has not finished (their addresses may still be on
    /// an interface, withdrawn): the agent does not exit before they are.
    stopping: BTreeSet<GroupId>,
    /// Events raised while applying actions (a release done on the spot),
    /// fed after the batch that raised them.
    pending: VecDeque<Event>,
    feeding: bool,
    /// Groups handed over with their addresses withdrawn, whose removal
    /// waits until a peer serves them (or this deadline): removing
    /// addresses takes the kernel's RTNL lock, which the taker's own
    /// netlink calls need at that very moment.
    deferred_cleanups: BTreeMap<GroupId, Instant>,
    /// `served_by_peers` as last read; cleared when kernel events arrive.
    served_cache: Option<BTreeSet<GroupId>>,
    /// A takeover's first step on this thread (`resources::quick`), and
    /// what it puts up per group.
    quick: Option<QuickStarter>,
    quick_plans: BTreeMap<GroupId, quick::Plan>,
}

#[derive(Clone, Default)]
pub(super) struct GroupCounts {
    pub takeovers: u64,
    pub releases: u64,
    pub durations: crate::metrics::Histogram,
}

fn load_config(src: &config::Source) -> Result<Config> {
    match config::load(src) {
        Ok(cfg) => Ok(cfg),
        Err(diags) => {
            let mut msg = String::from("configuration refused:");
            for d in diags.iter().filter(|d| d.severity == Severity::Error) {
                msg.push_str(&format!("\n  {d}"));
            }
            Err(anyhow!(msg))
        }
    }
}

fn link_targets(cfg: &Config, local: &Node) -> Vec<LinkTarget> {
    cfg.links
        .iter()
        .map(|l| match &l.kind {
            LinkKind::Bcast => LinkTarget::Bcast {
                iface: l.iface.clone(),
            },
            LinkKind::Mcast {
                group,
                ttl,
                loopback,
            } => LinkTarget::Mcast {
                iface: l.iface.clone(),
                group: *group,
                ttl: *ttl as u32,
                loopback: *loopback,
            },
            LinkKind::Ucast { peers } => {
                let own = local.addrs.get(&l.name);
                LinkTarget::Ucast {
                    iface: l.iface.clone(),
                    // Heartbeat configs list every node's address on every node.
                    peers: peers.iter().filter(|p| Some(*p) != own).copied().collect(),
                }
            }
        })
        .collect()
}

fn cluster_spec(cfg: &Config, local: &Node) -> ClusterSpec {
    let ns = |d: Duration| d.as_nanos() as u64;
    ClusterSpec {
        local: local.id,
        nodes: cfg.nodes.iter().map(|n| n.id).collect(),
        groups: cfg
            .groups
            .iter()
            .filter(|g| g.nodes.iter().any(|n| n.eq_ignore_ascii_case(&local.name)))
            .map(|g| GroupSpec {
                id: g.id,
                candidates: g
                    .nodes
                    .iter()
                    .filter_map(|n| cfg.node(n).map(|n| n.id))
                    .collect(),
            })
            .collect(),
        keepalive_ns: ns(cfg.timing.keepalive),
        deadtime_ns: ns(cfg.timing.deadtime),
        warntime_ns: ns(cfg.timing.warntime),
        initdead_ns: ns(cfg.timing.initdead),
        auto_failback: cfg.auto_failback,
        ping_targets: cfg.deciding_ping_targets(),
        ping_tie_break: cfg.ping_tie_break,
        fencing: cfg.fencing.is_some(),
    }
}

fn ping_targets(cfg: &Config) -> Result<Vec<Target>> {
    let v4 = |a: &IpAddr| match a {
        IpAddr::V4(a) => Ok(*a),
        IpAddr::V6(a) => Err(anyhow!(
            "ping target {a}: IPv6 ping nodes are not supported yet"
        )),
    };
    let mut out = Vec::new();
    for a in &cfg.ping_nodes {
        out.push(Target {
            name: a.to_string(),
            addrs: vec![v4(a)?],
        });
    }
    for g in &cfg.ping_groups {
        out.push(Target {
            name: g.name.clone(),
            addrs: g.addrs.iter().map(v4).collect::<Result<_>>()?,
        });
    }
    Ok(out)
}

impl Agent {
    pub async fn run(opts: RunOptions) -> Result<()> {
        let cfg = load_config(&opts.source)?;
        let node_name = opts.node.clone().unwrap_or_else(super::hostname);
        let local = cfg
            .local_node(&node_name)
            .map_err(|d| anyhow!("{d} (give --node NAME if the hostname differs)"))?
            .clone();
        for w in &cfg.warnings {
            warn!("config: {w}");
        }
        // What `check` would print: the reading this agent runs with, once.
        info!(
            "configuration as understood:\n{}",
            config::plan(&cfg, &local.name).render()
        );
        if !cfg.auth.authenticated {
            warn!(
                "HEARTBEATS ARE NOT AUTHENTICATED (authkeys uses crc): anyone on the heartbeat network can forge them"
            );
        }
        let port = cfg.links.first().map(|l| l.port).unwrap_or(cfg.udp_port);
        if cfg.links.iter().any(|l| l.port != port) {
            bail!("all heartbeat links must use one UDP port (the XDP program matches one)");
        }
        let (k0, k1) = key_words(&cfg.auth.key);

        // Kernel side first: we must hear peers before we say anything.
        let (pin_dir, unguarded) = pinning(&opts, &cfg);
        let mut kernel = Kernel::load(pin_dir.as_deref()).map_err(|e| match &pin_dir {
            Some(d) => anyhow!(
                "{e:#}\n(if maps pinned in {} come from another hb version: remove that \
                 directory, which detaches the old program, or run with --no-pin)",
                d.display()
            ),
            None => e,
        })?;
        kernel.set_config(KernelConfig {
            cluster_id: cfg.cluster_id,
            udp_port: port,
            flags: 0,
            k0,
            k1,
        })?;
        set_peers(&mut kernel, &cfg, &local)?;
        let mut ifaces: Vec<&str> = cfg.links.iter().map(|l| l.iface.as_str()).collect();
        ifaces.dedup();
        for i in ifaces {
            kernel.attach(i)?;
        }
        let mut events = EventStream::new(kernel.take_events()?)?;

        // The service lease (see sender::lease). Alone in a cluster there is
        // nobody to hand over to, so no lease.
        let guarded = cfg.service_lease && cfg.nodes.len() > 1;
        let lease = if guarded {
            Some(lease::open(&kernel, cfg.timing.deadtime)?)
        } else {
            None
        };
        let lease_lapsed = lease.as_ref().is_some_and(|l| l.on_hold());

        let state_dir = opts.state_dir.clone().unwrap_or_else(|| {
            PathBuf::from("/run/hb").join(format!("{}-{}", cfg.cluster, local.name))
        });
        let (epochs, problem) = super::epochs::Epochs::load(&state_dir);
        if let Some(p) = problem {
            warn!("epoch record unreadable, starting from what peers say: {p}");
        }
        // Resource operations (and their rtnetlink connection) run on a
        // thread of their own: see groups.rs.
        let resource_thread = ResourceThread::start()?;
        let announce_gate = lease
            .clone()
            .map(|l| AnnounceGate(Arc::new(move || l.running())));
        let resources = {
            let _in = resource_thread.handle().enter();
            Resources::new(ResourcesConfig {
                groups: cfg
                    .groups
                    .iter()
                    .map(|g| (g.name.clone(), g.resources.clone()))
                    .collect(),
                arp: cfg.arp.clone(),
                script_dirs: cfg.script_dirs.clone(),
                state_dir: state_dir.clone(),
                announce_gate: announce_gate.clone(),
                ..Default::default()
            })
            .map_err(|e| anyhow!("resources: {e}"))?
        };
        let resources = Arc::new(resources);

        let spec = cluster_spec(&cfg, &local);
        spec.validate()
            .map_err(|e| anyhow!("cluster configuration: {e}"))?;

        let mut withdrawal = None;
        if guarded {
            let ours: Vec<&config::Group> = cfg
                .groups
                .iter()
                .filter(|g| spec.groups.iter().any(|s| s.id == g.id))
                .collect();
            let fenced = lease::fence(&mut kernel, &ours, &resources).await?;
            withdrawal = Some(Arc::new(Withdrawal::new(
                fenced.guard,
                fenced.on_their_interface,
                kernel.withdrawn_writer()?,
            )?));
        }
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let mut neighbours: Vec<IpAddr> = cfg.ping_nodes.clone();
        neighbours.extend(cfg.ping_groups.iter().flat_map(|g| g.addrs.clone()));
        for g in &cfg.groups {
            for r in &g.resources {
                if let crate::resources::ResourceSpec::Mac {
                    gateway: Some(gw), ..
                } = r
                    && !neighbours.contains(gw)
                {
                    neighbours.push(*gw);
                }
            }
        }
        let workers = GroupWorkers::spawn(
            resource_thread.handle(),
            resources.clone(),
            cfg.groups
                .iter()
                .filter(|g| spec.groups.iter().any(|s| s.id == g.id))
                .map(|g| (g.id, g.name.clone(), g.resources.clone()))
                .collect(),
            neighbours,
            withdrawal,
            done_tx.clone(),
        );

        // Groups whose resources are already in place: an agent restarted
        // while holding them adopts them without an outage. The others get
        // what can be made ready in advance (parked macvlan children).
        let mut adopt = Vec::new();
        let mut quick_plans = BTreeMap::new();
        for g in cfg
            .groups
            .iter()
            .filter(|g| spec.groups.iter().any(|s| s.id == g.id))
        {
            if !resources
                .status_group(&g.name, &g.resources)
                .await
                .all_in_place()
                && let Err(e) = resources.prepare_group(&g.resources, &g.name).await
            {
                warn!(group = %g.name, error = %e, "could not prepare the group's interfaces in advance");
            }
            if resources
                .status_group(&g.name, &g.resources)
                .await
                .all_in_place()
            {
                info!(group = %g.name, "resources already in place: adopting the group");
                adopt.push(g.id);
            }
            match resources.quick_plan(&g.name, &g.resources).await {
                Ok(Some(p)) => {
                    quick_plans.insert(g.id, p);
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(group = %g.name, error = %e, "no quick takeover step for the group")
                }
            }
        }
        let quick = match QuickStarter::open(&cfg.arp, announce_gate.clone()) {
            Ok(q) => Some(q),
            Err(e) => {
                warn!(error = %e, "no quick takeover step (sockets)");
                None
            }
        };

        let sender = Sender::start_paused(
            SenderConfig {
                cluster_id: cfg.cluster_id,
                node_id: local.id,
                incarnation: clock::realtime_ns(),
                keepalive: cfg.timing.keepalive,
                deadtime: cfg.timing.deadtime,
                key: (k0, k1),
                port,
                realtime: cfg.realtime,
            },
            &link_targets(&cfg, &local),
        )?;

        if let Some(l) = &lease {
            sender.set_lease(l.clone());
        }

        let (ping_tx, mut ping_rx) = watch::channel(None);
        let targets = ping_targets(&cfg)?;
        if !targets.is_empty() {
            // Four probes per deadping: one lost ping must not count as
            // lost connectivity.
            let deadping = cfg.deadping();
            let interval = (deadping / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
            let pinger = Pinger::new(targets, interval, deadping);
            tokio::spawn(async move {
                if let Err(e) = pinger.run(ping_tx).await {
                    error!("ping nodes: {e:#}");
                }
            });
        }

        let socket = opts
            .socket
            .clone()
            .unwrap_or_else(|| cfg.control_socket.clone());
        let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
        let _socket_guard = server::serve(&socket, ctl_tx)?;
        let (scrape_tx, mut scrape_rx) = mpsc::channel::<crate::metrics::ScrapeReply>(4);
        if let Some(addr) = cfg.metrics_addr {
            let srv = crate::metrics::MetricsServer::bind(addr, scrape_tx)
                .await
                .with_context(|| format!("metrics endpoint {addr}"))?;
            info!(addr = %srv.local_addr()?, "Prometheus metrics at /metrics");
            tokio::spawn(srv.run());
        }

        let now = clock::now_ns();
        let mut cluster = Cluster::new(spec, now);
        for (name, epoch) in epochs.iter() {
            if let Some(g) = cfg.groups.iter().find(|g| g.name == name) {
                cluster.remember_epoch(g.id, epoch);
            }
        }
        let mut agent = Agent {
            cluster,
            epochs,
            cfg,
            local,
            kernel,
            sender,
            workers,
            started: Instant::now(),
            warnings: VecDeque::new(),
            owners: BTreeMap::new(),
            done_tx,
            exit: false,
            group_counts: BTreeMap::new(),
            acquiring_since: BTreeMap::new(),
            dead_events: BTreeMap::new(),
            handing_over: Vec::new(),
            drain_until: None,
            stopping: BTreeSet::new(),
            pending: VecDeque::new(),
            feeding: false,
            deferred_cleanups: BTreeMap::new(),
            served_cache: None,
            quick,
            quick_plans,
        };
        info!(
            node = %agent.local.name,
            cluster = %agent.cfg.cluster,
            keepalive_ms = agent.cfg.timing.keepalive.as_secs_f64() * 1e3,
            deadtime_ms = agent.cfg.timing.deadtime.as_secs_f64() * 1e3,
            socket = %socket.display(),
            "agent started"
        );
        agent.feed(Event::Start);
        let adopting = !adopt.is_empty();
        for g in adopt {
            agent.feed(Event::AdoptHeld { group: g });
        }
        if lease_lapsed && adopting {
            // The previous agent died holding these and stayed away past
            // its lease: peers may own them now. Same as a hang.
            warn!("the previous agent's service lease lapsed: releasing adopted groups");
            agent.feed(Event::Stalled {
                ns: agent.cfg.timing.deadtime.as_nanos() as u64 * 2,
            });
        }
        // With pinned maps the kernel may already know peers alive (it kept
        // running while no agent was here) and will not say "first heard"
        // again: start from its current view, not from old queued events.
        let stale = events.try_drain().len();
        let mut known = 0;
        for (key, st) in agent.kernel.peer_states()? {
            if st.status == hb_common::maps::STATUS_ALIVE {
                known += 1;
                agent.feed(Event::LinkUp {
                    node: key.node_id,
                    link: key.ifindex,
                });
                agent.feed(Event::PeerAdvert {
                    node: key.node_id,
                    advert: convert::wire_to_advert(&st.state),
                });
            }
        }
        if known > 0 || stale > 0 {
            info!(
                alive_links = known,
                stale_events = stale,
                "{}",
                if pin_dir.is_some() {
                    "took over the kernel's view from pinned maps"
                } else {
                    "started from the kernel's view of peers heard while loading"
                }
            );
        }
        if let Some(why) = unguarded {
            agent.warnings.push_back(why);
        }
        // Only now, with the state known (adopted groups included), speak:
        // a first heartbeat claiming nothing would invite a takeover.
        agent
            .sender
            .set_state(convert::advert_to_wire(&agent.cluster.advert()));
        agent.sender.pause(false);
        agent.sender.send_now();
        // Attached and configured, first state known: tell systemd.
        super::notify::ready(&format!(
            "attached to {} link(s); node {}",
            agent.kernel.attachments().len(),
            agent.local.name
        ));
        let watchdog = super::notify::watchdog_interval();
        let mut last_watchdog = Instant::now();

        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        // Real-time from here on: not while loading and verifying the XDP
        // program (milliseconds of CPU that would starve the host).
        if agent.cfg.realtime {
            super::realtime::enable();
        }
        let tick_every = agent.cfg.timing.keepalive.min(Duration::from_millis(100));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let src = opts.source;
        // A reload reads files: off the event loop (a FIFO or a hung NFS
        // mount in their place must not stop heartbeats, takeovers or the
        // control socket), one at a time.
        let (reload_tx, mut reload_rx) = mpsc::channel::<Result<Config>>(1);
        let mut reloading = false;

        while !agent.exit {
            tokio::select! {
                biased;
                batch = events.next_batch() => {
                    // A freeze must be known before the events queued during it.
                    agent.check_stall();
                    agent.served_cache = None;
                    for e in batch? {
                        agent.log_kernel_event(&e);
                        let was_alive = agent.cluster.is_peer_alive(e.node_id);
                        for ev in convert::kernel_to_cluster(&e) {
                            agent.feed(ev);
                        }
                        if was_alive && !agent.cluster.is_peer_alive(e.node_id) {
                            warn!(peer = %agent.node_name(e.node_id), "peer dead on all links");
                            *agent.dead_events.entry(e.node_id).or_default() += 1;
                        }
                    }
                }
                Some(d) = done_rx.recv() => match d {
                    Done::Cluster(ev) => agent.feed(ev),
                    Done::StopFinished { group, handed_over, ok } => {
                        agent.stop_finished(group, handed_over, ok)
                    }
                    Done::QuickPlan { group, plan } => match plan {
                        Some(p) => {
                            agent.quick_plans.insert(group, p);
                        }
                        None => {
                            agent.quick_plans.remove(&group);
                        }
                    },
                },
                Ok(()) = ping_rx.changed() => {
                    let count = *ping_rx.borrow_and_update();
                    if let Some(count) = count {
                        info!(reachable = count, "ping targets");
                        agent.feed(Event::PingReachable { count });
                    }
                }
                _ = tick.tick() => {
                    agent.check_stall();
                    agent.feed(Event::Tick);
                    if let Some(w) = watchdog
                        && last_watchdog.elapsed() >= w
                    {
                        super::notify::watchdog_ping();
                        last_watchdog = Instant::now();
                    }
                }
                Some(reply) = scrape_rx.recv() => {
                    let _ = reply.send(crate::metrics::render(&status::metrics(&agent)));
                }
                Some((req, reply)) = ctl_rx.recv() => {
                    let r = agent.control(req);
                    let _ = reply.send(r);
                }
                _ = term.recv() => {
                    info!("SIGTERM: releasing groups and stopping");
                    super::notify::stopping();
                    agent.shutdown();
                }
                _ = int.recv() => { info!("SIGINT: releasing groups and stopping"); agent.shutdown(); }
                _ = hup.recv() => {
                    if reloading {
                        warn!("SIGHUP: a reload is still reading the configuration; ignored");
                    } else {
                        reloading = true;
                        let (src, tx) = (src.clone(), reload_tx.clone());
                        tokio::task::spawn_blocking(move || {
                            let _ = tx.blocking_send(load_config(&src));
                        });
                    }
                }
                Some(new) = reload_rx.recv() => {
                    reloading = false;
                    agent.reload(new);
                }
            }
            agent.run_deferred_cleanups();
            agent.check_drained();
            if let Some(l) = &lease {
                if l.on_hold()
                    && !agent.cluster.held_groups().is_empty()
                    && !agent.cluster.is_hang_settling()
                {
                    // The lease lapsed (our silence reached a deadtime) and
                    // we still hold something the hang rule is not already
                    // releasing (the sender saw no stall, or a start
                    // finished after the rule's window): same rule, the
                    // peers may have taken over; our addresses stay fenced
                    // until we released them.
                    agent.feed(Event::Stalled {
                        ns: agent.cfg.timing.deadtime.as_nanos() as u64,
                    });
                }
                if lease::may_resume(l.on_hold(), agent.cluster.held_groups().len()) {
                    l.resume();
                }
            }
        }
        // Withdrawn addresses must be gone before the program that drops
        // their traffic is (a second signal skips only the wait for a peer).
        agent.finish_stops(&mut done_rx).await;
        if guarded {
            // Pinned, the program outlives us: fence nothing once we are gone.
            if let Err(e) = agent.kernel.set_guard(Default::default()) {
                warn!("clearing the service lease guard: {e:#}");
            }
        }
        info!("agent stopped");
        // Without pinning, closing the XDP links detaches the program; on
        // veth that holds the kernel's RTNL lock for 7-15 ms (measured in the
        // lab), and rtnetlink requests anywhere on the host, in every network
        // namespace (the lab's other nodes), wait for it.
        let t = Instant::now();
        drop(agent);
        tracing::debug!(
            took_us = t.elapsed().as_micros() as u64,
            "XDP links and maps closed"
        );
        Ok(())
    }

    /// Detects that this process was frozen, from the sender thread's view,
    /// and tells the cluster logic first. Only the sender's silence counts:
    /// peers take over after a deadtime without heartbeats, not after a slow
    /// event loop (at millisecond deadtimes a busy loop is routinely late by
    /// more than that, while the real-time sender is not).
    fn check_stall(&mut self) {
        let ns = self.sender.take_stall().unwrap_or(0);
        if ns > self.cfg.timing.deadtime.as_nanos() as u64 {
            warn!(
                stall_ms = ns as f64 / 1e6,
                "this node was frozen longer than deadtime (SIGSTOP / VM pause?)"
            );
            self.feed(Event::Stalled { ns });
        }
    }

    fn log_kernel_event(&self, e: &crate::kernel::KernelEvent) {
        use crate::kernel::KernelEventKind as K;
        let peer = self.node_name(e.node_id);
        let link = self
            .kernel
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
            K::Late { gap_ns } => {
                warn!(%peer, %link, gap_ms = gap_ns as f64 / 1e6, "late heartbeat")
            }
            K::State => tracing::debug!(%peer, %link, "peer state changed"),
        }
    }

    /// One event into the cluster logic, and its actions out.
    fn feed(&mut self, ev: Event) {
        self.pending.push_back(ev);
        if self.feeding {
            // Applying an action raised it: handled after that batch.
            return;
        }
        self.feeding = true;
        // The batch's starts and stops all queued before any begins, so
        // they run in the written order (lane.rs), not the order emitted.
        let _batch = self.workers.hold();
        while let Some(ev) = self.pending.pop_front() {
            self.feed_one(ev);
        }
        self.feeding = false;
    }

    fn feed_one(&mut self, ev: Event) {
        match &ev {
            Event::Acquired { group } => {
                let c = self.group_counts.entry(*group).or_default();
                c.takeovers += 1;
                if let Some(t) = self.acquiring_since.remove(group) {
                    c.durations.observe_duration(t.elapsed());
                    info!(group = %self.group_name(*group), took_ms = t.elapsed().as_secs_f64() * 1e3, "takeover finished");
                }
            }
            Event::Released { group } => self.group_counts.entry(*group).or_default().releases += 1,
            _ => {}
        }
        let now = clock::now_ns();
        let actions = self.cluster.handle(ev, now);
        for a in actions {
            self.apply(a);
        }
        self.track_owners();
    }

    fn group_name(&self, id: GroupId) -> String {
        self.cfg
            .group_by_id(id)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| format!("#{id:08x}"))
    }

    pub(super) fn node_name(&self, id: NodeId) -> String {
        self.cfg
            .node_by_id(id)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| format!("#{id:08x}"))
    }

    /// A release reason with node names instead of ids, for the log.
    fn reason(&self, r: crate::cluster::ReleaseReason) -> String {
        use crate::cluster::ReleaseReason as R;
        match r {
            R::SplitBrain { winner } => format!("split brain, {} keeps it", self.node_name(winner)),
            R::Failback { to } => format!("failback to {}", self.node_name(to)),
            R::Requested { by } => format!("requested by {}", self.node_name(by)),
            other => format!("{other:?}"),
        }
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::SendAdvert => {
                let adv = self.cluster.advert();
                self.sender.set_state(convert::advert_to_wire(&adv));
                self.sender.send_now();
            }
            Action::Acquire { group, epoch } => {
                info!(group = %self.group_name(group), epoch, "taking over group");
                // Before anything changes: a crash from here on must not
                // let the next run reuse this epoch.
                let name = self.group_name(group);
                if let Err(e) = self.epochs.record(&name, epoch) {
                    warn!(group = %name, "could not record the takeover's epoch: {e:#}");
                }
                self.acquiring_since.insert(group, Instant::now());
                if self.deferred_cleanups.remove(&group).is_some() {
                    // Back before its hand-over finished: remove first, so
                    // the start puts everything up from a known state.
                    self.workers.submit(group, Op::CleanUp);
                } else {
                    self.quick_start(group);
                }
                self.workers.submit(group, Op::Start);
            }
            Action::Release { group, reason } => {
                info!(group = %self.group_name(group), reason = %self.reason(reason), "releasing group");
                self.stopping.insert(group);
                if self.workers.hand_over(group) {
                    info!(group = %self.group_name(group), "group released (addresses withdrawn, removing them)");
                    self.pending.push_back(Event::Released { group });
                    self.deferred_cleanups
                        .insert(group, Instant::now() + self.cfg.timing.deadtime);
                } else {
                    self.workers.submit(group, Op::Stop);
                }
            }
            Action::Fence { node, group } => {
                let Some(f) = self.cfg.fencing.clone() else {
                    return;
                };
                let name = self.node_name(node);
                info!(node = %name, group = %self.group_name(group), "fencing before takeover");
                let tx = self.done_tx.clone();
                tokio::spawn(async move {
                    let ok = super::fence::fence(&f.command, &name, f.timeout).await;
                    let _ = tx.send(Done::Cluster(Event::Fenced { node, ok }));
                });
            }
            Action::Warn(w) => {
                // The pure logic speaks in ids; people read names.
                let mut msg = w.to_string();
                for n in &self.cfg.nodes {
                    msg = msg.replace(&n.id.to_string(), &n.name);
                }
                for g in &self.cfg.groups {
                    msg = msg.replace(&g.id.to_string(), &g.name);
                }
                warn!("{msg}");
                if self.warnings.len() == WARNINGS_KEPT {
                    self.warnings.pop_front();
                }
                self.warnings.push_back(msg);
            }
            Action::Exit => {
                let alive = self
                    .cfg
                    .nodes
                    .iter()
                    .any(|n| n.id != self.local.id && self.cluster.is_peer_alive(n.id));
                if !alive {
                    // Nobody to hand over to: nothing to wait for but our
                    // own clean-up, which need not wait for a taker either.
                    self.handing_over.clear();
                    for g in std::mem::take(&mut self.deferred_cleanups).into_keys() {
                        self.workers.submit(g, Op::CleanUp);
                    }
                }
                if self.drain_until.is_none() {
                    self.drain_until = Some(Instant::now() + self.cfg.timing.deadtime);
                }
                self.check_drained();
            }
        }
    }

    /// A takeover's first step right here (`resources::quick`): the VIP up
    /// and announced before the group's worker even wakes. Only while the
    /// worker is idle (nothing of the group's in flight to race with).
    fn quick_start(&mut self, group: GroupId) {
        let (Some(q), Some(p)) = (&self.quick, self.quick_plans.get(&group)) else {
            return;
        };
        if !self.workers.idle(group) || !self.workers.pass_traffic(group) {
            return;
        }
        let t = Instant::now();
        match q.run(p) {
            Ok(done) => info!(
                group = %self.group_name(group),
                added = done.added,
                announced = done.announced,
                took_us = t.elapsed().as_micros() as u64,
                "address up (quick step)"
            ),
            Err(e) => {
                // Its worker's start does it all; the plan is read again
                // when that finishes.
                warn!(group = %self.group_name(group), "quick takeover step failed, the full start follows: {e}");
                self.quick_plans.remove(&group);
            }
        }
    }

    /// Before exiting: runs the clean-ups still deferred and waits (at most
    /// [`FINISH_STOPS_MAX`]) for every stop to finish.
    async fn finish_stops(&mut self, done_rx: &mut mpsc::UnboundedReceiver<Done>) {
        for g in std::mem::take(&mut self.deferred_cleanups).into_keys() {
            self.workers.submit(g, Op::CleanUp);
        }
        let until = tokio::time::Instant::now() + FINISH_STOPS_MAX;
        while !self.stopping.is_empty() {
            match tokio::time::timeout_at(until, done_rx.recv()).await {
                Ok(Some(Done::StopFinished {
                    group,
                    handed_over,
                    ok,
                })) => self.stop_finished(group, handed_over, ok),
                Ok(Some(Done::Cluster(_) | Done::QuickPlan { .. })) => {}
                Ok(None) | Err(_) => {
                    warn!(groups = ?self.stopping, "exiting before these groups' resources were removed");
                    return;
                }
            }
        }
    }

    /// A group's stop is over (see `Done::StopFinished`).
    fn stop_finished(&mut self, group: GroupId, handed_over: bool, ok: bool) {
        self.stopping.remove(&group);
        if handed_over && !ok {
            self.apply(Action::Warn(Warning::CleanupFailed { group }));
        }
    }

    /// SIGTERM/SIGINT: release in order; a second one exits without waiting
    /// for the hand-over.
    fn shutdown(&mut self) {
        if self.drain_until.is_some() {
            self.exit = true;
            return;
        }
        if !self.cluster.is_shutting_down() {
            self.handing_over = self.cluster.held_groups();
        }
        self.feed(Event::Shutdown);
    }

    /// Ends the shutdown once every stop finished (a withdrawn address
    /// must be gone before the XDP program that drops its traffic is
    /// detached) and a peer serves every released group (its start
    /// finished, so it no longer needs the kernel's RTNL lock that our exit
    /// takes), or a deadtime passed without one.
    fn check_drained(&mut self) {
        let Some(until) = self.drain_until else {
            return;
        };
        if !self.stopping.is_empty() {
            return;
        }
        let served = self.served_by_peers();
        let taken = self.handing_over.iter().all(|g| served.contains(g));
        if taken || Instant::now() >= until {
            if !taken {
                warn!(
                    served = ?served,
                    "no peer confirmed serving the released groups within deadtime; stopping anyway"
                );
            }
            info!(taken_over = taken, "hand-over done; stopping");
            self.exit = true;
        }
    }

    /// Groups some live peer says it serves (its start finished), read
    /// from the kernel's map: the cluster logic takes no events after Exit.
    fn served_by_peers(&mut self) -> BTreeSet<GroupId> {
        // Read once per change: both callers ask on every loop iteration,
        // and each read is a map walk (a few syscalls per peer and link).
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

    /// Removes what is left of withdrawn groups once a peer serves them.
    fn run_deferred_cleanups(&mut self) {
        if self.deferred_cleanups.is_empty() {
            return;
        }
        let served = self.served_by_peers();
        let now = Instant::now();
        let due: Vec<GroupId> = self
            .deferred_cleanups
            .iter()
            .filter(|(g, until)| served.contains(g) || now >= **until)
            .map(|(g, _)| *g)
            .collect();
        for g in due {
            self.deferred_cleanups.remove(&g);
            self.workers.submit(g, Op::CleanUp);
        }
    }

    /// Who holds what, as far as this node knows, for `status`.
    fn track_owners(&mut self) {
        for g in &self.cluster.spec().groups.clone() {
            let owner = status::owner_of(self, g.id);
            let e = self.owners.entry(g.id).or_insert((None, Instant::now()));
            if e.0 != owner {
                *e = (owner, Instant::now());
            }
        }
    }

    fn control(&mut self, req: Request) -> Response {
        match req {
            Request::Status => Response {
                ok: true,
                message: String::new(),
                status: Some(status::report(self)),
            },
            Request::Standby { group } => self.admin(group, AdminCmd::Standby),
            Request::Takeover { group } => self.admin(group, AdminCmd::Takeover),
        }
    }

    fn admin(&mut self, group: Option<String>, cmd: fn(Option<GroupId>) -> AdminCmd) -> Response {
        let id = match &group {
            None => None,
            Some(name) => match self.cfg.groups.iter().find(|g| &g.name == name) {
                Some(g) if self.cluster.spec().group(g.id).is_some() => Some(g.id),
                Some(_) => return Response::err(format!("group {name} does not run on this node")),
                None => return Response::err(format!("no group named {name}")),
            },
        };
        let c = cmd(id);
        self.feed(Event::Admin(c));
        Response::ok(format!(
            "{} {}",
            match c {
                AdminCmd::Standby(_) => "standby:",
                AdminCmd::Takeover(_) => "takeover:",
            },
            group.unwrap_or_else(|| "all groups".into())
        ))
    }

    /// SIGHUP: apply the configuration read again (off the loop). One that
    /// failed to load leaves the running one in place. Timings and keys apply at once;
    /// changes to nodes, links or groups need a restart (said in the log).
    fn reload(&mut self, loaded: Result<Config>) {
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                error!("reload failed, the running configuration stays: {e:#}");
                return;
            }
        };
        let structural = new.nodes != self.cfg.nodes
            || new.links != self.cfg.links
            || new.groups != self.cfg.groups
            || new.cluster_id != self.cfg.cluster_id;
        if structural {
            warn!(
                "reload: nodes, links or groups changed; restart the agent to apply them (timings still apply)"
            );
        }
        // The pinger runs with what it was started with (a start-up window of
        // its own: see ping.rs); say so rather than pretend.
        if new.deadping() != self.cfg.deadping()
            || new.ping_nodes != self.cfg.ping_nodes
            || new.ping_groups != self.cfg.ping_groups
        {
            warn!("reload: ping nodes or deadping changed; restart the agent to apply them");
        }
        let mut cfg = self.cfg.clone();
        cfg.timing = new.timing;
        cfg.arp = new.arp.clone();
        cfg.warnings = new.warnings.clone();
        if let Err(e) = set_peers(&mut self.kernel, &cfg, &self.local) {
            error!("reload: updating peer timings failed: {e:#}");
            return;
        }
        self.cfg = cfg;
        info!("configuration reloaded");
    }
}

/// Where to pin (None: not at all), and, when the XDP program will not
/// outlive this process, the warning that says so: a crashed agent then
/// takes its service lease guard with it, and the node keeps answering for
/// the addresses it held, unfenced, until someone removes them.
fn pinning(opts: &RunOptions, cfg: &Config) -> (Option<PathBuf>, Option<String>) {
    use crate::kernel::loader::{PinLife, ensure_bpffs, pin_dir_for};
    const CONSEQUENCE: &str = "if this agent dies, the XDP program goes with it: \
         heartbeat detection stops and this node keeps answering for the addresses it \
         holds, unfenced";
    if !opts.pin {
        let w = format!("not pinning (--no-pin): {CONSEQUENCE}");
        warn!("{w}");
        return (None, Some(w));
    }
    let dir = opts
        .pin_dir
        .clone()
        .unwrap_or_else(|| pin_dir_for(&cfg.cluster));
    match ensure_bpffs(&dir) {
        Ok(PinLife::Outlives) => (Some(dir), None),
        Ok(PinLife::DiesWithAgent) => {
            // Not pinned at all: no later agent (a new mount namespace) could see these pins,
            // and a daemon a script leaves behind would keep this namespace, its bpffs and so
            // the old XDP links alive, so that the next agent's attach failed ("File exists").
            let w = format!(
                "not pinning: {} would be on a BPF filesystem mounted in this agent's own \
                 mount namespace (ip netns exec / unshare -m), which no later agent can see: \
                 {CONSEQUENCE}; mount one in the host's namespace (mount -t bpf bpf \
                 /run/hb/bpf) and pass --pin-dir on it",
                dir.display()
            );
            warn!("{w}");
            (None, Some(w))
        }
        Err(e) => {
            let w = format!("not pinning ({e:#}): {CONSEQUENCE}");
            warn!("{w}");
            (None, Some(w))
        }
    }
}

fn set_peers(kernel: &mut Kernel, cfg: &Config, local: &Node) -> Result<()> {
    for n in cfg.nodes.iter().filter(|n| n.id != local.id) {
        kernel
            .set_peer(
                n.id,
                PeerConfig {
                    deadtime_ns: cfg.timing.deadtime.as_nanos() as u64,
                    warntime_ns: cfg.timing.warntime.as_nanos() as u64,
                },
            )
            .with_context(|| format!("peer {}", n.name))?;
    }
    Ok(())
}
