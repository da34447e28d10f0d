//! The failover benchmark's outage distributions as an SVG chart
//! (`bench-failover` writes it): per fault a panel, per contender a row
//! with a dot per trial on one log scale shared by all panels, its median
//! and p95 marked and written beside it.

use crate::lab::report::pct;
use crate::svg::{self, Doc, Log, attr};

/// One contender's trials of one fault.
pub struct Series {
    /// The contender's column name, as the benchmark's table has it.
    pub name: String,
    pub outages_ms: Vec<f64>,
    pub failed: usize,
}

/// One fault's panel.
pub struct Group {
    pub fault: String,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 270.0;
const RIGHT: f64 = 176.0;
const HEADER: f64 = 82.0;
const GROUP_TITLE: f64 = 22.0;
const ROW: f64 = 20.0;
const AXIS: f64 = 30.0;
const GAP: f64 = 12.0;
const FOOTER: f64 = 26.0;

/// The contender's colour, by family.
fn color(name: &str) -> &'static str {
    match name.split_whitespace().next().unwrap_or("") {
        "hb" => "#2f9e44",
        "keepalived" => "#1c7ed6",
        "heartbeat" => "#e03131",
        _ => "#6c757d",
    }
}

/// A column name short enough for the chart's left margin (the full one
/// is the row's tooltip).
pub fn short_name(name: &str) -> String {
    let s = if let Some(rest) = name.strip_prefix("hb ") {
        format!(
            "hb {}",
            rest.replace("(keepalived-equivalent)", "(keepalived-like)")
        )
    } else if let Some(rest) = name.strip_prefix("keepalived ") {
        // "2.2.7 advert_int 0.01, VRRP on eth2 + track_interface eth0, ..."
        let rest = rest
            .split_once(' ')
            .filter(|(v, _)| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .map_or(rest, |(_, r)| r);
        let rest = rest
            .replace("advert_int ", "advert ")
            .replace(", VRRP on ", ", ")
            .replace("track_interface", "track")
            .replace("down_timer_adverts", "down_timer");
        format!("keepalived {rest}")
    } else if let Some(rest) = name.strip_prefix("heartbeat ") {
        let rest = rest.split(" (").next().unwrap_or(rest);
        format!(
            "Heartbeat {}",
            rest.replace("keepalive ", "").replace("deadtime ", "")
        )
    } else {
        name.to_string()
    };
    svg::truncate(&s, 44)
}

/// The chart: `title` and `subtitle` on top, then one panel per group.
pub fn chart(title: &str, subtitle: &str, groups: &[Group]) -> String {
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.series.iter())
        .flat_map(|s| s.outages_ms.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (min, max) = (
        all.iter().copied().fold(f64::INFINITY, f64::min),
        all.iter().copied().fold(0.0, f64::max),
    );
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let sx = if all.is_empty() {
        Log::around(0.1, 1000.0, x0, x1)
    } else {
        // Headroom: a value just under a decade is not drawn on the edge.
        Log::around(
            min,
            if max > 10f64.powf(max.log10().ceil()) / 1.1 {
                max * 1.2
            } else {
                max
            },
            x0,
            x1,
        )
    };
    let height = HEADER
        + groups
            .iter()
            .map(|g| GROUP_TITLE + g.series.len().max(1) as f64 * ROW + AXIS + GAP)
            .sum::<f64>()
        + FOOTER;
    let mut d = Doc::new(WIDTH, height);
    d.style(
        ".title{font-size:15px;font-weight:bold}\n\
         .caption{font-size:11px;fill:#495057}\n\
         .gtitle{font-size:13px;font-weight:bold;fill:#212529}\n\
         .name{font-size:11px;fill:#212529}\n\
         .value{font-size:10px;fill:#343a40}\n\
         .failed{font-size:10px;fill:#e03131;font-weight:bold}\n\
         .none{font-size:10px;fill:#868e96;font-style:italic}\n\
         .tick{font-size:10px;fill:#495057}\n\
         .axis-line{stroke:#495057;stroke-width:1}\n\
         .grid{stroke:#ced4da;stroke-width:1}\n\
         .grid-minor{stroke:#edf0f2;stroke-width:1}\n\
         .median{stroke:#212529;stroke-width:3}\n\
         .p95{stroke:#212529;stroke-width:1.5}",
    );
    d.text(12.0, 22.0, title, " class=\"title\"");
    d.text(12.0, 39.0, subtitle, " class=\"caption\"");
    legend(&mut d, 12.0, 62.0);
    let (major, minor) = sx.ticks();
    let mut y = HEADER;
    for g in groups {
        d.open(&format!(" class=\"fault\"{}", attr("data-fault", &g.fault)));
        d.text(12.0, y + 15.0, &g.fault, " class=\"gtitle\"");
        d.text(
            WIDTH - RIGHT + 8.0,
            y + 15.0,
            "median / p95 outage",
            " class=\"caption\"",
        );
        let top = y + GROUP_TITLE;
        let rows = g.series.len().max(1) as f64;
        let bottom = top + rows * ROW;
        for (i, s) in g.series.iter().enumerate() {
            series(&mut d, s, &sx, top + i as f64 * ROW, i);
        }
        for v in &minor {
            let x = sx.at(*v);
            d.line(x, top, x, bottom, " class=\"grid-minor\"");
        }
        let ticks: Vec<(f64, String)> = major
            .iter()
            .map(|v| (sx.at(*v), svg::fmt_ms_log(*v)))
            .collect();
        svg::x_axis(&mut d, bottom, x0, x1, &ticks, Some(top));
        // The dots over the grid: drawn again on top is simpler than
        // ordering the layers per row.
        for (i, s) in g.series.iter().enumerate() {
            dots(&mut d, s, &sx, top + i as f64 * ROW);
        }
        d.close();
        y = bottom + AXIS + GAP;
    }
    d.text(
        12.0,
        y + 12.0,
        "Outage: the longest gap between the client's answers from vip1, from the fault until \
         the standby serves (log scale, the same for every fault).",
        " class=\"caption\"",
    );
    d.finish()
}

fn legend(d: &mut Doc, x: f64, y: f64) {
    let mut x = x;
    for (name, label) in [
        ("hb", "hb"),
        ("keepalived", "keepalived"),
        ("heartbeat", "Heartbeat"),
    ] {
        d.circle(x + 4.0, y - 4.0, 3.5, &attr("fill", color(name)));
        d.text(x + 12.0, y, label, "");
        x += 12.0 + svg::text_width(label, 11.0) + 14.0;
    }
    d.circle(
        x + 4.0,
        y - 4.0,
        3.0,
        " fill=\"#868e96\" fill-opacity=\"0.6\"",
    );
    d.text(x + 12.0, y, "one trial", "");
    x += 12.0 + svg::text_width("one trial", 11.0) + 14.0;
    d.line(x + 3.0, y - 11.0, x + 3.0, y + 3.0, " class=\"median\"");
    d.text(x + 10.0, y, "median", "");
    x += 10.0 + svg::text_width("median", 11.0) + 14.0;
    d.line(x + 3.0, y - 9.0, x + 3.0, y + 1.0, " class=\"p95\"");
    d.text(x + 10.0, y, "p95", "");
    x += 10.0 + svg::text_width("p95", 11.0) + 14.0;
    d.line(
        x,
        y - 4.0,
        x + 18.0,
        y - 4.0,
        " stroke=\"#868e96\" stroke-width=\"1.5\"",
    );
    d.text(x + 24.0, y, "fastest to slowest trial", "");
}

/// A row's background, name, range, median, p95 and numbers.
fn series(d: &mut Doc, s: &Series, sx: &Log, y: f64, i: usize) {
    let c = color(&s.name);
    let mid = y + ROW / 2.0;
    d.open(&format!(" class=\"series\"{}", attr("data-name", &s.name)));
    d.title(&s.name);
    if i.is_multiple_of(2) {
        d.rect(8.0, y, WIDTH - 16.0, ROW, " fill=\"#f4f6f8\"");
    }
    d.text(
        LEFT - 10.0,
        mid + 4.0,
        &short_name(&s.name),
        " class=\"name\" text-anchor=\"end\"",
    );
    let v: Vec<f64> = s
        .outages_ms
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let vx = WIDTH - RIGHT + 8.0;
    if v.is_empty() {
        let why = if s.failed > 0 {
            format!("no trial passed ({} failed)", s.failed)
        } else {
            "not run".to_string()
        };
        d.text(LEFT + 8.0, mid + 4.0, &why, " class=\"none\"");
    } else {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        d.line(
            sx.at(lo),
            mid,
            sx.at(hi),
            mid,
            &format!(" stroke=\"{c}\" stroke-width=\"1.5\" stroke-opacity=\"0.7\""),
        );
        let (med, p95) = (pct(&v, 0.5), pct(&v, 0.95));
        d.line(
            sx.at(med),
            mid - 7.0,
            sx.at(med),
            mid + 7.0,
            " class=\"median\"",
        );
        d.line(
            sx.at(p95),
            mid - 5.0,
            sx.at(p95),
            mid + 5.0,
            " class=\"p95\"",
        );
        d.text(
            vx,
            mid + 4.0,
            &format!("{} / p95 {} ms", value(med), value(p95)),
            " class=\"value\"",
        );
    }
    if s.failed > 0 && !v.is_empty() {
        d.text(
            WIDTH - 12.0,
            mid + 4.0,
            &format!("{} failed", s.failed),
            " class=\"failed\" text-anchor=\"end\"",
        );
    }
    d.close();
}

/// The trials of a row, a dot each, spread a little up and down so that
/// equal outages stay countable.
fn dots(d: &mut Doc, s: &Series, sx: &Log, y: f64) {
    let c = color(&s.name);
    let mid = y + ROW / 2.0;
    for (k, v) in s
        .outages_ms
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
    {
        let jitter = ((k * 7) % 5) as f64 - 2.0;
        d.circle(
            sx.at(*v),
            mid + jitter * 1.6,
            2.6,
            &format!(" class=\"trial\" fill=\"{c}\" fill-opacity=\"0.55\""),
        );
    }
}

/// A millisecond value at a sensible precision.
fn value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<Group> {
        let s = |name: &str, v: &[f64], failed| Series {
            name: name.into(),
            outages_ms: v.to_vec(),
            failed,
        };
        vec![
            Group {
                fault: "graceful stop".into(),
                series: vec![
                    s("hb 2 ms / 10 ms", &[0.4, 0.41, 0.5], 0),
                    s(
                        "keepalived 2.2.7 advert_int 0.01, VRRP on eth0",
                        &[6.8, 7.1],
                        1,
                    ),
                    s("heartbeat <3.0.6> & co", &[], 0),
                ],
            },
            Group {
                fault: "cable pull".into(),
                series: vec![s("hb 2 ms / 10 ms", &[0.7, 3400.0], 0)],
            },
        ]
    }

    fn has_class(n: &roxmltree::Node, c: &str) -> bool {
        n.attribute("class")
            .is_some_and(|a| a.split_whitespace().any(|x| x == c))
    }

    #[test]
    fn the_chart_is_well_formed_with_a_dot_per_trial() {
        let s = chart("t & t", "sub <x>", &groups());
        let doc = roxmltree::Document::parse(&s).expect("well-formed XML");
        let count = |c: &str| doc.descendants().filter(|n| has_class(n, c)).count();
        assert_eq!(count("fault"), 2);
        assert_eq!(count("series"), 4);
        assert_eq!(count("trial"), 3 + 2 + 2);
        assert_eq!(
            count("median"),
            3 + 1,
            "one per row with trials, one in the legend"
        );
        assert!(
            doc.descendants()
                .any(|n| n.text() == Some("heartbeat <3.0.6> & co"))
        );
        assert!(s.contains("1 failed") && s.contains("not run"));
    }

    #[test]
    fn dots_sit_on_a_log_scale() {
        let s = chart("t", "s", &groups());
        let doc = roxmltree::Document::parse(&s).unwrap();
        let xs: Vec<f64> = doc
            .descendants()
            .filter(|n| has_class(n, "trial"))
            .map(|n| n.attribute("cx").unwrap().parse().unwrap())
            .collect();
        // 0.7 ms and 3400 ms (the cable pull's) at their decades' places
        // between 0.1 ms and 10 s.
        let per_decade = (WIDTH - RIGHT - LEFT) / 5.0;
        let at = |v: f64| LEFT + (v.log10() + 1.0) * per_decade;
        assert!((xs[5] - at(0.7)).abs() < 0.1);
        assert!((xs[6] - at(3400.0)).abs() < 0.1);
    }

    #[test]
    fn short_names() {
        assert_eq!(
            short_name("keepalived 2.2.7 advert_int 0.01, VRRP on eth2 + track_interface eth0"),
            "keepalived advert 0.01, eth2 + track eth0"
        );
        assert_eq!(
            short_name(
                "heartbeat 3.0.6 keepalive 10 ms / deadtime 40 ms (bcast eth2, ping + ipfail)"
            ),
            "Heartbeat 3.0.6 10 ms / 40 ms"
        );
        assert_eq!(
            short_name("hb 10 ms / 30 ms (keepalived-equivalent)"),
            "hb 10 ms / 30 ms (keepalived-like)"
        );
    }
}
