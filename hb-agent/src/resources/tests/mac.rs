//! MAC takeover: replace (exact restore, also across an agent restart) and macvlan.
use super::*;
use crate::resources::{MacMode, MacSpec, Outcome, ResourceError, ScriptSpec};

#[derive(Debug, PartialEq, Eq)]
struct Identity {
    mac: String,
    v4: Vec<String>,
    v6: Vec<String>,
    routes: Vec<String>,
    routes6: Vec<String>,
    up: bool,
}

fn identity(ns: &Netns) -> Identity {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    Identity {
        mac: mac_of(ns, "eth0"),
        v4: lines(ns, "-4 -o addr show dev eth0"),
        v6: lines(ns, "-6 -o addr show dev eth0 scope global"),
        // Everything but the connected route of a macvlan child of ours.
        routes: sorted(lines(ns, "-4 route show table main"))
            .into_iter()
            .filter(|l| !l.contains("dev hb-"))
            .collect(),
        routes6: sorted(lines(ns, "-6 route show table main dev eth0"))
            .into_iter()
            .filter(|l| !l.starts_with("fe80::"))
            .collect(),
        up: ns.ip("-o link show dev eth0").contains("state UP")
            || ns.ip("-o link show dev eth0").contains(",UP"),
    }
}

fn replace_spec(mac: [u8; 6], gateway: Option<&str>) -> ResourceSpec {
    ResourceSpec::Mac(MacSpec {
        iface: "eth0".into(),
        mac,
        mode: MacMode::Replace,
        addr: Some((ip("192.168.32.21"), 24)),
        gateway: gateway.map(ip),
    })
}

#[test]
fn mac_replace_restores_exactly_also_after_agent_restart() {
    let lan = Lan::new();
    // A richer real identity than the seed's: a labelled secondary, a second
    // subnet, a global IPv6 address and a static route besides the default.
    lan.node
        .ip("addr add 192.168.32.41/24 brd + dev eth0 label eth0:1");
    lan.node.ip("addr add 10.7.0.31/16 dev eth0");
    lan.node.ip("-6 addr add fd00::31/64 dev eth0 nodad");
    lan.node
        .ip("route add 10.8.0.0/16 via 192.168.32.254 metric 7");
    let before = identity(&lan.node);
    assert!(
        before
            .routes
            .iter()
            .any(|r| r.starts_with("default via 192.168.32.254 dev eth0")),
        "{before:?}"
    );
    assert_eq!(before.v4.len(), 3, "{before:?}");

    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let state_file = cfg.state_dir.join("g1.json");
    let group = vec![replace_spec(VMAC1, None)];
    let (g, c) = (group.clone(), cfg.clone());
    let (first, again, conflict) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let first = r.start_group("g1", &g).await.expect("start");
        let again = r.start_group("g1", &g).await.expect("start again");
        let other = vec![replace_spec(VMAC2, None)];
        let conflict = r.start_group("g2", &other).await.unwrap_err();
        (first, again, conflict)
    });
    assert_eq!(first.resources[0].outcome, Outcome::Changed);
    assert_eq!(again.resources[0].outcome, Outcome::Unchanged, "idempotent");
    match &conflict {
        ResourceError::Start { source, .. } => {
            assert!(
                matches!(**source, ResourceError::Conflict { .. }),
                "{conflict}"
            )
        }
        e => panic!("expected a conflict, got {e}"),
    }

    let held = identity(&lan.node);
    assert_eq!(held.mac, "00:1e:68:1e:99:5e");
    assert_eq!(held.v4.len(), 1, "only the VIP: {held:?}");
    assert!(
        held.v4[0].ends_with("eth0 inet 192.168.32.21/24 brd 192.168.32.255 scope global eth0"),
        "{held:?}"
    );
    assert!(held.v6.is_empty(), "{held:?}");
    assert!(
        held.routes
            .iter()
            .any(|r| r.starts_with("default via 192.168.32.254 dev eth0")),
        "previous gateway reused: {held:?}"
    );
    // The path through the gateway works from the VIP with the VMAC.
    lan.node
        .exec(&["ping", "-c", "1", "-W", "2", "-I", "192.168.32.21", GW_IP])
        .expect("the gateway answers the VIP");
    let gw_neigh = lan.gw.ip("neigh show 192.168.32.21");
    assert!(
        gw_neigh.contains("00:1e:68:1e:99:5e"),
        "gateway learnt the VMAC: {gw_neigh}"
    );
    let saved = std::fs::read_to_string(&state_file).expect("state file written");
    let real: Vec<u64> = before
        .mac
        .split(':')
        .map(|h| u64::from_str_radix(h, 16).unwrap())
        .collect();
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let saved_mac: Vec<u64> = saved["mac"][0]["real_mac"]
        .as_array()
        .expect("real_mac saved")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        saved_mac, real,
        "the real MAC read from the interface is saved"
    );

    // Agent restart: a new Resources reads the state file, adopts, releases.
    let (g, c) = (group.clone(), cfg.clone());
    let (status, stop) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let status = r.status_group("g1", &g).await;
        let stop = r.stop_group("g1", &g).await;
        (status, stop)
    });
    assert!(status.all_in_place(), "adoptable after restart: {status:?}");
    assert!(stop.is_clean(), "{stop:?}");
    let after = identity(&lan.node);
    assert_eq!(after, before, "exact restore");
    assert!(!state_file.exists(), "state file removed after release");
    // And the real address works again.
    lan.node
        .exec(&["ping", "-c", "1", "-W", "2", "-I", NODE_IP, GW_IP])
        .expect("the gateway answers the real address");
}

#[test]
fn mac_replace_with_explicit_gateway_and_rollback_on_unreachable_gateway() {
    let lan = Lan::new();
    let before = identity(&lan.node);
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    // 10.1.1.1 is not reachable from 192.168.32.21/24: the route add fails,
    // and the rollback must restore the real identity.
    let bad = vec![replace_spec(VMAC1, Some("10.1.1.1"))];
    let good = vec![replace_spec(VMAC1, Some(GW_IP))];
    let (g1, g2, c) = (bad.clone(), good.clone(), cfg.clone());
    let err = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let err = r.start_group("g1", &g1).await.unwrap_err();
        r.start_group("g1", &g2)
            .await
            .expect("start with reachable gateway");
        err
    });
    assert!(err.to_string().contains("10.1.1.1"), "{err}");
    let held = identity(&lan.node);
    assert_eq!(held.mac, "00:1e:68:1e:99:5e");
    assert!(
        held.routes
            .iter()
            .any(|r| r.starts_with("default via 192.168.32.254 dev eth0")),
        "{held:?}"
    );
    let (g, c) = (good.clone(), cfg.clone());
    let stop = lan.node.block_on(false, move || async move {
        resources(c).stop_group("g1", &g).await
    });
    assert!(stop.is_clean(), "{stop:?}");
    assert_eq!(identity(&lan.node), before);
}

/// vip2 is on `web`'s child, with the subnet's broadcast.
fn assert_vip2_on_web_child(node: &Netns) {
    let addrs = lines(node, "-4 -o addr show dev hb-web");
    assert!(
        addrs
            .iter()
            .any(|l| l.contains("inet 192.168.32.22/24 brd 192.168.32.255")),
        "{addrs:?}"
    );
}

/// Group `web`: vip2 with VMAC2 on a macvlan child of eth0.
fn web_macvlan() -> Vec<ResourceSpec> {
    vec![ResourceSpec::Mac(MacSpec {
        iface: "eth0".into(),
        mac: VMAC2,
        mode: MacMode::Macvlan { child: None },
        addr: Some((ip("192.168.32.22"), 24)),
        gateway: None,
    })]
}

#[test]
fn macvlan_child_carries_vmac_and_vip_parent_untouched() {
    let lan = Lan::new();
    let before = identity(&lan.node);
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let group = web_macvlan();
    let (g, c) = (group.clone(), cfg.clone());
    let (start, again, status) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let s = r.start_group("web", &g).await.expect("start");
        let a = r.start_group("web", &g).await.expect("start again");
        let st = r.status_group("web", &g).await;
        (s, a, st)
    });
    assert_eq!(start.resources[0].outcome, Outcome::Changed);
    assert_eq!(again.resources[0].outcome, Outcome::Unchanged);
    assert!(status.all_in_place(), "{status:?}");
    let child = lan.node.ip("-d -o link show dev hb-web");
    assert!(child.contains("hb-web@eth0"), "{child}");
    assert!(child.contains("macvlan mode bridge"), "{child}");
    assert!(child.contains("link/ether 00:1e:68:1e:88:5e"), "{child}");
    assert!(
        child.contains("state UP") || child.contains(",UP"),
        "{child}"
    );
    assert_vip2_on_web_child(&lan.node);
    assert_eq!(identity(&lan.node), before, "parent untouched");

    let (g, c) = (group.clone(), cfg.clone());
    let (stop, status) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        let s = r.stop_group("web", &g).await;
        (s, r.status_group("web", &g).await)
    });
    assert!(stop.is_clean(), "{stop:?}");
    assert!(status.none_in_place(), "{status:?}");
    // Parked: still there for the next takeover, addressless and silent
    // (IPv4 VIP: kept up with IPv6 disabled, so it sends nothing).
    assert!(lines(&lan.node, "-o addr show dev hb-web").is_empty());
    let v6 = lan
        .node
        .exec(&["cat", "/proc/sys/net/ipv6/conf/hb-web/disable_ipv6"])
        .unwrap();
    assert_eq!(
        v6.trim(),
        "1",
        "a parked IPv4 child must not send IPv6 link-local traffic"
    );
    assert_eq!(identity(&lan.node), before);
    // And a takeover brings it back.
    let (g, c) = (group.clone(), cfg.clone());
    let status = lan.node.block_on(false, move || async move {
        let r = resources(c);
        r.start_group("web", &g).await.expect("start parked");
        r.status_group("web", &g).await
    });
    assert!(status.all_in_place(), "{status:?}");
}

#[test]
fn quick_step_puts_the_vip_up_as_the_full_start_would() {
    use crate::resources::quick::QuickStarter;
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let group = web_macvlan();
    let cap = Capture::start(&lan.gw, "eth0");
    let (g, c) = (group.clone(), cfg.clone());
    let (unprepared, with_script, first, again) = lan.node.block_on(false, move || async move {
        let r = resources(c);
        // No child yet: nothing to plan.
        let unprepared = r.quick_plan("web", &g).await.expect("plan");
        let mut scripted = g.clone();
        scripted.push(ResourceSpec::Script(ScriptSpec {
            name: "httpd".into(),
            args: vec![],
            kind: crate::resources::ScriptKind::Heartbeat,
            params: Default::default(),
            timeout: Duration::from_secs(10),
        }));
        r.prepare_group(&g, "web").await.expect("prepare");
        let with_script = r.quick_plan("web", &scripted).await.expect("plan");
        let plan = r
            .quick_plan("web", &g)
            .await
            .expect("plan")
            .expect("a plan");
        let q = QuickStarter::open(&quick_arp(), None).expect("sockets");
        (unprepared, with_script, q.run(&plan), q.run(&plan))
    });
    let frames = cap.finish(Duration::from_millis(100));
    assert_eq!(unprepared, None);
    assert_eq!(
        with_script, None,
        "groups with scripts start in order, on their worker"
    );
    let done = |added| {
        Ok(crate::resources::quick::Done {
            added,
            announced: true,
        })
    };
    assert_eq!(first, done(true), "added");
    assert_eq!(again, done(false), "already there");
    assert_vip2_on_web_child(&lan.node);
    let garps = frames
        .iter()
        .filter_map(|f| parse_arp(f))
        .filter(|a| a.spa == [192, 168, 32, 22] && a.tpa == [192, 168, 32, 22])
        .filter(|a| a.sha == VMAC2 && a.eth_src == VMAC2 && a.op == 1)
        .count();
    assert_eq!(garps, 2, "one gratuitous ARP per quick step");
    // The full start finds what the quick step put up: nothing to change.
    let start = lan.node.block_on(false, move || async move {
        resources(cfg)
            .start_group("web", &group)
            .await
            .expect("start")
    });
    assert_eq!(start.resources[0].outcome, Outcome::Unchanged, "{start:?}");
}
