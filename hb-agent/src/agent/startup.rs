//! The agent's wiring, as named steps: read the configuration, load the
//! kernel side, install the service-lease guard, start resources and
//! workers, survey the groups already held, start sender, pinger and
//! control socket, and bootstrap the core from what the kernel knows. Each
//! step is a function of its own; [`assemble`] runs them in order.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use hb_common::maps::{KernelConfig, PeerConfig};
use hb_common::siphash::key_words;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::executor::Exec;
use super::groups::{Done, GroupNames, GroupWorkers, ResourceThread};
use super::{RunOptions, epochs::Epochs, lease, withdraw::Withdrawal};
use crate::cluster::{Cluster, ClusterSpec, Event, GroupId};
use crate::config::{self, Config, LinkKind, Node, Severity};
use crate::control::server;
use crate::kernel::{Kernel, events::EventStream};
use crate::ping::{Pinger, Target};
use crate::resources::{
    AnnounceGate, Resources, ResourcesConfig,
    quick::{self, QuickStarter},
};
use crate::rules::{AgentCore, Now, cluster_spec, convert};
use crate::sender::{LinkTarget, Sender, SenderConfig, clock, lease::Lease};

/// Everything the event loop runs with.
pub struct Parts {
    pub core: AgentCore,
    pub exec: Exec,
    pub events: EventStream,
    pub lease: Option<Arc<Lease>>,
    pub done_rx: mpsc::UnboundedReceiver<Done>,
    /// Health check results (health/).
    pub check_rx: mpsc::UnboundedReceiver<crate::health::Report>,
    pub checks: crate::health::Checks,
    /// For the checks restarted by a reload.
    pub resources: Arc<crate::resources::Resources>,
    pub ping_rx: watch::Receiver<Option<u8>>,
    pub ctl_rx: mpsc::Receiver<server::Incoming>,
    pub scrape_rx: mpsc::Receiver<crate::metrics::ScrapeReply>,
    /// Removes the control socket when dropped.
    pub _socket_guard: server::SocketGuard,
    /// Runs the workers; they stop when it is dropped.
    pub _resource_thread: ResourceThread,
}

/// The time, read once for one input.
pub fn now() -> Now {
    Now {
        at: Instant::now(),
        ns: clock::now_ns(),
    }
}

pub async fn assemble(opts: &RunOptions) -> Result<Parts> {
    let (cfg, local) = read_config(opts)?;
    let port = cfg.links.first().map(|l| l.port).unwrap_or(cfg.udp_port);
    let (pin_dir, unguarded) = pinning(opts, &cfg);
    // Kernel side first: we must hear peers before we say anything.
    let (mut kernel, mut events) = load_kernel(&cfg, &local, port, pin_dir.as_deref())?;
    let lease = open_lease(&kernel, &cfg)?;
    let (guarded, lease_lapsed) = (lease.is_some(), lease.as_ref().is_some_and(|l| l.on_hold()));
    let (state_dir, epochs) = load_state(opts, &cfg, &local);
    let gate = lease
        .clone()
        .map(|l| AnnounceGate(Arc::new(move || l.running())));
    let (resource_thread, resources) = start_resources(&cfg, &state_dir, gate.clone())?;
    let mut spec = cluster_spec(&cfg, &local);
    // The stall rule waits behind the lease only if there is one.
    spec.leased = guarded;
    spec.validate()
        .map_err(|e| anyhow!("cluster configuration: {e}"))?;
    let ours: Vec<&config::Group> = cfg
        .groups
        .iter()
        .filter(|g| spec.groups.iter().any(|s| s.id == g.id))
        .collect();
    let withdrawal = match guarded {
        true => Some(install_guard(&mut kernel, &ours, &resources).await?),
        false => None,
    };
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let workers = spawn_workers(
        &cfg,
        &ours,
        &resource_thread,
        &resources,
        withdrawal,
        &done_tx,
    );
    let (check_tx, check_rx) = mpsc::unbounded_channel();
    let checks =
        crate::health::Checks::start(group_checks(&cfg, &local.name), resources.clone(), check_tx)?;
    let (adopt, quick_plans) = survey_groups(&ours, &resources).await;
    let quick = open_quick(&cfg, gate);
    let sender = start_sender(&cfg, &local, port, lease.as_ref())?;
    let ping_rx = start_pinger(&cfg)?;
    let (socket_guard, ctl_rx, scrape_rx, socket) = serve_control(opts, &cfg).await?;

    let now = now();
    let cluster = new_cluster(spec, &epochs, &cfg, now);
    let fencing = cfg.fencing.clone();
    let mut core = AgentCore::new(cfg, local, cluster, now);
    core.quick_plans = quick_plans;
    let mut exec = Exec {
        kernel,
        sender,
        workers,
        quick,
        epochs,
        fencing,
        lease: lease.clone(),
        done_tx,
        served_cache: None,
        batch: Vec::new(),
    };
    let start = Start {
        adopt,
        lease_lapsed,
        pinned: pin_dir.is_some(),
        unguarded,
        socket,
    };
    bootstrap(&mut core, &mut exec, &mut events, start)?;
    Ok(Parts {
        core,
        exec,
        events,
        lease,
        done_rx,
        check_rx,
        checks,
        resources,
        ping_rx,
        ctl_rx,
        scrape_rx,
        _socket_guard: socket_guard,
        _resource_thread: resource_thread,
    })
}

/// Where resources keep what they restore, and the epochs taken here.
fn load_state(opts: &RunOptions, cfg: &Config, local: &Node) -> (PathBuf, Epochs) {
    let state_dir = opts.state_dir.clone().unwrap_or_else(|| {
        PathBuf::from("/run/hb").join(format!("{}-{}", cfg.cluster, local.name))
    });
    let (epochs, problem) = Epochs::load(&state_dir);
    if let Some(p) = problem {
        warn!("epoch record unreadable, starting from what peers say: {p}");
    }
    (state_dir, epochs)
}

/// The quick takeover step's sockets (without them, full starts only).
fn open_quick(cfg: &Config, gate: Option<AnnounceGate>) -> Option<QuickStarter> {
    match QuickStarter::open(&cfg.arp, gate) {
        Ok(q) => Some(q),
        Err(e) => {
            warn!(error = %e, "no quick takeover step (sockets)");
            None
        }
    }
}

/// The service lease (see sender::lease). Alone in a cluster there is
/// nobody to hand over to, so no lease.
fn open_lease(kernel: &Kernel, cfg: &Config) -> Result<Option<Arc<Lease>>> {
    match cfg.service_lease && cfg.nodes.len() > 1 {
        true => Ok(Some(lease::open(kernel, cfg.timing.deadtime)?)),
        false => Ok(None),
    }
}

/// The cluster logic, knowing the epochs taken here before a restart.
fn new_cluster(spec: ClusterSpec, epochs: &Epochs, cfg: &Config, now: Now) -> Cluster {
    let mut cluster = Cluster::new(spec, now.ns);
    for (key, epoch) in epochs.iter() {
        if let Some(g) = cfg.groups.iter().find(|g| g.key() == key) {
            cluster.remember_epoch(g.id, epoch);
        }
    }
    cluster
}

/// The configuration, refused with every error it has.
pub fn load_config(src: &config::Source) -> Result<Config> {
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

/// The configuration and this node in it; its warnings and the reading
/// (what `check` would print) logged once.
fn read_config(opts: &RunOptions) -> Result<(Config, Node)> {
    let cfg = load_config(&opts.source)?;
    let node_name = opts.node.clone().unwrap_or_else(super::hostname);
    let local = cfg
        .local_node(&node_name)
        .map_err(|d| anyhow!("{d} (give --node NAME if the hostname differs)"))?
        .clone();
    for w in &cfg.warnings {
        warn!("config: {w}");
    }
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
    Ok((cfg, local))
}

/// The XDP program loaded, configured with the cluster's key and peers,
/// and attached to every heartbeat interface; its event stream.
fn load_kernel(
    cfg: &Config,
    local: &Node,
    port: u16,
    pin_dir: Option<&std::path::Path>,
) -> Result<(Kernel, EventStream)> {
    let (k0, k1) = key_words(&cfg.auth.key);
    let mut kernel = Kernel::load(pin_dir).map_err(|e| match pin_dir {
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
    set_peers(&mut kernel, cfg, local)?;
    let mut ifaces: Vec<&str> = cfg.links.iter().map(|l| l.iface.as_str()).collect();
    ifaces.dedup();
    for i in ifaces {
        kernel.attach(i)?;
    }
    let events = EventStream::new(kernel.take_events()?)?;
    Ok((kernel, events))
}

/// Resource operations (and their rtnetlink connection) run on a thread
/// of their own: see groups.rs.
fn start_resources(
    cfg: &Config,
    state_dir: &std::path::Path,
    gate: Option<AnnounceGate>,
) -> Result<(ResourceThread, Arc<Resources>)> {
    let thread = ResourceThread::start()?;
    let resources = {
        let _in = thread.handle().enter();
        Resources::new(ResourcesConfig {
            groups: cfg
                .groups
                .iter()
                .map(|g| (g.key().to_string(), g.resources.clone()))
                .collect(),
            arp: cfg.arp.clone(),
            script_dirs: cfg.script_dirs.clone(),
            state_dir: state_dir.to_path_buf(),
            announce_gate: gate,
            ..Default::default()
        })
        .map_err(|e| anyhow!("resources: {e}"))?
    };
    Ok((thread, Arc::new(resources)))
}

/// The service lease's guard on the interfaces this node's groups use,
/// and the withdrawal it makes possible (release by withdrawing).
async fn install_guard(
    kernel: &mut Kernel,
    ours: &[&config::Group],
    resources: &Resources,
) -> Result<Arc<Withdrawal>> {
    let fenced = lease::fence(kernel, ours, resources).await?;
    Ok(Arc::new(Withdrawal::new(
        fenced.guard,
        fenced.on_their_interface,
        kernel.withdrawn_writer()?,
    )?))
}

/// The checks of this node's groups (those it is a candidate of).
pub fn group_checks(cfg: &Config, local: &str) -> Vec<crate::health::GroupChecks> {
    cfg.groups
        .iter()
        .filter(|g| g.nodes.iter().any(|n| n == local))
        .map(|g| crate::health::GroupChecks {
            id: g.id,
            name: g.name.clone(),
            key: g.key().to_string(),
            checks: g.checks.clone(),
            resources: g.resources.clone(),
        })
        .collect()
}

/// One worker per group of this node's, in written order.
fn spawn_workers(
    cfg: &Config,
    ours: &[&config::Group],
    thread: &ResourceThread,
    resources: &Arc<Resources>,
    withdrawal: Option<Arc<Withdrawal>>,
    done_tx: &mpsc::UnboundedSender<Done>,
) -> GroupWorkers {
    // After a takeover the path to these is refreshed (see groups.rs).
    let mut neighbours: Vec<IpAddr> = cfg.ping_nodes.clone();
    neighbours.extend(cfg.ping_groups.iter().flat_map(|g| g.addrs.clone()));
    for gw in cfg.groups.iter().flat_map(|g| g.facts().gateways()) {
        if !neighbours.contains(&gw) {
            neighbours.push(gw);
        }
    }
    GroupWorkers::spawn(
        thread.handle(),
        resources.clone(),
        ours.iter()
            .map(|g| GroupNames {
                id: g.id,
                name: g.name.clone(),
                key: g.key().to_string(),
                specs: g.resources.clone(),
            })
            .collect(),
        neighbours,
        withdrawal,
        done_tx.clone(),
    )
}

/// Groups whose resources are already in place: an agent restarted while
/// holding them adopts them without an outage. The others get what can be
/// made ready in advance (parked macvlan children). With each group's
/// quick takeover plan.
async fn survey_groups(
    ours: &[&config::Group],
    resources: &Resources,
) -> (Vec<GroupId>, BTreeMap<GroupId, quick::Plan>) {
    let mut adopt = Vec::new();
    let mut plans = BTreeMap::new();
    for g in ours {
        let status = resources.status_group(g.key(), &g.resources).await;
        if status.identity_left(&g.resources) {
            // Half a group is no group to adopt, and its address (fenced
            // by the lapsed lease) would stay up beside the real owner's.
            // Its scripts are left alone: their state is theirs to tell.
            warn!(group = %g.name, "a previous agent left part of the group in place: removing it");
            let identity: Vec<_> = g
                .resources
                .iter()
                .filter(|s| s.is_network_identity())
                .cloned()
                .collect();
            let r = resources.stop_group(g.key(), &identity).await;
            for (what, e) in &r.failures {
                warn!(group = %g.name, resource = %what, error = %e, "could not remove a leftover");
            }
        }
        let status = resources.status_group(g.key(), &g.resources).await;
        if !status.all_in_place()
            && let Err(e) = resources.prepare_group(&g.resources, g.key()).await
        {
            warn!(group = %g.name, error = %e, "could not prepare the group's interfaces in advance");
        }
        let status = resources.status_group(g.key(), &g.resources).await;
        if status.all_in_place() {
            info!(group = %g.name, "resources already in place: adopting the group");
            adopt.push(g.id);
        }
        match resources.quick_plan(g.key(), &g.resources).await {
            Ok(Some(p)) => {
                plans.insert(g.id, p);
            }
            Ok(None) => {}
            Err(e) => warn!(group = %g.name, error = %e, "no quick takeover step for the group"),
        }
    }
    (adopt, plans)
}

/// The heartbeat sender's thread, paused until the state is known.
fn start_sender(
    cfg: &Config,
    local: &Node,
    port: u16,
    lease: Option<&Arc<Lease>>,
) -> Result<Sender> {
    let sender = Sender::start_paused(
        SenderConfig {
            cluster_id: cfg.cluster_id,
            node_id: local.id,
            incarnation: clock::realtime_ns(),
            keepalive: cfg.timing.keepalive,
            deadtime: cfg.timing.deadtime,
            key: key_words(&cfg.auth.key),
            port,
            realtime: cfg.realtime,
            spin: crate::sender::DEFAULT_SPIN,
        },
        &link_targets(cfg, local),
    )?;
    if let Some(l) = lease {
        sender.set_lease(l.clone());
    }
    Ok(sender)
}

/// The ping nodes' prober (none configured: a channel that never speaks).
fn start_pinger(cfg: &Config) -> Result<watch::Receiver<Option<u8>>> {
    let (ping_tx, ping_rx) = watch::channel(None);
    let targets = ping_targets(cfg)?;
    if !targets.is_empty() {
        // Four probes per deadping: one lost ping must not count as lost
        // connectivity.
        let deadping = cfg.deadping();
        let interval = (deadping / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        let pinger = Pinger::new(targets, interval, deadping);
        tokio::spawn(async move {
            if let Err(e) = pinger.run(ping_tx).await {
                error!("ping nodes: {e:#}");
            }
        });
    }
    Ok(ping_rx)
}

type Control = (
    server::SocketGuard,
    mpsc::Receiver<server::Incoming>,
    mpsc::Receiver<crate::metrics::ScrapeReply>,
    PathBuf,
);

/// The control socket, and the metrics endpoint when configured.
async fn serve_control(opts: &RunOptions, cfg: &Config) -> Result<Control> {
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| cfg.control_socket.clone());
    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    let guard = server::serve(&socket, ctl_tx)?;
    let (scrape_tx, scrape_rx) = mpsc::channel::<crate::metrics::ScrapeReply>(4);
    if let Some(addr) = cfg.metrics_addr {
        let srv = crate::metrics::MetricsServer::bind(addr, scrape_tx)
            .await
            .with_context(|| format!("metrics endpoint {addr}"))?;
        info!(addr = %srv.local_addr()?, "Prometheus metrics at /metrics");
        tokio::spawn(srv.run());
    }
    Ok((guard, ctl_rx, scrape_rx, socket))
}

/// What the bootstrap starts from.
struct Start {
    adopt: Vec<GroupId>,
    /// The previous agent's service lease lapsed while it was away.
    lease_lapsed: bool,
    pinned: bool,
    /// Why the XDP program will not outlive this agent, if it will not.
    unguarded: Option<String>,
    socket: PathBuf,
}

/// The first state: adopted groups, the kernel's view of peers; only then
/// the first heartbeat (claiming nothing would invite a takeover), and
/// systemd told we are ready.
fn bootstrap(
    core: &mut AgentCore,
    exec: &mut Exec,
    events: &mut EventStream,
    start: Start,
) -> Result<()> {
    info!(
        node = %core.local.name,
        cluster = %core.cfg.cluster,
        keepalive_ms = core.cfg.timing.keepalive.as_secs_f64() * 1e3,
        deadtime_ms = core.cfg.timing.deadtime.as_secs_f64() * 1e3,
        socket = %start.socket.display(),
        "agent started"
    );
    let now = now();
    core.feed_at_start(Event::Start, now, exec);
    let adopting = !start.adopt.is_empty();
    for g in start.adopt {
        core.feed_at_start(Event::AdoptHeld { group: g }, now, exec);
    }
    if start.lease_lapsed && adopting {
        // The previous agent died holding these and stayed away past its
        // lease: peers may own them now. Same as a hang.
        warn!("the previous agent's service lease lapsed: releasing adopted groups");
        let ns = core.cfg.timing.deadtime.as_nanos() as u64 * 2;
        core.feed_at_start(Event::Stalled { ns }, now, exec);
    }
    // With pinned maps the kernel may already know peers alive (it kept
    // running while no agent was here) and will not say "first heard"
    // again: start from its current view, not from old queued events.
    let stale = events.try_drain().len();
    let mut known = 0;
    for (key, st) in exec.kernel.peer_states()? {
        if st.status == hb_common::maps::STATUS_ALIVE {
            known += 1;
            let (node, link) = (key.node_id, key.ifindex);
            core.feed_at_start(Event::LinkUp { node, link }, now, exec);
            let advert = convert::wire_to_advert(&st.state);
            core.feed_at_start(Event::PeerAdvert { node, advert }, now, exec);
        }
    }
    if known > 0 || stale > 0 {
        info!(
            alive_links = known,
            stale_events = stale,
            "{}",
            if start.pinned {
                "took over the kernel's view from pinned maps"
            } else {
                "started from the kernel's view of peers heard while loading"
            }
        );
    }
    if let Some(why) = start.unguarded {
        core.note_warning(why);
    }
    exec.sender
        .set_state(convert::advert_to_wire(&core.cluster.advert()));
    exec.sender.pause(false);
    exec.sender.send_now();
    super::notify::ready(&format!(
        "attached to {} link(s); node {}",
        exec.kernel.attachments().len(),
        core.local.name
    ));
    Ok(())
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

/// The kernel's per-peer timings (at start and on reload).
pub fn set_peers(kernel: &mut Kernel, cfg: &Config, local: &Node) -> Result<()> {
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
