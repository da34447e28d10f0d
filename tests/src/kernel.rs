//! A loaded XDP program with a test configuration, driven through
//! BPF_PROG_TEST_RUN.

use aya::programs::{TestRun, TestRunOptions};
use hb_agent::kernel::{Kernel, events::EventStream};
use hb_common::{
    maps::{KernelConfig, PeerConfig, PeerKey, PeerStats, counter},
    wire::{ClusterState, Heartbeat},
};

pub const CLUSTER: u32 = 0x00c1_0573;
pub const PORT: u16 = 694;
pub const PEER: u32 = 0x0000_1111;
pub const KEY: (u64, u64) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
pub const DEADTIME_NS: u64 = 20_000_000;
pub const WARNTIME_NS: u64 = 10_000_000;
/// BPF_PROG_TEST_RUN runs XDP on the loopback device of the caller's netns.
pub const LO: u32 = 1;

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

pub struct TestKernel {
    pub k: Kernel,
    pub events: EventStream,
}

impl TestKernel {
    /// Loads the program and configures one known peer. Needs a tokio
    /// runtime (the event stream registers with it).
    #[allow(clippy::new_without_default)] // loads into the kernel: not a cheap default
    pub fn new() -> TestKernel {
        hb_testkit::require_root("a kernel test (BPF_PROG_TEST_RUN)");
        let mut k = configured(DEADTIME_NS, WARNTIME_NS).expect("loading the XDP program");
        let events = EventStream::new(k.take_events().unwrap()).unwrap();
        TestKernel { k, events }
    }

    pub fn run(&self, frame: &[u8]) -> u32 {
        self.run_prog("hb_xdp", frame, 1).return_value
    }

    pub fn run_prog(&self, prog: &str, frame: &[u8], repeat: u32) -> aya::programs::TestRunResult {
        let p = self.k.program(prog).unwrap();
        p.test_run(TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN")
    }

    pub fn counters(&self) -> [u64; counter::COUNT as usize] {
        self.k.counters().unwrap()
    }

    pub fn peer(&self) -> Option<PeerStats> {
        self.k
            .peer_states()
            .unwrap()
            .into_iter()
            .find(|(k, _)| {
                *k == PeerKey {
                    node_id: PEER,
                    ifindex: LO,
                }
            })
            .map(|(_, s)| s)
    }

    /// Runs the deadline decision for PEER on loopback at `now_ns`.
    pub fn probe_deadline(&self, now_ns: u64) -> u32 {
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&PEER.to_le_bytes());
        d.extend_from_slice(&LO.to_le_bytes());
        d.extend_from_slice(&now_ns.to_le_bytes());
        self.run_prog("hb_deadline_probe", &d, 1).return_value
    }
}

/// The program loaded (in the caller's network namespace) for the test
/// cluster, with PEER known at the given timings.
pub fn configured(deadtime_ns: u64, warntime_ns: u64) -> anyhow::Result<Kernel> {
    let mut k = Kernel::load(None)?;
    k.set_config(KernelConfig {
        cluster_id: CLUSTER,
        udp_port: PORT,
        flags: 0,
        k0: KEY.0,
        k1: KEY.1,
    })?;
    k.set_peer(
        PEER,
        PeerConfig {
            deadtime_ns,
            warntime_ns,
        },
    )?;
    Ok(k)
}

/// A signed heartbeat from PEER.
pub fn heartbeat(incarnation: u64, seq: u64) -> Vec<u8> {
    heartbeat_with(|_| {}, incarnation, seq)
}

pub fn heartbeat_with(f: impl FnOnce(&mut Heartbeat), incarnation: u64, seq: u64) -> Vec<u8> {
    let mut hb = Heartbeat {
        cluster_id: CLUSTER,
        node_id: PEER,
        incarnation,
        seq,
        send_ts_ns: 0,
        keepalive_us: 1000,
        deadtime_us: 20_000,
        state: ClusterState::default(),
    };
    f(&mut hb);
    hb.encode(KEY.0, KEY.1).to_vec()
}
