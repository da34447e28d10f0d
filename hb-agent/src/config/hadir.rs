//! A Heartbeat ha.d directory (ha.cf, haresources, authkeys) turned into a
//! Config. Heartbeat-compatible: what Heartbeat refused is refused, what hb
//! does not do is reported as a warning with its line.
use std::path::{Path, PathBuf};

use super::authkeys;
use super::diag::{Diag, has_errors};
use super::hacf::{self, HaCf};
use super::haresources;
use super::model::{
    ArpSettings, Config, DEFAULT_SCRIPT_TIMEOUT, DEFAULT_UDP_PORT, HA_DIR_CLUSTER, Link, Node,
    fnv1a32, heartbeat_initdead,
};
use super::text;
use super::validate::{self, Spot};

pub fn load_ha_dir(dir: &Path) -> Result<Config, Vec<Diag>> {
    let mut diags = Vec::new();
    let mut source = Vec::new();

    let hacf_path = dir.join("ha.cf");
    let cf = match text::read(&hacf_path, &mut diags) {
        Some(text) => {
            source.push(hacf_path.clone());
            let cf = hacf::parse(&text, &hacf_path, &mut diags);
            required_parts(&cf, &hacf_path, &mut diags);
            cf
        }
        None => HaCf::default(),
    };

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

    let udp_port = cf.udpport.unwrap_or(DEFAULT_UDP_PORT);
    let links: Vec<Link> = cf
        .links
        .iter()
        .map(|l| Link {
            name: l.name.clone(),
            iface: l.iface.clone(),
            kind: l.kind.clone(),
            port: l.port.unwrap_or(udp_port),
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

    // Heartbeat's own docs and tarball spell it `haresource` at times.
    let mut res_path = dir.join("haresources");
    if !res_path.exists() && dir.join("haresource").exists() {
        res_path = dir.join("haresource");
    }
    let groups = match text::read(&res_path, &mut diags) {
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

    let auth_path = dir.join("authkeys");
    let auth = authkeys::load(&auth_path, &mut diags);
    if auth_path.exists() {
        source.push(auth_path.clone());
    }

    let cluster = cf
        .cluster
        .clone()
        .unwrap_or_else(|| HA_DIR_CLUSTER.to_string());
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

    validate::sort(&mut diags, &[hacf_path, res_path, auth_path]);
    if has_errors(&diags) {
        return Err(diags);
    }
    config.warnings = diags;
    Ok(config)
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
