//! A Heartbeat ha.d directory (ha.cf, haresources, authkeys) turned into a
//! Config. Heartbeat-compatible: what Heartbeat refused is refused, what hb
//! does not do is reported as a warning with its line. Like Heartbeat, the
//! reading looks at the host (see `host`): names are resolved, this host's
//! own `ucast` address is skipped, a missing netmask comes from the routes.
use std::path::{Path, PathBuf};

use super::authkeys;
use super::diag::{Diag, has_errors};
use super::hacf::{self, HaCf};
use super::haresources;
use super::host::{self, Host, SystemHost};
use super::model::{
    ArpSettings, Config, DEFAULT_SCRIPT_TIMEOUT, DEFAULT_UDP_PORT, Found, HA_DIR_CLUSTER, Link,
    LinkKind, Node, fnv1a32, heartbeat_initdead,
};
use super::text;
use super::validate::{self, Spot};
use crate::model::{IpSpec, ResourceSpec};

/// Reads an ha.d directory on this host (see [`load_ha_dir_on`]).
/// hb's file of health checks in an ha.d directory (not Heartbeat's: it
/// had none; the README's migration section shows it).
pub const CHECKS_FILE: &str = "checks.toml";

pub fn load_ha_dir(dir: &Path) -> Result<Config, Vec<Diag>> {
    load_ha_dir_on(dir, &SystemHost)
}

/// Reads an ha.d directory as `host` would.
pub fn load_ha_dir_on(dir: &Path, host: &dyn Host) -> Result<Config, Vec<Diag>> {
    let mut diags = Vec::new();
    let mut source = Vec::new();

    // Heartbeat's own docs and tarball spell it `haresource` at times.
    let mut res_path = dir.join("haresources");
    if !res_path.exists() && dir.join("haresource").exists() {
        res_path = dir.join("haresource");
    }

    let hacf_path = dir.join("ha.cf");
    let cf = match text::read(&hacf_path, &mut diags) {
        Some(text) => {
            source.push(hacf_path.clone());
            let cf = hacf::parse(&text, &hacf_path, host, &mut diags);
            // A Pacemaker cluster keeps its resources in the CIB: say that
            // once rather than list what is missing for an haresources one.
            if let (Some((what, line)), false) = (&cf.pacemaker, res_path.exists()) {
                return Err(vec![
                    Diag::error(
                        &hacf_path,
                        format!(
                            "this is a Pacemaker (CRM) cluster (`{what}`, and no haresources): \
                             its resources are in Pacemaker's CIB, which hb does not read; hb \
                             runs Heartbeat clusters that use haresources"
                        ),
                    )
                    .at(*line)
                    .field("crm"),
                ]);
            }
            required_parts(&cf, &hacf_path, &mut diags);
            cf
        }
        None => HaCf::default(),
    };
    let host_addrs = host.addresses();

    let spot = |line: Option<usize>| Spot::new(&hacf_path, line);
    let given =
        |v: Option<(std::time::Duration, usize)>| (v.map(|(d, _)| d), spot(v.map(|(_, l)| l)));
    let timing = validate::timing_with(
        [
            given(cf.keepalive),
            given(cf.deadtime),
            given(cf.warntime),
            given(cf.initdead),
        ],
        ["keepalive", "deadtime", "warntime", "initdead"],
        heartbeat_initdead,
        &mut diags,
    );
    // Unset, Heartbeat's auto_failback was `legacy`, which fails back: so
    // does hb's default (on).

    let udp_port = ports(&cf, &hacf_path, &mut diags);
    let links: Vec<Link> = cf
        .links
        .iter()
        .map(|l| Link {
            name: l.name.clone(),
            iface: l.iface.clone(),
            kind: own_ucast_skipped(l, &host_addrs, &hacf_path, &mut diags),
            port: l.port.map_or(DEFAULT_UDP_PORT, |(p, _)| p),
        })
        .collect();
    let node_names: Vec<String> = cf.nodes.iter().map(|(n, _)| n.clone()).collect();
    let nodes: Vec<Node> = node_names
        .iter()
        .map(|name| Node {
            name: name.clone(),
            id: fnv1a32(name),
            addrs: Default::default(),
        })
        .collect();

    let mut groups = match text::read(&res_path, &mut diags) {
        Some(text) => {
            source.push(res_path.clone());
            haresources::parse(
                &text,
                &res_path,
                &node_names,
                DEFAULT_SCRIPT_TIMEOUT,
                &mut diags,
            )
        }
        None => Vec::new(),
    };
    for g in &mut groups {
        routes_for_unwritten(g, &host_addrs, &mut diags);
    }
    // hb's own file beside haresources: the groups' health checks.
    let checks_path = dir.join(CHECKS_FILE);
    if checks_path.exists()
        && let Some(text) = text::read(&checks_path, &mut diags)
    {
        source.push(checks_path.clone());
        diags.extend(super::toml::load_checks_str(
            &text,
            &checks_path,
            &mut groups,
        ));
    }

    let auth_path = dir.join("authkeys");
    let auth = authkeys::load(&auth_path, &mut diags);
    if auth_path.exists() {
        source.push(auth_path.clone());
    }

    let cluster = cf
        .cluster
        .clone()
        .unwrap_or_else(|| HA_DIR_CLUSTER.to_string());
    let unset = unset(&cf);
    let mut config = Config {
        cluster_id: fnv1a32(&cluster),
        control_socket: PathBuf::from(format!("/run/hb/{cluster}.sock")),
        cluster,
        udp_port,
        // Placeholder when authkeys failed: the Err below is returned instead.
        auth: auth.unwrap_or_else(super::model::Auth::crc),
        nodes,
        links,
        timing,
        auto_failback: cf.auto_failback.unwrap_or(true),
        groups,
        ping_moves_groups: cf.ping_respawned,
        // Deliberate (README, migration): ha.cf has no word for it.
        ping_tie_break: true,
        ping_nodes: cf.ping_nodes,
        ping_groups: cf.ping_groups,
        deadping: cf.deadping.map(|(d, _)| d),
        fencing: cf.fencing.map(|(f, _)| f),
        arp: ArpSettings::default(),
        metrics_addr: None,
        script_dirs: vec![dir.join("resource.d"), PathBuf::from("/etc/init.d")],
        script_timeout: DEFAULT_SCRIPT_TIMEOUT,
        // Heartbeat ran realtime by default; so does hb (SCHED_FIFO sender).
        realtime: cf.realtime.unwrap_or(true),
        // Not a Heartbeat directive: on, as in TOML's default.
        service_lease: true,
        warnings: Vec::new(),
        unset: Some(unset),
        source,
    };

    let node_spots: Vec<Spot> = cf.nodes.iter().map(|(_, l)| spot(Some(*l))).collect();
    let group_spots: Vec<Spot> = config
        .groups
        .iter()
        .map(|g| Spot::new(&res_path, g.origin.as_ref().map(|o| o.line)))
        .collect();
    validate::identities(&config, &node_spots, &group_spots, &mut diags);
    validate::exclusive_claims(&config, &group_spots, &mut diags);
    validate::groups_per_node(&config, &group_spots, &mut diags);
    validate::unique_addresses(&config, &group_spots, &mut diags);

    validate::sort(&mut diags, &[hacf_path, res_path, auth_path, checks_path]);
    if has_errors(&diags) {
        return Err(diags);
    }
    config.warnings = diags;
    Ok(config)
}

/// The settings ha.cf leaves at their default.
fn unset(cf: &HaCf) -> Vec<&'static str> {
    let given = [
        ("keepalive", cf.keepalive.is_some()),
        ("deadtime", cf.deadtime.is_some()),
        ("warntime", cf.warntime.is_some()),
        ("initdead", cf.initdead.is_some()),
        ("deadping", cf.deadping.is_some()),
        ("udpport", cf.udpport.is_some()),
        ("auto_failback", cf.auto_failback.is_some()),
    ];
    given.iter().filter(|(_, g)| !g).map(|(n, _)| *n).collect()
}

/// The one UDP port of every medium. Heartbeat let bcast and ucast take the
/// `udpport` in effect at their first line, and mcast names its own; hb's
/// XDP program matches one port, so media on different ports are refused,
/// naming both lines. A `udpport` after every medium that would use it
/// applies to none of them, in Heartbeat as here: said as a warning.
fn ports(cf: &HaCf, file: &Path, diags: &mut Vec<Diag>) -> u16 {
    let port = |l: &hacf::LinkDraft| l.port.map_or(DEFAULT_UDP_PORT, |(p, _)| p);
    let why = |l: &hacf::LinkDraft| match (l.port, &l.kind) {
        (Some((_, at)), LinkKind::Mcast { .. }) if at == l.line => "its own".to_string(),
        (Some((_, at)), _) => format!("udpport at line {at}"),
        (None, _) => match cf.udpport {
            Some((_, at)) => {
                format!("the default: udpport at line {at} comes after the first line of this kind")
            }
            None => "the default".to_string(),
        },
    };
    let Some(first) = cf.links.first() else {
        return cf.udpport.map_or(DEFAULT_UDP_PORT, |(p, _)| p);
    };
    if let Some(other) = cf.links.iter().find(|l| port(l) != port(first)) {
        diags.push(
            Diag::error(
                file,
                format!(
                    "heartbeat media use different UDP ports: line {} uses {} ({}), line {} uses \
                     {} ({}); hb's XDP program matches one port (Heartbeat applied udpport only \
                     to the media after it): put udpport before every medium, and the same port \
                     on mcast lines",
                    first.line,
                    port(first),
                    why(first),
                    other.line,
                    port(other),
                    why(other)
                ),
            )
            .at(other.line)
            .field("udpport"),
        );
    } else if let Some((p, at)) = cf.udpport
        && !cf
            .links
            .iter()
            .any(|l| l.port.is_some_and(|(_, l)| l == at))
        && p != port(first)
    {
        diags.push(
            Diag::warning(
                file,
                format!(
                    "udpport {p} comes after every medium that uses udpport: Heartbeat applied \
                     it to none of them, and neither does hb (heartbeats use {}; move it \
                     before the media to use {p})",
                    port(first)
                ),
            )
            .at(at)
            .field("udpport"),
        );
    }
    port(first)
}

/// A `ucast` line lists a peer's address; templates write every node's (or
/// this node's own) on every node. Heartbeat sent to its own address too
/// and dropped its own packets; hb does not send to this host at all.
fn own_ucast_skipped(
    l: &hacf::LinkDraft,
    host_addrs: &[host::HostAddr],
    file: &Path,
    diags: &mut Vec<Diag>,
) -> LinkKind {
    let LinkKind::Ucast { peers } = &l.kind else {
        return l.kind.clone();
    };
    let own = |p: &std::net::IpAddr| host_addrs.iter().any(|a| a.addr == *p);
    let kept: Vec<_> = peers.iter().filter(|p| !own(p)).copied().collect();
    for p in peers.iter().filter(|p| own(p)) {
        let left = if kept.is_empty() {
            "; no peer is left: this host sends nothing on this link (it still receives)"
        } else {
            ""
        };
        diags.push(
            Diag::warning(
                file,
                format!("{p} is this host's own address: not sent to from this host{left}"),
            )
            .at(l.line)
            .field("ucast"),
        );
    }
    LinkKind::Ucast { peers: kept }
}

/// An IP resource without a netmask (or interface) takes it from this
/// host's connected route, as Heartbeat's findif did from the routing
/// table; without such a route it keeps the /24 (/64) fallback, with a
/// warning. What this finds when the configuration is read is what `check`
/// shows and the fallback; each start of the group looks again
/// (`IpSpec::route_prefix`), as findif ran at each start.
fn routes_for_unwritten(
    g: &mut super::model::Group,
    host_addrs: &[host::HostAddr],
    diags: &mut Vec<Diag>,
) {
    for (&i, found) in g.found.iter_mut() {
        let ResourceSpec::IpAddr(IpSpec {
            addr,
            prefix,
            iface,
            ..
        }) = &mut g.resources[i]
        else {
            continue;
        };
        // On the written interface when there is one, as findif with a nic.
        let route = host::connected(host_addrs, *addr)
            .filter(|r| iface.as_ref().is_none_or(|i| *i == r.iface));
        match route {
            Some(r) => {
                let route = Found::Route {
                    iface: r.iface.clone(),
                    prefix: r.prefix,
                };
                if found.prefix != Found::Written {
                    *prefix = r.prefix;
                    found.prefix = route.clone();
                }
                if found.iface != Found::Written {
                    found.iface = route;
                }
            }
            None if found.prefix != Found::Written => {
                if let Some(o) = &g.origin {
                    diags.push(
                        Diag::warning(
                            &o.file,
                            format!(
                                "{addr}: no netmask written, and no connected route of this \
                                 host holds it now: each start looks again, and assumes \
                                 /{prefix} if there is still none (Heartbeat took the \
                                 netmask from the routing table; write {addr}/PREFIX)"
                            ),
                        )
                        .at(o.line)
                        .field("IPaddr"),
                    );
                }
            }
            None => {}
        }
    }
}

/// What Heartbeat itself refused to start without.
fn required_parts(cf: &HaCf, file: &Path, diags: &mut Vec<Diag>) {
    if cf.nodes.is_empty() {
        diags.push(
            Diag::error(
                file,
                "no `node` lines: list every cluster node (`node NAME...`)",
            )
            .field("node"),
        );
    }
    if cf.links.is_empty() {
        diags.push(
            Diag::error(
                file,
                "no heartbeat medium: add `bcast IFACE`, `mcast ...` or `ucast IFACE IP` \
                 (Heartbeat refused this too: \"No heartbeat media defined\")",
            )
            .field("bcast"),
        );
    }
}
