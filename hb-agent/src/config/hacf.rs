//! Heartbeat's ha.cf. Every line is accounted for: a directive is either
//! honoured, or recorded as a warning ("ignored: why") with its line, so
//! nothing an operator wrote disappears silently.
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::diag::Diag;
use super::duration::{self, HACF_EXPECTED};
use super::host::Host;
use super::model::{DEFAULT_FENCING_TIMEOUT, Fencing, LinkKind, PingGroup};
use super::text::{after_first_word, option_words, shorten, strip_comment, warn_odd_spaces, words};
use super::values;

/// A heartbeat medium as written, with its UDP port as Heartbeat chose it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkDraft {
    pub name: String,
    pub iface: String,
    pub kind: LinkKind,
    /// mcast names its own port. bcast and ucast take the `udpport` in
    /// effect at the first line of their kind, as Heartbeat's plugins did
    /// (bcast.c/ucast.c read ParamValue("udpport") once, into a static
    /// `localudpport`; config.c's set_udpport() says "udpport setting must
    /// precede media statements"). None: no udpport before it, 694.
    pub port: Option<(u16, usize)>,
    pub line: usize,
}

/// What ha.cf says, with the line of each value for later cross-checks.
#[derive(Debug, Default)]
pub(crate) struct HaCf {
    pub cluster: Option<String>,
    pub nodes: Vec<(String, usize)>,
    pub keepalive: Option<(Duration, usize)>,
    pub deadtime: Option<(Duration, usize)>,
    pub warntime: Option<(Duration, usize)>,
    pub initdead: Option<(Duration, usize)>,
    pub deadping: Option<(Duration, usize)>,
    pub udpport: Option<(u16, usize)>,
    /// The port bcast and ucast lines got at their first line (see LinkDraft).
    kind_port: HashMap<&'static str, Option<(u16, usize)>>,
    pub links: Vec<LinkDraft>,
    pub auto_failback: Option<bool>,
    pub ping_nodes: Vec<IpAddr>,
    pub ping_groups: Vec<PingGroup>,
    pub fencing: Option<(Fencing, usize)>,
    pub realtime: Option<bool>,
    /// `crm`/`pacemaker` turning Pacemaker on, or `respawn` of one of its
    /// daemons: (what was written, line).
    pub pacemaker: Option<(String, usize)>,
    /// `respawn ... ipfail` or `pingd`: Heartbeat moved resources on ping
    /// connectivity only then; without it the ping nodes were watched only.
    pub ping_respawned: bool,
}

const LOGS: &str = "logs go to tracing/journal";
const PING_BUILT_IN: &str = "built in: connectivity via ping nodes";
const NO_CRM: &str = "hb has no CRM";
/// What `crm on` made Heartbeat respawn (config.c, set_pcmk_support()).
const PACEMAKER_DAEMONS: &[&str] = &["cib", "crmd", "lrmd", "pengine", "stonithd", "attrd"];

/// Directives hb knows and deliberately ignores, with the reason given to the
/// operator. Heartbeat 2.1.3's full directive table (config.c) is covered.
fn ignored_reason(directive: &str) -> Option<&'static str> {
    Some(match directive {
        "logfile" | "debugfile" | "logfacility" | "use_logd" | "conn_logd_time" | "debug" => LOGS,
        "apiauth" => {
            "hb has no Heartbeat client API (status and commands go through the control socket)"
        }
        "compression" | "compression_threshold" | "traditional_compression" => {
            "heartbeat packets are small and never compressed"
        }
        "serial" => {
            "serial links are not supported: one heartbeat medium fewer than Heartbeat had \
             (`check` shows the media left); use a network link"
        }
        "baud" => "serial links are not supported (baud only sets their speed)",
        "watchdog" => {
            "hb does not arm the watchdog device: a hung node does not reboot itself \
             (use systemd's WatchdogSec= for the agent)"
        }
        "msgfmt" => "hb has its own wire format",
        "coredumps" | "coreroot" => "core dumps are governed by systemd/ulimit",
        "hbgenmethod" => "hb keeps no Heartbeat generation numbers",
        "hopfudge" | "max_rexmit_delay" => "hb does not relay or retransmit heartbeats",
        "rtprio" => "the priority is chosen by the agent; use `realtime on`",
        "autojoin" => "hb clusters are static: list every node with `node`",
        "uuidfrom" => "node ids are fnv1a32(node name)",
        "use_apphbd" => "hb does not register with apphbd",
        "env" => "set the environment in the agent's systemd unit instead",
        "record_config_changes"
        | "record_pengine_inputs"
        | "enable_config_writes"
        | "crm_daemon_dir"
        | "pengine_by_crm" => "CRM option; hb has no CRM",
        "failfast" => {
            "hb does not start helper processes: the program is not run, and its death \
             does not reboot the node; run it as a systemd unit"
        }
        "badpack" | "syslogmsgfmt" => LOGS,
        "memreserve" => "hb does not preallocate memory this way",
        "normalpoll" => "hb has its own event loop",
        "quorum_server" => "hb has no quorum server client",
        "ucast6" | "hbaping" | "rds" | "openais" => {
            "this heartbeat medium is not supported: one medium fewer than Heartbeat had \
             (`check` shows the media left); use bcast, mcast, mcast6 or ucast"
        }
        "ping6" => "not supported as a directive: write `ping` with the IPv6 address",
        _ => return None,
    })
}

/// Every directive hb reads (honoured or ignored on purpose).
const HONOURED: &[&str] = &[
    "node",
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "udpport",
    "bcast",
    "udp",
    "mcast",
    "mcast6",
    "ucast",
    "auto_failback",
    "nice_failback",
    "ping",
    "ping_group",
    "deadping",
    "stonith",
    "stonith_host",
    "realtime",
    "cluster",
    "respawn",
    "crm",
    "pacemaker",
];

/// A known directive one or two edits away (`undport` -> `udpport`).
fn closest(word: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    HONOURED
        .iter()
        .copied()
        .map(|d| (distance(word, d), d))
        .filter(|(n, _)| *n <= 2)
        .min()
        .map(|(_, d)| d)
}

pub(crate) fn parse(text: &str, file: &Path, host: &dyn Host, diags: &mut Vec<Diag>) -> HaCf {
    warn_odd_spaces(text, file, diags);
    let mut p = Parser {
        file,
        host,
        diags,
        out: HaCf::default(),
        seen: HashMap::new(),
        first_ping: None,
    };
    for (index, raw) in text.lines().enumerate() {
        let content = strip_comment(raw);
        if let Some(directive) = words(content).next() {
            p.directive(index + 1, directive, after_first_word(content));
        }
    }
    if let Some(line) = p.first_ping
        && !p.out.ping_respawned
    {
        // Heartbeat itself only pinged them (status, logs); ipfail or pingd
        // were what moved resources on connectivity.
        p.warn(
            line,
            "ping",
            "no `respawn ... ipfail` (or pingd): the ping nodes are watched only, as in \
             Heartbeat, and move no groups; add `respawn hacluster /usr/lib/heartbeat/ipfail` \
             for hb to move groups to the node that reaches more of them",
        );
    }
    p.out
}

struct Parser<'a> {
    file: &'a Path,
    host: &'a dyn Host,
    diags: &'a mut Vec<Diag>,
    out: HaCf,
    /// Single-valued directives already given, for "given again" warnings.
    seen: HashMap<&'static str, usize>,
    /// The first `ping` / `ping_group` line.
    first_ping: Option<usize>,
}

impl Parser<'_> {
    fn error(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.diags
            .push(Diag::error(self.file, message).at(line).field(field));
    }

    fn warn(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.diags
            .push(Diag::warning(self.file, message).at(line).field(field));
    }

    fn ignore(&mut self, line: usize, field: &str, why: &str) {
        self.warn(line, field, format!("ignored: {why}"));
    }

    /// Heartbeat lets a later value replace an earlier one; say so.
    fn once(&mut self, line: usize, key: &'static str) {
        if let Some(first) = self.seen.insert(key, line) {
            self.warn(
                line,
                key,
                format!("given again (also at line {first}); this value replaces the earlier one"),
            );
        }
    }

    fn directive(&mut self, line: usize, directive: &str, rest: &str) {
        match directive {
            "node" => self.node(line, rest),
            "keepalive" => self.out.keepalive = self.timing(line, "keepalive", rest),
            "deadtime" => self.out.deadtime = self.timing(line, "deadtime", rest),
            "warntime" => self.out.warntime = self.timing(line, "warntime", rest),
            "initdead" => self.out.initdead = self.timing(line, "initdead", rest),
            "udpport" => self.udpport(line, rest),
            "bcast" => self.bcast(line, rest),
            "udp" => {
                self.warn(
                    line,
                    "udp",
                    "Heartbeat's old name for `bcast`; read as bcast",
                );
                self.bcast(line, rest);
            }
            "mcast" | "mcast6" => self.mcast(line, directive, rest),
            "ucast" => self.ucast(line, rest),
            "auto_failback" => self.auto_failback(line, rest),
            "nice_failback" => self.nice_failback(line, rest),
            "ping" => {
                self.first_ping.get_or_insert(line);
                self.ping(line, rest)
            }
            "ping_group" => {
                self.first_ping.get_or_insert(line);
                self.ping_group(line, rest)
            }
            "deadping" => match self.timing(line, "deadping", rest) {
                Some((d, _)) if d.is_zero() => {
                    self.error(line, "deadping", "must be greater than zero")
                }
                v => self.out.deadping = v,
            },
            "stonith" => self.stonith(line, rest),
            "stonith_host" => self.stonith_host(line, rest),
            "realtime" => self.realtime(line, rest),
            "cluster" => self.cluster(line, rest),
            "respawn" => self.respawn(line, rest),
            "crm" | "pacemaker" => {
                let on = values::boolean(rest).unwrap_or(true);
                if on && self.out.pacemaker.is_none() {
                    self.out.pacemaker = Some((format!("{directive} {rest}"), line));
                }
                let why = if on {
                    format!(
                        "{NO_CRM}; resources come from haresources (Heartbeat with `{directive} {rest}` \
                         would have ignored haresources and used cib.xml)"
                    )
                } else {
                    format!("{NO_CRM}; resources come from haresources")
                };
                self.ignore(line, directive, &why);
            }
            _ => match ignored_reason(directive) {
                Some(why) => self.ignore(line, directive, why),
                // Heartbeat refused to start on one (config.c parse_config():
                // "Illegal directive [%s] in %s", ++errcount).
                None => {
                    let shown = shorten(directive, 40);
                    let hint = closest(directive)
                        .map(|d| format!(" (did you mean `{d}`?)"))
                        .unwrap_or_default();
                    self.diags.push(
                        Diag::error(
                            self.file,
                            format!(
                                "unknown directive `{shown}`{hint}: Heartbeat refused it too \
                                 (\"Illegal directive\")"
                            ),
                        )
                        .at(line)
                        .field(shown),
                    );
                }
            },
        }
    }

    fn node(&mut self, line: usize, rest: &str) {
        let names = option_words(rest);
        if names.is_empty() {
            self.error(line, "node", "expected one or more node names");
        }
        for name in names {
            if let Err(msg) = values::name("node", name) {
                self.error(line, "node", msg);
                continue;
            }
            // Heartbeat lower-cases node names (config.c add_node: g_strdown).
            let lower = name.to_ascii_lowercase();
            if lower != name {
                self.warn(
                    line,
                    "node",
                    format!("node `{name}` is read as `{lower}`: Heartbeat compares node names in lower case"),
                );
            }
            if let Some((_, first)) = self.out.nodes.iter().find(|(n, _)| *n == lower) {
                let first = *first;
                self.error(
                    line,
                    "node",
                    format!("node `{lower}` is already declared at line {first}"),
                );
                continue;
            }
            self.out.nodes.push((lower, line));
        }
    }

    fn single<'r>(
        &mut self,
        line: usize,
        field: &str,
        rest: &'r str,
        expected: &str,
    ) -> Option<&'r str> {
        let values = option_words(rest);
        match values.as_slice() {
            [one] => Some(*one),
            [] => {
                self.error(line, field, format!("{expected}, found nothing"));
                None
            }
            _ => {
                self.error(
                    line,
                    field,
                    format!("expected one value, found {}: {rest:?}", values.len()),
                );
                None
            }
        }
    }

    fn timing(
        &mut self,
        line: usize,
        field: &'static str,
        rest: &str,
    ) -> Option<(Duration, usize)> {
        self.once(line, field);
        let value = self.single(line, field, rest, HACF_EXPECTED)?;
        match duration::parse_hacf(value) {
            Ok(d) => Some((d, line)),
            Err(msg) => {
                self.error(line, field, msg);
                None
            }
        }
    }

    fn udpport(&mut self, line: usize, rest: &str) {
        self.once(line, "udpport");
        let Some(value) = self.single(line, "udpport", rest, "expected a UDP port 1-65535") else {
            return;
        };
        match value.parse::<u16>() {
            Ok(port) if port > 0 => self.out.udpport = Some((port, line)),
            _ => self.error(
                line,
                "udpport",
                format!("expected a UDP port 1-65535, found {value:?}"),
            ),
        }
    }

    /// Links are named after their interface; a second medium on the same
    /// interface gets `<iface>-<kind>` so names stay unique.
    fn add_link(
        &mut self,
        line: usize,
        field: &str,
        iface: &str,
        kind: LinkKind,
        port: Option<(u16, usize)>,
    ) {
        if let Err(msg) = values::iface(iface) {
            self.error(line, field, msg);
            return;
        }
        let port_of = |p: Option<(u16, usize)>| p.map(|(p, _)| p);
        let same =
            |l: &LinkDraft| l.iface == iface && l.kind == kind && port_of(l.port) == port_of(port);
        // Heartbeat did not refuse a repeated medium (it opened it twice,
        // and `udp` was read as `bcast`: corpus cases 21 and 24 write both).
        if let Some(first) = self.out.links.iter().find(|l| same(l)).map(|l| l.line) {
            self.warn(
                line,
                field,
                format!(
                    "{field} {iface} is already configured at line {first}: the same medium \
                     once more; hb runs it once (Heartbeat ran it twice)"
                ),
            );
            return;
        }
        let mut name = iface.to_string();
        if self.out.links.iter().any(|l| l.name == name) {
            name = format!("{iface}-{field}");
        }
        let mut n = 2;
        while self.out.links.iter().any(|l| l.name == name) {
            name = format!("{iface}-{field}{n}");
            n += 1;
        }
        self.out.links.push(LinkDraft {
            name,
            iface: iface.to_string(),
            kind,
            port,
            line,
        });
    }

    fn bcast(&mut self, line: usize, rest: &str) {
        let ifaces = option_words(rest);
        if ifaces.is_empty() {
            self.error(line, "bcast", "expected one or more interface names");
        }
        let port = self.kind_port("bcast");
        for iface in ifaces {
            self.add_link(line, "bcast", iface, LinkKind::Bcast, port);
        }
    }

    /// The udpport a bcast or ucast line uses: the one in effect at the
    /// first line of its kind (see LinkDraft::port).
    fn kind_port(&mut self, kind: &'static str) -> Option<(u16, usize)> {
        let now = self.out.udpport;
        *self.out.kind_port.entry(kind).or_insert(now)
    }

    /// `mcast IFACE GROUP PORT TTL LOOP` (mcast6: an IPv6 group, TTL = hops).
    fn mcast(&mut self, line: usize, field: &str, rest: &str) {
        let w: Vec<&str> = words(rest).collect();
        let [iface, group, port, ttl, looped] = w.as_slice() else {
            self.error(
                line,
                field,
                format!(
                    "expected `{field} IFACE GROUP PORT TTL LOOP`, found {} value(s)",
                    w.len()
                ),
            );
            return;
        };
        let v6 = field == "mcast6";
        let group = match values::ip(group) {
            Ok(g) if g.is_multicast() && g.is_ipv6() == v6 => Some(g),
            Ok(_) | Err(_) => {
                let family = if v6 { "IPv6" } else { "IPv4" };
                self.error(
                    line,
                    field,
                    format!("expected an {family} multicast group, found {group:?}"),
                );
                None
            }
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.error(
                    line,
                    field,
                    format!("expected a UDP port 1-65535, found {port:?}"),
                );
                None
            }
        };
        let ttl = match ttl.parse::<u8>() {
            Ok(t) if t > 0 => Some(t),
            _ => {
                self.error(line, field, format!("expected a TTL 1-255, found {ttl:?}"));
                None
            }
        };
        let loopback = match *looped {
            "0" => Some(false),
            "1" => Some(true),
            other => {
                self.error(
                    line,
                    field,
                    format!("expected loop 0 or 1, found {other:?}"),
                );
                None
            }
        };
        if let (Some(group), Some(port), Some(ttl), Some(loopback)) = (group, port, ttl, loopback) {
            let kind = LinkKind::Mcast {
                group,
                ttl,
                loopback,
            };
            self.add_link(line, "mcast", iface, kind, Some((port, line)));
        }
    }

    /// `ucast IFACE IP...`: several lines on one interface make one link.
    fn ucast(&mut self, line: usize, rest: &str) {
        let w: Vec<&str> = words(rest).collect();
        let Some((iface, addrs)) = w.split_first().filter(|(_, a)| !a.is_empty()) else {
            self.error(line, "ucast", "expected `ucast IFACE PEER-IP...`");
            return;
        };
        let mut peers = Vec::new();
        for addr in addrs {
            if let Some(ip) = self.ip_or_name(line, "ucast", addr) {
                peers.push(ip);
            }
        }
        if peers.len() != addrs.len() {
            return;
        }
        let existing = self
            .out
            .links
            .iter_mut()
            .find(|l| l.iface == *iface && matches!(l.kind, LinkKind::Ucast { .. }));
        match existing {
            Some(LinkDraft {
                kind: LinkKind::Ucast { peers: have },
                ..
            }) => {
                for peer in peers {
                    if !have.contains(&peer) {
                        have.push(peer);
                    }
                }
            }
            _ => {
                let port = self.kind_port("ucast");
                self.add_link(line, "ucast", iface, LinkKind::Ucast { peers }, port)
            }
        }
    }

    /// An address, or a host name resolved now with the system resolver, as
    /// Heartbeat did (ucast.c: gethostbyname(), the first address; ping.c
    /// likewise). A name that does not resolve is an error.
    fn ip_or_name(&mut self, line: usize, field: &str, word: &str) -> Option<IpAddr> {
        if let Ok(ip) = word.parse::<IpAddr>() {
            return Some(ip);
        }
        if values::hostname(word).is_err() {
            self.error(
                line,
                field,
                format!("expected an IP address or a host name, found {word:?}"),
            );
            return None;
        }
        match self.host.resolve(word) {
            Ok(all) => {
                // Heartbeat's heartbeat media are IPv4 (AF_INET, h_addr_list[0]).
                let ip = all.iter().find(|a| a.is_ipv4()).unwrap_or(&all[0]);
                self.warn(
                    line,
                    field,
                    format!(
                        "`{word}` resolved to {ip} when the configuration was read; \
                         a later change of the name is not followed"
                    ),
                );
                Some(*ip)
            }
            Err(msg) => {
                self.error(line, field, msg);
                None
            }
        }
    }

    fn auto_failback(&mut self, line: usize, rest: &str) {
        self.once(line, "auto_failback");
        let Some(value) = self.single(line, "auto_failback", rest, "expected on, off or legacy")
        else {
            return;
        };
        if value.eq_ignore_ascii_case("legacy") {
            // Heartbeat's doc/ha.cf: "legacy - enable automatic failbacks in
            // systems where all nodes do not yet support the auto_failback
            // option"; config.c's set_auto_failback() sets nice_failback off,
            // Heartbeat 1's mode where the preferred node takes its groups back.
            self.warn(
                line,
                "auto_failback",
                "legacy is read as on: Heartbeat's legacy mode failed back automatically \
                 (write `auto_failback on`)",
            );
            self.out.auto_failback = Some(true);
        } else if let Some(on) = values::boolean(value) {
            self.out.auto_failback = Some(on);
        } else {
            self.error(
                line,
                "auto_failback",
                format!("expected on, off or legacy, found {value:?}"),
            );
        }
    }

    /// Obsolete; Heartbeat mapped `on` to auto_failback off and `off` to
    /// legacy (config.c set_nice_failback()), which fails back: on.
    fn nice_failback(&mut self, line: usize, rest: &str) {
        self.once(line, "auto_failback");
        match values::boolean(rest) {
            Some(nice) => {
                let msg = if nice {
                    "obsolete; read as `auto_failback off`, as Heartbeat did (write auto_failback instead)"
                } else {
                    "obsolete; Heartbeat read it as `auto_failback legacy`, which fails back: \
                     read as `auto_failback on` (write auto_failback instead)"
                };
                self.warn(line, "nice_failback", msg);
                self.out.auto_failback = Some(!nice);
            }
            None => self.error(
                line,
                "nice_failback",
                format!("expected on or off, found {rest:?}"),
            ),
        }
    }

    fn ping(&mut self, line: usize, rest: &str) {
        let addrs = option_words(rest);
        if addrs.is_empty() {
            self.error(line, "ping", "expected one or more IP addresses");
        }
        for addr in addrs {
            match self.ip_or_name(line, "ping", addr) {
                Some(ip) if self.out.ping_nodes.contains(&ip) => {
                    self.warn(line, "ping", format!("{ip} is already a ping node"));
                }
                Some(ip) => self.out.ping_nodes.push(ip),
                None => {}
            }
        }
    }

    fn ping_group(&mut self, line: usize, rest: &str) {
        let w: Vec<&str> = words(rest).collect();
        let Some((name, addrs)) = w.split_first().filter(|(_, a)| !a.is_empty()) else {
            self.error(line, "ping_group", "expected `ping_group NAME IP...`");
            return;
        };
        if self.out.ping_groups.iter().any(|g| g.name == *name) {
            self.error(
                line,
                "ping_group",
                format!("ping group `{name}` is already defined"),
            );
            return;
        }
        let mut group = PingGroup {
            name: name.to_string(),
            addrs: Vec::new(),
        };
        for addr in addrs {
            match self.ip_or_name(line, "ping_group", addr) {
                Some(ip) if !group.addrs.contains(&ip) => group.addrs.push(ip),
                _ => {}
            }
        }
        self.out.ping_groups.push(group);
    }

    fn set_fencing(&mut self, line: usize, field: &str, command: String) {
        if let Some((_, first)) = &self.out.fencing {
            let first = *first;
            self.ignore(
                line,
                field,
                &format!("only the first stonith line (line {first}) is used"),
            );
            return;
        }
        let fencing = Fencing {
            command,
            timeout: DEFAULT_FENCING_TIMEOUT,
        };
        self.out.fencing = Some((fencing, line));
    }

    /// `stonith TYPE CONFIGFILE` becomes cluster-glue's stonith(8) CLI:
    /// `stonith -t TYPE -F CONFIGFILE -T reset NODE`.
    fn stonith(&mut self, line: usize, rest: &str) {
        let ty = words(rest).next().unwrap_or("");
        let file = after_first_word(rest);
        if ty.is_empty() || file.is_empty() {
            self.error(line, "stonith", "expected `stonith TYPE CONFIGFILE`");
            return;
        }
        let q = values::shell_quote;
        let command = format!("stonith -t {} -F {} -T reset %n", q(ty), q(file));
        self.set_fencing(line, "stonith", command);
    }

    /// `stonith_host * TYPE PARAMS...` becomes
    /// `stonith -t TYPE -p 'PARAMS' -T reset NODE`. A line for one host only
    /// cannot be mapped: hb runs the same fencing command on every node.
    fn stonith_host(&mut self, line: usize, rest: &str) {
        let w: Vec<&str> = words(rest).collect();
        let [host, ty, ..] = w.as_slice() else {
            self.error(
                line,
                "stonith_host",
                "expected `stonith_host HOST|* TYPE PARAMS...`",
            );
            return;
        };
        if *host != "*" {
            let why = format!(
                "applies to host `{host}` only, and hb runs one fencing command on every node \
                 (write `stonith_host * ...` or set fencing.command in TOML)"
            );
            self.ignore(line, "stonith_host", &why);
            return;
        }
        let params = after_first_word(after_first_word(rest));
        let q = values::shell_quote;
        let command = if params.is_empty() {
            format!("stonith -t {} -T reset %n", q(ty))
        } else {
            format!("stonith -t {} -p {} -T reset %n", q(ty), q(params))
        };
        self.set_fencing(line, "stonith_host", command);
    }

    fn realtime(&mut self, line: usize, rest: &str) {
        self.once(line, "realtime");
        match values::boolean(rest) {
            Some(on) => self.out.realtime = Some(on),
            None => self.error(
                line,
                "realtime",
                format!("expected on or off, found {rest:?}"),
            ),
        }
    }

    /// hb extension: names the cluster (default "heartbeat").
    fn cluster(&mut self, line: usize, rest: &str) {
        self.once(line, "cluster");
        let Some(name) = self.single(line, "cluster", rest, "expected a cluster name") else {
            return;
        };
        match values::name("cluster", name) {
            Ok(()) => self.out.cluster = Some(name.to_string()),
            Err(msg) => self.error(line, "cluster", msg),
        }
    }

    fn respawn(&mut self, line: usize, rest: &str) {
        let program = words(rest).nth(1).unwrap_or("");
        let base = program.rsplit('/').next().unwrap_or("");
        if base == "ipfail" || base == "pingd" {
            self.out.ping_respawned = true;
            self.ignore(line, "respawn", PING_BUILT_IN);
            return;
        }
        // Pacemaker's daemons (config.c's set_pcmk_support() list).
        if PACEMAKER_DAEMONS.contains(&base) && self.out.pacemaker.is_none() {
            self.out.pacemaker = Some((format!("respawn {}", rest.trim()), line));
        }
        self.ignore(
            line,
            "respawn",
            &format!(
                "hb does not start helper processes: `{}` is not run; run it as a systemd unit",
                shorten(program, 60)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::host::FakeHost;

    fn run(text: &str) -> (HaCf, Vec<Diag>) {
        run_on(&FakeHost::default(), text)
    }

    fn run_on(host: &FakeHost, text: &str) -> (HaCf, Vec<Diag>) {
        let mut d = Vec::new();
        let cf = parse(text, Path::new("ha.cf"), host, &mut d);
        (cf, d)
    }

    fn only(d: &[Diag]) -> &Diag {
        assert_eq!(d.len(), 1, "{d:#?}");
        &d[0]
    }

    #[test]
    fn nodes_in_order_several_per_line() {
        let (cf, d) = run("node a b\nnode\tc,d # x\n");
        assert!(d.is_empty(), "{d:?}");
        let names: Vec<_> = cf.nodes.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        assert_eq!(names, [("a", 1), ("b", 1), ("c", 2), ("d", 2)]);
    }

    #[test]
    fn node_names_lowercased_and_duplicates_refused() {
        let (cf, d) = run("node Node0\nnode node0\n");
        assert_eq!(cf.nodes, [("node0".to_string(), 1)]);
        assert!(!d[0].is_error() && d[0].message.contains("lower case"));
        assert!(
            d[1].is_error()
                && d[1].to_string() == "ha.cf:2: node: node `node0` is already declared at line 1"
        );
    }

    #[test]
    fn timings_units() {
        let (cf, d) = run("keepalive 500ms\ndeadtime 1.5\nwarntime 1s\ninitdead 3\ndeadping 60\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(cf.deadping, Some((Duration::from_secs(60), 5)));
        assert_eq!(cf.keepalive, Some((Duration::from_millis(500), 1)));
        assert_eq!(cf.deadtime, Some((Duration::from_millis(1500), 2)));
        assert_eq!(cf.warntime, Some((Duration::from_secs(1), 3)));
        assert_eq!(cf.initdead, Some((Duration::from_secs(3), 4)));
    }

    #[test]
    fn bad_duration_message() {
        let (_, d) = run("\nkeepalive abc\n");
        assert_eq!(
            only(&d).to_string(),
            "ha.cf:2: keepalive: expected a duration such as 2, 0.5 or 500ms, found \"abc\""
        );
    }

    #[test]
    fn repeated_directive_warns() {
        let (cf, d) = run("keepalive 1\nkeepalive 2\n");
        assert_eq!(cf.keepalive, Some((Duration::from_secs(2), 2)));
        assert!(only(&d).message.contains("also at line 1"));
    }

    #[test]
    fn udpport_range() {
        let (_, d) = run("udpport 99999\n");
        assert_eq!(
            only(&d).to_string(),
            "ha.cf:1: udpport: expected a UDP port 1-65535, found \"99999\""
        );
        let (_, d) = run("udpport 0\n");
        assert!(only(&d).is_error());
    }

    #[test]
    fn media() {
        let text = "bcast eth2 eth3\nmcast eth0 225.0.0.1 694 1 0\nucast eth1 10.0.0.1\nucast eth1 10.0.0.2 10.0.0.1\nbcast eth0\n";
        let (cf, d) = run(text);
        assert!(d.is_empty(), "{d:?}");
        let names: Vec<_> = cf.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["eth2", "eth3", "eth0", "eth1", "eth0-bcast"]);
        assert_eq!(
            cf.links[2].kind,
            LinkKind::Mcast {
                group: "225.0.0.1".parse().unwrap(),
                ttl: 1,
                loopback: false
            }
        );
        assert_eq!(cf.links[2].port, Some((694, 2)));
        assert_eq!(
            cf.links[3].kind,
            LinkKind::Ucast {
                peers: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()]
            }
        );
    }

    #[test]
    fn bad_media() {
        let (_, d) = run(
            "mcast eth0 10.0.0.1 694 1 0\nmcast eth0 225.0.0.1 0 0 2\nmcast eth0\nbcast eth2\nbcast eth2\nucast eth0 nohost\n",
        );
        let lines: Vec<_> = d.iter().map(|d| (d.line.unwrap(), d.is_error())).collect();
        assert_eq!(
            lines,
            [
                (1, true),
                (2, true),
                (2, true),
                (2, true),
                (3, true),
                (5, false),
                (6, true)
            ],
            "{d:#?}"
        );
    }

    #[test]
    fn failback_values() {
        assert_eq!(run("auto_failback off").0.auto_failback, Some(false));
        // Heartbeat's legacy failed back automatically.
        let (cf, d) = run("auto_failback legacy");
        assert_eq!(cf.auto_failback, Some(true));
        assert!(!only(&d).is_error());
        assert!(only(&d).message.contains("read as on"), "{d:#?}");
        // nice_failback on = auto_failback off; off = legacy = on.
        assert_eq!(run("nice_failback on").0.auto_failback, Some(false));
        assert_eq!(run("nice_failback off").0.auto_failback, Some(true));
        assert!(only(&run("auto_failback maybe").1).is_error());
    }

    #[test]
    fn stonith_mapping() {
        let (cf, d) = run(
            "stonith baytech /etc/ha.d/conf/stonith.baytech\nstonith_host * apcsmart /dev/ttyS1\n",
        );
        let (f, line) = cf.fencing.unwrap();
        assert_eq!(line, 1);
        assert_eq!(
            f.command,
            "stonith -t baytech -F /etc/ha.d/conf/stonith.baytech -T reset %n"
        );
        assert!(
            only(&d)
                .message
                .contains("only the first stonith line (line 1)")
        );

        let (cf, d) = run("stonith_host node1 baytech 10.0.0.3 mylogin my secret\n");
        assert!(cf.fencing.is_none());
        assert!(
            only(&d)
                .message
                .starts_with("ignored: applies to host `node1` only")
        );

        let (cf, _) = run("stonith_host * baytech 10.0.0.3 login pass'word\n");
        assert_eq!(
            cf.fencing.unwrap().0.command,
            r"stonith -t baytech -p '10.0.0.3 login pass'\''word' -T reset %n"
        );
    }

    #[test]
    fn ignored_and_unknown_are_warnings_with_lines() {
        let (_, d) = run(
            "logfile /var/log/ha-log\nrespawn root /usr/lib/heartbeat/ipfail\ncrm respawn\nfrobnicate 3\n",
        );
        assert!(d[..3].iter().all(|d| !d.is_error()));
        assert_eq!(
            d[0].to_string(),
            "ha.cf:1: logfile: ignored: logs go to tracing/journal"
        );
        assert_eq!(
            d[1].to_string(),
            "ha.cf:2: respawn: ignored: built in: connectivity via ping nodes"
        );
        assert!(d[2].message.contains("cib.xml"));
        // Heartbeat refused an unknown directive (corpus case 15b, `undport`).
        assert!(d[3].is_error());
        assert_eq!(
            d[3].to_string(),
            "ha.cf:4: frobnicate: unknown directive `frobnicate`: Heartbeat refused it too (\"Illegal directive\")"
        );
        let (_, d) = run("undport 694\n");
        assert!(
            only(&d).message.contains("(did you mean `udpport`?)"),
            "{d:#?}"
        );
    }

    #[test]
    fn ping_and_groups() {
        let (cf, d) = run("ping 192.168.32.254\nping_group g 10.0.0.1 10.0.0.2\nping gw.example\n");
        assert_eq!(cf.ping_nodes, ["192.168.32.254".parse::<IpAddr>().unwrap()]);
        assert_eq!(cf.ping_groups[0].addrs.len(), 2);
        let d: Vec<_> = d
            .into_iter()
            .filter(|d| !d.message.contains("watched only"))
            .collect();
        assert!(only(&d).is_error() && only(&d).line == Some(3));
    }

    /// Corpus cases 08, 22, 38: `ping` without ipfail/pingd. Heartbeat only
    /// watched those; hb moved groups on them (and, with two nodes, its
    /// standby took nothing over from a dead primary while it reached no
    /// ping node).
    #[test]
    fn ping_nodes_without_ipfail_are_watched_only() {
        let (cf, d) = run("ping 192.168.32.254\n");
        assert!(!cf.ping_respawned);
        let w: Vec<_> = d
            .iter()
            .filter(|d| d.message.contains("watched only"))
            .collect();
        assert_eq!(w.len(), 1, "{d:#?}");
        assert_eq!((w[0].line, w[0].is_error()), (Some(1), false));
        let (cf, d) = run("ping 192.168.32.254\nrespawn hacluster /usr/lib/heartbeat/ipfail\n");
        assert!(cf.ping_respawned);
        assert!(
            d.iter().all(|d| !d.message.contains("watched only")),
            "{d:#?}"
        );
        let (cf, _) =
            run("respawn hacluster /usr/lib/heartbeat/pingd -m 100 -d 5s\nping 10.0.0.1\n");
        assert!(cf.ping_respawned, "pingd counts too, before or after");
    }

    #[test]
    fn repeated_medium_and_udp_are_deduplicated() {
        // Corpus cases 21 and 24: `bcast eth0` and `udp eth0` (= bcast).
        let (cf, d) = run("bcast eth0\nmcast eth0 225.0.0.1 694 1 0\nudp eth0\n");
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
        assert_eq!(cf.links.len(), 2);
        assert!(
            d.iter()
                .any(|d| d.line == Some(3) && d.message.contains("hb runs it once"))
        );
    }

    #[test]
    fn udpport_applies_to_media_after_it() {
        // Heartbeat's bcast/ucast plugins read udpport at their first line.
        let (cf, d) = run("bcast eth0\nudpport 700\nbcast eth1\nucast eth2 10.0.0.2\n");
        assert!(d.is_empty(), "{d:#?}");
        let ports: Vec<_> = cf.links.iter().map(|l| l.port).collect();
        assert_eq!(ports, [None, None, Some((700, 2))]);
        let (cf, _) = run("udpport 700\nbcast eth0\n");
        assert_eq!(cf.links[0].port, Some((700, 1)));
    }

    #[test]
    fn names_are_resolved_as_heartbeat() {
        let host = FakeHost {
            names: vec![
                (
                    "node-1.example".into(),
                    vec!["fd00::1".parse().unwrap(), "10.0.0.1".parse().unwrap()],
                ),
                ("gw.example".into(), vec!["10.0.0.254".parse().unwrap()]),
            ],
            addrs: vec![],
        };
        let (cf, d) = run_on(
            &host,
            "ucast eth0 node-1.example\nping gw.example\nping nowhere.example\n",
        );
        assert_eq!(
            cf.links[0].kind,
            LinkKind::Ucast {
                peers: vec!["10.0.0.1".parse().unwrap()]
            }
        );
        assert_eq!(cf.ping_nodes, ["10.0.0.254".parse::<IpAddr>().unwrap()]);
        let errors: Vec<String> = d
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            errors,
            ["ha.cf:3: ping: `nowhere.example` does not resolve"]
        );
        assert!(d[0].message.contains("resolved to 10.0.0.1"), "{d:#?}");
    }

    #[test]
    fn pacemaker_is_recognised() {
        assert_eq!(
            run("crm respawn\n").0.pacemaker,
            Some(("crm respawn".into(), 1))
        );
        assert_eq!(
            run("pacemaker on\n").0.pacemaker,
            Some(("pacemaker on".into(), 1))
        );
        assert_eq!(run("crm off\n").0.pacemaker, None);
        assert_eq!(
            run("respawn hacluster /usr/lib/heartbeat/crmd\n")
                .0
                .pacemaker,
            Some(("respawn hacluster /usr/lib/heartbeat/crmd".into(), 1))
        );
        assert_eq!(
            run("respawn root /usr/lib64/heartbeat/ifcheckd\n")
                .0
                .pacemaker,
            None
        );
    }

    #[test]
    fn cluster_and_realtime() {
        let (cf, d) = run("cluster lab\nrealtime on\n");
        assert!(d.is_empty());
        assert_eq!(cf.cluster.as_deref(), Some("lab"));
        assert_eq!(cf.realtime, Some(true));
    }
}
