//! IpAddr: prefix, broadcast, label; auto interface; idempotence; absent stop.
use super::*;
use crate::resources::{HostnameSpec, IpSpec, MacSpec, Outcome, ResourceError, ResourceState};

#[test]
fn ip_add_remove_with_prefix_broadcast_label() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let v4 = ResourceSpec::IpAddr(IpSpec {
        addr: ip("192.168.32.21"),
        prefix: 24,
        route_prefix: false,
        iface: Some("eth0".into()),
        broadcast: Some("192.168.32.255".parse().unwrap()),
        label: Some("vip".into()),
    });
    // No interface given: eth0 carries 192.168.32.0/24. Custom broadcast.
    let auto = ResourceSpec::IpAddr(IpSpec {
        addr: ip("192.168.32.22"),
        prefix: 25,
        route_prefix: false,
        iface: None,
        broadcast: Some("192.168.32.100".parse().unwrap()),
        label: Some("eth0:web".into()),
    });
    let v6 = ip_spec("fd00::21", 64, Some("eth0"));
    let specs = vec![v4, auto, v6];
    let s2 = specs.clone();
    let cfg2 = cfg.clone();
    let report = lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        let first = r.start_group("g", &s2).await.expect("start");
        let again = r.start_group("g", &s2).await.expect("start again");
        let status = r.status_group("g", &s2).await;
        (first, again, status)
    });
    let (first, again, status) = report;
    assert!(
        first
            .resources
            .iter()
            .all(|o| o.outcome == Outcome::Changed),
        "{first:?}"
    );
    assert!(
        again
            .resources
            .iter()
            .all(|o| o.outcome == Outcome::Unchanged),
        "idempotent: {again:?}"
    );
    assert!(status.all_in_place(), "{status:?}");

    let v4_lines = lines(&lan.node, "-4 -o addr show dev eth0");
    assert!(
        v4_lines.iter().any(|l| l
            .contains("inet 192.168.32.21/24 brd 192.168.32.255 scope global secondary eth0:vip")),
        "{v4_lines:#?}"
    );
    assert!(
        v4_lines.iter().any(|l| l
            .contains("inet 192.168.32.22/25 brd 192.168.32.100 scope global")
            && l.contains("eth0:web")),
        "{v4_lines:#?}"
    );
    let v6_lines = lines(&lan.node, "-6 -o addr show dev eth0 scope global");
    assert!(
        v6_lines
            .iter()
            .any(|l| l.contains("inet6 fd00::21/64") && l.contains("nodad")),
        "{v6_lines:#?}"
    );
    // Exactly one copy of each address.
    assert_eq!(
        v4_lines
            .iter()
            .filter(|l| l.contains("192.168.32.21/"))
            .count(),
        1
    );

    let s3 = specs.clone();
    let (stop1, stop2, status) = lan.node.block_on(false, move || async move {
        let r = resources(cfg2);
        let a = r.stop_group("g", &s3).await;
        let b = r.stop_group("g", &s3).await;
        let s = r.status_group("g", &s3).await;
        (a, b, s)
    });
    assert!(stop1.is_clean(), "{stop1:?}");
    assert!(
        stop1
            .resources
            .iter()
            .all(|o| o.outcome == Outcome::Changed),
        "{stop1:?}"
    );
    assert!(stop2.is_clean(), "stopping what is absent is Ok: {stop2:?}");
    assert!(
        stop2
            .resources
            .iter()
            .all(|o| o.outcome == Outcome::Unchanged),
        "{stop2:?}"
    );
    assert!(status.none_in_place(), "{status:?}");
    let v4_lines = lines(&lan.node, "-4 -o addr show dev eth0");
    assert_eq!(
        v4_lines.len(),
        1,
        "only the node's own address is left: {v4_lines:#?}"
    );
    assert!(v4_lines[0].contains("inet 192.168.32.31/24"));
    assert!(lines(&lan.node, "-6 -o addr show dev eth0 scope global").is_empty());
    assert_eq!(status.resources[0].1, ResourceState::Absent);
}

#[test]
fn ip_without_matching_subnet_fails_clearly() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let cfg2 = cfg.clone();
    let err = lan.node.block_on(false, move || async move {
        let r = resources(cfg);
        r.start_group("g", &[ip_spec("10.99.0.1", 24, None)])
            .await
            .unwrap_err()
    });
    match &err {
        ResourceError::Start {
            source, index: 0, ..
        } => {
            assert!(
                matches!(**source, ResourceError::NoInterfaceFor(_)),
                "{err}"
            )
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("10.99.0.1"), "{err}");
    let err = lan.node.block_on(false, move || async move {
        let r = resources(cfg2);
        r.start_group("g", &[ip_spec("10.99.0.1", 24, Some("nope0"))])
            .await
            .unwrap_err()
    });
    assert!(err.to_string().contains("nope0"), "{err}");
}

#[test]
fn quick_step_for_an_ipaddr_on_a_named_interface() {
    use crate::resources::quick::QuickStarter;
    use crate::resources::{MacMode, quick};
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let vip = ResourceSpec::IpAddr(IpSpec {
        addr: ip("192.168.32.21"),
        prefix: 24,
        route_prefix: false,
        iface: Some("eth0".into()),
        broadcast: None,
        label: Some("vip".into()),
    });
    let group = vec![
        vip.clone(),
        ResourceSpec::Hostname(HostnameSpec { name: "web".into() }),
    ];
    let eth0_mac = mac_of(&lan.node, "eth0");
    let cap = Capture::start(&lan.gw, "eth0");
    let (g, c) = (group.clone(), cfg.clone());
    let (replacing, unnamed, first) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        // A MAC replaced later would make the first announcement wrong.
        let replacing = vec![
            vip,
            ResourceSpec::Mac(MacSpec {
                iface: "eth0".into(),
                mac: VMAC1,
                mode: MacMode::Replace,
                addr: None,
                gateway: None,
            }),
        ];
        let replacing = r.quick_plan("g", &replacing).await.expect("plan");
        // The interface is found by subnet at start: not planned.
        let unnamed = r
            .quick_plan("g", &[ip_spec("192.168.32.21", 24, None)])
            .await
            .expect("plan");
        let plan = r.quick_plan("g", &g).await.expect("plan").expect("a plan");
        let q = QuickStarter::open(&quick_arp(), None).expect("sockets");
        (replacing, unnamed, q.run(&plan))
    });
    let frames = cap.finish(Duration::from_millis(100));
    assert_eq!(replacing, None);
    assert_eq!(unnamed, None);
    assert_eq!(
        first,
        Ok(quick::Done {
            added: true,
            announced: true
        })
    );
    let addrs = lines(&lan.node, "-4 -o addr show dev eth0");
    assert!(
        addrs
            .iter()
            .any(|l| l.contains("inet 192.168.32.21/24 brd 192.168.32.255")
                && l.contains("eth0:vip")),
        "{addrs:?}"
    );
    let garps: Vec<[u8; 6]> = frames
        .iter()
        .filter_map(|f| parse_arp(f))
        .filter(|a| a.spa == [192, 168, 32, 21] && a.tpa == [192, 168, 32, 21])
        .map(|a| a.sha)
        .collect();
    assert_eq!(garps.len(), 1, "{garps:?}");
    assert_eq!(
        crate::resources::netlink::fmt_mac(&garps[0]),
        eth0_mac,
        "announced with eth0's own MAC"
    );
    // The full start finds it in place.
    let start = lan.node.block_on(true, move || async move {
        resources(cfg)
            .start_group("g", &group)
            .await
            .expect("start")
    });
    assert_eq!(start.resources[0].outcome, Outcome::Unchanged, "{start:?}");
}

/// No netmask written: each start takes the prefix of the connected route
/// it finds then (Heartbeat's findif), not the one found when the agent
/// read its configuration; stop removes the address whatever its prefix.
#[test]
fn ip_without_written_prefix_takes_the_route_s_at_each_start() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let spec = |iface: Option<&str>| {
        ResourceSpec::IpAddr(IpSpec {
            addr: ip("192.168.32.21"),
            prefix: 24,
            route_prefix: true,
            iface: iface.map(str::to_string),
            broadcast: None,
            label: None,
        })
    };
    let with_iface = vec![spec(Some("eth0"))];
    let auto = vec![spec(None)];
    let vip_lines = |ns: &Netns| -> Vec<String> {
        lines(ns, "-4 -o addr show dev eth0")
            .into_iter()
            .filter(|l| l.contains("192.168.32.21/"))
            .collect()
    };
    // The host's subnet is a /24 when the group first starts...
    let (g, c) = (with_iface.clone(), cfg.clone());
    let status = lan.node.block_on(false, move || async move {
        let r = resources(c);
        r.start_group("g", &g).await.expect("start");
        r.status_group("g", &g).await
    });
    assert!(status.all_in_place(), "{status:?}");
    let first = vip_lines(&lan.node);
    assert!(
        first.len() == 1 && first[0].contains("192.168.32.21/24 brd 192.168.32.255"),
        "{first:#?}"
    );
    // ... and a /28 by its next start (renumbered while the agent ran):
    // stop takes the /24 away, the start puts up a /28.
    lan.node.ip("addr del 192.168.32.31/24 dev eth0");
    lan.node.ip("addr add 192.168.32.17/28 brd + dev eth0");
    let (g, c) = (auto.clone(), cfg.clone());
    let (stopped, status) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let stopped = r.stop_group("g", &g).await;
        r.start_group("g", &g).await.expect("start");
        (stopped, r.status_group("g", &g).await)
    });
    assert!(stopped.is_clean(), "{stopped:?}");
    assert!(status.all_in_place(), "{status:?}");
    let second = vip_lines(&lan.node);
    assert!(
        second.len() == 1 && second[0].contains("192.168.32.21/28 brd 192.168.32.31"),
        "{second:#?}"
    );
    // With no connected route left, the written fallback (/24).
    lan.node.ip("addr del 192.168.32.17/28 dev eth0");
    let (g, c) = (with_iface, cfg);
    lan.node.block_on(false, move || async move {
        let r = resources(c);
        assert!(r.stop_group("g", &g).await.is_clean());
        r.start_group("g", &g).await.expect("start");
    });
    let third = vip_lines(&lan.node);
    assert!(
        third.len() == 1 && third[0].contains("192.168.32.21/24"),
        "{third:#?}"
    );
}
