//! Two hosts on a veth pair: A heartbeats B; B's kernel reports A dead after
//! A stops, and alive again when A resumes. Real XDP on a real veth, real
//! UDP, the real bpf_timer.

use std::time::Duration;

use hb_agent::{
    kernel::{Kernel, KernelEventKind, events::EventStream},
    sender::{LinkTarget, Sender, SenderConfig, clock},
};
use hb_common::maps::{KernelConfig, PeerConfig, STATUS_ALIVE, STATUS_DEAD};
use hb_tests::netns::{Netns, veth};

const CLUSTER: u32 = 42;
const NODE_A: u32 = 0xa;
const KEY: (u64, u64) = (11, 22);

async fn wait_for(
    events: &mut EventStream,
    want: KernelEventKind,
) -> hb_agent::kernel::KernelEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            for e in events.next_batch().await.unwrap() {
                if e.kind == want && e.node_id == NODE_A {
                    return e;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {want:?} event within 10 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_reports_peer_dead_and_back() {
    let a = Netns::new("a").unwrap();
    let b = Netns::new("b").unwrap();
    veth(
        &a,
        "eth2",
        Some("10.160.100.30/24"),
        &b,
        "eth2",
        Some("10.160.100.31/24"),
    )
    .unwrap();

    let deadtime = Duration::from_millis(50);
    let kernel = b
        .run(move || {
            let mut k = Kernel::load(None).unwrap();
            k.set_config(KernelConfig {
                cluster_id: CLUSTER,
                udp_port: 694,
                flags: 0,
                k0: KEY.0,
                k1: KEY.1,
            })
            .unwrap();
            k.set_peer(
                NODE_A,
                PeerConfig {
                    deadtime_ns: deadtime.as_nanos() as u64,
                    warntime_ns: 0,
                },
            )
            .unwrap();
            let att = k.attach("eth2").unwrap();
            assert_eq!(att.mode, "native", "veth supports native XDP");
            k
        })
        .unwrap();
    let mut kernel = kernel;
    let mut events = EventStream::new(kernel.take_events().unwrap()).unwrap();

    let sender = a
        .run(move || {
            Sender::start(
                SenderConfig {
                    cluster_id: CLUSTER,
                    node_id: NODE_A,
                    incarnation: clock::realtime_ns(),
                    keepalive: Duration::from_millis(5),
                    deadtime,
                    key: KEY,
                    port: 694,
                    realtime: false,
                },
                &[LinkTarget::Bcast {
                    iface: "eth2".into(),
                }],
            )
            .unwrap()
        })
        .unwrap();

    let first = wait_for(&mut events, KernelEventKind::FirstHeard).await;
    assert_eq!(first.ifindex, kernel.attachments()[0].ifindex);

    sender.pause(true);
    let stopped = clock::now_ns();
    let dead = wait_for(&mut events, KernelEventKind::Dead).await;
    assert!(dead.ts_ns - dead.last_seen_ns >= deadtime.as_nanos() as u64);
    assert!(dead.ts_ns > stopped);
    let st = kernel.peer_states().unwrap();
    assert_eq!(st[0].1.status, STATUS_DEAD);

    sender.pause(false);
    wait_for(&mut events, KernelEventKind::AliveAgain).await;
    let st = kernel.peer_states().unwrap();
    assert_eq!(st[0].1.status, STATUS_ALIVE);
    assert!(st[0].1.received >= 2);
    assert_eq!(st[0].1.deaths, 1);
    let c = kernel.counters().unwrap();
    assert_eq!(c[hb_common::maps::counter::BAD_TAG as usize], 0);
    drop(sender);
    drop(kernel);
}
