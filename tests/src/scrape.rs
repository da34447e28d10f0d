//! A Prometheus scrape of an agent's `/metrics`, taken from inside its
//! network namespace, and what it holds: each family's type and each series
//! name with the label names its samples carry.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{Context as _, Result, bail};

use crate::netns::Netns;

/// `GET /metrics` at `addr` from inside `ns`: the body of a 200 answer.
pub fn scrape(ns: &Netns, addr: SocketAddr) -> Result<String> {
    let answer = ns.run(false, move || {
        let mut s = TcpStream::connect(addr)?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: hb\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        std::io::Result::Ok(out)
    })??;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("no end of the HTTP head")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("scrape of {addr} answered {head:?}");
    }
    Ok(body.to_string())
}

/// The families and series of one scrape (text format 0.0.4).
#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name -> its `# TYPE` (counter, gauge, histogram, ...).
    pub families: BTreeMap<String, String>,
    /// Series name (`_bucket`, `_sum`, `_count` for a histogram's) -> the
    /// label names of its samples.
    pub series: BTreeMap<String, BTreeSet<String>>,
}

impl Exposition {
    pub fn parse(text: &str) -> Result<Exposition> {
        let mut e = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').context(format!("line {n}"))?;
                e.families.insert(name.into(), kind.into());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let end = line
                .find(['{', ' '])
                .context(format!("line {n}: no value"))?;
            let labels = e.series.entry(line[..end].to_string()).or_default();
            if line[end..].starts_with('{') {
                label_names(&line[end + 1..], labels).context(format!("line {n}: {line}"))?;
            }
        }
        Ok(e)
    }

    /// `name` is a family, or a series in the scrape; a histogram's series
    /// are its `_bucket`, `_sum` and `_count`.
    pub fn has(&self, name: &str) -> bool {
        self.families.contains_key(name)
            || self.series.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|f| self.families.get(f).is_some_and(|k| k == "histogram"))
            })
    }
}

/// The label names of `k="v",...}`, value escapes (`\\`, `\"`, `\n`) read.
fn label_names(mut s: &str, out: &mut BTreeSet<String>) -> Result<()> {
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            if !rest.starts_with(' ') {
                bail!("no value after the labels");
            }
            return Ok(());
        }
        let (name, rest) = s.split_once("=\"").context("label without a value")?;
        out.insert(name.to_string());
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    chars.next();
                }
                Some((i, '"')) => break i,
                Some(_) => {}
                None => bail!("unterminated label value"),
            }
        };
        s = &rest[close + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families_series_and_escaped_labels() {
        let e = Exposition::parse(
            "# HELP a_total A.\n# TYPE a_total counter\na_total{peer=\"x\\\"},y\",link=\"e\"} 3\n\
             # TYPE h histogram\nh_bucket{le=\"+Inf\"} 0\nh_count 0\n# TYPE g gauge\n",
        )
        .unwrap();
        assert_eq!(e.families["a_total"], "counter");
        assert_eq!(
            e.series["a_total"].iter().collect::<Vec<_>>(),
            ["link", "peer"]
        );
        assert!(e.has("h_bucket") && e.has("h_sum") && e.has("g"));
        assert!(!e.has("a_total_sum") && !e.has("b"));
        assert!(!e.series.contains_key("g"));
    }
}
