//! Tests over the fixtures (`fixtures/` beside Cargo.toml): the tutorial's
//! files as printed, their smallest loadable repair, and example.toml.
use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::*;
use crate::model::{HostnameSpec, IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
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
        }
    }
}

/// A private copy of fixtures/<set>/<node> with authkeys at mode 600 and the
/// scripts executable (git checkouts may carry 644 for both).
pub(crate) fn ha_dir(set: &str, node: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join(node);
    copy_dir(&fixtures().join(set).join(node), &dir);
    chmod(&dir.join("authkeys"), 0o600);
    for script in fs::read_dir(dir.join("resource.d")).unwrap() {
        chmod(&script.unwrap().path(), 0o755);
    }
    (tmp, dir)
}

fn load_seed(node: &str) -> Config {
    let (_tmp, dir) = ha_dir("seed-fixed", node);
    load_ha_dir(&dir).unwrap_or_else(|d| panic!("{node}: {d:#?}"))
}

fn names(cfg: &Config) -> Vec<&str> {
    cfg.nodes.iter().map(|n| n.name.as_str()).collect()
}

fn script(name: &str) -> ResourceSpec {
    ResourceSpec::Script(ScriptSpec {
        name: name.into(),
        args: vec![],
        kind: ScriptKind::Heartbeat,
        params: BTreeMap::new(),
        timeout: secs(20),
    })
}

fn group_summary(cfg: &Config) -> Vec<(&str, Vec<&str>, &[ResourceSpec])> {
    cfg.groups
        .iter()
        .map(|g| {
            let nodes = g.nodes.iter().map(String::as_str).collect();
            (g.name.as_str(), nodes, g.resources.as_slice())
        })
        .collect()
}

fn errors(diags: &[Diag]) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect()
}

fn file_name(d: &Diag) -> &str {
    d.file.file_name().unwrap().to_str().unwrap()
}

// ------------------------------------------------------------ the seed

#[test]
fn seed_common_settings() {
    for node in ["node0", "node1", "node2"] {
        let cfg = load_seed(node);
        assert_eq!(cfg.cluster, "heartbeat", "{node}");
        assert_eq!(cfg.cluster_id, fnv1a32("heartbeat"));
        assert!(cfg.ping_moves_groups, "{node}: pingd is respawned");
        assert_eq!(cfg.udp_port, 694);
        assert_eq!(
            cfg.timing,
            Timing {
                keepalive: secs(2),
                deadtime: secs(60),
                warntime: secs(20),
                initdead: secs(240)
            }
        );
        assert_eq!(
            cfg.links,
            [Link {
                name: "eth2".into(),
                iface: "eth2".into(),
                kind: LinkKind::Bcast,
                port: 694
            }]
        );
        assert!(cfg.auto_failback);
        assert_eq!(cfg.ping_nodes, [ip("192.168.32.254")]);
        assert_eq!(cfg.auth, Auth::crc());
        assert!(!cfg.auth.authenticated);
        assert!(cfg.fencing.is_none());
        assert!(cfg.realtime, "Heartbeat ran realtime by default");
        assert_eq!(cfg.arp, ArpSettings::default());
        assert_eq!(cfg.control_socket, PathBuf::from("/run/hb/heartbeat.sock"));
        assert_eq!(cfg.script_dirs[1], PathBuf::from("/etc/init.d"));
        assert!(cfg.script_dirs[0].ends_with(format!("{node}/resource.d")));
        assert_eq!(cfg.source.len(), 3);
        for n in &cfg.nodes {
            assert_eq!(n.id, fnv1a32(&n.name));
            assert!(n.addrs.is_empty());
        }
        let crc = cfg
            .warnings
            .iter()
            .find(|w| w.message == "heartbeats are NOT authenticated (authkeys uses crc)")
            .unwrap_or_else(|| panic!("{node}: no crc warning"));
        assert_eq!((file_name(crc), crc.line), ("authkeys", Some(2)));
    }
}

#[test]
fn seed_node_order_and_groups() {
    let cfg = load_seed("node1");
    assert_eq!(names(&cfg), ["node0", "node2", "node1"]);
    assert_eq!(
        group_summary(&cfg),
        [
            (
                "Remac1",
                vec!["node0", "node2", "node1"],
                &[script("Remac1")][..]
            ),
            (
                "Remac2",
                vec!["node2", "node0", "node1"],
                &[script("Remac2")][..]
            ),
        ]
    );
    assert_eq!(cfg.groups[0].id, fnv1a32("Remac1"));

    let cfg = load_seed("node0");
    assert_eq!(names(&cfg), ["node0", "node1"]);
    assert_eq!(
        group_summary(&cfg),
        [("Remac1", vec!["node0", "node1"], &[script("Remac1")][..])]
    );
    // ping_group only appears in node0's (template) ha.cf.
    assert_eq!(
        cfg.ping_groups,
        [PingGroup {
            name: "group1".into(),
            addrs: vec![ip("192.168.12.251"), ip("192.168.12.239")]
        }]
    );

    let cfg = load_seed("node2");
    assert_eq!(names(&cfg), ["node2", "node1"]);
    assert_eq!(
        group_summary(&cfg),
        [("Remac2", vec!["node2", "node1"], &[script("Remac2")][..])]
    );
}

/// Every non-comment line of every seed ha.cf (as printed) is either honoured
/// or reported with its line; the expectations are written out by hand.
#[test]
fn every_seed_hacf_line_is_honoured_or_warned() {
    let honoured: [(&str, &[usize]); 3] = [
        ("node0", &[6, 8, 10, 12, 14, 16, 21, 28, 29, 30, 32]),
        ("node1", &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16]),
        ("node2", &[4, 5, 6, 7, 8, 9, 10, 11, 12, 15]),
    ];
    let warned: [(&str, &[usize]); 3] = [
        ("node0", &[2, 27, 35, 36, 39, 43, 44]),
        ("node1", &[1, 2, 3, 14, 15]),
        ("node2", &[1, 2, 3, 13, 14]),
    ];
    for ((node, honoured), (_, warned)) in honoured.iter().zip(&warned) {
        let path = fixtures().join("seed").join(node).join("ha.cf");
        let text = fs::read_to_string(&path).unwrap();
        let mut diags = Vec::new();
        hacf::parse(&text, &path, &host::FakeHost::default(), &mut diags);
        // node0's line 27 is prose that lost its `#`: Heartbeat refused it
        // ("Illegal directive"), and so does hb.
        let refused: Vec<usize> = diags
            .iter()
            .filter(|d| d.is_error())
            .filter_map(|d| d.line)
            .collect();
        let expect: &[usize] = if *node == "node0" { &[27] } else { &[] };
        assert_eq!(refused, expect, "{node}: {diags:#?}");

        let mut seen_honoured = Vec::new();
        let mut seen_warned = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let n = index + 1;
            let Some(directive) = text::strip_comment(line).split_whitespace().next() else {
                continue;
            };
            let shown = text::shorten(directive, 40);
            let about_it = diags
                .iter()
                .find(|d| d.line == Some(n) && d.field.as_deref() == Some(shown.as_str()));
            match about_it {
                Some(d) => {
                    assert!(
                        d.message.starts_with("ignored")
                            || d.message.starts_with("unknown directive"),
                        "{node}:{n}: {d}"
                    );
                    seen_warned.push(n);
                }
                None => seen_honoured.push(n),
            }
        }
        assert_eq!(&seen_honoured, honoured, "{node} honoured");
        assert_eq!(&seen_warned, warned, "{node} warned");
    }
}

#[test]
fn seed_warnings_name_file_and_line() {
    let cfg = load_seed("node1");
    let shown: Vec<String> = cfg
        .warnings
        .iter()
        .filter(|w| file_name(w) == "ha.cf" && w.line.is_some_and(|l| l >= 14))
        .map(|w| {
            format!(
                "{}: {}: {}",
                w.line.unwrap(),
                w.field.as_deref().unwrap_or(""),
                w.message
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            "14: respawn: ignored: built in: connectivity via ping nodes",
            "15: apiauth: ignored: hb has no Heartbeat client API (status and commands go through the control socket)",
        ]
    );
    assert!(cfg.warnings.iter().any(|w| w.message.contains("U+00A0")));
}

/// The files as printed do not load, for the reasons Heartbeat also refused.
#[test]
fn seed_as_printed_is_refused_with_reasons() {
    let (_tmp, dir) = ha_dir("seed", "node0");
    let diags = load_ha_dir(&dir).unwrap_err();
    let errs: Vec<(&str, Option<usize>, Option<&str>)> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (file_name(d), d.line, d.field.as_deref()))
        .collect();
    assert_eq!(errs[0].0, "ha.cf", "{diags:#?}");
    assert_eq!(errs[0].1, Some(27), "{diags:#?}");
    assert_eq!(
        errs[1..],
        [
            ("haresources", Some(3), Some("node")),
            ("haresources", Some(6), Some("node")),
            ("haresources", Some(8), Some("node")),
            ("haresources", Some(9), Some("node")),
        ],
        "{diags:#?}"
    );
    let first_haresources = diags
        .iter()
        .position(|d| d.is_error() && file_name(d) == "haresources")
        .unwrap();
    assert!(
        diags[first_haresources]
            .message
            .starts_with("`node-name` is not a node declared in ha.cf (nodes: node0, node1)")
    );

    for node in ["node1", "node2"] {
        let (_tmp, dir) = ha_dir("seed", node);
        let diags = load_ha_dir(&dir).unwrap_err();
        let errs = errors(&diags);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("ha.cf: bcast: no heartbeat medium"),
            "{}",
            errs[0]
        );
    }
}

/// seed-fixed differs from seed exactly by the repairs fixtures/README.md lists.
#[test]
fn seed_fixed_is_the_documented_repair() {
    let commented: [(&str, &str, &[usize]); 2] = [
        ("node0", "ha.cf", &[27]),
        ("node0", "haresources", &[3, 6, 8, 9, 11]),
    ];
    for node in ["node0", "node1", "node2"] {
        let printed = fixtures().join("seed").join(node);
        let fixed = fixtures().join("seed-fixed").join(node);
        for file in [
            "ha.cf",
            "haresources",
            "authkeys",
            "resource.d/Remac1",
            "resource.d/Remac2",
        ] {
            let (a, b) = (printed.join(file), fixed.join(file));
            assert_eq!(a.exists(), b.exists(), "{node}/{file}");
            if !a.exists() {
                continue;
            }
            let (a, b) = (
                fs::read_to_string(a).unwrap(),
                fs::read_to_string(b).unwrap(),
            );
            let lines_a: Vec<&str> = a.lines().collect();
            let mut lines_b: Vec<&str> = b.lines().collect();
            if file == "ha.cf" && node != "node0" {
                let added = lines_b.pop().unwrap();
                assert!(added.starts_with("bcast eth2 "), "{added}");
            }
            let marks = commented
                .iter()
                .find(|(n, f, _)| *n == node && *f == file)
                .map_or(&[][..], |(_, _, l)| *l);
            assert_eq!(lines_a.len(), lines_b.len(), "{node}/{file}");
            for (i, (x, y)) in lines_a.iter().zip(&lines_b).enumerate() {
                if marks.contains(&(i + 1)) {
                    assert_eq!(format!("#{x}"), *y, "{node}/{file}:{}", i + 1);
                } else {
                    assert_eq!(x, y, "{node}/{file}:{}", i + 1);
                }
            }
        }
    }
}

// ------------------------------------------------------------ authkeys

#[test]
fn authkeys_mode_644_is_refused() {
    let (_tmp, dir) = ha_dir("seed-fixed", "node1");
    chmod(&dir.join("authkeys"), 0o644);
    let diags = load_ha_dir(&dir).unwrap_err();
    let errs = errors(&diags);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0],
        format!(
            "{}: authkeys must be mode 600 (is 644)",
            dir.join("authkeys").display()
        )
    );
}

#[test]
fn authkeys_sha1_gives_an_authenticated_key() {
    let (_tmp, dir) = ha_dir("seed-fixed", "node1");
    fs::write(dir.join("authkeys"), "auth 2\n2 sha1 HI!\n").unwrap();
    let cfg = load_ha_dir(&dir).unwrap();
    assert_eq!(cfg.auth, Auth::from_secret(AuthMethod::Sha1, b"HI!"));
    assert!(cfg.auth.authenticated);
    assert!(
        !cfg.warnings
            .iter()
            .any(|w| w.message.contains("NOT authenticated"))
    );
}

// ------------------------------------------------------------ ha.d errors

/// An ha.d directory in a temp dir from the given texts.
fn write_dir(hacf: &str, haresources: &str, authkeys: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_path_buf();
    fs::write(dir.join("ha.cf"), hacf).unwrap();
    fs::write(dir.join("haresources"), haresources).unwrap();
    fs::write(dir.join("authkeys"), authkeys).unwrap();
    chmod(&dir.join("authkeys"), 0o600);
    (tmp, dir)
}

#[test]
fn haresource_spelling_is_accepted() {
    let (_tmp, dir) = ha_dir("seed-fixed", "node1");
    fs::rename(dir.join("haresources"), dir.join("haresource")).unwrap();
    let cfg = load_ha_dir(&dir).unwrap();
    assert_eq!(cfg.groups.len(), 2);
    assert!(cfg.source.contains(&dir.join("haresource")));
}

#[test]
fn all_errors_are_collected_with_file_line_field() {
    let (_tmp, dir) = write_dir(
        "keepalive abc\ndeadtime 1\nudpport 99999\nwarntime 5\nnode a\nbcast eth0\n",
        "a Remac1\nb Remac2\na MacTakeover::eth0::zz::replace\n",
        "auth 1\n1 crc\n",
    );
    let diags = load_ha_dir(&dir).unwrap_err();
    let shown: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!(
                "{}:{}: {}: {}",
                file_name(d),
                d.line.unwrap_or(0),
                d.field.as_deref().unwrap_or("-"),
                d.message
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            "ha.cf:1: keepalive: expected a duration such as 2, 0.5 or 500ms, found \"abc\"",
            "ha.cf:2: deadtime: deadtime (1s) must be more than twice keepalive (1s)",
            "ha.cf:3: udpport: expected a UDP port 1-65535, found \"99999\"",
            "ha.cf:4: warntime: warntime (5s) must be less than deadtime (1s)",
            "haresources:2: node: `b` is not a node declared in ha.cf (nodes: a)",
            "haresources:3: MacTakeover: expected a MAC address such as 00:1E:68:1E:99:5E, found \"zz\"",
        ]
    );
}

#[test]
fn no_node_lines_is_an_error() {
    let (_tmp, dir) = write_dir("bcast eth0\n", "", "auth 1\n1 crc\n");
    let errs = errors(&load_ha_dir(&dir).unwrap_err());
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].ends_with("ha.cf: node: no `node` lines: list every cluster node (`node NAME...`)"),
        "{}",
        errs[0]
    );
}

#[test]
fn missing_files_are_errors() {
    let tmp = TempDir::new().unwrap();
    let errs = errors(&load_ha_dir(tmp.path()).unwrap_err());
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs.iter().all(|e| e.contains("cannot read")));
}

#[test]
fn milliseconds_and_fractional_seconds() {
    let (_tmp, dir) = write_dir(
        "keepalive 200ms\ndeadtime 1.5\nwarntime 0.6\ninitdead 3\nnode a b\nmcast eth1 239.0.0.7 7000 2 1\nauto_failback off\nrealtime yes\n",
        "a 10.0.0.50/24/eth1/10.0.0.255 httpd\n",
        "auth 1\n1 md5 Hello!\n",
    );
    let cfg = load_ha_dir(&dir).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(
        cfg.timing,
        Timing {
            keepalive: Duration::from_millis(200),
            deadtime: Duration::from_millis(1500),
            warntime: Duration::from_millis(600),
            initdead: secs(3)
        }
    );
    assert_eq!(
        cfg.links,
        [Link {
            name: "eth1".into(),
            iface: "eth1".into(),
            kind: LinkKind::Mcast {
                group: ip("239.0.0.7"),
                ttl: 2,
                loopback: true
            },
            port: 7000
        }]
    );
    assert!(!cfg.auto_failback);
    assert!(cfg.realtime);
    assert_eq!(cfg.groups[0].name, "10.0.0.50");
    assert_eq!(
        cfg.groups[0].aka.as_deref(),
        Some("10.0.0.50/24/eth1/10.0.0.255")
    );
    assert_eq!(cfg.groups[0].nodes, ["a", "b"]);
    assert_eq!(cfg.auth, Auth::from_secret(AuthMethod::Md5, b"Hello!"));
}

#[test]
fn ucast_lines_merge_and_udpport_after_them_applies_to_none() {
    // Heartbeat's ucast plugin read udpport at its first line: a udpport
    // after the media applied to none of them (corpus case 11, bcast).
    let (_tmp, dir) = write_dir(
        "node a b\nucast eth0 10.0.0.1\nucast eth0 10.0.0.2\nudpport 6940\n",
        "a x\n",
        "auth 1\n1 crc\n",
    );
    let cfg = load_ha_dir(&dir).unwrap();
    assert_eq!(
        cfg.links,
        [Link {
            name: "eth0".into(),
            iface: "eth0".into(),
            kind: LinkKind::Ucast {
                peers: vec![ip("10.0.0.1"), ip("10.0.0.2")]
            },
            port: 694
        }]
    );
    assert_eq!(cfg.udp_port, 694);
    let w = cfg
        .warnings
        .iter()
        .find(|w| w.field.as_deref() == Some("udpport"))
        .expect("a udpport warning");
    assert_eq!(w.line, Some(4));
    assert!(w.message.contains("applied it to none of them"), "{w}");
    // Unset auto_failback is on, as Heartbeat's legacy default: no warning.
    assert!(
        !cfg.warnings
            .iter()
            .any(|w| w.field.as_deref() == Some("auto_failback"))
    );
    // Before the media, it applies.
    let (_tmp, dir) = write_dir(
        "node a b\nudpport 6940\nucast eth0 10.0.0.1\n",
        "a x\n",
        "auth 1\n1 crc\n",
    );
    let cfg = load_ha_dir(&dir).unwrap();
    assert_eq!((cfg.links[0].port, cfg.udp_port), (6940, 6940));
}

#[test]
fn media_on_different_ports_are_refused_naming_both_lines() {
    let (_tmp, dir) = write_dir(
        "node a b\nbcast eth0\nudpport 700\nmcast eth1 225.0.0.1 700 1 0\n",
        "a x\n",
        "auth 1\n1 crc\n",
    );
    let errs = errors(&load_ha_dir(&dir).unwrap_err());
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .contains("ha.cf:4: udpport: heartbeat media use different UDP ports: line 2 uses 694")
            && errs[0].contains("line 4 uses 700"),
        "{errs:#?}"
    );
}

#[test]
fn node_id_collision_is_an_error() {
    // FNV-1a 32 collides by the birthday bound after ~2^16 names.
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0..)
        .map(|i| format!("n{i}"))
        .find_map(|name| {
            seen.insert(fnv1a32(&name), name.clone())
                .map(|other| (other, name))
        })
        .unwrap();
    let (_tmp, dir) = write_dir(
        &format!("node {a} {b}\nbcast eth0\n"),
        &format!("{a} x\n"),
        "auth 1\n1 crc\n",
    );
    let errs = errors(&load_ha_dir(&dir).unwrap_err());
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(&format!("node `{b}` has the same id")),
        "{}",
        errs[0]
    );
}

/// `n` haresources lines, one IPaddr group each (10.0.x.y), for node `a`.
fn ip_groups(n: usize) -> String {
    (0..n)
        .map(|i| format!("a 10.0.{}.{}/24/eth0\n", i / 250, i % 250 + 1))
        .collect()
}

/// A heartbeat carries at most 8 claims: `check` says so at the 9th group,
/// for every node (in ha.d, every node is a candidate for every group).
#[test]
fn more_than_8_groups_for_a_node_is_an_error() {
    let (_tmp, dir) = write_dir(SMALL_HACF, &ip_groups(8), "auth 1\n1 crc\n");
    assert_eq!(load_ha_dir(&dir).unwrap().groups.len(), 8);

    for n in [9, 10_000] {
        let (_tmp, dir) = write_dir(SMALL_HACF, &ip_groups(n), "auth 1\n1 crc\n");
        let errs = errors(&load_ha_dir(&dir).unwrap_err());
        let res = dir.join("haresources");
        let msg = |node: &str| {
            format!(
                "{}:9: group: node `{node}` is a candidate for {n} groups, at most 8 are \
                 supported (group `10.0.0.9` is number 9)",
                res.display()
            )
        };
        assert_eq!(errs, [msg("a"), msg("b")]);
    }
}

/// Two groups carrying one address (or one virtual MAC) could both be held,
/// on different nodes, both answering: whatever resource brings it up.
#[test]
fn two_groups_with_one_address_or_mac_are_an_error() {
    let (_tmp, dir) = write_dir(
        SMALL_HACF,
        "a 10.0.0.5/24/eth0 httpd\n\
         b MacTakeover::eth0::02:00:00:00:00:01::macvlan::10.0.0.6/24\n\
         b IPaddr::10.0.0.5\n\
         a IPaddr2::10.0.0.6/24/eth1\n\
         a MacTakeover::eth1::02:00:00:00:00:01::replace\n\
         a 10.0.0.7 ocf:heartbeat:IPaddr2::ip=10.0.0.5\n",
        "auth 1\n1 crc\n",
    );
    let res = dir.join("haresources");
    let at = |line: usize| format!("{}:{line}", res.display());
    let both = |line: usize, a: &str, la: usize, b: &str, what: &str| {
        format!(
            "{}: group: groups `{a}` ({}) and `{b}` ({}) both carry {what}: they can be \
             held at once on different nodes, both answering for it",
            at(line),
            at(la),
            at(line)
        )
    };
    let (g1, g2) = (
        "10.0.0.5/24/eth0",
        "MacTakeover::eth0::02:00:00:00:00:01::macvlan::10.0.0.6/24",
    );
    assert_eq!(
        errors(&load_ha_dir(&dir).unwrap_err()),
        [
            both(3, g1, 1, "IPaddr::10.0.0.5", "address 10.0.0.5"),
            both(4, g2, 2, "IPaddr2::10.0.0.6/24/eth1", "address 10.0.0.6"),
            both(
                5,
                g2,
                2,
                // Its short name, the MAC: unique, unlike the two 10.0.0.5s.
                "02:00:00:00:00:01",
                "virtual MAC 02:00:00:00:00:01"
            ),
            both(6, g1, 1, "10.0.0.7", "address 10.0.0.5"),
        ]
    );
}

// ------------------------------------------------------------ files

/// Runs `load` on a thread: a reader that blocks (a FIFO) or never ends
/// (/dev/zero) fails the test instead of hanging it.
fn promptly<T: Send + 'static>(load: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load());
    });
    rx.recv_timeout(secs(10))
        .expect("the configuration load did not return within 10 s")
}

const SMALL_HACF: &str = "node a b\nbcast eth0\nauto_failback on\n";

#[test]
fn fifo_is_refused_promptly() {
    let (_tmp, dir) = write_dir(SMALL_HACF, "", "auth 1\n1 crc\n");
    let hacf = dir.join("ha.cf");
    fs::remove_file(&hacf).unwrap();
    nix::unistd::mkfifo(&hacf, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let d = dir.clone();
    let errs = errors(&promptly(move || load_ha_dir(&d)).unwrap_err());
    assert!(
        errs.contains(&format!(
            "{}: is a FIFO, not a regular file",
            hacf.display()
        )),
        "{errs:#?}"
    );

    let toml = dir.join("hb.toml");
    nix::unistd::mkfifo(&toml, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let t = toml.clone();
    let errs = errors(&promptly(move || load(&Source::Toml(t))).unwrap_err());
    assert_eq!(
        errs,
        [format!("{}: is a FIFO, not a regular file", toml.display())]
    );
}

#[test]
fn authkeys_symlink_to_dev_zero_is_refused_unread() {
    let (_tmp, dir) = write_dir(SMALL_HACF, "a x\n", "");
    let authkeys = dir.join("authkeys");
    fs::remove_file(&authkeys).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &authkeys).unwrap();
    let d = dir.clone();
    let errs = errors(&promptly(move || load_ha_dir(&d)).unwrap_err());
    // Refused for what it is, before its (world-readable) mode or content.
    assert_eq!(
        errs,
        [format!(
            "{}: is a character device, not a regular file",
            authkeys.display()
        )]
    );
}

#[test]
fn oversize_files_are_refused() {
    // 1 MiB of comments: with the directives, one file over the limit.
    let padding = format!("# {}\n", "x".repeat(1021)).repeat(1024);
    let len = padding.len() + SMALL_HACF.len();
    let (_tmp, dir) = write_dir(&format!("{SMALL_HACF}{padding}"), "", "auth 1\n1 crc\n");
    let errs = errors(&load_ha_dir(&dir).unwrap_err());
    assert_eq!(
        errs,
        [format!(
            "{}: is {len} bytes, over the 1 MiB limit for a configuration file",
            dir.join("ha.cf").display()
        )]
    );

    let toml = dir.join("hb.toml");
    fs::write(&toml, format!("{MINIMAL}{padding}")).unwrap();
    let errs = errors(&load_toml(&toml).unwrap_err());
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("over the 1 MiB limit"), "{}", errs[0]);
}

/// Editors on Windows start files with U+FEFF; it is not part of the first
/// directive (`node`, a group's node, `auth`, a TOML key).
#[test]
fn utf8_bom_is_ignored() {
    let bom = "\u{feff}";
    let (_tmp, dir) = write_dir(
        &format!("{bom}{SMALL_HACF}"),
        &format!("{bom}a 10.0.0.50/24/eth0\n"),
        &format!("{bom}auth 1\n1 sha1 HI!\n"),
    );
    let cfg = load_ha_dir(&dir).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(names(&cfg), ["a", "b"]);
    assert_eq!(cfg.groups[0].nodes, ["a", "b"]);
    assert_eq!(cfg.auth, Auth::from_secret(AuthMethod::Sha1, b"HI!"));
    assert!(cfg.warnings.is_empty(), "{:#?}", cfg.warnings);

    let toml = dir.join("hb.toml");
    fs::write(&toml, format!("{bom}{MINIMAL}")).unwrap();
    chmod(&toml, 0o600);
    let cfg = load_toml(&toml).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(cfg.cluster, "t");
    assert!(cfg.warnings.is_empty(), "{:#?}", cfg.warnings);
}

// ------------------------------------------------------------ check

#[test]
fn check_finds_scripts_and_interfaces() {
    let (tmp, dir) = ha_dir("seed-fixed", "node1");
    let mut cfg = load_ha_dir(&dir).unwrap();
    // Keep the test independent of this host's /etc/init.d.
    cfg.script_dirs = vec![dir.join("resource.d"), tmp.path().join("init.d")];
    let net = tmp.path().join("net");
    fs::create_dir_all(net.join("eth2")).unwrap();
    let ocf = tmp.path().join("ocf");
    assert_eq!(check::check_in(&cfg, &net, &ocf), []);

    chmod(&dir.join("resource.d/Remac1"), 0o644);
    fs::remove_file(dir.join("resource.d/Remac2")).unwrap();
    fs::remove_dir(net.join("eth2")).unwrap();
    let shown: Vec<String> = check::check_in(&cfg, &net, &ocf)
        .iter()
        .map(|d| {
            let kind = if d.is_error() { "E" } else { "W" };
            format!(
                "{kind} {}:{}: {}: {}",
                file_name(d),
                d.line.unwrap_or(0),
                d.field.as_deref().unwrap_or("-"),
                d.message
            )
        })
        .collect();
    let rd = dir.join("resource.d");
    assert_eq!(
        shown,
        [
            format!(
                "E haresources:1: Remac1: {}/Remac1 (group `Remac1`) is not an executable file",
                rd.display()
            ),
            format!(
                "E haresources:2: Remac2: script `Remac2` (group `Remac2`) not found in {}, {}",
                rd.display(),
                tmp.path().join("init.d").display()
            ),
            "W ha.cf:0: iface: interface `eth2` (link `eth2`) does not exist on this host"
                .to_string(),
        ]
    );
}

// ------------------------------------------------------------ TOML

fn example() -> Config {
    load_toml(&fixtures().join("example.toml")).unwrap_or_else(|d| panic!("{d:#?}"))
}

fn mac_group(
    name: &str,
    nodes: [&str; 2],
    mac: [u8; 6],
    vip: &str,
    host: &str,
    line: usize,
) -> Group {
    Group {
        name: name.into(),
        id: fnv1a32(name),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        resources: vec![
            ResourceSpec::Mac(MacSpec {
                iface: "eth0".into(),
                mac,
                mode: MacMode::Replace,
                addr: Some((ip(vip), 24)),
                gateway: Some(ip("192.168.32.254")),
            }),
            ResourceSpec::Hostname(HostnameSpec { name: host.into() }),
        ],
        origin: Some(Origin {
            file: fixtures().join("example.toml"),
            line,
        }),
        found: Default::default(),
        aka: None,
        checks: Vec::new(),
    }
}

fn node(name: &str, hb: &str) -> Node {
    Node {
        name: name.into(),
        id: fnv1a32(name),
        addrs: BTreeMap::from([("hb".to_string(), ip(hb))]),
    }
}

#[test]
fn example_toml_is_the_seed_cluster() {
    let cfg = example();
    let line_of = |needle: &str| {
        let text = fs::read_to_string(fixtures().join("example.toml")).unwrap();
        text.lines().position(|l| l == needle).unwrap() + 1
    };
    let expected = Config {
        cluster: "seed-lab".into(),
        cluster_id: fnv1a32("seed-lab"),
        udp_port: 694,
        auth: Auth::from_secret(AuthMethod::Key, b"change this shared secret"),
        nodes: vec![
            node("node0", "10.160.100.30"),
            node("node2", "10.160.100.32"),
            node("node1", "10.160.100.31"),
        ],
        links: vec![Link {
            name: "hb".into(),
            iface: "eth2".into(),
            kind: LinkKind::Bcast,
            port: 694,
        }],
        timing: Timing {
            keepalive: secs(2),
            deadtime: secs(60),
            warntime: secs(20),
            initdead: secs(240),
        },
        auto_failback: true,
        groups: vec![
            mac_group(
                "vip1",
                ["node0", "node1"],
                [0x00, 0x1e, 0x68, 0x1e, 0x99, 0x5e],
                "192.168.32.21",
                "nodevir",
                line_of("name = \"vip1\""),
            ),
            mac_group(
                "vip2",
                ["node2", "node1"],
                [0x00, 0x1e, 0x68, 0x1e, 0x88, 0x5e],
                "192.168.32.22",
                "nodevir2",
                line_of("name = \"vip2\""),
            ),
        ],
        ping_nodes: vec![ip("192.168.32.254")],
        ping_groups: vec![],
        deadping: Some(secs(60)),
        fencing: None,
        arp: ArpSettings::default(),
        control_socket: "/run/hb/seed-lab.sock".into(),
        metrics_addr: None,
        script_dirs: vec!["/etc/ha.d/resource.d".into(), "/etc/init.d".into()],
        script_timeout: secs(20),
        realtime: true,
        service_lease: true,
        ping_moves_groups: true,
        ping_tie_break: true,
        warnings: cfg.warnings.clone(),
        unset: Some(vec![]),
        source: vec![fixtures().join("example.toml")],
    };
    // The example's checks (every key, check_tests.rs covers their parsing).
    let mut expected = expected;
    let checks = &cfg.groups[0].checks;
    assert_eq!(
        checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["process:httpd", "web-answers"]
    );
    expected.groups[0].checks = checks.clone();
    assert_eq!(cfg, expected);
    // node1 covers both primaries but can hold only one MAC and one hostname.
    let claims: Vec<&str> = cfg
        .warnings
        .iter()
        .filter(|w| {
            w.message
                .starts_with("node `node1` is a candidate for groups `vip1` and `vip2`")
        })
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(claims.len(), 2, "{:#?}", cfg.warnings);
    // The only other possible warning is about the file's mode (git: 644).
    assert!(cfg.warnings.len() <= 3, "{:#?}", cfg.warnings);
}

#[test]
fn example_toml_agrees_with_node1_ha_dir() {
    let toml = example();
    let ha = load_seed("node1");
    assert_eq!(names(&toml), names(&ha));
    assert_eq!(toml.timing, ha.timing);
    assert_eq!(
        (toml.udp_port, toml.auto_failback),
        (ha.udp_port, ha.auto_failback)
    );
    assert_eq!(toml.ping_nodes, ha.ping_nodes);
    assert_eq!(toml.links[0].iface, ha.links[0].iface);
    assert_eq!(toml.links[0].kind, ha.links[0].kind);
}

#[test]
fn example_mode_warning_only_when_readable() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("hb.toml");
    fs::copy(fixtures().join("example.toml"), &path).unwrap();
    chmod(&path, 0o644);
    let cfg = load_toml(&path).unwrap();
    assert!(
        cfg.warnings
            .iter()
            .any(|w| w.message.contains("mode 644); chmod 600"))
    );
    chmod(&path, 0o600);
    let cfg = load_toml(&path).unwrap();
    assert!(!cfg.warnings.iter().any(|w| w.message.contains("chmod 600")));
}

/// A minimal valid TOML document to mutate in tests.
pub(crate) const MINIMAL: &str = r#"cluster = "t"
[auth]
secret = "s"
[[link]]
name = "hb"
iface = "eth1"
kind = "bcast"
[[node]]
name = "a"
addrs = { hb = "10.0.0.1" }
[[node]]
name = "b"
"#;

fn toml_errs(text: &str) -> Vec<String> {
    errors(&load_toml_str(text, Path::new("hb.toml")).unwrap_err())
}

#[test]
fn toml_minimal_defaults() {
    let cfg = load_toml_str(MINIMAL, Path::new("hb.toml")).unwrap();
    assert_eq!(cfg.timing, Timing::with_defaults(None, None, None, None));
    assert_eq!(cfg.udp_port, 694);
    assert!(cfg.auto_failback);
    assert_eq!(cfg.script_timeout, secs(20));
    assert_eq!(
        cfg.script_dirs,
        [PathBuf::from("/etc/ha.d/resource.d"), "/etc/init.d".into()]
    );
    assert_eq!(cfg.control_socket, PathBuf::from("/run/hb/t.sock"));
    assert_eq!(cfg.arp, ArpSettings::default());
    assert!(cfg.warnings.is_empty(), "{:#?}", cfg.warnings);
}

#[test]
fn toml_typo_is_named_with_its_line() {
    let errs = toml_errs(&format!("{MINIMAL}[timing]\nkeepalve = \"2s\"\n"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("hb.toml:14: timing.keepalve: unknown field `keepalve`"),
        "{}",
        errs[0]
    );
}

#[test]
fn toml_typo_in_array_table() {
    let errs = toml_errs(&MINIMAL.replace("name = \"b\"", "name = \"b\"\nadress = 1"));
    assert!(
        errs[0].starts_with("hb.toml:13: node.adress: unknown field `adress`"),
        "{}",
        errs[0]
    );
}

#[test]
fn toml_duration_needs_units() {
    let errs = toml_errs(&format!("{MINIMAL}[timing]\nkeepalive = 2\n"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "hb.toml:14: timing.keepalive: a duration needs units: write \"2s\" or \"2ms\", not 2"
        ),
        "{}",
        errs[0]
    );
    let errs = toml_errs(&format!("{MINIMAL}[timing]\nkeepalive = \"2\"\n"));
    assert!(errs[0].contains("needs units"), "{}", errs[0]);
    let errs = toml_errs(&format!("{MINIMAL}[timing]\ndeadtime = 1.5\n"));
    assert!(errs[0].contains("needs units"), "{}", errs[0]);
}

#[test]
fn toml_udp_port_out_of_range() {
    let errs = toml_errs(&MINIMAL.replace("cluster = \"t\"", "cluster = \"t\"\nudp_port = 99999"));
    assert!(errs[0].starts_with("hb.toml:2: udp_port: "), "{}", errs[0]);
}

#[test]
fn toml_two_node_tie_break() {
    let with = |v: &str| MINIMAL.replace("cluster = \"t\"", &format!("cluster = \"t\"\n{v}"));
    let cfg = load_toml_str(MINIMAL, Path::new("hb.toml")).unwrap();
    assert!(cfg.ping_tie_break, "on by default");
    let cfg = load_toml_str(&with("two_node_tie_break = \"none\""), Path::new("hb.toml")).unwrap();
    assert!(!cfg.ping_tie_break);
    let errs = toml_errs(&with("two_node_tie_break = \"off\""));
    assert!(
        errs[0].starts_with(
            "hb.toml:2: two_node_tie_break: expected \"ping\" or \"none\", found \"off\""
        ),
        "{}",
        errs[0]
    );
}

#[test]
fn toml_timings_say_written_or_default_in_the_plan() {
    let cfg = load_toml_str(
        &format!("{MINIMAL}[timing]\nkeepalive = \"500ms\"\n"),
        Path::new("hb.toml"),
    )
    .unwrap();
    let text = crate::config::check::plan(&cfg, "a").render();
    assert!(text.contains("  keepalive 500ms (written)\n"), "{text}");
    assert!(text.contains("  deadtime "), "{text}");
    assert!(text.contains(" (default)\n"), "{text}");
}

#[test]
fn toml_semantic_errors_are_all_collected() {
    let text = format!(
        "{MINIMAL}addrs = {{ hbx = \"10.0.0.2\" }}\n[timing]\nkeepalive = \"1s\"\ndeadtime = \"2s\"\n\
         [[group]]\nname = \"g\"\nnodes = [\"a\", \"c\"]\n\
         [[group.resource]]\ntype = \"mac\"\niface = \"eth0\"\nmac = \"01:00:5E:00:00:01\"\n\
         [[group.resource]]\ntype = \"ip\"\naddress = \"10.0.0.9/24\"\nmac = \"00:1E:68:1E:99:5E\"\n"
    );
    let shown = toml_errs(&text);
    assert_eq!(
        shown,
        [
            "hb.toml:13: node.addrs: `hbx` is not a link name (links: hb)",
            "hb.toml:16: timing.deadtime: deadtime (2s) must be more than twice keepalive (1s)",
            "hb.toml:19: group.nodes: `c` is not a node (nodes: a, b)",
            "hb.toml:23: group.resource.mac: 01:00:5E:00:00:01 is a multicast MAC address; a virtual MAC must be unicast",
            "hb.toml:27: group.resource.mac: does not apply to type = \"ip\"",
        ]
    );
}

#[test]
fn toml_auth_variants() {
    let with_auth = |auth: &str| MINIMAL.replace("secret = \"s\"", auth);
    let load = |t: &str| load_toml_str(t, Path::new("hb.toml"));

    let cfg = load(&with_auth("method = \"sha1\"\nsecret = \"HI!\"")).unwrap();
    assert_eq!(cfg.auth, Auth::from_secret(AuthMethod::Sha1, b"HI!"));
    // Same key as authkeys `2 sha1 HI!`: TOML and ha.d nodes can be mixed.
    let (_tmp, dir) = ha_dir("seed-fixed", "node1");
    fs::write(dir.join("authkeys"), "auth 2\n2 sha1 HI!\n").unwrap();
    assert_eq!(load_ha_dir(&dir).unwrap().auth.key, cfg.auth.key);

    let cfg = load(&with_auth("key = \"00112233445566778899aabbccddeeff\"")).unwrap();
    assert_eq!(cfg.auth.key[..4], [0x00, 0x11, 0x22, 0x33]);
    assert_eq!(cfg.auth.method, AuthMethod::Key);

    let cfg = load(&with_auth("method = \"crc\"")).unwrap();
    assert_eq!(cfg.auth, Auth::crc());
    assert!(cfg.warnings[0].message.contains("NOT authenticated"));

    let cfg = load(&MINIMAL.replace("secret = \"s\"", "secret = \"s2\"")).unwrap();
    assert_eq!(cfg.auth.key, derive_key(b"secret", b"s2"));

    assert!(toml_errs(&with_auth("key = \"0011\""))[0].contains("32 hex digits"));
    assert!(
        toml_errs(&with_auth(
            "secret = \"a\"\nkey = \"00112233445566778899aabbccddeeff\""
        ))[0]
            .contains("not both")
    );
    assert!(toml_errs(&with_auth("method = \"md5\""))[0].contains("needs a secret"));
    assert!(toml_errs(&with_auth("method = \"crc\"\nsecret = \"x\""))[0].contains("not used with"));
    assert!(toml_errs(&with_auth(""))[0].contains("give secret"));
    let no_auth = MINIMAL.replace("[auth]\nsecret = \"s\"\n", "");
    assert!(
        toml_errs(&no_auth)[0].contains("missing field `auth`"),
        "{:?}",
        toml_errs(&no_auth)
    );
}

#[test]
fn toml_every_field() {
    let text = r#"
cluster = "full"
cluster_id = 77
udp_port = 7000
auto_failback = false
realtime = true
ping_nodes = ["10.0.0.254", "fd00::1"]
control_socket = "/tmp/full.sock"
metrics_addr = "127.0.0.1:9694"
script_dirs = ["/opt/hb/scripts"]
script_timeout = "45s"

[timing]
keepalive = "100ms"
deadtime = "1s"
warntime = "500ms"
initdead = "1m"

[auth]
key = "0102030405060708090a0b0c0d0e0f10"

[[link]]
name = "m"
iface = "eth1"
kind = "mcast"
group = "239.1.2.3"
ttl = 3
loopback = true
port = 7001

[[link]]
name = "u"
iface = "eth2"
kind = "ucast"

[[node]]
name = "a"
id = 1
addrs = { u = "10.2.0.1" }

[[node]]
name = "b"
id = 2
addrs = { u = "10.2.0.2" }

[[ping_group]]
name = "upstream"
addrs = ["10.9.0.1", "10.9.0.2"]

[fencing]
command = "fence_ipmilan -n %n"
timeout = "30s"

[arp]
count = 3
interval = "50ms"
reply_form = true
refresh = "off"
na_router_flag = true

[[group]]
name = "web"
nodes = ["b", "a"]

[[group.resource]]
type = "ip"
address = "fd00::80/64"
iface = "eth0"
label = "web"

[[group.resource]]
type = "mac"
iface = "eth0"
mac = "02:00:00:00:00:01"
mode = "macvlan"
child = "hbweb"
address = "10.0.0.80/24"

[[group.resource]]
type = "script"
name = "Filesystem"
args = ["/dev/sdb5", "/webdata", "ext3"]
timeout = "2m"

[[group.resource]]
type = "lsb"
name = "httpd"

[[group.resource]]
type = "ocf"
name = "IPaddr2"
params = { ip = "10.0.0.9", cidr_netmask = "24" }
"#;
    let cfg = load_toml_str(text, Path::new("full.toml")).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(
        (cfg.cluster.as_str(), cfg.cluster_id, cfg.udp_port),
        ("full", 77, 7000)
    );
    assert!(!cfg.auto_failback && cfg.realtime);
    assert_eq!(cfg.ping_nodes, [ip("10.0.0.254"), ip("fd00::1")]);
    assert_eq!(cfg.control_socket, PathBuf::from("/tmp/full.sock"));
    assert_eq!(cfg.metrics_addr, Some("127.0.0.1:9694".parse().unwrap()));
    assert_eq!(cfg.script_dirs, [PathBuf::from("/opt/hb/scripts")]);
    assert_eq!(cfg.script_timeout, secs(45));
    assert_eq!(cfg.timing.initdead, secs(60));
    assert_eq!(cfg.auth.key[15], 0x10);
    assert_eq!(
        cfg.links[0],
        Link {
            name: "m".into(),
            iface: "eth1".into(),
            kind: LinkKind::Mcast {
                group: ip("239.1.2.3"),
                ttl: 3,
                loopback: true
            },
            port: 7001
        }
    );
    // ucast peers default to the nodes' addresses on the link.
    assert_eq!(
        cfg.links[1].kind,
        LinkKind::Ucast {
            peers: vec![ip("10.2.0.1"), ip("10.2.0.2")]
        }
    );
    assert_eq!(cfg.links[1].port, 7000);
    assert_eq!((cfg.nodes[0].id, cfg.nodes[1].id), (1, 2));
    assert_eq!(cfg.ping_groups[0].addrs.len(), 2);
    assert_eq!(
        cfg.fencing,
        Some(Fencing {
            command: "fence_ipmilan -n %n".into(),
            timeout: secs(30)
        })
    );
    assert_eq!(
        cfg.arp,
        ArpSettings {
            count: 3,
            interval: Duration::from_millis(50),
            reply_form: true,
            refresh: None,
            na_router_flag: true
        }
    );
    let g = cfg.group("web").unwrap();
    assert_eq!(g.nodes, ["b", "a"]);
    assert_eq!(
        g.resources[0],
        ResourceSpec::IpAddr(IpSpec {
            addr: ip("fd00::80"),
            prefix: 64,
            route_prefix: false,
            iface: Some("eth0".into()),
            broadcast: None,
            label: Some("web".into())
        })
    );
    assert_eq!(
        g.resources[1],
        ResourceSpec::Mac(MacSpec {
            iface: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            mode: MacMode::Macvlan {
                child: Some("hbweb".into())
            },
            addr: Some((ip("10.0.0.80"), 24)),
            gateway: None
        })
    );
    let ResourceSpec::Script(ScriptSpec { timeout, args, .. }) = &g.resources[2] else {
        panic!()
    };
    assert_eq!((*timeout, args.len()), (secs(120), 3));
    let ResourceSpec::Script(ScriptSpec { kind, timeout, .. }) = &g.resources[3] else {
        panic!()
    };
    assert_eq!((kind, *timeout), (&ScriptKind::Lsb, secs(45)));
    let ResourceSpec::Script(ScriptSpec { kind, params, .. }) = &g.resources[4] else {
        panic!()
    };
    assert_eq!(
        kind,
        &ScriptKind::Ocf {
            provider: "heartbeat".into()
        }
    );
    assert_eq!(params["cidr_netmask"], "24");
    assert!(cfg.warnings.is_empty(), "{:#?}", cfg.warnings);
}

#[test]
fn toml_explicit_id_collision() {
    let text = MINIMAL
        .replace("name = \"a\"", "name = \"a\"\nid = 7")
        .replace("name = \"b\"", "name = \"b\"\nid = 7");
    let errs = toml_errs(&text);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("hb.toml:13: node: node `b` has the same id (0x00000007) as node `a`"),
        "{}",
        errs[0]
    );
}

#[test]
fn toml_links_and_nodes_required() {
    let errs = toml_errs("cluster = \"t\"\n[auth]\nsecret = \"s\"\n");
    assert_eq!(
        errs,
        [
            "hb.toml: link: no [[link]]: at least one heartbeat link is needed",
            "hb.toml: node: no [[node]]: list the cluster's nodes",
        ]
    );
}

#[test]
fn toml_more_than_8_groups_for_a_node_is_an_error() {
    let group = |i: usize, nodes: &str| {
        format!(
            "[[group]]\nname = \"g{i}\"\nnodes = [{nodes}]\n\
             [[group.resource]]\ntype = \"ip\"\naddress = \"10.0.1.{i}/24\"\n"
        )
    };
    // b is a candidate for 8 groups, a for 9: only a is over.
    let mut text = MINIMAL.to_string();
    for i in 1..=8 {
        text.push_str(&group(i, "\"b\", \"a\""));
    }
    assert!(load_toml_str(&text, Path::new("hb.toml")).is_ok());
    text.push_str(&group(9, "\"a\""));
    let line = text.lines().position(|l| l == "name = \"g9\"").unwrap() + 1;
    assert_eq!(
        toml_errs(&text),
        [format!(
            "hb.toml:{line}: group: node `a` is a candidate for 9 groups, at most 8 are \
             supported (group `g9` is number 9)"
        )]
    );
}

#[test]
fn toml_two_groups_with_one_address_or_mac_are_an_error() {
    let text = format!(
        "{MINIMAL}[[group]]\nname = \"web\"\nnodes = [\"a\", \"b\"]\n\
         [[group.resource]]\ntype = \"mac\"\niface = \"eth0\"\nmac = \"02:00:00:00:00:01\"\n\
         mode = \"macvlan\"\naddress = \"fd00::80/64\"\n\
         [[group]]\nname = \"db\"\nnodes = [\"b\", \"a\"]\n\
         [[group.resource]]\ntype = \"ip\"\naddress = \"fd00:0::80/64\"\n\
         [[group.resource]]\ntype = \"mac\"\niface = \"eth1\"\nmac = \"02:00:00:00:00:01\"\n\
         [[group]]\nname = \"other\"\nnodes = [\"b\"]\n\
         [[group.resource]]\ntype = \"ip\"\naddress = \"fd00::81/64\"\n"
    );
    let line = |name: &str| {
        text.lines()
            .position(|l| l == format!("name = \"{name}\""))
            .unwrap()
            + 1
    };
    let (web, db) = (line("web"), line("db"));
    let both = |what: &str| {
        format!(
            "hb.toml:{db}: group: groups `web` (hb.toml:{web}) and `db` (hb.toml:{db}) both \
             carry {what}: they can be held at once on different nodes, both answering for it"
        )
    };
    assert_eq!(
        toml_errs(&text),
        [
            both("address fd00::80"),
            both("virtual MAC 02:00:00:00:00:01")
        ]
    );
}

// ------------------------------------------------------------ API

#[test]
fn load_dispatches_on_source() {
    let (_tmp, dir) = ha_dir("seed-fixed", "node2");
    assert_eq!(Source::from_path(&dir), Source::HaDir(dir.clone()));
    let cfg = load(&Source::HaDir(dir)).unwrap();
    assert_eq!(cfg.groups[0].name, "Remac2");
    let toml = fixtures().join("example.toml");
    assert_eq!(Source::from_path(&toml), Source::Toml(toml.clone()));
    assert_eq!(load(&Source::Toml(toml)).unwrap().cluster, "seed-lab");
}

#[test]
fn lookups() {
    let cfg = load_seed("node1");
    assert_eq!(cfg.local_node("NODE1").unwrap().name, "node1");
    let err = cfg.local_node("web3").unwrap_err();
    assert!(err.is_error());
    assert!(err.message.contains(
        "this host (`web3`) is not a node of cluster `heartbeat` (nodes: node0, node2, node1)"
    ));
    assert_eq!(cfg.priority("node2"), Some(1));
    let for_node1: Vec<&str> = cfg.groups_for("node1").map(|g| g.name.as_str()).collect();
    assert_eq!(for_node1, ["Remac1", "Remac2"]);
    let preferred: Vec<&str> = cfg
        .preferred_groups("node0")
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(preferred, ["Remac1"]);
    assert_eq!(cfg.node_by_id(fnv1a32("node2")).unwrap().name, "node2");
    assert_eq!(cfg.group_by_id(fnv1a32("Remac2")).unwrap().name, "Remac2");
    assert!(cfg.link("eth2").is_some());
}

#[test]
fn deadping_as_configured_else_deadtime_but_at_least_20ms() {
    let mut cfg = load_seed("node1");
    assert_eq!(cfg.deadping(), secs(60), "the seed's `deadping 60`");
    cfg.deadping = None;
    cfg.timing.deadtime = secs(30);
    assert_eq!(cfg.deadping(), secs(30), "Heartbeat's default: deadtime");
    cfg.timing.deadtime = Duration::from_millis(2);
    assert_eq!(
        cfg.deadping(),
        Duration::from_millis(20),
        "two lost echoes at a 2 ms deadtime must not move groups"
    );
}

fn host_with(addrs: &[(&str, &str, u8)]) -> host::FakeHost {
    host::FakeHost {
        names: vec![],
        addrs: addrs
            .iter()
            .map(|(iface, a, p)| host::HostAddr {
                iface: iface.to_string(),
                addr: ip(a),
                prefix: *p,
            })
            .collect(),
    }
}

#[test]
fn pacemaker_cluster_is_one_error_line() {
    // Corpus cases 06, 14, 19, 20: no haresources, resources in the CIB.
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("ha.cf"),
        "node a.example b.example\nucast eth0 a.example\ncrm respawn\nautojoin any\n",
    )
    .unwrap();
    let diags = load_ha_dir_on(dir, &host::FakeHost::default()).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert!(d.is_error() && d.line == Some(3), "{d}");
    assert!(
        d.message
            .starts_with("this is a Pacemaker (CRM) cluster (`crm respawn`"),
        "{d}"
    );
    // With an haresources file, hb reads it (Heartbeat would not): warned.
    let (_tmp, dir) = write_dir("node a b\nbcast eth0\ncrm on\n", "a x\n", "auth 1\n1 crc\n");
    let cfg = load_ha_dir_on(&dir, &host::FakeHost::default()).unwrap();
    assert!(cfg.warnings.iter().any(|w| w.message.contains("cib.xml")));
}

#[test]
fn own_ucast_address_is_skipped_on_this_host() {
    let (_tmp, dir) = write_dir(
        "node a b\nucast eth0 10.0.0.1 10.0.0.2\nucast eth1 10.1.0.1\n",
        "a x\n",
        "auth 1\n1 crc\n",
    );
    let host = host_with(&[("eth0", "10.0.0.1", 24), ("eth1", "10.1.0.1", 24)]);
    let cfg = load_ha_dir_on(&dir, &host).unwrap();
    assert_eq!(
        cfg.links[0].kind,
        LinkKind::Ucast {
            peers: vec![ip("10.0.0.2")]
        }
    );
    assert_eq!(cfg.links[1].kind, LinkKind::Ucast { peers: vec![] });
    let skipped: Vec<_> = cfg
        .warnings
        .iter()
        .filter(|w| w.message.contains("this host's own address"))
        .map(|w| w.line)
        .collect();
    assert_eq!(skipped, [Some(2), Some(3)]);
    // Read as another machine, nothing is skipped.
    let cfg = load_ha_dir_on(&dir, &host::FakeHost::default()).unwrap();
    assert_eq!(
        cfg.links[0].kind,
        LinkKind::Ucast {
            peers: vec![ip("10.0.0.1"), ip("10.0.0.2")]
        }
    );
}

#[test]
fn missing_netmask_comes_from_the_connected_route() {
    // Corpus case 15: IPaddr::172.20.10.15 on a /28.
    let (_tmp, dir) = write_dir(
        "node a b\nbcast eth1\n",
        "a IPaddr::172.20.10.15 192.168.1.5/16 x\n",
        "auth 1\n1 crc\n",
    );
    let host = host_with(&[("eth1", "172.20.10.2", 28), ("eth0", "10.0.0.2", 8)]);
    let cfg = load_ha_dir_on(&dir, &host).unwrap();
    let g = &cfg.groups[0];
    let ResourceSpec::IpAddr(IpSpec { prefix, iface, .. }) = &g.resources[0] else {
        panic!()
    };
    assert_eq!((*prefix, iface.as_deref()), (28, None));
    let route = Found::Route {
        iface: "eth1".into(),
        prefix: 28,
    };
    assert_eq!(
        g.found[&0],
        IpFound {
            prefix: route.clone(),
            iface: route
        }
    );
    // Prefix written, interface not, and no route holds it: left to the
    // start, which looks for the interface again.
    assert_eq!(
        g.found[&1],
        IpFound {
            prefix: Found::Written,
            iface: Found::NotFound
        }
    );
    // No route: /24 with a warning naming the line.
    let cfg = load_ha_dir_on(&dir, &host::FakeHost::default()).unwrap();
    let ResourceSpec::IpAddr(IpSpec { prefix, .. }) = &cfg.groups[0].resources[0] else {
        panic!()
    };
    assert_eq!(*prefix, 24);
    assert_eq!(cfg.groups[0].found[&0].prefix, Found::NotFound);
    assert!(cfg.warnings.iter().any(|w| w.line == Some(1)
        && w.message.contains("172.20.10.15: no netmask written")
        && w.message.contains("assumes /24")));
}

#[test]
fn ha_dir_initdead_default_is_heartbeats() {
    let (_tmp, dir) = write_dir(
        "node a b\nbcast eth0\nkeepalive 1\ndeadtime 5\n",
        "a x\n",
        "auth 1\n1 crc\n",
    );
    let cfg = load_ha_dir(&dir).unwrap();
    assert_eq!(cfg.timing.initdead, secs(12));
    let unset = cfg.unset.clone().unwrap();
    assert!(unset.contains(&"initdead") && !unset.contains(&"deadtime"));
}

#[test]
fn plan_shows_what_was_understood() {
    let (_tmp, dir) = write_dir(
        "node a b\nbcast eth0\nserial /dev/ttyS0\nwatchdog /dev/watchdog\nudpport 694\n\
         ucast eth1 10.0.0.2\nping 10.0.0.254\ndeadtime 10\n",
        "a IPaddr::10.0.0.50/24/eth0/10.0.0.255 10.0.0.60 x::arg\n",
        "auth 1\n1 crc\n",
    );
    fs::create_dir(dir.join("resource.d")).unwrap();
    fs::write(dir.join("resource.d/x"), "#!/bin/sh\n").unwrap();
    chmod(&dir.join("resource.d/x"), 0o755);
    let cfg = load_ha_dir_on(&dir, &host_with(&[("eth0", "10.0.0.1", 24)])).unwrap();
    let plan = check::plan_in(&cfg, "A", Path::new("/nonexistent"));
    assert!(plan.is_a_node && plan.this_node == "a");
    let text = plan.render();
    for want in [
        "plan for node a",
        "1. a id 0xe40c292c  <- this node",
        "eth0 on eth0: bcast port 694 to 255.255.255.255",
        "eth1 on eth1: ucast port 694 to 10.0.0.2",
        "keepalive 1s (default)",
        "deadtime 10s (written)",
        "initdead 20s (default)",
        "auto_failback on (default)",
        "address 10.0.0.50/24 (written) on eth0 (written), broadcast 10.0.0.255",
        "address 10.0.0.60/24 (from this host's routes (eth0, /24)) on eth0 (from this host's routes (eth0, /24)), broadcast 10.0.0.255 (from the prefix)",
        "resource.d/x arg start|stop|status",
        "ping targets: 10.0.0.254 (deadping 10s default (deadtime); watched only: no ipfail/pingd, they move no groups)",
        "serial: serial links are not supported",
        "2 heartbeat media left: eth0, eth1",
        "watchdog: hb does not arm the watchdog device: a hung node does not reboot itself",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // An address with no interface and no route: found when it starts.
    let cfg_nowhere = load_ha_dir_on(&dir, &host::FakeHost::default()).unwrap();
    let far = check::plan_in(&cfg_nowhere, "a", Path::new("/nonexistent")).render();
    assert!(far.contains("address 10.0.0.60/24 (not given, and no connected route of this host holds it: assumed) on (auto) (not given: the interface whose subnet holds it, when the group starts)"), "{far}");
    let other = check::plan_in(&cfg, "c", Path::new("/nonexistent"));
    assert!(!other.is_a_node);
    assert!(other.render().contains("not one of the nodes"));
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["groups"][0]["resources"][1]["prefix"], 24);
    assert_eq!(json["groups"][0]["resources"][0]["broadcast"], "10.0.0.255");
}
