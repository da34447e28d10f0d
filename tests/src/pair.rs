//! Two hosts on a veth pair: A sends heartbeats as PEER, B's kernel runs
//! the XDP program on its eth2. Used by the detection test and benchmark.

use std::time::Duration;

use anyhow::Result;
use hb_agent::{
    kernel::{Kernel, events::EventStream},
    sender::{DEFAULT_SPIN, LinkTarget, Sender, SenderConfig, clock},
};

use crate::kernel::{CLUSTER, KEY, PEER, PORT, configured};
use crate::netns::{Netns, heartbeat_pair};

pub struct Pair {
    // Drop order: sender and kernel before their namespaces.
    pub sender: Sender,
    pub events: EventStream,
    pub kernel: Kernel,
    pub a: Netns,
    pub b: Netns,
}

impl Pair {
    /// Needs a tokio runtime (the event stream registers with it).
    pub fn new(keepalive: Duration, deadtime: Duration, realtime: bool) -> Result<Pair> {
        Pair::with_spin(keepalive, deadtime, realtime, DEFAULT_SPIN)
    }

    /// `new`, with the sender's busy-wait before each send set.
    pub fn with_spin(
        keepalive: Duration,
        deadtime: Duration,
        realtime: bool,
        spin: Duration,
    ) -> Result<Pair> {
        let (a, b) = heartbeat_pair("p")?;
        let mut kernel = b.run(false, move || -> Result<Kernel> {
            let mut k = configured(deadtime.as_nanos() as u64, 0)?;
            k.attach("eth2")?;
            Ok(k)
        })??;
        let events = EventStream::new(kernel.take_events()?)?;
        let sender = a.run(false, move || {
            Sender::start(
                SenderConfig {
                    cluster_id: CLUSTER,
                    node_id: PEER,
                    incarnation: clock::realtime_ns(),
                    keepalive,
                    deadtime,
                    key: KEY,
                    port: PORT,
                    realtime,
                    spin,
                },
                &[LinkTarget::Bcast {
                    iface: "eth2".into(),
                }],
            )
        })??;
        Ok(Pair {
            sender,
            events,
            kernel,
            a,
            b,
        })
    }
}
