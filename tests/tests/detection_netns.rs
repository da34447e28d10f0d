//! Two hosts on a veth pair: A heartbeats B; B's kernel reports A dead after
//! A stops, and alive again when A resumes. Real XDP on a real veth, real
//! UDP, the real bpf_timer.

use std::time::Duration;

use hb_agent::{
    kernel::{KernelEventKind, events::EventStream},
    sender::clock,
};
use hb_common::maps::{STATUS_ALIVE, STATUS_DEAD};
use hb_tests::{kernel::PEER, pair::Pair};

const NODE_A: u32 = PEER;

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
    let deadtime = Duration::from_millis(50);
    let mut p = Pair::new(Duration::from_millis(5), deadtime, false).unwrap();
    assert_eq!(
        p.kernel.attachments()[0].mode,
        "native",
        "veth supports native XDP"
    );

    let first = wait_for(&mut p.events, KernelEventKind::FirstHeard).await;
    assert_eq!(first.ifindex, p.kernel.attachments()[0].ifindex);

    p.sender.pause(true);
    let stopped = clock::now_ns();
    let dead = wait_for(&mut p.events, KernelEventKind::Dead).await;
    assert!(dead.ts_ns - dead.last_seen_ns >= deadtime.as_nanos() as u64);
    assert!(dead.ts_ns > stopped);
    let st = p.kernel.peer_states().unwrap();
    assert_eq!(st[0].1.status, STATUS_DEAD);

    p.sender.pause(false);
    wait_for(&mut p.events, KernelEventKind::AliveAgain).await;
    let st = p.kernel.peer_states().unwrap();
    assert_eq!(st[0].1.status, STATUS_ALIVE);
    assert!(st[0].1.received >= 2);
    assert_eq!(st[0].1.deaths, 1);
    let c = p.kernel.counters().unwrap();
    assert_eq!(c[hb_common::maps::counter::BAD_TAG as usize], 0);
}
