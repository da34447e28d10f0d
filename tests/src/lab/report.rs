//! The end-of-run table (Markdown) and its JSON twin.

use super::scenarios::ScenarioResult;

pub fn table(results: &[ScenarioResult]) -> String {
    let mut o = String::new();
    o.push_str("| scenario | outage vip1 | outage vip2 | failover | owner vip1 before/during/after | owner vip2 before/during/after | two holders (ms) | two answering (ms) | identity | result |\n");
    o.push_str("|---|---:|---:|---:|---|---|---:|---:|---|---|\n");
    for r in results {
        let dual = match r.dual_after_resume_ms {
            Some(after) => format!(
                "{:.1} / {:.1} (after resume {:.1} / {:.1})",
                r.dual_ms[0], r.dual_ms[1], after[0], after[1]
            ),
            None => format!("{:.1} / {:.1}", r.dual_ms[0], r.dual_ms[1]),
        };
        o.push_str(&format!(
            "| {} | {:.1} ms | {:.1} ms | {} | {} / {} / {} | {} / {} / {} | {} | {:.1} / {:.1} | {} | {} |\n",
            r.name,
            r.outage_ms[0],
            r.outage_ms[1],
            r.failover_ms
                .map(|f| format!("{f:.1} ms"))
                .unwrap_or_else(|| "-".into()),
            r.owner_before[0],
            r.owner_during[0],
            r.owner_after[0],
            r.owner_before[1],
            r.owner_during[1],
            r.owner_after[1],
            dual,
            r.dual_answer_ms[0],
            r.dual_answer_ms[1],
            if r.identity_ok { "ok" } else { "WRONG" },
            match &r.error {
                None if r.identity_ok => "pass".to_string(),
                None => format!("FAIL: {}", r.identity.join("; ")),
                Some(e) => format!("FAIL: {e}"),
            }
        ));
    }
    o
}

pub fn json(results: &[ScenarioResult]) -> String {
    serde_json::to_string_pretty(results).unwrap_or_default()
}

/// The `p` quantile of `v` by the nearest-rank method (NaN when empty):
/// the benchmarks' medians and p95s.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}
