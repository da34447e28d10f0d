//! Health checks in the configuration: `[[group.check]]` in hb.toml and
//! `checks.toml` beside a Heartbeat directory's haresources.
use std::fs;
use std::path::Path;
use std::time::Duration;

use super::tests::{MINIMAL, ha_dir};
use super::{load_ha_dir, load_toml_str};
use crate::config::diag::Diag;
use hb_core::health::{CheckKind, OnFail, ProcessBy, When};

const GROUP: &str = r#"
[[group]]
name = "web"
nodes = ["a", "b"]
[[group.resource]]
type = "ip"
address = "10.0.0.10/24"
iface = "eth0"
[[group.resource]]
type = "lsb"
name = "nginx"
"#;

fn with_checks(checks: &str) -> String {
    format!("{MINIMAL}{GROUP}{checks}")
}

fn errs(text: &str) -> Vec<String> {
    let d = load_toml_str(text, Path::new("hb.toml")).unwrap_err();
    d.iter()
        .filter(|d| d.is_error())
        .map(Diag::to_string)
        .collect()
}

#[test]
fn every_check_type_parses_with_its_defaults() {
    let cfg = load_toml_str(
        &with_checks(
            r#"
[[group.check]]
type = "process"
process = "nginx"
interval = "100ms"
[[group.check]]
type = "tcp"
address = "127.0.0.1:80"
[[group.check]]
type = "http"
url = "http://127.0.0.1/health"
body = "ok"
interval = "10ms"
timeout = "5ms"
fall = 2
rise = 3
hold_down = "0s"
[[group.check]]
type = "exec"
command = "/usr/local/bin/db-ok --quick"
[[group.check]]
type = "file"
path = "/run/hb/web.state"
on_fail = "ignore"
[[group.check]]
type = "interface"
iface = "eth0"
[[group.check]]
type = "monitor"
on_fail = "restart"
max_restarts = 2
"#,
        ),
        Path::new("hb.toml"),
    )
    .unwrap();
    let c = &cfg.groups[0].checks;
    let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "process:nginx",
            "tcp:127.0.0.1:80",
            "http:http://127.0.0.1/health",
            "exec:/usr/local/bin/db-ok",
            "file:/run/hb/web.state",
            "interface:eth0",
            "monitor:nginx"
        ]
    );
    assert_eq!(
        c[0].kind,
        CheckKind::Process(ProcessBy::Name("nginx".into()))
    );
    assert_eq!(
        (c[0].interval, c[0].timeout),
        (Duration::from_millis(100), Duration::from_millis(100)),
        "timeout defaults to the interval"
    );
    assert_eq!(
        (c[1].rise, c[1].fall, c[1].hold_down),
        (1, 1, Duration::from_secs(5))
    );
    assert_eq!(
        (c[2].rise, c[2].fall, c[2].hold_down, c[2].timeout),
        (3, 2, Duration::ZERO, Duration::from_millis(5))
    );
    assert!(
        matches!(&c[2].kind, CheckKind::Http(t) if t.body.as_deref() == Some("ok") && t.status == 200)
    );
    assert_eq!(c[4].on_fail, OnFail::Ignore);
    assert_eq!(c[5].when, When::Always);
    assert_eq!(c[6].kind, CheckKind::Monitor { resource: 1 });
    assert_eq!(
        c[6].when,
        When::Held,
        "a monitor runs where the group is held"
    );
    assert_eq!(
        c[6].on_fail,
        OnFail::Restart {
            max: 2,
            window: Duration::from_secs(60)
        }
    );
    assert_eq!(
        c[0].origin.as_ref().unwrap().line,
        MINIMAL.lines().count() + GROUP.lines().count() + 3
    );
}

#[test]
fn bad_checks_are_named_with_their_line_and_field() {
    let base = MINIMAL.lines().count() + GROUP.lines().count();
    for (check, line, says) in [
        (
            "type = \"ping\"",
            2,
            "group.check.type: expected \"process\"",
        ),
        (
            "type = \"http\"\nurl = \"https://10.0.0.1/\"",
            3,
            "group.check.url: \"https://10.0.0.1/\": https is not supported",
        ),
        (
            "type = \"http\"\nurl = \"http://web.example/\"",
            3,
            "not an IP address",
        ),
        (
            "type = \"tcp\"\naddress = \"10.0.0.1\"",
            3,
            "group.check.address: expected IP:PORT",
        ),
        ("type = \"tcp\"", 2, "type = \"tcp\" needs `address`"),
        (
            "type = \"process\"\nprocess = \"a\"\nunit = \"a.service\"",
            2,
            "exactly one of",
        ),
        (
            "type = \"process\"\nprocess = \"/usr/sbin/nginx\"",
            3,
            "no slash",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\nurl = \"http://1.1.1.1/\"",
            4,
            "group.check.url: does not apply to type = \"exec\"",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\nrise = 0",
            4,
            "group.check.rise: must be at least 1",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\ninterval = \"0s\"",
            4,
            "group.check.interval: must be greater than zero",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\ninterval = 5",
            4,
            "a duration needs units",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\non_fail = \"restart\"",
            4,
            "only a monitor check can restart",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\nmax_restarts = 3",
            4,
            "applies only with on_fail = \"restart\"",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\nwhen = \"sometimes\"",
            4,
            "expected \"always\" or \"held\"",
        ),
        (
            "type = \"exec\"\ncommand = \"x\"\ngroup = \"web\"",
            4,
            "`group` is for ha.d/checks.toml",
        ),
        (
            "type = \"monitor\"\nresource = \"apache\"",
            3,
            "`apache` is not a script resource of this group (its scripts: nginx)",
        ),
        (
            "type = \"monitor\"\nwhen = \"always\"",
            3,
            "`when` does not apply",
        ),
        (
            "type = \"file\"\npath = \"state\"",
            3,
            "must be an absolute path",
        ),
    ] {
        let e = errs(&with_checks(&format!("[[group.check]]\n{check}\n")));
        let want = format!("hb.toml:{}: ", base + line);
        assert!(
            e.iter().any(|e| e.starts_with(&want) && e.contains(says)),
            "{check:?}: want {want}...{says}, got {e:?}"
        );
    }
    let e = errs(&with_checks(
        "[[group.check]]\ntype = \"exec\"\ncommand = \"a\"\n[[group.check]]\ntype = \"exec\"\ncommand = \"a\"\n",
    ));
    assert!(
        e.iter().any(|e| e.contains("two checks named `exec:a`")),
        "{e:?}"
    );
}

#[test]
fn ha_dir_checks_toml_names_groups_as_status_does() {
    let (_tmp, dir) = ha_dir("seed-fixed", "node1");
    let cfg = load_ha_dir(&dir).unwrap();
    let group = cfg.groups[0].name.clone();
    fs::write(
        dir.join("checks.toml"),
        format!("[[check]]\ngroup = \"{group}\"\ntype = \"process\"\nprocess = \"httpd\"\ninterval = \"50ms\"\n"),
    )
    .unwrap();
    let cfg = load_ha_dir(&dir).unwrap();
    assert_eq!(cfg.groups[0].checks.len(), 1);
    assert_eq!(cfg.groups[0].checks[0].name, "process:httpd");
    assert!(cfg.groups[1].checks.is_empty());
    assert!(cfg.source.iter().any(|p| p.ends_with("checks.toml")));

    fs::write(dir.join("checks.toml"), "[[check]]\ngroup = \"nope\"\ntype = \"exec\"\ncommand = \"true\"\n[[check]]\ntype = \"exec\"\ncommand = \"true\"\n").unwrap();
    let e: Vec<String> = load_ha_dir(&dir)
        .unwrap_err()
        .iter()
        .filter(|d| d.is_error())
        .map(Diag::to_string)
        .collect();
    assert!(
        e.iter()
            .any(|e| e.contains("checks.toml:2: check.group: no group `nope` in haresources")),
        "{e:?}"
    );
    assert!(e.iter().any(|e| e.contains("checks.toml:6: check.group: a check in checks.toml needs `group`")), "{e:?}");
}

#[test]
fn check_on_the_host_names_a_missing_program_or_unit_with_its_line() {
    let cfg = load_toml_str(
        &with_checks(
            r#"
[[group.check]]
type = "exec"
command = "/usr/local/bin/db-ok --quick"
[[group.check]]
type = "exec"
command = "no-such-program-hb --x"
[[group.check]]
type = "exec"
command = "[ -e /run/ok ]"
[[group.check]]
type = "process"
unit = "nginx"
[[group.check]]
type = "process"
unit = "sshd.service"
"#,
        ),
        Path::new("hb.toml"),
    )
    .unwrap();
    let root = tempfile::TempDir::new().unwrap();
    let unit_dir = root.path().join("lib/systemd/system");
    fs::create_dir_all(&unit_dir).unwrap();
    fs::create_dir_all(root.path().join("run/systemd/system")).unwrap();
    fs::write(unit_dir.join("sshd.service"), "").unwrap();
    let mut diags = Vec::new();
    super::check_probes::host_in(&cfg, root.path(), &mut diags);
    let got: Vec<String> = diags.iter().map(Diag::to_string).collect();
    let base = MINIMAL.lines().count() + GROUP.lines().count();
    let want = [
        format!(
            "hb.toml:{}: command: check `exec:/usr/local/bin/db-ok` of group `web`: /usr/local/bin/db-ok does not exist",
            base + 3
        ),
        format!(
            "hb.toml:{}: command: check `exec:no-such-program-hb` of group `web`: `no-such-program-hb` is not on PATH",
            base + 6
        ),
        format!(
            "hb.toml:{}: unit: check `process:nginx` of group `web`: unknown unit nginx.service",
            base + 12
        ),
    ];
    assert_eq!(got.len(), 3, "{got:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.starts_with(w.as_str()), "{g}\nwant {w}");
    }
}
