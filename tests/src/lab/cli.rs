//! The command-line options the lab's programs share (`hb-lab`,
//! `hb-chaos`): `--name VALUE` options, flags, and the timings.

use anyhow::{Context as _, Result};

use super::agents::Timings;

/// The value after `--name`, if given.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `--name VALUE` parsed, with the option named in the error.
pub fn parsed<T: std::str::FromStr>(name: &str) -> Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    arg(name)
        .map(|v| v.parse().with_context(|| format!("{name} {v:?}")))
        .transpose()
}

pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

impl Timings {
    /// The lab's defaults, with `--keepalive-ms N` and `--deadtime-ms N`
    /// (warntime half a deadtime, initdead five).
    pub fn from_args() -> Result<Timings> {
        let mut t = Timings::default();
        if let Some(v) = parsed("--keepalive-ms")? {
            t.keepalive_ms = v;
        }
        if let Some(v) = parsed::<f64>("--deadtime-ms")? {
            t.deadtime_ms = v;
            t.warntime_ms = v / 2.0;
            t.initdead_ms = v * 5.0;
        }
        Ok(t)
    }
}
