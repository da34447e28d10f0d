//! Hostname inside a private UTS namespace: set, restored, and the stack rule.
use super::*;
use crate::resources::{HostnameSpec, hostname};

fn host(name: &str) -> ResourceSpec {
    ResourceSpec::Hostname(HostnameSpec { name: name.into() })
}

#[test]
fn hostname_set_restored_and_stacked() {
    let root_before = hostname::current().unwrap();
    let ns = netns();
    let st = tempdir();
    let cfg = config(&st, quick_arp());
    let seen = ns.block_on(true, move || async move {
        nix::unistd::sethostname("node1").expect("sethostname in the private UTS namespace");
        let mut seen = Vec::new();
        let mut note = |what: &str| seen.push(format!("{what}={}", hostname::current().unwrap()));
        let r = resources(cfg.clone());
        let (g1, g2) = (vec![host("nodevir")], vec![host("nodevir2")]);

        r.start_group("g1", &g1).await.unwrap();
        note("g1");
        assert!(r.status_group("g1", &g1).await.all_in_place());
        r.start_group("g1", &g1).await.unwrap();
        note("g1 again");
        r.start_group("g2", &g2).await.unwrap();
        note("g1+g2");
        assert!(
            r.status_group("g1", &g1).await.all_in_place(),
            "shadowed but held"
        );
        r.stop_group("g2", &g2)
            .await
            .failures
            .is_empty()
            .then_some(())
            .unwrap();
        note("-g2");
        r.stop_group("g1", &g1)
            .await
            .failures
            .is_empty()
            .then_some(())
            .unwrap();
        note("-g1");

        // Out of order: releasing the older group first changes nothing
        // visible; the node's own name comes back with the last one.
        r.start_group("g1", &g1).await.unwrap();
        r.start_group("g2", &g2).await.unwrap();
        note("g1+g2");
        assert!(r.stop_group("g1", &g1).await.is_clean());
        note("-g1");
        // Agent restart in between: the stack is in the state files.
        drop(r);
        let r = resources(cfg.clone());
        assert!(r.status_group("g2", &g2).await.all_in_place());
        assert!(r.stop_group("g2", &g2).await.is_clean());
        note("-g2");
        let again = r.stop_group("g2", &g2).await;
        assert!(again.is_clean());
        note("-g2 again");
        seen
    });
    assert_eq!(
        seen,
        [
            "g1=nodevir",
            "g1 again=nodevir",
            "g1+g2=nodevir2",
            "-g2=nodevir",
            "-g1=node1",
            "g1+g2=nodevir2",
            "-g1=nodevir2",
            "-g2=node1",
            "-g2 again=node1",
        ]
    );
    assert_eq!(
        hostname::current().unwrap(),
        root_before,
        "the machine's hostname is untouched"
    );
}
