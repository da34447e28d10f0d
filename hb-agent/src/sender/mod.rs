//! The heartbeat sender: a dedicated thread that wakes on an absolute
//! CLOCK_MONOTONIC schedule, signs the current cluster state and sends it on
//! every link. It also notices when it was stalled (SIGSTOP, VM pause): a
//! wake-up later than deadtime means our peers may have declared us dead;
//! the agent learns it through `take_stall`, woken by `stall_notify`, and
//! asks them (hb-core's cluster/resume.rs).
//!
//! With every heartbeat it also renews the service lease (`lease`).

pub mod clock;
pub mod lease;
pub mod socket;
mod stats;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use hb_common::wire::{ClusterState, Heartbeat};
use tracing::{info, warn};

pub use lease::{Lease, LeaseSink};
pub use socket::{LinkSocket, LinkTarget};
pub use stats::{SendStats, StatsSnapshot};

#[derive(Clone, Debug)]
pub struct SenderConfig {
    pub cluster_id: u32,
    pub node_id: u32,
    pub incarnation: u64,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub key: (u64, u64),
    pub port: u16,
    /// Run the timing thread under SCHED_FIFO.
    pub realtime: bool,
    /// Busy-wait this long before each send ([`DEFAULT_SPIN`] unless a
    /// benchmark compares choices: `bench datapath --jitter`).
    pub spin: Duration,
}

struct Shared {
    cfg: SenderConfig,
    links: Vec<LinkSocket>,
    state: Mutex<ClusterState>,
    seq: AtomicU64,
    /// Serialises sends so sequence numbers leave in order.
    send_lock: Mutex<()>,
    paused: AtomicBool,
    stop: AtomicBool,
    last_stall_ns: AtomicU64,
    /// Wakes the agent's loop when a stall is recorded.
    stall_notify: Arc<tokio::sync::Notify>,
    /// CLOCK_MONOTONIC of the last heartbeat actually sent.
    last_sent_ns: AtomicU64,
    stats: SendStats,
    lease: Mutex<Option<Arc<Lease>>>,
}

pub struct Sender {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Sender {
    pub fn start(cfg: SenderConfig, targets: &[LinkTarget]) -> Result<Sender> {
        Self::spawn(cfg, targets, false)
    }

    /// Starts paused: nothing is sent until `pause(false)`. The agent uses
    /// it so that its first heartbeat already carries its state (an empty
    /// one would tell peers it holds nothing, and they would take over
    /// what a restarted agent is about to adopt).
    pub fn start_paused(cfg: SenderConfig, targets: &[LinkTarget]) -> Result<Sender> {
        Self::spawn(cfg, targets, true)
    }

    fn spawn(cfg: SenderConfig, targets: &[LinkTarget], paused: bool) -> Result<Sender> {
        let links = targets
            .iter()
            .map(|t| LinkSocket::open(t, cfg.port))
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            cfg,
            links,
            state: Mutex::new(ClusterState::default()),
            seq: AtomicU64::new(0),
            send_lock: Mutex::new(()),
            paused: AtomicBool::new(paused),
            stop: AtomicBool::new(false),
            last_stall_ns: AtomicU64::new(0),
            stall_notify: Arc::new(tokio::sync::Notify::new()),
            last_sent_ns: AtomicU64::new(0),
            stats: SendStats::default(),
            lease: Mutex::new(None),
        });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hb-sender".into())
            .spawn(move || run(&s2))
            .context("spawning sender thread")?;
        Ok(Sender {
            shared,
            thread: Some(thread),
        })
    }

    /// What the next heartbeats carry.
    pub fn set_state(&self, st: ClusterState) {
        *self.shared.state.lock().unwrap() = st;
    }

    /// Sends a heartbeat now (state changed) without disturbing the schedule.
    pub fn send_now(&self) {
        send_once(&self.shared, None);
    }

    /// Stops sending (tests use this to play a dead node). A pause longer
    /// than deadtime lapses the lease like any other silence.
    pub fn pause(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
    }

    /// Renew `lease` with every heartbeat from now on.
    pub fn set_lease(&self, lease: Arc<Lease>) {
        *self.shared.lease.lock().unwrap() = Some(lease);
    }

    /// Notified when the timing thread records a stall (`take_stall`).
    pub fn stall_notify(&self) -> Arc<tokio::sync::Notify> {
        self.shared.stall_notify.clone()
    }

    /// A stall longer than deadtime seen by the timing thread, in ns, once.
    pub fn take_stall(&self) -> Option<u64> {
        match self.shared.last_stall_ns.swap(0, Ordering::SeqCst) {
            0 => None,
            ns => Some(ns),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// CLOCK_MONOTONIC ns of the last heartbeat sent.
    pub fn last_sent_ns(&self) -> u64 {
        self.shared.last_sent_ns.load(Ordering::SeqCst)
    }

    pub fn seq(&self) -> u64 {
        self.shared.seq.load(Ordering::SeqCst)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The busy-wait before each send: none. Under SCHED_FIFO with a 1 ns
/// timer slack, clock_nanosleep alone wakes within the lateness target at
/// a 1 ms keepalive (`bench datapath`: the table of sender choices), and
/// spinning cost up to 100 us of CPU per heartbeat, a tenth of a core at
/// 1 ms.
pub const DEFAULT_SPIN: Duration = Duration::ZERO;

fn run(sh: &Shared) {
    // The default 50 us timer slack would be most of the jitter budget.
    // SAFETY: prctl on the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    if sh.cfg.realtime {
        match clock::make_realtime(50) {
            Ok(()) => info!("heartbeat sender runs SCHED_FIFO 50"),
            Err(e) => warn!(error = %e, "could not make the heartbeat sender real-time"),
        }
    }
    let period = sh.cfg.keepalive.as_nanos() as u64;
    let deadtime = sh.cfg.deadtime.as_nanos() as u64;
    let spin = sh.cfg.spin.as_nanos().min(period as u128 / 2) as u64;
    let mut next = clock::now_ns();
    while !sh.stop.load(Ordering::Relaxed) {
        clock::sleep_until_precise(next, spin);
        let now = clock::now_ns();
        let late = now.saturating_sub(next);
        // Silence as the peers (and the lease) measure it: since the last
        // heartbeat sent, which may be up to a keepalive before `next` (a
        // wake-up late by less than deadtime can still lapse the lease).
        // None before the first heartbeat and while deliberately paused.
        let last = sh.last_sent_ns.load(Ordering::SeqCst);
        let silent = now.saturating_sub(last);
        let stalled = last != 0 && !sh.paused.load(Ordering::Relaxed) && silent > deadtime;
        if stalled {
            // We were frozen: the peers have declared us dead and may hold
            // our groups. The agent releases them (see cluster, hang rule).
            sh.last_stall_ns.store(silent, Ordering::SeqCst);
            next = now;
        } else {
            sh.stats.record_lateness(late);
        }
        send_once(sh, Some(now));
        if stalled {
            sh.stall_notify.notify_one();
            // Logged after the heartbeat: the peers are waiting for it.
            warn!(
                stall_ms = silent as f64 / 1e6,
                "heartbeat sender was stalled longer than deadtime"
            );
        }
        next += period;
        // Never try to catch up with a burst of missed heartbeats.
        if next < now {
            next = now + period;
        }
    }
}

fn send_once(sh: &Shared, now: Option<u64>) {
    if sh.paused.load(Ordering::Relaxed) {
        return;
    }
    let state = *sh.state.lock().unwrap();
    let _g = sh.send_lock.lock().unwrap();
    if let Some(l) = sh.lease.lock().unwrap().as_ref() {
        l.renew();
    }
    let seq = sh.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let hb = Heartbeat {
        cluster_id: sh.cfg.cluster_id,
        node_id: sh.cfg.node_id,
        incarnation: sh.cfg.incarnation,
        seq,
        send_ts_ns: now.unwrap_or_else(clock::now_ns),
        keepalive_us: sh.cfg.keepalive.as_micros() as u32,
        deadtime_us: sh.cfg.deadtime.as_micros() as u32,
        state,
    };
    let pkt = hb.encode(sh.cfg.key.0, sh.cfg.key.1);
    let mut failed = 0;
    for l in &sh.links {
        failed += l.send(&pkt);
    }
    sh.last_sent_ns.store(clock::now_ns(), Ordering::SeqCst);
    sh.stats.record_send(failed);
}
