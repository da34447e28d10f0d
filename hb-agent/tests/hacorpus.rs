//! Every case of the Heartbeat corpus (`../shared/hacorpus/`, 41 real ha.d
//! directories from public repositories) loads, or is refused for the reason
//! Heartbeat refused it, and is read as Heartbeat read it. Each case is
//! loaded from a copy (authkeys made mode 600: the corpus files are 444),
//! with an executable stub for every resource.d script it names that is not
//! there (a host with Heartbeat's resource.d and the services installed, as
//! run.sh's host mode), as a host that is neither node and has no address of
//! the corpus (so the reading does not depend on the machine running this),
//! unless a case says otherwise. The expectations were written after reading
//! each case; none is tuned away.
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hb_agent::config::host::{FakeHost, HostAddr};
use hb_agent::config::{Config, Diag, Found, LinkKind, Severity, check, load_ha_dir_on, plan};
use hb_agent::resources::spec::{IpSpec, ResourceSpec, ScriptKind, ScriptSpec};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/hacorpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "SKIPPED: the Heartbeat corpus is not at {} (the shared/hacorpus directory beside \
             the checkout); nothing was tested",
            dir.display()
        );
        None
    }
}

enum Want {
    Loads,
    /// Refused with exactly one error containing this text.
    Refused(&'static str),
}
use Want::*;

const PACEMAKER: &str = "this is a Pacemaker (CRM) cluster";
const NOT_A_NODE: &str = "is not a node declared in ha.cf";

/// Per case, after reading it.
const CASES: &[(&str, Want)] = &[
    ("01-EPNMiguel-Distribuidas", Loads),
    // haresources names `lisa`, not a node: Heartbeat's parse_ha_resources()
    // refused it too ("Bad nodename").
    ("02-bwahn-heartbeat-vagrant", Refused(NOT_A_NODE)),
    ("03-slpcat-freebsd_config", Loads),
    ("04-easytzb-ops-notes", Loads),
    ("05-7layer-org-7layer.org-r1", Loads),
    // `crm yes`, no haresources, no node lines (autojoin any).
    ("06-7layer-org-7layer.org-crm", Refused(PACEMAKER)),
    ("07-toreatessier-ansible-role-load_balancer", Loads),
    ("08-KingKami-virtu_linux", Loads),
    ("09-chenzhiwei-linux", Loads),
    ("10-gslin-coscup2015-mysql-hands-on", Loads),
    ("11-ivpusic-server_configs", Loads),
    ("12-ljproyectoasir-LB04", Loads),
    ("13-shotai-consulExample", Loads),
    // `crm respawn`, no haresources (and a ucast to a host name).
    ("14-auditt7708-Pacemaker_resource", Refused(PACEMAKER)),
    ("15-maxencecolmant-asterrisk-project", Loads),
    // `undport 694`: Heartbeat refused the unknown directive ("Illegal
    // directive"; `logfacility local10` is invalid too).
    (
        "15b-maxencecolmant-asterrisk-project-7aad602",
        Refused("unknown directive `undport` (did you mean `udpport`?)"),
    ),
    // haresources names `web2`, not a node (nodes node1, node2).
    ("16-srajasimman-linux_apache_ha", Refused(NOT_A_NODE)),
    ("17-Amara-K-administration-linux", Loads),
    ("18-ryanaudiencepi-heartbeat_template", Loads),
    ("19-raspberry1123-HA-Setting", Refused(PACEMAKER)),
    ("20-pulecp-vagrant-pacemaker", Refused(PACEMAKER)),
    ("21-AngelFreak-ansible-role-heartbeat", Loads),
    ("22-adacostaesiee-Ansible", Loads),
    ("23-jphetphoumy-Ansible-role-heartbeat", Loads),
    ("24-madudka-ansible-role-haproxy-heartbeat", Loads),
    ("25-thinkmassive-ansible-haproxy", Loads),
    ("26-softecspa-puppet-heartbeat", Loads),
    ("27-dcsobral-puppet-heartbeat", Loads),
    ("28-chinatree-sources_install", Loads),
    ("29-andrewbx-config", Loads),
    ("30-axbat952-projet-ansible", Loads),
    ("31-compuppetspec-heartbeat", Loads),
    ("32-allanhung-ansible_roles", Loads),
    ("33-LINBIT-linbit-documentation", Loads),
    ("34-linux-ha.org-GettingStarted-OneIPAddress", Loads),
    ("35-wilas-heartbeat-cluster", Loads),
    ("36-Cloudxtreme-LEMP", Loads),
    ("37-Sapna-20-high-availability-nginx-flask", Loads),
    ("38-iamii-MySSH", Loads),
    ("39-unknown-lvs-ldirectord-script", Loads),
    ("40-unknown-w101-nfs-drbd-notes", Loads),
];

/// A copy of a case's ha.d: writable, authkeys mode 600.
fn copy_case(corpus: &Path, case: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("ha.d");
    copy_dir(&corpus.join(case).join("ha.d"), &dir);
    if dir.join("authkeys").exists() {
        fs::set_permissions(dir.join("authkeys"), fs::Permissions::from_mode(0o600)).unwrap();
    }
    (tmp, dir)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// Stubs for the Heartbeat scripts the configuration names and the
/// directory lacks, as run.sh's host mode.
fn stub_scripts(cfg: &Config, dir: &Path) {
    for g in &cfg.groups {
        for r in &g.resources {
            let ResourceSpec::Script(ScriptSpec {
                name,
                kind: ScriptKind::Heartbeat,
                ..
            }) = r
            else {
                continue;
            };
            if cfg.script_dirs.iter().any(|d| d.join(name).exists()) {
                continue;
            }
            let path = dir.join("resource.d").join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

fn load(corpus: &Path, case: &str, host: &FakeHost) -> Result<Config, Vec<Diag>> {
    let (_tmp, dir) = copy_case(corpus, case);
    let cfg = load_ha_dir_on(&dir, host)?;
    stub_scripts(&cfg, &dir);
    let errors: Vec<String> = check(&cfg)
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{case}: check with stubs: {errors:#?}");
    Ok(cfg)
}

fn nowhere() -> FakeHost {
    FakeHost::default()
}

fn on(iface: &str, addr: &str, prefix: u8) -> FakeHost {
    FakeHost {
        names: vec![],
        addrs: vec![HostAddr {
            iface: iface.into(),
            addr: addr.parse().unwrap(),
            prefix,
        }],
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn every_case_loads_or_is_refused_as_by_heartbeat() {
    let Some(corpus) = corpus() else { return };
    let mut listed: Vec<String> = fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("ha.d").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let named: Vec<&str> = CASES.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        listed, named,
        "the corpus and this table list the same cases"
    );
    let (mut loads, mut refused) = (0, 0);
    for (case, want) in CASES {
        let got = load(&corpus, case, &nowhere());
        match (want, got) {
            (Loads, Ok(_)) => loads += 1,
            (Loads, Err(d)) => panic!("{case} should load: {d:#?}"),
            (Refused(why), Err(d)) => {
                let errors: Vec<String> = d
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(|d| d.to_string())
                    .collect();
                assert_eq!(errors.len(), 1, "{case}: {errors:#?}");
                assert!(errors[0].contains(why), "{case}: {errors:#?}");
                refused += 1;
            }
            (Refused(why), Ok(_)) => panic!("{case} should be refused ({why})"),
        }
    }
    println!("corpus: {loads} load, {refused} refused");
    assert_eq!((loads, refused), (34, 7));
}

fn ip_resource(
    cfg: &Config,
    group: usize,
    index: usize,
) -> (IpAddr, u8, Option<String>, Option<String>, Option<String>) {
    match &cfg.groups[group].resources[index] {
        ResourceSpec::IpAddr(IpSpec {
            addr,
            prefix,
            iface,
            broadcast,
            label,
            ..
        }) => (
            *addr,
            *prefix,
            iface.clone(),
            broadcast.map(|b| b.to_string()),
            label.clone(),
        ),
        other => panic!("not an IP resource: {other:?}"),
    }
}

fn warned(cfg: &Config, line: usize, text: &str) -> bool {
    cfg.warnings
        .iter()
        .any(|w| w.line == Some(line) && w.message.contains(text))
}

#[test]
fn readings_follow_heartbeat() {
    let Some(c) = corpus() else { return };
    let c = c.as_path();

    // 12: an empty field between slashes: prefix 8 on eth0, label eth0:10.
    let cfg = load(c, "12-ljproyectoasir-LB04", &nowhere()).unwrap();
    assert_eq!(
        ip_resource(&cfg, 0, 0),
        (
            ip("10.0.30.15"),
            8,
            Some("eth0".into()),
            None,
            Some("eth0:10".into())
        )
    );

    // 13: a dotted netmask.
    let cfg = load(c, "13-shotai-consulExample", &nowhere()).unwrap();
    assert_eq!(ip_resource(&cfg, 0, 0).1, 24);
    assert_eq!(cfg.groups[0].found[&0].prefix, Found::Written);

    // 09 and 26: IP/PREFIX/IFACE/BROADCAST.
    let cfg = load(c, "09-chenzhiwei-linux", &nowhere()).unwrap();
    assert_eq!(
        ip_resource(&cfg, 0, 0),
        (
            ip("202.102.154.41"),
            24,
            Some("eth0".into()),
            Some("202.102.154.255".into()),
            None
        )
    );
    let cfg = load(c, "26-softecspa-puppet-heartbeat", &nowhere()).unwrap();
    assert_eq!(ip_resource(&cfg, 0, 0).3.as_deref(), Some("192.168.1.255"));

    // 15: no netmask; on the node, eth1 is a /28: the VIP gets /28 from the
    // connected route, as Heartbeat's findif; elsewhere /24 with a warning.
    let case = "15-maxencecolmant-asterrisk-project";
    let cfg = load(c, case, &on("eth1", "172.20.10.2", 28)).unwrap();
    assert_eq!(ip_resource(&cfg, 0, 0).1, 28);
    assert_eq!(
        cfg.groups[0].found[&0].prefix,
        Found::Route {
            iface: "eth1".into(),
            prefix: 28
        }
    );
    let cfg = load(c, case, &nowhere()).unwrap();
    assert_eq!(ip_resource(&cfg, 0, 0).1, 24);
    assert_eq!(cfg.groups[0].found[&0].prefix, Found::NotFound);
    // Either way each start looks at the routes again (ipaddr::start).
    assert!(matches!(
        cfg.groups[0].resources[0],
        ResourceSpec::IpAddr(IpSpec {
            route_prefix: true,
            ..
        })
    ));
    assert!(warned(&cfg, 1, "no netmask written"));

    // 21 and 24: bcast, mcast, ucast and `udp` (= bcast again) on one
    // interface: three media, the repeat deduplicated with a note.
    for case in [
        "21-AngelFreak-ansible-role-heartbeat",
        "24-madudka-ansible-role-haproxy-heartbeat",
    ] {
        let cfg = load(c, case, &nowhere()).unwrap();
        assert_eq!(cfg.links.len(), 3, "{case}");
        assert!(warned(&cfg, 7, "hb runs it once"), "{case}");
        assert!(cfg.links.iter().all(|l| l.port == 694), "{case}");
    }
    // 24 lists vm-lb-1's own address in ucast: on vm-lb-1 it is skipped.
    let cfg = load(
        c,
        "24-madudka-ansible-role-haproxy-heartbeat",
        &on("enp0s3", "192.168.0.111", 24),
    )
    .unwrap();
    assert_eq!(cfg.links[2].kind, LinkKind::Ucast { peers: vec![] });
    assert!(warned(&cfg, 6, "this host's own address"));

    // 23 and 25: `auth1`, read as `auth 1`.
    for case in [
        "23-jphetphoumy-Ansible-role-heartbeat",
        "25-thinkmassive-ansible-haproxy",
    ] {
        let cfg = load(c, case, &nowhere()).unwrap();
        assert!(cfg.auth.authenticated, "{case}");
        assert!(warned(&cfg, 1, "read as `auth 1`"), "{case}");
    }
    // 23: ucast lines for both nodes; on node1 its own address is skipped.
    let cfg = load(
        c,
        "23-jphetphoumy-Ansible-role-heartbeat",
        &on("eth0", "192.168.56.11", 24),
    )
    .unwrap();
    assert_eq!(
        cfg.links[0].kind,
        LinkKind::Ucast {
            peers: vec![ip("192.168.56.12")]
        }
    );

    // 11: udpport 696 comes after `bcast eth0`: Heartbeat's bcast used 694.
    let cfg = load(c, "11-ivpusic-server_configs", &nowhere()).unwrap();
    assert_eq!((cfg.links[0].port, cfg.udp_port), (694, 694));
    assert!(
        cfg.warnings
            .iter()
            .any(|w| w.message.contains("udpport 696 comes after"))
    );

    // Failback: unset = on (Heartbeat's default, legacy, failed back);
    // 05 writes `auto_failback on` then `nice_failback on` (= off);
    // 34 writes `auto_failback no`.
    let cfg = load(c, "01-EPNMiguel-Distribuidas", &nowhere()).unwrap();
    assert!(cfg.auto_failback);
    assert!(
        !load(c, "05-7layer-org-7layer.org-r1", &nowhere())
            .unwrap()
            .auto_failback
    );
    assert!(
        !load(c, "34-linux-ha.org-GettingStarted-OneIPAddress", &nowhere())
            .unwrap()
            .auto_failback
    );

    // initdead unset: Heartbeat's rule.
    // 01: deadtime 5 (< 6 s) -> 12 s; 21: deadtime 10 -> 20 s; 23: deadtime
    // unset (30 s, > 10 s) -> 30 s.
    assert_eq!(cfg.timing.initdead, secs(12));
    let cfg = load(c, "21-AngelFreak-ansible-role-heartbeat", &nowhere()).unwrap();
    assert_eq!(cfg.timing.initdead, secs(20));
    let cfg = load(c, "23-jphetphoumy-Ansible-role-heartbeat", &nowhere()).unwrap();
    assert_eq!(cfg.timing.initdead, secs(30));

    // 08, 22, 38: ping nodes without ipfail/pingd were watched only by
    // Heartbeat: they move no groups here either (and do not hold back a
    // two-node standby's takeover). The seed-like cases with pingd do.
    for case in [
        "08-KingKami-virtu_linux",
        "22-adacostaesiee-Ansible",
        "38-iamii-MySSH",
    ] {
        let cfg = load(c, case, &nowhere()).unwrap();
        assert!(!cfg.ping_nodes.is_empty(), "{case} has ping nodes");
        assert!(!cfg.ping_moves_groups, "{case}: watched only");
    }

    // 29: two lines for lin-node-01, the address first, then drbddisk and
    // the services that bind to it: groups keep the written order, which
    // is the order they start in (one at a time), and the plan says so.
    // With ipfail and a ping node, the two-node quorum is hb's tie-break.
    let cfg = load(c, "29-andrewbx-config", &nowhere()).unwrap();
    let names: Vec<&str> = cfg.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["172.16.1.200", "drbddisk"]);
    let akas: Vec<Option<&str>> = cfg.groups.iter().map(|g| g.aka.as_deref()).collect();
    assert_eq!(
        akas,
        [
            Some("IPaddr::172.16.1.200/24/eth0:1"),
            Some("drbddisk::lin-mirror")
        ]
    );
    let p = plan(&cfg, "lin-node-01");
    assert!(
        p.render()
            .contains("starts its groups one at a time in this order")
    );
    assert!(
        p.groups[0]
            .quorum
            .starts_with("the other candidate alive, or a ping target")
    );
    // 38: three candidates: a majority, down to the last man standing.
    let cfg = load(c, "38-iamii-MySSH", &nowhere()).unwrap();
    let q = &plan(&cfg, "test1").groups[0].quorum;
    assert!(
        q.starts_with("a strict majority of the 3 candidates"),
        "{q}"
    );
    assert!(q.contains("last man standing"), "{q}");
    // 10: two nodes, no ping nodes: no quorum needed, as Heartbeat.
    let cfg = load(c, "10-gslin-coscup2015-mysql-hands-on", &nowhere()).unwrap();
    let q = &plan(&cfg, &cfg.nodes[0].name).groups[0].quorum;
    assert!(q.starts_with("none: a candidate takes the group"), "{q}");

    // 40: serial and baud ignored; the plan says one medium is left.
    let cfg = load(c, "40-unknown-w101-nfs-drbd-notes", &nowhere()).unwrap();
    let p = plan(&cfg, "w101");
    assert!(p.is_a_node);
    let serial = p.ignored.iter().find(|i| i.directive == "serial").unwrap();
    assert!(
        serial.what.ends_with("1 heartbeat medium left: eth0"),
        "{}",
        serial.what
    );
}

#[test]
fn check_prints_a_plan_for_every_loading_case() {
    let Some(c) = corpus() else { return };
    for (case, want) in CASES {
        if !matches!(want, Loads) {
            continue;
        }
        let cfg = load(&c, case, &nowhere()).unwrap();
        let first = cfg.nodes[0].name.clone();
        let p = plan(&cfg, &first);
        let text = p.render();
        assert!(
            text.starts_with(&format!("plan for node {first}\n")),
            "{case}:\n{text}"
        );
        assert!(text.contains("heartbeat media:\n  "), "{case}:\n{text}");
        for g in &cfg.groups {
            assert!(
                text.contains(&g.name),
                "{case}: group {} missing:\n{text}",
                g.name
            );
            if let Some(aka) = &g.aka {
                assert!(text.contains(aka.as_str()), "{case}: {aka} missing");
            }
            // Short, and unique by either name: `standby NAME` says which.
            assert!(g.name.len() <= 40 || g.aka.is_none(), "{case}: {}", g.name);
            let clashes = cfg
                .groups
                .iter()
                .filter(|o| {
                    o.answers_to(&g.name) || g.aka.as_deref().is_some_and(|a| o.answers_to(a))
                })
                .count();
            assert_eq!(clashes, 1, "{case}: {} names two groups", g.name);
        }
        serde_json::to_string(&p).unwrap();
    }
}
