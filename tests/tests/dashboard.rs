//! The Grafana dashboard (dist/grafana/hb-dashboard.json) against real
//! agents: every metric a panel or a template variable queries must be in
//! a scrape of a running agent, with the labels the query matches and
//! groups on. The names come out of the PromQL by a small tokenizer
//! (`refs`): identifiers that are not functions, aggregations, keywords or
//! label names; strings, ranges and Grafana variables skipped. The
//! dashboard's structure (the panels the issue asks for, datasource and
//! template variables, ids, layout) is checked without root.
//!
//! The agents: nodes a and b on a veth pair, each in its namespace, with a
//! group that b holds and a file health check on it, so that every family
//! has samples (a peer heard, a group, a check). The scrape of b is taken
//! once b's status shows the cluster settled.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use hb_agent::control::StatusReport;
use hb_testkit::process::Process;
use hb_tests::{
    scrape::{Exposition, scrape},
    twohost::{TwoHosts, config},
};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../dist/grafana/hb-dashboard.json");
const METRICS_ADDR: &str = "127.0.0.1:9694";

/// Labels Prometheus adds to every series of a target (not in a scrape).
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// Grafana's own variables.
const GRAFANA_VARS: [&str; 6] = [
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
];

/// What the issue asks for, by title, panel type and a metric it queries.
const REQUIRED_PANELS: [(&str, &str, &str); 10] = [
    ("Peers up", "stat", "hb_peer_up"),
    ("Peer state per link", "state-timeline", "hb_peer_up"),
    (
        "Heartbeat loss per link",
        "timeseries",
        "hb_heartbeats_lost_total",
    ),
    (
        "Heartbeat jitter per link",
        "timeseries",
        "hb_peer_jitter_seconds",
    ),
    (
        "Late heartbeats per link",
        "timeseries",
        "hb_heartbeats_late_total",
    ),
    (
        "XDP drops by reason",
        "timeseries",
        "hb_xdp_packets_dropped_total",
    ),
    ("Group owner over time", "state-timeline", "hb_group_owner"),
    (
        "Takeover duration",
        "bargauge",
        "hb_takeover_duration_seconds_bucket",
    ),
    (
        "Sender lateness (p99)",
        "timeseries",
        "hb_heartbeat_send_lateness_p99_seconds",
    ),
    ("Health checks", "state-timeline", "hb_check_up"),
];

// ---- The PromQL tokenizer --------------------------------------------------

/// What one PromQL expression refers to.
#[derive(Debug, Default, PartialEq)]
struct Refs {
    /// Metric names, each with the label names its selector matches on.
    metrics: Vec<(String, Vec<String>)>,
    /// Label names of by, without, on, ignoring, group_left, group_right.
    grouping: Vec<String>,
    /// Grafana variables: `$name`, `${name}`, `${name:format}`.
    vars: Vec<String>,
}

/// Take label lists in parentheses.
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Aggregation operators and keywords: never metric names.
const KEYWORDS: [&str; 22] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
];
/// PromQL functions (a typo is an error, not a metric).
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "end",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "start",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

fn ident(c: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < c.len() && is_ident(c[i]) {
        i += 1;
    }
    (c[start..i].iter().collect(), i)
}

/// The index after the string literal opening at `i`; Grafana variables in
/// it go to `vars`.
fn string(c: &[char], i: usize, vars: &mut Vec<String>) -> Result<usize, String> {
    let q = c[i];
    let mut j = i + 1;
    while j < c.len() && c[j] != q {
        if c[j] == '\\' && q != '`' {
            j += 1;
        }
        j += 1;
    }
    if j >= c.len() {
        return Err(format!("unterminated string at {i}"));
    }
    variables(&c[i + 1..j], vars)?;
    Ok(j + 1)
}

/// The Grafana variables in `c` (a string's content, a range); a `$` that
/// names none (a regex's end anchor) is text.
fn variables(c: &[char], vars: &mut Vec<String>) -> Result<(), String> {
    let mut i = 0;
    while i < c.len() {
        if c[i] == '$' {
            let (name, next) = variable(c, i)?;
            if !name.is_empty() {
                vars.push(name);
            }
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// The variable at `c[i] == '$'` (empty if none) and the index after it.
fn variable(c: &[char], i: usize) -> Result<(String, usize), String> {
    if c.get(i + 1) == Some(&'{') {
        let end = (i + 2..c.len())
            .find(|&j| c[j] == '}')
            .ok_or(format!("unterminated ${{ at {i}"))?;
        let inner: String = c[i + 2..end].iter().collect();
        let name = inner.split(':').next().unwrap_or_default().to_string();
        return Ok((name, end + 1));
    }
    Ok(ident(c, i + 1))
}

/// The label names of the matchers `{a="x", b=~"y"}` opening at `i`; the
/// index after the closing brace.
fn matchers(
    c: &[char],
    mut i: usize,
    labels: &mut Vec<String>,
    vars: &mut Vec<String>,
) -> Result<usize, String> {
    i += 1;
    loop {
        i = skip_ws(c, i);
        match c.get(i) {
            Some('}') => return Ok(i + 1),
            Some(&ch) if is_ident_start(ch) => {}
            other => return Err(format!("label name expected at {i}, found {other:?}")),
        }
        let (name, next) = ident(c, i);
        labels.push(name);
        i = skip_ws(c, next);
        let op: String = c[i..(i + 2).min(c.len())].iter().collect();
        i += match op.as_str() {
            "=~" | "!~" | "!=" => 2,
            _ if op.starts_with('=') => 1,
            _ => return Err(format!("matcher operator expected at {i}")),
        };
        i = skip_ws(c, i);
        if !matches!(c.get(i), Some('"' | '\'' | '`')) {
            return Err(format!("label value expected at {i}"));
        }
        i = skip_ws(c, string(c, i, vars)?);
        match c.get(i) {
            Some(',') => i += 1,
            Some('}') => {}
            _ => return Err(format!(", or }} expected at {i}")),
        }
    }
}

/// The metrics, grouping labels and Grafana variables of `expr`.
fn refs(expr: &str) -> Result<Refs, String> {
    let c: Vec<char> = expr.chars().collect();
    let mut r = Refs::default();
    let mut depth = 0i32;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if matches!(ch, '"' | '\'' | '`') {
            i = string(&c, i, &mut r.vars)?;
        } else if ch == '[' {
            // A range or subquery: durations and variables only.
            let end = (i..c.len())
                .find(|&j| c[j] == ']')
                .ok_or(format!("unterminated [ at {i}"))?;
            variables(&c[i + 1..end], &mut r.vars)?;
            i = end + 1;
        } else if ch == '$' {
            let (name, next) = variable(&c, i)?;
            if name.is_empty() {
                return Err(format!("lone $ at {i}"));
            }
            r.vars.push(name);
            i = next;
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration (0.99, 5m, 1e3, 0x1f).
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(ch) {
            let (word, next) = ident(&c, i);
            let lower = word.to_ascii_lowercase();
            let j = skip_ws(&c, next);
            let paren = c.get(j) == Some(&'(');
            i = next;
            if GROUPING.contains(&lower.as_str()) {
                if paren {
                    let end = (j..c.len())
                        .find(|&k| c[k] == ')')
                        .ok_or(format!("unterminated label list at {j}"))?;
                    let list: String = c[j + 1..end].iter().collect();
                    for l in list.split(',').map(str::trim).filter(|l| !l.is_empty()) {
                        if !l.chars().all(is_ident) {
                            return Err(format!("bad label {l:?} in {word}(...)"));
                        }
                        r.grouping.push(l.to_string());
                    }
                    i = end + 1;
                }
            } else if KEYWORDS.contains(&lower.as_str()) {
            } else if paren {
                if !FUNCTIONS.contains(&word.as_str()) {
                    return Err(format!("unknown function {word}"));
                }
            } else {
                let mut labels = Vec::new();
                if c.get(j) == Some(&'{') {
                    i = matchers(&c, j, &mut labels, &mut r.vars)?;
                }
                r.metrics.push((word, labels));
            }
        } else {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                '{' => return Err(format!("selector without a metric name at {i}")),
                ']' | '}' => return Err(format!("unbalanced {ch} at {i}")),
                _ => {}
            }
            if depth < 0 {
                return Err(format!("unbalanced ) at {i}"));
            }
            i += 1;
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    Ok(r)
}

// ---- The dashboard ---------------------------------------------------------

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("dist/grafana/hb-dashboard.json is JSON")
}

/// Every panel, those inside rows included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// (panel title, expr) of every query target.
fn exprs(d: &Value) -> Vec<(String, String)> {
    panels(d)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                let e = t["expr"].as_str().expect("every target has an expr");
                (title.clone(), e.to_string())
            })
        })
        .collect()
}

/// A query variable's `label_values(SELECTOR, LABEL)`: its references and
/// the label.
fn label_values(q: &str) -> Result<(Refs, String), String> {
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or(format!("{q:?} is not label_values(metric, label)"))?;
    let (sel, label) = inner.rsplit_once(',').ok_or(format!("{q:?}: no label"))?;
    Ok((refs(sel)?, label.trim().to_string()))
}

fn variables_of(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .collect()
}

/// The query text of a query variable (an object in schema 39, a string in
/// older dashboards).
fn variable_query(v: &Value) -> &str {
    v["query"]["query"]
        .as_str()
        .or(v["query"].as_str())
        .expect("query variable has a query")
}

/// Every metric name the dashboard's panels and variables query.
fn queried_metrics(d: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (title, e) in exprs(d) {
        let r = refs(&e).unwrap_or_else(|err| panic!("panel {title:?}: {err} in {e}"));
        names.extend(r.metrics.into_iter().map(|(m, _)| m));
    }
    for v in variables_of(d).into_iter().filter(|v| v["type"] == "query") {
        let (r, _) = label_values(variable_query(v)).unwrap();
        names.extend(r.metrics.into_iter().map(|(m, _)| m));
    }
    names
}

#[test]
fn extractor_takes_metrics_not_functions_labels_or_variables() {
    let r = refs(
        "histogram_quantile(0.99, sum by (group, le) (rate(hb_x_bucket{group=\"w,e}b\"}\
         [$__rate_interval])\n * on (job, instance) group_left (node) \
         hb_node_info{cluster=~\"$cluster\", node=~\"${node:regex}\"}))",
    )
    .unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        r.metrics,
        vec![
            ("hb_x_bucket".to_string(), s(&["group"])),
            ("hb_node_info".to_string(), s(&["cluster", "node"])),
        ]
    );
    assert_eq!(r.grouping, s(&["group", "le", "job", "instance", "node"]));
    assert_eq!(r.vars, s(&["__rate_interval", "cluster", "node"]));

    let r = refs(
        "sum without(reason)(rate(a_total[5m:1m] offset 1h)) > bool 0.5 and on() vector(1) \
         or b / ignoring (le) group_right c @ end() unless count(d{x!~'q\\'y$'}) > 1e3",
    )
    .unwrap();
    let names: Vec<&str> = r.metrics.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["a_total", "b", "c", "d"]);
    assert_eq!(r.metrics[3].1, s(&["x"]));
    assert_eq!(r.grouping, s(&["reason", "le"]));
    assert!(
        r.vars.is_empty(),
        "a regex's $ is no variable: {:?}",
        r.vars
    );

    for bad in [
        "sum(rate(x[5m])",
        "x)",
        "histogram_quantil(0.5, x)",
        "{__name__=\"x\"}",
        "x{a=\"b\"",
        "x{=\"b\"}",
        "x[5m",
        "x{a=\"b\" c=\"d\"}",
        "x / $",
    ] {
        assert!(refs(bad).is_err(), "{bad} accepted");
    }

    let (r, l) = label_values("label_values(hb_node_info{cluster=~\"$cluster\"}, node)").unwrap();
    assert_eq!(r.metrics, vec![("hb_node_info".into(), s(&["cluster"]))]);
    assert_eq!(l, "node");
}

#[test]
fn dashboard_has_the_panels_variables_and_layout_asked_for() {
    let d = dashboard();
    let schema = d["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));

    // Template variables: the data source, then cluster and node from a
    // real hb metric, through that data source.
    let vars = variables_of(&d);
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    let ds = var("DS_PROMETHEUS");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for name in ["cluster", "node"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${DS_PROMETHEUS}", "{name}");
        let (r, label) = label_values(variable_query(v)).unwrap();
        assert_eq!(label, name);
        assert_eq!(r.metrics.len(), 1, "{name}: one metric");
    }
    let defined: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();

    // Panels: unique ids, on the 24-column grid, no two overlapping, every
    // query through the data source variable and with known variables.
    let all = panels(&d);
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(&str, [u64; 4])> = Vec::new();
    for p in &all {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(p["id"].as_u64().expect("id")), "id of {title}");
        let g = &p["gridPos"];
        let b = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(b[0] + b[2] <= 24 && b[2] > 0 && b[3] > 0, "{title}: {g}");
        for (other, o) in &boxes {
            let apart = b[0] + b[2] <= o[0]
                || o[0] + o[2] <= b[0]
                || b[1] + b[3] <= o[1]
                || o[1] + o[3] <= b[1];
            assert!(apart, "{title} overlaps {other}");
        }
        boxes.push((title, b));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refids = BTreeSet::new();
        for t in targets {
            assert!(
                refids.insert(t["refId"].as_str().expect("refId")),
                "{title}"
            );
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let r = refs(t["expr"].as_str().unwrap()).unwrap();
            for v in &r.vars {
                assert!(
                    defined.contains(v.as_str()) || GRAFANA_VARS.contains(&v.as_str()),
                    "{title}: unknown variable ${v}"
                );
            }
            assert!(!r.metrics.is_empty(), "{title}: a query of no metric");
        }
    }

    for (title, kind, metric) in REQUIRED_PANELS {
        let p = all
            .iter()
            .find(|p| p["title"] == title && p["type"] != "row")
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        assert_eq!(p["type"], kind, "{title}");
        let queries: Vec<String> = exprs(&d)
            .into_iter()
            .filter(|(t, _)| t == title)
            .flat_map(|(_, e)| refs(&e).unwrap().metrics)
            .map(|(m, _)| m)
            .collect();
        assert!(queries.iter().any(|m| m == metric), "{title}: {queries:?}");
    }

    let names = queried_metrics(&d);
    assert!(names.len() >= 20, "only {} metrics: {names:?}", names.len());
    assert!(names.iter().all(|n| n.starts_with("hb_")), "{names:?}");
}

// ---- Against real agents -----------------------------------------------------

const CLUSTER: &str = "dashboard-test";
const SECRET: &str = "dashboard test secret";

/// Node a's agent, as `TwoHosts::start_b` starts b's.
fn start_a(h: &TwoHosts) -> Process {
    let log = std::fs::File::create(h.dir.join("a.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &h.a.name])
        .arg(hb_tests::lab::default_agent_bin().expect("hb-agent built (cargo build --release)"))
        .args(["run", "--node", "a", "--no-pin", "--config"])
        .arg(&h.conf)
        .arg("--socket")
        .arg(h.dir.join("a.sock"))
        .arg("--state-dir")
        .arg(h.dir.join("state-a"))
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process::new(child)
}

/// b sees a alive on its link and holds web, its check up.
fn settled(s: &StatusReport) -> bool {
    let a_alive = s
        .nodes
        .iter()
        .any(|n| n.name == "a" && n.state == "alive" && !n.links.is_empty());
    let web = s.groups.iter().any(|g| {
        g.name == "web"
            && g.local == "held"
            && g.owner.as_deref() == Some("b")
            && !g.checks.is_empty()
            && g.checks.iter().all(|c| c.state == "up")
    });
    a_alive && web
}

#[test]
fn every_metric_the_dashboard_queries_is_in_a_real_scrape() {
    hb_testkit::require_root("dashboard");
    let d = dashboard();
    let h = TwoHosts::new("db", "").unwrap();
    let flag = h.dir.join("web.state");
    std::fs::write(&flag, "up\n").unwrap();
    let extra = format!("metrics_addr = \"{METRICS_ADDR}\"\nscript_dirs = [\"/usr/bin\"]");
    let text = config(CLUSTER, SECRET, "50ms", "500ms", &extra)
        + &format!(
            "[[group]]\nname = \"web\"\nnodes = [\"b\"]\n\
             [[group.resource]]\ntype = \"script\"\nname = \"true\"\n\
             [[group.check]]\ntype = \"file\"\npath = \"{}\"\ninterval = \"100ms\"\n",
            flag.display()
        );
    h.write_config(&text).unwrap();
    let _a = start_a(&h);
    let _b = h.start_b(&["--no-pin"]).unwrap();
    h.wait_status(settled);

    let addr: SocketAddr = METRICS_ADDR.parse().unwrap();
    let body = scrape(&h.b, addr).expect("b serves /metrics");
    let e = Exposition::parse(&body).expect("the scrape parses");

    let names = queried_metrics(&d);
    let missing: Vec<&String> = names.iter().filter(|n| !e.has(n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the agent does not export: {missing:?}\n\
         families exported: {:?}",
        e.families.keys().collect::<Vec<_>>()
    );
    // This cluster gives every family samples: a metric named only by a
    // HELP line (a bare histogram name, say) is not a series to query.
    let without: Vec<&String> = names
        .iter()
        .filter(|n| !e.series.contains_key(n.as_str()))
        .collect();
    assert!(
        without.is_empty(),
        "queried names with no series in the scrape: {without:?}\n{body}"
    );

    // The labels each query matches and groups on are the series' own (or
    // the target's, which Prometheus adds).
    let labels_of = |m: &str| -> BTreeSet<String> {
        let mut l = e.series.get(m).cloned().unwrap_or_default();
        l.extend(TARGET_LABELS.iter().map(|s| s.to_string()));
        l
    };
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (title, expr) in exprs(&d) {
        let r = refs(&expr).unwrap();
        let mut known = BTreeSet::new();
        for (m, ls) in &r.metrics {
            let have = labels_of(m);
            for l in ls.iter().filter(|l| !have.contains(*l)) {
                wrong
                    .entry(title.clone())
                    .or_default()
                    .push(format!("{m}{{{l}}}"));
            }
            known.extend(have);
        }
        for l in r.grouping.iter().filter(|l| !known.contains(*l)) {
            wrong
                .entry(title.clone())
                .or_default()
                .push(format!("by/on ({l})"));
        }
    }
    for v in variables_of(&d)
        .into_iter()
        .filter(|v| v["type"] == "query")
    {
        let (r, label) = label_values(variable_query(v)).unwrap();
        for (m, ls) in &r.metrics {
            let have = labels_of(m);
            for l in ls.iter().chain([&label]).filter(|l| !have.contains(*l)) {
                wrong
                    .entry(format!("variable {}", v["name"]))
                    .or_default()
                    .push(format!("{m}{{{l}}}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "labels not on the series queried: {wrong:#?}\n{body}"
    );
}
