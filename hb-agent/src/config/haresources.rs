//! Heartbeat's haresources: one resource group per line,
//! `preferred-node resource resource::arg::arg ...`, backslash continuation.
//!
//! Naming and mapping rules (the README should state them):
//! - the group is named after its first resource, shortly: the address of
//!   an IP or MAC takeover resource, the MAC of one without an address, the
//!   host name, the script's name (`192.168.60.200` for
//!   `IPaddr::192.168.60.200/24/eth0/`, `Remac1`); the whole token is kept
//!   as `aka` (standby/takeover and checks.toml accept it too), and is the
//!   name when two groups' short names clash;
//! - candidates are the preferred node, then every other ha.cf node in
//!   `node` order (Heartbeat lets any node take over);
//! - `IPaddr`/`IPaddr2::ip[/prefix-or-netmask[/iface[/broadcast]]]`, or a bare
//!   address as Heartbeat allows, map to `ResourceSpec::IpAddr`;
//!   an interface written `eth0:1` becomes iface `eth0` with label `eth0:1`;
//! - `MacTakeover::IFACE::MAC::replace|macvlan[=CHILD][::IP/PREFIX[::GATEWAY]]`
//!   maps to `ResourceSpec::Mac`;
//! - `Hostname::NAME` maps to `ResourceSpec::Hostname`;
//! - `ocf:PROVIDER:AGENT::name=value::name=value` maps to an OCF agent
//!   (single colons inside the agent id, `::` between parameters, like the
//!   other resources);
//! - anything else is a Heartbeat resource.d script, `name::arg::arg`.
//!
//! Whether a script exists is left to `check`, so parsing needs no /etc.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::diag::Diag;
use super::model::{Found, Group, IpFound, Origin, fnv1a32};
use super::text::{shorten, strip_comment, warn_odd_spaces, words};
use super::values;
use crate::model::{HostnameSpec, IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec};

pub(crate) fn parse(
    text: &str,
    file: &Path,
    nodes: &[String],
    script_timeout: Duration,
    diags: &mut Vec<Diag>,
) -> Vec<Group> {
    warn_odd_spaces(text, file, diags);
    let mut groups: Vec<Group> = Vec::new();
    for (line, logical) in logical_lines(text) {
        let tokens: Vec<&str> = words(&logical).collect();
        let Some((first, resources)) = tokens.split_first() else {
            continue;
        };
        let node = first.to_ascii_lowercase();
        if !nodes.contains(&node) {
            // No nodes at all: ha.cf was unreadable or had no `node` line, which
            // is reported there; a "not declared" on every line adds nothing.
            if nodes.is_empty() {
                continue;
            }
            let known = nodes.join(", ");
            diags.push(
                Diag::error(
                    file,
                    format!(
                        "`{}` is not a node declared in ha.cf (nodes: {known})",
                        shorten(first, 40)
                    ),
                )
                .at(line)
                .field("node"),
            );
            continue;
        }
        if resources.is_empty() {
            diags.push(
                Diag::error(
                    file,
                    format!("the group for node `{node}` lists no resources"),
                )
                .at(line)
                .field("resources"),
            );
            continue;
        }
        let mut specs = Vec::new();
        let mut found = BTreeMap::new();
        for token in resources {
            match resource(token, script_timeout) {
                Ok(spec) => {
                    if let Some(f) = unwritten(token, &spec) {
                        found.insert(specs.len(), f);
                    }
                    specs.push(spec);
                }
                Err((field, msg)) => {
                    diags.push(Diag::error(file, msg).at(line).field(field));
                }
            }
        }
        if specs.len() != resources.len() {
            continue;
        }
        let name = resources[0].to_string();
        if let Some(other) = groups.iter().find(|g| g.aka.as_ref() == Some(&name)) {
            let at = other.origin.as_ref().map_or(0, |o| o.line);
            diags.push(
                Diag::error(
                    file,
                    format!(
                        "group `{name}` is already defined at line {at} (a group is named after its first resource)"
                    ),
                )
                .at(line)
                .field("group"),
            );
            continue;
        }
        let mut candidates = vec![node.clone()];
        candidates.extend(nodes.iter().filter(|n| **n != node).cloned());
        groups.push(Group {
            id: fnv1a32(&name),
            aka: Some(name),
            name: short_name(&specs[0]),
            nodes: candidates,
            resources: specs,
            origin: Some(Origin {
                file: file.to_path_buf(),
                line,
            }),
            found,
            checks: Vec::new(),
        });
    }
    settle_names(&mut groups, file, diags);
    groups
}

/// The short name of a group whose first resource is `first`: its address
/// for an IP (or a MAC takeover with one), its MAC otherwise, the host name,
/// the script's or OCF agent's name (`Remac1`, `drbddisk`, `IPaddr2` is
/// never one: that is an IP). As Heartbeat's tools showed groups.
fn short_name(first: &ResourceSpec) -> String {
    match first {
        ResourceSpec::IpAddr(ip) => ip.addr.to_string(),
        ResourceSpec::Mac(MacSpec {
            addr: Some((ip, _)),
            ..
        }) => ip.to_string(),
        ResourceSpec::Mac(m) => m
            .mac
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
        ResourceSpec::Hostname(h) => h.name.clone(),
        ResourceSpec::Script(s) => s.name.clone(),
    }
}

/// Groups whose short names clash (two `drbddisk::r0`, `drbddisk::r1`
/// lines) keep their whole first resource as their name, with a warning: a
/// short name must say which group, and must not change with the order of
/// the lines. A group whose short name is its whole first resource
/// (`Remac1`) has no `aka`.
fn settle_names(groups: &mut [Group], file: &Path, diags: &mut Vec<Diag>) {
    let mut by_short: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        by_short
            .entry(g.name.to_ascii_lowercase())
            .or_default()
            .push(i);
    }
    // The whole first resources, as written, before any name changes.
    let whole: Vec<String> = groups
        .iter()
        .map(|g| g.aka.clone().unwrap_or_default().to_ascii_lowercase())
        .collect();
    for (short, at) in by_short {
        // A short name that is another group's whole first resource clashes too.
        let taken = whole
            .iter()
            .enumerate()
            .any(|(i, w)| *w == short && !at.contains(&i));
        if at.len() > 1 || taken {
            let lines: Vec<String> = at
                .iter()
                .filter_map(|&i| groups[i].origin.as_ref().map(|o| o.line.to_string()))
                .collect();
            let mut d = Diag::warning(
                file,
                format!(
                    "the groups at lines {} would all be called `{short}`; each keeps its whole first resource as its name",
                    lines.join(", ")
                ),
            )
            .field("group");
            if let Some(o) = groups[at[0]].origin.as_ref() {
                d = d.at(o.line);
            }
            diags.push(d);
            for &i in &at {
                if let Some(full) = groups[i].aka.take() {
                    groups[i].name = full;
                }
            }
        }
    }
    for g in groups.iter_mut() {
        if g.aka.as_deref() == Some(g.name.as_str()) {
            g.aka = None;
        }
    }
}

/// For an IP resource that leaves out its prefix or interface: which (both
/// `NotFound` until the host's routes are looked at, see hadir).
fn unwritten(token: &str, spec: &ResourceSpec) -> Option<IpFound> {
    let ResourceSpec::IpAddr(IpSpec { iface, .. }) = spec else {
        return None;
    };
    let arg = token.split_once("::").map_or(token, |(_, a)| a);
    let prefix_written = ipaddr_written(arg).is_ok_and(|(_, w)| w);
    let mark = |written: bool| {
        if written {
            Found::Written
        } else {
            Found::NotFound
        }
    };
    (!prefix_written || iface.is_none()).then(|| IpFound {
        prefix: mark(prefix_written),
        iface: mark(iface.is_some()),
    })
}

/// Joins backslash-continued lines; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let content = strip_comment(raw).trim_end();
        let (content, continued) = match content.strip_suffix('\\') {
            Some(head) => (head, true),
            None => (content, false),
        };
        let (start, mut acc) = pending.take().unwrap_or((index + 1, String::new()));
        acc.push(' ');
        acc.push_str(content);
        if continued {
            pending = Some((start, acc));
        } else {
            out.push((start, acc));
        }
    }
    out.extend(pending);
    out
}

type ResErr = (&'static str, String);

/// One haresources token -> ResourceSpec. The error names the resource kind.
pub(crate) fn resource(token: &str, script_timeout: Duration) -> Result<ResourceSpec, ResErr> {
    // A bare address is IPaddr in Heartbeat (`node1 10.0.0.170 httpd`).
    if token
        .split('/')
        .next()
        .is_some_and(|a| values::ip(a).is_ok())
    {
        return ipaddr(token).map_err(|m| ("IPaddr", m));
    }
    let parts: Vec<&str> = token.split("::").collect();
    let (name, args) = (parts[0], &parts[1..]);
    match name {
        "IPaddr" | "IPaddr2" => match args {
            [spec] => ipaddr(spec).map_err(|m| ("IPaddr", m)),
            _ => Err((
                "IPaddr",
                format!("expected `{name}::IP[/PREFIX[/IFACE[/BROADCAST]]]`, found {token:?}"),
            )),
        },
        "MacTakeover" => mac_takeover(args).map_err(|m| ("MacTakeover", m)),
        "Hostname" => match args {
            [host] => values::hostname(host)
                .map(|()| {
                    ResourceSpec::Hostname(HostnameSpec {
                        name: host.to_string(),
                    })
                })
                .map_err(|m| ("Hostname", m)),
            _ => Err((
                "Hostname",
                format!("expected `Hostname::NAME`, found {token:?}"),
            )),
        },
        _ if name.starts_with("ocf:") => ocf(name, args, script_timeout).map_err(|m| ("ocf", m)),
        _ => {
            values::script_name(name).map_err(|m| ("resource", m))?;
            Ok(ResourceSpec::Script(ScriptSpec {
                name: name.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
                kind: ScriptKind::Heartbeat,
                params: BTreeMap::new(),
                timeout: script_timeout,
            }))
        }
    }
}

/// `ip[/prefix[/iface][/broadcast]]`, as Heartbeat read it:
/// - empty fields are skipped (`10.0.30.15//8/eth0:10`, corpus case 12, is
///   prefix 8 on eth0:10; a trailing `/` is nothing). Heartbeat 2/3's ha.d
///   IPaddr wrapper split the argument with sed patterns of the form
///   `s%^$BASEIP/*%%`, which swallow repeated slashes (from the wrapper as
///   shipped; the code index searched for this change holds only Heartbeat
///   1's findif, whose GetAddress split on single slashes);
/// - the field after the prefix is the interface, unless it is numeric: then
///   it is the broadcast address (`IP/MASK/BROADCAST`). Heartbeat's findif
///   (GetAddress: `if (!isdigit(**bcast_arg)) *if_specified = ...`) decided
///   the same way, on the first character;
/// - the prefix may be a length or a dotted netmask (`/255.255.255.0`).
///
/// Returns the resource (with the /24 or /64 fallback when no prefix is
/// written) and whether the prefix and the interface were written.
pub(crate) fn ipaddr_written(spec: &str) -> Result<(ResourceSpec, bool), String> {
    let usage = || format!("expected IP[/PREFIX[/IFACE][/BROADCAST]], found {spec:?}");
    let mut fields = spec.split('/');
    let addr = values::ip(fields.next().unwrap_or(""))?;
    let rest: Vec<&str> = fields.filter(|f| !f.is_empty()).collect();
    let prefix = match rest.first() {
        Some(p) => Some(values::prefix_for(addr, p)?),
        None => None,
    };
    let (nic, bcast) = match rest.get(1..).unwrap_or(&[]) {
        [] => (None, None),
        [b] if b.starts_with(|c: char| c.is_ascii_digit()) => (None, Some(*b)),
        [nic] => (Some(*nic), None),
        [nic, b] if !nic.starts_with(|c: char| c.is_ascii_digit()) => (Some(*nic), Some(*b)),
        _ => return Err(usage()),
    };
    let (iface, label) = match nic {
        Some(nic) => {
            let base = nic.split_once(':').map_or(nic, |(base, _)| base);
            values::iface(base)?;
            (
                Some(base.to_string()),
                (base != nic).then(|| nic.to_string()),
            )
        }
        None => (None, None),
    };
    let broadcast = match bcast {
        Some(b) if addr.is_ipv4() => Some(
            b.parse::<Ipv4Addr>()
                .map_err(|_| format!("expected an IPv4 broadcast address, found {b:?}"))?,
        ),
        Some(_) => return Err("an IPv6 address has no broadcast address".to_string()),
        None => None,
    };
    let spec = ResourceSpec::IpAddr(IpSpec {
        addr,
        prefix: prefix.unwrap_or_else(|| values::default_prefix(addr)),
        route_prefix: prefix.is_none(),
        iface,
        broadcast,
        label,
    });
    Ok((spec, prefix.is_some()))
}

fn ipaddr(spec: &str) -> Result<ResourceSpec, String> {
    ipaddr_written(spec).map(|(r, _)| r)
}

/// `IFACE::MAC::replace|macvlan[=CHILD][::IP/PREFIX[::GATEWAY]]`.
fn mac_takeover(args: &[&str]) -> Result<ResourceSpec, String> {
    let usage = "expected `MacTakeover::IFACE::MAC::replace|macvlan[::IP/PREFIX[::GATEWAY]]`";
    if !(3..=5).contains(&args.len()) {
        return Err(format!("{usage}, found {} argument(s)", args.len()));
    }
    values::iface(args[0])?;
    let mac = values::mac(args[1])?;
    let mode = mac_mode(args[2])?;
    let addr = match args.get(3).filter(|a| !a.is_empty()) {
        Some(a) => Some(values::ip_prefix(a)?),
        None => None,
    };
    let gateway = match args.get(4).filter(|a| !a.is_empty()) {
        Some(g) => Some(values::ip(g)?),
        None => None,
    };
    Ok(ResourceSpec::Mac(MacSpec {
        iface: args[0].to_string(),
        mac,
        mode,
        addr,
        gateway,
    }))
}

fn mac_mode(s: &str) -> Result<MacMode, String> {
    match s.split_once('=') {
        None if s == "replace" => Ok(MacMode::Replace),
        None if s == "macvlan" => Ok(MacMode::Macvlan { child: None }),
        Some(("macvlan", child)) => {
            values::iface(child)?;
            Ok(MacMode::Macvlan {
                child: Some(child.to_string()),
            })
        }
        _ => Err(format!(
            "expected mode replace, macvlan or macvlan=CHILD, found {s:?}"
        )),
    }
}

/// `ocf:PROVIDER:AGENT` plus `name=value` parameters.
fn ocf(head: &str, args: &[&str], timeout: Duration) -> Result<ResourceSpec, String> {
    let ids: Vec<&str> = head.split(':').collect();
    let [_, provider, agent] = ids.as_slice() else {
        return Err(format!(
            "expected `ocf:PROVIDER:AGENT::name=value...`, found {head:?}"
        ));
    };
    values::script_name(provider)?;
    values::script_name(agent)?;
    let mut params = BTreeMap::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!(
                "expected an OCF parameter `name=value`, found {arg:?}"
            ));
        };
        values::env_name(key)?;
        if params.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("OCF parameter `{key}` is given twice"));
        }
    }
    Ok(ResourceSpec::Script(ScriptSpec {
        name: agent.to_string(),
        args: Vec::new(),
        kind: ScriptKind::Ocf {
            provider: provider.to_string(),
        },
        params,
        timeout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const T: Duration = Duration::from_secs(20);

    fn nodes(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn run(text: &str) -> (Vec<Group>, Vec<Diag>) {
        let mut d = Vec::new();
        let g = parse(
            text,
            Path::new("haresources"),
            &nodes(&["node0", "node2", "node1"]),
            T,
            &mut d,
        );
        (g, d)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn groups_and_candidates() {
        let (g, d) = run("node0 Remac1\n# comment\nnode2 Remac2 # trailing\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(g[0].name, "Remac1");
        assert_eq!(g[0].nodes, ["node0", "node2", "node1"]);
        assert_eq!(g[1].nodes, ["node2", "node0", "node1"]);
        assert_eq!(g[1].id, fnv1a32("Remac2"));
        assert_eq!(g[1].origin.as_ref().unwrap().line, 3);
        assert_eq!(
            g[0].resources,
            [ResourceSpec::Script(ScriptSpec {
                name: "Remac1".into(),
                args: vec![],
                kind: ScriptKind::Heartbeat,
                params: BTreeMap::new(),
                timeout: T
            })]
        );
    }

    #[test]
    fn groups_get_short_names_and_answer_to_both() {
        let (g, d) = run(
            "node0 MacTakeover::eth0::00:1E:68:1E:99:5E::macvlan::192.168.32.21/24 Hostname::nodevir\n\
             node2 MacTakeover::eth1::00:1E:68:1E:99:5F::replace\n\
             node1 Hostname::web1 httpd\n\
             node1 Remac1\n\
             node0 drbddisk::r0 Filesystem::/dev/drbd0::/data\n\
             node2 drbddisk::r1 Filesystem::/dev/drbd1::/data1\n",
        );
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "192.168.32.21",
                "00:1E:68:1E:99:5F",
                "web1",
                "Remac1",
                "drbddisk::r0",
                "drbddisk::r1"
            ]
        );
        let full = "MacTakeover::eth0::00:1E:68:1E:99:5E::macvlan::192.168.32.21/24";
        assert_eq!(g[0].aka.as_deref(), Some(full));
        assert!(g[0].answers_to(full) && g[0].answers_to("192.168.32.21"));
        assert_eq!(g[0].id, fnv1a32(full), "the id follows the whole resource");
        assert_eq!(g[0].key(), full, "and so does what its state is kept under");
        assert!(g[1].answers_to("00:1e:68:1e:99:5f"), "a MAC in either case");
        assert_eq!(g[4].key(), "drbddisk::r0", "a clash changes no key");
        assert_eq!(g[3].aka, None, "Remac1 is short already");
        // The two drbddisk lines would both be `drbddisk`: whole names, said.
        assert_eq!((g[4].aka.as_deref(), g[5].aka.as_deref()), (None, None));
        assert_eq!(d.len(), 1, "{d:?}");
        let w = d[0].to_string();
        assert!(
            w.contains("lines 5, 6 would all be called `drbddisk`"),
            "{w}"
        );
        assert!(!d[0].is_error(), "a warning: {w}");
    }

    #[test]
    fn tutorial_general_form() {
        let (g, d) = run(
            "node1 IPaddr::192.168.60.200/24/eth0/  Filesystem::/dev/sdb5::/webdata::ext3  httpd tomcat\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(g[0].name, "192.168.60.200");
        assert_eq!(g[0].aka.as_deref(), Some("IPaddr::192.168.60.200/24/eth0/"));
        assert_eq!(g[0].id, fnv1a32("IPaddr::192.168.60.200/24/eth0/"));
        assert_eq!(g[0].nodes, ["node1", "node0", "node2"]);
        assert_eq!(
            g[0].resources[0],
            ResourceSpec::IpAddr(IpSpec {
                addr: ip("192.168.60.200"),
                prefix: 24,
                route_prefix: false,
                iface: Some("eth0".into()),
                broadcast: None,
                label: None
            })
        );
        let ResourceSpec::Script(ScriptSpec { name, args, .. }) = &g[0].resources[1] else {
            panic!()
        };
        assert_eq!(
            (name.as_str(), args.as_slice()),
            (
                "Filesystem",
                &["/dev/sdb5".to_string(), "/webdata".into(), "ext3".into()][..]
            )
        );
        assert_eq!(g[0].resources.len(), 4);
    }

    #[test]
    fn continuation_lines() {
        let (g, d) = run("node0 IPaddr::10.0.0.5 \\\n   httpd\nnode2 x\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(g[0].resources.len(), 2);
        assert_eq!(g[1].origin.as_ref().unwrap().line, 3);
    }

    #[test]
    fn ipaddr_forms() {
        let r = |t| resource(t, T);
        assert_eq!(
            r("IPaddr::1.2.3.4"),
            Ok(ResourceSpec::IpAddr(IpSpec {
                addr: ip("1.2.3.4"),
                prefix: 24,
                route_prefix: true,
                iface: None,
                broadcast: None,
                label: None
            }))
        );
        assert_eq!(
            r("IPaddr2::10.1.1.1/255.255.0.0/eth0:1/10.1.255.255"),
            Ok(ResourceSpec::IpAddr(IpSpec {
                addr: ip("10.1.1.1"),
                prefix: 16,
                route_prefix: false,
                iface: Some("eth0".into()),
                broadcast: Some("10.1.255.255".parse().unwrap()),
                label: Some("eth0:1".into())
            }))
        );
        assert_eq!(
            r("10.0.0.170"),
            Ok(ResourceSpec::IpAddr(IpSpec {
                addr: ip("10.0.0.170"),
                prefix: 24,
                route_prefix: true,
                iface: None,
                broadcast: None,
                label: None
            }))
        );
        assert!(r("IPaddr::1.2.3.4/33").is_err());
        assert!(r("IPaddr::1.2.3.4/24/eth0/x").is_err());
        assert!(r("IPaddr::1.2.3.4/24/eth0/1.2.3.255/x").is_err());
        assert!(r("IPaddr::1.2.3.4/24/1.2.3.255/eth0").is_err());
        assert!(r("IPaddr::1.2.3.4::extra").is_err());
        assert!(r("IPaddr::nohost/24").is_err());
    }

    #[test]
    fn ipaddr_empty_fields_are_skipped_as_heartbeat() {
        // Corpus case 12: an empty field between slashes.
        assert_eq!(
            resource("IPaddr::10.0.30.15//8/eth0:10", T),
            Ok(ResourceSpec::IpAddr(IpSpec {
                addr: ip("10.0.30.15"),
                prefix: 8,
                route_prefix: false,
                iface: Some("eth0".into()),
                broadcast: None,
                label: Some("eth0:10".into())
            }))
        );
        assert_eq!(
            ipaddr_written("192.168.2.250/24/eth0:1/").map(|(_, w)| w),
            Ok(true)
        );
        assert_eq!(ipaddr_written("172.20.10.15").map(|(_, w)| w), Ok(false));
    }

    #[test]
    fn ipaddr_numeric_third_field_is_the_broadcast() {
        assert_eq!(
            resource("IPaddr::10.0.0.5/24/10.0.0.255", T),
            Ok(ResourceSpec::IpAddr(IpSpec {
                addr: ip("10.0.0.5"),
                prefix: 24,
                route_prefix: false,
                iface: None,
                broadcast: Some("10.0.0.255".parse().unwrap()),
                label: None
            }))
        );
    }

    #[test]
    fn mac_takeover_forms() {
        let r = |t| resource(t, T);
        assert_eq!(
            r("MacTakeover::eth0::00:1E:68:1E:99:5E::replace::192.168.32.21/24::192.168.32.254"),
            Ok(ResourceSpec::Mac(MacSpec {
                iface: "eth0".into(),
                mac: [0x00, 0x1e, 0x68, 0x1e, 0x99, 0x5e],
                mode: MacMode::Replace,
                addr: Some((ip("192.168.32.21"), 24)),
                gateway: Some(ip("192.168.32.254")),
            }))
        );
        assert_eq!(
            r("MacTakeover::eth0::00:1E:68:1E:88:5E::macvlan=hbv2"),
            Ok(ResourceSpec::Mac(MacSpec {
                iface: "eth0".into(),
                mac: [0x00, 0x1e, 0x68, 0x1e, 0x88, 0x5e],
                mode: MacMode::Macvlan {
                    child: Some("hbv2".into())
                },
                addr: None,
                gateway: None,
            }))
        );
        assert!(r("MacTakeover::eth0::00:1E:68:1E:99:5E").is_err());
        assert!(r("MacTakeover::eth0::00:1E:68:1E:99:5E::swap").is_err());
        assert_eq!(
            r("MacTakeover::eth0::01:1E:68:1E:99:5E::replace")
                .unwrap_err()
                .0,
            "MacTakeover"
        );
    }

    #[test]
    fn hostname_and_ocf() {
        assert_eq!(
            resource("Hostname::nodevir", T),
            Ok(ResourceSpec::Hostname(HostnameSpec {
                name: "nodevir".into()
            }))
        );
        assert!(resource("Hostname::a::b", T).is_err());
        let ocf = resource("ocf:heartbeat:IPaddr2::ip=10.0.0.9::cidr_netmask=24", T).unwrap();
        let ResourceSpec::Script(ScriptSpec {
            name, kind, params, ..
        }) = ocf
        else {
            panic!()
        };
        assert_eq!(name, "IPaddr2");
        assert_eq!(
            kind,
            ScriptKind::Ocf {
                provider: "heartbeat".into()
            }
        );
        assert_eq!(params["ip"], "10.0.0.9");
        assert_eq!(params["cidr_netmask"], "24");
        assert!(resource("ocf:heartbeat::ip=1", T).is_err());
        assert!(resource("ocf:heartbeat:IPaddr2::novalue", T).is_err());
        assert!(resource("../evil", T).is_err());
    }

    #[test]
    fn no_declared_nodes_gives_no_error_per_line() {
        let mut d = Vec::new();
        let g = parse(
            "node0 Remac1\nnode2 Remac2\n",
            Path::new("haresources"),
            &[],
            Duration::from_secs(20),
            &mut d,
        );
        assert!(g.is_empty());
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn errors_name_the_line() {
        let (g, d) =
            run("node9 Remac1\nnode0\nnode0 Hostname::bad_name\nnode0 Remac1\nnode1 Remac1\n");
        assert_eq!(g.len(), 1);
        let shown: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown,
            [
                "haresources:1: node: `node9` is not a node declared in ha.cf (nodes: node0, node2, node1)",
                "haresources:2: resources: the group for node `node0` lists no resources",
                "haresources:3: Hostname: expected a host name (letters, digits, '-', dots; at most 64 characters), found \"bad_name\"",
                "haresources:5: group: group `Remac1` is already defined at line 4 (a group is named after its first resource)",
            ]
        );
    }
}
