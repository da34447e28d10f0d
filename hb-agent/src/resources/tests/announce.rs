//! Announcements captured on the wire in the peer namespace.
use super::*;
use crate::resources::{AnnounceTarget, MacMode, MacSpec};

fn vip_arps(frames: &[Vec<u8>], vip: [u8; 4]) -> Vec<Arp> {
    frames
        .iter()
        .filter_map(|f| parse_arp(f))
        .filter(|a| a.spa == vip && a.tpa == vip)
        .collect()
}

#[test]
fn garp_request_form_for_every_address_with_the_virtual_mac() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let group = vec![
        ResourceSpec::Mac(MacSpec {
            iface: "eth0".into(),
            mac: VMAC1,
            mode: MacMode::Replace,
            addr: Some((ip("192.168.32.21"), 24)),
            gateway: None,
        }),
        ip_spec("192.168.32.22", 24, Some("eth0")),
    ];
    let cap = Capture::start(&lan.gw, "eth0");
    let g = group.clone();
    let report = lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        let report = r.start_group("g1", &g).await.expect("start");
        // Announcements run in the background: 3 x 50 ms.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(r.stop_group("g1", &g).await.is_clean());
        report
    });
    let frames = cap.finish(Duration::from_millis(100));
    assert_eq!(report.announced.len(), 2, "{report:?}");
    for vip in [[192, 168, 32, 21], [192, 168, 32, 22]] {
        let arps = vip_arps(&frames, vip);
        let garps: Vec<&Arp> = arps.iter().filter(|a| a.sha == VMAC1).collect();
        assert_eq!(
            garps.len(),
            3,
            "3 GARPs for {vip:?} from the VMAC: {arps:#?}"
        );
        for a in garps {
            assert_eq!(a.op, 1, "request form");
            assert_eq!(a.eth_dst, [0xff; 6]);
            assert_eq!(a.eth_src, VMAC1);
            assert_eq!(a.tha, [0xff; 6]);
        }
    }
}

#[test]
fn garp_reply_form() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(
        &st,
        ArpSettings {
            count: 2,
            reply_form: true,
            ..quick_arp()
        },
    );
    let node_mac = mac_of(&lan.node, "eth0");
    let cap = Capture::start(&lan.gw, "eth0");
    let out = lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        r.announce_now(&[AnnounceTarget {
            iface: "eth0".into(),
            addr: ip(NODE_IP),
        }])
        .await
    });
    let frames = cap.finish(Duration::from_millis(100));
    assert_eq!(
        (out.sent, out.suppressed, out.errors.len()),
        (2, 0, 0),
        "{out:?}"
    );
    let arps = vip_arps(&frames, [192, 168, 32, 31]);
    assert_eq!(arps.len(), 2, "{arps:#?}");
    for a in &arps {
        assert_eq!(a.op, 2, "reply form");
        let sha = a
            .sha
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(sha, node_mac, "source MAC is the interface's current MAC");
        assert_eq!(a.tha, a.sha);
        assert_eq!(a.eth_dst, [0xff; 6]);
    }
}

#[test]
fn unsolicited_na_for_ipv6_vip() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(
        &st,
        ArpSettings {
            count: 2,
            na_router_flag: true,
            ..quick_arp()
        },
    );
    let group = vec![ResourceSpec::Mac(MacSpec {
        iface: "eth0".into(),
        mac: VMAC2,
        mode: MacMode::Macvlan { child: None },
        addr: Some((ip("fd00::21"), 64)),
        gateway: None,
    })];
    let cap = Capture::start(&lan.gw, "eth0");
    let g = group.clone();
    lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        r.start_group("v6", &g).await.expect("start");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(r.stop_group("v6", &g).await.is_clean());
    });
    let frames = cap.finish(Duration::from_millis(100));
    let target: std::net::Ipv6Addr = "fd00::21".parse().unwrap();
    let nas: Vec<Na> = frames
        .iter()
        .filter_map(|f| parse_na(f))
        .filter(|n| n.target == target && !n.solicited)
        .collect();
    assert_eq!(nas.len(), 2, "{nas:#?}");
    for n in &nas {
        assert!(n.checksum_ok, "checksum: {n:?}");
        assert!(n.router && n.override_ && !n.solicited, "{n:?}");
        assert_eq!(n.hop_limit, 255);
        assert_eq!(n.dst, "ff02::1".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(n.eth_dst, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(n.eth_src, VMAC2, "sent from the macvlan child's VMAC");
        assert_eq!(n.tlla, Some(VMAC2));
        assert_eq!(n.src, target);
    }
}

#[test]
fn rate_limit_holds_when_asked_100_times() {
    let lan = Lan::new();
    let st = tempdir();
    let arp = ArpSettings {
        count: 3,
        interval: Duration::from_millis(100),
        ..quick_arp()
    };
    let cfg = config(&st, arp);
    let cap = Capture::start(&lan.gw, "eth0");
    let (burst, later) = lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        let t = [AnnounceTarget {
            iface: "eth0".into(),
            addr: ip(NODE_IP),
        }];
        let outs = futures::future::join_all((0..100).map(|_| r.announce_now(&t))).await;
        let sent: usize = outs.iter().map(|o| o.sent).sum();
        let suppressed: usize = outs.iter().map(|o| o.suppressed).sum();
        // Once the window (max(count*interval, 1 s)) has passed, it may speak again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let later = r.announce_now(&t).await;
        ((sent, suppressed), later.sent)
    });
    let frames = cap.finish(Duration::from_millis(100));
    assert_eq!(
        burst,
        (3, 297),
        "100 asks, at most count packets per window"
    );
    assert_eq!(later, 3);
    assert_eq!(vip_arps(&frames, [192, 168, 32, 31]).len(), 6);
}

#[test]
fn held_addresses_are_re_announced_periodically_until_release() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(
        &st,
        ArpSettings {
            count: 1,
            interval: Duration::from_millis(10),
            refresh: Some(Duration::from_millis(1200)),
            ..quick_arp()
        },
    );
    let group = vec![ip_spec("192.168.32.21", 24, Some("eth0"))];
    let cap = Capture::start(&lan.gw, "eth0");
    let g = group.clone();
    lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        r.start_group("g1", &g).await.expect("start");
        // Initial announcement + refreshes at ~1.2 s and ~2.4 s.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert!(r.stop_group("g1", &g).await.is_clean());
        // Nothing more once released.
        tokio::time::sleep(Duration::from_millis(1300)).await;
    });
    let frames = cap.finish(Duration::from_millis(50));
    let n = vip_arps(&frames, [192, 168, 32, 21]).len();
    assert_eq!(n, 3, "1 initial + 2 refreshes, none after release");
}
