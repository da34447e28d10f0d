//! refresh_neighbours: FAILED / INCOMPLETE entries toward the gateway become
//! REACHABLE at once instead of at the kernel's next once-a-second retry.
use std::net::UdpSocket;

use super::*;
use crate::resources::netlink::NeighState;

async fn wait_state(r: &Resources, want: NeighState, within: Duration) -> Option<NeighState> {
    let link = r.netlink().link("eth0").await.unwrap();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let s = r.netlink().neighbour_state(&link, ip(GW_IP)).await.unwrap();
        if s == Some(want) || tokio::time::Instant::now() >= deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn poke_gateway() {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    let _ = s.send_to(b"x", (GW_IP, 9));
}

#[test]
fn refresh_makes_failed_and_incomplete_gateway_entries_reachable() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());

    // 1. A FAILED entry: the gateway does not answer ARP; fast failure.
    lan.gw.ip("link set eth0 arp off");
    lan.node.sysctl("net.ipv4.neigh.eth0.mcast_solicit", "1");
    lan.node.sysctl("net.ipv4.neigh.eth0.ucast_solicit", "1");
    lan.node
        .sysctl("net.ipv4.neigh.eth0.retrans_time_ms", "100");
    let c = cfg.clone();
    let failed = lan.node.block_on(false, move || async move {
        let r = resources(c);
        poke_gateway();
        wait_state(&r, NeighState::Failed, Duration::from_secs(3)).await
    });
    assert_eq!(failed, Some(NeighState::Failed));
    // Back to normal retry timing (1 s), gateway answers again.
    lan.node.sysctl("net.ipv4.neigh.eth0.mcast_solicit", "3");
    lan.node
        .sysctl("net.ipv4.neigh.eth0.retrans_time_ms", "1000");
    lan.gw.ip("link set eth0 arp on");
    let c = cfg.clone();
    let (report, after) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let report = r
            .refresh_neighbours("eth0", &[ip(GW_IP)])
            .await
            .expect("refresh");
        (
            report,
            wait_state(&r, NeighState::Reachable, Duration::from_millis(300)).await,
        )
    });
    assert_eq!(report[0].before, Some(NeighState::Failed), "{report:?}");
    assert!(report[0].refreshed);
    assert_eq!(
        after,
        Some(NeighState::Reachable),
        "FAILED -> REACHABLE right after refresh"
    );

    // 2. An INCOMPLETE entry (kernel would retry only after 1 s).
    lan.node.ip("neigh flush dev eth0");
    lan.gw.ip("link set eth0 arp off");
    let c = cfg.clone();
    let gw_name = lan.gw.name.clone();
    let (incomplete, report, after) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        poke_gateway();
        let incomplete = wait_state(&r, NeighState::Incomplete, Duration::from_millis(200)).await;
        let ok = std::process::Command::new("ip")
            .args(["-n", &gw_name, "link", "set", "eth0", "arp", "on"])
            .status()
            .unwrap();
        assert!(ok.success());
        let report = r
            .refresh_neighbours("eth0", &[ip(GW_IP)])
            .await
            .expect("refresh");
        let after = wait_state(&r, NeighState::Reachable, Duration::from_millis(300)).await;
        (incomplete, report, after)
    });
    assert_eq!(incomplete, Some(NeighState::Incomplete));
    assert_eq!(report[0].before, Some(NeighState::Incomplete), "{report:?}");
    assert_eq!(
        after,
        Some(NeighState::Reachable),
        "INCOMPLETE -> REACHABLE right after refresh"
    );

    // 3. A REACHABLE entry is left alone.
    let c = cfg.clone();
    let report = lan.node.block_on(false, move || async move {
        resources(c)
            .refresh_neighbours("eth0", &[ip(GW_IP)])
            .await
            .expect("refresh")
    });
    assert_eq!(report[0].before, Some(NeighState::Reachable));
    assert!(!report[0].refreshed);
}
