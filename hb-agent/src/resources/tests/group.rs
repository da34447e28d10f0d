//! start_group rolls back on failure; status/adopt.
use super::*;
use crate::resources::{HostnameSpec, ResourceError, ScriptKind, ScriptSpec, hostname};

#[test]
fn failing_middle_resource_rolls_back_the_earlier_ones() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let log = st.path().join("log");
    write_script(
        &st.path().join("resource.d/broken"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\n[ \"$2\" = start ] && {{ echo 'disk not found' >&2; exit 1; }}\nexit 0\n",
            log.display()
        ),
    );
    let group = vec![
        ResourceSpec::Hostname(HostnameSpec {
            name: "nodevir".into(),
        }),
        ip_spec("192.168.32.21", 24, Some("eth0")),
        ResourceSpec::Script(ScriptSpec {
            name: "broken".into(),
            args: vec!["arg1".into()],
            kind: ScriptKind::Heartbeat,
            params: Default::default(),
            timeout: Duration::from_secs(10),
        }),
        ip_spec("192.168.32.22", 24, Some("eth0")),
    ];
    let root_host = hostname::current().unwrap();
    let (err, host_after, status) = lan.node.block_on(true, move || async move {
        nix::unistd::sethostname("node1").unwrap();
        let r = resources(cfg);
        let err = r.start_group("g1", &group).await.unwrap_err();
        let status = r.status_group("g1", &group).await;
        (err, hostname::current().unwrap(), status)
    });
    match &err {
        ResourceError::Start {
            index,
            resource,
            rollback_failures,
            source,
            ..
        } => {
            assert_eq!(*index, 2);
            assert_eq!(resource, "Script broken");
            assert!(rollback_failures.is_empty(), "{err}");
            assert!(
                matches!(**source, ResourceError::ScriptFailed { .. }),
                "{err}"
            );
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("disk not found"), "{err}");
    assert_eq!(host_after, "node1", "hostname rolled back");
    assert!(status.none_in_place(), "{status:?}");
    let v4 = lines(&lan.node, "-4 -o addr show dev eth0");
    assert_eq!(
        v4.len(),
        1,
        "192.168.32.21 rolled back, .22 never added: {v4:?}"
    );
    // The failing script was asked to stop too (it may be half started).
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "arg1 status\narg1 start\narg1 stop\narg1 status\n"
    );
    assert_eq!(hostname::current().unwrap(), root_host);
}

/// What an agent killed between a group's address and its hostname leaves:
/// half a group, told apart from a whole one and from a clean node, and
/// removed by stopping its network identity.
#[test]
fn half_a_group_is_identity_left_and_a_stop_removes_it() {
    let lan = Lan::new();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let group = vec![
        ip_spec("192.168.32.21", 24, Some("eth0")),
        ResourceSpec::Hostname(HostnameSpec {
            name: "nodevir".into(),
        }),
    ];
    let (before, half, whole, after) = lan.node.block_on(true, move || async move {
        nix::unistd::sethostname("node1").unwrap();
        let r = resources(cfg);
        let before = r.status_group("g1", &group).await;
        r.start_group("g1", &group[..1]).await.unwrap();
        let half = r.status_group("g1", &group).await;
        r.start_group("g1", &group).await.unwrap();
        let whole = r.status_group("g1", &group).await;
        // Back to half: the hostname as a fresh boot would have it.
        nix::unistd::sethostname("node1").unwrap();
        let report = r.stop_group("g1", &group).await;
        assert!(report.is_clean(), "{:?}", report.failures);
        (before, half, whole, r.status_group("g1", &group).await)
    });
    assert!(before.none_in_place(), "{before:?}");
    let specs = [
        ip_spec("192.168.32.21", 24, Some("eth0")),
        ResourceSpec::Hostname(HostnameSpec {
            name: "nodevir".into(),
        }),
    ];
    assert!(!before.identity_left(&specs), "{before:?}");
    assert!(half.identity_left(&specs), "{half:?}");
    assert!(
        !whole.identity_left(&specs),
        "adopted, not removed: {whole:?}"
    );
    assert!(after.none_in_place(), "{after:?}");
    let v4 = lines(&lan.node, "-4 -o addr show dev eth0");
    assert_eq!(v4.len(), 1, "the VIP is gone: {v4:?}");
}
