//! Turns the parsed TOML (`schema`) into a Config, checking every value and
//! collecting every error with its line.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::toml::Spanned;

use super::LineIndex;
use super::schema::*;
use crate::config::diag::Diag;
use crate::config::model::{
    ArpSettings, Auth, AuthMethod, Config, DEFAULT_FENCING_TIMEOUT, DEFAULT_SCRIPT_TIMEOUT,
    DEFAULT_UDP_PORT, Fencing, Group, Link, LinkKind, Node, Origin, PingGroup, Timing, fnv1a32,
};
use crate::config::validate::{self, Spot};
use crate::config::values;

pub(super) struct Build<'a> {
    pub(super) file: &'a Path,
    pub(super) lines: LineIndex,
    pub(super) diags: Vec<Diag>,
}

impl Build<'_> {
    pub(super) fn spot(&self, span: Range<usize>) -> Spot {
        Spot::new(self.file, Some(self.lines.line(span.start)))
    }

    pub(super) fn error<T>(&mut self, value: &Spanned<T>, field: &str, message: impl Into<String>) {
        let d = self.spot(value.span()).error(field, message);
        self.diags.push(d);
    }

    pub(super) fn warn<T>(&mut self, value: &Spanned<T>, field: &str, message: impl Into<String>) {
        let d = self.spot(value.span()).warning(field, message);
        self.diags.push(d);
    }

    pub(super) fn origin(&self, span: Range<usize>) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            line: self.lines.line(span.start),
        }
    }

    pub(super) fn file_error(&mut self, field: &str, message: impl Into<String>) {
        self.diags
            .push(Diag::error(self.file, message).field(field));
    }

    /// Parses a spanned string, reporting failures at its line.
    pub(super) fn parse<T>(
        &mut self,
        value: &Spanned<String>,
        field: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match f(value.get_ref()) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.error(value, field, msg);
                None
            }
        }
    }

    pub(super) fn positive(
        &mut self,
        value: &Option<Spanned<Dur>>,
        field: &str,
        default: Duration,
    ) -> Duration {
        match value {
            Some(v) if v.get_ref().0.is_zero() => {
                self.error(v, field, "must be greater than zero");
                default
            }
            Some(v) => v.get_ref().0,
            None => default,
        }
    }

    pub(super) fn config(&mut self, f: FileT) -> Config {
        let cluster = f.cluster.get_ref().clone();
        self.parse(&f.cluster, "cluster", |s| values::name("cluster", s));
        let udp_port = match &f.udp_port {
            Some(p) if *p.get_ref() == 0 => {
                self.error(p, "udp_port", "expected a UDP port 1-65535, found 0");
                DEFAULT_UDP_PORT
            }
            Some(p) => *p.get_ref(),
            None => DEFAULT_UDP_PORT,
        };
        let script_timeout =
            self.positive(&f.script_timeout, "script_timeout", DEFAULT_SCRIPT_TIMEOUT);
        let auth = self.auth(&f.auth);
        let links = self.links(&f.link, &f.node, udp_port);
        let (nodes, node_spots) = self.nodes(&f.node, &links);
        let timing = self.timing(f.timing.as_ref());
        let (groups, group_spots) = self.groups(&f.group, &nodes, script_timeout);
        let ping_nodes = self.ping_nodes(&f.ping_nodes);
        let ping_groups = self.ping_groups(&f.ping_group);
        let deadping = match f.timing.as_ref().and_then(|t| t.deadping.as_ref()) {
            Some(d) if d.get_ref().0.is_zero() => {
                self.error(d, "timing.deadping", "must be greater than zero");
                None
            }
            d => d.map(|d| d.get_ref().0),
        };
        let fencing = f.fencing.as_ref().map(|fe| self.fencing(fe));
        let arp = self.arp(f.arp.as_ref());
        let control_socket = self.control_socket(f.control_socket.as_ref(), &cluster);
        let metrics_addr = f.metrics_addr.as_ref().and_then(|m| {
            self.parse(m, "metrics_addr", |s| {
                s.parse::<SocketAddr>().map_err(|_| {
                    format!("expected an address:port such as 127.0.0.1:9694, found {s:?}")
                })
            })
        });
        let script_dirs = self.script_dirs(f.script_dirs.as_ref());
        let unset = unset(&f);
        let ping_tie_break = match &f.two_node_tie_break {
            None => true,
            Some(v) => match v.get_ref().as_str() {
                "ping" => true,
                "none" => false,
                other => {
                    self.error(
                        v,
                        "two_node_tie_break",
                        format!("expected \"ping\" or \"none\", found {other:?}"),
                    );
                    true
                }
            },
        };

        let config = Config {
            cluster_id: f.cluster_id.unwrap_or_else(|| fnv1a32(&cluster)),
            cluster,
            udp_port,
            auth,
            nodes,
            links,
            timing,
            auto_failback: f.auto_failback.unwrap_or(true),
            groups,
            ping_nodes,
            ping_groups,
            deadping,
            fencing,
            arp,
            control_socket,
            metrics_addr,
            script_dirs,
            script_timeout,
            // As Heartbeat: the sender runs SCHED_FIFO unless told otherwise.
            realtime: f.realtime.unwrap_or(true),
            service_lease: f.service_lease.unwrap_or(true),
            ping_moves_groups: true,
            ping_tie_break,
            warnings: Vec::new(),
            unset: Some(unset),
            source: Vec::new(),
        };
        validate::identities(&config, &node_spots, &group_spots, &mut self.diags);
        validate::exclusive_claims(&config, &group_spots, &mut self.diags);
        validate::groups_per_node(&config, &group_spots, &mut self.diags);
        validate::unique_addresses(&config, &group_spots, &mut self.diags);
        config
    }

    /// `method` = crc | sha1 | md5 | key (default key). sha1/md5 derive the
    /// same key as an authkeys file with that secret, so TOML and ha.d nodes
    /// can share a cluster.
    pub(super) fn auth(&mut self, a: &Spanned<AuthT>) -> Auth {
        let t = a.get_ref();
        let method = match t.method.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("key") => AuthMethod::Key,
            Some("crc") => AuthMethod::Crc,
            Some("sha1") => AuthMethod::Sha1,
            Some("md5") => AuthMethod::Md5,
            Some(other) => {
                let m = t.method.as_ref().expect("matched Some");
                self.error(
                    m,
                    "auth.method",
                    format!("expected \"key\", \"sha1\", \"md5\" or \"crc\", found {other:?}"),
                );
                return Auth::crc();
            }
        };
        let not_with = |b: &mut Self, v: &Option<Spanned<String>>, field: &str, what: &str| {
            if let Some(v) = v {
                b.error(v, field, format!("not used with {what}"));
            }
        };
        let secret = |b: &mut Self, s: &Spanned<String>| {
            if s.get_ref().is_empty() {
                b.error(s, "auth.secret", "must not be empty");
            }
            s.get_ref().as_bytes().to_vec()
        };
        match method {
            AuthMethod::Crc => {
                not_with(self, &t.secret, "auth.secret", "method = \"crc\"");
                not_with(self, &t.key, "auth.key", "method = \"crc\"");
                self.warn(
                    a,
                    "auth",
                    "heartbeats are NOT authenticated (auth.method = \"crc\")",
                );
                Auth::crc()
            }
            AuthMethod::Sha1 | AuthMethod::Md5 => {
                not_with(
                    self,
                    &t.key,
                    "auth.key",
                    "method sha1/md5 (they take a secret)",
                );
                match &t.secret {
                    Some(s) => Auth::from_secret(method, &secret(self, s)),
                    None => {
                        self.error(a, "auth.secret", "method sha1/md5 needs a secret");
                        Auth::crc()
                    }
                }
            }
            AuthMethod::Key => match (&t.secret, &t.key) {
                (Some(s), None) => Auth::from_secret(AuthMethod::Key, &secret(self, s)),
                (None, Some(k)) => match self.parse(k, "auth.key", hex_key) {
                    Some(key) => Auth {
                        method: AuthMethod::Key,
                        key,
                        authenticated: true,
                    },
                    None => Auth::crc(),
                },
                (Some(_), Some(k)) => {
                    self.error(k, "auth.key", "give either secret or key, not both");
                    Auth::crc()
                }
                (None, None) => {
                    self.error(a, "auth", "give secret = \"...\" or key = \"<32 hex digits>\" (or method = \"crc\" to run unauthenticated)");
                    Auth::crc()
                }
            },
        }
    }

    pub(super) fn links(
        &mut self,
        links: &[Spanned<LinkT>],
        nodes: &[Spanned<NodeT>],
        udp_port: u16,
    ) -> Vec<Link> {
        if links.is_empty() {
            self.file_error("link", "no [[link]]: at least one heartbeat link is needed");
        }
        let mut out: Vec<Link> = Vec::new();
        for l in links.iter().map(Spanned::get_ref) {
            let name = l.name.get_ref().clone();
            self.parse(&l.name, "link.name", |s| values::name("link", s));
            if out.iter().any(|o| o.name == name) {
                self.error(
                    &l.name,
                    "link.name",
                    format!("link `{name}` is already defined"),
                );
                continue;
            }
            self.parse(&l.iface, "link.iface", values::iface);
            let port = match &l.port {
                Some(p) if *p.get_ref() == 0 => {
                    self.error(p, "link.port", "expected a UDP port 1-65535, found 0");
                    udp_port
                }
                Some(p) => *p.get_ref(),
                None => udp_port,
            };
            let kind_name = l.kind.get_ref().as_str();
            let only = |b: &mut Self, present: Option<Range<usize>>, field: &str, kind: &str| {
                if let Some(span) = present
                    && kind_name != kind
                {
                    let d = b
                        .spot(span)
                        .error(field, format!("only applies to kind = \"{kind}\""));
                    b.diags.push(d);
                }
            };
            only(
                self,
                l.group.as_ref().map(Spanned::span),
                "link.group",
                "mcast",
            );
            only(self, l.ttl.as_ref().map(Spanned::span), "link.ttl", "mcast");
            only(
                self,
                l.loopback.as_ref().map(Spanned::span),
                "link.loopback",
                "mcast",
            );
            only(
                self,
                l.peers.as_ref().map(Spanned::span),
                "link.peers",
                "ucast",
            );
            let kind = match kind_name {
                "bcast" => LinkKind::Bcast,
                "mcast" => {
                    let group = match &l.group {
                        Some(g) => self.parse(g, "link.group", |s| match values::ip(s) {
                            Ok(ip) if ip.is_multicast() => Ok(ip),
                            _ => Err(format!("expected a multicast group address, found {s:?}")),
                        }),
                        None => {
                            self.error(
                                &l.kind,
                                "link.group",
                                "an mcast link needs group = \"239.x.x.x\"",
                            );
                            None
                        }
                    };
                    let ttl = match &l.ttl {
                        Some(t) if *t.get_ref() == 0 => {
                            self.error(t, "link.ttl", "expected a TTL 1-255, found 0");
                            1
                        }
                        Some(t) => *t.get_ref(),
                        None => 1,
                    };
                    let loopback = l.loopback.as_ref().is_some_and(|b| *b.get_ref());
                    match group {
                        Some(group) => LinkKind::Mcast {
                            group,
                            ttl,
                            loopback,
                        },
                        None => continue,
                    }
                }
                "ucast" => {
                    let peers = match &l.peers {
                        Some(p) => p
                            .get_ref()
                            .iter()
                            .filter_map(|s| self.parse(s, "link.peers", values::ip))
                            .collect(),
                        // Default: every node's address on this link.
                        None => nodes
                            .iter()
                            .filter_map(|n| n.get_ref().addrs.get(&name))
                            .filter_map(|a| values::ip(a.get_ref()).ok())
                            .collect::<Vec<IpAddr>>(),
                    };
                    if peers.is_empty() {
                        self.error(&l.name, "link.peers", format!("ucast link `{name}` has no peers: give peers, or node addrs for this link"));
                    }
                    LinkKind::Ucast { peers }
                }
                other => {
                    self.error(
                        &l.kind,
                        "link.kind",
                        format!("expected \"bcast\", \"mcast\" or \"ucast\", found {other:?}"),
                    );
                    continue;
                }
            };
            out.push(Link {
                name,
                iface: l.iface.get_ref().clone(),
                kind,
                port,
            });
        }
        out
    }

    pub(super) fn nodes(
        &mut self,
        nodes: &[Spanned<NodeT>],
        links: &[Link],
    ) -> (Vec<Node>, Vec<Spot>) {
        if nodes.is_empty() {
            self.file_error("node", "no [[node]]: list the cluster's nodes");
        }
        let mut out = Vec::new();
        let mut spots = Vec::new();
        for n in nodes.iter().map(Spanned::get_ref) {
            let name = n.name.get_ref().clone();
            self.parse(&n.name, "node.name", |s| values::name("node", s));
            let mut addrs = BTreeMap::new();
            for (link_name, addr) in &n.addrs {
                let Some(link) = links.iter().find(|l| l.name == *link_name) else {
                    let known: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
                    self.error(
                        addr,
                        "node.addrs",
                        format!(
                            "`{link_name}` is not a link name (links: {})",
                            known.join(", ")
                        ),
                    );
                    continue;
                };
                let Some(ip) = self.parse(addr, "node.addrs", values::ip) else {
                    continue;
                };
                if link.kind == LinkKind::Bcast && !ip.is_ipv4() {
                    self.error(
                        addr,
                        "node.addrs",
                        format!("link `{link_name}` is bcast, which is IPv4 only"),
                    );
                }
                addrs.insert(link_name.clone(), ip);
            }
            spots.push(self.spot(n.name.span()));
            out.push(Node {
                id: n.id.unwrap_or_else(|| fnv1a32(&name)),
                name,
                addrs,
            });
        }
        (out, spots)
    }

    pub(super) fn timing(&mut self, t: Option<&TimingT>) -> Timing {
        let given = |b: &Self, v: Option<&Spanned<Dur>>| match v {
            Some(v) => (Some(v.get_ref().0), b.spot(v.span())),
            None => (None, Spot::new(b.file, None)),
        };
        let fields = [
            given(self, t.and_then(|t| t.keepalive.as_ref())),
            given(self, t.and_then(|t| t.deadtime.as_ref())),
            given(self, t.and_then(|t| t.warntime.as_ref())),
            given(self, t.and_then(|t| t.initdead.as_ref())),
        ];
        let names = [
            "timing.keepalive",
            "timing.deadtime",
            "timing.warntime",
            "timing.initdead",
        ];
        validate::timing(fields, names, &mut self.diags)
    }

    pub(super) fn groups(
        &mut self,
        groups: &[Spanned<GroupT>],
        nodes: &[Node],
        timeout: Duration,
    ) -> (Vec<Group>, Vec<Spot>) {
        let mut out: Vec<Group> = Vec::new();
        let mut spots = Vec::new();
        for g in groups.iter().map(Spanned::get_ref) {
            let name = g.name.get_ref().clone();
            self.parse(&g.name, "group.name", |s| values::name("group", s));
            if out.iter().any(|o| o.name == name) {
                self.error(
                    &g.name,
                    "group.name",
                    format!("group `{name}` is already defined"),
                );
                continue;
            }
            let mut candidates: Vec<String> = Vec::new();
            for n in g.nodes.get_ref() {
                let Some(node) = nodes
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(n.get_ref()))
                else {
                    let known: Vec<&str> = nodes.iter().map(|x| x.name.as_str()).collect();
                    self.error(
                        n,
                        "group.nodes",
                        format!(
                            "`{}` is not a node (nodes: {})",
                            n.get_ref(),
                            known.join(", ")
                        ),
                    );
                    continue;
                };
                if candidates.contains(&node.name) {
                    self.error(n, "group.nodes", format!("`{}` is listed twice", node.name));
                    continue;
                }
                candidates.push(node.name.clone());
            }
            if g.nodes.get_ref().is_empty() {
                self.error(
                    &g.nodes,
                    "group.nodes",
                    "list the nodes that may run this group, preferred first",
                );
            }
            if g.resource.is_empty() {
                self.error(
                    &g.name,
                    "group.resource",
                    format!("group `{name}` has no [[group.resource]]"),
                );
            }
            let resources: Vec<_> = g
                .resource
                .iter()
                .filter_map(|r| self.resource(r.get_ref(), timeout))
                .collect();
            for c in &g.check {
                if let Some(named) = &c.get_ref().group {
                    self.error(
                        named,
                        "group.check.group",
                        "a [[group.check]] belongs to the group it is in; `group` is for ha.d/checks.toml",
                    );
                }
            }
            let checks: Vec<_> = g.check.iter().collect();
            let checks = self.checks(&checks, &name, &resources, "group.check");
            let line = self.lines.line(g.name.span().start);
            spots.push(self.spot(g.name.span()));
            out.push(Group {
                id: fnv1a32(&name),
                name,
                nodes: candidates,
                resources,
                origin: Some(Origin {
                    file: self.file.to_path_buf(),
                    line,
                }),
                found: Default::default(),
                aka: None,
                checks,
            });
        }
        (out, spots)
    }

    pub(super) fn ping_nodes(&mut self, addrs: &[Spanned<String>]) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for a in addrs {
            match self.parse(a, "ping_nodes", values::ip) {
                Some(ip) if out.contains(&ip) => {
                    self.warn(a, "ping_nodes", format!("{ip} is listed twice"))
                }
                Some(ip) => out.push(ip),
                None => {}
            }
        }
        out
    }

    pub(super) fn ping_groups(&mut self, groups: &[Spanned<PingGroupT>]) -> Vec<PingGroup> {
        let mut out: Vec<PingGroup> = Vec::new();
        for g in groups.iter().map(Spanned::get_ref) {
            let name = g.name.get_ref().clone();
            if out.iter().any(|o| o.name == name) {
                self.error(
                    &g.name,
                    "ping_group.name",
                    format!("ping group `{name}` is already defined"),
                );
                continue;
            }
            if g.addrs.get_ref().is_empty() {
                self.error(&g.addrs, "ping_group.addrs", "list at least one address");
            }
            let addrs = g
                .addrs
                .get_ref()
                .iter()
                .filter_map(|a| self.parse(a, "ping_group.addrs", values::ip))
                .collect();
            out.push(PingGroup { name, addrs });
        }
        out
    }

    pub(super) fn fencing(&mut self, f: &Spanned<FencingT>) -> Fencing {
        let t = f.get_ref();
        if t.command.get_ref().trim().is_empty() {
            self.error(&t.command, "fencing.command", "must not be empty");
        } else if !t.command.get_ref().contains("%n") {
            self.warn(
                &t.command,
                "fencing.command",
                "has no %n: the same command runs whichever node is fenced",
            );
        }
        Fencing {
            command: t.command.get_ref().clone(),
            timeout: self.positive(&t.timeout, "fencing.timeout", DEFAULT_FENCING_TIMEOUT),
        }
    }

    pub(super) fn arp(&mut self, a: Option<&ArpT>) -> ArpSettings {
        let mut arp = ArpSettings::default();
        let Some(a) = a else {
            return arp;
        };
        if let Some(c) = &a.count {
            arp.count = *c.get_ref();
            if arp.count == 0 {
                self.warn(c, "arp.count", "no gratuitous ARP is sent: neighbours learn a moved address only when their caches expire");
            }
        }
        arp.interval = self.positive(&a.interval, "arp.interval", arp.interval);
        arp.reply_form = a.reply_form.unwrap_or(arp.reply_form);
        if let Some(r) = &a.refresh {
            arp.refresh = r.get_ref().0;
            if arp.refresh.is_some_and(|d| d.is_zero()) {
                self.error(r, "arp.refresh", "must be greater than zero (or \"off\")");
            }
        }
        arp.na_router_flag = a.na_router_flag.unwrap_or(arp.na_router_flag);
        arp
    }

    pub(super) fn control_socket(
        &mut self,
        s: Option<&Spanned<PathBuf>>,
        cluster: &str,
    ) -> PathBuf {
        match s {
            Some(p) if !p.get_ref().is_absolute() => {
                self.error(p, "control_socket", "must be an absolute path");
                p.get_ref().clone()
            }
            Some(p) => p.get_ref().clone(),
            None => PathBuf::from(format!("/run/hb/{cluster}.sock")),
        }
    }

    pub(super) fn script_dirs(
        &mut self,
        dirs: Option<&Spanned<Vec<Spanned<PathBuf>>>>,
    ) -> Vec<PathBuf> {
        let Some(dirs) = dirs else {
            return vec![
                PathBuf::from("/etc/ha.d/resource.d"),
                PathBuf::from("/etc/init.d"),
            ];
        };
        if dirs.get_ref().is_empty() {
            self.error(dirs, "script_dirs", "list at least one directory");
        }
        for d in dirs.get_ref() {
            if !d.get_ref().is_absolute() {
                self.error(d, "script_dirs", "must be an absolute path");
            }
        }
        dirs.get_ref().iter().map(|d| d.get_ref().clone()).collect()
    }
}

/// 32 hex digits -> 16 bytes.
/// The settings the file leaves at their default, by their ha.cf names
/// (as `check` shows them for both formats).
fn unset(f: &FileT) -> Vec<&'static str> {
    let t = f.timing.as_ref();
    let given = [
        ("keepalive", t.is_some_and(|t| t.keepalive.is_some())),
        ("deadtime", t.is_some_and(|t| t.deadtime.is_some())),
        ("warntime", t.is_some_and(|t| t.warntime.is_some())),
        ("initdead", t.is_some_and(|t| t.initdead.is_some())),
        ("deadping", t.is_some_and(|t| t.deadping.is_some())),
        ("udpport", f.udp_port.is_some()),
        ("auto_failback", f.auto_failback.is_some()),
    ];
    given.iter().filter(|(_, g)| !g).map(|(n, _)| *n).collect()
}

fn hex_key(s: &str) -> Result<[u8; 16], String> {
    let bad = || {
        format!(
            "expected 32 hex digits (16 bytes), found {} characters",
            s.len()
        )
    };
    if s.len() != 32 || !s.is_ascii() {
        return Err(bad());
    }
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    if key == [0; 16] {
        return Err("the all-zero key is not a key".to_string());
    }
    Ok(key)
}
