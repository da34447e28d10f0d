//! What the configuration targets share: a pretend host, a scratch ha.d
//! directory, and the checks every accepted configuration must pass.
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hb_agent::config::host::{Host, HostAddr};
use hb_agent::config::{AuthMethod, Config, Diag, Severity, load_ha_dir_on};
use hb_agent::rules::cluster_spec;
use hb_core::cluster::MAX_GROUPS;

/// The seed's node1 directory (hb-agent/fixtures/seed/node1): what a
/// target puts in the files it does not fuzz.
pub const SEED_HACF: &str = include_str!("../../hb-agent/fixtures/seed/node1/ha.cf");
pub const SEED_HARESOURCES: &str = include_str!("../../hb-agent/fixtures/seed/node1/haresources");
pub const SEED_AUTHKEYS: &str = include_str!("../../hb-agent/fixtures/seed/node1/authkeys");

/// Resolves names without DNS: an address is itself, `*.invalid` fails,
/// any other name gets an address of 10.0.0.0/8 from its hash. The host
/// has loopback, 192.168.32.31/24 on eth0 and 10.160.100.31/24 on eth2 (the
/// seed's node1).
pub struct FakeHost;

impl Host for FakeHost {
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(a) = name.parse() {
            return Ok(vec![a]);
        }
        if name.ends_with(".invalid") || name.is_empty() {
            return Err(format!("`{name}` does not resolve"));
        }
        let h = hb_agent::config::fnv1a32(name);
        Ok(vec![IpAddr::from([
            10,
            (h >> 16) as u8,
            (h >> 8) as u8,
            h as u8,
        ])])
    }

    fn addresses(&self) -> Vec<HostAddr> {
        let a = |iface: &str, addr: [u8; 4], prefix| HostAddr {
            iface: iface.into(),
            addr: IpAddr::from(addr),
            prefix,
        };
        vec![
            a("lo", [127, 0, 0, 1], 8),
            a("eth0", [192, 168, 32, 31], 24),
            a("eth2", [10, 160, 100, 31], 24),
        ]
    }
}

/// A directory of this process's own (libFuzzer may run several).
pub fn scratch(target: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("hb-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Splits an input into the file under test and up to two more, at NUL
/// bytes: `tested \0 first-other \0 second-other`.
pub fn sections(data: &[u8]) -> [Option<&[u8]>; 3] {
    let mut it = data.splitn(3, |&b| b == 0);
    [it.next(), it.next(), it.next()]
}

/// Writes ha.cf, haresources and authkeys (mode 600) into `dir`, then reads
/// the directory as the agent does and checks the outcome.
pub fn load_dir(dir: &Path, hacf: &[u8], haresources: &[u8], authkeys: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join("ha.cf"), hacf).unwrap();
    std::fs::write(dir.join("haresources"), haresources).unwrap();
    let auth = dir.join("authkeys");
    std::fs::write(&auth, authkeys).unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    let files = [dir.join("ha.cf"), dir.join("haresources"), auth];
    let lines = [hacf, haresources, authkeys].map(|t| t.split(|&b| b == b'\n').count());
    let got = load_ha_dir_on(dir, &FakeHost);
    check_diags(&got, &files, &lines);
    if let Ok(cfg) = got {
        accepted(&cfg);
    }
}

/// Diagnostics name one of the files read and a line inside it; a refusal
/// carries at least one error, an accepted configuration none.
pub fn check_diags(got: &Result<Config, Vec<Diag>>, files: &[PathBuf], lines: &[usize]) {
    let diags = match got {
        Ok(cfg) => {
            assert!(
                cfg.warnings.iter().all(|d| d.severity == Severity::Warning),
                "an accepted configuration carries an error: {:?}",
                cfg.warnings
            );
            &cfg.warnings
        }
        Err(diags) => {
            assert!(
                diags.iter().any(|d| d.severity == Severity::Error),
                "refused without an error: {diags:?}"
            );
            diags
        }
    };
    for d in diags {
        let _ = d.to_string();
        let Some(i) = files.iter().position(|f| *f == d.file) else {
            panic!("diagnostic for a file not read: {d:?}");
        };
        if let Some(line) = d.line {
            assert!(
                (1..=lines[i]).contains(&line),
                "line {line} outside {} ({} lines): {d:?}",
                d.file.display(),
                lines[i]
            );
        }
    }
}

/// What the agent relies on in a configuration the parsers accepted: each
/// node's cluster spec validates (the state machine's contract), node and
/// group ids are unique, no node is a candidate of more groups than a
/// heartbeat carries, every group names configured nodes, the resource
/// facts the agent asks for can be computed, and the key is authenticated
/// exactly when its method is not crc (crc: no key).
pub fn accepted(cfg: &Config) {
    assert!(!cfg.nodes.is_empty(), "accepted without nodes");
    for (i, n) in cfg.nodes.iter().enumerate() {
        assert!(
            cfg.nodes[..i].iter().all(|m| m.id != n.id),
            "two nodes with id {}: {:?}",
            n.id,
            cfg.nodes
        );
        let spec = cluster_spec(cfg, n);
        if let Err(e) = spec.validate() {
            panic!(
                "accepted, but node {}'s cluster spec is invalid: {e}\n{spec:?}",
                n.name
            );
        }
        assert!(spec.groups.len() <= MAX_GROUPS);
        assert!(cfg.local_node(&n.name).is_ok());
    }
    for (i, g) in cfg.groups.iter().enumerate() {
        assert!(
            cfg.groups[..i].iter().all(|h| h.id != g.id),
            "two groups with id {}",
            g.id
        );
        assert!(!g.nodes.is_empty(), "group {} without candidates", g.name);
        for n in &g.nodes {
            assert!(
                cfg.node(n).is_some(),
                "group {} names unknown node {n}",
                g.name
            );
        }
        let f = g.facts();
        let _ = (
            f.service_addresses(),
            f.addresses(),
            f.withdrawable_addresses(),
            f.host_interfaces(),
            f.service_interfaces(),
            f.gateways(),
            f.quick_candidate().is_ok(),
        );
    }
    assert!(cfg.timing.deadtime > cfg.timing.keepalive);
    let crc = cfg.auth.method == AuthMethod::Crc;
    assert_eq!(cfg.auth.authenticated, !crc, "{:?}", cfg.auth);
    if crc {
        assert_eq!(cfg.auth.key, [0; 16], "crc with a key");
    } else {
        assert_ne!(cfg.auth.key, [0; 16], "an authenticated all-zero key");
    }
}
