//! The Prometheus endpoint of a running agent, scraped inside its network
//! namespace, against what was really sent: a peer's 1,000 sequence numbers
//! of which 50 never reach the wire (every 20th is withheld, as a
//! deterministic stand-in for netem, which this kernel lacks). The kernel's
//! counters, read through the agent's metrics, must add up exactly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hb_agent::config::{Auth, AuthMethod, fnv1a32};
use hb_common::{siphash::key_words, wire::Heartbeat};
use hb_tests::{
    netns::Netns,
    twohost::{TwoHosts, config},
};

const CLUSTER: &str = "metrics-test";
const SECRET: &str = "metrics test secret";

/// GET /metrics from inside `ns`.
fn scrape(ns: &Netns) -> String {
    ns.run(false, || {
        let mut s = TcpStream::connect("127.0.0.1:9694".parse::<SocketAddr>().unwrap())?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        std::io::Result::Ok(out)
    })
    .unwrap()
    .unwrap_or_default()
}

fn value(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn scraped_counters_add_up_to_what_was_sent() {
    let h = TwoHosts::new(
        "mt",
        &config(
            CLUSTER,
            SECRET,
            "100ms",
            "5s",
            "metrics_addr = \"127.0.0.1:9694\"",
        ),
    )
    .unwrap();
    let (a, b) = (&h.a, &h.b);
    let _agent = h.start_b(&["--no-pin"]).unwrap();
    let t0 = Instant::now();
    while !scrape(b).contains("hb_node_info") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "agent did not serve metrics"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Node a's heartbeats, signed with the cluster key, seq 1..=1000; every
    // 20th (10, 30, ..., 990) withheld: 50 lost, each followed by a later one.
    let auth = Auth::from_secret(AuthMethod::Key, SECRET.as_bytes());
    let (k0, k1) = key_words(&auth.key);
    let sent = a
        .run(false, move || {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
            s.bind_device(Some(b"eth2")).unwrap();
            s.set_broadcast(true).unwrap();
            let to: SocketAddr = "255.255.255.255:694".parse().unwrap();
            let mut sent = 0u64;
            for seq in 1..=1000u64 {
                if seq % 20 == 10 {
                    continue;
                }
                let hb = Heartbeat {
                    cluster_id: fnv1a32(CLUSTER),
                    node_id: fnv1a32("a"),
                    incarnation: 1,
                    seq,
                    keepalive_us: 1000,
                    deadtime_us: 5_000_000,
                    ..Default::default()
                };
                s.send_to(&hb.encode(k0, k1), &to.into()).unwrap();
                sent += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            sent
        })
        .unwrap();
    assert_eq!(sent, 950);

    let t0 = Instant::now();
    let m = loop {
        let m = scrape(b);
        if value(&m, "hb_heartbeats_received_total{peer=\"a\",link=\"eth2\"}") == Some(950.0) {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "received never reached 950:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        value(&m, "hb_heartbeats_lost_total{peer=\"a\",link=\"eth2\"}"),
        Some(50.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "hb_xdp_packets_accepted_total"),
        Some(950.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "hb_peer_up{peer=\"a\",link=\"eth2\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "hb_xdp_packets_dropped_total{reason=\"bad_tag\"}"),
        Some(0.0),
        "{m}"
    );
}
