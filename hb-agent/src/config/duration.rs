//! Duration syntax. Two dialects, on purpose:
//! - ha.cf keeps Heartbeat's `get_msec()` rules so existing files mean what
//!   they meant: a bare number is seconds (`2`, `0.5`), `ms`/`msec` and
//!   `us`/`usec` suffixes as in Heartbeat, plus `s` (an hb addition).
//! - TOML requires a unit (`"2s"`, `"500ms"`, `"1.5s"`, `"1m"`): a bare number
//!   is the classic seconds-or-milliseconds mistake, so it is refused.
//!
//! Values are kept exactly (to the nanosecond), not rounded to Heartbeat's ms.
use std::time::Duration;

pub const HACF_EXPECTED: &str = "expected a duration such as 2, 0.5 or 500ms";
pub const TOML_EXPECTED: &str =
    "expected a duration with units such as \"2s\", \"500ms\", \"1.5s\" or \"1m\"";

const NS_PER_US: u128 = 1_000;
const NS_PER_MS: u128 = 1_000_000;
const NS_PER_S: u128 = 1_000_000_000;

/// Heartbeat ha.cf dialect; the error is a complete message.
pub fn parse_hacf(text: &str) -> Result<Duration, String> {
    let (number, unit) = split(text);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "s" => NS_PER_S,
        "ms" | "msec" => NS_PER_MS,
        "us" | "usec" => NS_PER_US,
        _ => return Err(format!("{HACF_EXPECTED}, found {text:?}")),
    };
    scaled(number, scale).ok_or_else(|| format!("{HACF_EXPECTED}, found {text:?}"))
}

/// Native TOML dialect: units are required.
pub fn parse_with_units(text: &str) -> Result<Duration, String> {
    let (number, unit) = split(text);
    let scale = match unit {
        "us" => NS_PER_US,
        "ms" => NS_PER_MS,
        "s" => NS_PER_S,
        "m" => 60 * NS_PER_S,
        "h" => 3600 * NS_PER_S,
        "" if !number.is_empty() => {
            return Err(format!(
                "a duration needs units: write \"{number}s\" or \"{number}ms\", not {text:?}"
            ));
        }
        _ => return Err(format!("{TOML_EXPECTED}, found {text:?}")),
    };
    scaled(number, scale).ok_or_else(|| format!("{TOML_EXPECTED}, found {text:?}"))
}

/// Formats a duration the way the TOML dialect reads it back.
pub fn display(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns.is_multiple_of(NS_PER_S) {
        format!("{}s", ns / NS_PER_S)
    } else if ns.is_multiple_of(NS_PER_MS) {
        format!("{}ms", ns / NS_PER_MS)
    } else if ns.is_multiple_of(NS_PER_US) {
        format!("{}us", ns / NS_PER_US)
    } else {
        format!("{}us", ns as f64 / NS_PER_US as f64)
    }
}

/// Splits "1.5ms" into ("1.5", "ms"). Leading/trailing blanks are ignored.
fn split(text: &str) -> (&str, &str) {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// "1.5" x scale (ns per unit), exactly, rounding below a nanosecond.
fn scaled(number: &str, scale: u128) -> Option<Duration> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits beyond the 18th fractional one cannot matter at ns resolution.
    let frac = &frac[..frac.len().min(18)];
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let denom = 10u128.pow(frac.len() as u32);
    let ns = int
        .checked_mul(scale)?
        .checked_add((frac_value * scale + denom / 2) / denom)?;
    let secs = u64::try_from(ns / NS_PER_S).ok()?;
    Some(Duration::new(secs, (ns % NS_PER_S) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn heartbeat_dialect() {
        assert_eq!(parse_hacf("2"), Ok(ms(2000)));
        assert_eq!(parse_hacf("0.5"), Ok(ms(500)));
        assert_eq!(parse_hacf(".25"), Ok(ms(250)));
        assert_eq!(parse_hacf("1.5"), Ok(ms(1500)));
        assert_eq!(parse_hacf("500ms"), Ok(ms(500)));
        assert_eq!(parse_hacf("500MS"), Ok(ms(500)));
        assert_eq!(parse_hacf("250msec"), Ok(ms(250)));
        assert_eq!(parse_hacf("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_hacf("2s"), Ok(ms(2000)));
        assert_eq!(parse_hacf("0"), Ok(ms(0)));
    }

    #[test]
    fn heartbeat_dialect_rejects() {
        for bad in ["abc", "", ".", "1.2.3", "-1", "2m", "2 min", "1e3", "2h"] {
            let err = parse_hacf(bad).unwrap_err();
            assert!(err.starts_with(HACF_EXPECTED), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn native_dialect() {
        assert_eq!(parse_with_units("2s"), Ok(ms(2000)));
        assert_eq!(parse_with_units("500ms"), Ok(ms(500)));
        assert_eq!(parse_with_units("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_with_units("1m"), Ok(ms(60_000)));
        assert_eq!(parse_with_units("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_with_units("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_with_units("0.1ms"), Ok(Duration::from_micros(100)));
    }

    #[test]
    fn native_dialect_requires_units() {
        let err = parse_with_units("2").unwrap_err();
        assert!(err.contains("needs units"), "{err}");
        assert!(err.contains("\"2s\""), "{err}");
        assert!(parse_with_units("2 s").is_err());
        assert!(parse_with_units("2S").is_err());
        assert!(
            parse_with_units("fast")
                .unwrap_err()
                .starts_with(TOML_EXPECTED)
        );
    }

    #[test]
    fn display_round_trips() {
        for d in [ms(2000), ms(500), Duration::from_micros(250), ms(60_000)] {
            assert_eq!(parse_with_units(&display(d)), Ok(d));
        }
    }

    #[test]
    fn huge_values_do_not_panic() {
        assert!(parse_hacf("99999999999999999999999999999999999999").is_err());
        assert!(parse_with_units("340282366920938463463374607431768211455h").is_err());
    }
}
