//! Go-style duration strings (`20m`, `3000s`, `1h30m`, `1.5h`, `250ms`).
//!
//! Registry configurations written for distribution give durations in Go's `time.ParseDuration`
//! syntax, so the same strings must mean the same here.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses a Go duration: an optional `+`, then one or more decimal numbers (with an optional
/// fraction), each followed by a unit `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m` or `h`, with no
/// spaces (`"3000 s"` is invalid, as in Go). The lone string `"0"` is zero.
///
/// Negative durations (which Go accepts) are rejected: no option of these middlewares has a
/// meaning for them. Values beyond `u64::MAX` nanoseconds (about 584 years) are rejected too.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let mut s = input;
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len = s
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(s.len(), |(i, _)| i);
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(err("missing unit (ns, us, ms, s, m or h)")),
            _ => return Err(err("unknown unit (allowed: ns, us, ms, s, m, h)")),
        };
        // Integer arithmetic keeps "0.1s" exact; digits past nanosecond precision are dropped.
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut value = int_value
            .checked_mul(nanos_per_unit)
            .ok_or_else(|| err("too large"))?;
        let mut scale = nanos_per_unit;
        for d in frac_part.bytes().take(30) {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += u128::from(d - b'0') * scale;
        }
        total = total.checked_add(value).ok_or_else(|| err("too large"))?;
        if total > u128::from(u64::MAX) {
            return Err(err("too large"));
        }
    }
    let total = u64::try_from(total).map_err(|_| err("too large"))?;
    Ok(Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_syntax() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("20m"), Duration::from_secs(1200));
        assert_eq!(ok("3000s"), Duration::from_secs(3000));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1us"), Duration::from_micros(1));
        assert_eq!(ok("1µs"), Duration::from_micros(1));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("+12h"), Duration::from_secs(12 * 3600));
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
    }

    #[test]
    fn rejects_what_go_rejects_and_negatives() {
        for bad in [
            "",
            "3000 s",
            "20",
            "m",
            "1x",
            "-5m",
            "1.s.",
            "s20",
            "1h 30m",
            " 1h",
            "9999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_go_duration("3000 s").unwrap_err().to_string();
        assert!(e.contains("3000 s"), "{e}");
    }
}
