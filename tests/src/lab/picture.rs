//! A scenario as a picture (SVG): time across, one lane per node; bars
//! for when the node answered vip1 / vip2 as the client saw it (the
//! prober's runs: by the reply's source MAC), the fault shaded on its
//! node's lane from its note to its recovery, and the agents' steps that
//! matter (peer dead, takeover decided, address up, group released) as
//! marks. Under the whole scenario, zooms on the moments the answering
//! node changed after a fault or a recovery. `write_all` writes one file
//! per scenario and an index page.

use std::path::{Path, PathBuf};

use anyhow::Result;
use hb_agent::rules::step;

use super::Lab;
use super::agents::group_is_vip;
use super::scenarios::ScenarioResult;
use super::timeline::Step;
use super::topology::{NODES, VIPS};
use crate::svg::{self, Doc, Linear, attr, esc};

/// What a scenario's picture shows, in ms since the scenario began.
#[derive(Clone, Debug, Default)]
pub struct Picture {
    pub title: String,
    /// One line under the title: the scenario's numbers and result.
    pub caption: String,
    pub end_ms: f64,
    /// One lane per node (and "other MAC" when an unknown MAC answered).
    pub lanes: Vec<String>,
    pub answers: Vec<Answer>,
    pub faults: Vec<FaultSpan>,
    pub marks: Vec<Mark>,
}

/// A run of answers to one VIP from one node (`Prober::runs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub vip: usize,
    pub lane: usize,
    pub from_ms: f64,
    pub to_ms: f64,
    pub count: usize,
}

/// A fault on one node: from the lab's note to the note of its recovery
/// (or the end of the scenario).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpan {
    pub lane: usize,
    pub from_ms: f64,
    pub to_ms: f64,
    pub label: String,
    pub recovered: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fault,
    Recovery,
    PeerDead,
    TakingOver,
    AddressUp,
    Released,
    AgentStarted,
}

impl Kind {
    fn color(self) -> &'static str {
        match self {
            Kind::Fault | Kind::Recovery => "#e03131",
            Kind::PeerDead => "#862e9c",
            Kind::TakingOver => "#0b7285",
            Kind::AddressUp => "#2f9e44",
            Kind::Released => "#8d5524",
            Kind::AgentStarted => "#6c757d",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Kind::Fault => "fault-edge",
            Kind::Recovery => "recovery",
            Kind::PeerDead => "peer-dead",
            Kind::TakingOver => "takeover",
            Kind::AddressUp => "address-up",
            Kind::Released => "released",
            Kind::AgentStarted => "agent-started",
        }
    }
}

/// One agent step (or lab event) on a node's lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub lane: usize,
    pub at_ms: f64,
    pub kind: Kind,
    /// Short, shown beside the mark.
    pub label: String,
    /// Long, the mark's tooltip.
    pub detail: String,
}

/// `Prober::runs` of one VIP: (node, first, last, count), ns from the start.
pub type Runs = Vec<(Option<usize>, u64, u64, usize)>;

impl Picture {
    /// The picture of the scenario `r` that began at `t0` (right after the
    /// timeline's `begin`) and ended at `t_end` (monotonic ns).
    pub fn from_lab(l: &Lab, r: &ScenarioResult, t0: u64, t_end: u64) -> Picture {
        let runs = [0, 1].map(|v| l.prober.runs(v, t0, t_end));
        Picture::collect(
            &r.name,
            caption(r),
            t_end.saturating_sub(t0) as f64 / 1e6,
            &runs,
            &l.timeline.entries,
            &l.timeline.steps,
        )
    }

    /// The picture from the prober's runs per VIP, the timeline's entries
    /// (lab notes: the faults) and the agents' steps.
    pub fn collect(
        title: &str,
        caption: String,
        end_ms: f64,
        runs: &[Runs],
        entries: &[(f64, String)],
        steps: &[Step],
    ) -> Picture {
        let mut lanes: Vec<String> = NODES.iter().map(|n| n.name.to_string()).collect();
        let unknown = runs.iter().flatten().any(|r| r.0.is_none());
        if unknown {
            lanes.push("other MAC".into());
        }
        let answers = runs
            .iter()
            .enumerate()
            .flat_map(|(vip, rs)| {
                rs.iter().map(move |(n, a, b, c)| Answer {
                    vip,
                    lane: n.unwrap_or(NODES.len()),
                    from_ms: *a as f64 / 1e6,
                    to_ms: *b as f64 / 1e6,
                    count: *c,
                })
            })
            .collect();
        let (faults, mut marks) = faults_from_notes(entries, &lanes, end_ms);
        marks.extend(marks_from_steps(steps, &lanes, end_ms));
        marks.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        Picture {
            title: title.to_string(),
            caption,
            end_ms,
            lanes,
            answers,
            faults,
            marks,
        }
    }

    /// The SVG document.
    pub fn svg(&self) -> String {
        render(self)
    }
}

/// The scenario's numbers, as the table has them.
fn caption(r: &ScenarioResult) -> String {
    let mut c = format!(
        "outage vip1 {:.1} ms, vip2 {:.1} ms",
        r.outage_ms[0], r.outage_ms[1]
    );
    if let Some(f) = r.failover_ms {
        c.push_str(&format!(" · failover {f:.1} ms"));
    }
    c.push_str(&format!(
        " · two answering {:.1} / {:.1} ms · ",
        r.dual_answer_ms[0], r.dual_answer_ms[1]
    ));
    c.push_str(match (&r.error, r.identity_ok) {
        (None, true) => "pass",
        _ => "FAIL",
    });
    c
}

/// The lane of node `name`.
fn lane_of(lanes: &[String], name: &str) -> Option<usize> {
    lanes.iter().position(|l| l == name)
}

/// Faults from the lab's notes: `lab: node0: cable pull` opens one on
/// node0, `lab: node0: recovering from cable pull` (or a note that the
/// node's service `restarted`, is `fast again`, a cable `plugged`) closes
/// it; `flapping node0's ...` opens one that `plugged for good` closes.
/// Also the agents' starts (`lab: node0 agent started`), as marks.
pub fn faults_from_notes(
    entries: &[(f64, String)],
    lanes: &[String],
    end_ms: f64,
) -> (Vec<FaultSpan>, Vec<Mark>) {
    let mut spans: Vec<FaultSpan> = Vec::new();
    let mut open: Vec<Option<usize>> = vec![None; lanes.len()];
    let mut marks = Vec::new();
    fn close(spans: &mut [FaultSpan], open: &mut [Option<usize>], k: usize, at: f64) {
        if let Some(i) = open[k].take() {
            spans[i].to_ms = at;
            spans[i].recovered = true;
        }
    }
    for (at, text) in entries {
        let Some(note) = text.strip_prefix("lab: ") else {
            continue;
        };
        let at = at.max(0.0);
        if note.contains("plugged for good") {
            for k in 0..lanes.len() {
                close(&mut spans, &mut open, k, at);
            }
            continue;
        }
        if let Some(rest) = note.strip_prefix("flapping ") {
            if let Some(k) =
                (0..lanes.len()).find(|k| rest.starts_with(&format!("{}'s ", lanes[*k])))
            {
                let what = rest[lanes[k].len() + 3..].to_string();
                if open[k].is_none() {
                    open[k] = Some(spans.len());
                    spans.push(FaultSpan {
                        lane: k,
                        from_ms: at,
                        to_ms: end_ms,
                        label: format!("flapping {what}"),
                        recovered: false,
                    });
                }
            }
            continue;
        }
        if let Some(k) = lanes
            .iter()
            .position(|l| note.starts_with(&format!("{l} agent started")))
        {
            marks.push(Mark {
                lane: k,
                at_ms: at,
                kind: Kind::AgentStarted,
                label: "agent start".into(),
                detail: format!("{note} at {at:.2} ms"),
            });
            continue;
        }
        let Some((who, what)) = note.split_once(": ") else {
            continue;
        };
        let nodes: Option<Vec<usize>> = who.split(", ").map(|n| lane_of(lanes, n)).collect();
        let Some(nodes) = nodes.filter(|n| !n.is_empty()) else {
            continue;
        };
        let ends = what.starts_with("recovering")
            || what.contains("restarted")
            || what.contains("fast again")
            || what.contains("plugged");
        for k in nodes {
            if ends {
                close(&mut spans, &mut open, k, at);
            } else if open[k].is_none() {
                open[k] = Some(spans.len());
                spans.push(FaultSpan {
                    lane: k,
                    from_ms: at,
                    to_ms: end_ms,
                    label: what.to_string(),
                    recovered: false,
                });
            }
        }
    }
    (spans, marks)
}

/// The steps that tell a failover's story, as marks on the lane of the
/// node that logged them (one of each per node, label and millisecond).
pub fn marks_from_steps(steps: &[Step], lanes: &[String], end_ms: f64) -> Vec<Mark> {
    let mut out: Vec<Mark> = Vec::new();
    for s in steps {
        if s.at < 0.0 || s.at > end_ms {
            continue;
        }
        let Some(lane) = lane_of(lanes, s.node) else {
            continue;
        };
        let vip = s.group.as_deref().map(vip_label).unwrap_or_default();
        let (kind, label) = match s.step.as_str() {
            step::PEER_DEAD => (
                Kind::PeerDead,
                format!("{} dead", s.peer.as_deref().unwrap_or("peer")),
            ),
            step::TAKING_OVER => (Kind::TakingOver, format!("takeover {vip}")),
            step::ADDRESS_UP => (Kind::AddressUp, format!("{vip} up")),
            step::RELEASED => (Kind::Released, format!("{vip} released")),
            _ => continue,
        };
        // The same step logged twice (by the rules and by the executor).
        if out
            .iter()
            .any(|m| m.lane == lane && m.label == label && (m.at_ms - s.at).abs() < 1.0)
        {
            continue;
        }
        let mut detail = format!("{} {}", s.node, s.step);
        if let Some(g) = &s.group {
            detail.push_str(&format!(" group {g}"));
        }
        if let Some(p) = &s.peer {
            detail.push_str(&format!(" peer {p}"));
        }
        detail.push_str(&format!(" at {:.2} ms", s.at));
        out.push(Mark {
            lane,
            at_ms: s.at,
            kind,
            label: label.trim().to_string(),
            detail,
        });
    }
    out
}

/// "vip1" / "vip2" for a group's name in any layout, else the name, short.
fn vip_label(group: &str) -> String {
    let has_addr = |v: usize| {
        group.match_indices(VIPS[v]).any(|(i, m)| {
            !group[i + m.len()..].starts_with(|c: char| c.is_ascii_digit())
                && !group[..i].ends_with(|c: char| c.is_ascii_digit())
        })
    };
    (0..2)
        .find(|v| group_is_vip(group, *v) || has_addr(*v))
        .map(|v| format!("vip{}", v + 1))
        .unwrap_or_else(|| svg::truncate(group, 12))
}

/// A file name for a scenario: lower case, words joined by dashes.
pub fn slug(name: &str) -> String {
    let mut o = String::new();
    for c in name.chars().filter(|c| *c != '\'') {
        if c.is_ascii_alphanumeric() {
            o.push(c.to_ascii_lowercase());
        } else if !o.ends_with('-') {
            o.push('-');
        }
    }
    o.trim_matches('-').to_string()
}

// Layout (px).
const WIDTH: f64 = 1000.0;
const GUTTER: f64 = 78.0;
const RIGHT: f64 = 14.0;
const LABEL_ROWS: usize = 3;
const ROW_H: f64 = 12.0;
const BAR_H: f64 = 9.0;
const BAR_GAP: f64 = 3.0;
const LANE_H: f64 = LABEL_ROWS as f64 * ROW_H + 6.0 + 2.0 * BAR_H + BAR_GAP + 7.0;
/// The panel's title, and under it a strip for the zooms' letters.
const PANEL_TITLE: f64 = 32.0;
const AXIS_H: f64 = 38.0;
const HEADER: f64 = 78.0;
const VIP_COLORS: [&str; 2] = ["#1c7ed6", "#f08c00"];

/// A part of the picture: the whole scenario, or a zoom on [a, b] ms.
struct Panel {
    id: String,
    title: String,
    x0: f64,
    x1: f64,
    y: f64,
    a: f64,
    b: f64,
    /// Tick labels relative to this (a zoom counts from its event).
    origin: f64,
    /// Whether ticks are signed (after / before `origin`).
    relative: bool,
    axis_caption: String,
}

/// Where to zoom: a moment the answering node changed after a fault or a
/// recovery, from a little before the event to a little after the change.
struct Zoom {
    a: f64,
    b: f64,
    at: f64,
    what: String,
    /// The change of answering node it leads to.
    then: String,
}

fn zooms(p: &Picture) -> Vec<Zoom> {
    // Fault and recovery edges, those within 2 ms of each other as one.
    let mut edges: Vec<(f64, String)> = Vec::new();
    for f in &p.faults {
        let node = &p.lanes[f.lane];
        edges.push((f.from_ms, format!("{node}: {}", f.label)));
        if f.recovered {
            edges.push((f.to_ms, format!("{node} recovered")));
        }
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, String)> = Vec::new();
    for (t, w) in edges {
        match merged.last_mut() {
            Some(last) if t - last.0 < 2.0 => {
                if !last.1.contains(&w) {
                    last.1 = format!("{}, {w}", last.1);
                }
            }
            _ => merged.push((t, w)),
        }
    }
    let mut out: Vec<Zoom> = Vec::new();
    for (i, (e, what)) in merged.iter().enumerate() {
        let e = *e;
        // The change must come before the next edge: later, it is that
        // edge's doing.
        let next = merged.get(i + 1).map_or(f64::INFINITY, |n| n.0);
        // The first answer after `e` from another node than the one that
        // answered last before it, for either VIP.
        let switch = (0..2)
            .filter_map(|v| {
                let mine: Vec<&Answer> = p.answers.iter().filter(|a| a.vip == v).collect();
                // Answering since before `e`, or since the first answer
                // (a fault noted at the scenario's start).
                let owner = mine
                    .iter()
                    .rev()
                    .find(|a| a.from_ms <= e)
                    .or(mine.first())?
                    .lane;
                mine.iter()
                    .find(|a| a.from_ms > e && a.lane != owner)
                    .map(|a| (a.from_ms, v, a.lane))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((switch, vip, lane)) = switch.filter(|s| s.0 - e <= 5000.0 && s.0 < next) else {
            continue;
        };
        let span = (switch - e).max(1.0);
        out.push(Zoom {
            a: (e - (0.25 * span).max(0.5)).max(0.0),
            b: (switch + (0.5 * span).max(1.0)).min(p.end_ms.max(switch)),
            at: e,
            what: what.clone(),
            then: format!(
                "vip{} from {} {} ms later",
                vip + 1,
                p.lanes[lane],
                svg::fmt_tick((switch - e).max(0.0))
            ),
        });
    }
    out.truncate(4);
    out
}

fn render(p: &Picture) -> String {
    let zs = zooms(p);
    let lanes_h = p.lanes.len() as f64 * LANE_H;
    let panel_h = PANEL_TITLE + lanes_h + AXIS_H;
    let zoom_rows = zs.len().div_ceil(2);
    let height = HEADER + panel_h + zoom_rows as f64 * (panel_h + 10.0) + 8.0;
    let mut d = Doc::new(WIDTH, height);
    d.style(&format!(
        ".title{{font-size:15px;font-weight:bold}}\n\
         .caption{{font-size:11px;fill:#495057}}\n\
         .ptitle{{font-size:12px;font-weight:bold;fill:#212529}}\n\
         .lane-name{{font-size:12px;font-weight:bold;fill:#212529}}\n\
         .vip-name{{font-size:9px;fill:#868e96}}\n\
         .tick{{font-size:10px;fill:#495057}}\n\
         .axis-caption{{font-size:10px;fill:#868e96}}\n\
         .axis-line{{stroke:#495057;stroke-width:1}}\n\
         .grid{{stroke:#dee2e6;stroke-width:1}}\n\
         .fault{{fill:#e03131;fill-opacity:0.13}}\n\
         .answer.vip1{{fill:{}}}\n.answer.vip2{{fill:{}}}\n\
         .mark-label{{font-size:10px}}\n\
         .zoom-box{{fill:none;stroke:#343a40;stroke-width:1;stroke-dasharray:3,2}}\n\
         .zoom-letter{{font-size:10px;font-weight:bold;fill:#343a40}}",
        VIP_COLORS[0], VIP_COLORS[1]
    ));
    d.text(12.0, 22.0, &p.title, " class=\"title\"");
    d.text(12.0, 39.0, &p.caption, " class=\"caption\"");
    legend(&mut d, 12.0, 60.0);
    let overview = Panel {
        id: "overview".into(),
        title: "The whole scenario: who answered each VIP (client's view), faults, agents' steps"
            .into(),
        x0: GUTTER,
        x1: WIDTH - RIGHT,
        y: HEADER,
        a: 0.0,
        b: p.end_ms.max(1.0),
        origin: 0.0,
        relative: false,
        axis_caption: "ms since the scenario began".into(),
    };
    panel(&mut d, p, &overview);
    // The zooms' places in the overview.
    let sx = scale(&overview);
    let top = overview.y + PANEL_TITLE;
    let mut free = 0.0;
    for (i, z) in zs.iter().enumerate() {
        let (xa, xb) = (sx.at(z.a), sx.at(z.b));
        let w = (xb - xa).max(3.0);
        d.rect(xa, top, w, lanes_h, " class=\"zoom-box\"");
        // Over the box's left edge, right of the previous letter.
        let lx = xa.max(free);
        free = lx + 12.0;
        d.text(lx, top - 3.0, &letter(i), " class=\"zoom-letter\"");
    }
    let half = (WIDTH - RIGHT - 8.0) / 2.0;
    for (i, z) in zs.iter().enumerate() {
        let (row, col) = (i / 2, i % 2);
        let x = 8.0 + col as f64 * half;
        let zp = Panel {
            id: format!("zoom-{}", letter(i)),
            title: format!(
                "{}: {} at {} ms; {}",
                letter(i),
                svg::truncate(&z.what, 30),
                svg::fmt_tick((z.at * 10.0).round() / 10.0),
                z.then
            ),
            x0: x + GUTTER - 8.0,
            x1: x + half - 12.0,
            y: HEADER + panel_h + 10.0 + row as f64 * (panel_h + 10.0),
            a: z.a,
            b: z.b,
            origin: z.at,
            relative: true,
            axis_caption: "ms after it".into(),
        };
        panel(&mut d, p, &zp);
    }
    d.finish()
}

fn letter(i: usize) -> String {
    char::from(b'A' + (i as u8 % 26)).to_string()
}

fn scale(pn: &Panel) -> Linear {
    Linear {
        d0: pn.a,
        d1: pn.b,
        r0: pn.x0,
        r1: pn.x1,
    }
}

fn legend(d: &mut Doc, x: f64, y: f64) {
    let mut x = x;
    for (v, c) in VIP_COLORS.iter().enumerate() {
        d.rect(x, y - 8.0, 16.0, BAR_H, &attr("fill", c));
        let t = format!("vip{} answered (client)", v + 1);
        d.text(x + 20.0, y, &t, "");
        x += 20.0 + svg::text_width(&t, 11.0) * 0.92 + 14.0;
    }
    d.rect(x, y - 9.0, 16.0, 11.0, " class=\"fault\"");
    d.text(x + 20.0, y, "fault", "");
    x += 20.0 + 40.0;
    for (k, t) in [
        (Kind::PeerDead, "peer dead"),
        (Kind::TakingOver, "takeover decided"),
        (Kind::AddressUp, "address up"),
        (Kind::Released, "released"),
        (Kind::AgentStarted, "agent start"),
    ] {
        d.line(
            x,
            y - 10.0,
            x,
            y + 2.0,
            &format!(" stroke=\"{}\" stroke-width=\"2\"", k.color()),
        );
        d.text(x + 4.0, y, t, &attr("fill", k.color()));
        x += 4.0 + svg::text_width(t, 11.0) * 0.92 + 14.0;
    }
}

/// One panel: lanes, axis, faults, answers and marks within [a, b].
fn panel(d: &mut Doc, p: &Picture, pn: &Panel) {
    let sx = scale(pn);
    let top = pn.y + PANEL_TITLE;
    let bottom = top + p.lanes.len() as f64 * LANE_H;
    let left = pn.x0 - GUTTER + 8.0;
    d.open(&format!("{} class=\"panel\"", attr("id", &pn.id)));
    d.text(left, pn.y + 13.0, &pn.title, " class=\"ptitle\"");
    // Lanes.
    for (k, name) in p.lanes.iter().enumerate() {
        let y = top + k as f64 * LANE_H;
        d.open(&format!(" class=\"lane\"{}", attr("data-node", name)));
        let fill = if k.is_multiple_of(2) {
            "#f1f3f5"
        } else {
            "#f8f9fa"
        };
        d.rect(left, y, pn.x1 - left, LANE_H, &attr("fill", fill));
        let bars = bars_y(y);
        d.text(left + 4.0, bars + BAR_H + 1.0, name, " class=\"lane-name\"");
        for v in 0..2 {
            let by = bars + v as f64 * (BAR_H + BAR_GAP);
            d.text(
                pn.x0 - 4.0,
                by + BAR_H - 1.0,
                &format!("vip{}", v + 1),
                " class=\"vip-name\" text-anchor=\"end\"",
            );
        }
        d.close();
    }
    // Axis and grid.
    let ticks: Vec<(f64, String)> = svg::nice_ticks(pn.a - pn.origin, pn.b - pn.origin, 9)
        .into_iter()
        .map(|t| {
            let label = if pn.relative && t > 0.0 {
                format!("+{}", svg::fmt_tick(t))
            } else {
                svg::fmt_tick(t)
            };
            (sx.at(t + pn.origin), label)
        })
        .filter(|(x, _)| *x >= pn.x0 - 0.5 && *x <= pn.x1 + 0.5)
        .collect();
    svg::x_axis(d, bottom, pn.x0, pn.x1, &ticks, Some(top));
    d.text(
        pn.x1,
        bottom + 30.0,
        &pn.axis_caption,
        " class=\"axis-caption\" text-anchor=\"end\"",
    );
    // Faults and answers, clipped to the plot.
    let clip = format!("clip-{}", pn.id);
    d.clip_rect(&clip, pn.x0, top, pn.x1 - pn.x0, bottom - top);
    d.open(&attr("clip-path", &format!("url(#{clip})")));
    for f in &p.faults {
        if f.to_ms < pn.a || f.from_ms > pn.b {
            continue;
        }
        let y = top + f.lane as f64 * LANE_H;
        let (xa, xb) = (sx.at(f.from_ms), sx.at(f.to_ms));
        d.rect_titled(
            xa,
            y,
            (xb - xa).max(2.0),
            LANE_H,
            " class=\"fault\"",
            &format!(
                "{}: {} from {:.2} ms to {}",
                p.lanes[f.lane],
                f.label,
                f.from_ms,
                if f.recovered {
                    format!("{:.2} ms", f.to_ms)
                } else {
                    "the end".into()
                }
            ),
        );
    }
    for a in &p.answers {
        if a.to_ms < pn.a || a.from_ms > pn.b {
            continue;
        }
        let y = bars_y(top + a.lane as f64 * LANE_H) + a.vip as f64 * (BAR_H + BAR_GAP);
        let (xa, xb) = (sx.at(a.from_ms), sx.at(a.to_ms));
        d.rect_titled(
            xa,
            y,
            (xb - xa).max(1.5),
            BAR_H,
            &format!(" class=\"answer vip{}\"", a.vip + 1),
            &format!(
                "vip{} answered by {}: {:.2} to {:.2} ms, {} answers",
                a.vip + 1,
                p.lanes[a.lane],
                a.from_ms,
                a.to_ms,
                a.count
            ),
        );
    }
    d.close();
    marks(d, p, pn, &sx, top);
    d.close();
}

/// The top of lane `y`'s vip1 bar (vip2's is under it).
fn bars_y(lane_top: f64) -> f64 {
    lane_top + LABEL_ROWS as f64 * ROW_H + 6.0
}

/// Fault edges and steps within the panel, a line each and a label each
/// where one fits (staggered over the lane's label rows).
fn marks(d: &mut Doc, p: &Picture, pn: &Panel, sx: &Linear, top: f64) {
    let mut all: Vec<Mark> = p.marks.clone();
    for f in &p.faults {
        all.push(Mark {
            lane: f.lane,
            at_ms: f.from_ms,
            kind: Kind::Fault,
            label: svg::truncate(&f.label, 28),
            detail: format!("{}: {} at {:.2} ms", p.lanes[f.lane], f.label, f.from_ms),
        });
        if f.recovered {
            all.push(Mark {
                lane: f.lane,
                at_ms: f.to_ms,
                kind: Kind::Recovery,
                label: "recovered".into(),
                detail: format!(
                    "{}: recovered from {} at {:.2} ms",
                    p.lanes[f.lane], f.label, f.to_ms
                ),
            });
        }
    }
    all.retain(|m| m.at_ms >= pn.a && m.at_ms <= pn.b);
    all.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    for k in 0..p.lanes.len() {
        let lane: Vec<&Mark> = all.iter().filter(|m| m.lane == k).collect();
        let y = top + k as f64 * LANE_H;
        let spans: Vec<(f64, f64, &str)> = lane
            .iter()
            .map(|m| {
                svg::label_span(
                    sx.at(m.at_ms),
                    svg::text_width(&m.label, 10.0),
                    pn.x0,
                    pn.x1,
                )
            })
            .collect();
        let rows = svg::stagger(
            &spans.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
            LABEL_ROWS,
            4.0,
        );
        for ((m, span), row) in lane.iter().zip(&spans).zip(&rows) {
            let x = sx.at(m.at_ms);
            let color = m.kind.color();
            d.open(&format!(" class=\"mark {}\"", m.kind.class()));
            d.title(&m.detail);
            // Row 0 at the top: the line of a later mark, from its own
            // (lower) row down, passes under the labels of earlier ones.
            let label_top = row.map(|r| y + r as f64 * ROW_H + 2.0);
            let dash = if m.kind == Kind::Recovery {
                " stroke-dasharray=\"3,2\""
            } else {
                ""
            };
            d.line(
                x,
                label_top.unwrap_or(bars_y(y) - 4.0),
                x,
                y + LANE_H - 2.0,
                &format!(" stroke=\"{color}\" stroke-width=\"1.5\"{dash}"),
            );
            if let Some(lt) = label_top {
                let tx = if span.2 == "start" { span.0 } else { span.1 };
                d.text(
                    tx,
                    lt + 9.0,
                    &m.label,
                    &format!(
                        " class=\"mark-label\" fill=\"{color}\" text-anchor=\"{}\"",
                        span.2
                    ),
                );
            }
            d.close();
        }
    }
}

/// Writes `timeline-<slug>.svg` per scenario with a picture into `dir`,
/// and `index.html` linking them under the results table (`table_md`,
/// `report::table`). Returns the index's path.
pub fn write_all(dir: &Path, results: &[ScenarioResult], table_md: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut files: Vec<(String, String)> = Vec::new();
    for r in results {
        let Some(p) = &r.picture else { continue };
        let file = format!("timeline-{}.svg", slug(&r.name));
        std::fs::write(dir.join(&file), p.svg())?;
        files.push((r.name.clone(), file));
    }
    let link = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
    };
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>hb lab: scenarios</title>\n<style>\n\
         body{font-family:sans-serif;margin:1.5em;color:#212529}\n\
         table{border-collapse:collapse;font-size:13px}\n\
         th,td{border:1px solid #dee2e6;padding:3px 6px}\nth{background:#f1f3f5}\n\
         td.r{text-align:right}\nimg{max-width:100%;border:1px solid #dee2e6}\n\
         </style>\n</head>\n<body>\n<h1>hb lab: scenarios</h1>\n\
         <p>Each scenario's timeline: one lane per node; bars for when it answered vip1 \
         and vip2 as the client saw it; the fault shaded on its node's lane; the agents' \
         steps as marks; below, zooms on the hand-overs.</p>\n",
    );
    html.push_str(&md_table_html(table_md, link));
    for (name, file) in &files {
        html.push_str(&format!(
            "<h2 id=\"{id}\"><a href=\"{f}\">{n}</a></h2>\n<p><a href=\"{f}\"><img src=\"{f}\" alt=\"{n}\"></a></p>\n",
            id = esc(&slug(name)),
            f = esc(file),
            n = esc(name)
        ));
    }
    html.push_str("</body>\n</html>\n");
    let index = dir.join("index.html");
    std::fs::write(&index, html)?;
    Ok(index)
}

/// A Markdown table as an HTML one, cells escaped, the first column's
/// cells linked where `link` gives a target.
pub fn md_table_html(md: &str, link: impl Fn(&str) -> Option<String>) -> String {
    let rows: Vec<Vec<String>> = md
        .lines()
        .filter(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let l = l.trim();
            let l = l.strip_prefix('|').unwrap_or(l);
            let l = l.strip_suffix('|').unwrap_or(l);
            l.split('|').map(|c| c.trim().to_string()).collect()
        })
        .collect();
    if rows.len() < 2 {
        return String::new();
    }
    let right: Vec<bool> = rows[1].iter().map(|c| c.ends_with(':')).collect();
    let mut o = String::from("<table>\n<tr>");
    for h in &rows[0] {
        o.push_str(&format!("<th>{}</th>", esc(h)));
    }
    o.push_str("</tr>\n");
    for row in &rows[2..] {
        o.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if right.get(i).copied().unwrap_or(false) {
                " class=\"r\""
            } else {
                ""
            };
            let cell = match (i, link(c)) {
                (0, Some(href)) => {
                    format!("<a href=\"#{}\">{}</a>", esc(&slug(c)), esc(c))
                        + &format!(" (<a href=\"{}\">svg</a>)", esc(&href))
                }
                _ => esc(c),
            };
            o.push_str(&format!("<td{class}>{cell}</td>"));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn step(at: f64, node: &'static str, s: &str, group: Option<&str>, peer: Option<&str>) -> Step {
        Step {
            at,
            node,
            step: s.into(),
            group: group.map(String::from),
            peer: peer.map(String::from),
        }
    }

    /// A cable pull of node0: vip1 from node0 to node1 and back, vip2 on
    /// node2 throughout.
    fn cable_pull() -> Picture {
        let vip1: Runs = vec![
            (Some(0), 0, 100 * MS, 200),
            (Some(1), 104 * MS, 400 * MS, 600),
            (Some(0), 401 * MS, 600 * MS, 400),
        ];
        let vip2: Runs = vec![(Some(2), 0, 600 * MS, 1200)];
        let notes = vec![
            (0.0, "lab: cluster up".to_string()),
            (100.0, "lab: node0: cable pull".to_string()),
            (300.0, "lab: node0: recovering from cable pull".to_string()),
        ];
        let steps = vec![
            step(103.0, "node0", step::RELEASED, Some("vip1"), None),
            step(103.2, "node0", step::RELEASED, Some("vip1"), None),
            step(103.5, "node1", step::TAKING_OVER, Some("vip1"), None),
            step(103.8, "node1", step::ADDRESS_UP, Some("vip1"), None),
            step(350.0, "node2", step::PEER_DEAD, None, Some("node0")),
            step(-5.0, "node1", step::PEER_DEAD, None, Some("node0")),
            step(120.0, "node1", "takeover.done", Some("vip1"), None),
        ];
        Picture::collect(
            "node0 <cable> & \"friends\"",
            "caption".into(),
            600.0,
            &[vip1, vip2],
            &notes,
            &steps,
        )
    }

    fn parse(s: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(s).expect("the SVG is well-formed XML")
    }

    fn class_has(n: &roxmltree::Node, c: &str) -> bool {
        n.attribute("class")
            .is_some_and(|a| a.split_whitespace().any(|x| x == c))
    }

    fn overview<'a>(doc: &'a roxmltree::Document<'a>) -> roxmltree::Node<'a, 'a> {
        doc.descendants()
            .find(|n| n.attribute("id") == Some("overview"))
            .expect("an overview panel")
    }

    #[test]
    fn the_picture_is_well_formed_with_a_lane_per_node() {
        let s = cable_pull().svg();
        let doc = parse(&s);
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let lanes: Vec<_> = overview(&doc)
            .descendants()
            .filter(|n| class_has(n, "lane"))
            .map(|n| n.attribute("data-node").unwrap().to_string())
            .collect();
        assert_eq!(lanes, ["node0", "node1", "node2"]);
    }

    #[test]
    fn one_bar_per_run_of_answers() {
        let s = cable_pull().svg();
        let doc = parse(&s);
        let ov = overview(&doc);
        let count = |c: &str| {
            ov.descendants()
                .filter(|n| class_has(n, "answer") && class_has(n, c))
                .count()
        };
        assert_eq!((count("vip1"), count("vip2")), (3, 1));
    }

    #[test]
    fn text_is_escaped() {
        let s = cable_pull().svg();
        assert!(s.contains("node0 &lt;cable&gt; &amp; &quot;friends&quot;"));
        let doc = parse(&s);
        assert!(
            doc.descendants()
                .any(|n| n.text() == Some("node0 <cable> & \"friends\""))
        );
    }

    #[test]
    fn faults_steps_and_zooms() {
        let p = cable_pull();
        assert_eq!(
            p.faults,
            [FaultSpan {
                lane: 0,
                from_ms: 100.0,
                to_ms: 300.0,
                label: "cable pull".into(),
                recovered: true
            }]
        );
        // Released twice within a ms: once; before the start, and steps
        // that are no mark: none.
        let labels: Vec<_> = p.marks.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            ["vip1 released", "takeover vip1", "vip1 up", "node0 dead"]
        );
        let z = zooms(&p);
        // The takeover after the pull, and the failback after the plug.
        assert_eq!(z.len(), 2);
        assert!(z[0].a < 100.0 && z[0].b > 104.0 && z[0].b < 110.0);
        assert!(z[1].a < 300.0 && z[1].b > 401.0);
        let s = p.svg();
        let doc = parse(&s);
        for id in ["zoom-A", "zoom-B"] {
            assert!(doc.descendants().any(|n| n.attribute("id") == Some(id)));
        }
        let marks = overview(&doc)
            .descendants()
            .filter(|n| class_has(n, "mark"))
            .count();
        assert_eq!(marks, 4 + 2, "four steps, the fault and its recovery");
    }

    #[test]
    fn an_unknown_mac_gets_a_lane() {
        let p = Picture::collect(
            "x",
            String::new(),
            10.0,
            &[vec![(None, 0, MS, 3)], vec![]],
            &[],
            &[],
        );
        assert_eq!(p.lanes.len(), 4);
        assert_eq!(p.answers[0].lane, 3);
        assert!(zooms(&p).is_empty());
        parse(&p.svg());
    }

    #[test]
    fn notes_of_services_and_flaps_are_faults() {
        let lanes: Vec<String> = NODES.iter().map(|n| n.name.to_string()).collect();
        let notes: Vec<(f64, String)> = [
            (1.0, "lab: node1: hb-service killed (SIGKILL)"),
            (2.0, "lab: node0: hb-service killed (SIGKILL) too"),
            (3.0, "lab: node0, node1: hb-service restarted"),
            (4.0, "lab: flapping node0's eth2 20 times"),
            (5.0, "lab: node2 agent started (pid 7)"),
            (6.0, "lab: node0's eth2 plugged for good"),
            (7.0, "node0: a line an agent logged: not a note"),
        ]
        .into_iter()
        .map(|(t, s)| (t, s.to_string()))
        .collect();
        let (f, m) = faults_from_notes(&notes, &lanes, 10.0);
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.lane, f.from_ms, f.to_ms, f.label.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, 1.0, 3.0, "hb-service killed (SIGKILL)"),
                (0, 2.0, 3.0, "hb-service killed (SIGKILL) too"),
                (0, 4.0, 6.0, "flapping eth2 20 times"),
            ]
        );
        assert_eq!((m.len(), m[0].lane, m[0].kind), (1, 2, Kind::AgentStarted));
    }

    #[test]
    fn slugs_and_the_index_table() {
        assert_eq!(
            slug("node0 service cable pulled + plugged"),
            "node0-service-cable-pulled-plugged"
        );
        assert_eq!(
            slug("vip1's service on node0 killed (SIGKILL) + restarted"),
            "vip1s-service-on-node0-killed-sigkill-restarted"
        );
        let md = "| scenario | outage |\n|---|---:|\n| a <b> | 1.0 ms |\n";
        let html = md_table_html(md, |n| (n == "a <b>").then(|| "timeline-a-b.svg".into()));
        assert!(html.contains("<th>outage</th>"));
        assert!(html.contains("<td class=\"r\">1.0 ms</td>"));
        assert!(html.contains("a &lt;b&gt;</a> (<a href=\"timeline-a-b.svg\">svg</a>)"));
        parse(&format!("<div>{html}</div>"));
    }
}
