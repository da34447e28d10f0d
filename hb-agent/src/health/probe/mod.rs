//! The probes, one module per kind. Each gives an [`Outcome`]; none blocks
//! the event loop's thread.

pub mod exec;
pub mod file;
pub mod interface;
pub mod net;
pub mod process;

use std::time::Duration;

/// Longest [`Outcome::detail`], in characters.
pub const DETAIL_LIMIT: usize = 200;

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// What it saw, at most 200 characters, one line.
    pub detail: String,
}

impl Outcome {
    pub fn pass(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            detail: one_line(&detail.into(), DETAIL_LIMIT),
        }
    }

    pub fn fail(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            detail: one_line(&detail.into(), DETAIL_LIMIT),
        }
    }
}

/// `s` on one line (control characters become spaces, runs of blanks one
/// space, trimmed) and at most `max` characters (cut ones end in `…`): a
/// script's output goes into logs and `status` as it is.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for word in s.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > max * 4 {
            break; // enough to cut from
        }
    }
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

/// `0.21 ms`, `50 ms`: for details.
pub fn ms(d: Duration) -> String {
    if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// `timed out after 50 ms`.
pub fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", ms(timeout))
}

/// Runs async test code on a fresh thread inside `ns`, on its own
/// current-thread runtime (as the agent's loop): the resources tests' own.
#[cfg(test)]
fn in_netns<F, Fut, R>(ns: &hb_testkit::netns::Netns, f: F) -> R
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = R>,
    R: Send + 'static,
{
    use crate::resources::tests::BlockOn as _;
    ns.block_on(false, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_one_short_line() {
        assert_eq!(one_line("  a\nb\t\x07c  ", 200), "a b c");
        let long = "é".repeat(500);
        let cut = Outcome::fail(long).detail;
        assert_eq!(cut.chars().count(), DETAIL_LIMIT);
        assert!(cut.ends_with('…'));
        assert_eq!(ms(Duration::from_millis(50)), "50 ms");
        assert_eq!(ms(Duration::from_micros(210)), "0.21 ms");
    }
}
