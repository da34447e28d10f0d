//! Plain-SVG drawing shared by the lab's timelines (`lab/picture.rs`) and
//! the failover benchmark's chart (`bench_chart.rs`): a document that
//! escapes its text, linear and log scales with their ticks, an x axis,
//! and label placement that staggers labels instead of overlapping them.

use std::fmt::Write as _;

/// The font every picture uses; widths below are estimated for it.
pub const FONT: &str = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif";

/// `s` safe inside an XML text node or a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Control characters other than tab and newlines are not XML.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A coordinate, short: two decimals at most, no trailing zeros.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// `name="value"`, the value escaped.
pub fn attr(name: &str, value: &str) -> String {
    format!(" {name}=\"{}\"", esc(value))
}

/// Estimated width in px of `s` at `size` px (generous: a wide sans-serif
/// font), for placing labels without measuring them.
pub fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut o: String = s.chars().take(max.saturating_sub(1)).collect();
    o.push('…');
    o
}

/// An SVG document being drawn: elements are appended in painting order.
pub struct Doc {
    pub width: f64,
    pub height: f64,
    style: String,
    defs: String,
    body: String,
}

impl Doc {
    pub fn new(width: f64, height: f64) -> Doc {
        Doc {
            width,
            height,
            style: String::new(),
            defs: String::new(),
            body: String::new(),
        }
    }

    /// CSS rules for the document's `<style>` (classes used by elements).
    pub fn style(&mut self, css: &str) {
        self.style.push_str(css);
        self.style.push('\n');
    }

    /// A clip rectangle, referenced as `clip-path="url(#id)"`.
    pub fn clip_rect(&mut self, id: &str, x: f64, y: f64, w: f64, h: f64) {
        let _ = writeln!(
            self.defs,
            "<clipPath{}><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>",
            attr("id", id),
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
    }

    /// Markup written as is (the caller escapes what needs it).
    pub fn raw(&mut self, s: &str) {
        self.body.push_str(s);
        self.body.push('\n');
    }

    /// `<g ...attrs>`; `attrs` are preformed (` class="x"`, see `attr`).
    pub fn open(&mut self, attrs: &str) {
        let _ = writeln!(self.body, "<g{attrs}>");
    }

    pub fn close(&mut self) {
        self.body.push_str("</g>\n");
    }

    /// A tooltip for the enclosing group or shape.
    pub fn title(&mut self, text: &str) {
        let _ = writeln!(self.body, "<title>{}</title>", esc(text));
    }

    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{attrs}/>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
    }

    /// A rectangle with a tooltip of its own.
    pub fn rect_titled(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str, tip: &str) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{attrs}><title>{}</title></rect>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0)),
            esc(tip)
        );
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, attrs: &str) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"{attrs}/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        );
    }

    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, attrs: &str) {
        let _ = writeln!(
            self.body,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\"{attrs}/>",
            num(cx),
            num(cy),
            num(r)
        );
    }

    /// Text at (x, y) (baseline), escaped.
    pub fn text(&mut self, x: f64, y: f64, text: &str, attrs: &str) {
        let _ = writeln!(
            self.body,
            "<text x=\"{}\" y=\"{}\"{attrs}>{}</text>",
            num(x),
            num(y),
            esc(text)
        );
    }

    /// The finished document, white background first.
    pub fn finish(self) -> String {
        let mut o = String::new();
        o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{f}\" font-size=\"11\">",
            w = num(self.width),
            h = num(self.height),
            f = esc(FONT)
        );
        if !self.style.is_empty() {
            let _ = writeln!(o, "<style>\n{}</style>", self.style);
        }
        if !self.defs.is_empty() {
            let _ = write!(o, "<defs>\n{}</defs>\n", self.defs);
        }
        let _ = writeln!(
            o,
            "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
            num(self.width),
            num(self.height)
        );
        o.push_str(&self.body);
        o.push_str("</svg>\n");
        o
    }
}

/// A linear map from [d0, d1] (data) to [r0, r1] (px).
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Linear {
    pub fn at(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span.abs() < f64::EPSILON {
            return self.r0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }

    /// Round ticks (1, 2 or 5 times a power of ten apart), about `n`.
    pub fn ticks(&self, n: usize) -> Vec<f64> {
        nice_ticks(self.d0, self.d1, n)
    }
}

/// About `n` round values in [lo, hi]: steps of 1, 2 or 5 times a power of ten.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A log10 map from [d0, d1] (data, > 0) to [r0, r1] (px); values at or
/// below zero go to d0.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Log {
    /// The decades around [min, max] (both > 0): 10^floor .. 10^ceil.
    pub fn around(min: f64, max: f64, r0: f64, r1: f64) -> Log {
        let min = if min > 0.0 { min } else { 1.0 };
        let max = if max > min { max } else { min * 10.0 };
        let d0 = 10f64.powf(min.log10().floor());
        let mut d1 = 10f64.powf(max.log10().ceil());
        if d1 <= d0 {
            d1 = d0 * 10.0;
        }
        Log { d0, d1, r0, r1 }
    }

    pub fn at(&self, v: f64) -> f64 {
        let v = v.max(self.d0 * 1e-3);
        let (a, b) = (self.d0.log10(), self.d1.log10());
        if (b - a).abs() < f64::EPSILON {
            return self.r0;
        }
        self.r0 + (v.log10() - a) / (b - a) * (self.r1 - self.r0)
    }

    /// (decades, 2..9 times each decade) within the domain.
    pub fn ticks(&self) -> (Vec<f64>, Vec<f64>) {
        let (a, b) = (
            self.d0.log10().floor() as i32,
            self.d1.log10().ceil() as i32,
        );
        let inside = |v: f64| v >= self.d0 * 0.999 && v <= self.d1 * 1.001;
        let major: Vec<f64> = (a..=b)
            .map(|e| 10f64.powi(e))
            .filter(|v| inside(*v))
            .collect();
        let minor: Vec<f64> = (a..b)
            .flat_map(|e| (2..10).map(move |m| m as f64 * 10f64.powi(e)))
            .filter(|v| inside(*v))
            .collect();
        (major, minor)
    }
}

/// A tick value in ms, short ("0.1", "2", "1500").
pub fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let s = if a >= 100.0 || (a - a.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        // Enough decimals for the first significant digit or two.
        let d = (-a.log10().floor()) as usize + 1;
        format!("{v:.d$}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A log tick in ms as people say it: "0.1 ms", "10 ms", "1 s", "10 s".
pub fn fmt_ms_log(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", fmt_tick(v / 1000.0))
    } else {
        format!("{} ms", fmt_tick(v))
    }
}

/// An x axis along `y` from `x0` to `x1`: the line, a tick and a label per
/// `(px, label)`, and light grid lines up to `grid_top` (None: no grid).
pub fn x_axis(
    doc: &mut Doc,
    y: f64,
    x0: f64,
    x1: f64,
    ticks: &[(f64, String)],
    grid_top: Option<f64>,
) {
    doc.open(" class=\"axis\"");
    if let Some(top) = grid_top {
        for (x, _) in ticks {
            doc.line(*x, top, *x, y, " class=\"grid\"");
        }
    }
    doc.line(x0, y, x1, y, " class=\"axis-line\"");
    // Tick labels must not run into each other: skip every other one
    // (then more) until they fit.
    let widest = ticks
        .iter()
        .map(|(_, l)| text_width(l, 10.0))
        .fold(0.0, f64::max);
    let spacing = ticks
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).abs())
        .fold(f64::INFINITY, f64::min);
    let every = if spacing.is_finite() && spacing > 0.0 {
        ((widest + 6.0) / spacing).ceil().max(1.0) as usize
    } else {
        1
    };
    for (i, (x, label)) in ticks.iter().enumerate() {
        doc.line(*x, y, *x, y + 4.0, " class=\"axis-line\"");
        if i % every == 0 {
            doc.text(
                *x,
                y + 15.0,
                label,
                " class=\"tick\" text-anchor=\"middle\"",
            );
        }
    }
    doc.close();
}

/// Rows for labels spanning `[left, right]` px so that two in one row are
/// at least `gap` apart: each goes to the lowest row with room, in order
/// of `left`; None when all `rows` are taken there (the label is left out).
pub fn stagger(spans: &[(f64, f64)], rows: usize, gap: f64) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by(|a, b| spans[*a].0.total_cmp(&spans[*b].0));
    let mut ends = vec![f64::NEG_INFINITY; rows];
    let mut out = vec![None; spans.len()];
    for i in order {
        let (l, r) = spans[i];
        if let Some(row) = (0..rows).find(|k| ends[*k] + gap <= l) {
            ends[row] = r;
            out[i] = Some(row);
        }
    }
    out
}

/// Where a label of width `w` for a mark at `x` goes inside [lo, hi]: to
/// the right of the mark, or to its left where the right has no room.
/// Returns (left edge, right edge, text-anchor).
pub fn label_span(x: f64, w: f64, lo: f64, hi: f64) -> (f64, f64, &'static str) {
    if x + 3.0 + w <= hi || x - 3.0 - w < lo {
        (x + 3.0, x + 3.0 + w, "start")
    } else {
        (x - 3.0 - w, x - 3.0, "end")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            esc(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        let mut d = Doc::new(10.0, 10.0);
        d.text(1.0, 2.0, "<&>", &attr("class", "x\"y"));
        let s = d.finish();
        let doc = roxmltree::Document::parse(&s).expect("well-formed");
        let t = doc.descendants().find(|n| n.has_tag_name("text")).unwrap();
        assert_eq!(t.text(), Some("<&>"));
        assert_eq!(t.attribute("class"), Some("x\"y"));
    }

    #[test]
    fn nice_ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(3.0, 4.0, 2), vec![3.0, 3.5, 4.0]);
        let t = nice_ticks(0.0, 1234.0, 8);
        assert_eq!((t[0], t[1]), (0.0, 200.0));
    }

    #[test]
    fn log_scale_spans_decades() {
        let s = Log::around(0.3, 3400.0, 0.0, 500.0);
        assert_eq!((s.d0, s.d1), (0.1, 10_000.0));
        assert_eq!(num(s.at(1.0)), "100");
        let (major, minor) = s.ticks();
        assert_eq!(major.len(), 6);
        assert_eq!(minor.len(), 5 * 8);
        assert_eq!(fmt_ms_log(0.1), "0.1 ms");
        assert_eq!(fmt_ms_log(1000.0), "1 s");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(0.05), "0.05");
    }

    #[test]
    fn staggered_labels_do_not_overlap() {
        let spans = [(0.0, 50.0), (10.0, 60.0), (20.0, 70.0), (100.0, 120.0)];
        assert_eq!(
            stagger(&spans, 2, 4.0),
            vec![Some(0), Some(1), None, Some(0)]
        );
    }

    #[test]
    fn labels_flip_left_at_the_edge() {
        assert_eq!(label_span(10.0, 20.0, 0.0, 100.0).2, "start");
        assert_eq!(label_span(95.0, 20.0, 0.0, 100.0), (72.0, 92.0, "end"));
    }
}
