//! The tutorial's own resource script, node1's `Remac1`, run by hb as
//! Heartbeat ran it (`Remac1 start|stop`, looked up in resource.d) in a
//! network and UTS namespace of its own: the interface takes the virtual
//! MAC, the VIP, the default route and the hostname, and gets node1's back.
//!
//! The one change to the file: the web page's U+00A0 no-break spaces become
//! plain spaces (bash does not read U+00A0 as a blank, so the printed copy
//! cannot run under Heartbeat either; see hb-agent/fixtures/README.md).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hb_agent::resources::{
    Resources, ResourcesConfig,
    spec::{ResourceSpec, ScriptKind, ScriptSpec},
};
use hb_tests::netns::{Netns, veth};

fn hostname_in_this_thread() -> String {
    let o = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn seed_remac1_takes_and_restores_node1_identity() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hb-agent/fixtures/seed-fixed/node1/resource.d/Remac1");
    let text = std::fs::read_to_string(&fixture)
        .unwrap()
        .replace('\u{a0}', " ");
    let dir = std::env::temp_dir().join(hb_tests::netns::unique("remac"));
    let rd = dir.join("resource.d");
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::write(rd.join("Remac1"), text).unwrap();
    std::fs::set_permissions(rd.join("Remac1"), std::fs::Permissions::from_mode(0o755)).unwrap();

    let node = Netns::new("rn").unwrap();
    let gw = Netns::new("rg").unwrap();
    veth(
        &node,
        "eth0",
        Some("192.168.32.31/24"),
        &gw,
        "eth0",
        Some("192.168.32.254/24"),
    )
    .unwrap();
    node.exec(&["ip", "link", "set", "eth0", "address", "00:1e:68:1e:19:5e"])
        .unwrap();

    let (rd2, state) = (rd.clone(), dir.join("state"));
    let (held, hosts) = node
        // A UTS namespace of its own for the thread and the scripts it starts.
        .run(true, move || {
            std::process::Command::new("hostname")
                .arg("node1")
                .status()
                .unwrap();
            let before = hostname_in_this_thread();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let res = Resources::new(ResourcesConfig {
                    script_dirs: vec![rd2],
                    state_dir: state,
                    ..Default::default()
                })
                .unwrap();
                let group = [ResourceSpec::Script(ScriptSpec {
                    name: "Remac1".into(),
                    args: vec![],
                    kind: ScriptKind::Heartbeat,
                    params: BTreeMap::new(),
                    timeout: Duration::from_secs(20),
                })];
                res.start_group("Remac1", &group)
                    .await
                    .expect("Remac1 start");
                let during = hostname_in_this_thread();
                let held = std::process::Command::new("ip")
                    .args(["-o", "addr", "show", "dev", "eth0"])
                    .output()
                    .unwrap();
                let held_link = std::process::Command::new("ip")
                    .args(["-o", "link", "show", "dev", "eth0"])
                    .output()
                    .unwrap();
                let routes = std::process::Command::new("ip")
                    .args(["route"])
                    .output()
                    .unwrap();
                let stop = res.stop_group("Remac1", &group).await;
                assert!(stop.is_clean(), "{stop:?}");
                let after = hostname_in_this_thread();
                (
                    format!(
                        "{}{}{}",
                        String::from_utf8_lossy(&held.stdout),
                        String::from_utf8_lossy(&held_link.stdout),
                        String::from_utf8_lossy(&routes.stdout)
                    ),
                    (before, during, after),
                )
            })
        })
        .unwrap();
    assert!(
        held.contains("inet 192.168.32.21/24 brd 192.168.32.255"),
        "{held}"
    );
    assert!(
        held.to_lowercase().contains("link/ether 00:1e:68:1e:99:5e"),
        "{held}"
    );
    assert!(held.contains("default via 192.168.32.254"), "{held}");
    assert_eq!(
        hosts,
        (
            "node1".to_string(),
            "nodevir".to_string(),
            "node1".to_string()
        )
    );
    let addr = node
        .exec(&["ip", "-o", "addr", "show", "dev", "eth0"])
        .unwrap();
    let link = node
        .exec(&["ip", "-o", "link", "show", "dev", "eth0"])
        .unwrap();
    assert!(addr.contains("inet 192.168.32.31/24"), "{addr}");
    assert!(!addr.contains("192.168.32.21"), "{addr}");
    assert!(link.to_lowercase().contains("00:1e:68:1e:19:5e"), "{link}");
    let _ = std::fs::remove_dir_all(&dir);
}
