//! Each rule here was reachable only through a namespace or lab test
//! before the core was pure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{Admin, Done, Op};
use super::{AgentCore, Executor, Input, Now, cluster_spec};
use crate::cluster::{Advert, Cluster, Event, GroupClaim, GroupId, NodeId};
use crate::config::{Auth, Config, Group, Link, LinkKind, Node, Timing, fnv1a32};
use crate::model::{ArpSettings, IpSpec, ResourceSpec, quick};

const DEADTIME: Duration = Duration::from_millis(100);

fn node(name: &str, hb: Option<&str>) -> Node {
    Node {
        name: name.into(),
        id: fnv1a32(name),
        addrs: hb
            .map(|a| ("hb".to_string(), a.parse().unwrap()))
            .into_iter()
            .collect(),
    }
}

/// Node a of nodes a, b on one broadcast link, group `web` (a preferred:
/// an address on eth1), keepalive 10 ms, deadtime 100 ms, initdead 300 ms,
/// as the parsers would build it from a TOML file saying just that.
fn config() -> Config {
    let ms = Duration::from_millis;
    Config {
        cluster: "t".into(),
        cluster_id: fnv1a32("t"),
        udp_port: 694,
        auth: Auth::crc(),
        nodes: vec![node("a", Some("10.0.0.1")), node("b", None)],
        links: vec![Link {
            name: "hb".into(),
            iface: "eth1".into(),
            kind: LinkKind::Bcast,
            port: 694,
        }],
        timing: Timing {
            keepalive: ms(10),
            deadtime: DEADTIME,
            warntime: ms(50),
            initdead: ms(300),
        },
        auto_failback: true,
        groups: vec![Group {
            name: "web".into(),
            id: fnv1a32("web"),
            nodes: vec!["a".into(), "b".into()],
            resources: vec![ResourceSpec::IpAddr(IpSpec {
                addr: "10.0.0.80".parse().unwrap(),
                prefix: 24,
                route_prefix: false,
                iface: Some("eth1".into()),
                broadcast: None,
                label: None,
            })],
            origin: None,
            found: BTreeMap::new(),
            aka: None,
            checks: Vec::new(),
        }],
        ping_nodes: Vec::new(),
        ping_groups: Vec::new(),
        ping_moves_groups: true,
        ping_tie_break: true,
        deadping: None,
        fencing: None,
        arp: ArpSettings::default(),
        control_socket: "/run/hb/hb.sock".into(),
        metrics_addr: None,
        script_dirs: Vec::new(),
        script_timeout: Duration::from_secs(60),
        realtime: false,
        service_lease: false,
        warnings: Vec::new(),
        unset: None,
        source: Vec::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Submit(GroupId, Op),
    HandOver(GroupId),
    QuickStart(String),
    Fence(NodeId),
    RecordEpoch(u32),
    ResumeLease,
}

/// Records what the core asks; answers as configured.
#[derive(Default)]
struct Fake {
    calls: Vec<Call>,
    /// What `hand_over` answers (a group of network identity only).
    hands_over: bool,
    /// Groups with something queued (not idle).
    busy: BTreeSet<GroupId>,
    /// What peers are seen serving.
    served: BTreeSet<GroupId>,
    adverts: Vec<Advert>,
}

impl Executor for Fake {
    fn submit(&mut self, group: GroupId, op: Op) {
        self.calls.push(Call::Submit(group, op));
    }
    fn begin_batch(&mut self) {}
    fn end_batch(&mut self) {}
    fn hand_over(&mut self, group: GroupId) -> bool {
        self.calls.push(Call::HandOver(group));
        self.hands_over
    }
    fn idle(&self, group: GroupId) -> bool {
        !self.busy.contains(&group)
    }
    fn pass_traffic(&mut self, _: GroupId) -> bool {
        true
    }
    fn can_quick_start(&self) -> bool {
        true
    }
    fn quick_start(&mut self, group: &str, _: &quick::Plan) -> Option<Result<quick::Done, String>> {
        self.calls.push(Call::QuickStart(group.to_string()));
        Some(Ok(quick::Done {
            added: true,
            announced: true,
        }))
    }
    fn advertise(&mut self, advert: &Advert) {
        self.adverts.push(advert.clone());
    }
    fn fence(&mut self, node: NodeId, _: &str) {
        self.calls.push(Call::Fence(node));
    }
    fn record_epoch(&mut self, _: &str, epoch: u32) -> Result<(), String> {
        self.calls.push(Call::RecordEpoch(epoch));
        Ok(())
    }
    fn served_by_peers(&mut self) -> BTreeSet<GroupId> {
        self.served.clone()
    }
    fn resume_lease(&mut self) {
        self.calls.push(Call::ResumeLease);
    }
}

impl Fake {
    fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }
}

/// The core of node a, with synthetic time from `t0`.
struct Rig {
    core: AgentCore,
    x: Fake,
    t0: Instant,
    web: GroupId,
    b: NodeId,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(config())
    }

    /// Node a of `cfg`, started.
    fn with(cfg: Config) -> Rig {
        let local = cfg.node("a").unwrap().clone();
        let (web, b) = (cfg.groups[0].id, cfg.node("b").unwrap().id);
        let t0 = Instant::now();
        let now = Now { at: t0, ns: 1 };
        let cluster = Cluster::new(cluster_spec(&cfg, &local), now.ns);
        let mut r = Rig {
            core: AgentCore::new(cfg, local, cluster, now),
            x: Fake::default(),
            t0,
            web,
            b,
        };
        r.core.feed_at_start(Event::Start, now, &mut r.x);
        r
    }

    fn at(&self, ms: u64) -> Now {
        Now {
            at: self.t0 + Duration::from_millis(ms),
            ns: 1 + ms * 1_000_000,
        }
    }

    fn on(&mut self, input: Input, ms: u64) {
        let now = self.at(ms);
        self.core.on(input, now, &mut self.x);
    }

    /// Node a holding web (adopted at start), past initdead.
    fn holding() -> Rig {
        let mut r = Rig::new();
        let now = r.at(0);
        r.core
            .feed_at_start(Event::AdoptHeld { group: r.web }, now, &mut r.x);
        r.on(Input::Tick, 400);
        assert!(r.core.cluster.held_groups().contains(&r.web));
        r.x.take();
        r
    }

    /// Peer b heard on link 1, saying it holds nothing.
    fn peer_up(&mut self, ms: u64) {
        let advert = Advert {
            claims: vec![GroupClaim {
                group: self.web,
                eligible: true,
                ..GroupClaim::default()
            }],
            ..Advert::default()
        };
        let now = self.at(ms);
        let b = self.b;
        self.core
            .feed_at_start(Event::LinkUp { node: b, link: 1 }, now, &mut self.x);
        self.core
            .feed_at_start(Event::PeerAdvert { node: b, advert }, now, &mut self.x);
    }

    fn stop_finished(&mut self, ms: u64) {
        let d = Done::StopFinished {
            group: self.web,
            handed_over: true,
            ok: true,
        };
        self.on(Input::Worker(d), ms);
    }
}

#[test]
fn a_hand_over_is_cleaned_up_once_a_peer_serves() {
    let mut r = Rig::holding();
    r.peer_up(400);
    r.x.hands_over = true;
    r.on(Input::Stop, 410);
    assert_eq!(
        r.x.take(),
        [Call::HandOver(r.web)],
        "withdrawn, not stopped"
    );
    r.on(
        Input::Settle {
            lease_on_hold: None,
        },
        420,
    );
    assert_eq!(r.x.take(), [], "nobody serves it yet: the clean-up waits");
    assert!(r.core.withdrawn(r.web), "status says withdrawn meanwhile");
    assert!(r.core.stopping().contains(&r.web));
    r.x.served.insert(r.web);
    r.on(
        Input::Settle {
            lease_on_hold: None,
        },
        430,
    );
    assert_eq!(r.x.take(), [Call::Submit(r.web, Op::CleanUp)]);
    assert!(!r.core.withdrawn(r.web), "the removal is under way");
}

#[test]
fn a_hand_over_is_cleaned_up_at_deadtime_without_a_taker() {
    let mut r = Rig::holding();
    r.peer_up(400);
    r.x.hands_over = true;
    r.on(Input::Stop, 410);
    r.x.take();
    r.on(
        Input::Settle {
            lease_on_hold: None,
        },
        509,
    );
    assert_eq!(r.x.take(), [], "before the deadtime");
    r.on(
        Input::Settle {
            lease_on_hold: None,
        },
        410 + DEADTIME.as_millis() as u64,
    );
    assert_eq!(r.x.take(), [Call::Submit(r.web, Op::CleanUp)]);
}

#[test]
fn no_live_peer_at_exit_runs_the_clean_ups_at_once() {
    let mut r = Rig::holding();
    r.x.hands_over = true;
    r.on(Input::Stop, 410);
    assert_eq!(
        r.x.take(),
        [Call::HandOver(r.web), Call::Submit(r.web, Op::CleanUp)],
        "nobody to hand over to: removed at once"
    );
    assert!(!r.core.exit, "the removal has not finished");
    r.stop_finished(412);
    r.on(
        Input::Settle {
            lease_on_hold: None,
        },
        412,
    );
    assert!(r.core.exit, "nothing left to wait for");
}

#[test]
fn a_second_stop_exits_at_once() {
    let mut r = Rig::holding();
    r.peer_up(400);
    r.x.hands_over = true;
    r.on(Input::Stop, 410);
    r.stop_finished(411);
    r.on(
        Input::Settle {
            lease_on_hold: None,
        },
        412,
    );
    assert!(!r.core.exit, "waiting for b to serve web");
    r.on(Input::Stop, 413);
    assert!(r.core.exit, "the second signal skips the wait");
}

#[test]
fn a_lapsed_lease_while_holding_releases() {
    let mut r = Rig::holding();
    r.peer_up(400);
    r.on(
        Input::Settle {
            lease_on_hold: Some(false),
        },
        410,
    );
    assert_eq!(r.x.take(), [], "lease running: nothing");
    r.on(
        Input::Settle {
            lease_on_hold: Some(true),
        },
        420,
    );
    assert_eq!(
        r.x.take(),
        [Call::HandOver(r.web), Call::Submit(r.web, Op::Stop)],
        "released as after a hang"
    );
    // Released: the lease may run again.
    let d = Done::Cluster(Event::Released { group: r.web });
    r.on(Input::Worker(d), 425);
    r.on(
        Input::Settle {
            lease_on_hold: Some(true),
        },
        426,
    );
    assert!(r.x.take().contains(&Call::ResumeLease));
}

fn plan() -> quick::Plan {
    quick::Plan {
        iface: "eth1".into(),
        ifindex: 2,
        mac: [2, 0, 0, 0, 0, 1],
        addr: "10.0.0.80".parse().unwrap(),
        prefix: 24,
        broadcast: None,
        label: None,
        flags: 0,
    }
}

#[test]
fn the_quick_step_runs_only_while_the_group_s_worker_is_idle() {
    for busy in [false, true] {
        let mut r = Rig::new();
        r.core.quick_plans = BTreeMap::from([(r.web, plan())]);
        if busy {
            r.x.busy.insert(r.web);
        }
        // Alone past initdead: a takes its own group.
        r.on(Input::Tick, 400);
        // The epoch is recorded after the quick step (a file write off the
        // address's path), before the worker's start.
        let want = match busy {
            false => vec![
                Call::QuickStart("web".into()),
                Call::RecordEpoch(1),
                Call::Submit(r.web, Op::Start),
            ],
            true => vec![Call::RecordEpoch(1), Call::Submit(r.web, Op::Start)],
        };
        assert_eq!(r.x.take(), want, "busy = {busy}");
    }
}

#[test]
fn warnings_name_groups_and_nodes() {
    let mut r = Rig::new();
    r.on(Input::Tick, 400);
    let d = Done::Cluster(Event::AcquireFailed { group: r.web });
    r.on(Input::Worker(d), 401);
    let w = r.core.warnings.back().expect("a warning");
    assert!(w.starts_with("starting group web failed"), "{w}");
    let late = crate::cluster::Warning::LateHeartbeat {
        node: r.b,
        link: r.b,
        gap_ns: 0,
    };
    let text = late.render(&|n| r.core.node_name(n), &|g| r.core.group_name(g));
    assert!(
        text.starts_with(&format!("late heartbeat from node b on link {}", r.b)),
        "{text}"
    );
}

#[test]
fn admin_requests_are_answered_by_the_core() {
    let mut r = Rig::holding();
    let now = r.at(410);
    let resp = r
        .core
        .on(
            Input::Admin {
                cmd: Admin::Standby,
                group: None,
            },
            now,
            &mut r.x,
        )
        .unwrap();
    assert!(resp.ok, "{}", resp.message);
    let resp = r
        .core
        .on(
            Input::Admin {
                cmd: Admin::Standby,
                group: Some("nope".into()),
            },
            now,
            &mut r.x,
        )
        .unwrap();
    assert_eq!(
        (resp.ok, resp.message.as_str()),
        (false, "no group named nope")
    );
}

#[test]
fn admin_requests_name_a_group_by_either_name() {
    // A haresources group: short name, its whole first resource as aka.
    let mut cfg = config();
    cfg.groups[0].name = "10.0.0.80".into();
    cfg.groups[0].aka = Some("IPaddr::10.0.0.80/24/eth1".into());
    let mut r = Rig::with(cfg);
    let now = r.at(410);
    for name in ["10.0.0.80", "IPaddr::10.0.0.80/24/eth1"] {
        let resp = r
            .core
            .on(
                Input::Admin {
                    cmd: Admin::Standby,
                    group: Some(name.into()),
                },
                now,
                &mut r.x,
            )
            .unwrap();
        assert_eq!(
            (resp.ok, resp.message.as_str()),
            (true, "standby: 10.0.0.80"),
            "by {name}: answered with the name status shows"
        );
    }
}

#[test]
fn lapsed_lease_resumes_only_when_nothing_is_held() {
    assert!(!super::may_resume(true, 1));
    assert!(super::may_resume(true, 0));
    assert!(!super::may_resume(false, 0));
}

/// Node a with one exec check on `web` (`when`, fall 1, no hold-down).
fn rig_with_check(when: crate::health::When) -> Rig {
    use crate::health::{CheckKind, CheckSpec, OnFail};
    let mut cfg = config();
    cfg.groups[0].checks = vec![CheckSpec {
        name: "exec:ok".into(),
        kind: CheckKind::Exec {
            command: "ok".into(),
        },
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(10),
        rise: 1,
        fall: 1,
        hold_down: Duration::ZERO,
        when,
        on_fail: OnFail::Failover,
        origin: None,
    }];
    Rig::with(cfg)
}

fn probe(r: &mut Rig, ok: bool, ms: u64) {
    let at = r.at(ms).ns;
    let web = r.web;
    let p = crate::health::Probe {
        ok,
        at,
        latency_ns: 1000,
        detail: if ok { "exit 0" } else { "exit 1" }.into(),
    };
    r.on(
        Input::Check {
            group: web,
            check: 0,
            probe: p,
        },
        ms,
    );
}

#[test]
fn a_group_is_not_taken_before_its_checks_have_passed() {
    let mut r = rig_with_check(crate::health::When::Always);
    r.on(Input::Tick, 400);
    assert!(
        !r.x.take()
            .iter()
            .any(|c| matches!(c, Call::Submit(_, Op::Start))),
        "initdead over, no check result yet: not taken"
    );
    assert!(
        !r.core.cluster.advert().claims[0].eligible,
        "and the heartbeats say so"
    );
    probe(&mut r, true, 410);
    assert!(
        r.x.take().contains(&Call::Submit(r.web, Op::Start)),
        "taken on the first pass"
    );
}

#[test]
fn a_failing_check_hands_the_group_to_the_peer_at_once() {
    let mut r = rig_with_check(crate::health::When::Always);
    probe(&mut r, true, 1);
    let now = r.at(1);
    r.core
        .feed_at_start(Event::AdoptHeld { group: r.web }, now, &mut r.x);
    r.on(Input::Tick, 400);
    r.peer_up(400);
    r.x.take();
    r.x.hands_over = true;
    probe(&mut r, false, 410);
    assert_eq!(
        r.x.take(),
        [Call::HandOver(r.web)],
        "released on the probe's result"
    );
    assert!(!r.core.cluster.advert().claims[0].eligible);
    assert_eq!(r.core.health.groups[&r.web][0].1.transitions, 1);
}

#[test]
fn held_checks_start_with_their_group() {
    let mut r = rig_with_check(crate::health::When::Held);
    assert!(r.core.held_checked().is_empty());
    r.on(Input::Tick, 400);
    assert!(
        r.x.take().contains(&Call::Submit(r.web, Op::Start)),
        "an idle held check does not keep the group from starting"
    );
    r.on(
        Input::Worker(Done::Cluster(Event::Acquired { group: r.web })),
        401,
    );
    assert!(
        r.core.held_checked().contains(&r.web),
        "running once started"
    );
}

#[test]
fn an_adopted_group_is_kept_until_its_checks_report() {
    // An agent restarted on a node serving the group (kill -9, systemd
    // restarts it): no result yet is no reason to hand the group away.
    let mut r = rig_with_check(crate::health::When::Always);
    let now = r.at(0);
    r.core
        .feed_at_start(Event::AdoptHeld { group: r.web }, now, &mut r.x);
    r.peer_up(10);
    r.on(Input::Tick, 400);
    let calls = r.x.take();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::HandOver(_) | Call::Submit(_, Op::Stop))),
        "released before the first result: {calls:?}"
    );
    r.x.hands_over = true;
    probe(&mut r, false, 410);
    assert_eq!(r.x.take(), [Call::HandOver(r.web)], "a failure moves it");
}
