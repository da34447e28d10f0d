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
