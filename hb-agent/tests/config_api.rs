//! The public API as the agent uses it, from outside the crate.
use std::path::Path;

use hb_agent::config::{Severity, Source, check, load, load_toml_str};

const CLUSTER: &str = r#"
cluster = "lab"
[timing]
keepalive = "200ms"
deadtime = "1s"
[auth]
secret = "lab secret"
[[link]]
name = "hb"
iface = "veth-hb"
kind = "ucast"
[[node]]
name = "alpha"
addrs = { hb = "10.99.0.1" }
[[node]]
name = "beta"
addrs = { hb = "10.99.0.2" }
[[group]]
name = "web"
nodes = ["alpha", "beta"]
[[group.resource]]
type = "ip"
address = "10.99.1.10/24"
iface = "veth-svc"
"#;

#[test]
fn a_node_finds_itself_and_its_groups() {
    let cfg = load_toml_str(CLUSTER, Path::new("lab.toml")).expect("valid");
    let me = cfg.local_node("beta").expect("beta is a node");
    assert_eq!(me.addrs["hb"].to_string(), "10.99.0.2");
    let mine: Vec<&str> = cfg.groups_for(&me.name).map(|g| g.name.as_str()).collect();
    assert_eq!(mine, ["web"]);
    assert!(cfg.auth.authenticated);
    assert_eq!(cfg.timing.warntime.as_millis(), 500);
}

#[test]
fn check_reports_missing_interfaces_as_warnings() {
    let cfg = load_toml_str(CLUSTER, Path::new("lab.toml")).expect("valid");
    let diags = check(&cfg);
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:?}"
    );
    assert!(diags.iter().any(|d| d.message.contains("`veth-hb`")));
}

#[test]
fn errors_print_as_file_line_field_message() {
    let bad = CLUSTER.replace("deadtime = \"1s\"", "deadtime = \"300ms\"");
    let diags = load_toml_str(&bad, Path::new("lab.toml")).unwrap_err();
    let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["lab.toml:5: timing.deadtime: deadtime (300ms) must be more than twice keepalive (200ms)"]
    );
}

#[test]
fn load_a_missing_file() {
    let diags = load(&Source::Toml("/nonexistent/hb.toml".into())).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0]
            .to_string()
            .starts_with("/nonexistent/hb.toml: cannot read")
    );
}
